/* Internal: Unicode Normalization Form C (UAX #15), for tokenizers whose
 * published normalizer is NFC (Qwen2, Qwen3).
 *
 * NFC is canonical decomposition (recursive, Hangul by arithmetic),
 * canonical ordering of the combining marks by class, then canonical
 * composition (primary composites only: composition exclusions and
 * singletons stay decomposed). The tables are generated from Python's
 * unicodedata by tests/tools/make_unicode_nfc.py (unicode_nfc_tables.c). */
#ifndef STRATA_UNICODE_NFC_H
#define STRATA_UNICODE_NFC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Code points first..last (sorted, disjoint) have value. */
typedef struct nfc_range {
    uint32_t first, last;
    uint8_t value;
} nfc_range;

/* One step of a canonical decomposition: code_point -> first (second when
 * it is not 0). Sorted by code_point. */
typedef struct nfc_decomposition {
    uint32_t code_point, first, second;
} nfc_decomposition;

extern const nfc_range NFC_COMBINING_CLASS[];       /* value: the canonical combining class */
extern const size_t NFC_COMBINING_CLASS_COUNT;
extern const nfc_decomposition NFC_DECOMPOSITION[];
extern const size_t NFC_DECOMPOSITION_COUNT;
/* The primary composites, as indices into NFC_DECOMPOSITION sorted by
 * (first, second). */
extern const uint16_t NFC_COMPOSITION[];
extern const size_t NFC_COMPOSITION_COUNT;
/* The code points the quick check must look at: those with a combining
 * class, those NFC changes alone, and those that may combine with what
 * precedes them. Text without any of them is NFC. */
extern const nfc_range NFC_QUICK_CHECK[];
extern const size_t NFC_QUICK_CHECK_COUNT;

/* Whether NFC might change text[0..len): false means the text is NFC and
 * needs no copy (pure ASCII, most text in any script). Never reads past
 * len. */
bool unicode_nfc_may_change(const char *text, size_t len);

/* Writes the NFC form of text[0..len) into *out (malloc'ed, the caller
 * frees; *out_len bytes, not NUL-terminated). Bytes that are not part of
 * valid UTF-8 are copied as they are and compose with nothing. The output
 * is at most 3 * len bytes (UTF-8 NFC grows at most threefold); memory
 * besides it grows with the longest run of combining marks. Returns
 * STRATA_OUT_OF_MEMORY when an allocation fails. */
strata_status unicode_nfc(const char *text, size_t len, char **out, size_t *out_len, strata_error *err);

#endif
