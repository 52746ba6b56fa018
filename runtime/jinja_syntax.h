/* Tokens and the syntax tree of the Jinja interpreter (private to the
 * jinja_*.c files). */
#ifndef STRATA_JINJA_SYNTAX_H
#define STRATA_JINJA_SYNTAX_H

#include "jinja.h"

/* --- tokens (jinja_lex.c) ------------------------------------------------- */

typedef enum jinja_token_type {
    JT_DATA,        /* template text, whitespace control already applied */
    JT_VAR_BEGIN,   /* {{ */
    JT_VAR_END,     /* }} */
    JT_BLOCK_BEGIN, /* {% */
    JT_BLOCK_END,   /* %} */
    JT_NAME,
    JT_STRING,      /* decoded into str/str_len */
    JT_INT,
    JT_FLOAT,
    JT_OP,          /* text/len: one of + - * / // % ** ~ [ ] ( ) { } == != < <= > >= = . : | , ; */
    JT_EOF,
} jinja_token_type;

typedef struct jinja_token {
    jinja_token_type type;
    int line;
    const char *text; /* into the lexer's copy of the source: data, names, operators */
    size_t len;
    char *str;        /* JT_STRING: the decoded literal (malloc'ed) */
    size_t str_len;
    int64_t i;        /* JT_INT */
    double f;         /* JT_FLOAT */
} jinja_token;

typedef struct jinja_tokens {
    char *source;     /* newlines normalized, one trailing newline dropped */
    size_t source_len;
    jinja_token *items;
    size_t len, cap;
} jinja_tokens;

/* Tokenizes source as jinja2's lexer does with trim_blocks and
 * lstrip_blocks (comments dropped, {% raw %} turned into data). Errors
 * name the line: "line 3: unterminated string". */
strata_status jinja_lex(const char *source, size_t len, const char *name, jinja_tokens *out, strata_error *err);
void jinja_tokens_free(jinja_tokens *tokens);

/* --- the syntax tree (jinja_parse.c builds it, jinja_eval.c walks it) ------ */

typedef enum jinja_node_kind {
    /* expressions */
    JN_CONST,        /* value */
    JN_NAME,         /* name */
    JN_GETATTR,      /* a.name */
    JN_GETITEM,      /* a[b] */
    JN_SLICE,        /* [a:b:c], each may be NULL; only as JN_GETITEM's b */
    JN_CALL,         /* a(args, kwargs) */
    JN_FILTER,       /* a|name(args, kwargs); a is NULL in a filter block's chain */
    JN_TEST,         /* a is name(args, kwargs); op = 1 for "is not" */
    JN_NOT,          /* not a */
    JN_NEG,          /* -a */
    JN_POS,          /* +a */
    JN_BINOP,        /* a op b: op is a jinja_binop */
    JN_AND,          /* a and b */
    JN_OR,           /* a or b */
    JN_COMPARE,      /* a ops[0] args[0] ops[1] args[1] ... (chained) */
    JN_CONDEXPR,     /* b if a else c (c may be NULL) */
    JN_LIST,         /* [args] */
    JN_TUPLE,        /* (args) */
    JN_DICT,         /* {args[i]: values[i]} */
    JN_CONCAT,       /* args[0] ~ args[1] ~ ... */
    JN_NSREF,        /* name.attr as an assignment target */
    /* statements */
    JN_BODY,         /* args: statements */
    JN_DATA,         /* value: template text */
    JN_OUTPUT,       /* {{ a }} */
    JN_IF,           /* if a: b, else c (a body, or a JN_IF for elif) */
    JN_FOR,          /* for a in b [if d]: body c, else e */
    JN_SET,          /* set a = b */
    JN_SET_BLOCK,    /* set a: body b, through the filter chain c (may be NULL) */
    JN_MACRO,        /* macro name(args = values): body b */
    JN_FILTER_BLOCK, /* filter c: body b */
    JN_WITH,         /* with args[i] = values[i]: body b */
    JN_BREAK,
    JN_CONTINUE,
} jinja_node_kind;

typedef enum jinja_binop {
    JOP_ADD, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW,
} jinja_binop;

typedef enum jinja_cmpop {
    JCMP_EQ, JCMP_NE, JCMP_LT, JCMP_LE, JCMP_GT, JCMP_GE, JCMP_IN, JCMP_NOTIN,
} jinja_cmpop;

struct jinja_node {
    jinja_node_kind kind;
    int line;
    int op;              /* jinja_binop; JN_TEST: 1 when negated; JN_FILTER/JN_TEST: builtin index */
    int builtin;         /* JN_FILTER / JN_TEST: index into the builtin table */
    const char *name;    /* names, attributes, filters, tests, macros */
    const char *attr;    /* JN_NSREF: the attribute */
    jv value;            /* JN_CONST, JN_DATA (immortal) */
    jinja_node *a, *b, *c, *d, *e;
    jinja_node **args;   /* positional arguments, items, statements, targets, parameters */
    size_t n_args;
    jinja_node **values; /* dict values, macro defaults (NULL: none), with values */
    const char **kw_names; /* keyword arguments: kw_names[i] = kw_values[i] */
    jinja_node **kw_values;
    size_t n_kw;
    int *ops;            /* JN_COMPARE: jinja_cmpop per operand */
};

/* --- builtins (jinja_builtins.c) ------------------------------------------- */

/* Index of the filter / test called name, or -1. A name jinja2 has but
 * strata does not is -2 (the parser says "not supported" rather than
 * "unknown"). */
int jinja_find_filter(const char *name);
int jinja_find_test(const char *name);

/* Arguments as the evaluator hands them to builtins (borrowed). */
typedef struct jinja_args {
    const jv *pos;
    size_t n_pos;
    const char *const *kw_names;
    const jv *kw;
    size_t n_kw;
} jinja_args;

/* Applies filter index to value; *out is a new reference. */
bool jinja_apply_filter(jinja_rt *rt, int filter, jv value, const jinja_args *args, jv *out);
/* Runs test index on value. */
bool jinja_apply_test(jinja_rt *rt, int test, jv value, const jinja_args *args, bool *out);
/* Calls a global function (JV_FUNCTION) or a method (JV_METHOD). */
bool jinja_call_function(jinja_rt *rt, int function, const jinja_args *args, jv *out);
bool jinja_call_method(jinja_rt *rt, const jinja_method *method, const jinja_args *args, jv *out);
/* The global function called name as a value (JV_FUNCTION), or false. */
bool jinja_find_function(const char *name, jv *out);
/* receiver.name when name is a method of receiver's type (str, dict, list,
 * the loop): a new JV_METHOD in *out and true; false when it is not a
 * method (the caller then looks for an item). */
bool jinja_find_method(jinja_rt *rt, jv receiver, const char *name, jv *out, bool *failed);

/* What builtins need from the evaluator (jinja_eval.c). */
const jinja_time *jinja_rt_now(const jinja_rt *rt);
/* Registers a namespace so the render can break reference cycles at its
 * end (takes no reference from the caller; holds one of its own). */
bool jinja_rt_track_object(jinja_rt *rt, jv object);
/* Counts one unit of work against the step limit (loops inside builtins). */
bool jinja_rt_step(jinja_rt *rt, uint64_t units);
/* Calls a callable (macro, function, method) with args. */
bool jinja_call_value(jinja_rt *rt, jv callee, const jinja_args *args, jv *out);
/* Looks up value.attr the way templates do (attribute, then item). */
bool jinja_getattr(jinja_rt *rt, jv value, const char *attr, jv *out);
/* Records that raise_exception() was called with message. */
bool jinja_rt_raise(jinja_rt *rt, const char *message, size_t len);

/* String helpers shared by filters and methods (jinja_methods.c). */
typedef enum jinja_strip_side { JSTRIP_BOTH, JSTRIP_LEFT, JSTRIP_RIGHT } jinja_strip_side;
/* Python's str.strip/lstrip/rstrip: chars NULL (or none) strips whitespace. */
bool jinja_str_strip(jinja_rt *rt, jv str, const jv *chars, jinja_strip_side side, jv *out);
typedef enum jinja_case { JCASE_UPPER, JCASE_LOWER, JCASE_CAPITALIZE, JCASE_TITLE_WORDS } jinja_case;
/* upper(), lower(), capitalize(), and jinja's title filter. */
bool jinja_str_case(jinja_rt *rt, jv str, jinja_case mode, jv *out);
/* str.replace(old, new[, count]) (count < 0: all). */
bool jinja_str_replace(jinja_rt *rt, jv str, jv old, jv new_text, int64_t count, jv *out);
/* Python's strftime of format at time (the directives of the C locale). */
bool jinja_strftime(jinja_rt *rt, const jinja_time *time, jv format, jv *out);

/* The parse-time view of a template, for jinja_eval.c. */
const jinja_node *jinja_template_root(const jinja_template *tmpl);
const char *jinja_template_name(const jinja_template *tmpl);

/* Finds a keyword argument by name (borrowed), or NULL. */
const jv *jinja_kwarg(const jinja_args *args, const char *name);
/* Argument i by position, else by keyword name, else NULL (borrowed). */
const jv *jinja_arg(const jinja_args *args, size_t i, const char *name);

#endif
