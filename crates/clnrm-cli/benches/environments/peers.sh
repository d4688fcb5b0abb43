#!/usr/bin/env bash
# The peers of the environments bench (README's performance table), the same 10 tests
# as clnrm's side, at 2 workers (pytest-xdist -n 2), each side's whole process timed:
#   per-test    testcontainers-python, each test: PostgreSQL + seed + migrate + app
#   template    testcontainers-python, one seeded PostgreSQL per worker,
#               CREATE DATABASE … TEMPLATE per test, app per test
#   compose     docker compose, one shared stack (not hermetic): up, tests, down
# Usage: peers.sh [ROUNDS [SIDE...]] (default 3 rounds of the three sides, interleaved;
# medians printed). `cargo bench -p clnrm-cli --bench environments -- --peers` runs
# them one round at a time, interleaved with clnrm's own.
# Needs clnrm/postgres:15 (scripts/example-images.sh) and python3; testcontainers,
# pytest and pytest-xdist come from PyPI into a virtualenv under target/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
rounds="${1:-3}"
shift || true
sides=("$@")
[ ${#sides[@]} -gt 0 ] || sides=(per-test template compose)
venv="${CLNRM_BENCH_VENV:-$root/target/bench-venv}"
if [ ! -x "$venv/bin/pytest" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "testcontainers==4.*" "pytest==9.*" "pytest-xdist==3.*"
fi
export ORDERS_APP_IMAGE="${ORDERS_APP_IMAGE:-clnrm/orders-app:bench}"
docker image inspect clnrm/postgres:15 >/dev/null
docker image inspect "$ORDERS_APP_IMAGE" >/dev/null 2>&1 ||
    docker build -q -t "$ORDERS_APP_IMAGE" "$root/images/orders-app" >/dev/null

now() { date +%s%N; }
pytest_side() {
    (cd "$here" && "$venv/bin/pytest" -q -p no:cacheprovider -n 2 "$1" >/tmp/clnrm-peers.log 2>&1) ||
        { cat /tmp/clnrm-peers.log; exit 1; }
}
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
compose_side() {
    local p=clnrm-envbench
    (cd "$here" && "${compose[@]}" -p $p -f compose.yaml up -d app >/tmp/clnrm-peers.log 2>&1) ||
        { cat /tmp/clnrm-peers.log; exit 1; }
    local app db port
    app="$(cd "$here" && "${compose[@]}" -p $p -f compose.yaml ps -q app)"
    db="$(cd "$here" && "${compose[@]}" -p $p -f compose.yaml ps -q db)"
    # Compose v1 has no `up --wait`: the app's health check, polled as --wait does.
    until [ "$(docker inspect -f '{{.State.Health.Status}}' "$app")" = healthy ]; do sleep 0.05; done
    port="$(docker port "$app" 8080/tcp | head -1 | sed 's/.*://')"
    SHARED_URL="http://127.0.0.1:$port" SHARED_DB="$db" pytest_side test_shared.py
    (cd "$here" && "${compose[@]}" -p $p -f compose.yaml down -v >/dev/null 2>&1)
}
declare -A took
for ((r = 1; r <= rounds; r++)); do
    for side in "${sides[@]}"; do
        start="$(now)"
        case "$side" in
            per-test) pytest_side test_per_test.py ;;
            template) pytest_side test_template.py ;;
            compose) compose_side ;;
        esac
        ms=$((($(now) - start) / 1000000))
        took[$side]+="$ms "
        echo "round $r: $side ${ms} ms"
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for side in "${sides[@]}"; do
    echo "$side: median $(echo "${took[$side]}" | median) ms over $rounds rounds (${took[$side]% })"
done
