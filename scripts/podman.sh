#!/usr/bin/env bash
# Podman's Docker-compatible API for the end-to-end tests on Podman (tests/podman.rs):
# Debian's `podman` (installed when missing), `podman system service` on
# /tmp/clnrm-podman/podman.sock (started once, reused), and the project's test image
# copied into Podman's storage from Docker's. Prints the socket's DOCKER_HOST.
#   scripts/podman.sh           start it if it does not answer
#   scripts/podman.sh stop      stop it
#   scripts/podman.sh --suites  the test binaries CI runs on Podman (a nextest filter)
#
# Sandboxes often refuse the resource limits Podman gives containers by default
# (`error setting rlimit type 7: operation not permitted`): its containers.conf here
# sets `default_ulimits` within this shell's hard limits.
set -euo pipefail
dir=/tmp/clnrm-podman
sock=$dir/podman.sock
host="unix://$sock"
export CONTAINERS_CONF=$dir/containers.conf

ping() { curl -sf --max-time 2 --unix-socket "$sock" http://podman/_ping >/dev/null 2>&1; }

# The test binaries that also run on Podman in CI, as a nextest filter.
if [[ "${1:-}" == "--suites" ]]; then
    sep=""
    for b in run services http otel cache diff snapshots watch build; do
        printf '%sbinary_id(clnrm-cli::%s)' "$sep" "$b"
        sep=" | "
    done
    echo
    exit 0
fi
if [[ "${1:-}" == "stop" ]]; then
    [[ -s $dir/service.pid ]] && kill "$(cat $dir/service.pid)" 2>/dev/null || true
    exit 0
fi
if ! command -v podman >/dev/null; then
    echo "setup: installing podman" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null
fi
mkdir -p "$dir"
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[[ $nofile == unlimited ]] && nofile=1048576
# Above about 60,000 processes runc was refused here even under a higher hard limit.
[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
    "$nofile" "$nofile" "$nproc" "$nproc" >"$CONTAINERS_CONF"
if ! ping; then
    setsid nohup podman system service --time=0 "$host" >"$dir/service.log" 2>&1 &
    echo $! >"$dir/service.pid"
    for _ in $(seq 1 100); do
        ping && break
        sleep 0.1
    done
    ping || { echo "setup: podman system service did not answer; see $dir/service.log" >&2; exit 1; }
fi
# The test image, as Docker has it (same id once copied).
want=$(docker image inspect -f '{{.Id}}' clnrm/busybox:latest)
have=$(podman image inspect -f '{{.Id}}' clnrm/busybox:latest 2>/dev/null || true)
if [[ "sha256:$have" != "$want" && "$have" != "$want" ]]; then
    docker save clnrm/busybox:latest | podman load -q >/dev/null
fi
echo "$host"
