/* strata_tokenize: checks the text is UTF-8, cuts out the special tokens
 * written in it (user-defined tokens always, control tokens only when the
 * caller asks), and hands each remaining raw fragment to the vocabulary's
 * encoder. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

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

/* Splits every raw fragment of *list at each occurrence of token's text. */
static strata_status split_at_token(const strata_tokenizer *tok, const char *text, size_t len, int32_t token,
                                    fragment_list *list, fragment_list *scratch, strata_error *err)
{
    const char *needle = tok->texts[token];
    size_t needle_len = tok->text_lens[token];
    if (!find_bytes(text, len, needle, needle_len))
        return STRATA_OK; /* nowhere in the text: the common case */
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

static strata_status encode_fragments(const strata_tokenizer *tok, const char *text, const fragment_list *fragments,
                                      id_list *out, strata_error *err)
{
    strata_status status = STRATA_OK;
    bool after_special = true; /* SentencePiece: the start counts as "after a special token" */
    for (size_t i = 0; i < fragments->count && status == STRATA_OK; i++) {
        fragment frag = fragments->items[i];
        if (frag.token >= 0) {
            status = id_list_push(out, frag.token, err);
            after_special = true;
        } else if (tok->kind == TOKENIZER_SPM) {
            status = spm_encode(tok, text + frag.begin, frag.end - frag.begin,
                                tok->add_space_prefix && after_special, out, err);
            after_special = false;
        } else {
            status = bpe_encode(tok, text + frag.begin, frag.end - frag.begin, out, err);
        }
    }
    return status;
}

strata_status strata_tokenize(const strata_tokenizer *tok, const char *text, size_t len, bool add_bos,
                              bool parse_special, int32_t **out_ids, size_t *out_count, strata_error *err)
{
    *out_ids = NULL;
    *out_count = 0;
    strata_status status = STRATA_OK;
    fragment_list fragments = {0}, scratch = {0};
    id_list ids = {0};
    if (len > INT32_MAX / 2)
        return strata_fail(err, STRATA_INVALID_INPUT, "tokenizer: %zu bytes of text is too long to tokenize at once",
                           len);
    size_t bad = first_invalid_utf8(text, len);
    if (bad < len)
        return strata_fail(err, STRATA_INVALID_INPUT, "tokenizer: the text is not valid UTF-8 at byte offset %zu (0x%02X)",
                           bad, (unsigned)(uint8_t)text[bad]);
    if (len > 0 && (status = fragment_push(&fragments, (fragment){0, len, -1}, err)) != STRATA_OK)
        goto fail;
    for (size_t i = 0; i < tok->n_special && fragments.count > 0; i++) {
        int32_t token = tok->special_ids[i];
        if (tok->types[token] != TOKEN_TYPE_USER_DEFINED && !parse_special)
            continue;
        if ((status = split_at_token(tok, text, len, token, &fragments, &scratch, err)) != STRATA_OK)
            goto fail;
    }
    if (add_bos && tok->bos >= 0 && (status = id_list_push(&ids, tok->bos, err)) != STRATA_OK)
        goto fail;
    if ((status = encode_fragments(tok, text, &fragments, &ids, err)) != STRATA_OK)
        goto fail;
    if (add_bos && tok->add_eos && tok->eos >= 0 && (status = id_list_push(&ids, tok->eos, err)) != STRATA_OK)
        goto fail;
    if (ids.count == 0 && (status = id_list_push(&ids, 0, err)) == STRATA_OK)
        ids.count = 0; /* a valid (empty) allocation, so the caller always frees */
    if (status != STRATA_OK)
        goto fail;
    *out_ids = ids.items;
    *out_count = ids.count;
    ids.items = NULL;
fail:
    free(fragments.items);
    free(scratch.items);
    free(ids.items);
    return status;
}
