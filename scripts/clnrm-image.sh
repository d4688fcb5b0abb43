#!/usr/bin/env bash
# Builds the image of clnrm itself, `clnrm/clnrm:latest`: clnrm/bookworm (made by
# scripts/example-images.sh, no registry) plus a clnrm binary built here, without its
# debug information. Run a suite with it against this host's engine:
#
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock \
#       -v "$PWD:$PWD" -w "$PWD" clnrm/clnrm:latest run examples
#
# clnrm finds that it runs in one of the engine's containers (README "clnrm in a
# container"). Options:
#   --binary PATH   the binary to put in it (default: target/release/clnrm, built
#                   with `cargo build --release --locked` when missing)
#   --tag NAME      the image's name (default: clnrm/clnrm:latest)
set -euo pipefail
cd "$(dirname "$0")/.."

binary=target/release/clnrm
tag=clnrm/clnrm:latest
while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--tag NAME]" >&2; exit 2 ;;
    esac
done

if [[ "$binary" == target/release/clnrm && ! -x "$binary" ]]; then
    cargo build --release --locked
fi
[[ -x "$binary" ]] || { echo "clnrm-image: no binary at $binary" >&2; exit 1; }
docker image inspect clnrm/bookworm:latest >/dev/null 2>&1 || scripts/example-images.sh

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp images/clnrm/Dockerfile "$ctx/"
# Without debug information a debug build is a tenth of its size: less to send the engine.
objcopy --strip-debug "$binary" "$ctx/clnrm" 2>/dev/null || cp "$binary" "$ctx/clnrm"
docker build -q -t "$tag" "$ctx" >/dev/null
echo "clnrm-image: built $tag"
