#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one. CI runs exactly this.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./scripts/setup.sh
# The multilingual embedder: the Korean-over-English end-to-end test needs it.
./scripts/fetch-models.sh multilingual
# The corpora of two natural-question sets (issue 13): Git's FAQ and LibreOffice's task guides,
# made from pinned Debian packages outside the repository (kept between runs); the sets made
# must be the shipped ones. The retrieval regression test reads them.
export RAG_EVAL_CORPORA="${RAG_EVAL_CORPORA:-$HOME/.cache/rag/eval-corpora}"
sets="$(mktemp -d)"
python3 benches/eval/make-sets.py --only git-faq,libreoffice --out "$RAG_EVAL_CORPORA" \
  --sets-dir "$sets" >/dev/null
for set in "$sets"/*.jsonl; do
  cmp "$set" "benches/eval/$(basename "$set")"
done
rm -rf "$sets"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
. scripts/cpu-flags.sh
# compose.yaml as Compose reads it (Debian's docker-compose 1.29: the v1 file format without a
# top-level `name`), both profiles.
docker-compose -f compose.yaml config -q
docker-compose -f compose.yaml --profile gpu config -q
cargo test --workspace --locked
# The server backend's tests are #[ignore]d: they need a Qdrant server. QDRANT_URL names a
# running one; otherwise a Qdrant binary (QDRANT_BIN, or `qdrant` on PATH) is started here on
# free loopback ports with a scratch storage directory, and stopped afterwards. Every cargo call
# names --workspace: the features of the build above, so nothing is compiled again (with -p, a
# package's own feature set rebuilt qdrant-edge and the crates above it).
qdrant_bin="${QDRANT_BIN:-$(command -v qdrant || true)}"
if [ -z "${QDRANT_URL:-}" ] && [ -n "$qdrant_bin" ]; then
  scratch="$(mktemp -d)"
  read -r http_port grpc_port < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
  (cd "$scratch" && QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$http_port" \
    QDRANT__SERVICE__GRPC_PORT="$grpc_port" QDRANT__STORAGE__STORAGE_PATH="$scratch/storage" \
    QDRANT__STORAGE__SNAPSHOTS_PATH="$scratch/snapshots" QDRANT__TELEMETRY_DISABLED=true \
    exec "$qdrant_bin" >"$scratch/qdrant.log" 2>&1) &
  qdrant_pid=$!
  trap 'kill "$qdrant_pid" 2>/dev/null || true; wait "$qdrant_pid" 2>/dev/null || true; rm -rf "$scratch"' EXIT
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && break
    kill -0 "$qdrant_pid" 2>/dev/null || { cat "$scratch/qdrant.log"; exit 1; }
    sleep 0.2
  done
  export QDRANT_URL="http://127.0.0.1:$grpc_port"
  echo "test.sh: Qdrant $("$qdrant_bin" --version 2>/dev/null | cut -d' ' -f2) started at $QDRANT_URL for the server backend tests"
fi
if [ -n "${QDRANT_URL:-}" ]; then
  cargo test --workspace --locked --test server_store -- --include-ignored
  # The whole end-to-end suite again, every workspace in a collection of its own on the server.
  RAG_E2E_QDRANT_URL="$QDRANT_URL" cargo test --workspace --locked --test e2e
else
  echo "test.sh: Qdrant server backend tests SKIPPED (set QDRANT_URL=http://host:6334, or QDRANT_BIN to a Qdrant binary, to run them)"
fi
# Tests that start Qdrant processes themselves: one killed and restarted under load, two query
# services and a worker on one server, a three-peer cluster losing a peer.
if [ -n "$qdrant_bin" ]; then
  QDRANT_BIN="$qdrant_bin" cargo test --workspace --locked --test e2e server_backend -- --include-ignored
else
  echo "test.sh: Qdrant restart test SKIPPED (needs QDRANT_BIN or qdrant on PATH)"
fi
