/* End to end: the runtime's logits against the independent reference.
 *
 * For each architecture x weight type, `strata_synth` writes the tiny preset
 * into a temporary directory; the runtime (CPU backend) decodes a fixed token
 * sequence twice: once as one batch with all logits (KV cache f32) and once
 * a token at a time (the decode path, KV cache f16). Every row of logits is
 * compared with tests/common/reference_forward.c by normalized MSE
 * (sum (a - b)^2 / sum b^2) and by greedy argmax. The bundled models
 * (stories260K, llama-2-tiny-random) are checked the same way, and the C
 * reference itself is checked against logits computed by numpy and gguf-py
 * (tests/tools/reference_logits.py, fixtures in tests/data/e2e/).
 *
 * Tolerances (measured on the CPU backend, tiny presets, seed 1; the bound
 * leaves margin). The reference dequantizes the same weights, so weight
 * quantization error is not measured here, only the runtime's arithmetic:
 *   - f32: float32 accumulation vs double: 1e-13 measured; bound 1e-9.
 *   - f16/bf16 weights: 1e-13 measured (the CPU backend keeps activations in
 *     f32); bound 1e-6, so that a backend may round activations to f16 as
 *     ggml does (about 1e-7), but no worse.
 *   - block formats: the CPU backend quantizes activations to 8 bits (q8_0 /
 *     q8_K) for the dot products: 3e-4 .. 1.4e-3 measured over the 51 cases
 *     (about 2e-5 per matmul, through 2 layers of 7 matmuls); bound 3e-3.
 *   - the f16 KV cache of the token-at-a-time pass rounds K and V to f16:
 *     1.5e-7 .. 2.3e-7 measured with f32 weights; bound max(type bound, 2e-6).
 * Argmax: a row whose greedy token differs from the reference's is accepted
 * only when the two reference logits are within a tie margin (4 * the row's
 * allowed RMS error), i.e. the reference itself nearly ties. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e_common.h"
#include "test_temp.h"
#include "reference_forward.h"
#include "strata.h"

static const double fixture_nmse_max = 1e-10; /* C reference vs numpy, logits stored as f32 */

static int failures;

static void check_model_on_cpu(const char *label, const char *path, const int32_t *tokens, int64_t n_tokens,
                               double nmse_max)
{
    if (!e2e_check_model("cpu", label, path, tokens, n_tokens, nmse_max))
        failures++;
}

/* Compares the C reference with logits numpy computed (a little-endian f32
 * file of n_tokens x n_vocab). */
static void check_reference_against_fixture(const char *label, const char *model_path, const char *fixture_path,
                                            const int32_t *tokens, int64_t n_tokens)
{
    strata_error err = {0};
    reference_model *ref = NULL;
    double *ref_logits = NULL;
    float *fixture = NULL;
    FILE *file = NULL;
    strata_status status = reference_model_load(model_path, &ref, &err);
    if (status != STRATA_OK)
        goto fail;
    int64_t n_vocab = reference_model_n_vocab(ref);
    size_t count = (size_t)(n_tokens * n_vocab);
    ref_logits = malloc(count * sizeof *ref_logits);
    fixture = malloc(count * sizeof *fixture);
    if (!ref_logits || !fixture) {
        status = strata_fail(&err, STRATA_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if ((status = reference_forward(ref, tokens, n_tokens, ref_logits, &err)))
        goto fail;
    file = fopen(fixture_path, "rb");
    if (!file || fread(fixture, sizeof *fixture, count, file) != count) {
        status = strata_fail(&err, STRATA_IO, "%s: cannot read %zu logits", fixture_path, count);
        goto fail;
    }
    e2e_comparison c = {.argmax_ok = true};
    for (int64_t t = 0; t < n_tokens; t++)
        e2e_compare_row(fixture + t * n_vocab, ref_logits + t * n_vocab, n_vocab, fixture_nmse_max, &c);
    bool ok = c.worst_nmse <= fixture_nmse_max && c.argmax_agree == c.argmax_rows;
    printf("reference vs numpy %-18s nmse %.3e argmax %d/%d  %s\n", label, c.worst_nmse, c.argmax_agree,
           c.argmax_rows, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
fail:
    if (status != STRATA_OK) {
        printf("reference vs numpy %-18s error: %s\n", label, err.message);
        failures++;
    }
    if (file)
        fclose(file);
    reference_model_free(ref);
    free(ref_logits);
    free(fixture);
}

int main(void)
{
    char dir[512];
    if (!test_make_temp_dir(dir, sizeof dir, "strata_e2e")) {
        fprintf(stderr, "test_e2e_logits: cannot create a temporary directory\n");
        return 1;
    }
    const int64_t n_byte_prompt = e2e_byte_prompt_len;
    const int64_t n_stories_prompt = e2e_stories_prompt_len;

    /* the reference itself, against numpy + gguf-py */
    check_reference_against_fixture("stories260K", STRATA_MODELS_DIR "/stories260K.gguf",
                                    STRATA_TEST_DATA_DIR "/e2e/stories260K_logits.bin", e2e_stories_prompt,
                                    n_stories_prompt);
    char path[600], fixture[600], label[64];
    for (size_t a = 0; a < E2E_ARCH_COUNT; a++) {
        snprintf(path, sizeof path, "%s/%s_tiny_f32.gguf", dir, e2e_archs[a]);
        strata_synth_params params = {.arch = e2e_archs[a], .preset = "tiny", .type = "f32", .seed = 1,
                                      .output_path = path};
        strata_error err = {0};
        if (strata_synth(&params, &err) != STRATA_OK) {
            printf("synth %s tiny f32: %s\n", e2e_archs[a], err.message);
            failures++;
            continue;
        }
        snprintf(fixture, sizeof fixture, STRATA_TEST_DATA_DIR "/e2e/%s_tiny_f32_seed1_logits.bin", e2e_archs[a]);
        snprintf(label, sizeof label, "%s tiny f32", e2e_archs[a]);
        check_reference_against_fixture(label, path, fixture, e2e_byte_prompt, n_byte_prompt);
        remove(path);
    }

    printf("\n%-24s %12s %12s %13s %13s %10s\n", "model", "nmse batch", "nmse 1-by-1", "argmax batch",
           "argmax 1-by-1", "bound");
    for (size_t a = 0; a < E2E_ARCH_COUNT; a++) {
        for (size_t t = 0; t < e2e_type_bound_count; t++) {
            snprintf(path, sizeof path, "%s/%s_tiny_%s.gguf", dir, e2e_archs[a], e2e_type_bounds[t].type);
            snprintf(label, sizeof label, "%s tiny %s", e2e_archs[a], e2e_type_bounds[t].type);
            strata_synth_params params = {.arch = e2e_archs[a], .preset = "tiny", .type = e2e_type_bounds[t].type,
                                          .seed = 1, .output_path = path};
            strata_error err = {0};
            if (strata_synth(&params, &err) != STRATA_OK) {
                printf("%-24s synth error: %s\n", label, err.message);
                failures++;
                continue;
            }
            check_model_on_cpu(label, path, e2e_byte_prompt, n_byte_prompt, e2e_type_bounds[t].nmse_max);
            remove(path);
        }
    }
    for (size_t a = 0; a < E2E_ARCH_COUNT; a++) {
        for (size_t t = 0; t < e2e_lowbit_type_bound_count; t++) {
            const e2e_type_bound *bound = &e2e_lowbit_type_bounds[t];
            snprintf(path, sizeof path, "%s/%s_tiny_%s.gguf", dir, e2e_archs[a], bound->type);
            snprintf(label, sizeof label, "%s tiny %s", e2e_archs[a], bound->type);
            strata_synth_params params = {.arch = e2e_archs[a], .preset = "tiny", .type = bound->type, .seed = 1,
                                          .output_path = path};
            strata_error err = {0};
            if (strata_synth(&params, &err) != STRATA_OK) {
                printf("%-24s synth error: %s\n", label, err.message);
                failures++;
                continue;
            }
            check_model_on_cpu(label, path, e2e_byte_prompt, n_byte_prompt, bound->nmse_max);
            remove(path);
        }
    }
    check_model_on_cpu("stories260K (f32)", STRATA_MODELS_DIR "/stories260K.gguf", e2e_stories_prompt, n_stories_prompt, 1e-9);
    check_model_on_cpu("llama-2-tiny-random (f16)", STRATA_MODELS_DIR "/llama-2-tiny-random.gguf", e2e_byte_prompt,
                n_byte_prompt, 1e-6);
    rmdir(dir);
    if (failures) {
        printf("\n%d failure(s)\n", failures);
        return 1;
    }
    printf("\nall end-to-end checks passed\n");
    return 0;
}
