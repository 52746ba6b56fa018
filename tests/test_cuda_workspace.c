/* The CUDA backend's op workspace: the pure estimate of
 * backend_registration.workspace_bytes against what the ops really need, and
 * the limit and peak of a device.
 *
 * Host part (no device; runs wherever the CUDA backend is built): the
 * estimate bounds the arena need of every op a query allows (weights of any
 * dtype and of every size up to the largest, each token count, attention
 * over any part of the cache, on the query's SM count), asked of the same
 * scratch functions run_op uses; it never shrinks as a query grows, an
 * unknown SM count is the worst, and STRATA_CUDA_GEMM_TILE_MIB counts.
 *
 * Device part (the emulated variant, or a GPU): forward-pass-shaped ops
 * (matmuls of each weight kind at batch 1 and a prompt batch, attention over
 * a long cache at decode and prefill, inside and outside steps) all run under
 * a limit set to the estimate, and the peak stays within it; a limit below an
 * op's need fails with the message, without touching the device; growth
 * stops at the limit rather than doubling past it. Expert matmuls (matmul_id)
 * of each weight kind and batch run under the estimate of a query with only
 * experts, on a device of their own (the peak counts from open). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"

#ifdef STRATA_WITH_CUDA
#include "backends/cuda/cuda_internal.h"
#include "test_check.h"
#endif

#define MIB (1024.0 * 1024.0)

/* The shapes of the device part: small enough for the emulator, with every
 * path of each op (matrix-vector and GEMM, split-KV at decode, tiled prefill). */
enum {
    N_IN = 256,
    N_OUT = 512,
    PROMPT = 64,
    HEADS = 2,
    KV_HEADS = 1,
    HEAD_DIM = 64,
    N_CTX = 2048,
    N_EXPERT = 8,     /* matmul_id: experts of [N_IN, N_OUT] */
    EXPERTS_USED = 4, /* k */
};

#ifdef STRATA_WITH_CUDA

static const backend_registration *cuda;

static uint64_t estimate(int64_t max_tokens, int64_t rows, int64_t cols, int64_t heads, int64_t kv_heads,
                         int64_t head_dim, int64_t n_ctx, int multiprocessors)
{
    backend_workspace_query query = {
        .max_tokens = max_tokens,
        .max_matmul_rows = rows,
        .max_matmul_cols = cols,
        .max_matmul_row_bytes = cols * 2,
        .n_heads = heads,
        .n_kv_heads = kv_heads,
        .head_dim = head_dim,
        .n_ctx = n_ctx,
        .multiprocessors = multiprocessors,
    };
    return cuda->workspace_bytes(&query);
}

/* --- host part ------------------------------------------------------------------------------------------ */

static void describe(cuda_tensor *t, strata_dtype dtype, int64_t ne0, int64_t ne1, int64_t ne2)
{
    memset(t, 0, sizeof *t);
    t->dtype = (int32_t)dtype;
    t->present = 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->ne[3] = 1;
}

/* Every matmul with a weight of at most rows x cols (several sizes, the
 * awkward 5120-wide one among them) and at most max_tokens tokens, and every
 * attention over at most n_ctx rows (bucketed as in a step, or not), need no
 * more arena than the estimate leaves beside cuBLAS's workspace and the
 * flags. The descriptors are built as run_op builds them, in AUTO mode. */
static void check_bound(int64_t max_tokens, int64_t rows, int64_t cols, int64_t heads, int64_t kv_heads,
                        int64_t head_dim, int64_t n_ctx, int sms)
{
    const uint64_t total = estimate(max_tokens, rows, cols, heads, kv_heads, head_dim, n_ctx, sms);
    const uint64_t fixed = CUDA_CUBLAS_WORKSPACE_BYTES + CUDA_ERROR_FLAGS_BYTES;
    CHECK(total >= fixed, "the estimate %llu is below the fixed workspace", (unsigned long long)total);
    const uint64_t arena = total - fixed;
    int64_t tile = 0;
    cuda_gemm_tile_parse(getenv("STRATA_CUDA_GEMM_TILE_MIB"), &tile);
    const strata_dtype dtypes[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_Q4_0, DTYPE_Q4_K, DTYPE_Q6_K};
    const int64_t tokens[] = {1, 2, 7, 8, 9, 33, max_tokens / 2, max_tokens - 1, max_tokens};
    int over = 0;
    uint64_t worst = 0;
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
        for (int64_t n_in = 256; n_in <= cols; n_in += n_in < 4096 ? n_in : 1024)
            for (int64_t n_out = 256; n_out <= rows; n_out *= 2)
                for (size_t t = 0; t < sizeof tokens / sizeof tokens[0]; t++) {
                    if (tokens[t] < 1 || tokens[t] > max_tokens)
                        continue;
                    cuda_op op = {.kind = OP_MATMUL, .n_src = 2};
                    describe(&op.src[0], dtypes[d], n_in, n_out, 1);
                    describe(&op.src[1], DTYPE_F32, n_in, tokens[t], 1);
                    describe(&op.dst, DTYPE_F32, n_out, tokens[t], 1);
                    uint64_t need = cuda_op_scratch_bytes(&op, tile);
                    worst = need > worst ? need : worst;
                    over += need > arena;
                }
    CHECK(over == 0, "%d matmuls need more arena than the estimate's %.2f MiB", over, arena / MIB);
    over = 0;
    const cuda_attention_mode modes[] = {CUDA_ATTENTION_AUTO, CUDA_ATTENTION_FORCE_ROWS, CUDA_ATTENTION_FORCE_TILED};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
        for (int64_t n_tok = 1; n_tok <= max_tokens; n_tok += n_tok < 64 ? 1 : 37)
            for (int64_t n_kv = 1; n_kv <= n_ctx; n_kv += n_kv < 512 ? 61 : 997)
                for (int step = 0; step < 2; step++) {
                    cuda_op op = {.kind = OP_ATTENTION, .n_src = 4};
                    describe(&op.src[0], DTYPE_F32, head_dim, heads, n_tok);
                    describe(&op.src[1], DTYPE_F16, head_dim, kv_heads, n_ctx);
                    op.src[2] = op.src[1];
                    describe(&op.src[3], DTYPE_I32, n_tok, 1, 1);
                    op.dst = op.src[0];
                    op.n_kv = step ? cuda_attention_kv_bucket(n_kv, n_ctx) : n_kv;
                    cuda_attention_plan(&op, modes[m], sms > 0 ? sms : 132);
                    uint64_t need = cuda_op_scratch_bytes(&op, tile);
                    worst = need > worst ? need : worst;
                    over += need > arena;
                }
    CHECK(over == 0, "%d attention ops need more arena than the estimate's %.2f MiB", over, arena / MIB);
    printf("query %lld tokens, %lld x %lld, %lld/%lld heads of %lld, n_ctx %lld, %d SMs: estimate %.2f MiB "
           "(arena %.2f, the largest need sampled %.2f)\n",
           (long long)max_tokens, (long long)rows, (long long)cols, (long long)heads, (long long)kv_heads,
           (long long)head_dim, (long long)n_ctx, sms, total / MIB, arena / MIB, worst / MIB);
}

static void check_host(void)
{
    CHECK(cuda->workspace_bytes != NULL, "the cuda registration has no workspace_bytes");
    if (!cuda->workspace_bytes)
        return;
    /* a llama3-8b-like device at decode and at a 512-token prompt, a GQA
     * model with a 5120-wide FFN, and the device part's shapes */
    check_bound(1, 128256, 14336, 32, 8, 128, 8192, 132);
    check_bound(512, 128256, 14336, 32, 8, 128, 8192, 132);
    check_bound(512, 128256, 14336, 32, 8, 128, 8192, 0);
    check_bound(300, 20480, 5120, 40, 8, 128, 4096, 46);
    check_bound(PROMPT, N_OUT, N_IN, HEADS, KV_HEADS, HEAD_DIM, N_CTX, 4);

    /* more of anything never needs less; an unknown SM count is the worst */
    const uint64_t base = estimate(64, 4096, 4096, 32, 8, 128, 4096, 132);
    CHECK(estimate(128, 4096, 4096, 32, 8, 128, 4096, 132) >= base, "more tokens, smaller estimate");
    CHECK(estimate(64, 8192, 4096, 32, 8, 128, 4096, 132) >= base, "more rows, smaller estimate");
    CHECK(estimate(64, 4096, 8192, 32, 8, 128, 4096, 132) >= base, "more columns, smaller estimate");
    CHECK(estimate(64, 4096, 4096, 32, 8, 128, 8192, 132) >= base, "longer context, smaller estimate");
    int smaller = 0;
    const uint64_t unknown = estimate(64, 4096, 4096, 32, 8, 128, 4096, 0);
    for (int sms = 1; sms <= 1024; sms++)
        smaller += estimate(64, 4096, 4096, 32, 8, 128, 4096, sms) > unknown;
    CHECK(smaller == 0, "%d SM counts need more than an unknown one", smaller);
    backend_workspace_query none = {0};
    CHECK(cuda->workspace_bytes(&none) == CUDA_CUBLAS_WORKSPACE_BYTES + CUDA_ERROR_FLAGS_BYTES,
          "a device without ops still holds exactly cuBLAS's workspace and the flags");

    /* the GEMM tile size the device will read at open counts */
    const char *saved = getenv("STRATA_CUDA_GEMM_TILE_MIB");
    char *saved_copy = saved ? strdup(saved) : NULL;
    unsetenv("STRATA_CUDA_GEMM_TILE_MIB");
    const uint64_t default_tile = estimate(512, 128256, 4096, 0, 0, 0, 0, 132);
    setenv("STRATA_CUDA_GEMM_TILE_MIB", "8", 1);
    const uint64_t small_tile = estimate(512, 128256, 4096, 0, 0, 0, 0, 132);
    check_bound(512, 128256, 4096, 0, 0, 0, 0, 132);
    CHECK(small_tile < default_tile && default_tile - small_tile >= (uint64_t)56 << 20,
          "STRATA_CUDA_GEMM_TILE_MIB=8 saves %.1f MiB, expected at least 56", (default_tile - small_tile) / MIB);
    if (saved_copy)
        setenv("STRATA_CUDA_GEMM_TILE_MIB", saved_copy, 1);
    else
        unsetenv("STRATA_CUDA_GEMM_TILE_MIB");
    free(saved_copy);
}

/* The estimate of a query with experts only (no dense matmul, no attention). */
static uint64_t estimate_experts(int64_t max_tokens, int64_t experts_used, int multiprocessors)
{
    backend_workspace_query query = {
        .max_tokens = max_tokens,
        .max_expert_cols = N_IN,
        .max_expert_rows = N_OUT,
        .max_experts_used = experts_used,
        .multiprocessors = multiprocessors,
    };
    return cuda->workspace_bytes(&query);
}

/* --- device part ---------------------------------------------------------------------------------------------- */

static backend_device dev;

typedef struct op_tensors {
    strata_tensor t[5];
    backend_buffer *buffers[5];
    int n;
} op_tensors;

/* A zeroed device tensor (buffers come zeroed) of the given shape. */
static strata_tensor *make(op_tensors *set, strata_dtype dtype, int64_t ne0, int64_t ne1, int64_t ne2)
{
    strata_tensor *t = &set->t[set->n];
    tensor_init_contiguous(t, dtype, ne0, ne1, ne2, 1);
    strata_error err = {0};
    backend_buffer **buffer = &set->buffers[set->n++];
    CHECK(dev.ops->buffer_alloc(dev.ctx, tensor_byte_size(t), buffer, &err) == STRATA_OK, "alloc: %s", err.message);
    t->buffer = *buffer;
    return t;
}

static void release(op_tensors *set)
{
    for (int i = 0; i < set->n; i++)
        dev.ops->buffer_free(dev.ctx, set->buffers[i]);
    memset(set, 0, sizeof *set);
}

static strata_status run_matmul(strata_dtype weight, int64_t n_tok, bool in_step, strata_error *err)
{
    op_tensors set = {0};
    strata_tensor *w = make(&set, weight, N_IN, N_OUT, 1), *x = make(&set, DTYPE_F32, N_IN, n_tok, 1);
    strata_tensor *y = make(&set, DTYPE_F32, N_OUT, n_tok, 1);
    backend_op op = {.kind = OP_MATMUL, .dst = y, .src = {w, x}};
    strata_status status = STRATA_OK;
    if (in_step)
        status = dev.ops->begin_step(dev.ctx, err);
    if (status == STRATA_OK)
        status = dev.ops->run_op(dev.ctx, &op, err);
    if (in_step) {
        strata_status ended = dev.ops->end_step(dev.ctx, err);
        status = status == STRATA_OK ? ended : status;
    }
    if (status == STRATA_OK)
        status = dev.ops->sync(dev.ctx, err);
    release(&set);
    return status;
}

/* x[N_IN, k, n_tok] through experts [N_IN, N_OUT, N_EXPERT], token t using
 * experts t, t + 1, ..., t + k - 1 (mod N_EXPERT). */
static strata_status run_matmul_id(strata_dtype weight, int64_t n_tok, bool in_step, strata_error *err)
{
    op_tensors set = {0};
    strata_tensor *w = make(&set, weight, N_IN, N_OUT, N_EXPERT);
    strata_tensor *x = make(&set, DTYPE_F32, N_IN, EXPERTS_USED, n_tok);
    strata_tensor *ids = make(&set, DTYPE_I32, EXPERTS_USED, n_tok, 1);
    strata_tensor *y = make(&set, DTYPE_F32, N_OUT, EXPERTS_USED, n_tok);
    int32_t chosen[PROMPT * EXPERTS_USED];
    for (int64_t i = 0; i < n_tok * EXPERTS_USED; i++)
        chosen[i] = (int32_t)((i / EXPERTS_USED + i % EXPERTS_USED) % N_EXPERT);
    backend_op op = {.kind = OP_MATMUL_ID, .dst = y, .src = {w, x, ids}};
    strata_status status =
        dev.ops->upload(dev.ctx, ids->buffer, 0, chosen, (size_t)(n_tok * EXPERTS_USED) * sizeof(int32_t), err);
    if (status == STRATA_OK && in_step)
        status = dev.ops->begin_step(dev.ctx, err);
    if (status == STRATA_OK)
        status = dev.ops->run_op(dev.ctx, &op, err);
    if (in_step) {
        strata_status ended = dev.ops->end_step(dev.ctx, err);
        status = status == STRATA_OK ? ended : status;
    }
    if (status == STRATA_OK)
        status = dev.ops->sync(dev.ctx, err);
    release(&set);
    return status;
}

/* n_tok queries at the last positions of a full cache of N_CTX rows. */
static strata_status run_attention(int64_t n_tok, bool in_step, strata_error *err)
{
    op_tensors set = {0};
    strata_tensor *q = make(&set, DTYPE_F32, HEAD_DIM, HEADS, n_tok);
    strata_tensor *k = make(&set, DTYPE_F16, HEAD_DIM, KV_HEADS, N_CTX);
    strata_tensor *v = make(&set, DTYPE_F16, HEAD_DIM, KV_HEADS, N_CTX);
    strata_tensor *pos = make(&set, DTYPE_I32, n_tok, 1, 1), *out = make(&set, DTYPE_F32, HEAD_DIM, HEADS, n_tok);
    int32_t positions[PROMPT];
    for (int64_t i = 0; i < n_tok; i++)
        positions[i] = (int32_t)(N_CTX - n_tok + i);
    backend_op op = {.kind = OP_ATTENTION, .dst = out, .src = {q, k, v, pos}};
    op.params.attention.n_kv = N_CTX;
    op.params.attention.scale = 0.125f;
    strata_status status = dev.ops->upload(dev.ctx, pos->buffer, 0, positions, (size_t)n_tok * sizeof(int32_t), err);
    if (status == STRATA_OK && in_step)
        status = dev.ops->begin_step(dev.ctx, err);
    if (status == STRATA_OK)
        status = dev.ops->run_op(dev.ctx, &op, err);
    if (in_step) {
        strata_status ended = dev.ops->end_step(dev.ctx, err);
        status = status == STRATA_OK ? ended : status;
    }
    if (status == STRATA_OK)
        status = dev.ops->sync(dev.ctx, err);
    release(&set);
    return status;
}

/* The SM count from get_info's features ("... sms:132 ..."); 0 if absent. */
static int device_sms(void)
{
    device_info info;
    dev.ops->get_info(dev.ctx, &info);
    const char *sms = strstr(info.features, "sms:");
    return sms ? atoi(sms + 4) : 0;
}

static uint64_t device_free_bytes(void)
{
    device_info info;
    dev.ops->get_info(dev.ctx, &info);
    return info.free_bytes;
}

/* Expert matmuls of every path under a limit of the experts-only estimate,
 * on a freshly opened device: all run, and the peak stays within it. */
static void check_expert_ops(void)
{
    const uint64_t fixed = CUDA_CUBLAS_WORKSPACE_BYTES + CUDA_ERROR_FLAGS_BYTES;
    const uint64_t bound = estimate_experts(PROMPT, EXPERTS_USED, device_sms());
    CHECK(bound > estimate_experts(PROMPT, 1, device_sms()) && estimate_experts(PROMPT, 1, 0) > fixed,
          "the expert estimate grows with the experts used and counts the op's scratch");
    CHECK(estimate_experts(PROMPT / 2, EXPERTS_USED, 0) <= bound, "the expert estimate grows with the tokens");
    dev.ops->set_workspace_limit(dev.ctx, bound);
    const strata_dtype weights[] = {DTYPE_Q4_0, DTYPE_Q6_K, DTYPE_F16, DTYPE_F32};
    const int64_t batches[] = {1, 3, 9, PROMPT}; /* chunk widths 1, 4, 8, 8 */
    strata_error err = {0};
    for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++)
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
            CHECK(run_matmul_id(weights[i], batches[b], batches[b] == PROMPT, &err) == STRATA_OK,
                  "matmul_id %s x %lld tokens: %s", dtype_name(weights[i]), (long long)batches[b], err.message);
    const uint64_t peak = dev.ops->workspace_peak_bytes(dev.ctx);
    printf("expert matmuls: workspace peak %.2f MiB, estimate %.2f MiB\n", peak / MIB, bound / MIB);
    CHECK(peak <= bound, "the expert workspace peak %.2f MiB is over the estimate %.2f MiB", peak / MIB,
          bound / MIB);
    CHECK(peak > fixed, "the expert matmuls used no arena at all");
}

/* Every op shape of the query under a limit of the estimate: all run, and
 * the peak stays within it. */
static void check_forward_ops(void)
{
    const int sms = device_sms();
    const uint64_t bound = estimate(PROMPT, N_OUT, N_IN, HEADS, KV_HEADS, HEAD_DIM, N_CTX, sms);
    CHECK(bound <= estimate(PROMPT, N_OUT, N_IN, HEADS, KV_HEADS, HEAD_DIM, N_CTX, 0), "unknown SMs need less");
    dev.ops->set_workspace_limit(dev.ctx, bound);
    const strata_dtype weights[] = {DTYPE_Q4_0, DTYPE_Q6_K, DTYPE_F16, DTYPE_BF16, DTYPE_F32};
    strata_error err = {0};
    const int64_t batches[] = {1, 8, 9, PROMPT}; /* matrix-vector up to 8 tokens, GEMM from 9 */
    for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++)
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
            CHECK(run_matmul(weights[i], batches[b], batches[b] == PROMPT, &err) == STRATA_OK,
                  "matmul %s x %lld tokens: %s", dtype_name(weights[i]), (long long)batches[b], err.message);
    const int64_t queries[] = {1, 2, 16, PROMPT};
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++)
        for (int step = 0; step < 2; step++)
            CHECK(run_attention(queries[i], step, &err) == STRATA_OK, "attention of %lld tokens over %d rows: %s",
                  (long long)queries[i], N_CTX, err.message);
    const uint64_t peak = dev.ops->workspace_peak_bytes(dev.ctx);
    printf("forward-shaped ops on %d SMs: workspace peak %.2f MiB, estimate %.2f MiB\n", sms, peak / MIB, bound / MIB);
    CHECK(peak <= bound, "the workspace peak %.2f MiB is over the estimate %.2f MiB", peak / MIB, bound / MIB);
    CHECK(peak > CUDA_CUBLAS_WORKSPACE_BYTES + CUDA_ERROR_FLAGS_BYTES, "the ops used no arena at all");
}

/* On a fresh device: a limit below an op's need fails it before anything is
 * touched; a small op then grows the arena only up to the limit; without
 * the limit the large op runs. */
static void check_limit(void)
{
    strata_error err = {0};
    if (backend_open("cuda", 0, NULL, &dev, &err) != STRATA_OK) {
        CHECK(0, "reopening cuda0: %s", err.message);
        return;
    }
    const uint64_t fixed = dev.ops->workspace_peak_bytes(dev.ctx);
    CHECK(fixed == CUDA_CUBLAS_WORKSPACE_BYTES + CUDA_ERROR_FLAGS_BYTES,
          "a fresh device holds %llu bytes of workspace", (unsigned long long)fixed);
    const uint64_t limit = fixed + (64 << 10);
    dev.ops->set_workspace_limit(dev.ctx, limit);

    op_tensors set = {0};
    strata_tensor *w = make(&set, DTYPE_Q4_0, N_IN, N_OUT, 1), *x = make(&set, DTYPE_F32, N_IN, PROMPT, 1);
    strata_tensor *y = make(&set, DTYPE_F32, N_OUT, PROMPT, 1);
    backend_op big = {.kind = OP_MATMUL, .dst = y, .src = {w, x}};
    if (dev.ops->sync(dev.ctx, &err) != STRATA_OK)
        CHECK(0, "sync: %s", err.message);
    const uint64_t free_before = device_free_bytes();
#ifdef STRATA_CUDA_EMULATED
    const uint64_t calls_before = emu_device_calls();
#endif
    err.message[0] = '\0';
    strata_status status = dev.ops->run_op(dev.ctx, &big, &err);
    printf("over the limit, as expected: %s\n", err.message);
    CHECK(status == STRATA_OUT_OF_MEMORY, "a need past the limit gave status %d", status);
    char said_limit[64], said_left[64];
    snprintf(said_limit, sizeof said_limit, "but its limit is %.1f MiB", limit / MIB);
    snprintf(said_left, sizeof said_left, "and %.1f MiB were left", (limit - fixed) / MIB);
    CHECK(strstr(err.message, "cuda0: the op workspace needs") && strstr(err.message, said_limit) &&
              strstr(err.message, said_left),
          "the message does not say the device, the need, the limit and what was left: %s", err.message);
#ifdef STRATA_CUDA_EMULATED
    CHECK(emu_device_calls() == calls_before, "the refused op touched the device (%llu calls)",
          (unsigned long long)(emu_device_calls() - calls_before));
#endif
#ifdef STRATA_CUDA_EMULATED
    CHECK(device_free_bytes() == free_before, "the refused op changed the device's free memory");
#else /* on a GPU other processes may move free memory a little */
    const uint64_t free_after = device_free_bytes();
    CHECK(free_after + ((uint64_t)2 << 20) >= free_before, "the refused op took %.1f MiB of device memory",
          (free_before - free_after) / MIB);
#endif
    CHECK(dev.ops->workspace_peak_bytes(dev.ctx) == fixed, "the refused op moved the peak");

    /* batch 1 needs less than a KiB, but the arena grows by whole MiB: capped */
    strata_tensor x1, y1;
    tensor_init_contiguous(&x1, DTYPE_F32, N_IN, 1, 1, 1);
    tensor_init_contiguous(&y1, DTYPE_F32, N_OUT, 1, 1, 1);
    x1.buffer = x->buffer;
    y1.buffer = y->buffer;
    backend_op small = {.kind = OP_MATMUL, .dst = &y1, .src = {w, &x1}};
    CHECK(dev.ops->run_op(dev.ctx, &small, &err) == STRATA_OK && dev.ops->sync(dev.ctx, &err) == STRATA_OK,
          "a small op under the limit: %s", err.message);
    const uint64_t capped = dev.ops->workspace_peak_bytes(dev.ctx);
    CHECK(capped <= limit && capped > fixed, "the arena grew to %.3f MiB of workspace under a limit of %.3f MiB",
          capped / MIB, limit / MIB);

    dev.ops->set_workspace_limit(dev.ctx, 0);
    CHECK(dev.ops->run_op(dev.ctx, &big, &err) == STRATA_OK && dev.ops->sync(dev.ctx, &err) == STRATA_OK,
          "the large op without a limit: %s", err.message);
    CHECK(dev.ops->workspace_peak_bytes(dev.ctx) > limit, "the large op did not grow the arena");
    release(&set);
    backend_close(&dev);
}

static void check_device(void)
{
    strata_error err = {0};
    if (cuda->device_count(&err) <= 0) {
        printf("device checks skipped: %s\n", err.message[0] ? err.message : "no CUDA device");
        return;
    }
    if (backend_open("cuda", 0, NULL, &dev, &err) != STRATA_OK) {
        CHECK(0, "cannot open cuda device 0: %s", err.message);
        return;
    }
    const bool slots = dev.ops->set_workspace_limit && dev.ops->workspace_peak_bytes;
    CHECK(slots, "the workspace slots are empty");
    if (slots)
        check_forward_ops();
    backend_close(&dev);
    if (slots)
        check_limit();
    if (!slots)
        return;
    if (backend_open("cuda", 0, NULL, &dev, &err) != STRATA_OK) {
        CHECK(0, "cannot open cuda device 0 again: %s", err.message);
        return;
    }
    check_expert_ops();
    backend_close(&dev);
}

#endif /* STRATA_WITH_CUDA */

int main(void)
{
#ifdef STRATA_WITH_CUDA
    cuda = backend_find("cuda");
#endif
#ifndef STRATA_WITH_CUDA
    printf("skipped: this strata was built without the CUDA backend (configure with -DSTRATA_CUDA=ON)\n");
    return 77;
#else
    check_host();
    check_device();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("all passed\n");
    return 0;
#endif
}
