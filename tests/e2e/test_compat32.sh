#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# 32-bit programs (i386, gcc -m32) on a 64-bit x86 kernel: their calls are ia32 compat
# calls, which the kernel's syscall tracepoints skip, so what dstrace reads at a syscall's
# exit comes from its compat programs (bpf/compat.bpf.h). Each mapped path, made by a 32-bit
# program both ways i386 programs make it (the direct ia32 call, and socketcall(2)), checked
# with exact events and counts: binds (allowed; refused on a v6-only socket), connects that
# fail in the call (v6-only) or are refused, and that succeed; accepts (glibc's accept(),
# accept4, socketcall's accept); datagrams sent (sendto, sendmsg, sendmmsg) and received;
# and sends failing on a v6-only socket, named from the call's arguments.
#
#   sudo tests/e2e/test_compat32.sh
#
# x86-64 only (the program is built with gcc-multilib); on a kernel that runs no 32-bit
# programs (no ia32 emulation) there are none to watch, and the suite says so and skips.
# DSTRACE_ARGS adds arguments to dstrace (e.g. a backend).
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_root
if [[ $(uname -m) != x86_64 ]]; then
	log "skipped: 32-bit (ia32) programs exist on x86-64 only, this is $(uname -m)"
	summary
	exit 0
fi
build_progs
C32=$PROGS/compat32
[[ -x $C32 ]] || bail "the 32-bit test program" \
	"expected $C32, got none: gcc -m32 cannot link here (scripts/install-deps.sh test installs gcc-multilib)"
# without arguments it prints its usage and exits 2: anything else is the kernel refusing it
"$C32" >/dev/null 2>&1
if [[ $? -ne 2 ]]; then
	log "skipped: this kernel does not run 32-bit programs (no ia32 emulation): $("$C32" 2>&1 | head -n 1)"
	summary
	exit 0
fi
NS=$(ns_name lo)
ip netns add "$NS" || exit 2
NAMESPACES+=("$NS")
ip -n "$NS" link set lo up
NSJ=$(ns_json lo)

# compat_attached: "yes" if the running dstrace has its program for 32-bit programs' calls
# attached (a link of its to cp_sys_exit or cp_sys_exit_bind), else "no".
compat_attached() {
	local f id
	for f in /proc/"$DSTRACE_PID"/fdinfo/*; do
		grep -q '^link_type:' "$f" 2>/dev/null || continue
		id=$(awk '/^prog_id:/ {print $2}' "$f")
		if [[ -n $id ]] && bpftool -j prog show id "$id" 2>/dev/null |
			jq -e '.name | startswith("cp_sys_exit")' >/dev/null; then
			echo yes
			return
		fi
	done
	echo no
}

# Where a 32-bit loader is installed (here: the one the test program needs), 32-bit
# programs' calls are followed from the start.
OUT=$WORK/compat32.jsonl
read -ra extra <<<"${DSTRACE_ARGS:-}"
if ! dstrace_start "$OUT" -v "${extra[@]}"; then
	summary
	exit 1
fi
check_eq "followed from the start: dstrace says why (-v)" \
	"dstrace: 32-bit programs can run here (/lib/ld-linux.so.2): following 32-bit programs' calls" \
	"$(grep -m1 '32-bit' "$DSTRACE_LOG")"
check_eq "followed from the start: the program is attached" yes "$(compat_attached)"

# case_run NAME WANT ARGS...: run compat32 ARGS to its end; its result= must be WANT.
case_run() {
	local name=$1 want=$2
	shift 2
	cli "$name" lo "$C32" "$@"
	check_eq "$name: the program's result" "$want" "$(kv "$LINE" result)"
}

# via_args VIA: into the array s, compat32's options to make its calls VIA: "socketcall" (-s),
# or directly (anything else).
via_args() {
	s=()
	if [[ $1 == socketcall ]]; then s=(-s); fi
}

# ev NAME PID EVENT PROTO LADDR LPORT RADDR RPORT RET ERROR: PID's events are exactly this one.
ev() {
	expect_events "$1: events" "$2" "$(ev_json event="$3" proto="$4" pid="$2" tid="$2" \
		comm=compat32 uid=0 laddr="$5" lport="$6" raddr="$7" rport="$8" ret="$9" error="${10}")"
}

# --- bind: the result is read at the call's exit ------------------------------------------
for via in direct socketcall; do
	via_args "$via"
	p=$((7000 + ${#s[@]} * 10))
	name="bind to a mapped address ($via)"
	case_run "$name" ok bind "${s[@]}" ::ffff:127.0.0.1 "$p" 0
	ev "$name" "$CPID" bind udp 127.0.0.1 "$p" null null 0 null
	expect_proc "$name: process" "$CPID" none
	name="bind to a mapped address, v6-only ($via)"
	case_run "$name" EINVAL bind "${s[@]}" ::ffff:127.0.0.1 $((p + 1)) 1
	ev "$name" "$CPID" bind udp 127.0.0.1 $((p + 1)) null null -22 EINVAL
	expect_proc "$name: process" "$CPID" "$(proc_counts 0 0 0 0 1 0 0)"
	name="bind to ::1 ($via)"
	case_run "$name" ok bind "${s[@]}" ::1 $((p + 2)) 0
	expect_events "$name: events (none)" "$CPID"
done

# --- connect: failures inside the call, a refusal, and connections ------------------------
for via in direct socketcall; do
	via_args "$via"
	p=$((7100 + ${#s[@]} * 10))
	name="connect, v6-only ($via)"
	case_run "$name" ENETUNREACH connect "${s[@]}" ::ffff:127.0.0.1 "$p" 1
	ev "$name" "$CPID" connect tcp null null 127.0.0.1 "$p" -101 ENETUNREACH
	expect_proc "$name: process" "$CPID" "$(proc_counts 0 0 0 0 1 1 0)"
	name="connect refused ($via)"
	case_run "$name" ECONNREFUSED connect "${s[@]}" ::ffff:127.0.0.1 $((p + 1)) 0
	ev "$name" "$CPID" connect tcp null null 127.0.0.1 $((p + 1)) -111 ECONNREFUSED
	expect_proc "$name: process" "$CPID" "$(proc_counts 0 0 0 0 1 1 0)"
done

# --- accept: an IPv4 client of a 32-bit server on [::], three ways to accept --------------
p=7200
for how in libc accept4 socketcall; do
	p=$((p + 1))
	name="accept ($how)"
	srv_start spid lo "$name: server" "$C32" serve -m "$how" "$p" 2 || continue
	cli "$name: IPv4 client" lo "$PROGS/tcpcli4" 127.0.0.1 "$p"
	lp1=$CLPORT
	# and a 32-bit client of it, through the mapped address
	via_args "$how"
	case_run "$name: 32-bit client" ok connect "${s[@]}" ::ffff:127.0.0.1 "$p" 0
	lp2=$(kv "$LINE" lport)
	ev "$name: 32-bit client" "$CPID" connect tcp 127.0.0.1 "$lp2" 127.0.0.1 "$p" 0 null
	expect_proc "$name: 32-bit client: process" "$CPID" "$(proc_counts 1 0 0 0 0 1 0)"
	if wait_pid "$spid" 10; then
		check_eq "$name: server exit status" 0 "$WAIT_RC"
	else
		fail "$name: server exit status" "still running after 10 s"
		stop_pid "$spid"
	fi
	expect_events "$name: server events" "$spid" \
		"$(ev_json event=accept proto=tcp pid="$spid" comm=compat32 laddr=127.0.0.1 lport="$p" \
			raddr=127.0.0.1 rport="$lp1" ret=0 error=null)" \
		"$(ev_json event=accept proto=tcp pid="$spid" comm=compat32 laddr=127.0.0.1 lport="$p" \
			raddr=127.0.0.1 rport="$lp2" ret=0 error=null)"
	expect_proc "$name: server process" "$spid" "$(proc_counts 0 2 0 0 0 1 0)"
done

# --- datagrams: a 32-bit sender and receiver, each way of sending -------------------------
p=7300
for m in sendto sendmsg sendmmsg; do
	for via in direct socketcall; do
		via_args "$via"
		p=$((p + 1))
		name="$m ($via), 4 datagrams to a 32-bit receiver"
		srv_start rpid lo "$name: receiver" "$C32" recv "$p" 4 || continue
		case_run "$name" ok send -m "$m" "${s[@]}" -n 4 ::ffff:127.0.0.1 "$p" 0
		lp=$(kv "$LINE" lport)
		ev "$name: sender" "$CPID" send udp 0.0.0.0 "$lp" 127.0.0.1 "$p" 0 null
		expect_proc "$name: sender process" "$CPID" "$(proc_counts 0 0 4 0 0 1 80)"
		if wait_pid "$rpid" 10; then
			check_eq "$name: the receiver got them" 4 \
				"$(grep -c "^received len=20 raddr=::ffff:127.0.0.1 rport=$lp\$" \
					"$(fbase "$name: receiver").out")"
		else
			fail "$name: the receiver got them" "still running after 10 s"
			stop_pid "$rpid"
		fi
		ev "$name: receiver" "$rpid" recv udp 0.0.0.0 "$p" 127.0.0.1 "$lp" 0 null
		expect_proc "$name: receiver process" "$rpid" "$(proc_counts 0 0 0 4 0 1 80)"
		# on a v6-only socket the send fails in the call: its destination is read from it
		name="$m ($via), v6-only"
		case_run "$name" ENETUNREACH send -m "$m" "${s[@]}" -n 2 ::ffff:127.0.0.1 "$p" 1
		ev "$name" "$CPID" send udp null null 127.0.0.1 "$p" -101 ENETUNREACH
		expect_proc "$name: process" "$CPID" "$(proc_counts 0 0 0 0 1 1 0)"
	done
done

dstrace_stop
check_json_lines "output" "$OUT"
check_expectations "$OUT" "$NSJ"
check_lost_zero "no events lost" "$OUT" "$NSJ"
check_eq "every event of the test's namespace was expected" "$EXPECTED_EVENTS" \
	"$(events_in "$OUT" "$NSJ" | wc -l)"

# --- where no 32-bit loader is installed (DSTRACE_IA32_LOADERS, tests only: none) --------
# pid_events FILE PID: PID's events, "event lport raddr rport ret" each, one line.
pid_events() {
	events_in "$1" "$NSJ" ".pid == $2" | jq -r '"\(.event) \(.lport) \(.raddr) \(.rport) \(.ret)"' |
		paste -sd ';'
}
# 32-bit servers running when dstrace starts, asleep in their call: followed from the start,
# and their calls in flight taken at their return (on the fentry and kprobe backends, whose
# hooks did not see them begin, listed by user/inflight.c): an accept through socketcall(2)
# and accept4, and UDP receivers.
name="no loader, 32-bit servers running at start"
srv_start spid lo "$name: accept (socketcall)" "$C32" serve -m socketcall 7400 1 || true
srv_start spid4 lo "$name: accept4" "$C32" serve -m accept4 7404 1 || true
srv_start rpid lo "$name: recvfrom" "$C32" recv 7405 1 || true
# and UDP receivers asleep in each other call that reads a datagram, direct or through
# socketcall(2) (read(2): no source asked)
RECV_HOW=("recvfrom" "recvmsg -s" "recvmmsg" "recvmmsg -s" "read")
RECV_PIDS=()
for i in "${!RECV_HOW[@]}"; do
	read -ra how <<<"${RECV_HOW[$i]}"
	srv_start p lo "$name: ${RECV_HOW[$i]}" "$C32" recv -m "${how[@]}" $((7410 + i)) 1 || true
	RECV_PIDS+=("$p")
done
sleep 0.5 # asleep in their calls
OUT2=$WORK/compat32-running.jsonl
if DSTRACE_IA32_LOADERS= dstrace_start "$OUT2" -v "${extra[@]}"; then
	check_match "$name: dstrace says why (-v)" \
		"^dstrace: a 32-bit program runs \(pid ($spid|$spid4|$rpid)\): following 32-bit programs' calls\$" \
		"$(grep -m1 '32-bit' "$DSTRACE_LOG")"
	check_eq "$name: the program is attached" yes "$(compat_attached)"
	cli "$name: IPv4 client" lo "$PROGS/tcpcli4" 127.0.0.1 7400
	lp1=$CLPORT
	cli "$name: IPv4 client of accept4" lo "$PROGS/tcpcli4" 127.0.0.1 7404
	lp2=$CLPORT
	cli "$name: sender" lo "$C32" send -m sendto -n 1 ::ffff:127.0.0.1 7405 0
	lp3=$(kv "$LINE" lport)
	RECV_LPORTS=()
	for i in "${!RECV_HOW[@]}"; do
		cli "$name: sender to ${RECV_HOW[$i]}" lo "$C32" send -m sendto -n 1 \
			::ffff:127.0.0.1 $((7410 + i)) 0
		RECV_LPORTS+=("$(kv "$LINE" lport)")
	done
	for p in "$spid" "$spid4" "$rpid" "${RECV_PIDS[@]}"; do
		wait_pid "$p" 10 || stop_pid "$p"
	done
	dstrace_stop
	check_eq "$name: the accept (socketcall)" "accept 7400 127.0.0.1 $lp1 0" \
		"$(pid_events "$OUT2" "$spid")"
	check_eq "$name: the accept4" "accept 7404 127.0.0.1 $lp2 0" "$(pid_events "$OUT2" "$spid4")"
	check_eq "$name: the datagram" "recv 7405 127.0.0.1 $lp3 0" "$(pid_events "$OUT2" "$rpid")"
	check_eq "$name: the receiver's counts" "$(proc_counts 0 0 0 1 0 1 20)" \
		"$(process_counts "$OUT2" "$rpid")"
	for i in "${!RECV_HOW[@]}"; do
		p=${RECV_PIDS[$i]:-0}
		check_eq "$name: ${RECV_HOW[$i]}: the datagram" \
			"recv $((7410 + i)) 127.0.0.1 ${RECV_LPORTS[$i]} 0" "$(pid_events "$OUT2" "$p")"
		check_eq "$name: ${RECV_HOW[$i]}: the counts" "$(proc_counts 0 0 0 1 0 1 20)" \
			"$(process_counts "$OUT2" "$p")"
	done
fi
# None running: not attached (no cost) until a 32-bit program starts, which dstrace says;
# from then on its calls are seen.
name="no loader, none running"
OUT3=$WORK/compat32-started.jsonl
if DSTRACE_IA32_LOADERS= dstrace_start "$OUT3" "${extra[@]}"; then
	check_eq "$name: the program is not attached" no "$(compat_attached)"
	check_eq "$name: nothing said" "" "$(grep '32-bit' "$DSTRACE_LOG")"
	cli "$name: a 32-bit program starts" lo "$C32" bind ::ffff:127.0.0.1 7401 0
	first=$CPID
	wait_line "$DSTRACE_LOG" '32-bit' 5 || true
	check_eq "$name: dstrace says so at once" \
		"dstrace: a 32-bit program started (pid $first): following 32-bit programs' calls from now on" \
		"$(grep -m1 '32-bit' "$DSTRACE_LOG")"
	check_eq "$name: the program is attached" yes "$(compat_attached)"
	case_run "$name: then a bind" ok bind ::ffff:127.0.0.1 7402 0
	second=$CPID
	case_run "$name: and a v6-only connect" ENETUNREACH connect ::ffff:127.0.0.1 7403 1
	third=$CPID
	dstrace_stop
	log "$name: the first program's bind, made as its exec was being told: $(
		pid_events "$OUT3" "$first")"
	check_eq "$name: the bind after" "bind 7402 null null 0" "$(pid_events "$OUT3" "$second")"
	check_eq "$name: the connect after" "connect null 127.0.0.1 7403 -101" \
		"$(pid_events "$OUT3" "$third")"
fi
summary
