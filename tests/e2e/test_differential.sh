#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Same traffic, same answer, whatever the backend. One fixed workload (TCP accept and mapped
# connect, v6-only and no-IPv4-route failures, UDP send and receive with every method, a
# v6-only UDP failure; a connection open before dstrace started, a re-issued non-blocking
# connect, refused connects, an unreachable host (ICMP), connects given up by their thread
# or by their process's end, TCP Fast Open (also failing), MPTCP, io_uring
# connect and accept (a multishot one into fixed files), UDP-Lite, threads sharing UDP sockets, datagrams read without an
# address among IPv6 ones, mapped binds) runs under every backend this kernel supports;
# each run's events and
# per-process records, with pids, times and ephemeral ports taken out, must equal the
# checked-in answer (differential.expected.json), so they also equal each other.
#
#   sudo tests/e2e/test_differential.sh [BACKEND...]    (default: every backend that loads)
#   DIFF_UPDATE=1 ...  rewrites the expected file from the first backend's run (review it!)
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EXPECTED=$E2E_DIR/differential.expected.json
need_root
build_progs

# --- which backends run here -----------------------------------------------------------
backends_to_run "$@"
log "backends compared: ${BACKENDS[*]}"

# A kernel built without MPTCP (Debian 11's 5.10) cannot run the MPTCP client: it is left out
# of the workload, and its part of the expected answer with it (its connect, the accept it
# makes, its process); everything else is compared as on every kernel.
MPTCP=1
if [[ ! -d /proc/sys/net/mptcp ]]; then
	MPTCP=0
	log "this kernel has no MPTCP (no /proc/sys/net/mptcp): the MPTCP client is left out"
	jq '
		def drop_first(f): (map(f) | index(true)) as $i
			| if $i == null then error("nothing to drop") else del(.[$i]) end;
		.events |= (map(select(.proto != "mptcp"))
			| drop_first(.event == "accept" and .comm == "tcpserv6" and .lport == 9502))
		| .processes |= (drop_first(.comm == "sockpaths" and .connect == 1 and .failed == 0
				and .send == 0 and .recv == 0 and .peers == 1 and .bytes == 0)
			| map(if .comm == "tcpserv6" and .accept == 5 then .accept = 4 else . end)
			| sort_by(tostring))
	' "$EXPECTED" >"$WORK/expected-no-mptcp.json" || exit 2
	EXPECTED=$WORK/expected-no-mptcp.json
fi

# io_uring's multishot accept (into fixed files: slots the kernel picks) came with Linux 5.19
# (Debian 11's 5.10 has none): its server
# and two clients are left out there, with their part of the answer (two accepts on 9515,
# two connects to it, their processes).
MULTISHOT=1
IFS=. read -r kmaj kmin _ <<<"$(uname -r)"
if ((kmaj < 5 || (kmaj == 5 && kmin < 19))); then
	MULTISHOT=0
	log "this kernel has no io_uring multishot accept (5.19+): its server and clients are left out"
	jq '
		def drop_first(f): (map(f) | index(true)) as $i
			| if $i == null then error("nothing to drop") else del(.[$i]) end;
		def client: .comm == "sockpaths" and .connect == 1 and .failed == 0 and .send == 0
			and .recv == 0 and .peers == 1 and .bytes == 0;
		.events |= map(select(.lport != 9515 and .rport != 9515))
		| .processes |= (drop_first(.comm == "sockpaths" and .accept == 2)
			| drop_first(client) | drop_first(client) | sort_by(tostring))
	' "$EXPECTED" >"$WORK/expected-no-multishot.json" || exit 2
	EXPECTED=$WORK/expected-no-multishot.json
fi

topo_up
# A peer that never answers, for the connects given up by their process's end: SYNs to a MAC
# nobody has vanish (no ARP failure, no ICMP), so the socket's close decides, however slow
# the machine (the ARP to 192.0.2.99 fails after 3 s: an emulated guest got there first).
in_ns cds ip neigh add 192.0.2.98 lladdr 02:00:00:00:00:98 dev "$HOST_IF" nud permanent ||
	fail "topology" "no neighbour entry for 192.0.2.98 in cds"

# Fixed ports: servers' ports stay in the answer, ephemeral ports become "eph".
FIXED_PORTS='[9500,9501,9502,9503,9504,9505,9506,9507,9510,9511,9512,9513,9515,9516,9517,9518,9519,9600,9601,9602,9603,9604,9605,9606,9607,9608,9609,9610,9611,9612,9613,9614]'

# The workload: every client and server of the suite's programs, one after another.
workload() {
	# shellcheck disable=SC2034 # pid: bg_start sets it; the servers exit by themselves
	local pid tag=$1
	bg_start pid sds "$WORK/$tag-serv6" "$PROGS/tcpserv6" -n 1 9500
	wait_line "$WORK/$tag-serv6.out" '^listening' 10 || fail "$tag workload" "tcpserv6 did not start"
	bg_start pid s4 "$WORK/$tag-serv4" "$PROGS/tcpserv4" -n 1 9501
	wait_line "$WORK/$tag-serv4.out" '^listening' 10 || fail "$tag workload" "tcpserv4 did not start"

	# TCP: an IPv4 client accepted by the IPv6 server; a mapped connect; two failures.
	run_in cds 20 "$WORK/$tag-cli4" "$PROGS/tcpcli4" srvds 9500
	run_in cds 20 "$WORK/$tag-cli6" "$PROGS/tcpcli6" srv4 9501
	run_in cds 20 "$WORK/$tag-cli6only" "$PROGS/tcpcli6" -6 srv4 9501
	run_in c6 20 "$WORK/$tag-cli6noroute" "$PROGS/tcpcli6" srv4 9501

	# UDP: each send method to a receiver using a different receive method; the recvmsg()
	# one reads into 10 bytes with MSG_TRUNC (the call returns each datagram's length), the
	# last recvfrom() one into 50 bytes (the datagrams of 103 are cut: 50 bytes each).
	local m i rx
	local sendm=(sendto sendmsg sendmmsg connect)
	local recvm=(recvfrom recvmsg recvmmsg recvfrom)
	local recvb=("" "-b 10 -T" "" "-b 50")
	for i in 0 1 2 3; do
		# shellcheck disable=SC2086 # recvb: options, split
		bg_start rx sds "$WORK/$tag-urecv$i" "$PROGS/udp6" recv -m "${recvm[$i]}" ${recvb[$i]} \
			-n $((5 + i)) -t 20 $((9600 + i))
		wait_line "$WORK/$tag-urecv$i.out" '^listening' 10 ||
			fail "$tag workload" "udp6 recv $i did not start"
		m=${sendm[$i]}
		run_in cds 20 "$WORK/$tag-usend$i" "$PROGS/udp6" send -m "$m" -n $((5 + i)) -s $((100 + i)) \
			::ffff:192.0.2.4 $((9600 + i))
		wait_pid "$rx" 20 || fail "$tag workload" "udp6 recv $i did not get its datagrams"
	done
	# UDP on a v6-only socket: three failed sends.
	run_in cds 20 "$WORK/$tag-usend6only" "$PROGS/udp6" send -6 -n 3 ::ffff:192.0.2.4 9600
	# UDP_SEGMENT (GSO): per call in a control message (sendmsg, sendmmsg), as QUIC stacks
	# send it, and set on the socket: 4 calls of 1000 bytes = 40 datagrams, or 16 of 250.
	# Received whole (UDP_GRO: a read takes a call's datagrams at once) with an address,
	# without one, and on a socket connected to the sender; then read one by one.
	local gso=("-m sendmsg -C 100 -l 9614" "-m sendmmsg -C 100" "-m sendto -G 250"
		"-m sendmsg -C 100") n=(40 40 16 40)
	local grecv=("-g -c 192.0.2.12:9614" "-g -N" "-g" "")
	for i in 0 1 2 3; do
		# shellcheck disable=SC2086 # the options split into words
		bg_start rx sds "$WORK/$tag-ugsorecv$i" "$PROGS/udpflows" recv ${grecv[$i]} \
			-n "${n[$i]}" -t 20 $((9610 + i))
		wait_line "$WORK/$tag-ugsorecv$i.out" '^listening' 10 ||
			fail "$tag workload" "udpflows recv (GSO $i) did not start"
		# shellcheck disable=SC2086
		run_in cds 20 "$WORK/$tag-ugso$i" "$PROGS/udpflows" send ${gso[$i]} -s 1000 -r 4 \
			192.0.2.4 $((9610 + i))
		wait_pid "$rx" 20 || fail "$tag workload" "udpflows recv (GSO $i) did not get its datagrams"
	done

	# The paths syscalls do not show, or show twice (sockpaths).
	local sp=$PROGS/sockpaths srv upid
	bg_start srv sds "$WORK/$tag-serv9502" "$PROGS/tcpserv6" -n $((4 + MPTCP)) 9502
	wait_line "$WORK/$tag-serv9502.out" '^listening' 10 || fail "$tag workload" "tcpserv6 9502 did not start"
	run_in cds 20 "$WORK/$tag-retry" "$sp" tcp-retry ::ffff:192.0.2.4 9502
	run_in cds 20 "$WORK/$tag-tfo" "$sp" tfo ::ffff:192.0.2.4 9502
	# failing inside its sendto(): no IPv4 route from c6 (ENETUNREACH)
	run_in c6 20 "$WORK/$tag-tfonoroute" "$sp" tfo ::ffff:192.0.2.4 9516
	[[ $MPTCP == 1 ]] && run_in cds 20 "$WORK/$tag-mptcp" "$sp" mptcp ::ffff:192.0.2.4 9502 100
	run_in cds 20 "$WORK/$tag-uconn" "$sp" uring-connect ::ffff:192.0.2.4 9502
	run_in cds 20 "$WORK/$tag-block" "$sp" tcp-block ::ffff:192.0.2.4 9502
	wait_pid "$srv" 20 || fail "$tag workload" "tcpserv6 9502 did not get its $((4 + MPTCP)) clients"
	run_in cds 20 "$WORK/$tag-refused" "$sp" tcp-block ::ffff:192.0.2.4 9504
	run_in cds 20 "$WORK/$tag-nbrefused" "$sp" tcp-nb ::ffff:192.0.2.4 9505
	# no host at 192.0.2.99 on the bridge: ARP fails after 3 s and the kernel answers the SYN
	# with an ICMP host unreachable (EHOSTUNREACH); before Linux 6.11 the error is reported
	# before the socket closes (the error-report hook decides, on every backend)
	# (40 s: the program waits up to 30 s; killed first, its socket closes unanswered and
	# dstrace rightly says ECONNABORTED, which read as a backend's difference once, Debian
	# 13's kprobe run)
	run_in cds 40 "$WORK/$tag-nbunreach" "$sp" tcp-nb ::ffff:192.0.2.99 9506
	[[ $(kv "$(tail -n 1 "$WORK/$tag-nbunreach.out")" result) == EHOSTUNREACH ]] ||
		log "$tag workload: the connect to 192.0.2.99 did not end in EHOSTUNREACH (exit $RUN_RC): $(
			cat "$WORK/$tag-nbunreach.out" "$WORK/$tag-nbunreach.err")"
	# given up by the thread that connected, 0.2 s into the 3 s the ARP takes to fail:
	# ECONNABORTED, the socket's outcome (the connect call returned long before)
	local how port=9510
	for how in close shutdown unspec; do
		run_in cds 20 "$WORK/$tag-abandon-$how" "$sp" tcp-abandon ::ffff:192.0.2.99 $port $how
		port=$((port + 1))
	done
	# ... or by the process's end: the socket closed after it (exit), by a child that holds it
	# 0.5 s more (fork), by the program it exec()ed (exec: sleep 0.5): ECONNABORTED, the
	# process's own (its entry waits for it)
	port=9517
	for how in exit fork exec; do
		run_in cds 20 "$WORK/$tag-abandon-$how" "$sp" tcp-abandon ::ffff:192.0.2.98 $port $how
		port=$((port + 1))
	done
	sleep 1 # the sockets' last holders end
	# a simultaneous open: a socket that connects to its own address and port
	run_in cds 20 "$WORK/$tag-self" "$sp" tcp-self 9513
	bg_start upid sds "$WORK/$tag-uaccept" "$sp" uring-accept 9503 2
	wait_line "$WORK/$tag-uaccept.out" '^ready' 10 || fail "$tag workload" "uring-accept did not start"
	run_in cds 20 "$WORK/$tag-ucli1" "$sp" tcp-block ::ffff:192.0.2.4 9503
	run_in cds 20 "$WORK/$tag-ucli2" "$sp" tcp-block ::ffff:192.0.2.4 9503
	wait_pid "$upid" 20 || fail "$tag workload" "uring-accept did not get its 2 clients"
	if [[ $MULTISHOT == 1 ]]; then
		# into the ring's fixed files: the completions' results are slots (the
		# tracepoint backend reads the ring's table; test_sockpaths has the rest)
		bg_start upid sds "$WORK/$tag-umaccept" "$sp" uring-accept 9515 2 multishot-direct
		wait_line "$WORK/$tag-umaccept.out" '^ready' 10 ||
			fail "$tag workload" "uring-accept multishot did not start"
		run_in cds 20 "$WORK/$tag-umcli1" "$sp" tcp-block ::ffff:192.0.2.4 9515
		run_in cds 20 "$WORK/$tag-umcli2" "$sp" tcp-block ::ffff:192.0.2.4 9515
		wait_pid "$upid" 20 ||
			fail "$tag workload" "uring-accept multishot did not get its 2 clients"
	fi
	run_in cds 20 "$WORK/$tag-udplite" "$sp" udplite ::ffff:192.0.2.4 9604 3 10
	run_in cds 30 "$WORK/$tag-uthreads" "$sp" udp-threads 9605 2 100 50
	run_in cds 30 "$WORK/$tag-uthreadsrecv" "$sp" udp-threads 9608 2 100 50 recv
	run_in sds 20 "$WORK/$tag-noaddr" "$sp" udp-noaddr 9609 5 11 22 read
	run_in cds 20 "$WORK/$tag-bind" "$sp" bind ::ffff:192.0.2.12 9606 0
	run_in cds 20 "$WORK/$tag-bind6only" "$sp" bind ::ffff:192.0.2.12 9607 1
	kill -USR1 "$HOLD_PID"
	wait_pid "$HOLD_PID" 20 || fail "$tag workload" "the held connection did not end"
}

# A mapped connection open before dstrace starts (reported as existing at both ends).
HOLD_PID=
hold_start() {
	local tag=$1 srv
	# (no time limit on the server: dstrace takes its time to start under qemu)
	bg_start srv sds "$WORK/$tag-serv9507" "$PROGS/sockpaths" accept-hold 9507
	wait_line "$WORK/$tag-serv9507.out" '^ready' 10 || fail "$tag workload" "the server on 9507 did not start"
	bg_start HOLD_PID cds "$WORK/$tag-hold" "$PROGS/sockpaths" tcp-hold ::ffff:192.0.2.4 9507 600
	wait_line "$WORK/$tag-hold.out" '^connected' 10 || fail "$tag workload" "the held connection did not start"
}

# normalize FILE: the run's answer without pids, times, tids and ephemeral ports (the
# resolver's fields included: names, answers, sorting probes, fallbacks without their time).
normalize() {
	local ns
	ns=$(ns_json c4 c6 cds s4 s6 sds)
	jq -s --argjson ns "$ns" --argjson fixed "$FIXED_PORTS" '
		def port($p): if $p == null then null elif ($fixed | index($p)) != null then $p else "eph" end;
		(map(select(.type == "event" and (.netns as $n | $ns | index($n)))) ) as $ev
		| ($ev | map(.pid) | unique) as $pids
		| {
			events: ($ev | map({event, proto, comm, laddr, lport: port(.lport), raddr,
				rport: port(.rport), ret, error, tid_is_pid: (.tid == .pid), name, answer,
				mapped_by, hints, resolver_probe,
				fallback: (if .fallback then .fallback | .lost_ms = "ms" else null end)})
				| sort_by(tostring)),
			processes: (map(select(.type == "process" and (.pid as $p | $pids | index($p))))
				| map(del(.type, .pid)) | sort_by(tostring))
		}' "$1"
}

for b in "${BACKENDS[@]}"; do
	out=$WORK/run-$b.jsonl
	hold_start "$b"
	dstrace_start "$out" --backend "$b" || continue
	workload "$b"
	sleep 0.5 # the last datagrams' events
	dstrace_stop || continue
	normalize "$out" >"$WORK/answer-$b.json"
	stats=$(stats_record "$out")
	check_eq "$b: backend in the stats record" "$b" "$(jq -r .backend <<<"$stats")"
	check_eq "$b: nothing lost" 0 "$(jq -r .lost <<<"$stats")"
	if [[ ${DIFF_UPDATE:-0} == 1 ]]; then
		cp "$WORK/answer-$b.json" "$EXPECTED"
		log "wrote $EXPECTED from backend $b: review it before committing"
	fi
	if diff -u <(jq -S . "$EXPECTED") <(jq -S . "$WORK/answer-$b.json") >"$WORK/diff-$b.txt"; then
		pass "$b: same answer as $(basename "$EXPECTED")" \
			"$(jq '.events | length' "$WORK/answer-$b.json") events, $(jq '.processes | length' "$WORK/answer-$b.json") processes"
	else
		fail "$b: same answer as $(basename "$EXPECTED")" "differences: $(head -c 3000 "$WORK/diff-$b.txt")"
	fi
done

summary
