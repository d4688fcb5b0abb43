#!/usr/bin/env bash
# One-command set-up: tools, a Docker engine (started if none answers), the project's
# own test image `clnrm/busybox:latest` (FROM scratch + Debian's busybox; no registry
# can be pulled from), the examples' base images and wheels
# (scripts/example-images.sh), a PostgreSQL server for the runs service's tests
# (scripts/postgres.sh), Podman's Docker-compatible API for the tests on Podman
# (scripts/podman.sh), headless Chromium with chromedriver for the browser tests,
# Debian's Neovim, Schemathesis, Taplo and pygls from PyPI, and the release binary.
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

# The image holds Debian's dynamically linked busybox with the C library it needs, so
# that name lookups (Docker's DNS on a scenario network) work; a static glibc busybox
# cannot use DNS. Without apt (or offline), it falls back to busybox-static.
build_image() {
    local ctx=images/busybox rootfs=images/busybox/rootfs tmp
    rm -rf "$rootfs" && mkdir -p "$rootfs/bin"
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download busybox >/dev/null 2>&1) && dpkg -x "$tmp"/busybox_*.deb "$tmp/x"; then
        cp "$tmp/x/bin/busybox" "$rootfs/bin/busybox"
        # Every shared object it loads, at the same path, from this (Debian) host.
        for lib in $(ldd "$rootfs/bin/busybox" | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }'); do
            cp -L --parents "$lib" "$rootfs/"
        done
        # Also what a Rust program built on this host needs (the tests run one in it).
        for lib in $(ldd "$(command -v cargo)" | awk '$2 == "=>" { print $3 }' | grep -E 'libgcc_s|libm\.so'); do
            cp -L --parents "$lib" "$rootfs/"
        done
    else
        echo "setup: apt-get download busybox failed; using busybox-static (no DNS in the image)"
        if ! [[ -x /bin/busybox ]] || ! file -L /bin/busybox 2>/dev/null | grep -q "statically linked"; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static file >/dev/null
        fi
        cp /bin/busybox "$rootfs/bin/busybox"
    fi
    rm -rf "$tmp"
    docker build -q -t clnrm/busybox:latest "$ctx" >/dev/null
    rm -rf "$rootfs"
    echo "setup: built image clnrm/busybox:latest"
}

# `clnrm run` and the end-to-end tests need a Docker engine: if none answers, install
# Debian's docker.io and start dockerd in the background (needs root).
start_engine() {
    if ! command -v dockerd >/dev/null; then
        echo "setup: installing docker.io"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    fi
    echo "setup: starting dockerd (log: /tmp/clnrm-dockerd.log)"
    nohup dockerd >/tmp/clnrm-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    echo "setup: dockerd did not answer within 60 s; see /tmp/clnrm-dockerd.log" >&2
    return 1
}

docker info >/dev/null 2>&1 || start_engine
command -v file >/dev/null || { apt-get update -qq && apt-get install -y -qq file >/dev/null; }
# iproute2 (`ip netns`, veth pairs, bridges) for the multi-host fault test of the runs
# service (crates/clnrm-cli/tests/hosts.rs); iptables lets its bridge forward under
# the engine's FORWARD policy.
for tool in ip:iproute2 iptables:iptables; do
    command -v "${tool%%:*}" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null; }
done
build_image
# The base images of the examples (a minimal Debian, PostgreSQL) from Debian's
# packages, and the PyPI wheels (the OpenTelemetry SDK) that the examples' Python apps
# install when clnrm builds them; cached by a recipe label and the requirements'
# hash, so only the first set-up pays (about 1.7 minutes).
scripts/example-images.sh
# PostgreSQL for the runs service's tests (Debian's package; one server for all tests).
scripts/postgres.sh >/dev/null
# Podman's Docker-compatible API, for the end-to-end tests on Podman.
scripts/podman.sh >/dev/null
# Headless Chromium and its WebDriver for the report and web UI tests (Debian's packages).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "setup: installing chromium and chromium-driver"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# Neovim (Debian's package): its built-in LSP client drives `clnrm lsp` in the tests.
if ! command -v nvim >/dev/null; then
    echo "setup: installing neovim"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq neovim >/dev/null
fi
# Schemathesis (from PyPI) checks the runs service's OpenAPI document against the
# running server in the tests; a virtualenv of its own under target/tools/.
st=target/tools/schemathesis
if ! [[ -x "$st/bin/schemathesis" ]]; then
    echo "setup: installing schemathesis into $st"
    python3 -m venv "$st" && "$st/bin/pip" install -q 'schemathesis>=4,<5'
fi
# Taplo (the TOML toolkit editors use; a binary wheel on PyPI): the tests check the
# JSON Schema with it.
tp=target/tools/taplo
if ! [[ -x "$tp/bin/taplo" ]]; then
    echo "setup: installing taplo into $tp"
    python3 -m venv "$tp" && "$tp/bin/pip" install -q 'taplo>=0.9,<0.10'
fi
# pygls (from PyPI): its language client drives `clnrm lsp` in the tests.
pg=target/tools/pygls
if ! [[ -x "$pg/bin/python" ]] || ! "$pg/bin/python" -c 'import pygls.lsp.client' 2>/dev/null; then
    echo "setup: installing pygls into $pg"
    python3 -m venv "$pg" && "$pg/bin/pip" install -q 'pygls>=2,<3'
fi

if ! $ci; then
    cargo build --release --locked
    echo "setup: done; the binary is target/release/clnrm"
fi
