#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Containers and pods from cgroup paths (user/container.c, docs/audit-format.md): processes
# run in cgroup v2 directories shaped like a container runtime's, and dstrace names them.
#   - a dual-stack server (tcpserv6) in a Kubernetes besteffort pod's containerd container:
#     .../kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/
#        cri-containerd-<64 hex>.scope
#   - a mapped client (tcpcli6) in a docker container (cgroupfs driver): .../docker/<64 hex>
#   - the same client in no container: the test's own cgroup
# The shapes live under a directory of this run's own (/dstrace-e2e-<pid>/...) so that they
# never meet a real kubelet's or docker's cgroups; the parser finds them anywhere in a path.
# The server accepts both clients' connections as IPv4 (the mapped client's too): 2 * ROUNDS
# accepts. Checked: the audit records' cgroup, container, runtime, pod_uid and qos (null where
# unknown), the same fields in the -j events (looked up once per cgroup), and the runtime and
# qos labels of the programs' Prometheus series (--metrics-file, written with the audit), which
# name neither the container nor the pod. The programs run as copies named <tag>-<program>, so
# that their series (summed per comm, runtime and qos machine-wide) are this run's alone.
#
#   sudo tests/e2e/test_container.sh
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TCP_PORT=9770
ROUNDS=3

need_root
build_progs

TAG=$(printf 'c%05d' $(($$ % 100000)))
BIN=$WORK/bin
mkdir -p "$BIN"
S6=$TAG-tcpserv6 C6=$TAG-tcpcli6 # 15 and 14 characters: whole in comm
cp "$PROGS/tcpserv6" "$BIN/$S6"
cp "$PROGS/tcpcli6" "$BIN/$C6"

CG_ROOT=$(findmnt -t cgroup2 -n -o TARGET | head -n 1)
if [[ -z $CG_ROOT ]]; then
	fail "cgroup v2 mounted" "expected a cgroup2 mount, got none"
	summary
	exit 1
fi
hex() { od -An -N "$1" -tx1 /dev/urandom | tr -d ' \n'; }
POD_UID=$(hex 4)-$(hex 2)-4$(hex 2 | cut -c2-4)-8$(hex 2 | cut -c2-4)-$(hex 6)
POD_ID=$(hex 32)
DOCKER_ID=$(hex 32)
TOP=/dstrace-e2e-$$
POD_CG=$TOP/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_UID//-/_}.slice/cri-containerd-$POD_ID.scope
DOCKER_CG=$TOP/docker/$DOCKER_ID
log "pod uid $POD_UID, containerd container $POD_ID, docker container $DOCKER_ID"

# Our cgroups go when the test ends: their processes first (only ours are in them).
cg_cleanup() {
	local d pid
	for d in "$CG_ROOT$POD_CG" "$CG_ROOT$DOCKER_CG"; do
		[[ -e $d/cgroup.procs ]] || continue
		while read -r pid; do
			kill -KILL "$pid" 2>/dev/null
		done <"$d/cgroup.procs"
	done
	sleep 0.2
	find "$CG_ROOT$TOP" -depth -type d -exec rmdir {} + 2>/dev/null
	if [[ -e $CG_ROOT$TOP ]]; then
		echo "# could not remove $CG_ROOT$TOP" >&2
	fi
}
trap 'cg_cleanup; cleanup' EXIT
mkdir -p "$CG_ROOT$POD_CG" "$CG_ROOT$DOCKER_CG" || {
	fail "container-shaped cgroups" "expected mkdir under $CG_ROOT to work, got an error"
	summary
	exit 1
}
pass "container-shaped cgroups" "$POD_CG, $DOCKER_CG"

# bg_in_cg VAR CGROUP OUTBASE CMD...: like bg_start in the test's host, with CMD in CGROUP:
# a shell moves itself there and execs ip netns exec, which execs CMD: one pid all along,
# in VAR. (Inside ip netns exec, /sys is the namespace's own: the cgroup file system is
# not mounted there, so the move comes first.)
bg_in_cg() {
	local _var=$1 cg=$2 out=$3
	shift 3
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG_ROOT$cg" \
		ip netns exec "$(ns_name "$ROLE")" "$@" >"$out.out" 2>"$out.err" &
	BG_PIDS+=("$!")
	printf -v "$_var" '%s' "$!"
}

# run_in_cg CGROUP SECONDS OUTBASE CMD...: bg_in_cg, then wait (RUN_PID, RUN_RC as run_in).
run_in_cg() {
	local cg=$1 secs=$2 out=$3
	shift 3
	bg_in_cg RUN_PID "$cg" "$out" "$@"
	wait_run "$secs"
}

# payload OUTFILE: the bytes of the echo line of the tcpcli6 whose output is OUTFILE
# (tests/progs/common.c, echo_once), from the pid= it reports.
payload() {
	local p
	p="hello from tcpcli6 pid $(kv "$(head -n 1 "$1")" pid)"
	echo $((${#p} + 1))
}

ROLE=lo
lo_host_add "$ROLE"
NS=$(ns_json "$ROLE")

# traffic: the server in the pod, ROUNDS mapped clients in the docker container, ROUNDS in no
# container. Sets SERVER_PID, DOCKER_PIDS, CLI6_PIDS, and DOCKER_BYTES, CLI6_BYTES: what the
# clients of each sent (and got back: an echo), "hello from tcpcli6 pid N\n" each.
traffic() {
	local i
	bg_in_cg SERVER_PID "$POD_CG" "$WORK/server-$1" "$BIN/$S6" "$TCP_PORT"
	if ! wait_line "$WORK/server-$1.out" '^listening' 5; then
		fail "$1: tcpserv6 in the pod" "expected 'listening' within 5 s, got: $(cat "$WORK/server-$1.err")"
		return 1
	fi
	check_eq "$1: the server's cgroup" "0::$POD_CG" "$(grep '^0::' "/proc/$SERVER_PID/cgroup")"
	DOCKER_PIDS=() CLI6_PIDS=() DOCKER_BYTES=0 CLI6_BYTES=0
	for ((i = 0; i < ROUNDS; i++)); do
		run_in_cg "$DOCKER_CG" 10 "$WORK/docker-$1-$i" "$BIN/$C6" ::ffff:127.0.0.1 "$TCP_PORT"
		DOCKER_PIDS+=("$RUN_PID")
		[[ $RUN_RC == 0 ]] || fail "$1: tcpcli6 in docker $i" "expected exit 0, got $RUN_RC: $(cat "$WORK/docker-$1-$i.err")"
		DOCKER_BYTES=$((DOCKER_BYTES + $(payload "$WORK/docker-$1-$i.out")))
		run_in "$ROLE" 10 "$WORK/cli6-$1-$i" "$BIN/$C6" ::ffff:127.0.0.1 "$TCP_PORT"
		CLI6_PIDS+=("$RUN_PID")
		[[ $RUN_RC == 0 ]] || fail "$1: tcpcli6 $i" "expected exit 0, got $RUN_RC: $(cat "$WORK/cli6-$1-$i.err")"
		CLI6_BYTES=$((CLI6_BYTES + $(payload "$WORK/cli6-$1-$i.out")))
	done
	sleep 0.3
	kill -TERM "$SERVER_PID" 2>/dev/null
	wait_pid "$SERVER_PID" 5 || kill -KILL "$SERVER_PID" 2>/dev/null
}

# --- the audit records ----------------------------------------------------------------------
AUDIT=$WORK/audit.jsonl
PROM=$WORK/dstrace.prom
if dstrace_start_raw /dev/null --audit -o "$AUDIT" -i 1 --metrics-file "$PROM"; then
	traffic audit
	sleep 1.5 # one more interval: the records of the last connections
	dstrace_stop_sig TERM
	NSINO=$(netns_inode "$ROLE")
	# prog EXE CGROUP: "cgroup container runtime pod_uid qos accept connect" of the final
	# record of the program EXE in CGROUP (in the test's netns).
	prog() {
		jq -r --argjson ns "$NSINO" --arg exe "/$1" --arg cg "$2" 'select(.type == "audit"
			and .netns == $ns and (.exe | endswith($exe)) and .cgroup == $cg)
			| "\(.cgroup) \(.container) \(.runtime) \(.pod_uid) \(.qos) accept=\(.accept.tcp) connect=\(.connect.tcp)"' \
			"$AUDIT" | tail -n 1
	}
	check_eq "audit: the server in the pod's containerd container" \
		"$POD_CG $POD_ID containerd $POD_UID besteffort accept=$((2 * ROUNDS)) connect=0" \
		"$(prog "$S6" "$POD_CG")"
	check_eq "audit: the client in the docker container" \
		"$DOCKER_CG $DOCKER_ID docker null null accept=0 connect=$ROUNDS" \
		"$(prog "$C6" "$DOCKER_CG")"
	MY_CG=$(grep '^0::' /proc/self/cgroup | cut -c4-)
	check_eq "audit: the client in no container" \
		"$MY_CG null null null null accept=0 connect=$ROUNDS" "$(prog "$C6" "$MY_CG")"
	check_eq "audit: the record has the four fields next to container, in order" \
		'["cgroup","container","runtime","pod_uid","qos","netns"]' \
		"$(jq -c --argjson ns "$NSINO" 'select(.type == "audit" and .netns == $ns) | keys_unsorted
			| [.[] | select(IN("cgroup","container","runtime","pod_uid","qos","netns"))]' "$AUDIT" | sort -u | tr '\n' ' ' | sed 's/ $//')"
	check_eq "audit: programs in the test's netns" 3 \
		"$(jq -r --argjson ns "$NSINO" 'select(.type == "audit" and .netns == $ns) | .cgroup' "$AUDIT" | sort -u | wc -l)"
	# dstrace report names the container and the pod
	"$DSTRACE" report "$AUDIT" >"$WORK/report.txt" 2>&1
	check_match "report: the server's label names its container (short id)" \
		"container ${POD_ID:0:12}\\)" "$(grep -m1 "^$S6 " "$WORK/report.txt")"
	check_eq "report: the server's container and pod lines" \
		"  container $POD_ID (containerd)|  pod       $POD_UID (besteffort)" \
		"$(grep -E "^  (container $POD_ID|pod  )" "$WORK/report.txt" | paste -sd'|')"
	# The Prometheus series (--metrics-file, written at exit), exactly: each program's runtime
	# and qos labels after its comm, and neither the container id nor the pod UID anywhere.
	# series METRIC: the sample lines of METRIC of this run's programs, sorted, one line.
	series() { grep -F "comm=\"$TAG-" "$PROM" | grep "^$1{" | LC_ALL=C sort | paste -sd'|'; }
	want() { printf '%s\n' "$@" | LC_ALL=C sort | paste -sd'|'; }
	check_eq "metrics: events of the server in the pod, the clients in docker and on the host" \
		"$(want "dstrace_mapped_events_total{event=\"accept\",proto=\"tcp\",comm=\"$S6\",runtime=\"containerd\",qos=\"besteffort\"} $((2 * ROUNDS))" \
			"dstrace_mapped_events_total{event=\"connect\",proto=\"tcp\",comm=\"$C6\",runtime=\"docker\",qos=\"\"} $ROUNDS" \
			"dstrace_mapped_events_total{event=\"connect\",proto=\"tcp\",comm=\"$C6\",runtime=\"\",qos=\"\"} $ROUNDS")" \
		"$(series dstrace_mapped_events_total)"
	check_eq "metrics: their bytes (echoed: as many each way)" \
		"$(want "dstrace_mapped_bytes_total{direction=\"sent\",proto=\"tcp\",comm=\"$S6\",runtime=\"containerd\",qos=\"besteffort\"} $((DOCKER_BYTES + CLI6_BYTES))" \
			"dstrace_mapped_bytes_total{direction=\"received\",proto=\"tcp\",comm=\"$S6\",runtime=\"containerd\",qos=\"besteffort\"} $((DOCKER_BYTES + CLI6_BYTES))" \
			"dstrace_mapped_bytes_total{direction=\"sent\",proto=\"tcp\",comm=\"$C6\",runtime=\"docker\",qos=\"\"} $DOCKER_BYTES" \
			"dstrace_mapped_bytes_total{direction=\"received\",proto=\"tcp\",comm=\"$C6\",runtime=\"docker\",qos=\"\"} $DOCKER_BYTES" \
			"dstrace_mapped_bytes_total{direction=\"sent\",proto=\"tcp\",comm=\"$C6\",runtime=\"\",qos=\"\"} $CLI6_BYTES" \
			"dstrace_mapped_bytes_total{direction=\"received\",proto=\"tcp\",comm=\"$C6\",runtime=\"\",qos=\"\"} $CLI6_BYTES")" \
		"$(series dstrace_mapped_bytes_total)"
	check_eq "metrics: no failures of theirs" "" "$(series dstrace_mapped_failures_total)"
	check_eq "metrics: neither container ids nor the pod UID in the exposition" 0 \
		"$(grep -c -e "$POD_ID" -e "$DOCKER_ID" -e "$POD_UID" -e "${POD_UID//-/_}" "$PROM")"
	if command -v promtool >/dev/null; then
		if promtool check metrics <"$PROM" >"$WORK/promtool.log" 2>&1; then
			pass "metrics: promtool check metrics" "no problems"
		else
			fail "metrics: promtool check metrics" "expected no problems, got: $(head -n 5 "$WORK/promtool.log")"
		fi
	fi
fi

# --- the -j events ----------------------------------------------------------------------------
EVENTS=$WORK/events.jsonl
if dstrace_start "$EVENTS"; then
	traffic events
	dstrace_stop
	check_json_lines "events: JSON Lines" "$EVENTS"
	ev() {
		events_in "$EVENTS" "$NS" "$1" |
			jq -r '"\(.event) \(.container) \(.runtime) \(.pod_uid) \(.qos)"' | sort | uniq -c |
			awk '{$1 = $1; print}'
	}
	check_eq "events: the server's accepts name its container and pod" \
		"$((2 * ROUNDS)) accept $POD_ID containerd $POD_UID besteffort" \
		"$(ev ".pid == $SERVER_PID")"
	check_eq "events: the connects of the client in the docker container" \
		"$ROUNDS connect $DOCKER_ID docker null null" \
		"$(ev "(.pid as \$p | [$(IFS=,; echo "${DOCKER_PIDS[*]}")] | index(\$p)) and .event == \"connect\" and .proto == \"tcp\"")"
	check_eq "events: the connects of the client in no container" \
		"$ROUNDS connect null null null null" \
		"$(ev "(.pid as \$p | [$(IFS=,; echo "${CLI6_PIDS[*]}")] | index(\$p)) and .event == \"connect\" and .proto == \"tcp\"")"
fi

summary
