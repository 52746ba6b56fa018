#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan, library instrumented
# for coverage) and runs each for a while, seeded with the committed corpora.
#
# usage: fuzz/run_fuzzers.sh [build-dir] [seconds-per-target] [target...]
#   build-dir defaults to build-fuzz, seconds to 30, targets to every fuzz/fuzz_*.c
# Exits non-zero when a target crashes; the crashing input is left in
# <build-dir>/fuzz-artifacts/ (add it to the target's malformed corpus).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build-fuzz}
seconds=${2:-30}
shift $(( $# >= 2 ? 2 : $# ))
jobs=${FUZZ_BUILD_JOBS:-2}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in "$root"/fuzz/fuzz_*.c; do
    targets+=("$(basename "$source" .c)")
  done
fi

CC=${CC:-clang} cmake -S "$root" -B "$build" -DSTRATA_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

# fuzz_tokenizer's seeds: every test string of tests/data/vocab/*.inp (the
# files that are the same are read once), once per vocabulary (the first byte
# of an input picks one of the 9; see fuzz/fuzz_tokenizer.c), written into
# the build directory.
make_tokenizer_seeds() {
  local out="$build/fuzz-seeds/fuzz_tokenizer" sep=$'\n__ggml_vocab_test__\n' inp sum content piece n=0
  local -A seen=()
  rm -rf "$out"
  mkdir -p "$out"
  for inp in "$root"/tests/data/vocab/*.inp; do
    sum="$(cksum <"$inp")"
    [[ -n "${seen[$sum]:-}" ]] && continue
    seen[$sum]=1
    content="$(cat "$inp"; printf x)" # the x keeps trailing newlines
    content="${content%x}"
    while [[ "$content" == *"$sep"* ]]; do
      piece="${content%%"$sep"*}"
      content="${content#*"$sep"}"
      for vocab in 0 1 2 3 4 5 6 7 8; do
        printf "\\x0$vocab%s" "$piece" >"$out/$(printf '%05d' $n)-$vocab"
      done
      n=$((n + 1))
    done
  done
}

# fuzz_chat_template's seeds: the real templates of tests/data/templates,
# each after a byte that picks the conversation (see fuzz/fuzz_chat_template.c).
make_template_seeds() {
  local out="$build/fuzz-seeds/fuzz_chat_template" template n=0
  rm -rf "$out"
  mkdir -p "$out"
  for template in "$root"/tests/data/templates/*.jinja; do
    for conversation in 1 2 3; do
      { printf "\\x0$conversation"; cat "$template"; } >"$out/$(printf '%03d' $n)-$conversation"
    done
    n=$((n + 1))
  done
}

# Seed directories per target (read-only: new inputs go to the work corpus).
seeds_for() {
  case "$1" in
    fuzz_gguf) echo "$root/tests/data/gguf $root/tests/data/gguf/malformed" ;;
    fuzz_tokenizer) make_tokenizer_seeds && echo "$build/fuzz-seeds/fuzz_tokenizer" ;;
    fuzz_chat_template) make_template_seeds && echo "$build/fuzz-seeds/fuzz_chat_template" ;;
    # request bodies: the first byte picks the endpoint (see fuzz/fuzz_request.c)
    fuzz_request) echo "$root/tests/data/request" ;;
    *)
      local area=${1#fuzz_}
      [ -d "$root/tests/data/$area" ] && echo "$root/tests/data/$area"
      [ -d "$root/tests/data/$area/malformed" ] && echo "$root/tests/data/$area/malformed"
      ;;
  esac
}

# Longest input per target. Tokenizer bugs show in short texts (the cut
# check of fuzz_tokenizer cuts into pieces of 1 to 64 bytes), and a 64 KiB
# text costs it a thousand times the time of a short one.
max_len_for() {
  case "$1" in
    fuzz_tokenizer) echo 4096 ;;
    *) echo 65536 ;;
  esac
}

# A dictionary of the target's syntax, when there is one (fuzz/<area>.dict).
dict_for() {
  local dict="$root/fuzz/${1#fuzz_}.dict"
  [ -f "$dict" ] && echo "-dict=$dict"
}

status=0
mkdir -p "$build/fuzz-artifacts"
for target in "${targets[@]}"; do
  work="$build/fuzz-corpus/$target"
  mkdir -p "$work"
  echo "== $target: ${seconds}s"
  # shellcheck disable=SC2046
  if ! "$build/$target" "$work" $(seeds_for "$target") -max_total_time="$seconds" -max_len="$(max_len_for "$target")" \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$target-" \
      $(dict_for "$target"); then
    echo "!! $target failed; see $build/fuzz-artifacts/" >&2
    status=1
  fi
done
exit $status
