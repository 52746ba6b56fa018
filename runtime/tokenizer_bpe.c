/* Byte-level BPE encoding (GPT-2 and the families that reuse its scheme):
 * the pre-tokenizer cuts the text into words; each word's bytes are written
 * as GPT-2's printable stand-in characters, one symbol per byte; then the
 * adjacent pair with the lowest merge rank is merged, again and again (ties:
 * leftmost first). Each final symbol is looked up in the vocabulary.
 *
 * Words are encoded as the pre-tokenizer finds them, with buffers reused
 * from word to word, so memory follows the longest word, not the text; a
 * word longer than chunk_bytes is merged in pieces cut where no merge can
 * cross (tokenizer_chunk.c). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct bpe_symbol {
    int32_t prev, next;
    uint32_t offset, len; /* into the piece's encoded text; len 0 once merged */
} bpe_symbol;

typedef struct bpe_state {
    const strata_tokenizer *tok;
    id_list *out;
    char *encoded;      /* the piece of a word, bytes mapped to stand-in characters */
    size_t encoded_len, encoded_capacity;
    bpe_symbol *symbols;
    size_t symbols_capacity;
    char *key;          /* scratch: "left right" */
    size_t key_capacity;
    merge_queue queue;
} bpe_state;

static strata_status grow(void **buffer, size_t *capacity, size_t needed, size_t elem_size, strata_error *err)
{
    if (needed <= *capacity)
        return STRATA_OK;
    size_t capacity_new = *capacity ? *capacity : 64;
    while (capacity_new < needed)
        capacity_new *= 2;
    void *grown = realloc(*buffer, capacity_new * elem_size);
    if (!grown)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for a word of %zu bytes", needed);
    *buffer = grown;
    *capacity = capacity_new;
    return STRATA_OK;
}

/* Queues (left, right) when "left right" is a merge. */
static strata_status try_add_pair(bpe_state *st, int left, int right, strata_error *err)
{
    if (left < 0 || right < 0)
        return STRATA_OK;
    const bpe_symbol *l = &st->symbols[left], *r = &st->symbols[right];
    size_t key_len = l->len + 1 + r->len;
    strata_status status = grow((void **)&st->key, &st->key_capacity, key_len, 1, err);
    if (status != STRATA_OK)
        return status;
    memcpy(st->key, st->encoded + l->offset, l->len);
    st->key[l->len] = ' ';
    memcpy(st->key + l->len + 1, st->encoded + r->offset, r->len);
    int32_t rank = text_map_get(&st->tok->merge_rank, st->key, key_len);
    if (rank < 0)
        return STRATA_OK;
    return merge_queue_push(&st->queue,
                            (merge_candidate){left, right, merge_priority_of_rank(rank), l->len + r->len}, err);
}

/* Writes one final symbol's token; a symbol that is no token is written as
 * the tokens of its single bytes where those exist (as llama.cpp does). */
static strata_status emit_symbol(const bpe_state *st, const bpe_symbol *sym, id_list *out, strata_error *err)
{
    int32_t id = text_map_get(&st->tok->text_to_id, st->encoded + sym->offset, sym->len);
    if (id >= 0)
        return id_list_push(out, id, err);
    for (size_t i = 0; i < sym->len; i++) {
        int32_t byte_id = text_map_get(&st->tok->text_to_id, st->encoded + sym->offset + i, 1);
        strata_status status = byte_id >= 0 ? id_list_push(out, byte_id, err) : STRATA_OK;
        if (status != STRATA_OK)
            return status;
    }
    return STRATA_OK;
}

/* Writes the stand-ins of word[0..len) into st->encoded (2 bytes room per byte). */
static void encode_stand_ins(bpe_state *st, const char *word, size_t len)
{
    const strata_tokenizer *tok = st->tok;
    st->encoded_len = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)word[i];
        memcpy(st->encoded + st->encoded_len, tok->byte_utf8[b], tok->byte_utf8_len[b]);
        st->encoded_len += tok->byte_utf8_len[b];
    }
}

/* Merges one piece of a word (all of it, or a part cut where no merge
 * crosses) and writes its tokens. */
static strata_status merge_piece(bpe_state *st, const char *piece, size_t len, strata_error *err)
{
    const strata_tokenizer *tok = st->tok;
    strata_status status;
    if ((status = grow((void **)&st->encoded, &st->encoded_capacity, len * 2, 1, err)) ||
        (status = grow((void **)&st->symbols, &st->symbols_capacity, len, sizeof *st->symbols, err)))
        return status;
    encode_stand_ins(st, piece, len);
    for (size_t i = 0, offset = 0; i < len; i++) {
        uint8_t length = tok->byte_utf8_len[(uint8_t)piece[i]];
        st->symbols[i] = (bpe_symbol){(int32_t)i - 1, i + 1 < len ? (int32_t)i + 1 : -1, (uint32_t)offset, length};
        offset += length;
    }
    st->queue.count = 0;
    for (size_t i = 1; i < len; i++)
        if ((status = try_add_pair(st, (int)i - 1, (int)i, err)) != STRATA_OK)
            return status;
    while (st->queue.count > 0) {
        merge_candidate pair = merge_queue_pop(&st->queue);
        bpe_symbol *left = &st->symbols[pair.left], *right = &st->symbols[pair.right];
        if (left->len == 0 || right->len == 0 || left->len + right->len != pair.len)
            continue;
        left->len += right->len;
        right->len = 0;
        left->next = right->next;
        if (right->next >= 0)
            st->symbols[right->next].prev = pair.left;
        if ((status = try_add_pair(st, left->prev, pair.left, err)) != STRATA_OK ||
            (status = try_add_pair(st, pair.left, left->next, err)) != STRATA_OK)
            return status;
    }
    for (int i = 0; i >= 0 && (size_t)i < len; i = st->symbols[i].next)
        if ((status = emit_symbol(st, &st->symbols[i], st->out, err)) != STRATA_OK)
            return status;
    return STRATA_OK;
}

/* pretokenizer_word_fn: encodes one word. */
static strata_status encode_word(void *user, const char *word, size_t len, strata_error *err)
{
    bpe_state *st = user;
    const strata_tokenizer *tok = st->tok;
    strata_status status;
    /* LLaMA 3: a word that is a token is kept whole (no token is longer
     * than max_token_bytes, so longer words need no look) */
    if (tok->ignore_merges && len <= tok->max_token_bytes) {
        if ((status = grow((void **)&st->encoded, &st->encoded_capacity, len * 2, 1, err)) != STRATA_OK)
            return status;
        encode_stand_ins(st, word, len);
        int32_t id = text_map_get(&tok->text_to_id, st->encoded, st->encoded_len);
        if (id >= 0)
            return id_list_push(st->out, id, err);
    }
    for (size_t begin = 0, end; begin < len; begin = end) {
        end = tokenizer_next_cut(tok, word, len, begin, bpe_cut_is_safe);
        if ((status = merge_piece(st, word + begin, end - begin, err)) != STRATA_OK)
            return status;
    }
    return STRATA_OK;
}

strata_status bpe_encode(const strata_tokenizer *tok, const char *text, size_t len, id_list *out, strata_error *err)
{
    bpe_state st = {.tok = tok, .out = out};
    strata_status status = pretokenizer_split(tok->pre, text, len, encode_word, &st, err);
    free(st.encoded);
    free(st.symbols);
    free(st.key);
    free(st.queue.items);
    return status;
}
