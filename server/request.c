/* OpenAI request bodies to request structs (see request.h). */
#include "request.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text_buffer.h"

bool api_fail(api_error *err, int http_status, const char *param, const char *fmt, ...)
{
    if (!err)
        return false;
    err->http_status = http_status;
    snprintf(err->type, sizeof err->type, "%s",
             http_status == 401   ? "authentication_error"
             : http_status == 404 ? "not_found_error"
             : http_status >= 500 ? "server_error"
                                  : "invalid_request_error");
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list args;
    va_start(args, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, args);
    va_end(args);
    /* the message may quote the client's bytes (jansson's error text shows
     * the bytes near the fault, cut anywhere) and the reply is JSON, which
     * carries only valid UTF-8 */
    text_repair_utf8_in_place(err->message);
    text_repair_utf8_in_place(err->param);
    return false;
}

static const char *json_kind_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static bool wrong_type(api_error *err, const char *field, const char *wanted, const json_t *value)
{
    return api_fail(err, 400, field, "'%s' must be %s, not %s", field, wanted, json_kind_name(value));
}

static char *copy_string(const json_t *value, api_error *err)
{
    char *copy = strdup(json_string_value(value));
    if (!copy)
        api_fail(err, 500, NULL, "out of memory");
    return copy;
}

/* --- numbers ------------------------------------------------------------------------------ */

/* A number in [min, max] into *out; null leaves *out alone. */
static bool take_float(const json_t *value, const char *field, double min, double max, float *out, api_error *err)
{
    if (json_is_null(value))
        return true;
    if (!json_is_number(value))
        return wrong_type(err, field, "a number", value);
    double number = json_number_value(value);
    if (!(number >= min && number <= max))
        return api_fail(err, 400, field, "'%s' is %g; it must be in [%g, %g]", field, number, min, max);
    *out = (float)number;
    return true;
}

/* An integer in [min, max] into *out; null leaves *out alone and *given false. */
static bool take_int(const json_t *value, const char *field, int64_t min, int64_t max, int64_t *out, bool *given,
                     api_error *err)
{
    if (given)
        *given = false;
    if (json_is_null(value))
        return true;
    if (!json_is_integer(value))
        return wrong_type(err, field, "an integer", value);
    json_int_t number = json_integer_value(value);
    if (number < min || number > max)
        return api_fail(err, 400, field, "'%s' is %lld; it must be in [%lld, %lld]", field, (long long)number,
                        (long long)min, (long long)max);
    *out = number;
    if (given)
        *given = true;
    return true;
}

static bool take_bool(const json_t *value, const char *field, bool *out, api_error *err)
{
    if (json_is_null(value))
        return true;
    if (!json_is_boolean(value))
        return wrong_type(err, field, "a boolean", value);
    *out = json_is_true(value);
    return true;
}

/* --- stop strings ------------------------------------------------------------------------- */

static bool add_stop(api_request *request, const json_t *value, api_error *err)
{
    if (!json_is_string(value))
        return wrong_type(err, "stop", "a string or a list of strings", value);
    size_t len = json_string_length(value);
    if (len == 0)
        return api_fail(err, 400, "stop", "'stop' strings must not be empty");
    if (len > API_MAX_STOP_BYTES)
        return api_fail(err, 400, "stop", "a 'stop' string has %zu bytes; at most %d are allowed", len,
                        API_MAX_STOP_BYTES);
    if (request->n_stop == API_MAX_STOP)
        return api_fail(err, 400, "stop", "at most %d 'stop' strings are allowed", API_MAX_STOP);
    if (!(request->stop[request->n_stop] = copy_string(value, err)))
        return false;
    request->n_stop++;
    return true;
}

static bool take_stop(api_request *request, const json_t *value, api_error *err)
{
    if (json_is_null(value))
        return true;
    if (json_is_string(value))
        return add_stop(request, value, err);
    if (!json_is_array(value))
        return wrong_type(err, "stop", "a string or a list of strings", value);
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item) if (!add_stop(request, item, err)) return false;
    return true;
}

/* --- prompts and messages ------------------------------------------------------------------- */

static bool take_token_array(api_request *request, const json_t *array, api_error *err)
{
    size_t count = json_array_size(array);
    if (count == 0)
        return api_fail(err, 400, "prompt", "'prompt' is an empty list of tokens");
    request->prompt_tokens = malloc(count * sizeof *request->prompt_tokens);
    if (!request->prompt_tokens)
        return api_fail(err, 500, NULL, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const json_t *item = json_array_get(array, i);
        if (!json_is_integer(item) || json_integer_value(item) < 0 || json_integer_value(item) > INT32_MAX)
            return api_fail(err, 400, "prompt", "'prompt' item %zu is not a token id (an integer >= 0)", i);
        request->prompt_tokens[i] = (int32_t)json_integer_value(item);
    }
    request->n_prompt_tokens = count;
    return true;
}

/* A string, a list of token ids, or a list holding one of those (OpenAI's
 * batch form, with a batch of one). */
static bool take_prompt(api_request *request, const json_t *value, api_error *err)
{
    if (json_is_string(value))
        return (request->prompt_text = copy_string(value, err)) != NULL;
    if (!json_is_array(value))
        return wrong_type(err, "prompt", "a string or a list of token ids", value);
    const json_t *first = json_array_get(value, 0);
    if (first && (json_is_string(first) || json_is_array(first))) {
        if (json_array_size(value) > 1)
            return api_fail(err, 400, "prompt", "'prompt' holds %zu prompts; one per request is supported",
                            json_array_size(value));
        if (json_is_string(first))
            return (request->prompt_text = copy_string(first, err)) != NULL;
        return take_token_array(request, first, err);
    }
    return take_token_array(request, value, err);
}

/* content: a string, null, or a list of parts of which only text parts are
 * supported; the texts are joined. */
static bool take_content(const json_t *value, size_t index, char **out, api_error *err)
{
    if (!value || json_is_null(value))
        return (*out = strdup("")) != NULL || api_fail(err, 500, NULL, "out of memory");
    if (json_is_string(value))
        return (*out = copy_string(value, err)) != NULL;
    if (!json_is_array(value))
        return api_fail(err, 400, "messages", "messages[%zu].content must be a string or a list of parts, not %s",
                        index, json_kind_name(value));
    size_t total = 1, i;
    json_t *part;
    json_array_foreach(value, i, part)
    {
        const json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") != 0)
            return api_fail(err, 400, "messages",
                            "messages[%zu].content[%zu]: only parts of type 'text' are supported", index, i);
        if (!json_is_string(text))
            return api_fail(err, 400, "messages", "messages[%zu].content[%zu].text must be a string", index, i);
        total += json_string_length(text);
    }
    char *joined = malloc(total);
    if (!joined)
        return api_fail(err, 500, NULL, "out of memory");
    size_t used = 0;
    json_array_foreach(value, i, part)
    {
        const json_t *text = json_object_get(part, "text");
        memcpy(joined + used, json_string_value(text), json_string_length(text));
        used += json_string_length(text);
    }
    joined[used] = '\0';
    *out = joined;
    return true;
}

static bool take_messages(api_request *request, const json_t *value, api_error *err)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    if (!json_is_array(value))
        return wrong_type(err, "messages", "a list of messages", value);
    size_t count = json_array_size(value);
    if (count == 0)
        return api_fail(err, 400, "messages", "'messages' is empty");
    if (count > API_MAX_MESSAGES)
        return api_fail(err, 400, "messages", "'messages' holds %zu messages; at most %d are allowed", count,
                        API_MAX_MESSAGES);
    request->messages = calloc(count, sizeof *request->messages);
    if (!request->messages)
        return api_fail(err, 500, NULL, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const json_t *message = json_array_get(value, i);
        if (!json_is_object(message))
            return api_fail(err, 400, "messages", "messages[%zu] must be an object, not %s", i,
                            json_kind_name(message));
        const json_t *role = json_object_get(message, "role");
        if (!json_is_string(role))
            return api_fail(err, 400, "messages", "messages[%zu].role must be a string", i);
        bool known = false;
        for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++)
            known = known || strcmp(json_string_value(role), roles[r]) == 0;
        if (!known)
            return api_fail(err, 400, "messages",
                            "messages[%zu].role '%.32s' is not one of system, developer, user, assistant, tool", i,
                            json_string_value(role));
        const json_t *tool_calls = json_object_get(message, "tool_calls");
        if (tool_calls && !json_is_null(tool_calls) && !(json_is_array(tool_calls) && json_array_size(tool_calls) == 0))
            return api_fail(err, 400, "messages", "messages[%zu].tool_calls: tool calls are not supported", i);
        request->n_messages = i + 1;
        if (!(request->messages[i].role = copy_string(role, err)))
            return false;
        if (!take_content(json_object_get(message, "content"), i, &request->messages[i].content, err))
            return false;
    }
    request->messages_json = json_incref((json_t *)value);
    return true;
}

/* --- fields strata does not support ---------------------------------------------------------- */

/* Whether value is what the field means when it asks for nothing: null,
 * false, an empty list or object, or the given neutral number/string. */
static bool is_neutral(const json_t *value, json_int_t neutral_int, const char *neutral_string)
{
    switch (json_typeof(value)) {
    case JSON_NULL:
    case JSON_FALSE: return true;
    case JSON_ARRAY: return json_array_size(value) == 0;
    case JSON_OBJECT:
        if (neutral_string) {
            const json_t *type = json_object_get(value, "type");
            return json_object_size(value) == 0 ||
                   (json_object_size(value) == 1 && json_is_string(type) &&
                    strcmp(json_string_value(type), neutral_string) == 0);
        }
        return json_object_size(value) == 0;
    case JSON_INTEGER: return neutral_int >= 0 && json_integer_value(value) == neutral_int;
    case JSON_STRING: return neutral_string && strcmp(json_string_value(value), neutral_string) == 0;
    default: return false;
    }
}

typedef struct unsupported_field {
    const char *name;
    bool chat, completions;   /* where OpenAI defines it */
    json_int_t neutral_int;   /* -1: no integer is neutral */
    const char *neutral_string; /* a string value (or an object's "type") that asks for nothing */
    const char *why;
} unsupported_field;

static const unsupported_field unsupported_fields[] = {
    {"n", true, true, 1, NULL, "only one choice per request (n = 1) is supported"},
    {"best_of", false, true, 1, NULL, "only best_of = 1 is supported"},
    {"logit_bias", true, true, -1, NULL, "logit_bias is not supported"},
    {"logprobs", true, true, -1, NULL, "logprobs are not supported"},
    {"top_logprobs", true, false, 0, NULL, "logprobs are not supported"},
    {"echo", false, true, -1, NULL, "echo is not supported"},
    {"suffix", false, true, -1, "", "suffix (insertion) is not supported"},
    {"tools", true, false, -1, NULL, "tools are not supported yet"},
    {"tool_choice", true, false, -1, "none", "tools are not supported yet"},
    {"functions", true, false, -1, NULL, "functions are not supported"},
    {"function_call", true, false, -1, "none", "functions are not supported"},
    {"response_format", true, false, -1, "text", "only the text response format is supported"},
    {"audio", true, false, -1, NULL, "audio output is not supported"},
    {"modalities", true, false, -1, NULL, "only text output is supported"},
};

static bool check_unsupported(api_kind kind, const json_t *body, api_error *err)
{
    for (size_t i = 0; i < sizeof unsupported_fields / sizeof unsupported_fields[0]; i++) {
        const unsupported_field *field = &unsupported_fields[i];
        if (!(kind == API_CHAT_COMPLETIONS ? field->chat : field->completions))
            continue;
        const json_t *value = json_object_get(body, field->name);
        if (value && !is_neutral(value, field->neutral_int, field->neutral_string))
            return api_fail(err, 400, field->name, "'%s': %s", field->name, field->why);
    }
    return true;
}

/* --- the body ------------------------------------------------------------------------------- */

static bool take_sampling(api_request *request, const json_t *body, api_error *err)
{
    strata_sampler_params *s = &request->sampling;
    int64_t number = 0;
    bool given = false;
    static const struct {
        const char *name;
        double min, max;
        size_t offset;
    } floats[] = {
        {"temperature", 0, 2, offsetof(strata_sampler_params, temperature)},
        {"top_p", 0, 1, offsetof(strata_sampler_params, top_p)},
        {"min_p", 0, 1, offsetof(strata_sampler_params, min_p)},
        {"presence_penalty", -2, 2, offsetof(strata_sampler_params, presence_penalty)},
        {"frequency_penalty", -2, 2, offsetof(strata_sampler_params, frequency_penalty)},
        {"repeat_penalty", 0, 100, offsetof(strata_sampler_params, repeat_penalty)},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        const json_t *value = json_object_get(body, floats[i].name);
        if (value && !take_float(value, floats[i].name, floats[i].min, floats[i].max,
                                 (float *)((char *)s + floats[i].offset), err))
            return false;
    }
    const json_t *top_k = json_object_get(body, "top_k");
    if (top_k && !take_int(top_k, "top_k", 0, INT32_MAX, &number, &given, err))
        return false;
    if (given)
        s->top_k = (int32_t)number;
    const json_t *seed = json_object_get(body, "seed");
    if (seed && !take_int(seed, "seed", INT64_MIN, INT64_MAX, &number, &request->seed_given, err))
        return false;
    if (request->seed_given)
        s->seed = (uint64_t)number;
    return true;
}

static bool take_lengths(api_request *request, const json_t *body, api_error *err)
{
    const char *names[] = {"max_tokens", "max_completion_tokens"};
    for (int i = 0; i < 2; i++) {
        if (i == 1 && request->kind != API_CHAT_COMPLETIONS)
            break;
        const json_t *value = json_object_get(body, names[i]);
        bool given = false;
        int64_t number = 0;
        if (value && !take_int(value, names[i], 1, INT32_MAX, &number, &given, err))
            return false;
        if (given)
            request->max_tokens = number;
    }
    return true;
}

static bool take_stream(api_request *request, const json_t *body, api_error *err)
{
    const json_t *stream = json_object_get(body, "stream");
    if (stream && !take_bool(stream, "stream", &request->stream, err))
        return false;
    const json_t *options = json_object_get(body, "stream_options");
    if (!options || json_is_null(options))
        return true;
    if (!json_is_object(options))
        return wrong_type(err, "stream_options", "an object", options);
    if (!request->stream)
        return api_fail(err, 400, "stream_options", "'stream_options' is only allowed with 'stream': true");
    const json_t *usage = json_object_get(options, "include_usage");
    return !usage || take_bool(usage, "stream_options.include_usage", &request->include_usage, err);
}

static bool parse_object(api_kind kind, const json_t *body, api_request *out, api_error *err)
{
    const json_t *model = json_object_get(body, "model");
    if (model && !json_is_null(model)) {
        if (!json_is_string(model))
            return wrong_type(err, "model", "a string", model);
        if (!(out->model = copy_string(model, err)))
            return false;
    }
    if (!check_unsupported(kind, body, err))
        return false;
    if (kind == API_COMPLETIONS) {
        const json_t *prompt = json_object_get(body, "prompt");
        if (!prompt)
            return api_fail(err, 400, "prompt", "'prompt' is missing");
        if (!take_prompt(out, prompt, err))
            return false;
    } else {
        const json_t *messages = json_object_get(body, "messages");
        if (!messages)
            return api_fail(err, 400, "messages", "'messages' is missing");
        if (!take_messages(out, messages, err))
            return false;
    }
    const json_t *stop = json_object_get(body, "stop");
    return take_stream(out, body, err) && take_lengths(out, body, err) && take_sampling(out, body, err) &&
           (!stop || take_stop(out, stop, err));
}

bool api_request_parse(api_kind kind, const char *body, size_t len, const strata_sampler_params *defaults,
                       api_request *out, api_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->max_tokens = kind == API_COMPLETIONS ? 16 : -1;
    out->sampling = *defaults;
    json_error_t json_err;
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, &json_err);
    if (!root)
        return api_fail(err, 400, NULL, "the body is not valid JSON: %s (line %d, column %d)", json_err.text,
                        json_err.line, json_err.column);
    bool ok = json_is_object(root) ? parse_object(kind, root, out, err)
                                   : api_fail(err, 400, NULL, "the body must be a JSON object, not %s",
                                              json_kind_name(root));
    json_decref(root);
    if (!ok)
        api_request_free(out);
    return ok;
}

void api_request_free(api_request *request)
{
    free(request->model);
    free(request->prompt_text);
    free(request->prompt_tokens);
    for (size_t i = 0; i < request->n_messages; i++) {
        free(request->messages[i].role);
        free(request->messages[i].content);
    }
    free(request->messages);
    json_decref(request->messages_json);
    for (size_t i = 0; i < request->n_stop; i++)
        free(request->stop[i]);
    api_kind kind = request->kind;
    memset(request, 0, sizeof *request);
    request->kind = kind;
}
