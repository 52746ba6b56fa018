#!/usr/bin/env bash
# The synth command: help, --list, writing a tiny model that info and run
# accept, the same seed giving the same file, --vocab, and bad flags.
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

expect_status 0 "synth --help" "$STRATA" synth --help && grep -q -- "--preset" "$work/out" ||
    fail "synth --help does not describe --preset"
expect_status 0 "synth --list" "$STRATA" synth --list && grep -q "llama/llama3-70b" "$work/out" ||
    fail "synth --list does not list llama3-70b"

# a tiny model per architecture, read back by info and run
for arch in llama qwen2 qwen3 olmo2 gemma2 gemma3 phi3 mixtral qwen3moe; do
    model="$work/$arch.gguf"
    expect_status 0 "synth $arch" "$STRATA" synth --arch "$arch" --preset tiny --type q4_k_m --seed 5 -o "$model" ||
        continue
    gguf_arch=$arch
    [[ $arch == mixtral ]] && gguf_arch=llama # GGUF's llama with experts
    expect_status 0 "info on synth $arch" "$STRATA" info "$model" && grep -q "architecture:    $gguf_arch\$" "$work/out" ||
        fail "info does not show architecture $gguf_arch for $arch"
    expect_status 0 "run on synth $arch" "$STRATA" run -m "$model" -p "Hello" -n 4
done
# info tells the families apart
"$STRATA" info --no-tensors "$work/gemma2.gguf" >"$work/out" 2>&1
grep -q "softcap        attention 50, final 30" "$work/out" && grep -q "GeGLU" "$work/out" &&
    grep -q "sliding window 4 positions on 1 of every 2 layers" "$work/out" ||
    fail "info on gemma2 does not show its softcaps, GeGLU and window"
"$STRATA" info --no-tensors "$work/phi3.gguf" >"$work/out" 2>&1
grep -q "qkv            fused" "$work/out" && grep -q "longrope       short factors up to 8 positions" "$work/out" ||
    fail "info on phi3 does not show its fused QKV and LongRoPE"
"$STRATA" info --no-tensors "$work/olmo2.gguf" >"$work/out" 2>&1
grep -q "norms          after attention and FFN" "$work/out" && grep -q "over the projection" "$work/out" ||
    fail "info on olmo2 does not show its norms"

"$STRATA" info --no-tensors "$work/mixtral.gguf" >"$work/out" 2>&1
grep -q "experts        2 of 8 per token" "$work/out" || fail "info on mixtral does not show 2 of 8 experts"
"$STRATA" info --no-tensors "$work/qwen3moe.gguf" >"$work/out" 2>&1
grep -q "experts        2 of 8 per token, each 256 wide.*renormalized" "$work/out" ||
    fail "info on qwen3moe does not show 2 of 8 renormalized experts 256 wide"
# a real MoE shape with its 3-D experts as holes: the size the plan predicts
big="$work/qwen3-30b-a3b.gguf"
if expect_status 0 "synth qwen3-30b-a3b --header-only" "$STRATA" synth --preset qwen3-30b-a3b --type q4_k_m \
    --header-only -o "$big"; then
    expect_status 0 "info on qwen3-30b-a3b" "$STRATA" info --no-tensors "$big" &&
        grep -q "experts        8 of 128 per token, each 768 wide" "$work/out" ||
        fail "info on qwen3-30b-a3b does not show 8 of 128 experts 768 wide"
    size=$(stat -c %s "$big")
    [[ $size -gt 18500000000 && $size -lt 18700000000 ]] || fail "qwen3-30b-a3b q4_k_m header-only is $size bytes"
    rm -f "$big"
fi

# the same seed gives the same bytes; another seed does not
"$STRATA" synth --arch llama --preset tiny --type q8_0 --seed 9 -o "$work/a.gguf" 2>/dev/null
"$STRATA" synth --arch llama --preset tiny --type q8_0 --seed 9 -o "$work/b.gguf" 2>/dev/null
"$STRATA" synth --arch llama --preset tiny --type q8_0 --seed 10 -o "$work/c.gguf" 2>/dev/null
cmp -s "$work/a.gguf" "$work/b.gguf" || fail "same seed, different files"
cmp -s "$work/a.gguf" "$work/c.gguf" && fail "different seeds, same file"

# --vocab copies another model's tokenizer
if expect_status 0 "synth --vocab" "$STRATA" synth --arch llama --preset tiny --type f16 \
    --vocab "$MODELS/llama-2-tiny-random.gguf" -o "$work/vocab.gguf"; then
    expect_status 0 "info on --vocab model" "$STRATA" info "$work/vocab.gguf" && grep -q "32000" "$work/out" ||
        fail "--vocab model does not have 32000 tokens"
fi

# bad usage and bad values
expect_status 2 "synth without arguments" "$STRATA" synth
expect_status 2 "synth without -o" "$STRATA" synth --preset tiny --type f32
expect_status 2 "synth with an unknown flag" "$STRATA" synth --frobnicate 1
expect_status 2 "synth with zero distinct rows" "$STRATA" synth --preset tiny --type f32 --distinct-rows 0 \
    -o "$work/x.gguf"
expect_status 0 "synth --distinct-rows" "$STRATA" synth --arch llama --preset tiny --type q4_0 --distinct-rows 4 \
    -o "$work/rows.gguf" && expect_status 0 "run on a --distinct-rows model" "$STRATA" run -m "$work/rows.gguf" \
    -p "Hello" -n 4
expect_status 2 "synth with a negative seed" "$STRATA" synth --preset tiny --type f32 --seed -1 -o "$work/x.gguf"
expect_status 1 "synth with an unknown type" "$STRATA" synth --preset tiny --type q9_9 -o "$work/x.gguf" &&
    grep -q "unknown type 'q9_9'" "$work/err" || fail "unknown type message"
expect_status 1 "synth with a mismatched arch" "$STRATA" synth --arch qwen3 --preset llama3-8b --type f16 \
    -o "$work/x.gguf"
[[ -e "$work/x.gguf" ]] && fail "a failed synth left its output behind"

if [[ $failures -ne 0 ]]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "synth command: all checks passed"
