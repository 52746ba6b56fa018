/* Element-wise and row-wise float ops: add, mul, scale, swiglu, geglu,
 * rms_norm, softmax, argmax. Inputs were checked (F32, contiguous, shapes);
 * dst may be src0 itself. Small ops run on the calling thread; large ones
 * split rows or elements over the pool. */
#include <math.h>

#include "cpu_internal.h"

/* Below this many elements the fork-join costs more than the work. */
#define PARALLEL_MIN_ELEMENTS 65536

typedef enum elementwise_kind { EW_ADD, EW_MUL, EW_SCALE, EW_SWIGLU, EW_GEGLU } elementwise_kind;

typedef struct elementwise_job {
    elementwise_kind kind;
    float *dst;
    const float *a;
    const float *b;
    int64_t b_period; /* b repeats every b_period elements (broadcast row) */
    float value;
} elementwise_job;

static float gelu_tanh(float x)
{
    const float sqrt_2_over_pi = 0.7978845608028654f;
    return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * (x + 0.044715f * x * x * x)));
}

static void elementwise_range(void *arg, int64_t begin, int64_t end, int thread_index)
{
    (void)thread_index;
    const elementwise_job *job = arg;
    float *dst = job->dst;
    const float *a = job->a, *b = job->b;
    switch (job->kind) {
    case EW_ADD:
        for (int64_t i = begin; i < end; i++)
            dst[i] = a[i] + b[i % job->b_period];
        break;
    case EW_MUL:
        for (int64_t i = begin; i < end; i++)
            dst[i] = a[i] * b[i % job->b_period];
        break;
    case EW_SCALE:
        for (int64_t i = begin; i < end; i++)
            dst[i] = a[i] * job->value;
        break;
    case EW_SWIGLU:
        for (int64_t i = begin; i < end; i++)
            dst[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
        break;
    case EW_GEGLU:
        for (int64_t i = begin; i < end; i++)
            dst[i] = gelu_tanh(a[i]) * b[i];
        break;
    }
}

static strata_status run_elementwise(cpu_context *ctx, const backend_op *op, elementwise_kind kind)
{
    elementwise_job job = {
        .kind = kind,
        .dst = cpu_tensor_data(op->dst),
        .a = cpu_tensor_data(op->src[0]),
        .b = op->src[1] ? cpu_tensor_data(op->src[1]) : NULL,
        .value = op->params.scale.value,
    };
    int64_t n = tensor_element_count(op->src[0]);
    job.b_period = op->src[1] ? tensor_element_count(op->src[1]) : 1;
    if (job.b_period == 0)
        return STRATA_OK; /* nothing to do: n is 0 too */
    cpu_parallel_for(ctx->pool, n, PARALLEL_MIN_ELEMENTS, elementwise_range, &job);
    return STRATA_OK;
}

strata_status cpu_run_add(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)err;
    return run_elementwise(ctx, op, EW_ADD);
}

strata_status cpu_run_mul(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)err;
    return run_elementwise(ctx, op, EW_MUL);
}

strata_status cpu_run_scale(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)err;
    return run_elementwise(ctx, op, EW_SCALE);
}

strata_status cpu_run_swiglu(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)err;
    return run_elementwise(ctx, op, EW_SWIGLU);
}

strata_status cpu_run_geglu(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)err;
    return run_elementwise(ctx, op, EW_GEGLU);
}

/* --- row-wise ops ------------------------------------------------------------ */

typedef struct rows_job {
    const backend_op *op;
    const float *src;
    float *dst;
    const float *weight; /* rms_norm's optional multiplier */
    int32_t *indices;    /* argmax output */
    int64_t n;           /* elements per row */
} rows_job;

static void rms_norm_rows(void *arg, int64_t begin, int64_t end, int thread_index)
{
    (void)thread_index;
    const rows_job *job = arg;
    for (int64_t r = begin; r < end; r++) {
        const float *x = job->src + r * job->n;
        float *y = job->dst + r * job->n;
        double sum_squares = 0.0;
        for (int64_t i = 0; i < job->n; i++)
            sum_squares += (double)x[i] * x[i];
        float inv = 1.0f / sqrtf((float)(sum_squares / (double)job->n) + job->op->params.rms_norm.eps);
        if (job->weight)
            for (int64_t i = 0; i < job->n; i++)
                y[i] = x[i] * inv * job->weight[i];
        else
            for (int64_t i = 0; i < job->n; i++)
                y[i] = x[i] * inv;
    }
}

static void softmax_rows(void *arg, int64_t begin, int64_t end, int thread_index)
{
    (void)thread_index;
    const rows_job *job = arg;
    for (int64_t r = begin; r < end; r++) {
        const float *x = job->src + r * job->n;
        float *y = job->dst + r * job->n;
        float max = -INFINITY;
        for (int64_t i = 0; i < job->n; i++)
            max = fmaxf(max, x[i]);
        double sum = 0.0;
        for (int64_t i = 0; i < job->n; i++) {
            y[i] = expf(x[i] - max);
            sum += y[i];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < job->n; i++)
            y[i] *= inv;
    }
}

static void argmax_rows(void *arg, int64_t begin, int64_t end, int thread_index)
{
    (void)thread_index;
    const rows_job *job = arg;
    for (int64_t r = begin; r < end; r++) {
        const float *x = job->src + r * job->n;
        int64_t best = 0;
        for (int64_t i = 1; i < job->n; i++)
            if (x[i] > x[best]) /* strictly greater: the lowest index wins ties */
                best = i;
        job->indices[r] = (int32_t)best;
    }
}

static void run_rows(cpu_context *ctx, rows_job *job, cpu_range_fn fn)
{
    const strata_tensor *src = job->op->src[0];
    job->n = src->ne[0];
    job->src = cpu_tensor_data(src);
    int64_t rows = tensor_row_count(src);
    int64_t min_rows = job->n > 0 ? PARALLEL_MIN_ELEMENTS / job->n + 1 : rows;
    cpu_parallel_for(ctx->pool, rows, min_rows, fn, job);
}

strata_status cpu_run_rms_norm(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)err;
    rows_job job = {.op = op, .dst = cpu_tensor_data(op->dst)};
    job.weight = op->src[1] ? cpu_tensor_data(op->src[1]) : NULL;
    run_rows(ctx, &job, rms_norm_rows);
    return STRATA_OK;
}

strata_status cpu_run_softmax(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)err;
    rows_job job = {.op = op, .dst = cpu_tensor_data(op->dst)};
    run_rows(ctx, &job, softmax_rows);
    return STRATA_OK;
}

strata_status cpu_run_argmax(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)err;
    rows_job job = {.op = op, .indices = cpu_tensor_data(op->dst)};
    run_rows(ctx, &job, argmax_rows);
    return STRATA_OK;
}
