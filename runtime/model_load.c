/* Loading a model: open the file, read the hyper-parameters, open the
 * devices, plan the placement (nothing is allocated when it does not fit),
 * place each device's weights, bind every tensor by its GGUF name with its
 * shape checked, and load the tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "model.h"
#include "model_check.h"
#include "plan_model.h"
#include "tokenizer.h"

/* Weights a CPU reads from the mapping must start at this alignment (the
 * GGUF default); a file with a smaller general.alignment gets copies. */
#define HOST_WEIGHT_ALIGNMENT 32

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Where the bytes of one tensor of the file ended up. */
typedef struct tensor_location {
    int device;             /* -1: not placed (unused), -2: rope_freqs, per device */
    backend_buffer *buffer;
    size_t offset;
} tensor_location;

typedef struct loader {
    strata_model *model;
    const strata_model_params *params;
    tensor_location *locations; /* [gguf_tensor_count] */
    uint64_t upload_total;
    uint64_t uploaded;
} loader;

static void report_progress(const loader *l, double fraction)
{
    if (l->params->progress)
        l->params->progress(l->params->progress_user, fraction);
}

/* Registers a buffer of device d's weights (kept for freeing). */
static strata_status keep_weight_buffer(model_device *device, backend_buffer *buffer, strata_error *err)
{
    backend_buffer **grown = realloc(device->weight_buffers, (size_t)(device->n_weight_buffers + 1) * sizeof *grown);
    if (!grown) {
        device->device.ops->buffer_free(device->device.ctx, buffer);
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    }
    device->weight_buffers = grown;
    device->weight_buffers[device->n_weight_buffers++] = buffer;
    return STRATA_OK;
}

static bool placed_on(const strata_plan *plan, int64_t t, int d, const model_device *device)
{
    int where = plan->tensors[t].device;
    return where == d || (where == -2 && device->runs_layers);
}

/* Notes where tensor t landed on device d: rope factors (copied to every
 * device that runs layers) in the device's own slot, the rest in the
 * tensor's location. */
static void place_at(loader *l, int64_t t, int d, backend_buffer *buffer, size_t offset)
{
    if (l->model->plan.tensors[t].device >= 0) {
        l->locations[t] = (tensor_location){.device = d, .buffer = buffer, .offset = offset};
        return;
    }
    int which = rope_factor_of(gguf_tensor(l->model->file, t)->name);
    if (which >= 0) {
        l->model->devices[d].rope_factors[which].buffer = buffer;
        l->model->devices[d].rope_factors[which].offset = offset;
    }
}

/* A CPU computes from the file mapping: one buffer wraps the data section,
 * and each tensor placed here is counted against the budget. A tensor the
 * file does not align is copied into an aligned buffer instead. */
static strata_status place_in_mapping(loader *l, int d, strata_error *err)
{
    strata_model *model = l->model;
    model_device *device = &model->devices[d];
    const backend_ops *ops = device->device.ops;
    const gguf_tensor_info *first = gguf_tensor(model->file, 0);
    const char *data_base = (const char *)first->data - first->offset;
    size_t data_bytes = gguf_file_size(model->file) - gguf_data_offset(model->file);
    backend_buffer *mapping = NULL;
    strata_status status;
    if ((status = ops->buffer_wrap_host(device->device.ctx, (void *)data_base, data_bytes, &mapping, err)) ||
        (status = keep_weight_buffer(device, mapping, err)))
        return status;
    model->weights_in_file = !l->params->no_mmap;
    for (int64_t t = 0; t < gguf_tensor_count(model->file); t++) {
        if (!placed_on(&model->plan, t, d, device))
            continue;
        const gguf_tensor_info *info = gguf_tensor(model->file, t);
        if ((uintptr_t)info->data % HOST_WEIGHT_ALIGNMENT == 0) {
            if ((status = model_device_count(model, d, info->size_bytes, "the weights", err)))
                return status;
            place_at(l, t, d, mapping, (size_t)info->offset);
            continue;
        }
        backend_buffer *copy = NULL;
        if ((status = model_device_alloc(model, d, info->size_bytes, "an aligned copy of a weight", &copy, err)) ||
            (status = keep_weight_buffer(device, copy, err)) ||
            (status = ops->upload(device->device.ctx, copy, 0, info->data, info->size_bytes, err)))
            return status;
        place_at(l, t, d, copy, 0);
    }
    return STRATA_OK;
}

/* Other devices get buffers of their own (each at most the device's largest
 * allocation) packed with their tensors at aligned offsets, then an upload
 * per tensor. */
static strata_status place_in_buffers(loader *l, int d, strata_error *err)
{
    strata_model *model = l->model;
    model_device *device = &model->devices[d];
    const backend_ops *ops = device->device.ops;
    size_t alignment = device->info.alignment ? device->info.alignment : 64;
    uint64_t max_buffer = device->info.max_allocation_bytes ? device->info.max_allocation_bytes : UINT64_MAX;
    int64_t n = gguf_tensor_count(model->file);
    strata_status status = STRATA_OK;
    int64_t t = 0;
    while (t < n) {
        /* the tensors [t, end) that fit one buffer */
        uint64_t size = 0;
        int64_t end = t;
        for (; end < n; end++) {
            if (!placed_on(&model->plan, end, d, device))
                continue;
            uint64_t bytes = gguf_tensor(model->file, end)->size_bytes;
            uint64_t offset = (size + alignment - 1) / alignment * alignment;
            if (bytes > max_buffer)
                return strata_fail(err, STRATA_UNSUPPORTED,
                                   "%s: tensor %s (%.2f GiB) is larger than the largest buffer %s can allocate "
                                   "(%.2f GiB); place it elsewhere with -ot",
                                   gguf_path(model->file), gguf_tensor(model->file, end)->name, (double)bytes / GIB,
                                   device->name, (double)max_buffer / GIB);
            if (offset + bytes > max_buffer)
                break;
            size = offset + bytes;
        }
        if (size == 0) {
            t = end;
            continue;
        }
        backend_buffer *buffer = NULL;
        if ((status = model_device_alloc(model, d, size, "the weights", &buffer, err)) ||
            (status = keep_weight_buffer(device, buffer, err)))
            return status;
        uint64_t offset = 0;
        for (int64_t k = t; k < end; k++) {
            if (!placed_on(&model->plan, k, d, device))
                continue;
            const gguf_tensor_info *info = gguf_tensor(model->file, k);
            offset = (offset + alignment - 1) / alignment * alignment;
            if ((status = ops->upload(device->device.ctx, buffer, (size_t)offset, info->data, info->size_bytes, err)))
                return status;
            place_at(l, k, d, buffer, (size_t)offset);
            offset += info->size_bytes;
            l->uploaded += info->size_bytes;
            /* 1.0 only after every device synced: the last uploads may be in flight */
            if (l->uploaded < l->upload_total)
                report_progress(l, (double)l->uploaded / (double)l->upload_total);
        }
        t = end;
    }
    return ops->sync(device->device.ctx, err);
}

static strata_status place_weights(loader *l, strata_error *err)
{
    strata_model *model = l->model;
    if (gguf_tensor_count(model->file) == 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: the file has no tensors", gguf_path(model->file));
    for (int64_t t = 0; t < gguf_tensor_count(model->file); t++)
        l->locations[t].device = -1;
    for (int d = 0; d < model->n_devices; d++) {
        model_device *device = &model->devices[d];
        if (!device->device.ops || (device->info.host_visible && device->device.ops->buffer_wrap_host))
            continue;
        for (int64_t t = 0; t < gguf_tensor_count(model->file); t++)
            if (placed_on(&model->plan, t, d, device))
                l->upload_total += gguf_tensor(model->file, t)->size_bytes;
    }
    report_progress(l, 0.0);
    for (int d = 0; d < model->n_devices; d++) {
        model_device *device = &model->devices[d];
        if (!device->device.ops)
            continue; /* unused by the plan, closed */
        strata_status status = device->info.host_visible && device->device.ops->buffer_wrap_host
                                   ? place_in_mapping(l, d, err)
                                   : place_in_buffers(l, d, err);
        if (status != STRATA_OK)
            return status;
    }
    report_progress(l, 1.0);
    return STRATA_OK;
}

/* Fills out with the descriptor of tensor name where the plan placed it
 * (presence, shape and dtype checked as model_check_tensors does). An
 * absent optional tensor gets device -1. */
static strata_status bind_tensor_3d(loader *l, const char *name, int64_t ne0, int64_t ne1, int64_t ne2, bool required,
                                    bool matrix, model_weight *out, strata_error *err)
{
    strata_model *model = l->model;
    const gguf_tensor_info *info;
    memset(out, 0, sizeof *out);
    out->device = -1;
    strata_status status = model_check_tensor_3d(model->file, name, ne0, ne1, ne2, required, matrix, &info, err);
    if (status != STRATA_OK || !info)
        return status;
    tensor_init_contiguous(&out->tensor, info->dtype, ne0, ne1, ne2, 1);
    int64_t index = info - gguf_tensor(model->file, 0);
    const tensor_location *where = &l->locations[index];
    if (where->device < 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor %s was not placed on any device",
                           gguf_path(model->file), name);
    const model_device *device = &model->devices[where->device];
    out->device = where->device;
    out->tensor.buffer = where->buffer;
    out->tensor.offset = where->offset;
    void *base = device->device.ops->buffer_host_ptr(device->device.ctx, where->buffer);
    out->tensor.host_data = base ? (char *)base + where->offset : NULL;
    out->tensor.name = info->name;
    return STRATA_OK;
}

static strata_status bind_tensor(loader *l, const char *name, int64_t ne0, int64_t ne1, bool required, bool matrix,
                                 model_weight *out, strata_error *err)
{
    return bind_tensor_3d(l, name, ne0, ne1, 1, required, matrix, out, err);
}

/* Asks the weight's device whether it can multiply by it (its dtype); the
 * experts' 3-D weights through OP_MATMUL_ID at one token. */
static strata_status require_matmul_support(const strata_model *model, const model_weight *weight,
                                            strata_error *err)
{
    const model_device *device = &model->devices[weight->device];
    strata_tensor activation, result, ids;
    bool experts = weight->tensor.ne[2] > 1;
    tensor_init_contiguous(&activation, DTYPE_F32, weight->tensor.ne[0], 1, 1, 1);
    tensor_init_contiguous(&result, DTYPE_F32, weight->tensor.ne[1], 1, 1, 1);
    tensor_init_contiguous(&ids, DTYPE_I32, 1, 1, 1, 1);
    backend_op op = {.kind = OP_MATMUL, .dst = &result, .src = {&weight->tensor, &activation}};
    if (experts)
        op = (backend_op){.kind = OP_MATMUL_ID, .dst = &result, .src = {&weight->tensor, &activation, &ids}};
    if (!device->device.ops->supports(device->device.ctx, &op))
        return strata_fail(err, STRATA_UNSUPPORTED, "%s: tensor %s: %s (%s) cannot multiply by %s weights",
                           gguf_path(model->file), weight->tensor.name, device->name, device->device.ops->name,
                           dtype_name(weight->tensor.dtype));
    return STRATA_OK;
}

/* Rows [first, first + count) of a bound 2-D weight, on the same device. */
static model_weight weight_rows(const model_weight *weight, int64_t first, int64_t count)
{
    model_weight rows = *weight;
    size_t skip = (size_t)first * weight->tensor.nb[1];
    rows.tensor.ne[1] = count;
    rows.tensor.nb[2] = rows.tensor.nb[3] = (size_t)count * weight->tensor.nb[1];
    rows.tensor.offset += skip;
    if (rows.tensor.host_data)
        rows.tensor.host_data = (char *)rows.tensor.host_data + skip;
    return rows;
}

static strata_status bind_layer(loader *l, int64_t layer_index, strata_error *err)
{
    strata_model *model = l->model;
    const strata_hparams *hp = &model->hparams;
    layer_weights *layer = &model->layers[layer_index];
    char name[96];
    strata_status status;
    for (size_t i = 0; i < layer_tensor_spec_count; i++) {
        const layer_tensor_spec *spec = &layer_tensor_specs[i];
        model_weight *weight = (model_weight *)((char *)layer + spec->field_offset);
        weight->device = -1;
        if (!layer_tensor_present(hp, spec))
            continue;
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)layer_index, spec->suffix);
        if ((status = bind_tensor_3d(l, name, tensor_dim_value(hp, spec->ne0), tensor_dim_value(hp, spec->ne1),
                                     tensor_dim_value(hp, spec->ne2), true, spec->matrix, weight, err)))
            return status;
        if (spec->matrix && (status = require_matmul_support(model, weight, err)))
            return status;
        /* a token reads only its n_expert_used experts' slabs */
        uint64_t bytes = tensor_byte_size(&weight->tensor);
        if (spec->ne2 == DIM_EXPERTS)
            bytes = bytes / (uint64_t)hp->n_expert * (uint64_t)hp->n_expert_used;
        model->decode_weight_bytes += bytes;
    }
    /* fused weights: the split ones are views of their rows (a row is whole
     * blocks in every format, so a range of rows is a 2-D tensor of its own) */
    int64_t q = hp->n_head * hp->head_dim, kv = hp->n_head_kv * hp->head_dim;
    if (hp->fused_qkv) {
        layer->attn_q = weight_rows(&layer->attn_qkv, 0, q);
        layer->attn_k = weight_rows(&layer->attn_qkv, q, kv);
        layer->attn_v = weight_rows(&layer->attn_qkv, q + kv, kv);
    }
    if (hp->fused_gate_up) {
        layer->ffn_gate = weight_rows(&layer->ffn_gate_up, 0, hp->n_ff);
        layer->ffn_up = weight_rows(&layer->ffn_gate_up, hp->n_ff, hp->n_ff);
    }
    layer->device = model->plan.layer_device[layer_index];
    return STRATA_OK;
}

static strata_status bind_model(loader *l, strata_error *err)
{
    strata_model *model = l->model;
    const strata_hparams *hp = &model->hparams;
    strata_status status;
    if ((status = bind_tensor(l, "token_embd.weight", hp->n_embd, hp->n_vocab, true, true, &model->token_embd, err)) ||
        (status = bind_tensor(l, "output_norm.weight", hp->n_embd, 1, true, false, &model->output_norm, err)) ||
        (status = bind_tensor(l, "output.weight", hp->n_embd, hp->n_vocab, false, true, &model->output, err)))
        return status;
    if (model->output.device < 0)
        model->output = model->token_embd; /* tied embeddings */
    if ((status = require_matmul_support(model, &model->output, err)))
        return status;
    for (int which = 0; which < ROPE_FACTOR_KINDS; which++) {
        if (!rope_factor_used(hp, which))
            continue;
        const char *name = rope_factor_names[which];
        const gguf_tensor_info *info = gguf_find_tensor(model->file, name);
        if (!info)
            return strata_fail(err, STRATA_INVALID_INPUT, "%s: tensor %s is missing", gguf_path(model->file), name);
        /* the shape and dtype checks of bind_tensor, on a stand-in location */
        int64_t index = info - gguf_tensor(model->file, 0);
        for (int d = 0; d < model->n_devices; d++) {
            model_device *device = &model->devices[d];
            if (!device->runs_layers)
                continue;
            model_weight rope;
            l->locations[index] = (tensor_location){.device = d, .buffer = device->rope_factors[which].buffer,
                                                    .offset = device->rope_factors[which].offset};
            if ((status = bind_tensor(l, name, hp->n_rot / 2, 1, true, false, &rope, err)))
                return status;
            device->rope_factors[which] = rope.tensor;
        }
    }

    model->layers = calloc((size_t)hp->n_layer, sizeof *model->layers);
    if (!model->layers)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for %lld layers", (long long)hp->n_layer);
    for (int64_t layer = 0; layer < hp->n_layer; layer++)
        if ((status = bind_layer(l, layer, err)) != STRATA_OK)
            return status;
    model->decode_weight_bytes += tensor_byte_size(&model->output.tensor) +
                                  tensor_byte_size(&model->output_norm.tensor) +
                                  model->token_embd.tensor.nb[1]; /* one embedding row per token */
    return STRATA_OK;
}

/* The device list the caller asked for: the placement's, else the
 * --backend/--device shorthand, else NULL (the default). */
static const char *requested_devices(const strata_model_params *params, char *buf, size_t size)
{
    if (params->placement.devices && params->placement.devices[0])
        return params->placement.devices;
    if (!params->backend)
        return NULL;
    if (strcmp(params->backend, "cpu") == 0 && params->device == 0)
        snprintf(buf, size, "cpu");
    else
        snprintf(buf, size, "%s%d", params->backend, params->device);
    return buf;
}

/* Opens the devices, plans, and takes over the devices the plan uses. */
static strata_status open_and_plan(strata_model *model, const strata_model_params *params, strata_error *err)
{
    open_device opened[STRATA_MAX_DEVICES];
    plan_device_input table[STRATA_MAX_DEVICES];
    int n_opened = 0;
    char list_buf[64];
    backend_options options = {.n_threads = params->n_threads};
    const strata_placement_params *placement = &params->placement;
    strata_status status = devices_open(requested_devices(params, list_buf, sizeof list_buf), &options, opened,
                                        &n_opened, err);
    if (status != STRATA_OK)
        return status;
    for (int d = 0; d < n_opened; d++) {
        devices_describe(&opened[d], placement->caps, placement->n_caps, &table[d]);
        if (placement->measure && (status = devices_measure(&opened[d], params->n_threads, &table[d], err)))
            goto fail;
    }
    if ((status = plan_model(model->file, &model->hparams, table, n_opened, placement, &model->plan, err)))
        goto fail;
    if (!model->plan.fits) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: the model %s (nothing was allocated)",
                             gguf_path(model->file), model->plan.shortfall);
        goto fail;
    }
    model->n_devices = n_opened;
    size_t used = 0;
    for (int d = 0; d < n_opened; d++) {
        model_device *device = &model->devices[d];
        snprintf(device->name, sizeof device->name, "%s", opened[d].name);
        if (model->plan.devices[d].planned_bytes == 0) {
            /* the plan puts nothing here: give the device back (its context
             * and workspace) rather than hold it idle */
            backend_close(&opened[d].device);
            continue;
        }
        device->device = opened[d].device;
        device->info = opened[d].info;
        device->budget_bytes = model->plan.devices[d].budget_bytes;
        device->workspace_bytes = model->plan.devices[d].workspace_bytes;
        device->runs_layers = model->plan.devices[d].n_layers > 0;
        snprintf(model->plan.devices[d].description, sizeof model->plan.devices[d].description, "%s",
                 opened[d].info.name);
        if (device->device.ops->set_workspace_limit)
            device->device.ops->set_workspace_limit(device->device.ctx, device->workspace_bytes);
        if (used < sizeof model->device_name)
            used += (size_t)snprintf(model->device_name + used, sizeof model->device_name - used, "%s%s: %s",
                                     d ? ", " : "", device->name, device->info.name);
    }
    return STRATA_OK;
fail:
    devices_close(opened, n_opened);
    return status;
}

strata_status strata_model_load(const strata_model_params *params, strata_model **out, strata_error *err)
{
    *out = NULL;
    loader l = {.params = params};
    strata_model *model = calloc(1, sizeof *model);
    if (!model)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    l.model = model;
    strata_status status = params->no_mmap ? gguf_open_read(params->path, &model->file, err)
                                           : gguf_open(params->path, &model->file, err);
    if (status != STRATA_OK)
        goto fail;
    if ((status = hparams_read(model->file, &model->hparams, err)) != STRATA_OK)
        goto fail;
    /* a file that cannot run is refused before any device is opened */
    if ((status = model_check_tensors(model->file, &model->hparams, err)) != STRATA_OK)
        goto fail;
    if ((status = open_and_plan(model, params, err)) != STRATA_OK)
        goto fail;
    l.locations = calloc((size_t)(gguf_tensor_count(model->file) + 1), sizeof *l.locations);
    if (!l.locations) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if ((status = place_weights(&l, err)) != STRATA_OK)
        goto fail;
    if ((status = bind_model(&l, err)) != STRATA_OK)
        goto fail;
    if ((status = tokenizer_load_gguf(model->file, params->force_pre, &model->tokenizer, err)) != STRATA_OK)
        goto fail;
    if ((status = model_check_vocabulary(model->file, &model->hparams, model->tokenizer, err)) != STRATA_OK)
        goto fail;
    /* the uploads and the tokenizer read the file: it must not have changed */
    if ((status = gguf_check_unchanged(model->file, err)) != STRATA_OK)
        goto fail;
    free(l.locations);
    *out = model;
    return STRATA_OK;
fail:
    free(l.locations);
    strata_model_free(model);
    return status;
}

void strata_model_free(strata_model *model)
{
    if (!model)
        return;
    strata_tokenizer_free(model->tokenizer);
    for (int d = 0; d < model->n_devices; d++) {
        model_device *device = &model->devices[d];
        if (!device->device.ops)
            continue;
        for (int b = 0; b < device->n_weight_buffers; b++)
            device->device.ops->buffer_free(device->device.ctx, device->weight_buffers[b]);
        free(device->weight_buffers);
        backend_close(&device->device);
    }
    planner_result_release(&model->plan);
    free(model->layers);
    gguf_close(model->file);
    free(model);
}

const strata_hparams *strata_model_hparams(const strata_model *model) { return &model->hparams; }

const strata_tokenizer *strata_model_tokenizer(const strata_model *model) { return model->tokenizer; }

const char *strata_model_device_name(const strata_model *model) { return model->device_name; }

const strata_plan *strata_model_plan(const strata_model *model) { return &model->plan; }

uint64_t strata_model_decode_weight_bytes(const strata_model *model) { return model->decode_weight_bytes; }
