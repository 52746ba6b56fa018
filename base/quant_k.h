/* Private to the block-format code: the per-format row functions of the
 * K-quants (quant_k.c), called by the dispatch in quant.c. Each takes a whole
 * number of blocks (n_blocks) and cannot fail. */
#ifndef STRATA_QUANT_K_H
#define STRATA_QUANT_K_H

#include <stdint.h>

#include "quant.h"

void dequantize_blocks_q2_K(const block_q2_K *src, float *dst, int64_t n_blocks);
void dequantize_blocks_q3_K(const block_q3_K *src, float *dst, int64_t n_blocks);
void dequantize_blocks_q4_K(const block_q4_K *src, float *dst, int64_t n_blocks);
void dequantize_blocks_q5_K(const block_q5_K *src, float *dst, int64_t n_blocks);
void dequantize_blocks_q6_K(const block_q6_K *src, float *dst, int64_t n_blocks);
void dequantize_blocks_q8_K(const block_q8_K *src, float *dst, int64_t n_blocks);

void quantize_blocks_q2_K(const float *src, block_q2_K *dst, int64_t n_blocks);
void quantize_blocks_q3_K(const float *src, block_q3_K *dst, int64_t n_blocks);
void quantize_blocks_q4_K(const float *src, block_q4_K *dst, int64_t n_blocks);
void quantize_blocks_q5_K(const float *src, block_q5_K *dst, int64_t n_blocks);
void quantize_blocks_q6_K(const float *src, block_q6_K *dst, int64_t n_blocks);
void quantize_blocks_q8_K(const float *src, block_q8_K *dst, int64_t n_blocks);

/* Nearest integer, ties to even (the rounding ggml's K-quantizers use).
 * Meant for |x| well below 2^22, which every caller guarantees. */
int quant_nearest_int(float x);

#endif
