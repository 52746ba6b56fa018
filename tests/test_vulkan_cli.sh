#!/usr/bin/env bash
# The strata command with the Vulkan backend: `strata devices` lists it (or
# says why it has no device); without a Vulkan driver `strata run --backend
# vulkan` exits 1 with a message, not a crash; with a device, greedy text
# (stories260K) and the prompt logits (also a synthetic q4_k model) match the
# CPU's.
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

"$STRATA" devices >"$work/devices" 2>&1 || fail "strata devices exited $?"
grep -q '^cpu ' "$work/devices" || fail "strata devices does not list the cpu"
if ! grep -q '^vulkan[0-9][0-9]* ' "$work/devices"; then
    "$STRATA" run -m "$STORIES" -p "Once" -n 4 --temp 0 --backend vulkan >"$work/out" 2>"$work/err"
    status=$?
    [[ $status -eq 1 ]] || fail "run --backend vulkan without Vulkan built in exited $status, not 1"
    grep -qi 'vulkan' "$work/err" || fail "run --backend vulkan without Vulkan built in says nothing about it"
    if [[ $failures -eq 0 ]]; then
        echo "SKIP: Vulkan is not built in (the message is there: $(head -1 "$work/err"))"
        exit 77
    fi
    exit 1
fi

# no driver: the loader finds no ICD
VK_ICD_FILENAMES="$work/none.json" VK_DRIVER_FILES="$work/none.json" \
    "$STRATA" run -m "$STORIES" -p "Once" -n 4 --temp 0 --backend vulkan >"$work/out" 2>"$work/err"
status=$?
[[ $status -eq 1 ]] || fail "run --backend vulkan with no driver exited $status, not 1"
grep -qi 'no Vulkan device' "$work/err" || fail "no-driver message missing: $(cat "$work/err")"
VK_ICD_FILENAMES="$work/none.json" VK_DRIVER_FILES="$work/none.json" "$STRATA" devices >"$work/devices" 2>&1 ||
    fail "strata devices with no Vulkan driver exited $?"
grep -q '(vulkan: .*no Vulkan device' "$work/devices" || fail "strata devices does not say why Vulkan has no device"

if grep -q '(vulkan: .*no Vulkan device' <("$STRATA" devices 2>&1); then
    echo "SKIP: no Vulkan device here (the no-driver checks ran: $failures failures)"
    [[ $failures -eq 0 ]] && exit 77
    exit 1
fi

# a device index that does not exist
"$STRATA" run -m "$STORIES" -p "Once" -n 4 --temp 0 --backend vulkan --device 99 >"$work/out" 2>"$work/err"
[[ $? -eq 1 ]] || fail "run --device 99 did not exit 1"
grep -q 'does not exist' "$work/err" || fail "run --device 99 message: $(cat "$work/err")"

# same greedy text and logits as the CPU
"$STRATA" synth --help >/dev/null 2>&1 && "$STRATA" synth --arch llama --preset tiny --type q4_k --seed 3 \
    -o "$work/q4k.gguf" >/dev/null 2>&1
for model in "$STORIES" "$work/q4k.gguf"; do
    [[ -f "$model" ]] || { fail "model $model missing"; continue; }
    prompt=(-p "Once upon a time")
    [[ "$model" == "$STORIES" ]] || prompt=(--tokens "1 2 3 4 5")
    for backend in cpu vulkan; do
        "$STRATA" run -m "$model" "${prompt[@]}" -n 24 --temp 0 --backend "$backend" \
            --dump-logits "$work/logits.$backend" >"$work/text.$backend" 2>"$work/err.$backend" ||
            fail "$backend run of $(basename "$model"): $(cat "$work/err.$backend")"
    done
    # random weights nearly tie everywhere (and the CPU rounds activations to
    # 8 bits for block formats), so greedy text is compared on the trained model
    [[ "$model" != "$STORIES" ]] || cmp -s "$work/text.cpu" "$work/text.vulkan" ||
        fail "greedy text of $(basename "$model") differs: cpu '$(cat "$work/text.cpu")' vulkan '$(cat "$work/text.vulkan")'"
    python3 - "$work/logits.cpu" "$work/logits.vulkan" <<'PY' || fail "logits of $(basename "$model") differ"
import struct, sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read()
if len(a) != len(b) or not a:
    sys.exit(1)
n = len(a) // 4
x = struct.unpack(f"<{n}f", a); y = struct.unpack(f"<{n}f", b)
err = sum((p - q) ** 2 for p, q in zip(x, y)); ref = sum(p * p for p in x)
nmse = err / ref if ref else err
print(f"  logits nmse vulkan vs cpu: {nmse:.3e}")
sys.exit(0 if nmse <= 1.2e-2 else 1)  # 4 x the 3e-3 block-format bound of test_e2e_logits
PY
done

if [[ $failures -ne 0 ]]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all Vulkan CLI checks passed"
