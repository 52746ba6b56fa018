/* Private structures shared by the GGUF reader, accessors and writer.
 * Nothing outside runtime/gguf_*.c includes this header. */
#ifndef STRATA_GGUF_INTERNAL_H
#define STRATA_GGUF_INTERNAL_H

#include <sys/types.h>
#include <time.h>

#include "gguf.h"

/* Byte order: every multi-byte field is read with memcpy as host order, so
 * the host must be little-endian like the format. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "strata's GGUF code assumes a little-endian host"
#endif

/* Nesting limit of array values: an array of arrays is depth 2. */
#define GGUF_MAX_ARRAY_DEPTH 4
/* Bytes of the fixed header: magic, version, tensor count, key count. */
#define GGUF_HEADER_BYTES 24

/* One parsed array value. For string elements, items[i] points at element
 * i's u64 length; for array elements, children[i] describes element i. */
typedef struct gguf_array_node {
    gguf_value_type elem_type;
    uint64_t count;
    const uint8_t *elems;               /* first element's bytes */
    const uint8_t **items;              /* STRING elements, else NULL */
    struct gguf_array_node *children;   /* ARRAY elements, else NULL */
} gguf_array_node;

/* One key/value pair. The name must stay the first member (gguf_name_index). */
typedef struct gguf_kv {
    char *name;                /* NUL-terminated copy */
    gguf_value_type type;
    const uint8_t *value;      /* value bytes in the mapping (after the type) */
    size_t value_bytes;        /* encoded size of the value */
    gguf_array_node array;     /* when type == GGUF_TYPE_ARRAY */
} gguf_kv;

/* Open-addressing hash index from a name to a record number. Records are
 * structs whose first member is `char *name` (or `const char *name`), stored
 * contiguously with a fixed stride, so one index serves keys and tensors. */
typedef struct gguf_name_index {
    int64_t *slots;            /* record number + 1; 0 is empty */
    size_t capacity;           /* power of two */
    size_t used;
    uint64_t seed;             /* per-index hash seed, so crafted names cannot
                                  be made to collide ahead of time */
} gguf_name_index;

/* Where an opened file's bytes live (runtime/gguf_source.c): a read-only
 * mapping of the file, or a private copy in an anonymous mapping. */
typedef struct gguf_source {
    void *bytes;               /* NULL when the file came from a caller's buffer */
    size_t size;
    int fd;                    /* the mapped file, kept open to watch it; -1 for a copy */
    int guard_slot;            /* fault guard slot of the mapping (fault_guard.h) */
    off_t opened_size;         /* the file's size and modification time when opened */
    struct timespec opened_mtime;
} gguf_source;

/* Opens path (never blocking; only a regular file of at least a GGUF header
 * is accepted) and maps it, or with read_into_memory reads it into a copy
 * and closes it. Errors name the path. */
strata_status gguf_source_open(const char *path, bool read_into_memory, gguf_source *out, strata_error *err);
/* Releases what gguf_source_open set up; leaves an empty source. */
void gguf_source_close(gguf_source *source);

struct gguf_file {
    char *path;                /* display name (NUL-terminated copy) */
    const uint8_t *base;
    size_t size;
    gguf_source source;        /* owned bytes: empty for gguf_open_memory */
    uint32_t version;
    size_t alignment;
    size_t data_offset;
    int64_t n_kv;
    gguf_kv *kvs;
    gguf_name_index kv_index;
    int64_t n_tensors;
    gguf_tensor_info *tensors;
    gguf_name_index tensor_index;
};

/* Bytes of one scalar of type, or 0 for STRING/ARRAY/unknown types. */
size_t gguf_scalar_size(gguf_value_type type);

/* Index helpers. Each returns false only on allocation failure. */
bool gguf_index_init(gguf_name_index *index, size_t expected_records);
void gguf_index_free(gguf_name_index *index);
/* Record number of name (len bytes, no NUL needed), or -1. */
int64_t gguf_index_find(const gguf_name_index *index, const void *records, size_t stride, const char *name,
                        size_t len);
/* Adds record number `record` (its name already stored in records). Grows
 * the table when it is more than half full. */
bool gguf_index_insert(gguf_name_index *index, const void *records, size_t stride, int64_t record);

#endif
