/* libstrata: the public C API.
 *
 * Load a GGUF model onto a device, turn text into tokens and back, run the
 * forward pass over a KV cache, sample, write synthetic models. Every function
 * that can fail returns a strata_status and fills a strata_error; nothing here
 * exits the process. Objects are created by *_create/_load and freed by the
 * matching *_free, which accepts NULL. */
#ifndef STRATA_H
#define STRATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "status.h"

/* --- models ---------------------------------------------------------------- */

typedef enum strata_arch {
    STRATA_ARCH_LLAMA, /* LLaMA 1/2/3, Mistral */
    STRATA_ARCH_QWEN2, /* + QKV bias */
    STRATA_ARCH_QWEN3, /* + Q/K RMS norm */
    STRATA_ARCH_OLMO2, /* norms after attention and FFN only, Q/K norm over the whole projection */
    STRATA_ARCH_GEMMA2, /* pre- and post-norms, GeGLU, softcaps, sliding window on alternate layers */
    STRATA_ARCH_GEMMA3, /* gemma2 without softcaps, + Q/K norm, 5 local : 1 global layers */
    STRATA_ARCH_PHI3,  /* fused QKV and gate/up, partial rotary, LongRoPE, sliding window */
    STRATA_ARCH_QWEN3MOE, /* qwen3 with a mixture of experts in every layer */
    STRATA_ARCH_QWEN2MOE, /* qwen2 with experts, unrenormalized, and a gated shared expert in every layer */
} strata_arch;

/* Which layers attend through the sliding window (when there is one). */
typedef enum strata_swa_layers {
    STRATA_SWA_ALL,     /* every layer (phi3) */
    STRATA_SWA_PERIOD,  /* all but the last of every swa_period layers (gemma2: 2, gemma3: 6) */
} strata_swa_layers;

/* Architecture hyper-parameters read from GGUF metadata (architecture
 * differences are data: the forward pass reads these flags). */
typedef struct strata_hparams {
    strata_arch arch;
    char arch_name[32];        /* general.architecture */
    char model_name[128];      /* general.name, may be empty */
    int64_t n_vocab;
    int64_t n_embd;            /* hidden size */
    int64_t n_layer;
    int64_t n_head;
    int64_t n_head_kv;         /* GQA: n_head % n_head_kv == 0 */
    int64_t head_dim;          /* per head, of Q/K and of V */
    int64_t n_ff;              /* feed-forward width */
    int64_t n_ctx_train;       /* context length from metadata */
    float rms_eps;
    int64_t n_rot;             /* rotated dims per head */
    bool rope_neox;            /* pair (i, i+n_rot/2) instead of (2i, 2i+1) */
    float rope_freq_base;
    float rope_freq_scale;     /* 1 / linear scaling factor */
    bool has_rope_freq_factors; /* llama3-style scaling (rope_freqs tensor or derived) */
    bool has_qkv_bias;         /* qwen2 */
    bool has_qk_norm;          /* qwen3 */
    bool tied_output;          /* output projection shares token_embd */
    /* The layout of a block, as data for the one forward pass. */
    bool has_pre_norms;        /* attn_norm / ffn_norm before attention and FFN (all but olmo2) */
    bool has_post_norms;       /* post_attention_norm / post_ffw_norm on their outputs (gemma, olmo2) */
    bool qk_norm_full;         /* the Q/K norm spans the whole projection (olmo2), not one head */
    bool fused_qkv;            /* attn_qkv holds Q, K, V rows (phi3) */
    bool fused_gate_up;        /* ffn_up holds the gate rows, then the up rows (phi3) */
    bool ffn_gelu;             /* GeGLU (tanh gelu of the gate) instead of SwiGLU */
    float embd_scale;          /* embeddings are multiplied by this (gemma: sqrt(n_embd)); 1 otherwise */
    float attn_scale;          /* query . key multiplier (1 / sqrt(head_dim) unless the file says) */
    float attn_softcap;        /* scores = c * tanh(scores / c); 0: none */
    float final_softcap;       /* the same on the output logits; 0: none */
    int64_t sliding_window;    /* attend to the last this many positions; 0: no window */
    strata_swa_layers swa_layers;
    int64_t swa_period;        /* with STRATA_SWA_PERIOD */
    float rope_freq_base_swa;  /* rope base and scale of the sliding layers (gemma3: 10000, unscaled); */
    float rope_freq_scale_swa; /* the same as the global ones otherwise */
    bool has_rope_longrope;    /* rope_factors_short/long: long ones when the context exceeds
                                  rope_orig_ctx (phi3 LongRoPE) */
    int64_t rope_orig_ctx;     /* rope.scaling.original_context_length; 0 when absent */
    float rope_attn_factor;    /* rotated dims scaled by this (LongRoPE); 1 otherwise */
    /* Mixture of experts (Mixtral as llama, qwen3moe, qwen2moe): every
     * layer's FFN is n_expert experts of width n_ff_exp, n_expert_used of
     * them chosen per token by the router (softmax, top-k, the k weights
     * renormalized when expert_weights_norm). n_expert 0: a dense FFN of
     * width n_ff. With n_ff_shexp > 0 (qwen2moe) a shared expert, a SwiGLU
     * FFN of that width that every token goes through, adds its output
     * times sigmoid(ffn_gate_inp_shexp . input) to the experts' sum. */
    int64_t n_expert;
    int64_t n_expert_used;
    int64_t n_ff_exp;
    bool expert_weights_norm;
    int64_t n_ff_shexp;
    int file_type;             /* general.file_type, -1 when absent */
    uint64_t n_params;         /* elements of all weights */
    uint64_t n_params_active;  /* the weights one token multiplies by: n_params less its unchosen experts */
    uint64_t weight_bytes;     /* bytes of all weights in the file */
} strata_hparams;

typedef struct strata_model strata_model;

/* --- devices and placement -------------------------------------------------- */

/* Devices are named as `strata devices` prints them: "cpu", "cuda0", "cuda1",
 * "vulkan0", ... (backend name and index among the backend's devices). */
#define STRATA_DEVICE_NAME_MAX 32
#define STRATA_MAX_DEVICES 16
#define STRATA_MAX_OVERRIDES 64

/* A device to plan for without it being present (`strata plan
 * --device-spec cuda0:24G:1008GB/s`). Rates of 0 are unknown. */
typedef struct strata_device_spec {
    char name[STRATA_DEVICE_NAME_MAX];
    uint64_t memory_bytes;    /* the card's memory; the budget is this minus the margin */
    double bandwidth;         /* bytes/s */
    double matmul_flops;      /* FLOP/s */
    double link_bandwidth;    /* host <-> device bytes/s (PCIe) */
} strata_device_spec;

/* A cap on what the plan may use on one device (`--vram cuda0=24G`). */
typedef struct strata_device_cap {
    char device[STRATA_DEVICE_NAME_MAX];
    uint64_t bytes;
} strata_device_cap;

/* Tensors whose name matches pattern (PCRE2, searched anywhere in the name,
 * like llama.cpp's -ot) go to device. */
typedef struct strata_tensor_override {
    const char *pattern;
    char device[STRATA_DEVICE_NAME_MAX];
} strata_tensor_override;

/* What the user fixed about the placement; the planner fits the rest. */
typedef struct strata_placement_params {
    /* Comma-separated device names in order (the first holds the output);
     * NULL or "": every GPU found (CUDA before Vulkan for the same card,
     * software Vulkan devices left out), then the CPU. */
    const char *devices;
    bool gpu_layers_set;      /* false: as many layers on GPUs as fit (fewer when the GPUs do not compute
                               * some weight formats and the detours would cost more) */
    int64_t gpu_layers;       /* layers on non-CPU devices when gpu_layers_set */
    const double *tensor_split; /* proportions of the GPU layers per non-CPU device, in order; NULL: none */
    int n_tensor_split;
    const strata_device_cap *caps;
    int n_caps;
    const strata_tensor_override *overrides;
    int n_overrides;
    /* Mixture-of-experts models: the experts' weights of the first
     * n_cpu_moe layers stay in host RAM, computed by the CPU, the rest of
     * those layers where the plan puts them (--n-cpu-moe N); cpu_moe: of
     * every layer (--cpu-moe). Neither: the planner decides, keeping
     * experts in host RAM when that is predicted faster than whole layers
     * on the CPU. An n_cpu_moe above the model's layer count is an error. */
    bool cpu_moe;
    bool n_cpu_moe_set;
    int64_t n_cpu_moe;
    /* The contexts the plan makes room for: n_ctx > 0 is fixed; 0 means
     * n_ctx_default (0: the training context, at most 4096), shrunk to the
     * largest that fits when it does not. */
    int64_t n_ctx;
    int64_t n_ctx_default;
    int max_batch;            /* 0 = 512 */
    strata_dtype kv_dtype;    /* DTYPE_F16 or DTYPE_F32 */
    /* Contexts of n_ctx positions the plan makes room for at once, each with
     * its own KV cache and scratch (a server's sequences); 0 or 1: one. */
    int n_sequences;
    /* Hypothetical devices: when n_specs > 0 nothing is opened and these are
     * the device table (strata_plan_file only). */
    const strata_device_spec *specs;
    int n_specs;
    /* Measure each present device's read bandwidth and matmul rate for the
     * predictions (about a second per device); false uses the spec's rates
     * or none (then no prediction is made for that device). */
    bool measure;
} strata_placement_params;

strata_placement_params strata_placement_default_params(void);

typedef struct strata_plan_device {
    char name[STRATA_DEVICE_NAME_MAX]; /* "cuda0" */
    char description[128];    /* the device's own name, or "specified" */
    uint64_t total_bytes;     /* memory of the device */
    uint64_t budget_bytes;    /* what the plan may use */
    uint64_t weights_bytes;
    uint64_t kv_bytes;
    uint64_t scratch_bytes;   /* activations + the backend's workspace */
    uint64_t workspace_bytes; /* of scratch_bytes, what the backend may allocate by itself */
    uint64_t planned_bytes;   /* weights + kv + scratch: an upper bound of what is allocated */
    int64_t first_layer;      /* layers [first_layer, first_layer + n_layers) run here */
    int64_t n_layers;
    bool holds_output;
    bool holds_embedding;
    double read_bandwidth;    /* bytes/s used for the prediction; 0: unknown */
    double matmul_flops;      /* FLOP/s; 0: unknown */
    double link_bandwidth;    /* host <-> device bytes/s; 0: unknown or the CPU */
    double decode_bytes;      /* bytes this device reads per decoded token */
} strata_plan_device;

typedef struct strata_plan_tensor {
    char *name;
    int device;               /* index into devices; -1: not used by the forward pass */
    uint64_t bytes;
    bool overridden;          /* placed by an override */
} strata_plan_tensor;

typedef struct strata_plan {
    bool fits;
    char shortfall[512];      /* when !fits: what is short, where and by how much */
    char note[768];           /* e.g. the context was shrunk to fit; weights kept on the host */
    int n_devices;
    strata_plan_device devices[STRATA_MAX_DEVICES];
    int64_t n_layer;
    int *layer_device;        /* [n_layer] */
    int64_t n_tensors;
    strata_plan_tensor *tensors;
    int output_device;
    int embedding_device;
    int64_t n_ctx;
    int64_t max_batch;
    strata_dtype kv_dtype;
    int n_handoffs;           /* device boundaries a decoded token crosses */
    /* Layers [0, n_cpu_moe) keep their experts' weights in host RAM,
     * computed by the CPU (as asked, or chosen by the planner when
     * n_cpu_moe_chosen); 0: every layer's experts are where the layer is. */
    int64_t n_cpu_moe;
    bool n_cpu_moe_chosen;
    /* The alternative the choice was weighed against: the fastest plan
     * that keeps every layer's experts with the layer (predicted decode
     * tokens/s, 0: none fits or unknown, and its GPU layers). */
    double whole_layers_tg_tokens_per_s;
    int64_t whole_layers_gpu_layers;
    double tg_tokens_per_s;   /* predicted; 0 when a device's rate is unknown */
    double pp_tokens_per_s;
    char tg_bound[192];       /* what bounds it, in words */
    char pp_bound[192];
} strata_plan;

/* Plans the model at path for the devices and choices of params, reading
 * only the file's header (and, with params->measure, measuring devices).
 * STRATA_OK with (*out)->fits false when nothing fits; the plan says why.
 * Free with strata_plan_free. */
strata_status strata_plan_file(const char *path, const strata_placement_params *params, strata_plan **out,
                               strata_error *err);
void strata_plan_free(strata_plan *plan);

typedef struct strata_model_params {
    const char *path;
    /* Shorthands, used when placement.devices is NULL or empty: the one
     * device "<backend><device>" ("cuda" and 1 = cuda1; "cpu"). backend
     * NULL: the placement default (every GPU, then the CPU). */
    const char *backend;
    int device;               /* index among the backend's devices */
    /* Zero-initialized, this is: the default devices, as many GPU layers as
     * fit, room for one context of the default size and batch with an F32
     * cache (an upper bound of an F16 one). */
    strata_placement_params placement;
    int n_threads;            /* CPU threads, 0 = all cores */
    const char *force_pre;    /* tokenizer pre-tokenizer override, NULL = from the file */
    /* Optional (NULL: silent): called from strata_model_load, on its thread,
     * as the weights reach the device, with the fraction placed so far
     * (non-decreasing, in [0, 1]), and exactly once with 1.0 when all are in
     * place. progress_user is passed through untouched. */
    void (*progress)(void *user, double fraction);
    void *progress_user;
    /* false (the default): the file is memory-mapped, and on the CPU the
     * weights are computed from the mapping, so the model depends on the
     * file while it is loaded (see "model files that change" below). true:
     * the file is read into memory at load, and the model never reads it
     * again; costs host memory the size of the file. */
    bool no_mmap;
} strata_model_params;

/* Opens and validates the file, reads the hyper-parameters, binds every
 * tensor by name (a missing or mis-shaped tensor is an error naming it),
 * places the weights on the device and loads the tokenizer when the file has
 * one. Blocks until the weights are in place. Fails with STRATA_IO when the
 * file changed while it was being loaded. */
strata_status strata_model_load(const strata_model_params *params, strata_model **out, strata_error *err);
void strata_model_free(strata_model *model);
const strata_hparams *strata_model_hparams(const strata_model *model);
/* The model's tokenizer, or NULL when the file has no tokenizer keys. */
const struct strata_tokenizer *strata_model_tokenizer(const strata_model *model);
/* Names of the devices the model runs on, with their own names
 * ("cuda0: NVIDIA ..., cpu: ..."). */
const char *strata_model_device_name(const strata_model *model);
/* The placement the model was loaded with (owned by the model). */
const strata_plan *strata_model_plan(const strata_model *model);
/* Bytes held on device i of the plan now and at most since the load
 * (weights, KV caches, scratch and the backend's workspace, as counted). */
void strata_model_device_usage(const strata_model *model, int device, uint64_t *allocated_bytes,
                               uint64_t *peak_bytes);

/* --- model files that change while in use ------------------------------------
 *
 * A model loaded with no_mmap false on a device that computes from host
 * memory (the CPU) reads its weights from a memory map of the file for as
 * long as it lives. Replacing the file (a new file renamed over the path)
 * does not matter; changing it in place does:
 *  - written over (same size or not): strata_decode notices the file's new
 *    size or modification time after the step and fails with STRATA_IO, with
 *    a message naming the file; the logits of that step are not to be used.
 *  - truncated: reading a page past the new end raises SIGBUS, which ends the
 *    process unless the caller installed the fault guard below. With the
 *    guard, the read sees zeros and strata_decode fails with STRATA_IO.
 * A model loaded with no_mmap true, or placed on a GPU, does not depend on
 * the file after strata_model_load returns. */

/* Installs a process-wide SIGBUS handler (sigaction, SA_SIGINFO) that turns
 * a fault in the mapping of a model file strata opened into zeros and a
 * mark on that file, so the next check (strata_decode, the end of
 * strata_model_load) fails with STRATA_IO instead of the process dying. Any
 * other SIGBUS is passed to the handler that was installed before, or gets
 * the default action. The library never installs it on its own, since
 * signal handlers belong to the program: call it once, early, from the
 * program (later calls do nothing). Fails with STRATA_IO if sigaction does. */
strata_status strata_install_fault_guard(strata_error *err);

/* Checks that the file at path is a model strata can run, the same way
 * strata_model_load does before it opens any device: hyper-parameters in
 * range, every tensor the forward pass reads present with its shape and
 * dtype, rope factors finite and positive, the tokenizer loadable and
 * within the embedding. With scan_weights, every value of every tensor is
 * dequantized and must be finite (a full read of the file: not done at
 * load). STRATA_OK or the first problem, naming the file. */
strata_status strata_model_check(const char *path, bool scan_weights, strata_error *err);

/* Reads only the hyper-parameters (no tensors bound, nothing placed). */
strata_status strata_read_hparams(const char *path, strata_hparams *out, strata_error *err);

/* Bytes of KV cache for n_ctx positions with cache elements of kv_dtype. */
uint64_t strata_kv_cache_bytes(const strata_hparams *hparams, int64_t n_ctx, strata_dtype kv_dtype);

/* Bytes of weights one decode step reads (every tensor of the forward pass,
 * one row of the token embedding), for the bandwidth roofline. */
uint64_t strata_model_decode_weight_bytes(const strata_model *model);

/* Measures the host memory read bandwidth with n_threads threads (0 = all
 * cores) over a buffer much larger than the caches, in bytes per second.
 * STRATA_HOST_BANDWIDTH_METHOD says how, for reports. */
#define STRATA_HOST_BANDWIDTH_METHOD "host read, best of 20 passes over 512 MiB"
strata_status strata_measure_host_bandwidth(int n_threads, double *bytes_per_second, strata_error *err);

/* Measures the memory bandwidth of the device the model runs on, now, in
 * bytes per second: the device's own measurement where its backend has one
 * (CUDA: a device-to-device copy), else the host read bandwidth with
 * n_threads threads (0 = all cores). *method (may be NULL) receives a short
 * description of what was measured. Blocks for about a second. */
strata_status strata_model_measure_bandwidth(const strata_model *model, int n_threads, double *bytes_per_second,
                                             const char **method, strata_error *err);

/* Measures the matrix-multiply rate of the model's device for the prefill
 * roofline, in floating point operations per second. STRATA_UNSUPPORTED when
 * the backend has no such measurement (the CPU today). */
strata_status strata_model_measure_gemm_peak(const strata_model *model, double *flops, strata_error *err);

/* --- inference contexts ------------------------------------------------------ */

typedef struct strata_context strata_context;

typedef struct strata_context_params {
    int64_t n_ctx;            /* 0 = what the model's placement made room for */
    int max_batch;            /* most tokens per forward step, 0 = as the placement planned */
    strata_dtype kv_dtype;    /* DTYPE_F16 (the default) or DTYPE_F32 */
} strata_context_params;

strata_context_params strata_context_default_params(void);

/* A KV cache and scratch memory for one sequence, on the devices of the
 * model's placement (each layer's cache where the layer runs). Everything
 * is counted against the devices' budgets: a context larger than the plan
 * made room for fails with STRATA_OUT_OF_MEMORY naming the device, before
 * the device is touched. */
strata_status strata_context_create(strata_model *model, const strata_context_params *params,
                                    strata_context **out, strata_error *err);
void strata_context_free(strata_context *ctx);

/* Runs the forward pass over n_tokens tokens at the positions that follow
 * the ones already in the cache (any n_tokens: split into max_batch chunks),
 * appending their keys and values to the cache. Logits are kept for every
 * token when all_logits, else only for the last. Blocks until done. Fails
 * with STRATA_INVALID_INPUT for a token outside the vocabulary or when the
 * context would overflow n_ctx (the cache is unchanged then), and with
 * STRATA_IO when the model's file changed under a model that computes from
 * it (see "model files that change while in use"). */
strata_status strata_decode(strata_context *ctx, const int32_t *tokens, int64_t n_tokens, bool all_logits,
                            strata_error *err);
/* Logits (n_vocab floats) of token i of the last strata_decode call; with
 * all_logits false only the last token (i = n_tokens - 1) is valid. */
const float *strata_get_logits(const strata_context *ctx, int64_t i);
int64_t strata_context_position(const strata_context *ctx); /* tokens in the cache */
int64_t strata_context_size(const strata_context *ctx);     /* n_ctx */
void strata_context_reset(strata_context *ctx);             /* empties the cache */
/* Keeps the first n_positions positions of the cache and forgets the rest:
 * the next strata_decode continues at position n_positions (a conversation
 * whose re-rendered prompt leaves the cache after a common prefix). 0
 * empties it like strata_context_reset. The logits of the last decode are
 * dropped. Nothing is computed, freed or waited for. Fails with
 * STRATA_INVALID_INPUT, the cache unchanged, when n_positions is negative
 * or past strata_context_position. */
strata_status strata_context_truncate(strata_context *ctx, int64_t n_positions, strata_error *err);

/* --- tokenizer ---------------------------------------------------------------- */

typedef struct strata_tokenizer strata_tokenizer;

/* Loads only the tokenizer of a GGUF file (no weights). */
strata_status strata_tokenizer_load(const char *path, const char *force_pre, strata_tokenizer **out,
                                    strata_error *err);
void strata_tokenizer_free(strata_tokenizer *tokenizer);

int64_t strata_vocab_size(const strata_tokenizer *tokenizer);
int32_t strata_token_bos(const strata_tokenizer *tokenizer); /* -1 when none */
int32_t strata_token_eos(const strata_tokenizer *tokenizer); /* -1 when none */
bool strata_token_is_eog(const strata_tokenizer *tokenizer, int32_t token); /* end of generation */
/* Whether the file asks for BOS to be added before a prompt. */
bool strata_tokenizer_adds_bos(const strata_tokenizer *tokenizer);

/* The longest text strata_tokenize takes at once: 64 MiB. */
#define STRATA_TOKENIZE_MAX_BYTES ((size_t)64 << 20)

/* Encodes len bytes of text. add_bos prepends BOS (when the vocab has one);
 * parse_special recognizes control tokens written in the text (e.g.
 * "<|im_start|>"), otherwise they are plain text. *out_ids is malloc'ed and
 * owned by the caller. Invalid UTF-8 is rejected with STRATA_INVALID_INPUT
 * naming the byte offset, and so is a text longer than
 * STRATA_TOKENIZE_MAX_BYTES (tokenize it in parts).
 * Memory: the ids (4 bytes each, at most one per byte of text) plus a
 * working set of pieces of about 64 KiB, however long the text. A stretch
 * with no place where a cut leaves the result unchanged (one character
 * repeated, say) is worked on whole, at about 35 bytes per byte of it. */
strata_status strata_tokenize(const strata_tokenizer *tokenizer, const char *text, size_t len, bool add_bos,
                              bool parse_special, int32_t **out_ids, size_t *out_count, strata_error *err);

/* The bytes of one token as they appear in text (space marker and byte
 * tokens decoded; special tokens rendered only when render_special).
 * Writes at most buf_size bytes and returns the full length, or -1 for an
 * id outside the vocabulary (it has no bytes; the detokenizer below shows
 * such an id as "<id>"). The result may be a partial UTF-8 character. */
int64_t strata_token_to_bytes(const strata_tokenizer *tokenizer, int32_t token, bool render_special, char *buf,
                              size_t buf_size);

/* Streaming detokenizer: holds back a multi-byte UTF-8 character split across
 * tokens until it is complete, so a printer never shows broken characters. */
typedef struct strata_detokenizer {
    const strata_tokenizer *tokenizer;
    bool render_special;
    bool at_start;          /* for the leading-space rule of SentencePiece */
    char pending[8];
    size_t pending_len;
} strata_detokenizer;

void strata_detokenizer_init(strata_detokenizer *detok, const strata_tokenizer *tokenizer, bool render_special);
/* Room for what one strata_detokenizer_push can write (NUL included). */
size_t strata_detokenizer_out_size(const strata_tokenizer *tokenizer);
/* Appends token; writes the bytes now complete into out (NUL-terminated,
 * out_size >= 1) and returns their count, or -1 for a negative id (or
 * out_size 0, or no memory for a token of more than 1 KiB). An id at or past
 * strata_vocab_size() -- a model's embedding may have more rows than its
 * tokenizer has tokens, and such a model can generate those ids -- is
 * written as "<id>" (for example "<300>"), after any bytes held back (which
 * "<" cannot complete, so they come out as U+FFFD). out_size of
 * strata_detokenizer_out_size() always suffices for one token (256 + 8 for
 * vocabularies whose tokens are short); a smaller out gets what fits, cut at
 * a character boundary. */
int64_t strata_detokenizer_push(strata_detokenizer *detok, int32_t token, char *out, size_t out_size);
/* Flushes what is held back (an incomplete character at the end of the
 * stream is written as U+FFFD). Returns the byte count. */
int64_t strata_detokenizer_flush(strata_detokenizer *detok, char *out, size_t out_size);

/* --- sampling ----------------------------------------------------------------- */

typedef struct strata_sampler_params {
    float temperature;        /* <= 0: greedy (argmax) */
    int32_t top_k;            /* <= 0: off */
    float top_p;              /* >= 1: off */
    float min_p;              /* <= 0: off */
    float repeat_penalty;     /* 1: off; divides positive logits, multiplies negative ones */
    int32_t repeat_last_n;    /* how many recent tokens the penalties look at */
    float presence_penalty;   /* 0: off */
    float frequency_penalty;  /* 0: off */
    uint64_t seed;
} strata_sampler_params;

strata_sampler_params strata_sampler_default_params(void);

typedef struct strata_sampler strata_sampler;

strata_status strata_sampler_create(const strata_sampler_params *params, int64_t n_vocab, strata_sampler **out,
                                    strata_error *err);
void strata_sampler_free(strata_sampler *sampler);
/* Picks the next token from logits (n_vocab floats, not modified). The same
 * seed, history and logits give the same token. */
int32_t strata_sampler_sample(strata_sampler *sampler, const float *logits);
/* Records a token (prompt or generated) for the penalties. */
void strata_sampler_accept(strata_sampler *sampler, int32_t token);

/* --- synthetic models ---------------------------------------------------------- */

typedef struct strata_synth_params {
    const char *arch;         /* "llama", "qwen2", "qwen3" */
    const char *preset;       /* "tiny", "llama2-7b", "llama3-8b", "llama3-70b", "qwen2.5-7b", "qwen3-8b" */
    const char *type;         /* a dtype name ("q8_0") or a mix ("q4_k_m") */
    uint64_t seed;
    const char *vocab_path;   /* copy tokenizer keys from this GGUF; NULL = built-in byte-level vocab */
    const char *output_path;
    /* Called now and then with the fraction written (may be NULL). */
    void (*progress)(void *user, double fraction);
    void *progress_user;
    /* 0: every row of every matrix is drawn. N > 0: each matrix draws its
     * first N rows and repeats them (row r holds row r % N), which takes a
     * fraction of the time; for speed benchmarks, where the values do not
     * matter. The rows drawn are the ones a full synth writes. */
    int64_t distinct_rows;
    /* Writes the matrices as holes (a sparse file: they read as zeros), only
     * the metadata, tensor table and vectors (norms, rope factors) for real:
     * a valid model of a big shape in a moment, for `strata plan` and
     * `strata info`, not for running with meaning. */
    bool header_only;
} strata_synth_params;

/* Writes a model with random weights of a real shape, streaming tensor by
 * tensor so a 70B preset never sits in memory. */
strata_status strata_synth(const strata_synth_params *params, strata_error *err);
/* Names of the presets / arch pairs known to strata_synth, NULL-terminated. */
const char *const *strata_synth_preset_names(void);

#endif
