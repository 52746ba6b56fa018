/* strata plan: where a model's weights, KV cache and scratch would go on a
 * set of devices (present, or described with --device-spec), how much
 * memory each device needs, and the predicted speed. Reads only the GGUF
 * header; nothing is allocated on the devices. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "file_type.h"
#include "placement_flags.h"
#include "plan_print.h"
#include "strata.h"
#include "units.h"

static const char *const PLAN_CMD = "strata plan";

typedef struct plan_command_options {
    const char *model_path;
    const char *format;
    bool with_tensors;
    int64_t n_parallel;
} plan_command_options;

static bool parse_format(const char *cmd, const char *flag, const char *value, void *options)
{
    static const char *const formats[] = {"md", "json", NULL};
    if (!args_parse_choice(cmd, flag, value, formats))
        return false;
    ((plan_command_options *)options)->format = value;
    return true;
}

#define PLAN_OPT(field) offsetof(plan_command_options, field)
static const flag_spec plan_flags[] = {
    FLAG_VALUE("-m", "--model", "FILE", "GGUF model (only its header is read)", FLAG_STRING, PLAN_OPT(model_path)),
    FLAG_PARSED("-o", "--output", "md|json", "output format (default md)", parse_format),
    FLAG_ON(NULL, "--tensors", "also list every tensor's device (md)", PLAN_OPT(with_tensors)),
    FLAG_BOUNDED(NULL, "--parallel", "N",
                 "sequences at once, each with its own KV cache and\nscratch, as `strata serve --parallel N` "
                 "places them\n(default 1)",
                 FLAG_INT, PLAN_OPT(n_parallel), 1, 256),
};
#undef PLAN_OPT
static const flag_group plan_group = {"plan", plan_flags, sizeof plan_flags / sizeof plan_flags[0]};

static const char *const PLAN_USAGE =
    "usage: strata plan -m MODEL [options]\n"
    "\n"
    "Plans where the model's weights, KV cache and scratch go on the devices\n"
    "(every GPU then the CPU by default, or --device LIST, or hypothetical ones\n"
    "with --device-spec), prints the memory per device against its budget and\n"
    "the predicted decode and prompt speed from a bandwidth model. Present\n"
    "devices are measured first (about a second each; --no-measure skips it).\n"
    "Exit status 1 when the model does not fit, with what is short.\n";

int cmd_plan(int argc, char **argv)
{
    plan_command_options opts = {.format = "md", .n_parallel = 1};
    placement_options placement;
    context_options context;
    placement_options_init(&placement);
    context_options_init(&context);
    flag_target targets[] = {{&plan_group, &opts},
                             {&placement_flag_group, &placement},
                             {&device_spec_flag_group, &placement},
                             {&context_flag_group, &context}};
    int status = flags_parse(PLAN_CMD, PLAN_USAGE, argc, argv, targets, sizeof targets / sizeof targets[0], NULL);
    if (status != FLAGS_CONTINUE)
        return status;
    if (!opts.model_path) {
        fprintf(stderr, "%s: no model given (-m MODEL)\n", PLAN_CMD);
        return ARGS_EXIT_USAGE;
    }
    if (placement.n_specs > 0 && (placement.device_text || placement.backend)) {
        fprintf(stderr, "%s: --device-spec describes the devices; leave out --device and --backend\n", PLAN_CMD);
        return ARGS_EXIT_USAGE;
    }
    strata_model_params params = {0};
    char device_list[256];
    if (!placement_options_apply(PLAN_CMD, &placement, &context, &params, device_list, sizeof device_list))
        return ARGS_EXIT_USAGE;
    params.placement.measure = placement.n_specs == 0 && !placement.no_measure;
    params.placement.n_sequences = (int)opts.n_parallel;

    strata_error err = {0};
    strata_hparams hp;
    double start = units_now_seconds();
    if (strata_read_hparams(opts.model_path, &hp, &err) != STRATA_OK) {
        fprintf(stderr, "%s: %s\n", PLAN_CMD, err.message);
        return ARGS_EXIT_ERROR;
    }
    double header_seconds = units_now_seconds() - start;
    if (context.n_ctx > hp.n_ctx_train)
        fprintf(stderr, "%s: warning: --ctx %lld is longer than the %lld positions the model was trained on\n",
                PLAN_CMD, (long long)context.n_ctx, (long long)hp.n_ctx_train);
    strata_plan *plan = NULL;
    if (strata_plan_file(opts.model_path, &params.placement, &plan, &err) != STRATA_OK) {
        fprintf(stderr, "%s: %s\n", PLAN_CMD, err.message);
        return ARGS_EXIT_ERROR;
    }
    if (strcmp(opts.format, "json") == 0) {
        plan_print_json(stdout, plan);
    } else {
        char description[96], size[32];
        file_type_describe_model(opts.model_path, &hp, description, sizeof description);
        printf("model: %s (%s, %s of weights, %lld layers); header read in %.0f ms\n\n", opts.model_path,
               description, units_format_bytes(hp.weight_bytes, size, sizeof size), (long long)hp.n_layer,
               header_seconds * 1000);
        if (opts.n_parallel > 1)
            printf("sequences: %lld at once, each with its own KV cache and scratch (the figures hold all of them)\n\n",
                   (long long)opts.n_parallel);
        plan_print_markdown(stdout, plan, opts.with_tensors);
    }
    int exit_status = ARGS_EXIT_OK;
    if (!plan->fits) {
        fprintf(stderr, "%s: %s: the model %s\n", PLAN_CMD, opts.model_path, plan->shortfall);
        exit_status = ARGS_EXIT_ERROR;
    }
    strata_plan_free(plan);
    return exit_status;
}
