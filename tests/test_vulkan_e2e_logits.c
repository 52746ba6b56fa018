/* End to end on Vulkan: for each architecture x weight type (every block
 * format, the low-bit ones and their mixes included), `strata_synth` writes
 * the tiny preset; the model is loaded on the CPU and on Vulkan device
 * 0 and decodes the same tokens twice (one batch with all logits and an f32
 * KV cache, then one token at a time with an f16 KV cache: the decode path,
 * split-KV attention included). Every Vulkan row is compared with the
 * independent double-precision reference (tests/common/reference_forward.c)
 * under the bounds of test_e2e_logits.c, and with the CPU's row (nmse, and
 * greedy token unless the CPU's top two nearly tie).
 *
 * Why those bounds hold on Vulkan: its matmuls keep activations in f32 (no
 * 8-bit rounding as on the CPU), so Vulkan sits closer to the reference than
 * the CPU does; Vulkan vs CPU is then bounded by about the CPU's own error,
 * and gets the reference bound x 4 ((a + b)^2 <= 4 max(a, b)^2).
 *
 * Then the families' transformers fixtures (tests/data/families/, as
 * test_family_logits checks them on the CPU): F32 against transformers'
 * logits, and q4_k quantized by strata against the reference on the same
 * file; and the tiny synth presets of olmo2, gemma2, gemma3, phi3 at q4_k_m
 * and at three low-bit formats each (all 12 among the four).
 *
 * Skips (exit 77, saying why) when Vulkan is not built in or has no device. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "e2e_common.h"
#include "family_fixtures.h"
#include "test_temp.h"
#include "reference_forward.h"
#include "strata.h"


static int failures;

static double row_nmse(const float *got, const double *want, int64_t n)
{
    double err_sq = 0.0, ref_sq = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        err_sq += d * d;
        ref_sq += want[i] * want[i];
    }
    return ref_sq > 0 ? err_sq / ref_sq : err_sq;
}

/* Decodes the prompt on model (batch or one by one) into logits[e2e_byte_prompt_len x n_vocab]. */
static strata_status decode_all(strata_model *model, strata_dtype kv_dtype, bool one_at_a_time, float *logits,
                                int64_t n_vocab, strata_error *err)
{
    strata_context *ctx = NULL;
    strata_context_params params = strata_context_default_params();
    params.n_ctx = 64;
    params.kv_dtype = kv_dtype;
    strata_status status = strata_context_create(model, &params, &ctx, err);
    if (status != STRATA_OK)
        goto fail;
    if (one_at_a_time) {
        for (int64_t t = 0; t < e2e_byte_prompt_len; t++) {
            if ((status = strata_decode(ctx, &e2e_byte_prompt[t], 1, false, err)))
                goto fail;
            memcpy(logits + t * n_vocab, strata_get_logits(ctx, 0), (size_t)n_vocab * sizeof(float));
        }
    } else {
        if ((status = strata_decode(ctx, e2e_byte_prompt, e2e_byte_prompt_len, true, err)))
            goto fail;
        for (int64_t t = 0; t < e2e_byte_prompt_len; t++)
            memcpy(logits + t * n_vocab, strata_get_logits(ctx, t), (size_t)n_vocab * sizeof(float));
    }
fail:
    strata_context_free(ctx);
    return status;
}

/* Worst nmse of Vulkan vs reference and vs CPU over both passes; false when
 * a greedy token differs from the CPU's where the CPU's choice is clear. */
static bool compare(const float *vk, const float *cpu, const double *ref, int64_t n_vocab, double cpu_bound,
                    double *worst_ref, double *worst_cpu)
{
    bool greedy_ok = true;
    double *cpu_row = malloc((size_t)n_vocab * sizeof *cpu_row);
    if (!cpu_row)
        return false;
    for (int64_t t = 0; t < e2e_byte_prompt_len; t++) {
        const float *v = vk + t * n_vocab, *c = cpu + t * n_vocab;
        double nmse_ref = row_nmse(v, ref + t * n_vocab, n_vocab);
        for (int64_t i = 0; i < n_vocab; i++)
            cpu_row[i] = c[i];
        double nmse_cpu = row_nmse(v, cpu_row, n_vocab);
        if (!(nmse_ref <= *worst_ref))
            *worst_ref = nmse_ref;
        if (!(nmse_cpu <= *worst_cpu))
            *worst_cpu = nmse_cpu;
        int64_t got = e2e_argmax_float(v, n_vocab), want = e2e_argmax_float(c, n_vocab);
        double ref_sq = 0.0;
        for (int64_t i = 0; i < n_vocab; i++)
            ref_sq += cpu_row[i] * cpu_row[i];
        double tie_margin = 4.0 * sqrt(cpu_bound * ref_sq / (double)n_vocab);
        if (got != want && c[want] - c[got] > tie_margin)
            greedy_ok = false;
    }
    free(cpu_row);
    return greedy_ok;
}

static void check_model(const char *label, const char *path, double nmse_max)
{
    strata_error err = {0};
    reference_model *ref = NULL;
    strata_model *cpu_model = NULL, *vk_model = NULL;
    double *ref_logits = NULL;
    float *cpu_logits = NULL, *vk_logits = NULL;
    strata_status status = reference_model_load(path, &ref, &err);
    if (status != STRATA_OK)
        goto fail;
    int64_t n_vocab = reference_model_n_vocab(ref);
    size_t count = (size_t)(e2e_byte_prompt_len * n_vocab);
    ref_logits = malloc(count * sizeof *ref_logits);
    cpu_logits = malloc(count * sizeof *cpu_logits);
    vk_logits = malloc(count * sizeof *vk_logits);
    if (!ref_logits || !cpu_logits || !vk_logits) {
        status = strata_fail(&err, STRATA_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    strata_model_params cpu_params = {.path = path, .backend = "cpu"};
    strata_model_params vk_params = {.path = path, .backend = "vulkan", .device = 0};
    if ((status = reference_forward(ref, e2e_byte_prompt, e2e_byte_prompt_len, ref_logits, &err)) ||
        (status = strata_model_load(&cpu_params, &cpu_model, &err)) ||
        (status = strata_model_load(&vk_params, &vk_model, &err)))
        goto fail;
    double worst_ref[2] = {0, 0}, worst_cpu[2] = {0, 0};
    double bound[2] = {nmse_max, nmse_max > E2E_KV_F16_NMSE_FLOOR ? nmse_max : E2E_KV_F16_NMSE_FLOOR};
    bool greedy_ok = true;
    for (int pass = 0; pass < 2; pass++) {
        strata_dtype kv = pass == 0 ? DTYPE_F32 : DTYPE_F16;
        if ((status = decode_all(cpu_model, kv, pass == 1, cpu_logits, n_vocab, &err)) ||
            (status = decode_all(vk_model, kv, pass == 1, vk_logits, n_vocab, &err)))
            goto fail;
        greedy_ok = compare(vk_logits, cpu_logits, ref_logits, n_vocab, bound[pass], &worst_ref[pass],
                            &worst_cpu[pass]) && greedy_ok;
    }
    bool ok = greedy_ok;
    for (int pass = 0; pass < 2; pass++)
        ok = ok && worst_ref[pass] <= bound[pass] && worst_cpu[pass] <= 4.0 * bound[pass];
    printf("%-22s %11.3e %11.3e %11.3e %11.3e %8.0e %6s  %s\n", label, worst_ref[0], worst_ref[1], worst_cpu[0],
           worst_cpu[1], nmse_max, greedy_ok ? "same" : "DIFF", ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
fail:
    if (status != STRATA_OK) {
        printf("%-22s error: %s\n", label, err.message);
        failures++;
    }
    strata_model_free(vk_model);
    strata_model_free(cpu_model);
    reference_model_free(ref);
    free(ref_logits);
    free(cpu_logits);
    free(vk_logits);
}

int main(void)
{
    const backend_registration *vulkan = backend_find("vulkan");
    if (!vulkan) {
        printf("skipped: the Vulkan backend is not built in (configure with -DSTRATA_VULKAN=ON)\n");
        return 77;
    }
    strata_error err = {0};
    if (vulkan->device_count(&err) <= 0) {
        printf("skipped: no Vulkan device: %s\n", err.message[0] ? err.message : "none found");
        return 77;
    }
    char dir[512];
    if (!test_make_temp_dir(dir, sizeof dir, "strata_vk_e2e")) {
        fprintf(stderr, "test_vulkan_e2e_logits: cannot create a temporary directory\n");
        return 1;
    }
    printf("%-22s %11s %11s %11s %11s %8s %6s\n", "model", "ref batch", "ref 1-by-1", "cpu batch", "cpu 1-by-1",
           "bound", "greedy");
    char path[600], label[64];
    for (size_t a = 0; a < E2E_ARCH_COUNT; a++)
        for (size_t t = 0; t < E2E_FORMAT_COUNT + e2e_lowbit_type_bound_count; t++) {
            const e2e_type_bound *bound =
                t < E2E_FORMAT_COUNT ? &e2e_type_bounds[t] : &e2e_lowbit_type_bounds[t - E2E_FORMAT_COUNT];
            snprintf(path, sizeof path, "%s/%s_tiny_%s.gguf", dir, e2e_archs[a], bound->type);
            snprintf(label, sizeof label, "%s tiny %s", e2e_archs[a], bound->type);
            strata_synth_params params = {.arch = e2e_archs[a], .preset = "tiny", .type = bound->type, .seed = 1,
                                          .output_path = path};
            if (strata_synth(&params, &err) != STRATA_OK) {
                printf("%-22s synth error: %s\n", label, err.message);
                failures++;
                continue;
            }
            check_model(label, path, bound->nmse_max);
            remove(path);
        }
    if (access(STRATA_MODELS_DIR "/stories260K.gguf", R_OK) == 0)
        check_model("stories260K (f32)", STRATA_MODELS_DIR "/stories260K.gguf", 1e-9);
    /* the families' transformers fixtures: F32 against transformers, and
     * strata's q4_k (q5_0 at their row lengths) against the reference
     * (test_family_logits runs every type on the CPU); then the families'
     * tiny synth presets at q4_k_m (q4_k and q6_k rows) against the reference */
    printf("\n%-24s %12s %12s %13s %13s %10s\n", "model (vulkan)", "nmse batch", "nmse 1-by-1", "argmax batch",
           "argmax 1-by-1", "bound");
    for (int f = 0; f < FAMILY_FIXTURE_COUNT; f++) {
        failures += !family_check_transformers("vulkan", STRATA_TEST_DATA_DIR, family_fixtures[f], 1e-8);
        for (int t = 0; t < FAMILY_TYPE_COUNT; t++)
            if (strcmp(family_type_bounds[t].type, "q4_k") == 0)
                failures += !family_check_type("vulkan", STRATA_TEST_DATA_DIR, dir, family_fixtures[f],
                                               &family_type_bounds[t]);
    }
    static const char *const families[] = {"olmo2", "gemma2", "gemma3", "phi3"};
    for (size_t a = 0; a < sizeof families / sizeof families[0]; a++) {
        snprintf(path, sizeof path, "%s/%s_tiny_q4_k_m.gguf", dir, families[a]);
        snprintf(label, sizeof label, "%s tiny q4_k_m", families[a]);
        strata_synth_params params = {.arch = families[a], .preset = "tiny", .type = "q4_k_m", .seed = 1,
                                      .output_path = path};
        if (strata_synth(&params, &err) != STRATA_OK) {
            printf("%-22s synth error: %s\n", label, err.message);
            failures++;
            continue;
        }
        failures += !e2e_check_model("vulkan", label, path, e2e_byte_prompt, e2e_byte_prompt_len, 3e-3);
        remove(path);
        /* three of the 12 low-bit formats each (the first 12 entries of
         * e2e_lowbit_type_bounds), so that every format runs on one of
         * these families too */
        for (size_t k = 0; k < 3; k++) {
            const e2e_type_bound *bound = &e2e_lowbit_type_bounds[3 * a + k];
            snprintf(path, sizeof path, "%s/%s_tiny_%s.gguf", dir, families[a], bound->type);
            snprintf(label, sizeof label, "%s tiny %s", families[a], bound->type);
            strata_synth_params lowbit = {.arch = families[a], .preset = "tiny", .type = bound->type, .seed = 1,
                                          .output_path = path};
            if (strata_synth(&lowbit, &err) != STRATA_OK) {
                printf("%-22s synth error: %s\n", label, err.message);
                failures++;
                continue;
            }
            failures += !e2e_check_model("vulkan", label, path, e2e_byte_prompt, e2e_byte_prompt_len,
                                         bound->nmse_max);
            remove(path);
        }
    }
    rmdir(dir);
    if (failures) {
        printf("\n%d failure(s)\n", failures);
        return 1;
    }
    printf("\nVulkan logits match the reference and the CPU\n");
    return 0;
}
