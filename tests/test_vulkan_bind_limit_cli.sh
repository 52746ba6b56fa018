#!/usr/bin/env bash
# STRATA_VULKAN_MAX_BIND_KIB through the strata command: `strata devices`
# shows each Vulkan device's binding limit ("bind N KiB"), the knob lowers it
# (never raises it), a bad value is a clear error at device open (exit 1, no
# crash), and a model run at the smallest limit, 4 KiB (the embedding and
# output matrices cut into row ranges, a prompt of 127 tokens attended in
# passes of 15 tokens over cache ranges of 63 rows), gives the same greedy
# text and prompt logits as at the device's own limit; and a 2.2M-token
# context (each layer's cache over 128 MiB) runs as on the CPU, within its
# plan. Skips (77) without a Vulkan device.
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

unset STRATA_VULKAN_MAX_BIND_KIB
"$STRATA" devices >"$work/devices" 2>&1 || fail "strata devices exited $?"
if ! grep -q '^vulkan0 ' "$work/devices"; then
    echo "SKIP: no Vulkan device here ($(grep -i vulkan "$work/devices" | head -1))"
    [[ $failures -eq 0 ]] && exit 77
    exit 1
fi
own_kib=$(sed -n 's/^vulkan0 .*bind \([0-9][0-9]*\) KiB.*/\1/p' "$work/devices")
[[ -n $own_kib ]] || fail "strata devices does not show vulkan0's binding limit: $(grep '^vulkan0' "$work/devices")"
own_kib=${own_kib:-0}

# the knob lowers the limit, and never raises it
STRATA_VULKAN_MAX_BIND_KIB=64 "$STRATA" devices >"$work/devices64" 2>&1 || fail "devices at 64 KiB exited $?"
grep -q '^vulkan0 .*bind 64 KiB' "$work/devices64" || fail "the 64 KiB limit is not shown: $(grep '^vulkan0' "$work/devices64")"
STRATA_VULKAN_MAX_BIND_KIB=4194304 "$STRATA" devices >"$work/devices_big" 2>&1 || fail "devices at 4 GiB exited $?"
grep -q "^vulkan0 .*bind $own_kib KiB" "$work/devices_big" ||
    fail "a knob above the device's limit changed it: $(grep '^vulkan0' "$work/devices_big")"

# bad values: a message naming the knob, exit 1, for devices and for run
for bad in abc 0 3 64k -64 " 64" 6.5 4194305 99999999999999999999; do
    expect_status 1 "devices with STRATA_VULKAN_MAX_BIND_KIB='$bad'" -- \
        env STRATA_VULKAN_MAX_BIND_KIB="$bad" "$STRATA" devices &&
        { grep -q "vulkan0 .*cannot open: STRATA_VULKAN_MAX_BIND_KIB is \"$bad\"; expected a whole number of KiB" \
            "$work/out" || fail "devices with '$bad': $(grep vulkan0 "$work/out")"; }
    expect_status 1 "run with STRATA_VULKAN_MAX_BIND_KIB='$bad'" -- \
        env STRATA_VULKAN_MAX_BIND_KIB="$bad" "$STRATA" run -m "$STORIES" -p Once -n 4 --temp 0 --device vulkan0 &&
        { grep -q "STRATA_VULKAN_MAX_BIND_KIB is \"$bad\"" "$work/err" || fail "run with '$bad': $(cat "$work/err")"; }
done

# the same text and logits with ops cut into 4 KiB bindings
[[ -f "$STORIES" ]] || fail "model $STORIES missing"
prompt=$(for i in $(seq 25); do printf 'Once upon a time, '; done)
for limit in "" 4; do
    STRATA_VULKAN_MAX_BIND_KIB="$limit" "$STRATA" run -m "$STORIES" -p "$prompt" -n 16 --temp 0 \
        --device vulkan0 --dump-logits "$work/logits.$limit" >"$work/text.$limit" 2>"$work/err.$limit" ||
        fail "run at limit '${limit:-own}': $(cat "$work/err.$limit")"
done
cmp -s "$work/text." "$work/text.4" ||
    fail "greedy text differs at 4 KiB: '$(cat "$work/text.4")' vs '$(cat "$work/text.")'"
python3 - "$work/logits." "$work/logits.4" <<'PY' || fail "logits differ at 4 KiB"
import struct, sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read()
if len(a) != len(b) or not a:
    sys.exit(1)
n = len(a) // 4
x = struct.unpack(f"<{n}f", a); y = struct.unpack(f"<{n}f", b)
err = sum((p - q) ** 2 for p, q in zip(x, y)); ref = sum(p * p for p in x)
nmse = err / ref if ref else err
print(f"  prompt logits nmse at 4 KiB vs the device's limit: {nmse:.3e}")
# float rounding only (attention merges its passes in another order), carried
# through the layers: measured 3.2e-9 on lavapipe; a wrong cut is of order 1
sys.exit(0 if nmse <= 1e-6 else 1)
PY

# the case that once failed at the first kv_store: a 2.2M-token context, each
# layer's cache of 141 MB over the 128 MiB the device binds at once; same
# greedy text as the CPU, and no more memory than the plan said
for device in cpu vulkan0; do
    "$STRATA" run -m "$STORIES" -p "Once upon a time" -n 16 --temp 0 --device "$device" --ctx 2200000 --verbose \
        >"$work/long.$device" 2>"$work/long_err.$device" ||
        fail "2.2M-token context on $device: $(tail -2 "$work/long_err.$device")"
done
cmp -s "$work/long.cpu" "$work/long.vulkan0" ||
    fail "2.2M-token context: vulkan0 wrote '$(cat "$work/long.vulkan0")', the cpu '$(cat "$work/long.cpu")'"
grep -q 'vulkan0: peak .* counted, planned .*: 100.0% of the plan' "$work/long_err.vulkan0" ||
    fail "2.2M-token context: the peak is not the plan: $(grep 'peak' "$work/long_err.vulkan0")"

if [[ $failures -ne 0 ]]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "the binding limit is shown, lowered, validated, and a run at 4 KiB matches"
