/* OP_GET_ROWS (embedding lookup from any weight dtype) and OP_COPY (F32, F16,
 * BF16 conversions with any strides). */
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "../../base/quant.h"
#include "cpu_internal.h"

#define GET_ROWS_PARALLEL_MIN_ELEMENTS 65536

typedef struct get_rows_job {
    const strata_tensor *table;
    const char *table_data;
    const int32_t *ids;
    float *dst;
    atomic_int failed; /* a strata_status, STRATA_OK while all is well */
} get_rows_job;

static void get_rows_range(void *arg, int64_t begin, int64_t end, int thread_index)
{
    (void)thread_index;
    get_rows_job *job = arg;
    int64_t n = job->table->ne[0];
    for (int64_t r = begin; r < end; r++) {
        const void *row = job->table_data + (size_t)job->ids[r] * job->table->nb[1];
        float *out = job->dst + r * n;
        if (job->table->dtype == DTYPE_F32) {
            memcpy(out, row, (size_t)n * sizeof(float));
            continue;
        }
        strata_status status = quant_dequantize_row(job->table->dtype, row, out, n, NULL);
        if (status != STRATA_OK)
            atomic_store(&job->failed, (int)status);
    }
}

strata_status cpu_run_get_rows(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *table = op->src[0], *ids = op->src[1];
    get_rows_job job = {
        .table = table,
        .table_data = cpu_tensor_data(table),
        .ids = cpu_tensor_data(ids),
        .dst = cpu_tensor_data(op->dst),
    };
    atomic_init(&job.failed, STRATA_OK);
    int64_t n_rows = ids->ne[0], n_vocab = table->ne[1];
    for (int64_t r = 0; r < n_rows; r++)
        if (job.ids[r] < 0 || job.ids[r] >= n_vocab)
            return strata_fail(err, STRATA_INVALID_INPUT, "cpu get_rows: row id %d (entry %lld) is outside [0, %lld)",
                               job.ids[r], (long long)r, (long long)n_vocab);
    int64_t min_rows = table->ne[0] > 0 ? GET_ROWS_PARALLEL_MIN_ELEMENTS / table->ne[0] + 1 : n_rows;
    cpu_parallel_for(ctx->pool, n_rows, min_rows, get_rows_range, &job);
    int failed = atomic_load(&job.failed);
    if (failed != STRATA_OK)
        return strata_fail(err, (strata_status)failed, "cpu get_rows: cannot dequantize %s rows of %s",
                           dtype_name(table->dtype), table->name ? table->name : "src0");
    return STRATA_OK;
}

static float load_element(const void *p, strata_dtype dtype)
{
    uint16_t bits;
    switch (dtype) {
    case DTYPE_F16: memcpy(&bits, p, sizeof bits); return fp16_to_f32(bits);
    case DTYPE_BF16: memcpy(&bits, p, sizeof bits); return bf16_to_f32(bits);
    default: {
        float value;
        memcpy(&value, p, sizeof value);
        return value;
    }
    }
}

static void store_element(void *p, strata_dtype dtype, float value)
{
    uint16_t bits;
    switch (dtype) {
    case DTYPE_F16: bits = f32_to_fp16(value); memcpy(p, &bits, sizeof bits); return;
    case DTYPE_BF16: bits = f32_to_bf16(value); memcpy(p, &bits, sizeof bits); return;
    default: memcpy(p, &value, sizeof value); return;
    }
}

strata_status cpu_run_copy(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)ctx;
    (void)err;
    const strata_tensor *src = op->src[0], *dst = op->dst;
    const char *src_data = cpu_tensor_data(src);
    char *dst_data = cpu_tensor_data(dst);
    bool same_shape = true;
    for (int d = 0; d < STRATA_MAX_DIMS; d++)
        same_shape = same_shape && src->ne[d] == dst->ne[d];
    if (!same_shape) { /* a reshape of contiguous tensors: one flat run */
        int64_t n = tensor_element_count(src);
        size_t src_step = src->nb[0], dst_step = dst->nb[0];
        for (int64_t i = 0; i < n; i++)
            store_element(dst_data + (size_t)i * dst_step, dst->dtype, load_element(src_data + (size_t)i * src_step, src->dtype));
        return STRATA_OK;
    }
    for (int64_t i3 = 0; i3 < src->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < src->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < src->ne[1]; i1++) {
                const char *s = src_data + i3 * src->nb[3] + i2 * src->nb[2] + i1 * src->nb[1];
                char *d = dst_data + i3 * dst->nb[3] + i2 * dst->nb[2] + i1 * dst->nb[1];
                if (src->dtype == dst->dtype && src->nb[0] == dst->nb[0] &&
                    src->nb[0] == (src->dtype == DTYPE_F32 ? 4u : 2u)) {
                    memcpy(d, s, (size_t)src->ne[0] * src->nb[0]);
                    continue;
                }
                for (int64_t i0 = 0; i0 < src->ne[0]; i0++)
                    store_element(d + i0 * dst->nb[0], dst->dtype, load_element(s + i0 * src->nb[0], src->dtype));
            }
    return STRATA_OK;
}
