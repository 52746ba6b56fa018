/* jinja2's built-in tests ("x is defined", "n is divisibleby 3", ...),
 * for `is` expressions and for select/reject. Tests jinja2 has but strata
 * does not are known, so using one says so. */
#include <stdio.h>
#include <string.h>

#include "jinja_syntax.h"

typedef bool (*test_fn)(jinja_rt *rt, jv value, const jinja_args *args, bool *out);

typedef struct test_spec {
    const char *name;
    test_fn fn; /* NULL: jinja2 has it, strata does not */
} test_spec;

static bool test_defined(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind != JV_UNDEFINED;
    return true;
}

static bool test_undefined(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_UNDEFINED;
    return true;
}

static bool test_none(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_NONE;
    return true;
}

static bool test_boolean(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_BOOL;
    return true;
}

static bool test_false(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_BOOL && !v.u.b;
    return true;
}

static bool test_true(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_BOOL && v.u.b;
    return true;
}

static bool test_integer(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_INT;
    return true;
}

static bool test_float(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_FLOAT;
    return true;
}

static bool test_number(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL;
    return true;
}

static bool test_string(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_STRING;
    return true;
}

static bool test_mapping(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_DICT;
    return true;
}

static bool test_iterable(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = jv_is_iterable(v);
    return true;
}

static bool test_sequence(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = jv_is_iterable(v);
    return true;
}

static bool test_callable(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = jv_is_callable(v);
    return true;
}

static bool one_arg(jinja_rt *rt, const char *test, const jinja_args *a, const jv **arg)
{
    *arg = jinja_arg(a, 0, NULL);
    if (!*arg || a->n_pos > 1)
        return jinja_error(rt, "test '%s' takes exactly one argument", test);
    return true;
}

static bool test_eq(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    const jv *other;
    if (!one_arg(rt, "eq", a, &other))
        return false;
    *out = jv_equal(v, *other);
    return true;
}

static bool test_ne(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    const jv *other;
    if (!one_arg(rt, "ne", a, &other))
        return false;
    *out = !jv_equal(v, *other);
    return true;
}

static bool ordering(jinja_rt *rt, jv v, const jinja_args *a, const char *op, int want, bool or_equal, bool *out)
{
    const jv *other;
    int order;
    if (!one_arg(rt, op, a, &other) || !jv_compare(rt, v, *other, op, &order))
        return false;
    *out = order != 2 && (order == want || (or_equal && order == 0));
    return true;
}

static bool test_lt(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    return ordering(rt, v, a, "<", -1, false, out);
}

static bool test_le(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    return ordering(rt, v, a, "<=", -1, true, out);
}

static bool test_gt(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    return ordering(rt, v, a, ">", 1, false, out);
}

static bool test_ge(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    return ordering(rt, v, a, ">=", 1, true, out);
}

static bool test_sameas(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    const jv *other;
    if (!one_arg(rt, "sameas", a, &other))
        return false;
    if (v.kind != other->kind)
        *out = false;
    else if (v.kind == JV_NONE || v.kind == JV_UNDEFINED)
        *out = true;
    else if (v.kind == JV_BOOL)
        *out = v.u.b == other->u.b;
    else if (v.kind == JV_INT) /* small ints are shared in CPython */
        *out = v.u.i == other->u.i && v.u.i >= -5 && v.u.i <= 256;
    else if (v.kind == JV_FLOAT || v.kind == JV_FUNCTION)
        *out = false;
    else
        *out = v.u.str == other->u.str; /* the same heap object */
    return true;
}

static bool test_in(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    const jv *seq;
    if (!one_arg(rt, "in", a, &seq))
        return false;
    switch (seq->kind) {
    case JV_UNDEFINED: *out = false; return true;
    case JV_STRING:
        if (v.kind != JV_STRING)
            return jinja_error(rt, "'in <string>' requires string as left operand, not %s", jv_type_name(v));
        *out = strstr(seq->u.str->data, v.u.str->data) != NULL || v.u.str->len == 0;
        return true;
    case JV_LIST:
        *out = false;
        for (size_t i = 0; i < seq->u.list->len && !*out; i++)
            *out = jv_equal(seq->u.list->items[i], v);
        return true;
    case JV_DICT: *out = jv_dict_get(seq->u.dict, v) != NULL; return true;
    default: return jinja_error(rt, "argument of type '%s' is not iterable", jv_type_name(*seq));
    }
}

static bool int_of(jinja_rt *rt, const char *test, jv v, int64_t *out)
{
    if (v.kind == JV_INT || v.kind == JV_BOOL) {
        *out = v.kind == JV_INT ? v.u.i : v.u.b;
        return true;
    }
    return jinja_error(rt, "test '%s' needs an integer, not %s", test, jv_type_name(v));
}

static bool test_odd(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    int64_t i = 0;
    (void)a;
    if (!int_of(rt, "odd", v, &i))
        return false;
    *out = i % 2 != 0;
    return true;
}

static bool test_even(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    int64_t i = 0;
    (void)a;
    if (!int_of(rt, "even", v, &i))
        return false;
    *out = i % 2 == 0;
    return true;
}

static bool test_divisibleby(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    const jv *by;
    int64_t i = 0, n = 0;
    if (!one_arg(rt, "divisibleby", a, &by) || !int_of(rt, "divisibleby", v, &i) || !int_of(rt, "divisibleby", *by, &n))
        return false;
    if (n == 0)
        return jinja_error(rt, "integer division or modulo by zero");
    *out = n == -1 || i % n == 0;
    return true;
}

static bool case_test(jinja_rt *rt, jv v, bool upper, bool *out)
{
    jv text;
    if (!jv_to_string(rt, v, &text))
        return false;
    bool any = false, ok = true;
    for (size_t pos = 0; ok && pos < text.u.str->len;) {
        uint32_t cp = jinja_utf8_next(text.u.str->data, text.u.str->len, &pos);
        if (jinja_to_upper(cp) == cp && jinja_to_lower(cp) == cp)
            continue;
        any = true;
        ok = upper ? jinja_to_lower(cp) != cp : jinja_to_upper(cp) != cp;
    }
    jv_release(text);
    *out = ok && any;
    return true;
}

static bool test_lower(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)a;
    return case_test(rt, v, false, out);
}

static bool test_upper(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)a;
    return case_test(rt, v, true, out);
}

static bool test_filter(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_STRING && jinja_find_filter(v.u.str->data) >= 0;
    return true;
}

static bool test_test(jinja_rt *rt, jv v, const jinja_args *a, bool *out)
{
    (void)rt, (void)a;
    *out = v.kind == JV_STRING && jinja_find_test(v.u.str->data) >= 0;
    return true;
}

static const test_spec tests[] = {
    {"!=", test_ne},           {"<", test_lt},           {"<=", test_le},
    {"==", test_eq},           {">", test_gt},           {">=", test_ge},
    {"boolean", test_boolean}, {"callable", test_callable}, {"defined", test_defined},
    {"divisibleby", test_divisibleby}, {"eq", test_eq},  {"equalto", test_eq},
    {"escaped", NULL},         {"even", test_even},      {"false", test_false},
    {"filter", test_filter},   {"float", test_float},    {"ge", test_ge},
    {"greaterthan", test_gt},  {"gt", test_gt},          {"in", test_in},
    {"integer", test_integer}, {"iterable", test_iterable}, {"le", test_le},
    {"lessthan", test_lt},     {"lower", test_lower},    {"lt", test_lt},
    {"mapping", test_mapping}, {"ne", test_ne},          {"none", test_none},
    {"number", test_number},   {"odd", test_odd},        {"sameas", test_sameas},
    {"sequence", test_sequence}, {"string", test_string}, {"test", test_test},
    {"true", test_true},       {"undefined", test_undefined}, {"upper", test_upper},
};

int jinja_find_test(const char *name)
{
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!strcmp(tests[i].name, name))
            return tests[i].fn ? (int)i : -2;
    return -1;
}

bool jinja_apply_test(jinja_rt *rt, int test, jv value, const jinja_args *args, bool *out)
{
    return tests[test].fn(rt, value, args, out);
}
