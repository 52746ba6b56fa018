/* The range bookkeeping and size policy of backends/vulkan/vulkan_suballoc.h.
 * No GPU needed; runs everywhere. Besides a few hand-checked cases, a random
 * sequence of takes and gives is checked against a byte map of the block:
 * taken ranges never overlap, are aligned, free ranges stay sorted, merged
 * and disjoint from taken ones, and giving everything back leaves one range. */
#include <stdlib.h>

#include "backends/vulkan/vulkan_suballoc.h"
#include "test_check.h"

/* The list is sorted, merged (no two ranges touch), inside the block. */
static bool list_well_formed(const vk_range_list *list)
{
    for (int i = 0; i < list->n_free; i++) {
        const vk_range *r = &list->free[i];
        if (r->bytes == 0 || r->offset + r->bytes > list->size)
            return false;
        if (i > 0 && list->free[i - 1].offset + list->free[i - 1].bytes >= r->offset)
            return false;
    }
    return list->n_free <= list->n_live + 1;
}

static void test_basic(void)
{
    vk_range_list list;
    uint64_t a, b, c;
    vk_ranges_init(&list, 1000);
    CHECK(list.n_free == 1 && vk_ranges_empty(&list), "a new block is one free range");
    CHECK(!vk_ranges_take(&list, 0, 1, &a), "zero bytes are refused");
    CHECK(!vk_ranges_take(&list, 1001, 1, &a), "more than the block is refused");
    CHECK(vk_ranges_take(&list, 100, 1, &a) && a == 0, "first fit at 0");
    CHECK(vk_ranges_take(&list, 10, 64, &b) && b == 128, "aligned to 64 (got %llu)", (unsigned long long)b);
    CHECK(list.n_free == 2 && list.free[0].offset == 100 && list.free[0].bytes == 28, "padding stays free");
    CHECK(vk_ranges_take(&list, 28, 4, &c) && c == 100, "the padding is reused (got %llu)", (unsigned long long)c);
    CHECK(list.n_free == 1 && list.free[0].offset == 138, "exact fit removes the range");
    vk_ranges_give(&list, a, 100);
    vk_ranges_give(&list, c, 28);
    CHECK(list.n_free == 2 && list.free[0].offset == 0 && list.free[0].bytes == 128, "gives merge forward");
    vk_ranges_give(&list, b, 10);
    CHECK(list.n_free == 1 && list.free[0].bytes == 1000 && vk_ranges_empty(&list), "all merged back");
}

static void test_live_cap(void)
{
    vk_range_list list;
    uint64_t offset;
    vk_ranges_init(&list, 1u << 20);
    int taken = 0;
    while (vk_ranges_take(&list, 1, 2, &offset)) /* every other byte: the most free ranges there can be */
        taken++;
    CHECK(taken == VK_SUBALLOC_MAX_LIVE, "capped at %d live (took %d)", VK_SUBALLOC_MAX_LIVE, taken);
    CHECK(list_well_formed(&list), "well formed at the cap");
    for (int i = 0; i < taken; i += 2) /* give back every other one: gaps that cannot merge */
        vk_ranges_give(&list, (uint64_t)i * 2, 1);
    CHECK(list_well_formed(&list), "well formed with holes");
    for (int i = 1; i < taken; i += 2)
        vk_ranges_give(&list, (uint64_t)i * 2, 1);
    CHECK(list.n_free == 1 && vk_ranges_empty(&list), "everything back: one range");
}

#define BLOCK 4096
#define SLOTS 64
static void test_random(void)
{
    vk_range_list list;
    static unsigned char owner[BLOCK]; /* 0 free, else slot + 1 */
    uint64_t offsets[SLOTS], sizes[SLOTS];
    bool live[SLOTS] = {false};
    vk_ranges_init(&list, BLOCK);
    srand(12345);
    for (int step = 0; step < 20000; step++) {
        int s = rand() % SLOTS;
        if (live[s]) {
            vk_ranges_give(&list, offsets[s], sizes[s]);
            for (uint64_t i = 0; i < sizes[s]; i++)
                owner[offsets[s] + i] = 0;
            live[s] = false;
        } else {
            uint64_t bytes = 1 + (uint64_t)(rand() % 300);
            uint64_t alignment = (uint64_t)1 << (rand() % 8);
            if (!vk_ranges_take(&list, bytes, alignment, &offsets[s]))
                continue;
            sizes[s] = bytes;
            live[s] = true;
            CHECK(offsets[s] % alignment == 0, "step %d: aligned", step);
            CHECK(offsets[s] + bytes <= BLOCK, "step %d: inside the block", step);
            for (uint64_t i = 0; i < bytes && offsets[s] + i < BLOCK; i++) {
                CHECK(owner[offsets[s] + i] == 0, "step %d: byte %llu taken twice", step,
                      (unsigned long long)(offsets[s] + i));
                owner[offsets[s] + i] = (unsigned char)(s + 1);
            }
        }
        CHECK(list_well_formed(&list), "step %d: well formed", step);
        uint64_t used = 0;
        for (int i = 0; i < BLOCK; i++)
            used += owner[i] != 0;
        CHECK(used + vk_ranges_free_bytes(&list) == BLOCK, "step %d: free + used = block", step);
        for (int r = 0; r < list.n_free; r++)
            for (uint64_t i = 0; i < list.free[r].bytes; i += 7)
                CHECK(owner[list.free[r].offset + i] == 0, "step %d: a free range holds a live byte", step);
        if (failures > 20)
            return;
    }
    for (int s = 0; s < SLOTS; s++)
        if (live[s])
            vk_ranges_give(&list, offsets[s], sizes[s]);
    CHECK(list.n_free == 1 && list.free[0].bytes == BLOCK && vk_ranges_empty(&list), "all given back: one range");
}

static void test_policy(void)
{
    const uint64_t MiB = 1 << 20, GiB = (uint64_t)1 << 30;
    CHECK(vk_suballoc_block_bytes(4 * GiB, 80 * GiB) == VK_SUBALLOC_BLOCK_BYTES, "a large GPU: the default");
    CHECK(vk_suballoc_block_bytes(16 * MiB, 80 * GiB) == 16 * MiB, "bounded by maxMemoryAllocationSize");
    CHECK(vk_suballoc_block_bytes(0, 80 * GiB) == VK_SUBALLOC_BLOCK_BYTES, "unknown limit: the default");
    CHECK(vk_suballoc_block_bytes(4 * GiB, 256 * MiB) == 256 * MiB / VK_SUBALLOC_HEAP_FRACTION, "small heap");
    CHECK(vk_suballoc_block_bytes(4 * GiB, 4 * MiB) == 0, "tiny heap: nothing shared");
    CHECK(vk_suballoc_shares(1, 64 * MiB) && vk_suballoc_shares(32 * MiB, 64 * MiB), "up to half a block");
    CHECK(!vk_suballoc_shares(32 * MiB + 1, 64 * MiB), "past half a block: own allocation");
    CHECK(!vk_suballoc_shares(1, 0), "no block size: never shared");
}

int main(void)
{
    test_basic();
    test_live_cap();
    test_random();
    test_policy();
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("vulkan suballoc: all passed\n");
    return 0;
}
