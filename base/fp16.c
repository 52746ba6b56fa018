/* IEEE binary16 and bfloat16 <-> binary32 conversions in plain C.
 *
 * Written on bit patterns so the result does not depend on the compiler's
 * _Float16 support or on F16C; the CPU backend has its own vector paths. */
#include <stdint.h>
#include <string.h>

#include "quant.h"

static uint32_t f32_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static float f32_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Shifts value right by shift bits (1..31), rounding to nearest, ties to
 * even. */
static uint32_t shift_right_round_even(uint32_t value, unsigned shift)
{
    uint32_t kept = value >> shift;
    uint32_t dropped = value & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (dropped > half || (dropped == half && (kept & 1u)))
        kept++;
    return kept;
}

float fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;

    if (exponent == 0x1f) /* inf or nan; the payload moves to the top bits */
        return f32_from_bits(sign | 0x7f800000u | (mantissa << 13));
    if (exponent != 0) /* normal: rebias 15 -> 127 */
        return f32_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    if (mantissa == 0)
        return f32_from_bits(sign);
    /* subnormal half: mantissa * 2^-24, which is a normal f32; built from
     * bits rather than by a multiply so flush-to-zero modes cannot touch it */
    unsigned leading = 0;
    while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        leading++;
    }
    mantissa &= 0x3ffu;
    return f32_from_bits(sign | ((113u - leading) << 23) | (mantissa << 13));
}

uint16_t f32_to_fp16(float f)
{
    uint32_t bits = f32_bits(f);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t magnitude = bits & 0x7fffffffu;

    if (magnitude > 0x7f800000u) /* nan: keep it quiet and keep the top of the payload */
        return (uint16_t)(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    /* 65520 is halfway between the largest half (65504) and 2^16; ties go to
     * the even neighbour, which is infinity */
    if (magnitude >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (magnitude >= 0x38800000u) /* at least 2^-14: a normal half */
        return (uint16_t)(sign | shift_right_round_even(magnitude - 0x38000000u, 13));
    /* below 2^-14: a subnormal half, in units of 2^-24 (a carry into 0x400
     * gives the smallest normal, which is the right encoding) */
    uint32_t exponent = magnitude >> 23;
    if (exponent < 102) /* below 2^-25: rounds to zero */
        return sign;
    uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | shift_right_round_even(mantissa, 126u - exponent));
}

float bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

uint16_t f32_to_bf16(float f)
{
    uint32_t bits = f32_bits(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) /* nan: truncate and force quiet */
        return (uint16_t)((bits >> 16) | 0x40u);
    /* round to nearest even; a carry out of the mantissa bumps the exponent,
     * and past the largest finite value that gives infinity, as it should */
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}
