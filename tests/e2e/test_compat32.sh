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

OUT=$WORK/compat32.jsonl
read -ra extra <<<"${DSTRACE_ARGS:-}"
if ! dstrace_start "$OUT" "${extra[@]}"; then
	summary
	exit 1
fi

# case_run NAME WANT ARGS...: run compat32 ARGS to its end; its result= must be WANT.
case_run() {
	local name=$1 want=$2
	shift 2
	cli "$name" lo "$C32" "$@"
	check_eq "$name: the program's result" "$want" "$(kv "$LINE" result)"
}

# ev NAME PID EVENT PROTO LADDR LPORT RADDR RPORT RET ERROR: PID's events are exactly this one.
ev() {
	expect_events "$1: events" "$2" "$(ev_json event="$3" proto="$4" pid="$2" tid="$2" \
		comm=compat32 uid=0 laddr="$5" lport="$6" raddr="$7" rport="$8" ret="$9" error="${10}")"
}

# --- bind: the result is read at the call's exit ------------------------------------------
for via in direct socketcall; do
	s=()
	[[ $via == socketcall ]] && s=(-s)
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
	s=()
	[[ $via == socketcall ]] && s=(-s)
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
	s=()
	[[ $how == socketcall ]] && s=(-s)
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
		s=()
		[[ $via == socketcall ]] && s=(-s)
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
summary
