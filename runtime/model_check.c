/* What a model file must hold for the forward pass: checked once, the same
 * way for `strata info` (strata_model_check) and for strata_model_load,
 * before any device is opened; and, on request, every weight scanned for
 * NaN and infinity. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_check.h"
#include "quant.h"
#include "tokenizer.h"

const layer_tensor_spec layer_tensor_specs[] = {
    {"attn_norm.weight", offsetof(layer_weights, attn_norm), DIM_EMBD, DIM_ONE, false, WHEN_PRE_NORMS, DIM_ONE},
    {"attn_q.weight", offsetof(layer_weights, attn_q), DIM_EMBD, DIM_Q, true, WHEN_SPLIT_QKV, DIM_ONE},
    {"attn_k.weight", offsetof(layer_weights, attn_k), DIM_EMBD, DIM_KV, true, WHEN_SPLIT_QKV, DIM_ONE},
    {"attn_v.weight", offsetof(layer_weights, attn_v), DIM_EMBD, DIM_KV, true, WHEN_SPLIT_QKV, DIM_ONE},
    {"attn_qkv.weight", offsetof(layer_weights, attn_qkv), DIM_EMBD, DIM_QKV, true, WHEN_FUSED_QKV, DIM_ONE},
    {"attn_output.weight", offsetof(layer_weights, attn_output), DIM_Q, DIM_EMBD, true, WHEN_ALWAYS, DIM_ONE},
    {"attn_q.bias", offsetof(layer_weights, attn_q_bias), DIM_Q, DIM_ONE, false, WHEN_QKV_BIAS, DIM_ONE},
    {"attn_k.bias", offsetof(layer_weights, attn_k_bias), DIM_KV, DIM_ONE, false, WHEN_QKV_BIAS, DIM_ONE},
    {"attn_v.bias", offsetof(layer_weights, attn_v_bias), DIM_KV, DIM_ONE, false, WHEN_QKV_BIAS, DIM_ONE},
    {"attn_q_norm.weight", offsetof(layer_weights, attn_q_norm), DIM_Q_NORM, DIM_ONE, false, WHEN_QK_NORM, DIM_ONE},
    {"attn_k_norm.weight", offsetof(layer_weights, attn_k_norm), DIM_K_NORM, DIM_ONE, false, WHEN_QK_NORM, DIM_ONE},
    {"post_attention_norm.weight", offsetof(layer_weights, attn_post_norm), DIM_EMBD, DIM_ONE, false,
     WHEN_POST_NORMS, DIM_ONE},
    {"ffn_norm.weight", offsetof(layer_weights, ffn_norm), DIM_EMBD, DIM_ONE, false, WHEN_PRE_NORMS, DIM_ONE},
    {"ffn_gate.weight", offsetof(layer_weights, ffn_gate), DIM_EMBD, DIM_FF, true, WHEN_SPLIT_GATE_UP, DIM_ONE},
    {"ffn_up.weight", offsetof(layer_weights, ffn_up), DIM_EMBD, DIM_FF, true, WHEN_SPLIT_GATE_UP, DIM_ONE},
    {"ffn_up.weight", offsetof(layer_weights, ffn_gate_up), DIM_EMBD, DIM_FF2, true, WHEN_FUSED_GATE_UP, DIM_ONE},
    {"ffn_down.weight", offsetof(layer_weights, ffn_down), DIM_FF, DIM_EMBD, true, WHEN_DENSE_FFN, DIM_ONE},
    {"ffn_gate_inp.weight", offsetof(layer_weights, ffn_gate_inp), DIM_EMBD, DIM_EXPERTS, true, WHEN_EXPERTS, DIM_ONE},
    {"ffn_gate_exps.weight", offsetof(layer_weights, ffn_gate_exps), DIM_EMBD, DIM_FF_EXP, true, WHEN_EXPERTS,
     DIM_EXPERTS},
    {"ffn_up_exps.weight", offsetof(layer_weights, ffn_up_exps), DIM_EMBD, DIM_FF_EXP, true, WHEN_EXPERTS,
     DIM_EXPERTS},
    {"ffn_down_exps.weight", offsetof(layer_weights, ffn_down_exps), DIM_FF_EXP, DIM_EMBD, true, WHEN_EXPERTS,
     DIM_EXPERTS},
    {"ffn_gate_inp_shexp.weight", offsetof(layer_weights, ffn_gate_inp_shexp), DIM_EMBD, DIM_ONE, true,
     WHEN_SHARED_EXPERT, DIM_ONE},
    {"ffn_gate_shexp.weight", offsetof(layer_weights, ffn_gate_shexp), DIM_EMBD, DIM_FF_SHEXP, true,
     WHEN_SHARED_EXPERT, DIM_ONE},
    {"ffn_up_shexp.weight", offsetof(layer_weights, ffn_up_shexp), DIM_EMBD, DIM_FF_SHEXP, true, WHEN_SHARED_EXPERT,
     DIM_ONE},
    {"ffn_down_shexp.weight", offsetof(layer_weights, ffn_down_shexp), DIM_FF_SHEXP, DIM_EMBD, true,
     WHEN_SHARED_EXPERT, DIM_ONE},
    {"post_ffw_norm.weight", offsetof(layer_weights, ffn_post_norm), DIM_EMBD, DIM_ONE, false, WHEN_POST_NORMS, DIM_ONE},
};
const size_t layer_tensor_spec_count = sizeof layer_tensor_specs / sizeof layer_tensor_specs[0];

const char *const rope_factor_names[ROPE_FACTOR_KINDS] = {
    [ROPE_FACTORS_FREQS] = "rope_freqs.weight",
    [ROPE_FACTORS_SHORT] = "rope_factors_short.weight",
    [ROPE_FACTORS_LONG] = "rope_factors_long.weight",
};

int rope_factor_of(const char *name)
{
    for (int which = 0; which < ROPE_FACTOR_KINDS; which++)
        if (strcmp(name, rope_factor_names[which]) == 0)
            return which;
    return -1;
}

bool rope_factor_used(const strata_hparams *hp, int which)
{
    return which == ROPE_FACTORS_FREQS ? hp->has_rope_freq_factors : which >= 0 && hp->has_rope_longrope;
}

int64_t tensor_dim_value(const strata_hparams *hp, tensor_dim dim)
{
    switch (dim) {
    case DIM_ONE: return 1;
    case DIM_EMBD: return hp->n_embd;
    case DIM_VOCAB: return hp->n_vocab;
    case DIM_FF: return hp->n_ff;
    case DIM_Q: return hp->n_head * hp->head_dim;
    case DIM_KV: return hp->n_head_kv * hp->head_dim;
    case DIM_HEAD: return hp->head_dim;
    case DIM_ROT_HALF: return hp->n_rot / 2;
    case DIM_QKV: return (hp->n_head + 2 * hp->n_head_kv) * hp->head_dim;
    case DIM_FF2: return 2 * hp->n_ff;
    case DIM_Q_NORM: return hp->qk_norm_full ? hp->n_head * hp->head_dim : hp->head_dim;
    case DIM_K_NORM: return hp->qk_norm_full ? hp->n_head_kv * hp->head_dim : hp->head_dim;
    case DIM_EXPERTS: return hp->n_expert;
    case DIM_FF_EXP: return hp->n_ff_exp;
    case DIM_FF_SHEXP: return hp->n_ff_shexp;
    }
    return 0;
}

bool layer_tensor_present(const strata_hparams *hp, const layer_tensor_spec *spec)
{
    switch (spec->when) {
    case WHEN_ALWAYS: return true;
    case WHEN_QKV_BIAS: return hp->has_qkv_bias;
    case WHEN_QK_NORM: return hp->has_qk_norm;
    case WHEN_PRE_NORMS: return hp->has_pre_norms;
    case WHEN_POST_NORMS: return hp->has_post_norms;
    case WHEN_SPLIT_QKV: return !hp->fused_qkv;
    case WHEN_FUSED_QKV: return hp->fused_qkv;
    case WHEN_SPLIT_GATE_UP: return !hp->fused_gate_up && hp->n_expert == 0;
    case WHEN_FUSED_GATE_UP: return hp->fused_gate_up;
    case WHEN_DENSE_FFN: return hp->n_expert == 0;
    case WHEN_EXPERTS: return hp->n_expert > 0;
    case WHEN_SHARED_EXPERT: return hp->n_expert > 0 && hp->n_ff_shexp > 0;
    }
    return false;
}

strata_status model_check_tensor(const gguf_file *file, const char *name, int64_t ne0, int64_t ne1, bool required,
                                 bool matrix, const gguf_tensor_info **out, strata_error *err)
{
    return model_check_tensor_3d(file, name, ne0, ne1, 1, required, matrix, out, err);
}

strata_status model_check_tensor_3d(const gguf_file *file, const char *name, int64_t ne0, int64_t ne1, int64_t ne2,
                                    bool required, bool matrix, const gguf_tensor_info **out, strata_error *err)
{
    const char *path = gguf_path(file);
    const gguf_tensor_info *info = gguf_find_tensor(file, name);
    *out = info;
    if (!info)
        return required ? strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor %s is missing", path, name) : STRATA_OK;
    int64_t file_ne1 = info->n_dims >= 2 ? info->ne[1] : 1, file_ne2 = info->n_dims >= 3 ? info->ne[2] : 1;
    bool extra_dims = info->n_dims >= 4 && info->ne[3] != 1;
    if (info->ne[0] != ne0 || file_ne1 != ne1 || file_ne2 != ne2 || extra_dims) {
        if (ne2 == 1 && file_ne2 == 1)
            return strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor %s has shape [%lld, %lld], expected [%lld, %lld]",
                               path, name, (long long)info->ne[0], (long long)file_ne1, (long long)ne0, (long long)ne1);
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "%s: tensor %s has shape [%lld, %lld, %lld], expected [%lld, %lld, %lld]", path, name,
                           (long long)info->ne[0], (long long)file_ne1, (long long)file_ne2, (long long)ne0,
                           (long long)ne1, (long long)ne2);
    }
    strata_tensor shape;
    if (!tensor_init_contiguous(&shape, info->dtype, ne0, ne1, ne2, 1))
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor %s: shape does not fit dtype %s", path, name,
                           dtype_name(info->dtype));
    /* norms, biases and rope factors feed element-wise ops, which take F32 */
    if (!matrix && info->dtype != DTYPE_F32)
        return strata_fail(err, STRATA_UNSUPPORTED, "%s: tensor %s is %s; strata expects f32 for this tensor", path,
                           name, dtype_name(info->dtype));
    return STRATA_OK;
}

/* rope_freqs divides every rotation frequency: a zero, negative or
 * non-finite factor turns the rotation into NaN or nonsense. */
static strata_status check_rope_factors(const gguf_file *file, const gguf_tensor_info *info, strata_error *err)
{
    for (int64_t i = 0; i < info->ne[0]; i++) {
        float factor;
        memcpy(&factor, (const char *)info->data + (size_t)i * sizeof factor, sizeof factor);
        if (!(factor > 0.0f) || !isfinite(factor))
            return strata_fail(err, STRATA_INVALID_INPUT,
                               "%s: tensor %s: factor %lld is %g; every factor must be a finite "
                               "positive number",
                               gguf_path(file), info->name, (long long)i, (double)factor);
    }
    return STRATA_OK;
}

strata_status model_check_tensors(const gguf_file *file, const strata_hparams *hp, strata_error *err)
{
    const gguf_tensor_info *info;
    strata_status status;
    if ((status = model_check_tensor(file, "token_embd.weight", hp->n_embd, hp->n_vocab, true, true, &info, err)) ||
        (status = model_check_tensor(file, "output_norm.weight", hp->n_embd, 1, true, false, &info, err)) ||
        (status = model_check_tensor(file, "output.weight", hp->n_embd, hp->n_vocab, false, true, &info, err)))
        return status;
    if (hp->has_rope_freq_factors) {
        if ((status = model_check_tensor(file, "rope_freqs.weight", hp->n_rot / 2, 1, true, false, &info, err)) ||
            (status = check_rope_factors(file, info, err)))
            return status;
    }
    for (int which = ROPE_FACTORS_SHORT; hp->has_rope_longrope && which <= ROPE_FACTORS_LONG; which++) {
        if ((status = model_check_tensor(file, rope_factor_names[which], hp->n_rot / 2, 1, true, false, &info,
                                         err)) ||
            (status = check_rope_factors(file, info, err)))
            return status;
    }
    char name[96];
    for (int64_t layer = 0; layer < hp->n_layer; layer++) {
        for (size_t i = 0; i < layer_tensor_spec_count; i++) {
            const layer_tensor_spec *spec = &layer_tensor_specs[i];
            if (!layer_tensor_present(hp, spec))
                continue;
            snprintf(name, sizeof name, "blk.%lld.%s", (long long)layer, spec->suffix);
            if ((status = model_check_tensor_3d(file, name, tensor_dim_value(hp, spec->ne0),
                                                tensor_dim_value(hp, spec->ne1), tensor_dim_value(hp, spec->ne2), true,
                                                spec->matrix, &info, err)))
                return status;
        }
    }
    return STRATA_OK;
}

strata_status model_check_vocabulary(const gguf_file *file, const strata_hparams *hp,
                                     const strata_tokenizer *tokenizer, strata_error *err)
{
    if (tokenizer && strata_vocab_size(tokenizer) > hp->n_vocab)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: the tokenizer has %lld tokens but token_embd.weight only %lld rows",
                           gguf_path(file), (long long)strata_vocab_size(tokenizer), (long long)hp->n_vocab);
    return STRATA_OK;
}

/* Every value of every tensor finite: rows dequantized one at a time. */
static strata_status scan_weights(const gguf_file *file, strata_error *err)
{
    float *row = NULL;
    size_t row_capacity = 0;
    strata_status status = STRATA_OK;
    for (int64_t t = 0; t < gguf_tensor_count(file) && status == STRATA_OK; t++) {
        const gguf_tensor_info *info = gguf_tensor(file, t);
        if (info->dtype == DTYPE_I32 || info->ne[0] <= 0)
            continue; /* integer tensors hold no NaN */
        int64_t rows = info->size_bytes > 0 ? 1 : 0;
        for (int d = 1; d < info->n_dims; d++)
            rows *= info->ne[d];
        size_t row_bytes;
        if (!dtype_row_bytes(info->dtype, info->ne[0], &row_bytes))
            return strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor %s: rows do not fit dtype %s", gguf_path(file),
                               info->name, dtype_name(info->dtype));
        if ((size_t)info->ne[0] > row_capacity) {
            float *grown = realloc(row, (size_t)info->ne[0] * sizeof *row);
            if (!grown) {
                status = strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory scanning %s", info->name);
                break;
            }
            row = grown;
            row_capacity = (size_t)info->ne[0];
        }
        for (int64_t r = 0; r < rows && status == STRATA_OK; r++) {
            const char *bytes = (const char *)info->data + (size_t)r * row_bytes;
            if ((status = quant_dequantize_row(info->dtype, bytes, row, info->ne[0], err)))
                break;
            for (int64_t i = 0; i < info->ne[0]; i++)
                if (!isfinite(row[i])) {
                    status = strata_fail(err, STRATA_INVALID_INPUT,
                                         "%s: tensor %s: value %lld of row %lld is %s", gguf_path(file), info->name,
                                         (long long)i, (long long)r, isnan(row[i]) ? "NaN" : "infinite");
                    break;
                }
        }
    }
    free(row);
    return status;
}

strata_status strata_model_check(const char *path, bool scan, strata_error *err)
{
    gguf_file *file = NULL;
    strata_tokenizer *tokenizer = NULL;
    strata_hparams hp;
    strata_status status = gguf_open(path, &file, err);
    if (status == STRATA_OK)
        status = hparams_read(file, &hp, err);
    if (status == STRATA_OK)
        status = model_check_tensors(file, &hp, err);
    if (status == STRATA_OK)
        status = tokenizer_load_gguf(file, NULL, &tokenizer, err);
    if (status == STRATA_OK)
        status = model_check_vocabulary(file, &hp, tokenizer, err);
    if (status == STRATA_OK && scan)
        status = scan_weights(file, err);
    if (status == STRATA_OK) /* what was checked came from the mapping: the file must not have changed */
        status = gguf_check_unchanged(file, err);
    strata_tokenizer_free(tokenizer);
    gguf_close(file);
    return status;
}
