/* The plain chat format (see chat_prompt.h). */
#include "chat_prompt.h"

bool chat_prompt_plain(const api_message *messages, size_t n_messages, text_buffer *out)
{
    for (size_t i = 0; i < n_messages; i++)
        if (!text_buffer_append_str(out, messages[i].role) || !text_buffer_append_str(out, ": ") ||
            !text_buffer_append_str(out, messages[i].content) || !text_buffer_append_str(out, "\n"))
            return false;
    return text_buffer_append_str(out, "assistant:");
}
