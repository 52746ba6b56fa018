/* The server's parts that need no model or socket: the stop matcher fed in
 * every way a text can be cut into tokens (checked against a plain search
 * of the whole text), UTF-8 repair, the request parser's defaults and
 * fields, and the reply shapes. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "response.h"
#include "stop_matcher.h"
#include "test_check.h"

/* --- stop strings ----------------------------------------------------------------------------- */

/* What the client must see: the text up to the earliest stop string. */
static size_t reference_cut(const char *text, char *const *stops, size_t n_stops, bool *stopped)
{
    size_t best = strlen(text);
    *stopped = false;
    for (size_t s = 0; s < n_stops; s++) {
        const char *found = strstr(text, stops[s]);
        if (found && (size_t)(found - text) <= best) {
            best = (size_t)(found - text);
            *stopped = true;
        }
    }
    return best;
}

/* Feeds text in pieces of piece_len bytes (the last one shorter). */
static void check_stop_case(const char *text, char *const *stops, size_t n_stops, size_t piece_len)
{
    stop_matcher matcher;
    stop_matcher_init(&matcher, stops, n_stops);
    text_buffer out = {0};
    size_t len = strlen(text);
    int found = 0;
    for (size_t at = 0; at < len && found == 0; at += piece_len) {
        size_t n = len - at < piece_len ? len - at : piece_len;
        found = stop_matcher_feed(&matcher, text + at, n, &out);
        /* never more than the reference: nothing of a stop string leaks */
        bool stopped_ref;
        size_t cut = reference_cut(text, stops, n_stops, &stopped_ref);
        CHECK(out.len <= cut, "'%s' in pieces of %zu: %zu bytes released before the stop at %zu", text, piece_len,
              out.len, cut);
    }
    if (found == 0)
        found = stop_matcher_flush(&matcher, &out);
    bool stopped_ref;
    size_t cut = reference_cut(text, stops, n_stops, &stopped_ref);
    CHECK((found == 1) == stopped_ref, "'%s' in pieces of %zu: stopped %d, expected %d", text, piece_len, found,
          stopped_ref);
    CHECK(out.len == cut && memcmp(out.data ? out.data : "", text, cut) == 0,
          "'%s' in pieces of %zu: released '%s', expected the first %zu bytes", text, piece_len,
          out.data ? out.data : "", cut);
    text_buffer_free(&out);
    stop_matcher_free(&matcher);
}

static void test_stop_matcher(void)
{
    char *stops_a[] = {"The end", "\n\n"};
    char *stops_b[] = {"aab"};
    char *stops_c[] = {"xyz", "y"};
    char *stops_d[] = {"\xc3\xa9t\xc3\xa9"};
    const struct {
        const char *text;
        char **stops;
        size_t n;
    } cases[] = {
        {"Once upon a time. The end. More.", stops_a, 2},
        {"Once upon a time.\n\nThe end", stops_a, 2},
        {"The end at the start", stops_a, 2},
        {"no stop here at all, The en", stops_a, 2},
        {"aaab after a false start", stops_b, 1},
        {"aaaa", stops_b, 1},
        {"axyz: the longer one starts first", stops_c, 2},
        {"axy", stops_c, 2},
        {"un \xc3\xa9t\xc3\xa9 chaud", stops_d, 1},
        {"", stops_a, 2},
        {"plain text with no stop strings given", NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t piece = 1; piece <= 9; piece++)
            check_stop_case(cases[i].text, cases[i].stops, cases[i].n, piece);
}

/* --- UTF-8 repair ----------------------------------------------------------------------------- */

static void test_utf8(void)
{
    const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 5, "plain"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {"\x80x", 2, "\xef\xbf\xbdx"},
        {"\xc3", 1, "\xef\xbf\xbd"},
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},         /* overlong '/' */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
        {"\xf0\x9f\x98\x80!", 5, "\xf0\x9f\x98\x80!"},
        {"a\0b", 3, "a\0b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        text_buffer out = {0};
        CHECK(text_buffer_append_utf8(&out, cases[i].in, cases[i].len), "utf8 case %zu: append", i);
        size_t want_len = i == 7 ? 3 : strlen(cases[i].out);
        CHECK(out.len == want_len && memcmp(out.data, cases[i].out, want_len) == 0, "utf8 case %zu: %zu bytes", i,
              out.len);
        text_buffer_free(&out);
    }
    /* in place: each bad byte becomes '?', the length stays */
    char cut[] = "ok \xc6\x93 \xc6";
    text_repair_utf8_in_place(cut);
    CHECK(strcmp(cut, "ok \xc6\x93 ?") == 0, "in-place repair of a character cut at the end: '%s'", cut);
    char stray[] = "\x93\xed\xa0\x80z";
    text_repair_utf8_in_place(stray);
    CHECK(strcmp(stray, "????z") == 0, "in-place repair of stray bytes and a surrogate: '%s'", stray);
}

/* --- requests ----------------------------------------------------------------------------------- */

static bool parse(api_kind kind, const char *body, api_request *request, api_error *err)
{
    strata_sampler_params defaults = strata_sampler_default_params();
    return api_request_parse(kind, body, strlen(body), &defaults, request, err);
}

static void test_requests(void)
{
    api_request r;
    api_error err;
    /* OpenAI's defaults for what a body leaves out; the server's sampling otherwise */
    CHECK(parse(API_COMPLETIONS, "{\"prompt\": \"hi\"}", &r, &err), "minimal completion: %s", err.message);
    CHECK(r.max_tokens == 16 && !r.stream && r.n_stop == 0 && r.sampling.temperature == 0.8f &&
              r.sampling.top_k == 40 && !r.seed_given && strcmp(r.prompt_text, "hi") == 0,
          "completion defaults");
    api_request_free(&r);
    CHECK(parse(API_CHAT_COMPLETIONS, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", &r, &err),
          "minimal chat: %s", err.message);
    CHECK(r.max_tokens == -1 && r.n_messages == 1 && strcmp(r.messages[0].role, "user") == 0, "chat defaults");
    api_request_free(&r);
    /* every field read */
    const char *full = "{\"model\": \"m\", \"prompt\": [[5, 6, 7]], \"max_tokens\": 9, \"temperature\": 0, "
                       "\"top_p\": 0.5, \"top_k\": 3, \"min_p\": 0.1, \"repeat_penalty\": 1.2, "
                       "\"presence_penalty\": 0.25, \"frequency_penalty\": -0.5, \"seed\": -1, "
                       "\"stop\": \"\\n\", \"stream\": true, \"stream_options\": {\"include_usage\": true}, "
                       "\"user\": \"ignored\", \"n\": 1, \"logit_bias\": {}, \"echo\": false}";
    CHECK(parse(API_COMPLETIONS, full, &r, &err), "full completion: %s", err.message);
    CHECK(r.n_prompt_tokens == 3 && r.prompt_tokens[2] == 7 && r.max_tokens == 9 && r.sampling.temperature == 0 &&
              r.sampling.top_p == 0.5f && r.sampling.top_k == 3 && r.sampling.min_p == 0.1f &&
              r.sampling.repeat_penalty == 1.2f && r.sampling.presence_penalty == 0.25f &&
              r.sampling.frequency_penalty == -0.5f && r.seed_given && r.sampling.seed == UINT64_MAX &&
              r.n_stop == 1 && strcmp(r.stop[0], "\n") == 0 && r.stream && r.include_usage &&
              strcmp(r.model, "m") == 0,
          "full completion fields");
    api_request_free(&r);
    /* max_completion_tokens is chat's; the later of the two wins there */
    CHECK(parse(API_CHAT_COMPLETIONS,
                "{\"messages\": [{\"role\": \"user\", \"content\": null}], \"max_tokens\": 5, "
                "\"max_completion_tokens\": 7}",
                &r, &err),
          "chat lengths: %s", err.message);
    CHECK(r.max_tokens == 7 && strcmp(r.messages[0].content, "") == 0, "max_completion_tokens %lld",
          (long long)r.max_tokens);
    api_request_free(&r);
    /* the field at fault is named */
    CHECK(!parse(API_COMPLETIONS, "{\"prompt\": \"x\", \"logit_bias\": {\"1\": 2}}", &r, &err) &&
              err.http_status == 400 && strcmp(err.param, "logit_bias") == 0,
          "logit_bias: %d %s", err.http_status, err.param);
    CHECK(!parse(API_CHAT_COMPLETIONS, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 3}", &r,
                 &err) &&
              strcmp(err.param, "n") == 0,
          "n = 3: %s", err.param);
}

/* --- replies ------------------------------------------------------------------------------------ */

static void test_replies(void)
{
    api_reply_head head = {.kind = API_CHAT_COMPLETIONS, .id = "chatcmpl-1", .created = 7, .model = "m"};
    api_usage usage = {3, 2};
    char *text = api_reply_full(&head, "a\0b", 3, API_FINISH_LENGTH, &usage);
    json_t *root = text ? json_loads(text, JSON_ALLOW_NUL, NULL) : NULL;
    CHECK(root != NULL, "chat reply is JSON");
    if (root) {
        json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
        json_t *content = json_object_get(json_object_get(choice, "message"), "content");
        CHECK(json_string_length(content) == 3 && memcmp(json_string_value(content), "a\0b", 3) == 0,
              "content with a NUL byte");
        CHECK(strcmp(json_string_value(json_object_get(choice, "finish_reason")), "length") == 0 &&
                  json_integer_value(json_object_get(json_object_get(root, "usage"), "total_tokens")) == 5 &&
                  strcmp(json_string_value(json_object_get(root, "object")), "chat.completion") == 0,
              "chat reply fields");
        json_decref(root);
    }
    free(text);
    text = api_reply_chunk(&head, "", 0, false, API_FINISH_STOP, false);
    CHECK(text && strstr(text, "\"delta\":{}") && strstr(text, "\"finish_reason\":\"stop\"") &&
              strstr(text, "chat.completion.chunk"),
          "last chat chunk: %s", text ? text : "(null)");
    free(text);
    api_error err;
    /* a body whose JSON error quotes half a UTF-8 character (jansson shows
     * the bytes before the fault): the error reply must still be JSON, with
     * the message (found by fuzz_request) */
    api_request request;
    const char bad_escape[] = "{\"prompt\":[\"\\\xc6\x93rue}}";
    CHECK(!parse(API_COMPLETIONS, bad_escape, &request, &err) && err.http_status == 400, "bad escape: %d",
          err.http_status);
    text = api_reply_error(&err);
    root = text ? json_loads(text, 0, NULL) : NULL;
    const char *message = root ? json_string_value(json_object_get(json_object_get(root, "error"), "message")) : NULL;
    CHECK(message && strncmp(message, "the body is not valid JSON: ", 28) == 0, "bad escape's reply: %s",
          text ? text : "(null)");
    json_decref(root);
    free(text);
    api_fail(&err, 401, NULL, "no key");
    text = api_reply_error(&err);
    CHECK(text && strcmp(text, "{\"error\":{\"message\":\"no key\",\"type\":\"authentication_error\",\"param\":null,"
                               "\"code\":null}}") == 0,
          "error reply: %s", text ? text : "(null)");
    free(text);
}

int main(void)
{
    test_stop_matcher();
    test_utf8();
    test_requests();
    test_replies();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("serve parts: all checks passed\n");
    return 0;
}
