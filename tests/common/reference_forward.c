/* Reference forward pass in double precision (see reference_forward.h).
 *
 * Weight matrices are kept as GGUF lays them out: a tensor of ne = [n_in,
 * n_out] is n_out rows of n_in values, and y = W x means y[r] = sum_i
 * W[r][i] * x[i]. Tokens are processed one at a time against a growing K/V
 * history, like llama2.c; a full sequence gives the logits of every position. */
#include "reference_forward.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "quant.h"

typedef struct reference_layer {
    double *attn_norm;            /* [n_embd], or NULL (olmo2 norms only after the blocks) */
    double *wq, *wk, *wv, *wo;    /* [q_dim][n_embd], [kv_dim][n_embd] x2, [n_embd][q_dim] */
    double *bq, *bk, *bv;         /* [q_dim], [kv_dim] x2, or NULL (qwen2 has them) */
    double *q_norm, *k_norm;      /* [head_dim] or NULL (qwen3, gemma3 have them; olmo2's span q_dim, kv_dim) */
    double *ffn_norm;             /* [n_embd], or NULL (olmo2) */
    double *w_gate, *w_up;        /* [n_ff][n_embd] */
    double *w_down;               /* [n_embd][n_ff] */
    double *post_attn_norm;       /* [n_embd] or NULL: gemma, olmo2 normalize the block outputs */
    double *post_ffn_norm;        /* [n_embd] or NULL */
    double *qkv;                  /* phi3: [q_dim + 2 kv_dim][n_embd], owning what wq, wk, wv point into */
    double *gate_up;              /* phi3: [2 n_ff][n_embd], owning what w_gate, w_up point into */
    double *router;               /* experts: [n_expert][n_embd], or NULL (a dense FFN) */
    double *gate_exps, *up_exps;  /* [n_expert][n_ff_exp][n_embd] */
    double *down_exps;            /* [n_expert][n_embd][n_ff_exp] */
    double *shexp_gate_inp;       /* qwen2moe: [n_embd], the shared expert's gate, or NULL */
    double *shexp_gate, *shexp_up; /* [n_ff_shexp][n_embd] */
    double *shexp_down;           /* [n_embd][n_ff_shexp] */
} reference_layer;

struct reference_model {
    /* hyper-parameters, read from metadata here (not by the runtime) */
    int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot;
    double rms_eps, rope_freq_base, rope_freq_scale;
    bool rope_neox; /* pair (i, i + n_rot/2) for all but llama, which pairs (2i, 2i+1) */
    /* the families beyond llama */
    bool gelu;                  /* gemma: gelu(tanh)(gate) * up */
    double embd_scale;          /* gemma: sqrt(n_embd), else 1 */
    double q_scale;             /* attention.scale, or 1 / sqrt(head_dim) */
    double attn_softcap;        /* 0: none */
    double final_softcap;       /* 0: none */
    int64_t window;             /* sliding window (positions), 0: none */
    int64_t local_every;        /* gemma: layer l is local unless (l + 1) % local_every == 0; 0: all local */
    double local_freq_base;     /* gemma3's local layers: their own base, unscaled */
    bool local_rope_unscaled;
    double *rope_long;          /* phi3 LongRoPE: factors beyond rope_orig_ctx positions ... */
    int64_t rope_orig_ctx;      /* ... else rope_factors (the short ones) */
    double rope_attn_factor;    /* multiplies the rotated values (LongRoPE) */
    bool qk_norm_spans;         /* olmo2: the Q/K norms span the whole projection */
    int64_t n_expert, n_used, n_ff_exp; /* a mixture of experts (Mixtral, qwen3moe); n_expert 0: dense */
    bool renormalize;           /* the k chosen probabilities divided by their sum */
    int64_t n_ff_shexp;         /* qwen2moe: the shared expert's width; 0: none */

    double *token_embd;   /* [n_vocab][n_embd] */
    double *output_norm;  /* [n_embd] */
    double *output;       /* [n_vocab][n_embd]; points at token_embd when tied */
    double *rope_factors; /* [n_rot/2] frequency divisors, or NULL */
    reference_layer *layers;
};

/* --- loading ---------------------------------------------------------------- */

/* Dequantizes tensor name, which must have shape [ne0, ne1], into a new
 * double array. A missing optional tensor gives *out = NULL. */
static strata_status load_tensor(const gguf_file *file, const char *name, int64_t ne0, int64_t ne1,
                                 bool required, double **out, strata_error *err)
{
    *out = NULL;
    float *row = NULL;
    double *values = NULL;
    strata_status status = STRATA_OK;
    const gguf_tensor_info *info = gguf_find_tensor(file, name);
    if (!info) {
        if (required)
            status = strata_fail(err, STRATA_INVALID_INPUT, "reference: %s: tensor %s is missing", gguf_path(file),
                                 name);
        goto fail;
    }
    int64_t file_ne1 = info->n_dims >= 2 ? info->ne[1] : 1;
    if (info->n_dims >= 3) /* the experts: their matrices one after the other */
        file_ne1 *= info->ne[2];
    if (info->ne[0] != ne0 || file_ne1 != ne1) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "reference: tensor %s is [%lld, %lld], expected [%lld, %lld]",
                             name, (long long)info->ne[0], (long long)file_ne1, (long long)ne0, (long long)ne1);
        goto fail;
    }
    size_t row_bytes = 0;
    if (!dtype_row_bytes(info->dtype, ne0, &row_bytes)) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "reference: tensor %s: bad row length", name);
        goto fail;
    }
    row = malloc((size_t)ne0 * sizeof *row);
    values = malloc((size_t)ne0 * (size_t)ne1 * sizeof *values);
    if (!row || !values) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "reference: tensor %s: out of memory", name);
        goto fail;
    }
    for (int64_t r = 0; r < ne1; r++) {
        const char *src = (const char *)info->data + (size_t)r * row_bytes;
        if ((status = quant_dequantize_row(info->dtype, src, row, ne0, err)))
            goto fail;
        for (int64_t i = 0; i < ne0; i++)
            values[r * ne0 + i] = row[i];
    }
    *out = values;
    values = NULL;
fail:
    free(row);
    free(values);
    return status;
}

static strata_status read_int(const gguf_file *file, const char *arch, const char *suffix, int64_t fallback,
                              int64_t *out, strata_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (fallback < 0)
        return gguf_get_int(file, key, out, err);
    return gguf_get_int_or(file, key, fallback, out, err);
}

static strata_status read_hparams(const gguf_file *file, reference_model *m, strata_error *err)
{
    gguf_string arch_string;
    strata_status status = gguf_get_string(file, "general.architecture", &arch_string, err);
    if (status != STRATA_OK)
        return status;
    char arch[32];
    if (arch_string.len >= sizeof arch)
        return strata_fail(err, STRATA_INVALID_INPUT, "reference: architecture name too long");
    memcpy(arch, arch_string.data, arch_string.len);
    arch[arch_string.len] = '\0';
    bool gemma2 = strcmp(arch, "gemma2") == 0, gemma3 = strcmp(arch, "gemma3") == 0;
    if (strcmp(arch, "llama") == 0)
        m->rope_neox = false;
    else if (strcmp(arch, "qwen2") == 0 || strcmp(arch, "qwen3") == 0 || strcmp(arch, "olmo2") == 0 || gemma2 ||
             gemma3 || strcmp(arch, "phi3") == 0 || strcmp(arch, "qwen3moe") == 0 ||
             strcmp(arch, "qwen2moe") == 0)
        m->rope_neox = true;
    else
        return strata_fail(err, STRATA_UNSUPPORTED, "reference: architecture %s is not supported", arch);
    m->gelu = gemma2 || gemma3;
    m->local_every = gemma2 ? 2 : gemma3 ? 6 : 0;

    if ((status = read_int(file, arch, "embedding_length", -1, &m->n_embd, err)) ||
        (status = read_int(file, arch, "block_count", -1, &m->n_layer, err)) ||
        (status = read_int(file, arch, "feed_forward_length", -1, &m->n_ff, err)) ||
        (status = read_int(file, arch, "attention.head_count", -1, &m->n_head, err)) ||
        (status = read_int(file, arch, "attention.head_count_kv", m->n_head, &m->n_head_kv, err)) ||
        (status = read_int(file, arch, "attention.key_length", m->n_embd / m->n_head, &m->head_dim, err)) ||
        (status = read_int(file, arch, "rope.dimension_count", m->head_dim, &m->n_rot, err)))
        return status;
    char key[128];
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if ((status = gguf_get_float_or(file, key, 1e-5, &m->rms_eps, err)))
        return status;
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    if ((status = gguf_get_float_or(file, key, 10000.0, &m->rope_freq_base, err)))
        return status;
    m->rope_freq_scale = 1.0;
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    gguf_string scaling;
    if (gguf_find_key(file, key) >= 0 && gguf_get_string(file, key, &scaling, NULL) == STRATA_OK &&
        scaling.len == 6 && memcmp(scaling.data, "linear", 6) == 0) {
        double factor;
        snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
        if ((status = gguf_get_float(file, key, &factor, err)))
            return status;
        m->rope_freq_scale = 1.0 / factor;
    }
    m->embd_scale = m->gelu ? sqrt((double)m->n_embd) : 1.0;
    const gguf_tensor_info *q_norm = gguf_find_tensor(file, "blk.0.attn_q_norm.weight");
    m->qk_norm_spans = q_norm && q_norm->ne[0] == m->n_head * m->head_dim && m->n_head > 1;
    snprintf(key, sizeof key, "%s.attention.scale", arch);
    if ((status = gguf_get_float_or(file, key, 1.0 / sqrt((double)m->head_dim), &m->q_scale, err)))
        return status;
    snprintf(key, sizeof key, "%s.attn_logit_softcapping", arch);
    if ((status = gguf_get_float_or(file, key, gemma2 ? 50.0 : 0.0, &m->attn_softcap, err)))
        return status;
    snprintf(key, sizeof key, "%s.final_logit_softcapping", arch);
    if ((status = gguf_get_float_or(file, key, gemma2 ? 30.0 : 0.0, &m->final_softcap, err)))
        return status;
    if ((status = read_int(file, arch, "attention.sliding_window", 0, &m->window, err)))
        return status;
    m->local_freq_base = m->rope_freq_base;
    if (gemma3) {
        snprintf(key, sizeof key, "%s.rope.freq_base_swa", arch);
        if ((status = gguf_get_float_or(file, key, 10000.0, &m->local_freq_base, err)))
            return status;
        m->local_rope_unscaled = true;
    }
    snprintf(key, sizeof key, "%s.rope.scaling.attn_factor", arch);
    if ((status = gguf_get_float_or(file, key, 1.0, &m->rope_attn_factor, err)) ||
        (status = read_int(file, arch, "rope.scaling.original_context_length", 0, &m->rope_orig_ctx, err)))
        return status;
    if ((status = read_int(file, arch, "expert_count", 0, &m->n_expert, err)))
        return status;
    if (m->n_expert > 0) {
        /* Mixtral always; qwen3moe unless the file says no; qwen2moe
         * (norm_topk_prob false in transformers' config) only when it says yes */
        bool qwen2moe = strcmp(arch, "qwen2moe") == 0, norm = !qwen2moe;
        snprintf(key, sizeof key, "%s.expert_weights_norm", arch);
        if ((status = read_int(file, arch, "expert_used_count", -1, &m->n_used, err)) ||
            (status = read_int(file, arch, "expert_feed_forward_length", m->n_ff, &m->n_ff_exp, err)) ||
            (status = gguf_get_bool_or(file, key, !qwen2moe, &norm, err)))
            return status;
        if (qwen2moe && (status = read_int(file, arch, "expert_shared_feed_forward_length", m->n_ff,
                                           &m->n_ff_shexp, err)))
            return status;
        if (m->n_used < 1 || m->n_used > m->n_expert || m->n_used > 64)
            return strata_fail(err, STRATA_UNSUPPORTED, "reference: %lld of %lld experts per token", (long long)m->n_used,
                               (long long)m->n_expert);
        m->renormalize = norm;
    }
    const gguf_tensor_info *embd = gguf_find_tensor(file, "token_embd.weight");
    if (!embd || embd->n_dims != 2)
        return strata_fail(err, STRATA_INVALID_INPUT, "reference: token_embd.weight missing or not 2-D");
    m->n_vocab = embd->ne[1];
    return STRATA_OK;
}

static strata_status load_layer(const gguf_file *file, const reference_model *m, int64_t index,
                                reference_layer *layer, strata_error *err)
{
    int64_t q_dim = m->n_head * m->head_dim;
    int64_t kv_dim = m->n_head_kv * m->head_dim;
    char name[96];
    strata_status status;
#define LOAD(field, suffix, ne0, ne1, required)                                                                    \
    do {                                                                                                           \
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)index, suffix);                                     \
        if ((status = load_tensor(file, name, ne0, ne1, required, &layer->field, err)))                          \
            return status;                                                                                         \
    } while (0)
    /* the file decides which layout it has: pre-norms or not, fused
     * weights or not, a Q/K norm per head or over the projection */
    snprintf(name, sizeof name, "blk.%lld.attn_qkv.weight", (long long)index);
    bool fused = gguf_find_tensor(file, name) != NULL;
    snprintf(name, sizeof name, "blk.%lld.attn_norm.weight", (long long)index);
    bool pre_norms = gguf_find_tensor(file, name) != NULL;
    bool norm_spans = m->qk_norm_spans;
    LOAD(attn_norm, "attn_norm.weight", m->n_embd, 1, pre_norms);
    if (fused) {
        LOAD(qkv, "attn_qkv.weight", m->n_embd, q_dim + 2 * kv_dim, true);
        layer->wq = layer->qkv;
        layer->wk = layer->qkv + q_dim * m->n_embd;
        layer->wv = layer->qkv + (q_dim + kv_dim) * m->n_embd;
        LOAD(gate_up, "ffn_up.weight", m->n_embd, 2 * m->n_ff, true);
        layer->w_gate = layer->gate_up;
        layer->w_up = layer->gate_up + m->n_ff * m->n_embd;
    } else {
        LOAD(wq, "attn_q.weight", m->n_embd, q_dim, true);
        LOAD(wk, "attn_k.weight", m->n_embd, kv_dim, true);
        LOAD(wv, "attn_v.weight", m->n_embd, kv_dim, true);
    }
    if (m->n_expert > 0) {
        int64_t rows = m->n_expert * m->n_ff_exp;
        LOAD(router, "ffn_gate_inp.weight", m->n_embd, m->n_expert, true);
        LOAD(gate_exps, "ffn_gate_exps.weight", m->n_embd, rows, true);
        LOAD(up_exps, "ffn_up_exps.weight", m->n_embd, rows, true);
        LOAD(down_exps, "ffn_down_exps.weight", m->n_ff_exp, m->n_expert * m->n_embd, true);
        bool shared = m->n_ff_shexp > 0;
        LOAD(shexp_gate_inp, "ffn_gate_inp_shexp.weight", m->n_embd, 1, shared);
        LOAD(shexp_gate, "ffn_gate_shexp.weight", m->n_embd, m->n_ff_shexp, shared);
        LOAD(shexp_up, "ffn_up_shexp.weight", m->n_embd, m->n_ff_shexp, shared);
        LOAD(shexp_down, "ffn_down_shexp.weight", m->n_ff_shexp, m->n_embd, shared);
    } else if (!fused) {
        LOAD(w_gate, "ffn_gate.weight", m->n_embd, m->n_ff, true);
        LOAD(w_up, "ffn_up.weight", m->n_embd, m->n_ff, true);
    }
    LOAD(wo, "attn_output.weight", q_dim, m->n_embd, true);
    LOAD(bq, "attn_q.bias", q_dim, 1, false);
    LOAD(bk, "attn_k.bias", kv_dim, 1, false);
    LOAD(bv, "attn_v.bias", kv_dim, 1, false);
    LOAD(q_norm, "attn_q_norm.weight", norm_spans ? q_dim : m->head_dim, 1, false);
    LOAD(k_norm, "attn_k_norm.weight", norm_spans ? kv_dim : m->head_dim, 1, false);
    LOAD(ffn_norm, "ffn_norm.weight", m->n_embd, 1, pre_norms);
    LOAD(w_down, "ffn_down.weight", m->n_ff, m->n_embd, m->n_expert == 0);
    LOAD(post_attn_norm, "post_attention_norm.weight", m->n_embd, 1, false);
    LOAD(post_ffn_norm, "post_ffw_norm.weight", m->n_embd, 1, false);
#undef LOAD
    return STRATA_OK;
}

strata_status reference_model_load(const char *path, reference_model **out, strata_error *err)
{
    *out = NULL;
    gguf_file *file = NULL;
    reference_model *m = calloc(1, sizeof *m);
    strata_status status = STRATA_OK;
    if (!m) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "reference: out of memory");
        goto fail;
    }
    if ((status = gguf_open(path, &file, err)) || (status = read_hparams(file, m, err)))
        goto fail;
    m->layers = calloc((size_t)m->n_layer, sizeof *m->layers);
    if (!m->layers) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "reference: out of memory");
        goto fail;
    }
    if ((status = load_tensor(file, "token_embd.weight", m->n_embd, m->n_vocab, true, &m->token_embd, err)) ||
        (status = load_tensor(file, "output_norm.weight", m->n_embd, 1, true, &m->output_norm, err)) ||
        (status = load_tensor(file, "output.weight", m->n_embd, m->n_vocab, false, &m->output, err)) ||
        (status = load_tensor(file, "rope_freqs.weight", m->n_rot / 2, 1, false, &m->rope_factors, err)))
        goto fail;
    if (!m->rope_factors &&
        ((status = load_tensor(file, "rope_factors_short.weight", m->n_rot / 2, 1, false, &m->rope_factors, err)) ||
         (status = load_tensor(file, "rope_factors_long.weight", m->n_rot / 2, 1, false, &m->rope_long, err))))
        goto fail;
    for (int64_t l = 0; l < m->n_layer; l++)
        if ((status = load_layer(file, m, l, &m->layers[l], err)))
            goto fail;
    gguf_close(file);
    *out = m;
    return STRATA_OK;
fail:
    gguf_close(file);
    reference_model_free(m);
    return status;
}

void reference_model_free(reference_model *m)
{
    if (!m)
        return;
    for (int64_t l = 0; m->layers && l < m->n_layer; l++) {
        reference_layer *layer = &m->layers[l];
        if (layer->qkv) /* wq, wk, wv, w_gate, w_up point into these */
            layer->wq = layer->wk = layer->wv = layer->w_gate = layer->w_up = NULL;
        double *fields[] = {layer->attn_norm, layer->wq,       layer->wk,     layer->wv,        layer->wo,
                            layer->bq,        layer->bk,       layer->bv,     layer->q_norm,    layer->k_norm,
                            layer->ffn_norm,  layer->w_gate,   layer->w_up,   layer->w_down,    layer->post_attn_norm,
                            layer->post_ffn_norm, layer->qkv, layer->gate_up, layer->router,
                            layer->gate_exps, layer->up_exps, layer->down_exps, layer->shexp_gate_inp,
                            layer->shexp_gate, layer->shexp_up, layer->shexp_down};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            free(fields[i]);
    }
    free(m->layers);
    free(m->token_embd);
    free(m->output_norm);
    free(m->output);
    free(m->rope_factors);
    free(m->rope_long);
    free(m);
}

int64_t reference_model_n_vocab(const reference_model *model)
{
    return model->n_vocab;
}

/* --- the math ----------------------------------------------------------------- */

/* out[n] = x[n] / sqrt(mean(x^2) + eps) * weight[n] (out may be x) */
static void rms_norm(double *out, const double *x, const double *weight, int64_t n, double eps)
{
    double sum_sq = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum_sq += x[i] * x[i];
    double inv_rms = 1.0 / sqrt(sum_sq / (double)n + eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * inv_rms * weight[i];
}

/* out[n_out] = W[n_out][n_in] x[n_in] (+ bias[n_out] when not NULL) */
static void matvec(double *out, const double *w, const double *x, const double *bias, int64_t n_in, int64_t n_out)
{
    for (int64_t r = 0; r < n_out; r++) {
        const double *row = w + r * n_in;
        double sum = bias ? bias[r] : 0.0;
        for (int64_t i = 0; i < n_in; i++)
            sum += row[i] * x[i];
        out[r] = sum;
    }
}

/* Rotates the first n_rot values of one head vector for position pos.
 * Pair k (k < n_rot/2) turns by pos * scale * base^(-2k/n_rot) / factor[k];
 * llama pairs (2k, 2k+1), neox pairs (k, k + n_rot/2). A local layer of
 * gemma3 has its own base and no scaling. LongRoPE takes the long factors
 * once the sequence (n_tokens) is longer than the original context, as
 * transformers does, and scales the rotated values by its attention factor. */
static void rope(const reference_model *m, double *head, int64_t pos, bool local, int64_t n_tokens)
{
    int64_t half = m->n_rot / 2;
    double base = local ? m->local_freq_base : m->rope_freq_base;
    double scale = local && m->local_rope_unscaled ? 1.0 : m->rope_freq_scale;
    const double *factors = m->rope_long && n_tokens > m->rope_orig_ctx ? m->rope_long : m->rope_factors;
    for (int64_t k = 0; k < half; k++) {
        double freq = pow(base, -(double)(2 * k) / (double)m->n_rot);
        if (factors)
            freq /= factors[k];
        double angle = (double)pos * scale * freq;
        double c = cos(angle) * m->rope_attn_factor, s = sin(angle) * m->rope_attn_factor;
        int64_t i0 = m->rope_neox ? k : 2 * k;
        int64_t i1 = m->rope_neox ? k + half : 2 * k + 1;
        double a = head[i0], b = head[i1];
        head[i0] = a * c - b * s;
        head[i1] = a * s + b * c;
    }
}

static double silu(double x)
{
    return x / (1.0 + exp(-x));
}

static double gelu_tanh(double x)
{
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

/* c * tanh(x / c), or x when c is 0 */
static double softcap(double x, double c)
{
    return c > 0.0 ? c * tanh(x / c) : x;
}

/* Buffers of one forward pass. */
typedef struct reference_state {
    double *x;       /* [n_embd] residual stream */
    double *xb;      /* [n_embd] normed input of a block */
    double *q;       /* [q_dim] */
    double *att_out; /* [q_dim] concatenated head outputs */
    double *proj;    /* [n_embd] block output before the residual add */
    double *gate;    /* [n_ff] */
    double *up;      /* [n_ff] */
    double *scores;  /* [n_tokens] attention weights of one head */
    double *probs;   /* [n_expert] router probabilities */
    double min_route_gap; /* smallest logit gap between a chosen expert and an unchosen one so far */
    double *expert;  /* [n_embd] one expert's output */
    double *k_cache; /* [n_layer][n_tokens][kv_dim] */
    double *v_cache; /* [n_layer][n_tokens][kv_dim] */
} reference_state;

static void state_free(reference_state *s)
{
    double *fields[] = {s->x,      s->xb,     s->q,      s->att_out, s->proj,  s->gate,
                        s->up,     s->scores, s->k_cache, s->v_cache, s->probs, s->expert};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        free(fields[i]);
}

static bool state_alloc(reference_state *s, const reference_model *m, int64_t n_tokens)
{
    size_t q_dim = (size_t)(m->n_head * m->head_dim);
    size_t kv_dim = (size_t)(m->n_head_kv * m->head_dim);
    size_t cache = (size_t)m->n_layer * (size_t)n_tokens * kv_dim;
    s->x = calloc((size_t)m->n_embd, sizeof(double));
    s->xb = calloc((size_t)m->n_embd, sizeof(double));
    s->q = calloc(q_dim, sizeof(double));
    s->att_out = calloc(q_dim, sizeof(double));
    s->proj = calloc((size_t)m->n_embd, sizeof(double));
    size_t ff = (size_t)(m->n_ff > m->n_ff_exp ? m->n_ff : m->n_ff_exp);
    ff = ff > (size_t)m->n_ff_shexp ? ff : (size_t)m->n_ff_shexp;
    s->gate = calloc(ff, sizeof(double));
    s->up = calloc(ff, sizeof(double));
    s->probs = calloc((size_t)m->n_expert + 1, sizeof(double));
    s->expert = calloc((size_t)m->n_embd, sizeof(double));
    s->scores = calloc((size_t)n_tokens, sizeof(double));
    s->k_cache = calloc(cache, sizeof(double));
    s->v_cache = calloc(cache, sizeof(double));
    return s->x && s->xb && s->q && s->att_out && s->proj && s->gate && s->up && s->scores && s->k_cache &&
           s->v_cache && s->probs && s->expert;
}

/* One attention block at position pos for layer l; adds its output to s->x. */
static void attention_block(const reference_model *m, int64_t l, int64_t pos, int64_t n_tokens,
                            reference_state *s)
{
    const reference_layer *w = &m->layers[l];
    int64_t hd = m->head_dim;
    int64_t kv_dim = m->n_head_kv * hd;
    int64_t group = m->n_head / m->n_head_kv; /* query heads per kv head */
    double *k = s->k_cache + ((size_t)l * (size_t)n_tokens + (size_t)pos) * (size_t)kv_dim; /* [kv_dim] */
    double *v = s->v_cache + ((size_t)l * (size_t)n_tokens + (size_t)pos) * (size_t)kv_dim; /* [kv_dim] */

    bool local = m->window > 0 && (m->local_every == 0 || (l + 1) % m->local_every != 0);
    const double *in = s->x;                                         /* olmo2: the block reads x */
    if (w->attn_norm) {
        rms_norm(s->xb, s->x, w->attn_norm, m->n_embd, m->rms_eps); /* xb [n_embd] */
        in = s->xb;
    }
    matvec(s->q, w->wq, in, w->bq, m->n_embd, m->n_head * hd);       /* q [n_head * hd] */
    matvec(k, w->wk, in, w->bk, m->n_embd, kv_dim);                  /* k [n_head_kv * hd] */
    matvec(v, w->wv, in, w->bv, m->n_embd, kv_dim);                  /* v [n_head_kv * hd] */
    if (w->q_norm && m->qk_norm_spans) {                             /* olmo2: over the whole q and k */
        rms_norm(s->q, s->q, w->q_norm, m->n_head * hd, m->rms_eps);
        rms_norm(k, k, w->k_norm, kv_dim, m->rms_eps);
    }
    for (int64_t h = 0; h < m->n_head; h++) {                        /* per-head q norm (qwen3, gemma3), rope */
        if (w->q_norm && !m->qk_norm_spans)
            rms_norm(s->q + h * hd, s->q + h * hd, w->q_norm, hd, m->rms_eps);
        rope(m, s->q + h * hd, pos, local, n_tokens);
    }
    for (int64_t h = 0; h < m->n_head_kv; h++) {
        if (w->k_norm && !m->qk_norm_spans)
            rms_norm(k + h * hd, k + h * hd, w->k_norm, hd, m->rms_eps);
        rope(m, k + h * hd, pos, local, n_tokens);
    }

    double scale = m->q_scale;
    int64_t first = local && pos >= m->window ? pos - m->window + 1 : 0; /* the window: the last `window` positions */
    for (int64_t h = 0; h < m->n_head; h++) {
        const double *q_head = s->q + h * hd;                        /* [hd] */
        int64_t kv_head = h / group;
        double max_score = -INFINITY;
        for (int64_t t = first; t <= pos; t++) {                     /* scores [first, pos], causal */
            const double *k_t = s->k_cache + ((size_t)l * (size_t)n_tokens + (size_t)t) * (size_t)kv_dim + kv_head * hd;
            double dot = 0.0;
            for (int64_t i = 0; i < hd; i++)
                dot += q_head[i] * k_t[i];
            s->scores[t] = softcap(dot * scale, m->attn_softcap);
            if (s->scores[t] > max_score)
                max_score = s->scores[t];
        }
        double sum = 0.0;                                            /* softmax */
        for (int64_t t = first; t <= pos; t++) {
            s->scores[t] = exp(s->scores[t] - max_score);
            sum += s->scores[t];
        }
        double *out_head = s->att_out + h * hd;                      /* [hd] = sum_t p_t v_t */
        for (int64_t i = 0; i < hd; i++)
            out_head[i] = 0.0;
        for (int64_t t = first; t <= pos; t++) {
            const double *v_t = s->v_cache + ((size_t)l * (size_t)n_tokens + (size_t)t) * (size_t)kv_dim + kv_head * hd;
            double p = s->scores[t] / sum;
            for (int64_t i = 0; i < hd; i++)
                out_head[i] += p * v_t[i];
        }
    }
    matvec(s->proj, w->wo, s->att_out, NULL, m->n_head * hd, m->n_embd); /* proj [n_embd] */
    if (w->post_attn_norm)                                                 /* gemma, olmo2 */
        rms_norm(s->proj, s->proj, w->post_attn_norm, m->n_embd, m->rms_eps);
    for (int64_t i = 0; i < m->n_embd; i++)                                /* residual */
        s->x[i] += s->proj[i];
}

/* The mixture of experts on in [n_embd]: proj = sum over the n_used most
 * probable experts e (softmax of the router; the earlier expert first on
 * equal probabilities) of p_e / (sum of the chosen p when renormalizing) *
 * down_e(silu(gate_e in) * up_e in); with a shared expert (qwen2moe), plus
 * sigmoid(gate_inp_shexp . in) * down_s(silu(gate_s in) * up_s in). */
static void experts(const reference_model *m, const reference_layer *w, const double *in, reference_state *s)
{
    int64_t ff = m->n_ff_exp;
    matvec(s->probs, w->router, in, NULL, m->n_embd, m->n_expert);  /* logits [n_expert] */
    double top = -INFINITY, total = 0.0;
    for (int64_t e = 0; e < m->n_expert; e++)
        top = s->probs[e] > top ? s->probs[e] : top;
    for (int64_t e = 0; e < m->n_expert; e++)                        /* softmax */
        total += (s->probs[e] = exp(s->probs[e] - top));
    for (int64_t e = 0; e < m->n_expert; e++)
        s->probs[e] /= total;
    int64_t chosen[64];
    double chosen_sum = 0.0;
    for (int64_t j = 0; j < m->n_used; j++) {                        /* the j-th most probable, unchosen */
        int64_t best = -1;
        for (int64_t e = 0; e < m->n_expert; e++) {
            bool taken = false;
            for (int64_t i = 0; i < j; i++)
                taken = taken || chosen[i] == e;
            if (!taken && (best < 0 || s->probs[e] > s->probs[best]))
                best = e;
        }
        chosen[j] = best;
        chosen_sum += s->probs[best];
    }
    double runner_up = 0.0; /* the most probable expert left out */
    for (int64_t e = 0; e < m->n_expert; e++) {
        bool taken = false;
        for (int64_t i = 0; i < m->n_used; i++)
            taken = taken || chosen[i] == e;
        if (!taken && s->probs[e] > runner_up)
            runner_up = s->probs[e];
    }
    if (runner_up > 0.0) {                                           /* gap in logits: log of the ratio */
        double gap = log(s->probs[chosen[m->n_used - 1]] / runner_up);
        s->min_route_gap = gap < s->min_route_gap ? gap : s->min_route_gap;
    }
    for (int64_t i = 0; i < m->n_embd; i++)
        s->proj[i] = 0.0;
    for (int64_t j = 0; j < m->n_used; j++) {
        int64_t e = chosen[j];
        double weight = s->probs[e] / (m->renormalize ? chosen_sum : 1.0);
        matvec(s->gate, w->gate_exps + e * ff * m->n_embd, in, NULL, m->n_embd, ff); /* gate [ff] */
        matvec(s->up, w->up_exps + e * ff * m->n_embd, in, NULL, m->n_embd, ff);     /* up [ff] */
        for (int64_t i = 0; i < ff; i++)
            s->gate[i] = silu(s->gate[i]) * s->up[i];
        matvec(s->expert, w->down_exps + e * m->n_embd * ff, s->gate, NULL, ff, m->n_embd); /* [n_embd] */
        for (int64_t i = 0; i < m->n_embd; i++)
            s->proj[i] += weight * s->expert[i];
    }
    if (!w->shexp_gate_inp)
        return;
    int64_t sf = m->n_ff_shexp;
    double gate_logit;
    matvec(&gate_logit, w->shexp_gate_inp, in, NULL, m->n_embd, 1);          /* a scalar */
    matvec(s->gate, w->shexp_gate, in, NULL, m->n_embd, sf);                 /* gate [sf] */
    matvec(s->up, w->shexp_up, in, NULL, m->n_embd, sf);                     /* up [sf] */
    for (int64_t i = 0; i < sf; i++)
        s->gate[i] = silu(s->gate[i]) * s->up[i];
    matvec(s->expert, w->shexp_down, s->gate, NULL, sf, m->n_embd);          /* [n_embd] */
    double gate = 1.0 / (1.0 + exp(-gate_logit));
    for (int64_t i = 0; i < m->n_embd; i++)
        s->proj[i] += gate * s->expert[i];
}

/* SwiGLU (GeGLU for gemma) feed-forward block for layer l, or its mixture
 * of experts; adds its output to s->x. */
static void ffn_block(const reference_model *m, int64_t l, reference_state *s)
{
    const reference_layer *w = &m->layers[l];
    const double *in = s->x;
    if (w->ffn_norm) {
        rms_norm(s->xb, s->x, w->ffn_norm, m->n_embd, m->rms_eps); /* xb [n_embd] */
        in = s->xb;
    }
    if (w->router) {
        experts(m, w, in, s);                                        /* proj [n_embd] */
    } else {
        matvec(s->gate, w->w_gate, in, NULL, m->n_embd, m->n_ff);   /* gate [n_ff] */
        matvec(s->up, w->w_up, in, NULL, m->n_embd, m->n_ff);       /* up [n_ff] */
        for (int64_t i = 0; i < m->n_ff; i++)                        /* act(gate) * up */
            s->gate[i] = (m->gelu ? gelu_tanh(s->gate[i]) : silu(s->gate[i])) * s->up[i];
        matvec(s->proj, w->w_down, s->gate, NULL, m->n_ff, m->n_embd); /* proj [n_embd] */
    }
    if (w->post_ffn_norm)
        rms_norm(s->proj, s->proj, w->post_ffn_norm, m->n_embd, m->rms_eps);
    for (int64_t i = 0; i < m->n_embd; i++)                          /* residual */
        s->x[i] += s->proj[i];
}

strata_status reference_forward(const reference_model *m, const int32_t *tokens, int64_t n_tokens, double *logits,
                                strata_error *err)
{
    return reference_forward_route_gap(m, tokens, n_tokens, logits, NULL, err);
}

strata_status reference_forward_route_gap(const reference_model *m, const int32_t *tokens, int64_t n_tokens,
                                          double *logits, double *min_route_gap, strata_error *err)
{
    reference_state s = {.min_route_gap = INFINITY};
    strata_status status = STRATA_OK;
    if (!state_alloc(&s, m, n_tokens)) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "reference: out of memory");
        goto fail;
    }
    const double *output = m->output ? m->output : m->token_embd; /* tied when output.weight is absent */
    for (int64_t pos = 0; pos < n_tokens; pos++) {
        if (tokens[pos] < 0 || tokens[pos] >= m->n_vocab) {
            status = strata_fail(err, STRATA_INVALID_INPUT, "reference: token %d outside the vocabulary of %lld",
                                 tokens[pos], (long long)m->n_vocab);
            goto fail;
        }
        for (int64_t i = 0; i < m->n_embd; i++)                          /* x [n_embd] (gemma: scaled) */
            s.x[i] = m->token_embd[(size_t)tokens[pos] * (size_t)m->n_embd + (size_t)i] * m->embd_scale;
        for (int64_t l = 0; l < m->n_layer; l++) {
            attention_block(m, l, pos, n_tokens, &s);
            ffn_block(m, l, &s);
        }
        rms_norm(s.xb, s.x, m->output_norm, m->n_embd, m->rms_eps);       /* xb [n_embd] */
        double *row = logits + (size_t)pos * (size_t)m->n_vocab;
        matvec(row, output, s.xb, NULL, m->n_embd, m->n_vocab);          /* logits [n_vocab] */
        for (int64_t i = 0; i < m->n_vocab; i++)                         /* gemma2 */
            row[i] = softcap(row[i], m->final_softcap);
    }
    if (min_route_gap)
        *min_route_gap = s.min_route_gap;
fail:
    state_free(&s);
    return status;
}
