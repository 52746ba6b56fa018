/* The sampling flag group (see sampling_flags.h). */
#include "sampling_flags.h"

#include <stddef.h>

#define SAMPLING(field) (offsetof(sampling_options, params) + offsetof(strata_sampler_params, field))
static const flag_spec sampling_flags[] = {
    FLAG_BOUNDED(NULL, "--temp", "T", "temperature (default 0.8; 0 = greedy)", FLAG_FLOAT, SAMPLING(temperature), 0,
                 100),
    FLAG_BOUNDED(NULL, "--top-k", "K", "keep the K most likely tokens (default 40; 0 = off)", FLAG_INT32,
                 SAMPLING(top_k), 0, 2147483647),
    FLAG_BOUNDED(NULL, "--top-p", "P", "nucleus sampling (default 0.95; 1 = off)", FLAG_FLOAT, SAMPLING(top_p), 0, 1),
    FLAG_BOUNDED(NULL, "--min-p", "P", "drop tokens below P x the top probability (default 0.05)", FLAG_FLOAT,
                 SAMPLING(min_p), 0, 1),
    FLAG_BOUNDED(NULL, "--repeat-penalty", "R", "penalty for recent tokens (default 1.0 = off)", FLAG_FLOAT,
                 SAMPLING(repeat_penalty), 0, 100),
    FLAG_BOUNDED(NULL, "--repeat-last-n", "N", "how many recent tokens the penalties see (default 64)", FLAG_INT32,
                 SAMPLING(repeat_last_n), 0, 2147483647),
    FLAG_BOUNDED(NULL, "--presence-penalty", "P", "(default 0 = off)", FLAG_FLOAT, SAMPLING(presence_penalty), -100,
                 100),
    FLAG_BOUNDED(NULL, "--frequency-penalty", "P", "(default 0 = off)", FLAG_FLOAT, SAMPLING(frequency_penalty),
                 -100, 100),
    FLAG_BOUNDED_SET("-s", "--seed", "S", "sampling seed (default: random, printed by --verbose)", FLAG_U64,
                     SAMPLING(seed), 0, 0, offsetof(sampling_options, seed_given)),
};
#undef SAMPLING
const flag_group sampling_flag_group = {"sampling", sampling_flags, sizeof sampling_flags / sizeof sampling_flags[0]};

void sampling_options_init(sampling_options *options)
{
    options->params = strata_sampler_default_params();
    options->seed_given = false;
}
