#include "dtype.h"

#include <ctype.h>
#include <string.h>

static const dtype_traits dtype_table[DTYPE_COUNT_] = {
    [DTYPE_F32] = {"f32", 1, 4, false},
    [DTYPE_F16] = {"f16", 1, 2, false},
    [DTYPE_Q4_0] = {"q4_0", 32, 18, true},
    [DTYPE_Q4_1] = {"q4_1", 32, 20, true},
    [DTYPE_Q5_0] = {"q5_0", 32, 22, true},
    [DTYPE_Q5_1] = {"q5_1", 32, 24, true},
    [DTYPE_Q8_0] = {"q8_0", 32, 34, true},
    [DTYPE_Q8_1] = {"q8_1", 32, 36, true},
    [DTYPE_Q2_K] = {"q2_k", 256, 84, true},
    [DTYPE_Q3_K] = {"q3_k", 256, 110, true},
    [DTYPE_Q4_K] = {"q4_k", 256, 144, true},
    [DTYPE_Q5_K] = {"q5_k", 256, 176, true},
    [DTYPE_Q6_K] = {"q6_k", 256, 210, true},
    [DTYPE_Q8_K] = {"q8_k", 256, 292, true},
    [DTYPE_IQ2_XXS] = {"iq2_xxs", 256, 66, true},
    [DTYPE_IQ2_XS] = {"iq2_xs", 256, 74, true},
    [DTYPE_IQ3_XXS] = {"iq3_xxs", 256, 98, true},
    [DTYPE_IQ1_S] = {"iq1_s", 256, 50, true},
    [DTYPE_IQ4_NL] = {"iq4_nl", 32, 18, true},
    [DTYPE_IQ3_S] = {"iq3_s", 256, 110, true},
    [DTYPE_IQ2_S] = {"iq2_s", 256, 82, true},
    [DTYPE_IQ4_XS] = {"iq4_xs", 256, 136, true},
    [DTYPE_I8] = {"i8", 1, 1, false},
    [DTYPE_I16] = {"i16", 1, 2, false},
    [DTYPE_I32] = {"i32", 1, 4, false},
    [DTYPE_I64] = {"i64", 1, 8, false},
    [DTYPE_F64] = {"f64", 1, 8, false},
    [DTYPE_IQ1_M] = {"iq1_m", 256, 56, true},
    [DTYPE_BF16] = {"bf16", 1, 2, false},
    [DTYPE_TQ1_0] = {"tq1_0", 256, 54, true},
    [DTYPE_TQ2_0] = {"tq2_0", 256, 66, true},
    [DTYPE_MXFP4] = {"mxfp4", 32, 17, true},
};

const dtype_traits *dtype_get_traits(int id)
{
    if (id < 0 || id >= DTYPE_COUNT_ || dtype_table[id].name == NULL)
        return NULL;
    return &dtype_table[id];
}

const char *dtype_name(strata_dtype dtype)
{
    const dtype_traits *traits = dtype_get_traits((int)dtype);
    return traits ? traits->name : "unknown";
}

bool dtype_from_name(const char *name, strata_dtype *out)
{
    char lower[16];
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof lower)
        return false;
    for (size_t i = 0; i <= len; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    for (int id = 0; id < DTYPE_COUNT_; id++) {
        if (dtype_table[id].name && strcmp(dtype_table[id].name, lower) == 0) {
            *out = (strata_dtype)id;
            return true;
        }
    }
    return false;
}

bool dtype_row_bytes(strata_dtype dtype, int64_t n_elements, size_t *out_bytes)
{
    const dtype_traits *traits = dtype_get_traits((int)dtype);
    if (!traits || n_elements < 0 || n_elements % traits->block_elements != 0)
        return false;
    uint64_t blocks = (uint64_t)(n_elements / traits->block_elements);
    if (blocks != 0 && traits->block_bytes > SIZE_MAX / blocks)
        return false;
    *out_bytes = (size_t)blocks * traits->block_bytes;
    return true;
}
