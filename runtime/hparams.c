/* Hyper-parameters from GGUF metadata: one struct for every architecture, so
 * the forward pass reads flags instead of branching on names. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

/* Absurdly large values are rejected before anything is sized from them. */
#define HPARAM_MAX_DIM (1 << 20)
#define HPARAM_MAX_LAYERS 4096
#define HPARAM_MAX_CTX (1 << 24)
/* More experts than any released model has (DeepSeek-V3: 256, Qwen3: 128,
 * Llama 4: 128), with room; an id fits in any index type. */
#define HPARAM_MAX_EXPERTS 1024

/* What an architecture's blocks look like; the rest comes from the file. */
typedef struct arch_description {
    const char *name;
    strata_arch arch;
    bool rope_neox;
    bool has_qkv_bias;
    bool has_qk_norm;
    bool has_pre_norms;
    bool has_post_norms;
    bool qk_norm_full;
    bool fused_qkv;      /* and fused gate/up */
    bool ffn_gelu;
    bool embd_scaled;    /* by sqrt(n_embd) */
    int64_t swa_period;  /* 0: a window applies to every layer */
    int moe;             /* 0: dense; 1: experts when the file counts them (llama:
                            Mixtral); 2: experts always (qwen3moe, qwen2moe) */
    bool topk_renorm;    /* the chosen experts' weights renormalized unless the file says */
    bool shared_expert;  /* a gated shared expert beside the routed ones (qwen2moe) */
} arch_description;

static const arch_description known_archs[] = {
    {"llama", STRATA_ARCH_LLAMA, false, false, false, true, false, false, false, false, false, 0, 1, true, false},
    {"qwen2", STRATA_ARCH_QWEN2, true, true, false, true, false, false, false, false, false, 0, 0, false, false},
    {"qwen3", STRATA_ARCH_QWEN3, true, false, true, true, false, false, false, false, false, 0, 0, false, false},
    {"olmo2", STRATA_ARCH_OLMO2, true, false, true, false, true, true, false, false, false, 0, 0, false, false},
    {"gemma2", STRATA_ARCH_GEMMA2, true, false, false, true, true, false, false, true, true, 2, 0, false, false},
    {"gemma3", STRATA_ARCH_GEMMA3, true, false, true, true, true, false, false, true, true, 6, 0, false, false},
    {"phi3", STRATA_ARCH_PHI3, true, false, false, true, false, false, true, false, false, 0, 0, false, false},
    {"qwen3moe", STRATA_ARCH_QWEN3MOE, true, false, true, true, false, false, false, false, false, 0, 2, true, false},
    {"qwen2moe", STRATA_ARCH_QWEN2MOE, true, true, false, true, false, false, false, false, false, 0, 2, false, true},
};

static strata_status read_dim(const gguf_file *file, const char *arch, const char *suffix, int64_t fallback,
                              int64_t max_value, int64_t *out, strata_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    strata_status status = fallback >= 0 ? gguf_get_int_or(file, key, fallback, out, err)
                                         : gguf_get_int(file, key, out, err);
    if (status != STRATA_OK)
        return status;
    if (*out < 1 || *out > max_value)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: key %s: value %lld is outside [1, %lld]",
                           gguf_path(file), key, (long long)*out, (long long)max_value);
    return STRATA_OK;
}

/* A float key in [min, max] (NaN and infinities are outside any range);
 * the bounds keep what the forward pass derives from it finite. */
static strata_status read_float(const gguf_file *file, const char *arch, const char *suffix, double fallback,
                                double min, double max, float *out, strata_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    double value;
    strata_status status = gguf_get_float_or(file, key, fallback, &value, err);
    if (status != STRATA_OK)
        return status;
    if (!(value >= min && value <= max))
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: key %s: value %g is outside [%g, %g]", gguf_path(file),
                           key, value, min, max);
    *out = (float)value;
    return STRATA_OK;
}

/* Counts every weight, and the weights one token multiplies by: of a 3-D
 * expert tensor (ne[2] = n_expert) only its n_expert_used experts. Needs the
 * expert keys read. */
static void count_weights(const gguf_file *file, strata_hparams *hp)
{
    hp->n_params = 0;
    hp->n_params_active = 0;
    hp->weight_bytes = 0;
    for (int64_t i = 0; i < gguf_tensor_count(file); i++) {
        const gguf_tensor_info *info = gguf_tensor(file, i);
        uint64_t elements = 1;
        for (int d = 0; d < info->n_dims; d++)
            elements *= (uint64_t)info->ne[d];
        hp->n_params += elements;
        bool experts = hp->n_expert > 0 && info->n_dims == 3 && info->ne[2] == hp->n_expert;
        hp->n_params_active += experts ? elements / (uint64_t)hp->n_expert * (uint64_t)hp->n_expert_used : elements;
        hp->weight_bytes += info->size_bytes;
    }
}

/* An integer key in [min, max], or fallback when absent. */
static strata_status read_int(const gguf_file *file, const char *arch, const char *suffix, int64_t fallback,
                              int64_t min, int64_t max, int64_t *out, strata_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t index = gguf_find_key(file, key);
    if (index >= 0 && gguf_key_type(file, index) == GGUF_TYPE_ARRAY)
        return strata_fail(err, STRATA_UNSUPPORTED, "%s: key %s: a per-layer array is not supported", gguf_path(file),
                           key);
    strata_status status = gguf_get_int_or(file, key, fallback, out, err);
    if (status != STRATA_OK)
        return status;
    if (*out < min || *out > max)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: key %s: value %lld is outside [%lld, %lld]",
                           gguf_path(file), key, (long long)*out, (long long)min, (long long)max);
    return STRATA_OK;
}

/* The keys of the features beyond llama's: embedding scale, softcaps,
 * sliding window and its layers, query scale, rope of the sliding layers,
 * LongRoPE. Every value is bounded so that nothing derived from it is
 * infinite or sized from nonsense. */
static strata_status read_family_keys(const gguf_file *file, const arch_description *desc, strata_hparams *hp,
                                      strata_error *err)
{
    const char *arch = hp->arch_name, *path = gguf_path(file);
    strata_status status;
    bool gemma2 = desc->arch == STRATA_ARCH_GEMMA2;
    hp->embd_scale = desc->embd_scaled ? sqrtf((float)hp->n_embd) : 1.0f;

    /* Gemma 2 always caps (its files may predate the keys: 50 and 30 then);
     * other families only when the file says so. */
    char key[128];
    snprintf(key, sizeof key, "%s.attn_logit_softcapping", arch);
    if (gemma2 || gguf_find_key(file, key) >= 0)
        if ((status = read_float(file, arch, "attn_logit_softcapping", 50.0, 1e-3, 1e6, &hp->attn_softcap, err)))
            return status;
    snprintf(key, sizeof key, "%s.final_logit_softcapping", arch);
    if (gemma2 || gguf_find_key(file, key) >= 0)
        if ((status = read_float(file, arch, "final_logit_softcapping", 30.0, 1e-3, 1e6, &hp->final_softcap, err)))
            return status;

    /* sliding window (gemma, phi3): 0 (phi4's files) is none. llama-family
     * files that carry one ran without it before and still do; an olmo2
     * file with one is an olmo3 in disguise, which strata does not run. */
    hp->swa_layers = desc->swa_period > 0 ? STRATA_SWA_PERIOD : STRATA_SWA_ALL;
    hp->swa_period = desc->swa_period;
    snprintf(key, sizeof key, "%s.attention.sliding_window", arch);
    if (desc->arch == STRATA_ARCH_OLMO2 && gguf_find_key(file, key) >= 0)
        return strata_fail(err, STRATA_UNSUPPORTED, "%s: a sliding window in an olmo2 model is not supported", path);
    if (desc->swa_period > 0 || desc->arch == STRATA_ARCH_PHI3) {
        /* Gemma 2's window is 4096 in files that predate the key */
        if ((status = read_int(file, arch, "attention.sliding_window", gemma2 ? 4096 : 0, 0, HPARAM_MAX_CTX,
                               &hp->sliding_window, err)))
            return status;
        if (desc->swa_period > 0 &&
            (status = read_int(file, arch, "attention.sliding_window_pattern", desc->swa_period, 2,
                               HPARAM_MAX_LAYERS, &hp->swa_period, err)))
            return status;
    }

    /* 1 / sqrt(head_dim), unless the file gives the scale. Gemma 2 and 3 at
     * 27B scale by 1 / sqrt(n_embd / n_head) (their query_pre_attn_scalar),
     * which their files do not record: they are told by their layer count. */
    double default_scale = 1.0 / sqrt((double)hp->head_dim);
    if ((gemma2 && hp->n_layer == 46) || (desc->arch == STRATA_ARCH_GEMMA3 && hp->n_layer == 62))
        default_scale = 1.0 / sqrt((double)hp->n_embd / (double)hp->n_head);
    if ((status = read_float(file, arch, "attention.scale", default_scale, 1e-6, 1e3, &hp->attn_scale, err)))
        return status;

    /* the sliding layers' rope: gemma3 has its own base (10000, unscaled) */
    hp->rope_freq_base_swa = hp->rope_freq_base;
    hp->rope_freq_scale_swa = hp->rope_freq_scale;
    if (desc->arch == STRATA_ARCH_GEMMA3) {
        if ((status = read_float(file, arch, "rope.freq_base_swa", 10000.0, 1.0, 1e12, &hp->rope_freq_base_swa,
                                 err)))
            return status;
        hp->rope_freq_scale_swa = 1.0f;
    }

    /* LongRoPE: short factors up to the original context, long ones beyond,
     * the rotated dims scaled by attn_factor either way */
    bool has_long = gguf_find_tensor(file, "rope_factors_long.weight") != NULL;
    bool has_short = gguf_find_tensor(file, "rope_factors_short.weight") != NULL;
    hp->rope_attn_factor = 1.0f;
    if (has_long || has_short) {
        if (!has_long || !has_short)
            return strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor rope_factors_%s.weight is missing", path,
                               has_long ? "short" : "long");
        if (hp->has_rope_freq_factors)
            return strata_fail(err, STRATA_INVALID_INPUT,
                               "%s: the file has both rope_freqs.weight and LongRoPE factors", path);
        hp->has_rope_longrope = true;
        if ((status = read_dim(file, arch, "rope.scaling.original_context_length", hp->n_ctx_train, HPARAM_MAX_CTX,
                               &hp->rope_orig_ctx, err)) ||
            (status = read_float(file, arch, "rope.scaling.attn_factor", 1.0, 1e-3, 1e3, &hp->rope_attn_factor, err)))
            return status;
    }
    return STRATA_OK;
}

/* The experts: their count, how many each token uses, their width, and
 * whether the chosen weights are renormalized. Mixtral's router softmaxes
 * over the top-k logits (renormalized, always); Qwen3-MoE's files do not
 * record norm_topk_prob, which every released model sets, so it is assumed
 * unless expert_weights_norm says otherwise; Qwen2-MoE's converter does not
 * record it either, and no released model sets it (nor does llama.cpp
 * renormalize for qwen2moe), so there it is off unless the file says. The
 * shared expert's width (qwen2moe) is n_ff when the file does not give it,
 * as llama.cpp reads it. */
static strata_status read_expert_keys(const gguf_file *file, const arch_description *desc, strata_hparams *hp,
                                      strata_error *err)
{
    const char *arch = hp->arch_name, *path = gguf_path(file);
    char key[128];
    snprintf(key, sizeof key, "%s.expert_count", arch);
    if (desc->moe == 0 || (desc->moe == 1 && gguf_find_key(file, key) < 0))
        return STRATA_OK;
    strata_status status;
    if ((status = read_int(file, arch, "expert_count", 0, 0, HPARAM_MAX_EXPERTS, &hp->n_expert, err)))
        return status;
    if (hp->n_expert == 0 && desc->moe == 1)
        return STRATA_OK; /* a dense llama that writes the key */
    if (hp->n_expert < 1)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: key %s: a %s model needs at least one expert", path, key,
                           arch);
    if ((status = read_dim(file, arch, "expert_used_count", -1, hp->n_expert, &hp->n_expert_used, err)))
        return status;
    if ((status = read_dim(file, arch, "expert_feed_forward_length", hp->n_ff, HPARAM_MAX_DIM, &hp->n_ff_exp, err)))
        return status;
    if (desc->shared_expert &&
        (status = read_dim(file, arch, "expert_shared_feed_forward_length", hp->n_ff, HPARAM_MAX_DIM,
                           &hp->n_ff_shexp, err)))
        return status;
    hp->expert_weights_norm = desc->topk_renorm;
    snprintf(key, sizeof key, "%s.expert_weights_norm", arch);
    if (desc->moe == 2 && gguf_find_key(file, key) >= 0) {
        int64_t index = gguf_find_key(file, key);
        if (gguf_key_type(file, index) != GGUF_TYPE_BOOL)
            return strata_fail(err, STRATA_INVALID_INPUT, "%s: key %s is not a boolean", path, key);
        if ((status = gguf_get_bool(file, key, &hp->expert_weights_norm, err)))
            return status;
    }
    return STRATA_OK;
}

strata_status hparams_read(const gguf_file *file, strata_hparams *hp, strata_error *err)
{
    memset(hp, 0, sizeof *hp);
    const char *path = gguf_path(file);
    gguf_string arch_string;
    strata_status status = gguf_get_string(file, "general.architecture", &arch_string, err);
    if (status != STRATA_OK)
        return status;
    if (arch_string.len == 0 || arch_string.len >= sizeof hp->arch_name)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: key general.architecture: bad length %llu", path,
                           (unsigned long long)arch_string.len);
    memcpy(hp->arch_name, arch_string.data, arch_string.len);
    hp->arch_name[arch_string.len] = '\0';

    const arch_description *desc = NULL;
    for (size_t i = 0; i < sizeof known_archs / sizeof known_archs[0]; i++)
        if (strcmp(known_archs[i].name, hp->arch_name) == 0)
            desc = &known_archs[i];
    if (!desc)
        return strata_fail(err, STRATA_UNSUPPORTED,
                           "%s: architecture '%s' is not supported (supported: llama, qwen2, qwen3, olmo2, gemma2, gemma3, "
                           "phi3, qwen3moe, qwen2moe)", path,
                           hp->arch_name);
    hp->arch = desc->arch;
    hp->rope_neox = desc->rope_neox;
    hp->has_qkv_bias = desc->has_qkv_bias;
    hp->has_qk_norm = desc->has_qk_norm;
    hp->has_pre_norms = desc->has_pre_norms;
    hp->has_post_norms = desc->has_post_norms;
    hp->qk_norm_full = desc->qk_norm_full;
    hp->fused_qkv = desc->fused_qkv;
    hp->fused_gate_up = desc->fused_qkv;
    hp->ffn_gelu = desc->ffn_gelu;

    gguf_string name;
    if (gguf_find_key(file, "general.name") >= 0 && gguf_get_string(file, "general.name", &name, NULL) == STRATA_OK) {
        size_t len = name.len < sizeof hp->model_name - 1 ? (size_t)name.len : sizeof hp->model_name - 1;
        memcpy(hp->model_name, name.data, len);
        hp->model_name[len] = '\0';
    }

    const char *arch = hp->arch_name;
    if ((status = read_dim(file, arch, "embedding_length", -1, HPARAM_MAX_DIM, &hp->n_embd, err)) ||
        (status = read_dim(file, arch, "block_count", -1, HPARAM_MAX_LAYERS, &hp->n_layer, err)) ||
        (status = read_dim(file, arch, "feed_forward_length", -1, HPARAM_MAX_DIM, &hp->n_ff, err)) ||
        (status = read_dim(file, arch, "attention.head_count", -1, HPARAM_MAX_DIM, &hp->n_head, err)) ||
        (status = read_dim(file, arch, "attention.head_count_kv", hp->n_head, HPARAM_MAX_DIM, &hp->n_head_kv, err)) ||
        (status = read_dim(file, arch, "context_length", 2048, HPARAM_MAX_CTX, &hp->n_ctx_train, err)))
        return status;
    if (hp->n_head % hp->n_head_kv != 0)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "%s: attention.head_count %lld is not a multiple of attention.head_count_kv %lld", path,
                           (long long)hp->n_head, (long long)hp->n_head_kv);
    int64_t default_head_dim = hp->n_embd % hp->n_head == 0 ? hp->n_embd / hp->n_head : -1;
    if ((status = read_dim(file, arch, "attention.key_length", default_head_dim, HPARAM_MAX_DIM, &hp->head_dim, err)))
        return status;
    int64_t value_dim;
    if ((status = read_dim(file, arch, "attention.value_length", hp->head_dim, HPARAM_MAX_DIM, &value_dim, err)))
        return status;
    if (value_dim != hp->head_dim)
        return strata_fail(err, STRATA_UNSUPPORTED, "%s: key length %lld differs from value length %lld", path,
                           (long long)hp->head_dim, (long long)value_dim);
    if ((status = read_dim(file, arch, "rope.dimension_count", hp->head_dim, hp->head_dim, &hp->n_rot, err)))
        return status;
    if (hp->n_rot % 2 != 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: rope.dimension_count %lld is odd", path,
                           (long long)hp->n_rot);
    /* an epsilon is tiny and positive; a rope base below 1 or beyond 1e12
     * is no model's (Llama 3: 5e5, Qwen: 1e6), and its powers must stay finite */
    if ((status = read_float(file, arch, "attention.layer_norm_rms_epsilon", 1e-5, 1e-12, 0.1, &hp->rms_eps, err)) ||
        (status = read_float(file, arch, "rope.freq_base", 10000.0, 1.0, 1e12, &hp->rope_freq_base, err)))
        return status;

    /* Linear rope scaling divides positions by the factor; llama3-style
     * scaling comes as the rope_freqs tensor (per-frequency divisors). */
    hp->rope_freq_scale = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (gguf_find_key(file, key) >= 0) {
        gguf_string scaling_type;
        if ((status = gguf_get_string(file, key, &scaling_type, err)))
            return status;
        bool is_none = scaling_type.len == 4 && memcmp(scaling_type.data, "none", 4) == 0;
        bool is_linear = scaling_type.len == 6 && memcmp(scaling_type.data, "linear", 6) == 0;
        /* LongRoPE's factors are tensors, read with the family's keys */
        is_none = is_none || (scaling_type.len == 8 && memcmp(scaling_type.data, "longrope", 8) == 0);
        if (is_linear) {
            float factor;
            if ((status = read_float(file, arch, "rope.scaling.factor", 1.0, 1e-3, 1e6, &factor, err)))
                return status;
            hp->rope_freq_scale = 1.0f / factor;
        } else if (!is_none) {
            return strata_fail(err, STRATA_UNSUPPORTED, "%s: rope scaling type '%.*s' is not supported", path,
                               (int)(scaling_type.len > 32 ? 32 : scaling_type.len), scaling_type.data);
        }
    }
    hp->has_rope_freq_factors = gguf_find_tensor(file, "rope_freqs.weight") != NULL;
    hp->tied_output = gguf_find_tensor(file, "output.weight") == NULL;
    if ((status = read_family_keys(file, desc, hp, err)) || (status = read_expert_keys(file, desc, hp, err)))
        return status;

    const gguf_tensor_info *embd = gguf_find_tensor(file, "token_embd.weight");
    if (!embd)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor token_embd.weight is missing", path);
    hp->n_vocab = embd->n_dims >= 2 ? embd->ne[1] : 0;
    if (hp->n_vocab < 1)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor token_embd.weight has no vocabulary dimension",
                           path);

    int64_t file_type;
    if ((status = gguf_get_int_or(file, "general.file_type", -1, &file_type, err)))
        return status;
    hp->file_type = (int)file_type;
    count_weights(file, hp);
    return STRATA_OK;
}

strata_status strata_read_hparams(const char *path, strata_hparams *out, strata_error *err)
{
    gguf_file *file = NULL;
    strata_status status = gguf_open(path, &file, err);
    if (status != STRATA_OK)
        return status;
    status = hparams_read(file, out, err);
    if (status == STRATA_OK) /* read from a file that changed meanwhile? */
        status = gguf_check_unchanged(file, err);
    gguf_close(file);
    return status;
}

uint64_t strata_kv_cache_bytes(const strata_hparams *hp, int64_t n_ctx, strata_dtype kv_dtype)
{
    uint64_t element_bytes = kv_dtype == DTYPE_F32 ? 4 : 2;
    return 2ull * (uint64_t)hp->n_layer * (uint64_t)n_ctx * (uint64_t)(hp->n_head_kv * hp->head_dim) *
           element_bytes;
}
