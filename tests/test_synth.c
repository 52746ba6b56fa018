/* strata_synth and the synth plan: keys, tensors and shapes of every tiny
 * preset read back with the GGUF reader; determinism; the mixes' per-tensor
 * choices; a 70B plan's size without writing it; --vocab; bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "quant.h"
#include "runtime/synth.h"
#include "strata.h"
#include "test_temp.h"

static int failures;

#define CHECK(cond, ...)                                                                                           \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                            \
            printf(__VA_ARGS__);                                                                                   \
            printf("\n");                                                                                          \
            failures++;                                                                                            \
        }                                                                                                          \
    } while (0)

static char temp_dir[512];

static int64_t key_int(const gguf_file *file, const char *key)
{
    int64_t value = -1;
    strata_error err = {0};
    if (gguf_get_int(file, key, &value, &err) != STRATA_OK)
        printf("  %s\n", err.message);
    return value;
}

static double key_float(const gguf_file *file, const char *key)
{
    double value = -1;
    strata_error err = {0};
    if (gguf_get_float(file, key, &value, &err) != STRATA_OK)
        printf("  %s\n", err.message);
    return value;
}

static bool key_string_is(const gguf_file *file, const char *key, const char *expected)
{
    gguf_string value;
    if (gguf_get_string(file, key, &value, NULL) != STRATA_OK)
        return false;
    return value.len == strlen(expected) && memcmp(value.data, expected, value.len) == 0;
}

static bool synth_to(const char *arch, const char *preset, const char *type, uint64_t seed, const char *vocab,
                     const char *path)
{
    strata_synth_params params = {.arch = arch, .preset = preset, .type = type, .seed = seed,
                                  .vocab_path = vocab, .output_path = path};
    strata_error err = {0};
    if (strata_synth(&params, &err) != STRATA_OK) {
        printf("FAIL synth %s %s %s: %s\n", arch, preset, type, err.message);
        failures++;
        return false;
    }
    return true;
}

/* Every key and tensor of a written tiny preset matches its plan. */
static void check_tiny(const char *arch, const char *type)
{
    char path[600], key[128];
    snprintf(path, sizeof path, "%s/%s_%s.gguf", temp_dir, arch, type);
    if (!synth_to(arch, "tiny", type, 7, NULL, path))
        return;
    synth_plan plan;
    strata_error err = {0};
    gguf_file *file = NULL;
    if (synth_plan_create(arch, "tiny", type, 0, &plan, &err) != STRATA_OK || gguf_open(path, &file, &err)) {
        printf("FAIL %s %s: %s\n", arch, type, err.message);
        failures++;
        return;
    }
    const synth_config *c = &plan.config;
    const char *gguf_arch = synth_gguf_arch(c);
    CHECK(key_string_is(file, "general.architecture", gguf_arch), "%s: general.architecture", arch);
    CHECK(key_int(file, "general.file_type") == plan.file_type, "%s %s: file_type", arch, type);
#define CHECK_KEY(suffix, expected)                                                                                \
    do {                                                                                                           \
        snprintf(key, sizeof key, "%s.%s", gguf_arch, suffix);                                                     \
        CHECK(key_int(file, key) == (expected), "%s: %s = %lld, expected %lld", arch, key,                       \
              (long long)key_int(file, key), (long long)(expected));                                              \
    } while (0)
    CHECK_KEY("embedding_length", c->n_embd);
    CHECK_KEY("block_count", c->n_layer);
    CHECK_KEY("feed_forward_length", c->n_ff);
    CHECK_KEY("attention.head_count", c->n_head);
    CHECK_KEY("attention.head_count_kv", c->n_head_kv);
    CHECK_KEY("context_length", c->n_ctx_train);
    CHECK_KEY("rope.dimension_count", c->n_rot ? c->n_rot : c->head_dim);
    CHECK_KEY("vocab_size", c->n_vocab);
    if (c->write_head_dim) {
        CHECK_KEY("attention.key_length", c->head_dim);
        CHECK_KEY("attention.value_length", c->head_dim);
    }
    if (c->n_expert) {
        CHECK_KEY("expert_count", c->n_expert);
        CHECK_KEY("expert_used_count", c->n_expert_used);
        if (c->n_ff_exp)
            CHECK_KEY("expert_feed_forward_length", c->n_ff_exp);
    }
#undef CHECK_KEY
    snprintf(key, sizeof key, "%s.expert_weights_norm", gguf_arch);
    bool weights_norm = false;
    CHECK((gguf_find_key(file, key) >= 0) == c->expert_weights_norm &&
              (!c->expert_weights_norm || (gguf_get_bool(file, key, &weights_norm, NULL) == STRATA_OK && weights_norm)),
          "%s: expert_weights_norm", arch);
    snprintf(key, sizeof key, "%s.rope.freq_base", gguf_arch);
    CHECK(fabs(key_float(file, key) - c->rope_freq_base) < 1e-3 * c->rope_freq_base, "%s: freq_base", arch);
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", gguf_arch);
    CHECK(fabs(key_float(file, key) - c->rms_eps) < 1e-3 * c->rms_eps, "%s: rms eps", arch);

    /* the built-in byte vocabulary */
    gguf_array tokens = {0};
    CHECK(key_string_is(file, "tokenizer.ggml.model", "gpt2"), "tokenizer model");
    CHECK(key_string_is(file, "tokenizer.ggml.pre", "default"), "tokenizer pre");
    CHECK(gguf_get_array(file, "tokenizer.ggml.tokens", &tokens, NULL) == STRATA_OK &&
              tokens.count == (uint64_t)c->n_vocab,
          "token count");
    if (tokens.count > 257) {
        gguf_string space = gguf_array_string(&tokens, 32), letter = gguf_array_string(&tokens, 65);
        gguf_string bos = gguf_array_string(&tokens, 256);
        CHECK(space.len == 2 && memcmp(space.data, "\xC4\xA0", 2) == 0, "byte 0x20 is U+0120");
        CHECK(letter.len == 1 && letter.data[0] == 'A', "byte 0x41 is 'A'");
        CHECK(bos.len == 17 && memcmp(bos.data, "<|begin_of_text|>", 17) == 0, "token 256 is BOS");
    }
    CHECK(key_int(file, "tokenizer.ggml.bos_token_id") == 256, "bos id");
    CHECK(key_int(file, "tokenizer.ggml.eos_token_id") == 257, "eos id");

    /* tensors: the plan, in order, with their shapes and dtypes */
    CHECK(gguf_tensor_count(file) == plan.n_tensors, "%s: %lld tensors, plan has %lld", arch,
          (long long)gguf_tensor_count(file), (long long)plan.n_tensors);
    for (int64_t i = 0; i < plan.n_tensors && i < gguf_tensor_count(file); i++) {
        const synth_tensor *want = &plan.tensors[i];
        const gguf_tensor_info *got = gguf_find_tensor(file, want->name);
        CHECK(got != NULL, "%s: tensor %s missing", arch, want->name);
        if (!got)
            continue;
        CHECK(got->n_dims == want->n_dims && got->ne[0] == want->ne[0] &&
                  (want->n_dims == 1 || got->ne[1] == want->ne[1]) &&
                  (want->n_dims < 3 || got->ne[2] == want->ne[2]) && got->dtype == want->dtype &&
                  got->size_bytes == want->bytes,
              "%s: tensor %s shape/dtype/size", arch, want->name);
    }
    bool has_output = gguf_find_tensor(file, "output.weight") != NULL;
    CHECK(has_output == !c->tied_output, "%s: output.weight presence", arch);
    CHECK((gguf_find_tensor(file, "blk.0.attn_q.bias") != NULL) == c->has_qkv_bias, "%s: qkv bias", arch);
    CHECK((gguf_find_tensor(file, "blk.1.attn_k_norm.weight") != NULL) == c->has_qk_norm, "%s: qk norm", arch);
    /* experts: a router and three 3-D tensors in place of the dense FFN */
    const gguf_tensor_info *router = gguf_find_tensor(file, "blk.1.ffn_gate_inp.weight");
    const gguf_tensor_info *down_exps = gguf_find_tensor(file, "blk.1.ffn_down_exps.weight");
    CHECK((router != NULL) == (c->n_expert > 0) && (down_exps != NULL) == (c->n_expert > 0) &&
              (gguf_find_tensor(file, "blk.1.ffn_down.weight") != NULL) == (c->n_expert == 0),
          "%s: experts or dense FFN", arch);
    if (router)
        CHECK(router->dtype == DTYPE_F32 && router->ne[1] == c->n_expert, "%s: router f32 [n_embd, n_expert]", arch);
    if (down_exps)
        CHECK(down_exps->n_dims == 3 && down_exps->ne[1] == c->n_embd && down_exps->ne[2] == c->n_expert,
              "%s: ffn_down_exps shape", arch);

    /* llama3 rope factors: 1 for the fastest pair, 8 for the slowest */
    const gguf_tensor_info *rope_freqs = gguf_find_tensor(file, "rope_freqs.weight");
    CHECK((rope_freqs != NULL) == c->llama3_rope, "%s: rope_freqs presence", arch);
    if (rope_freqs) {
        float first, last;
        memcpy(&first, rope_freqs->data, 4);
        memcpy(&last, (const char *)rope_freqs->data + 4 * (rope_freqs->ne[0] - 1), 4);
        CHECK(first == 1.0f && last == 8.0f, "rope factors %g .. %g", first, last);
    }

    /* spreads: embedding ~ N(0, 1/n_embd), norm weights ~ 1 */
    const gguf_tensor_info *norm = gguf_find_tensor(file, "output_norm.weight");
    if (norm && norm->dtype == DTYPE_F32) {
        double sum = 0;
        for (int64_t i = 0; i < norm->ne[0]; i++) {
            float v;
            memcpy(&v, (const char *)norm->data + 4 * i, 4);
            sum += v;
        }
        CHECK(fabs(sum / (double)norm->ne[0] - 1.0) < 0.05, "norm weights mean %g", sum / (double)norm->ne[0]);
    }
    const gguf_tensor_info *embd = gguf_find_tensor(file, "token_embd.weight");
    if (embd && embd->dtype == DTYPE_F32) {
        double sum_sq = 0;
        int64_t n = embd->ne[0] * embd->ne[1];
        for (int64_t i = 0; i < n; i++) {
            float v;
            memcpy(&v, (const char *)embd->data + 4 * i, 4);
            sum_sq += (double)v * v;
        }
        double std = sqrt(sum_sq / (double)n), want = 1.0 / sqrt((double)c->n_embd);
        CHECK(fabs(std / want - 1.0) < 0.05, "embedding std %g, expected %g", std, want);
    }
    printf("ok   tiny %-6s %-7s %3lld tensors %9llu bytes\n", arch, type, (long long)plan.n_tensors,
           (unsigned long long)plan.total_bytes);
    gguf_close(file);
    synth_plan_free(&plan);
    remove(path);
}

static bool files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool equal = fa && fb;
    while (equal) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            equal = false;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return equal;
}

static void check_determinism(void)
{
    char a[600], b[600], c[600];
    snprintf(a, sizeof a, "%s/seed1_a.gguf", temp_dir);
    snprintf(b, sizeof b, "%s/seed1_b.gguf", temp_dir);
    snprintf(c, sizeof c, "%s/seed2.gguf", temp_dir);
    if (synth_to("qwen3", "tiny", "q4_k_m", 1, NULL, a) && synth_to("qwen3", "tiny", "q4_k_m", 1, NULL, b) &&
        synth_to("qwen3", "tiny", "q4_k_m", 2, NULL, c)) {
        CHECK(files_equal(a, b), "same seed gives different files");
        CHECK(!files_equal(a, c), "different seeds give the same file");
        printf("ok   determinism\n");
    }
    remove(a);
    remove(b);
    remove(c);
}

/* --distinct-rows: every row r of a matrix holds row r % N of the full
 * synth's matrix (the same bytes), and tensors of at most N rows are whole. */
static void check_distinct_rows(void)
{
    char full_path[600], repeated_path[600];
    snprintf(full_path, sizeof full_path, "%s/rows_full.gguf", temp_dir);
    snprintf(repeated_path, sizeof repeated_path, "%s/rows_repeated.gguf", temp_dir);
    const int64_t distinct = 3;
    strata_synth_params params = {.arch = "llama", .preset = "tiny", .type = "q4_k_m", .seed = 5,
                                  .output_path = repeated_path, .distinct_rows = distinct};
    strata_error err = {0};
    gguf_file *full = NULL, *repeated = NULL;
    if (!synth_to("llama", "tiny", "q4_k_m", 5, NULL, full_path) ||
        strata_synth(&params, &err) != STRATA_OK || gguf_open(full_path, &full, &err) != STRATA_OK ||
        gguf_open(repeated_path, &repeated, &err) != STRATA_OK) {
        CHECK(false, "distinct rows: %s", err.message);
    } else {
        int64_t n_tensors = gguf_tensor_count(full), n_repeating = 0, mismatches = 0;
        CHECK(gguf_tensor_count(repeated) == n_tensors, "distinct rows changed the tensor count");
        for (int64_t i = 0; i < n_tensors; i++) {
            const gguf_tensor_info *a = gguf_tensor(full, i);
            const gguf_tensor_info *b = gguf_find_tensor(repeated, a->name);
            if (!b || b->size_bytes != a->size_bytes || b->dtype != a->dtype) {
                CHECK(false, "distinct rows: tensor %s differs in shape or type", a->name);
                continue;
            }
            const int64_t n_rows = a->ne[1] * a->ne[2] * a->ne[3]; /* unused dims are 1 */
            const size_t row_bytes = a->size_bytes / (size_t)n_rows;
            n_repeating += n_rows > distinct;
            for (int64_t r = 0; r < n_rows; r++) {
                const int64_t source = n_rows > distinct ? r % distinct : r;
                if (memcmp((const char *)b->data + (size_t)r * row_bytes,
                           (const char *)a->data + (size_t)source * row_bytes, row_bytes) != 0)
                    mismatches++;
            }
        }
        CHECK(mismatches == 0, "distinct rows: %lld rows are not the full synth's row r %% %lld",
              (long long)mismatches, (long long)distinct);
        CHECK(n_repeating > 0, "distinct rows: no tensor has more than %lld rows", (long long)distinct);
        printf("ok   distinct rows (%lld of %lld tensors repeat)\n", (long long)n_repeating, (long long)n_tensors);
    }
    params.distinct_rows = -1;
    CHECK(strata_synth(&params, &err) == STRATA_INVALID_INPUT, "negative distinct rows accepted");
    gguf_close(full);
    gguf_close(repeated);
    remove(full_path);
    remove(repeated_path);
}

static strata_dtype planned_dtype(const synth_plan *plan, const char *name)
{
    for (int64_t i = 0; i < plan->n_tensors; i++)
        if (strcmp(plan->tensors[i].name, name) == 0)
            return plan->tensors[i].dtype;
    return (strata_dtype)-1;
}

/* The i-quant mixes follow llama.cpp's choices (the table in synth_presets.c);
 * the sizes are those of the published llama.cpp files of Llama 3 70B. */
static void check_iq_mixes(void)
{
    synth_plan plan;
    strata_error err = {0};
    if (synth_plan_create(NULL, "llama3-70b", "iq2_xs_mix", 0, &plan, &err) != STRATA_OK) {
        printf("FAIL plan llama3-70b iq2_xs_mix: %s\n", err.message);
        failures++;
        return;
    }
    CHECK(plan.file_type == 20, "iq2_xs_mix is ftype 20");
    CHECK(planned_dtype(&plan, "output.weight") == DTYPE_Q5_K, "iq2_xs_mix output is q5_k");
    CHECK(planned_dtype(&plan, "token_embd.weight") == DTYPE_Q2_K, "iq2_xs_mix token_embd is q2_k");
    CHECK(planned_dtype(&plan, "blk.40.attn_v.weight") == DTYPE_Q4_K, "iq2_xs_mix attn_v with gqa 8 is q4_k");
    CHECK(planned_dtype(&plan, "blk.9.ffn_down.weight") == DTYPE_Q2_K, "iq2_xs_mix blk.9.ffn_down is q2_k");
    CHECK(planned_dtype(&plan, "blk.10.ffn_down.weight") == DTYPE_IQ2_XS, "iq2_xs_mix blk.10.ffn_down is iq2_xs");
    CHECK(planned_dtype(&plan, "blk.10.attn_output.weight") == DTYPE_IQ2_XS, "iq2_xs_mix attn_output is iq2_xs");
    /* llama.cpp's Llama-3-70B IQ2_XS files are about 21.1 GB */
    CHECK(plan.total_bytes > 20.0e9 && plan.total_bytes < 22.0e9, "llama3-70b iq2_xs_mix is %llu bytes",
          (unsigned long long)plan.total_bytes);
    printf("ok   llama3-70b iq2_xs_mix plan: %llu bytes\n", (unsigned long long)plan.total_bytes);
    synth_plan_free(&plan);

    if (synth_plan_create(NULL, "llama3-70b", "iq2_xs", 0, &plan, &err) == STRATA_OK) {
        CHECK(planned_dtype(&plan, "output.weight") == DTYPE_IQ2_XS && planned_dtype(&plan, "blk.0.attn_v.weight") ==
                  DTYPE_IQ2_XS, "iq2_xs is pure");
        printf("ok   llama3-70b iq2_xs plan: %llu bytes\n", (unsigned long long)plan.total_bytes);
        synth_plan_free(&plan);
    }
    if (synth_plan_create(NULL, "llama3-70b", "iq3_m", 0, &plan, &err) == STRATA_OK) {
        CHECK(plan.file_type == 27, "iq3_m is ftype 27");
        CHECK(planned_dtype(&plan, "blk.20.attn_q.weight") == DTYPE_IQ3_S, "iq3_m attn_q is iq3_s");
        CHECK(planned_dtype(&plan, "blk.20.attn_v.weight") == DTYPE_Q4_K, "iq3_m attn_v is q4_k");
        CHECK(planned_dtype(&plan, "blk.20.attn_output.weight") == DTYPE_Q4_K, "iq3_m attn_output is q4_k");
        CHECK(planned_dtype(&plan, "blk.5.ffn_down.weight") == DTYPE_Q4_K, "iq3_m blk.5.ffn_down is q4_k");
        CHECK(planned_dtype(&plan, "blk.20.ffn_down.weight") == DTYPE_IQ3_S, "iq3_m blk.20.ffn_down is iq3_s");
        CHECK(planned_dtype(&plan, "output.weight") == DTYPE_Q6_K, "iq3_m output is q6_k");
        /* llama.cpp's Llama-3-70B IQ3_M files are about 31.9 GB */
        CHECK(plan.total_bytes > 30.5e9 && plan.total_bytes < 33.0e9, "llama3-70b iq3_m is %llu bytes",
              (unsigned long long)plan.total_bytes);
        printf("ok   llama3-70b iq3_m plan: %llu bytes\n", (unsigned long long)plan.total_bytes);
        synth_plan_free(&plan);
    }
    if (synth_plan_create(NULL, "qwen2.5-7b", "iq4_xs_mix", 0, &plan, &err) == STRATA_OK) {
        CHECK(planned_dtype(&plan, "blk.3.attn_v.weight") == DTYPE_Q5_K, "iq4_xs_mix attn_v with gqa 7 is q5_k");
        CHECK(planned_dtype(&plan, "blk.1.ffn_down.weight") == DTYPE_Q5_K, "iq4_xs_mix blk.1.ffn_down is q5_k");
        CHECK(planned_dtype(&plan, "blk.3.ffn_down.weight") == DTYPE_IQ4_XS, "iq4_xs_mix blk.3.ffn_down is iq4_xs");
        CHECK(planned_dtype(&plan, "token_embd.weight") == DTYPE_IQ4_XS, "iq4_xs_mix token_embd is iq4_xs");
        synth_plan_free(&plan);
    }
    if (synth_plan_create(NULL, "llama2-7b", "iq1_m_mix", 0, &plan, &err) == STRATA_OK) {
        CHECK(planned_dtype(&plan, "blk.3.attn_v.weight") == DTYPE_Q2_K, "iq1_m_mix attn_v without gqa is q2_k");
        CHECK(planned_dtype(&plan, "blk.3.attn_output.weight") == DTYPE_IQ2_XXS, "iq1_m_mix attn_output is iq2_xxs");
        CHECK(planned_dtype(&plan, "blk.3.ffn_up.weight") == DTYPE_IQ1_M, "iq1_m_mix ffn_up is iq1_m");
        synth_plan_free(&plan);
    }
    if (synth_plan_create(NULL, "llama2-7b", "iq2_m", 0, &plan, &err) == STRATA_OK) {
        CHECK(planned_dtype(&plan, "blk.3.attn_v.weight") == DTYPE_IQ3_S, "iq2_m attn_v without gqa is iq3_s");
        CHECK(planned_dtype(&plan, "token_embd.weight") == DTYPE_IQ3_S, "iq2_m token_embd is iq3_s");
        CHECK(planned_dtype(&plan, "blk.3.ffn_up.weight") == DTYPE_IQ2_S, "iq2_m ffn_up is iq2_s");
        synth_plan_free(&plan);
    }
}

/* The mixes' choices on a 32-layer model, and large tensor tables. */
static void check_large_plans(void)
{
    synth_plan plan;
    strata_error err = {0};
    if (synth_plan_create("llama", "llama3-8b", "q4_k_m", 0, &plan, &err) != STRATA_OK) {
        printf("FAIL plan llama3-8b: %s\n", err.message);
        failures++;
        return;
    }
    CHECK(planned_dtype(&plan, "output.weight") == DTYPE_Q6_K, "q4_k_m output is q6_k");
    CHECK(planned_dtype(&plan, "token_embd.weight") == DTYPE_Q4_K, "q4_k_m token_embd is q4_k");
    CHECK(planned_dtype(&plan, "blk.0.attn_v.weight") == DTYPE_Q6_K, "q4_k_m blk.0.attn_v is q6_k");
    CHECK(planned_dtype(&plan, "blk.4.attn_v.weight") == DTYPE_Q4_K, "q4_k_m blk.4.attn_v is q4_k");
    CHECK(planned_dtype(&plan, "blk.6.ffn_down.weight") == DTYPE_Q6_K, "q4_k_m blk.6.ffn_down is q6_k");
    CHECK(planned_dtype(&plan, "blk.31.ffn_down.weight") == DTYPE_Q6_K, "q4_k_m blk.31.ffn_down is q6_k");
    CHECK(planned_dtype(&plan, "blk.10.attn_q.weight") == DTYPE_Q4_K, "q4_k_m attn_q is q4_k");
    CHECK(planned_dtype(&plan, "blk.10.ffn_norm.weight") == DTYPE_F32, "norms are f32");
    CHECK(planned_dtype(&plan, "rope_freqs.weight") == DTYPE_F32, "rope_freqs is f32");
    CHECK(plan.n_tensors == 2 + 32 * 9 + 2, "llama3-8b has %lld tensors", (long long)plan.n_tensors);
    /* Llama 3.1 8B Q4_K_M files are about 4.92 GB */
    CHECK(plan.total_bytes > 4.6e9 && plan.total_bytes < 5.2e9, "llama3-8b q4_k_m is %llu bytes",
          (unsigned long long)plan.total_bytes);
    printf("ok   llama3-8b q4_k_m plan: %llu bytes\n", (unsigned long long)plan.total_bytes);
    synth_plan_free(&plan);

    if (synth_plan_create(NULL, "llama3-70b", "q4_k_m", 0, &plan, &err) != STRATA_OK) {
        printf("FAIL plan llama3-70b: %s\n", err.message);
        failures++;
        return;
    }
    /* Llama 3.1 70B Q4_K_M files are about 42.5 GB (llama.cpp also bumps the
     * 70B attn_v to q5_k, which this plan does not: a few hundred MB). */
    CHECK(plan.total_bytes > 40.0e9 && plan.total_bytes < 44.0e9, "llama3-70b q4_k_m is %llu bytes",
          (unsigned long long)plan.total_bytes);
    CHECK(plan.n_tensors == 2 + 80 * 9 + 2, "llama3-70b has %lld tensors", (long long)plan.n_tensors);
    printf("ok   llama3-70b q4_k_m plan: %llu bytes\n", (unsigned long long)plan.total_bytes);
    synth_plan_free(&plan);

    if (synth_plan_create(NULL, "llama2-7b", "f16", 0, &plan, &err) == STRATA_OK) {
        /* LLaMA 2 7B has 6.74e9 parameters */
        CHECK(plan.total_bytes > 13.4e9 && plan.total_bytes < 13.6e9, "llama2-7b f16 is %llu bytes",
              (unsigned long long)plan.total_bytes);
        printf("ok   llama2-7b f16 plan: %llu bytes\n", (unsigned long long)plan.total_bytes);
        synth_plan_free(&plan);
    }
    if (synth_plan_create(NULL, "qwen2.5-7b", "q2_k_mix", 0, &plan, &err) == STRATA_OK) {
        CHECK(planned_dtype(&plan, "blk.3.attn_v.weight") == DTYPE_Q4_K, "q2_k_mix attn_v with gqa 7 is q4_k");
        CHECK(planned_dtype(&plan, "blk.3.attn_q.bias") == DTYPE_F32, "biases are f32");
        synth_plan_free(&plan);
    }
    check_iq_mixes();
}

/* The MoE presets: their parameter counts (the published models'), the mix's
 * rules for models with experts (the table in synth_presets.c), and the size
 * of llama.cpp's published Q4_K_M files. */
static void check_moe_plans(void)
{
    synth_plan plan;
    strata_error err = {0};
    if (synth_plan_create(NULL, "mixtral-8x7b", "f16", 0, &plan, &err) == STRATA_OK) {
        /* Mixtral 8x7B has 46.7e9 parameters (the router in f32 adds 2 MB) */
        CHECK(plan.total_bytes > 93.0e9 && plan.total_bytes < 93.8e9, "mixtral-8x7b f16 is %llu bytes",
              (unsigned long long)plan.total_bytes);
        CHECK(strcmp(synth_gguf_arch(&plan.config), "llama") == 0, "mixtral is written as llama");
        CHECK(plan.n_tensors == 2 + 32 * 10 + 1, "mixtral-8x7b has %lld tensors", (long long)plan.n_tensors);
        synth_plan_free(&plan);
    } else {
        printf("FAIL plan mixtral-8x7b f16: %s\n", err.message);
        failures++;
    }
    if (synth_plan_create(NULL, "qwen3-30b-a3b", "f16", 0, &plan, &err) == STRATA_OK) {
        /* Qwen3-30B-A3B has 30.5e9 parameters */
        CHECK(plan.total_bytes > 60.7e9 && plan.total_bytes < 61.4e9, "qwen3-30b-a3b f16 is %llu bytes",
              (unsigned long long)plan.total_bytes);
        synth_plan_free(&plan);
    } else {
        printf("FAIL plan qwen3-30b-a3b f16: %s\n", err.message);
        failures++;
    }
    if (synth_plan_create(NULL, "mixtral-8x7b", "q4_k_m", 0, &plan, &err) == STRATA_OK) {
        CHECK(planned_dtype(&plan, "blk.10.attn_k.weight") == DTYPE_Q8_0, "8 experts: q4_k_m attn_k is q8_0");
        CHECK(planned_dtype(&plan, "blk.10.attn_v.weight") == DTYPE_Q8_0, "8 experts: q4_k_m attn_v is q8_0");
        CHECK(planned_dtype(&plan, "blk.10.attn_output.weight") == DTYPE_Q5_K, "8 experts: q4_k_m attn_output is q5_k");
        CHECK(planned_dtype(&plan, "blk.10.attn_q.weight") == DTYPE_Q4_K, "q4_k_m attn_q is q4_k");
        CHECK(planned_dtype(&plan, "blk.10.ffn_gate_inp.weight") == DTYPE_F32, "the router is f32");
        CHECK(planned_dtype(&plan, "blk.10.ffn_gate_exps.weight") == DTYPE_Q4_K, "q4_k_m ffn_gate_exps is q4_k");
        CHECK(planned_dtype(&plan, "blk.10.ffn_down_exps.weight") == DTYPE_Q4_K, "q4_k_m blk.10.ffn_down_exps is q4_k");
        CHECK(planned_dtype(&plan, "blk.6.ffn_down_exps.weight") == DTYPE_Q6_K, "q4_k_m blk.6.ffn_down_exps is q6_k");
        CHECK(planned_dtype(&plan, "blk.31.ffn_down_exps.weight") == DTYPE_Q6_K, "q4_k_m blk.31.ffn_down_exps is q6_k");
        /* the rules above give 28.45e9 bytes (ffn_down_exps q6_k on 16 of 32
         * layers); the widely used Q4_K_M file of December 2023, quantized
         * before llama.cpp had these rules, is smaller (26.4e9) */
        CHECK(plan.total_bytes > 28.0e9 && plan.total_bytes < 28.9e9, "mixtral-8x7b q4_k_m is %llu bytes",
              (unsigned long long)plan.total_bytes);
        printf("ok   mixtral-8x7b q4_k_m plan: %llu bytes\n", (unsigned long long)plan.total_bytes);
        synth_plan_free(&plan);
    }
    if (synth_plan_create(NULL, "mixtral-8x7b", "iq2_xs_mix", 0, &plan, &err) == STRATA_OK) {
        CHECK(planned_dtype(&plan, "blk.10.attn_k.weight") == DTYPE_Q4_K, "8 experts: iq2_xs_mix attn_k is q4_k");
        CHECK(planned_dtype(&plan, "blk.10.attn_v.weight") == DTYPE_Q4_K, "8 experts: iq2_xs_mix attn_v is q4_k");
        CHECK(planned_dtype(&plan, "blk.10.attn_output.weight") == DTYPE_Q5_K, "8 experts: iq2_xs_mix attn_output is q5_k");
        CHECK(planned_dtype(&plan, "blk.1.ffn_down_exps.weight") == DTYPE_Q2_K, "iq2_xs_mix blk.1.ffn_down_exps is q2_k");
        CHECK(planned_dtype(&plan, "blk.10.ffn_up_exps.weight") == DTYPE_IQ2_XS, "iq2_xs_mix ffn_up_exps is iq2_xs");
        synth_plan_free(&plan);
    }
    if (synth_plan_create(NULL, "qwen3-30b-a3b", "q4_k_m", 0, &plan, &err) == STRATA_OK) {
        /* 128 experts: none of the 8-expert rules */
        CHECK(planned_dtype(&plan, "blk.10.attn_k.weight") == DTYPE_Q4_K, "128 experts: q4_k_m attn_k is q4_k");
        CHECK(planned_dtype(&plan, "blk.10.attn_output.weight") == DTYPE_Q4_K, "128 experts: attn_output is q4_k");
        CHECK(planned_dtype(&plan, "blk.0.ffn_down_exps.weight") == DTYPE_Q6_K, "q4_k_m blk.0.ffn_down_exps is q6_k");
        CHECK(planned_dtype(&plan, "blk.7.ffn_down_exps.weight") == DTYPE_Q4_K, "q4_k_m blk.7.ffn_down_exps is q4_k");
        /* llama.cpp's Qwen3-30B-A3B Q4_K_M files are about 18.6e9 bytes */
        CHECK(plan.total_bytes > 18.0e9 && plan.total_bytes < 19.0e9, "qwen3-30b-a3b q4_k_m is %llu bytes",
              (unsigned long long)plan.total_bytes);
        printf("ok   qwen3-30b-a3b q4_k_m plan: %llu bytes\n", (unsigned long long)plan.total_bytes);
        synth_plan_free(&plan);
    }
    if (synth_plan_create(NULL, "qwen1.5-moe-a2.7b", "f16", 0, &plan, &err) == STRATA_OK) {
        /* Qwen1.5-MoE-A2.7B has 14.3e9 parameters; per layer 9 + 3 biases +
         * the router, the experts' 3 and the shared expert's 4 tensors */
        CHECK(plan.total_bytes > 28.4e9 && plan.total_bytes < 28.8e9, "qwen1.5-moe-a2.7b f16 is %llu bytes",
              (unsigned long long)plan.total_bytes);
        CHECK(plan.n_tensors == 2 + 24 * 17 + 1, "qwen1.5-moe-a2.7b has %lld tensors", (long long)plan.n_tensors);
        synth_plan_free(&plan);
    } else {
        printf("FAIL plan qwen1.5-moe-a2.7b f16: %s\n", err.message);
        failures++;
    }
    if (synth_plan_create(NULL, "qwen1.5-moe-a2.7b", "q4_k_m", 0, &plan, &err) == STRATA_OK) {
        /* the shared expert's gate stays f32; its FFN takes the dense rules */
        CHECK(planned_dtype(&plan, "blk.10.ffn_gate_inp_shexp.weight") == DTYPE_F32, "the shared gate is f32");
        CHECK(planned_dtype(&plan, "blk.10.ffn_up_shexp.weight") == DTYPE_Q4_K, "q4_k_m ffn_up_shexp is q4_k");
        CHECK(planned_dtype(&plan, "blk.0.ffn_down_shexp.weight") == DTYPE_Q6_K, "q4_k_m blk.0.ffn_down_shexp is q6_k");
        /* the experts' rows (1408) are not whole K-quant blocks: q6_k falls back to q8_0 */
        CHECK(planned_dtype(&plan, "blk.0.ffn_down_exps.weight") == DTYPE_Q8_0, "q4_k_m blk.0.ffn_down_exps is q8_0");
        CHECK(planned_dtype(&plan, "blk.10.ffn_gate_exps.weight") == DTYPE_Q4_K, "q4_k_m ffn_gate_exps is q4_k");
        CHECK(planned_dtype(&plan, "blk.10.attn_k.weight") == DTYPE_Q4_K, "60 experts: q4_k_m attn_k is q4_k");
        printf("ok   qwen1.5-moe-a2.7b q4_k_m plan: %llu bytes\n", (unsigned long long)plan.total_bytes);
        synth_plan_free(&plan);
    }
    if (synth_plan_create(NULL, "qwen3-30b-a3b", "iq2_xxs_mix", 0, &plan, &err) == STRATA_OK) {
        CHECK(planned_dtype(&plan, "blk.10.attn_v.weight") == DTYPE_Q4_K, "4+ experts: iq2_xxs_mix attn_v is q4_k");
        CHECK(planned_dtype(&plan, "blk.10.attn_k.weight") == DTYPE_IQ2_XXS, "128 experts: iq2_xxs_mix attn_k");
        synth_plan_free(&plan);
    }
}

static void check_vocab_copy(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/vocab.gguf", temp_dir);
    if (!synth_to("llama", "tiny", "q8_0", 1, STRATA_MODELS_DIR "/llama-2-tiny-random.gguf", path))
        return;
    gguf_file *file = NULL;
    strata_error err = {0};
    if (gguf_open(path, &file, &err) != STRATA_OK) {
        printf("FAIL %s\n", err.message);
        failures++;
        return;
    }
    gguf_array tokens = {0};
    CHECK(key_string_is(file, "tokenizer.ggml.model", "llama"), "--vocab copies the tokenizer model");
    CHECK(gguf_get_array(file, "tokenizer.ggml.tokens", &tokens, NULL) == STRATA_OK && tokens.count == 32000,
          "--vocab copies 32000 tokens");
    const gguf_tensor_info *embd = gguf_find_tensor(file, "token_embd.weight");
    CHECK(embd && embd->ne[1] == 32000, "--vocab sets n_vocab");
    CHECK(key_int(file, "llama.vocab_size") == 32000, "vocab_size key");
    printf("ok   --vocab\n");
    gguf_close(file);
    remove(path);
}

static void check_bad_input(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/bad.gguf", temp_dir);
    const char *cases[][3] = {
        {"llama", "no-such-preset", "q4_0"},
        {"llama", "tiny", "q9_9"},
        {"qwen2", "llama3-8b", "q4_0"}, /* arch does not match the preset */
        {"mamba", "tiny", "f32"},
        {"llama", "tiny", "q8_k"},      /* an activation format, not a storage type */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strata_synth_params params = {.arch = cases[i][0], .preset = cases[i][1], .type = cases[i][2],
                                      .output_path = path};
        strata_error err = {0};
        strata_status status = strata_synth(&params, &err);
        CHECK(status == STRATA_INVALID_INPUT && err.message[0], "%s %s %s should be rejected", cases[i][0],
              cases[i][1], cases[i][2]);
        CHECK(access(path, F_OK) != 0, "a rejected synth left %s behind", path);
    }
    strata_synth_params missing_vocab = {.arch = "llama", .preset = "tiny", .type = "f32",
                                         .vocab_path = "no-such-vocab.gguf", .output_path = path};
    strata_error err = {0};
    CHECK(strata_synth(&missing_vocab, &err) == STRATA_IO, "missing --vocab file: %s", err.message);
    CHECK(access(path, F_OK) != 0, "a failed synth left %s behind", path);
    const char *const *names = strata_synth_preset_names();
    int n_names = 0;
    while (names[n_names])
        n_names++;
    CHECK(n_names == 22, "%d preset names", n_names);
    printf("ok   bad input\n");
}

int main(void)
{
    if (!test_make_temp_dir(temp_dir, sizeof temp_dir, "strata_synth")) {
        fprintf(stderr, "test_synth: cannot create a temporary directory\n");
        return 1;
    }
    const char *types[] = {"f32",   "q4_k_m", "q2_k_mix", "q3_k_m", "q4_k_s",     "q5_k_m",
                           "bf16",  "q5_1",   "iq2_xs",   "iq3_m",  "iq4_xs_mix", "mxfp4"};
    const char *archs[] = {"llama", "qwen2", "qwen3", "mixtral", "qwen3moe", "qwen2moe"};
    for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++)
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            check_tiny(archs[a], types[t]);
    const char *families[] = {"olmo2", "gemma2", "gemma3", "phi3"};
    for (size_t a = 0; a < sizeof families / sizeof families[0]; a++) {
        check_tiny(families[a], "f32");
        check_tiny(families[a], "q4_k_m");
    }
    check_determinism();
    check_distinct_rows();
    check_large_plans();
    check_moe_plans();
    check_vocab_copy();
    check_bad_input();
    rmdir(temp_dir);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("all synth checks passed\n");
    return 0;
}
