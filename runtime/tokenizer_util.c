/* Small pieces the tokenizer files share: a string hash map, growable lists,
 * UTF-8 checks and GPT-2's byte-to-character mapping. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* --- text_map ------------------------------------------------------------- */

static uint64_t hash_bytes(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)key[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

strata_status text_map_init(text_map *map, size_t capacity_hint, strata_error *err)
{
    memset(map, 0, sizeof *map);
    size_t capacity = 16;
    while (capacity < capacity_hint * 2 + 1)
        capacity *= 2;
    map->keys = calloc(capacity, sizeof *map->keys);
    map->key_lens = calloc(capacity, sizeof *map->key_lens);
    map->values = calloc(capacity, sizeof *map->values);
    if (!map->keys || !map->key_lens || !map->values) {
        text_map_free(map);
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for a map of %zu entries",
                           capacity_hint);
    }
    map->capacity = capacity;
    return STRATA_OK;
}

void text_map_free(text_map *map)
{
    free(map->keys);
    free(map->key_lens);
    free(map->values);
    memset(map, 0, sizeof *map);
}

/* The capacity is fixed at init to twice the expected entries; a put past
 * that is ignored rather than degrading into an endless probe. */
void text_map_put(text_map *map, const char *key, size_t len, int32_t value)
{
    if (map->capacity == 0 || map->count * 2 >= map->capacity)
        return;
    size_t mask = map->capacity - 1;
    for (size_t i = (size_t)hash_bytes(key, len) & mask;; i = (i + 1) & mask) {
        if (!map->keys[i]) {
            map->keys[i] = key;
            map->key_lens[i] = (uint32_t)len;
            map->values[i] = value;
            map->count++;
            return;
        }
        if (map->key_lens[i] == len && memcmp(map->keys[i], key, len) == 0)
            return;
    }
}

int32_t text_map_get(const text_map *map, const char *key, size_t len)
{
    if (map->capacity == 0)
        return -1;
    size_t mask = map->capacity - 1;
    for (size_t i = (size_t)hash_bytes(key, len) & mask;; i = (i + 1) & mask) {
        if (!map->keys[i])
            return -1;
        if (map->key_lens[i] == len && memcmp(map->keys[i], key, len) == 0)
            return map->values[i];
    }
}

/* --- lists ---------------------------------------------------------------- */

strata_status id_list_push(id_list *list, int32_t id, strata_error *err)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 64;
        int32_t *items = realloc(list->items, capacity * sizeof *items);
        if (!items)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for %zu tokens", capacity);
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = id;
    return STRATA_OK;
}

/* --- merge queue (a binary heap) ------------------------------------------- */

uint32_t merge_priority_of_score(float score)
{
    if (score == 0.0f)
        score = 0.0f; /* -0 and +0 compare equal as floats: one key for both */
    if (score != score)
        score = -INFINITY; /* a NaN score (a broken file) merges last, deterministically */
    uint32_t bits;
    memcpy(&bits, &score, sizeof bits);
    /* IEEE-754 bits sort as sign-magnitude: flip negatives, lift positives */
    return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

uint32_t merge_priority_of_rank(int32_t rank) { return UINT32_MAX - (uint32_t)rank; }

static bool candidate_before(const merge_candidate *a, const merge_candidate *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->left < b->left;
}

strata_status merge_queue_push(merge_queue *queue, merge_candidate candidate, strata_error *err)
{
    if (queue->count == queue->capacity) {
        size_t capacity = queue->capacity ? queue->capacity * 2 : 64;
        merge_candidate *items = realloc(queue->items, capacity * sizeof *items);
        if (!items)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for %zu merge candidates",
                               capacity);
        queue->items = items;
        queue->capacity = capacity;
    }
    size_t i = queue->count++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!candidate_before(&candidate, &queue->items[parent]))
            break;
        queue->items[i] = queue->items[parent];
        i = parent;
    }
    queue->items[i] = candidate;
    return STRATA_OK;
}

merge_candidate merge_queue_pop(merge_queue *queue)
{
    merge_candidate top = queue->items[0];
    merge_candidate last = queue->items[--queue->count];
    size_t i = 0, n = queue->count;
    if (n == 0)
        return top;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && candidate_before(&queue->items[child + 1], &queue->items[child]))
            child++;
        if (!candidate_before(&queue->items[child], &last))
            break;
        queue->items[i] = queue->items[child];
        i = child;
    }
    queue->items[i] = last;
    return top;
}

/* --- UTF-8 ---------------------------------------------------------------- */

size_t utf8_sequence_length(const char *text, size_t len)
{
    const uint8_t *s = (const uint8_t *)text;
    if (len == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    size_t n;
    uint32_t min_cp, cp;
    if ((s[0] & 0xE0) == 0xC0) {
        n = 2, min_cp = 0x80, cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3, min_cp = 0x800, cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4, min_cp = 0x10000, cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

size_t utf8_encode(uint32_t cp, char *out)
{
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* --- GPT-2 byte <-> character ---------------------------------------------
 * Printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves;
 * the other 68 bytes, in increasing order, take U+0100, U+0101, ... */

static bool byte_is_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t bpe_byte_to_codepoint(uint8_t b)
{
    if (byte_is_printable(b))
        return b;
    uint32_t shifted = 0;
    for (unsigned i = 0; i < b; i++)
        if (!byte_is_printable(i))
            shifted++;
    return 0x100 + shifted;
}

int bpe_codepoint_to_byte(uint32_t cp)
{
    if (cp < 0x100)
        return byte_is_printable(cp) ? (int)cp : -1;
    uint32_t shifted = 0;
    for (unsigned b = 0; b < 256; b++) {
        if (byte_is_printable(b))
            continue;
        if (0x100 + shifted == cp)
            return (int)b;
        shifted++;
    }
    return -1;
}
