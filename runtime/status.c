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
    snprintf(err->message, sizeof err->message, "%s: %s", prefix, old);
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
