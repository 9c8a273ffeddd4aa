#!/usr/bin/env bash
# Rollouts per minute with N controllers at once, SQLite (one machine, one state
# directory) and PostgreSQL (a state directory per controller, the tests' own server on
# loopback) side by side in one run, against real local agents; each controller deploys
# its own app over and over. Figures only; nothing is asserted about speed.
# BATON_BENCH_SECONDS (default 30 per configuration), BATON_BENCH_CONTROLLERS (default "1 4")
# and BATON_BENCH_HOSTS (default 4) tune it.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
export PATH="$(scripts/test-python):$PATH"
BATON_BENCH_TEAM=1 swift test --skip-build --no-parallel --filter TeamRolloutBench 2>&1 \
    | grep -E '^(store|sqlite|postgres)|passed|failed'
