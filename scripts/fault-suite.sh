#!/usr/bin/env bash
# The long fault and abuse runs (RELIABILITY.md); the fast ones are in tests/ (a Qdrant server
# killed and restarted under load: tests/e2e/server_backend.rs; an ingest killed at any moment:
# tests/e2e/ingest.rs). Usage: scripts/fault-suite.sh [abuse] [hostile] [disk-full] [unwritable]
# (default: all).
#   abuse:     64 clients for SECONDS (60) — 57 Search, 6 Ask, 1 IngestDocument — with API keys
#              and per-key limits on; every call must end OK or RESOURCE_EXHAUSTED (a limit),
#              and the service's RSS is sampled every 5 s.
#   hostile:   what a hostile client can hold (issue 26): 900 connections sending half a request
#              head to the HTTP port and 100 silent ones to the gRPC port, under the default
#              limits, while a real client searches once a second: every one must be closed
#              within the header/idle timeout and every real search answered. Then the e2e
#              probes, with their figures: eight 60 MB Search calls with and without a key (peak
#              RSS), a stalled Ask reader (when its permit comes back), half-sent requests.
#   disk-full: an ingest into a small tmpfs that something else fills mid-run: the run must
#              stop with a clear error, the store must open and read, and the next run (space
#              freed) must end with exactly the points of a clean run. Needs root (mount).
#   unwritable: the same with the data directory made read-only mid-run (the ingest runs as
#              nobody; root ignores permissions). Needs root and the disk-full part's corpus.
# Env: RAG (binary; default target/release/rag, built if missing), SECONDS=60.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
rag="${RAG:-}"
if [ -z "$rag" ]; then
  cargo build --release --locked --bin rag
  rag="${CARGO_TARGET_DIR:-$root/target}/release/rag"
fi
parts="${*:-abuse hostile disk-full unwritable}"
seconds="${SECONDS_PER_RUN:-60}"
work="$(mktemp -d)"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  mountpoint -q "$work/full" 2>/dev/null && umount "$work/full"
  rm -rf "$work"
}
trap cleanup EXIT
echo "# scripts/fault-suite.sh — $(date -u +%Y-%m-%d), $(nproc) cores, $("$rag" --version)"
failed=0
# `rag ingest --json`'s summary as "indexed unchanged points".
summary() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["indexed"], d["unchanged"], d["points_total"])'; }

if [[ " $parts " == *" abuse "* ]]; then
  export RAG_DATA_DIR="$work/data"
  "$rag" ingest examples/docs >/dev/null
  keys="$work/keys.toml"
  key="$("$rag" keys new --id load --role writer --groups '*' --keys-file "$keys" 2>/dev/null)"
  # Limits that 64 clients exceed: in-flight calls and calls per minute.
  printf 'max_in_flight = 48\nrequests_per_minute = 60000\n' >>"$keys"
  RAG_AUTH__KEYS_FILE="$keys" "$rag" serve --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
  server=$!
  addr=""
  for _ in $(seq 600); do
    addr="$(grep -o 'listening on [0-9.:]*' "$work/serve.log" | head -1 | cut -d' ' -f3 || true)"
    [ -n "$addr" ] && RAG_API_KEY="$key" "$rag" status --addr "http://$addr" >/dev/null 2>&1 && break
    sleep 0.2
  done
  (while kill -0 "$server" 2>/dev/null; do
     grep VmRSS "/proc/$server/status" | awk '{print $2}'; sleep 5
   done) >"$work/rss" 2>/dev/null &
  RAG_API_KEY="$key" nice -n 15 "$rag" load --addr "http://$addr" --seconds "$seconds" --json \
    --search-clients 57 --ask-clients 6 --ingest-folder examples/docs --max-tokens 32 \
    >"$work/load.json"
  hwm="$(grep VmHWM "/proc/$server/status" | awk '{print $2}')"
  kill "$server"; wait "$server" 2>/dev/null || true
  echo "## abuse: 64 clients, ${seconds} s, max_in_flight 48"
  python3 - "$work/load.json" "$work/rss" "$hwm" <<'PY' || failed=1
import json, sys
report = json.load(open(sys.argv[1]))
rss = [int(x) // 1024 for x in open(sys.argv[2]).read().split()]
unexpected = {}
for rpc in ("search", "ask", "ingest"):
    r = report.get(rpc)
    if not r:
        continue
    print(f"{rpc}: {r['calls']} calls, {r['per_second']}/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, codes {r['codes']}")
    for code, n in r["codes"].items():
        if code not in ("Ok", "ResourceExhausted"):
            unexpected[f"{rpc} {code}"] = n
print(f"service RSS every 5 s (MB): {rss}")
print(f"service peak RSS: {int(sys.argv[3]) // 1024} MB")
print(f"unexpected errors: {unexpected or 0}")
sys.exit(1 if unexpected else 0)
PY
  unset RAG_DATA_DIR
fi

if [[ " $parts " == *" hostile "* ]]; then
  echo "## hostile: half-sent and silent connections under the default limits"
  export RAG_DATA_DIR="$work/hostile"
  "$rag" ingest examples/docs >/dev/null
  # Keys off (loopback): what is probed is the connections, before any key is looked at.
  RAG_AUTH__ENABLED=false "$rag" serve --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    >"$work/hostile.log" 2>&1 &
  server=$!
  http=""; grpc=""
  for _ in $(seq 600); do
    http="$(grep -o 'http listening on [0-9.:]*' "$work/hostile.log" | head -1 | cut -d' ' -f4 || true)"
    grpc="$(grep -o '^rag: listening on [0-9.:]*' "$work/hostile.log" | head -1 | cut -d' ' -f4 || true)"
    [ -n "$http" ] && [ -n "$grpc" ] && curl -fsS -o /dev/null -X POST -H 'content-type: application/json' \
      -d '{"query":"hotel"}' "http://$http/v1/search" 2>/dev/null && break
    sleep 0.2
  done
  python3 - "$http" "$grpc" "$server" <<'PY' || failed=1
import json, socket, sys, threading, time, urllib.request
http, grpc, pid = sys.argv[1], sys.argv[2], sys.argv[3]
def addr(a):
    host, port = a.rsplit(":", 1)
    return host, int(port)
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
idle_rss = rss()
started = time.monotonic()
half = []
for _ in range(900):
    s = socket.create_connection(addr(http))
    s.sendall(b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
    half.append(s)
silent = [socket.create_connection(addr(grpc)) for _ in range(100)]
latencies, failures, stop = [], [], False
def real_client():
    while not stop:
        t = time.monotonic()
        try:
            req = urllib.request.Request(f"http://{http}/v1/search", method="POST",
                data=json.dumps({"query": "hotel limit per night"}).encode(),
                headers={"content-type": "application/json"})
            urllib.request.urlopen(req, timeout=30).read()
            latencies.append((time.monotonic() - t) * 1000)
        except Exception as e:
            failures.append(str(e))
        time.sleep(1)
client = threading.Thread(target=real_client); client.start()
def closed(s, deadline):
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            if not s.recv(4096):
                return time.monotonic() - started
        except socket.timeout:
            return None
        except OSError:
            return time.monotonic() - started
deadline = started + 180
half_closed = [closed(s, deadline) for s in half]
silent_closed = [closed(s, deadline) for s in silent]
peak_rss = rss()
stop = True; client.join()
ok = all(t is not None for t in half_closed + silent_closed) and not failures and latencies
lat = sorted(latencies)
print(f"900 half-sent HTTP requests: {sum(t is not None for t in half_closed)} closed, the last after {max(t or 0 for t in half_closed):.1f} s (header timeout 10 s)")
print(f"100 silent gRPC connections: {sum(t is not None for t in silent_closed)} closed, the last after {max(t or 0 for t in silent_closed):.1f} s (idle timeout 120 s)")
print(f"real searches meanwhile: {len(lat)} answered, p50 {lat[len(lat)//2]:.0f} ms, max {lat[-1]:.0f} ms, failures {len(failures)}")
print(f"service RSS: {idle_rss} MB before, {peak_rss} MB after")
sys.exit(0 if ok else 1)
PY
  kill "$server"; wait "$server" 2>/dev/null || true
  unset RAG_DATA_DIR
  echo "## hostile: the e2e probes"
  cargo test --locked -p rag --test e2e connections -- --nocapture --test-threads=1 2>/dev/null \
    | grep -oE '(flood: |half-sent: |the stalled ).*|test result: .*' || failed=1
fi

if [[ " $parts " == *" disk-full "* ]]; then
  echo "## disk-full"
  if [ "$(id -u)" != 0 ]; then
    echo "disk-full: SKIPPED (needs root to mount a small tmpfs)"
  else
    python3 - "$work/gen" <<'PY'
import os, random, sys
random.seed(7)
words = ("policy office travel budget laptop printer badge parking holiday meeting project "
         "report invoice contract server network backup password training canteen").split()
os.makedirs(sys.argv[1])
for i in range(1500):
    body = " ".join(random.choice(words) for _ in range(160))
    open(f"{sys.argv[1]}/note-{i:04d}.md", "w").write(f"# Note {i}\n\nReference R-{i}. {body}.\n")
PY
    RAG_DATA_DIR="$work/clean" "$rag" ingest --json "$work/gen" 2>/dev/null | summary >"$work/clean.txt"
    mkdir "$work/full" && mount -t tmpfs -o size=400m tmpfs "$work/full"
    export RAG_DATA_DIR="$work/full/data"
    "$rag" ingest "$work/gen" >"$work/full.log" 2>&1 &
    ingest=$!
    # Let it write for a while, then fill the disk to 20 MB free (under the 128 MB reserve).
    sleep "${FILL_AFTER:-30}"
    avail="$(df --output=avail -B1 "$work/full" | tail -1)"
    fallocate -l $((avail - 20000000)) "$work/full/ballast"
    rc=0; wait "$ingest" || rc=$?
    echo "ingest on a full disk: exit $rc: $(grep -m1 'free' "$work/full.log" || tail -1 "$work/full.log")"
    [ "$rc" != 0 ] || { echo "FAIL: the ingest did not notice the full disk"; failed=1; }
    # While the disk stays full the store is not even opened (loading it writes its log):
    # a clear error, not a crash.
    rc=0; "$rag" ingest --dry-run "$work/gen" >/dev/null 2>"$work/plan.log" || rc=$?
    echo "opening the store on the full disk: exit $rc: $(head -1 "$work/plan.log")"
    [ "$rc" = 1 ] || { echo "FAIL: expected a clean refusal (exit 1)"; failed=1; }
    rm "$work/full/ballast"
    after="$("$rag" ingest --json "$work/gen" 2>/dev/null | summary)"
    again="$("$rag" ingest --json "$work/gen" 2>/dev/null | summary)"
    read -r _ _ clean_points <"$work/clean.txt"
    read -r indexed unchanged points <<<"$after"
    echo "next run, space freed: $indexed indexed, $unchanged unchanged (written before the disk filled), $points points; clean run: $clean_points points; a third run (indexed, unchanged, points): $again"
    [ "$points" = "$clean_points" ] && [ "$(echo "$again" | cut -d' ' -f1)" = 0 ] || { echo "FAIL: the repaired store differs from a clean run"; failed=1; }
    unset RAG_DATA_DIR
  fi
fi
if [[ " $parts " == *" unwritable "* ]]; then
  echo "## unwritable"
  if [ "$(id -u)" != 0 ]; then
    echo "unwritable: SKIPPED (needs root: the ingest runs as nobody, root ignores permissions)"
  else
    [ -d "$work/gen" ] || { echo "unwritable: run with disk-full first (it makes the corpus)"; exit 1; }
    mkdir "$work/uw" && chown 65534:65534 "$work/uw" && chmod 755 "$work" "$work/gen"
    cp "$rag" "$work/uw/rag" && chmod 755 "$work/uw/rag"
    as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups env HOME="$work/uw" RAG_DATA_DIR="$work/uw/data" "$work/uw/rag" "$@"; }
    as_nobody ingest "$work/gen" >"$work/uw.log" 2>&1 &
    ingest=$!
    sleep "${FILL_AFTER:-30}"
    chmod -R a-w "$work/uw/data"
    rc=0; wait "$ingest" || rc=$?
    echo "ingest into a directory made read-only: exit $rc: $(grep '^rag:' "$work/uw.log" | tail -1)"
    [ "$rc" = 1 ] || { echo "FAIL: expected a clean failure (exit 1)"; failed=1; }
    chmod -R u+w "$work/uw/data"
    after="$(as_nobody ingest --json "$work/gen" 2>/dev/null | summary)"
    again="$(as_nobody ingest --json "$work/gen" 2>/dev/null | summary)"
    echo "writable again, next run (indexed, unchanged, points): $after; a third run: $again; clean run: $(cat "$work/clean.txt")"
    [ "$(echo "$after" | cut -d' ' -f3)" = "$(cut -d' ' -f3 "$work/clean.txt")" ] && [ "$(echo "$again" | cut -d' ' -f1)" = 0 ] || { echo "FAIL: the repaired store differs from a clean run"; failed=1; }
  fi
fi
exit "$failed"
