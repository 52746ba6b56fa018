/* Streaming GGUF writer. Keys and tensor shapes are declared first and kept
 * in memory (small); gguf_writer_begin_data writes the header and tensor
 * table, then tensor bytes are streamed straight to the file in declaration
 * order, so a model of tens of GB is never held in memory. Any failure makes
 * the writer unusable, and a writer freed before a successful finish removes
 * its partial file (a regular file only: a device or pipe is left alone). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "gguf_internal.h"

typedef enum writer_state { WRITER_DECLARING, WRITER_WRITING, WRITER_FINISHED, WRITER_FAILED } writer_state;

/* The name must stay the first member (gguf_name_index). */
typedef struct writer_tensor {
    char *name;
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    strata_dtype dtype;
    uint64_t offset;
    size_t size_bytes;
} writer_tensor;

struct gguf_writer {
    char *path;
    FILE *out;
    bool remove_on_failure;     /* out is a regular file (never remove a device or FIFO) */
    uint32_t version;
    writer_state state;
    size_t alignment;
    uint8_t *kv_bytes;          /* encoded key/value pairs, in declaration order */
    size_t kv_len, kv_cap;
    char **key_names;           /* records of one name each, for the index */
    int64_t n_keys, keys_cap;
    gguf_name_index key_index;
    writer_tensor *tensors;
    int64_t n_tensors, tensors_cap;
    gguf_name_index tensor_index;
    int64_t current;            /* tensor receiving bytes */
    size_t current_written;
    bool skipped_to_end;        /* a skipped tensor may leave the file short of its end */
};

/* Records an error and marks the writer failed. */
static strata_status writer_fail(gguf_writer *w, strata_error *err, strata_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static strata_status writer_fail(gguf_writer *w, strata_error *err, strata_status status, const char *fmt, ...)
{
    char what[768];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    w->state = WRITER_FAILED;
    return strata_fail(err, status, "%s: %s", w->path, what);
}

static strata_status check_state(gguf_writer *w, writer_state wanted, const char *action, strata_error *err)
{
    if (w->state == wanted)
        return STRATA_OK;
    if (w->state == WRITER_FAILED)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: cannot %s: an earlier error stopped the writer", w->path,
                           action);
    static const char *const state_names[] = {"declaring keys and tensors", "writing tensor data", "finished",
                                              "failed"};
    return writer_fail(w, err, STRATA_INVALID_INPUT, "cannot %s while %s", action, state_names[w->state]);
}

strata_status gguf_writer_create(const char *path, uint32_t version, gguf_writer **out, strata_error *err)
{
    strata_status status;
    *out = NULL;
    if (version == 0)
        version = 3;
    if (version != 2 && version != 3)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: cannot write GGUF version %" PRIu32 " (only 2 and 3)", path,
                           version);
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: cannot allocate a writer", path);
    w->version = version;
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    w->path = strdup(path);
    if (!w->path || !gguf_index_init(&w->key_index, 16) || !gguf_index_init(&w->tensor_index, 16)) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: cannot allocate a writer", path);
        goto fail;
    }
    w->out = fopen(path, "wb");
    if (!w->out) {
        status = strata_fail(err, STRATA_IO, "%s: cannot create: %s", path, strerror(errno));
        goto fail;
    }
    /* the output may be a pipe or a device (/dev/stdout, /dev/null): a
     * failed write must not delete it */
    struct stat st;
    w->remove_on_failure = fstat(fileno(w->out), &st) == 0 && S_ISREG(st.st_mode);
    *out = w;
    return STRATA_OK;
fail:
    gguf_writer_free(w);
    return status;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    if (w->out) {
        fclose(w->out);
        if (w->state != WRITER_FINISHED && w->remove_on_failure)
            remove(w->path);
    }
    for (int64_t i = 0; i < w->n_keys; i++)
        free(w->key_names[i]);
    for (int64_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->key_names);
    free(w->tensors);
    free(w->kv_bytes);
    gguf_index_free(&w->key_index);
    gguf_index_free(&w->tensor_index);
    free(w->path);
    free(w);
}

/* --- key encoding ---------------------------------------------------------- */

static bool append(gguf_writer *w, const void *bytes, size_t len)
{
    if (len > SIZE_MAX - w->kv_len)
        return false;
    if (w->kv_len + len > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 256;
        while (cap < w->kv_len + len)
            cap = cap > SIZE_MAX / 2 ? w->kv_len + len : cap * 2;
        uint8_t *grown = realloc(w->kv_bytes, cap);
        if (!grown)
            return false;
        w->kv_bytes = grown;
        w->kv_cap = cap;
    }
    if (len)
        memcpy(w->kv_bytes + w->kv_len, bytes, len);
    w->kv_len += len;
    return true;
}

static bool append_u32(gguf_writer *w, uint32_t v) { return append(w, &v, 4); }
static bool append_u64(gguf_writer *w, uint64_t v) { return append(w, &v, 8); }

static bool append_string(gguf_writer *w, const char *s, size_t len)
{
    return append_u64(w, len) && append(w, s, len);
}

/* Checks the key name is new, records it, and appends the name and type.
 * The caller appends the value bytes, then calls end_key. */
static strata_status begin_key(gguf_writer *w, const char *key, gguf_value_type type, strata_error *err)
{
    strata_status status = check_state(w, WRITER_DECLARING, "add a key", err);
    if (status != STRATA_OK)
        return status;
    if (!key || key[0] == '\0')
        return writer_fail(w, err, STRATA_INVALID_INPUT, "empty key name");
    if (gguf_index_find(&w->key_index, w->key_names, sizeof *w->key_names, key, strlen(key)) >= 0)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "key %s: declared twice", key);
    if (w->n_keys == w->keys_cap) {
        int64_t cap = w->keys_cap ? w->keys_cap * 2 : 16;
        char **grown = realloc(w->key_names, (size_t)cap * sizeof *grown);
        if (!grown)
            return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "key %s: out of memory", key);
        w->key_names = grown;
        w->keys_cap = cap;
    }
    w->key_names[w->n_keys] = strdup(key);
    if (!w->key_names[w->n_keys])
        return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "key %s: out of memory", key);
    w->n_keys++;
    if (!gguf_index_insert(&w->key_index, w->key_names, sizeof *w->key_names, w->n_keys - 1) ||
        !append_string(w, key, strlen(key)) || !append_u32(w, (uint32_t)type))
        return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "key %s: out of memory", key);
    return STRATA_OK;
}

/* general.alignment sets the data alignment; it must be a power-of-two u32
 * like the reader requires. */
static strata_status note_alignment(gguf_writer *w, const char *key, gguf_value_type type, const uint8_t *value,
                                    strata_error *err)
{
    if (strcmp(key, "general.alignment") != 0)
        return STRATA_OK;
    uint32_t alignment = 0;
    if (type == GGUF_TYPE_UINT32)
        memcpy(&alignment, value, 4);
    if (type != GGUF_TYPE_UINT32 || alignment == 0 || (alignment & (alignment - 1)) != 0)
        return writer_fail(w, err, STRATA_INVALID_INPUT,
                           "key general.alignment: must be a uint32 non-zero power of two");
    w->alignment = alignment;
    return STRATA_OK;
}

static bool integer_fits(gguf_value_type type, int64_t v)
{
    switch (type) {
    case GGUF_TYPE_UINT8: return v >= 0 && v <= UINT8_MAX;
    case GGUF_TYPE_INT8: return v >= INT8_MIN && v <= INT8_MAX;
    case GGUF_TYPE_UINT16: return v >= 0 && v <= UINT16_MAX;
    case GGUF_TYPE_INT16: return v >= INT16_MIN && v <= INT16_MAX;
    case GGUF_TYPE_UINT32: return v >= 0 && v <= UINT32_MAX;
    case GGUF_TYPE_INT32: return v >= INT32_MIN && v <= INT32_MAX;
    case GGUF_TYPE_UINT64: return v >= 0;
    case GGUF_TYPE_INT64: return true;
    case GGUF_TYPE_BOOL: return v == 0 || v == 1;
    default: return false;
    }
}

/* Little-endian encoding of an integer that integer_fits(type) accepted. */
static size_t encode_integer(gguf_value_type type, int64_t v, uint8_t out[8])
{
    size_t size = gguf_scalar_size(type);
    uint64_t bits = (uint64_t)v;
    for (size_t i = 0; i < size; i++)
        out[i] = (uint8_t)(bits >> (8 * i));
    return size;
}

strata_status gguf_writer_set_int(gguf_writer *w, const char *key, gguf_value_type type, int64_t value,
                                  strata_error *err)
{
    if (w->state == WRITER_DECLARING && !integer_fits(type, value))
        return writer_fail(w, err, STRATA_INVALID_INPUT, "key %s: %" PRId64 " is not a valid %s", key ? key : "",
                           value, gguf_type_name(type));
    strata_status status = begin_key(w, key, type, err);
    if (status != STRATA_OK)
        return status;
    uint8_t bytes[8];
    size_t size = encode_integer(type, value, bytes);
    if (!append(w, bytes, size))
        return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "key %s: out of memory", key);
    return note_alignment(w, key, type, bytes, err);
}

strata_status gguf_writer_set_float(gguf_writer *w, const char *key, gguf_value_type type, double value,
                                    strata_error *err)
{
    if (w->state == WRITER_DECLARING && type != GGUF_TYPE_FLOAT32 && type != GGUF_TYPE_FLOAT64)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "key %s: %s is not a float type", key ? key : "",
                           gguf_type_name(type));
    strata_status status = begin_key(w, key, type, err);
    if (status != STRATA_OK)
        return status;
    float f32 = (float)value;
    bool ok = type == GGUF_TYPE_FLOAT32 ? append(w, &f32, 4) : append(w, &value, 8);
    if (!ok)
        return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "key %s: out of memory", key);
    return STRATA_OK;
}

strata_status gguf_writer_set_string(gguf_writer *w, const char *key, const char *value, strata_error *err)
{
    if (w->state == WRITER_DECLARING && !value)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "key %s: NULL string", key ? key : "");
    strata_status status = begin_key(w, key, GGUF_TYPE_STRING, err);
    if (status != STRATA_OK)
        return status;
    if (!append_string(w, value, strlen(value)))
        return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "key %s: out of memory", key);
    return STRATA_OK;
}

strata_status gguf_writer_set_array(gguf_writer *w, const char *key, gguf_value_type elem_type, const void *values,
                                    uint64_t count, strata_error *err)
{
    size_t elem_size = gguf_scalar_size(elem_type);
    if (w->state == WRITER_DECLARING) {
        if (elem_size == 0)
            return writer_fail(w, err, STRATA_INVALID_INPUT,
                               "key %s: arrays of %s need gguf_writer_set_string_array or gguf_writer_copy_key",
                               key ? key : "", gguf_type_name(elem_type));
        if (count > SIZE_MAX / elem_size || (count > 0 && !values))
            return writer_fail(w, err, STRATA_INVALID_INPUT, "key %s: bad array of %" PRIu64 " elements",
                               key ? key : "", count);
    }
    strata_status status = begin_key(w, key, GGUF_TYPE_ARRAY, err);
    if (status != STRATA_OK)
        return status;
    if (!append_u32(w, (uint32_t)elem_type) || !append_u64(w, count) || !append(w, values, (size_t)count * elem_size))
        return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "key %s: out of memory", key);
    return STRATA_OK;
}

strata_status gguf_writer_set_string_array(gguf_writer *w, const char *key, const char *const *values,
                                           uint64_t count, strata_error *err)
{
    if (w->state == WRITER_DECLARING && count > 0 && !values)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "key %s: NULL array", key ? key : "");
    strata_status status = begin_key(w, key, GGUF_TYPE_ARRAY, err);
    if (status != STRATA_OK)
        return status;
    if (!append_u32(w, GGUF_TYPE_STRING) || !append_u64(w, count))
        return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "key %s: out of memory", key);
    for (uint64_t i = 0; i < count; i++) {
        if (!values[i])
            return writer_fail(w, err, STRATA_INVALID_INPUT, "key %s: element %" PRIu64 " is NULL", key, i);
        if (!append_string(w, values[i], strlen(values[i])))
            return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "key %s: out of memory", key);
    }
    return STRATA_OK;
}

strata_status gguf_writer_copy_key(gguf_writer *w, const gguf_file *src, int64_t key_index, strata_error *err)
{
    if (!src || key_index < 0 || key_index >= src->n_kv)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "copy_key: key index %" PRId64 " out of range", key_index);
    const gguf_kv *kv = &src->kvs[key_index];
    strata_status status = begin_key(w, kv->name, kv->type, err);
    if (status != STRATA_OK)
        return status;
    /* the value encoding is the same in v2 and v3, so the validated bytes
     * (nested arrays included) are copied as they are */
    if (!append(w, kv->value, kv->value_bytes))
        return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "key %s: out of memory", kv->name);
    return note_alignment(w, kv->name, kv->type, kv->value, err);
}

/* --- tensors --------------------------------------------------------------- */

strata_status gguf_writer_add_tensor(gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
                                     strata_dtype dtype, strata_error *err)
{
    strata_status status = check_state(w, WRITER_DECLARING, "add a tensor", err);
    if (status != STRATA_OK)
        return status;
    if (!name || name[0] == '\0')
        return writer_fail(w, err, STRATA_INVALID_INPUT, "empty tensor name");
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "tensor %s: n_dims %d is outside 1..%d", name, n_dims,
                           GGUF_MAX_DIMS);
    const dtype_traits *traits = dtype_get_traits((int)dtype);
    if (!traits)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "tensor %s: unknown dtype %d", name, (int)dtype);
    if (gguf_index_find(&w->tensor_index, w->tensors, sizeof *w->tensors, name, strlen(name)) >= 0)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "tensor %s: declared twice", name);
    writer_tensor t = {.n_dims = n_dims, .dtype = dtype};
    int64_t rows = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 1 || t.ne[d] >= ((int64_t)1 << 62))
            return writer_fail(w, err, STRATA_INVALID_INPUT, "tensor %s: dimension %d is %" PRId64 " (must be >= 1)",
                               name, d, t.ne[d]);
        if (d > 0) {
            if (t.ne[d] > INT64_MAX / rows)
                return writer_fail(w, err, STRATA_INVALID_INPUT, "tensor %s: element count overflows", name);
            rows *= t.ne[d];
        }
    }
    size_t row_bytes;
    if (!dtype_row_bytes(dtype, t.ne[0], &row_bytes))
        return writer_fail(w, err, STRATA_INVALID_INPUT,
                           "tensor %s: ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRId64, name,
                           t.ne[0], traits->name, traits->block_elements);
    if (t.ne[0] > INT64_MAX / rows || (uint64_t)rows > SIZE_MAX / (row_bytes ? row_bytes : 1))
        return writer_fail(w, err, STRATA_INVALID_INPUT, "tensor %s: size overflows", name);
    t.size_bytes = row_bytes * (size_t)rows;
    if (w->n_tensors == w->tensors_cap) {
        int64_t cap = w->tensors_cap ? w->tensors_cap * 2 : 16;
        writer_tensor *grown = realloc(w->tensors, (size_t)cap * sizeof *grown);
        if (!grown)
            return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "tensor %s: out of memory", name);
        w->tensors = grown;
        w->tensors_cap = cap;
    }
    t.name = strdup(name);
    if (!t.name)
        return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "tensor %s: out of memory", name);
    w->tensors[w->n_tensors++] = t;
    if (!gguf_index_insert(&w->tensor_index, w->tensors, sizeof *w->tensors, w->n_tensors - 1))
        return writer_fail(w, err, STRATA_OUT_OF_MEMORY, "tensor %s: out of memory", name);
    return STRATA_OK;
}

/* --- output ------------------------------------------------------------------ */

static strata_status write_bytes(gguf_writer *w, const void *bytes, size_t len, strata_error *err)
{
    if (len && fwrite(bytes, 1, len, w->out) != len)
        return writer_fail(w, err, STRATA_IO, "write failed: %s", strerror(errno));
    return STRATA_OK;
}

static strata_status write_zeros(gguf_writer *w, size_t len, strata_error *err)
{
    static const uint8_t zeros[4096];
    while (len > 0) {
        size_t chunk = len < sizeof zeros ? len : sizeof zeros;
        strata_status status = write_bytes(w, zeros, chunk, err);
        if (status != STRATA_OK)
            return status;
        len -= chunk;
    }
    return STRATA_OK;
}

static size_t padding_for(uint64_t offset, size_t alignment)
{
    return (size_t)((alignment - offset % alignment) % alignment);
}

strata_status gguf_writer_begin_data(gguf_writer *w, strata_error *err)
{
    strata_status status = check_state(w, WRITER_DECLARING, "begin the data section", err);
    if (status != STRATA_OK)
        return status;
    uint64_t offset = 0;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        w->tensors[i].offset = offset;
        uint64_t end = offset + w->tensors[i].size_bytes;
        if (end < offset || end + padding_for(end, w->alignment) < end)
            return writer_fail(w, err, STRATA_INVALID_INPUT, "data section size overflows");
        offset = end + padding_for(end, w->alignment);
    }
    uint32_t header32[2] = {GGUF_MAGIC, w->version};
    uint64_t counts[2] = {(uint64_t)w->n_tensors, (uint64_t)w->n_keys};
    uint64_t header_bytes = sizeof header32 + sizeof counts + w->kv_len;
    if ((status = write_bytes(w, header32, sizeof header32, err)) != STRATA_OK ||
        (status = write_bytes(w, counts, sizeof counts, err)) != STRATA_OK ||
        (status = write_bytes(w, w->kv_bytes, w->kv_len, err)) != STRATA_OK)
        return status;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        uint64_t name_len = strlen(t->name);
        uint32_t n_dims = (uint32_t)t->n_dims, type = (uint32_t)t->dtype;
        if ((status = write_bytes(w, &name_len, 8, err)) != STRATA_OK ||
            (status = write_bytes(w, t->name, (size_t)name_len, err)) != STRATA_OK ||
            (status = write_bytes(w, &n_dims, 4, err)) != STRATA_OK ||
            (status = write_bytes(w, t->ne, 8 * (size_t)t->n_dims, err)) != STRATA_OK ||
            (status = write_bytes(w, &type, 4, err)) != STRATA_OK ||
            (status = write_bytes(w, &t->offset, 8, err)) != STRATA_OK)
            return status;
        header_bytes += 8 + name_len + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
    }
    if ((status = write_zeros(w, padding_for(header_bytes, w->alignment), err)) != STRATA_OK)
        return status;
    w->state = WRITER_WRITING;
    w->current = 0;
    w->current_written = 0;
    return STRATA_OK;
}

strata_status gguf_writer_write_tensor(gguf_writer *w, const void *data, size_t size, strata_error *err)
{
    strata_status status = check_state(w, WRITER_WRITING, "write tensor data", err);
    if (status != STRATA_OK)
        return status;
    if (w->current >= w->n_tensors)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "%zu bytes written after the last tensor", size);
    writer_tensor *t = &w->tensors[w->current];
    size_t left = t->size_bytes - w->current_written;
    if (size > left)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "tensor %s: %zu bytes written but only %zu remain of %zu",
                           t->name, size, left, t->size_bytes);
    if (size > 0 && !data)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "tensor %s: NULL data", t->name);
    if ((status = write_bytes(w, data, size, err)) != STRATA_OK)
        return status;
    w->current_written += size;
    if (w->current_written == t->size_bytes) {
        if ((status = write_zeros(w, padding_for(t->offset + t->size_bytes, w->alignment), err)) != STRATA_OK)
            return status;
        w->current++;
        w->current_written = 0;
    }
    return STRATA_OK;
}

strata_status gguf_writer_skip_tensor(gguf_writer *w, strata_error *err)
{
    strata_status status = check_state(w, WRITER_WRITING, "skip a tensor", err);
    if (status != STRATA_OK)
        return status;
    if (w->current >= w->n_tensors)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "a tensor skipped after the last one");
    writer_tensor *t = &w->tensors[w->current];
    if (w->current_written != 0)
        return writer_fail(w, err, STRATA_INVALID_INPUT, "tensor %s: skipped after %zu of its bytes were written",
                           t->name, w->current_written);
    uint64_t span = t->size_bytes + padding_for(t->offset + t->size_bytes, w->alignment);
    if (span > (uint64_t)INT64_MAX || fseeko(w->out, (off_t)span, SEEK_CUR) != 0)
        return writer_fail(w, err, STRATA_IO, "%s: cannot skip %s (is the output a file?): %s", w->path, t->name,
                           strerror(errno));
    w->skipped_to_end = true;
    w->current++;
    return STRATA_OK;
}

strata_status gguf_writer_finish(gguf_writer *w, strata_error *err)
{
    strata_status status;
    if (w->state == WRITER_DECLARING && (status = gguf_writer_begin_data(w, err)) != STRATA_OK)
        return status;
    if ((status = check_state(w, WRITER_WRITING, "finish", err)) != STRATA_OK)
        return status;
    if (w->current < w->n_tensors) {
        const writer_tensor *t = &w->tensors[w->current];
        return writer_fail(w, err, STRATA_INVALID_INPUT, "tensor %s received %zu of its %zu bytes (%" PRId64
                           " of %" PRId64 " tensors complete)", t->name, w->current_written, t->size_bytes,
                           w->current, w->n_tensors);
    }
    if (w->skipped_to_end) {
        /* skipped tensors are holes: the file must still reach its end */
        off_t end = ftello(w->out);
        if (fflush(w->out) != 0 || end < 0 || ftruncate(fileno(w->out), end) != 0)
            return writer_fail(w, err, STRATA_IO, "%s: cannot extend the file over skipped tensors: %s", w->path,
                               strerror(errno));
    }
    FILE *out = w->out;
    w->out = NULL;
    bool flushed = fflush(out) == 0;
    int flush_errno = errno;
    if (fclose(out) != 0 || !flushed) {
        w->state = WRITER_FAILED;
        if (w->remove_on_failure)
            remove(w->path);
        return strata_fail(err, STRATA_IO, "%s: cannot finish writing: %s", w->path,
                           strerror(flushed ? errno : flush_errno));
    }
    w->state = WRITER_FINISHED;
    return STRATA_OK;
}
