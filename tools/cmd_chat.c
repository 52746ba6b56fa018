/* strata chat: an interactive conversation with a model through its chat
 * template (tools/chat_session.c keeps the conversation and its KV cache).
 *
 * stdin gives one user message per line (a terminal or a pipe alike);
 * "/exit" ends, "/clear" forgets the conversation and the cache. stdout
 * carries only the replies, each streamed as it is generated and ended by
 * one newline (and "> " before each line when stdin is a terminal);
 * messages go to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "chat_session.h"
#include "chat_template.h"
#include "commands.h"
#include "placement_flags.h"
#include "sampling_flags.h"
#include "strata.h"

static const char *const CHAT_CMD = "strata chat";

typedef struct chat_options {
    const char *model_path;
    const char *system;
    const char *template_path;
    int64_t n_predict;
    bool verbose;
    sampling_options sampling;
    placement_options placement;
    context_options context;
} chat_options;

/* cmd_run.c: the loading bar */
void cmd_load_progress(void *user, double fraction);

#define CHAT_OPT(field) offsetof(chat_options, field)
static const flag_spec chat_flags[] = {
    FLAG_VALUE("-m", "--model", "FILE", "GGUF model", FLAG_STRING, CHAT_OPT(model_path)),
    FLAG_VALUE(NULL, "--system", "TEXT", "a system message at the start of the conversation", FLAG_STRING,
               CHAT_OPT(system)),
    FLAG_VALUE(NULL, "--chat-template", "FILE",
               "a Jinja template file (replaces the model's; the model's\n"
               "BOS/EOS texts still apply)",
               FLAG_STRING, CHAT_OPT(template_path)),
    FLAG_BOUNDED("-n", "--n-predict", "N",
                 "most tokens per reply (default -1: until the model ends\n"
                 "its turn or the context is full)",
                 FLAG_INT, CHAT_OPT(n_predict), -1, 1 << 30),
    FLAG_ON("-v", "--verbose",
            "print the seed, the plan and, each turn, the prompt tokens\n"
            "fed and taken from the cache (\"prompt tokens: N new, M cached\")",
            CHAT_OPT(verbose)),
};
#undef CHAT_OPT
static const flag_group chat_group = {"conversation", chat_flags, sizeof chat_flags / sizeof chat_flags[0]};

static const char *const CHAT_USAGE =
    "usage: strata chat -m MODEL [sampling flags] [placement flags] [--system TEXT]\n"
    "                   [--chat-template FILE]\n"
    "\n"
    "A conversation through the model's chat template (a model without one gets\n"
    "the plain fallback, \"ROLE: CONTENT\" blocks). Each line of stdin is a user\n"
    "message, from a terminal or a pipe (printf 'Hi\\n/exit\\n' | strata chat ...);\n"
    "/exit ends, /clear forgets the conversation. Replies stream to stdout, one\n"
    "newline after each; a reply ends at the model's end of turn, -n or the end\n"
    "of the context. The KV cache is kept between turns: only the tokens past\n"
    "what the cache already holds are computed. Each reply is what\n"
    "`strata run -p PROMPT --special --no-echo` gives on the conversation as\n"
    "`strata template` renders it (the same seed for every reply). Exit status:\n"
    "0 at /exit or the end of stdin, 1 when a turn or the model failed, 2 for\n"
    "bad flags.\n";

static int parse_options(int argc, char **argv, chat_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->n_predict = -1;
    sampling_options_init(&opts->sampling);
    placement_options_init(&opts->placement);
    context_options_init(&opts->context);
    flag_target targets[] = {{&chat_group, opts},
                             {&sampling_flag_group, &opts->sampling},
                             {&placement_flag_group, &opts->placement},
                             {&context_flag_group, &opts->context}};
    int status = flags_parse(CHAT_CMD, CHAT_USAGE, argc, argv, targets, sizeof targets / sizeof targets[0], NULL);
    if (status != FLAGS_CONTINUE)
        return status;
    if (!opts->model_path) {
        fprintf(stderr, "%s: no model given (-m MODEL)\n", CHAT_CMD);
        return ARGS_EXIT_USAGE;
    }
    if (!opts->sampling.seed_given)
        opts->sampling.params.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)clock();
    return FLAGS_CONTINUE;
}

/* The model's template, or the file's with the model's BOS/EOS texts, or
 * the fallback (said once). NULL after a message. */
static strata_chat_template *load_template(const chat_options *opts)
{
    strata_chat_template *from_model = NULL, *tmpl = NULL;
    strata_error err = {0};
    if (strata_chat_template_from_gguf(opts->model_path, &from_model, &err) != STRATA_OK) {
        fprintf(stderr, "%s: %s\n", CHAT_CMD, err.message);
        return NULL;
    }
    if (!opts->template_path) {
        if (strata_chat_template_is_fallback(from_model))
            fprintf(stderr, "%s: %s has no tokenizer.chat_template; using the plain fallback\n", CHAT_CMD,
                    opts->model_path);
        return from_model;
    }
    if (strata_chat_template_load_file(opts->template_path, &tmpl, &err) != STRATA_OK ||
        strata_chat_template_set_tokens(tmpl, strata_chat_template_bos_token(from_model),
                                        strata_chat_template_eos_token(from_model), &err) != STRATA_OK) {
        fprintf(stderr, "%s: --chat-template %s: %s\n", CHAT_CMD, opts->template_path, err.message);
        strata_chat_template_free(tmpl);
        tmpl = NULL;
    }
    strata_chat_template_free(from_model);
    return tmpl;
}

static void print_text(void *user, const char *text, size_t len)
{
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

/* Strips the line's end ("\n", "\r\n") and trailing blanks of a command. */
static size_t line_length(const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    return len;
}

static bool is_command(const char *line, size_t len, const char *command)
{
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    return len == strlen(command) && memcmp(line, command, len) == 0;
}

/* Reads lines until /exit or the end of stdin. Returns the exit status. */
static int converse(const chat_options *opts, chat_session *session)
{
    bool interactive = isatty(STDIN_FILENO);
    int exit_status = ARGS_EXIT_OK;
    char *line = NULL;
    size_t line_capacity = 0;
    for (;;) {
        if (interactive) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t got = getline(&line, &line_capacity, stdin);
        if (got < 0) {
            if (interactive)
                fputc('\n', stdout);
            break;
        }
        size_t len = line_length(line, (size_t)got);
        if (is_command(line, len, "/exit"))
            break;
        strata_error err = {0};
        if (is_command(line, len, "/clear")) {
            if (chat_session_clear(session, &err) != STRATA_OK) {
                fprintf(stderr, "%s: %s\n", CHAT_CMD, err.message);
                exit_status = ARGS_EXIT_ERROR;
                break;
            }
            if (interactive || opts->verbose)
                fprintf(stderr, "%s: the conversation is cleared\n", CHAT_CMD);
            continue;
        }
        if (len == 0)
            continue;
        chat_turn_stats stats;
        strata_status status = chat_session_turn(session, line, len, opts->n_predict, print_text, NULL, &stats, &err);
        if (stats.n_generated > 0 || status == STRATA_OK) {
            fputc('\n', stdout);
            fflush(stdout);
        }
        if (status != STRATA_OK) {
            fprintf(stderr, "%s: %s\n", CHAT_CMD, err.message);
            exit_status = ARGS_EXIT_ERROR;
            if (status != STRATA_INVALID_INPUT) /* the model or the machine failed: stop */
                break;
            continue;
        }
        if (stats.context_full)
            fprintf(stderr, "%s: the reply stopped at the end of the context (%lld positions); /clear starts over, "
                            "--ctx makes it longer\n",
                    CHAT_CMD, (long long)strata_context_size(session->ctx));
        if (opts->verbose)
            fprintf(stderr,
                    "%s: prompt tokens: %zu new, %zu cached; %.2f tok/s | generated %lld tokens, %.2f tok/s | "
                    "cache %lld positions\n",
                    CHAT_CMD, stats.n_prompt - stats.n_reused, stats.n_reused,
                    stats.prompt_seconds > 0 ? (double)(stats.n_prompt - stats.n_reused) / stats.prompt_seconds : 0.0,
                    (long long)stats.n_generated,
                    stats.generate_seconds > 0 ? (double)stats.n_generated / stats.generate_seconds : 0.0,
                    (long long)strata_context_position(session->ctx));
    }
    free(line);
    return exit_status;
}

int cmd_chat(int argc, char **argv)
{
    chat_options opts;
    int exit_status = parse_options(argc, argv, &opts);
    if (exit_status != FLAGS_CONTINUE)
        return exit_status;

    int progress_shown = -1;
    char device_list[256];
    strata_model_params model_params = {.path = opts.model_path,
                                        .progress = isatty(STDERR_FILENO) ? cmd_load_progress : NULL,
                                        .progress_user = &progress_shown};
    if (!placement_options_apply(CHAT_CMD, &opts.placement, &opts.context, &model_params, device_list,
                                 sizeof device_list))
        return ARGS_EXIT_USAGE;

    exit_status = ARGS_EXIT_ERROR;
    strata_model *model = NULL;
    strata_context *ctx = NULL;
    chat_session session = {0};
    strata_error err = {0};
    strata_chat_template *tmpl = load_template(&opts);
    if (!tmpl)
        goto done;
    strata_status load_status = strata_model_load(&model_params, &model, &err);
    if (progress_shown >= 0)
        fprintf(stderr, "\r\033[K");
    if (load_status != STRATA_OK) {
        fprintf(stderr, "%s: loading the model: %s\n", CHAT_CMD, err.message);
        goto done;
    }
    if (!strata_model_tokenizer(model)) {
        fprintf(stderr, "%s: %s has no tokenizer; a chat needs one\n", CHAT_CMD, opts.model_path);
        goto done;
    }
    const strata_plan *plan = strata_model_plan(model);
    if (plan->note[0])
        fprintf(stderr, "%s: %s\n", CHAT_CMD, plan->note);
    strata_context_params ctx_params = strata_context_default_params();
    ctx_params.kv_dtype = context_options_kv_dtype(&opts.context); /* n_ctx, batch: as planned */
    if (strata_context_create(model, &ctx_params, &ctx, &err) != STRATA_OK) {
        fprintf(stderr, "%s: creating the context: %s\n", CHAT_CMD, err.message);
        goto done;
    }
    if (opts.verbose)
        fprintf(stderr, "%s: %s on %s, context %lld, kv %s, seed %llu\n", CHAT_CMD, opts.model_path,
                strata_model_device_name(model), (long long)strata_context_size(ctx), opts.context.kv_type,
                (unsigned long long)opts.sampling.params.seed);
    if (chat_session_init(&session, model, ctx, tmpl, opts.system, &opts.sampling.params, &err) != STRATA_OK) {
        fprintf(stderr, "%s: %s\n", CHAT_CMD, err.message);
        goto done;
    }
    exit_status = converse(&opts, &session);
done:
    chat_session_free(&session);
    strata_context_free(ctx);
    strata_model_free(model);
    strata_chat_template_free(tmpl);
    return exit_status;
}
