#!/usr/bin/env bash
# The libraries strata needs (PCRE2; libmicrohttpd and jansson for the
# server) for a machine that has a compiler, CMake and the CUDA toolkit but
# no way to install packages:
#
#   scripts/offline-deps.sh download DIR    (on a Debian/Ubuntu machine with
#                                            apt-get) the .deb files of the
#                                            headers and shared libraries
#   scripts/offline-deps.sh unpack DIR PREFIX
#                                           (on the other machine) unpacks
#                                            them into PREFIX, without root
#                                            or dpkg, and prints the folder
#                                            to give CMake:
#
#   cmake -S . -B build -DCMAKE_PREFIX_PATH="$(scripts/offline-deps.sh unpack DIR /tmp/deps)"
#
# The binaries then find the library through their RPATH. The folder is
# about 2 MB; nothing is installed system-wide. libmicrohttpd's library uses
# the machine's GnuTLS (libgnutls30, on almost every Debian/Ubuntu system).
set -euo pipefail

packages=(libpcre2-dev libpcre2-8-0 libmicrohttpd-dev libmicrohttpd12 libjansson-dev libjansson4)

usage() {
    sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

download() { # download DIR
    mkdir -p "$1"
    command -v apt-get >/dev/null || {
        echo "offline-deps.sh: download needs apt-get" >&2
        exit 1
    }
    (cd "$1" && apt-get download "${packages[@]}") >&2
    ls "$1"/*.deb
}

unpack_one() { # unpack_one DEB PREFIX: dpkg-deb where there is one, else ar + tar
    if command -v dpkg-deb >/dev/null; then
        dpkg-deb -x "$1" "$2"
        return
    fi
    local scratch
    scratch="$(mktemp -d)"
    (cd "$scratch" && ar x "$1")
    tar -xf "$scratch"/data.tar.* -C "$2"
    rm -rf "$scratch"
}

unpack() { # unpack DIR PREFIX
    local dir prefix count=0
    dir="$(cd "$1" && pwd)"
    mkdir -p "$2"
    prefix="$(cd "$2" && pwd)"
    for deb in "$dir"/*.deb; do
        [[ -e $deb ]] || continue
        unpack_one "$deb" "$prefix"
        count=$((count + 1))
    done
    if [[ $count -eq 0 ]]; then
        echo "offline-deps.sh: no .deb files in $dir (run '$0 download $1' where apt-get works)" >&2
        exit 1
    fi
    echo "$prefix/usr"
}

[[ $# -ge 1 ]] || usage
case "$1" in
download) [[ $# -eq 2 ]] || usage; download "$2" ;;
unpack) [[ $# -eq 3 ]] || usage; unpack "$2" "$3" ;;
-h | --help) usage ;;
*) usage ;;
esac
