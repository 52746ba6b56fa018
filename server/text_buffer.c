/* The growable byte buffer (see text_buffer.h). */
#include "text_buffer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool text_buffer_append(text_buffer *buffer, const char *bytes, size_t len)
{
    if (len > SIZE_MAX / 2 - buffer->len - 1)
        return false;
    size_t needed = buffer->len + len + 1;
    if (needed > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 64;
        while (capacity < needed)
            capacity *= 2;
        char *grown = realloc(buffer->data, capacity);
        if (!grown)
            return false;
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    if (len)
        memcpy(buffer->data + buffer->len, bytes, len);
    buffer->len += len;
    buffer->data[buffer->len] = '\0';
    return true;
}

bool text_buffer_append_str(text_buffer *buffer, const char *text)
{
    return text_buffer_append(buffer, text, strlen(text));
}

/* Length of the valid UTF-8 character at text (len bytes left), or 0. */
static size_t utf8_char_length(const unsigned char *text, size_t len)
{
    unsigned char lead = text[0];
    size_t need;
    uint32_t min, code;
    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF)
        need = 2, min = 0x80, code = lead & 0x1F;
    else if (lead >= 0xE0 && lead <= 0xEF)
        need = 3, min = 0x800, code = lead & 0x0F;
    else if (lead >= 0xF0 && lead <= 0xF4)
        need = 4, min = 0x10000, code = lead & 0x07;
    else
        return 0;
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((text[i] & 0xC0) != 0x80)
            return 0;
        code = (code << 6) | (text[i] & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        return 0;
    return need;
}

bool text_buffer_append_utf8(text_buffer *buffer, const char *bytes, size_t len)
{
    const unsigned char *text = (const unsigned char *)bytes;
    size_t start = 0, i = 0;
    while (i < len) {
        size_t char_len = utf8_char_length(text + i, len - i);
        if (char_len > 0) {
            i += char_len;
            continue;
        }
        if (!text_buffer_append(buffer, bytes + start, i - start) || !text_buffer_append(buffer, "\xEF\xBF\xBD", 3))
            return false;
        i++;
        start = i;
    }
    return text_buffer_append(buffer, bytes + start, len - start);
}

void text_repair_utf8_in_place(char *text)
{
    unsigned char *bytes = (unsigned char *)text;
    size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        size_t char_len = utf8_char_length(bytes + i, len - i);
        if (char_len > 0) {
            i += char_len;
            continue;
        }
        bytes[i++] = '?';
    }
}

void text_buffer_consume(text_buffer *buffer, size_t count)
{
    if (count >= buffer->len) {
        text_buffer_clear(buffer);
        return;
    }
    memmove(buffer->data, buffer->data + count, buffer->len - count);
    buffer->len -= count;
    buffer->data[buffer->len] = '\0';
}

void text_buffer_clear(text_buffer *buffer)
{
    buffer->len = 0;
    if (buffer->data)
        buffer->data[0] = '\0';
}

void text_buffer_free(text_buffer *buffer)
{
    free(buffer->data);
    buffer->data = NULL;
    buffer->len = 0;
    buffer->capacity = 0;
}
