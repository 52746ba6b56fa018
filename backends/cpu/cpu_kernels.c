/* The matmul kernel table and the pure choice of an implementation. */
#include "cpu_kernels.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* The AVX2 and AVX-512 kernels exist only in x86 builds. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define AVX2(fn) fn
#else
#define AVX2(fn) NULL
#endif

/* A row with dot products only, one with tiled kernels too, and one with an
 * AVX-512 tile as well. */
#define KERNEL(w, a, dot_scalar, dot_avx2) {.weight = w, .act = a, .scalar = dot_scalar, .avx2 = dot_avx2}
#define TILED(w, a, dot_scalar, dot_avx2, tiled_scalar, tiled_avx2)                                                    \
    {.weight = w, .act = a, .scalar = dot_scalar, .avx2 = dot_avx2, .tile_scalar = tiled_scalar, .tile_avx2 = tiled_avx2}
#define TILED_512(w, a, dot_scalar, dot_avx2, tiled_scalar, tiled_avx2, tiled_avx512)                                  \
    {.weight = w, .act = a, .scalar = dot_scalar, .avx2 = dot_avx2, .tile_scalar = tiled_scalar,                       \
     .tile_avx2 = tiled_avx2, .tile_avx512 = tiled_avx512}
/* ... and an AVX-512 matrix-vector kernel for decode as well */
#define GEMV_512(w, a, dot_scalar, dot_avx2, tiled_scalar, tiled_avx2, tiled_avx512, gemv_512)                         \
    {.weight = w, .act = a, .scalar = dot_scalar, .avx2 = dot_avx2, .tile_scalar = tiled_scalar,                       \
     .tile_avx2 = tiled_avx2, .tile_avx512 = tiled_avx512, .gemv_avx512 = gemv_512}
/* ... with an AVX2 matrix-vector kernel too (either gemv may be NULL) */
#define GEMV_BOTH(w, a, dot_scalar, dot_avx2, tiled_scalar, tiled_avx2, tiled_avx512, gemv_2, gemv_512)                \
    {.weight = w, .act = a, .scalar = dot_scalar, .avx2 = dot_avx2, .tile_scalar = tiled_scalar,                       \
     .tile_avx2 = tiled_avx2, .tile_avx512 = tiled_avx512, .gemv_avx2 = gemv_2, .gemv_avx512 = gemv_512}

/* ... or an AVX-512 machine's own dot product */
#define DOT_512(w, a, dot_scalar, dot_avx2, dot_512)                                                                  \
    {.weight = w, .act = a, .scalar = dot_scalar, .avx2 = dot_avx2, .dot_avx512 = dot_512}

static const cpu_matmul_kernel kernel_table[] = {
    KERNEL(DTYPE_F32, CPU_ACT_F32, cpu_dot_f32_scalar, AVX2(cpu_dot_f32_avx2)),
    KERNEL(DTYPE_F16, CPU_ACT_F32, cpu_dot_f16_scalar, AVX2(cpu_dot_f16_avx2)),
    KERNEL(DTYPE_BF16, CPU_ACT_F32, cpu_dot_bf16_scalar, AVX2(cpu_dot_bf16_avx2)),
    GEMV_BOTH(DTYPE_Q4_0, CPU_ACT_Q8_0, cpu_dot_q4_0_scalar, AVX2(cpu_dot_q4_0_avx2),
              cpu_tile_q4_0_scalar, AVX2(cpu_tile_q4_0_avx2), AVX2(cpu_tile_q4_0_avx512),
              AVX2(cpu_gemv_q4_0_avx2), AVX2(cpu_gemv_q4_0_avx512)),
    KERNEL(DTYPE_Q4_1, CPU_ACT_Q8_1, cpu_dot_q4_1_scalar, AVX2(cpu_dot_q4_1_avx2)),
    TILED_512(DTYPE_Q5_0, CPU_ACT_Q8_0, cpu_dot_q5_0_scalar, AVX2(cpu_dot_q5_0_avx2),
              cpu_tile_q5_0_scalar, AVX2(cpu_tile_q5_0_avx2), AVX2(cpu_tile_q5_0_avx512)),
    KERNEL(DTYPE_Q5_1, CPU_ACT_Q8_1, cpu_dot_q5_1_scalar, AVX2(cpu_dot_q5_1_avx2)),
    GEMV_BOTH(DTYPE_Q8_0, CPU_ACT_Q8_0, cpu_dot_q8_0_scalar, AVX2(cpu_dot_q8_0_avx2),
              cpu_tile_q8_0_scalar, AVX2(cpu_tile_q8_0_avx2), AVX2(cpu_tile_q8_0_avx512),
              AVX2(cpu_gemv_q8_0_avx2), NULL),
    TILED_512(DTYPE_Q2_K, CPU_ACT_Q8_K, cpu_dot_q2_k_scalar, AVX2(cpu_dot_q2_k_avx2),
              cpu_tile_q2_k_scalar, AVX2(cpu_tile_q2_k_avx2), AVX2(cpu_tile_q2_k_avx512)),
    TILED_512(DTYPE_Q3_K, CPU_ACT_Q8_K, cpu_dot_q3_k_scalar, AVX2(cpu_dot_q3_k_avx2),
              cpu_tile_q3_k_scalar, AVX2(cpu_tile_q3_k_avx2), AVX2(cpu_tile_q3_k_avx512)),
    GEMV_512(DTYPE_Q4_K, CPU_ACT_Q8_K, cpu_dot_q4_k_scalar, AVX2(cpu_dot_q4_k_avx2),
              cpu_tile_q4_k_scalar, AVX2(cpu_tile_q4_k_avx2), AVX2(cpu_tile_q4_k_avx512),
              AVX2(cpu_gemv_q4_k_avx512)),
    TILED_512(DTYPE_Q5_K, CPU_ACT_Q8_K, cpu_dot_q5_k_scalar, AVX2(cpu_dot_q5_k_avx2),
              cpu_tile_q5_k_scalar, AVX2(cpu_tile_q5_k_avx2), AVX2(cpu_tile_q5_k_avx512)),
    TILED_512(DTYPE_Q6_K, CPU_ACT_Q8_K, cpu_dot_q6_k_scalar, AVX2(cpu_dot_q6_k_avx2),
              cpu_tile_q6_k_scalar, AVX2(cpu_tile_q6_k_avx2), AVX2(cpu_tile_q6_k_avx512)),
    KERNEL(DTYPE_IQ2_XXS, CPU_ACT_Q8_K, cpu_dot_iq2_xxs_scalar, AVX2(cpu_dot_iq2_xxs_avx2)),
    KERNEL(DTYPE_IQ2_XS, CPU_ACT_Q8_K, cpu_dot_iq2_xs_scalar, AVX2(cpu_dot_iq2_xs_avx2)),
    KERNEL(DTYPE_IQ2_S, CPU_ACT_Q8_K, cpu_dot_iq2_s_scalar, AVX2(cpu_dot_iq2_s_avx2)),
    KERNEL(DTYPE_IQ3_XXS, CPU_ACT_Q8_K, cpu_dot_iq3_xxs_scalar, AVX2(cpu_dot_iq3_xxs_avx2)),
    DOT_512(DTYPE_IQ3_S, CPU_ACT_Q8_K, cpu_dot_iq3_s_scalar, AVX2(cpu_dot_iq3_s_avx2),
            AVX2(cpu_dot_iq3_s_avx2_gather)),
    KERNEL(DTYPE_IQ1_S, CPU_ACT_Q8_K, cpu_dot_iq1_s_scalar, AVX2(cpu_dot_iq1_s_avx2)),
    KERNEL(DTYPE_IQ1_M, CPU_ACT_Q8_K, cpu_dot_iq1_m_scalar, AVX2(cpu_dot_iq1_m_avx2)),
    TILED_512(DTYPE_IQ4_NL, CPU_ACT_Q8_0, cpu_dot_iq4_nl_scalar, AVX2(cpu_dot_iq4_nl_avx2),
              cpu_tile_iq4_nl_scalar, AVX2(cpu_tile_iq4_nl_avx2), AVX2(cpu_tile_iq4_nl_avx512)),
    KERNEL(DTYPE_IQ4_XS, CPU_ACT_Q8_K, cpu_dot_iq4_xs_scalar, AVX2(cpu_dot_iq4_xs_avx2)),
    KERNEL(DTYPE_MXFP4, CPU_ACT_Q8_0, cpu_dot_mxfp4_scalar, AVX2(cpu_dot_mxfp4_avx2)),
    KERNEL(DTYPE_TQ1_0, CPU_ACT_Q8_K, cpu_dot_tq1_0_scalar, AVX2(cpu_dot_tq1_0_avx2)),
    KERNEL(DTYPE_TQ2_0, CPU_ACT_Q8_K, cpu_dot_tq2_0_scalar, AVX2(cpu_dot_tq2_0_avx2)),
};

const cpu_matmul_kernel *cpu_matmul_kernel_find(strata_dtype weight)
{
    for (size_t i = 0; i < sizeof kernel_table / sizeof kernel_table[0]; i++)
        if (kernel_table[i].weight == weight)
            return &kernel_table[i];
    return NULL;
}

cpu_kernel_choice cpu_kernel_choose(strata_dtype weight, cpu_isa isa)
{
    const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(weight);
    if (!kernel)
        return CPU_KERNEL_NONE;
    if (isa >= CPU_ISA_AVX512 && kernel->avx2 && (kernel->tile_avx512 || kernel->gemv_avx512 || kernel->dot_avx512))
        return CPU_KERNEL_AVX512;
    if (isa >= CPU_ISA_AVX2 && kernel->avx2)
        return CPU_KERNEL_AVX2;
    return CPU_KERNEL_SCALAR;
}

cpu_dot_fn cpu_kernel_dot(strata_dtype weight, cpu_kernel_choice choice)
{
    const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(weight);
    if (!kernel)
        return NULL;
    switch (choice) {
    case CPU_KERNEL_SCALAR: return kernel->scalar;
    case CPU_KERNEL_AVX2: return kernel->avx2;
    case CPU_KERNEL_AVX512: /* decode may take gemv_avx512 instead */
        return kernel->dot_avx512 ? kernel->dot_avx512 : kernel->avx2;
    case CPU_KERNEL_NONE: break;
    }
    return NULL;
}

cpu_tile_fn cpu_kernel_tile(strata_dtype weight, cpu_kernel_choice choice)
{
    const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(weight);
    if (!kernel)
        return NULL;
    switch (choice) {
    case CPU_KERNEL_SCALAR: return kernel->tile_scalar;
    case CPU_KERNEL_AVX2: return kernel->tile_avx2;
    case CPU_KERNEL_AVX512: return kernel->tile_avx512 ? kernel->tile_avx512 : kernel->tile_avx2;
    case CPU_KERNEL_NONE: break;
    }
    return NULL;
}

int cpu_kernel_tile_tokens(strata_dtype weight, cpu_kernel_choice choice)
{
    const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(weight);
    if (kernel && choice == CPU_KERNEL_AVX512 && kernel->tile_avx512)
        return CPU_TILE_TOKENS_WIDE;
    if (kernel && choice == CPU_KERNEL_AVX2 && kernel->act == CPU_ACT_Q8_0)
        return CPU_TILE_TOKENS_NARROW;
    return CPU_TILE_TOKENS;
}

cpu_tile_fn cpu_kernel_gemv(strata_dtype weight, cpu_kernel_choice choice)
{
    const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(weight);
    if (!kernel)
        return NULL;
    return choice == CPU_KERNEL_AVX512 ? kernel->gemv_avx512 : choice == CPU_KERNEL_AVX2 ? kernel->gemv_avx2 : NULL;
}

/* An environment variable set to a non-empty value other than "0". */
static bool env_flag(const char *name)
{
    const char *value = getenv(name);
    return value && value[0] && strcmp(value, "0") != 0;
}

cpu_isa cpu_detect_isa(void)
{
    cpu_isa isa = cpu_hardware_isa();
    if (env_flag("STRATA_CPU_SCALAR"))
        return CPU_ISA_SCALAR;
    if (env_flag("STRATA_CPU_AVX2") && isa > CPU_ISA_AVX2)
        return CPU_ISA_AVX2;
    return isa;
}

cpu_isa cpu_hardware_isa(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* cpuid directly rather than __builtin_cpu_supports: clang 14 does not
     * know the "f16c" feature name, and the OS must also save the AVX state
     * (OSXSAVE + XCR0 bits 1 and 2) for the registers to be usable. */
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return CPU_ISA_SCALAR;
    bool has_fma = (ecx >> 12) & 1, has_osxsave = (ecx >> 27) & 1, has_avx = (ecx >> 28) & 1,
         has_f16c = (ecx >> 29) & 1;
    if (!(has_fma && has_osxsave && has_avx && has_f16c))
        return CPU_ISA_SCALAR;
    unsigned int xcr0_low, xcr0_high;
    __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    (void)xcr0_high;
    if ((xcr0_low & 6) != 6)
        return CPU_ISA_SCALAR;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !((ebx >> 5) & 1))
        return CPU_ISA_SCALAR;
    /* AVX-512 F (ebx 16), BW (ebx 30), VL (ebx 31), VNNI (ecx 11), and the
     * OS saving the mask and upper ZMM registers (XCR0 bits 5, 6, 7) */
    bool has_avx512 = ((ebx >> 16) & 1) && ((ebx >> 30) & 1) && ((ebx >> 31) & 1) && ((ecx >> 11) & 1);
    if (has_avx512 && (xcr0_low & 0xE0) == 0xE0)
        return CPU_ISA_AVX512;
    return CPU_ISA_AVX2;
#else
    return CPU_ISA_SCALAR;
#endif
}
