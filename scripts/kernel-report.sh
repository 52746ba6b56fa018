#!/usr/bin/env bash
# Static facts about the CUDA kernels (kernels/*.cu) for one GPU
# architecture, from the compiler alone (no GPU needed):
#
#   scripts/kernel-report.sh [BUILD_DIR | NVCC] [ARCH]
#
# BUILD_DIR: a CMake build directory configured with STRATA_CUDA=ON; its
# CUDA compiler and first architecture are used. NVCC: the nvcc to run
# (default: nvcc on PATH). ARCH: a compute capability such as 90 (default:
# the build directory's first architecture, else 90).
#
# Per kernel instantiation: registers, stack, spill stores/loads and shared
# memory (ptxas -v), local-memory loads (LDL), generic loads (LD: the
# compiler lost track of a global pointer) and the global loads of the SASS
# by width in bits (LDG 8, 16, 32, 64, 128; cuobjdump -sass). For the hot loop
# of every decode matrix-vector kernel at one token (the loop with the most
# dot-product instructions) the same counts per 32-element unit of the
# weight row: a unit is 8 IDP.4A per token in matvec_q8_kernel and 32
# FFMA/FMUL per token in matvec_float_kernel, so an unrolled loop is counted
# right. "instr" is every SASS instruction of the loop, per unit.
#
# Environment: CUOBJDUMP (default: cuobjdump on PATH, then beside nvcc);
# KERNEL_FILTER, an extended regex on the readable kernel name (default:
# all); LOOP_FILTER, the kernels whose hot loop is reported (default: the
# matvec kernels at one token). Without cuobjdump the SASS columns are left
# out and the report says so. Exit status 0 unless a kernel fails to compile.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nvcc="nvcc"
arch=""
if [[ $# -ge 1 && -d $1 ]]; then
    cache="$1/CMakeCache.txt"
    [[ -f $cache ]] || { echo "kernel-report.sh: $1 has no CMakeCache.txt" >&2; exit 2; }
    nvcc="$(sed -n 's/^CMAKE_CUDA_COMPILER:[A-Z]*=//p' "$cache")"
    [[ -n $nvcc ]] || { echo "kernel-report.sh: $1 was not configured with STRATA_CUDA=ON" >&2; exit 2; }
    arch="$(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$cache" | tr ';' ' ' | awk '{print $1}')"
    arch="${arch%%-*}"
elif [[ $# -ge 1 ]]; then
    nvcc="$1"
fi
[[ $# -ge 2 ]] && arch="$2"
if [[ ! $arch =~ ^[0-9]+[af]?$ ]]; then # "native" or nothing: this machine's GPU, else 90
    arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .' || true)"
    [[ $arch =~ ^[0-9]+$ ]] || arch=90
fi
command -v "$nvcc" >/dev/null || { echo "kernel-report.sh: no nvcc ($nvcc)" >&2; exit 2; }

cuobjdump="${CUOBJDUMP:-}"
if [[ -z $cuobjdump ]]; then
    if command -v cuobjdump >/dev/null; then
        cuobjdump=cuobjdump
    elif [[ -x "$(dirname "$(command -v "$nvcc")")/cuobjdump" ]]; then
        cuobjdump="$(dirname "$(command -v "$nvcc")")/cuobjdump"
    fi
fi
kernel_filter="${KERNEL_FILTER:-.}"
loop_filter="${LOOP_FILTER:-^matvec_(q8|float)_kernel<[^,]*, 1[,>]}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# SASS of one cubin -> per function: name, local loads, LDG by width, and
# the counts of the hot loop (dot instructions, LDG by width, all
# instructions). A loop is a backward branch and the code it jumps over;
# the hot one has the most IDP.4A, else the most FFMA + FMUL.
sass_counts() {
    awk '
    function hex(s,   i, v) {
        s = tolower(s); sub(/^0x/, "", s); v = 0
        for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
        return v
    }
    function width(op,   parts, k, n, w) {
        n = split(op, parts, "."); w = 32
        for (k = 2; k <= n; k++) {
            if (parts[k] == "U8" || parts[k] == "S8") w = 8
            else if (parts[k] == "U16" || parts[k] == "S16") w = 16
            else if (parts[k] == "64") w = 64
            else if (parts[k] == "128") w = 128
        }
        return w
    }
    function finish(   i, j, w, best, best_dot, dot, lo, hi, ldg, total) {
        if (name == "") return
        split("", ldg)
        local_loads = 0; generic = 0; loop_generic = 0
        for (i = 1; i <= n; i++) {
            if (op[i] ~ /^LDG/) ldg[width(op[i])]++
            if (op[i] ~ /^LD\./) generic++
            if (op[i] ~ /^LDL/) local_loads++
        }
        best = 0; best_dot = 0
        for (i = 1; i <= n; i++) {
            if (op[i] != "BRA" || target[i] >= addr[i]) continue
            dot = 0
            for (j = i; j >= 1 && addr[j] >= target[i]; j--) {
                if (op[j] ~ /^IDP\.4A/) dot += 1000
                else if (op[j] ~ /^FFMA$|^FMUL$/) dot++
            }
            if (dot > best_dot) { best_dot = dot; lo = j + 1; hi = i; best = 1 }
        }
        printf "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d", name, local_loads, generic, ldg[8], ldg[16], ldg[32], ldg[64], ldg[128]
        if (best) {
            split("", ldg); total = 0; idp = 0; fma = 0
            for (j = lo; j <= hi; j++) {
                total++
                if (op[j] ~ /^LDG/) ldg[width(op[j])]++
                if (op[j] ~ /^LD\./) loop_generic++
                if (op[j] ~ /^IDP\.4A/) idp++
                if (op[j] ~ /^FFMA$|^FMUL$/) fma++
            }
            printf "\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d", idp, fma, total, loop_generic, ldg[8], ldg[16], ldg[32],
                   ldg[64], ldg[128]
        }
        printf "\n"
        name = ""; n = 0
    }
    /Function : / { finish(); name = $3; n = 0; next }
    /^[ \t]*\/\*[0-9a-f]+\*\// {
        line = $0
        match(line, /\/\*[0-9a-f]+\*\//)
        a = hex(substr(line, RSTART + 2, RLENGTH - 4))
        line = substr(line, RSTART + RLENGTH)
        sub(/;.*/, "", line)
        k = split(line, tok, " ")
        if (k == 0) next
        t = 1
        if (tok[1] ~ /^@/) t = 2
        n++; addr[n] = a; op[n] = tok[t]; target[n] = -1
        if (tok[t] == "BRA") target[n] = hex(tok[k])
    }
    END { finish() }'
}

# Readable names: the format ids of quant_unpack.h and launch.h spelled out.
pretty_name() {
    c++filt | sed -E 's/^void //; s/\(.*$//' |
        sed -E 's/^(matvec_q8_kernel)<2,/\1<Q4_0,/; s/^(matvec_q8_kernel)<3,/\1<Q4_1,/;
                s/^(matvec_q8_kernel)<6,/\1<Q5_0,/; s/^(matvec_q8_kernel)<7,/\1<Q5_1,/;
                s/^(matvec_q8_kernel)<8,/\1<Q8_0,/; s/^(matvec_q8_kernel)<10,/\1<Q2_K,/;
                s/^(matvec_q8_kernel)<11,/\1<Q3_K,/; s/^(matvec_q8_kernel)<12,/\1<Q4_K,/;
                s/^(matvec_q8_kernel)<13,/\1<Q5_K,/; s/^(matvec_q8_kernel)<14,/\1<Q6_K,/;
                s/^(matvec_float_kernel)<0,/\1<F32,/; s/^(matvec_float_kernel)<1,/\1<F16,/;
                s/^(matvec_float_kernel)<30,/\1<BF16,/'
}

# the low-bit formats' tables, generated from base/quant_iq_grids.c as the build does
if ! cmake -DSTRATA_UNPACK_TABLES_SOURCE="$repo/base/quant_iq_grids.c" -DSTRATA_GENERATED_DIR="$work/generated" \
    -P "$repo/cmake/unpack_tables.cmake" >"$work/unpack_tables.log" 2>&1; then
    echo "kernel-report.sh: cannot generate the tables of kernels/quant_unpack_lowbit.h:" >&2
    cat "$work/unpack_tables.log" >&2
    exit 1
fi

echo "# kernel report: sm_$arch, $("$nvcc" --version | tail -n 1)"
[[ -n $cuobjdump ]] || echo "# cuobjdump not found (set CUOBJDUMP): the SASS columns are left out"
echo
status=0
loops="$work/loops.txt"
: >"$loops"
for source in "$repo"/kernels/*.cu; do
    base="$(basename "$source" .cu)"
    cubin="$work/$base.cubin"
    if ! "$nvcc" -cubin -arch="sm_$arch" -O3 -DNDEBUG -std=c++17 -Xptxas -v -I"$repo/kernels" -I"$work/generated" "$source" \
        -o "$cubin" >"$work/$base.ptxas" 2>&1; then
        echo "kernel-report.sh: $base.cu does not compile:" >&2
        cat "$work/$base.ptxas" >&2
        status=1
        continue
    fi
    # ptxas: mangled name, registers, stack, spill stores, spill loads, shared bytes
    awk '
        /Compiling entry function/ { if (name != "") print name, regs, stack, st, ld, smem
                                     name = $0; sub(/^[^'\'']*'\''/, "", name); sub(/'\''.*$/, "", name)
                                     regs = 0; stack = 0; st = 0; ld = 0; smem = 0 }
        /bytes stack frame/ { stack = $1; st = $5; ld = $9 }
        /Used [0-9]+ registers/ { for (i = 1; i <= NF; i++) { if ($i == "registers,") regs = $(i - 1)
                                                             if ($i == "smem" || $i == "smem,") smem = $(i - 2) } }
        END { if (name != "") print name, regs, stack, st, ld, smem }' "$work/$base.ptxas" | sort >"$work/$base.res"
    if [[ -n $cuobjdump ]]; then
        "$cuobjdump" -sass "$cubin" | sass_counts | sort >"$work/$base.sass"
    else
        : >"$work/$base.sass"
    fi
    echo "## kernels/$base.cu"
    printf '%-52s %4s %5s %9s %6s %4s %4s  %s\n' kernel regs stack spill-st/ld smem LDL LD "LDG by bits 8/16/32/64/128"
    while read -r mangled regs stack st ld_spill smem; do
        pretty="$(echo "$mangled" | pretty_name)"
        [[ $pretty =~ $kernel_filter ]] || continue
        sass="$(awk -F'\t' -v n="$mangled" '$1 == n' "$work/$base.sass")"
        IFS=$'\t' read -r _ ldl ld l8 l16 l32 l64 l128 idp fma total wld w8 w16 w32 w64 w128 <<<"${sass:-x}" || true
        loads="-"
        [[ -n $sass ]] && loads="$l8/$l16/$l32/$l64/$l128"
        printf '%-52s %4s %5s %9s %6s %4s %4s  %s\n' "$pretty" "$regs" "$stack" "$st/$ld_spill" "$smem" "${ldl:--}" \
            "${ld:--}" "$loads"
        if [[ -n $sass && -n ${total:-} && $pretty =~ $loop_filter ]]; then
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pretty" "$idp" "$fma" "$total" "$wld" "$w8" "$w16" \
                "$w32" "$w64" "$w128" >>"$loops"
        fi
    done <"$work/$base.res"
    echo
done

if [[ -s $loops ]]; then
    echo "## hot loops of the matrix-vector kernels at one token, per 32-element unit"
    printf '%-44s %6s %6s %5s  %s\n' kernel units instr LD "LDG per unit by bits 8/16/32/64/128"
    awk -F'\t' '{
        units = $2 > 0 ? $2 / 8 : $3 / 32
        if (units <= 0) next
        printf "%-44s %6g %6.1f %5g  %g/%g/%g/%g/%g\n", $1, units, $4 / units, $5 / units, $6 / units, $7 / units,
               $8 / units, $9 / units, $10 / units
    }' "$loops"
    echo "(units: per loop iteration of one lane; LDG counts include the activation loads)"
fi
exit "$status"
