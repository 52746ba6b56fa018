/* The pure functions of backends/vulkan/vulkan_shader_params.h: kernel
 * choice and workgroup counts of the weight-reading shaders. No GPU needed;
 * runs everywhere. The counts are checked the way a shader uses them: every
 * output row / token / unit must be covered by exactly one workgroup slot,
 * and no dimension may exceed what Vulkan guarantees. */
#include <stdio.h>

#include "backends/vulkan/vulkan_shader_params.h"
#include "test_check.h"

static void test_choose(void)
{
    CHECK(vk_matmul_choose(1, false) == VK_MATMUL_VECTOR, "decode is matrix-vector");
    CHECK(vk_matmul_choose(1, true) == VK_MATMUL_VECTOR, "decode is matrix-vector with coopmat too");
    CHECK(vk_matmul_choose(VK_MATMUL_VECTOR_MAX_TOKENS, false) == VK_MATMUL_VECTOR, "up to the threshold");
    CHECK(vk_matmul_choose(VK_MATMUL_VECTOR_MAX_TOKENS + 1, false) == VK_MATMUL_TILED, "past the threshold");
    CHECK(vk_matmul_choose(512, true) == VK_MATMUL_TILED, "prefill is tiled");
    /* the vector kernel handles VK_MATMUL_VECTOR_TOKENS per workgroup: a
     * threshold above that would read the weights twice */
    CHECK(VK_MATMUL_VECTOR_MAX_TOKENS <= VK_MATMUL_VECTOR_TOKENS, "threshold within one vector pass");
}

static void test_spread(void)
{
    uint32_t lo, hi;
    CHECK(vk_spread_groups(0, &lo, &hi) && lo == 0 && hi == 0, "empty");
    CHECK(vk_spread_groups(1, &lo, &hi) && lo == 1 && hi == 1, "one");
    CHECK(vk_spread_groups(65535, &lo, &hi) && lo == 65535 && hi == 1, "exactly one dimension");
    CHECK(vk_spread_groups(65536, &lo, &hi) && lo == 65535 && hi == 2, "just over");
    CHECK(vk_spread_groups(128256, &lo, &hi) && (uint64_t)lo * hi >= 128256 && hi == 2, "llama3 vocabulary");
    CHECK(!vk_spread_groups(UINT32_MAX, &lo, &hi), "too many for two dimensions");
}

/* Checks a matmul geometry: rows over x*y cover row_count, tokens over z. */
static void check_matmul(uint32_t row_count, uint32_t n_tok, vk_matmul_kernel kernel)
{
    vk_matmul_params p = {.n_in = 4096, .row_count = row_count, .n_tok = n_tok};
    uint32_t g[3];
    uint32_t rows_per = kernel == VK_MATMUL_TILED ? VK_MATMUL_TILE_ROWS : 1;
    uint32_t toks_per = kernel == VK_MATMUL_TILED ? VK_MATMUL_TILE_TOKENS : VK_MATMUL_VECTOR_TOKENS;
    CHECK(vk_matmul_groups(&p, kernel, g), "rows %u tokens %u: accepted", row_count, n_tok);
    if (row_count == 0 || n_tok == 0) {
        CHECK(g[0] == 0 && g[1] == 0 && g[2] == 0, "empty dispatch for rows %u tokens %u", row_count, n_tok);
        return;
    }
    for (int d = 0; d < 3; d++)
        CHECK(g[d] >= 1 && g[d] <= VK_MAX_GROUPS_PER_DIM, "rows %u tokens %u: dim %d = %u", row_count, n_tok, d,
              g[d]);
    uint64_t row_slots = (uint64_t)g[0] * g[1] * rows_per;
    CHECK(row_slots >= row_count, "rows %u covered (%llu slots)", row_count, (unsigned long long)row_slots);
    /* no whole workgroup row beyond need except the last y stripe's padding */
    CHECK((uint64_t)g[0] * (g[1] - 1) * rows_per < row_count, "rows %u: no empty y stripe", row_count);
    CHECK((uint64_t)g[2] * toks_per >= n_tok && (uint64_t)(g[2] - 1) * toks_per < n_tok,
          "tokens %u: z = %u", n_tok, g[2]);
}

static void test_matmul_groups(void)
{
    static const uint32_t rows[] = {0, 1, 3, 63, 64, 65, 4096, 65535, 65536, 128256, 1u << 22};
    static const uint32_t toks[] = {0, 1, 2, 7, 8, 9, 33, 512, 4096};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (size_t t = 0; t < sizeof toks / sizeof toks[0]; t++) {
            check_matmul(rows[r], toks[t], VK_MATMUL_VECTOR);
            check_matmul(rows[r], toks[t], VK_MATMUL_TILED);
        }
    uint32_t g[3] = {9, 9, 9};
    vk_matmul_params huge_tokens = {.row_count = 1, .n_tok = UINT32_MAX};
    CHECK(!vk_matmul_groups(&huge_tokens, VK_MATMUL_VECTOR, g) && g[0] == 0 && g[1] == 0 && g[2] == 0,
          "too many tokens is refused with zero counts");
    vk_matmul_params decode = {.n_in = 4096, .row_count = 4096, .n_tok = 1};
    CHECK(vk_matmul_groups(&decode, VK_MATMUL_VECTOR, g) && g[0] == 4096 && g[1] == 1 && g[2] == 1,
          "decode of 4096 rows: 4096 x 1 x 1, got %u x %u x %u", g[0], g[1], g[2]);
    vk_matmul_params prefill = {.n_in = 4096, .row_count = 4096, .n_tok = 512};
    CHECK(vk_matmul_groups(&prefill, VK_MATMUL_TILED, g) && g[0] == 64 && g[1] == 1 && g[2] == 16,
          "prefill 4096 x 512: 64 x 1 x 16, got %u x %u x %u", g[0], g[1], g[2]);
}

static void test_get_rows_groups(void)
{
    uint32_t g[3];
    vk_get_rows_params p = {.n_embd = 4096, .n_rows = 7};
    CHECK(vk_get_rows_groups(&p, VK_GET_ROWS_LOCAL_SIZE, g) && g[0] == 8 && g[1] == 7 && g[2] == 1,
          "4096 x 7: 8 x 7 x 1, got %u x %u x %u", g[0], g[1], g[2]);
    p.n_embd = 33; /* float rows end inside a unit: 5 units */
    CHECK(vk_get_rows_groups(&p, 4, g) && g[0] == 2, "33 elements, 4 threads: 2 groups, got %u", g[0]);
    p.n_embd = 4096;
    p.n_rows = 100000;
    CHECK(vk_get_rows_groups(&p, VK_GET_ROWS_LOCAL_SIZE, g) && g[1] == 65535 && g[2] == 2,
          "100000 ids over y and z, got %u x %u", g[1], g[2]);
    p.n_rows = 0;
    CHECK(vk_get_rows_groups(&p, VK_GET_ROWS_LOCAL_SIZE, g) && g[0] == 0 && g[1] == 0 && g[2] == 0, "no ids");
    p.n_rows = 1;
    CHECK(!vk_get_rows_groups(&p, 0, g), "local size 0 is refused");
}

int main(void)
{
    test_choose();
    test_spread();
    test_matmul_groups();
    test_get_rows_groups();
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("vulkan shader params: all passed\n");
    return 0;
}
