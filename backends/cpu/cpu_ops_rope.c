/* OP_ROPE: rotary position embedding of src0[head_dim, n_heads, n_tok] at the
 * positions src1[n_tok], normal (pairs 2i, 2i+1) or neox (pairs i, i + n_rot/2)
 * layout, optional per-pair frequency factors src2[n_rot/2] and attention
 * factor (on the rotated dims: cos and sin are scaled). Dims past n_rot
 * pass through. Parallel over tokens; the angles of a token are computed once
 * and shared by its heads. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"

#define ROPE_PARALLEL_MIN_ELEMENTS 32768

typedef struct rope_job {
    cpu_context *ctx;
    const backend_op *op;
    const float *src;
    float *dst;
    const int32_t *positions;
    const float *factors;
    int64_t head_dim, n_heads;
} rope_job;

static void rope_tokens(void *arg, int64_t begin, int64_t end, int thread_index)
{
    const rope_job *job = arg;
    const int32_t n_rot = job->op->params.rope.n_rot;
    const int32_t half = n_rot / 2;
    const bool neox = job->op->params.rope.neox;
    const float attn_factor = job->op->params.rope.attn_factor;
    const float m = attn_factor != 0.0f ? attn_factor : 1.0f;
    float *cos_sin = cpu_per_thread_slice(job->ctx, thread_index); /* [2 * half] */
    for (int64_t t = begin; t < end; t++) {
        double position = (double)job->positions[t] * job->op->params.rope.freq_scale;
        for (int32_t i = 0; i < half; i++) {
            double theta = position * pow((double)job->op->params.rope.freq_base, -2.0 * i / n_rot);
            if (job->factors)
                theta /= job->factors[i];
            cos_sin[2 * i] = (float)cos(theta) * m;
            cos_sin[2 * i + 1] = (float)sin(theta) * m;
        }
        for (int64_t h = 0; h < job->n_heads; h++) {
            const float *x = job->src + (t * job->n_heads + h) * job->head_dim;
            float *y = job->dst + (t * job->n_heads + h) * job->head_dim;
            for (int32_t i = 0; i < half; i++) {
                int64_t i0 = neox ? i : 2 * i;
                int64_t i1 = neox ? i + half : 2 * i + 1;
                float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
                float x0 = x[i0], x1 = x[i1];
                y[i0] = x0 * c - x1 * s;
                y[i1] = x0 * s + x1 * c;
            }
            if (y != x && job->head_dim > n_rot)
                memcpy(y + n_rot, x + n_rot, (size_t)(job->head_dim - n_rot) * sizeof(float));
        }
    }
}

strata_status cpu_run_rope(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *x = op->src[0];
    strata_status status = cpu_per_thread_reserve(ctx, (size_t)op->params.rope.n_rot * sizeof(float), err);
    if (status != STRATA_OK)
        return status;
    rope_job job = {
        .ctx = ctx,
        .op = op,
        .src = cpu_tensor_data(x),
        .dst = cpu_tensor_data(op->dst),
        .positions = cpu_tensor_data(op->src[1]),
        .factors = op->src[2] ? cpu_tensor_data(op->src[2]) : NULL,
        .head_dim = x->ne[0],
        .n_heads = x->ne[1],
    };
    int64_t per_token = x->ne[0] * x->ne[1];
    int64_t min_tokens = per_token > 0 ? ROPE_PARALLEL_MIN_ELEMENTS / per_token + 1 : x->ne[2];
    cpu_parallel_for(ctx->pool, x->ne[2], min_tokens, rope_tokens, &job);
    return STRATA_OK;
}
