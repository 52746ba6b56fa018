/* bfloat16 for the CPU emulation of CUDA (tests/cuda_emulator/), rounding
 * to nearest even through base/fp16.c. C++ only. Not NVIDIA's header. */
#ifndef STRATA_EMU_CUDA_BF16_H
#define STRATA_EMU_CUDA_BF16_H

#include <stdint.h>

extern "C" uint16_t f32_to_bf16(float f);

struct __nv_bfloat16 {
    uint16_t bits;
};

static inline __nv_bfloat16 __float2bfloat16_rn(float f)
{
    return __nv_bfloat16{f32_to_bf16(f)};
}

#endif
