/* What is counted against each device's budget: every buffer the runtime
 * allocates for a model and its contexts (weights, KV caches, scratch), the
 * weights a CPU computes from in place, and, kept aside from the start, the
 * workspace the backend may allocate by itself (the backend enforces that
 * part: backend_ops.set_workspace_limit). */
#include <stdio.h>

#include "model.h"
#include "planner.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Bytes the runtime may still count on d. */
static uint64_t room_left(const model_device *device)
{
    uint64_t usable = device->budget_bytes > device->workspace_bytes ? device->budget_bytes - device->workspace_bytes
                                                                     : 0;
    return device->allocated_bytes < usable ? usable - device->allocated_bytes : 0;
}

static strata_status check_room(const model_device *device, uint64_t bytes, const char *what, strata_error *err)
{
    if (bytes <= room_left(device))
        return STRATA_OK;
    char asked[24], left[24], budget[24], held[24], workspace[24];
    return strata_fail(err, STRATA_OUT_OF_MEMORY,
                       "%s: %s needs %s but only %s of its %s budget is left (%s already allocated, %s kept for the "
                       "backend's workspace)",
                       device->name, what, planner_format_bytes((double)bytes, asked, sizeof asked),
                       planner_format_bytes((double)room_left(device), left, sizeof left),
                       planner_format_bytes((double)device->budget_bytes, budget, sizeof budget),
                       planner_format_bytes((double)device->allocated_bytes, held, sizeof held),
                       planner_format_bytes((double)device->workspace_bytes, workspace, sizeof workspace));
}

static void count(model_device *device, uint64_t bytes)
{
    device->allocated_bytes += bytes;
    if (device->allocated_bytes > device->peak_bytes)
        device->peak_bytes = device->allocated_bytes;
}

strata_status model_device_alloc(strata_model *model, int d, size_t bytes, const char *what,
                                 backend_buffer **out, strata_error *err)
{
    model_device *device = &model->devices[d];
    *out = NULL;
    strata_status status = check_room(device, bytes, what, err);
    if (status != STRATA_OK)
        return status;
    status = device->device.ops->buffer_alloc(device->device.ctx, bytes, out, err);
    if (status != STRATA_OK) {
        if (err)
            strata_error_prefix(err, "%s: allocating %s (%.3f GiB)", device->name, what, (double)bytes / GIB);
        return status;
    }
    count(device, bytes);
    return STRATA_OK;
}

void model_device_free(strata_model *model, int d, backend_buffer *buffer, size_t bytes)
{
    if (!buffer)
        return;
    model_device *device = &model->devices[d];
    device->device.ops->buffer_free(device->device.ctx, buffer);
    device->allocated_bytes = device->allocated_bytes > bytes ? device->allocated_bytes - bytes : 0;
}

strata_status model_device_count(strata_model *model, int d, uint64_t bytes, const char *what, strata_error *err)
{
    model_device *device = &model->devices[d];
    strata_status status = check_room(device, bytes, what, err);
    if (status == STRATA_OK)
        count(device, bytes);
    return status;
}

void strata_model_device_usage(const strata_model *model, int d, uint64_t *allocated_bytes, uint64_t *peak_bytes)
{
    *allocated_bytes = 0;
    *peak_bytes = 0;
    if (d < 0 || d >= model->n_devices)
        return;
    const model_device *device = &model->devices[d];
    const backend_ops *ops = device->device.ops;
    if (!ops)
        return; /* unused by the plan, closed */
    uint64_t workspace_peak = ops->workspace_peak_bytes ? ops->workspace_peak_bytes(device->device.ctx) : 0;
    *allocated_bytes = device->allocated_bytes;
    *peak_bytes = device->peak_bytes + workspace_peak;
}
