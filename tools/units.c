/* Human-readable quantities and a monotonic clock. */
#include "units.h"

#include <stdio.h>
#include <time.h>

const char *units_format_bytes(uint64_t bytes, char *buf, size_t buf_size)
{
    static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = (double)bytes;
    size_t unit = 0;
    while (value >= 1024.0 && unit + 1 < sizeof names / sizeof names[0]) {
        value /= 1024.0;
        unit++;
    }
    if (unit == 0)
        snprintf(buf, buf_size, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, buf_size, "%.2f %s", value, names[unit]);
    return buf;
}

const char *units_format_count(uint64_t count, char *buf, size_t buf_size)
{
    static const char *const names[] = {"", " K", " M", " B", " T"};
    double value = (double)count;
    size_t unit = 0;
    while (value >= 1000.0 && unit + 1 < sizeof names / sizeof names[0]) {
        value /= 1000.0;
        unit++;
    }
    if (unit == 0)
        snprintf(buf, buf_size, "%llu", (unsigned long long)count);
    else
        snprintf(buf, buf_size, "%.2f%s", value, names[unit]);
    return buf;
}

double units_now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}
