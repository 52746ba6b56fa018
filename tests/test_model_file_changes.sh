#!/usr/bin/env bash
# A model file that changes while `strata run` computes from it: truncated
# (the CPU backend reads the weights straight from the memory map, so this
# used to end the process with SIGBUS and no message) or overwritten in place
# (this used to print garbage and exit 0). Both must end with exit status 1
# and a message naming the file; with --no-mmap the run holds its own copy
# and must not notice at all.
#
# Timing is taken out of the picture with a FIFO: --dump-logits writes the
# prompt's logits (n_prompt x n_vocab floats, far more than a pipe holds)
# after the prompt is decoded and before the first token is generated, so
# once the test has read the first byte of that dump, the run is past its
# load and its prompt, and it cannot start generating until the test drains
# the FIFO. The test changes the file in between.
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR, STRATA_TEST_DATA_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

model="$work/tiny.gguf"
if ! "$STRATA" synth --preset tiny --arch llama --type f32 --seed 7 -o "$model" >/dev/null 2>"$work/err"; then
    echo "FAIL: synth: $(cat "$work/err")"
    exit 1
fi
# a byte-level vocabulary: one token per byte, so 201 prompt tokens dump
# 201 x 258 x 4 bytes of logits, three times a pipe's 64 KiB (within the
# model's 256 trained positions, so no --ctx warning)
prompt="$(printf 'abcdefghij%.0s' {1..20})"
run_flags=(-p "$prompt" -n 24 --temp 0 --ctx 256 --no-echo)

# still_running PID: the process exists and is not a zombie
still_running() {
    local state
    state="$(sed -n 's/^State:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)"
    [[ -n "$state" && "$state" != Z* ]]
}

# run_while_changing NAME CHANGE [FLAGS...]: copies the model to
# $work/NAME.gguf (dated in the past, so that a write now moves its mtime),
# starts `strata run` on the copy with the logits dump into a FIFO, waits
# for the dump, runs CHANGE with the copy's path, lets the run go on and
# waits for it. The run's stdout, stderr and exit status end up in
# $work/NAME.out, $work/NAME.err and $run_status.
run_while_changing() {
    local name="$1" change="$2"
    shift 2
    local copy="$work/$name.gguf" fifo="$work/$name.logits"
    cp "$model" "$copy" && touch -d '2001-01-01 00:00:00' "$copy" && mkfifo "$fifo" || return 1
    # read-write: opening never blocks, so a run that dies early cannot hang the test
    exec 3<>"$fifo"
    timeout 120 "$STRATA" run -m "$copy" "${run_flags[@]}" --dump-logits "$fifo" "$@" \
        >"$work/$name.out" 2>"$work/$name.err" 3<&- &
    local pid=$!
    local waited=0
    until timeout 1 head -c 1 <&3 >/dev/null; do
        if ! still_running "$pid" || ((++waited >= 60)); then
            fail "$name: the run never started writing its logits"
            break
        fi
    done
    "$change" "$copy"
    # drain the dump through a read-only descriptor, which sees the end of the
    # file once the run exits (3, being a writer too, never would). Nothing
    # here is killed: a subshell killed before it runs its command would run
    # the EXIT trap and remove $work.
    exec 4<"$fifo" 3<&-
    timeout 120 cat <&4 >/dev/null
    exec 4<&-
    wait "$pid"
    run_status=$?
    return 0
}

truncate_half() { truncate -s "$(($(stat -c %s "$1") / 2))" "$1"; }
truncate_all() { truncate -s 0 "$1"; }
# 1 MiB of random bytes from offset 1 MiB: inside the weights, past the
# metadata (the tokenizer of this model is a few KiB)
overwrite_middle() { dd if=/dev/urandom of="$1" bs=64K seek=16 count=16 conv=notrunc status=none; }
leave_alone() { :; }

# expect_file_error NAME WORD: the run ended with status 1 (no signal), and
# its message names the file and says WORD
expect_file_error() {
    local name="$1" word="$2" failures_before=$failures
    if [[ $run_status -gt 128 ]]; then
        fail "$name: killed by signal $((run_status - 128))"
    elif [[ $run_status -ne 1 ]]; then
        fail "$name: exit status $run_status, expected 1"
    fi
    grep -q -- "$work/$name.gguf" "$work/$name.err" || fail "$name: the message does not name the file"
    grep -q -- "$word" "$work/$name.err" || fail "$name: the message does not say '$word'"
    if [[ $(wc -l <"$work/$name.err") -ne 1 ]]; then
        fail "$name: expected one line on stderr"
    fi
    [[ $failures -eq $failures_before ]] || sed 's/^/    stderr: /' "$work/$name.err" | head -5
}

# --- an untouched run: the reference text ---------------------------------------
run_while_changing reference leave_alone
[[ $run_status -eq 0 && -s "$work/reference.out" ]] ||
    fail "untouched run: exit status $run_status, $(wc -c <"$work/reference.out") bytes of text"

# --- mapped (the default): truncated or overwritten mid-run ---------------------
run_while_changing truncated truncate_half
expect_file_error truncated "truncated"
run_while_changing emptied truncate_all
expect_file_error emptied "truncated"
run_while_changing overwritten overwrite_middle
expect_file_error overwritten "modified"

# --- --no-mmap: the run does not depend on the file after loading --------------
for change in truncate_all overwrite_middle; do
    name="no_mmap_$change"
    run_while_changing "$name" "$change" --no-mmap
    if [[ $run_status -ne 0 ]]; then
        fail "$name: exit status $run_status, expected 0"
        sed 's/^/    stderr: /' "$work/$name.err" | head -5
    elif ! cmp -s "$work/reference.out" "$work/$name.out"; then
        fail "$name: the text differs from the untouched run"
    fi
done

# --- --no-mmap elsewhere --------------------------------------------------------
expect_status 0 "bench --no-mmap" -- "$STRATA" bench -m "$model" -p 8 -n 4 -r 1 --no-bandwidth --no-mmap
expect_status 0 "run --no-mmap" -- "$STRATA" run -m "$model" "${run_flags[@]}" --no-mmap &&
    { cmp -s "$work/out" "$work/reference.out" || fail "run --no-mmap: the text differs from a mapped run"; }

if [[ $failures -ne 0 ]]; then
    echo "test_model_file_changes: $failures failure(s)"
    exit 1
fi
echo "test_model_file_changes: all checks passed"
