/* Rendering a parsed template: scopes, expressions, statements and the
 * limits that bound a render. Scoping follows jinja2: a for loop's body
 * gets a fresh scope per iteration (a `set` inside it is gone after the
 * iteration; namespaces carry state out), a macro's body runs in a scope
 * under the one it was defined in, `if` opens no scope, and a top-level
 * `set` shadows the render's variables. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja_syntax.h"

struct jinja_frame {
    int32_t refs;
    jinja_frame *parent;   /* counted */
    jinja_dict *vars;
};

struct jinja_rt {
    jinja_limits limits;
    const char *name;      /* the template's, for messages */
    uint64_t steps;
    uint64_t next_clock_check; /* the step count at which the clock is read next */
    double deadline;           /* CLOCK_MONOTONIC seconds; 0: none */
    uint64_t alloc_bytes;
    int depth;
    int line;
    bool failed;
    bool raised;           /* raise_exception() was called */
    char message[512];
    jinja_time now;
    jv globals;            /* the render's variables (a dict, borrowed) */
    jinja_object *objects; /* every namespace and loop object of the render */
};

typedef enum exec_result { EXEC_OK, EXEC_ERROR, EXEC_BREAK, EXEC_CONTINUE } exec_result;

jinja_limits jinja_default_limits(void)
{
    return (jinja_limits){.max_steps = 50000000, .max_alloc_bytes = 512ull << 20, .max_output_bytes = 64u << 20,
                          .max_depth = 1000, .max_seconds = 10.0};
}

/* --- the runtime ------------------------------------------------------------ */

void *jinja_alloc(jinja_rt *rt, size_t size)
{
    if (rt) {
        if (rt->failed)
            return NULL;
        if (size > rt->limits.max_alloc_bytes || rt->alloc_bytes > rt->limits.max_alloc_bytes - size) {
            jinja_error(rt, "the template needs more than %llu MiB of memory (the limit)",
                        (unsigned long long)(rt->limits.max_alloc_bytes >> 20));
            return NULL;
        }
        rt->alloc_bytes += size;
    }
    void *out = malloc(size ? size : 1);
    if (!out && rt)
        jinja_error(rt, "out of memory");
    return out;
}

void *jinja_realloc(jinja_rt *rt, void *ptr, size_t old_size, size_t new_size)
{
    if (rt) {
        if (rt->failed)
            return NULL;
        size_t grow = new_size > old_size ? new_size - old_size : 0;
        if (grow > rt->limits.max_alloc_bytes || rt->alloc_bytes > rt->limits.max_alloc_bytes - grow) {
            jinja_error(rt, "the template needs more than %llu MiB of memory (the limit)",
                        (unsigned long long)(rt->limits.max_alloc_bytes >> 20));
            return NULL;
        }
        rt->alloc_bytes += grow;
    }
    void *out = realloc(ptr, new_size ? new_size : 1);
    if (!out && rt)
        jinja_error(rt, "out of memory");
    return out;
}

bool jinja_error(jinja_rt *rt, const char *fmt, ...)
{
    if (!rt || rt->failed)
        return false;
    rt->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt->message, sizeof rt->message, fmt, ap);
    va_end(ap);
    return false;
}

int jinja_rt_line(const jinja_rt *rt)
{
    return rt->line;
}

const char *jinja_rt_message(const jinja_rt *rt)
{
    return rt->message;
}

const jinja_time *jinja_rt_now(const jinja_rt *rt)
{
    return &rt->now;
}

bool jinja_rt_raise(jinja_rt *rt, const char *message, size_t len)
{
    if (rt->failed)
        return false;
    jinja_error(rt, "%.*s", (int)(len > 400 ? 400 : len), message);
    rt->raised = true;
    return false;
}

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Every 256 steps (a clock read costs tens of nanoseconds): whether the
 * render ran past its time. */
static bool check_clock(jinja_rt *rt)
{
    rt->next_clock_check = rt->steps + 256;
    if (rt->deadline > 0 && monotonic_seconds() > rt->deadline)
        return jinja_error(rt, "the template ran longer than %g seconds (the limit)", rt->limits.max_seconds);
    return true;
}

bool jinja_rt_step(jinja_rt *rt, uint64_t units)
{
    rt->steps += units;
    if (rt->steps > rt->limits.max_steps)
        return jinja_error(rt, "the template ran more than %llu steps (the limit; an endless or huge loop?)",
                           (unsigned long long)rt->limits.max_steps);
    return rt->steps < rt->next_clock_check || check_clock(rt);
}

bool jinja_rt_track_object(jinja_rt *rt, jv object)
{
    jv_retain(object);
    object.u.obj->next_namespace = rt->objects;
    rt->objects = object.u.obj;
    return true;
}

jinja_rt *jinja_rt_new(const jinja_limits *limits)
{
    jinja_rt *rt = calloc(1, sizeof *rt);
    if (rt)
        rt->limits = limits ? *limits : jinja_default_limits();
    return rt;
}

/* Breaks the cycles namespaces can form (ns.self = ns) and drops them. */
static void release_objects(jinja_rt *rt)
{
    for (jinja_object *obj = rt->objects; obj; obj = obj->next_namespace) {
        jinja_dict *attrs = obj->attrs;
        size_t n = attrs->len;
        attrs->len = 0;
        free(attrs->index);
        attrs->index = NULL;
        attrs->index_cap = 0;
        for (size_t i = 0; i < n; i++) {
            jv_release(attrs->keys[i]);
            jv_release(attrs->values[i]);
        }
    }
    while (rt->objects) {
        jinja_object *obj = rt->objects;
        rt->objects = obj->next_namespace;
        jv_release((jv){.kind = JV_OBJECT, .u.obj = obj});
    }
}

void jinja_rt_free(jinja_rt *rt)
{
    if (!rt)
        return;
    release_objects(rt);
    free(rt);
}

static bool enter(jinja_rt *rt, const jinja_node *node)
{
    rt->line = node->line;
    if (++rt->steps > rt->limits.max_steps)
        return jinja_error(rt, "the template ran more than %llu steps (the limit; an endless or huge loop?)",
                           (unsigned long long)rt->limits.max_steps);
    if (rt->steps >= rt->next_clock_check && !check_clock(rt))
        return false;
    if (++rt->depth > rt->limits.max_depth)
        return jinja_error(rt, "the template nests more than %d levels deep (endless macro recursion?)",
                           rt->limits.max_depth);
    return true;
}

/* --- scopes ----------------------------------------------------------------- */

static jinja_frame *frame_new(jinja_rt *rt, jinja_frame *parent)
{
    jinja_frame *frame = jinja_alloc(rt, sizeof *frame);
    if (!frame)
        return NULL;
    jv vars;
    if (!jv_dict_new(rt, &vars)) {
        free(frame);
        return NULL;
    }
    frame->refs = 1;
    frame->vars = vars.u.dict;
    frame->parent = parent;
    if (parent)
        parent->refs++;
    return frame;
}

/* Drops the frame's variables (its scope ended; a macro that outlives it
 * keeps an empty frame) and one reference. */
static void frame_close(jinja_frame *frame)
{
    if (!frame)
        return;
    jinja_dict *vars = frame->vars;
    size_t n = vars->len;
    vars->len = 0;
    for (size_t i = 0; i < n; i++) {
        jv_release(vars->keys[i]);
        jv_release(vars->values[i]);
    }
    free(vars->index);
    vars->index = NULL;
    vars->index_cap = 0;
    jinja_frame_release(frame);
}

void jinja_frame_release(jinja_frame *frame)
{
    while (frame && --frame->refs == 0) {
        jinja_frame *parent = frame->parent;
        jv_release((jv){.kind = JV_DICT, .u.dict = frame->vars});
        free(frame);
        frame = parent;
    }
}

static bool frame_set(jinja_rt *rt, jinja_frame *frame, const char *name, jv value)
{
    jv key;
    if (!jv_cstring(rt, name, &key)) {
        jv_release(value);
        return false;
    }
    return jv_dict_set(rt, frame->vars, key, value);
}

/* The value of a name (new reference): the scopes, the render's variables,
 * then the global functions; undefined when none has it. */
static jv lookup(jinja_rt *rt, jinja_frame *frame, const char *name)
{
    for (; frame; frame = frame->parent) {
        jv *found = jv_dict_get_str(frame->vars, name);
        if (found)
            return jv_copy(*found);
    }
    if (rt->globals.kind == JV_DICT) {
        jv *found = jv_dict_get_str(rt->globals.u.dict, name);
        if (found)
            return jv_copy(*found);
    }
    jv function;
    if (jinja_find_function(name, &function))
        return function;
    return jv_undefined();
}

/* --- expressions ------------------------------------------------------------ */

static bool eval(jinja_rt *rt, jinja_frame *frame, const jinja_node *node, jv *out);
static exec_result exec(jinja_rt *rt, jinja_frame *frame, const jinja_node *node, jinja_buf *out);

bool jinja_getattr(jinja_rt *rt, jv value, const char *attr, jv *out)
{
    switch (value.kind) {
    case JV_UNDEFINED:
        return jinja_error(rt, "cannot read attribute '%s' of an undefined value", attr);
    case JV_OBJECT: {
        jv *found = jv_dict_get_str(value.u.obj->attrs, attr);
        if (found) {
            *out = jv_copy(*found);
            return true;
        }
        break;
    }
    case JV_DICT: {
        bool failed = false;
        if (jinja_find_method(rt, value, attr, out, &failed))
            return true;
        if (failed)
            return false;
        jv *found = jv_dict_get_str(value.u.dict, attr);
        if (found) {
            *out = jv_copy(*found);
            return true;
        }
        break;
    }
    case JV_INT:
    case JV_BOOL:
    case JV_FLOAT:
        /* the number attributes of Python's int and float */
        if (!strcmp(attr, "real")) {
            *out = value.kind == JV_BOOL ? jv_int(value.u.b) : value;
            return true;
        }
        if (!strcmp(attr, "imag")) {
            *out = value.kind == JV_FLOAT ? jv_float(0.0) : jv_int(0);
            return true;
        }
        break;
    default:
        break;
    }
    bool failed = false;
    if (jinja_find_method(rt, value, attr, out, &failed))
        return true;
    if (failed)
        return false;
    *out = jv_undefined();
    return true;
}

/* Python's slice indices for a sequence of len items. */
static bool slice_indices(jinja_rt *rt, const jv *parts, int64_t len, int64_t *start, int64_t *stop, int64_t *step)
{
    for (int i = 0; i < 3; i++)
        if (parts[i].kind != JV_NONE && parts[i].kind != JV_INT && parts[i].kind != JV_BOOL)
            return jinja_error(rt, "slice indices must be integers or none, not %s", jv_type_name(parts[i]));
    *step = parts[2].kind == JV_NONE ? 1 : parts[2].kind == JV_BOOL ? parts[2].u.b : parts[2].u.i;
    if (*step == 0)
        return jinja_error(rt, "slice step cannot be zero");
    int64_t lower = *step < 0 ? -1 : 0, upper = *step < 0 ? len - 1 : len;
    for (int i = 0; i < 2; i++) {
        int64_t *target = i == 0 ? start : stop;
        if (parts[i].kind == JV_NONE) {
            *target = i == 0 ? (*step < 0 ? upper : lower) : (*step < 0 ? lower : upper);
            continue;
        }
        int64_t v = parts[i].kind == JV_BOOL ? parts[i].u.b : parts[i].u.i;
        if (v < 0) {
            v += len;
            if (v < lower)
                v = lower;
        } else if (v > upper) {
            v = upper;
        }
        *target = v;
    }
    return true;
}

static bool get_slice(jinja_rt *rt, jv value, const jv *parts, jv *out)
{
    int64_t len = value.kind == JV_LIST ? (int64_t)value.u.list->len : (int64_t)value.u.str->n_chars;
    int64_t start = 0, stop = 0, step = 1;
    if (!slice_indices(rt, parts, len, &start, &stop, &step))
        return false;
    if (value.kind == JV_LIST) {
        if (!jv_list_new(rt, 0, value.u.list->is_tuple, out))
            return false;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            if (!jv_list_push(rt, *out, jv_copy(value.u.list->items[i]))) {
                jv_release(*out);
                return false;
            }
        return true;
    }
    const jinja_string *str = value.u.str;
    if (str->ascii && step == 1) {
        return jv_string(rt, str->data + start, stop > start ? (size_t)(stop - start) : 0, out);
    }
    /* character offsets, then pick */
    size_t *offsets = jinja_alloc(rt, ((size_t)len + 1) * sizeof *offsets);
    if (!offsets)
        return false;
    size_t pos = 0;
    for (int64_t i = 0; i < len; i++) {
        offsets[i] = pos;
        jinja_utf8_next(str->data, str->len, &pos);
    }
    offsets[len] = pos;
    jinja_buf buf;
    jinja_buf_init(&buf, rt, SIZE_MAX / 2);
    bool ok = true;
    for (int64_t i = start; ok && (step > 0 ? i < stop : i > stop); i += step)
        ok = jinja_buf_add(&buf, str->data + offsets[i], offsets[i + 1] - offsets[i]);
    free(offsets);
    if (!ok) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

/* value[key] the way jinja2's getitem does it: the item, else (for a
 * string key) the attribute, else undefined. */
static bool get_item(jinja_rt *rt, jv value, jv key, jv *out)
{
    if (value.kind == JV_UNDEFINED)
        return jinja_error(rt, "cannot read an item of an undefined value");
    if (value.kind == JV_DICT) {
        jv *found = jv_dict_get(value.u.dict, key);
        if (found) {
            *out = jv_copy(*found);
            return true;
        }
    } else if ((value.kind == JV_LIST || value.kind == JV_STRING) && (key.kind == JV_INT || key.kind == JV_BOOL)) {
        int64_t len = value.kind == JV_LIST ? (int64_t)value.u.list->len : (int64_t)value.u.str->n_chars;
        int64_t i = key.kind == JV_INT ? key.u.i : key.u.b;
        if (i < 0)
            i += len;
        if (i < 0 || i >= len) {
            *out = jv_undefined();
            return true;
        }
        if (value.kind == JV_LIST) {
            *out = jv_copy(value.u.list->items[i]);
            return true;
        }
        if (!value.u.str->ascii && !jinja_rt_step(rt, value.u.str->len / 4096))
            return false;
        size_t start = jinja_char_offset(value.u.str, (size_t)i), end = start;
        jinja_utf8_next(value.u.str->data, value.u.str->len, &end);
        return jv_string(rt, value.u.str->data + start, end - start, out);
    }
    if (key.kind == JV_STRING)
        return jinja_getattr(rt, value, key.u.str->data, out);
    *out = jv_undefined();
    return true;
}

static bool eval_args(jinja_rt *rt, jinja_frame *frame, const jinja_node *node, jv *values)
{
    size_t n = node->n_args + node->n_kw;
    for (size_t i = 0; i < n; i++) {
        const jinja_node *arg = i < node->n_args ? node->args[i] : node->kw_values[i - node->n_args];
        if (!eval(rt, frame, arg, &values[i])) {
            for (size_t k = 0; k < i; k++)
                jv_release(values[k]);
            return false;
        }
    }
    return true;
}

static void release_values(jv *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        jv_release(values[i]);
}

/* Positional and keyword argument values of a call, filter or test node,
 * with a small fixed buffer for the common case. */
typedef struct call_args {
    jv small[8];
    jv *values;
    size_t n;
    jinja_args args;
} call_args;

static bool call_args_eval(jinja_rt *rt, jinja_frame *frame, const jinja_node *node, const jv *first,
                           call_args *ca)
{
    size_t offset = first ? 1 : 0;
    ca->n = node->n_args + node->n_kw + offset;
    ca->values = ca->n <= 8 ? ca->small : jinja_alloc(rt, ca->n * sizeof(jv));
    if (!ca->values)
        return false;
    if (first)
        ca->values[0] = jv_copy(*first);
    if (!eval_args(rt, frame, node, ca->values + offset)) {
        if (first)
            jv_release(ca->values[0]);
        if (ca->values != ca->small)
            free(ca->values);
        return false;
    }
    ca->args = (jinja_args){.pos = ca->values, .n_pos = node->n_args + offset, .kw_names = node->kw_names,
                            .kw = ca->values + node->n_args + offset, .n_kw = node->n_kw};
    return true;
}

static void call_args_free(call_args *ca)
{
    release_values(ca->values, ca->n);
    if (ca->values != ca->small)
        free(ca->values);
}

const jv *jinja_kwarg(const jinja_args *args, const char *name)
{
    for (size_t i = 0; i < args->n_kw; i++)
        if (!strcmp(args->kw_names[i], name))
            return &args->kw[i];
    return NULL;
}

const jv *jinja_arg(const jinja_args *args, size_t i, const char *name)
{
    if (i < args->n_pos)
        return &args->pos[i];
    return name ? jinja_kwarg(args, name) : NULL;
}

/* Whether the tree under node reads the name (a macro's varargs/kwargs). */
static bool uses_name(const jinja_node *node, const char *name)
{
    if (!node)
        return false;
    if (node->kind == JN_NAME && !strcmp(node->name, name))
        return true;
    if (node->kind == JN_MACRO)
        return false; /* a nested macro has its own */
    const jinja_node *children[] = {node->a, node->b, node->c, node->d, node->e};
    for (size_t i = 0; i < 5; i++)
        if (uses_name(children[i], name))
            return true;
    for (size_t i = 0; i < node->n_args; i++)
        if (uses_name(node->args[i], name) || (node->values && uses_name(node->values[i], name)))
            return true;
    for (size_t i = 0; i < node->n_kw; i++)
        if (uses_name(node->kw_values[i], name))
            return true;
    return false;
}

static bool call_macro(jinja_rt *rt, const jinja_macro *macro, const jinja_args *args, jv *out)
{
    const jinja_node *def = macro->def;
    jinja_frame *frame = frame_new(rt, macro->closure);
    jinja_buf buf;
    jinja_buf_init(&buf, rt, rt->limits.max_output_bytes);
    jv extra = jv_undefined(), extra_kw = jv_undefined();
    if (!frame)
        return false;
    int call_line = rt->line;
    if (args->n_pos > def->n_args) {
        if (!uses_name(def->b, "varargs")) {
            jinja_error(rt, "macro '%s' takes not more than %zu argument(s)", def->name, def->n_args);
            goto fail;
        }
        if (!jv_list_new(rt, 0, true, &extra))
            goto fail;
        for (size_t i = def->n_args; i < args->n_pos; i++)
            if (!jv_list_push(rt, extra, jv_copy(args->pos[i])))
                goto fail;
    }
    for (size_t k = 0; k < args->n_kw; k++) {
        bool known = false;
        for (size_t i = 0; i < def->n_args && !known; i++)
            if (!strcmp(def->args[i]->name, args->kw_names[k])) {
                if (i < args->n_pos) {
                    jinja_error(rt, "macro '%s' got multiple values for argument '%s'", def->name,
                                args->kw_names[k]);
                    goto fail;
                }
                known = true;
            }
        if (known)
            continue;
        if (!uses_name(def->b, "kwargs")) {
            jinja_error(rt, "macro '%s' takes no keyword argument '%s'", def->name, args->kw_names[k]);
            goto fail;
        }
        if (extra_kw.kind == JV_UNDEFINED && !jv_dict_new(rt, &extra_kw))
            goto fail;
        jv key;
        if (!jv_cstring(rt, args->kw_names[k], &key) ||
            !jv_dict_set(rt, extra_kw.u.dict, key, jv_copy(args->kw[k])))
            goto fail;
    }
    /* parameters in order; a default may read the parameters before it */
    for (size_t i = 0; i < def->n_args; i++) {
        jv value;
        const jv *given = i < args->n_pos ? &args->pos[i] : jinja_kwarg(args, def->args[i]->name);
        if (given)
            value = jv_copy(*given);
        else if (def->values && def->values[i]) {
            if (!eval(rt, frame, def->values[i], &value))
                goto fail;
        } else
            value = jv_undefined();
        if (!frame_set(rt, frame, def->args[i]->name, value))
            goto fail;
    }
    if (extra.kind == JV_UNDEFINED && !jv_list_new(rt, 0, true, &extra))
        goto fail;
    if (!frame_set(rt, frame, "varargs", extra))
        goto fail_released;
    extra = jv_undefined();
    if (extra_kw.kind == JV_UNDEFINED && !jv_dict_new(rt, &extra_kw))
        goto fail;
    if (!frame_set(rt, frame, "kwargs", extra_kw))
        goto fail_released;
    extra_kw = jv_undefined();
    exec_result result = exec(rt, frame, def->b, &buf);
    if (result == EXEC_ERROR)
        goto fail;
    frame_close(frame);
    rt->line = call_line;
    return jinja_buf_to_string(&buf, out);
fail_released:
    extra = extra_kw = jv_undefined();
fail:
    jv_release(extra);
    jv_release(extra_kw);
    jinja_buf_free(&buf);
    frame_close(frame);
    return false;
}

bool jinja_call_value(jinja_rt *rt, jv callee, const jinja_args *args, jv *out)
{
    switch (callee.kind) {
    case JV_MACRO: return call_macro(rt, callee.u.macro, args, out);
    case JV_FUNCTION: return jinja_call_function(rt, callee.u.function, args, out);
    case JV_METHOD: return jinja_call_method(rt, callee.u.method, args, out);
    case JV_UNDEFINED: return jinja_error(rt, "cannot call an undefined value (an unknown function or macro?)");
    default: return jinja_error(rt, "'%s' object is not callable", jv_type_name(callee));
    }
}

static bool int_overflow(jinja_rt *rt)
{
    return jinja_error(rt, "integer overflow (strata's template integers are 64-bit)");
}

static bool is_num(jv v) { return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL; }
static double num_f(jv v) { return v.kind == JV_FLOAT ? v.u.f : v.kind == JV_INT ? (double)v.u.i : v.u.b; }
static int64_t num_i(jv v) { return v.kind == JV_INT ? v.u.i : v.u.b; }

static const char *const binop_symbols[] = {"+", "-", "*", "/", "//", "%", "**"};

/* seq * count for a string or a list. */
static bool repeat(jinja_rt *rt, jv seq, int64_t count, jv *out)
{
    if (count < 0)
        count = 0;
    if (seq.kind == JV_STRING) {
        size_t len = seq.u.str->len;
        if (len && (uint64_t)count > rt->limits.max_output_bytes / len)
            return jinja_error(rt, "string repetition longer than the limit of %zu bytes", rt->limits.max_output_bytes);
        jinja_buf buf;
        jinja_buf_init(&buf, rt, SIZE_MAX / 2);
        for (int64_t i = 0; i < count; i++)
            if (!jinja_buf_add(&buf, seq.u.str->data, len)) {
                jinja_buf_free(&buf);
                return false;
            }
        return jinja_buf_to_string(&buf, out);
    }
    size_t len = seq.u.list->len;
    if (len && (uint64_t)count > rt->limits.max_output_bytes / len)
        return jinja_error(rt, "list repetition longer than the limit");
    if (!jinja_rt_step(rt, (uint64_t)count * len) || !jv_list_new(rt, (size_t)count * len, seq.u.list->is_tuple, out))
        return false;
    for (int64_t i = 0; i < count; i++)
        for (size_t k = 0; k < len; k++)
            if (!jv_list_push(rt, *out, jv_copy(seq.u.list->items[k]))) {
                jv_release(*out);
                return false;
            }
    return true;
}

static bool binary(jinja_rt *rt, int op, jv a, jv b, jv *out)
{
    if (a.kind == JV_UNDEFINED || b.kind == JV_UNDEFINED)
        return jinja_error(rt, "an undefined value used with '%s'", binop_symbols[op]);
    if (is_num(a) && is_num(b)) {
        bool floats = a.kind == JV_FLOAT || b.kind == JV_FLOAT;
        if (op == JOP_DIV) {
            if (num_f(b) == 0.0)
                return jinja_error(rt, "division by zero");
            *out = jv_float(num_f(a) / num_f(b));
            return true;
        }
        if (floats) {
            double x = num_f(a), y = num_f(b), r;
            switch (op) {
            case JOP_ADD: r = x + y; break;
            case JOP_SUB: r = x - y; break;
            case JOP_MUL: r = x * y; break;
            case JOP_FLOORDIV:
                if (y == 0.0)
                    return jinja_error(rt, "float floor division by zero");
                r = floor(x / y);
                break;
            case JOP_MOD:
                if (y == 0.0)
                    return jinja_error(rt, "float modulo");
                r = fmod(x, y);
                if (r != 0.0 && ((r < 0) != (y < 0)))
                    r += y;
                break;
            default:
                if (x == 0.0 && y < 0)
                    return jinja_error(rt, "0.0 cannot be raised to a negative power");
                r = pow(x, y);
                break;
            }
            *out = jv_float(r);
            return true;
        }
        int64_t x = num_i(a), y = num_i(b), r;
        switch (op) {
        case JOP_ADD:
            if (__builtin_add_overflow(x, y, &r))
                return int_overflow(rt);
            break;
        case JOP_SUB:
            if (__builtin_sub_overflow(x, y, &r))
                return int_overflow(rt);
            break;
        case JOP_MUL:
            if (__builtin_mul_overflow(x, y, &r))
                return int_overflow(rt);
            break;
        case JOP_FLOORDIV:
        case JOP_MOD:
            if (y == 0)
                return jinja_error(rt, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1)
                return int_overflow(rt);
            r = op == JOP_FLOORDIV ? x / y : x % y;
            if (op == JOP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0)))
                r--;
            if (op == JOP_MOD && r != 0 && ((r < 0) != (y < 0)))
                r += y;
            break;
        default:
            if (y < 0) {
                if (x == 0)
                    return jinja_error(rt, "0.0 cannot be raised to a negative power");
                *out = jv_float(pow((double)x, (double)y));
                return true;
            }
            r = 1;
            for (int64_t base = x, e = y; e > 0; e >>= 1) {
                if ((e & 1) && __builtin_mul_overflow(r, base, &r))
                    return int_overflow(rt);
                if (e > 1 && __builtin_mul_overflow(base, base, &base))
                    return int_overflow(rt);
            }
            break;
        }
        *out = jv_int(r);
        return true;
    }
    if (op == JOP_ADD && a.kind == JV_STRING && b.kind == JV_STRING) {
        jinja_buf buf;
        jinja_buf_init(&buf, rt, SIZE_MAX / 2);
        if (!jinja_buf_add(&buf, a.u.str->data, a.u.str->len) || !jinja_buf_add(&buf, b.u.str->data, b.u.str->len)) {
            jinja_buf_free(&buf);
            return false;
        }
        return jinja_buf_to_string(&buf, out);
    }
    if (op == JOP_ADD && a.kind == JV_LIST && b.kind == JV_LIST && a.u.list->is_tuple == b.u.list->is_tuple) {
        if (!jinja_rt_step(rt, a.u.list->len + b.u.list->len) ||
            !jv_list_new(rt, a.u.list->len + b.u.list->len, a.u.list->is_tuple, out))
            return false;
        for (int side = 0; side < 2; side++) {
            const jinja_list *list = side ? b.u.list : a.u.list;
            for (size_t i = 0; i < list->len; i++)
                if (!jv_list_push(rt, *out, jv_copy(list->items[i]))) {
                    jv_release(*out);
                    return false;
                }
        }
        return true;
    }
    if (op == JOP_MUL && (a.kind == JV_STRING || a.kind == JV_LIST) && (b.kind == JV_INT || b.kind == JV_BOOL))
        return repeat(rt, a, num_i(b), out);
    if (op == JOP_MUL && (b.kind == JV_STRING || b.kind == JV_LIST) && (a.kind == JV_INT || a.kind == JV_BOOL))
        return repeat(rt, b, num_i(a), out);
    if (op == JOP_MOD && a.kind == JV_STRING)
        return jinja_error(rt, "printf-style string formatting ('...' %% value) is not supported");
    if (op == JOP_ADD && a.kind == JV_STRING)
        return jinja_error(rt, "can only concatenate str (not \"%s\") to str", jv_type_name(b));
    if (op == JOP_ADD && a.kind == JV_LIST)
        return jinja_error(rt, "can only concatenate %s (not \"%s\") to %s", jv_type_name(a), jv_type_name(b),
                           jv_type_name(a));
    return jinja_error(rt, "unsupported operand type(s) for %s: '%s' and '%s'", binop_symbols[op], jv_type_name(a),
                       jv_type_name(b));
}

/* item in container. */
static bool contains(jinja_rt *rt, jv container, jv item, bool *out)
{
    switch (container.kind) {
    case JV_UNDEFINED: *out = false; return true;
    case JV_STRING:
        if (item.kind == JV_UNDEFINED)
            return jinja_error(rt, "an undefined value used with 'in'");
        if (item.kind != JV_STRING)
            return jinja_error(rt, "'in <string>' requires string as left operand, not %s", jv_type_name(item));
        if (item.u.str->len == 0) {
            *out = true;
            return true;
        }
        *out = jinja_find(container.u.str->data, container.u.str->len, item.u.str->data, item.u.str->len, 0) >= 0;
        return jinja_rt_step(rt, container.u.str->len / 4096);
    case JV_LIST:
        *out = false;
        for (size_t i = 0; i < container.u.list->len && !*out; i++)
            *out = jv_equal(container.u.list->items[i], item);
        return jinja_rt_step(rt, container.u.list->len / 16);
    case JV_DICT:
        if (item.kind == JV_LIST || item.kind == JV_DICT)
            return jinja_error(rt, "unhashable type: '%s'", jv_type_name(item));
        *out = jv_dict_get(container.u.dict, item) != NULL;
        return true;
    default:
        return jinja_error(rt, "argument of type '%s' is not iterable", jv_type_name(container));
    }
}

static const char *const cmp_symbols[] = {"==", "!=", "<", "<=", ">", ">=", "in", "not in"};

static bool compare(jinja_rt *rt, int op, jv a, jv b, bool *out)
{
    int order;
    switch (op) {
    case JCMP_EQ: *out = jv_equal(a, b); return true;
    case JCMP_NE: *out = !jv_equal(a, b); return true;
    case JCMP_IN: return contains(rt, b, a, out);
    case JCMP_NOTIN:
        if (!contains(rt, b, a, out))
            return false;
        *out = !*out;
        return true;
    default:
        if (!jv_compare(rt, a, b, cmp_symbols[op], &order))
            return false;
        if (order == 2) { /* NaN */
            *out = false;
            return true;
        }
        *out = op == JCMP_LT ? order < 0 : op == JCMP_LE ? order <= 0 : op == JCMP_GT ? order > 0 : order >= 0;
        return true;
    }
}

static bool eval_filter(jinja_rt *rt, jinja_frame *frame, const jinja_node *node, const jv *input, jv *out)
{
    if (node->builtin < 0)
        return node->builtin == -2 ? jinja_error(rt, "filter '%s' is not supported by strata", node->name)
                                   : jinja_error(rt, "no filter named '%s'", node->name);
    jv operand;
    if (node->a) {
        if (node->a->kind == JN_FILTER) {
            if (!eval_filter(rt, frame, node->a, input, &operand))
                return false;
        } else if (!eval(rt, frame, node->a, &operand)) {
            return false;
        }
    } else {
        operand = jv_copy(*input);
    }
    call_args ca;
    bool ok = call_args_eval(rt, frame, node, NULL, &ca);
    if (ok) {
        rt->line = node->line;
        ok = jinja_apply_filter(rt, node->builtin, operand, &ca.args, out);
        call_args_free(&ca);
    }
    jv_release(operand);
    return ok;
}

static bool eval_inner(jinja_rt *rt, jinja_frame *frame, const jinja_node *node, jv *out)
{
    jv a = jv_undefined(), b = jv_undefined();
    bool ok = false;
    switch (node->kind) {
    case JN_CONST:
        *out = node->value; /* immortal: no reference to take */
        return true;
    case JN_NAME:
        *out = lookup(rt, frame, node->name);
        return true;
    case JN_GETATTR:
        if (!eval(rt, frame, node->a, &a))
            return false;
        if (a.kind == JV_UNDEFINED) {
            const char *what = node->a->kind == JN_NAME ? node->a->name : NULL;
            ok = what ? jinja_error(rt, "'%s' is undefined", what)
                      : jinja_error(rt, "cannot read attribute '%s' of an undefined value", node->name);
        } else {
            ok = jinja_getattr(rt, a, node->name, out);
        }
        break;
    case JN_GETITEM:
        if (!eval(rt, frame, node->a, &a))
            return false;
        if (a.kind == JV_UNDEFINED) {
            const char *what = node->a->kind == JN_NAME ? node->a->name : NULL;
            ok = what ? jinja_error(rt, "'%s' is undefined", what)
                      : jinja_error(rt, "cannot read an item of an undefined value");
            break;
        }
        if (node->b->kind == JN_SLICE) {
            jv parts[3] = {jv_none(), jv_none(), jv_none()};
            const jinja_node *bounds[3] = {node->b->a, node->b->b, node->b->c};
            ok = true;
            for (int i = 0; i < 3 && ok; i++)
                if (bounds[i])
                    ok = eval(rt, frame, bounds[i], &parts[i]);
            if (ok) {
                if (a.kind == JV_LIST || a.kind == JV_STRING)
                    ok = get_slice(rt, a, parts, out);
                else
                    *out = jv_undefined();
            }
            release_values(parts, 3);
            break;
        }
        if (!eval(rt, frame, node->b, &b))
            break;
        ok = get_item(rt, a, b, out);
        break;
    case JN_CALL: {
        if (!eval(rt, frame, node->a, &a))
            return false;
        if (a.kind == JV_UNDEFINED && node->a->kind == JN_NAME) {
            ok = jinja_error(rt, "'%s' is undefined", node->a->name);
            break;
        }
        call_args ca;
        if (!call_args_eval(rt, frame, node, NULL, &ca))
            break;
        rt->line = node->line;
        ok = jinja_call_value(rt, a, &ca.args, out);
        call_args_free(&ca);
        break;
    }
    case JN_FILTER: return eval_filter(rt, frame, node, NULL, out);
    case JN_TEST: {
        if (node->builtin < 0)
            return node->builtin == -2 ? jinja_error(rt, "test '%s' is not supported by strata", node->name)
                                       : jinja_error(rt, "no test named '%s'", node->name);
        if (!eval(rt, frame, node->a, &a))
            return false;
        call_args ca;
        if (!call_args_eval(rt, frame, node, NULL, &ca))
            break;
        bool result;
        rt->line = node->line;
        ok = jinja_apply_test(rt, node->builtin, a, &ca.args, &result);
        call_args_free(&ca);
        if (ok)
            *out = jv_bool(node->op ? !result : result);
        break;
    }
    case JN_NOT:
        if (!eval(rt, frame, node->a, &a))
            return false;
        *out = jv_bool(!jv_truthy(a));
        ok = true;
        break;
    case JN_NEG:
    case JN_POS:
        if (!eval(rt, frame, node->a, &a))
            return false;
        if (a.kind == JV_FLOAT)
            *out = jv_float(node->kind == JN_NEG ? -a.u.f : a.u.f);
        else if (a.kind == JV_INT || a.kind == JV_BOOL) {
            int64_t v = num_i(a);
            if (node->kind == JN_NEG && v == INT64_MIN)
                return int_overflow(rt);
            *out = jv_int(node->kind == JN_NEG ? -v : v);
        } else {
            ok = jinja_error(rt, "bad operand type for unary %s: '%s'", node->kind == JN_NEG ? "-" : "+",
                             jv_type_name(a));
            break;
        }
        ok = true;
        break;
    case JN_BINOP:
        if (!eval(rt, frame, node->a, &a) || !eval(rt, frame, node->b, &b))
            break;
        rt->line = node->line;
        ok = binary(rt, node->op, a, b, out);
        break;
    case JN_AND:
    case JN_OR:
        if (!eval(rt, frame, node->a, &a))
            return false;
        if (jv_truthy(a) == (node->kind == JN_OR)) {
            *out = a;
            return true;
        }
        jv_release(a);
        return eval(rt, frame, node->b, out);
    case JN_COMPARE: {
        if (!eval(rt, frame, node->a, &a))
            return false;
        bool result = true;
        ok = true;
        for (size_t i = 0; ok && result && i < node->n_args; i++) {
            if (!(ok = eval(rt, frame, node->args[i], &b)))
                break;
            ok = compare(rt, node->ops[i], a, b, &result);
            jv_release(a);
            a = b;
            b = jv_undefined();
        }
        if (ok)
            *out = jv_bool(result);
        break;
    }
    case JN_CONDEXPR:
        if (!eval(rt, frame, node->a, &a))
            return false;
        if (jv_truthy(a))
            ok = eval(rt, frame, node->b, out);
        else if (node->c)
            ok = eval(rt, frame, node->c, out);
        else {
            *out = jv_undefined();
            ok = true;
        }
        break;
    case JN_LIST:
    case JN_TUPLE:
        if (!jv_list_new(rt, node->n_args, node->kind == JN_TUPLE, &a))
            return false;
        ok = true;
        for (size_t i = 0; ok && i < node->n_args; i++)
            ok = eval(rt, frame, node->args[i], &b) && jv_list_push(rt, a, b);
        b = jv_undefined();
        if (ok) {
            *out = a;
            a = jv_undefined();
        }
        break;
    case JN_DICT:
        if (!jv_dict_new(rt, &a))
            return false;
        ok = true;
        for (size_t i = 0; ok && i < node->n_args; i++) {
            jv key, value;
            if (!(ok = eval(rt, frame, node->args[i], &key)))
                break;
            if (!(ok = eval(rt, frame, node->values[i], &value))) {
                jv_release(key);
                break;
            }
            ok = jv_dict_set(rt, a.u.dict, key, value);
        }
        if (ok) {
            *out = a;
            a = jv_undefined();
        }
        break;
    case JN_CONCAT: {
        jinja_buf buf;
        jinja_buf_init(&buf, rt, rt->limits.max_output_bytes);
        ok = true;
        for (size_t i = 0; ok && i < node->n_args; i++) {
            if (!(ok = eval(rt, frame, node->args[i], &b)))
                break;
            ok = jv_append_str(&buf, b);
            jv_release(b);
            b = jv_undefined();
        }
        if (ok)
            ok = jinja_buf_to_string(&buf, out);
        else
            jinja_buf_free(&buf);
        break;
    }
    default:
        ok = jinja_error(rt, "internal error: node %d is not an expression", (int)node->kind);
        break;
    }
    jv_release(a);
    jv_release(b);
    return ok;
}

static bool eval(jinja_rt *rt, jinja_frame *frame, const jinja_node *node, jv *out)
{
    if (!enter(rt, node)) {
        rt->depth--;
        return false;
    }
    bool ok = eval_inner(rt, frame, node, out);
    rt->depth--;
    return ok;
}

/* --- statements ------------------------------------------------------------ */

/* Binds target (a name or a tuple of names) to value (taking its reference). */
static bool assign(jinja_rt *rt, jinja_frame *frame, const jinja_node *target, jv value)
{
    if (target->kind == JN_NAME)
        return frame_set(rt, frame, target->name, value);
    if (target->kind == JN_NSREF) {
        jv ns = lookup(rt, frame, target->name);
        bool ok;
        if (ns.kind != JV_OBJECT || ns.u.obj->cls != JOBJ_NAMESPACE) {
            ok = jinja_error(rt, "cannot assign attribute '%s' on '%s': it is not a namespace", target->attr,
                             target->name);
            jv_release(value);
        } else {
            jv key;
            ok = jv_cstring(rt, target->attr, &key);
            if (ok)
                ok = jv_dict_set(rt, ns.u.obj->attrs, key, value);
            else
                jv_release(value);
        }
        jv_release(ns);
        return ok;
    }
    /* unpacking */
    jv items;
    bool ok = jv_is_iterable(value) && value.kind != JV_UNDEFINED && jv_iterate(rt, value, &items);
    if (!ok && !rt->failed)
        jinja_error(rt, "cannot unpack non-iterable %s object", jv_type_name(value));
    jv_release(value);
    if (!ok)
        return false;
    if (items.u.list->len != target->n_args) {
        ok = items.u.list->len > target->n_args
                 ? jinja_error(rt, "too many values to unpack (expected %zu)", target->n_args)
                 : jinja_error(rt, "not enough values to unpack (expected %zu, got %zu)", target->n_args,
                               items.u.list->len);
    }
    for (size_t i = 0; ok && i < target->n_args; i++)
        ok = frame_set(rt, frame, target->args[i]->name, jv_copy(items.u.list->items[i]));
    jv_release(items);
    return ok;
}

/* Renders body into a new string. */
static bool render_to_string(jinja_rt *rt, jinja_frame *frame, const jinja_node *body, jv *out)
{
    jinja_buf buf;
    jinja_buf_init(&buf, rt, rt->limits.max_output_bytes);
    exec_result result = exec(rt, frame, body, &buf);
    if (result == EXEC_ERROR) {
        jinja_buf_free(&buf);
        return false;
    }
    return jinja_buf_to_string(&buf, out);
}

static bool set_loop_attr(jinja_rt *rt, jv loop, const char *name, jv value)
{
    jv key;
    if (!jv_cstring(rt, name, &key)) {
        jv_release(value);
        return false;
    }
    return jv_dict_set(rt, loop.u.obj->attrs, key, value);
}

static bool remove_loop_attr(jv loop, const char *name)
{
    jv *slot = jv_dict_get_str(loop.u.obj->attrs, name);
    if (slot) {
        jv_release(*slot);
        *slot = jv_undefined();
    }
    return true;
}

static bool update_loop(jinja_rt *rt, jv loop, const jinja_list *items, size_t i)
{
    int64_t n = (int64_t)items->len, k = (int64_t)i;
    return set_loop_attr(rt, loop, "index", jv_int(k + 1)) && set_loop_attr(rt, loop, "index0", jv_int(k)) &&
           set_loop_attr(rt, loop, "revindex", jv_int(n - k)) && set_loop_attr(rt, loop, "revindex0", jv_int(n - k - 1)) &&
           set_loop_attr(rt, loop, "first", jv_bool(i == 0)) && set_loop_attr(rt, loop, "last", jv_bool(k == n - 1)) &&
           set_loop_attr(rt, loop, "length", jv_int(n)) && set_loop_attr(rt, loop, "depth", jv_int(1)) &&
           set_loop_attr(rt, loop, "depth0", jv_int(0)) &&
           (i > 0 ? set_loop_attr(rt, loop, "previtem", jv_copy(items->items[i - 1])) : remove_loop_attr(loop, "previtem")) &&
           (k < n - 1 ? set_loop_attr(rt, loop, "nextitem", jv_copy(items->items[i + 1]))
                      : remove_loop_attr(loop, "nextitem"));
}

static exec_result exec_for(jinja_rt *rt, jinja_frame *frame, const jinja_node *node, jinja_buf *out)
{
    jv iterable, items = jv_undefined(), loop = jv_undefined();
    exec_result result = EXEC_ERROR;
    if (!eval(rt, frame, node->b, &iterable))
        return EXEC_ERROR;
    rt->line = node->line;
    bool ok = jv_iterate(rt, iterable, &items);
    jv_release(iterable);
    if (!ok)
        return EXEC_ERROR;
    if (node->d) {
        /* for x in items if cond: filter first, so loop.* counts what is kept */
        jv kept;
        if (!jv_list_new(rt, 0, false, &kept))
            goto done;
        for (size_t i = 0; i < items.u.list->len; i++) {
            jinja_frame *scope = frame_new(rt, frame);
            jv test = jv_undefined();
            ok = scope && assign(rt, scope, node->a, jv_copy(items.u.list->items[i])) &&
                 eval(rt, scope, node->d, &test);
            bool keep = ok && jv_truthy(test);
            jv_release(test);
            frame_close(scope);
            if (!ok || (keep && !jv_list_push(rt, kept, jv_copy(items.u.list->items[i])))) {
                jv_release(kept);
                goto done;
            }
        }
        jv_release(items);
        items = kept;
    }
    /* loops are not tracked: only a namespace can close a cycle through one */
    if (!jv_object_new(rt, JOBJ_LOOP, &loop))
        goto done;
    const jinja_list *list = items.u.list;
    result = EXEC_OK;
    for (size_t i = 0; i < list->len && result == EXEC_OK; i++) {
        jinja_frame *scope = frame_new(rt, frame);
        if (!scope || !update_loop(rt, loop, list, i) || !frame_set(rt, scope, "loop", jv_copy(loop)) ||
            !assign(rt, scope, node->a, jv_copy(list->items[i]))) {
            frame_close(scope);
            result = EXEC_ERROR;
            break;
        }
        result = exec(rt, scope, node->c, out);
        frame_close(scope);
        if (result == EXEC_CONTINUE)
            result = EXEC_OK;
    }
    if (result == EXEC_BREAK)
        result = EXEC_OK;
    if (result == EXEC_OK && list->len == 0 && node->e)
        result = exec(rt, frame, node->e, out);
done:
    jv_release(loop);
    jv_release(items);
    return result;
}

static exec_result exec_inner(jinja_rt *rt, jinja_frame *frame, const jinja_node *node, jinja_buf *out)
{
    switch (node->kind) {
    case JN_BODY:
        for (size_t i = 0; i < node->n_args; i++) {
            exec_result result = exec(rt, frame, node->args[i], out);
            if (result != EXEC_OK)
                return result;
        }
        return EXEC_OK;
    case JN_DATA:
        return jinja_buf_add(out, node->value.u.str->data, node->value.u.str->len) ? EXEC_OK : EXEC_ERROR;
    case JN_OUTPUT: {
        jv value;
        if (!eval(rt, frame, node->a, &value))
            return EXEC_ERROR;
        bool ok = jv_append_str(out, value);
        jv_release(value);
        return ok ? EXEC_OK : EXEC_ERROR;
    }
    case JN_IF: {
        jv test;
        if (!eval(rt, frame, node->a, &test))
            return EXEC_ERROR;
        bool truthy = jv_truthy(test);
        jv_release(test);
        if (truthy)
            return exec(rt, frame, node->b, out);
        return node->c ? exec(rt, frame, node->c, out) : EXEC_OK;
    }
    case JN_FOR: return exec_for(rt, frame, node, out);
    case JN_SET: {
        jv value;
        if (!eval(rt, frame, node->b, &value))
            return EXEC_ERROR;
        rt->line = node->line;
        return assign(rt, frame, node->a, value) ? EXEC_OK : EXEC_ERROR;
    }
    case JN_SET_BLOCK:
    case JN_FILTER_BLOCK: {
        jv text, value;
        if (!render_to_string(rt, frame, node->b, &text))
            return EXEC_ERROR;
        if (node->c) {
            bool ok = eval_filter(rt, frame, node->c, &text, &value);
            jv_release(text);
            if (!ok)
                return EXEC_ERROR;
        } else {
            value = text;
        }
        if (node->kind == JN_SET_BLOCK)
            return assign(rt, frame, node->a, value) ? EXEC_OK : EXEC_ERROR;
        bool ok = jv_append_str(out, value);
        jv_release(value);
        return ok ? EXEC_OK : EXEC_ERROR;
    }
    case JN_MACRO: {
        jinja_macro *macro = jinja_alloc(rt, sizeof *macro);
        if (!macro)
            return EXEC_ERROR;
        *macro = (jinja_macro){.hdr.refs = 1, .def = node, .closure = frame};
        frame->refs++;
        return frame_set(rt, frame, node->name, (jv){.kind = JV_MACRO, .u.macro = macro}) ? EXEC_OK : EXEC_ERROR;
    }
    case JN_WITH: {
        jinja_frame *scope = frame_new(rt, frame);
        if (!scope)
            return EXEC_ERROR;
        exec_result result = EXEC_OK;
        for (size_t i = 0; i < node->n_args && result == EXEC_OK; i++) {
            jv value;
            /* the values are read in the outer scope, as jinja2 does */
            if (!eval(rt, frame, node->values[i], &value) || !assign(rt, scope, node->args[i], value))
                result = EXEC_ERROR;
        }
        if (result == EXEC_OK)
            result = exec(rt, scope, node->b, out);
        frame_close(scope);
        return result;
    }
    case JN_BREAK: return EXEC_BREAK;
    case JN_CONTINUE: return EXEC_CONTINUE;
    default: {
        jv value;
        if (!eval(rt, frame, node, &value))
            return EXEC_ERROR;
        jv_release(value);
        return EXEC_OK;
    }
    }
}

static exec_result exec(jinja_rt *rt, jinja_frame *frame, const jinja_node *node, jinja_buf *out)
{
    if (!enter(rt, node)) {
        rt->depth--;
        return EXEC_ERROR;
    }
    exec_result result = exec_inner(rt, frame, node, out);
    rt->depth--;
    if (result == EXEC_ERROR && !rt->failed)
        jinja_error(rt, "internal error: a statement failed without a message");
    return result;
}

strata_status jinja_render(const jinja_template *tmpl, jv globals, const jinja_limits *limits, const jinja_time *now,
                           char **out, size_t *out_len, strata_error *err)
{
    *out = NULL;
    *out_len = 0;
    jinja_rt *rt = jinja_rt_new(limits);
    if (!rt)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    rt->name = jinja_template_name(tmpl);
    rt->globals = globals;
    if (rt->limits.max_seconds > 0)
        rt->deadline = monotonic_seconds() + rt->limits.max_seconds;
    if (now)
        rt->now = *now;
    jinja_buf buf;
    jinja_buf_init(&buf, rt, rt->limits.max_output_bytes);
    jinja_frame *root = frame_new(rt, NULL);
    exec_result result = root ? exec(rt, root, jinja_template_root(tmpl), &buf) : EXEC_ERROR;
    frame_close(root);
    strata_status status = STRATA_OK;
    if (result != EXEC_OK) {
        if (rt->raised)
            status = strata_fail(err, STRATA_INVALID_INPUT, "%s line %d: the template raised an error: %s", rt->name,
                                 rt->line, rt->message);
        else
            status = strata_fail(err, STRATA_INVALID_INPUT, "%s line %d: %s", rt->name, rt->line,
                                 rt->message[0] ? rt->message : "rendering failed");
        jinja_buf_free(&buf);
    } else {
        if (!buf.data) {
            buf.data = calloc(1, 1);
            if (!buf.data)
                status = strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
        }
        *out = buf.data;
        *out_len = buf.len;
    }
    jinja_rt_free(rt);
    return status;
}
