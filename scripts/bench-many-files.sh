#!/usr/bin/env bash
# Builds a folder of N small text files (default 10000; one chunk each: a paragraph of the Debian
# Reference cut to its first 40 words), spread over 100 sub-folders, with mtimes an hour in the past (as a real folder's
# would be; files changed within seconds of a run are always re-read). It measures what an
# incremental re-run of a large folder costs. Usage: scripts/bench-many-files.sh DEST [N]
set -euo pipefail
dest="${1:?usage: scripts/bench-many-files.sh DEST [N]}"
n="${2:-10000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q debian-reference-en >/dev/null)
dpkg-deb -x "$work"/debian-reference-en_*.deb "$work/x"
gunzip -c "$work/x/usr/share/debian-reference/debian-reference.en.txt.gz" > "$work/ref.txt"
python3 - "$work/ref.txt" "$dest" "$n" <<'PY'
import os, sys, time
src, dest, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
paragraphs = [p.strip() for p in open(src, encoding="utf-8").read().split("\n\n")]
paragraphs = [" ".join(p.split()[:40]) for p in paragraphs if len(p.split()) >= 8]
past = time.time() - 3600
for i in range(n):
    folder = os.path.join(dest, f"part-{i % 100:02d}")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"note-{i:05d}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"Note {i}. {paragraphs[i % len(paragraphs)]}\n")
    os.utime(path, (past, past))
print(f"{n} files from {len(paragraphs)} paragraphs in {dest}")
PY
