/* The matmul kernel table and the pure choice of an implementation. */
#include "cpu_kernels.h"

#include <stdlib.h>
#include <string.h>

/* The AVX2 dot products exist only in x86 builds. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define AVX2(fn) fn
#else
#define AVX2(fn) NULL
#endif

static const cpu_matmul_kernel kernel_table[] = {
    {DTYPE_F32, CPU_ACT_F32, cpu_dot_f32_scalar, AVX2(cpu_dot_f32_avx2)},
    {DTYPE_F16, CPU_ACT_F32, cpu_dot_f16_scalar, AVX2(cpu_dot_f16_avx2)},
    {DTYPE_BF16, CPU_ACT_F32, cpu_dot_bf16_scalar, AVX2(cpu_dot_bf16_avx2)},
    {DTYPE_Q4_0, CPU_ACT_Q8_0, cpu_dot_q4_0_scalar, AVX2(cpu_dot_q4_0_avx2)},
    {DTYPE_Q4_1, CPU_ACT_Q8_1, cpu_dot_q4_1_scalar, NULL},
    {DTYPE_Q5_0, CPU_ACT_Q8_0, cpu_dot_q5_0_scalar, NULL},
    {DTYPE_Q5_1, CPU_ACT_Q8_1, cpu_dot_q5_1_scalar, NULL},
    {DTYPE_Q8_0, CPU_ACT_Q8_0, cpu_dot_q8_0_scalar, AVX2(cpu_dot_q8_0_avx2)},
    {DTYPE_Q2_K, CPU_ACT_Q8_K, cpu_dot_q2_k_scalar, NULL},
    {DTYPE_Q3_K, CPU_ACT_Q8_K, cpu_dot_q3_k_scalar, NULL},
    {DTYPE_Q4_K, CPU_ACT_Q8_K, cpu_dot_q4_k_scalar, AVX2(cpu_dot_q4_k_avx2)},
    {DTYPE_Q5_K, CPU_ACT_Q8_K, cpu_dot_q5_k_scalar, NULL},
    {DTYPE_Q6_K, CPU_ACT_Q8_K, cpu_dot_q6_k_scalar, AVX2(cpu_dot_q6_k_avx2)},
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
    if (isa == CPU_ISA_AVX2 && kernel->avx2)
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
    case CPU_KERNEL_NONE: break;
    }
    return NULL;
}

cpu_isa cpu_detect_isa(void)
{
    const char *force_scalar = getenv("STRATA_CPU_SCALAR");
    if (force_scalar && force_scalar[0] && strcmp(force_scalar, "0") != 0)
        return CPU_ISA_SCALAR;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return CPU_ISA_AVX2;
#endif
    return CPU_ISA_SCALAR;
}
