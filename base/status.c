#include "status.h"

#include <stdio.h>
#include <string.h>

strata_status strata_fail(strata_error *err, strata_status status, const char *fmt, ...)
{
    if (err) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, args);
        va_end(args);
        err->status = status;
    }
    return status;
}

strata_status strata_error_prefix(strata_error *err, const char *fmt, ...)
{
    if (!err)
        return STRATA_INVALID_INPUT;
    char prefix[STRATA_ERROR_MESSAGE_MAX];
    char old[STRATA_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, args);
    va_end(args);
    memcpy(old, err->message, sizeof old);
    old[sizeof old - 1] = '\0';
    /* prefix, ": ", then as much of the old message as fits */
    size_t prefix_len = strlen(prefix);
    size_t capacity = sizeof err->message - 1;
    if (prefix_len > capacity)
        prefix_len = capacity;
    memcpy(err->message, prefix, prefix_len);
    size_t used = prefix_len;
    for (const char *sep = ": "; *sep && used < capacity; sep++)
        err->message[used++] = *sep;
    size_t old_len = strlen(old);
    if (old_len > capacity - used)
        old_len = capacity - used;
    memcpy(err->message + used, old, old_len);
    err->message[used + old_len] = '\0';
    return err->status;
}

const char *strata_status_name(strata_status status)
{
    switch (status) {
    case STRATA_OK: return "ok";
    case STRATA_INVALID_INPUT: return "invalid input";
    case STRATA_IO: return "i/o error";
    case STRATA_OUT_OF_MEMORY: return "out of memory";
    case STRATA_UNSUPPORTED: return "unsupported";
    case STRATA_DEVICE_LOST: return "device lost";
    }
    return "unknown status";
}
