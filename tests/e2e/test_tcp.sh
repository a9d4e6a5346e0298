#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Mapped TCP end to end, in the shapes the matrix does not take: non-blocking connect,
# a connect from a second thread, IPV6_V6ONLY sockets and net.ipv6.bindv6only=1 namespaces
# (client and server), several connections from one process, a refused connect, accept in
# a forked child and in a second thread, both ends on loopback, and native IPv4 and IPv6
# connections that must give nothing.
#
#   sudo tests/e2e/test_tcp.sh
#
# One dstrace run watches every case; cases are told apart by their processes' pids. For
# each case: what the programs did, exactly which events dstrace wrote for their pids, field
# by field, and their per-process records. Hosts: topo_up's six, plus "cb" (dual-stack
# client host) and "sb" (dual-stack server host), both with net.ipv6.bindv6only=1.
# DSTRACE_ARGS adds arguments to dstrace (e.g. a backend).
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_root
build_progs
topo_up
host_add_extra cb ds 192.0.2.14 2001:db8::14
host_add_extra sb ds 192.0.2.6 2001:db8::6
for role in cb sb; do
	ns_sysctl "$(ns_name "$role")" net.ipv6.bindv6only=1
	check_eq "host $role: net.ipv6.bindv6only" 1 "$(in_ns "$role" sysctl -n net.ipv6.bindv6only)"
done

OUT=$WORK/tcp.jsonl
read -ra extra <<<"${DSTRACE_ARGS:-}"
if ! dstrace_start "$OUT" "${extra[@]}"; then
	summary
	exit 1
fi

S4=${HOST_V4[s4]} SDS4=${HOST_V4[sds]} SB4=${HOST_V4[sb]} CDS4=${HOST_V4[cds]} C44=${HOST_V4[c4]}
PIDS=() # every process of every case

# tev ROLE PID TID COMM EVENT LADDR LPORT RADDR RPORT [RET [ERROR]]: one expected TCP event.
# LADDR or LPORT "-" leaves the field out.
tev() {
	local -a kv=(event="$5" proto=tcp pid="$2" tid="$3" comm="$4" uid=0
		netns="$(netns_inode "$1")" cgroup="~number" raddr="$8" rport="$9"
		ret="${10:-0}" error="${11:-null}")
	[[ $6 != - ]] && kv+=(laddr="$6")
	[[ $7 != - ]] && kv+=(lport="$7")
	ev_json "${kv[@]}"
}

# counts CONNECT ACCEPT FAILED PEERS: the process_counts line of a TCP-only process.
counts() {
	proc_counts "$1" "$2" 0 0 "$3" "$4" 0
}

# none NAME PID: PID has no events and no process record.
none() {
	expect_events "$1: events (none)" "$2"
	expect_proc "$1: process record" "$2" none
}

# --- running programs --------------------------------------------------------------------
# srv_line NAME REGEX: the first line of the server's output matching REGEX.
srv_line() {
	grep -m1 -E -- "$2" "$(fbase "$1").out"
}

# srv_done PID NAME: the server exits 0 within 15 s (it was told how many clients to take).
srv_done() {
	if wait_pid "$1" 15; then
		check_eq "$2: server exit status" 0 "$WAIT_RC"
	else
		fail "$2: server exit status" "expected 0, got still running after 15 s"
		stop_pid "$1"
	fi
}

# client_connected NAME TRIED: exit 0, connected and echoed after the attempts TRIED.
client_connected() {
	check_eq "$1: client" "exit 0, connected tried=$2 echo=ok" \
		"exit $RUN_RC, ${LINE%% *} tried=$(kv "$LINE" tried) echo=$(kv "$LINE" echo)"
}

# client_failed NAME ERRNO TRIED: exit 1, failed with ERRNO after the attempts TRIED.
client_failed() {
	check_eq "$1: client" "exit 1, failed errno=$2 tried=$3" \
		"exit $RUN_RC, ${LINE%% *} errno=$(kv "$LINE" errno) tried=$(kv "$LINE" tried)"
}

# --- the cases ---------------------------------------------------------------------------
case_nonblocking() {
	local name="T1 non-blocking connect cds->s4" port=7301 spid
	srv_start spid s4 "$name-srv" "$PROGS/tcpserv4" -n 1 "$port" || return
	cli "$name" cds "$PROGS/tcp6nb" "$S4" "$port"
	client_connected "$name" "::ffff:$S4/EINPROGRESS>OK"
	srv_done "$spid" "$name"
	expect_events "$name: one connect event, ret 0, laddr set" "$CPID" \
		"$(tev cds "$CPID" "$CPID" tcp6nb connect "$CDS4" "$CLPORT" "$S4" "$port")"
	expect_proc "$name: process record" "$CPID" "$(counts 1 0 0 1)"
	none "$name: AF_INET server" "$spid"

	name="T1 non-blocking connect, IPV6_V6ONLY" port=7302
	cli "$name" cds "$PROGS/tcp6nb" -6 "$S4" "$port"
	client_failed "$name" ENETUNREACH "::ffff:$S4/ENETUNREACH"
	expect_events "$name: one failed connect event" "$CPID" \
		"$(tev cds "$CPID" "$CPID" tcp6nb connect null null "$S4" "$port" -101 ENETUNREACH)"
	expect_proc "$name: process record" "$CPID" "$(counts 0 0 1 1)"
}

case_threaded() {
	local name="T2 connect from a second thread cds->s4" port=7303 spid tid
	srv_start spid s4 "$name-srv" "$PROGS/tcpserv4" -n 1 "$port" || return
	cli "$name" cds "$PROGS/tcp6mt" "$S4" "$port"
	client_connected "$name" "::ffff:$S4/OK"
	srv_done "$spid" "$name"
	tid=$(kv "$LINE" tid)
	check_eq "$name: the program's pid, and a tid of its own (tid=$tid)" \
		"pid=$CPID tid!=pid" "pid=$(kv "$LINE" pid) tid$([[ $tid != "$CPID" ]] && echo '!=' || echo '==')pid"
	expect_events "$name: connect event with the connecting thread's tid" "$CPID" \
		"$(tev cds "$CPID" "${tid:-0}" tcp6mt connect "$CDS4" "$CLPORT" "$S4" "$port")"
	expect_proc "$name: process record" "$CPID" "$(counts 1 0 0 1)"
	none "$name: AF_INET server" "$spid"
}

case_v6only() {
	local name="T3 IPV6_V6ONLY socket cds->s4" port=7304
	cli "$name" cds "$PROGS/tcpcli6" --v6only "$S4" "$port"
	client_failed "$name" ENETUNREACH "::ffff:$S4/ENETUNREACH"
	expect_events "$name: one failed connect event" "$CPID" \
		"$(tev cds "$CPID" "$CPID" tcpcli6 connect null null "$S4" "$port" -101 ENETUNREACH)"
	expect_proc "$name: process record" "$CPID" "$(counts 0 0 1 1)"
}

# net.ipv6.bindv6only=1: new AF_INET6 sockets are v6-only by default.
case_bindv6only() {
	local name="T4 bindv6only=1 client host cb->s4" port=7305 spid pid2
	srv_start spid s4 "$name-srv" "$PROGS/tcpserv4" -n 1 "$port" || return
	cli "$name" cb "$PROGS/tcpcli6" "$S4" "$port"
	client_failed "$name" ENETUNREACH "::ffff:$S4/ENETUNREACH"
	expect_events "$name: one failed connect event" "$CPID" \
		"$(tev cb "$CPID" "$CPID" tcpcli6 connect null null "$S4" "$port" -101 ENETUNREACH)"
	expect_proc "$name: process record" "$CPID" "$(counts 0 0 1 1)"
	# The same command on a host with the default sysctl works.
	name="T4 same client, default host cds->s4"
	cli "$name" cds "$PROGS/tcpcli6" "$S4" "$port"
	client_connected "$name" "::ffff:$S4/OK"
	srv_done "$spid" "$name"
	expect_events "$name: one connect event" "$CPID" \
		"$(tev cds "$CPID" "$CPID" tcpcli6 connect "$CDS4" "$CLPORT" "$S4" "$port")"
	expect_proc "$name: process record" "$CPID" "$(counts 1 0 0 1)"
	none "$name: AF_INET server" "$spid"

	# A server on [::] that leaves IPV6_V6ONLY at the default no longer takes IPv4 clients;
	# an IPv6 client still gets in (natively: nothing to report).
	local srv="T5 bindv6only=1 server host, listener at the default"
	name="T5 bindv6only=1 server host, IPv4 client c4->sb" port=7306
	srv_start spid sb "$srv" "$PROGS/tcp6x" serve -D -n 1 "$port" || return
	check_eq "$srv: listener" "v6only=1" "v6only=$(kv "$(srv_line "$srv" '^listening')" v6only)"
	cli "$name" c4 "$PROGS/tcpcli4" "$SB4" "$port"
	client_failed "$name" ECONNREFUSED "$SB4/ECONNREFUSED"
	none "$name: IPv4 client" "$CPID"
	name="T5 bindv6only=1 server host, IPv6 client cds->sb"
	cli "$name" cds "$PROGS/tcpcli6" "${HOST_V6[sb]}" "$port"
	client_connected "$name" "${HOST_V6[sb]}/OK"
	none "$name: IPv6 client" "$CPID"
	srv_done "$spid" "$name"
	check_eq "$name: the server accepted" "${HOST_V6[cds]} port $CLPORT" "$(
		srv_line "$srv" '^accepted' | sed -n 's/^accepted \([^ ]*\) port \([0-9]*\).*/\1 port \2/p')"
	none "$name: server (no accept event)" "$spid"

	# The same server with IPV6_V6ONLY=0 said explicitly, on the same host: accepts IPv4.
	name="T5 bindv6only=1 server host, IPV6_V6ONLY=0 listener, c4->sb" port=7307
	srv_start spid sb "$name-srv" "$PROGS/tcp6x" serve -n 1 "$port" || return
	pid2=$(kv "$(srv_line "$name-srv" '^acceptor')" tid)
	cli "$name" c4 "$PROGS/tcpcli4" "$SB4" "$port"
	client_connected "$name" "$SB4/OK"
	srv_done "$spid" "$name"
	expect_events "$name: one accept event" "$spid" \
		"$(tev sb "$spid" "${pid2:-0}" tcp6x accept "$SB4" "$port" "$C44" "$CLPORT")"
	expect_proc "$name: process record of the server" "$spid" "$(counts 0 1 0 1)"
	none "$name: AF_INET client" "$CPID"
}

case_sequential() {
	local name="T6 five connections from one process cds->s4" port=7308 spid n=5 lp evs=()
	srv_start spid s4 "$name-srv" "$PROGS/tcpserv4" -n "$n" "$port" || return
	cli "$name" cds "$PROGS/tcp6x" connect -n "$n" "$S4" "$port"
	check_eq "$name: client" "exit 0, done connections=$n ok=$n" \
		"exit $RUN_RC, $(grep -m1 '^done' "$(fbase "$name").out" | sed 's/ pid=.*//')"
	srv_done "$spid" "$name"
	while read -r lp; do
		evs+=("$(tev cds "$CPID" "$CPID" tcp6x connect "$CDS4" "$lp" "$S4" "$port")")
	done < <(sed -n 's/^connected .* lport=\([0-9]*\) .*/\1/p' "$(fbase "$name").out")
	check_eq "$name: distinct local ports" "$n" \
		"$(sed -n 's/^connected .* lport=\([0-9]*\) .*/\1/p' "$(fbase "$name").out" | sort -u | wc -l)"
	expect_events "$name: $n connect events" "$CPID" "${evs[@]}"
	expect_proc "$name: process record" "$CPID" "$(counts "$n" 0 0 1)"
	none "$name: AF_INET server" "$spid"
}

case_refused() {
	local name="T7 refused connect cds->s4 (no server)" port=7309
	cli "$name" cds "$PROGS/tcpcli6" "$S4" "$port"
	client_failed "$name" ECONNREFUSED "::ffff:$S4/ECONNREFUSED"
	expect_events "$name: one failed connect event" "$CPID" \
		"$(tev cds "$CPID" "$CPID" tcpcli6 connect - - "$S4" "$port" -111 ECONNREFUSED)"
	expect_proc "$name: process record" "$CPID" "$(counts 0 0 1 1)"
}

case_native() {
	local name port spid

	name="T8 native IPv4: AF_INET client cds->s4" port=7311
	srv_start spid s4 "$name-srv" "$PROGS/tcpserv4" -n 1 "$port" || return
	cli "$name" cds "$PROGS/tcpcli4" "$S4" "$port"
	client_connected "$name" "$S4/OK"
	srv_done "$spid" "$name"
	none "$name: client" "$CPID"
	none "$name: server" "$spid"

	name="T8 native IPv4: AF_INET client c4->sds AF_INET server" port=7312
	srv_start spid sds "$name-srv" "$PROGS/tcpserv4" -n 1 "$port" || return
	cli "$name" c4 "$PROGS/tcpcli4" "$SDS4" "$port"
	client_connected "$name" "$SDS4/OK"
	srv_done "$spid" "$name"
	none "$name: client" "$CPID"
	none "$name: server" "$spid"

	name="T8 native IPv6: tcpcli6 cds->s6 tcpserv6" port=7313
	srv_start spid s6 "$name-srv" "$PROGS/tcpserv6" -n 1 "$port" || return
	cli "$name" cds "$PROGS/tcpcli6" "${HOST_V6[s6]}" "$port"
	client_connected "$name" "${HOST_V6[s6]}/OK"
	srv_done "$spid" "$name"
	none "$name: client" "$CPID"
	none "$name: server" "$spid"

	name="T8 native IPv6: tcp6nb c6->sds tcpserv6 (dual-stack listener)" port=7314
	srv_start spid sds "$name-srv" "$PROGS/tcpserv6" -n 1 "$port" || return
	cli "$name" c6 "$PROGS/tcp6nb" "${HOST_V6[sds]}" "$port"
	check_eq "$name: client" "exit 0, connected" "exit $RUN_RC, ${LINE%% *}"
	srv_done "$spid" "$name"
	none "$name: client" "$CPID"
	none "$name: server" "$spid"

	name="T8 native IPv6 on loopback ::1" port=7315
	srv_start spid cds "$name-srv" "$PROGS/tcp6x" serve -n 1 "$port" || return
	cli "$name" cds "$PROGS/tcp6mt" ::1 "$port"
	client_connected "$name" "::1/OK"
	srv_done "$spid" "$name"
	none "$name: client" "$CPID"
	none "$name: server" "$spid"
}

# accept() in another process than the one that made the listener, and in another thread.
case_accept() {
	local name="T9 accept in a forked child c4->sds" port=7321 spid apid cl1 cl2 lp1 lp2
	srv_start spid sds "$name-srv" "$PROGS/tcp6x" serve -F -n 2 "$port" || return
	apid=$(kv "$(srv_line "$name-srv" '^acceptor')" pid)
	check_eq "$name: the acceptor is another process" "yes" \
		"$([[ -n $apid && $apid != "$spid" ]] && echo yes || echo "no (acceptor pid=$apid, listener pid=$spid)")"
	PIDS+=("$apid")
	cli "$name 1" c4 "$PROGS/tcpcli4" "$SDS4" "$port"
	client_connected "$name 1" "$SDS4/OK"
	cl1=$CPID lp1=$CLPORT
	cli "$name 2" c4 "$PROGS/tcpcli4" "$SDS4" "$port"
	client_connected "$name 2" "$SDS4/OK"
	cl2=$CPID lp2=$CLPORT
	srv_done "$spid" "$name"
	expect_events "$name: accept events in the accepting child" "${apid:-0}" \
		"$(tev sds "${apid:-0}" "${apid:-0}" tcp6x accept "$SDS4" "$port" "$C44" "$lp1")" \
		"$(tev sds "${apid:-0}" "${apid:-0}" tcp6x accept "$SDS4" "$port" "$C44" "$lp2")"
	expect_proc "$name: process record of the accepting child" "${apid:-0}" "$(counts 0 2 0 1)"
	none "$name: the listener's creator" "$spid"
	none "$name: AF_INET client 1" "$cl1"
	none "$name: AF_INET client 2" "$cl2"

	local tid
	name="T9 accept4 in a second thread c4->sds" port=7322
	srv_start spid sds "$name-srv" "$PROGS/tcp6x" serve -A -T -n 1 "$port" || return
	tid=$(kv "$(srv_line "$name-srv" '^acceptor')" tid)
	check_eq "$name: the acceptor is another thread of the server, calling accept4" \
		"pid=$spid tid!=pid call=accept4" "pid=$(kv "$(srv_line "$name-srv" '^acceptor')" pid) tid$(
			[[ $tid != "$spid" ]] && echo '!=' || echo '==')pid call=$(
			kv "$(srv_line "$name-srv" '^acceptor')" call)"
	cli "$name" c4 "$PROGS/tcpcli4" "$SDS4" "$port"
	client_connected "$name" "$SDS4/OK"
	srv_done "$spid" "$name"
	expect_events "$name: accept event with the accepting thread's tid" "$spid" \
		"$(tev sds "$spid" "${tid:-0}" tcp6x accept "$SDS4" "$port" "$C44" "$CLPORT")"
	expect_proc "$name: process record of the server" "$spid" "$(counts 0 1 0 1)"
	none "$name: AF_INET client" "$CPID"

	# Both ends mapped: a client and a server in one namespace, over ::ffff:127.0.0.1.
	name="T10 loopback, both ends mapped" port=7323
	srv_start spid cds "$name-srv" "$PROGS/tcp6x" serve -n 1 "$port" || return
	cli "$name" cds "$PROGS/tcp6nb" 127.0.0.1 "$port"
	check_match "$name: client" '^exit 0, connected tried=::ffff:127\.0\.0\.1/(EINPROGRESS>)?OK echo=ok$' \
		"exit $RUN_RC, ${LINE%% *} tried=$(kv "$LINE" tried) echo=$(kv "$LINE" echo)"
	srv_done "$spid" "$name"
	expect_events "$name: connect event of the client" "$CPID" \
		"$(tev cds "$CPID" "$CPID" tcp6nb connect 127.0.0.1 "$CLPORT" 127.0.0.1 "$port")"
	expect_proc "$name: process record of the client" "$CPID" "$(counts 1 0 0 1)"
	expect_events "$name: accept event of the server" "$spid" \
		"$(tev cds "$spid" "$spid" tcp6x accept 127.0.0.1 "$port" 127.0.0.1 "$CLPORT")"
	expect_proc "$name: process record of the server" "$spid" "$(counts 0 1 0 1)"
}

case_nonblocking
case_threaded
case_v6only
case_bindv6only
case_sequential
case_refused
case_native
case_accept

# --- what dstrace reported ---------------------------------------------------------------
check_output() {
	local all got pids stats
	all=$(ns_json "${HOST_ROLES[@]}" cb sb)
	# The checks below read only the test's own lines: dstrace sees the whole machine, and
	# other mapped traffic meanwhile can make the file large.
	jq -c --argjson ns "$all" 'select(.type != "event" or (.netns as $n | $ns | index($n)))' \
		"$OUT" >"$OUT.ours"
	check_expectations "$OUT.ours" "$all"
	# Nothing else from the cases' processes, nor in the test's namespaces.
	pids=$(printf '%s\n' "${PIDS[@]}" | jq -sc .)
	got=$(events_in "$OUT.ours" "$all" | wc -l)
	check_eq "events in the test's namespaces" "$EXPECTED_EVENTS" "$got"
	got=$(jq -c --argjson p "$pids" 'select(.type == "event" and (.pid as $x | $p | index($x)))' \
		"$OUT" | wc -l)
	check_eq "events of the cases' processes" "$EXPECTED_EVENTS" "$got"
	stats=$(stats_record "$OUT")
	check_lost_zero "stats record: lost" "$OUT" "$all"
	check_eq "stats record: events = event lines written" \
		"$(jq -c 'select(.type == "event")' "$OUT" | wc -l)" "$(jq -r '.events' <<<"$stats")"
}

dstrace_stop
if [[ ! -s $OUT ]]; then
	fail "dstrace output" "expected JSON Lines in $OUT, got an empty or missing file"
elif check_json_lines "dstrace output" "$OUT"; then
	check_output
fi
summary
