/* OpenAI request bodies (JSON) to request structs.
 *
 * Pure: no model, no I/O, no global state, so the fuzz target
 * (fuzz/fuzz_request.c) drives it directly. Every problem is an api_error
 * with the HTTP status, a sentence and the field at fault, in the shape
 * OpenAI's errors have; nothing is silently ignored that changes the
 * result (n > 1, logit_bias, tools, logprobs, echo, ... are a 400 naming
 * the field). Fields this server does not know at all are ignored, as
 * llama.cpp's server does. */
#ifndef STRATA_SERVER_REQUEST_H
#define STRATA_SERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "strata.h"

typedef enum api_kind {
    API_COMPLETIONS,      /* POST /v1/completions */
    API_CHAT_COMPLETIONS, /* POST /v1/chat/completions */
} api_kind;

typedef struct api_error {
    int http_status;    /* 400, 404, 413, 503, ... */
    char type[32];      /* OpenAI's error type: "invalid_request_error", ... */
    char message[STRATA_ERROR_MESSAGE_MAX + 256];
    char param[64];     /* the request field at fault; "" when none */
} api_error;

/* Fills err and returns false, for `return api_fail(...)`. */
bool api_fail(api_error *err, int http_status, const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

typedef struct api_message {
    char *role;    /* system, developer, user, assistant, tool */
    char *content; /* the text (content parts of type text joined); "" for none */
} api_message;

#define API_MAX_STOP 16          /* stop strings per request */
#define API_MAX_STOP_BYTES 256   /* bytes per stop string */
#define API_MAX_MESSAGES 4096

typedef struct api_request {
    api_kind kind;
    char *model;                /* as sent; NULL when absent */
    /* completions: exactly one of prompt_text and prompt_tokens */
    char *prompt_text;
    int32_t *prompt_tokens;     /* ids as sent, each in [0, INT32_MAX]; checked against the vocabulary later */
    size_t n_prompt_tokens;
    /* chat completions: the messages checked and copied, and the JSON array
     * as sent (a counted reference) for the chat template */
    api_message *messages;
    size_t n_messages;
    json_t *messages_json;
    bool stream;
    bool include_usage;         /* stream_options.include_usage */
    int64_t max_tokens;         /* -1: until an end-of-generation token or the end of the context */
    strata_sampler_params sampling; /* the server's defaults, overridden field by field */
    bool seed_given;
    char *stop[API_MAX_STOP];
    size_t n_stop;
} api_request;

/* Parses body (len bytes, not NUL-terminated) as a request of kind. Fields
 * the body leaves out keep defaults (the server's sampling flags); max_tokens
 * defaults to 16 for completions and to no limit for chat, as OpenAI's do.
 * Returns true with *out filled (free it with api_request_free), or false
 * with err filled (400 for anything the body got wrong) and *out empty. */
bool api_request_parse(api_kind kind, const char *body, size_t len, const strata_sampler_params *defaults,
                       api_request *out, api_error *err);
/* Frees what api_request_parse allocated; accepts an empty request. */
void api_request_free(api_request *request);

#endif
