/* GGUF v2/v3 reader and streaming writer.
 *
 * The reader maps the file read-only and validates everything before anything
 * is handed out: magic, version, counts against the bytes that remain, string
 * lengths, value types, nesting depth of arrays, tensor dims and their product
 * (overflow), dtypes, alignment, and each tensor's offset and size against the
 * file size. After gguf_open succeeds, every accessor below is safe.
 *
 * Strings in a file are not NUL-terminated; gguf_string points into the
 * mapping and carries its length. Key names and tensor names are validated to
 * contain no NUL byte and are also available as NUL-terminated copies.
 *
 * Decisions the validator makes: every dim is in 1..2^62 (zero-sized tensors
 * are rejected, so size_bytes > 0 and data != NULL for every tensor); arrays
 * nest at most 4 levels; general.alignment, when present, is a uint32 power
 * of two; tensors may not overlap.
 *
 * A path is opened without blocking and must name a regular file (a FIFO,
 * a device or a directory is an error naming it). The mapped file is
 * watched: gguf_check_unchanged tells whether it was truncated or rewritten
 * since it was opened. A read of the mapping past a truncation raises
 * SIGBUS, which ends the process unless strata_install_fault_guard (strata.h)
 * was called; with it, the read sees zeros and the next
 * gguf_check_unchanged fails. */
#ifndef STRATA_GGUF_H
#define STRATA_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dtype.h"
#include "status.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian uint32 */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

typedef enum gguf_value_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT_
} gguf_value_type;

typedef struct gguf_string {
    const char *data; /* not NUL-terminated; points into the mapping */
    uint64_t len;
} gguf_string;

typedef struct gguf_file gguf_file;

/* A view of an array value (possibly nested). Valid while the file is open. */
typedef struct gguf_array {
    const gguf_file *file;
    gguf_value_type elem_type;
    uint64_t count;
    const void *handle; /* private to gguf.c */
} gguf_array;

typedef struct gguf_tensor_info {
    const char *name;         /* NUL-terminated copy */
    int n_dims;               /* 1..4 */
    int64_t ne[GGUF_MAX_DIMS]; /* elements per dim, ne[0] innermost; unused dims are 1 */
    strata_dtype dtype;
    uint64_t offset;          /* relative to the start of the data section */
    size_t size_bytes;        /* bytes of the whole tensor */
    const void *data;         /* into the mapping (NULL for gguf_open_memory with no data) */
} gguf_tensor_info;

/* Opens and validates path. On success *out owns the mapping; close it with
 * gguf_close. Errors name the file, the field and what is wrong. */
strata_status gguf_open(const char *path, gguf_file **out, strata_error *err);

/* Same, but reads the whole file into private memory instead of mapping it:
 * once it returns, the file may change or vanish without effect on *out.
 * Costs memory the size of the file. */
strata_status gguf_open_read(const char *path, gguf_file **out, strata_error *err);

/* Whether the file still holds what gguf_open validated. STRATA_OK, or
 * STRATA_IO with a message naming the file when it was truncated or
 * modified since it was opened (its size or modification time changed), or
 * when a read of the mapping faulted and the fault guard repaired it: what
 * was read from the mapping since may be wrong. Always STRATA_OK for
 * gguf_open_read and gguf_open_memory. One fstat: cheap enough for every
 * decode step. A writer that changes the file through a mapping of its own
 * is seen only once the kernel updates the file's time. */
strata_status gguf_check_unchanged(const gguf_file *file, strata_error *err);

/* Same checks on a caller-owned buffer (fuzzing, tests). The buffer must stay
 * alive and unchanged until gguf_close. display_name is used in messages. */
strata_status gguf_open_memory(const void *data, size_t size, const char *display_name,
                               gguf_file **out, strata_error *err);

void gguf_close(gguf_file *file); /* NULL is fine */

const char *gguf_path(const gguf_file *file);
uint32_t gguf_version(const gguf_file *file);
size_t gguf_file_size(const gguf_file *file);
size_t gguf_alignment(const gguf_file *file);
size_t gguf_data_offset(const gguf_file *file); /* file offset of the data section */

/* --- metadata ----------------------------------------------------------- */

int64_t gguf_key_count(const gguf_file *file);
const char *gguf_key_name(const gguf_file *file, int64_t key_index); /* NUL-terminated */
gguf_value_type gguf_key_type(const gguf_file *file, int64_t key_index);
/* Index of key, or -1 when the file has no such key. */
int64_t gguf_find_key(const gguf_file *file, const char *key);

/* Typed getters by key. Integer getters accept any integer type (and bool)
 * whose value fits; float getters accept float32/float64. They return
 * STRATA_INVALID_INPUT with a message such as
 * "model.gguf: key llama.block_count: expected an integer, found string"
 * when the key is missing or has another type. */
strata_status gguf_get_int(const gguf_file *file, const char *key, int64_t *out, strata_error *err);
strata_status gguf_get_float(const gguf_file *file, const char *key, double *out, strata_error *err);
strata_status gguf_get_bool(const gguf_file *file, const char *key, bool *out, strata_error *err);
strata_status gguf_get_string(const gguf_file *file, const char *key, gguf_string *out, strata_error *err);
strata_status gguf_get_array(const gguf_file *file, const char *key, gguf_array *out, strata_error *err);

/* Same, with a default used when the key is absent (a key of the wrong type is
 * still an error). */
strata_status gguf_get_int_or(const gguf_file *file, const char *key, int64_t fallback, int64_t *out,
                              strata_error *err);
strata_status gguf_get_float_or(const gguf_file *file, const char *key, double fallback, double *out,
                                strata_error *err);
strata_status gguf_get_bool_or(const gguf_file *file, const char *key, bool fallback, bool *out,
                               strata_error *err);

/* Value of key_index viewed as an array / string (key type must match). */
gguf_array gguf_key_array(const gguf_file *file, int64_t key_index);
gguf_string gguf_key_string(const gguf_file *file, int64_t key_index);

/* Element i of an array (i < count, element type must match; integers of any
 * width are widened, floats of either width are widened). */
int64_t gguf_array_int(const gguf_array *array, uint64_t i);
double gguf_array_float(const gguf_array *array, uint64_t i);
gguf_string gguf_array_string(const gguf_array *array, uint64_t i);
gguf_array gguf_array_nested(const gguf_array *array, uint64_t i);
/* Raw little-endian elements of a scalar array (may be unaligned: use memcpy). */
const void *gguf_array_raw(const gguf_array *array);

/* Writes a human-readable rendering of key_index's value (arrays abridged to
 * their first few elements, strings quoted, escaped and cut after 64 bytes)
 * into buf, always NUL-terminated; an empty string for a bad key_index. */
void gguf_format_value(const gguf_file *file, int64_t key_index, char *buf, size_t buf_size);

const char *gguf_type_name(gguf_value_type type);

/* --- tensors ------------------------------------------------------------ */

int64_t gguf_tensor_count(const gguf_file *file);
const gguf_tensor_info *gguf_tensor(const gguf_file *file, int64_t tensor_index);
/* NULL when absent. */
const gguf_tensor_info *gguf_find_tensor(const gguf_file *file, const char *name);

/* --- writer --------------------------------------------------------------
 *
 * Streaming: declare every key and tensor, then gguf_writer_begin_data writes
 * the header and tensor table (offsets computed from the declared shapes),
 * then each tensor's bytes are written in declaration order with
 * gguf_writer_write_tensor (possibly in several chunks), then
 * gguf_writer_finish. A model of tens of GB is never held in memory. */

typedef struct gguf_writer gguf_writer;

/* Creates path at once (so a bad path fails here). version is 2 or 3; 0
 * means 3. Data is aligned to 32 bytes unless general.alignment is set (a
 * uint32 power of two). Writing more bytes than the current tensor still
 * needs is an error (chunks never span two tensors). Any error stops the
 * writer: later calls fail and gguf_writer_free removes the file (when it
 * is a regular file: a device, FIFO or pipe given as output is left). */
strata_status gguf_writer_create(const char *path, uint32_t version, gguf_writer **out, strata_error *err);
/* Closes (and on failure before finish, removes a regular) file; NULL is fine. */
void gguf_writer_free(gguf_writer *writer);

strata_status gguf_writer_set_int(gguf_writer *writer, const char *key, gguf_value_type type, int64_t value,
                                  strata_error *err); /* any integer type or bool */
strata_status gguf_writer_set_float(gguf_writer *writer, const char *key, gguf_value_type type, double value,
                                    strata_error *err); /* FLOAT32 or FLOAT64 */
strata_status gguf_writer_set_string(gguf_writer *writer, const char *key, const char *value, strata_error *err);
/* Array of scalars of elem_type; values holds count elements in that type's
 * little-endian encoding. */
strata_status gguf_writer_set_array(gguf_writer *writer, const char *key, gguf_value_type elem_type,
                                    const void *values, uint64_t count, strata_error *err);
strata_status gguf_writer_set_string_array(gguf_writer *writer, const char *key, const char *const *values,
                                           uint64_t count, strata_error *err);
/* Copies one key (any type, nested arrays included) from an open file. */
strata_status gguf_writer_copy_key(gguf_writer *writer, const gguf_file *src, int64_t key_index,
                                   strata_error *err);

strata_status gguf_writer_add_tensor(gguf_writer *writer, const char *name, int n_dims, const int64_t *ne,
                                     strata_dtype dtype, strata_error *err);
strata_status gguf_writer_begin_data(gguf_writer *writer, strata_error *err);
/* Appends bytes of the current tensor; moves to the next tensor once the
 * current one has received exactly its size (padding written automatically). */
strata_status gguf_writer_write_tensor(gguf_writer *writer, const void *data, size_t size, strata_error *err);
strata_status gguf_writer_finish(gguf_writer *writer, strata_error *err);
/* Leaves the current tensor's bytes as a hole (they read as zeros) and moves
 * to the next: the file must be seekable. For files that are only planned,
 * not run with meaning (a 70B shape in a moment and no disk space). */
strata_status gguf_writer_skip_tensor(gguf_writer *writer, strata_error *err);

#endif
