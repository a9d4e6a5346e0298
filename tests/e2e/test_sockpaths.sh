#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The mapped paths a syscall tracepoint does not see, or sees more than once, each checked
# with exact events and counts: a non-blocking connect re-issued once writable (Ruby's
# connect_nonblock, Twisted), blocking and non-blocking connects refused later, a connect
# that times out, TCP Fast Open, MPTCP, UDP-Lite, io_uring connect and accept (also into
# fixed files), four threads sharing one UDP socket each way, 5000 threads blocked in
# recvfrom() at once, and
# datagrams read without asking their source (recv(), read()) among IPv6 ones, UDP and
# UDP-Lite, also with the receive buffer overflowing; a server asleep in accept() and
# receivers asleep in recvfrom() and recvmmsg() since before dstrace started (calls in
# flight, which the fentry and kprobe backends' own hooks do not see return:
# user/inflight.c); connects in progress at start (SYN sent), decided once dstrace runs:
# established, refused, timed out.
#
#   sudo tests/e2e/test_sockpaths.sh
#
# One host (a namespace with lo, and a veth whose peers never answer); every peer
# is ::ffff:127.0.0.1 or the silent ::ffff:198.51.100.2. DSTRACE_ARGS adds arguments to
# dstrace (e.g. a backend).
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_root
build_progs
NS=$(ns_name lo)
ip netns add "$NS" || exit 2
NAMESPACES+=("$NS")
ip -n "$NS" link set lo up
# A peer that never answers: SYNs go out of a veth to a MAC nobody has and vanish; one
# retry, then ETIMEDOUT.
ip -n "$NS" link add dsva type veth peer name dsvb
ip -n "$NS" addr add 198.51.100.1/24 dev dsva
ip -n "$NS" link set dsva up
ip -n "$NS" link set dsvb up
ip -n "$NS" neigh add 198.51.100.2 lladdr 02:00:00:00:00:02 dev dsva nud permanent
ns_sysctl "$NS" net.ipv4.tcp_syn_retries=1
ns_sysctl "$NS" net.ipv4.tcp_fastopen=3
# MPTCP is a kernel build option (Debian 11's 5.10 has none): without it, its case is skipped
HAVE_MPTCP=0
[[ -e /proc/sys/net/mptcp/enabled ]] && HAVE_MPTCP=1 && ns_sysctl "$NS" net.mptcp.enabled=1
NSJ=$(ns_json lo)
SP=$PROGS/sockpaths
PIDS=()

# Before dstrace starts: a mapped connection that stays open (a pool, a long session). Both
# ends must be reported as "existing" and counted as a connect and an accept.
hsrv_base=$(fbase "existing: server")
bg_start HSRV lo "$hsrv_base" "$SP" accept-hold 8085
PIDS+=("$HSRV")
wait_line "$hsrv_base.out" '^ready' 5 || fail "existing: server ready" "$(cat "$hsrv_base.err")"
hold_base=$(fbase "existing: client")
bg_start HOLD lo "$hold_base" "$SP" tcp-hold ::ffff:127.0.0.1 8085 300
PIDS+=("$HOLD")
wait_line "$hold_base.out" '^connected' 5 ||
	fail "existing: client connected" "no line: $(cat "$hold_base.err")"
HOLD_LPORT=$(kv "$(head -n 1 "$hold_base.out")" lport)
# Also before: a TCP server blocked in accept() and a UDP receiver blocked in recvfrom() on
# [::], each for one IPv4 peer that comes once dstrace runs: calls in flight when its hooks
# were attached, whose return must be seen all the same.
ibase=$(fbase "in flight: accept")
bg_start IACC lo "$ibase" "$PROGS/tcpserv6" -n 1 8086
PIDS+=("$IACC")
wait_line "$ibase.out" '^listening' 5 || fail "in flight: accept: server ready" "$(cat "$ibase.err")"
ubase=$(fbase "in flight: recvfrom")
bg_start IRCV lo "$ubase" "$PROGS/udp6" recv -n 1 -t 60 8087
PIDS+=("$IRCV")
wait_line "$ubase.out" '^listening' 5 || fail "in flight: recvfrom: receiver ready" "$(cat "$ubase.err")"
# Also before: TCP connects in progress (SYN sent, no answer yet), whose outcome comes once
# dstrace runs and must be reported as their program's connect: to a listener whose accept
# queue is full (listen backlog 0, one client queued: SYNs are dropped and retried), which
# then accepts (established; a blocking connect) or closes (refused; a non-blocking one),
# and to the silent peer (timed out after 31 s: TCP_SYNCNT 4). The established and refused
# ones retry their SYNs 1, 3, 7, 15, 31 and 63 s after they began (TCP_SYNCNT 6).
slow_connect() { # VAR NAME CMD...: start CMD, wait for its "connecting lport=P" line
	local var=$1 base
	base=$(fbase "$2")
	shift 2
	bg_start "$var" lo "$base" "$@"
	PIDS+=("${!var}")
	wait_line "$base.out" '^connecting' 5 || fail "$(basename "$base"): connecting" "$(cat "$base.err")"
}
for how in accept close; do
	b=$(fbase "in progress: listener, then $how")
	if [[ $how == accept ]]; then
		bg_start BF_ACCEPT lo "$b" "$SP" backlog-full 8091 accept 2
		PIDS+=("$BF_ACCEPT")
	else
		bg_start BF_CLOSE lo "$b" "$SP" backlog-full 8092 close
		PIDS+=("$BF_CLOSE")
	fi
	wait_line "$b.out" '^ready' 5 || fail "in progress: listener ($how) ready" "$(cat "$b.err")"
done
cli "in progress: the accepting listener's queued client" lo "$PROGS/tcpcli4" 127.0.0.1 8091
BF_FILL_PORT=$CLPORT
cli "in progress: the closing listener's queued client" lo "$PROGS/tcpcli4" 127.0.0.1 8092
slow_connect SLOW_OK "in progress: established" "$SP" tcp-block ::ffff:127.0.0.1 8091 6
slow_connect SLOW_REF "in progress: refused" "$SP" tcp-nb ::ffff:127.0.0.1 8092 6
slow_connect SLOW_TO "in progress: timed out" "$SP" tcp-block ::ffff:198.51.100.2 84 4
sleep 0.5 # all asleep in their call, the three SYNs sent
# SYN-SENT sockets, from /proc/net/tcp6 (ss would give every socket it lists a cookie)
syn_sent() { ip netns exec "$NS" awk '$4 == "02"' /proc/net/tcp6 | wc -l; }
check_eq "in progress: three connects in SYN-SENT before dstrace starts" 3 "$(syn_sent)"
# one of them with a cookie (sock_diag makes one for each socket it lists), as something
# that looked at it before dstrace would have: the others have none
ip netns exec "$NS" ss -Htn state syn-sent dport = :8092 >/dev/null
# and a UDP receiver asleep in recvmmsg() (MSG_WAITFORONE), for 3 datagrams: the first comes
# in the call begun before dstrace, the others in calls its hooks follow
mbase=$(fbase "in flight: recvmmsg")
bg_start IMMSG lo "$mbase" "$PROGS/udp6" recv -m recvmmsg -n 3 -t 60 8097
PIDS+=("$IMMSG")
wait_line "$mbase.out" '^listening' 5 || fail "in flight: recvmmsg: receiver ready" "$(cat "$mbase.err")"
sleep 0.5 # all asleep in their call

OUT=$WORK/sockpaths.jsonl
read -ra extra <<<"${DSTRACE_ARGS:-}"
if ! dstrace_start "$OUT" "${extra[@]}"; then
	summary
	exit 1
fi
# the connects in progress were so when dstrace looked: their listeners accept or close now,
# the SYNs they retry decide them (checked at the end, with the timed-out one)
check_eq "in progress: still in SYN-SENT once dstrace runs" 3 "$(syn_sent)"
kill -USR1 "$BF_ACCEPT" "$BF_CLOSE"

expect_events "existing: client events" "$HOLD" "$(ev_json event=existing proto=tcp pid="$HOLD" \
	comm=sockpaths laddr=127.0.0.1 lport="$HOLD_LPORT" raddr=127.0.0.1 rport=8085 ret=0)"
expect_proc "existing: client process" "$HOLD" "$(proc_counts 1 0 0 0 0 1 0)"
expect_events "existing: server events" "$HSRV" "$(ev_json event=existing proto=tcp pid="$HSRV" \
	comm=sockpaths laddr=127.0.0.1 lport=8085 raddr=127.0.0.1 rport="$HOLD_LPORT" ret=0)"
expect_proc "existing: server process" "$HSRV" "$(proc_counts 0 1 0 0 0 1 0)"

cli "in flight: accept: client" lo "$PROGS/tcpcli4" 127.0.0.1 8086
check_eq "in flight: accept: the client connected" connected "${LINE%% *}"
expect_events "in flight: accept: events" "$IACC" "$(ev_json event=accept proto=tcp pid="$IACC" \
	comm=tcpserv6 laddr=127.0.0.1 lport=8086 raddr=127.0.0.1 rport="$CLPORT" ret=0)"
expect_proc "in flight: accept: process" "$IACC" "$(proc_counts 0 1 0 0 0 1 0)"
# udp_inflight NAME PID BASE PORT SRCPORT N SIZE: N datagrams of SIZE bytes from SRCPORT to
# the receiver PID (output BASE) asleep on PORT since before dstrace: all of them counted.
udp_inflight() {
	local name=$1 pid=$2 base=$3 port=$4 src=$5 n=$6 size=$7
	cli "$name: sender" lo "$PROGS/udp6" send -n "$n" -s "$size" -l "$src" ::ffff:127.0.0.1 "$port"
	wait_pid "$pid" 10 || true
	check_eq "$name: the datagrams" "count=$n bytes=$((n * size))" \
		"$(grep '^received' "$base.out" | awk '{print $2, $3}')"
	expect_events "$name: events" "$pid" "$(ev_json event=recv proto=udp pid="$pid" \
		comm=udp6 lport="$port" raddr=127.0.0.1 rport="$src" ret=0)"
	expect_proc "$name: process" "$pid" "$(proc_counts 0 0 0 "$n" 0 1 $((n * size)))"
}
udp_inflight "in flight: recvfrom" "$IRCV" "$ubase" 8087 8088 1 40
udp_inflight "in flight: recvmmsg" "$IMMSG" "$mbase" 8097 8096 3 30

# The TCP server every client reaches: tcpserv6 on [::]:8080 (IPv4 clients too).
srv_start SRV lo "server" "$PROGS/tcpserv6" -n 0 8080 || true

# TCP connects whose outcome no program saw (the kernel ran none for their socket's state
# change; see "unseen" at the end), as the last dstrace run said on stderr: counted in
# drops.missed, never lost silently.
unseen_count() {
	local n
	n=$(sed -n 's/^dstrace: warning: \([0-9]*\) TCP connects whose outcome no program saw.*/\1/p' \
		"$WORK/dstrace.log" | tail -n 1)
	echo "${n:-0}"
}

# case NAME EXPECTED_RESULT CMD...: run one client, check its own result line.
case_run() {
	local name=$1 want=$2
	shift 2
	cli "$name" lo "$@"
	check_eq "$name: the program's result" "$want" "$(kv "$LINE" result)"
}

# one_connect NAME PID PROTO RET ERROR: exactly one connect event for PID, with this result.
one_connect() {
	local lport='~number'
	[[ $4 != 0 ]] && lport=null
	expect_events "$1: events" "$2" "$(ev_json event=connect proto="$3" pid="$2" comm=sockpaths \
		raddr="${6:-127.0.0.1}" rport="${7:-8080}" lport="$lport" ret="$4" error="$5")"
}

case_run "re-issued non-blocking connect" ok "$SP" tcp-retry ::ffff:127.0.0.1 8080
one_connect "re-issued non-blocking connect" "$CPID" tcp 0 null
expect_proc "re-issued non-blocking connect: process" "$CPID" "$(proc_counts 1 0 0 0 0 1 0)"

case_run "blocking connect refused" ECONNREFUSED "$SP" tcp-block ::ffff:127.0.0.1 8081
one_connect "blocking connect refused" "$CPID" tcp -111 ECONNREFUSED 127.0.0.1 8081
expect_proc "blocking connect refused: process" "$CPID" "$(proc_counts 0 0 0 0 1 1 0)"

case_run "non-blocking connect refused" ECONNREFUSED "$SP" tcp-nb ::ffff:127.0.0.1 8082
one_connect "non-blocking connect refused" "$CPID" tcp -111 ECONNREFUSED 127.0.0.1 8082
expect_proc "non-blocking connect refused: process" "$CPID" "$(proc_counts 0 0 0 0 1 1 0)"

# Timed-out connects whose events are checked at the end, with the connects pending at once:
# the kernel may run no program for a SYN timeout's state change (README, Limits), and such a
# connect, counted unseen, can be any of them.
TO_NAMES=() TO_PIDS=() TO_PORTS=()
case_run "blocking connect timed out" ETIMEDOUT "$SP" tcp-block ::ffff:198.51.100.2 80
TO_NAMES+=("blocking connect timed out") TO_PIDS+=("$CPID") TO_PORTS+=(80)

case_run "non-blocking connect timed out" ETIMEDOUT "$SP" tcp-nb ::ffff:198.51.100.2 81
TO_NAMES+=("non-blocking connect timed out") TO_PIDS+=("$CPID") TO_PORTS+=(81)

# Given up by its own program, in the thread that connected, while the SYN is unanswered:
# closed, shut down, or disconnected (connect(AF_UNSPEC)). The outcome is ECONNABORTED on
# every backend: the connect call returned long before, so its return cannot decide (a
# socket closed in SYN_SENT inside the call, as with no local port left below, is the
# call's), and nothing is counted unseen.
for how in close shutdown unspec; do
	case_run "connect given up: $how" ok "$SP" tcp-abandon ::ffff:198.51.100.2 82 "$how"
	one_connect "connect given up: $how" "$CPID" tcp -103 ECONNABORTED 198.51.100.2 82
	expect_proc "connect given up: $how: process" "$CPID" "$(proc_counts 0 0 0 0 1 1 0)"
done

# Given up by the process's end (killed during a dial: Ctrl-C, timeout, a service stop): the
# kernel closes the socket after the process has ended (exit), when a child that holds it
# ends 0.5 s later (fork), or when the program it exec()ed with the socket open does (exec).
# The outcome is still the process's, counted in its entry, which waits for it (pending):
# nothing goes to drops.proc_full (checked below, for the whole run).
for how in exit fork exec; do
	case_run "connect given up by the process's end: $how" ok "$SP" tcp-abandon \
		::ffff:198.51.100.2 82 "$how"
	[[ $how != exit ]] && sleep 1 # the socket's last holder ends
	one_connect "connect given up by the process's end: $how" "$CPID" tcp -103 ECONNABORTED \
		198.51.100.2 82
	expect_proc "connect given up by the process's end: $how: process" "$CPID" \
		"$(proc_counts 0 0 0 0 1 1 0)"
done

# A simultaneous open: a socket bound to [::]:8092 connects to ::ffff:127.0.0.1:8092, itself
# (SYN_SENT, then SYN_RECV on its own SYN, then ESTABLISHED on its own SYN-ACK): one connect
# event, established (it was left pending, then counted unseen at close).
case_run "simultaneous open" ok "$SP" tcp-self 8092
one_connect "simultaneous open" "$CPID" tcp 0 null 127.0.0.1 8092
expect_proc "simultaneous open: process" "$CPID" "$(proc_counts 1 0 0 0 0 1 0)"

# No local port left: the namespace's range is one port, held by a connection to the same
# peer. tcp_v4_connect sets SYN_SENT before it picks the port, so the socket closes in
# SYN_SENT without an error, inside the call: the result is the call's (EADDRNOTAVAIL), not
# a connect its program gave up (ECONNABORTED).
ns_sysctl "$NS" net.ipv4.ip_local_port_range="40000 40000"
full_base=$(fbase "no local port left: holder")
bg_start FULL lo "$full_base" "$SP" tcp-hold ::ffff:127.0.0.1 8080 300
PIDS+=("$FULL")
if wait_line "$full_base.out" '^connected' 5; then
	case_run "no local port left" EADDRNOTAVAIL "$SP" tcp-block ::ffff:127.0.0.1 8080
	one_connect "no local port left" "$CPID" tcp -99 EADDRNOTAVAIL
	expect_proc "no local port left: process" "$CPID" "$(proc_counts 0 0 0 0 1 1 0)"
	case_run "no local port left, non-blocking" EADDRNOTAVAIL "$SP" tcp-nb ::ffff:127.0.0.1 8080
	one_connect "no local port left, non-blocking" "$CPID" tcp -99 EADDRNOTAVAIL
else
	fail "no local port left: holder connected" "no line: $(cat "$full_base.err")"
fi
stop_pid "$FULL"
ns_sysctl "$NS" net.ipv4.ip_local_port_range="32768 60999"

case_run "TCP Fast Open" ok "$SP" tfo ::ffff:127.0.0.1 8080
one_connect "TCP Fast Open" "$CPID" tcp 0 null
# failing inside its sendto(), before any SYN: the send's result is the connect's
case_run "TCP Fast Open, no IPv4 route" ENETUNREACH "$SP" tfo ::ffff:203.0.113.9 80
one_connect "TCP Fast Open, no IPv4 route" "$CPID" tcp -101 ENETUNREACH 203.0.113.9 80
expect_proc "TCP Fast Open, no IPv4 route: process" "$CPID" "$(proc_counts 0 0 0 0 1 1 0)"

if [[ $HAVE_MPTCP == 1 ]]; then
	case_run "MPTCP" ok "$SP" mptcp ::ffff:127.0.0.1 8080 1000
	one_connect "MPTCP" "$CPID" mptcp 0 null
	expect_proc "MPTCP: process" "$CPID" "$(proc_counts 1 0 0 0 0 1 0)"
else
	log "skipped: MPTCP: this kernel has no MPTCP (no /proc/sys/net/mptcp: CONFIG_MPTCP off)"
fi

case_run "io_uring connect" ok "$SP" uring-connect ::ffff:127.0.0.1 8080
one_connect "io_uring connect" "$CPID" tcp 0 null

# io_uring connects that end before any SYN (no IPv4 route), and a UDP one: the socket layer
# sees them start, the completion gives their result.
case_run "io_uring connect, no IPv4 route" ENETUNREACH "$SP" uring-connect ::ffff:203.0.113.9 80
one_connect "io_uring connect, no IPv4 route" "$CPID" tcp -101 ENETUNREACH 203.0.113.9 80
expect_proc "io_uring connect, no IPv4 route: process" "$CPID" "$(proc_counts 0 0 0 0 1 1 0)"
case_run "io_uring UDP connect" ok "$SP" uring-connect ::ffff:127.0.0.1 5355 udp
expect_events "io_uring UDP connect: events" "$CPID" "$(ev_json event=connect proto=udp \
	pid="$CPID" comm=sockpaths raddr=127.0.0.1 rport=5355 lport='~number' ret=0)"
expect_proc "io_uring UDP connect: process" "$CPID" "$(proc_counts 1 0 0 0 0 1 0)"

# An io_uring connect still in flight while the same thread's own connect(2) of another
# socket fails at once (a native IPv6 address without a route): that result is not the
# io_uring connect's, which times out later.
case_run "io_uring connect in flight, connect(2) meanwhile" ETIMEDOUT \
	"$SP" uring-connect ::ffff:198.51.100.2 82 meanwhile 2001:db8::9
check_eq "io_uring connect in flight: the other connect's result" ENETUNREACH \
	"$(kv "$LINE" meanwhile)"
one_connect "io_uring connect in flight, connect(2) meanwhile" "$CPID" tcp -110 ETIMEDOUT \
	198.51.100.2 82
expect_proc "io_uring connect in flight: process" "$CPID" "$(proc_counts 0 0 0 0 1 1 0)"

# io_uring accept: a server accepting 2 IPv4 clients through io_uring only.
srv_base=$(fbase "io_uring accept server")
bg_start UPID lo "$srv_base" "$SP" uring-accept 8090 2
PIDS+=("$UPID")
if wait_line "$srv_base.out" '^ready' 5; then
	case_run "io_uring accept: client 1" ok "$SP" tcp-block ::ffff:127.0.0.1 8090
	case_run "io_uring accept: client 2" ok "$SP" tcp-block ::ffff:127.0.0.1 8090
	wait_pid "$UPID" 10
	check_eq "io_uring accept: the server's result" "accepted=2 result=ok" \
		"$(tail -n 1 "$srv_base.out")"
	acc=$(ev_json event=accept proto=tcp pid="$UPID" comm=sockpaths raddr=127.0.0.1 lport=8090)
	expect_events "io_uring accept: events" "$UPID" "$acc" "$acc"
	expect_proc "io_uring accept: process" "$UPID" "$(proc_counts 0 2 0 0 0 1 0)"
else
	fail "io_uring accept server ready" "no ready line: $(cat "$srv_base.err")"
fi

# io_uring multishot accept: one request accepts 3 IPv4 clients; all but the last
# completion carry no request (the ring and user_data tell them).
srv_base=$(fbase "io_uring multishot accept server")
IFS=. read -r kmaj kmin _ <<<"$(uname -r)"
if ((kmaj < 5 || (kmaj == 5 && kmin < 19))); then
	log "skipped: io_uring multishot accept: this kernel has none (Linux 5.19+)"
else
	bg_start UPID lo "$srv_base" "$SP" uring-accept 8093 3 multishot
	PIDS+=("$UPID")
	if wait_line "$srv_base.out" '^ready' 5; then
		for i in 1 2 3; do
			case_run "io_uring multishot accept: client $i" ok "$SP" tcp-block ::ffff:127.0.0.1 8093
		done
		wait_pid "$UPID" 10
		check_eq "io_uring multishot accept: the server's result" "accepted=3 result=ok" \
			"$(tail -n 1 "$srv_base.out")"
		acc=$(ev_json event=accept proto=tcp pid="$UPID" comm=sockpaths raddr=127.0.0.1 lport=8093)
		expect_events "io_uring multishot accept: events" "$UPID" "$acc" "$acc" "$acc"
		expect_proc "io_uring multishot accept: process" "$UPID" "$(proc_counts 0 3 0 0 0 1 0)"
	else
		fail "io_uring multishot accept server ready" "no ready line: $(cat "$srv_base.err")"
	fi
fi

# io_uring accepts into the ring's fixed files (direct descriptors: no file descriptor, the
# completion's result a slot): single requests (slot 3 asked, then slots the kernel picks)
# and a multishot one; each accepted socket's slot closed before the next.
for mode in "direct 8098 2" "multishot-direct 8099 3"; do
	read -r how port n <<<"$mode"
	name="io_uring accept, $how"
	if ((kmaj < 5 || (kmaj == 5 && kmin < 19))); then
		log "skipped: $name: this kernel has no slot picked by io_uring (Linux 5.19+)"
		continue
	fi
	srv_base=$(fbase "$name server")
	bg_start UPID lo "$srv_base" "$SP" uring-accept "$port" "$n" "$how"
	PIDS+=("$UPID")
	if ! wait_line "$srv_base.out" '^ready' 5; then
		fail "$name server ready" "no ready line: $(cat "$srv_base.err")"
		continue
	fi
	for ((i = 1; i <= n; i++)); do
		case_run "$name: client $i" ok "$SP" tcp-block ::ffff:127.0.0.1 "$port"
	done
	wait_pid "$UPID" 10
	check_eq "$name: the server's result" "accepted=$n result=ok" "$(tail -n 1 "$srv_base.out")"
	acc=$(ev_json event=accept proto=tcp pid="$UPID" comm=sockpaths raddr=127.0.0.1 lport="$port")
	accs=()
	for ((i = 1; i <= n; i++)); do accs+=("$acc"); done
	expect_events "$name: events" "$UPID" "${accs[@]}"
	expect_proc "$name: process" "$UPID" "$(proc_counts 0 "$n" 0 0 0 1 0)"
done

# UDP-Lite: 5 datagrams of 7 bytes, reported as udplite, counted with UDP.
case_run "UDP-Lite" ok "$SP" udplite ::ffff:127.0.0.1 5353 5 7
expect_events "UDP-Lite: events" "$CPID" "$(ev_json event=send proto=udplite pid="$CPID" \
	raddr=127.0.0.1 rport=5353 ret=0)"
expect_proc "UDP-Lite: process" "$CPID" "$(proc_counts 0 0 5 0 0 1 35)"

# A corked datagram flushed by setsockopt(UDP_CORK, 0), then a plain one: two datagrams.
case_run "UDP cork flushed" ok "$SP" cork-flush ::ffff:127.0.0.1 5354
expect_events "UDP cork flushed: events" "$CPID" "$(ev_json event=send proto=udp pid="$CPID" \
	raddr=127.0.0.1 rport=5354 ret=0)"
expect_proc "UDP cork flushed: process" "$CPID" "$(proc_counts 0 0 2 0 0 1 7)"
# The same on a connected socket, sending without an address.
case_run "UDP cork flushed, connected" ok "$SP" cork-flush ::ffff:127.0.0.1 5357 connected
expect_events "UDP cork flushed, connected: events" "$CPID" \
	"$(ev_json event=connect proto=udp pid="$CPID" raddr=127.0.0.1 rport=5357 ret=0)" \
	"$(ev_json event=send proto=udp pid="$CPID" raddr=127.0.0.1 rport=5357 ret=0)"
expect_proc "UDP cork flushed, connected: process" "$CPID" "$(proc_counts 1 0 2 0 0 1 7)"

# An error-queue read (the ICMP port unreachable of a mapped datagram, IP_RECVERR) returns an
# error report, not a datagram: one send, nothing received.
case_run "UDP error-queue read" ok "$SP" udp-errqueue ::ffff:127.0.0.1 5356
check_eq "UDP error-queue read: the program read its error queue" 1 "$(kv "$LINE" errqueue)"
expect_events "UDP error-queue read: events" "$CPID" "$(ev_json event=send proto=udp pid="$CPID" \
	raddr=127.0.0.1 rport=5356 ret=0)"
expect_proc "UDP error-queue read: process" "$CPID" "$(proc_counts 0 0 1 0 0 1 1)"

# Datagrams queued before a socket connects are read after it (connect() leaves the queue
# as it is): 3 from 127.0.0.1:5361, then connected to :5362, 3 from there, all read with
# recv(): each counted with its own source.
case_run "UDP connected with datagrams queued" ok "$SP" udp-connect-queued 5360 3
check_eq "UDP connected with datagrams queued: read" "3 3" \
	"$(kv "$LINE" x) $(kv "$LINE" y)"
expect_events "UDP connected with datagrams queued: events" "$CPID" \
	"$(ev_json event=connect proto=udp pid="$CPID" raddr=127.0.0.1 rport=5362 ret=0)" \
	"$(ev_json event=recv proto=udp pid="$CPID" lport=5360 raddr=127.0.0.1 rport=5361 ret=0)" \
	"$(ev_json event=recv proto=udp pid="$CPID" lport=5360 raddr=127.0.0.1 rport=5362 ret=0)"
expect_proc "UDP connected with datagrams queued: process" "$CPID" \
	"$(proc_counts 1 0 0 6 0 1 90)"

# Four threads send 4000 datagrams each over one socket, four threads receive them on
# another: every datagram the program sent and received is counted, not one more.
case_run "4 threads sharing UDP sockets" ok "$SP" udp-threads 5400 4 4000 100
sent=$(kv "$LINE" sent) received=$(kv "$LINE" received) rbytes=$(kv "$LINE" rbytes)
check_eq "4 threads sharing UDP sockets: the program sent them all" 16000 "$sent"
log "the program received $received datagrams ($rbytes bytes)"
expect_proc "4 threads sharing UDP sockets: process" "$CPID" \
	"$(proc_counts 0 0 "$sent" "$received" 0 1 $((sent * 100 + rbytes)))"

# The same with receivers that use recv(): no address asked, each datagram still counted.
case_run "4 threads sharing UDP sockets, recv()" ok "$SP" udp-threads 5401 4 4000 100 recv
sent=$(kv "$LINE" sent) received=$(kv "$LINE" received) rbytes=$(kv "$LINE" rbytes)
check_eq "4 threads sharing UDP sockets, recv(): the program sent them all" 16000 "$sent"
expect_proc "4 threads sharing UDP sockets, recv(): process" "$CPID" \
	"$(proc_counts 0 0 "$sent" "$received" 0 1 $((sent * 100 + rbytes)))"

# 5000 threads asleep in recvfrom() on one socket at once, then a datagram each: every one is
# counted, or (the kprobe backend, whose return probes follow at most 4096 calls of a function
# in flight) the returns missed are counted in drops.missed, checked once dstrace has ended.
BLOCKED_N=5000
# the returns of udpv6_recvmsg() the kprobe backend's probe missed (kprobe_profile: the
# event udpv6_recvmsg_NS_PID of this dstrace), or nothing on the other backends
recv_probe_missed() {
	awk -v pid="$DSTRACE_PID" '$1 ~ "^udpv6_recvmsg_[0-9]+_" pid "$" { print $3; n++ }
		END { if (!n) print "none" }' /sys/kernel/tracing/kprobe_profile 2>/dev/null || echo none
}
BLOCKED_MISSED0=$(recv_probe_missed)
run_in lo 180 "$(fbase "5000 threads blocked")" "$SP" udp-blocked 5420 "$BLOCKED_N" 100
BLOCKED_PID=$RUN_PID
PIDS+=("$BLOCKED_PID")
LINE=$(head -n 1 "$(fbase "5000 threads blocked").out")
log "5000 threads blocked: pid $BLOCKED_PID exit $RUN_RC: $LINE ($(cat "$(fbase "5000 threads blocked").err"))"
check_eq "5000 threads blocked: the program's result" "ok 5000 5000" \
	"$(kv "$LINE" result) $(kv "$LINE" sent) $(kv "$LINE" received)"
BLOCKED_MISSED1=$(recv_probe_missed)
# The kprobe backend keeps each call in flight (kprobe_calls, keyed by function and thread);
# a call whose return was missed stays there: dstrace deletes those of threads that ended
# (every 10 s), so the table cannot fill with them. Empty on the other backends.
stale_calls() {
	local tid n=0 dump
	# one map of that name (dstrace's), a flat array of its entries
	if ! dump=$(bpftool -j map dump name kprobe_calls 2>&1) ||
		! jq -e 'type == "array" and all(.[]; has("formatted"))' <<<"$dump" >/dev/null; then
		echo "no dump: ${dump:0:200}"
		return
	fi
	for tid in $(jq -r '.[] | .formatted.key % 4294967296' <<<"$dump"); do
		[[ -d /proc/$tid ]] || n=$((n + 1))
	done
	echo "$n"
}
log "5000 threads blocked: $(stale_calls) calls of ended threads in kprobe_calls"
for _ in $(seq 1 30); do
	[[ $(stale_calls) == 0 ]] && break
	sleep 1
done
check_eq "5000 threads blocked: no call of an ended thread left in kprobe_calls" 0 "$(stale_calls)"

# Connects waiting for an answer at once, each followed to its outcome (ETIMEDOUT): the
# tracepoint and fentry backends keep a pending connect in the array slot its socket's cookie
# selects, the kprobe backend in a hash. Between two batches of 6000, 10 384 sockets take
# cookies (SO_COOKIE), so (one CPU hands cookies out in sequence) the second batch's sockets
# find the first's slots held, for more than a second: those move to the hash (dstrace's
# conn_spilled counts them while they wait) and nothing is lost. (The hash was an LRU until
# 2026-12-03: it evicted some of 12 000 uncounted, 753 with the hash alone.) The kprobe
# backend takes 2 x 6000 in its hash alone, and no sockets between.
# DSTRACE_PENDING_N and DSTRACE_PENDING_BURN change the sizes.
PEND_N=${DSTRACE_PENDING_N:-6000} PEND_BURN=${DSTRACE_PENDING_BURN:-10384}
[[ ${DSTRACE_ARGS:-} == *kprobe* ]] && PEND_BURN=0
# dstrace's count of pending connects in the hash while slots are in use
conn_spilled() {
	bpftool -j map dump name dstrace.bss 2>/dev/null |
		jq -r '[.[0].formatted.value[".bss"][] | .conn_spilled // empty][0] // "none"'
}
# pending_run NAME VAR PORT N BURN WAIT MAXGAP: sockpaths tcp-pending to the silent peer on
# CPU 0 (cookies in sequence), its pid in VAR; once both batches are made, some must be in
# the hash (slot backends) if the second came within MAXGAP s of the first (later, what
# would be there may have ended); then every one timed out in the program, none left in the
# hash. The events and counts are the caller's to check.
pending_run() {
	local name=$1 var=$2 base spilled elapsed pid
	base=$(fbase "$name")
	bg_start "$var" lo "$base" taskset -c 0 "$SP" tcp-pending ::ffff:198.51.100.2 "$3" "$4" \
		"$5" "$4" "$6"
	pid=${!var}
	PIDS+=("$pid")
	if wait_line "$base.out" '^pending' 120; then
		spilled=$(conn_spilled)
		elapsed=$(kv "$(head -n 1 "$base.out")" elapsed)
		log "$name: $spilled of them in the hash (conn_spilled), the second batch in place ${elapsed}s after the first"
		if [[ ${DSTRACE_ARGS:-} == *kprobe* ]]; then
			: # the hash alone
		elif ! awk -v e="$elapsed" -v m="$7" 'BEGIN { exit !(e < m) }'; then
			log "skipped: $name: some in the hash: the second batch came ${elapsed}s after the first"
		else
			check_eq "$name: some in the hash" yes \
				"$([[ $spilled =~ ^[0-9]+$ && $spilled -gt 0 ]] && echo yes || echo "no: $spilled")"
		fi
	else
		fail "$name: the program's pending line" "$(cat "$base.err")"
	fi
	RUN_PID=$pid
	wait_run 120
	LINE=$(tail -n 1 "$base.out")
	check_eq "$name: the program's result" "ok $(($4 * 2)) 0" \
		"$(kv "$LINE" result) $(kv "$LINE" timedout) $(kv "$LINE" other)"
	[[ ${DSTRACE_ARGS:-} != *kprobe* ]] &&
		check_eq "$name: every one out of the hash again (conn_spilled)" 0 "$(conn_spilled)"
}
# (the connect in progress at start that times out is over first: it is in the hash)
wait_pid "$SLOW_TO" 60 || fail "in progress: SLOW_TO ended" "still running after 60 s"
# the first batch times out 7 s after its SYNs, and moves only once held over a second
pending_run "connects pending at once" PEND 9000 "$PEND_N" "$PEND_BURN" 3 5.5

# Reads that ask for no source (recv(), read(), recvmsg() without msg_name) on an unconnected
# socket that gets IPv4 and IPv6 datagrams (of different sizes) interleaved: only the IPv4
# ones are counted, with their source. With a small receive buffer the kernel drops most of
# them: only those read count.
noaddr_case() { # NAME PORT HOW [RCVBUF] (PROTO: udp, or udplite)
	local name=$1 port=$2 how=$3 v4
	case_run "$name" ok "$SP" "${PROTO:-udp}-noaddr" "$port" 40 11 22 "$how" ${4:+"$4"}
	v4=$(kv "$LINE" v4)
	[[ -z ${4:-} ]] && check_eq "$name: the program read every IPv4 datagram" 40 "$v4"
	expect_events "$name: events" "$CPID" "$(ev_json event=recv proto="${PROTO:-udp}" pid="$CPID" \
		comm=sockpaths lport="$port" raddr=127.0.0.1 rport='~number' ret=0)"
	expect_proc "$name: process" "$CPID" "$(proc_counts 0 0 0 "$v4" 0 1 $((v4 * 11)))"
}
noaddr_case "UDP recv() without address" 5410 recv
noaddr_case "UDP read()" 5411 read
noaddr_case "UDP recvmsg() without msg_name" 5412 recvmsg
noaddr_case "UDP read(), receive buffer overflowing" 5413 read 3000
PROTO=udplite noaddr_case "UDP-Lite recv() without address" 5414 recv

# bind() to a mapped address: works (an IPv4-only socket in IPv6 clothing), refused on a
# v6-only socket (EINVAL), or no such local address (EADDRNOTAVAIL).
bindev() { # NAME PID LADDR LPORT RET ERROR
	expect_events "$1: events" "$2" "$(ev_json event=bind proto=udp pid="$2" comm=sockpaths \
		laddr="$3" lport="$4" raddr=null rport=null ret="$5" error="$6")"
}
case_run "bind to a mapped address" ok "$SP" bind ::ffff:127.0.0.1 7000 0
bindev "bind to a mapped address" "$CPID" 127.0.0.1 7000 0 null
expect_proc "bind to a mapped address: process" "$CPID" none
case_run "bind to a mapped address, v6-only" EINVAL "$SP" bind ::ffff:127.0.0.1 7001 1
bindev "bind to a mapped address, v6-only" "$CPID" 127.0.0.1 7001 -22 EINVAL
expect_proc "bind to a mapped address, v6-only: process" "$CPID" "$(proc_counts 0 0 0 0 1 0 0)"
case_run "bind to a mapped address not here" EADDRNOTAVAIL "$SP" bind ::ffff:192.0.2.99 7002 0
bindev "bind to a mapped address not here" "$CPID" 192.0.2.99 7002 -99 EADDRNOTAVAIL
# and a native IPv6 bind is nothing
case_run "bind to ::1" ok "$SP" bind ::1 7003 0
expect_events "bind to ::1: events (none)" "$CPID"

for v in SLOW_OK SLOW_REF BF_ACCEPT BF_CLOSE; do
	wait_pid "${!v}" 60 || fail "in progress: $v ended" "still running after 60 s"
done
in_progress() { # NAME PID RESULT RET ERROR RPORT RADDR
	local base lport=null
	base=$(fbase "in progress: $1")
	check_eq "in progress: $1: the program's result" "result=$3" "$(tail -n 1 "$base.out")"
	[[ $4 == 0 ]] && lport=$(kv "$(head -n 1 "$base.out")" lport)
	expect_events "in progress: $1: events" "$2" "$(ev_json event=connect proto=tcp pid="$2" \
		comm=sockpaths raddr="$7" rport="$6" lport="$lport" ret="$4" error="$5")"
	if [[ $4 == 0 ]]; then
		expect_proc "in progress: $1: process" "$2" "$(proc_counts 1 0 0 0 0 1 0)"
	else
		expect_proc "in progress: $1: process" "$2" "$(proc_counts 0 0 0 0 1 1 0)"
	fi
}
in_progress established "$SLOW_OK" ok 0 null 8091 127.0.0.1
in_progress refused "$SLOW_REF" ECONNREFUSED -111 ECONNREFUSED 8092 127.0.0.1
check_eq "in progress: timed out: the program's result" "result=ETIMEDOUT" \
	"$(tail -n 1 "$(fbase "in progress: timed out").out")"
TO_NAMES+=("in progress: timed out") TO_PIDS+=("$SLOW_TO") TO_PORTS+=(84)
check_eq "in progress: the listener accepted both" "accepted=2 result=ok" \
	"$(tail -n 1 "$(fbase "in progress: listener, then accept").out")"
expect_events "in progress: the listener's accepts" "$BF_ACCEPT" \
	"$(ev_json event=accept proto=tcp pid="$BF_ACCEPT" comm=sockpaths laddr=127.0.0.1 \
		lport=8091 raddr=127.0.0.1 rport="$BF_FILL_PORT" ret=0)" \
	"$(ev_json event=accept proto=tcp pid="$BF_ACCEPT" comm=sockpaths laddr=127.0.0.1 \
		lport=8091 raddr=127.0.0.1 rport="$(kv "$(head -n 1 "$(fbase "in progress: established").out")" lport)" ret=0)"
expect_proc "in progress: the listener's process" "$BF_ACCEPT" "$(proc_counts 0 2 0 0 0 1 0)"
expect_events "in progress: the closing listener accepted nothing" "$BF_CLOSE"

kill -USR1 "$HOLD"
wait_pid "$HOLD" 10
check_eq "existing: the client's result" "result=ok" "$(tail -n 1 "$hold_base.out")"
wait_pid "$HSRV" 10
check_eq "existing: the server's result" "bytes=100 result=ok" "$(tail -n 1 "$hsrv_base.out")"
stop_pid "$SRV"
dstrace_stop
check_json_lines "output" "$OUT"
STATS=$(stats_record "$OUT")
MISSED=$(jq -r .drops.missed <<<"$STATS")
# Seen in 1 of ~30 runs here (6.18): some of the 12 000 timeouts below ran no program at all
UNSEEN=$(unseen_count)
[[ $UNSEEN != 0 ]] &&
	log "the kernel ran no program for the state change of $UNSEEN connects (counted in drops.missed)"

BLOCKED=$(process_counts "$OUT" "$BLOCKED_PID")
BLOCKED_RECV=$(kv "$BLOCKED" recv)
log "5000 threads blocked: $BLOCKED; missed $MISSED (backend $(jq -r .backend <<<"$STATS"))"
if [[ $(jq -r .backend <<<"$STATS") == kprobe ]]; then
	# the probe's own misses during the case; and the run's drops.missed has them all
	check_match "5000 threads blocked: kprobe_profile has dstrace's udpv6_recvmsg probe" \
		'^[0-9]+ [0-9]+$' "$BLOCKED_MISSED0 $BLOCKED_MISSED1" "its misses before and after"
	[[ $BLOCKED_MISSED0 =~ ^[0-9]+$ && $BLOCKED_MISSED1 =~ ^[0-9]+$ ]] ||
		BLOCKED_MISSED0=0 BLOCKED_MISSED1=0
	# the kernel counts a kretprobe's misses without atomics (rp->nmissed++ on every CPU):
	# with two CPUs missing at once it can come out a few short (903 of 904 once in 6.1)
	seen=$((${BLOCKED_RECV:-0} + BLOCKED_MISSED1 - BLOCKED_MISSED0))
	check_eq "5000 threads blocked: each datagram counted, or its return missed (kprobe_profile, to 1 %)" \
		yes "$([[ $seen -le $BLOCKED_N && $seen -ge $((BLOCKED_N * 99 / 100)) ]] && echo yes ||
			echo "no: $seen")"
	check_eq "5000 threads blocked: drops.missed counts the probe's misses" yes \
		"$([[ $MISSED -ge $((BLOCKED_MISSED1 - BLOCKED_MISSED0)) ]] && echo yes || echo "no: $MISSED")"
	check_eq "5000 threads blocked: the return probe followed at most 4096 at once" yes \
		"$([[ ${BLOCKED_RECV:-0} -le 4096 ]] && echo yes || echo "no: ${BLOCKED_RECV:-none}")"
	check_eq "5000 threads blocked: process" \
		"$(proc_counts 0 0 0 "$BLOCKED_RECV" 0 1 $((BLOCKED_RECV * 100)))" "$BLOCKED"
else
	check_eq "5000 threads blocked: none missed (but connects no program saw the outcome of)" \
		"$UNSEEN" "$MISSED"
	check_eq "5000 threads blocked: process" \
		"$(proc_counts 0 0 0 "$BLOCKED_N" 0 1 $((BLOCKED_N * 100)))" "$BLOCKED"
fi
PEND_EVENTS=$(events_in "$OUT" "$NSJ" ".pid == $PEND" |
	jq -sr 'group_by([.event, .ret, .error, .raddr]) |
		map("\(length) \(.[0].event) \(.[0].ret) \(.[0].error) \(.[0].raddr)") | join(", ")')
# Each timed-out connect reported, or counted unseen: exactly UNSEEN are missing in all
UNSEEN_LEFT=$UNSEEN
for i in "${!TO_PIDS[@]}"; do
	ev=$(events_in "$OUT" "$NSJ" ".pid == ${TO_PIDS[$i]}" |
		jq -sr 'map("\(.event) \(.proto) \(.ret) \(.error) \(.comm) \(.lport)->\(.raddr):\(.rport)") |
			join(", ")')
	want="connect tcp -110 ETIMEDOUT sockpaths null->198.51.100.2:${TO_PORTS[$i]}"
	if [[ -z $ev && $UNSEEN_LEFT -gt 0 ]]; then
		log "${TO_NAMES[$i]}: no event, one of the connects counted unseen"
		UNSEEN_LEFT=$((UNSEEN_LEFT - 1)) want=
	fi
	check_eq "${TO_NAMES[$i]}: events (or counted unseen)" "$want" "$ev"
	[[ -n $want ]] && check_eq "${TO_NAMES[$i]}: process" "$(proc_counts 0 0 0 0 1 1 0)" \
		"$(process_counts "$OUT" "${TO_PIDS[$i]}")"
done
check_eq "connects pending at once: one connect event each, timed out (or counted unseen)" \
	"$((PEND_N * 2 - UNSEEN_LEFT)) connect -110 ETIMEDOUT 198.51.100.2" "$PEND_EVENTS"
check_eq "connects pending at once: process" \
	"$(proc_counts 0 0 0 0 $((PEND_N * 2 - UNSEEN_LEFT)) 1 0)" "$(process_counts "$OUT" "$PEND")"
check_eq "connects pending at once: no pending connect without room (drops.stash_full)" 0 \
	"$(jq -r '.drops.stash_full' <<<"$STATS")"
check_eq "every count had its process's entry (drops.proc_full)" 0 \
	"$(jq -r '.drops.proc_full' <<<"$STATS")"
check_expectations "$OUT" "$NSJ"

# Connects that wait for their outcome longer than DSTRACE_CONNECT_WAIT_MAX seconds (here 3;
# their SYNs time out after 7 s) are given up, each counted (drops.stash_full), in their
# slots and in the hash alike: 2 x 500 to the silent peer, 15 884 refused connects between
# the batches (so the second batch finds the first's slots held, and goes to the hash, or
# moves the first batch there). No connect event, none left behind.
GOUT=$WORK/sockpaths-giveup.jsonl
if DSTRACE_CONNECT_WAIT_MAX=3 dstrace_start "$GOUT" "${extra[@]}"; then
	GIVE_N=500 GIVE_BURN=15884
	[[ ${DSTRACE_ARGS:-} == *kprobe* ]] && GIVE_BURN=0
	# the first batch is given up 3-4 s after it was made (moved to the hash first if the
	# second came after a second): the look at the hash, 1.5 s or more before that, is not
	# too late; a second batch made after 3 s finds their slots free
	pending_run "connects given up" GIVE 9100 "$GIVE_N" "$GIVE_BURN" 0 1.5
	# the program has ended: its process entry, whose connects were all given up, is not
	# held for them (it was, DSTRACE_CONNECT_WAIT_MAX after its end, then counted again in
	# drops.proc_full); folded and gone from the kernel's tables within a harvest or two
	sleep 3
	check_eq "connects given up: the ended program's entry is not held for them" 0 \
		"$(for m in proc_exited proc_stats; do bpftool -j map dump name "$m" 2>/dev/null; done |
			jq -s --argjson pid "$GIVE" '[.[][] | select(.formatted.key == $pid)] | length')"
	dstrace_stop
	check_json_lines "given up: output" "$GOUT"
	check_eq "connects given up: no connect event" 0 \
		"$(events_in "$GOUT" "$NSJ" ".pid == $GIVE" | wc -l)"
	check_eq "connects given up: each counted (drops.stash_full)" $((GIVE_N * 2)) \
		"$(stats_record "$GOUT" | jq -r .drops.stash_full)"
	check_eq "connects given up: nothing else lost (drops.missed, lost, proc_full)" \
		"$(unseen_count) 0 0" \
		"$(stats_record "$GOUT" | jq -r '"\(.drops.missed) \(.drops.lost) \(.drops.proc_full)"')"
fi

# Unseen: the kernel does not always run a tracepoint's programs, nor always count a miss.
# On 6.18 here, SYN timeouts in a softirq that had interrupted a Rust runtime's worker
# thread ran no BPF program on inet_sock_set_state (dstrace's nor a perf tracepoint's) while
# ftrace's own event recorded them, and no recursion_misses moved. DSTRACE_FAULT_SKIP_STATE=
# K:ADDR makes dstrace ignore the next K state changes out of SYN_SENT of connects to
# ::ffff:ADDR, as that kernel did: each such connect must be counted in drops.missed (and said
# on stderr) when its program closes the socket, out of SYN_SENT; the others reported as
# ever. Timed out: 5 connects, 3 unseen (on a kernel without tcp_done_with_error(), 5.10,
# the error report decides a timed-out connect before its state change: none unseen);
# established (dstrace started again): 4 programs that connect to 127.0.0.9 (only here) and
# close, the first 2 unseen; between them, one socket connected twice to a closed port, its
# first refusal unseen: counted when the second connect starts, the second reported.
unseen_run() { # NAME OUT K: stop dstrace; K connects counted unseen, nothing else lost
	local name=$1 out=$2 k=$3
	dstrace_stop
	check_json_lines "$name: output" "$out"
	check_eq "$name: counted in drops.missed, nothing else lost" "$k 0 0" \
		"$(stats_record "$out" | jq -r '"\(.drops.missed) \(.drops.lost) \(.drops.stash_full)"')"
	check_eq "$name: said on stderr" "$k" "$(unseen_count)"
}
UOUT=$WORK/sockpaths-unseen.jsonl
USKIP=0
bpftool btf dump file /sys/kernel/btf/vmlinux | grep -q "FUNC 'tcp_done_with_error'" && USKIP=3
if DSTRACE_FAULT_SKIP_STATE=3:198.51.100.2 dstrace_start "$UOUT" "${extra[@]}"; then
	cli "unseen: timed out" lo "$SP" tcp-pending ::ffff:198.51.100.2 9200 5 0 0 0
	UPID=$CPID
	LINE=$(tail -n 1 "$(fbase "unseen: timed out").out")
	check_eq "unseen: timed out: the program's result" "ok 5 0" \
		"$(kv "$LINE" result) $(kv "$LINE" timedout) $(kv "$LINE" other)"
	unseen_run "unseen: timed out" "$UOUT" "$USKIP"
	check_eq "unseen: timed out: the others reported" "$((5 - USKIP)) connect -110 ETIMEDOUT" \
		"$(events_in "$UOUT" "$NSJ" ".pid == $UPID" |
			jq -sr 'group_by([.event, .ret, .error]) |
				map("\(length) \(.[0].event) \(.[0].ret) \(.[0].error)") | join(", ")')"
	check_eq "unseen: timed out: process" "$(proc_counts 0 0 0 0 $((5 - USKIP)) 1 0)" \
		"$(process_counts "$UOUT" "$UPID")"
fi
srv_start UNSEEN_SRV lo "unseen: server" "$PROGS/tcpserv6" -n 0 8090 || true
UOUT2=$WORK/sockpaths-unseen2.jsonl
if DSTRACE_FAULT_SKIP_STATE=3:127.0.0.9 dstrace_start "$UOUT2" "${extra[@]}"; then
	UPIDS=()
	for i in 1 2 3 4; do
		if ((i == 3)); then
			case_run "unseen: connected again" ECONNREFUSED "$SP" tcp-twice ::ffff:127.0.0.9 8091
			TWICE=$CPID
		fi
		case_run "unseen: established $i" ok "$SP" tcp-block ::ffff:127.0.0.9 8090
		UPIDS+=("$CPID")
	done
	unseen_run "unseen: established" "$UOUT2" 3
	check_eq "unseen: connected again: the second connect reported" \
		"1 connect -111 ECONNREFUSED 127.0.0.9 8091" \
		"$(events_in "$UOUT2" "$NSJ" ".pid == $TWICE" |
			jq -sr 'map("\(.event) \(.ret) \(.error) \(.raddr) \(.rport)") | group_by(.) |
				map("\(length) \(.[0])") | join(", ")')"
	for i in 0 1 2 3; do
		want=0
		((i >= 2)) && want=1
		check_eq "unseen: established $((i + 1)): connect events" "$want" \
			"$(events_in "$UOUT2" "$NSJ" ".pid == ${UPIDS[$i]} and .event == \"connect\" and .ret == 0" | wc -l)"
	done
fi
[[ -n ${UNSEEN_SRV:-} ]] && stop_pid "$UNSEEN_SRV"

# The audit's side of connects given up by the process's end (--audit, its program's
# records): each outcome in its program's counts (failed.total as by_errno), also when the
# program the process exec()ed with the socket open makes an entry of its own first (a
# mapped connect: the pid's newer entry, followed beside the one held for the outcome);
# nothing in drops.proc_full.
AOUT=$WORK/sockpaths-audit.jsonl
# audit_udp EXE: the UDP datagrams, replies and peers of the program EXE (its file name) in
# the final set of audit records, in the test's namespaces
audit_udp() {
	jq -sc --argjson ns "$NSJ" --arg exe "$1" '
		(map(select(.type == "audit_run")) | last | .ts) as $ts |
		map(select(.type == "audit" and .ts == $ts and (.exe | endswith("/" + $exe))
			and (.netns as $n | $ns | index($n)))) |
		map({sent: {udp_datagrams: .sent.udp_datagrams, udp_replies: .sent.udp_replies},
		     received: {udp_datagrams: .received.udp_datagrams,
				udp_replies: .received.udp_replies},
		     peers: [.peers[] | "\(.dir)/\(.proto)/\(.addr):\(.port)=\(.count)"] | sort})' \
		"$AOUT"
}
srv_start ASRV lo "audit: server" "$PROGS/tcpserv6" -n 0 8094 || true
# UDP exchanges under way before dstrace starts, in which the side that did not begin speaks
# first once it runs (udpflows exchange, one program): a client connected to its server
# (3 datagrams each way, from a child it forks then), a service's socket connected to its
# client, on the port of its unconnected one (4 each way); and on unconnected sockets
# (sendto()), a client's on a port the kernel chose (2 each way) and a service's on its bound
# port (5 each way). Replies are told by who began, not by who spoke first. Once the scan's
# notes have had their 10 s (12 s after start), the service's socket begins a new exchange
# with a new peer (127.0.0.1:8118, one each way): told by its first datagram, as the
# service's own.
UX=()
for role in client server client-unconnected server-unconnected; do
	xbase=$(fbase "audit: UDP exchange under way: $role")
	case $role in
	client) bg_start UXPID lo "$xbase" "$PROGS/udpflows" exchange -f -n 3 8110 ;;
	server) bg_start UXPID lo "$xbase" "$PROGS/udpflows" exchange -s -n 4 8112 ;;
	client-unconnected) bg_start UXPID lo "$xbase" "$PROGS/udpflows" exchange -u -n 2 8114 ;;
	server-unconnected)
		bg_start UXPID lo "$xbase" "$PROGS/udpflows" exchange -s -u -l -n 5 8116
		UXLATER=$UXPID:$xbase
		;;
	esac
	PIDS+=("$UXPID")
	UX+=("$UXPID:$xbase")
	wait_line "$xbase.out" '^ready' 5 || fail "audit: UDP exchange under way: $role ready" \
		"$(cat "$xbase.out" "$xbase.err")"
done
if dstrace_start_raw /dev/null --audit -o "$AOUT" -i 1 "${extra[@]}"; then
	started_s=$SECONDS
	for x in "${UX[@]}"; do
		kill -USR1 "${x%%:*}"
		wait_line "${x#*:}.out" '^exchanged' 10 ||
			fail "audit: UDP exchange under way: $(basename "${x#*:}")" "$(cat "${x#*:}.err")"
	done
	for how in exit fork exec; do
		case_run "audit: given up by the process's end: $how" ok "$SP" tcp-abandon \
			::ffff:198.51.100.2 83 "$how"
	done
	case_run "audit: given up by the process's end: exec, then a connect" ok "$SP" \
		tcp-abandon ::ffff:198.51.100.2 83 exec ::ffff:127.0.0.1 8094
	check_eq "audit: the exec()ed program connected" "result=ok" \
		"$(tail -n 1 "$(fbase "audit: given up by the process's end: exec, then a connect").out")"
	# a program whose only traffic is a thread's that named itself: named as its process
	cli "audit: a renamed thread connects" lo "$PROGS/tcp6mt" -n mt-connector \
		::ffff:127.0.0.1 8094
	# a UDP service on [::]:8095 answering an IPv4-mapped client, both udp6 (one program):
	# 5 queries each way of its exchange, 5 replies each way of the other's
	srv_start USRV lo "audit: udp service" "$PROGS/udp6" recv -e -n 5 -t 10 8095 || true
	cli "audit: udp client" lo "$PROGS/udp6" send -n 5 -s 10 -w ::ffff:127.0.0.1 8095
	# the scan's notes of unconnected UDP sockets have had their 10 s and a tick (SECONDS
	# counts whole seconds: 13 of them are 12 at least)
	[ $((SECONDS - started_s)) -ge 13 ] || sleep $((13 - (SECONDS - started_s)))
	kill -USR1 "${UXLATER%%:*}"
	wait_line "${UXLATER#*:}.out" '^later' 10 ||
		fail "audit: a new UDP exchange after the scan's notes" "$(cat "${UXLATER#*:}.err")"
	sleep 2 # the sockets' last holders end, the audit's next set
	dstrace_stop
	check_eq "audit: whole JSON lines" ok "$(json_lines_ok "$AOUT")"
	# the final set's records of sockpaths: one program (no "?/sockpaths" made of late events)
	check_eq "audit: the program's counts" \
		'[{"exe":"sockpaths","connect":{"tcp":1,"udp":0},"failed":{"total":4,"by_errno":{"ECONNABORTED":4}}}]' \
		"$(jq -sc --argjson ns "$NSJ" '(map(select(.type == "audit_run")) | last | .ts) as $ts |
			map(select(.type == "audit" and .ts == $ts and (.exe | endswith("/sockpaths"))
				and (.netns as $n | $ns | index($n)))) |
			map({exe: (.exe | split("/") | last), connect, failed})' "$AOUT")"
	check_eq "audit: a program named as its process, not as the thread that acted" \
		'[{"comm":"tcp6mt","connect":{"tcp":1,"udp":0}}]' \
		"$(jq -sc --argjson ns "$NSJ" '(map(select(.type == "audit_run")) | last | .ts) as $ts |
			map(select(.type == "audit" and .ts == $ts and (.exe | endswith("/tcp6mt"))
				and (.netns as $n | $ns | index($n)))) | map({comm, connect})' "$AOUT")"
	# replies counted apart, not peers: the service's clients ("in", its port), the server
	# the client asked ("out"); the report sends nothing to the client's port
	check_eq "audit: UDP replies, not peers of their own" \
		'[{"sent":{"udp_datagrams":10,"udp_replies":5},"received":{"udp_datagrams":10,"udp_replies":5},"peers":["in/udp/127.0.0.1:8095=5","out/udp/127.0.0.1:8095=5"]}]' \
		"$(audit_udp udp6)"
	check_eq "audit: UDP exchanges under way at start: replies told by who began" \
		'[{"sent":{"udp_datagrams":15,"udp_replies":9},"received":{"udp_datagrams":15,"udp_replies":6},"peers":["in/udp/127.0.0.1:8112=4","in/udp/127.0.0.1:8116=5","out/udp/127.0.0.1:8110=3","out/udp/127.0.0.1:8114=2","out/udp/127.0.0.1:8118=1"]}]' \
		"$(audit_udp udpflows)"
	check_eq "audit: the report's verdict on the UDP service and its client" \
		"would stop receiving IPv4 datagrams on UDP port 8095 (5 datagrams from 1 peer); could no longer send to 127.0.0.1:8095/udp (5 datagrams)" \
		"$("$DSTRACE" report -j "$AOUT" | jq -r --argjson ns "$NSJ" '.programs[] |
			select((.exe | endswith("/udp6")) and (.netns as $n | $ns | index($n))) |
			.verdict.without_ipv4')"
	check_eq "audit: every count had its process's entry (drops.proc_full)" 0 \
		"$(jq -r 'select(.type == "audit_run") | .drops.proc_full' "$AOUT" | tail -n 1)"
fi
[[ -n ${ASRV:-} ]] && stop_pid "$ASRV"
[[ -n ${USRV:-} ]] && stop_pid "$USRV"
summary
