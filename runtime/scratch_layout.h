/* Internal: where each scratch activation of a forward step sits in one
 * device's scratch buffer. The context lays its buffers out with this, and
 * the planner sizes them with it, so the planned scratch is the allocated
 * scratch. */
#ifndef STRATA_SCRATCH_LAYOUT_H
#define STRATA_SCRATCH_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../backends/backend.h"

/* Tokens whose logits are computed per output matmul when every position's
 * logits are wanted; bounds the logits scratch to n_vocab x this. */
#define SCRATCH_LOGITS_CHUNK 32

/* The activations of one forward step, each sized for max_batch tokens. */
typedef enum scratch_slot {
    SCRATCH_TOKENS,    /* [max_batch] I32 */
    SCRATCH_POSITIONS, /* [max_batch] I32 */
    SCRATCH_RESIDUAL,  /* [n_embd, max_batch] */
    SCRATCH_NORMED,    /* [n_embd, max_batch] */
    SCRATCH_Q,         /* [n_head * head_dim, max_batch] */
    SCRATCH_K,         /* [n_head_kv * head_dim, max_batch] */
    SCRATCH_V,         /* [n_head_kv * head_dim, max_batch] */
    SCRATCH_ATTN_OUT,  /* [n_head * head_dim, max_batch] */
    SCRATCH_PROJ,      /* [n_embd, max_batch]: attention / ffn output before the residual add */
    SCRATCH_FFN_GATE,  /* [n_ff, max_batch] */
    SCRATCH_FFN_UP,    /* [n_ff, max_batch] */
    /* the mixture of experts (only with n_expert > 0; FFN_GATE and FFN_UP
     * then hold [n_ff_exp, k, max_batch] and [n_ff_shexp, max_batch] too) */
    SCRATCH_ROUTER,         /* [n_expert, max_batch]: router logits, then probabilities */
    SCRATCH_EXPERT_IDS,     /* [k, max_batch] I32 */
    SCRATCH_EXPERT_WEIGHTS, /* [k, max_batch] */
    SCRATCH_EXPERT_OUT,     /* [n_embd, k, max_batch]: each chosen expert's output */
    SCRATCH_LOGITS,    /* [n_vocab, SCRATCH_LOGITS_CHUNK], only on the output's device */
    SCRATCH_SLOT_COUNT
} scratch_slot;

typedef struct scratch_dims {
    int64_t n_vocab, n_embd, n_head, n_head_kv, head_dim, n_ff;
    int64_t n_expert, n_expert_used, n_ff_exp; /* 0: a dense FFN */
    int64_t n_ff_shexp; /* the shared expert's width; 0: none */
} scratch_dims;

typedef struct scratch_layout {
    strata_tensor slots[SCRATCH_SLOT_COUNT]; /* offsets set, buffer NULL */
    bool present[SCRATCH_SLOT_COUNT];
    size_t total_bytes;
} scratch_layout;

/* Lays the slots out one after the other, each at a multiple of alignment
 * (0 = 64). Returns false when a size overflows. */
bool scratch_layout_build(const scratch_dims *dims, int64_t max_batch, size_t alignment, bool with_logits,
                          scratch_layout *out);

/* x rounded up to a multiple of alignment (0 = 64); UINT64_MAX on overflow. */
uint64_t scratch_align_up(uint64_t x, size_t alignment);

#endif
