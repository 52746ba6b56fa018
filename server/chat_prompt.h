/* Chat messages to the prompt text a model receives.
 *
 * Until the chat-template engine is in (the model's tokenizer.chat_template
 * rendered by a Jinja interpreter), every model gets the plain format: one
 * "role: content" line per message, then "assistant:" for the reply. The
 * server says so once on stderr when it starts. */
#ifndef STRATA_SERVER_CHAT_PROMPT_H
#define STRATA_SERVER_CHAT_PROMPT_H

#include <stdbool.h>

#include "request.h"
#include "text_buffer.h"

/* Appends the prompt for messages to out. Returns false when memory runs
 * out. */
bool chat_prompt_plain(const api_message *messages, size_t n_messages, text_buffer *out);

#endif
