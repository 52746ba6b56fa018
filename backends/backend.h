/* The one interface every device implements.
 *
 * A device is one place that holds memory and runs ops: the CPU, a GPU through
 * CUDA, a GPU through Vulkan. A backend is a const table of function pointers
 * (backend_ops) plus a context pointer; optional slots may be NULL and the
 * runtime has one generic fallback for each.
 *
 * Ops are described by a small struct (backend_op) that names the op, its
 * tensors and its parameters. The same struct feeds supports(), run_op() and
 * the op-conformance tests, so op support is written once per backend.
 *
 * Conventions for every op below:
 * - Shapes are written innermost first, as [ne0, ne1, ne2, ne3]; ne0 is
 *   contiguous. Unused trailing dims are 1.
 * - Activations are F32 unless an op says otherwise; accumulation is in F32.
 * - Tensors are contiguous (nb[i] = nb[i-1] * ne[i-1], nb[0] = element bytes,
 *   or rows of whole blocks for quantized dtypes) unless an op says a strided
 *   operand is allowed.
 * - dst never aliases a src, except that dst == src0 exactly (same buffer,
 *   offset and shape: in place) is allowed for ADD, MUL, SCALE, RMS_NORM,
 *   ROPE, SWIGLU, GEGLU and SOFTMAX; the forward pass relies on it.
 * - Ops are asynchronous on the device's stream/queue and run in the order
 *   they are issued; sync() waits for all of them.
 *
 * Several devices, of one backend or of several, may be open at once (a model
 * split across cuda0, cuda1 and the CPU). Each has its own context; nothing a
 * device does orders it with another device, except copy_peer and what the
 * caller does with sync(). */
#ifndef STRATA_BACKEND_H
#define STRATA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/dtype.h"
#include "../base/status.h"

#define STRATA_MAX_DIMS 4
#define BACKEND_OP_MAX_SRC 4

typedef enum device_kind {
    DEVICE_KIND_CPU,
    DEVICE_KIND_CUDA,
    DEVICE_KIND_VULKAN,
} device_kind;

typedef struct device_info {
    char name[128];            /* "AMD EPYC 7B13 (2 threads)", "NVIDIA H100 80GB HBM3" */
    device_kind kind;
    uint64_t total_bytes;      /* memory of the device (host RAM for the CPU) */
    uint64_t free_bytes;
    size_t alignment;          /* of buffer offsets that ops accept */
    uint64_t max_allocation_bytes; /* largest single buffer */
    bool host_visible;         /* buffers can be read by the host directly */
    int multiprocessors;       /* compute units (CUDA SMs); 0: unknown or not meaningful */
    /* The device computes on the host's CPU cores (Mesa's lavapipe): it is
     * never picked by default, only when named. */
    bool software;
    /* The physical device's UUID where the API reports one (CUDA, Vulkan), so
     * the same card seen through two backends can be recognized. */
    bool has_uuid;
    uint8_t uuid[16];
    char features[192];        /* optional short text for `strata devices`: "fp16-storage:yes subgroup:32 ..." */
} device_info;

/* What backend_registration.workspace_bytes is asked about: the largest
 * shapes the ops of one forward pass will have on the device. */
typedef struct backend_workspace_query {
    int64_t max_tokens;        /* most tokens (columns) of one op */
    int64_t max_matmul_rows;   /* largest n_out of a weight on the device */
    int64_t max_matmul_cols;   /* largest n_in of a weight on the device */
    int64_t max_matmul_row_bytes; /* bytes of one row of the largest weight (its dtype) */
    int64_t n_heads, n_kv_heads, head_dim; /* of attention on the device; 0: none */
    int64_t n_ctx;             /* cache rows attention may scan */
    int64_t max_expert_cols, max_expert_rows; /* n_in and n_out of the largest expert matrix
                                                 (OP_MATMUL_ID) on the device; 0: none */
    int64_t max_experts_used;  /* most experts a token uses (k of OP_MATMUL_ID); 0: none, or 1
                                  when expert matrices are given */
    int multiprocessors;       /* of the device; 0: unknown (assume the most) */
    /* bit (1 << dtype) for each dtype among the matmul weights; 0: unknown
     * (assume any) */
    uint64_t weight_dtype_mask;
} backend_workspace_query;

/* A backend's buffer; only the backend knows what is inside. */
typedef struct backend_buffer backend_buffer;

/* A tensor descriptor: small, passed by pointer, owns nothing. */
typedef struct strata_tensor {
    strata_dtype dtype;
    int64_t ne[STRATA_MAX_DIMS]; /* elements per dim */
    size_t nb[STRATA_MAX_DIMS];  /* bytes between consecutive indices of each dim */
    backend_buffer *buffer;      /* where the bytes live */
    size_t offset;               /* bytes into buffer */
    void *host_data;             /* buffer base + offset when host-visible, else NULL */
    const char *name;            /* for messages; may be NULL */
} strata_tensor;

typedef enum op_kind {
    /* dst[n_embd, n_rows] F32 = src0[n_embd, n_vocab] (any dtype) at the rows
     * src1[n_rows] (I32). A row index outside [0, n_vocab) is an error the
     * runtime prevents before issuing the op. */
    OP_GET_ROWS,
    /* dst[n, rows] = src0[n, rows] / sqrt(mean(src0^2) + eps), times
     * src1[n] (F32) element-wise when src1 is not NULL. */
    OP_RMS_NORM,
    /* dst[n_out, n_tok] F32 = src1[n_in, n_tok] (F32) times the transpose of
     * the weight src0[n_in, n_out] (any dtype): dst[o, t] = sum_i w[i, o] x[i, t].
     * n_tok == 1 is matrix-vector (decode); larger is GEMM (prefill). */
    OP_MATMUL,
    /* dst = src0 + src1; src1 has the shape of src0 or one row ([n, 1])
     * broadcast over every row. */
    OP_ADD,
    /* dst = src0 * src1, with the same broadcast as OP_ADD. */
    OP_MUL,
    /* dst = src0 * params.scale.value */
    OP_SCALE,
    /* Rotary position embedding on src0[head_dim, n_heads, n_tok] at the
     * positions src1[n_tok] (I32). The first params.rope.n_rot dims of each
     * head rotate, the rest pass through. Pair (i, i + n_rot/2) when neox,
     * pair (2i, 2i+1) otherwise. theta_i = pos * freq_scale *
     * freq_base^(-2i/n_rot) / factor_i, with factor_i = src2[i] (F32,
     * [n_rot/2]) when src2 is given (llama3 scaling), else 1. When
     * attn_factor is neither 0 nor 1, the rotated dims (only) are multiplied
     * by it (LongRoPE's attention factor on cos and sin). */
    OP_ROPE,
    /* Stores src0[row_size, n_tok] (F32) into the cache dst[row_size, n_ctx]
     * (F16 or F32) at rows src1[n_tok] (I32 positions, each < n_ctx). */
    OP_KV_STORE,
    /* Causal attention of the queries src0[head_dim, n_heads, n_tok] (F32)
     * over the caches K = src1[head_dim, n_kv_heads, n_ctx] and
     * V = src2[head_dim, n_kv_heads, n_ctx] (F16 or F32), with query positions
     * src3[n_tok] (I32). Query t of head h attends to cache rows j with
     * j <= pos[t] (and j > pos[t] - sliding_window when that is > 0), j <
     * params.attention.n_kv, through kv head h / (n_heads / n_kv_heads) (GQA).
     * scores = q.k * scale; when softcap > 0, scores = softcap *
     * tanh(scores / softcap); softmax; dst[head_dim, n_heads, n_tok] = sum p v. */
    OP_ATTENTION,
    /* dst = silu(src0) * src1 (element-wise, same shapes) */
    OP_SWIGLU,
    /* dst = gelu(src0) * src1 (tanh approximation) */
    OP_GEGLU,
    /* Softmax along ne0 of every row. */
    OP_SOFTMAX,
    /* dst[n_rows] (I32) = index of the largest value of each row of
     * src0[n, n_rows]; the lowest index wins ties. */
    OP_ARGMAX,
    /* dst = src0 converted to dst's dtype (F32, F16, BF16 both ways); same
     * element counts; both may be strided (any nb). */
    OP_COPY,
    /* --- mixture of experts: route, multiply by the chosen experts, sum --- */
    /* Router selection: dst[k, n_tok] (I32) = the indices of the k largest
     * values of each column of src0[n_expert, n_tok] (F32), largest first,
     * the lower index first among equal values; 1 <= k <= n_expert, so the
     * k ids of a column are distinct. Applied to softmax(router logits) this
     * is the top-k of the router probabilities (softmax keeps the order, so
     * it is also the top-k of the logits). */
    OP_TOPK,
    /* The chosen experts' weights: dst[k, n_tok] (F32), dst[j, t] =
     * src0[src1[j, t], t], from the probabilities src0[n_expert, n_tok] (F32)
     * at the ids src1[k, n_tok] (I32, each in [0, n_expert)). When
     * params.moe_weights.normalize, each column is then divided by its sum
     * (Mixtral's softmax over the top-k logits is exactly this; Qwen3-MoE
     * does it when norm_topk_prob). */
    OP_MOE_WEIGHTS,
    /* Expert matmul: dst[n_out, k, n_tok] (F32), dst[:, j, t] = W_e^T
     * x[:, j', t] with e = src2[j, t], for the experts' weights src0[n_in,
     * n_out, n_expert] (any weight dtype: expert e's matrix is the e-th
     * [n_in, n_out] slab, as OP_MATMUL reads a 2-D weight), the ids src2[k,
     * n_tok] (I32: each in [0, n_expert), distinct within a column) and
     * x = src1[n_in, k_x, n_tok] (F32) where k_x is k (slot j reads its own
     * column, j' = j) or 1 (every slot reads the token's one column, j' = 0).
     * Only the chosen experts' bytes are read, each once per op however many
     * tokens chose it (tokens are grouped by expert). An id out of range or
     * repeated within a column is an error (the router never writes one). */
    OP_MATMUL_ID,
    /* Weighted sum of the experts' outputs: dst[n, n_tok] (F32) = sum over j
     * of src1[j, t] * src0[:, j, t], for src0[n, k, n_tok] and the weights
     * src1[k, n_tok] (F32), summed in order j = 0, 1, ... When
     * params.moe_sum.sigmoid, each weight is sigmoid(src1[j, t]) = 1 / (1 +
     * exp(-src1[j, t])) instead: with k = 1, the per-token gate of Qwen2-MoE's
     * shared expert (dst[:, t] = sigmoid(g[t]) y[:, 0, t]). dst must not
     * overlap src0. */
    OP_MOE_SUM,
    OP_COUNT_
} op_kind;

typedef struct backend_op {
    op_kind kind;
    strata_tensor *dst;
    const strata_tensor *src[BACKEND_OP_MAX_SRC]; /* unused ones NULL */
    union {
        struct { float eps; } rms_norm;
        struct { float value; } scale;
        struct {
            int32_t n_rot;
            bool neox;
            float freq_base;
            float freq_scale;
            float attn_factor;       /* rotated dims scaled by this (LongRoPE); 0 or 1: none */
        } rope;
        struct {
            int64_t n_kv;            /* cache rows to scan (>= max position + 1) */
            float scale;             /* usually 1 / sqrt(head_dim) */
            int32_t sliding_window;  /* 0: none */
            float softcap;           /* 0: none */
        } attention;
        struct { bool normalize; } moe_weights;
        struct { bool sigmoid; } moe_sum;
    } params;
} backend_op;

const char *op_kind_name(op_kind kind);
/* Whether kind is one of the mixture-of-experts ops (OP_TOPK ... OP_MOE_SUM). */
bool op_kind_is_moe(op_kind kind);

/* The function table of one backend. Every call takes the device context.
 * Unless a slot says otherwise it is required. */
typedef struct backend_ops {
    const char *name; /* "cpu", "cuda", "vulkan" */

    /* Frees the context and everything it owns. Buffers must be freed first. */
    void (*destroy)(void *ctx);
    void (*get_info)(void *ctx, device_info *out);

    /* A buffer of at least bytes, aligned to device_info.alignment. */
    strata_status (*buffer_alloc)(void *ctx, size_t bytes, backend_buffer **out, strata_error *err);
    /* Optional: a buffer over caller-owned host memory, no copy (the CPU uses
     * this to compute straight from the memory-mapped model file). The memory
     * must outlive the buffer. */
    strata_status (*buffer_wrap_host)(void *ctx, void *host_ptr, size_t bytes, backend_buffer **out,
                                      strata_error *err);
    void (*buffer_free)(void *ctx, backend_buffer *buffer); /* NULL is fine */
    /* Host address of the buffer's first byte, or NULL when not host-visible. */
    void *(*buffer_host_ptr)(void *ctx, backend_buffer *buffer);

    /* Host <-> device transfers, ordered with the ops on the device's stream.
     * upload reads src before it returns (the bytes are copied to staging or
     * transferred), so the caller may reuse src at once. download writes dst
     * asynchronously: dst must stay valid, and is only complete, once sync()
     * returns. */
    strata_status (*upload)(void *ctx, backend_buffer *dst, size_t offset, const void *src, size_t bytes,
                            strata_error *err);
    strata_status (*download)(void *ctx, backend_buffer *src, size_t offset, void *dst, size_t bytes,
                              strata_error *err);
    /* Waits until every issued op and transfer has finished. */
    strata_status (*sync)(void *ctx, strata_error *err);

    /* Whether run_op accepts this op with these dtypes and shapes. The runtime
     * never issues an op for which this returns false. */
    bool (*supports)(void *ctx, const backend_op *op);
    strata_status (*run_op)(void *ctx, const backend_op *op, strata_error *err);

    /* Optional: bracket one forward pass, so a backend can capture and replay
     * it (CUDA graphs, recorded Vulkan command buffers). */
    strata_status (*begin_step)(void *ctx, strata_error *err);
    strata_status (*end_step)(void *ctx, strata_error *err);

    /* Optional: the device's memory bandwidth, measured now by a large
     * device-to-device copy (bytes read plus bytes written, per second), for
     * the decode roofline of `strata bench`. Blocks; allocates and frees its
     * own buffers. NULL where the runtime's host measurement applies (CPU). */
    strata_status (*measure_bandwidth)(void *ctx, double *bytes_per_second, strata_error *err);
    /* Optional: the matrix-multiply rate the device's prefill path can reach,
     * measured now (CUDA: a large f16 x f16 -> f32 cuBLAS GEMM), in floating
     * point operations per second, for the prefill roofline. Blocks. */
    strata_status (*measure_gemm_peak)(void *ctx, double *flops, strata_error *err);

    /* Optional: copies bytes from src (a buffer of src_ctx, another device of
     * the same backend) into dst, device to device (CUDA peer copies). The
     * copy happens after every op and transfer issued before it on both
     * devices, and before those issued after it on the destination device.
     * The source bytes must not be overwritten until the destination device
     * has been synced or has issued something that waits for the copy.
     * Returns STRATA_UNSUPPORTED, touching nothing, when these two devices
     * cannot copy between them; the runtime then goes through the host. */
    strata_status (*copy_peer)(void *dst_ctx, backend_buffer *dst, size_t dst_offset, void *src_ctx,
                               backend_buffer *src, size_t src_offset, size_t bytes, strata_error *err);

    /* Optional: a cap on the device memory the backend allocates by itself for
     * its ops (workspace: activation quantization, GEMM tiles, attention
     * partials), not counting buffer_alloc. From this call on, growing the
     * workspace past limit_bytes fails with STRATA_OUT_OF_MEMORY before the
     * device is touched, naming the device, what was asked and what was left.
     * Called between ops only. Workspace held from before (a measurement, an
     * earlier model) must not make the model's own ops fail: a backend whose
     * workspace holds nothing between ops releases it here and restarts its
     * peak count. 0 removes the cap. */
    void (*set_workspace_limit)(void *ctx, uint64_t limit_bytes);
    /* Optional: the most workspace bytes held at once since the device was
     * opened (NULL: the backend keeps none). */
    uint64_t (*workspace_peak_bytes)(void *ctx);
} backend_ops;

/* An open device. */
typedef struct backend_device {
    const backend_ops *ops;
    void *ctx;
    int index; /* among the devices of its backend */
} backend_device;

typedef struct backend_options {
    int n_threads; /* CPU worker threads; 0 = all cores */
} backend_options;

/* One entry of the registry: a backend that was built in. */
typedef struct backend_registration {
    const char *name;
    /* Number of devices present (0 when the driver or hardware is missing; a
     * message explaining why goes to err when err is not NULL). */
    int (*device_count)(strata_error *err);
    strata_status (*open)(int device_index, const backend_options *options, backend_device *out,
                          strata_error *err);
    /* Optional, pure (no device call, so the planner can ask about devices
     * that are not present): an upper bound of the workspace a device of this
     * backend allocates for the ops of a forward pass of these shapes. NULL:
     * the backend needs none beyond its buffers. */
    uint64_t (*workspace_bytes)(const backend_workspace_query *query);
    /* Optional, pure (the planner asks it about devices that are not
     * present): whether a device of this backend computes matmul and
     * get_rows with weights of dtype. The planner keeps weights of a dtype
     * it says no to in host RAM, computed by the CPU. NULL: every weight
     * dtype the op contract allows. supports() must agree with it. */
    bool (*weight_dtype_supported)(strata_dtype dtype);
    /* Optional, pure: whether a device of this backend runs ops of this kind
     * at all (its supports() may still refuse particular shapes). The planner
     * keeps the experts' weights (read by OP_MATMUL_ID) of a backend that
     * says no in host RAM, computed by the CPU, and the forward pass runs the
     * other refused kinds (the router's OP_TOPK, ...) on the CPU. NULL: every
     * kind. supports() must agree with it. */
    bool (*op_kind_supported)(op_kind kind);
} backend_registration;

/* The built-in backends, CPU first; *count receives their number. */
const backend_registration *const *backend_registry(int *count);
/* The registration named name ("cpu", "cuda", "vulkan"), or NULL. */
const backend_registration *backend_find(const char *name);
/* Opens device_index of the backend called name; a readable error when the
 * backend was not built in, has no devices, or the index is out of range. */
strata_status backend_open(const char *name, int device_index, const backend_options *options,
                           backend_device *out, strata_error *err);
void backend_close(backend_device *device);

/* --- tensor helpers (pure, no device calls) ----------------------------- */

/* Fills a contiguous descriptor: ne0..ne3 (pass 1 for unused dims) and the
 * byte strides implied by dtype. Returns false on overflow or when ne0 is not
 * a multiple of the dtype's block size. buffer/offset/host_data are zeroed. */
bool tensor_init_contiguous(strata_tensor *tensor, strata_dtype dtype, int64_t ne0, int64_t ne1, int64_t ne2,
                            int64_t ne3);
int64_t tensor_element_count(const strata_tensor *tensor);
size_t tensor_byte_size(const strata_tensor *tensor); /* of a contiguous tensor */
bool tensor_is_contiguous(const strata_tensor *tensor);
int64_t tensor_row_count(const strata_tensor *tensor); /* ne1 * ne2 * ne3 */

#endif
