/* Tokenizer tests: every vector of tests/data/vocab reproduced exactly,
 * detokenize(tokenize(s)) == s, special tokens only on request, streaming
 * UTF-8, invalid input, and clear errors for unknown pre-tokenizers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "tokenizer_internal.h" /* chunk_bytes: cut and whole results must agree */

static int failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t size = 0, capacity = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (size + n + 1 > capacity) {
            capacity = (size + n + 1) * 2;
            char *grown = realloc(data, capacity);
            if (!grown) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = grown;
        }
        memcpy(data + size, chunk, n);
        size += n;
    }
    fclose(f);
    if (!data && !(data = malloc(1)))
        return NULL;
    data[size] = '\0';
    *len = size;
    return data;
}

/* Next test string of a .inp file: strings are separated by lines
 * "__ggml_vocab_test__"; the newline before each separator is not part of
 * the string. Returns false at the end. */
static bool next_input(char **cursor, const char **text, size_t *len)
{
    static const char SEPARATOR[] = "\n__ggml_vocab_test__\n";
    if (!**cursor)
        return false;
    char *sep = strstr(*cursor, SEPARATOR);
    if (!sep)
        return false;
    *text = *cursor;
    *len = (size_t)(sep - *cursor);
    *cursor = sep + strlen(SEPARATOR);
    return true;
}

/* Detokenizes ids through the streaming detokenizer into a malloc'ed string. */
static char *detokenize_all(const strata_tokenizer *tok, const int32_t *ids, size_t n, size_t *out_len)
{
    size_t piece_size = strata_detokenizer_out_size(tok);
    char *piece = malloc(piece_size);
    size_t capacity = (n + 1) * piece_size, used = 0;
    char *text = malloc(capacity);
    if (!piece || !text) {
        free(piece);
        free(text);
        return NULL;
    }
    strata_detokenizer detok;
    strata_detokenizer_init(&detok, tok, false);
    for (size_t i = 0; i < n; i++) {
        int64_t written = strata_detokenizer_push(&detok, ids[i], piece, piece_size);
        if (written > 0) {
            memcpy(text + used, piece, (size_t)written);
            used += (size_t)written;
        }
    }
    int64_t written = strata_detokenizer_flush(&detok, piece, piece_size);
    if (written > 0) {
        memcpy(text + used, piece, (size_t)written);
        used += (size_t)written;
    }
    free(piece);
    text[used] = '\0';
    *out_len = used;
    return text;
}

/* Runs one NAME's vectors. lossless: also check the round trip. */
static void check_vocab(const char *name, bool lossless)
{
    char path[1024];
    strata_error err = {0};
    strata_tokenizer *tok = NULL;
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", STRATA_TEST_DATA_DIR, name);
    strata_status status = strata_tokenizer_load(path, NULL, &tok, &err);
    CHECK(status == STRATA_OK, "%s: load: %s", name, err.message);
    if (status != STRATA_OK)
        return;
    size_t inp_len = 0, out_len = 0;
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf.inp", STRATA_TEST_DATA_DIR, name);
    char *inp = read_file(path, &inp_len);
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf.out", STRATA_TEST_DATA_DIR, name);
    char *out = read_file(path, &out_len);
    CHECK(inp && out, "%s: cannot read the vectors", name);
    char *cursor = inp, *out_line = out;
    const char *text;
    size_t text_len;
    int n_cases = 0, n_ok = 0;
    while (inp && out && next_input(&cursor, &text, &text_len)) {
        char *line_end = strchr(out_line, '\n');
        if (!line_end)
            break;
        *line_end = '\0';
        int32_t *ids = NULL;
        size_t n_ids = 0;
        status = strata_tokenize(tok, text, text_len, false, false, &ids, &n_ids, &err);
        char got[8192] = "";
        size_t used = 0;
        for (size_t i = 0; status == STRATA_OK && i < n_ids && used + 16 < sizeof got; i++)
            used += (size_t)snprintf(got + used, sizeof got - used, " %d", ids[i]);
        /* the .out lines have one leading space before each id, and none when empty */
        const char *expected = out_line;
        bool same = status == STRATA_OK && strcmp(got, expected) == 0;
        if (!same && expected[0] != ' ')
            same = status == STRATA_OK && strcmp(got[0] ? got + 1 : got, expected) == 0;
        CHECK(same, "%s case %d '%.*s': expected [%s], got [%s] %s", name, n_cases, (int)text_len, text, expected,
              got, status == STRATA_OK ? "" : err.message);
        n_ok += same;
        if (lossless && status == STRATA_OK) {
            size_t back_len = 0;
            char *back = detokenize_all(tok, ids, n_ids, &back_len);
            CHECK(back && back_len == text_len && memcmp(back, text, text_len) == 0,
                  "%s case %d: round trip of '%.*s' gave '%s'", name, n_cases, (int)text_len, text, back ? back : "");
            free(back);
        }
        free(ids);
        out_line = line_end + 1;
        n_cases++;
    }
    printf("%s: %d/%d vectors\n", name, n_ok, n_cases);
    CHECK(n_cases > 0, "%s: no vectors read", name);
    free(inp);
    free(out);
    strata_tokenizer_free(tok);
}

static strata_tokenizer *load_vocab(const char *name, const char *force_pre)
{
    char path[1024];
    strata_error err = {0};
    strata_tokenizer *tok = NULL;
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", STRATA_TEST_DATA_DIR, name);
    if (strata_tokenizer_load(path, force_pre, &tok, &err) != STRATA_OK)
        fprintf(stderr, "%s: %s\n", name, err.message);
    return tok;
}

/* Tokenizes text with the tokenizer cut into pieces of chunk_bytes
 * (SIZE_MAX: never cut); NULL on failure. */
static int32_t *tokenize_cut(strata_tokenizer *tok, const char *text, size_t len, bool parse_special,
                             size_t chunk_bytes, size_t *n)
{
    size_t saved = tok->chunk_bytes;
    tok->chunk_bytes = chunk_bytes;
    int32_t *ids = NULL;
    strata_error err = {0};
    if (strata_tokenize(tok, text, len, false, parse_special, &ids, n, &err) != STRATA_OK) {
        fprintf(stderr, "tokenize: %s\n", err.message);
        ids = NULL;
    }
    tok->chunk_bytes = saved;
    return ids;
}

/* Cutting the text (special tokens, SentencePiece text, BPE words) where
 * tokenizer_chunk.c allows must not change one id: the test strings, each
 * followed by one of the vocabulary's special tokens and some runs, cut
 * into pieces as small as one byte, against the text encoded whole. */
static void check_cuts_change_nothing(const char *name)
{
    strata_tokenizer *tok = load_vocab(name, NULL);
    char path[1024];
    size_t inp_len = 0;
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf.inp", STRATA_TEST_DATA_DIR, name);
    char *inp = read_file(path, &inp_len);
    size_t capacity = 4 * inp_len + 65536, len = 0;
    char *text = malloc(capacity);
    CHECK(tok && inp && text, "%s: setup", name);
    if (!tok || !inp || !text)
        goto done;
    char *cursor = inp;
    const char *piece;
    size_t piece_len, n_pieces = 0;
    /* with runs of Unicode whitespace (stripped after Phi-3's special tokens)
     * and of combining marks (composed by qwen2's NFC) */
    static const char *const RUNS[] = {"    ", "\n\n", "aaaaaaaa", "\xC3\xA1\xC3\xA1\xC3\xA1", "\t \t", "1234567",
                                       " \xE3\x80\x80\xC2\xA0\n", "e\xCC\xA3\xCC\x82o\xCC\x88\xCC\x81"};
    while (next_input(&cursor, &piece, &piece_len) && len + piece_len + 1024 < capacity) {
        memcpy(text + len, piece, piece_len);
        len += piece_len;
        if (tok->n_special > 0) {
            int32_t special = tok->special_ids[n_pieces % tok->n_special];
            memcpy(text + len, tok->texts[special], tok->text_lens[special]);
            len += tok->text_lens[special];
        }
        const char *run = RUNS[n_pieces % (sizeof RUNS / sizeof RUNS[0])];
        memcpy(text + len, run, strlen(run));
        len += strlen(run);
        n_pieces++;
    }
    /* the cut rules must find places to cut here, or this proves nothing */
    size_t safe_spm = 0, safe_bpe = 0, safe_special = 0;
    for (size_t at = 1; at < len; at++) {
        if (((unsigned char)text[at] & 0xC0) == 0x80)
            continue;
        safe_spm += spm_cut_is_safe(tok, text, len, at);
        safe_bpe += bpe_cut_is_safe(tok, text, len, at);
        safe_special += special_cut_is_safe(tok, text, len, at);
    }
    CHECK((tok->kind == TOKENIZER_SPM ? safe_spm : safe_bpe) > len / 20 && safe_special > len / 5,
          "%s: too few places to cut (%zu SentencePiece, %zu BPE, %zu special in %zu bytes)", name, safe_spm,
          safe_bpe, safe_special, len);
    for (int parse_special = 0; parse_special <= 1; parse_special++) {
        size_t n_whole = 0;
        int32_t *whole = tokenize_cut(tok, text, len, parse_special, SIZE_MAX, &n_whole);
        CHECK(whole, "%s: tokenize whole", name);
        static const size_t CHUNKS[] = {1, 2, 3, 5, 16, 100, 1000};
        for (size_t c = 0; whole && c < sizeof CHUNKS / sizeof CHUNKS[0]; c++) {
            size_t n_cut = 0;
            int32_t *cut = tokenize_cut(tok, text, len, parse_special, CHUNKS[c], &n_cut);
            size_t first_diff = 0;
            while (cut && first_diff < n_cut && first_diff < n_whole && cut[first_diff] == whole[first_diff])
                first_diff++;
            CHECK(cut && n_cut == n_whole && first_diff == n_whole,
                  "%s: pieces of %zu bytes%s: %zu ids against %zu whole, first difference at id %zu", name,
                  CHUNKS[c], parse_special ? " (parse_special)" : "", n_cut, n_whole, first_diff);
            free(cut);
        }
        free(whole);
    }
done:
    free(text);
    free(inp);
    strata_tokenizer_free(tok);
}

static void check_special_tokens(void)
{
    strata_tokenizer *tok = load_vocab("refact", NULL);
    CHECK(tok, "refact loads");
    if (!tok)
        return;
    const char *text = "<fim_prefix>x";
    int32_t *ids = NULL;
    size_t n = 0;
    strata_error err = {0};
    CHECK(strata_tokenize(tok, text, strlen(text), false, true, &ids, &n, &err) == STRATA_OK, "%s", err.message);
    CHECK(n == 2 && ids[0] == 1, "with parse_special <fim_prefix> is one token (got %zu tokens, first %d)", n,
          n ? ids[0] : -1);
    free(ids);
    CHECK(strata_tokenize(tok, text, strlen(text), false, false, &ids, &n, &err) == STRATA_OK, "%s", err.message);
    bool has_special = false;
    for (size_t i = 0; i < n; i++)
        has_special |= ids[i] == 1;
    CHECK(n > 2 && !has_special, "without parse_special <fim_prefix> is plain text");
    free(ids);
    /* rendered only on request */
    char buf[64];
    CHECK(strata_token_to_bytes(tok, 1, false, buf, sizeof buf) == 0, "control hidden");
    CHECK(strata_token_to_bytes(tok, 1, true, buf, sizeof buf) == 12 && memcmp(buf, "<fim_prefix>", 12) == 0,
          "control rendered");
    CHECK(strata_token_to_bytes(tok, -1, true, buf, sizeof buf) == -1, "bad id");
    strata_tokenizer_free(tok);
}

static void check_bos_and_invalid_utf8(void)
{
    strata_tokenizer *tok = load_vocab("llama-spm", NULL);
    CHECK(tok, "llama-spm loads");
    if (!tok)
        return;
    int32_t *ids = NULL;
    size_t n = 0;
    strata_error err = {0};
    CHECK(strata_tokenize(tok, "Hi", 2, true, false, &ids, &n, &err) == STRATA_OK && n >= 2 && ids[0] == 1,
          "BOS first");
    free(ids);
    CHECK(strata_tokenizer_adds_bos(tok) && strata_token_bos(tok) == 1 && strata_token_eos(tok) == 2, "ids");
    CHECK(strata_token_is_eog(tok, 2) && !strata_token_is_eog(tok, 1), "eog");
    const char bad[] = {'a', (char)0xC3, '(', 'b'};
    ids = NULL;
    CHECK(strata_tokenize(tok, bad, sizeof bad, false, false, &ids, &n, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "offset 1"),
          "invalid UTF-8 rejected naming the offset (%s)", err.message);
    free(ids);
    /* a truncated character at the very end must not be read past */
    const char cut[] = {'a', (char)0xE2, (char)0x82};
    CHECK(strata_tokenize(tok, cut, sizeof cut, false, false, &ids, &n, &err) == STRATA_INVALID_INPUT, "cut");
    free(ids);
    strata_tokenizer_free(tok);
}

/* "€" is E2 82 AC: pushed as three byte tokens it must come out whole. */
static void check_streaming(void)
{
    strata_tokenizer *tok = load_vocab("llama-spm", NULL);
    if (!tok)
        return;
    strata_detokenizer detok;
    strata_detokenizer_init(&detok, tok, false);
    char out[600];
    int32_t e2 = 3 + 0xE2, x82 = 3 + 0x82, xac = 3 + 0xAC; /* <0x00> is id 3 */
    CHECK(strata_detokenizer_push(&detok, e2, out, sizeof out) == 0, "held back 1");
    CHECK(strata_detokenizer_push(&detok, x82, out, sizeof out) == 0, "held back 2");
    CHECK(strata_detokenizer_push(&detok, xac, out, sizeof out) == 3 && strcmp(out, "\xE2\x82\xAC") == 0,
          "complete");
    CHECK(strata_detokenizer_push(&detok, e2, out, sizeof out) == 0, "held back");
    CHECK(strata_detokenizer_flush(&detok, out, sizeof out) == 3 && strcmp(out, "\xEF\xBF\xBD") == 0,
          "flush writes U+FFFD");
    CHECK(strata_detokenizer_push(&detok, 3 + 0xFF, out, sizeof out) == 3, "an impossible byte becomes U+FFFD");
    strata_tokenizer_free(tok);
}

/* Ids the tokenizer does not have (a model's embedding may have more rows)
 * are shown as "<id>"; negative ids are refused. */
static void check_ids_outside_vocab(void)
{
    strata_tokenizer *tok = load_vocab("llama-spm", NULL);
    if (!tok)
        return;
    int32_t n_vocab = (int32_t)strata_vocab_size(tok);
    char expected[32], out[600];
    snprintf(expected, sizeof expected, "<%d>", n_vocab);
    strata_detokenizer detok;
    strata_detokenizer_init(&detok, tok, false);
    int64_t written = strata_detokenizer_push(&detok, n_vocab, out, sizeof out);
    CHECK(written == (int64_t)strlen(expected) && strcmp(out, expected) == 0, "id %d gave %lld bytes '%s'", n_vocab,
          (long long)written, out);
    CHECK(strata_detokenizer_push(&detok, INT32_MAX, out, sizeof out) == 12 && strcmp(out, "<2147483647>") == 0,
          "INT32_MAX gave '%s'", out);
    CHECK(strata_detokenizer_push(&detok, -1, out, sizeof out) == -1 && out[0] == '\0', "a negative id is refused");
    /* the leading space of SentencePiece is dropped only for the first token:
     * after "<id>" a word keeps its space */
    int32_t *ids = NULL;
    size_t n = 0;
    strata_error err = {0};
    CHECK(strata_tokenize(tok, "Hello", 5, false, false, &ids, &n, &err) == STRATA_OK && n == 1, "Hello is one token");
    if (n == 1) {
        CHECK(strata_detokenizer_push(&detok, ids[0], out, sizeof out) == 6 && strcmp(out, " Hello") == 0,
              "after <id>: '%s'", out);
    }
    free(ids);
    /* a character cut short by the id: its bytes become U+FFFD, then "<id>" */
    strata_detokenizer_init(&detok, tok, false);
    CHECK(strata_detokenizer_push(&detok, 3 + 0xE2, out, sizeof out) == 0, "held back");
    snprintf(expected, sizeof expected, "\xEF\xBF\xBD<%d>", n_vocab + 7);
    CHECK(strata_detokenizer_push(&detok, n_vocab + 7, out, sizeof out) == (int64_t)strlen(expected) &&
              strcmp(out, expected) == 0,
          "held byte then id gave '%s'", out);
    CHECK(strata_detokenizer_flush(&detok, out, sizeof out) == 0, "nothing left to flush");
    /* the byte API has no bytes for such an id */
    CHECK(strata_token_to_bytes(tok, n_vocab, true, out, sizeof out) == -1, "token_to_bytes refuses it");
    /* the smallest out_size still holds the longest "<id>" with held bytes */
    CHECK(strata_detokenizer_out_size(tok) >= 3 * 8 + 12 + 1, "out_size has room for an id");
    strata_tokenizer_free(tok);
}

static void check_unknown_pre(void)
{
    strata_tokenizer *tok = load_vocab("gpt-2", "no-such-pre");
    CHECK(!tok, "an unknown pre-tokenizer is an error");
    strata_tokenizer_free(tok);
    char path[1024];
    strata_error err = {0};
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-gpt-2.gguf", STRATA_TEST_DATA_DIR);
    CHECK(strata_tokenizer_load(path, "no-such-pre", &tok, &err) == STRATA_UNSUPPORTED &&
              strstr(err.message, "no-such-pre") && strstr(err.message, "--force-pre"),
          "message names it: %s", err.message);
    tok = load_vocab("gpt-2", "qwen2");
    CHECK(tok, "--force-pre qwen2 loads");
    strata_tokenizer_free(tok);
}

/* The bundled models: tokenizing and back. */
static void check_models(void)
{
    const char *models[] = {"stories260K.gguf", "llama-2-tiny-random.gguf"};
    for (size_t m = 0; m < 2; m++) {
        char path[1024];
        strata_error err = {0};
        strata_tokenizer *tok = NULL;
        snprintf(path, sizeof path, "%s/%s", STRATA_MODELS_DIR, models[m]);
        CHECK(strata_tokenizer_load(path, NULL, &tok, &err) == STRATA_OK, "%s: %s", models[m], err.message);
        if (!tok)
            continue;
        const char *text = "Once upon a time, there was a little girl named Lily. \xE2\x82\xAC 1234\n";
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(strata_tokenize(tok, text, strlen(text), false, false, &ids, &n, &err) == STRATA_OK, "%s",
              err.message);
        size_t back_len = 0;
        char *back = detokenize_all(tok, ids, n, &back_len);
        CHECK(back && strcmp(back, text) == 0, "%s: round trip gave '%s'", models[m], back ? back : "");
        free(back);
        free(ids);
        strata_tokenizer_free(tok);
    }
}

int main(void)
{
    check_vocab("llama-spm", true);
    check_vocab("phi-3", true);
    check_vocab("gpt-2", true);
    check_vocab("deepseek-coder", true);
    check_vocab("mpt", true);
    check_vocab("refact", true);
    check_vocab("llama-bpe", true);
    check_vocab("qwen2", true);
    check_vocab("command-r", true);
    static const char *const ALL_VOCABS[] = {"llama-spm", "phi-3", "gpt-2", "deepseek-coder", "mpt",
                                             "refact", "llama-bpe", "qwen2", "command-r"};
    for (size_t i = 0; i < sizeof ALL_VOCABS / sizeof ALL_VOCABS[0]; i++)
        check_cuts_change_nothing(ALL_VOCABS[i]);
    check_special_tokens();
    check_bos_and_invalid_utf8();
    check_streaming();
    check_ids_outside_vocab();
    check_unknown_pre();
    check_models();
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("all tokenizer tests passed\n");
    return 0;
}
