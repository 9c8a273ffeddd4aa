#!/usr/bin/env bash
# batond's footprint: what it costs a host to run the agent.
#
# Builds batond (release, --static-swift-stdlib: the binary that ships), then prints
#   * the size of the stripped static binary;
#   * the RSS of an idle `batond run` right after start (once /v1/health answers), and
#     after 100 API calls (GET /v1/health, GET /v1/apps, HEAD of an artifact; each a new
#     curl process, so a new TLS handshake, with the controller's certificate);
#   * the peak RSS while a 100 MB incompressible tar.gz is uploaded (PUT, streamed by
#     curl), and while it is deployed (POST the envelope, follow the events to the end);
#   * where the idle memory is: threads, anonymous memory (the agent's own: heap,
#     stacks, relocated data) against file-backed (code and read-only data of the
#     binary, clean pages of the page cache), the RSS once the kernel has reclaimed the
#     clean pages and again after 100 calls (the code serving needs), the largest
#     mappings, and the idle RSS with MALLOC_ARENA_MAX=2;
#   * the RSS once the agent has been idle for a spell after those calls and after the
#     deployment: `batond run` gives its binary's pages back after IDLE seconds without a
#     call or a deployment (`--trim-idle-after`, 30 s by default; the bench sets IDLE,
#     default 5, so as not to wait; the figure does not depend on it);
#   * the same with the start-up pages kept (`batond run --no-trim-startup-pages`);
#   * what a memory cgroup holding only batond is charged (as systemd would count it),
#     started with its binary out of the page cache: anonymous memory and page cache.
# Targets: idle RSS <= 12 MB, peak during the 100 MB deployment <= 40 MB.
#
# Peaks are the kernel's own high-water mark (VmHWM), reset before each phase through
# /proc/PID/clear_refs, with a 20 ms sampler of VmRSS and RssAnon as a cross-check where
# the reset is not allowed. Run it as root on an otherwise quiet machine; about a minute
# once batond is built.
#
#   bench/agent-footprint.sh                      # the shipping build, SCRATCH=.build-order
#   FLAGS= SCRATCH=.build-release bench/agent-footprint.sh   # the plain release build
#   SCRATCH=.build-rel2 bench/agent-footprint.sh
#   BATON=path/to/baton bench/agent-footprint.sh  # any baton build for pki/keys/sign
#   MB=300 bench/agent-footprint.sh               # another artifact size
#   IDLE=30 bench/agent-footprint.sh              # batond run --trim-idle-after 30
#   FLAGS="-Xswiftc -Osize" SCRATCH=.build-osize bench/agent-footprint.sh  # other build flags
#   AGENT_ENV="MALLOC_ARENA_MAX=1" bench/agent-footprint.sh  # environment of the main agent
#   BATOND=old/batond BATON=old/baton bench/agent-footprint.sh  # measure a batond already built
#                                                 # (e.g. a copy of the build before a change)
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${SCRATCH:-.build-order}"
MB="${MB:-100}"
IDLE="${IDLE:-5}"
read -r -a agent_env <<< "${AGENT_ENV:-}"

# Build flags: by default the shipping build's (agent/INSTALL.md): every function in a
# section of its own, laid out in the order agent/batond.order gives (bench/batond-order.sh,
# docs/footprint.md). FLAGS= SCRATCH=.build-release measures the plain release build.
FLAGS="${FLAGS--Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xlinker --section-ordering-file=$PWD/agent/batond.order -Xlinker -z -Xlinker now}"
read -r -a flags <<< "$FLAGS"
build=(swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" "${flags[@]}")
quietly() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }; }
BATOND_GIVEN="${BATOND:-}"
if [ -n "$BATOND_GIVEN" ]; then
    BATOND="$(cd "$(dirname "$BATOND")" && pwd)/$(basename "$BATOND")"
    [ -n "${BATON:-}" ] || BIN="$("${build[@]}" --show-bin-path 2>/dev/null)"
else
    BIN="$("${build[@]}" --show-bin-path 2>/dev/null)"
    # The build does not see a changed order file: link again.
    [[ "$FLAGS" != *section-ordering-file* ]] || rm -f "$BIN/batond"
    quietly "${build[@]}" --product batond
    BATOND="$(cd "$BIN" && pwd)/batond"
fi
if [ -z "${BATON:-}" ]; then
    BIN="$(cd "$BIN" && pwd)"
    quietly "${build[@]}" --product baton
    BATON="$BIN/baton"
fi
BATON="$(cd "$(dirname "$BATON")" && pwd)/$(basename "$BATON")"
for tool in curl python3 strip; do
    command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 2; }
done

work="$(mktemp -d /tmp/baton-footprint.XXXXXX)"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -z "${cg_child:-}" ] || rmdir "$cg_child" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"

# --- the binary ----------------------------------------------------------------------
cp "$BATOND" batond
strip batond
# Written back, as a binary installed on a host long ago is: the page cache holds it clean,
# so that what the kernel can drop (and what batond gives back after start-up) is not
# held back as dirty pages still to be written.
sync batond
unstripped=$(stat -c %s "$BATOND"); stripped=$(stat -c %s batond)
# What it needs at run time beyond libc: a static Swift stdlib leaves only system libraries.
needed=$(objdump -p batond 2>/dev/null | awk '/NEEDED/ {print $2}' | tr '\n' ' ' || true)
# Whether the whole of Foundation (and ICU with it) got linked, or only FoundationEssentials:
# one `import Foundation` anywhere in batond's dependencies brings it back.
foundation_symbols=$(nm "$BATOND" 2>/dev/null | grep -c -E '[$]s10Foundation[0-9]|FoundationInternationalization|_FoundationICU' || true)
if [ "$foundation_symbols" -eq 0 ]; then
    foundation="FoundationEssentials only (no Foundation, no ICU)"
else
    foundation="the whole of Foundation is linked ($foundation_symbols symbols): something imports it"
fi

# --- a host: PKI, a trust policy, a configuration -----------------------------------------
"$BATON" pki init ca >/dev/null
"$BATON" pki issue agent bench-1 --ip 127.0.0.1 --ca ca --out agent >/dev/null
"$BATON" pki issue controller ops --ca ca --out ctl >/dev/null
"$BATON" keys generate ci >/dev/null
printf 'keys:\n  ci: ci.pub\nenvironments:\n  bench: {threshold: 1, keys: [ci]}\n' > trust.yaml
cat > batond.yaml <<'YAML'
hostId: bench-1
environment: bench
dataDir: data
listen: 127.0.0.1:0
metricsListen: 127.0.0.1:0
tls:
  certificate: agent/bench-1.pem
  privateKey: agent/bench-1.key
  ca: ca/ca.pem
trust: trust.yaml
YAML

port=""; pid=""
# start [ENV=VALUE ...]: the stripped batond in the background; sets pid and port.
# With into_cgroup set (a memory cgroup's directory), batond starts inside it: its own
# pid goes into cgroup.procs before exec, so every page it faults is charged there.
# run_flags: extra `batond run` flags.
into_cgroup=""; base_flags=()
# An older batond (a BIN to compare) has no idle trim.
if ./batond run --help 2>&1 | grep -q -- --trim-idle-after; then base_flags=(--trim-idle-after "$IDLE"); fi
run_flags=("${base_flags[@]}")
# idle_spell: waits long enough for one idle trim (two of its periods and a second).
idle_spell() { sleep $(( 2 * IDLE + 1 )); }
start() {
    rm -rf data
    : > batond.log   # not the previous agent's "api listening"
    if [ -n "$into_cgroup" ]; then
        ( echo "$BASHPID" > "$into_cgroup/cgroup.procs" \
            && exec env "$@" ./batond run --config batond.yaml "${run_flags[@]}" 2> batond.log ) &
    else
        env "$@" ./batond run --config batond.yaml "${run_flags[@]}" 2> batond.log &
    fi
    pid=$!; pids+=("$pid"); port=""
    local i
    for i in $(seq 1 300); do
        port=$(sed -n 's/.*msg="api listening".*baton\.listen=127\.0\.0\.1:\([0-9]*\).*/\1/p' batond.log | head -n 1)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || { cat batond.log >&2; echo "error: batond ended" >&2; exit 1; }
        sleep 0.05
    done
    [ -n "$port" ] || { echo "error: batond did not start" >&2; exit 1; }
    for i in $(seq 1 100); do
        [ "$(call GET /v1/health 2>/dev/null)" = 200 ] && return
        sleep 0.05
    done
    echo "error: /v1/health did not answer 200" >&2; exit 1
}
stop() {
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
# call METHOD PATH [curl flags...]: prints the status.
call() {
    local method=$1 path=$2; shift 2
    local how=(-X "$method"); [ "$method" = HEAD ] && how=(--head)
    curl -sS --max-time 600 --tlsv1.3 --cacert ca/ca.pem --cert ctl/ops.pem --key ctl/ops.key -H 'Expect:' \
        -o /dev/null -w '%{http_code}' "${how[@]}" "$@" "https://127.0.0.1:$port$path"
}
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f MB", kb / 1024 }'; }

# Peak RSS of a phase: reset the kernel's high-water mark, and sample VmRSS and RssAnon
# (the part that is the agent's own memory, not code) meanwhile.
sampler=""
phase_begin() {
    echo 5 > "/proc/$pid/clear_refs" 2>/dev/null || true
    echo "0 0" > peak.sampled
    ( rss_peak=0; anon_peak=0
      while kill -0 "$pid" 2>/dev/null; do
          read -r rss anon < <(awk '$1 == "VmRSS:" {r = $2} $1 == "RssAnon:" {a = $2} END {print r + 0, a + 0}' \
              "/proc/$pid/status" 2>/dev/null || echo "0 0")
          if [ "$rss" -gt "$rss_peak" ] || [ "$anon" -gt "$anon_peak" ]; then
              rss_peak=$(( rss > rss_peak ? rss : rss_peak )); anon_peak=$(( anon > anon_peak ? anon : anon_peak ))
              echo "$rss_peak $anon_peak" > peak.sampled
          fi
          sleep 0.02
      done ) &
    sampler=$!
}
phase_peak() {  # prints "peak-RSS peak-anonymous" in kB
    local hwm rss anon
    hwm=$(status_kb VmHWM)
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
    read -r rss anon < peak.sampled
    echo "$(( hwm > rss ? hwm : rss )) $anon"
}

# --- idle, then 100 API calls ----------------------------------------------------------
start "${agent_env[@]}"
sleep 1
idle_rss=$(status_kb VmRSS); idle_hwm=$(status_kb VmHWM)
idle_threads=$(ls "/proc/$pid/task" | wc -l)
idle_thread_names=$(cat /proc/"$pid"/task/*/comm | sort | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
idle_anon=$(status_kb RssAnon); idle_file=$(status_kb RssFile)
pmap -x "$pid" > idle.pmap 2>/dev/null || true

absent=$(printf '%064d' 0)
for i in $(seq 1 100); do
    case $((i % 3)) in
        0) want=200; got=$(call GET /v1/health) ;;
        1) want=200; got=$(call GET /v1/apps) ;;
        2) want=404; got=$(call HEAD "/v1/artifacts/sha256/$absent") ;;
    esac
    [ "$got" = "$want" ] || { echo "error: API call $i answered $got, not $want" >&2; exit 1; }
done
sleep 1
calls_rss=$(status_kb VmRSS); calls_hwm=$(status_kb VmHWM)
idle_spell
spell_rss=$(status_kb VmRSS); spell_anon=$(status_kb RssAnon)

# --- a 100 MB deployment ---------------------------------------------------------------
mkdir src
head -c $((MB * 1024 * 1024)) /dev/urandom > src/blob
echo bench > src/VERSION
tar -cf - -C src . | gzip -1 > app.tar.gz
rm -rf src
sha=$(sha256sum app.tar.gz | cut -d' ' -f1); size=$(stat -c %s app.tar.gz)
now=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ); later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
cat > m.json <<JSON
{"app":"app","release":"r1","serial":1,"environment":"bench","issuedAt":"$now","expiresAt":"$later",
 "artifact":{"sha256":"$sha","size":$size,"format":"tar.gz"}}
JSON
"$BATON" manifest sign m.json --key ci.key >/dev/null

phase_begin
t0=$(date +%s%N)
got=$(call PUT "/v1/artifacts/sha256/$sha" -T app.tar.gz)
t1=$(date +%s%N)
read -r upload_peak upload_anon < <(phase_peak)
[ "$got" = 201 ] || { echo "error: upload answered $got" >&2; exit 1; }

phase_begin
t2=$(date +%s%N)
got=$(call POST /v1/deployments --data-binary @m.envelope.json -H 'Content-Type: application/json')
[ "$got" = 202 ] || { echo "error: deployment answered $got" >&2; exit 1; }
curl -sS -N --max-time 600 --tlsv1.3 --cacert ca/ca.pem --cert ctl/ops.pem --key ctl/ops.key \
    "https://127.0.0.1:$port/v1/deployments/app-1/events" > events.ndjson
t3=$(date +%s%N)
read -r deploy_peak deploy_anon < <(phase_peak)
final=$(tail -n 1 events.ndjson | python3 -c 'import json, sys; print(json.load(sys.stdin)["phase"])')
[ "$final" = succeeded ] || { echo "error: the deployment ended $final" >&2; tail -n 3 events.ndjson >&2; exit 1; }
after_rss=$(status_kb VmRSS)
idle_spell
after_spell_rss=$(status_kb VmRSS); after_spell_anon=$(status_kb RssAnon)
after_spell_threads=$(ls "/proc/$pid/task" | wc -l)
pmap -x "$pid" > after-deployment.pmap 2>/dev/null || true
# What the trim costs: the first call after it runs code the trim gave back (read from the
# disk again), the next one finds it resident. Each is a curl process, a TLS handshake.
timed_call() { local t0 t1; t0=$(date +%s%N); call GET /v1/health >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
first_call_ms=$(timed_call); next_call_ms=$(timed_call)
stop

# --- the same idle agent with two malloc arenas ------------------------------------------
start MALLOC_ARENA_MAX=2
sleep 1
arena_rss=$(status_kb VmRSS); arena_anon=$(status_kb RssAnon)
for i in $(seq 1 100); do call GET /v1/health >/dev/null; done
sleep 1
arena_calls_rss=$(status_kb VmRSS)
stop

# --- the working set: what stays resident once the kernel reclaims clean pages ----------------
# process_madvise(MADV_PAGEOUT) over the agent's file mappings does now what memory
# pressure would do later: code and read-only data touched only at start (argument
# parsing, YAML, certificate loading, the relocation table) leave the RSS; what serving
# requests needs comes back on the next calls. Needs Linux 5.10 and root; skipped otherwise.
pageout() {
    python3 - "$1" <<'PY' 2>/dev/null
import ctypes, sys
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_open, SYS_process_madvise, MADV_PAGEOUT = 434, 440, 21   # x86_64 and aarch64 alike
pidfd = libc.syscall(SYS_pidfd_open, pid, 0)
if pidfd < 0:
    sys.exit(1)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
advised = 0
for line in open(f"/proc/{pid}/maps"):
    fields = line.split()
    if len(fields) < 6 or not fields[5].startswith("/"):
        continue
    lo, hi = (int(x, 16) for x in fields[0].split("-"))
    vec = iovec(lo, hi - lo)
    if libc.syscall(SYS_process_madvise, pidfd, ctypes.byref(vec), 1, MADV_PAGEOUT, 0) > 0:
        advised += 1
sys.exit(0 if advised else 1)
PY
}
start
sleep 1
if pageout "$pid"; then
    sleep 0.5
    reclaimed_rss=$(status_kb VmRSS)
    for i in $(seq 1 100); do
        case $((i % 3)) in
            0) call GET /v1/health >/dev/null ;;
            1) call GET /v1/apps >/dev/null ;;
            2) call HEAD "/v1/artifacts/sha256/$absent" >/dev/null ;;
        esac
    done
    sleep 1
    working_rss=$(status_kb VmRSS)
fi
stop

# serve100: the 100 mixed API calls of the first measurement, answers unchecked.
serve100() {
    local i
    for i in $(seq 1 100); do
        case $((i % 3)) in
            0) call GET /v1/health >/dev/null ;;
            1) call GET /v1/apps >/dev/null ;;
            2) call HEAD "/v1/artifacts/sha256/$absent" >/dev/null ;;
        esac
    done
}

# --- both ways: the start-up pages kept --------------------------------------------------------
# `batond run` gives back the pages of its binary that only start-up touched once the API
# listens (docs/footprint.md); --no-trim-startup-pages keeps them, as before.
if ./batond run --help 2>&1 | grep -q -- --no-trim-startup-pages; then
    run_flags=(--no-trim-startup-pages)
    start
    sleep 1
    kept_rss=$(status_kb VmRSS); kept_file=$(status_kb RssFile)
    serve100
    sleep 1
    kept_calls_rss=$(status_kb VmRSS)
    stop
    run_flags=("${base_flags[@]}")
fi

# --- what the agent's memory cgroup is charged -----------------------------------------------
# As systemd would run it: batond alone in a memory cgroup, started with its binary out of
# the page cache (as after a boot), so the pages of the binary it faults are charged to it
# (a page is charged to the cgroup that first brings it into the page cache; the `cp` and
# `strip` above brought them in for this script's own cgroup). cgroup v2: a child of this
# shell's cgroup needs the memory controller enabled for its children, which the "no
# internal processes" rule refuses unless that cgroup is the root; cgroup v1: a child of
# the memory controller's hierarchy. Needs root; skipped with the reason otherwise.
cg_version=""; cg=""; cg_skipped=""
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    cg_version=v2; cg="/sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)"
elif [ -d /sys/fs/cgroup/memory ]; then
    cg_version=v1; cg="/sys/fs/cgroup/memory$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)"
fi
cg_child=""
if [ -z "$cg_version" ]; then
    cg_skipped="no memory cgroup controller is mounted"
elif ! mkdir "$cg/baton-footprint-$$" 2>/dev/null; then
    cg_skipped="cannot create a child of $cg (not root, or the hierarchy is read-only)"
else
    cg_child="$cg/baton-footprint-$$"
    if [ "$cg_version" = v2 ] && [ ! -f "$cg_child/memory.current" ]; then
        echo +memory > "$cg/cgroup.subtree_control" 2>/dev/null || true
        if [ ! -f "$cg_child/memory.current" ]; then
            cg_skipped="cgroup v2: the memory controller cannot be enabled below $cg (it holds processes)"
            rmdir "$cg_child"; cg_child=""
        fi
    fi
fi
# cg_charge: "charged anonymous file file-mapped" in kB, from the child cgroup.
cg_charge() {
    if [ "$cg_version" = v2 ]; then
        awk -v cur="$(cat "$cg_child/memory.current")" '$1 == "anon" {a = $2} $1 == "file" {f = $2} $1 == "file_mapped" {m = $2}
            END {printf "%d %d %d %d\n", cur / 1024, a / 1024, f / 1024, m / 1024}' "$cg_child/memory.stat"
    else
        awk -v cur="$(cat "$cg_child/memory.usage_in_bytes")" '$1 == "rss" {a = $2} $1 == "cache" {f = $2} $1 == "mapped_file" {m = $2}
            END {printf "%d %d %d %d\n", cur / 1024, a / 1024, f / 1024, m / 1024}' "$cg_child/memory.stat"
    fi
}
# evict: the binary out of the page cache (written pages first synced, then dropped).
evict() {
    sync batond
    python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' batond
}
cg_line() {  # cg_line "charged anon file mapped" -> text
    set -- $1
    echo "charged $(mb "$1") (anonymous $(mb "$2"), page cache $(mb "$3"), of it mapped $(mb "$4"))"
}
if [ -n "$cg_child" ]; then
    for way in trimmed kept; do
        run_flags=("${base_flags[@]}")
        [ "$way" = kept ] && { ./batond run --help 2>&1 | grep -q -- --no-trim-startup-pages || continue; run_flags=(--no-trim-startup-pages); }
        evict
        into_cgroup="$cg_child"
        start
        sleep 1
        cg_idle_rss=$(status_kb VmRSS); cg_idle=$(cg_charge)
        serve100
        sleep 1
        cg_calls_rss=$(status_kb VmRSS); cg_calls=$(cg_charge)
        if [ "$way" = trimmed ] && [ ${#base_flags[@]} -gt 0 ]; then
            idle_spell
            cg_spell_rss=$(status_kb VmRSS); cg_spell=$(cg_charge)
            cg_trimmed_spell="RSS $(mb "$cg_spell_rss"); $(cg_line "$cg_spell")"
        fi
        stop
        into_cgroup=""; run_flags=("${base_flags[@]}")
        printf -v "cg_${way}_idle" 'RSS %s; %s' "$(mb "$cg_idle_rss")" "$(cg_line "$cg_idle")"
        printf -v "cg_${way}_calls" 'RSS %s; %s' "$(mb "$cg_calls_rss")" "$(cg_line "$cg_calls")"
    done
    rmdir "$cg_child" 2>/dev/null || true
fi

# --- report --------------------------------------------------------------------------------
verdict() { [ "$1" -le $(($2 * 1024)) ] && echo "ok" || echo "OVER"; }
if [ -n "${BATOND_GIVEN:-}" ]; then
    echo "batond: $BATOND (given with BATOND=, not built here)"
else
    echo "batond (release, --static-swift-stdlib${FLAGS:+ $FLAGS}, $SCRATCH)"
fi
echo "  binary:              $(mb $((stripped / 1024))) stripped ($(mb $((unstripped / 1024))) unstripped); needs: ${needed:-?}"
echo "  links:               $foundation"
echo "  idle after start:    RSS $(mb "$idle_rss") (peak so far $(mb "$idle_hwm"))   target <= 12 MB: $(verdict "$idle_rss" 12)"
echo "  after 100 API calls: RSS $(mb "$calls_rss") (peak so far $(mb "$calls_hwm"))   target <= 12 MB: $(verdict "$calls_rss" 12)"
if [ ${#base_flags[@]} -gt 0 ]; then
echo "  idle again ($(( 2 * IDLE + 1 )) s later, --trim-idle-after $IDLE): RSS $(mb "$spell_rss") (anonymous $(mb "$spell_anon"))   target <= 12 MB: $(verdict "$spell_rss" 12)"
fi
echo "  upload of $((size / 1048576)) MB:    peak RSS $(mb "$upload_peak") (anonymous $(mb "$upload_anon"))   target <= 40 MB: $(verdict "$upload_peak" 40)   ($(( (t1 - t0) / 1000000 )) ms)"
echo "  its deployment:      peak RSS $(mb "$deploy_peak") (anonymous $(mb "$deploy_anon"))   target <= 40 MB: $(verdict "$deploy_peak" 40)   ($(( (t3 - t2) / 1000000 )) ms, $(wc -l < events.ndjson) events, $final)"
echo "  after the deployment: RSS $(mb "$after_rss")${after_spell_rss:+; idle again $(( 2 * IDLE + 1 )) s later: $(mb "$after_spell_rss") (anonymous $(mb "$after_spell_anon"), $after_spell_threads threads)}"
echo "  a health call right after that idle trim: ${first_call_ms} ms; the next one: ${next_call_ms} ms (each a new curl and TLS handshake)"
echo "where the idle memory is:"
echo "  threads:             $idle_threads ($idle_thread_names)"
echo "  anonymous (heap, stacks, data): $(mb "$idle_anon");  file-backed (code and read-only data, shared, clean): $(mb "$idle_file")"
if [ -n "${reclaimed_rss:-}" ]; then
    echo "  clean pages reclaimed (MADV_PAGEOUT): idle RSS $(mb "$reclaimed_rss"), after 100 more calls $(mb "$working_rss") (the code serving needs)"
fi
if [ -n "${kept_rss:-}" ]; then
    echo "  start-up pages kept (--no-trim-startup-pages): idle RSS $(mb "$kept_rss") (file-backed $(mb "$kept_file")), after 100 calls $(mb "$kept_calls_rss")"
fi
if [ -n "$cg_skipped" ]; then
    echo "  memory cgroup:       not measured: $cg_skipped"
else
    echo "  memory cgroup ($cg_version, batond alone in it, started with its binary out of the page cache):"
    echo "    idle:                $cg_trimmed_idle"
    echo "    after 100 calls:     $cg_trimmed_calls"
    if [ -n "${cg_trimmed_spell:-}" ]; then
        echo "    idle again:          $cg_trimmed_spell"
    fi
    if [ -n "${cg_kept_idle:-}" ]; then
        echo "    start-up pages kept, idle:            $cg_kept_idle"
        echo "    start-up pages kept, after 100 calls: $cg_kept_calls"
    fi
fi
echo "  MALLOC_ARENA_MAX=2:  idle RSS $(mb "$arena_rss") (anonymous $(mb "$arena_anon")), after 100 calls $(mb "$arena_calls_rss")"
# pmap -x lines of resident mappings, "size rss dirty mode name" in kB; neighbouring areas of
# one mapping (the same mode and name, each starting where the last ended: batond splits its
# text into 16 KiB areas, docs/footprint.md) are added up into one line.
resident_mappings() {
    python3 - "$1" <<'PY' | sort -k2 -n -r
import sys
rows = []
for line in open(sys.argv[1]):
    f = line.split(None, 5)
    if len(f) < 5 or not all(c in "0123456789abcdef" for c in f[0]) or not f[1].isdigit():
        continue
    start, size, rss, dirty = int(f[0], 16), int(f[1]), int(f[2] if f[2].isdigit() else 0), int(f[3] if f[3].isdigit() else 0)
    name = f[5].strip() if len(f) > 5 else ""
    last = rows[-1] if rows else None
    if last and last["mode"] == f[4] and last["name"] == name and last["end"] == start:
        last["size"] += size; last["rss"] += rss; last["dirty"] += dirty; last["end"] = start + size * 1024
    else:
        rows.append(dict(size=size, rss=rss, dirty=dirty, mode=f[4], name=name, end=start + size * 1024))
for r in rows:
    if r["rss"] > 0:
        print("    %8d %8d %8d %s %s" % (r["size"], r["rss"], r["dirty"], r["mode"], r["name"]))
PY
}
if [ -s idle.pmap ]; then
    echo "  largest resident mappings (pmap -x, kB: size rss dirty):"
    resident_mappings idle.pmap | head -n 6
fi
if [ -s after-deployment.pmap ]; then
    echo "  largest resident mappings idle again after the deployment (pmap -x, kB: size rss dirty):"
    resident_mappings after-deployment.pmap | head -n 8
fi
