/* strata serve: an OpenAI-compatible server (server/server.h does the
 * work). Takes the model, sampling, placement and context flag groups that
 * `strata run` takes, plus the server's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "placement_flags.h"
#include "sampling_flags.h"
#include "server/server.h"
#include "strata.h"

static const char *const SERVE_CMD = "strata serve";

typedef struct serve_options {
    const char *model_path;
    const char *model_name;
    const char *chat_template_path;
    const char *host;
    int64_t port;
    const char *api_key;
    int64_t n_parallel;
    int64_t max_queue;
    uint64_t max_body;
    bool verbose;
    sampling_options sampling;
    placement_options placement;
    context_options context;
} serve_options;

static bool parse_max_body(const char *cmd, const char *flag, const char *value, void *options)
{
    serve_options *opts = options;
    if (!args_parse_size(cmd, flag, value, &opts->max_body))
        return false;
    if (opts->max_body < 1024) {
        fprintf(stderr, "%s: %s: %s is too small (at least 1K)\n", cmd, flag, value);
        return false;
    }
    return true;
}

#define SERVE(field) offsetof(serve_options, field)
static const flag_spec model_flags[] = {
    FLAG_VALUE("-m", "--model", "FILE", "GGUF model", FLAG_STRING, SERVE(model_path)),
    FLAG_VALUE(NULL, "--alias", "NAME",
               "the model's id in /v1/models and responses\n"
               "(default: the file name without .gguf)",
               FLAG_STRING, SERVE(model_name)),
    FLAG_VALUE(NULL, "--chat-template", "FILE",
               "a Jinja chat template replacing the model's\n"
               "(default: the model's tokenizer.chat_template)",
               FLAG_STRING, SERVE(chat_template_path)),
};
static const flag_group model_group = {"model", model_flags, sizeof model_flags / sizeof model_flags[0]};
static const flag_spec server_flags[] = {
    FLAG_VALUE(NULL, "--host", "ADDR", "address to listen on (default 127.0.0.1)", FLAG_STRING, SERVE(host)),
    FLAG_BOUNDED(NULL, "--port", "N", "port (default 8080; 0 = any free port, printed)", FLAG_INT, SERVE(port), 0,
                 65535),
    FLAG_VALUE(NULL, "--api-key", "KEY",
               "require 'Authorization: Bearer KEY' on every endpoint\n"
               "but /health (default: $STRATA_API_KEY, else none)",
               FLAG_STRING, SERVE(api_key)),
    FLAG_BOUNDED(NULL, "--parallel", "N", "sequences served at once, each with its own\nKV cache (default 4)",
                 FLAG_INT, SERVE(n_parallel), 1, 256),
    FLAG_BOUNDED(NULL, "--queue", "N", "requests waiting for a sequence before new ones\nget 503 (default 64)",
                 FLAG_INT, SERVE(max_queue), 0, 4096),
    FLAG_PARSED(NULL, "--max-body", "SIZE", "largest request body; larger is a 413 (default 8M)", parse_max_body),
    FLAG_ON("-v", "--verbose", "one line per request on stderr", SERVE(verbose)),
};
#undef SERVE
static const flag_group server_group = {"server", server_flags, sizeof server_flags / sizeof server_flags[0]};

static const char *const SERVE_USAGE =
    "usage: strata serve -m MODEL [options]\n"
    "\n"
    "Serves the model over HTTP with OpenAI's API: GET /health, GET /v1/models,\n"
    "POST /v1/completions, POST /v1/chat/completions (streamed with\n"
    "\"stream\": true), GET /metrics (Prometheus). The flags of the sampling\n"
    "group are the defaults for the fields a request leaves out. SIGINT or\n"
    "SIGTERM finish the running step and stop the server.\n";

/* "models/stories260K.gguf" -> "stories260K" */
static void default_model_name(const char *path, char *out, size_t out_size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".gguf") == 0)
        len -= 5;
    snprintf(out, out_size, "%.*s", (int)len, base);
}

int cmd_serve(int argc, char **argv)
{
    serve_options opts;
    memset(&opts, 0, sizeof opts);
    opts.host = "127.0.0.1";
    opts.port = 8080;
    opts.n_parallel = 4;
    opts.max_queue = 64;
    opts.max_body = 8u << 20;
    sampling_options_init(&opts.sampling);
    placement_options_init(&opts.placement);
    context_options_init(&opts.context);
    flag_target targets[] = {{&model_group, &opts},
                             {&server_group, &opts},
                             {&sampling_flag_group, &opts.sampling},
                             {&placement_flag_group, &opts.placement},
                             {&context_flag_group, &opts.context}};
    int status = flags_parse(SERVE_CMD, SERVE_USAGE, argc, argv, targets, sizeof targets / sizeof targets[0], NULL);
    if (status != FLAGS_CONTINUE)
        return status;
    if (!opts.model_path) {
        fprintf(stderr, "%s: no model given (-m MODEL)\n", SERVE_CMD);
        return ARGS_EXIT_USAGE;
    }
    if (!opts.api_key)
        opts.api_key = getenv("STRATA_API_KEY");

    char model_name[256];
    if (opts.model_name)
        snprintf(model_name, sizeof model_name, "%s", opts.model_name);
    else
        default_model_name(opts.model_path, model_name, sizeof model_name);
    char device_list[256];
    serve_config config = {
        .host = opts.host,
        .port = (int)opts.port,
        .api_key = opts.api_key,
        .n_parallel = (int)opts.n_parallel,
        .max_queue = (int)opts.max_queue,
        .max_body = opts.max_body,
        .model_name = model_name,
        .chat_template_path = opts.chat_template_path,
        .model = {.path = opts.model_path},
        .kv_dtype = context_options_kv_dtype(&opts.context),
        .sampling = opts.sampling.params,
        .seed_given = opts.sampling.seed_given,
        .verbose = opts.verbose,
    };
    if (!placement_options_apply(SERVE_CMD, &opts.placement, &opts.context, &config.model, device_list,
                                 sizeof device_list))
        return ARGS_EXIT_USAGE;
    /* room on the devices for every sequence's KV cache and activations */
    config.model.placement.n_sequences = config.n_parallel;
    return serve_run(&config);
}
