/* `strata run` with a model whose embedding has more rows than its tokenizer
 * has tokens: ids the tokenizer lacks print as "<id>", in the echo of a
 * --tokens prompt and in the generated text.
 *
 * The models are stories260K (512 tokens, 512 embedding rows) rewritten with
 * the GGUF writer: once with its tokenizer cut to the first 100 tokens, once
 * with no tokenizer at all (then run prints the ids as numbers). Both have
 * the same weights, so greedy decoding picks the same ids; the expected text
 * is built from those ids by the rule the detokenizer documents, written out
 * here: ids 3..99 are the byte tokens <0x00>..<0x60>, 1 and 2 are BOS/EOS
 * (not shown), 100 and up are "<id>". Needs $STRATA (set by ctest). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "test_check.h"
#include "test_temp.h"

#define KEPT_TOKENS 100
#define FIRST_BYTE_TOKEN 3
#define EOS_ID 2

static bool is_trimmed_key(const char *name)
{
    return strcmp(name, "tokenizer.ggml.tokens") == 0 || strcmp(name, "tokenizer.ggml.scores") == 0 ||
           strcmp(name, "tokenizer.ggml.token_type") == 0;
}

/* Writes the first n_tokens entries of the three per-token arrays of src. */
static strata_status write_trimmed_vocab(gguf_writer *writer, const gguf_file *src, uint64_t n_tokens,
                                         strata_error *err)
{
    gguf_array tokens, scores, types;
    strata_status status;
    if ((status = gguf_get_array(src, "tokenizer.ggml.tokens", &tokens, err)) ||
        (status = gguf_get_array(src, "tokenizer.ggml.scores", &scores, err)) ||
        (status = gguf_get_array(src, "tokenizer.ggml.token_type", &types, err)))
        return status;
    char *texts[KEPT_TOKENS] = {0};
    for (uint64_t i = 0; i < n_tokens; i++) {
        gguf_string text = gguf_array_string(&tokens, i);
        texts[i] = calloc(1, (size_t)text.len + 1);
        if (texts[i])
            memcpy(texts[i], text.data, (size_t)text.len);
    }
    status = gguf_writer_set_string_array(writer, "tokenizer.ggml.tokens", (const char *const *)texts, n_tokens, err);
    if (status == STRATA_OK)
        status = gguf_writer_set_array(writer, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, gguf_array_raw(&scores),
                                       n_tokens, err);
    if (status == STRATA_OK)
        status = gguf_writer_set_array(writer, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, gguf_array_raw(&types),
                                       n_tokens, err);
    for (uint64_t i = 0; i < n_tokens; i++)
        free(texts[i]);
    return status;
}

/* Copies src to dst_path with its tokenizer cut to n_tokens tokens, or
 * without any tokenizer key when n_tokens is 0. */
static bool write_model(const gguf_file *src, const char *dst_path, uint64_t n_tokens)
{
    strata_error err = {0};
    gguf_writer *writer = NULL;
    strata_status status = gguf_writer_create(dst_path, 3, &writer, &err);
    for (int64_t k = 0; status == STRATA_OK && k < gguf_key_count(src); k++) {
        const char *name = gguf_key_name(src, k);
        if (strncmp(name, "tokenizer.", 10) == 0 && (n_tokens == 0 || is_trimmed_key(name)))
            continue;
        status = gguf_writer_copy_key(writer, src, k, &err);
    }
    if (status == STRATA_OK && n_tokens > 0)
        status = write_trimmed_vocab(writer, src, n_tokens, &err);
    for (int64_t t = 0; status == STRATA_OK && t < gguf_tensor_count(src); t++) {
        const gguf_tensor_info *info = gguf_tensor(src, t);
        status = gguf_writer_add_tensor(writer, info->name, info->n_dims, info->ne, info->dtype, &err);
    }
    if (status == STRATA_OK)
        status = gguf_writer_begin_data(writer, &err);
    for (int64_t t = 0; status == STRATA_OK && t < gguf_tensor_count(src); t++) {
        const gguf_tensor_info *info = gguf_tensor(src, t);
        status = gguf_writer_write_tensor(writer, info->data, info->size_bytes, &err);
    }
    if (status == STRATA_OK)
        status = gguf_writer_finish(writer, &err);
    CHECK(status == STRATA_OK, "writing %s: %s", dst_path, err.message);
    gguf_writer_free(writer);
    return status == STRATA_OK;
}

/* Runs `strata run` on model with the given extra flags; returns its stdout
 * (malloc'ed) or NULL when it did not exit with status 0. */
static char *run_strata(const char *strata, const char *model, const char *flags)
{
    char command[4096];
    snprintf(command, sizeof command, "'%s' run -m '%s' %s 2>/dev/null", strata, model, flags);
    FILE *pipe = popen(command, "r");
    if (!pipe)
        return NULL;
    size_t used = 0, capacity = 4096;
    char *text = malloc(capacity);
    size_t n;
    while (text && (n = fread(text + used, 1, capacity - used - 1, pipe)) > 0) {
        used += n;
        if (capacity - used < 2) {
            char *grown = realloc(text, capacity * 2);
            if (!grown) {
                free(text);
                text = NULL;
                break;
            }
            text = grown;
            capacity *= 2;
        }
    }
    int exit_status = pclose(pipe);
    if (!text || exit_status != 0) {
        CHECK(false, "'%s' exited with status %d", command, exit_status);
        free(text);
        return NULL;
    }
    text[used] = '\0';
    return text;
}

/* What the trimmed-vocabulary model prints for one id. */
static void append_expected(char *out, size_t size, int id)
{
    size_t used = strlen(out);
    if (id >= KEPT_TOKENS)
        snprintf(out + used, size - used, "<%d>", id);
    else if (id >= FIRST_BYTE_TOKEN)
        snprintf(out + used, size - used, "%c", (char)(id - FIRST_BYTE_TOKEN));
}

int main(void)
{
    const char *strata = getenv("STRATA");
    if (!strata || access(strata, X_OK) != 0) {
        printf("SKIP: no strata command ($STRATA)\n");
        return 77;
    }
    char dir[512], trimmed[600], no_vocab[600];
    strata_error err = {0};
    gguf_file *src = NULL;
    CHECK(test_make_temp_dir(dir, sizeof dir, "strata_ids"), "temporary directory");
    CHECK(gguf_open(STRATA_MODELS_DIR "/stories260K.gguf", &src, &err) == STRATA_OK, "%s", err.message);
    if (failures)
        return 1;
    snprintf(trimmed, sizeof trimmed, "%s/trimmed_vocab.gguf", dir);
    snprintf(no_vocab, sizeof no_vocab, "%s/no_vocab.gguf", dir);
    bool written = write_model(src, trimmed, KEPT_TOKENS) && write_model(src, no_vocab, 0);
    gguf_close(src);

    static const char FLAGS[] = "--tokens '1 300 65 301' -n 24 --temp 0";
    char *ids_text = written ? run_strata(strata, no_vocab, "--tokens '1 300 65 301' -n 24 --temp 0 --no-echo") : NULL;
    char *text = written ? run_strata(strata, trimmed, FLAGS) : NULL;
    if (ids_text && text) {
        /* the echo of the prompt: BOS hidden, 65 is the byte token of '>' */
        char expected[4096] = "<300>><301>";
        int n_beyond = 0;
        for (char *cursor = ids_text, *end; *cursor && *cursor != '\n'; cursor = end) {
            long id = strtol(cursor, &end, 10);
            if (end == cursor || id == EOS_ID) /* the trimmed model stops at EOS; without a tokenizer run goes on */
                break;
            n_beyond += id >= KEPT_TOKENS;
            append_expected(expected, sizeof expected, (int)id);
        }
        strncat(expected, "\n", sizeof expected - strlen(expected) - 1);
        CHECK(strcmp(text, expected) == 0, "run printed\n  '%s'\nexpected\n  '%s'\n(ids: %s)", text, expected, ids_text);
        CHECK(n_beyond > 0, "the model generated no id past the tokenizer's %d tokens (ids: %s); the test proves "
              "less than it should", KEPT_TOKENS, ids_text);
    }
    free(ids_text);
    free(text);
    remove(trimmed);
    remove(no_vocab);
    rmdir(dir);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("ids outside the tokenizer print as <id>: all checks passed\n");
    return 0;
}
