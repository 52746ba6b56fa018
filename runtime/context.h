/* Internal: an inference context (KV cache + scratch activations) and the
 * forward pass over it. */
#ifndef STRATA_CONTEXT_H
#define STRATA_CONTEXT_H

#include "model.h"

/* Tokens whose logits are computed per output matmul when every position's
 * logits are wanted; bounds the logits scratch to n_vocab x this. */
#define CONTEXT_LOGITS_CHUNK 32

struct strata_context {
    strata_model *model;
    int64_t n_ctx;
    int64_t max_batch;
    strata_dtype kv_dtype;
    int64_t n_past; /* positions already in the cache */

    backend_buffer *kv_buffer;
    strata_tensor *k_cache; /* [n_layer] of [head_dim, n_head_kv, n_ctx] */
    strata_tensor *v_cache; /* [n_layer] of [head_dim, n_head_kv, n_ctx] */

    /* Scratch activations, each sized for max_batch tokens; the forward pass
     * takes views of the first n_tokens columns. */
    backend_buffer *scratch_buffer;
    strata_tensor tokens;    /* [max_batch] I32 */
    strata_tensor positions; /* [max_batch] I32 */
    strata_tensor residual;  /* [n_embd, max_batch] */
    strata_tensor normed;    /* [n_embd, max_batch] */
    strata_tensor q;         /* [n_head * head_dim, max_batch] */
    strata_tensor k;         /* [n_head_kv * head_dim, max_batch] */
    strata_tensor v;         /* [n_head_kv * head_dim, max_batch] */
    strata_tensor attn_out;  /* [n_head * head_dim, max_batch] */
    strata_tensor proj;      /* [n_embd, max_batch]: attention / ffn output before the residual add */
    strata_tensor ffn_gate;  /* [n_ff, max_batch] */
    strata_tensor ffn_up;    /* [n_ff, max_batch] */
    strata_tensor logits;    /* [n_vocab, CONTEXT_LOGITS_CHUNK] */

    int32_t *host_positions; /* [max_batch] staging for uploads */
    float *host_logits;      /* [host_logits_rows, n_vocab] */
    int64_t host_logits_rows;
    int64_t logits_first_token; /* token index (in the last decode) of host row 0 */
    int64_t logits_row_count;   /* valid host rows after the last decode */
};

/* Runs one chunk of n_tokens (<= max_batch) at positions n_past.. through
 * every layer. When all_logits, the logits of every token are downloaded to
 * host rows [host_row, host_row + n_tokens); otherwise only the last token's,
 * to host_row. Does not advance n_past. */
strata_status forward_chunk(strata_context *ctx, const int32_t *tokens, int64_t n_tokens, bool all_logits,
                            int64_t host_row, strata_error *err);

#endif
