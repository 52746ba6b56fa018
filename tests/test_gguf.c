/* GGUF reader and writer: round trip of every value type and several dtypes
 * (v2 and v3), a fixture written by Python's gguf package as an independent
 * reference, the two bundled models, and a corpus of malformed files that
 * must each be rejected with a message naming what is wrong. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "gguf.h"

#include "test_check.h"

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
    gguf_format_value(file, gguf_find_key(file, "llama.attention.layer_norm_rms_epsilon"), text, sizeof text);
    CHECK(strcmp(text, "1e-05") == 0, "format eps: %s", text);
    gguf_close(file);
}

/* --- fixture written by Python's gguf.GGUFWriter ------------------------- */

static gguf_file *open_reference(void)
{
    gguf_file *file = NULL;
    strata_error err = {0};
    if (gguf_open(STRATA_TEST_DATA_DIR "/gguf/python_reference.gguf", &file, &err) != STRATA_OK)
        CHECK(0, "open python_reference.gguf: %s", err.message);
    return file;
}

static double float_key(const gguf_file *file, const char *key)
{
    double value = -12345;
    strata_error err = {0};
    if (gguf_get_float(file, key, &value, &err) != STRATA_OK)
        CHECK(0, "%s", err.message);
    return value;
}

static gguf_array array_key(const gguf_file *file, const char *key)
{
    gguf_array array = {0};
    strata_error err = {0};
    if (gguf_get_array(file, key, &array, &err) != STRATA_OK)
        CHECK(0, "%s", err.message);
    return array;
}

/* The nested keys of the Python fixture; also checked after gguf_writer_copy_key. */
static void check_nested_keys(const gguf_file *file)
{
    gguf_array nested = array_key(file, "test.nested");
    CHECK(nested.count == 2 && nested.elem_type == GGUF_TYPE_ARRAY, "nested outer");
    gguf_array first = gguf_array_nested(&nested, 0), second = gguf_array_nested(&nested, 1);
    CHECK(first.count == 3 && gguf_array_int(&first, 0) == 1 && gguf_array_int(&first, 2) == 3, "nested[0]");
    CHECK(second.count == 2 && gguf_array_int(&second, 1) == 5, "nested[1]");
    gguf_array nested_str = array_key(file, "test.nested_str");
    gguf_array strs0 = gguf_array_nested(&nested_str, 0), strs1 = gguf_array_nested(&nested_str, 1);
    CHECK(strs0.elem_type == GGUF_TYPE_STRING && string_is(gguf_array_string(&strs0, 0), "ab") &&
              string_is(gguf_array_string(&strs0, 1), "c") && string_is(gguf_array_string(&strs1, 0), "d"),
          "nested_str");
    gguf_array nested3 = array_key(file, "test.nested3");
    gguf_array n30 = gguf_array_nested(&nested3, 0), n31 = gguf_array_nested(&nested3, 1);
    gguf_array n300 = gguf_array_nested(&n30, 0), n310 = gguf_array_nested(&n31, 0), n311 = gguf_array_nested(&n31, 1);
    CHECK(n300.count == 1 && gguf_array_int(&n300, 0) == 7, "nested3[0][0]");
    CHECK(n310.count == 2 && gguf_array_int(&n310, 1) == 9 && n311.count == 1 && gguf_array_int(&n311, 0) == 10,
          "nested3[1]");
    /* misuse returns zero values, never reads outside */
    CHECK(gguf_array_nested(&n300, 0).count == 0 && gguf_array_int(&n300, 5) == 0 &&
              gguf_array_string(&n300, 0).len == 0, "misuse of arrays");
    char text[256];
    gguf_format_value(file, gguf_find_key(file, "test.nested3"), text, sizeof text);
    CHECK(strcmp(text, "[[[7]], [[8, 9], [10]]]") == 0, "format nested3: %s", text);
}

static void test_python_reference(void)
{
    gguf_file *file = open_reference();
    if (!file)
        return;
    strata_error err = {0};
    CHECK(gguf_version(file) == 3 && gguf_key_count(file) == 21 && gguf_tensor_count(file) == 4,
          "version %u keys %" PRId64 " tensors %" PRId64, gguf_version(file), gguf_key_count(file),
          gguf_tensor_count(file));
    CHECK(gguf_data_offset(file) == 1120, "data offset %zu", gguf_data_offset(file));
    CHECK(int_key(file, "test.u8") == 200 && int_key(file, "test.i8") == -100, "8-bit");
    CHECK(int_key(file, "test.u16") == 60000 && int_key(file, "test.i16") == -30000, "16-bit");
    CHECK(int_key(file, "test.u32") == 4000000000ll && int_key(file, "test.i32") == -2000000000, "32-bit");
    CHECK(int_key(file, "test.i64") == -9000000000000000000ll, "i64");
    int64_t too_big;
    CHECK(gguf_get_int(file, "test.u64", &too_big, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "does not fit"), "u64 above INT64_MAX: %s", err.message);
    char text[256];
    gguf_format_value(file, gguf_find_key(file, "test.u64"), text, sizeof text);
    CHECK(strcmp(text, "18000000000000000000") == 0, "format u64: %s", text);
    CHECK(float_key(file, "test.f32") == 1.5 && float_key(file, "test.f64") == -2.25e-300, "floats");
    bool flag = false;
    CHECK(gguf_get_bool(file, "test.bool_true", &flag, &err) == STRATA_OK && flag, "bool true");
    CHECK(gguf_get_bool(file, "test.bool_false", &flag, &err) == STRATA_OK && !flag, "bool false");
    CHECK(gguf_get_bool_or(file, "test.absent", true, &flag, &err) == STRATA_OK && flag, "bool_or");
    double f;
    CHECK(gguf_get_float(file, "test.u8", &f, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "expected a float, found uint8"), "%s", err.message);
    gguf_string text_value;
    CHECK(gguf_get_string(file, "test.string", &text_value, &err) == STRATA_OK &&
              string_is(text_value, "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c"), "utf-8 string");
    gguf_array ints = array_key(file, "test.array_i32");
    CHECK(ints.count == 3 && ints.elem_type == GGUF_TYPE_INT32 && gguf_array_int(&ints, 1) == -2, "array_i32");
    int32_t raw[3];
    memcpy(raw, gguf_array_raw(&ints), sizeof raw);
    CHECK(raw[2] == 3, "array raw");
    gguf_array floats = array_key(file, "test.array_f32");
    CHECK(floats.count == 2 && gguf_array_float(&floats, 1) == -1.0, "array_f32");
    gguf_array strs = array_key(file, "test.array_str");
    CHECK(strs.count == 3 && string_is(gguf_array_string(&strs, 1), "") &&
              string_is(gguf_array_string(&strs, 2), "xyz"), "array_str");
    gguf_format_value(file, gguf_find_key(file, "test.array_str"), text, sizeof text);
    CHECK(strcmp(text, "[\"a\", \"\", \"xyz\"]") == 0, "format array_str: %s", text);
    check_nested_keys(file);
    gguf_array level = array_key(file, "test.nested4");
    for (int depth = 1; depth < 4; depth++)
        level = gguf_array_nested(&level, 0);
    CHECK(level.count == 1 && level.elem_type == GGUF_TYPE_FLOAT32 && gguf_array_float(&level, 0) == -1.5,
          "nested4");

    const gguf_tensor_info *t = gguf_find_tensor(file, "t.f32");
    CHECK(t && t->n_dims == 2 && t->ne[0] == 3 && t->ne[1] == 2 && t->size_bytes == 24, "t.f32 shape");
    if (t) {
        float values[6];
        memcpy(values, t->data, sizeof values);
        CHECK(values[0] == 0 && values[5] == 5, "t.f32 data");
    }
    t = gguf_find_tensor(file, "t.q8_0");
    CHECK(t && t->dtype == DTYPE_Q8_0 && t->ne[0] == 64 && t->size_bytes == 68 && t->offset == 64,
          "t.q8_0");
    if (t)
        CHECK(((const uint8_t *)t->data)[33] == 33 && ((const uint8_t *)t->data)[34] == 0, "t.q8_0 data");
    t = gguf_find_tensor(file, "t.i32");
    CHECK(t && t->dtype == DTYPE_I32 && t->ne[0] == 2 && t->ne[1] == 1 && t->n_dims == 2, "t.i32");
    gguf_close(file);
}

/* --- writer round trip --------------------------------------------------- */

typedef struct tensor_case {
    const char *name;
    int n_dims;
    int64_t ne[4];
    strata_dtype dtype;
    size_t bytes;
} tensor_case;

static const tensor_case roundtrip_tensors[] = {
    {"w.f32", 2, {3, 2}, DTYPE_F32, 24},
    {"w.f16", 1, {5}, DTYPE_F16, 10},
    {"blk.0.q8_0", 2, {64, 2}, DTYPE_Q8_0, 136},
    {"blk.0.q4_k", 4, {256, 1, 1, 2}, DTYPE_Q4_K, 288},
    {"w.i32", 3, {7, 1, 3}, DTYPE_I32, 84},
    {"w.bf16", 1, {1}, DTYPE_BF16, 2},
};
enum { N_ROUNDTRIP_TENSORS = sizeof roundtrip_tensors / sizeof roundtrip_tensors[0] };

static uint8_t pattern_byte(int tensor, size_t j)
{
    return (uint8_t)(tensor * 31 + j * 7 + 1);
}

#define OK(call)                                                                                                   \
    do {                                                                                                           \
        strata_status ok_status_ = (call);                                                                         \
        CHECK(ok_status_ == STRATA_OK, "%s: %s", #call, err.message);                                             \
    } while (0)

static void write_roundtrip(const char *path, uint32_t version, uint32_t alignment, const gguf_file *ref)
{
    gguf_writer *w = NULL;
    strata_error err = {0};
    if (gguf_writer_create(path, version, &w, &err) != STRATA_OK) {
        CHECK(0, "create %s: %s", path, err.message);
        return;
    }
    OK(gguf_writer_set_string(w, "general.architecture", "llama", &err));
    if (alignment)
        OK(gguf_writer_set_int(w, "general.alignment", GGUF_TYPE_UINT32, alignment, &err));
    OK(gguf_writer_set_int(w, "k.u8", GGUF_TYPE_UINT8, 255, &err));
    OK(gguf_writer_set_int(w, "k.i8", GGUF_TYPE_INT8, -128, &err));
    OK(gguf_writer_set_int(w, "k.u16", GGUF_TYPE_UINT16, 65535, &err));
    OK(gguf_writer_set_int(w, "k.i16", GGUF_TYPE_INT16, -32768, &err));
    OK(gguf_writer_set_int(w, "k.u32", GGUF_TYPE_UINT32, 4294967295ll, &err));
    OK(gguf_writer_set_int(w, "k.i32", GGUF_TYPE_INT32, INT32_MIN, &err));
    OK(gguf_writer_set_int(w, "k.u64", GGUF_TYPE_UINT64, INT64_MAX, &err));
    OK(gguf_writer_set_int(w, "k.i64", GGUF_TYPE_INT64, INT64_MIN, &err));
    OK(gguf_writer_set_int(w, "k.bool", GGUF_TYPE_BOOL, 1, &err));
    OK(gguf_writer_set_float(w, "k.f32", GGUF_TYPE_FLOAT32, 0.25, &err));
    OK(gguf_writer_set_float(w, "k.f64", GGUF_TYPE_FLOAT64, 1e300, &err));
    OK(gguf_writer_set_string(w, "k.string", "say \"hi\"\n", &err));
    OK(gguf_writer_set_string(w, "k.empty", "", &err));
    const uint8_t u8s[3] = {1, 2, 250};
    const int16_t i16s[2] = {-1, 300};
    const uint64_t u64s[2] = {0, UINT64_MAX};
    const float f32s[2] = {1.5f, -0.125f};
    const double f64s[1] = {3.25};
    const uint8_t bools[2] = {0, 1};
    const char *const words[3] = {"alpha", "", "\xe4\xb8\x96"};
    OK(gguf_writer_set_array(w, "a.u8", GGUF_TYPE_UINT8, u8s, 3, &err));
    OK(gguf_writer_set_array(w, "a.i16", GGUF_TYPE_INT16, i16s, 2, &err));
    OK(gguf_writer_set_array(w, "a.u64", GGUF_TYPE_UINT64, u64s, 2, &err));
    OK(gguf_writer_set_array(w, "a.f32", GGUF_TYPE_FLOAT32, f32s, 2, &err));
    OK(gguf_writer_set_array(w, "a.f64", GGUF_TYPE_FLOAT64, f64s, 1, &err));
    OK(gguf_writer_set_array(w, "a.bool", GGUF_TYPE_BOOL, bools, 2, &err));
    OK(gguf_writer_set_array(w, "a.empty", GGUF_TYPE_UINT32, NULL, 0, &err));
    OK(gguf_writer_set_string_array(w, "a.strings", words, 3, &err));
    if (ref) {
        OK(gguf_writer_copy_key(w, ref, gguf_find_key(ref, "test.nested"), &err));
        OK(gguf_writer_copy_key(w, ref, gguf_find_key(ref, "test.nested_str"), &err));
        OK(gguf_writer_copy_key(w, ref, gguf_find_key(ref, "test.nested3"), &err));
    }
    for (int i = 0; i < N_ROUNDTRIP_TENSORS; i++) {
        const tensor_case *t = &roundtrip_tensors[i];
        OK(gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->dtype, &err));
    }
    OK(gguf_writer_begin_data(w, &err));
    for (int i = 0; i < N_ROUNDTRIP_TENSORS; i++) {
        uint8_t bytes[512];
        for (size_t j = 0; j < roundtrip_tensors[i].bytes; j++)
            bytes[j] = pattern_byte(i, j);
        /* odd chunk sizes exercise streaming */
        for (size_t done = 0; done < roundtrip_tensors[i].bytes; done += 13) {
            size_t chunk = roundtrip_tensors[i].bytes - done < 13 ? roundtrip_tensors[i].bytes - done : 13;
            OK(gguf_writer_write_tensor(w, bytes + done, chunk, &err));
        }
    }
    OK(gguf_writer_finish(w, &err));
    gguf_writer_free(w);
}

static void check_roundtrip(const char *path, uint32_t version, uint32_t alignment, bool with_nested)
{
    gguf_file *file = NULL;
    strata_error err = {0};
    if (gguf_open(path, &file, &err) != STRATA_OK) {
        CHECK(0, "reopen %s: %s", path, err.message);
        return;
    }
    size_t expected_alignment = alignment ? alignment : GGUF_DEFAULT_ALIGNMENT;
    CHECK(gguf_version(file) == version, "version %u", gguf_version(file));
    CHECK(gguf_alignment(file) == expected_alignment, "alignment %zu", gguf_alignment(file));
    CHECK(gguf_data_offset(file) % expected_alignment == 0, "data offset %zu", gguf_data_offset(file));
    CHECK(gguf_key_count(file) == 22 + (alignment ? 1 : 0) + (with_nested ? 3 : 0), "keys %" PRId64,
          gguf_key_count(file));
    CHECK(int_key(file, "k.u8") == 255 && int_key(file, "k.i8") == -128, "8-bit");
    CHECK(int_key(file, "k.u16") == 65535 && int_key(file, "k.i16") == -32768, "16-bit");
    CHECK(int_key(file, "k.u32") == 4294967295ll && int_key(file, "k.i32") == INT32_MIN, "32-bit");
    CHECK(int_key(file, "k.u64") == INT64_MAX && int_key(file, "k.i64") == INT64_MIN, "64-bit");
    CHECK(int_key(file, "k.bool") == 1 && gguf_key_type(file, gguf_find_key(file, "k.bool")) == GGUF_TYPE_BOOL,
          "bool");
    CHECK(float_key(file, "k.f32") == 0.25 && float_key(file, "k.f64") == 1e300, "floats");
    gguf_string text_value;
    CHECK(gguf_get_string(file, "k.string", &text_value, &err) == STRATA_OK && string_is(text_value, "say \"hi\"\n"),
          "string");
    CHECK(gguf_get_string(file, "k.empty", &text_value, &err) == STRATA_OK && text_value.len == 0, "empty string");
    char text[256];
    gguf_format_value(file, gguf_find_key(file, "k.string"), text, sizeof text);
    CHECK(strcmp(text, "\"say \\\"hi\\\"\\n\"") == 0, "format string: %s", text);
    gguf_array a = array_key(file, "a.u8");
    CHECK(a.count == 3 && gguf_array_int(&a, 2) == 250, "a.u8");
    a = array_key(file, "a.i16");
    CHECK(a.count == 2 && gguf_array_int(&a, 0) == -1 && gguf_array_int(&a, 1) == 300, "a.i16");
    a = array_key(file, "a.u64");
    uint64_t big;
    memcpy(&big, (const uint8_t *)gguf_array_raw(&a) + 8, 8);
    CHECK(a.count == 2 && big == UINT64_MAX, "a.u64");
    a = array_key(file, "a.f32");
    CHECK(a.count == 2 && gguf_array_float(&a, 1) == -0.125, "a.f32");
    a = array_key(file, "a.f64");
    CHECK(a.count == 1 && gguf_array_float(&a, 0) == 3.25, "a.f64");
    a = array_key(file, "a.bool");
    CHECK(a.count == 2 && a.elem_type == GGUF_TYPE_BOOL && gguf_array_int(&a, 1) == 1, "a.bool");
    a = array_key(file, "a.empty");
    CHECK(a.count == 0 && a.elem_type == GGUF_TYPE_UINT32, "a.empty");
    gguf_format_value(file, gguf_find_key(file, "a.empty"), text, sizeof text);
    CHECK(strcmp(text, "[]") == 0, "format empty: %s", text);
    a = array_key(file, "a.strings");
    CHECK(a.count == 3 && string_is(gguf_array_string(&a, 0), "alpha") && gguf_array_string(&a, 1).len == 0 &&
              string_is(gguf_array_string(&a, 2), "\xe4\xb8\x96"), "a.strings");
    if (with_nested)
        check_nested_keys(file);
    CHECK(gguf_tensor_count(file) == N_ROUNDTRIP_TENSORS, "tensors %" PRId64, gguf_tensor_count(file));
    for (int i = 0; i < N_ROUNDTRIP_TENSORS && i < gguf_tensor_count(file); i++) {
        const tensor_case *c = &roundtrip_tensors[i];
        const gguf_tensor_info *t = gguf_tensor(file, i);
        CHECK(t == gguf_find_tensor(file, c->name), "tensor %d name %s", i, t->name);
        CHECK(t->n_dims == c->n_dims && t->dtype == c->dtype && t->size_bytes == c->bytes, "tensor %s", c->name);
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            CHECK(t->ne[d] == (d < c->n_dims ? c->ne[d] : 1), "tensor %s ne[%d] = %" PRId64, c->name, d, t->ne[d]);
        CHECK(t->offset % expected_alignment == 0, "tensor %s offset %" PRIu64, c->name, t->offset);
        bool same = true;
        for (size_t j = 0; j < c->bytes; j++)
            same = same && ((const uint8_t *)t->data)[j] == pattern_byte(i, j);
        CHECK(same, "tensor %s bytes differ", c->name);
    }
    gguf_close(file);
}

static void test_writer_roundtrip(void)
{
    gguf_file *ref = open_reference();
    write_roundtrip("test_gguf_v3.gguf", 3, 0, ref);
    check_roundtrip("test_gguf_v3.gguf", 3, 0, ref != NULL);
    write_roundtrip("test_gguf_v2_align64.gguf", 2, 64, NULL);
    check_roundtrip("test_gguf_v2_align64.gguf", 2, 64, false);
    gguf_close(ref);
    remove("test_gguf_v3.gguf");
    remove("test_gguf_v2_align64.gguf");
}

/* Copies every key of the Python fixture, then compares each rendering. */
static void test_copy_every_key(void)
{
    gguf_file *ref = open_reference();
    if (!ref)
        return;
    gguf_writer *w = NULL;
    strata_error err = {0};
    OK(gguf_writer_create("test_gguf_copy.gguf", 0, &w, &err));
    for (int64_t i = 0; w && i < gguf_key_count(ref); i++)
        OK(gguf_writer_copy_key(w, ref, i, &err));
    if (w)
        OK(gguf_writer_finish(w, &err));
    gguf_writer_free(w);
    gguf_file *copy = NULL;
    OK(gguf_open("test_gguf_copy.gguf", &copy, &err));
    if (copy) {
        CHECK(gguf_key_count(copy) == gguf_key_count(ref) && gguf_tensor_count(copy) == 0, "copy counts");
        for (int64_t i = 0; i < gguf_key_count(ref) && i < gguf_key_count(copy); i++) {
            char a[512], b[512];
            gguf_format_value(ref, i, a, sizeof a);
            gguf_format_value(copy, i, b, sizeof b);
            CHECK(strcmp(gguf_key_name(ref, i), gguf_key_name(copy, i)) == 0 && strcmp(a, b) == 0, "key %s: %s vs %s",
                  gguf_key_name(ref, i), a, b);
        }
    }
    gguf_close(copy);
    gguf_close(ref);
    remove("test_gguf_copy.gguf");
}

/* A writer that fails or is freed early leaves no file behind. */
static void test_writer_errors(void)
{
    const char *path = "test_gguf_errors.gguf";
    strata_error err = {0};
    gguf_writer *w = NULL;
    CHECK(gguf_writer_create("no-such-dir/x.gguf", 3, &w, &err) == STRATA_IO && w == NULL, "create in missing dir");
    CHECK(gguf_writer_create(path, 1, &w, &err) == STRATA_INVALID_INPUT && strstr(err.message, "version 1"),
          "version 1: %s", err.message);

    OK(gguf_writer_create(path, 3, &w, &err));
    OK(gguf_writer_set_int(w, "k", GGUF_TYPE_UINT8, 1, &err));
    CHECK(gguf_writer_set_int(w, "k", GGUF_TYPE_UINT8, 2, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "key k: declared twice"), "duplicate key: %s", err.message);
    CHECK(gguf_writer_set_int(w, "k2", GGUF_TYPE_UINT8, 2, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "earlier error"), "sticky failure: %s", err.message);
    gguf_writer_free(w);
    CHECK(access(path, F_OK) != 0, "failed writer left its file");

    const int64_t ne[2] = {32, 2};
    const int64_t bad_ne[1] = {33};
    OK(gguf_writer_create(path, 3, &w, &err));
    CHECK(gguf_writer_set_int(w, "k", GGUF_TYPE_UINT8, 256, &err) == STRATA_INVALID_INPUT, "u8 range");
    gguf_writer_free(w);
    OK(gguf_writer_create(path, 3, &w, &err));
    CHECK(gguf_writer_set_int(w, "general.alignment", GGUF_TYPE_UINT32, 3, &err) == STRATA_INVALID_INPUT,
          "alignment 3");
    gguf_writer_free(w);
    OK(gguf_writer_create(path, 3, &w, &err));
    CHECK(gguf_writer_add_tensor(w, "t", 1, bad_ne, DTYPE_Q8_0, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "not a multiple of the q8_0 block size"), "%s", err.message);
    gguf_writer_free(w);

    OK(gguf_writer_create(path, 3, &w, &err));
    OK(gguf_writer_add_tensor(w, "t", 2, ne, DTYPE_F32, &err));
    CHECK(gguf_writer_add_tensor(w, "t", 2, ne, DTYPE_F32, &err) == STRATA_INVALID_INPUT, "duplicate tensor");
    gguf_writer_free(w);

    uint8_t bytes[300] = {0};
    OK(gguf_writer_create(path, 3, &w, &err));
    OK(gguf_writer_add_tensor(w, "t", 2, ne, DTYPE_F32, &err));
    CHECK(gguf_writer_write_tensor(w, bytes, 4, &err) == STRATA_INVALID_INPUT, "write before begin_data");
    gguf_writer_free(w);

    OK(gguf_writer_create(path, 3, &w, &err));
    OK(gguf_writer_add_tensor(w, "t", 2, ne, DTYPE_F32, &err));
    OK(gguf_writer_begin_data(w, &err));
    CHECK(gguf_writer_write_tensor(w, bytes, 257, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "257 bytes written but only 256 remain"), "too many bytes: %s", err.message);
    gguf_writer_free(w);
    CHECK(access(path, F_OK) != 0, "failed writer left its file");

    OK(gguf_writer_create(path, 3, &w, &err));
    OK(gguf_writer_add_tensor(w, "t", 2, ne, DTYPE_F32, &err));
    OK(gguf_writer_begin_data(w, &err));
    OK(gguf_writer_write_tensor(w, bytes, 100, &err));
    CHECK(gguf_writer_finish(w, &err) == STRATA_INVALID_INPUT && strstr(err.message, "received 100 of its 256 bytes"),
          "short tensor: %s", err.message);
    gguf_writer_free(w);
    CHECK(access(path, F_OK) != 0, "failed writer left its file");

    OK(gguf_writer_create(path, 3, &w, &err));
    OK(gguf_writer_begin_data(w, &err));
    gguf_writer_free(w); /* freed before finish */
    CHECK(access(path, F_OK) != 0, "unfinished writer left its file");
}

/* --- malformed corpus ---------------------------------------------------- */

/* Every file listed in malformed/EXPECTED is rejected with the listed status
 * and a message holding the listed fragment; every .gguf there is listed. */
static void test_malformed_corpus(void)
{
    const char *dir = STRATA_TEST_DATA_DIR "/gguf/malformed";
    char path[1024], line[1024];
    snprintf(path, sizeof path, "%s/EXPECTED", dir);
    FILE *manifest = fopen(path, "r");
    if (!manifest) {
        CHECK(0, "cannot open %s", path);
        return;
    }
    int n_cases = 0;
    char listed[512][128];
    while (fgets(line, sizeof line, manifest)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *name = line, *status_name = strchr(line, '\t');
        char *fragment = status_name ? strchr(status_name + 1, '\t') : NULL;
        if (!fragment) {
            CHECK(0, "bad manifest line: %s", line);
            continue;
        }
        *status_name++ = '\0';
        *fragment++ = '\0';
        if (strlen(name) >= sizeof listed[0] || strlen(dir) + strlen(name) + 2 > sizeof path) {
            CHECK(0, "manifest name too long: %s", name);
            continue;
        }
        if (n_cases < 512)
            memcpy(listed[n_cases], name, strlen(name) + 1);
        n_cases++;
        strata_status expected = strcmp(status_name, "io") == 0 ? STRATA_IO : STRATA_INVALID_INPUT;
        snprintf(path, sizeof path, "%s/%.127s", dir, name);
        gguf_file *file = NULL;
        strata_error err = {0};
        strata_status status = gguf_open(path, &file, &err);
        CHECK(status == expected && file == NULL, "%s: status %s, expected %s (%s)", name, strata_status_name(status),
              strata_status_name(expected), err.message);
        CHECK(strstr(err.message, fragment) != NULL, "%s: message \"%s\" lacks \"%s\"", name, err.message, fragment);
        CHECK(strstr(err.message, name) != NULL, "%s: message does not name the file: %s", name, err.message);
        gguf_close(file);
    }
    fclose(manifest);
    CHECK(n_cases >= 25, "only %d malformed cases", n_cases);
    DIR *listing = opendir(dir);
    struct dirent *entry;
    while (listing && (entry = readdir(listing))) {
        size_t len = strlen(entry->d_name);
        if (len < 5 || strcmp(entry->d_name + len - 5, ".gguf") != 0)
            continue;
        bool found = false;
        for (int i = 0; i < n_cases && i < 512; i++)
            found = found || strcmp(listed[i], entry->d_name) == 0;
        CHECK(found, "%s is not listed in EXPECTED", entry->d_name);
    }
    if (listing)
        closedir(listing);
}

static void test_small_valid_and_memory(void)
{
    strata_error err = {0};
    gguf_file *file = NULL;
    OK(gguf_open(STRATA_TEST_DATA_DIR "/gguf/small_valid.gguf", &file, &err));
    if (file) {
        CHECK(gguf_tensor_count(file) == 2 && gguf_key_count(file) == 3, "small_valid counts");
        gguf_close(file);
    }
    CHECK(gguf_open_memory(NULL, 0, "nothing", &file, &err) == STRATA_INVALID_INPUT && file == NULL &&
              strstr(err.message, "nothing: file is 0 bytes"), "empty memory: %s", err.message);
    CHECK(gguf_open("no-such-file.gguf", &file, &err) == STRATA_IO && strstr(err.message, "no-such-file.gguf"),
          "missing file: %s", err.message);
    CHECK(gguf_open(STRATA_TEST_DATA_DIR "/gguf", &file, &err) == STRATA_INVALID_INPUT, "directory: %s", err.message);
}

int main(void)
{
    test_stories260k();
    test_llama2_tiny();
    test_python_reference();
    test_writer_roundtrip();
    test_copy_every_key();
    test_writer_errors();
    test_small_valid_and_memory();
    test_malformed_corpus();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("test_gguf: ok\n");
    return 0;
}
