/* Human-readable quantities for the reports of the strata command. */
#ifndef STRATA_TOOLS_UNITS_H
#define STRATA_TOOLS_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Writes bytes with a binary unit ("512 B", "1.50 KiB", "4.58 GiB") into buf
 * and returns buf. */
const char *units_format_bytes(uint64_t bytes, char *buf, size_t buf_size);

/* Writes a count with a decimal unit ("260.0 K", "8.03 B") into buf and
 * returns buf. */
const char *units_format_count(uint64_t count, char *buf, size_t buf_size);

/* Seconds of a monotonic clock, for timing. */
double units_now_seconds(void);

#endif
