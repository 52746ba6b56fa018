/* Name -> record number hash index for GGUF keys and tensors, so lookups and
 * duplicate checks stay linear in the number of names. */
#include <stdlib.h>
#include <string.h>

#include "gguf_internal.h"

/* FNV-1a from a seeded state, then a 64-bit finalizer so the low bits used
 * for the slot depend on every input byte and on the seed. */
static uint64_t hash_bytes(uint64_t seed, const char *name, size_t len)
{
    uint64_t hash = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char)name[i];
        hash *= 1099511628211ull;
    }
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdull;
    hash ^= hash >> 33;
    hash *= 0xc4ceb9fe1a85ec53ull;
    hash ^= hash >> 33;
    return hash;
}

/* A seed that differs between indexes and runs (taken from where the table
 * was allocated, which address-space randomization moves); lookups never
 * depend on its value, only on its being fixed for the life of one index. */
static uint64_t seed_from(const void *where)
{
    return (uint64_t)(uintptr_t)where * 0x9e3779b97f4a7c15ull;
}

static const char *record_name(const void *records, size_t stride, int64_t record)
{
    const char *const *name = (const char *const *)((const char *)records + (size_t)record * stride);
    return *name;
}

static bool name_equals(const char *stored, const char *name, size_t len)
{
    return strncmp(stored, name, len) == 0 && stored[len] == '\0';
}

bool gguf_index_init(gguf_name_index *index, size_t expected_records)
{
    size_t capacity = 16;
    while (capacity < expected_records * 2 && capacity < ((size_t)1 << 62))
        capacity *= 2;
    index->slots = calloc(capacity, sizeof *index->slots);
    index->capacity = index->slots ? capacity : 0;
    index->used = 0;
    index->seed = seed_from(index->slots);
    return index->slots != NULL;
}

void gguf_index_free(gguf_name_index *index)
{
    free(index->slots);
    index->slots = NULL;
    index->capacity = 0;
    index->used = 0;
}

int64_t gguf_index_find(const gguf_name_index *index, const void *records, size_t stride, const char *name,
                        size_t len)
{
    if (index->capacity == 0)
        return -1;
    size_t mask = index->capacity - 1;
    for (size_t slot = (size_t)hash_bytes(index->seed, name, len) & mask;; slot = (slot + 1) & mask) {
        int64_t entry = index->slots[slot];
        if (entry == 0)
            return -1;
        if (name_equals(record_name(records, stride, entry - 1), name, len))
            return entry - 1;
    }
}

static void place(int64_t *slots, size_t capacity, uint64_t seed, const char *name, int64_t entry)
{
    size_t mask = capacity - 1;
    size_t slot = (size_t)hash_bytes(seed, name, strlen(name)) & mask;
    while (slots[slot] != 0)
        slot = (slot + 1) & mask;
    slots[slot] = entry;
}

bool gguf_index_insert(gguf_name_index *index, const void *records, size_t stride, int64_t record)
{
    if ((index->used + 1) * 2 > index->capacity) {
        size_t capacity = index->capacity ? index->capacity * 2 : 16;
        int64_t *slots = calloc(capacity, sizeof *slots);
        if (!slots)
            return false;
        for (size_t i = 0; i < index->capacity; i++)
            if (index->slots[i] != 0)
                place(slots, capacity, index->seed, record_name(records, stride, index->slots[i] - 1), index->slots[i]);
        free(index->slots);
        index->slots = slots;
        index->capacity = capacity;
    }
    place(index->slots, index->capacity, index->seed, record_name(records, stride, record), record + 1);
    index->used++;
    return true;
}
