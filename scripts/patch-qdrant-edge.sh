#!/usr/bin/env bash
# qdrant-edge 0.9.0 uses `debug_assert_matches`, which is still unstable on our toolchain.
# We build a patched copy taken from the cargo registry; the crate's source is never committed.
# Must run before the first cargo command on the workspace: [patch.crates-io] points here.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="0.9.0"
dest="$root/.patched/qdrant-edge-$version"
[ -f "$dest/.rag-patched" ] && exit 0

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
find_src() { ls -d "$cargo_home"/registry/src/*/"qdrant-edge-$version" 2>/dev/null | head -n 1; }
src="$(find_src || true)"
if [ -z "$src" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/src"
  printf '[package]\nname = "fetch-qdrant-edge"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nqdrant-edge = "=%s"\n' "$version" > "$tmp/Cargo.toml"
  echo 'fn main() {}' > "$tmp/src/main.rs"
  (cd "$tmp" && cargo fetch --quiet)
  src="$(find_src)"
fi

rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
cp -r "$src" "$dest"
file="$dest/src/shard/optimize.rs"
grep -q '^use std::debug_assert_matches;$' "$file"
sed -i '/^use std::debug_assert_matches;$/d' "$file"
# debug_assert_matches!(expr, Pattern, msg) -> debug_assert!(matches!(expr, Pattern), msg)
python3 - "$file" <<'PY'
import re, sys
path = sys.argv[1]
src = open(path).read()
pat = re.compile(r"debug_assert_matches!\(\s*(.*?),\s*(LockedSegment::Original\(_\)),\s*(\".*?\"),?\s*\);", re.S)
new, n = pat.subn(lambda m: f"debug_assert!(matches!({m.group(1)}, {m.group(2)}), {m.group(3)});", src)
assert n == 1, f"expected one debug_assert_matches! in {path}, found {n}"
open(path, "w").write(new)
PY
touch "$dest/.rag-patched"
echo "patched qdrant-edge $version at $dest"
