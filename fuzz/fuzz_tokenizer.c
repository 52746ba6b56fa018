/* libFuzzer target for the tokenizers.
 *
 * Input: one flags byte, then the text. Flags: bits 0-3 pick one of the
 * vocabularies of tests/data/vocab (modulo their count), bit 4 adds BOS,
 * bit 5 parses special tokens, bits 6-7 pick the piece size of the
 * differential check below. The vocabularies are loaded once per process
 * (LLVMFuzzerInitialize), from tests/data/vocab found next to this source
 * file or from $STRATA_FUZZ_VOCAB_DIR.
 *
 * Checked for every input:
 *  - tokenizing succeeds or rejects the text (invalid UTF-8) with a message;
 *  - every id is inside the vocabulary;
 *  - cutting the text into pieces of 1 to 64 bytes wherever the tokenizer
 *    allows (tokenizer_chunk.c) gives the same ids as the text whole;
 *  - detokenizing through the streaming detokenizer gives back the text
 *    exactly, where the vocabulary is lossless: not with parse_special
 *    (control tokens are not rendered), not for SentencePiece text with a
 *    literal U+2581 (it comes back as a space) or with special tokens in it
 *    (the text after one gets the space prefix, as llama.cpp does), and not
 *    for BPE text with a byte the vocabulary has no token for (refact has
 *    none for 0xF1, which starts U+40000..U+7FFFF: such a byte is dropped,
 *    as llama.cpp does); for a vocabulary that normalizes to NFC (qwen2),
 *    the text comes back in NFC, unless special tokens split it (NFC then
 *    applies to the text between them);
 *  - NFC (runtime/unicode_nfc.c) of any input is idempotent, never calls
 *    text NFC that it changes, and at most triples the bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "tokenizer_internal.h" /* chunk_bytes and token types */
#include "unicode_nfc.h"

static const char *const VOCAB_NAMES[] = {
    "llama-spm", "phi-3", "gpt-2", "deepseek-coder", "mpt", "refact", "llama-bpe", "qwen2", "command-r",
};
#define N_VOCABS (sizeof VOCAB_NAMES / sizeof VOCAB_NAMES[0])

static strata_tokenizer *tokenizers[N_VOCABS];
static bool byte_has_token[N_VOCABS][256]; /* BPE: the byte's stand-in is a token */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
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
    for (size_t i = 0; i < N_VOCABS; i++) {
        char path[1200];
        strata_error err = {0};
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, VOCAB_NAMES[i]);
        if (strata_tokenizer_load(path, NULL, &tokenizers[i], &err) != STRATA_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s (set STRATA_FUZZ_VOCAB_DIR)\n", err.message);
            abort(); /* a setup error of the harness, not a finding */
        }
        const strata_tokenizer *tok = tokenizers[i];
        for (int b = 0; b < 256; b++)
            byte_has_token[i][b] = tok->kind == TOKENIZER_SPM ||
                                   text_map_get(&tok->text_to_id, tok->byte_utf8[b], tok->byte_utf8_len[b]) >= 0;
    }
    return 0;
}

static bool every_byte_has_token(size_t vocab, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!byte_has_token[vocab][(uint8_t)text[i]])
            return false;
    return true;
}

static bool contains_space_marker(const char *text, size_t len)
{
    for (size_t i = 0; i + 3 <= len; i++)
        if (memcmp(text + i, "\xE2\x96\x81", 3) == 0)
            return true;
    return false;
}

static bool has_special_token(const strata_tokenizer *tok, const int32_t *ids, size_t n_ids)
{
    for (size_t i = 0; i < n_ids; i++) {
        int32_t type = tok->types[ids[i]];
        if (type == TOKEN_TYPE_CONTROL || type == TOKEN_TYPE_USER_DEFINED || type == TOKEN_TYPE_UNKNOWN)
            return true;
    }
    return false;
}

/* Tokenizes with the text cut into pieces of chunk_bytes and aborts when
 * the ids differ from the whole text's. */
static void check_cut(strata_tokenizer *tok, const char *text, size_t len, bool add_bos, bool parse_special,
                      size_t chunk_bytes, const int32_t *ids, size_t n_ids)
{
    size_t saved = tok->chunk_bytes;
    tok->chunk_bytes = chunk_bytes;
    int32_t *cut = NULL;
    size_t n_cut = 0;
    strata_error err = {0};
    strata_status status = strata_tokenize(tok, text, len, add_bos, parse_special, &cut, &n_cut, &err);
    tok->chunk_bytes = saved;
    if (status != STRATA_OK || n_cut != n_ids || memcmp(cut, ids, n_ids * sizeof *ids) != 0)
        abort(); /* a cut changed the result */
    free(cut);
}

/* NFC of text (malloc'ed) with its properties checked; aborts on a finding. */
static char *checked_nfc(const char *text, size_t len, size_t *nfc_len)
{
    char *nfc = NULL, *again = NULL;
    size_t again_len = 0;
    strata_error err = {0};
    if (unicode_nfc(text, len, &nfc, nfc_len, &err) != STRATA_OK || *nfc_len > 3 * len)
        abort();
    bool changed = *nfc_len != len || memcmp(nfc, text, len) != 0;
    if (changed && !unicode_nfc_may_change(text, len))
        abort(); /* the quick check missed a change */
    if (unicode_nfc(nfc, *nfc_len, &again, &again_len, &err) != STRATA_OK || again_len != *nfc_len ||
        memcmp(again, nfc, again_len) != 0)
        abort(); /* not idempotent */
    free(again);
    return nfc;
}

static void check_round_trip(const strata_tokenizer *tok, const char *text, size_t len, const int32_t *ids,
                             size_t n_ids)
{
    size_t piece_size = strata_detokenizer_out_size(tok);
    char *piece = malloc(piece_size);
    char *back = malloc(len + 3 * n_ids + piece_size + 1);
    if (!piece || !back)
        abort();
    size_t used = 0;
    strata_detokenizer detok;
    strata_detokenizer_init(&detok, tok, false);
    for (size_t i = 0; i < n_ids; i++) {
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
    if (used != len || memcmp(back, text, len) != 0)
        abort(); /* lossless round trip broken */
    free(back);
    free(piece);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const size_t CHUNKS[4] = {1, 3, 16, 64};
    size_t vocab = (data[0] & 15) % N_VOCABS;
    strata_tokenizer *tok = tokenizers[vocab];
    bool add_bos = (data[0] & 16) != 0, parse_special = (data[0] & 32) != 0;
    size_t chunk_bytes = CHUNKS[data[0] >> 6];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    size_t nfc_len = 0;
    char *nfc = checked_nfc(text, len, &nfc_len);
    bool nfc_changes = nfc_len != len || memcmp(nfc, text, len) != 0;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    strata_error err = {0};
    strata_status status = strata_tokenize(tok, text, len, add_bos, parse_special, &ids, &n_ids, &err);
    if (status != STRATA_OK) {
        if (status != STRATA_INVALID_INPUT || err.message[0] == '\0')
            abort();
        free(ids);
        free(nfc);
        return 0;
    }
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= strata_vocab_size(tok))
            abort();
    check_cut(tok, text, len, add_bos, parse_special, chunk_bytes, ids, n_ids);
    bool spm = tok->kind == TOKENIZER_SPM;
    bool lossless = !parse_special && !(spm && (contains_space_marker(text, len) || has_special_token(tok, ids, n_ids))) &&
                    every_byte_has_token(vocab, text, len);
    if (lossless && tok->normalize_nfc && nfc_changes) {
        if (!has_special_token(tok, ids, n_ids))
            check_round_trip(tok, nfc, nfc_len, ids, n_ids);
    } else if (lossless) {
        check_round_trip(tok, text, len, ids, n_ids);
    }
    free(nfc);
    free(ids);
    return 0;
}
