/* The work items of the tiled attention (cpu_attention.h): the tiling
 * choice, and one item from its queries to its outputs.
 *
 * Hidden rows: the op contract lets cache rows that no query sees hold
 * anything (NaN in the tests). An item converts a block row only when one of
 * its own queries sees it and writes zeros in the other columns, so the
 * kernels only ever meet finite values; scores a row must not see are
 * replaced by -inf (selection, never a multiplication by zero) and their
 * weights come out as exactly 0. */
#include <math.h>
#include <string.h>

#include "cpu_attention.h"

#define TARGET_ROWS_PER_TILE 128
#define TARGET_BLOCK_FLOATS 8192 /* K plus V of one block in f32: 64 KiB */
#define MIN_KEYS_PER_BLOCK 16
#define MAX_KEYS_PER_BLOCK 512
#define MIN_ITEMS_PER_THREAD 4
#define SCRATCH_ALIGN_FLOATS 16 /* 64 bytes */

static int64_t round_up(int64_t x, int64_t step) { return (x + step - 1) / step * step; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

cpu_attention_tiling cpu_attention_tiling_choose(int64_t head_dim, int64_t group, int64_t n_tok,
                                                 int64_t n_kv_heads, int n_threads)
{
    cpu_attention_tiling tiling;
    if (n_tok < 1)
        n_tok = 1;
    if (group < 1)
        group = 1;
    int64_t tokens = min64(max64(TARGET_ROWS_PER_TILE / group, 1), n_tok);
    /* fewer tokens per tile while that gives the threads too little to share */
    while (tokens > 1 && n_kv_heads * ((n_tok + tokens - 1) / tokens) < (int64_t)MIN_ITEMS_PER_THREAD * n_threads)
        tokens = (tokens + 1) / 2;
    int64_t keys = TARGET_BLOCK_FLOATS / (head_dim > 0 ? head_dim : 1);
    keys = max64(MIN_KEYS_PER_BLOCK, min64(MAX_KEYS_PER_BLOCK, keys)) / CPU_ATTENTION_KEY_STEP * CPU_ATTENTION_KEY_STEP;
    tiling.tokens_per_tile = tokens;
    tiling.rows_per_tile = tokens * group;
    tiling.keys_per_block = keys;
    tiling.n_tiles = (n_tok + tokens - 1) / tokens;
    return tiling;
}

/* The per-thread scratch of one item, carved from one slice. */
typedef struct item_scratch {
    float *q;        /* [rows][head_dim], scaled */
    float *out;      /* [rows][head_dim], unnormalized */
    float *row_max;  /* [rows] */
    float *row_sum;  /* [rows] */
    float *kt;       /* [head_dim][block] */
    float *v;        /* [block][head_dim] */
    float *s;        /* [CPU_ATTENTION_ROWS][block] */
    float *k_row;    /* [head_dim]: one K row in f32 before it is transposed */
    int64_t *first;  /* [tokens]: first visible cache row of each token */
    int64_t *last;   /* [tokens]: one past the last */
    int64_t *cover;  /* [block + 1]: how many of the item's tokens see each column */
} item_scratch;

/* Lays the regions out from base (NULL: only counts); returns the bytes. */
static size_t carve(const cpu_attention_tiling *tiling, int64_t head_dim, void *base, item_scratch *out)
{
    int64_t rows = tiling->rows_per_tile, block = tiling->keys_per_block, tokens = tiling->tokens_per_tile;
    int64_t f32_counts[] = {rows * head_dim, rows * head_dim, rows, rows, head_dim * block, block * head_dim,
                            CPU_ATTENTION_ROWS * block, head_dim};
    float **f32_regions[] = {&out->q, &out->out, &out->row_max, &out->row_sum, &out->kt, &out->v, &out->s, &out->k_row};
    int64_t i64_counts[] = {tokens, tokens, block + 1};
    int64_t **i64_regions[] = {&out->first, &out->last, &out->cover};
    size_t used = 0;
    for (size_t i = 0; i < sizeof f32_counts / sizeof f32_counts[0]; i++) {
        *f32_regions[i] = base ? (float *)((char *)base + used) : NULL;
        used += (size_t)round_up(f32_counts[i], SCRATCH_ALIGN_FLOATS) * sizeof(float);
    }
    for (size_t i = 0; i < sizeof i64_counts / sizeof i64_counts[0]; i++) {
        *i64_regions[i] = base ? (int64_t *)((char *)base + used) : NULL;
        used += (size_t)round_up(i64_counts[i], SCRATCH_ALIGN_FLOATS / 2) * sizeof(int64_t);
    }
    return used;
}

size_t cpu_attention_scratch_bytes(const cpu_attention_tiling *tiling, int64_t head_dim)
{
    item_scratch unused;
    return carve(tiling, head_dim, NULL, &unused);
}

/* Cache rows [j0, j0 + len) of kv head g into the block buffers: columns seen
 * by one of the item's tokens are converted, the others (up to the next
 * multiple of the key step) are zero. Returns whether any column is seen. */
static bool load_block(const cpu_attention_job *job, const item_scratch *sc, int64_t g, int64_t n_tokens, int64_t j0,
                       int64_t len)
{
    int64_t hd = job->head_dim, block = job->tiling.keys_per_block, padded = round_up(len, CPU_ATTENTION_KEY_STEP);
    int64_t *cover = sc->cover; /* after the prefix sum: tokens that see column c */
    memset(cover, 0, (size_t)(padded + 1) * sizeof *cover);
    for (int64_t t = 0; t < n_tokens; t++) {
        int64_t a = max64(sc->first[t], j0) - j0, b = min64(sc->last[t], j0 + len) - j0;
        if (a < b) {
            cover[a]++;
            cover[b]--;
        }
    }
    int64_t seen_columns = 0;
    for (int64_t c = 0; c < padded; c++) {
        cover[c] += c > 0 ? cover[c - 1] : 0;
        seen_columns += cover[c] > 0;
    }
    if (seen_columns == 0)
        return false;
    const char *k_rows = job->k + (size_t)j0 * job->k_row_stride + (size_t)g * job->k_head_stride;
    const char *v_rows = job->v + (size_t)j0 * job->v_row_stride + (size_t)g * job->v_head_stride;
    bool k_f16 = job->k_dtype == DTYPE_F16;
    for (int64_t c8 = 0; c8 < padded; c8 += CPU_ATTENTION_KEY_STEP) {
        bool all_seen = true;
        for (int64_t c = c8; c < c8 + CPU_ATTENTION_KEY_STEP; c++)
            all_seen = all_seen && cover[c] > 0;
        if (all_seen) /* the common case: eight rows transposed at once */
            job->kernels->k_columns8(k_rows + (size_t)c8 * job->k_row_stride, job->k_row_stride, k_f16, hd,
                                     sc->kt + c8, block);
        for (int64_t c = c8; c < c8 + CPU_ATTENTION_KEY_STEP; c++) {
            float *v_col = sc->v + c * hd;
            if (cover[c] == 0) {
                for (int64_t d = 0; d < hd; d++)
                    sc->kt[d * block + c] = 0.0f;
                memset(v_col, 0, (size_t)hd * sizeof(float));
                continue;
            }
            const char *v_row = v_rows + (size_t)c * job->v_row_stride;
            if (job->v_dtype == DTYPE_F16)
                job->kernels->f16_to_f32((const uint16_t *)v_row, v_col, hd);
            else
                memcpy(v_col, v_row, (size_t)hd * sizeof(float));
            if (all_seen)
                continue;
            const char *k_row = k_rows + (size_t)c * job->k_row_stride;
            const float *k_f32 = (const float *)k_row;
            if (k_f16) {
                job->kernels->f16_to_f32((const uint16_t *)k_row, sc->k_row, hd);
                k_f32 = sc->k_row;
            }
            for (int64_t d = 0; d < hd; d++)
                sc->kt[d * block + c] = k_f32[d];
        }
    }
    return true;
}

/* Rows [r0, r0 + n_rows) of the item against one loaded block. */
static void rows_against_block(const cpu_attention_job *job, const item_scratch *sc, int64_t r0, int n_rows,
                               int64_t j0, int64_t len)
{
    const cpu_attention_kernels *kernels = job->kernels;
    int64_t hd = job->head_dim, block = job->tiling.keys_per_block, group = job->group;
    /* each row's visible columns [a, b) in the block, and their union */
    int64_t a[CPU_ATTENTION_ROWS], b[CPU_ATTENTION_ROWS], lo = len, hi = 0;
    for (int i = 0; i < n_rows; i++) {
        int64_t t = (r0 + i) / group;
        a[i] = max64(sc->first[t], j0) - j0;
        b[i] = min64(sc->last[t], j0 + len) - j0;
        if (a[i] < b[i]) {
            lo = min64(lo, a[i]);
            hi = max64(hi, b[i]);
        }
    }
    if (lo >= hi)
        return;
    int64_t c0 = lo / CPU_ATTENTION_KEY_STEP * CPU_ATTENTION_KEY_STEP, c1 = round_up(hi, CPU_ATTENTION_KEY_STEP);
    kernels->scores(sc->q + r0 * hd, n_rows, hd, sc->kt, block, c0, c1, sc->s);
    float alpha[CPU_ATTENTION_ROWS];
    for (int i = 0; i < n_rows; i++) {
        float *s = sc->s + i * block;
        if (a[i] >= b[i]) { /* this row sees nothing here: keep its output as it is */
            memset(s + c0, 0, (size_t)(c1 - c0) * sizeof(float));
            alpha[i] = 1.0f;
            continue;
        }
        if (job->softcap > 0.0f)
            kernels->softcap(s + c0, c1 - c0, job->softcap);
        for (int64_t c = c0; c < a[i]; c++)
            s[c] = -INFINITY;
        for (int64_t c = b[i]; c < c1; c++)
            s[c] = -INFINITY;
        alpha[i] = kernels->softmax_step(s + c0, c1 - c0, &sc->row_max[r0 + i], &sc->row_sum[r0 + i]);
    }
    kernels->accumulate(sc->out + r0 * hd, alpha, n_rows, hd, sc->s, block, sc->v, c0, c1);
}

void cpu_attention_run_item(const cpu_attention_job *job, int64_t item, void *scratch)
{
    const cpu_attention_tiling *tiling = &job->tiling;
    item_scratch sc;
    carve(tiling, job->head_dim, scratch, &sc);
    /* items of one kv head are neighbours, so a thread's next item reads the
     * cache rows its last one left in cache; the last tiles see the most
     * rows: hand them out first */
    int64_t tile = tiling->n_tiles - 1 - item % tiling->n_tiles, g = item / tiling->n_tiles;
    int64_t t0 = tile * tiling->tokens_per_tile, n_tokens = min64(tiling->tokens_per_tile, job->n_tok - t0);
    int64_t hd = job->head_dim, group = job->group, rows = n_tokens * group;

    /* visible rows of each token: [first, last), and their span over the item */
    int64_t lo = job->n_kv, hi = 0;
    for (int64_t t = 0; t < n_tokens; t++) {
        int64_t pos = job->positions[t0 + t];
        int64_t last = min64(pos + 1, job->n_kv);
        int64_t first = job->window > 0 ? max64(pos - job->window + 1, 0) : 0;
        sc.first[t] = first;
        sc.last[t] = max64(last, first);
        if (first < sc.last[t]) {
            lo = min64(lo, first);
            hi = max64(hi, sc.last[t]);
        }
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *q = job->q + ((t0 + r / group) * job->n_heads + g * group + r % group) * hd;
        for (int64_t d = 0; d < hd; d++)
            sc.q[r * hd + d] = q[d] * job->scale;
        sc.row_max[r] = -INFINITY;
        sc.row_sum[r] = 0.0f;
    }
    memset(sc.out, 0, (size_t)(rows * hd) * sizeof(float));

    for (int64_t j0 = lo; j0 < hi; j0 += tiling->keys_per_block) {
        int64_t len = min64(tiling->keys_per_block, hi - j0);
        if (!load_block(job, &sc, g, n_tokens, j0, len))
            continue;
        for (int64_t r0 = 0; r0 < rows; r0 += CPU_ATTENTION_ROWS)
            rows_against_block(job, &sc, r0, (int)min64(CPU_ATTENTION_ROWS, rows - r0), j0, len);
    }

    /* normalize; a query that sees no row gets zeros */
    for (int64_t r = 0; r < rows; r++) {
        float *dst = job->out + ((t0 + r / group) * job->n_heads + g * group + r % group) * hd;
        float inv = sc.row_sum[r] > 0.0f ? 1.0f / sc.row_sum[r] : 0.0f;
        for (int64_t d = 0; d < hd; d++)
            dst[d] = sc.out[r * hd + d] * inv;
    }
}
