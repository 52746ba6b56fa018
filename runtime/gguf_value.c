/* GGUF accessors: file properties, typed metadata getters, array views,
 * value formatting and tensor lookup. Every accessor tolerates an index out
 * of range or a type mismatch by returning a zero value, never by reading
 * outside the mapping. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_internal.h"

size_t gguf_scalar_size(gguf_value_type type)
{
    switch (type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

const char *gguf_type_name(gguf_value_type type)
{
    switch (type) {
    case GGUF_TYPE_UINT8: return "uint8";
    case GGUF_TYPE_INT8: return "int8";
    case GGUF_TYPE_UINT16: return "uint16";
    case GGUF_TYPE_INT16: return "int16";
    case GGUF_TYPE_UINT32: return "uint32";
    case GGUF_TYPE_INT32: return "int32";
    case GGUF_TYPE_FLOAT32: return "float32";
    case GGUF_TYPE_BOOL: return "bool";
    case GGUF_TYPE_STRING: return "string";
    case GGUF_TYPE_ARRAY: return "array";
    case GGUF_TYPE_UINT64: return "uint64";
    case GGUF_TYPE_INT64: return "int64";
    case GGUF_TYPE_FLOAT64: return "float64";
    default: return "unknown";
    }
}

const char *gguf_path(const gguf_file *file) { return file->path; }
uint32_t gguf_version(const gguf_file *file) { return file->version; }
size_t gguf_file_size(const gguf_file *file) { return file->size; }
size_t gguf_alignment(const gguf_file *file) { return file->alignment; }
size_t gguf_data_offset(const gguf_file *file) { return file->data_offset; }
int64_t gguf_key_count(const gguf_file *file) { return file->n_kv; }
int64_t gguf_tensor_count(const gguf_file *file) { return file->n_tensors; }

static const gguf_kv *kv_at(const gguf_file *file, int64_t key_index)
{
    if (!file || key_index < 0 || key_index >= file->n_kv)
        return NULL;
    return &file->kvs[key_index];
}

const char *gguf_key_name(const gguf_file *file, int64_t key_index)
{
    const gguf_kv *kv = kv_at(file, key_index);
    return kv ? kv->name : NULL;
}

gguf_value_type gguf_key_type(const gguf_file *file, int64_t key_index)
{
    const gguf_kv *kv = kv_at(file, key_index);
    return kv ? kv->type : GGUF_TYPE_COUNT_;
}

int64_t gguf_find_key(const gguf_file *file, const char *key)
{
    return gguf_index_find(&file->kv_index, file->kvs, sizeof *file->kvs, key, strlen(key));
}

const gguf_tensor_info *gguf_tensor(const gguf_file *file, int64_t tensor_index)
{
    if (!file || tensor_index < 0 || tensor_index >= file->n_tensors)
        return NULL;
    return &file->tensors[tensor_index];
}

const gguf_tensor_info *gguf_find_tensor(const gguf_file *file, const char *name)
{
    int64_t i = gguf_index_find(&file->tensor_index, file->tensors, sizeof *file->tensors, name, strlen(name));
    return i >= 0 ? &file->tensors[i] : NULL;
}

static bool is_integer_type(gguf_value_type type)
{
    switch (type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_BOOL: return true;
    default: return false;
    }
}

/* Decodes one integer scalar; *fits is false for a uint64 above INT64_MAX. */
static int64_t decode_int(const uint8_t *bytes, gguf_value_type type, bool *fits)
{
    *fits = true;
    switch (type) {
    case GGUF_TYPE_UINT8: return bytes[0];
    case GGUF_TYPE_INT8: return (int8_t)bytes[0];
    case GGUF_TYPE_BOOL: return bytes[0] != 0;
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, bytes, 2); return v; }
    case GGUF_TYPE_INT16: { int16_t v; memcpy(&v, bytes, 2); return v; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, bytes, 4); return v; }
    case GGUF_TYPE_INT32: { int32_t v; memcpy(&v, bytes, 4); return v; }
    case GGUF_TYPE_INT64: { int64_t v; memcpy(&v, bytes, 8); return v; }
    case GGUF_TYPE_UINT64: {
        uint64_t v;
        memcpy(&v, bytes, 8);
        *fits = v <= (uint64_t)INT64_MAX;
        return *fits ? (int64_t)v : INT64_MAX;
    }
    default: *fits = false; return 0;
    }
}

static double decode_float(const uint8_t *bytes, gguf_value_type type)
{
    if (type == GGUF_TYPE_FLOAT32) {
        float v;
        memcpy(&v, bytes, 4);
        return v;
    }
    if (type == GGUF_TYPE_FLOAT64) {
        double v;
        memcpy(&v, bytes, 8);
        return v;
    }
    return 0.0;
}

static gguf_string decode_string(const uint8_t *bytes)
{
    gguf_string s;
    memcpy(&s.len, bytes, 8);
    s.data = (const char *)bytes + 8;
    return s;
}

/* Finds key and checks its type class; fills a message naming both types. */
static strata_status lookup(const gguf_file *file, const char *key, bool (*accepts)(gguf_value_type),
                            const char *expected, const gguf_kv **out, strata_error *err)
{
    int64_t i = gguf_find_key(file, key);
    if (i < 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: key %s: missing (expected %s)", file->path, key, expected);
    const gguf_kv *kv = &file->kvs[i];
    if (!accepts(kv->type))
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: key %s: expected %s, found %s", file->path, key, expected,
                           gguf_type_name(kv->type));
    *out = kv;
    return STRATA_OK;
}

static bool is_float_type(gguf_value_type type) { return type == GGUF_TYPE_FLOAT32 || type == GGUF_TYPE_FLOAT64; }
static bool is_bool_type(gguf_value_type type) { return type == GGUF_TYPE_BOOL; }
static bool is_string_type(gguf_value_type type) { return type == GGUF_TYPE_STRING; }
static bool is_array_type(gguf_value_type type) { return type == GGUF_TYPE_ARRAY; }

strata_status gguf_get_int(const gguf_file *file, const char *key, int64_t *out, strata_error *err)
{
    const gguf_kv *kv = NULL;
    strata_status status = lookup(file, key, is_integer_type, "an integer", &kv, err);
    if (status != STRATA_OK)
        return status;
    bool fits;
    int64_t value = decode_int(kv->value, kv->type, &fits);
    if (!fits)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: key %s: value does not fit in int64", file->path, key);
    *out = value;
    return STRATA_OK;
}

strata_status gguf_get_float(const gguf_file *file, const char *key, double *out, strata_error *err)
{
    const gguf_kv *kv = NULL;
    strata_status status = lookup(file, key, is_float_type, "a float", &kv, err);
    if (status == STRATA_OK)
        *out = decode_float(kv->value, kv->type);
    return status;
}

strata_status gguf_get_bool(const gguf_file *file, const char *key, bool *out, strata_error *err)
{
    const gguf_kv *kv = NULL;
    strata_status status = lookup(file, key, is_bool_type, "a bool", &kv, err);
    if (status == STRATA_OK)
        *out = kv->value[0] != 0;
    return status;
}

strata_status gguf_get_string(const gguf_file *file, const char *key, gguf_string *out, strata_error *err)
{
    const gguf_kv *kv = NULL;
    strata_status status = lookup(file, key, is_string_type, "a string", &kv, err);
    if (status == STRATA_OK)
        *out = decode_string(kv->value);
    return status;
}

static gguf_array make_array(const gguf_file *file, const gguf_array_node *node)
{
    gguf_array array = {.file = file, .elem_type = node->elem_type, .count = node->count, .handle = node};
    return array;
}

strata_status gguf_get_array(const gguf_file *file, const char *key, gguf_array *out, strata_error *err)
{
    const gguf_kv *kv = NULL;
    strata_status status = lookup(file, key, is_array_type, "an array", &kv, err);
    if (status == STRATA_OK)
        *out = make_array(file, &kv->array);
    return status;
}

strata_status gguf_get_int_or(const gguf_file *file, const char *key, int64_t fallback, int64_t *out,
                              strata_error *err)
{
    if (gguf_find_key(file, key) < 0) {
        *out = fallback;
        return STRATA_OK;
    }
    return gguf_get_int(file, key, out, err);
}

strata_status gguf_get_float_or(const gguf_file *file, const char *key, double fallback, double *out,
                                strata_error *err)
{
    if (gguf_find_key(file, key) < 0) {
        *out = fallback;
        return STRATA_OK;
    }
    return gguf_get_float(file, key, out, err);
}

strata_status gguf_get_bool_or(const gguf_file *file, const char *key, bool fallback, bool *out, strata_error *err)
{
    if (gguf_find_key(file, key) < 0) {
        *out = fallback;
        return STRATA_OK;
    }
    return gguf_get_bool(file, key, out, err);
}

gguf_array gguf_key_array(const gguf_file *file, int64_t key_index)
{
    const gguf_kv *kv = kv_at(file, key_index);
    if (!kv || kv->type != GGUF_TYPE_ARRAY) {
        gguf_array empty = {.file = file, .elem_type = GGUF_TYPE_COUNT_, .count = 0, .handle = NULL};
        return empty;
    }
    return make_array(file, &kv->array);
}

gguf_string gguf_key_string(const gguf_file *file, int64_t key_index)
{
    const gguf_kv *kv = kv_at(file, key_index);
    if (!kv || kv->type != GGUF_TYPE_STRING) {
        gguf_string empty = {"", 0};
        return empty;
    }
    return decode_string(kv->value);
}

static const gguf_array_node *node_of(const gguf_array *array, uint64_t i)
{
    if (!array || !array->handle)
        return NULL;
    const gguf_array_node *node = array->handle;
    return i < node->count ? node : NULL;
}

int64_t gguf_array_int(const gguf_array *array, uint64_t i)
{
    const gguf_array_node *node = node_of(array, i);
    if (!node || !is_integer_type(node->elem_type))
        return 0;
    bool fits;
    return decode_int(node->elems + i * gguf_scalar_size(node->elem_type), node->elem_type, &fits);
}

double gguf_array_float(const gguf_array *array, uint64_t i)
{
    const gguf_array_node *node = node_of(array, i);
    if (!node || !is_float_type(node->elem_type))
        return 0.0;
    return decode_float(node->elems + i * gguf_scalar_size(node->elem_type), node->elem_type);
}

gguf_string gguf_array_string(const gguf_array *array, uint64_t i)
{
    const gguf_array_node *node = node_of(array, i);
    if (!node || node->elem_type != GGUF_TYPE_STRING) {
        gguf_string empty = {"", 0};
        return empty;
    }
    return decode_string(node->items[i]);
}

gguf_array gguf_array_nested(const gguf_array *array, uint64_t i)
{
    const gguf_array_node *node = node_of(array, i);
    if (!node || node->elem_type != GGUF_TYPE_ARRAY) {
        gguf_array empty = {.file = array ? array->file : NULL, .elem_type = GGUF_TYPE_COUNT_, .count = 0,
                            .handle = NULL};
        return empty;
    }
    return make_array(array->file, &node->children[i]);
}

const void *gguf_array_raw(const gguf_array *array)
{
    if (!array || !array->handle)
        return NULL;
    const gguf_array_node *node = array->handle;
    return gguf_scalar_size(node->elem_type) ? node->elems : NULL;
}

/* --- formatting --------------------------------------------------------- */

enum { FORMAT_ARRAY_ITEMS = 8, FORMAT_STRING_CHARS = 64 };

typedef struct text_sink {
    char *buf;
    size_t size;
    size_t used; /* characters written so far (clipped to size - 1) */
} text_sink;

static void emit(text_sink *sink, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void emit(text_sink *sink, const char *fmt, ...)
{
    if (sink->used + 1 >= sink->size)
        return;
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(sink->buf + sink->used, sink->size - sink->used, fmt, args);
    va_end(args);
    if (n < 0)
        return;
    sink->used += (size_t)n;
    if (sink->used > sink->size - 1)
        sink->used = sink->size - 1;
}

/* A string in double quotes, control bytes escaped, long strings cut. */
static void emit_string(text_sink *sink, gguf_string s)
{
    emit(sink, "\"");
    uint64_t shown = s.len < FORMAT_STRING_CHARS ? s.len : FORMAT_STRING_CHARS;
    for (uint64_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s.data[i];
        if (c == '"' || c == '\\')
            emit(sink, "\\%c", c);
        else if (c == '\n')
            emit(sink, "\\n");
        else if (c < 0x20 || c == 0x7f)
            emit(sink, "\\x%02x", c);
        else
            emit(sink, "%c", c);
    }
    emit(sink, shown < s.len ? "\"..." : "\"");
}

/* The shortest %g rendering that reads back as the same value. */
static void emit_float(text_sink *sink, double value, bool is_f32)
{
    char text[40];
    for (int precision = is_f32 ? 6 : 15; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, value);
        double back = strtod(text, NULL);
        if (is_f32 ? (float)back == (float)value : back == value)
            break;
    }
    emit(sink, "%s", text);
}

static void emit_scalar(text_sink *sink, const uint8_t *bytes, gguf_value_type type)
{
    bool fits;
    if (type == GGUF_TYPE_BOOL)
        emit(sink, "%s", bytes[0] ? "true" : "false");
    else if (type == GGUF_TYPE_UINT64) {
        uint64_t v;
        memcpy(&v, bytes, 8);
        emit(sink, "%" PRIu64, v);
    } else if (is_integer_type(type))
        emit(sink, "%" PRId64, decode_int(bytes, type, &fits));
    else if (is_float_type(type))
        emit_float(sink, decode_float(bytes, type), type == GGUF_TYPE_FLOAT32);
}

static void emit_array(text_sink *sink, const gguf_file *file, const gguf_array_node *node)
{
    gguf_array array = make_array(file, node);
    uint64_t shown = node->count < FORMAT_ARRAY_ITEMS ? node->count : FORMAT_ARRAY_ITEMS;
    emit(sink, "[");
    for (uint64_t i = 0; i < shown; i++) {
        if (i > 0)
            emit(sink, ", ");
        if (node->elem_type == GGUF_TYPE_STRING)
            emit_string(sink, gguf_array_string(&array, i));
        else if (node->elem_type == GGUF_TYPE_ARRAY)
            emit_array(sink, file, &node->children[i]);
        else
            emit_scalar(sink, node->elems + i * gguf_scalar_size(node->elem_type), node->elem_type);
    }
    if (shown < node->count)
        emit(sink, ", ... (%" PRIu64 " %s items)", node->count, gguf_type_name(node->elem_type));
    emit(sink, "]");
}

void gguf_format_value(const gguf_file *file, int64_t key_index, char *buf, size_t buf_size)
{
    if (!buf || buf_size == 0)
        return;
    buf[0] = '\0';
    const gguf_kv *kv = kv_at(file, key_index);
    if (!kv)
        return;
    text_sink sink = {buf, buf_size, 0};
    if (kv->type == GGUF_TYPE_STRING)
        emit_string(&sink, decode_string(kv->value));
    else if (kv->type == GGUF_TYPE_ARRAY)
        emit_array(&sink, file, &kv->array);
    else
        emit_scalar(&sink, kv->value, kv->type);
}
