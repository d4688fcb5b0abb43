#!/usr/bin/env bash
# One-command set-up: tools, the release binary, and (when a Docker engine answers)
# the project's own test image `clnrm/busybox:latest` (FROM scratch + Debian's static
# busybox), since no registry can be pulled from.
#   scripts/setup.sh        set up for local use
#   scripts/setup.sh --ci   what .ci/run needs (no release build)
set -euo pipefail
cd "$(dirname "$0")/.."
ci=false
[[ "${1:-}" == "--ci" ]] && ci=true

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

build_image() {
    local busybox
    busybox=$(command -v busybox 2>/dev/null || true)
    if [[ -z "$busybox" ]] || ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
        if [[ -x /bin/busybox ]] && file -L /bin/busybox 2>/dev/null | grep -q "statically linked"; then
            busybox=/bin/busybox
        else
            echo "setup: installing busybox-static"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static file >/dev/null
            busybox=/bin/busybox
        fi
    fi
    cp "$busybox" images/busybox/busybox
    docker build -q -t clnrm/busybox:latest images/busybox >/dev/null
    rm -f images/busybox/busybox
    echo "setup: built image clnrm/busybox:latest"
}

if docker info >/dev/null 2>&1; then
    command -v file >/dev/null || { apt-get update -qq && apt-get install -y -qq file >/dev/null; }
    build_image
else
    echo "setup: no Docker engine answers; skipping the test image (validate/render/list do not need it)"
fi

if ! $ci; then
    cargo build --release --locked
    echo "setup: done; the binary is target/release/clnrm"
fi
