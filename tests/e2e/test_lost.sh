#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Ring-buffer overflow accounting end to end.
#
#   sudo tests/e2e/test_lost.sh
#
# 1. Burst: dstrace with --ringbuf-kb 4 (a one-page ring buffer, room for a few dozen
#    events) and one AF_INET6 UDP socket sending one datagram to each of 20000 distinct
#    flows, [::ffff:127.0.0.A]:P for 200 addresses A and 100 ports P, with sendmmsg(), 1024
#    per call, in a namespace of its own. dstrace and the sender are pinned to the same
#    CPU, so dstrace cannot drain the ring while a sendmmsg() call runs: events are lost,
#    deterministically. Checks: lost > 0; events + lost = the flows sent; events = the
#    event lines written, each a distinct flow of the sender; the per-process counts kept
#    in the kernel still exact (datagrams, bytes, and peers, the distinct remote addresses:
#    200); and the warning on stderr.
#    Should a machine lose nothing even so, the burst is repeated, larger (450 addresses).
# 2. Control: the default ring buffer and 5000 flows (50 addresses), which it holds even if
#    dstrace read nothing until the end: lost = 0, events = 5000 = event lines.
# 3. Peer pairs: the kernel counts a process's distinct peers in a table of (process, peer)
#    pairs (65536), freed as the processes end. Three senders one after another, each to
#    30000 distinct addresses (90000 pairs in all), in one dstrace run: each counted exactly
#    (a table that kept the pairs of ended processes, or an LRU, would lose or double count),
#    nothing dropped. Then one sender to 70000: a process's count stops at 65536 and says it
#    is a lower bound (drops.peers = 1, the "+" of the text table, a warning); twice over,
#    still 65536 (an LRU table would count the addresses met again twice).
# dstrace follows only the sender (-p, the pid known before it starts) so that other
# mapped traffic on the machine cannot change the counts. DSTRACE_ARGS adds arguments.
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_root
build_progs
lo_host_add lo

read -ra extra <<<"${DSTRACE_ARGS:-}"
SIZE=8		# payload bytes per datagram
BASE_PORT=20000
PORTS=100	# ports per address

# burst NAME ADDRS PIN DSTRACE_ARGS...: one dstrace run watching one sender of ADDRS x PORTS
# flows (one datagram each). PIN=1 pins dstrace and the sender to CPU 0. Sets B_OUT (the
# JSON Lines), B_PID (the sender), B_LINE (its result line); returns 1 if it could not run.
B_OUT='' B_PID='' B_LINE=''
burst() {
	local name=$1 addrs=$2 pin=$3 base flows=$(($2 * PORTS))
	shift 3
	base=$(fbase "$name")
	B_OUT=$base.jsonl
	local -a cmd=("$PROGS/udpflows" send -m sendmmsg -b 1024 -a "$addrs" -p "$PORTS" -s "$SIZE"
		127.0.0.1 "$BASE_PORT")
	[[ $pin == 1 ]] && cmd=(taskset -c 0 "${cmd[@]}")
	bg_start_gated B_PID lo "$base-sender" "${cmd[@]}" || return 1
	if ! dstrace_start "$B_OUT" -p "$B_PID" "$@" "${extra[@]}"; then
		gate_open "$base-sender"
		stop_pid "$B_PID"
		return 1
	fi
	if [[ $pin == 1 ]] && ! taskset -apc 0 "$DSTRACE_PID" >/dev/null; then
		fail "$name: pin dstrace to CPU 0" "expected taskset to work, got exit status $?"
	fi
	if ! gate_open "$base-sender"; then
		fail "$name: sender" "expected it to start, got its gate unread for 5 s"
		stop_pid "$B_PID"
		dstrace_stop
		return 1
	fi
	if wait_pid "$B_PID" 30; then
		B_LINE=$(head -n 1 "$base-sender.out")
		check_eq "$name: sender" "exit 0, sent datagrams=$flows bytes=$((flows * SIZE)) failed=0" \
			"exit $WAIT_RC, ${B_LINE%% errno=*}"
	else
		fail "$name: sender" "expected it to finish within 30 s, got still running"
		stop_pid "$B_PID"
	fi
	dstrace_stop || return 1
	cp "$DSTRACE_LOG" "$base.dstrace.log"
	if [[ ! -s $B_OUT ]]; then
		fail "$name: dstrace output" "expected JSON Lines in $B_OUT, got an empty or missing file"
		return 1
	fi
	check_json_lines "$name: dstrace output" "$B_OUT"
}

# check_accounting NAME ADDRS: what must hold whether events were lost or not.
check_accounting() {
	local name=$1 addrs=$2 flows=$(($2 * PORTS)) stats events lost lines mine bad rec
	stats=$(stats_record "$B_OUT")
	events=$(jq -r '.events' <<<"$stats")
	lost=$(jq -r '.lost' <<<"$stats")
	lines=$(jq -c 'select(.type == "event")' "$B_OUT" | wc -l)
	check_eq "$name: stats events + lost = flows sent" "$flows = $events + $lost" "$((events + lost)) = $events + $lost"
	check_eq "$name: stats events = event lines written" "$lines" "$events"
	mine=$(jq -c --argjson p "$B_PID" 'select(.type == "event" and .pid == $p)' "$B_OUT" | wc -l)
	check_eq "$name: event lines of the sender (-p)" "$lines" "$mine"
	# Each line is a flow of the sender, none twice.
	bad=$(jq -sc --argjson p "$B_PID" --argjson lo "$BASE_PORT" --argjson hi "$((BASE_PORT + PORTS))" \
		--argjson na "$addrs" --argjson ns "$(netns_inode lo)" '
		def host: split(".") | map(tonumber) | .[0] * 16777216 + .[1] * 65536 + .[2] * 256 + .[3]
			- 2130706432; # 127.0.0.0
		map(select(.type == "event")) as $ev
		| { distinct: ($ev | map([.raddr, .rport]) | unique | length),
		    wrong: [$ev[] | select(.event != "send" or .proto != "udp" or .pid != $p or
			.tid != $p or .comm != "udpflows" or .netns != $ns or (.raddr | host) < 1 or
			(.raddr | host) > $na or .rport < $lo or .rport >= $hi or .ret != 0 or
			.error != null)] | length }' "$B_OUT")
	check_eq "$name: event lines are distinct flows of the sender" \
		"{\"distinct\":$lines,\"wrong\":0}" "$bad"
	rec=$(process_counts "$B_OUT" "$B_PID")
	check_eq "$name: process record, kernel counts" \
		"$(proc_counts 0 0 "$flows" 0 0 X $((flows * SIZE)) | sed 's/ peers=X//')" \
		"${rec/ peers=* bytes=/ bytes=}"
	check_eq "$name: process record, peers (distinct remote addresses)" \
		"peers=$addrs" "$(grep -o 'peers=[0-9]*' <<<"$rec" || echo "$rec")"
	# dstrace says so on stderr when it lost events, and only then.
	if [[ $lost -gt 0 ]]; then
		check_match "$name: warning on stderr" "warning: $lost events lost" \
			"$(grep -m1 'events lost' "$(fbase "$name").dstrace.log")" "'warning: $lost events lost ...'"
	else
		check_eq "$name: no lost-events warning on stderr" none \
			"$(grep -m1 'events lost' "$(fbase "$name").dstrace.log" || echo none)"
	fi
}

# --- 1. burst into a one-page ring buffer ------------------------------------------------
LOST=0
for addrs in 200 450; do
	name="burst of $((addrs * PORTS)) flows to $addrs addresses, --ringbuf-kb 4"
	log "$name: dstrace and the sender pinned to CPU 0"
	burst "$name" "$addrs" 1 --ringbuf-kb 4 || break
	check_accounting "$name" "$addrs"
	LOST=$(stats_record "$B_OUT" | jq -r '.lost')
	[[ $LOST -gt 0 ]] && break
	log "$name: nothing lost; again with a larger burst"
done
if [[ $LOST -gt 0 ]]; then
	pass "burst: events lost" "expected lost > 0, got $LOST"
else
	fail "burst: events lost" "expected lost > 0 with a one-page ring buffer, got $LOST"
fi

# --- 2. control: the default ring buffer holds the whole burst ---------------------------
name="control: 5000 flows to 50 addresses, default ring buffer"
if burst "$name" 50 0; then
	check_accounting "$name" 50
	check_eq "$name: lost" 0 "$(stats_record "$B_OUT" | jq -r '.lost')"
	check_eq "$name: event lines" 5000 "$(jq -c 'select(.type == "event")' "$B_OUT" | wc -l)"
fi

# --- 3. peer pairs freed with their processes; a full table said -------------------------
# senders N ADDRS [ROUNDS]: start N gated senders of one datagram to each of ADDRS addresses
# (one port), ROUNDS times over (default 1), their pids in S_PIDS.
S_PIDS=()
senders() {
	local n=$1 addrs=$2 rounds=${3:-1} i pid
	S_PIDS=()
	for ((i = 0; i < n; i++)); do
		bg_start_gated pid lo "$(fbase "peers-$addrs-$i")" "$PROGS/udpflows" send -m sendmmsg \
			-b 1024 -a "$addrs" -p 1 -r "$rounds" -s "$SIZE" 127.0.0.1 "$BASE_PORT" || return 1
		S_PIDS+=("$pid")
	done
}

# run_sender I ADDRS [DATAGRAMS]: open sender I's gate, wait for it, check its line.
run_sender() {
	local i=$1 addrs=$2 datagrams=${3:-$2} base
	base=$(fbase "peers-$addrs-$i")
	if ! gate_open "$base" || ! wait_pid "${S_PIDS[$i]}" 30; then
		fail "peers: sender $i" "expected it to run and finish within 30 s, got not"
		stop_pid "${S_PIDS[$i]}"
		return 1
	fi
	check_eq "peers: sender $i" "exit 0, sent datagrams=$datagrams" \
		"exit $WAIT_RC, $(grep -o '^sent datagrams=[0-9]*' "$base.out")"
}

name="peers: 3 senders in turn, 30000 addresses each"
OUT=$(fbase "$name").jsonl
if senders 3 30000 && dstrace_start "$OUT" -i 3600 -p "${S_PIDS[0]}" -p "${S_PIDS[1]}" \
	-p "${S_PIDS[2]}" "${extra[@]}"; then
	for i in 0 1 2; do
		run_sender "$i" 30000
		sleep 2.5 # dstrace's harvest (every second) frees the ended sender's pairs
	done
	dstrace_stop
	for i in 0 1 2; do
		check_eq "$name: sender $i's peers" "peers=30000 send=30000" \
			"$(process_record "$OUT" "${S_PIDS[$i]}" | tail -n 1 | jq -r '"peers=\(.peers) send=\(.send)"')"
	done
	check_eq "$name: drops" '{"proc_full":0,"peers":0}' \
		"$(stats_record "$OUT" | jq -c '.drops | {proc_full, peers}')"
else
	fail "$name: start" "expected the senders and dstrace to start, got not"
fi
for pid in "${S_PIDS[@]}"; do stop_pid "$pid"; done

name="peers: one sender to 70000 addresses, more than the table holds"
OUT=$(fbase "$name").txt
if senders 1 70000 && dstrace_start_raw "$OUT" -p "${S_PIDS[0]}" "${extra[@]}"; then
	run_sender 0 70000
	dstrace_stop
	cp "$DSTRACE_LOG" "$(fbase "$name").dstrace.log"
	check_eq "$name: PEERS column, marked a lower bound" "65536+" \
		"$(awk -v p="${S_PIDS[0]}" '$1 == p { print $8 }' "$OUT")"
	check_eq "$name: SEND column" 70000 "$(awk -v p="${S_PIDS[0]}" '$1 == p { print $5 }' "$OUT")"
	check_match "$name: warning on stderr" "PEERS is a lower bound for 1 process\(es\): more than 65536 distinct peers each" \
		"$(grep -m1 'PEERS is a lower bound' "$DSTRACE_LOG")" "the warning"
else
	fail "$name: start" "expected the sender and dstrace to start, got not"
fi
stop_pid "${S_PIDS[0]}"

# Twice over: the pairs met again after the flows table (an LRU of 65536) forgot them are
# still not counted twice.
name="peers: the same twice over, JSON Lines"
OUT=$(fbase "$name").jsonl
if senders 1 70000 2 && dstrace_start "$OUT" -i 3600 -p "${S_PIDS[0]}" "${extra[@]}"; then
	run_sender 0 70000 140000
	dstrace_stop
	check_eq "$name: process record and drops.peers" "peers=65536 drops.peers=1" \
		"$(process_record "$OUT" "${S_PIDS[0]}" | tail -n 1 | jq -r '"peers=\(.peers)"') drops.peers=$(stats_record "$OUT" | jq -r '.drops.peers')"
else
	fail "$name: start" "expected the sender and dstrace to start, got not"
fi
stop_pid "${S_PIDS[0]}"

summary
