#!/usr/bin/env bash
# Installs what strata needs to build (Debian/Ubuntu, with apt-get) and builds
# it in build/ (Release). Run from anywhere inside a clone:
#
#   scripts/setup.sh                 install packages (as root or via sudo), build
#   scripts/setup.sh --no-install    only configure and build
#
# Environment: BUILD_DIR (default build), BUILD_TYPE (default Release),
# CMAKE_ARGS (extra options, e.g. "-DSTRATA_VULKAN=ON"), JOBS (default: cores).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$repo/build}"
build_type="${BUILD_TYPE:-Release}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
install=1

for arg in "$@"; do
    case "$arg" in
    --no-install) install=0 ;;
    -h | --help)
        sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "setup.sh: unknown option '$arg' (see --help)" >&2
        exit 2
        ;;
    esac
done

packages=(gcc make cmake pkg-config libpcre2-dev libmicrohttpd-dev libjansson-dev python3)

if [[ $install -eq 1 ]]; then
    if ! command -v apt-get >/dev/null; then
        echo "setup.sh: no apt-get here; install these yourself, then run with --no-install:" >&2
        echo "  ${packages[*]}" >&2
        exit 1
    fi
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then
        if ! command -v sudo >/dev/null; then
            echo "setup.sh: installing packages needs root (or sudo); or run with --no-install" >&2
            exit 1
        fi
        sudo_cmd=(sudo)
    fi
    echo "setup.sh: installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" libc6-dev
fi

echo "setup.sh: configuring $build_type build in $build_dir"
# shellcheck disable=SC2086 # CMAKE_ARGS is a list of words on purpose
cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" ${CMAKE_ARGS:-}
cmake --build "$build_dir" -j "$jobs"
echo "setup.sh: built $build_dir/strata"
