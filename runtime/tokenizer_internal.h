/* Internal: the tokenizer's data and the pieces its files share.
 *
 * A tokenizer is one vocabulary (token texts as stored in GGUF, scores,
 * types) plus the algorithm its tokenizer.ggml.model names: SentencePiece
 * ("llama": score-driven merges over UTF-8 characters, byte fallback) or
 * byte-level BPE ("gpt2": regex pre-tokenizer, bytes mapped to printable
 * characters, merges by rank). */
#ifndef STRATA_TOKENIZER_INTERNAL_H
#define STRATA_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "strata.h"

/* tokenizer.ggml.token_type values (as llama.cpp numbers them) */
typedef enum token_type {
    TOKEN_TYPE_UNDEFINED = 0,
    TOKEN_TYPE_NORMAL = 1,
    TOKEN_TYPE_UNKNOWN = 2,
    TOKEN_TYPE_CONTROL = 3,
    TOKEN_TYPE_USER_DEFINED = 4,
    TOKEN_TYPE_UNUSED = 5,
    TOKEN_TYPE_BYTE = 6,
} token_type;

typedef enum tokenizer_kind {
    TOKENIZER_SPM, /* tokenizer.ggml.model = "llama" */
    TOKENIZER_BPE, /* tokenizer.ggml.model = "gpt2" */
} tokenizer_kind;

/* Open-addressing hash map from byte strings to int32 values. Keys point
 * into memory the owner keeps alive (the GGUF mapping or an arena). */
typedef struct text_map {
    const char **keys;
    uint32_t *key_lens;
    int32_t *values;
    size_t capacity; /* a power of two, 0 when empty */
    size_t count;
} text_map;

/* Returns STRATA_OUT_OF_MEMORY on allocation failure. capacity_hint is the
 * expected number of entries. */
strata_status text_map_init(text_map *map, size_t capacity_hint, strata_error *err);
void text_map_free(text_map *map);
/* Inserts (key, value) unless key is present (the first value wins). */
void text_map_put(text_map *map, const char *key, size_t len, int32_t value);
/* Value of key, or -1 when absent. */
int32_t text_map_get(const text_map *map, const char *key, size_t len);

/* A pair of adjacent symbols that could merge, and a priority queue of them
 * (highest priority first; ties: leftmost first). SentencePiece uses the
 * token score as priority, BPE minus the merge rank. */
typedef struct merge_candidate {
    int left, right;
    double priority;
    size_t len; /* bytes of the pair when it was queued (stale if they changed) */
} merge_candidate;

typedef struct merge_queue {
    merge_candidate *items;
    size_t count, capacity;
} merge_queue;

strata_status merge_queue_push(merge_queue *queue, merge_candidate candidate, strata_error *err);
merge_candidate merge_queue_pop(merge_queue *queue); /* count must be > 0 */

typedef struct pretokenizer pretokenizer; /* compiled regex list, tokenizer_pretokenize.c */

/* A span of the input: bytes [begin, end). */
typedef struct text_span {
    size_t begin, end;
} text_span;

typedef struct span_list {
    text_span *items;
    size_t count, capacity;
} span_list;

strata_status span_list_push(span_list *list, size_t begin, size_t end, strata_error *err);

/* Growable list of token ids (the output of an encoder). */
typedef struct id_list {
    int32_t *items;
    size_t count, capacity;
} id_list;

strata_status id_list_push(id_list *list, int32_t id, strata_error *err);

struct strata_tokenizer {
    tokenizer_kind kind;
    char pre_name[64];
    int64_t n_vocab;
    /* token texts exactly as in tokenizer.ggml.tokens (into text_arena) */
    char *text_arena;
    char *merge_arena;    /* BPE: the merges' text, keys of merge_rank */
    const char **texts;
    uint32_t *text_lens;
    float *scores;        /* NULL when the file has none (BPE) */
    int32_t *types;       /* token_type per token (NORMAL when absent) */
    text_map text_to_id;  /* texts the encoders may produce (not control/unknown) */
    text_map merge_rank;  /* BPE: "left right" -> rank */
    int32_t byte_tokens[256]; /* byte -> token (SPM <0xXX>, BPE mapped char), -1 when none */
    int32_t bos, eos, unk, pad, eot, eom;
    bool add_bos, add_eos, add_space_prefix;
    bool ignore_merges;   /* LLaMA 3: a pre-tokenized word that is a token is kept whole */
    /* tokens matched as whole strings in the input before the encoders run,
     * longest first: control tokens (only when parse_special) and
     * user-defined tokens (always) */
    int32_t *special_ids;
    size_t n_special;
    bool *is_eog;
    /* BPE: the UTF-8 of the character that stands for each byte, and back */
    char byte_utf8[256][4];
    uint8_t byte_utf8_len[256];
    int16_t codepoint_byte[0x144]; /* -1 when the code point stands for no byte */
    uint32_t max_token_bytes; /* longest rendering of one token */
    pretokenizer *pre;    /* BPE only */
};

/* --- pieces shared between the tokenizer files -------------------------- */

/* Length of the UTF-8 sequence that starts at text[0] (1..4), or 0 when the
 * bytes there (at most len) are not valid UTF-8 (overlong, surrogate, past
 * U+10FFFF, truncated). */
size_t utf8_sequence_length(const char *text, size_t len);

/* Byte-level BPE: the code point (U+0021..U+0143) that stands for byte b. */
uint32_t bpe_byte_to_codepoint(uint8_t b);
/* Inverse: the byte a code point stands for, or -1. */
int bpe_codepoint_to_byte(uint32_t cp);
/* Encodes cp as UTF-8 into out (4 bytes room); returns the length. */
size_t utf8_encode(uint32_t cp, char *out);

/* Pre-tokenizer: compiles the regex list named by pre_name (tokenizer.ggml.pre).
 * Unknown names fail with STRATA_UNSUPPORTED listing the known ones. */
strata_status pretokenizer_create(const char *pre_name, pretokenizer **out, bool *ignore_merges,
                                  strata_error *err);
void pretokenizer_free(pretokenizer *pre);
/* Splits text[0..len) into words (appended to words as spans relative to
 * text). Every byte ends up in exactly one word, in order. */
strata_status pretokenizer_split(const pretokenizer *pre, const char *text, size_t len, span_list *words,
                                 strata_error *err);

/* Encoders: append the ids of text[0..len) (one raw fragment, valid UTF-8,
 * no special tokens in it) to out. space_prefix: SentencePiece prepends one
 * space (add_space_prefix at the start of the text or after a special). */
strata_status spm_encode(const strata_tokenizer *tok, const char *text, size_t len, bool space_prefix,
                         id_list *out, strata_error *err);
strata_status bpe_encode(const strata_tokenizer *tok, const char *text, size_t len, id_list *out,
                         strata_error *err);

#endif
