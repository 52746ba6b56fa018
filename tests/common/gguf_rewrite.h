/* Tests: writes a copy of a GGUF file with some keys replaced or removed,
 * tensors left out or changed, and another data alignment: hostile variants
 * of a valid model. */
#ifndef STRATA_TEST_GGUF_REWRITE_H
#define STRATA_TEST_GGUF_REWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef enum rewrite_value_kind { REWRITE_DROP, REWRITE_INT, REWRITE_FLOAT, REWRITE_STRING } rewrite_value_kind;

/* A key to replace (or drop) in the copy. */
typedef struct rewrite_key {
    const char *key;
    rewrite_value_kind kind;
    gguf_value_type type; /* of the written value */
    int64_t int_value;
    double float_value;
    const char *string_value;
} rewrite_key;

typedef struct rewrite_spec {
    const rewrite_key *keys;
    int n_keys;
    const char *drop_tensor;  /* NULL: keep all */
    uint32_t alignment;       /* 0: keep the source's */
    /* Called with a writable copy of each tensor's bytes before it is
     * written; may change them. NULL: none. */
    void (*edit_tensor)(const char *name, strata_dtype dtype, void *bytes, size_t size, void *user);
    void *user;
} rewrite_spec;

/* Writes dst from src with spec applied; returns false (and prints why)
 * on failure. */
bool gguf_rewrite(const char *src, const char *dst, const rewrite_spec *spec);

#endif
