#include "test_temp.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

bool test_make_temp_dir(char *out, size_t size, const char *prefix)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, size, "%s/%s_XXXXXX", base && *base ? base : "/tmp", prefix);
    return mkdtemp(out) != NULL;
}
