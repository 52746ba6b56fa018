/* Chat templates against Python's jinja2: every real template of
 * tests/data/templates over the conversations of cases.json (written by
 * tests/tools/gen_template_fixtures.py with jinja2 as Hugging Face runs it)
 * must give the same bytes, or fail where jinja2 failed (with jinja2's own
 * text when the template called raise_exception). Then the fallback
 * template, GGUF-less inputs that must be refused, and the BOS/EOS options.
 *
 * STRATA_TEMPLATE_CASE=substring runs only the cases whose template or
 * conversation name holds it and prints the first difference in full. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "gguf_rewrite.h"

#include "test_check.h"
#include "test_temp.h"

#ifndef STRATA_TEST_DATA_DIR
#define STRATA_TEST_DATA_DIR "tests/data"
#endif
#ifndef STRATA_MODELS_DIR
#define STRATA_MODELS_DIR "models"
#endif

static const char *data_dir(void)
{
    const char *dir = getenv("STRATA_TEST_DATA_DIR");
    return dir ? dir : STRATA_TEST_DATA_DIR;
}

/* Prints where two texts first differ, with some context. */
static void show_difference(const char *expected, size_t expected_len, const char *got, size_t got_len)
{
    size_t i = 0;
    while (i < expected_len && i < got_len && expected[i] == got[i])
        i++;
    size_t from = i > 60 ? i - 60 : 0;
    printf("    first difference at byte %zu (expected %zu bytes, got %zu)\n", i, expected_len, got_len);
    printf("    expected: ...%.*s\n", (int)(expected_len - from < 160 ? expected_len - from : 160), expected + from);
    printf("    got:      ...%.*s\n", (int)(got_len - from < 160 ? got_len - from : 160), got + from);
}

typedef struct template_cache {
    char name[256];
    strata_chat_template *tmpl;
} template_cache;

static strata_chat_template *template_for(template_cache *cache, size_t *n_cache, const char *name)
{
    for (size_t i = 0; i < *n_cache; i++)
        if (!strcmp(cache[i].name, name))
            return cache[i].tmpl;
    char path[1024];
    snprintf(path, sizeof path, "%s/templates/%s", data_dir(), name);
    strata_error err = {0};
    strata_chat_template *tmpl = NULL;
    if (strata_chat_template_load_file(path, &tmpl, &err) != STRATA_OK)
        printf("FAIL %s: %s\n", name, err.message);
    snprintf(cache[*n_cache].name, sizeof cache[*n_cache].name, "%s", name);
    cache[(*n_cache)++].tmpl = tmpl;
    return tmpl;
}

static const char *json_text(const json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

static void test_cases(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/templates/cases.json", data_dir());
    json_error_t error;
    json_t *root = json_load_file(path, 0, &error);
    CHECK(root != NULL, "%s: %s (line %d)", path, error.text, error.line);
    if (!root)
        return;
    const char *only = getenv("STRATA_TEMPLATE_CASE");
    const json_t *conversations = json_object_get(root, "conversations");
    const json_t *cases = json_object_get(root, "cases");
    const char *date = json_text(root, "date");
    template_cache cache[64];
    size_t n_cache = 0, passed = 0, run = 0, errors_expected = 0;
    size_t n_cases = json_array_size(cases);
    CHECK(n_cases >= 100, "cases.json holds only %zu cases", n_cases);
    for (size_t i = 0; i < n_cases; i++) {
        const json_t *c = json_array_get(cases, i);
        const char *template_name = json_text(c, "template"), *conversation_name = json_text(c, "conversation");
        if (only && !strstr(template_name, only) && !strstr(conversation_name, only))
            continue;
        run++;
        const json_t *conversation = json_object_get(conversations, conversation_name);
        strata_chat_template *tmpl = n_cache < 64 ? template_for(cache, &n_cache, template_name) : NULL;
        if (!tmpl) {
            failures++;
            continue;
        }
        strata_chat_options options = {
            .add_generation_prompt = json_is_true(json_object_get(c, "add_generation_prompt")),
            .bos_token = json_text(c, "bos_token"),
            .eos_token = json_text(c, "eos_token"),
            .tools = json_object_get(conversation, "tools"),
            .variables = json_object_get(c, "variables"),
            .date = date,
        };
        char *out = NULL;
        size_t out_len = 0;
        strata_error err = {0};
        strata_status status =
            strata_chat_template_render(tmpl, json_object_get(conversation, "messages"), &options, &out, &out_len, &err);
        const json_t *expected = json_object_get(c, "expected");
        char label[512];
        snprintf(label, sizeof label, "%s / %s%s%s", template_name, conversation_name,
                 options.add_generation_prompt ? " +gen" : "", options.variables ? " +vars" : "");
        if (expected) {
            const char *text = json_string_value(expected);
            size_t len = json_string_length(expected);
            if (status != STRATA_OK) {
                CHECK(false, "%s: render failed: %s", label, err.message);
            } else if (out_len != len || memcmp(out, text, len) != 0) {
                CHECK(false, "%s: output differs from jinja2", label);
                show_difference(text, len, out, out_len);
            } else {
                passed++;
            }
        } else {
            errors_expected++;
            const char *kind = json_text(c, "error_kind"), *message = json_text(c, "error");
            if (status == STRATA_OK) {
                CHECK(false, "%s: rendered, but jinja2 failed (%s: %s)", label, kind, message);
                if (only)
                    printf("    got: %s\n", out);
            } else if (!strcmp(kind, "raise_exception") && !strstr(err.message, message)) {
                CHECK(false, "%s: the error should hold the template's text '%s', got: %s", label, message,
                      err.message);
            } else {
                CHECK(status == STRATA_INVALID_INPUT, "%s: status %d", label, (int)status);
                if (only)
                    printf("    %s: jinja2 %s: %s\n    strata: %s\n", label, kind, message, err.message);
                passed++;
            }
        }
        free(out);
    }
    printf("%zu of %zu template cases match jinja2 (%zu of them expected errors)\n", passed, run, errors_expected);
    for (size_t i = 0; i < n_cache; i++)
        strata_chat_template_free(cache[i].tmpl);
    json_decref(root);
}

/* Renders source with messages (JSON text) into a new string, or NULL
 * with the message in err. */
static char *render_text(const char *source, const char *messages_json, const strata_chat_options *options,
                         strata_error *err)
{
    strata_chat_template *tmpl = NULL;
    if (strata_chat_template_parse(source, strlen(source), "test", &tmpl, err) != STRATA_OK)
        return NULL;
    json_t *messages = json_loads(messages_json, 0, NULL);
    char *out = NULL;
    size_t len;
    if (strata_chat_template_render(tmpl, messages, options, &out, &len, err) != STRATA_OK)
        out = NULL;
    json_decref(messages);
    strata_chat_template_free(tmpl);
    return out;
}

static void test_fallback(void)
{
    strata_chat_template *tmpl = NULL;
    strata_error err = {0};
    CHECK(strata_chat_template_fallback(&tmpl, &err) == STRATA_OK, "fallback: %s", err.message);
    if (!tmpl)
        return;
    CHECK(strata_chat_template_is_fallback(tmpl), "the fallback says it is one");
    json_t *messages = json_loads("[{\"role\": \"system\", \"content\": \"You are terse.\"},"
                                  " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"},"
                                  " {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \"there\"}]},"
                                  " {\"role\": \"assistant\", \"content\": null}]",
                                  0, NULL);
    strata_chat_options options = {.add_generation_prompt = true};
    char *out = NULL;
    size_t len = 0;
    CHECK(strata_chat_template_render(tmpl, messages, &options, &out, &len, &err) == STRATA_OK, "fallback render: %s",
          err.message);
    const char *expected = "system: You are terse.\n\nuser: Hi\nthere\n\nassistant: \n\nassistant:";
    CHECK(out && !strcmp(out, expected), "fallback gave '%s'", out ? out : "(null)");
    free(out);
    options.add_generation_prompt = false;
    out = NULL;
    CHECK(strata_chat_template_render(tmpl, messages, &options, &out, &len, &err) == STRATA_OK, "fallback render: %s",
          err.message);
    CHECK(out && !strcmp(out, "system: You are terse.\n\nuser: Hi\nthere\n\nassistant: \n\n"), "fallback gave '%s'",
          out ? out : "(null)");
    free(out);
    json_decref(messages);
    strata_chat_template_free(tmpl);
}

static void test_bad_inputs(void)
{
    strata_chat_template *tmpl = NULL;
    strata_error err = {0};
    const char *source = "{{ messages|length }}";
    CHECK(strata_chat_template_parse(source, strlen(source), "t", &tmpl, &err) == STRATA_OK, "%s", err.message);
    char *out = NULL;
    size_t len;
    json_t *not_array = json_loads("{\"role\": \"user\"}", 0, NULL), *not_objects = json_loads("[1, 2]", 0, NULL);
    json_t *ok_messages = json_loads("[{\"role\": \"user\", \"content\": \"x\"}]", 0, NULL);
    CHECK(strata_chat_template_render(tmpl, not_array, NULL, &out, &len, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "array"),
          "messages that are not an array: %s", err.message);
    CHECK(strata_chat_template_render(tmpl, not_objects, NULL, &out, &len, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "message 0"),
          "messages that are not objects: %s", err.message);
    json_t *vars = json_loads("{\"messages\": []}", 0, NULL);
    strata_chat_options options = {.variables = vars};
    CHECK(strata_chat_template_render(tmpl, ok_messages, &options, &out, &len, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "messages"),
          "a variable named messages: %s", err.message);
    strata_chat_options bad_date = {.date = "2025-02-30"};
    CHECK(strata_chat_template_render(tmpl, ok_messages, &bad_date, &out, &len, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "2025-02-30"),
          "a day that does not exist: %s", err.message);
    strata_chat_options leap = {.date = "2024-02-29"};
    CHECK(strata_chat_template_render(tmpl, ok_messages, &leap, &out, &len, &err) == STRATA_OK && out &&
              !strcmp(out, "1"),
          "a leap day: %s", err.message);
    free(out);
    json_decref(not_array);
    json_decref(not_objects);
    json_decref(ok_messages);
    json_decref(vars);
    strata_chat_template_free(tmpl);

    CHECK(strata_chat_template_load_file(data_dir(), &tmpl, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "directory"),
          "a directory as template: %s", err.message);
    CHECK(strata_chat_template_load_file("/nonexistent/t.jinja", &tmpl, &err) == STRATA_IO, "a missing file: %s",
          err.message);
}

static void test_tokens_and_errors(void)
{
    strata_error err = {0};
    strata_chat_options options = {.bos_token = "<B>", .eos_token = "<E>"};
    char *out = render_text("{{ bos_token }}{{ messages[0].content }}{{ eos_token }}|{{ tools }}|{{ documents }}",
                            "[{\"role\": \"user\", \"content\": \"x\"}]", &options, &err);
    CHECK(out && !strcmp(out, "<B>x<E>|None|None"), "tokens: got '%s' (%s)", out ? out : "", err.message);
    free(out);
    out = render_text("[{{ bos_token }}]{{ bos_token is defined }}", "[]", NULL, &err);
    CHECK(out && !strcmp(out, "[]False"), "no BOS given: got '%s'", out ? out : "");
    free(out);
    /* errors name the line and what failed */
    out = render_text("line one\n{% if true %}\n{{ raise_exception('stop here') }}\n{% endif %}", "[]", NULL, &err);
    CHECK(!out && strstr(err.message, "line 3") && strstr(err.message, "stop here"), "raise_exception: %s",
          err.message);
    out = render_text("\n\n{% include 'other.jinja' %}", "[]", NULL, &err);
    CHECK(!out && strstr(err.message, "line 3") && strstr(err.message, "include"), "include: %s", err.message);
    out = render_text("{% for x in xs recursive %}{% endfor %}", "[]", NULL, &err);
    CHECK(!out && strstr(err.message, "recursive"), "recursive loops: %s", err.message);
    out = render_text("\n{{ x|wordwrap }}", "[]", NULL, &err);
    CHECK(!out && strstr(err.message, "line 2") && strstr(err.message, "wordwrap") &&
              strstr(err.message, "not supported"),
          "unsupported filter: %s", err.message);
    out = render_text("{{ '%s' % 1 }}", "[]", NULL, &err);
    CHECK(!out && strstr(err.message, "formatting"), "%%-formatting: %s", err.message);
    out = render_text("{{ 'x'.swapcase() }}", "[]", NULL, &err);
    CHECK(!out && strstr(err.message, "swapcase"), "unsupported method: %s", err.message);
    out = render_text("{% call m() %}{% endcall %}", "[]", NULL, &err);
    CHECK(!out && strstr(err.message, "call"), "call blocks: %s", err.message);
    out = render_text("{{ 99999999999999999999 }}", "[]", NULL, &err);
    CHECK(!out && strstr(err.message, "64 bits"), "big integers: %s", err.message);
}

/* Hostile templates stop at a limit with a message, quickly. */
static void test_limits(void)
{
    strata_error err = {0};
    strata_chat_options options = {.max_steps = 200000, .max_output_bytes = 1 << 20};
    char *out = render_text("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "[]",
                            &options, &err);
    CHECK(!out && strstr(err.message, "steps"), "nested loops: %s", err.message);
    out = render_text("{{ 'x' * 100000000 }}", "[]", &options, &err);
    CHECK(!out && strstr(err.message, "limit"), "string repetition: %s", err.message);
    out = render_text("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "[]", &options, &err);
    CHECK(!out && strstr(err.message, "deep"), "endless recursion: %s", err.message);
    out = render_text("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
                      "{{ ns.s|length }}",
                      "[]", &options, &err);
    CHECK(!out && strstr(err.message, "limit"), "doubling a string: %s", err.message);
    out = render_text("{% for i in range(30000) %}{{ 'abcdefghij' * 10 }}{% endfor %}", "[]", &options, &err);
    CHECK(!out && strstr(err.message, "limit"), "output: %s", err.message);
    /* steps that each scan a long string count by its length */
    out = render_text("{% set s = 'a' * 1000000 %}{% for i in range(100000) %}{{ 'b' in s }}{{ s.find('b') }}"
                      "{{ s.count('b') }}{% endfor %}",
                      "[]", &options, &err);
    CHECK(!out && strstr(err.message, "steps"), "scanning a long string: %s", err.message);
    /* and a clock stops what the steps miss */
    strata_chat_options timed = {.max_seconds = 0.2, .max_steps = UINT64_MAX / 2};
    out = render_text("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "[]", &timed,
                      &err);
    CHECK(!out && strstr(err.message, "seconds"), "the time limit: %s", err.message);
    out = render_text("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns.self.self is defined }}", "[]", &options,
                      &err);
    CHECK(out && !strcmp(out, "True"), "a namespace holding itself: %s", out ? out : err.message);
    free(out);
}

/* The template and the BOS/EOS texts come from a GGUF file; a file
 * without a template gets the fallback. */
static void test_gguf(void)
{
    const char *models = getenv("STRATA_MODELS_DIR") ? getenv("STRATA_MODELS_DIR") : STRATA_MODELS_DIR;
    char src[1024], dir[1024], dst[1100];
    snprintf(src, sizeof src, "%s/stories260K.gguf", models);
    if (!test_make_temp_dir(dir, sizeof dir, "chat_template")) {
        CHECK(false, "no temporary directory");
        return;
    }
    snprintf(dst, sizeof dst, "%s/with_template.gguf", dir);
    rewrite_key key = {.key = "tokenizer.chat_template", .kind = REWRITE_STRING,
                       .string_value = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}"
                                       "{% endfor %}{{ eos_token }}"};
    rewrite_spec spec = {.keys = &key, .n_keys = 1};
    CHECK(gguf_rewrite(src, dst, &spec), "writing a GGUF file with a chat template");
    strata_chat_template *tmpl = NULL;
    strata_error err = {0};
    json_t *messages = json_loads("[{\"role\": \"user\", \"content\": \"hi\"}]", 0, NULL);
    char *out = NULL;
    size_t len = 0;
    CHECK(strata_chat_template_from_gguf(dst, &tmpl, &err) == STRATA_OK, "from_gguf: %s", err.message);
    if (tmpl) {
        CHECK(!strata_chat_template_is_fallback(tmpl), "a file with a template is not the fallback");
        CHECK(strata_chat_template_render(tmpl, messages, NULL, &out, &len, &err) == STRATA_OK, "%s", err.message);
        CHECK(out && !strcmp(out, "<s>[user] hi</s>"), "the GGUF template gave '%s'", out ? out : "");
        free(out);
        out = NULL;
        strata_chat_template_free(tmpl);
        tmpl = NULL;
    }
    CHECK(strata_chat_template_from_gguf(src, &tmpl, &err) == STRATA_OK, "from_gguf: %s", err.message);
    if (tmpl) {
        CHECK(strata_chat_template_is_fallback(tmpl), "a file without a template gets the fallback");
        CHECK(!strcmp(strata_chat_template_bos_token(tmpl), "<s>"), "BOS text");
        CHECK(strata_chat_template_render(tmpl, messages, NULL, &out, &len, &err) == STRATA_OK, "%s", err.message);
        CHECK(out && !strcmp(out, "user: hi\n\n"), "the fallback gave '%s'", out ? out : "");
        free(out);
        strata_chat_template_free(tmpl);
        tmpl = NULL;
    }
    /* a template that does not parse is an error naming the file and the key */
    key.string_value = "{% for %}";
    CHECK(gguf_rewrite(src, dst, &spec), "writing a GGUF file with a broken chat template");
    CHECK(strata_chat_template_from_gguf(dst, &tmpl, &err) == STRATA_INVALID_INPUT &&
              strstr(err.message, "tokenizer.chat_template") && strstr(err.message, "line 1"),
          "a broken template: %s", err.message);
    CHECK(strata_chat_template_from_gguf(dir, &tmpl, &err) != STRATA_OK, "a directory is not a model");
    json_decref(messages);
    remove(dst);
    remove(dir);
}

int main(void)
{
    test_cases();
    test_fallback();
    test_bad_inputs();
    test_tokens_and_errors();
    test_limits();
    test_gguf();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
