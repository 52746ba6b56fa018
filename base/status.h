/* Status codes and error messages shared by every layer of strata.
 *
 * Every fallible library function returns a strata_status and, when it is not
 * STRATA_OK, fills a strata_error with one readable sentence that names the
 * file, the field and what is wrong. Nothing in the library calls exit() or
 * abort() on bad input. */
#ifndef STRATA_STATUS_H
#define STRATA_STATUS_H

#include <stdarg.h>

typedef enum strata_status {
    STRATA_OK = 0,
    STRATA_INVALID_INPUT, /* malformed file, bad argument, absurd dimension */
    STRATA_IO,            /* open/read/write/mmap failed */
    STRATA_OUT_OF_MEMORY, /* host or device allocation failed, or budget exceeded */
    STRATA_UNSUPPORTED,   /* valid, but not implemented here (dtype, arch, op) */
    STRATA_DEVICE_LOST    /* a device stopped answering */
} strata_status;

enum { STRATA_ERROR_MESSAGE_MAX = 1024 };

typedef struct strata_error {
    strata_status status;
    char message[STRATA_ERROR_MESSAGE_MAX];
} strata_error;

/* Records status and a printf-style message in err (err may be NULL) and
 * returns status, so callers can write `return strata_fail(err, ...)`. */
strata_status strata_fail(strata_error *err, strata_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefixes the message already in err with "prefix: " (used to add context
 * such as the file name while an error travels up). Returns err->status. */
strata_status strata_error_prefix(strata_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Short stable name of a status: "ok", "invalid input", ... */
const char *strata_status_name(strata_status status);

#endif
