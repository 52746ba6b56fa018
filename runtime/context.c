/* Inference contexts: the KV cache, scratch activations, and strata_decode,
 * which splits a token sequence into chunks for the forward pass. */
#include <stdlib.h>
#include <string.h>

#include "context.h"

strata_context_params strata_context_default_params(void)
{
    strata_context_params params = {.n_ctx = 0, .max_batch = 512, .kv_dtype = DTYPE_F16};
    return params;
}

/* Lays the scratch tensors out one after the other in one buffer, each
 * starting at the device's alignment. */
typedef struct scratch_layout {
    size_t alignment;
    size_t next_offset;
    bool overflow;
} scratch_layout;

static void scratch_place(scratch_layout *layout, strata_tensor *tensor, strata_dtype dtype, int64_t ne0,
                          int64_t ne1)
{
    if (!tensor_init_contiguous(tensor, dtype, ne0, ne1, 1, 1)) {
        layout->overflow = true;
        return;
    }
    size_t aligned = (layout->next_offset + layout->alignment - 1) / layout->alignment * layout->alignment;
    size_t bytes = tensor_byte_size(tensor);
    if (aligned < layout->next_offset || bytes > SIZE_MAX - aligned) {
        layout->overflow = true;
        return;
    }
    tensor->offset = aligned;
    layout->next_offset = aligned + bytes;
}

static void attach(strata_tensor *tensor, backend_buffer *buffer, void *host_base)
{
    tensor->buffer = buffer;
    tensor->host_data = host_base ? (char *)host_base + tensor->offset : NULL;
}

static strata_status create_kv_cache(strata_context *ctx, strata_error *err)
{
    strata_model *model = ctx->model;
    const strata_hparams *hp = &model->hparams;
    const backend_ops *ops = model->device.ops;
    ctx->k_cache = calloc((size_t)hp->n_layer, sizeof *ctx->k_cache);
    ctx->v_cache = calloc((size_t)hp->n_layer, sizeof *ctx->v_cache);
    if (!ctx->k_cache || !ctx->v_cache)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for the KV cache descriptors");

    scratch_layout layout = {.alignment = model->device_info.alignment ? model->device_info.alignment : 64};
    for (int64_t layer = 0; layer < hp->n_layer; layer++) {
        scratch_place(&layout, &ctx->k_cache[layer], ctx->kv_dtype, hp->head_dim * hp->n_head_kv, ctx->n_ctx);
        scratch_place(&layout, &ctx->v_cache[layer], ctx->kv_dtype, hp->head_dim * hp->n_head_kv, ctx->n_ctx);
    }
    if (layout.overflow)
        return strata_fail(err, STRATA_INVALID_INPUT, "KV cache for %lld positions is too large to address",
                           (long long)ctx->n_ctx);
    if (layout.next_offset > model->device_info.free_bytes)
        return strata_fail(err, STRATA_OUT_OF_MEMORY,
                           "KV cache for %lld positions needs %.2f GiB but %s has %.2f GiB free (try a smaller --ctx)",
                           (long long)ctx->n_ctx, layout.next_offset / 1073741824.0, model->device_info.name,
                           model->device_info.free_bytes / 1073741824.0);
    strata_status status = ops->buffer_alloc(model->device.ctx, layout.next_offset, &ctx->kv_buffer, err);
    if (status != STRATA_OK)
        return status;
    void *host_base = ops->buffer_host_ptr(model->device.ctx, ctx->kv_buffer);
    for (int64_t layer = 0; layer < hp->n_layer; layer++) {
        /* the cache rows are [head_dim * n_head_kv]; attention sees them as
         * [head_dim, n_head_kv, n_ctx] */
        strata_tensor *caches[2] = {&ctx->k_cache[layer], &ctx->v_cache[layer]};
        for (int c = 0; c < 2; c++) {
            attach(caches[c], ctx->kv_buffer, host_base);
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
    return STRATA_OK;
}

static strata_status create_scratch(strata_context *ctx, strata_error *err)
{
    strata_model *model = ctx->model;
    const strata_hparams *hp = &model->hparams;
    const backend_ops *ops = model->device.ops;
    int64_t batch = ctx->max_batch;
    scratch_layout layout = {.alignment = model->device_info.alignment ? model->device_info.alignment : 64};
    scratch_place(&layout, &ctx->tokens, DTYPE_I32, batch, 1);
    scratch_place(&layout, &ctx->positions, DTYPE_I32, batch, 1);
    scratch_place(&layout, &ctx->residual, DTYPE_F32, hp->n_embd, batch);
    scratch_place(&layout, &ctx->normed, DTYPE_F32, hp->n_embd, batch);
    scratch_place(&layout, &ctx->q, DTYPE_F32, hp->n_head * hp->head_dim, batch);
    scratch_place(&layout, &ctx->k, DTYPE_F32, hp->n_head_kv * hp->head_dim, batch);
    scratch_place(&layout, &ctx->v, DTYPE_F32, hp->n_head_kv * hp->head_dim, batch);
    scratch_place(&layout, &ctx->attn_out, DTYPE_F32, hp->n_head * hp->head_dim, batch);
    scratch_place(&layout, &ctx->proj, DTYPE_F32, hp->n_embd, batch);
    scratch_place(&layout, &ctx->ffn_gate, DTYPE_F32, hp->n_ff, batch);
    scratch_place(&layout, &ctx->ffn_up, DTYPE_F32, hp->n_ff, batch);
    scratch_place(&layout, &ctx->logits, DTYPE_F32, hp->n_vocab, CONTEXT_LOGITS_CHUNK);
    if (layout.overflow)
        return strata_fail(err, STRATA_INVALID_INPUT, "scratch for a batch of %lld tokens is too large",
                           (long long)batch);
    strata_status status = ops->buffer_alloc(model->device.ctx, layout.next_offset, &ctx->scratch_buffer, err);
    if (status != STRATA_OK)
        return status;
    void *host_base = ops->buffer_host_ptr(model->device.ctx, ctx->scratch_buffer);
    strata_tensor *all[] = {&ctx->tokens, &ctx->positions, &ctx->residual, &ctx->normed, &ctx->q,
                            &ctx->k,      &ctx->v,         &ctx->attn_out, &ctx->proj,   &ctx->ffn_gate,
                            &ctx->ffn_up, &ctx->logits};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        attach(all[i], ctx->scratch_buffer, host_base);
    ctx->host_positions = malloc((size_t)batch * sizeof *ctx->host_positions);
    if (!ctx->host_positions)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    return STRATA_OK;
}

strata_status strata_context_create(strata_model *model, const strata_context_params *params,
                                    strata_context **out, strata_error *err)
{
    *out = NULL;
    const strata_hparams *hp = &model->hparams;
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
    ctx->n_ctx = params->n_ctx > 0 ? params->n_ctx : hp->n_ctx_train;
    ctx->max_batch = params->max_batch > 0 ? params->max_batch : 512;
    if (ctx->max_batch > ctx->n_ctx)
        ctx->max_batch = ctx->n_ctx;
    ctx->kv_dtype = params->kv_dtype;

    strata_status status = create_kv_cache(ctx, err);
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
    const backend_device *device = &ctx->model->device;
    if (ctx->kv_buffer)
        device->ops->buffer_free(device->ctx, ctx->kv_buffer);
    if (ctx->scratch_buffer)
        device->ops->buffer_free(device->ctx, ctx->scratch_buffer);
    free(ctx->k_cache);
    free(ctx->v_cache);
    free(ctx->host_positions);
    free(ctx->host_logits);
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
