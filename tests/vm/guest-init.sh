#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Stage 2 of the dstrace test VM: PID 1 after switch_root, running the host's own bash on the
# host's root filesystem (read-only 9p under a tmpfs overlay) with the guest kernel.
# run-in-vm.sh copies this file into the per-run directory, shared at /run/dstrace-vm with:
#   vm.env    TOKEN, REPO, WORKDIR (shell assignments)
#   cmd.sh    the command, as a bash array `cmd=(...)`, and `cmd_env=(NAME=VALUE ...)`
# Stage 1 has mounted everything and loaded veth and bridge; modprobe here uses the host's
# kmod and the guest kernel's /lib/modules (shared by run-in-vm.sh). This script runs the
# command with stdin /dev/null and stdout+stderr on the console (ttyS0) between two markers,
# ends what the command left running, writes the exit status to /run/dstrace-vm/status and
# powers the machine off. It never exits: PID 1 exiting would panic the kernel.
# Builtins where possible: every exec of a host binary over 9p costs ~0.1 s under TCG.

RUN=/run/dstrace-vm
# shellcheck source=/dev/null
. "$RUN/vm.env"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
exec </dev/null >/dev/console 2>&1

log() { echo "dstrace-vm: $*"; }

poweroff_now() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 10
	echo b >/proc/sysrq-trigger
	sleep 10
}

finish() {
	local status=$1
	echo "$status" >"$RUN/status.tmp" && mv -f "$RUN/status.tmp" "$RUN/status"
	echo "@@dstrace-vm:$TOKEN:exit=$status@@"
	poweroff_now
}

read -r krel </proc/sys/kernel/osrelease
read -r uptime _ </proc/uptime
lockdown=unknown
[ -r /sys/kernel/security/lockdown ] && read -r lockdown </sys/kernel/security/lockdown
log "guest ready: kernel $krel, uptime ${uptime}s, btf=$([ -r /sys/kernel/btf/vmlinux ] && echo yes || echo no)," \
	"lockdown: $lockdown"

# shellcheck source=/dev/null disable=SC2154 # cmd.sh sets cmd and cmd_env
if ! . "$RUN/cmd.sh" || [ "${#cmd[@]}" -eq 0 ]; then
	log "no command to run"
	finish 125
fi
if ! cd "$WORKDIR"; then
	log "cannot cd to $WORKDIR"
	finish 125
fi

# Heartbeat: a counter in $RUN/alive every 10 s. run-in-vm.sh ends a guest whose counter stops
# (wedged without a panic) instead of waiting for its timeout.
(
	n=0
	while :; do
		n=$((n + 1))
		echo "$n" >"$RUN/alive"
		read -r -t 10 <> <(:) # sleep 10 s without an exec
	done
) 2>/dev/null &
hbpid=$!
disown "$hbpid" # ended below without a "Killed" line from bash

echo "@@dstrace-vm:$TOKEN:begin@@"
# stdout and stderr are a pipe, not the tty: the command sees what it would see under CI.
# cat copies the pipe to the console until its last writer is gone, which includes whatever
# the command left running in the background.
exec {out}> >(exec cat)
catpid=$!
# shellcheck disable=SC2154
env -i PATH="$PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb LANG=C.UTF-8 \
	DSTRACE_VM=1 DSTRACE_VM_KERNEL="$krel" DSTRACE_VM_OUT="$RUN/out" "${cmd_env[@]}" \
	setsid -w "${cmd[@]}" </dev/null >&"$out" 2>&1
status=$?
exec {out}>&-
kill -KILL "$hbpid" 2>/dev/null

# alive PID: PID still runs (not gone, not a zombie)
alive() {
	local k v
	while read -r k v; do
		[ "$k" = State: ] || continue
		[ "${v:0:1}" != Z ]
		return
	done 2>/dev/null <"/proc/$1/status"
	return 1
}
# leftovers: user processes other than PID 1, this subshell and cat (kernel threads have no
# cmdline)
leftovers() {
	local p pid c
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[ "$pid" = 1 ] || [ "$pid" = "$catpid" ] || [ "$pid" = "$BASHPID" ] && continue
		c=
		read -r -d '' c 2>/dev/null <"$p/cmdline"
		[ -n "$c" ] && echo "$pid"
	done
}
for _ in 1 2 3 4 5 6 7 8 9 10; do
	alive "$catpid" || break
	read -r -t 0.1 <> <(:) 2>/dev/null # sleep 0.1 s without an exec
done
if alive "$catpid"; then
	pids=$(leftovers)
	names=
	for pid in $pids; do
		c=
		read -r c 2>/dev/null <"/proc/$pid/comm" && names+=" $c($pid)"
	done
	[ -z "$pids" ] || log "ending what the command left running:$names"
	# shellcheck disable=SC2086
	[ -z "$pids" ] || kill -TERM $pids 2>/dev/null
	for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		alive "$catpid" || break
		read -r -t 0.1 <> <(:) 2>/dev/null
	done
	pids=$(leftovers)
	# shellcheck disable=SC2086
	[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
fi
wait "$catpid" 2>/dev/null
echo "@@dstrace-vm:$TOKEN:end@@"
finish "$status"
