#!/usr/bin/env bash
# Checks the CUDA backend on a machine with an NVIDIA GPU, writing every log
# to one directory:
#
#   scripts/gpu-check.sh LOG_DIR [STEP...]
#
# Steps (default: all, in this order; each can run on its own, for machines
# that limit how long one command may take):
#   build     Release build with CUDA for this machine's GPU (nvidia-smi's
#             compute capability, else "native"), -lineinfo for the sanitizer
#   test      ctest -L cuda, then ctest -L cpu (test_backend_ops there runs the
#             op-conformance suite on every backend with a device: the GPU too)
#   sanitize  compute-sanitizer --tool memcheck on test_backend_ops and
#             test_cuda_device
#   bench     synthetic llama3-8b q4_k_m, q4_0 and q8_0 (written once into
#             MODEL_DIR), strata bench --backend cuda pp512 tg128, and the
#             device-to-device copy bandwidth and cuBLAS GEMM peak measured in
#             the same run; LOG_DIR/bench-summary.md puts each figure against
#             its ceiling
#
# Environment: BUILD_DIR (default build-gpu), MODEL_DIR (default
# LOG_DIR/models; about 18 GB), JOBS (default: cores), REPETITIONS (bench -r,
# default 3), CUDA_ARCHITECTURES (overrides the detected one).
# Every requested step runs even when an earlier one fails; LOG_DIR/summary.txt
# lists them, and the exit status is 0 only when all passed.
set -uo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log_dir="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(build test sanitize bench)
build_dir="${BUILD_DIR:-$repo/build-gpu}"
model_dir="${MODEL_DIR:-$log_dir/models}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 4)}"
repetitions="${REPETITIONS:-3}"
summary="$log_dir/summary.txt"
failed=0

record() { # record STEP STATUS
    printf '%-28s %s\n' "$1" "$2" | tee -a "$summary"
    [[ $2 == passed ]] || failed=1
}

run_logged() { # run_logged NAME COMMAND... : output to LOG_DIR/NAME.log
    local name=$1
    shift
    echo "== $name: $*"
    if "$@" >"$log_dir/$name.log" 2>&1; then
        record "$name" passed
    else
        record "$name" "FAILED (exit $?, see $name.log)"
    fi
}

detect_architecture() {
    if [[ -n ${CUDA_ARCHITECTURES:-} ]]; then
        echo "$CUDA_ARCHITECTURES"
        return
    fi
    local cap
    cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')"
    echo "${cap:-native}"
}

step_build() {
    local arch
    arch="$(detect_architecture)"
    {
        nvidia-smi || true
        nvcc --version || true
    } >"$log_dir/machine.log" 2>&1
    run_logged configure cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DSTRATA_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCMAKE_CUDA_FLAGS=-lineinfo
    run_logged build cmake --build "$build_dir" -j "$jobs"
    run_logged kernel-report "$repo/scripts/kernel-report.sh" "$build_dir" # registers, spills, loads per unit
}

step_test() {
    run_logged ctest-cuda ctest --test-dir "$build_dir" -L cuda --output-on-failure
    # on a GPU machine a skipped CUDA test means the device was not usable
    if grep -q "(Skipped)" "$log_dir/ctest-cuda.log"; then
        record cuda-tests-ran "FAILED (CUDA tests skipped on a GPU machine, see ctest-cuda.log)"
    fi
    run_logged ctest-cpu ctest --test-dir "$build_dir" -L cpu --output-on-failure -j "$jobs"
}

step_sanitize() {
    if ! command -v compute-sanitizer >/dev/null; then
        record sanitize "FAILED (compute-sanitizer not on PATH)"
        return
    fi
    # direct launches under the sanitizer as well as graphs: graphs are the default
    run_logged memcheck-backend-ops compute-sanitizer --tool memcheck --error-exitcode 1 "$build_dir/test_backend_ops"
    run_logged memcheck-cuda-device compute-sanitizer --tool memcheck --error-exitcode 1 "$build_dir/test_cuda_device"
    STRATA_CUDA_GRAPHS=0 run_logged memcheck-backend-ops-direct \
        compute-sanitizer --tool memcheck --error-exitcode 1 "$build_dir/test_backend_ops"
}

step_bench() {
    local strata="$build_dir/strata" types=(q4_k_m q4_0 q8_0)
    mkdir -p "$model_dir"
    for type in "${types[@]}"; do
        local model="$model_dir/llama3-8b-$type.gguf"
        if [[ ! -s $model ]]; then
            run_logged "synth-$type" "$strata" synth --preset llama3-8b --type "$type" -o "$model"
        fi
    done
    # the ceilings, measured in the same run (test_cuda_device prints them)
    run_logged ceilings "$build_dir/test_cuda_device"
    local bandwidth peak
    bandwidth="$(sed -n 's/^device-to-device copy bandwidth: \([0-9.]*\) GB\/s$/\1/p' "$log_dir/ceilings.log")"
    peak="$(sed -n 's/^cuBLAS f16 GEMM peak: \([0-9.]*\) TFLOP\/s$/\1/p' "$log_dir/ceilings.log")"
    {
        echo "# strata bench --backend cuda, $(date -u +%Y-%m-%d)"
        echo
        echo "device: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)"
        echo "ceilings measured in the same run: device-to-device copy ${bandwidth:-?} GB/s, cuBLAS f16 GEMM ${peak:-?} TFLOP/s"
        echo
        echo "| model | test | t/s | achieved | of ceiling |"
        echo "| --- | --- | ---: | ---: | ---: |"
    } >"$log_dir/bench-summary.md"
    for type in "${types[@]}"; do
        local model="$model_dir/llama3-8b-$type.gguf"
        [[ -s $model ]] || continue
        run_logged "bench-$type" "$strata" bench -m "$model" --backend cuda -p 512 -n 128 -r "$repetitions" \
            --no-bandwidth -o csv
        # tg: bytes read per token x t/s against the copy bandwidth; pp: 2 flops
        # per parameter per token against the GEMM peak
        awk -F, -v type="$type" -v bw="${bandwidth:-0}" -v peak="${peak:-0}" '
            NR == 1 { next }
            $6 ~ /^pp/ { tflops = $8 * 2 * $3 / 1e12
                         printf "| llama3-8b %s | %s | %.1f | %.1f TFLOP/s | %s |\n", type, $6, $8, tflops,
                                (peak > 0 ? sprintf("%.1f %%", 100 * tflops / peak) : "-") }
            $6 ~ /^tg/ { printf "| llama3-8b %s | %s | %.1f | %.1f GB/s | %s |\n", type, $6, $8, $10,
                                (bw > 0 ? sprintf("%.1f %%", 100 * $10 / bw) : "-") }
        ' "$log_dir/bench-$type.log" >>"$log_dir/bench-summary.md" 2>/dev/null || true
    done
    cat "$log_dir/bench-summary.md"
}

: >"$summary"
for step in "${steps[@]}"; do
    case "$step" in
    build) step_build ;;
    test) step_test ;;
    sanitize) step_sanitize ;;
    bench) step_bench ;;
    *)
        echo "gpu-check.sh: unknown step '$step' (build, test, sanitize, bench)" >&2
        exit 2
        ;;
    esac
done
echo
cat "$summary"
exit "$failed"
