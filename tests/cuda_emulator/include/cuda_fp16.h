/* Half floats for the CPU emulation of CUDA (tests/cuda_emulator/): the
 * types and conversions the kernels use, rounding to nearest even through
 * base/fp16.c. C++ only. Not NVIDIA's header. */
#ifndef STRATA_EMU_CUDA_FP16_H
#define STRATA_EMU_CUDA_FP16_H

#include <stdint.h>

#include "emulator_device.h"

extern "C" float fp16_to_f32(uint16_t h);
extern "C" uint16_t f32_to_fp16(float f);

struct __half {
    uint16_t bits;
};
struct __half2 {
    __half x, y;
};

static inline float __half2float(__half h)
{
    return fp16_to_f32(h.bits);
}
static inline __half __float2half_rn(float f)
{
    return __half{f32_to_fp16(f)};
}
static inline __half __ushort_as_half(uint16_t bits)
{
    return __half{bits};
}
static inline uint16_t __half_as_ushort(__half h)
{
    return h.bits;
}
static inline __half2 __floats2half2_rn(float low, float high)
{
    return __half2{__float2half_rn(low), __float2half_rn(high)};
}
static inline float2 __half22float2(__half2 h)
{
    return float2{__half2float(h.x), __half2float(h.y)};
}

#endif
