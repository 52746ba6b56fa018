/* Hostile variants of a valid GGUF file (see gguf_rewrite.h). */
#include "gguf_rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const rewrite_key *replacement(const rewrite_spec *spec, const char *key)
{
    for (int i = 0; i < spec->n_keys; i++)
        if (strcmp(spec->keys[i].key, key) == 0)
            return &spec->keys[i];
    return NULL;
}

bool gguf_rewrite(const char *src, const char *dst, const rewrite_spec *spec)
{
    strata_error err = {0};
    gguf_file *file = NULL;
    gguf_writer *writer = NULL;
    void *copy = NULL;
    bool ok = false;
    if (gguf_open(src, &file, &err) || gguf_writer_create(dst, 3, &writer, &err))
        goto done;
    if (spec->alignment && gguf_writer_set_int(writer, "general.alignment", GGUF_TYPE_UINT32, spec->alignment, &err))
        goto done;
    for (int64_t k = 0; k < gguf_key_count(file); k++) {
        const char *name = gguf_key_name(file, k);
        if (spec->alignment && strcmp(name, "general.alignment") == 0)
            continue;
        if (replacement(spec, name))
            continue;
        if (gguf_writer_copy_key(writer, file, k, &err))
            goto done;
    }
    for (int i = 0; i < spec->n_keys; i++) {
        const rewrite_key *key = &spec->keys[i];
        strata_status status = STRATA_OK;
        if (key->kind == REWRITE_INT)
            status = gguf_writer_set_int(writer, key->key, key->type, key->int_value, &err);
        else if (key->kind == REWRITE_FLOAT)
            status = gguf_writer_set_float(writer, key->key, key->type, key->float_value, &err);
        else if (key->kind == REWRITE_STRING)
            status = gguf_writer_set_string(writer, key->key, key->string_value, &err);
        if (status != STRATA_OK)
            goto done;
    }
    for (int64_t t = 0; t < gguf_tensor_count(file); t++) {
        const gguf_tensor_info *info = gguf_tensor(file, t);
        if (spec->drop_tensor && strcmp(info->name, spec->drop_tensor) == 0)
            continue;
        if (gguf_writer_add_tensor(writer, info->name, info->n_dims, info->ne, info->dtype, &err))
            goto done;
    }
    if (gguf_writer_begin_data(writer, &err))
        goto done;
    for (int64_t t = 0; t < gguf_tensor_count(file); t++) {
        const gguf_tensor_info *info = gguf_tensor(file, t);
        if (spec->drop_tensor && strcmp(info->name, spec->drop_tensor) == 0)
            continue;
        free(copy);
        if (!(copy = malloc(info->size_bytes ? info->size_bytes : 1))) {
            strata_fail(&err, STRATA_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        memcpy(copy, info->data, info->size_bytes);
        if (spec->edit_tensor)
            spec->edit_tensor(info->name, info->dtype, copy, info->size_bytes, spec->user);
        if (gguf_writer_write_tensor(writer, copy, info->size_bytes, &err))
            goto done;
    }
    ok = gguf_writer_finish(writer, &err) == STRATA_OK;
done:
    if (!ok)
        printf("gguf_rewrite %s -> %s: %s\n", src, dst, err.message);
    free(copy);
    gguf_writer_free(writer);
    gguf_close(file);
    return ok;
}
