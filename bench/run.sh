#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# dstrace benchmark: IPv4-mapped loopback load (bench/loadgen) with no tracing, with
# dstrace's hooks attached to programs that only return (the floor), with dstrace streaming
# JSON to a file, with dstrace aggregating in the kernel (-i), and with the bpftrace peer
# (bench/mapped.bt). Workloads:
#   tcp      connect + accept storm, AF_INET6 sockets to ::ffff:127.0.0.1
#   udp      sendto + recvfrom storm, the same
#   dns      a DNS-like server on [::] (request, answer twice its size) with IPv4 clients
#   http     nginx on [::]:PORT ipv6only=off, IPv4 clients, a new connection per request
#            ("Connection: close", one mapped accept per request)
#   http-ka  the same on kept-alive connections (the mapped connection's bytes)
#   tcp6, udp6  the tcp and udp storms to [::1]: native IPv6, nothing to count, which the
#            hooks (they see every connection and datagram) should let pass at the least cost
# Configurations are interleaved round by round, so a change in the machine's load hits them
# all alike; the table shows medians. Then fixed-rate runs (5 000 ops/s: 10 000 events/s for
# tcp, udp and dns) measure the tracers' own CPU, and the run time of their BPF programs
# (kernel.bpf_stats_enabled is turned on for those runs only, then restored); the floor runs
# at the fixed rate too, and each of dstrace's programs is set against its floor twin: what
# its own work adds per op. Prints tables; writes the same as JSON.
#
# Usage: bench/run.sh [--smoke] [-r ROUNDS] [-d SECONDS] [-R SECONDS] [-s BYTES] [-o FILE]
#                     [-w WORKLOADS] [-c CLIENTS]
#   --smoke        a few seconds: every configuration once, one tracer per configuration for
#                  all its runs, BPF statistics on throughout (for CI: checks that it works,
#                  its numbers are rough; the tracer's CPU, in clock ticks, is n/a in
#                  runs under 1 s)
#   -r ROUNDS      rounds of the storms (default 5)
#   -d SECONDS     length of one storm (default 3)
#   -R SECONDS     length of one fixed-rate run (default 5)
#   -s BYTES       UDP payload (default 64)
#   -t THREADS     loadgen threads: 1, one thread does both ends in turn (ops/s is the CPU
#                  cost of an op); 2, a server/receiver thread of its own (default 1)
#   -o FILE        JSON results (default bench/last-run.json)
#   -w WORKLOADS   which, comma-separated (default tcp,udp,dns,http,http-ka,tcp6,udp6)
#   -c CLIENTS     http workloads: client threads, each one request at a time (default 8)
# Environment: DSTRACE, LOADGEN, BPFTRACE override the programs used; DSTRACE_BASE (an
# earlier build) adds its configurations base-stream and base-aggregate. dstrace runs as on
# a machine without 32-bit programs (DSTRACE_IA32_LOADERS empty: its program for their calls,
# on every syscall's exit, is not attached; the test dependencies install a 32-bit loader
# here): DSTRACE_IA32_LOADERS=/lib/ld-linux.so.2 measures it attached. Needs root.
set -euo pipefail
export DSTRACE_IA32_LOADERS=${DSTRACE_IA32_LOADERS-}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DSTRACE=${DSTRACE:-$here/../dstrace}
LOADGEN=${LOADGEN:-$here/.output/loadgen}
BPFTRACE=${BPFTRACE:-bpftrace}
BT_SCRIPT=$here/mapped.bt

rounds=5
duration=3
rate_duration=5
size=64
threads=1
json_out=$here/last-run.json
mode=full
workload_list=tcp,udp,dns,http,http-ka,tcp6,udp6
clients=8
# 10 000 events/s: a TCP op is two events (connect + accept), a UDP op two datagrams
# counted (send + recv).
fixed_events=10000
start_timeout=60 # seconds to wait for a tracer to attach (bpftrace compiles first)

die() {
	echo "bench: $*" >&2
	exit 1
}

usage() {
	sed -n '/^# Usage:/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case "$1" in
	--smoke)
		mode=smoke
		rounds=1
		duration=0.25
		rate_duration=0.25
		;;
	-r | -d | -R | -s | -t | -o | -w | -c)
		[ $# -ge 2 ] || die "$1 wants a value"
		case "$1" in
		-r) rounds=$2 ;;
		-d) duration=$2 ;;
		-R) rate_duration=$2 ;;
		-s) size=$2 ;;
		-t) threads=$2 ;;
		-o) json_out=$2 ;;
		-w) workload_list=$2 ;;
		-c) clients=$2 ;;
		esac
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
	shift
done

number='^[0-9]+([.][0-9]+)?$'
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "-r wants a whole number of rounds, not '$rounds'"
[[ $threads =~ ^[12]$ ]] || die "-t wants 1 or 2 threads, not '$threads'"
[[ $clients =~ ^[1-9][0-9]?$ ]] || die "-c wants 1 to 99 clients, not '$clients'"
IFS=, read -r -a workloads <<<"$workload_list"
[ ${#workloads[@]} -gt 0 ] || die "-w wants at least one workload"
http_wanted=0
for w in "${workloads[@]}"; do
	case "$w" in
	tcp | udp | dns | tcp6 | udp6) ;;
	http | http-ka) http_wanted=1 ;;
	*) die "unknown workload '$w' (tcp, udp, dns, http, http-ka, tcp6, udp6)" ;;
	esac
done
one_thread=()
[ "$threads" = 2 ] || one_thread=(-1)
for v in "$duration" "$rate_duration" "$size"; do
	[[ $v =~ $number ]] || die "not a number: '$v'"
done

[ "$(id -u)" -eq 0 ] || die "must run as root (dstrace and bpftrace load BPF programs)"
# One BPF workload on the machine at a time (the e2e suites take the same lock).
exec 9>>/run/dstrace-machine.lock
flock -w 3600 9 || die "another dstrace test or benchmark holds /run/dstrace-machine.lock"
[ -x "$DSTRACE" ] || die "no dstrace at $DSTRACE: run make at the top first"
[ -x "$LOADGEN" ] || die "no loadgen at $LOADGEN: run make -C bench first"
command -v "$BPFTRACE" >/dev/null ||
	die "bpftrace not found: apt-get install bpftrace (the peer every run compares with)"
[ "$http_wanted" = 0 ] || command -v nginx >/dev/null ||
	die "nginx not found: apt-get install nginx (the http workloads' server), or -w tcp,udp,dns"

work=
tracer_pid=
load_pid=
nginx_pid=

stop_pid() { # pid: SIGTERM, then SIGKILL if it lingers
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

bpf_stats_file=/proc/sys/kernel/bpf_stats_enabled
bpf_stats_saved=

cleanup() {
	[ -n "$load_pid" ] && stop_pid "$load_pid"
	[ -n "$tracer_pid" ] && stop_pid "$tracer_pid"
	[ -n "$nginx_pid" ] && stop_pid "$nginx_pid"
	[ -n "$bpf_stats_saved" ] && echo "$bpf_stats_saved" >"$bpf_stats_file"
	[ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM
work=$(mktemp -d /tmp/dstrace-bench.XXXXXX)

clk_tck=$(getconf CLK_TCK)

cpu_ticks() { # pid -> utime+stime in clock ticks (fields 14 and 15, after "(comm)")
	local stat
	stat=$(cat "/proc/$1/stat") || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo $((${12} + ${13}))
}

# The BPF programs process $1 holds, one line each: "id run_time_ns run_cnt", from the fdinfo
# of its program fds (times and counts need kernel.bpf_stats_enabled=1).
bpf_prog_stats() {
	local pid=$1 f
	for f in "/proc/$pid/fdinfo/"*; do
		cat "$f" 2>/dev/null || true
	done | awk '/^prog_id:/ { id = $2 } /^run_time_ns:/ { t[id] = $2 } /^run_cnt:/ { c[id] = $2 }
		END { for (i in t) print i, t[i], c[i] }' | sort -k1,1
}

# The programs that ran between two bpf_prog_stats files $1 and $2, $3 seconds apart:
# "name:runs_per_s:ns_per_run" words.
bpf_prog_costs() {
	local names=$work/prog-names
	{ bpftool prog show 2>/dev/null || true; } |
		sed -nE 's/^([0-9]+): .* name ([^ ]+) .*/\1 \2/p' | sort -k1,1 >"$names"
	join "$1" "$2" | join -a 1 - "$names" | awk -v w="$3" '$5 > $3 {
		printf "%s:%.0f:%.0f ", (NF > 5 ? $6 : "id" $1), ($5 - $3) / w, ($4 - $2) / ($5 - $3) }'
}

vm_hwm_kib() {
	awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

now_s() {
	echo "$EPOCHREALTIME"
}

# The dstrace binary of configuration $1: base-* run DSTRACE_BASE (an earlier build).
tracer_bin() {
	case "$1" in base-*) echo "$DSTRACE_BASE" ;; *) echo "$DSTRACE" ;; esac
}

# Start a tracer for configuration $1; sets tracer_pid, tracer_out, tracer_err.
start_tracer() {
	local config=$1 ready_file i t
	tracer_out=$work/$config.out
	tracer_err=$work/$config.err
	case "$config" in
	stream | base-stream)
		"$(tracer_bin "$config")" -j -o "$tracer_out" 2>"$tracer_err" &
		ready_file=$tracer_err
		;;
	aggregate | base-aggregate)
		"$(tracer_bin "$config")" -i 3600 -o "$tracer_out" 2>"$tracer_err" &
		ready_file=$tracer_err
		;;
	floor)
		# dstrace's hooks attached with programs that only return: what the hooks cost
		"$DSTRACE" --floor -i 3600 -o "$tracer_out" 2>"$tracer_err" &
		ready_file=$tracer_err
		;;
	bpftrace)
		"$BPFTRACE" "$BT_SCRIPT" >"$tracer_out" 2>"$tracer_err" &
		ready_file=$tracer_out
		;;
	*) die "unknown configuration $config" ;;
	esac
	tracer_pid=$!
	t=$(now_s)
	for ((i = 0; i < start_timeout * 50; i++)); do
		if grep -q '^Tracing' "$ready_file" 2>/dev/null; then
			cur_start=$(awk -v a="$t" -v b="$(now_s)" 'BEGIN { printf "%.2f", b - a }')
			return 0
		fi
		if ! kill -0 "$tracer_pid" 2>/dev/null; then
			cat "$tracer_err" >&2
			die "$config: the tracer exited before it was tracing"
		fi
		sleep 0.02
	done
	cat "$tracer_err" >&2
	die "$config: not tracing after ${start_timeout}s"
}

# The http workloads' server: nginx with one worker (nginx_worker, the process the tracers
# count), on [::]:nginx_port with ipv6only=off, serving a page of the size of Debian's default
# one with sendfile, as Debian's configuration does; no access log.
nginx_port=
nginx_worker=
nginx_start() {
	local ng=$work/nginx i try
	mkdir -p "$ng/www"
	head -c 615 /dev/zero | tr '\0' x >"$ng/www/index.html"
	for ((try = 0; try < 5; try++)); do
		nginx_port=$((20000 + RANDOM % 10000))
		cat >"$ng/nginx.conf" <<EOF
# Written by bench/run.sh: everything under $ng.
user root;
worker_processes 1;
pid $ng/nginx.pid;
error_log $ng/error.log;
events {
	worker_connections 1024;
}
http {
	access_log off;
	sendfile on;
	keepalive_requests 100000000;
	client_body_temp_path $ng/client_body;
	proxy_temp_path $ng/proxy;
	fastcgi_temp_path $ng/fastcgi;
	uwsgi_temp_path $ng/uwsgi;
	scgi_temp_path $ng/scgi;
	server {
		listen [::]:$nginx_port ipv6only=off;
		root $ng/www;
	}
}
EOF
		nginx -p "$ng/" -e "$ng/error.log" -c "$ng/nginx.conf" -g 'daemon off;' \
			>"$ng/run.log" 2>&1 &
		nginx_pid=$!
		for ((i = 0; i < 500; i++)); do
			nginx_worker=$(cat "/proc/$nginx_pid/task/$nginx_pid/children" 2>/dev/null || true)
			nginx_worker=${nginx_worker%% *}
			if [ -n "$nginx_worker" ] &&
				(exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null; then
				return 0
			fi
			kill -0 "$nginx_pid" 2>/dev/null || break
			sleep 0.02
		done
		stop_pid "$nginx_pid" # the port was taken, most likely: another one
		nginx_pid=
	done
	cat "$ng/error.log" "$ng/run.log" >&2
	die "nginx did not start on [::]:$nginx_port"
}

# Fields of the loadgen line: field LINE KEY
field() {
	local kv
	for kv in $1; do
		[ "${kv%%=*}" = "$2" ] && echo "${kv#*=}" && return 0
	done
	echo 0
}

# What a workload's tracers count, and what loadgen says it did, for the "counted" column:
# the tracer's counters (summed) and loadgen's fields (summed). The http workloads count the
# nginx worker's accepts (the mapped connections; the tables' bytes are UDP's). The native
# workloads did nothing mapped: a tracer should count none of their connections or datagrams.
counted_fields() {
	case "$1" in
	tcp | tcp6) echo "connect accept" ;;
	udp | dns | udp6) echo "send recv" ;;
	http | http-ka) echo accept ;;
	esac
}
done_fields() {
	case "$1" in
	tcp) echo "connects accepts" ;;
	udp | dns) echo "sent received" ;;
	http | http-ka) echo connections ;;
	tcp6 | udp6) ;;
	esac
}

# What tracer $1 counted for process $3 of workload $2 (counted_fields, summed).
counted() {
	local config=$1 pid=$3 f
	for f in $(counted_fields "$2"); do
		case "$config" in
		stream | base-stream)
			# none: nothing counted for it (a native workload's)
			{ grep "^{\"type\":\"process\",\"pid\":$pid," "$tracer_out" || true; } |
				tail -1 | sed -E "s/.*\"$f\":([0-9]+).*/\1/"
			;;
		aggregate | base-aggregate)
			# PID COMM CONNECT ACCEPT SEND RECV FAILED PEERS BYTES
			awk -v pid="$pid" -v f="$f" '$1 == pid {
				print $(f == "connect" ? 3 : f == "accept" ? 4 : f == "send" ? 5 : 6) }' \
				"$tracer_out" | tail -1
			;;
		bpftrace)
			sed -nE "s/^@$f\\[[^,]*, $pid\\]: ([0-9]+)$/\\1/p" "$tracer_out" | tail -1
			;;
		esac
	done | awk '{ t += $1 } END { print t + 0 }'
}

# Tracer $1's lost events, from its final stats: {"type":"stats",...,"lost":N} or
# "N events, N lost, in ..."; "null" for bpftrace, which has no ring buffer to lose from.
lost_events() {
	case "$1" in
	stream | base-stream) sed -nE 's/^\{"type":"stats".*"lost":([0-9]+).*/\1/p' "$tracer_out" | tail -1 ;;
	aggregate | floor | base-aggregate) sed -nE 's/^[0-9]+ events, ([0-9]+) lost, .*/\1/p' "$tracer_out" | tail -1 ;;
	*) echo null ;;
	esac
}

# A run is: tracer_begin CONFIG; one or more loads (load WORKLOAD KIND SECONDS RATE);
# tracer_end. Each load measures the tracer over its own window; what needs the tracer's
# final output (lost events, counts) is filled in by tracer_end, which then records every
# window: record CONFIG WORKLOAD KIND OPS RECV START CPU_S CPU_PCT BPF_PCT HWM LOST COUNTED.
# Not in subshells: the EXIT trap must see the pids.
cur_config=
cur_start=null
windows=()

tracer_begin() {
	cur_config=$1 cur_start=null windows=()
	tracer_pid=
	[ "$cur_config" = none ] || start_tracer "$cur_config"
}

load() { # workload kind(storm|fixed) seconds rate
	local workload=$1 kind=$2 secs=$3 rate=$4 line t0 t1 c0=0 c1=0 b0=0 b1=0 hwm=null lpid
	local expected=0 usage rates progs=- f args
	if [ -n "$tracer_pid" ]; then
		c0=$(cpu_ticks "$tracer_pid")
		bpf_prog_stats "$tracer_pid" >"$work/progs0"
	fi
	case "$workload" in
	http | http-ka) args=(-p "$nginx_port" -c "$clients") ;;
	*) args=("${one_thread[@]}" -s "$size") ;;
	esac
	t0=$(now_s)
	"$LOADGEN" "$workload" "${args[@]}" -d "$secs" -r "$rate" >"$work/load" 2>&1 &
	load_pid=$!
	# the process whose mapped traffic the tracers count: loadgen, or nginx's worker
	case "$workload" in http | http-ka) lpid=$nginx_worker ;; *) lpid=$load_pid ;; esac
	if ! wait "$load_pid"; then
		load_pid=
		cat "$work/load" >&2
		die "$cur_config/$workload: loadgen failed"
	fi
	load_pid=
	t1=$(now_s)
	line=$(grep '^loadgen ' "$work/load")
	if [ -n "$tracer_pid" ]; then
		c1=$(cpu_ticks "$tracer_pid")
		bpf_prog_stats "$tracer_pid" >"$work/progs1"
		hwm=$(vm_hwm_kib "$tracer_pid")
		b0=$(awk '{ s += $2 } END { printf "%d", s }' "$work/progs0")
		b1=$(awk '{ s += $2 } END { printf "%d", s }' "$work/progs1")
		# The tracer's CPU comes in ticks of 1/CLK_TCK s: a window of fewer than 100 ticks
		# (1 s, a smoke run's) cannot tell 0 from 1 % of a core, so its % is null (n/a)
		usage=$(awk -v c="$((c1 - c0))" -v tck="$clk_tck" -v a="$t0" -v b="$t1" \
			-v ns="$((b1 - b0))" 'BEGIN { w = b - a
			cp = w * tck >= 100 ? sprintf("%.2f", 100 * c / tck / w) : "null"
			printf "%.2f %s %.2f", c / tck, cp, 100 * ns / 1e9 / w }')
		# Without kernel.bpf_stats_enabled the kernel does not time BPF programs.
		if [ "$(cat "$bpf_stats_file" 2>/dev/null)" = 1 ]; then
			progs=$(bpf_prog_costs "$work/progs0" "$work/progs1" \
				"$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
		else
			usage="${usage% *} null"
		fi
	else
		usage="null null null"
	fi
	for f in $(done_fields "$workload"); do
		expected=$((expected + $(field "$line" "$f")))
	done
	rates="$(field "$line" ops_per_s) $(field "$line" received_per_s)"
	windows+=("$workload $kind $rates $usage $hwm $lpid $expected ${progs:--}")
}

tracer_end() {
	# w_*: the globals of the same names are the results record() fills
	local w_lost=null w w_workload w_kind w_ops w_recv w_cpu_s w_cpu_pct w_bpf_pct w_hwm w_lpid
	local w_expected w_got w_counted w_progs
	local -A pid_expected=()
	if [ -n "$tracer_pid" ]; then
		stop_pid "$tracer_pid"
		tracer_pid=
		w_lost=$(lost_events "$cur_config")
		[ -n "$w_lost" ] || die "$cur_config: no final stats from the tracer"
	fi
	# One tracer may see one process in several windows (nginx's worker, in a smoke run):
	# what it counted for it is set against what all those windows did.
	for w in "${windows[@]}"; do
		read -r _ _ _ _ _ _ _ _ w_lpid w_expected _ <<<"$w"
		pid_expected[$w_lpid]=$((${pid_expected[$w_lpid]:-0} + w_expected))
	done
	for w in "${windows[@]}"; do
		read -r w_workload w_kind w_ops w_recv w_cpu_s w_cpu_pct w_bpf_pct w_hwm w_lpid \
			w_expected w_progs <<<"$w"
		w_expected=${pid_expected[$w_lpid]}
		w_counted=null
		if [ "$cur_config" != none ] && [ "$cur_config" != floor ]; then
			w_got=$(counted "$cur_config" "$w_workload" "$w_lpid")
			# nothing expected (native traffic): 1 if nothing was counted, else 0
			w_counted=$(awk -v g="${w_got:-0}" -v e="$w_expected" \
				'BEGIN { printf "%.4f", e ? g / e : g == 0 }')
			[ "$w_counted" = 1.0000 ] || echo "bench: warning: $cur_config counted" \
				"${w_got:-0} of $w_expected $w_workload operations ($(counted_fields "$w_workload")" \
				"of process $w_lpid)" >&2
		fi
		record "$cur_config" "$w_workload" "$w_kind" "$w_ops" "$w_recv" "$cur_start" \
			"$w_cpu_s" "$w_cpu_pct" "$w_bpf_pct" "$w_hwm" "$w_lost" "$w_counted" "$w_progs"
	done
	rm -f "$work"/*.out "$work"/*.err
}

# Lists of numbers are strings of space-separated words; "null" words are left out.
numbers() {
	tr -s ' ' '\n' <<<"$*" | grep -v -e '^null$' -e '^$' || true
}

median() { # list -> median, null if empty
	numbers "$@" | sort -g |
		awk '{ v[NR] = $1 } END {
			if (!NR) print "null"
			else if (NR % 2) print v[(NR + 1) / 2]
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

maximum() {
	numbers "$@" | sort -g | tail -1 | grep . || echo null
}

minimum() {
	numbers "$@" | sort -g | head -1 | grep . || echo null
}

total() {
	numbers "$@" | awk '{ t += $1 } END { print NR ? t : "null" }'
}

ratio() { # a b -> a/b with 3 decimals
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "null" || b == "null" || b == 0) print "null"; else printf "%.3f", a / b }'
}

spread() { # list -> half the range, in % of the median
	numbers "$@" | sort -g | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		if (!NR || !m) print "null"; else printf "%.0f", 50 * (v[NR] - v[1]) / m }'
}

paired_ratio() { # list list -> median of the ratios of their elements, pairwise (3 decimals)
	local m
	m=$(median "$(awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " ")
		for (i = 1; i <= n; i++) if (y[i] > 0) printf "%.4f ", x[i] / y[i] }')")
	if [ "$m" = null ]; then echo null; else printf '%.3f\n' "$m"; fi
}

prog_words() { # "name:runs_per_s:ns_per_run ..." or "-" -> one per line
	tr -s ' ' '\n' <<<"$1" | grep -v -e '^-$' -e '^$' || true
}

json_list() { # values -> [v1,v2,...]
	local IFS=,
	echo "[$*]"
}

json_numbers() { # list -> [n1,n2,...]
	echo "[$(numbers "$@" | paste -sd,)]"
}

configs=(none floor stream aggregate bpftrace)
tracers=(stream aggregate bpftrace)
# dstrace's configurations, whose programs' run time is set against the floor's, program by
# program (the floor runs the same programs, each returning at once)
dstraces=(stream aggregate)
# DSTRACE_BASE: an earlier build of dstrace, run as two more configurations (base-stream,
# base-aggregate) interleaved with the others: before and after a change, paired.
if [ -n "${DSTRACE_BASE:-}" ]; then
	[ -x "$DSTRACE_BASE" ] || die "DSTRACE_BASE=$DSTRACE_BASE: not an executable"
	configs+=(base-stream base-aggregate)
	tracers+=(base-stream base-aggregate)
	dstraces+=(base-stream base-aggregate)
fi
# Fixed-rate runs: the tracers, and the floor whose programs' cost theirs are set against.
fixed=(floor "${tracers[@]}")
# Storms: space-separated lists per workload:config.
declare -A ops recv start_s cpu_s cpu_pct hwm lost cnt
# Fixed rate: one value per workload:config.
declare -A f_ops f_cpu f_bpf f_hwm f_lost f_cnt f_progs

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
dstrace_version=$("$DSTRACE" --version 2>/dev/null | head -1 || true)
# The commit the sources are at, "+" if they differ from it (where dstrace is in a git tree).
dstrace_commit=$(git -C "$(dirname "$DSTRACE")" rev-parse --short HEAD 2>/dev/null || true)
if [ -n "$dstrace_commit" ] &&
	! git -C "$(dirname "$DSTRACE")" diff --quiet HEAD -- bpf user include 2>/dev/null; then
	dstrace_commit+=+
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t_start=$(now_s)
echo "dstrace bench ($mode), $started: $rounds round(s) x ${duration}s storms," \
	"${rate_duration}s fixed-rate runs; loadgen with $threads thread(s)"
echo "machine: $(nproc) CPUs, $cpu_model, Linux $(uname -r); load average $load_before"
echo "tracers: ${dstrace_version:-dstrace} (commit ${dstrace_commit:-unknown}), $("$BPFTRACE" --version)"
echo "workloads: ${workloads[*]}"
if [ "$http_wanted" = 1 ]; then
	nginx_start
	echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'), one worker (pid $nginx_worker)" \
		"on [::]:$nginx_port ipv6only=off; $clients client threads"
fi

# Every window lands here; storms keep lists (one value per round), fixed-rate runs one value.
record() { # config workload kind ops recv start cpu_s cpu_pct bpf_pct hwm lost counted progs
	local key=$2:$1
	if [ "$3" = storm ]; then
		ops[$key]+=" $4"
		recv[$key]+=" $5"
		start_s[$key]+=" $6"
		cpu_s[$key]+=" $7"
		cpu_pct[$key]+=" $8"
		hwm[$key]+=" ${10}"
		lost[$key]+=" ${11}"
		cnt[$key]+=" ${12}"
		printf '  %-5s %s %-14s %10.0f ops/s\n' storm "$2" "$1" "$4" >&2
	else
		f_ops[$key]=$4
		f_cpu[$key]=$8
		f_bpf[$key]=$9
		f_hwm[$key]=${10}
		f_lost[$key]=${11}
		f_cnt[$key]=${12}
		f_progs[$key]=${13}
		printf '  %-5s %s %-14s %10.0f ops/s: tracer %s CPU, its BPF programs %s%%\n' fixed \
			"$2" "$1" "$4" "$(if [ "$8" = null ]; then echo "n/a (under 1 s)"; else echo "$8%"; fi)" \
			"$9" >&2
	fi
}

bpf_stats_on() {
	if [ -w "$bpf_stats_file" ] && [ -z "$bpf_stats_saved" ]; then
		bpf_stats_saved=$(cat "$bpf_stats_file")
		echo 1 >"$bpf_stats_file"
	fi
}

bpf_stats_restore() {
	if [ -n "$bpf_stats_saved" ]; then
		echo "$bpf_stats_saved" >"$bpf_stats_file"
		bpf_stats_saved=
	fi
}

fixed_rate=$((fixed_events / 2)) # ops/s: tcp, udp and dns ops are two events
if [ "$mode" = full ]; then
	# Storms: every configuration in every round, interleaved, each round starting one
	# configuration later; a tracer of its own for each storm.
	for ((round = 0; round < rounds; round++)); do
		echo "round $((round + 1))/$rounds" >&2
		for workload in "${workloads[@]}"; do
			for ((k = 0; k < ${#configs[@]}; k++)); do
				tracer_begin "${configs[(round + k) % ${#configs[@]}]}"
				load "$workload" storm "$duration" 0
				tracer_end
			done
		done
	done
	# Fixed rate, with BPF run-time statistics on (they cost a little on every program run).
	bpf_stats_on
	for workload in "${workloads[@]}"; do
		for config in "${fixed[@]}"; do
			tracer_begin "$config"
			load "$workload" fixed "$rate_duration" "$fixed_rate"
			tracer_end
		done
	done
	bpf_stats_restore
else
	# Smoke: one tracer per configuration for all its loads (starting one takes seconds),
	# so lost events and peak memory are those of the whole run.
	bpf_stats_on
	for config in "${configs[@]}"; do
		tracer_begin "$config"
		for workload in "${workloads[@]}"; do
			load "$workload" storm "$duration" 0
			[ "$config" = none ] || load "$workload" fixed "$rate_duration" "$fixed_rate"
		done
		tracer_end
	done
	bpf_stats_restore
fi
elapsed=$(awk -v a="$t_start" -v b="$(now_s)" 'BEGIN { printf "%.0f", b - a }')
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report: table on stdout, JSON in $json_out ----
fmt() { # printf format value: "-" for null
	# shellcheck disable=SC2059
	if [ "$2" = null ]; then echo -; else printf "$1" "$2"; fi
}
mib() {
	if [ "$1" = null ]; then echo null; else awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; fi
}

declare -A m_ops m_recv
for key in "${!ops[@]}"; do
	m_ops[$key]=$(median "${ops[$key]}")
	m_recv[$key]=$(median "${recv[$key]}")
done

echo
echo "Storms, as fast as possible: medians of $rounds rounds. ops/s: tcp connections, udp datagrams"
echo "sent, dns answers, http responses; +-%: half the range of the rounds, % of the median; ratio:"
echo "median ops/s / untraced median; paired: median of the per-round ratios (a round runs every"
echo "configuration back to back); recv/s, rratio: udp datagrams received, dns requests received;"
echo "start: s until the tracer was tracing; cpu%: tracer's user+system time while the load ran, %"
echo "of one core; rss: its VmHWM; lost: ring buffer drops, all rounds; counted: what the tracer"
echo "counted / what loadgen did, for loadgen or for nginx's worker (http: its accepts), the lowest"
row='%-7s %-14s %8s %4s %6s %6s %8s %6s %5s %5s %7s %8s %7s\n'
# shellcheck disable=SC2059
printf "$row" load config ops/s +-% ratio paired recv/s rratio start cpu% rss_MiB lost counted
json_storms=()
for workload in "${workloads[@]}"; do
	for config in "${configs[@]}"; do
		key=$workload:$config
		rt=$(ratio "${m_ops[$key]}" "${m_ops[$workload:none]}")
		pr=$(paired_ratio "${ops[$key]}" "${ops[$workload:none]}")
		sp=$(spread "${ops[$key]}")
		rv=null rr=null
		if [ "$workload" = udp ] || [ "$workload" = dns ]; then
			rv=${m_recv[$key]}
			rr=$(ratio "$rv" "${m_recv[$workload:none]}")
		fi
		st=$(median "${start_s[$key]}")
		cs=$(median "${cpu_s[$key]}")
		cp=$(median "${cpu_pct[$key]}")
		hw=$(maximum "${hwm[$key]}")
		lo=$(total "${lost[$key]}")
		co=$(minimum "${cnt[$key]}")
		# shellcheck disable=SC2059
		printf "$row" "$workload" "$config" "$(fmt %.0f "${m_ops[$key]}")" "$(fmt %s "$sp")" \
			"$rt" "$(fmt %.3f "$pr")" "$(fmt %.0f "$rv")" "$(fmt %s "$rr")" "$(fmt %.2f "$st")" \
			"$(fmt %.1f "$cp")" "$(fmt %s "$(mib "$hw")")" "$(fmt %s "$lo")" "$(fmt %s "$co")"
		json_storms+=("$(printf '{"workload":"%s","config":"%s","ops_per_s_median":%s,' \
			"$workload" "$config" "${m_ops[$key]}"
		printf '"spread_pct":%s,"ratio":%s,"paired_ratio":%s,' "$sp" "$rt" "$pr"
		printf '"recv_per_s_median":%s,"recv_ratio":%s,"ops_per_s":%s,' \
			"$rv" "$rr" "$(json_numbers "${ops[$key]}")"
		printf '"tracer_start_s_median":%s,"tracer_cpu_s_median":%s,' "$st" "$cs"
		printf '"tracer_cpu_pct_median":%s,' "$cp"
		printf '"tracer_vmhwm_kib_max":%s,"lost_total":%s,"counted_fraction_min":%s}' \
			"$hw" "$lo" "$co")")
	done
done

echo
echo "Fixed rate, $fixed_rate ops/s for ${rate_duration}s: tcp connections (connect + accept, $fixed_events"
echo "events/s), udp datagrams (sent + received), dns requests (received + answered), http"
echo "responses (one accept each; http-ka: none), tcp6 and udp6 the same as tcp and udp (native:"
echo "no events); cpu = tracer process, bpf = run time of its BPF programs, % of one core"
row='%-7s %-14s %9s %6s %6s %7s %9s %7s\n'
# shellcheck disable=SC2059
printf "$row" load config ops/s cpu% bpf% rss_MiB lost counted
json_fixed=()
for workload in "${workloads[@]}"; do
	for config in "${fixed[@]}"; do
		key=$workload:$config
		# shellcheck disable=SC2059
		printf "$row" "$workload" "$config" "$(fmt %.0f "${f_ops[$key]}")" "$(fmt %s "${f_cpu[$key]}")" \
			"$(fmt %s "${f_bpf[$key]}")" "$(mib "${f_hwm[$key]}")" \
			"$(fmt %s "${f_lost[$key]}")" "$(fmt %s "${f_cnt[$key]}")"
		json_fixed+=("$(printf '{"workload":"%s","config":"%s","events_per_s":%s,' \
			"$workload" "$config" "$fixed_events"
		printf '"ops_per_s":%s,"tracer_cpu_pct":%s,"bpf_cpu_pct":%s,' "${f_ops[$key]}" \
			"${f_cpu[$key]}" "${f_bpf[$key]}"
		printf '"tracer_vmhwm_kib":%s,"lost":%s,"counted_fraction":%s,' "${f_hwm[$key]}" \
			"${f_lost[$key]}" "${f_cnt[$key]}"
		printf '"programs":[%s]}' "$(prog_words "${f_progs[$key]}" | awk -F: '{
			printf "%s{\"name\":\"%s\",\"runs_per_s\":%s,\"ns_per_run\":%s}",
				(NR > 1 ? "," : ""), $1, $2, $3 }')")")
	done
done

if [ -n "${f_progs[*]//-/}" ]; then
	echo
	echo "BPF programs in the fixed-rate runs: runs per second (of every process on the machine:"
	echo "the hooks are system-wide) and mean run time, ns"
	row='%-7s %-14s %-34s %8s %8s\n'
	# shellcheck disable=SC2059
	printf "$row" load config program runs/s ns/run
	for workload in "${workloads[@]}"; do
		for config in "${fixed[@]}"; do
			prog_words "${f_progs[$workload:$config]}" | while IFS=: read -r name rps ns; do
				# shellcheck disable=SC2059
				printf "$row" "$workload" "$config" "$name" "$rps" "$ns"
			done
		done
	done
fi

# dstrace's work program by program: each program's time per op against the floor's, whose
# programs are the same but return at once. $1, $2: the floor's and the configuration's
# "name:runs_per_s:ns_per_run" words; $3, $4: their ops/s. One line per program, the floor's
# programs first in the order the kernel listed them, then any that ran only with the
# configuration: "name runs_per_op floor_ns_per_run ns_per_run floor_ns_per_op ns_per_op
# work_ns_per_op" ("null" where the floor's program did not run); not those that ran less
# than once in 200 ops (a bind, the bench's own processes' exec and exit).
program_work() {
	awk -v fw="$1" -v cw="$2" -v fo="$3" -v co="$4" 'BEGIN {
		if (fo == "null" || co == "null" || fo <= 0 || co <= 0) exit
		n = split(fw, f, " ")
		for (i = 1; i <= n; i++) {
			split(f[i], p, ":")
			if (!(p[1] in fr)) order[++k] = p[1]
			fr[p[1]] = p[2] / fo; fn[p[1]] = p[3]
		}
		n = split(cw, c, " ")
		for (i = 1; i <= n; i++) {
			split(c[i], p, ":")
			if (!(p[1] in fr) && !(p[1] in cr)) order[++k] = p[1]
			cr[p[1]] = p[2] / co; cn[p[1]] = p[3]
		}
		for (i = 1; i <= k; i++) {
			name = order[i]
			if (!(name in cr) || cr[name] < 0.005) continue
			fop = (name in fr) ? fr[name] * fn[name] : 0
			op = cr[name] * cn[name]
			printf "%s %.2f %s %s %s %s %s\n", name, cr[name],
				(name in fr) ? fn[name] : "null", cn[name], ns(fop), ns(op), ns(op - fop)
		}
	}
	function ns(v) { v = sprintf("%.0f", v); return v == "-0" ? 0 : v }'
}

json_work=()
if [ -n "${f_progs[*]//-/}" ]; then
	echo
	echo "dstrace's own work per op, program by program (the fixed-rate runs): runs per op, mean ns"
	echo "a run with the floor's programs (which only return) and with dstrace's, the same per op,"
	echo "and work = what dstrace's programs add per op (both include the statistics' clock reads)"
	row='%-7s %-14s %-22s %7s %8s %7s %8s %7s %7s\n'
	# shellcheck disable=SC2059
	printf "$row" load config program runs/op floor/run ns/run floor/op ns/op work/op
	for workload in "${workloads[@]}"; do
		for config in "${dstraces[@]}"; do
			lines=$(program_work "${f_progs[$workload:floor]:-}" \
				"${f_progs[$workload:$config]:-}" "${f_ops[$workload:floor]:-null}" \
				"${f_ops[$workload:$config]:-null}")
			[ -n "$lines" ] || continue
			while read -r name rpo fnr nr fop op wop; do
				# shellcheck disable=SC2059
				printf "$row" "$workload" "$config" "$name" "$rpo" "$(fmt %s "$fnr")" "$nr" \
					"$fop" "$op" "$wop"
			done <<<"$lines"
			read -r t_runs t_fop t_op t_wop < <(awk '{ r += $2; f += $5; o += $6; w += $7 }
				END { printf "%.2f %.0f %.0f %.0f\n", r, f, o, w }' <<<"$lines")
			# shellcheck disable=SC2059
			printf "$row" "$workload" "$config" "(all)" "$t_runs" - - "$t_fop" "$t_op" "$t_wop"
			json_work+=("$(printf '{"workload":"%s","config":"%s","floor_ns_per_op":%s,' \
				"$workload" "$config" "$t_fop"
			printf '"ns_per_op":%s,"work_ns_per_op":%s,"programs":[%s]}' "$t_op" "$t_wop" \
				"$(awk '{ printf "%s{\"name\":\"%s\",\"runs_per_op\":%s,", (NR > 1 ? "," : ""), $1, $2
					printf "\"floor_ns_per_run\":%s,\"ns_per_run\":%s,", $3, $4
					printf "\"work_ns_per_op\":%s}", $7 }' <<<"$lines")")")
		done
	done
fi

echo
echo "Cost per operation, ns (from the storms' median ops/s): hooks = floor - untraced (dstrace's"
echo "hooks with programs that only return), work = tracer - floor (what dstrace's programs and"
echo "user space add above that), x floor = work / hooks"
row='%-7s %-14s %10s %10s %10s %8s\n'
# shellcheck disable=SC2059
printf "$row" load config ns/op hooks work "x floor"
json_floor=()
declare -A xfloor
ns_op() { awk -v o="$1" 'BEGIN { if (o == "null" || o == 0) print "null"; else printf "%.0f", 1e9 / o }'; }
for workload in "${workloads[@]}"; do
	n0=$(ns_op "${m_ops[$workload:none]}")
	nf=$(ns_op "${m_ops[$workload:floor]}")
	for config in stream aggregate; do
		nc=$(ns_op "${m_ops[$workload:$config]}")
		read -r hooks work_ns times < <(awk -v a="$n0" -v f="$nf" -v c="$nc" 'BEGIN {
			if (a == "null" || f == "null" || c == "null") { print "null null null"; exit }
			h = f - a; w = c - f
			printf "%.0f %.0f %s\n", h, w, (h > 0 ? sprintf("%.2f", w / h) : "null") }')
		xfloor[$workload:$config]=$times
		# shellcheck disable=SC2059
		printf "$row" "$workload" "$config" "$(fmt %s "$nc")" "$(fmt %s "$hooks")" \
			"$(fmt %s "$work_ns")" "$(fmt %s "$times")"
		json_floor+=("$(printf '{"workload":"%s","config":"%s","ns_per_op":%s,' "$workload" \
			"$config" "$nc"
		printf '"hooks_ns":%s,"work_ns":%s,"work_per_hooks":%s}' "$hooks" "$work_ns" "$times")")
	done
done

echo
echo "Targets:"
json_targets=()
target() { # name value op limit
	local met
	met=$(awk -v v="$2" -v op="$3" -v l="$4" 'BEGIN {
		if (v == "null") print "null"
		else if (op == ">=") print (v >= l) ? "true" : "false"
		else print (v <= l) ? "true" : "false" }')
	printf '  %-60s %8s %s %-5s %s\n' "$1" "$2" "$3" "$4" \
		"$(case $met in true) echo met ;; false) echo MISSED ;; *) echo n/a ;; esac)"
	json_targets+=("$(printf '{"name":"%s","value":%s,"op":"%s","limit":%s,"met":%s}' \
		"$1" "$2" "$3" "$4" "$met")")
}
# Ratios: paired, per round (configurations run back to back), which a change in the machine's
# speed between rounds does not skew.
paired() { # config_a config_b workload
	paired_ratio "${ops[$3:$1]}" "${ops[$3:$2]}"
}
has() { # workload: was it run?
	[[ " ${workloads[*]} " == *" $1 "* ]]
}
# Values of an array for the workloads run: of ARRAY CONFIG WORKLOAD...
of() {
	local -n a=$1
	local w
	for w in "${@:3}"; do
		has "$w" && echo "${a[$w:$2]:-null}"
	done | paste -sd' '
}
# issue 13: on every workload, dstrace -i ahead of bpftrace, and what dstrace's programs and
# user space add at most 1.5 times what its hooks cost (the floor)
for w in "${workloads[@]}"; do
	target "$w: dstrace -i / bpftrace (paired)" "$(paired aggregate bpftrace "$w")" ">=" 1
done
for w in "${workloads[@]}"; do
	for c in stream aggregate; do
		target "$w: dstrace $([ $c = stream ] && echo streaming || echo -i), work / floor" \
			"${xfloor[$w:$c]:-null}" "<=" 1.5
	done
done
if has http; then
	target "http (a connection per request): dstrace -i (paired)" \
		"$(paired aggregate none http)" ">=" 0.98
	target "http (a connection per request): dstrace streaming (paired)" \
		"$(paired stream none http)" ">=" 0.95
fi
if has tcp; then
	target "tcp storm ratio, dstrace streaming (paired)" "$(paired stream none tcp)" ">=" 0.98
	target "tcp storm ratio, dstrace -i (paired)" "$(paired aggregate none tcp)" ">=" 0.99
	target "tcp storm lost events, dstrace streaming" "$(total "${lost[tcp:stream]}")" "<=" 0
fi
if has udp; then
	target "udp storm ratio, dstrace streaming (paired)" "$(paired stream none udp)" ">=" 0.97
	target "udp storm ratio, dstrace -i (paired)" "$(paired aggregate none udp)" ">=" 0.97
fi
target "dstrace streaming CPU % of a core at 10k events/s, max" \
	"$(maximum "$(of f_cpu stream tcp udp dns)")" "<=" 2
target "dstrace VmHWM MiB, max" "$(mib "$(maximum "$(of hwm stream "${workloads[@]}")" \
	"$(of hwm aggregate "${workloads[@]}")" "$(of f_hwm stream "${workloads[@]}")" \
	"$(of f_hwm aggregate "${workloads[@]}")")")" "<=" 20

{
	printf '{"mode":"%s","started":"%s","elapsed_s":%s,' "$mode" "$started" "$elapsed"
	printf '"machine":{"nproc":%s,"cpu_model":"%s","kernel":"%s",' "$(nproc)" "$cpu_model" \
		"$(uname -r)"
	printf '"loadavg_before":"%s","loadavg_after":"%s"},' "$load_before" "$load_after"
	printf '"dstrace":{"version":"%s","commit":"%s"},"bpftrace":"%s",' "$dstrace_version" \
		"$dstrace_commit" "$("$BPFTRACE" --version)"
	printf '"settings":{"rounds":%s,"storm_s":%s,"fixed_rate_s":%s,"udp_size":%s,' \
		"$rounds" "$duration" "$rate_duration" "$size"
	printf '"loadgen_threads":%s,"http_clients":%s,"workloads":"%s",' "$threads" "$clients" \
		"${workloads[*]}"
	printf '"fixed_events_per_s":%s},' "$fixed_events"
	printf '"storms":%s,"fixed_rate":%s,"program_work":%s,"floor":%s,"targets":%s}\n' \
		"$(json_list "${json_storms[@]}")" "$(json_list "${json_fixed[@]}")" \
		"$(json_list "${json_work[@]}")" "$(json_list "${json_floor[@]}")" \
		"$(json_list "${json_targets[@]}")"
} >"$json_out"
echo
echo "Took ${elapsed}s; load average $load_before before, $load_after after. JSON: $json_out"
