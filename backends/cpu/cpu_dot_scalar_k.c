/* Scalar dot products of the K-quant formats (256-element super-blocks)
 * against Q8_K activations. Each super-block is first unpacked into 256 small
 * integers in element order, then summed against the activation quants in
 * groups of 16; scales and mins apply once per group. The unpacking follows
 * the GGUF (ggml) layouts described in base/quant.h. */
#include <string.h>

#include "../../base/quant.h"
#include "cpu_kernels.h"

/* Integer sums of q * q8 over each of the 16 groups of 16 elements. */
static void group_sums(const int8_t q[QK_K], const int8_t q8[QK_K], int32_t sums[QK_K / 16])
{
    for (int g = 0; g < QK_K / 16; g++) {
        int32_t sum = 0;
        for (int i = 0; i < 16; i++)
            sum += q[g * 16 + i] * q8[g * 16 + i];
        sums[g] = sum;
    }
}

/* Element order of Q2_K and Q3_K: each 128-element half reads 32 bytes of qs;
 * its four 32-element quarters take bit pairs 0-1, 2-3, 4-5, 6-7 of them. */
static void unpack_2bit_low(const uint8_t qs[QK_K / 4], int8_t q[QK_K])
{
    for (int half = 0; half < 2; half++)
        for (int quarter = 0; quarter < 4; quarter++)
            for (int l = 0; l < 32; l++)
                q[half * 128 + quarter * 32 + l] = (int8_t)((qs[half * 32 + l] >> (2 * quarter)) & 3);
}

float cpu_dot_q2_k_scalar(int64_t n, const void *w, const void *a)
{
    const block_q2_K *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    int8_t q[QK_K];
    int32_t sums[QK_K / 16];
    for (int64_t b = 0; b < n / QK_K; b++) {
        unpack_2bit_low(wb[b].qs, q);
        group_sums(q, ab[b].qs, sums);
        int32_t scaled = 0, mins = 0;
        for (int g = 0; g < QK_K / 16; g++) {
            scaled += (wb[b].scales[g] & 0x0F) * sums[g];
            mins += (wb[b].scales[g] >> 4) * ab[b].bsums[g];
        }
        sum += ab[b].d * (fp16_to_f32(wb[b].d) * (float)scaled - fp16_to_f32(wb[b].dmin) * (float)mins);
    }
    return sum;
}

/* The 16 6-bit scales of Q3_K: low 4 bits in bytes 0..7 (two per byte, first
 * the low nibbles of all eight then the high nibbles), high 2 bits in bytes
 * 8..11 (four per byte); stored with an offset of 32. */
static void unpack_q3_k_scales(const uint8_t packed[12], int scales[16])
{
    for (int i = 0; i < 16; i++) {
        int low = i < 8 ? packed[i] & 0x0F : packed[i - 8] >> 4;
        int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
        scales[i] = (low | (high << 4)) - 32;
    }
}

float cpu_dot_q3_k_scalar(int64_t n, const void *w, const void *a)
{
    const block_q3_K *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    int8_t q[QK_K];
    int32_t sums[QK_K / 16];
    int scales[16];
    for (int64_t b = 0; b < n / QK_K; b++) {
        unpack_2bit_low(wb[b].qs, q);
        /* the high bit of element e is bit (e / 32) of hmask[e % 32]; a clear
         * bit subtracts 4 */
        for (int e = 0; e < QK_K; e++)
            if (!(wb[b].hmask[e % 32] & (1u << (e / 32))))
                q[e] = (int8_t)(q[e] - 4);
        unpack_q3_k_scales(wb[b].scales, scales);
        group_sums(q, ab[b].qs, sums);
        int32_t scaled = 0;
        for (int g = 0; g < QK_K / 16; g++)
            scaled += scales[g] * sums[g];
        sum += ab[b].d * fp16_to_f32(wb[b].d) * (float)scaled;
    }
    return sum;
}

/* Scale and min j (0..7) of Q4_K/Q5_K: 6 bits each, packed in 12 bytes. */
static void q4_k_scale_min(int j, const uint8_t packed[K_SCALE_SIZE], int *scale, int *min)
{
    if (j < 4) {
        *scale = packed[j] & 63;
        *min = packed[j + 4] & 63;
    } else {
        *scale = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4);
        *min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
    }
}

/* Shared tail of Q4_K and Q5_K: 8 sub-blocks of 32 with a scale and a min. */
static float k_scale_min_dot(const int8_t q[QK_K], const uint8_t packed[K_SCALE_SIZE], uint16_t d16, uint16_t dmin16,
                             const block_q8_K *act)
{
    int32_t sums[QK_K / 16];
    group_sums(q, act->qs, sums);
    int32_t scaled = 0, mins = 0;
    for (int j = 0; j < 8; j++) {
        int scale, min;
        q4_k_scale_min(j, packed, &scale, &min);
        scaled += scale * (sums[2 * j] + sums[2 * j + 1]);
        mins += min * (act->bsums[2 * j] + act->bsums[2 * j + 1]);
    }
    return act->d * (fp16_to_f32(d16) * (float)scaled - fp16_to_f32(dmin16) * (float)mins);
}

/* Q4_K/Q5_K low nibbles: each 64-element chunk reads 32 bytes, low nibbles
 * first, then high nibbles. */
static void unpack_k_nibbles(const uint8_t qs[QK_K / 2], int8_t q[QK_K])
{
    for (int chunk = 0; chunk < 4; chunk++)
        for (int l = 0; l < 32; l++) {
            q[chunk * 64 + l] = (int8_t)(qs[chunk * 32 + l] & 0x0F);
            q[chunk * 64 + 32 + l] = (int8_t)(qs[chunk * 32 + l] >> 4);
        }
}

float cpu_dot_q4_k_scalar(int64_t n, const void *w, const void *a)
{
    const block_q4_K *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    int8_t q[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++) {
        unpack_k_nibbles(wb[b].qs, q);
        sum += k_scale_min_dot(q, wb[b].scales, wb[b].d, wb[b].dmin, &ab[b]);
    }
    return sum;
}

float cpu_dot_q5_k_scalar(int64_t n, const void *w, const void *a)
{
    const block_q5_K *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    int8_t q[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++) {
        unpack_k_nibbles(wb[b].qs, q);
        /* the fifth bit of element e is bit (e / 32) of qh[e % 32] */
        for (int e = 0; e < QK_K; e++)
            if (wb[b].qh[e % 32] & (1u << (e / 32)))
                q[e] = (int8_t)(q[e] + 16);
        sum += k_scale_min_dot(q, wb[b].scales, wb[b].d, wb[b].dmin, &ab[b]);
    }
    return sum;
}

float cpu_dot_q6_k_scalar(int64_t n, const void *w, const void *a)
{
    const block_q6_K *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    int8_t q[QK_K];
    int32_t sums[QK_K / 16];
    for (int64_t b = 0; b < n / QK_K; b++) {
        /* each 128-element half reads 64 bytes of ql and 32 of qh; quarter k
         * takes nibble (k / 2) of ql[32 (k % 2) + l] and bit pair k of qh[l] */
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = wb[b].ql + half * 64;
            const uint8_t *qh = wb[b].qh + half * 32;
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++) {
                    int low = (ql[32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
                    int high = (qh[l] >> (2 * k)) & 3;
                    q[half * 128 + k * 32 + l] = (int8_t)((low | (high << 4)) - 32);
                }
        }
        group_sums(q, ab[b].qs, sums);
        int32_t scaled = 0;
        for (int g = 0; g < QK_K / 16; g++)
            scaled += wb[b].scales[g] * sums[g];
        sum += ab[b].d * fp16_to_f32(wb[b].d) * (float)scaled;
    }
    return sum;
}
