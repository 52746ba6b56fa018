// The grid i-quants (base/quant_lowbit.c): IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
// IQ3_S, IQ1_S, IQ1_M. 256-element super-blocks whose every 8 elements are
// one (IQ2, IQ1) or two (IQ3) indices into a grid of points, so unit u is
// simply elements 8u .. 8u+7: lo = 8u .. 8u+3, hi = 8u+4 .. 8u+7. With
// ib = u / 4 (the group of 32 sharing a scale, IQ1_M: u / 2 of 16) and
// l = u % 4, the bit positions are those written beside each C dequantizer.
//
// The grids and the sign table are binding 3, this format's section of the
// buffer backends/vulkan/vulkan_lowbit_tables.c builds from
// base/quant_iq_grids.c: an 8-coordinate point i is words 2i (coordinates
// 0..3) and 2i+1 (4..7), a 4-coordinate point one word; where a format uses
// the sign table, its 128 words follow the grid (at SIGNS_AT).
#define BLOCK_ELEMS 256u
#define UNITS_PER_BLOCK 32u
#define WEIGHT_IS_FLOAT 0

#if defined(WEIGHT_TYPE_IQ2_XXS)
#define BLOCK_BYTES 66u // d, qs[32] (uint16)
#define SIGNS_AT 512u // 256 points of two words
#elif defined(WEIGHT_TYPE_IQ2_XS)
#define BLOCK_BYTES 74u // d, qs[32] (uint16), scales[8]
#define SIGNS_AT 1024u // 512 points of two words
#elif defined(WEIGHT_TYPE_IQ2_S)
#define BLOCK_BYTES 82u // d, qs[64] (indices, then signs), qh[8], scales[8]
#elif defined(WEIGHT_TYPE_IQ3_XXS)
#define BLOCK_BYTES 98u // d, qs[64], then 8 uint32 of signs and scale
#define SIGNS_AT 256u // 256 points of one word
#elif defined(WEIGHT_TYPE_IQ3_S)
#define BLOCK_BYTES 110u // d, qs[64], qh[8], signs[32], scales[4]
#elif defined(WEIGHT_TYPE_IQ1_S)
#define BLOCK_BYTES 50u // d, qs[32], qh[8] (uint16)
#else // IQ1_M
#define BLOCK_BYTES 56u // qs[32], qh[16], scales[8] (four uint16, d in their top nibbles)
#endif

layout(set = 0, binding = LOWBIT_TABLES_BINDING) readonly buffer LowbitTables { uint lowbit_tables[]; };

uvec2 unit_bases(uint unit)
{
    return uvec2(8u * unit, 8u * unit + 4u);
}

// scale times the four unsigned coordinates of word, negated where bits
// 0..3 of signs are set (a product by -1 is an exact negation, as in C)
vec4 signed_points(uint word, float scale, uint signs)
{
    const vec4 sign = vec4(1.0) - 2.0 * vec4((uvec4(signs) >> uvec4(0u, 1u, 2u, 3u)) & 1u);
    precise vec4 value = scale * vec4(bytes_of(word));
    return value * sign;
}

#if defined(WEIGHT_TYPE_IQ1_S) || defined(WEIGHT_TYPE_IQ1_M)
// scale (grid + delta) for the four signed coordinates of word (as in C:
// the shift is added to the coordinate first)
vec4 shifted_points(uint word, float scale, float delta)
{
    precise vec4 value = scale * (signed_bytes_of(word) + delta);
    return value;
}
#endif

void dequant_unit(uint block_byte, uint unit, uint elems_left, out vec4 lo, out vec4 hi)
{
    const uint ib = unit >> 2;
    const uint l = unit & 3u;
#if defined(WEIGHT_TYPE_IQ2_XXS)
    // per 32: four 8-bit indices, then four 7-bit sign fields and the scale in bits 28..31
    const float d = read_f16(block_byte);
    const uint indices = read_u32(block_byte + 2u + 8u * ib);
    const uint aux = read_u32(block_byte + 6u + 8u * ib);
    precise float db = d * (0.5 + float(aux >> 28)) * 0.25;
    const uint point = (indices >> (8u * l)) & 0xffu;
    const uint signs = lowbit_tables[SIGNS_AT + ((aux >> (7u * l)) & 0x7fu)];
    lo = signed_points(lowbit_tables[2u * point], db, signs);
    hi = signed_points(lowbit_tables[2u * point + 1u], db, signs >> 4);
#elif defined(WEIGHT_TYPE_IQ2_XS)
    // a uint16 per 8: 9-bit index | 7 sign bits << 9; a 4-bit scale per 16
    const float d = read_f16(block_byte);
    const uint q = read_u16(block_byte + 2u + 2u * unit);
    const uint scales = read_u8(block_byte + 66u + ib);
    precise float db = d * (0.5 + float(l < 2u ? scales & 0x0fu : scales >> 4)) * 0.25;
    const uint point = q & 511u;
    const uint signs = lowbit_tables[SIGNS_AT + (q >> 9)];
    lo = signed_points(lowbit_tables[2u * point], db, signs);
    hi = signed_points(lowbit_tables[2u * point + 1u], db, signs >> 4);
#elif defined(WEIGHT_TYPE_IQ2_S)
    // index = qs[u] | 2 bits of qh[ib] << 8; signs are qs[32 + u], one bit an element
    const float d = read_f16(block_byte);
    const uint qh = read_u8(block_byte + 66u + ib);
    const uint scales = read_u8(block_byte + 74u + ib);
    precise float db = d * (0.5 + float(l < 2u ? scales & 0x0fu : scales >> 4)) * 0.25;
    const uint point = read_u8(block_byte + 2u + unit) | (((qh >> (2u * l)) & 3u) << 8);
    const uint signs = read_u8(block_byte + 34u + unit);
    lo = signed_points(lowbit_tables[2u * point], db, signs);
    hi = signed_points(lowbit_tables[2u * point + 1u], db, signs >> 4);
#elif defined(WEIGHT_TYPE_IQ3_XXS)
    // two 8-bit indices of 4-element points per unit; per 32 a uint32 of four
    // 7-bit sign fields and the scale in bits 28..31
    const float d = read_f16(block_byte);
    const uint aux = read_u32(block_byte + 66u + 4u * ib);
    precise float db = d * (0.5 + float(aux >> 28)) * 0.5;
    const uint points = read_u16(block_byte + 2u + 2u * unit);
    const uint signs = lowbit_tables[SIGNS_AT + ((aux >> (7u * l)) & 0x7fu)];
    lo = signed_points(lowbit_tables[points & 0xffu], db, signs);
    hi = signed_points(lowbit_tables[points >> 8], db, signs >> 4);
#elif defined(WEIGHT_TYPE_IQ3_S)
    // 4-element points 2u and 2u+1: index = qs[k] | bit k % 8 of qh[ib] << 8;
    // their signs are the nibbles of signs[u]; scale d (1 + 2 s) per 32
    const float d = read_f16(block_byte);
    const uint points = read_u16(block_byte + 2u + 2u * unit);
    const uint qh = read_u8(block_byte + 66u + ib);
    const uint signs = read_u8(block_byte + 74u + unit);
    const uint s = (read_u8(block_byte + 106u + (ib >> 1)) >> (4u * (ib & 1u))) & 0x0fu;
    precise float db = d * float(1u + 2u * s);
    const uint point_lo = (points & 0xffu) | (((qh >> (2u * l)) & 1u) << 8);
    const uint point_hi = (points >> 8) | (((qh >> (2u * l + 1u)) & 1u) << 8);
    lo = signed_points(lowbit_tables[point_lo], db, signs);
    hi = signed_points(lowbit_tables[point_hi], db, signs >> 4);
#elif defined(WEIGHT_TYPE_IQ1_S)
    // qh[ib]: 3 high index bits per 8 at 3l, the scale s at 12..14 (d (2 s + 1)),
    // the sign of the shift at 15
    const float d = read_f16(block_byte);
    const uint qh = read_u16(block_byte + 34u + 2u * ib);
    precise float dl = d * float(2u * ((qh >> 12) & 7u) + 1u);
    const float delta = (qh & 0x8000u) != 0u ? -0.125 : 0.125; // IQ1_DELTA
    const uint point = read_u8(block_byte + 2u + unit) | (((qh >> (3u * l)) & 7u) << 8);
    lo = shifted_points(lowbit_tables[2u * point], dl, delta);
    hi = shifted_points(lowbit_tables[2u * point + 1u], dl, delta);
#else // IQ1_M
    // index = qs[u] | low 3 bits of nibble u % 2 of qh[u / 2] << 8, bit 3 the
    // shift's sign; the 3-bit scale of 16 elements m = u / 2 at 3 (m % 4) of
    // uint16 word m / 4 of scales, whose top nibbles make the fp16 d
    const uint sc01 = read_u32(block_byte + 48u);
    const uint sc23 = read_u32(block_byte + 52u);
    const uint d_bits = ((sc01 & 0xffffu) >> 12) | ((sc01 >> 24) & 0x00f0u) | ((sc23 >> 4) & 0x0f00u) |
                        ((sc23 >> 16) & 0xf000u);
    const float d = unpackHalf2x16(d_bits).x;
    const uint m = unit >> 1;
    const uint sc = (m < 8u ? sc01 : sc23) >> (16u * ((m >> 2) & 1u));
    precise float dl = d * float(2u * ((sc >> (3u * (m & 3u))) & 7u) + 1u);
    const uint nibble = (read_u8(block_byte + 32u + (unit >> 1)) >> (4u * (unit & 1u))) & 0x0fu;
    const float delta = (nibble & 8u) != 0u ? -0.125 : 0.125; // IQ1_DELTA
    const uint point = read_u8(block_byte + unit) | ((nibble & 7u) << 8);
    lo = shifted_points(lowbit_tables[2u * point], dl, delta);
    hi = shifted_points(lowbit_tables[2u * point + 1u], dl, delta);
#endif
}
