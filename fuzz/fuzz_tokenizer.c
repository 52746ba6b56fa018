/* libFuzzer target for the tokenizers: the first input byte picks a
 * vocabulary (SentencePiece or byte-level BPE) and the flags, the rest is
 * the text. Tokenizing must either succeed or reject the text (invalid
 * UTF-8) with a message; when it succeeds and no special tokens were parsed,
 * detokenizing the ids through the streaming detokenizer must give back the
 * text exactly (both vocabularies are lossless, except SentencePiece for a
 * literal U+2581). The vocabularies come from
 * tests/data/vocab, found next to this source file (or STRATA_FUZZ_VOCAB_DIR). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

static strata_tokenizer *tokenizers[2];

static void load_vocabularies(void)
{
    static const char *const names[2] = {"llama-spm", "gpt-2"};
    char dir[1024];
    const char *env = getenv("STRATA_FUZZ_VOCAB_DIR");
    if (env) {
        snprintf(dir, sizeof dir, "%s", env);
    } else {
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        if (slash)
            snprintf(slash, sizeof dir - (size_t)(slash - dir), "/../tests/data/vocab");
    }
    for (int i = 0; i < 2; i++) {
        char path[1200];
        strata_error err = {0};
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, names[i]);
        if (strata_tokenizer_load(path, NULL, &tokenizers[i], &err) != STRATA_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s (set STRATA_FUZZ_VOCAB_DIR)\n", err.message);
            abort(); /* a setup error of the harness, not a finding */
        }
    }
}

static bool contains_space_marker(const char *text, size_t len)
{
    for (size_t i = 0; i + 3 <= len; i++)
        if (memcmp(text + i, "\xE2\x96\x81", 3) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tokenizers[0])
        load_vocabularies();
    if (size == 0)
        return 0;
    const strata_tokenizer *tok = tokenizers[data[0] & 1];
    bool add_bos = (data[0] & 2) != 0, parse_special = (data[0] & 4) != 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    strata_error err = {0};
    strata_status status = strata_tokenize(tok, text, len, add_bos, parse_special, &ids, &n_ids, &err);
    if (status != STRATA_OK) {
        if (status != STRATA_INVALID_INPUT || err.message[0] == '\0')
            abort();
        free(ids);
        return 0;
    }
    size_t piece_size = strata_detokenizer_out_size(tok);
    char *piece = malloc(piece_size);
    char *back = malloc(len + 3 * n_ids + piece_size + 1);
    if (!piece || !back)
        abort();
    size_t used = 0;
    strata_detokenizer detok;
    strata_detokenizer_init(&detok, tok, false);
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= strata_vocab_size(tok))
            abort();
        int64_t written = strata_detokenizer_push(&detok, ids[i], piece, piece_size);
        if (written < 0 || (size_t)written >= piece_size)
            abort();
        memcpy(back + used, piece, (size_t)written);
        used += (size_t)written;
    }
    int64_t written = strata_detokenizer_flush(&detok, piece, piece_size);
    if (written < 0)
        abort();
    memcpy(back + used, piece, (size_t)written);
    used += (size_t)written;
    /* SentencePiece writes spaces as U+2581, so a U+2581 in the text comes
     * back as a space: the one way its round trip is not exact */
    bool lossless = !parse_special && !((data[0] & 1) == 0 && contains_space_marker(text, len));
    if (lossless && (used != len || memcmp(back, text, len) != 0))
        abort(); /* lossless round trip broken */
    free(back);
    free(piece);
    free(ids);
    return 0;
}
