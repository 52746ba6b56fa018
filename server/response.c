/* OpenAI response bodies as JSON text (see response.h). */
#include "response.h"

#include <jansson.h>

/* json_dumps of value, which is released; NULL when value is (a failed
 * build) or memory runs out. */
static char *dump(json_t *value)
{
    if (!value)
        return NULL;
    char *text = json_dumps(value, JSON_COMPACT);
    json_decref(value);
    return text;
}

static const char *finish_name(api_finish finish)
{
    return finish == API_FINISH_LENGTH ? "length" : "stop";
}

static json_t *usage_object(const api_usage *usage)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)usage->prompt_tokens, "completion_tokens",
                     (json_int_t)usage->completion_tokens, "total_tokens",
                     (json_int_t)(usage->prompt_tokens + usage->completion_tokens));
}

static const char *object_name(api_kind kind, bool chunk)
{
    if (kind == API_COMPLETIONS)
        return "text_completion";
    return chunk ? "chat.completion.chunk" : "chat.completion";
}

/* {id, object, created, model} with the given choices (stolen). */
static json_t *envelope(const api_reply_head *head, bool chunk, json_t *choices)
{
    if (!choices)
        return NULL;
    return json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", head->id, "object", object_name(head->kind, chunk),
                     "created", (json_int_t)head->created, "model", head->model, "choices", choices);
}

char *api_reply_full(const api_reply_head *head, const char *text, size_t len, api_finish finish,
                     const api_usage *usage)
{
    json_t *choice;
    if (head->kind == API_COMPLETIONS)
        choice = json_pack("{s:s%, s:i, s:n, s:s}", "text", text, len, "index", 0, "logprobs", "finish_reason",
                           finish_name(finish));
    else
        choice = json_pack("{s:i, s:{s:s, s:s%, s:n}, s:n, s:s}", "index", 0, "message", "role", "assistant",
                           "content", text, len, "refusal", "logprobs", "finish_reason", finish_name(finish));
    json_t *root = envelope(head, false, choice ? json_pack("[o]", choice) : NULL);
    json_t *counts = usage_object(usage);
    if (root && counts && json_object_set_new(root, "usage", counts) == 0)
        return dump(root);
    json_decref(root);
    return NULL;
}

char *api_reply_chunk(const api_reply_head *head, const char *text, size_t len, bool first, int finish,
                      bool include_usage)
{
    json_t *choice;
    json_t *reason = finish >= 0 ? json_string(finish_name((api_finish)finish)) : json_null();
    if (head->kind == API_COMPLETIONS) {
        choice = json_pack("{s:s%, s:i, s:n, s:o}", "text", text, len, "index", 0, "logprobs", "finish_reason",
                           reason);
    } else {
        json_t *delta = json_object();
        if (delta && first)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (delta && (len > 0 || first))
            json_object_set_new(delta, "content", json_stringn(text, len));
        choice = delta ? json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason",
                                   reason)
                       : NULL;
        if (!delta)
            json_decref(reason);
    }
    json_t *root = envelope(head, true, choice ? json_pack("[o]", choice) : NULL);
    if (root && include_usage)
        json_object_set_new(root, "usage", json_null());
    return dump(root);
}

char *api_reply_usage_chunk(const api_reply_head *head, const api_usage *usage)
{
    json_t *root = envelope(head, true, json_array());
    json_t *counts = usage_object(usage);
    if (root && counts && json_object_set_new(root, "usage", counts) == 0)
        return dump(root);
    json_decref(root);
    return NULL;
}

char *api_reply_error(const api_error *err)
{
    json_t *param = err->param[0] ? json_string(err->param) : json_null();
    return dump(json_pack("{s:{s:s, s:s, s:o, s:n}}", "error", "message", err->message, "type", err->type, "param",
                          param, "code"));
}

char *api_reply_models(const char *model, int64_t created)
{
    return dump(json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id", model, "object",
                          "model", "created", (json_int_t)created, "owned_by", "strata"));
}
