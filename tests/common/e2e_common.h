/* Shared pieces of the end-to-end logits tests (test_e2e_logits on the CPU,
 * test_vulkan_e2e_logits, test_cuda_e2e_logits): the prompts, the model
 * matrix with its NMSE bounds (justified in test_e2e_logits.c), and the
 * decode-and-compare loop against reference logits. */
#ifndef STRATA_TEST_E2E_COMMON_H
#define STRATA_TEST_E2E_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata.h"

/* BOS "Hello, wo" in the byte vocabulary of synthetic models */
extern const int32_t e2e_byte_prompt[];
extern const int64_t e2e_byte_prompt_len;
/* "<s> Once upon a time, there was a little girl" in the stories260K vocabulary */
extern const int32_t e2e_stories_prompt[];
extern const int64_t e2e_stories_prompt_len;

#define E2E_ARCH_COUNT 3
extern const char *const e2e_archs[E2E_ARCH_COUNT];

typedef struct e2e_type_bound {
    const char *type;  /* strata synth --type */
    double nmse_max;   /* vs the double-precision reference */
} e2e_type_bound;

/* Every block format first (E2E_FORMAT_COUNT of them), then the mixes. */
#define E2E_FORMAT_COUNT 14
extern const e2e_type_bound e2e_type_bounds[];
extern const size_t e2e_type_bound_count;

/* The low-bit formats (IQ*, MXFP4, TQ*) and their mixes: computed on the CPU
 * and on both GPU backends (test_vulkan_e2e_logits and test_cuda_e2e_logits
 * run them). */
extern const e2e_type_bound e2e_lowbit_type_bounds[];
extern const size_t e2e_lowbit_type_bound_count;

/* The f16 KV cache of a token-at-a-time pass rounds K and V: its NMSE bound
 * is at least this. */
#define E2E_KV_F16_NMSE_FLOOR 2e-6

/* Worst row of a comparison of n_rows x n_vocab logits. */
typedef struct e2e_comparison {
    double worst_nmse;
    int argmax_agree;
    int argmax_rows;
    bool argmax_ok; /* false when a greedy token differs where the reference does not nearly tie */
} e2e_comparison;

int64_t e2e_argmax_float(const float *values, int64_t n);

/* Compares one row of logits with the reference row, folding it into c. */
void e2e_compare_row(const float *got, const double *want, int64_t n_vocab, double nmse_max, e2e_comparison *c);

/* Decodes tokens on model in a fresh context of n_ctx positions and kv_dtype,
 * as one batch or one token at a time; compares every row with ref_logits
 * (when not NULL) and keeps the logits in kept (n_tokens x n_vocab floats,
 * when not NULL). */
strata_status e2e_run_and_compare(strata_model *model, strata_dtype kv_dtype, bool one_at_a_time, int64_t n_ctx,
                                  const int32_t *tokens, int64_t n_tokens, const double *ref_logits, int64_t n_vocab,
                                  double nmse_max, e2e_comparison *c, float *kept, strata_error *err);

/* Checks one model file end to end on backend ("cpu", "cuda", ...): the
 * independent reference's logits of tokens against the runtime's, decoded as
 * one batch with an f32 KV cache and one token at a time with an f16 cache.
 * Prints one table row named label; returns whether it passed. */
bool e2e_check_model(const char *backend, const char *label, const char *path, const int32_t *tokens,
                     int64_t n_tokens, double nmse_max);

/* What a placed check saw of memory: each device's counted peak, and
 * whether it stayed within the device's budget and the plan's figure. */
typedef struct e2e_placement_report {
    int n_devices;
    uint64_t peak_bytes[STRATA_MAX_DEVICES];
    bool within_budget;
    bool within_plan;
} e2e_placement_report;

/* e2e_check_model with every model parameter given (devices, placement);
 * report (may be NULL) receives the memory the model and contexts used. */
bool e2e_check_model_placed(const strata_model_params *model_params, const char *label, const int32_t *tokens,
                            int64_t n_tokens, double nmse_max, e2e_placement_report *report);

/* Loads the model of params, decodes tokens[0, n_tokens - 1) and then the
 * last token alone, and compares the hand-offs that one token made between
 * devices with the plan's count. Prints one line; returns whether they are
 * equal, or with at_most, whether the plan's count is an upper bound (the
 * plan counts two hand-offs for every weight a layer keeps on another
 * device, though weights that take the same input share one); false with a
 * message on any error. */
bool e2e_check_handoffs(const strata_model_params *params, const char *label, const int32_t *tokens,
                        int64_t n_tokens, bool at_most);

#endif
