#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Every way a program moves bytes through a mapped TCP connection is counted, exactly, by every
# backend this kernel runs: write/read, send/recv (each chunk peeked at first with MSG_PEEK, which
# reads nothing), writev/readv, sendmsg/recvmsg, sendfile (through the socket's sendpage before
# Linux 6.5; and from the socket into a pipe), splice both ways (a web server's static files, a
# proxy's relay), by a 64-bit program, by a 32-bit one (ia32 calls, which the syscall tracepoints
# skip: splice32, sendfile-read32) and through io_uring (the reads from a descriptor and from a
# fixed file), and write/read on MPTCP sockets (and splice, which reads them through recvmsg before
# Linux 7.0: counted once, and with MPTCP's own splice_read from 7.0) and on kernel TLS (the
# plaintext's bytes; and splice both ways, which pass neither TCP's splice_read nor, before 6.5, its
# sendpage), where the kernel has them. tests/progs/tcpbytes moves BYTES each way over one
# connection of its own (both ends mapped, in one process); each method runs from a copy of the
# program under a name of its own, so the audit record of each (the executable is part of what a
# program is) holds that method's counts only: 1 connect, 1 accept, 2 x BYTES sent and received.
# And a kernel service's, where the kernel has nfsd (tests/progs/knfsd.py): nfsd's thread accepts
# an IPv4 client on a dual-stack listener handed to it and answers its NULL calls, before Linux 6.5
# with kernel_sendpage(), which passes no socket file: the record of the threads named nfsd.
#
#   sudo tests/e2e/test_tcpbytes.sh [BACKEND...]    (default: every backend that loads)
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BYTES=300001 # not a multiple of the program's 16 KiB chunks
METHODS=(rw sendrecv iov msg sendfile splice)
PORT0=9400

# kernel_before MAJOR MINOR: this kernel is older than MAJOR.MINOR
kernel_before() {
	local v maj min
	v=$(uname -r)
	maj=${v%%.*}
	min=${v#*.}
	min=${min%%[!0-9]*}
	((maj < $1 || (maj == $1 && min < $2)))
}

# sendfile() from a socket into a pipe: Linux 5.12+ (before, EINVAL)
if kernel_before 5 12; then
	log "skipped: sendfile-read: sendfile() into a pipe is Linux 5.12's"
else
	METHODS+=(sendfile-read)
fi

need_root
build_progs

backends_to_run "$@"
log "backends: ${BACKENDS[*]}"

lo_host_add tb
NS_INODE=$(netns_inode tb)
# Stream sockets whose bytes never pass tcp_sendmsg()/tcp_recvmsg(): MPTCP's and kernel
# TLS's, where the kernel has them (both are build options; Debian's kernels have them, this
# project's own machine has no kernel TLS).
if [[ -e /proc/sys/net/mptcp/enabled ]]; then
	ns_sysctl tb net.mptcp.enabled=1
	METHODS+=(mptcp mptcp-splice)
else
	log "skipped: mptcp: this kernel has no MPTCP (no /proc/sys/net/mptcp: CONFIG_MPTCP off)"
fi
modprobe -q tls 2>/dev/null # a module in Debian's kernels; asked for by name, as by a program
probe=$(in_ns tb "$PROGS/tcpbytes" ktls $((PORT0 + 20)) 1 2>/dev/null)
case $(kv "$probe" result) in
ok) METHODS+=(ktls ktls-splice) ;;
ENOENT | ENOPROTOOPT)
	log "skipped: ktls: this kernel has no kernel TLS (TCP_ULP \"tls\": $(kv "$probe" result))" ;;
*) fail "ktls: the probe run" "expected result=ok, or ENOENT without kernel TLS, got: $probe" ;;
esac
# Reads in progress when dstrace starts: a connection made before it, whose reader (a child
# of the program) is asleep in read() until its sender, told once dstrace runs, sends BYTES:
# on TCP, and on MPTCP (whose socket the kernel's tables list through its subflows).
INFLIGHT=(rw)
[[ " ${METHODS[*]} " == *" mptcp "* ]] && INFLIGHT+=(mptcp)
# io_uring's splices, where the kernel lets programs use io_uring
probe=$(in_ns tb "$PROGS/tcpbytes" splice-uring $((PORT0 + 21)) 1 2>/dev/null)
case $(kv "$probe" result) in
ok) METHODS+=(splice-uring) ;;
ENOSYS | EPERM)
	log "skipped: splice-uring: io_uring refused here (kernel.io_uring_disabled or no io_uring: $(kv "$probe" result))" ;;
*) fail "splice-uring: the probe run" "expected result=ok, or ENOSYS/EPERM without io_uring, got: $probe" ;;
esac
# splice32, sendfile-read32: by tcpbytes32, the 32-bit build, where 32-bit x86 programs run
# (its usage: exit status 2)
if [[ -x $PROGS/tcpbytes32 ]]; then
	"$PROGS/tcpbytes32" >/dev/null 2>&1
	rc=$?
	if [[ $rc == 2 ]]; then
		METHODS+=(splice32)
		kernel_before 5 12 || METHODS+=(sendfile-read32)
	else
		log "skipped: splice32, sendfile-read32: this kernel does not run 32-bit programs (exit status $rc)"
	fi
elif [[ $(uname -m) == x86_64 ]]; then
	fail "splice32" "expected tests/progs/.output/tcpbytes32 built (gcc-multilib: scripts/install-deps.sh), got none"
else
	log "skipped: splice32, sendfile-read32: 32-bit x86 programs are x86-64's"
fi
# A kernel service's bytes: nfsd serving a dual-stack listener (knfsd.py), where the kernel
# has nfsd (a module in Debian's kernels; this project's own machine has none)
KNFSD_CALLS=50
probe=$(in_ns tb python3 "$REPO_ROOT/tests/progs/knfsd.py" $((PORT0 + 22)) 1 2>&1)
case $(kv "$probe" result) in
ok) KNFSD=1 ;;
ENODEV)
	KNFSD=
	log "skipped: knfsd: this kernel has no nfsd (CONFIG_NFSD: no module, no nfsd filesystem)" ;;
*)
	KNFSD=
	fail "knfsd: the probe run" "expected result=ok, or ENODEV without nfsd, got: $probe" ;;
esac
mkdir -p "$WORK/bin"
for m in "${METHODS[@]}"; do
	if [[ $m == *32 ]]; then
		cp "$PROGS/tcpbytes32" "$WORK/bin/tcpbytes-$m"
	else
		cp "$PROGS/tcpbytes" "$WORK/bin/tcpbytes-$m"
	fi
done
for m in "${INFLIGHT[@]}"; do
	cp "$PROGS/tcpbytes" "$WORK/bin/tcpbytes-w-$m"
done

# inflight_start B: the in-progress reads' programs, ready before dstrace starts under B.
inflight_start() {
	local i m base
	IFL_PIDS=()
	for i in "${!INFLIGHT[@]}"; do
		m=${INFLIGHT[$i]}
		base=$(fbase "$1 in flight $m")
		bg_start "IFL_PID" tb "$base" "$WORK/bin/tcpbytes-w-$m" -w "$m" $((PORT0 + 30 + i)) "$BYTES"
		IFL_PIDS+=("$IFL_PID")
		wait_line "$base.out" '^ready' 10 ||
			fail "$1 in flight $m: ready" "$(cat "$base.out" "$base.err")"
	done
	sleep 0.5 # the readers asleep in read()
}

# inflight_finish B: tell the senders, wait for them.
inflight_finish() {
	local i m base
	for i in "${!INFLIGHT[@]}"; do
		m=${INFLIGHT[$i]}
		base=$(fbase "$1 in flight $m")
		kill -USR1 "${IFL_PIDS[$i]}" 2>/dev/null
		if wait_pid "${IFL_PIDS[$i]}" 30; then
			check_eq "$1 in flight $m: the program's exit status and result" "0 ok" \
				"$WAIT_RC $(kv "$(tail -n 1 "$base.out")" result)"
		else
			fail "$1 in flight $m: the program's exit status" "still running after 30 s"
			stop_pid "${IFL_PIDS[$i]}"
		fi
	done
}

# counts_of: "connect=N accept=N sent=N received=N" of the last of the audit records on stdin
counts_of() {
	tail -n 1 | jq -rs '.[0] // null | "connect=\(.connect.tcp) accept=\(.accept.tcp) " +
		"sent=\(.sent.tcp_bytes) received=\(.received.tcp_bytes)"' 2>&1
}

# audit_counts AUDIT EXE: counts_of the program EXE (its file name) in the test's namespace
audit_counts() {
	jq -c --argjson ns "$NS_INODE" --arg exe "$2" \
		'select(.type == "audit" and .netns == $ns and (.exe | endswith("/" + $exe)))' \
		"$1" | counts_of
}

# kthread_counts AUDIT COMM: counts_of the kernel threads named COMM
kthread_counts() {
	jq -c --arg comm "$2" 'select(.type == "audit" and .comm == $comm)' "$1" | counts_of
}

for b in "${BACKENDS[@]}"; do
	AUD=$WORK/audit-$b.jsonl
	inflight_start "$b"
	if ! dstrace_start_raw "$WORK/audit-$b.stdout" --backend "$b" --audit -o "$AUD" -i 3600; then
		inflight_finish "$b"
		continue
	fi
	inflight_finish "$b"
	for i in "${!METHODS[@]}"; do
		m=${METHODS[$i]}
		base=$(fbase "$b $m")
		run_in tb 30 "$base" "$WORK/bin/tcpbytes-$m" "${m%32}" $((PORT0 + i)) "$BYTES"
		check_eq "$b $m: the program's exit status and result" "0 ok" \
			"$RUN_RC $(kv "$(cat "$base.out")" result)"
	done
	if [[ -n $KNFSD ]]; then
		base=$(fbase "$b knfsd")
		run_in tb 60 "$base" python3 "$REPO_ROOT/tests/progs/knfsd.py" $((PORT0 + 22)) "$KNFSD_CALLS"
		out=$(cat "$base.out")
		check_eq "$b knfsd: the client's exit status and bytes" \
			"0 ok $((44 * KNFSD_CALLS)) $((28 * KNFSD_CALLS))" \
			"$RUN_RC $(kv "$out" result) $(kv "$out" sent) $(kv "$out" received)"
	fi
	dstrace_stop
	for m in "${METHODS[@]}"; do
		check_eq "$b $m: connects, accepts, TCP bytes sent and received (audit record)" \
			"connect=1 accept=1 sent=$((2 * BYTES)) received=$((2 * BYTES))" \
			"$(audit_counts "$AUD" "tcpbytes-$m")"
	done
	# nfsd's thread: its accept, the calls it read, its replies (kernel_sendpage() before 6.5).
	# The tracepoint backend sees no kernel_accept() (no syscall, no tracepoint: README,
	# Limits), and before 6.5 no kernel_sendpage() (sendpage_blind): the record markers only.
	if [[ -n $KNFSD ]]; then
		accepts=1 sent=$((28 * KNFSD_CALLS))
		if [[ $b == tracepoint ]]; then
			accepts=0
			kernel_before 6 5 && sent=$((4 * KNFSD_CALLS))
		fi
		check_eq "$b knfsd: nfsd's connects, accepts, TCP bytes sent and received (audit record)" \
			"connect=0 accept=$accepts sent=$sent received=$((44 * KNFSD_CALLS))" \
			"$(kthread_counts "$AUD" nfsd)"
	fi
	# the connection existed at start: its ends are a connect and an accept (existing)
	for m in "${INFLIGHT[@]}"; do
		check_eq "$b in flight $m: connects, accepts, TCP bytes sent and received (audit record)" \
			"connect=1 accept=1 sent=$BYTES received=$BYTES" \
			"$(audit_counts "$AUD" "tcpbytes-w-$m")"
	done
done
summary
