/* Values of the Jinja interpreter: reference counting, strings, lists,
 * dicts, and the Python semantics templates rely on (truthiness, ==, <,
 * str() and repr()). See jinja.h. */
#define _GNU_SOURCE /* memmem: a linear-time substring search (glibc, musl, the BSDs) */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

/* Dicts get a hash index from this many entries on. */
#define JINJA_DICT_INDEX_MIN 16

/* --- reference counting ----------------------------------------------------- */

static jinja_heap *heap_of(jv value)
{
    switch (value.kind) {
    case JV_STRING: return &value.u.str->hdr;
    case JV_LIST: return &value.u.list->hdr;
    case JV_DICT: return &value.u.dict->hdr;
    case JV_OBJECT: return &value.u.obj->hdr;
    case JV_MACRO: return &value.u.macro->hdr;
    case JV_METHOD: return &value.u.method->hdr;
    default: return NULL;
    }
}

void jv_retain(jv value)
{
    jinja_heap *heap = heap_of(value);
    if (heap && heap->refs >= 0)
        heap->refs++;
}

jv jv_copy(jv value)
{
    jv_retain(value);
    return value;
}

static void dict_free_contents(jinja_dict *dict)
{
    for (size_t i = 0; i < dict->len; i++) {
        jv_release(dict->keys[i]);
        jv_release(dict->values[i]);
    }
    free(dict->keys);
    free(dict->values);
    free(dict->index);
}

static void free_heap_value(jv value)
{
    switch (value.kind) {
    case JV_STRING: free(value.u.str); break;
    case JV_LIST:
        for (size_t i = 0; i < value.u.list->len; i++)
            jv_release(value.u.list->items[i]);
        free(value.u.list->items);
        free(value.u.list);
        break;
    case JV_DICT:
        dict_free_contents(value.u.dict);
        free(value.u.dict);
        break;
    case JV_OBJECT:
        if (value.u.obj->attrs) {
            dict_free_contents(value.u.obj->attrs);
            free(value.u.obj->attrs);
        }
        free(value.u.obj);
        break;
    case JV_MACRO:
        jinja_frame_release(value.u.macro->closure);
        free(value.u.macro);
        break;
    case JV_METHOD:
        jv_release(value.u.method->receiver);
        free(value.u.method);
        break;
    default: break;
    }
}

void jv_release(jv value)
{
    jinja_heap *heap = heap_of(value);
    if (!heap || heap->refs < 0)
        return;
    if (--heap->refs == 0)
        free_heap_value(value);
}

void jv_make_immortal(jv value)
{
    jinja_heap *heap = heap_of(value);
    if (!heap)
        return;
    heap->refs = -1;
    if (value.kind == JV_LIST)
        for (size_t i = 0; i < value.u.list->len; i++)
            jv_make_immortal(value.u.list->items[i]);
    if (value.kind == JV_DICT)
        for (size_t i = 0; i < value.u.dict->len; i++) {
            jv_make_immortal(value.u.dict->keys[i]);
            jv_make_immortal(value.u.dict->values[i]);
        }
}

void jv_free_immortal(jv value)
{
    jinja_heap *heap = heap_of(value);
    if (!heap)
        return;
    if (value.kind == JV_LIST) {
        for (size_t i = 0; i < value.u.list->len; i++)
            jv_free_immortal(value.u.list->items[i]);
        value.u.list->len = 0;
    }
    if (value.kind == JV_DICT) {
        for (size_t i = 0; i < value.u.dict->len; i++) {
            jv_free_immortal(value.u.dict->keys[i]);
            jv_free_immortal(value.u.dict->values[i]);
        }
        value.u.dict->len = 0;
    }
    heap->refs = 1;
    jv_release(value);
}

/* --- UTF-8 ------------------------------------------------------------------ */

uint32_t jinja_utf8_next(const char *s, size_t len, size_t *pos)
{
    const unsigned char *p = (const unsigned char *)s + *pos;
    size_t left = len - *pos;
    uint32_t c = p[0];
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n > left)
        n = left; /* never past the end, whatever the bytes */
    if (n == 2)
        c = ((c & 0x1F) << 6) | (p[1] & 0x3F);
    else if (n == 3)
        c = ((c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    else if (n == 4)
        c = ((c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    *pos += n;
    return c;
}

bool jinja_utf8_valid(const char *s, size_t len, size_t *bad_offset)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t need = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                    : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        bool ok = need > 0 && need <= len - i;
        for (size_t k = 1; ok && k < need; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && need >= 3)
            ok = !((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F) ||
                   (c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F));
        if (!ok) {
            if (bad_offset)
                *bad_offset = i;
            return false;
        }
        i += need;
    }
    return true;
}

size_t jinja_char_offset(const jinja_string *str, size_t index)
{
    if (str->ascii)
        return index;
    size_t pos = 0;
    for (size_t i = 0; i < index && pos < str->len; i++)
        jinja_utf8_next(str->data, str->len, &pos);
    return pos;
}

bool jinja_is_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* Pairs where the upper case is even and the lower case odd (or the
 * reverse) inside a block of Latin Extended-A and Cyrillic. */
static bool in_even_upper_block(uint32_t cp)
{
    return (cp >= 0x100 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177) || (cp >= 0x460 && cp <= 0x481) ||
           (cp >= 0x48A && cp <= 0x4BF) || (cp >= 0x4D0 && cp <= 0x52F);
}

static bool in_odd_upper_block(uint32_t cp)
{
    return (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E) || (cp >= 0x4C1 && cp <= 0x4CE);
}

uint32_t jinja_to_upper(uint32_t cp)
{
    if (cp >= 'a' && cp <= 'z')
        return cp - 32;
    if (cp < 0x80)
        return cp;
    if ((cp >= 0xE0 && cp <= 0xFE && cp != 0xF7) || (cp >= 0x3B1 && cp <= 0x3CB && cp != 0x3C2) ||
        (cp >= 0x430 && cp <= 0x44F))
        return cp - 32;
    if (cp == 0xFF)
        return 0x178;
    if (cp == 0xB5)
        return 0x39C;
    if (cp == 0x131)
        return 'I';
    if (cp == 0x3C2)
        return 0x3A3;
    if (cp >= 0x450 && cp <= 0x45F)
        return cp - 80;
    if (cp == 0x3AC)
        return 0x386;
    if (cp >= 0x3AD && cp <= 0x3AF)
        return cp - 37;
    if (cp == 0x3CC)
        return 0x38C;
    if (cp == 0x3CD || cp == 0x3CE)
        return cp - 63;
    if (in_even_upper_block(cp) && (cp & 1))
        return cp - 1;
    if (in_odd_upper_block(cp) && !(cp & 1))
        return cp - 1;
    return cp;
}

uint32_t jinja_to_lower(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp < 0x80)
        return cp;
    if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) ||
        (cp >= 0x410 && cp <= 0x42F))
        return cp + 32;
    if (cp == 0x178)
        return 0xFF;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 80;
    if (cp == 0x386)
        return 0x3AC;
    if (cp >= 0x388 && cp <= 0x38A)
        return cp + 37;
    if (cp == 0x38C)
        return 0x3CC;
    if (cp == 0x38E || cp == 0x38F)
        return cp + 63;
    if (in_even_upper_block(cp) && !(cp & 1))
        return cp + 1;
    if (in_odd_upper_block(cp) && (cp & 1))
        return cp + 1;
    return cp;
}

int64_t jinja_find(const char *hay, size_t hay_len, const char *needle, size_t needle_len, size_t from)
{
    if (from > hay_len)
        return -1;
    if (needle_len == 0)
        return (int64_t)from;
    const char *at = memmem(hay + from, hay_len - from, needle, needle_len);
    return at ? (int64_t)(at - hay) : -1;
}

int64_t jinja_rfind(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
    if (needle_len > hay_len)
        return -1;
    if (needle_len == 0)
        return (int64_t)hay_len;
    /* the first match in the reversed strings is the last one: linear time */
    char *rhay = malloc(hay_len), *rneedle = malloc(needle_len);
    int64_t found = -1;
    if (rhay && rneedle) {
        for (size_t i = 0; i < hay_len; i++)
            rhay[i] = hay[hay_len - 1 - i];
        for (size_t i = 0; i < needle_len; i++)
            rneedle[i] = needle[needle_len - 1 - i];
        const char *at = memmem(rhay, hay_len, rneedle, needle_len);
        if (at)
            found = (int64_t)(hay_len - (size_t)(at - rhay) - needle_len);
    } else {
        for (size_t i = hay_len - needle_len + 1; i-- > 0 && found < 0;)
            if (memcmp(hay + i, needle, needle_len) == 0)
                found = (int64_t)i;
    }
    free(rhay);
    free(rneedle);
    return found;
}

/* --- buffers and strings ---------------------------------------------------- */

void jinja_buf_init(jinja_buf *buf, jinja_rt *rt, size_t limit)
{
    *buf = (jinja_buf){.rt = rt, .limit = limit};
}

bool jinja_buf_add(jinja_buf *buf, const char *data, size_t len)
{
    if (len > buf->limit || buf->len > buf->limit - len)
        return jinja_error(buf->rt, "text longer than the limit of %zu bytes", buf->limit);
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 64;
        while (cap < buf->len + len + 1)
            cap *= 2;
        char *grown = jinja_realloc(buf->rt, buf->data, buf->cap, cap);
        if (!grown)
            return false;
        buf->data = grown;
        buf->cap = cap;
    }
    if (len)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return true;
}

bool jinja_buf_addc(jinja_buf *buf, char c)
{
    return jinja_buf_add(buf, &c, 1);
}

bool jinja_buf_addf(jinja_buf *buf, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return jinja_error(buf->rt, "formatting failed");
    if ((size_t)n < sizeof small)
        return jinja_buf_add(buf, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return jinja_error(buf->rt, "out of memory");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bool ok = jinja_buf_add(buf, big, (size_t)n);
    free(big);
    return ok;
}

bool jinja_buf_add_cp(jinja_buf *buf, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return jinja_buf_add(buf, out, n);
}

bool jv_string(jinja_rt *rt, const char *data, size_t len, jv *out)
{
    if (len > SIZE_MAX - sizeof(jinja_string) - 1)
        return jinja_error(rt, "string too long");
    jinja_string *str = jinja_alloc(rt, sizeof *str + len + 1);
    if (!str)
        return false;
    str->hdr.refs = 1;
    str->len = len;
    if (len)
        memcpy(str->data, data, len);
    str->data[len] = '\0';
    size_t chars = 0;
    bool ascii = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c >= 0x80)
            ascii = false;
        if ((c & 0xC0) != 0x80)
            chars++;
    }
    str->ascii = ascii;
    str->n_chars = chars;
    *out = (jv){.kind = JV_STRING, .u.str = str};
    return true;
}

bool jinja_buf_to_string(jinja_buf *buf, jv *out)
{
    bool ok = jv_string(buf->rt, buf->data ? buf->data : "", buf->len, out);
    jinja_buf_free(buf);
    return ok;
}

void jinja_buf_free(jinja_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

/* --- lists, dicts, objects ---------------------------------------------------- */

bool jv_list_new(jinja_rt *rt, size_t capacity, bool is_tuple, jv *out)
{
    jinja_list *list = jinja_alloc(rt, sizeof *list);
    if (!list)
        return false;
    *list = (jinja_list){.hdr.refs = 1, .is_tuple = is_tuple, .depth = 1};
    if (capacity) {
        if (capacity > SIZE_MAX / sizeof(jv) || !(list->items = jinja_alloc(rt, capacity * sizeof(jv)))) {
            free(list);
            return capacity > SIZE_MAX / sizeof(jv) ? jinja_error(rt, "list too long") : false;
        }
        list->cap = capacity;
    }
    *out = (jv){.kind = JV_LIST, .u.list = list};
    return true;
}

bool jv_list_push(jinja_rt *rt, jv list_value, jv item)
{
    jinja_list *list = list_value.u.list;
    if (jv_depth(item) + 1 > JINJA_MAX_NESTING) {
        jv_release(item);
        return jinja_error(rt, "values nested more than %d deep", JINJA_MAX_NESTING);
    }
    if (list->len == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 4;
        jv *grown = jinja_realloc(rt, list->items, list->cap * sizeof(jv), cap * sizeof(jv));
        if (!grown) {
            jv_release(item);
            return false;
        }
        list->items = grown;
        list->cap = cap;
    }
    list->items[list->len++] = item;
    if (jv_depth(item) + 1 > list->depth)
        list->depth = (uint16_t)(jv_depth(item) + 1);
    return true;
}

bool jv_dict_new(jinja_rt *rt, jv *out)
{
    jinja_dict *dict = jinja_alloc(rt, sizeof *dict);
    if (!dict)
        return false;
    *dict = (jinja_dict){.hdr.refs = 1, .depth = 1};
    *out = (jv){.kind = JV_DICT, .u.dict = dict};
    return true;
}

bool jv_object_new(jinja_rt *rt, jinja_object_class cls, jv *out)
{
    jinja_object *obj = jinja_alloc(rt, sizeof *obj);
    if (!obj)
        return false;
    *obj = (jinja_object){.hdr.refs = 1, .cls = cls};
    obj->attrs = jinja_alloc(rt, sizeof *obj->attrs);
    if (!obj->attrs) {
        free(obj);
        return false;
    }
    *obj->attrs = (jinja_dict){.hdr.refs = 1, .depth = 1};
    *out = (jv){.kind = JV_OBJECT, .u.obj = obj};
    return true;
}

static uint64_t hash_bytes(const char *data, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)data[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_int(int64_t i)
{
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

/* Consistent with jv_equal: 1, 1.0 and true hash alike. */
static uint64_t hash_key(jv key)
{
    switch (key.kind) {
    case JV_STRING: return hash_bytes(key.u.str->data, key.u.str->len);
    case JV_INT: return hash_int(key.u.i);
    case JV_BOOL: return hash_int(key.u.b);
    case JV_FLOAT:
        if (key.u.f == floor(key.u.f) && fabs(key.u.f) < 9.2e18)
            return hash_int((int64_t)key.u.f);
        return hash_bytes((const char *)&key.u.f, sizeof key.u.f);
    default: return 0x5bd1e995u;
    }
}

static bool hashable(jv key)
{
    return key.kind == JV_STRING || key.kind == JV_INT || key.kind == JV_BOOL || key.kind == JV_FLOAT ||
           key.kind == JV_NONE;
}

static void index_insert(jinja_dict *dict, size_t position)
{
    size_t mask = dict->index_cap - 1;
    size_t slot = (size_t)hash_key(dict->keys[position]) & mask;
    while (dict->index[slot])
        slot = (slot + 1) & mask;
    dict->index[slot] = (uint32_t)position + 1;
}

static bool index_rebuild(jinja_rt *rt, jinja_dict *dict, size_t cap)
{
    uint32_t *index = jinja_alloc(rt, cap * sizeof *index);
    if (!index)
        return false;
    memset(index, 0, cap * sizeof *index);
    free(dict->index);
    dict->index = index;
    dict->index_cap = cap;
    for (size_t i = 0; i < dict->len; i++)
        index_insert(dict, i);
    return true;
}

static jv *dict_find(const jinja_dict *dict, jv key, size_t *position)
{
    if (dict->index) {
        size_t mask = dict->index_cap - 1;
        for (size_t slot = (size_t)hash_key(key) & mask; dict->index[slot]; slot = (slot + 1) & mask) {
            size_t i = dict->index[slot] - 1;
            if (jv_equal(dict->keys[i], key)) {
                if (position)
                    *position = i;
                return &dict->values[i];
            }
        }
        return NULL;
    }
    for (size_t i = 0; i < dict->len; i++)
        if (jv_equal(dict->keys[i], key)) {
            if (position)
                *position = i;
            return &dict->values[i];
        }
    return NULL;
}

jv *jv_dict_get(const jinja_dict *dict, jv key)
{
    if (!hashable(key))
        return NULL;
    return dict_find(dict, key, NULL);
}

jv *jv_dict_get_str(const jinja_dict *dict, const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < dict->len && !dict->index; i++)
        if (dict->keys[i].kind == JV_STRING && dict->keys[i].u.str->len == len &&
            memcmp(dict->keys[i].u.str->data, key, len) == 0)
            return &dict->values[i];
    if (!dict->index)
        return NULL;
    size_t mask = dict->index_cap - 1;
    for (size_t slot = (size_t)hash_bytes(key, len) & mask; dict->index[slot]; slot = (slot + 1) & mask) {
        size_t i = dict->index[slot] - 1;
        if (dict->keys[i].kind == JV_STRING && dict->keys[i].u.str->len == len &&
            memcmp(dict->keys[i].u.str->data, key, len) == 0)
            return &dict->values[i];
    }
    return NULL;
}

bool jv_dict_set(jinja_rt *rt, jinja_dict *dict, jv key, jv value)
{
    if (!hashable(key)) {
        jinja_error(rt, "unhashable type: '%s' (a dict key must be a string, number, boolean or none)",
                    jv_type_name(key));
        goto fail;
    }
    if (jv_depth(value) + 1 > JINJA_MAX_NESTING) {
        jinja_error(rt, "values nested more than %d deep", JINJA_MAX_NESTING);
        goto fail;
    }
    if (jv_depth(value) + 1 > dict->depth)
        dict->depth = (uint16_t)(jv_depth(value) + 1);
    jv *existing = dict_find(dict, key, NULL);
    if (existing) {
        jv_release(*existing);
        *existing = value;
        jv_release(key);
        return true;
    }
    if (dict->len == dict->cap) {
        size_t cap = dict->cap ? dict->cap * 2 : 4;
        if (cap > UINT32_MAX - 1) {
            jinja_error(rt, "dict too large");
            goto fail;
        }
        jv *keys = jinja_realloc(rt, dict->keys, dict->cap * sizeof(jv), cap * sizeof(jv));
        if (!keys)
            goto fail;
        dict->keys = keys;
        jv *values = jinja_realloc(rt, dict->values, dict->cap * sizeof(jv), cap * sizeof(jv));
        if (!values)
            goto fail;
        dict->values = values;
        dict->cap = cap;
    }
    dict->keys[dict->len] = key;
    dict->values[dict->len] = value;
    dict->len++;
    if (dict->len >= JINJA_DICT_INDEX_MIN) {
        if (dict->len * 2 > dict->index_cap) {
            size_t cap = 64;
            while (cap < dict->len * 4)
                cap *= 2;
            if (!index_rebuild(rt, dict, cap)) {
                dict->len--; /* the entry stays owned by the caller's cleanup below */
                goto fail;
            }
        } else {
            index_insert(dict, dict->len - 1);
        }
    }
    return true;
fail:
    jv_release(key);
    jv_release(value);
    return false;
}

/* --- Python semantics ----------------------------------------------------------- */

const char *jv_type_name(jv value)
{
    switch (value.kind) {
    case JV_UNDEFINED: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STRING: return "str";
    case JV_LIST: return value.u.list->is_tuple ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_OBJECT: return value.u.obj->cls == JOBJ_NAMESPACE ? "Namespace" : "LoopContext";
    case JV_MACRO: return "Macro";
    case JV_FUNCTION: return "function";
    case JV_METHOD: return "builtin_function_or_method";
    }
    return "object";
}

bool jv_truthy(jv value)
{
    switch (value.kind) {
    case JV_UNDEFINED:
    case JV_NONE: return false;
    case JV_BOOL: return value.u.b;
    case JV_INT: return value.u.i != 0;
    case JV_FLOAT: return value.u.f != 0.0;
    case JV_STRING: return value.u.str->len > 0;
    case JV_LIST: return value.u.list->len > 0;
    case JV_DICT: return value.u.dict->len > 0;
    default: return true;
    }
}

static bool is_number(jv value)
{
    return value.kind == JV_INT || value.kind == JV_FLOAT || value.kind == JV_BOOL;
}

static double as_double(jv value)
{
    return value.kind == JV_FLOAT ? value.u.f : value.kind == JV_INT ? (double)value.u.i : (double)value.u.b;
}

static int64_t as_int(jv value)
{
    return value.kind == JV_INT ? value.u.i : (int64_t)value.u.b;
}

bool jv_equal(jv a, jv b)
{
    if (is_number(a) && is_number(b)) {
        if (a.kind == JV_FLOAT || b.kind == JV_FLOAT)
            return as_double(a) == as_double(b);
        return as_int(a) == as_int(b);
    }
    if (a.kind != b.kind)
        return false;
    switch (a.kind) {
    case JV_UNDEFINED:
    case JV_NONE: return true;
    case JV_STRING:
        return a.u.str == b.u.str ||
               (a.u.str->len == b.u.str->len && memcmp(a.u.str->data, b.u.str->data, a.u.str->len) == 0);
    case JV_LIST:
        if (a.u.list->is_tuple != b.u.list->is_tuple || a.u.list->len != b.u.list->len)
            return false;
        for (size_t i = 0; i < a.u.list->len; i++)
            if (!jv_equal(a.u.list->items[i], b.u.list->items[i]))
                return false;
        return true;
    case JV_DICT:
        if (a.u.dict->len != b.u.dict->len)
            return false;
        for (size_t i = 0; i < a.u.dict->len; i++) {
            jv *other = jv_dict_get(b.u.dict, a.u.dict->keys[i]);
            if (!other || !jv_equal(a.u.dict->values[i], *other))
                return false;
        }
        return true;
    case JV_OBJECT: return a.u.obj == b.u.obj;
    case JV_MACRO: return a.u.macro == b.u.macro;
    case JV_FUNCTION: return a.u.function == b.u.function;
    case JV_METHOD:
        return a.u.method->method == b.u.method->method && jv_equal(a.u.method->receiver, b.u.method->receiver);
    default: return false;
    }
}

bool jv_compare(jinja_rt *rt, jv a, jv b, const char *op, int *result)
{
    if (is_number(a) && is_number(b)) {
        if (a.kind == JV_FLOAT || b.kind == JV_FLOAT) {
            double x = as_double(a), y = as_double(b);
            if (isnan(x) || isnan(y)) { /* every ordering of NaN is false */
                *result = 2;
                return true;
            }
            *result = x < y ? -1 : x > y ? 1 : 0;
        } else {
            int64_t x = as_int(a), y = as_int(b);
            *result = x < y ? -1 : x > y ? 1 : 0;
        }
        return true;
    }
    if (a.kind == JV_STRING && b.kind == JV_STRING) {
        /* UTF-8 byte order is code point order */
        size_t n = a.u.str->len < b.u.str->len ? a.u.str->len : b.u.str->len;
        int c = memcmp(a.u.str->data, b.u.str->data, n);
        *result = c < 0 ? -1 : c > 0 ? 1 : a.u.str->len < b.u.str->len ? -1 : a.u.str->len > b.u.str->len ? 1 : 0;
        return true;
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST && a.u.list->is_tuple == b.u.list->is_tuple) {
        size_t n = a.u.list->len < b.u.list->len ? a.u.list->len : b.u.list->len;
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(a.u.list->items[i], b.u.list->items[i]))
                continue;
            return jv_compare(rt, a.u.list->items[i], b.u.list->items[i], op, result);
        }
        *result = a.u.list->len < b.u.list->len ? -1 : a.u.list->len > b.u.list->len ? 1 : 0;
        return true;
    }
    return jinja_error(rt, "'%s' not supported between instances of '%s' and '%s'", op, jv_type_name(a),
                       jv_type_name(b));
}

void jinja_format_float(double value, char *buf)
{
    if (isnan(value)) {
        strcpy(buf, "nan");
        return;
    }
    if (isinf(value)) {
        strcpy(buf, value < 0 ? "-inf" : "inf");
        return;
    }
    /* the shortest digits that read back as the same double, as repr() */
    char sci[40];
    int precision;
    for (precision = 1; precision <= 17; precision++) {
        snprintf(sci, sizeof sci, "%.*e", precision - 1, value);
        if (strtod(sci, NULL) == value)
            break;
    }
    /* sci: [-]d[.ddd]e[+-]xx -> the digits and the exponent */
    const char *p = sci;
    bool negative = *p == '-';
    if (negative)
        p++;
    char digits[24];
    int n_digits = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[n_digits++] = *p;
    int exponent = atoi(p + 1);
    while (n_digits > 1 && digits[n_digits - 1] == '0')
        n_digits--;
    char *out = buf;
    if (negative)
        *out++ = '-';
    if (exponent >= -5 + 1 && exponent < 16) {
        if (exponent < 0) {
            *out++ = '0';
            *out++ = '.';
            for (int i = -1; i > exponent; i--)
                *out++ = '0';
            for (int i = 0; i < n_digits; i++)
                *out++ = digits[i];
        } else {
            for (int i = 0; i <= exponent; i++)
                *out++ = i < n_digits ? digits[i] : '0';
            *out++ = '.';
            if (n_digits > exponent + 1)
                for (int i = exponent + 1; i < n_digits; i++)
                    *out++ = digits[i];
            else
                *out++ = '0';
        }
        *out = '\0';
        return;
    }
    *out++ = digits[0];
    if (n_digits > 1) {
        *out++ = '.';
        for (int i = 1; i < n_digits; i++)
            *out++ = digits[i];
    }
    sprintf(out, "e%c%02d", exponent < 0 ? '-' : '+', exponent < 0 ? -exponent : exponent);
}

/* Whether Python's str.isprintable() holds for cp (the characters repr()
 * shows as they are); unassigned code points are taken as printable. */
static bool printable(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD)
        return false;
    if (cp < 0x300)
        return true;
    if ((cp >= 0x600 && cp <= 0x605) || cp == 0x61C || cp == 0x6DD || cp == 0x70F || cp == 0x180E ||
        cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
        (cp >= 0x205F && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206F) || cp == 0x3000 ||
        (cp >= 0xD800 && cp <= 0xF8FF) || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) || cp == 0x110BD ||
        (cp >= 0x1D173 && cp <= 0x1D17A) || (cp >= 0xE0000 && cp <= 0xE007F) || cp >= 0xF0000)
        return false;
    return true;
}

static bool append_string_repr(jinja_buf *buf, const jinja_string *str)
{
    bool has_single = memchr(str->data, '\'', str->len) != NULL;
    bool has_double = memchr(str->data, '"', str->len) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    if (!jinja_buf_addc(buf, quote))
        return false;
    for (size_t pos = 0; pos < str->len;) {
        size_t start = pos;
        uint32_t cp = jinja_utf8_next(str->data, str->len, &pos);
        bool ok;
        if (cp == (uint32_t)quote || cp == '\\')
            ok = jinja_buf_addc(buf, '\\') && jinja_buf_addc(buf, (char)cp);
        else if (cp == '\n')
            ok = jinja_buf_add(buf, "\\n", 2);
        else if (cp == '\r')
            ok = jinja_buf_add(buf, "\\r", 2);
        else if (cp == '\t')
            ok = jinja_buf_add(buf, "\\t", 2);
        else if (printable(cp))
            ok = jinja_buf_add(buf, str->data + start, pos - start);
        else if (cp <= 0xFF)
            ok = jinja_buf_addf(buf, "\\x%02x", cp);
        else if (cp <= 0xFFFF)
            ok = jinja_buf_addf(buf, "\\u%04x", cp);
        else
            ok = jinja_buf_addf(buf, "\\U%08x", cp);
        if (!ok)
            return false;
    }
    return jinja_buf_addc(buf, quote);
}

static bool append_value(jinja_buf *buf, jv value, bool repr, int depth);

static bool append_dict_body(jinja_buf *buf, const jinja_dict *dict, int depth)
{
    if (!jinja_buf_addc(buf, '{'))
        return false;
    for (size_t i = 0; i < dict->len; i++) {
        if ((i && !jinja_buf_add(buf, ", ", 2)) || !append_value(buf, dict->keys[i], true, depth + 1) ||
            !jinja_buf_add(buf, ": ", 2) || !append_value(buf, dict->values[i], true, depth + 1))
            return false;
    }
    return jinja_buf_addc(buf, '}');
}

static bool append_value(jinja_buf *buf, jv value, bool repr, int depth)
{
    if (depth > JINJA_MAX_NESTING)
        return jinja_error(buf->rt, "values nested more than %d deep (a namespace that holds itself?)",
                           JINJA_MAX_NESTING);
    char number[40];
    switch (value.kind) {
    case JV_UNDEFINED: return true;
    case JV_NONE: return jinja_buf_add(buf, "None", 4);
    case JV_BOOL: return value.u.b ? jinja_buf_add(buf, "True", 4) : jinja_buf_add(buf, "False", 5);
    case JV_INT: return jinja_buf_addf(buf, "%lld", (long long)value.u.i);
    case JV_FLOAT:
        jinja_format_float(value.u.f, number);
        return jinja_buf_add(buf, number, strlen(number));
    case JV_STRING:
        return repr ? append_string_repr(buf, value.u.str) : jinja_buf_add(buf, value.u.str->data, value.u.str->len);
    case JV_LIST: {
        jinja_list *list = value.u.list;
        if (!jinja_buf_addc(buf, list->is_tuple ? '(' : '['))
            return false;
        for (size_t i = 0; i < list->len; i++)
            if ((i && !jinja_buf_add(buf, ", ", 2)) || !append_value(buf, list->items[i], true, depth + 1))
                return false;
        if (list->is_tuple && list->len == 1 && !jinja_buf_addc(buf, ','))
            return false;
        return jinja_buf_addc(buf, list->is_tuple ? ')' : ']');
    }
    case JV_DICT: return append_dict_body(buf, value.u.dict, depth);
    case JV_OBJECT:
        if (value.u.obj->cls == JOBJ_NAMESPACE)
            return jinja_buf_add(buf, "<Namespace ", 11) && append_dict_body(buf, value.u.obj->attrs, depth) &&
                   jinja_buf_addc(buf, '>');
        return jinja_buf_add(buf, "<LoopContext>", 13);
    case JV_MACRO: return jinja_buf_add(buf, "<Macro>", 7);
    case JV_FUNCTION: return jinja_buf_add(buf, "<function>", 10);
    case JV_METHOD: return jinja_buf_add(buf, "<built-in method>", 17);
    }
    return true;
}

bool jv_append_str(jinja_buf *buf, jv value)
{
    return append_value(buf, value, false, 0);
}

bool jv_append_repr(jinja_buf *buf, jv value)
{
    return append_value(buf, value, true, 0);
}

bool jv_to_string(jinja_rt *rt, jv value, jv *out)
{
    if (value.kind == JV_STRING) {
        *out = jv_copy(value);
        return true;
    }
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    if (!jv_append_str(&buf, value)) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

bool jv_length(jinja_rt *rt, jv value, int64_t *out)
{
    switch (value.kind) {
    case JV_UNDEFINED: *out = 0; return true;
    case JV_STRING: *out = (int64_t)value.u.str->n_chars; return true;
    case JV_LIST: *out = (int64_t)value.u.list->len; return true;
    case JV_DICT: *out = (int64_t)value.u.dict->len; return true;
    default: return jinja_error(rt, "object of type '%s' has no len()", jv_type_name(value));
    }
}

bool jv_is_iterable(jv value)
{
    return value.kind == JV_UNDEFINED || value.kind == JV_STRING || value.kind == JV_LIST || value.kind == JV_DICT;
}

bool jv_is_callable(jv value)
{
    /* jinja2's Undefined has a __call__ (that raises), so callable() holds */
    return value.kind == JV_UNDEFINED || value.kind == JV_MACRO || value.kind == JV_FUNCTION || value.kind == JV_METHOD;
}

bool jv_iterate(jinja_rt *rt, jv value, jv *out)
{
    switch (value.kind) {
    case JV_UNDEFINED: return jv_list_new(rt, 0, false, out);
    case JV_LIST: {
        jinja_list *list = value.u.list;
        if (!jv_list_new(rt, list->len, false, out))
            return false;
        for (size_t i = 0; i < list->len; i++)
            out->u.list->items[i] = jv_copy(list->items[i]);
        out->u.list->len = list->len;
        out->u.list->depth = list->depth;
        return true;
    }
    case JV_DICT: {
        jinja_dict *dict = value.u.dict;
        if (!jv_list_new(rt, dict->len, false, out))
            return false;
        for (size_t i = 0; i < dict->len; i++)
            out->u.list->items[i] = jv_copy(dict->keys[i]);
        out->u.list->len = dict->len;
        out->u.list->depth = 1;
        return true;
    }
    case JV_STRING: {
        jinja_string *str = value.u.str;
        if (!jv_list_new(rt, str->n_chars, false, out))
            return false;
        for (size_t pos = 0; pos < str->len;) {
            size_t start = pos;
            jinja_utf8_next(str->data, str->len, &pos);
            jv ch;
            if (!jv_string(rt, str->data + start, pos - start, &ch) || !jv_list_push(rt, *out, ch)) {
                jv_release(*out);
                return false;
            }
        }
        return true;
    }
    default: return jinja_error(rt, "'%s' object is not iterable", jv_type_name(value));
    }
}
