/* Loading a tokenizer from the tokenizer.ggml.* keys of a GGUF file, and the
 * small public accessors. Everything read from the file is checked here
 * (counts, types, ids in range), so the encoders can trust the tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "tokenizer_internal.h"

/* Token ids stored as this value (or -1) mean "none". */
#define TOKEN_ID_NONE_U32 4294967295ll

/* Control tokens that end a turn in common chat formats. */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", NULL,
};

void strata_tokenizer_free(strata_tokenizer *tok)
{
    if (!tok)
        return;
    free(tok->text_arena);
    free(tok->merge_arena);
    free(tok->texts);
    free(tok->text_lens);
    free(tok->scores);
    free(tok->types);
    text_map_free(&tok->text_to_id);
    text_map_free(&tok->merge_rank);
    free(tok->special_ids);
    free(tok->rstrip);
    free(tok->special_by_first);
    free(tok->is_eog);
    pretokenizer_free(tok->pre);
    free(tok);
}

/* Reads an optional token id key into *out: absent, -1 and 2^32-1 leave
 * *out as it is; anything else must be a valid id. */
static strata_status read_token_id(const gguf_file *file, const char *key, int64_t n_vocab, int32_t *out,
                                   strata_error *err)
{
    int64_t value;
    strata_status status = gguf_get_int_or(file, key, -1, &value, err);
    if (status != STRATA_OK)
        return status;
    if (value == -1 || value == TOKEN_ID_NONE_U32)
        return STRATA_OK;
    if (value < 0 || value >= n_vocab)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: key %s: token id %lld is outside the vocabulary (%lld tokens)",
                           gguf_path(file), key, (long long)value, (long long)n_vocab);
    *out = (int32_t)value;
    return STRATA_OK;
}

/* Copies the token texts into one arena (NUL-terminated copies). */
static strata_status read_texts(const gguf_file *file, strata_tokenizer *tok, strata_error *err)
{
    gguf_array tokens;
    strata_status status = gguf_get_array(file, "tokenizer.ggml.tokens", &tokens, err);
    if (status != STRATA_OK)
        return status;
    if (tokens.elem_type != GGUF_TYPE_STRING)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tokenizer.ggml.tokens: expected an array of strings, found %s",
                           gguf_path(file), gguf_type_name(tokens.elem_type));
    if (tokens.count == 0 || tokens.count > INT32_MAX)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tokenizer.ggml.tokens: %llu tokens (expected 1..%d)",
                           gguf_path(file), (unsigned long long)tokens.count, INT32_MAX);
    tok->n_vocab = (int64_t)tokens.count;
    size_t arena_bytes = 0;
    for (uint64_t i = 0; i < tokens.count; i++) {
        gguf_string text = gguf_array_string(&tokens, i);
        if (text.len > UINT32_MAX / 2)
            return strata_fail(err, STRATA_INVALID_INPUT, "%s: tokenizer.ggml.tokens[%llu]: %llu bytes is too long",
                               gguf_path(file), (unsigned long long)i, (unsigned long long)text.len);
        arena_bytes += (size_t)text.len + 1;
    }
    tok->text_arena = malloc(arena_bytes);
    tok->texts = malloc((size_t)tok->n_vocab * sizeof *tok->texts);
    tok->text_lens = malloc((size_t)tok->n_vocab * sizeof *tok->text_lens);
    if (!tok->text_arena || !tok->texts || !tok->text_lens)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory for %lld token texts", gguf_path(file),
                           (long long)tok->n_vocab);
    char *cursor = tok->text_arena;
    for (uint64_t i = 0; i < tokens.count; i++) {
        gguf_string text = gguf_array_string(&tokens, i);
        memcpy(cursor, text.data, (size_t)text.len);
        cursor[text.len] = '\0';
        tok->texts[i] = cursor;
        tok->text_lens[i] = (uint32_t)text.len;
        if (text.len + 3 > tok->max_token_bytes)
            tok->max_token_bytes = (uint32_t)text.len + 3;
        cursor += text.len + 1;
    }
    return STRATA_OK;
}

/* Scores (optional) and token types (optional, NORMAL when absent). */
static strata_status read_scores_and_types(const gguf_file *file, strata_tokenizer *tok, strata_error *err)
{
    size_t n = (size_t)tok->n_vocab;
    tok->types = malloc(n * sizeof *tok->types);
    if (!tok->types)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory for token types", gguf_path(file));
    for (size_t i = 0; i < n; i++)
        tok->types[i] = TOKEN_TYPE_NORMAL;
    gguf_array array;
    strata_status status;
    if (gguf_find_key(file, "tokenizer.ggml.scores") >= 0) {
        if ((status = gguf_get_array(file, "tokenizer.ggml.scores", &array, err)) != STRATA_OK)
            return status;
        if ((array.elem_type != GGUF_TYPE_FLOAT32 && array.elem_type != GGUF_TYPE_FLOAT64) || array.count != n)
            return strata_fail(err, STRATA_INVALID_INPUT,
                               "%s: tokenizer.ggml.scores: expected %zu floats, found %llu of type %s", gguf_path(file),
                               n, (unsigned long long)array.count, gguf_type_name(array.elem_type));
        tok->scores = malloc(n * sizeof *tok->scores);
        if (!tok->scores)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory for token scores", gguf_path(file));
        for (size_t i = 0; i < n; i++)
            tok->scores[i] = (float)gguf_array_float(&array, i);
    }
    if (gguf_find_key(file, "tokenizer.ggml.token_type") >= 0) {
        if ((status = gguf_get_array(file, "tokenizer.ggml.token_type", &array, err)) != STRATA_OK)
            return status;
        bool integer = array.elem_type <= GGUF_TYPE_INT32 && array.elem_type != GGUF_TYPE_FLOAT32;
        integer = integer || array.elem_type == GGUF_TYPE_UINT64 || array.elem_type == GGUF_TYPE_INT64;
        if (!integer || array.elem_type == GGUF_TYPE_BOOL || array.count != n)
            return strata_fail(err, STRATA_INVALID_INPUT,
                               "%s: tokenizer.ggml.token_type: expected %zu integers, found %llu of type %s",
                               gguf_path(file), n, (unsigned long long)array.count, gguf_type_name(array.elem_type));
        for (size_t i = 0; i < n; i++) {
            int64_t type = gguf_array_int(&array, i);
            if (type < TOKEN_TYPE_UNDEFINED || type > TOKEN_TYPE_BYTE)
                return strata_fail(err, STRATA_INVALID_INPUT,
                                   "%s: tokenizer.ggml.token_type[%zu] = %lld is not a token type (0..6)",
                                   gguf_path(file), i, (long long)type);
            tok->types[i] = (int32_t)type;
        }
    }
    return STRATA_OK;
}

/* BPE merges "left right" -> rank (their order in the file). */
static strata_status read_merges(const gguf_file *file, strata_tokenizer *tok, strata_error *err)
{
    if (gguf_find_key(file, "tokenizer.ggml.merges") < 0)
        return text_map_init(&tok->merge_rank, 0, err);
    gguf_array merges;
    strata_status status = gguf_get_array(file, "tokenizer.ggml.merges", &merges, err);
    if (status != STRATA_OK)
        return status;
    if (merges.elem_type != GGUF_TYPE_STRING && merges.count > 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tokenizer.ggml.merges: expected strings, found %s",
                           gguf_path(file), gguf_type_name(merges.elem_type));
    if (merges.count > INT32_MAX)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tokenizer.ggml.merges: %llu merges is too many",
                           gguf_path(file), (unsigned long long)merges.count);
    if ((status = text_map_init(&tok->merge_rank, (size_t)merges.count, err)) != STRATA_OK)
        return status;
    for (uint64_t i = 0; i < merges.count; i++) {
        gguf_string merge = gguf_array_string(&merges, i);
        const char *space = merge.len > 1 ? memchr(merge.data + 1, ' ', (size_t)merge.len - 1) : NULL;
        if (!space || space == merge.data + merge.len - 1)
            return strata_fail(err, STRATA_INVALID_INPUT,
                               "%s: tokenizer.ggml.merges[%llu] = '%.*s' is not two pieces separated by a space",
                               gguf_path(file), (unsigned long long)i, (int)(merge.len > 64 ? 64 : merge.len),
                               merge.data);
    }
    return STRATA_OK;
}

/* The merges' text must outlive the file (a tokenizer may be loaded alone
 * and the file closed): they are copied into one block, merge_arena. */
static strata_status copy_merges(const gguf_file *file, strata_tokenizer *tok, char **merge_arena, strata_error *err)
{
    *merge_arena = NULL;
    if (gguf_find_key(file, "tokenizer.ggml.merges") < 0)
        return STRATA_OK;
    gguf_array merges;
    strata_status status = gguf_get_array(file, "tokenizer.ggml.merges", &merges, err);
    if (status != STRATA_OK || merges.count == 0)
        return status;
    size_t bytes = 0;
    for (uint64_t i = 0; i < merges.count; i++)
        bytes += (size_t)gguf_array_string(&merges, i).len;
    *merge_arena = malloc(bytes ? bytes : 1);
    if (!*merge_arena)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory for %llu merges", gguf_path(file),
                           (unsigned long long)merges.count);
    char *cursor = *merge_arena;
    for (uint64_t i = 0; i < merges.count; i++) {
        gguf_string merge = gguf_array_string(&merges, i);
        memcpy(cursor, merge.data, (size_t)merge.len);
        text_map_put(&tok->merge_rank, cursor, (size_t)merge.len, (int32_t)i);
        cursor += merge.len;
    }
    return STRATA_OK;
}

/* Text lookup for the encoders: control and unknown tokens are never
 * produced from text, nor (for SentencePiece) the <0xXX> byte tokens. */
static strata_status build_text_map(strata_tokenizer *tok, strata_error *err)
{
    strata_status status = text_map_init(&tok->text_to_id, (size_t)tok->n_vocab, err);
    if (status != STRATA_OK)
        return status;
    for (int64_t id = 0; id < tok->n_vocab; id++) {
        int32_t type = tok->types[id];
        if (type == TOKEN_TYPE_CONTROL || type == TOKEN_TYPE_UNKNOWN)
            continue;
        if (tok->kind == TOKENIZER_SPM && type == TOKEN_TYPE_BYTE)
            continue;
        if (tok->text_lens[id] == 0)
            continue;
        text_map_put(&tok->text_to_id, tok->texts[id], tok->text_lens[id], (int32_t)id);
    }
    return STRATA_OK;
}

/* The byte whose stand-in character text[0..len) is exactly (BPE), or -1:
 * one character, in the one UTF-8 form utf8_encode writes. */
static int bpe_single_stand_in(const strata_tokenizer *tok, const char *text, uint32_t len)
{
    if (len == 0 || utf8_sequence_length(text, len) != len)
        return -1;
    uint32_t cp = (uint8_t)text[0];
    if (len == 2)
        cp = ((cp & 0x1F) << 6) | ((uint8_t)text[1] & 0x3F);
    return cp < sizeof tok->codepoint_byte / sizeof tok->codepoint_byte[0] ? tok->codepoint_byte[cp] : -1;
}

static void find_byte_tokens(strata_tokenizer *tok)
{
    for (int b = 0; b < 256; b++) {
        tok->byte_tokens[b] = -1;
        uint32_t cp = bpe_byte_to_codepoint((uint8_t)b);
        tok->byte_utf8_len[b] = (uint8_t)utf8_encode(cp, tok->byte_utf8[b]);
    }
    for (size_t cp = 0; cp < sizeof tok->codepoint_byte / sizeof tok->codepoint_byte[0]; cp++)
        tok->codepoint_byte[cp] = (int16_t)bpe_codepoint_to_byte((uint32_t)cp);
    /* the lowest id wins: walk down so that it is written last */
    for (int64_t id = tok->n_vocab - 1; id >= 0; id--) {
        const char *text = tok->texts[id];
        uint32_t len = tok->text_lens[id];
        if (tok->kind == TOKENIZER_SPM) {
            unsigned value;
            char tail;
            if (len == 6 && sscanf(text, "<0x%2X%c", &value, &tail) == 2 && tail == '>' && value < 256)
                tok->byte_tokens[value] = (int32_t)id;
        } else if (len <= 2 && tok->types[id] != TOKEN_TYPE_CONTROL) {
            int byte = bpe_single_stand_in(tok, text, len);
            if (byte >= 0)
                tok->byte_tokens[byte] = (int32_t)id;
        }
    }
}

/* A special token as build_special_list sorts it. */
typedef struct special_key {
    uint32_t len;
    int32_t id;
} special_key;

/* Longer texts first, then lower ids (qsort order). */
static int compare_special(const void *a, const void *b)
{
    const special_key *ka = a, *kb = b;
    if (ka->len != kb->len)
        return ka->len > kb->len ? -1 : 1;
    return ka->id < kb->id ? -1 : ka->id > kb->id;
}

/* Tokens matched as whole strings before encoding, longest first. */
static strata_status build_special_list(strata_tokenizer *tok, strata_error *err)
{
    if (tok->n_vocab < 0 || tok->n_vocab > INT32_MAX)
        return strata_fail(err, STRATA_INVALID_INPUT, "tokenizer: vocabulary size %lld is out of range",
                           (long long)tok->n_vocab);
    tok->special_ids = malloc((size_t)tok->n_vocab * sizeof *tok->special_ids);
    tok->is_eog = calloc((size_t)tok->n_vocab, sizeof *tok->is_eog);
    if (!tok->special_ids || !tok->is_eog)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for special tokens");
    for (int64_t id = 0; id < tok->n_vocab; id++) {
        int32_t type = tok->types[id];
        bool special = type == TOKEN_TYPE_CONTROL || type == TOKEN_TYPE_USER_DEFINED || type == TOKEN_TYPE_UNKNOWN;
        if (special && tok->text_lens[id] > 0)
            tok->special_ids[tok->n_special++] = (int32_t)id;
        if (type == TOKEN_TYPE_CONTROL)
            for (const char *const *eog = EOG_TEXTS; *eog; eog++)
                if (strcmp(tok->texts[id], *eog) == 0)
                    tok->is_eog[id] = true;
    }
    /* by length (descending), then id. qsort, not an insertion sort: a
     * file may mark most of its vocabulary special (strata synth's
     * llama3-8b vocabulary took 3.4 s to sort that way), and a hostile one
     * all of it */
    if (tok->n_special > 1) {
        special_key *keys = malloc(tok->n_special * sizeof *keys);
        if (!keys)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for special tokens");
        for (size_t i = 0; i < tok->n_special; i++)
            keys[i] = (special_key){tok->text_lens[tok->special_ids[i]], tok->special_ids[i]};
        qsort(keys, tok->n_special, sizeof *keys, compare_special);
        for (size_t i = 0; i < tok->n_special; i++)
            tok->special_ids[i] = keys[i].id;
        free(keys);
    }
    int32_t eog_ids[] = {tok->eos, tok->eot, tok->eom};
    for (size_t i = 0; i < sizeof eog_ids / sizeof eog_ids[0]; i++)
        if (eog_ids[i] >= 0)
            tok->is_eog[eog_ids[i]] = true;
    return STRATA_OK;
}

static strata_status read_flags_and_ids(const gguf_file *file, strata_tokenizer *tok, strata_error *err)
{
    bool spm = tok->kind == TOKENIZER_SPM;
    tok->bos = tok->eos = tok->unk = tok->pad = tok->eot = tok->eom = -1;
    if (spm) { /* the SentencePiece LLaMA defaults, used when a key is absent */
        tok->unk = tok->n_vocab > 0 ? 0 : -1;
        tok->bos = tok->n_vocab > 1 ? 1 : -1;
        tok->eos = tok->n_vocab > 2 ? 2 : -1;
    }
    strata_status status;
    if ((status = read_token_id(file, "tokenizer.ggml.bos_token_id", tok->n_vocab, &tok->bos, err)) ||
        (status = read_token_id(file, "tokenizer.ggml.eos_token_id", tok->n_vocab, &tok->eos, err)) ||
        (status = read_token_id(file, "tokenizer.ggml.unknown_token_id", tok->n_vocab, &tok->unk, err)) ||
        (status = read_token_id(file, "tokenizer.ggml.padding_token_id", tok->n_vocab, &tok->pad, err)) ||
        (status = read_token_id(file, "tokenizer.ggml.eot_token_id", tok->n_vocab, &tok->eot, err)) ||
        (status = read_token_id(file, "tokenizer.ggml.eom_token_id", tok->n_vocab, &tok->eom, err)))
        return status;
    if ((status = gguf_get_bool_or(file, "tokenizer.ggml.add_bos_token", spm, &tok->add_bos, err)) ||
        (status = gguf_get_bool_or(file, "tokenizer.ggml.add_eos_token", false, &tok->add_eos, err)) ||
        (status = gguf_get_bool_or(file, "tokenizer.ggml.add_space_prefix", spm, &tok->add_space_prefix, err)))
        return status;
    return STRATA_OK;
}

/* Reads tokenizer.ggml.model and the pre-tokenizer name. */
static strata_status read_kind(const gguf_file *file, const char *force_pre, strata_tokenizer *tok, strata_error *err)
{
    gguf_string model, pre = {"default", 7};
    strata_status status = gguf_get_string(file, "tokenizer.ggml.model", &model, err);
    if (status != STRATA_OK)
        return status;
    if (model.len == 5 && memcmp(model.data, "llama", 5) == 0) {
        tok->kind = TOKENIZER_SPM;
    } else if (model.len == 4 && memcmp(model.data, "gpt2", 4) == 0) {
        tok->kind = TOKENIZER_BPE;
    } else {
        return strata_fail(err, STRATA_UNSUPPORTED,
                           "%s: tokenizer.ggml.model '%.*s' is not supported (supported: llama, gpt2)",
                           gguf_path(file), (int)(model.len > 64 ? 64 : model.len), model.data);
    }
    if (gguf_find_key(file, "tokenizer.ggml.pre") >= 0 &&
        (status = gguf_get_string(file, "tokenizer.ggml.pre", &pre, err)) != STRATA_OK)
        return status;
    if (force_pre)
        pre = (gguf_string){force_pre, strlen(force_pre)};
    if (pre.len >= sizeof tok->pre_name || memchr(pre.data, '\0', (size_t)pre.len))
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tokenizer.ggml.pre is not a pre-tokenizer name",
                           gguf_path(file));
    memcpy(tok->pre_name, pre.data, (size_t)pre.len);
    tok->pre_name[pre.len] = '\0';
    return STRATA_OK;
}

strata_status tokenizer_load_gguf(const gguf_file *file, const char *force_pre, strata_tokenizer **out,
                                  strata_error *err)
{
    *out = NULL;
    if (gguf_find_key(file, "tokenizer.ggml.model") < 0)
        return STRATA_OK;
    strata_status status;
    strata_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory for the tokenizer", gguf_path(file));
    if ((status = read_kind(file, force_pre, tok, err)) || (status = read_texts(file, tok, err)) ||
        (status = read_scores_and_types(file, tok, err)) || (status = read_flags_and_ids(file, tok, err)))
        goto fail;
    if (tok->kind == TOKENIZER_BPE) {
        if ((status = read_merges(file, tok, err)) || (status = copy_merges(file, tok, &tok->merge_arena, err)))
            goto fail;
        if ((status = pretokenizer_create(tok->pre_name, &tok->pre, &tok->ignore_merges, err)) != STRATA_OK) {
            strata_error_prefix(err, "%s", gguf_path(file));
            goto fail;
        }
    } else if ((status = text_map_init(&tok->merge_rank, 0, err)) != STRATA_OK) {
        goto fail;
    }
    if ((status = build_text_map(tok, err)) || (status = build_special_list(tok, err)) ||
        (status = tokenizer_mark_rstrip(file, tok, err)))
        goto fail;
    /* Qwen2's tokenizer.json normalizes to NFC (llama.cpp does not) */
    tok->normalize_nfc = tok->kind == TOKENIZER_BPE && strcmp(tok->pre_name, "qwen2") == 0;
    find_byte_tokens(tok);
    if ((status = tokenizer_build_cut_tables(tok, err)) != STRATA_OK)
        goto fail;
    *out = tok;
    return STRATA_OK;
fail:
    strata_tokenizer_free(tok);
    return status;
}

strata_status strata_tokenizer_load(const char *path, const char *force_pre, strata_tokenizer **out,
                                    strata_error *err)
{
    *out = NULL;
    gguf_file *file = NULL;
    strata_status status = gguf_open(path, &file, err);
    if (status != STRATA_OK)
        return status;
    if ((status = tokenizer_load_gguf(file, force_pre, out, err)) != STRATA_OK)
        goto fail;
    if (!*out) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "%s: the file has no tokenizer (no tokenizer.ggml.model key)",
                             path);
    } else if ((status = gguf_check_unchanged(file, err)) != STRATA_OK) {
        /* copied from a file that changed meanwhile */
        strata_tokenizer_free(*out);
        *out = NULL;
    }
fail:
    gguf_close(file);
    return status;
}

int64_t strata_vocab_size(const strata_tokenizer *tok) { return tok->n_vocab; }
int32_t strata_token_bos(const strata_tokenizer *tok) { return tok->bos; }
int32_t strata_token_eos(const strata_tokenizer *tok) { return tok->eos; }
bool strata_tokenizer_adds_bos(const strata_tokenizer *tok) { return tok->add_bos && tok->bos >= 0; }

bool strata_token_is_eog(const strata_tokenizer *tok, int32_t token)
{
    return token >= 0 && token < tok->n_vocab && tok->is_eog[token];
}
