#!/usr/bin/env bash
# strata plan on hypothetical devices (--device-spec: nothing is opened or
# measured) and tiny synthetic models: the JSON plan against the file's own
# tensor table (read here from the GGUF header) and against arithmetic
# (budgets, KV cache, one chain of layers), -ngl, --tensor-split, -ot,
# --vram, the default context shrinking, an impossible plan (exit 1, what is
# short and by how much) and bad usage (exit 2).
# Environment (set by ctest): STRATA.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is needed to read the JSON plans"
    exit 77
fi

# A tiny llama (2 layers, n_embd 256, 2 KV heads of 64) in two formats.
q8="$work/tiny-q8_0.gguf"
f32="$work/tiny-f32.gguf"
"$STRATA" synth --arch llama --preset tiny --type q8_0 -o "$q8" 2>/dev/null || fail "synth q8_0"
"$STRATA" synth --arch llama --preset tiny --type f32 -o "$f32" 2>/dev/null || fail "synth f32"
[[ -s "$q8" && -s "$f32" ]] || { echo "FAIL: no models to plan"; exit 1; }

# check_plan JSON MODEL [CHECKS...]: the plan's structure and arithmetic, then
# each named check (see below). Prints what is wrong; exit status 1 then.
check_plan() {
    python3 - "$@" <<'PY'
import json, struct, sys

plan_path, model_path, checks = sys.argv[1], sys.argv[2], sys.argv[3:]
problems = []
def bad(message):
    problems.append(message)

# --- the GGUF header, read here (not through strata) ---
# (elements per block, bytes per block) of the ggml types a synth file holds
BLOCKS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
          10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 30: (1, 2)}
data = open(model_path, "rb").read()
pos = 0
def take(fmt):
    global pos
    values = struct.unpack_from("<" + fmt, data, pos)
    pos += struct.calcsize("<" + fmt)
    return values if len(values) > 1 else values[0]
def string():
    global pos
    n = take("Q")
    pos += n
    return data[pos - n:pos].decode()
SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
def value(kind):
    if kind == 8:
        return string()
    if kind == 9:
        item, n = take("I"), take("Q")
        return [value(item) for _ in range(n)]
    return take(SCALAR[kind])
assert data[:4] == b"GGUF", "not a GGUF file"
pos = 4
version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
meta = {}
for _ in range(n_kv):
    key = string()
    meta[key] = value(take("I"))
tensors = []
for _ in range(n_tensors):
    name = string()
    dims = [take("Q") for _ in range(take("I"))]
    kind, offset = take("I"), take("Q")
    elements = 1
    for d in dims:
        elements *= d
    per_block, block_bytes = BLOCKS[kind]
    tensors.append((name, elements // per_block * block_bytes, offset))
alignment = meta.get("general.alignment", 32)
data_start = (pos + alignment - 1) // alignment * alignment
# the byte sizes computed here are the file's: each tensor ends before the next begins
ordered = sorted(tensors, key=lambda t: t[2])
for (name, size, offset), following in zip(ordered, ordered[1:] + [(None, 0, len(data) - data_start)]):
    if offset + size > following[2]:
        bad(f"the header's {name} ({size} bytes at {offset}) overlaps what follows")
arch = meta["general.architecture"]
n_layer = meta[f"{arch}.block_count"]
n_head = meta[f"{arch}.attention.head_count"]
n_head_kv = meta.get(f"{arch}.attention.head_count_kv", n_head)
head_dim = meta[f"{arch}.embedding_length"] // n_head

# --- the plan ---
plan = json.load(open(plan_path))
for key in ("fits", "devices", "layers", "tensors", "predicted", "n_ctx"):
    if key not in plan:
        bad(f"no '{key}' in the plan")
for d in plan["devices"]:
    for key in ("name", "budget_bytes", "weights_bytes", "kv_bytes", "scratch_bytes", "total_bytes"):
        if key not in d:
            bad(f"device without '{key}': {d}")
for key in ("tg_tokens_per_s", "pp_tokens_per_s"):
    if key not in plan["predicted"]:
        bad(f"no predicted.{key}")
names = [d["name"] for d in plan["devices"]]
by_name = {d["name"]: d for d in plan["devices"]}

# every tensor of the file, once, with its bytes
if [(t["name"], t["bytes"]) for t in plan["tensors"]] != [(n, b) for n, b, _ in tensors]:
    bad("tensors[] differ from the file's tensor table")
file_bytes = sum(b for _, b, _ in tensors)
if sum(t["bytes"] for t in plan["tensors"]) != file_bytes:
    bad(f"tensors[] hold {sum(t['bytes'] for t in plan['tensors'])} bytes, the file {file_bytes}")
# the weights over the devices: every tensor's bytes rounded up to 256, rope_freqs on each device with layers
def up(x):
    return (x + 255) // 256 * 256
with_layers = len({l["device"] for l in plan["layers"]})
rope = sum(up(b) for n, b, _ in tensors if n == "rope_freqs.weight")
want_weights = sum(up(b) for _, b, _ in tensors) + (with_layers - 1) * rope
if sum(d["weights_bytes"] for d in plan["devices"]) != want_weights:
    bad(f"weights over the devices {sum(d['weights_bytes'] for d in plan['devices'])}, expected {want_weights}")

# layers: every one on a listed device, one chain in reverse list order
layers = plan["layers"]
if [l["index"] for l in layers] != list(range(n_layer)):
    bad(f"layers[] indices {[l['index'] for l in layers]}")
order = [names.index(l["device"]) if l["device"] in names else -1 for l in layers]
if -1 in order or any(b > a for a, b in zip(order, order[1:])):
    bad(f"layers do not form one chain in reverse device order: {[l['device'] for l in layers]}")
for name, size, _ in tensors:
    if name.startswith("blk."):
        layer = int(name.split(".")[1])
        placed = next(t for t in plan["tensors"] if t["name"] == name)
        if not placed["overridden"] and placed["device"] != layers[layer]["device"]:
            bad(f"{name} on {placed['device']}, its layer on {layers[layer]['device']}")

# KV: 2 (K and V) x layers x n_ctx x n_head_kv x head_dim x 2 bytes (f16) or 4 (f32)
element = 4 if plan.get("kv_type") == "f32" else 2
kv = sum(d["kv_bytes"] for d in plan["devices"])
if kv != 2 * n_layer * plan["n_ctx"] * n_head_kv * head_dim * element:
    bad(f"KV {kv} bytes for n_ctx {plan['n_ctx']}")
for d in plan["devices"]:
    if d["total_bytes"] != d["weights_bytes"] + d["kv_bytes"] + d["scratch_bytes"]:
        bad(f"{d['name']}: total is not weights + KV + scratch")
    if plan["fits"] and d["total_bytes"] > d["budget_bytes"]:
        bad(f"{d['name']}: {d['total_bytes']} bytes over a budget of {d['budget_bytes']}")

# --- the checks asked for: name=value ---
import re
overrides = []
for check in checks:
    what, _, arg = check.partition("=")
    if what == "fits":
        if plan["fits"] != (arg == "true"):
            bad(f"fits is {plan['fits']}")
    elif what == "budget":  # budget=DEV:BYTES
        dev, size = arg.split(":")
        if by_name[dev]["budget_bytes"] != int(size):
            bad(f"{dev} budget {by_name[dev]['budget_bytes']}, expected {size}")
    elif what == "budget_at_most":  # budget_at_most=DEV:BYTES
        dev, size = arg.split(":")
        if by_name[dev]["budget_bytes"] > int(size):
            bad(f"{dev} budget {by_name[dev]['budget_bytes']} over the cap {size}")
    elif what == "gpu_layers":
        gpu = sum(1 for l in layers if l["device"] != "cpu")
        if gpu != int(arg):
            bad(f"{gpu} layers off the CPU, expected {arg}")
    elif what == "gpu_layers_at_most":
        gpu = sum(1 for l in layers if l["device"] != "cpu")
        if gpu > int(arg):
            bad(f"{gpu} layers off the CPU, expected at most {arg}")
    elif what == "gpu_layers_without_workspace":
        gpu = sum(1 for l in layers if l["device"] != "cpu")
        if all(d["workspace_bytes"] == 0 for d in plan["devices"]) and gpu != int(arg):
            bad(f"{gpu} layers off the CPU, expected {arg}")
    elif what == "layers_on":  # layers_on=DEV:N
        dev, n = arg.split(":")
        got = sum(1 for l in layers if l["device"] == dev)
        if got != int(n):
            bad(f"{got} layers on {dev}, expected {n}")
    elif what == "override":  # override=REGEX:DEV, in the order of the -ot flags: see below
        overrides.append(arg.rsplit(":", 1))
    elif what == "n_ctx":
        if plan["n_ctx"] != int(arg):
            bad(f"n_ctx {plan['n_ctx']}, expected {arg}")
    elif what == "n_ctx_below":
        if not 0 < plan["n_ctx"] < int(arg):
            bad(f"n_ctx {plan['n_ctx']}, expected less than {arg}")
    elif what == "note":
        if arg not in plan["note"]:
            bad(f"note '{plan['note']}' does not say '{arg}'")
    elif what == "tg":  # tg=null or tg=positive
        tg = plan["predicted"]["tg_tokens_per_s"]
        if (arg == "null") != (tg is None) or (arg == "positive" and not (tg or 0) > 0):
            bad(f"predicted tg {tg}")
    elif what == "pp":
        pp = plan["predicted"]["pp_tokens_per_s"]
        if (arg == "null") != (pp is None) or (arg == "positive" and not (pp or 0) > 0):
            bad(f"predicted pp {pp}")
    elif what == "short":  # short=DEV:FILE: the message in FILE says DEV is (total - budget) GiB short
        dev, _, message_path = arg.partition(":")
        message = open(message_path).read()
        d = by_name[dev]
        # sizes are printed in the unit that fits, two decimals: compare within half a step
        scale = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
        size = r"([0-9.]+) (B|KiB|MiB|GiB|TiB)"
        found = re.search(dev + r" needs " + size + r" .*?: " + size + r" short", message)
        want = d["total_bytes"] - d["budget_bytes"]
        if found:
            said_short = float(found.group(3)) * scale[found.group(4)]
            said_need = float(found.group(1)) * scale[found.group(2)]
        if not found or abs(said_short - want) > 0.0051 * scale[found.group(4)] or want < 0.5 * 2**30:
            bad(f"message '{message.strip()}' should say {dev} is {want / 2**30:.2f} GiB short")
        if found and abs(said_need - d["total_bytes"]) > 0.0051 * scale[found.group(2)]:
            bad(f"message says {dev} needs {found.group(1)} {found.group(2)}, the plan {d['total_bytes']} bytes")
    elif what == "print":
        print(plan[arg])
    else:
        bad(f"unknown check {what}")
# the overrides: exactly the tensors a pattern matches (the first that does
# wins; rope_freqs is never overridden) are on its device, marked overridden
if overrides:
    for t in plan["tensors"]:
        dev = next((d for pattern, d in overrides if re.search(pattern, t["name"])), None)
        if t["name"] == "rope_freqs.weight":
            dev = None
        if (dev is not None) != t["overridden"] or (dev is not None and t["device"] != dev):
            bad(f"{t['name']}: on {t['device']}, overridden {t['overridden']}, expected {dev}")
for message in problems:
    print(message)
sys.exit(1 if problems else 0)
PY
}

# plan_json WHAT STATUS MODEL [FLAGS...] -- [CHECKS...]: runs strata plan -o
# json, expects STATUS and checks the JSON it printed.
plan_json() {
    local what="$1" status="$2" model="$3"
    shift 3
    local flags=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do
        flags+=("$1")
        shift
    done
    [[ "${1:-}" == "--" ]] && shift
    expect_status "$status" "$what" -- "$STRATA" plan -m "$model" -o json "${flags[@]}" || return 1
    cp "$work/err" "$work/plan_err"
    if ! check_plan "$work/out" "$model" "$@" >"$work/problems" 2>&1; then
        fail "$what"
        sed 's/^/    /' "$work/problems" | head -20
        return 1
    fi
    return 0
}

MIB=$((1 << 20))
GIB=$((1 << 30))
fast="cuda0:64M:1000GB/s:100TFLOPS"
host="cpu:1G:50GB/s:1TFLOPS"

# --- a plan that fits: the JSON against the file and arithmetic ---------------------------
# budgets: the memory minus 1/16 of it (a GPU keeps at most 512 MiB free, the CPU 1 GiB)
plan_json "plan on cuda0 + cpu" 0 "$q8" --device-spec "$fast" --device-spec "$host" -- \
    fits=true budget=cuda0:$((64 * MIB - 4 * MIB)) budget=cpu:$((GIB - 64 * MIB)) n_ctx=256 gpu_layers=2 \
    tg=positive pp=positive
plan_json "plan on 80G + 256G" 0 "$f32" --device-spec cuda0:80G --device-spec cpu:256G -- \
    fits=true budget=cuda0:$((80 * GIB - 512 * MIB)) budget=cpu:$((255 * GIB)) tg=null pp=null
plan_json "plan with f32 KV and --ctx" 0 "$q8" --device-spec "$fast" --device-spec "$host" -c 1000 \
    --kv-type f32 -- fits=true n_ctx=1000
plan_json "plan on the CPU alone" 0 "$f32" --device-spec "$host" -- fits=true gpu_layers=0
expect_status 0 "plan (markdown)" -- "$STRATA" plan -m "$q8" --device-spec "$fast" --device-spec "$host" &&
    grep -q "| cuda0 | 0-1 |" "$work/out" && grep -q "predicted decode: [0-9.]* tokens/s" "$work/out" ||
    fail "plan (markdown): no table row for cuda0 with both layers, or no predicted decode"
expect_status 0 "plan --tensors" -- "$STRATA" plan -m "$q8" --device-spec "$fast" --tensors &&
    grep -q "| blk.1.ffn_down.weight | cuda0 |" "$work/out" || fail "plan --tensors lists no blk.1.ffn_down"

# --- -ngl, --tensor-split, -ot, --vram ------------------------------------------------------
for ngl in 0 1 2 99; do
    want=$((ngl < 2 ? ngl : 2))
    plan_json "plan -ngl $ngl" 0 "$q8" --device-spec "$fast" --device-spec "$host" -ngl "$ngl" -- \
        fits=true gpu_layers=$want layers_on=cuda0:$want
done
two="--device-spec cuda0:64M:1000GB/s --device-spec cuda1:64M:1000GB/s --device-spec $host"
# shellcheck disable=SC2086
plan_json "plan -ts 1,1" 0 "$q8" $two -ts 1,1 -- fits=true layers_on=cuda0:1 layers_on=cuda1:1
# shellcheck disable=SC2086
plan_json "plan -ts 0,1" 0 "$q8" $two -ts 0,1 -- fits=true layers_on=cuda0:0 layers_on=cuda1:2
# shellcheck disable=SC2086
plan_json "plan -ts 3/1 -ngl 1" 0 "$q8" $two -ts 3/1 -ngl 1 -- fits=true layers_on=cuda0:1 layers_on=cuda1:0
ffn='blk\.[0-9]+\.ffn_(up|gate|down)'
plan_json "plan -ot ffn=cpu" 0 "$q8" --device-spec "$fast" --device-spec "$host" -ot "$ffn=cpu" -- \
    fits=true gpu_layers=2 "override=$ffn:cpu"
plan_json "plan -ot two patterns" 0 "$q8" --device-spec "$fast" --device-spec "$host" -ot "ffn_down=cpu" \
    -ot 'blk\.1\.=cuda0' -ngl 0 -- fits=true gpu_layers=0 "override=ffn_down:cpu" 'override=blk\.1\.:cuda0'
plan_json "plan --vram cuda0=6M" 0 "$q8" --device-spec "$fast" --device-spec "$host" --vram cuda0=6M -- \
    fits=true budget=cuda0:$((6 * MIB)) budget_at_most=cuda0:$((6 * MIB))
plan_json "plan --vram above the memory" 0 "$q8" --device-spec "$fast" --device-spec "$host" \
    --vram cuda0=100G,cpu=512M -- budget=cuda0:$((60 * MIB)) budget_at_most=cpu:$((512 * MIB))
# the f32 model's layers (2.25 MiB + 128 KiB of KV each, with 2.5 MiB of
# scratch): a 4 MiB cap holds none, 6 MiB one, 8 MiB both (when the backend
# reserves no workspace of its own; more workspace only leaves less room)
# Whether this build's CUDA backend reserves a workspace: asked of an uncapped
# plan, since a card the plan leaves empty reports none.
cuda_workspace=$("$STRATA" plan -m "$f32" --device-spec "$fast" --device-spec "$host" -o json 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["devices"][0]["workspace_bytes"])' 2>/dev/null || echo 0)
for cap in 1:0 4:0 6:1 8:2; do
    exact=()
    [[ $cuda_workspace == 0 ]] && exact=(gpu_layers_without_workspace=${cap#*:})
    plan_json "plan --vram cuda0=${cap%:*}M (f32)" 0 "$f32" --device-spec "$fast" --device-spec "$host" \
        --vram "cuda0=${cap%:*}M" -- fits=true budget_at_most=cuda0:$((${cap%:*} * MIB)) \
        gpu_layers_at_most=${cap#*:} "${exact[@]}"
done

# --- the default context shrinks to what fits -----------------------------------------------
# room for the weights and scratch (batches of 64) and about 100 of the 256 positions
plan_json "plan on a roomy card" 0 "$q8" --device-spec cuda0:1G -b 64 -- fits=true n_ctx=256
need="$(check_plan "$work/out" "$q8" print=devices | python3 -c \
    'import ast, sys; d = ast.literal_eval(sys.stdin.read())[0]; print(d["total_bytes"])')"
kv_per_position=1024 # 2 (K and V) x 2 layers x 128 x 2 bytes
budget=$((need - 156 * kv_per_position))
memory=$((budget * 16 / 15 + 1)) # the budget is the memory less 1/16 of it
if plan_json "plan with a shrunk context" 0 "$q8" --device-spec "cuda0:$memory" -b 64 -- fits=true \
    n_ctx_below=256 "note=shrunk from 256"; then
    n_ctx="$(check_plan "$work/out" "$q8" print=n_ctx)"
    plan_json "plan --ctx $n_ctx" 0 "$q8" --device-spec "cuda0:$memory" -b 64 -c "$n_ctx" -- fits=true
    plan_json "plan --ctx $((n_ctx + 1))" 1 "$q8" --device-spec "cuda0:$memory" -b 64 -c $((n_ctx + 1)) -- \
        fits=false
fi

# --- an impossible plan: exit 1, what is short, where and by how much ----------------------
# 2M positions of f32 KV: 2 x 2 layers x 128 x 4 bytes x 2M = 4 GiB on a 1 GiB card
if plan_json "plan too big for cuda0" 1 "$f32" --device-spec cuda0:1G -c 2097152 --kv-type f32 -- fits=false \
    "short=cuda0:$work/plan_err" tg=null; then
    grep -q "does not fit with a context of 2097152" "$work/plan_err" ||
        fail "the impossible plan's message does not name the context: $(cat "$work/plan_err")"
    grep -q "^strata plan: $f32: " "$work/plan_err" || fail "the impossible plan's message does not name the file"
fi
expect_status 1 "plan -ngl 2 on a 4M card" -- "$STRATA" plan -m "$f32" --device-spec cuda0:4M --device-spec "$host" \
    -ngl 2 && grep -q "and 2 GPU layers; cuda0 needs .* short" "$work/err" ||
    fail "plan -ngl 2: the message does not say the GPU layers and cuda0's shortfall: $(cat "$work/err")"
expect_status 1 "plan -ot everything=cuda0" -- "$STRATA" plan -m "$f32" --device-spec cuda0:4M \
    --device-spec "$host" -ot 'blk=cuda0' && grep -q "cuda0 needs" "$work/err" || fail "plan -ot blk=cuda0 message"

# --- llama3-70b at iq2_xs on one 24 GB card and 64 GB of host RAM (BENCHMARKS.md) -------------
# A header-only file (sparse, the tensor data is never read). The CUDA
# backend computes iq2_xs (kernels/quant_unpack_lowbit.h), and a build
# without it assumes cuda0 computes every format (and says so): either way
# all 80 layers, the output and the 4096-position KV cache fit on the card,
# and no note says a format is refused.
big="$work/llama3-70b-iq2_xs.gguf"
if "$STRATA" synth --preset llama3-70b --type iq2_xs --header-only -o "$big" 2>"$work/err"; then
    expect_status 0 "plan llama3-70b iq2_xs on 24G + 64G" -- "$STRATA" plan -m "$big" \
        --device-spec cuda0:24G:1008GB/s:165TFLOPS --device-spec cpu:64G:60GB/s:1TFLOPS -o json &&
        python3 - "$work/out" <<'PY' || fail "llama3-70b iq2_xs plan: $(head -c 600 "$work/out")"
import json, sys
plan = json.load(open(sys.argv[1]))
cuda = next(d for d in plan["devices"] if d["name"] == "cuda0")
problems = []
if not plan["fits"] or plan["n_ctx"] != 4096:
    problems.append("fits %s at %s positions" % (plan["fits"], plan["n_ctx"]))
if cuda["total_bytes"] > cuda["budget_bytes"]:
    problems.append("cuda0 over its budget")
matrices = [t for t in plan["tensors"] if not t["name"].endswith("norm.weight") and t["name"] != "rope_freqs.weight"]
if cuda["n_layers"] != 80 or cuda["kv_bytes"] != 80 * 2 * 4096 * 8 * 128 * 2:
    problems.append("cuda0 has %d layers and %d bytes of KV cache" % (cuda["n_layers"], cuda["kv_bytes"]))
# the embedding table is read a row per token: the planner keeps it in host RAM
off_card = [t["name"] for t in matrices if t["device"] != "cuda0" and t["name"] != "token_embd.weight"]
if off_card:
    problems.append("not on cuda0: %s" % ", ".join(off_card[:5]))
if "does not compute" in plan["note"]:
    problems.append("the note says a format is refused: %r" % plan["note"])
if problems:
    print("; ".join(problems))
    sys.exit(1)
PY
else
    fail "synth llama3-70b iq2_xs --header-only: $(cat "$work/err")"
fi
rm -f "$big"

# --- --parallel N: N sequences, each with its own KV cache and scratch (as strata serve
# places them): N times the KV cache of one, the weights unchanged
if expect_status 0 "plan --parallel 1" -- "$STRATA" plan -m "$q8" --device-spec cpu:1G:10GB/s:1TFLOPS --ctx 64 -o json &&
    cp "$work/out" "$work/one.json" &&
    expect_status 0 "plan --parallel 3" -- "$STRATA" plan -m "$q8" --device-spec cpu:1G:10GB/s:1TFLOPS --ctx 64 \
        --parallel 3 -o json; then
    python3 - "$work/one.json" "$work/out" <<'PY' || fail "plan --parallel 3: the KV cache is not 3 times one sequence's"
import json, sys
one, three = (json.load(open(path)) for path in sys.argv[1:3])
kv1 = sum(d["kv_bytes"] for d in one["devices"])
kv3 = sum(d["kv_bytes"] for d in three["devices"])
w1 = sum(d["weights_bytes"] for d in one["devices"])
w3 = sum(d["weights_bytes"] for d in three["devices"])
if kv1 <= 0 or kv3 != 3 * kv1 or w3 != w1:
    print("kv %d -> %d, weights %d -> %d" % (kv1, kv3, w1, w3))
    sys.exit(1)
PY
fi
expect_status 2 "plan --parallel 0" -- "$STRATA" plan -m "$q8" --parallel 0

# --- bad usage: exit 2, before the model is read ---------------------------------------------
for spec in gpu0:8M cuda0 cuda:8M cpu1:1G cuda0:lots cuda0:8M:fast cuda0:8M:1000GB/s:many cuda0:8M:1:2:3 \
    cuda0:8M:1000GB/s:100TFLOPS:extra cuda0:8M:; do
    expect_status 2 "--device-spec $spec" -- "$STRATA" plan -m "$q8" --device-spec "$spec" &&
        grep -q -- "--device-spec" "$work/err" || fail "--device-spec $spec: the message does not name the flag"
done
expect_status 2 "--device-spec given twice" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G --device-spec cuda0:2G
expect_status 2 "--vram for an unknown device" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G --vram cuda5=1G &&
    grep -q "cuda5" "$work/err" || fail "--vram cuda5: the message does not name cuda5"
expect_status 2 "--vram without a size" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G --vram cuda0
expect_status 2 "-ot for an unknown device" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G -ot 'ffn=cuda1'
expect_status 2 "-ot without '='" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G -ot 'blk\.0\.ffn_up'
expect_status 2 "-ot with nothing before '='" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G -ot '=cpu'
expect_status 2 "--tensor-split 0,0" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G -ts 0,0
expect_status 2 "--tensor-split 1,x" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G -ts 1,x
expect_status 2 "--tensor-split 1,-1" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G -ts 1,-1
expect_status 2 "-ngl -1" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G -ngl -1
expect_status 2 "--device-spec with --device" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G --device cpu
expect_status 2 "plan without a model" -- "$STRATA" plan --device-spec cuda0:1G
expect_status 2 "plan -o yaml" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G -o yaml

# --- errors of a well-formed command: exit 1 --------------------------------------------------
expect_status 1 "plan of a missing file" -- "$STRATA" plan -m "$work/missing.gguf" --device-spec cuda0:1G
expect_status 1 "--tensor-split for more GPUs than there are" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G \
    --device-spec "$host" -ts 1,1,1 && grep -q "3 proportions" "$work/err" || fail "-ts 1,1,1: message"
expect_status 1 "-ot with a bad regex" -- "$STRATA" plan -m "$q8" --device-spec cuda0:1G -ot 'blk\.[0-9=cuda0' &&
    grep -q "override 'blk" "$work/err" || fail "-ot with a bad regex: message"

if [[ $failures -ne 0 ]]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "plan command: all checks passed"
