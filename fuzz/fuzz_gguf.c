/* libFuzzer target for the GGUF reader: opens the input with
 * gguf_open_memory and, when it is accepted, touches everything an accessor
 * can reach (every key's rendering, every array element including nested
 * ones, every tensor's bytes), so a value the validator let through that an
 * accessor would read out of bounds shows up under ASan. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gguf.h"

static volatile uint64_t sink;

static void walk_array(const gguf_array *array, int depth)
{
    if (depth > 8)
        return;
    for (uint64_t i = 0; i < array->count; i++) {
        switch (array->elem_type) {
        case GGUF_TYPE_STRING: {
            gguf_string s = gguf_array_string(array, i);
            if (s.len)
                sink += (unsigned char)s.data[s.len - 1];
            break;
        }
        case GGUF_TYPE_ARRAY: {
            gguf_array nested = gguf_array_nested(array, i);
            walk_array(&nested, depth + 1);
            break;
        }
        case GGUF_TYPE_FLOAT32:
        case GGUF_TYPE_FLOAT64: sink += (uint64_t)(gguf_array_float(array, i) != 0.0); break;
        default: sink += (uint64_t)gguf_array_int(array, i); break;
        }
    }
    const void *raw = gguf_array_raw(array);
    if (raw && array->count)
        sink += *(const unsigned char *)raw;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *file = NULL;
    strata_error err;
    if (gguf_open_memory(data, size, "fuzz.gguf", &file, &err) != STRATA_OK)
        return 0;
    char text[512];
    for (int64_t k = 0; k < gguf_key_count(file); k++) {
        const char *name = gguf_key_name(file, k);
        gguf_format_value(file, k, text, sizeof text);
        sink += strlen(text) + (uint64_t)(gguf_find_key(file, name) == k);
        int64_t i;
        double f;
        bool b;
        gguf_string s;
        gguf_array a;
        sink += (uint64_t)gguf_get_int(file, name, &i, &err) + (uint64_t)gguf_get_float(file, name, &f, &err) +
                (uint64_t)gguf_get_bool(file, name, &b, &err) + (uint64_t)gguf_get_string(file, name, &s, &err);
        if (gguf_get_array(file, name, &a, &err) == STRATA_OK)
            walk_array(&a, 0);
        gguf_string key_string = gguf_key_string(file, k);
        if (key_string.len)
            sink += (unsigned char)key_string.data[0];
    }
    for (int64_t t = 0; t < gguf_tensor_count(file); t++) {
        const gguf_tensor_info *info = gguf_tensor(file, t);
        if (gguf_find_tensor(file, info->name) != info)
            __builtin_trap();
        if (info->size_bytes) {
            const uint8_t *bytes = info->data;
            sink += bytes[0] + bytes[info->size_bytes - 1];
        }
    }
    gguf_close(file);
    return 0;
}
