/* strata template: renders a conversation with a model's chat template (or
 * a template file) and prints the prompt text, exactly, to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "chat_template.h"
#include "commands.h"
#include "flags.h"

static const char *const TEMPLATE_CMD = "strata template";

typedef struct template_command_options {
    const char *model_path;
    const char *template_path;
    const char *messages_path;
    const char *tools_path;
    const char *date;
    const char *bos_token;
    const char *eos_token;
    bool no_generation_prompt;
    bool print_template;
    int64_t repeat;    /* --repeat N: render N times, print the time per render */
    json_t *variables; /* --var NAME=JSON, collected */
} template_command_options;

/* --var NAME=JSON: one more variable for the template. */
static bool parse_var(const char *cmd, const char *flag, const char *value, void *options)
{
    template_command_options *opts = options;
    const char *eq = strchr(value, '=');
    if (!eq || eq == value) {
        fprintf(stderr, "%s: %s: '%s' is not NAME=JSON (e.g. enable_thinking=false, reasoning_effort='\"high\"')\n",
                cmd, flag, value);
        return false;
    }
    char name[128];
    size_t name_len = (size_t)(eq - value);
    if (name_len >= sizeof name) {
        fprintf(stderr, "%s: %s: the variable name is too long\n", cmd, flag);
        return false;
    }
    memcpy(name, value, name_len);
    name[name_len] = '\0';
    json_error_t error;
    json_t *parsed = json_loads(eq + 1, JSON_DECODE_ANY, &error);
    if (!parsed) {
        fprintf(stderr, "%s: %s %s: the value is not JSON (%s); a string needs quotes: %s='\"text\"'\n", cmd, flag,
                name, error.text, name);
        return false;
    }
    if (!opts->variables && !(opts->variables = json_object())) {
        json_decref(parsed);
        fprintf(stderr, "%s: out of memory\n", cmd);
        return false;
    }
    if (json_object_set_new(opts->variables, name, parsed) != 0) {
        fprintf(stderr, "%s: %s: '%s' is not a valid variable name\n", cmd, flag, name);
        return false;
    }
    return true;
}

#define TEMPLATE_OPT(field) offsetof(template_command_options, field)
static const flag_spec template_flags[] = {
    FLAG_VALUE("-m", "--model", "FILE", "GGUF model: its tokenizer.chat_template and BOS/EOS texts", FLAG_STRING,
               TEMPLATE_OPT(model_path)),
    FLAG_VALUE(NULL, "--chat-template", "FILE", "a Jinja template file (overrides the model's)", FLAG_STRING,
               TEMPLATE_OPT(template_path)),
    FLAG_VALUE(NULL, "--messages", "FILE", "the conversation: a JSON array of messages (- for stdin)", FLAG_STRING,
               TEMPLATE_OPT(messages_path)),
    FLAG_VALUE(NULL, "--tools", "FILE", "tool definitions: a JSON array (default: tools is none)", FLAG_STRING,
               TEMPLATE_OPT(tools_path)),
    FLAG_ON(NULL, "--no-generation-prompt",
            "do not end with the opening of the assistant's turn\n(add_generation_prompt is true by default)",
            TEMPLATE_OPT(no_generation_prompt)),
    FLAG_PARSED(NULL, "--var", "NAME=JSON", "one more template variable, e.g. enable_thinking=false\n(repeatable)",
                parse_var),
    FLAG_VALUE(NULL, "--date", "YYYY-MM-DD", "the day strftime_now() sees (default: now)", FLAG_STRING,
               TEMPLATE_OPT(date)),
    FLAG_VALUE(NULL, "--bos-token", "TEXT", "the BOS token text (default: the model's)", FLAG_STRING,
               TEMPLATE_OPT(bos_token)),
    FLAG_VALUE(NULL, "--eos-token", "TEXT", "the EOS token text (default: the model's)", FLAG_STRING,
               TEMPLATE_OPT(eos_token)),
    FLAG_ON(NULL, "--print-template", "print the template's source instead of rendering",
            TEMPLATE_OPT(print_template)),
    FLAG_BOUNDED(NULL, "--repeat", "N", "render N times and print the CPU time per render on\nstderr (default 1)",
                 FLAG_INT, TEMPLATE_OPT(repeat), 1, 1000000),
};
#undef TEMPLATE_OPT
static const flag_group template_group = {"template", template_flags,
                                          sizeof template_flags / sizeof template_flags[0]};

static const char *const TEMPLATE_USAGE =
    "usage: strata template (-m MODEL | --chat-template FILE) --messages FILE.json [--tools FILE.json]\n"
    "                       [--no-generation-prompt] [--bos-token TEXT] [--eos-token TEXT] [options]\n"
    "\n"
    "Renders the conversation (OpenAI's JSON array of messages) with the model's\n"
    "chat template (Jinja, as Hugging Face's apply_chat_template renders it),\n"
    "ending with the opening of the assistant's turn unless --no-generation-prompt,\n"
    "and prints the prompt text exactly, with no newline added. The BOS/EOS texts\n"
    "are the model's unless given. A model without a template gets the plain fallback\n"
    "(\"ROLE: CONTENT\" blocks, see README). Exit status 1 when the template cannot\n"
    "be rendered (a message names the line and the construct, or the template's\n"
    "own raise_exception text), 2 for bad flags.\n";

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static json_t *load_json(const char *path, const char *what)
{
    json_error_t error;
    json_t *json = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &error) : json_load_file(path, 0, &error);
    if (!json)
        fprintf(stderr, "%s: %s %s: %s (line %d, column %d)\n", TEMPLATE_CMD, what, path, error.text, error.line,
                error.column);
    return json;
}

int cmd_template(int argc, char **argv)
{
    template_command_options opts = {.repeat = 1};
    flag_target targets[] = {{&template_group, &opts}};
    int exit_status = flags_parse(TEMPLATE_CMD, TEMPLATE_USAGE, argc, argv, targets, 1, NULL);
    strata_chat_template *tmpl = NULL, *model_tmpl = NULL;
    json_t *messages = NULL, *tools = NULL;
    char *prompt = NULL;
    strata_error err = {0};
    if (exit_status != FLAGS_CONTINUE)
        goto done;
    exit_status = ARGS_EXIT_USAGE;
    if (!opts.model_path && !opts.template_path) {
        fprintf(stderr, "%s: give -m MODEL or --chat-template FILE (see '%s --help')\n", TEMPLATE_CMD, TEMPLATE_CMD);
        goto done;
    }
    if (!opts.messages_path && !opts.print_template) {
        fprintf(stderr, "%s: --messages FILE is required (see '%s --help')\n", TEMPLATE_CMD, TEMPLATE_CMD);
        goto done;
    }
    exit_status = ARGS_EXIT_ERROR;
    /* the model gives the BOS/EOS texts even when --chat-template replaces its template */
    if (opts.model_path && strata_chat_template_from_gguf(opts.model_path, &model_tmpl, &err) != STRATA_OK) {
        fprintf(stderr, "%s: %s\n", TEMPLATE_CMD, err.message);
        goto done;
    }
    if (opts.template_path) {
        if (strata_chat_template_load_file(opts.template_path, &tmpl, &err) != STRATA_OK) {
            fprintf(stderr, "%s: %s\n", TEMPLATE_CMD, err.message);
            goto done;
        }
    } else {
        tmpl = model_tmpl;
        model_tmpl = NULL;
        if (strata_chat_template_is_fallback(tmpl))
            fprintf(stderr, "%s: %s has no tokenizer.chat_template; using the plain fallback\n", TEMPLATE_CMD,
                    opts.model_path);
    }
    if (opts.print_template) {
        fputs(strata_chat_template_source(tmpl), stdout);
        exit_status = fflush(stdout) == 0 ? ARGS_EXIT_OK : ARGS_EXIT_ERROR;
        goto done;
    }
    if (!(messages = load_json(opts.messages_path, "--messages")))
        goto done;
    if (opts.tools_path && !(tools = load_json(opts.tools_path, "--tools")))
        goto done;
    strata_chat_options options = {.add_generation_prompt = !opts.no_generation_prompt,
                                   .bos_token = opts.bos_token,
                                   .eos_token = opts.eos_token,
                                   .tools = tools,
                                   .variables = opts.variables,
                                   .date = opts.date};
    /* the BOS/EOS texts of the model when a template file replaces its template */
    if (model_tmpl && strata_chat_template_set_tokens(tmpl, strata_chat_template_bos_token(model_tmpl),
                                                      strata_chat_template_eos_token(model_tmpl), &err) != STRATA_OK) {
        fprintf(stderr, "%s: %s\n", TEMPLATE_CMD, err.message);
        goto done;
    }
    size_t len = 0;
    double start = cpu_seconds();
    for (int64_t i = 0; i < opts.repeat; i++) {
        free(prompt);
        prompt = NULL;
        if (strata_chat_template_render(tmpl, messages, &options, &prompt, &len, &err) != STRATA_OK) {
            fprintf(stderr, "%s: %s\n", TEMPLATE_CMD, err.message);
            goto done;
        }
    }
    if (opts.repeat > 1)
        fprintf(stderr, "%s: %lld renders, %.3f ms of CPU time per render, %zu bytes\n", TEMPLATE_CMD,
                (long long)opts.repeat, (cpu_seconds() - start) * 1e3 / (double)opts.repeat, len);
    if (fwrite(prompt, 1, len, stdout) != len || fflush(stdout) != 0) {
        fprintf(stderr, "%s: writing the prompt failed\n", TEMPLATE_CMD);
        goto done;
    }
    exit_status = ARGS_EXIT_OK;
done:
    free(prompt);
    json_decref(messages);
    json_decref(tools);
    json_decref(opts.variables);
    strata_chat_template_free(tmpl);
    strata_chat_template_free(model_tmpl);
    return exit_status;
}
