#!/usr/bin/env bash
# The tokenize command on large input: a file over the 64 MiB that are
# tokenized at once is refused with a message saying so (and is not read
# whole); a smaller file is tokenized.
# Environment (set by ctest): STRATA, STRATA_TEST_DATA_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

vocab="$DATA/vocab/ggml-vocab-gpt-2.gguf"
limit=$((64 * 1024 * 1024))

# short words and newlines: cheap to tokenize, should a limit be missing
yes "a b c d e f g" | head -c $((limit + 1)) >"$work/over.txt"
if expect_status 1 "tokenize a file of 64 MiB + 1 byte" "$STRATA" tokenize -m "$vocab" -f "$work/over.txt" --ids-only; then
    grep -q "64 MiB" "$work/err" || fail "the message does not name the 64 MiB limit: $(head -c 300 "$work/err")"
    [[ -s "$work/out" ]] && fail "ids were printed for a refused file"
fi
rm -f "$work/over.txt"

# well under the limit: tokenized, 8 ids a line (a, Ġb, ..., Ġg, Ċ)
yes "a b c d e f g" | head -n 100000 >"$work/under.txt"
if expect_status 0 "tokenize 100000 lines" "$STRATA" tokenize -m "$vocab" -f "$work/under.txt" --ids-only; then
    n_ids=$(wc -w <"$work/out")
    [[ "$n_ids" -eq 800000 ]] || fail "100000 lines of 'a b c d e f g' gave $n_ids ids, expected 800000"
fi

if [[ $failures -ne 0 ]]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "tokenize command: all checks passed"
