/* The forward pass, written once over backend ops. Architecture differences
 * are flags in strata_hparams (QKV bias, Q/K norm, rope layout, tied output),
 * not copies of this function. Shapes are [ne0, ne1, ...], innermost first;
 * n is the number of tokens in the chunk. */
#include <math.h>
#include <string.h>

#include "context.h"

/* A contiguous F32/I32 view of the first columns of a scratch tensor,
 * reshaped to [ne0, ne1, ne2] (the element count must fit the tensor). */
static strata_tensor view(const strata_tensor *base, int64_t ne0, int64_t ne1, int64_t ne2, size_t byte_offset)
{
    strata_tensor result;
    tensor_init_contiguous(&result, base->dtype, ne0, ne1, ne2, 1);
    result.buffer = base->buffer;
    result.offset = base->offset + byte_offset;
    result.host_data = base->host_data ? (char *)base->host_data + byte_offset : NULL;
    result.name = base->name;
    return result;
}

/* The cache rows of one layer seen as [row_size, n_ctx] for OP_KV_STORE. */
static strata_tensor cache_rows(const strata_tensor *cache)
{
    strata_tensor rows = *cache;
    rows.ne[0] = cache->ne[0] * cache->ne[1];
    rows.ne[1] = cache->ne[2];
    rows.ne[2] = 1;
    rows.nb[1] = cache->nb[2];
    rows.nb[2] = cache->nb[3];
    return rows;
}

typedef struct forward_state {
    strata_context *ctx;
    const backend_device *device;
    strata_error *err;
} forward_state;

static strata_status issue(forward_state *state, backend_op *op)
{
    return state->device->ops->run_op(state->device->ctx, op, state->err);
}

static strata_status matmul(forward_state *s, strata_tensor *dst, const strata_tensor *weight, const strata_tensor *x)
{
    backend_op op = {.kind = OP_MATMUL, .dst = dst, .src = {weight, x}};
    return issue(s, &op);
}

static strata_status rms_norm(forward_state *s, strata_tensor *dst, const strata_tensor *x,
                              const strata_tensor *weight)
{
    backend_op op = {.kind = OP_RMS_NORM, .dst = dst, .src = {x, weight}};
    op.params.rms_norm.eps = s->ctx->model->hparams.rms_eps;
    return issue(s, &op);
}

static strata_status add(forward_state *s, strata_tensor *dst, const strata_tensor *a, const strata_tensor *b)
{
    backend_op op = {.kind = OP_ADD, .dst = dst, .src = {a, b}};
    return issue(s, &op);
}

static strata_status rope(forward_state *s, strata_tensor *x, const strata_tensor *positions)
{
    const strata_model *model = s->ctx->model;
    const strata_hparams *hp = &model->hparams;
    backend_op op = {.kind = OP_ROPE, .dst = x, .src = {x, positions, hp->has_rope_freq_factors ? &model->rope_freqs : NULL}};
    op.params.rope.n_rot = (int32_t)hp->n_rot;
    op.params.rope.neox = hp->rope_neox;
    op.params.rope.freq_base = hp->rope_freq_base;
    op.params.rope.freq_scale = hp->rope_freq_scale;
    return issue(s, &op);
}

static strata_status attention_block(forward_state *s, const layer_weights *layer, int64_t layer_index, int64_t n,
                                     const strata_tensor *positions)
{
    strata_context *ctx = s->ctx;
    const strata_hparams *hp = &ctx->model->hparams;
    int64_t hd = hp->head_dim, q_size = hp->n_head * hd, kv_size = hp->n_head_kv * hd;
    strata_tensor x = view(&ctx->residual, hp->n_embd, n, 1, 0);       /* [n_embd, n] */
    strata_tensor normed = view(&ctx->normed, hp->n_embd, n, 1, 0);    /* [n_embd, n] */
    strata_tensor q = view(&ctx->q, q_size, n, 1, 0);                  /* [n_head*hd, n] */
    strata_tensor k = view(&ctx->k, kv_size, n, 1, 0);                 /* [n_head_kv*hd, n] */
    strata_tensor v = view(&ctx->v, kv_size, n, 1, 0);                 /* [n_head_kv*hd, n] */
    strata_tensor attn = view(&ctx->attn_out, hd, hp->n_head, n, 0);   /* [hd, n_head, n] */
    strata_tensor proj = view(&ctx->proj, hp->n_embd, n, 1, 0);        /* [n_embd, n] */
    strata_status status;

    /* normed = rms_norm(x) * attn_norm */
    if ((status = rms_norm(s, &normed, &x, &layer->attn_norm)))
        return status;
    /* q, k, v = W normed (+ bias) */
    if ((status = matmul(s, &q, &layer->attn_q, &normed)) || (status = matmul(s, &k, &layer->attn_k, &normed)) ||
        (status = matmul(s, &v, &layer->attn_v, &normed)))
        return status;
    if (hp->has_qkv_bias &&
        ((status = add(s, &q, &q, &layer->attn_q_bias)) || (status = add(s, &k, &k, &layer->attn_k_bias)) ||
         (status = add(s, &v, &v, &layer->attn_v_bias))))
        return status;
    /* per-head views: q [hd, n_head, n], k [hd, n_head_kv, n] */
    strata_tensor q_heads = view(&ctx->q, hd, hp->n_head, n, 0);
    strata_tensor k_heads = view(&ctx->k, hd, hp->n_head_kv, n, 0);
    if (hp->has_qk_norm) {
        /* RMS norm over each head's hd values, weight [hd] */
        strata_tensor q_rows = view(&ctx->q, hd, hp->n_head * n, 1, 0);
        strata_tensor k_rows = view(&ctx->k, hd, hp->n_head_kv * n, 1, 0);
        if ((status = rms_norm(s, &q_rows, &q_rows, &layer->attn_q_norm)) ||
            (status = rms_norm(s, &k_rows, &k_rows, &layer->attn_k_norm)))
            return status;
    }
    if ((status = rope(s, &q_heads, positions)) || (status = rope(s, &k_heads, positions)))
        return status;

    /* append k, v to this layer's cache at the chunk's positions */
    strata_tensor k_rows_cache = cache_rows(&ctx->k_cache[layer_index]);
    strata_tensor v_rows_cache = cache_rows(&ctx->v_cache[layer_index]);
    backend_op store_k = {.kind = OP_KV_STORE, .dst = &k_rows_cache, .src = {&k, positions}};
    backend_op store_v = {.kind = OP_KV_STORE, .dst = &v_rows_cache, .src = {&v, positions}};
    if ((status = issue(s, &store_k)) || (status = issue(s, &store_v)))
        return status;

    /* attn [hd, n_head, n] = softmax(q k^T / sqrt(hd), causal) v */
    backend_op attention = {.kind = OP_ATTENTION,
                            .dst = &attn,
                            .src = {&q_heads, &ctx->k_cache[layer_index], &ctx->v_cache[layer_index], positions}};
    attention.params.attention.n_kv = ctx->n_past + n;
    attention.params.attention.scale = 1.0f / sqrtf((float)hd);
    if ((status = issue(s, &attention)))
        return status;

    /* x += W_o attn */
    strata_tensor attn_flat = view(&ctx->attn_out, q_size, n, 1, 0);
    if ((status = matmul(s, &proj, &layer->attn_output, &attn_flat)) || (status = add(s, &x, &x, &proj)))
        return status;
    return STRATA_OK;
}

static strata_status ffn_block(forward_state *s, const layer_weights *layer, int64_t n)
{
    strata_context *ctx = s->ctx;
    const strata_hparams *hp = &ctx->model->hparams;
    strata_tensor x = view(&ctx->residual, hp->n_embd, n, 1, 0);    /* [n_embd, n] */
    strata_tensor normed = view(&ctx->normed, hp->n_embd, n, 1, 0); /* [n_embd, n] */
    strata_tensor gate = view(&ctx->ffn_gate, hp->n_ff, n, 1, 0);   /* [n_ff, n] */
    strata_tensor up = view(&ctx->ffn_up, hp->n_ff, n, 1, 0);       /* [n_ff, n] */
    strata_tensor proj = view(&ctx->proj, hp->n_embd, n, 1, 0);     /* [n_embd, n] */
    strata_status status;

    /* normed = rms_norm(x) * ffn_norm */
    if ((status = rms_norm(s, &normed, &x, &layer->ffn_norm)))
        return status;
    /* gate = silu(W_gate normed) * (W_up normed) */
    if ((status = matmul(s, &gate, &layer->ffn_gate, &normed)) || (status = matmul(s, &up, &layer->ffn_up, &normed)))
        return status;
    backend_op swiglu = {.kind = OP_SWIGLU, .dst = &gate, .src = {&gate, &up}};
    if ((status = issue(s, &swiglu)))
        return status;
    /* x += W_down gate */
    if ((status = matmul(s, &proj, &layer->ffn_down, &gate)) || (status = add(s, &x, &x, &proj)))
        return status;
    return STRATA_OK;
}

/* logits of tokens [first, first + count) of the chunk -> host rows from host_row */
static strata_status output_logits(forward_state *s, int64_t first, int64_t count, int64_t host_row)
{
    strata_context *ctx = s->ctx;
    const strata_model *model = ctx->model;
    const strata_hparams *hp = &model->hparams;
    size_t column_bytes = (size_t)hp->n_embd * sizeof(float);
    strata_status status;
    for (int64_t done = 0; done < count; done += CONTEXT_LOGITS_CHUNK) {
        int64_t rows = count - done < CONTEXT_LOGITS_CHUNK ? count - done : CONTEXT_LOGITS_CHUNK;
        /* normed [n_embd, rows] = rms_norm(x columns) * output_norm */
        strata_tensor x = view(&ctx->residual, hp->n_embd, rows, 1, (size_t)(first + done) * column_bytes);
        strata_tensor normed = view(&ctx->normed, hp->n_embd, rows, 1, 0);
        strata_tensor logits = view(&ctx->logits, hp->n_vocab, rows, 1, 0); /* [n_vocab, rows] */
        if ((status = rms_norm(s, &normed, &x, &model->output_norm)) ||
            (status = matmul(s, &logits, &model->output, &normed)))
            return status;
        float *host = ctx->host_logits + (size_t)(host_row + done) * (size_t)hp->n_vocab;
        if ((status = s->device->ops->download(s->device->ctx, logits.buffer, logits.offset, host,
                                               tensor_byte_size(&logits), s->err)) ||
            (status = s->device->ops->sync(s->device->ctx, s->err)))
            return status;
    }
    return STRATA_OK;
}

strata_status forward_chunk(strata_context *ctx, const int32_t *tokens, int64_t n, bool all_logits,
                            int64_t host_row, strata_error *err)
{
    strata_model *model = ctx->model;
    const strata_hparams *hp = &model->hparams;
    const backend_device *device = &model->device;
    const backend_ops *ops = device->ops;
    forward_state state = {.ctx = ctx, .device = device, .err = err};
    strata_status status;

    for (int64_t i = 0; i < n; i++)
        ctx->host_positions[i] = (int32_t)(ctx->n_past + i);
    strata_tensor token_ids = view(&ctx->tokens, n, 1, 1, 0);  /* [n] I32 */
    strata_tensor positions = view(&ctx->positions, n, 1, 1, 0); /* [n] I32 */
    if ((status = ops->upload(device->ctx, token_ids.buffer, token_ids.offset, tokens, (size_t)n * sizeof(int32_t),
                              err)) ||
        (status = ops->upload(device->ctx, positions.buffer, positions.offset, ctx->host_positions,
                              (size_t)n * sizeof(int32_t), err)))
        return status;
    if (ops->begin_step && (status = ops->begin_step(device->ctx, err)))
        return status;

    /* x [n_embd, n] = token_embd[tokens] */
    strata_tensor x = view(&ctx->residual, hp->n_embd, n, 1, 0);
    backend_op get_rows = {.kind = OP_GET_ROWS, .dst = &x, .src = {&model->token_embd, &token_ids}};
    if ((status = issue(&state, &get_rows)))
        goto end_step;

    for (int64_t layer = 0; layer < hp->n_layer; layer++) {
        const layer_weights *weights = &model->layers[layer];
        if ((status = attention_block(&state, weights, layer, n, &positions)) ||
            (status = ffn_block(&state, weights, n)))
            goto end_step;
    }

    if (all_logits)
        status = output_logits(&state, 0, n, host_row);
    else if (host_row >= 0)
        status = output_logits(&state, n - 1, 1, host_row);
    else
        status = ops->sync(device->ctx, err);

end_step:
    if (ops->end_step) {
        strata_error end_err = {0};
        strata_status end_status = ops->end_step(device->ctx, &end_err);
        if (status == STRATA_OK && end_status != STRATA_OK) {
            if (err)
                *err = end_err;
            status = end_status;
        }
    }
    return status;
}
