/* Range bookkeeping of the device-memory sub-allocator, and its size policy.
 * Pure functions, no Vulkan: tests/test_vulkan_suballoc.c runs them without a
 * GPU. vulkan_suballoc.c puts a VkDeviceMemory block behind each list.
 *
 * A block's free space is a list of ranges sorted by offset; adjacent free
 * ranges are always merged, so the free ranges are exactly the gaps between
 * live allocations and number at most live + 1. Capping live allocations per
 * block at VK_SUBALLOC_MAX_LIVE lets a fixed array hold the list: giving a
 * range back never needs memory and never fails. */
#ifndef STRATA_VULKAN_SUBALLOC_H
#define STRATA_VULKAN_SUBALLOC_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define VK_SUBALLOC_MAX_LIVE 255
/* The block size we aim for; smaller when the device's largest allocation or
 * heap says so (vk_suballoc_block_bytes). */
#define VK_SUBALLOC_BLOCK_BYTES ((uint64_t)64 << 20)
/* Never take more than this fraction of a heap for one block. */
#define VK_SUBALLOC_HEAP_FRACTION 8

typedef struct vk_range {
    uint64_t offset, bytes;
} vk_range;

typedef struct vk_range_list {
    uint64_t size;      /* of the block */
    int n_free, n_live; /* free ranges; allocations not yet given back */
    vk_range free[VK_SUBALLOC_MAX_LIVE + 1]; /* sorted by offset, never adjacent */
} vk_range_list;

/* An empty block of size bytes: one free range covering it. */
static inline void vk_ranges_init(vk_range_list *list, uint64_t size)
{
    memset(list, 0, sizeof *list);
    list->size = size;
    if (size > 0) {
        list->free[0] = (vk_range){0, size};
        list->n_free = 1;
    }
}

/* First fit: *offset receives a multiple of alignment (a power of two, or 0
 * or 1 for none) with [*offset, *offset + bytes) free, now taken. Returns
 * false, changing nothing, when no range fits, bytes is 0, or the block
 * already holds VK_SUBALLOC_MAX_LIVE allocations. */
static inline bool vk_ranges_take(vk_range_list *list, uint64_t bytes, uint64_t alignment, uint64_t *offset)
{
    if (bytes == 0 || list->n_live >= VK_SUBALLOC_MAX_LIVE)
        return false;
    if (alignment < 1)
        alignment = 1;
    for (int i = 0; i < list->n_free; i++) {
        vk_range r = list->free[i];
        uint64_t start = (r.offset + alignment - 1) / alignment * alignment;
        uint64_t end = r.offset + r.bytes;
        if (start < r.offset || start > end || bytes > end - start)
            continue;
        bool before = start > r.offset, after = start + bytes < end;
        if (before && after) { /* split in two: one more free range */
            memmove(&list->free[i + 2], &list->free[i + 1], (size_t)(list->n_free - i - 1) * sizeof(vk_range));
            list->free[i] = (vk_range){r.offset, start - r.offset};
            list->free[i + 1] = (vk_range){start + bytes, end - start - bytes};
            list->n_free++;
        } else if (before) {
            list->free[i].bytes = start - r.offset;
        } else if (after) {
            list->free[i] = (vk_range){start + bytes, end - start - bytes};
        } else { /* exact fit: the range goes */
            memmove(&list->free[i], &list->free[i + 1], (size_t)(list->n_free - i - 1) * sizeof(vk_range));
            list->n_free--;
        }
        list->n_live++;
        *offset = start;
        return true;
    }
    return false;
}

/* Gives back [offset, offset + bytes), exactly as vk_ranges_take handed it
 * out, merging it with free neighbours. */
static inline void vk_ranges_give(vk_range_list *list, uint64_t offset, uint64_t bytes)
{
    int i = 0; /* first free range after offset */
    while (i < list->n_free && list->free[i].offset < offset)
        i++;
    bool join_prev = i > 0 && list->free[i - 1].offset + list->free[i - 1].bytes == offset;
    bool join_next = i < list->n_free && offset + bytes == list->free[i].offset;
    if (join_prev && join_next) {
        list->free[i - 1].bytes += bytes + list->free[i].bytes;
        memmove(&list->free[i], &list->free[i + 1], (size_t)(list->n_free - i - 1) * sizeof(vk_range));
        list->n_free--;
    } else if (join_prev) {
        list->free[i - 1].bytes += bytes;
    } else if (join_next) {
        list->free[i].offset = offset;
        list->free[i].bytes += bytes;
    } else {
        memmove(&list->free[i + 1], &list->free[i], (size_t)(list->n_free - i) * sizeof(vk_range));
        list->free[i] = (vk_range){offset, bytes};
        list->n_free++;
    }
    if (list->n_live > 0)
        list->n_live--;
}

/* Whether nothing is allocated from the block (it can be released). */
static inline bool vk_ranges_empty(const vk_range_list *list) { return list->n_live == 0; }

/* Free bytes of the block, alignment padding included. */
static inline uint64_t vk_ranges_free_bytes(const vk_range_list *list)
{
    uint64_t total = 0;
    for (int i = 0; i < list->n_free; i++)
        total += list->free[i].bytes;
    return total;
}

/* The size of a new block: VK_SUBALLOC_BLOCK_BYTES, at most the device's
 * largest allocation (maxMemoryAllocationSize; 0 = unknown) and a
 * VK_SUBALLOC_HEAP_FRACTION of the heap; 0 when that leaves less than 1 MiB
 * (then nothing is shared). */
static inline uint64_t vk_suballoc_block_bytes(uint64_t max_allocation_bytes, uint64_t heap_bytes)
{
    uint64_t block = VK_SUBALLOC_BLOCK_BYTES;
    if (max_allocation_bytes > 0 && max_allocation_bytes < block)
        block = max_allocation_bytes;
    if (heap_bytes / VK_SUBALLOC_HEAP_FRACTION < block)
        block = heap_bytes / VK_SUBALLOC_HEAP_FRACTION;
    return block < ((uint64_t)1 << 20) ? 0 : block;
}

/* Whether a buffer of bytes is carved from a shared block. Only buffers up
 * to half a block are: a larger one would leave most of its block unusable,
 * so it keeps its own allocation. */
static inline bool vk_suballoc_shares(uint64_t bytes, uint64_t block_bytes)
{
    return block_bytes > 0 && bytes > 0 && bytes <= block_bytes / 2;
}

#endif
