/* jinja2's built-in filters, the global functions of Hugging
 * Face's chat template environment (raise_exception, strftime_now) and
 * jinja2's (range, namespace, dict), and tojson as Hugging Face overrides
 * it (json.dumps with ensure_ascii=False). Names jinja2 has but strata
 * does not implement are known, so using one is an error saying so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_syntax.h"

bool jinja_str_splitlines(jinja_rt *rt, jv self, bool keepends, jv *out); /* jinja_methods.c */

typedef bool (*filter_fn)(jinja_rt *rt, jv value, const jinja_args *args, jv *out);

typedef struct filter_spec {
    const char *name;
    filter_fn fn; /* NULL: jinja2 has it, strata does not */
} filter_spec;

/* The sandbox's largest range(), as jinja2's. */
#define MAX_RANGE 100000

/* --- argument helpers --------------------------------------------------------- */

static bool check_args(jinja_rt *rt, const char *what, const jinja_args *args, size_t max_pos,
                       const char *const *kw_allowed)
{
    if (args->n_pos > max_pos)
        return jinja_error(rt, "%s takes at most %zu argument(s)", what, max_pos);
    for (size_t i = 0; i < args->n_kw; i++) {
        bool known = false;
        for (size_t k = 0; kw_allowed && kw_allowed[k] && !known; k++)
            known = !strcmp(kw_allowed[k], args->kw_names[i]);
        if (!known)
            return jinja_error(rt, "%s got an unexpected keyword argument '%s'", what, args->kw_names[i]);
    }
    return true;
}

static bool arg_bool(const jinja_args *args, size_t i, const char *name, bool fallback)
{
    const jv *v = jinja_arg(args, i, name);
    return v ? jv_truthy(*v) : fallback;
}

static bool arg_int(jinja_rt *rt, const char *what, const jinja_args *args, size_t i, const char *name,
                    int64_t fallback, int64_t *out)
{
    const jv *v = jinja_arg(args, i, name);
    if (!v || v->kind == JV_NONE) {
        *out = fallback;
        return true;
    }
    if (v->kind == JV_INT || v->kind == JV_BOOL) {
        *out = v->kind == JV_INT ? v->u.i : v->u.b;
        return true;
    }
    return jinja_error(rt, "%s: '%s' must be an integer, not %s", what, name ? name : "argument", jv_type_name(*v));
}

/* str(value) for filters that take text (soft_str: undefined is ""). */
static bool text_of(jinja_rt *rt, jv value, jv *out)
{
    return jv_to_string(rt, value, out);
}

static bool new_list_from(jinja_rt *rt, jv value, jv *out)
{
    return jv_iterate(rt, value, out) && jinja_rt_step(rt, out->u.list->len);
}

/* item.attribute, where attribute may be dotted ("a.b") or a number. */
static bool get_attribute(jinja_rt *rt, jv item, jv attribute, jv *out)
{
    if (attribute.kind == JV_INT) {
        if (item.kind == JV_LIST && attribute.u.i >= -(int64_t)item.u.list->len &&
            attribute.u.i < (int64_t)item.u.list->len) {
            int64_t i = attribute.u.i < 0 ? attribute.u.i + (int64_t)item.u.list->len : attribute.u.i;
            *out = jv_copy(item.u.list->items[i]);
        } else {
            *out = jv_undefined();
        }
        return true;
    }
    if (attribute.kind != JV_STRING)
        return jinja_error(rt, "attribute names must be strings, not %s", jv_type_name(attribute));
    jv current = jv_copy(item);
    const char *path = attribute.u.str->data;
    while (true) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        char part[256];
        if (len >= sizeof part) {
            jv_release(current);
            return jinja_error(rt, "attribute name too long");
        }
        memcpy(part, path, len);
        part[len] = '\0';
        jv next;
        bool numeric = len > 0 && strspn(part, "0123456789") == len;
        if (numeric && current.kind == JV_LIST) {
            size_t i = (size_t)strtoull(part, NULL, 10);
            next = i < current.u.list->len ? jv_copy(current.u.list->items[i]) : jv_undefined();
        } else if (current.kind == JV_UNDEFINED) {
            next = jv_undefined();
        } else if (!jinja_getattr(rt, current, part, &next)) {
            jv_release(current);
            return false;
        }
        jv_release(current);
        current = next;
        if (!dot)
            break;
        path = dot + 1;
    }
    *out = current;
    return true;
}

/* --- tojson --------------------------------------------------------------------- */

static bool filter_tojson(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
    if (!check_args(rt, "tojson", args, 4, kw))
        return false;
    jinja_json_style style = {.indent = -1};
    style.ensure_ascii = arg_bool(args, 0, "ensure_ascii", false);
    const jv *indent = jinja_arg(args, 1, "indent");
    if (indent && indent->kind != JV_NONE) {
        if (indent->kind != JV_INT && indent->kind != JV_BOOL)
            return jinja_error(rt, "tojson: indent must be an integer");
        int64_t n = indent->kind == JV_INT ? indent->u.i : indent->u.b;
        style.indent = n < 0 ? 0 : n > 64 ? 64 : (int)n;
    }
    const jv *separators = jinja_arg(args, 2, "separators");
    if (separators && separators->kind != JV_NONE) {
        if (separators->kind != JV_LIST || separators->u.list->len != 2 ||
            separators->u.list->items[0].kind != JV_STRING || separators->u.list->items[1].kind != JV_STRING)
            return jinja_error(rt, "tojson: separators must be a pair of strings");
        style.item_sep = separators->u.list->items[0].u.str->data;
        style.key_sep = separators->u.list->items[1].u.str->data;
    }
    style.sort_keys = arg_bool(args, 3, "sort_keys", false);
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    if (!jinja_json_dump(&buf, value, &style, 0)) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

/* --- text filters ------------------------------------------------------------------ */

static bool case_filter(jinja_rt *rt, jv value, const jinja_args *args, jinja_case mode, jv *out)
{
    jv text;
    if (!check_args(rt, "case filter", args, 0, NULL) || !text_of(rt, value, &text))
        return false;
    bool ok = jinja_str_case(rt, text, mode, out);
    jv_release(text);
    return ok;
}

static bool filter_lower(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return case_filter(rt, value, args, JCASE_LOWER, out);
}

static bool filter_upper(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return case_filter(rt, value, args, JCASE_UPPER, out);
}

static bool filter_capitalize(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return case_filter(rt, value, args, JCASE_CAPITALIZE, out);
}

static bool filter_title(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return case_filter(rt, value, args, JCASE_TITLE_WORDS, out);
}

static bool filter_trim(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"chars", NULL};
    jv text;
    if (!check_args(rt, "trim", args, 1, kw) || !text_of(rt, value, &text))
        return false;
    bool ok = jinja_str_strip(rt, text, jinja_arg(args, 0, "chars"), JSTRIP_BOTH, out);
    jv_release(text);
    return ok;
}

static bool filter_string(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return check_args(rt, "string", args, 0, NULL) && text_of(rt, value, out);
}

static bool filter_safe(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return check_args(rt, "safe", args, 0, NULL) && text_of(rt, value, out);
}

static bool filter_escape(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    jv text;
    if (!check_args(rt, "escape", args, 0, NULL) || !text_of(rt, value, &text))
        return false;
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    bool ok = true;
    for (size_t i = 0; ok && i < text.u.str->len; i++) {
        char c = text.u.str->data[i];
        ok = c == '&' ? jinja_buf_add(&buf, "&amp;", 5) : c == '<' ? jinja_buf_add(&buf, "&lt;", 4)
           : c == '>' ? jinja_buf_add(&buf, "&gt;", 4) : c == '"' ? jinja_buf_add(&buf, "&#34;", 5)
           : c == '\'' ? jinja_buf_add(&buf, "&#39;", 5) : jinja_buf_addc(&buf, c);
    }
    jv_release(text);
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

static bool filter_replace(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"old", "new", "count", NULL};
    const jv *old = jinja_arg(args, 0, "old"), *new_text = jinja_arg(args, 1, "new");
    int64_t count = 0;
    if (!check_args(rt, "replace", args, 3, kw) || !arg_int(rt, "replace", args, 2, "count", -1, &count))
        return false;
    if (!old || !new_text)
        return jinja_error(rt, "replace needs the old and the new text");
    jv text, old_text, new_str;
    if (!text_of(rt, value, &text))
        return false;
    if (!text_of(rt, *old, &old_text)) {
        jv_release(text);
        return false;
    }
    if (!text_of(rt, *new_text, &new_str)) {
        jv_release(text);
        jv_release(old_text);
        return false;
    }
    bool ok = jinja_str_replace(rt, text, old_text, new_str, count, out);
    jv_release(text);
    jv_release(old_text);
    jv_release(new_str);
    return ok;
}

/* jinja2's indent: width spaces (or the given string) before every line but
 * the first (first=true: it too), blank lines left alone unless blank=true. */
static bool filter_indent(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"width", "first", "blank", NULL};
    if (!check_args(rt, "indent", args, 3, kw))
        return false;
    const jv *width = jinja_arg(args, 0, "width");
    jv indention;
    bool ok;
    if (width && width->kind == JV_STRING) {
        indention = jv_copy(*width);
        ok = true;
    } else {
        int64_t n = 0;
        if (!arg_int(rt, "indent", args, 0, "width", 4, &n))
            return false;
        if (n < 0)
            n = 0;
        if (n > 4096)
            return jinja_error(rt, "indent width too large");
        char spaces[4097];
        memset(spaces, ' ', (size_t)n);
        ok = jv_string(rt, spaces, (size_t)n, &indention);
    }
    if (!ok)
        return false;
    bool first = arg_bool(args, 1, "first", false), blank = arg_bool(args, 2, "blank", false);
    jv text, lines = jv_undefined();
    if (!text_of(rt, value, &text)) {
        jv_release(indention);
        return false;
    }
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    /* s += "\n" then splitlines(), as jinja2 does */
    ok = jinja_buf_add(&buf, text.u.str->data, text.u.str->len) && jinja_buf_addc(&buf, '\n');
    jv padded = jv_undefined();
    ok = ok && jinja_buf_to_string(&buf, &padded);
    if (!ok)
        jinja_buf_free(&buf);
    ok = ok && jinja_str_splitlines(rt, padded, false, &lines);
    jv_release(padded);
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    const jinja_string *ind = indention.u.str;
    if (ok && first)
        ok = jinja_buf_add(&buf, ind->data, ind->len);
    for (size_t i = 0; ok && i < lines.u.list->len; i++) {
        const jinja_string *line = lines.u.list->items[i].u.str;
        if (i > 0) {
            ok = jinja_buf_addc(&buf, '\n');
            if (ok && (blank || line->len > 0))
                ok = jinja_buf_add(&buf, ind->data, ind->len);
        }
        ok = ok && jinja_buf_add(&buf, line->data, line->len);
    }
    jv_release(lines);
    jv_release(text);
    jv_release(indention);
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

static bool filter_center(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"width", NULL};
    int64_t width = 0;
    jv text;
    if (!check_args(rt, "center", args, 1, kw) || !arg_int(rt, "center", args, 0, "width", 80, &width) ||
        !text_of(rt, value, &text))
        return false;
    jv method_out, method;
    bool failed = false, ok = jinja_find_method(rt, text, "center", &method, &failed);
    if (ok) {
        jv w = jv_int(width);
        jinja_args margs = {.pos = &w, .n_pos = 1};
        ok = jinja_call_method(rt, method.u.method, &margs, &method_out);
        jv_release(method);
        if (ok)
            *out = method_out;
    }
    jv_release(text);
    return ok;
}

static bool filter_wordcount(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    jv text;
    if (!check_args(rt, "wordcount", args, 0, NULL) || !text_of(rt, value, &text))
        return false;
    int64_t words = 0;
    bool in_word = false;
    for (size_t pos = 0; pos < text.u.str->len;) {
        uint32_t cp = jinja_utf8_next(text.u.str->data, text.u.str->len, &pos);
        bool word = (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_' ||
                    (cp >= 0x80 && !jinja_is_space(cp));
        words += word && !in_word;
        in_word = word;
    }
    jv_release(text);
    *out = jv_int(words);
    return true;
}

/* --- numbers -------------------------------------------------------------------------- */

/* Python's int(text, 10) / float(text): whitespace around, one sign,
 * underscores between digits. */
static bool parse_python_number(const char *s, bool want_int, double *as_float, int64_t *as_int)
{
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    char clean[128];
    size_t n = 0;
    for (; *s && n + 1 < sizeof clean; s++) {
        if (*s == '_')
            continue;
        clean[n++] = *s;
    }
    if (*s)
        return false;
    while (n > 0 && (clean[n - 1] == ' ' || (clean[n - 1] >= '\t' && clean[n - 1] <= '\r')))
        n--;
    clean[n] = '\0';
    if (n == 0)
        return false;
    char *end;
    if (want_int) {
        const char *p = clean + (clean[0] == '+' || clean[0] == '-');
        if (!*p || strspn(p, "0123456789") != strlen(p))
            return false;
        long long v = strtoll(clean, &end, 10);
        if (*end)
            return false;
        *as_int = v;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (clean[i] == 'x' || clean[i] == 'X' || clean[i] == 'p' || clean[i] == 'P')
            return false; /* strtod reads hex; Python's float() does not */
    *as_float = strtod(clean, &end);
    return *end == '\0';
}

static bool filter_int(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"default", "base", NULL};
    if (!check_args(rt, "int", args, 2, kw))
        return false;
    int64_t base = 0;
    if (!arg_int(rt, "int", args, 1, "base", 10, &base))
        return false;
    if (base != 10)
        return jinja_error(rt, "int: bases other than 10 are not supported");
    const jv *fallback = jinja_arg(args, 0, "default");
    double f = 0;
    int64_t i = 0;
    switch (value.kind) {
    case JV_INT: *out = value; return true;
    case JV_BOOL: *out = jv_int(value.u.b); return true;
    case JV_FLOAT:
        if (isnan(value.u.f))
            break;
        if (isinf(value.u.f) || fabs(value.u.f) >= 9.2e18)
            return jinja_error(rt, "cannot convert float %s to integer", isinf(value.u.f) ? "infinity" : "this large");
        *out = jv_int((int64_t)value.u.f);
        return true;
    case JV_STRING:
        if (parse_python_number(value.u.str->data, true, &f, &i)) {
            *out = jv_int(i);
            return true;
        }
        if (parse_python_number(value.u.str->data, false, &f, &i) && !isnan(f)) {
            if (isinf(f) || fabs(f) >= 9.2e18)
                return jinja_error(rt, "cannot convert float infinity to integer");
            *out = jv_int((int64_t)f);
            return true;
        }
        break;
    default: break;
    }
    *out = fallback ? jv_copy(*fallback) : jv_int(0);
    return true;
}

static bool filter_float(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"default", NULL};
    if (!check_args(rt, "float", args, 1, kw))
        return false;
    const jv *fallback = jinja_arg(args, 0, "default");
    double f = 0;
    int64_t i = 0;
    switch (value.kind) {
    case JV_INT: *out = jv_float((double)value.u.i); return true;
    case JV_BOOL: *out = jv_float(value.u.b); return true;
    case JV_FLOAT: *out = value; return true;
    case JV_STRING:
        if (parse_python_number(value.u.str->data, false, &f, &i)) {
            *out = jv_float(f);
            return true;
        }
        break;
    default: break;
    }
    *out = fallback ? jv_copy(*fallback) : jv_float(0.0);
    return true;
}

static bool filter_abs(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    if (!check_args(rt, "abs", args, 0, NULL))
        return false;
    if (value.kind == JV_FLOAT)
        *out = jv_float(fabs(value.u.f));
    else if (value.kind == JV_INT && value.u.i != INT64_MIN)
        *out = jv_int(value.u.i < 0 ? -value.u.i : value.u.i);
    else if (value.kind == JV_BOOL)
        *out = jv_int(value.u.b);
    else
        return jinja_error(rt, "bad operand type for abs(): '%s'", jv_type_name(value));
    return true;
}

static bool filter_round(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"precision", "method", NULL};
    int64_t precision = 0;
    if (!check_args(rt, "round", args, 2, kw) || !arg_int(rt, "round", args, 0, "precision", 0, &precision))
        return false;
    const jv *method = jinja_arg(args, 1, "method");
    const char *how = method && method->kind == JV_STRING ? method->u.str->data : "common";
    if (value.kind != JV_INT && value.kind != JV_FLOAT && value.kind != JV_BOOL)
        return jinja_error(rt, "round: type %s doesn't define __round__", jv_type_name(value));
    double x = value.kind == JV_FLOAT ? value.u.f : value.kind == JV_INT ? (double)value.u.i : value.u.b;
    if (precision < -300 || precision > 300)
        return jinja_error(rt, "round: precision out of range");
    if (!strcmp(how, "common")) {
        if (value.kind != JV_FLOAT) {
            *out = jv_float(x);
            return true;
        }
        if (!isfinite(x)) {
            *out = value;
            return true;
        }
        /* correctly rounded, half to even, as Python's round() */
        char text[400];
        if (precision >= 0) {
            snprintf(text, sizeof text, "%.*f", (int)precision, x);
            *out = jv_float(strtod(text, NULL));
        } else {
            double scale = pow(10.0, (double)-precision);
            *out = jv_float(nearbyint(x / scale) * scale);
        }
        return true;
    }
    if (strcmp(how, "ceil") && strcmp(how, "floor"))
        return jinja_error(rt, "method must be common, ceil or floor");
    double scale = pow(10.0, (double)precision);
    *out = jv_float((how[0] == 'c' ? ceil(x * scale) : floor(x * scale)) / scale);
    return true;
}

/* --- sequences --------------------------------------------------------------------- */

static bool filter_length(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    int64_t n = 0;
    if (!check_args(rt, "length", args, 0, NULL) || !jv_length(rt, value, &n))
        return false;
    *out = jv_int(n);
    return true;
}

static bool filter_list(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return check_args(rt, "list", args, 0, NULL) && new_list_from(rt, value, out);
}

static bool filter_first(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    jv items;
    if (!check_args(rt, "first", args, 0, NULL) || !jv_iterate(rt, value, &items))
        return false;
    *out = items.u.list->len ? jv_copy(items.u.list->items[0]) : jv_undefined();
    jv_release(items);
    return true;
}

static bool filter_last(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    jv items;
    if (!check_args(rt, "last", args, 0, NULL) || !jv_iterate(rt, value, &items))
        return false;
    *out = items.u.list->len ? jv_copy(items.u.list->items[items.u.list->len - 1]) : jv_undefined();
    jv_release(items);
    return true;
}

static void reverse_items(jinja_list *list)
{
    for (size_t i = 0; i < list->len / 2; i++) {
        jv t = list->items[i];
        list->items[i] = list->items[list->len - 1 - i];
        list->items[list->len - 1 - i] = t;
    }
}

static bool filter_reverse(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    if (!check_args(rt, "reverse", args, 0, NULL))
        return false;
    jv items;
    if (!new_list_from(rt, value, &items))
        return false;
    reverse_items(items.u.list);
    if (value.kind != JV_STRING) {
        *out = items;
        return true;
    }
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    bool ok = true;
    for (size_t i = 0; ok && i < items.u.list->len; i++)
        ok = jinja_buf_add(&buf, items.u.list->items[i].u.str->data, items.u.list->items[i].u.str->len);
    jv_release(items);
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

static bool filter_join(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"d", "attribute", NULL};
    if (!check_args(rt, "join", args, 2, kw))
        return false;
    const jv *sep = jinja_arg(args, 0, "d"), *attribute = jinja_arg(args, 1, "attribute");
    jv sep_text = jv_undefined(), items;
    if (sep && !text_of(rt, *sep, &sep_text))
        return false;
    if (!new_list_from(rt, value, &items)) {
        jv_release(sep_text);
        return false;
    }
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    bool ok = true;
    for (size_t i = 0; ok && i < items.u.list->len; i++) {
        if (i && sep_text.kind == JV_STRING)
            ok = jinja_buf_add(&buf, sep_text.u.str->data, sep_text.u.str->len);
        jv item = jv_copy(items.u.list->items[i]);
        if (ok && attribute) {
            jv got;
            ok = get_attribute(rt, item, *attribute, &got);
            jv_release(item);
            item = ok ? got : jv_undefined();
        }
        ok = ok && jv_append_str(&buf, item);
        jv_release(item);
    }
    jv_release(items);
    jv_release(sep_text);
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

static bool filter_items(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    if (!check_args(rt, "items", args, 0, NULL))
        return false;
    if (value.kind == JV_UNDEFINED)
        return jv_list_new(rt, 0, false, out);
    if (value.kind != JV_DICT)
        return jinja_error(rt, "Can only get item pairs from a mapping.");
    jv method;
    bool failed;
    if (!jinja_find_method(rt, value, "items", &method, &failed))
        return false;
    jinja_args none = {0};
    bool ok = jinja_call_method(rt, method.u.method, &none, out);
    jv_release(method);
    return ok;
}

/* The sort key of an item: the attribute when one is given, lowercased
 * when a string and not case_sensitive. */
static bool sort_key(jinja_rt *rt, jv item, const jv *attribute, bool case_sensitive, jv *out)
{
    jv key;
    if (attribute) {
        if (!get_attribute(rt, item, *attribute, &key))
            return false;
    } else {
        key = jv_copy(item);
    }
    if (!case_sensitive && key.kind == JV_STRING) {
        jv lowered;
        bool ok = jinja_str_case(rt, key, JCASE_LOWER, &lowered);
        jv_release(key);
        if (!ok)
            return false;
        key = lowered;
    }
    *out = key;
    return true;
}

/* Stable merge sort of items by keys (parallel arrays). */
static bool merge_sort(jinja_rt *rt, jv *items, jv *keys, jv *tmp_items, jv *tmp_keys, size_t n, bool reverse)
{
    if (n < 2)
        return true;
    size_t mid = n / 2;
    if (!merge_sort(rt, items, keys, tmp_items, tmp_keys, mid, reverse) ||
        !merge_sort(rt, items + mid, keys + mid, tmp_items, tmp_keys, n - mid, reverse))
        return false;
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) {
        int order;
        if (!jv_compare(rt, keys[j], keys[i], "<", &order) || !jinja_rt_step(rt, 1))
            return false;
        bool take_right = reverse ? order > 0 : order < 0;
        if (take_right) {
            tmp_items[k] = items[j];
            tmp_keys[k++] = keys[j++];
        } else {
            tmp_items[k] = items[i];
            tmp_keys[k++] = keys[i++];
        }
    }
    while (i < mid) {
        tmp_items[k] = items[i];
        tmp_keys[k++] = keys[i++];
    }
    while (j < n) {
        tmp_items[k] = items[j];
        tmp_keys[k++] = keys[j++];
    }
    memcpy(items, tmp_items, n * sizeof *items);
    memcpy(keys, tmp_keys, n * sizeof *keys);
    return true;
}

/* items sorted by their keys (new list), for sort, dictsort, min and max. */
static bool sorted_list(jinja_rt *rt, jv value, const jv *attribute, bool case_sensitive, bool reverse, jv *out)
{
    jv items;
    if (!new_list_from(rt, value, &items))
        return false;
    size_t n = items.u.list->len;
    jv *keys = jinja_alloc(rt, (n ? n : 1) * sizeof *keys * 3);
    if (!keys) {
        jv_release(items);
        return false;
    }
    size_t made = 0;
    bool ok = true;
    for (; ok && made < n; made++)
        if (!(ok = sort_key(rt, items.u.list->items[made], attribute, case_sensitive, &keys[made])))
            break;
    if (ok)
        ok = merge_sort(rt, items.u.list->items, keys, keys + n, keys + 2 * n, n, reverse);
    for (size_t i = 0; i < made; i++)
        jv_release(keys[i]);
    free(keys);
    if (!ok) {
        jv_release(items);
        return false;
    }
    *out = items;
    return true;
}

static bool filter_sort(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"reverse", "case_sensitive", "attribute", NULL};
    return check_args(rt, "sort", args, 3, kw) &&
           sorted_list(rt, value, jinja_arg(args, 2, "attribute"), arg_bool(args, 1, "case_sensitive", false),
                       arg_bool(args, 0, "reverse", false), out);
}

static bool filter_dictsort(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"case_sensitive", "by", "reverse", NULL};
    if (!check_args(rt, "dictsort", args, 3, kw))
        return false;
    const jv *by = jinja_arg(args, 1, "by");
    int64_t pos = 0;
    if (by && by->kind == JV_STRING && !strcmp(by->u.str->data, "value"))
        pos = 1;
    else if (by && !(by->kind == JV_STRING && !strcmp(by->u.str->data, "key")))
        return jinja_error(rt, "You can only sort by either \"key\" or \"value\"");
    jv pairs;
    if (!filter_items(rt, value, &(jinja_args){0}, &pairs))
        return false;
    jv attribute = jv_int(pos);
    bool ok = sorted_list(rt, pairs, &attribute, arg_bool(args, 0, "case_sensitive", false),
                          arg_bool(args, 2, "reverse", false), out);
    jv_release(pairs);
    return ok;
}

static bool min_max(jinja_rt *rt, jv value, const jinja_args *args, bool want_max, jv *out)
{
    static const char *const kw[] = {"case_sensitive", "attribute", NULL};
    if (!check_args(rt, want_max ? "max" : "min", args, 2, kw))
        return false;
    jv sorted;
    if (!sorted_list(rt, value, jinja_arg(args, 1, "attribute"), arg_bool(args, 0, "case_sensitive", false), false,
                     &sorted))
        return false;
    size_t n = sorted.u.list->len;
    if (n == 0)
        *out = jv_undefined();
    else if (want_max) {
        /* max() keeps the first of equal maxima; the stable sort put it first among them */
        size_t i = n - 1;
        jv key_last, key_prev;
        while (i > 0) {
            if (!sort_key(rt, sorted.u.list->items[i], jinja_arg(args, 1, "attribute"),
                          arg_bool(args, 0, "case_sensitive", false), &key_last))
                break;
            if (!sort_key(rt, sorted.u.list->items[i - 1], jinja_arg(args, 1, "attribute"),
                          arg_bool(args, 0, "case_sensitive", false), &key_prev)) {
                jv_release(key_last);
                break;
            }
            bool same = jv_equal(key_last, key_prev);
            jv_release(key_last);
            jv_release(key_prev);
            if (!same)
                break;
            i--;
        }
        *out = jv_copy(sorted.u.list->items[i]);
    } else {
        *out = jv_copy(sorted.u.list->items[0]);
    }
    jv_release(sorted);
    return true;
}

static bool filter_min(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return min_max(rt, value, args, false, out);
}

static bool filter_max(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return min_max(rt, value, args, true, out);
}

static bool filter_unique(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"case_sensitive", "attribute", NULL};
    if (!check_args(rt, "unique", args, 2, kw))
        return false;
    const jv *attribute = jinja_arg(args, 1, "attribute");
    bool case_sensitive = arg_bool(args, 0, "case_sensitive", false);
    jv items, seen;
    if (!new_list_from(rt, value, &items))
        return false;
    if (!jv_list_new(rt, 0, false, out) || !jv_list_new(rt, 0, false, &seen)) {
        jv_release(items);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < items.u.list->len; i++) {
        jv key;
        if (!(ok = sort_key(rt, items.u.list->items[i], attribute, case_sensitive, &key)))
            break;
        bool dup = false;
        for (size_t k = 0; k < seen.u.list->len && !dup; k++)
            dup = jv_equal(seen.u.list->items[k], key);
        ok = jinja_rt_step(rt, seen.u.list->len / 8 + 1);
        if (ok && !dup)
            ok = jv_list_push(rt, seen, key) && jv_list_push(rt, *out, jv_copy(items.u.list->items[i]));
        else
            jv_release(key);
    }
    jv_release(items);
    jv_release(seen);
    if (!ok)
        jv_release(*out);
    return ok;
}

static bool filter_sum(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"attribute", "start", NULL};
    if (!check_args(rt, "sum", args, 2, kw))
        return false;
    const jv *attribute = jinja_arg(args, 0, "attribute"), *start = jinja_arg(args, 1, "start");
    jv items, total = start ? jv_copy(*start) : jv_int(0);
    if (!new_list_from(rt, value, &items)) {
        jv_release(total);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < items.u.list->len; i++) {
        jv item = jv_copy(items.u.list->items[i]);
        if (attribute) {
            jv got;
            ok = get_attribute(rt, item, *attribute, &got);
            jv_release(item);
            if (!ok)
                break;
            item = got;
        }
        jv next;
        bool numbers = (total.kind == JV_INT || total.kind == JV_BOOL || total.kind == JV_FLOAT) &&
                       (item.kind == JV_INT || item.kind == JV_BOOL || item.kind == JV_FLOAT);
        if (!numbers) {
            ok = jinja_error(rt, "sum: unsupported operand type(s) for +: '%s' and '%s'", jv_type_name(total),
                             jv_type_name(item));
        } else if (total.kind == JV_FLOAT || item.kind == JV_FLOAT) {
            double a = total.kind == JV_FLOAT ? total.u.f : total.kind == JV_INT ? (double)total.u.i : total.u.b;
            double b = item.kind == JV_FLOAT ? item.u.f : item.kind == JV_INT ? (double)item.u.i : item.u.b;
            next = jv_float(a + b);
        } else {
            int64_t a = total.kind == JV_INT ? total.u.i : total.u.b, b = item.kind == JV_INT ? item.u.i : item.u.b, r;
            if (__builtin_add_overflow(a, b, &r))
                ok = jinja_error(rt, "integer overflow in sum");
            else
                next = jv_int(r);
        }
        jv_release(item);
        if (ok) {
            jv_release(total);
            total = next;
        }
    }
    jv_release(items);
    if (!ok) {
        jv_release(total);
        return false;
    }
    *out = total;
    return true;
}

static bool filter_default(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    static const char *const kw[] = {"default_value", "boolean", NULL};
    if (!check_args(rt, "default", args, 2, kw))
        return false;
    const jv *fallback = jinja_arg(args, 0, "default_value");
    bool boolean = arg_bool(args, 1, "boolean", false);
    if (value.kind == JV_UNDEFINED || (boolean && !jv_truthy(value))) {
        if (fallback)
            *out = jv_copy(*fallback);
        else
            return jv_string(rt, "", 0, out);
        return true;
    }
    *out = jv_copy(value);
    return true;
}

static bool filter_attr(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    const jv *name = jinja_arg(args, 0, NULL);
    if (!check_args(rt, "attr", args, 1, NULL))
        return false;
    if (!name || name->kind != JV_STRING)
        return jinja_error(rt, "attr needs an attribute name");
    if (value.kind == JV_OBJECT) {
        jv *found = jv_dict_get_str(value.u.obj->attrs, name->u.str->data);
        *out = found ? jv_copy(*found) : jv_undefined();
        return true;
    }
    bool failed = false;
    if (value.kind != JV_UNDEFINED && jinja_find_method(rt, value, name->u.str->data, out, &failed))
        return true;
    if (failed)
        return false;
    *out = jv_undefined();
    return true;
}

/* --- select, reject, map ---------------------------------------------------------------- */

/* Applies the test named by args[first] (with the arguments after it) to
 * value; with no test name, truthiness. */
static bool run_named_test(jinja_rt *rt, jv value, const jinja_args *args, size_t first, bool *out)
{
    if (args->n_pos <= first) {
        *out = jv_truthy(value);
        return true;
    }
    const jv *name = &args->pos[first];
    if (name->kind != JV_STRING)
        return jinja_error(rt, "the test name must be a string");
    int test = jinja_find_test(name->u.str->data);
    if (test < 0)
        return jinja_error(rt, test == -2 ? "test '%s' is not supported by strata" : "no test named '%s'",
                           name->u.str->data);
    jinja_args rest = {.pos = args->pos + first + 1, .n_pos = args->n_pos - first - 1, .kw_names = args->kw_names,
                       .kw = args->kw, .n_kw = args->n_kw};
    return jinja_apply_test(rt, test, value, &rest, out);
}

static bool select_impl(jinja_rt *rt, jv value, const jinja_args *args, bool by_attribute, bool keep_when, jv *out)
{
    jv items;
    if (by_attribute && (args->n_pos == 0 || args->pos[0].kind != JV_STRING))
        return jinja_error(rt, "selectattr/rejectattr need an attribute name");
    if (!new_list_from(rt, value, &items))
        return false;
    if (!jv_list_new(rt, 0, false, out)) {
        jv_release(items);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < items.u.list->len; i++) {
        jv item = items.u.list->items[i], subject;
        if (by_attribute) {
            if (!(ok = get_attribute(rt, item, args->pos[0], &subject)))
                break;
        } else {
            subject = jv_copy(item);
        }
        bool result;
        ok = run_named_test(rt, subject, args, by_attribute ? 1 : 0, &result);
        jv_release(subject);
        if (ok && result == keep_when)
            ok = jv_list_push(rt, *out, jv_copy(item));
    }
    jv_release(items);
    if (!ok)
        jv_release(*out);
    return ok;
}

static bool filter_select(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return select_impl(rt, value, args, false, true, out);
}

static bool filter_reject(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return select_impl(rt, value, args, false, false, out);
}

static bool filter_selectattr(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return select_impl(rt, value, args, true, true, out);
}

static bool filter_rejectattr(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    return select_impl(rt, value, args, true, false, out);
}

static bool filter_map(jinja_rt *rt, jv value, const jinja_args *args, jv *out)
{
    const jv *attribute = jinja_kwarg(args, "attribute"), *fallback = jinja_kwarg(args, "default");
    int filter = -1;
    if (!attribute) {
        if (args->n_pos == 0 || args->pos[0].kind != JV_STRING)
            return jinja_error(rt, "map needs a filter name or attribute=");
        filter = jinja_find_filter(args->pos[0].u.str->data);
        if (filter < 0)
            return jinja_error(rt, filter == -2 ? "filter '%s' is not supported by strata" : "no filter named '%s'",
                               args->pos[0].u.str->data);
    }
    jv items;
    if (!new_list_from(rt, value, &items))
        return false;
    if (!jv_list_new(rt, items.u.list->len, false, out)) {
        jv_release(items);
        return false;
    }
    jinja_args rest = {0};
    if (!attribute)
        rest = (jinja_args){.pos = args->pos + 1, .n_pos = args->n_pos - 1, .kw_names = args->kw_names,
                            .kw = args->kw, .n_kw = args->n_kw};
    bool ok = true;
    for (size_t i = 0; ok && i < items.u.list->len; i++) {
        jv mapped;
        if (attribute) {
            ok = get_attribute(rt, items.u.list->items[i], *attribute, &mapped);
            if (ok && mapped.kind == JV_UNDEFINED && fallback)
                mapped = jv_copy(*fallback);
        } else {
            ok = jinja_apply_filter(rt, filter, items.u.list->items[i], &rest, &mapped);
        }
        ok = ok && jv_list_push(rt, *out, mapped);
    }
    jv_release(items);
    if (!ok)
        jv_release(*out);
    return ok;
}

static const filter_spec filters[] = {
    {"abs", filter_abs},
    {"attr", filter_attr},
    {"batch", NULL},
    {"capitalize", filter_capitalize},
    {"center", filter_center},
    {"count", filter_length},
    {"d", filter_default},
    {"default", filter_default},
    {"dictsort", filter_dictsort},
    {"e", filter_escape},
    {"escape", filter_escape},
    {"filesizeformat", NULL},
    {"first", filter_first},
    {"float", filter_float},
    {"forceescape", NULL},
    {"format", NULL},
    {"groupby", NULL},
    {"indent", filter_indent},
    {"int", filter_int},
    {"items", filter_items},
    {"join", filter_join},
    {"last", filter_last},
    {"length", filter_length},
    {"list", filter_list},
    {"lower", filter_lower},
    {"map", filter_map},
    {"max", filter_max},
    {"min", filter_min},
    {"pprint", NULL},
    {"random", NULL},
    {"reject", filter_reject},
    {"rejectattr", filter_rejectattr},
    {"replace", filter_replace},
    {"reverse", filter_reverse},
    {"round", filter_round},
    {"safe", filter_safe},
    {"select", filter_select},
    {"selectattr", filter_selectattr},
    {"slice", NULL},
    {"sort", filter_sort},
    {"string", filter_string},
    {"striptags", NULL},
    {"sum", filter_sum},
    {"title", filter_title},
    {"tojson", filter_tojson},
    {"trim", filter_trim},
    {"truncate", NULL},
    {"unique", filter_unique},
    {"upper", filter_upper},
    {"urlencode", NULL},
    {"urlize", NULL},
    {"wordcount", filter_wordcount},
    {"wordwrap", NULL},
    {"xmlattr", NULL},
};

int jinja_find_filter(const char *name)
{
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (!strcmp(filters[i].name, name))
            return filters[i].fn ? (int)i : -2;
    return -1;
}

bool jinja_apply_filter(jinja_rt *rt, int filter, jv value, const jinja_args *args, jv *out)
{
    return filters[filter].fn(rt, value, args, out);
}

/* --- global functions ------------------------------------------------------------------- */

static bool fn_range(jinja_rt *rt, const jinja_args *args, jv *out)
{
    if (args->n_kw || args->n_pos < 1 || args->n_pos > 3)
        return jinja_error(rt, "range() takes 1 to 3 integer arguments");
    int64_t v[3];
    for (size_t i = 0; i < args->n_pos; i++) {
        const jv *a = &args->pos[i];
        if (a->kind != JV_INT && a->kind != JV_BOOL)
            return jinja_error(rt, "'%s' object cannot be interpreted as an integer", jv_type_name(*a));
        v[i] = a->kind == JV_INT ? a->u.i : a->u.b;
    }
    int64_t start = args->n_pos > 1 ? v[0] : 0, stop = args->n_pos > 1 ? v[1] : v[0], step = args->n_pos > 2 ? v[2] : 1;
    if (step == 0)
        return jinja_error(rt, "range() arg 3 must not be zero");
    /* the count without overflow: the sandbox refuses more than MAX_RANGE */
    double count = step > 0 ? ceil(((double)stop - (double)start) / (double)step)
                            : ceil(((double)start - (double)stop) / (double)-step);
    if (count < 0)
        count = 0;
    if (count > MAX_RANGE)
        return jinja_error(rt, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", MAX_RANGE);
    if (!jinja_rt_step(rt, (uint64_t)count) || !jv_list_new(rt, (size_t)count, false, out))
        return false;
    for (int64_t i = 0; i < (int64_t)count; i++)
        if (!jv_list_push(rt, *out, jv_int(start + i * step))) {
            jv_release(*out);
            return false;
        }
    return true;
}

/* namespace(...) and dict(...): a mapping positional argument, then
 * keyword arguments. */
static bool fill_from_args(jinja_rt *rt, jinja_dict *target, const jinja_args *args, const char *what)
{
    if (args->n_pos > 1)
        return jinja_error(rt, "%s() takes at most one positional argument", what);
    if (args->n_pos == 1) {
        const jv *source = &args->pos[0];
        if (source->kind != JV_DICT)
            return jinja_error(rt, "%s(): the positional argument must be a mapping, not %s", what,
                               jv_type_name(*source));
        for (size_t i = 0; i < source->u.dict->len; i++)
            if (!jv_dict_set(rt, target, jv_copy(source->u.dict->keys[i]), jv_copy(source->u.dict->values[i])))
                return false;
    }
    for (size_t i = 0; i < args->n_kw; i++) {
        jv key;
        if (!jv_cstring(rt, args->kw_names[i], &key) || !jv_dict_set(rt, target, key, jv_copy(args->kw[i])))
            return false;
    }
    return true;
}

static bool fn_namespace(jinja_rt *rt, const jinja_args *args, jv *out)
{
    if (!jv_object_new(rt, JOBJ_NAMESPACE, out))
        return false;
    if (!jinja_rt_track_object(rt, *out) || !fill_from_args(rt, out->u.obj->attrs, args, "namespace")) {
        jv_release(*out);
        return false;
    }
    return true;
}

static bool fn_dict(jinja_rt *rt, const jinja_args *args, jv *out)
{
    if (!jv_dict_new(rt, out))
        return false;
    if (!fill_from_args(rt, out->u.dict, args, "dict")) {
        jv_release(*out);
        return false;
    }
    return true;
}

static bool fn_raise_exception(jinja_rt *rt, const jinja_args *args, jv *out)
{
    (void)out;
    const jv *message = jinja_arg(args, 0, "message");
    jv text;
    if (!message)
        return jinja_rt_raise(rt, "", 0);
    if (!jv_to_string(rt, *message, &text))
        return false;
    jinja_rt_raise(rt, text.u.str->data, text.u.str->len);
    jv_release(text);
    return false;
}

static bool fn_strftime_now(jinja_rt *rt, const jinja_args *args, jv *out)
{
    const jv *format = jinja_arg(args, 0, "format");
    if (!format || format->kind != JV_STRING || args->n_pos > 1)
        return jinja_error(rt, "strftime_now() takes one format string");
    return jinja_strftime(rt, jinja_rt_now(rt), *format, out);
}

typedef struct function_spec {
    const char *name;
    bool (*fn)(jinja_rt *rt, const jinja_args *args, jv *out);
} function_spec;

static const function_spec functions[] = {
    {"range", fn_range},
    {"namespace", fn_namespace},
    {"dict", fn_dict},
    {"raise_exception", fn_raise_exception},
    {"strftime_now", fn_strftime_now},
    {"lipsum", NULL},
    {"cycler", NULL},
    {"joiner", NULL},
};

bool jinja_find_function(const char *name, jv *out)
{
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
        if (!strcmp(functions[i].name, name)) {
            *out = (jv){.kind = JV_FUNCTION, .u.function = (int)i};
            return true;
        }
    return false;
}

bool jinja_call_function(jinja_rt *rt, int function, const jinja_args *args, jv *out)
{
    const function_spec *spec = &functions[function];
    if (!spec->fn)
        return jinja_error(rt, "the global function %s() is not supported by strata", spec->name);
    return spec->fn(rt, args, out);
}
