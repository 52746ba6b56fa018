/* The CPU backend's own memory (its "workspace", host RAM): the activation
 * rows of matmuls in the kernels' formats and the per-thread slices (rope's
 * cos/sin, attention's converted K/V blocks and scores), and matmul_id's
 * gathered tokens. Capped and tracked
 * in cpu_scratch_reserve; bounded here, purely, for the planner. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "cpu_attention.h"
#include "cpu_backend.h"
#include "cpu_internal.h"

/* Scratch holds nothing between ops, so it is released here: what an
 * earlier caller left (the device measurement before a model is placed
 * grows the activation rows to its test matrices) must not count against
 * the model's limit, whose bound covers the model's own ops only. The peak
 * restarts with the limit, so it reports the model's own use. */
void cpu_set_workspace_limit(void *opaque, uint64_t limit_bytes)
{
    cpu_context *ctx = opaque;
    pthread_mutex_lock(&ctx->op_mutex);
    free(ctx->activations.data);
    free(ctx->per_thread.data);
    free(ctx->experts.data);
    ctx->activations = (cpu_scratch){0};
    ctx->per_thread = (cpu_scratch){0};
    ctx->experts = (cpu_scratch){0};
    ctx->per_thread_bytes = 0;
    ctx->workspace_limit = limit_bytes;
    ctx->workspace_peak = 0;
    pthread_mutex_unlock(&ctx->op_mutex);
}

uint64_t cpu_workspace_peak_bytes(void *opaque)
{
    const cpu_context *ctx = opaque;
    return ctx->workspace_peak;
}

static uint64_t round_up(uint64_t bytes)
{
    return (bytes + CPU_ALIGNMENT - 1) / CPU_ALIGNMENT * CPU_ALIGNMENT;
}

uint64_t cpu_workspace_bytes(const backend_workspace_query *query)
{
    /* threads: the device's, else as many as a large host might run */
    int threads = query->multiprocessors > 0 ? query->multiprocessors : 256;
    int64_t tokens = query->max_tokens > 0 ? query->max_tokens : 1;
    /* activation rows: float weights use theirs as they are (no scratch);
     * quantized ones need the rows in the widest 8-bit format any kernel
     * asks for, the width rounded up to that format's block: Q8_0 with the
     * f32 block scales and int32 block sums the tiled kernels read (272 +
     * 64 bytes per 256 values), Q8_K 292 + 4, Q8_1 288
     * (cpu_act_scratch_bytes) */
    const cpu_act_format formats[] = {CPU_ACT_Q8_0, CPU_ACT_Q8_1, CPU_ACT_Q8_K};
    const int64_t blocks[] = {32, 32, 256};
    uint64_t activations = 0;
    for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
        int64_t cols = (query->max_matmul_cols + blocks[f] - 1) / blocks[f] * blocks[f];
        size_t bytes = cpu_act_scratch_bytes(formats[f], cols, tokens);
        if (bytes == SIZE_MAX || bytes > UINT64_MAX - CPU_ALIGNMENT)
            return UINT64_MAX; /* no memory holds it: the planner sees a bound nothing fits */
        if (bytes > activations)
            activations = bytes;
    }
    activations = round_up(activations);
    /* per thread: the larger of rope's and attention's slice, attention's
     * asked for every token count (the tiling changes with it) */
    uint64_t slice = round_up((uint64_t)(query->head_dim > 0 ? query->head_dim : 0) * sizeof(float));
    if (query->n_heads > 0 && query->n_kv_heads > 0 && query->head_dim > 0) {
        int64_t group = query->n_heads / query->n_kv_heads;
        for (int64_t n_tok = 1; n_tok <= tokens; n_tok++) {
            cpu_attention_tiling tiling =
                cpu_attention_tiling_choose(query->head_dim, group, n_tok, query->n_kv_heads, threads);
            uint64_t bytes = round_up(cpu_attention_scratch_bytes(&tiling, query->head_dim));
            if (bytes > slice)
                slice = bytes;
        }
    }
    /* matmul_id: one expert's tokens gathered and its results (an expert
     * takes a token at most once) */
    uint64_t experts = round_up((uint64_t)(query->max_expert_cols + query->max_expert_rows) * (uint64_t)tokens *
                                sizeof(float));
    return activations + slice * (uint64_t)threads + experts;
}
