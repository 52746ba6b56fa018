/* Printing a placement plan: the table `strata plan` and `run --verbose`
 * show, and the JSON of `strata plan -o json`. */
#ifndef STRATA_TOOLS_PLAN_PRINT_H
#define STRATA_TOOLS_PLAN_PRINT_H

#include <stdbool.h>
#include <stdio.h>

#include "strata.h"

/* Devices with their layers and memory (weights / KV / scratch / total /
 * budget), the output and embedding, overrides, the predicted speed and
 * what bounds it; with_tensors adds every tensor's device. */
void plan_print_markdown(FILE *out, const strata_plan *plan, bool with_tensors);

/* The plan as one JSON object: fits, shortfall, note, n_ctx, devices[],
 * layers[], tensors[], predicted. */
void plan_print_json(FILE *out, const strata_plan *plan);

#endif
