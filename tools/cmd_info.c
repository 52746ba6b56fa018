/* strata info: describes a model file (hyper-parameters, file type, tensors,
 * the memory a run needs) without loading the weights. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "file_type.h"
#include "gguf.h"
#include "strata.h"
#include "units.h"

static const char *const INFO_CMD = "strata info";

/* Batch the scratch estimate assumes (strata_context's default max_batch). */
#define INFO_SCRATCH_BATCH 512
/* Logits rows the context keeps on the device at once. */
#define INFO_SCRATCH_LOGITS_ROWS 32

typedef struct info_options {
    const char *model_path;
    int64_t n_ctx; /* 0 = the model's training context */
    strata_dtype kv_dtype;
    bool show_tensors;
    bool show_keys;
} info_options;

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: strata info MODEL [--ctx N] [--kv-type f16|f32] [--keys] [--no-tensors]\n"
            "\n"
            "Describes a GGUF model file without loading its weights: architecture,\n"
            "hyper-parameters, parameter count, file type, every tensor (name, shape,\n"
            "dtype, bytes) and the memory a run needs (weights + KV cache + scratch).\n"
            "\n"
            "  --ctx N           context length for the KV-cache estimate (default: the\n"
            "                    model's training context)\n"
            "  --kv-type T       KV-cache element type, f16 (default) or f32\n"
            "  --keys            also list every metadata key with its value\n"
            "  --no-tensors      leave out the table of tensors\n"
            "  -h, --help        this help\n"
            "\n"
            "A file that is not valid GGUF: one message on stderr, exit status 1. A valid\n"
            "GGUF file that is not a model strata can run: what can be read is printed,\n"
            "then the reason on stderr, exit status 1.\n");
}

/* Parses argv; returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, info_options *opts)
{
    *opts = (info_options){.kv_dtype = DTYPE_F16, .show_tensors = true};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value;
        if (args_is_help(arg)) {
            print_help(stdout);
            return ARGS_EXIT_OK;
        } else if (strcmp(arg, "--ctx") == 0 || strcmp(arg, "-c") == 0) {
            if (!(value = args_take_value(INFO_CMD, argc, argv, &i)) ||
                !args_parse_int(INFO_CMD, arg, value, 0, (int64_t)1 << 24, &opts->n_ctx))
                return ARGS_EXIT_USAGE;
        } else if (strcmp(arg, "--kv-type") == 0) {
            static const char *const kv_types[] = {"f16", "f32", NULL};
            if (!(value = args_take_value(INFO_CMD, argc, argv, &i)) ||
                !args_parse_choice(INFO_CMD, arg, value, kv_types))
                return ARGS_EXIT_USAGE;
            opts->kv_dtype = strcmp(value, "f32") == 0 ? DTYPE_F32 : DTYPE_F16;
        } else if (strcmp(arg, "--keys") == 0) {
            opts->show_keys = true;
        } else if (strcmp(arg, "--no-tensors") == 0) {
            opts->show_tensors = false;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return args_unknown(INFO_CMD, arg);
        } else if (!opts->model_path) {
            opts->model_path = arg;
        } else {
            fprintf(stderr, "%s: more than one model given ('%s' and '%s')\n", INFO_CMD, opts->model_path, arg);
            return ARGS_EXIT_USAGE;
        }
    }
    if (!opts->model_path) {
        fprintf(stderr, "%s: no model given (usage: strata info MODEL)\n", INFO_CMD);
        return ARGS_EXIT_USAGE;
    }
    return -1;
}

/* Activation scratch of one context at the default batch (mirrors the
 * buffers strata_context_create sizes; an estimate, not a promise). */
static uint64_t scratch_bytes_estimate(const strata_hparams *hp)
{
    uint64_t per_token = 3 * (uint64_t)hp->n_embd + 2 * (uint64_t)(hp->n_head * hp->head_dim) +
                         2 * (uint64_t)(hp->n_head_kv * hp->head_dim) + 2 * (uint64_t)hp->n_ff;
    return 4 * (per_token * INFO_SCRATCH_BATCH + (uint64_t)hp->n_vocab * INFO_SCRATCH_LOGITS_ROWS) +
           8 * INFO_SCRATCH_BATCH /* token ids and positions */ + 4 * (uint64_t)hp->n_vocab /* host logits */;
}

static void print_tensor_table(const gguf_file *file)
{
    int name_width = 4;
    for (int64_t i = 0; i < gguf_tensor_count(file); i++) {
        int len = (int)strlen(gguf_tensor(file, i)->name);
        if (len > name_width)
            name_width = len;
    }
    printf("\ntensors (%lld):\n", (long long)gguf_tensor_count(file));
    printf("  %-*s  %-24s %-6s %14s\n", name_width, "name", "shape", "dtype", "bytes");
    for (int64_t i = 0; i < gguf_tensor_count(file); i++) {
        const gguf_tensor_info *info = gguf_tensor(file, i);
        char shape[96];
        int used = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < info->n_dims && used < (int)sizeof shape; d++)
            used += snprintf(shape + used, sizeof shape - (size_t)used, "%s%lld", d ? ", " : "",
                             (long long)info->ne[d]);
        if (used < (int)sizeof shape)
            snprintf(shape + used, sizeof shape - (size_t)used, "]");
        printf("  %-*s  %-24s %-6s %14zu\n", name_width, info->name, shape, dtype_name(info->dtype),
               info->size_bytes);
    }
}

static void print_keys(const gguf_file *file)
{
    char value[512];
    printf("\nmetadata (%lld keys):\n", (long long)gguf_key_count(file));
    for (int64_t k = 0; k < gguf_key_count(file); k++) {
        gguf_format_value(file, k, value, sizeof value);
        printf("  %-40s %-8s %s\n", gguf_key_name(file, k), gguf_type_name(gguf_key_type(file, k)), value);
    }
}

/* What any valid GGUF file has, model or not. */
static void print_file_summary(const info_options *opts, const gguf_file *file)
{
    char a[32];
    printf("file:            %s\n", opts->model_path);
    printf("gguf version:    %u\n", gguf_version(file));
    printf("file size:       %zu bytes (%s)\n", gguf_file_size(file),
           units_format_bytes(gguf_file_size(file), a, sizeof a));
    printf("metadata keys:   %lld\n", (long long)gguf_key_count(file));
    printf("tensors:         %lld\n", (long long)gguf_tensor_count(file));
}

static void print_model_report(const info_options *opts, const gguf_file *file, const strata_hparams *hp)
{
    char a[32], b[32], c[32], d[32];
    int64_t n_ctx = opts->n_ctx > 0 ? opts->n_ctx : hp->n_ctx_train;
    const char *ftype = file_type_name(hp->file_type);

    printf("architecture:    %s\n", hp->arch_name);
    printf("model name:      %s\n", hp->model_name[0] ? hp->model_name : "(none)");
    if (hp->file_type < 0)
        printf("file type:       (not set)\n");
    else
        printf("file type:       %d = %s\n", hp->file_type, ftype ? ftype : "unknown");
    printf("matrix dtype:    %s (the most bytes among weight matrices)\n",
           dtype_name(file_type_dominant_dtype(file)));
    printf("parameters:      %llu (%s)\n", (unsigned long long)hp->n_params,
           units_format_count(hp->n_params, a, sizeof a));

    printf("\nhyper-parameters:\n");
    printf("  n_vocab        %lld\n", (long long)hp->n_vocab);
    printf("  n_embd         %lld\n", (long long)hp->n_embd);
    printf("  n_layer        %lld\n", (long long)hp->n_layer);
    printf("  n_head         %lld\n", (long long)hp->n_head);
    printf("  n_head_kv      %lld\n", (long long)hp->n_head_kv);
    printf("  head_dim       %lld\n", (long long)hp->head_dim);
    printf("  n_ff           %lld\n", (long long)hp->n_ff);
    printf("  n_ctx_train    %lld\n", (long long)hp->n_ctx_train);
    printf("  rms_eps        %g\n", (double)hp->rms_eps);
    printf("  n_rot          %lld\n", (long long)hp->n_rot);
    printf("  rope           %s, freq_base %g, freq_scale %g%s\n", hp->rope_neox ? "neox" : "normal",
           (double)hp->rope_freq_base, (double)hp->rope_freq_scale,
           hp->has_rope_freq_factors ? ", with frequency factors" : "");
    printf("  qkv bias       %s\n", hp->has_qkv_bias ? "yes" : "no");
    printf("  q/k norm       %s\n", hp->has_qk_norm ? "yes" : "no");
    printf("  tied output    %s\n", hp->tied_output ? "yes" : "no");

    if (opts->show_keys)
        print_keys(file);
    if (opts->show_tensors)
        print_tensor_table(file);

    uint64_t kv = strata_kv_cache_bytes(hp, n_ctx, opts->kv_dtype);
    uint64_t scratch = scratch_bytes_estimate(hp);
    printf("\nmemory:\n");
    printf("  weights        %14llu bytes (%s)\n", (unsigned long long)hp->weight_bytes,
           units_format_bytes(hp->weight_bytes, a, sizeof a));
    printf("  KV cache       %14llu bytes (%s; %lld positions, %s)\n", (unsigned long long)kv,
           units_format_bytes(kv, b, sizeof b), (long long)n_ctx, dtype_name(opts->kv_dtype));
    printf("  scratch        %14llu bytes (%s; estimate for batches of %d)\n", (unsigned long long)scratch,
           units_format_bytes(scratch, c, sizeof c), INFO_SCRATCH_BATCH);
    printf("  total          %14llu bytes (%s)\n", (unsigned long long)(hp->weight_bytes + kv + scratch),
           units_format_bytes(hp->weight_bytes + kv + scratch, d, sizeof d));
}

/* Prints the library's message, adding the file name when it lacks it. */
static void print_error(const char *path, const strata_error *err)
{
    if (strstr(err->message, path))
        fprintf(stderr, "%s: %s\n", INFO_CMD, err->message);
    else
        fprintf(stderr, "%s: %s: %s\n", INFO_CMD, path, err->message);
}

int cmd_info(int argc, char **argv)
{
    info_options opts;
    int exit_status = parse_options(argc, argv, &opts);
    if (exit_status >= 0)
        return exit_status;

    strata_error err = {0};
    gguf_file *file = NULL;
    if (gguf_open(opts.model_path, &file, &err) != STRATA_OK) {
        print_error(opts.model_path, &err);
        return ARGS_EXIT_ERROR;
    }
    print_file_summary(&opts, file);
    strata_hparams hp;
    if (strata_read_hparams(opts.model_path, &hp, &err) != STRATA_OK) {
        /* valid GGUF, but not a model strata can run: show what is there */
        if (opts.show_keys)
            print_keys(file);
        if (opts.show_tensors)
            print_tensor_table(file);
        fflush(stdout);
        size_t len = strlen(err.message);
        snprintf(err.message + len, sizeof err.message - len, " (valid GGUF, but not a model strata can run)");
        print_error(opts.model_path, &err);
        gguf_close(file);
        return ARGS_EXIT_ERROR;
    }
    print_model_report(&opts, file, &hp);
    /* what was printed came from the mapping: it holds only if the file
     * did not change meanwhile */
    exit_status = ARGS_EXIT_OK;
    if (gguf_check_unchanged(file, &err) != STRATA_OK) {
        fflush(stdout);
        print_error(opts.model_path, &err);
        exit_status = ARGS_EXIT_ERROR;
    }
    gguf_close(file);
    return exit_status;
}
