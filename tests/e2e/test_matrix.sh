#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# UNP Table 12.2 end to end: every client kind against every server kind, each on its own
# kind of host, by host name, with one dstrace run watching the whole matrix.
#
#   sudo tests/e2e/test_matrix.sh [--no-dstrace]
#
# For each of the 16 cells it checks (a) what the client did: connected or not, with which
# protocol on the wire, after which attempts, and what the server saw; and (b) with dstrace,
# exactly which events appeared in the test's namespaces for that cell's client and server
# processes, field by field, and their per-process records. Cells are told apart by their
# server port (9000 + 10 * row + column) and by the pids of their client and server.
# --no-dstrace runs (a) only. DSTRACE_ARGS adds arguments to dstrace (e.g. a backend).
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

USE_DSTRACE=1
case ${1:-} in
--no-dstrace) USE_DSTRACE=0 ;;
"") ;;
*)
	echo "usage: $0 [--no-dstrace]" >&2
	exit 2
	;;
esac

# --- the table --------------------------------------------------------------------------
ROW_NAME=("" "IPv4 client, IPv4-only host" "IPv6 client, IPv6-only host"
	"IPv4 client, dual-stack host" "IPv6 client, dual-stack host")
ROW_ROLE=("" c4 c6 cds cds)
ROW_PROG=("" tcpcli4 tcpcli6 tcpcli4 tcpcli6)
COL_NAME=("" "IPv4 server, IPv4-only host (A only)" "IPv6 server, IPv6-only host (AAAA only)"
	"IPv4 server, dual-stack host (A+AAAA)" "IPv6 server, dual-stack host (A+AAAA)")
COL_ROLE=("" s4 s6 sds sds)
COL_PROG=("" tcpserv4 tcpserv6 tcpserv4 tcpserv6)
COL_NAMEHOST=("" srv4 srv6 srvds srvds)

# The book's answer: which protocol carries the connection. "no*": the AAAA record is tried
# first and refused by the IPv4 server; a client that walks the getaddrinfo() list (ours
# does, as UNP's tcp_connect does) then reaches the mapped A record, which works over IPv4.
declare -A BOOK=(
	[1,1]=IPv4 [1,2]=no [1,3]=IPv4 [1,4]=IPv4
	[2,1]=no [2,2]=IPv6 [2,3]=no [2,4]=IPv6
	[3,1]=IPv4 [3,2]=no [3,3]=IPv4 [3,4]=IPv4
	[4,1]=IPv4 [4,2]=IPv6 [4,3]="no*" [4,4]=IPv6
)

# What the client's getaddrinfo() list walk must show ("gai=..." if the name does not
# resolve in that family). tcpcli6 gets AAAA first, then A as ::ffff:a.b.c.d.
declare -A TRIED=(
	[1,1]=192.0.2.2/OK [1,2]=gai=EAI_NONAME
	[1,3]=192.0.2.4/OK [1,4]=192.0.2.4/OK
	[2,1]=::ffff:192.0.2.2/ENETUNREACH [2,2]=2001:db8::3/OK
	[2,3]="2001:db8::4/ECONNREFUSED,::ffff:192.0.2.4/ENETUNREACH" [2,4]=2001:db8::4/OK
	[3,1]=192.0.2.2/OK [3,2]=gai=EAI_NONAME
	[3,3]=192.0.2.4/OK [3,4]=192.0.2.4/OK
	[4,1]=::ffff:192.0.2.2/OK [4,2]=2001:db8::3/OK
	[4,3]="2001:db8::4/ECONNREFUSED,::ffff:192.0.2.4/OK" [4,4]=2001:db8::4/OK
)

# What dstrace must report for the cell (any other cell: nothing at all).
#   accept         the IPv6 server on the dual-stack host accepts an IPv4 client
#   tcp-connect    tcpcli6 connects to ::ffff:a.b.c.d (IPv4 on the wire)
#   tcp-unreach    tcpcli6 on the IPv6-only host connects to ::ffff:a.b.c.d: ENETUNREACH
#   udp-probe      glibc's getaddrinfo(), sorting a list of several addresses (RFC 3484
#   udp-unreach    rule 1, source address selection), connect()s an AF_INET6 UDP socket to
#                  each, ::ffff:a.b.c.d included: a mapped UDP connect, ENETUNREACH on the
#                  IPv6-only host. Only srvds has several addresses.
# Every outbound event also names its host (the resolver uprobes): name srv4 or srvds, answer
# a-only or a+aaaa, mapped by the resolver (tcpcli6 asks AF_INET6 with AI_V4MAPPED | AI_ALL);
# glibc's sorting connects carry no name and say resolver_probe; accepts have no name. The
# connects to srvds (the starred cell, and the same walk on the IPv6-only host) say fallback:
# from srvds's AAAA address, refused, and the time lost.
declare -A EVENTS=(
	[1,4]=accept
	[2,1]=tcp-unreach
	[2,3]="udp-unreach tcp-unreach"
	[2,4]=udp-unreach
	[3,4]=accept
	[4,1]=tcp-connect
	[4,3]="udp-probe tcp-connect"
	[4,4]=udp-probe
)

# --- running one cell -------------------------------------------------------------------
declare -A CLI_PID SRV_PID CLI_LPORT

# outcome_of LINE: IPv4, IPv6 or no, from a client's result line.
outcome_of() {
	local wire
	if [[ $1 != connected* ]]; then
		echo no
		return
	fi
	wire=$(kv "$1" wire)
	echo "${wire/ipv/IPv}"
}

run_cell() {
	local r=$1 c=$2 cell="r$1c$2" port=$((9000 + 10 * $1 + $2))
	local crole=${ROW_ROLE[$r]} cprog=${ROW_PROG[$r]} srole=${COL_ROLE[$c]} sprog=${COL_PROG[$c]}
	local host=${COL_NAMEHOST[$c]} base="$WORK/$cell" spid line expect tried want_peer saw
	local book=${BOOK[$r,$c]}

	log "$cell: ${ROW_NAME[$r]} -> ${COL_NAME[$c]}: ($crole) $cprog $host $port -> ($srole) $sprog; book: $book"
	bg_start spid "$srole" "$base-server" "$PROGS/$sprog" -n 1 "$port"
	SRV_PID[$cell]=$spid
	if ! wait_line "$base-server.out" '^listening' 5; then
		fail "$cell server ready" "expected 'listening' from $sprog within 5 s, got: $(
			cat "$base-server.out" "$base-server.err")"
		stop_pid "$spid"
		return
	fi

	run_in "$crole" 20 "$base-client" "$PROGS/$cprog" "$host" "$port"
	CLI_PID[$cell]=$RUN_PID
	line=$(head -n 1 "$base-client.out")
	CLI_LPORT[$cell]=$(kv "$line" lport)

	# (a) what happened on the wire
	expect=$book
	[[ $expect == "no*" ]] && expect=IPv4
	check_eq "$cell outcome (book: $book)" "$expect" "$(outcome_of "$line")"
	if [[ ${TRIED[$r,$c]} == gai=* ]]; then
		tried="gai=$(kv "$line" gai)"
	else
		tried=$(kv "$line" tried)
	fi
	check_eq "$cell attempts" "${TRIED[$r,$c]}" "$tried"
	if [[ $expect == no ]]; then
		check_eq "$cell client exit status" 1 "$RUN_RC"
		stop_pid "$spid"
		want_peer=none
	else
		check_eq "$cell client exit status, echo" "0 echo=ok" "$RUN_RC echo=$(kv "$line" echo)"
		if wait_pid "$spid" 10; then
			check_eq "$cell server exit status" 0 "$WAIT_RC"
		else
			fail "$cell server exit status" "expected exit after 1 connection, got still running"
			stop_pid "$spid"
		fi
		# What the server's accept() returned for this client.
		if [[ $expect == IPv6 ]]; then
			want_peer=${HOST_V6[$crole]}
		elif [[ $sprog == tcpserv6 ]]; then
			want_peer=::ffff:${HOST_V4[$crole]}
		else
			want_peer=${HOST_V4[$crole]}
		fi
		want_peer+=" port ${CLI_LPORT[$cell]}"
	fi
	saw=$(sed -n 's/^accepted \([^ ]*\) port \([0-9]*\).*/\1 port \2/p' "$base-server.out")
	check_eq "$cell server accepted" "$want_peer" "${saw:-none}"
}

# --- (b) the events of one cell -----------------------------------------------------------
# expected_event TOKEN CELL R C: one expected event as JSON (see EVENTS).
expected_event() {
	local tok=$1 cell=$2 r=$3 c=$4 port=$((9000 + 10 * $3 + $4))
	local crole=${ROW_ROLE[$r]} srole=${COL_ROLE[$c]}
	local cli=${CLI_PID[$cell]} srv=${SRV_PID[$cell]} lport=${CLI_LPORT[$cell]:-0}
	local name=${COL_NAMEHOST[$c]} answer=a-only fallback=null
	# the starred cell: the AAAA address is tried first and refused, then the mapped A one
	if [[ $name == srvds ]]; then
		answer=a+aaaa
		fallback=$(jq -nc --arg from "${HOST_V6[sds]}" \
			'{from: $from, error: "ECONNREFUSED", lost_ms: "~number"}')
	fi
	local -a common=(--argjson port "$port" --arg cv4 "${HOST_V4[$crole]:-}"
		--arg name "$name" --arg answer "$answer" --argjson fallback "$fallback"
		--arg sv4 "${HOST_V4[$srole]:-}" --argjson lport "${lport:-0}"
		--argjson cns "$(netns_inode "$crole")" --argjson sns "$(netns_inode "$srole")"
		--argjson cpid "$cli" --argjson spid "$srv"
		--arg ccomm "${ROW_PROG[$r]}" --arg scomm "${COL_PROG[$c]}")
	case $tok in
	accept)
		jq -nc "${common[@]}" '{event: "accept", proto: "tcp", pid: $spid, tid: $spid,
			comm: $scomm, uid: 0, netns: $sns, cgroup: "~number", laddr: $sv4,
			lport: $port, raddr: $cv4, rport: $lport, ret: 0, error: null, name: null,
			resolver_probe: false, fallback: null}'
		;;
	tcp-connect)
		jq -nc "${common[@]}" '{event: "connect", proto: "tcp", pid: $cpid, tid: $cpid,
			comm: $ccomm, uid: 0, netns: $cns, cgroup: "~number", laddr: $cv4,
			lport: $lport, raddr: $sv4, rport: $port, ret: 0, error: null, name: $name,
			answer: $answer, mapped_by: "resolver",
			hints: ["AF_INET6", "AI_V4MAPPED", "AI_ALL"], resolver_probe: false,
			fallback: $fallback}'
		;;
	tcp-unreach)
		jq -nc "${common[@]}" '{event: "connect", proto: "tcp", pid: $cpid, tid: $cpid,
			comm: $ccomm, uid: 0, netns: $cns, cgroup: "~number", laddr: null,
			lport: null, raddr: $sv4, rport: $port, ret: -101, error: "ENETUNREACH",
			name: $name, answer: $answer, mapped_by: "resolver", resolver_probe: false,
			fallback: $fallback}'
		;;
	udp-probe)
		jq -nc "${common[@]}" '{event: "connect", proto: "udp", pid: $cpid, tid: $cpid,
			comm: $ccomm, uid: 0, netns: $cns, cgroup: "~number", laddr: $cv4,
			lport: "~number", raddr: $sv4, rport: $port, ret: 0, error: null,
			name: null, resolver_probe: true}'
		;;
	udp-unreach)
		jq -nc "${common[@]}" '{event: "connect", proto: "udp", pid: $cpid, tid: $cpid,
			comm: $ccomm, uid: 0, netns: $cns, cgroup: "~number", laddr: null,
			lport: "~number|null", raddr: $sv4, rport: $port, ret: -101,
			error: "ENETUNREACH", name: null, resolver_probe: true}'
		;;
	esac
}

# check_process FILE CELL PID TOKENS...: the per-process record of PID counts what the
# cell's events for that pid say; with no tokens, PID must have no record at all.
# "connect" and "accept" count the ones that worked, "failed" the ones that did not.
check_process() {
	local file=$1 cell=$2 pid=$3 rec want got
	shift 3
	local connect=0 accept=0 failed=0 tok
	for tok in "$@"; do
		case $tok in
		accept) accept=$((accept + 1)) ;;
		*unreach) failed=$((failed + 1)) ;;
		*) connect=$((connect + 1)) ;;
		esac
	done
	rec=$(process_record "$file" "$pid")
	if [[ $# -eq 0 ]]; then
		check_eq "$cell process record of pid $pid" none "${rec:-none}"
		return
	fi
	want="connect=$connect accept=$accept send=0 recv=0 failed=$failed peers=1 bytes=0"
	if [[ -z $rec ]]; then
		fail "$cell process record of pid $pid" "expected $want, got no record"
		return
	fi
	got=$(jq -r '"connect=\(.connect) accept=\(.accept) send=\(.send) recv=\(.recv) failed=\(.failed) peers=\(.peers) bytes=\(.bytes)"' <<<"$rec")
	check_eq "$cell process record of pid $pid ($(jq -r .comm <<<"$rec"))" "$want" "$got"
}

check_cell_events() {
	local file=$1 r=$2 c=$3 cell="r$2c$3" all=$4 tok exp=() cli srv
	local -a ctoks=() stoks=()
	cli=${CLI_PID[$cell]:-}
	srv=${SRV_PID[$cell]:-}
	if [[ -z $cli || -z $srv ]]; then
		fail "$cell events" "expected a client and a server run, got none"
		return
	fi
	for tok in ${EVENTS[$r,$c]:-}; do
		exp+=("$(expected_event "$tok" "$cell" "$r" "$c")")
		if [[ $tok == accept ]]; then stoks+=("$tok"); else ctoks+=("$tok"); fi
	done
	check_events "$cell events" "$file" "$all" ".pid == $cli or .pid == $srv" \
		"$(printf '%s\n' "${exp[@]}" | jq -sc .)"
	check_process "$file" "$cell" "$cli" "${ctoks[@]}"
	check_process "$file" "$cell" "$srv" "${stoks[@]}"
}

# --- main -------------------------------------------------------------------------------
need_root
build_progs
topo_up

OUT=$WORK/matrix.jsonl
DSTRACE_OK=0
if [[ $USE_DSTRACE == 1 ]]; then
	read -ra extra <<<"${DSTRACE_ARGS:-}"
	dstrace_start "$OUT" "${extra[@]}" && DSTRACE_OK=1
fi

for r in 1 2 3 4; do
	for c in 1 2 3 4; do
		run_cell "$r" "$c"
	done
done

# (b) what dstrace reported.
check_dstrace_output() {
	local all total=0 r c got stats toks
	all=$(ns_json "${HOST_ROLES[@]}")
	for r in 1 2 3 4; do
		for c in 1 2 3 4; do
			check_cell_events "$OUT" "$r" "$c" "$all"
			read -ra toks <<<"${EVENTS[$r,$c]:-}"
			total=$((total + ${#toks[@]}))
		done
	done
	# Nothing else in the test's namespaces (an event with a wrong pid shows up here).
	got=$(events_in "$OUT" "$all" | wc -l)
	if [[ $got -eq $total ]]; then
		pass "events in the test's namespaces" "expected $total, got $got"
	else
		fail "events in the test's namespaces" "expected $total, got $got: $(
			events_in "$OUT" "$all" | tr '\n' ' ')"
	fi
	stats=$(stats_record "$OUT")
	check_eq "stats record: lost" 0 "$(jq -r '.lost' <<<"$stats")"
	check_eq "stats record: events = event lines written" \
		"$(jq -c 'select(.type == "event")' "$OUT" | wc -l)" "$(jq -r '.events' <<<"$stats")"
	check_match "stats record: backend" '^(fentry|kprobe|tracepoint)$' \
		"$(jq -r '.backend' <<<"$stats")" "fentry, kprobe or tracepoint"
}

if [[ $DSTRACE_OK == 1 ]]; then
	dstrace_stop
	if [[ ! -s $OUT ]]; then
		fail "dstrace output" "expected JSON Lines in $OUT, got an empty or missing file"
	elif check_json_lines "dstrace output" "$OUT"; then
		check_dstrace_output
	fi
elif [[ $USE_DSTRACE == 1 ]]; then
	fail "dstrace events" "expected a dstrace run to check, got none"
fi

summary
