#!/usr/bin/env bash
# strata run --backend cuda. Where `strata devices` lists a CUDA device, on
# it; elsewhere the command must exit 1 with a message that says why (no
# GPU, no driver, or a build without CUDA), and the checks below run on the
# CPU emulation of CUDA (strata-cuda-emulated) where the build has it:
# greedy text equal to the CPU's (f32 stories260K with and without CUDA
# graphs, a q4_0 synthetic model), and a missing --device index is a message.
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR, STRATA_BUILD_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

"$STRATA" devices >"$work/devices" 2>&1 || fail "devices exited $?"

cuda_strata="$STRATA"
where="on the GPU"
if ! grep -q '^cuda[0-9][0-9]* ' "$work/devices"; then
    if expect_status 1 "run --backend cuda without a CUDA device" -- \
        "$STRATA" run --backend cuda -m "$STORIES" -p Once -n 4 --temp 0; then
        grep -Eq 'no CUDA device|driver is too old|not built into this strata' "$work/err" ||
            fail "run --backend cuda: unclear message '$(cat "$work/err")'"
    fi
    echo "no CUDA device here; run --backend cuda says: $(cat "$work/err")"
    cuda_strata="${STRATA_BUILD_DIR:-$here/../build}/strata-cuda-emulated"
    where="on the CUDA emulator"
    if [[ ! -x $cuda_strata ]]; then
        [[ $failures -eq 0 ]] || exit 1
        echo "ok: the message is clear; no CUDA emulator in this build for the rest"
        exit 0
    fi
fi

# same_text DESCRIPTION MODEL [VAR=VALUE...]: greedy text of cuda equals the cpu's
same_text() {
    local what="$1" model="$2"
    shift 2
    "$STRATA" run -m "$model" -p "Once upon a time" -n 24 --temp 0 >"$work/cpu.txt" 2>/dev/null ||
        fail "$what: cpu run exited $?"
    if expect_status 0 "$what" -- env "$@" "$cuda_strata" run --backend cuda -m "$model" -p "Once upon a time" \
        -n 24 --temp 0; then
        cmp -s "$work/out" "$work/cpu.txt" ||
            fail "$what: greedy text differs: cuda '$(cat "$work/out")' cpu '$(cat "$work/cpu.txt")'"
    fi
}

same_text "stories260K f32" "$STORIES"
same_text "stories260K f32, no graphs" "$STORIES" STRATA_CUDA_GRAPHS=0
"$STRATA" synth --arch llama --preset tiny --type q4_0 --seed 3 -o "$work/q4_0.gguf" 2>/dev/null ||
    fail "synth exited $?"
same_text "tiny llama q4_0" "$work/q4_0.gguf"

if expect_status 1 "--device 99" -- "$cuda_strata" run --backend cuda --device 99 -m "$STORIES" -p Once -n 4; then
    grep -q 'device cuda99 does not exist' "$work/err" || fail "--device 99: message '$(cat "$work/err")'"
fi

[[ $failures -eq 0 ]] || exit 1
echo "ok: strata run --backend cuda $where gives the CPU's greedy text; a missing device is a message"
