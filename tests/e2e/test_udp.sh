#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Mapped UDP end to end: datagrams sent and received by AF_INET6 sockets to and from IPv4
# peers, across the test's hosts and on loopback, with every send and recv system call.
#
#   sudo tests/e2e/test_udp.sh
#
# One dstrace run watches every case; cases are told apart by their processes' pids. For
# each case it checks what the programs did, then exactly which events dstrace wrote for
# their pids (one send and one recv event per flow, however many datagrams, field by
# field), and their per-process records: datagrams, payload bytes, failures and peers
# counted exactly. Hosts: topo_up's six, plus "cb", a dual-stack client host with
# net.ipv6.bindv6only=1. DSTRACE_ARGS adds arguments to dstrace (e.g. a backend).
#
# An event's laddr on a socket bound to the wildcard address (an unconnected sender, a
# receiver on [::]) is not pinned down by the spec: "0.0.0.0", the address on the wire or
# null are all accepted there; everywhere else every field is exact.
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_root
build_progs
topo_up
host_add_extra cb ds 192.0.2.14 2001:db8::14
ns_sysctl "$(ns_name cb)" net.ipv6.bindv6only=1
check_eq "host cb: net.ipv6.bindv6only" 1 "$(in_ns cb sysctl -n net.ipv6.bindv6only)"

OUT=$WORK/udp.jsonl
read -ra extra <<<"${DSTRACE_ARGS:-}"
if ! dstrace_start "$OUT" "${extra[@]}"; then
	summary
	exit 1
fi

S4=${HOST_V4[s4]} SDS4=${HOST_V4[sds]} CDS4=${HOST_V4[cds]} C44=${HOST_V4[c4]}

# --- what each case expects (lib.sh's expect_*), checked once dstrace has stopped ---------
PIDS=()			# every process of every case
FAILED_SENDS_PID=	# case "v6-only, 9 attempts": its events are counted at the end

# counts CONNECT SEND RECV FAILED PEERS BYTES: the process_counts line (accept is 0 in UDP).
counts() {
	proc_counts "$1" 0 "${@:2}"
}

# uev ROLE PID COMM EVENT LPORT RADDR RPORT [RET [LADDR]]: one expected UDP event. LADDR "-"
# (the default for ret 0) leaves laddr out, for expect_laddr to check.
uev() {
	local role=$1 pid=$2 comm=$3 event=$4 lport=$5 raddr=$6 rport=$7 ret=${8:-0} laddr=${9:--}
	local -a kv=(event="$event" proto=udp pid="$pid" tid="$pid" comm="$comm" uid=0
		netns="$(netns_inode "$role")" cgroup="~number" lport="$lport" raddr="$raddr"
		rport="$rport" ret="$ret")
	if [[ $ret == 0 ]]; then
		kv+=(error=null)
	else
		kv+=(error=ENETUNREACH laddr=null)
	fi
	[[ $laddr != - ]] && kv+=(laddr="$laddr")
	ev_json "${kv[@]}"
}

# --- running programs --------------------------------------------------------------------
# srv_done PID NAME WANT: the receiver exits 0 within 15 s; its result line must contain
# WANT (e.g. "received count=37 bytes=3700").
srv_done() {
	local pid=$1 name=$2 want=$3 line
	if wait_pid "$pid" 15; then
		line=$(sed -n 's/^\(received count=[0-9]* bytes=[0-9]*\).*/\1/p' "$(fbase "$name").out")
		check_eq "$name: receiver" "exit 0, $want" "exit $WAIT_RC, $line"
	else
		fail "$name: receiver" "expected exit 0, $want, got still running after 15 s: $(
			cat "$(fbase "$name").out")"
		stop_pid "$pid"
	fi
}

# client_ok NAME WANT: the client exited 0 and its result line starts with WANT.
client_ok() {
	local got=${LINE%% method=*}
	got=${got%% errno=none*}
	check_eq "$1: client" "exit 0, $2" "exit $RUN_RC, $got"
}

# client_failed NAME ERRNO: the client exited 1 and says "failed errno=ERRNO".
client_failed() {
	check_eq "$1: client" "exit 1, failed errno=$2" "exit $RUN_RC, $(
		sed -n 's/^\(failed errno=[A-Z0-9]*\).*/\1/p' <<<"$LINE")"
}

# --- A: dual-stack client (AF_INET6) -> IPv4-only server (AF_INET), every send method ---
# Mapped on the client only.
case_send_methods() {
	local i m n s port name spid
	local -a cases=("sendto 37 100" "sendmsg 41 64" "sendmmsg 150 20" "connect 23 100")
	for i in "${!cases[@]}"; do
		read -r m n s <<<"${cases[$i]}"
		port=$((7101 + i))
		name="A $m cds->s4"
		srv_start spid s4 "$name-srv" "$PROGS/udpflows" recv -4 -n "$n" "$port" || continue
		cli "$name" cds "$PROGS/udp6" send -m "$m" -n "$n" -s "$s" "$S4" "$port"
		client_ok "$name" "sent count=$n bytes=$((n * s))"
		srv_done "$spid" "$name-srv" "received count=$n bytes=$((n * s))"
		if [[ $m == connect ]]; then
			expect_events "$name: events of udp6 send -m $m -n $n -s $s" "$CPID" \
				"$(uev cds "$CPID" udp6 connect "$CLPORT" "$S4" "$port" 0 "$CDS4")" \
				"$(uev cds "$CPID" udp6 send "$CLPORT" "$S4" "$port" 0 "$CDS4")"
			expect_proc "$name: process record of udp6 send" "$CPID" \
				"$(counts 1 "$n" 0 0 1 $((n * s)))"
		else
			expect_events "$name: events of udp6 send -m $m -n $n -s $s" "$CPID" \
				"$(uev cds "$CPID" udp6 send "$CLPORT" "$S4" "$port")"
			expect_laddr "$name: laddr of the unconnected sender" "$CPID" 0.0.0.0 "$CDS4" null
			expect_proc "$name: process record of udp6 send" "$CPID" \
				"$(counts 0 "$n" 0 0 1 $((n * s)))"
		fi
		expect_events "$name: events of the AF_INET receiver (none)" "$spid"
		expect_proc "$name: process record of the AF_INET receiver" "$spid" none
	done
}

# --- B: IPv4-only client (AF_INET) -> dual-stack server (AF_INET6 on [::]), every recv --
# Mapped on the server only.
case_recv_methods() {
	local i m n s port name spid
	local -a cases=("recvfrom 29 100" "recvmsg 31 77" "recvmmsg 150 10")
	for i in "${!cases[@]}"; do
		read -r m n s <<<"${cases[$i]}"
		port=$((7111 + i))
		name="B $m c4->sds"
		srv_start spid sds "$name-srv" "$PROGS/udp6" recv -m "$m" -n "$n" "$port" || continue
		cli "$name" c4 "$PROGS/udpflows" send -4 -r "$n" -s "$s" "$SDS4" "$port"
		client_ok "$name" "sent datagrams=$n bytes=$((n * s)) failed=0"
		srv_done "$spid" "$name-srv" "received count=$n bytes=$((n * s))"
		expect_events "$name: events of udp6 recv -m $m (n=$n)" "$spid" \
			"$(uev sds "$spid" udp6 recv "$port" "$C44" "$CLPORT")"
		expect_laddr "$name: laddr of the receiver on [::]" "$spid" 0.0.0.0 "$SDS4" null
		expect_proc "$name: process record of udp6 recv" "$spid" \
			"$(counts 0 0 "$n" 0 1 $((n * s)))"
		expect_events "$name: events of the AF_INET sender (none)" "$CPID"
		expect_proc "$name: process record of the AF_INET sender" "$CPID" none
	done
}

# Reads into a buffer shorter than the datagram (cut), and the same with MSG_TRUNC: a read's
# bytes are what the call returns, the bytes the program got (MSG_TRUNC: the datagram's
# length), on every backend.
case_recv_truncated() {
	local i m n s b t port name spid got
	local -a cases=("recvfrom 7 100 10 -" "recvmsg 9 100 10 -T" "recvmmsg 12 80 8 -")
	for i in "${!cases[@]}"; do
		read -r m n s b t <<<"${cases[$i]}"
		if [[ $t == -T ]]; then
			got=$((n * s))
		else
			t= got=$((n * b))
		fi
		port=$((7116 + i))
		name="B $m into $b bytes${t:+ with MSG_TRUNC} c4->sds"
		# shellcheck disable=SC2086 # t: an option or none
		srv_start spid sds "$name-srv" "$PROGS/udp6" recv -m "$m" -n "$n" -b "$b" $t "$port" ||
			continue
		cli "$name" c4 "$PROGS/udpflows" send -4 -r "$n" -s "$s" "$SDS4" "$port"
		client_ok "$name" "sent datagrams=$n bytes=$((n * s)) failed=0"
		srv_done "$spid" "$name-srv" "received count=$n bytes=$got"
		expect_events "$name: events of udp6 recv -m $m -b $b $t (n=$n)" "$spid" \
			"$(uev sds "$spid" udp6 recv "$port" "$C44" "$CLPORT")"
		expect_proc "$name: process record of udp6 recv" "$spid" "$(counts 0 0 "$n" 0 1 "$got")"
	done
}

# --- C: both ends mapped across hosts, echo ----------------------------------------------
case_echo_hosts() {
	local name="C sendmmsg/recvmmsg echo cds->sds" port=7121 n=70 s=50 spid
	srv_start spid sds "$name-srv" "$PROGS/udp6" recv -m recvmmsg -e -n "$n" "$port" || return
	cli "$name" cds "$PROGS/udp6" send -m sendmmsg -n "$n" -s "$s" -w "$SDS4" "$port"
	client_ok "$name" "sent count=$n bytes=$((n * s))"
	check_eq "$name: echoes" "$n" "$(kv "$LINE" echoed)"
	srv_done "$spid" "$name-srv" "received count=$n bytes=$((n * s))"
	expect_events "$name: events of the client" "$CPID" \
		"$(uev cds "$CPID" udp6 send "$CLPORT" "$SDS4" "$port")" \
		"$(uev cds "$CPID" udp6 recv "$CLPORT" "$SDS4" "$port")"
	expect_laddr "$name: laddr of the client" "$CPID" 0.0.0.0 "$CDS4" null
	expect_proc "$name: process record of the client" "$CPID" \
		"$(counts 0 "$n" "$n" 0 1 $((2 * n * s)))"
	expect_events "$name: events of the server" "$spid" \
		"$(uev sds "$spid" udp6 recv "$port" "$CDS4" "$CLPORT")" \
		"$(uev sds "$spid" udp6 send "$port" "$CDS4" "$CLPORT")"
	expect_laddr "$name: laddr of the server" "$spid" 0.0.0.0 "$SDS4" null
	expect_proc "$name: process record of the server" "$spid" \
		"$(counts 0 "$n" "$n" 0 1 $((2 * n * s)))"
}

# --- D: loopback inside a namespace (::ffff:127.0.0.1) -----------------------------------
case_loopback() {
	local name port spid n s

	name="D1 sendmsg/recvmsg echo on loopback" port=7131 n=10 s=33
	srv_start spid cds "$name-srv" "$PROGS/udp6" recv -m recvmsg -e -n "$n" "$port" || return
	cli "$name" cds "$PROGS/udp6" send -m sendmsg -n "$n" -s "$s" -w 127.0.0.1 "$port"
	client_ok "$name" "sent count=$n bytes=$((n * s))"
	srv_done "$spid" "$name-srv" "received count=$n bytes=$((n * s))"
	expect_events "$name: events of the client" "$CPID" \
		"$(uev cds "$CPID" udp6 send "$CLPORT" 127.0.0.1 "$port")" \
		"$(uev cds "$CPID" udp6 recv "$CLPORT" 127.0.0.1 "$port")"
	expect_laddr "$name: laddr of the client" "$CPID" 0.0.0.0 127.0.0.1 null
	expect_proc "$name: process record of the client" "$CPID" \
		"$(counts 0 "$n" "$n" 0 1 $((2 * n * s)))"
	expect_events "$name: events of the server" "$spid" \
		"$(uev cds "$spid" udp6 recv "$port" 127.0.0.1 "$CLPORT")" \
		"$(uev cds "$spid" udp6 send "$port" 127.0.0.1 "$CLPORT")"
	expect_laddr "$name: laddr of the server" "$spid" 0.0.0.0 127.0.0.1 null
	expect_proc "$name: process record of the server" "$spid" \
		"$(counts 0 "$n" "$n" 0 1 $((2 * n * s)))"

	# A connected socket: connect event (proto udp), send() with no address, and the echoes
	# read with recv(), no source address asked for: seen through the connected peer.
	name="D2 connected UDP on loopback, recv() without address" port=7132 n=12 s=40
	srv_start spid cds "$name-srv" "$PROGS/udp6" recv -e -n "$n" "$port" || return
	cli "$name" cds "$PROGS/udpflows" send -m connect -w -N -r "$n" -s "$s" 127.0.0.1 "$port"
	client_ok "$name" "sent datagrams=$n bytes=$((n * s)) failed=0"
	check_eq "$name: echoes" "$n" "$(kv "$LINE" echoed)"
	srv_done "$spid" "$name-srv" "received count=$n bytes=$((n * s))"
	expect_events "$name: events of the client" "$CPID" \
		"$(uev cds "$CPID" udpflows connect "$CLPORT" 127.0.0.1 "$port" 0 127.0.0.1)" \
		"$(uev cds "$CPID" udpflows send "$CLPORT" 127.0.0.1 "$port" 0 127.0.0.1)" \
		"$(uev cds "$CPID" udpflows recv "$CLPORT" 127.0.0.1 "$port" 0 127.0.0.1)"
	expect_proc "$name: process record of the client" "$CPID" \
		"$(counts 1 "$n" "$n" 0 1 $((2 * n * s)))"
	expect_events "$name: events of the server" "$spid" \
		"$(uev cds "$spid" udp6 recv "$port" 127.0.0.1 "$CLPORT")" \
		"$(uev cds "$spid" udp6 send "$port" 127.0.0.1 "$CLPORT")"
	expect_laddr "$name: laddr of the server" "$spid" 0.0.0.0 127.0.0.1 null
	expect_proc "$name: process record of the server" "$spid" \
		"$(counts 0 "$n" "$n" 0 1 $((2 * n * s)))"

	# One socket, 3 addresses x 5 ports, 4 rounds: 15 flows, 60 datagrams (no receiver:
	# the kernel answers with ICMP, which an unconnected socket does not see).
	local evs=() a p
	name="D3 15 flows x 4 rounds, sendto" port=7140
	cli "$name" cds "$PROGS/udpflows" send -a 3 -p 5 -r 4 -s 10 127.0.0.1 "$port"
	client_ok "$name" "sent datagrams=60 bytes=600 failed=0"
	for a in 1 2 3; do
		for p in 0 1 2 3 4; do
			evs+=("$(uev cds "$CPID" udpflows send "$CLPORT" "127.0.0.$a" $((port + p)))")
		done
	done
	expect_events "$name: one send event per flow" "$CPID" "${evs[@]}"
	expect_laddr "$name: laddr of the sender" "$CPID" 0.0.0.0 127.0.0.1 127.0.0.2 127.0.0.3 null
	expect_proc "$name: process record" "$CPID" "$(counts 0 60 0 0 3 600)"

	evs=()
	name="D4 12 flows x 3 rounds, sendmmsg batches of 7" port=7150
	cli "$name" cds "$PROGS/udpflows" send -m sendmmsg -b 7 -a 2 -p 6 -r 3 -s 25 127.0.0.1 "$port"
	client_ok "$name" "sent datagrams=36 bytes=900 failed=0"
	for a in 1 2; do
		for p in 0 1 2 3 4 5; do
			evs+=("$(uev cds "$CPID" udpflows send "$CLPORT" "127.0.0.$a" $((port + p)))")
		done
	done
	expect_events "$name: one send event per flow" "$CPID" "${evs[@]}"
	expect_laddr "$name: laddr of the sender" "$CPID" 0.0.0.0 127.0.0.1 127.0.0.2 null
	expect_proc "$name: process record" "$CPID" "$(counts 0 36 0 0 2 900)"

	# MSG_PEEK is not a datagram received: each one is peeked at, then read.
	name="D5 MSG_PEEK then recvfrom" port=7160 n=6 s=70
	srv_start spid cds "$name-srv" "$PROGS/udpflows" recv -P -n "$n" "$port" || return
	cli "$name" cds "$PROGS/udp6" send -n "$n" -s "$s" 127.0.0.1 "$port"
	client_ok "$name" "sent count=$n bytes=$((n * s))"
	srv_done "$spid" "$name-srv" "received count=$n bytes=$((n * s))"
	check_eq "$name: peeks" "$n" "$(kv "$(grep '^received' "$(fbase "$name-srv").out")" peeked)"
	expect_events "$name: events of the receiver" "$spid" \
		"$(uev cds "$spid" udpflows recv "$port" 127.0.0.1 "$CLPORT")"
	expect_laddr "$name: laddr of the receiver" "$spid" 0.0.0.0 127.0.0.1 null
	expect_proc "$name: process record of the receiver (peeks not counted)" "$spid" \
		"$(counts 0 0 "$n" 0 1 $((n * s)))"
	expect_events "$name: events of the sender" "$CPID" \
		"$(uev cds "$CPID" udp6 send "$CLPORT" 127.0.0.1 "$port")"
	expect_laddr "$name: laddr of the sender" "$CPID" 0.0.0.0 127.0.0.1 null
	expect_proc "$name: process record of the sender" "$CPID" "$(counts 0 "$n" 0 0 1 $((n * s)))"

	# Empty datagrams are datagrams.
	name="D6 zero-length datagrams" port=7161 n=5
	srv_start spid cds "$name-srv" "$PROGS/udp6" recv -n "$n" "$port" || return
	cli "$name" cds "$PROGS/udp6" send -n "$n" -s 0 127.0.0.1 "$port"
	client_ok "$name" "sent count=$n bytes=0"
	srv_done "$spid" "$name-srv" "received count=$n bytes=0"
	expect_events "$name: events of the sender" "$CPID" \
		"$(uev cds "$CPID" udp6 send "$CLPORT" 127.0.0.1 "$port")"
	expect_laddr "$name: laddr of the sender" "$CPID" 0.0.0.0 127.0.0.1 null
	expect_proc "$name: process record of the sender" "$CPID" "$(counts 0 "$n" 0 0 1 0)"
	expect_events "$name: events of the receiver" "$spid" \
		"$(uev cds "$spid" udp6 recv "$port" 127.0.0.1 "$CLPORT")"
	expect_laddr "$name: laddr of the receiver" "$spid" 0.0.0.0 127.0.0.1 null
	expect_proc "$name: process record of the receiver" "$spid" "$(counts 0 0 "$n" 0 1 0)"

	# Corked datagrams: each one written in 3 calls, the first two with MSG_MORE; the
	# kernel sends one datagram of the 3 parts. Unconnected (sendto) and connected (send).
	local m conn mp
	for mp in "sendto 7162" "connect 7163"; do
		read -r m port <<<"$mp"
		name="D7 MSG_MORE, 3 parts per datagram, $m" n=4 s=30
		srv_start spid cds "$name-srv" "$PROGS/udp6" recv -n "$n" "$port" || return
		cli "$name" cds "$PROGS/udpflows" send -m "$m" -M 3 -r "$n" -s "$s" 127.0.0.1 "$port"
		client_ok "$name" "sent datagrams=$n bytes=$((n * s)) failed=0"
		srv_done "$spid" "$name-srv" "received count=$n bytes=$((n * s))"
		conn=0
		if [[ $m == connect ]]; then
			conn=1
			expect_events "$name: events of the sender" "$CPID" \
				"$(uev cds "$CPID" udpflows connect "$CLPORT" 127.0.0.1 "$port" 0 127.0.0.1)" \
				"$(uev cds "$CPID" udpflows send "$CLPORT" 127.0.0.1 "$port" 0 127.0.0.1)"
		else
			expect_events "$name: events of the sender" "$CPID" \
				"$(uev cds "$CPID" udpflows send "$CLPORT" 127.0.0.1 "$port")"
			expect_laddr "$name: laddr of the sender" "$CPID" 0.0.0.0 127.0.0.1 null
		fi
		expect_proc "$name: process record of the sender (datagrams, not calls)" "$CPID" \
			"$(counts "$conn" "$n" 0 0 1 $((n * s)))"
		expect_events "$name: events of the receiver" "$spid" \
			"$(uev cds "$spid" udp6 recv "$port" 127.0.0.1 "$CLPORT")"
		expect_laddr "$name: laddr of the receiver" "$spid" 0.0.0.0 127.0.0.1 null
		expect_proc "$name: process record of the receiver" "$spid" \
			"$(counts 0 0 "$n" 0 1 $((n * s)))"
	done

	# UDP_SEGMENT (GSO, as QUIC stacks use it): one call of 1000 bytes leaves as 10
	# datagrams of 100 bytes, and the receiver gets 10.
	name="D8 UDP_SEGMENT 100, one 1000-byte call = 10 datagrams" port=7164 n=10
	srv_start spid cds "$name-srv" "$PROGS/udp6" recv -n "$n" "$port" || return
	cli "$name" cds "$PROGS/udpflows" send -G 100 -s 1000 127.0.0.1 "$port"
	client_ok "$name" "sent datagrams=1 bytes=1000 failed=0"
	check_eq "$name: datagrams on the wire" "$n" "$(kv "$LINE" wire)"
	srv_done "$spid" "$name-srv" "received count=$n bytes=1000"
	expect_events "$name: events of the sender" "$CPID" \
		"$(uev cds "$CPID" udpflows send "$CLPORT" 127.0.0.1 "$port")"
	expect_laddr "$name: laddr of the sender" "$CPID" 0.0.0.0 127.0.0.1 null
	expect_proc "$name: process record of the sender (datagrams on the wire)" "$CPID" \
		"$(counts 0 "$n" 0 0 1 1000)"
	expect_events "$name: events of the receiver" "$spid" \
		"$(uev cds "$spid" udp6 recv "$port" 127.0.0.1 "$CLPORT")"
	expect_laddr "$name: laddr of the receiver" "$spid" 0.0.0.0 127.0.0.1 null
	expect_proc "$name: process record of the receiver" "$spid" "$(counts 0 0 "$n" 0 1 1000)"

	# UDP_SEGMENT per call, in a control message after another one (IP_TOS), as QUIC stacks
	# send it: 3 calls of 1000 bytes (sendmmsg: one call of 3 messages) = 30 datagrams.
	local m i=0
	for m in sendmsg sendmmsg; do
		name="D9 UDP_SEGMENT 100 per call ($m), 3 x 1000 bytes = 30 datagrams"
		port=$((7165 + i)) n=30
		i=$((i + 1))
		srv_start spid cds "$name-srv" "$PROGS/udp6" recv -n "$n" "$port" || return
		cli "$name" cds "$PROGS/udpflows" send -m "$m" -C 100 -s 1000 -r 3 127.0.0.1 "$port"
		client_ok "$name" "sent datagrams=3 bytes=3000 failed=0"
		check_eq "$name: datagrams on the wire" "$n" "$(kv "$LINE" wire)"
		srv_done "$spid" "$name-srv" "received count=$n bytes=3000"
		expect_events "$name: events of the sender" "$CPID" \
			"$(uev cds "$CPID" udpflows send "$CLPORT" 127.0.0.1 "$port")"
		expect_proc "$name: process record of the sender (datagrams on the wire)" "$CPID" \
			"$(counts 0 "$n" 0 0 1 3000)"
		expect_events "$name: events of the receiver" "$spid" \
			"$(uev cds "$spid" udp6 recv "$port" 127.0.0.1 "$CLPORT")"
		expect_proc "$name: process record of the receiver" "$spid" \
			"$(counts 0 0 "$n" 0 1 3000)"
	done

	# A receiver that asks for GRO (UDP_GRO, as QUIC servers do) gets each GSO call's 10
	# datagrams in one read: 30 datagrams in 3 reads, with its source address, without, and
	# on a socket connected to the sender (local port 7170).
	local how opts reads
	i=0
	for how in "with address" "without address" "connected"; do
		case $how in
		with*) opts=(-g) ;;
		without*) opts=(-g -N) ;;
		*) opts=(-g -c 127.0.0.1:7170) ;;
		esac
		name="D10 UDP_GRO receiver ($how): 30 datagrams in 3 reads"
		port=$((7167 + i)) n=30
		i=$((i + 1))
		srv_start spid cds "$name-srv" "$PROGS/udpflows" recv "${opts[@]}" -n "$n" "$port" ||
			return
		cli "$name" cds "$PROGS/udpflows" send -m sendmsg -l 7170 -C 100 -s 1000 -r 3 \
			127.0.0.1 "$port"
		client_ok "$name" "sent datagrams=3 bytes=3000 failed=0"
		srv_done "$spid" "$name-srv" "received count=$n bytes=3000"
		# Linux 5.10 cuts a GSO packet over loopback before a UDP_GRO socket gets it: 30
		# reads there, counted the same
		reads=$(kv "$(cat "$(fbase "$name-srv").out")" reads)
		if [[ $reads == 30 ]]; then
			log "$name: this kernel delivered the datagrams one by one (30 reads)"
		else
			check_eq "$name: reads" 3 "$reads"
		fi
		expect_events "$name: events of the sender" "$CPID" \
			"$(uev cds "$CPID" udpflows send 7170 127.0.0.1 "$port")"
		expect_proc "$name: process record of the sender" "$CPID" \
			"$(counts 0 "$n" 0 0 1 3000)"
		if [[ $how == connected ]]; then
			expect_events "$name: events of the receiver" "$spid" \
				"$(uev cds "$spid" udpflows connect "$port" 127.0.0.1 7170 0 127.0.0.1)" \
				"$(uev cds "$spid" udpflows recv "$port" 127.0.0.1 7170 0 127.0.0.1)"
			expect_proc "$name: process record of the receiver" "$spid" \
				"$(counts 1 0 "$n" 0 1 3000)"
		else
			expect_events "$name: events of the receiver" "$spid" \
				"$(uev cds "$spid" udpflows recv "$port" 127.0.0.1 7170)"
			expect_proc "$name: process record of the receiver" "$spid" \
				"$(counts 0 0 "$n" 0 1 3000)"
		fi
	done
}

# --- E: IPV6_V6ONLY=1 sockets sending to a mapped address: ENETUNREACH -----------------
case_v6only() {
	local m name port i=0
	for m in sendto sendmsg sendmmsg connect; do
		port=$((7171 + i))
		i=$((i + 1))
		name="E v6-only $m"
		cli "$name" cds "$PROGS/udp6" send -6 -m "$m" -n 5 -s 100 "$S4" "$port"
		client_failed "$name" ENETUNREACH
		if [[ $m == connect ]]; then
			expect_events "$name: one failed connect event" "$CPID" "$(ev_json event=connect \
				proto=udp pid="$CPID" tid="$CPID" comm=udp6 uid=0 netns="$(netns_inode cds)" \
				cgroup="~number" laddr=null lport="~number|null" raddr="$S4" rport="$port" \
				ret=-101 error=ENETUNREACH)"
		else
			expect_events "$name: one failed send event" "$CPID" \
				"$(uev cds "$CPID" udp6 send null "$S4" "$port" -101)"
		fi
		expect_proc "$name: process record" "$CPID" "$(counts 0 0 0 1 1 0)"
	done

	# Keep trying: every failed datagram counts.
	name="E v6-only, 9 attempts" port=7175
	cli "$name" cds "$PROGS/udpflows" send -6 -k -r 9 -s 100 "$S4" "$port"
	check_eq "$name: client" "exit 1, sent datagrams=0 bytes=0 failed=9 errno=ENETUNREACH" \
		"exit $RUN_RC, ${LINE%% method=*}"
	expect_proc "$name: process record (failed = attempts)" "$CPID" "$(counts 0 0 0 9 1 0)"
	FAILED_SENDS_PID=$CPID
	FAILED_SENDS_NAME=$name
	FAILED_SENDS_PORT=$port
}

# --- F: net.ipv6.bindv6only=1 in the namespace: the same program now fails -------------
case_bindv6only() {
	local name="F bindv6only=1 namespace, udp6 send" port=7181
	cli "$name" cb "$PROGS/udp6" send -n 5 -s 100 "$S4" "$port"
	client_failed "$name" ENETUNREACH
	expect_events "$name: one failed send event" "$CPID" \
		"$(uev cb "$CPID" udp6 send null "$S4" "$port" -101)"
	expect_proc "$name: process record" "$CPID" "$(counts 0 0 0 1 1 0)"

	name="F bindv6only=1 namespace, udp6 send -m connect" port=7182
	cli "$name" cb "$PROGS/udp6" send -m connect -n 5 -s 100 "$S4" "$port"
	client_failed "$name" ENETUNREACH
	expect_events "$name: one failed connect event" "$CPID" "$(ev_json event=connect proto=udp \
		pid="$CPID" tid="$CPID" comm=udp6 uid=0 netns="$(netns_inode cb)" cgroup="~number" \
		laddr=null lport="~number|null" raddr="$S4" rport="$port" ret=-101 error=ENETUNREACH)"
	expect_proc "$name: process record" "$CPID" "$(counts 0 0 0 1 1 0)"
}

# --- G: native IPv6 and AF_INET: nothing -------------------------------------------------
case_native() {
	local name port spid

	name="G native IPv6 cds->sds" port=7191
	srv_start spid sds "$name-srv" "$PROGS/udp6" recv -e -n 5 "$port" || return
	cli "$name" cds "$PROGS/udp6" send -n 5 -s 100 -w "${HOST_V6[sds]}" "$port"
	client_ok "$name" "sent count=5 bytes=500"
	srv_done "$spid" "$name-srv" "received count=5 bytes=500"
	check_eq "$name: on the wire" ipv6 "$(kv "$LINE" wire)"
	expect_events "$name: events of the sender (none)" "$CPID"
	expect_proc "$name: process record of the sender" "$CPID" none
	expect_events "$name: events of the receiver (none)" "$spid"
	expect_proc "$name: process record of the receiver" "$spid" none

	name="G native IPv6 on loopback ::1" port=7192
	srv_start spid cds "$name-srv" "$PROGS/udp6" recv -m recvmmsg -e -n 5 "$port" || return
	cli "$name" cds "$PROGS/udpflows" send -m connect -w -r 5 ::1 "$port"
	client_ok "$name" "sent datagrams=5 bytes=320 failed=0"
	srv_done "$spid" "$name-srv" "received count=5 bytes=320"
	expect_events "$name: events of the sender (none)" "$CPID"
	expect_proc "$name: process record of the sender" "$CPID" none
	expect_events "$name: events of the receiver (none)" "$spid"
	expect_proc "$name: process record of the receiver" "$spid" none

	# A socket connected to a mapped peer that names IPv6 destinations of its own: the
	# kernel refuses them (EAFNOSUPPORT, the source is IPv4), after the point where an IPv4
	# send would have been seen; they are not failed mapped sends. Its send()s are (and a
	# send() too long, EMSGSIZE, refused before any hook, is a failed one, to its peer).
	name="G connected to a mapped peer, sendto() an IPv6 address" port=7194
	srv_start spid cds "$name-srv" "$PROGS/udp6" recv -n 4 "$port" || return
	cli "$name" cds python3 "$REPO_ROOT/tests/progs/udpconn.py" 127.0.0.1 "$port" ::1 \
		$((port + 1)) 4
	client_ok "$name" "lport=$CLPORT native=EAFNOSUPPORT sent=4 big=EMSGSIZE"
	srv_done "$spid" "$name-srv" "received count=4 bytes=28"
	expect_events "$name: events of the sender" "$CPID" \
		"$(uev cds "$CPID" python3 connect "$CLPORT" 127.0.0.1 "$port" 0 127.0.0.1)" \
		"$(uev cds "$CPID" python3 send "$CLPORT" 127.0.0.1 "$port" 0 127.0.0.1)" \
		"$(ev_json event=send proto=udp pid="$CPID" tid="$CPID" comm=python3 uid=0 \
			netns="$(netns_inode cds)" cgroup="~number" laddr=null lport=null \
			raddr=127.0.0.1 rport="$port" ret=-90 error=EMSGSIZE)"
	expect_proc "$name: process record of the sender (the refused IPv6 sends not counted)" \
		"$CPID" "$(counts 1 4 0 1 1 28)"
	expect_events "$name: events of the receiver" "$spid" \
		"$(uev cds "$spid" udp6 recv "$port" 127.0.0.1 "$CLPORT")"
	expect_laddr "$name: laddr of the receiver" "$spid" 0.0.0.0 127.0.0.1 null
	expect_proc "$name: process record of the receiver" "$spid" "$(counts 0 0 4 0 1 28)"

	name="G AF_INET both ends cds->sds" port=7193
	srv_start spid sds "$name-srv" "$PROGS/udpflows" recv -4 -n 5 "$port" || return
	cli "$name" cds "$PROGS/udpflows" send -4 -m sendmmsg -r 5 "$SDS4" "$port"
	client_ok "$name" "sent datagrams=5 bytes=320 failed=0"
	srv_done "$spid" "$name-srv" "received count=5 bytes=320"
	expect_events "$name: events of the sender (none)" "$CPID"
	expect_proc "$name: process record of the sender" "$CPID" none
	expect_events "$name: events of the receiver (none)" "$spid"
	expect_proc "$name: process record of the receiver" "$spid" none
}

# --- H: the IPv6-only host has no route to IPv4: ENETUNREACH ------------------------------
case_v6host() {
	local name="H IPv6-only host, udp6 send" port=7201
	cli "$name" c6 "$PROGS/udp6" send -n 3 -s 100 "$S4" "$port"
	client_failed "$name" ENETUNREACH
	expect_events "$name: one failed send event" "$CPID" \
		"$(uev c6 "$CPID" udp6 send null "$S4" "$port" -101)"
	expect_proc "$name: process record" "$CPID" "$(counts 0 0 0 1 1 0)"

	name="H IPv6-only host, udp6 send -m connect" port=7202
	cli "$name" c6 "$PROGS/udp6" send -m connect -n 3 -s 100 "$S4" "$port"
	client_failed "$name" ENETUNREACH
	expect_events "$name: one failed connect event" "$CPID" "$(ev_json event=connect proto=udp \
		pid="$CPID" tid="$CPID" comm=udp6 uid=0 netns="$(netns_inode c6)" cgroup="~number" \
		laddr=null lport="~number|null" raddr="$S4" rport="$port" ret=-101 error=ENETUNREACH)"
	expect_proc "$name: process record" "$CPID" "$(counts 0 0 0 1 1 0)"
}

case_send_methods
case_recv_methods
case_recv_truncated
case_echo_hosts
case_loopback
case_v6only
case_bindv6only
case_native
case_v6host

# --- what dstrace reported ---------------------------------------------------------------
check_output() {
	local all got n pids stats
	all=$(ns_json "${HOST_ROLES[@]}" cb)
	# The checks below read only the test's own lines: dstrace sees the whole machine, and
	# other mapped traffic meanwhile can make the file large.
	jq -c --argjson ns "$all" 'select(.type != "event" or (.netns as $n | $ns | index($n)))' \
		"$OUT" >"$OUT.ours"
	check_expectations "$OUT.ours" "$all"

	# v6-only, 9 attempts: every event is the failed send (the spec asks for at least one;
	# dstrace may report each attempt or only the first of the flow).
	if [[ -n $FAILED_SENDS_PID ]]; then
		n=$(events_in "$OUT.ours" "$all" ".pid == $FAILED_SENDS_PID" | wc -l)
		got=$(events_in "$OUT.ours" "$all" ".pid == $FAILED_SENDS_PID" | jq -sc --argjson p \
			"$FAILED_SENDS_PORT" --arg r "$S4" --argjson ns "$(netns_inode cds)" \
			'[.[] | select(.event != "send" or .proto != "udp" or .ret != -101 or
				.error != "ENETUNREACH" or .raddr != $r or .rport != $p or
				.laddr != null or .comm != "udpflows" or .netns != $ns)]')
		if [[ $n -ge 1 && $n -le 9 && $got == "[]" ]]; then
			pass "$FAILED_SENDS_NAME: failed send events" \
				"expected 1 to 9 send/udp ret=-101 events, got $n"
		else
			fail "$FAILED_SENDS_NAME: failed send events" \
				"expected 1 to 9 send/udp ret=-101 events, got $n, wrong ones: $got"
		fi
		EXPECTED_EVENTS=$((EXPECTED_EVENTS + n))
	fi

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
