#!/usr/bin/env bash
# strata serve: tests/serve/openai_client.py (see its docstring).
# Environment (set by ctest): STRATA, STRATA_MODELS_DIR.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is not installed"
    exit 77
fi
exec python3 "$here/serve/openai_client.py"
