/* Stop strings matched across token boundaries.
 *
 * Generated text is fed in pieces as tokens come; the matcher releases the
 * text that can no longer be the start of a stop string and holds back the
 * rest, so a stop string split over several tokens is found whole and never
 * reaches the client, and no text before it is lost. */
#ifndef STRATA_SERVER_STOP_MATCHER_H
#define STRATA_SERVER_STOP_MATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "text_buffer.h"

typedef struct stop_matcher {
    char *const *stops;  /* borrowed: non-empty NUL-terminated strings */
    size_t n_stops;
    text_buffer held;    /* text that may still be the start of a stop string */
    bool stopped;        /* a stop string was found; later text is dropped */
} stop_matcher;

/* Starts a matcher over stops (borrowed; they must outlive it). */
void stop_matcher_init(stop_matcher *matcher, char *const *stops, size_t n_stops);
/* Feeds len bytes of generated text; appends the text now safe to send to
 * out. A stop string is taken where the earliest one starts in the whole
 * text. Returns 1 when a stop string was found (the text before it is in out,
 * the stop string and anything after are dropped), 0 when not, -1 when
 * memory ran out. */
int stop_matcher_feed(stop_matcher *matcher, const char *text, size_t len, text_buffer *out);
/* At the end of generation: settles the text held back, which may still
 * hold a stop string (one that had to wait to see whether a longer stop
 * string started before it). Returns 1 when a stop string was found (now
 * or before), 0 when not, -1 when memory ran out. */
int stop_matcher_flush(stop_matcher *matcher, text_buffer *out);
void stop_matcher_free(stop_matcher *matcher);

#endif
