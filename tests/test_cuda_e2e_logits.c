/* End to end on the CUDA backend: the logits of the runtime running on a CUDA
 * device against the independent double-precision reference
 * (tests/common/reference_forward.c), with the bounds test_e2e_logits.c
 * holds the CPU to. Skipped (exit 77, saying why) when this strata was built
 * without CUDA or no CUDA device is present.
 *
 * For each architecture x weight type (the low-bit formats of
 * e2e_lowbit_type_bounds included), the tiny synthetic model decodes a
 * prompt as one batch (every logit, f32 KV cache: the cuBLAS GEMM path, since
 * 10 tokens are more than the matrix-vector kernels take) and one token at a
 * time (f16 KV cache: the matrix-vector kernels inside begin/end steps, so
 * the CUDA graphs are captured at the second token and replayed from the
 * third). Then a long decode (600 tokens, one at a time) crosses two
 * context buckets of the graphs and splits attention over the cache rows,
 * and runs again with graphs off (STRATA_CUDA_GRAPHS=0): the two must give
 * bit-identical logits, since a replayed graph launches exactly the kernels
 * of the direct path. The families' transformers fixtures (tests/data/
 * families/, as test_family_logits checks them on the CPU) run too: F32
 * against transformers' logits, strata's quantizations against the
 * reference.
 *
 * Bounds, as for the CPU: f32 1e-9, f16/bf16 1e-6, block formats 3e-3 (the
 * CUDA matrix-vector kernels quantize activations to 8 bits per 32 values,
 * finer than the CPU's 256 for K-quants; the GEMM path rounds activations to
 * f16), and at least 2e-6 with the f16 KV cache. */
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
#ifdef STRATA_CUDA_EMULATED
#include <cuda_runtime_api.h> /* the emulator's statistics */
#endif
#include "strata.h"

#ifdef STRATA_CUDA_EMULATED
/* On the CPU emulation of CUDA (tests/cuda_emulator/), where a kernel runs
 * as fibers, a shorter matrix: every format on llama, a float and a block
 * format on the others, and a long decode that still crosses a bucket. */
#define QUICK_MATRIX 1
enum { LONG_DECODE_TOKENS = 300 };
#else
#define QUICK_MATRIX 0
enum { LONG_DECODE_TOKENS = 600 };
#endif

static int failures;

static strata_status load(const char *path, strata_model **model, strata_error *err)
{
    strata_model_params params = {.path = path, .backend = "cuda", .device = 0};
    return strata_model_load(&params, model, err);
}

static void check_model(const char *label, const char *path, const int32_t *tokens, int64_t n_tokens, double nmse_max)
{
    if (!e2e_check_model("cuda", label, path, tokens, n_tokens, nmse_max))
        failures++;
}

/* Writes the tiny model of arch at a weight type into dir and checks it. */
static void check_synthetic(const char *dir, const char *arch, const e2e_type_bound *bound)
{
    char path[600], label[64];
    snprintf(path, sizeof path, "%s/%s_tiny_%s.gguf", dir, arch, bound->type);
    snprintf(label, sizeof label, "%s tiny %s", arch, bound->type);
    strata_synth_params params = {.arch = arch, .preset = "tiny", .type = bound->type, .seed = 1, .output_path = path};
    strata_error err = {0};
    if (strata_synth(&params, &err) != STRATA_OK) {
        printf("%-26s synth error: %s\n", label, err.message);
        failures++;
        return;
    }
    check_model(label, path, e2e_byte_prompt, e2e_byte_prompt_len, bound->nmse_max);
    remove(path);
}

/* 600 tokens one at a time against the reference, with graphs on and off. */
static void check_long_decode(const char *path)
{
    strata_error err = {0};
    reference_model *ref = NULL;
    strata_model *model = NULL;
    double *ref_logits = NULL;
    float *with_graphs = NULL, *without_graphs = NULL;
    int32_t tokens[LONG_DECODE_TOKENS];
    e2e_comparison graphs_on = {0}, graphs_off = {0};
    const double nmse_max = 3e-3;
    uint64_t state = 12345;
    for (int i = 0; i < LONG_DECODE_TOKENS; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        tokens[i] = i == 0 ? 256 : (int32_t)((state >> 33) % 256);
    }
    strata_status status = reference_model_load(path, &ref, &err);
    if (status != STRATA_OK)
        goto fail;
    int64_t n_vocab = reference_model_n_vocab(ref);
    size_t count = (size_t)LONG_DECODE_TOKENS * (size_t)n_vocab;
    ref_logits = malloc(count * sizeof *ref_logits);
    with_graphs = malloc(count * sizeof *with_graphs);
    without_graphs = malloc(count * sizeof *without_graphs);
    if (!ref_logits || !with_graphs || !without_graphs) {
        status = strata_fail(&err, STRATA_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
#ifdef STRATA_CUDA_EMULATED
    uint64_t graph_launches_before = emu_graph_launches();
#endif
    if ((status = reference_forward(ref, tokens, LONG_DECODE_TOKENS, ref_logits, &err)) ||
        (status = load(path, &model, &err)) ||
        (status = e2e_run_and_compare(model, DTYPE_F16, true, LONG_DECODE_TOKENS + 40, tokens, LONG_DECODE_TOKENS,
                                  ref_logits, n_vocab, nmse_max, &graphs_on, with_graphs, &err)))
        goto fail;
#ifdef STRATA_CUDA_EMULATED
    /* every step but the first of each context bucket replays a graph */
    uint64_t replays = emu_graph_launches() - graph_launches_before;
    printf("graph launches during the long decode: %llu of %d steps\n", (unsigned long long)replays,
           LONG_DECODE_TOKENS);
    if (replays < LONG_DECODE_TOKENS - 4) {
        printf("FAIL: the decode steps were not replayed as graphs\n");
        failures++;
    }
#endif
    strata_model_free(model);
    model = NULL;
    setenv("STRATA_CUDA_GRAPHS", "0", 1); /* read when the device opens */
    status = load(path, &model, &err);
    unsetenv("STRATA_CUDA_GRAPHS");
    if (status != STRATA_OK ||
        (status = e2e_run_and_compare(model, DTYPE_F16, true, LONG_DECODE_TOKENS + 40, tokens, LONG_DECODE_TOKENS,
                                  ref_logits, n_vocab, nmse_max, &graphs_off, without_graphs, &err)))
        goto fail;
    bool identical = memcmp(with_graphs, without_graphs, count * sizeof *with_graphs) == 0;
    bool ok = graphs_on.worst_nmse <= nmse_max && graphs_off.worst_nmse <= nmse_max && graphs_on.argmax_ok &&
              graphs_off.argmax_ok && identical;
    printf("\nlong decode, %d tokens one at a time: nmse %.3e (graphs) %.3e (direct), argmax %d/%d; "
           "graph and direct logits %s  %s\n",
           LONG_DECODE_TOKENS, graphs_on.worst_nmse, graphs_off.worst_nmse, graphs_on.argmax_agree,
           graphs_on.argmax_rows, identical ? "bit-identical" : "DIFFER", ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
fail:
    if (status != STRATA_OK) {
        printf("long decode error: %s\n", err.message);
        failures++;
    }
    strata_model_free(model);
    reference_model_free(ref);
    free(ref_logits);
    free(with_graphs);
    free(without_graphs);
}

int main(void)
{
    const backend_registration *cuda = backend_find("cuda");
    if (!cuda) {
        printf("skipped: this strata was built without the CUDA backend (configure with -DSTRATA_CUDA=ON)\n");
        return 77;
    }
    strata_error count_err = {0};
    if (cuda->device_count(&count_err) <= 0) {
        printf("skipped: %s\n", count_err.message[0] ? count_err.message : "no CUDA device");
        return 77;
    }
    char dir[512], path[600];
    if (!test_make_temp_dir(dir, sizeof dir, "strata_cuda_e2e")) {
        printf("cannot create a temporary directory\n");
        return 1;
    }
    const int64_t n_byte_prompt = e2e_byte_prompt_len;
    printf("%-26s %12s %12s %13s %13s %10s\n", "model (cuda)", "nmse batch", "nmse 1-by-1", "argmax batch",
           "argmax 1-by-1", "bound");
    for (size_t a = 0; a < E2E_ARCH_COUNT; a++)
        for (size_t t = 0; t < E2E_FORMAT_COUNT; t++) {
            if (QUICK_MATRIX && a > 0 && strcmp(e2e_type_bounds[t].type, "f16") != 0 && strcmp(e2e_type_bounds[t].type, "q4_k") != 0)
                continue;
            check_synthetic(dir, e2e_archs[a], &e2e_type_bounds[t]);
        }
    /* the low-bit formats (kernels/quant_unpack_lowbit.h) and their mixes:
     * all of them on llama, and on the other architectures too on a GPU */
    for (size_t a = 0; a < (QUICK_MATRIX ? 1 : E2E_ARCH_COUNT); a++)
        for (size_t t = 0; t < e2e_lowbit_type_bound_count; t++)
            check_synthetic(dir, e2e_archs[a], &e2e_lowbit_type_bounds[t]);
    check_model("stories260K (f32)", STRATA_MODELS_DIR "/stories260K.gguf", e2e_stories_prompt,
                e2e_stories_prompt_len, 1e-9);
    check_model("llama-2-tiny-random (f16)", STRATA_MODELS_DIR "/llama-2-tiny-random.gguf", e2e_byte_prompt,
                n_byte_prompt, 1e-6);

    /* the families' transformers fixtures (test_family_logits): F32 against
     * transformers, strata's quantizations against the reference (on the
     * emulation q4_k only); the families' tiny synth presets at q4_k_m */
    for (int f = 0; f < FAMILY_FIXTURE_COUNT; f++) {
        failures += !family_check_transformers("cuda", STRATA_TEST_DATA_DIR, family_fixtures[f], 1e-8);
        for (int t = 0; t < FAMILY_TYPE_COUNT; t++)
            if (!QUICK_MATRIX || strcmp(family_type_bounds[t].type, "q4_k") == 0)
                failures += !family_check_type("cuda", STRATA_TEST_DATA_DIR, dir, family_fixtures[f],
                                               &family_type_bounds[t]);
    }
    static const char *const families[] = {"olmo2", "gemma2", "gemma3", "phi3"};
    for (size_t a = 0; a < sizeof families / sizeof families[0]; a++) {
        static const e2e_type_bound tiny_q4_k_m = {"q4_k_m", 3e-3};
        check_synthetic(dir, families[a], &tiny_q4_k_m);
    }

    snprintf(path, sizeof path, "%s/llama_tiny_q4_k.gguf", dir);
    strata_synth_params params = {.arch = "llama", .preset = "tiny", .type = "q4_k", .seed = 2, .output_path = path};
    strata_error err = {0};
    if (strata_synth(&params, &err) != STRATA_OK) {
        printf("long decode synth error: %s\n", err.message);
        failures++;
    } else {
        check_long_decode(path);
        remove(path);
    }
    rmdir(dir);
    if (failures) {
        printf("\n%d failure(s)\n", failures);
        return 1;
    }
    printf("\nall CUDA end-to-end checks passed\n");
    return 0;
}
