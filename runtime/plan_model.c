/* Planning a model file: its tensor table and shape for the planner, the
 * device table (present devices or specs), and strata_plan_file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "model.h"
#include "model_check.h"
#include "plan_model.h"

strata_placement_params strata_placement_default_params(void)
{
    strata_placement_params params = {.kv_dtype = DTYPE_F16, .max_batch = PLAN_DEFAULT_BATCH};
    return params;
}

plan_model_shape plan_shape_of(const strata_hparams *hp)
{
    plan_model_shape shape = {.n_vocab = hp->n_vocab, .n_embd = hp->n_embd, .n_layer = hp->n_layer,
                              .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
                              .n_ff = hp->n_ff, .n_ctx_train = hp->n_ctx_train, .tied_output = hp->tied_output,
                              .n_expert = hp->n_expert, .n_expert_used = hp->n_expert_used,
                              .n_ff_exp = hp->n_ff_exp, .n_ff_shexp = hp->n_ff_shexp};
    return shape;
}

/* Whether blk.N.<suffix> is read by the forward pass of hp, and whether
 * through a matmul, and whether it holds experts (the tensor table of
 * model_check.c decides). */
static bool layer_suffix_used(const strata_hparams *hp, const char *suffix, plan_tensor_input *tensor)
{
    for (size_t i = 0; i < layer_tensor_spec_count; i++) {
        const layer_tensor_spec *spec = &layer_tensor_specs[i];
        if (strcmp(suffix, spec->suffix) == 0 && layer_tensor_present(hp, spec)) {
            tensor->is_matrix = spec->matrix;
            if (spec->ne2 == DIM_EXPERTS) {
                tensor->n_expert = hp->n_expert;
                tensor->experts_used = hp->n_expert_used;
            }
            return true;
        }
    }
    tensor->is_matrix = false;
    return false;
}

strata_status plan_tensor_table(const gguf_file *file, const strata_hparams *hp, plan_tensor_input **out,
                                int64_t *n_out, strata_error *err)
{
    int64_t n = gguf_tensor_count(file);
    plan_tensor_input *tensors = calloc((size_t)(n > 0 ? n : 1), sizeof *tensors);
    if (!tensors)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for %lld tensor descriptions", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor_info *info = gguf_tensor(file, i);
        plan_tensor_input *tensor = &tensors[i];
        tensor->name = info->name;
        tensor->dtype = info->dtype;
        tensor->row_elements = info->ne[0];
        tensor->rows = 1;
        for (int d = 1; d < info->n_dims; d++)
            tensor->rows *= info->ne[d];
        tensor->bytes = info->size_bytes;
        tensor->layer = -1;
        tensor->role = PLAN_ROLE_UNUSED;
        long long layer;
        int consumed = 0;
        if (strcmp(info->name, "token_embd.weight") == 0) {
            tensor->role = PLAN_ROLE_EMBEDDING;
            tensor->is_matrix = true;
        } else if (strcmp(info->name, "output.weight") == 0) {
            tensor->role = PLAN_ROLE_OUTPUT;
            tensor->is_matrix = true;
        } else if (strcmp(info->name, "output_norm.weight") == 0) {
            tensor->role = PLAN_ROLE_OUTPUT_NORM;
        } else if (rope_factor_of(info->name) >= 0) {
            tensor->role = rope_factor_used(hp, rope_factor_of(info->name)) ? PLAN_ROLE_ROPE_FREQS : PLAN_ROLE_UNUSED;
        } else if (sscanf(info->name, "blk.%lld.%n", &layer, &consumed) == 1 && consumed > 0 && layer >= 0 &&
                   layer < hp->n_layer && layer_suffix_used(hp, info->name + consumed, tensor)) {
            tensor->role = PLAN_ROLE_LAYER;
            tensor->layer = layer;
        }
    }
    *out = tensors;
    *n_out = n;
    return STRATA_OK;
}

strata_status plan_model(const gguf_file *file, const strata_hparams *hp, const plan_device_input *devices,
                         int n_devices, const strata_placement_params *params, strata_plan *out, strata_error *err)
{
    plan_tensor_input *tensors = NULL;
    int64_t n_tensors = 0;
    plan_override_input overrides[STRATA_MAX_OVERRIDES];
    if (params->n_overrides > STRATA_MAX_OVERRIDES)
        return strata_fail(err, STRATA_INVALID_INPUT, "more than %d tensor overrides", STRATA_MAX_OVERRIDES);
    for (int o = 0; o < params->n_overrides; o++) {
        int device = -1;
        for (int d = 0; d < n_devices; d++)
            if (strcmp(devices[d].name, params->overrides[o].device) == 0)
                device = d;
        if (device < 0) {
            char names[256];
            size_t used = 0;
            names[0] = '\0';
            for (int d = 0; d < n_devices && used < sizeof names; d++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", d ? "," : "", devices[d].name);
            return strata_fail(err, STRATA_INVALID_INPUT,
                               "override '%s=%s': %s is not among the devices (%s; add it with --device)",
                               params->overrides[o].pattern, params->overrides[o].device, params->overrides[o].device,
                               names);
        }
        overrides[o] = (plan_override_input){.pattern = params->overrides[o].pattern, .device = device};
    }
    for (int c = 0; c < params->n_caps; c++) {
        bool known = false;
        for (int d = 0; d < n_devices; d++)
            known = known || strcmp(devices[d].name, params->caps[c].device) == 0;
        if (!known)
            return strata_fail(err, STRATA_INVALID_INPUT, "--vram %s: %s is not among the devices",
                               params->caps[c].device, params->caps[c].device);
    }
    strata_status status = plan_tensor_table(file, hp, &tensors, &n_tensors, err);
    if (status != STRATA_OK)
        return status;
    int64_t default_ctx = params->n_ctx_default > 0 ? params->n_ctx_default : hp->n_ctx_train;
    if (params->n_ctx_default <= 0 && default_ctx > PLAN_DEFAULT_CTX_CAP)
        default_ctx = PLAN_DEFAULT_CTX_CAP;
    plan_request request = {
        .shape = plan_shape_of(hp),
        .tensors = tensors,
        .n_tensors = n_tensors,
        .devices = devices,
        .n_devices = n_devices,
        .n_ctx = params->n_ctx,
        .n_ctx_default = default_ctx,
        .max_batch = params->max_batch > 0 ? params->max_batch : PLAN_DEFAULT_BATCH,
        .n_sequences = params->n_sequences > 1 ? params->n_sequences : 1,
        .kv_dtype = params->kv_dtype == DTYPE_F16 ? DTYPE_F16 : DTYPE_F32,
        .gpu_layers_set = params->gpu_layers_set,
        .gpu_layers = params->gpu_layers,
        .tensor_split = params->tensor_split,
        .n_tensor_split = params->tensor_split ? params->n_tensor_split : 0,
        .overrides = overrides,
        .n_overrides = params->n_overrides,
        /* --cpu-moe is --n-cpu-moe with every layer */
        .n_cpu_moe_set = params->cpu_moe || params->n_cpu_moe_set,
        .n_cpu_moe = params->cpu_moe ? hp->n_layer : params->n_cpu_moe,
    };
    /* a batch never exceeds the context */
    int64_t ctx_for_batch = request.n_ctx > 0 ? request.n_ctx : request.n_ctx_default;
    if (request.max_batch > ctx_for_batch)
        request.max_batch = ctx_for_batch;
    status = planner_run(&request, out, err);
    free(tensors);
    return status;
}

strata_status strata_plan_file(const char *path, const strata_placement_params *params, strata_plan **out,
                               strata_error *err)
{
    *out = NULL;
    strata_placement_params defaults = strata_placement_default_params();
    if (!params)
        params = &defaults;
    gguf_file *file = NULL;
    open_device opened[STRATA_MAX_DEVICES];
    int n_opened = 0;
    plan_device_input devices[STRATA_MAX_DEVICES];
    int n_devices = 0;
    strata_plan *plan = calloc(1, sizeof *plan);
    strata_hparams hp;
    strata_status status = plan ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status == STRATA_OK)
        status = gguf_open(path, &file, err);
    if (status == STRATA_OK)
        status = hparams_read(file, &hp, err);
    if (status != STRATA_OK)
        goto done;
    if (params->n_specs > 0) {
        if (params->n_specs > STRATA_MAX_DEVICES) {
            status = strata_fail(err, STRATA_INVALID_INPUT, "more than %d device specs", STRATA_MAX_DEVICES);
            goto done;
        }
        if ((status = devices_from_specs(params->specs, params->n_specs, params->caps, params->n_caps, devices,
                                         err)) != STRATA_OK)
            goto done;
        n_devices = params->n_specs;
    } else {
        backend_options options = {0};
        if ((status = devices_open(params->devices, &options, opened, &n_opened, err)) != STRATA_OK)
            goto done;
        for (int d = 0; d < n_opened; d++) {
            devices_describe(&opened[d], params->caps, params->n_caps, &devices[d]);
            if (params->measure && (status = devices_measure(&opened[d], 0, &devices[d], err)) != STRATA_OK)
                goto done;
        }
        n_devices = n_opened;
    }
    if ((status = plan_model(file, &hp, devices, n_devices, params, plan, err)) != STRATA_OK)
        goto done;
    for (int d = 0; d < n_opened; d++)
        snprintf(plan->devices[d].description, sizeof plan->devices[d].description, "%s", opened[d].info.name);
    for (int d = 0; d < params->n_specs; d++)
        snprintf(plan->devices[d].description, sizeof plan->devices[d].description, "specified");
    *out = plan;
    plan = NULL;
done:
    devices_close(opened, n_opened);
    gguf_close(file);
    strata_plan_free(plan);
    return status;
}

void strata_plan_free(strata_plan *plan)
{
    if (!plan)
        return;
    planner_result_release(plan);
    free(plan);
}
