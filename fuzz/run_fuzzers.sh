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

# Seed directories per target (read-only: new inputs go to the work corpus).
seeds_for() {
  case "$1" in
    fuzz_gguf) echo "$root/tests/data/gguf $root/tests/data/gguf/malformed" ;;
    *)
      local area=${1#fuzz_}
      [ -d "$root/tests/data/$area" ] && echo "$root/tests/data/$area"
      [ -d "$root/tests/data/$area/malformed" ] && echo "$root/tests/data/$area/malformed"
      ;;
  esac
}

status=0
mkdir -p "$build/fuzz-artifacts"
for target in "${targets[@]}"; do
  work="$build/fuzz-corpus/$target"
  mkdir -p "$work"
  echo "== $target: ${seconds}s"
  # shellcheck disable=SC2046
  if ! "$build/$target" "$work" $(seeds_for "$target") -max_total_time="$seconds" -max_len=65536 \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$target-"; then
    echo "!! $target failed; see $build/fuzz-artifacts/" >&2
    status=1
  fi
done
exit $status
