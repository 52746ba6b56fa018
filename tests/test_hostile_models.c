/* Valid-looking model files a hostile tester wrote, and what strata says of
 * them (issue 13, items 4, 6, 7 and 8). Each variant is a copy of a tiny
 * synthetic model with one thing changed (tests/common/gguf_rewrite.c):
 *
 * - general.alignment = 1 (legal): F32 norm weights start at odd
 *   addresses. The CPU must give exactly the logits of the aligned file
 *   (before: a misaligned float load, which UBSan stops).
 * - hyper-parameters that make the forward pass garbage: an RMS epsilon of
 *   NaN, a rope base of infinity or beyond float, a linear rope scaling
 *   factor that makes the frequency scale infinite, rope_freqs factors of
 *   zero and NaN: refused at load and by strata_model_check, naming the key
 *   or tensor (before: accepted, exit 0). The same for the keys of gemma2,
 *   gemma3 and phi3 (softcaps, sliding window and its pattern, query scale,
 *   the local rope base, LongRoPE's attention factor, original context and
 *   factors), on copies of their transformers fixtures.
 * - NaN inside a weight matrix: a load does not read every weight, but
 *   strata_model_check with the scan (`strata info --check`) finds it.
 * - what `run` refuses, `info` refuses too: a missing tensor, a BOS id
 *   outside the vocabulary (exit 1 from both commands, run through $STRATA).
 * - the context: a model trained on one position refuses a three-token
 *   prompt with the counts (before: ran 3 positions silently); --ctx beyond
 *   the training length warns. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_common.h"
#include "gguf.h"
#include "gguf_rewrite.h"
#include "strata.h"
#include "test_temp.h"

static int failures;
static char dir[256];
static char base_path[600];

static void check(bool ok, const char *what)
{
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    } else {
        printf("ok: %s\n", what);
    }
}

/* The logits of the byte prompt (batch) on the CPU, malloc'ed; NULL on error. */
static float *cpu_logits(const char *path, int64_t *n_vocab)
{
    strata_error err = {0};
    strata_model *model = NULL;
    strata_context *ctx = NULL;
    float *logits = NULL;
    strata_model_params params = {.path = path, .backend = "cpu"};
    strata_context_params ctx_params = strata_context_default_params();
    ctx_params.n_ctx = 64;
    if (strata_model_load(&params, &model, &err) || strata_context_create(model, &ctx_params, &ctx, &err) ||
        strata_decode(ctx, e2e_byte_prompt, e2e_byte_prompt_len, true, &err)) {
        printf("  %s: %s\n", path, err.message);
        goto done;
    }
    *n_vocab = strata_model_hparams(model)->n_vocab;
    logits = malloc((size_t)(e2e_byte_prompt_len * *n_vocab) * sizeof *logits);
    for (int64_t t = 0; logits && t < e2e_byte_prompt_len; t++)
        memcpy(logits + t * *n_vocab, strata_get_logits(ctx, t), (size_t)*n_vocab * sizeof *logits);
done:
    strata_context_free(ctx);
    strata_model_free(model);
    return logits;
}

static void check_alignment_one(void)
{
    char path[320];
    snprintf(path, sizeof path, "%s/align1.gguf", dir);
    rewrite_spec spec = {.alignment = 1};
    if (!gguf_rewrite(base_path, path, &spec)) {
        failures++;
        return;
    }
    gguf_file *file = NULL;
    strata_error err = {0};
    bool misaligned = false;
    if (gguf_open(path, &file, &err) == STRATA_OK) {
        for (int64_t t = 0; t < gguf_tensor_count(file); t++)
            if (gguf_tensor(file, t)->dtype == DTYPE_F32 && (uintptr_t)gguf_tensor(file, t)->data % 4 != 0)
                misaligned = true;
        gguf_close(file);
    }
    check(misaligned, "general.alignment = 1 leaves an F32 tensor at an address that is not a multiple of 4");
    int64_t n_vocab = 0, n_vocab_aligned = 0;
    float *odd = cpu_logits(path, &n_vocab), *even = cpu_logits(base_path, &n_vocab_aligned);
    check(odd && even && n_vocab == n_vocab_aligned &&
              memcmp(odd, even, (size_t)(e2e_byte_prompt_len * n_vocab) * sizeof *odd) == 0,
          "the CPU gives the aligned file's logits, bit for bit, for general.alignment = 1");
    free(odd);
    free(even);
}

/* Writes a variant and expects strata_model_check (with scan as given) and
 * strata_model_load to refuse it with a message holding fragment. */
static void expect_refused(const char *name, const rewrite_spec *spec, bool scan, const char *fragment)
{
    char path[320], what[1200];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    if (!gguf_rewrite(base_path, path, spec)) {
        failures++;
        return;
    }
    strata_error err = {0};
    strata_status status = strata_model_check(path, scan, &err);
    snprintf(what, sizeof what, "%s: refused by the check (%s)", name, status ? err.message : "accepted");
    check(status != STRATA_OK && strstr(err.message, fragment), what);
    if (scan)
        return; /* a load does not scan weights */
    strata_model *model = NULL;
    strata_model_params params = {.path = path, .backend = "cpu"};
    memset(&err, 0, sizeof err);
    status = strata_model_load(&params, &model, &err);
    snprintf(what, sizeof what, "%s: refused by the load (%s)", name, status ? err.message : "accepted");
    check(status != STRATA_OK && strstr(err.message, fragment), what);
    strata_model_free(model);
}

static void set_float_at(void *bytes, size_t size, size_t index, float value)
{
    if ((index + 1) * sizeof value <= size)
        memcpy((char *)bytes + index * sizeof value, &value, sizeof value);
}

static void zero_rope_factor(const char *name, strata_dtype dtype, void *bytes, size_t size, void *user)
{
    (void)dtype;
    if (strcmp(name, "rope_freqs.weight") == 0)
        set_float_at(bytes, size, 3, *(const float *)user);
}

static void nan_in_attn_q(const char *name, strata_dtype dtype, void *bytes, size_t size, void *user)
{
    (void)user;
    if (strcmp(name, "blk.1.attn_q.weight") == 0 && dtype == DTYPE_F32)
        set_float_at(bytes, size, 777, NAN);
}

static void check_hyperparameters(void)
{
    rewrite_key eps_nan = {.key = "llama.attention.layer_norm_rms_epsilon", .kind = REWRITE_FLOAT,
                           .type = GGUF_TYPE_FLOAT32, .float_value = NAN};
    rewrite_key base_inf = {.key = "llama.rope.freq_base", .kind = REWRITE_FLOAT, .type = GGUF_TYPE_FLOAT32,
                            .float_value = INFINITY};
    rewrite_key base_huge = {.key = "llama.rope.freq_base", .kind = REWRITE_FLOAT, .type = GGUF_TYPE_FLOAT64,
                             .float_value = 1e39};
    rewrite_key linear[2] = {{.key = "llama.rope.scaling.type", .kind = REWRITE_STRING, .type = GGUF_TYPE_STRING,
                              .string_value = "linear"},
                             {.key = "llama.rope.scaling.factor", .kind = REWRITE_FLOAT, .type = GGUF_TYPE_FLOAT64,
                              .float_value = 1e-40}};
    expect_refused("eps_nan", &(rewrite_spec){.keys = &eps_nan, .n_keys = 1}, false, "layer_norm_rms_epsilon");
    expect_refused("base_inf", &(rewrite_spec){.keys = &base_inf, .n_keys = 1}, false, "rope.freq_base");
    expect_refused("base_huge", &(rewrite_spec){.keys = &base_huge, .n_keys = 1}, false, "rope.freq_base");
    expect_refused("scale_tiny", &(rewrite_spec){.keys = linear, .n_keys = 2}, false, "rope.scaling.factor");
    float zero = 0.0f, not_a_number = NAN;
    expect_refused("rope_zero", &(rewrite_spec){.edit_tensor = zero_rope_factor, .user = &zero}, false,
                   "rope_freqs.weight");
    expect_refused("rope_nan", &(rewrite_spec){.edit_tensor = zero_rope_factor, .user = &not_a_number}, false,
                   "rope_freqs.weight");

    /* NaN in a weight: a load reads what it needs, the scan reads all */
    char path[320];
    snprintf(path, sizeof path, "%s/weight_nan.gguf", dir);
    rewrite_spec nan_spec = {.edit_tensor = nan_in_attn_q};
    if (!gguf_rewrite(base_path, path, &nan_spec)) {
        failures++;
        return;
    }
    strata_error err = {0};
    check(strata_model_check(path, false, &err) == STRATA_OK, "NaN in a weight: the check without the scan passes");
    expect_refused("weight_nan", &nan_spec, true, "blk.1.attn_q.weight");
}

static void zero_long_rope_factor(const char *name, strata_dtype dtype, void *bytes, size_t size, void *user)
{
    (void)dtype;
    (void)user;
    if (strcmp(name, "rope_factors_long.weight") == 0)
        set_float_at(bytes, size, 1, 0.0f);
}

/* The keys of gemma2, gemma3 and phi3 (issue 12), absurd: copies of their
 * transformers fixtures (tests/data/families/) with one key changed. */
static void check_family_hyperparameters(void)
{
    char saved[sizeof base_path];
    memcpy(saved, base_path, sizeof saved);
    typedef struct family_case {
        const char *family, *name;
        rewrite_key key;
        const char *fragment;
    } family_case;
    const family_case cases[] = {
        {"gemma2", "softcap_huge", {.key = "gemma2.attn_logit_softcapping", .kind = REWRITE_FLOAT,
                                    .type = GGUF_TYPE_FLOAT32, .float_value = 1e30}, "attn_logit_softcapping"},
        {"gemma2", "final_softcap_nan", {.key = "gemma2.final_logit_softcapping", .kind = REWRITE_FLOAT,
                                         .type = GGUF_TYPE_FLOAT32, .float_value = NAN}, "final_logit_softcapping"},
        {"gemma2", "window_negative", {.key = "gemma2.attention.sliding_window", .kind = REWRITE_INT,
                                       .type = GGUF_TYPE_INT32, .int_value = -6}, "attention.sliding_window"},
        {"qwen3moe", "experts_huge", {.key = "qwen3moe.expert_count", .kind = REWRITE_INT,
                                      .type = GGUF_TYPE_UINT32, .int_value = 4000000000ll}, "expert_count"},
        {"qwen3moe", "experts_zero", {.key = "qwen3moe.expert_count", .kind = REWRITE_INT,
                                      .type = GGUF_TYPE_UINT32, .int_value = 0}, "expert_count"},
        {"mixtral", "experts_used_past_count", {.key = "llama.expert_used_count", .kind = REWRITE_INT,
                                                .type = GGUF_TYPE_UINT32, .int_value = 5}, "expert_used_count"},
        {"mixtral", "experts_used_zero", {.key = "llama.expert_used_count", .kind = REWRITE_INT,
                                          .type = GGUF_TYPE_UINT32, .int_value = 0}, "expert_used_count"},
        {"gemma2", "window_huge", {.key = "gemma2.attention.sliding_window", .kind = REWRITE_INT,
                                   .type = GGUF_TYPE_UINT64, .int_value = 1ll << 40}, "attention.sliding_window"},
        {"gemma2", "pattern_zero", {.key = "gemma2.attention.sliding_window_pattern", .kind = REWRITE_INT,
                                    .type = GGUF_TYPE_UINT32, .int_value = 0}, "sliding_window_pattern"},
        {"gemma2", "scale_negative", {.key = "gemma2.attention.scale", .kind = REWRITE_FLOAT,
                                      .type = GGUF_TYPE_FLOAT32, .float_value = -0.25}, "attention.scale"},
        {"gemma3", "base_swa_inf", {.key = "gemma3.rope.freq_base_swa", .kind = REWRITE_FLOAT,
                                    .type = GGUF_TYPE_FLOAT32, .float_value = INFINITY}, "rope.freq_base_swa"},
        {"phi3", "attn_factor_huge", {.key = "phi3.rope.scaling.attn_factor", .kind = REWRITE_FLOAT,
                                      .type = GGUF_TYPE_FLOAT32, .float_value = 1e30}, "attn_factor"},
        {"phi3", "orig_ctx_zero", {.key = "phi3.rope.scaling.original_context_length", .kind = REWRITE_INT,
                                   .type = GGUF_TYPE_UINT32, .int_value = 0}, "original_context_length"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        snprintf(base_path, sizeof base_path, STRATA_TEST_DATA_DIR "/families/%s.gguf", cases[c].family);
        expect_refused(cases[c].name, &(rewrite_spec){.keys = &cases[c].key, .n_keys = 1}, false,
                       cases[c].fragment);
    }
    /* an architecture strata does not know keeps its clear error */
    snprintf(base_path, sizeof base_path, STRATA_TEST_DATA_DIR "/families/gemma2.gguf");
    rewrite_key mamba = {.key = "general.architecture", .kind = REWRITE_STRING, .type = GGUF_TYPE_STRING,
                         .string_value = "mamba"};
    expect_refused("unknown_arch", &(rewrite_spec){.keys = &mamba, .n_keys = 1}, false,
                   "architecture 'mamba' is not supported (supported: llama, qwen2, qwen3, olmo2, gemma2, gemma3, "
                   "phi3, qwen3moe, qwen2moe)");
    snprintf(base_path, sizeof base_path, STRATA_TEST_DATA_DIR "/families/phi3.gguf");
    expect_refused("long_factor_zero", &(rewrite_spec){.edit_tensor = zero_long_rope_factor}, false,
                   "rope_factors_long.weight");
    memcpy(base_path, saved, sizeof saved);
}

/* Runs "$STRATA args", stdout and stderr into dir/cmd.out; returns the exit status. */
static int run_strata(const char *args)
{
    const char *strata = getenv("STRATA");
    char command[2048];
    snprintf(command, sizeof command, "'%s' %s >'%s/cmd.out' 2>&1 </dev/null", strata, args, dir);
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool output_has(const char *fragment)
{
    char path[320], text[8192];
    snprintf(path, sizeof path, "%s/cmd.out", dir);
    FILE *file = fopen(path, "r");
    if (!file)
        return false;
    size_t n = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[n] = '\0';
    return strstr(text, fragment) != NULL;
}

static void check_commands(void)
{
    if (!getenv("STRATA")) {
        printf("note: STRATA is not set; the command checks are left out\n");
        return;
    }
    char path[320], args[1024], what[256];
    struct {
        const char *name;
        rewrite_spec spec;
        const char *fragment;
    } cases[] = {
        {"missing_ffn_up", {.drop_tensor = "blk.1.ffn_up.weight"}, "blk.1.ffn_up.weight is missing"},
        {"bos_outside",
         {.keys = &(rewrite_key){.key = "tokenizer.ggml.bos_token_id", .kind = REWRITE_INT, .type = GGUF_TYPE_UINT32,
                                 .int_value = 100000},
          .n_keys = 1},
         "bos_token_id"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        snprintf(path, sizeof path, "%s/%s.gguf", dir, cases[c].name);
        if (!gguf_rewrite(base_path, path, &cases[c].spec)) {
            failures++;
            continue;
        }
        snprintf(args, sizeof args, "info '%s' --no-tensors", path);
        int info_status = run_strata(args);
        bool info_said = output_has(cases[c].fragment);
        snprintf(args, sizeof args, "run -m '%s' --tokens '256 72' -n 2 --temp 0", path);
        int run_status = run_strata(args);
        bool run_said = output_has(cases[c].fragment);
        snprintf(what, sizeof what, "%s: info exits %d, run exits %d, both say '%s'", cases[c].name, info_status,
                 run_status, cases[c].fragment);
        check(info_status == 1 && run_status == 1 && info_said && run_said, what);
    }

    /* a model trained on one position: a three-token prompt is refused with the counts */
    snprintf(path, sizeof path, "%s/ctx1.gguf", dir);
    rewrite_key ctx1 = {.key = "llama.context_length", .kind = REWRITE_INT, .type = GGUF_TYPE_UINT32, .int_value = 1};
    if (!gguf_rewrite(base_path, path, &(rewrite_spec){.keys = &ctx1, .n_keys = 1})) {
        failures++;
        return;
    }
    snprintf(args, sizeof args, "run -m '%s' --tokens '256 72 101' -n 2 --temp 0", path);
    int status = run_strata(args);
    check(status == 1 && output_has("the prompt has 3 tokens but the context holds 1 position"),
          "a 3-token prompt on a model trained on 1 position: exit 1 with the counts");
    snprintf(args, sizeof args, "run -m '%s' --tokens '256 72 101' -n 2 --temp 0 --ctx 8", path);
    status = run_strata(args);
    check(status == 0 && output_has("--ctx 8 is longer than the 1 positions the model was trained on"),
          "--ctx beyond the training length: runs, with a warning");
}

int main(void)
{
    if (!test_make_temp_dir(dir, sizeof dir, "strata_hostile")) {
        printf("FAIL: cannot make a temporary directory\n");
        return 1;
    }
    snprintf(base_path, sizeof base_path, "%s/base.gguf", dir);
    strata_error err = {0};
    strata_synth_params synth = {.arch = "llama", .preset = "tiny", .type = "f32", .seed = 3,
                                 .output_path = base_path};
    if (strata_synth(&synth, &err) != STRATA_OK) {
        printf("FAIL: synth: %s\n", err.message);
        return 1;
    }
    check(strata_model_check(base_path, true, &err) == STRATA_OK, "the untouched model passes the check and scan");
    check_alignment_one();
    check_hyperparameters();
    check_family_hyperparameters();
    check_commands();
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0)
        printf("note: could not remove %s\n", dir);
    if (failures) {
        printf("%d failure%s\n", failures, failures == 1 ? "" : "s");
        return 1;
    }
    return 0;
}
