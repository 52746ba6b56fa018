/* f32 activation rows -> the 8-bit formats the integer dot products take.
 * Scales are amax / 127 so every quant is in [-127, 127] (never -128), which
 * the AVX2 sign trick relies on. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../../base/quant.h"
#include "cpu_kernels.h"

size_t cpu_act_row_bytes(cpu_act_format fmt, int64_t n)
{
    switch (fmt) {
    case CPU_ACT_F32: return (size_t)n * sizeof(float);
    case CPU_ACT_Q8_0: return (size_t)(n / QK8_0) * sizeof(block_q8_0);
    case CPU_ACT_Q8_1: return (size_t)(n / QK8_1) * sizeof(block_q8_1);
    case CPU_ACT_Q8_K: return (size_t)(n / QK_K) * sizeof(block_q8_K);
    }
    return 0;
}

int64_t cpu_act_scales_stride(int64_t n_tok)
{
    return (n_tok + 3) / 4 * 4;
}

size_t cpu_act_scratch_bytes(cpu_act_format fmt, int64_t n, int64_t n_tok)
{
    if (fmt == CPU_ACT_F32 || n_tok <= 0)
        return 0;
    size_t row = cpu_act_row_bytes(fmt, n);
    if (row != 0 && (size_t)n_tok > (SIZE_MAX - 64) / 2 / row)
        return SIZE_MAX;
    size_t bytes = (size_t)n_tok * row;
    /* the tiled kernels' f32 scales, the token count rounded up to 4: less
     * than the rows take */
    if (fmt == CPU_ACT_Q8_0) /* the scales and the sums of quants */
        bytes += (size_t)(n / QK8_0) * (size_t)cpu_act_scales_stride(n_tok) * (sizeof(float) + sizeof(int32_t));
    if (fmt == CPU_ACT_Q8_K)
        bytes += (size_t)(n / QK_K) * (size_t)cpu_act_scales_stride(n_tok) * sizeof(float);
    return bytes;
}

/* Quantizes 32 values to int8 with scale amax / 127; returns the scale. */
static float quantize_32(const float *x, int8_t *qs, int *sum_out)
{
    float amax = 0.0f;
    for (int i = 0; i < 32; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.0f;
    float inv = cpu_act_scale_inverse(&d);
    int sum = 0;
    for (int i = 0; i < 32; i++) {
        qs[i] = (int8_t)lrintf(x[i] * inv);
        sum += qs[i];
    }
    *sum_out = sum;
    return d;
}

static void quantize_q8_0(const float *x, block_q8_0 *blocks, int64_t n)
{
    for (int64_t b = 0; b < n / QK8_0; b++) {
        int sum;
        float d = quantize_32(x + b * QK8_0, blocks[b].qs, &sum);
        blocks[b].d = f32_to_fp16(d);
    }
}

static void quantize_q8_1(const float *x, block_q8_1 *blocks, int64_t n)
{
    for (int64_t b = 0; b < n / QK8_1; b++) {
        int sum;
        float d = quantize_32(x + b * QK8_1, blocks[b].qs, &sum);
        /* the dot products use the rounded d, so s must be computed from it too */
        uint16_t d16 = f32_to_fp16(d);
        blocks[b].d = d16;
        blocks[b].s = f32_to_fp16(fp16_to_f32(d16) * (float)sum);
    }
}

static void quantize_q8_k(const float *x, block_q8_K *blocks, int64_t n)
{
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float *xb = x + b * QK_K;
        block_q8_K *out = &blocks[b];
        float amax = 0.0f;
        for (int i = 0; i < QK_K; i++)
            amax = fmaxf(amax, fabsf(xb[i]));
        float d = amax / 127.0f;
        float inv = cpu_act_scale_inverse(&d);
        for (int i = 0; i < QK_K; i++)
            out->qs[i] = (int8_t)lrintf(xb[i] * inv);
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++)
                sum += out->qs[g * 16 + i];
            out->bsums[g] = (int16_t)sum;
        }
        out->d = d;
    }
}

void cpu_quantize_activation(cpu_act_format fmt, const float *x, void *dst, int64_t n, cpu_isa isa)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (isa >= CPU_ISA_AVX2) {
        switch (fmt) {
        case CPU_ACT_F32: break;
        case CPU_ACT_Q8_0: cpu_quantize_q8_0_avx2(x, dst, n); return;
        case CPU_ACT_Q8_1: cpu_quantize_q8_1_avx2(x, dst, n); return;
        case CPU_ACT_Q8_K: cpu_quantize_q8_k_avx2(x, dst, n); return;
        }
    }
#else
    (void)isa;
#endif
    switch (fmt) {
    case CPU_ACT_F32: memcpy(dst, x, (size_t)n * sizeof(float)); return;
    case CPU_ACT_Q8_0: quantize_q8_0(x, dst, n); return;
    case CPU_ACT_Q8_1: quantize_q8_1(x, dst, n); return;
    case CPU_ACT_Q8_K: quantize_q8_k(x, dst, n); return;
    }
}
