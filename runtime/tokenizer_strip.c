/* Which special tokens drop the whitespace after them (Hugging Face's
 * rstrip on added tokens).
 *
 * GGUF carries no rstrip, so it is decided by model, as llama.cpp does:
 * Phi-3 publishes its chat tokens (<|user|>, <|assistant|>, <|end|>, ...)
 * and </s> with rstrip, <|endoftext|>, <s> and <unk> without. llama.cpp
 * recognizes Phi-3 by general.name containing "phi-3" or "phi3"; the names
 * Phi-3.5 is published under ("Phi 3.5 Mini Instruct") contain neither, so a
 * SentencePiece vocabulary of architecture phi3 counts too (Phi-4, also
 * architecture phi3, has a BPE vocabulary without rstrip). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* The string value of key, or an empty one when it is absent or not a string. */
static gguf_string string_or_empty(const gguf_file *file, const char *key)
{
    gguf_string value = {"", 0};
    strata_error ignored = {0};
    if (gguf_find_key(file, key) < 0 || gguf_get_string(file, key, &value, &ignored) != STRATA_OK)
        return (gguf_string){"", 0};
    return value;
}

/* Whether text[0..len) contains needle, ignoring ASCII case. */
static bool contains_ignoring_case(const char *text, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n && tolower((unsigned char)text[i + k]) == needle[k])
            k++;
        if (k == n)
            return true;
    }
    return false;
}

static bool is_phi3(const gguf_file *file, const strata_tokenizer *tok)
{
    gguf_string name = string_or_empty(file, "general.name");
    gguf_string arch = string_or_empty(file, "general.architecture");
    if (contains_ignoring_case(name.data, (size_t)name.len, "phi-3") ||
        contains_ignoring_case(name.data, (size_t)name.len, "phi3"))
        return true;
    return tok->kind == TOKENIZER_SPM && arch.len == 4 && memcmp(arch.data, "phi3", 4) == 0;
}

static void set_rstrip_of_text(strata_tokenizer *tok, const char *text, bool value)
{
    for (size_t i = 0; i < tok->n_special; i++) {
        int32_t id = tok->special_ids[i];
        if (strcmp(tok->texts[id], text) == 0)
            tok->rstrip[id] = value;
    }
}

strata_status tokenizer_mark_rstrip(const gguf_file *file, strata_tokenizer *tok, strata_error *err)
{
    tok->rstrip = NULL;
    if (!is_phi3(file, tok))
        return STRATA_OK;
    tok->rstrip = calloc((size_t)tok->n_vocab, sizeof *tok->rstrip);
    if (!tok->rstrip)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for the rstrip flags");
    for (size_t i = 0; i < tok->n_special; i++)
        tok->rstrip[tok->special_ids[i]] = true;
    set_rstrip_of_text(tok, "</s>", true);
    static const char *const KEPT[] = {"<unk>", "<s>", "<|endoftext|>"};
    for (size_t i = 0; i < sizeof KEPT / sizeof KEPT[0]; i++)
        set_rstrip_of_text(tok, KEPT[i], false);
    return STRATA_OK;
}

/* The code points of Unicode's White_Space property (Rust's
 * char::is_whitespace, which the tokenizers library strips with). */
size_t unicode_whitespace_length(const char *text, size_t len)
{
    if (len == 0)
        return 0;
    uint8_t b = (uint8_t)text[0];
    if (b < 0x80)
        return (b >= 0x09 && b <= 0x0D) || b == 0x20 ? 1 : 0;
    size_t n = utf8_sequence_length(text, len);
    if (n < 2)
        return 0;
    uint32_t cp = b & (0xFFu >> (n + 1));
    for (size_t k = 1; k < n; k++)
        cp = (cp << 6) | ((uint8_t)text[k] & 0x3F);
    bool white = cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
                 cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    return white ? n : 0;
}
