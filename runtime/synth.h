/* Synthetic models: the presets (real shapes), the quantization mixes and the
 * tensor plan that strata_synth writes. Private to runtime/ (and tests).
 *
 * A plan lists every tensor of a model with its name, shape, storage dtype,
 * how its values are drawn and its byte size, without touching any data, so a
 * 70B preset's table can be inspected (and its file size predicted) cheaply. */
#ifndef STRATA_SYNTH_H
#define STRATA_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "dtype.h"
#include "status.h"

/* Shape and metadata of one preset for one architecture. */
typedef struct synth_config {
    const char *arch;          /* "llama", "qwen2", "qwen3", "olmo2", "gemma2", "gemma3", "phi3",
                                * "mixtral", "qwen3moe", "qwen2moe" */
    const char *gguf_arch;     /* general.architecture when it differs from arch (mixtral: "llama"); NULL: arch */
    const char *preset;        /* "tiny", "llama3-8b", ... */
    int64_t n_vocab;
    int64_t n_embd;
    int64_t n_layer;
    int64_t n_head;
    int64_t n_head_kv;
    int64_t head_dim;          /* per head, of Q/K and of V */
    int64_t n_ff;
    int64_t n_ctx_train;
    double rope_freq_base;
    double rms_eps;
    bool write_head_dim;       /* write attention.key_length / value_length */
    bool tied_output;          /* no output.weight: logits use token_embd */
    bool has_qkv_bias;         /* qwen2: attn_q/k/v.bias */
    bool has_qk_norm;          /* qwen3: attn_q_norm / attn_k_norm */
    bool llama3_rope;          /* rope_freqs.weight with llama3 scaling factors */
    /* the families beyond llama (what the file needs; the runtime knows the rest by the name) */
    bool no_pre_norms;         /* olmo2: no attn_norm / ffn_norm */
    bool post_norms;           /* gemma, olmo2: post_attention_norm, post_ffw_norm */
    bool qk_norm_full;         /* olmo2: attn_q_norm / attn_k_norm over the whole projection */
    bool fused;                /* phi3: attn_qkv, and ffn_up holding gate and up */
    int64_t n_rot;             /* rope.dimension_count; 0: head_dim */
    int64_t sliding_window;    /* attention.sliding_window; 0: not written */
    double attn_softcap;       /* attn_logit_softcapping; 0: not written */
    double final_softcap;      /* final_logit_softcapping; 0: not written */
    double rope_freq_base_swa; /* rope.freq_base_swa; 0: not written */
    double rope_linear_factor; /* rope.scaling.type linear with this factor; 0: none */
    int64_t longrope_orig_ctx; /* rope_factors_short/long and rope.scaling.original_context_length; 0: none */
    /* mixture of experts: every layer's FFN is n_expert experts, n_expert_used per token */
    int64_t n_expert;          /* expert_count; 0: a dense FFN */
    int64_t n_expert_used;     /* expert_used_count */
    int64_t n_ff_exp;          /* expert_feed_forward_length (qwen3moe); 0: not written, the experts are n_ff wide */
    bool expert_weights_norm;  /* write expert_weights_norm = true (the top-k weights renormalized) */
    int64_t n_ff_shexp;        /* expert_shared_feed_forward_length: a gated shared expert of this
                                * width in every layer (qwen2moe); 0: none */
} synth_config;

/* general.architecture of a config (mixtral is GGUF's "llama" with experts). */
const char *synth_gguf_arch(const synth_config *config);

/* Llama 3.1 rope scaling constants (what rope_freqs.weight is computed from). */
#define SYNTH_LLAMA3_ROPE_FACTOR 8.0
#define SYNTH_LLAMA3_LOW_FREQ_FACTOR 1.0
#define SYNTH_LLAMA3_HIGH_FREQ_FACTOR 4.0
#define SYNTH_LLAMA3_ORIGINAL_CTX 8192.0

/* How a tensor's values are drawn (all from the seed and the tensor name). */
typedef enum synth_init {
    SYNTH_INIT_GAUSSIAN,   /* N(0, scale^2) */
    SYNTH_INIT_NEAR_ONE,   /* 1 + N(0, scale^2): norm weights */
    SYNTH_INIT_ROPE_FREQS, /* llama3 rope scaling factors (not random) */
    SYNTH_INIT_RAMP        /* 1 + 3 i / n: LongRoPE's long factors, growing with the wavelength */
} synth_init;

typedef struct synth_tensor {
    char name[64];
    int n_dims;           /* 1, 2, or 3 (the experts' [n_in, n_out, n_expert]) */
    int64_t ne[3];        /* ne[0]: row length (elements), ne[1]: rows, ne[2]: experts (1 unless 3-D) */
    strata_dtype dtype;   /* storage type after the mix and fallbacks */
    synth_init init;
    double scale;
    uint64_t bytes;       /* bytes of the tensor data */
} synth_tensor;

/* Rows of a tensor: ne[1] * ne[2] (each expert's rows one after the other). */
static inline int64_t synth_tensor_rows(const synth_tensor *t)
{
    return t->ne[1] * t->ne[2];
}

typedef struct synth_plan {
    synth_config config;
    int file_type;        /* general.file_type (llama.cpp's LLAMA_FTYPE number) */
    synth_tensor *tensors;
    int64_t n_tensors;
    uint64_t total_bytes; /* sum of tensor bytes (the file adds metadata and padding) */
} synth_plan;

/* A format rows of ne0 elements can be stored in: dtype, or llama.cpp's
 * fallback when ne0 is not a multiple of its block (synth_presets.c). */
strata_dtype synth_fallback_dtype(strata_dtype dtype, int64_t ne0);

/* Finds the preset for arch (NULL = the preset's own arch). Returns
 * STRATA_INVALID_INPUT naming the known presets when there is none. */
strata_status synth_find_config(const char *arch, const char *preset, synth_config *out, strata_error *err);

/* Builds the tensor table of arch/preset quantized as type (a dtype name or a
 * mix, see synth_presets.c). n_vocab_override > 0 replaces the preset's
 * vocabulary size (for --vocab). On success *out owns an array freed by
 * synth_plan_free. */
strata_status synth_plan_create(const char *arch, const char *preset, const char *type, int64_t n_vocab_override,
                                synth_plan *out, strata_error *err);
void synth_plan_free(synth_plan *plan);

/* Names accepted as type besides plain dtype names, NULL-terminated. */
const char *const *synth_mix_names(void);

#endif
