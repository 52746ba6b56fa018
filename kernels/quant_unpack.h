/* Block formats unpacked 32 elements at a time, shared by the CUDA kernels
 * (matrix-vector, dequantize, get_rows) and a host test that checks them
 * against base/quant.c without a GPU (tests/test_cuda_unpack.c).
 *
 * Every block format is seen as a sequence of "units" of 32 consecutive
 * elements: one per block for the 32-element formats, eight per 256-element
 * super-block of the K-quants. A unit unpacks into 32 small integers (four
 * signed bytes per 32-bit word, element 4k + b in byte b of q[k], as dp4a
 * wants them), a bias the format subtracts from all of them, and for each
 * half of 16 elements a scale and an offset:
 *
 *     element e = scale[e / 16] * (q[e] - bias) + offset[e / 16]
 *
 * The bias stays out of the bytes so that unpacking does not spend three
 * operations a word on it: the dot product subtracts bias times the sum of
 * the activation quants once per half instead (unpack_unit_dot).
 *
 * The scale and offset are formed with the same float operations, in the
 * same order, as the reference dequantizer (quant.c, quant_k.c), so on the
 * host the values come out bit-identical; offset is minus the reference's
 * min term, and x + (-m) is exactly x - m.
 *
 * The block layouts assume the alignment GGUF rows give them: every block
 * starts at an even address, and the formats whose block size is a multiple
 * of 4 (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) at a multiple of 4; MXFP4 (17 bytes)
 * is read a byte at a time. The low-bit formats (IQ*, MXFP4, TQ*) are in
 * quant_unpack_lowbit.h.
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

/* The formats, numbered as base/dtype.h numbers them (ggml_type ids);
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
    UNPACK_IQ2_XXS = 16,
    UNPACK_IQ2_XS = 17,
    UNPACK_IQ3_XXS = 18,
    UNPACK_IQ1_S = 19,
    UNPACK_IQ4_NL = 20,
    UNPACK_IQ3_S = 21,
    UNPACK_IQ2_S = 22,
    UNPACK_IQ4_XS = 23,
    UNPACK_IQ1_M = 29,
    UNPACK_TQ1_0 = 34,
    UNPACK_TQ2_0 = 35,
    UNPACK_MXFP4 = 39,
};

#define UNPACK_UNIT_ELEMENTS 32

typedef struct quant_unit {
    int32_t q[8];     /* 32 signed 8-bit quants, element 4k + b in byte b of q[k] */
    int32_t bias;     /* subtracted from every quant: 8 (Q4_0), 16 (Q5_0), 4 (Q3_K), 32 (Q6_K), else 0 */
    float scale[2];   /* of elements 0..15 and 16..31 */
    float offset[2];  /* added after the scale */
} quant_unit;

/* UNPACK_DEVICE selects the device code of the functions below (loads of
 * several bytes at once, funnel shifts, dp4a, the half conversion
 * intrinsic). nvcc's device pass takes it; so does the host test built with
 * UNPACK_DEVICE_PATHS (test_cuda_unpack_device_paths, which supplies
 * stand-ins for the intrinsics), so this code is checked without a GPU. */
#if defined(__CUDA_ARCH__) || defined(UNPACK_DEVICE_PATHS)
#define UNPACK_DEVICE 1
#endif

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
#ifdef UNPACK_DEVICE
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
#ifdef UNPACK_DEVICE
    return *(const uint16_t *)p;
#else
    UNPACK_ASSERT_ALIGNED(p, 2);
    return (uint16_t)(p[0] | (p[1] << 8));
#endif
}

/* A little-endian 32-bit word at an even address. */
UNPACK_FN uint32_t unpack_u32_a2(const uint8_t *p)
{
#ifdef UNPACK_DEVICE
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
#ifdef UNPACK_DEVICE
    return *(const uint32_t *)p;
#else
    UNPACK_ASSERT_ALIGNED(p, 4);
    return unpack_u32_a2(p);
#endif
}

/* n little-endian 32-bit words from p, a multiple of 16, as n / 4 16-byte
 * loads (n a multiple of 4). */
UNPACK_FN void unpack_words_a16(const uint8_t *p, int n, uint32_t *out)
{
#ifdef UNPACK_DEVICE
    for (int i = 0; i < n / 4; i++) {
        const uint4 v = ((const uint4 *)p)[i];
        out[4 * i] = v.x;
        out[4 * i + 1] = v.y;
        out[4 * i + 2] = v.z;
        out[4 * i + 3] = v.w;
    }
#else
    UNPACK_ASSERT_ALIGNED(p, 16);
    for (int i = 0; i < n; i++)
        out[i] = unpack_u32_a2(p + 4 * i);
#endif
}

/* n little-endian 32-bit words from p, a multiple of 8, as n / 2 8-byte
 * loads (n even). */
UNPACK_FN void unpack_words_a8(const uint8_t *p, int n, uint32_t *out)
{
#ifdef UNPACK_DEVICE
    for (int i = 0; i < n / 2; i++) {
        const uint2 v = ((const uint2 *)p)[i];
        out[2 * i] = v.x;
        out[2 * i + 1] = v.y;
    }
#else
    UNPACK_ASSERT_ALIGNED(p, 8);
    for (int i = 0; i < n; i++)
        out[i] = unpack_u32_a2(p + 4 * i);
#endif
}

/* The 32-bit and 16-bit little-endian fields at even byte offset `at` of an
 * image of bytes held as words (at a compile-time constant in the kernels,
 * so each is a register or one funnel shift of two). */
UNPACK_FN uint32_t unpack_image_u32(const uint32_t *image, int at)
{
    return at % 4 == 0 ? image[at / 4] : (image[at / 4] >> 16) | (image[at / 4 + 1] << 16);
}

UNPACK_FN uint16_t unpack_image_u16(const uint32_t *image, int at)
{
    return (uint16_t)(image[at / 4] >> (8 * (at % 4)));
}

/* n little-endian 32-bit words from p, an even address, as n + 1 aligned
 * 32-bit loads joined by funnel shifts (n when p is a multiple of 4), where
 * unpack_u32_a2 spends two 16-bit loads per word. The loads cover the
 * aligned words that hold the bytes [p, p + 4n): up to 2 bytes before p and
 * after p + 4n - 1 are read too. The caller guarantees those lie in the
 * same row: the matrix-vector kernels take this path only for rows that
 * start and end at multiples of 4, where any aligned word holding a byte of
 * the row lies inside it. */
UNPACK_FN void unpack_words_a2(const uint8_t *p, int n, uint32_t *out)
{
#ifdef UNPACK_DEVICE
    /* p minus its misalignment rather than a masked integer: the compiler
     * keeps knowing p's address space and emits global loads */
    const unsigned int misalignment = (unsigned int)(uintptr_t)p & 2u, shift = misalignment * 8u;
    const uint32_t *aligned = (const uint32_t *)(p - misalignment);
    uint32_t low = aligned[0];
    for (int i = 0; i < n; i++) {
        const uint32_t high = i + 1 < n || shift ? aligned[i + 1] : 0u;
        out[i] = __funnelshift_r(low, high, shift);
        low = high;
    }
#else
    UNPACK_ASSERT_ALIGNED(p, 2);
    for (int i = 0; i < n; i++)
        out[i] = unpack_u32_a2(p + 4 * i);
#endif
}

/* Byte b (0..3) of word w. */
UNPACK_FN uint32_t unpack_word_byte(uint32_t w, int b)
{
    return (w >> (8 * b)) & 0xffu;
}

/* Bits 0..3 of h (h < 16) to bit 0 of bytes 0..3: the multiply puts a copy
 * of h at bits 0, 7, 14 and 21, so bit i of copy i lands on bit 8 i, and no
 * two copies' bits meet (no carries). */
UNPACK_FN uint32_t unpack_spread4(uint32_t h)
{
    return (h * 0x00204081u) & 0x01010101u;
}

/* --- the 32-element formats (one unit per block) ------------------------------------ */

/* A Q4_0 unit from its scale and its 16 bytes of nibbles as words. */
UNPACK_FN void unpack_q4_0_words(float d, const uint32_t *qs, quant_unit *u)
{
    for (int k = 0; k < 4; k++) {
        u->q[k] = (int32_t)(qs[k] & 0x0f0f0f0fu);
        u->q[k + 4] = (int32_t)((qs[k] >> 4) & 0x0f0f0f0fu);
    }
    u->bias = 8;
    u->scale[0] = u->scale[1] = d;
    u->offset[0] = u->offset[1] = 0.0f;
}

/* Q4_0 (18 bytes): d, then 16 bytes of nibbles; value (q - 8) * d. */
UNPACK_FN void unpack_q4_0(const uint8_t *block, quant_unit *u)
{
    uint32_t qs[4];
    for (int k = 0; k < 4; k++)
        qs[k] = unpack_u32_a2(block + 2 + 4 * k);
    unpack_q4_0_words(unpack_half(unpack_u16(block)), qs, u);
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
    u->bias = 0;
    u->scale[0] = u->scale[1] = d;
    u->offset[0] = u->offset[1] = m;
}

/* The 5-bit quants of a Q5 block: nibbles in the words qs[4], fifth bits in
 * the 32-bit little-endian qh (bit j for element j), and the bias. */
UNPACK_FN void unpack_q5_quants(const uint32_t *qs, uint32_t qh, uint32_t bias, quant_unit *u)
{
    for (int k = 0; k < 4; k++) {
        uint32_t w = qs[k];
        uint32_t low_high = unpack_spread4((qh >> (4 * k)) & 0xfu) << 4;
        uint32_t high_high = unpack_spread4((qh >> (4 * k + 16)) & 0xfu) << 4;
        u->q[k] = (int32_t)((w & 0x0f0f0f0fu) | low_high);
        u->q[k + 4] = (int32_t)(((w >> 4) & 0x0f0f0f0fu) | high_high);
    }
    u->bias = (int32_t)bias;
}

/* Q5_0 (22 bytes): d, qh[4], qs[16]; value (q - 16) * d. */
UNPACK_FN void unpack_q5_0(const uint8_t *block, quant_unit *u)
{
    uint32_t qs[4];
    for (int k = 0; k < 4; k++)
        qs[k] = unpack_u32_a2(block + 6 + 4 * k);
    unpack_q5_quants(qs, unpack_u32_a2(block + 2), 16, u);
    u->scale[0] = u->scale[1] = unpack_half(unpack_u16(block));
    u->offset[0] = u->offset[1] = 0.0f;
}

/* Q5_1 (24 bytes): d, m, qh[4], qs[16]; value q * d + m. */
UNPACK_FN void unpack_q5_1(const uint8_t *block, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block)), m = unpack_half(unpack_u16(block + 2));
    uint32_t qs[4];
    for (int k = 0; k < 4; k++)
        qs[k] = unpack_u32_a4(block + 8 + 4 * k);
    unpack_q5_quants(qs, unpack_u32_a4(block + 4), 0, u);
    u->scale[0] = u->scale[1] = d;
    u->offset[0] = u->offset[1] = m;
}

/* Q8_0 (34 bytes): d, 32 signed bytes; value q * d. */
UNPACK_FN void unpack_q8_0(const uint8_t *block, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    for (int k = 0; k < 8; k++)
        u->q[k] = (int32_t)unpack_u32_a2(block + 2 + 4 * k);
    u->bias = 0;
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
    u->bias = 0;
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
        u->q[k] = (int32_t)(low | (high << 2));
    }
    u->bias = 4;
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
    u->bias = 0;
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
    u->bias = 0;
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
        u->q[i] = (int32_t)(low | (high << 4));
    }
    u->bias = 32;
    for (int g = 0; g < 2; g++) {
        u->scale[g] = d * (float)(int8_t)block[192 + 8 * half + 2 * k + g];
        u->offset[g] = 0.0f;
    }
}

/* --- the low-bit formats ------------------------------------------------------------- */

#include "quant_unpack_lowbit.h"

/* --- any format ------------------------------------------------------------------------ */

/* Bytes per block and units per block of a format; 0 bytes for a format
 * this header does not unpack. Macros, so that the kernels' templates can
 * use them as constants. */
#define UNPACK_BLOCK_BYTES(format)                                                                                 \
    ((format) == UNPACK_Q4_0      ? 18                                                                             \
     : (format) == UNPACK_Q4_1    ? 20                                                                             \
     : (format) == UNPACK_Q5_0    ? 22                                                                             \
     : (format) == UNPACK_Q5_1    ? 24                                                                             \
     : (format) == UNPACK_Q8_0    ? 34                                                                             \
     : (format) == UNPACK_Q2_K    ? 84                                                                             \
     : (format) == UNPACK_Q3_K    ? 110                                                                            \
     : (format) == UNPACK_Q4_K    ? 144                                                                            \
     : (format) == UNPACK_Q5_K    ? 176                                                                            \
     : (format) == UNPACK_Q6_K    ? 210                                                                            \
     : (format) == UNPACK_IQ2_XXS ? 66                                                                             \
     : (format) == UNPACK_IQ2_XS  ? 74                                                                             \
     : (format) == UNPACK_IQ2_S   ? 82                                                                             \
     : (format) == UNPACK_IQ3_XXS ? 98                                                                             \
     : (format) == UNPACK_IQ3_S   ? 110                                                                            \
     : (format) == UNPACK_IQ1_S   ? 50                                                                             \
     : (format) == UNPACK_IQ1_M   ? 56                                                                             \
     : (format) == UNPACK_IQ4_NL  ? 18                                                                             \
     : (format) == UNPACK_IQ4_XS  ? 136                                                                            \
     : (format) == UNPACK_MXFP4   ? 17                                                                             \
     : (format) == UNPACK_TQ1_0   ? 54                                                                             \
     : (format) == UNPACK_TQ2_0   ? 66                                                                             \
                                  : 0)
/* 32-element blocks are one unit, the 256-element super-blocks eight */
#define UNPACK_UNITS_PER_BLOCK(format)                                                                             \
    ((format) == UNPACK_Q4_0 || (format) == UNPACK_Q4_1 || (format) == UNPACK_Q5_0 || (format) == UNPACK_Q5_1 ||   \
             (format) == UNPACK_Q8_0 || (format) == UNPACK_IQ4_NL || (format) == UNPACK_MXFP4                      \
         ? 1                                                                                                       \
         : 8)

UNPACK_FN int unpack_block_bytes(int format)
{
    return UNPACK_BLOCK_BYTES(format);
}

UNPACK_FN int unpack_units_per_block(int format)
{
    return UNPACK_UNITS_PER_BLOCK(format);
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
    case UNPACK_IQ2_XXS: unpack_iq2_xxs(block, unit, u); break;
    case UNPACK_IQ2_XS: unpack_iq2_xs(block, unit, u); break;
    case UNPACK_IQ2_S: unpack_iq2_s(block, unit, u); break;
    case UNPACK_IQ3_XXS: unpack_iq3_xxs(block, unit, u); break;
    case UNPACK_IQ3_S: unpack_iq3_s(block, unit, u); break;
    case UNPACK_IQ1_S: unpack_iq1_s(block, unit, u); break;
    case UNPACK_IQ1_M: unpack_iq1_m(block, unit, u); break;
    case UNPACK_IQ4_NL: unpack_iq4_nl(block, u); break;
    case UNPACK_IQ4_XS: unpack_iq4_xs(block, unit, u); break;
    case UNPACK_MXFP4: unpack_mxfp4(block, u); break;
    case UNPACK_TQ1_0: unpack_tq1_0(block, unit, u); break;
    case UNPACK_TQ2_0: unpack_tq2_0(block, unit, u); break;
    default: /* not a block format: zeros, never garbage */
        for (int k = 0; k < 8; k++)
            u->q[k] = 0;
        u->bias = 0;
        u->scale[0] = u->scale[1] = u->offset[0] = u->offset[1] = 0.0f;
        break;
    }
}

/* --- groups of units, for the matrix-vector kernels --------------------------------- */

/* The matrix-vector kernels have each lane unpack a group of consecutive
 * units that share bytes or alignment, so that each byte is loaded once per
 * lane and with as few, as wide loads as the layout allows:
 *
 *   Q4_K, Q5_K         a pair of units (the two nibbles of the same 32
 *                      bytes) and the block header, 16-byte loads
 *   Q2_K               a half block (four units over the same 32 bytes),
 *                      32-bit loads
 *   Q3_K, Q6_K         a half block, aligned 32-bit loads joined by funnel
 *                      shifts (the blocks start at even addresses)
 *   Q4_0, Q5_0, Q8_0   four blocks, which together start at a multiple of
 *                      8: 8-byte loads
 *   Q4_1, Q5_1         one unit, as unpack_unit (already 32-bit loads)
 *   the low-bit        one unit, as unpack_unit (their time goes to the
 *   formats            table lookups more than to the loads)
 *
 * Each unit comes out exactly as unpack_unit gives it (tests/test_cuda_unpack.c
 * checks them against each other). UNPACK_GROUP_ALIGNMENT is what the rows
 * must meet, start and length (unpack_words_a2 reads the aligned words
 * around its bytes); the kernels check it at launch before taking this
 * path. */
#define UNPACK_GROUP_UNITS(format)                                                                 \
    ((format) == UNPACK_Q4_K || (format) == UNPACK_Q5_K ? 2                                        \
     : (format) == UNPACK_Q4_0 || (format) == UNPACK_Q5_0 || (format) == UNPACK_Q8_0 ||            \
             (format) == UNPACK_Q2_K || (format) == UNPACK_Q3_K || (format) == UNPACK_Q6_K         \
         ? 4                                                                                       \
         : 1)
#define UNPACK_GROUP_ALIGNMENT(format)                                                             \
    ((format) == UNPACK_Q4_K || (format) == UNPACK_Q5_K                   ? 16                     \
     : (format) == UNPACK_Q4_0 || (format) == UNPACK_Q5_0 || (format) == UNPACK_Q8_0 ? 8           \
                                                                                       : 4)

/* Four consecutive Q4_0, Q5_0 or Q8_0 blocks (72, 88, 136 bytes) at a
 * multiple of 8: the image of their bytes in 8-byte loads, then each field
 * at its constant offset in it (blocks 0 and 2 have their quants 2 bytes
 * off the words, blocks 1 and 3 on them). */
UNPACK_FN void unpack_q4_0_quad_a8(const uint8_t *blocks, quant_unit *u)
{
    uint32_t image[18];
    unpack_words_a8(blocks, 18, image);
    for (int b = 0; b < 4; b++) {
        uint32_t qs[4];
        for (int k = 0; k < 4; k++)
            qs[k] = unpack_image_u32(image, 18 * b + 2 + 4 * k);
        unpack_q4_0_words(unpack_half(unpack_image_u16(image, 18 * b)), qs, &u[b]);
    }
}

UNPACK_FN void unpack_q5_0_quad_a8(const uint8_t *blocks, quant_unit *u)
{
    uint32_t image[22];
    unpack_words_a8(blocks, 22, image);
    for (int b = 0; b < 4; b++) {
        uint32_t qs[4];
        for (int k = 0; k < 4; k++)
            qs[k] = unpack_image_u32(image, 22 * b + 6 + 4 * k);
        unpack_q5_quants(qs, unpack_image_u32(image, 22 * b + 2), 16, &u[b]);
        u[b].scale[0] = u[b].scale[1] = unpack_half(unpack_image_u16(image, 22 * b));
        u[b].offset[0] = u[b].offset[1] = 0.0f;
    }
}

UNPACK_FN void unpack_q8_0_quad_a8(const uint8_t *blocks, quant_unit *u)
{
    uint32_t image[34];
    unpack_words_a8(blocks, 34, image);
    for (int b = 0; b < 4; b++) {
        for (int k = 0; k < 8; k++)
            u[b].q[k] = (int32_t)unpack_image_u32(image, 34 * b + 2 + 4 * k);
        u[b].bias = 0;
        u[b].scale[0] = u[b].scale[1] = unpack_half(unpack_image_u16(image, 34 * b));
        u[b].offset[0] = u[b].offset[1] = 0.0f;
    }
}

/* Q2_K units 4 half .. 4 half + 3: qs[32 half .. + 31] (two bits per
 * unit), scales[8 half .. + 7], d and dmin; 11 32-bit loads for four units. */
UNPACK_FN void unpack_q2_k_half_a4(const uint8_t *block, int half, quant_unit *u)
{
    uint32_t qs[8];
    for (int k = 0; k < 8; k++)
        qs[k] = unpack_u32_a4(block + 16 + 32 * half + 4 * k);
    const uint32_t scales[2] = {unpack_u32_a4(block + 8 * half), unpack_u32_a4(block + 8 * half + 4)};
    const uint32_t d_dmin = unpack_u32_a4(block + 80);
    const float d = unpack_half((uint16_t)(d_dmin & 0xffffu)), dmin = unpack_half((uint16_t)(d_dmin >> 16));
    for (int s = 0; s < 4; s++) {
        for (int k = 0; k < 8; k++)
            u[s].q[k] = (int32_t)((qs[k] >> (2 * s)) & 0x03030303u);
        u[s].bias = 0;
        for (int g = 0; g < 2; g++) {
            const uint32_t sc = unpack_word_byte(scales[(2 * s + g) / 4], (2 * s + g) % 4);
            u[s].scale[g] = d * (float)(sc & 0x0f);
            u[s].offset[g] = -(dmin * (float)(sc >> 4));
        }
    }
}

/* Q3_K units 4 half .. 4 half + 3: hmask[32] (bit 4 half + s for unit s),
 * qs[32 + 32 half .. + 31], scales[12] and d. */
UNPACK_FN void unpack_q3_k_half_a2(const uint8_t *block, int half, quant_unit *u)
{
    uint32_t hmask[8], qs[8], scales[3];
    unpack_words_a2(block, 8, hmask);
    unpack_words_a2(block + 32 + 32 * half, 8, qs);
    unpack_words_a2(block + 96, 3, scales);
    const float d = unpack_half(unpack_u16(block + 108));
    for (int s = 0; s < 4; s++) {
        for (int k = 0; k < 8; k++) {
            uint32_t low = (qs[k] >> (2 * s)) & 0x03030303u;
            uint32_t high = (hmask[k] >> (4 * half + s)) & 0x01010101u;
            u[s].q[k] = (int32_t)(low | (high << 2));
        }
        u[s].bias = 4;
        for (int g = 0; g < 2; g++) {
            /* sub-block 8 half + i, as unpack_q3_k_scale reads it */
            const int i = 2 * s + g;
            const uint32_t packed = unpack_word_byte(scales[i / 4], i % 4);
            const int low = (int)(half ? packed >> 4 : packed & 0x0f);
            const int high = (int)(unpack_word_byte(scales[2], i % 4) >> (2 * (2 * half + i / 4))) & 3;
            u[s].scale[g] = d * (float)((low | (high << 4)) - 32);
            u[s].offset[g] = 0.0f;
        }
    }
}

/* The scales of Q4_K/Q5_K units 2 pair and 2 pair + 1 from the 16-byte
 * block header (d, dmin, scales[12]): unpack_k_scale_min for both units at
 * once, their bytes j % 4 = 2 (pair % 2) and the next side by side in one
 * word (the masks keep the shifts from mixing them). */
UNPACK_FN void unpack_k_pair_scales(const uint32_t *head, int pair, quant_unit *u)
{
    const float d = unpack_half((uint16_t)(head[0] & 0xffffu)), dmin = unpack_half((uint16_t)(head[0] >> 16));
    const int shift = 16 * (pair % 2);
    const uint32_t s0 = head[1] >> shift, s1 = head[2] >> shift, s2 = head[3] >> shift;
    uint32_t scales, mins;
    if (pair < 2) {
        scales = s0 & 0x3f3fu;
        mins = s1 & 0x3f3fu;
    } else {
        scales = (s2 & 0x0f0fu) | ((s0 >> 2) & 0x3030u);
        mins = ((s2 >> 4) & 0x0f0fu) | ((s1 >> 2) & 0x3030u);
    }
    for (int i = 0; i < 2; i++) {
        u[i].scale[0] = u[i].scale[1] = d * (float)unpack_word_byte(scales, i);
        u[i].offset[0] = u[i].offset[1] = -(dmin * (float)unpack_word_byte(mins, i));
    }
}

/* Q4_K units 2 pair and 2 pair + 1 (low and high nibbles of
 * qs[32 pair .. + 31]) of a block at a multiple of 16: three 16-byte loads. */
UNPACK_FN void unpack_q4_k_pair_a16(const uint8_t *block, int pair, quant_unit *u)
{
    uint32_t head[4], qs[8];
    unpack_words_a16(block, 4, head);
    unpack_words_a16(block + 16 + 32 * pair, 8, qs);
    for (int k = 0; k < 8; k++) {
        u[0].q[k] = (int32_t)(qs[k] & 0x0f0f0f0fu);
        u[1].q[k] = (int32_t)((qs[k] >> 4) & 0x0f0f0f0fu);
    }
    u[0].bias = u[1].bias = 0;
    unpack_k_pair_scales(head, pair, u);
}

/* Q5_K units 2 pair and 2 pair + 1 of a block at a multiple of 16: the
 * header, qh[32] and qs[32 pair .. + 31] in five 16-byte loads. */
UNPACK_FN void unpack_q5_k_pair_a16(const uint8_t *block, int pair, quant_unit *u)
{
    uint32_t head[4], qh[8], qs[8];
    unpack_words_a16(block, 4, head);
    unpack_words_a16(block + 16, 8, qh);
    unpack_words_a16(block + 48 + 32 * pair, 8, qs);
    for (int k = 0; k < 8; k++) {
        /* bits 2 pair and 2 pair + 1 of each qh byte to bit 4 of the quants */
        const uint32_t high = qh[k] >> (2 * pair);
        u[0].q[k] = (int32_t)((qs[k] & 0x0f0f0f0fu) | ((high << 4) & 0x10101010u));
        u[1].q[k] = (int32_t)(((qs[k] >> 4) & 0x0f0f0f0fu) | ((high << 3) & 0x10101010u));
    }
    u[0].bias = u[1].bias = 0;
    unpack_k_pair_scales(head, pair, u);
}

/* Q6_K units 4 half .. 4 half + 3 of a block at an even address:
 * ql[64 half .. + 63] (low nibbles for units 0 and 1 of the half, high
 * nibbles for 2 and 3), qh[32 half .. + 31] (two bits per unit),
 * scales[8 half .. + 7] and d. */
UNPACK_FN void unpack_q6_k_half_a2(const uint8_t *block, int half, quant_unit *u)
{
    uint32_t ql[16], qh[8], scales[2];
    unpack_words_a2(block + 64 * half, 16, ql);
    unpack_words_a2(block + 128 + 32 * half, 8, qh);
    unpack_words_a2(block + 192 + 8 * half, 2, scales);
    const float d = unpack_half(unpack_u16(block + 208));
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 8; i++) {
            uint32_t low = (ql[8 * (k % 2) + i] >> (4 * (k / 2))) & 0x0f0f0f0fu;
            uint32_t high = (qh[i] >> (2 * k)) & 0x03030303u;
            u[k].q[i] = (int32_t)(low | (high << 4));
        }
        u[k].bias = 32;
        for (int g = 0; g < 2; g++) {
            u[k].scale[g] = d * (float)(int8_t)unpack_word_byte(scales[(2 * k + g) / 4], (2 * k + g) % 4);
            u[k].offset[g] = 0.0f;
        }
    }
}

/* Group `group` (0 .. units per block / UNPACK_GROUP_UNITS - 1) of the block
 * at block into u[UNPACK_GROUP_UNITS(format)]; the block's row meets
 * UNPACK_GROUP_ALIGNMENT(format). */
UNPACK_FN void unpack_group(int format, const uint8_t *block, int group, quant_unit *u)
{
    switch (format) {
    case UNPACK_Q4_0: unpack_q4_0_quad_a8(block, u); break;
    case UNPACK_Q5_0: unpack_q5_0_quad_a8(block, u); break;
    case UNPACK_Q8_0: unpack_q8_0_quad_a8(block, u); break;
    case UNPACK_Q2_K: unpack_q2_k_half_a4(block, group, u); break;
    case UNPACK_Q3_K: unpack_q3_k_half_a2(block, group, u); break;
    case UNPACK_Q4_K: unpack_q4_k_pair_a16(block, group, u); break;
    case UNPACK_Q5_K: unpack_q5_k_pair_a16(block, group, u); break;
    case UNPACK_Q6_K: unpack_q6_k_half_a2(block, group, u); break;
    default: unpack_unit(format, block, group, u); break; /* Q4_1, Q5_1, low-bit: groups of one */
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
    return u->scale[e / 16] * (float)(unpack_byte(u->q[e / 4], e % 4) - u->bias) + u->offset[e / 16];
}

/* sum of the byte products of a and b, plus c (the dp4a instruction). */
UNPACK_FN int32_t unpack_dp4a(int32_t a, int32_t b, int32_t c)
{
#ifdef UNPACK_DEVICE
    return __dp4a(a, b, c);
#else
    for (int i = 0; i < 4; i++)
        c += unpack_byte(a, i) * unpack_byte(b, i);
    return c;
#endif
}

/* The dot product of a unit with 32 activations quantized to 8 bits: xq
 * holds the quants (as q does), x_scale the activation scale,
 * x_quant_sums[g] the sum of the quants of half g and
 * x_sums[g] = x_scale * x_quant_sums[g]. The integer sums are exactly
 * those of the biased quants, sum (q - bias) x = sum q x - bias sum x. */
UNPACK_FN float unpack_unit_dot(const quant_unit *u, const int32_t *xq, float x_scale, const float *x_sums,
                                const int32_t *x_quant_sums)
{
    int32_t sum0 = -u->bias * x_quant_sums[0], sum1 = -u->bias * x_quant_sums[1];
    for (int k = 0; k < 4; k++) {
        sum0 = unpack_dp4a(u->q[k], xq[k], sum0);
        sum1 = unpack_dp4a(u->q[k + 4], xq[k + 4], sum1);
    }
    return x_scale * (u->scale[0] * (float)sum0 + u->scale[1] * (float)sum1) + u->offset[0] * x_sums[0] +
           u->offset[1] * x_sums[1];
}

#endif
