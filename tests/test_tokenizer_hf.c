/* Tokenizers of the model families as llama.cpp's converter writes them,
 * against Hugging Face: for each file of tests/data/tokenizers (written by
 * tests/tools/make_tokenizer_fixtures.py), every string tokenizes to the ids
 * transformers gives (BOS as the file says, special tokens recognized, as
 * transformers always does), and those ids detokenize to transformers'
 * decode, byte for byte, with special tokens rendered and skipped. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "test_check.h"
#include "test_file.h"

static const char SEPARATOR[] = "\n__ggml_vocab_test__\n";

/* The families; every vector of each must match. */
static const char *const FAMILIES[] = {"gemma2", "gemma3", "mixtral", "olmo2", "phi3", "qwen3"};

/* A whole file, NUL-terminated, in a malloc'ed buffer; NULL when unreadable. */
static char *read_whole(const char *name, const char *suffix, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/%s.%s", STRATA_TEST_DATA_DIR, name, suffix);
    return test_read_file(path, len);
}

/* Next record of a file whose records each end with SEPARATOR. */
static bool next_record(char **cursor, const char **text, size_t *len)
{
    char *sep = strstr(*cursor, SEPARATOR);
    if (!sep)
        return false;
    *text = *cursor;
    *len = (size_t)(sep - *cursor);
    *cursor = sep + strlen(SEPARATOR);
    return true;
}

/* Parses one line of ids into ids (room for capacity); returns the count,
 * or -1 when the line holds more or something that is not an id. */
static long parse_ids(char **cursor, int32_t *ids, size_t capacity)
{
    char *line = *cursor, *end = strchr(line, '\n');
    if (!end)
        return -1;
    *end = '\0';
    *cursor = end + 1;
    size_t n = 0;
    for (char *p = line; *p;) {
        char *after;
        long value = strtol(p, &after, 10);
        if (after == p || value < 0 || value > INT32_MAX || n == capacity)
            return -1;
        ids[n++] = (int32_t)value;
        p = after;
        while (*p == ' ')
            p++;
    }
    return (long)n;
}

/* The text of ids through the streaming detokenizer (malloc'ed). */
static char *detokenize(const strata_tokenizer *tok, const int32_t *ids, size_t n, bool render_special,
                        size_t *out_len)
{
    size_t piece_size = strata_detokenizer_out_size(tok), used = 0;
    char *piece = malloc(piece_size), *text = malloc((n + 1) * piece_size + 1);
    if (!piece || !text) {
        free(piece);
        free(text);
        return NULL;
    }
    strata_detokenizer detok;
    strata_detokenizer_init(&detok, tok, render_special);
    for (size_t i = 0; i <= n; i++) {
        int64_t written = i < n ? strata_detokenizer_push(&detok, ids[i], piece, piece_size)
                                : strata_detokenizer_flush(&detok, piece, piece_size);
        if (written > 0) {
            memcpy(text + used, piece, (size_t)written);
            used += (size_t)written;
        }
    }
    text[used] = '\0';
    free(piece);
    *out_len = used;
    return text;
}

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    printf("    %s:", label);
    for (size_t i = 0; i < n; i++)
        printf(" %d", ids[i]);
    printf("\n");
}

/* Compares one family's vectors; returns how many matched in full. */
static int check_family(const char *name, int *n_vectors)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/%s.gguf", STRATA_TEST_DATA_DIR, name);
    strata_tokenizer *tok = NULL;
    strata_error err = {0};
    CHECK(strata_tokenizer_load(path, NULL, &tok, &err) == STRATA_OK, "%s: %s", name, err.message);
    size_t lens[4];
    char *inputs = read_whole(name, "inp", &lens[0]), *ids_text = read_whole(name, "out", &lens[1]);
    char *decoded = read_whole(name, "dec", &lens[2]), *skipped = read_whole(name, "skip", &lens[3]);
    CHECK(inputs && ids_text && decoded && skipped, "%s: a fixture file is missing", name);
    int matched = 0;
    *n_vectors = 0;
    char *in_cursor = inputs, *ids_cursor = ids_text, *dec_cursor = decoded, *skip_cursor = skipped;
    const char *text = NULL, *want_dec = NULL, *want_skip = NULL;
    size_t len = 0, dec_len = 0, skip_len = 0;
    while (tok && inputs && ids_text && decoded && skipped && next_record(&in_cursor, &text, &len)) {
        int index = (*n_vectors)++;
        int32_t want[1024];
        long n_want = parse_ids(&ids_cursor, want, sizeof want / sizeof want[0]);
        bool have_dec = next_record(&dec_cursor, &want_dec, &dec_len);
        bool have_skip = next_record(&skip_cursor, &want_skip, &skip_len);
        CHECK(n_want >= 0 && have_dec && have_skip, "%s: vector %d: the fixture files do not line up", name, index);
        if (n_want < 0 || !have_dec || !have_skip)
            break;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        bool ok = strata_tokenize(tok, text, len, strata_tokenizer_adds_bos(tok), true, &ids, &n_ids, &err) ==
                  STRATA_OK;
        bool same_ids = ok && n_ids == (size_t)n_want && memcmp(ids, want, n_ids * sizeof *ids) == 0;
        CHECK(same_ids, "%s: vector %d '%.*s': the ids differ from transformers'%s%s", name, index, (int)len, text,
              ok ? "" : ": ", ok ? "" : err.message);
        if (!same_ids) {
            print_ids("transformers", want, (size_t)n_want);
            if (ok)
                print_ids("strata      ", ids, n_ids);
        }
        free(ids);
        size_t back_len, skip_back_len;
        char *back = detokenize(tok, want, (size_t)n_want, true, &back_len);
        char *skip_back = detokenize(tok, want, (size_t)n_want, false, &skip_back_len);
        bool same_dec = back && back_len == dec_len && memcmp(back, want_dec, dec_len) == 0;
        bool same_skip = skip_back && skip_back_len == skip_len && memcmp(skip_back, want_skip, skip_len) == 0;
        CHECK(same_dec, "%s: vector %d: decode with special tokens gives '%.*s', transformers '%.*s'", name, index,
              back ? (int)back_len : 0, back ? back : "", (int)dec_len, want_dec);
        CHECK(same_skip, "%s: vector %d: decode without special tokens gives '%.*s', transformers '%.*s'", name,
              index, skip_back ? (int)skip_back_len : 0, skip_back ? skip_back : "", (int)skip_len, want_skip);
        free(back);
        free(skip_back);
        matched += same_ids && same_dec && same_skip;
    }
    CHECK(*n_vectors >= 50, "%s: only %d vectors read", name, *n_vectors);
    free(inputs);
    free(ids_text);
    free(decoded);
    free(skipped);
    strata_tokenizer_free(tok);
    return matched;
}

int main(void)
{
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++) {
        int n_vectors;
        int matched = check_family(FAMILIES[i], &n_vectors);
        printf("%-8s %d of %d vectors match transformers\n", FAMILIES[i], matched, n_vectors);
    }
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("tokenizers of the families: all vectors match transformers\n");
    return 0;
}
