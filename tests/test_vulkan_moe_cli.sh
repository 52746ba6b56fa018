#!/usr/bin/env bash
# The experts' detour from a GPU: the tiny Mixtral and Qwen3-MoE fixtures
# (tests/data/families) with both layers on the first Vulkan device (-ngl 2,
# lavapipe in CI) and the experts of layer 0
# (--n-cpu-moe 1) or of both layers (--cpu-moe) in host RAM, computed by the
# CPU, gives the same greedy tokens as all of it on the device and logits
# within NMSE 1e-6 of them (F32 weights: only the order of the sums differs).
# The plan of the same command says where the experts went.
# Environment (set by ctest): STRATA, STRATA_TEST_DATA_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

"$STRATA" devices >"$work/devices" 2>&1 || fail "strata devices exited $?"
device="$(grep -o '^vulkan[0-9][0-9]*' "$work/devices" | head -1)"
if [[ -z "$device" ]]; then
    echo "SKIP: no Vulkan device (Vulkan not built in, or no driver)"
    exit 77
fi
if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is needed to compare the logits"
    exit 77
fi

for name in mixtral qwen3moe; do
    model="$DATA/families/$name.gguf"
    placement=(--device "$device,cpu" -ngl 2)
    run_flags=(run -m "$model" "${placement[@]}" -p "hello world, once more" -n 12 --temp 0)
    expect_status 0 "$name on $device" -- "$STRATA" "${run_flags[@]}" --dump-logits "$work/gpu.bin" || continue
    cp "$work/out" "$work/gpu.txt"

    for flag in "--n-cpu-moe 1" "--cpu-moe"; do
        # shellcheck disable=SC2086 # the flag and its count are two words
        if expect_status 0 "$name: plan $flag" -- "$STRATA" plan -m "$model" "${placement[@]}" $flag --tensors \
            --no-measure; then
            grep -q "^| blk.0.ffn_gate_exps.weight | cpu |" "$work/out" ||
                fail "$name $flag: blk.0's experts are not on the cpu"
            grep -q "^| blk.0.attn_q.weight | $device |" "$work/out" ||
                fail "$name $flag: blk.0's attention left $device"
            if [[ "$flag" == "--cpu-moe" ]]; then
                grep -q "^| blk.1.ffn_up_exps.weight | cpu |" "$work/out" ||
                    fail "$name $flag: blk.1's experts are not on the cpu"
            else
                grep -q "^| blk.1.ffn_up_exps.weight | $device |" "$work/out" ||
                    fail "$name $flag: blk.1's experts left $device"
            fi
        fi
        # shellcheck disable=SC2086
        expect_status 0 "$name: run $flag" -- "$STRATA" "${run_flags[@]}" $flag --dump-logits "$work/moe.bin" ||
            continue
        grep -q 'stay in host RAM, computed by the CPU' "$work/err" ||
            fail "$name: run $flag does not say where the experts went"
        cmp -s "$work/gpu.txt" "$work/out" ||
            fail "$name $flag changed the greedy text: '$(cat "$work/out")' vs '$(cat "$work/gpu.txt")'"
        python3 - "$work/gpu.bin" "$work/moe.bin" <<'PY' || fail "$name $flag changed the logits"
import struct, sys
a, b = (open(path, "rb").read() for path in sys.argv[1:3])
if len(a) != len(b) or not a:
    print(f"logit dumps of {len(a)} and {len(b)} bytes")
    sys.exit(1)
x, y = (struct.unpack(f"<{len(a) // 4}f", data) for data in (a, b))
nmse = sum((p - q) ** 2 for p, q in zip(x, y)) / max(sum(p * p for p in x), 1e-30)
print(f"NMSE {nmse:.3g} over {len(x)} logits")
sys.exit(0 if nmse < 1e-6 else 1)
PY
    done
done

if [[ $failures -gt 0 ]]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "experts on the CPU from $device: the same tokens and logits"
