#!/usr/bin/env bash
# Runs each fuzz target for a fixed time and prints how many inputs it tried and what
# it found. Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain is
# used with RUSTC_BOOTSTRAP=1 for the sanitizer flags cargo-fuzz passes.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(toml_reader template otlp_protobuf otlp_json otlp_gzip)
command -v cargo-fuzz >/dev/null || { echo "fuzz: install cargo-fuzz first: cargo install cargo-fuzz" >&2; exit 2; }
export RUSTC_BOOTSTRAP=1

seed() { # target, then files or directories to start its corpus from
    local t=$1; shift
    mkdir -p "corpus/$t"
    cp -n "seeds/$t"/* "corpus/$t/" 2>/dev/null || true
    for f in "$@"; do cp -n "$f" "corpus/$t/" 2>/dev/null || true; done
}
seed toml_reader ../examples/*.clnrm.toml ../tests/broken/*.clnrm.toml
seed template ../examples/*.tera ../examples/partials/* ../tests/broken/*.tera
seed otlp_protobuf
seed otlp_json
seed otlp_gzip

cargo fuzz build -O >/dev/null
status=0
printf '%-14s %12s %8s %s\n' target executions exec/s findings
for t in "${targets[@]}"; do
    log=$(mktemp)
    if ! cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
        -max_len=65536 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        status=1
    fi
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
    found=$(ls "artifacts/$t" 2>/dev/null | grep -cE '^(crash|oom|timeout|leak)-' || true)
    printf '%-14s %12s %8s %s\n' "$t" "$runs" "$rate" "$found"
    if [[ $found -gt 0 ]]; then
        grep -E 'ERROR|panicked|SUMMARY' "$log" | head -5
        status=1
    fi
    rm -f "$log"
done
exit $status
