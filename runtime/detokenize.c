/* Tokens back to text: one token's bytes (strata_token_to_bytes) and the
 * streaming detokenizer, which never writes half a UTF-8 character: an
 * incomplete character at the end of what it has is held back until the
 * next token completes it, and bytes that can never form a character are
 * written as U+FFFD. The detokenizer writes an id the tokenizer does not
 * have as "<id>". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Appends len bytes to buf when they fit; returns the new full length. */
static size_t put(char *buf, size_t buf_size, size_t used, const char *bytes, size_t len)
{
    if (used < buf_size)
        memcpy(buf + used, bytes, used + len <= buf_size ? len : buf_size - used);
    return used + len;
}

/* A normal SentencePiece piece: the space marker becomes a space. */
static size_t render_spm(const char *text, size_t len, char *buf, size_t buf_size)
{
    size_t used = 0;
    for (size_t i = 0; i < len;) {
        if (i + 3 <= len && memcmp(text + i, "\xE2\x96\x81", 3) == 0) {
            used = put(buf, buf_size, used, " ", 1);
            i += 3;
        } else {
            used = put(buf, buf_size, used, text + i, 1);
            i++;
        }
    }
    return used;
}

/* A normal byte-level BPE piece: each stand-in character becomes its byte;
 * any other character (not produced by the encoder) is kept as it is. */
static size_t render_bpe(const strata_tokenizer *tok, const char *text, size_t len, char *buf, size_t buf_size)
{
    size_t used = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_length(text + i, len - i);
        if (n == 0) {
            used = put(buf, buf_size, used, text + i, 1);
            i++;
            continue;
        }
        uint32_t cp = (uint8_t)text[i];
        if (n > 1) {
            cp &= 0xFFu >> (n + 1);
            for (size_t k = 1; k < n; k++)
                cp = (cp << 6) | ((uint8_t)text[i + k] & 0x3F);
        }
        int byte = cp < sizeof tok->codepoint_byte / sizeof tok->codepoint_byte[0] ? tok->codepoint_byte[cp] : -1;
        if (byte >= 0) {
            char c = (char)byte;
            used = put(buf, buf_size, used, &c, 1);
        } else {
            used = put(buf, buf_size, used, text + i, n);
        }
        i += n;
    }
    return used;
}

int64_t strata_token_to_bytes(const strata_tokenizer *tok, int32_t token, bool render_special, char *buf,
                              size_t buf_size)
{
    if (token < 0 || token >= tok->n_vocab)
        return -1;
    const char *text = tok->texts[token];
    size_t len = tok->text_lens[token];
    switch (tok->types[token]) {
    case TOKEN_TYPE_CONTROL:
        return render_special ? (int64_t)put(buf, buf_size, 0, text, len) : 0;
    case TOKEN_TYPE_USER_DEFINED:
        return (int64_t)put(buf, buf_size, 0, text, len);
    case TOKEN_TYPE_UNKNOWN:
        return render_special ? (int64_t)put(buf, buf_size, 0, text, len)
                              : (int64_t)put(buf, buf_size, 0, REPLACEMENT, 3);
    case TOKEN_TYPE_BYTE: {
        unsigned value;
        char tail;
        if (len == 6 && sscanf(text, "<0x%2X%c", &value, &tail) == 2 && tail == '>') {
            char byte = (char)value;
            return (int64_t)put(buf, buf_size, 0, &byte, 1);
        }
        break;
    }
    default:
        break;
    }
    if (tok->kind == TOKENIZER_SPM)
        return (int64_t)render_spm(text, len, buf, buf_size);
    return (int64_t)render_bpe(tok, text, len, buf, buf_size);
}

/* Longest "<id>" rendering: '<', 10 digits of INT32_MAX, '>'. */
#define ID_TEXT_MAX 12

size_t strata_detokenizer_out_size(const strata_tokenizer *tok)
{
    /* every byte may become a 3-byte U+FFFD, plus what was held back */
    size_t piece_max = tok->max_token_bytes > ID_TEXT_MAX ? tok->max_token_bytes : ID_TEXT_MAX;
    return 3 * (piece_max + sizeof ((strata_detokenizer *)0)->pending) + 1;
}

void strata_detokenizer_init(strata_detokenizer *detok, const strata_tokenizer *tokenizer, bool render_special)
{
    memset(detok, 0, sizeof *detok);
    detok->tokenizer = tokenizer;
    detok->render_special = render_special;
    detok->at_start = true;
}

/* Bytes a character starting with lead needs (0: lead cannot start one). */
static size_t utf8_needed(uint8_t lead)
{
    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF)
        return 2;
    if (lead >= 0xE0 && lead <= 0xEF)
        return 3;
    if (lead >= 0xF0 && lead <= 0xF4)
        return 4;
    return 0;
}

/* Whether the incomplete bytes s[0..n) could still become a character. */
static bool utf8_could_complete(const uint8_t *s, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return false;
    if (n >= 2) { /* the second byte's range depends on the lead */
        if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) || (s[0] == 0xF0 && s[1] < 0x90) ||
            (s[0] == 0xF4 && s[1] > 0x8F))
            return false;
    }
    return true;
}

/* Writes the complete characters of bytes[0..len) into out (cut at a
 * character boundary when out is too small) and keeps an incomplete tail in
 * pending when hold_tail. Returns the bytes written. */
static size_t emit_text(strata_detokenizer *detok, const char *bytes, size_t len, bool hold_tail, char *out,
                        size_t out_size)
{
    size_t used = 0, capacity = out_size - 1;
    detok->pending_len = 0;
    for (size_t i = 0; i < len;) {
        const uint8_t *s = (const uint8_t *)bytes + i;
        size_t need = utf8_needed(s[0]);
        const char *piece = bytes + i;
        size_t piece_len = need, advance = need;
        if (need == 0) {
            piece = REPLACEMENT, piece_len = 3, advance = 1;
        } else if (need > len - i) {
            if (hold_tail && utf8_could_complete(s, len - i)) {
                memcpy(detok->pending, bytes + i, len - i);
                detok->pending_len = len - i;
                break;
            }
            if (utf8_could_complete(s, len - i)) { /* flushing: the whole tail is one broken character */
                piece = REPLACEMENT, piece_len = 3, advance = len - i;
            } else {
                piece = REPLACEMENT, piece_len = 3, advance = 1;
            }
        } else if (need > 1 && utf8_sequence_length(bytes + i, need) == 0) {
            piece = REPLACEMENT, piece_len = 3, advance = 1;
        }
        if (used + piece_len > capacity)
            break; /* out is too small: drop the rest rather than split a character */
        memcpy(out + used, piece, piece_len);
        used += piece_len;
        i += advance;
    }
    out[used] = '\0';
    return used;
}

int64_t strata_detokenizer_push(strata_detokenizer *detok, int32_t token, char *out, size_t out_size)
{
    const strata_tokenizer *tok = detok->tokenizer;
    if (out_size == 0)
        return -1;
    out[0] = '\0';
    if (token < 0)
        return -1;
    /* A model's embedding may have more rows than its tokenizer has tokens,
     * and such a model can generate an id with no text: it is shown, not
     * dropped, so that a printer accounts for every token. */
    bool in_vocab = token < tok->n_vocab;
    char id_text[ID_TEXT_MAX + 1];
    char stack_buf[1024];
    char *combined = stack_buf;
    size_t capacity = sizeof stack_buf;
    int64_t piece_len = in_vocab ? strata_token_to_bytes(tok, token, detok->render_special, NULL, 0)
                                 : snprintf(id_text, sizeof id_text, "<%" PRId32 ">", token);
    size_t needed = detok->pending_len + (size_t)piece_len;
    if (needed > capacity) {
        combined = malloc(needed);
        if (!combined)
            return -1;
        capacity = needed;
    }
    memcpy(combined, detok->pending, detok->pending_len);
    if (in_vocab)
        strata_token_to_bytes(tok, token, detok->render_special, combined + detok->pending_len, (size_t)piece_len);
    else
        memcpy(combined + detok->pending_len, id_text, (size_t)piece_len);
    const char *start = combined;
    size_t len = needed;
    bool normal = in_vocab && tok->types[token] != TOKEN_TYPE_CONTROL && tok->types[token] != TOKEN_TYPE_USER_DEFINED;
    if (detok->at_start && len > 0) {
        /* SentencePiece added one space before the text: take it away again */
        if (tok->kind == TOKENIZER_SPM && tok->add_space_prefix && normal && start[0] == ' ')
            start++, len--;
        detok->at_start = false;
    }
    size_t written = emit_text(detok, start, len, true, out, out_size);
    if (combined != stack_buf)
        free(combined);
    return (int64_t)written;
}

int64_t strata_detokenizer_flush(strata_detokenizer *detok, char *out, size_t out_size)
{
    if (out_size == 0)
        return -1;
    char held[sizeof detok->pending];
    size_t len = detok->pending_len;
    memcpy(held, detok->pending, len);
    return (int64_t)emit_text(detok, held, len, false, out, out_size);
}
