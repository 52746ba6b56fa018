/* The Jinja lexer: template source to tokens, with the whitespace control
 * of jinja2's lexer under trim_blocks and lstrip_blocks:
 *
 * - newlines (\r\n, \r) become \n and one trailing newline is dropped;
 * - "{%-", "{{-", "{#-" strip all whitespace before the tag, "-%}", "-}}",
 *   "-#}" all whitespace after it;
 * - trim_blocks: a block or comment tag ("%}", "#}") eats one newline
 *   right after it, unless written "+%}";
 * - lstrip_blocks: spaces and tabs from the start of a line up to a block
 *   or comment tag are dropped, unless written "{%+"; not before "{{";
 * - inside a tag, "%}" and "}}" end it only outside brackets. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_syntax.h"

typedef struct lexer {
    const char *name;
    char *src;
    size_t len;
    size_t pos;
    int line;
    bool line_starting; /* the last thing consumed ended with a newline */
    jinja_tokens *out;
    strata_error *err;
} lexer;

static strata_status lex_fail(lexer *lx, const char *what, ...) __attribute__((format(printf, 2, 3)));

static strata_status lex_fail(lexer *lx, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return strata_fail(lx->err, STRATA_INVALID_INPUT, "%s line %d: %s", lx->name, lx->line, message);
}

static int count_newlines(const char *s, size_t len)
{
    int n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    return n;
}

static strata_status push(lexer *lx, jinja_token token)
{
    jinja_tokens *t = lx->out;
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        jinja_token *grown = realloc(t->items, cap * sizeof *grown);
        if (!grown) {
            free(token.str);
            return strata_fail(lx->err, STRATA_OUT_OF_MEMORY, "%s: out of memory while lexing", lx->name);
        }
        t->items = grown;
        t->cap = cap;
    }
    t->items[t->len++] = token;
    return STRATA_OK;
}

/* Length of the (Unicode) whitespace character at s[pos], or 0. */
static size_t space_at(const char *s, size_t len, size_t pos)
{
    size_t next = pos;
    uint32_t cp = jinja_utf8_next(s, len, &next);
    return jinja_is_space(cp) ? next - pos : 0;
}

/* Bytes of whitespace at the end of s[0..len) (Python's str.rstrip()). */
static size_t trailing_space(const char *s, size_t len)
{
    size_t end = len;
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80)
            start--;
        if (space_at(s, len, start) != end - start)
            break;
        end = start;
    }
    return len - end;
}

static size_t skip_space(const char *s, size_t len, size_t pos)
{
    size_t n;
    while (pos < len && (n = space_at(s, len, pos)) > 0)
        pos += n;
    return pos;
}

/* Emits text as data after the whitespace control of the tag that follows
 * it: sign is the character after the tag's opening ('-', '+' or other). */
static strata_status emit_data(lexer *lx, const char *text, size_t len, char sign, bool lstrip_applies)
{
    int newlines = count_newlines(text, len);
    if (sign == '-') {
        len -= trailing_space(text, len);
    } else if (sign != '+' && lstrip_applies) {
        size_t line_start = len;
        while (line_start > 0 && text[line_start - 1] != '\n')
            line_start--;
        if ((line_start > 0 || lx->line_starting) && line_start < len &&
            skip_space(text, len, line_start) == len)
            len = line_start;
    }
    strata_status status = STRATA_OK;
    if (len > 0)
        status = push(lx, (jinja_token){.type = JT_DATA, .line = lx->line, .text = text, .len = len});
    lx->line += newlines;
    return status;
}

static bool starts(const lexer *lx, size_t pos, const char *prefix)
{
    size_t n = strlen(prefix);
    return pos + n <= lx->len && memcmp(lx->src + pos, prefix, n) == 0;
}

/* After a closing "%}" or "#}" at pos (just past it), with the end's sign
 * ('-', '+' or 0): applies the whitespace control and returns the new
 * position; line_starting follows what was consumed. */
static size_t after_tag_end(lexer *lx, size_t pos, char sign, bool trims_newline)
{
    size_t end = pos;
    if (sign == '-')
        end = skip_space(lx->src, lx->len, pos);
    else if (sign != '+' && trims_newline && end < lx->len && lx->src[end] == '\n')
        end++;
    lx->line += count_newlines(lx->src + pos, end - pos);
    lx->line_starting = end > 0 && lx->src[end - 1] == '\n';
    return end;
}

/* Python's "unicode-escape" decoding of a string literal's body, after
 * jinja2 first wrote non-ASCII characters as backslash escapes (so a
 * backslash before a non-ASCII character stays a backslash). */
static strata_status decode_string(lexer *lx, const char *s, size_t len, jinja_token *token)
{
    jinja_buf buf;
    jinja_buf_init(&buf, NULL, SIZE_MAX / 2);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c != '\\' || i + 1 >= len) {
            size_t start = i;
            jinja_utf8_next(s, len, &i);
            if (!jinja_buf_add(&buf, s + start, i - start))
                goto oom;
            continue;
        }
        unsigned char e = (unsigned char)s[i + 1];
        i += 2;
        uint32_t cp = 0;
        int digits = 0;
        switch (e) {
        case '\n': continue;
        case '\\': cp = '\\'; break;
        case '\'': cp = '\''; break;
        case '"': cp = '"'; break;
        case 'a': cp = 7; break;
        case 'b': cp = 8; break;
        case 'f': cp = 12; break;
        case 'n': cp = 10; break;
        case 'r': cp = 13; break;
        case 't': cp = 9; break;
        case 'v': cp = 11; break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        case 'N':
            jinja_buf_free(&buf);
            return lex_fail(lx, "\\N{...} escapes in string literals are not supported");
        default:
            if (e >= '0' && e <= '7') {
                cp = e - '0';
                for (int k = 0; k < 2 && i < len && s[i] >= '0' && s[i] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(s[i++] - '0');
                break;
            }
            if (e >= 0x80) {
                /* jinja2 turned the character into \xNN, \uNNNN or
                 * \UNNNNNNNN first; the backslash before it escapes that
                 * backslash, so the escape's text stays */
                size_t at = i - 1;
                uint32_t ch = jinja_utf8_next(s, len, &at);
                i = at;
                bool ok = ch <= 0xFF ? jinja_buf_addf(&buf, "\\x%02x", ch)
                        : ch <= 0xFFFF ? jinja_buf_addf(&buf, "\\u%04x", ch) : jinja_buf_addf(&buf, "\\U%08x", ch);
                if (!ok)
                    goto oom;
                continue;
            }
            if (!jinja_buf_addc(&buf, '\\') || !jinja_buf_addc(&buf, (char)e))
                goto oom;
            continue;
        }
        if (digits) {
            for (int k = 0; k < digits; k++, i++) {
                char h = i < len ? s[i] : 0;
                int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                      : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (v < 0) {
                    jinja_buf_free(&buf);
                    return lex_fail(lx, "truncated \\%c escape in a string literal", e);
                }
                cp = cp * 16 + (uint32_t)v;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                jinja_buf_free(&buf);
                return lex_fail(lx, "string literal escape \\%c names no character strata can hold", e);
            }
        }
        if (cp == 0) {
            jinja_buf_free(&buf);
            return lex_fail(lx, "a NUL character in a string literal is not supported");
        }
        if (!jinja_buf_add_cp(&buf, cp))
            goto oom;
    }
    token->str = buf.data ? buf.data : calloc(1, 1);
    token->str_len = buf.len;
    if (!token->str)
        goto oom;
    return STRATA_OK;
oom:
    jinja_buf_free(&buf);
    return strata_fail(lx->err, STRATA_OUT_OF_MEMORY, "%s: out of memory while lexing", lx->name);
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

/* Digits with single underscores between them ("1_000"); returns the end. */
static size_t scan_digits(const char *s, size_t len, size_t pos)
{
    if (pos >= len || !is_digit(s[pos]))
        return pos;
    pos++;
    while (pos < len) {
        if (is_digit(s[pos]))
            pos++;
        else if (s[pos] == '_' && pos + 1 < len && is_digit(s[pos + 1]))
            pos += 2;
        else
            break;
    }
    return pos;
}

/* A number at pos: float when it has a fraction or an exponent. */
static strata_status lex_number(lexer *lx, size_t *pos)
{
    const char *s = lx->src;
    size_t start = *pos, end = scan_digits(s, lx->len, start);
    bool is_float = false;
    if (end + 1 < lx->len && s[end] == '.' && is_digit(s[end + 1])) {
        end = scan_digits(s, lx->len, end + 1);
        is_float = true;
    }
    if (end < lx->len && (s[end] == 'e' || s[end] == 'E')) {
        size_t e = end + 1;
        if (e < lx->len && (s[e] == '+' || s[e] == '-'))
            e++;
        if (e < lx->len && is_digit(s[e])) {
            end = scan_digits(s, lx->len, e);
            is_float = true;
        }
    }
    if (!is_float && end - start > 1 && s[start] == '0' && (s[start + 1] == 'x' || s[start + 1] == 'X' ||
                                                            s[start + 1] == 'o' || s[start + 1] == 'b'))
        return lex_fail(lx, "hexadecimal, octal and binary literals are not supported");
    char digits[64];
    size_t n = 0;
    for (size_t i = start; i < end; i++)
        if (s[i] != '_') {
            if (n + 1 >= sizeof digits)
                return lex_fail(lx, "number literal too long");
            digits[n++] = s[i];
        }
    digits[n] = '\0';
    jinja_token token = {.line = lx->line, .text = s + start, .len = end - start};
    if (is_float) {
        token.type = JT_FLOAT;
        token.f = strtod(digits, NULL);
    } else {
        if (n > 1 && digits[0] == '0') {
            for (size_t i = 0; i < n; i++)
                if (digits[i] != '0')
                    return lex_fail(lx, "leading zeros in integer literal '%s'", digits);
        }
        token.type = JT_INT;
        unsigned long long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (v > (9223372036854775807ull - (unsigned)(digits[i] - '0')) / 10)
                return lex_fail(lx, "integer literal %s does not fit in 64 bits (big integers are not supported)",
                                digits);
            v = v * 10 + (unsigned)(digits[i] - '0');
        }
        token.i = (int64_t)v;
    }
    *pos = end;
    return push(lx, token);
}

static const char *const operators2[] = {"//", "**", "==", "!=", ">=", "<="};
static const char operators1[] = "+-/*%~[](){}><=.:|,;";

/* The tokens of one tag, up to and including its end ("%}" or "}}"). */
static strata_status lex_tag(lexer *lx, bool is_block)
{
    char stack[256];
    size_t depth = 0;
    const char *end_text = is_block ? "%}" : "}}";
    while (true) {
        size_t pos = lx->pos;
        if (pos >= lx->len)
            return lex_fail(lx, "unexpected end of template: '%s' is never closed", is_block ? "{%" : "{{");
        if (depth == 0) {
            char sign = 0;
            if (starts(lx, pos, end_text))
                sign = 0;
            else if ((lx->src[pos] == '-' || (is_block && lx->src[pos] == '+')) && starts(lx, pos + 1, end_text))
                sign = lx->src[pos];
            else
                goto not_end;
            size_t after = pos + (sign ? 3 : 2);
            strata_status status = push(lx, (jinja_token){.type = is_block ? JT_BLOCK_END : JT_VAR_END,
                                                          .line = lx->line});
            if (status != STRATA_OK)
                return status;
            lx->pos = after_tag_end(lx, after, sign, is_block);
            return STRATA_OK;
        }
    not_end:;
        const char *s = lx->src;
        char c = s[pos];
        size_t space = space_at(s, lx->len, pos);
        if (space) {
            lx->line += c == '\n';
            lx->pos = pos + space;
            continue;
        }
        if (is_digit(c)) {
            strata_status status = lex_number(lx, &lx->pos);
            if (status != STRATA_OK)
                return status;
            continue;
        }
        if (is_name_start(c)) {
            size_t end = pos + 1;
            while (end < lx->len && is_name_char(s[end]))
                end++;
            if (end < lx->len && (unsigned char)s[end] >= 0x80)
                return lex_fail(lx, "non-ASCII names are not supported");
            strata_status status = push(lx, (jinja_token){.type = JT_NAME, .line = lx->line, .text = s + pos,
                                                          .len = end - pos});
            if (status != STRATA_OK)
                return status;
            lx->pos = end;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t end = pos + 1;
            while (end < lx->len && s[end] != c)
                end += s[end] == '\\' ? 2 : 1;
            if (end >= lx->len)
                return lex_fail(lx, "unterminated string literal");
            jinja_token token = {.type = JT_STRING, .line = lx->line, .text = s + pos, .len = end + 1 - pos};
            strata_status status = decode_string(lx, s + pos + 1, end - pos - 1, &token);
            if (status == STRATA_OK)
                status = push(lx, token);
            if (status != STRATA_OK)
                return status;
            lx->line += count_newlines(s + pos, end + 1 - pos);
            lx->pos = end + 1;
            continue;
        }
        size_t op_len = 0;
        for (size_t k = 0; k < sizeof operators2 / sizeof operators2[0]; k++)
            if (starts(lx, pos, operators2[k]))
                op_len = 2;
        if (!op_len && c && strchr(operators1, c))
            op_len = 1;
        if (!op_len) {
            if ((unsigned char)c >= 0x80)
                return lex_fail(lx, "unexpected non-ASCII character inside a tag");
            return lex_fail(lx, "unexpected character '%c' inside a tag", c);
        }
        if (c == '(' || c == '[' || c == '{') {
            if (depth == sizeof stack)
                return lex_fail(lx, "brackets nested more than %zu deep", sizeof stack);
            stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
        } else if (op_len == 1 && (c == ')' || c == ']' || c == '}')) {
            if (depth == 0)
                return lex_fail(lx, "unexpected '%c'", c);
            if (stack[--depth] != c)
                return lex_fail(lx, "unexpected '%c', expected '%c'", c, stack[depth]);
        }
        strata_status status = push(lx, (jinja_token){.type = JT_OP, .line = lx->line, .text = s + pos,
                                                      .len = op_len});
        if (status != STRATA_OK)
            return status;
        lx->pos = pos + op_len;
    }
}

/* "{% raw %}" (with optional -/+ signs) at pos: its length, or 0. */
static size_t raw_begin(const lexer *lx, size_t pos)
{
    size_t p = pos + 2;
    if (p < lx->len && (lx->src[p] == '-' || lx->src[p] == '+'))
        p++;
    p = skip_space(lx->src, lx->len, p);
    if (!starts(lx, p, "raw") || (p + 3 < lx->len && is_name_char(lx->src[p + 3])))
        return 0;
    p = skip_space(lx->src, lx->len, p + 3);
    if (starts(lx, p, "-%}"))
        return skip_space(lx->src, lx->len, p + 3) - pos;
    if (starts(lx, p, "%}"))
        return p + 2 - pos;
    return 0;
}

/* The body of a raw block from lx->pos: data up to "{% endraw %}". */
static strata_status lex_raw(lexer *lx)
{
    for (size_t p = lx->pos; p + 1 < lx->len; p++) {
        if (!starts(lx, p, "{%"))
            continue;
        size_t q = p + 2;
        char sign = 0;
        if (q < lx->len && (lx->src[q] == '-' || lx->src[q] == '+'))
            sign = lx->src[q++];
        q = skip_space(lx->src, lx->len, q);
        if (!starts(lx, q, "endraw"))
            continue;
        q = skip_space(lx->src, lx->len, q + 6);
        char end_sign = 0;
        if (starts(lx, q, "-%}") || starts(lx, q, "+%}"))
            end_sign = lx->src[q++];
        if (!starts(lx, q, "%}"))
            continue;
        strata_status status = emit_data(lx, lx->src + lx->pos, p - lx->pos, sign, true);
        if (status != STRATA_OK)
            return status;
        lx->line += count_newlines(lx->src + p, q + 2 - p);
        lx->pos = after_tag_end(lx, q + 2, end_sign, true);
        return STRATA_OK;
    }
    return lex_fail(lx, "{%% raw %%} is never closed by {%% endraw %%}");
}

static strata_status lex_root(lexer *lx)
{
    while (lx->pos < lx->len) {
        /* the next tag opening */
        size_t tag = lx->pos;
        while (tag + 1 < lx->len &&
               !(lx->src[tag] == '{' && (lx->src[tag + 1] == '{' || lx->src[tag + 1] == '%' || lx->src[tag + 1] == '#')))
            tag++;
        if (tag + 1 >= lx->len) {
            strata_status status = emit_data(lx, lx->src + lx->pos, lx->len - lx->pos, 0, false);
            lx->pos = lx->len;
            return status;
        }
        char kind = lx->src[tag + 1];
        char sign = tag + 2 < lx->len ? lx->src[tag + 2] : 0;
        if (sign != '-' && sign != '+')
            sign = 0;
        size_t raw = kind == '%' ? raw_begin(lx, tag) : 0;
        strata_status status = emit_data(lx, lx->src + lx->pos, tag - lx->pos, sign, kind != '{');
        if (status != STRATA_OK)
            return status;
        size_t body = tag + 2 + (sign ? 1 : 0);
        if (raw) {
            lx->line += count_newlines(lx->src + tag, raw);
            lx->pos = tag + raw;
            lx->line_starting = lx->src[lx->pos - 1] == '\n';
            status = lex_raw(lx);
        } else if (kind == '#') {
            size_t end = body;
            while (end + 1 < lx->len && !(lx->src[end] == '#' && lx->src[end + 1] == '}'))
                end++;
            if (end + 1 >= lx->len)
                return lex_fail(lx, "comment '{#' is never closed by '#}'");
            char end_sign = end > body && (lx->src[end - 1] == '-' || lx->src[end - 1] == '+') ? lx->src[end - 1] : 0;
            lx->line += count_newlines(lx->src + tag, end + 2 - tag);
            lx->pos = after_tag_end(lx, end + 2, end_sign, true);
        } else {
            status = push(lx, (jinja_token){.type = kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, .line = lx->line});
            if (status != STRATA_OK)
                return status;
            lx->pos = body;
            lx->line_starting = false;
            status = lex_tag(lx, kind == '%');
        }
        if (status != STRATA_OK)
            return status;
    }
    return STRATA_OK;
}

strata_status jinja_lex(const char *source, size_t len, const char *name, jinja_tokens *out, strata_error *err)
{
    *out = (jinja_tokens){0};
    lexer lx = {.name = name, .line = 1, .line_starting = true, .out = out, .err = err};
    size_t bad;
    if (!jinja_utf8_valid(source, len, &bad))
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: not valid UTF-8 (byte offset %zu)", name, bad);
    if (memchr(source, '\0', len))
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: holds a NUL byte", name);
    out->source = malloc(len + 1);
    if (!out->source)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory", name);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (source[i] == '\r') {
            out->source[n++] = '\n';
            if (i + 1 < len && source[i + 1] == '\n')
                i++;
        } else {
            out->source[n++] = source[i];
        }
    }
    if (n > 0 && out->source[n - 1] == '\n')
        n--;
    out->source[n] = '\0';
    out->source_len = n;
    lx.src = out->source;
    lx.len = n;
    strata_status status = lex_root(&lx);
    if (status == STRATA_OK)
        status = push(&lx, (jinja_token){.type = JT_EOF, .line = lx.line});
    if (status != STRATA_OK)
        jinja_tokens_free(out);
    return status;
}

void jinja_tokens_free(jinja_tokens *tokens)
{
    for (size_t i = 0; i < tokens->len; i++)
        free(tokens->items[i].str);
    free(tokens->items);
    free(tokens->source);
    *tokens = (jinja_tokens){0};
}
