#!/usr/bin/env bash
# One host's deploy time against the floor of doing the same work by hand.
#
# Makes a release artifact of about 2,000 files and 16 MB (tar.gz), then, in one run,
# times `batond apply` of it (release build; median of RUNS runs, each a fresh data
# directory) against the floor: `sha256sum` + `tar xzf` into a fresh directory +
# `sync -f`, on the same file. Prints both medians, their ratio, and the peak RSS of
# `batond apply`. Targets: ratio <= 1.0, peak RSS < 40 MB. STRACE=1 also prints the
# fsync, syncfs and rename calls and the bytes written of one more (untimed) deployment.
#
# BEFORE_BIN=DIR also times the `batond` in DIR (another build, e.g. of main) in the same
# runs, interleaved, so both ratios come from one run on the same machine. AGENTS=N runs
# N agents at once on the one disk (each its own data directory), against N floors at
# once: what a host shared by many agents, or a fleet bench on one machine, sees.
# RELEASE_SYNC=filesystem configures the agents with `releaseSync: filesystem` (one
# syncfs per release instead of an fsync per file; docs/durability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-7}"
AGENTS="${AGENTS:-1}"
BEFORE_BIN="${BEFORE_BIN:-}"
sync_line=""
[ -z "${RELEASE_SYNC:-}" ] || sync_line="releaseSync: $RELEASE_SYNC\n"
[ -z "$BEFORE_BIN" ] || BEFORE_BIN="$(cd "$BEFORE_BIN" && pwd)"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
SCRATCH="${SCRATCH:-.build}"   # e.g. SCRATCH=.build-release to keep it apart from debug builds
if [ -z "${BIN:-}" ]; then     # BIN=DIR: time the release build already in DIR instead
    swift build -c release --scratch-path "$SCRATCH" --product batond >/dev/null
    swift build -c release --scratch-path "$SCRATCH" --product baton >/dev/null
    BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"
fi
BIN="$(cd "$BIN" && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/baton-bench.XXXXXX")"   # TMPDIR=DIR: on the file system under test
trap 'rm -rf "$work"' EXIT
cd "$work"

# ~2,000 files, ~16 MB compressed (random bytes: compiled code and assets compress little).
python3 - <<'PY'
import os, random
random.seed(7)
root = "src"
for i in range(2000):
    d = os.path.join(root, f"lib/m{i // 100:02d}")
    os.makedirs(d, exist_ok=True)
    size = random.randint(4_000, 12_400)
    with open(os.path.join(d, f"f{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(size))
with open(os.path.join(root, "VERSION"), "w") as f:
    f.write("bench\n")
PY
tar -czf app.tar.gz -C src .
SIZE=$(stat -c %s app.tar.gz); SHA=$(sha256sum app.tar.gz | cut -d' ' -f1)
FILES=$(find src -type f | wc -l)

"$BIN/baton" keys generate ci --dir . >/dev/null
printf 'keys:\n  ci: ci.pub\nenvironments:\n  bench: {threshold: 1, keys: [ci]}\n' > trust.yaml
now=$(date -u +%Y-%m-%dT%H:%M:%SZ); later=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
cat > m.json <<JSON
{"app":"app","release":"r1","serial":1,"environment":"bench","issuedAt":"$now","expiresAt":"$later",
 "artifact":{"sha256":"$SHA","size":$SIZE,"format":"tar.gz"}}
JSON
"$BIN/baton" manifest sign m.json --key ci.key >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {m=int((NR+1)/2); print a[m]}'; }
now_ns() { date +%s%N; }
# The machine's busy CPU time so far (all processes and the kernel's own threads, every
# core), in ms: what a contender costs beyond its wall time, writeback included.
busy_ms() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print int(($2+$3+$4+$7+$8+$9) * 1000 / hz)}' /proc/stat; }

# N applies of `$1/batond` at once, each into a fresh data directory; prints the wall
# time in ms and leaves the largest peak RSS (KiB) in rss.max.
apply_all() {
    local bin="$1" k t0 t1 pids=() extra=""
    [ "$bin" = "$BIN" ] && extra="$sync_line"   # BEFORE_BIN may not know the key
    for k in $(seq 1 "$AGENTS"); do
        rm -rf "data.$k"
        printf "hostId: bench-%s\nenvironment: bench\ndataDir: data.%s\ntrust: trust.yaml\n$extra" "$k" "$k" > "batond.$k.yaml"
    done
    sync
    b0=$(busy_ms); t0=$(now_ns)
    for k in $(seq 1 "$AGENTS"); do
        /usr/bin/time -f '%M' -o "rss.$k" "$bin/batond" apply --config "batond.$k.yaml" --envelope m.envelope.json --artifact app.tar.gz >/dev/null &
        pids+=($!)
    done
    for k in "${pids[@]}"; do wait "$k"; done
    t1=$(now_ns); echo $(( $(busy_ms) - b0 )) > busy.last
    cat rss.[0-9]* | sort -n | tail -1 > rss.max
    rm -f rss.[0-9]*
    echo $(( (t1 - t0) / 1000000 ))
}

# The floor, N times at once.
floor_all() {
    local k t0 t1 pids=()
    for k in $(seq 1 "$AGENTS"); do rm -rf "floor.$k"; mkdir "floor.$k"; done
    sync
    b0=$(busy_ms); t0=$(now_ns)
    for k in $(seq 1 "$AGENTS"); do
        (sha256sum app.tar.gz >/dev/null && tar -xzf app.tar.gz -C "floor.$k" && sync -f "floor.$k") &
        pids+=($!)
    done
    for k in "${pids[@]}"; do wait "$k"; done
    t1=$(now_ns); echo $(( $(busy_ms) - b0 )) > busy.last
    echo $(( (t1 - t0) / 1000000 ))
}

agent_times=(); floor_times=(); peaks=(); before_times=(); before_peaks=()
agent_busy=(); floor_busy=(); before_busy=()
for i in $(seq 1 "$RUNS"); do
    # Interleave them so drift on a noisy machine hits all alike.
    agent_times+=($(apply_all "$BIN")); peaks+=($(cat rss.max)); agent_busy+=($(cat busy.last))
    floor_times+=($(floor_all)); floor_busy+=($(cat busy.last))
    if [ -n "$BEFORE_BIN" ]; then
        before_times+=($(apply_all "$BEFORE_BIN")); before_peaks+=($(cat rss.max)); before_busy+=($(cat busy.last))
    fi
    rm -rf data.* floor.*
done

A=$(printf '%s\n' "${agent_times[@]}" | median)
F=$(printf '%s\n' "${floor_times[@]}" | median)
AC=$(printf '%s\n' "${agent_busy[@]}" | median)
FC=$(printf '%s\n' "${floor_busy[@]}" | median)
P=$(printf '%s\n' "${peaks[@]}" | sort -n | tail -1)
echo "artifact:           $FILES files, $((SIZE / 1024)) KiB tar.gz"
echo "runs:               $RUNS (medians), $AGENTS agent(s) at once on one disk"
echo "batond apply:       ${A} ms   (all: ${agent_times[*]})"
echo "floor (sha256sum + tar xzf + sync -f): ${F} ms   (all: ${floor_times[*]})"
awk -v a="$A" -v f="$F" 'BEGIN { printf "ratio:              %.2f  (target <= 1.00)\n", a / f }'
echo "machine busy CPU:   apply ${AC} ms, floor ${FC} ms (medians; all: ${agent_busy[*]} / ${floor_busy[*]})"
awk -v a="$AC" -v f="$FC" 'BEGIN { printf "ratio by CPU:       %.2f\n", a / f }'
echo "peak RSS of apply:  $((P / 1024)) MB  (${P} KiB; target < 40 MB)"
if [ -n "$BEFORE_BIN" ]; then
    B=$(printf '%s\n' "${before_times[@]}" | median)
    BP=$(printf '%s\n' "${before_peaks[@]}" | sort -n | tail -1)
    echo "before: apply:      ${B} ms   (all: ${before_times[*]}; $BEFORE_BIN)"
    awk -v a="$B" -v f="$F" 'BEGIN { printf "before: ratio:      %.2f\n", a / f }'
    BC=$(printf '%s\n' "${before_busy[@]}" | median)
    echo "before: busy CPU:   ${BC} ms (all: ${before_busy[*]})"
    awk -v a="$BC" -v f="$FC" 'BEGIN { printf "before: ratio by CPU: %.2f\n", a / f }'
    echo "before: peak RSS:   $((BP / 1024)) MB  (${BP} KiB)"
fi

# STRACE=1: the durable writes of one more deployment, untimed (docs/durability.md's
# table): fsync, fdatasync, syncfs and rename calls, and the bytes written to files.
strace_counts() {
    local bin="$1"
    printf "hostId: bench-1\nenvironment: bench\ndataDir: data\ntrust: trust.yaml\n$sync_line" > batond.yaml
    rm -rf data; sync
    strace -f -c -e trace=fsync,fdatasync,syncfs,rename,renameat,renameat2 -o counts.txt "$bin/batond" apply \
        --config batond.yaml --envelope m.envelope.json --artifact app.tar.gz >/dev/null
    rm -rf data; sync
    strace -f -e trace=write,pwrite64,writev,read,pread64 -o writes.txt "$bin/batond" apply \
        --config batond.yaml --envelope m.envelope.json --artifact app.tar.gz >/dev/null
    rm -rf data
    python3 - counts.txt writes.txt "$SIZE" <<'PY'
import re, sys
counts = {}
for line in open(sys.argv[1]):
    fields = line.split()
    if len(fields) >= 5 and fields[-1].isidentifier() and fields[3].isdigit():
        counts[fields[-1]] = int(fields[3])
calls = written = read = 0
for line in open(sys.argv[2]):
    m = re.search(r'(write|pwrite64|writev|read|pread64)\((\d+),', line)
    r = re.search(r'= (\d+)$', line.strip())
    if m and r and int(m.group(2)) > 2:   # not stdin, stdout or stderr
        if m.group(1).startswith(("read", "pread")):
            read += int(r.group(1))
        else:
            calls += 1
            written += int(r.group(1))
size = int(sys.argv[3])
print("  per deployment:   " + ", ".join(f"{counts.get(k, 0)} {k}" for k in ["fsync", "fdatasync", "syncfs", "rename"]))
print(f"  written to files: {written / 1048576:.1f} MiB in {calls} calls ({written / size:.2f}x the artifact)")
print(f"  read from files:  {read / 1048576:.1f} MiB ({read / size:.2f}x the artifact)")
PY
}

# STRACE=1: the durable writes of one more deployment, untimed (docs/durability.md's
# table): fsync, fdatasync, syncfs and rename calls, and the bytes written to and read
# from files (the artifact's reads included).
if [ "${STRACE:-0}" = 1 ]; then
    command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace; }
    echo "strace, this build:"
    strace_counts "$BIN"
    if [ -n "$BEFORE_BIN" ]; then
        echo "strace, before ($BEFORE_BIN):"
        strace_counts "$BEFORE_BIN"
    fi
fi
