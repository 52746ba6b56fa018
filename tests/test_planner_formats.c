/* The planner and the weight formats a device does not compute
 * (runtime/planner.c, plan_device_input.weight_dtype_supported): llama3-70b
 * at iq2_xs_mix and iq2_xs, written header-only by synth and planned by
 * plan_model (what strata plan and strata run use) over hypothetical
 * devices whose card refuses the low-bit formats, as a backend without
 * kernels for them does (the CUDA backend computes them since
 * kernels/quant_unpack_lowbit.h; test_plan_cli.sh plans this model with
 * the real registrations).
 *
 * - Keeping weights on the CPU for their dtype is planned exactly as
 *   overriding the same tensors to the CPU (-ot) is: the same device for
 *   every tensor, the same memory per device, hand-offs and prediction.
 *   test_planner checks override plans against its own accounting and a
 *   brute force over every placement.
 * - The output goes only to a device that computes it: pure iq2_xs makes
 *   its logits on the CPU.
 * - When a card computes nothing of a layer's big matrices, running the
 *   layer there costs more than it saves: every layer goes to the CPU.
 * - Without the CPU, or with an override that sends a refused weight to the
 *   card, the plan does not fit and says which weight has no device.
 * - A device whose backend is not built in is assumed to compute every
 *   format, and the note says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "plan_model.h"
#include "test_check.h"
#include "test_temp.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

static char temp_dir[512];

/* A backend that computes every weight dtype but the low-bit ones. */
static bool without_low_bit(strata_dtype dtype)
{
    switch (dtype) {
    case DTYPE_IQ2_XXS: case DTYPE_IQ2_XS: case DTYPE_IQ2_S: case DTYPE_IQ3_XXS: case DTYPE_IQ3_S:
    case DTYPE_IQ1_S: case DTYPE_IQ1_M: case DTYPE_IQ4_NL: case DTYPE_IQ4_XS: case DTYPE_MXFP4:
    case DTYPE_TQ1_0: case DTYPE_TQ2_0:
        return false;
    default:
        return true;
    }
}

/* A 24 GiB card at 1008 GB/s and 64 GiB of host RAM at 60 GB/s (the budgets
 * keep devices.c's margins: 512 MiB and 1 GiB). */
static void make_devices(plan_device_input devices[2], bool (*card_computes)(strata_dtype))
{
    memset(devices, 0, 2 * sizeof *devices);
    snprintf(devices[0].name, sizeof devices[0].name, "cuda0");
    devices[0].kind = DEVICE_KIND_CUDA;
    devices[0].total_bytes = 24ull << 30;
    devices[0].budget_bytes = devices[0].total_bytes - (512ull << 20);
    devices[0].read_bandwidth = 1008e9;
    devices[0].matmul_flops = 165e12;
    devices[0].link_bandwidth = 25e9;
    devices[0].weight_dtype_supported = card_computes;
    snprintf(devices[1].name, sizeof devices[1].name, "cpu");
    devices[1].kind = DEVICE_KIND_CPU;
    devices[1].total_bytes = 64ull << 30;
    devices[1].budget_bytes = devices[1].total_bytes - (1ull << 30);
    devices[1].read_bandwidth = 60e9;
    devices[1].matmul_flops = 1e12;
    for (int d = 0; d < 2; d++)
        devices[d].alignment = 256;
}

typedef struct test_file {
    char path[600];
    gguf_file *file;
    strata_hparams hp;
} test_file;

static bool open_model(const char *type, test_file *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s/llama3-70b-%s.gguf", temp_dir, type);
    strata_synth_params synth = {.preset = "llama3-70b", .type = type, .seed = 1, .output_path = m->path,
                                 .header_only = true};
    strata_error err = {0};
    if (strata_synth(&synth, &err) != STRATA_OK || gguf_open(m->path, &m->file, &err) != STRATA_OK ||
        hparams_read(m->file, &m->hp, &err) != STRATA_OK) {
        CHECK(false, "llama3-70b %s: %s", type, err.message);
        return false;
    }
    return true;
}

static void close_model(test_file *m)
{
    if (m->file)
        gguf_close(m->file);
    remove(m->path);
}

/* Plans m over devices; gpu_layers >= 0 fixes the GPU layers (-ngl). */
static bool plan(const test_file *m, const plan_device_input *devices, int n_devices,
                 const strata_tensor_override *overrides, int n_overrides, int64_t gpu_layers, strata_plan *out)
{
    strata_placement_params params = strata_placement_default_params();
    params.gpu_layers_set = gpu_layers >= 0;
    params.gpu_layers = gpu_layers;
    params.overrides = overrides;
    params.n_overrides = n_overrides;
    strata_error err = {0};
    memset(out, 0, sizeof *out);
    strata_status status = plan_model(m->file, &m->hp, devices, n_devices, &params, out, &err);
    CHECK(status == STRATA_OK, "plan_model: %s", err.message);
    return status == STRATA_OK;
}

/* Whether tensor t of the plan is a matrix of a low-bit format. */
static bool is_low_bit(const test_file *m, const strata_plan *p, int64_t t)
{
    const gguf_tensor_info *info = gguf_find_tensor(m->file, p->tensors[t].name);
    return info && info->n_dims == 2 && !without_low_bit(info->dtype);
}

/* kept (the card refuses low-bit weights) and overridden (the card computes
 * everything, an -ot sends exactly those weights to the CPU) are one plan. */
static void expect_same_plan(const char *what, const strata_plan *kept, const strata_plan *overridden)
{
    CHECK(kept->fits == overridden->fits && kept->n_ctx == overridden->n_ctx &&
              kept->output_device == overridden->output_device && kept->n_handoffs == overridden->n_handoffs &&
              kept->n_tensors == overridden->n_tensors,
          "%s: fits %d/%d, n_ctx %lld/%lld, output %d/%d, hand-offs %d/%d", what, kept->fits, overridden->fits,
          (long long)kept->n_ctx, (long long)overridden->n_ctx, kept->output_device, overridden->output_device,
          kept->n_handoffs, overridden->n_handoffs);
    CHECK(kept->tg_tokens_per_s == overridden->tg_tokens_per_s, "%s: predicted tg %.6f, with the override %.6f",
          what, kept->tg_tokens_per_s, overridden->tg_tokens_per_s);
    for (int d = 0; d < kept->n_devices; d++) {
        const strata_plan_device *a = &kept->devices[d], *b = &overridden->devices[d];
        CHECK(a->weights_bytes == b->weights_bytes && a->kv_bytes == b->kv_bytes &&
                  a->scratch_bytes == b->scratch_bytes && a->n_layers == b->n_layers &&
                  a->first_layer == b->first_layer,
              "%s: %s holds %llu weight bytes and %lld layers, with the override %llu and %lld", what, a->name,
              (unsigned long long)a->weights_bytes, (long long)a->n_layers, (unsigned long long)b->weights_bytes,
              (long long)b->n_layers);
    }
    int differ = 0;
    for (int64_t t = 0; t < kept->n_tensors && t < overridden->n_tensors; t++)
        differ += kept->tensors[t].device != overridden->tensors[t].device || kept->tensors[t].overridden;
    CHECK(differ == 0, "%s: %d tensors placed differently (or marked overridden)", what, differ);
}

static void test_mix(void)
{
    test_file m;
    if (!open_model("iq2_xs_mix", &m))
        goto done;
    plan_device_input devices[2];
    strata_plan kept, overridden;
    make_devices(devices, without_low_bit);
    /* -ngl 80, so that the override plan below (which keeps as many layers
     * on the card as fit) and this one have the same layers to compare */
    if (!plan(&m, devices, 2, NULL, 0, 80, &kept))
        goto done;
    int64_t n_kept = 0, misplaced = 0;
    for (int64_t t = 0; t < kept.n_tensors; t++) {
        if (!is_low_bit(&m, &kept, t))
            continue;
        n_kept++;
        misplaced += kept.tensors[t].device != 1;
    }
    /* attn_q, attn_k, attn_output, ffn_gate, ffn_up of every layer and
     * ffn_down from layer 10 on are iq2_xs in llama.cpp's IQ2_XS recipe */
    CHECK(n_kept == 80 * 5 + 70 && misplaced == 0, "iq2_xs_mix: %lld iq2_xs matrices, %lld not on the CPU",
          (long long)n_kept, (long long)misplaced);
    CHECK(kept.fits && kept.devices[0].n_layers == 80 && kept.output_device == 0 &&
              strstr(kept.note, "cuda0 does not compute iq2_xs: 470 of its layers' weights"),
          "iq2_xs_mix: fits %d, %lld layers on cuda0, output on %d, note '%s'", kept.fits,
          (long long)kept.devices[0].n_layers, kept.output_device, kept.note);
    printf("iq2_xs_mix -ngl 80, cuda0 without low-bit formats: %lld layers on cuda0, %.2f GiB of weights on the CPU, "
           "%.2f t/s\n",
           (long long)kept.devices[0].n_layers, (double)kept.devices[1].weights_bytes / GIB, kept.tg_tokens_per_s);

    /* the same tensors overridden to the CPU on a card that computes them */
    make_devices(devices, NULL);
    static const strata_tensor_override to_cpu[] = {
        {.pattern = "(attn_q|attn_k|attn_output|ffn_gate|ffn_up)\\.weight|blk\\.[1-7][0-9]\\.ffn_down",
         .device = "cpu"}};
    if (plan(&m, devices, 2, to_cpu, 1, 80, &overridden)) {
        expect_same_plan("iq2_xs_mix kept vs -ot", &kept, &overridden);
        CHECK(!strstr(overridden.note, "does not compute"), "a card that computes everything: note '%s'",
              overridden.note);
        planner_result_release(&overridden);
    }
    /* left to itself the planner takes the faster of every layer count:
     * here all layers on the CPU, where the detours cost more than the card's
     * share of the reads saves */
    strata_plan chosen;
    make_devices(devices, without_low_bit);
    if (plan(&m, devices, 2, NULL, 0, -1, &chosen)) {
        CHECK(chosen.fits && chosen.tg_tokens_per_s >= kept.tg_tokens_per_s &&
                  strstr(chosen.note, "cuda0 does not compute iq2_xs"),
              "iq2_xs_mix without -ngl: fits %d, %.3f t/s against %.3f with 80 GPU layers, note '%s'", chosen.fits,
              chosen.tg_tokens_per_s, kept.tg_tokens_per_s, chosen.note);
        printf("iq2_xs_mix, the planner's choice: %lld layers on cuda0, %.2f t/s\n",
               (long long)chosen.devices[0].n_layers, chosen.tg_tokens_per_s);
        planner_result_release(&chosen);
    }
    planner_result_release(&kept);

    /* without the CPU the iq2_xs weights have nowhere to go */
    make_devices(devices, without_low_bit);
    if (plan(&m, devices, 1, NULL, 0, -1, &kept)) {
        CHECK(!kept.fits && strstr(kept.shortfall, "cuda0 does not compute iq2_xs weights") &&
                  strstr(kept.shortfall, "no CPU is listed"),
              "iq2_xs_mix on cuda0 alone: fits %d (%s)", kept.fits, kept.shortfall);
        planner_result_release(&kept);
    }
    /* nor does an override that sends one to the card */
    static const strata_tensor_override to_card[] = {{.pattern = "blk\\.40\\.ffn_up", .device = "cuda0"}};
    if (plan(&m, devices, 2, to_card, 1, -1, &kept)) {
        CHECK(!kept.fits && strstr(kept.shortfall, "where an override puts it"),
              "an iq2_xs weight overridden onto cuda0: fits %d (%s)", kept.fits, kept.shortfall);
        planner_result_release(&kept);
    }
done:
    close_model(&m);
}

static void test_pure(void)
{
    test_file m;
    if (!open_model("iq2_xs", &m))
        goto done;
    plan_device_input devices[2];
    strata_plan p;
    /* every matrix refused: the layers, the output and its logits on the CPU */
    make_devices(devices, without_low_bit);
    if (plan(&m, devices, 2, NULL, 0, -1, &p)) {
        int64_t on_card = 0;
        for (int64_t t = 0; t < p.n_tensors; t++)
            on_card += is_low_bit(&m, &p, t) && p.tensors[t].device == 0;
        CHECK(p.fits && on_card == 0 && p.output_device == 1 && p.devices[1].n_layers == 80 && p.n_handoffs == 0 &&
                  strstr(p.note, "cuda0 does not compute iq2_xs: the layers with those weights are faster"),
              "iq2_xs, cuda0 without low-bit formats: fits %d, %lld on the card, output on %d, %lld CPU layers, "
              "%d hand-offs, note '%s'", p.fits, (long long)on_card, p.output_device,
              (long long)p.devices[1].n_layers, p.n_handoffs, p.note);
        printf("iq2_xs, cuda0 without low-bit formats: %lld layers on the CPU, %.1f t/s\n",
               (long long)p.devices[1].n_layers, p.tg_tokens_per_s);
        planner_result_release(&p);
    }
    /* -ngl 80 keeps the layers on the card anyway: then 560 detours */
    strata_placement_params params = strata_placement_default_params();
    params.gpu_layers_set = true;
    params.gpu_layers = 80;
    strata_error err = {0};
    if (plan_model(m.file, &m.hp, devices, 2, &params, &p, &err) == STRATA_OK) {
        CHECK(p.fits && p.devices[0].n_layers == 80 && p.n_handoffs == 2 + 2 * 560 &&
                  strstr(p.note, "560 of its layers' weights"),
              "iq2_xs -ngl 80: fits %d, %lld layers on cuda0, %d hand-offs, note '%s'", p.fits,
              (long long)p.devices[0].n_layers, p.n_handoffs, p.note);
        planner_result_release(&p);
    }
    /* a card whose backend is not built in: assumed to compute every format */
    make_devices(devices, NULL);
    devices[0].backend_missing = true;
    if (plan(&m, devices, 2, NULL, 0, -1, &p)) {
        CHECK(p.fits && p.devices[0].n_layers == 80 && p.output_device == 0 &&
                  p.devices[0].kv_bytes == 80ull * 2 * 4096 * 8 * 128 * 2 &&
                  strstr(p.note, "built without the backend of cuda0"),
              "iq2_xs on an unknown backend: fits %d, %lld layers on cuda0, note '%s'", p.fits,
              (long long)p.devices[0].n_layers, p.note);
        printf("iq2_xs, cuda0 of a backend not built in: %lld layers and the 4096-position KV cache on cuda0, "
               "%.2f of %.2f GiB, %.1f t/s\n",
               (long long)p.devices[0].n_layers, (double)p.devices[0].planned_bytes / GIB,
               (double)p.devices[0].budget_bytes / GIB, p.tg_tokens_per_s);
        planner_result_release(&p);
    }
done:
    close_model(&m);
}

int main(void)
{
    if (!test_make_temp_dir(temp_dir, sizeof temp_dir, "strata_planner_formats")) {
        fprintf(stderr, "test_planner_formats: cannot create a temporary directory\n");
        return 1;
    }
    test_mix();
    test_pure();
    rmdir(temp_dir);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("planner formats: all checks passed\n");
    return 0;
}
