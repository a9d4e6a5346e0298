#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Build the Debian package from this tree: scripts/build-deb.sh [OUTDIR] (default: ..).
# dpkg-buildpackage writes its outputs to the parent of the source directory and leaves
# debian/.debhelper, debian/dstrace/ ... behind: it runs on a copy of the tree in a temporary
# directory (the files git knows, or everything but build outputs outside a git checkout),
# and only the .deb, .buildinfo and .changes come back, to OUTDIR. Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-..}
version=$(dpkg-parsechangelog -S Version)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dstrace-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src=$tmp/dstrace-${version%%-*}
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked and new (not ignored) files that exist: a file deleted in the work tree stays out.
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[[ -e $f || -L $f ]] && printf '%s\0' "$f"
		done | xargs -0 -r cp --parents -P -t "$src"
else
	tar --exclude=./.output --exclude=./dstrace --exclude=./dstrace-san \
		--exclude='./tests/*/.output' --exclude=./bench/.output -cf - . | tar -xf - -C "$src"
fi
(cd "$src" && dpkg-buildpackage -b -us -uc) >"$tmp/build.log" 2>&1 || {
	cat "$tmp/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed" >&2
	exit 1
}
mkdir -p "$out"
cp "$tmp"/*.deb "$tmp"/*.buildinfo "$tmp"/*.changes "$out"/
for f in "$tmp"/*.deb; do
	echo "$out/${f##*/}"
done
