#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Production audit (README "Production audit", docs/audit-format.md): dstrace --audit as a
# service would run it.
#
#   1. Bad flags and unwritable files: one line on stderr, exit 2 (usage) or 1 (runtime).
#   2. A soak of SOAK_SECONDS (default 125) of steady mixed mapped traffic, every operation
#      counted: IPv4 clients of a dual-stack tcpserv6, tcpcli6 mapped connects to an
#      IPv4-only server, v6-only tcpcli6 failures (ENETUNREACH) from another host, udp6
#      senders (every send method) to a udp6 receiver; thousands of short-lived processes.
#      dstrace runs with --audit -o FILE -i AUDIT_INTERVAL all along; halfway the file is
#      rotated (mv FILE FILE.1, SIGHUP); SIGTERM ends it. Checked: whole JSON lines,
#      complete sets, no gap in the audit_run sequence across the two files, the final set,
#      each program's last record equal to what was generated, dstrace's RSS flat.
#   3. dstrace report on the two files, if this dstrace has it.
#   4. A restart appends: two runs, two run ids, the first run's records untouched.
#   5. SIGHUP when the file's directory has become a file: the error is on stderr.
#   6. kill -9 of a running dstrace leaves none of its BPF programs loaded or attached to a
#      cgroup (every backend this kernel runs).
#
#   sudo tests/e2e/test_audit.sh            SOAK_SECONDS=30 for a quick run
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SOAK_SECONDS=${SOAK_SECONDS:-125}
AUDIT_INTERVAL=${AUDIT_INTERVAL:-5}
# Operations per second of the soak (each one a process of its own).
CLI4_PER_S=${CLI4_PER_S:-5}	# tcpcli4 -> tcpserv6 on the dual-stack server: accepts
CLI6_PER_S=${CLI6_PER_S:-5}	# tcpcli6 -> tcpserv4 on the IPv4-only server: mapped connects
V6ONLY_PER_S=${V6ONLY_PER_S:-3}	# tcpcli6 -6 -> the same: ENETUNREACH
UDP_PER_S=${UDP_PER_S:-4}	# udp6 send processes, UDP_COUNT datagrams each
UDP_COUNT=5
UDP_SIZE=100			# sender k of a second sends UDP_SIZE + k bytes per datagram
SRV6_PORT=9700
SRV4_PORT=9701
UDP_PORT=9702
RSS_TOLERANCE_PCT=10
RSS_TOLERANCE_KB=2048

need_root
build_progs

# one_line_error NAME WANT_RC CMD...: CMD fails with status WANT_RC, prints exactly one
# line on stderr and nothing on stdout.
one_line_error() {
	local name=$1 want=$2 rc nerr nout
	shift 2
	timeout 60 "$@" >"$WORK/err.out" 2>"$WORK/err.err"
	rc=$?
	nerr=$(wc -l <"$WORK/err.err")
	nout=$(wc -c <"$WORK/err.out")
	check_eq "$name" "exit $want, 1 stderr line, no stdout" \
		"exit $rc, $nerr stderr line$([[ $nerr == 1 ]] || echo s), $([[ $nout == 0 ]] && echo no || echo "$nout bytes of") stdout"
	log "  stderr: $(head -c 300 "$WORK/err.err")"
}

# ===========================================================================================
# 1. Bad flags and unwritable files (no BPF is loaded for any of these).
# ===========================================================================================
log "bad flags and unwritable files"
one_line_error "--audit without -o" 2 "$DSTRACE" --audit
one_line_error "--audit -o in a directory that does not exist" 1 \
	"$DSTRACE" --audit -o "$WORK/no-such-dir/audit.jsonl"
[[ -e $WORK/no-such-dir ]] && fail "--audit -o in a missing directory" "dstrace created $WORK/no-such-dir"
one_line_error "--metrics 127.0.0.1:99999" 2 "$DSTRACE" --metrics 127.0.0.1:99999 -d 1
one_line_error "--metrics nonsense" 2 "$DSTRACE" --metrics nonsense -d 1

# A port already in use, in a namespace of our own: a tcpserv4 listens on 0.0.0.0:9464.
lo_host_add busy
busy_pid=
bg_start busy_pid busy "$WORK/busy" "$PROGS/tcpserv4" 9464
if wait_line "$WORK/busy.out" '^listening' 10; then
	one_line_error "--metrics on a port already in use" 1 \
		ip netns exec "$(ns_name busy)" "$DSTRACE" --metrics 127.0.0.1:9464 -d 2
	check_match "--metrics on a port in use: the error says why" 'in use' "$(cat "$WORK/err.err")"
else
	fail "--metrics on a port already in use" "tcpserv4 did not start: $(cat "$WORK/busy.err")"
fi
stop_pid "$busy_pid"

# ===========================================================================================
# 2. The soak.
# ===========================================================================================
topo_up
host_add_extra cv ds 192.0.2.13 2001:db8::13 # the host of the v6-only clients
NSJSON=$(ns_json c4 c6 cds s4 s6 sds cv)
AUDIT=$WORK/audit.jsonl
GEN=$WORK/gen
mkdir -p "$GEN"
UDP_TOTAL=$((SOAK_SECONDS * UDP_PER_S * UDP_COUNT))

# The traffic generator: a bash loop inside one host's namespace, ITERATIONS iterations
# started one second apart (later if it falls behind: the number of operations is fixed,
# not the time), each program's result line appended to OUTDIR/<kind>.out.
cat >"$WORK/gen.sh" <<EOF
#!/bin/bash
# gen.sh clients|v6only ITERATIONS OUTDIR
CLI4_PER_S=$CLI4_PER_S CLI6_PER_S=$CLI6_PER_S V6ONLY_PER_S=$V6ONLY_PER_S UDP_PER_S=$UDP_PER_S
UDP_COUNT=$UDP_COUNT UDP_SIZE=$UDP_SIZE SRV6_PORT=$SRV6_PORT SRV4_PORT=$SRV4_PORT
UDP_PORT=$UDP_PORT UDP_DST=${HOST_V4[sds]} PROGS=$PROGS
EOF
cat >>"$WORK/gen.sh" <<'EOF'
set -u
mode=$1 iters=$2 out=$3
methods=(sendto sendmsg sendmmsg connect)
now_us() {
	local t=$EPOCHREALTIME
	printf -v "$1" '%s' $((${t%.*} * 1000000 + 10#${t#*.}))
}
now_us start
late=0
for ((i = 0; i < iters; i++)); do
	case $mode in
	clients)
		for ((k = 0; k < CLI4_PER_S; k++)); do
			"$PROGS/tcpcli4" srvds "$SRV6_PORT" >>"$out/cli4.out" 2>>"$out/cli4.err"
		done
		for ((k = 0; k < CLI6_PER_S; k++)); do
			"$PROGS/tcpcli6" srv4 "$SRV4_PORT" >>"$out/cli6.out" 2>>"$out/cli6.err"
		done
		for ((k = 0; k < UDP_PER_S; k++)); do
			"$PROGS/udp6" send -m "${methods[(i * UDP_PER_S + k) % 4]}" -n "$UDP_COUNT" \
				-s $((UDP_SIZE + k)) "::ffff:$UDP_DST" "$UDP_PORT" \
				>>"$out/usend.out" 2>>"$out/usend.err"
		done
		;;
	v6only)
		for ((k = 0; k < V6ONLY_PER_S; k++)); do
			"$PROGS/tcpcli6" -6 srv4 "$SRV4_PORT" >>"$out/v6only.out" 2>>"$out/v6only.err"
		done
		;;
	esac
	now_us now
	next=$((start + (i + 1) * 1000000))
	if ((now < next)); then
		sleep "$(printf '%d.%06d' $(((next - now) / 1000000)) $(((next - now) % 1000000)))"
	else
		late=$((late + 1))
	fi
done
now_us end
echo "done mode=$mode iterations=$i late=$late seconds=$(((end - start) / 1000000))"
EOF

urecv_pid='' gen_cli='' gen_v6=''
# Servers first: listening is not an event, and every client finds its server up.
bg_start _ sds "$WORK/serv6" "$PROGS/tcpserv6" "$SRV6_PORT"
bg_start _ s4 "$WORK/serv4" "$PROGS/tcpserv4" "$SRV4_PORT"
bg_start urecv_pid sds "$WORK/urecv" "$PROGS/udp6" recv -m recvfrom -n "$UDP_TOTAL" -t 60 "$UDP_PORT"
for s in serv6 serv4 urecv; do
	wait_line "$WORK/$s.out" '^listening' 10 || bail "soak setup" "$s did not start: $(cat "$WORK/$s.err")"
done

soak_t0=$SECONDS
dstrace_start_raw "$WORK/audit.stdout" --audit -o "$AUDIT" -i "$AUDIT_INTERVAL" || bail "soak" "no dstrace"
SOAK_PID=$DSTRACE_PID

log "soak: $SOAK_SECONDS s, per second $CLI4_PER_S accepts, $CLI6_PER_S mapped connects," \
	"$V6ONLY_PER_S v6-only failures, $UDP_PER_S UDP senders x $UDP_COUNT datagrams;" \
	"audit interval $AUDIT_INTERVAL s"
bg_start gen_cli cds "$WORK/gen-clients" bash "$WORK/gen.sh" clients "$SOAK_SECONDS" "$GEN"
bg_start gen_v6 cv "$WORK/gen-v6only" bash "$WORK/gen.sh" v6only "$SOAK_SECONDS" "$GEN"

# While it runs: dstrace's RSS every interval; the rotation halfway.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
: >"$WORK/rss.log"
soak_deadline=$((SECONDS + 3 * SOAK_SECONDS + 120))
next_sample=$SECONDS
rotated=
hup_at=
while proc_alive "$gen_cli" || proc_alive "$gen_v6"; do
	if [[ $SECONDS -ge $next_sample ]]; then
		echo "$((SECONDS - soak_t0)) $(rss_kb "$SOAK_PID")" >>"$WORK/rss.log"
		next_sample=$((next_sample + AUDIT_INTERVAL))
	fi
	if [[ -z $rotated && $((SECONDS - soak_t0)) -ge $((SOAK_SECONDS / 2)) ]]; then
		log "rotating at $((SECONDS - soak_t0)) s: mv audit.jsonl audit.jsonl.1; kill -HUP"
		mv "$AUDIT" "$AUDIT.1"
		kill -HUP "$SOAK_PID"
		hup_at=$SECONDS
		rotated=1
	fi
	if [[ $SECONDS -ge $soak_deadline ]]; then
		fail "soak" "expected the traffic generators to end within $((3 * SOAK_SECONDS + 120)) s, got them still running: killed"
		kill -KILL "$gen_cli" "$gen_v6" 2>/dev/null
		break
	fi
	if [[ -n $hup_at ]] && [[ $hup_at != seen ]] && grep -q audit_run "$AUDIT" 2>/dev/null; then
		pass "after SIGHUP, records go to a new $AUDIT" "the first set $((SECONDS - hup_at)) s after the HUP"
		hup_at=seen
	fi
	if ! proc_alive "$SOAK_PID"; then
		fail "soak" "expected dstrace to keep running, got it gone: $(tail -n 5 "$DSTRACE_LOG")"
		break
	fi
	sleep 0.5
done
soak_secs=$((SECONDS - soak_t0))
echo "$soak_secs $(rss_kb "$SOAK_PID")" >>"$WORK/rss.log"
wait "$gen_cli" 2>/dev/null
wait "$gen_v6" 2>/dev/null
log "generators: $(cat "$WORK/gen-clients.out") / $(cat "$WORK/gen-v6only.out")"
if [[ -n $hup_at && $hup_at != seen ]]; then
	fail "after SIGHUP, records go to a new $AUDIT" "expected a new file with a set within the soak, got: $(ls -l "$AUDIT" 2>&1)"
fi
[[ -n $rotated ]] || fail "rotation" "the soak ended before its middle: no rotation"
if ! wait_pid "$urecv_pid" 30; then
	fail "udp6 receiver" "expected $UDP_TOTAL datagrams, got it still waiting 30 s after the soak"
	kill -TERM "$urecv_pid" 2>/dev/null
fi
sleep 1 # let a harvest see the last processes gone; the final set forces one anyway

# SIGTERM: exit 0, a final set.
dstrace_stop_sig TERM "soak: dstrace exit status after SIGTERM"
log "soak took $soak_secs s; dstrace stderr: $(head -c 500 "$DSTRACE_LOG")"
check_eq "soak: nothing on stdout in audit mode" 0 "$(wc -c <"$WORK/audit.stdout")"
check_eq "soak: nothing but the Tracing line on stderr" "" "$(grep -v '^Tracing' "$DSTRACE_LOG")"

# --- what was generated ---------------------------------------------------------------------
# sum_payload FILE PROG: the lines "connected ... pid=P ... echo=ok" of FILE, and the bytes
# the client sent (and got back): "hello from PROG pid P\n" per line (tests/progs/common.c).
sum_payload() {
	awk -v prog="$2" '/^connected .*echo=ok/ {
		for (i = 1; i <= NF; i++) if ($i ~ /^pid=/) { p = substr($i, 5) }
		n++; b += length("hello from " prog " pid " p) + 1 }
		END { printf "%d %d\n", n, b }' "$1"
}
read -r N4 B4 < <(sum_payload "$GEN/cli4.out" tcpcli4)
read -r N6 B6 < <(sum_payload "$GEN/cli6.out" tcpcli6)
NF=$(grep -c '^failed errno=ENETUNREACH ' "$GEN/v6only.out")
read -r NU D DB NUC < <(awk '/^sent / {
	for (i = 1; i <= NF; i++) {
		if ($i ~ /^count=/) c += substr($i, 7)
		if ($i ~ /^bytes=/) b += substr($i, 7)
		if ($i == "method=connect") m++ }
	n++ } END { printf "%d %d %d %d\n", n, c, b, m }' "$GEN/usend.out")
RECV_LINE=$(grep '^received ' "$WORK/urecv.out")
ACCEPTED=$(grep -c '^accepted ' "$WORK/serv6.out")
PROCS=$((N4 + N6 + NF + NU))
log "generated: $N4 accepts ($B4 bytes each way), $N6 mapped connects ($B6 bytes each way)," \
	"$NF v6-only failures, $NU UDP senders ($NUC with connect): $D datagrams, $DB bytes;" \
	"receiver: $RECV_LINE"

check_eq "soak: every tcpcli4 connected and echoed" "$((SOAK_SECONDS * CLI4_PER_S)) of $((SOAK_SECONDS * CLI4_PER_S))" \
	"$N4 of $(wc -l <"$GEN/cli4.out")"
check_eq "soak: tcpserv6 accepted every tcpcli4" "$N4" "$ACCEPTED"
check_eq "soak: every tcpcli6 connected (mapped) and echoed" "$((SOAK_SECONDS * CLI6_PER_S)) of $((SOAK_SECONDS * CLI6_PER_S))" \
	"$N6 of $(wc -l <"$GEN/cli6.out")"
check_eq "soak: every tcpcli6 -6 failed with ENETUNREACH" "$((SOAK_SECONDS * V6ONLY_PER_S)) of $((SOAK_SECONDS * V6ONLY_PER_S))" \
	"$NF of $(wc -l <"$GEN/v6only.out")"
check_eq "soak: every udp6 sender sent its datagrams" "$((SOAK_SECONDS * UDP_PER_S)) senders, $UDP_TOTAL datagrams" \
	"$NU senders, $D datagrams"
check_eq "soak: the receiver got every datagram" "count=$D bytes=$DB" \
	"$(kv "$RECV_LINE" count | sed 's/^/count=/') $(kv "$RECV_LINE" bytes | sed 's/^/bytes=/')"
if [[ $PROCS -ge 1000 ]]; then
	pass "soak: thousands of short-lived processes" "$PROCS client processes in $soak_secs s"
else
	log "only $PROCS client processes (SOAK_SECONDS=$SOAK_SECONDS)"
fi

# --- the files: whole lines, complete sets, no gap -----------------------------------------
check_eq "rotated file $AUDIT.1: whole JSON lines" ok "$(json_lines_ok "$AUDIT.1")"
check_eq "new file $AUDIT: whole JSON lines" ok "$(json_lines_ok "$AUDIT")"
cat "$AUDIT.1" "$AUDIT" 2>/dev/null | jq -R -c 'fromjson? | objects' >"$WORK/all.jsonl"
RUN=$(jq -r 'select(.type == "audit_run") | .run' "$WORK/all.jsonl" | head -n 1)
check_eq "one run id in both files" "$RUN" "$(jq -r .run "$WORK/all.jsonl" | sort -u | tr '\n' ' ' | sed 's/ $//')"

# sets FILE: per audit_run record, whether the audit records before it (since the previous
# audit_run) are its whole set: as many as .written (the programs that changed since the last
# set; every program, .programs, in a full set), same ts, same run.
sets_report() {
	jq -R -s -c '
		split("\n") | map(select(length > 0) | fromjson? | objects)
		| reduce .[] as $r ({cur: [], bad: []};
			if $r.type == "audit" then .cur += [$r]
			elif $r.type == "audit_run" then
				(if (.cur | length) != $r.written or $r.written > $r.programs
				    or any(.cur[]; .ts != $r.ts or .run != $r.run)
				 then .bad += ["set at \($r.ts): \(.cur | length) audit records for written=\($r.written) programs=\($r.programs)"]
				 else . end) | .cur = []
			else .bad += ["unknown type \($r.type)"] end)
		| if (.cur | length) > 0 then .bad += ["\(.cur | length) audit records after the last audit_run"] else . end
		| .bad' "$1"
}
check_eq "rotated file: every set complete (programs audit records + audit_run, one ts)" "[]" "$(sets_report "$AUDIT.1")"
check_eq "new file: every set complete (programs audit records + audit_run, one ts)" "[]" "$(sets_report "$AUDIT")"

# audit_run timeline across both files, in file order.
jq -c 'select(.type == "audit_run") | {ts, started, final, events, lost, evictions, programs,
	t: (.ts | (sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) + (capture("(?<f>\\.[0-9]+)Z$").f | tonumber))}' \
	"$WORK/all.jsonl" >"$WORK/runs.jsonl"
n1=$(jq -c 'select(.type == "audit_run")' "$AUDIT.1" | wc -l)
n2=$(jq -c 'select(.type == "audit_run")' "$AUDIT" 2>/dev/null | wc -l)
log "sets: $n1 in $AUDIT.1, $n2 in $AUDIT"
check_match "sets on both sides of the rotation" '^[1-9][0-9]* and [1-9][0-9]*$' "$n1 and $n2"
check_eq "audit_run timestamps strictly increase across the two files" true \
	"$(jq -s '[.[].t] as $t | [range(1; $t | length) | $t[.] > $t[. - 1]] | all' "$WORK/runs.jsonl")"
maxgap=$(jq -s '[.[].t] as $t | [range(1; $t | length) | $t[.] - $t[. - 1]] | max // 0 | . * 10 | round / 10' "$WORK/runs.jsonl")
first_after=$(jq -s '.[0] | (.started | (sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601)) as $s | .t - $s | . * 10 | round / 10' "$WORK/runs.jsonl")
gap_ok=$(jq -n --argjson g "$maxgap" --argjson f "$first_after" --argjson i "$AUDIT_INTERVAL" \
	'$g <= 2 * $i + 1 and $f <= 2 * $i + 1')
gap_msg="expected at most ~2 intervals ($((2 * AUDIT_INTERVAL)) s) between sets and before the first, got longest gap $maxgap s, first set $first_after s after start"
if [[ $gap_ok == true ]]; then
	pass "no gap in the audit_run sequence" "$gap_msg"
else
	fail "no gap in the audit_run sequence" "$gap_msg"
fi
nsets=$(wc -l <"$WORK/runs.jsonl")
if [[ $nsets -ge $((soak_secs / AUDIT_INTERVAL - 1)) ]]; then
	pass "a set every interval" "expected at least $((soak_secs / AUDIT_INTERVAL - 1)) sets in $soak_secs s, got $nsets"
else
	fail "a set every interval" "expected at least $((soak_secs / AUDIT_INTERVAL - 1)) sets in $soak_secs s, got $nsets"
fi
check_eq "only the last set is final:true" "$(($(wc -l <"$WORK/runs.jsonl") - 1)) false, then true" \
	"$(jq -s '[.[:-1][] | select(.final == false)] | length' "$WORK/runs.jsonl") false, then $(jq -s '.[-1].final' "$WORK/runs.jsonl")"
check_eq "the file ends with the final audit_run" "audit_run final=true" \
	"$(tail -n 1 "$AUDIT" | jq -r '"\(.type) final=\(.final)"')"

# lost: 0. dstrace sees the whole machine; loss while other programs (outside our
# namespaces) had mapped traffic may be theirs (as check_lost_zero in lib.sh).
final_run=$(jq -s -c '.[-1]' "$WORK/runs.jsonl")
lost=$(jq -r .lost <<<"$final_run")
foreign=$(jq -c --argjson ns "$NSJSON" 'select(.type == "audit" and (.netns as $n | $ns | index($n) | not)) | .exe' \
	"$WORK/all.jsonl" | sort -u | wc -l)
if [[ $lost == 0 ]]; then
	pass "audit_run lost" "expected 0, got 0"
elif [[ $foreign -gt 0 ]]; then
	pass "audit_run lost" "expected 0, got $lost, not counted: $foreign programs outside the test's namespaces had mapped traffic"
else
	fail "audit_run lost" "expected 0, got $lost"
fi
log "final audit_run: $final_run"
# evictions: only what did not fit. Every flow carries at least one datagram: below the
# table's 65536 flows in all (ours and the machine's), nothing can have been evicted.
# Also every new flow is one event, received or lost: the smaller bound counts.
bound=$(jq -s --arg run "$RUN" --arg ts "$(jq -r .ts <<<"$final_run")" --argjson ev "$(jq '.events + .lost' <<<"$final_run")" \
	'[.[] | select(.type == "audit" and .run == $run and .ts == $ts) | .sent.udp_datagrams + .received.udp_datagrams] | add // 0
	 | [., $ev] | min' "$WORK/all.jsonl")
EVICTED=0 # flows really evicted (possible, and counted): a UDP peer count may be short
if [[ $bound -lt 65536 ]]; then
	check_eq "audit_run evictions (at most $bound UDP flows ever, the table holds 65536)" 0 "$(jq -r .evictions <<<"$final_run")"
else
	EVICTED=$(jq -r .evictions <<<"$final_run")
	log "SKIP soak evictions: $bound datagrams on the machine during the soak, real evictions possible ($EVICTED counted)"
fi

# --- each program's last record --------------------------------------------------------------
jq -s -c --argjson ns "$NSJSON" --arg run "$RUN" '
	map(select(.type == "audit" and .run == $run and (.netns as $n | $ns | index($n))))
	| group_by([.netns, .exe, .uid, .cgroup]) | map(last) | .[]' "$WORK/all.jsonl" >"$WORK/last.jsonl"
final_ts=$(jq -r .ts <<<"$final_run")

role_of_ns() {
	local r
	for r in c4 c6 cds s4 s6 sds cv; do
		[[ $(netns_inode "$r") == "$1" ]] && echo "$r" && return
	done
	echo "?"
}
progs_got=$(jq -r '"\(.netns) \(.exe | sub(".*/"; ""))"' "$WORK/last.jsonl" | while read -r n e; do
	echo "$(role_of_ns "$n"):$e"
done | sort | tr '\n' ' ' | sed 's/ $//')
check_eq "programs in the test's namespaces" "cds:tcpcli6 cds:udp6 cv:tcpcli6 sds:tcpserv6 sds:udp6" "$progs_got"

# expect_program NAME ROLE EXE_BASENAME EXPECTED_JSON: the last record of that program
# (in the final set) has these fields.
expect_program() {
	local name=$1 ns rec got
	ns=$(netns_inode "$2")
	rec=$(jq -c --argjson ns "$ns" --arg exe "$3" 'select(.netns == $ns and (.exe | endswith("/" + $exe)))' \
		"$WORK/last.jsonl" | tail -n 1)
	if [[ -z $rec ]]; then
		fail "$name" "expected a record of .../$3 in $2's namespace, got none"
		return
	fi
	check_eq "$name: in the final set" "$final_ts" "$(jq -r .ts <<<"$rec")"
	got=$(jq -S -c '{comm, pids, connect, accept, sent, received, failed, listen_ports, peers, peers_dropped}' <<<"$rec")
	# A UDP flow evicted from the kernel's table (other programs filled it: counted in
	# evictions) takes its datagrams out of the peer counts, not out of the totals.
	if [[ $EVICTED -gt 0 ]]; then
		short=$(jq -c --argjson exp "$4" '[.peers[] as $g | $exp.peers[]
			| select(.proto == "udp" and .dir == $g.dir and .addr == $g.addr and .port == $g.port and $g.count < .count)
			| "\(.addr):\(.port) \($g.count) of \(.count)"]' <<<"$got")
		if [[ $short != "[]" ]]; then
			log "$name: UDP peer counts short, $short: $EVICTED flows evicted while other programs filled the flow table"
			got=$(jq -S -c --argjson exp "$4" '.peers |= map(. as $g | ($exp.peers[]
				| select(.proto == "udp" and .dir == $g.dir and .addr == $g.addr and .port == $g.port and $g.count < .count)) // $g)' <<<"$got")
		fi
	fi
	check_eq "$name" "$(jq -S -c . <<<"$4")" "$got"
	check_match "$name: first_seen <= last_seen, UTC" '^true$' \
		"$(jq -r '(.first_seen | test("Z$")) and (.last_seen | test("Z$")) and .first_seen <= .last_seen' <<<"$rec")"
}

expect_program "tcpserv6 (accepts IPv4 clients)" sds tcpserv6 "$(jq -nc \
	--argjson n "$N4" --argjson b "$B4" --argjson port "$SRV6_PORT" --arg peer "${HOST_V4[cds]}" '
	{comm: "tcpserv6", pids: 1, connect: {tcp: 0, udp: 0}, accept: {tcp: $n},
	 sent: {tcp_bytes: $b, udp_datagrams: 0, udp_bytes: 0, udp_replies: 0},
	 received: {tcp_bytes: $b, udp_datagrams: 0, udp_bytes: 0, udp_replies: 0},
	 failed: {total: 0, by_errno: {}}, listen_ports: [$port],
	 peers: [{dir: "in", proto: "tcp", addr: $peer, port: $port, count: $n}], peers_dropped: 0}')"
expect_program "tcpcli6 (mapped connects)" cds tcpcli6 "$(jq -nc \
	--argjson n "$N6" --argjson b "$B6" --argjson port "$SRV4_PORT" --arg peer "${HOST_V4[s4]}" '
	{comm: "tcpcli6", pids: $n, connect: {tcp: $n, udp: 0}, accept: {tcp: 0},
	 sent: {tcp_bytes: $b, udp_datagrams: 0, udp_bytes: 0, udp_replies: 0},
	 received: {tcp_bytes: $b, udp_datagrams: 0, udp_bytes: 0, udp_replies: 0},
	 failed: {total: 0, by_errno: {}}, listen_ports: [],
	 peers: [{dir: "out", proto: "tcp", addr: $peer, port: $port, count: $n}], peers_dropped: 0}')"
expect_program "tcpcli6 -6 (v6-only: ENETUNREACH)" cv tcpcli6 "$(jq -nc --argjson n "$NF" '
	{comm: "tcpcli6", pids: $n, connect: {tcp: 0, udp: 0}, accept: {tcp: 0},
	 sent: {tcp_bytes: 0, udp_datagrams: 0, udp_bytes: 0, udp_replies: 0},
	 received: {tcp_bytes: 0, udp_datagrams: 0, udp_bytes: 0, udp_replies: 0},
	 failed: {total: $n, by_errno: {ENETUNREACH: $n}}, listen_ports: [], peers: [], peers_dropped: 0}')"
expect_program "udp6 senders" cds udp6 "$(jq -nc --argjson n "$NU" --argjson c "$NUC" \
	--argjson d "$D" --argjson b "$DB" --argjson port "$UDP_PORT" --arg peer "${HOST_V4[sds]}" '
	{comm: "udp6", pids: $n, connect: {tcp: 0, udp: $c}, accept: {tcp: 0},
	 sent: {tcp_bytes: 0, udp_datagrams: $d, udp_bytes: $b, udp_replies: 0},
	 received: {tcp_bytes: 0, udp_datagrams: 0, udp_bytes: 0, udp_replies: 0},
	 failed: {total: 0, by_errno: {}}, listen_ports: [],
	 peers: [{dir: "out", proto: "udp", addr: $peer, port: $port, count: $d}], peers_dropped: 0}')"
expect_program "udp6 receiver (recvfrom)" sds udp6 "$(jq -nc --argjson d "$(kv "$RECV_LINE" count)" \
	--argjson b "$(kv "$RECV_LINE" bytes)" --argjson port "$UDP_PORT" --arg peer "${HOST_V4[cds]}" '
	{comm: "udp6", pids: 1, connect: {tcp: 0, udp: 0}, accept: {tcp: 0},
	 sent: {tcp_bytes: 0, udp_datagrams: 0, udp_bytes: 0, udp_replies: 0},
	 received: {tcp_bytes: 0, udp_datagrams: $d, udp_bytes: $b, udp_replies: 0},
	 failed: {total: 0, by_errno: {}}, listen_ports: [],
	 peers: [{dir: "in", proto: "udp", addr: $peer, port: $port, count: $d}], peers_dropped: 0}')"

# --- memory ----------------------------------------------------------------------------------
# The sample after the first minute (or halfway, for a soak shorter than two minutes) against
# the last one: no growth with the number of processes and flows.
ref_at=$((SOAK_SECONDS >= 120 ? 60 : SOAK_SECONDS / 2))
read -r ref_t ref_kb < <(awk -v t="$ref_at" '$1 >= t && $2 != "" {print; exit}' "$WORK/rss.log")
read -r last_t last_kb < <(awk '$2 != "" {l = $0} END {print l}' "$WORK/rss.log")
log "RSS samples (s kB): $(tr '\n' ',' <"$WORK/rss.log")"
if [[ $SOAK_SECONDS -lt 60 ]]; then
	log "SKIP dstrace RSS flat: SOAK_SECONDS=$SOAK_SECONDS, under a minute (dstrace's tables still grow in the first ~30 s)"
elif [[ -z ${ref_kb:-} || -z ${last_kb:-} ]]; then
	fail "dstrace RSS flat" "expected RSS samples at ${ref_at}s and at the end, got: $(tr '\n' ' ' <"$WORK/rss.log")"
else
	tol=$((ref_kb * RSS_TOLERANCE_PCT / 100))
	[[ $tol -lt $RSS_TOLERANCE_KB ]] && tol=$RSS_TOLERANCE_KB
	if [[ $((last_kb - ref_kb)) -le $tol ]]; then
		pass "dstrace RSS flat" "expected at most $ref_kb + $tol kB at ${last_t}s (${ref_t}s: $ref_kb kB), got $last_kb kB after $PROCS processes"
	else
		fail "dstrace RSS flat" "expected at most $ref_kb + $tol kB at ${last_t}s (${ref_t}s: $ref_kb kB), got $last_kb kB after $PROCS processes"
	fi
fi

# ===========================================================================================
# 2b. UDP flow churn: evictions counts only what did not fit. 1000 processes open 40 new flows
# each (ports 20000-20039 of 127.0.0.1 in a namespace of their own), back to back, while
# scrapes make dstrace harvest every second: 40000 flows in all, never more than a few
# thousand at once in the kernel's table of 65536. dstrace watches only this udpflows (-c, a
# copy under a name of this run's own): no other traffic on the machine can fill the table.
# ===========================================================================================
CHURN_PROCS=1000
CHURN_FLOWS=40
CHURN_COMM=$(printf 'a%05d-udpflows' $(($$ % 100000)))
mkdir -p "$WORK/bin"
cp "$PROGS/udpflows" "$WORK/bin/$CHURN_COMM"
lo_host_add churn
if dstrace_start_in churn "$WORK/churn.stdout" --audit -o "$WORK/churn.jsonl" -i 1 \
	--metrics 127.0.0.1:9464 -c "$CHURN_COMM"; then
	scraper=''
	bg_start scraper churn "$WORK/scraper" sh -c \
		'while :; do curl -s -o /dev/null --max-time 2 http://127.0.0.1:9464/metrics; sleep 0.2; done'
	# shellcheck disable=SC2016 # expanded by that sh
	run_in churn 120 "$WORK/churn" sh -c 'i=0; while [ $i -lt "$1" ]; do "$2" send -a 1 -p "$3" -r 1 -s 8 -k 127.0.0.1 20000; i=$((i + 1)); done' \
		churn "$CHURN_PROCS" "$WORK/bin/$CHURN_COMM" "$CHURN_FLOWS"
	sent=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^datagrams=/) s += substr($i, 11)} END {print s + 0}' "$WORK/churn.out")
	sleep 2
	evictions_metric=$(in_ns churn curl -s --max-time 5 http://127.0.0.1:9464/metrics | awk '$1 == "dstrace_evictions_total" {print $2}')
	stop_pid "$scraper"
	dstrace_stop_sig TERM "flow churn: dstrace exit status after SIGTERM"
	check_eq "flow churn: udpflows sent" $((CHURN_PROCS * CHURN_FLOWS)) "$sent"
	crec=$(jq -c --argjson ns "$(netns_inode churn)" 'select(.type == "audit" and .netns == $ns)' "$WORK/churn.jsonl" | tail -n 1)
	check_eq "flow churn: one program, however short its processes lived" \
		"[\"$WORK/bin/$CHURN_COMM\"]" \
		"$(jq -sc --argjson ns "$(netns_inode churn)" '[.[] | select(.type == "audit" and .netns == $ns) | .exe] | unique' "$WORK/churn.jsonl")"
	check_eq "flow churn: the udpflows program" \
		"pids=$CHURN_PROCS sent=$((CHURN_PROCS * CHURN_FLOWS)) peers=$((CHURN_FLOWS < 16 ? CHURN_FLOWS : 16)) x $CHURN_PROCS peers_dropped=0" \
		"$(jq -r '"pids=\(.pids) sent=\(.sent.udp_datagrams) peers=\(.peers | length) x \(.peers | map(.count) | unique | map(tostring) | join(",")) peers_dropped=\(.peers_dropped)"' <<<"$crec")"
	crun=$(jq -c 'select(.type == "audit_run")' "$WORK/churn.jsonl" | tail -n 1)
	# Every flow carries at least one datagram: the datagrams of every program dstrace saw
	# bound the flows ever inserted. Below the table's size nothing can be evicted.
	bound=$(jq -s --arg run "$(jq -r .run <<<"$crun")" --arg ts "$(jq -r .ts <<<"$crun")" \
		'[.[] | select(.type == "audit" and .run == $run and .ts == $ts) | .sent.udp_datagrams + .received.udp_datagrams] | add // 0' \
		"$WORK/churn.jsonl")
	if [[ $bound -lt 65536 ]]; then
		check_eq "flow churn: audit_run evictions (at most $bound flows ever, the table holds 65536)" 0 \
			"$(jq -r .evictions <<<"$crun")"
		check_eq "flow churn: dstrace_evictions_total (at most $bound flows ever)" 0 "${evictions_metric:-none}"
	else
		log "SKIP flow churn evictions: $bound datagrams on the machine during the run, real evictions possible"
	fi
fi

# ===========================================================================================
# 3. dstrace report, if this dstrace has it.
# ===========================================================================================
report_missing=
"$DSTRACE" report --help >"$WORK/report-help.out" 2>&1
rc=$?
if [[ $rc != 0 ]]; then
	report_missing="'dstrace report --help' exits $rc ($(head -n 1 "$WORK/report-help.out"))"
elif ! head -n 3 "$WORK/report-help.out" | grep -qi 'report'; then
	report_missing="'dstrace report --help' prints the main usage ('$(head -n 1 "$WORK/report-help.out")'), not report's"
elif ! "$DSTRACE" report /dev/null >"$WORK/report-null.out" 2>&1; then
	report_missing="'dstrace report /dev/null' fails: $(head -n 1 "$WORK/report-null.out")"
fi
if [[ -n $report_missing ]]; then
	log "SKIP dstrace report checks: $report_missing"
else
	"$DSTRACE" report "$AUDIT.1" "$AUDIT" >"$WORK/report.txt" 2>"$WORK/report.err"
	check_eq "dstrace report FILE.1 FILE: exit status" 0 "$?"
	# Text: the key facts, whatever the wording around them. dstrace sees the whole machine,
	# so the report may also list other suites' programs: these look for ours.
	check_match "report: tcpserv6 would stop accepting IPv4 clients on port $SRV6_PORT" "tcpserv6.*$SRV6_PORT" \
		"$(grep 'tcpserv6' "$WORK/report.txt" | grep "$SRV6_PORT" | head -n 1)" "a line naming tcpserv6 and port $SRV6_PORT"
	check_match "report: the v6-only tcpcli6 already fails: $NF ENETUNREACH" "tcpcli6.*[^0-9]${NF}[^0-9].*ENETUNREACH" \
		"$(grep 'ENETUNREACH' "$WORK/report.txt" | grep tcpcli6 | grep "[^0-9]${NF}[^0-9]" | head -n 1)" \
		"a line naming tcpcli6, $NF and ENETUNREACH"
	check_match "report: the mapped tcpcli6 connects to ${HOST_V4[s4]}:$SRV4_PORT" "tcpcli6.*${HOST_V4[s4]//./\\.}:$SRV4_PORT" \
		"$(grep 'tcpcli6' "$WORK/report.txt" | grep "${HOST_V4[s4]}:$SRV4_PORT" | head -n 1)" \
		"a line naming tcpcli6 and ${HOST_V4[s4]}:$SRV4_PORT"
	# JSON (docs/report-format.md): our programs told apart by network namespace.
	if "$DSTRACE" report --json "$AUDIT.1" "$AUDIT" >"$WORK/report.json" 2>"$WORK/report-json.err"; then
		rj() { # rj ROLE EXE JQ: JQ applied to that program of the JSON report
			jq -c --argjson ns "$(netns_inode "$1")" --arg exe "$2" \
				"[.programs[] | select(.netns == \$ns and (.exe | endswith(\"/\" + \$exe)))] | if length == 1 then .[0] | $3 else \"\\(length) programs\" end" \
				"$WORK/report.json"
		}
		check_eq "report --json: tcpserv6 listens on $SRV6_PORT, would break both ways" \
			"[[$SRV6_PORT],true,true,$N4]" \
			"$(rj sds tcpserv6 '[.listen_ports, .verdict.breaks_without_ipv4, .verdict.breaks_with_bindv6only, .accept.tcp]')"
		check_eq "report --json: the v6-only tcpcli6 already fails ($NF ENETUNREACH), depends on nothing" \
			"[false,true,$NF]" "$(rj cv tcpcli6 '[.depends, .verdict.already_failing, .failed.by_errno.ENETUNREACH]')"
		check_eq "report --json: the mapped tcpcli6 depends, $N6 connects" \
			"[true,true,$N6]" "$(rj cds tcpcli6 '[.depends, .verdict.breaks_without_ipv4, .connect.tcp]')"
		check_eq "report --json: the UDP receiver would stop receiving on $UDP_PORT" \
			"[true,$D]" "$(rj sds udp6 '[.verdict.breaks_without_ipv4, .received.udp_datagrams]')"
	else
		fail "dstrace report --json FILE.1 FILE" "expected exit 0, got: $(head -n 2 "$WORK/report-json.err")"
	fi
	log "report (first lines): $(head -n 5 "$WORK/report.txt")"
fi

# ===========================================================================================
# 4. A restart appends.
# ===========================================================================================
R=$WORK/restart.jsonl
for n in 1 2; do
	if dstrace_start_raw "$WORK/restart$n.stdout" --audit -o "$R" -i 1; then
		wait_line "$R" "\"type\":\"audit_run\".*\"final\":false" 10 || true
		sleep 1.2
		dstrace_stop_sig TERM "restart: run $n exits 0 after SIGTERM"
	fi
	[[ $n == 1 ]] && cp "$R" "$R.first" 2>/dev/null
done
if [[ -s $R.first ]]; then
	if cmp -s -n "$(stat -c %s "$R.first")" "$R.first" "$R"; then
		pass "restart: the first run's records are still there, unchanged" "$(wc -l <"$R.first") lines, file now $(wc -l <"$R") lines"
	else
		fail "restart: the first run's records are still there, unchanged" "expected $R to start with the $(wc -l <"$R.first") lines of run 1, got: $(head -c 300 "$R")"
	fi
	check_eq "restart: two runs, two run ids, each ending with a final audit_run" "2 runs, 2 final" \
		"$(jq -r .run "$R" | uniq | wc -l) runs, $(jq -c 'select(.type == "audit_run" and .final)' "$R" | wc -l) final"
	check_eq "restart: the run ids differ" 2 "$(jq -r .run "$R" | sort -u | wc -l)"
	check_eq "restart: whole JSON lines" ok "$(json_lines_ok "$R")"
else
	fail "restart" "the first run wrote nothing to $R"
fi

# ===========================================================================================
# 5. SIGHUP when the file cannot be reopened: its directory has become a file.
# ===========================================================================================
HD=$WORK/hupdir
mkdir -p "$HD"
if dstrace_start_raw "$WORK/hup.stdout" --audit -o "$HD/audit.jsonl" -i 1; then
	wait_line "$HD/audit.jsonl" '"type":"audit_run"' 10 || fail "SIGHUP, unwritable" "no first set in $HD/audit.jsonl"
	mv "$HD" "$HD.moved"
	echo "not a directory" >"$HD"
	lines_before=$(wc -l <"$HD.moved/audit.jsonl")
	kill -HUP "$DSTRACE_PID"
	hup_pid=$DSTRACE_PID
	wait_line "$DSTRACE_LOG" "$HD" 5 || true
	sleep 2.5 # what does it do next: exit, or keep auditing?
	err_line=$(grep -v '^Tracing' "$DSTRACE_LOG" | head -n 3)
	check_match "SIGHUP with an unwritable path: the error is on stderr, naming the file and why" \
		"hupdir/audit\.jsonl.*(Not a directory|ENOTDIR)" "$err_line" "a line naming $HD/audit.jsonl and 'Not a directory'"
	# Decided behaviour: report it, keep writing to the file already open (no record thrown
	# away), retry the reopen every interval.
	if proc_alive "$hup_pid"; then
		pass "SIGHUP with an unwritable path: dstrace keeps auditing" "still running 2.5 s later"
		grown=$(($(wc -l <"$HD.moved/audit.jsonl") - lines_before))
		check_match "SIGHUP with an unwritable path: records keep going to the file already open" \
			'^[1-9][0-9]*$' "$grown" "more lines in the old file after the HUP"
		dstrace_stop_sig TERM "SIGHUP with an unwritable path: dstrace still stops cleanly"
		check_eq "SIGHUP with an unwritable path: the final set is in the file already open" 1 \
			"$(jq -c 'select(.type == "audit_run" and .final)' "$HD.moved/audit.jsonl" | wc -l)"
	else
		wait "$hup_pid"
		DSTRACE_PID=
		fail "SIGHUP with an unwritable path: dstrace keeps auditing" "expected it to keep running and writing to the old file, got exit status $?"
	fi
	rm -f "$HD"
fi

# ===========================================================================================
# 6. kill -9: nothing stays loaded or attached.
# ===========================================================================================
CG2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
for b in fentry kprobe tracepoint; do
	if ! "$DSTRACE" --backend "$b" -d 1 -o /dev/null 2>"$WORK/probe-$b.err"; then
		log "backend $b does not run on this kernel: $(grep -v '^Tracing' "$WORK/probe-$b.err" | head -n 1)"
		continue
	fi
	dstrace_start_raw "$WORK/k9-$b.stdout" --audit -o "$WORK/k9-$b.jsonl" -i 1 --backend "$b" || continue
	k9=$DSTRACE_PID
	mapfile -t ids < <(bpf_prog_ids "$k9")
	idsjson=$(printf '%s\n' "${ids[@]}" | jq -sc 'map(select(. != null))')
	names=$(bpftool prog show -j | jq -r --argjson ids "$idsjson" '.[] | select(.id as $i | $ids | index($i)) | .name' | sort | tr '\n' ' ')
	cg_tree() { bpftool cgroup tree "$CG2" -j 2>/dev/null | jq -c '[.[]? | .programs[]? | .id]'; }
	cg_ours=$(cg_tree | jq -c --argjson ids "$idsjson" 'map(select(. as $i | $ids | index($i)))')
	log "backend $b: pid $k9 holds programs ${ids[*]}: $names; attached to cgroups: $cg_ours"
	check_match "kill -9 ($b): dstrace's programs found" '^((tp|cg|fx|kp|sk|ifl|cp|rs|lc)_[a-z0-9_]+ )+$' \
		"$names" "program names tp_*, cg_*, fx_*, kp_*, sk_*, ifl_*, cp_*, rs_*, lc_*"
	if [[ $b == tracepoint ]]; then
		check_match "kill -9 ($b): cgroup programs attached to $CG2" '^\[[0-9]' "$cg_ours" "cgroup program ids"
	fi
	kill -KILL "$k9"
	wait "$k9" 2>/dev/null
	DSTRACE_PID=
	deadline=$((SECONDS + 5))
	while :; do
		left=$(bpftool prog show -j | jq -c --argjson ids "$idsjson" '[.[] | select(.id as $i | $ids | index($i)) | "\(.id):\(.name)"]')
		cg_left=$(cg_tree | jq -c --argjson ids "$idsjson" 'map(select(. as $i | $ids | index($i)))')
		[[ $left == "[]" && $cg_left == "[]" ]] && break
		[[ $SECONDS -ge $deadline ]] && break
		sleep 0.2
	done
	check_eq "kill -9 ($b): none of its ${#ids[@]} BPF programs still loaded (bpftool prog show)" "[]" "$left"
	check_eq "kill -9 ($b): none of its programs still attached to a cgroup (bpftool cgroup tree)" "[]" "$cg_left"
done


# ===========================================================================================
# 7. Bounded memory: 100 000 distinct UDP flows (more than the kernel's 65 536-flow table):
#    resident memory stays under 64 MiB, every datagram is counted, what the bounded tables
#    could not hold is counted (evictions, peers_dropped), nothing is silently lost.
# ===========================================================================================
lo_host_add rss
RSS_LIMIT_KB=$((64 * 1024))
# The bound is for the binary users run: AddressSanitizer's shadow memory and quarantine
# would measure ASan. make test builds both.
asan_dstrace=$DSTRACE
DSTRACE=${RSS_DSTRACE:-$REPO_ROOT/dstrace}
log "section 7 runs $DSTRACE (the release build)"
if dstrace_start_raw "$WORK/rss.stdout" --audit -o "$WORK/rss.jsonl" -i 2; then
	run_in rss 60 "$WORK/rss-flows" "$PROGS/udpflows" send -m sendmmsg -a 250 -p 400 -r 1 -s 16 \
		-k 127.0.0.1 20000
	check_eq "100 000 flows: the sender ran" 0 "$RUN_RC"
	sleep 3 # two harvests
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$DSTRACE_PID/status")
	log "100 000 flows: dstrace VmHWM ${hwm} kB"
	if [[ $hwm -lt $RSS_LIMIT_KB ]]; then
		pass "100 000 flows: peak resident memory under 64 MiB" "${hwm} kB"
	else
		fail "100 000 flows: peak resident memory under 64 MiB" "expected < $RSS_LIMIT_KB kB, got ${hwm} kB"
	fi
	dstrace_stop_sig TERM "100 000 flows: dstrace stops cleanly"
	rec=$(jq -c --argjson ns "$(netns_inode rss)" \
		'select(.type == "audit" and .netns == $ns and (.exe | endswith("/udpflows")))' \
		"$WORK/rss.jsonl" | tail -n 1)
	check_eq "100 000 flows: every datagram counted" 100000 "$(jq -r '.sent.udp_datagrams' <<<"$rec")"
	run=$(jq -c 'select(.type == "audit_run" and .final)' "$WORK/rss.jsonl" | tail -n 1)
	evicted=$(jq -r '.evictions' <<<"$run")
	check_match "100 000 flows: evictions from the 65 536-flow kernel table are counted" \
		'^[1-9][0-9]*$' "$evicted" "a positive count"
	# Each flow is one datagram to its own (address, port): it is one of the 1024 peers the
	# program's table keeps (one datagram each), counted in peers_dropped, or its flow was
	# evicted before a harvest saw it.
	accounted=$(($(jq -r '.peers_dropped' <<<"$rec") + 1024 + evicted))
	if [[ $accounted -ge 100000 ]]; then
		pass "100 000 flows: every datagram is in a peer, peers_dropped or an eviction" "$accounted >= 100000"
	else
		fail "100 000 flows: every datagram is in a peer, peers_dropped or an eviction" "expected >= 100000, got $accounted"
	fi
fi
DSTRACE=$asan_dstrace

summary
