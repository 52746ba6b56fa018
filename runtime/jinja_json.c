/* JSON in and out of the Jinja interpreter: jansson values become template
 * values (objects keep their key order), and tojson writes what Python's
 * json.dumps writes (Hugging Face's tojson: ensure_ascii off by default,
 * ", " and ": " separators, "," between items once indented). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

static bool dump_string(jinja_buf *buf, const char *s, size_t len, bool ensure_ascii)
{
    if (!jinja_buf_addc(buf, '"'))
        return false;
    size_t run = 0; /* bytes copied as they are, flushed before an escape */
    for (size_t pos = 0; pos < len;) {
        size_t start = pos;
        uint32_t cp = jinja_utf8_next(s, len, &pos);
        const char *escape = NULL;
        char hex[16];
        switch (cp) {
        case '"': escape = "\\\""; break;
        case '\\': escape = "\\\\"; break;
        case '\n': escape = "\\n"; break;
        case '\r': escape = "\\r"; break;
        case '\t': escape = "\\t"; break;
        case '\b': escape = "\\b"; break;
        case '\f': escape = "\\f"; break;
        default:
            if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
                if (cp >= 0x10000) {
                    uint32_t v = cp - 0x10000;
                    snprintf(hex, sizeof hex, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
                } else {
                    snprintf(hex, sizeof hex, "\\u%04x", cp);
                }
                escape = hex;
            }
            break;
        }
        if (!escape) {
            run += pos - start;
            continue;
        }
        if ((run && !jinja_buf_add(buf, s + start - run, run)) || !jinja_buf_add(buf, escape, strlen(escape)))
            return false;
        run = 0;
    }
    if (run && !jinja_buf_add(buf, s + len - run, run))
        return false;
    return jinja_buf_addc(buf, '"');
}

static bool newline_indent(jinja_buf *buf, const jinja_json_style *style, int level)
{
    if (!jinja_buf_addc(buf, '\n'))
        return false;
    for (int i = 0; i < style->indent * level; i++)
        if (!jinja_buf_addc(buf, ' '))
            return false;
    return true;
}

/* A dict key as json.dumps writes it: strings as they are, numbers, bools
 * and none converted. */
static bool dump_key(jinja_buf *buf, jv key, const jinja_json_style *style)
{
    char number[40];
    switch (key.kind) {
    case JV_STRING: return dump_string(buf, key.u.str->data, key.u.str->len, style->ensure_ascii);
    case JV_INT: snprintf(number, sizeof number, "\"%lld\"", (long long)key.u.i); break;
    case JV_BOOL: snprintf(number, sizeof number, "\"%s\"", key.u.b ? "true" : "false"); break;
    case JV_NONE: snprintf(number, sizeof number, "\"null\""); break;
    case JV_FLOAT: {
        char f[32];
        jinja_format_float(key.u.f, f);
        snprintf(number, sizeof number, "\"%s\"", !strcmp(f, "nan") ? "NaN" : !strcmp(f, "inf") ? "Infinity"
                                                  : !strcmp(f, "-inf") ? "-Infinity" : f);
        break;
    }
    default:
        return jinja_error(buf->rt, "keys must be str, int, float, bool or None, not %s", jv_type_name(key));
    }
    return jinja_buf_add(buf, number, strlen(number));
}

/* Order of dict entries under sort_keys: by key, all keys of one type. */
static bool sorted_order(jinja_buf *buf, const jinja_dict *dict, size_t *order)
{
    for (size_t i = 0; i < dict->len; i++)
        order[i] = i;
    for (size_t i = 1; i < dict->len; i++) {
        size_t current = order[i], j = i;
        while (j > 0) {
            int cmp;
            if (!jv_compare(buf->rt, dict->keys[order[j - 1]], dict->keys[current], "<", &cmp))
                return false;
            if (cmp <= 0)
                break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = current;
    }
    return true;
}

bool jinja_json_dump(jinja_buf *buf, jv value, const jinja_json_style *style, int level)
{
    const char *item_sep = style->item_sep ? style->item_sep : style->indent >= 0 ? "," : ", ";
    const char *key_sep = style->key_sep ? style->key_sep : ": ";
    char number[40];
    switch (value.kind) {
    case JV_NONE: return jinja_buf_add(buf, "null", 4);
    case JV_BOOL: return value.u.b ? jinja_buf_add(buf, "true", 4) : jinja_buf_add(buf, "false", 5);
    case JV_INT: return jinja_buf_addf(buf, "%lld", (long long)value.u.i);
    case JV_FLOAT:
        jinja_format_float(value.u.f, number);
        if (!strcmp(number, "nan"))
            return jinja_buf_add(buf, "NaN", 3);
        if (!strcmp(number, "inf"))
            return jinja_buf_add(buf, "Infinity", 8);
        if (!strcmp(number, "-inf"))
            return jinja_buf_add(buf, "-Infinity", 9);
        return jinja_buf_add(buf, number, strlen(number));
    case JV_STRING: return dump_string(buf, value.u.str->data, value.u.str->len, style->ensure_ascii);
    case JV_LIST: {
        const jinja_list *list = value.u.list;
        if (list->len == 0)
            return jinja_buf_add(buf, "[]", 2);
        if (!jinja_buf_addc(buf, '['))
            return false;
        for (size_t i = 0; i < list->len; i++) {
            if (i && !jinja_buf_add(buf, item_sep, strlen(item_sep)))
                return false;
            if (style->indent >= 0 && !newline_indent(buf, style, level + 1))
                return false;
            if (!jinja_json_dump(buf, list->items[i], style, level + 1))
                return false;
        }
        if (style->indent >= 0 && !newline_indent(buf, style, level))
            return false;
        return jinja_buf_addc(buf, ']');
    }
    case JV_DICT: {
        const jinja_dict *dict = value.u.dict;
        if (dict->len == 0)
            return jinja_buf_add(buf, "{}", 2);
        size_t *order = NULL;
        if (style->sort_keys) {
            order = jinja_alloc(buf->rt, dict->len * sizeof *order);
            if (!order || !sorted_order(buf, dict, order)) {
                free(order);
                return false;
            }
        }
        bool ok = jinja_buf_addc(buf, '{');
        for (size_t k = 0; ok && k < dict->len; k++) {
            size_t i = order ? order[k] : k;
            if (k)
                ok = jinja_buf_add(buf, item_sep, strlen(item_sep));
            if (ok && style->indent >= 0)
                ok = newline_indent(buf, style, level + 1);
            ok = ok && dump_key(buf, dict->keys[i], style) && jinja_buf_add(buf, key_sep, strlen(key_sep)) &&
                 jinja_json_dump(buf, dict->values[i], style, level + 1);
        }
        free(order);
        if (ok && style->indent >= 0)
            ok = newline_indent(buf, style, level);
        return ok && jinja_buf_addc(buf, '}');
    }
    default:
        return jinja_error(buf->rt, "Object of type %s is not JSON serializable", jv_type_name(value));
    }
}

bool jinja_from_json(jinja_rt *rt, const struct json_t *json, jv *out)
{
    switch (json_typeof(json)) {
    case JSON_NULL: *out = jv_none(); return true;
    case JSON_TRUE: *out = jv_bool(true); return true;
    case JSON_FALSE: *out = jv_bool(false); return true;
    case JSON_INTEGER: *out = jv_int((int64_t)json_integer_value(json)); return true;
    case JSON_REAL: *out = jv_float(json_real_value(json)); return true;
    case JSON_STRING: {
        const char *text = json_string_value(json);
        size_t len = json_string_length(json);
        if (memchr(text, '\0', len))
            return jinja_error(rt, "a JSON string holds a NUL character");
        return jv_string(rt, text, len, out);
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(json);
        if (!jv_list_new(rt, n, false, out))
            return false;
        for (size_t i = 0; i < n; i++) {
            jv item;
            if (!jinja_from_json(rt, json_array_get(json, i), &item) || !jv_list_push(rt, *out, item)) {
                jv_release(*out);
                return false;
            }
        }
        return true;
    }
    case JSON_OBJECT: {
        if (!jv_dict_new(rt, out))
            return false;
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)json, key, member) {
            jv k, v;
            if (!jv_cstring(rt, key, &k))
                goto fail;
            if (!jinja_from_json(rt, member, &v)) {
                jv_release(k);
                goto fail;
            }
            if (!jv_dict_set(rt, out->u.dict, k, v))
                goto fail;
        }
        return true;
    fail:
        jv_release(*out);
        return false;
    }
    }
    return jinja_error(rt, "unknown JSON value type");
}
