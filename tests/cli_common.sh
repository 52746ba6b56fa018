# Sourced by the tests/test_*_cli.sh scripts and tests/test_cli.sh: where the
# strata command and the models are, a scratch directory, and the helpers
# that count failures. Environment (set by ctest): STRATA, STRATA_MODELS_DIR,
# STRATA_TEST_DATA_DIR.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STRATA="${STRATA:-$here/../build/strata}"
MODELS="${STRATA_MODELS_DIR:-$here/../models}"
DATA="${STRATA_TEST_DATA_DIR:-$here/data}"
STORIES="$MODELS/stories260K.gguf"
TINY="$MODELS/llama-2-tiny-random.gguf"

if [[ ! -x "$STRATA" ]]; then
    echo "SKIP: no strata executable at $STRATA"
    exit 77
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect_status STATUS DESCRIPTION [--] COMMAND...: runs the command with
# stdout in $work/out and stderr in $work/err and checks its exit status.
expect_status() {
    local want="$1" what="$2"
    shift 2
    [[ "${1:-}" == "--" ]] && shift
    "$@" >"$work/out" 2>"$work/err"
    local got=$?
    if [[ $got -ne $want ]]; then
        fail "$what: exit status $got, expected $want"
        sed 's/^/    stderr: /' "$work/err" | head -5
        return 1
    fi
    return 0
}
