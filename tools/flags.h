/* Flags as data: each flag group (model input, sampling, placement, ...) is
 * one table, shared by every command that takes the group, with its help
 * text beside it. flags_parse walks argv once against the tables of a
 * command; flags_print_help prints them.
 *
 * A flag writes into the group's options struct at its offset. Every parser
 * prints one line naming the command, the flag and what is wrong, and the
 * command then exits with status 2. */
#ifndef STRATA_TOOLS_FLAGS_H
#define STRATA_TOOLS_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum flag_kind {
    FLAG_SWITCH,  /* no value: sets a bool to true */
    FLAG_STRING,  /* const char * */
    FLAG_INT,     /* int64_t in [min, max] */
    FLAG_INT32,   /* int32_t in [min, max] */
    FLAG_U64,     /* uint64_t, decimal or 0x-hex */
    FLAG_FLOAT,   /* float in [min, max] */
    FLAG_CUSTOM,  /* parse() does it */
} flag_kind;

typedef struct flag_spec {
    const char *short_name; /* "-m", or NULL */
    const char *long_name;  /* "--model" */
    const char *value_name; /* "FILE"; NULL for switches */
    const char *help;       /* may hold "\n" for more lines */
    flag_kind kind;
    size_t offset;          /* of the field in the group's options struct */
    double min, max;        /* FLAG_INT, FLAG_INT32, FLAG_FLOAT */
    /* FLAG_CUSTOM: parses value into options; prints its own message */
    bool (*parse)(const char *cmd, const char *flag, const char *value, void *options);
    size_t set_offset;      /* when nonzero: a bool set to true once the flag is given */
} flag_spec;

/* Table rows, with designated initializers underneath. */
#define FLAG_ON(SHORT, LONG, HELP, OFFSET)                                                                         \
    {.short_name = SHORT, .long_name = LONG, .help = HELP, .kind = FLAG_SWITCH, .offset = OFFSET}
#define FLAG_VALUE(SHORT, LONG, VALUE, HELP, KIND, OFFSET)                                                         \
    {.short_name = SHORT, .long_name = LONG, .value_name = VALUE, .help = HELP, .kind = KIND, .offset = OFFSET}
#define FLAG_BOUNDED(SHORT, LONG, VALUE, HELP, KIND, OFFSET, MIN, MAX)                                             \
    {.short_name = SHORT, .long_name = LONG, .value_name = VALUE, .help = HELP, .kind = KIND, .offset = OFFSET,    \
     .min = MIN, .max = MAX}
#define FLAG_BOUNDED_SET(SHORT, LONG, VALUE, HELP, KIND, OFFSET, MIN, MAX, SET_OFFSET)                             \
    {.short_name = SHORT, .long_name = LONG, .value_name = VALUE, .help = HELP, .kind = KIND, .offset = OFFSET,    \
     .min = MIN, .max = MAX, .set_offset = SET_OFFSET}
#define FLAG_PARSED(SHORT, LONG, VALUE, HELP, PARSE)                                                               \
    {.short_name = SHORT, .long_name = LONG, .value_name = VALUE, .help = HELP, .kind = FLAG_CUSTOM, .parse = PARSE}

typedef struct flag_group {
    const char *title;      /* "placement" */
    const flag_spec *flags;
    size_t n_flags;
} flag_group;

/* A group and the options struct its flags write into. */
typedef struct flag_target {
    const flag_group *group;
    void *options;
} flag_target;

enum { FLAGS_CONTINUE = -1 };

/* Parses argv[1..] against the targets' tables. -h/--help prints usage and
 * the tables to stdout and returns 0; a bad flag or value returns 2 after
 * one message. An argument that is not a flag goes to *positional when
 * positional is not NULL (one at most), else it returns 2 too. Otherwise
 * FLAGS_CONTINUE. */
int flags_parse(const char *cmd, const char *usage, int argc, char **argv, const flag_target *targets,
                int n_targets, const char **positional);

/* Prints usage, then each group's title and flags. */
void flags_print_help(FILE *out, const char *usage, const flag_target *targets, int n_targets);

#endif
