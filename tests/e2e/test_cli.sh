#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# dstrace's command line end to end:
#   usage errors      exit 2, one line naming the option or value (plus, for what argp
#                     itself rejects, its "Try `dstrace --help'" hint), nothing else
#   runtime errors    exit 1, one line: not root, unwritable output file, a backend this
#                     kernel cannot run (fentry, kprobe), a bad DSTRACE_CONNECT_WAIT_MAX
#   --version, --help (ends with an EXAMPLES block naming every option)
#   -d ends by itself with exit 0; SIGTERM ends with exit 0 and the stats record
#   the longest valid -c, --backend tracepoint with the smallest --ringbuf-kb
#   text mode: the header, event lines, the per-process table, the summary line
#   -i 1: the table again and again, no event lines (text, and JSON process records)
#   -j: each event line is in the file while dstrace still runs
#   -v: "using backend" on stderr, how the cgroup hooks read the calling task
# Traffic goes to ::ffff:127.0.0.1 in a namespace with only loopback.
#
#   sudo tests/e2e/test_cli.sh
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROLE=cli
TCP_PORT=7100
UDP_PORT=7200
UDP_SRC=7300
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all)
# argp's hint after an option it rejects itself.
HINT_RE="^Try \`[^ ]+ --help' or \`[^ ]+ --usage' for more information\.$"

# run_dstrace BASE CMD_PREFIX... -- ARGS...: run "CMD_PREFIX dstrace ARGS" (bounded: 15 s,
# then SIGINT), stdout in BASE.out, stderr in BASE.err; exit status in RUN_STATUS.
RUN_STATUS=
run_dstrace() {
	local base=$1 pre=()
	shift
	while [[ $1 != -- ]]; do
		pre+=("$1")
		shift
	done
	shift
	(cd / && timeout -s INT -k 5 15 "${pre[@]}" "$DSTRACE" "$@") >"$base.out" 2>"$base.err"
	RUN_STATUS=$?
}

# one_line_verdict BASE: "exit=N stdout=empty stderr=one line" when the run ended
# as a usage or runtime error should: nothing on stdout, one line on stderr
# (an argp hint line after it does not count), no libbpf text.
one_line_verdict() {
	local base=$1 n extra
	n=$(grep -cv -E "$HINT_RE" "$base.err")
	extra=$(grep -c -i 'libbpf' "$base.err")
	printf 'exit=%s stdout=%s stderr=%s%s' "$RUN_STATUS" \
		"$([[ -s $base.out ]] && echo "$(wc -c <"$base.out")-bytes" || echo empty)" \
		"$([[ $n -eq 1 ]] && echo "one line" || echo "$n lines")" \
		"$([[ $extra -eq 0 ]] && echo "" || echo " with libbpf text")"
}

# usage_case NAME WHAT_RE ARGS...: a usage error; its line must match the extended regex
# WHAT_RE (the option and the value it names).
CASE_NO=0
usage_case() {
	local name=$1 re=$2 base
	shift 2
	CASE_NO=$((CASE_NO + 1))
	base=$WORK/usage$CASE_NO
	run_dstrace "$base" -- "$@"
	check_eq "usage error $name: exit status and output" \
		"exit=2 stdout=empty stderr=one line" "$(one_line_verdict "$base")"
	check_match "usage error $name: the message" "$re" \
		"$(grep -v -E "$HINT_RE" "$base.err" | head -n 1)"
}

# runtime_case NAME WHAT_RE [PREFIX... --] ARGS...: a runtime error (exit 1, one line).
runtime_case() {
	local name=$1 re=$2 base
	shift 2
	CASE_NO=$((CASE_NO + 1))
	base=$WORK/runtime$CASE_NO
	if [[ " $* " == *" -- "* ]]; then
		run_dstrace "$base" "$@"
	else
		run_dstrace "$base" -- "$@"
	fi
	check_eq "runtime error $name: exit status and output" \
		"exit=1 stdout=empty stderr=one line" "$(one_line_verdict "$base")"
	check_match "runtime error $name: the message" "$re" "$(head -n 1 "$base.err")"
}

# start_server: tcpserv6 on [::]:TCP_PORT in the namespace, until the test ends.
SERVER_PID=
start_server() {
	bg_start SERVER_PID "$ROLE" "$WORK/server" "$PROGS/tcpserv6" "$TCP_PORT"
	if ! wait_line "$WORK/server.out" '^listening' 5; then
		fail "tcpserv6 ready" "expected 'listening' within 5 s, got: $(cat "$WORK/server.err")"
		return 1
	fi
}

# mapped_connect NAME: tcpcli6 to ::ffff:127.0.0.1 (a connect and an accept); sets
# CLIENT_PID and CLIENT_LPORT.
CLIENT_PID=
CLIENT_LPORT=
mapped_connect() {
	run_in "$ROLE" 10 "$WORK/client-$1" "$PROGS/tcpcli6" ::ffff:127.0.0.1 "$TCP_PORT"
	CLIENT_PID=$RUN_PID
	CLIENT_LPORT=$(kv "$(head -n 1 "$WORK/client-$1.out")" lport)
	[[ $CLIENT_LPORT =~ ^[0-9]+$ ]] || CLIENT_LPORT=0
	if [[ $RUN_RC != 0 ]]; then
		fail "tcpcli6 ($1)" "expected exit 0, got $RUN_RC: $(cat "$WORK/client-$1.out")"
	fi
}

# elapsed_since T0: seconds since the EPOCHREALTIME T0, with one decimal.
elapsed_since() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# bg_dstrace NAME ARGS...: start "dstrace ARGS" in the background (from /), stdout in
# $WORK/NAME.out, stderr in $WORK/NAME.err; when it ends, "STATUS EPOCHREALTIME" goes to
# $WORK/NAME.status. Sets BGD_PID (dstrace's pid).
BGD_PID=
declare -A BGD_T0
bg_dstrace() {
	local name=$1 base=$WORK/$1 deadline=$((SECONDS + 5))
	shift
	rm -f "$base.pid" "$base.status"
	BGD_T0[$name]=$EPOCHREALTIME
	(
		cd / || exit
		"$DSTRACE" "$@" >"$base.out" 2>"$base.err" &
		echo "$!" >"$base.pid"
		wait "$!"
		echo "$? $EPOCHREALTIME" >"$base.status"
	) &
	BG_PIDS+=("$!")
	until [[ -s $base.pid ]]; do
		[[ $SECONDS -ge $deadline ]] && break
		sleep 0.01
	done
	BGD_PID=$(cat "$base.pid" 2>/dev/null)
	[[ -n $BGD_PID ]] && BG_PIDS+=("$BGD_PID")
}

# bg_dstrace_wait NAME SECONDS: wait until dstrace NAME has ended; sets RUN_STATUS and
# RUN_SECS (from its start to its end). After SECONDS: SIGINT, then SIGKILL, and
# RUN_STATUS "still running after SECONDS s".
RUN_SECS=
bg_dstrace_wait() {
	local base=$WORK/$1 deadline=$((SECONDS + $2)) end pid
	pid=$(cat "$base.pid" 2>/dev/null)
	until [[ -s $base.status ]]; do
		if [[ $SECONDS -ge $deadline ]]; then
			kill -INT "$pid" 2>/dev/null
			sleep 2
			kill -KILL "$pid" 2>/dev/null
			RUN_STATUS="still running after $2 s"
			RUN_SECS=
			return 1
		fi
		sleep 0.05
	done
	read -r RUN_STATUS end <"$base.status"
	RUN_SECS=$(awk -v a="${BGD_T0[$1]}" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
}

need_root
build_progs

# Runs that take seconds go in the background first, and are checked later: -d 2 (ends by
# itself), -c with 15 characters (the longest valid name), -v, --backend tracepoint (the
# backend this kernel can run) with the smallest --ringbuf-kb.
bg_dstrace dur -d 2 -j -o "$WORK/dur.jsonl"
bg_dstrace comm15 -c abcdefghijklmno -d 1 -j -o "$WORK/comm15.jsonl"
bg_dstrace verbose -v -d 1 -j -o "$WORK/verbose.jsonl"
bg_dstrace backend-tp --backend tracepoint --ringbuf-kb 4 -d 1 -j -o "$WORK/backend-tp.jsonl"

# --- usage errors ------------------------------------------------------------------------
log "usage errors"
usage_case "-p 0" "pid.*'?0'?" -p 0
usage_case "-p abc" "pid.*abc" -p abc
usage_case "-p 12abc" "pid.*12abc" -p 12abc
usage_case "-P 70000" "port.*70000" -P 70000
usage_case "-i 0" "interval.*'?0'?" -i 0
usage_case "-d -1" "duration.*-1" -d -1
usage_case "-d abc" "duration.*abc" -d abc
usage_case "-c with 16 characters" "comm.*abcdefghijklmnop" -c abcdefghijklmnop
usage_case "-c with 20 characters" "comm.*abcdefghijklmnopqrst" -c abcdefghijklmnopqrst
usage_case "-e bogus" "events.*bogus" -e bogus
usage_case "-e connect,bogus" "events.*connect,bogus" -e connect,bogus
usage_case "--backend nope" "backend.*nope" --backend nope
usage_case "--ringbuf-kb 3" "ringbuf.*'?3'?" --ringbuf-kb 3
usage_case "--ringbuf-kb 6 (not a power of two)" "ringbuf.*'?6'?" --ringbuf-kb 6
usage_case "--ringbuf-kb 2097152 (too big)" "ringbuf.*2097152" --ringbuf-kb 2097152
usage_case "an extra argument" "extra-arg" extra-arg
usage_case "an unknown option" "bogus-option" --bogus-option
usage_case "an option without its value" "requires an argument.*'?i'?" -i
# Options are checked before privileges: as nobody, still a usage error.
CASE_NO=$((CASE_NO + 1))
run_dstrace "$WORK/usage$CASE_NO" "${NOBODY[@]}" -- -p abc
check_eq "usage error -p abc as nobody: exit status and output" \
	"exit=2 stdout=empty stderr=one line" "$(one_line_verdict "$WORK/usage$CASE_NO")"


# --- runtime errors ----------------------------------------------------------------------
log "runtime errors"
runtime_case "not root" "root|CAP_|capabilit|[Pp]ermission" "${NOBODY[@]}" -- -d 1
runtime_case "not root, -j -o FILE" "root|CAP_|capabilit|[Pp]ermission" "${NOBODY[@]}" -- \
	-j -d 1 -o "/tmp/dstrace-cli-never-$$"
runtime_case "-o /proc/nonexistent/x" "/proc/nonexistent/x" -d 1 -o /proc/nonexistent/x
runtime_case "-o in a missing directory" "$WORK/missing/out.txt" -d 1 -o "$WORK/missing/out.txt"
runtime_case "--backend fentry (refused by this kernel)" "fentry" --backend fentry -d 1
runtime_case "--backend kprobe (no kprobes in this kernel)" "kprobe" --backend kprobe -d 1
runtime_case "DSTRACE_CONNECT_WAIT_MAX=10s" "DSTRACE_CONNECT_WAIT_MAX='10s'.*seconds" \
	env DSTRACE_CONNECT_WAIT_MAX=10s -- -d 1
runtime_case "DSTRACE_CONNECT_WAIT_MAX=0" "DSTRACE_CONNECT_WAIT_MAX='0'.*seconds" \
	env DSTRACE_CONNECT_WAIT_MAX=0 -- -d 1
check_eq "no output file left by the failed runs" "none" \
	"$(ls "$WORK/missing" "/tmp/dstrace-cli-never-$$" 2>/dev/null || echo none)"

# --- --version, --help ---------------------------------------------------------------------
run_dstrace "$WORK/version" -- --version
check_match "--version" '^exit=0 stderr=0 lines=1 dstrace [0-9]+\.[0-9]+(\.[0-9]+)?' \
	"exit=$RUN_STATUS stderr=$(wc -l <"$WORK/version.err") lines=$(wc -l <"$WORK/version.out") $(
		head -n 1 "$WORK/version.out")"
run_dstrace "$WORK/version-V" -- -V
check_eq "-V = --version" "exit=0 $(cat "$WORK/version.out")" \
	"exit=$RUN_STATUS $(cat "$WORK/version-V.out")"

run_dstrace "$WORK/help" -- --help
HELP=$WORK/help.out
check_eq "--help: exit status, stderr" "exit=0 stderr=empty" \
	"exit=$RUN_STATUS stderr=$([[ -s $WORK/help.err ]] && cat "$WORK/help.err" || echo empty)"
missing=
for opt in --json --interval --duration --pid --comm --port --tcp --udp --events --output \
	--backend --ringbuf-kb --verbose --help --version; do
	grep -q -- "$opt" "$HELP" || missing+=" $opt"
done
check_eq "--help: names every option" "missing: none" "missing:${missing:- none}"
# The EXAMPLES block: its header, then only "  dstrace ..." lines (or an indented "# ..."
# continuing an example's comment) to the end.
examples=$(sed -n '/^EXAMPLES/,$p' "$HELP" | tail -n +2 | sed '/^[[:space:]]*$/d')
check_match "--help: ends with an EXAMPLES block" \
	'^EXAMPLES:? examples=([3-9]|[1-9][0-9]) other=0 last=example$' \
	"$(grep -E '^EXAMPLES' "$HELP" | head -n 1) examples=$(grep -c '^  dstrace' <<<"$examples") other=$(
		grep -vcE '^  dstrace|^ +# ' <<<"$examples") last=$(
		sed '/^[[:space:]]*$/d' "$HELP" | tail -n 1 | grep -qE '^  dstrace|^ +# ' &&
			echo example || echo other)"

# --- the background runs: -d 2, -c with 15 characters, -v ---------------------------------
bg_dstrace_wait dur 60
check_eq "-d 2: exit status, stdout (all went to -o), stderr" "exit=0 stdout=empty stderr=Tracing" \
	"exit=$RUN_STATUS stdout=$([[ -s $WORK/dur.out ]] && head -c 100 "$WORK/dur.out" || echo empty) stderr=$(
		cut -c1-7 "$WORK/dur.err" | tr '\n' ' ' | sed 's/ $//')"
check_eq "-d 2: ended by itself after 1 s and within 60 s (took ${RUN_SECS:-?} s)" yes \
	"$(awk -v t="${RUN_SECS:-0}" 'BEGIN { print (t >= 1 && t < 60) ? "yes" : "no" }')"
check_match "-d 2: the stats record says about 2 s" \
	'^"stats" "tracepoint" [0-9]+ [0-9]+ (2|2\.[0-9]+|[3-9](\.[0-9]+)?)$' \
	"$(stats_record "$WORK/dur.jsonl" | jq -c '[.type, .backend, .events, .lost, .duration_s]' |
		tr -d '[]' | tr ',' ' ')" "stats, backend tracepoint, duration_s in [2, 10)"

bg_dstrace_wait comm15 20
check_eq "-c with 15 characters is accepted (-d 1)" "exit=0 stats" \
	"exit=$RUN_STATUS $(stats_record "$WORK/comm15.jsonl" 2>/dev/null | jq -r .type 2>/dev/null)"

bg_dstrace_wait backend-tp 20
check_eq "--backend tracepoint --ringbuf-kb 4 -d 1: exit status, stats record's backend" \
	"exit=0 backend=tracepoint" \
	"exit=$RUN_STATUS backend=$(stats_record "$WORK/backend-tp.jsonl" 2>/dev/null | jq -r .backend 2>/dev/null)"

bg_dstrace_wait verbose 20
check_eq "-v: exit status, 'using backend' on stderr" "exit=0 using backend tracepoint" \
	"exit=$RUN_STATUS $(grep -o 'using backend [a-z]*' "$WORK/verbose.err" | head -n 1)"
check_eq "-v: stdout stays empty (-o)" empty \
	"$([[ -s $WORK/verbose.out ]] && head -c 100 "$WORK/verbose.out" || echo empty)"
# the cgroup hooks read the calling task through its BTF where the kernel's verifier takes
# bpf_get_current_task_btf() in a cgroup sock_addr program (bpftool's own probe says)
if bpftool feature probe kernel 2>/dev/null |
	awk '/program type cgroup_sock_addr:/ { f = 1; next } f && /program type/ { f = 0 } f' |
	grep -qw bpf_get_current_task_btf; then
	want="through its task's BTF (bpf_get_current_task_btf)"
else
	want="by helper calls (no bpf_get_current_task_btf in cgroup programs here)"
fi
check_eq "-v: how the cgroup hooks read the calling task, as bpftool probes this kernel" \
	"$want" "$(sed -n 's/^dstrace: the cgroup hooks read the calling task //p' "$WORK/verbose.err")"
# the error-report hook is attached only where the kernel reports a failed connect's error
# before closing its socket: not on a kernel whose BTF has tcp_done_with_error()
if bpftool btf dump file /sys/kernel/btf/vmlinux | grep -q "FUNC 'tcp_done_with_error'"; then
	want="tp_sk_error_report not attached: not needed on a kernel with tcp_done_with_error()"
else
	want=""
fi
check_eq "-v: the error-report hook, as this kernel's BTF has it" "$want" \
	"$(sed -n 's/^dstrace: \([a-z_]*_error_report not attached: .*\)/\1/p' "$WORK/verbose.err")"

# --- -j flushing each event line, then SIGTERM ------------------------------------------------
lo_host_add "$ROLE"
start_server || exit
OUT=$WORK/term.jsonl
rm -f "$WORK/dstrace.log" # (dstrace_start must not read an older run's "Tracing")
if dstrace_start "$OUT"; then
	mapped_connect term
	EV_RE="\"type\":\"event\".*\"pid\":${CLIENT_PID}[,}]"
	if wait_line "$OUT" "$EV_RE" 5 && proc_alive "$DSTRACE_PID"; then
		check_eq "-j: the event line is in the file while dstrace runs, whole" \
			"connect $CLIENT_PID" "$(grep -m1 -E "$EV_RE" "$OUT" | jq -r '"\(.event) \(.pid)"' 2>&1)"
	else
		fail "-j: the event line is in the file while dstrace runs" \
			"expected the connect of pid $CLIENT_PID within 5 s, got: $(head -c 300 "$OUT")"
	fi
	kill -TERM "$DSTRACE_PID"
	if wait_pid "$DSTRACE_PID" 20; then
		rc=$WAIT_RC
	else
		kill -KILL "$DSTRACE_PID"
		wait "$DSTRACE_PID" 2>/dev/null
		rc="none: still running 20 s after SIGTERM"
	fi
	DSTRACE_PID=
	check_eq "SIGTERM: exit status" 0 "$rc"
	check_json_lines "SIGTERM: output ends with the stats record" "$OUT"
	check_eq "SIGTERM: the run's events and records are in the output" "events=2 records=2" \
		"events=$(events_in "$OUT" "$(ns_json "$ROLE")" \
			".pid == $CLIENT_PID or .pid == $SERVER_PID" | wc -l) records=$(
			jq -c "select(.type == \"process\" and (.pid == $CLIENT_PID or .pid == $SERVER_PID))" \
				"$OUT" | wc -l)"
fi

# --- text mode ---------------------------------------------------------------------------------
# A mapped connect (and its accept), a failed one, and a mapped UDP flow of 2 x 40 bytes.
TXT=$WORK/text.txt
bg_start RECV_PID "$ROLE" "$WORK/udp-recv" "$PROGS/udp6" recv -n 2 -t 60 "$UDP_PORT"
wait_line "$WORK/udp-recv.out" '^listening' 5 ||
	fail "udp6 recv ready" "expected 'listening' within 5 s, got: $(cat "$WORK/udp-recv.err")"
if dstrace_start_raw "$TXT"; then
	mapped_connect text
	run_in "$ROLE" 10 "$WORK/client-unreach" "$PROGS/tcpcli6" -6 ::ffff:127.0.0.1 "$TCP_PORT"
	UNREACH_PID=$RUN_PID
	run_in "$ROLE" 10 "$WORK/udp-send" "$PROGS/udp6" send -n 2 -s 40 -l "$UDP_SRC" \
		::ffff:127.0.0.1 "$UDP_PORT"
	SEND_PID=$RUN_PID
	wait_pid "$RECV_PID" 10 || stop_pid "$RECV_PID"
	dstrace_stop
	M='::ffff:127\.0\.0\.1'
	T='[0-9][0-9]:[0-9][0-9]:[0-9][0-9]' # (no {2}: mawk has no intervals)
	check_match "text: the header is the first line" \
		'^TIME +PID +COMM +EVENT +PROTO +LOCAL +REMOTE +RESULT$' "$(head -n 1 "$TXT")"
	check_match "text: the connect line" \
		"^$T +$CLIENT_PID +tcpcli6 +connect +tcp +$M:$CLIENT_LPORT +$M:$TCP_PORT +ok$" \
		"$(grep -E "^$T +$CLIENT_PID " "$TXT")"
	check_match "text: the accept line" \
		"^$T +$SERVER_PID +tcpserv6 +accept +tcp +$M:$TCP_PORT +$M:$CLIENT_LPORT +ok$" \
		"$(grep -E "^$T +$SERVER_PID " "$TXT")"
	check_match "text: the failed connect line (errno name)" \
		"^$T +$UNREACH_PID +tcpcli6 +connect +tcp +[^ ]+ +$M:$TCP_PORT +ENETUNREACH$" \
		"$(grep -E "^$T +$UNREACH_PID " "$TXT")"
	check_match "text: the UDP send line" \
		"^$T +$SEND_PID +udp6 +send +udp +[^ ]+:$UDP_SRC +$M:$UDP_PORT +ok$" \
		"$(grep -E "^$T +$SEND_PID " "$TXT")"
	check_match "text: the UDP recv line" \
		"^$T +$RECV_PID +udp6 +recv +udp +[^ ]+:$UDP_PORT +$M:$UDP_SRC +ok$" \
		"$(grep -E "^$T +$RECV_PID " "$TXT")"
	# Layout: header, event lines, one blank line, the table header, rows, the summary.
	layout=$(awk -v t="^$T " '
		NR == 1 { next }
		state == 0 && $0 ~ t { events++; next }
		state == 0 && $0 == "" { state = 1; next }
		state == 1 && /^PID +COMM +CONNECT +ACCEPT +SEND +RECV +FAILED +PEERS +BYTES$/ { state = 2; next }
		state == 2 && /^[0-9]+ events, [0-9]+ lost, in [0-9.]+ s \(backend [a-z]+\)$/ { state = 3; next }
		state == 2 && /^[0-9]+ / { rows++; next }
		{ bad++; if (!first) first = NR ": " $0 }
		END { printf("events=%s state=%d rows=%s unexpected=%d%s", (events ? "yes" : "no"), state,
			(rows >= 5 ? ">=5" : rows + 0), bad, (first ? " (" first ")" : "")) }' "$TXT")
	check_eq "text: layout (header, events, blank, table, summary last)" \
		"events=yes state=3 rows=>=5 unexpected=0" "$layout"
	# PID COMM CONNECT ACCEPT SEND RECV FAILED PEERS BYTES
	check_match "text: table row of the client" "^$CLIENT_PID +tcpcli6 +1 +0 +0 +0 +0 +1 +0$" \
		"$(grep -E "^$CLIENT_PID " "$TXT" | tail -n 1)"
	check_match "text: table row of the server" "^$SERVER_PID +tcpserv6 +0 +1 +0 +0 +0 +1 +0$" \
		"$(grep -E "^$SERVER_PID " "$TXT" | tail -n 1)"
	check_match "text: table row of the failed client" "^$UNREACH_PID +tcpcli6 +0 +0 +0 +0 +1 +1 +0$" \
		"$(grep -E "^$UNREACH_PID " "$TXT" | tail -n 1)"
	check_match "text: table row of the UDP sender" "^$SEND_PID +udp6 +0 +0 +2 +0 +0 +1 +80$" \
		"$(grep -E "^$SEND_PID " "$TXT" | tail -n 1)"
	check_match "text: table row of the UDP receiver" "^$RECV_PID +udp6 +0 +0 +0 +2 +0 +1 +80$" \
		"$(grep -E "^$RECV_PID " "$TXT" | tail -n 1)"
	nev=$(awk -v t="^$T " 'NR > 1 && $0 ~ t' "$TXT" | wc -l)
	check_match "text: the summary line counts the event lines" \
		"^$nev events, [0-9]+ lost, in [0-9]+\.[0-9] s \(backend tracepoint\)$" "$(tail -n 1 "$TXT")"
fi

# --- -i 1 ---------------------------------------------------------------------------------------
# Two runs at once, for ~3 s after a mapped connect: text (the table after a time line every
# second and at the end, no event lines) and JSON (process records every second, no events).
IVL=$WORK/ivl-text.out
IVJ=$WORK/ivl-json.jsonl
bg_dstrace ivl-text -i 1
IVL_PID=$BGD_PID
bg_dstrace ivl-json -j -i 1 -o "$IVJ"
IVJ_PID=$BGD_PID
if wait_line "$WORK/ivl-text.err" '^Tracing' 20 && wait_line "$WORK/ivl-json.err" '^Tracing' 20; then
	mapped_connect interval
	sleep 3.3
	kill -INT "$IVL_PID" "$IVJ_PID"
	bg_dstrace_wait ivl-text 20
	check_eq "-i 1 (text): exit status after SIGINT" 0 "$RUN_STATUS"
	T='[0-9][0-9]:[0-9][0-9]:[0-9][0-9]' # (no {2}: mawk has no intervals)
	got=$(awk -v t="^$T\$" '
		/^PID +COMM +CONNECT +ACCEPT +SEND +RECV +FAILED +PEERS +BYTES$/ {
			tables++; if (prev ~ t) timed++ }
		/^TIME +PID +COMM +EVENT/ { evheader++ }
		$0 ~ "^[0-9][0-9]:[0-9][0-9]:[0-9][0-9] +[0-9]+ " { evlines++ }
		{ prev = $0 }
		END { printf("tables=%s timed=%s event-header=%d event-lines=%d",
			(tables >= 3 ? ">=3" : tables + 0), (tables == timed ? "all" : timed + 0),
			evheader, evlines) }' "$IVL")
	check_eq "-i 1 (text, ~3 s): tables, each after a time line, no events" \
		"tables=>=3 timed=all event-header=0 event-lines=0" "$got"
	check_match "-i 1 (text): the client's row, in 3 tables or more" '^([3-9]|[1-9][0-9])$' \
		"$(grep -cE "^$CLIENT_PID +tcpcli6 +1 +0 +0 +0 +0 +1 +0$" "$IVL")"
	check_match "-i 1 (text): the summary line is last" \
		'^[0-9]+ events, [0-9]+ lost, in [0-9]+\.[0-9] s \(backend tracepoint\)$' "$(tail -n 1 "$IVL")"

	bg_dstrace_wait ivl-json 20
	check_eq "-j -i 1: exit status after SIGINT" 0 "$RUN_STATUS"
	check_json_lines "-j -i 1: JSON Lines ending with the stats record" "$IVJ"
	check_match "-j -i 1 (~3 s): the client's process record, again and again; no events" \
		'^records=([3-9]|[1-9][0-9]) events=0$' \
		"records=$(process_record "$IVJ" "$CLIENT_PID" | grep -c '"connect":1') events=$(
			jq -c 'select(.type == "event")' "$IVJ" | wc -l)"
else
	fail "-i 1: start" "expected 'Tracing' from both runs within 20 s, got: $(
		cat "$WORK/ivl-text.err" "$WORK/ivl-json.err")"
fi

stop_pid "$SERVER_PID"
summary
