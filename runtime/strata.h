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
} strata_arch;

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
    int file_type;             /* general.file_type, -1 when absent */
    uint64_t n_params;         /* elements of all weights */
    uint64_t weight_bytes;     /* bytes of all weights in the file */
} strata_hparams;

typedef struct strata_model strata_model;

typedef struct strata_model_params {
    const char *path;
    const char *backend;      /* "cpu" (default when NULL), "cuda", "vulkan" */
    int device;               /* index among the backend's devices */
    int n_threads;            /* CPU threads, 0 = all cores */
    const char *force_pre;    /* tokenizer pre-tokenizer override, NULL = from the file */
    /* Optional (NULL: silent): called from strata_model_load, on its thread,
     * as the weights reach the device, with the fraction placed so far
     * (non-decreasing, in [0, 1]), and exactly once with 1.0 when all are in
     * place. progress_user is passed through untouched. */
    void (*progress)(void *user, double fraction);
    void *progress_user;
} strata_model_params;

/* Opens and validates the file, reads the hyper-parameters, binds every
 * tensor by name (a missing or mis-shaped tensor is an error naming it),
 * places the weights on the device and loads the tokenizer when the file has
 * one. Blocks until the weights are in place. */
strata_status strata_model_load(const strata_model_params *params, strata_model **out, strata_error *err);
void strata_model_free(strata_model *model);
const strata_hparams *strata_model_hparams(const strata_model *model);
/* The model's tokenizer, or NULL when the file has no tokenizer keys. */
const struct strata_tokenizer *strata_model_tokenizer(const strata_model *model);
/* Name of the device the model runs on ("cpu: ..."). */
const char *strata_model_device_name(const strata_model *model);

/* Reads only the hyper-parameters (no tensors bound, nothing placed). */
strata_status strata_read_hparams(const char *path, strata_hparams *out, strata_error *err);

/* Bytes of KV cache for n_ctx positions with cache elements of kv_dtype. */
uint64_t strata_kv_cache_bytes(const strata_hparams *hparams, int64_t n_ctx, strata_dtype kv_dtype);

/* Bytes of weights one decode step reads (every tensor of the forward pass,
 * one row of the token embedding), for the bandwidth roofline. */
uint64_t strata_model_decode_weight_bytes(const strata_model *model);

/* Measures the host memory read bandwidth with n_threads threads (0 = all
 * cores) over a buffer much larger than the caches, in bytes per second. */
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
    int64_t n_ctx;            /* 0 = the model's n_ctx_train */
    int max_batch;            /* most tokens per strata_decode call, 0 = 512 */
    strata_dtype kv_dtype;    /* DTYPE_F16 (the default) or DTYPE_F32 */
} strata_context_params;

strata_context_params strata_context_default_params(void);

/* A KV cache and scratch memory for one sequence on the model's device. */
strata_status strata_context_create(strata_model *model, const strata_context_params *params,
                                    strata_context **out, strata_error *err);
void strata_context_free(strata_context *ctx);

/* Runs the forward pass over n_tokens tokens at the positions that follow
 * the ones already in the cache (any n_tokens: split into max_batch chunks),
 * appending their keys and values to the cache. Logits are kept for every
 * token when all_logits, else only for the last. Blocks until done. Fails
 * with STRATA_INVALID_INPUT for a token outside the vocabulary or when the
 * context would overflow n_ctx (the cache is unchanged then). */
strata_status strata_decode(strata_context *ctx, const int32_t *tokens, int64_t n_tokens, bool all_logits,
                            strata_error *err);
/* Logits (n_vocab floats) of token i of the last strata_decode call; with
 * all_logits false only the last token (i = n_tokens - 1) is valid. */
const float *strata_get_logits(const strata_context *ctx, int64_t i);
int64_t strata_context_position(const strata_context *ctx); /* tokens in the cache */
int64_t strata_context_size(const strata_context *ctx);     /* n_ctx */
void strata_context_reset(strata_context *ctx);             /* empties the cache */

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
} strata_synth_params;

/* Writes a model with random weights of a real shape, streaming tensor by
 * tensor so a 70B preset never sits in memory. */
strata_status strata_synth(const strata_synth_params *params, strata_error *err);
/* Names of the presets / arch pairs known to strata_synth, NULL-terminated. */
const char *const *strata_synth_preset_names(void);

#endif
