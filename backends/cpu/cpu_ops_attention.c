/* OP_KV_STORE and OP_ATTENTION over F16 or F32 caches.
 *
 * Attention is computed per (token, head) pair with a two-pass softmax: the
 * scores of the visible cache rows go to a per-thread buffer, then their max
 * is subtracted before exponentiating, so large scores cannot overflow. Pairs
 * are spread over the pool. */
#include <math.h>
#include <string.h>

#include "../../base/quant.h"
#include "cpu_internal.h"

#define ATTENTION_PARALLEL_MIN_WORK 32768 /* multiply-adds below which one thread does it all */

strata_status cpu_run_kv_store(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)ctx;
    const strata_tensor *rows = op->src[0], *cache = op->dst;
    const float *src = cpu_tensor_data(rows);
    const int32_t *positions = cpu_tensor_data(op->src[1]);
    char *cache_data = cpu_tensor_data(cache);
    int64_t row_size = rows->ne[0], n_tok = rows->ne[1], n_ctx = cache->ne[1];
    /* positions first, so a bad one leaves the cache untouched */
    for (int64_t t = 0; t < n_tok; t++)
        if (positions[t] < 0 || positions[t] >= n_ctx)
            return strata_fail(err, STRATA_INVALID_INPUT, "cpu kv_store: position %d of token %lld is outside the cache (%lld rows)",
                               positions[t], (long long)t, (long long)n_ctx);
    for (int64_t t = 0; t < n_tok; t++) {
        const float *x = src + t * row_size;
        void *row = cache_data + (size_t)positions[t] * cache->nb[1];
        if (cache->dtype == DTYPE_F32) {
            memcpy(row, x, (size_t)row_size * sizeof(float));
        } else {
            uint16_t *half_row = row;
            for (int64_t i = 0; i < row_size; i++)
                half_row[i] = f32_to_fp16(x[i]);
        }
    }
    return STRATA_OK;
}

typedef struct attention_job {
    cpu_context *ctx;
    const backend_op *op;
    const float *q;
    float *out;
    const char *k, *v;
    const int32_t *positions;
    int64_t head_dim, n_heads, group; /* group: query heads per kv head */
    cpu_dot_fn k_dot;                 /* K row (cache dtype) . q (f32) */
    void (*axpy_f16)(int64_t n, float a, const void *x, float *y);
} attention_job;

/* out += p * v_row (v_row F16 or F32) */
static void accumulate_row(const attention_job *job, float *out, float p, const void *v_row, int64_t n)
{
    if (job->op->src[2]->dtype == DTYPE_F32) {
        const float *v = v_row;
        for (int64_t i = 0; i < n; i++)
            out[i] += p * v[i];
    } else {
        job->axpy_f16(n, p, v_row, out);
    }
}

static void attention_pairs(void *arg, int64_t begin, int64_t end, int thread_index)
{
    const attention_job *job = arg;
    const backend_op *op = job->op;
    const strata_tensor *k_cache = op->src[1], *v_cache = op->src[2];
    const float scale = op->params.attention.scale, softcap = op->params.attention.softcap;
    const int32_t window = op->params.attention.sliding_window;
    float *scores = cpu_per_thread_slice(job->ctx, thread_index);
    for (int64_t pair = begin; pair < end; pair++) {
        int64_t t = pair / job->n_heads, h = pair % job->n_heads;
        int64_t kv_head = h / job->group;
        const float *q = job->q + pair * job->head_dim;
        float *out = job->out + pair * job->head_dim;
        memset(out, 0, (size_t)job->head_dim * sizeof(float));
        /* visible rows: [first, last) */
        int64_t pos = job->positions[t];
        int64_t last = pos + 1 < op->params.attention.n_kv ? pos + 1 : op->params.attention.n_kv;
        int64_t first = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
        if (last <= first)
            continue;
        float max = -INFINITY;
        for (int64_t j = first; j < last; j++) {
            const void *k_row = job->k + (size_t)j * k_cache->nb[2] + (size_t)kv_head * k_cache->nb[1];
            float s = job->k_dot(job->head_dim, k_row, q) * scale;
            if (softcap > 0.0f)
                s = softcap * tanhf(s / softcap);
            scores[j - first] = s;
            max = fmaxf(max, s);
        }
        double sum = 0.0;
        for (int64_t j = first; j < last; j++) {
            float p = expf(scores[j - first] - max);
            sum += p;
            const void *v_row = job->v + (size_t)j * v_cache->nb[2] + (size_t)kv_head * v_cache->nb[1];
            accumulate_row(job, out, p, v_row, job->head_dim);
        }
        float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < job->head_dim; i++)
            out[i] *= inv;
    }
}

strata_status cpu_run_attention(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *q = op->src[0], *k = op->src[1];
    int64_t n_kv = op->params.attention.n_kv;
    strata_status status = cpu_per_thread_reserve(ctx, (size_t)(n_kv > 0 ? n_kv : 1) * sizeof(float), err);
    if (status != STRATA_OK)
        return status;
    attention_job job = {
        .ctx = ctx,
        .op = op,
        .q = cpu_tensor_data(q),
        .out = cpu_tensor_data(op->dst),
        .k = cpu_tensor_data(k),
        .v = cpu_tensor_data(op->src[2]),
        .positions = cpu_tensor_data(op->src[3]),
        .head_dim = q->ne[0],
        .n_heads = q->ne[1],
        .group = q->ne[1] / k->ne[1],
        .k_dot = cpu_kernel_dot(k->dtype, cpu_kernel_choose(k->dtype, ctx->isa)),
        .axpy_f16 = cpu_axpy_f16_scalar,
    };
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (ctx->isa == CPU_ISA_AVX2)
        job.axpy_f16 = cpu_axpy_f16_avx2;
#endif
    int64_t pairs = q->ne[1] * q->ne[2];
    int64_t work_per_pair = 2 * (n_kv > 0 ? n_kv : 1) * q->ne[0];
    int64_t min_pairs = ATTENTION_PARALLEL_MIN_WORK / work_per_pair + 1;
    cpu_parallel_for(ctx->pool, pairs, min_pairs, attention_pairs, &job);
    return STRATA_OK;
}
