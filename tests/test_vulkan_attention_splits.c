/* The split-KV choice of the Vulkan attention (vk_attention_splits in
 * backends/vulkan/vulkan_push.h): a pure function, checked without a GPU.
 * Every split plan must cover all rows, leave no split empty past the first
 * rows, and keep one split where there is enough parallel work already. */
#include <stdio.h>

#include "backends/vulkan/vulkan_push.h"

static int failures;

static void expect(int ok, const char *what, uint32_t pairs, uint32_t rows, uint32_t splits, uint32_t per_split)
{
    if (!ok) {
        printf("FAIL %s: pairs %u rows %u -> %u splits of %u rows\n", what, pairs, rows, splits, per_split);
        failures++;
    }
}

int main(void)
{
    static const uint32_t pairs_list[] = {1, 4, 32, 64, 255, 256, 1024, 65536};
    static const uint32_t rows_list[] = {0, 1, 31, 32, 33, 38, 100, 512, 4096, 131072};
    for (size_t p = 0; p < sizeof pairs_list / sizeof pairs_list[0]; p++)
        for (size_t r = 0; r < sizeof rows_list / sizeof rows_list[0]; r++) {
            uint32_t pairs = pairs_list[p], rows = rows_list[r], per_split = 0;
            uint32_t splits = vk_attention_splits(pairs, rows, &per_split);
            expect(splits >= 1 && per_split >= 1, "at least one split of one row", pairs, rows, splits, per_split);
            expect((uint64_t)splits * per_split >= rows, "the splits cover every row", pairs, rows, splits,
                   per_split);
            expect(splits == 1 || (uint64_t)(splits - 1) * per_split < rows, "no split is wholly empty", pairs,
                   rows, splits, per_split);
            expect(splits == 1 || per_split > 16, "splits keep more than 16 rows", pairs, rows, splits,
                   per_split);
            expect(pairs < 256 || splits == 1, "enough pairs: one split", pairs, rows, splits, per_split);
            expect((uint64_t)splits * pairs <= 2 * 256 || splits == 1, "about 256 workgroups at most", pairs, rows,
                   splits, per_split);
        }
    /* decode of 32 heads over a 4096-row cache: 8 splits of 512 rows */
    uint32_t per_split = 0;
    uint32_t splits = vk_attention_splits(32, 4096, &per_split);
    expect(splits == 8 && per_split == 512, "32 heads x 4096 rows", 32, 4096, splits, per_split);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("vk_attention_splits: all plans cover their rows\n");
    return 0;
}
