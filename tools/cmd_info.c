/* strata info: describes a model file (hyper-parameters, file type, tensors,
 * the memory a run needs) without loading the weights. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "file_type.h"
#include "gguf.h"
#include "placement_flags.h"
#include "plan_print.h"
#include "strata.h"
#include "units.h"

static const char *const INFO_CMD = "strata info";

typedef struct info_options {
    const char *model_path;
    bool no_tensors;
    bool show_keys;
    bool check_weights;
    placement_options placement;
    context_options context;
} info_options;

#define INFO(field) offsetof(info_options, field)
static const flag_spec info_flags[] = {
    FLAG_VALUE("-m", "--model", "FILE", "GGUF model (or give it as the argument)", FLAG_STRING, INFO(model_path)),
    FLAG_ON(NULL, "--keys", "also list every metadata key with its value", INFO(show_keys)),
    FLAG_ON(NULL, "--no-tensors", "leave out the table of tensors", INFO(no_tensors)),
    FLAG_ON(NULL, "--check",
            "also read every weight and check that it is finite\n"
            "(no NaN or infinity; a full read of the file)",
            INFO(check_weights)),
};
#undef INFO
static const flag_group info_group = {"info", info_flags, sizeof info_flags / sizeof info_flags[0]};

static const char *const INFO_USAGE =
    "usage: strata info MODEL [options]\n"
    "\n"
    "Describes a GGUF model file without loading its weights: architecture,\n"
    "hyper-parameters, parameter count, file type, every tensor (name, shape,\n"
    "dtype, bytes) and the memory a run needs, per device, as `strata run`\n"
    "with the same placement and context flags would place it.\n"
    "\n"
    "A file that is not valid GGUF: one message on stderr, exit status 1. A\n"
    "valid file that `strata run` would refuse (another architecture, missing or\n"
    "mis-shaped tensors, a tokenizer beyond the embedding, a model that does not\n"
    "fit the devices): what can be read is printed, then the reason on stderr,\n"
    "exit status 1.\n";

/* Parses argv; returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, info_options *opts)
{
    memset(opts, 0, sizeof *opts);
    placement_options_init(&opts->placement);
    context_options_init(&opts->context);
    flag_target targets[] = {{&info_group, opts},
                             {&placement_flag_group, &opts->placement},
                             {&context_flag_group, &opts->context}};
    const char *positional = NULL;
    int status = flags_parse(INFO_CMD, INFO_USAGE, argc, argv, targets, sizeof targets / sizeof targets[0],
                             &positional);
    if (status != FLAGS_CONTINUE)
        return status;
    if (positional && opts->model_path) {
        fprintf(stderr, "%s: more than one model given ('%s' and '%s')\n", INFO_CMD, opts->model_path, positional);
        return ARGS_EXIT_USAGE;
    }
    if (positional)
        opts->model_path = positional;
    if (!opts->model_path) {
        fprintf(stderr, "%s: no model given (usage: strata info MODEL)\n", INFO_CMD);
        return ARGS_EXIT_USAGE;
    }
    return -1;
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
    char a[32];
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
    if (hp->rope_freq_base_swa != hp->rope_freq_base || hp->rope_freq_scale_swa != hp->rope_freq_scale)
        printf("  rope (local)   freq_base %g, freq_scale %g on sliding-window layers\n",
               (double)hp->rope_freq_base_swa, (double)hp->rope_freq_scale_swa);
    if (hp->has_rope_longrope)
        printf("  longrope       short factors up to %lld positions, long beyond; attention factor %g\n",
               (long long)hp->rope_orig_ctx, (double)hp->rope_attn_factor);
    printf("  qkv bias       %s\n", hp->has_qkv_bias ? "yes" : "no");
    printf("  q/k norm       %s\n", !hp->has_qk_norm ? "no" : hp->qk_norm_full ? "yes, over the projection" : "yes, per head");
    printf("  norms          %s\n", hp->has_pre_norms && hp->has_post_norms ? "before and after attention and FFN"
                                    : hp->has_post_norms                   ? "after attention and FFN"
                                                                           : "before attention and FFN");
    printf("  ffn            %s%s\n", hp->ffn_gelu ? "GeGLU (tanh gelu)" : "SwiGLU",
           hp->fused_gate_up ? ", gate and up fused" : "");
    if (hp->n_expert > 0)
        printf("  experts        %lld of %lld per token, each %lld wide; router softmax, top-%lld%s\n",
               (long long)hp->n_expert_used, (long long)hp->n_expert, (long long)hp->n_ff_exp,
               (long long)hp->n_expert_used, hp->expert_weights_norm ? ", weights renormalized" : "");
    if (hp->n_expert > 0 && hp->n_ff_shexp > 0)
        printf("  shared expert  %lld wide, every token, gated by sigmoid(ffn_gate_inp_shexp . x)\n",
               (long long)hp->n_ff_shexp);
    if (hp->fused_qkv)
        printf("  qkv            fused\n");
    printf("  query scale    %g\n", (double)hp->attn_scale);
    if (hp->embd_scale != 1.0f)
        printf("  embd scale     %g\n", (double)hp->embd_scale);
    if (hp->sliding_window > 0) {
        if (hp->swa_layers == STRATA_SWA_ALL)
            printf("  sliding window %lld positions, every layer\n", (long long)hp->sliding_window);
        else
            printf("  sliding window %lld positions on %lld of every %lld layers (the rest global)\n",
                   (long long)hp->sliding_window, (long long)(hp->swa_period - 1), (long long)hp->swa_period);
    }
    if (hp->attn_softcap > 0.0f || hp->final_softcap > 0.0f)
        printf("  softcap        attention %g, final %g (0: none)\n", (double)hp->attn_softcap,
               (double)hp->final_softcap);
    printf("  tied output    %s\n", hp->tied_output ? "yes" : "no");

    if (opts->show_keys)
        print_keys(file);
    if (!opts->no_tensors)
        print_tensor_table(file);
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
        if (!opts.no_tensors)
            print_tensor_table(file);
        fflush(stdout);
        size_t len = strlen(err.message);
        snprintf(err.message + len, sizeof err.message - len, " (valid GGUF, but not a model strata can run)");
        print_error(opts.model_path, &err);
        gguf_close(file);
        return ARGS_EXIT_ERROR;
    }
    print_model_report(&opts, file, &hp);
    fflush(stdout);
    exit_status = ARGS_EXIT_OK;
    /* what run would refuse, info refuses too: one check for both */
    if (strata_model_check(opts.model_path, opts.check_weights, &err) != STRATA_OK) {
        print_error(opts.model_path, &err);
        gguf_close(file);
        return ARGS_EXIT_ERROR;
    }
    if (opts.check_weights)
        printf("\nweights: every value of every tensor is finite\n");
    /* the memory a run needs: the plan run makes with the same flags */
    strata_model_params params = {.path = opts.model_path};
    char device_list[256];
    if (!placement_options_apply(INFO_CMD, &opts.placement, &opts.context, &params, device_list,
                                 sizeof device_list)) {
        gguf_close(file);
        return ARGS_EXIT_USAGE;
    }
    if (opts.context.n_ctx > hp.n_ctx_train)
        fprintf(stderr, "%s: warning: --ctx %lld is longer than the %lld positions the model was trained on\n",
                INFO_CMD, (long long)opts.context.n_ctx, (long long)hp.n_ctx_train);
    strata_plan *plan = NULL;
    if (strata_plan_file(opts.model_path, &params.placement, &plan, &err) != STRATA_OK) {
        print_error(opts.model_path, &err);
        gguf_close(file);
        return ARGS_EXIT_ERROR;
    }
    printf("\nmemory of a run (as `strata run` with these flags would place it):\n\n");
    plan_print_markdown(stdout, plan, false);
    fflush(stdout);
    if (!plan->fits) {
        fprintf(stderr, "%s: %s: the model %s\n", INFO_CMD, opts.model_path, plan->shortfall);
        exit_status = ARGS_EXIT_ERROR;
    }
    strata_plan_free(plan);
    /* what was printed came from the mapping: it holds only if the file
     * did not change meanwhile */
    if (exit_status == ARGS_EXIT_OK && gguf_check_unchanged(file, &err) != STRATA_OK) {
        print_error(opts.model_path, &err);
        exit_status = ARGS_EXIT_ERROR;
    }
    gguf_close(file);
    return exit_status;
}
