/* OP_MATMUL: dst[n_out, n_tok] = W[n_in, n_out]^T x[n_in, n_tok], along the
 * path cuda_matmul_choose picks (cuda_choose.h):
 *
 * - up to CUDA_MATVEC_MAX_TOKENS tokens: the matrix-vector kernels
 *   (kernels/matvec.cu), dp4a on 8-bit activations for block formats, F32
 *   for float weights;
 * - more tokens: cuBLAS. Block-format weights are dequantized to F16 in row
 *   tiles of ctx->gemm_tile_elements (64 MiB unless STRATA_CUDA_GEMM_TILE_MIB
 *   says otherwise; a 128k-vocabulary output matrix never needs a gigabyte
 *   of scratch) and multiplied with F16 activations by
 *   cublasGemmEx, F32 accumulation. Activation columns whose magnitudes
 *   exceed 32768 are first divided by a power of two and the result columns
 *   multiplied back (kernel_activations_to_f16), so they cannot overflow
 *   f16. F16 weights are used as they are, against
 *   activations split into f16 hi + lo parts (two GEMMs, about 22 bits of
 *   each activation, so float weights keep F32-grade results). F32 weights go
 *   to cublasSgemm as they are, BF16 weights after widening to F32 tiles.
 *
 * In column-major terms the weight is an n_in x n_out matrix with leading
 * dimension n_in (one stored row per column), so dst = W^T x is
 * gemm(T, N, m = rows, n = n_tok, k = n_in), and a tile of rows starting at
 * row0 writes dst + row0 with leading dimension n_out.
 *
 * Compiled, not yet run on a GPU: the conformance suite covers every path
 * (n_tok 1, 2, 7 go to the matrix-vector kernels, 33 to cuBLAS). */
#include "cuda_internal.h"

typedef struct matmul_shape {
    int64_t n_in, n_out, n_tok;
    int64_t row_bytes;
    cuda_matmul_path path;
    int64_t tile_rows;     /* GEMM paths that dequantize: rows per tile */
    int64_t tile_capacity; /* weights the arena holds for the tile (>= tile_rows * n_in) */
} matmul_shape;

static void shape_of(const cuda_op *op, int64_t gemm_tile_elements, matmul_shape *shape)
{
    const cuda_tensor *w = &op->src[0], *x = &op->src[1];
    shape->n_in = w->ne[0];
    shape->n_out = w->ne[1];
    shape->n_tok = x->ne[1] * x->ne[2] * x->ne[3];
    shape->row_bytes = w->nb[1];
    shape->path = cuda_matmul_choose((strata_dtype)w->dtype, shape->n_tok);
    shape->tile_rows = cuda_gemm_rows_per_chunk(shape->n_in, shape->n_out, gemm_tile_elements);
    shape->tile_capacity = cuda_gemm_tile_capacity(shape->n_in, shape->n_out, gemm_tile_elements);
}

size_t cuda_matmul_scratch_bytes(const cuda_op *op, int64_t gemm_tile_elements)
{
    matmul_shape s;
    shape_of(op, gemm_tile_elements, &s);
    size_t activations = (size_t)(s.n_tok * s.n_in);
    switch (s.path) {
    case CUDA_MATMUL_MATVEC_Q8:
        return cuda_align(activations) + cuda_align(activations / 32 * 16);
    case CUDA_MATMUL_GEMM_F16:
        return cuda_align(activations * 2) + cuda_align((size_t)s.n_tok * 4) + cuda_align((size_t)s.tile_capacity * 2);
    case CUDA_MATMUL_GEMM_F16_SPLIT:
        return 2 * cuda_align(activations * 2) + cuda_align((size_t)s.n_tok * 4);
    case CUDA_MATMUL_GEMM_F32:
        return op->src[0].dtype == DTYPE_BF16 ? cuda_align((size_t)s.tile_capacity * 4) : 0;
    case CUDA_MATMUL_MATVEC_FLOAT:
    case CUDA_MATMUL_NONE:
        break;
    }
    return 0;
}

/* dst[rows, n_tok] (leading dimension ldc) = A^T B for A [k, rows] and
 * B [k, n_tok], both of type `type`, F32 accumulation; beta 0 or 1. */
static strata_status gemm(cuda_context *ctx, const void *a, const void *b, cudaDataType type, float *dst,
                          int64_t rows, int64_t n_tok, int64_t k, int64_t ldc, float beta, strata_error *err)
{
    const float alpha = 1.0f;
    if (type == CUDA_R_32F)
        CUBLAS_CHECK(err,
                     cublasSgemm(ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)n_tok, (int)k, &alpha, a,
                                 (int)k, b, (int)k, &beta, dst, (int)ldc),
                     "Sgemm");
    else
        CUBLAS_CHECK(err,
                     cublasGemmEx(ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)n_tok, (int)k, &alpha, a,
                                  type, (int)k, b, type, (int)k, &beta, dst, CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT),
                     "GemmEx");
    return STRATA_OK;
}

/* GEMM over row tiles of a weight that is first dequantized (to F16 or F32). */
static strata_status gemm_dequantized(cuda_context *ctx, const cuda_op *op, const matmul_shape *s, void *tile,
                                      bool tile_f32, const void *x, strata_error *err)
{
    const cuda_tensor *w = &op->src[0];
    for (int64_t row0 = 0; row0 < s->n_out; row0 += s->tile_rows) {
        int64_t rows = s->n_out - row0 < s->tile_rows ? s->n_out - row0 : s->tile_rows;
        CUDA_CHECK(err,
                   kernel_dequantize_rows(tile, tile_f32, w->data + row0 * s->row_bytes, w->dtype, s->row_bytes,
                                          s->n_in, rows, ctx->stream),
                   "launching the weight dequantization");
        strata_status status = gemm(ctx, tile, x, tile_f32 ? CUDA_R_32F : CUDA_R_16F, (float *)op->dst.data + row0,
                                    rows, s->n_tok, s->n_in, s->n_out, 0.0f, err);
        if (status != STRATA_OK)
            return status;
    }
    return STRATA_OK;
}

strata_status cuda_launch_matmul(cuda_context *ctx, const cuda_op *op, strata_error *err)
{
    matmul_shape s;
    shape_of(op, ctx->gemm_tile_elements, &s);
    const cuda_tensor *w = &op->src[0];
    const float *x = (const float *)op->src[1].data;
    float *dst = (float *)op->dst.data;
    char *arena = ctx->arena;
    const size_t activations = (size_t)(s.n_tok * s.n_in);
    if (s.n_out == 0 || s.n_tok == 0)
        return STRATA_OK;
    switch (s.path) {
    case CUDA_MATMUL_MATVEC_FLOAT:
        CUDA_CHECK(err,
                   kernel_matvec_float(dst, w->data, w->dtype, s.row_bytes, x, s.n_in, s.n_out, (int)s.n_tok,
                                       ctx->stream),
                   "launching the matrix-vector kernel");
        return STRATA_OK;
    case CUDA_MATMUL_MATVEC_Q8: {
        int32_t *xq = (int32_t *)arena;
        float *xs = (float *)(arena + cuda_align(activations));
        CUDA_CHECK(err, kernel_quantize_q8(xq, xs, x, s.n_in, s.n_tok, ctx->stream),
                   "launching the activation quantization");
        CUDA_CHECK(err,
                   kernel_matvec_q8(dst, w->data, w->dtype, s.row_bytes, xq, xs, s.n_in, s.n_out, (int)s.n_tok,
                                    ctx->stream),
                   "launching the matrix-vector kernel");
        return STRATA_OK;
    }
    case CUDA_MATMUL_GEMM_F16: {
        uint16_t *x16 = (uint16_t *)arena;
        float *column_scale = (float *)(arena + cuda_align(activations * 2));
        void *tile = arena + cuda_align(activations * 2) + cuda_align((size_t)s.n_tok * 4);
        CUDA_CHECK(err, kernel_activations_to_f16(x16, NULL, column_scale, x, s.n_in, s.n_tok, ctx->stream),
                   "launching the activation conversion");
        strata_status status = gemm_dequantized(ctx, op, &s, tile, false, x16, err);
        if (status == STRATA_OK)
            CUDA_CHECK(err, kernel_scale_columns(dst, column_scale, s.n_out, s.n_tok, ctx->stream),
                       "launching the column rescale");
        return status;
    }
    case CUDA_MATMUL_GEMM_F16_SPLIT: {
        uint16_t *hi = (uint16_t *)arena, *lo = (uint16_t *)(arena + cuda_align(activations * 2));
        float *column_scale = (float *)(arena + 2 * cuda_align(activations * 2));
        CUDA_CHECK(err, kernel_activations_to_f16(hi, lo, column_scale, x, s.n_in, s.n_tok, ctx->stream),
                   "launching the activation conversion");
        strata_status status = gemm(ctx, w->data, hi, CUDA_R_16F, dst, s.n_out, s.n_tok, s.n_in, s.n_out, 0.0f, err);
        if (status == STRATA_OK)
            status = gemm(ctx, w->data, lo, CUDA_R_16F, dst, s.n_out, s.n_tok, s.n_in, s.n_out, 1.0f, err);
        if (status == STRATA_OK)
            CUDA_CHECK(err, kernel_scale_columns(dst, column_scale, s.n_out, s.n_tok, ctx->stream),
                       "launching the column rescale");
        return status;
    }
    case CUDA_MATMUL_GEMM_F32:
        if (w->dtype == DTYPE_BF16)
            return gemm_dequantized(ctx, op, &s, arena, true, x, err);
        return gemm(ctx, w->data, x, CUDA_R_32F, dst, s.n_out, s.n_tok, s.n_in, s.n_out, 0.0f, err);
    case CUDA_MATMUL_NONE:
        break;
    }
    return strata_fail(err, STRATA_UNSUPPORTED, "cuda matmul: no kernel for %s weights",
                       dtype_name((strata_dtype)w->dtype));
}
