#!/usr/bin/env bash
# The main job end to end on the embedded store: fetch models, build, index the sample folder,
# serve, ask a question, print the grounded answer with its sources and the chat page's address,
# stop the service. With --serve it keeps serving (the chat page on http://127.0.0.1:8080/)
# until Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
keep=0
question="What is the hotel limit per night in London?"
for arg in "$@"; do
  case "$arg" in
    --serve) keep=1 ;;
    *) question="$arg" ;;
  esac
done
http_listen="127.0.0.1:0"
[ "$keep" = 1 ] && http_listen="${RAG_QUICKSTART_HTTP:-127.0.0.1:8080}"
./scripts/setup.sh
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
. scripts/cpu-flags.sh
# The test suite's build, not `cargo build --bin rag`: the tests unify the dependencies'
# features differently, and a plain binary build would make ./scripts/test.sh compile
# llama.cpp, Qdrant's engine and most of the tree a second time. This builds them once.
cargo test --workspace --locked --no-run
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
"$rag" serve --listen 127.0.0.1:0 --http-listen "$http_listen" >"$log" 2>&1 &
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

http="$(sed -n 's/^rag: http listening on //p' "$log" | head -n 1)"
# The chat page is served by the same process (and asks the same engine).
python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1]).read()' "http://$http/"
echo
echo "== chat page: http://$http/ (paste the API key into its Settings: $RAG_API_KEY)"
if [ "$keep" = 1 ]; then
  echo "   serving until Ctrl-C"
  wait "$server"
else
  echo "   (the service stops now; ./scripts/quickstart.sh --serve keeps it on http://127.0.0.1:8080/)"
fi
