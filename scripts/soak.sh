#!/usr/bin/env bash
# The runs service's soak (issue 32): the multi-host fault test of
# crates/clnrm-cli/tests/hosts.rs, longer: RUNS runs (default 1000) submitted while a
# fault happens every second or two, all seven kinds in turn in a seeded order. Prints
# the test's counts (runs, faults by kind, outcomes, lost, duplicated). Needs root,
# iproute2 and PostgreSQL's binaries (scripts/setup.sh); about 2.5 minutes per 1000 runs
# on 2 cores.
#   scripts/soak.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CLNRM_HOSTS_RUNS="${1:-1000}"
exec cargo nextest run -p clnrm-cli --test hosts --no-capture \
    -E 'test(runs_flow_through_partitions_restarts_and_kills_and_each_ends_once)'
