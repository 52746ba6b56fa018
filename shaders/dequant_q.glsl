// The 32-element block formats (base/quant.c): Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0. Four units per block. In the 4- and 5-bit formats byte j of qs holds
// element j in its low nibble and element j + 16 in its high nibble, so unit
// u takes qs bytes 4u .. 4u+3: elements 4u + i (low nibbles, lo) and
// 16 + 4u + i (high nibbles, hi). Bit j of the little-endian 32-bit qh is the
// fifth bit of element j. In Q8_0 unit u is elements 8u .. 8u+7.
#define BLOCK_ELEMS 32u
#define UNITS_PER_BLOCK 4u
#define WEIGHT_IS_FLOAT 0

#if defined(WEIGHT_TYPE_Q4_0)
#define BLOCK_BYTES 18u // d, qs[16]
#elif defined(WEIGHT_TYPE_Q4_1)
#define BLOCK_BYTES 20u // d, m, qs[16]
#elif defined(WEIGHT_TYPE_Q5_0)
#define BLOCK_BYTES 22u // d, qh[4], qs[16]
#elif defined(WEIGHT_TYPE_Q5_1)
#define BLOCK_BYTES 24u // d, m, qh[4], qs[16]
#else
#define BLOCK_BYTES 34u // Q8_0: d, qs[32] (int8)
#endif

uvec2 unit_bases(uint unit)
{
#if defined(WEIGHT_TYPE_Q8_0)
    return uvec2(8u * unit, 8u * unit + 4u);
#else
    return uvec2(4u * unit, 16u + 4u * unit);
#endif
}

#if defined(WEIGHT_TYPE_Q5_0) || defined(WEIGHT_TYPE_Q5_1)
// The fifth bits of elements first .. first+3, as 16 or 0.
vec4 fifth_bits(uint qh, uint first)
{
    return vec4(((uvec4(qh) >> (uvec4(0u, 1u, 2u, 3u) + first)) & 1u) << 4);
}
#endif

void dequant_unit(uint block_byte, uint unit, uint elems_left, out vec4 lo, out vec4 hi)
{
    const float d = read_f16(block_byte);
#if defined(WEIGHT_TYPE_Q8_0)
    precise vec4 lo_value = signed_bytes_of(read_u32(block_byte + 2u + 8u * unit)) * d;
    precise vec4 hi_value = signed_bytes_of(read_u32(block_byte + 6u + 8u * unit)) * d;
#else
#if defined(WEIGHT_TYPE_Q4_0)
    const uint qs = read_u32(block_byte + 2u + 4u * unit);
#elif defined(WEIGHT_TYPE_Q4_1)
    const float m = read_f16(block_byte + 2u);
    const uint qs = read_u32(block_byte + 4u + 4u * unit);
#elif defined(WEIGHT_TYPE_Q5_0)
    const uint qh = read_u32(block_byte + 2u);
    const uint qs = read_u32(block_byte + 6u + 4u * unit);
#else // Q5_1
    const float m = read_f16(block_byte + 2u);
    const uint qh = read_u32(block_byte + 4u);
    const uint qs = read_u32(block_byte + 8u + 4u * unit);
#endif
    vec4 lo_q = vec4(bytes_of(qs) & 0x0fu);
    vec4 hi_q = vec4(bytes_of(qs) >> 4);
#if defined(WEIGHT_TYPE_Q5_0) || defined(WEIGHT_TYPE_Q5_1)
    lo_q += fifth_bits(qh, 4u * unit);
    hi_q += fifth_bits(qh, 16u + 4u * unit);
#endif
#if defined(WEIGHT_TYPE_Q4_0)
    precise vec4 lo_value = (lo_q - 8.0) * d;
    precise vec4 hi_value = (hi_q - 8.0) * d;
#elif defined(WEIGHT_TYPE_Q5_0)
    precise vec4 lo_value = (lo_q - 16.0) * d;
    precise vec4 hi_value = (hi_q - 16.0) * d;
#else // Q4_1, Q5_1: q * d + m, rounded after the product as on the CPU
    precise vec4 lo_value = lo_q * d + m;
    precise vec4 hi_value = hi_q * d + m;
#endif
#endif
    lo = lo_value;
    hi = hi_value;
}
