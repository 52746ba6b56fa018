/* Matmul kernels of the CPU backend: one table row per weight dtype naming the
 * activation format its dot product wants and the dot products available
 * (scalar always, AVX2 for the hot formats). supports(), dispatch and the
 * tests all read this table, so op support is written once. */
#ifndef STRATA_CPU_KERNELS_H
#define STRATA_CPU_KERNELS_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../base/dtype.h"
#include "cpu_tile.h"

/* What the f32 activation row is turned into before the dot products. */
typedef enum cpu_act_format {
    CPU_ACT_F32,  /* used as is: F32, F16, BF16 weights */
    CPU_ACT_Q8_0, /* Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4 weights */
    CPU_ACT_Q8_1, /* Q4_1, Q5_1 weights (carries d * sum(qs) for the offset) */
    CPU_ACT_Q8_K, /* Q2_K .. Q6_K, the 256-element i-quants, TQ1_0, TQ2_0 weights */
} cpu_act_format;

/* Instruction sets a kernel may need, each a superset of the one before. */
typedef enum cpu_isa {
    CPU_ISA_SCALAR,
    CPU_ISA_AVX2,   /* with FMA and F16C */
    CPU_ISA_AVX512, /* AVX2's set plus AVX-512 F, BW, VL and VNNI */
} cpu_isa;

/* Which implementation runs a weight dtype's matmul. CPU_KERNEL_AVX512 is
 * chosen where the dtype has any AVX-512 kernel; the kernel it lacks (the
 * dot product, say, where only the tile has one) is then the AVX2 one. */
typedef enum cpu_kernel_choice {
    CPU_KERNEL_NONE,   /* dtype not supported as a matmul weight */
    CPU_KERNEL_SCALAR,
    CPU_KERNEL_AVX2,
    CPU_KERNEL_AVX512,
} cpu_kernel_choice;

/* sum_i w[i] * a[i] over n elements (a multiple of the weight's block size);
 * weight_row is n elements of the weight dtype, act_row the same n elements
 * in the table's activation format. */
typedef float (*cpu_dot_fn)(int64_t n, const void *weight_row, const void *act_row);

typedef struct cpu_matmul_kernel {
    strata_dtype weight;
    cpu_act_format act;
    cpu_dot_fn scalar;
    cpu_dot_fn avx2; /* NULL when there is no AVX2 version */
    /* tiled kernels for batch > 1 (cpu_tile.h), NULL where there are none:
     * the matmul then runs the dot product per (row, token) */
    cpu_tile_fn tile_scalar;
    cpu_tile_fn tile_avx2;
    cpu_tile_fn tile_avx512; /* NULL where AVX-512 did not measure faster */
    /* matrix-vector kernels for one token (decode) in place of the dot
     * product where AVX2, or AVX-512, is chosen; NULL where there is none
     * (an AVX-512 choice does not fall back to gemv_avx2: the dot products
     * measured faster there for the formats that lack an AVX-512 one) */
    cpu_tile_fn gemv_avx2;
    cpu_tile_fn gemv_avx512;
    /* a dot product in place of the AVX2 one where AVX-512 is chosen (it may
     * use AVX2 instructions only, such as gathers, which are fast on the
     * CPUs that have AVX-512 and slow on older ones); NULL where there is none */
    cpu_dot_fn dot_avx512;
} cpu_matmul_kernel;

/* The table row of a weight dtype, or NULL when it cannot be a matmul weight. */
const cpu_matmul_kernel *cpu_matmul_kernel_find(strata_dtype weight);

/* Pure: the implementation to use for weight on a CPU offering isa. */
cpu_kernel_choice cpu_kernel_choose(strata_dtype weight, cpu_isa isa);

/* The dot product named by a choice (NULL for CPU_KERNEL_NONE). */
cpu_dot_fn cpu_kernel_dot(strata_dtype weight, cpu_kernel_choice choice);

/* The tiled kernel named by a choice, or NULL where the dtype has none for
 * that implementation (choose the dot product with the same choice, so a
 * forced scalar path stays scalar in both). */
cpu_tile_fn cpu_kernel_tile(strata_dtype weight, cpu_kernel_choice choice);

/* The most tokens one call of that tiled kernel takes: CPU_TILE_TOKENS_WIDE
 * for the AVX-512 tiles, CPU_TILE_TOKENS_NARROW for the AVX2 tiles of the
 * 32-element formats, else CPU_TILE_TOKENS. */
int cpu_kernel_tile_tokens(strata_dtype weight, cpu_kernel_choice choice);

/* The matrix-vector kernel (one token, cpu_tile.h) named by a choice, or
 * NULL where the matmul should run the dot product of that choice per row. */
cpu_tile_fn cpu_kernel_gemv(strata_dtype weight, cpu_kernel_choice choice);

/* The best instruction set this CPU (and its OS) offers, from cpuid alone. */
cpu_isa cpu_hardware_isa(void);

/* cpu_hardware_isa() capped by the environment, for tests and for
 * comparing: STRATA_CPU_SCALAR set to a non-empty value other than "0"
 * forces the scalar kernels, STRATA_CPU_AVX2 likewise forces the AVX2 ones
 * where AVX-512 is present (STRATA_CPU_SCALAR wins when both are set). */
cpu_isa cpu_detect_isa(void);

/* Bytes of one activation row of n elements in format fmt; n must be a
 * multiple of the format's block (32, or 256 for Q8_K). */
size_t cpu_act_row_bytes(cpu_act_format fmt, int64_t n);

/* Bytes a matmul's activation scratch takes for n_tok rows of n elements:
 * the rows in format fmt, and for Q8_0 and Q8_K each block's scale once more
 * as f32 (the tiled kernels' act_scales, block-major with
 * cpu_act_scales_stride floats per block), for Q8_0 also each block's sum
 * of quants (act_sums, laid out the same). SIZE_MAX when that overflows.
 * Pure: the planner's workspace bound uses it too. */
size_t cpu_act_scratch_bytes(cpu_act_format fmt, int64_t n, int64_t n_tok);

/* Floats per block in those scales: n_tok rounded up to a multiple of 4, so
 * a kernel may read a block's scales four tokens at a time. */
int64_t cpu_act_scales_stride(int64_t n_tok);

/* Converts n f32 values into one activation row of format fmt at dst
 * (cpu_act_row_bytes(fmt, n) bytes). */
void cpu_quantize_activation(cpu_act_format fmt, const float *x, void *dst, int64_t n, cpu_isa isa);

/* The reciprocal of an activation block's scale d = amax / 127, or 0 where
 * d is 0 or so small (amax below about 4e-37) that 1 / d overflows: such a
 * block becomes zeros and *d is set to 0 (x * inf would round to no valid
 * quant). Shared by the scalar and AVX2 quantizers so their bytes agree. */
static inline float cpu_act_scale_inverse(float *d)
{
    float inv = *d != 0.0f ? 1.0f / *d : 0.0f;
    if (isinf(inv)) {
        *d = 0.0f;
        inv = 0.0f;
    }
    return inv;
}

/* The AVX2 quantizers cpu_quantize_activation runs where isa allows
 * (cpu_quantize_avx2.c, x86 builds only): the same bytes as the scalar
 * ones for finite input. */
void cpu_quantize_q8_0_avx2(const float *x, void *dst, int64_t n);
void cpu_quantize_q8_1_avx2(const float *x, void *dst, int64_t n);
void cpu_quantize_q8_k_avx2(const float *x, void *dst, int64_t n);

/* --- the dot products (cpu_dot_scalar*.c, cpu_dot_avx2*.c) ---------------- */
float cpu_dot_f32_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_f16_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_bf16_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_q4_0_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_q4_1_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_q5_0_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_q5_1_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_q8_0_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_q2_k_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_q3_k_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_q4_k_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_q5_k_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_q6_k_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_iq2_xxs_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_iq2_xs_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_iq2_s_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_iq3_xxs_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_iq3_s_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_iq1_s_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_iq1_m_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_iq4_nl_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_iq4_xs_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_mxfp4_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_tq1_0_scalar(int64_t n, const void *w, const void *a);
float cpu_dot_tq2_0_scalar(int64_t n, const void *w, const void *a);

float cpu_dot_f32_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_f16_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_bf16_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_q4_0_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_q4_1_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_q5_0_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_q5_1_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_q8_0_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_q4_k_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_q6_k_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_q5_k_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_q3_k_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_q2_k_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_iq2_xxs_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_iq2_xs_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_iq2_s_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_iq3_xxs_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_iq3_s_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_iq3_s_avx2_gather(int64_t n, const void *w, const void *a);
float cpu_dot_iq1_s_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_iq1_m_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_iq4_nl_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_iq4_xs_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_mxfp4_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_tq1_0_avx2(int64_t n, const void *w, const void *a);
float cpu_dot_tq2_0_avx2(int64_t n, const void *w, const void *a);

#endif
