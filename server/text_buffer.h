/* A growable byte buffer, always NUL-terminated, for text the server builds
 * (generated text, SSE events, request bodies). */
#ifndef STRATA_SERVER_TEXT_BUFFER_H
#define STRATA_SERVER_TEXT_BUFFER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct text_buffer {
    char *data;      /* NULL until the first append; then len bytes and a NUL */
    size_t len;
    size_t capacity;
} text_buffer;

/* Appends len bytes. Returns false (the buffer unchanged) when memory runs
 * out. */
bool text_buffer_append(text_buffer *buffer, const char *bytes, size_t len);
/* Appends a NUL-terminated string. */
bool text_buffer_append_str(text_buffer *buffer, const char *text);
/* Appends len bytes with every byte that does not start a valid UTF-8
 * character (stray continuation bytes, overlong forms, surrogates, an
 * incomplete sequence) replaced by U+FFFD, so the result is valid UTF-8 that
 * JSON can carry. Returns false when memory runs out. */
bool text_buffer_append_utf8(text_buffer *buffer, const char *bytes, size_t len);
/* Overwrites, in the NUL-terminated text, every byte that does not start a
 * valid UTF-8 character (as text_buffer_append_utf8 judges it) with '?', so
 * the text keeps its length and becomes valid UTF-8: for fixed-size messages
 * that quote client bytes or were cut inside a character by snprintf. */
void text_repair_utf8_in_place(char *text);
/* Drops the first count bytes (count <= len). */
void text_buffer_consume(text_buffer *buffer, size_t count);
/* Empties the buffer, keeping its memory. */
void text_buffer_clear(text_buffer *buffer);
/* Releases the memory; the buffer is empty and reusable afterwards. */
void text_buffer_free(text_buffer *buffer);

#endif
