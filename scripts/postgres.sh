#!/usr/bin/env bash
# A PostgreSQL server for the runs service's tests (SPEC §9), from Debian's
# `postgresql` package (installed when missing): one cluster in /tmp/clnrm-pg on
# 127.0.0.1:55432, trust authentication for the `postgres` user, started once and
# reused by every test (each test makes a database of its own). Prints its URL.
#   scripts/postgres.sh         start it if it does not answer
#   scripts/postgres.sh stop    stop it
set -euo pipefail
port=${CLNRM_TEST_POSTGRES_PORT:-55432}
data=/tmp/clnrm-pg
url="postgres://postgres@127.0.0.1:$port/postgres"

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ "${1:-}" == "stop" ]]; then
    [[ -n "$bin" && -d "$data" ]] && runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast stop || true
    exit 0
fi
if [[ -n "$bin" ]] && "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    echo "$url"
    exit 0
fi
if [[ -z "$bin" ]]; then
    echo "setup: installing postgresql" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
# The server refuses to run as root: the cluster belongs to the `postgres` user.
if [[ ! -s "$data/PG_VERSION" ]]; then
    rm -rf "$data" && mkdir -p "$data" && chown postgres: "$data"
    runuser -u postgres -- "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
fi
# Tests only: no fsync, sockets in /tmp, loopback only; enough connections for
# parallel tests (each process opens a small pool).
runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
    start >/dev/null
echo "setup: PostgreSQL on 127.0.0.1:$port (data $data)" >&2
echo "$url"
