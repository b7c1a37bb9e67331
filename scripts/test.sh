#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one. CI runs exactly this.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./scripts/setup.sh
# The multilingual embedder: the Korean-over-English end-to-end test needs it.
./scripts/fetch-models.sh multilingual
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
# compose.yaml as Compose reads it (Debian's docker-compose 1.29: the v1 file format without a
# top-level `name`), both profiles.
docker-compose -f compose.yaml config -q
docker-compose -f compose.yaml --profile gpu config -q
cargo test --workspace --locked
# The server backend's tests are #[ignore]d: they need a running Qdrant.
if [ -n "${QDRANT_URL:-}" ]; then
  cargo test --locked -p rag-store --test server_store -- --include-ignored
else
  echo "test.sh: Qdrant server backend tests SKIPPED (set QDRANT_URL=http://host:6334 to run them)"
fi
