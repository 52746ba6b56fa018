/* Flag-parsing helpers shared by the subcommands of the strata command.
 *
 * Every parser prints one line on stderr naming the command, the flag and
 * what is wrong ("strata run: -n: 'abc' is not an integer"), and returns
 * false; the caller then returns ARGS_EXIT_USAGE. Nothing here exits. */
#ifndef STRATA_TOOLS_ARGS_H
#define STRATA_TOOLS_ARGS_H

#include <stdbool.h>
#include <stdint.h>

enum {
    ARGS_EXIT_OK = 0,
    ARGS_EXIT_ERROR = 1, /* the command ran and failed */
    ARGS_EXIT_USAGE = 2  /* bad flags */
};

/* True when arg is "-h" or "--help". */
bool args_is_help(const char *arg);

/* The value after the flag at argv[*index]: advances *index and returns
 * argv[*index], or prints "CMD: FLAG needs a value" and returns NULL when
 * the flag is the last argument. */
const char *args_take_value(const char *cmd, int argc, char **argv, int *index);

/* Decimal integer in [min, max] (a leading '-' allowed when min < 0). */
bool args_parse_int(const char *cmd, const char *flag, const char *text, int64_t min, int64_t max, int64_t *out);

/* Unsigned 64-bit decimal or 0x-hex integer (seeds). */
bool args_parse_u64(const char *cmd, const char *flag, const char *text, uint64_t *out);

/* Finite number in [min, max]. */
bool args_parse_float(const char *cmd, const char *flag, const char *text, double min, double max, double *out);

/* Byte count with an optional binary suffix: "4096", "512K", "24G", "1.5G",
 * "8GiB", "100M" (K/M/G/T = 1024^1..4, an optional "B" or "iB" after). */
bool args_parse_size(const char *cmd, const char *flag, const char *text, uint64_t *out);

/* Returns true when text is one of the NULL-terminated choices (exact
 * match), else prints the choices and returns false. */
bool args_parse_choice(const char *cmd, const char *flag, const char *text, const char *const *choices);

/* Prints "CMD: unknown option 'ARG' (see 'CMD --help')" and returns
 * ARGS_EXIT_USAGE. */
int args_unknown(const char *cmd, const char *arg);

#endif
