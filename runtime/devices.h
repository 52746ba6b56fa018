/* Internal: devices by name ("cpu", "cuda0", "vulkan1"), the default device
 * list, budgets and the rates the planner predicts speed from. */
#ifndef STRATA_DEVICES_H
#define STRATA_DEVICES_H

#include "../backends/backend.h"
#include "planner.h"
#include "strata.h"

/* Safety margin kept free on a device when no --vram cap is given: the
 * driver, graphs and libraries allocate a little beyond what strata counts. */
#define DEVICES_GPU_MARGIN_MAX ((uint64_t)512 << 20)
#define DEVICES_CPU_MARGIN_MAX ((uint64_t)1 << 30)
/* SMs assumed for a CUDA card given by --device-spec (the workspace bound
 * grows with them): more than any card had in 2026 */
#define DEVICES_SPEC_MULTIPROCESSORS 192

/* One open device and what the planner needs to know of it. */
typedef struct open_device {
    char name[STRATA_DEVICE_NAME_MAX];
    const backend_registration *registration;
    backend_device device;
    device_info info;
} open_device;

/* Splits "NAME[DIGITS]" into the backend name and index ("cuda1" -> cuda, 1;
 * "cpu" -> cpu, 0). Returns false when name is not of that form. */
bool devices_split_name(const char *name, char *backend, size_t backend_size, int *index, bool *has_index);

/* Opens the devices of list (comma-separated names; "cuda" alone is every
 * CUDA device) in that order, or the default list when list is NULL or
 * empty: every device of every backend that is not a software device, CUDA
 * before Vulkan, a Vulkan device with the UUID of a CUDA one left out, and
 * the CPU last. Unknown or absent names are an error naming them and the
 * devices that exist. */
strata_status devices_open(const char *list, const backend_options *options, open_device *out, int *n_out,
                           strata_error *err);
void devices_close(open_device *devices, int n);

/* Index of name in the table, or -1. */
int devices_find(const open_device *devices, int n, const char *name);

/* The budget of a device whose memory is total_bytes, of which
 * available_bytes are free to this process: its cap when given (never above
 * the available memory minus the margin), else the available memory minus
 * min(the margin max, 1/16 of total_bytes). */
uint64_t devices_budget(device_kind kind, uint64_t total_bytes, uint64_t available_bytes,
                        const strata_device_cap *caps, int n_caps, const char *name);

/* Fills the planner's description of an open device, its budget from caps
 * (no rates: see devices_measure). The workspace the backend already holds
 * (its cuBLAS workspace, say) counts as available: the plan reserves the
 * whole workspace within the budget. */
void devices_describe(const open_device *device, const strata_device_cap *caps, int n_caps, plan_device_input *out);

/* Measures the device's read bandwidth and matmul rate into out (blocks
 * about a second): the backend's own measurements where it has them, the
 * host's read bandwidth and a timed Q8_0 matmul on the CPU. A rate that
 * cannot be measured stays 0. */
strata_status devices_measure(open_device *device, int n_threads, plan_device_input *out, strata_error *err);

/* The device table of specs (hypothetical devices): kind from the name,
 * budget = memory minus the margin, the backends' workspace estimates where
 * that backend is built in. */
strata_status devices_from_specs(const strata_device_spec *specs, int n_specs, const strata_device_cap *caps,
                                 int n_caps, plan_device_input *out, strata_error *err);

#endif
