/* libFuzzer target for the Jinja interpreter: the input is a template
 * (after one byte that picks the conversation it renders). It is parsed
 * and, when it parses, rendered with small limits (steps, memory, output,
 * nesting), so nested loops, huge range()s, string multiplication and
 * endless recursion must end in an error, never a hang, a crash or a leak.
 * A render that succeeds must give the same bytes a second time. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

static const char *const CONVERSATIONS[] = {
    "[]",
    "[{\"role\": \"user\", \"content\": \"Hello\"}]",
    "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi \\u00e9\\u4f60\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>x</think>Yes\"}, {\"role\": \"user\", \"content\": \"More\"}]",
    "[{\"role\": \"user\", \"content\": \"Weather?\"}, {\"role\": \"assistant\", \"content\": null, \"tool_calls\":"
    " [{\"id\": \"call12345\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\":"
    " {\"location\": \"Paris\", \"days\": [1, 2.5]}}}]}, {\"role\": \"tool\", \"tool_call_id\": \"call12345\","
    " \"content\": {\"t\": 22}}]",
};

static const char TOOLS[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"location\": {\"type\": \"string\"},"
    " \"days\": {\"type\": \"array\", \"items\": {\"type\": \"number\"}}}, \"required\": [\"location\"]}}}]";

static jinja_limits fuzz_limits(void)
{
    return (jinja_limits){.max_steps = 200000, .max_alloc_bytes = 64u << 20, .max_output_bytes = 1u << 20,
                          .max_depth = 400, .max_seconds = 2.0};
}

/* The render's variables for conversation c (or false when out of memory). */
static bool make_globals(jinja_rt *rt, int c, jv *out)
{
    json_t *messages = json_loads(CONVERSATIONS[c], 0, NULL), *tools = json_loads(TOOLS, 0, NULL);
    jv dict = jv_undefined(), value, key;
    bool ok = messages && tools && jv_dict_new(rt, &dict);
    ok = ok && jinja_from_json(rt, messages, &value) && jv_cstring(rt, "messages", &key) &&
         jv_dict_set(rt, dict.u.dict, key, value);
    ok = ok && jinja_from_json(rt, tools, &value) && jv_cstring(rt, "tools", &key) &&
         jv_dict_set(rt, dict.u.dict, key, value);
    ok = ok && jv_cstring(rt, "add_generation_prompt", &key) && jv_dict_set(rt, dict.u.dict, key, jv_bool(c & 1));
    ok = ok && jv_cstring(rt, "<s>", &value) && jv_cstring(rt, "bos_token", &key) &&
         jv_dict_set(rt, dict.u.dict, key, value);
    json_decref(messages);
    json_decref(tools);
    if (!ok) {
        jv_release(dict);
        return false;
    }
    *out = dict;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int conversation = data[0] % (int)(sizeof CONVERSATIONS / sizeof CONVERSATIONS[0]);
    const char *source = (const char *)data + 1;
    size_t len = size - 1;
    jinja_template *tmpl = NULL;
    strata_error err = {0};
    if (jinja_template_parse(source, len, "fuzz", &tmpl, &err) != STRATA_OK) {
        if (!err.message[0])
            abort(); /* every failure has a message */
        return 0;
    }
    jinja_limits limits = fuzz_limits();
    jinja_rt *rt = jinja_rt_new(&limits);
    jv globals;
    if (!rt || !make_globals(rt, conversation, &globals))
        abort();
    jinja_time now = {.year = 2025, .month = 3, .day = 7, .hour = 12};
    char *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    strata_status a = jinja_render(tmpl, globals, &limits, &now, &first, &first_len, &err);
    if (a != STRATA_OK && !err.message[0])
        abort();
    if (a == STRATA_OK) {
        /* the same template and inputs give the same text */
        strata_status b = jinja_render(tmpl, globals, &limits, &now, &second, &second_len, &err);
        if (b != STRATA_OK || first_len != second_len || memcmp(first, second, first_len) != 0)
            abort();
        if (first_len > limits.max_output_bytes || strlen(first) > first_len)
            abort();
    }
    free(first);
    free(second);
    jv_release(globals);
    jinja_rt_free(rt);
    jinja_template_free(tmpl);
    return 0;
}
