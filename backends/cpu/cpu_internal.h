/* Private to backends/cpu: the device context, the buffer struct, the op
 * table entry type and the op functions each file provides. */
#ifndef STRATA_CPU_INTERNAL_H
#define STRATA_CPU_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "../backend.h"
#include "cpu_kernels.h"
#include "cpu_threadpool.h"

#define CPU_ALIGNMENT 64

struct backend_buffer {
    void *data;
    size_t bytes;
    bool owned; /* false for buffer_wrap_host */
};

/* Scratch memory reused across ops: grown as ops need it, released when the
 * workspace limit is set (a model placed on the device), freed at destroy. */
typedef struct cpu_scratch {
    void *data;
    size_t bytes;
} cpu_scratch;

typedef struct cpu_context {
    int n_threads;
    cpu_threadpool *pool;
    cpu_isa isa;
    pthread_mutex_t op_mutex;     /* one op at a time: the pool and scratch are shared */
    cpu_scratch activations;      /* matmul: activation rows in the kernel's format */
    cpu_scratch per_thread;       /* n_threads slices, for ops that need a row of floats */
    cpu_scratch experts;          /* matmul_id: one expert's tokens gathered, and its results */
    size_t per_thread_bytes;      /* size of one slice of per_thread */
    /* activations + per_thread + experts are the backend's workspace (host memory):
     * capped by workspace_limit (0: none), its peak kept */
    uint64_t workspace_limit;
    uint64_t workspace_peak;
} cpu_context;

/* The workspace slots of backend_ops and the registration's pure bound
 * (cpu_workspace.c). */
void cpu_set_workspace_limit(void *ctx, uint64_t limit_bytes);
uint64_t cpu_workspace_peak_bytes(void *ctx);
uint64_t cpu_workspace_bytes(const backend_workspace_query *query);

/* The host address of a tensor's first byte: its buffer's memory plus offset,
 * or host_data when it has no buffer; NULL when neither is set. */
void *cpu_tensor_data(const strata_tensor *tensor);

/* Makes scratch (ctx->activations or ctx->per_thread) hold at least bytes
 * (64-byte aligned); growing the workspace past ctx->workspace_limit fails
 * before anything is allocated. */
strata_status cpu_scratch_reserve(cpu_context *ctx, cpu_scratch *scratch, size_t bytes, strata_error *err);

/* Gives every thread a slice of at least bytes in ctx->per_thread. */
strata_status cpu_per_thread_reserve(cpu_context *ctx, size_t bytes, strata_error *err);
void *cpu_per_thread_slice(cpu_context *ctx, int thread_index);

/* One weight matrix times n_tok columns of f32 activations, as OP_MATMUL
 * computes it: dst[o + t n_out] = sum_i w[i, o] x[i + t n_in]. */
typedef struct cpu_matmul_operands {
    strata_dtype dtype;
    const void *weight;         /* n_out rows of n_in values in dtype */
    size_t weight_row_bytes;
    int64_t n_in, n_out;
    const float *x;             /* [n_in, n_tok] */
    int64_t n_tok;
    float *dst;                 /* [n_out, n_tok] */
} cpu_matmul_operands;

/* Runs m on the pool (cpu_matmul.c); uses ctx->activations. */
strata_status cpu_matmul_compute(cpu_context *ctx, const cpu_matmul_operands *m, strata_error *err);

/* An op's shape/dtype check: true when the op is accepted; otherwise false
 * with the reason in why (one sentence, no trailing period). */
typedef bool (*cpu_op_check_fn)(const backend_op *op, char *why, size_t why_size);
/* Runs an op that passed its check. */
typedef strata_status (*cpu_op_run_fn)(cpu_context *ctx, const backend_op *op, strata_error *err);

/* Checks (cpu_check.c). */
bool cpu_check_get_rows(const backend_op *op, char *why, size_t why_size);
bool cpu_check_rms_norm(const backend_op *op, char *why, size_t why_size);
bool cpu_check_matmul(const backend_op *op, char *why, size_t why_size);
bool cpu_check_binary(const backend_op *op, char *why, size_t why_size);     /* ADD, MUL */
bool cpu_check_unary(const backend_op *op, char *why, size_t why_size);      /* SCALE, SOFTMAX */
bool cpu_check_gated(const backend_op *op, char *why, size_t why_size);      /* SWIGLU, GEGLU */
bool cpu_check_rope(const backend_op *op, char *why, size_t why_size);
bool cpu_check_kv_store(const backend_op *op, char *why, size_t why_size);
bool cpu_check_attention(const backend_op *op, char *why, size_t why_size);
bool cpu_check_argmax(const backend_op *op, char *why, size_t why_size);
bool cpu_check_copy(const backend_op *op, char *why, size_t why_size);
bool cpu_check_topk(const backend_op *op, char *why, size_t why_size);        /* TOPK, MOE_WEIGHTS, MOE_SUM */
bool cpu_check_matmul_id(const backend_op *op, char *why, size_t why_size);

/* Runs (one file per op family). */
strata_status cpu_run_get_rows(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_copy(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_rms_norm(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_add(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_mul(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_scale(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_swiglu(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_geglu(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_softmax(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_argmax(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_matmul(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_rope(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_kv_store(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_attention(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_topk(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_moe_weights(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_matmul_id(cpu_context *ctx, const backend_op *op, strata_error *err);
strata_status cpu_run_moe_sum(cpu_context *ctx, const backend_op *op, strata_error *err);

#endif
