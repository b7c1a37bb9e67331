#!/usr/bin/env bash
# Builds a benchmark corpus from Debian documentation packages (real text and PDF manuals):
# the Debian Policy manual (its reStructuredText sources as .txt, and the PDF) and the
# Developer's Reference PDF. Usage: scripts/bench-corpus.sh DEST
set -euo pipefail
dest="${1:?usage: scripts/bench-corpus.sh DEST}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q debian-policy developers-reference >/dev/null)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
mkdir -p "$dest/policy" "$dest/pdf"
cp "$work"/x/usr/share/doc/debian-policy/policy.html/_sources/*.rst.txt "$dest/policy/"
gunzip -c "$work/x/usr/share/doc/debian-policy/policy.pdf.gz" > "$dest/pdf/debian-policy.pdf"
find "$work/x/usr/share/doc/developers-reference" -name '*.pdf*' | head -n 1 | while read -r f; do
  case "$f" in
    *.gz) gunzip -c "$f" > "$dest/pdf/developers-reference.pdf" ;;
    *) cp "$f" "$dest/pdf/developers-reference.pdf" ;;
  esac
done
du -sh "$dest"; find "$dest" -type f | wc -l
