#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Every way a program moves bytes through a mapped TCP connection is counted, exactly, by
# every backend this kernel runs: write/read, send/recv (each chunk peeked at first with
# MSG_PEEK, which reads nothing), writev/readv, sendmsg/recvmsg, sendfile (through
# tcp_sendpage() before Linux 6.5), splice both ways (a web server's static files, a
# proxy's relay), and write/read on MPTCP sockets and on kernel TLS (the plaintext's bytes),
# where the kernel has them. tests/progs/tcpbytes moves BYTES each way over one connection of its own
# (both ends mapped, in one process); each method runs from a copy of the program under a
# name of its own, so the audit record of each (the executable is part of what a program
# is) holds that method's counts only: 1 connect, 1 accept, 2 x BYTES sent and received.
#
#   sudo tests/e2e/test_tcpbytes.sh [BACKEND...]    (default: every backend that loads)
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BYTES=300001 # not a multiple of the program's 16 KiB chunks
METHODS=(rw sendrecv iov msg sendfile splice)
PORT0=9400

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
	METHODS+=(mptcp)
else
	log "skipped: mptcp: this kernel has no MPTCP (no /proc/sys/net/mptcp: CONFIG_MPTCP off)"
fi
modprobe -q tls 2>/dev/null # a module in Debian's kernels; asked for by name, as by a program
probe=$(in_ns tb "$PROGS/tcpbytes" ktls $((PORT0 + 20)) 1 2>/dev/null)
case $(kv "$probe" result) in
ok) METHODS+=(ktls) ;;
ENOENT | ENOPROTOOPT)
	log "skipped: ktls: this kernel has no kernel TLS (TCP_ULP \"tls\": $(kv "$probe" result))" ;;
*) fail "ktls: the probe run" "expected result=ok, or ENOENT without kernel TLS, got: $probe" ;;
esac
mkdir -p "$WORK/bin"
for m in "${METHODS[@]}"; do
	cp "$PROGS/tcpbytes" "$WORK/bin/tcpbytes-$m"
done

for b in "${BACKENDS[@]}"; do
	AUD=$WORK/audit-$b.jsonl
	dstrace_start_raw "$WORK/audit-$b.stdout" --backend "$b" --audit -o "$AUD" -i 3600 || continue
	for i in "${!METHODS[@]}"; do
		m=${METHODS[$i]}
		base=$(fbase "$b $m")
		run_in tb 30 "$base" "$WORK/bin/tcpbytes-$m" "$m" $((PORT0 + i)) "$BYTES"
		check_eq "$b $m: the program's exit status and result" "0 ok" \
			"$RUN_RC $(kv "$(cat "$base.out")" result)"
	done
	dstrace_stop
	for m in "${METHODS[@]}"; do
		rec=$(jq -c --argjson ns "$NS_INODE" --arg exe "tcpbytes-$m" \
			'select(.type == "audit" and .netns == $ns and (.exe | endswith("/" + $exe)))' \
			"$AUD" | tail -n 1)
		want_recv=$((2 * BYTES)) limit=
		if [[ $b == tracepoint && $m == splice ]]; then
			# README, Limits: no tracepoint on a TCP socket's splice() reads
			want_recv=0 limit=" (the tracepoint backend does not see splice() reads)"
		fi
		check_eq "$b $m: connects, accepts, TCP bytes sent and received (audit record)$limit" \
			"connect=1 accept=1 sent=$((2 * BYTES)) received=$want_recv" \
			"$(jq -r '"connect=\(.connect.tcp) accept=\(.accept.tcp) sent=\(.sent.tcp_bytes) received=\(.received.tcp_bytes)"' <<<"${rec:-null}" 2>&1)"
	done
done
summary
