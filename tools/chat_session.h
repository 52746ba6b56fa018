/* A conversation for `strata chat`: the messages so far, the model's chat
 * template, and one context whose KV cache holds the tokens of the last
 * prompt and reply.
 *
 * Each turn renders the whole conversation (with the generation prompt),
 * tokenizes it as `strata serve` does, and feeds only the tokens past the
 * longest common prefix with what the cache holds, cutting the cache back
 * to that prefix first when the render differs from it. A template that
 * renders earlier turns the same way every time thus costs only the new
 * tokens, and the reply is what `strata run` gives on the rendered prompt.
 *
 * Errors are strata statuses with a message; nothing here prints except
 * through the reply callback. */
#ifndef STRATA_TOOLS_CHAT_SESSION_H
#define STRATA_TOOLS_CHAT_SESSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_template.h"
#include "strata.h"

typedef struct chat_session {
    strata_model *model;                /* borrowed */
    strata_context *ctx;                /* borrowed; its cache holds cached[0..n_cached) */
    const strata_chat_template *tmpl;   /* borrowed */
    const char *system;                 /* borrowed; NULL: no system message */
    strata_sampler_params sampling;     /* every reply gets a sampler made from these */
    json_t *messages;                   /* the conversation (owned) */
    int32_t *cached;
    size_t n_cached, cached_capacity;
} chat_session;

/* What one turn did. */
typedef struct chat_turn_stats {
    size_t n_prompt;       /* tokens of the rendered conversation */
    size_t n_reused;       /* of which the cache already held */
    int64_t n_generated;   /* tokens of the reply */
    bool context_full;     /* the reply stopped at the end of the context */
    double prompt_seconds, generate_seconds;
} chat_turn_stats;

/* Text of the reply as it comes (complete UTF-8 characters). */
typedef void (*chat_text_fn)(void *user, const char *text, size_t len);

/* Starts an empty conversation (the system message only, when given).
 * Borrows model, ctx, tmpl and system for the session's life. */
strata_status chat_session_init(chat_session *session, strata_model *model, strata_context *ctx,
                                const strata_chat_template *tmpl, const char *system,
                                const strata_sampler_params *sampling, strata_error *err);
void chat_session_free(chat_session *session);

/* Forgets the conversation (keeping the system message) and empties the
 * KV cache. */
strata_status chat_session_clear(chat_session *session, strata_error *err);

/* One turn: appends the user's text, feeds the new prompt tokens, and
 * generates the reply until an end-of-generation token, max_tokens (< 0: no
 * limit) or the end of the context, passing its text to on_text as it comes;
 * the reply joins the conversation. On failure (a template that refuses the
 * conversation, a prompt longer than the context, a decode error) the
 * user's text is taken back out and the conversation is as before (the
 * cache keeps what it holds, in step with session->cached: the next turn
 * reuses what matches). STRATA_INVALID_INPUT for what the
 * user can fix (the text, the conversation's length), other statuses for
 * the rest. */
strata_status chat_session_turn(chat_session *session, const char *user_text, size_t user_len, int64_t max_tokens,
                                chat_text_fn on_text, void *user, chat_turn_stats *stats, strata_error *err);

#endif
