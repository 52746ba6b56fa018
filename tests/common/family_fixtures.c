/* The transformers fixtures of every family (see family_fixtures.h). */
#include "family_fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "e2e_common.h"
#include "gguf.h"
#include "quant.h"
#include "reference_forward.h"
#include "synth.h"

/* as in make_family_fixtures.py: longer than every sliding window there */
const int32_t family_tokens[] = {1,  17,  203, 45, 299, 8,   150, 77, 312, 64,  5,   190,
                                 33, 271, 128, 99, 3,   256, 140, 11, 318, 60,  222, 101};
const int64_t family_tokens_len = sizeof family_tokens / sizeof family_tokens[0];

/* phi3 uses LongRoPE's long factors (its original context is 16, the tests'
 * contexts 64), phi3_short the short ones (original context 64) */
const char *const family_fixtures[FAMILY_FIXTURE_COUNT] = {"olmo2", "gemma2", "gemma3", "phi3",
                                                           "phi3_short", "llama", "qwen2", "qwen3",
                                                           "mixtral", "qwen3moe", "qwen2moe"};

/* The runtime against the double-precision reference on the same stored
 * weights, with test_e2e_logits' bounds (justified there), the block
 * formats' scaled by n_layer / 2 beyond 2 layers: the quantized files are
 * strata's own, from the F32 fixture. */
const family_type_bound family_type_bounds[FAMILY_TYPE_COUNT] = {
    {"f16", 1e-6}, {"q8_0", 3e-3}, {"q4_k", 3e-3},
};

bool family_quantize_file(const char *src, const char *dst, strata_dtype dtype)
{
    strata_error err = {0};
    gguf_file *file = NULL;
    gguf_writer *writer = NULL;
    float *row = NULL;
    void *packed = NULL;
    bool ok = false;
    if (gguf_open(src, &file, &err) || gguf_writer_create(dst, 3, &writer, &err))
        goto done;
    for (int64_t k = 0; k < gguf_key_count(file); k++)
        if (strcmp(gguf_key_name(file, k), "general.file_type") != 0 &&
            gguf_writer_copy_key(writer, file, k, &err))
            goto done;
    /* each tensor's type: matrices in dtype (or its fallback), the rest as they are */
    strata_dtype *types = calloc((size_t)gguf_tensor_count(file) + 1, sizeof *types);
    if (!types) {
        strata_fail(&err, STRATA_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int64_t t = 0; t < gguf_tensor_count(file); t++) {
        const gguf_tensor_info *info = gguf_tensor(file, t);
        /* matrices and the experts' stacks of them, but not the router
         * (ffn_gate_inp), which llama.cpp's quantizer keeps as it is too */
        bool matrix = (info->n_dims == 2 || info->n_dims == 3) && info->ne[1] > 1 && info->dtype == DTYPE_F32 &&
                      !strstr(info->name, "ffn_gate_inp");
        types[t] = matrix ? synth_fallback_dtype(dtype, info->ne[0]) : info->dtype;
        if (gguf_writer_add_tensor(writer, info->name, info->n_dims, info->ne, types[t], &err))
            break;
    }
    if (err.message[0] || gguf_writer_begin_data(writer, &err)) {
        free(types);
        goto done;
    }
    for (int64_t t = 0; t < gguf_tensor_count(file); t++) {
        const gguf_tensor_info *info = gguf_tensor(file, t);
        if (types[t] == info->dtype) {
            if (gguf_writer_write_tensor(writer, info->data, info->size_bytes, &err))
                break;
            continue;
        }
        size_t row_bytes;
        dtype_row_bytes(types[t], info->ne[0], &row_bytes);
        free(packed);
        free(row);
        packed = malloc(row_bytes);
        row = malloc((size_t)info->ne[0] * sizeof *row);
        if (!packed || !row) {
            strata_fail(&err, STRATA_OUT_OF_MEMORY, "out of memory");
            break;
        }
        int64_t rows = info->ne[1] * (info->n_dims == 3 ? info->ne[2] : 1);
        for (int64_t r = 0; r < rows; r++) {
            memcpy(row, (const char *)info->data + (size_t)r * (size_t)info->ne[0] * sizeof *row,
                   (size_t)info->ne[0] * sizeof *row);
            if (quant_quantize_row(types[t], row, packed, info->ne[0], &err) ||
                gguf_writer_write_tensor(writer, packed, row_bytes, &err))
                break;
        }
        if (err.message[0])
            break;
    }
    free(types);
    ok = !err.message[0] && gguf_writer_finish(writer, &err) == STRATA_OK;
done:
    if (!ok)
        printf("quantize %s -> %s: %s\n", src, dst, err.message);
    free(row);
    free(packed);
    gguf_writer_free(writer);
    gguf_close(file);
    return ok;
}

/* The transformers logits of name as doubles (n_tokens x n_vocab), or NULL. */
static double *read_logits(const char *data_dir, const char *name, int64_t n_vocab)
{
    char path[600];
    snprintf(path, sizeof path, "%s/families/%s_logits.bin", data_dir, name);
    size_t count = (size_t)(family_tokens_len * n_vocab);
    float *raw = malloc(count * sizeof *raw);
    double *logits = malloc(count * sizeof *logits);
    FILE *file = fopen(path, "rb");
    bool ok = raw && logits && file && fread(raw, sizeof *raw, count, file) == count && fgetc(file) == EOF;
    if (file)
        fclose(file);
    if (ok)
        for (size_t i = 0; i < count; i++)
            logits[i] = raw[i];
    else
        printf("%s: cannot read %zu logits\n", path, count);
    free(raw);
    if (!ok) {
        free(logits);
        return NULL;
    }
    return logits;
}

/* Fills c with rows of got (float) or want_double against want, batch by batch. */
static void compare_rows(const float *got, const double *got_double, const double *want, int64_t n_vocab,
                         double nmse_max, e2e_comparison *c)
{
    float *row = malloc((size_t)n_vocab * sizeof *row);
    *c = (e2e_comparison){.argmax_ok = row != NULL};
    for (int64_t t = 0; row && t < family_tokens_len; t++) {
        for (int64_t i = 0; i < n_vocab; i++)
            row[i] = got ? got[t * n_vocab + i] : (float)got_double[t * n_vocab + i];
        e2e_compare_row(row, want + t * n_vocab, n_vocab, nmse_max, c);
    }
    free(row);
}

bool family_check_reference(const char *data_dir, const char *name, double nmse_max)
{
    char path[600], label[64];
    snprintf(path, sizeof path, "%s/families/%s.gguf", data_dir, name);
    snprintf(label, sizeof label, "%s (reference)", name);
    strata_error err = {0};
    reference_model *ref = NULL;
    double *want = NULL, *got = NULL;
    bool ok = false;
    strata_status status = reference_model_load(path, &ref, &err);
    if (status != STRATA_OK)
        goto fail;
    int64_t n_vocab = reference_model_n_vocab(ref);
    got = malloc((size_t)(family_tokens_len * n_vocab) * sizeof *got);
    if (!got || !(want = read_logits(data_dir, name, n_vocab))) {
        status = strata_fail(&err, STRATA_IO, "no fixture logits, or out of memory");
        goto fail;
    }
    if ((status = reference_forward(ref, family_tokens, family_tokens_len, got, &err)))
        goto fail;
    e2e_comparison c;
    compare_rows(NULL, got, want, n_vocab, nmse_max, &c);
    ok = c.worst_nmse <= nmse_max && c.argmax_ok;
    printf("%-24s %12.3e %12s %9d/%-3d %13s %10.0e  %s\n", label, c.worst_nmse, "", c.argmax_agree, c.argmax_rows,
           "", nmse_max, ok ? "ok" : "FAIL");
fail:
    if (status != STRATA_OK)
        printf("%-24s error: %s\n", label, err.message);
    reference_model_free(ref);
    free(want);
    free(got);
    return ok;
}

/* The model parameters of a fixture on backend: its device 0 alone, or,
 * when the model has experts and the backend does not run the experts'
 * matmul, every layer on that device with the experts on the CPU (the
 * placement the planner makes for such a device). devices holds the list. */
static strata_model_params fixture_params(const char *backend, const char *path, const strata_hparams *hp,
                                          char *devices, size_t devices_size)
{
    strata_model_params params = {.path = path, .backend = backend};
    const backend_registration *registration = backend ? backend_find(backend) : NULL;
    bool refuses_experts = registration && registration->op_kind_supported &&
                           !registration->op_kind_supported(OP_MATMUL_ID);
    if (hp->n_expert > 0 && refuses_experts && strcmp(backend, "cpu") != 0) {
        snprintf(devices, devices_size, "%s0,cpu", backend);
        params.placement.devices = devices;
        params.placement.gpu_layers_set = true;
        params.placement.gpu_layers = hp->n_layer;
    }
    return params;
}

bool family_check_transformers(const char *backend, const char *data_dir, const char *name, double nmse_max)
{
    char path[600], label[64];
    snprintf(path, sizeof path, "%s/families/%s.gguf", data_dir, name);
    snprintf(label, sizeof label, "%s f32 (transformers)", name);
    strata_error err = {0};
    strata_model *model = NULL;
    double *want = NULL;
    e2e_comparison batch = {0}, single = {0};
    bool ok = false;
    strata_hparams hp;
    char devices[64];
    strata_status status = strata_read_hparams(path, &hp, &err);
    if (status != STRATA_OK)
        goto fail;
    strata_model_params params = fixture_params(backend, path, &hp, devices, sizeof devices);
    if ((status = strata_model_load(&params, &model, &err)))
        goto fail;
    int64_t n_vocab = strata_model_hparams(model)->n_vocab;
    if (!(want = read_logits(data_dir, name, n_vocab))) {
        status = strata_fail(&err, STRATA_IO, "no fixture logits");
        goto fail;
    }
    double single_max = nmse_max > E2E_KV_F16_NMSE_FLOOR ? nmse_max : E2E_KV_F16_NMSE_FLOOR;
    if ((status = e2e_run_and_compare(model, DTYPE_F32, false, 64, family_tokens, family_tokens_len, want, n_vocab,
                                      nmse_max, &batch, NULL, &err)) ||
        (status = e2e_run_and_compare(model, DTYPE_F16, true, 64, family_tokens, family_tokens_len, want, n_vocab,
                                      single_max, &single, NULL, &err)))
        goto fail;
    ok = batch.worst_nmse <= nmse_max && single.worst_nmse <= single_max && batch.argmax_ok && single.argmax_ok;
    printf("%-24s %12.3e %12.3e %9d/%-3d %9d/%-3d %10.0e  %s\n", label, batch.worst_nmse, single.worst_nmse,
           batch.argmax_agree, batch.argmax_rows, single.argmax_agree, single.argmax_rows, nmse_max,
           ok ? "ok" : "FAIL");
fail:
    if (status != STRATA_OK)
        printf("%-24s error: %s\n", label, err.message);
    strata_model_free(model);
    free(want);
    return ok;
}

bool family_check_type(const char *backend, const char *data_dir, const char *dir, const char *name,
                       const family_type_bound *bound)
{
    char source[600], path[700], label[64];
    snprintf(source, sizeof source, "%s/families/%s.gguf", data_dir, name);
    snprintf(path, sizeof path, "%s/%s_%s.gguf", dir, name, bound->type);
    snprintf(label, sizeof label, "%s %s", name, bound->type);
    strata_dtype dtype;
    if (!dtype_from_name(bound->type, &dtype)) {
        printf("%-24s unknown type\n", label);
        return false;
    }
    strata_hparams hp;
    strata_error err = {0};
    if (strata_read_hparams(source, &hp, &err) != STRATA_OK) {
        printf("%-24s %s\n", label, err.message);
        return false;
    }
    if (!family_quantize_file(source, path, dtype))
        return false;
    /* the block formats' bound is for test_e2e_logits' 2 layers; the 8-bit
     * rounding of activations adds up over deeper models */
    const dtype_traits *traits = dtype_get_traits((int)dtype);
    double nmse_max = bound->nmse_max;
    if (traits->is_quantized && hp.n_layer > 2)
        nmse_max *= (double)hp.n_layer / 2.0;
    char devices[64];
    strata_model_params params = fixture_params(backend, path, &hp, devices, sizeof devices);
    bool ok = e2e_check_model_placed(&params, label, family_tokens, family_tokens_len, nmse_max, NULL);
    remove(path);
    return ok;
}
