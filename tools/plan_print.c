/* Printing a placement plan (see plan_print.h). */
#include "plan_print.h"

#include <string.h>

#include "units.h"


static const char *device_name(const strata_plan *plan, int device)
{
    if (device == -2)
        return "every device with layers";
    if (device < 0 || device >= plan->n_devices)
        return "-";
    return plan->devices[device].name;
}

static void layer_range(const strata_plan_device *device, char *buf, size_t size)
{
    if (device->n_layers <= 0)
        snprintf(buf, size, "-");
    else if (device->n_layers == 1)
        snprintf(buf, size, "%lld", (long long)device->first_layer);
    else
        snprintf(buf, size, "%lld-%lld", (long long)device->first_layer,
                 (long long)(device->first_layer + device->n_layers - 1));
}

void plan_print_markdown(FILE *out, const strata_plan *plan, bool with_tensors)
{
    fprintf(out, "| device | layers | also | weights | KV cache | scratch | total | budget |\n");
    fprintf(out, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (int d = 0; d < plan->n_devices; d++) {
        const strata_plan_device *device = &plan->devices[d];
        char layers[48], also[48];
        layer_range(device, layers, sizeof layers);
        snprintf(also, sizeof also, "%s%s%s", device->holds_output ? "output" : "",
                 device->holds_output && device->holds_embedding ? ", " : "",
                 device->holds_embedding ? "embedding" : "");
        char weights[24], kv[24], scratch[24], total[24], budget[24];
        fprintf(out, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", device->name, layers, also[0] ? also : "-",
                units_format_bytes(device->weights_bytes, weights, sizeof weights),
                units_format_bytes(device->kv_bytes, kv, sizeof kv),
                units_format_bytes(device->scratch_bytes, scratch, sizeof scratch),
                units_format_bytes(device->planned_bytes, total, sizeof total),
                units_format_bytes(device->budget_bytes, budget, sizeof budget));
    }
    fprintf(out, "\ncontext %lld positions, KV %s, batches of %lld tokens", (long long)plan->n_ctx,
            plan->kv_dtype == DTYPE_F32 ? "f32" : "f16", (long long)plan->max_batch);
    fprintf(out, "; a decoded token crosses %d device boundar%s\n", plan->n_handoffs,
            plan->n_handoffs == 1 ? "y" : "ies");
    if (plan->note[0])
        fprintf(out, "note: %s\n", plan->note);
    int overridden = 0;
    for (int64_t t = 0; t < plan->n_tensors; t++)
        overridden += plan->tensors[t].overridden;
    if (overridden) {
        fprintf(out, "overrides: %d tensor%s placed by -ot:", overridden, overridden == 1 ? "" : "s");
        int shown = 0;
        for (int64_t t = 0; t < plan->n_tensors && shown < 8; t++)
            if (plan->tensors[t].overridden) {
                fprintf(out, "%s %s -> %s", shown ? "," : "", plan->tensors[t].name,
                        device_name(plan, plan->tensors[t].device));
                shown++;
            }
        fprintf(out, "%s\n", overridden > shown ? ", ..." : "");
    }
    if (!plan->fits) {
        fprintf(out, "%s\n", plan->shortfall);
    } else if (plan->tg_tokens_per_s <= 0 && plan->pp_tokens_per_s <= 0) {
        fprintf(out, "predicted speed: devices not measured (`strata plan` measures them)\n");
    } else {
        if (plan->tg_tokens_per_s > 0)
            fprintf(out, "predicted decode: %.1f tokens/s (bound: %s)\n", plan->tg_tokens_per_s, plan->tg_bound);
        else
            fprintf(out, "predicted decode: %s\n", plan->tg_bound);
        if (plan->pp_tokens_per_s > 0)
            fprintf(out, "predicted prompt processing: %.0f tokens/s (bound: %s)\n", plan->pp_tokens_per_s,
                    plan->pp_bound);
        else
            fprintf(out, "predicted prompt processing: %s\n", plan->pp_bound);
    }
    if (with_tensors) {
        fprintf(out, "\n| tensor | device | bytes |\n| --- | --- | ---: |\n");
        for (int64_t t = 0; t < plan->n_tensors; t++)
            fprintf(out, "| %s | %s%s | %llu |\n", plan->tensors[t].name, device_name(plan, plan->tensors[t].device),
                    plan->tensors[t].overridden ? " (-ot)" : "", (unsigned long long)plan->tensors[t].bytes);
    }
}

static void json_string(FILE *out, const char *text)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

void plan_print_json(FILE *out, const strata_plan *plan)
{
    fprintf(out, "{\n  \"fits\": %s,\n  \"shortfall\": ", plan->fits ? "true" : "false");
    json_string(out, plan->fits ? "" : plan->shortfall);
    fprintf(out, ",\n  \"note\": ");
    json_string(out, plan->note);
    fprintf(out, ",\n  \"n_ctx\": %lld,\n  \"kv_type\": \"%s\",\n  \"batch\": %lld,\n  \"handoffs_per_token\": %d,\n",
            (long long)plan->n_ctx, plan->kv_dtype == DTYPE_F32 ? "f32" : "f16", (long long)plan->max_batch,
            plan->n_handoffs);
    fprintf(out, "  \"n_cpu_moe\": %lld,\n  \"n_cpu_moe_chosen\": %s,\n", (long long)plan->n_cpu_moe,
            plan->n_cpu_moe_chosen ? "true" : "false");
    fprintf(out, "  \"devices\": [\n");
    for (int d = 0; d < plan->n_devices; d++) {
        const strata_plan_device *device = &plan->devices[d];
        fprintf(out, "    {\"name\": ");
        json_string(out, device->name);
        fprintf(out, ", \"description\": ");
        json_string(out, device->description);
        fprintf(out,
                ", \"budget_bytes\": %llu, \"weights_bytes\": %llu, \"kv_bytes\": %llu, \"scratch_bytes\": %llu, "
                "\"workspace_bytes\": %llu, \"total_bytes\": %llu, \"first_layer\": %lld, \"n_layers\": %lld, "
                "\"holds_output\": %s, \"holds_embedding\": %s, \"bandwidth_bytes_per_s\": %.0f, "
                "\"matmul_flops\": %.0f, \"link_bytes_per_s\": %.0f, \"decode_bytes_per_token\": %.0f}%s\n",
                (unsigned long long)device->budget_bytes, (unsigned long long)device->weights_bytes,
                (unsigned long long)device->kv_bytes, (unsigned long long)device->scratch_bytes,
                (unsigned long long)device->workspace_bytes, (unsigned long long)device->planned_bytes,
                (long long)device->first_layer, (long long)device->n_layers, device->holds_output ? "true" : "false",
                device->holds_embedding ? "true" : "false", device->read_bandwidth, device->matmul_flops,
                device->link_bandwidth, device->decode_bytes, d + 1 < plan->n_devices ? "," : "");
    }
    fprintf(out, "  ],\n  \"layers\": [");
    for (int64_t l = 0; l < plan->n_layer; l++) {
        fprintf(out, "%s\n    {\"index\": %lld, \"device\": ", l ? "," : "", (long long)l);
        json_string(out, device_name(plan, plan->layer_device[l]));
        fputc('}', out);
    }
    fprintf(out, "\n  ],\n  \"tensors\": [");
    for (int64_t t = 0; t < plan->n_tensors; t++) {
        fprintf(out, "%s\n    {\"name\": ", t ? "," : "");
        json_string(out, plan->tensors[t].name);
        fprintf(out, ", \"device\": ");
        json_string(out, plan->tensors[t].device == -2 ? "*" : device_name(plan, plan->tensors[t].device));
        fprintf(out, ", \"bytes\": %llu, \"overridden\": %s}", (unsigned long long)plan->tensors[t].bytes,
                plan->tensors[t].overridden ? "true" : "false");
    }
    fprintf(out, "\n  ],\n  \"predicted\": {\"tg_tokens_per_s\": ");
    if (plan->fits && plan->tg_tokens_per_s > 0)
        fprintf(out, "%.3f", plan->tg_tokens_per_s);
    else
        fprintf(out, "null");
    fprintf(out, ", \"pp_tokens_per_s\": ");
    if (plan->fits && plan->pp_tokens_per_s > 0)
        fprintf(out, "%.3f", plan->pp_tokens_per_s);
    else
        fprintf(out, "null");
    fprintf(out, ", \"whole_layers_tg_tokens_per_s\": ");
    if (plan->fits && plan->whole_layers_tg_tokens_per_s > 0)
        fprintf(out, "%.3f, \"whole_layers_gpu_layers\": %lld", plan->whole_layers_tg_tokens_per_s,
                (long long)plan->whole_layers_gpu_layers);
    else
        fprintf(out, "null, \"whole_layers_gpu_layers\": null");
    fprintf(out, ", \"tg_bound\": ");
    json_string(out, plan->tg_bound);
    fprintf(out, ", \"pp_bound\": ");
    json_string(out, plan->pp_bound);
    fprintf(out, "}\n}\n");
}
