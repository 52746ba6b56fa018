/* The placement and context flag groups, shared by run, bench and plan:
 * which devices, how many layers on GPUs, proportions, per-tensor
 * overrides, memory caps, threads; and the context the plan makes room
 * for. */
#ifndef STRATA_TOOLS_PLACEMENT_FLAGS_H
#define STRATA_TOOLS_PLACEMENT_FLAGS_H

#include "flags.h"
#include "strata.h"

typedef struct placement_options {
    const char *device_text;  /* --device: a list of names, or an index with --backend */
    const char *backend;      /* --backend: shorthand for <backend><--device or 0> */
    bool gpu_layers_set;
    int64_t gpu_layers;
    double tensor_split[STRATA_MAX_DEVICES];
    int n_tensor_split;
    bool cpu_moe;             /* --cpu-moe: every layer's experts in host RAM */
    bool n_cpu_moe_set;       /* --n-cpu-moe N: the first N layers' */
    int64_t n_cpu_moe;
    strata_tensor_override overrides[STRATA_MAX_OVERRIDES];
    char override_patterns[STRATA_MAX_OVERRIDES][256]; /* what overrides[i].pattern points at */
    int n_overrides;
    strata_device_cap caps[STRATA_MAX_DEVICES];
    int n_caps;
    strata_device_spec specs[STRATA_MAX_DEVICES]; /* plan only */
    int n_specs;
    int64_t n_threads;
    bool no_mmap;             /* read the model into memory instead of mapping it */
    bool no_measure;          /* plan: do not measure the devices */
} placement_options;

typedef struct context_options {
    int64_t n_ctx;            /* 0: the default (the training context, at most 4096) */
    const char *kv_type;      /* "f16" (default) or "f32" */
    int64_t batch;            /* 0: 512 */
} context_options;

extern const flag_group placement_flag_group;
extern const flag_group context_flag_group;
/* --device-spec and --no-measure: only `strata plan` takes them */
extern const flag_group device_spec_flag_group;

void placement_options_init(placement_options *options);
void context_options_init(context_options *options);

/* Fills params (devices, placement) from the options, with the context the
 * plan makes room for; the --backend/--device shorthands become a device
 * list ("cuda1"). Prints a message and returns false when the options
 * contradict each other. device_list must outlive params. */
bool placement_options_apply(const char *cmd, const placement_options *placement, const context_options *context,
                             strata_model_params *params, char *device_list, size_t device_list_size);

/* The KV type of the options (f16 unless --kv-type f32). */
strata_dtype context_options_kv_dtype(const context_options *context);

#endif
