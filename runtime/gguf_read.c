/* GGUF v2/v3 reader: takes a file's bytes (gguf_source.c: mapped or read
 * into memory) or a caller's buffer and validates the header, every
 * key/value, every tensor description and the data section before
 * gguf_open returns. Parse time and memory are linear in the
 * file size: every count is checked against the bytes that remain before
 * anything is sized from it. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_guard.h"
#include "gguf_internal.h"

/* Smallest possible encodings, used to bound counts by the remaining bytes. */
#define MIN_KV_BYTES 13      /* u64 name length, 1 name byte, u32 type, >= 0 value bytes */
#define MIN_TENSOR_BYTES 33  /* u64 name length, 1 byte, u32 n_dims, u64 ne, u32 type, u64 offset */
#define MAX_DIM_VALUE ((int64_t)1 << 62)

typedef struct parser {
    const uint8_t *base;
    size_t size;
    size_t pos;
    const char *display;
    char field[192];     /* "key 7 (general.alignment)", for messages */
    strata_error *err;
} parser;

static strata_status parse_fail(parser *p, strata_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static strata_status parse_fail(parser *p, strata_status status, const char *fmt, ...)
{
    char what[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    if (p->field[0])
        return strata_fail(p->err, status, "%s: %s: %s", p->display, p->field, what);
    return strata_fail(p->err, status, "%s: %s", p->display, what);
}

static size_t remaining(const parser *p)
{
    return p->size - p->pos;
}

static strata_status need(parser *p, size_t bytes, const char *what)
{
    if (bytes > remaining(p))
        return parse_fail(p, STRATA_INVALID_INPUT,
                          "truncated: %s at offset 0x%zx needs %zu bytes but the file ends at 0x%zx", what, p->pos,
                          bytes, p->size);
    return STRATA_OK;
}

static strata_status read_u32(parser *p, uint32_t *out, const char *what)
{
    strata_status status = need(p, 4, what);
    if (status != STRATA_OK)
        return status;
    memcpy(out, p->base + p->pos, 4);
    p->pos += 4;
    return STRATA_OK;
}

static strata_status read_u64(parser *p, uint64_t *out, const char *what)
{
    strata_status status = need(p, 8, what);
    if (status != STRATA_OK)
        return status;
    memcpy(out, p->base + p->pos, 8);
    p->pos += 8;
    return STRATA_OK;
}

/* Reads a string header and checks its bytes are present; *out points into
 * the buffer. */
static strata_status read_string(parser *p, gguf_string *out, const char *what)
{
    uint64_t len;
    strata_status status = read_u64(p, &len, what);
    if (status != STRATA_OK)
        return status;
    if (len > remaining(p))
        return parse_fail(p, STRATA_INVALID_INPUT,
                          "%s length %" PRIu64 " at offset 0x%zx runs past the end of the file (%zu bytes remain)",
                          what, len, p->pos - 8, remaining(p));
    out->data = (const char *)(p->base + p->pos);
    out->len = len;
    p->pos += (size_t)len;
    return STRATA_OK;
}

/* Copies a key or tensor name after checking it is non-empty and NUL-free. */
static strata_status copy_name(parser *p, gguf_string name, const char *what, char **out)
{
    if (name.len == 0)
        return parse_fail(p, STRATA_INVALID_INPUT, "%s is empty", what);
    if (memchr(name.data, '\0', (size_t)name.len))
        return parse_fail(p, STRATA_INVALID_INPUT, "%s contains a NUL byte", what);
    *out = malloc((size_t)name.len + 1);
    if (!*out)
        return parse_fail(p, STRATA_OUT_OF_MEMORY, "cannot allocate %" PRIu64 " bytes for the %s", name.len, what);
    memcpy(*out, name.data, (size_t)name.len);
    (*out)[name.len] = '\0';
    return STRATA_OK;
}

static void free_array_node(gguf_array_node *node)
{
    if (node->children)
        for (uint64_t i = 0; i < node->count; i++)
            free_array_node(&node->children[i]);
    free(node->children);
    free(node->items);
    node->children = NULL;
    node->items = NULL;
}

/* Parses the element type, count and elements of an array value; depth is
 * 1 for a key's own array, 2 for an array inside it, and so on. */
static strata_status parse_array(parser *p, int depth, gguf_array_node *node)
{
    uint32_t elem_type;
    uint64_t count;
    strata_status status;
    if ((status = read_u32(p, &elem_type, "array element type")) != STRATA_OK)
        return status;
    if ((status = read_u64(p, &count, "array element count")) != STRATA_OK)
        return status;
    if (elem_type >= GGUF_TYPE_COUNT_)
        return parse_fail(p, STRATA_INVALID_INPUT, "unknown array element type %" PRIu32 " at offset 0x%zx",
                          elem_type, p->pos - 12);
    if (depth >= GGUF_MAX_ARRAY_DEPTH && elem_type == GGUF_TYPE_ARRAY)
        return parse_fail(p, STRATA_INVALID_INPUT, "arrays nested deeper than %d levels at offset 0x%zx",
                          GGUF_MAX_ARRAY_DEPTH, p->pos - 12);
    node->elem_type = (gguf_value_type)elem_type;
    node->count = count;
    node->elems = p->base + p->pos;
    size_t scalar = gguf_scalar_size(node->elem_type);
    /* smallest encoding of one element: a scalar, a string length, or an
     * element type plus count */
    size_t min_elem = scalar ? scalar : elem_type == GGUF_TYPE_STRING ? 8 : 12;
    if (count > remaining(p) / min_elem)
        return parse_fail(p, STRATA_INVALID_INPUT,
                          "array of %" PRIu64 " %s elements at offset 0x%zx cannot fit in the %zu bytes that remain",
                          count, gguf_type_name(node->elem_type), p->pos - 12, remaining(p));
    if (scalar) {
        p->pos += (size_t)count * scalar;
        return STRATA_OK;
    }
    if (count == 0)
        return STRATA_OK;
    if (elem_type == GGUF_TYPE_STRING) {
        node->items = malloc((size_t)count * sizeof *node->items);
        if (!node->items)
            return parse_fail(p, STRATA_OUT_OF_MEMORY, "cannot index an array of %" PRIu64 " strings", count);
        for (uint64_t i = 0; i < count; i++) {
            node->items[i] = p->base + p->pos;
            gguf_string ignored;
            if ((status = read_string(p, &ignored, "array string")) != STRATA_OK)
                return status;
        }
        return STRATA_OK;
    }
    node->children = calloc((size_t)count, sizeof *node->children);
    if (!node->children)
        return parse_fail(p, STRATA_OUT_OF_MEMORY, "cannot index an array of %" PRIu64 " arrays", count);
    for (uint64_t i = 0; i < count; i++)
        if ((status = parse_array(p, depth + 1, &node->children[i])) != STRATA_OK)
            return status;
    return STRATA_OK;
}

/* Parses one key's value of type (already validated < GGUF_TYPE_COUNT_). */
static strata_status parse_value(parser *p, gguf_value_type type, gguf_array_node *node)
{
    if (type == GGUF_TYPE_STRING) {
        gguf_string ignored;
        return read_string(p, &ignored, "string value");
    }
    if (type == GGUF_TYPE_ARRAY)
        return parse_array(p, 1, node);
    size_t bytes = gguf_scalar_size(type);
    strata_status status = need(p, bytes, gguf_type_name(type));
    if (status == STRATA_OK)
        p->pos += bytes;
    return status;
}

static strata_status parse_alignment(parser *p, const gguf_kv *kv, size_t *alignment)
{
    if (kv->type != GGUF_TYPE_UINT32)
        return parse_fail(p, STRATA_INVALID_INPUT, "must be a uint32, found %s", gguf_type_name(kv->type));
    uint32_t value;
    memcpy(&value, kv->value, 4);
    if (value == 0 || (value & (value - 1)) != 0)
        return parse_fail(p, STRATA_INVALID_INPUT, "%" PRIu32 " is not a non-zero power of two", value);
    *alignment = value;
    return STRATA_OK;
}

static strata_status parse_kvs(parser *p, gguf_file *file)
{
    strata_status status;
    if (!gguf_index_init(&file->kv_index, (size_t)file->n_kv))
        return parse_fail(p, STRATA_OUT_OF_MEMORY, "cannot index %" PRId64 " keys", file->n_kv);
    for (int64_t i = 0; i < file->n_kv; i++) {
        gguf_kv *kv = &file->kvs[i];
        gguf_string name;
        snprintf(p->field, sizeof p->field, "key %" PRId64, i);
        if ((status = read_string(p, &name, "key name")) != STRATA_OK)
            return status;
        if ((status = copy_name(p, name, "key name", &kv->name)) != STRATA_OK)
            return status;
        snprintf(p->field, sizeof p->field, "key %" PRId64 " (%s)", i, kv->name);
        if (gguf_index_find(&file->kv_index, file->kvs, sizeof *file->kvs, name.data, (size_t)name.len) >= 0)
            return parse_fail(p, STRATA_INVALID_INPUT, "duplicate key");
        uint32_t type;
        if ((status = read_u32(p, &type, "value type")) != STRATA_OK)
            return status;
        if (type >= GGUF_TYPE_COUNT_)
            return parse_fail(p, STRATA_INVALID_INPUT, "unknown value type %" PRIu32, type);
        kv->type = (gguf_value_type)type;
        kv->value = p->base + p->pos;
        if ((status = parse_value(p, kv->type, &kv->array)) != STRATA_OK)
            return status;
        kv->value_bytes = (size_t)(p->base + p->pos - kv->value);
        if (!gguf_index_insert(&file->kv_index, file->kvs, sizeof *file->kvs, i))
            return parse_fail(p, STRATA_OUT_OF_MEMORY, "cannot index the key");
        if (strcmp(kv->name, "general.alignment") == 0 &&
            (status = parse_alignment(p, kv, &file->alignment)) != STRATA_OK)
            return status;
    }
    p->field[0] = '\0';
    return STRATA_OK;
}

/* Reads one tensor description; sizes are computed with overflow checks. */
static strata_status parse_tensor_info(parser *p, gguf_file *file, int64_t i)
{
    gguf_tensor_info *info = &file->tensors[i];
    gguf_string name;
    strata_status status;
    snprintf(p->field, sizeof p->field, "tensor %" PRId64, i);
    if ((status = read_string(p, &name, "tensor name")) != STRATA_OK)
        return status;
    if ((status = copy_name(p, name, "tensor name", (char **)&info->name)) != STRATA_OK)
        return status;
    snprintf(p->field, sizeof p->field, "tensor %" PRId64 " (%s)", i, info->name);
    if (gguf_index_find(&file->tensor_index, file->tensors, sizeof *file->tensors, name.data, (size_t)name.len) >= 0)
        return parse_fail(p, STRATA_INVALID_INPUT, "duplicate tensor name");
    uint32_t n_dims;
    if ((status = read_u32(p, &n_dims, "n_dims")) != STRATA_OK)
        return status;
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return parse_fail(p, STRATA_INVALID_INPUT, "n_dims %" PRIu32 " is outside 1..%d", n_dims, GGUF_MAX_DIMS);
    info->n_dims = (int)n_dims;
    int64_t n_elements = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        info->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        if ((status = read_u64(p, &ne, "dimension")) != STRATA_OK)
            return status;
        if (ne < 1 || ne >= (uint64_t)MAX_DIM_VALUE)
            return parse_fail(p, STRATA_INVALID_INPUT, "dimension %" PRIu32 " is %" PRIu64 " (must be in 1..2^62)",
                              d, ne);
        info->ne[d] = (int64_t)ne;
        if (info->ne[d] > INT64_MAX / n_elements)
            return parse_fail(p, STRATA_INVALID_INPUT, "the product of the dimensions overflows int64");
        n_elements *= info->ne[d];
    }
    uint32_t type;
    if ((status = read_u32(p, &type, "tensor type")) != STRATA_OK)
        return status;
    const dtype_traits *traits = dtype_get_traits((int)(type > INT32_MAX ? -1 : (int32_t)type));
    if (!traits)
        return parse_fail(p, STRATA_INVALID_INPUT, "unknown tensor type %" PRIu32, type);
    info->dtype = (strata_dtype)type;
    if ((status = read_u64(p, &info->offset, "tensor data offset")) != STRATA_OK)
        return status;
    size_t row_bytes;
    if (!dtype_row_bytes(info->dtype, info->ne[0], &row_bytes))
        return parse_fail(p, STRATA_INVALID_INPUT, "ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRId64,
                          info->ne[0], traits->name, traits->block_elements);
    uint64_t rows = (uint64_t)(n_elements / info->ne[0]);
    if (rows != 0 && row_bytes > SIZE_MAX / rows)
        return parse_fail(p, STRATA_INVALID_INPUT, "the size in bytes overflows");
    info->size_bytes = row_bytes * (size_t)rows;
    if (!gguf_index_insert(&file->tensor_index, file->tensors, sizeof *file->tensors, i))
        return parse_fail(p, STRATA_OUT_OF_MEMORY, "cannot index the tensor");
    return STRATA_OK;
}

/* Sort helper: tensor pointers by offset (qsort has no context argument, so
 * the array holds pointers). */
static int compare_tensor_offsets(const void *a, const void *b)
{
    const gguf_tensor_info *x = *(const gguf_tensor_info *const *)a;
    const gguf_tensor_info *y = *(const gguf_tensor_info *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Checks each tensor's placement in the data section and that no two
 * overlap; sets data pointers. */
static strata_status place_tensors(parser *p, gguf_file *file)
{
    size_t data_bytes = file->size - file->data_offset;
    for (int64_t i = 0; i < file->n_tensors; i++) {
        gguf_tensor_info *info = &file->tensors[i];
        snprintf(p->field, sizeof p->field, "tensor %" PRId64 " (%s)", i, info->name);
        if (info->offset % file->alignment != 0)
            return parse_fail(p, STRATA_INVALID_INPUT, "data offset 0x%" PRIx64 " is not a multiple of the alignment %zu",
                              info->offset, file->alignment);
        if (info->offset > data_bytes || info->size_bytes > data_bytes - info->offset) {
            uint64_t start = file->data_offset + info->offset;
            if (info->offset > data_bytes)
                return parse_fail(p, STRATA_INVALID_INPUT,
                                  "data offset 0x%" PRIx64 " (file offset 0x%" PRIx64 ") past end of file (size 0x%zx)",
                                  info->offset, start, file->size);
            return parse_fail(p, STRATA_INVALID_INPUT, "data [0x%" PRIx64 ", 0x%" PRIx64 ") past end of file (size 0x%zx)",
                              start, start + info->size_bytes, file->size);
        }
        info->data = file->base + file->data_offset + info->offset;
    }
    p->field[0] = '\0';
    if (file->n_tensors < 2)
        return STRATA_OK;
    const gguf_tensor_info **sorted = malloc((size_t)file->n_tensors * sizeof *sorted);
    if (!sorted)
        return parse_fail(p, STRATA_OUT_OF_MEMORY, "cannot sort %" PRId64 " tensors", file->n_tensors);
    for (int64_t i = 0; i < file->n_tensors; i++)
        sorted[i] = &file->tensors[i];
    qsort(sorted, (size_t)file->n_tensors, sizeof *sorted, compare_tensor_offsets);
    strata_status status = STRATA_OK;
    for (int64_t i = 1; i < file->n_tensors; i++) {
        const gguf_tensor_info *prev = sorted[i - 1];
        if (prev->offset + prev->size_bytes > sorted[i]->offset) {
            status = parse_fail(p, STRATA_INVALID_INPUT,
                                "tensor %s: data [0x%" PRIx64 ", 0x%" PRIx64 ") overlaps tensor %s at 0x%" PRIx64,
                                sorted[i]->name, sorted[i]->offset, sorted[i]->offset + sorted[i]->size_bytes,
                                prev->name, prev->offset);
            break;
        }
    }
    free(sorted);
    return status;
}

static strata_status parse_header(parser *p, gguf_file *file)
{
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    strata_status status;
    if (p->size < GGUF_HEADER_BYTES)
        return parse_fail(p, STRATA_INVALID_INPUT, "file is %zu bytes, too small for a GGUF header (%d bytes)",
                          p->size, GGUF_HEADER_BYTES);
    if ((status = read_u32(p, &magic, "magic")) != STRATA_OK)
        return status;
    if (magic != GGUF_MAGIC)
        return parse_fail(p, STRATA_INVALID_INPUT, "bad magic 0x%08" PRIx32 " (not a GGUF file)", magic);
    if ((status = read_u32(p, &file->version, "version")) != STRATA_OK)
        return status;
    if (file->version == 1)
        return parse_fail(p, STRATA_INVALID_INPUT, "GGUF version 1 is not supported (only versions 2 and 3)");
    if (file->version != 2 && file->version != 3) {
        if ((file->version & 0xffff) == 0)
            return parse_fail(p, STRATA_INVALID_INPUT,
                              "unknown GGUF version %" PRIu32 " (a big-endian file? only little-endian v2/v3 are supported)",
                              file->version);
        return parse_fail(p, STRATA_INVALID_INPUT, "unknown GGUF version %" PRIu32 " (only versions 2 and 3)",
                          file->version);
    }
    if ((status = read_u64(p, &n_tensors, "tensor count")) != STRATA_OK)
        return status;
    if ((status = read_u64(p, &n_kv, "key count")) != STRATA_OK)
        return status;
    if (n_kv > remaining(p) / MIN_KV_BYTES)
        return parse_fail(p, STRATA_INVALID_INPUT, "key count %" PRIu64 " cannot fit in the %zu bytes that remain",
                          n_kv, remaining(p));
    if (n_tensors > remaining(p) / MIN_TENSOR_BYTES)
        return parse_fail(p, STRATA_INVALID_INPUT, "tensor count %" PRIu64 " cannot fit in the %zu bytes that remain",
                          n_tensors, remaining(p));
    file->n_kv = (int64_t)n_kv;
    file->n_tensors = (int64_t)n_tensors;
    return STRATA_OK;
}

static strata_status parse_file(parser *p, gguf_file *file)
{
    strata_status status;
    if ((status = parse_header(p, file)) != STRATA_OK)
        return status;
    file->kvs = calloc((size_t)file->n_kv + 1, sizeof *file->kvs);
    file->tensors = calloc((size_t)file->n_tensors + 1, sizeof *file->tensors);
    if (!file->kvs || !file->tensors)
        return parse_fail(p, STRATA_OUT_OF_MEMORY, "cannot allocate tables for %" PRId64 " keys and %" PRId64 " tensors",
                          file->n_kv, file->n_tensors);
    if ((status = parse_kvs(p, file)) != STRATA_OK)
        return status;
    if (!gguf_index_init(&file->tensor_index, (size_t)file->n_tensors))
        return parse_fail(p, STRATA_OUT_OF_MEMORY, "cannot index %" PRId64 " tensors", file->n_tensors);
    for (int64_t i = 0; i < file->n_tensors; i++)
        if ((status = parse_tensor_info(p, file, i)) != STRATA_OK)
            return status;
    p->field[0] = '\0';
    /* the data section starts at the next multiple of the alignment; a file
     * without tensors may end before it */
    size_t pad = (file->alignment - p->pos % file->alignment) % file->alignment;
    if (pad > remaining(p)) {
        if (file->n_tensors > 0)
            return parse_fail(p, STRATA_INVALID_INPUT,
                              "truncated: the data section should start at 0x%zx but the file ends at 0x%zx",
                              p->pos + pad, p->size);
        pad = remaining(p);
    }
    file->data_offset = p->pos + pad;
    return place_tensors(p, file);
}

static strata_status open_buffer(const uint8_t *data, size_t size, const char *display, gguf_file **out,
                                 strata_error *err)
{
    strata_status status;
    gguf_file *file = calloc(1, sizeof *file);
    if (!file)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: cannot allocate the file descriptor", display);
    file->source = (gguf_source){.fd = -1, .guard_slot = FAULT_GUARD_NO_SLOT};
    file->path = strdup(display);
    if (!file->path) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: cannot copy the file name", display);
        goto fail;
    }
    file->base = data;
    file->size = size;
    file->alignment = GGUF_DEFAULT_ALIGNMENT;
    parser p = {.base = data, .size = size, .display = display, .err = err};
    if ((status = parse_file(&p, file)) != STRATA_OK)
        goto fail;
    *out = file;
    return STRATA_OK;
fail:
    gguf_close(file);
    return status;
}

strata_status gguf_open_memory(const void *data, size_t size, const char *display_name, gguf_file **out,
                               strata_error *err)
{
    *out = NULL;
    const char *display = display_name ? display_name : "<memory>";
    if (!data && size != 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: NULL buffer of %zu bytes", display, size);
    static const uint8_t empty[1];
    return open_buffer(data ? data : empty, size, display, out, err);
}

/* gguf_open and gguf_open_read: the file's bytes from gguf_source_open,
 * validated like a caller's buffer, then owned by the file. */
static strata_status open_path(const char *path, bool read_into_memory, gguf_file **out, strata_error *err)
{
    *out = NULL;
    gguf_source source;
    strata_status status = gguf_source_open(path, read_into_memory, &source, err);
    if (status != STRATA_OK)
        return status;
    if ((status = open_buffer(source.bytes, source.size, path, out, err)) != STRATA_OK) {
        gguf_source_close(&source);
        return status;
    }
    (*out)->source = source;
    /* a file truncated or rewritten while it was validated fails here */
    if ((status = gguf_check_unchanged(*out, err)) != STRATA_OK) {
        gguf_close(*out);
        *out = NULL;
    }
    return status;
}

strata_status gguf_open(const char *path, gguf_file **out, strata_error *err)
{
    return open_path(path, false, out, err);
}

strata_status gguf_open_read(const char *path, gguf_file **out, strata_error *err)
{
    return open_path(path, true, out, err);
}

void gguf_close(gguf_file *file)
{
    if (!file)
        return;
    if (file->kvs) {
        for (int64_t i = 0; i < file->n_kv; i++) {
            free(file->kvs[i].name);
            free_array_node(&file->kvs[i].array);
        }
    }
    if (file->tensors)
        for (int64_t i = 0; i < file->n_tensors; i++)
            free((char *)file->tensors[i].name);
    free(file->kvs);
    free(file->tensors);
    gguf_index_free(&file->kv_index);
    gguf_index_free(&file->tensor_index);
    gguf_source_close(&file->source);
    free(file->path);
    free(file);
}
