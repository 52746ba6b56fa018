/* Inference contexts: the KV caches and scratch activations on each device
 * of the model's placement, and strata_decode, which splits a token
 * sequence into chunks for the forward pass. Everything is counted against
 * the devices' budgets (model_memory.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"

strata_context_params strata_context_default_params(void)
{
    strata_context_params params = {.n_ctx = 0, .max_batch = 0, .kv_dtype = DTYPE_F16};
    return params;
}

/* The K and V caches of the layers placed on each device, in one buffer per
 * device, each cache at an aligned offset. */
static strata_status create_kv_caches(strata_context *ctx, strata_error *err)
{
    strata_model *model = ctx->model;
    const strata_hparams *hp = &model->hparams;
    ctx->k_cache = calloc((size_t)hp->n_layer, sizeof *ctx->k_cache);
    ctx->v_cache = calloc((size_t)hp->n_layer, sizeof *ctx->v_cache);
    if (!ctx->k_cache || !ctx->v_cache)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for the KV cache descriptors");
    for (int d = 0; d < model->n_devices; d++) {
        const model_device *device = &model->devices[d];
        size_t alignment = device->info.alignment ? device->info.alignment : 64;
        uint64_t next_offset = 0;
        int64_t first = -1, last = -1;
        for (int64_t layer = 0; layer < hp->n_layer; layer++) {
            if (model->layers[layer].device != d)
                continue;
            strata_tensor *caches[2] = {&ctx->k_cache[layer], &ctx->v_cache[layer]};
            for (int c = 0; c < 2; c++) {
                if (!tensor_init_contiguous(caches[c], ctx->kv_dtype, hp->head_dim * hp->n_head_kv, ctx->n_ctx, 1, 1))
                    return strata_fail(err, STRATA_INVALID_INPUT,
                                       "KV cache for %lld positions is too large to address", (long long)ctx->n_ctx);
                uint64_t offset = scratch_align_up(next_offset, alignment);
                caches[c]->offset = (size_t)offset;
                next_offset = offset + tensor_byte_size(caches[c]);
            }
            if (first < 0)
                first = layer;
            last = layer;
        }
        if (first < 0)
            continue;
        if (next_offset > SIZE_MAX)
            return strata_fail(err, STRATA_INVALID_INPUT, "KV cache for %lld positions is too large to address",
                               (long long)ctx->n_ctx);
        char what[128];
        snprintf(what, sizeof what, "the KV cache of layers %lld-%lld for %lld positions (try a smaller --ctx)",
                 (long long)first, (long long)last, (long long)ctx->n_ctx);
        context_device *cd = &ctx->devices[d];
        strata_status status = model_device_alloc(model, d, (size_t)next_offset, what, &cd->kv_buffer, err);
        if (status != STRATA_OK)
            return status;
        cd->kv_bytes = (size_t)next_offset;
        void *host_base = device->device.ops->buffer_host_ptr(device->device.ctx, cd->kv_buffer);
        for (int64_t layer = first; layer <= last; layer++) {
            if (model->layers[layer].device != d)
                continue;
            /* the cache rows are [head_dim * n_head_kv]; attention sees them as
             * [head_dim, n_head_kv, n_ctx] */
            strata_tensor *caches[2] = {&ctx->k_cache[layer], &ctx->v_cache[layer]};
            for (int c = 0; c < 2; c++) {
                caches[c]->buffer = cd->kv_buffer;
                caches[c]->host_data = host_base ? (char *)host_base + caches[c]->offset : NULL;
                size_t element_bytes = caches[c]->nb[0];
                caches[c]->ne[0] = hp->head_dim;
                caches[c]->ne[1] = hp->n_head_kv;
                caches[c]->ne[2] = ctx->n_ctx;
                caches[c]->nb[1] = (size_t)hp->head_dim * element_bytes;
                caches[c]->nb[2] = caches[c]->nb[1] * (size_t)hp->n_head_kv;
                caches[c]->nb[3] = caches[c]->nb[2] * (size_t)ctx->n_ctx;
                caches[c]->name = c == 0 ? "k_cache" : "v_cache";
            }
        }
    }
    return STRATA_OK;
}

/* Scratch activations on every device the plan puts work on; the logits
 * rows only on the output's device. */
static strata_status create_scratch(strata_context *ctx, strata_error *err)
{
    strata_model *model = ctx->model;
    const strata_hparams *hp = &model->hparams;
    scratch_dims dims = {.n_vocab = hp->n_vocab, .n_embd = hp->n_embd, .n_head = hp->n_head,
                         .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim, .n_ff = hp->n_ff,
                         .n_expert = hp->n_expert, .n_expert_used = hp->n_expert_used, .n_ff_exp = hp->n_ff_exp,
                         .n_ff_shexp = hp->n_ff_shexp};
    for (int d = 0; d < model->n_devices; d++) {
        const model_device *device = &model->devices[d];
        context_device *cd = &ctx->devices[d];
        if (model->plan.devices[d].scratch_bytes == 0)
            continue;
        bool with_logits = model->output.device == d;
        if (!scratch_layout_build(&dims, ctx->max_batch, device->info.alignment, with_logits, &cd->scratch))
            return strata_fail(err, STRATA_INVALID_INPUT, "scratch for a batch of %lld tokens is too large",
                               (long long)ctx->max_batch);
        strata_status status = model_device_alloc(model, d, cd->scratch.total_bytes, "the scratch activations",
                                                  &cd->scratch_buffer, err);
        if (status != STRATA_OK)
            return status;
        cd->scratch_bytes = cd->scratch.total_bytes;
        cd->active = true;
        void *host_base = device->device.ops->buffer_host_ptr(device->device.ctx, cd->scratch_buffer);
        for (int slot = 0; slot < SCRATCH_SLOT_COUNT; slot++) {
            strata_tensor *tensor = &cd->scratch.slots[slot];
            if (!cd->scratch.present[slot])
                continue;
            tensor->buffer = cd->scratch_buffer;
            tensor->host_data = host_base ? (char *)host_base + tensor->offset : NULL;
        }
    }
    ctx->host_positions = malloc((size_t)ctx->max_batch * sizeof *ctx->host_positions);
    if (!ctx->host_positions)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    return STRATA_OK;
}

strata_status strata_context_create(strata_model *model, const strata_context_params *params,
                                    strata_context **out, strata_error *err)
{
    *out = NULL;
    strata_context_params defaults = strata_context_default_params();
    if (!params)
        params = &defaults;
    if (params->n_ctx < 0 || params->n_ctx > (1 << 24))
        return strata_fail(err, STRATA_INVALID_INPUT, "context size %lld is outside [1, %d]",
                           (long long)params->n_ctx, 1 << 24);
    if (params->max_batch < 0 || params->max_batch > 65536)
        return strata_fail(err, STRATA_INVALID_INPUT, "batch size %d is outside [1, 65536]", params->max_batch);
    if (params->kv_dtype != DTYPE_F16 && params->kv_dtype != DTYPE_F32)
        return strata_fail(err, STRATA_UNSUPPORTED, "KV cache type %s is not supported (use f16 or f32)",
                           dtype_name(params->kv_dtype));

    strata_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    ctx->model = model;
    /* the defaults are what the placement made room for */
    ctx->n_ctx = params->n_ctx > 0 ? params->n_ctx : model->plan.n_ctx;
    ctx->max_batch = params->max_batch > 0 ? params->max_batch : model->plan.max_batch;
    if (ctx->max_batch > ctx->n_ctx)
        ctx->max_batch = ctx->n_ctx;
    ctx->kv_dtype = params->kv_dtype;

    strata_status status = create_kv_caches(ctx, err);
    if (status == STRATA_OK)
        status = create_scratch(ctx, err);
    if (status != STRATA_OK) {
        strata_context_free(ctx);
        return status;
    }
    *out = ctx;
    return STRATA_OK;
}

void strata_context_free(strata_context *ctx)
{
    if (!ctx)
        return;
    for (int d = 0; d < ctx->model->n_devices; d++) {
        context_device *cd = &ctx->devices[d];
        model_device_free(ctx->model, d, cd->kv_buffer, cd->kv_bytes);
        model_device_free(ctx->model, d, cd->scratch_buffer, cd->scratch_bytes);
    }
    free(ctx->k_cache);
    free(ctx->v_cache);
    free(ctx->host_positions);
    free(ctx->host_logits);
    free(ctx->staging);
    free(ctx);
}

strata_status strata_decode(strata_context *ctx, const int32_t *tokens, int64_t n_tokens, bool all_logits,
                            strata_error *err)
{
    const strata_hparams *hp = &ctx->model->hparams;
    if (n_tokens < 1)
        return strata_fail(err, STRATA_INVALID_INPUT, "nothing to decode (0 tokens)");
    if (n_tokens > ctx->n_ctx - ctx->n_past)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "%lld tokens do not fit: the context holds %lld positions and %lld are used",
                           (long long)n_tokens, (long long)ctx->n_ctx, (long long)ctx->n_past);
    for (int64_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return strata_fail(err, STRATA_INVALID_INPUT, "token %lld (id %d) is outside the vocabulary [0, %lld)",
                               (long long)i, tokens[i], (long long)hp->n_vocab);

    int64_t rows_needed = all_logits ? n_tokens : 1;
    if (rows_needed > ctx->host_logits_rows) {
        float *grown = realloc(ctx->host_logits, (size_t)rows_needed * (size_t)hp->n_vocab * sizeof(float));
        if (!grown)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for %lld rows of logits",
                               (long long)rows_needed);
        ctx->host_logits = grown;
        ctx->host_logits_rows = rows_needed;
    }

    int64_t start_position = ctx->n_past;
    for (int64_t done = 0; done < n_tokens;) {
        int64_t chunk = n_tokens - done < ctx->max_batch ? n_tokens - done : ctx->max_batch;
        bool last_chunk = done + chunk == n_tokens;
        strata_status status = STRATA_OK;
        if (all_logits)
            status = forward_chunk(ctx, tokens + done, chunk, true, done, err);
        else
            status = forward_chunk(ctx, tokens + done, chunk, false, last_chunk ? 0 : -1, err);
        if (status != STRATA_OK) {
            ctx->n_past = start_position; /* entries past n_past are never read */
            return status;
        }
        ctx->n_past += chunk;
        done += chunk;
    }
    /* weights read from a file that changed meanwhile made these logits and
     * keys: drop them, as for any failed step */
    if (ctx->model->weights_in_file) {
        strata_status status = gguf_check_unchanged(ctx->model->file, err);
        if (status != STRATA_OK) {
            ctx->n_past = start_position;
            ctx->logits_row_count = 0;
            return status;
        }
    }
    ctx->logits_first_token = all_logits ? 0 : n_tokens - 1;
    ctx->logits_row_count = rows_needed;
    return STRATA_OK;
}

const float *strata_get_logits(const strata_context *ctx, int64_t i)
{
    int64_t row = i - ctx->logits_first_token;
    if (row < 0 || row >= ctx->logits_row_count)
        return NULL;
    return ctx->host_logits + (size_t)row * (size_t)ctx->model->hparams.n_vocab;
}

int64_t strata_context_position(const strata_context *ctx) { return ctx->n_past; }

int64_t strata_context_size(const strata_context *ctx) { return ctx->n_ctx; }

void strata_context_reset(strata_context *ctx)
{
    ctx->n_past = 0;
    ctx->logits_row_count = 0;
}

strata_status strata_context_truncate(strata_context *ctx, int64_t n_positions, strata_error *err)
{
    if (n_positions < 0 || n_positions > ctx->n_past)
        return strata_fail(err, STRATA_INVALID_INPUT, "cannot keep %lld positions of a cache that holds %lld",
                           (long long)n_positions, (long long)ctx->n_past);
    /* the rows past n_past stay as they are: attention reads a row only for
     * a position below the query's, and a later decode writes a position's
     * row before it is read (as after a failed decode) */
    ctx->n_past = n_positions;
    ctx->logits_row_count = 0;
    return STRATA_OK;
}
