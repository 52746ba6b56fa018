#!/usr/bin/env bash
# scripts/gpu-check.sh without a GPU: its bench step on the CPU backend with
# tiny models (summary, bench tables, the tile sweep on the first model only,
# log archive, models deleted after use), its placement step on the CPU
# alone, its lowbit step on the CPU with tiny low-bit models, a time budget too small for any step (every step listed as skipped,
# exit status 1), and bad usage. The GPU steps themselves need a GPU.
# Environment (set by ctest): STRATA, STRATA_BUILD_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

script="$here/../scripts/gpu-check.sh"
build_dir="${STRATA_BUILD_DIR:-$(dirname "$STRATA")}"

if expect_status 0 "bench step on the cpu" -- env BUILD_DIR="$build_dir" MODEL_DIR="$work/models" \
    BENCH_BACKEND=cpu BENCH_MODELS="tiny:q4_0 tiny:q8_0" GEMM_TILE_SWEEP="8" REPETITIONS=1 ARCHIVE="$work/logs.tar.gz" TIME_BUDGET=300 \
    bash "$script" "$work/logs" bench; then
    grep -q '^synth-tiny-q4_0 *passed' "$work/logs/summary.txt" || fail "summary: $(cat "$work/logs/summary.txt")"
    grep -q '^bench-tiny-q4_0 *passed' "$work/logs/summary.txt" || fail "summary: $(cat "$work/logs/summary.txt")"
    grep -q '| tg128 |' "$work/logs/bench-summary.md" || fail "bench summary has no tg128 row"
    grep -q '^tile-8-tiny-q4_0 *passed' "$work/logs/summary.txt" || fail "no tile sweep on the first model"
    grep -q '^tile-8-tiny-q8_0' "$work/logs/summary.txt" && fail "a tile sweep on the second model"
    grep -q 'STRATA_CUDA_GEMM_TILE_MIB=8' "$work/logs/bench-summary.md" || fail "bench summary lacks the sweep"
    grep -q '^memory bandwidth: ' "$work/logs/bench-summary.md" || fail "bench summary has no ceiling"
    # listed to a file first: grep -q stopping early would fail the pipeline (pipefail)
    tar -tzf "$work/logs.tar.gz" >"$work/listing" || fail "archive unreadable"
    grep -q 'logs/bench-tiny-q4_0.log' "$work/listing" || fail "archive lacks the bench log"
    [[ -e $work/models/tiny-q4_0.gguf ]] && fail "the model was not deleted after its bench"
fi

# the placement step on the CPU alone: a cap below the tiny model's size
# leaves nothing a GPU would get, but plan, bench and run --verbose run with
# the same flags and land in the summary with the counted peaks
if expect_status 0 "placement step on the cpu" -- env BUILD_DIR="$build_dir" MODEL_DIR="$work/models" \
    PLACEMENT_DEVICES=cpu PLACEMENT_MODELS="tiny:q4_0:64M" TIME_BUDGET=300 \
    bash "$script" "$work/placement" placement; then
    grep -q '^placement-bench-tiny-q4_0-64M *passed' "$work/placement/summary.txt" ||
        fail "summary: $(cat "$work/placement/summary.txt")"
    grep -q 'with --vram cpu=64M' "$work/placement/bench-summary.md" || fail "no placement section"
    grep -q '| predicted t/s |' "$work/placement/bench-summary.md" || fail "no predicted column"
    grep -q 'cpu: peak .* counted, planned' "$work/placement/bench-summary.md" || fail "no counted peak"
fi

# the lowbit step on the CPU: one tiny low-bit model for the 8B ones, and a
# tiny one capped at 1G for the big one (sized by a header-only synth, benched
# with the cap); no op suite (LOWBIT_OPS=0: test_backend_ops is the test step's)
if expect_status 0 "lowbit step on the cpu" -- env BUILD_DIR="$build_dir" MODEL_DIR="$work/models" \
    BENCH_BACKEND=cpu LOWBIT_MODELS="tiny:iq4_xs" LOWBIT_BIG="tiny:iq2_xs:1G" LOWBIT_OPS=0 REPETITIONS=1 \
    REPETITIONS_70B=1 TIME_BUDGET=600 bash "$script" "$work/lowbit" lowbit; then
    grep -q '^bench-tiny-iq4_xs *passed' "$work/lowbit/summary.txt" || fail "summary: $(cat "$work/lowbit/summary.txt")"
    grep -q '^bench-tiny-iq2_xs *passed' "$work/lowbit/summary.txt" || fail "summary: $(cat "$work/lowbit/summary.txt")"
    grep -q '^## tiny iq2_xs (--vram cpu=1G)' "$work/lowbit/bench-summary.md" || fail "no capped big-model section"
    grep -q '| tg128 |' "$work/lowbit/bench-summary.md" || fail "lowbit bench summary has no tg128 row"
    [[ -e $work/models/tiny-iq2_xs.gguf || -e $work/models/tiny-iq4_xs.gguf ]] && fail "a low-bit model was kept"
fi

if expect_status 1 "a budget too small for anything" -- env BUILD_DIR="$build_dir" MODEL_DIR="$work/models" \
    TIME_BUDGET=1 bash "$script" "$work/small" test bench lowbit sanitize bench70b; then
    [[ $(grep -c 'SKIPPED' "$work/small/summary.txt") -ge 4 ]] || fail "skips: $(cat "$work/small/summary.txt")"
fi

expect_status 2 "an unknown step" -- bash "$script" "$work/bad" frobnicate
expect_status 2 "no log dir" -- bash "$script"
expect_status 2 "models inside the log dir" -- env MODEL_DIR="$work/inside/models" bash "$script" "$work/inside" bench
expect_status 1 "offline-deps unpack of an empty folder" -- bash "$here/../scripts/offline-deps.sh" unpack \
    "$work/models" "$work/prefix"
expect_status 2 "offline-deps without a verb" -- bash "$here/../scripts/offline-deps.sh"

[[ $failures -eq 0 ]] || exit 1
echo "ok: gpu-check.sh benches, summarizes, archives and keeps to its budget; bad usage is refused"
