/* A model split across devices gives the single-device logits.
 *
 * Every architecture x a few weight types of the tiny synthetic preset (and
 * the bundled stories260K with its five layers) is placed on "vulkan0,cpu"
 * with 0, 1, half and all of its layers on Vulkan, on "cpu,vulkan0" (the
 * output on the CPU, the first layers on Vulkan), and with -ot overrides
 * that send single tensors of Vulkan's layers back to the CPU (the FFN down
 * projections, the Q projections, the output norm). Each placement decodes
 * the prompt as one batch (f32 cache) and one token at a time (f16 cache),
 * and every row of logits is compared with the independent double-precision
 * reference under the bounds of test_e2e_logits.c: the CPU's share of the
 * work rounds activations to 8 bits, Vulkan's does not, so a mix stays
 * within the CPU's bound.
 *
 * Models in the low-bit formats (IQ*, MXFP4, TQ*) are placed on
 * "vulkan0,cpu" with all and with half of their layers on Vulkan: the
 * layers' low-bit weights go to Vulkan with the rest of their layer, and the
 * logits match the reference.
 *
 * Also checked: where no override sends activations on detours, a decoded
 * token crosses exactly the device boundaries the plan counts (one
 * hand-off each); a --vram cap below the model's size makes the planner move
 * layers to the CPU, and the peak counted on the capped device stays within
 * the cap and within the plan's figure.
 *
 * Runs on Mesa's lavapipe in CI; skips (exit 77, saying why) when Vulkan is
 * not built in or has no device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "gguf.h"
#include "e2e_common.h"
#include "test_temp.h"
#include "strata.h"

static int failures;

static void check(bool ok, const char *what)
{
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    }
}

/* One placement of one model: logits against the reference, budgets kept,
 * and (without overrides) the hand-offs the plan counts. */
static void check_placement(const char *path, const char *label, const char *devices, bool gpu_layers_set,
                            int64_t gpu_layers, const strata_tensor_override *overrides, int n_overrides,
                            const int32_t *tokens, int64_t n_tokens, double nmse_max)
{
    strata_model_params params = {.path = path};
    params.placement = strata_placement_default_params();
    params.placement.devices = devices;
    params.placement.gpu_layers_set = gpu_layers_set;
    params.placement.gpu_layers = gpu_layers;
    params.placement.overrides = overrides;
    params.placement.n_overrides = n_overrides;
    params.placement.n_ctx = 64;
    params.placement.kv_dtype = DTYPE_F32; /* the batch pass uses an f32 cache */
    e2e_placement_report report;
    if (!e2e_check_model_placed(&params, label, tokens, n_tokens, nmse_max, &report)) {
        failures++;
        return;
    }
    char what[320];
    snprintf(what, sizeof what, "%s: a device's counted peak passed its budget", label);
    check(report.within_budget, what);
    snprintf(what, sizeof what, "%s: a device's counted peak passed the plan's figure", label);
    check(report.within_plan, what);
    if (n_overrides == 0)
        check(e2e_check_handoffs(&params, label, tokens, n_tokens, false), label);
}

/* The splits of one model with n_layer layers. */
static void check_splits(const char *path, const char *name, int64_t n_layer, const int32_t *tokens,
                         int64_t n_tokens, double nmse_max)
{
    char label[96];
    int64_t counts[] = {0, 1, n_layer / 2, n_layer};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        if (i > 0 && counts[i] == counts[i - 1])
            continue;
        snprintf(label, sizeof label, "%s vulkan0,cpu -ngl %lld", name, (long long)counts[i]);
        check_placement(path, label, "vulkan0,cpu", true, counts[i], NULL, 0, tokens, n_tokens, nmse_max);
    }
    snprintf(label, sizeof label, "%s cpu,vulkan0 -ngl 1", name);
    check_placement(path, label, "cpu,vulkan0", true, 1, NULL, 0, tokens, n_tokens, nmse_max);

    static const strata_tensor_override ffn_down[] = {{.pattern = "ffn_down", .device = "cpu"}};
    static const strata_tensor_override mixed[] = {{.pattern = "^blk\\.0\\.attn_q\\.", .device = "cpu"},
                                                   {.pattern = "output_norm", .device = "cpu"}};
    snprintf(label, sizeof label, "%s all on vulkan0, -ot ffn_down=cpu", name);
    check_placement(path, label, "vulkan0,cpu", true, n_layer, ffn_down, 1, tokens, n_tokens, nmse_max);
    snprintf(label, sizeof label, "%s -ot attn_q,output_norm=cpu", name);
    check_placement(path, label, "vulkan0,cpu", false, 0, mixed, 2, tokens, n_tokens, nmse_max);
}

/* A cap below the model's size on vulkan0: some layers go to the CPU, the
 * counted peak on vulkan0 stays within the cap, the logits stay right. */
static void check_cap(const char *path, const int32_t *tokens, int64_t n_tokens, double nmse_max)
{
    strata_plan *plan = NULL;
    strata_error err = {0};
    strata_placement_params placement = strata_placement_default_params();
    placement.devices = "vulkan0,cpu";
    placement.n_ctx = 64;
    placement.kv_dtype = DTYPE_F32;
    if (strata_plan_file(path, &placement, &plan, &err) != STRATA_OK) {
        printf("FAIL: planning stories260K: %s\n", err.message);
        failures++;
        return;
    }
    uint64_t uncapped = plan->devices[0].planned_bytes;
    int64_t uncapped_layers = plan->devices[0].n_layers;
    strata_plan_free(plan);
    /* room for the output, scratch and about half the layers */
    strata_device_cap cap = {.device = "vulkan0", .bytes = uncapped * 3 / 4};
    strata_model_params params = {.path = path};
    params.placement = placement;
    params.placement.caps = &cap;
    params.placement.n_caps = 1;
    e2e_placement_report report;
    char label[96];
    snprintf(label, sizeof label, "stories260K --vram vulkan0=%lluK", (unsigned long long)(cap.bytes >> 10));
    if (!e2e_check_model_placed(&params, label, tokens, n_tokens, nmse_max, &report)) {
        failures++;
        return;
    }
    if (strata_plan_file(path, &params.placement, &plan, &err) != STRATA_OK) {
        printf("FAIL: planning with the cap: %s\n", err.message);
        failures++;
        return;
    }
    char what[200];
    snprintf(what, sizeof what, "the cap left %lld of %lld layers on vulkan0", (long long)plan->devices[0].n_layers,
             (long long)uncapped_layers);
    check(plan->devices[0].n_layers > 0 && plan->devices[0].n_layers < uncapped_layers, what);
    printf("%-32s vulkan0 peak %llu bytes, cap %llu, layers %lld of %lld\n", label,
           (unsigned long long)report.peak_bytes[0], (unsigned long long)cap.bytes,
           (long long)plan->devices[0].n_layers, (long long)uncapped_layers);
    snprintf(what, sizeof what, "vulkan0 peak %llu bytes passed the cap %llu", (unsigned long long)report.peak_bytes[0],
             (unsigned long long)cap.bytes);
    check(report.peak_bytes[0] <= cap.bytes, what);
    strata_plan_free(plan);
}

/* Whether dtype is a low-bit format (IQ*, MXFP4, TQ*). */
static bool is_low_bit(strata_dtype dtype)
{
    switch (dtype) {
    case DTYPE_IQ2_XXS: case DTYPE_IQ2_XS: case DTYPE_IQ2_S: case DTYPE_IQ3_XXS: case DTYPE_IQ3_S:
    case DTYPE_IQ1_S: case DTYPE_IQ1_M: case DTYPE_IQ4_NL: case DTYPE_IQ4_XS: case DTYPE_MXFP4:
    case DTYPE_TQ1_0: case DTYPE_TQ2_0:
        return true;
    default:
        return false;
    }
}

/* A low-bit model on vulkan0,cpu: with both layers on vulkan0 every low-bit
 * weight of the layers is placed there (Vulkan computes these formats, so
 * the planner has no reason to keep them in host RAM), and the logits match
 * the reference with both layers, and with one layer, on vulkan0. */
static void check_low_bit(const char *dir, const char *arch, const char *type)
{
    char path[512], label[96], what[1024];
    snprintf(path, sizeof path, "%s/%s-%s.gguf", dir, arch, type);
    snprintf(label, sizeof label, "%s/%s vulkan0,cpu", arch, type);
    strata_error err = {0};
    strata_synth_params synth = {.arch = arch, .preset = "tiny", .type = type, .seed = 1, .output_path = path};
    if (strata_synth(&synth, &err) != STRATA_OK) {
        printf("FAIL: synth %s: %s\n", label, err.message);
        failures++;
        return;
    }
    double bound = 0;
    for (size_t b = 0; b < e2e_lowbit_type_bound_count; b++)
        if (strcmp(e2e_lowbit_type_bounds[b].type, type) == 0)
            bound = e2e_lowbit_type_bounds[b].nmse_max;
    strata_placement_params placement = strata_placement_default_params();
    placement.devices = "vulkan0,cpu";
    placement.gpu_layers_set = true;
    placement.gpu_layers = 2;
    placement.n_ctx = 64;
    placement.kv_dtype = DTYPE_F32;
    strata_plan *plan = NULL;
    gguf_file *file = NULL;
    if (strata_plan_file(path, &placement, &plan, &err) != STRATA_OK || gguf_open(path, &file, &err) != STRATA_OK) {
        printf("FAIL: %s: %s\n", label, err.message);
        failures++;
        goto done;
    }
    int low_bit = 0, misplaced = 0;
    for (int64_t t = 0; t < plan->n_tensors; t++) {
        const gguf_tensor_info *info = gguf_find_tensor(file, plan->tensors[t].name);
        if (!info || plan->tensors[t].device < 0 || strncmp(plan->tensors[t].name, "blk.", 4) != 0 ||
            !is_low_bit(info->dtype))
            continue;
        low_bit++;
        misplaced += strcmp(plan->devices[plan->tensors[t].device].name, "vulkan0") != 0;
    }
    snprintf(what, sizeof what, "%s: %d of the layers' %d low-bit weights are not on vulkan0", label, misplaced,
             low_bit);
    check(low_bit > 0 && misplaced == 0, what);
    snprintf(what, sizeof what, "%s: %lld layers on vulkan0, the note '%s'", label,
             (long long)plan->devices[0].n_layers, plan->note);
    check(plan->devices[0].n_layers == 2 && !strstr(plan->note, "does not compute"), what);
    printf("%-32s %d low-bit weights of the layers on vulkan0\n", label, low_bit);
    snprintf(label, sizeof label, "%s/%s vulkan0,cpu -ngl 2", arch, type);
    check_placement(path, label, "vulkan0,cpu", true, 2, NULL, 0, e2e_byte_prompt, e2e_byte_prompt_len, bound);
    snprintf(label, sizeof label, "%s/%s vulkan0,cpu -ngl 1", arch, type);
    check_placement(path, label, "vulkan0,cpu", true, 1, NULL, 0, e2e_byte_prompt, e2e_byte_prompt_len, bound);
done:
    if (file)
        gguf_close(file);
    strata_plan_free(plan);
    unlink(path);
}

int main(void)
{
    if (!backend_find("vulkan")) {
        printf("skipped: Vulkan was not built into this strata\n");
        return 77;
    }
    strata_error err = {0};
    if (backend_find("vulkan")->device_count(&err) <= 0) {
        printf("skipped: no Vulkan device (%s)\n", err.message);
        return 77;
    }
    char dir[256];
    if (!test_make_temp_dir(dir, sizeof dir, "strata_split")) {
        printf("FAIL: cannot make a temporary directory\n");
        return 1;
    }
    printf("%-32s %12s %12s %13s %13s %10s\n", "placement", "batch nmse", "1-by-1 nmse", "batch argmax",
           "1-by-1 argmax", "bound");
    static const char *const types[] = {"f32", "q4_k_m"};
    for (int a = 0; a < E2E_ARCH_COUNT; a++) {
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            char path[512], name[64];
            snprintf(path, sizeof path, "%s/%s-%s.gguf", dir, e2e_archs[a], types[t]);
            snprintf(name, sizeof name, "%s/%s", e2e_archs[a], types[t]);
            strata_synth_params synth = {.arch = e2e_archs[a], .preset = "tiny", .type = types[t], .seed = 1,
                                         .output_path = path};
            if (strata_synth(&synth, &err) != STRATA_OK) {
                printf("FAIL: synth %s: %s\n", name, err.message);
                failures++;
                continue;
            }
            double bound = 0;
            for (size_t b = 0; b < e2e_type_bound_count; b++)
                if (strcmp(e2e_type_bounds[b].type, types[t]) == 0)
                    bound = e2e_type_bounds[b].nmse_max;
            check_splits(path, name, 2, e2e_byte_prompt, e2e_byte_prompt_len, bound);
            unlink(path);
        }
    }
    /* a mix (i-quants beside k-quants) and a pure format; qwen2 ties the
     * output to the embedding */
    check_low_bit(dir, "llama", "iq2_xs_mix");
    check_low_bit(dir, "qwen2", "iq4_xs");
    check_low_bit(dir, "qwen3", "iq3_m");
    char stories[512];
    snprintf(stories, sizeof stories, "%s/stories260K.gguf", STRATA_MODELS_DIR);
    check_splits(stories, "stories260K", 5, e2e_stories_prompt, e2e_stories_prompt_len, 1e-9);
    check_cap(stories, e2e_stories_prompt, e2e_stories_prompt_len, 1e-9);
    rmdir(dir);
    if (failures) {
        printf("%d failure%s\n", failures, failures == 1 ? "" : "s");
        return 1;
    }
    printf("ok: every split gives the reference logits within bounds, budgets held\n");
    return 0;
}
