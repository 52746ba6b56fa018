/* OpenAI response bodies: completions, chat completions, their streamed
 * chunks, the model list and errors, as compact JSON text.
 *
 * Every function returns a malloc'ed NUL-terminated string the caller frees,
 * or NULL when memory runs out. Text is given with its length and may hold
 * any bytes the detokenizer produced (valid UTF-8; NUL bytes are escaped). */
#ifndef STRATA_SERVER_RESPONSE_H
#define STRATA_SERVER_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"

/* What identifies one completion in its response and every chunk. */
typedef struct api_reply_head {
    api_kind kind;
    const char *id;       /* "cmpl-..." or "chatcmpl-..." */
    int64_t created;      /* Unix seconds */
    const char *model;    /* the served model's name */
} api_reply_head;

typedef struct api_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
} api_usage;

/* "stop" or "length". */
typedef enum api_finish { API_FINISH_STOP, API_FINISH_LENGTH } api_finish;

/* The whole response of a request without stream. */
char *api_reply_full(const api_reply_head *head, const char *text, size_t len, api_finish finish,
                     const api_usage *usage);
/* One streamed chunk: text (len bytes) as the delta, or with finish >= 0 the
 * last chunk with its finish_reason (text then usually empty). first marks
 * the first chat chunk, which carries the role. include_usage adds
 * "usage": null, as OpenAI does on every chunk when usage is asked for. */
char *api_reply_chunk(const api_reply_head *head, const char *text, size_t len, bool first, int finish,
                      bool include_usage);
/* The usage chunk streamed last when stream_options.include_usage is set:
 * empty choices and the counts. */
char *api_reply_usage_chunk(const api_reply_head *head, const api_usage *usage);
/* {"error": {"message", "type", "param", "code"}} */
char *api_reply_error(const api_error *err);
/* GET /v1/models: a list of the one served model. */
char *api_reply_models(const char *model, int64_t created);

#endif
