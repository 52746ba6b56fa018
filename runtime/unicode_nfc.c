/* Unicode NFC (the contract is in unicode_nfc.h).
 *
 * The text is handled one run at a time: a starter (combining class 0)
 * and the combining marks after it. Each character is decomposed as it is
 * read; a mark joins the current run; a starter closes it: the run's marks
 * are put in canonical order (stable, by class) and composed with its
 * starter, then the run is written out, unless it composed down to its
 * starter alone, which may still compose with the new starter (Hangul
 * L+V, LV+T, and a few scripts' vowel signs). So the memory besides the
 * output is one run, however long the text. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h" /* utf8_sequence_length, utf8_encode */
#include "unicode_nfc.h"

/* Hangul syllables: S = S_BASE + (L * V_COUNT + V) * T_COUNT + T */
#define S_BASE 0xAC00u
#define L_BASE 0x1100u
#define V_BASE 0x1161u
#define T_BASE 0x11A7u
#define L_COUNT 19u
#define V_COUNT 21u
#define T_COUNT 28u
#define S_COUNT (L_COUNT * V_COUNT * T_COUNT)

/* A byte that is not part of valid UTF-8 travels as RAW_BYTE + byte: a
 * starter that composes with nothing. */
#define RAW_BYTE 0x110000u
/* Run entries hold the combining class above the code point. */
#define ENTRY(cp, ccc) ((uint32_t)(ccc) << 24 | (cp))
#define ENTRY_CP(entry) ((entry) & 0xFFFFFFu)
#define ENTRY_CCC(entry) ((entry) >> 24)
/* Runs up to this long are sorted by insertion, longer ones by counting. */
#define INSERTION_SORT_MAX 32

/* Below U+0300 no code point has a combining class or composes with what
 * precedes it, and below U+00C0 none decomposes (the generator checks). */
#define FIRST_INTERESTING 0x300u
#define FIRST_DECOMPOSABLE 0xC0u

static const nfc_range *find_range(const nfc_range *ranges, size_t count, uint32_t cp)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < ranges[mid].first)
            hi = mid;
        else if (cp > ranges[mid].last)
            lo = mid + 1;
        else
            return &ranges[mid];
    }
    return NULL;
}

static unsigned combining_class(uint32_t cp)
{
    if (cp < FIRST_INTERESTING || cp >= RAW_BYTE)
        return 0;
    const nfc_range *range = find_range(NFC_COMBINING_CLASS, NFC_COMBINING_CLASS_COUNT, cp);
    return range ? range->value : 0;
}

static const nfc_decomposition *find_decomposition(uint32_t cp)
{
    size_t lo = 0, hi = NFC_DECOMPOSITION_COUNT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (NFC_DECOMPOSITION[mid].code_point < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < NFC_DECOMPOSITION_COUNT && NFC_DECOMPOSITION[lo].code_point == cp ? &NFC_DECOMPOSITION[lo] : NULL;
}

/* Appends the full canonical decomposition of cp to out[*n..]; out has room
 * for 4 (the longest canonical decomposition, checked by the generator's
 * tables: at most two steps of at most two). */
static void decompose(uint32_t cp, uint32_t out[4], size_t *n)
{
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE;
        out[(*n)++] = L_BASE + s / (V_COUNT * T_COUNT);
        out[(*n)++] = V_BASE + (s % (V_COUNT * T_COUNT)) / T_COUNT;
        if (s % T_COUNT)
            out[(*n)++] = T_BASE + s % T_COUNT;
        return;
    }
    const nfc_decomposition *d = cp >= FIRST_DECOMPOSABLE && cp < RAW_BYTE ? find_decomposition(cp) : NULL;
    if (!d || *n + 2 > 4) { /* the bound never binds with the generated tables */
        out[(*n)++] = cp;
        return;
    }
    decompose(d->first, out, n);
    if (d->second)
        decompose(d->second, out, n);
}

/* The primary composite of (first, second), or 0 when there is none. */
static uint32_t compose_pair(uint32_t first, uint32_t second)
{
    if (first >= L_BASE && first < L_BASE + L_COUNT && second >= V_BASE && second < V_BASE + V_COUNT)
        return S_BASE + ((first - L_BASE) * V_COUNT + (second - V_BASE)) * T_COUNT;
    if (first >= S_BASE && first < S_BASE + S_COUNT && (first - S_BASE) % T_COUNT == 0 && second > T_BASE &&
        second < T_BASE + T_COUNT)
        return first + (second - T_BASE);
    if (second < FIRST_INTERESTING || first >= RAW_BYTE || second >= RAW_BYTE)
        return 0; /* the second of every pair is U+0300 or later (the generator checks) */
    size_t lo = 0, hi = NFC_COMPOSITION_COUNT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const nfc_decomposition *d = &NFC_DECOMPOSITION[NFC_COMPOSITION[mid]];
        if (d->first < first || (d->first == first && d->second < second))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == NFC_COMPOSITION_COUNT)
        return 0;
    const nfc_decomposition *d = &NFC_DECOMPOSITION[NFC_COMPOSITION[lo]];
    return d->first == first && d->second == second ? d->code_point : 0;
}

bool unicode_nfc_may_change(const char *text, size_t len)
{
    for (size_t i = 0; i < len;) {
        uint8_t b = (uint8_t)text[i];
        if (b < 0xCC) { /* ASCII, a stray continuation byte, or U+0080..U+02FF */
            bool two = b >= 0xC2 && i + 1 < len && ((uint8_t)text[i + 1] & 0xC0) == 0x80;
            i += two ? 2 : 1;
            continue;
        }
        size_t n = utf8_sequence_length(text + i, len - i);
        if (n == 0) {
            i++;
            continue;
        }
        uint32_t cp = b & (0xFFu >> (n + 1));
        for (size_t k = 1; k < n; k++)
            cp = (cp << 6) | ((uint8_t)text[i + k] & 0x3F);
        if (find_range(NFC_QUICK_CHECK, NFC_QUICK_CHECK_COUNT, cp))
            return true;
        i += n;
    }
    return false;
}

/* --- the normalizer's state ---------------------------------------------- */

typedef struct nfc_state {
    char *out;
    size_t out_len, out_cap;
    uint32_t *run;     /* entries: the run's starter (when it has one) then its marks */
    uint32_t *scratch; /* the counting sort's output, as large as run */
    size_t run_len, run_cap;
    strata_error *err;
} nfc_state;

static strata_status emit(nfc_state *st, uint32_t cp)
{
    if (st->out_cap - st->out_len < 4) {
        size_t cap = st->out_cap * 2;
        char *out = realloc(st->out, cap);
        if (!out)
            return strata_fail(st->err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for %zu bytes of NFC text",
                               cap);
        st->out = out;
        st->out_cap = cap;
    }
    if (cp >= RAW_BYTE)
        st->out[st->out_len++] = (char)(cp - RAW_BYTE);
    else
        st->out_len += utf8_encode(cp, st->out + st->out_len);
    return STRATA_OK;
}

static strata_status run_push(nfc_state *st, uint32_t entry)
{
    if (st->run_len == st->run_cap) {
        size_t cap = st->run_cap ? st->run_cap * 2 : 64;
        uint32_t *run = realloc(st->run, cap * sizeof *run);
        if (run)
            st->run = run;
        uint32_t *scratch = run ? realloc(st->scratch, cap * sizeof *scratch) : NULL;
        if (!scratch)
            return strata_fail(st->err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for %zu combining marks",
                               cap);
        st->scratch = scratch;
        st->run_cap = cap;
    }
    st->run[st->run_len++] = entry;
    return STRATA_OK;
}

/* Canonical ordering: a stable sort of marks[0..n) by combining class. */
static void sort_marks(uint32_t *marks, uint32_t *scratch, size_t n)
{
    if (n <= INSERTION_SORT_MAX) {
        for (size_t i = 1; i < n; i++) {
            uint32_t entry = marks[i];
            size_t j = i;
            while (j > 0 && ENTRY_CCC(marks[j - 1]) > ENTRY_CCC(entry)) {
                marks[j] = marks[j - 1];
                j--;
            }
            marks[j] = entry;
        }
        return;
    }
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++)
        start[ENTRY_CCC(marks[i]) + 1]++;
    for (int c = 0; c < 256; c++)
        start[c + 1] += start[c];
    for (size_t i = 0; i < n; i++)
        scratch[start[ENTRY_CCC(marks[i])]++] = marks[i];
    memcpy(marks, scratch, n * sizeof *marks);
}

/* Orders the run's marks and composes them with its starter; what does not
 * compose stays, in order. */
static void compose_run(nfc_state *st)
{
    if (st->run_len == 0)
        return; /* run may still be NULL */
    bool has_starter = ENTRY_CCC(st->run[0]) == 0;
    size_t first_mark = has_starter ? 1 : 0;
    sort_marks(st->run + first_mark, st->scratch, st->run_len - first_mark);
    if (!has_starter)
        return;
    uint32_t starter = ENTRY_CP(st->run[0]);
    unsigned last_kept_ccc = 0; /* 0: no mark kept yet, nothing blocks */
    size_t kept = 1;
    for (size_t i = 1; i < st->run_len; i++) {
        uint32_t cp = ENTRY_CP(st->run[i]);
        unsigned ccc = ENTRY_CCC(st->run[i]);
        uint32_t composite = last_kept_ccc < ccc ? compose_pair(starter, cp) : 0;
        if (composite) {
            starter = composite;
            continue;
        }
        st->run[kept++] = st->run[i];
        last_kept_ccc = ccc;
    }
    st->run[0] = ENTRY(starter, 0);
    st->run_len = kept;
}

static strata_status emit_run(nfc_state *st)
{
    strata_status status = STRATA_OK;
    for (size_t i = 0; i < st->run_len && status == STRATA_OK; i++)
        status = emit(st, ENTRY_CP(st->run[i]));
    st->run_len = 0;
    return status;
}

/* Takes one code point of the decomposed text. */
static strata_status take(nfc_state *st, uint32_t cp)
{
    unsigned ccc = combining_class(cp);
    if (ccc != 0)
        return run_push(st, ENTRY(cp, ccc));
    compose_run(st);
    if (st->run_len == 1 && ENTRY_CCC(st->run[0]) == 0) {
        uint32_t composite = compose_pair(ENTRY_CP(st->run[0]), cp);
        if (composite) {
            st->run[0] = ENTRY(composite, 0);
            return STRATA_OK;
        }
    }
    strata_status status = emit_run(st);
    return status == STRATA_OK ? run_push(st, ENTRY(cp, 0)) : status;
}

strata_status unicode_nfc(const char *text, size_t len, char **out, size_t *out_len, strata_error *err)
{
    *out = NULL;
    *out_len = 0;
    nfc_state st = {.out_cap = len + len / 8 + 16, .err = err};
    strata_status status = STRATA_OK;
    st.out = malloc(st.out_cap);
    if (!st.out)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "tokenizer: out of memory for %zu bytes of NFC text",
                           st.out_cap);
    for (size_t i = 0; i < len && status == STRATA_OK;) {
        uint8_t b = (uint8_t)text[i];
        size_t n = b < 0x80 ? 1 : utf8_sequence_length(text + i, len - i);
        uint32_t cp = b;
        if (n == 0) {
            cp = RAW_BYTE + b;
            n = 1;
        } else if (n > 1) {
            cp = b & (0xFFu >> (n + 1));
            for (size_t k = 1; k < n; k++)
                cp = (cp << 6) | ((uint8_t)text[i + k] & 0x3F);
        }
        i += n;
        uint32_t parts[4];
        size_t n_parts = 0;
        decompose(cp, parts, &n_parts);
        for (size_t k = 0; k < n_parts && status == STRATA_OK; k++)
            status = take(&st, parts[k]);
    }
    if (status == STRATA_OK) {
        compose_run(&st);
        status = emit_run(&st);
    }
    free(st.run);
    free(st.scratch);
    if (status != STRATA_OK) {
        free(st.out);
        return status;
    }
    *out = st.out;
    *out_len = st.out_len;
    return STRATA_OK;
}
