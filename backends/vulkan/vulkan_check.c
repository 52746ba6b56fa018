/* What the Vulkan backend accepts, read by both supports() and run_op(): the
 * op contracts of backend.h (backends/op_contract.c) plus this backend's own
 * limits: weight dtypes with a shader, activations that 32-bit shader
 * indices can address (caches may be larger: the ops bind them in ranges of
 * rows, vulkan_split.h, so only their row counts and row sizes must fit 31
 * bits), attention head_dim up to the shader's maximum, K and V caches of one
 * dtype, copy strides in whole elements, and mixture-of-experts shapes whose
 * columns fit one binding (vulkan_moe_plan.h). */
#include <stdio.h>

#include "vulkan_internal.h"
#include "vulkan_moe_plan.h"
#include "vulkan_push.h"

#include "../op_contract.h"

#define ATTENTION_MAX_HEAD_DIM 512 /* shaders/attention.comp: 8 dims per thread, 64 threads */

/* Shaders index with 32-bit unsigned integers. */
static bool need_small(const strata_tensor *t, const char *role, char *why, size_t why_size)
{
    return op_need(tensor_element_count(t) < ((int64_t)1 << 31), why, why_size, "%s (%s) has more than 2^31 elements",
                   role, op_tensor_label(t, role));
}

/* A KV cache: rows and values per row that 32-bit indices can count. */
static bool need_cache_rows(const strata_tensor *cache, const char *role, int64_t rows, int64_t row_values,
                            char *why, size_t why_size)
{
    return op_need(rows < ((int64_t)1 << 31) && row_values < ((int64_t)1 << 31), why, why_size,
                   "%s (%s) has %lld rows of %lld values; at most 2^31 - 1 of each", role,
                   op_tensor_label(cache, role), (long long)rows, (long long)row_values);
}

static bool need_weight_shader(const strata_tensor *weight, char *why, size_t why_size)
{
    return op_need(vk_weight_dtype_supported(weight->dtype), why, why_size,
                   "%s has dtype %s, for which no shader is built", op_tensor_label(weight, "src0"),
                   dtype_name(weight->dtype));
}

bool vk_check_get_rows(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    return op_contract_check(op, why, why_size) && need_weight_shader(op->src[0], why, why_size) &&
           need_small(op->dst, "dst", why, why_size);
}

bool vk_check_matmul(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    return op_contract_check(op, why, why_size) && need_weight_shader(op->src[0], why, why_size) &&
           need_small(op->src[1], "src1", why, why_size) && need_small(op->dst, "dst", why, why_size);
}

/* RMS_NORM, ADD, MUL, SCALE, SOFTMAX, SWIGLU, GEGLU, ROPE, ARGMAX: src0 small. */
static bool check_src0_small(const backend_op *op, char *why, size_t why_size)
{
    return op_contract_check(op, why, why_size) && need_small(op->src[0], "src0", why, why_size);
}

bool vk_check_rms_norm(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    return check_src0_small(op, why, why_size);
}

bool vk_check_binary(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    return check_src0_small(op, why, why_size);
}

bool vk_check_unary(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    return check_src0_small(op, why, why_size);
}

bool vk_check_gated(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    return check_src0_small(op, why, why_size);
}

bool vk_check_rope(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    return check_src0_small(op, why, why_size);
}

bool vk_check_argmax(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    return check_src0_small(op, why, why_size);
}

bool vk_check_kv_store(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    return op_contract_check(op, why, why_size) &&
           need_cache_rows(op->dst, "dst", op->dst->ne[1], op->dst->ne[0], why, why_size) &&
           need_small(op->src[0], "src0", why, why_size);
}

bool vk_check_attention(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    const strata_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2];
    return op_contract_check(op, why, why_size) &&
           need_cache_rows(k, "src1", k->ne[2], k->ne[0] * k->ne[1], why, why_size) &&
           need_small(q, "src0", why, why_size) &&
           op_need(k->dtype == v->dtype, why, why_size, "K and V caches differ in dtype") &&
           op_need(q->ne[0] <= ATTENTION_MAX_HEAD_DIM, why, why_size, "head_dim %lld is above the shader's %d",
                   (long long)q->ne[0], ATTENTION_MAX_HEAD_DIM);
}

static size_t float_type_bytes(strata_dtype dtype)
{
    return dtype == DTYPE_F32 ? 4 : dtype == DTYPE_F16 || dtype == DTYPE_BF16 ? 2 : 0;
}

/* Every stride of t is a whole number of elements (the shader indexes elements). */
static bool strides_in_elements(const strata_tensor *t)
{
    size_t size = float_type_bytes(t->dtype);
    for (int d = 0; d < STRATA_MAX_DIMS; d++)
        if (t->nb[d] % size != 0 || t->nb[d] / size >= ((size_t)1 << 31))
            return false;
    return true;
}

bool vk_check_copy(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    return op_contract_check(op, why, why_size) &&
           op_need(strides_in_elements(op->src[0]) && strides_in_elements(op->dst), why, why_size,
                   "strides must be whole numbers of elements") &&
           need_small(op->src[0], "src0", why, why_size);
}

/* One column of each of these byte counts fits a binding. */
static bool need_column_fits(const vk_context *ctx, uint64_t bytes, const char *what, char *why, size_t why_size)
{
    return op_need(vk_rows_per_binding(bytes, ctx->bind_limit, vk_binding_alignment(ctx)) > 0, why, why_size,
                   "one column of %s (%llu bytes) is more than the device binds at once", what,
                   (unsigned long long)bytes);
}

bool vk_check_topk(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    if (!check_src0_small(op, why, why_size))
        return false;
    /* topk.comp: each thread ranks its elements against the whole column */
    uint64_t n = (uint64_t)op->src[0]->ne[0];
    uint64_t iterations = (n + VK_MOE_LOCAL_SIZE - 1) / VK_MOE_LOCAL_SIZE * (n + 1);
    return op_need(!ctx->loop_budget || iterations < ctx->loop_budget, why, why_size,
                   "%llu experts are more than this driver's loop budget lets one column rank", (unsigned long long)n) &&
           need_column_fits(ctx, 4 * n, "src0", why, why_size) &&
           need_column_fits(ctx, 4ull * (uint64_t)op->dst->ne[0], "dst", why, why_size);
}

bool vk_check_moe_weights(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    return check_src0_small(op, why, why_size) &&
           need_column_fits(ctx, 4ull * (uint64_t)op->src[0]->ne[0], "src0", why, why_size) &&
           need_column_fits(ctx, 4ull * (uint64_t)op->src[1]->ne[0], "src1", why, why_size);
}

bool vk_check_matmul_id(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    if (!op_contract_check(op, why, why_size))
        return false;
    const strata_tensor *experts = op->src[0];
    char shader[64], tiled[64];
    snprintf(shader, sizeof shader, "matmul_id_%s", dtype_name(experts->dtype));
    snprintf(tiled, sizeof tiled, "matmul_id_tiled_%s", dtype_name(experts->dtype));
    vk_matmul_id_dims dims = vk_matmul_id_dims_of(op, ctx->bind_limit, vk_binding_alignment(ctx));
    vk_matmul_id_plan plan;
    return op_need(vk_shader_present(shader) && vk_shader_present(tiled), why, why_size, "%s has dtype %s, for which no expert shader is built",
                   op_tensor_label(experts, "src0"), dtype_name(experts->dtype)) &&
           need_small(op->src[1], "src1", why, why_size) && need_small(op->dst, "dst", why, why_size) &&
           op_need(experts->nb[2] < ((uint64_t)1 << 32), why, why_size, "one expert of %s is 4 GiB or more",
                   op_tensor_label(experts, "src0")) &&
           op_need(vk_matmul_id_plan_make(&dims, &plan), why, why_size,
                   "a weight row, one token or the expert table does not fit one binding");
}

bool vk_check_moe_sum(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *y = op->src[0];
    vk_moe_sum_plan plan;
    return check_src0_small(op, why, why_size) &&
           op_need(vk_moe_sum_plan_make((uint64_t)y->ne[0], (uint64_t)y->ne[1], ctx->bind_limit,
                                        vk_binding_alignment(ctx), &plan),
                   why, why_size, "the binding limit cannot hold one element");
}
