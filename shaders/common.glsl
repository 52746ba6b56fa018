// Helpers shared by the shaders: the flat workgroup index of a 2-D grid, and
// exact f16/bf16 <-> f32 conversions written on bit patterns (round to nearest
// even, as the CPU backend does), so results do not depend on the driver's
// packHalf2x16 rounding or its denormal handling.
#ifndef STRATA_COMMON_GLSL
#define STRATA_COMMON_GLSL

// Workgroups are laid out over x (at most 65535) then y.
uint flat_group()
{
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

uint shift_right_round_even(uint value, uint shift)
{
    uint kept = value >> shift;
    uint dropped = value & ((1u << shift) - 1u);
    uint half_point = 1u << (shift - 1u);
    if (dropped > half_point || (dropped == half_point && (kept & 1u) != 0u))
        kept++;
    return kept;
}

float f16_bits_to_float(uint h)
{
    uint sign = (h & 0x8000u) << 16;
    uint exponent = (h >> 10) & 0x1fu;
    uint mantissa = h & 0x3ffu;
    if (exponent == 0x1fu)
        return uintBitsToFloat(sign | 0x7f800000u | (mantissa << 13));
    if (exponent != 0u)
        return uintBitsToFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    float value = float(mantissa) * (1.0 / 16777216.0); // subnormal: exact in f32
    return sign != 0u ? -value : value;
}

uint float_to_f16_bits(float f)
{
    uint bits = floatBitsToUint(f);
    uint sign = (bits >> 16) & 0x8000u;
    uint magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u)
        return sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu);
    if (magnitude >= 0x477ff000u)
        return sign | 0x7c00u;
    if (magnitude >= 0x38800000u)
        return sign | shift_right_round_even(magnitude - 0x38000000u, 13u);
    uint exponent = magnitude >> 23;
    if (exponent < 102u)
        return sign;
    uint mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    return sign | shift_right_round_even(mantissa, 126u - exponent);
}

float bf16_bits_to_float(uint h)
{
    return uintBitsToFloat(h << 16);
}

uint float_to_bf16_bits(float f)
{
    uint bits = floatBitsToUint(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return ((bits >> 16) | 0x40u) & 0xffffu;
    return ((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16) & 0xffffu;
}

// The 16-bit element e of a buffer viewed as 32-bit words (little endian).
#define LOAD_U16(words, e) ((((e) & 1u) != 0u) ? ((words)[(e) >> 1] >> 16) : ((words)[(e) >> 1] & 0xffffu))

// Writes the 16-bit element e without touching its neighbour in the same
// word: two atomics on disjoint halves, so no 16-bit storage feature is needed
// and neighbouring elements written by other invocations stay intact.
#define STORE_U16(words, e, bits)                                              \
    {                                                                          \
        uint store_shift_ = ((e) & 1u) * 16u;                                  \
        atomicAnd((words)[(e) >> 1], ~(0xffffu << store_shift_));              \
        atomicOr((words)[(e) >> 1], ((bits) & 0xffffu) << store_shift_);       \
    }

#endif
