/* Several GPUs without GPUs: a model split across CUDA devices of different
 * (small) memory sizes and the CPU gives the reference logits, and every
 * device's counted peak stays within its budget and the plan.
 *
 * Runs on the CUDA emulator presenting several devices (STRATA_EMU_DEVICES,
 * set by cmake/cuda.cmake: three devices of a few tens of MiB, most of it
 * taken by each device's cuBLAS workspace, so a tiny model does not fit one
 * of them) and, unchanged, on a machine with several real GPUs. Placements:
 * the default (every GPU, then the CPU: the planner splits by budget), the
 * devices in another order with --tensor-split, -ngl with a GPU left out,
 * and an -ot override sending the FFN down projections to the CPU. Where no
 * override sends activations on detours, a decoded token crosses exactly
 * the boundaries the plan counts.
 *
 * Skips (exit 77, saying why) without CUDA or with fewer than two devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "e2e_common.h"
#include "strata.h"
#include "test_temp.h"

static int failures;

static void check(bool ok, const char *what)
{
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    }
}

/* How many CUDA devices the plan gives layers. */
static int cuda_devices_with_layers(const strata_placement_params *placement, const char *path, char *layout,
                                    size_t layout_size)
{
    strata_plan *plan = NULL;
    strata_error err = {0};
    int count = 0;
    layout[0] = '\0';
    if (strata_plan_file(path, placement, &plan, &err) != STRATA_OK) {
        snprintf(layout, layout_size, "planning failed: %.200s", err.message);
        return -1;
    }
    size_t used = 0;
    for (int d = 0; d < plan->n_devices && used < layout_size; d++) {
        used += (size_t)snprintf(layout + used, layout_size - used, "%s%s:%lld", d ? " " : "", plan->devices[d].name,
                                 (long long)plan->devices[d].n_layers);
        if (strncmp(plan->devices[d].name, "cuda", 4) == 0 && plan->devices[d].n_layers > 0)
            count++;
    }
    strata_plan_free(plan);
    return count;
}

static void check_placement(const char *path, const char *label, const strata_placement_params *placement,
                            int min_cuda_devices, double nmse_max)
{
    strata_model_params params = {.path = path, .placement = *placement};
    char layout[256], what[600];
    int cuda_devices = cuda_devices_with_layers(placement, path, layout, sizeof layout);
    printf("%-40s layers: %s\n", label, layout);
    snprintf(what, sizeof what, "%s: %d CUDA devices run layers, at least %d expected (%s)", label, cuda_devices,
             min_cuda_devices, layout);
    check(cuda_devices >= min_cuda_devices, what);
    e2e_placement_report report;
    if (!e2e_check_model_placed(&params, label, e2e_byte_prompt, e2e_byte_prompt_len, nmse_max, &report)) {
        failures++;
        return;
    }
    snprintf(what, sizeof what, "%s: a device's counted peak passed its budget", label);
    check(report.within_budget, what);
    snprintf(what, sizeof what, "%s: a device's counted peak passed the plan's figure", label);
    check(report.within_plan, what);
    if (placement->n_overrides == 0)
        check(e2e_check_handoffs(&params, label, e2e_byte_prompt, 4, false), label);
}

int main(void)
{
    const backend_registration *cuda = backend_find("cuda");
    if (!cuda) {
        printf("skipped: CUDA was not built into this strata\n");
        return 77;
    }
    strata_error err = {0};
    int n_devices = cuda->device_count(&err);
    if (n_devices < 2) {
        printf("skipped: %d CUDA device%s (%s); a split needs two\n", n_devices, n_devices == 1 ? "" : "s",
               err.message[0] ? err.message : "set STRATA_EMU_DEVICES on the emulator");
        return 77;
    }
    char dir[256], path[512];
    if (!test_make_temp_dir(dir, sizeof dir, "strata_cuda_split")) {
        printf("FAIL: cannot make a temporary directory\n");
        return 1;
    }
    printf("%-40s %12s %12s %13s %13s %10s\n", "placement", "batch nmse", "1-by-1 nmse", "batch argmax",
           "1-by-1 argmax", "bound");
    static const char *const types[] = {"f32", "q4_k_m"};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        snprintf(path, sizeof path, "%s/llama-%s.gguf", dir, types[t]);
        strata_synth_params synth = {.arch = "llama", .preset = "tiny", .type = types[t], .seed = 2,
                                     .output_path = path};
        if (strata_synth(&synth, &err) != STRATA_OK) {
            printf("FAIL: synth %s: %s\n", types[t], err.message);
            failures++;
            continue;
        }
        double bound = 0;
        for (size_t b = 0; b < e2e_type_bound_count; b++)
            if (strcmp(e2e_type_bounds[b].type, types[t]) == 0)
                bound = e2e_type_bounds[b].nmse_max;
        char label[96];
        strata_placement_params placement = strata_placement_default_params();
        placement.n_ctx = 64;
        placement.kv_dtype = DTYPE_F32; /* the batch pass uses an f32 cache */

        /* the default: every GPU, then the CPU; small budgets make the split */
        snprintf(label, sizeof label, "%s default devices", types[t]);
        check_placement(path, label, &placement, t == 0 ? 2 : 1, bound);

        /* another order, layers in proportions */
        strata_placement_params split = placement;
        static const double proportions[] = {1, 1};
        split.devices = "cuda1,cuda0,cpu";
        split.tensor_split = proportions;
        split.n_tensor_split = 2;
        split.gpu_layers_set = true;
        split.gpu_layers = 2;
        snprintf(label, sizeof label, "%s cuda1,cuda0,cpu -ts 1,1 -ngl 2", types[t]);
        check_placement(path, label, &split, 2, bound);

        /* one layer on a GPU, the CPU the rest; a GPU left out */
        strata_placement_params one = placement;
        one.devices = n_devices >= 3 ? "cuda2,cpu" : "cuda1,cpu";
        one.gpu_layers_set = true;
        one.gpu_layers = 1;
        snprintf(label, sizeof label, "%s %s -ngl 1", types[t], one.devices);
        check_placement(path, label, &one, 1, bound);

        /* the FFN down projections on the CPU, the rest fitted on the GPUs */
        strata_placement_params overridden = placement;
        static const strata_tensor_override ffn_down = {.pattern = "ffn_down", .device = "cpu"};
        overridden.overrides = &ffn_down;
        overridden.n_overrides = 1;
        snprintf(label, sizeof label, "%s default, -ot ffn_down=cpu", types[t]);
        check_placement(path, label, &overridden, 1, bound);
        unlink(path);
    }
    rmdir(dir);
    if (failures) {
        printf("%d failure%s\n", failures, failures == 1 ? "" : "s");
        return 1;
    }
    printf("ok: splits across CUDA devices and the CPU give the reference logits, budgets held\n");
    return 0;
}
