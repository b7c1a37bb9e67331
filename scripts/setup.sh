#!/usr/bin/env bash
# Everything a fresh machine needs before the first build: system packages, the patched
# qdrant-edge copy, and the pinned models. Each step is skipped when already done.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v pdftotext >/dev/null || need+=(poppler-utils)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v c++ >/dev/null || need+=(g++)
# The tests validate compose.yaml with a real Compose parser (no container engine needed).
command -v docker-compose >/dev/null || need+=(docker-compose)
# The chat page's browser tests: headless chromium driven over WebDriver.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The OpenAI-compatible endpoint is tested with the official OpenAI Python client, in a virtual
# environment of its own (a distribution's Python refuses packages installed into it).
venv="${RAG_TEST_VENV:-$HOME/.cache/rag/py}"
if ! "$venv/bin/python" -c 'import openai' 2>/dev/null; then
  echo "setup: installing the test clients' Python packages into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$root/tests/e2e/clients/requirements.txt"
fi

"$root/scripts/patch-qdrant-edge.sh"
"$root/scripts/fetch-models.sh"
