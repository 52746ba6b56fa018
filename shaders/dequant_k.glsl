// The K-quants (base/quant_k.c): 256-element super-blocks, 32 units each.
// The unit layouts, per format, with e the element index in the block:
//
// Q2_K, Q3_K: each 128-element half h uses 32 qs bytes; bits 2s..2s+1 of
//   byte j hold element 128h + 32s + j. Unit u = 16h + 8sp + jg takes qs bytes
//   j = 4jg .. 4jg+3 at shifts s = 2sp (lo) and 2sp+1 (hi). Sub-block (16
//   elements, one scale) = e / 16. Q3_K's high bit of element 128h + 32s + j
//   is bit 4h + s of hmask[j]; a clear bit subtracts 4.
// Q4_K, Q5_K: 8 sub-blocks of 32; sub-blocks 2p and 2p+1 share qs bytes
//   32p .. 32p+31 (low nibbles, then high). Unit u = 8p + lg takes bytes
//   l = 4lg .. 4lg+3: elements 64p + l + i (lo), 64p + 32 + l + i (hi).
//   Q5_K's fifth bit of element 32 sub + l is bit sub of qh[l].
// Q6_K: each half h uses 64 ql and 32 qh bytes; element 128h + 32k + l has its
//   low nibble in ql[64h + 32(k%2) + l] (k >= 2: high nibble) and its top
//   bits at 2k of qh[32h + l]. Unit u = 16h + 8kk + lg takes l = 4lg ..
//   4lg+3 with k = kk (lo) and kk + 2 (hi): the two nibbles of the same bytes.
#define BLOCK_ELEMS 256u
#define UNITS_PER_BLOCK 32u
#define WEIGHT_IS_FLOAT 0

#if defined(WEIGHT_TYPE_Q2_K)
#define BLOCK_BYTES 84u // scales[16], qs[64], d, dmin
#elif defined(WEIGHT_TYPE_Q3_K)
#define BLOCK_BYTES 110u // hmask[32], qs[64], scales[12], d
#elif defined(WEIGHT_TYPE_Q4_K)
#define BLOCK_BYTES 144u // d, dmin, scales[12], qs[128]
#elif defined(WEIGHT_TYPE_Q5_K)
#define BLOCK_BYTES 176u // d, dmin, scales[12], qh[32], qs[128]
#else
#define BLOCK_BYTES 210u // Q6_K: ql[128], qh[64], scales[16] (int8), d
#endif

uvec2 unit_bases(uint unit)
{
#if defined(WEIGHT_TYPE_Q4_K) || defined(WEIGHT_TYPE_Q5_K)
    uint first = 64u * (unit >> 3) + 4u * (unit & 7u);
    return uvec2(first, first + 32u);
#elif defined(WEIGHT_TYPE_Q6_K) // rows k = kk and kk + 2 of a half
    uint first = 128u * (unit >> 4) + 32u * ((unit >> 3) & 1u) + 4u * (unit & 7u);
    return uvec2(first, first + 64u);
#else // Q2_K, Q3_K: rows s = 2sp and 2sp + 1 of a half
    uint first = 128u * (unit >> 4) + 64u * ((unit >> 3) & 1u) + 4u * (unit & 7u);
    return uvec2(first, first + 32u);
#endif
}

#if defined(WEIGHT_TYPE_Q4_K) || defined(WEIGHT_TYPE_Q5_K)
// The 6-bit scale (x) and min (y) of sub-block j (0..7). Bytes 0..3 of the
// 12 hold scales 0..3, bytes 4..7 mins 0..3 (low six bits); scales and mins
// 4..7 take their low four bits from the nibbles of bytes 8..11 and their top
// two bits from the spare top bits of bytes 0..3 (scales) and 4..7 (mins).
uvec2 k_scale_min(uint scales_byte, uint j)
{
    if (j < 4u)
        return uvec2(read_u8(scales_byte + j) & 63u, read_u8(scales_byte + j + 4u) & 63u);
    uint packed_low = read_u8(scales_byte + j + 4u);
    uint scale = (packed_low & 0x0fu) | ((read_u8(scales_byte + j - 4u) >> 6) << 4);
    uint min = (packed_low >> 4) | ((read_u8(scales_byte + j) >> 6) << 4);
    return uvec2(scale, min);
}
#endif

#if defined(WEIGHT_TYPE_Q3_K)
// The signed scale of sub-block i (0..15): a 6-bit value minus 32. Its low
// nibble is in bytes 0..7 (sub-blocks 8..15 in the high nibbles), its top two
// bits at 2 (i / 4) of byte 8 + i % 4.
float q3_K_scale(uint scales_byte, uint i)
{
    uint low = i < 8u ? (read_u8(scales_byte + i) & 0x0fu) : (read_u8(scales_byte + i - 8u) >> 4);
    uint high = (read_u8(scales_byte + 8u + (i & 3u)) >> (2u * (i >> 2))) & 3u;
    return float(int(low | (high << 4)) - 32);
}
#endif

void dequant_unit(uint block_byte, uint unit, uint elems_left, out vec4 lo, out vec4 hi)
{
    const uvec2 bases = unit_bases(unit);
#if defined(WEIGHT_TYPE_Q2_K) || defined(WEIGHT_TYPE_Q3_K)
    const uint half_index = unit >> 4;
    const uint shift_lo = 4u * ((unit >> 3) & 1u); // 2s for s = 2sp
    const uint j = 4u * (unit & 7u);
#if defined(WEIGHT_TYPE_Q2_K)
    const uvec4 qs = bytes_of(read_u32(block_byte + 16u + 32u * half_index + j));
    const float d = read_f16(block_byte + 80u);
    const float dmin = read_f16(block_byte + 82u);
    const uint sc_lo = read_u8(block_byte + bases.x / 16u);
    const uint sc_hi = read_u8(block_byte + bases.y / 16u);
    precise float dl_lo = d * float(sc_lo & 0x0fu);
    precise float ml_lo = dmin * float(sc_lo >> 4);
    precise float dl_hi = d * float(sc_hi & 0x0fu);
    precise float ml_hi = dmin * float(sc_hi >> 4);
    precise vec4 lo_value = dl_lo * vec4((qs >> shift_lo) & 3u) - ml_lo;
    precise vec4 hi_value = dl_hi * vec4((qs >> (shift_lo + 2u)) & 3u) - ml_hi;
#else // Q3_K
    const uvec4 qs = bytes_of(read_u32(block_byte + 32u + 32u * half_index + j));
    const uvec4 hmask = bytes_of(read_u32(block_byte + j));
    const uint bit_lo = 4u * half_index + (shift_lo >> 1);
    const float d = read_f16(block_byte + 108u);
    // a clear high bit means "subtract 4"
    const vec4 q_lo = vec4(ivec4((qs >> shift_lo) & 3u) - 4 * ivec4(1u - ((hmask >> bit_lo) & 1u)));
    const vec4 q_hi = vec4(ivec4((qs >> (shift_lo + 2u)) & 3u) - 4 * ivec4(1u - ((hmask >> (bit_lo + 1u)) & 1u)));
    precise float dl_lo = d * q3_K_scale(block_byte + 96u, bases.x / 16u);
    precise float dl_hi = d * q3_K_scale(block_byte + 96u, bases.y / 16u);
    precise vec4 lo_value = dl_lo * q_lo;
    precise vec4 hi_value = dl_hi * q_hi;
#endif
#elif defined(WEIGHT_TYPE_Q4_K) || defined(WEIGHT_TYPE_Q5_K)
    const uint pair = unit >> 3;
    const uint l = 4u * (unit & 7u);
    const float d = read_f16(block_byte);
    const float dmin = read_f16(block_byte + 2u);
    const uvec2 sm_lo = k_scale_min(block_byte + 4u, 2u * pair);
    const uvec2 sm_hi = k_scale_min(block_byte + 4u, 2u * pair + 1u);
#if defined(WEIGHT_TYPE_Q4_K)
    const uvec4 qs = bytes_of(read_u32(block_byte + 16u + 32u * pair + l));
    const vec4 q_lo = vec4(qs & 0x0fu);
    const vec4 q_hi = vec4(qs >> 4);
#else // Q5_K
    const uvec4 qs = bytes_of(read_u32(block_byte + 48u + 32u * pair + l));
    const uvec4 qh = bytes_of(read_u32(block_byte + 16u + l));
    const vec4 q_lo = vec4((qs & 0x0fu) | (((qh >> (2u * pair)) & 1u) << 4));
    const vec4 q_hi = vec4((qs >> 4) | (((qh >> (2u * pair + 1u)) & 1u) << 4));
#endif
    precise float dl_lo = d * float(sm_lo.x);
    precise float ml_lo = dmin * float(sm_lo.y);
    precise float dl_hi = d * float(sm_hi.x);
    precise float ml_hi = dmin * float(sm_hi.y);
    precise vec4 lo_value = dl_lo * q_lo - ml_lo;
    precise vec4 hi_value = dl_hi * q_hi - ml_hi;
#else // Q6_K
    const uint half_index = unit >> 4;
    const uint kk = (unit >> 3) & 1u;
    const uint l = 4u * (unit & 7u);
    const uvec4 ql = bytes_of(read_u32(block_byte + 64u * half_index + 32u * kk + l));
    const uvec4 qh = bytes_of(read_u32(block_byte + 128u + 32u * half_index + l));
    const float d = read_f16(block_byte + 208u);
    // int8 scales of the sub-blocks of 16: element e uses scales[e / 16]
    const float sc_lo = float(int(read_u8(block_byte + 192u + bases.x / 16u) << 24) >> 24);
    const float sc_hi = float(int(read_u8(block_byte + 192u + bases.y / 16u) << 24) >> 24);
    const vec4 q_lo = vec4((ql & 0x0fu) | (((qh >> (2u * kk)) & 3u) << 4)) - 32.0;
    const vec4 q_hi = vec4((ql >> 4) | (((qh >> (2u * kk + 4u)) & 3u) << 4)) - 32.0;
    precise float dl_lo = d * sc_lo;
    precise float dl_hi = d * sc_hi;
    precise vec4 lo_value = dl_lo * q_lo;
    precise vec4 hi_value = dl_hi * q_hi;
#endif
    lo = lo_value;
    hi = hi_value;
}
