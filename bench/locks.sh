#!/usr/bin/env bash
# Lock latency and contended throughput, SQLite and PostgreSQL side by side in one run
# (the tests' own PostgreSQL server on loopback). Figures only; nothing is asserted about
# speed. BATON_BENCH_ROUNDS (default 300) and BATON_BENCH_CONTROLLERS (default 4) tune it.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
BATON_BENCH_LOCKS=1 swift test --skip-build --no-parallel --filter LockLatencyBench 2>&1 \
    | grep -E '^(store|sqlite|postgres)|passed|failed'
