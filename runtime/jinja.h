/* A Jinja interpreter for chat templates (private to libstrata).
 *
 * It implements the part of Jinja2 that real chat templates use, with the
 * environment Hugging Face's apply_chat_template renders them in:
 * trim_blocks and lstrip_blocks on, a trailing newline of the template
 * dropped, the loop controls (break/continue), and an immutable sandbox
 * (templates cannot modify lists or dicts; only namespaces are mutable).
 * Values behave as the Python values jinja2 works with: str() and repr()
 * of lists and dicts, Python truthiness, comparisons and errors.
 *
 * Files: jinja_lex.c (source to tokens, whitespace control), jinja_parse.c
 * (tokens to a syntax tree), jinja_eval.c (rendering), jinja_builtins.c
 * (filters, global functions), jinja_tests.c (is-tests), jinja_methods.c (str/dict/list
 * methods), jinja_value.c (values, str() and comparisons), jinja_json.c
 * (JSON in and out).
 *
 * A construct strata does not implement (include, extends, recursive loops,
 * call blocks, %-formatting, unknown filters or tests, ...) is an error
 * naming it, at parse time where the syntax shows it. Rendering is bounded
 * by the limits in jinja_limits, so a hostile template cannot hang or take
 * all memory.
 *
 * Thread safety: a parsed template is read-only while it renders (its
 * constants are immortal values whose reference counts are never touched),
 * so one template may be rendered by several threads at once. */
#ifndef STRATA_JINJA_H
#define STRATA_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* --- values ---------------------------------------------------------------- */

typedef enum jinja_kind {
    JV_UNDEFINED, /* a name or key that does not exist */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STRING,
    JV_LIST,      /* list or tuple (jinja_list.is_tuple) */
    JV_DICT,
    JV_OBJECT,    /* a namespace() or the loop variable: attributes only */
    JV_MACRO,
    JV_FUNCTION,  /* a global function: range, namespace, raise_exception, ... */
    JV_METHOD,    /* a method bound to its receiver: 'a b'.split */
} jinja_kind;

typedef struct jinja_string jinja_string;
typedef struct jinja_list jinja_list;
typedef struct jinja_dict jinja_dict;
typedef struct jinja_object jinja_object;
typedef struct jinja_macro jinja_macro;
typedef struct jinja_method jinja_method;

/* A value, passed by value. The heap kinds hold one counted reference:
 * jv_retain / jv_release. Functions that return a jv return a new
 * reference (the caller releases it) unless they say "borrowed". */
typedef struct jv {
    jinja_kind kind;
    union {
        bool b;
        int64_t i;
        double f;
        int function; /* JV_FUNCTION: index into the global table */
        jinja_string *str;
        jinja_list *list;
        jinja_dict *dict;
        jinja_object *obj;
        jinja_macro *macro;
        jinja_method *method;
    } u;
} jv;

/* Header of every heap value. refs < 0: immortal (a template constant). */
typedef struct jinja_heap {
    int32_t refs;
} jinja_heap;

struct jinja_string {
    jinja_heap hdr;
    bool ascii;     /* every byte < 0x80: byte index = character index */
    size_t len;     /* bytes, not counting the NUL kept after them */
    size_t n_chars; /* code points */
    char data[];
};

/* Containers nest at most this deep (JSON input, or lists a template
 * builds), so freeing, comparing and printing them never recurse deeper. */
#define JINJA_MAX_NESTING 512

struct jinja_list {
    jinja_heap hdr;
    bool is_tuple;
    uint16_t depth; /* 1 + the deepest item's depth (scalars and objects: 0) */
    size_t len, cap;
    jv *items;
};

/* Insertion-ordered, like a Python dict. Keys are strings, numbers, bools
 * or none; lookup is linear below JINJA_DICT_INDEX_MIN entries, hashed
 * above. */
struct jinja_dict {
    jinja_heap hdr;
    uint16_t depth; /* as jinja_list's, over the values */
    size_t len, cap;
    jv *keys, *values;
    uint32_t *index;    /* open addressing over positions + 1; NULL when small */
    size_t index_cap;
};

typedef enum jinja_object_class { JOBJ_NAMESPACE, JOBJ_LOOP } jinja_object_class;

struct jinja_object {
    jinja_heap hdr;
    jinja_object_class cls;
    jinja_dict *attrs;
    struct jinja_object *next_namespace; /* the render's list of namespaces */
};

typedef struct jinja_rt jinja_rt;
typedef struct jinja_node jinja_node;
typedef struct jinja_frame jinja_frame;

/* Drops one reference to a scope (jinja_eval.c; macros hold their scope). */
void jinja_frame_release(jinja_frame *frame);

struct jinja_macro {
    jinja_heap hdr;
    const jinja_node *def;
    jinja_frame *closure; /* the scope it was defined in (counted) */
};

struct jinja_method {
    jinja_heap hdr;
    jv receiver;
    int method;           /* index into the method table of jinja_methods.c */
};

/* How deep value nests: lists and dicts 1 + their deepest item, anything
 * else 0 (objects too: the render holds every namespace until it ends, so
 * none is freed in a cascade). */
static inline size_t jv_depth(jv value)
{
    return value.kind == JV_LIST ? value.u.list->depth : value.kind == JV_DICT ? value.u.dict->depth : 0;
}

static inline jv jv_undefined(void) { return (jv){.kind = JV_UNDEFINED}; }
static inline jv jv_none(void) { return (jv){.kind = JV_NONE}; }
static inline jv jv_bool(bool b) { return (jv){.kind = JV_BOOL, .u.b = b}; }
static inline jv jv_int(int64_t i) { return (jv){.kind = JV_INT, .u.i = i}; }
static inline jv jv_float(double f) { return (jv){.kind = JV_FLOAT, .u.f = f}; }

void jv_retain(jv value);
void jv_release(jv value);
/* Returns value with one more reference: jv_copy(x) == (jv_retain(x), x). */
jv jv_copy(jv value);
/* Makes a heap value immortal (template constants); recursive. */
void jv_make_immortal(jv value);
/* Frees an immortal value and what it holds (template teardown). */
void jv_free_immortal(jv value);

/* --- the render's runtime state (limits, errors, allocation budget) ------- */

typedef struct jinja_limits {
    uint64_t max_steps;        /* evaluation steps (expressions + statements) */
    uint64_t max_alloc_bytes;  /* bytes allocated for values over the render */
    size_t max_output_bytes;   /* the rendered text */
    int max_depth;             /* nested evaluation (macro recursion, nesting) */
    double max_seconds;        /* wall-clock time, checked every few thousand steps: a
                                  backstop for steps that each scan a long string */
} jinja_limits;

/* Defaults for real templates: 50M steps, 512 MiB of allocations, 64 MiB
 * of output, depth 1000 (about 100 levels of macro recursion), 10 seconds. */
jinja_limits jinja_default_limits(void);

/* Allocation that counts against rt's budget (rt may be NULL: parse-time
 * constants). NULL with an error set in rt when the budget or memory runs
 * out. */
void *jinja_alloc(jinja_rt *rt, size_t size);
void *jinja_realloc(jinja_rt *rt, void *ptr, size_t old_size, size_t new_size);

/* Records an error at the line being evaluated; returns false so callers
 * can write `return jinja_error(rt, ...)`. */
bool jinja_error(jinja_rt *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The current line of rt (for messages of callers outside jinja_eval.c). */
int jinja_rt_line(const jinja_rt *rt);

/* --- strings -------------------------------------------------------------- */

/* A new string of len bytes copied from data (valid UTF-8 is the caller's
 * promise). Returns false (error in rt) when out of budget. */
bool jv_string(jinja_rt *rt, const char *data, size_t len, jv *out);
static inline bool jv_cstring(jinja_rt *rt, const char *text, jv *out);
/* Borrowed view of a JV_STRING's bytes. */
static inline const char *jv_str_data(jv value) { return value.u.str->data; }
static inline size_t jv_str_len(jv value) { return value.u.str->len; }

/* A growable byte buffer for building strings (output, str(), joins). */
typedef struct jinja_buf {
    jinja_rt *rt;
    char *data;
    size_t len, cap;
    size_t limit;   /* most bytes it may hold; exceeded -> error */
} jinja_buf;
void jinja_buf_init(jinja_buf *buf, jinja_rt *rt, size_t limit);
bool jinja_buf_add(jinja_buf *buf, const char *data, size_t len);
bool jinja_buf_addc(jinja_buf *buf, char c);
bool jinja_buf_addf(jinja_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Moves the contents into a new JV_STRING and frees the buffer. */
bool jinja_buf_to_string(jinja_buf *buf, jv *out);
void jinja_buf_free(jinja_buf *buf);

/* --- lists and dicts -------------------------------------------------------- */

bool jv_list_new(jinja_rt *rt, size_t capacity, bool is_tuple, jv *out);
/* Appends item (taking the caller's reference, released on failure). */
bool jv_list_push(jinja_rt *rt, jv list, jv item);
bool jv_dict_new(jinja_rt *rt, jv *out);
/* Sets key to value (taking both references, released on failure). A key
 * must be hashable: string, number, bool or none. */
bool jv_dict_set(jinja_rt *rt, jinja_dict *dict, jv key, jv value);
/* Borrowed value for key, or NULL. */
jv *jv_dict_get(const jinja_dict *dict, jv key);
jv *jv_dict_get_str(const jinja_dict *dict, const char *key);

bool jv_object_new(jinja_rt *rt, jinja_object_class cls, jv *out);

/* --- Python semantics ------------------------------------------------------- */

bool jv_truthy(jv value);
/* Python ==, with numbers compared by value (1 == 1.0 == true) and lists
 * and dicts compared deeply. */
bool jv_equal(jv a, jv b);
/* Python's a < b and friends: *result is -1, 0 or 1; false (error in rt)
 * for types that do not order ("'<' not supported between ..."). */
bool jv_compare(jinja_rt *rt, jv a, jv b, const char *op, int *result);
/* The Python type name: "str", "int", "dict", "NoneType", "Undefined", ... */
const char *jv_type_name(jv value);
/* Appends Python str(value) (the text {{ value }} prints) or repr(value). */
bool jv_append_str(jinja_buf *buf, jv value);
bool jv_append_repr(jinja_buf *buf, jv value);
/* str(value) as a new string (a string is returned as is, retained). */
bool jv_to_string(jinja_rt *rt, jv value, jv *out);
/* Python's repr of a float ("1.0", "1e+16", "inf"). buf holds 32 bytes. */
void jinja_format_float(double value, char *buf);
/* Length as Python len(): characters of a string, items of a list or dict
 * (an undefined value has length 0). False for values without a length. */
bool jv_length(jinja_rt *rt, jv value, int64_t *out);
/* Iterates value as Python would (a string by character, a dict by key,
 * undefined as empty) into a new list. */
bool jv_iterate(jinja_rt *rt, jv value, jv *out_list);
/* Whether jinja's "iterable" / "sequence" tests hold. */
bool jv_is_iterable(jv value);
bool jv_is_callable(jv value);

/* --- UTF-8 and Python string helpers (jinja_value.c) ---------------------- */

/* Decodes the code point at s[*pos] (valid UTF-8 assumed) and advances. */
uint32_t jinja_utf8_next(const char *s, size_t len, size_t *pos);
/* Appends the UTF-8 encoding of cp. */
bool jinja_buf_add_cp(jinja_buf *buf, uint32_t cp);
/* Byte offset of the first occurrence of needle in hay at or after from,
 * or -1; of the last occurrence, or -1. Linear time. */
int64_t jinja_find(const char *hay, size_t hay_len, const char *needle, size_t needle_len, size_t from);
int64_t jinja_rfind(const char *hay, size_t hay_len, const char *needle, size_t needle_len);
/* Byte offset of character index (0..n_chars) of a string. */
size_t jinja_char_offset(const jinja_string *str, size_t index);
/* Whether cp is whitespace as Python's str.isspace() says. */
bool jinja_is_space(uint32_t cp);
/* Simple case mapping (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic). */
uint32_t jinja_to_upper(uint32_t cp);
uint32_t jinja_to_lower(uint32_t cp);
/* Whether s[0..len) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF);
 * else *bad_offset is the first bad byte. */
bool jinja_utf8_valid(const char *s, size_t len, size_t *bad_offset);

/* --- JSON (jinja_json.c) ------------------------------------------------- */

typedef struct jinja_json_style {
    int indent;              /* < 0: none (one line) */
    bool sort_keys;
    bool ensure_ascii;
    const char *item_sep;    /* NULL: ", " (or "," with an indent) */
    const char *key_sep;     /* NULL: ": " */
} jinja_json_style;

/* Appends Python json.dumps(value) in the given style. Undefined, macros,
 * functions and methods are an error ("Object of type ... is not JSON
 * serializable"), as are dict keys that are not str/int/float/bool/None. */
bool jinja_json_dump(jinja_buf *buf, jv value, const jinja_json_style *style, int level);

/* A jansson value as a template value (objects keep their key order;
 * strings holding NUL are refused). */
struct json_t;
bool jinja_from_json(jinja_rt *rt, const struct json_t *json, jv *out);

/* --- templates and rendering (jinja_parse.c, jinja_eval.c) ---------------- */

typedef struct jinja_template jinja_template;

/* Parses source (UTF-8; name is used in messages). Errors name the line
 * and the construct: "chat template line 12: unsupported tag 'include'".
 * *out owns the syntax tree; free it with jinja_template_free. */
strata_status jinja_template_parse(const char *source, size_t len, const char *name, jinja_template **out,
                                   strata_error *err);
void jinja_template_free(jinja_template *tmpl);

/* Date and time the template sees through strftime_now(). */
typedef struct jinja_time {
    int year, month, day;         /* 1..12, 1..31 */
    int hour, minute, second;
} jinja_time;

/* Renders tmpl with the variables of globals (a JV_DICT, borrowed) into a
 * malloc'ed NUL-terminated string (*out, *out_len bytes). A template that
 * calls raise_exception("...") fails with STRATA_INVALID_INPUT and a
 * message holding its text; limits exceeded are STRATA_INVALID_INPUT too.
 * Blocks only for the CPU time it takes. */
strata_status jinja_render(const jinja_template *tmpl, jv globals, const jinja_limits *limits,
                           const jinja_time *now, char **out, size_t *out_len, strata_error *err);

/* A render context for building values outside of jinja_render (the JSON
 * conversion of inputs). Its budget is limits->max_alloc_bytes. */
jinja_rt *jinja_rt_new(const jinja_limits *limits);
void jinja_rt_free(jinja_rt *rt);
/* The message of the last error of rt. */
const char *jinja_rt_message(const jinja_rt *rt);

static inline bool jv_cstring(jinja_rt *rt, const char *text, jv *out)
{
    size_t len = 0;
    while (text[len])
        len++;
    return jv_string(rt, text, len, out);
}

#endif
