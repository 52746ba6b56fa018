/* The table-driven flag parser (see flags.h). */
#include "flags.h"

#include <string.h>

#include "args.h"

static const flag_spec *find_flag(const flag_target *targets, int n_targets, const char *arg, int *target)
{
    for (int t = 0; t < n_targets; t++) {
        const flag_group *group = targets[t].group;
        for (size_t f = 0; f < group->n_flags; f++) {
            const flag_spec *spec = &group->flags[f];
            if ((spec->short_name && strcmp(arg, spec->short_name) == 0) || strcmp(arg, spec->long_name) == 0) {
                *target = t;
                return spec;
            }
        }
    }
    return NULL;
}

static bool apply(const char *cmd, const char *flag, const flag_spec *spec, const char *value, void *options)
{
    char *field = (char *)options + spec->offset;
    switch (spec->kind) {
    case FLAG_SWITCH: *(bool *)field = true; return true;
    case FLAG_STRING: *(const char **)field = value; return true;
    case FLAG_INT: return args_parse_int(cmd, flag, value, (int64_t)spec->min, (int64_t)spec->max, (int64_t *)field);
    case FLAG_INT32: {
        int64_t parsed;
        if (!args_parse_int(cmd, flag, value, (int64_t)spec->min, (int64_t)spec->max, &parsed))
            return false;
        *(int32_t *)field = (int32_t)parsed;
        return true;
    }
    case FLAG_U64: return args_parse_u64(cmd, flag, value, (uint64_t *)field);
    case FLAG_FLOAT: {
        double parsed;
        if (!args_parse_float(cmd, flag, value, spec->min, spec->max, &parsed))
            return false;
        *(float *)field = (float)parsed;
        return true;
    }
    case FLAG_CUSTOM: return spec->parse(cmd, flag, value, options);
    }
    return false;
}

int flags_parse(const char *cmd, const char *usage, int argc, char **argv, const flag_target *targets,
                int n_targets, const char **positional)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (args_is_help(arg)) {
            flags_print_help(stdout, usage, targets, n_targets);
            return ARGS_EXIT_OK;
        }
        int target = 0;
        const flag_spec *spec = find_flag(targets, n_targets, arg, &target);
        if (!spec) {
            if (arg[0] == '-' && arg[1] != '\0')
                return args_unknown(cmd, arg);
            if (positional && !*positional) {
                *positional = arg;
                continue;
            }
            fprintf(stderr, "%s: unexpected argument '%s' (see '%s --help')\n", cmd, arg, cmd);
            return ARGS_EXIT_USAGE;
        }
        const char *value = NULL;
        if (spec->value_name && !(value = args_take_value(cmd, argc, argv, &i)))
            return ARGS_EXIT_USAGE;
        if (!apply(cmd, arg, spec, value, targets[target].options))
            return ARGS_EXIT_USAGE;
        if (spec->set_offset)
            *(bool *)((char *)targets[target].options + spec->set_offset) = true;
    }
    return FLAGS_CONTINUE;
}

void flags_print_help(FILE *out, const char *usage, const flag_target *targets, int n_targets)
{
    fputs(usage, out);
    for (int t = 0; t < n_targets; t++) {
        const flag_group *group = targets[t].group;
        fprintf(out, "\n%s:\n", group->title);
        for (size_t f = 0; f < group->n_flags; f++) {
            const flag_spec *spec = &group->flags[f];
            char left[64];
            snprintf(left, sizeof left, "%s%s%s%s%s", spec->short_name ? spec->short_name : "",
                     spec->short_name ? ", " : "    ", spec->long_name, spec->value_name ? " " : "",
                     spec->value_name ? spec->value_name : "");
            /* the help text's lines line up after the flag column */
            const char *line = spec->help;
            bool first = true;
            while (line && *line) {
                size_t len = strcspn(line, "\n");
                if (first && strlen(left) <= 27)
                    fprintf(out, "  %-27s %.*s\n", left, (int)len, line);
                else if (first)
                    fprintf(out, "  %s\n  %-27s %.*s\n", left, "", (int)len, line);
                else
                    fprintf(out, "  %-27s %.*s\n", "", (int)len, line);
                first = false;
                line += len + (line[len] == '\n');
            }
        }
    }
}
