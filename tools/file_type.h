/* general.file_type of a GGUF file (llama.cpp's llama_ftype numbering). */
#ifndef STRATA_TOOLS_FILE_TYPE_H
#define STRATA_TOOLS_FILE_TYPE_H

/* The llama.cpp name without its LLAMA_FTYPE_ prefix ("MOSTLY_Q4_K_M" for
 * 15), or NULL for an id llama.cpp does not define. */
const char *file_type_name(int file_type);

#endif
