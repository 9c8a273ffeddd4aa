#!/usr/bin/env bash
# A fleet rollout against the floor of doing the same per-host work by hand.
#
#   bench/fleet.sh N        # N local agents
#   bench/fleet.sh          # N = 10, then N = 50
#
# Starts N `batond run` agents on 127.0.0.1 (release build, each with its own data
# directory, certificate and port), then, in one run, times
#   * the rollout: `baton deploy web ... --json` (the real controller: hash and store the
#     artifact, ask every agent for its serial, sign, upload to every agent, deploy all N
#     at once in one batch, follow every host to the end), and
#   * the floor: the same per-host work done by `xargs -P N` over N directories:
#     `sha256sum` of the artifact, `tar xzf` into a fresh release directory, and the
#     symlink switch (`ln -s` + `mv -T`).
# Each of RUNS runs (default 3) deploys a new release (r1, r2, ...) of a new artifact of
# about 2,000 files and 16 MB (tar.gz; one file and VERSION change between runs), so
# upload, hashing and unpacking really happen every time; a first untimed release (r0)
# puts every host on a previous release. Prints both medians and their ratio
# (target <= 1.5), and where the controller's time went in the median run (from the
# arrival time of each --json event), and the controller's peak RSS (VmHWM) and most
# threads at once over every `baton deploy` of the run (r0 included), sampled from
# /proc/PID/status every 10 ms.
#
# FETCH=1 adds a third contender, timed in the same rounds: the same rollout where the
# controller uploads nothing and every agent fetches the artifact over HTTPS from a local
# nginx (Debian's; its certificate from the fleet CA): `baton release create`, the URL
# added to the manifest, `baton manifest sign`, `baton rollout --fetch`. The controller's
# uplink is then out of the picture. Each round deploys one new release by upload and
# one by fetch, in alternating order.
#
# Environment: RUNS (default 3); SCRATCH (default .build-release); BIN=DIR uses the
# baton and batond already in DIR instead of building; FLOOR_SYNC=1 adds
# `sync -f` to the floor's per-host work (the agent makes each release durable with one
# syncfs, and fsyncs its artifact, records and audit log); TMPDIR picks the file system
# both sides write to (e.g. TMPDIR=/dev/shm: no disk, so fsync costs nothing); KEEP=1
# keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
SCRATCH="${SCRATCH:-.build-release}"
FLOOR_SYNC="${FLOOR_SYNC:-0}"
FETCH="${FETCH:-0}"
if [ "$FETCH" = 1 ]; then
    NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
    [ -x "$NGINX" ] || { echo "error: FETCH=1 needs nginx (Debian: apt-get install nginx)" >&2; exit 2; }
fi
if [ $# -eq 0 ]; then set -- 10 50; fi
for n in "$@"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/fleet.sh [N ...]  (N: number of agents)" >&2; exit 2; }
done

if [ -z "${BIN:-}" ]; then
    swift build -c release --scratch-path "$SCRATCH" --product batond >/dev/null
    swift build -c release --scratch-path "$SCRATCH" --product baton >/dev/null
    BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"
fi
BIN="$(cd "$BIN" && pwd)"
BATON="$BIN/baton"; BATOND="$BIN/batond"
PY="$(python3 -c 'import sys; print(sys.executable)')"   # not through a pyenv shim

work="$(mktemp -d "${TMPDIR:-/tmp}/baton-fleet-bench.XXXXXX")"
pids=()
stop_agents() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_agents
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"

# ~2,000 files, ~16 MB compressed (random bytes: compiled code and assets compress little).
"$PY" - <<'PY'
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

# A new artifact for release $1: new bytes in one file (same size) and in VERSION.
make_artifact() {
    local release="$1" file="$work/src/lib/m00/f0000.bin"
    head -c "$(stat -c %s "$file")" /dev/urandom > "$file.new" && mv "$file.new" "$file"
    echo "$release" > "$work/src/VERSION"
    tar -czf "art-$release.tar.gz" -C "$work/src" .
}

median() { sort -n | awk '{a[NR]=$1} END {m=int((NR+1)/2); print a[m]}'; }
now_ns() { date +%s%N; }

# The floor's per-host work, run by xargs in each host directory.
floor_host='set -e
h="$1"; art="$2"; rel="$3"
sha256sum "$art" >/dev/null
mkdir "$h/releases/$rel"
tar -xzf "$art" -C "$h/releases/$rel"
[ "$4" = 1 ] && sync -f "$h/releases/$rel"
ln -s "releases/$rel" "$h/current.tmp"
mv -T "$h/current.tmp" "$h/current"'

# Where the controller's time went, from the timestamped --json lines of one run.
phases_py='
import json, sys, statistics
start, lines = None, []
for raw in open(sys.argv[1]):
    t, _, text = raw.rstrip("\n").partition("\t")
    if t == "start": start = float(text); continue
    lines.append((float(t), json.loads(text)))
end = float(sys.argv[2])
byhost = {}
for t, e in lines:
    if e.get("type") == "host" and e.get("phase"):
        byhost.setdefault(e["host"], []).append((t, e["phase"]))
first_event = min(t for t, _ in lines) if lines else end
print(f"    controller start until its first event (release create: hash + store artifact, ask agents for serials; sign; preflight): {(first_event - start) * 1000:.0f} ms")
spans = {}
for host, seq in byhost.items():
    for (t0, p), (t1, _) in zip(seq, seq[1:]):
        spans.setdefault(p, []).append((t0, t1))
order = []
for seq in byhost.values():
    for _, p in seq:
        if p not in order: order.append(p)
print("    %-12s %11s %9s %9s %9s   (ms; in/out: since the controller started)" % ("phase", "median/host", "max/host", "first in", "last out"))
for p in order:
    if p not in spans: continue
    d = [(b - a) * 1000 for a, b in spans[p]]
    print(f"    {p:<12} {statistics.median(d):>11.0f} {max(d):>9.0f} {(min(a for a, _ in spans[p]) - start) * 1000:>9.0f} {(max(b for _, b in spans[p]) - start) * 1000:>9.0f}")
last_final = max(seq[-1][0] for seq in byhost.values()) if byhost else end
print(f"    last host final until the controller exits: {(end - last_final) * 1000:.0f} ms")
'
# Runs a command (argv[2:]) and writes its peak RSS (VmHWM, KiB) and the most threads it
# had at once to argv[1], sampling /proc/PID/status every 10 ms; exits with its status.
peak_py='
import subprocess, sys, time
child = subprocess.Popen(sys.argv[2:])
hwm = threads = 0
while child.poll() is None:
    try:
        for line in open(f"/proc/{child.pid}/status"):
            if line.startswith("VmHWM:"): hwm = max(hwm, int(line.split()[1]))
            elif line.startswith("Threads:"): threads = max(threads, int(line.split()[1]))
    except (OSError, ValueError):
        pass
    time.sleep(0.01)
open(sys.argv[1], "w").write(f"{hwm} {threads}\n")
sys.exit(child.returncode)
'
# Prefixes each line of stdin with its arrival time (epoch seconds).
stamp_py='
import sys, time
out = sys.stdout
for line in sys.stdin.buffer:
    out.write(f"{time.time():.6f}\t{line.decode()}")
    out.flush()
'

bench() {
    local n="$1" dir="$work/n$n"
    mkdir -p "$dir" && cd "$dir"

    # Keys, the fleet CA, the controller's certificate, the trust policy (LocalFleet's setup).
    mkdir -p keys pki
    "$BATON" keys generate ci --dir keys >/dev/null
    "$BATON" pki init pki/ca >/dev/null
    "$BATON" pki issue controller ci --ca pki/ca --out pki >/dev/null
    cat > trust-policy.yaml <<'EOF'
keys:
  ci: keys/ci.pub
environments:
  staging: {threshold: 1, keys: [ci], rollbackThreshold: 1}
EOF
    local i id
    for i in $(seq 1 "$n"); do
        id="host-$i"
        mkdir -p "hosts/$id/tls"
        "$BATON" pki issue agent "$id" --ip 127.0.0.1 --ca pki/ca --out "hosts/$id/tls" >/dev/null
        cat > "hosts/$id/batond.yaml" <<EOF
hostId: $id
environment: staging
dataDir: $dir/hosts/$id/data
trust: $dir/trust-policy.yaml
listen: 127.0.0.1:0
metricsListen: 127.0.0.1:0
tls:
  certificate: tls/$id.pem
  privateKey: tls/$id.key
  ca: $dir/pki/ca/ca.pem
EOF
    done
    mkdir -p apps
    cat > apps/web.yaml <<'EOF'
app: web
owner: team-web
environments: [staging]
keep: 3
health:
  checks:
    - type: command
      command: ["/bin/true"]
  timeout: 1s
  interval: 100ms
  deadline: 5s
EOF
    cat > baton.yaml <<'EOF'
fleet: fleet.yaml
apps: apps
trustPolicy: trust-policy.yaml
stateDir: state
tls: {certificate: pki/ci.pem, key: pki/ci.key, ca: pki/ca/ca.pem}
signingKey: keys/ci.key
EOF

    # The agents, each on a port of its own choosing (read from its log).
    for i in $(seq 1 "$n"); do
        "$BATOND" run --config "hosts/host-$i/batond.yaml" 2> "hosts/host-$i/batond.log" &
        pids+=($!)
    done
    echo "hosts:" > fleet.yaml
    local port deadline=$((SECONDS + 60))
    for i in $(seq 1 "$n"); do
        while ! port=$(grep -m1 'msg="api listening"' "hosts/host-$i/batond.log" 2>/dev/null \
                | grep -o 'baton.listen=127\.0\.0\.1:[0-9]*' | cut -d: -f2) || [ -z "$port" ]; do
            if [ $SECONDS -ge $deadline ]; then
                echo "error: host-$i did not start listening:" >&2; tail -5 "hosts/host-$i/batond.log" >&2; exit 1
            fi
            sleep 0.05
        done
        echo "  - {id: host-$i, address: \"127.0.0.1:$port\", environment: staging}" >> fleet.yaml
    done
    for i in $(seq 1 "$n"); do mkdir -p "floor/host-$i/releases"; done

    # FETCH=1: nginx on a free loopback port, HTTPS with a certificate of the fleet CA
    # (the agents trust it by default), serving nginx/www.
    local nport=""
    if [ "$FETCH" = 1 ]; then
        mkdir -p nginx/www nginx/logs nginx/tmp nginx/tls
        "$BATON" pki issue agent artifacts --ip 127.0.0.1 --ca pki/ca --out nginx/tls >/dev/null
        nport=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        cat > nginx/nginx.conf <<NGINX
$([ "$(id -u)" = 0 ] && echo "user root;")
worker_processes auto;
error_log $dir/nginx/logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $dir/nginx/tmp/body; proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi; uwsgi_temp_path $dir/nginx/tmp/uwsgi; scgi_temp_path $dir/nginx/tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$nport ssl;
        ssl_certificate $dir/nginx/tls/artifacts.pem;
        ssl_certificate_key $dir/nginx/tls/artifacts.key;
        root $dir/nginx/www;
    }
}
NGINX
        "$NGINX" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/logs/error.log" \
            -g "daemon off; pid $dir/nginx/nginx.pid;" &
        pids+=($!)
        local tries=0
        until "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $nport), 0.2)" 2>/dev/null; do
            tries=$((tries + 1)); [ $tries -lt 100 ] || { echo "error: nginx did not start:" >&2; cat nginx/logs/error.log >&2; exit 1; }
            sleep 0.05
        done
    fi

    deploy() {   # deploy RELEASE OUT: the timed command, with each --json line timestamped
        { echo -e "start\t$(date +%s.%N)"
          "$PY" -c "$peak_py" "$2.mem" "$BATON" deploy web --artifact "art-$1.tar.gz" --release "$1" --environment staging \
              --key keys/ci.key --json | "$PY" -c "$stamp_py"; } > "$2"
    }
    fetch_deploy() {   # fetch_deploy RELEASE OUT: the same rollout, the agents fetching from nginx
        cp "art-$1.tar.gz" nginx/www/
        { echo -e "start\t$(date +%s.%N)"
          "$BATON" release create web --artifact "art-$1.tar.gz" --release "$1" --environment staging -o "$1.manifest.json" >/dev/null
          "$PY" -c 'import json, sys; p = sys.argv[1]; m = json.load(open(p)); m["artifact"]["url"] = sys.argv[2]; json.dump(m, open(p, "w"))' \
              "$1.manifest.json" "https://127.0.0.1:$nport/art-$1.tar.gz"
          "$BATON" manifest sign "$1.manifest.json" --key keys/ci.key >/dev/null
          "$BATON" rollout "$1.manifest.envelope.json" --fetch --json | "$PY" -c "$stamp_py"; } > "$2"
    }
    floor() {    # floor RELEASE
        printf '%s\n' "${hosts_floor[@]}" | xargs -P "$n" -I{} sh -c "$floor_host" sh {} "$dir/art-$1.tar.gz" "$1" "$FLOOR_SYNC"
    }
    local hosts_floor=()
    for i in $(seq 1 "$n"); do hosts_floor+=("$dir/floor/host-$i"); done

    # r0: untimed, so that every agent (and floor host) has a previous release.
    make_artifact r0
    if ! deploy r0 deploy-r0.out; then echo "error: deploy r0 failed:" >&2; tail -3 deploy-r0.out >&2; exit 1; fi
    floor r0

    local agent_times=() floor_times=() fetch_times=() rel t0 t1 r last=""
    timed_fetch() {   # timed_fetch ROUND: one release by fetch, its time appended to fetch_times
        local frel="r$1f"
        make_artifact "$frel"
        sync
        t0=$(now_ns)
        if ! fetch_deploy "$frel" "fetch-$frel.out"; then
            echo "error: fetch rollout $frel failed:" >&2; tail -3 "fetch-$frel.out" >&2; exit 1
        fi
        t1=$(now_ns)
        echo "$t1" > "fetch-$frel.end"
        fetch_times+=($(( (t1 - t0) / 1000000 )))
        grep -q '"outcome":"succeeded"' "fetch-$frel.out" || { echo "error: $frel did not succeed everywhere" >&2; tail -1 "fetch-$frel.out" >&2; exit 1; }
        if grep -q '"phase":"uploading"' "fetch-$frel.out"; then echo "error: $frel uploaded" >&2; exit 1; fi
        rm -f "art-$frel.tar.gz" nginx/www/*.tar.gz
        last="$frel"
    }
    for r in $(seq 1 "$RUNS"); do
        rel="r$r"
        # Odd rounds fetch first, even rounds upload first.
        if [ "$FETCH" = 1 ] && [ $((r % 2)) = 1 ]; then timed_fetch "$r"; fi
        make_artifact "$rel"
        rm -f "art-r$((r - 1)).tar.gz"
        rm -rf floor/host-*/releases/"r$((r - 2))"
        sync
        t0=$(now_ns)
        if ! deploy "$rel" "deploy-$rel.out"; then
            echo "error: deploy $rel failed:" >&2; tail -3 "deploy-$rel.out" >&2; exit 1
        fi
        t1=$(now_ns)
        echo "$t1" > "deploy-$rel.end"
        agent_times+=($(( (t1 - t0) / 1000000 )))
        grep -q '"outcome":"succeeded"' "deploy-$rel.out" || { echo "error: $rel did not succeed everywhere" >&2; tail -1 "deploy-$rel.out" >&2; exit 1; }
        last="$rel"
        if [ "$FETCH" = 1 ] && [ $((r % 2)) = 0 ]; then timed_fetch "$r"; fi

        sync
        t0=$(now_ns)
        floor "$rel"
        t1=$(now_ns)
        floor_times+=($(( (t1 - t0) / 1000000 )))
    done
    for i in $(seq 1 "$n"); do
        [ "$(readlink "hosts/host-$i/data/apps/web/current" | xargs basename)" = "$last" ] || { echo "error: host-$i is not on $last" >&2; exit 1; }
        [ "$(readlink "floor/host-$i/current")" = "releases/r$RUNS" ] || { echo "error: floor host-$i is not on r$RUNS" >&2; exit 1; }
    done

    local A F size files median_run
    A=$(printf '%s\n' "${agent_times[@]}" | median)
    F=$(printf '%s\n' "${floor_times[@]}" | median)
    size=$(stat -c %s "art-r$RUNS.tar.gz"); files=$(find "$work/src" -type f | wc -l)
    for r in $(seq 1 "$RUNS"); do [ "${agent_times[$((r - 1))]}" = "$A" ] && { median_run=$r; break; }; done
    echo "== N = $n agents: $files files, $((size / 1024)) KiB tar.gz, $RUNS runs (medians), $(nproc) cores"
    echo "rollout (baton deploy, all $n at once): ${A} ms   (all: ${agent_times[*]})"
    echo "floor (xargs -P $n: sha256sum + tar xzf + ln -s/mv -T$([ "$FLOOR_SYNC" = 1 ] && echo ' + sync -f')): ${F} ms   (all: ${floor_times[*]})"
    awk -v a="$A" -v f="$F" 'BEGIN { printf "ratio: %.2f  (target <= 1.50)\n", a / f }'
    cat deploy-r*.out.mem | awk '{ if ($1 > m) m = $1; if ($2 > t) t = $2 } END { printf "controller (baton deploy): peak RSS %.0f MB, peak threads %d (most over r0..r'"$RUNS"')\n", m / 1024, t }'
    if [ "$FETCH" = 1 ]; then
        local G
        G=$(printf '%s\n' "${fetch_times[@]}" | median)
        echo "rollout --fetch (agents fetch over HTTPS from a local nginx; release create + sign + rollout): ${G} ms   (all: ${fetch_times[*]})"
        awk -v g="$G" -v a="$A" -v f="$F" 'BEGIN { printf "fetch / upload: %.2f   fetch / floor: %.2f\n", g / a, g / f }'
    fi
    echo "  where the rollout's time went (run r$median_run):"
    "$PY" -c "$phases_py" "deploy-r$median_run.out" "$(awk '{printf "%.6f", $1 / 1e9}' "deploy-r$median_run.end")"
    if [ "$FETCH" = 1 ]; then
        for r in $(seq 1 "$RUNS"); do [ "${fetch_times[$((r - 1))]}" = "$G" ] && { median_run=$r; break; }; done
        echo "  where the rollout --fetch's time went (run r${median_run}f, from the start of release create):"
        "$PY" -c "$phases_py" "fetch-r${median_run}f.out" "$(awk '{printf "%.6f", $1 / 1e9}' "fetch-r${median_run}f.end")"
    fi

    stop_agents
    cd "$work"
    [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
}

for n in "$@"; do bench "$n"; done
