/* Methods templates call on values: Python's str, dict and list methods
 * (those chat templates use; the rest of Python's names are known, so that
 * calling one is an error naming it instead of a silent dict lookup), the
 * loop's cycle(), and strftime. Methods that would modify a list or dict
 * are refused, as in jinja2's immutable sandbox. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_syntax.h"

typedef bool (*method_fn)(jinja_rt *rt, jv self, const jinja_args *args, jv *out);

typedef struct method_spec {
    jinja_kind receiver;   /* JV_STRING, JV_DICT, JV_LIST or JV_OBJECT (the loop) */
    const char *name;
    method_fn fn;          /* NULL: Python has it, strata does not */
    bool mutates;          /* refused: templates may not modify values */
} method_spec;

/* --- argument helpers --------------------------------------------------------- */

static bool no_more_args(jinja_rt *rt, const char *method, const jinja_args *args, size_t max_pos)
{
    if (args->n_pos > max_pos)
        return jinja_error(rt, "%s() takes at most %zu argument(s) (%zu given)", method, max_pos, args->n_pos);
    if (args->n_kw)
        return jinja_error(rt, "%s() takes no keyword argument '%s'", method, args->kw_names[0]);
    return true;
}

static bool need_string(jinja_rt *rt, const char *method, const jv *value)
{
    if (!value || value->kind != JV_STRING)
        return jinja_error(rt, "%s() needs a string argument, not %s", method, value ? jv_type_name(*value) : "nothing");
    return true;
}

/* An optional integer argument (none counts as absent). */
static bool opt_int(jinja_rt *rt, const char *method, const jv *value, int64_t fallback, int64_t *out)
{
    if (!value || value->kind == JV_NONE) {
        *out = fallback;
        return true;
    }
    if (value->kind == JV_INT || value->kind == JV_BOOL) {
        *out = value->kind == JV_INT ? value->u.i : value->u.b;
        return true;
    }
    return jinja_error(rt, "%s() needs an integer argument, not %s", method, jv_type_name(*value));
}

/* --- string helpers ------------------------------------------------------------- */

/* Whether the character at s[pos] is one of chars (a string). */
static bool in_chars(jv chars, uint32_t cp)
{
    const jinja_string *set = chars.u.str;
    for (size_t pos = 0; pos < set->len;)
        if (jinja_utf8_next(set->data, set->len, &pos) == cp)
            return true;
    return false;
}

bool jinja_str_strip(jinja_rt *rt, jv str, const jv *chars, jinja_strip_side side, jv *out)
{
    bool by_set = chars && chars->kind == JV_STRING;
    if (chars && !by_set && chars->kind != JV_NONE && chars->kind != JV_UNDEFINED)
        return jinja_error(rt, "strip arg must be None or str, not %s", jv_type_name(*chars));
    /* each character is looked up in the set: charge the product */
    uint64_t set_len = by_set ? chars->u.str->len : 1;
    if (!jinja_rt_step(rt, (uint64_t)str.u.str->len / 4096 * set_len + set_len / 4096))
        return false;
    const char *s = str.u.str->data;
    size_t len = str.u.str->len, start = 0, end = len;
    if (side != JSTRIP_RIGHT)
        while (start < len) {
            size_t next = start;
            uint32_t cp = jinja_utf8_next(s, len, &next);
            if (by_set ? !in_chars(*chars, cp) : !jinja_is_space(cp))
                break;
            start = next;
        }
    if (side != JSTRIP_LEFT)
        while (end > start) {
            size_t begin = end - 1;
            while (begin > start && ((unsigned char)s[begin] & 0xC0) == 0x80)
                begin--;
            size_t at = begin;
            uint32_t cp = jinja_utf8_next(s, len, &at);
            if (by_set ? !in_chars(*chars, cp) : !jinja_is_space(cp))
                break;
            end = begin;
        }
    if (start == 0 && end == len) {
        *out = jv_copy(str);
        return true;
    }
    return jv_string(rt, s + start, end - start, out);
}

static bool is_cased(uint32_t cp)
{
    return jinja_to_upper(cp) != cp || jinja_to_lower(cp) != cp;
}

bool jinja_str_case(jinja_rt *rt, jv str, jinja_case mode, jv *out)
{
    const char *s = str.u.str->data;
    size_t len = str.u.str->len;
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    bool first = true, ok = true;
    for (size_t pos = 0; ok && pos < len;) {
        uint32_t cp = jinja_utf8_next(s, len, &pos);
        bool upper;
        switch (mode) {
        case JCASE_UPPER: upper = true; break;
        case JCASE_LOWER: upper = false; break;
        case JCASE_CAPITALIZE: upper = first; break;
        default:
            /* jinja's title filter: words start after '-', whitespace, '(', '{', '[' or '<' */
            upper = first;
            break;
        }
        if (upper && cp == 0xDF) /* sharp s */
            ok = jinja_buf_add(&buf, "SS", 2);
        else
            ok = jinja_buf_add_cp(&buf, upper ? jinja_to_upper(cp) : jinja_to_lower(cp));
        if (mode == JCASE_TITLE_WORDS)
            first = jinja_is_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        else
            first = false;
    }
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

/* Python's str.title(): a cased letter after an uncased character starts a word. */
static bool str_title(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    if (!no_more_args(rt, "str.title", args, 0))
        return false;
    const char *s = self.u.str->data;
    size_t len = self.u.str->len;
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    bool previous_cased = false, ok = true;
    for (size_t pos = 0; ok && pos < len;) {
        uint32_t cp = jinja_utf8_next(s, len, &pos);
        ok = jinja_buf_add_cp(&buf, previous_cased ? jinja_to_lower(cp) : jinja_to_upper(cp));
        previous_cased = is_cased(cp);
    }
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

static int64_t char_index(const jinja_string *str, int64_t byte_offset)
{
    if (byte_offset < 0 || str->ascii)
        return byte_offset;
    int64_t chars = 0;
    for (int64_t i = 0; i < byte_offset; i++)
        chars += ((unsigned char)str->data[i] & 0xC0) != 0x80;
    return chars;
}

bool jinja_str_replace(jinja_rt *rt, jv str, jv old, jv new_text, int64_t count, jv *out)
{
    const jinja_string *s = str.u.str, *o = old.u.str, *n = new_text.u.str;
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    bool ok = jinja_rt_step(rt, s->len / 4096);
    if (ok && o->len == 0) {
        /* Python inserts new before every character and at the end */
        int64_t done = 0;
        for (size_t pos = 0; ok && pos <= s->len;) {
            if (count < 0 || done < count) {
                ok = jinja_buf_add(&buf, n->data, n->len);
                done++;
            }
            if (pos == s->len)
                break;
            size_t start = pos;
            jinja_utf8_next(s->data, s->len, &pos);
            ok = ok && jinja_buf_add(&buf, s->data + start, pos - start);
        }
    } else if (ok) {
        size_t pos = 0;
        int64_t done = 0;
        while (ok) {
            int64_t at = (count >= 0 && done >= count) ? -1 : jinja_find(s->data, s->len, o->data, o->len, pos);
            if (at < 0) {
                ok = jinja_buf_add(&buf, s->data + pos, s->len - pos);
                break;
            }
            ok = jinja_buf_add(&buf, s->data + pos, (size_t)at - pos) && jinja_buf_add(&buf, n->data, n->len) &&
                 jinja_rt_step(rt, 1);
            pos = (size_t)at + o->len;
            done++;
        }
    }
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

/* --- str methods ------------------------------------------------------------------- */

static bool str_upper(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return no_more_args(rt, "str.upper", args, 0) && jinja_str_case(rt, self, JCASE_UPPER, out);
}

static bool str_lower(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return no_more_args(rt, "str.lower", args, 0) && jinja_str_case(rt, self, JCASE_LOWER, out);
}

static bool str_capitalize(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return no_more_args(rt, "str.capitalize", args, 0) && jinja_str_case(rt, self, JCASE_CAPITALIZE, out);
}

static bool strip_method(jinja_rt *rt, jv self, const jinja_args *args, jinja_strip_side side, jv *out)
{
    return no_more_args(rt, "str.strip", args, 1) && jinja_str_strip(rt, self, jinja_arg(args, 0, NULL), side, out);
}

static bool str_strip(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return strip_method(rt, self, args, JSTRIP_BOTH, out);
}

static bool str_lstrip(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return strip_method(rt, self, args, JSTRIP_LEFT, out);
}

static bool str_rstrip(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return strip_method(rt, self, args, JSTRIP_RIGHT, out);
}

static bool push_piece(jinja_rt *rt, jv list, const char *data, size_t len)
{
    jv piece;
    return jv_string(rt, data, len, &piece) && jv_list_push(rt, list, piece);
}

/* split / rsplit with Python's rules: no separator splits on runs of
 * whitespace and drops empty pieces; maxsplit < 0 means no limit. */
static bool split_impl(jinja_rt *rt, jv self, const jinja_args *args, bool from_right, jv *out)
{
    const char *method = from_right ? "str.rsplit" : "str.split";
    const jv *sep = jinja_arg(args, 0, "sep");
    int64_t maxsplit = 0;
    if (args->n_pos > 2 || !opt_int(rt, method, jinja_arg(args, 1, "maxsplit"), -1, &maxsplit))
        return args->n_pos > 2 ? no_more_args(rt, method, args, 2) : false;
    if (sep && sep->kind != JV_NONE && sep->kind != JV_STRING)
        return jinja_error(rt, "%s() separator must be str or None, not %s", method, jv_type_name(*sep));
    if (sep && sep->kind == JV_STRING && sep->u.str->len == 0)
        return jinja_error(rt, "empty separator");
    const char *s = self.u.str->data;
    size_t len = self.u.str->len;
    jv list;
    if (!jv_list_new(rt, 0, false, &list))
        return false;
    bool ok = true;
    int64_t splits = 0;
    if (sep && sep->kind == JV_STRING) {
        const char *needle = sep->u.str->data;
        size_t nlen = sep->u.str->len;
        if (!from_right) {
            size_t pos = 0;
            while (ok) {
                int64_t at = (maxsplit >= 0 && splits >= maxsplit) ? -1 : jinja_find(s, len, needle, nlen, pos);
                if (at < 0) {
                    ok = push_piece(rt, list, s + pos, len - pos);
                    break;
                }
                ok = push_piece(rt, list, s + pos, (size_t)at - pos);
                pos = (size_t)at + nlen;
                splits++;
            }
        } else {
            /* collect from the right, then reverse */
            size_t end = len;
            while (ok) {
                int64_t at = (maxsplit >= 0 && splits >= maxsplit) ? -1 : jinja_rfind(s, end, needle, nlen);
                if (at < 0) {
                    ok = push_piece(rt, list, s, end);
                    break;
                }
                ok = push_piece(rt, list, s + at + nlen, end - (size_t)at - nlen);
                end = (size_t)at;
                splits++;
            }
        }
    } else {
        /* whitespace runs */
        if (!from_right) {
            size_t pos = 0;
            while (ok) {
                while (pos < len) {
                    size_t next = pos;
                    if (!jinja_is_space(jinja_utf8_next(s, len, &next)))
                        break;
                    pos = next;
                }
                if (pos >= len)
                    break;
                size_t start = pos;
                if (maxsplit >= 0 && splits >= maxsplit) {
                    size_t end = len;
                    ok = push_piece(rt, list, s + start, end - start);
                    /* Python keeps the tail's trailing whitespace only when it is not stripped: it is */
                    break;
                }
                while (pos < len) {
                    size_t next = pos;
                    if (jinja_is_space(jinja_utf8_next(s, len, &next)))
                        break;
                    pos = next;
                }
                ok = push_piece(rt, list, s + start, pos - start);
                splits++;
            }
        } else {
            size_t end = len;
            while (ok) {
                while (end > 0) {
                    size_t begin = end - 1;
                    while (begin > 0 && ((unsigned char)s[begin] & 0xC0) == 0x80)
                        begin--;
                    size_t at = begin;
                    if (!jinja_is_space(jinja_utf8_next(s, len, &at)))
                        break;
                    end = begin;
                }
                if (end == 0)
                    break;
                if (maxsplit >= 0 && splits >= maxsplit) {
                    ok = push_piece(rt, list, s, end);
                    break;
                }
                size_t start = end;
                while (start > 0) {
                    size_t begin = start - 1;
                    while (begin > 0 && ((unsigned char)s[begin] & 0xC0) == 0x80)
                        begin--;
                    size_t at = begin;
                    if (jinja_is_space(jinja_utf8_next(s, len, &at)))
                        break;
                    start = begin;
                }
                ok = push_piece(rt, list, s + start, end - start);
                end = start;
                splits++;
            }
        }
    }
    if (ok && from_right) {
        jinja_list *l = list.u.list;
        for (size_t i = 0; i < l->len / 2; i++) {
            jv t = l->items[i];
            l->items[i] = l->items[l->len - 1 - i];
            l->items[l->len - 1 - i] = t;
        }
    }
    if (!ok) {
        jv_release(list);
        return false;
    }
    *out = list;
    return jinja_rt_step(rt, list.u.list->len);
}

static bool str_split(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return split_impl(rt, self, args, false, out);
}

static bool str_rsplit(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return split_impl(rt, self, args, true, out);
}

/* Python's line boundaries: \n \r \r\n \v \f \x1c \x1d \x1e \x85 \u2028 \u2029. */
static size_t line_break_at(const char *s, size_t len, size_t pos, bool *is_break)
{
    size_t next = pos;
    uint32_t cp = jinja_utf8_next(s, len, &next);
    *is_break = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || (cp >= 0x1C && cp <= 0x1E) || cp == 0x85 ||
                cp == 0x2028 || cp == 0x2029;
    if (cp == '\r' && next < len && s[next] == '\n')
        next++;
    return next;
}

bool jinja_str_splitlines(jinja_rt *rt, jv self, bool keepends, jv *out);

bool jinja_str_splitlines(jinja_rt *rt, jv self, bool keepends, jv *out)
{
    const char *s = self.u.str->data;
    size_t len = self.u.str->len;
    if (!jv_list_new(rt, 0, false, out))
        return false;
    size_t start = 0;
    for (size_t pos = 0; pos < len;) {
        bool is_break;
        size_t next = line_break_at(s, len, pos, &is_break);
        if (is_break) {
            if (!push_piece(rt, *out, s + start, (keepends ? next : pos) - start)) {
                jv_release(*out);
                return false;
            }
            start = next;
        }
        pos = next;
    }
    if (start < len && !push_piece(rt, *out, s + start, len - start)) {
        jv_release(*out);
        return false;
    }
    return true;
}

static bool str_splitlines(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    const jv *keep = jinja_arg(args, 0, "keepends");
    return no_more_args(rt, "str.splitlines", args, 1) && jinja_str_splitlines(rt, self, keep && jv_truthy(*keep), out);
}

static bool affix_impl(jinja_rt *rt, jv self, const jinja_args *args, bool suffix, jv *out)
{
    const char *method = suffix ? "str.endswith" : "str.startswith";
    if (!no_more_args(rt, method, args, 1))
        return false;
    const jv *arg = jinja_arg(args, 0, NULL);
    if (!arg)
        return jinja_error(rt, "%s() takes at least 1 argument (0 given)", method);
    const jinja_string *s = self.u.str;
    size_t n_options = arg->kind == JV_LIST && arg->u.list->is_tuple ? arg->u.list->len : 1;
    for (size_t i = 0; i < n_options; i++) {
        const jv *option = arg->kind == JV_LIST ? &arg->u.list->items[i] : arg;
        if (option->kind != JV_STRING)
            return jinja_error(rt, "%s first arg must be str or a tuple of str, not %s", method,
                               jv_type_name(*option));
        const jinja_string *o = option->u.str;
        if (o->len <= s->len && memcmp(s->data + (suffix ? s->len - o->len : 0), o->data, o->len) == 0) {
            *out = jv_bool(true);
            return true;
        }
    }
    *out = jv_bool(false);
    return true;
}

static bool str_startswith(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return affix_impl(rt, self, args, false, out);
}

static bool str_endswith(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return affix_impl(rt, self, args, true, out);
}

static bool str_replace(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    const jv *old = jinja_arg(args, 0, NULL), *new_text = jinja_arg(args, 1, NULL);
    int64_t count = 0;
    if (!no_more_args(rt, "str.replace", args, 3) || !need_string(rt, "str.replace", old) ||
        !need_string(rt, "str.replace", new_text) || !opt_int(rt, "str.replace", jinja_arg(args, 2, "count"), -1, &count))
        return false;
    return jinja_str_replace(rt, self, *old, *new_text, count, out);
}

static bool find_impl(jinja_rt *rt, jv self, const jinja_args *args, const char *method, bool from_right,
                      bool must_find, jv *out)
{
    const jv *sub = jinja_arg(args, 0, NULL);
    if (!no_more_args(rt, method, args, 1) || !need_string(rt, method, sub))
        return false;
    if (!jinja_rt_step(rt, self.u.str->len / 4096))
        return false;
    int64_t at = from_right ? jinja_rfind(self.u.str->data, self.u.str->len, sub->u.str->data, sub->u.str->len)
                            : jinja_find(self.u.str->data, self.u.str->len, sub->u.str->data, sub->u.str->len, 0);
    if (at < 0 && must_find)
        return jinja_error(rt, "substring not found");
    *out = jv_int(char_index(self.u.str, at));
    return true;
}

static bool str_find(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return find_impl(rt, self, args, "str.find", false, false, out);
}

static bool str_rfind(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return find_impl(rt, self, args, "str.rfind", true, false, out);
}

static bool str_index(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return find_impl(rt, self, args, "str.index", false, true, out);
}

static bool str_rindex(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return find_impl(rt, self, args, "str.rindex", true, true, out);
}

static bool str_count(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    const jv *sub = jinja_arg(args, 0, NULL);
    if (!no_more_args(rt, "str.count", args, 1) || !need_string(rt, "str.count", sub))
        return false;
    const jinja_string *s = self.u.str, *n = sub->u.str;
    int64_t count = 0;
    if (!jinja_rt_step(rt, s->len / 4096))
        return false;
    if (n->len == 0)
        count = (int64_t)s->n_chars + 1;
    else
        for (int64_t at = 0; (at = jinja_find(s->data, s->len, n->data, n->len, (size_t)at)) >= 0; at += (int64_t)n->len)
            count++;
    *out = jv_int(count);
    return true;
}

static bool str_join(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    const jv *iterable = jinja_arg(args, 0, NULL);
    if (!no_more_args(rt, "str.join", args, 1))
        return false;
    if (!iterable)
        return jinja_error(rt, "str.join() takes exactly one argument (0 given)");
    jv items;
    if (!jv_iterate(rt, *iterable, &items))
        return false;
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    bool ok = true;
    for (size_t i = 0; ok && i < items.u.list->len; i++) {
        jv item = items.u.list->items[i];
        if (item.kind != JV_STRING) {
            ok = jinja_error(rt, "sequence item %zu: expected str instance, %s found", i, jv_type_name(item));
            break;
        }
        ok = (i == 0 || jinja_buf_add(&buf, self.u.str->data, self.u.str->len)) &&
             jinja_buf_add(&buf, item.u.str->data, item.u.str->len);
    }
    jv_release(items);
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

typedef enum char_class { CC_DIGIT, CC_ALPHA, CC_ALNUM, CC_SPACE, CC_ASCII } char_class;

static bool class_holds(char_class cls, uint32_t cp)
{
    bool digit = cp >= '0' && cp <= '9';
    bool alpha = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= 0x80 && is_cased(cp));
    switch (cls) {
    case CC_DIGIT: return digit;
    case CC_ALPHA: return alpha;
    case CC_ALNUM: return alpha || digit;
    case CC_SPACE: return jinja_is_space(cp);
    default: return cp < 0x80;
    }
}

static bool is_class(jinja_rt *rt, jv self, const jinja_args *args, char_class cls, jv *out)
{
    if (!no_more_args(rt, "str.is...", args, 0))
        return false;
    const jinja_string *s = self.u.str;
    bool all = s->len > 0 || cls == CC_ASCII;
    if (!jinja_rt_step(rt, s->len / 4096))
        return false;
    for (size_t pos = 0; all && pos < s->len;)
        all = class_holds(cls, jinja_utf8_next(s->data, s->len, &pos));
    *out = jv_bool(all);
    return true;
}

static bool str_isdigit(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return is_class(rt, self, args, CC_DIGIT, out);
}

static bool str_isalpha(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return is_class(rt, self, args, CC_ALPHA, out);
}

static bool str_isalnum(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return is_class(rt, self, args, CC_ALNUM, out);
}

static bool str_isspace(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return is_class(rt, self, args, CC_SPACE, out);
}

static bool str_isascii(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return is_class(rt, self, args, CC_ASCII, out);
}

static bool case_test(jinja_rt *rt, jv self, const jinja_args *args, bool upper, jv *out)
{
    if (!no_more_args(rt, upper ? "str.isupper" : "str.islower", args, 0))
        return false;
    const jinja_string *s = self.u.str;
    bool any_cased = false, ok = true;
    for (size_t pos = 0; ok && pos < s->len;) {
        uint32_t cp = jinja_utf8_next(s->data, s->len, &pos);
        if (!is_cased(cp))
            continue;
        any_cased = true;
        ok = upper ? jinja_to_lower(cp) != cp : jinja_to_upper(cp) != cp;
    }
    *out = jv_bool(ok && any_cased);
    return true;
}

static bool str_isupper(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return case_test(rt, self, args, true, out);
}

static bool str_islower(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return case_test(rt, self, args, false, out);
}

static bool remove_affix(jinja_rt *rt, jv self, const jinja_args *args, bool suffix, jv *out)
{
    const char *method = suffix ? "str.removesuffix" : "str.removeprefix";
    const jv *affix = jinja_arg(args, 0, NULL);
    if (!no_more_args(rt, method, args, 1) || !need_string(rt, method, affix))
        return false;
    const jinja_string *s = self.u.str, *a = affix->u.str;
    if (a->len && a->len <= s->len && memcmp(s->data + (suffix ? s->len - a->len : 0), a->data, a->len) == 0)
        return jv_string(rt, s->data + (suffix ? 0 : a->len), s->len - a->len, out);
    *out = jv_copy(self);
    return true;
}

static bool str_removeprefix(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return remove_affix(rt, self, args, false, out);
}

static bool str_removesuffix(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return remove_affix(rt, self, args, true, out);
}

static bool partition_impl(jinja_rt *rt, jv self, const jinja_args *args, bool from_right, jv *out)
{
    const char *method = from_right ? "str.rpartition" : "str.partition";
    const jv *sep = jinja_arg(args, 0, NULL);
    if (!no_more_args(rt, method, args, 1) || !need_string(rt, method, sep))
        return false;
    if (sep->u.str->len == 0)
        return jinja_error(rt, "empty separator");
    const jinja_string *s = self.u.str;
    int64_t at = from_right ? jinja_rfind(s->data, s->len, sep->u.str->data, sep->u.str->len)
                            : jinja_find(s->data, s->len, sep->u.str->data, sep->u.str->len, 0);
    if (!jv_list_new(rt, 3, true, out))
        return false;
    bool ok;
    if (at < 0)
        ok = from_right ? push_piece(rt, *out, "", 0) && push_piece(rt, *out, "", 0) &&
                              push_piece(rt, *out, s->data, s->len)
                        : push_piece(rt, *out, s->data, s->len) && push_piece(rt, *out, "", 0) &&
                              push_piece(rt, *out, "", 0);
    else
        ok = push_piece(rt, *out, s->data, (size_t)at) && jv_list_push(rt, *out, jv_copy(*sep)) &&
             push_piece(rt, *out, s->data + at + sep->u.str->len, s->len - (size_t)at - sep->u.str->len);
    if (!ok)
        jv_release(*out);
    return ok;
}

static bool str_partition(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return partition_impl(rt, self, args, false, out);
}

static bool str_rpartition(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return partition_impl(rt, self, args, true, out);
}

/* center / ljust / rjust / zfill: pad to width characters. */
static bool pad_impl(jinja_rt *rt, jv self, const jinja_args *args, int align, bool zeros, jv *out)
{
    int64_t width = 0;
    const jv *fill_arg = zeros ? NULL : jinja_arg(args, 1, NULL);
    if (!no_more_args(rt, "str padding", args, zeros ? 1 : 2) ||
        !opt_int(rt, "str padding", jinja_arg(args, 0, NULL), 0, &width))
        return false;
    const char *fill = " ";
    size_t fill_len = 1;
    if (fill_arg) {
        if (fill_arg->kind != JV_STRING || fill_arg->u.str->n_chars != 1)
            return jinja_error(rt, "the fill character must be exactly one character long");
        fill = fill_arg->u.str->data;
        fill_len = fill_arg->u.str->len;
    }
    if (zeros)
        fill = "0";
    const jinja_string *s = self.u.str;
    int64_t missing = width - (int64_t)s->n_chars;
    if (missing <= 0) {
        *out = jv_copy(self);
        return true;
    }
    if ((uint64_t)missing > (64u << 20))
        return jinja_error(rt, "padding wider than the limit");
    int64_t left = align < 0 ? 0 : align > 0 ? missing : missing / 2 + (missing & width & 1);
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    bool ok = true;
    size_t body = 0;
    if (zeros && s->len && (s->data[0] == '-' || s->data[0] == '+')) {
        ok = jinja_buf_addc(&buf, s->data[0]);
        body = 1;
    }
    for (int64_t i = 0; ok && i < left; i++)
        ok = jinja_buf_add(&buf, fill, fill_len);
    ok = ok && jinja_buf_add(&buf, s->data + body, s->len - body);
    for (int64_t i = left; ok && i < missing; i++)
        ok = jinja_buf_add(&buf, fill, fill_len);
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

static bool str_center(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return pad_impl(rt, self, args, 0, false, out);
}

static bool str_ljust(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return pad_impl(rt, self, args, -1, false, out);
}

static bool str_rjust(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return pad_impl(rt, self, args, 1, false, out);
}

static bool str_zfill(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return pad_impl(rt, self, args, 1, true, out);
}

/* str.format with {}, {0}, {name}, {{ and }}, and the !s / !r conversions;
 * format specs (after ':') are not supported. */
static bool str_format(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    const jinja_string *s = self.u.str;
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    size_t auto_index = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < s->len; i++) {
        char c = s->data[i];
        if ((c == '{' || c == '}') && i + 1 < s->len && s->data[i + 1] == c) {
            ok = jinja_buf_addc(&buf, c);
            i++;
            continue;
        }
        if (c == '}') {
            ok = jinja_error(rt, "Single '}' encountered in format string");
            break;
        }
        if (c != '{') {
            ok = jinja_buf_addc(&buf, c);
            continue;
        }
        size_t end = i + 1;
        while (end < s->len && s->data[end] != '}')
            end++;
        if (end >= s->len) {
            ok = jinja_error(rt, "Single '{' encountered in format string");
            break;
        }
        const char *field = s->data + i + 1;
        size_t field_len = end - i - 1;
        char conversion = 's';
        const char *bang = memchr(field, '!', field_len);
        if (memchr(field, ':', field_len) || memchr(field, '.', field_len) || memchr(field, '[', field_len)) {
            ok = jinja_error(rt, "str.format(): format specs, attributes and indexes in fields are not supported");
            break;
        }
        if (bang) {
            conversion = bang + 1 < field + field_len ? bang[1] : 0;
            field_len = (size_t)(bang - field);
            if (conversion != 's' && conversion != 'r') {
                ok = jinja_error(rt, "str.format(): unsupported conversion");
                break;
            }
        }
        const jv *value = NULL;
        if (field_len == 0) {
            value = auto_index < args->n_pos ? &args->pos[auto_index] : NULL;
            auto_index++;
        } else if (field[0] >= '0' && field[0] <= '9') {
            size_t index = 0;
            for (size_t k = 0; k < field_len && index < 1000000; k++)
                index = index * 10 + (size_t)(field[k] - '0');
            value = index < args->n_pos ? &args->pos[index] : NULL;
        } else {
            for (size_t k = 0; k < args->n_kw && !value; k++)
                if (strlen(args->kw_names[k]) == field_len && !memcmp(args->kw_names[k], field, field_len))
                    value = &args->kw[k];
        }
        if (!value) {
            ok = jinja_error(rt, "str.format(): no argument for field {%.*s}", (int)(field_len > 40 ? 40 : field_len),
                             field);
            break;
        }
        ok = conversion == 'r' ? jv_append_repr(&buf, *value) : jv_append_str(&buf, *value);
        i = end;
    }
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

/* --- dict, list and loop methods ------------------------------------------------ */

static bool dict_get(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    const jv *key = jinja_arg(args, 0, NULL), *fallback = jinja_arg(args, 1, NULL);
    if (!no_more_args(rt, "dict.get", args, 2))
        return false;
    if (!key)
        return jinja_error(rt, "dict.get() takes at least 1 argument (0 given)");
    jv *found = jv_dict_get(self.u.dict, *key);
    *out = found ? jv_copy(*found) : fallback ? jv_copy(*fallback) : jv_none();
    return true;
}

/* keys (0), values (1) or items (2) as a new list. */
static bool dict_view(jinja_rt *rt, jv self, const jinja_args *args, int which, jv *out)
{
    if (!no_more_args(rt, which == 0 ? "dict.keys" : which == 1 ? "dict.values" : "dict.items", args, 0))
        return false;
    const jinja_dict *dict = self.u.dict;
    if (!jv_list_new(rt, dict->len, false, out))
        return false;
    for (size_t i = 0; i < dict->len; i++) {
        jv item;
        if (which == 2) {
            if (!jv_list_new(rt, 2, true, &item))
                goto fail;
            if (!jv_list_push(rt, item, jv_copy(dict->keys[i])) || !jv_list_push(rt, item, jv_copy(dict->values[i]))) {
                jv_release(item);
                goto fail;
            }
        } else {
            item = jv_copy(which == 0 ? dict->keys[i] : dict->values[i]);
        }
        if (!jv_list_push(rt, *out, item))
            goto fail;
    }
    return jinja_rt_step(rt, dict->len);
fail:
    jv_release(*out);
    return false;
}

static bool dict_keys(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return dict_view(rt, self, args, 0, out);
}

static bool dict_values(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return dict_view(rt, self, args, 1, out);
}

static bool dict_items(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return dict_view(rt, self, args, 2, out);
}

static bool dict_copy(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    if (!no_more_args(rt, "dict.copy", args, 0) || !jv_dict_new(rt, out))
        return false;
    for (size_t i = 0; i < self.u.dict->len; i++)
        if (!jv_dict_set(rt, out->u.dict, jv_copy(self.u.dict->keys[i]), jv_copy(self.u.dict->values[i]))) {
            jv_release(*out);
            return false;
        }
    return true;
}

static bool list_copy(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    return no_more_args(rt, "list.copy", args, 0) && jv_iterate(rt, self, out);
}

static bool list_count(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    const jv *item = jinja_arg(args, 0, NULL);
    if (!no_more_args(rt, "list.count", args, 1))
        return false;
    if (!item)
        return jinja_error(rt, "count() takes exactly one argument (0 given)");
    int64_t n = 0;
    for (size_t i = 0; i < self.u.list->len; i++)
        n += jv_equal(self.u.list->items[i], *item);
    *out = jv_int(n);
    return true;
}

static bool list_index(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    const jv *item = jinja_arg(args, 0, NULL);
    if (!no_more_args(rt, "list.index", args, 1))
        return false;
    if (!item)
        return jinja_error(rt, "index() takes at least 1 argument (0 given)");
    for (size_t i = 0; i < self.u.list->len; i++)
        if (jv_equal(self.u.list->items[i], *item)) {
            *out = jv_int((int64_t)i);
            return true;
        }
    return jinja_error(rt, "list.index(x): x not in list");
}

static bool loop_cycle(jinja_rt *rt, jv self, const jinja_args *args, jv *out)
{
    if (args->n_kw)
        return jinja_error(rt, "loop.cycle() takes no keyword arguments");
    if (args->n_pos == 0)
        return jinja_error(rt, "no items for cycling given");
    jv *index0 = jv_dict_get_str(self.u.obj->attrs, "index0");
    int64_t i = index0 && index0->kind == JV_INT ? index0->u.i : 0;
    *out = jv_copy(args->pos[(size_t)i % args->n_pos]);
    return true;
}

static const method_spec methods[] = {
    {JV_STRING, "capitalize", str_capitalize, false},
    {JV_STRING, "casefold", str_lower, false},
    {JV_STRING, "center", str_center, false},
    {JV_STRING, "count", str_count, false},
    {JV_STRING, "encode", NULL, false},
    {JV_STRING, "endswith", str_endswith, false},
    {JV_STRING, "expandtabs", NULL, false},
    {JV_STRING, "find", str_find, false},
    {JV_STRING, "format", str_format, false},
    {JV_STRING, "format_map", NULL, false},
    {JV_STRING, "index", str_index, false},
    {JV_STRING, "isalnum", str_isalnum, false},
    {JV_STRING, "isalpha", str_isalpha, false},
    {JV_STRING, "isascii", str_isascii, false},
    {JV_STRING, "isdecimal", str_isdigit, false},
    {JV_STRING, "isdigit", str_isdigit, false},
    {JV_STRING, "isidentifier", NULL, false},
    {JV_STRING, "islower", str_islower, false},
    {JV_STRING, "isnumeric", str_isdigit, false},
    {JV_STRING, "isprintable", NULL, false},
    {JV_STRING, "isspace", str_isspace, false},
    {JV_STRING, "istitle", NULL, false},
    {JV_STRING, "isupper", str_isupper, false},
    {JV_STRING, "join", str_join, false},
    {JV_STRING, "ljust", str_ljust, false},
    {JV_STRING, "lower", str_lower, false},
    {JV_STRING, "lstrip", str_lstrip, false},
    {JV_STRING, "maketrans", NULL, false},
    {JV_STRING, "partition", str_partition, false},
    {JV_STRING, "removeprefix", str_removeprefix, false},
    {JV_STRING, "removesuffix", str_removesuffix, false},
    {JV_STRING, "replace", str_replace, false},
    {JV_STRING, "rfind", str_rfind, false},
    {JV_STRING, "rindex", str_rindex, false},
    {JV_STRING, "rjust", str_rjust, false},
    {JV_STRING, "rpartition", str_rpartition, false},
    {JV_STRING, "rsplit", str_rsplit, false},
    {JV_STRING, "rstrip", str_rstrip, false},
    {JV_STRING, "split", str_split, false},
    {JV_STRING, "splitlines", str_splitlines, false},
    {JV_STRING, "startswith", str_startswith, false},
    {JV_STRING, "strip", str_strip, false},
    {JV_STRING, "swapcase", NULL, false},
    {JV_STRING, "title", str_title, false},
    {JV_STRING, "translate", NULL, false},
    {JV_STRING, "upper", str_upper, false},
    {JV_STRING, "zfill", str_zfill, false},
    {JV_DICT, "clear", NULL, true},
    {JV_DICT, "copy", dict_copy, false},
    {JV_DICT, "fromkeys", NULL, false},
    {JV_DICT, "get", dict_get, false},
    {JV_DICT, "items", dict_items, false},
    {JV_DICT, "keys", dict_keys, false},
    {JV_DICT, "pop", NULL, true},
    {JV_DICT, "popitem", NULL, true},
    {JV_DICT, "setdefault", NULL, true},
    {JV_DICT, "update", NULL, true},
    {JV_DICT, "values", dict_values, false},
    {JV_LIST, "append", NULL, true},
    {JV_LIST, "clear", NULL, true},
    {JV_LIST, "copy", list_copy, false},
    {JV_LIST, "count", list_count, false},
    {JV_LIST, "extend", NULL, true},
    {JV_LIST, "index", list_index, false},
    {JV_LIST, "insert", NULL, true},
    {JV_LIST, "pop", NULL, true},
    {JV_LIST, "remove", NULL, true},
    {JV_LIST, "reverse", NULL, true},
    {JV_LIST, "sort", NULL, true},
    {JV_OBJECT, "cycle", loop_cycle, false},
};

bool jinja_find_method(jinja_rt *rt, jv receiver, const char *name, jv *out, bool *failed)
{
    *failed = false;
    jinja_kind kind = receiver.kind;
    if (kind == JV_OBJECT && receiver.u.obj->cls != JOBJ_LOOP)
        return false;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        const method_spec *spec = &methods[i];
        if (spec->receiver != kind || strcmp(spec->name, name) != 0)
            continue;
        if (kind == JV_LIST && receiver.u.list->is_tuple && strcmp(name, "count") && strcmp(name, "index"))
            return false; /* tuples have only count and index */
        jinja_method *method = jinja_alloc(rt, sizeof *method);
        if (!method) {
            *failed = true;
            return false;
        }
        method->hdr.refs = 1;
        method->receiver = jv_copy(receiver);
        method->method = (int)i;
        *out = (jv){.kind = JV_METHOD, .u.method = method};
        return true;
    }
    return false;
}

bool jinja_call_method(jinja_rt *rt, const jinja_method *method, const jinja_args *args, jv *out)
{
    const method_spec *spec = &methods[method->method];
    const char *type = jv_type_name(method->receiver);
    if (spec->mutates)
        return jinja_error(rt, "%s.%s() would modify a %s, which templates may not do (immutable sandbox)", type,
                           spec->name, type);
    if (!spec->fn)
        return jinja_error(rt, "%s.%s() is not supported by strata", type, spec->name);
    return spec->fn(rt, method->receiver, args, out);
}

/* --- strftime --------------------------------------------------------------------- */

static const char *const month_names[] = {"January", "February", "March",     "April",   "May",      "June",
                                          "July",    "August",   "September", "October", "November", "December"};
static const char *const day_names[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

/* 0 = Monday. */
static int weekday(int year, int month, int day)
{
    static const int offsets[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (month < 3)
        year--;
    int sunday_based = (year + year / 4 - year / 100 + year / 400 + offsets[month - 1] + day) % 7;
    return (sunday_based + 6) % 7;
}

static int day_of_year(int year, int month, int day)
{
    static const int before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return before[month - 1] + day + (leap && month > 2);
}

bool jinja_strftime(jinja_rt *rt, const jinja_time *t, jv format, jv *out)
{
    const jinja_string *f = format.u.str;
    jinja_buf buf;
    jinja_buf_init(&buf, rt, 1u << 20);
    bool ok = true;
    int month = t->month >= 1 && t->month <= 12 ? t->month : 1;
    int wday = weekday(t->year, month, t->day);
    for (size_t i = 0; ok && i < f->len; i++) {
        if (f->data[i] != '%' || i + 1 >= f->len) {
            ok = jinja_buf_addc(&buf, f->data[i]);
            continue;
        }
        char d = f->data[++i];
        bool no_pad = false;
        if (d == '-' && i + 1 < f->len) { /* glibc's %-d: no padding */
            no_pad = true;
            d = f->data[++i];
        }
        const char *pad2 = no_pad ? "%d" : "%02d";
        switch (d) {
        case 'Y': ok = jinja_buf_addf(&buf, "%d", t->year); break;
        case 'y': ok = jinja_buf_addf(&buf, pad2, t->year % 100); break;
        case 'm': ok = jinja_buf_addf(&buf, pad2, month); break;
        case 'd': ok = jinja_buf_addf(&buf, pad2, t->day); break;
        case 'e': ok = jinja_buf_addf(&buf, no_pad ? "%d" : "%2d", t->day); break;
        case 'H': ok = jinja_buf_addf(&buf, pad2, t->hour); break;
        case 'I': ok = jinja_buf_addf(&buf, pad2, t->hour % 12 ? t->hour % 12 : 12); break;
        case 'M': ok = jinja_buf_addf(&buf, pad2, t->minute); break;
        case 'S': ok = jinja_buf_addf(&buf, pad2, t->second); break;
        case 'p': ok = jinja_buf_add(&buf, t->hour < 12 ? "AM" : "PM", 2); break;
        case 'B': ok = jinja_buf_addf(&buf, "%s", month_names[month - 1]); break;
        case 'b':
        case 'h': ok = jinja_buf_addf(&buf, "%.3s", month_names[month - 1]); break;
        case 'A': ok = jinja_buf_addf(&buf, "%s", day_names[wday]); break;
        case 'a': ok = jinja_buf_addf(&buf, "%.3s", day_names[wday]); break;
        case 'j': ok = jinja_buf_addf(&buf, no_pad ? "%d" : "%03d", day_of_year(t->year, month, t->day)); break;
        case 'u': ok = jinja_buf_addf(&buf, "%d", wday + 1); break;
        case 'w': ok = jinja_buf_addf(&buf, "%d", (wday + 1) % 7); break;
        case 'F': ok = jinja_buf_addf(&buf, "%d-%02d-%02d", t->year, month, t->day); break;
        case '%': ok = jinja_buf_addc(&buf, '%'); break;
        default:
            ok = jinja_error(rt, "strftime_now(): the directive %%%c is not supported", d);
            break;
        }
    }
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}
