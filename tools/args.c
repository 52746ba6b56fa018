/* Flag-parsing helpers: strict numbers (the whole text must parse, in
 * range), one clear message per mistake. */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool args_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

const char *args_take_value(const char *cmd, int argc, char **argv, int *index)
{
    if (*index + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", cmd, argv[*index]);
        return NULL;
    }
    *index += 1;
    return argv[*index];
}

bool args_parse_int(const char *cmd, const char *flag, const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (text[0] == '\0' || isspace((unsigned char)text[0]) || *end != '\0') {
        fprintf(stderr, "%s: %s: '%s' is not an integer\n", cmd, flag, text);
        return false;
    }
    if (errno == ERANGE || value < min || value > max) {
        fprintf(stderr, "%s: %s: %s is outside [%lld, %lld]\n", cmd, flag, text, (long long)min, (long long)max);
        return false;
    }
    *out = value;
    return true;
}

bool args_parse_u64(const char *cmd, const char *flag, const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (text[0] == '\0' || text[0] == '-' || text[0] == '+' || isspace((unsigned char)text[0])) {
        fprintf(stderr, "%s: %s: '%s' is not an unsigned integer\n", cmd, flag, text);
        return false;
    }
    unsigned long long value = strtoull(text, &end, 0);
    if (*end != '\0') {
        fprintf(stderr, "%s: %s: '%s' is not an unsigned integer\n", cmd, flag, text);
        return false;
    }
    if (errno == ERANGE) {
        fprintf(stderr, "%s: %s: %s does not fit in 64 bits\n", cmd, flag, text);
        return false;
    }
    *out = value;
    return true;
}

bool args_parse_float(const char *cmd, const char *flag, const char *text, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (text[0] == '\0' || isspace((unsigned char)text[0]) || *end != '\0' || !isfinite(value)) {
        fprintf(stderr, "%s: %s: '%s' is not a number\n", cmd, flag, text);
        return false;
    }
    if (value < min || value > max) {
        fprintf(stderr, "%s: %s: %s is outside [%g, %g]\n", cmd, flag, text, min, max);
        return false;
    }
    *out = value;
    return true;
}

bool args_parse_size(const char *cmd, const char *flag, const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (text[0] == '\0' || isspace((unsigned char)text[0]) || end == text || !isfinite(value) || value < 0) {
        fprintf(stderr, "%s: %s: '%s' is not a size (e.g. 4096, 512M, 24G)\n", cmd, flag, text);
        return false;
    }
    double scale = 1;
    const char *suffix = end;
    switch (toupper((unsigned char)*suffix)) {
    case 'K': scale = 1024.0; suffix++; break;
    case 'M': scale = 1024.0 * 1024; suffix++; break;
    case 'G': scale = 1024.0 * 1024 * 1024; suffix++; break;
    case 'T': scale = 1024.0 * 1024 * 1024 * 1024; suffix++; break;
    default: break;
    }
    if (scale > 1 && (suffix[0] == 'i' || suffix[0] == 'I'))
        suffix++;
    if (suffix[0] == 'B' || suffix[0] == 'b')
        suffix++;
    if (*suffix != '\0') {
        fprintf(stderr, "%s: %s: '%s' is not a size (e.g. 4096, 512M, 24G)\n", cmd, flag, text);
        return false;
    }
    double bytes = value * scale;
    if (bytes >= 18446744073709551616.0) {
        fprintf(stderr, "%s: %s: %s is too large\n", cmd, flag, text);
        return false;
    }
    if (scale == 1 && bytes != floor(bytes)) {
        fprintf(stderr, "%s: %s: %s is not a whole number of bytes\n", cmd, flag, text);
        return false;
    }
    *out = (uint64_t)bytes;
    return true;
}

bool args_parse_choice(const char *cmd, const char *flag, const char *text, const char *const *choices)
{
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(text, choices[i]) == 0)
            return true;
    fprintf(stderr, "%s: %s: '%s' is not one of:", cmd, flag, text);
    for (size_t i = 0; choices[i]; i++)
        fprintf(stderr, " %s", choices[i]);
    fprintf(stderr, "\n");
    return false;
}

int args_unknown(const char *cmd, const char *arg)
{
    fprintf(stderr, "%s: unknown option '%s' (see '%s --help')\n", cmd, arg, cmd);
    return ARGS_EXIT_USAGE;
}
