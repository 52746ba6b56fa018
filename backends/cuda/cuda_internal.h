/* Private to backends/cuda: the device context, the buffer struct, the op
 * descriptor that steps record, the check macros and the functions each file
 * provides.
 *
 * Streams: every op runs on ctx->stream, in issue order. Uploads of at least
 * CUDA_COPY_STREAM_BYTES (weights) go through ctx->copy_stream, fenced with
 * events on both sides so that they stay ordered with the ops exactly as if
 * they had been issued on ctx->stream; smaller ones (tokens, positions) and
 * downloads go on ctx->stream directly (fences would cost more than they
 * save). Host memory is always staged through pinned buffers owned by the
 * context. */
#ifndef STRATA_CUDA_INTERNAL_H
#define STRATA_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../kernels/launch.h"
#include "../backend.h"
#include "cuda_choose.h"

#define CUDA_ALIGNMENT 256                       /* of buffers and arena slices */
#define CUDA_UPLOAD_CHUNKS 2                      /* pinned upload buffers, used in turn */
#define CUDA_UPLOAD_CHUNK_BYTES ((size_t)8 << 20)
#define CUDA_COPY_STREAM_BYTES ((size_t)1 << 20)  /* transfers this large use the copy stream */
#define CUDA_DOWNLOAD_STAGE_MAX ((size_t)64 << 20) /* largest pinned download stage */
#define CUDA_INDEX_CHECK_MAX 65536                /* ids/positions checked on the host outside steps */
#define CUDA_CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)
#define CUDA_ERROR_FLAGS_BYTES ((size_t)CUDA_ALIGNMENT) /* the kernels' error flags, one allocation */
#define CUDA_PEER_SLOTS 64                        /* devices whose peer access a context remembers */
#define CUDA_GRAPH_CACHE 16                       /* instantiated graphs kept */
#define CUDA_GRAPH_SEEN 64                        /* op sequences remembered before capture */

struct backend_buffer {
    void *data; /* device memory from cudaMalloc */
    size_t bytes;
};

/* A tensor as the kernels see it: the device address resolved. */
typedef struct cuda_tensor {
    int32_t dtype;
    int32_t present;
    int64_t ne[STRATA_MAX_DIMS];
    int64_t nb[STRATA_MAX_DIMS];
    char *data;
} cuda_tensor;

/* An op with everything its launch reads, and nothing else, so that two
 * equal descriptors launch identical kernels: a step's sequence of these is
 * the key of its CUDA graph. Built zeroed (padding included) so it can be
 * hashed and compared as bytes. */
typedef struct cuda_op {
    int32_t kind; /* op_kind */
    int32_t n_src;
    cuda_tensor dst;
    cuda_tensor src[BACKEND_OP_MAX_SRC];
    float eps;          /* rms_norm */
    float value;        /* scale */
    int32_t n_rot;      /* rope */
    int32_t neox;
    float freq_base, freq_scale;
    float rope_attn_factor;
    int64_t n_kv;       /* attention: rows scanned (bucketed inside a step) */
    float attention_scale, softcap;
    int32_t sliding_window;
    int32_t n_splits;   /* attention: split-KV parts */
    int32_t attention_variant; /* attention: cuda_attention_variant */
    int32_t moe_normalize;     /* moe_weights */
    int32_t moe_sigmoid;       /* moe_sum: sigmoid of the weights */
} cuda_op;

typedef struct cuda_graph_entry {
    uint64_t hash;
    int n_ops;
    cuda_op *ops;        /* the sequence it was captured from (owned) */
    cudaGraphExec_t exec;
    uint64_t last_used;
} cuda_graph_entry;

typedef struct cuda_context {
    int device;
    char name[128];
    uint8_t uuid[16];
    int sm_count;
    int cc_major, cc_minor;
    cudaStream_t stream;      /* ops and small transfers */
    cudaStream_t copy_stream; /* large transfers */
    cudaEvent_t stream_fence, copy_fence;
    cudaEvent_t peer_fence; /* recorded on the op stream when this device is the source of a peer copy */
    /* as the destination of peer copies from device i: 0 not asked yet, 1
     * peer access enabled, -1 not possible (copies staged through the host) */
    signed char peer_state[CUDA_PEER_SLOTS];
    cublasHandle_t cublas;
    void *cublas_workspace;

    void *upload_stage[CUDA_UPLOAD_CHUNKS]; /* pinned */
    cudaEvent_t upload_done[CUDA_UPLOAD_CHUNKS];
    int upload_next;
    void *download_stage; /* pinned */
    size_t download_capacity;

    unsigned int *error_flags;      /* device: KERNEL_ERROR_* bits */
    unsigned int *error_flags_host; /* pinned copy, read at sync */
    int32_t *index_check;           /* pinned, CUDA_INDEX_CHECK_MAX ints */

    void *arena; /* device scratch of the ops (activation quants, GEMM tiles, attention partials) */
    size_t arena_bytes;
    /* workspace: device memory held for the ops besides buffers (the arena,
     * cuBLAS's workspace, the error flags); limit 0: none */
    uint64_t workspace_held, workspace_peak, workspace_limit;

    bool in_step;
    cuda_op *recorded;
    int n_recorded, recorded_capacity;
    uint64_t recorded_hash;

    cuda_attention_mode attention_mode; /* STRATA_CUDA_ATTENTION, read at open */
    bool graphs_enabled;
    int64_t gemm_tile_elements; /* dequantized weights per GEMM call (STRATA_CUDA_GEMM_TILE_MIB) */
    cuda_graph_entry graphs[CUDA_GRAPH_CACHE];
    uint64_t seen[CUDA_GRAPH_SEEN];
    int seen_next;
    uint64_t graph_clock;
    uint64_t graph_launches, graph_captures, eager_flushes;
} cuda_context;

/* --- errors (cuda_device.c) ------------------------------------------------------------------ */

/* Records "cuda: <what>: <CUDA's message> (<error name>)" in err with the
 * status the error maps to (out of memory, unsupported, device lost, ...),
 * clears CUDA's last error when it is not sticky, and returns the status. */
strata_status cuda_fail(strata_error *err, cudaError_t code, const char *what);
strata_status cublas_fail(strata_error *err, cublasStatus_t code, const char *what);

/* Return from the enclosing function with a strata status when a CUDA or
 * cuBLAS call fails. */
#define CUDA_CHECK(err, call, what)                                                                               \
    do {                                                                                                           \
        cudaError_t cuda_check_code_ = (call);                                                                     \
        if (cuda_check_code_ != cudaSuccess)                                                                       \
            return cuda_fail((err), cuda_check_code_, (what));                                                     \
    } while (0)
#define CUBLAS_CHECK(err, call, what)                                                                             \
    do {                                                                                                           \
        cublasStatus_t cublas_check_code_ = (call);                                                                \
        if (cublas_check_code_ != CUBLAS_STATUS_SUCCESS)                                                           \
            return cublas_fail((err), cublas_check_code_, (what));                                                 \
    } while (0)
/* The same for functions with one cleanup path: sets `status` and jumps to
 * `fail`. */
#define CUDA_TRY(err, call, what)                                                                                 \
    do {                                                                                                           \
        cudaError_t cuda_try_code_ = (call);                                                                       \
        if (cuda_try_code_ != cudaSuccess) {                                                                       \
            status = cuda_fail((err), cuda_try_code_, (what));                                                     \
            goto fail;                                                                                             \
        }                                                                                                          \
    } while (0)

#define CUBLAS_TRY(err, call, what)                                                                               \
    do {                                                                                                           \
        cublasStatus_t cublas_try_code_ = (call);                                                                  \
        if (cublas_try_code_ != CUBLAS_STATUS_SUCCESS) {                                                           \
            status = cublas_fail((err), cublas_try_code_, (what));                                                 \
            goto fail;                                                                                             \
        }                                                                                                          \
    } while (0)

/* --- memory (cuda_memory.c) ------------------------------------------------------------------------ */

strata_status cuda_buffer_alloc(void *ctx, size_t bytes, backend_buffer **out, strata_error *err);
void cuda_buffer_free(void *ctx, backend_buffer *buffer);
void *cuda_buffer_host_ptr(void *ctx, backend_buffer *buffer);
strata_status cuda_upload(void *ctx, backend_buffer *dst, size_t offset, const void *src, size_t bytes,
                          strata_error *err);
strata_status cuda_download(void *ctx, backend_buffer *src, size_t offset, void *dst, size_t bytes,
                            strata_error *err);
strata_status cuda_sync(void *ctx, strata_error *err);

/* Creates and frees the pinned staging buffers, flags and fences of ctx. */
strata_status cuda_memory_init(cuda_context *ctx, strata_error *err);
void cuda_memory_release(cuda_context *ctx);

/* backend_ops.copy_peer (cuda_peer.c). */
strata_status cuda_copy_peer(void *dst_ctx, backend_buffer *dst, size_t dst_offset, void *src_ctx,
                             backend_buffer *src, size_t src_offset, size_t bytes, strata_error *err);

/* Copies n int32 values at device address src to the pinned index_check
 * buffer and waits for them (used to validate ids and positions outside a
 * step, where an error must come back from run_op itself). */
strata_status cuda_read_indices(cuda_context *ctx, const int32_t *src, int64_t n, strata_error *err);

/* --- ops (cuda_check.c, cuda_ops.c, cuda_matmul.c) -------------------------------------------------------- */

/* An op's shape/dtype check: true when accepted; otherwise false with the
 * reason in why (one sentence, no period). */
typedef bool (*cuda_op_check_fn)(const backend_op *op, char *why, size_t why_size);

bool cuda_check_get_rows(const backend_op *op, char *why, size_t why_size);
bool cuda_check_rms_norm(const backend_op *op, char *why, size_t why_size);
bool cuda_check_matmul(const backend_op *op, char *why, size_t why_size);
bool cuda_check_binary(const backend_op *op, char *why, size_t why_size); /* ADD, MUL */
bool cuda_check_unary(const backend_op *op, char *why, size_t why_size);  /* SCALE, SOFTMAX */
bool cuda_check_gated(const backend_op *op, char *why, size_t why_size);  /* SWIGLU, GEGLU */
bool cuda_check_rope(const backend_op *op, char *why, size_t why_size);
bool cuda_check_kv_store(const backend_op *op, char *why, size_t why_size);
bool cuda_check_attention(const backend_op *op, char *why, size_t why_size);
bool cuda_check_argmax(const backend_op *op, char *why, size_t why_size);
bool cuda_check_copy(const backend_op *op, char *why, size_t why_size);
bool cuda_check_moe(const backend_op *op, char *why, size_t why_size); /* TOPK, MOE_WEIGHTS, MOE_SUM */
bool cuda_check_matmul_id(const backend_op *op, char *why, size_t why_size);

bool cuda_supports(void *ctx, const backend_op *op);
strata_status cuda_run_op(void *ctx, const backend_op *op, strata_error *err);

/* Enqueues one op on ctx->stream (no host synchronization, so it may run
 * while a graph is being captured). The arena must already hold
 * cuda_op_scratch_bytes(op, ctx->gemm_tile_elements). */
strata_status cuda_launch_op(cuda_context *ctx, const cuda_op *op, strata_error *err);

/* Arena bytes an op needs, from its descriptor and the GEMM tile size alone
 * (pure: the workspace estimate builds descriptors of the worst shapes and
 * asks these, so run time and estimate cannot drift apart). */
size_t cuda_op_scratch_bytes(const cuda_op *op, int64_t gemm_tile_elements);
size_t cuda_matmul_scratch_bytes(const cuda_op *op, int64_t gemm_tile_elements);
size_t cuda_matmul_id_scratch_bytes(const cuda_op *op);

/* Sets an attention descriptor's kernel variant and split-KV parts from its
 * shapes and n_kv, for an attention mode and a device of sm_count SMs (pure). */
void cuda_attention_plan(cuda_op *op, cuda_attention_mode mode, int sm_count);

strata_status cuda_launch_matmul(cuda_context *ctx, const cuda_op *op, strata_error *err);
/* OP_MATMUL_ID (cuda_matmul_id.c). */
strata_status cuda_launch_matmul_id(cuda_context *ctx, const cuda_op *op, strata_error *err);

/* Bytes rounded up to CUDA_ALIGNMENT (arena slices). */
static inline size_t cuda_align(size_t bytes)
{
    return (bytes + CUDA_ALIGNMENT - 1) / CUDA_ALIGNMENT * CUDA_ALIGNMENT;
}

/* --- workspace (cuda_workspace.c) ------------------------------------------------------------------- */

/* Makes the arena hold at least bytes. Growing waits for the stream, frees
 * the old arena and drops every captured graph (they point into it); it
 * happens while a model warms up, not once every op has run at its size.
 * Under a workspace limit, a need past it fails with STRATA_OUT_OF_MEMORY
 * before anything is touched, and growth stops at the limit. */
strata_status cuda_arena_reserve(cuda_context *ctx, size_t bytes, strata_error *err);

/* Counts device memory the backend allocated (bytes > 0) or freed (< 0) for
 * its ops, and keeps the peak. */
void cuda_workspace_count(cuda_context *ctx, int64_t bytes);

void cuda_set_workspace_limit(void *ctx, uint64_t limit_bytes);
uint64_t cuda_workspace_peak_bytes(void *ctx);
/* backend_registration.workspace_bytes */
uint64_t cuda_workspace_bytes(const backend_workspace_query *query);

/* --- steps and graphs (cuda_graph.c) ---------------------------------------------------------------- */

strata_status cuda_begin_step(void *ctx, strata_error *err);
strata_status cuda_end_step(void *ctx, strata_error *err);
/* Appends op to the step's recording. */
strata_status cuda_record(cuda_context *ctx, const cuda_op *op, strata_error *err);
/* Launches what the step recorded so far: replaying a captured graph when
 * the same sequence ran before, capturing one the second time a sequence is
 * seen, launching op by op otherwise. Transfers and sync call this first, so
 * everything stays in issue order. */
strata_status cuda_flush(cuda_context *ctx, strata_error *err);
/* Destroys every captured graph and forgets the recording. */
void cuda_graphs_release(cuda_context *ctx);

/* --- measurements (cuda_measure.c) -------------------------------------------------------------------- */

strata_status cuda_measure_bandwidth(void *ctx, double *bytes_per_second, strata_error *err);
strata_status cuda_measure_gemm_peak(void *ctx, double *flops, strata_error *err);

#endif
