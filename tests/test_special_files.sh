#!/usr/bin/env bash
# Paths that are not regular files: a model path that is a FIFO used to
# block `strata info`, `run` and `tokenize` forever in open(). Every command
# that takes a model must refuse a FIFO, a directory, a character device and
# /dev/stdin (a pipe or a device) at once, with one line naming the path and
# exit status 1. Each command runs under `timeout`, so a regression fails
# instead of hanging. Also: `tokenize -f` reads text from FIFOs and pipes
# (that is what they are for), and a failed `synth -o` never deletes an
# output that is not a regular file.
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR, STRATA_TEST_DATA_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

# Seconds a refusal may take; anything near this is a hang.
LIMIT=20

# check_refused WHAT PATH KIND COMMAND...: the command exits 1 within
# $LIMIT seconds, with one line on stderr that names PATH and says KIND.
# The command's stdin is the caller's.
check_refused() {
    local what="$1" path="$2" kind="$3"
    shift 3
    timeout "$LIMIT" "$@" >"$work/out" 2>"$work/err"
    local got=$?
    if [[ $got -eq 124 ]]; then
        fail "$what: still running after $LIMIT s (blocked on the path?)"
        return
    fi
    if [[ $got -ne 1 ]]; then
        fail "$what: exit status $got, expected 1"
    elif [[ $(wc -l <"$work/err") -ne 1 ]]; then
        fail "$what: expected one line on stderr, got $(wc -l <"$work/err")"
    elif ! grep -qF -- "$path" "$work/err"; then
        fail "$what: the message does not name $path"
    elif ! grep -qF -- "$kind" "$work/err"; then
        fail "$what: the message does not say '$kind'"
    else
        return
    fi
    sed 's/^/    stderr: /' "$work/err" | head -3
}

# check_every_model_command PATH KIND: every command that opens a model
check_every_model_command() {
    local path="$1" kind="$2"
    check_refused "info $path" "$path" "$kind" "$STRATA" info "$path"
    check_refused "run -m $path" "$path" "$kind" "$STRATA" run -m "$path" -p hi -n 1
    check_refused "tokenize -m $path" "$path" "$kind" "$STRATA" tokenize -m "$path" -p hi
    check_refused "bench -m $path" "$path" "$kind" "$STRATA" bench -m "$path" -p 1 -n 1 -r 1 --no-bandwidth
    check_refused "synth --vocab $path" "$path" "$kind" \
        "$STRATA" synth --preset tiny --type f32 --vocab "$path" -o "$work/synth.gguf"
}

mkfifo "$work/model.gguf.fifo"
mkdir "$work/model-dir.gguf"
check_every_model_command "$work/model.gguf.fifo" "FIFO" </dev/null
check_every_model_command "$work/model-dir.gguf" "directory" </dev/null
check_every_model_command /dev/zero "character device" </dev/null
# /dev/stdin: a device, and a pipe whose writer has already gone (opening
# such a pipe by name blocks like a FIFO with no writer)
check_every_model_command /dev/stdin "character device" </dev/null
: | check_every_model_command /dev/stdin "pipe"

# --- tokenize -f: streams are text sources -------------------------------------
expected="$("$STRATA" tokenize -m "$STORIES" -p "Hello world" --ids-only 2>/dev/null)"
[[ -n "$expected" ]] || fail "tokenize -p 'Hello world' printed no ids"
got="$(printf 'Hello world' | timeout "$LIMIT" "$STRATA" tokenize -m "$STORIES" -f /dev/stdin --ids-only)"
[[ "$got" == "$expected" ]] || fail "tokenize -f /dev/stdin (a pipe): '$got', expected '$expected'"
mkfifo "$work/text.fifo"
# the writer waits for the reader; under timeout, so nothing is left behind
timeout "$LIMIT" bash -c 'printf "Hello world" >"$0"' "$work/text.fifo" &
got="$(timeout "$LIMIT" "$STRATA" tokenize -m "$STORIES" -f "$work/text.fifo" --ids-only)"
[[ "$got" == "$expected" ]] || fail "tokenize -f FIFO: '$got', expected '$expected'"
wait
check_refused "tokenize -f directory" "$work/model-dir.gguf" "directory" \
    "$STRATA" tokenize -m "$STORIES" -f "$work/model-dir.gguf"

# --- synth -o: a failed write leaves a device alone -----------------------------
# a node like /dev/full (every write fails with ENOSPC), made in $work so
# that a regression deletes only the copy; needs the right to mknod
if mknod "$work/full" c 1 7 2>/dev/null; then
    timeout "$LIMIT" "$STRATA" synth --preset tiny --type f32 -o "$work/full" >"$work/out" 2>"$work/err"
    got=$?
    [[ $got -eq 1 ]] || fail "synth -o a full device: exit status $got, expected 1"
    [[ -c "$work/full" ]] || fail "synth -o a full device: the device node was removed after the failed write"
else
    echo "note: cannot mknod here; the synth -o device check is skipped"
fi

if [[ $failures -ne 0 ]]; then
    echo "test_special_files: $failures failure(s)"
    exit 1
fi
echo "test_special_files: all checks passed"
