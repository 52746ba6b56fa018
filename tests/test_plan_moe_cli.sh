#!/usr/bin/env bash
# --cpu-moe and --n-cpu-moe N through the strata command, on the tiny Mixtral
# fixture (tests/data/families/mixtral.gguf: 2 layers, 4 experts, top 2):
# - every command that takes placement flags offers them in --help;
# - `strata plan` on hypothetical devices (a card and the CPU, every layer on
#   the card with -ngl 2) puts exactly the named expert tensors in host RAM,
#   says so in its note and in the JSON, and leaves the rest on the card;
# - a count above the layer count, a negative one, and one without the CPU
#   in the device list are refused with a message;
# - with synth's qwen3-30b-a3b preset (header only), a 16 GB card gets the
#   experts of some layers in host RAM, chosen over whole layers;
# - `strata run --device cpu` gives the same greedy text and logits with
#   --n-cpu-moe 1 as without (with only the CPU the experts are in host RAM
#   anyway: this checks that run takes the flag and plans it;
#   test_vulkan_moe_cli.sh runs the real detour from a GPU).
# Environment (set by ctest): STRATA, STRATA_TEST_DATA_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

MIXTRAL="$DATA/families/mixtral.gguf"
[[ -s "$MIXTRAL" ]] || { echo "FAIL: no $MIXTRAL"; exit 1; }
if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is needed to read the JSON plans"
    exit 77
fi

for command in run bench plan serve chat info; do
    "$STRATA" "$command" --help >"$work/help" 2>&1
    grep -q -- '--cpu-moe ' "$work/help" || fail "strata $command --help does not offer --cpu-moe"
    grep -q -- '--n-cpu-moe N' "$work/help" || fail "strata $command --help does not offer --n-cpu-moe N"
done

specs=(--device-spec cuda0:8G:1000GB/s:100TFLOPS:25GB/s --device-spec cpu:16G:50GB/s:1TFLOPS)

# check_experts JSON N: blk.L.ffn_*_exps on cpu for L < N, every other layer
# tensor on cuda0, n_cpu_moe N in the JSON, the note says so
check_experts() {
    python3 - "$1" "$2" <<'PY'
import json, re, sys
plan, n = json.load(open(sys.argv[1])), int(sys.argv[2])
problems = []
if not plan["fits"]:
    problems.append("the plan does not fit: " + plan["shortfall"])
if plan["n_cpu_moe"] != n or plan["n_cpu_moe_chosen"]:
    problems.append(f"n_cpu_moe {plan['n_cpu_moe']} (chosen {plan['n_cpu_moe_chosen']}), expected {n} as asked")
experts = 0
for tensor in plan["tensors"]:
    match = re.match(r"blk\.(\d+)\.(.*)", tensor["name"])
    if not match:
        continue
    is_expert = re.match(r"ffn_(gate|up|down)_exps\.", match.group(2)) is not None
    expected = "cpu" if is_expert and int(match.group(1)) < n else "cuda0"
    experts += expected == "cpu"
    if tensor["device"] != expected:
        problems.append(f"{tensor['name']} on {tensor['device']}, expected {expected}")
if experts != 3 * n:
    problems.append(f"{experts} expert tensors named for the CPU, expected {3 * n}")
if n > 0 and "stay in host RAM" not in plan["note"]:
    problems.append("the note does not say where the experts are: " + plan["note"])
for layer in plan["layers"]:
    if layer["device"] != "cuda0":
        problems.append(f"layer {layer['index']} on {layer['device']}, expected cuda0 (-ngl 2)")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
}

for n in 0 1 2; do
    if expect_status 0 "plan -ngl 2 --n-cpu-moe $n" -- "$STRATA" plan -m "$MIXTRAL" "${specs[@]}" -ngl 2 \
        --n-cpu-moe "$n" -o json; then
        check_experts "$work/out" "$n" || fail "plan --n-cpu-moe $n: the placement above is wrong"
    fi
done
if expect_status 0 "plan -ngl 2 --cpu-moe" -- "$STRATA" plan -m "$MIXTRAL" "${specs[@]}" -ngl 2 --cpu-moe -o json; then
    check_experts "$work/out" 2 || fail "plan --cpu-moe: the placement above is wrong"
fi
# the table and the note of the text plan
if expect_status 0 "plan --n-cpu-moe 1 --tensors" -- "$STRATA" plan -m "$MIXTRAL" "${specs[@]}" -ngl 2 \
    --n-cpu-moe 1 --tensors; then
    grep -q 'note: .*the experts of layer 0 stay in host RAM, computed by the CPU (3 tensors' "$work/out" ||
        fail "the plan's note does not say what --n-cpu-moe 1 did: $(grep note "$work/out")"
    grep -q '^| blk.0.ffn_down_exps.weight | cpu |' "$work/out" || fail "blk.0.ffn_down_exps is not on the cpu"
    grep -q '^| blk.1.ffn_down_exps.weight | cuda0 |' "$work/out" || fail "blk.1.ffn_down_exps is not on cuda0"
fi

# bad counts
if expect_status 1 "--n-cpu-moe 3 of 2 layers" -- "$STRATA" plan -m "$MIXTRAL" "${specs[@]}" --n-cpu-moe 3; then
    grep -q -- '--n-cpu-moe 3: the model has 2 layers' "$work/err" || fail "--n-cpu-moe 3 message: $(cat "$work/err")"
fi
if expect_status 2 "--n-cpu-moe -1" -- "$STRATA" plan -m "$MIXTRAL" "${specs[@]}" --n-cpu-moe -1; then
    grep -q -- '--n-cpu-moe: -1 is outside' "$work/err" || fail "--n-cpu-moe -1 message: $(cat "$work/err")"
fi
if expect_status 2 "--n-cpu-moe x" -- "$STRATA" plan -m "$MIXTRAL" "${specs[@]}" --n-cpu-moe x; then
    grep -q -- '--n-cpu-moe' "$work/err" || fail "--n-cpu-moe x message: $(cat "$work/err")"
fi
if expect_status 1 "--cpu-moe without the cpu" -- "$STRATA" plan -m "$MIXTRAL" \
    --device-spec cuda0:8G:1000GB/s --cpu-moe; then
    grep -q 'cpu is not among the devices' "$work/err" || fail "--cpu-moe without the cpu: $(cat "$work/err")"
fi
# a model without experts: nothing to move, and the plan says so
if expect_status 0 "--cpu-moe on a dense model" -- "$STRATA" plan -m "$DATA/families/llama.gguf" "${specs[@]}" \
    --cpu-moe; then
    grep -q 'the model has no experts' "$work/out" || fail "--cpu-moe on a dense model says nothing"
fi

# A real shape (synth's qwen3-30b-a3b preset, header only) on a hypothetical
# 16 GB card: the planner keeps the experts of some layers in host RAM, with
# more layers' attention on the card than whole layers would allow, and says
# both predictions. test_planner_moe checks the same choice on a table of its
# own; this checks the tensor table strata reads from a file.
big="$work/qwen3-30b-a3b.gguf"
if "$STRATA" synth --preset qwen3-30b-a3b --type q4_k_m --header-only -o "$big" >/dev/null 2>&1; then
    if expect_status 0 "plan qwen3-30b-a3b on 16G" -- "$STRATA" plan -m "$big" \
        --device-spec cuda0:16G:717GB/s:100TFLOPS:25GB/s --device-spec cpu:64G:60GB/s:1TFLOPS -o json; then
        python3 - "$work/out" <<'PY' || fail "qwen3-30b-a3b on 16G: the automatic choice above is wrong"
import json, re, sys
plan = json.load(open(sys.argv[1]))
n, predicted = plan["n_cpu_moe"], plan["predicted"]
problems = []
if not (plan["fits"] and plan["n_cpu_moe_chosen"] and n > 0):
    problems.append(f"fits {plan['fits']}, n_cpu_moe {n}, chosen {plan['n_cpu_moe_chosen']}")
gpu_layers = sum(layer["device"] == "cuda0" for layer in plan["layers"])
whole = predicted["whole_layers_gpu_layers"]
if whole is None or gpu_layers <= whole:
    problems.append(f"{gpu_layers} GPU layers, whole layers alone {whole}")
if not (predicted["tg_tokens_per_s"] and predicted["whole_layers_tg_tokens_per_s"] and
        predicted["tg_tokens_per_s"] > predicted["whole_layers_tg_tokens_per_s"]):
    problems.append(f"predicted {predicted['tg_tokens_per_s']} against {predicted['whole_layers_tg_tokens_per_s']}")
for tensor in plan["tensors"]:
    match = re.match(r"blk\.(\d+)\.ffn_(gate|up|down)_exps\.", tensor["name"])
    if match and int(match.group(1)) < n and tensor["device"] != "cpu":
        problems.append(f"{tensor['name']} on {tensor['device']}")
if "against" not in plan["note"]:
    problems.append("the note does not compare: " + plan["note"])
for p in problems:
    print(p)
print(f"qwen3-30b-a3b on 16G: experts of {n} layers in host RAM, {gpu_layers} layers on the card, "
      f"{predicted['tg_tokens_per_s']:.1f} t/s against {predicted['whole_layers_tg_tokens_per_s']} with whole layers")
sys.exit(1 if problems else 0)
PY
    fi
else
    echo "note: this strata has no qwen3-30b-a3b synth preset; the real-size plan is left to test_planner_moe"
fi

# run on the CPU: the same tokens and logits with the flag as without
run_flags=(run -m "$MIXTRAL" --device cpu -p "hello world" -n 8 --temp 0)
if expect_status 0 "run --device cpu" -- "$STRATA" "${run_flags[@]}" --dump-logits "$work/plain.bin"; then
    cp "$work/out" "$work/plain.txt"
    if expect_status 0 "run --device cpu --n-cpu-moe 1" -- "$STRATA" "${run_flags[@]}" --n-cpu-moe 1 \
        --dump-logits "$work/moe.bin"; then
        cmp -s "$work/plain.txt" "$work/out" || fail "--n-cpu-moe 1 changed the greedy text on the CPU"
        cmp -s "$work/plain.bin" "$work/moe.bin" || fail "--n-cpu-moe 1 changed the logits on the CPU"
        grep -q 'the experts of layer 0 stay in host RAM' "$work/err" ||
            fail "run does not say what --n-cpu-moe 1 did: $(cat "$work/err")"
    fi
fi

if [[ $failures -gt 0 ]]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "plan and run with --cpu-moe / --n-cpu-moe: all checks passed"
