/* Shape and dtype checks of every op, read by both supports() and run_op(),
 * so what the CUDA backend accepts is written once. They follow the op
 * contracts in backends/backend.h, plus the limits of these kernels: head_dim
 * at most KERNEL_ATTENTION_MAX_HEAD_DIM, dimensions that fit cuBLAS's int,
 * block-format weights starting at a multiple of 4 bytes (GGUF aligns them to
 * 32). */
#include "cuda_internal.h"

#include "../op_contract.h"

#define INT_DIM_MAX 0x7fffffff

/* A weight (matmul) or table (get_rows): a dtype the kernels read, rows that
 * cuBLAS can index, blocks at aligned addresses. */
static bool need_weight_kernel(const strata_tensor *w, char *why, size_t why_size)
{
    const char *name = op_tensor_label(w, "src0");
    return op_need(cuda_weight_dtype_supported(w->dtype), why, why_size,
                   "%s has dtype %s, which the cuda backend does not read", name, dtype_name(w->dtype)) &&
           op_need(w->ne[0] <= INT_DIM_MAX && w->ne[1] <= INT_DIM_MAX, why, why_size, "%s is too large", name) &&
           op_need(!cuda_weight_dtype_is_block(w->dtype) || w->offset % 4 == 0, why, why_size,
                   "%s starts at offset %zu, not a multiple of 4", name, w->offset);
}

/* Row-wise kernels run one block per row. */
static bool need_rows_fit(const strata_tensor *t, char *why, size_t why_size)
{
    return op_need(tensor_row_count(t) <= INT_DIM_MAX, why, why_size, "%lld rows are more than one launch takes",
                   (long long)tensor_row_count(t));
}

bool cuda_check_get_rows(const backend_op *op, char *why, size_t why_size)
{
    return op_contract_check(op, why, why_size) && need_weight_kernel(op->src[0], why, why_size);
}

bool cuda_check_matmul(const backend_op *op, char *why, size_t why_size)
{
    return op_contract_check(op, why, why_size) && need_weight_kernel(op->src[0], why, why_size) &&
           op_need(tensor_row_count(op->src[1]) <= INT_DIM_MAX, why, why_size, "%lld tokens are too many",
                   (long long)tensor_row_count(op->src[1]));
}

/* RMS_NORM, SCALE, SOFTMAX, SWIGLU, GEGLU, ARGMAX: one block per row of src0. */
static bool check_rows_fit(const backend_op *op, char *why, size_t why_size)
{
    return op_contract_check(op, why, why_size) && need_rows_fit(op->src[0], why, why_size);
}

bool cuda_check_rms_norm(const backend_op *op, char *why, size_t why_size) { return check_rows_fit(op, why, why_size); }
bool cuda_check_unary(const backend_op *op, char *why, size_t why_size) { return check_rows_fit(op, why, why_size); }
bool cuda_check_gated(const backend_op *op, char *why, size_t why_size) { return check_rows_fit(op, why, why_size); }
bool cuda_check_argmax(const backend_op *op, char *why, size_t why_size) { return check_rows_fit(op, why, why_size); }
bool cuda_check_binary(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cuda_check_kv_store(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cuda_check_copy(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }

/* TOPK, MOE_WEIGHTS and MOE_SUM: one thread per column (top-k, weights) or
 * per output element, indexed in 64 bits: the contract is the whole check. */
bool cuda_check_moe(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }

/* The expert matmul: a weight OP_MATMUL reads, experts that the grouping
 * kernel counts in shared memory, pairs indexed by an int. */
bool cuda_check_matmul_id(const backend_op *op, char *why, size_t why_size)
{
    if (!op_contract_check(op, why, why_size) || !need_weight_kernel(op->src[0], why, why_size))
        return false;
    const int64_t n_expert = op->src[0]->ne[2], n_pairs = op->src[2]->ne[0] * op->src[2]->ne[1];
    return op_need(n_expert <= KERNEL_MOE_MAX_EXPERTS, why, why_size, "%lld experts are more than the kernel's %d",
                   (long long)n_expert, KERNEL_MOE_MAX_EXPERTS) &&
           op_need(n_pairs < INT_DIM_MAX - CUDA_MATVEC_MAX_TOKENS, why, why_size,
                   "%lld (slot, token) pairs are too many", (long long)n_pairs);
}

bool cuda_check_rope(const backend_op *op, char *why, size_t why_size)
{
    int32_t n_rot = op->params.rope.n_rot;
    return check_rows_fit(op, why, why_size) &&
           op_need(n_rot <= KERNEL_ROPE_MAX_ROT, why, why_size, "n_rot %d is more than the kernel's %d", n_rot,
                   KERNEL_ROPE_MAX_ROT);
}

bool cuda_check_attention(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2];
    return op_contract_check(op, why, why_size) &&
           op_need(k->dtype == v->dtype, why, why_size, "the K cache is %s and the V cache %s", dtype_name(k->dtype),
                   dtype_name(v->dtype)) &&
           op_need(q->ne[0] <= KERNEL_ATTENTION_MAX_HEAD_DIM, why, why_size,
                   "head_dim %lld is more than the kernel's %d", (long long)q->ne[0], KERNEL_ATTENTION_MAX_HEAD_DIM) &&
           op_need(q->ne[1] * q->ne[2] <= INT_DIM_MAX, why, why_size, "too many (head, token) pairs");
}
