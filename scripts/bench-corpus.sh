#!/usr/bin/env bash
# Builds the benchmark corpus from Debian documentation packages, in the forms they ship:
#   policy/        the Debian Policy manual as HTML, plus its sub-policies (perl, menu) as HTML
#   devref/        the Developer's Reference as HTML
#   reference/     the Debian Reference as PDF (~300 pages)
#   maint-guide/   the New Maintainers' Guide as text
#   misc/          smaller texts of debian-policy (upgrading checklist, copyright format,
#                  autopkgtest, debconf specification) and the FHS 3.0 as PDF
# Each manual appears once, so no text is in the corpus twice.
# Usage: scripts/bench-corpus.sh DEST
set -euo pipefail
dest="${1:?usage: scripts/bench-corpus.sh DEST}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q debian-policy developers-reference debian-reference-en maint-guide >/dev/null)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
x="$work/x/usr/share"
mkdir -p "$dest"/{policy,devref,reference,maint-guide,misc}
cp "$x"/doc/debian-policy/policy.html/*.html "$dest/policy/"
for sub in perl-policy menu-policy; do
  for f in "$x/doc/debian-policy/$sub.html"/*.html; do cp "$f" "$dest/policy/$sub-$(basename "$f")"; done
done
cp "$x"/developers-reference/*.html "$dest/devref/"
cp "$x"/debian-reference/debian-reference.en.pdf "$dest/reference/"
gunzip -c "$x/doc/maint-guide/maint-guide.en.txt.gz" > "$dest/maint-guide/maint-guide.en.txt"
for t in upgrading-checklist copyright-format-1.0 autopkgtest debconf_specification; do
  gunzip -c "$x/doc/debian-policy/$t.txt.gz" > "$dest/misc/$t.txt"
done
gunzip -c "$x/doc/debian-policy/fhs/fhs-3.0.pdf.gz" > "$dest/misc/fhs-3.0.pdf"
du -sh "$dest"; find "$dest" -type f | wc -l
