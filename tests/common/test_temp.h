/* Temporary directories for tests. */
#ifndef STRATA_TEST_TEMP_H
#define STRATA_TEST_TEMP_H

#include <stdbool.h>
#include <stddef.h>

/* Makes a fresh directory under $TMPDIR (or /tmp) named prefix_ plus six
 * random characters, writing its path to out. Returns false on failure. */
bool test_make_temp_dir(char *out, size_t size, const char *prefix);

#endif
