#!/usr/bin/env bash
# End-to-end checks of the strata command: help texts, info, run (greedy
# text, logits dump, seeds, --tokens), malformed files, bad flags.
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR, STRATA_TEST_DATA_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

expect_in() {
    local file="$1" pattern="$2" what="$3"
    grep -q -- "$pattern" "$file" || fail "$what: '$pattern' not in $(basename "$file")"
}

# --- help -------------------------------------------------------------------
expect_status 0 "strata --help" -- "$STRATA" --help && expect_in "$work/out" "usage: strata" "strata --help"
for cmd in info run bench tokenize synth; do
    expect_status 0 "strata $cmd --help" -- "$STRATA" "$cmd" --help && expect_in "$work/out" "usage" "strata $cmd --help"
done

# --- info ---------------------------------------------------------------------
if expect_status 0 "info stories260K" -- "$STRATA" info "$STORIES"; then
    expect_in "$work/out" "n_vocab *512" "info stories260K"
    expect_in "$work/out" "n_layer *5" "info stories260K"
    expect_in "$work/out" "architecture: *llama" "info stories260K"
    expect_in "$work/out" "blk.4.ffn_down.weight" "info stories260K"
    expect_in "$work/out" "KV cache" "info stories260K"
fi
if expect_status 0 "info llama-2-tiny-random" -- "$STRATA" info "$TINY" --ctx 256 --kv-type f32; then
    expect_in "$work/out" "n_vocab *32000" "info tiny"
    expect_in "$work/out" "n_layer *1\$" "info tiny"
    expect_in "$work/out" "MOSTLY_F16" "info tiny"
    # 2 (K and V) x 1 layer x 256 positions x 8 (2 kv heads x 4) x 4 bytes = 16 KiB, as run would place it
    expect_in "$work/out" "^| cpu | 0 | output, embedding | [^|]* | 16.00 KiB |" "info tiny --ctx 256 --kv-type f32"
fi

# --- run: greedy text ---------------------------------------------------------
prompt="Once upon a time"
if expect_status 0 "run greedy" -- "$STRATA" run -m "$STORIES" -p "$prompt" -n 40 --temp 0; then
    expect_in "$work/out" "^$prompt" "run greedy (prompt echoed first)"
    expect_in "$work/out" "Lily" "run greedy"
    expect_in "$work/err" "tok/s" "run greedy (stats on stderr)"
fi

# --- run: logits dump ---------------------------------------------------------
if expect_status 0 "run --dump-logits" -- "$STRATA" run -m "$STORIES" -p "$prompt" -n 1 --temp 0 \
    --dump-logits "$work/logits.bin" --verbose; then
    # the verbose line says how many prompt tokens there were
    n_prompt="$(sed -n 's/.* \([0-9][0-9]*\) prompt tokens.*/\1/p' "$work/err" | head -1)"
    size="$(stat -c %s "$work/logits.bin" 2>/dev/null || echo 0)"
    if [[ -z "$n_prompt" ]]; then
        fail "run --verbose did not report the prompt token count"
    elif [[ "$size" -ne $((n_prompt * 512 * 4)) ]]; then
        fail "--dump-logits wrote $size bytes, expected $n_prompt x 512 x 4"
    fi
fi

# --- run: seeds -----------------------------------------------------------------
run_seeded() {
    "$STRATA" run -m "$STORIES" -p "$prompt" -n 30 --temp 0.8 --seed "$1" 2>/dev/null
}
first="$(run_seeded 1)"
again="$(run_seeded 1)"
[[ -n "$first" && "$first" == "$again" ]] || fail "the same seed gave different text"
differing=0
for seed in 2 3 4; do
    [[ "$(run_seeded "$seed")" != "$first" ]] && differing=$((differing + 1))
done
[[ $differing -ge 1 ]] || fail "seeds 1..4 all gave the same text at temp 0.8"

# --- run: token ids -------------------------------------------------------------
if expect_status 0 "run --tokens" -- "$STRATA" run -m "$STORIES" --tokens "1 403 407" -n 8 --temp 0; then
    [[ -s "$work/out" ]] || fail "run --tokens printed nothing"
fi
expect_status 1 "run --tokens out of vocabulary" -- "$STRATA" run -m "$STORIES" --tokens "1 99999" -n 2 &&
    expect_in "$work/err" "99999" "run --tokens out of vocabulary names the id"

# --- malformed files ----------------------------------------------------------
malformed="$DATA/gguf/malformed"
if [[ -d "$malformed" ]]; then
    for file in "$malformed"/*.gguf; do
        [[ -f "$file" ]] || continue
        "$STRATA" info "$file" >"$work/out" 2>"$work/err"
        status=$?
        name="$(basename "$file")"
        if [[ $status -gt 128 ]]; then
            fail "info $name: killed by signal $((status - 128))"
        elif [[ $status -ne 1 ]]; then
            fail "info $name: exit status $status, expected 1"
        elif [[ ! -s "$work/err" ]]; then
            fail "info $name: no message on stderr"
        fi
    done
else
    echo "note: $malformed does not exist; malformed-file checks skipped"
fi
for bad in empty:"" text:"not a gguf file"; do
    printf '%s' "${bad#*:}" >"$work/${bad%%:*}.gguf"
    expect_status 1 "info ${bad%%:*} file" -- "$STRATA" info "$work/${bad%%:*}.gguf" &&
        expect_in "$work/err" "${bad%%:*}.gguf" "info ${bad%%:*} file names the file"
done
head -c 200 "$STORIES" >"$work/truncated.gguf"
expect_status 1 "info truncated file" -- "$STRATA" info "$work/truncated.gguf"
expect_status 1 "info missing file" -- "$STRATA" info "$work/does-not-exist.gguf"

# --- bad flags ------------------------------------------------------------------
expect_status 2 "unknown command" -- "$STRATA" frobnicate
expect_status 2 "info without a model" -- "$STRATA" info
expect_status 2 "info --ctx abc" -- "$STRATA" info "$STORIES" --ctx abc
expect_status 2 "run -n 1.5" -- "$STRATA" run -m "$STORIES" -p x -n 1.5 && expect_in "$work/err" "-n" "run -n 1.5"
expect_status 2 "run --temp without a value" -- "$STRATA" run -m "$STORIES" -p x --temp
expect_status 2 "run --bogus" -- "$STRATA" run -m "$STORIES" -p x --bogus
expect_status 2 "run without a prompt" -- "$STRATA" run -m "$STORIES"
expect_status 2 "bench -o xml" -- "$STRATA" bench -m "$STORIES" -o xml

# --- a backend this build may not have (tests/test_cuda_cli.sh does CUDA) -----------
if expect_status 1 "run --backend metal" -- "$STRATA" run -m "$STORIES" -p x -n 1 --backend metal; then
    [[ -s "$work/err" ]] || fail "run --backend metal: no message"
fi

# --- bench: a tiny run in each format ------------------------------------------------
if expect_status 0 "bench md" -- "$STRATA" bench -m "$STORIES" -p 16 -n 8 -r 2 --no-bandwidth; then
    expect_in "$work/out" "| pp16 |" "bench md"
    expect_in "$work/out" "| tg8 |" "bench md"
fi
expect_status 0 "bench json" -- "$STRATA" bench -m "$STORIES" -p 8 -n 4 -r 1 -o json --no-bandwidth &&
    expect_in "$work/out" '"test": "tg4"' "bench json"
expect_status 0 "bench csv" -- "$STRATA" bench -m "$STORIES" -p 8 -n 0 -r 1 -o csv --no-bandwidth &&
    expect_in "$work/out" "^model,size_bytes" "bench csv"
# the default measures the device first (bandwidth, matmul rate): what the
# measurement left in the backend's scratch must not count against the model
if expect_status 0 "bench with the device measured" -- "$STRATA" bench -m "$STORIES" -p 16 -n 8 -r 1 -t 2; then
    expect_in "$work/out" "| tg8 |" "bench measured"
    expect_in "$work/out" "^memory bandwidth: " "bench measured"
    expect_in "$work/out" "^matmul peak: " "bench measured"
fi
# a full planned batch (512) on K-quant weights: the activation rows take the
# widest 8-bit format (Q8_K), which the planned workspace bound must cover
if expect_status 0 "synth tiny q4_k_m" -- "$STRATA" synth --preset tiny --arch llama --type q4_k_m -o "$work/q4km.gguf" &&
    expect_status 0 "bench pp512 on q4_k_m" -- "$STRATA" bench -m "$work/q4km.gguf" -p 512 -n 4 -r 1 -t 2; then
    expect_in "$work/out" "| pp512 |" "bench pp512 on q4_k_m"
fi

if [[ $failures -ne 0 ]]; then
    echo "test_cli: $failures failure(s)"
    exit 1
fi
echo "test_cli: all checks passed"
