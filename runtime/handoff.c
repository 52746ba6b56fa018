/* Activations across devices. The forward pass runs each op where its
 * weight is; this file keeps track of which devices hold the current value
 * of each scratch activation and moves it where an op needs it. At batch-1
 * decode a layer boundary between devices costs one hand-off of n_embd
 * floats. */
#include <stdlib.h>
#include <string.h>

#include "context.h"

void handoff_begin_chunk(strata_context *ctx)
{
    memset(ctx->slot_valid_on, 0, sizeof ctx->slot_valid_on);
    memset(ctx->slot_extent, 0, sizeof ctx->slot_extent);
}

void handoff_written(strata_context *ctx, scratch_slot slot, int d, size_t end)
{
    ctx->slot_valid_on[slot] = 1u << d;
    if (end > ctx->slot_extent[slot])
        ctx->slot_extent[slot] = end;
}

static strata_status grow_staging(strata_context *ctx, size_t bytes, strata_error *err)
{
    if (bytes <= ctx->staging_bytes)
        return STRATA_OK;
    void *grown = realloc(ctx->staging, bytes);
    if (!grown)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of host memory for a hand-off of %zu bytes", bytes);
    ctx->staging = grown;
    ctx->staging_bytes = bytes;
    return STRATA_OK;
}

/* Copies bytes of slot from device s to device d. */
static strata_status move(strata_context *ctx, scratch_slot slot, int s, int d, size_t bytes, strata_error *err)
{
    strata_model *model = ctx->model;
    model_device *from = &model->devices[s], *to = &model->devices[d];
    const strata_tensor *src = &ctx->devices[s].scratch.slots[slot];
    const strata_tensor *dst = &ctx->devices[d].scratch.slots[slot];
    const backend_ops *from_ops = from->device.ops, *to_ops = to->device.ops;
    strata_status status;
    if (from_ops == to_ops && to_ops->copy_peer) {
        strata_error peer_err = {0};
        status = to_ops->copy_peer(to->device.ctx, dst->buffer, dst->offset, from->device.ctx, src->buffer,
                                   src->offset, bytes, &peer_err);
        if (status != STRATA_UNSUPPORTED) {
            if (status != STRATA_OK && err)
                *err = peer_err;
            return status;
        }
    }
    if (dst->host_data) {
        /* to host-visible memory (the CPU): one download */
        if ((status = from_ops->download(from->device.ctx, src->buffer, src->offset, dst->host_data, bytes, err)))
            return status;
        return from_ops->sync(from->device.ctx, err);
    }
    const void *host = src->host_data;
    if (host) {
        /* from host-visible memory: wait for the ops that wrote it, one upload */
        if ((status = from_ops->sync(from->device.ctx, err)))
            return status;
    } else {
        if ((status = grow_staging(ctx, bytes, err)) ||
            (status = from_ops->download(from->device.ctx, src->buffer, src->offset, ctx->staging, bytes, err)) ||
            (status = from_ops->sync(from->device.ctx, err)))
            return status;
        host = ctx->staging;
    }
    /* upload reads the host bytes before it returns (backend.h) */
    return to_ops->upload(to->device.ctx, dst->buffer, dst->offset, host, bytes, err);
}

strata_status handoff_ensure(strata_context *ctx, scratch_slot slot, int d, strata_error *err)
{
    uint32_t holders = ctx->slot_valid_on[slot];
    if (holders & (1u << d))
        return STRATA_OK;
    if (holders == 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "internal: an activation is read before it is written");
    /* prefer a host-visible holder (a download or upload instead of both) */
    int source = -1;
    for (int s = 0; s < ctx->model->n_devices; s++) {
        if (!(holders & (1u << s)))
            continue;
        if (source < 0 || ctx->devices[s].scratch.slots[slot].host_data)
            source = s;
    }
    strata_status status = move(ctx, slot, source, d, ctx->slot_extent[slot], err);
    if (status != STRATA_OK)
        return status;
    ctx->slot_valid_on[slot] |= 1u << d;
    ctx->handoffs++;
    return STRATA_OK;
}

strata_status handoff_from_host(strata_context *ctx, scratch_slot slot, int d, const void *host, size_t bytes,
                                strata_error *err)
{
    if (ctx->slot_valid_on[slot] & (1u << d))
        return STRATA_OK;
    const model_device *device = &ctx->model->devices[d];
    const strata_tensor *dst = &ctx->devices[d].scratch.slots[slot];
    strata_status status = device->device.ops->upload(device->device.ctx, dst->buffer, dst->offset, host, bytes, err);
    if (status != STRATA_OK)
        return status;
    ctx->slot_valid_on[slot] |= 1u << d;
    if (bytes > ctx->slot_extent[slot])
        ctx->slot_extent[slot] = bytes;
    return STRATA_OK;
}

uint64_t strata_context_handoff_count(const strata_context *ctx)
{
    return ctx->handoffs;
}
