/* Unicode NFC (runtime/unicode_nfc.c) against Python's
 * unicodedata.normalize('NFC', ...): the strings of tests/data/unicode_nfc.txt
 * (written by tests/tools/make_unicode_nfc.py: stacked accents, Hangul jamo,
 * Vietnamese, composition exclusions, singletons, reordering, every
 * character with a canonical decomposition alone and decomposed, every
 * composition pair, random mixes, bytes that are not UTF-8), and for each:
 * the quick check never calls text NFC that is not, NFC is idempotent, and
 * the output is at most three times the input. Then a long run of marks
 * (the sort that is not by insertion) and the tokenizer path: Qwen2's
 * vocabulary normalizes, GPT-2's does not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "test_check.h"
#include "test_file.h"
#include "unicode_nfc.h"

/* Undoes the fixture's escapes (\xHH, \\) of line[0..len) into out (room
 * for len bytes); returns the length. */
static size_t unescape(const char *line, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\\' && i + 1 < len && line[i + 1] == '\\') {
            out[n++] = '\\';
            i++;
        } else if (line[i] == '\\' && i + 3 < len && line[i + 1] == 'x') {
            char hex[3] = {line[i + 2], line[i + 3], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            i += 3;
        } else {
            out[n++] = line[i];
        }
    }
    return n;
}

static char *read_fixture(size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/unicode_nfc.txt", STRATA_TEST_DATA_DIR);
    return test_read_file(path, len);
}

/* Bytes of a string shown in a message (long runs are cut). */
static int shown(size_t len) { return len > 120 ? 120 : (int)len; }

/* One case: text's NFC must be want. Returns whether it was. */
static bool check_case(int line_no, const char *text, size_t len, const char *want, size_t want_len)
{
    strata_error err = {0};
    char *got = NULL, *again = NULL;
    size_t got_len = 0, again_len = 0;
    strata_status status = unicode_nfc(text, len, &got, &got_len, &err);
    CHECK(status == STRATA_OK, "line %d: %s", line_no, err.message);
    if (status != STRATA_OK)
        return false;
    bool same = got_len == want_len && memcmp(got, want, want_len) == 0;
    CHECK(same, "line %d: NFC gives '%.*s' (%zu bytes), Python '%.*s' (%zu bytes)", line_no, shown(got_len), got,
          got_len, shown(want_len), want, want_len);
    bool changed = len != want_len || memcmp(text, want, len) != 0;
    CHECK(!changed || unicode_nfc_may_change(text, len), "line %d: the quick check calls text NFC that is not",
          line_no);
    CHECK(got_len <= 3 * len, "line %d: %zu bytes out of %zu", line_no, got_len, len);
    CHECK(unicode_nfc(got, got_len, &again, &again_len, &err) == STRATA_OK && again_len == got_len &&
              memcmp(again, got, got_len) == 0,
          "line %d: NFC of the NFC differs", line_no);
    free(got);
    free(again);
    return same;
}

static void check_fixture(void)
{
    size_t size = 0;
    char *data = read_fixture(&size);
    CHECK(data, "tests/data/unicode_nfc.txt is missing");
    if (!data)
        return;
    char *text = malloc(size + 1), *want = malloc(size + 1);
    int n_cases = 0, n_same = 0, n_changed = 0, line_no = 0;
    for (char *line = data; line < data + size;) {
        char *end = memchr(line, '\n', (size_t)(data + size - line));
        if (!end)
            end = data + size;
        line_no++;
        char *tab = memchr(line, '\t', (size_t)(end - line));
        if (line[0] != '#') {
            CHECK(tab, "line %d has no tab", line_no);
            if (tab) {
                size_t text_len = unescape(line, (size_t)(tab - line), text);
                size_t want_len = unescape(tab + 1, (size_t)(end - tab - 1), want);
                n_cases++;
                n_same += check_case(line_no, text, text_len, want, want_len);
                n_changed += text_len != want_len || memcmp(text, want, text_len) != 0;
            }
        }
        line = end + 1;
    }
    CHECK(n_cases >= 200 && n_changed >= 100, "only %d cases (%d that NFC changes) read", n_cases, n_changed);
    printf("unicode_nfc.txt: %d of %d strings match Python's NFC (%d changed by it)\n", n_same, n_cases, n_changed);
    free(text);
    free(want);
    free(data);
}

/* 'a' then N times U+0316 U+0300 (classes 220, 230): the marks are sorted
 * (all U+0316 first), the first U+0300 composes with 'a' (U+00E0), the
 * others stay. */
static void check_long_run(void)
{
    enum { N = 20000 };
    char *text = malloc(1 + 4 * N), *want = malloc(2 + 4 * N);
    size_t len = 0, want_len = 0;
    text[len++] = 'a';
    for (int i = 0; i < N; i++) {
        memcpy(text + len, "\xCC\x96\xCC\x80", 4);
        len += 4;
    }
    memcpy(want, "\xC3\xA0", 2);
    want_len = 2;
    for (int i = 0; i < N; i++, want_len += 2)
        memcpy(want + want_len, "\xCC\x96", 2);
    for (int i = 1; i < N; i++, want_len += 2)
        memcpy(want + want_len, "\xCC\x80", 2);
    check_case(0, text, len, want, want_len);
    check_case(0, "", 0, "", 0); /* nothing read, nothing allocated for marks */
    const char *nfc_text = "plain ASCII \xC3\xA9\xC3\xA0 \xE4\xB8\xAD\xE6\x96\x87 \xEA\xB0\x80";
    CHECK(!unicode_nfc_may_change(nfc_text, strlen(nfc_text)), "the quick check looks at text that is NFC");
    free(text);
    free(want);
}

/* Qwen2's vocabulary (pre-tokenizer qwen2) gives the same ids for the
 * decomposed and the composed form; GPT-2's does not normalize. */
static void check_tokenizers(void)
{
    const char composed[] = "caf\xC3\xA9 \xE2\x84\xAB", decomposed[] = "cafe\xCC\x81 A\xCC\x8A";
    const char *vocabs[] = {"qwen2", "gpt-2"};
    for (int v = 0; v < 2; v++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", STRATA_TEST_DATA_DIR, vocabs[v]);
        strata_tokenizer *tok = NULL;
        strata_error err = {0};
        CHECK(strata_tokenizer_load(path, NULL, &tok, &err) == STRATA_OK, "%s: %s", path, err.message);
        if (!tok)
            continue;
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        CHECK(strata_tokenize(tok, composed, strlen(composed), false, false, &a, &na, &err) == STRATA_OK &&
                  strata_tokenize(tok, decomposed, strlen(decomposed), false, false, &b, &nb, &err) == STRATA_OK,
              "%s: %s", vocabs[v], err.message);
        bool same = na == nb && memcmp(a, b, na * sizeof *a) == 0;
        CHECK(same == (v == 0), "%s: the composed and decomposed forms give %s ids", vocabs[v],
              same ? "the same" : "different");
        free(a);
        free(b);
        strata_tokenizer_free(tok);
    }
}

int main(void)
{
    check_fixture();
    check_long_run();
    check_tokenizers();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("unicode NFC: matches Python's unicodedata\n");
    return 0;
}
