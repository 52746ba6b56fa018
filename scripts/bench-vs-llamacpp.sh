#!/usr/bin/env bash
# strata against llama.cpp on the same model files, the same threads, taken
# alternately so that both meet the same machine load:
#
#   scripts/bench-vs-llamacpp.sh --llama-bench PATH [--strata PATH] [-p 64] [-n 32]
#                                [-r 2] [-t 2] [--rounds 1] MODEL...
#
# For each round, for each MODEL: `strata bench -m MODEL -p P -n N -r R -t T`
# (with its device measurement, so its table has the roofline column), then
# `llama-bench -m MODEL -p P -n N -r R -t T` (llama.cpp's defaults otherwise).
# Before each command one line gives the UTC time and the load average, so a
# row taken on a busy machine can be told from a quiet one; after it, where
# /usr/bin/time exists, one line gives the command's peak resident memory and
# its CPU seconds. Both tools print
# their own markdown tables; nothing is averaged or rewritten here. Exits
# non-zero when a command failed (the others still run).
set -uo pipefail

strata=build/strata
llama_bench=
p=64
n=32
r=2
t=2
rounds=1
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --llama-bench) llama_bench=$2; shift 2 ;;
        --strata) strata=$2; shift 2 ;;
        -p) p=$2; shift 2 ;;
        -n) n=$2; shift 2 ;;
        -r) r=$2; shift 2 ;;
        -t) t=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        -*) echo "bench-vs-llamacpp.sh: unknown option $1" >&2; exit 2 ;;
        *) models+=("$1"); shift ;;
    esac
done
if [ -z "$llama_bench" ] || [ ${#models[@]} -eq 0 ]; then
    echo "usage: bench-vs-llamacpp.sh --llama-bench PATH [options] MODEL..." >&2
    exit 2
fi
for tool in "$strata" "$llama_bench"; do
    [ -x "$tool" ] || { echo "bench-vs-llamacpp.sh: $tool is not executable" >&2; exit 2; }
done

# Runs a command, then reports its peak RSS and CPU time (GNU time writes
# them to standard error, which the command shares).
measured() {
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "-- peak RSS %M KiB, %U s user + %S s system, %e s wall" "$@"
    else
        "$@"
    fi
}

stamp() {
    echo "-- $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg): $*"
}

status=0
for round in $(seq 1 "$rounds"); do
    for model in "${models[@]}"; do
        stamp "round $round, strata bench, $model"
        measured "$strata" bench -m "$model" -p "$p" -n "$n" -r "$r" -t "$t" || status=1
        stamp "round $round, llama-bench, $model"
        measured "$llama_bench" -m "$model" -p "$p" -n "$n" -r "$r" -t "$t" || status=1
    done
done
stamp "done"
exit $status
