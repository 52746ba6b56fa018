/* Steps: begin_step/end_step record the ops of a forward pass instead of
 * launching them; the recording is launched at the next transfer, sync or
 * end_step (cuda_flush), which keeps every op in issue order.
 *
 * A recorded sequence is keyed by its bytes (cuda_op holds every value its
 * kernels read: device addresses, shapes, parameters, attention's bucketed
 * row count). The first time a key is seen its ops are launched one by one;
 * the second time they are captured into a CUDA graph, which is launched then
 * and replayed whenever the same key comes back. At decode the key stays the
 * same for CUDA_GRAPH_KV_BUCKET consecutive tokens (positions and tokens live
 * in device memory, uploaded before the step), so one cudaGraphLaunch
 * replaces hundreds of kernel launches per token.
 *
 * A sequence that cannot be captured (a capture error) is launched op by op
 * and not tried again. Growing the arena drops every graph, since graphs hold
 * its old address. Compiled, not yet run on a GPU. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define HASH_SEED 0xcbf29ce484222325ULL
#define UNCAPTURABLE 1ULL /* low bit set in seen[]: capture failed for this key */

/* Mixes the bytes of one op into a running hash, eight at a time (cuda_op is
 * a multiple of 8 bytes). */
static uint64_t hash_op(uint64_t hash, const cuda_op *op)
{
    _Static_assert(sizeof(cuda_op) % sizeof(uint64_t) == 0, "cuda_op must be a whole number of words");
    const unsigned char *bytes = (const unsigned char *)op;
    for (size_t i = 0; i < sizeof *op; i += sizeof(uint64_t)) {
        uint64_t word;
        memcpy(&word, bytes + i, sizeof word);
        hash = (hash ^ word) * 0x100000001b3ULL;
        hash ^= hash >> 29;
    }
    return hash;
}

strata_status cuda_record(cuda_context *ctx, const cuda_op *op, strata_error *err)
{
    if (ctx->n_recorded == ctx->recorded_capacity) {
        int capacity = ctx->recorded_capacity ? 2 * ctx->recorded_capacity : 256;
        cuda_op *grown = realloc(ctx->recorded, (size_t)capacity * sizeof *grown);
        if (!grown)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "cuda: out of host memory recording a step");
        ctx->recorded = grown;
        ctx->recorded_capacity = capacity;
    }
    ctx->recorded[ctx->n_recorded++] = *op;
    ctx->recorded_hash = hash_op(ctx->recorded_hash, op);
    return STRATA_OK;
}

static strata_status launch_all(cuda_context *ctx, const cuda_op *ops, int n, strata_error *err)
{
    for (int i = 0; i < n; i++) {
        strata_status status = cuda_launch_op(ctx, &ops[i], err);
        if (status != STRATA_OK)
            return status;
    }
    return STRATA_OK;
}

static cuda_graph_entry *find_graph(cuda_context *ctx, uint64_t hash, const cuda_op *ops, int n)
{
    for (int i = 0; i < CUDA_GRAPH_CACHE; i++) {
        cuda_graph_entry *entry = &ctx->graphs[i];
        if (entry->exec && entry->hash == hash && entry->n_ops == n &&
            memcmp(entry->ops, ops, (size_t)n * sizeof *ops) == 0)
            return entry;
    }
    return NULL;
}

/* How a hash is kept in seen[]: bit 1 set (so never 0, the empty slot),
 * bit 0 free to mark a key whose capture failed. */
static uint64_t seen_key(uint64_t hash)
{
    return (hash | 2ULL) & ~UNCAPTURABLE;
}

/* The seen[] slot of a hash, or -1. */
static int find_seen(const cuda_context *ctx, uint64_t hash)
{
    for (int i = 0; i < CUDA_GRAPH_SEEN; i++)
        if (ctx->seen[i] && (ctx->seen[i] & ~UNCAPTURABLE) == seen_key(hash))
            return i;
    return -1;
}

static void remember(cuda_context *ctx, uint64_t hash, bool uncapturable)
{
    int slot = find_seen(ctx, hash);
    if (slot < 0) {
        slot = ctx->seen_next;
        ctx->seen_next = (ctx->seen_next + 1) % CUDA_GRAPH_SEEN;
    }
    ctx->seen[slot] = seen_key(hash) | (uncapturable ? UNCAPTURABLE : 0);
}

static void release_entry(cuda_graph_entry *entry)
{
    if (entry->exec)
        (void)cudaGraphExecDestroy(entry->exec);
    free(entry->ops);
    memset(entry, 0, sizeof *entry);
}

void cuda_graphs_release(cuda_context *ctx)
{
    for (int i = 0; i < CUDA_GRAPH_CACHE; i++)
        release_entry(&ctx->graphs[i]);
    memset(ctx->seen, 0, sizeof ctx->seen);
    ctx->seen_next = 0;
}

/* Captures ops into a graph, keeps it in the cache (evicting the least
 * recently used) and launches it. Returns STRATA_UNSUPPORTED, launching
 * nothing, when the sequence cannot be captured. */
static strata_status capture_and_launch(cuda_context *ctx, uint64_t hash, const cuda_op *ops, int n,
                                        strata_error *err)
{
    strata_status status = STRATA_OK;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cuda_op *copy = malloc((size_t)n * sizeof *copy);
    if (!copy)
        return STRATA_UNSUPPORTED; /* no room to keep it: run op by op */
    memcpy(copy, ops, (size_t)n * sizeof *copy);
    if (cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        status = STRATA_UNSUPPORTED;
        goto fail;
    }
    strata_error launch_err = {0};
    strata_status launched = launch_all(ctx, ops, n, &launch_err);
    cudaError_t ended = cudaStreamEndCapture(ctx->stream, &graph);
    if (launched != STRATA_OK || ended != cudaSuccess || !graph ||
        cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
        status = STRATA_UNSUPPORTED;
        goto fail;
    }
    (void)cudaGraphDestroy(graph);
    graph = NULL;
    cuda_graph_entry *slot = &ctx->graphs[0];
    for (int i = 1; i < CUDA_GRAPH_CACHE && slot->exec; i++)
        if (!ctx->graphs[i].exec || ctx->graphs[i].last_used < slot->last_used)
            slot = &ctx->graphs[i];
    release_entry(slot);
    *slot = (cuda_graph_entry){.hash = hash, .n_ops = n, .ops = copy, .exec = exec, .last_used = ++ctx->graph_clock};
    ctx->graph_captures++;
    ctx->graph_launches++;
    CUDA_CHECK(err, cudaGraphLaunch(exec, ctx->stream), "launching a captured step");
    return STRATA_OK;
fail:
    if (graph)
        (void)cudaGraphDestroy(graph);
    if (exec)
        (void)cudaGraphExecDestroy(exec);
    (void)cudaGetLastError(); /* capture errors are not sticky */
    free(copy);
    return status;
}

strata_status cuda_flush(cuda_context *ctx, strata_error *err)
{
    const int n = ctx->n_recorded;
    const uint64_t hash = ctx->recorded_hash;
    if (n == 0)
        return STRATA_OK;
    ctx->n_recorded = 0;
    ctx->recorded_hash = HASH_SEED;
    if (!ctx->graphs_enabled) {
        ctx->eager_flushes++;
        return launch_all(ctx, ctx->recorded, n, err);
    }
    cuda_graph_entry *entry = find_graph(ctx, hash, ctx->recorded, n);
    if (entry) {
        entry->last_used = ++ctx->graph_clock;
        ctx->graph_launches++;
        CUDA_CHECK(err, cudaGraphLaunch(entry->exec, ctx->stream), "replaying a captured step");
        return STRATA_OK;
    }
    int seen = find_seen(ctx, hash);
    if (seen >= 0 && !(ctx->seen[seen] & UNCAPTURABLE)) {
        strata_status status = capture_and_launch(ctx, hash, ctx->recorded, n, err);
        if (status != STRATA_UNSUPPORTED)
            return status;
        remember(ctx, hash, true);
    } else if (seen < 0) {
        remember(ctx, hash, false);
    }
    ctx->eager_flushes++;
    return launch_all(ctx, ctx->recorded, n, err);
}

strata_status cuda_begin_step(void *opaque, strata_error *err)
{
    cuda_context *ctx = opaque;
    CUDA_CHECK(err, cudaSetDevice(ctx->device), "selecting the device");
    strata_status status = cuda_flush(ctx, err);
    ctx->in_step = true;
    ctx->recorded_hash = HASH_SEED;
    return status;
}

strata_status cuda_end_step(void *opaque, strata_error *err)
{
    cuda_context *ctx = opaque;
    CUDA_CHECK(err, cudaSetDevice(ctx->device), "selecting the device");
    strata_status status = cuda_flush(ctx, err);
    ctx->in_step = false;
    return status;
}
