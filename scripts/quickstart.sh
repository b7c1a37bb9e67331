#!/usr/bin/env bash
# The main job end to end on the embedded store: fetch models, build, index the sample folder,
# serve, ask a question, print the grounded answer with its sources, stop the service.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
question="${1:-What is the hotel limit per night on business trips?}"
./scripts/setup.sh
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
cargo build --locked --bin rag
rag="${CARGO_TARGET_DIR:-$root/target}/debug/rag"

data="$(mktemp -d)"
log="$data/serve.log"
export RAG_DATA_DIR="$data/store"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT

# The service checks API keys: make one for this run (the service keeps only its digest).
export RAG_AUTH__KEYS_FILE="$data/keys.toml"
RAG_API_KEY="$("$rag" keys new --id quickstart --role admin --keys-file "$RAG_AUTH__KEYS_FILE" 2>/dev/null)"
export RAG_API_KEY

echo "== rag ingest examples/docs"
"$rag" ingest examples/docs

echo "== rag serve (in the background)"
"$rag" serve --listen 127.0.0.1:0 >"$log" 2>&1 &
server=$!
for _ in $(seq 1 600); do
  addr="$(sed -n 's/^rag: listening on //p' "$log" | head -n 1)"
  [ -n "$addr" ] && "$rag" status --addr "http://$addr" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.2
done
"$rag" status --addr "http://$addr"

echo "== rag ask \"$question\""
"$rag" ask --addr "http://$addr" "$question"
