/* strata_tokenize: checks the text is UTF-8, cuts out the special tokens
 * written in it (user-defined tokens always, control tokens only when the
 * caller asks), and hands the raw text between them to the vocabulary's
 * encoder.
 *
 * Special tokens are looked for in pieces of the text cut where no
 * occurrence of one spans the cut (tokenizer_chunk.c), so the list of
 * fragments covers one piece at a time; the raw text between two special
 * tokens is encoded as one span whatever pieces it crosses, and the
 * encoders stream through it. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"
#include "unicode_nfc.h"

/* A piece of the input: raw text [begin, end) or one token. */
typedef struct fragment {
    size_t begin, end;
    int32_t token; /* -1 for raw text */
} fragment;

typedef struct fragment_list {
    fragment *items;
    size_t count, capacity;
} fragment_list;

static strata_status fragment_push(fragment_list *list, fragment item, strata_error *err)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        fragment *items = realloc(list->items, capacity * sizeof *items);
        if (!items)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for %zu text fragments", capacity);
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = item;
    return STRATA_OK;
}

/* Offset of the first byte that is not part of valid UTF-8, or len. */
static size_t first_invalid_utf8(const char *text, size_t len)
{
    size_t offset = 0;
    while (offset < len) {
        if ((uint8_t)text[offset] < 0x80) {
            offset++;
            continue;
        }
        size_t n = utf8_sequence_length(text + offset, len - offset);
        if (n == 0)
            return offset;
        offset += n;
    }
    return len;
}

static const char *find_bytes(const char *haystack, size_t haystack_len, const char *needle, size_t needle_len)
{
    if (needle_len == 0 || needle_len > haystack_len)
        return NULL;
    const char *last = haystack + haystack_len - needle_len;
    for (const char *p = haystack; p <= last; p++) {
        p = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, needle_len) == 0)
            return p;
    }
    return NULL;
}

/* Splits every raw fragment of *list at each occurrence of token's text;
 * the fragments all lie in text[piece_begin..piece_end). */
static strata_status split_at_token(const strata_tokenizer *tok, const char *text, size_t piece_begin, size_t piece_end,
                                    int32_t token, fragment_list *list, fragment_list *scratch, strata_error *err)
{
    const char *needle = tok->texts[token];
    size_t needle_len = tok->text_lens[token];
    if (!find_bytes(text + piece_begin, piece_end - piece_begin, needle, needle_len))
        return STRATA_OK; /* nowhere in this piece: the common case */
    strata_status status;
    scratch->count = 0;
    for (size_t i = 0; i < list->count; i++) {
        fragment frag = list->items[i];
        if (frag.token >= 0) {
            if ((status = fragment_push(scratch, frag, err)) != STRATA_OK)
                return status;
            continue;
        }
        size_t begin = frag.begin;
        const char *hit;
        while ((hit = find_bytes(text + begin, frag.end - begin, needle, needle_len))) {
            size_t at = (size_t)(hit - text);
            if (at > begin && (status = fragment_push(scratch, (fragment){begin, at, -1}, err)) != STRATA_OK)
                return status;
            if ((status = fragment_push(scratch, (fragment){at, at + needle_len, token}, err)) != STRATA_OK)
                return status;
            begin = at + needle_len;
        }
        if (begin < frag.end && (status = fragment_push(scratch, (fragment){begin, frag.end, -1}, err)) != STRATA_OK)
            return status;
    }
    fragment_list swap = *list;
    *list = *scratch;
    *scratch = swap;
    return STRATA_OK;
}

/* The state of one strata_tokenize call between the pieces of its text. */
typedef struct encode_state {
    const strata_tokenizer *tok;
    const char *text;
    size_t raw_begin;   /* where the raw text not yet encoded starts */
    bool after_special; /* SentencePiece: the start counts as "after a special token" */
    bool strip_pending; /* the last special token was rstrip: drop the whitespace after it */
    id_list ids;
} encode_state;

/* Drops the whitespace at raw_begin, up to limit, after an rstrip token;
 * the whitespace may go on in the next piece, so the strip stays pending
 * until something else is found. */
static void strip_after_special(encode_state *st, size_t limit)
{
    while (st->strip_pending && st->raw_begin < limit) {
        size_t n = unicode_whitespace_length(st->text + st->raw_begin, limit - st->raw_begin);
        if (n == 0)
            st->strip_pending = false;
        st->raw_begin += n;
    }
}

/* Encodes the raw text [st->raw_begin, end). */
static strata_status encode_raw(encode_state *st, size_t end, strata_error *err)
{
    const strata_tokenizer *tok = st->tok;
    size_t begin = st->raw_begin;
    st->raw_begin = end;
    if (end == begin)
        return STRATA_OK;
    if (tok->kind == TOKENIZER_BPE && tok->normalize_nfc && unicode_nfc_may_change(st->text + begin, end - begin)) {
        /* Hugging Face normalizes the text between added tokens, which
         * match before normalization: NFC the raw span alone */
        char *normalized = NULL;
        size_t normalized_len = 0;
        strata_status status = unicode_nfc(st->text + begin, end - begin, &normalized, &normalized_len, err);
        if (status == STRATA_OK)
            status = bpe_encode(tok, normalized, normalized_len, &st->ids, err);
        free(normalized);
        return status;
    }
    if (tok->kind == TOKENIZER_BPE)
        return bpe_encode(tok, st->text + begin, end - begin, &st->ids, err);
    bool space_prefix = tok->add_space_prefix && st->after_special;
    st->after_special = false;
    return spm_encode(tok, st->text + begin, end - begin, space_prefix, &st->ids, err);
}

/* Finds the special tokens in text[begin..end) and encodes what precedes
 * each; the raw text after the last one waits for the next piece. */
static strata_status find_specials_in_piece(encode_state *st, size_t begin, size_t end, bool parse_special,
                                            fragment_list *fragments, fragment_list *scratch, strata_error *err)
{
    const strata_tokenizer *tok = st->tok;
    strata_status status;
    /* most pieces hold no byte a special token starts with: nothing to do */
    bool present[256] = {false}, any = false;
    for (size_t i = begin; i < end; i++) {
        uint8_t b = (uint8_t)st->text[i];
        if (tokenizer_special_starts(tok, b))
            present[b] = any = true;
    }
    if (!any) {
        strip_after_special(st, end);
        return STRATA_OK;
    }
    fragments->count = 0;
    if ((status = fragment_push(fragments, (fragment){begin, end, -1}, err)) != STRATA_OK)
        return status;
    for (size_t i = 0; i < tok->n_special; i++) {
        int32_t token = tok->special_ids[i];
        if (tok->types[token] != TOKEN_TYPE_USER_DEFINED && !parse_special)
            continue;
        if (!present[(uint8_t)tok->texts[token][0]] || tok->text_lens[token] > end - begin)
            continue;
        if ((status = split_at_token(tok, st->text, begin, end, token, fragments, scratch, err)) != STRATA_OK)
            return status;
    }
    for (size_t i = 0; i < fragments->count; i++) {
        fragment frag = fragments->items[i];
        if (frag.token < 0)
            continue;
        strip_after_special(st, frag.begin);
        st->strip_pending = false; /* the whitespace ran up to this token */
        if ((status = encode_raw(st, frag.begin, err)) != STRATA_OK ||
            (status = id_list_push(&st->ids, frag.token, err)) != STRATA_OK)
            return status;
        st->raw_begin = frag.end;
        st->after_special = true;
        st->strip_pending = tok->rstrip && tok->rstrip[frag.token];
    }
    strip_after_special(st, end);
    return STRATA_OK;
}

strata_status strata_tokenize(const strata_tokenizer *tok, const char *text, size_t len, bool add_bos,
                              bool parse_special, int32_t **out_ids, size_t *out_count, strata_error *err)
{
    *out_ids = NULL;
    *out_count = 0;
    strata_status status = STRATA_OK;
    fragment_list fragments = {0}, scratch = {0};
    encode_state st = {.tok = tok, .text = text, .after_special = true};
    if (len > STRATA_TOKENIZE_MAX_BYTES)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "tokenizer: the text is %zu bytes, more than the %zu MiB tokenized at once "
                           "(STRATA_TOKENIZE_MAX_BYTES); tokenize it in parts",
                           len, STRATA_TOKENIZE_MAX_BYTES >> 20);
    size_t bad = first_invalid_utf8(text, len);
    if (bad < len)
        return strata_fail(err, STRATA_INVALID_INPUT, "tokenizer: the text is not valid UTF-8 at byte offset %zu (0x%02X)",
                           bad, (unsigned)(uint8_t)text[bad]);
    if (add_bos && tok->bos >= 0 && (status = id_list_push(&st.ids, tok->bos, err)) != STRATA_OK)
        goto fail;
    for (size_t begin = 0, end; begin < len; begin = end) {
        end = tok->n_special > 0 ? tokenizer_next_cut(tok, text, len, begin, special_cut_is_safe) : len;
        if ((status = find_specials_in_piece(&st, begin, end, parse_special, &fragments, &scratch, err)) != STRATA_OK)
            goto fail;
    }
    if ((status = encode_raw(&st, len, err)) != STRATA_OK)
        goto fail;
    if (add_bos && tok->add_eos && tok->eos >= 0 && (status = id_list_push(&st.ids, tok->eos, err)) != STRATA_OK)
        goto fail;
    if (st.ids.count == 0 && (status = id_list_push(&st.ids, 0, err)) == STRATA_OK)
        st.ids.count = 0; /* a valid (empty) allocation, so the caller always frees */
    if (status != STRATA_OK)
        goto fail;
    /* give back the unused end of the doubled list: the caller may keep it */
    int32_t *fitted = realloc(st.ids.items, (st.ids.count ? st.ids.count : 1) * sizeof *fitted);
    *out_ids = fitted ? fitted : st.ids.items;
    *out_count = st.ids.count;
    st.ids.items = NULL;
fail:
    free(fragments.items);
    free(scratch.items);
    free(st.ids.items);
    return status;
}
