// The low-bit formats without a grid (base/quant_lowbit.c): IQ4_NL,
// IQ4_XS and MXFP4 (4-bit indices into a table of 16 levels) and the
// ternary TQ1_0 and TQ2_0. Unit layouts, e the element index in the block:
//
// IQ4_NL, MXFP4: 32 elements, 4 units; byte j of qs holds element j (low
//   nibble) and j + 16 (high), so unit u takes qs bytes 4u .. 4u+3: elements
//   4u + i (lo) and 16 + 4u + i (hi), as Q4_0.
// IQ4_XS: 256 elements in 8 groups of 32 laid out as IQ4_NL's; unit
//   u = 4 ib + k takes bytes 16 ib + 4k .. +3 of qs: elements 32 ib + 4k + i
//   (lo) and 32 ib + 16 + 4k + i (hi).
// TQ2_0: element 128 h + 32 l + m is bits 2l .. 2l+1 of qs[32 h + m], the same
//   arrangement as Q2_K's quants (and the same units: dequant_k.glsl).
// TQ1_0: element 32 n + m (n < 5) is trit n of qs[m]; 160 + 16 n + m trit n
//   of qs[32 + m]; 240 + 4 n + m trit n of qh[m]. Four consecutive elements
//   starting at a multiple of 4 are always the same trit of four consecutive
//   bytes, so unit u is elements 8u .. 8u+7, two such quads.
//
// MXFP4 blocks are 17 bytes: a block (and a row) may start at an odd byte,
// so its reads go through read_u32_any.
#define WEIGHT_IS_FLOAT 0

#if defined(WEIGHT_TYPE_IQ4_NL)
#define BLOCK_ELEMS 32u
#define BLOCK_BYTES 18u // d, qs[16]
#elif defined(WEIGHT_TYPE_MXFP4)
#define BLOCK_ELEMS 32u
#define BLOCK_BYTES 17u // e (e8m0), qs[16]
#elif defined(WEIGHT_TYPE_IQ4_XS)
#define BLOCK_ELEMS 256u
#define BLOCK_BYTES 136u // d, scales_h (uint16), scales_l[4], qs[128]
#elif defined(WEIGHT_TYPE_TQ2_0)
#define BLOCK_ELEMS 256u
#define BLOCK_BYTES 66u // qs[64], d
#else // TQ1_0
#define BLOCK_ELEMS 256u
#define BLOCK_BYTES 54u // qs[48], qh[4], d
#endif
#define UNITS_PER_BLOCK (BLOCK_ELEMS / 8u)

#if defined(WEIGHT_TYPE_IQ4_NL) || defined(WEIGHT_TYPE_IQ4_XS) || defined(WEIGHT_TYPE_MXFP4)
// binding 3: the format's 16 levels as int32, from the tables of
// base/quant_iq_grids.c (backends/vulkan/vulkan_lowbit_tables.c)
layout(set = 0, binding = LOWBIT_TABLES_BINDING) readonly buffer LowbitTables { int lowbit_levels[]; };

vec4 levels_of(uvec4 nibbles)
{
    return vec4(lowbit_levels[nibbles.x], lowbit_levels[nibbles.y], lowbit_levels[nibbles.z],
                lowbit_levels[nibbles.w]);
}
#endif

uvec2 unit_bases(uint unit)
{
#if defined(WEIGHT_TYPE_IQ4_NL) || defined(WEIGHT_TYPE_MXFP4)
    return uvec2(4u * unit, 16u + 4u * unit);
#elif defined(WEIGHT_TYPE_IQ4_XS)
    const uint first = 32u * (unit >> 2) + 4u * (unit & 3u);
    return uvec2(first, first + 16u);
#elif defined(WEIGHT_TYPE_TQ2_0) // rows l = 2lp and 2lp + 1 of a half
    const uint first = 128u * (unit >> 4) + 64u * ((unit >> 3) & 1u) + 4u * (unit & 7u);
    return uvec2(first, first + 32u);
#else
    return uvec2(8u * unit, 8u * unit + 4u);
#endif
}

#if defined(WEIGHT_TYPE_MXFP4)
// Four bytes from any byte offset (lowest first). When the offset is not a
// multiple of 4 the bytes straddle two words, both inside the binding (its
// range covers whole words of the data).
uint read_u32_any(uint byte_offset)
{
    const uint shift = (byte_offset & 3u) * 8u;
    const uint word = byte_offset >> 2;
    if (shift == 0u)
        return weight_words[word];
    return (weight_words[word] >> shift) | (weight_words[word + 1u] << (32u - shift));
}

// The MXFP4 scale of exponent byte e, halved (the level table is doubled):
// 2^(e - 128), as quant_e8m0_to_f32_half builds it. Below e = 2 it is a
// subnormal float, which a device that flushes denormals reads as 0.
float e8m0_half(uint e)
{
    return uintBitsToFloat(e < 2u ? 0x00200000u << e : (e - 1u) << 23);
}
#endif


#if defined(WEIGHT_TYPE_TQ1_0)
// The trits n of four bytes, minus one: multiplying a byte by 3^n (mod 256)
// brings trit n to the top, and (x * 3) >> 8 reads it off.
vec4 tq1_trits(uint word, uint n)
{
    const uint pow3 = n == 0u ? 1u : (n == 1u ? 3u : (n == 2u ? 9u : (n == 3u ? 27u : 81u)));
    const uvec4 shifted = (bytes_of(word) * pow3) & 0xffu;
    return vec4(ivec4((shifted * 3u) >> 8) - 1);
}

// Where the quad of elements first .. first+3 (first a multiple of 4) lives:
// the byte of its first element (x) and its trit (y).
uvec2 tq1_quad(uint first)
{
    if (first < 160u)
        return uvec2(first & 31u, first >> 5);
    if (first < 240u)
        return uvec2(32u + ((first - 160u) & 15u), (first - 160u) >> 4);
    return uvec2(48u, (first - 240u) >> 2);
}
#endif

void dequant_unit(uint block_byte, uint unit, uint elems_left, out vec4 lo, out vec4 hi)
{
#if defined(WEIGHT_TYPE_IQ4_NL) || defined(WEIGHT_TYPE_MXFP4)
#if defined(WEIGHT_TYPE_IQ4_NL)
    const float d = read_f16(block_byte);
    const uvec4 qs = bytes_of(read_u32(block_byte + 2u + 4u * unit));
#else
    const float d = e8m0_half(read_u8(block_byte));
    const uvec4 qs = bytes_of(read_u32_any(block_byte + 1u + 4u * unit));
#endif
    precise vec4 lo_value = d * levels_of(qs & 0x0fu);
    precise vec4 hi_value = d * levels_of(qs >> 4);
#elif defined(WEIGHT_TYPE_IQ4_XS)
    const uint ib = unit >> 2;
    const float d = read_f16(block_byte);
    // 6-bit scale: nibble ib % 2 of scales_l[ib / 2], top bits 2 ib of scales_h
    const uint ls = ((read_u8(block_byte + 4u + (ib >> 1)) >> (4u * (ib & 1u))) & 0x0fu) |
                    (((read_u16(block_byte + 2u) >> (2u * ib)) & 3u) << 4);
    precise float dl = d * float(int(ls) - 32);
    const uvec4 qs = bytes_of(read_u32(block_byte + 8u + 16u * ib + 4u * (unit & 3u)));
    precise vec4 lo_value = dl * levels_of(qs & 0x0fu);
    precise vec4 hi_value = dl * levels_of(qs >> 4);
#elif defined(WEIGHT_TYPE_TQ2_0)
    const uint half_index = unit >> 4;
    const uint shift_lo = 4u * ((unit >> 3) & 1u); // 2l for l = 2lp
    const uvec4 qs = bytes_of(read_u32(block_byte + 32u * half_index + 4u * (unit & 7u)));
    const float d = read_f16(block_byte + 64u);
    precise vec4 lo_value = vec4(ivec4((qs >> shift_lo) & 3u) - 1) * d;
    precise vec4 hi_value = vec4(ivec4((qs >> (shift_lo + 2u)) & 3u) - 1) * d;
#else // TQ1_0
    const float d = read_f16(block_byte + 52u);
    const uvec2 quad_lo = tq1_quad(8u * unit);
    const uvec2 quad_hi = tq1_quad(8u * unit + 4u);
    precise vec4 lo_value = tq1_trits(read_u32(block_byte + quad_lo.x), quad_lo.y) * d;
    precise vec4 hi_value = tq1_trits(read_u32(block_byte + quad_hi.x), quad_hi.y) * d;
#endif
    lo = lo_value;
    hi = hi_value;
}
