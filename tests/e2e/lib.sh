# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
#
# Library for dstrace's end-to-end tests. Source it from a test script (as root):
#
#   . "$(dirname "$0")/lib.sh"
#   need_root; build_progs; topo_up
#   dstrace_start "$WORK/out.jsonl" || ...
#   ... traffic ...
#   dstrace_stop
#   check_eq "some check" "$expected" "$got"
#   summary
#
# Checks: pass/fail/check_eq print "PASS name: ..." or "FAIL name: expected X, got Y";
# summary prints "N passed, N failed" and returns non-zero if any failed.
#
# Topology (topo_up): network namespaces are hosts, all on one bridge (dsbr0) that lives in
# a namespace of its own. Only documentation addresses: 192.0.2.0/24 and 2001:db8::/64.
#
#   role  kind          IPv4         IPv6
#   c4    IPv4-only     192.0.2.10   -
#   c6    IPv6-only     -            2001:db8::11
#   cds   dual-stack    192.0.2.12   2001:db8::12
#   s4    IPv4-only     192.0.2.2    -
#   s6    IPv6-only     -            2001:db8::3
#   sds   dual-stack    192.0.2.4    2001:db8::4
#
# Every host's /etc/hosts (/etc/netns/NS/hosts; nsswitch.conf says "hosts: files"):
#   srv4  A 192.0.2.2 (s4)    srv6  AAAA 2001:db8::3 (s6)
#   srvds A 192.0.2.4 and AAAA 2001:db8::4 (sds)
#
# IPv4-only hosts have net.ipv6.conf.{all,default,dseth0}.disable_ipv6=1; IPv6-only hosts
# have no IPv4 address and no IPv4 route (lo is up, so 127.0.0.1 stays). Namespace names
# are "$NS_PREFIX<role>" (default prefix dst<pid>-), unique per run; the EXIT trap kills
# what the test started in them and removes them and their /etc/netns directories.
#
# Environment: DSTRACE (binary, default <repo>/dstrace), PROGS (test programs, default
# <repo>/tests/progs/.output), KEEP_WORK=1 keeps the work directory with all logs.

set -u

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
DSTRACE=${DSTRACE:-$REPO_ROOT/dstrace}
PROGS=${PROGS:-$REPO_ROOT/tests/progs/.output}
NS_PREFIX=${NS_PREFIX:-dst$$-}
DSTRACE_START_TIMEOUT=${DSTRACE_START_TIMEOUT:-20}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dstrace-e2e.XXXXXX")

PASSED=0
FAILED=0
NAMESPACES=()	# namespaces this run created
BG_PIDS=()	# background processes this run started
DSTRACE_PID=
DSTRACE_LOG=

# --- addresses and names --------------------------------------------------------------
BR_NS=${NS_PREFIX}br
BRIDGE=dsbr0
HOST_IF=dseth0
declare -A HOST_KIND=([c4]=v4 [c6]=v6 [cds]=ds [s4]=v4 [s6]=v6 [sds]=ds)
declare -A HOST_V4=([c4]=192.0.2.10 [cds]=192.0.2.12 [s4]=192.0.2.2 [sds]=192.0.2.4)
declare -A HOST_V6=([c6]=2001:db8::11 [cds]=2001:db8::12 [s6]=2001:db8::3 [sds]=2001:db8::4)
HOST_ROLES=(c4 c6 cds s4 s6 sds)

# --- checks ---------------------------------------------------------------------------
log() { printf '# %s\n' "$*"; }

pass() {
	PASSED=$((PASSED + 1))
	printf 'PASS %s%s\n' "$1" "${2:+: $2}"
}

fail() {
	FAILED=$((FAILED + 1))
	printf 'FAIL %s: %s\n' "$1" "$2"
}

# check_eq NAME EXPECTED GOT
check_eq() {
	if [[ "$2" == "$3" ]]; then
		pass "$1" "expected $2, got $3"
	else
		fail "$1" "expected $2, got $3"
	fi
}

# check_match NAME REGEX GOT [WHAT]: GOT must match the extended regex.
check_match() {
	if [[ "$3" =~ $2 ]]; then
		pass "$1" "expected ${4:-/$2/}, got $3"
	else
		fail "$1" "expected ${4:-/$2/}, got $3"
	fi
}

summary() {
	printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
	[[ $FAILED -eq 0 ]]
}

# bail NAME WHY: a step the rest of the suite needs failed: count it, summarize, end the suite.
bail() {
	fail "$1" "$2"
	summary
	exit 1
}

# --- prerequisites --------------------------------------------------------------------
# need_tools TOOL...: every TOOL is installed, or the suite ends with a failure naming it.
need_tools() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null ||
			bail "prerequisites" "expected $tool installed, got none (scripts/install-deps.sh)"
	done
}

need_root() {
	if [[ $(id -u) -ne 0 ]]; then
		echo "$0: needs root (network namespaces, BPF)" >&2
		exit 2
	fi
	machine_lock
}

# BPF programs see the whole machine: two suites (or a suite and a benchmark) from two
# checkouts at once would see each other's traffic. One lock for the machine, held until
# the suite exits (fd 9 closes with it).
machine_lock() {
	[[ -n ${DSTRACE_LOCK_HELD:-} ]] && return 0
	exec 9>>/run/dstrace-machine.lock
	if ! flock -w "${DSTRACE_LOCK_WAIT:-3600}" 9; then
		echo "$0: another dstrace test or benchmark holds /run/dstrace-machine.lock" >&2
		exit 2
	fi
	export DSTRACE_LOCK_HELD=1
}

build_progs() {
	if ! make -s -C "$REPO_ROOT/tests/progs" OUTPUT="$PROGS" >"$WORK/build.log" 2>&1; then
		cat "$WORK/build.log" >&2
		echo "$0: building the test programs failed" >&2
		exit 2
	fi
}

# --- cleanup --------------------------------------------------------------------------
cleanup() {
	local pid ns
	trap - EXIT
	if [[ -n $DSTRACE_PID ]] && proc_alive "$DSTRACE_PID"; then
		kill -INT "$DSTRACE_PID" 2>/dev/null
		wait_pid "$DSTRACE_PID" 10 || kill -KILL "$DSTRACE_PID" 2>/dev/null
	fi
	for pid in "${BG_PIDS[@]}"; do
		if proc_alive "$pid"; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null # reaped here, bash prints no "Killed" line
		fi
	done
	for ns in "${NAMESPACES[@]}"; do
		# Only our own programs run in our namespaces.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	rmdir /etc/netns 2>/dev/null # only if no one else uses it
	wait 2>/dev/null
	if [[ ${KEEP_WORK:-0} == 1 || $FAILED -ne 0 ]]; then
		echo "# logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# --- processes ------------------------------------------------------------------------
# proc_alive PID: true while PID runs (a zombie, exited but not yet reaped, is not alive).
proc_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# wait_pid PID SECONDS: wait up to SECONDS for the child PID to exit; its status goes to
# WAIT_RC. Returns 1 (and leaves it running) on timeout.
WAIT_RC=
wait_pid() {
	local deadline=$((SECONDS + $2))
	while proc_alive "$1"; do
		if [[ $SECONDS -ge $deadline ]]; then
			return 1
		fi
		sleep 0.05
	done
	wait "$1"
	WAIT_RC=$?
	return 0
}

# wait_line FILE REGEX SECONDS: wait until a line of FILE matches the extended REGEX.
wait_line() {
	local deadline=$((SECONDS + $3))
	until grep -Eq -- "$2" "$1" 2>/dev/null; do
		[[ $SECONDS -ge $deadline ]] && return 1
		sleep 0.05
	done
}

# ns_name ROLE: the namespace of a host role.
ns_name() { printf '%s%s' "$NS_PREFIX" "$1"; }

# netns_inode ROLE: what dstrace reports as "netns" for sockets of that host.
netns_inode() { stat -L -c %i "/run/netns/$(ns_name "$1")"; }

# in_ns ROLE CMD...: run CMD in the host's namespace (with its /etc/hosts).
in_ns() {
	local ns
	ns=$(ns_name "$1")
	shift
	ip netns exec "$ns" "$@"
}

# bg_start VAR ROLE OUTBASE CMD...: start CMD in the background in ROLE's namespace with
# stdout in OUTBASE.out and stderr in OUTBASE.err; its pid (the program's own: ip netns
# exec execs it) goes to VAR.
bg_start() {
	local var=$1 out=$3 ns
	ns=$(ns_name "$2")
	shift 3
	# A simple command, not a function: $! is then ip's pid, which execs CMD.
	ip netns exec "$ns" "$@" >"$out.out" 2>"$out.err" &
	BG_PIDS+=("$!")
	printf -v "$var" '%s' "$!"
}

# run_in ROLE SECONDS OUTBASE CMD...: like bg_start, then wait up to SECONDS. Sets RUN_PID
# and RUN_RC (124 if it had to be killed).
RUN_PID=
RUN_RC=
# shellcheck disable=SC2034 # RUN_RC is for the test scripts
run_in() {
	local role=$1 secs=$2 out=$3
	shift 3
	bg_start RUN_PID "$role" "$out" "$@"
	wait_run "$secs"
}

# wait_run SECONDS: wait up to SECONDS for RUN_PID, killing it after; its status goes to
# RUN_RC (124 if it had to be killed).
wait_run() {
	if wait_pid "$RUN_PID" "$1"; then
		RUN_RC=$WAIT_RC
	else
		kill -KILL "$RUN_PID" 2>/dev/null
		wait "$RUN_PID" 2>/dev/null
		RUN_RC=124
	fi
}

# stop_pid PID: SIGTERM, bounded wait, SIGKILL; status in WAIT_RC.
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	if ! wait_pid "$1" 5; then
		kill -KILL "$1" 2>/dev/null
		wait_pid "$1" 5
	fi
}

# kv LINE KEY: the value of KEY=value in a result line of the test programs.
kv() {
	local tok
	for tok in $1; do
		if [[ $tok == "$2="* ]]; then
			printf '%s' "${tok#*=}"
			return 0
		fi
	done
	return 1
}

# --- topology -------------------------------------------------------------------------
ns_sysctl() {
	ip netns exec "$1" sysctl -qw "${@:2}" >/dev/null
}

hosts_file() {
	cat <<EOF
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
${HOST_V4[s4]}	srv4
${HOST_V6[s6]}	srv6
${HOST_V4[sds]}	srvds
${HOST_V6[sds]}	srvds
EOF
}

# Names come from the hosts file only: no query ever leaves the test's namespaces.
nsswitch_file() {
	cat <<EOF
passwd: files
group: files
shadow: files
hosts: files
networks: files
protocols: files
services: files
EOF
}

# host_add ROLE: one host namespace, cabled to the bridge.
host_add() {
	local role=$1 ns kind port
	ns=$(ns_name "$role")
	kind=${HOST_KIND[$role]}
	port=veth-$role
	ip netns add "$ns" || return 1
	NAMESPACES+=("$ns")
	ip -n "$ns" link set lo up
	if [[ $kind == v4 ]]; then
		ns_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	else
		# nodad below covers our addresses; this covers the link-local ones too.
		ns_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	fi
	ip -n "$BR_NS" link add "$port" type veth peer name "$HOST_IF" netns "$ns" || return 1
	ip -n "$BR_NS" link set "$port" master "$BRIDGE" up
	if [[ $kind == v4 ]]; then
		ns_sysctl "$ns" "net.ipv6.conf.$HOST_IF.disable_ipv6=1"
	fi
	if [[ -n ${HOST_V4[$role]:-} ]]; then
		ip -n "$ns" addr add "${HOST_V4[$role]}/24" dev "$HOST_IF" || return 1
	fi
	if [[ -n ${HOST_V6[$role]:-} ]]; then
		ip -n "$ns" addr add "${HOST_V6[$role]}/64" dev "$HOST_IF" nodad || return 1
	fi
	ip -n "$ns" link set "$HOST_IF" up
	mkdir -p "/etc/netns/$ns"
	hosts_file >"/etc/netns/$ns/hosts"
	nsswitch_file >"/etc/netns/$ns/nsswitch.conf"
}

# topo_up: the bridge namespace and the six hosts. Exits the test if it cannot.
topo_up() {
	local role
	if ! ip netns add "$BR_NS"; then
		echo "$0: cannot create namespace $BR_NS" >&2
		exit 2
	fi
	NAMESPACES+=("$BR_NS")
	ns_sysctl "$BR_NS" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$BR_NS" link set lo up
	ip -n "$BR_NS" link add "$BRIDGE" type bridge
	ip -n "$BR_NS" link set "$BRIDGE" up
	for role in "${HOST_ROLES[@]}"; do
		if ! host_add "$role"; then
			echo "$0: cannot set up host $role" >&2
			exit 2
		fi
	done
	topo_verify
}

# topo_verify: the hosts are what they claim to be (addresses and routes per family).
topo_verify() {
	local role kind v4 v6
	for role in "${HOST_ROLES[@]}"; do
		kind=${HOST_KIND[$role]}
		v4=$(in_ns "$role" ip -4 -o addr show dev "$HOST_IF" | awk '{print $4}')
		v6=$(in_ns "$role" ip -6 -o addr show dev "$HOST_IF" scope global | awk '{print $4}')
		case $kind in
		v4)
			check_eq "topology $role (IPv4-only) addresses" \
				"${HOST_V4[$role]}/24 ipv6=off" "$v4 ipv6=$(
					[[ $(in_ns "$role" sysctl -n net.ipv6.conf.all.disable_ipv6) == 1 &&
						-z $(in_ns "$role" ip -6 -o addr show) ]] && echo off || echo on)"
			;;
		v6)
			check_eq "topology $role (IPv6-only) addresses" \
				"${HOST_V6[$role]}/64 ipv4-routes=none" "$v6 ipv4-routes=$(
					r=$(in_ns "$role" ip -4 route show table main)
					echo "${r:-none}")"
			;;
		ds)
			check_eq "topology $role (dual-stack) addresses" \
				"${HOST_V4[$role]}/24 ${HOST_V6[$role]}/64" "$v4 $v6"
			;;
		esac
	done
}

# --- dstrace --------------------------------------------------------------------------
# dstrace_start OUTFILE ARGS...: run "dstrace -j -o OUTFILE ARGS..." in the background and
# wait for its "Tracing" line on stderr. Fails the test (and returns 1) if it does not come.
dstrace_start() {
	local out=$1
	shift
	dstrace_start_raw /dev/null -j -o "$out" "$@"
}

# dstrace_stop: SIGINT, wait (bounded), expect exit status 0 (dstrace_stop_sig INT).
dstrace_stop() {
	dstrace_stop_sig INT
}

# --- dstrace output (jq) --------------------------------------------------------------
# ns_json ROLE...: the netns inodes of the roles as a JSON array.
ns_json() {
	local role list=()
	for role in "$@"; do
		list+=("$(netns_inode "$role")")
	done
	local IFS=,
	printf '[%s]' "${list[*]}"
}

# events_in FILE NSJSON [JQ_FILTER]: the events (compact JSON lines) whose netns is in the
# JSON array NSJSON, optionally also passing JQ_FILTER.
events_in() {
	jq -c --argjson ns "$2" \
		"select(.type == \"event\" and (.netns as \$n | any(\$ns[]; . == \$n))) | select(${3:-true})" \
		"$1"
}

# check_json_lines NAME FILE: every line of FILE is one JSON object with a known type, the
# last one being the stats record.
check_json_lines() {
	local bad last
	if ! bad=$(jq -c 'select(.type != "event" and .type != "process" and .type != "stats")' \
		"$2" 2>&1); then
		fail "$1" "expected JSON Lines, got jq error: $bad"
		return 1
	fi
	if [[ -n $bad ]]; then
		fail "$1" "expected types event/process/stats only, got: $(head -n 3 <<<"$bad")"
		return 1
	fi
	last=$(tail -n 1 "$2" | jq -r .type)
	check_eq "$1" "valid JSON Lines ending with the stats record" \
		"valid JSON Lines ending with the $last record"
}

# json_lines_ok FILE: "ok" when FILE is not empty, ends with a newline and every line of it
# is one whole JSON object (none torn, none blank); else what is wrong, with the first bad lines.
json_lines_ok() {
	local lines objs
	if [[ ! -s $1 ]]; then
		echo "empty or missing"
		return
	fi
	lines=$(wc -l <"$1")
	objs=$(jq -R 'fromjson? | objects | 1' "$1" 2>/dev/null | wc -l)
	if [[ $(tail -c 1 "$1" | od -An -c | tr -d ' ') != '\n' ]]; then
		echo "last line not terminated"
	elif [[ $lines != "$objs" ]]; then
		echo "$((lines - objs)) of $lines lines are not one JSON object: $(jq -R -c 'select([fromjson? | objects] == [])' "$1" | head -n 2 | paste -sd ' ')"
	else
		echo ok
	fi
}

# check_events NAME FILE NSJSON SELECT EXPECTED_JSON_ARRAY
# The events in the namespaces NSJSON that pass the jq filter SELECT must be exactly the
# expected ones. Each expected object lists the fields that must be equal; a value "~number"
# means any number, "~number|null" any number or null. Expected and actual events are paired
# in the order of (proto, event, ret). Every event must also have a "...Z" UTC timestamp.
check_events() {
	local name=$1 file=$2 ns=$3 sel=$4 exp=$5 verdict
	verdict=$(events_in "$file" "$ns" "$sel" | jq -rs --argjson exp "$exp" '
		def key: [.proto, .event, (.ret // 0)];
		def ok($e; $g):
			if $e == "~number" then ($g | type) == "number"
			elif $e == "~number|null" then ($g | type) == "number" or $g == null
			elif ($e | type) == "object" and ($g | type) == "object" then
				all($e | to_entries[]; . as $x | ok($x.value; $g[$x.key]))
			else $e == $g end;
		def short: "\(.event)/\(.proto) ret=\(.ret) pid=\(.pid) \(.laddr):\(.lport)->\(.raddr):\(.rport)";
		(. | sort_by(key)) as $g | ($exp | sort_by(key)) as $e
		| if ($g | length) != ($e | length) then
			"FAIL expected \($e | length) event(s) [\($e | map(short) | join("; "))], got \($g | length): [\($g | map(tojson) | join(" "))]"
		  else
			[range(0; $e | length) as $i | $e[$i] | to_entries[]
			 | select(ok(.value; $g[$i][.key]) | not)
			 | "event \($i + 1) \(.key): expected \(.value | tojson), got \($g[$i][.key] | tojson)"]
			+ [$g[] | select((.ts | type) != "string" or
				(.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$") | not))
			   | "ts: expected ISO 8601 UTC ...Z, got \(.ts | tojson)"]
			| if length == 0 then
				"PASS expected \($e | length) event(s), got [\($g | map(short) | join("; "))]"
			  else "FAIL " + join("; ") end
		  end')
	if [[ $verdict == PASS* ]]; then
		pass "$name" "${verdict#PASS }"
	else
		fail "$name" "${verdict#FAIL }"
	fi
}

# process_record FILE PID: the "process" record of PID (compact JSON), empty if none.
process_record() {
	jq -c --argjson pid "$2" 'select(.type == "process" and .pid == $pid)' "$1"
}

# stats_record FILE: the "stats" record (compact JSON).
stats_record() {
	jq -c 'select(.type == "stats")' "$1" | tail -n 1
}

# --- helpers appended for test_filters.sh, test_programs.sh and test_cli.sh ----------------
# lo_host_add ROLE: a namespace of its own with only loopback up, for traffic to 127.0.0.1,
# ::1 and ::ffff:127.0.0.1 inside it. in_ns, bg_start and run_in take ROLE as for the
# topology's hosts; the EXIT trap removes it. Exits the test if it cannot be made.
lo_host_add() {
	local ns
	ns=$(ns_name "$1")
	if ! ip netns add "$ns"; then
		echo "$0: cannot create namespace $ns" >&2
		exit 2
	fi
	NAMESPACES+=("$ns")
	ip -n "$ns" link set lo up
}

# bg_start_gated VAR ROLE OUTBASE CMD...: like bg_start, but CMD only starts when
# gate_open OUTBASE is called: a shell waits on the fifo OUTBASE.gate, then execs CMD in
# the same process. The pid in VAR is therefore CMD's pid, known before CMD does anything
# (for dstrace -p).
bg_start_gated() {
	local _var=$1 _role=$2 _out=$3
	shift 3
	rm -f "$_out.gate"
	mkfifo "$_out.gate" || return 1
	bg_start "$_var" "$_role" "$_out" sh -c 'read -r _ <"$0" && exec "$@"' "$_out.gate" "$@"
}

# gate_open OUTBASE: let the command started by bg_start_gated OUTBASE run. Fails if no one
# reads the gate within 5 s.
gate_open() {
	timeout 5 sh -c 'echo go >"$0"' "$1.gate"
}

# dstrace_start_raw OUTFILE ARGS...: run "dstrace ARGS..." as given (dstrace_start adds
# -j -o) with stdout in OUTFILE and stderr in $DSTRACE_LOG, and wait for its "Tracing" line.
dstrace_start_raw() {
	local out=$1 deadline rc
	shift
	DSTRACE_LOG=$WORK/dstrace.log
	rm -f "$DSTRACE_LOG" # a previous run's "Tracing" line must not answer for this one
	if [[ ! -x $DSTRACE ]]; then
		fail "dstrace start" "expected an executable $DSTRACE, got none (run make at the top)"
		return 1
	fi
	log "starting: $DSTRACE $* >$out"
	"$DSTRACE" "$@" >"$out" 2>"$DSTRACE_LOG" &
	DSTRACE_PID=$!
	deadline=$((SECONDS + DSTRACE_START_TIMEOUT))
	until grep -q '^Tracing' "$DSTRACE_LOG" 2>/dev/null; do
		if ! proc_alive "$DSTRACE_PID"; then
			wait "$DSTRACE_PID"
			rc=$?
			fail "dstrace start" "expected a 'Tracing' line, got exit status $rc and: $(
				tail -n 20 "$DSTRACE_LOG")"
			DSTRACE_PID=
			return 1
		fi
		if [[ $SECONDS -ge $deadline ]]; then
			fail "dstrace start" "expected a 'Tracing' line within ${DSTRACE_START_TIMEOUT}s, got: $(
				tail -n 20 "$DSTRACE_LOG")"
			kill -KILL "$DSTRACE_PID" 2>/dev/null
			wait "$DSTRACE_PID" 2>/dev/null
			DSTRACE_PID=
			return 1
		fi
		sleep 0.05
	done
	pass "dstrace start" "expected 'Tracing' on stderr, got: $(grep -m1 '^Tracing' "$DSTRACE_LOG")"
}

# process_counts FILE PID: "connect=N accept=N send=N recv=N failed=N peers=N bytes=N" from
# the last process record of PID in the JSON Lines FILE, "none" if there is none.
process_counts() {
	local rec
	rec=$(process_record "$1" "$2" | tail -n 1)
	if [[ -z $rec ]]; then
		echo none
		return
	fi
	jq -r '"connect=\(.connect) accept=\(.accept) send=\(.send) recv=\(.recv) failed=\(.failed) peers=\(.peers) bytes=\(.bytes)"' <<<"$rec"
}

# --- helpers appended for test_udp.sh, test_tcp.sh and test_lost.sh ------------------------
# host_add_extra ROLE KIND V4 V6: one more host on topo_up's bridge (call it after topo_up),
# KIND v4, v6 or ds as in the table above; V4 or V6 may be "" (none). Exits the test if it
# cannot be made. Not checked by topo_verify.
host_add_extra() {
	HOST_KIND[$1]=$2
	[[ -n $3 ]] && HOST_V4[$1]=$3
	[[ -n $4 ]] && HOST_V6[$1]=$4
	if ! host_add "$1"; then
		echo "$0: cannot set up host $1" >&2
		exit 2
	fi
}

# ev_json KEY=VALUE...: one expected event object for check_events. A VALUE that is a JSON
# number, null, true or false stays one; anything else (addresses, comm, "~number") is a string.
ev_json() {
	jq -nc '[$ARGS.positional[] | capture("^(?<k>[^=]+)=(?<v>.*)$")
		| {(.k): (.v | if test("^-?[0-9]+$") or . == "null" or . == "true" or . == "false"
			then fromjson else . end)}] | add // {}' --args "$@"
}

# fbase NAME: a file-name-safe base path in $WORK for the outputs of a case named NAME.
fbase() { printf '%s/%s' "$WORK" "${1//[^A-Za-z0-9_.-]/_}"; }

# Deferred expectations: record them while the traffic runs, check them all once dstrace
# has stopped with check_expectations.
EXP_NAME=() EXP_PID=() EXP_JSON=() EXP_PROC_WANT=() EXP_LADDR_OK=() EXP_KIND=()
EXPECTED_EVENTS=0 # events the expect_events calls add up to

# expect_events NAME PID [EVENT_JSON...]: the events of PID (in the namespaces given to
# check_expectations) are exactly these (check_events); none at all if none are given.
expect_events() {
	local name=$1 pid=$2
	shift 2
	EXP_KIND+=(events) EXP_NAME+=("$name") EXP_PID+=("$pid")
	EXP_JSON+=("$(printf '%s\n' "$@" | jq -sc 'map(select(. != null))')")
	EXP_PROC_WANT+=("") EXP_LADDR_OK+=("")
	EXPECTED_EVENTS=$((EXPECTED_EVENTS + $#))
}

# expect_proc NAME PID WANT: the process record of PID, as process_counts prints it
# (see proc_counts), or "none".
expect_proc() {
	EXP_KIND+=(proc) EXP_NAME+=("$1") EXP_PID+=("$2") EXP_PROC_WANT+=("$3")
	EXP_JSON+=("") EXP_LADDR_OK+=("")
}

# expect_laddr NAME PID ADDR...: PID has events, and their laddr values are all among
# ADDR... ("null" for null).
expect_laddr() {
	local name=$1 pid=$2
	shift 2
	EXP_KIND+=(laddr) EXP_NAME+=("$name") EXP_PID+=("$pid") EXP_PROC_WANT+=("") EXP_JSON+=("")
	EXP_LADDR_OK+=("$(printf '%s\n' "$@" | jq -Rsc 'split("\n")[:-1] | map(if . == "null" then null else . end)')")
}

# proc_counts CONNECT ACCEPT SEND RECV FAILED PEERS BYTES: the line process_counts prints.
proc_counts() {
	printf 'connect=%s accept=%s send=%s recv=%s failed=%s peers=%s bytes=%s' "$@"
}

# check_expectations FILE NSJSON: check every expectation recorded so far against the
# dstrace output FILE, events restricted to the namespaces NSJSON (see ns_json).
check_expectations() {
	local file ns=$2 i got
	# every check selects by pid: the records of the pids expected, read once (the same
	# answers; a big output, such as test_sockpaths' under an emulated guest, is not read
	# again for each check)
	file=$(mktemp)
	jq -c --argjson pids "$(printf '%s\n' "${EXP_PID[@]}" |
		jq -Rsc 'split("\n") | map(select(. != "") | {key: ., value: 1}) | from_entries')" \
		'select((.type == "event" or .type == "process") and $pids[.pid | tostring] != null)' \
		"$1" >"$file"
	for i in "${!EXP_KIND[@]}"; do
		case ${EXP_KIND[$i]} in
		events)
			check_events "${EXP_NAME[$i]}" "$file" "$ns" ".pid == ${EXP_PID[$i]}" "${EXP_JSON[$i]}"
			;;
		proc)
			check_eq "${EXP_NAME[$i]}" "${EXP_PROC_WANT[$i]}" "$(process_counts "$file" "${EXP_PID[$i]}")"
			;;
		laddr)
			got=$(events_in "$file" "$ns" ".pid == ${EXP_PID[$i]}" | jq -sc 'map(.laddr) | unique')
			if jq -e --argjson ok "${EXP_LADDR_OK[$i]}" \
				'length > 0 and all(.[]; . as $l | $ok | index([$l]))' <<<"$got" >/dev/null; then
				pass "${EXP_NAME[$i]}" "expected laddr in ${EXP_LADDR_OK[$i]}, got $got"
			else
				fail "${EXP_NAME[$i]}" "expected laddr in ${EXP_LADDR_OK[$i]}, got $got"
			fi
			;;
		esac
	done
	rm -f "$file"
}

# check_lost_zero NAME FILE NSJSON: the stats record says lost 0. dstrace sees the whole
# machine: when it also wrote events from outside the test's namespaces NSJSON (another
# program's mapped traffic, a benchmark running meanwhile), events lost may be theirs, and
# a non-zero count is reported, not failed; the test's own events are checked one by one.
check_lost_zero() {
	local lost foreign
	lost=$(stats_record "$2" | jq -r '.lost')
	foreign=$(jq -c --argjson ns "$3" 'select(.type == "event" and (.netns as $n | $ns | index($n) | not))' \
		"$2" | wc -l)
	if [[ $lost == 0 ]]; then
		pass "$1" "expected 0, got 0"
	elif [[ $foreign -gt 0 ]]; then
		pass "$1" "expected 0, got $lost, not counted: $foreign events came from outside the test's namespaces (other traffic on the machine)"
		log "WARNING: dstrace lost $lost events while other mapped traffic ran on this machine; a missing event above may be one of them: rerun on a quiet machine"
	else
		fail "$1" "expected 0, got $lost"
	fi
}

# --- helpers appended for test_audit.sh and test_metrics.sh --------------------------------
# dstrace_start_in ROLE OUTFILE ARGS...: dstrace_start_raw, with dstrace running in ROLE's
# network namespace (for --metrics: its listener lives where dstrace runs; dstrace still
# traces every namespace). ip netns exec execs dstrace, so DSTRACE_PID is dstrace's own pid.
dstrace_start_in() {
	local real=$DSTRACE wrapper rc ns
	ns=$(ns_name "$1")
	shift
	wrapper=$WORK/dstrace-in-$ns
	printf '#!/bin/sh\nexec ip netns exec "%s" "%s" "$@"\n' "$ns" "$real" >"$wrapper"
	chmod +x "$wrapper"
	DSTRACE=$wrapper
	dstrace_start_raw "$@"
	rc=$?
	DSTRACE=$real
	return "$rc"
}

# dstrace_signal_wait SIGNAL: send dstrace SIGNAL and wait for its end, 20 s at most (then
# SIGKILL); its exit status, or why there is none, goes to WAIT_RC.
dstrace_signal_wait() {
	[[ -n $DSTRACE_PID ]] || return 1
	kill -"$1" "$DSTRACE_PID"
	if ! wait_pid "$DSTRACE_PID" 20; then
		kill -KILL "$DSTRACE_PID" 2>/dev/null
		wait "$DSTRACE_PID" 2>/dev/null
		WAIT_RC="none: still running 20 s after SIG$1, killed"
	fi
	DSTRACE_PID=
}

# dstrace_stop_sig SIGNAL [NAME]: like dstrace_stop, with another signal (TERM, HUP...):
# bounded wait, exit status 0 expected, checked as NAME (default "dstrace exit status
# after SIGsignal"). The exit status also goes to WAIT_RC.
dstrace_stop_sig() {
	dstrace_signal_wait "$1" || return 1
	check_eq "${2:-dstrace exit status after SIG$1}" 0 "$WAIT_RC"
	[[ $WAIT_RC == 0 ]]
}

# bpf_prog_ids PID: the ids of the BPF programs process PID holds open (its fds' fdinfo,
# programs and links alike), one per line, sorted. Works without bpftool's pid support.
bpf_prog_ids() {
	grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un
}

# --- servers and clients of the tcp and udp suites ----------------------------------------
# Both record every process they start in PIDS (the suites check each one's events at the end).
PIDS=()

# srv_start VAR ROLE NAME CMD...: start a server or receiver and wait for its "listening"
# line (and, for tcp6x, its "acceptor" line); its pid goes to VAR and PIDS.
srv_start() {
	local var=$1 role=$2 name=$3 base
	base=$(fbase "$3")
	shift 3
	bg_start "$var" "$role" "$base" "$@"
	PIDS+=("${!var}")
	if ! wait_line "$base.out" '^listening' 5 ||
		{ [[ $1 == */tcp6x ]] && ! wait_line "$base.out" '^acceptor' 5; }; then
		fail "$name: server ready" "expected 'listening' within 5 s, got: $(
			cat "$base.out" "$base.err")"
		return 1
	fi
}

# cli NAME ROLE CMD...: run a client to completion (20 s at most). LINE: its first output
# line, CPID: its pid (also added to PIDS), CLPORT: its local port (from lport=).
# shellcheck disable=SC2034 # CLPORT is for the test scripts
LINE='' CPID='' CLPORT=''
cli() {
	local name=$1 role=$2
	shift 2
	run_in "$role" 20 "$(fbase "$name")" "$@"
	CPID=$RUN_PID
	PIDS+=("$CPID")
	LINE=$(head -n 1 "$(fbase "$name").out")
	# shellcheck disable=SC2034 # for the test scripts
	CLPORT=$(kv "$LINE" lport || true)
	log "$name: pid $CPID exit $RUN_RC: $LINE"
}

# --- backends ---------------------------------------------------------------------------
# backends_to_run [BACKEND...]: the backends a suite runs under, into BACKENDS: the ones
# named, or else every backend that loads on this kernel (each one that does not is logged
# with its reason). Fails the suite when none is left.
BACKENDS=()
backends_to_run() {
	local b
	BACKENDS=("$@")
	if [[ ${#BACKENDS[@]} -eq 0 ]]; then
		for b in fentry kprobe tracepoint; do
			if "$DSTRACE" --backend "$b" -d 1 -o /dev/null 2>"$WORK/probe-$b.err"; then
				BACKENDS+=("$b")
			else
				log "backend $b does not run on this kernel: $(grep -v '^Tracing' "$WORK/probe-$b.err" | head -n 1)"
			fi
		done
	fi
	if [[ ${#BACKENDS[@]} -eq 0 ]]; then
		fail "backends" "expected at least one backend to run, got none"
		summary
		exit 1
	fi
}
