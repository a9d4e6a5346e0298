#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The documentation that ships with the package matches the program (no BPF, no root needed):
#   1. man/dstrace.8 lists exactly the options of "dstrace --help", and man/dstrace-report.8
#      exactly those of "dstrace report --help" (both read at run time: an option added to
#      the program and not to the page, or left in the page after it is gone, fails here);
#      both pages render with "man -l --warnings" without a warning.
#   2. The bash completion (dist/bash-completion/dstrace), sourced with and without the
#      bash-completion package: options, backends, event lists for -e, files for -o and for
#      dstrace report.
#
#   tests/e2e/test_docs.sh         (DSTRACE=path/to/dstrace, default ./dstrace)
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMPLETION=${COMPLETION:-$REPO_ROOT/dist/bash-completion/dstrace}
MAN_DIR=${MAN_DIR:-$REPO_ROOT/man}

if [[ ! -x $DSTRACE ]]; then
	fail "dstrace binary" "expected an executable $DSTRACE, got none (run make at the top)"
	summary
	exit 1
fi

# --- 1. man pages against --help ---------------------------------------------------------
# help_opts: the options (short and long, one per line, sorted) of the argp --help text on
# stdin, from its option lines only ("  -j, --json  ...", "      --backend=NAME  ...").
help_opts() {
	sed -nE -e 's/^ {1,8}(-[^-, ]), +(--[a-z][a-z0-9-]*).*/\1\n\2/p' \
		-e 's/^ {1,8}(--[a-z][a-z0-9-]*).*/\1/p' | sort -u
}

# man_opts: the same from a rendered man page on stdin: the tagged paragraphs of its
# OPTIONS section ("       -j, --json", "       --tcp  Only TCP.").
man_opts() {
	sed -n '/^OPTIONS$/,/^[A-Z]/p' | sed -nE \
		-e 's/^ {7}(-[^-, ]), (--[a-z][a-z0-9-]*).*/\1\n\2/p' \
		-e 's/^ {7}(--[a-z][a-z0-9-]*).*/\1/p' \
		-e 's/^ {7}(-[^-, ])( .*)?$/\1/p' | sort -u
}

# compare_opts NAME HELP_OPTS MAN_OPTS: two checks, one per direction.
compare_opts() {
	local only_help only_man
	only_help=$(comm -23 <(printf '%s\n' "$2") <(printf '%s\n' "$3") | tr '\n' ' ')
	only_man=$(comm -13 <(printf '%s\n' "$2") <(printf '%s\n' "$3") | tr '\n' ' ')
	check_eq "$1: every --help option is in the page" "none missing" \
		"${only_help:+missing: $only_help}${only_help:-none missing}"
	check_eq "$1: every option of the page is in --help" "none extra" \
		"${only_man:+extra: $only_man}${only_man:-none extra}"
}

render() { MANWIDTH=200 man -l "$1" 2>/dev/null; }

# The comparison itself can fail: a --help with one option more than the page, and a page
# with one more than --help, are both caught.
fake_help=$'  -j, --json   one JSON document\n      --fake-option=X   not in the page\n  -h, --help   show this help'
got=$(comm -23 <(help_opts <<<"$fake_help") <(render "$MAN_DIR/dstrace-report.8" | man_opts) | tr '\n' ' ')
check_eq "self-check: an option only in --help is found" "--fake-option " "$got"
got=$(comm -13 <(printf -- '--json\n-j\n') <(render "$MAN_DIR/dstrace-report.8" | man_opts) | tr '\n' ' ')
check_eq "self-check: an option only in the page is found" "--help -h " "$got"

for page in dstrace dstrace-report; do
	if [[ $page == dstrace ]]; then
		h=$("$DSTRACE" --help 2>&1 | help_opts)
	else
		h=$("$DSTRACE" report --help 2>&1 | help_opts)
	fi
	m=$(render "$MAN_DIR/$page.8" | man_opts)
	log "$page: --help has $(wc -l <<<"$h") options, the page $(wc -l <<<"$m")"
	if [[ $(wc -l <<<"$h") -lt 4 ]]; then
		fail "$page: options in --help" "expected at least 4, got: $h"
	fi
	compare_opts "$page(8)" "$h" "$m"
	warnings=$(MANWIDTH=80 man -l --warnings "$MAN_DIR/$page.8" 2>&1 >/dev/null)
	check_eq "$page(8): man -l --warnings renders without a warning" "" "$warnings"
	check_match "$page(8): has NAME, SYNOPSIS, OPTIONS, EXIT STATUS, FILES, EXAMPLES" \
		'^NAME SYNOPSIS DESCRIPTION OPTIONS .*EXIT STATUS .*FILES EXAMPLES SEE ALSO $' \
		"$(render "$MAN_DIR/$page.8" | grep -E '^[A-Z][A-Z ]+$' | tr '\n' ' ')"
done
check_match "dstrace(8): has BACKENDS with every backend" '^BACKENDS fentry kprobe tracepoint$' \
	"$(render "$MAN_DIR/dstrace.8" | sed -n '/^BACKENDS$/,/^[A-Z]/p' |
		grep -oE '^(BACKENDS|       (fentry|kprobe|tracepoint))\b' | tr -s ' ' | tr '\n' ' ' | sed 's/ $//; s/  */ /g')"

# --- 2. bash completion --------------------------------------------------------------------
# complete_words MODE WORD...: the completions (sorted, one per line) for the command line
# WORD... with the cursor at the end of the last word (give "" for a new word). MODE full:
# with /usr/share/bash-completion/bash_completion loaded; bare: without it. The command word
# is "$DSTRACE" (the completion runs it for --help). As bash splits a line at "=", give
# "--backend" "=" "tr" for --backend=tr.
complete_words() {
	local mode=$1
	shift
	(cd "$WORK/files" && bash --norc -c '
		mode=$1 comp=$2
		shift 2
		if [[ $mode == full ]]; then
			. /usr/share/bash-completion/bash_completion || exit 3
		fi
		. "$comp" || exit 3
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		# The line as typed: no blanks around a "=" bash split at.
		COMP_LINE=$1
		for ((i = 2; i <= $#; i++)); do
			[[ ${!i} == = || ${COMP_WORDS[i - 2]} == = ]] || COMP_LINE+=" "
			COMP_LINE+=${!i}
		done
		COMP_POINT=${#COMP_LINE}
		_dstrace "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$mode" "$COMPLETION" "$DSTRACE" "$@")
}

# check_comp NAME EXPECTED WORD...: EXPECTED is the completions, space-separated, sorted.
check_comp() {
	local name=$1 want=$2 mode got
	shift 2
	for mode in full bare; do
		got=$(complete_words "$mode" "$@" | tr '\n' ' ' | sed 's/ $//')
		check_eq "completion ($mode) $name: dstrace $*<TAB>" "$want" "$got"
	done
}

mkdir -p "$WORK/files/logs"
touch "$WORK/files/audit.jsonl" "$WORK/files/audit.jsonl.1" "$WORK/files/other.txt"
if [[ ! -r /usr/share/bash-completion/bash_completion ]]; then
	fail "bash-completion installed" "expected /usr/share/bash-completion/bash_completion, got none"
fi

check_comp "long options by prefix" "--backend=" --ba
check_comp "options starting --t and --u" "--tcp" --t
check_comp "backends" "auto fentry kprobe tracepoint" --backend ""
check_comp "backends by prefix" "tracepoint" --backend t
check_comp "backend after =" "kprobe" --backend = k
check_comp "event names" "connect" -e con
check_comp "event list: the last item" "connect,accept" -e connect,ac
check_comp "event list: a new item, none twice" \
	"connect,accept,bind connect,accept,existing connect,accept,recv connect,accept,send" \
	--events connect,accept,
check_comp "event list after =" "connect,accept" --events = connect,a
check_comp "output file" "audit.jsonl audit.jsonl.1" -o aud
check_comp "output file after =" "audit.jsonl audit.jsonl.1" --output = aud
check_comp "no completion for a number" "" --interval ""
check_comp "the report command" "report" rep
check_comp "report files" "audit.jsonl audit.jsonl.1" report au
check_comp "report options" "--help --json" report --
# Every long option of --help, and nothing else, for "--".
want=$("$DSTRACE" --help | help_opts | grep -- '^--' | while read -r o; do
	# The completion offers "--name=" for an option with an argument.
	if "$DSTRACE" --help | grep -qE -- "^ +(-., )?$o="; then echo "$o="; else echo "$o"; fi
done | sort | tr '\n' ' ' | sed 's/ $//')
check_comp "every long option of --help" "$want" --

# --- 3. the DaemonSet manifest ---------------------------------------------------------------
# It parses, and says what its comments explain: host pid namespace, the capabilities
# dstrace checks for, the mounts it reads.
got=$(python3 - "$REPO_ROOT/dist/daemonset.yaml" 2>&1 <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ds = next(d for d in docs if d["kind"] == "DaemonSet")
pod = ds["spec"]["template"]["spec"]
c = pod["containers"][0]
caps = sorted(c["securityContext"]["capabilities"]["add"])
mounts = sorted(m["mountPath"] for m in c["volumeMounts"])
print(" ".join(d["kind"] for d in docs), "hostPID=%s" % pod["hostPID"],
      "audit=%s" % ("--audit" in c["command"]), ",".join(caps), ",".join(mounts))
PY
)
check_eq "dist/daemonset.yaml parses: kinds, hostPID, --audit, capabilities, mounts" \
	"Namespace DaemonSet hostPID=True audit=True BPF,DAC_READ_SEARCH,NET_ADMIN,PERFMON,SYS_PTRACE,SYS_RESOURCE /sys/fs/bpf,/sys/fs/cgroup,/sys/kernel/btf,/sys/kernel/tracing,/var/log/dstrace" \
	"$got"

# --- 4. the README's support table -------------------------------------------------------------
# Written by make test-vm (tests/vm/support-table.sh): between its markers, the header and one
# row per kernel line, four cells each; and the script keeps a row it has no news of while
# replacing one it has (a point release newer).
block=$(sed -n '/^<!-- support-table -->$/,/^<!-- \/support-table -->$/p' "$REPO_ROOT/README.md")
check_eq "README support table: header, then rows of four cells" "ok" \
	"$(awk 'NR == 1 || /^<!--/ { next } NR == 2 { if ($0 != "| kernel | fentry | kprobe | tracepoint |") { print "bad header: " $0; exit } next }
		NR == 3 { next } { if (gsub(/\|/, "|") != 5 || $0 !~ /^\| [0-9]+\.[0-9]+/) { print "bad row: " $0; exit } rows++ }
		END { if (rows >= 1) print "ok" }' <<<"$block" | head -n 1)"
printf '%s\n' '<!-- support-table -->' '| kernel | fentry | kprobe | tracepoint |' '|---|---|---|---|' \
	'| 6.1.0-1-amd64 | pass | pass | refused: old |' '| 6.12.1+deb12-amd64 | pass | pass | pass |' \
	'<!-- /support-table -->' >"$WORK/readme.md"
printf '%s\n' '| kernel | fentry | kprobe | tracepoint |' '|---|---|---|---|' \
	'| 6.12.9+deb12-amd64 | pass | FAIL | pass |' '| 5.10.0-9-amd64 | refused: x | refused: y | refused: z |' >"$WORK/support.md"
"$REPO_ROOT/tests/vm/support-table.sh" "$WORK/support.md" "$WORK/readme.md"
check_eq "support-table.sh: new rows replace their kernel line's, others stay, by version" \
	"| 5.10.0-9-amd64 | refused: x | refused: y | refused: z |;| 6.1.0-1-amd64 | pass | pass | refused: old |;| 6.12.9+deb12-amd64 | pass | FAIL | pass |" \
	"$(grep '^| [0-9]' "$WORK/readme.md" | paste -sd ';')"

summary
