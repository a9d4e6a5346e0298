#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# support-table.sh TABLE README: the README's support table (between the lines
# "<!-- support-table -->" and "<!-- /support-table -->") updated from TABLE, the table
# tests/vm/matrix.sh writes (tests/vm/.output/support.md): each kernel row of TABLE replaces
# the README's row of the same kernel line (5.10, 6.1, 6.12+deb12, 6.12+deb13, 6.18-fc: the
# point release may differ), the README's other rows stay, rows sorted by version. make
# test-vm runs it; commit README.md with the rows the run changed.
set -euo pipefail
table=$1 readme=$2

# key ROW: "| 6.12.117+deb12-amd64 | ..." -> "6.12+deb12"
key_awk='
function key(row,   k, f) {
	split(row, f, "|"); k = f[2]; gsub(/ /, "", k)
	tag = ""
	if (match(k, /\+deb[0-9]+/)) tag = substr(k, RSTART, RLENGTH)
	else if (k ~ /-fc-/) tag = "-fc"
	split(k, v, /[.+-]/)
	return v[1] "." v[2] tag
}'
grep -q '^<!-- support-table -->$' "$readme" && grep -q '^<!-- /support-table -->$' "$readme" || {
	echo "support-table: no <!-- support-table --> block in $readme" >&2
	exit 1
}
tmp=$(mktemp)
awk -v table="$table" "$key_awk"'
BEGIN {
	while ((getline line < table) > 0)
		if (line ~ /^\| [0-9]/) { new[key(line)] = line }
}
/^<!-- support-table -->$/ { print; inblock = 1; next }
/^<!-- \/support-table -->$/ {
	# the header, then every row: new ones replace old ones of the same kernel line
	print "| kernel | fentry | kprobe | tracepoint |"
	print "|---|---|---|---|"
	for (k in old) if (!(k in new)) rows[k] = old[k]
	for (k in new) rows[k] = new[k]
	n = 0
	for (k in rows) keys[++n] = k
	# sort by version (major, minor), then tag
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
		split(keys[i], a, /[.+-]/); split(keys[j], b, /[.+-]/)
		if (a[1] + 0 > b[1] + 0 || (a[1] == b[1] && a[2] + 0 > b[2] + 0) ||
		    (a[1] == b[1] && a[2] == b[2] && keys[i] > keys[j])) { t = keys[i]; keys[i] = keys[j]; keys[j] = t }
	}
	for (i = 1; i <= n; i++) print rows[keys[i]]
	print; inblock = 0; next
}
inblock { if ($0 ~ /^\| [0-9]/) old[key($0)] = $0; next }
{ print }
' "$readme" >"$tmp"
cat "$tmp" >"$readme"
rm -f "$tmp"
