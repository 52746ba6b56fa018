/* How the Vulkan ops cut their work so that every storage-buffer binding
 * stays within the device's binding limit (maxStorageBufferRange, 128 MiB on
 * lavapipe, or lower with STRATA_VULKAN_MAX_BIND_KIB). A binding starts at a
 * multiple of minStorageBufferOffsetAlignment at or below the first byte it
 * needs (vk_bind_range), so up to alignment - 1 bytes of slack precede the
 * data, and its range is rounded up to whole 32-bit words (3 more bytes).
 *
 * Everything here is pure arithmetic (no Vulkan call): the ops in
 * vulkan_ops_*.c, the workspace bound the planner asks for (vulkan_device.c)
 * and tests/test_vulkan_split_plan.c all use these functions, so what is
 * planned, estimated and checked is what runs. */
#ifndef STRATA_VULKAN_SPLIT_H
#define STRATA_VULKAN_SPLIT_H

#include <stdbool.h>
#include <stdint.h>

#include "vulkan_push.h"

/* STRATA_VULKAN_MAX_BIND_KIB: the smallest and largest values accepted. */
#define VK_BIND_LIMIT_MIN_KIB 4u
#define VK_BIND_LIMIT_MAX_KIB (4u << 20) /* 4 GiB: above any device's limit */

/* Pure: parses STRATA_VULKAN_MAX_BIND_KIB, a whole number of KiB from
 * VK_BIND_LIMIT_MIN_KIB to VK_BIND_LIMIT_MAX_KIB; *bytes receives it in
 * bytes. NULL or empty: *bytes = 0 (no knob). Returns false on anything else
 * (signs, spaces, units, fractions, out of range). */
static inline bool vk_bind_limit_parse(const char *text, uint64_t *bytes)
{
    *bytes = 0;
    if (!text || !text[0])
        return true;
    uint64_t kib = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        kib = kib * 10 + (uint64_t)(*c - '0');
        if (kib > VK_BIND_LIMIT_MAX_KIB)
            return false;
    }
    if (kib < VK_BIND_LIMIT_MIN_KIB)
        return false;
    *bytes = kib << 10;
    return true;
}

/* Pure: the binding limit of a device: its maxStorageBufferRange, lowered
 * to the knob's bytes when those are fewer (0: no knob). */
static inline uint64_t vk_bind_limit(uint64_t max_storage_buffer_range, uint64_t knob_bytes)
{
    return knob_bytes && knob_bytes < max_storage_buffer_range ? knob_bytes : max_storage_buffer_range;
}

/* Mesa's llvmpipe (lavapipe) ends the loops of a shader invocation after
 * this many iterations of all its loops together (its
 * LP_MAX_TGSI_LOOP_ITERATIONS), silently: attention over too many rows per
 * workgroup then skips rows. */
#define VK_LLVMPIPE_LOOP_ITERATIONS 65535u

/* Pure: the most cache rows one workgroup of shaders/attention.comp (with
 * local_size threads) may scan within a budget of loop iterations per
 * invocation (0: no budget, no cap). Counted from the shader: per chunk of
 * local_size rows, the chunk loop, the q.k loop (head_dim), the max and sum
 * loops (local_size each) and the p.v loops ((dims per thread + 1) x
 * (local_size + 1)); plus up to 64 iterations outside the chunk loop. */
static inline uint32_t vk_attention_rows_within_loop_budget(uint32_t head_dim, uint32_t local_size, uint32_t budget)
{
    if (budget == 0 || local_size == 0)
        return UINT32_MAX;
    uint64_t dims_per_thread = (head_dim + local_size - 1) / local_size;
    uint64_t per_chunk = 1 + (uint64_t)head_dim + 2ull * local_size + (dims_per_thread + 1) * (local_size + 1ull);
    uint64_t outside = 64;
    if (budget <= outside + per_chunk)
        return local_size;
    uint64_t rows = (budget - outside) / per_chunk * local_size;
    return rows > UINT32_MAX ? UINT32_MAX : (uint32_t)rows;
}

/* Pure: the bytes a binding may lose before its data (alignment slack) and
 * after it (rounding to whole words). */
static inline uint64_t vk_binding_slack(uint64_t alignment)
{
    return (alignment ? alignment - 1 : 0) + 3;
}

/* Pure: how many rows, spaced stride bytes apart, one binding can hold when
 * the last row occupies last_bytes (a row's own bytes: at most stride for
 * packed rows). 0 when not even one row fits; UINT32_MAX at most. A stride
 * of 0 (every row the same bytes) fits any count. */
static inline uint32_t vk_strided_rows_per_binding(uint64_t stride, uint64_t last_bytes, uint64_t max_range,
                                                   uint64_t alignment)
{
    uint64_t slack = vk_binding_slack(alignment);
    if (last_bytes == 0 || max_range < slack || max_range - slack < last_bytes)
        return 0;
    if (stride == 0)
        return UINT32_MAX;
    uint64_t rows = (max_range - slack - last_bytes) / stride + 1;
    return rows > UINT32_MAX ? UINT32_MAX : (uint32_t)rows;
}

/* Pure: how many packed rows of row_bytes one binding can hold (0 when not
 * even one fits, or row_bytes is 0). */
static inline uint32_t vk_rows_per_binding(uint64_t row_bytes, uint64_t max_range, uint64_t alignment)
{
    return vk_strided_rows_per_binding(row_bytes, row_bytes, max_range, alignment);
}

static inline uint32_t vk_min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* --- element-wise ops (add, mul, scale, swiglu, geglu) -------------------------- */

/* One dispatch of an element-wise op over elements [begin, begin + count) of
 * src0 and dst. src1 is bound from its element b_begin and read at
 * (i % b_period) for the dispatch's element i (b_period >= count: read
 * straight). */
typedef struct vk_elementwise_piece {
    uint32_t begin, count;
    uint32_t b_begin, b_period;
} vk_elementwise_piece;

/* Pure: the piece of an element-wise op over n elements that starts at
 * element begin, when one binding holds at most fit elements (fit >= 1) and
 * src1 repeats every period elements (period == n: not broadcast). A
 * broadcast row that fits a binding is bound whole and pieces start on row
 * boundaries; a row too long for one binding is cut like src0, and pieces
 * then stay within one row. */
static inline vk_elementwise_piece vk_elementwise_next(uint32_t n, uint32_t period, uint32_t fit, uint32_t begin)
{
    vk_elementwise_piece piece = {.begin = begin};
    uint32_t left = n - begin;
    if (period >= n) { /* src1 has the shape of src0 */
        piece.count = vk_min_u32(left, fit);
        piece.b_begin = begin;
        piece.b_period = piece.count;
    } else if (period <= fit) { /* whole rows, src1 bound whole */
        uint32_t rows = fit / period;
        piece.count = vk_min_u32(left, rows * period);
        piece.b_begin = 0;
        piece.b_period = period;
    } else { /* within one row */
        uint32_t in_row = begin % period;
        piece.count = vk_min_u32(vk_min_u32(left, fit), period - in_row);
        piece.b_begin = in_row;
        piece.b_period = piece.count;
    }
    return piece;
}

/* --- strided copies ----------------------------------------------------------------- */

/* Pure: bytes from the first to one past the last element of a strided view
 * of ne elements (strides nb, elements of element_bytes); 0 when empty. */
static inline uint64_t vk_strided_span(const int64_t ne[4], const uint64_t nb[4], uint64_t element_bytes)
{
    uint64_t last = 0;
    for (int d = 0; d < 4; d++) {
        if (ne[d] <= 0)
            return 0;
        last += (uint64_t)(ne[d] - 1) * nb[d];
    }
    return last + element_bytes;
}

/* How a copy is cut: into slabs that keep dims below dim whole, take up to
 * chunk indices of dim, and one index of each dim above it. */
typedef struct vk_copy_split {
    int dim;
    uint32_t chunk;
} vk_copy_split;

/* Pure: the most indices of dim d a slab may take (lower dims whole) so that
 * its span in a view of strides nb fits a binding; 0 when one index does
 * not. */
static inline uint32_t vk_copy_slab_fit(const int64_t ne[4], const uint64_t nb[4], uint64_t element_bytes, int d,
                                        uint64_t max_range, uint64_t alignment)
{
    int64_t slab[4];
    for (int k = 0; k < 4; k++)
        slab[k] = k < d ? ne[k] : 1;
    uint64_t one = vk_strided_span(slab, nb, element_bytes);
    uint32_t fit = vk_strided_rows_per_binding(nb[d], one, max_range, alignment);
    return ne[d] < (int64_t)fit ? (uint32_t)ne[d] : fit;
}

/* Pure: the split of a copy of ne elements from a view of strides src_nb
 * (src_bytes per element) into one of strides dst_nb (dst_bytes each): the
 * highest dim at which one index of both views fits a binding, and as many
 * of its indices as fit. Returns false when not even one element fits. */
static inline bool vk_copy_split_choose(const int64_t ne[4], const uint64_t src_nb[4], uint64_t src_bytes,
                                        const uint64_t dst_nb[4], uint64_t dst_bytes, uint64_t max_range,
                                        uint64_t alignment, vk_copy_split *out)
{
    for (int d = 3; d >= 0; d--) {
        uint32_t src_fit = vk_copy_slab_fit(ne, src_nb, src_bytes, d, max_range, alignment);
        uint32_t dst_fit = vk_copy_slab_fit(ne, dst_nb, dst_bytes, d, max_range, alignment);
        uint32_t fit = vk_min_u32(src_fit, dst_fit);
        if (fit > 0) {
            *out = (vk_copy_split){.dim = d, .chunk = fit};
            return true;
        }
    }
    return false;
}

/* --- attention ------------------------------------------------------------------------ */

/* The shape of one attention op, as the split needs it. */
typedef struct vk_attention_dims {
    uint32_t head_dim, n_heads, n_tok;
    uint32_t n_kv;                 /* cache rows scanned: [0, n_kv) */
    uint32_t visible;              /* most rows one query sees (sliding window, or n_kv) */
    uint64_t k_row_stride, k_row_bytes; /* bytes between cache rows, bytes of one row's kv heads */
    uint64_t v_row_stride, v_row_bytes;
    uint64_t max_range, alignment; /* the binding limit */
    uint32_t max_rows_per_pass;    /* 0: none; else rows one workgroup may scan (the driver's loop budget) */
} vk_attention_dims;

/* Attention runs in passes: query tokens in groups of tokens_per_pass (q,
 * dst and positions of a group fit one binding each), and for each group the
 * cache rows in ranges of rows_per_pass (K and V of a range fit one binding
 * each). When there is more than one range, every pass merges its result
 * into dst with an online softmax: dst holds the normalized output so far and
 * the workspace the running (max, sum) of each (token, head) pair, the
 * "state". Inside a pass, few pairs over many rows split the rows further
 * (split-KV, vk_attention_splits) into partials that the combine pass
 * merges. */
typedef struct vk_attention_plan {
    uint32_t tokens_per_pass, n_token_passes;
    uint32_t rows_per_pass, n_row_passes;
    uint64_t workspace_bytes; /* the most any pass needs: state then partials */
} vk_attention_plan;

/* One pass's split-KV and where its state and partials sit in the
 * workspace (in floats). */
typedef struct vk_attention_pass {
    uint32_t n_splits, rows_per_split;
    uint32_t state_floats;   /* 2 per pair when the plan has several row passes, else 0 */
    uint32_t partial_floats; /* (head_dim + 2) per pair and split when n_splits > 1, else 0 */
} vk_attention_pass;

/* Pure: the split-KV of a pass of tokens query tokens over rows cache rows
 * (rows visible to each query at most: min(visible, rows)), with the state
 * when the plan has several row passes; the splits are capped so state and
 * partials fit one binding. */
static inline vk_attention_pass vk_attention_pass_make(const vk_attention_dims *d, const vk_attention_plan *plan,
                                                       uint32_t tokens, uint32_t rows)
{
    vk_attention_pass pass = {0};
    uint64_t pairs = (uint64_t)tokens * d->n_heads;
    uint32_t seen = vk_min_u32(d->visible, rows);
    pass.state_floats = plan->n_row_passes > 1 ? (uint32_t)(2 * pairs) : 0;
    pass.n_splits = vk_attention_splits(pairs > UINT32_MAX ? UINT32_MAX : (uint32_t)pairs, seen,
                                        &pass.rows_per_split);
    if (pass.n_splits > 1) {
        uint64_t room = d->max_range - vk_binding_slack(0) - 4ull * pass.state_floats;
        uint64_t per_split = pairs * (d->head_dim + 2ull) * 4ull;
        uint64_t fit = room / per_split;
        if (fit < pass.n_splits) {
            pass.n_splits = fit > 1 ? (uint32_t)fit : 1;
            pass.rows_per_split = (seen + pass.n_splits - 1) / pass.n_splits;
            if (pass.rows_per_split == 0)
                pass.rows_per_split = 1;
        }
    }
    if (pass.n_splits > 1)
        pass.partial_floats = (uint32_t)(pairs * pass.n_splits * (d->head_dim + 2u));
    return pass;
}

/* Pure: the plan of an attention op. Returns false when one cache row, or
 * one query token's q, dst and state, does not fit a binding. */
static inline bool vk_attention_plan_make(const vk_attention_dims *d, vk_attention_plan *out)
{
    vk_attention_plan plan = {0};
    uint32_t rows = vk_min_u32(vk_strided_rows_per_binding(d->k_row_stride, d->k_row_bytes, d->max_range, d->alignment),
                               vk_strided_rows_per_binding(d->v_row_stride, d->v_row_bytes, d->max_range, d->alignment));
    if (rows == 0)
        return false;
    if (d->max_rows_per_pass)
        rows = vk_min_u32(rows, d->max_rows_per_pass);
    uint32_t n_kv = d->n_kv ? d->n_kv : 1;
    plan.rows_per_pass = vk_min_u32(rows, n_kv);
    plan.n_row_passes = (n_kv + plan.rows_per_pass - 1) / plan.rows_per_pass;
    uint64_t token_bytes = (uint64_t)d->head_dim * d->n_heads * 4;
    uint32_t tokens = vk_min_u32(vk_rows_per_binding(token_bytes, d->max_range, d->alignment),
                                 vk_rows_per_binding(4, d->max_range, d->alignment));
    if (plan.n_row_passes > 1) /* the state binding starts at the workspace's offset 0 */
        tokens = vk_min_u32(tokens, vk_rows_per_binding(8ull * d->n_heads, d->max_range, 0));
    if (tokens == 0)
        return false;
    uint32_t n_tok = d->n_tok ? d->n_tok : 1;
    plan.tokens_per_pass = vk_min_u32(tokens, n_tok);
    plan.n_token_passes = (n_tok + plan.tokens_per_pass - 1) / plan.tokens_per_pass;
    /* the largest need is among the full and the last (shorter) passes */
    uint32_t token_counts[2] = {plan.tokens_per_pass, n_tok - (plan.n_token_passes - 1) * plan.tokens_per_pass};
    uint32_t row_counts[2] = {plan.rows_per_pass, n_kv - (plan.n_row_passes - 1) * plan.rows_per_pass};
    for (int t = 0; t < 2; t++)
        for (int r = 0; r < 2; r++) {
            vk_attention_pass pass = vk_attention_pass_make(d, &plan, token_counts[t], row_counts[r]);
            uint64_t bytes = 4ull * ((uint64_t)pass.state_floats + pass.partial_floats);
            if (bytes > plan.workspace_bytes)
                plan.workspace_bytes = bytes;
        }
    *out = plan;
    return true;
}

/* Pure: an upper bound of vk_attention_plan_make's workspace_bytes for every
 * op of up to max_tokens tokens of n_heads heads over up to n_ctx rows,
 * whatever the binding limit: the state of every pair, plus the largest
 * split-KV partials (a pass never has more pairs or rows than that, the
 * splits only grow with the rows and the limit only removes splits). This is
 * what the planner reserves (vulkan_device.c); test_vulkan_split_plan checks
 * the bound against plans. */
static inline uint64_t vk_attention_workspace_bound(int64_t n_heads, int64_t head_dim, int64_t max_tokens,
                                                    int64_t n_ctx)
{
    if (n_heads <= 0 || head_dim <= 0 || n_ctx <= 0 || max_tokens <= 0)
        return 0;
    uint64_t rows = n_ctx > UINT32_MAX ? UINT32_MAX : (uint64_t)n_ctx;
    uint64_t worst_partials = 0;
    for (int64_t tokens = 1; tokens <= max_tokens; tokens++) {
        uint64_t pairs = (uint64_t)(n_heads * tokens);
        if (pairs >= 256) /* vk_attention_splits: one split from here on */
            break;
        uint32_t rows_per_split;
        uint32_t splits = vk_attention_splits((uint32_t)pairs, (uint32_t)rows, &rows_per_split);
        uint64_t bytes = splits > 1 ? pairs * splits * (uint64_t)(head_dim + 2) * 4 : 0;
        if (bytes > worst_partials)
            worst_partials = bytes;
    }
    uint64_t state = (uint64_t)max_tokens * (uint64_t)n_heads * 8;
    return state + worst_partials;
}

#endif
