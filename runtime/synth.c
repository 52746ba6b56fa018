/* strata_synth: writes a GGUF model of a real shape with random weights.
 *
 * Values are drawn from the seed, each tensor's name and the row index (so a
 * tensor holds the same values whatever the type, the other tensors or the
 * number of threads), quantized by all cores a chunk of rows at a time, and
 * streamed to the writer: memory stays about 20 MB whatever the preset (an
 * expert tensor [n_in, n_out, n_expert] is n_out * n_expert rows, streamed
 * the same way). The
 * tokenizer is either a built-in byte-level BPE vocabulary or the
 * tokenizer.* keys of another GGUF file. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "quant.h"
#include "strata.h"
#include "synth.h"

enum {
    SYNTH_CHUNK_FLOATS = 1 << 22, /* values per write: 16 MB of f32 at most */
    SYNTH_MAX_THREADS = 64
};

/* --- random numbers: splitmix64 + Box-Muller ------------------------------ */

typedef struct synth_rng {
    uint64_t state;
    bool has_spare;
    double spare;
} synth_rng;

static uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]: never 0, so log() below is finite. */
static double rng_uniform(synth_rng *rng)
{
    return ((double)(splitmix64_next(&rng->state) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

static double rng_gaussian(synth_rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = false;
        return rng->spare;
    }
    double radius = sqrt(-2.0 * log(rng_uniform(rng)));
    double angle = 2.0 * M_PI * rng_uniform(rng);
    rng->spare = radius * sin(angle);
    rng->has_spare = true;
    return radius * cos(angle);
}

/* One independent stream per row: the seed mixed with the tensor name
 * (FNV-1a) and the row index, so rows can be drawn in any order, by any
 * thread, and a tensor's values do not depend on the others. */
static synth_rng rng_for_row(uint64_t seed, const char *name, int64_t row)
{
    uint64_t hash = 0xCBF29CE484222325ull;
    for (const char *p = name; *p; p++)
        hash = (hash ^ (unsigned char)*p) * 0x100000001B3ull;
    uint64_t mixed = seed ^ hash;
    synth_rng rng = {.state = splitmix64_next(&mixed) + (uint64_t)row * 0xD1B54A32D192ED03ull};
    splitmix64_next(&rng.state);
    return rng;
}

/* --- metadata ------------------------------------------------------------- */

static strata_status set_u32(gguf_writer *writer, const char *arch, const char *suffix, int64_t value,
                             strata_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_writer_set_int(writer, key, GGUF_TYPE_UINT32, value, err);
}

static strata_status set_f32(gguf_writer *writer, const char *arch, const char *suffix, double value,
                             strata_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_writer_set_float(writer, key, GGUF_TYPE_FLOAT32, value, err);
}

static strata_status write_hparams(gguf_writer *writer, const synth_plan *plan, const char *type,
                                   strata_error *err)
{
    const synth_config *c = &plan->config;
    const char *arch = synth_gguf_arch(c);
    char name[128];
    snprintf(name, sizeof name, "strata synth %s %s %s", c->arch, c->preset, type);
    bool quantized = false;
    for (int64_t i = 0; i < plan->n_tensors; i++)
        quantized |= dtype_get_traits((int)plan->tensors[i].dtype)->is_quantized;
    strata_status status;
    if ((status = gguf_writer_set_string(writer, "general.architecture", arch, err)) ||
        (status = gguf_writer_set_string(writer, "general.name", name, err)) ||
        (status = gguf_writer_set_int(writer, "general.file_type", GGUF_TYPE_UINT32, plan->file_type, err)) ||
        (quantized &&
         (status = gguf_writer_set_int(writer, "general.quantization_version", GGUF_TYPE_UINT32, 2, err))) ||
        (status = set_u32(writer, arch, "context_length", c->n_ctx_train, err)) ||
        (status = set_u32(writer, arch, "embedding_length", c->n_embd, err)) ||
        (status = set_u32(writer, arch, "block_count", c->n_layer, err)) ||
        (status = set_u32(writer, arch, "feed_forward_length", c->n_ff, err)) ||
        (status = set_u32(writer, arch, "attention.head_count", c->n_head, err)) ||
        (status = set_u32(writer, arch, "attention.head_count_kv", c->n_head_kv, err)) ||
        (status = set_f32(writer, arch, "attention.layer_norm_rms_epsilon", c->rms_eps, err)) ||
        (status = set_f32(writer, arch, "rope.freq_base", c->rope_freq_base, err)) ||
        (status = set_u32(writer, arch, "rope.dimension_count", c->n_rot ? c->n_rot : c->head_dim, err)) ||
        (status = set_u32(writer, arch, "vocab_size", c->n_vocab, err)))
        return status;
    if (c->write_head_dim &&
        ((status = set_u32(writer, arch, "attention.key_length", c->head_dim, err)) ||
         (status = set_u32(writer, arch, "attention.value_length", c->head_dim, err))))
        return status;
    if ((c->sliding_window && (status = set_u32(writer, arch, "attention.sliding_window", c->sliding_window, err))) ||
        (c->attn_softcap && (status = set_f32(writer, arch, "attn_logit_softcapping", c->attn_softcap, err))) ||
        (c->final_softcap && (status = set_f32(writer, arch, "final_logit_softcapping", c->final_softcap, err))) ||
        (c->rope_freq_base_swa && (status = set_f32(writer, arch, "rope.freq_base_swa", c->rope_freq_base_swa, err))))
        return status;
    if (c->n_expert &&
        ((status = set_u32(writer, arch, "expert_count", c->n_expert, err)) ||
         (status = set_u32(writer, arch, "expert_used_count", c->n_expert_used, err)) ||
         (c->n_ff_exp && (status = set_u32(writer, arch, "expert_feed_forward_length", c->n_ff_exp, err))) ||
         (c->n_ff_shexp &&
          (status = set_u32(writer, arch, "expert_shared_feed_forward_length", c->n_ff_shexp, err)))))
        return status;
    char key[128];
    if (c->expert_weights_norm) {
        snprintf(key, sizeof key, "%s.expert_weights_norm", arch);
        if ((status = gguf_writer_set_int(writer, key, GGUF_TYPE_BOOL, 1, err)))
            return status;
    }
    if (c->rope_linear_factor) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        if ((status = gguf_writer_set_string(writer, key, "linear", err)) ||
            (status = set_f32(writer, arch, "rope.scaling.factor", c->rope_linear_factor, err)))
            return status;
    }
    if (c->longrope_orig_ctx) {
        /* LongRoPE's attention factor for a context of n_ctx_train */
        double scale = (double)c->n_ctx_train / (double)c->longrope_orig_ctx;
        double attn_factor = scale > 1.0 ? sqrt(1.0 + log(scale) / log((double)c->longrope_orig_ctx)) : 1.0;
        if ((status = set_u32(writer, arch, "rope.scaling.original_context_length", c->longrope_orig_ctx, err)) ||
            (status = set_f32(writer, arch, "rope.scaling.attn_factor", attn_factor, err)))
            return status;
    }
    return STRATA_OK;
}

/* --- tokenizer ------------------------------------------------------------ */

/* GPT-2's printable stand-in for each byte: printable Latin-1 bytes stand for
 * themselves, the others map in order to U+0100, U+0101, ... */
static uint32_t gpt2_byte_codepoint(unsigned byte)
{
    bool printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174);
    if (printable)
        return byte;
    uint32_t n = 0;
    for (unsigned b = 0; b < byte; b++)
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174)))
            n++;
    return 256 + n;
}

static size_t utf8_encode(uint32_t codepoint, char *out)
{
    if (codepoint < 0x80) {
        out[0] = (char)codepoint;
        return 1;
    }
    out[0] = (char)(0xC0 | (codepoint >> 6)); /* every stand-in is below U+0800 */
    out[1] = (char)(0x80 | (codepoint & 0x3F));
    return 2;
}

enum { BYTE_VOCAB_SIZE = 258, TOKEN_TEXT_MAX = 40, /* "<|reserved_" + 20 digits + "|>" + NUL fits */ TOKEN_TYPE_NORMAL = 1, TOKEN_TYPE_CONTROL = 3 };

/* The built-in vocabulary: 256 byte tokens, BOS, EOS, then reserved control
 * tokens up to n_vocab. No merges: text encodes to one token per byte. */
static strata_status write_byte_vocab(gguf_writer *writer, int64_t n_vocab, strata_error *err)
{
    strata_status status = STRATA_OK;
    char *text = NULL;
    const char **tokens = NULL;
    int32_t *types = NULL;
    if (n_vocab < BYTE_VOCAB_SIZE) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "synth: vocabulary of %lld tokens is smaller than the %d "
                             "of the byte vocabulary", (long long)n_vocab, BYTE_VOCAB_SIZE);
        goto fail;
    }
    text = malloc((size_t)n_vocab * TOKEN_TEXT_MAX);
    tokens = malloc((size_t)n_vocab * sizeof *tokens);
    types = malloc((size_t)n_vocab * sizeof *types);
    if (!text || !tokens || !types) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "synth: cannot allocate a vocabulary of %lld tokens",
                             (long long)n_vocab);
        goto fail;
    }
    for (int64_t id = 0; id < n_vocab; id++) {
        char *slot = text + (size_t)id * TOKEN_TEXT_MAX;
        if (id < 256) {
            size_t len = utf8_encode(gpt2_byte_codepoint((unsigned)id), slot);
            slot[len] = '\0';
            types[id] = TOKEN_TYPE_NORMAL;
        } else {
            if (id == 256)
                snprintf(slot, TOKEN_TEXT_MAX, "<|begin_of_text|>");
            else if (id == 257)
                snprintf(slot, TOKEN_TEXT_MAX, "<|end_of_text|>");
            else
                snprintf(slot, TOKEN_TEXT_MAX, "<|reserved_%lld|>", (long long)(id - BYTE_VOCAB_SIZE));
            types[id] = TOKEN_TYPE_CONTROL;
        }
        tokens[id] = slot;
    }
    if ((status = gguf_writer_set_string(writer, "tokenizer.ggml.model", "gpt2", err)) ||
        (status = gguf_writer_set_string(writer, "tokenizer.ggml.pre", "default", err)) ||
        (status = gguf_writer_set_string_array(writer, "tokenizer.ggml.tokens", tokens, (uint64_t)n_vocab, err)) ||
        (status = gguf_writer_set_array(writer, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types,
                                        (uint64_t)n_vocab, err)) ||
        (status = gguf_writer_set_string_array(writer, "tokenizer.ggml.merges", NULL, 0, err)) ||
        (status = gguf_writer_set_int(writer, "tokenizer.ggml.bos_token_id", GGUF_TYPE_UINT32, 256, err)) ||
        (status = gguf_writer_set_int(writer, "tokenizer.ggml.eos_token_id", GGUF_TYPE_UINT32, 257, err)) ||
        (status = gguf_writer_set_int(writer, "tokenizer.ggml.add_bos_token", GGUF_TYPE_BOOL, 1, err)))
        goto fail;
fail:
    free(text);
    free(tokens);
    free(types);
    return status;
}

/* Token count of a GGUF file's tokenizer.ggml.tokens. */
static strata_status vocab_token_count(const gguf_file *vocab, int64_t *out, strata_error *err)
{
    gguf_array tokens;
    strata_status status = gguf_get_array(vocab, "tokenizer.ggml.tokens", &tokens, err);
    if (status != STRATA_OK)
        return status;
    if (tokens.count == 0 || tokens.count > (1u << 24))
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tokenizer.ggml.tokens has %llu tokens",
                           gguf_path(vocab), (unsigned long long)tokens.count);
    *out = (int64_t)tokens.count;
    return STRATA_OK;
}

static strata_status copy_vocab(gguf_writer *writer, const gguf_file *vocab, strata_error *err)
{
    for (int64_t i = 0; i < gguf_key_count(vocab); i++) {
        if (strncmp(gguf_key_name(vocab, i), "tokenizer.", 10) != 0)
            continue;
        strata_status status = gguf_writer_copy_key(writer, vocab, i, err);
        if (status != STRATA_OK)
            return status;
    }
    return STRATA_OK;
}

/* --- tensor data ---------------------------------------------------------- */

/* Llama 3.1 rope scaling: the divisor of each rotation frequency. */
static void llama3_rope_factors(const synth_config *c, float *out, int64_t n)
{
    double low_freq_wavelen = SYNTH_LLAMA3_ORIGINAL_CTX / SYNTH_LLAMA3_LOW_FREQ_FACTOR;
    double high_freq_wavelen = SYNTH_LLAMA3_ORIGINAL_CTX / SYNTH_LLAMA3_HIGH_FREQ_FACTOR;
    for (int64_t i = 0; i < n; i++) {
        double freq = pow(c->rope_freq_base, -(double)(2 * i) / (double)c->head_dim);
        double wavelen = 2.0 * M_PI / freq;
        double factor;
        if (wavelen < high_freq_wavelen) {
            factor = 1.0;
        } else if (wavelen > low_freq_wavelen) {
            factor = SYNTH_LLAMA3_ROPE_FACTOR;
        } else {
            double smooth = (SYNTH_LLAMA3_ORIGINAL_CTX / wavelen - SYNTH_LLAMA3_LOW_FREQ_FACTOR) /
                            (SYNTH_LLAMA3_HIGH_FREQ_FACTOR - SYNTH_LLAMA3_LOW_FREQ_FACTOR);
            factor = 1.0 / ((1.0 - smooth) / SYNTH_LLAMA3_ROPE_FACTOR + smooth);
        }
        out[i] = (float)factor;
    }
}

/* Converts one row of f32 values into the tensor's storage format. */
static strata_status encode_row(strata_dtype dtype, const float *src, void *dst, int64_t n, strata_error *err)
{
    switch (dtype) {
    case DTYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof *src);
        return STRATA_OK;
    case DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = f32_to_fp16(src[i]);
        return STRATA_OK;
    case DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = f32_to_bf16(src[i]);
        return STRATA_OK;
    default:
        return quant_quantize_row(dtype, src, dst, n, err);
    }
}

typedef struct synth_progress {
    const strata_synth_params *params;
    uint64_t bytes_done;
    uint64_t bytes_total;
} synth_progress;

/* Fills row row_index of tensor t. */
static void generate_row(const synth_tensor *t, const synth_config *config, uint64_t seed, int64_t row_index,
                         float *row)
{
    if (t->init == SYNTH_INIT_ROPE_FREQS) {
        llama3_rope_factors(config, row, t->ne[0]);
        return;
    }
    if (t->init == SYNTH_INIT_RAMP) {
        for (int64_t i = 0; i < t->ne[0]; i++)
            row[i] = (float)(1.0 + 3.0 * (double)i / (double)t->ne[0]);
        return;
    }
    synth_rng rng = rng_for_row(seed, t->name, row_index);
    for (int64_t i = 0; i < t->ne[0]; i++) {
        double g = rng_gaussian(&rng) * t->scale;
        row[i] = (float)(t->init == SYNTH_INIT_NEAR_ONE ? 1.0 + g : g);
    }
}

/* One thread's share of a chunk: rows [row_begin, row_end) of the tensor,
 * encoded at their place in the chunk buffer. */
typedef struct row_worker {
    const synth_tensor *tensor;
    const synth_config *config;
    uint64_t seed;
    int64_t chunk_row0;
    int64_t row_begin;
    int64_t row_end;
    size_t row_bytes;
    char *encoded;      /* the chunk's buffer (shared; each worker writes its own rows) */
    float *row;         /* this worker's scratch row (longest row of the plan) */
    strata_status status;
    strata_error err;
} row_worker;

static void *encode_rows(void *arg)
{
    row_worker *w = arg;
    w->status = STRATA_OK;
    for (int64_t r = w->row_begin; r < w->row_end; r++) {
        generate_row(w->tensor, w->config, w->seed, r, w->row);
        char *dst = w->encoded + (size_t)(r - w->chunk_row0) * w->row_bytes;
        if ((w->status = encode_row(w->tensor->dtype, w->row, dst, w->tensor->ne[0], &w->err)) != STRATA_OK)
            break;
    }
    return NULL;
}

/* Encodes rows [row0, row0 + n_rows) of t into encoded with up to n_workers
 * threads (the calling thread is one of them; a thread that cannot be
 * started leaves its rows to the caller). */
static strata_status encode_chunk(const synth_tensor *t, const synth_config *config, uint64_t seed, int64_t row0,
                                  int64_t n_rows, size_t row_bytes, char *encoded, row_worker *workers,
                                  int n_workers, strata_error *err)
{
    int n_used = n_rows < n_workers ? (int)n_rows : n_workers;
    pthread_t threads[SYNTH_MAX_THREADS];
    bool started[SYNTH_MAX_THREADS] = {false};
    for (int i = 0; i < n_used; i++) {
        row_worker *w = &workers[i];
        w->tensor = t;
        w->config = config;
        w->seed = seed;
        w->chunk_row0 = row0;
        w->row_begin = row0 + n_rows * i / n_used;
        w->row_end = row0 + n_rows * (i + 1) / n_used;
        w->row_bytes = row_bytes;
        w->encoded = encoded;
        if (i > 0)
            started[i] = pthread_create(&threads[i], NULL, encode_rows, w) == 0;
    }
    encode_rows(&workers[0]);
    for (int i = 1; i < n_used; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            encode_rows(&workers[i]);
    }
    for (int i = 0; i < n_used; i++) {
        if (workers[i].status != STRATA_OK) {
            *err = workers[i].err;
            return strata_error_prefix(err, "synth: tensor %s", t->name);
        }
    }
    return STRATA_OK;
}

/* The rows a chunk of tensor t repeats when only the first distinct_rows
 * rows are drawn (params->distinct_rows), encoded once per tensor. */
typedef struct row_pool {
    int64_t distinct_rows; /* 0: every row is drawn */
    char *encoded;         /* distinct_rows rows of the current tensor */
} row_pool;

/* Generates, encodes and writes tensor t a chunk of rows at a time (about
 * SYNTH_CHUNK_FLOATS values, at least one row); encoded holds a chunk. With
 * a row pool, the first pool->distinct_rows rows are encoded once and every
 * chunk is copied from them. */
static strata_status write_tensor_data(gguf_writer *writer, const synth_tensor *t, const synth_config *config,
                                       uint64_t seed, row_worker *workers, int n_workers, char *encoded,
                                       const row_pool *pool, synth_progress *progress, strata_error *err)
{
    size_t row_bytes = 0;
    dtype_row_bytes(t->dtype, t->ne[0], &row_bytes);
    int64_t rows_per_chunk = SYNTH_CHUNK_FLOATS / t->ne[0];
    if (rows_per_chunk < 1)
        rows_per_chunk = 1;
    const int64_t distinct = pool->distinct_rows;
    const bool repeat = distinct > 0 && synth_tensor_rows(t) > distinct;
    strata_status status;
    if (repeat &&
        (status = encode_chunk(t, config, seed, 0, distinct, row_bytes, pool->encoded, workers, n_workers, err)))
        return status;
    const int64_t n_rows_total = synth_tensor_rows(t);
    for (int64_t row0 = 0; row0 < n_rows_total; row0 += rows_per_chunk) {
        int64_t n_rows = n_rows_total - row0 < rows_per_chunk ? n_rows_total - row0 : rows_per_chunk;
        if (repeat) {
            for (int64_t r = row0; r < row0 + n_rows; r++)
                memcpy(encoded + (size_t)(r - row0) * row_bytes, pool->encoded + (size_t)(r % distinct) * row_bytes,
                       row_bytes);
        } else if ((status = encode_chunk(t, config, seed, row0, n_rows, row_bytes, encoded, workers, n_workers,
                                          err))) {
            return status;
        }
        if ((status = gguf_writer_write_tensor(writer, encoded, (size_t)n_rows * row_bytes, err)))
            return status;
        progress->bytes_done += (uint64_t)n_rows * row_bytes;
        if (progress->params->progress && progress->bytes_total > 0)
            progress->params->progress(progress->params->progress_user,
                                       (double)progress->bytes_done / (double)progress->bytes_total);
    }
    return STRATA_OK;
}

/* Bytes of the row pool: distinct_rows rows of the widest tensor that repeats
 * (0 when none does). */
static strata_status row_pool_bytes(const synth_plan *plan, int64_t distinct_rows, size_t *bytes, strata_error *err)
{
    *bytes = 0;
    if (distinct_rows <= 0)
        return STRATA_OK;
    for (int64_t i = 0; i < plan->n_tensors; i++) {
        const synth_tensor *t = &plan->tensors[i];
        size_t row_bytes = 0;
        if (synth_tensor_rows(t) <= distinct_rows || !dtype_row_bytes(t->dtype, t->ne[0], &row_bytes))
            continue;
        if (row_bytes > SIZE_MAX / (size_t)distinct_rows)
            return strata_fail(err, STRATA_INVALID_INPUT, "synth: %lld distinct rows of %zu bytes do not fit in memory",
                               (long long)distinct_rows, row_bytes);
        if (row_bytes * (size_t)distinct_rows > *bytes)
            *bytes = row_bytes * (size_t)distinct_rows;
    }
    return STRATA_OK;
}

/* Threads for encoding: the online cores, within [1, SYNTH_MAX_THREADS]. */
static int synth_thread_count(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        return 1;
    return cores > SYNTH_MAX_THREADS ? SYNTH_MAX_THREADS : (int)cores;
}

/* Largest row of the plan, in elements. */
static int64_t max_row_elements(const synth_plan *plan)
{
    int64_t longest = 0;
    for (int64_t i = 0; i < plan->n_tensors; i++)
        if (plan->tensors[i].ne[0] > longest)
            longest = plan->tensors[i].ne[0];
    return longest;
}

strata_status strata_synth(const strata_synth_params *params, strata_error *err)
{
    strata_status status = STRATA_OK;
    gguf_file *vocab = NULL;
    gguf_writer *writer = NULL;
    synth_plan plan = {0};
    row_worker *workers = NULL;
    float *rows = NULL;
    char *encoded = NULL;
    row_pool pool = {0};
    int n_workers = 1;
    if (!params || !params->preset || !params->type || !params->output_path) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "synth: preset, type and output path are required");
        goto fail;
    }
    if (params->distinct_rows < 0) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "synth: distinct rows must be 0 (all) or positive, got %lld",
                             (long long)params->distinct_rows);
        goto fail;
    }
    int64_t n_vocab_override = 0;
    if (params->vocab_path) {
        if ((status = gguf_open(params->vocab_path, &vocab, err)) ||
            (status = vocab_token_count(vocab, &n_vocab_override, err)))
            goto fail;
    }
    if ((status = synth_plan_create(params->arch, params->preset, params->type, n_vocab_override, &plan, err)))
        goto fail;

    int64_t longest_row = max_row_elements(&plan);
    size_t chunk_floats = longest_row > SYNTH_CHUNK_FLOATS ? (size_t)longest_row : SYNTH_CHUNK_FLOATS;
    n_workers = synth_thread_count();
    workers = calloc((size_t)n_workers, sizeof *workers);
    rows = malloc((size_t)n_workers * (size_t)longest_row * sizeof *rows);
    encoded = malloc(chunk_floats * sizeof(float)); /* no format takes more than 4 bytes per element */
    if (!workers || !rows || !encoded) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "synth: cannot allocate the row buffers");
        goto fail;
    }
    for (int i = 0; i < n_workers; i++)
        workers[i].row = rows + (size_t)i * (size_t)longest_row;
    size_t pool_bytes = 0;
    if ((status = row_pool_bytes(&plan, params->distinct_rows, &pool_bytes, err)))
        goto fail;
    pool.distinct_rows = params->distinct_rows;
    if (pool_bytes > 0 && !(pool.encoded = malloc(pool_bytes))) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "synth: cannot allocate %zu bytes for %lld distinct rows",
                             pool_bytes, (long long)params->distinct_rows);
        goto fail;
    }

    if ((status = gguf_writer_create(params->output_path, 3, &writer, err)) ||
        (status = write_hparams(writer, &plan, params->type, err)))
        goto fail;
    status = vocab ? copy_vocab(writer, vocab, err) : write_byte_vocab(writer, plan.config.n_vocab, err);
    if (status == STRATA_OK && vocab) /* copied from a file that changed meanwhile? */
        status = gguf_check_unchanged(vocab, err);
    if (status != STRATA_OK)
        goto fail;
    for (int64_t i = 0; i < plan.n_tensors; i++) {
        const synth_tensor *t = &plan.tensors[i];
        if ((status = gguf_writer_add_tensor(writer, t->name, t->n_dims, t->ne, t->dtype, err)))
            goto fail;
    }
    if ((status = gguf_writer_begin_data(writer, err)))
        goto fail;
    synth_progress progress = {params, 0, plan.total_bytes};
    for (int64_t i = 0; i < plan.n_tensors; i++) {
        /* header only: the matrices are holes, the vectors (norms, rope
         * factors: a few KiB) are written so the file stays a valid model */
        if (params->header_only && plan.tensors[i].n_dims >= 2) {
            if ((status = gguf_writer_skip_tensor(writer, err)))
                goto fail;
            continue;
        }
        if ((status = write_tensor_data(writer, &plan.tensors[i], &plan.config, params->seed, workers, n_workers,
                                        encoded, &pool, &progress, err)))
            goto fail;
    }
    status = gguf_writer_finish(writer, err);
fail:
    gguf_writer_free(writer); /* removes the file when finish was not reached */
    gguf_close(vocab);
    synth_plan_free(&plan);
    free(workers);
    free(rows);
    free(encoded);
    free(pool.encoded);
    return status;
}
