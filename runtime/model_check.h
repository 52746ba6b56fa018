/* Internal: what a model file must hold for the forward pass, checked once
 * for `strata info` and `strata run` alike (strata_model_check), before any
 * device is opened. */
#ifndef STRATA_MODEL_CHECK_H
#define STRATA_MODEL_CHECK_H

#include "model.h"

/* A dimension of an expected tensor, from the hyper-parameters. */
typedef enum tensor_dim {
    DIM_ONE,
    DIM_EMBD,      /* n_embd */
    DIM_VOCAB,     /* n_vocab */
    DIM_FF,        /* n_ff */
    DIM_Q,         /* n_head * head_dim */
    DIM_KV,        /* n_head_kv * head_dim */
    DIM_HEAD,      /* head_dim */
    DIM_ROT_HALF,  /* n_rot / 2 */
    DIM_QKV,       /* (n_head + 2 * n_head_kv) * head_dim: fused Q, K, V */
    DIM_FF2,       /* 2 * n_ff: fused gate and up */
    DIM_Q_NORM,    /* head_dim, or n_head * head_dim when the Q/K norm spans the projection */
    DIM_K_NORM,    /* head_dim, or n_head_kv * head_dim likewise */
    DIM_EXPERTS,   /* n_expert */
    DIM_FF_EXP,    /* n_ff_exp: one expert's feed-forward width */
    DIM_FF_SHEXP,  /* n_ff_shexp: the shared expert's feed-forward width */
} tensor_dim;

/* When a layer tensor exists. */
typedef enum tensor_when {
    WHEN_ALWAYS,
    WHEN_QKV_BIAS,
    WHEN_QK_NORM,
    WHEN_PRE_NORMS,
    WHEN_POST_NORMS,
    WHEN_SPLIT_QKV,     /* attn_q, attn_k, attn_v */
    WHEN_FUSED_QKV,     /* attn_qkv */
    WHEN_SPLIT_GATE_UP, /* ffn_gate, ffn_up (a dense FFN) */
    WHEN_FUSED_GATE_UP, /* ffn_up of 2 * n_ff rows */
    WHEN_DENSE_FFN,     /* ffn_down of a dense FFN */
    WHEN_EXPERTS,       /* the router and the experts' 3-D weights */
    WHEN_SHARED_EXPERT, /* the shared expert and its gate (qwen2moe): ordinary 2-D weights */
} tensor_when;

/* One tensor of a transformer block: the name after "blk.N.", where it goes
 * in layer_weights, its shape, and whether a matmul reads it (else it is an
 * F32 vector); ne2 is DIM_EXPERTS for the experts' weights, else DIM_ONE. */
typedef struct layer_tensor_spec {
    const char *suffix;
    size_t field_offset;
    tensor_dim ne0, ne1;
    bool matrix;
    tensor_when when;
    tensor_dim ne2;
} layer_tensor_spec;

extern const layer_tensor_spec layer_tensor_specs[];
extern const size_t layer_tensor_spec_count;

int64_t tensor_dim_value(const strata_hparams *hp, tensor_dim dim);
bool layer_tensor_present(const strata_hparams *hp, const layer_tensor_spec *spec);

/* Checks that tensor name exists (when required) with shape [ne0, ne1] and,
 * for vectors, dtype F32; *out gets its description or NULL when absent. */
strata_status model_check_tensor(const gguf_file *file, const char *name, int64_t ne0, int64_t ne1, bool required,
                                 bool matrix, const gguf_tensor_info **out, strata_error *err);
/* The same for a tensor of shape [ne0, ne1, ne2] (the experts' weights). */
strata_status model_check_tensor_3d(const gguf_file *file, const char *name, int64_t ne0, int64_t ne1, int64_t ne2,
                                    bool required, bool matrix, const gguf_tensor_info **out, strata_error *err);

/* Every tensor the forward pass of hp reads, present and shaped right, and
 * rope_freqs' factors finite and positive. */
strata_status model_check_tensors(const gguf_file *file, const strata_hparams *hp, strata_error *err);

/* The tokenizer fits the embedding (no token id without a row). */
strata_status model_check_vocabulary(const gguf_file *file, const strata_hparams *hp,
                                     const strata_tokenizer *tokenizer, strata_error *err);

#endif
