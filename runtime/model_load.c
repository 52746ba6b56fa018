/* Loading a model: open the file, read the hyper-parameters, open the device,
 * place the weights, bind every tensor by its GGUF name with its shape
 * checked, and load the tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "tokenizer.h"

/* Fills out with the descriptor of tensor name placed in the weight buffer.
 * A required tensor that is missing, or any tensor whose shape is not
 * [ne0, ne1] (ne1 = 1 for vectors), is an error naming it. *present (may be
 * NULL for required tensors) tells whether an optional one exists. */
static strata_status bind_tensor(strata_model *model, const char *name, int64_t ne0, int64_t ne1, bool required,
                                 bool *present, strata_tensor *out, strata_error *err)
{
    const char *path = gguf_path(model->file);
    const gguf_tensor_info *info = gguf_find_tensor(model->file, name);
    if (present)
        *present = info != NULL;
    memset(out, 0, sizeof *out);
    if (!info) {
        if (required)
            return strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor %s is missing", path, name);
        return STRATA_OK;
    }
    int64_t file_ne1 = info->n_dims >= 2 ? info->ne[1] : 1;
    bool extra_dims = (info->n_dims >= 3 && info->ne[2] != 1) || (info->n_dims >= 4 && info->ne[3] != 1);
    if (info->ne[0] != ne0 || file_ne1 != ne1 || extra_dims)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "%s: tensor %s has shape [%lld, %lld], expected [%lld, %lld]", path, name,
                           (long long)info->ne[0], (long long)file_ne1, (long long)ne0, (long long)ne1);
    if (!tensor_init_contiguous(out, info->dtype, ne0, ne1, 1, 1))
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor %s: shape does not fit dtype %s", path, name,
                           dtype_name(info->dtype));
    out->buffer = model->weight_buffer;
    out->offset = (size_t)info->offset;
    void *base = model->device.ops->buffer_host_ptr(model->device.ctx, model->weight_buffer);
    out->host_data = base ? (char *)base + out->offset : NULL;
    out->name = info->name;
    return STRATA_OK;
}

/* Norms, biases and rope factors feed element-wise ops, which take F32. */
static strata_status require_f32(const strata_model *model, const strata_tensor *tensor, strata_error *err)
{
    if (tensor->dtype != DTYPE_F32)
        return strata_fail(err, STRATA_UNSUPPORTED, "%s: tensor %s is %s; strata expects f32 for this tensor",
                           gguf_path(model->file), tensor->name, dtype_name(tensor->dtype));
    return STRATA_OK;
}

/* Asks the device whether it can multiply by this weight (its dtype). */
static strata_status require_matmul_support(const strata_model *model, const strata_tensor *weight,
                                            strata_error *err)
{
    strata_tensor activation, result;
    tensor_init_contiguous(&activation, DTYPE_F32, weight->ne[0], 1, 1, 1);
    tensor_init_contiguous(&result, DTYPE_F32, weight->ne[1], 1, 1, 1);
    backend_op op = {.kind = OP_MATMUL, .dst = &result, .src = {weight, &activation}};
    if (!model->device.ops->supports(model->device.ctx, &op))
        return strata_fail(err, STRATA_UNSUPPORTED, "%s: tensor %s: the %s backend cannot multiply by %s weights",
                           gguf_path(model->file), weight->name, model->device.ops->name,
                           dtype_name(weight->dtype));
    return STRATA_OK;
}

static strata_status bind_layer(strata_model *model, int64_t layer_index, strata_error *err)
{
    const strata_hparams *hp = &model->hparams;
    layer_weights *layer = &model->layers[layer_index];
    int64_t q_size = hp->n_head * hp->head_dim;
    int64_t kv_size = hp->n_head_kv * hp->head_dim;
    char name[96];
    strata_status status;
#define BIND(field, suffix, ne0, ne1)                                                                              \
    do {                                                                                                           \
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)layer_index, suffix);                               \
        if ((status = bind_tensor(model, name, ne0, ne1, true, NULL, &layer->field, err)) != STRATA_OK)            \
            return status;                                                                                         \
    } while (0)
    BIND(attn_norm, "attn_norm.weight", hp->n_embd, 1);
    BIND(attn_q, "attn_q.weight", hp->n_embd, q_size);
    BIND(attn_k, "attn_k.weight", hp->n_embd, kv_size);
    BIND(attn_v, "attn_v.weight", hp->n_embd, kv_size);
    BIND(attn_output, "attn_output.weight", q_size, hp->n_embd);
    BIND(ffn_norm, "ffn_norm.weight", hp->n_embd, 1);
    BIND(ffn_gate, "ffn_gate.weight", hp->n_embd, hp->n_ff);
    BIND(ffn_up, "ffn_up.weight", hp->n_embd, hp->n_ff);
    BIND(ffn_down, "ffn_down.weight", hp->n_ff, hp->n_embd);
    if (hp->has_qkv_bias) {
        BIND(attn_q_bias, "attn_q.bias", q_size, 1);
        BIND(attn_k_bias, "attn_k.bias", kv_size, 1);
        BIND(attn_v_bias, "attn_v.bias", kv_size, 1);
    }
    if (hp->has_qk_norm) {
        BIND(attn_q_norm, "attn_q_norm.weight", hp->head_dim, 1);
        BIND(attn_k_norm, "attn_k_norm.weight", hp->head_dim, 1);
    }
#undef BIND
    const strata_tensor *vectors[] = {&layer->attn_norm, &layer->ffn_norm, &layer->attn_q_bias, &layer->attn_k_bias,
                                      &layer->attn_v_bias, &layer->attn_q_norm, &layer->attn_k_norm};
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        if (vectors[i]->buffer && (status = require_f32(model, vectors[i], err)) != STRATA_OK)
            return status;
    const strata_tensor *matrices[] = {&layer->attn_q, &layer->attn_k, &layer->attn_v, &layer->attn_output,
                                       &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
    for (size_t i = 0; i < sizeof matrices / sizeof matrices[0]; i++) {
        if ((status = require_matmul_support(model, matrices[i], err)) != STRATA_OK)
            return status;
        model->decode_weight_bytes += tensor_byte_size(matrices[i]);
    }
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        if (vectors[i]->buffer)
            model->decode_weight_bytes += tensor_byte_size(vectors[i]);
    return STRATA_OK;
}

/* Reports progress when the caller asked for it (params->progress). */
static void report_progress(const strata_model_params *params, double fraction)
{
    if (params->progress)
        params->progress(params->progress_user, fraction);
}

/* Puts the file's data section where the device computes from it: the CPU
 * reads the mapping itself (no copy); other devices get a buffer of the same
 * layout and an upload of every tensor. Progress goes to params->progress
 * per tensor uploaded (by bytes), and 1.0 once everything is in place. */
static strata_status place_weights(strata_model *model, const strata_model_params *params, strata_error *err)
{
    const backend_ops *ops = model->device.ops;
    size_t data_bytes = gguf_file_size(model->file) - gguf_data_offset(model->file);
    if (gguf_tensor_count(model->file) == 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: the file has no tensors", gguf_path(model->file));
    const gguf_tensor_info *first = gguf_tensor(model->file, 0);
    const char *data_base = (const char *)first->data - first->offset;
    strata_status status;
    if (ops->buffer_wrap_host && model->device_info.host_visible) {
        status = ops->buffer_wrap_host(model->device.ctx, (void *)data_base, data_bytes, &model->weight_buffer, err);
        if (status == STRATA_OK)
            report_progress(params, 1.0);
        model->weights_in_file = status == STRATA_OK && !params->no_mmap;
        return status;
    }

    if (data_bytes > model->device_info.free_bytes)
        return strata_fail(err, STRATA_OUT_OF_MEMORY,
                           "%s: weights need %.2f GiB but device %s has %.2f GiB free", gguf_path(model->file),
                           data_bytes / 1073741824.0, model->device_info.name,
                           model->device_info.free_bytes / 1073741824.0);
    status = ops->buffer_alloc(model->device.ctx, data_bytes, &model->weight_buffer, err);
    if (status != STRATA_OK)
        return status;
    uint64_t total_bytes = 0, uploaded_bytes = 0;
    for (int64_t i = 0; i < gguf_tensor_count(model->file); i++)
        total_bytes += gguf_tensor(model->file, i)->size_bytes;
    report_progress(params, 0.0);
    for (int64_t i = 0; i < gguf_tensor_count(model->file); i++) {
        const gguf_tensor_info *info = gguf_tensor(model->file, i);
        status = ops->upload(model->device.ctx, model->weight_buffer, (size_t)info->offset, info->data,
                             info->size_bytes, err);
        if (status != STRATA_OK)
            return status;
        uploaded_bytes += info->size_bytes;
        /* 1.0 only after sync: the last uploads may still be in flight */
        if (uploaded_bytes < total_bytes)
            report_progress(params, (double)uploaded_bytes / (double)total_bytes);
    }
    if ((status = ops->sync(model->device.ctx, err)) != STRATA_OK)
        return status;
    report_progress(params, 1.0);
    return STRATA_OK;
}

static strata_status bind_model(strata_model *model, strata_error *err)
{
    const strata_hparams *hp = &model->hparams;
    strata_status status;
    bool has_output;
    if ((status = bind_tensor(model, "token_embd.weight", hp->n_embd, hp->n_vocab, true, NULL, &model->token_embd,
                              err)) ||
        (status = bind_tensor(model, "output_norm.weight", hp->n_embd, 1, true, NULL, &model->output_norm, err)) ||
        (status = require_f32(model, &model->output_norm, err)) ||
        (status = bind_tensor(model, "output.weight", hp->n_embd, hp->n_vocab, false, &has_output, &model->output,
                              err)))
        return status;
    if (!has_output)
        model->output = model->token_embd; /* tied embeddings */
    if ((status = require_matmul_support(model, &model->output, err)))
        return status;
    if (hp->has_rope_freq_factors &&
        ((status = bind_tensor(model, "rope_freqs.weight", hp->n_rot / 2, 1, true, NULL, &model->rope_freqs, err)) ||
         (status = require_f32(model, &model->rope_freqs, err))))
        return status;

    model->layers = calloc((size_t)hp->n_layer, sizeof *model->layers);
    if (!model->layers)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for %lld layers", (long long)hp->n_layer);
    for (int64_t layer = 0; layer < hp->n_layer; layer++)
        if ((status = bind_layer(model, layer, err)) != STRATA_OK)
            return status;
    model->decode_weight_bytes += tensor_byte_size(&model->output) + tensor_byte_size(&model->output_norm) +
                                  model->token_embd.nb[1]; /* one embedding row per token */
    return STRATA_OK;
}

strata_status strata_model_load(const strata_model_params *params, strata_model **out, strata_error *err)
{
    *out = NULL;
    strata_model *model = calloc(1, sizeof *model);
    if (!model)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    strata_status status = params->no_mmap ? gguf_open_read(params->path, &model->file, err)
                                           : gguf_open(params->path, &model->file, err);
    if (status != STRATA_OK)
        goto fail;
    if ((status = hparams_read(model->file, &model->hparams, err)) != STRATA_OK)
        goto fail;

    backend_options options = {.n_threads = params->n_threads};
    const char *backend_name = params->backend ? params->backend : "cpu";
    if ((status = backend_open(backend_name, params->device, &options, &model->device, err)) != STRATA_OK)
        goto fail;
    model->device.ops->get_info(model->device.ctx, &model->device_info);
    snprintf(model->device_name, sizeof model->device_name, "%s: %s", model->device.ops->name,
             model->device_info.name);

    if ((status = place_weights(model, params, err)) != STRATA_OK)
        goto fail;
    if ((status = bind_model(model, err)) != STRATA_OK)
        goto fail;
    if ((status = tokenizer_load_gguf(model->file, params->force_pre, &model->tokenizer, err)) != STRATA_OK)
        goto fail;
    if (model->tokenizer && strata_vocab_size(model->tokenizer) > model->hparams.n_vocab) {
        status = strata_fail(err, STRATA_INVALID_INPUT,
                             "%s: the tokenizer has %lld tokens but token_embd.weight only %lld rows",
                             params->path, (long long)strata_vocab_size(model->tokenizer),
                             (long long)model->hparams.n_vocab);
        goto fail;
    }
    /* the uploads and the tokenizer read the file: it must not have changed */
    if ((status = gguf_check_unchanged(model->file, err)) != STRATA_OK)
        goto fail;
    *out = model;
    return STRATA_OK;
fail:
    strata_model_free(model);
    return status;
}

void strata_model_free(strata_model *model)
{
    if (!model)
        return;
    strata_tokenizer_free(model->tokenizer);
    if (model->device.ops) {
        if (model->weight_buffer)
            model->device.ops->buffer_free(model->device.ctx, model->weight_buffer);
        backend_close(&model->device);
    }
    free(model->layers);
    gguf_close(model->file);
    free(model);
}

const strata_hparams *strata_model_hparams(const strata_model *model) { return &model->hparams; }

const strata_tokenizer *strata_model_tokenizer(const strata_model *model) { return model->tokenizer; }

const char *strata_model_device_name(const strata_model *model) { return model->device_name; }

uint64_t strata_model_decode_weight_bytes(const strata_model *model) { return model->decode_weight_bytes; }
