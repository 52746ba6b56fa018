/* Stop strings across token boundaries (see stop_matcher.h). */
#include "stop_matcher.h"

#include <string.h>

void stop_matcher_init(stop_matcher *matcher, char *const *stops, size_t n_stops)
{
    memset(matcher, 0, sizeof *matcher);
    matcher->stops = stops;
    matcher->n_stops = n_stops;
}

/* Where needle first occurs in text, or -1 (memmem is a GNU extension). */
static long find_bytes(const char *text, size_t len, const char *needle, size_t needle_len)
{
    if (needle_len == 0 || needle_len > len)
        return -1;
    for (size_t i = 0; i + needle_len <= len; i++)
        if (text[i] == needle[0] && memcmp(text + i, needle, needle_len) == 0)
            return (long)i;
    return -1;
}

/* Where the earliest stop string starts in text, or -1. */
static long earliest_stop(const stop_matcher *matcher, const char *text, size_t len)
{
    long best = -1;
    for (size_t s = 0; s < matcher->n_stops; s++) {
        long found = find_bytes(text, len, matcher->stops[s], strlen(matcher->stops[s]));
        if (found >= 0 && (best < 0 || found < best))
            best = found;
    }
    return best;
}

/* The longest tail of text that is a proper start of some stop string: it
 * must be held back, since the next token may complete it. */
static size_t held_tail(const stop_matcher *matcher, const char *text, size_t len)
{
    size_t longest = 0;
    for (size_t s = 0; s < matcher->n_stops; s++) {
        size_t stop_len = strlen(matcher->stops[s]);
        size_t most = stop_len - 1 < len ? stop_len - 1 : len;
        for (size_t k = most; k > longest; k--)
            if (memcmp(text + len - k, matcher->stops[s], k) == 0) {
                longest = k;
                break;
            }
    }
    return longest;
}

/* Decides what held text can go: a complete stop string at p ends the
 * text there unless a longer stop string may still start before p (its
 * beginning is a tail of the held text); at the end of the text (final)
 * nothing more can come. Returns 1 when stopped, 0 when not, -1 when memory
 * ran out. */
static int settle(stop_matcher *matcher, text_buffer *out, bool final)
{
    const char *held = matcher->held.data ? matcher->held.data : "";
    size_t held_len = matcher->held.len;
    long stop_at = earliest_stop(matcher, held, held_len);
    size_t keep = final ? 0 : held_tail(matcher, held, held_len);
    size_t undecided_from = held_len - keep;
    if (stop_at >= 0 && (size_t)stop_at <= undecided_from) {
        matcher->stopped = true;
        bool ok = text_buffer_append(out, held, (size_t)stop_at);
        text_buffer_clear(&matcher->held);
        return ok ? 1 : -1;
    }
    if (!text_buffer_append(out, held, undecided_from))
        return -1;
    text_buffer_consume(&matcher->held, undecided_from);
    return 0;
}

int stop_matcher_feed(stop_matcher *matcher, const char *text, size_t len, text_buffer *out)
{
    if (matcher->stopped)
        return 1;
    if (matcher->n_stops == 0)
        return text_buffer_append(out, text, len) ? 0 : -1;
    if (!text_buffer_append(&matcher->held, text, len))
        return -1;
    return settle(matcher, out, false);
}

int stop_matcher_flush(stop_matcher *matcher, text_buffer *out)
{
    if (matcher->stopped)
        return 1;
    int result = settle(matcher, out, true);
    text_buffer_clear(&matcher->held);
    return result;
}

void stop_matcher_free(stop_matcher *matcher)
{
    text_buffer_free(&matcher->held);
}
