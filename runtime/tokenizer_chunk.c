/* Where long text may be cut so that encoding the pieces one after another
 * gives exactly the ids of encoding it whole (the rule is in
 * tokenizer_internal.h).
 *
 * Why a cut between two symbols that no merge can join is exact: both
 * encoders merge adjacent symbol pairs from a priority queue, and a symbol
 * only grows by merging with a neighbour. When no pair across the cut can
 * ever merge, nothing ever spans it; the merges on the left never look at
 * the right and the other way round, and each side keeps its own order
 * (priorities, then leftmost first). A pair across the cut is a left symbol
 * ending there and a right symbol starting there, so its bytes meet at the
 * cut: when no token (SentencePiece) or merge (BPE) has those two bytes
 * side by side at a symbol boundary, the pair cannot merge. The test is on
 * bytes, coarser than the symbols, so it may refuse a cut that was safe,
 * never the other way. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* Character starts tried after each chunk_bytes of text before skipping
 * ahead: bounds the time spent in text with no place to cut. */
#define CUT_TRIES 1024

/* The UTF-8 of U+2581, which stands for a space in SentencePiece text. */
#define SPACE_MARKER_FIRST 0xE2
#define SPACE_MARKER_LAST 0x81

static void set_joinable(strata_tokenizer *tok, uint8_t left, uint8_t right)
{
    unsigned bit = (unsigned)left << 8 | right;
    tok->joinable[bit >> 6] |= 1ull << (bit & 63);
}

static bool is_joinable(const strata_tokenizer *tok, uint8_t left, uint8_t right)
{
    unsigned bit = (unsigned)left << 8 | right;
    return (tok->joinable[bit >> 6] >> (bit & 63)) & 1;
}

/* SentencePiece symbols are characters; every merge makes a token the
 * encoder can produce, so the byte pairs that can meet inside a merge are
 * the pairs at the character boundaries of those tokens. */
static void build_spm_joinable(strata_tokenizer *tok)
{
    for (int64_t id = 0; id < tok->n_vocab; id++) {
        const uint8_t *text = (const uint8_t *)tok->texts[id];
        uint32_t len = tok->text_lens[id];
        if (len < 2 || text_map_get(&tok->text_to_id, tok->texts[id], len) < 0)
            continue; /* a token the encoder never produces joins nothing */
        for (uint32_t i = 0; i + 1 < len; i++)
            if ((text[i + 1] & 0xC0) != 0x80)
                set_joinable(tok, text[i], text[i + 1]);
    }
}

/* The byte the byte-level BPE character at s[0..len) stands for, or -1. */
static int stand_in_byte(const strata_tokenizer *tok, const char *s, size_t len)
{
    size_t n = utf8_sequence_length(s, len);
    if (n == 0)
        return -1;
    uint32_t cp = (uint8_t)s[0];
    if (n > 1) {
        cp &= 0xFFu >> (n + 1);
        for (size_t k = 1; k < n; k++)
            cp = (cp << 6) | ((uint8_t)s[k] & 0x3F);
    }
    return cp < sizeof tok->codepoint_byte / sizeof tok->codepoint_byte[0] ? tok->codepoint_byte[cp] : -1;
}

/* BPE symbols are runs of stand-in characters, one per byte. A merge
 * "left right" joins a symbol ending in left's last byte to one starting
 * with right's first byte. Stand-ins contain no space, so a merge whose
 * sides are symbols has exactly one; one whose sides contain anything but
 * stand-ins can never apply. */
static void build_bpe_joinable(strata_tokenizer *tok)
{
    const text_map *merges = &tok->merge_rank;
    for (size_t slot = 0; slot < merges->capacity; slot++) {
        const char *merge = merges->keys[slot];
        size_t len = merge ? merges->key_lens[slot] : 0;
        const char *space = len > 2 ? memchr(merge + 1, ' ', len - 2) : NULL;
        if (!space)
            continue;
        const char *last = space - 1; /* start of the left side's last character */
        while (last > merge && ((uint8_t)*last & 0xC0) == 0x80)
            last--;
        int left = stand_in_byte(tok, last, (size_t)(space - last));
        int right = stand_in_byte(tok, space + 1, (size_t)(merge + len - space - 1));
        if (left >= 0 && right >= 0)
            set_joinable(tok, (uint8_t)left, (uint8_t)right);
    }
}

/* special_by_first: a counting sort of the special list by first byte,
 * which keeps its longest-first order within each byte. */
static strata_status group_specials_by_first_byte(strata_tokenizer *tok, strata_error *err)
{
    memset(tok->special_first, 0, sizeof tok->special_first);
    tok->special_max_len = 0;
    tok->special_by_first = malloc((tok->n_special ? tok->n_special : 1) * sizeof *tok->special_by_first);
    if (!tok->special_by_first)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for %zu special tokens",
                           tok->n_special);
    for (size_t i = 0; i < tok->n_special; i++) {
        int32_t id = tok->special_ids[i];
        tok->special_first[(uint8_t)tok->texts[id][0] + 1]++;
        if (tok->text_lens[id] > tok->special_max_len)
            tok->special_max_len = tok->text_lens[id];
    }
    for (int b = 0; b < 256; b++)
        tok->special_first[b + 1] += tok->special_first[b];
    uint32_t next[256];
    memcpy(next, tok->special_first, sizeof next);
    for (size_t i = 0; i < tok->n_special; i++) {
        int32_t id = tok->special_ids[i];
        tok->special_by_first[next[(uint8_t)tok->texts[id][0]]++] = id;
    }
    return STRATA_OK;
}

strata_status tokenizer_build_cut_tables(strata_tokenizer *tok, strata_error *err)
{
    memset(tok->joinable, 0, sizeof tok->joinable);
    if (tok->kind == TOKENIZER_SPM)
        build_spm_joinable(tok);
    else
        build_bpe_joinable(tok);
    tok->chunk_bytes = TOKENIZER_CHUNK_BYTES;
    return group_specials_by_first_byte(tok, err);
}

bool spm_cut_is_safe(const strata_tokenizer *tok, const char *text, size_t len, size_t at)
{
    (void)len;
    /* the encoder sees spaces as U+2581: compare the bytes it will see */
    uint8_t left = text[at - 1] == ' ' ? SPACE_MARKER_LAST : (uint8_t)text[at - 1];
    uint8_t right = text[at] == ' ' ? SPACE_MARKER_FIRST : (uint8_t)text[at];
    return !is_joinable(tok, left, right);
}

bool bpe_cut_is_safe(const strata_tokenizer *tok, const char *word, size_t len, size_t at)
{
    (void)len;
    return !is_joinable(tok, (uint8_t)word[at - 1], (uint8_t)word[at]);
}

/* Special tokens are matched longest first, each at its leftmost
 * non-overlapping occurrences in what longer ones left; where no occurrence
 * of any of them spans the cut, matching on each side alone finds the same. */
bool special_cut_is_safe(const strata_tokenizer *tok, const char *text, size_t len, size_t at)
{
    /* an occurrence starting back bytes before the cut spans it when it is
     * longer than back */
    for (size_t back = 1; back < tok->special_max_len && back <= at; back++) {
        size_t start = at - back;
        uint8_t first = (uint8_t)text[start];
        for (uint32_t i = tok->special_first[first]; i < tok->special_first[first + 1]; i++) {
            int32_t id = tok->special_by_first[i];
            size_t n = tok->text_lens[id];
            if (n <= back)
                break; /* longest first: this one and the rest end before the cut */
            if (start + n <= len && memcmp(text + start, tok->texts[id], n) == 0)
                return false;
        }
    }
    return true;
}

size_t tokenizer_next_cut(const strata_tokenizer *tok, const char *text, size_t len, size_t begin,
                          cut_is_safe_fn is_safe)
{
    size_t chunk = tok->chunk_bytes;
    if (len - begin <= chunk)
        return len;
    size_t at = begin + chunk;
    while (at < len) {
        for (size_t tries = 0; at < len && tries < CUT_TRIES; at++) {
            if (((uint8_t)text[at] & 0xC0) == 0x80)
                continue; /* inside a character */
            if (is_safe(tok, text, len, at))
                return at;
            tries++;
        }
        at = len - at > chunk ? at + chunk : len;
    }
    return len;
}
