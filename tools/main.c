/* strata: dispatches to the subcommands listed below. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "strata.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", cmd_run, "generate text from a model"},
    {"chat", cmd_chat, "talk with a model through its chat template"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server (completions, chat, streaming)"},
    {"bench", cmd_bench, "measure prompt and generation throughput"},
    {"plan", cmd_plan, "where a model's layers would go on the devices, memory and speed"},
    {"info", cmd_info, "describe a model file: hyper-parameters, tensors, memory"},
    {"tokenize", cmd_tokenize, "turn text into token ids with a model's tokenizer"},
    {"template", cmd_template, "render a conversation with a model's chat template"},
    {"synth", cmd_synth, "write a model with random weights of a real shape"},
    {"devices", cmd_devices, "list the devices of every built-in backend"},
};

static void print_usage(FILE *out)
{
    fprintf(out, "usage: strata COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'strata COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("strata 0.1.0\n");
        return 0;
    }
    /* a model file truncated under a run becomes an error naming the file
     * instead of a SIGBUS (the library leaves signals to the program) */
    strata_error err = {0};
    if (strata_install_fault_guard(&err) != STRATA_OK)
        fprintf(stderr, "strata: warning: %s\n", err.message);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "strata: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
