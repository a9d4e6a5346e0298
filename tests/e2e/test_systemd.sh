#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# dstrace under systemd (dist/dstrace.service), without a systemd to run it in:
#   1. the unit, installed with "make install DESTDIR=..." into a directory of the test, passes
#      "systemd-analyze verify" (in a private mount namespace where that directory's
#      /usr/local is bind-mounted over /usr/local, so ExecStart= is checked against the binary
#      make install put there, and nothing is installed on the machine);
#   2. the unit says what the issue asks for (Type=notify, watchdog, no CAP_SYS_ADMIN, ...);
#   3. the sd_notify protocol, with NOTIFY_SOCKET pointing at a datagram socket of the test:
#      READY=1 once tracing runs, sent by dstrace itself (SO_PASSCRED: the main pid, which
#      NotifyAccess=main requires), WATCHDOG=1 from the main loop only when WATCHDOG_USEC
#      says so, STATUS= with the counts, STOPPING=1 at SIGTERM;
#   4. the unit's capability bounding set and umask are enough: dstrace runs with exactly
#      CapabilityBoundingSet= (setpriv) and UMask=, in a mount namespace with tracefs
#      mounted as sys-kernel-tracing.mount does, and audits a mapped connect of a process
#      of another user (its executable read through /proc/PID/exe) into a 0640 file.
#
#   sudo tests/e2e/test_systemd.sh
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UNIT=$REPO_ROOT/dist/dstrace.service
SRV_PORT=9910
METRICS_PORT=9911

need_root
build_progs

need_tools systemd-analyze python3 setpriv unshare curl jq

# unit_value KEY: the values of KEY= in the unit (every occurrence, space-joined).
unit_value() {
	sed -n "s/^$1=//p" "$UNIT" | paste -sd ' '
}

# --- 1. systemd-analyze verify -----------------------------------------------------------------
ROOT=$WORK/root
if make -s -C "$REPO_ROOT" install DESTDIR="$ROOT" >"$WORK/install.log" 2>&1; then
	check_eq "make install DESTDIR: the unit and the binary" \
		"$ROOT/etc/systemd/system/dstrace.service $ROOT/usr/local/sbin/dstrace" \
		"$(find "$ROOT/etc/systemd/system/dstrace.service" "$ROOT/usr/local/sbin/dstrace" -type f | paste -sd ' ')"
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare -m --propagation private sh -c 'mount --bind "$1/usr/local" /usr/local &&
		exec systemd-analyze verify "$1/etc/systemd/system/dstrace.service"' sh "$ROOT" \
		>"$WORK/verify.log" 2>&1
	rc=$?
	check_eq "systemd-analyze verify dstrace.service: status and messages" "0: " \
		"$rc: $(paste -sd ' ' "$WORK/verify.log")"
else
	fail "make install DESTDIR" "expected success, got: $(tail -n 5 "$WORK/install.log")"
fi

# --- 2. what the unit says ------------------------------------------------------------------------
check_eq "unit: Type" notify "$(unit_value Type)"
check_eq "unit: NotifyAccess" main "$(unit_value NotifyAccess)"
check_eq "unit: WatchdogSec" 30s "$(unit_value WatchdogSec)"
check_eq "unit: IPAddressDeny, IPAddressAllow" "any localhost" \
	"$(unit_value IPAddressDeny) $(unit_value IPAddressAllow)"
check_eq "unit: UMask" 0027 "$(unit_value UMask)"
CAPS=$(unit_value CapabilityBoundingSet)
check_eq "unit: CapabilityBoundingSet" \
	"CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_PTRACE CAP_DAC_READ_SEARCH" "$CAPS"

# --- 3. sd_notify --------------------------------------------------------------------------------
# The listener: one line per datagram, "PID<TAB>MESSAGE" with the message's newlines as "|".
cat >"$WORK/notify.py" <<'EOF'
import os, socket, struct, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
with open(out, "w", buffering=1) as f:
    print("ready", file=f)
    while True:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = -1
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", data[:12])[0]
        print("%d\t%s" % (pid, msg.decode(errors="replace").replace("\n", "|")), file=f)
EOF

# notify_run NAME ENV...: dstrace -j with NOTIFY_SOCKET (and ENV) set, listener in NAME.log.
notify_run() {
	local name=$1
	shift
	rm -f "$WORK/$name.sock"
	bg_start_plain NOTIFY_PID python3 "$WORK/notify.py" "$WORK/$name.sock" "$WORK/$name.log"
	wait_line "$WORK/$name.log" '^ready$' 10 || fail "$name: listener" "did not start"
	DSTRACE_REAL=$DSTRACE
	DSTRACE=$WORK/dstrace-notify
	printf '#!/bin/sh\nexec env NOTIFY_SOCKET="%s" %s "%s" "$@"\n' "$WORK/$name.sock" "$*" \
		"$DSTRACE_REAL" >"$DSTRACE"
	chmod +x "$DSTRACE"
	dstrace_start_raw /dev/null -j -o "$WORK/$name.jsonl"
	DSTRACE=$DSTRACE_REAL
}

# bg_start_plain VAR CMD...: CMD in the background here (not in a namespace).
bg_start_plain() {
	local var=$1
	shift
	"$@" >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	printf -v "$var" '%s' "$!"
}

# msgs LOG REGEX: the messages (without pid) matching REGEX, one per line.
msgs() { cut -f 2 "$1" | grep -E -- "$2"; }

NOTIFY_PID=
if notify_run wd WATCHDOG_USEC=1000000; then
	pid=$DSTRACE_PID
	wait_line "$WORK/wd.log" 'READY=1' 5
	check_match "READY=1 from dstrace's own pid, with its status (and a first ping)" \
		"^$pid	READY=1\|WATCHDOG=1\|STATUS=Tracing \(backend [a-z]+\): [0-9]+ events, 0 lost$" \
		"$(grep -m1 'READY=1' "$WORK/wd.log")"
	sleep 3
	n=$(msgs "$WORK/wd.log" '^WATCHDOG=1' | wc -l)
	# WATCHDOG_USEC=1 s: a ping every 0.5 s, about 6 in 3 s.
	if [[ $n -ge 4 && $n -le 8 ]]; then
		pass "WATCHDOG_USEC=1000000: WATCHDOG=1 every 0.5 s" "expected 4 to 8 in 3 s, got $n"
	else
		fail "WATCHDOG_USEC=1000000: WATCHDOG=1 every 0.5 s" "expected 4 to 8 in 3 s, got $n"
	fi
	check_eq "every message from dstrace's pid" "$pid" \
		"$(grep -v '^ready$' "$WORK/wd.log" | cut -f 1 | sort -u | paste -sd ' ')"
	dstrace_stop_sig TERM
	check_eq "STOPPING=1 last, once" "1 STOPPING=1" \
		"$(msgs "$WORK/wd.log" '^STOPPING=1' | wc -l) $(tail -n 1 "$WORK/wd.log" | cut -f 2)"
fi
stop_pid "$NOTIFY_PID"

if notify_run nowd; then
	wait_line "$WORK/nowd.log" 'READY=1' 5
	check_match "without WATCHDOG_USEC: READY=1 and the status" \
		'^READY=1\|STATUS=Tracing \(backend [a-z]+\): [0-9]+ events, 0 lost$' \
		"$(msgs "$WORK/nowd.log" 'READY=1')"
	sleep 2
	check_eq "without WATCHDOG_USEC: no WATCHDOG=1 in 2 s" 0 \
		"$(msgs "$WORK/nowd.log" 'WATCHDOG=1' | wc -l)"
	dstrace_stop_sig TERM
	check_eq "without WATCHDOG_USEC: STOPPING=1 last" STOPPING=1 \
		"$(tail -n 1 "$WORK/nowd.log" | cut -f 2)"
fi
stop_pid "$NOTIFY_PID"

# The watchdog is another process's (WATCHDOG_PID): not ours to ping.
if notify_run otherpid WATCHDOG_USEC=1000000 WATCHDOG_PID=1; then
	wait_line "$WORK/otherpid.log" 'READY=1' 5
	sleep 2
	check_eq "WATCHDOG_PID of another process: no WATCHDOG=1" 0 \
		"$(msgs "$WORK/otherpid.log" 'WATCHDOG=1' | wc -l)"
	dstrace_stop_sig TERM
fi
stop_pid "$NOTIFY_PID"

# --- 4. the unit's capabilities and umask are enough ---------------------------------------------------
TAG=$(printf 'y%05d' $(($$ % 100000)))
BIN=$WORK/bin
mkdir -p "$BIN"
chmod 755 "$WORK" "$BIN"
cp "$PROGS/tcpserv4" "$BIN/$TAG-srv"
cp "$PROGS/tcpcli6" "$BIN/$TAG-cli"
lo_host_add u
# setpriv's names: cap_bpf -> bpf.
BOUNDING=-all$(for c in $CAPS; do c=${c#CAP_}; printf ',+%s' "${c,,}"; done)
wrapper=$WORK/dstrace-unit-caps
# As under systemd: the host's network namespace and mounts (cgroup v2), plus tracefs
# (sys-kernel-tracing.mount) in a mount namespace of dstrace's own, the unit's umask, and the
# unit's capabilities only.
cat >"$wrapper" <<EOF
#!/bin/sh
exec unshare -m --propagation private sh -c 'mountpoint -q /sys/kernel/tracing ||
	mount -t tracefs tracefs /sys/kernel/tracing || exit 1
	umask $(unit_value UMask)
	exec setpriv --bounding-set "$BOUNDING" --inh-caps=-all "\$@"' sh "$DSTRACE" "\$@"
EOF
chmod +x "$wrapper"
check_eq "port $METRICS_PORT free on this host's loopback" "" "$(ss -Hltn "sport = :$METRICS_PORT")"
DSTRACE_REAL=$DSTRACE
DSTRACE=$wrapper
dstrace_start_raw /dev/null --audit -o "$WORK/caps-audit.jsonl" -i 1 --metrics "127.0.0.1:$METRICS_PORT"
DSTRACE=$DSTRACE_REAL
if [[ -n $DSTRACE_PID ]]; then
	dpid=$DSTRACE_PID # unshare, sh, ip and setpriv each exec the next: one pid
	check_eq "dstrace's capabilities: the unit's bounding set" \
		"$(setpriv --bounding-set "$BOUNDING" sh -c 'grep CapEff /proc/self/status')" \
		"$(grep CapEff "/proc/$dpid/status" 2>&1)"
	bg_start _ u "$WORK/caps-srv" "$BIN/$TAG-srv" "$SRV_PORT"
	wait_line "$WORK/caps-srv.out" '^listening' 5 || fail "server" "did not start"
	line=$(in_ns u setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN/$TAG-cli" 127.0.0.1 "$SRV_PORT" 2>>"$WORK/cli.err")
	check_match "a mapped connect as uid 65534" '^connected .*wire=ipv4' "$line"
	sleep 2.5
	check_match "with the unit's capabilities: /metrics answers with the connect" \
		"comm=\"$TAG-cli\",runtime=\"\",qos=\"\"} 1\$" \
		"$(curl -sS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" | grep -F "event=\"connect\",proto=\"tcp\",comm=\"$TAG-cli\"")"
	dstrace_stop_sig TERM
	check_eq "with the unit's capabilities: the audit record (exe read as another user's)" \
		"$BIN/$TAG-cli uid=65534 connect=1" \
		"$(jq -r --arg c "$TAG-cli" 'select(.type == "audit" and .comm == $c) | "\(.exe) uid=\(.uid) connect=\(.connect.tcp)"' \
			"$WORK/caps-audit.jsonl" | tail -n 1)"
	check_eq "UMask=0027: the audit file's mode" 640 "$(stat -c %a "$WORK/caps-audit.jsonl")"
fi

summary
