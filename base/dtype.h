/* Element types of tensors, numbered exactly as GGUF numbers them (ggml_type),
 * so a type id read from a file maps to this enum without a table. */
#ifndef STRATA_DTYPE_H
#define STRATA_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum strata_dtype {
    DTYPE_F32 = 0,
    DTYPE_F16 = 1,
    DTYPE_Q4_0 = 2,
    DTYPE_Q4_1 = 3,
    DTYPE_Q5_0 = 6,
    DTYPE_Q5_1 = 7,
    DTYPE_Q8_0 = 8,
    DTYPE_Q8_1 = 9,
    DTYPE_Q2_K = 10,
    DTYPE_Q3_K = 11,
    DTYPE_Q4_K = 12,
    DTYPE_Q5_K = 13,
    DTYPE_Q6_K = 14,
    DTYPE_Q8_K = 15,
    DTYPE_IQ2_XXS = 16,
    DTYPE_IQ2_XS = 17,
    DTYPE_IQ3_XXS = 18,
    DTYPE_IQ1_S = 19,
    DTYPE_IQ4_NL = 20,
    DTYPE_IQ3_S = 21,
    DTYPE_IQ2_S = 22,
    DTYPE_IQ4_XS = 23,
    DTYPE_I8 = 24,
    DTYPE_I16 = 25,
    DTYPE_I32 = 26,
    DTYPE_I64 = 27,
    DTYPE_F64 = 28,
    DTYPE_IQ1_M = 29,
    DTYPE_BF16 = 30,
    DTYPE_TQ1_0 = 34,
    DTYPE_TQ2_0 = 35,
    DTYPE_MXFP4 = 39,
    DTYPE_COUNT_ = 40 /* one past the largest id this table can describe */
} strata_dtype;

typedef struct dtype_traits {
    const char *name;        /* "q4_k", as users type it */
    int64_t block_elements;  /* elements per block (1 for plain types) */
    size_t block_bytes;      /* bytes per block */
    bool is_quantized;
} dtype_traits;

/* Traits of a known dtype, or NULL when id is not a type strata knows
 * (unknown ids in a file are rejected with this). */
const dtype_traits *dtype_get_traits(int id);

/* Name of a dtype ("f16", "q6_k"); "unknown" for ids without traits. */
const char *dtype_name(strata_dtype dtype);

/* Parses a user-typed name ("Q4_K", "q4_k", "bf16") into *out. Returns false
 * when the name is not a dtype. */
bool dtype_from_name(const char *name, strata_dtype *out);

/* Bytes of a row of n_elements of dtype. Returns false when n_elements is not
 * a multiple of the block size or the result overflows size_t. */
bool dtype_row_bytes(strata_dtype dtype, int64_t n_elements, size_t *out_bytes);

#endif
