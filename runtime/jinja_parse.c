/* The Jinja parser: tokens to a syntax tree, following jinja2's grammar
 * (parser.py) for expressions, operator precedence and the statements
 * chat templates use. Unsupported tags are errors naming them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_syntax.h"

/* Syntax nests at most this deep (brackets, operators, blocks), which
 * bounds the recursion of both the parser and the evaluator. */
#define PARSE_MAX_DEPTH 200

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    max_align_t data[];
} arena_chunk;

struct jinja_template {
    char *name;
    jinja_node *root;
    arena_chunk *chunks;
    jv *constants;      /* immortal values the tree holds, freed with it */
    size_t n_constants, cap_constants;
};

typedef struct parser {
    jinja_template *tmpl;
    const jinja_tokens *tokens;
    size_t pos;
    int depth;
    int loop_depth;     /* for loops around the current statement (break/continue) */
    int macro_depth;
    strata_error *err;
    bool failed;
} parser;

static void *arena_alloc(parser *p, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    arena_chunk *chunk = p->tmpl->chunks;
    if (!chunk || chunk->size - chunk->used < size) {
        size_t chunk_size = size > 16384 ? size : 16384;
        chunk = malloc(sizeof *chunk + chunk_size);
        if (!chunk) {
            if (!p->failed)
                strata_fail(p->err, STRATA_OUT_OF_MEMORY, "%s: out of memory while parsing", p->tmpl->name);
            p->failed = true;
            return NULL;
        }
        chunk->next = p->tmpl->chunks;
        chunk->used = 0;
        chunk->size = chunk_size;
        p->tmpl->chunks = chunk;
    }
    void *out = (char *)chunk->data + chunk->used;
    chunk->used += size;
    memset(out, 0, size);
    return out;
}

static bool fail(parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(parser *p, int line, const char *fmt, ...)
{
    if (p->failed)
        return false;
    char message[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    strata_fail(p->err, STRATA_INVALID_INPUT, "%s line %d: %s", p->tmpl->name, line, message);
    p->failed = true;
    return false;
}

static const jinja_token *cur(const parser *p)
{
    return &p->tokens->items[p->pos];
}

static const jinja_token *peek(const parser *p, size_t ahead)
{
    size_t i = p->pos + ahead;
    return &p->tokens->items[i < p->tokens->len ? i : p->tokens->len - 1];
}

static void advance(parser *p)
{
    if (cur(p)->type != JT_EOF)
        p->pos++;
}

static bool tok_is(const jinja_token *t, jinja_token_type type, const char *text)
{
    if (t->type != type)
        return false;
    if (!text)
        return true;
    size_t n = strlen(text);
    return t->len == n && memcmp(t->text, text, n) == 0;
}

static bool is_op(const parser *p, const char *op) { return tok_is(cur(p), JT_OP, op); }
static bool is_name(const parser *p, const char *name) { return tok_is(cur(p), JT_NAME, name); }

static bool skip_op(parser *p, const char *op)
{
    if (!is_op(p, op))
        return false;
    advance(p);
    return true;
}

static bool skip_name(parser *p, const char *name)
{
    if (!is_name(p, name))
        return false;
    advance(p);
    return true;
}

/* A token as the messages show it: "'endfor'", "end of template", ... */
static void describe(const jinja_token *t, char *buf, size_t size)
{
    switch (t->type) {
    case JT_EOF: snprintf(buf, size, "end of template"); break;
    case JT_BLOCK_END: snprintf(buf, size, "end of statement block"); break;
    case JT_VAR_END: snprintf(buf, size, "end of print statement"); break;
    case JT_BLOCK_BEGIN: snprintf(buf, size, "begin of statement block"); break;
    case JT_VAR_BEGIN: snprintf(buf, size, "begin of print statement"); break;
    case JT_DATA: snprintf(buf, size, "template data"); break;
    default: snprintf(buf, size, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->text); break;
    }
}

static bool expect_op(parser *p, const char *op)
{
    if (skip_op(p, op))
        return true;
    char got[64];
    describe(cur(p), got, sizeof got);
    return fail(p, cur(p)->line, "expected '%s', got %s", op, got);
}

static bool expect_type(parser *p, jinja_token_type type, const char *what)
{
    if (cur(p)->type == type) {
        advance(p);
        return true;
    }
    char got[64];
    describe(cur(p), got, sizeof got);
    return fail(p, cur(p)->line, "expected %s, got %s", what, got);
}

static char *copy_text(parser *p, const char *text, size_t len)
{
    char *out = arena_alloc(p, len + 1);
    if (out) {
        memcpy(out, text, len);
        out[len] = '\0';
    }
    return out;
}

static const char *expect_name(parser *p)
{
    const jinja_token *t = cur(p);
    if (t->type != JT_NAME) {
        char got[64];
        describe(t, got, sizeof got);
        fail(p, t->line, "expected a name, got %s", got);
        return NULL;
    }
    advance(p);
    return copy_text(p, t->text, t->len);
}

static jinja_node *node_new(parser *p, jinja_node_kind kind, int line)
{
    jinja_node *node = arena_alloc(p, sizeof *node);
    if (node) {
        node->kind = kind;
        node->line = line;
    }
    return node;
}

static bool add_constant(parser *p, jv value)
{
    jinja_template *t = p->tmpl;
    if (t->n_constants == t->cap_constants) {
        size_t cap = t->cap_constants ? t->cap_constants * 2 : 32;
        jv *grown = realloc(t->constants, cap * sizeof *grown);
        if (!grown) {
            jv_release(value);
            return fail(p, cur(p)->line, "out of memory");
        }
        t->constants = grown;
        t->cap_constants = cap;
    }
    jv_make_immortal(value);
    t->constants[t->n_constants++] = value;
    return true;
}

static jinja_node *const_string(parser *p, jinja_node_kind kind, int line, const char *text, size_t len)
{
    jinja_node *node = node_new(p, kind, line);
    jv value;
    if (!node)
        return NULL;
    if (!jv_string(NULL, text, len, &value)) {
        fail(p, line, "out of memory");
        return NULL;
    }
    if (!add_constant(p, value))
        return NULL;
    node->value = value;
    return node;
}

/* A growable list of nodes, copied into the arena when done. */
typedef struct node_vec {
    jinja_node **items;
    size_t len, cap;
} node_vec;

static bool vec_push(parser *p, node_vec *vec, jinja_node *node)
{
    if (vec->len == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 8;
        jinja_node **grown = realloc(vec->items, cap * sizeof *grown);
        if (!grown)
            return fail(p, cur(p)->line, "out of memory");
        vec->items = grown;
        vec->cap = cap;
    }
    vec->items[vec->len++] = node;
    return true;
}

static jinja_node **vec_finish(parser *p, node_vec *vec)
{
    jinja_node **out = NULL;
    if (vec->len && (out = arena_alloc(p, vec->len * sizeof *out)))
        memcpy(out, vec->items, vec->len * sizeof *out);
    free(vec->items);
    vec->items = NULL;
    return out;
}

static bool enter(parser *p)
{
    if (++p->depth > PARSE_MAX_DEPTH)
        return fail(p, cur(p)->line, "nested more than %d deep", PARSE_MAX_DEPTH);
    return true;
}

/* --- expressions ------------------------------------------------------------ */

static jinja_node *parse_expression(parser *p, bool with_condexpr);
static jinja_node *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                               bool explicit_parens);
static jinja_node *parse_primary(parser *p);
static jinja_node *parse_postfix(parser *p, jinja_node *node);
static jinja_node *parse_filter_expr(parser *p, jinja_node *node);

/* (args, kw=value, ...) into node's args and kw lists. */
static bool parse_call_args(parser *p, jinja_node *node)
{
    int line = cur(p)->line;
    if (!expect_op(p, "("))
        return false;
    node_vec args = {0}, kw_values = {0};
    const char **kw_names = NULL;
    size_t kw_cap = 0;
    bool ok = true, need_comma = false;
    while (ok && !is_op(p, ")")) {
        if (need_comma) {
            if (!(ok = expect_op(p, ",")))
                break;
            if (is_op(p, ")"))
                break;
        }
        if (is_op(p, "*") || is_op(p, "**")) {
            ok = fail(p, line, "*args and **kwargs in calls are not supported");
            break;
        }
        if (cur(p)->type == JT_NAME && tok_is(peek(p, 1), JT_OP, "=")) {
            const char *name = copy_text(p, cur(p)->text, cur(p)->len);
            advance(p);
            advance(p);
            jinja_node *value = parse_expression(p, true);
            if (!name || !value) {
                ok = false;
                break;
            }
            if (kw_values.len == kw_cap) {
                kw_cap = kw_cap ? kw_cap * 2 : 4;
                const char **grown = realloc(kw_names, kw_cap * sizeof *grown);
                if (!grown) {
                    ok = fail(p, line, "out of memory");
                    break;
                }
                kw_names = grown;
            }
            kw_names[kw_values.len] = name;
            ok = vec_push(p, &kw_values, value);
        } else {
            if (kw_values.len) {
                ok = fail(p, line, "invalid syntax for function call expression (a positional argument after a "
                                   "keyword argument)");
                break;
            }
            jinja_node *arg = parse_expression(p, true);
            ok = arg && vec_push(p, &args, arg);
        }
        need_comma = true;
    }
    if (ok)
        ok = expect_op(p, ")");
    node->n_args = args.len;
    node->args = vec_finish(p, &args);
    node->n_kw = kw_values.len;
    node->kw_values = vec_finish(p, &kw_values);
    if (ok && node->n_kw) {
        node->kw_names = arena_alloc(p, node->n_kw * sizeof *node->kw_names);
        if (node->kw_names)
            memcpy(node->kw_names, kw_names, node->n_kw * sizeof *kw_names);
        ok = node->kw_names != NULL;
    }
    free(kw_names);
    return ok && !p->failed;
}

/* A dotted name after '|' or 'is'. */
static const char *parse_dotted_name(parser *p)
{
    const char *name = expect_name(p);
    while (name && is_op(p, ".")) {
        advance(p);
        const char *part = expect_name(p);
        if (!part)
            return NULL;
        size_t a = strlen(name), b = strlen(part);
        char *joined = arena_alloc(p, a + b + 2);
        if (!joined)
            return NULL;
        memcpy(joined, name, a);
        joined[a] = '.';
        memcpy(joined + a + 1, part, b + 1);
        name = joined;
    }
    return name;
}

/* node|f1|f2(...): start_inline parses a chain with no leading '|' (the
 * head of a filter block). */
static jinja_node *parse_filter(parser *p, jinja_node *node, bool start_inline)
{
    while (is_op(p, "|") || start_inline) {
        if (!start_inline)
            advance(p);
        int line = cur(p)->line;
        const char *name = parse_dotted_name(p);
        if (!name)
            return NULL;
        jinja_node *filter = node_new(p, JN_FILTER, line);
        if (!filter)
            return NULL;
        filter->a = node;
        filter->name = name;
        filter->builtin = jinja_find_filter(name);
        if (is_op(p, "(") && !parse_call_args(p, filter))
            return NULL;
        node = filter;
        start_inline = false;
    }
    return node;
}

static jinja_node *parse_test(parser *p, jinja_node *node)
{
    int line = cur(p)->line;
    advance(p); /* is */
    bool negated = skip_name(p, "not");
    const char *name = parse_dotted_name(p);
    if (!name)
        return NULL;
    jinja_node *test = node_new(p, JN_TEST, line);
    if (!test)
        return NULL;
    test->a = node;
    test->name = name;
    test->op = negated;
    test->builtin = jinja_find_test(name);
    const jinja_token *t = cur(p);
    if (is_op(p, "(")) {
        if (!parse_call_args(p, test))
            return NULL;
    } else if ((t->type == JT_NAME || t->type == JT_STRING || t->type == JT_INT || t->type == JT_FLOAT ||
                tok_is(t, JT_OP, "[") || tok_is(t, JT_OP, "{")) &&
               !tok_is(t, JT_NAME, "else") && !tok_is(t, JT_NAME, "or") && !tok_is(t, JT_NAME, "and")) {
        if (tok_is(t, JT_NAME, "is")) {
            fail(p, t->line, "You cannot chain multiple tests with is");
            return NULL;
        }
        jinja_node *arg = parse_primary(p);
        if (!arg || !(arg = parse_postfix(p, arg)))
            return NULL;
        test->args = arena_alloc(p, sizeof *test->args);
        if (!test->args)
            return NULL;
        test->args[0] = arg;
        test->n_args = 1;
    }
    return test;
}

/* [a], [a:b:c] or .name after node. */
static jinja_node *parse_subscript(parser *p, jinja_node *node)
{
    const jinja_token *t = cur(p);
    int line = t->line;
    advance(p);
    if (tok_is(t, JT_OP, ".")) {
        const jinja_token *attr = cur(p);
        if (attr->type == JT_NAME) {
            advance(p);
            jinja_node *get = node_new(p, JN_GETATTR, line);
            if (!get)
                return NULL;
            get->a = node;
            get->name = copy_text(p, attr->text, attr->len);
            return get->name ? get : NULL;
        }
        if (attr->type != JT_INT) {
            fail(p, attr->line, "expected name or number after '.'");
            return NULL;
        }
        advance(p);
        jinja_node *get = node_new(p, JN_GETITEM, line), *index = node_new(p, JN_CONST, line);
        if (!get || !index)
            return NULL;
        index->value = jv_int(attr->i);
        get->a = node;
        get->b = index;
        return get;
    }
    /* '[' subscript (',' subscript)* ']' */
    node_vec parts = {0};
    while (!is_op(p, "]")) {
        if (parts.len && !expect_op(p, ","))
            goto fail;
        int sub_line = cur(p)->line;
        jinja_node *start = NULL, *stop = NULL, *step = NULL;
        if (!is_op(p, ":")) {
            if (!(start = parse_expression(p, true)))
                goto fail;
            if (!is_op(p, ":")) {
                if (!vec_push(p, &parts, start))
                    goto fail;
                continue;
            }
        }
        advance(p); /* ':' */
        if (!is_op(p, "]") && !is_op(p, ",") && !is_op(p, ":") && !(stop = parse_expression(p, true)))
            goto fail;
        if (skip_op(p, ":") && !is_op(p, "]") && !is_op(p, ",") && !(step = parse_expression(p, true)))
            goto fail;
        jinja_node *slice = node_new(p, JN_SLICE, sub_line);
        if (!slice)
            goto fail;
        slice->a = start;
        slice->b = stop;
        slice->c = step;
        if (!vec_push(p, &parts, slice))
            goto fail;
    }
    advance(p); /* ']' */
    if (parts.len == 0) {
        fail(p, line, "expected a subscript expression");
        goto fail;
    }
    jinja_node *get = node_new(p, JN_GETITEM, line);
    if (!get)
        goto fail;
    get->a = node;
    if (parts.len == 1) {
        get->b = parts.items[0];
        free(parts.items);
    } else {
        jinja_node *tuple = node_new(p, JN_TUPLE, line);
        if (!tuple)
            goto fail;
        tuple->n_args = parts.len;
        tuple->args = vec_finish(p, &parts);
        get->b = tuple;
    }
    return get;
fail:
    free(parts.items);
    return NULL;
}

static jinja_node *parse_postfix(parser *p, jinja_node *node)
{
    while (node) {
        if (is_op(p, ".") || is_op(p, "[")) {
            node = parse_subscript(p, node);
        } else if (is_op(p, "(")) {
            jinja_node *call = node_new(p, JN_CALL, cur(p)->line);
            if (!call)
                return NULL;
            call->a = node;
            if (!parse_call_args(p, call))
                return NULL;
            node = call;
        } else {
            break;
        }
    }
    return node;
}

static jinja_node *parse_filter_expr(parser *p, jinja_node *node)
{
    while (node) {
        if (is_op(p, "|")) {
            node = parse_filter(p, node, false);
        } else if (is_name(p, "is")) {
            node = parse_test(p, node);
        } else if (is_op(p, "(")) {
            jinja_node *call = node_new(p, JN_CALL, cur(p)->line);
            if (!call)
                return NULL;
            call->a = node;
            if (!parse_call_args(p, call))
                return NULL;
            node = call;
        } else {
            break;
        }
    }
    return node;
}

static jinja_node *parse_list_or_dict(parser *p, bool is_dict)
{
    int line = cur(p)->line;
    advance(p);
    const char *close = is_dict ? "}" : "]";
    node_vec items = {0}, values = {0};
    while (!is_op(p, close)) {
        if (items.len && !expect_op(p, ","))
            goto fail;
        if (is_op(p, close))
            break;
        jinja_node *item = parse_expression(p, true);
        if (!item || !vec_push(p, &items, item))
            goto fail;
        if (is_dict) {
            jinja_node *value;
            if (!expect_op(p, ":") || !(value = parse_expression(p, true)) || !vec_push(p, &values, value))
                goto fail;
        }
    }
    advance(p);
    jinja_node *node = node_new(p, is_dict ? JN_DICT : JN_LIST, line);
    if (!node)
        goto fail;
    node->n_args = items.len;
    node->args = vec_finish(p, &items);
    node->values = vec_finish(p, &values);
    return node;
fail:
    free(items.items);
    free(values.items);
    return NULL;
}

static jinja_node *parse_primary(parser *p)
{
    const jinja_token *t = cur(p);
    if (!enter(p))
        return NULL;
    jinja_node *node = NULL;
    if (t->type == JT_NAME) {
        advance(p);
        if (tok_is(t, JT_NAME, "true") || tok_is(t, JT_NAME, "True") || tok_is(t, JT_NAME, "false") ||
            tok_is(t, JT_NAME, "False")) {
            if ((node = node_new(p, JN_CONST, t->line)))
                node->value = jv_bool(t->text[0] == 't' || t->text[0] == 'T');
        } else if (tok_is(t, JT_NAME, "none") || tok_is(t, JT_NAME, "None")) {
            if ((node = node_new(p, JN_CONST, t->line)))
                node->value = jv_none();
        } else if ((node = node_new(p, JN_NAME, t->line))) {
            node->name = copy_text(p, t->text, t->len);
        }
    } else if (t->type == JT_STRING) {
        /* adjacent literals join: 'a' "b" == 'ab' */
        jinja_buf buf;
        jinja_buf_init(&buf, NULL, SIZE_MAX / 2);
        bool ok = true;
        while (ok && cur(p)->type == JT_STRING) {
            ok = jinja_buf_add(&buf, cur(p)->str, cur(p)->str_len);
            advance(p);
        }
        if (ok)
            node = const_string(p, JN_CONST, t->line, buf.data ? buf.data : "", buf.len);
        else
            fail(p, t->line, "out of memory");
        jinja_buf_free(&buf);
    } else if (t->type == JT_INT || t->type == JT_FLOAT) {
        advance(p);
        if ((node = node_new(p, JN_CONST, t->line)))
            node->value = t->type == JT_INT ? jv_int(t->i) : jv_float(t->f);
    } else if (tok_is(t, JT_OP, "(")) {
        advance(p);
        node = parse_tuple(p, false, true, NULL, true);
        if (node && !expect_op(p, ")"))
            node = NULL;
    } else if (tok_is(t, JT_OP, "[")) {
        node = parse_list_or_dict(p, false);
    } else if (tok_is(t, JT_OP, "{")) {
        node = parse_list_or_dict(p, true);
    } else {
        char got[64];
        describe(t, got, sizeof got);
        fail(p, t->line, "unexpected %s", got);
    }
    p->depth--;
    return node;
}

static jinja_node *parse_unary(parser *p, bool with_filter)
{
    int line = cur(p)->line;
    if (!enter(p))
        return NULL;
    jinja_node *node;
    if (is_op(p, "-") || is_op(p, "+")) {
        bool neg = is_op(p, "-");
        advance(p);
        jinja_node *operand = parse_unary(p, false);
        node = operand ? node_new(p, neg ? JN_NEG : JN_POS, line) : NULL;
        if (node)
            node->a = operand;
    } else {
        node = parse_primary(p);
    }
    node = parse_postfix(p, node);
    if (with_filter)
        node = parse_filter_expr(p, node);
    p->depth--;
    return node;
}

static jinja_node *binop(parser *p, int op, int line, jinja_node *left, jinja_node *right)
{
    if (!left || !right)
        return NULL;
    jinja_node *node = node_new(p, JN_BINOP, line);
    if (node) {
        node->op = op;
        node->a = left;
        node->b = right;
    }
    return node;
}

static jinja_node *parse_pow(parser *p)
{
    jinja_node *left = parse_unary(p, true);
    while (left && is_op(p, "**")) {
        int line = cur(p)->line;
        advance(p);
        left = binop(p, JOP_POW, line, left, parse_unary(p, true));
    }
    return left;
}

static jinja_node *parse_math2(parser *p)
{
    jinja_node *left = parse_pow(p);
    while (left) {
        int op = is_op(p, "*") ? JOP_MUL : is_op(p, "/") ? JOP_DIV : is_op(p, "//") ? JOP_FLOORDIV
               : is_op(p, "%") ? JOP_MOD : -1;
        if (op < 0)
            break;
        int line = cur(p)->line;
        advance(p);
        left = binop(p, op, line, left, parse_pow(p));
    }
    return left;
}

static jinja_node *parse_concat(parser *p)
{
    int line = cur(p)->line;
    jinja_node *first = parse_math2(p);
    if (!first || !is_op(p, "~"))
        return first;
    node_vec parts = {0};
    if (!vec_push(p, &parts, first))
        return NULL;
    while (skip_op(p, "~")) {
        jinja_node *next = parse_math2(p);
        if (!next || !vec_push(p, &parts, next)) {
            free(parts.items);
            return NULL;
        }
    }
    jinja_node *node = node_new(p, JN_CONCAT, line);
    if (!node) {
        free(parts.items);
        return NULL;
    }
    node->n_args = parts.len;
    node->args = vec_finish(p, &parts);
    return node;
}

static jinja_node *parse_math1(parser *p)
{
    jinja_node *left = parse_concat(p);
    while (left && (is_op(p, "+") || is_op(p, "-"))) {
        int op = is_op(p, "+") ? JOP_ADD : JOP_SUB;
        int line = cur(p)->line;
        advance(p);
        left = binop(p, op, line, left, parse_concat(p));
    }
    return left;
}

static jinja_node *parse_compare(parser *p)
{
    int line = cur(p)->line;
    jinja_node *expr = parse_math1(p);
    if (!expr)
        return NULL;
    node_vec operands = {0};
    int *ops = NULL;
    size_t ops_cap = 0;
    while (true) {
        int op = is_op(p, "==") ? JCMP_EQ : is_op(p, "!=") ? JCMP_NE : is_op(p, "<") ? JCMP_LT
               : is_op(p, "<=") ? JCMP_LE : is_op(p, ">") ? JCMP_GT : is_op(p, ">=") ? JCMP_GE
               : is_name(p, "in") ? JCMP_IN : -1;
        if (op >= 0) {
            advance(p);
        } else if (is_name(p, "not") && tok_is(peek(p, 1), JT_NAME, "in")) {
            advance(p);
            advance(p);
            op = JCMP_NOTIN;
        } else {
            break;
        }
        jinja_node *operand = parse_math1(p);
        if (!operand || !vec_push(p, &operands, operand))
            goto fail;
        if (operands.len > ops_cap) {
            ops_cap = ops_cap ? ops_cap * 2 : 4;
            int *grown = realloc(ops, ops_cap * sizeof *ops);
            if (!grown) {
                fail(p, line, "out of memory");
                goto fail;
            }
            ops = grown;
        }
        ops[operands.len - 1] = op;
    }
    if (!operands.len)
        return expr;
    jinja_node *node = node_new(p, JN_COMPARE, line);
    if (!node)
        goto fail;
    node->a = expr;
    node->n_args = operands.len;
    node->ops = arena_alloc(p, operands.len * sizeof *node->ops);
    if (!node->ops)
        goto fail;
    memcpy(node->ops, ops, operands.len * sizeof *ops);
    node->args = vec_finish(p, &operands);
    free(ops);
    return node;
fail:
    free(operands.items);
    free(ops);
    return NULL;
}

static jinja_node *parse_not(parser *p)
{
    if (is_name(p, "not")) {
        int line = cur(p)->line;
        advance(p);
        if (!enter(p))
            return NULL;
        jinja_node *operand = parse_not(p);
        p->depth--;
        jinja_node *node = operand ? node_new(p, JN_NOT, line) : NULL;
        if (node)
            node->a = operand;
        return node;
    }
    return parse_compare(p);
}

static jinja_node *parse_and(parser *p)
{
    jinja_node *left = parse_not(p);
    while (left && is_name(p, "and")) {
        int line = cur(p)->line;
        advance(p);
        jinja_node *right = parse_not(p);
        jinja_node *node = right ? node_new(p, JN_AND, line) : NULL;
        if (node) {
            node->a = left;
            node->b = right;
        }
        left = node;
    }
    return left;
}

static jinja_node *parse_or(parser *p)
{
    jinja_node *left = parse_and(p);
    while (left && is_name(p, "or")) {
        int line = cur(p)->line;
        advance(p);
        jinja_node *right = parse_and(p);
        jinja_node *node = right ? node_new(p, JN_OR, line) : NULL;
        if (node) {
            node->a = left;
            node->b = right;
        }
        left = node;
    }
    return left;
}

static jinja_node *parse_condexpr(parser *p)
{
    int line = cur(p)->line;
    jinja_node *expr = parse_or(p);
    while (expr && is_name(p, "if")) {
        advance(p);
        jinja_node *test = parse_or(p), *otherwise = NULL;
        if (!test)
            return NULL;
        if (skip_name(p, "else") && !(otherwise = parse_condexpr(p)))
            return NULL;
        jinja_node *node = node_new(p, JN_CONDEXPR, line);
        if (!node)
            return NULL;
        node->a = test;
        node->b = expr;
        node->c = otherwise;
        expr = node;
        line = cur(p)->line;
    }
    return expr;
}

static jinja_node *parse_expression(parser *p, bool with_condexpr)
{
    if (!enter(p))
        return NULL;
    jinja_node *node = with_condexpr ? parse_condexpr(p) : parse_or(p);
    p->depth--;
    return node;
}

static bool is_tuple_end(parser *p, const char *extra_end)
{
    const jinja_token *t = cur(p);
    return t->type == JT_VAR_END || t->type == JT_BLOCK_END || t->type == JT_EOF || tok_is(t, JT_OP, ")") ||
           (extra_end && tok_is(t, JT_NAME, extra_end));
}

/* Expressions separated by commas: a tuple when there is a comma, else the
 * one expression. simplified: names and literals only (assignment targets). */
static jinja_node *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                               bool explicit_parens)
{
    int line = cur(p)->line;
    node_vec items = {0};
    bool is_tuple = false;
    while (true) {
        if (items.len && !expect_op(p, ","))
            goto fail;
        if (is_tuple_end(p, extra_end))
            break;
        jinja_node *item = simplified ? parse_primary(p) : parse_expression(p, with_condexpr);
        if (!item || !vec_push(p, &items, item))
            goto fail;
        if (is_op(p, ","))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (items.len) {
            jinja_node *only = items.items[0];
            free(items.items);
            return only;
        }
        if (!explicit_parens) {
            char got[64];
            describe(cur(p), got, sizeof got);
            fail(p, cur(p)->line, "expected an expression, got %s", got);
            goto fail;
        }
    }
    jinja_node *node = node_new(p, JN_TUPLE, line);
    if (!node)
        goto fail;
    node->n_args = items.len;
    node->args = vec_finish(p, &items);
    return node;
fail:
    free(items.items);
    return NULL;
}

/* --- statements ------------------------------------------------------------- */

static jinja_node *subparse(parser *p, const char *const *end_names);

/* Whether the block at the cursor starts with one of end_names. */
static bool at_end_name(const parser *p, const char *const *end_names)
{
    for (size_t i = 0; end_names && end_names[i]; i++)
        if (is_name(p, end_names[i]))
            return true;
    return false;
}

/* ':'? '%}' body, up to a block starting with one of end_names (the cursor
 * is left on that name). */
static jinja_node *parse_statements(parser *p, const char *const *end_names, const char *construct, int line)
{
    skip_op(p, ":");
    if (!expect_type(p, JT_BLOCK_END, "end of statement block"))
        return NULL;
    jinja_node *body = subparse(p, end_names);
    if (body && cur(p)->type == JT_EOF) {
        fail(p, line, "unexpected end of template: '%s' (line %d) is never closed by '%s'", construct, line,
             end_names[0]);
        return NULL;
    }
    return body;
}

/* The end tag's name (already checked) and its '%}'. */
static bool finish_end_tag(parser *p)
{
    advance(p);
    return expect_type(p, JT_BLOCK_END, "end of statement block");
}

/* A target of set/for/with: a name, a tuple of names, or ns.attr. */
static jinja_node *parse_assign_target(parser *p, bool with_tuple, bool with_namespace, const char *extra_end)
{
    const jinja_token *t = cur(p);
    jinja_node *target;
    if (with_namespace && t->type == JT_NAME && tok_is(peek(p, 1), JT_OP, ".")) {
        target = node_new(p, JN_NSREF, t->line);
        if (!target || !(target->name = expect_name(p)))
            return NULL;
        advance(p);
        if (!(target->attr = expect_name(p)))
            return NULL;
        return target;
    }
    target = with_tuple ? parse_tuple(p, true, true, extra_end, false) : parse_primary(p);
    if (!target)
        return NULL;
    if (target->kind == JN_NAME)
        return target;
    if (target->kind == JN_TUPLE) {
        for (size_t i = 0; i < target->n_args; i++)
            if (target->args[i]->kind != JN_NAME) {
                fail(p, t->line, "can only assign to names here");
                return NULL;
            }
        return target;
    }
    fail(p, t->line, "can't assign to this expression");
    return NULL;
}

static bool is_reserved_target(const jinja_node *target)
{
    if (target->kind == JN_NAME)
        return !strcmp(target->name, "true") || !strcmp(target->name, "false") || !strcmp(target->name, "none") ||
               !strcmp(target->name, "True") || !strcmp(target->name, "False") || !strcmp(target->name, "None");
    return false;
}

static jinja_node *parse_for(parser *p, int line)
{
    static const char *const body_end[] = {"endfor", "else", NULL};
    static const char *const else_end[] = {"endfor", NULL};
    jinja_node *node = node_new(p, JN_FOR, line);
    if (!node || !(node->a = parse_assign_target(p, true, false, "in")))
        return NULL;
    if (node->a->kind == JN_NSREF || is_reserved_target(node->a)) {
        fail(p, line, "can't assign to this loop target");
        return NULL;
    }
    if (!skip_name(p, "in")) {
        fail(p, cur(p)->line, "expected 'in' in a for loop");
        return NULL;
    }
    if (!(node->b = parse_tuple(p, false, false, "recursive", false)))
        return NULL;
    if (skip_name(p, "if") && !(node->d = parse_expression(p, true)))
        return NULL;
    if (is_name(p, "recursive")) {
        fail(p, cur(p)->line, "recursive for loops are not supported");
        return NULL;
    }
    p->loop_depth++;
    node->c = parse_statements(p, body_end, "for", line);
    p->loop_depth--;
    if (!node->c)
        return NULL;
    if (is_name(p, "else")) {
        /* the else branch runs outside the loop: break is not allowed there */
        int saved = p->loop_depth;
        p->loop_depth = 0;
        advance(p);
        node->e = parse_statements(p, else_end, "for", line);
        p->loop_depth = saved;
        if (!node->e)
            return NULL;
    }
    return finish_end_tag(p) ? node : NULL;
}

static jinja_node *parse_if(parser *p, int line)
{
    static const char *const body_end[] = {"endif", "elif", "else", NULL};
    static const char *const else_end[] = {"endif", NULL};
    jinja_node *node = node_new(p, JN_IF, line);
    if (!node || !(node->a = parse_tuple(p, false, false, NULL, false)) ||
        !(node->b = parse_statements(p, body_end, "if", line)))
        return NULL;
    if (is_name(p, "elif")) {
        int elif_line = cur(p)->line;
        advance(p);
        /* an elif is an if nested in the else branch, ending at the same endif */
        if (!enter(p))
            return NULL;
        node->c = parse_if(p, elif_line);
        p->depth--;
        return node->c ? node : NULL;
    }
    if (is_name(p, "else")) {
        advance(p);
        if (!(node->c = parse_statements(p, else_end, "if", line)))
            return NULL;
    }
    return finish_end_tag(p) ? node : NULL;
}

static jinja_node *parse_set(parser *p, int line)
{
    static const char *const end[] = {"endset", NULL};
    jinja_node *target = parse_assign_target(p, true, true, NULL);
    if (!target)
        return NULL;
    if (is_reserved_target(target)) {
        fail(p, line, "can't assign to '%s'", target->name);
        return NULL;
    }
    if (skip_op(p, "=")) {
        jinja_node *node = node_new(p, JN_SET, line);
        if (!node || !(node->b = parse_tuple(p, false, true, NULL, false)))
            return NULL;
        node->a = target;
        return expect_type(p, JT_BLOCK_END, "end of statement block") ? node : NULL;
    }
    jinja_node *node = node_new(p, JN_SET_BLOCK, line);
    if (!node)
        return NULL;
    node->a = target;
    if (is_op(p, "|") && !(node->c = parse_filter(p, NULL, false)))
        return NULL;
    if (!(node->b = parse_statements(p, end, "set", line)))
        return NULL;
    return finish_end_tag(p) ? node : NULL;
}

static jinja_node *parse_macro(parser *p, int line)
{
    static const char *const end[] = {"endmacro", NULL};
    jinja_node *node = node_new(p, JN_MACRO, line);
    if (!node || !(node->name = expect_name(p)) || !expect_op(p, "("))
        return NULL;
    node_vec params = {0}, defaults = {0};
    bool has_default = false;
    while (!is_op(p, ")")) {
        if (params.len && !expect_op(p, ","))
            goto fail;
        if (is_op(p, ")"))
            break;
        int param_line = cur(p)->line;
        jinja_node *param = node_new(p, JN_NAME, param_line);
        jinja_node *fallback = NULL;
        if (!param || !(param->name = expect_name(p)))
            goto fail;
        if (skip_op(p, "=")) {
            if (!(fallback = parse_expression(p, true)))
                goto fail;
            has_default = true;
        } else if (has_default) {
            fail(p, param_line, "non-default argument follows default argument");
            goto fail;
        }
        if (!vec_push(p, &params, param) || !vec_push(p, &defaults, fallback))
            goto fail;
    }
    advance(p); /* ')' */
    node->n_args = params.len;
    node->args = vec_finish(p, &params);
    node->values = vec_finish(p, &defaults);
    int saved_loops = p->loop_depth;
    p->loop_depth = 0;
    p->macro_depth++;
    node->b = parse_statements(p, end, "macro", line);
    p->macro_depth--;
    p->loop_depth = saved_loops;
    if (!node->b)
        return NULL;
    return finish_end_tag(p) ? node : NULL;
fail:
    free(params.items);
    free(defaults.items);
    return NULL;
}

static jinja_node *parse_filter_block(parser *p, int line)
{
    static const char *const end[] = {"endfilter", NULL};
    jinja_node *node = node_new(p, JN_FILTER_BLOCK, line);
    if (!node || !(node->c = parse_filter(p, NULL, true)) || !(node->b = parse_statements(p, end, "filter", line)))
        return NULL;
    return finish_end_tag(p) ? node : NULL;
}

static jinja_node *parse_with(parser *p, int line)
{
    static const char *const end[] = {"endwith", NULL};
    jinja_node *node = node_new(p, JN_WITH, line);
    node_vec targets = {0}, values = {0};
    if (!node)
        return NULL;
    while (cur(p)->type != JT_BLOCK_END) {
        if (targets.len && !expect_op(p, ","))
            goto fail;
        jinja_node *target = parse_assign_target(p, false, false, NULL), *value;
        if (!target || !expect_op(p, "=") || !(value = parse_expression(p, true)) ||
            !vec_push(p, &targets, target) || !vec_push(p, &values, value))
            goto fail;
    }
    node->n_args = targets.len;
    node->args = vec_finish(p, &targets);
    node->values = vec_finish(p, &values);
    if (!(node->b = parse_statements(p, end, "with", line)))
        return NULL;
    return finish_end_tag(p) ? node : NULL;
fail:
    free(targets.items);
    free(values.items);
    return NULL;
}

/* Hugging Face's {% generation %} marks assistant text for training masks;
 * rendering shows its body unchanged. */
static jinja_node *parse_generation(parser *p, int line)
{
    static const char *const end[] = {"endgeneration", NULL};
    jinja_node *body = parse_statements(p, end, "generation", line);
    return body && finish_end_tag(p) ? body : NULL;
}

static jinja_node *parse_statement(parser *p)
{
    const jinja_token *t = cur(p);
    int line = t->line;
    if (t->type != JT_NAME) {
        fail(p, line, "tag name expected");
        return NULL;
    }
    if (!enter(p))
        return NULL;
    char tag[32];
    snprintf(tag, sizeof tag, "%.*s", (int)(t->len < 31 ? t->len : 31), t->text);
    advance(p);
    jinja_node *node = NULL;
    if (!strcmp(tag, "for"))
        node = parse_for(p, line);
    else if (!strcmp(tag, "if"))
        node = parse_if(p, line);
    else if (!strcmp(tag, "set"))
        node = parse_set(p, line);
    else if (!strcmp(tag, "macro"))
        node = parse_macro(p, line);
    else if (!strcmp(tag, "filter"))
        node = parse_filter_block(p, line);
    else if (!strcmp(tag, "with"))
        node = parse_with(p, line);
    else if (!strcmp(tag, "generation"))
        node = parse_generation(p, line);
    else if (!strcmp(tag, "break") || !strcmp(tag, "continue")) {
        if (p->loop_depth == 0)
            fail(p, line, "'%s' outside of a for loop", tag);
        else if ((node = node_new(p, tag[0] == 'b' ? JN_BREAK : JN_CONTINUE, line)) &&
                 !expect_type(p, JT_BLOCK_END, "end of statement block"))
            node = NULL;
    } else if (!strcmp(tag, "include") || !strcmp(tag, "import") || !strcmp(tag, "from") ||
               !strcmp(tag, "extends") || !strcmp(tag, "block"))
        fail(p, line, "unsupported tag '%s' (a chat template renders on its own: include, import, extends and "
                      "block are not supported)", tag);
    else if (!strcmp(tag, "call") || !strcmp(tag, "autoescape") || !strcmp(tag, "do") || !strcmp(tag, "trans") ||
             !strcmp(tag, "print"))
        fail(p, line, "unsupported tag '%s'", tag);
    else
        fail(p, line, "unknown tag '%s'", tag);
    p->depth--;
    return node;
}

/* Template data, {{ }} and {% %} up to the end or a block whose name is in
 * end_names. */
static jinja_node *subparse(parser *p, const char *const *end_names)
{
    int line = cur(p)->line;
    node_vec body = {0};
    while (!p->failed) {
        const jinja_token *t = cur(p);
        jinja_node *node = NULL;
        if (t->type == JT_EOF) {
            break;
        } else if (t->type == JT_DATA) {
            node = const_string(p, JN_DATA, t->line, t->text, t->len);
            advance(p);
        } else if (t->type == JT_VAR_BEGIN) {
            advance(p);
            jinja_node *expr = parse_tuple(p, false, true, NULL, false);
            if (expr && expect_type(p, JT_VAR_END, "end of print statement '}}'") &&
                (node = node_new(p, JN_OUTPUT, t->line)))
                node->a = expr;
        } else if (t->type == JT_BLOCK_BEGIN) {
            advance(p);
            if (at_end_name(p, end_names))
                break;
            node = parse_statement(p);
        } else {
            char got[64];
            describe(t, got, sizeof got);
            fail(p, t->line, "unexpected %s", got);
        }
        if (!node || !vec_push(p, &body, node))
            break;
    }
    if (p->failed) {
        free(body.items);
        return NULL;
    }
    jinja_node *node = node_new(p, JN_BODY, line);
    if (!node) {
        free(body.items);
        return NULL;
    }
    node->n_args = body.len;
    node->args = vec_finish(p, &body);
    return node;
}

strata_status jinja_template_parse(const char *source, size_t len, const char *name, jinja_template **out,
                                   strata_error *err)
{
    *out = NULL;
    jinja_tokens tokens;
    strata_status status = jinja_lex(source, len, name, &tokens, err);
    if (status != STRATA_OK)
        return status;
    jinja_template *tmpl = calloc(1, sizeof *tmpl);
    if (!tmpl || !(tmpl->name = strdup(name))) {
        free(tmpl);
        jinja_tokens_free(&tokens);
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory", name);
    }
    parser p = {.tmpl = tmpl, .tokens = &tokens, .err = err};
    tmpl->root = subparse(&p, NULL);
    if (!p.failed && cur(&p)->type != JT_EOF) {
        /* subparse stopped at a block no statement opened */
        char tag[48];
        describe(cur(&p), tag, sizeof tag);
        fail(&p, cur(&p)->line, "unexpected tag %s (nothing open that it closes)", tag);
    }
    jinja_tokens_free(&tokens);
    if (p.failed || !tmpl->root) {
        if (!p.failed)
            strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory", name);
        jinja_template_free(tmpl);
        return err ? err->status : STRATA_INVALID_INPUT;
    }
    *out = tmpl;
    return STRATA_OK;
}

void jinja_template_free(jinja_template *tmpl)
{
    if (!tmpl)
        return;
    for (size_t i = 0; i < tmpl->n_constants; i++)
        jv_free_immortal(tmpl->constants[i]);
    free(tmpl->constants);
    for (arena_chunk *chunk = tmpl->chunks; chunk;) {
        arena_chunk *next = chunk->next;
        free(chunk);
        chunk = next;
    }
    free(tmpl->name);
    free(tmpl);
}

/* For jinja_eval.c: the tree's root and the name used in messages. */
const jinja_node *jinja_template_root(const jinja_template *tmpl)
{
    return tmpl->root;
}

const char *jinja_template_name(const jinja_template *tmpl)
{
    return tmpl->name;
}
