#!/usr/bin/env bash
# The long kill -9 sweep of CrashTests: TRIALS deployments (default 200), each killed
# with SIGKILL at a random moment or in a chosen phase (every fourth also kills the
# reconciliation that follows), then reconciled and checked: a complete `current`, no
# staging or trash, a truthful record, nothing on disk unaccounted for, and a next deployment
# that succeeds. The default test suite runs 18 such trials (every phase, and the one read
# of `batond apply` before acceptance, aimed at once);
# this is the sweep for the odd moments between phases.
#
#   bench/crash-sweep.sh            # 200 trials
#   TRIALS=500 bench/crash-sweep.sh
#
# Prints the trials run, the hosts found consistent after their restart, where the
# kills landed, and the time taken. Exits non-zero if any check failed. Uses the debug
# build of the tests (`swift build --build-tests`), like scripts/test.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS="${TRIALS:-200}"
[[ "$TRIALS" =~ ^[1-9][0-9]*$ ]] || { echo "usage: TRIALS=N bench/crash-sweep.sh  (N: number of trials)" >&2; exit 2; }

build_log="$(mktemp /tmp/baton-crash-sweep-build.XXXXXX)"
swift build --build-tests >"$build_log" 2>&1 || { cat "$build_log" >&2; rm -f "$build_log"; exit 1; }
rm -f "$build_log"

log="$(mktemp /tmp/baton-crash-sweep.XXXXXX)"
trap 'rm -f "$log"' EXIT
t0=$(date +%s)
status=0
BATON_CRASH_TRIALS="$TRIALS" swift test --skip-build --no-parallel --filter 'CrashTests' >"$log" 2>&1 || status=$?
t1=$(date +%s)

landed=$(grep -o 'kill -9 landed in: .*' "$log" | tail -1 || true)
figures=$(grep -o 'crash sweep: .*' "$log" | tail -1 || true)
echo "${figures:-crash sweep: no figures (the test ended early)}"
echo "${landed:-kill -9 landed in: (not reported)}"
echo "time: $((t1 - t0)) s ($(( (t1 - t0) * 1000 / TRIALS )) ms per trial)"
if [ "$status" -ne 0 ]; then
    echo "FAILED: the test's own report follows" >&2
    grep -E 'recorded an issue|failed|error' "$log" | head -40 >&2
fi
exit "$status"
