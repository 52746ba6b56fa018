/* An independent reference forward pass for llama, qwen2, qwen3, olmo2,
 * gemma2, gemma3 and phi3 GGUF files:
 * plain double-precision C, written apart from the runtime's model code. It
 * uses only the GGUF reader and quant_dequantize_row from the runtime (both
 * are checked against Python's gguf package separately); everything else
 * (hyper-parameters, rope, attention, FFN) is computed here, step by step. */
#ifndef STRATA_TESTS_REFERENCE_FORWARD_H
#define STRATA_TESTS_REFERENCE_FORWARD_H

#include <stdint.h>

#include "status.h"

typedef struct reference_model reference_model;

/* Opens path, reads the hyper-parameters and dequantizes every weight to
 * double. On success *out owns everything (free with reference_model_free). */
strata_status reference_model_load(const char *path, reference_model **out, strata_error *err);
void reference_model_free(reference_model *model); /* NULL is fine */

int64_t reference_model_n_vocab(const reference_model *model);

/* Runs tokens[0..n_tokens) from position 0 with causal attention and writes
 * the logits of every position into logits (n_tokens * n_vocab doubles, row
 * per position). Fails with STRATA_INVALID_INPUT for a token outside the
 * vocabulary. */
strata_status reference_forward(const reference_model *model, const int32_t *tokens, int64_t n_tokens,
                                double *logits, strata_error *err);

/* reference_forward, and for a mixture of experts the smallest gap, over
 * every position and layer, between the router logit of the last expert
 * chosen and that of the first left out (INFINITY for a dense model, or when
 * every expert is chosen). A runtime whose router inputs differ by more than
 * this may choose other experts: its logits then differ by far more than its
 * arithmetic error, so a comparison is only meaningful with a gap well above
 * that error. */
strata_status reference_forward_route_gap(const reference_model *model, const int32_t *tokens, int64_t n_tokens,
                                          double *logits, double *min_route_gap, strata_error *err);

#endif
