/* Private to the i-quant quantizers: finding the grid point nearest to a
 * target vector, fast enough to try many scales per block.
 *
 * A grid's points have coordinates from a few levels (IQ2: 8, 25, 43; IQ3:
 * eight levels; IQ1: -1, 0, 1). Rounding each coordinate of a target to its
 * nearest level gives a "code" (a point of the full lattice of levels) that
 * usually is not a grid point. For every code an index built once lists the
 * grid points close to it: those within the smallest distance from the code
 * to the grid plus a margin, in units of level steps. The search then
 * weighs only those candidates against the real target; it returns the
 * true weighted nearest among them (usually the true nearest overall). */
#ifndef STRATA_QUANT_IQ_SEARCH_H
#define STRATA_QUANT_IQ_SEARCH_H

#include <stdint.h>

#include "status.h"

typedef enum iq_grid_id {
    IQ_GRID_IQ2XXS, /* 256 points of 8 coordinates */
    IQ_GRID_IQ2XS,  /* 512 x 8 */
    IQ_GRID_IQ2S,   /* 1024 x 8 */
    IQ_GRID_IQ3XXS, /* 256 x 4 */
    IQ_GRID_IQ3S,   /* 512 x 4 */
    IQ_GRID_IQ1S,   /* 2048 x 8, signed coordinates (IQ1_S and IQ1_M) */
    IQ_GRID_COUNT_
} iq_grid_id;

typedef struct iq_grid {
    int width;           /* coordinates per point: 8 or 4 */
    int n_points;
    int n_levels;
    float levels[8];     /* the coordinate values, ascending */
    const float *coords; /* n_points * width coordinate values */
    const uint32_t *code_start; /* candidates of code c: neighbours[code_start[c] .. code_start[c + 1]) */
    const uint16_t *neighbours;
} iq_grid;

/* The grid with its search index, built on first use (thread-safe) and kept
 * for the life of the process. Returns NULL, with STRATA_OUT_OF_MEMORY in
 * err, when the index cannot be allocated. */
const iq_grid *iq_grid_get(iq_grid_id id, strata_error *err);

/* The point p minimizing sum_j w[j] (t[j] - (p[j] + shift))^2 among the
 * candidates of t's code; that error goes to *out_error. t and w hold
 * grid->width values, in the grid's units (the caller divides by the
 * scale); w must be non-negative. */
int iq_grid_nearest(const iq_grid *grid, const float *t, const float *w, float shift, float *out_error);

#endif
