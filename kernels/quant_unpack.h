/* Block formats unpacked 32 elements at a time, shared by the CUDA kernels
 * (matrix-vector, dequantize, get_rows) and a host test that checks them
 * against runtime/quant.c without a GPU (tests/test_cuda_unpack.c).
 *
 * Every block format is seen as a sequence of "units" of 32 consecutive
 * elements: one per block for the 32-element formats, eight per 256-element
 * super-block of the K-quants. A unit unpacks into 32 small signed integers
 * (four per 32-bit word, element 4k + b in byte b of q[k], as dp4a wants
 * them) and, for each half of 16 elements, a scale and an offset:
 *
 *     element e = scale[e / 16] * q[e] + offset[e / 16]
 *
 * The scale and offset are formed with the same float operations, in the
 * same order, as the reference dequantizer (quant.c, quant_k.c), so on the
 * host the values come out bit-identical; offset is minus the reference's
 * min term, and x + (-m) is exactly x - m.
 *
 * The block layouts assume the alignment GGUF rows give them: every block
 * starts at an even address, and the formats whose block size is a multiple
 * of 4 (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) at a multiple of 4.
 *
 * This header is C11 and CUDA C++ at once: plain C includes it for the host
 * test; nvcc compiles the same functions for the device. */
#ifndef STRATA_KERNELS_QUANT_UNPACK_H
#define STRATA_KERNELS_QUANT_UNPACK_H

#include <stdint.h>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define UNPACK_FN static __host__ __device__ __forceinline__
#else
#include <math.h>
#include <stdbool.h>
#define UNPACK_FN static inline
#endif

/* The formats, numbered as runtime/dtype.h numbers them (ggml_type ids);
 * repeated here so the kernels need no runtime header. */
enum {
    UNPACK_Q4_0 = 2,
    UNPACK_Q4_1 = 3,
    UNPACK_Q5_0 = 6,
    UNPACK_Q5_1 = 7,
    UNPACK_Q8_0 = 8,
    UNPACK_Q2_K = 10,
    UNPACK_Q3_K = 11,
    UNPACK_Q4_K = 12,
    UNPACK_Q5_K = 13,
    UNPACK_Q6_K = 14,
};

#define UNPACK_UNIT_ELEMENTS 32

typedef struct quant_unit {
    int32_t q[8];     /* 32 signed 8-bit quants, element 4k + b in byte b of q[k] */
    float scale[2];   /* of elements 0..15 and 16..31 */
    float offset[2];  /* added after the scale */
} quant_unit;

/* --- loads ---------------------------------------------------------------------- */

/* The device loads below assume the alignments stated at the top (a GPU
 * faults on a misaligned load); the CPU emulation of CUDA used by the tests
 * (tests/cuda_emulator/) defines UNPACK_CHECK_ALIGNMENT to check them on the
 * host path, which it runs instead. */
#ifdef UNPACK_CHECK_ALIGNMENT
#ifdef __cplusplus
extern "C"
#endif
    void
    unpack_misaligned(const void *address, int alignment);
#define UNPACK_ASSERT_ALIGNED(p, alignment)                                                                         \
    do {                                                                                                           \
        if ((uintptr_t)(p) % (alignment) != 0)                                                                     \
            unpack_misaligned((p), (alignment));                                                                   \
    } while (0)
#else
#define UNPACK_ASSERT_ALIGNED(p, alignment) ((void)0)
#endif

/* IEEE half bits -> float, exact (normal, subnormal, inf, nan). */
UNPACK_FN float unpack_half(uint16_t bits)
{
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half(bits));
#else
    uint32_t exponent = (bits >> 10) & 0x1fu, mantissa = bits & 0x3ffu;
    float magnitude;
    if (exponent == 0)
        magnitude = ldexpf((float)mantissa, -24);
    else if (exponent == 31)
        magnitude = mantissa ? NAN : INFINITY;
    else
        magnitude = ldexpf((float)(mantissa | 0x400u), (int)exponent - 25);
    return (bits & 0x8000u) ? -magnitude : magnitude;
#endif
}

UNPACK_FN uint16_t unpack_u16(const uint8_t *p) /* p even */
{
#ifdef __CUDA_ARCH__
    return *(const uint16_t *)p;
#else
    UNPACK_ASSERT_ALIGNED(p, 2);
    return (uint16_t)(p[0] | (p[1] << 8));
#endif
}

/* A little-endian 32-bit word at an even address. */
UNPACK_FN uint32_t unpack_u32_a2(const uint8_t *p)
{
#ifdef __CUDA_ARCH__
    const uint16_t *h = (const uint16_t *)p;
    return (uint32_t)h[0] | ((uint32_t)h[1] << 16);
#else
    UNPACK_ASSERT_ALIGNED(p, 2);
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
#endif
}

/* A little-endian 32-bit word at a multiple of 4. */
UNPACK_FN uint32_t unpack_u32_a4(const uint8_t *p)
{
#ifdef __CUDA_ARCH__
    return *(const uint32_t *)p;
#else
    UNPACK_ASSERT_ALIGNED(p, 4);
    return unpack_u32_a2(p);
#endif
}

/* Subtracts k (0..32) from each byte of v (each byte 0..63), giving signed
 * bytes: with the top bit of every byte set first no byte borrows from its
 * neighbour, and flipping it back turns the biased value into two's
 * complement. */
UNPACK_FN int32_t unpack_bytes_minus(uint32_t v, uint32_t k)
{
    return (int32_t)(((v | 0x80808080u) - k * 0x01010101u) ^ 0x80808080u);
}

/* Bits 0..3 of h to bit 0 of bytes 0..3. */
UNPACK_FN uint32_t unpack_spread4(uint32_t h)
{
    return (h & 1u) | ((h & 2u) << 7) | ((h & 4u) << 14) | ((h & 8u) << 21);
}

/* --- the 32-element formats (one unit per block) ------------------------------------ */

/* Q4_0 (18 bytes): d, then 16 bytes of nibbles; value (q - 8) * d. */
UNPACK_FN void unpack_q4_0(const uint8_t *block, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    for (int k = 0; k < 4; k++) {
        uint32_t w = unpack_u32_a2(block + 2 + 4 * k);
        u->q[k] = unpack_bytes_minus(w & 0x0f0f0f0fu, 8);
        u->q[k + 4] = unpack_bytes_minus((w >> 4) & 0x0f0f0f0fu, 8);
    }
    u->scale[0] = u->scale[1] = d;
    u->offset[0] = u->offset[1] = 0.0f;
}

/* Q4_1 (20 bytes): d, m, 16 bytes of nibbles; value q * d + m. */
UNPACK_FN void unpack_q4_1(const uint8_t *block, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block)), m = unpack_half(unpack_u16(block + 2));
    for (int k = 0; k < 4; k++) {
        uint32_t w = unpack_u32_a4(block + 4 + 4 * k);
        u->q[k] = (int32_t)(w & 0x0f0f0f0fu);
        u->q[k + 4] = (int32_t)((w >> 4) & 0x0f0f0f0fu);
    }
    u->scale[0] = u->scale[1] = d;
    u->offset[0] = u->offset[1] = m;
}

/* The 5-bit quants of a Q5 block: nibbles at qs, fifth bits in the 32-bit
 * little-endian qh (bit j for element j), minus bias. */
UNPACK_FN void unpack_q5_quants(const uint8_t *qs, uint32_t qh, uint32_t bias, bool qs_a4, quant_unit *u)
{
    for (int k = 0; k < 4; k++) {
        uint32_t w = qs_a4 ? unpack_u32_a4(qs + 4 * k) : unpack_u32_a2(qs + 4 * k);
        uint32_t low_high = unpack_spread4((qh >> (4 * k)) & 0xfu) << 4;
        uint32_t high_high = unpack_spread4((qh >> (4 * k + 16)) & 0xfu) << 4;
        u->q[k] = unpack_bytes_minus((w & 0x0f0f0f0fu) | low_high, bias);
        u->q[k + 4] = unpack_bytes_minus(((w >> 4) & 0x0f0f0f0fu) | high_high, bias);
    }
}

/* Q5_0 (22 bytes): d, qh[4], qs[16]; value (q - 16) * d. */
UNPACK_FN void unpack_q5_0(const uint8_t *block, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    unpack_q5_quants(block + 6, unpack_u32_a2(block + 2), 16, false, u);
    u->scale[0] = u->scale[1] = d;
    u->offset[0] = u->offset[1] = 0.0f;
}

/* Q5_1 (24 bytes): d, m, qh[4], qs[16]; value q * d + m. */
UNPACK_FN void unpack_q5_1(const uint8_t *block, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block)), m = unpack_half(unpack_u16(block + 2));
    unpack_q5_quants(block + 8, unpack_u32_a4(block + 4), 0, true, u);
    u->scale[0] = u->scale[1] = d;
    u->offset[0] = u->offset[1] = m;
}

/* Q8_0 (34 bytes): d, 32 signed bytes; value q * d. */
UNPACK_FN void unpack_q8_0(const uint8_t *block, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    for (int k = 0; k < 8; k++)
        u->q[k] = (int32_t)unpack_u32_a2(block + 2 + 4 * k);
    u->scale[0] = u->scale[1] = d;
    u->offset[0] = u->offset[1] = 0.0f;
}

/* --- the K-quants (eight units per 256-element super-block) ------------------------- */

/* Q2_K (84 bytes): scales[16], qs[64], d, dmin. Unit (half, s) = (unit / 4,
 * unit % 4) covers elements 128 half + 32 s .. + 31: bits 2s of bytes
 * qs[32 half + e]; its two sub-blocks of 16 are 8 half + 2 s and the next. */
UNPACK_FN void unpack_q2_k(const uint8_t *block, int unit, quant_unit *u)
{
    const int half = unit / 4, s = unit % 4;
    const float d = unpack_half(unpack_u16(block + 80)), dmin = unpack_half(unpack_u16(block + 82));
    for (int k = 0; k < 8; k++)
        u->q[k] = (int32_t)((unpack_u32_a4(block + 16 + 32 * half + 4 * k) >> (2 * s)) & 0x03030303u);
    for (int g = 0; g < 2; g++) {
        const uint8_t sc = block[8 * half + 2 * s + g];
        u->scale[g] = d * (float)(sc & 0x0f);
        u->offset[g] = -(dmin * (float)(sc >> 4));
    }
}

/* The 6-bit scale (before the -32 bias) of Q3_K sub-block i. */
UNPACK_FN int unpack_q3_k_scale(const uint8_t *scales, int i)
{
    int low = i < 8 ? (scales[i] & 0x0f) : (scales[i - 8] >> 4);
    int high = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
    return low | (high << 4);
}

/* Q3_K (110 bytes): hmask[32], qs[64], scales[12], d. Unit (half, s) as in
 * Q2_K; bit 4 half + s of hmask[e] set means "do not subtract 4". */
UNPACK_FN void unpack_q3_k(const uint8_t *block, int unit, quant_unit *u)
{
    const int half = unit / 4, s = unit % 4, bit = 4 * half + s;
    const float d = unpack_half(unpack_u16(block + 108));
    for (int k = 0; k < 8; k++) {
        uint32_t low = (unpack_u32_a2(block + 32 + 32 * half + 4 * k) >> (2 * s)) & 0x03030303u;
        uint32_t high = (unpack_u32_a2(block + 4 * k) >> bit) & 0x01010101u;
        u->q[k] = unpack_bytes_minus(low | (high << 2), 4);
    }
    for (int g = 0; g < 2; g++) {
        u->scale[g] = d * (float)(unpack_q3_k_scale(block + 96, 8 * half + 2 * s + g) - 32);
        u->offset[g] = 0.0f;
    }
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block. */
UNPACK_FN void unpack_k_scale_min(const uint8_t *scales, int j, int *scale, int *min)
{
    if (j < 4) {
        *scale = scales[j] & 63;
        *min = scales[j + 4] & 63;
    } else {
        *scale = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
        *min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* Q4_K (144 bytes): d, dmin, scales[12], qs[128]. Unit j is sub-block j:
 * nibble j % 2 of bytes qs[32 (j / 2) + e]. */
UNPACK_FN void unpack_q4_k(const uint8_t *block, int unit, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block)), dmin = unpack_half(unpack_u16(block + 2));
    const int shift = 4 * (unit % 2);
    for (int k = 0; k < 8; k++)
        u->q[k] = (int32_t)((unpack_u32_a4(block + 16 + 32 * (unit / 2) + 4 * k) >> shift) & 0x0f0f0f0fu);
    int sc, m;
    unpack_k_scale_min(block + 4, unit, &sc, &m);
    u->scale[0] = u->scale[1] = d * (float)sc;
    u->offset[0] = u->offset[1] = -(dmin * (float)m);
}

/* Q5_K (176 bytes): d, dmin, scales[12], qh[32], qs[128]; Q4_K plus bit j
 * of qh[e] as the fifth bit. */
UNPACK_FN void unpack_q5_k(const uint8_t *block, int unit, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block)), dmin = unpack_half(unpack_u16(block + 2));
    const int shift = 4 * (unit % 2);
    for (int k = 0; k < 8; k++) {
        uint32_t low = (unpack_u32_a4(block + 48 + 32 * (unit / 2) + 4 * k) >> shift) & 0x0f0f0f0fu;
        uint32_t high = (unpack_u32_a4(block + 16 + 4 * k) >> unit) & 0x01010101u;
        u->q[k] = (int32_t)(low | (high << 4));
    }
    int sc, m;
    unpack_k_scale_min(block + 4, unit, &sc, &m);
    u->scale[0] = u->scale[1] = d * (float)sc;
    u->offset[0] = u->offset[1] = -(dmin * (float)m);
}

/* Q6_K (210 bytes): ql[128], qh[64], scales[16] (int8), d. Unit (half, k) =
 * (unit / 4, unit % 4): low nibble k / 2 of ql[64 half + 32 (k % 2) + e],
 * top bits 2k of qh[32 half + e], minus 32; sub-blocks 8 half + 2k + e / 16. */
UNPACK_FN void unpack_q6_k(const uint8_t *block, int unit, quant_unit *u)
{
    const int half = unit / 4, k = unit % 4;
    const float d = unpack_half(unpack_u16(block + 208));
    for (int i = 0; i < 8; i++) {
        uint32_t low = (unpack_u32_a2(block + 64 * half + 32 * (k % 2) + 4 * i) >> (4 * (k / 2))) & 0x0f0f0f0fu;
        uint32_t high = (unpack_u32_a2(block + 128 + 32 * half + 4 * i) >> (2 * k)) & 0x03030303u;
        u->q[i] = unpack_bytes_minus(low | (high << 4), 32);
    }
    for (int g = 0; g < 2; g++) {
        u->scale[g] = d * (float)(int8_t)block[192 + 8 * half + 2 * k + g];
        u->offset[g] = 0.0f;
    }
}

/* --- any format ------------------------------------------------------------------------ */

/* Bytes per block and units per block of a format; 0 for a format this
 * header does not unpack. */
UNPACK_FN int unpack_block_bytes(int format)
{
    switch (format) {
    case UNPACK_Q4_0: return 18;
    case UNPACK_Q4_1: return 20;
    case UNPACK_Q5_0: return 22;
    case UNPACK_Q5_1: return 24;
    case UNPACK_Q8_0: return 34;
    case UNPACK_Q2_K: return 84;
    case UNPACK_Q3_K: return 110;
    case UNPACK_Q4_K: return 144;
    case UNPACK_Q5_K: return 176;
    case UNPACK_Q6_K: return 210;
    default: return 0;
    }
}

UNPACK_FN int unpack_units_per_block(int format)
{
    return format >= UNPACK_Q2_K && format <= UNPACK_Q6_K ? 8 : 1;
}

/* Unpacks unit `unit` (0 .. units per block - 1) of the block at block. */
UNPACK_FN void unpack_unit(int format, const uint8_t *block, int unit, quant_unit *u)
{
    switch (format) {
    case UNPACK_Q4_0: unpack_q4_0(block, u); break;
    case UNPACK_Q4_1: unpack_q4_1(block, u); break;
    case UNPACK_Q5_0: unpack_q5_0(block, u); break;
    case UNPACK_Q5_1: unpack_q5_1(block, u); break;
    case UNPACK_Q8_0: unpack_q8_0(block, u); break;
    case UNPACK_Q2_K: unpack_q2_k(block, unit, u); break;
    case UNPACK_Q3_K: unpack_q3_k(block, unit, u); break;
    case UNPACK_Q4_K: unpack_q4_k(block, unit, u); break;
    case UNPACK_Q5_K: unpack_q5_k(block, unit, u); break;
    case UNPACK_Q6_K: unpack_q6_k(block, unit, u); break;
    default: /* not a block format: zeros, never garbage */
        for (int k = 0; k < 8; k++)
            u->q[k] = 0;
        u->scale[0] = u->scale[1] = u->offset[0] = u->offset[1] = 0.0f;
        break;
    }
}

/* Signed byte b (0..3) of word w. */
UNPACK_FN int unpack_byte(int32_t w, int b)
{
    return (int)(int8_t)(uint8_t)((uint32_t)w >> (8 * b));
}

/* Element e (0..31) of an unpacked unit as a float. */
UNPACK_FN float unpack_value(const quant_unit *u, int e)
{
    return u->scale[e / 16] * (float)unpack_byte(u->q[e / 4], e % 4) + u->offset[e / 16];
}

/* sum of the byte products of a and b, plus c (the dp4a instruction). */
UNPACK_FN int32_t unpack_dp4a(int32_t a, int32_t b, int32_t c)
{
#ifdef __CUDA_ARCH__
    return __dp4a(a, b, c);
#else
    for (int i = 0; i < 4; i++)
        c += unpack_byte(a, i) * unpack_byte(b, i);
    return c;
#endif
}

/* The dot product of a unit with 32 activations quantized to 8 bits: xq
 * holds the quants (as q does), x_scale the activation scale and
 * x_sums[g] = x_scale * (sum of the quants of half g). */
UNPACK_FN float unpack_unit_dot(const quant_unit *u, const int32_t *xq, float x_scale, const float *x_sums)
{
    int32_t sum0 = 0, sum1 = 0;
    for (int k = 0; k < 4; k++) {
        sum0 = unpack_dp4a(u->q[k], xq[k], sum0);
        sum1 = unpack_dp4a(u->q[k + 4], xq[k + 4], sum1);
    }
    return x_scale * (u->scale[0] * (float)sum0 + u->scale[1] * (float)sum1) + u->offset[0] * x_sums[0] +
           u->offset[1] * x_sums[1];
}

#endif
