#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# dstrace's filters end to end: -p (one pid, two pids), -c, -P (a port at the local end of
# some events and at the remote end of others), --tcp, --udp, -e (one kind, several kinds),
# and a combination of two. Each runs dstrace with that filter over a fresh copy of the same
# known mix of traffic, then checks that exactly the events the filter lets through appear,
# field by field, and that the per-process records count only the filtered traffic.
#
#   sudo tests/e2e/test_filters.sh
#
# ONLY=REGEX runs only the cases whose name matches the extended REGEX.
# The mix, in one namespace with only loopback (the programs are tests/progs):
#   S   tcpserv6 -n 4 on [::]:7100 (IPV6_V6ONLY=0)
#   C1  tcpcli6 ::ffff:127.0.0.1 7100   mapped connect (C1) + accept (S)
#   C2  tcpcli4 127.0.0.1 7100          an IPv4 client: accept (S) only
#   C3  tcpcli6 ::1 7100                plain IPv6: nothing
#   C4  tcp6mt -n mt-connector ::ffff:127.0.0.1 7100
#                                       mapped connect from a second thread (tid != pid)
#                                       that named itself mt-connector (its events' comm;
#                                       the process keeps its name, tcp6mt) + accept (S)
#   C5  tcpcli6 -6 ::ffff:127.0.0.1 7100  IPV6_V6ONLY socket: failed connect, ENETUNREACH
#   R1  udp6 recv -e on [::]:7200, U1 udp6 send -l 7300 -w: 3 x 100 bytes each way:
#       send (U1), recv (R1), send (R1, the echo), recv (U1)
#   R2  udp6 recv on [::]:7201, U2 udp6 send -l 7301: 2 x 50 bytes: send (U2), recv (R2)
#   R3  udp6 recv on [::]:7202, U3 udp6 send to ::1: plain IPv6, nothing
#   R4  udp6 recv on [::]:7203, U4 udp6 send -m connect -l 7302: connect() then 2 x 30 bytes:
#       connect (U4, UDP), send (U4), recv (R4)
# The clients start under a gate (bg_start_gated), so their pids are known before dstrace
# starts and before they do anything. Every event in the output, from any namespace, must
# also pass the filter (dstrace filters machine-wide).
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROLE=flt
TCP_PORT=7100
UDP1_PORT=7200 UDP1_SRC=7300 UDP1_N=3 UDP1_SIZE=100
UDP2_PORT=7201 UDP2_SRC=7301 UDP2_N=2 UDP2_SIZE=50
UDP3_PORT=7202
UDP4_PORT=7203 UDP4_SRC=7302 UDP4_N=2 UDP4_SIZE=30
MAPPED=::ffff:127.0.0.1

SERVERS=(S R1 R2 R3 R4)
CLIENTS=(C1 C2 C3 C4 C5 U1 U2 U3 U4)
# each program's process name: its process record's comm, whichever thread acted
declare -A PNAME=([S]=tcpserv6 [C1]=tcpcli6 [C2]=tcpcli4 [C3]=tcpcli6 [C4]=tcp6mt [C5]=tcpcli6
	[U1]=udp6 [U2]=udp6 [U3]=udp6 [U4]=udp6 [R1]=udp6 [R2]=udp6 [R3]=udp6 [R4]=udp6)
declare -A PID RC

# --- one copy of the traffic ---------------------------------------------------------------
# mix_start BASE: start the servers (and wait until they listen) and the gated clients.
mix_start() {
	local base=$1 who
	PID=()
	RC=()
	bg_start 'PID[S]' "$ROLE" "$base-S" "$PROGS/tcpserv6" -n 4 "$TCP_PORT"
	bg_start 'PID[R1]' "$ROLE" "$base-R1" "$PROGS/udp6" recv -e -n "$UDP1_N" -t 5 "$UDP1_PORT"
	bg_start 'PID[R2]' "$ROLE" "$base-R2" "$PROGS/udp6" recv -n "$UDP2_N" -t 5 "$UDP2_PORT"
	bg_start 'PID[R3]' "$ROLE" "$base-R3" "$PROGS/udp6" recv -n 1 -t 5 "$UDP3_PORT"
	bg_start 'PID[R4]' "$ROLE" "$base-R4" "$PROGS/udp6" recv -n "$UDP4_N" -t 5 "$UDP4_PORT"
	for who in "${SERVERS[@]}"; do
		if ! wait_line "$base-$who.out" '^listening' 5; then
			fail "server $who ready" "expected 'listening' within 5 s, got: $(
				cat "$base-$who.out" "$base-$who.err")"
			return 1
		fi
	done
	bg_start_gated 'PID[C1]' "$ROLE" "$base-C1" "$PROGS/tcpcli6" "$MAPPED" "$TCP_PORT"
	bg_start_gated 'PID[C2]' "$ROLE" "$base-C2" "$PROGS/tcpcli4" 127.0.0.1 "$TCP_PORT"
	bg_start_gated 'PID[C3]' "$ROLE" "$base-C3" "$PROGS/tcpcli6" ::1 "$TCP_PORT"
	bg_start_gated 'PID[C4]' "$ROLE" "$base-C4" "$PROGS/tcp6mt" -n mt-connector "$MAPPED" \
		"$TCP_PORT"
	bg_start_gated 'PID[C5]' "$ROLE" "$base-C5" "$PROGS/tcpcli6" -6 "$MAPPED" "$TCP_PORT"
	bg_start_gated 'PID[U1]' "$ROLE" "$base-U1" "$PROGS/udp6" send -n "$UDP1_N" \
		-s "$UDP1_SIZE" -l "$UDP1_SRC" -w "$MAPPED" "$UDP1_PORT"
	bg_start_gated 'PID[U2]' "$ROLE" "$base-U2" "$PROGS/udp6" send -n "$UDP2_N" \
		-s "$UDP2_SIZE" -l "$UDP2_SRC" "$MAPPED" "$UDP2_PORT"
	bg_start_gated 'PID[U3]' "$ROLE" "$base-U3" "$PROGS/udp6" send -n 1 -s 10 ::1 "$UDP3_PORT"
	bg_start_gated 'PID[U4]' "$ROLE" "$base-U4" "$PROGS/udp6" send -m connect -n "$UDP4_N" \
		-s "$UDP4_SIZE" -l "$UDP4_SRC" "$MAPPED" "$UDP4_PORT"
}

# mix_run BASE: open the gates one client at a time, then wait for the servers.
mix_run() {
	local base=$1 who
	for who in "${CLIENTS[@]}"; do
		if ! gate_open "$base-$who"; then
			RC[$who]=gate
			continue
		fi
		if wait_pid "${PID[$who]}" 10; then
			RC[$who]=$WAIT_RC
		else
			stop_pid "${PID[$who]}"
			RC[$who]=timeout
		fi
	done
	for who in "${SERVERS[@]}"; do
		if wait_pid "${PID[$who]}" 10; then
			RC[$who]=$WAIT_RC
		else
			stop_pid "${PID[$who]}"
			RC[$who]=timeout
		fi
	done
}

# mix_outcome BASE: what each program did, in one line (see MIX_EXPECTED).
mix_outcome() {
	local base=$1 who line out=()
	for who in "${CLIENTS[@]}" "${SERVERS[@]}"; do
		line=$(head -n 1 "$base-$who.out" 2>/dev/null)
		case $who in
		C*) out+=("$who=${RC[$who]}:${line%% *}$(kv "$line" errno | sed 's/^/\//')") ;;
		U*) out+=("$who=${RC[$who]}:${line%% *}/$(kv "$line" count)$(kv "$line" echoed |
			sed 's/^/\/echoed=/')") ;;
		S) out+=("$who=${RC[$who]}") ;;
		R*) line=$(grep '^received' "$base-$who.out")
			out+=("$who=${RC[$who]}:$(kv "$line" count)x$(kv "$line" wire)") ;;
		esac
	done
	echo "${out[*]}"
}
MIX_EXPECTED="C1=0:connected C2=0:connected C3=0:connected C4=0:connected"
MIX_EXPECTED+=" C5=1:failed/ENETUNREACH U1=0:sent/$UDP1_N/echoed=$UDP1_N U2=0:sent/$UDP2_N"
MIX_EXPECTED+=" U3=0:sent/1 U4=0:sent/$UDP4_N S=0 R1=0:${UDP1_N}xipv4 R2=0:${UDP2_N}xipv4"
MIX_EXPECTED+=" R3=0:1xipv6 R4=0:${UDP4_N}xipv4"

# mix_units BASE: the mapped traffic of the mix as a JSON array, one object per expected
# event with the event's fields plus who (the program), n (datagrams or connections) and
# bytes, from the pids and the ports the programs reported.
mix_units() {
	local base=$1 l1 l2 l4 t4 pids="{" who
	l1=$(kv "$(head -n 1 "$base-C1.out")" lport)
	l2=$(kv "$(head -n 1 "$base-C2.out")" lport)
	l4=$(kv "$(head -n 1 "$base-C4.out")" lport)
	t4=$(kv "$(head -n 1 "$base-C4.out")" tid)
	for who in "${!PID[@]}"; do
		pids+="\"$who\":${PID[$who]},"
	done
	pids="${pids%,}}"
	jq -nc --argjson p "$pids" --argjson ns "$(netns_inode "$ROLE")" \
		--argjson tp "$TCP_PORT" --argjson l1 "${l1:-0}" --argjson l2 "${l2:-0}" \
		--argjson l4 "${l4:-0}" --argjson t4 "${t4:-0}" \
		--argjson u1p "$UDP1_PORT" --argjson u1s "$UDP1_SRC" --argjson u1n "$UDP1_N" \
		--argjson u1b "$((UDP1_N * UDP1_SIZE))" \
		--argjson u2p "$UDP2_PORT" --argjson u2s "$UDP2_SRC" --argjson u2n "$UDP2_N" \
		--argjson u2b "$((UDP2_N * UDP2_SIZE))" \
		--argjson u4p "$UDP4_PORT" --argjson u4s "$UDP4_SRC" --argjson u4n "$UDP4_N" \
		--argjson u4b "$((UDP4_N * UDP4_SIZE))" '
		def tcp($who; $comm; $ev; $tid; $lp; $rp):
			{who: $who, n: 1, bytes: 0, event: $ev, proto: "tcp", pid: $p[$who], tid: $tid,
			 comm: $comm, uid: 0, netns: $ns, laddr: "127.0.0.1", lport: $lp,
			 raddr: "127.0.0.1", rport: $rp, ret: 0, error: null};
		def udp($who; $ev; $lp; $rp; $n; $b):
			{who: $who, n: $n, bytes: $b, event: $ev, proto: "udp", pid: $p[$who],
			 tid: $p[$who], comm: "udp6", uid: 0, netns: $ns, lport: $lp,
			 raddr: "127.0.0.1", rport: $rp, ret: 0, error: null};
		[tcp("C1"; "tcpcli6"; "connect"; $p.C1; $l1; $tp),
		 tcp("S"; "tcpserv6"; "accept"; $p.S; $tp; $l1),
		 tcp("S"; "tcpserv6"; "accept"; $p.S; $tp; $l2),
		 tcp("C4"; "mt-connector"; "connect"; $t4; $l4; $tp),
		 tcp("S"; "tcpserv6"; "accept"; $p.S; $tp; $l4),
		 (tcp("C5"; "tcpcli6"; "connect"; $p.C5; null; $tp)
		  | .laddr = null | .ret = -101 | .error = "ENETUNREACH"),
		 udp("U1"; "send"; $u1s; $u1p; $u1n; $u1b),
		 udp("R1"; "recv"; $u1p; $u1s; $u1n; $u1b),
		 udp("R1"; "send"; $u1p; $u1s; $u1n; $u1b),
		 udp("U1"; "recv"; $u1s; $u1p; $u1n; $u1b),
		 udp("U2"; "send"; $u2s; $u2p; $u2n; $u2b),
		 udp("R2"; "recv"; $u2p; $u2s; $u2n; $u2b),
		 (udp("U4"; "connect"; $u4s; $u4p; 1; 0) | .laddr = "127.0.0.1"),
		 udp("U4"; "send"; $u4s; $u4p; $u4n; $u4b),
		 udp("R4"; "recv"; $u4p; $u4s; $u4n; $u4b)]'
}

# expected_counts UNITS PRED PIDS WHO...: for each program WHO, "WHO COUNTS": the process
# record it must have when only the units passing PRED are traced ("none" if none pass).
expected_counts() {
	local units=$1 pred=$2 pids=$3
	shift 3
	jq -r --argjson p "$pids" --args "
		. as \$all | \$ARGS.positional[] as \$who
		| [\$all[] | select(.who == \$who) | select($pred)] as \$u
		| def sum(f): [\$u[] | select(f) | .n] | add // 0;
		  \$who + \" \" + if (\$u | length) == 0 then \"none\" else
		  \"connect=\(sum(.event == \"connect\" and .ret == 0)) accept=\(sum(.event == \"accept\"))\" +
		  \" send=\(sum(.event == \"send\")) recv=\(sum(.event == \"recv\"))\" +
		  \" failed=\(sum(.ret != 0)) peers=1 bytes=\([\$u[].bytes] | add)\" end" "$@" <<<"$units"
}

# all_process_counts FILE: "PID COUNTS" (as process_counts prints them) for every process
# record in FILE, the last one of each pid.
all_process_counts() {
	jq -r 'select(.type == "process")
		| "\(.pid) connect=\(.connect) accept=\(.accept) send=\(.send) recv=\(.recv) failed=\(.failed) peers=\(.peers) bytes=\(.bytes)"' "$1"
}

# --- one filter ----------------------------------------------------------------------------
# run_case NAME PRED ARGS...: the mix under "dstrace ARGS"; PRED is the jq condition on an
# event that the filter means, with $p.WHO the pid of program WHO. In ARGS, @WHO stands for
# that pid.
CASE_NO=0
run_case() {
	local name=$1 pred=$2 base out units pids="{" who arg args=() exp rest stats nev
	shift 2
	if [[ -n ${ONLY:-} && ! $name =~ $ONLY ]]; then
		return
	fi
	CASE_NO=$((CASE_NO + 1))
	base=$WORK/case$CASE_NO
	out=$base.jsonl
	log "--- filter $name"
	if ! mix_start "$base"; then
		fail "$name: traffic" "expected the servers to start, got none"
		for who in "${!PID[@]}"; do
			stop_pid "${PID[$who]}"
		done
		return
	fi
	for who in "${!PID[@]}"; do
		pids+="\"$who\":${PID[$who]},"
	done
	pids="${pids%,}}"
	for arg in "$@"; do
		if [[ $arg == @* ]]; then
			args+=("${PID[${arg#@}]}")
		else
			args+=("$arg")
		fi
	done
	# dstrace_start waits for "Tracing" in $WORK/dstrace.log: a previous run's log must
	# not answer before this run's dstrace has truncated it.
	rm -f "$WORK/dstrace.log"
	if ! dstrace_start "$out" "${args[@]}"; then
		for who in "${!PID[@]}"; do
			stop_pid "${PID[$who]}"
		done
		return
	fi
	mix_run "$base"
	dstrace_stop
	check_eq "$name: traffic" "$MIX_EXPECTED" "$(mix_outcome "$base")"
	if [[ ! -s $out ]] || ! check_json_lines "$name: JSON Lines" "$out"; then
		fail "$name: output" "expected JSON Lines in $out, got: $(head -c 300 "$out")"
		return
	fi

	# Exactly the filtered events in the test's namespace, field by field.
	units=$(mix_units "$base")
	exp=$(jq -c --argjson p "$pids" "[.[] | select($pred) | del(.who, .n, .bytes)]" <<<"$units")
	check_events "$name: events" "$out" "$(ns_json "$ROLE")" true "$exp"

	# Nothing outside the filter from anywhere on the machine.
	rest=$(jq -c --argjson p "$pids" \
		"select(.type == \"event\") | select(($pred) | not)" "$out")
	check_eq "$name: events outside the filter (any namespace)" none "${rest:-none}"

	# The per-process records count the filtered traffic only.
	local -A want got
	local w c
	while read -r w c; do
		want[$w]=$c
	done < <(expected_counts "$units" "$pred" "$pids" "${SERVERS[@]}" "${CLIENTS[@]}")
	while read -r w c; do
		got[$w]=$c
	done < <(all_process_counts "$out")
	for who in "${SERVERS[@]}" "${CLIENTS[@]}"; do
		check_eq "$name: process record of $who (pid ${PID[$who]})" \
			"${want[$who]:-?}" "${got[${PID[$who]}]:-none}"
	done
	# named as the process is (its main thread), not as the thread that acted
	local names
	names=$(jq -r --argjson p "$pids" '$p | to_entries[] | "\(.value) \(.key)"' <<<"{}" |
		while read -r pid who; do
			c=$(jq -r --argjson pid "$pid" \
				'select(.type == "process" and .pid == $pid) | .comm' "$out" | sort -u |
				tr '\n' ' ')
			[[ -z $c || $c == "${PNAME[$who]} " ]] || echo "$who:$c"
		done)
	check_eq "$name: process records named as their process" none "${names:-none}"

	# (Other tests' traffic on the machine may fill the ring buffer: lost is only a number
	# here; the checks above tell whether any of this test's events went missing.)
	stats=$(stats_record "$out")
	nev=$(jq -c 'select(.type == "event")' "$out" | wc -l)
	check_match "$name: stats record: events = event lines written" "^events=$nev lost=[0-9]+$" \
		"$(jq -r '"events=\(.events) lost=\(.lost)"' <<<"$stats")"
	if [[ $(jq -r .lost <<<"$stats") != 0 ]]; then
		log "note: this run lost $(jq -r .lost <<<"$stats") of $(jq -r .events <<<"$stats") events" \
			"(ring buffer full: a flood of other traffic on the machine?)"
	fi
}

# --- main ----------------------------------------------------------------------------------
need_root
build_progs
lo_host_add "$ROLE"

run_case "no filter" 'true'
# (The conditions are jq; run_case binds $p: single quotes on purpose.)
# shellcheck disable=SC2016
run_case "-p PID (one pid: a gated client)" '.pid == $p.U1' -p @U1
# shellcheck disable=SC2016
run_case "-p PID -p PID (two pids: the server, the threaded client)" \
	'.pid == $p.S or .pid == $p.C4' -p @S -p @C4
run_case "-c tcpserv6" '.comm == "tcpserv6"' -c tcpserv6
# a process by its name: every thread of it, whatever their names
# shellcheck disable=SC2016
run_case "-c tcp6mt (the process's name: its renamed thread acts)" '.pid == $p.C4' -c tcp6mt
run_case "-c mt-connector (a thread's name)" '.comm == "mt-connector"' -c mt-connector
run_case "-P $TCP_PORT (local port of accepts, remote port of connects)" \
	".lport == $TCP_PORT or .rport == $TCP_PORT" -P "$TCP_PORT"
run_case "-P $UDP2_SRC (local port of U2's send, remote port of R2's recv)" \
	".lport == $UDP2_SRC or .rport == $UDP2_SRC" -P "$UDP2_SRC"
run_case "--tcp" '.proto == "tcp"' --tcp
run_case "--udp" '.proto == "udp"' --udp
run_case "-e accept" '.event == "accept"' -e accept
run_case "-e connect,send" '.event == "connect" or .event == "send"' -e connect,send
run_case "-c udp6 -e recv (two filters)" '.comm == "udp6" and .event == "recv"' -c udp6 -e recv

summary
