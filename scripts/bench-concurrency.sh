#!/usr/bin/env bash
# Many people at once, measured (BENCHMARKS.md, "Concurrent answers"):
#   1. `rag bench --concurrency`: 1..16 concurrent Asks over gRPC next to raw llama.cpp batched
#      decoding of the same prompts, for each `llm.parallel` given;
#   2. `rag load` from a second process against `rag serve`: 64 Search clients with query
#      batching on and off; Ask clients alone and beside 32 Search clients and an ingesting
#      client.
# Usage: scripts/bench-concurrency.sh [RAG_BINARY] (default: target/release/rag, built if missing)
# Env: PARALLEL="4 8" (levels of llm.parallel), SECONDS_PER_RUN=60, LEVELS=1,2,4,8,16,
#      PARTS="asks search mixed"
# The load clients share the machine's cores with the service; they run at nice 15, as clients on
# other machines would take nothing from it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
rag="${1:-}"
if [ -z "$rag" ]; then
  cargo build --release --locked --bin rag
  rag="${CARGO_TARGET_DIR:-$root/target}/release/rag"
fi
parallel_levels="${PARALLEL:-4 8}"
seconds="${SECONDS_PER_RUN:-60}"
levels="${LEVELS:-1,2,4,8,16}"
parts="${PARTS:-asks search mixed}"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "# scripts/bench-concurrency.sh — $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo

if [[ " $parts " == *" asks "* ]]; then
  for p in $parallel_levels; do
    RAG_LLM__PARALLEL="$p" "$rag" bench --asks 1 --searches 20 --max-tokens 64 \
      --concurrency "$levels" | sed -n '/^## Concurrent/,/^peak RSS/p'
    echo
  done
fi


# A service over the sample folder, on a free port, its own data dir.
serve() {
  local name="$1"; shift
  "$rag" --data-dir "$work/data" ingest examples/docs >/dev/null
  # Loopback only, for the benchmark: no keys to check.
  env RAG_AUTH__ENABLED=false "$@" "$rag" --data-dir "$work/data" serve --listen 127.0.0.1:0 >"$work/$name.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do
    addr="$(grep -o 'listening on [0-9.:]*' "$work/$name.log" | head -1 | cut -d' ' -f3 || true)"
    [ -n "$addr" ] && "$rag" status --addr "http://$addr" >/dev/null 2>&1 && break
    sleep 0.2
  done
  [ -n "$addr" ] || { cat "$work/$name.log"; exit 1; }
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; }
rss() { grep VmHWM "/proc/$server/status" | awk '{print $2/1024 " MB"}'; }

load() { nice -n 15 "$rag" load --addr "http://$addr" --seconds "$seconds" --json "$@"; }

[[ " $parts " == *" search "* ]] && for batch in 32 1; do
  serve "search-$batch" RAG_QUERY__QUERY_BATCH="$batch"
  echo "## 64 Search clients, ${seconds} s, query_batch $batch"
  load --search-clients 64
  echo "service peak RSS: $(rss)"
  stop
done

[[ " $parts " == *" mixed "* ]] || exit 0
serve mixed
echo "## 4 Ask clients alone, ${seconds} s"
load --ask-clients 4
echo "## 4 Ask clients beside 32 Search clients and an ingesting client, ${seconds} s"
load --ask-clients 4 --search-clients 32 --ingest-folder examples/docs
echo "service peak RSS: $(rss)"
stop
