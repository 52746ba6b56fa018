/* The byte-level BPE pre-tokenizers: each tokenizer.ggml.pre name selects a
 * list of regular expressions. They are applied in order; each one splits
 * every current piece into its matches and the text between the matches,
 * so every byte stays in exactly one piece. The expressions are those of
 * the models' published tokenizer.json files (as llama.cpp lists them), run
 * by PCRE2 in UTF mode with Unicode properties (JIT when available). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

#define MAX_PATTERNS 6

/* GPT-2's pattern, shared by several families. */
#define PAT_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define PAT_LLAMA3                                                                                         \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| " \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define PAT_QWEN2                                                                                      \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| " \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* DeepSeek's lists of letters and CJK ranges, written as code point ranges */
#define PAT_CJK "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
#define PAT_DEEPSEEK_LLM_LETTERS                                                                                \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"         \
    "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"       \
    "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"              \
    "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"           \
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"           \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"    \
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}"   \
    "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"            \
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}"             \
    "\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"             \
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"            \
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}"           \
    "\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"         \
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}" \
    "\\x{1E900}-\\x{1E943}]+"

typedef struct pre_definition {
    const char *const *names; /* NULL-terminated aliases */
    const char *patterns[MAX_PATTERNS + 1]; /* NULL-terminated */
    bool ignore_merges;
} pre_definition;

static const char *const NAMES_DEFAULT[] = {"default", NULL};
static const char *const NAMES_GPT2[] = {"gpt-2", "gpt2", "mpt", "olmo", "phi-2", "jina-es", "jina-de", "jais", NULL};
static const char *const NAMES_LLAMA3[] = {"llama-bpe", "llama3", "llama-v3", "falcon3", NULL};
/* DBRX and OLMo 2 (cl100k: the converter names OLMo 2's tokenizer "dbrx"):
 * LLaMA 3's expression, but their tokenizer.json keeps every merge step */
static const char *const NAMES_DBRX[] = {"dbrx", NULL};
static const char *const NAMES_QWEN2[] = {"qwen2", "stablelm2", "deepseek-r1-qwen", NULL};
static const char *const NAMES_STARCODER[] = {"starcoder", "refact", "command-r", "smollm", "codeshell", NULL};
static const char *const NAMES_FALCON[] = {"falcon", NULL};
static const char *const NAMES_DEEPSEEK_LLM[] = {"deepseek-llm", NULL};
static const char *const NAMES_DEEPSEEK_CODER[] = {"deepseek-coder", NULL};

static const pre_definition PRE_DEFINITIONS[] = {
    {NAMES_DEFAULT, {"[\\p{P}\\$\\+<=>\\^~\\|]+", PAT_GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL}, false},
    {NAMES_GPT2, {PAT_GPT2, NULL}, false},
    {NAMES_LLAMA3, {PAT_LLAMA3, NULL}, true},
    {NAMES_DBRX, {PAT_LLAMA3, NULL}, false},
    {NAMES_QWEN2, {PAT_QWEN2, NULL}, false},
    {NAMES_STARCODER, {"\\p{N}", PAT_GPT2, NULL}, false},
    {NAMES_FALCON, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", PAT_GPT2, "[0-9][0-9][0-9]", NULL}, false},
    {NAMES_DEEPSEEK_LLM,
     {"[\\r\\n]", PAT_DEEPSEEK_LLM_LETTERS,
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+", "\\s+$", PAT_CJK,
      "\\p{N}+", NULL},
     false},
    {NAMES_DEEPSEEK_CODER, {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", PAT_CJK, "\\p{N}", NULL}, false},
};

struct pretokenizer {
    pcre2_code *codes[MAX_PATTERNS];
    size_t n_codes;
};

void pretokenizer_free(pretokenizer *pre)
{
    if (!pre)
        return;
    for (size_t i = 0; i < pre->n_codes; i++)
        pcre2_code_free(pre->codes[i]);
    free(pre);
}

static const pre_definition *find_definition(const char *name)
{
    for (size_t i = 0; i < sizeof PRE_DEFINITIONS / sizeof PRE_DEFINITIONS[0]; i++)
        for (const char *const *alias = PRE_DEFINITIONS[i].names; *alias; alias++)
            if (strcmp(*alias, name) == 0)
                return &PRE_DEFINITIONS[i];
    return NULL;
}

strata_status pretokenizer_create(const char *pre_name, pretokenizer **out, bool *ignore_merges, strata_error *err)
{
    *out = NULL;
    const pre_definition *def = find_definition(pre_name);
    if (!def) {
        char known[512] = "";
        for (size_t i = 0; i < sizeof PRE_DEFINITIONS / sizeof PRE_DEFINITIONS[0]; i++)
            for (const char *const *alias = PRE_DEFINITIONS[i].names; *alias; alias++) {
                size_t used = strlen(known);
                snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", *alias);
            }
        return strata_fail(err, STRATA_UNSUPPORTED,
                           "tokenizer.ggml.pre '%s' is not a known pre-tokenizer (known: %s); "
                           "choose one with --force-pre NAME",
                           pre_name, known);
    }
    pretokenizer *pre = calloc(1, sizeof *pre);
    if (!pre)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for the pre-tokenizer");
    strata_status status = STRATA_OK;
    for (const char *const *pattern = def->patterns; *pattern; pattern++) {
        int code;
        PCRE2_SIZE offset;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)*pattern, PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK | PCRE2_DOLLAR_ENDONLY, &code,
                                       &offset, NULL);
        if (!re) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(code, message, sizeof message);
            status = strata_fail(err, STRATA_UNSUPPORTED, "pre-tokenizer '%s': regex %zu does not compile at %zu: %s",
                                 pre_name, pre->n_codes, (size_t)offset, (const char *)message);
            goto fail;
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* a failure leaves the interpreter, which is fine */
        pre->codes[pre->n_codes++] = re;
    }
    *ignore_merges = def->ignore_merges;
    *out = pre;
    return STRATA_OK;
fail:
    pretokenizer_free(pre);
    return status;
}

/* One pretokenizer_split call: the text, the regexes and where the words go. */
typedef struct split_state {
    const pretokenizer *pre;
    pcre2_match_data *match; /* shared by every level: each reads its ovector before going deeper */
    const char *text;
    pretokenizer_word_fn on_word;
    void *user;
} split_state;

/* Splits text[begin, end) by regex `level` into its matches and the gaps
 * between them, and hands each piece on to the next regex, or after the last
 * one to on_word. Going depth first gives the words in order with nothing
 * but this call stack (one frame per regex) kept. */
static strata_status split_level(split_state *st, size_t level, size_t begin, size_t end, strata_error *err)
{
    if (level == st->pre->n_codes)
        return st->on_word(st->user, st->text + begin, end - begin, err);
    strata_status status;
    pcre2_code *re = st->pre->codes[level];
    PCRE2_SPTR subject = (PCRE2_SPTR)(st->text + begin);
    size_t length = end - begin, start = 0, gap_start = 0;
    while (start < length) {
        int rc = pcre2_match(re, subject, length, start, PCRE2_NO_UTF_CHECK, st->match, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return strata_fail(err, STRATA_INVALID_INPUT, "pre-tokenizer: regex match failed (PCRE2 error %d)", rc);
        PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(st->match);
        size_t m_begin = ovector[0], m_end = ovector[1];
        if (m_end == m_begin) { /* an empty match: step over one character */
            start = m_end + 1;
            while (start < length && (subject[start] & 0xC0) == 0x80)
                start++;
            continue;
        }
        if (m_begin > gap_start &&
            (status = split_level(st, level + 1, begin + gap_start, begin + m_begin, err)) != STRATA_OK)
            return status;
        if ((status = split_level(st, level + 1, begin + m_begin, begin + m_end, err)) != STRATA_OK)
            return status;
        gap_start = start = m_end;
    }
    if (gap_start < length)
        return split_level(st, level + 1, begin + gap_start, end, err);
    return STRATA_OK;
}

strata_status pretokenizer_split(const pretokenizer *pre, const char *text, size_t len, pretokenizer_word_fn on_word,
                                 void *user, strata_error *err)
{
    if (len == 0)
        return STRATA_OK;
    split_state st = {.pre = pre, .text = text, .on_word = on_word, .user = user};
    st.match = pcre2_match_data_create(1, NULL);
    if (!st.match)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "pre-tokenizer: out of memory");
    strata_status status = split_level(&st, 0, 0, len, err);
    pcre2_match_data_free(st.match);
    return status;
}
