/* The portable attention kernels (see cpu_attention.h for the layouts): plain
 * loops in the order the AVX2 ones use, so either path tiles the same way. */
#include <math.h>

#include "../../base/quant.h"
#include "cpu_attention.h"

static void scores_scalar(const float *q, int n_rows, int64_t head_dim, const float *kt, int64_t block, int64_t c0,
                          int64_t c1, float *s)
{
    for (int r = 0; r < n_rows; r++) {
        const float *qr = q + r * head_dim;
        float *sr = s + r * block;
        for (int64_t c = c0; c < c1; c++)
            sr[c] = 0.0f;
        /* dimension-outer, like the vector kernel: each kt row is read in order */
        for (int64_t d = 0; d < head_dim; d++) {
            const float *kd = kt + d * block;
            float qd = qr[d];
            for (int64_t c = c0; c < c1; c++)
                sr[c] += qd * kd[c];
        }
    }
}

static void softcap_scalar(float *x, int64_t n, float cap)
{
    float inv = 1.0f / cap;
    for (int64_t i = 0; i < n; i++)
        x[i] = cap * tanhf(x[i] * inv);
}

static float softmax_step_scalar(float *x, int64_t n, float *max, float *sum)
{
    float m = *max;
    for (int64_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    float alpha = expf(*max - m); /* exp(-inf) = 0 on the first visible block */
    float block_sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m); /* exp(-inf) = 0 for hidden columns */
        block_sum += x[i];
    }
    *sum = *sum * alpha + block_sum;
    *max = m;
    return alpha;
}

static void accumulate_scalar(float *out, const float *alpha, int n_rows, int64_t head_dim, const float *s,
                              int64_t block, const float *v, int64_t c0, int64_t c1)
{
    for (int r = 0; r < n_rows; r++) {
        float *o = out + r * head_dim;
        const float *p = s + r * block;
        for (int64_t d = 0; d < head_dim; d++)
            o[d] *= alpha[r];
        for (int64_t c = c0; c < c1; c++) {
            const float *vc = v + c * head_dim;
            float pc = p[c];
            for (int64_t d = 0; d < head_dim; d++)
                o[d] += pc * vc[d];
        }
    }
}

static void f16_to_f32_scalar(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = fp16_to_f32(src[i]);
}

static void k_columns8_scalar(const char *rows, size_t row_stride, bool f16, int64_t head_dim, float *kt,
                              int64_t block)
{
    for (int i = 0; i < CPU_ATTENTION_KEY_STEP; i++) {
        const char *row = rows + (size_t)i * row_stride;
        for (int64_t d = 0; d < head_dim; d++)
            kt[d * block + i] = f16 ? fp16_to_f32(((const uint16_t *)row)[d]) : ((const float *)row)[d];
    }
}

const cpu_attention_kernels cpu_attention_kernels_scalar = {
    .scores = scores_scalar,
    .softcap = softcap_scalar,
    .softmax_step = softmax_step_scalar,
    .accumulate = accumulate_scalar,
    .f16_to_f32 = f16_to_f32_scalar,
    .k_columns8 = k_columns8_scalar,
};
