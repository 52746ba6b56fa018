#!/usr/bin/env bash
# The template command: renders the committed conversations with the
# committed templates exactly as jinja2 did (tests/data/templates/cli/,
# written by tests/tools/gen_template_fixtures.py), takes the BOS/EOS texts
# from a model, falls back to the plain template for a model without one,
# and fails with exit status 1 and a message naming the problem.
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR, STRATA_TEST_DATA_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"

templates="$DATA/templates"
cli="$templates/cli"

# expect_output NAME EXPECTED_FILE COMMAND...: the command's stdout must be
# the file's bytes.
expect_output() {
    local what="$1" expected="$2"
    shift 2
    if expect_status 0 "$what" -- "$@"; then
        cmp -s "$work/out" "$expected" || fail "$what: output differs from $(basename "$expected") ($(cmp "$work/out" "$expected" 2>&1 | head -1))"
    fi
}

expect_output "qwen3 with tools" "$cli/qwen3_tools.txt" \
    "$STRATA" template --chat-template "$templates/Qwen-Qwen3-0.6B.jinja" --messages "$cli/tool_calls.json" \
    --tools "$cli/tools.json" --eos-token '<|im_end|>'
expect_output "qwen3 with enable_thinking=false" "$cli/qwen3_no_thinking.txt" \
    "$STRATA" template --chat-template "$templates/Qwen-Qwen3-0.6B.jinja" --messages "$cli/multi_turn.json" \
    --var enable_thinking=false --eos-token '<|im_end|>'
expect_output "llama 3.1 without a generation prompt" "$cli/llama31_multi.txt" \
    "$STRATA" template --chat-template "$templates/meta-llama-Llama-3.1-8B-Instruct.jinja" \
    --messages "$cli/multi_turn.json" --no-generation-prompt --bos-token '<|begin_of_text|>' --eos-token '<|eot_id|>'
expect_output "gpt-oss with a date and a string variable" "$cli/gpt_oss_date.txt" \
    "$STRATA" template --chat-template "$templates/openai-gpt-oss-120b.jinja" --messages "$cli/system_user.json" \
    --date 2025-03-07 --var 'reasoning_effort="low"' \
    --bos-token '<|startoftext|>' --eos-token '<|return|>'
# messages from stdin
if expect_status 0 "messages from stdin" -- bash -c "\"$STRATA\" template --chat-template \"$templates/Qwen-Qwen3-0.6B.jinja\" \
        --messages - --var enable_thinking=false --eos-token '<|im_end|>' <\"$cli/multi_turn.json\""; then
    cmp -s "$work/out" "$cli/qwen3_no_thinking.txt" || fail "messages from stdin: output differs"
fi

# a model: the fallback, and the model's BOS/EOS under another template
if expect_status 0 "a model without a chat template" "$STRATA" template -m "$STORIES" --messages "$cli/multi_turn.json" \
   ; then
    printf 'system: You are terse.\n\nuser: Hi there\n\nassistant: Hello. How can I help?\n\nuser: Tell me a joke.\n\nassistant:' \
        | cmp -s - "$work/out" || fail "fallback output: $(head -c 200 "$work/out")"
    grep -q "fallback" "$work/err" || fail "no note that the fallback is used: $(cat "$work/err")"
fi
# the generation prompt is on by default; --no-generation-prompt leaves it out
if expect_status 0 "the fallback without a generation prompt" "$STRATA" template -m "$STORIES" \
    --messages "$cli/multi_turn.json" --no-generation-prompt; then
    printf 'system: You are terse.\n\nuser: Hi there\n\nassistant: Hello. How can I help?\n\nuser: Tell me a joke.\n\n' \
        | cmp -s - "$work/out" || fail "fallback output without the generation prompt: $(head -c 200 "$work/out")"
fi
printf '{{ bos_token }}|{{ eos_token }}|{{ messages|length }}' >"$work/tokens.jinja"
if expect_status 0 "--chat-template with -m" "$STRATA" template -m "$STORIES" --chat-template "$work/tokens.jinja" \
    --messages "$cli/multi_turn.json"; then
    [[ "$(cat "$work/out")" == "<s>|</s>|4" ]] || fail "BOS/EOS from the model: got '$(cat "$work/out")'"
fi
if expect_status 0 "--print-template" "$STRATA" template --chat-template "$work/tokens.jinja" --print-template; then
    cmp -s "$work/out" "$work/tokens.jinja" || fail "--print-template printed something else"
fi

# failures: exit status 1 and one message
if expect_status 1 "roles out of order" "$STRATA" template --chat-template "$templates/google-gemma-2-2b-it.jinja" \
    --messages "$cli/bad_role_order.json"; then
    grep -q "Conversation roles must alternate" "$work/err" || fail "raise_exception text missing: $(cat "$work/err")"
    [[ -s "$work/out" ]] && fail "text printed for a failed render"
fi
printf 'a\n{%% include "x.jinja" %%}\n' >"$work/include.jinja"
if expect_status 1 "unsupported construct" "$STRATA" template --chat-template "$work/include.jinja" \
    --messages "$cli/multi_turn.json"; then
    grep -q "line 2.*include" "$work/err" || fail "the message should name line 2 and include: $(cat "$work/err")"
fi
printf '[{"role": "user", "content": "x"' >"$work/broken.json"
if expect_status 1 "broken JSON" "$STRATA" template --chat-template "$work/tokens.jinja" --messages "$work/broken.json"; then
    grep -q "broken.json" "$work/err" || fail "the message should name the file: $(cat "$work/err")"
fi
expect_status 1 "a bad date" "$STRATA" template --chat-template "$work/tokens.jinja" --messages "$cli/multi_turn.json" \
    --date 2025-13-01
expect_status 1 "a missing template file" "$STRATA" template --chat-template "$work/none.jinja" \
    --messages "$cli/multi_turn.json"
expect_status 2 "no template" "$STRATA" template --messages "$cli/multi_turn.json"
expect_status 2 "no messages" "$STRATA" template --chat-template "$work/tokens.jinja"
expect_status 2 "a variable that is not JSON" "$STRATA" template --chat-template "$work/tokens.jinja" \
    --messages "$cli/multi_turn.json" --var effort=high
expect_status 2 "the old spelling --bos" "$STRATA" template --chat-template "$work/tokens.jinja" \
    --messages "$cli/multi_turn.json" --bos '<s>'
expect_status 0 "--help" "$STRATA" template --help
if expect_status 0 "--repeat" "$STRATA" template --chat-template "$work/tokens.jinja" --messages "$cli/multi_turn.json" \
    --repeat 5; then
    [[ "$(cat "$work/out")" == "||4" ]] || fail "--repeat printed '$(cat "$work/out")'"
    grep -q "5 renders" "$work/err" || fail "--repeat gave no timing: $(cat "$work/err")"
fi

if [[ $failures -ne 0 ]]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "template command: all checks passed"
