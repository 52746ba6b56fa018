/* OP_MATMUL: dst[n_out, n_tok] = W[n_in, n_out]^T x[n_in, n_tok].
 *
 * The activation rows are converted once per op into the weight's activation
 * format (Q8_0 / Q8_1 / Q8_K, or kept F32 for float weights). Output rows are
 * spread over the pool; each thread walks its rows in blocks small enough to
 * stay in cache (about 32 KiB of weights) and runs every token against a block
 * before moving on, so a weight byte is read from memory once per op however
 * many tokens there are.
 *
 * With more than one token and a tiled kernel for the weight's format
 * (cpu_tile.h), the tokens go through a block of rows CPU_TILE_TOKENS (the
 * AVX-512 tiles: CPU_TILE_TOKENS_WIDE) at a time, each weight block
 * unpacked once per tile instead of once per token.
 * One token (decode) runs the dot product per row, or where the chosen
 * instruction set has one for the format, a matrix-vector kernel
 * (cpu_gemv_avx2.c, cpu_gemv_avx512.c) that takes a block of rows against
 * an activation arranged once per call. */
#include <string.h>

#include "../../base/quant.h"
#include "cpu_internal.h"

#define WEIGHT_BLOCK_BYTES (32 * 1024)
#define MAX_ROWS_PER_BLOCK 64
/* A tiled matmul takes at least this many rows per block even where they
 * pass WEIGHT_BLOCK_BYTES (wide rows: 2 rows of a 14336-wide Q8_0 layer
 * fill it): the AVX-512 tiles transpose the tokens' activations once per
 * call and need rows to spread that over (Q8_0 at 14336 x 1024 by 64
 * tokens, one thread: 47 GMAC/s with 2 rows, 86 with 16); the AVX2 tiles
 * measured the same or a little faster. 16 such rows (about 240 KiB) still
 * sit in L2 while the token tiles pass over them. The decode kernels
 * (cpu_gemv_*.c) take as many, so their groups of four rows fill. */
#define MIN_TILED_ROWS_PER_BLOCK 16
/* Multiply-adds per claimed chunk: below this the fork-join (a wake-up of a
 * sleeping worker, some microseconds) costs more than it saves, so tiny
 * matmuls (small models at decode) stay on the calling thread. */
#define MIN_MACS_PER_CHUNK 65536
#define QUANTIZE_PARALLEL_MIN_TOKENS 8

typedef struct matmul_job {
    const char *weight;
    size_t weight_row_bytes;
    const char *act;
    size_t act_row_bytes;
    float *dst;
    int64_t n_in, n_out, n_tok;
    int64_t rows_per_block;
    cpu_dot_fn dot;
    cpu_tile_fn tile;           /* NULL: one dot product per (row, token) */
    int tile_tokens;            /* tokens per call of tile */
    cpu_tile_fn gemv;           /* one token: rows at a time, else NULL */
    float *act_scales;          /* activations of a tiled matmul: block scales as f32 ... */
    int32_t *act_sums;          /* ... and for Q8_0 the blocks' sums of quants (cpu_tile.h) */
    int64_t act_scales_stride;  /* floats per block */
    /* activation conversion */
    const float *x;
    cpu_act_format act_format;
    cpu_isa isa;
} matmul_job;

static void quantize_tokens(void *arg, int64_t begin, int64_t end, int thread_index)
{
    (void)thread_index;
    const matmul_job *job = arg;
    for (int64_t t = begin; t < end; t++) {
        char *row = (char *)job->act + (size_t)t * job->act_row_bytes;
        cpu_quantize_activation(job->act_format, job->x + t * job->n_in, row, job->n_in, job->isa);
        if (job->act_scales && job->act_format == CPU_ACT_Q8_0) {
            const block_q8_0 *blocks = (const block_q8_0 *)row;
            for (int64_t b = 0; b < job->n_in / QK8_0; b++) {
                int32_t sum = 0;
                for (int i = 0; i < QK8_0; i++)
                    sum += blocks[b].qs[i];
                job->act_scales[b * job->act_scales_stride + t] = fp16_to_f32(blocks[b].d);
                job->act_sums[b * job->act_scales_stride + t] = sum;
            }
        } else if (job->act_scales) {
            const block_q8_K *blocks = (const block_q8_K *)row;
            for (int64_t b = 0; b < job->n_in / QK_K; b++)
                job->act_scales[b * job->act_scales_stride + t] = blocks[b].d;
        }
    }
}

static void matmul_rows_tiled(const matmul_job *job, int64_t row_begin, int64_t row_end)
{
    for (int64_t t = 0; t < job->n_tok; t += job->tile_tokens) {
        cpu_tile tile = {
            .n = job->n_in,
            .weight = job->weight + (size_t)row_begin * job->weight_row_bytes,
            .weight_stride = job->weight_row_bytes,
            .rows = row_end - row_begin,
            .act = job->act + (size_t)t * job->act_row_bytes,
            .act_stride = job->act_row_bytes,
            .act_scales = job->act_scales ? job->act_scales + t : NULL,
            .act_sums = job->act_sums ? job->act_sums + t : NULL,
            .act_scales_stride = job->act_scales_stride,
            .tokens = (int)(job->n_tok - t < job->tile_tokens ? job->n_tok - t : job->tile_tokens),
            .dst = job->dst + t * job->n_out + row_begin,
            .dst_stride = job->n_out,
        };
        job->tile(&tile);
    }
}

static void matmul_rows(void *arg, int64_t begin, int64_t end, int thread_index)
{
    (void)thread_index;
    const matmul_job *job = arg;
    for (int64_t block = begin; block < end; block += job->rows_per_block) {
        int64_t block_end = block + job->rows_per_block < end ? block + job->rows_per_block : end;
        if (job->tile) {
            matmul_rows_tiled(job, block, block_end);
            continue;
        }
        if (job->gemv) {
            cpu_tile rows = {.n = job->n_in,
                             .weight = job->weight + (size_t)block * job->weight_row_bytes,
                             .weight_stride = job->weight_row_bytes,
                             .rows = block_end - block,
                             .act = job->act,
                             .act_stride = job->act_row_bytes,
                             .tokens = 1,
                             .dst = job->dst + block,
                             .dst_stride = job->n_out};
            job->gemv(&rows);
            continue;
        }
        for (int64_t t = 0; t < job->n_tok; t++) {
            const void *act = job->act + (size_t)t * job->act_row_bytes;
            float *out = job->dst + t * job->n_out;
            for (int64_t r = block; r < block_end; r++)
                out[r] = job->dot(job->n_in, job->weight + (size_t)r * job->weight_row_bytes, act);
        }
    }
}

strata_status cpu_matmul_compute(cpu_context *ctx, const cpu_matmul_operands *m, strata_error *err)
{
    const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(m->dtype);
    cpu_kernel_choice choice = cpu_kernel_choose(m->dtype, ctx->isa);
    cpu_dot_fn dot = cpu_kernel_dot(m->dtype, choice);
    if (!kernel || !dot)
        return strata_fail(err, STRATA_UNSUPPORTED, "cpu matmul: no kernel for %s weights", dtype_name(m->dtype));
    matmul_job job = {
        .weight = m->weight,
        .weight_row_bytes = m->weight_row_bytes,
        .dst = m->dst,
        .n_in = m->n_in,
        .n_out = m->n_out,
        .n_tok = m->n_tok,
        .dot = dot,
        .x = m->x,
        .act_format = kernel->act,
        .isa = ctx->isa,
    };
    if (job.n_out == 0 || job.n_tok == 0)
        return STRATA_OK;
    if (job.n_tok > 1) {
        job.tile = cpu_kernel_tile(m->dtype, choice);
        job.tile_tokens = cpu_kernel_tile_tokens(m->dtype, choice);
    }
    else
        job.gemv = cpu_kernel_gemv(m->dtype, choice);
    job.act_row_bytes = cpu_act_row_bytes(kernel->act, job.n_in);
    if (kernel->act == CPU_ACT_F32) {
        job.act = (const char *)job.x;
    } else {
        size_t scratch_bytes = cpu_act_scratch_bytes(kernel->act, job.n_in, job.n_tok);
        if (scratch_bytes == SIZE_MAX)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "cpu matmul: %lld activation rows do not fit in memory",
                               (long long)job.n_tok);
        strata_status status = cpu_scratch_reserve(ctx, &ctx->activations, scratch_bytes, err);
        if (status != STRATA_OK)
            return status;
        job.act = ctx->activations.data;
        if (kernel->act == CPU_ACT_Q8_0 || kernel->act == CPU_ACT_Q8_K) {
            /* the f32 scales first (aligned), then the rows, as cpu_act_scratch_bytes counts them */
            int64_t blocks = job.n_in / (kernel->act == CPU_ACT_Q8_0 ? QK8_0 : QK_K);
            job.act_scales_stride = cpu_act_scales_stride(job.n_tok);
            size_t per_block = kernel->act == CPU_ACT_Q8_0 ? sizeof(float) + sizeof(int32_t) : sizeof(float);
            job.act = (char *)ctx->activations.data + (size_t)blocks * (size_t)job.act_scales_stride * per_block;
            if (job.tile) {
                job.act_scales = ctx->activations.data;
                if (kernel->act == CPU_ACT_Q8_0)
                    job.act_sums = (int32_t *)(job.act_scales + blocks * job.act_scales_stride);
                /* the padding tokens are read (and multiplied by 0): they must be finite */
                for (int64_t b = 0; b < blocks; b++)
                    for (int64_t t = job.n_tok; t < job.act_scales_stride; t++) {
                        job.act_scales[b * job.act_scales_stride + t] = 0.0f;
                        if (job.act_sums)
                            job.act_sums[b * job.act_scales_stride + t] = 0;
                    }
            }
        }
        cpu_parallel_for(ctx->pool, job.n_tok, QUANTIZE_PARALLEL_MIN_TOKENS, quantize_tokens, &job);
    }
    int64_t rows = job.weight_row_bytes ? (int64_t)(WEIGHT_BLOCK_BYTES / job.weight_row_bytes) : MAX_ROWS_PER_BLOCK;
    if ((job.tile || job.gemv) && rows < MIN_TILED_ROWS_PER_BLOCK)
        rows = MIN_TILED_ROWS_PER_BLOCK;
    /* The wide (AVX-512) tiles transpose up to 64 tokens' activations per
     * call, a fifth of a Q4_K call's time over 16 rows; they unpack each
     * row's blocks once for all of those tokens, so the block's weights are
     * read once per call and 64 rows (about 150 KiB at 4096 wide) stream
     * through L2 with the transposition spread over four times as many:
     * one Zen 4 core, Q4_K 110 -> 123 GMAC/s, Q6_K 96 -> 105, Q4_0 98 ->
     * 107 (by 16 tokens). The decode kernels likewise arrange the
     * activation once per call (Q4_0) and stream longer runs of rows: Q4_0
     * read from memory by one thread, 18.8 -> 22.9 GB/s. */
    if ((job.tile && job.tile_tokens > CPU_TILE_TOKENS) || job.gemv)
        rows = MAX_ROWS_PER_BLOCK;
    job.rows_per_block = rows < 1 ? 1 : rows > MAX_ROWS_PER_BLOCK ? MAX_ROWS_PER_BLOCK : rows;
    int64_t macs_per_row = job.n_in * job.n_tok;
    int64_t min_rows = macs_per_row >= MIN_MACS_PER_CHUNK ? 1 : MIN_MACS_PER_CHUNK / (macs_per_row ? macs_per_row : 1);
    /* the pool's chunks are multiples of min_rows: multiples of 16 rows keep
     * the tiles' row octets full */
    if (job.tile && min_rows < MIN_TILED_ROWS_PER_BLOCK)
        min_rows = MIN_TILED_ROWS_PER_BLOCK;
    cpu_parallel_for(ctx->pool, job.n_out, min_rows, matmul_rows, &job);
    return STRATA_OK;
}

strata_status cpu_run_matmul(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *weight = op->src[0], *x = op->src[1];
    cpu_matmul_operands m = {
        .dtype = weight->dtype,
        .weight = cpu_tensor_data(weight),
        .weight_row_bytes = weight->nb[1],
        .n_in = weight->ne[0],
        .n_out = weight->ne[1],
        .x = cpu_tensor_data(x),
        .n_tok = tensor_row_count(x),
        .dst = cpu_tensor_data(op->dst),
    };
    return cpu_matmul_compute(ctx, &m, err);
}
