/* Reading a test's fixture files. */
#ifndef STRATA_TEST_FILE_H
#define STRATA_TEST_FILE_H

#include <stddef.h>

/* The whole file at path in a new malloc'ed buffer with a NUL after its
 * last byte (so text fixtures can be read as strings), its size in *len.
 * NULL when it cannot be opened or read whole (or memory runs out). */
char *test_read_file(const char *path, size_t *len);

#endif
