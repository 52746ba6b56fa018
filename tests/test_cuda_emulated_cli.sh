#!/usr/bin/env bash
# The strata command with the CUDA backend, on the CPU emulation of CUDA
# (strata-cuda-emulated, built with -DSTRATA_CUDA=ON; tests/cuda_emulator/):
# the machines where CUDA cannot start, played by the emulator, give exit
# status 1 and a message a user can act on, from `strata run` and in
# `strata devices`: no driver, a driver older than the runtime, no GPU, a
# device too small for the model, a bad GEMM tile setting. (Greedy text
# against the CPU and a missing device index: test_cuda_cli.sh, which runs
# on this emulator where no GPU is.)
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR, STRATA_BUILD_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

EMULATED="${STRATA_BUILD_DIR:-$here/../build}/strata-cuda-emulated"
if [[ ! -x "$EMULATED" ]]; then
    echo "SKIP: no $EMULATED (configure with -DSTRATA_CUDA=ON to build the CUDA backend and its emulation)"
    exit 77
fi

"$EMULATED" devices >"$work/devices" 2>&1 || fail "devices exited $?"
grep -q '^cuda0 ' "$work/devices" || fail "devices does not list the emulated CUDA device: $(cat "$work/devices")"

# expect_cuda_failure DESCRIPTION PATTERN [VAR=VALUE...]: run --backend cuda
# in that environment exits 1 and says PATTERN (grep -E) on stderr
expect_cuda_failure() {
    local what="$1" pattern="$2"
    shift 2
    if expect_status 1 "$what" -- env "$@" "$EMULATED" run --backend cuda -m "$STORIES" -p Once -n 4 --temp 0; then
        grep -Eq "$pattern" "$work/err" || fail "$what: message '$(cat "$work/err")' does not match '$pattern'"
    fi
    grep -qi 'emulator' "$work/err" && fail "$what: the emulator itself complained: $(cat "$work/err")"
    return 0
}

expect_cuda_failure "no driver" 'no CUDA device: no NVIDIA driver is loaded' STRATA_EMU_DRIVER=none
expect_cuda_failure "old driver" 'driver is too old: it supports CUDA 11\.8, this strata was built with CUDA [0-9]+\.[0-9]' \
    STRATA_EMU_DRIVER=old
expect_cuda_failure "no GPU" 'no CUDA device: no CUDA-capable device' STRATA_EMU_DRIVER=nodevice
expect_cuda_failure "device too small" 'out of memory' STRATA_EMU_DEVICE_MIB=1
expect_cuda_failure "a bad GEMM tile size" 'STRATA_CUDA_GEMM_TILE_MIB is "16MiB"' STRATA_CUDA_GEMM_TILE_MIB=16MiB

# strata devices keeps listing the CPU and says why CUDA has no device
STRATA_EMU_DRIVER=old "$EMULATED" devices >"$work/devices" 2>&1 || fail "devices with an old driver exited $?"
grep -q '^cpu ' "$work/devices" || fail "devices with an old driver does not list the cpu"
grep -q '(cuda: .*driver is too old' "$work/devices" || fail "devices does not say the driver is too old: $(cat "$work/devices")"

[[ $failures -eq 0 ]] || exit 1
echo "ok: emulated no driver, old driver, no GPU, too little memory and a bad tile size are messages"
