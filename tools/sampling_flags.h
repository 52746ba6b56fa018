/* The sampling flag group (temperature, top-k, ..., seed), shared by the
 * commands that generate text. */
#ifndef STRATA_TOOLS_SAMPLING_FLAGS_H
#define STRATA_TOOLS_SAMPLING_FLAGS_H

#include "flags.h"
#include "strata.h"

typedef struct sampling_options {
    strata_sampler_params params; /* llama.cpp's defaults until a flag changes them */
    bool seed_given;
} sampling_options;

extern const flag_group sampling_flag_group;

void sampling_options_init(sampling_options *options);

#endif
