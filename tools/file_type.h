/* general.file_type of a GGUF file (llama.cpp's llama_ftype numbering). */
#ifndef STRATA_TOOLS_FILE_TYPE_H
#define STRATA_TOOLS_FILE_TYPE_H

#include <stddef.h>

#include "gguf.h"
#include "strata.h"

/* The llama.cpp name without its LLAMA_FTYPE_ prefix ("MOSTLY_Q4_K_M" for
 * 15), or NULL for an id llama.cpp does not define. */
const char *file_type_name(int file_type);

/* The dtype holding the most bytes among tensors of two or more dims (the
 * weight matrices; norms are F32 in every file type). */
strata_dtype file_type_dominant_dtype(const gguf_file *file);

/* A short label like llama-bench's: "llama 8.03 B Q4_K_M", or with the
 * dominant dtype ("llama 292.80 K F32") when general.file_type is absent.
 * Opens path only in that case. Writes into buf and returns buf. */
const char *file_type_describe_model(const char *path, const strata_hparams *hp, char *buf, size_t buf_size);

#endif
