#!/usr/bin/env bash
# Checks the CUDA backend on a machine with an NVIDIA GPU, in one run that
# keeps to a time budget, writing every log to one directory:
#
#   scripts/gpu-check.sh LOG_DIR [STEP...]
#
# Steps (default: all, in this order, the most telling first):
#   build     Release build for this machine's GPU (compute capability from
#             nvidia-smi, else "native") with -lineinfo, without the CUDA
#             emulator; PCRE2, libmicrohttpd and jansson from DEPS_DIR when the machine has none
#   test      on the GPU: test_cuda_device, the op-conformance suite
#             (test_backend_ops, also with each attention kernel forced and
#             without graphs), end-to-end logits against the reference and
#             the CPU (test_cuda_e2e_logits, also without graphs), and
#             strata run --backend cuda against the CPU's text (test_cuda_cli)
#   bench     strata bench --backend cuda -p 512 -n 128 on synthetic llama3-8b
#             at q4_k_m, q4_0 and q8_0 (written with --distinct-rows, deleted
#             after use); each run measures the device-to-device copy
#             bandwidth and the cuBLAS GEMM peak as its ceilings;
#             LOG_DIR/bench-summary.md collects the tables. On the first model,
#             pp512 again with each GEMM tile size of GEMM_TILE_SWEEP
#   sanitize  compute-sanitizer --tool memcheck on test_backend_ops (graphs
#             on and off) and test_cuda_device
#   placement a model that does not fit the GPU's cap: llama3-8b q4_k_m with
#             --vram cuda0=3G and llama3-70b q4_k_m with --vram cuda0=24G (the
#             70B when disk and host memory have room), the rest on the CPU:
#             strata plan, bench (measured next to predicted tokens/s) and
#             run --verbose (each device's counted peak next to the plan and
#             the cap); into LOG_DIR/bench-summary.md
#   bench70b  the same bench on llama3-70b q4_k_m, when the GPU's free memory
#             and the disk have room for it
#   lowbit    the low-bit formats (IQ*, MXFP4, TQ*) on the GPU: their op-conformance
#             cases are part of test_backend_ops, run here unless the `test` step
#             is in this run too (either way a format the backend still refuses
#             fails the step); then strata bench --backend cuda -p 512 -n 128 on
#             synthetic llama3-8b at iq2_xs, iq3_s and iq4_xs, and on llama3-70b
#             at iq2_xs on one card capped at --vram cuda0=24G (the plan of a
#             24 GB card: all 80 layers and the 4096-position KV cache on it;
#             uncapped once more if that fails), when the disk and the GPU's
#             free memory have room (the file is ~20 GB); into
#             LOG_DIR/bench-summary.md. Every model is written with
#             --distinct-rows 64 and deleted after use. synth quantizes on all
#             cores; measured on a busy 2-core machine, llama3-8b iq2_xs took
#             27 s of CPU (23 user, 4 system; 98 s wall) with --distinct-rows
#             64, and without it 35 s of CPU wrote 1.6 % of the file (about
#             37 CPU-minutes in all, minutes even on 16 cores). The 70B
#             quantizes 5 times the 8B's distinct rows and writes 20 GB. The
#             step needs 150 s to start and 400 s left for the 70B; on 16
#             cores expect about 1 minute per 8B and 3 to 5 for the 70B
#   report    static facts of the kernels (scripts/kernel-report.sh)
#
# Environment:
#   TIME_BUDGET  seconds for the whole run (default: none). Each step starts
#                only when the least it needs is left, and each command is
#                stopped when the budget runs out: the run ends in time, logs
#                and summary written
#   ARCHIVE      a .tar.gz to pack LOG_DIR into after every step (for runners
#                that keep a few files)
#   DEPS_DIR     .deb files of scripts/offline-deps.sh download, unpacked when
#                CMake cannot find PCRE2, libmicrohttpd or jansson on this machine
#                (the GPU machine lent on 2026-12-04 had neither PCRE2's nor
#                jansson's headers)
#   BUILD_DIR (default build-gpu), MODEL_DIR (default a folder under TMPDIR,
#   never inside LOG_DIR), KEEP_MODELS=1 (keep the synthetic models), JOBS
#   (default: cores), REPETITIONS (bench -r, default 3), CUDA_ARCHITECTURES
#   (overrides the detected one), BENCH_BACKEND (default cuda),
#   BENCH_MODELS (default "llama3-8b:q4_k_m llama3-8b:q4_0 llama3-8b:q8_0"),
#   GEMM_TILE_SWEEP (STRATA_CUDA_GEMM_TILE_MIB values, default "8 16 32 128";
#   empty: no sweep), PLACEMENT_DEVICES (default "cuda0,cpu"; the cap is on
#   the first), PLACEMENT_MODELS (default "llama3-8b:q4_k_m:3G
#   llama3-70b:q4_k_m:24G", PRESET:TYPE:CAP each), LOWBIT_MODELS (default
#   "llama3-8b:iq2_xs llama3-8b:iq3_s llama3-8b:iq4_xs"), LOWBIT_BIG (default
#   "llama3-70b:iq2_xs:24G", PRESET:TYPE:CAP with an empty CAP for none; empty:
#   no big model), LOWBIT_BIG_SECONDS (the least time left for the big model to
#   start, default 400), LOWBIT_OPS=0 (no test_backend_ops in the lowbit step)
# Every step that fits runs even when an earlier one failed; LOG_DIR/summary.txt
# lists each command with its outcome and seconds; the exit status is 0 only
# when every step ran and passed.
set -uo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    # the comment at the top of this file, up to its first line of code
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
    exit 2
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log_dir="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(build test bench lowbit placement sanitize bench70b)
build_dir="${BUILD_DIR:-$repo/build-gpu}"
model_dir="${MODEL_DIR:-${TMPDIR:-/tmp}/strata-gpu-models}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 4)}"
repetitions="${REPETITIONS:-3}"
bench_backend="${BENCH_BACKEND:-cuda}"
read -r -a bench_models <<<"${BENCH_MODELS:-llama3-8b:q4_k_m llama3-8b:q4_0 llama3-8b:q8_0}"
placement_devices="${PLACEMENT_DEVICES:-cuda0,cpu}"
read -r -a placement_models <<<"${PLACEMENT_MODELS:-llama3-8b:q4_k_m:3G llama3-70b:q4_k_m:24G}"
read -r -a lowbit_models <<<"${LOWBIT_MODELS-llama3-8b:iq2_xs llama3-8b:iq3_s llama3-8b:iq4_xs}"
lowbit_big="${LOWBIT_BIG-llama3-70b:iq2_xs:24G}"
budget="${TIME_BUDGET:-0}"
started_at=$(date +%s)
summary="$log_dir/summary.txt"
strata="$build_dir/strata"
failed=0

case "$model_dir/" in
"$log_dir"/*)
    echo "gpu-check.sh: MODEL_DIR must not be inside LOG_DIR (models are GBs)" >&2
    exit 2
    ;;
esac

# --- time budget and logging ---------------------------------------------------

seconds_left() { # what is left of TIME_BUDGET (a large number when there is none)
    if [[ $budget -le 0 ]]; then
        echo 1000000
    else
        echo $((budget - ($(date +%s) - started_at)))
    fi
}

record() { # record NAME OUTCOME
    printf '%-34s %s\n' "$1" "$2" | tee -a "$summary"
    [[ $2 == passed* ]] || failed=1
}

# fits NAME SECONDS: whether at least SECONDS are left; records a skip if not
fits() {
    local left
    left=$(seconds_left)
    if [[ $left -lt $2 ]]; then
        record "$1" "SKIPPED (time budget: ${left} s left, needs ${2} s)"
        return 1
    fi
    return 0
}

# run_logged NAME CAP COMMAND...: runs the command with output in
# LOG_DIR/NAME.log, stopped after CAP seconds or when the budget runs out
run_logged() {
    local name=$1 cap=$2
    shift 2
    local left limit
    left=$(($(seconds_left) - 10)) # keep time to write the summary and archive
    limit=$((cap < left ? cap : left))
    if [[ $limit -lt 5 ]]; then
        record "$name" "SKIPPED (time budget spent)"
        return 1
    fi
    echo "== $name (at most ${limit} s): $*"
    local begin status
    begin=$(date +%s)
    timeout -k 5 "$limit" "$@" >"$log_dir/$name.log" 2>&1
    status=$?
    local took=$(($(date +%s) - begin))
    if [[ $status -eq 0 ]]; then
        record "$name" "passed (${took} s)"
    elif [[ $status -eq 124 || $status -eq 137 ]]; then
        record "$name" "TIMED OUT after ${took} s (see $name.log)"
    else
        record "$name" "FAILED (exit $status after ${took} s, see $name.log)"
    fi
    return "$status"
}

# built STEP: whether the build left a strata command; records a skip if not
built() {
    [[ -x $strata ]] && return 0
    record "$1" "SKIPPED (no $strata: the build failed)"
    return 1
}

pack_logs() {
    [[ -n ${ARCHIVE:-} ]] || return 0
    tar -czf "$ARCHIVE.partial" -C "$(dirname "$log_dir")" "$(basename "$log_dir")" 2>/dev/null &&
        mv -f "$ARCHIVE.partial" "$ARCHIVE"
}

# --- build ---------------------------------------------------------------------

# nvcc and compute-sanitizer: on PATH, else beside each other in the toolkit
find_cuda_tool() { # find_cuda_tool NAME
    local nvcc_dir
    nvcc_dir="$(dirname "$(command -v nvcc 2>/dev/null || echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")")"
    command -v "$1" 2>/dev/null && return
    for candidate in "$nvcc_dir/$1" "${CUDA_HOME:-/usr/local/cuda}/bin/$1" \
        "${CUDA_HOME:-/usr/local/cuda}/compute-sanitizer/$1"; do
        [[ -x $candidate ]] && echo "$candidate" && return
    done
    return 1
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

describe_machine() {
    date -u
    nvidia-smi || echo "nvidia-smi: not available"
    "$(find_cuda_tool nvcc || echo nvcc)" --version || echo "nvcc: not found"
    find_cuda_tool compute-sanitizer || echo "compute-sanitizer: not found"
    cmake --version | head -n 1
    "${CC:-cc}" --version | head -n 1
    command -v make ninja pkg-config || true
    nproc
    free -g 2>/dev/null || true
    df -h "$repo" "$(dirname "$model_dir")" 2>/dev/null || true
}

step_build() {
    describe_machine >"$log_dir/machine.log" 2>&1
    local nvcc
    nvcc="$(find_cuda_tool nvcc)" || nvcc=nvcc
    local args=(-S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DSTRATA_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc"
        -DSTRATA_CUDA_EMULATED_TESTS=OFF -DCMAKE_CUDA_ARCHITECTURES="$(detect_architecture)"
        -DCMAKE_CUDA_FLAGS=-lineinfo)
    if ! command -v make >/dev/null && command -v ninja >/dev/null; then
        args+=(-G Ninja)
    fi
    if [[ -n ${DEPS_DIR:-} ]]; then
        # used only where CMake finds none of the machine's own (PCRE2, libmicrohttpd, jansson)
        local prefix
        if prefix="$("$repo/scripts/offline-deps.sh" unpack "$DEPS_DIR" "$build_dir/deps" 2>>"$log_dir/machine.log")"; then
            args+=(-DCMAKE_PREFIX_PATH="$prefix")
        fi
    fi
    run_logged configure 120 cmake "${args[@]}" || return
    run_logged build 400 cmake --build "$build_dir" -j "$jobs"
}

# --- tests on the GPU --------------------------------------------------------------

ctest_logged() { # ctest_logged NAME CAP REGEX [VAR=VALUE...]
    local name=$1 cap=$2 regex=$3
    shift 3
    run_logged "$name" "$cap" env "$@" ctest --test-dir "$build_dir" -R "$regex" --output-on-failure -V \
        --no-tests=error --timeout "$cap"
    # on a GPU machine a skipped CUDA test or backend means the device was not usable
    if grep -Eq '\(Skipped\)|Not Run|skipping backend cuda|no CUDA device here' "$log_dir/$name.log" 2>/dev/null; then
        record "$name-on-gpu" "FAILED (the GPU was not used: a test or backend skipped, see $name.log)"
    fi
}

step_test() {
    built test || return
    "$strata" devices >"$log_dir/devices.log" 2>&1
    fits test 30 || return
    ctest_logged device 120 '^test_cuda_device$'
    ctest_logged backend-ops 180 '^test_backend_ops$'
    ctest_logged e2e-logits 180 '^test_cuda_e2e_logits$'
    ctest_logged cuda-cli 120 '^test_cuda_cli$'
    ctest_logged backend-ops-attention-rows 120 '^test_backend_ops$' STRATA_CUDA_ATTENTION=rows
    ctest_logged backend-ops-attention-tiled 120 '^test_backend_ops$' STRATA_CUDA_ATTENTION=tiled
    ctest_logged backend-ops-no-graphs 120 '^test_backend_ops$' STRATA_CUDA_GRAPHS=0
    ctest_logged e2e-logits-no-graphs 180 '^test_cuda_e2e_logits$' STRATA_CUDA_GRAPHS=0
    ctest_logged workspace 120 '^test_cuda_workspace$'
}

# --- benchmarks --------------------------------------------------------------------

# bench_model PRESET TYPE REPETITIONS [SWEEP [SYNTH_CAP [BENCH_FLAG...]]]:
# synth (stopped after SYNTH_CAP seconds, default 600), bench with the extra
# flags (and with SWEEP non-empty, pp512 at each GEMM tile size of
# GEMM_TILE_SWEEP), delete
bench_model() {
    local preset=$1 type=$2 reps=$3 sweep=${4:-} synth_cap=${5:-600}
    shift $(($# < 5 ? $# : 5))
    local extra=("$@")
    local name="$preset-$type" model="$model_dir/$preset-$type.gguf"
    mkdir -p "$model_dir"
    if [[ ! -s $model ]]; then
        # rows repeat (64 distinct per matrix): the same bytes per token,
        # minutes less of quantizing
        run_logged "synth-$name" "$synth_cap" "$strata" synth --arch llama --preset "$preset" --type "$type" \
            --distinct-rows 64 -o "$model" || { rm -f "$model"; return 1; }
    fi
    run_logged "bench-$name" 600 "$strata" bench -m "$model" --backend "$bench_backend" -p 512 -n 128 -r "$reps" \
        "${extra[@]}"
    local bench_status=$?
    if [[ -s $log_dir/bench-$name.log ]]; then
        {
            echo "## $preset $type${extra[*]:+ (${extra[*]})}"
            echo
            grep -E '^\||^device:|^memory bandwidth:|^matmul peak:|^predicted:' "$log_dir/bench-$name.log"
            echo
        } >>"$log_dir/bench-summary.md"
    fi
    if [[ -n $sweep ]]; then
        local tile
        for tile in ${GEMM_TILE_SWEEP-8 16 32 128}; do
            fits "tile-$tile-$name" 30 || break
            run_logged "tile-$tile-$name" 180 env STRATA_CUDA_GEMM_TILE_MIB="$tile" "$strata" bench -m "$model" \
                --backend "$bench_backend" -p 512 -n 0 -r "$reps" &&
                printf '%s\n' "pp512 with STRATA_CUDA_GEMM_TILE_MIB=$tile (default 64):" \
                    "$(grep -E '^\| .* pp512 ' "$log_dir/tile-$tile-$name.log")" "" >>"$log_dir/bench-summary.md"
        done
    fi
    [[ ${KEEP_MODELS:-0} == 1 ]] || rm -f "$model"
    return "$bench_status"
}

start_bench_summary() {
    [[ -s $log_dir/bench-summary.md ]] && return
    {
        echo "# strata bench --backend $bench_backend -p 512 -n 128, $(date -u +%Y-%m-%d)"
        echo
        echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
        echo
    } >"$log_dir/bench-summary.md"
}

step_bench() {
    built bench || return
    start_bench_summary
    local sweep=sweep
    for entry in "${bench_models[@]}"; do
        fits "bench-${entry/:/-}" 60 || continue
        bench_model "${entry%%:*}" "${entry#*:}" "$repetitions" "$sweep"
        sweep=
    done
}

# llama3-70b q4_k_m where it fits: the model's bytes plus 6 GiB (cache,
# scratch) of free GPU memory, the model's bytes plus 1 GiB of disk
step_bench70b() {
    built bench70b || return
    fits bench70b 240 || return
    local model_bytes gpu_free_mib disk_free_kib
    model_bytes="$("$strata" synth --list | awk '$1 == "llama/llama3-70b" { print $3 }')"
    gpu_free_mib="$(nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits 2>/dev/null | head -n 1 | tr -d ' ')"
    mkdir -p "$model_dir"
    disk_free_kib="$(df -Pk "$model_dir" | awk 'NR == 2 { print $4 }')"
    local need_mib=$((model_bytes / 1048576))
    if [[ -z $gpu_free_mib || $gpu_free_mib -lt $((need_mib + 6144)) ]]; then
        record bench70b "SKIPPED (GPU free memory ${gpu_free_mib:-?} MiB, needs $((need_mib + 6144)))"
        return
    fi
    if [[ $disk_free_kib -lt $(((need_mib + 1024) * 1024)) ]]; then
        record bench70b "SKIPPED (disk free $((disk_free_kib / 1024)) MiB in $model_dir, needs $((need_mib + 1024)))"
        return
    fi
    start_bench_summary
    bench_model llama3-70b q4_k_m "${REPETITIONS_70B:-2}"
}

# --- the low-bit formats ------------------------------------------------------------------

# lowbit_big PRESET TYPE CAP: the big model where the disk and (on CUDA) the
# GPU's free memory have room for its bytes (a header-only synth of the same
# shape gives them), benched at --vram cuda0=CAP, and uncapped if that fails
lowbit_big() {
    local preset=$1 type=$2 cap=$3
    local name="$preset-$type" sizing="$model_dir/$preset-$type.size.gguf" model_bytes
    mkdir -p "$model_dir"
    if ! "$strata" synth --arch llama --preset "$preset" --type "$type" --header-only -o "$sizing" \
        >"$log_dir/size-$name.log" 2>&1; then
        rm -f "$sizing"
        record "lowbit-$name" "FAILED (synth --header-only, see size-$name.log)"
        return
    fi
    model_bytes=$(stat -c %s "$sizing")
    rm -f "$sizing"
    local need_mib=$((model_bytes / 1048576)) disk_free_kib gpu_free_mib
    disk_free_kib="$(df -Pk "$model_dir" | awk 'NR == 2 { print $4 }')"
    if [[ $disk_free_kib -lt $(((need_mib + 1024) * 1024)) ]]; then
        record "lowbit-$name" "SKIPPED (disk free $((disk_free_kib / 1024)) MiB in $model_dir, needs $((need_mib + 1024)))"
        return
    fi
    if [[ $bench_backend == cuda ]]; then
        gpu_free_mib="$(nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits 2>/dev/null | head -n 1 |
            tr -d ' ')"
        if [[ -z $gpu_free_mib || $gpu_free_mib -lt $((need_mib + 4096)) ]]; then
            record "lowbit-$name" "SKIPPED (GPU free memory ${gpu_free_mib:-?} MiB, needs $((need_mib + 4096)))"
            return
        fi
    fi
    local keep=${KEEP_MODELS:-0} device=$bench_backend
    [[ $device == cpu ]] || device=${device}0
    if [[ -n $cap ]]; then
        # keep the file for the uncapped try
        KEEP_MODELS=1 bench_model "$preset" "$type" "${REPETITIONS_70B:-2}" "" 900 --vram "$device=$cap"
        local capped_status=$?
        if [[ $capped_status -ne 0 && -s $model_dir/$name.gguf ]] && fits "bench-$name-uncapped" 120; then
            mv "$log_dir/bench-$name.log" "$log_dir/bench-$name-capped.log"
            KEEP_MODELS=$keep bench_model "$preset" "$type" "${REPETITIONS_70B:-2}" "" 900
        fi
        [[ $keep == 1 ]] || rm -f "$model_dir/$name.gguf"
    else
        bench_model "$preset" "$type" "${REPETITIONS_70B:-2}" "" 900
    fi
}

step_lowbit() {
    built lowbit || return
    fits lowbit 150 || return
    local step ran_test=0
    for step in "${steps[@]}"; do
        [[ $step == test ]] && ran_test=1
    done
    # test_backend_ops runs every weight format the backend takes, and names
    # the formats it refuses: none may be refused now
    local ops_log="$log_dir/backend-ops.log" refused="(^|: )$bench_backend: [0-9]+ cases refused"
    if [[ $ran_test == 0 && ${LOWBIT_OPS:-1} == 1 ]]; then
        ctest_logged lowbit-backend-ops 180 '^test_backend_ops$'
        ops_log="$log_dir/lowbit-backend-ops.log"
    fi
    if grep -Eq "$refused" "$ops_log" 2>/dev/null; then
        record lowbit-formats "FAILED ($bench_backend refuses:$(grep -E "$refused" "$ops_log" | sed 's/.*weight formats//'))"
    elif [[ -s $ops_log ]]; then
        record lowbit-formats "passed (no weight format refused, see $(basename "$ops_log"))"
    fi
    start_bench_summary
    local entry
    for entry in "${lowbit_models[@]}"; do
        fits "bench-${entry/:/-}" 90 || continue
        bench_model "${entry%%:*}" "${entry#*:}" "$repetitions"
    done
    if [[ -n $lowbit_big ]]; then
        local preset=${lowbit_big%%:*} rest=${lowbit_big#*:}
        local type=${rest%%:*} cap=${rest#*:}
        [[ $rest == *:* ]] || cap=
        fits "lowbit-$preset-$type" "${LOWBIT_BIG_SECONDS:-400}" && lowbit_big "$preset" "$type" "$cap"
    fi
}

# --- placement: a model larger than the GPU's cap ----------------------------------------

# placement_model PRESET TYPE CAP: synth, plan, bench and run --verbose on
# PLACEMENT_DEVICES with the first capped at CAP, delete
placement_model() {
    local preset=$1 type=$2 cap=$3
    local name="$preset-$type" model="$model_dir/$preset-$type.gguf" capped=${placement_devices%%,*}
    local flags=(--device "$placement_devices" --vram "$capped=$cap")
    mkdir -p "$model_dir"
    if [[ ! -s $model ]]; then
        run_logged "synth-$name" 600 "$strata" synth --arch llama --preset "$preset" --type "$type" \
            --distinct-rows 64 -o "$model" || return
    fi
    local tests=(-p 512 -n 64 -r 2)
    [[ $preset == *70b* ]] && tests=(-p 64 -n 16 -r 1)
    run_logged "plan-$name-$cap" 60 "$strata" plan -m "$model" "${flags[@]}"
    run_logged "placement-bench-$name-$cap" 600 "$strata" bench -m "$model" "${flags[@]}" "${tests[@]}"
    run_logged "placement-run-$name-$cap" 300 "$strata" run -m "$model" "${flags[@]}" --tokens "1 2 3 4" -n 32 \
        --temp 0 --no-echo -v
    {
        echo "## $preset $type, $placement_devices with --vram $capped=$cap"
        echo
        grep -E '^\||^context|^predicted' "$log_dir/plan-$name-$cap.log" 2>/dev/null
        echo
        grep -E '^\||^device:|^memory bandwidth:|^matmul peak:|^predicted:' "$log_dir/placement-bench-$name-$cap.log" \
            2>/dev/null
        echo
        grep -E ': peak .* counted, planned ' "$log_dir/placement-run-$name-$cap.log" 2>/dev/null
        echo
    } >>"$log_dir/bench-summary.md"
    [[ ${KEEP_MODELS:-0} == 1 ]] || rm -f "$model"
}

step_placement() {
    built placement || return
    start_bench_summary
    for entry in "${placement_models[@]}"; do
        local preset=${entry%%:*} rest=${entry#*:}
        local type=${rest%%:*} cap=${rest#*:}
        fits "placement-$preset-$type" 90 || continue
        if [[ $preset == *70b* ]]; then
            # the file (~40 GiB) on disk, its CPU share in host memory
            local model_kib disk_free_kib mem_free_kib
            model_kib=$(($("$strata" synth --list | awk -v p="llama/$preset" '$1 == p { print $3 }') / 1024))
            mkdir -p "$model_dir"
            disk_free_kib="$(df -Pk "$model_dir" | awk 'NR == 2 { print $4 }')"
            mem_free_kib="$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)"
            if [[ $disk_free_kib -lt $((model_kib + 1048576)) || $mem_free_kib -lt $((model_kib + 4194304)) ]]; then
                record "placement-$preset-$type" "SKIPPED (disk ${disk_free_kib} KiB, memory ${mem_free_kib} KiB free)"
                continue
            fi
            fits "placement-$preset-$type" 300 || continue
        fi
        placement_model "$preset" "$type" "$cap"
    done
}

# --- compute-sanitizer ---------------------------------------------------------------

step_sanitize() {
    local sanitizer
    if ! sanitizer="$(find_cuda_tool compute-sanitizer)"; then
        record sanitize "FAILED (compute-sanitizer not found beside nvcc or on PATH)"
        return
    fi
    built sanitize || return
    fits sanitize 60 || return
    local memcheck=("$sanitizer" --tool memcheck --error-exitcode 1)
    # test_cuda_device asks for more memory than the card has, on purpose, and
    # checks the status: the API errors of that call are not memory errors
    run_logged memcheck-cuda-device 150 "${memcheck[@]}" --report-api-errors no "$build_dir/test_cuda_device"
    run_logged memcheck-backend-ops 240 "${memcheck[@]}" "$build_dir/test_backend_ops"
    run_logged memcheck-backend-ops-no-graphs 240 env STRATA_CUDA_GRAPHS=0 "${memcheck[@]}" \
        "$build_dir/test_backend_ops"
}

step_report() {
    run_logged kernel-report 120 "$repo/scripts/kernel-report.sh" "$build_dir"
}

# --- main ------------------------------------------------------------------------------

: >"$summary"
for step in "${steps[@]}"; do
    case "$step" in
    build | test | bench | placement | sanitize | bench70b | lowbit | report) ;;
    *)
        echo "gpu-check.sh: unknown step '$step' (build, test, bench, placement, sanitize, bench70b, lowbit, report)" >&2
        exit 2
        ;;
    esac
done
for step in "${steps[@]}"; do
    "step_$step"
    pack_logs
done
echo
echo "gpu-check: $(($(date +%s) - started_at)) s"
cat "$summary"
[[ -s $log_dir/bench-summary.md ]] && cat "$log_dir/bench-summary.md"
exit "$failed"
