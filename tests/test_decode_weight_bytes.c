/* The weight bytes one decoded token reads (strata_model_decode_weight_bytes,
 * the figure `strata bench` multiplies by tokens/s for its GB/s and roofline):
 * every weight once, the token embedding one row, and of each expert tensor
 * [n_in, n_out, n_expert] only the n_expert_used experts a token selects.
 *
 * Also the parameters one token multiplies by (strata_hparams.n_params_active,
 * bench's FLOP count for the pp rows' share of the GEMM peak).
 *
 * The expected figures are computed here from the file's tensor table alone,
 * for tiny synth presets written into a temporary directory: a dense llama, a
 * mixtral, a qwen3moe and a qwen2moe (2 of 8 experts each; the last with a
 * shared expert, which every token reads whole), in a mix whose expert
 * tensors are of different formats (q4_k_m: ffn_down_exps q6_k on some
 * layers, the router f32). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "strata.h"
#include "test_temp.h"

static int failures;

/* Bytes per token from the tensor table: each expert tensor scaled by
 * used / n_expert, the token embedding one row (the whole of it again as the
 * output when the output is tied to it). */
static double expected_bytes(const gguf_file *file, int64_t n_expert, int64_t n_used)
{
    double total = 0;
    bool tied = gguf_find_tensor(file, "output.weight") == NULL;
    for (int64_t i = 0; i < gguf_tensor_count(file); i++) {
        const gguf_tensor_info *t = gguf_tensor(file, i);
        double bytes = (double)t->size_bytes;
        if (strstr(t->name, "_exps.weight"))
            bytes = bytes / (double)n_expert * (double)n_used;
        if (strcmp(t->name, "token_embd.weight") == 0)
            bytes = (double)t->size_bytes / (double)t->ne[1] + (tied ? bytes : 0);
        if (strcmp(t->name, "rope_freqs.weight") == 0)
            bytes = 0; /* a few hundred bytes the runtime does not count */
        total += bytes;
    }
    return total;
}

static void check_preset(const char *dir, const char *arch, int64_t want_expert, int64_t want_used)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, arch);
    strata_synth_params synth = {.arch = arch, .preset = "tiny", .type = "q4_k_m", .seed = 1, .output_path = path};
    strata_model_params params = {.path = path, .backend = "cpu"};
    strata_model *model = NULL;
    gguf_file *file = NULL;
    strata_error err = {0};
    if (strata_synth(&synth, &err) || strata_model_load(&params, &model, &err) || gguf_open(path, &file, &err)) {
        printf("FAIL %s: %s\n", arch, err.message);
        failures++;
        goto done;
    }
    const strata_hparams *hp = strata_model_hparams(model);
    if (hp->n_expert != want_expert || hp->n_expert_used != want_used) {
        printf("FAIL %s: %lld of %lld experts, expected %lld of %lld\n", arch, (long long)hp->n_expert_used,
               (long long)hp->n_expert, (long long)want_used, (long long)want_expert);
        failures++;
        goto done;
    }
    /* the parameters a token multiplies by (bench's pp FLOP count) */
    uint64_t want_active = 0;
    for (int64_t i = 0; i < gguf_tensor_count(file); i++) {
        const gguf_tensor_info *t = gguf_tensor(file, i);
        uint64_t elements = (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * (uint64_t)t->ne[2];
        want_active += strstr(t->name, "_exps.weight") ? elements / (uint64_t)want_expert * (uint64_t)want_used
                                                       : elements;
    }
    if (hp->n_params_active != want_active || (want_expert > 0) != (hp->n_params_active < hp->n_params)) {
        printf("FAIL %s: %llu active parameters of %llu, expected %llu\n", arch,
               (unsigned long long)hp->n_params_active, (unsigned long long)hp->n_params,
               (unsigned long long)want_active);
        failures++;
    }
    double want = expected_bytes(file, hp->n_expert ? hp->n_expert : 1, hp->n_expert ? hp->n_expert_used : 1);
    double got = (double)strata_model_decode_weight_bytes(model);
    double all = expected_bytes(file, 1, 1); /* as if every expert were read */
    bool ok = got == want;
    printf("%-4s %-9s decode bytes %9.0f, expected %9.0f (all experts: %9.0f)\n", ok ? "ok" : "FAIL", arch, got,
           want, all);
    failures += !ok;
done:
    gguf_close(file);
    strata_model_free(model);
    remove(path);
}

int main(void)
{
    char dir[512];
    if (!test_make_temp_dir(dir, sizeof dir, "strata_decode_bytes")) {
        fprintf(stderr, "test_decode_weight_bytes: cannot create a temporary directory\n");
        return 1;
    }
    check_preset(dir, "llama", 0, 0);
    check_preset(dir, "mixtral", 8, 2);
    check_preset(dir, "qwen3moe", 8, 2);
    check_preset(dir, "qwen2moe", 8, 2); /* its shared expert read whole, as a dense FFN */
    rmdir(dir);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("decode weight bytes: all checks passed\n");
    return 0;
}
