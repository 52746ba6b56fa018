/* The scratch layout shared by the context (which allocates it) and the
 * planner (which counts it). */
#include "scratch_layout.h"

#include <string.h>

uint64_t scratch_align_up(uint64_t x, size_t alignment)
{
    uint64_t a = alignment ? alignment : 64;
    if (x > UINT64_MAX - (a - 1))
        return UINT64_MAX;
    return (x + a - 1) / a * a;
}

bool scratch_layout_build(const scratch_dims *dims, int64_t max_batch, size_t alignment, bool with_logits,
                          scratch_layout *out)
{
    memset(out, 0, sizeof *out);
    bool moe = dims->n_expert > 0;
    int64_t k = dims->n_expert_used, ffn = dims->n_ff;
    if (moe && dims->n_ff_exp * k > ffn)
        ffn = dims->n_ff_exp * k;
    if (moe && dims->n_ff_shexp > ffn)
        ffn = dims->n_ff_shexp;
    struct {
        scratch_slot slot;
        strata_dtype dtype;
        int64_t ne0, ne1;
    } const table[SCRATCH_SLOT_COUNT] = {
        {SCRATCH_TOKENS, DTYPE_I32, max_batch, 1},
        {SCRATCH_POSITIONS, DTYPE_I32, max_batch, 1},
        {SCRATCH_RESIDUAL, DTYPE_F32, dims->n_embd, max_batch},
        {SCRATCH_NORMED, DTYPE_F32, dims->n_embd, max_batch},
        {SCRATCH_Q, DTYPE_F32, dims->n_head * dims->head_dim, max_batch},
        {SCRATCH_K, DTYPE_F32, dims->n_head_kv * dims->head_dim, max_batch},
        {SCRATCH_V, DTYPE_F32, dims->n_head_kv * dims->head_dim, max_batch},
        {SCRATCH_ATTN_OUT, DTYPE_F32, dims->n_head * dims->head_dim, max_batch},
        {SCRATCH_PROJ, DTYPE_F32, dims->n_embd, max_batch},
        {SCRATCH_FFN_GATE, DTYPE_F32, ffn, max_batch},
        {SCRATCH_FFN_UP, DTYPE_F32, ffn, max_batch},
        {SCRATCH_ROUTER, DTYPE_F32, dims->n_expert, max_batch},
        {SCRATCH_EXPERT_IDS, DTYPE_I32, k, max_batch},
        {SCRATCH_EXPERT_WEIGHTS, DTYPE_F32, k, max_batch},
        {SCRATCH_EXPERT_OUT, DTYPE_F32, dims->n_embd * k, max_batch},
        {SCRATCH_LOGITS, DTYPE_F32, dims->n_vocab, SCRATCH_LOGITS_CHUNK},
    };
    uint64_t next_offset = 0;
    for (int i = 0; i < SCRATCH_SLOT_COUNT; i++) {
        if (table[i].slot == SCRATCH_LOGITS && !with_logits)
            continue;
        bool moe_slot = table[i].slot >= SCRATCH_ROUTER && table[i].slot <= SCRATCH_EXPERT_OUT;
        if (moe_slot && !moe)
            continue;
        strata_tensor *tensor = &out->slots[table[i].slot];
        if (!tensor_init_contiguous(tensor, table[i].dtype, table[i].ne0, table[i].ne1, 1, 1))
            return false;
        uint64_t offset = scratch_align_up(next_offset, alignment);
        uint64_t bytes = tensor_byte_size(tensor);
        if (offset == UINT64_MAX || bytes > SIZE_MAX - offset)
            return false;
        tensor->offset = (size_t)offset;
        out->present[table[i].slot] = true;
        next_offset = offset + bytes;
    }
    out->total_bytes = (size_t)next_offset;
    return true;
}
