#!/usr/bin/env bash
# One host's deploy time against the floor of doing the same work by hand.
#
# Makes a release artifact of about 2,000 files and 16 MB (tar.gz), then, in one run,
# times `batond apply` of it (release build; median of RUNS runs, each a fresh data
# directory) against the floor: `sha256sum` + `tar xzf` into a fresh directory +
# `sync -f`, on the same file. Prints both medians, their ratio, and the peak RSS of
# `batond apply`. Targets: ratio <= 1.2, peak RSS < 40 MB. STRACE=1 also prints the
# fsync, syncfs and rename calls and the bytes written of one more (untimed) deployment.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-7}"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
SCRATCH="${SCRATCH:-.build}"   # e.g. SCRATCH=.build-release to keep it apart from debug builds
swift build -c release --scratch-path "$SCRATCH" --product batond >/dev/null
swift build -c release --scratch-path "$SCRATCH" --product baton >/dev/null
BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"

work="$(mktemp -d /tmp/baton-bench.XXXXXX)"
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

agent_times=(); floor_times=(); peaks=()
for i in $(seq 1 "$RUNS"); do
    # Interleave the two so drift on a noisy machine hits both alike.
    rm -rf data floor; sync
    printf 'hostId: bench-1\nenvironment: bench\ndataDir: data\ntrust: trust.yaml\n' > batond.yaml
    t0=$(now_ns)
    /usr/bin/time -f '%M' -o rss.txt "$BIN/batond" apply --config batond.yaml --envelope m.envelope.json --artifact app.tar.gz >/dev/null
    t1=$(now_ns)
    agent_times+=($(( (t1 - t0) / 1000000 )))
    peaks+=($(cat rss.txt))

    rm -rf floor; mkdir floor; sync
    t0=$(now_ns)
    sha256sum app.tar.gz >/dev/null
    tar -xzf app.tar.gz -C floor
    sync -f floor
    t1=$(now_ns)
    floor_times+=($(( (t1 - t0) / 1000000 )))
done

A=$(printf '%s\n' "${agent_times[@]}" | median)
F=$(printf '%s\n' "${floor_times[@]}" | median)
P=$(printf '%s\n' "${peaks[@]}" | sort -n | tail -1)
echo "artifact:           $FILES files, $((SIZE / 1024)) KiB tar.gz"
echo "runs:               $RUNS (medians)"
echo "batond apply:       ${A} ms   (all: ${agent_times[*]})"
echo "floor (sha256sum + tar xzf + sync -f): ${F} ms   (all: ${floor_times[*]})"
awk -v a="$A" -v f="$F" 'BEGIN { printf "ratio:              %.2f  (target <= 1.20)\n", a / f }'
echo "peak RSS of apply:  $((P / 1024)) MB  (${P} KiB; target < 40 MB)"

# STRACE=1: the durable writes of one more deployment, untimed (docs/durability.md's
# table): fsync, fdatasync, syncfs and rename calls, and the bytes written to files.
if [ "${STRACE:-0}" = 1 ]; then
    command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace; }
    rm -rf data; sync
    strace -f -c -e trace=fsync,fdatasync,syncfs,rename,renameat,renameat2 -o counts.txt "$BIN/batond" apply \
        --config batond.yaml --envelope m.envelope.json --artifact app.tar.gz >/dev/null
    rm -rf data; sync
    strace -f -e trace=write,pwrite64,writev -o writes.txt "$BIN/batond" apply \
        --config batond.yaml --envelope m.envelope.json --artifact app.tar.gz >/dev/null
    python3 - counts.txt writes.txt "$SIZE" <<'PY'
import re, sys
counts = {}
for line in open(sys.argv[1]):
    fields = line.split()
    if len(fields) >= 5 and fields[-1].isidentifier() and fields[3].isdigit():
        counts[fields[-1]] = int(fields[3])
calls = written = 0
for line in open(sys.argv[2]):
    m = re.search(r'(write|pwrite64|writev)\((\d+),', line)
    r = re.search(r'= (\d+)$', line.strip())
    if m and r and int(m.group(2)) > 2:   # not stdout or stderr
        calls += 1
        written += int(r.group(1))
size = int(sys.argv[3])
print("per deployment:     " + ", ".join(f"{counts.get(k, 0)} {k}" for k in ["fsync", "fdatasync", "syncfs", "rename"]))
print(f"written to files:   {written / 1048576:.1f} MiB in {calls} calls ({written / size:.2f}x the artifact)")
PY
fi
