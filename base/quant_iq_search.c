/* The nearest-grid-point search of the i-quant quantizers (see
 * quant_iq_search.h). The index of one grid is built at its first use, under
 * a mutex, and never freed: a few hundred KiB for the largest grid (IQ1's
 * 2048 points over the 3^8 codes). */
#include "quant_iq_search.h"

#include <pthread.h>
#include <stdlib.h>

#include "quant_lowbit.h"

/* Candidates of a code: grid points within the code's smallest distance to
 * the grid plus this many squared level steps. 2 admits every point one step
 * further away in up to two coordinates; measured on gaussian data against
 * an exhaustive search, it finds the true nearest point for over 99 % of
 * targets, at a few dozen candidates per code. */
#ifndef NEIGHBOUR_MARGIN
#define NEIGHBOUR_MARGIN 1
#endif

typedef struct grid_source {
    const void *table; /* uint64_t points (width 8) or uint32_t (width 4) */
    int width, n_points, is_signed, n_levels;
    int levels[8];
} grid_source;

static const grid_source sources[IQ_GRID_COUNT_] = {
    [IQ_GRID_IQ2XXS] = {quant_iq2xxs_grid, 8, 256, 0, 3, {8, 25, 43}},
    [IQ_GRID_IQ2XS] = {quant_iq2xs_grid, 8, 512, 0, 3, {8, 25, 43}},
    [IQ_GRID_IQ2S] = {quant_iq2s_grid, 8, 1024, 0, 3, {8, 25, 43}},
    [IQ_GRID_IQ3XXS] = {quant_iq3xxs_grid, 4, 256, 0, 8, {4, 12, 20, 28, 36, 44, 52, 62}},
    [IQ_GRID_IQ3S] = {quant_iq3s_grid, 4, 512, 0, 8, {1, 3, 5, 7, 9, 11, 13, 15}},
    [IQ_GRID_IQ1S] = {quant_iq1s_grid, 8, 2048, 1, 3, {-1, 0, 1}},
};

static pthread_mutex_t build_mutex = PTHREAD_MUTEX_INITIALIZER;
static iq_grid grids[IQ_GRID_COUNT_];
static int grid_ready[IQ_GRID_COUNT_];

/* Coordinate j of point p of a source, as the integer it stands for. */
static int source_coord(const grid_source *src, int p, int j)
{
    const uint64_t point = src->width == 8 ? ((const uint64_t *)src->table)[p] : ((const uint32_t *)src->table)[p];
    const uint8_t byte = (uint8_t)(point >> (8 * j));
    return src->is_signed ? (int)(int8_t)byte : (int)byte;
}

static int level_index(const grid_source *src, int value)
{
    for (int k = 0; k < src->n_levels; k++)
        if (src->levels[k] == value)
            return k;
    return -1; /* not a level: the generated tables make this impossible */
}

/* Fills grid (coords and the neighbour index) from src; false when out of
 * memory (nothing is kept then). */
static int build_grid(const grid_source *src, iq_grid *grid)
{
    int n_codes = 1;
    for (int j = 0; j < src->width; j++)
        n_codes *= src->n_levels;
    float *coords = malloc(sizeof(float) * (size_t)src->n_points * (size_t)src->width);
    uint8_t *point_levels = malloc((size_t)src->n_points * (size_t)src->width);
    uint32_t *code_start = malloc(sizeof(uint32_t) * ((size_t)n_codes + 1));
    int *distance = malloc(sizeof(int) * (size_t)src->n_points);
    uint16_t *neighbours = NULL;
    if (!coords || !point_levels || !code_start || !distance)
        goto fail;
    for (int p = 0; p < src->n_points; p++) {
        for (int j = 0; j < src->width; j++) {
            const int value = source_coord(src, p, j);
            const int k = level_index(src, value);
            if (k < 0)
                goto fail;
            coords[p * src->width + j] = (float)value;
            point_levels[p * src->width + j] = (uint8_t)k;
        }
    }
    /* two passes over the codes: count the candidates, then list them */
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        total = 0;
        for (int code = 0; code < n_codes; code++) {
            int digits[8], rest = code, nearest = 1 << 30;
            for (int j = 0; j < src->width; j++, rest /= src->n_levels)
                digits[j] = rest % src->n_levels;
            for (int p = 0; p < src->n_points; p++) {
                int d = 0;
                for (int j = 0; j < src->width; j++) {
                    const int step = digits[j] - point_levels[p * src->width + j];
                    d += step * step;
                }
                distance[p] = d;
                if (d < nearest)
                    nearest = d;
            }
            code_start[code] = (uint32_t)total;
            for (int p = 0; p < src->n_points; p++) {
                if (distance[p] > nearest + NEIGHBOUR_MARGIN)
                    continue;
                if (pass == 1)
                    neighbours[total] = (uint16_t)p;
                total++;
            }
        }
        code_start[n_codes] = (uint32_t)total;
        if (pass == 0 && !(neighbours = malloc(sizeof(uint16_t) * total)))
            goto fail;
    }
    free(point_levels);
    free(distance);
    grid->width = src->width;
    grid->n_points = src->n_points;
    grid->n_levels = src->n_levels;
    for (int k = 0; k < src->n_levels; k++)
        grid->levels[k] = (float)src->levels[k];
    grid->coords = coords;
    grid->code_start = code_start;
    grid->neighbours = neighbours;
    return 1;
fail:
    free(coords);
    free(point_levels);
    free(code_start);
    free(distance);
    free(neighbours);
    return 0;
}

const iq_grid *iq_grid_get(iq_grid_id id, strata_error *err)
{
    if ((int)id < 0 || id >= IQ_GRID_COUNT_) {
        strata_fail(err, STRATA_INVALID_INPUT, "quantize: no i-quant grid %d", (int)id);
        return NULL;
    }
    pthread_mutex_lock(&build_mutex);
    if (!grid_ready[id])
        grid_ready[id] = build_grid(&sources[id], &grids[id]);
    const int ready = grid_ready[id];
    pthread_mutex_unlock(&build_mutex);
    if (!ready) {
        strata_fail(err, STRATA_OUT_OF_MEMORY, "quantize: cannot allocate the search index of an i-quant grid");
        return NULL;
    }
    return &grids[id];
}

int iq_grid_nearest(const iq_grid *grid, const float *t, const float *w, float shift, float *out_error)
{
    int code = 0, place = 1;
    for (int j = 0; j < grid->width; j++, place *= grid->n_levels) {
        const float v = t[j] - shift;
        int k = 0;
        while (k + 1 < grid->n_levels && v > 0.5f * (grid->levels[k] + grid->levels[k + 1]))
            k++;
        code += k * place;
    }
    int best = grid->neighbours[grid->code_start[code]];
    float best_error = -1.0f;
    for (uint32_t c = grid->code_start[code]; c < grid->code_start[code + 1]; c++) {
        const int p = grid->neighbours[c];
        const float *coord = grid->coords + p * grid->width;
        float e = 0.0f;
        for (int j = 0; j < grid->width; j++) {
            const float diff = t[j] - (coord[j] + shift);
            e += w[j] * diff * diff;
        }
        if (best_error < 0.0f || e < best_error) {
            best_error = e;
            best = p;
        }
    }
    *out_error = best_error;
    return best;
}
