/* The transformers fixtures (tests/data/families/, written by
 * tests/tools/make_family_fixtures.py): tiny random-weight models of each
 * family converted to F32 GGUF by llama.cpp's convert_hf_to_gguf.py, and the
 * logits transformers computed for family_tokens: the reference and the
 * runtime against transformers, and the runtime on strata's quantizations of
 * the F32 file against the reference. */
#ifndef STRATA_TEST_FAMILY_FIXTURES_H
#define STRATA_TEST_FAMILY_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata.h"

extern const int32_t family_tokens[];
extern const int64_t family_tokens_len;

/* The fixtures: each family's name is also its file's ("gemma2" ->
 * gemma2.gguf, gemma2_logits.bin). */
#define FAMILY_FIXTURE_COUNT 11
extern const char *const family_fixtures[FAMILY_FIXTURE_COUNT];

typedef struct family_type_bound {
    const char *type;  /* "f16", "q8_0", "q4_k" (q5_0 at the fixtures' row lengths) */
    double nmse_max;   /* vs the reference on the same weights */
} family_type_bound;

#define FAMILY_TYPE_COUNT 3
extern const family_type_bound family_type_bounds[FAMILY_TYPE_COUNT];

/* Writes dst from the F32 model src with every weight matrix (2-D tensor)
 * stored as dtype, or llama.cpp's fallback where its rows do not fit the
 * block (synth_fallback_dtype); vectors stay F32. Returns false and prints
 * why on failure. */
bool family_quantize_file(const char *src, const char *dst, strata_dtype dtype);

/* Fixture name (data_dir/families/) in the double-precision reference
 * (tests/common/reference_forward.c) against transformers' logits: the
 * reference itself checked. Prints one row; returns whether the worst row's
 * NMSE is within nmse_max with the greedy tokens agreeing. */
bool family_check_reference(const char *data_dir, const char *name, double nmse_max);

/* Fixture name (F32) on backend ("cpu", "vulkan", "cuda") against
 * transformers' logits: one batch with an f32 KV cache and a token at a time
 * with an f16 one (whose bound is at least E2E_KV_F16_NMSE_FLOOR). Prints
 * one row; returns whether both passed. */
bool family_check_transformers(const char *backend, const char *data_dir, const char *name, double nmse_max);

/* Fixture name quantized by strata to bound's type in dir, on backend,
 * against the reference on the same file (e2e_check_model). */
bool family_check_type(const char *backend, const char *data_dir, const char *dir, const char *name,
                       const family_type_bound *bound);

#endif
