/* Push constants of the non-weight shaders, member for member the GLSL
 * `Push` blocks of shaders/<name>.comp (std430: 4-byte scalars in order).
 * Offsets and strides are in elements of the binding's type. */
#ifndef STRATA_VULKAN_PUSH_H
#define STRATA_VULKAN_PUSH_H

#include <stdint.h>

/* Local sizes (specialization constant 0); row shaders need a power of two. */
#define VK_ELEMENTWISE_LOCAL_SIZE 256u
#define VK_ROW_LOCAL_SIZE 256u
#define VK_ATTENTION_LOCAL_SIZE 64u /* with 8 dims per thread: head_dim <= 512 */
#define VK_MOE_LOCAL_SIZE 64u /* topk, moe_weights, moe_group */

typedef struct vk_elementwise_push { /* shaders/elementwise.comp */
    uint32_t n, b_period, a_offset, b_offset, d_offset;
    float value;
} vk_elementwise_push;

typedef struct vk_rms_norm_push { /* shaders/rms_norm.comp */
    uint32_t n, rows, x_offset, w_offset, d_offset, has_weight;
    float eps;
} vk_rms_norm_push;

typedef struct vk_row_push { /* shaders/softmax.comp, shaders/argmax.comp */
    uint32_t n, rows, x_offset, d_offset;
} vk_row_push;

typedef struct vk_rope_push { /* shaders/rope.comp */
    uint32_t head_dim, n_heads, n_tok, n_rot, neox, has_factors;
    uint32_t x_offset, pos_offset, factor_offset, d_offset;
    float attn_factor;
} vk_rope_push;

typedef struct vk_kv_store_push { /* shaders/kv_store.comp */
    uint32_t row_size, n_tok, n_ctx, src_offset, pos_offset;
    uint32_t cache_offset;         /* element of cache row row_begin in its binding */
    uint32_t row_begin, row_count; /* the cache rows bound: positions outside are another dispatch's */
} vk_kv_store_push;

/* vk_attention_push.flags and vk_attention_combine_push.flags */
#define VK_ATTENTION_MERGE 1u      /* merge into dst and the state (an earlier pass wrote them) */
#define VK_ATTENTION_KEEP_STATE 2u /* write the running (max, sum) for a later pass */

typedef struct vk_attention_push { /* shaders/attention.comp */
    uint32_t head_dim, n_heads, n_tok, group, n_kv;
    int32_t window;
    float scale, softcap;
    uint32_t q_offset, k_offset, v_offset, pos_offset, d_offset;
    uint32_t k_row_stride, k_head_stride, v_row_stride, v_head_stride;
    uint32_t n_splits, rows_per_split, part_offset;
    uint32_t kv_begin, kv_end; /* the cache rows of this pass; k_offset and v_offset are row kv_begin's */
    uint32_t state_offset, flags;
} vk_attention_push;

typedef struct vk_attention_combine_push { /* shaders/attention_combine.comp */
    uint32_t head_dim, n_pairs, n_splits, part_offset, d_offset;
    uint32_t state_offset, flags;
} vk_attention_combine_push;

typedef struct vk_copy_push { /* shaders/copy.comp */
    uint32_t ne[4];
    uint32_t src_nb[4], dst_nb[4];
    uint32_t src_offset, dst_offset;
    uint32_t src_type, dst_type; /* 0 f32, 1 f16, 2 bf16 */
} vk_copy_push;

typedef struct vk_topk_push { /* shaders/topk.comp */
    uint32_t n, k, columns, x_offset, d_offset;
} vk_topk_push;

typedef struct vk_moe_weights_push { /* shaders/moe_weights.comp */
    uint32_t n_expert, k, columns, normalize, p_offset, ids_offset, d_offset;
} vk_moe_weights_push;

typedef struct vk_moe_sum_push { /* shaders/moe_sum.comp */
    uint32_t n, slots, tokens, y_stride, k, d_stride;
    uint32_t y_offset, w_offset, d_offset, accumulate, sigmoid;
} vk_moe_sum_push;

typedef struct vk_moe_group_push { /* shaders/moe_group.comp */
    uint32_t n_expert, n_pairs, stride, ids_offset;
} vk_moe_group_push;

_Static_assert(sizeof(vk_attention_push) == 96, "vk_attention_push must match shaders/attention.comp");
_Static_assert(sizeof(vk_copy_push) == 64, "vk_copy_push must match shaders/copy.comp");

/* Pure: how many KV splits one attention runs with. Decode (few query/head
 * pairs) over a long cache leaves most of a GPU idle with one workgroup per
 * pair, so the rows are split until about 256 workgroups run, with about 32
 * rows per split and always more than 16 (the partials cost head_dim + 2
 * floats each). Chosen by reasoning, not tuned on a GPU. *rows_per_split
 * receives the split length. Checked by tests/test_vulkan_attention_splits.c. */
static inline uint32_t vk_attention_splits(uint32_t n_pairs, uint32_t n_rows, uint32_t *rows_per_split)
{
    const uint32_t target_groups = 256, min_rows = 32;
    uint32_t splits = 1;
    if (n_pairs > 0 && n_pairs < target_groups && n_rows > min_rows) {
        uint32_t wanted = (target_groups + n_pairs - 1) / n_pairs;
        uint32_t most = (n_rows + min_rows - 1) / min_rows;
        splits = wanted < most ? wanted : most;
    }
    *rows_per_split = splits > 1 ? (n_rows + splits - 1) / splits : (n_rows ? n_rows : 1);
    return splits;
}

#endif
