#!/usr/bin/env bash
# A fleet rollout against the floor of doing the same per-host work by hand, and against
# the tool users would otherwise pick (Ansible).
#
#   bench/fleet.sh N        # N local agents
#   bench/fleet.sh          # N = 10, then N = 50
#
# Starts N `batond run` agents on 127.0.0.1 (release build, each with its own data
# directory, certificate and port), then times, in the same rounds, these contenders:
#   * baton: `baton deploy web ... --json` (the real controller: hash and store the
#     artifact, ask every agent for its serial, sign, upload to every agent, deploy all N
#     at once in one batch, follow every host to the end); every agent makes the release
#     durable before it switches (docs/durability.md);
#   * floor: the same per-host work done by `xargs -P N` over N directories: `sha256sum`
#     of the artifact, `tar xzf` into a fresh release directory, the symlink switch
#     (`ln -s` + `mv -T`), and the retention the agents apply (the app keeps 3 releases:
#     the oldest beyond them removed after the switch, as `cap deploy:cleanup` does), with
#     nothing synced: an unsafe deploy. (Until 2026-12-07 the floors kept 2 and their old
#     releases were removed between the timed runs, while the agents' removal was timed;
#     2,000 unlinks per host are not free, and on ext4 without a journal they slow every
#     file created after them, see fs_description);
#   * floor+sync: the same, plus `sync -f` of the release before the switch, so a power
#     loss cannot leave `current` naming torn files: the floor for a crash-safe deploy;
#   * ansible: `ansible-playbook` (ansible-core, in a venv the script makes in
#     .build/bench-ansible; local connection, one inventory host per directory, forks N)
#     doing the floor's work with its own modules: `stat` with a sha256 checksum,
#     `file`, `unarchive` (remote_src), and the same `ln -s` + `mv -T` switch;
#   * fetch (FETCH=1): the rollout where the controller uploads nothing and every agent
#     fetches the artifact over HTTPS from a local nginx (Debian's; its certificate from
#     the fleet CA): `baton deploy ... --url URL --fetch`; the controller's uplink is out
#     of the picture. It deploys an artifact of its own each round (a new digest), so that no
#     agent finds it already cached.
#   * syncfs (SYNCFS=1): the baton rollout again, to a second set of N agents configured
#     with `releaseSync: filesystem` (one syncfs(2) per release instead of an fsync per
#     file and directory; docs/durability.md), through a controller of its own
#     (baton-syncfs.yaml).
# Each of RUNS rounds (default 3, at least 3 for the medians to mean anything) deploys a
# new release (r1, r2, ...) of a new artifact of about 2,000 files and 16 MB (tar.gz;
# one file and VERSION change between rounds), so hashing and unpacking really happen
# every time; a first untimed release (r0) puts every host of every contender on a
# previous release. The order of the contenders rotates by one each round, and each
# starts after a `sync`, so that neither the page cache nor another's writeback favours
# one. Prints each contender's median (and every round, and the median busy CPU time of
# the whole machine over it: all processes, both cores), the ratios (by wall time and by
# CPU time) against the floors
# (targets: baton <= 1.0x floor+sync and <= 1.2x floor) and what the sync alone costs
# (floor+sync / floor: a crash-safe rollout that does the floor's work meets the second
# target only where that is under 1.2, or by doing the rest faster than the floor), where the controller's time
# went in its median round (from the arrival time of each --json event), and the
# controller's peak RSS (VmHWM) and most threads at once over every `baton deploy` of the
# run (r0 included), sampled from /proc/PID/status every 10 ms; at the end, one line per
# N and file system. The agents remove the trees retention dropped after a deployment's
# end (the floors inline): after each rollout the bench waits, untimed and before the
# next contender's `sync`, until every agent's trash is empty, and prints how long after
# the end that was and the ratios with it counted.
#
# Environment: RUNS (default 3); MEDIA, the file systems to run on, in order (default
# "disk tmpfs"; disk is DISK_DIR, default /var/tmp; tmpfs is /dev/shm, where fsync costs
# nothing; any other word is taken as a directory); DISK_IMAGE=SIZE (as root, e.g. 24G)
# makes the disk medium a fresh ext4 with a journal (mkfs.ext4's defaults, what a host's
# data directory is on) in a sparse image of SIZE under DISK_DIR, on a loop device with
# direct I/O, removed at the end: see fs_description for why; HOST_DISKS=1 (as root, disk
# medium only) gives every host a file system of its own instead, as a fleet has (see
# make_host_disks): a fresh ext4 with a journal in a sparse image of HOST_DISK_SIZE
# (default 2G) under DISK_DIR per host, each on its own loop device with direct I/O,
# holding that host's agent data, syncfs agent data and floor and Ansible directories,
# all removed at the end of each N (KEEP=1 keeps nothing of them); ANSIBLE=0 leaves
# Ansible out;
# FETCH=1 adds the fetch contender; SYNCFS=1 the syncfs one; SCRATCH (default .build-release); BIN=DIR uses the
# baton and batond already in DIR instead of building; KEEP=1 keeps the work directories;
# DROP_CACHES=1 drops the page cache before each N (as root; see drop_page_cache).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
SCRATCH="${SCRATCH:-.build-release}"
FETCH="${FETCH:-0}"
SYNCFS="${SYNCFS:-0}"
ANSIBLE="${ANSIBLE:-1}"
MEDIA="${MEDIA:-disk tmpfs}"
if [ "$FETCH" = 1 ]; then
    NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
    [ -x "$NGINX" ] || { echo "error: FETCH=1 needs nginx (Debian: apt-get install nginx)" >&2; exit 2; }
fi
if [ $# -eq 0 ]; then set -- 10 50; fi
for n in "$@"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/fleet.sh [N ...]  (N: number of agents)" >&2; exit 2; }
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "error: RUNS must be a positive number" >&2; exit 2; }
[ "$RUNS" -ge 3 ] || echo "note: RUNS=$RUNS: a median of fewer than 3 rounds says little" >&2
disk_mount=""    # where DISK_IMAGE's file system is mounted, once it is
media_dir() {   # media_dir MEDIUM: the directory a medium's work goes under
    case "$1" in
        disk) echo "${disk_mount:-${DISK_DIR:-/var/tmp}}" ;;
        tmpfs) echo /dev/shm ;;
        *) echo "$1" ;;
    esac
}
for medium in $MEDIA; do
    [ -d "$(media_dir "$medium")" ] || { echo "error: MEDIA: $medium: no directory $(media_dir "$medium")" >&2; exit 2; }
done

if [ -z "${BIN:-}" ]; then
    swift build -c release --scratch-path "$SCRATCH" --product batond >/dev/null
    swift build -c release --scratch-path "$SCRATCH" --product baton >/dev/null
    BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"
fi
BIN="$(cd "$BIN" && pwd)"
BATON="$BIN/baton"; BATOND="$BIN/batond"
PY="$(python3 -c 'import sys; print(sys.executable)')"   # not through a pyenv shim

# Ansible in a venv of its own beside the build (never the system Python), made once.
if [ "$ANSIBLE" = 1 ]; then
    venv=.build/bench-ansible
    if [ ! -x "$venv/bin/ansible-playbook" ]; then
        echo "making $venv (ansible-core) ..." >&2
        "$PY" -m venv "$venv" >&2
        "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check 'ansible-core>=2.17,<2.19' >&2
    fi
    ANSIBLE_BIN="$(cd "$venv/bin" && pwd)"
fi

works=()
pids=()
stop_agents() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
disk_image=""; disk_loop=""
host_mounts=(); host_loops=(); host_images=()
# HOST_DISKS=1: one file system per host. On a fleet every host syncs its own disk: an
# agent's syncfs (and a floor's `sync -f`) waits for that host's dirty data only. With
# every host on one file system, each syncfs also waits for all the others' data, and
# `releaseSync: auto` sees the others' trees dirty and fsyncs each file instead (it
# cannot tell another host's unpack from an application's writes). N file systems on
# the one disk of this machine are the nearest a bench on one machine gets to N hosts:
# the journals, the dirty data and the syncs are per host; the device is still shared.
make_host_disks() {   # make_host_disks N DIR
    local i img loop mnt
    for i in $(seq 1 "$1"); do
        img="$(mktemp "${DISK_DIR:-/var/tmp}/baton-fleet-host-$i.XXXXXX.img")"; host_images+=("$img")
        truncate -s "${HOST_DISK_SIZE:-2G}" "$img"
        mkfs.ext4 -q -F "$img"
        loop="$(losetup --direct-io=on -f --show "$img")"; host_loops+=("$loop")
        mnt="$2/disks/host-$i"; mkdir -p "$mnt"
        mount "$loop" "$mnt"; host_mounts+=("$mnt")
    done
}
release_host_disks() {
    local m l
    for m in "${host_mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; rmdir "$m" 2>/dev/null || true; done
    for l in "${host_loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
    [ ${#host_images[@]} = 0 ] || rm -f "${host_images[@]}"
    host_mounts=(); host_loops=(); host_images=()
}
cleanup() {
    stop_agents
    release_host_disks
    local w
    for w in "${works[@]}"; do
        # KEEP=1 cannot keep what is on DISK_IMAGE's file system: the image goes.
        if [ "${KEEP:-0}" = 1 ] && { [ -z "$disk_mount" ] || [[ "$w" != "$disk_mount"/* ]]; }; then echo "kept $w" >&2; else rm -rf "$w"; fi
    done
    if [ -n "$disk_mount" ]; then umount "$disk_mount" && rmdir "$disk_mount"; fi
    [ -z "$disk_loop" ] || losetup -d "$disk_loop" 2>/dev/null || true
    [ -z "$disk_image" ] || rm -f "$disk_image"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
summary="$(mktemp)"; works+=("$summary")

# What a medium's file system is, in words, with a warning where it skews the figures.
# ext4 without a journal (this kind of VM's root file system, often) checks every inode
# it is about to hand out against the inodes deleted in the last 60 s (5 minutes while
# their inode table block is dirty; the kernel's recently_deleted, for want of a journal
# to order the reuse), scanning past every one of them in the block group each time: a
# file created after many were deleted costs in proportion to how many. Every contender
# here deletes an old release of each host every round, 2,000 files each; perf over an
# N=50 round on such a disk put 68 % of the floor+sync's CPU time and 57 % of the
# rollout's in that scan (ext4_create -> find_inode_bit -> recently_deleted), and the
# rounds then rank the contenders by whose creations follow whose deletions. ext4 with a
# journal (mkfs.ext4's default) and XFS never scan: DISK_IMAGE gives the disk medium one.
fs_description() {   # fs_description DIR
    local source dev type
    read -r source type < <(findmnt -n -o SOURCE,FSTYPE --target "$1" 2>/dev/null) || { stat -f -c %T "$1"; return; }
    dev=$(basename "$source")
    if [ "$type" = ext4 ] && [ -d "/sys/fs/ext4/$dev" ]; then
        if compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null; then echo "ext4 with a journal, $source"
        else echo "ext4 WITHOUT a journal, $source: creating files after deletions is slow here for every contender (see fs_description in the script)"; fi
    else
        echo "$type, $source"
    fi
}
if [ "${HOST_DISKS:-0}" = 1 ] && [[ " $MEDIA " == *" disk "* ]]; then
    [ "$(id -u)" = 0 ] || { echo "error: HOST_DISKS=1 needs root (losetup, mount)" >&2; exit 2; }
fi
if [ -n "${DISK_IMAGE:-}" ] && [[ " $MEDIA " == *" disk "* ]]; then
    [ "$(id -u)" = 0 ] || { echo "error: DISK_IMAGE needs root (losetup, mount)" >&2; exit 2; }
    disk_image="$(mktemp "${DISK_DIR:-/var/tmp}/baton-fleet-disk.XXXXXX.img")"
    truncate -s "$DISK_IMAGE" "$disk_image"
    mkfs.ext4 -q -F "$disk_image"
    disk_loop="$(losetup --direct-io=on -f --show "$disk_image")"
    disk_mount="$(mktemp -d /tmp/baton-fleet-disk.XXXXXX)"
    mount "$disk_loop" "$disk_mount"
fi

# ~2,000 files, ~16 MB compressed (random bytes: compiled code and assets compress little).
make_source() {
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
}

# A new artifact for release $1: new bytes in one file (same size) and in VERSION.
make_artifact() {
    local release="$1" file="$work/src/lib/m00/f0000.bin"
    head -c "$(stat -c %s "$file")" /dev/urandom > "$file.new" && mv "$file.new" "$file"
    echo "$release" > "$work/src/VERSION"
    tar -czf "art-$release.tar.gz" -C "$work/src" .
}

median() { sort -n | awk '{a[NR]=$1} END {m=int((NR+1)/2); print a[m]}'; }
now_ns() { date +%s%N; }
# Busy CPU time of the whole machine so far, in ms (/proc/stat: user, nice, system, irq,
# softirq, steal; in USER_HZ ticks of 10 ms): what a contender cost all processes together.
busy_ms() { awk '$1 == "cpu" { print ($2 + $3 + $4 + $7 + $8 + $9) * 10; exit }' /proc/stat; }

# Waits until no agent whose directory starts with PREFIX (host, shost) holds a tree in
# its trash, and sets trash_after_ms to the time from END_NS (the rollout's end) until then
# (0 when nothing was left to remove by then).
trash_wait() {    # trash_wait PREFIX END_NS
    local d busy deadline=$(( $(now_ns) + 120 * 1000000000 ))
    while :; do
        busy=0
        for d in hosts/"$1"-*/data/apps/web/.trash; do
            [ -d "$d" ] && [ -n "$(ls -A "$d")" ] && { busy=1; break; }
        done
        [ "$busy" = 0 ] && break
        [ "$(now_ns)" -lt "$deadline" ] || { echo "error: the agents' trash was not empty 120 s after the rollout" >&2; exit 1; }
        nap 0.005
    done
    trash_after_ms=$(( ($(now_ns) - $2) / 1000000 ))
    [ "$trash_after_ms" -ge 0 ] || trash_after_ms=0
}

# The floor's per-host work, run by xargs in each host directory.
floor_host='set -e
h="$1"; art="$2"; rel="$3"
sha256sum "$art" >/dev/null
mkdir "$h/releases/$rel"
tar -xzf "$art" -C "$h/releases/$rel"
[ "$4" = 1 ] && sync -f "$h/releases/$rel"
ln -s "releases/$rel" "$h/current.tmp"
mv -T "$h/current.tmp" "$h/current"
cd "$h/releases" && ls | sort -V | head -n -3 | xargs -r rm -rf'

# Ansible's version of the same work: its own modules where it has them.
playbook='- hosts: all
  gather_facts: false
  tasks:
    - name: digest of the artifact
      ansible.builtin.stat: {path: "{{ art }}", checksum_algorithm: sha256, get_mime: false, get_attributes: false}
    - name: release directory
      ansible.builtin.file: {path: "{{ hostdir }}/releases/{{ rel }}", state: directory}
    - name: unpack
      ansible.builtin.unarchive: {src: "{{ art }}", dest: "{{ hostdir }}/releases/{{ rel }}", remote_src: true}
    - name: switch
      ansible.builtin.shell: ln -s "releases/{{ rel }}" "{{ hostdir }}/current.tmp" && mv -T "{{ hostdir }}/current.tmp" "{{ hostdir }}/current"
'

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
# Prefixes each line read from the FIFO argv[2] with its arrival time (epoch seconds),
# having first created the file argv[1] to say it is ready: started and ready before a
# rollout's clock starts, so that Python's own start (about 100 ms on these VMs) is not
# counted as the controller's. (Until 2026-12-07 evening a Python wrapper started the
# controller and sampled it, inside the timed window: every rollout figure before then
# carries 100 to 140 ms of it, and its CPU.)
stamp_py='
import sys, time
open(sys.argv[1], "w").close()
out = sys.stdout
with open(sys.argv[2], "rb") as lines:
    for line in lines:
        # The start time the shell wrote just before the controller: kept as it is.
        out.write(line.decode() if line.startswith(b"start\t") else f"{time.time():.6f}\t{line.decode()}")
        out.flush()
'
# A descriptor that never has anything to read: `read -t` on it sleeps without a process.
nap_fifo="$(mktemp -u /tmp/baton-fleet-nap.XXXXXX)"
mkfifo "$nap_fifo"
exec {sleep_fd}<> "$nap_fifo"
rm -f "$nap_fifo"   # the descriptor stays
nap() { read -r -t "$1" -u "$sleep_fd" _ || true; }

# controller_prepare OUT: the stamper for OUT started and ready (outside the timed window).
controller_prepare() {
    rm -f "$1" "$1.fifo" "$1.ready"
    mkfifo "$1.fifo"
    "$PY" -c "$stamp_py" "$1.ready" "$1.fifo" > "$1" &
    stamper_pid=$!
    local tries=0
    until [ -e "$1.ready" ]; do
        tries=$((tries + 1)); [ $tries -lt 2000 ] || { echo "error: the event stamper did not start" >&2; exit 1; }
        nap 0.005
    done
}
# controller_run OUT ARGS...: `baton ARGS...` with its --json lines to OUT's stamper (the first
# line, "start", is its start time); returns its status and sets controller_end_ns to the
# moment it exited. Its peak RSS (VmHWM, KiB) and the most threads it had at once go to
# OUT.mem, sampled from /proc/PID/status every 10 ms by a subshell (no new program).
controller_run() {
    local out=$1; shift
    { echo -e "start\t$EPOCHREALTIME"; exec "$BATON" "$@"; } > "$out.fifo" &
    local pid=$! status=0
    ( hwm=0; threads=0
      while [ -e "/proc/$pid" ]; do
          while read -r key value _; do
              case "$key" in
                  VmHWM:) [ "$value" -gt "$hwm" ] && hwm=$value ;;
                  Threads:) [ "$value" -gt "$threads" ] && threads=$value ;;
              esac
          done < "/proc/$pid/status" 2>/dev/null
          nap 0.01
      done
      echo "$hwm $threads" > "$out.mem" ) &
    local sampler=$!
    wait "$pid" || status=$?
    controller_end_ns=$(now_ns)
    wait "$sampler" || true
    return "$status"
}
# controller_finish OUT: waits for the stamper to write the last line.
controller_finish() {
    wait "$stamper_pid" || true
    rm -f "$1.fifo" "$1.ready"
}

bench() {
    local n="$1" medium="$2" dir="$work/n$n"
    mkdir -p "$dir" && cd "$dir"
    drop_page_cache "$n"
    local per_host=0
    if [ "${HOST_DISKS:-0}" = 1 ] && [ "$medium" = disk ]; then per_host=1; make_host_disks "$n" "$dir"; fi

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
    # make_hosts PREFIX [EXTRA]: N agents' certificates and configurations, hosts/PREFIX-i.
    make_hosts() {
        for i in $(seq 1 "$n"); do
            id="$1-$i"
            mkdir -p "hosts/$id/tls"
            "$BATON" pki issue agent "$id" --ip 127.0.0.1 --ca pki/ca --out "hosts/$id/tls" >/dev/null
            local data="$dir/hosts/$id/data"
            if [ "$per_host" = 1 ]; then
                # On host i's own file system; hosts/ID/data leads there for the checks below.
                data="$dir/disks/host-$i/$1-data"; mkdir -p "$data"; chmod 700 "$data"; ln -s "$data" "hosts/$id/data"
            fi
            cat > "hosts/$id/batond.yaml" <<EOF
hostId: $id
environment: staging
dataDir: $data
trust: $dir/trust-policy.yaml
listen: 127.0.0.1:0
metricsListen: 127.0.0.1:0
tls:
  certificate: tls/$id.pem
  privateKey: tls/$id.key
  ca: $dir/pki/ca/ca.pem
${2:-}
EOF
        done
    }
    make_hosts host
    [ "$SYNCFS" = 1 ] && make_hosts shost "releaseSync: filesystem"
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
    if [ "$SYNCFS" = 1 ]; then
        sed -e 's/^fleet: fleet.yaml/fleet: fleet-syncfs.yaml/' -e 's/^stateDir: state/stateDir: state-syncfs/' baton.yaml > baton-syncfs.yaml
    fi

    # The agents, each on a port of its own choosing (read from its log).
    start_agents() {   # start_agents PREFIX FLEET_FILE
        for i in $(seq 1 "$n"); do
            "$BATOND" run --config "hosts/$1-$i/batond.yaml" 2> "hosts/$1-$i/batond.log" &
            pids+=($!)
        done
        echo "hosts:" > "$2"
        local port deadline=$((SECONDS + 60))
        for i in $(seq 1 "$n"); do
            while ! port=$(grep -m1 'msg="api listening"' "hosts/$1-$i/batond.log" 2>/dev/null \
                    | grep -o 'baton.listen=127\.0\.0\.1:[0-9]*' | cut -d: -f2) || [ -z "$port" ]; do
                if [ $SECONDS -ge $deadline ]; then
                    echo "error: $1-$i did not start listening:" >&2; tail -5 "hosts/$1-$i/batond.log" >&2; exit 1
                fi
                sleep 0.05
            done
            echo "  - {id: $1-$i, address: \"127.0.0.1:$port\", environment: staging}" >> "$2"
        done
    }
    start_agents host fleet.yaml
    [ "$SYNCFS" = 1 ] && start_agents shost fleet-syncfs.yaml
    local c
    for c in floor floorsync ansible; do
        for i in $(seq 1 "$n"); do
            if [ "$per_host" = 1 ]; then
                mkdir -p "$c" "$dir/disks/host-$i/$c/releases"; ln -s "$dir/disks/host-$i/$c" "$c/host-$i"
            else
                mkdir -p "$c/host-$i/releases"
            fi
        done
    done
    if [ "$ANSIBLE" = 1 ]; then
        mkdir -p ansible/tmp
        printf '%s' "$playbook" > ansible/site.yml
        { echo "[all]"
          for i in $(seq 1 "$n"); do
              echo "host-$i hostdir=$dir/ansible/host-$i ansible_connection=local ansible_python_interpreter=$ANSIBLE_BIN/python3"
          done; } > ansible/hosts.ini
    fi

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

    # deploy_run RELEASE OUT [CONFIG]: the timed rollout (after controller_prepare OUT).
    deploy_run() {
        controller_run "$2" deploy web --config "${3:-baton.yaml}" --artifact "art-$1.tar.gz" \
            --release "$1" --environment staging --key keys/ci.key --json
    }
    deploy() {   # deploy RELEASE OUT [CONFIG]: an untimed rollout (r0)
        local status=0
        controller_prepare "$2"
        deploy_run "$@" || status=$?
        controller_finish "$2"
        return "$status"
    }
    # fetch_run RELEASE OUT: the same rollout, the agents fetching from nginx (after
    # controller_prepare OUT and a copy of the artifact into nginx's directory).
    fetch_run() {
        controller_run "$2" deploy web --artifact "art-$1.tar.gz" --release "$1" --environment staging --key keys/ci.key \
            --url "https://127.0.0.1:$nport/art-$1.tar.gz" --fetch --json
    }
    floor() {    # floor KIND RELEASE: KIND floor (nothing synced) or floorsync
        local sync=0
        [ "$1" = floorsync ] && sync=1
        local i
        for i in $(seq 1 "$n"); do echo "$dir/$1/host-$i"; done |
            xargs -P "$n" -I{} sh -c "$floor_host" sh {} "$dir/art-$2.tar.gz" "$2" "$sync"
    }
    ansible_run() {   # ansible_run RELEASE OUT
        ANSIBLE_LOCAL_TEMP="$dir/ansible/tmp" ANSIBLE_REMOTE_TMP="$dir/ansible/tmp" ANSIBLE_NOCOLOR=1 \
            ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PYTHON_INTERPRETER="$ANSIBLE_BIN/python3" \
            "$ANSIBLE_BIN/ansible-playbook" -i ansible/hosts.ini -f "$n" \
            -e "art=$dir/art-$1.tar.gz" -e "rel=$1" ansible/site.yml > "$2" 2>&1
    }

    # r0: untimed, so that every host of every contender has a previous release.
    make_artifact r0
    if ! deploy r0 deploy-r0.out; then echo "error: deploy r0 failed:" >&2; tail -3 deploy-r0.out >&2; exit 1; fi
    if [ "$SYNCFS" = 1 ] && ! deploy r0 syncfs-r0.out baton-syncfs.yaml; then
        echo "error: syncfs deploy r0 failed:" >&2; tail -3 syncfs-r0.out >&2; exit 1
    fi
    floor floor r0; floor floorsync r0
    if [ "$ANSIBLE" = 1 ] && ! ansible_run r0 ansible-r0.out; then
        echo "error: ansible r0 failed:" >&2; tail -20 ansible-r0.out >&2; exit 1
    fi

    local contenders=(baton floor floorsync)
    [ "$ANSIBLE" = 1 ] && contenders+=(ansible)
    [ "$FETCH" = 1 ] && contenders+=(fetch)
    [ "$SYNCFS" = 1 ] && contenders+=(syncfs)
    local -A times=() cpus=() trash_after=() total=()
    local k=${#contenders[@]} rel r j t0 t1 c0 last_fetch="" scanned_before
    scanned_before=$(pages_scanned)
    for r in $(seq 1 "$RUNS"); do
        rel="r$r"
        make_artifact "$rel"
        [ "$FETCH" = 1 ] && make_artifact "${rel}f"
        rm -f "art-r$((r - 1)).tar.gz" "art-r$((r - 1))f.tar.gz" nginx/www/*.tar.gz 2>/dev/null || true
        rm -rf ansible/host-*/releases/"r$((r - 2))"
        local order=()
        for j in $(seq 0 $((k - 1))); do order+=("${contenders[$(( (j + r - 1) % k ))]}"); done
        for c in "${order[@]}"; do
            # The controller's event stamper starts before the clock does.
            case "$c" in
                baton) controller_prepare "deploy-$rel.out" ;;
                syncfs) controller_prepare "syncfs-$rel.out" ;;
                fetch) cp "art-${rel}f.tar.gz" nginx/www/; controller_prepare "fetch-${rel}f.out" ;;
            esac
            sync
            c0=$(busy_ms)
            t0=$(now_ns)
            case "$c" in
                baton)
                    if ! deploy_run "$rel" "deploy-$rel.out"; then
                        controller_finish "deploy-$rel.out"
                        echo "error: deploy $rel failed:" >&2; tail -3 "deploy-$rel.out" >&2; exit 1
                    fi ;;
                syncfs)
                    if ! deploy_run "$rel" "syncfs-$rel.out" baton-syncfs.yaml; then
                        controller_finish "syncfs-$rel.out"
                        echo "error: syncfs deploy $rel failed:" >&2; tail -3 "syncfs-$rel.out" >&2; exit 1
                    fi ;;
                fetch)
                    if ! fetch_run "${rel}f" "fetch-${rel}f.out"; then
                        controller_finish "fetch-${rel}f.out"
                        echo "error: fetch rollout ${rel}f failed:" >&2; tail -3 "fetch-${rel}f.out" >&2; exit 1
                    fi ;;
                floor|floorsync) floor "$c" "$rel" ;;
                ansible)
                    if ! ansible_run "$rel" "ansible-$rel.out"; then
                        echo "error: ansible $rel failed:" >&2; tail -20 "ansible-$rel.out" >&2; exit 1
                    fi ;;
            esac
            # A rollout ends when the controller exits; the stamper's last write is not its time.
            case "$c" in baton|syncfs|fetch) t1=$controller_end_ns ;; *) t1=$(now_ns) ;; esac
            times[$c]+="$(( (t1 - t0) / 1000000 )) "
            cpus[$c]+="$(( $(busy_ms) - c0 )) "
            case "$c" in
                baton) controller_finish "deploy-$rel.out" ;;
                syncfs) controller_finish "syncfs-$rel.out" ;;
                fetch) controller_finish "fetch-${rel}f.out" ;;
            esac
            case "$c" in
                baton)
                    echo "$t1" > "deploy-$rel.end"
                    grep -q '"outcome":"succeeded"' "deploy-$rel.out" || { echo "error: $rel did not succeed everywhere" >&2; tail -1 "deploy-$rel.out" >&2; exit 1; } ;;
                syncfs)
                    echo "$t1" > "syncfs-$rel.end"
                    grep -q '"outcome":"succeeded"' "syncfs-$rel.out" || { echo "error: syncfs $rel did not succeed everywhere" >&2; tail -1 "syncfs-$rel.out" >&2; exit 1; } ;;
                fetch)
                    echo "$t1" > "fetch-${rel}f.end"
                    grep -q '"outcome":"succeeded"' "fetch-${rel}f.out" || { echo "error: ${rel}f did not succeed everywhere" >&2; tail -1 "fetch-${rel}f.out" >&2; exit 1; }
                    if grep -q '"phase":"uploading"' "fetch-${rel}f.out"; then echo "error: ${rel}f uploaded" >&2; exit 1; fi
                    last_fetch="${rel}f" ;;
            esac
            # The agents remove the trees retention dropped after the rollout's end. Wait
            # for that here, out of every timed window and before the next contender's
            # `sync` (which then commits it): their removal never lands in another's time.
            case "$c" in
                baton|fetch) trash_wait host "$t1" ;;
                syncfs) trash_wait shost "$t1" ;;
                *) trash_after_ms=0 ;;
            esac
            trash_after[$c]+="$trash_after_ms "
            total[$c]+="$(( (t1 - t0) / 1000000 + trash_after_ms )) "
        done
    done
    # Every host of every contender ends on the last round's release (the agents on the
    # fetched one if fetch ran after the upload in that round).
    local last_baton="r$RUNS"
    if [ "$FETCH" = 1 ]; then
        local pos_b pos_f
        for j in $(seq 0 $((k - 1))); do
            case "${contenders[$(( (j + RUNS - 1) % k ))]}" in baton) pos_b=$j ;; fetch) pos_f=$j ;; esac
        done
        [ "$pos_f" -gt "$pos_b" ] && last_baton="$last_fetch"
    fi
    for i in $(seq 1 "$n"); do
        [ "$(readlink "hosts/host-$i/data/apps/web/current" | xargs basename)" = "$last_baton" ] || { echo "error: host-$i is not on $last_baton" >&2; exit 1; }
        if [ "$SYNCFS" = 1 ]; then
            [ "$(readlink "hosts/shost-$i/data/apps/web/current" | xargs basename)" = "r$RUNS" ] || { echo "error: shost-$i is not on r$RUNS" >&2; exit 1; }
        fi
        for c in floor floorsync $([ "$ANSIBLE" = 1 ] && echo ansible); do
            [ "$(readlink "$c/host-$i/current")" = "releases/r$RUNS" ] || { echo "error: $c host-$i is not on r$RUNS" >&2; exit 1; }
            [ "$c" = ansible ] || [ "$(ls "$c/host-$i/releases" | wc -l)" -le 3 ] || { echo "error: $c host-$i keeps more than 3 releases" >&2; exit 1; }
        done
    done

    local scanned=$(( $(pages_scanned) - scanned_before ))
    local -A med=()
    for c in "${contenders[@]}"; do med[$c]=$(printf '%s\n' ${times[$c]} | median); done
    local size files fstype median_run
    size=$(stat -c %s "art-r$RUNS.tar.gz"); files=$(find "$work/src" -type f | wc -l)
    if [ "$per_host" = 1 ]; then
        fstype="one file system per host: $(fs_description "$dir/disks/host-1" | sed 's/, \/dev\/loop[0-9]*$//') on a loop device of its own each"
    else
        fstype=$(fs_description "$dir")
    fi
    echo "== N = $n agents on $medium ($(dirname "$work"), $fstype): $files files, $((size / 1024)) KiB tar.gz, $RUNS rounds (medians; the order rotates each round), $(nproc) cores"
    # How the agents' trees were made durable in a round (their unpack events; the
    # default `releaseSync: auto` chooses per host, docs/durability.md).
    synced_line() {
        local fs each
        fs=$(grep -c 'on disk by one syncfs' "$1" || true)
        each=$(grep -c 'on disk by an fsync of each file' "$1" || true)
        [ $((fs + each)) = 0 ] || echo "    trees made durable: $fs by one syncfs, $each by an fsync of each file and directory"
    }
    label() {
        case "$1" in
            baton) echo "baton deploy (upload; all $n at once)" ;;
            fetch) echo "baton deploy --url --fetch (agents fetch from nginx)" ;;
            syncfs) echo "baton deploy, agents with releaseSync: filesystem" ;;
            floor) echo "floor (xargs -P $n: sha256sum + tar xzf + ln -s/mv -T + keep 3)" ;;
            floorsync) echo "floor+sync (the same + sync -f before the switch)" ;;
            ansible) echo "ansible-playbook (local, forks $n: stat sha256 + unarchive + switch)" ;;
        esac
    }
    for c in "${contenders[@]}"; do
        printf '  %-72s %7s ms   (all: %s; CPU, all processes: %s ms)\n' "$(label "$c")" "${med[$c]}" "${times[$c]% }" \
            "$(printf '%s\n' ${cpus[$c]} | median)"
    done
    if [ "$scanned" -gt 0 ]; then
        echo "  warning: the kernel scanned $scanned pages to reclaim memory during the rounds: whoever allocated then paid for it (the agents write twice what a floor writes: the cached copy and the tree); free memory first (DROP_CACHES=1 drops the page cache before each N)"
    else
        echo "  no memory was reclaimed during the rounds"
    fi
    local ratios
    ratios=$(awk -v a="${med[baton]}" -v s="${med[floorsync]}" -v f="${med[floor]}" \
        'BEGIN { printf "baton / floor+sync %.2f (target <= 1.00)   baton / floor %.2f (target <= 1.20)   the sync alone: floor+sync / floor %.2f", a / s, a / f, s / f }')
    [ "$ANSIBLE" = 1 ] && ratios+=$(awk -v a="${med[baton]}" -v x="${med[ansible]}" 'BEGIN { printf "   ansible / baton %.2f", x / a }')
    [ "$FETCH" = 1 ] && ratios+=$(awk -v a="${med[baton]}" -v g="${med[fetch]}" -v s="${med[floorsync]}" 'BEGIN { printf "   fetch / upload %.2f   fetch / floor+sync %.2f", g / a, g / s }')
    [ "$SYNCFS" = 1 ] && ratios+=$(awk -v y="${med[syncfs]}" -v s="${med[floorsync]}" -v f="${med[floor]}" 'BEGIN { printf "   syncfs / floor+sync %.2f   syncfs / floor %.2f", y / s, y / f }')
    echo "  $ratios"
    # The machine's busy CPU over a round is steadier than its wall time on a shared VM,
    # and on 2 cores every contender is CPU-bound: the same ratios by CPU time.
    local -A cpu=()
    for c in "${contenders[@]}"; do cpu[$c]=$(printf '%s\n' ${cpus[$c]} | median); done
    local cpu_ratios
    cpu_ratios=$(awk -v a="${cpu[baton]}" -v s="${cpu[floorsync]}" -v f="${cpu[floor]}" \
        'BEGIN { printf "by CPU time: baton / floor+sync %.2f   baton / floor %.2f   floor+sync / floor %.2f", a / s, a / f, s / f }')
    [ "$FETCH" = 1 ] && cpu_ratios+=$(awk -v g="${cpu[fetch]}" -v s="${cpu[floorsync]}" 'BEGIN { printf "   fetch / floor+sync %.2f", g / s }')
    [ "$SYNCFS" = 1 ] && cpu_ratios+=$(awk -v y="${cpu[syncfs]}" -v s="${cpu[floorsync]}" 'BEGIN { printf "   syncfs / floor+sync %.2f", y / s }')
    echo "  $cpu_ratios"
    # What the rollouts left to do after their end: the removal of the trees retention
    # dropped (the floors remove theirs inline, inside their time).
    local -A after=() whole=()
    for c in "${contenders[@]}"; do
        after[$c]=$(printf '%s\n' ${trash_after[$c]} | median)
        whole[$c]=$(printf '%s\n' ${total[$c]} | median)
    done
    local removal_line
    removal_line=$(awk -v r="${after[baton]}" -v a="${whole[baton]}" -v s="${med[floorsync]}" -v f="${med[floor]}" \
        'BEGIN { printf "after the end, the agents removed the dropped trees within %d ms (median); counting that too: baton / floor+sync %.2f   baton / floor %.2f", r, a / s, a / f }')
    echo "  $removal_line"
    local memline
    memline=$(cat deploy-r*.out.mem | awk '{ if ($1 > m) m = $1; if ($2 > t) t = $2 } END { printf "controller peak RSS %.0f MB, peak threads %d", m / 1024, t }')
    echo "  $memline (most over every baton deploy, r0 included)"
    printf 'N=%-5s %-6s %s; %s; %s; %s\n' "$n" "$medium$([ "$per_host" = 1 ] && echo ", a file system per host")" "$ratios" "$cpu_ratios" "$removal_line" "$memline" >> "$summary"

    local B
    B=$(printf '%s\n' ${times[baton]} | median)
    median_run=""
    j=0; for t0 in ${times[baton]}; do j=$((j + 1)); [ "$t0" = "$B" ] && { median_run=$j; break; }; done
    echo "  where the rollout's time went (round r$median_run):"
    "$PY" -c "$phases_py" "deploy-r$median_run.out" "$(awk '{printf "%.6f", $1 / 1e9}' "deploy-r$median_run.end")"
    synced_line "deploy-r$median_run.out"
    if [ "$FETCH" = 1 ]; then
        j=0; for t0 in ${times[fetch]}; do j=$((j + 1)); [ "$t0" = "${med[fetch]}" ] && { median_run=$j; break; }; done
        echo "  where the rollout --fetch's time went (round r${median_run}f):"
        "$PY" -c "$phases_py" "fetch-r${median_run}f.out" "$(awk '{printf "%.6f", $1 / 1e9}' "fetch-r${median_run}f.end")"
    fi
    if [ "$SYNCFS" = 1 ]; then
        j=0; for t0 in ${times[syncfs]}; do j=$((j + 1)); [ "$t0" = "${med[syncfs]}" ] && { median_run=$j; break; }; done
        echo "  where the rollout to the releaseSync: filesystem agents' time went (round r$median_run):"
        "$PY" -c "$phases_py" "syncfs-r$median_run.out" "$(awk '{printf "%.6f", $1 / 1e9}' "syncfs-r$median_run.end")"
        synced_line "syncfs-r$median_run.out"
    fi

    stop_agents
    cd "$work"
    release_host_disks
    [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# Memory a run needs and may not find: on tmpfs every tree, cached artifact and floor copy
# lives in RAM (N=50 and 3 rounds: about 13 GB), and leftovers of earlier runs (KEEP=1)
# count too. Under memory pressure the agents reclaim pages themselves while they write,
# which slowed whole rounds 2 to 3 times (measured: 9.6 against 25.9 s of the agents' CPU
# for the same deployment, with /dev/shm 87 % full); the figures then say nothing.
for medium in $MEDIA; do
    leftovers=$(find "$(media_dir "$medium")" -maxdepth 1 -name 'baton-fleet-bench.*' 2>/dev/null | wc -l)
    [ "$leftovers" = 0 ] || echo "warning: $leftovers earlier baton-fleet-bench.* directories in $(media_dir "$medium") hold disk or memory; remove them for figures that mean something" >&2
done
available_mb=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
echo "memory available at the start: $available_mb MB"

# Pages the kernel has scanned to reclaim memory so far (by kswapd and by allocating
# processes themselves): nonzero over the rounds means some contender paid for reclaim.
pages_scanned() { awk '$1 ~ /^pgscan_(kswapd|direct|khugepaged)$/ { s += $2 } END { print s + 0 }' /proc/vmstat; }
# "Available" memory counts the page cache, but taking it back costs whoever allocates
# then; DROP_CACHES=1 (as root) drops the clean page cache before each N. Not the default:
# on the VM these figures come from (a balloon device with free page reporting, and
# DAMON), memory the guest has not touched lately is slow to touch again (17.6 GB written
# into /dev/shm: 78 s of system time, 4.4 s per GB, against 0.4 to 0.5 s per GB for memory
# freed seconds before), so freeing memory can make the next writer slower. That is also
# where the spread of the tmpfs rounds at N=50 comes from (a round up to 2 to 3 times
# slower than the others, the rollout's and the floors' alike, with no page reclaim): perf
# put 55 % of such a rollout round in the kernel's copy of the written bytes into tmpfs
# pages (copy_folio_from_iter_atomic), against 2 % in a fast round; a rollout writes twice
# a floor's bytes (the cached copy and the tree).
drop_page_cache() {
    if [ "${DROP_CACHES:-0}" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
        sync
        echo 1 > /proc/sys/vm/drop_caches
    fi
    echo "memory free before N=$1: $(awk '/^MemFree:/ {print int($2 / 1024)}' /proc/meminfo) MB"
}

for medium in $MEDIA; do
    work="$(mktemp -d "$(media_dir "$medium")/baton-fleet-bench.XXXXXX")"
    works+=("$work")
    cd "$work"
    make_source
    for n in "$@"; do bench "$n" "$medium"; done
    cd /
    [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
done
echo "== summary"
cat "$summary"
