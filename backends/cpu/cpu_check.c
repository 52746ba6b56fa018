/* What the CPU accepts, read by both supports() and run_op(): the op
 * contracts of backend.h (backends/op_contract.c) plus the CPU's own limits,
 * which are only about weights: a dtype with a dot-product kernel, and rows
 * whose length is a multiple of the activation block the kernel quantizes to. */
#include "cpu_internal.h"

#include "../op_contract.h"

static bool need_weight_kernel(const strata_tensor *weight, char *why, size_t why_size)
{
    return op_need(cpu_matmul_kernel_find(weight->dtype) != NULL, why, why_size,
                   "%s has dtype %s, which the cpu backend does not read", op_tensor_label(weight, "src0"),
                   dtype_name(weight->dtype));
}

bool cpu_check_get_rows(const backend_op *op, char *why, size_t why_size)
{
    return op_contract_check(op, why, why_size) && need_weight_kernel(op->src[0], why, why_size);
}

/* The weight's rows are a whole number of the activation blocks its kernel quantizes to. */
static bool need_act_blocks(const backend_op *op, char *why, size_t why_size)
{
    const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(op->src[0]->dtype);
    int64_t act_block = kernel->act == CPU_ACT_Q8_K ? 256 : kernel->act == CPU_ACT_F32 ? 1 : 32;
    int64_t n_in = op->src[1]->ne[0];
    return op_need(n_in % act_block == 0, why, why_size, "n_in %lld is not a multiple of %lld", (long long)n_in,
                   (long long)act_block);
}

bool cpu_check_matmul(const backend_op *op, char *why, size_t why_size)
{
    return op_contract_check(op, why, why_size) && need_weight_kernel(op->src[0], why, why_size) &&
           need_act_blocks(op, why, why_size);
}

bool cpu_check_matmul_id(const backend_op *op, char *why, size_t why_size)
{
    return cpu_check_matmul(op, why, why_size);
}

/* The other ops have no CPU-specific limits. */
bool cpu_check_rms_norm(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cpu_check_binary(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cpu_check_unary(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cpu_check_gated(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cpu_check_rope(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cpu_check_kv_store(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cpu_check_attention(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cpu_check_argmax(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cpu_check_copy(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
bool cpu_check_topk(const backend_op *op, char *why, size_t why_size) { return op_contract_check(op, why, why_size); }
