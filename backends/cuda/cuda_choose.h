/* The CUDA backend's choices, as small pure functions: which matmul path a
 * weight dtype and batch take, how attention splits the cache rows, how
 * CUDA-graph keys bucket the context length. No CUDA headers: the host test
 * tests/test_cuda_unpack.c checks them without a GPU.
 *
 * The thresholds are first choices, not yet tuned on a GPU (ggml switches
 * from its matrix-vector kernels to GEMM above 8 tokens too); retune them
 * with strata bench and say on which GPU. */
#ifndef STRATA_CUDA_CHOOSE_H
#define STRATA_CUDA_CHOOSE_H

#include <stdbool.h>
#include <stdint.h>

#include "../../runtime/dtype.h"

/* Most tokens the matrix-vector kernels take (kernels/launch.h says the same
 * as KERNEL_MATVEC_MAX_TOKENS). */
#define CUDA_MATVEC_MAX_TOKENS 8

typedef enum cuda_matmul_path {
    CUDA_MATMUL_NONE,            /* not a weight dtype the backend reads */
    CUDA_MATMUL_MATVEC_FLOAT,    /* F32/F16/BF16 weights, few tokens: F32 dot products */
    CUDA_MATMUL_MATVEC_Q8,       /* block formats, few tokens: dp4a on 8-bit activations */
    CUDA_MATMUL_GEMM_F32,        /* F32 weights as they are, BF16 widened to F32: cublasSgemm */
    CUDA_MATMUL_GEMM_F16_SPLIT,  /* F16 weights; activations as f16 hi + lo: two cublasGemmEx */
    CUDA_MATMUL_GEMM_F16,        /* block formats dequantized to F16, activations to F16: cublasGemmEx */
} cuda_matmul_path;

static inline bool cuda_weight_dtype_is_block(strata_dtype dtype)
{
    switch (dtype) {
    case DTYPE_Q4_0: case DTYPE_Q4_1: case DTYPE_Q5_0: case DTYPE_Q5_1: case DTYPE_Q8_0:
    case DTYPE_Q2_K: case DTYPE_Q3_K: case DTYPE_Q4_K: case DTYPE_Q5_K: case DTYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

/* Weight dtypes matmul and get_rows read: the CPU backend's list. */
static inline bool cuda_weight_dtype_supported(strata_dtype dtype)
{
    return dtype == DTYPE_F32 || dtype == DTYPE_F16 || dtype == DTYPE_BF16 || cuda_weight_dtype_is_block(dtype);
}

/* The path of a matmul of a weight of dtype by n_tok activation columns.
 * Float weights keep F32 activations on every path, because the op contract
 * (and the conformance bound of 1e-10) promise F32 arithmetic for them; the
 * f16 hi + lo split keeps about 22 bits of each activation and still runs on
 * the tensor cores. Block formats already round activations to 8 bits on the
 * CPU, so f16 activations in their GEMM lose nothing that matters. */
static inline cuda_matmul_path cuda_matmul_choose(strata_dtype weight, int64_t n_tok)
{
    if (!cuda_weight_dtype_supported(weight))
        return CUDA_MATMUL_NONE;
    bool block = cuda_weight_dtype_is_block(weight);
    if (n_tok <= CUDA_MATVEC_MAX_TOKENS)
        return block ? CUDA_MATMUL_MATVEC_Q8 : CUDA_MATMUL_MATVEC_FLOAT;
    if (block)
        return CUDA_MATMUL_GEMM_F16;
    return weight == DTYPE_F16 ? CUDA_MATMUL_GEMM_F16_SPLIT : CUDA_MATMUL_GEMM_F32;
}

/* Rows of weight dequantized per GEMM call, so the dense tile stays within
 * tile_elements (the output matrix of a large vocabulary would otherwise
 * need a gigabyte); at least one row. */
static inline int64_t cuda_gemm_rows_per_chunk(int64_t n_in, int64_t n_out, int64_t tile_elements)
{
    int64_t rows = n_in > 0 ? tile_elements / n_in : n_out;
    if (rows < 1)
        rows = 1;
    return rows < n_out ? rows : n_out;
}

#define CUDA_ATTENTION_MAX_SPLITS 64
#define CUDA_ATTENTION_MIN_SPLIT_ROWS 128
#define CUDA_ATTENTION_BLOCKS_PER_SM 2

/* Parts the cache rows of attention are split into (split-KV): enough
 * blocks to fill the GPU (two per SM) when there are few (head, token) pairs,
 * as at decode, but no split shorter than CUDA_ATTENTION_MIN_SPLIT_ROWS. */
static inline int cuda_attention_splits(int64_t n_pairs, int64_t n_kv, int sm_count)
{
    if (n_kv <= 0 || n_pairs <= 0)
        return 1;
    int64_t target = (int64_t)(sm_count > 0 ? sm_count : 1) * CUDA_ATTENTION_BLOCKS_PER_SM;
    if (n_pairs >= target)
        return 1;
    int64_t splits = (target + n_pairs - 1) / n_pairs;
    int64_t by_rows = (n_kv + CUDA_ATTENTION_MIN_SPLIT_ROWS - 1) / CUDA_ATTENTION_MIN_SPLIT_ROWS;
    if (splits > by_rows)
        splits = by_rows;
    if (splits > CUDA_ATTENTION_MAX_SPLITS)
        splits = CUDA_ATTENTION_MAX_SPLITS;
    return splits < 1 ? 1 : (int)splits;
}

#define CUDA_GRAPH_KV_BUCKET 256

/* The n_kv a captured step scans: n_kv rounded up to a multiple of
 * CUDA_GRAPH_KV_BUCKET, at most the cache's n_ctx. Rows past a query's
 * position are masked by the positions the kernel reads from device memory,
 * so scanning more rows changes no result, and one graph serves 256
 * consecutive decode steps. */
static inline int64_t cuda_attention_kv_bucket(int64_t n_kv, int64_t n_ctx)
{
    if (n_kv <= 0)
        return 0;
    int64_t bucket = (n_kv + CUDA_GRAPH_KV_BUCKET - 1) / CUDA_GRAPH_KV_BUCKET * CUDA_GRAPH_KV_BUCKET;
    return bucket < n_ctx ? bucket : n_ctx;
}

#endif
