/* The split arithmetic of the Vulkan backend (backends/vulkan/vulkan_split.h),
 * without a GPU: every plan is walked the way the ops walk it and checked
 * against what a binding may hold (its range plus the worst alignment slack
 * and word rounding), that every element, row, token and cache row is
 * covered exactly once, that the attention workspace is what its passes
 * need and within the bound the planner reserves, and that attention stays
 * within lavapipe's loop budget (counted by walking the shader's loops);
 * and the mixture-of-experts plans (vulkan_moe_plan.h) the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/vulkan/vulkan_moe_plan.h"
#include "backends/vulkan/vulkan_split.h"
#include "test_check.h"

/* What a binding of span bytes needs at worst: the alignment slack before
 * it and the rounding to words after it. */
static bool fits(uint64_t span, uint64_t max_range, uint64_t alignment)
{
    return span + (alignment ? alignment - 1 : 0) + 3 <= max_range;
}

static void test_knob(void)
{
    uint64_t bytes = 1;
    CHECK(vk_bind_limit_parse(NULL, &bytes) && bytes == 0, "no knob");
    CHECK(vk_bind_limit_parse("", &bytes) && bytes == 0, "empty knob");
    CHECK(vk_bind_limit_parse("64", &bytes) && bytes == 65536, "64 KiB");
    CHECK(vk_bind_limit_parse("4", &bytes) && bytes == 4096, "the smallest");
    CHECK(vk_bind_limit_parse("4194304", &bytes) && bytes == (4ull << 30), "the largest");
    static const char *bad[] = {"3", "0", "-64", "+64", "64k", "64 ", " 64", "6.5", "4194305", "99999999999999999999",
                                "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!vk_bind_limit_parse(bad[i], &bytes), "\"%s\" is refused", bad[i]);
    CHECK(vk_bind_limit(128u << 20, 0) == (128u << 20), "no knob: the device's range");
    CHECK(vk_bind_limit(128u << 20, 65536) == 65536, "the knob lowers it");
    CHECK(vk_bind_limit(128u << 20, 4ull << 30) == (128u << 20), "the knob never raises it");
}

static void test_rows_per_binding(void)
{
    const uint64_t mib128 = 128ull << 20;
    /* Q4_K row of 4096: 16 blocks of 144 bytes */
    uint32_t rows = vk_rows_per_binding(2304, mib128, 64);
    CHECK(rows > 0 && fits((uint64_t)rows * 2304, mib128, 64) && !fits((uint64_t)(rows + 1) * 2304, mib128, 64),
          "Q4_K rows in 128 MiB: %u", rows);
    CHECK(vk_rows_per_binding(0, mib128, 64) == 0, "zero-byte rows");
    CHECK(vk_rows_per_binding(200, 100, 4) == 0, "a row larger than the range");
    CHECK(vk_rows_per_binding(1, 1ull << 40, 1) == UINT32_MAX, "clamped to 32 bits");
    /* strided rows: the last one only needs its own bytes */
    static const uint64_t strides[] = {4, 100, 256, 4096, 65536};
    static const uint64_t limits[] = {4096, 65536, 128ull << 20};
    for (size_t s = 0; s < sizeof strides / sizeof strides[0]; s++)
        for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++)
            for (uint64_t last = 4; last <= strides[s]; last *= 4) {
                uint32_t n = vk_strided_rows_per_binding(strides[s], last, limits[l], 256);
                if (n == 0) {
                    CHECK(!fits(last, limits[l], 256), "stride %llu last %llu: one row fits",
                          (unsigned long long)strides[s], (unsigned long long)last);
                    continue;
                }
                uint64_t span = (n - 1) * strides[s] + last;
                CHECK(fits(span, limits[l], 256) && !fits(span + strides[s], limits[l], 256),
                      "stride %llu last %llu limit %llu: %u rows is the most that fits",
                      (unsigned long long)strides[s], (unsigned long long)last, (unsigned long long)limits[l], n);
            }
}

/* Walks an element-wise op as record_elementwise does; checks coverage, the
 * bindings' sizes, and that every element reads src1 where the broadcast
 * says (element i of src0 pairs with i % period of src1). */
static void check_elementwise(uint32_t n, uint32_t period, uint32_t fit)
{
    uint32_t covered = 0;
    int pieces = 0;
    for (uint32_t begin = 0; begin < n; pieces++) {
        vk_elementwise_piece p = vk_elementwise_next(n, period, fit, begin);
        uint32_t b_count = p.b_period < p.count ? p.b_period : p.count;
        bool ok = p.begin == begin && p.count >= 1 && p.count <= fit && b_count <= fit && p.b_period >= 1;
        for (uint32_t i = 0; ok && i < p.count; i++) {
            uint32_t b_index = p.b_begin + i % p.b_period;
            ok = b_index == (begin + i) % period && i % p.b_period < b_count;
        }
        CHECK(ok, "n %u period %u fit %u: piece at %u (%u elements, src1 from %u period %u)", n, period, fit, begin,
              p.count, p.b_begin, p.b_period);
        if (!ok || p.count == 0)
            return;
        begin += p.count;
        covered += p.count;
    }
    CHECK(covered == n, "n %u period %u fit %u: %u elements covered", n, period, fit, covered);
    /* no more pieces than needed: about n / fit, plus row cuts when a row is longer than fit */
    uint32_t least = (n + fit - 1) / fit;
    uint32_t most = period < n && period > fit ? least + n / period + 1 : least + (period < n ? least : 0);
    CHECK((uint32_t)pieces >= least && (uint32_t)pieces <= most, "n %u period %u fit %u: %d pieces", n, period, fit,
          pieces);
}

static void test_elementwise(void)
{
    static const uint32_t ns[] = {1, 7, 1000, 70000};
    static const uint32_t fits_list[] = {1, 3, 16, 1000, 16381, 100000};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t f = 0; f < sizeof fits_list / sizeof fits_list[0]; f++) {
            uint32_t n = ns[a], fit = fits_list[f];
            check_elementwise(n, n, fit);
            static const uint32_t periods[] = {1, 7, 67, 1000, 20000};
            for (size_t p = 0; p < sizeof periods / sizeof periods[0]; p++)
                if (periods[p] < n && n % periods[p] == 0)
                    check_elementwise(n, periods[p], fit);
        }
}

/* Walks a copy as vk_run_copy does, marking every element; checks each
 * slab's spans fit and every element is copied once. */
static void check_copy(const int64_t ne[4], const uint64_t src_nb[4], uint64_t src_bytes, const uint64_t dst_nb[4],
                       uint64_t dst_bytes, uint64_t max_range, uint64_t alignment)
{
    int64_t n = ne[0] * ne[1] * ne[2] * ne[3];
    unsigned char *seen = calloc((size_t)n, 1);
    vk_copy_split split = {0};
    bool ok = seen && vk_copy_split_choose(ne, src_nb, src_bytes, dst_nb, dst_bytes, max_range, alignment, &split);
    CHECK(ok, "[%lld %lld %lld %lld] limit %llu: a split exists", (long long)ne[0], (long long)ne[1],
          (long long)ne[2], (long long)ne[3], (unsigned long long)max_range);
    int64_t outer = 1;
    for (int d = split.dim + 1; ok && d < 4; d++)
        outer *= ne[d];
    for (int64_t o = 0; ok && o < outer; o++) {
        int64_t first[4] = {0, 0, 0, 0}, slab[4], rest = o;
        for (int d = split.dim + 1; d < 4; d++) {
            first[d] = rest % ne[d];
            rest /= ne[d];
        }
        for (int d = 0; d < 4; d++)
            slab[d] = d < split.dim ? ne[d] : 1;
        for (int64_t begin = 0; ok && begin < ne[split.dim]; begin += split.chunk) {
            first[split.dim] = begin;
            slab[split.dim] = ne[split.dim] - begin < split.chunk ? ne[split.dim] - begin : split.chunk;
            ok = fits(vk_strided_span(slab, src_nb, src_bytes), max_range, alignment) &&
                 fits(vk_strided_span(slab, dst_nb, dst_bytes), max_range, alignment);
            for (int64_t i3 = 0; ok && i3 < slab[3]; i3++)
                for (int64_t i2 = 0; i2 < slab[2]; i2++)
                    for (int64_t i1 = 0; i1 < slab[1]; i1++)
                        for (int64_t i0 = 0; i0 < slab[0]; i0++) {
                            int64_t index = (((first[3] + i3) * ne[2] + first[2] + i2) * ne[1] + first[1] + i1) * ne[0] +
                                            first[0] + i0;
                            seen[index]++;
                        }
        }
    }
    for (int64_t i = 0; ok && i < n; i++)
        ok = seen[i] == 1;
    CHECK(ok, "[%lld %lld %lld %lld] limit %llu: every element copied once, slabs fit (dim %d, chunk %u)",
          (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3], (unsigned long long)max_range,
          split.dim, split.chunk);
    free(seen);
}

static void test_copy(void)
{
    static const uint64_t limits[] = {4096, 65536, 1u << 20};
    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
        uint64_t limit = limits[l];
        /* contiguous f32 -> f16 */
        int64_t ne[4] = {300, 100, 3, 2};
        uint64_t src_nb[4] = {4, 1200, 120000, 360000}, dst_nb[4] = {2, 600, 60000, 180000};
        check_copy(ne, src_nb, 4, dst_nb, 2, limit, 64);
        /* transposed source: element (i0, i1) at i0 * n1 + i1 */
        int64_t ne_t[4] = {200, 150, 1, 1};
        uint64_t src_t[4] = {600, 4, 120000, 120000}, dst_t[4] = {4, 1600, 240000, 240000};
        check_copy(ne_t, src_t, 4, dst_t, 4, limit, 256);
        /* a flat reshape */
        int64_t ne_f[4] = {45150, 1, 1, 1};
        uint64_t src_f[4] = {2, 90300, 90300, 90300}, dst_f[4] = {4, 180600, 180600, 180600};
        check_copy(ne_f, src_f, 2, dst_f, 4, limit, 4);
    }
}

/* The loop iterations of invocation 0 of shaders/attention.comp (the one
 * that works most: it always scores a row) over rows cache rows, counted
 * loop by loop as the shader runs them. */
static uint64_t attention_shader_iterations(uint32_t head_dim, uint32_t local_size, uint32_t rows)
{
    uint64_t iterations = (head_dim + local_size - 1) / local_size; /* q into shared memory */
    iterations += 8;                                                    /* acc[] cleared */
    for (uint32_t chunk = 0; chunk < rows; chunk += local_size) {
        uint32_t count = rows - chunk < local_size ? rows - chunk : local_size;
        iterations += 1;         /* the chunk loop */
        iterations += head_dim;  /* q . k */
        iterations += count - 1; /* the chunk's max */
        iterations += count;     /* the chunk's sum */
        for (uint32_t c = 0; c < 8; c++) {
            iterations += 1;
            if (c * local_size >= head_dim)
                break;
            iterations += count; /* p . v for this dim */
        }
    }
    return iterations + 8; /* the output loop */
}

static void test_loop_budget(void)
{
    static const uint32_t head_dims[] = {8, 32, 42, 64, 80, 128, 256, 512};
    for (size_t h = 0; h < sizeof head_dims / sizeof head_dims[0]; h++) {
        uint32_t hd = head_dims[h];
        uint32_t rows = vk_attention_rows_within_loop_budget(hd, VK_ATTENTION_LOCAL_SIZE, VK_LLVMPIPE_LOOP_ITERATIONS);
        uint64_t used = attention_shader_iterations(hd, VK_ATTENTION_LOCAL_SIZE, rows);
        CHECK(used <= VK_LLVMPIPE_LOOP_ITERATIONS, "head_dim %u: %u rows run %llu loop iterations", hd, rows,
              (unsigned long long)used);
        /* not needlessly small: at least three quarters of what the budget allows */
        uint64_t at_more = attention_shader_iterations(hd, VK_ATTENTION_LOCAL_SIZE, rows + rows / 3);
        CHECK(at_more > VK_LLVMPIPE_LOOP_ITERATIONS, "head_dim %u: %u rows leave much of the budget unused", hd,
              rows);
    }
    /* measured on lavapipe (LLVM 15, 2026-12-04): head_dim 64 went wrong from
     * about 15900 rows per workgroup, head_dim 128 between 8000 and 12000 */
    CHECK(vk_attention_rows_within_loop_budget(64, 64, VK_LLVMPIPE_LOOP_ITERATIONS) < 15900, "head_dim 64 cap");
    CHECK(vk_attention_rows_within_loop_budget(128, 64, VK_LLVMPIPE_LOOP_ITERATIONS) < 12000, "head_dim 128 cap");
    CHECK(vk_attention_rows_within_loop_budget(64, 64, 0) == UINT32_MAX, "no budget, no cap");
}

/* Walks an attention plan as vk_run_attention does. */
static void check_attention(const vk_attention_dims *d)
{
    vk_attention_plan plan;
    char what[200];
    snprintf(what, sizeof what, "hd %u heads %u tok %u n_kv %u visible %u row %llu limit %llu cap %u", d->head_dim,
             d->n_heads, d->n_tok, d->n_kv, d->visible, (unsigned long long)d->k_row_bytes,
             (unsigned long long)d->max_range, d->max_rows_per_pass);
    bool one_row = fits(d->k_row_bytes, d->max_range, d->alignment) && fits(d->v_row_bytes, d->max_range, d->alignment);
    if (!vk_attention_plan_make(d, &plan)) {
        CHECK(!one_row || !fits(4ull * d->head_dim * d->n_heads, d->max_range, d->alignment) ||
                  !fits(8ull * d->n_heads, d->max_range, 0),
              "%s: refused though one row and one token fit", what);
        return;
    }
    uint32_t n_kv = d->n_kv ? d->n_kv : 1;
    CHECK((uint64_t)plan.rows_per_pass * plan.n_row_passes >= n_kv &&
              (uint64_t)plan.rows_per_pass * (plan.n_row_passes - 1) < n_kv,
          "%s: %u passes of %u rows cover the cache", what, plan.n_row_passes, plan.rows_per_pass);
    CHECK((uint64_t)plan.tokens_per_pass * plan.n_token_passes >= d->n_tok &&
              (uint64_t)plan.tokens_per_pass * (plan.n_token_passes - 1) < d->n_tok,
          "%s: %u token passes of %u", what, plan.n_token_passes, plan.tokens_per_pass);
    uint64_t k_span = (plan.rows_per_pass - 1) * d->k_row_stride + d->k_row_bytes;
    uint64_t v_span = (plan.rows_per_pass - 1) * d->v_row_stride + d->v_row_bytes;
    CHECK(fits(k_span, d->max_range, d->alignment) && fits(v_span, d->max_range, d->alignment),
          "%s: K and V of a pass fit", what);
    bool most = plan.rows_per_pass == n_kv || plan.rows_per_pass == d->max_rows_per_pass ||
                !fits(k_span + d->k_row_stride, d->max_range, d->alignment) ||
                !fits(v_span + d->v_row_stride, d->max_range, d->alignment);
    CHECK(most, "%s: %u rows per pass, one more would fit", what, plan.rows_per_pass);
    if (d->max_rows_per_pass)
        CHECK(plan.rows_per_pass <= d->max_rows_per_pass, "%s: passes within the loop budget", what);
    uint64_t token_bytes = 4ull * d->head_dim * d->n_heads;
    CHECK(fits(token_bytes * plan.tokens_per_pass, d->max_range, d->alignment), "%s: q and dst of a pass fit", what);
    uint64_t workspace = 0;
    for (uint32_t t = 0; t < plan.n_token_passes; t++) {
        uint32_t tokens = d->n_tok - t * plan.tokens_per_pass < plan.tokens_per_pass ? d->n_tok - t * plan.tokens_per_pass
                                                                                      : plan.tokens_per_pass;
        for (uint32_t r = 0; r < plan.n_row_passes; r++) {
            uint32_t rows = n_kv - r * plan.rows_per_pass < plan.rows_per_pass ? n_kv - r * plan.rows_per_pass
                                                                              : plan.rows_per_pass;
            vk_attention_pass pass = vk_attention_pass_make(d, &plan, tokens, rows);
            uint32_t seen = d->visible < rows ? d->visible : rows;
            uint64_t pairs = (uint64_t)tokens * d->n_heads;
            uint64_t floats = (uint64_t)pass.state_floats + pass.partial_floats;
            bool ok = pass.n_splits >= 1 && (uint64_t)pass.n_splits * pass.rows_per_split >= seen &&
                      pass.state_floats == (plan.n_row_passes > 1 ? 2 * pairs : 0) &&
                      pass.partial_floats == (pass.n_splits > 1 ? pairs * pass.n_splits * (d->head_dim + 2) : 0) &&
                      (floats == 0 || fits(4 * floats, d->max_range, 0));
            CHECK(ok, "%s: pass %u/%u (%u tokens, %u rows): %u splits of %u, %u + %u floats", what, t, r, tokens,
                  rows, pass.n_splits, pass.rows_per_split, pass.state_floats, pass.partial_floats);
            if (4 * floats > workspace)
                workspace = 4 * floats;
        }
    }
    CHECK(plan.workspace_bytes == workspace, "%s: workspace %llu, the passes need %llu", what,
          (unsigned long long)plan.workspace_bytes, (unsigned long long)workspace);
    uint64_t bound = vk_attention_workspace_bound(d->n_heads, d->head_dim, d->n_tok, d->n_kv ? d->n_kv : 1);
    CHECK(plan.workspace_bytes <= bound, "%s: workspace %llu above the planner's bound %llu", what,
          (unsigned long long)plan.workspace_bytes, (unsigned long long)bound);
}

static void test_attention(void)
{
    static const uint32_t head_dims[] = {64, 128, 80};
    static const uint32_t heads[][2] = {{8, 2}, {32, 8}, {4, 1}}; /* query heads, kv heads */
    static const uint32_t toks[] = {1, 3, 70, 512};
    static const uint32_t n_kvs[] = {1, 33, 700, 40000, 300000};
    static const uint64_t limits[] = {65536, 1u << 20, 128u << 20};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t c = 0; c < sizeof toks / sizeof toks[0]; c++)
                for (size_t e = 0; e < sizeof n_kvs / sizeof n_kvs[0]; e++)
                    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++)
                        for (int f16 = 0; f16 < 2; f16++)
                            for (int capped = 0; capped < 2; capped++) {
                                uint64_t row = (uint64_t)head_dims[a] * heads[b][1] * (f16 ? 2 : 4);
                                uint32_t window = c == 2 ? 97 : 0;
                                vk_attention_dims d = {
                                    .head_dim = head_dims[a], .n_heads = heads[b][0], .n_tok = toks[c],
                                    .n_kv = n_kvs[e],
                                    .visible = window && window < n_kvs[e] ? window : n_kvs[e],
                                    .k_row_stride = row, .k_row_bytes = row, .v_row_stride = row, .v_row_bytes = row,
                                    .max_range = limits[l], .alignment = 64,
                                    .max_rows_per_pass = capped ? vk_attention_rows_within_loop_budget(
                                                                      head_dims[a], 64, VK_LLVMPIPE_LOOP_ITERATIONS)
                                                                : 0,
                                };
                                check_attention(&d);
                            }
    /* limits a few bytes apart, so that every boundary (the state pushing the
     * partials over, a row or token more or less) is met somewhere */
    static const uint32_t sweep_heads[][2] = {{16, 1}, {4, 1}, {8, 2}};
    for (size_t b = 0; b < 3; b++)
        for (uint64_t limit = 32768; limit <= 132000; limit += 52)
            for (int f16 = 0; f16 < 2; f16++) {
                uint64_t row = 128ull * sweep_heads[b][1] * (f16 ? 2 : 4);
                vk_attention_dims d = {.head_dim = 128, .n_heads = sweep_heads[b][0], .n_tok = 1, .n_kv = 3001,
                                       .visible = 3001, .k_row_stride = row, .k_row_bytes = row,
                                       .v_row_stride = row, .v_row_bytes = row, .max_range = limit, .alignment = 16};
                check_attention(&d);
            }
    /* the previous planner figure: decode of 32 heads over 4096 rows, one pass */
    vk_attention_dims decode = {.head_dim = 128, .n_heads = 32, .n_tok = 1, .n_kv = 4096, .visible = 4096,
                                .k_row_stride = 2048, .k_row_bytes = 2048, .v_row_stride = 2048, .v_row_bytes = 2048,
                                .max_range = 128u << 20, .alignment = 16};
    vk_attention_plan plan;
    CHECK(vk_attention_plan_make(&decode, &plan) && plan.n_row_passes == 1 && plan.n_token_passes == 1 &&
              plan.workspace_bytes == 32ull * 8 * 130 * 4,
          "32 heads x 4096 rows: one pass, 8 splits of partials");
    /* a 2.2M-token f16 cache of 8 kv heads x 128: rows of 2 KiB, 65535 of them per 128 MiB binding */
    vk_attention_dims longest = decode;
    longest.n_heads = 32;
    longest.n_kv = longest.visible = 2200000;
    longest.k_row_stride = longest.k_row_bytes = longest.v_row_stride = longest.v_row_bytes = 2048;
    CHECK(vk_attention_plan_make(&longest, &plan) && plan.n_row_passes == 34 && plan.rows_per_pass == 65535,
          "2.2M rows of 2 KiB: 34 passes (%u of %u rows)", plan.n_row_passes, plan.rows_per_pass);
}

/* Walks an OP_MATMUL_ID plan as vulkan_ops_moe.c does: every binding fits,
 * every (token, output row, expert) is covered once, the expert table stays
 * within its cap and the workgroup counts within Vulkan's. */
static void check_matmul_id(const vk_matmul_id_dims *d, bool feasible)
{
    vk_matmul_id_plan plan;
    bool made = vk_matmul_id_plan_make(d, &plan);
    CHECK(made == feasible, "matmul_id %llu x %llu x %llu experts at %llu bytes: plan %s", (unsigned long long)d->n_in,
          (unsigned long long)d->n_out, (unsigned long long)d->n_expert, (unsigned long long)d->max_range,
          made ? "made" : "refused");
    if (!made)
        return;
    uint64_t expert_bytes = d->n_out * d->row_bytes, covered = 0;
    bool ok = plan.tokens_per_pass > 0 && plan.rows_per_dispatch > 0;
    for (uint64_t t0 = 0; ok && t0 < d->n_tok; t0 += plan.tokens_per_pass) {
        uint64_t tc = d->n_tok - t0 < plan.tokens_per_pass ? d->n_tok - t0 : plan.tokens_per_pass;
        uint64_t pairs = d->k * tc;
        ok = fits(4 * pairs, d->max_range, d->alignment) && fits(4 * d->n_in * d->k_x * tc, d->max_range, d->alignment) &&
             vk_moe_table_bytes(d->n_expert, tc) <= VK_MOE_TABLE_MAX_BYTES &&
             fits(vk_moe_table_bytes(d->n_expert, tc), d->max_range, 0) && pairs <= VK_MOE_MAX_PAIRS_PER_PASS;
        for (uint64_t r0 = 0; ok && r0 < d->n_out; r0 += plan.rows_per_dispatch) {
            uint64_t rc = d->n_out - r0 < plan.rows_per_dispatch ? d->n_out - r0 : plan.rows_per_dispatch;
            ok = fits(4 * (d->n_out * (pairs - 1) + rc), d->max_range, d->alignment);
            uint32_t per = vk_matmul_id_experts_per_dispatch(expert_bytes, rc, d->row_bytes, (uint32_t)tc, d->max_range,
                                                             d->alignment);
            ok = ok && per > 0;
            for (uint64_t e0 = 0; ok && e0 < d->n_expert; e0 += per) {
                uint64_t ec = d->n_expert - e0 < per ? d->n_expert - e0 : per;
                vk_matmul_id_params params = {.matmul = {.row_count = (uint32_t)rc}, .expert_count = (uint32_t)ec,
                                              .list_stride = (uint32_t)tc, .n_used = (uint32_t)d->k};
                uint32_t groups[3];
                ok = fits((ec - 1) * expert_bytes + rc * d->row_bytes, d->max_range, d->alignment) &&
                     vk_matmul_id_groups(&params, VK_MATMUL_VECTOR, groups) && groups[2] > 0 &&
                     vk_matmul_id_groups(&params, VK_MATMUL_TILED, groups) && groups[2] > 0;
                covered += tc * rc * ec;
            }
        }
    }
    CHECK(ok && covered == d->n_tok * d->n_out * d->n_expert,
          "matmul_id %llu x %llu x %llu experts, %llu tokens at %llu bytes: bindings fit and cover once",
          (unsigned long long)d->n_in, (unsigned long long)d->n_out, (unsigned long long)d->n_expert,
          (unsigned long long)d->n_tok, (unsigned long long)d->max_range);
}

/* Walks an OP_MOE_SUM plan: bindings fit, each (element, slot, token) is summed once. */
static void check_moe_sum(uint64_t n, uint64_t k, uint64_t n_tok, uint64_t max_range, uint64_t alignment)
{
    vk_moe_sum_plan plan;
    bool ok = vk_moe_sum_plan_make(n, k, max_range, alignment, &plan) && plan.tokens && plan.slots && plan.elements;
    uint64_t covered = 0;
    for (uint64_t t0 = 0; ok && t0 < n_tok; t0 += plan.tokens) {
        uint64_t tc = n_tok - t0 < plan.tokens ? n_tok - t0 : plan.tokens;
        for (uint64_t j0 = 0; ok && j0 < k; j0 += plan.slots) {
            uint64_t sc = k - j0 < plan.slots ? k - j0 : plan.slots;
            for (uint64_t i0 = 0; ok && i0 < n; i0 += plan.elements) {
                uint64_t ic = n - i0 < plan.elements ? n - i0 : plan.elements;
                uint64_t last_column = (tc - 1) * k + (sc - 1);
                ok = fits(4 * (last_column * n + ic), max_range, alignment) &&
                     fits(4 * (last_column + 1), max_range, alignment) &&
                     fits(4 * ((tc - 1) * n + ic), max_range, alignment);
                covered += tc * sc * ic;
            }
        }
    }
    CHECK(ok && covered == n * k * n_tok, "moe_sum [%llu, %llu, %llu] at %llu bytes: bindings fit and cover once",
          (unsigned long long)n, (unsigned long long)k, (unsigned long long)n_tok, (unsigned long long)max_range);
}

static void test_moe(void)
{
    const uint64_t limits[] = {4096, 65536, 128ull << 20};
    /* Mixtral-like (8 experts, k 2, Q4_K rows of 4096), Qwen3-MoE-like
     * (128 experts, k 8, Q8_0 rows of 2048), an odd-sized MXFP4 expert */
    vk_matmul_id_dims shapes[] = {
        {.n_in = 4096, .n_out = 1024, .n_expert = 8, .k = 2, .k_x = 1, .n_tok = 1, .row_bytes = 2304},
        {.n_in = 4096, .n_out = 1024, .n_expert = 8, .k = 2, .k_x = 1, .n_tok = 300, .row_bytes = 2304},
        {.n_in = 2048, .n_out = 768, .n_expert = 128, .k = 8, .k_x = 8, .n_tok = 1, .row_bytes = 2176},
        {.n_in = 2048, .n_out = 768, .n_expert = 128, .k = 8, .k_x = 8, .n_tok = 700, .row_bytes = 2176},
        {.n_in = 4064, .n_out = 9, .n_expert = 3, .k = 2, .k_x = 1, .n_tok = 2, .row_bytes = 2159},
    };
    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            vk_matmul_id_dims d = shapes[i];
            d.max_range = limits[l];
            d.alignment = 16;
            /* refused only when one token's x (Qwen3-like: 8 x 2048 floats) does not fit */
            check_matmul_id(&d, fits(4 * d.n_in * d.k_x, d.max_range, d.alignment));
        }
    /* a weight row larger than the binding is refused */
    vk_matmul_id_dims wide = {.n_in = 4096, .n_out = 4, .n_expert = 2, .k = 1, .k_x = 1, .n_tok = 1,
                              .row_bytes = 8192, .max_range = 4096, .alignment = 16};
    check_matmul_id(&wide, false);
    /* decode at the device's own limit is one pass, one row range, all experts in one binding */
    vk_matmul_id_plan plan;
    vk_matmul_id_dims decode = shapes[0];
    decode.max_range = 128ull << 20;
    decode.alignment = 16;
    CHECK(vk_matmul_id_plan_make(&decode, &plan) && plan.tokens_per_pass == 1 && plan.rows_per_dispatch == 1024,
          "Mixtral-like decode: one pass over all 1024 rows");
    const uint64_t sums[][3] = {{67, 2, 5}, {2048, 8, 1}, {9000, 2, 3}, {20000, 3, 1}, {33, 1, 3}, {4096, 8, 300}};
    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++)
        for (size_t i = 0; i < sizeof sums / sizeof sums[0]; i++)
            check_moe_sum(sums[i][0], sums[i][1], sums[i][2], limits[l], 16);
}

int main(void)
{
    test_knob();
    test_rows_per_binding();
    test_elementwise();
    test_copy();
    test_loop_budget();
    test_attention();
    test_moe();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("vulkan split plans: all cover their work within the binding limit\n");
    return 0;
}
