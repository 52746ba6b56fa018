/* Internal: loading a tokenizer from an open GGUF file (the public functions
 * are in strata.h). */
#ifndef STRATA_TOKENIZER_H
#define STRATA_TOKENIZER_H

#include "gguf.h"
#include "strata.h"

/* Reads the tokenizer.ggml.* keys of file. Returns STRATA_OK with *out = NULL
 * when the file has no tokenizer.ggml.model key. force_pre (may be NULL)
 * overrides tokenizer.ggml.pre. */
strata_status tokenizer_load_gguf(const gguf_file *file, const char *force_pre, strata_tokenizer **out,
                                  strata_error *err);

#endif
