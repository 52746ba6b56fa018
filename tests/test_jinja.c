/* The Jinja interpreter construct by construct, against Python's jinja2:
 * tests/data/templates/constructs.json holds small templates (whitespace
 * control, loop.*, scoping, namespace, macros with defaults and keyword
 * arguments, filters, slicing, tests, methods, tojson, errors) with the
 * output jinja2 gave, or the error it raised (written by
 * tests/tools/gen_template_fixtures.py). Then what only strata decides:
 * values and their Python text (floats, repr), the lexer's line numbers,
 * and the parse-time errors that name a construct. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "jinja.h"

#include "test_check.h"

#ifndef STRATA_TEST_DATA_DIR
#define STRATA_TEST_DATA_DIR "tests/data"
#endif

static void test_constructs(void)
{
    const char *dir = getenv("STRATA_TEST_DATA_DIR") ? getenv("STRATA_TEST_DATA_DIR") : STRATA_TEST_DATA_DIR;
    char path[1024];
    snprintf(path, sizeof path, "%s/templates/constructs.json", dir);
    json_error_t error;
    json_t *root = json_load_file(path, 0, &error);
    CHECK(root != NULL, "%s: %s", path, error.text);
    if (!root)
        return;
    json_t *cases = json_object_get(root, "cases"), *empty = json_array();
    size_t passed = 0, n = json_array_size(cases);
    CHECK(n >= 50, "constructs.json holds only %zu cases", n);
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *source = json_string_value(json_object_get(c, "template"));
        const json_t *expected = json_object_get(c, "expected");
        strata_error err = {0};
        strata_chat_template *tmpl = NULL;
        char *out = NULL;
        size_t len = 0;
        strata_status status = strata_chat_template_parse(source, strlen(source), name, &tmpl, &err);
        if (status == STRATA_OK) {
            strata_chat_options options = {.variables = json_object_get(c, "variables"),
                                           .date = json_string_value(json_object_get(root, "date"))};
            status = strata_chat_template_render(tmpl, empty, &options, &out, &len, &err);
        }
        if (expected) {
            const char *text = json_string_value(expected);
            if (status != STRATA_OK)
                CHECK(false, "%s: failed: %s", name, err.message);
            else if (len != json_string_length(expected) || memcmp(out, text, len) != 0)
                CHECK(false, "%s:\n    expected [%s]\n    got      [%s]", name, text, out);
            else
                passed++;
        } else {
            const char *kind = json_string_value(json_object_get(c, "error_kind"));
            const char *message = json_string_value(json_object_get(c, "error"));
            if (status == STRATA_OK)
                CHECK(false, "%s: rendered [%s], but jinja2 failed: %s: %s", name, out, kind, message);
            else if (!strcmp(kind, "raise_exception") && !strstr(err.message, message))
                CHECK(false, "%s: the message lacks '%s': %s", name, message, err.message);
            else
                passed++;
        }
        free(out);
        strata_chat_template_free(tmpl);
    }
    printf("%zu of %zu constructs match jinja2\n", passed, n);
    json_decref(empty);
    json_decref(root);
}

static void check_float(double value, const char *expected)
{
    char text[32];
    jinja_format_float(value, text);
    CHECK(!strcmp(text, expected), "repr(%.17g) = %s, expected %s", value, text, expected);
}

/* Python's repr of floats (Python printed the expected texts). */
static void test_float_repr(void)
{
    check_float(0.1, "0.1");
    check_float(1.0, "1.0");
    check_float(-0.0, "-0.0");
    check_float(1e16, "1e+16");
    check_float(1e15, "1000000000000000.0");
    check_float(123456789012345678.0, "1.2345678901234568e+17");
    check_float(1.5e-5, "1.5e-05");
    check_float(0.0001, "0.0001");
    check_float(0.1 + 0.2, "0.30000000000000004");
    check_float(2.5, "2.5");
    check_float(1e300 * 1e10, "inf");
    check_float(-1e300 * 1e10, "-inf");
    check_float(5e-324, "5e-324");
    check_float(1.7976931348623157e308, "1.7976931348623157e+308");
    check_float(100.0, "100.0");
}

static char *render(const char *source, const char *variables_json, strata_error *err)
{
    strata_chat_template *tmpl = NULL;
    if (strata_chat_template_parse(source, strlen(source), "t.jinja", &tmpl, err) != STRATA_OK)
        return NULL;
    json_t *vars = variables_json ? json_loads(variables_json, 0, NULL) : NULL, *messages = json_array();
    strata_chat_options options = {.variables = vars, .date = "2025-01-02"};
    char *out = NULL;
    size_t len;
    if (strata_chat_template_render(tmpl, messages, &options, &out, &len, err) != STRATA_OK)
        out = NULL;
    json_decref(vars);
    json_decref(messages);
    strata_chat_template_free(tmpl);
    return out;
}

static void expect_error(const char *source, const char *fragment1, const char *fragment2)
{
    strata_error err = {0};
    char *out = render(source, NULL, &err);
    CHECK(!out && strstr(err.message, fragment1) && (!fragment2 || strstr(err.message, fragment2)),
          "[%s]: expected an error with '%s'%s%s, got %s", source, fragment1, fragment2 ? " and " : "",
          fragment2 ? fragment2 : "", out ? out : err.message);
    free(out);
}

static void expect_text(const char *source, const char *variables_json, const char *expected)
{
    strata_error err = {0};
    char *out = render(source, variables_json, &err);
    CHECK(out && !strcmp(out, expected), "[%s]: expected [%s], got [%s]", source, expected, out ? out : err.message);
    free(out);
}

/* Errors name the line and the construct. */
static void test_errors(void)
{
    expect_error("a\nb\n{% extends 'base.jinja' %}", "t.jinja line 3", "extends");
    expect_error("{% import 'x' as y %}", "line 1", "import");
    expect_error("{% block body %}{% endblock %}", "block", NULL);
    expect_error("\n{% if x %}\nunclosed", "line 2", "endif");
    expect_error("{% endfor %}", "unknown tag 'endfor'", NULL);
    expect_error("{% break %}", "outside of a for loop", NULL);
    expect_error("{{ x |nosuch }}", "no filter named 'nosuch'", NULL);
    expect_error("{{ 1 is nosuchtest }}", "no test named 'nosuchtest'", NULL);
    expect_error("{{ x|groupby('a') }}", "groupby", "not supported");
    expect_error("{{ 1 + }}", "line 1", "unexpected");
    expect_error("{{ 'unterminated }}", "unterminated string", NULL);
    expect_error("{# never closed", "comment", NULL);
    expect_error("{{ (1 }}", "line 1", NULL);
    expect_error("{{ f(**kw) }}", "**kwargs", NULL);
    expect_error("{{ 'a' '\\N{DASH}' }}", "\\N", NULL);
    expect_error("\n\n\n{{ missing.attr }}", "line 4", "missing");
    expect_error("{{ lipsum() }}", "lipsum", "not supported");
    expect_error("{% set x = [1] %}{{ x.pop() }}", "list.pop", "modify");
    expect_error("{% for a, b in [1] %}{% endfor %}", "cannot unpack", NULL);
    expect_error("{{ 9223372036854775807 + 1 }}", "overflow", NULL);
    /* deep nesting is refused at parse time, not by a stack overflow */
    char deep[2100];
    memset(deep, '(', 1000);
    strcpy(deep + 1000, "1");
    memset(deep + 1001, ')', 1000);
    strcpy(deep + 2001, "");
    char source[2200];
    snprintf(source, sizeof source, "{{ %s }}", deep);
    expect_error(source, "nested more than", NULL);
    snprintf(source, sizeof source, "{%% if %.150s1%.150s %%}{%% endif %%}", deep, deep + 1001);
    expect_error(source, "nested more than", NULL);
    /* template source must be UTF-8 */
    expect_error("bad \xC3\x28 byte", "UTF-8", NULL);
}

static void test_values(void)
{
    /* str() of values inside containers uses repr, with Python's quoting */
    expect_text("{{ [\"it's\", 'say \"x\"', 'both \\' \"'] }}", NULL,
                "[\"it's\", 'say \"x\"', 'both \\' \"']");
    expect_text("{{ {'k': [1.0, none, false]} }}", NULL, "{'k': [1.0, None, False]}");
    expect_text("{{ x }}", "{\"x\": {\"nested\": {\"deep\": [1, 2.5, \"\\u00e9\"]}}}",
                "{'nested': {'deep': [1, 2.5, 'é']}}");
    /* a dict with many keys keeps its order and finds every key (hashed) */
    expect_text("{{ d.k7 }}{{ d.k39 }}{{ d|length }}{{ (d|list)[:3] }}{{ d.k40 is defined }}",
                "{\"d\": {\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
                "\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15,\"k16\":16,\"k17\":17,\"k18\":18,"
                "\"k19\":19,\"k20\":20,\"k21\":21,\"k22\":22,\"k23\":23,\"k24\":24,\"k25\":25,\"k26\":26,\"k27\":27,"
                "\"k28\":28,\"k29\":29,\"k30\":30,\"k31\":31,\"k32\":32,\"k33\":33,\"k34\":34,\"k35\":35,\"k36\":36,"
                "\"k37\":37,\"k38\":38,\"k39\":39}}",
                "73940['k0', 'k1', 'k2']False");
    /* the fixed date reaches strftime_now */
    expect_text("{{ strftime_now('%d %B %Y, %A') }}", NULL, "02 January 2025, Thursday");
}

int main(void)
{
    test_constructs();
    test_float_repr();
    test_errors();
    test_values();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
