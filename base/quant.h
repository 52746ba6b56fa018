/* Block formats, bit-exact with the GGUF (ggml) definitions, and their scalar
 * reference quantize / dequantize.
 *
 * A row of n elements of a block format is n / block_elements consecutive
 * blocks. Each struct below is the on-disk layout (little-endian, packed by
 * construction: every member is a byte array or a naturally aligned 16/32-bit
 * field, and the static asserts in quant.c pin the sizes). Half floats are kept
 * as their uint16_t bit patterns. */
#ifndef STRATA_QUANT_H
#define STRATA_QUANT_H

#include <stdint.h>

#include "dtype.h"
#include "status.h"

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct block_q4_0 { uint16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct block_q4_1 { uint16_t d; uint16_t m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct block_q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct block_q5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct block_q8_0 { uint16_t d; int8_t qs[QK8_0]; } block_q8_0;
/* s = d * sum(qs), precomputed for the Q4_1/Q5_1 dot products */
typedef struct block_q8_1 { uint16_t d; uint16_t s; int8_t qs[QK8_1]; } block_q8_1;

typedef struct block_q2_K {
    uint8_t scales[QK_K / 16]; /* low 4 bits: scale, high 4 bits: min */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    uint16_t d;                /* super-block scale for the scales */
    uint16_t dmin;             /* super-block scale for the mins */
} block_q2_K;

typedef struct block_q3_K {
    uint8_t hmask[QK_K / 8]; /* high bit of each quant */
    uint8_t qs[QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];      /* 16 6-bit scales */
    uint16_t d;
} block_q3_K;

typedef struct block_q4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 6-bit scales and 8 6-bit mins */
    uint8_t qs[QK_K / 2];
} block_q4_K;

typedef struct block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;

typedef struct block_q6_K {
    uint8_t ql[QK_K / 2];      /* low 4 bits */
    uint8_t qh[QK_K / 4];      /* high 2 bits */
    int8_t scales[QK_K / 16];  /* 8-bit scales */
    uint16_t d;
} block_q6_K;

/* Activation format for K-quant dot products (not stored in files). */
typedef struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16]; /* sums of groups of 16 quants */
} block_q8_K;

/* IEEE half and bfloat16 conversions (round to nearest even on the way down). */
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

/* Dequantizes n elements (a multiple of the dtype's block size) of src into
 * dst. Works for every dtype with traits except the integer types.
 * Returns STRATA_UNSUPPORTED for a dtype without a dequantizer and
 * STRATA_INVALID_INPUT when n is not a multiple of the block size. */
strata_status quant_dequantize_row(strata_dtype dtype, const void *src, float *dst, int64_t n,
                                   strata_error *err);

/* Quantizes n f32 values (a multiple of the block size) into dst, which holds
 * dtype_row_bytes(dtype, n) bytes. Reference (scalar) quality: the same
 * choices of scales as ggml's reference quantizers, without an importance
 * matrix; the i-quants use strata's own search (quant_iq_quantize.c), whose
 * first call for a grid format builds that grid's search index (and can then
 * fail with STRATA_OUT_OF_MEMORY). */
strata_status quant_quantize_row(strata_dtype dtype, const float *src, void *dst, int64_t n,
                                 strata_error *err);

#endif
