/* How the mixture-of-experts ops cut their work so that every binding stays
 * within the device's binding limit (see vulkan_split.h for the binding
 * slack). Pure arithmetic, shared by the checks (vulkan_check.c), the ops
 * (vulkan_ops_moe.c), the workspace bound (vulkan_device.c) and
 * tests/test_vulkan_split_plan.c. */
#ifndef STRATA_VULKAN_MOE_PLAN_H
#define STRATA_VULKAN_MOE_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "../backend.h"
#include "vulkan_shader_params.h"
#include "vulkan_split.h"

/* The expert table of one token pass of OP_MATMUL_ID (shaders/moe_group.comp:
 * a count per expert, then a list of up to `tokens` pairs per expert) is at
 * most this large: token passes are cut so that it is, which keeps the
 * workspace bound independent of the expert count. */
#define VK_MOE_TABLE_MAX_BYTES (256u << 10)
/* moe_group.comp walks every pair of a pass in one invocation; lavapipe
 * cuts an invocation's loops after VK_LLVMPIPE_LOOP_ITERATIONS, so a pass
 * holds at most this many pairs. */
#define VK_MOE_MAX_PAIRS_PER_PASS 8192u

/* Pure: bytes of the expert table for n_expert experts and tokens tokens. */
static inline uint64_t vk_moe_table_bytes(uint64_t n_expert, uint64_t tokens)
{
    return 4ull * n_expert * (1ull + tokens);
}

typedef struct vk_matmul_id_dims {
    uint64_t n_in, n_out, n_expert, k, k_x, n_tok;
    uint64_t row_bytes;            /* bytes of one weight row */
    uint64_t max_range, alignment; /* the binding limit and offset alignment */
} vk_matmul_id_dims;

/* Pure: the dimensions of an OP_MATMUL_ID that passed its contract. */
static inline vk_matmul_id_dims vk_matmul_id_dims_of(const backend_op *op, uint64_t max_range, uint64_t alignment)
{
    const strata_tensor *experts = op->src[0], *x = op->src[1], *ids = op->src[2];
    return (vk_matmul_id_dims){.n_in = (uint64_t)experts->ne[0], .n_out = (uint64_t)experts->ne[1],
                               .n_expert = (uint64_t)experts->ne[2], .k = (uint64_t)ids->ne[0],
                               .k_x = (uint64_t)x->ne[1], .n_tok = (uint64_t)ids->ne[1],
                               .row_bytes = experts->nb[1], .max_range = max_range, .alignment = alignment};
}

/* OP_MATMUL_ID runs in token passes: the ids, x and dst columns of a pass
 * and its expert table fit one binding each; per pass, output rows in
 * ranges of rows_per_dispatch (one expert's rows of a range, and the pass's
 * dst rows of it, fit a binding), and per range as many whole experts as
 * fit one binding. */
typedef struct vk_matmul_id_plan {
    uint32_t tokens_per_pass;
    uint32_t rows_per_dispatch;
} vk_matmul_id_plan;

/* Pure: the plan of an OP_MATMUL_ID; false when not even one token, one
 * weight row or the table of one token fits. */
static inline bool vk_matmul_id_plan_make(const vk_matmul_id_dims *d, vk_matmul_id_plan *out)
{
    if (d->n_in == 0 || d->n_out == 0 || d->n_expert == 0 || d->k == 0 || d->k > d->n_expert ||
        d->k > VK_MOE_MAX_PAIRS_PER_PASS)
        return false;
    uint32_t weight_rows = vk_rows_per_binding(d->row_bytes, d->max_range, d->alignment);
    uint32_t x_tokens = vk_rows_per_binding(4ull * d->n_in * d->k_x, d->max_range, d->alignment);
    uint32_t ids_tokens = vk_rows_per_binding(4ull * d->k, d->max_range, d->alignment);
    uint32_t dst_tokens = vk_rows_per_binding(4ull * d->n_out * d->k, d->max_range, d->alignment);
    /* the table is bound from the workspace's offset 0 */
    uint64_t table_room = d->max_range > vk_binding_slack(0) ? d->max_range - vk_binding_slack(0) : 0;
    if (table_room > VK_MOE_TABLE_MAX_BYTES)
        table_room = VK_MOE_TABLE_MAX_BYTES;
    uint64_t table_tokens = table_room / (4ull * d->n_expert);
    table_tokens = table_tokens > 0 ? table_tokens - 1 : 0;
    /* z holds (expert, group of VK_MATMUL_VECTOR_TOKENS pairs) for every expert */
    uint64_t z_tokens = (uint64_t)VK_MATMUL_VECTOR_TOKENS * (VK_MAX_GROUPS_PER_DIM / d->n_expert);
    uint64_t tokens = d->n_tok ? d->n_tok : 1;
    uint64_t caps[] = {x_tokens, ids_tokens, dst_tokens ? dst_tokens : 1, table_tokens, z_tokens,
                       VK_MOE_MAX_PAIRS_PER_PASS / d->k};
    for (unsigned i = 0; i < sizeof caps / sizeof caps[0]; i++)
        tokens = caps[i] < tokens ? caps[i] : tokens;
    if (weight_rows == 0 || tokens == 0)
        return false;
    /* dst rows of a range: the pass's other columns plus the range's rows fit */
    uint64_t other_columns = 4ull * d->n_out * (d->k * tokens - 1);
    uint32_t dst_rows = other_columns < d->max_range
                            ? vk_strided_rows_per_binding(4, 4, d->max_range - other_columns, d->alignment)
                            : 0;
    uint32_t rows = vk_min_u32(weight_rows, dst_rows);
    if (rows == 0)
        return false;
    out->tokens_per_pass = (uint32_t)tokens;
    out->rows_per_dispatch = d->n_out < rows ? (uint32_t)d->n_out : rows;
    return true;
}

/* Pure: how many whole experts one weight binding holds when each
 * contributes `rows` rows of row_bytes and experts are expert_bytes apart
 * (at least 1 when the rows fit), capped so that z stays within Vulkan's
 * guarantee for lists of list_stride pairs. */
static inline uint32_t vk_matmul_id_experts_per_dispatch(uint64_t expert_bytes, uint64_t rows, uint64_t row_bytes,
                                                         uint32_t list_stride, uint64_t max_range,
                                                         uint64_t alignment)
{
    uint32_t fit = vk_strided_rows_per_binding(expert_bytes, rows * row_bytes, max_range, alignment);
    uint32_t z_cap = VK_MAX_GROUPS_PER_DIM / vk_div_ceil(list_stride ? list_stride : 1, VK_MATMUL_VECTOR_TOKENS);
    return vk_min_u32(fit, z_cap);
}

/* OP_MOE_SUM (dst [n, n_tok] from y [n, k, n_tok] and weights [k, n_tok]) runs
 * over tokens, slots and elements: a dispatch sums slots of a range into
 * elements of a range for tokens of a range. Whole tokens when one fits a
 * binding; else one token at a time, all its slots over the elements that
 * fit, or (when k rows do not fit at all) slots in groups added to dst. */
typedef struct vk_moe_sum_plan {
    uint32_t tokens, slots, elements;
} vk_moe_sum_plan;

/* Pure: false when not even one element fits. */
static inline bool vk_moe_sum_plan_make(uint64_t n, uint64_t k, uint64_t max_range, uint64_t alignment,
                                        vk_moe_sum_plan *out)
{
    uint32_t whole = vk_min_u32(vk_rows_per_binding(4ull * n * k, max_range, alignment),
                                vk_min_u32(vk_rows_per_binding(4ull * n, max_range, alignment),
                                           vk_rows_per_binding(4ull * k, max_range, alignment)));
    if (whole > 0) {
        *out = (vk_moe_sum_plan){.tokens = whole, .slots = (uint32_t)k, .elements = (uint32_t)n};
        return true;
    }
    uint64_t slack = vk_binding_slack(alignment);
    uint64_t room = max_range > slack ? (max_range - slack) / 4 : 0; /* floats one binding spans */
    if (room == 0 || vk_rows_per_binding(4ull * k, max_range, alignment) == 0)
        return false;
    if ((k - 1) * n < room) { /* every slot, a range of elements */
        uint64_t elements = room - (k - 1) * n;
        *out = (vk_moe_sum_plan){.tokens = 1, .slots = (uint32_t)k, .elements = (uint32_t)(elements < n ? elements : n)};
    } else if (n <= room) { /* whole rows, slots in groups */
        *out = (vk_moe_sum_plan){.tokens = 1, .slots = (uint32_t)((room - n) / n + 1), .elements = (uint32_t)n};
    } else { /* one slot's row is cut */
        *out = (vk_moe_sum_plan){.tokens = 1, .slots = 1, .elements = (uint32_t)room};
    }
    return true;
}

#endif
