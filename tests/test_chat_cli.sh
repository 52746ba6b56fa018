#!/usr/bin/env bash
# The chat command on stories260K at --temp 0: every reply is what
# `strata run --temp 0` writes for the prompt `strata template` renders for
# the conversation so far (the reference), the second turn computes only the
# tokens the cache does not hold, /clear starts over, a template that
# re-renders earlier turns differently still gives the reference replies (the
# cache is cut back), the end of the context is a message, and bad flags exit
# with status 2.
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR, STRATA_TEST_DATA_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is not installed (it writes the reference conversations' JSON)"
    exit 77
fi

n=20
# chat and run on the CPU (--device cpu): a GPU's batched prefill may round
# differently from its one-token steps, and chat feeds other pieces than run
# role:content lines; no control tokens, so `run --special` reads it as chat does
printf '{%% for m in messages %%}{{ m.role }}:{{ m.content }}\n{%% endfor %%}{%% if add_generation_prompt %%}assistant:{%% endif %%}' \
    >"$work/simple.jinja"
# the message count first: every turn renders the start differently
printf '{{ messages|length }}\n{%% for m in messages %%}{{ m.role }}:{{ m.content }}\n{%% endfor %%}assistant:' \
    >"$work/counting.jinja"

# reference TEMPLATE_ARGS... -- MESSAGES_JSON RUN_ARGS...: `strata run --temp
# 0` on the conversation as `strata template` renders it; the text (with
# run's final newline) in $work/ref, run's prompt token count in $ref_tokens.
reference() {
    local template_args=()
    while [[ "$1" != "--" ]]; do
        template_args+=("$1")
        shift
    done
    shift
    printf '%s' "$1" >"$work/messages.json"
    shift
    "$STRATA" template -m "$STORIES" "${template_args[@]}" --messages "$work/messages.json" >"$work/prompt" \
        2>"$work/template_err" ||
        fail "strata template failed on $(cat "$work/messages.json")"
    local prompt
    prompt="$(cat "$work/prompt"; printf x)"
    prompt="${prompt%x}"
    "$STRATA" run -m "$STORIES" --device cpu --temp 0 -n "$n" --no-echo "$@" -p "$prompt" >"$work/ref" 2>"$work/ref_err" ||
        fail "strata run failed: $(cat "$work/ref_err")"
    ref_tokens="$(sed -n 's/.*prompt \([0-9]*\) tokens.*/\1/p' "$work/ref_err")"
}

# json_text FILE: the file's text less its final newline, as a JSON string
json_text() {
    python3 -c 'import json, sys; t = open(sys.argv[1]).read(); print(json.dumps(t[:-1] if t.endswith("\n") else t))' "$1"
}

# --- two turns, /clear, the first turn again -------------------------------
q1="Tell me a story."
q2="What did the cat do?"
if expect_status 0 "two turns and /clear" -- bash -c "printf '%s\n%s\n/clear\n%s\n' '$q1' '$q2' '$q1' | \
        \"$STRATA\" chat -m \"$STORIES\" --device cpu --temp 0 -n $n --chat-template \"$work/simple.jinja\" --verbose"; then
    cp "$work/out" "$work/chat_out"
    cp "$work/err" "$work/chat_err"
    reference --chat-template "$work/simple.jinja" -- "[{\"role\": \"user\", \"content\": \"$q1\"}]" --special
    cp "$work/ref" "$work/ref1"
    tokens1="$ref_tokens"
    reply1="$(json_text "$work/ref1")"
    reference --chat-template "$work/simple.jinja" -- "[{\"role\": \"user\", \"content\": \"$q1\"}, \
{\"role\": \"assistant\", \"content\": $reply1}, {\"role\": \"user\", \"content\": \"$q2\"}]" --special
    tokens2="$ref_tokens"
    cat "$work/ref1" "$work/ref" "$work/ref1" >"$work/expected"
    cmp -s "$work/chat_out" "$work/expected" ||
        fail "the replies differ from strata run on strata template's prompts:
$(diff "$work/chat_out" "$work/expected" | head -8)"
    mapfile -t counts < <(sed -n 's/.*prompt tokens: \([0-9]*\) new, \([0-9]*\) cached.*/\1 \2/p' "$work/chat_err")
    if [[ ${#counts[@]} -ne 3 ]]; then
        fail "expected 3 'prompt tokens' lines in --verbose, got ${#counts[@]}: $(cat "$work/chat_err")"
    else
        read -r new1 cached1 <<<"${counts[0]}"
        read -r new2 cached2 <<<"${counts[1]}"
        read -r new3 cached3 <<<"${counts[2]}"
        [[ "$new1" -eq "$tokens1" && "$cached1" -eq 0 ]] ||
            fail "turn 1 fed $new1 new, $cached1 cached; strata run counts $tokens1 prompt tokens"
        # the whole first prompt (and the reply but its last token) stays in the cache
        [[ "$cached2" -ge $((tokens1 + n - 1)) && $((new2 + cached2)) -eq "$tokens2" ]] ||
            fail "turn 2 fed $new2 new, $cached2 cached; strata run counts $tokens2, the first turn $tokens1 + $n"
        # the cache holds the prompt and the reply but its last token (-n ends it)
        positions="$(sed -n 's/.*cache \([0-9]*\) positions.*/\1/p' "$work/chat_err" | tr '\n' ' ')"
        [[ "$positions" == "$((tokens1 + n - 1)) $((tokens2 + n - 1)) $((tokens1 + n - 1)) " ]] ||
            fail "cache positions after each turn: $positions; expected $((tokens1 + n - 1)) $((tokens2 + n - 1)) ..."
        [[ "$new3" -eq "$tokens1" && "$cached3" -eq 0 ]] ||
            fail "after /clear: $new3 new, $cached3 cached (expected $tokens1 new, 0 cached)"
    fi
fi

# --- a template that renders the start differently every turn --------------
if expect_status 0 "a re-rendered start" -- bash -c "printf '%s\n%s\n' '$q1' '$q2' | \
        \"$STRATA\" chat -m \"$STORIES\" --device cpu --temp 0 -n $n --chat-template \"$work/counting.jinja\" -v"; then
    cp "$work/out" "$work/chat_out"
    cp "$work/err" "$work/chat_err"
    reference --chat-template "$work/counting.jinja" -- "[{\"role\": \"user\", \"content\": \"$q1\"}]" --special
    cp "$work/ref" "$work/ref1"
    reply1="$(json_text "$work/ref1")"
    reference --chat-template "$work/counting.jinja" -- "[{\"role\": \"user\", \"content\": \"$q1\"}, \
{\"role\": \"assistant\", \"content\": $reply1}, {\"role\": \"user\", \"content\": \"$q2\"}]" --special
    positions="$(sed -n 's/.*cache \([0-9]*\) positions.*/\1/p' "$work/chat_err" | sed -n 2p)"
    [[ "$positions" == "$((ref_tokens + n - 1))" ]] ||
        fail "re-rendered start: the cache holds $positions positions after turn 2, expected $((ref_tokens + n - 1))"
    cat "$work/ref1" "$work/ref" >"$work/expected"
    cmp -s "$work/chat_out" "$work/expected" ||
        fail "re-rendered start: the replies differ from the reference:
$(diff "$work/chat_out" "$work/expected" | head -8)"
    # only BOS (and at most the digit's piece) matches: the cache was cut back
    cached2="$(sed -n 's/.*prompt tokens: [0-9]* new, \([0-9]*\) cached.*/\1/p' "$work/chat_err" | sed -n 2p)"
    [[ -n "$cached2" && "$cached2" -lt 3 ]] || fail "re-rendered start: turn 2 reused '$cached2' tokens"
fi

# --- the fallback template, a system message, /exit ------------------------
sys="You are terse."
if expect_status 0 "the fallback with --system and /exit" -- bash -c "printf '%s\n%s\n%s\n' '$q1' /exit '$q2' | \
        \"$STRATA\" chat -m \"$STORIES\" --device cpu --temp 0 -n $n --system '$sys' --seed 7"; then
    cp "$work/out" "$work/chat_out"
    [[ "$(grep -c "plain fallback" "$work/err")" -eq 1 ]] || fail "the fallback should be said once: $(cat "$work/err")"
    reference -- "[{\"role\": \"system\", \"content\": \"$sys\"}, {\"role\": \"user\", \"content\": \"$q1\"}]"
    cmp -s "$work/chat_out" "$work/ref" ||
        fail "fallback: the reply differs from the reference (nothing may follow /exit):
$(diff "$work/chat_out" "$work/ref" | head -8)"
fi

# --- the end of the context ------------------------------------------------
long="$(printf 'word %.0s' $(seq 40))"
if expect_status 1 "the end of the context" -- bash -c "printf '%s\n%s\n%s\n' '$q1' '$long' '$q2' | \
        \"$STRATA\" chat -m \"$STORIES\" --device cpu --temp 0 --ctx 32 --chat-template \"$work/simple.jinja\""; then
    grep -q "stopped at the end of the context (32 positions)" "$work/err" ||
        fail "no message for a reply that filled the context: $(cat "$work/err")"
    grep -q "context holds 32 positions" "$work/err" ||
        fail "no message for a conversation longer than the context: $(cat "$work/err")"
    [[ "$(wc -l <"$work/out")" -eq 1 ]] || fail "expected one reply line: $(cat "$work/out")"
fi

# --- bad flags and files ----------------------------------------------------
expect_status 2 "no model" "$STRATA" chat --temp 0 </dev/null
expect_status 2 "an unknown flag" "$STRATA" chat -m "$STORIES" --no-such-flag </dev/null
expect_status 2 "a bad temperature" "$STRATA" chat -m "$STORIES" --temp warm </dev/null
expect_status 2 "a bad -n" "$STRATA" chat -m "$STORIES" -n -5 </dev/null
expect_status 1 "a missing template file" "$STRATA" chat -m "$STORIES" --chat-template "$work/none.jinja" </dev/null
expect_status 0 "an empty stdin" "$STRATA" chat -m "$STORIES" </dev/null
[[ -s "$work/out" ]] && fail "an empty stdin printed: $(cat "$work/out")"
if expect_status 0 "--help" "$STRATA" chat --help; then
    grep -q -- "--system" "$work/out" && grep -q -- "--top-k" "$work/out" && grep -q -- "--ctx" "$work/out" ||
        fail "--help should list the conversation, sampling and placement flags"
fi

if [[ $failures -ne 0 ]]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "chat command: all checks passed"
