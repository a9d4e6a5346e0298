#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Prometheus metrics (README "Production audit"): a real Prometheus server scrapes dstrace
# and answers PromQL queries with exactly the traffic the test generated.
#
# dstrace (--audit -o FILE --metrics 127.0.0.1:PORT) and Prometheus (Debian's
# /usr/bin/prometheus, scrape_interval 1s, one job: dstrace) run in a namespace of their own
# with only loopback ("mon"); the traffic runs in the topology's hosts (dstrace sees every
# namespace). Known traffic: N TCP accepts (IPv4 clients of a dual-stack tcpserv6), C mapped
# TCP connects and K v6-only failures (ENETUNREACH) of tcpcli6, M UDP datagrams of SIZE bytes
# from one udp6 to another. The programs run as copies named <tag>-<program>, so that their
# comm label is this run's alone: other suites running on the machine at the same time
# (dstrace sees them too) cannot add to the sums. Then /metrics itself: the text format,
# a 404 elsewhere, a 405 for other methods; --metrics :PORT (127.0.0.1) with --metrics-file
# in the default JSON mode; and -i with --metrics-file alone (failures by errno: events).
#
#   sudo tests/e2e/test_metrics.sh
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
METRICS_PORT=9464	# in the mon namespace: nothing else listens there
PROM_PORT=9090
N_ACCEPT=20		# tcpcli4 -> tcpserv6 (dual-stack): accepts
C_CONNECT=4		# tcpcli6 -> tcpserv4 (IPv4-only): mapped connects
K_FAIL=7		# tcpcli6 -6 -> the same: ENETUNREACH
M_DGRAMS=30		# udp6 send -> udp6 recv
SIZE=200
SRV6_PORT=9800
SRV4_PORT=9801
UDP_PORT=9802
PROM_START_TIMEOUT=60
SCRAPE_TIMEOUT=30

need_root
build_progs

need_tools "$PROMETHEUS" curl jq

# The programs under names of this run's own (comm is at most 15 characters).
TAG=$(printf 'm%05d' $(($$ % 100000)))
BIN=$WORK/bin
mkdir -p "$BIN"
for p in tcpserv6 tcpserv4 tcpcli4 tcpcli6 udp6; do
	cp "$PROGS/$p" "$BIN/$TAG-$p"
done
S6=$TAG-tcpserv6 C4=$TAG-tcpcli4 C6=$TAG-tcpcli6 U6=$TAG-udp6

topo_up
lo_host_add mon

mon_curl() { in_ns mon curl -sS --max-time 5 "$@"; }

# prom_value QUERY: the value of an instant query with one series, "none" without any,
# "N series" with several, "no answer"/"error: ..." when Prometheus did not answer.
prom_value() {
	local ans
	if ! ans=$(mon_curl -f -G "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" 2>&1); then
		echo "no answer: $ans"
		return
	fi
	jq -r 'if .status != "success" then "error: \(.error)"
		elif (.data.result | length) == 0 then "none"
		elif (.data.result | length) > 1 then "\(.data.result | length) series"
		else .data.result[0].value[1] end' <<<"$ans" 2>/dev/null || echo "not JSON: $ans"
}

# --- dstrace, with --audit and --metrics, in mon -----------------------------------------------
check_eq "port $METRICS_PORT free in the test's namespace" "" "$(in_ns mon ss -Hltn "sport = :$METRICS_PORT")"
dstrace_start_in mon "$WORK/dstrace.stdout" --audit -o "$WORK/audit.jsonl" -i 2 \
	--metrics "127.0.0.1:$METRICS_PORT" || bail "dstrace" "did not start"
BACKEND=$(sed -n 's/^Tracing.*(backend \([a-z]*\)).*/\1/p' "$DSTRACE_LOG" | head -n 1)
check_match "dstrace listens on 127.0.0.1:$METRICS_PORT in its namespace" "127\.0\.0\.1:$METRICS_PORT" \
	"$(in_ns mon ss -Hltn "sport = :$METRICS_PORT" | awk '{print $4}')"

# --- Prometheus ----------------------------------------------------------------------------------
cat >"$WORK/prometheus.yml" <<EOF
# Written by tests/e2e/test_metrics.sh: dstrace only.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: dstrace
    static_configs:
      - targets: ['127.0.0.1:$METRICS_PORT']
EOF
if ! promtool check config "$WORK/prometheus.yml" >"$WORK/promtool-config.log" 2>&1; then
	bail "prometheus config" "promtool check config: $(cat "$WORK/promtool-config.log")"
fi
prom_pid=
bg_start prom_pid mon "$WORK/prometheus" "$PROMETHEUS" --config.file="$WORK/prometheus.yml" \
	--storage.tsdb.path="$WORK/prom-data" --web.listen-address="127.0.0.1:$PROM_PORT"
deadline=$((SECONDS + PROM_START_TIMEOUT))
until mon_curl -f "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1; do
	if ! proc_alive "$prom_pid"; then
		bail "prometheus start" "expected it ready, got it gone: $(tail -n 5 "$WORK/prometheus.err")"
	fi
	if [[ $SECONDS -ge $deadline ]]; then
		bail "prometheus start" "expected /-/ready within $PROM_START_TIMEOUT s, got: $(tail -n 5 "$WORK/prometheus.err")"
	fi
	sleep 0.2
done
pass "prometheus start" "$($PROMETHEUS --version 2>&1 | head -n 1), ready in the mon namespace"

# The target must be up before the traffic (the counters only grow: the values checked
# later are all taken after the traffic anyway).
deadline=$((SECONDS + SCRAPE_TIMEOUT))
while :; do
	targets=$(mon_curl "http://127.0.0.1:$PROM_PORT/api/v1/targets" 2>&1)
	health=$(jq -r '[.data.activeTargets[] | "\(.labels.job)@\(.scrapeUrl)=\(.health)"] | join(" ")' <<<"$targets" 2>/dev/null)
	[[ $health == "dstrace@http://127.0.0.1:$METRICS_PORT/metrics=up" ]] && break
	if [[ $SECONDS -ge $deadline ]]; then
		bail "prometheus scrapes dstrace" "expected one target, up, within $SCRAPE_TIMEOUT s, got: $health $(jq -c '[.data.activeTargets[].lastError]' <<<"$targets" 2>/dev/null)"
	fi
	sleep 0.5
done
pass "prometheus scrapes dstrace" "expected its only target up, got $health"
check_eq "up{job=\"dstrace\"}" 1 "$(prom_value 'up{job="dstrace"}')"

# --- traffic -------------------------------------------------------------------------------------
urecv_pid=''
bg_start _ sds "$WORK/serv6" "$BIN/$S6" "$SRV6_PORT"
bg_start _ s4 "$WORK/serv4" "$BIN/$TAG-tcpserv4" "$SRV4_PORT"
bg_start urecv_pid sds "$WORK/urecv" "$BIN/$U6" recv -n "$M_DGRAMS" -t 20 "$UDP_PORT"
for s in serv6 serv4 urecv; do
	wait_line "$WORK/$s.out" '^listening' 10 || bail "traffic" "$s did not start: $(cat "$WORK/$s.err")"
done
B4=0
for ((i = 0; i < N_ACCEPT; i++)); do
	line=$(in_ns cds "$BIN/$C4" srvds "$SRV6_PORT" 2>>"$WORK/cli4.err")
	if [[ $line == connected*echo=ok* ]]; then
		payload="hello from tcpcli4 pid $(kv "$line" pid)" # tests/progs/common.c, + "\n"
		B4=$((B4 + ${#payload} + 1))
	else
		fail "tcpcli4 $i" "expected connected ... echo=ok, got: $line"
	fi
done
for ((i = 0; i < C_CONNECT; i++)); do
	line=$(in_ns cds "$BIN/$C6" srv4 "$SRV4_PORT" 2>>"$WORK/cli6.err")
	[[ $line == connected*wire=ipv4*echo=ok* ]] || fail "tcpcli6 $i" "expected a mapped connect, got: $line"
done
for ((i = 0; i < K_FAIL; i++)); do
	line=$(in_ns cds "$BIN/$C6" -6 srv4 "$SRV4_PORT" 2>>"$WORK/cli6.err")
	[[ $line == "failed errno=ENETUNREACH "* ]] || fail "tcpcli6 -6 $i" "expected ENETUNREACH, got: $line"
done
line=$(in_ns cds "$BIN/$U6" send -m sendmsg -n "$M_DGRAMS" -s "$SIZE" "::ffff:${HOST_V4[sds]}" "$UDP_PORT" 2>>"$WORK/usend.err")
check_eq "udp6 sent $M_DGRAMS x $SIZE bytes" "count=$M_DGRAMS bytes=$((M_DGRAMS * SIZE))" \
	"count=$(kv "$line" count) bytes=$(kv "$line" bytes)"
wait_pid "$urecv_pid" 20 || fail "udp6 recv" "still waiting for its datagrams"
check_eq "udp6 received $M_DGRAMS x $SIZE bytes" "count=$M_DGRAMS bytes=$((M_DGRAMS * SIZE))" \
	"$(grep -o 'count=[0-9]* bytes=[0-9]*' "$WORK/urecv.out")"
log "traffic done: $N_ACCEPT accepts ($B4 bytes each way), $C_CONNECT mapped connects, $K_FAIL ENETUNREACH, $M_DGRAMS datagrams of $SIZE bytes"

# --- PromQL: equal to the traffic ------------------------------------------------------------------
declare -A WANT=(
	["sum(dstrace_mapped_events_total{event=\"accept\",proto=\"tcp\",comm=\"$S6\"})"]=$N_ACCEPT
	["sum(dstrace_mapped_bytes_total{direction=\"received\",proto=\"tcp\",comm=\"$S6\"})"]=$B4
	["sum(dstrace_mapped_bytes_total{direction=\"sent\",proto=\"tcp\",comm=\"$S6\"})"]=$B4
	["sum(dstrace_mapped_events_total{event=\"connect\",proto=\"tcp\",comm=\"$C6\"})"]=$C_CONNECT
	["dstrace_mapped_failures_total{event=\"connect\",error=\"ENETUNREACH\",comm=\"$C6\"}"]=$K_FAIL
	["sum(dstrace_mapped_failures_total{comm=\"$C6\"})"]=$K_FAIL
	["sum(dstrace_mapped_events_total{event=\"send\",proto=\"udp\",comm=\"$U6\"})"]=$M_DGRAMS
	["sum(dstrace_mapped_bytes_total{direction=\"sent\",proto=\"udp\",comm=\"$U6\"})"]=$((M_DGRAMS * SIZE))
	["sum(dstrace_mapped_events_total{event=\"recv\",proto=\"udp\",comm=\"$U6\"})"]=$M_DGRAMS
	["sum(dstrace_mapped_bytes_total{direction=\"received\",proto=\"udp\",comm=\"$U6\"})"]=$((M_DGRAMS * SIZE))
	# AF_INET clients are not mapped traffic: no series at all.
	["count({__name__=~\"dstrace_mapped_.*\",comm=\"$C4\"}) or vector(0)"]=0
	["count({__name__=~\"dstrace_mapped_.*\",comm=\"$TAG-tcpserv4\"}) or vector(0)"]=0
	# One series per (event, proto, comm) with a count: exactly these of ours.
	["count(dstrace_mapped_events_total{comm=~\"$TAG-.*\"})"]=4
	# Host processes: runtime="" and qos="", which Prometheus keeps as no label at all.
	["count(dstrace_mapped_events_total{comm=~\"$TAG-.*\",runtime=\"\",qos=\"\"})"]=4
)
# Poll until a scrape after the traffic shows every value (bounded), then once more after
# two more scrapes: the values must stay (nothing counted twice, late).
deadline=$((SECONDS + SCRAPE_TIMEOUT))
while :; do
	bad=()
	for q in "${!WANT[@]}"; do
		got=$(prom_value "$q")
		[[ $got == "${WANT[$q]}" ]] || bad+=("$q: expected ${WANT[$q]}, got $got")
	done
	[[ ${#bad[@]} -eq 0 || $SECONDS -ge $deadline ]] && break
	sleep 0.5
done
if [[ ${#bad[@]} -ne 0 ]]; then
	log "after $SCRAPE_TIMEOUT s, ${#bad[@]} queries still differ (below); dstrace's own /metrics now:"
	mon_curl "http://127.0.0.1:$METRICS_PORT/metrics" | grep -E "$TAG|lost" | sed 's/^/#   /'
fi
sleep 2.5
mapfile -t queries < <(printf '%s\n' "${!WANT[@]}" | sort)
for q in "${queries[@]}"; do
	check_eq "PromQL $q" "${WANT[$q]}" "$(prom_value "$q")"
done

# Loss: 0. dstrace sees the whole machine: with other programs' mapped traffic (series of other
# comms) a loss may be theirs (as check_lost_zero in lib.sh); ours was counted exactly above.
lost=$(prom_value 'dstrace_lost_events_total')
others=$(prom_value "count(dstrace_mapped_events_total{comm!~\"$TAG-.*\"}) or vector(0)")
if [[ $lost == 0 ]]; then
	pass "PromQL dstrace_lost_events_total" "expected 0, got 0"
elif [[ $lost =~ ^[0-9]+$ && $others != 0 ]]; then
	pass "PromQL dstrace_lost_events_total" "expected 0, got $lost, not counted: $others series of other programs on the machine"
else
	fail "PromQL dstrace_lost_events_total" "expected 0, got $lost"
fi
check_match "PromQL dstrace_evictions_total" '^[0-9]+$' "$(prom_value 'dstrace_evictions_total')" "a number"
check_eq "PromQL dstrace_build_info" "1 version=$(cat "$REPO_ROOT/VERSION") backend=$BACKEND" \
	"$(mon_curl -G "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=dstrace_build_info' |
		jq -r '.data.result | if length == 1 then .[0] | "\(.value[1]) version=\(.metric.version) backend=\(.metric.backend)" else "\(length) series" end')"

# --- /metrics itself --------------------------------------------------------------------------------
mon_curl -D "$WORK/metrics.head" -o "$WORK/metrics.txt" "http://127.0.0.1:$METRICS_PORT/metrics"
check_eq "GET /metrics: status" "HTTP/1.1 200 OK" "$(head -n 1 "$WORK/metrics.head" | tr -d '\r')"
check_match "GET /metrics: Content-Type" '^text/plain; version=0\.0\.4' \
	"$(grep -i '^content-type:' "$WORK/metrics.head" | sed 's/^[^:]*: *//' | tr -d '\r')"
for m in dstrace_mapped_events_total:counter dstrace_mapped_bytes_total:counter \
	dstrace_mapped_failures_total:counter dstrace_lost_events_total:counter \
	dstrace_evictions_total:counter dstrace_build_info:gauge; do
	name=${m%%:*}
	type=${m#*:}
	check_eq "/metrics: $name has HELP and TYPE $type before its samples" "HELP TYPE $type" \
		"$(awk -v n="$name" '
			$1 == "#" && $2 == "HELP" && $3 == n { h = "HELP" }
			$1 == "#" && $2 == "TYPE" && $3 == n { t = "TYPE " $4 }
			$1 !~ /^#/ && index($1, n) == 1 && (substr($1, length(n) + 1, 1) ~ /^[{]?$/) && !(h && t) { bad = 1 }
			END { print (bad ? "sample before HELP/TYPE" : h " " t) }' "$WORK/metrics.txt")"
done
check_eq "/metrics: every sample line is NAME{LABELS} VALUE" "" \
	"$(grep -v '^#' "$WORK/metrics.txt" | grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*)?\})? [0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$' | head -n 3)"
check_eq "/metrics: our accepts, directly" \
	"dstrace_mapped_events_total{event=\"accept\",proto=\"tcp\",comm=\"$S6\",runtime=\"\",qos=\"\"} $N_ACCEPT" \
	"$(grep -F "comm=\"$S6\"," "$WORK/metrics.txt" | grep -F 'event="accept"')"
if promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.log" 2>&1; then
	pass "promtool check metrics" "no problems"
else
	fail "promtool check metrics" "expected no problems, got: $(head -n 5 "$WORK/promtool.log")"
fi
check_eq "GET /other: 404" 404 "$(mon_curl -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/other")"
check_eq "GET /: 404" 404 "$(mon_curl -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/")"
check_eq "POST /metrics: 405, Allow: GET, HEAD" "405 GET, HEAD" \
	"$(mon_curl -X POST -d x -D - -o /dev/null "http://127.0.0.1:$METRICS_PORT/metrics" |
		awk 'NR == 1 { c = $2 } tolower($1) == "allow:" { sub(/^[^:]*: */, ""); sub(/\r$/, ""); a = $0 }
			END { print c " " a }')"
check_eq "GET /metrics?query: 200, the same exposition" 200 \
	"$(mon_curl -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/metrics?x=1")"
check_eq "prometheus: the only target is dstrace" "dstrace@http://127.0.0.1:$METRICS_PORT/metrics=up" \
	"$(mon_curl "http://127.0.0.1:$PROM_PORT/api/v1/targets" | jq -r '[.data.activeTargets[] | "\(.labels.job)@\(.scrapeUrl)=\(.health)"] | join(" ")')"

stop_pid "$prom_pid"
dstrace_stop_sig TERM
# With --audit: the audit agrees with the metrics.
check_eq "--audit with --metrics: the audit's tcpserv6 accepts" "$N_ACCEPT" \
	"$(jq -s --arg exe "/$S6" '[.[] | select(.type == "audit" and (.exe | endswith($exe)))] | last | .accept.tcp' "$WORK/audit.jsonl")"

# --- --metrics :PORT (127.0.0.1) and --metrics-file, in the default mode (-j) ------------------------
# The textfile: written at start, every 10 s without -i, and at exit, through PATH.tmp.
P2=$((METRICS_PORT + 1))
TEXTFILE=$WORK/textfile/dstrace.prom
mkdir -p "$WORK/textfile"
if dstrace_start_in mon "$WORK/j.stdout" -j -o "$WORK/j.jsonl" --metrics ":$P2" --metrics-file "$TEXTFILE"; then
	check_eq "--metrics :$P2 listens on 127.0.0.1:$P2" "127.0.0.1:$P2" \
		"$(in_ns mon ss -Hltn "sport = :$P2" | awk '{print $4}')"
	check_eq "--metrics-file: written at start" 1 "$(grep -c '^dstrace_build_info{' "$TEXTFILE" 2>&1)"
	for ((i = 0; i < 3; i++)); do
		in_ns cds "$BIN/$C4" srvds "$SRV6_PORT" >/dev/null 2>>"$WORK/cli4.err"
	done
	deadline=$((SECONDS + 10))
	until [[ $(mon_curl "http://127.0.0.1:$P2/metrics" | grep -F "comm=\"$S6\"," | grep -F 'event="accept"') == *" 3" ]]; do
		[[ $SECONDS -ge $deadline ]] && break
		sleep 0.5
	done
	check_eq "-j with --metrics: 3 accepts in /metrics" \
		"dstrace_mapped_events_total{event=\"accept\",proto=\"tcp\",comm=\"$S6\",runtime=\"\",qos=\"\"} 3" \
		"$(mon_curl "http://127.0.0.1:$P2/metrics" | grep -F "comm=\"$S6\"," | grep -F 'event="accept"')"
	dstrace_stop_sig TERM
	check_eq "-j with --metrics: 3 accept events in the JSON output" 3 \
		"$(jq -c --arg c "$S6" 'select(.type == "event" and .event == "accept" and .comm == $c)' "$WORK/j.jsonl" | wc -l)"
	check_eq "-j with --metrics: the process record" "accept=3" \
		"$(jq -r --arg c "$S6" 'select(.type == "process" and .comm == $c) | "accept=\(.accept)"' "$WORK/j.jsonl")"
	check_eq "--metrics-file at exit: the 3 accepts" \
		"dstrace_mapped_events_total{event=\"accept\",proto=\"tcp\",comm=\"$S6\",runtime=\"\",qos=\"\"} 3" \
		"$(grep -F "comm=\"$S6\"," "$TEXTFILE" | grep -F 'event="accept"')"
	check_eq "--metrics-file: only the file is left (PATH.tmp renamed)" "dstrace.prom" \
		"$(find "$WORK/textfile" -mindepth 1 -printf '%f ' | sed 's/ $//')"
	if promtool check metrics <"$TEXTFILE" >"$WORK/promtool-textfile.log" 2>&1; then
		pass "--metrics-file: promtool check metrics" "no problems"
	else
		fail "--metrics-file: promtool check metrics" "expected no problems, got: $(head -n 5 "$WORK/promtool-textfile.log")"
	fi
fi

# --- -i with --metrics-file alone -----------------------------------------------------------------
# -i alone needs no events (the kernel keeps its table whole), but the file's failures by errno
# come from them: with --metrics-file they must still be sent.
K2=3
TEXTFILE2=$WORK/textfile2/dstrace.prom
mkdir -p "$WORK/textfile2"
if dstrace_start_in mon "$WORK/i.stdout" -i 1 -o "$WORK/i.out" --metrics-file "$TEXTFILE2"; then
	for ((i = 0; i < K2; i++)); do
		line=$(in_ns cds "$BIN/$C6" -6 srv4 "$SRV4_PORT" 2>>"$WORK/cli6.err")
		[[ $line == "failed errno=ENETUNREACH "* ]] ||
			fail "-i --metrics-file: tcpcli6 -6 $i" "expected ENETUNREACH, got: $line"
	done
	dstrace_stop_sig TERM
	check_eq "-i with --metrics-file alone: the $K2 failures by errno, in the file at exit" \
		"dstrace_mapped_failures_total{event=\"connect\",error=\"ENETUNREACH\",comm=\"$C6\",runtime=\"\",qos=\"\"} $K2" \
		"$(grep -F "comm=\"$C6\"," "$TEXTFILE2" | grep -F 'dstrace_mapped_failures_total')"
fi

# --- libmicrohttpd is opened only for --metrics --------------------------------------------------
# With the library unreadable (/dev/null mounted over it, in a mount namespace of the test's
# own), --metrics fails in one line naming it, and a run without --metrics does not need it.
MHD_LIB=$(readlink -f "$(ldconfig -p |
	awk '$1 ~ /^libmicrohttpd\.so\./ && /x86-64|AArch64/ { print $NF; exit }')")
if [[ -f $MHD_LIB ]]; then
	no_mhd() {
		unshare -m bash -c 'mount --bind /dev/null "$1" && shift && exec "$@"' _ "$MHD_LIB" \
			"$DSTRACE" "$@"
	}
	no_mhd -d 1 --metrics "127.0.0.1:$((METRICS_PORT + 2))" >"$WORK/nomhd.out" 2>"$WORK/nomhd.err"
	rc=$?
	check_eq "--metrics without libmicrohttpd: exit status" 1 "$rc"
	check_eq "--metrics without libmicrohttpd: one line on stderr" 1 "$(wc -l <"$WORK/nomhd.err")"
	check_match "--metrics without libmicrohttpd: the line names it" \
		"^dstrace: --metrics needs libmicrohttpd: .*libmicrohttpd" "$(cat "$WORK/nomhd.err")"
	no_mhd -d 1 >"$WORK/nomhd2.out" 2>"$WORK/nomhd2.err"
	rc=$?
	check_eq "without --metrics, libmicrohttpd is not needed: exit status" 0 "$rc"
	check_match "without --metrics, libmicrohttpd is not needed: the run's summary" \
		"events, 0 lost, in" "$(tail -n 1 "$WORK/nomhd2.out" "$WORK/nomhd2.err" 2>&1 | tr '\n' ' ')"
else
	fail "libmicrohttpd's file" "not found by ldconfig -p"
fi

summary
