/* Internal: the loaded model (weights bound by name, placed on a device) and
 * the pieces the forward pass reads. */
#ifndef STRATA_MODEL_H
#define STRATA_MODEL_H

#include "../backends/backend.h"
#include "gguf.h"
#include "strata.h"

/* Weights of one transformer block. Optional tensors have present == false
 * (checked through the hparams flags, never through NULL data). */
typedef struct layer_weights {
    strata_tensor attn_norm;   /* [n_embd] F32 */
    strata_tensor attn_q;      /* [n_embd, n_head * head_dim] */
    strata_tensor attn_k;      /* [n_embd, n_head_kv * head_dim] */
    strata_tensor attn_v;      /* [n_embd, n_head_kv * head_dim] */
    strata_tensor attn_output; /* [n_head * head_dim, n_embd] */
    strata_tensor attn_q_bias; /* [n_head * head_dim] F32, qwen2 */
    strata_tensor attn_k_bias; /* [n_head_kv * head_dim] F32, qwen2 */
    strata_tensor attn_v_bias; /* [n_head_kv * head_dim] F32, qwen2 */
    strata_tensor attn_q_norm; /* [head_dim] F32, qwen3 */
    strata_tensor attn_k_norm; /* [head_dim] F32, qwen3 */
    strata_tensor ffn_norm;    /* [n_embd] F32 */
    strata_tensor ffn_gate;    /* [n_embd, n_ff] */
    strata_tensor ffn_up;      /* [n_embd, n_ff] */
    strata_tensor ffn_down;    /* [n_ff, n_embd] */
} layer_weights;

struct strata_model {
    strata_hparams hparams;
    gguf_file *file;
    backend_device device;
    device_info device_info;
    char device_name[160];
    backend_buffer *weight_buffer; /* over the mapping (CPU) or a device copy */
    bool weights_in_file;          /* weight_buffer wraps the file's mapping: every
                                      decode checks the file (gguf_check_unchanged) */

    strata_tensor token_embd;  /* [n_embd, n_vocab] */
    strata_tensor output_norm; /* [n_embd] F32 */
    strata_tensor output;      /* [n_embd, n_vocab]; aliases token_embd when tied */
    strata_tensor rope_freqs;  /* [n_rot / 2] F32, when hparams.has_rope_freq_factors */
    layer_weights *layers;     /* [n_layer] */

    strata_tokenizer *tokenizer; /* NULL when the file has none */
    uint64_t decode_weight_bytes;
};

/* Reads and checks the hyper-parameters of an open file (no tensors bound). */
strata_status hparams_read(const gguf_file *file, strata_hparams *out, strata_error *err);

#endif
