#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# dstrace against unmodified programs from Debian, in a namespace with only loopback:
#   nginx on [::]:8080 with ipv6only=off (one master, two workers), and curl:
#     curl -4 http://127.0.0.1:8080/            one accept, in an nginx worker
#     curl http://[::ffff:127.0.0.1]:8080/      a connect in curl and an accept in a worker
#     curl -6 http://[::1]:8080/                nothing
#   socat over UDP6 to a mapped address:
#     socat -u UDP6-RECV:7400 CREATE:FILE       receives, as ::ffff:127.0.0.1
#     socat -u -b 100 - UDP6-SENDTO:[::ffff:127.0.0.1]:7400 <250 bytes
#                                               3 datagrams (100 + 100 + 50 bytes)
#   then curl -4 again with dstrace in text mode (the human output).
#
#   sudo tests/e2e/test_programs.sh
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROLE=prg
HTTP_PORT=8080
UDP_PORT=7400
NGINX_WORKERS=2
PAYLOAD_SIZE=250 # sent 100 bytes at a time: 3 datagrams
PAYLOAD_DGRAMS=3

need_root
for cmd in nginx curl socat jq ss ps; do
	if ! command -v "$cmd" >/dev/null; then
		fail "prerequisites" "expected $cmd installed (scripts/install-deps.sh), got none"
		summary
		exit
	fi
done
lo_host_add "$ROLE"
NSJSON=$(ns_json "$ROLE")

# --- nginx ---------------------------------------------------------------------------------
NG=$WORK/nginx
mkdir -p "$NG"
cat >"$NG/nginx.conf" <<EOF
# Written by test_programs.sh: everything under $NG.
worker_processes $NGINX_WORKERS;
pid $NG/nginx.pid;
error_log $NG/error.log info;
events {
	worker_connections 64;
}
http {
	access_log $NG/access.log;
	client_body_temp_path $NG/client_body;
	proxy_temp_path $NG/proxy;
	fastcgi_temp_path $NG/fastcgi;
	uwsgi_temp_path $NG/uwsgi;
	scgi_temp_path $NG/scgi;
	server {
		listen [::]:$HTTP_PORT ipv6only=off;
		location / {
			return 200 "dstrace\n";
		}
	}
}
EOF

# nginx_start: master in the foreground (its pid is NGINX_PID), workers in WORKERS.
NGINX_PID=
WORKERS=()
nginx_start() {
	local deadline=$((SECONDS + 10)) listening
	bg_start NGINX_PID "$ROLE" "$NG/run" nginx -p "$NG/" -e "$NG/error.log" -c "$NG/nginx.conf" \
		-g 'daemon off;'
	while :; do
		listening=$(in_ns "$ROLE" ss -Hltn "sport = :$HTTP_PORT")
		mapfile -t WORKERS < <(ps -o pid= --ppid "$NGINX_PID" | tr -d ' ')
		if [[ -n $listening && ${#WORKERS[@]} -eq $NGINX_WORKERS ]]; then
			break
		fi
		if ! proc_alive "$NGINX_PID" || [[ $SECONDS -ge $deadline ]]; then
			fail "nginx start" "expected [::]:$HTTP_PORT listening and $NGINX_WORKERS workers within 10 s, got: listening='$listening' workers=${WORKERS[*]} $(
				tail -n 5 "$NG/error.log" "$NG/run.err" 2>/dev/null)"
			return 1
		fi
		sleep 0.05
	done
	# ss shows a dual-stack (IPV6_V6ONLY=0) [::] socket as *:PORT, a v6-only one as [::]:PORT.
	check_eq "nginx start: master pid file, dual-stack listening socket, workers" \
		"pid=$NGINX_PID *:$HTTP_PORT workers=$NGINX_WORKERS comm=nginx" \
		"pid=$(cat "$NG/nginx.pid") $(awk '{print $4}' <<<"$listening") workers=${#WORKERS[@]} comm=$(
			sort -u < <(for w in "${WORKERS[@]}"; do cat "/proc/$w/comm"; done) | tr '\n' ' ' |
				sed 's/ $//')"
}

# is_worker PID: PID is one of nginx's workers.
is_worker() {
	local w
	for w in "${WORKERS[@]}"; do
		[[ $w == "$1" ]] && return 0
	done
	return 1
}

# curl_get NAME CURL_ARGS... : run curl in the namespace; sets CURL_PID and CURL_LPORT and
# checks the answer (HTTP 200, body "dstrace").
CURL_PID=
CURL_LPORT=
curl_get() {
	local name=$1 base=$WORK/curl-$1 line
	shift
	run_in "$ROLE" 10 "$base" curl -sS -o "$base.body" -w '%{local_port} %{http_code}\n' "$@"
	CURL_PID=$RUN_PID
	line=$(head -n 1 "$base.out")
	CURL_LPORT=${line%% *}
	[[ $CURL_LPORT =~ ^[0-9]+$ ]] || CURL_LPORT=0
	check_eq "curl $name: exit status, HTTP status, body" "0 200 dstrace" \
		"$RUN_RC ${line#* } $(cat "$base.body" 2>/dev/null)"
}

# worker_event_check NAME SELECT: the accept events passing SELECT come from nginx workers.
worker_event_check() {
	local pids p bad=
	pids=$(events_in "$OUT" "$NSJSON" "$2" | jq -r .pid)
	for p in $pids; do
		is_worker "$p" || bad+=" $p"
	done
	if [[ -z $pids ]]; then
		fail "$1" "expected the accept in an nginx worker (${WORKERS[*]}), got no accept"
	elif [[ -n $bad ]]; then
		fail "$1" "expected the pid of an nginx worker (${WORKERS[*]}), got$bad"
	else
		pass "$1" "expected the pid of an nginx worker (${WORKERS[*]}), got ${pids//$'\n'/ }"
	fi
}

# --- part 1: JSON run over nginx, curl and socat ------------------------------------------
OUT=$WORK/programs.jsonl
if ! nginx_start; then
	summary
	exit
fi
WORKER_UID=$(ps -o uid= -p "${WORKERS[0]}" | tr -d ' ')
dstrace_start "$OUT" || {
	summary
	exit
}

curl_get ipv4 -4 "http://127.0.0.1:$HTTP_PORT/"
CURL4_PID=$CURL_PID CURL4_LPORT=$CURL_LPORT
curl_get mapped "http://[::ffff:127.0.0.1]:$HTTP_PORT/"
CURLM_PID=$CURL_PID CURLM_LPORT=$CURL_LPORT
curl_get ipv6 -6 "http://[::1]:$HTTP_PORT/"
CURL6_PID=$CURL_PID CURL6_LPORT=$CURL_LPORT

# socat: a receiver, then a sender reading a file of known size from standard input.
head -c "$PAYLOAD_SIZE" /dev/urandom >"$WORK/payload"
bg_start SOCAT_RECV "$ROLE" "$WORK/socat-recv" socat -u "UDP6-RECV:$UDP_PORT" \
	"CREATE:$WORK/received"
deadline=$((SECONDS + 5))
until [[ -n $(in_ns "$ROLE" ss -Hlun "sport = :$UDP_PORT") ]]; do
	if [[ $SECONDS -ge $deadline ]]; then
		fail "socat receiver ready" "expected UDP port $UDP_PORT bound within 5 s, got: $(
			cat "$WORK/socat-recv.err")"
		break
	fi
	sleep 0.05
done
ip netns exec "$(ns_name "$ROLE")" socat -u -b 100 - \
	"UDP6-SENDTO:[::ffff:127.0.0.1]:$UDP_PORT" <"$WORK/payload" \
	>"$WORK/socat-send.out" 2>"$WORK/socat-send.err" &
SOCAT_SEND=$!
BG_PIDS+=("$SOCAT_SEND")
if wait_pid "$SOCAT_SEND" 10; then
	rc=$WAIT_RC
else
	stop_pid "$SOCAT_SEND"
	rc=timeout
fi
deadline=$((SECONDS + 5))
while [[ $(stat -c %s "$WORK/received" 2>/dev/null || echo 0) -lt $PAYLOAD_SIZE &&
	$SECONDS -lt $deadline ]]; do
	sleep 0.05
done
check_eq "socat: sender exit status, bytes received intact" "0 same" \
	"$rc $(cmp -s "$WORK/payload" "$WORK/received" && echo same || echo "differ ($(
		stat -c %s "$WORK/received" 2>/dev/null || echo 0) bytes)")"
stop_pid "$SOCAT_RECV"

dstrace_stop
if [[ ! -s $OUT ]] || ! check_json_lines "dstrace output" "$OUT"; then
	fail "dstrace output" "expected JSON Lines in $OUT, got: $(head -c 300 "$OUT")"
	summary
	exit
fi

# curl -4: one accept, in a worker, of a connection from 127.0.0.1.
SEL4=".pid == $CURL4_PID or .lport == $CURL4_LPORT or .rport == $CURL4_LPORT"
check_events "curl -4 -> nginx: events" "$OUT" "$NSJSON" "$SEL4" "$(jq -nc \
	--argjson uid "$WORKER_UID" --argjson hp "$HTTP_PORT" --argjson cp "$CURL4_LPORT" \
	--argjson ns "$(netns_inode "$ROLE")" \
	'[{event: "accept", proto: "tcp", comm: "nginx", uid: $uid, netns: $ns,
	   laddr: "127.0.0.1", lport: $hp, raddr: "127.0.0.1", rport: $cp, ret: 0, error: null}]')"
worker_event_check "curl -4 -> nginx: accepting process" "($SEL4) and .event == \"accept\""
check_events "curl -4 -> nginx: tid of the accept = its pid" "$OUT" "$NSJSON" \
	"($SEL4) and .tid == .pid" '[{"event": "accept"}]'

# curl to the mapped address: a connect in curl, an accept in a worker.
SELM=".pid == $CURLM_PID or .lport == $CURLM_LPORT or .rport == $CURLM_LPORT"
check_events "curl [::ffff:127.0.0.1] -> nginx: events" "$OUT" "$NSJSON" "$SELM" "$(jq -nc \
	--argjson uid "$WORKER_UID" --argjson hp "$HTTP_PORT" --argjson cp "$CURLM_LPORT" \
	--argjson pid "$CURLM_PID" --argjson ns "$(netns_inode "$ROLE")" \
	'[{event: "connect", proto: "tcp", pid: $pid, tid: $pid, comm: "curl", uid: 0, netns: $ns,
	   laddr: "127.0.0.1", lport: $cp, raddr: "127.0.0.1", rport: $hp, ret: 0, error: null},
	  {event: "accept", proto: "tcp", comm: "nginx", uid: $uid, netns: $ns,
	   laddr: "127.0.0.1", lport: $hp, raddr: "127.0.0.1", rport: $cp, ret: 0, error: null}]')"
worker_event_check "curl [::ffff:127.0.0.1] -> nginx: accepting process" \
	"($SELM) and .event == \"accept\""

# curl -6 to ::1: native IPv6, nothing.
check_events "curl -6 [::1] -> nginx: events" "$OUT" "$NSJSON" \
	".pid == $CURL6_PID or .lport == $CURL6_LPORT or .rport == $CURL6_LPORT" '[]'

# socat: a send in the sender, a recv in the receiver, the datagrams counted.
SOCAT_LPORT=$(events_in "$OUT" "$NSJSON" ".pid == $SOCAT_SEND and .event == \"send\"" |
	jq -r .lport | head -n 1)
[[ $SOCAT_LPORT =~ ^[0-9]+$ ]] || SOCAT_LPORT=0
check_events "socat UDP6 -> [::ffff:127.0.0.1]: events" "$OUT" "$NSJSON" \
	".pid == $SOCAT_SEND or .pid == $SOCAT_RECV" "$(jq -nc \
	--argjson s "$SOCAT_SEND" --argjson r "$SOCAT_RECV" --argjson up "$UDP_PORT" \
	--argjson sp "$SOCAT_LPORT" --argjson ns "$(netns_inode "$ROLE")" \
	'[{event: "send", proto: "udp", pid: $s, tid: $s, comm: "socat", uid: 0, netns: $ns,
	   lport: ($sp | if . == 0 then "~number" else . end), raddr: "127.0.0.1", rport: $up,
	   ret: 0, error: null},
	  {event: "recv", proto: "udp", pid: $r, tid: $r, comm: "socat", uid: 0, netns: $ns,
	   lport: $up, raddr: "127.0.0.1", rport: $sp, ret: 0, error: null}]')"

# Nothing else in the namespace.
check_eq "events in the test's namespace" 5 "$(events_in "$OUT" "$NSJSON" | wc -l)"

# Per-process records.
check_eq "process record of curl -4 (pid $CURL4_PID)" none "$(process_counts "$OUT" "$CURL4_PID")"
check_eq "process record of curl [::ffff:127.0.0.1] (pid $CURLM_PID)" \
	"connect=1 accept=0 send=0 recv=0 failed=0 peers=1 bytes=0" \
	"$(process_counts "$OUT" "$CURLM_PID")"
check_eq "process record of curl -6 (pid $CURL6_PID)" none "$(process_counts "$OUT" "$CURL6_PID")"
check_eq "process record of the nginx master (pid $NGINX_PID)" none \
	"$(process_counts "$OUT" "$NGINX_PID")"
got=$(for w in "${WORKERS[@]}"; do process_record "$OUT" "$w"; done |
	jq -sr '"records=\(length) comm=\(map(.comm) | unique | join(","))" +
		" accept=\(map(.accept) | add // 0) connect=\(map(.connect) | add // 0)" +
		" send=\(map(.send) | add // 0) recv=\(map(.recv) | add // 0)" +
		" failed=\(map(.failed) | add // 0) peers=\(map(.peers) | unique | join(","))"')
check_match "process records of the nginx workers (2 accepts in all)" \
	'^records=[12] comm=nginx accept=2 connect=0 send=0 recv=0 failed=0 peers=1$' "$got"
check_eq "process record of the socat sender (pid $SOCAT_SEND)" \
	"connect=0 accept=0 send=$PAYLOAD_DGRAMS recv=0 failed=0 peers=1 bytes=$PAYLOAD_SIZE" \
	"$(process_counts "$OUT" "$SOCAT_SEND")"
check_eq "process record of the socat receiver (pid $SOCAT_RECV)" \
	"connect=0 accept=0 send=0 recv=$PAYLOAD_DGRAMS failed=0 peers=1 bytes=$PAYLOAD_SIZE" \
	"$(process_counts "$OUT" "$SOCAT_RECV")"
# (lost: only a number; other tests' traffic on the machine may fill the ring buffer, and
# the checks above tell whether any of this test's events went missing.)
check_match "stats record: events = event lines written" "^events=$(
	jq -c 'select(.type == "event")' "$OUT" | wc -l) lost=[0-9]+$" \
	"$(stats_record "$OUT" | jq -r '"events=\(.events) lost=\(.lost)"')"

# --- part 2: text mode, curl -4 -> nginx ---------------------------------------------------
TXT=$WORK/programs.txt
if dstrace_start_raw "$TXT"; then
	curl_get ipv4-text -4 "http://127.0.0.1:$HTTP_PORT/"
	dstrace_stop
	# TIME PID COMM EVENT PROTO LOCAL REMOTE RESULT
	# (Other programs on the machine may show up too: pick nginx's line.)
	line=$(grep -E -- " nginx .* ::ffff:127\.0\.0\.1:$CURL_LPORT " "$TXT")
	check_match "text mode: the accept line" \
		"^[0-9]{2}:[0-9]{2}:[0-9]{2} +[0-9]+ +nginx +accept +tcp +::ffff:127\.0\.0\.1:$HTTP_PORT +::ffff:127\.0\.0\.1:$CURL_LPORT +ok$" \
		"$line"
	read -r _ pid _ <<<"$line"
	if is_worker "${pid:-x}"; then
		pass "text mode: the accept line's pid" "expected an nginx worker (${WORKERS[*]}), got $pid"
	else
		fail "text mode: the accept line's pid" "expected an nginx worker (${WORKERS[*]}), got ${pid:-none}"
	fi
	# PID COMM CONNECT ACCEPT SEND RECV FAILED PEERS BYTES
	check_match "text mode: the worker's row in the per-process table" \
		"^${pid:-x} +nginx +0 +1 +0 +0 +0 +1 +0$" "$(grep -E "^${pid:-x} +nginx " "$TXT")"
fi

stop_pid "$NGINX_PID"
check_eq "nginx exit status after SIGTERM" 0 "$WAIT_RC"

summary
