/* SentencePiece-style encoding (LLaMA 1/2, Mistral v0.1, Phi-3, Gemma):
 * spaces become U+2581, the text starts as one symbol per UTF-8 character,
 * and the adjacent pair whose concatenation is the vocabulary token with the
 * highest score is merged, again and again (ties: leftmost first). A final
 * symbol that is not a token is written as its bytes (<0xXX> tokens), or as
 * the unknown token when the vocabulary has no byte tokens.
 *
 * There is no pre-tokenizer: the whole text would be one merge problem. It
 * is cut instead into pieces of about chunk_bytes where no merge can cross
 * (tokenizer_chunk.c), merged one after another with reused buffers. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static const char SPACE_MARKER[] = "\xE2\x96\x81"; /* U+2581 */

typedef struct spm_symbol {
    int32_t prev, next; /* -1 at the ends */
    uint32_t offset;    /* into the escaped text (at most 3 x 64 MiB + 3) */
    uint32_t len;       /* 0 once merged into its left neighbour */
} spm_symbol;

/* Buffers for one piece of text, kept from piece to piece. */
typedef struct spm_state {
    const strata_tokenizer *tok;
    char *text;          /* the piece, spaces escaped */
    size_t text_capacity;
    spm_symbol *symbols;
    size_t symbols_capacity;
    merge_queue queue;
} spm_state;

/* Queues the pair (left, right) when their concatenation is a token. */
static strata_status try_add_bigram(spm_state *st, int left, int right, strata_error *err)
{
    if (left < 0 || right < 0)
        return STRATA_OK;
    const spm_symbol *l = &st->symbols[left], *r = &st->symbols[right];
    size_t len = l->len + r->len;
    int32_t id = text_map_get(&st->tok->text_to_id, st->text + l->offset, len);
    if (id < 0)
        return STRATA_OK;
    float score = st->tok->scores ? st->tok->scores[id] : 0.0f;
    return merge_queue_push(&st->queue, (merge_candidate){left, right, merge_priority_of_score(score), (uint32_t)len},
                            err);
}

/* Writes one final symbol: its token, else its bytes, else unknown. */
static strata_status emit_symbol(const spm_state *st, const spm_symbol *sym, id_list *out, strata_error *err)
{
    const strata_tokenizer *tok = st->tok;
    int32_t id = text_map_get(&tok->text_to_id, st->text + sym->offset, sym->len);
    if (id >= 0)
        return id_list_push(out, id, err);
    for (size_t i = 0; i < sym->len; i++) {
        int32_t byte_id = tok->byte_tokens[(uint8_t)st->text[sym->offset + i]];
        if (byte_id < 0) {
            if (tok->unk < 0)
                return strata_fail(err, STRATA_INVALID_INPUT,
                                   "tokenizer: '%.*s' has no token, and the vocabulary has neither byte tokens "
                                   "nor an unknown token",
                                   (int)sym->len, st->text + sym->offset);
            return id_list_push(out, tok->unk, err); /* one unknown token for the whole symbol */
        }
        strata_status status = id_list_push(out, byte_id, err);
        if (status != STRATA_OK)
            return status;
    }
    return STRATA_OK;
}

/* Grows *buffer to hold at least needed elements of elem_size bytes. */
static bool reserve(void **buffer, size_t *capacity, size_t needed, size_t elem_size)
{
    if (needed <= *capacity)
        return true;
    void *grown = realloc(*buffer, needed * elem_size);
    if (!grown)
        return false;
    *buffer = grown;
    *capacity = needed;
    return true;
}

/* Copies text into st->text with ' ' replaced by the space marker (and one
 * leading when space_prefix); returns the escaped length, or 0 when out of
 * memory (the result is never empty: the caller has text or a prefix). */
static size_t escape_spaces(spm_state *st, const char *text, size_t len, bool space_prefix)
{
    size_t spaces = space_prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    if (!reserve((void **)&st->text, &st->text_capacity, len + spaces * 2 + 1, 1))
        return 0;
    char *escaped = st->text;
    size_t n = 0;
    if (space_prefix) {
        memcpy(escaped, SPACE_MARKER, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(escaped + n, SPACE_MARKER, 3);
            n += 3;
        } else {
            escaped[n++] = text[i];
        }
    }
    return n;
}

/* Merges one piece of the text and writes its tokens. */
static strata_status encode_piece(spm_state *st, const char *text, size_t len, bool space_prefix, id_list *out,
                                  strata_error *err)
{
    strata_status status = STRATA_OK;
    size_t escaped_len = escape_spaces(st, text, len, space_prefix);
    if (escaped_len == 0 || !reserve((void **)&st->symbols, &st->symbols_capacity, escaped_len + 1,
                                     sizeof *st->symbols))
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for %zu bytes of text", len);
    int32_t n_symbols = 0;
    for (size_t offset = 0; offset < escaped_len; n_symbols++) {
        size_t char_len = utf8_sequence_length(st->text + offset, escaped_len - offset);
        if (char_len == 0) /* the caller validated the text; be safe anyway */
            char_len = 1;
        st->symbols[n_symbols] = (spm_symbol){n_symbols - 1, -1, (uint32_t)offset, (uint32_t)char_len};
        if (n_symbols > 0)
            st->symbols[n_symbols - 1].next = n_symbols;
        offset += char_len;
    }
    st->queue.count = 0;
    for (int32_t i = 1; i < n_symbols; i++)
        if ((status = try_add_bigram(st, i - 1, i, err)) != STRATA_OK)
            return status;
    while (st->queue.count > 0) {
        merge_candidate bigram = merge_queue_pop(&st->queue);
        spm_symbol *left = &st->symbols[bigram.left], *right = &st->symbols[bigram.right];
        /* stale: one side was merged away or grew since it was queued */
        if (left->len == 0 || right->len == 0 || left->len + right->len != bigram.len)
            continue;
        left->len += right->len;
        right->len = 0;
        left->next = right->next;
        if (right->next >= 0)
            st->symbols[right->next].prev = bigram.left;
        if ((status = try_add_bigram(st, left->prev, bigram.left, err)) != STRATA_OK ||
            (status = try_add_bigram(st, bigram.left, left->next, err)) != STRATA_OK)
            return status;
    }
    for (int32_t i = 0; i >= 0 && i < n_symbols; i = st->symbols[i].next)
        if ((status = emit_symbol(st, &st->symbols[i], out, err)) != STRATA_OK)
            return status;
    return STRATA_OK;
}

strata_status spm_encode(const strata_tokenizer *tok, const char *text, size_t len, bool space_prefix, id_list *out,
                         strata_error *err)
{
    strata_status status = STRATA_OK;
    spm_state st = {.tok = tok};
    if (len == 0)
        status = space_prefix ? encode_piece(&st, text, 0, true, out, err) : STRATA_OK;
    for (size_t begin = 0, end; begin < len && status == STRATA_OK; begin = end) {
        end = tokenizer_next_cut(tok, text, len, begin, spm_cut_is_safe);
        /* the prefix belongs to the start of the text, not of each piece */
        status = encode_piece(&st, text + begin, end - begin, space_prefix && begin == 0, out, err);
    }
    free(st.text);
    free(st.symbols);
    free(st.queue.items);
    return status;
}
