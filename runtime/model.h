/* Internal: the loaded model (weights bound by name, placed on a device) and
 * the pieces the forward pass reads. */
#ifndef STRATA_MODEL_H
#define STRATA_MODEL_H

#include "../backends/backend.h"
#include "gguf.h"
#include "strata.h"

/* The per-frequency rope divisors a file may hold, copied to every device
 * that runs layers (model_check.c). */
typedef enum rope_factor_kind {
    ROPE_FACTORS_FREQS, /* rope_freqs.weight (llama3) */
    ROPE_FACTORS_SHORT, /* rope_factors_short.weight (LongRoPE, up to the original context) */
    ROPE_FACTORS_LONG,  /* rope_factors_long.weight (beyond it) */
    ROPE_FACTOR_KINDS
} rope_factor_kind;
extern const char *const rope_factor_names[ROPE_FACTOR_KINDS];
/* The kind of tensor name, or -1 when it holds no rope factors. */
int rope_factor_of(const char *name);
/* Whether the forward pass of hp reads factors of kind which. */
bool rope_factor_used(const strata_hparams *hp, int which);

/* A weight and the device (index into strata_model.devices) that holds it;
 * the op that reads it runs there. device is -1 for an absent optional
 * tensor. */
typedef struct model_weight {
    strata_tensor tensor;
    int device;
} model_weight;

/* Weights of one transformer block. Optional tensors have device -1
 * (checked through the hparams flags). */
typedef struct layer_weights {
    model_weight attn_norm;   /* [n_embd] F32 */
    model_weight attn_q;      /* [n_embd, n_head * head_dim] */
    model_weight attn_k;      /* [n_embd, n_head_kv * head_dim] */
    model_weight attn_v;      /* [n_embd, n_head_kv * head_dim] */
    model_weight attn_qkv;    /* [n_embd, q + 2 kv] (phi3); attn_q/k/v are views of its rows */
    model_weight attn_output; /* [n_head * head_dim, n_embd] */
    model_weight attn_q_bias; /* [n_head * head_dim] F32, qwen2 */
    model_weight attn_k_bias; /* [n_head_kv * head_dim] F32, qwen2 */
    model_weight attn_v_bias; /* [n_head_kv * head_dim] F32, qwen2 */
    model_weight attn_q_norm; /* [head_dim] F32, qwen3 (olmo2: [n_head * head_dim]) */
    model_weight attn_k_norm; /* [head_dim] F32, qwen3 (olmo2: [n_head_kv * head_dim]) */
    model_weight attn_post_norm; /* [n_embd] F32, gemma, olmo2 */
    model_weight ffn_norm;    /* [n_embd] F32 */
    model_weight ffn_gate;    /* [n_embd, n_ff] */
    model_weight ffn_up;      /* [n_embd, n_ff] */
    model_weight ffn_down;    /* [n_ff, n_embd] */
    model_weight ffn_gate_up; /* [n_embd, 2 n_ff] (phi3); ffn_gate/up are views of its rows */
    model_weight ffn_post_norm; /* [n_embd] F32, gemma, olmo2 */
    model_weight ffn_gate_inp;  /* [n_embd, n_expert]: the router (mixture of experts) */
    model_weight ffn_gate_exps; /* [n_embd, n_ff_exp, n_expert] */
    model_weight ffn_up_exps;   /* [n_embd, n_ff_exp, n_expert] */
    model_weight ffn_down_exps; /* [n_ff_exp, n_embd, n_expert] */
    model_weight ffn_gate_inp_shexp; /* [n_embd, 1]: the shared expert's gate (qwen2moe) */
    model_weight ffn_gate_shexp;     /* [n_embd, n_ff_shexp] */
    model_weight ffn_up_shexp;       /* [n_embd, n_ff_shexp] */
    model_weight ffn_down_shexp;     /* [n_ff_shexp, n_embd] */
    int device;               /* where the layer's KV cache is and attention runs */
} layer_weights;

/* One device of the placement, with what is counted against its budget. */
typedef struct model_device {
    char name[STRATA_DEVICE_NAME_MAX]; /* "cuda0" */
    backend_device device;
    device_info info;
    uint64_t budget_bytes;      /* everything counted here stays within this */
    uint64_t workspace_bytes;   /* of the budget, kept for the backend's own workspace */
    uint64_t allocated_bytes;   /* weights, KV caches and scratch held now */
    uint64_t peak_bytes;        /* the most allocated_bytes has been */
    backend_buffer **weight_buffers; /* the weights placed here (a CPU wraps the mapping) */
    int n_weight_buffers;
    strata_tensor rope_factors[ROPE_FACTOR_KINDS]; /* this device's copies (rope_freqs, LongRoPE short and long),
                                      when the device runs layers and the model has them */
    bool runs_layers;
} model_device;

struct strata_model {
    strata_hparams hparams;
    gguf_file *file;
    int n_devices;
    model_device devices[STRATA_MAX_DEVICES];
    strata_plan plan;
    char device_name[STRATA_MAX_DEVICES * 96];
    bool weights_in_file;     /* a device computes from the file's mapping: every
                                 decode checks the file (gguf_check_unchanged) */

    model_weight token_embd;  /* [n_embd, n_vocab] */
    model_weight output_norm; /* [n_embd] F32 */
    model_weight output;      /* [n_embd, n_vocab]; the same tensor as token_embd when tied */
    layer_weights *layers;    /* [n_layer] */

    strata_tokenizer *tokenizer; /* NULL when the file has none */
    uint64_t decode_weight_bytes;
};

/* Reads and checks the hyper-parameters of an open file (no tensors bound). */
strata_status hparams_read(const gguf_file *file, strata_hparams *out, strata_error *err);

/* --- what is counted against each device's budget (model_memory.c) --- */

/* Allocates bytes on device d for what (a phrase for messages: "the KV cache
 * of layers 0-15"), counted; an allocation that would pass the budget fails
 * before the device is touched, naming the device, what was asked and what
 * was left. */
strata_status model_device_alloc(strata_model *model, int d, size_t bytes, const char *what,
                                 backend_buffer **out, strata_error *err);
/* Frees a buffer of model_device_alloc (NULL is fine). */
void model_device_free(strata_model *model, int d, backend_buffer *buffer, size_t bytes);
/* Counts bytes that live on device d without an allocation (a CPU computing
 * from the file mapping), with the same budget check. */
strata_status model_device_count(strata_model *model, int d, uint64_t bytes, const char *what, strata_error *err);

#endif
