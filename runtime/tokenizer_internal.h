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

#include "gguf.h"
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
 * token score as priority, BPE minus the merge rank, both written as an
 * unsigned key that sorts the same way (merge_priority_*), which keeps a
 * candidate at 16 bytes: the queue is most of the memory of a long piece. */
typedef struct merge_candidate {
    int32_t left, right;
    uint32_t priority;
    uint32_t len; /* bytes of the pair when it was queued (stale if they changed) */
} merge_candidate;

uint32_t merge_priority_of_score(float score); /* higher score, higher key */
uint32_t merge_priority_of_rank(int32_t rank); /* lower rank (>= 0), higher key */

typedef struct merge_queue {
    merge_candidate *items;
    size_t count, capacity;
} merge_queue;

strata_status merge_queue_push(merge_queue *queue, merge_candidate candidate, strata_error *err);
merge_candidate merge_queue_pop(merge_queue *queue); /* count must be > 0 */

typedef struct pretokenizer pretokenizer; /* compiled regex list, tokenizer_pretokenize.c */

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
    /* per token: the whitespace right after it in the text is dropped when
     * it is matched as a special token (Hugging Face's rstrip, which GGUF
     * does not carry: set by model, tokenizer_strip.c); NULL when no token
     * strips */
    bool *rstrip;
    /* normalize raw text to Unicode NFC before encoding (Qwen2's
     * tokenizer.json normalizer; tokenizer_nfc.c) */
    bool normalize_nfc;
    bool *is_eog;
    /* BPE: the UTF-8 of the character that stands for each byte, and back */
    char byte_utf8[256][4];
    uint8_t byte_utf8_len[256];
    int16_t codepoint_byte[0x144]; /* -1 when the code point stands for no byte */
    uint32_t max_token_bytes; /* longest rendering of one token */
    pretokenizer *pre;    /* BPE only */
    /* Where text may be cut (tokenizer_chunk.c). joinable has bit
     * (a << 8 | b) set when a merge could join a symbol ending in byte a to
     * one starting with byte b (SentencePiece: some token has b right after
     * a at a character boundary; BPE: some merge's left side ends in byte a
     * and its right side starts with byte b). */
    uint64_t joinable[256 * 256 / 64];
    /* the special tokens again, grouped by their first byte b (ids
     * special_by_first[special_first[b] .. special_first[b + 1]), longest
     * first within a group) */
    int32_t *special_by_first;
    uint32_t special_first[257];
    uint32_t special_max_len; /* bytes of the longest special token */
    size_t chunk_bytes; /* TOKENIZER_CHUNK_BYTES; tests lower it to compare cut and whole results */
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
/* Receives one word of the pre-tokenizer; a status other than STRATA_OK
 * stops the split and is returned by it. */
typedef strata_status (*pretokenizer_word_fn)(void *user, const char *word, size_t len, strata_error *err);
/* Splits text[0..len) into words and hands each to on_word as soon as it is
 * found, in order (no list of words is kept). Every byte ends up in exactly
 * one word. */
strata_status pretokenizer_split(const pretokenizer *pre, const char *text, size_t len, pretokenizer_word_fn on_word,
                                 void *user, strata_error *err);

/* --- cutting long text (tokenizer_chunk.c) --------------------------------
 * SentencePiece text and BPE words are encoded in pieces of about
 * TOKENIZER_CHUNK_BYTES, and special tokens are looked for in pieces of
 * that size, so that the memory tokenizing takes grows with the piece, not
 * with the text. A piece ends only where it cannot change the result: where
 * no merge can join the symbols on both sides (the bits of joinable), or,
 * for special tokens, where no occurrence of one spans the cut. Text with no
 * such place (a long run of one repeated character) stays one piece. */
#define TOKENIZER_CHUNK_BYTES 65536

/* Whether text[0..len) may be cut before byte at (0 < at < len, at starts
 * a UTF-8 character). */
typedef bool (*cut_is_safe_fn)(const strata_tokenizer *tok, const char *text, size_t len, size_t at);
bool spm_cut_is_safe(const strata_tokenizer *tok, const char *text, size_t len, size_t at);
bool bpe_cut_is_safe(const strata_tokenizer *tok, const char *word, size_t len, size_t at);
/* No special token (control, user-defined or unknown, whatever parse_special
 * says: a cut is allowed only where none can be) occurs across at. */
bool special_cut_is_safe(const strata_tokenizer *tok, const char *text, size_t len, size_t at);

/* End of the piece of text[begin..len) to handle next: len when at most
 * tok->chunk_bytes remain, else the first character start at or after
 * begin + chunk_bytes that is_safe accepts. Where it refuses many in a row,
 * the search skips ahead by chunk_bytes (bounding its time); len when it
 * finds none. */
size_t tokenizer_next_cut(const strata_tokenizer *tok, const char *text, size_t len, size_t begin,
                          cut_is_safe_fn is_safe);

/* Fills joinable and the special tokens by first byte, and sets
 * chunk_bytes; called once the texts, merges and special list are loaded.
 * Fails only for want of memory. */
strata_status tokenizer_build_cut_tables(strata_tokenizer *tok, strata_error *err);
/* Whether some special token starts with byte b. */
static inline bool tokenizer_special_starts(const strata_tokenizer *tok, uint8_t b)
{
    return tok->special_first[b + 1] > tok->special_first[b];
}

/* Special tokens' rstrip, decided from the file (tokenizer_strip.c): Phi-3's
 * special tokens, as llama.cpp sets them by model name. Fails only for want
 * of memory. */
strata_status tokenizer_mark_rstrip(const gguf_file *file, strata_tokenizer *tok, strata_error *err);
/* Bytes of the Unicode White_Space character at text[0] (at most len
 * bytes), or 0 when there is none there. */
size_t unicode_whitespace_length(const char *text, size_t len);

/* Encoders: append the ids of text[0..len) (one raw fragment, valid UTF-8,
 * no special tokens in it) to out. space_prefix: SentencePiece prepends one
 * space (add_space_prefix at the start of the text or after a special). */
strata_status spm_encode(const strata_tokenizer *tok, const char *text, size_t len, bool space_prefix,
                         id_list *out, strata_error *err);
strata_status bpe_encode(const strata_tokenizer *tok, const char *text, size_t len, id_list *out,
                         strata_error *err);

#endif
