#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer, nightly toolchain) of the extractors and of
# request handling: scripts/fuzz.sh [target|all] [seconds per target]. Targets live in
# tests/fuzz/fuzz_targets; each grows its corpus in tests/fuzz/corpus/<target> (kept in the
# repository, minimised), seeded from the sample documents. A crash leaves its input in
# tests/fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${1:-all}"
seconds="${2:-600}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
# The PDF target hands its inputs to the real `rag extract-pdf` helper, as the service does.
if [ -z "${RAG_BIN:-}" ]; then
  cargo build --locked --bin rag
  RAG_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/rag"
fi
export RAG_BIN
# Sanitizer builds go to a target directory of their own.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/rag/fuzz-target}"

seed() { # target, files...
  local dir="tests/fuzz/corpus/$1"; shift
  mkdir -p "$dir"
  if [ -z "$(ls -A "$dir")" ]; then cp "$@" "$dir/"; fi
}
seed extract_pdf examples/docs/finance/*.pdf tests/fixtures/*.pdf
seed extract_html README.md
seed extract_text examples/docs/handbook/*.md examples/docs/it/*.txt
seed requests examples/docs/it/vpn-setup.txt examples/docs/handbook/복지-안내.md

# The repository keeps at most 2 MB of each corpus: its smallest inputs, which carry most of
# the coverage; a longer campaign starts from them.
trim() {
  python3 - "$1" <<'PY'
import os, sys
d = sys.argv[1]
files = sorted((os.path.getsize(os.path.join(d, f)), f) for f in os.listdir(d))
total = 0
for size, f in files:
    total += size
    if total > 2_000_000:
        os.remove(os.path.join(d, f))
PY
}

targets=(extract_docx extract_html extract_text extract_pdf requests)
[ "$target" = all ] || targets=("$target")
for t in "${targets[@]}"; do
  echo "fuzz.sh: $t for $seconds s"
  # Documents up to 64 KiB, requests up to 4 KiB (a question is at most a few thousand
  # characters); 20 s per input (the PDF helper's own timeout is 5 s).
  max_len=65536
  [ "$t" = requests ] && max_len=4096
  cargo +nightly fuzz run --fuzz-dir tests/fuzz "$t" "tests/fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
  cargo +nightly fuzz cmin --fuzz-dir tests/fuzz "$t" "tests/fuzz/corpus/$t" >/dev/null 2>&1 || true
  trim "tests/fuzz/corpus/$t"
done
