/* OP_KV_STORE and OP_ATTENTION over F16 or F32 caches.
 *
 * Attention runs as tiled work items (cpu_attention.h, cpu_attention_tiled.c)
 * spread over the pool; this file sets the job up. */
#include <string.h>

#include "../../base/quant.h"
#include "cpu_attention.h"
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

/* Items of the tiled attention claimed by one thread. */
typedef struct attention_run {
    cpu_context *ctx;
    const cpu_attention_job *job;
} attention_run;

static void attention_items(void *arg, int64_t begin, int64_t end, int thread_index)
{
    const attention_run *run = arg;
    void *scratch = cpu_per_thread_slice(run->ctx, thread_index);
    for (int64_t item = begin; item < end; item++)
        cpu_attention_run_item(run->job, item, scratch);
}

const cpu_attention_kernels *cpu_attention_kernels_for(cpu_isa isa)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (isa >= CPU_ISA_AVX2) /* AVX-512 machines run the AVX2 attention */
        return &cpu_attention_kernels_avx2;
#endif
    (void)isa;
    return &cpu_attention_kernels_scalar;
}

strata_status cpu_run_attention(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2];
    cpu_attention_job job = {
        .kernels = cpu_attention_kernels_for(ctx->isa),
        .q = cpu_tensor_data(q),
        .out = cpu_tensor_data(op->dst),
        .k = cpu_tensor_data(k),
        .v = cpu_tensor_data(v),
        .k_dtype = k->dtype,
        .v_dtype = v->dtype,
        .k_head_stride = k->nb[1],
        .k_row_stride = k->nb[2],
        .v_head_stride = v->nb[1],
        .v_row_stride = v->nb[2],
        .positions = cpu_tensor_data(op->src[3]),
        .head_dim = q->ne[0],
        .n_heads = q->ne[1],
        .n_kv_heads = k->ne[1],
        .group = q->ne[1] / k->ne[1],
        .n_tok = q->ne[2],
        .n_kv = op->params.attention.n_kv,
        .scale = op->params.attention.scale,
        .softcap = op->params.attention.softcap,
        .window = op->params.attention.sliding_window,
    };
    if (job.n_tok == 0)
        return STRATA_OK;
    job.tiling = cpu_attention_tiling_choose(job.head_dim, job.group, job.n_tok, job.n_kv_heads, ctx->n_threads);
    strata_status status = cpu_per_thread_reserve(ctx, cpu_attention_scratch_bytes(&job.tiling, job.head_dim), err);
    if (status != STRATA_OK)
        return status;
    /* an upper bound of the multiply-adds, to keep tiny ops (decode of a
     * small model early in the context) on the calling thread */
    int64_t items = cpu_attention_item_count(&job);
    int64_t work = 2 * job.n_heads * job.n_tok * (job.n_kv > 0 ? job.n_kv : 1) * job.head_dim;
    attention_run run = {.ctx = ctx, .job = &job};
    cpu_parallel_for(ctx->pool, items, work < ATTENTION_PARALLEL_MIN_WORK ? items : 1, attention_items, &run);
    return STRATA_OK;
}
