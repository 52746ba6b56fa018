/* Names of general.file_type values, as llama.cpp spells them. */
#include "file_type.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "units.h"

const char *file_type_name(int file_type)
{
    static const struct {
        int id;
        const char *name;
    } names[] = {
        {0, "ALL_F32"},          {1, "MOSTLY_F16"},       {2, "MOSTLY_Q4_0"},     {3, "MOSTLY_Q4_1"},
        {7, "MOSTLY_Q8_0"},      {8, "MOSTLY_Q5_0"},      {9, "MOSTLY_Q5_1"},     {10, "MOSTLY_Q2_K"},
        {11, "MOSTLY_Q3_K_S"},   {12, "MOSTLY_Q3_K_M"},   {13, "MOSTLY_Q3_K_L"},  {14, "MOSTLY_Q4_K_S"},
        {15, "MOSTLY_Q4_K_M"},   {16, "MOSTLY_Q5_K_S"},   {17, "MOSTLY_Q5_K_M"},  {18, "MOSTLY_Q6_K"},
        {19, "MOSTLY_IQ2_XXS"},  {20, "MOSTLY_IQ2_XS"},   {21, "MOSTLY_Q2_K_S"},  {22, "MOSTLY_IQ3_XS"},
        {23, "MOSTLY_IQ3_XXS"},  {24, "MOSTLY_IQ1_S"},    {25, "MOSTLY_IQ4_NL"},  {26, "MOSTLY_IQ3_S"},
        {27, "MOSTLY_IQ3_M"},    {28, "MOSTLY_IQ2_S"},    {29, "MOSTLY_IQ2_M"},   {30, "MOSTLY_IQ4_XS"},
        {31, "MOSTLY_IQ1_M"},    {32, "MOSTLY_BF16"},     {36, "MOSTLY_TQ1_0"},   {37, "MOSTLY_TQ2_0"},
        {38, "MOSTLY_MXFP4_MOE"},
        {1024, "GUESSED"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].id == file_type)
            return names[i].name;
    return NULL;
}

strata_dtype file_type_dominant_dtype(const gguf_file *file)
{
    uint64_t bytes_by_dtype[DTYPE_COUNT_] = {0};
    for (int64_t i = 0; i < gguf_tensor_count(file); i++) {
        const gguf_tensor_info *info = gguf_tensor(file, i);
        if (info->n_dims >= 2 && (int)info->dtype >= 0 && (int)info->dtype < DTYPE_COUNT_)
            bytes_by_dtype[info->dtype] += info->size_bytes;
    }
    int best = 0;
    for (int d = 1; d < DTYPE_COUNT_; d++)
        if (bytes_by_dtype[d] > bytes_by_dtype[best])
            best = d;
    return (strata_dtype)best;
}

const char *file_type_describe_model(const char *path, const strata_hparams *hp, char *buf, size_t buf_size)
{
    char params[32], type[32] = "?";
    const char *ftype = file_type_name(hp->file_type);
    if (ftype) {
        snprintf(type, sizeof type, "%s", strncmp(ftype, "MOSTLY_", 7) == 0 ? ftype + 7 : ftype);
    } else {
        gguf_file *file = NULL;
        strata_error err = {0};
        if (gguf_open(path, &file, &err) == STRATA_OK) {
            snprintf(type, sizeof type, "%s", dtype_name(file_type_dominant_dtype(file)));
            for (char *c = type; *c; c++)
                *c = (char)toupper((unsigned char)*c);
            gguf_close(file);
        }
    }
    snprintf(buf, buf_size, "%s %s %s", hp->arch_name, units_format_count(hp->n_params, params, sizeof params),
             type);
    return buf;
}
