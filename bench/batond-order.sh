#!/usr/bin/env bash
# Writes agent/batond.order: the functions a serving batond runs, hottest first, for the
# linker to place side by side (gold's --section-ordering-file; docs/footprint.md, "Code
# laid out by use").
#
# Why: an idle agent's RSS is mostly pages of its own binary, and the kernel maps up to 16
# neighbouring pages around every page fault. Code that serving runs is spread over the
# whole 23 MB text in link order, so each function a call touches costs up to 64 KiB of
# RSS. Placed together, the same functions cost their own size.
#
# How: builds batond (release, static stdlib, every function in a section of its own),
# then
#   1. starts it STARTS times (20), and samples it with perf from the moment its API
#      listens (start-up itself is given back at that moment, so it is left out): API
#      calls (health, apps, HEAD of an artifact), a metrics scrape, on the first two starts
#      an upload and a deployment, an idle trim and a call after it. Every function on a
#      sampled stack counts;
#   2. as root, when the read-ahead of the binary's disk can be set: once more with that
#      read-ahead at 0 and the binary out of the page cache, so that the kernel maps only the
#      pages really touched; the functions on those pages (page-exact, not sampled) follow:
#      those of an agent idle again after a trim and a call, then the calls', then the
#      deployment's, each in address order. The read-ahead is set back on exit. Run it
#      twice: the second run's pages are those of a build already laid out by the first,
#      so fewer cold neighbours share them.
# Only names the build has sections for are kept (most of the static Swift stdlib and
# Foundation have none and stay where they are).
#
#   bench/batond-order.sh                 # writes agent/batond.order
#   STARTS=40 bench/batond-order.sh       # more samples
#   PAGES=0 bench/batond-order.sh         # sampling only (no root, no read-ahead change)
#   BATON=path/to/baton bench/batond-order.sh  # any baton build for pki/keys/sign
#
# Needs perf (Debian: linux-perf), curl, python3, readelf. The order only moves code: a
# stale order (functions renamed since) costs RSS, never correctness; regenerate it after
# large changes to what serving runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
SCRATCH="${SCRATCH:-.build-order}"
STARTS="${STARTS:-20}"
PAGES="${PAGES:-1}"
OUT="${OUT:-agent/batond.order}"
for tool in perf curl python3 readelf; do
    command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 2; }
done
# The order file must exist for the build that uses it; an empty one orders nothing.
[ -f "$OUT" ] || : > "$OUT"
# The shipping build's flags (agent/INSTALL.md), with the current order: the pages measured
# below are then those of a binary laid out by it.
flags=(-Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections
    -Xlinker "--section-ordering-file=$root/$OUT" -Xlinker -z -Xlinker now)
build=(swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" "${flags[@]}")
quietly() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }; }
BIN="$("${build[@]}" --show-bin-path 2>/dev/null)"
# The build does not see the order file change: link again.
rm -f "$BIN/batond"
quietly "${build[@]}" --product batond
BIN="$(cd "$BIN" && pwd)"
# The controller only issues certificates and signs; any build of it does (BATON=...).
if [ -z "${BATON:-}" ]; then
    quietly swift build -c release --static-swift-stdlib --scratch-path .build-release --product baton
    BATON="$(cd "$(swift build -c release --static-swift-stdlib --scratch-path .build-release --show-bin-path 2>/dev/null)" && pwd)/baton"
fi
BATON="$(cd "$(dirname "$BATON")" && pwd)/$(basename "$BATON")"

work="$(mktemp -d /tmp/baton-order.XXXXXX)"
pid=""; ra_file=""; ra_saved=""
cleanup() {
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    [ -z "$ra_file" ] || echo "$ra_saved" > "$ra_file" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"
cp "$BIN/batond" batond   # unstripped: perf and the page pass need its symbols

"$BATON" pki init ca >/dev/null
"$BATON" pki issue agent order-1 --ip 127.0.0.1 --ca ca --out agent >/dev/null
"$BATON" pki issue controller ops --ca ca --out ctl >/dev/null
"$BATON" keys generate ci >/dev/null
printf 'keys:\n  ci: ci.pub\nenvironments:\n  bench: {threshold: 1, keys: [ci]}\n' > trust.yaml
cat > batond.yaml <<'YAML'
hostId: order-1
environment: bench
dataDir: data
listen: 127.0.0.1:0
metricsListen: 127.0.0.1:0
tls:
  certificate: agent/order-1.pem
  privateKey: agent/order-1.key
  ca: ca/ca.pem
trust: trust.yaml
YAML
mkdir src && head -c $((2 * 1024 * 1024)) /dev/urandom > src/blob && echo order > src/VERSION
tar -cf - -C src . | gzip -1 > app.tar.gz
sha=$(sha256sum app.tar.gz | cut -d' ' -f1); size=$(stat -c %s app.tar.gz)

port=""; mport=""; serial=0
start() {
    : > batond.log
    ./batond run --config batond.yaml --trim-idle-after 2 2> batond.log &
    pid=$!
    local i
    for i in $(seq 1 600); do
        port=$(sed -n 's/.*msg="api listening".*baton\.listen=127\.0\.0\.1:\([0-9]*\).*/\1/p' batond.log | head -n 1)
        mport=$(sed -n 's/.*msg="metrics listening".*baton\.listen=\(127\.0\.0\.1:[0-9]*\).*/\1/p' batond.log | head -n 1)
        [ -n "$port" ] && [ -n "$mport" ] && return
        kill -0 "$pid" 2>/dev/null || { cat batond.log >&2; echo "error: batond ended" >&2; exit 1; }
        sleep 0.02
    done
    echo "error: batond did not start" >&2; exit 1
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; }
call() {
    local method=$1 path=$2; shift 2
    local how=(-X "$method"); [ "$method" = HEAD ] && how=(--head)
    curl -sS --max-time 120 --tlsv1.3 --cacert ca/ca.pem --cert ctl/ops.pem --key ctl/ops.key -H 'Expect:' \
        -o /dev/null -w '%{http_code}' "${how[@]}" "$@" "https://127.0.0.1:$port$path"
}
deploy() {
    serial=$((serial + 1))
    local now later
    now=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ); later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
    printf '{"app":"app","release":"r%s","serial":%s,"environment":"bench","issuedAt":"%s","expiresAt":"%s","artifact":{"sha256":"%s","size":%s,"format":"tar.gz"}}\n' \
        "$serial" "$serial" "$now" "$later" "$sha" "$size" > m.json
    "$BATON" manifest sign m.json --key ci.key >/dev/null
    call PUT "/v1/artifacts/sha256/$sha" -T app.tar.gz >/dev/null
    [ "$(call POST /v1/deployments --data-binary @m.envelope.json -H 'Content-Type: application/json')" = 202 ] \
        || { echo "error: the deployment was refused" >&2; exit 1; }
    curl -sS -N --max-time 120 --tlsv1.3 --cacert ca/ca.pem --cert ctl/ops.pem --key ctl/ops.key \
        "https://127.0.0.1:$port/v1/deployments/app-1/events" > /dev/null   # a fresh data directory: its first
}
workload() {  # $1: whether to deploy; $2: what to run before and after the idle trim
    local absent i
    absent=$(printf '%064d' 0)
    for i in 1 2 3; do
        call GET /v1/health >/dev/null; call GET /v1/apps >/dev/null; call HEAD "/v1/artifacts/sha256/$absent" >/dev/null
    done
    curl -sS -o /dev/null "http://$mport/metrics"
    $2 calls
    [ "$1" = 0 ] || deploy
    $2 deploy
    sleep 5   # an idle trim (--trim-idle-after 2) and what runs after it
    call GET /v1/health >/dev/null
    $2 idle
}

# 1. Sampled stacks.
for run in $(seq 1 "$STARTS"); do
    rm -rf data
    start
    perf record -q -F 20000 -g -p "$pid" -o "perf-$run.data" 2>/dev/null &
    recorder=$!
    sleep 0.3
    workload "$([ "$run" -le 2 ] && echo 1 || echo 0)" true
    kill -INT "$recorder"; wait "$recorder" 2>/dev/null || true
    stop
    # A fresh data directory each time, but the serial and the release go on rising.
done
for f in perf-*.data; do
    perf script -i "$f" --no-demangle -F ip,sym,dso 2>/dev/null | awk '/batond\)/ {print $2}'
done | grep -v -e '^\[unknown\]' -e '@plt' | sort | uniq -c | sort -rn > sampled.txt

snapshot() {  # $1: a tag; appends "tag address name" for every function on a page of the text the agent has mapped
    python3 - "$pid" batond "$1" >> touched.txt <<'PY'
import bisect, struct, subprocess, sys
pid, binary, tag = int(sys.argv[1]), sys.argv[2], sys.argv[3]
syms = []
for line in subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4 and f[2] in "tTwW":
        syms.append((int(f[0], 16), int(f[1], 16), f[3]))
syms.sort()
starts = [s[0] for s in syms]
loads = []
for line in subprocess.run(["readelf", "-l", "-W", binary], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if f and f[0] == "LOAD":
        loads.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
touched = set()
with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
    for line in open(f"/proc/{pid}/maps"):
        f = line.split()
        if len(f) < 6 or not f[5].endswith("/batond") or "x" not in f[1]:
            continue
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        offset = int(f[2], 16)
        for va in range(lo, hi, 4096):
            pagemap.seek(va // 4096 * 8)
            if not (struct.unpack("Q", pagemap.read(8))[0] >> 63) & 1:
                continue
            fo = offset + (va - lo)
            vaddr = next((v + fo - o for o, v, size in loads if o <= fo < o + size), None)
            if vaddr is None:
                continue
            i = bisect.bisect_right(starts, vaddr + 4095) - 1
            while i >= 0 and syms[i][0] + max(syms[i][1], 1) > vaddr:
                touched.add(syms[i]); i -= 1
for address, size, name in sorted(touched):
    print(tag, address, name)
PY
}

# 2. The pages really touched, with read-ahead off and the binary out of the page cache.
: > touched.txt
if [ "$PAGES" = 1 ] && [ "$(id -u)" = 0 ]; then
    dev=$(df --output=source batond | tail -n 1); dev=${dev#/dev/}
    parent=$(lsblk -no PKNAME "/dev/$dev" 2>/dev/null | head -n 1); [ -n "$parent" ] || parent=$dev
    if [ -w "/sys/block/$parent/queue/read_ahead_kb" ]; then
        ra_file="/sys/block/$parent/queue/read_ahead_kb"; ra_saved=$(cat "$ra_file")
        echo 0 > "$ra_file"
        rm -rf data
        sync; echo 3 > /proc/sys/vm/drop_caches
        start
        sleep 0.5
        workload 1 snapshot
        stop
        echo "$ra_saved" > "$ra_file"; ra_file=""
    else
        echo "note: the read-ahead of /dev/$parent cannot be set; sampled functions only" >&2
    fi
fi

# Section names the build can move: the objects of this package and its dependencies,
# and the toolchain's static libraries.
toolchain_static="$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")/lib/swift_static/linux"
{
    find "$root/$SCRATCH" -name '*.o' -path '*release*' -print0 | xargs -0 readelf -S -W 2>/dev/null
    readelf -S -W "$toolchain_static"/*.a 2>/dev/null
} | sed -n 's/.*\] \.text\.\([^ ]*\) .*/\1/p' | sort -u > movable.txt

python3 - sampled.txt touched.txt movable.txt "$root/$OUT" "$STARTS" <<'PY'
import sys
sampled, touched, movable, out, starts = sys.argv[1:]
movable = set(line.strip() for line in open(movable))
names, seen = [], set()
for line in open(sampled):
    name = line.split(None, 1)[1].strip()
    if name in movable and name not in seen:
        seen.add(name); names.append(name)
hot = len(names)
# What runs once the agent is idle again (after a trim, and a call) first, then what the
# calls ran, then the deployment: the pages an idle agent keeps are the first ones.
rank = {"idle": 0, "calls": 1, "deploy": 2}
for line in sorted(open(touched), key=lambda l: (rank[l.split()[0]], int(l.split()[1]))):
    name = line.split()[2]
    if name in movable and name not in seen:
        seen.add(name); names.append(name)
with open(out, "w") as f:
    f.write(f"# batond's functions in the order serving runs them (bench/batond-order.sh: {starts} starts sampled,\n")
    f.write(f"# {hot} functions, hottest first; then {len(names) - hot} on the pages a served agent touched). Generated.\n")
    for name in names:
        f.write(f".text.{name}\n")
print(f"{out}: {len(names)} functions ({hot} sampled)")
PY
