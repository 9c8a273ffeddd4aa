#!/usr/bin/env bash
# The controller against fleets larger than one machine can run real agents for.
#
#   bench/scale.sh                 # N = 200, 1000, 2000
#   N_LIST="200 500" bench/scale.sh
#
# For each N, starts PROCS `baton-loadsim` processes (default 4) that together simulate N
# agents on 127.0.0.1: each host its own port and its own certificate from the fleet CA
# (baton://agent/<host-id>), mutual TLS 1.3, the real agent API and wire types, envelopes
# checked by the real ManifestVerifier, signed receipts; each deployment phase lasts
# LATENCY (default 50ms..400ms). Uploads are drained, not stored. Then, with the real
# `baton` (keys, CA, controller certificate and trust policy as bench/fleet.sh makes them):
#   * r0: `baton release create` + `baton manifest sign` + `baton rollout`: every host gets
#     a first release (upload included);
#   * r1: the same, with `baton plan` timed before the rollout;
#   * bad: a release whose health check fails on FAIL_RATE of the hosts (default 0.05), rolled
#     out with `--canary 1 --batch 10% --failure-threshold 2%`: it must halt, and revert
#     the hosts it switched (the strategy's autoRevert).
# and prints, for each command: wall time, hosts by final phase, and the controller's peak
# RSS (VmHWM) and most threads at once, sampled from /proc/PID/status every 10 ms.
# Last (REFUSE_N hosts, default the first N of N_LIST; REFUSE_N=0 skips it), a fleet where
# REFUSE_RATE of the hosts (default 0.02) refuse connections: `baton plan` and a rollout
# with `--failure-threshold 5%`, which must not halt and must deploy every host that answers
# (it exits 3: the unreachable hosts need attention).
#
# Environment: N_LIST; PROCS; LATENCY; FAIL_RATE; REFUSE_RATE; REFUSE_N; ART_KB (artifact
# size, default 256 KiB: this bench measures the controller's per-host cost, bench/fleet.sh
# its transfers); SCRATCH (default .build-release); BIN=DIR uses the baton and
# baton-loadsim already in DIR instead of building; KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
N_LIST="${N_LIST:-200 1000 2000}"
PROCS="${PROCS:-4}"
LATENCY="${LATENCY:-50ms..400ms}"
FAIL_RATE="${FAIL_RATE:-0.05}"
REFUSE_RATE="${REFUSE_RATE:-0.02}"
REFUSE_N="${REFUSE_N:-${N_LIST%% *}}"
ART_KB="${ART_KB:-256}"
SCRATCH="${SCRATCH:-.build-release}"
for n in $N_LIST $REFUSE_N; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "error: N_LIST and REFUSE_N take numbers of hosts, not '$n'" >&2; exit 2; }
done

if [ -z "${BIN:-}" ]; then
    swift build -c release --scratch-path "$SCRATCH" --product baton >/dev/null
    swift build -c release --scratch-path "$SCRATCH" --product baton-loadsim >/dev/null
    BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"
fi
BIN="$(cd "$BIN" && pwd)"
BATON="$BIN/baton"; LOADSIM="$BIN/baton-loadsim"
PY="$(python3 -c 'import sys; print(sys.executable)')"   # not through a pyenv shim
# 2,000 hosts: a listener each, and the controller's connections to them.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work="$(mktemp -d "${TMPDIR:-/tmp}/baton-scale-bench.XXXXXX")"
pids=()
stop_sims() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_sims
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"

# Runs a command (argv[3:]); writes "<wall ms> <exit status> <peak RSS KiB> <most threads>"
# to argv[1] and its stdout to argv[2], sampling /proc/PID/status every 10 ms.
measure_py='
import subprocess, sys, time
start = time.monotonic()
with open(sys.argv[2], "w") as out:
    child = subprocess.Popen(sys.argv[3:], stdout=out)
    hwm = threads = 0
    while child.poll() is None:
        try:
            for line in open(f"/proc/{child.pid}/status"):
                if line.startswith("VmHWM:"): hwm = max(hwm, int(line.split()[1]))
                elif line.startswith("Threads:"): threads = max(threads, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
wall = (time.monotonic() - start) * 1000
open(sys.argv[1], "w").write(f"{wall:.0f} {child.returncode} {hwm} {threads}\n")
'
# Hosts by final phase, from the --json lines of a rollout (its summary) or a plan.
count_py='
import json, sys, collections
kind = sys.argv[2]
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
if kind == "plan":
    c = collections.Counter(r.get("action", "?") for r in rows if "host" in r)
    print(", ".join(f"{v} {k}" for k, v in sorted(c.items())) or "no hosts")
else:
    s = [r for r in rows if r.get("type") == "summary"]
    if not s: print("no summary"); sys.exit()
    s = s[-1]
    c = collections.Counter(h["phase"] for h in s["hosts"])
    halt = "; halted: " + str(s.get("haltReason")) if s.get("halted") else ""
    print("outcome " + s["outcome"] + ": " + ", ".join(f"{v} {k}" for k, v in sorted(c.items())) + halt)
'

# One timed controller command: prints its figures in one line.
timed() {   # timed LABEL OUT KIND baton-args...
    local label="$1" out="$2" kind="$3"; shift 3
    "$PY" -c "$measure_py" "$out.m" "$out" "$BATON" "$@" 2> "$out.err" || true
    read -r wall status hwm threads < "$out.m"
    printf '  %-34s %7s ms  exit %s  peak RSS %4d MB  threads %3d  %s\n' \
        "$label" "$wall" "$status" $((hwm / 1024)) "$threads" "$("$PY" -c "$count_py" "$out" "$kind")"
    if [ "$status" != 0 ] && [ "$kind" = rollout ] && ! grep -q '"type":"summary"' "$out"; then
        echo "    (no summary; last lines of its stderr:)"; tail -3 "$out.err" | sed 's/^/    /'
    fi
}

setup() {   # setup DIR: keys, CA, controller certificate, trust policy, app, artifact
    mkdir -p "$1" && cd "$1"
    mkdir -p keys pki apps src
    "$BATON" keys generate ci --dir keys >/dev/null
    "$BATON" pki init pki/ca >/dev/null
    "$BATON" pki issue controller ci --ca pki/ca --out pki >/dev/null
    cat > trust-policy.yaml <<'EOF'
keys:
  ci: keys/ci.pub
environments:
  staging: {threshold: 1, keys: [ci], rollbackThreshold: 1}
EOF
    cat > apps/web.yaml <<'EOF'
app: web
owner: team-web
environments: [staging]
keep: 3
EOF
    cat > baton.yaml <<'EOF'
fleet: fleet.yaml
apps: apps
trustPolicy: trust-policy.yaml
stateDir: state
tls: {certificate: pki/ci.pem, key: pki/ci.key, ca: pki/ca/ca.pem}
signingKey: keys/ci.key
EOF
    head -c $((ART_KB * 1024)) /dev/urandom > src/blob
}

start_sims() {   # start_sims N EXTRA-FLAGS...: PROCS processes, then fleet.yaml from their addresses
    local n="$1"; shift
    local per=$(( (n + PROCS - 1) / PROCS )) first=1 p=0 count
    rm -f addresses-*
    while [ "$first" -le "$n" ]; do
        count=$(( n - first + 1 < per ? n - first + 1 : per ))
        "$LOADSIM" --ca pki/ca --trust trust-policy.yaml --first "$first" --count "$count" \
            --addresses "addresses-$p" --latency "$LATENCY" "$@" 2> "loadsim-$p.log" &
        pids+=($!)
        first=$((first + count)); p=$((p + 1))
    done
    local deadline=$((SECONDS + 300)) i
    for i in $(seq 0 $((p - 1))); do
        until [ -f "addresses-$i" ]; do
            if [ $SECONDS -ge $deadline ] || ! kill -0 "${pids[$i]}" 2>/dev/null; then
                echo "error: baton-loadsim $i did not start:" >&2; cat "loadsim-$i.log" >&2; exit 1
            fi
            sleep 0.1
        done
    done
    { echo "hosts:"; cat addresses-* | awk '{ printf "  - {id: %s, address: \"%s\", environment: staging}\n", $1, $2 }'; } > fleet.yaml
    cat loadsim-*.log | sed 's/^/  /'
}

release() {   # release NAME: a new artifact, registered and signed; prints the envelope's path
    echo "$1" > src/VERSION
    tar -czf "art-$1.tar.gz" -C src .
    "$BATON" release create web --artifact "art-$1.tar.gz" --release "$1" --environment staging -o "$1.manifest.json" >/dev/null
    "$BATON" manifest sign "$1.manifest.json" --key keys/ci.key >/dev/null
    echo "$1.manifest.envelope.json"
}

echo "== baton-loadsim: $PROCS processes, phases $LATENCY, artifact $ART_KB KiB, $(nproc) cores"
for n in $N_LIST; do
    setup "$work/n$n"
    t0=$(date +%s%N)
    start_sims "$n" --fail-rate "$FAIL_RATE" --fail-release bad
    echo "N = $n hosts (simulators up in $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
    timed "rollout r0 (first release)" r0.out rollout rollout "$(release r0)" --json
    env=$(release r1)
    timed "plan r1" plan.out plan plan "$env" --json
    timed "rollout r1" r1.out rollout rollout "$env" --json
    timed "rollout bad (fails on $FAIL_RATE)" bad.out rollout \
        rollout "$(release bad)" --canary 1 --batch 10% --failure-threshold 2% --json
    stop_sims
    cd "$work"; [ "${KEEP:-0}" = 1 ] || rm -rf "$work/n$n"
done

if [ "$REFUSE_N" -gt 0 ]; then
    setup "$work/refuse"
    start_sims "$REFUSE_N" --refuse-rate "$REFUSE_RATE"
    echo "N = $REFUSE_N hosts, $REFUSE_RATE of them refusing connections"
    env=$(release r0)
    timed "plan r0" plan.out plan plan "$env" --json
    timed "rollout r0 --failure-threshold 5%" r0.out rollout rollout "$env" --failure-threshold 5% --json
    stop_sims
fi
