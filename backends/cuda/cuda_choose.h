/* The CUDA backend's choices, as small pure functions: which matmul path a
 * weight dtype and batch take, which attention kernel runs and how it splits
 * the cache rows, how CUDA-graph keys bucket the context length. No CUDA
 * headers: the host test tests/test_cuda_unpack.c checks them without a GPU.
 *
 * The thresholds are first choices, not yet tuned on a GPU (ggml switches
 * from its matrix-vector kernels to GEMM above 8 tokens too); retune them
 * with strata bench and say on which GPU. */
#ifndef STRATA_CUDA_CHOOSE_H
#define STRATA_CUDA_CHOOSE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/dtype.h"

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
    /* the low-bit formats (kernels/quant_unpack_lowbit.h) */
    case DTYPE_IQ1_S: case DTYPE_IQ1_M: case DTYPE_IQ2_XXS: case DTYPE_IQ2_XS: case DTYPE_IQ2_S:
    case DTYPE_IQ3_XXS: case DTYPE_IQ3_S: case DTYPE_IQ4_NL: case DTYPE_IQ4_XS: case DTYPE_MXFP4:
    case DTYPE_TQ1_0: case DTYPE_TQ2_0:
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

/* Weights the arena reserves for a dequantized tile: at least
 * cuda_gemm_rows_per_chunk(...) * n_in, as min(n_out * n_in, max(tile_elements,
 * n_in)). The exact product is not monotonic (5120 columns fill less of a
 * 2^25-element tile than 4096 do); this bound grows with n_in and n_out, so
 * the workspace estimate can take the largest n_in and n_out of a device's
 * weights as their worst case. It reserves at most n_in - 1 weights more. */
static inline int64_t cuda_gemm_tile_capacity(int64_t n_in, int64_t n_out, int64_t tile_elements)
{
    int64_t capacity = tile_elements > n_in ? tile_elements : n_in;
    int64_t whole = n_in * n_out;
    return whole < capacity ? whole : capacity;
}

/* The dequantized tile of the GEMM paths holds this many weights by default
 * (64 MiB of F16): large enough for cuBLAS to fill the GPU at 512 tokens.
 * Whether a tile small enough to stay in L2 is faster is for a GPU to say:
 * STRATA_CUDA_GEMM_TILE_MIB sets it at device open. */
/* OP_MATMUL_ID: columns computed per chunk of an expert's pairs (the
 * routed matrix-vector kernels take 1, 2, 4 or 8): n_tok rounded up to one
 * of those, at most CUDA_MATVEC_MAX_TOKENS. An expert takes a token at most
 * once, so at decode every chunk is one pair and no column is wasted; at a
 * batch an expert's weights are read once per 8 of its tokens. */
static inline int cuda_matmul_id_width(int64_t n_tok)
{
    int width = 1;
    while (width < CUDA_MATVEC_MAX_TOKENS && width < n_tok)
        width *= 2;
    return width;
}

/* The most chunks n_pairs pairs over n_expert experts make with chunks of
 * width: each pair is in one chunk, and each expert with pairs adds at most
 * one partly filled chunk to the n_pairs / width full ones. */
static inline int64_t cuda_matmul_id_max_chunks(int64_t n_pairs, int64_t n_expert, int width)
{
    int64_t experts = n_expert < n_pairs ? n_expert : n_pairs;
    int64_t chunks = n_pairs / width + experts;
    return chunks < n_pairs ? chunks : n_pairs;
}

#define CUDA_GEMM_TILE_ELEMENTS_DEFAULT ((int64_t)1 << 25)
#define CUDA_GEMM_TILE_MIB_MAX 65536.0

/* STRATA_CUDA_GEMM_TILE_MIB: MiB of F16 per tile, a decimal number in
 * (0, 65536] (fractions make tiles of a few rows, for tests); NULL or empty
 * keeps the default. At least one element. */
static inline bool cuda_gemm_tile_parse(const char *text, int64_t *tile_elements)
{
    if (!text || !text[0]) {
        *tile_elements = CUDA_GEMM_TILE_ELEMENTS_DEFAULT;
        return true;
    }
    char *end = NULL;
    double mib = strtod(text, &end);
    if (end == text || *end != '\0' || !(mib > 0.0) || mib > CUDA_GEMM_TILE_MIB_MAX)
        return false;
    int64_t elements = (int64_t)(mib * (double)(1 << 19)); /* two bytes each */
    *tile_elements = elements < 1 ? 1 : elements;
    return true;
}

#define CUDA_ATTENTION_MAX_SPLITS 64
#define CUDA_ATTENTION_MIN_SPLIT_ROWS 128
#define CUDA_ATTENTION_BLOCKS_PER_SM 2

/* Parts the cache rows of attention are split into (split-KV): enough
 * blocks to fill the GPU (two per SM) when there are few blocks per split
 * (n_pairs: (head, token) pairs for the rows kernel, query tiles for the
 * tiled one), as at decode, but no split shorter than
 * CUDA_ATTENTION_MIN_SPLIT_ROWS. */
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

/* The attention kernels of kernels/attention.cu (kernel_attention_variant). */
typedef enum cuda_attention_variant {
    CUDA_ATTENTION_ROWS,  /* a block per (query head, token), warps over the cache rows; split-KV */
    CUDA_ATTENTION_TILED, /* a block per (kv head, tile of queries), K/V tiles in shared memory */
} cuda_attention_variant;

/* STRATA_CUDA_ATTENTION: let the shapes choose, or force one kernel (to
 * compare both on one GPU in one run). */
typedef enum cuda_attention_mode {
    CUDA_ATTENTION_AUTO,
    CUDA_ATTENTION_FORCE_ROWS,
    CUDA_ATTENTION_FORCE_TILED,
} cuda_attention_mode;

/* The mode text names: NULL, "" and "auto" are AUTO, "rows" and "tiled"
 * force a kernel. Returns false (and leaves *mode) for anything else. */
static inline bool cuda_attention_mode_parse(const char *text, cuda_attention_mode *mode)
{
    if (!text || !text[0] || strcmp(text, "auto") == 0)
        *mode = CUDA_ATTENTION_AUTO;
    else if (strcmp(text, "rows") == 0)
        *mode = CUDA_ATTENTION_FORCE_ROWS;
    else if (strcmp(text, "tiled") == 0)
        *mode = CUDA_ATTENTION_FORCE_TILED;
    else
        return false;
    return true;
}

#define CUDA_ATTENTION_TILED_MIN_QUERIES 16

/* The attention kernel for n_tok tokens of n_heads query heads over
 * n_kv_heads kv heads. Tiled when more than one token and at least
 * CUDA_ATTENTION_TILED_MIN_QUERIES queries (tokens x query heads per kv
 * head) share each K/V row: that fills the smallest query tile of the
 * tiled kernel (16 queries, head_dim 256), below which most of its block
 * would idle, and from there every row it reads serves 16 or more queries
 * where the rows kernel reads it once per query. Decode (one token) stays on
 * the rows kernel, whose split-KV is the tuned path for few queries. A
 * first choice from that count, not yet measured on a GPU. */
static inline cuda_attention_variant cuda_attention_choose(cuda_attention_mode mode, int64_t n_tok, int64_t n_heads,
                                                           int64_t n_kv_heads)
{
    if (mode == CUDA_ATTENTION_FORCE_ROWS)
        return CUDA_ATTENTION_ROWS;
    if (mode == CUDA_ATTENTION_FORCE_TILED)
        return CUDA_ATTENTION_TILED;
    if (n_tok < 2 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0)
        return CUDA_ATTENTION_ROWS;
    return n_tok * (n_heads / n_kv_heads) >= CUDA_ATTENTION_TILED_MIN_QUERIES ? CUDA_ATTENTION_TILED
                                                                              : CUDA_ATTENTION_ROWS;
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
