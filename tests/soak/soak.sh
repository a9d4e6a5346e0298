#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The soak (issue 9): dstrace as the days-long audit daemon, under everything at once, for
# SOAK_SECONDS (default 600; `make soak`). A short version (tests/e2e/test_soak.sh, 45 s)
# runs inside `make test`.
#
# dstrace runs as dist/dstrace.service runs it, `--audit -o FILE -i 1 --metrics ADDR
# --metrics-file PATH`, in a network namespace of the test (so its metrics listener is
# there), with FILE and PATH on a small tmpfs of the test. Meanwhile, until the end:
#   - churn: batches of short-lived processes (tests/progs/churn, as soak-churn), each child
#     one mapped TCP connect to ::ffff:127.0.0.1, accepted by its parent;
#   - datagrams: short-lived senders (tests/progs/udp6 as soak-udpsend), one after another,
#     each SOAK_DGRAMS mapped datagrams to an echoing receiver (udp6 as soak-udprecv) and
#     waiting for every echo, cycling through sendto, sendmsg, sendmmsg and connect+send,
#     from one of 8 local ports (the programs' peer tables never overflow: drops stay 0);
#   - hostile HTTP clients on /metrics (tests/progs/slowhttp.py): slow ones that send a byte
#     every half second, idle ones that send nothing, reconnecting whenever cut;
#   - a regular scrape of /metrics every second;
#   - rotations, as logrotate does them: mv FILE FILE.rot, SIGHUP, and once dstrace has made
#     the new FILE, FILE.rot moves off the tmpfs (every SOAK_ROTATE_SECONDS);
#   - one disk-full episode, from 40 % to 60 % of the run: a filler file takes all the
#     tmpfs's space (and what is freed meanwhile), then is removed.
# Then the workload stops, dstrace gets SIGTERM, and the checks: dstrace ran to the end and
# exited 0 promptly; every line of every audit file (rotated ones too) is whole JSON; one
# run across the files, each file after the first starting with a full set, the last one
# ending with the final set; the exact totals the workload made (connects, accepts,
# datagrams sent and received, processes), by `dstrace report` over all the files, by the
# final set, and by the last scrape; drops all zero and counted alike in the final
# audit_run, the report and the metrics; the failed writes counted (audit_run, report,
# metrics and stderr agree); every scrape answered 200; every hostile client cut; peak RSS
# (VmHWM, sampled every second) under SOAK_RSS_MAX_MB, and for the release build from 60 s on,
# VmRSS flat after the first minute. The figures are printed at the end.
#
#   sudo tests/soak/soak.sh                      # 600 s, ./dstrace (make soak)
#   sudo SOAK_SECONDS=120 tests/soak/soak.sh
#   sudo DSTRACE=$PWD/dstrace-san tests/soak/soak.sh   # the ASan+UBSan build
#
# Environment: SOAK_SECONDS (600), SOAK_ROTATE_SECONDS (SOAK_SECONDS / 8, 5 to 60),
# SOAK_CHURN_BATCH (children per churn run, 200), SOAK_CHURN_JOBS (16), SOAK_DGRAMS (10),
# SOAK_SLOW (12 slow clients), SOAK_IDLE (4 idle clients), SOAK_RSS_MAX_MB (64, as
# test_audit.sh's bound for the release build; 512 for a sanitizer build, whose shadow
# memory and quarantine are ASan's), and lib.sh's DSTRACE, PROGS, KEEP_WORK. Takes the machine lock
# (/run/dstrace-machine.lock) like every e2e suite. Ends with "N passed, N failed".
set -u
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

SOAK_SECONDS=${SOAK_SECONDS:-600}
ROT=${SOAK_ROTATE_SECONDS:-$((SOAK_SECONDS / 8))}
((ROT < 5)) && ROT=5
((ROT > 60)) && ROT=60
BATCH=${SOAK_CHURN_BATCH:-200}
JOBS=${SOAK_CHURN_JOBS:-16}
DGRAMS=${SOAK_DGRAMS:-10}
NSLOW=${SOAK_SLOW:-12}
NIDLE=${SOAK_IDLE:-4}
TCP_PORT=9860
UDP_PORT=9861
MPORT=9862
UDP_LPORT=9870 # to 9877
ROLE=soak

need_root
build_progs
need_tools curl jq python3
if ((SOAK_SECONDS < 30)); then
	fail "SOAK_SECONDS" "expected at least 30 (a disk-full episode of 4 intervals and rotations), got $SOAK_SECONDS"
	summary
	exit 1
fi
# A sanitizer build (the ASan shadow memory and quarantine) needs a bound of its own.
if grep -q __asan_init "$DSTRACE" 2>/dev/null; then
	RSS_MAX_MB=${SOAK_RSS_MAX_MB:-512}
	BUILD=asan
else
	RSS_MAX_MB=${SOAK_RSS_MAX_MB:-64}
	BUILD=release
fi

# --- the scene -----------------------------------------------------------------------------
BIN=$WORK/bin
FS=$WORK/fs  # the tmpfs: the audit file and the metrics file
ROTATED=$WORK/rotated
mkdir -p "$BIN" "$FS" "$ROTATED"
cp "$PROGS/churn" "$BIN/soak-churn"
cp "$PROGS/udp6" "$BIN/soak-udpsend"
cp "$PROGS/udp6" "$BIN/soak-udprecv"
if ! mount -t tmpfs -o size=4m,mode=0755 dstrace-soak "$FS"; then
	fail "tmpfs" "expected a 4 MiB tmpfs on $FS, got mount failure"
	summary
	exit 1
fi
soak_cleanup() {
	touch "$WORK/stop" 2>/dev/null
	# keep what the tmpfs held with the logs (when they are kept)
	cp -a "$FS/." "$WORK/fs-copy/" 2>/dev/null
	umount -l "$FS" 2>/dev/null
}
mkdir -p "$WORK/fs-copy"
trap 'soak_cleanup; cleanup' EXIT
AUD=$FS/audit.jsonl
PROM=$FS/dstrace.prom
STOP=$WORK/stop

lo_host_add "$ROLE"
NSINO=$(netns_inode "$ROLE")

# The workloads: loops in the namespace until STOP exists, one result line per process.
cat >"$WORK/churn-loop.sh" <<'EOF'
# churn-loop.sh CHURN BATCH JOBS PORT STOP LOG
while [ ! -e "$5" ]; do
	line=$("$1" -j "$3" "$2" "$4" 2>>"$6.err")
	echo "$line rc=$?" >>"$6"
	sleep 0.2
done
EOF
cat >"$WORK/udp-loop.sh" <<'EOF'
# udp-loop.sh SEND DGRAMS PORT STOP LOG LPORT: senders one after another, bound to one of 8
# local ports from LPORT (so the receiver's peers stay few: no peer is dropped)
methods="sendto sendmsg sendmmsg connect"
i=0
while [ ! -e "$4" ]; do
	m=$(echo $methods | cut -d' ' -f$((i % 4 + 1)))
	line=$("$1" send -m "$m" -n "$2" -s 64 -l $(($6 + i % 8)) -w ::ffff:127.0.0.1 "$3" 2>>"$5.err")
	echo "$line rc=$?" >>"$5"
	i=$((i + 1))
done
EOF
cat >"$WORK/scrape-loop.sh" <<'EOF'
# scrape-loop.sh URL STOP LOG LAST: a scrape a second; "CODE SECONDS" per scrape.
while [ ! -e "$2" ]; do
	r=$(curl -s -m 3 -o "$4.tmp" -w '%{http_code} %{time_total}' "$1")
	echo "$r" >>"$3"
	[ "${r%% *}" = 200 ] && mv "$4.tmp" "$4"
	sleep 1
done
EOF
cat >"$WORK/rss-loop.sh" <<'EOF'
# rss-loop.sh PID STOP LOG: "SECONDS VmHWM_kB VmRSS_kB" every second, "gone SECONDS" if PID ends.
t0=$(date +%s)
while [ ! -e "$2" ]; do
	s=$(cat "/proc/$1/status" 2>/dev/null)
	if [ -z "$s" ] || [ ! -e "/proc/$1" ]; then
		echo "gone $(($(date +%s) - t0))" >>"$3"
		break
	fi
	hwm=$(echo "$s" | awk '$1 == "VmHWM:" { print $2 }')
	rss=$(echo "$s" | awk '$1 == "VmRSS:" { print $2 }')
	echo "$(($(date +%s) - t0)) $hwm $rss" >>"$3"
	sleep 1
done
EOF

# --- start ---------------------------------------------------------------------------------
log "soak: $SOAK_SECONDS s, $BUILD build ($DSTRACE), rotation every $ROT s, RSS bound $RSS_MAX_MB MiB"
bg_start RECV_PID "$ROLE" "$WORK/udprecv" "$BIN/soak-udprecv" recv -e -n 100000000 -t 3600 "$UDP_PORT"
if ! wait_line "$WORK/udprecv.out" '^listening' 5; then
	fail "soak-udprecv ready" "expected 'listening' within 5 s, got: $(cat "$WORK/udprecv.err")"
	summary
	exit 1
fi
if ! dstrace_start_in "$ROLE" /dev/null --audit -o "$AUD" -i 1 \
	--metrics "127.0.0.1:$MPORT" --metrics-file "$PROM"; then
	summary
	exit 1
fi
DPID=$DSTRACE_PID
T0=$SECONDS
bg_start RSS_PID "$ROLE" "$WORK/rss" bash "$WORK/rss-loop.sh" "$DPID" "$STOP" "$WORK/rss.log"
bg_start CHURN_LOOP "$ROLE" "$WORK/churn-loop" bash "$WORK/churn-loop.sh" "$BIN/soak-churn" \
	"$BATCH" "$JOBS" "$TCP_PORT" "$STOP" "$WORK/churn.log"
bg_start UDP_LOOP "$ROLE" "$WORK/udp-loop" bash "$WORK/udp-loop.sh" "$BIN/soak-udpsend" \
	"$DGRAMS" "$UDP_PORT" "$STOP" "$WORK/udp.log" "$UDP_LPORT"
bg_start SLOW_PID "$ROLE" "$WORK/slowhttp" python3 "$REPO_ROOT/tests/progs/slowhttp.py" \
	--stop "$STOP" 127.0.0.1 "$MPORT" "$NSLOW" "$NIDLE" "$WORK/slowhttp.log"
bg_start SCRAPE_LOOP "$ROLE" "$WORK/scrape-loop" bash "$WORK/scrape-loop.sh" \
	"http://127.0.0.1:$MPORT/metrics" "$STOP" "$WORK/scrape.log" "$WORK/last.prom"

# --- the timeline: rotations, one disk-full episode ----------------------------------------
FULL_AT=$((SOAK_SECONDS * 2 / 5))
FULL_END=$((SOAK_SECONDS * 3 / 5))
((FULL_END - FULL_AT < 5)) && FULL_END=$((FULL_AT + 5))
ROTATIONS=0
ROT_FAILED=0
FULL_STATE=before # before, full, freed
FILLER_BYTES=0
next_rot=$ROT
died_at=
rotate() {
	local n=$((ROTATIONS + 1)) deadline
	mv "$AUD" "$AUD.rot" || {
		ROT_FAILED=$((ROT_FAILED + 1))
		return
	}
	kill -HUP "$DPID"
	deadline=$((SECONDS + 5))
	until [[ -e $AUD ]]; do
		if [[ $SECONDS -ge $deadline ]]; then
			fail "rotation $n" "expected dstrace to make a new $AUD within 5 s of SIGHUP, got none"
			ROT_FAILED=$((ROT_FAILED + 1))
			return
		fi
		sleep 0.05
	done
	# dstrace made the new file: the old one is closed; it leaves the tmpfs (copy + unlink)
	mv "$AUD.rot" "$ROTATED/audit.jsonl.$(printf %03d "$n")"
	ROTATIONS=$n
}
while :; do
	t=$((SECONDS - T0))
	[[ $t -ge $SOAK_SECONDS ]] && break
	if ! proc_alive "$DPID"; then
		died_at=$t
		break
	fi
	case $FULL_STATE in
	before)
		if [[ $t -ge $FULL_AT ]]; then
			dd if=/dev/zero of="$FS/filler" bs=4k 2>/dev/null # until ENOSPC
			FILLER_BYTES=$(stat -c %s "$FS/filler")
			log "t=${t}s disk full: filler $FILLER_BYTES bytes, $(df -k --output=avail "$FS" | tail -n 1 | tr -d ' ') kB left"
			FULL_STATE=full
		fi
		;;
	full)
		if [[ $t -ge $FULL_END ]]; then
			rm -f "$FS"/filler*
			log "t=${t}s disk freed: $(df -k --output=avail "$FS" | tail -n 1 | tr -d ' ') kB free"
			FULL_STATE=freed
			FREED_AT=$t
		else
			# what dstrace's cut-back writes free, taken too
			dd if=/dev/zero of="$FS/filler2" bs=4k oflag=append conv=notrunc 2>/dev/null
		fi
		;;
	esac
	# no rotation while the disk is full, or in the 2 s around it
	if [[ $t -ge $next_rot ]]; then
		if [[ $FULL_STATE == full || ($t -ge $((FULL_AT - 2)) && $t -lt $FULL_AT) ||
			($FULL_STATE == freed && $t -lt $((FREED_AT + 3))) ]]; then
			:
		else
			rotate
			next_rot=$((t + ROT))
		fi
	fi
	sleep 0.5
done
ELAPSED=$((SECONDS - T0))

# --- stop ----------------------------------------------------------------------------------
touch "$STOP"
for pid in "$CHURN_LOOP" "$UDP_LOOP" "$SCRAPE_LOOP" "$SLOW_PID" "$RSS_PID"; do
	wait_pid "$pid" 60 || {
		fail "workload ends" "expected pid $pid to end within 60 s of the stop, got still running"
		stop_pid "$pid"
	}
done
stop_pid "$RECV_PID"
check_eq "dstrace ran for the whole soak" "ran ${SOAK_SECONDS}s+" \
	"$([[ -z $died_at ]] && proc_alive "$DPID" && echo "ran ${SOAK_SECONDS}s+" || echo "ended after ${died_at:-$ELAPSED}s")"
check_eq "the disk-full episode happened and ended" "freed" "$FULL_STATE"
# the last processes' ends are folded within a second, the snapshot is at most a second old
sleep 2.5
FINAL_SCRAPE=$WORK/final.prom
in_ns "$ROLE" curl -s -m 5 -o "$FINAL_SCRAPE" -w '%{http_code}' "http://127.0.0.1:$MPORT/metrics" >"$WORK/final.code"
check_eq "the final scrape" 200 "$(cat "$WORK/final.code")"
T_STOP0=$(date +%s%3N)
dstrace_stop_sig TERM "dstrace exit status after SIGTERM"
STOP_MS=$(($(date +%s%3N) - T_STOP0))
if [[ $STOP_MS -le 5000 ]]; then
	pass "SIGTERM to exit" "expected at most 5000 ms, got $STOP_MS ms"
else
	fail "SIGTERM to exit" "expected at most 5000 ms, got $STOP_MS ms"
fi
cp -a "$FS/." "$WORK/fs-copy/"
FILES=("$ROTATED"/audit.jsonl.* "$AUD")
[[ -e ${FILES[0]} ]] || FILES=("$AUD")

# --- the workload's own figures ------------------------------------------------------------
# churn: "churn children=N connected=C failed=F accepted=A ... rc=R", one line per run
read -r CH_RUNS CH_CHILDREN CH_CONNECTED CH_FAILED CH_ACCEPTED CH_BAD < <(awk '
	{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	  runs++; ch += v["children"]; co += v["connected"]; fa += v["failed"]; ac += v["accepted"]
	  if (v["rc"] != 0 || $1 != "churn") bad++ }
	END { print runs + 0, ch + 0, co + 0, fa + 0, ac + 0, bad + 0 }' "$WORK/churn.log")
# udp: "sent count=N ... method=M ... echoed=E rc=R", one line per sender
read -r U_PROCS U_SENT U_ECHOED U_CONNECTS U_BAD < <(awk '
	{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	  n++; if ($1 != "sent" || v["rc"] != 0) { bad++; next }
	  s += v["count"]; e += v["echoed"]; if (v["method"] == "connect") c++ }
	END { print n + 0, s + 0, e + 0, c + 0, bad + 0 }' "$WORK/udp.log")
check_eq "the workload: every churn run and every child connected and was accepted" \
	"bad=0 failed=0 accepted=$CH_CONNECTED" "bad=$CH_BAD failed=$CH_FAILED accepted=$CH_ACCEPTED"
check_eq "the workload: every sender sent its $DGRAMS datagrams and got them echoed" \
	"bad=0 echoed=$((U_PROCS * DGRAMS)) sent=$((U_PROCS * DGRAMS))" \
	"bad=$U_BAD echoed=$U_ECHOED sent=$U_SENT"
check_match "the workload ran" '^runs=[1-9][0-9]* senders=[1-9][0-9]*$' \
	"runs=$CH_RUNS senders=$U_PROCS" "some churn runs and senders"

# --- audit files: whole lines, one run, full sets ------------------------------------------
torn=0
bad_files=()
for f in "${FILES[@]}"; do
	w=$(json_lines_ok "$f")
	if [[ $w != ok ]]; then
		torn=$((torn + 1))
		bad_files+=("${f##*/}: $w")
	fi
done
check_eq "every line of the ${#FILES[@]} audit files is whole JSON (none torn)" "0 bad" \
	"$torn bad${bad_files[*]:+: ${bad_files[*]}}"
check_match "rotations: every one done (at least 2), one file each, plus the current file" \
	"^rotations=([2-9]|[1-9][0-9]+) failed=0 files=$((ROTATIONS + 1))\$" \
	"rotations=$ROTATIONS failed=$ROT_FAILED files=${#FILES[@]}"
check_eq "one dstrace run across all the files" 1 \
	"$(cat "${FILES[@]}" | jq -R -r 'fromjson? | select(.type == "audit_run") | .run' | sort -u | wc -l)"
# The first audit_run of each file after the first: a full set (written == programs).
notfull=0
for f in "${FILES[@]:1}"; do
	first=$(jq -R -c 'fromjson? | select(.type == "audit_run") | [.written, .programs]' "$f" | head -n 1)
	[[ $first =~ ^\[([0-9]+),([0-9]+)\]$ && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]] ||
		notfull=$((notfull + 1))
done
check_eq "each file after a rotation starts with a full set" "0 not full" "$notfull not full"
FINAL_RUN=$(jq -R -c 'fromjson? | select(.type == "audit_run")' "$AUD" | tail -n 1)
check_eq "the last file ends with the final set" "audit_run final=true" \
	"$(tail -n 1 "$AUD" | jq -r '"\(.type) final=\(.final)"')"

# --- exact totals --------------------------------------------------------------------------
CH_PIDS=$((CH_CHILDREN + CH_RUNS))
WANT_CHURN="connect.tcp=$CH_CONNECTED accept.tcp=$CH_ACCEPTED failed=0 pids=$CH_PIDS"
WANT_SEND="connect.udp=$U_CONNECTS sent.udp_datagrams=$U_SENT received.udp_datagrams=$U_ECHOED failed=0 pids=$U_PROCS"
WANT_RECV="sent.udp_datagrams=$U_ECHOED received.udp_datagrams=$U_SENT failed=0 pids=1"
REPORT=$WORK/report.json
"$DSTRACE" report --json "${FILES[@]}" >"$REPORT" 2>"$WORK/report.err"
check_eq "dstrace report: exit status" 0 "$?"
# from_report EXE PIDS_FIELD: the program's totals, as WANT_* say them
totals() { # totals JSON_PROGRAM_STREAM PIDS_KEY
	jq -r --arg pk "$1" '"connect.tcp=\(.connect.tcp) accept.tcp=\(.accept.tcp) connect.udp=\(.connect.udp) sent.udp_datagrams=\(.sent.udp_datagrams) received.udp_datagrams=\(.received.udp_datagrams) failed=\(.failed.total) pids=\(.[$pk])"'
}
pick() { # pick WANT GOT: the fields of GOT that WANT names, in WANT's order
	local w out=() g
	for w in $1; do
		for g in $2; do
			[[ ${g%%=*} == "${w%%=*}" ]] && out+=("$g")
		done
	done
	echo "${out[*]}"
}
for exe in soak-churn soak-udpsend soak-udprecv; do
	case $exe in
	soak-churn) want=$WANT_CHURN ;;
	soak-udpsend) want=$WANT_SEND ;;
	soak-udprecv) want=$WANT_RECV ;;
	esac
	got=$(jq -c --argjson ns "$NSINO" --arg exe "/$exe" \
		'.programs[] | select(.netns == $ns and (.exe | endswith($exe)))' "$REPORT" | totals pids_max)
	check_eq "exact totals, dstrace report over all the files: $exe" "$want" "$(pick "$want" "$got")"
	got=$(jq -R -c --argjson ns "$NSINO" --arg exe "/$exe" \
		'fromjson? | select(.type == "audit" and .netns == $ns and (.exe | endswith($exe)))' "$AUD" |
		tail -n 1 | totals pids)
	check_eq "exact totals, the final set: $exe" "$want" "$(pick "$want" "$got")"
done
# metrics by comm (the whole machine: only this test runs soak-* programs)
series() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
check_eq "exact totals, the last scrape: soak-churn connects and accepts, soak-udpsend datagrams" \
	"connect=$CH_CONNECTED accept=$CH_ACCEPTED send=$U_SENT" \
	"connect=$(series "$FINAL_SCRAPE" 'dstrace_mapped_events_total{event="connect",proto="tcp",comm="soak-churn",runtime="",qos=""}') accept=$(
		series "$FINAL_SCRAPE" 'dstrace_mapped_events_total{event="accept",proto="tcp",comm="soak-churn",runtime="",qos=""}') send=$(
		series "$FINAL_SCRAPE" 'dstrace_mapped_events_total{event="send",proto="udp",comm="soak-udpsend",runtime="",qos=""}')"

# --- drops, write errors, completeness -----------------------------------------------------
# missed: the state-change program's runs the kernel skipped and nothing made up for (a
# softirq in the kernel's own prologue of its run; rare, counted), not a fault of the run
ZERO_DROPS='{"lost":0,"proc_full":0,"stash_full":0,"recv_unknown":0,"flows_evicted":0,"programs":0,"pids":0,"ports":0,"peers":0}'
DROPS=$(jq -c .drops <<<"$FINAL_RUN")
log "drops.missed in the final audit_run: $(jq -c .missed <<<"$DROPS")"
check_eq "drops in the final audit_run: none (but missed)" "$ZERO_DROPS" "$(jq -c 'del(.missed)' <<<"$DROPS")"
check_eq "the report counts the same drops (what may be missing), no malformed line, a final set" \
	"drops=$DROPS malformed=0 runs_without_final=0" \
	"$(jq -r '"drops=\(.completeness.drops | tojson) malformed=\(.input.malformed_lines) runs_without_final=\(.completeness.runs_without_final)"' "$REPORT")"
check_eq "the metrics count the same drops" \
	"$(jq -r 'to_entries | map("\(.key)=\(.value)") | join(" ")' <<<"$DROPS")" \
	"$(for w in lost proc_full stash_full recv_unknown missed flows_evicted programs pids ports peers; do
		printf '%s=%s ' "$w" "$(series "$FINAL_SCRAPE" "dstrace_dropped_total{what=\"$w\"}")"
	done | sed 's/ $//')"
WERR=$(jq -r .write_errors <<<"$FINAL_RUN")
check_match "write failures counted in the final audit_run" '^[1-9][0-9]*$' "$WERR" "a positive count"
check_eq "write failures: the report, the metrics and stderr's 'after N failed writes' agree" \
	"report=$WERR metrics=$WERR stderr=$WERR" \
	"report=$(jq -r .completeness.write_errors "$REPORT") metrics=$(series "$FINAL_SCRAPE" dstrace_audit_write_errors_total) stderr=$(
		grep -o 'again, after [0-9]* failed writes' "$DSTRACE_LOG" | awk '{ s += $3 } END { print s + 0 }')"
check_eq "stderr: each run of failed audit writes said once, then that writes worked again" \
	"said=ok" "said=$(awk '/cannot write audit records to .*No space left on device/ { c++ }
		/audit records written to .* again/ { a++ } END { print (c >= 1 && c == a) ? "ok" : "cannot=" c + 0 " again=" a + 0 }' "$DSTRACE_LOG")"
check_eq "stderr: nothing but the start line and the write failures and recoveries" "" \
	"$(grep -v -e '^Tracing' -e 'cannot write audit records to .*No space left on device' \
		-e 'audit records written to .* again' -e "cannot write metrics file '$PROM'.*No space left on device" \
		-e "metrics file '$PROM' written again" "$DSTRACE_LOG" | head -n 5)"
check_eq "the metrics file: written again after the disk was freed, whole" "ok" \
	"$(awk '/metrics file/ { last = $0 } END { print (last == "" || last ~ /written again/) ? "" : "last: " last }' "$DSTRACE_LOG")$(
		grep -q '^dstrace_audit_write_errors_total ' "$PROM" && grep -q '^dstrace_build_info' "$PROM" && echo ok)"

# --- scrapes, hostile clients, RSS ---------------------------------------------------------
read -r SCRAPES SCRAPES_OK SCRAPE_MAX < <(awk '{ n++; if ($1 == "200") ok++; if ($2 > m) m = $2 }
	END { printf "%d %d %.3f\n", n, ok, m }' "$WORK/scrape.log")
check_eq "every scrape answered 200 (slowest ${SCRAPE_MAX} s)" "$SCRAPES of $SCRAPES" "$SCRAPES_OK of $SCRAPES"
check_match "scrapes: about one a second" '^ok$' \
	"$( ((SCRAPES * 2 >= ELAPSED)) && echo ok || echo "$SCRAPES in $ELAPSED s")" "at least one every 2 s"
SLOW_DONE=$(grep '^done' "$WORK/slowhttp.log")
read -r SLOW_CUTS_IDLE SLOW_CUTS_SLOW < <(awk '$1 == "cut" { c[$2]++ } END { print c["idle"] + 0, c["slow"] + 0 }' "$WORK/slowhttp.log")
check_eq "hostile clients: all connected, every one cut at least once, none refused" \
	"all connected, idle cuts>=$NIDLE, slow cuts>=$NSLOW, refused=0" \
	"$(grep -q '^all connected' "$WORK/slowhttp.log" && echo "all connected" || echo "not all connected"), idle cuts$(
		((SLOW_CUTS_IDLE >= NIDLE)) && echo ">=$NIDLE" || echo "=$SLOW_CUTS_IDLE"), slow cuts$(
		((SLOW_CUTS_SLOW >= NSLOW)) && echo ">=$NSLOW" || echo "=$SLOW_CUTS_SLOW"), refused=$(kv "$SLOW_DONE" refused)"
read -r RSS_SAMPLES PEAK_KB RSS_FIRST RSS_LAST GONE < <(awk '
	$1 == "gone" { gone = $2; next }
	{ n++; if ($2 > p) p = $2; if (n == 1) f = $3; l = $3 }
	END { print n + 0, p + 0, f + 0, l + 0, gone == "" ? "-" : gone }' "$WORK/rss.log")
check_eq "RSS sampler: dstrace there at every sample" "-" "$GONE"
if ((RSS_SAMPLES > 0 && PEAK_KB > 0 && PEAK_KB <= RSS_MAX_MB * 1024)); then
	pass "peak RSS (VmHWM, $RSS_SAMPLES samples) within the bound" "expected at most $RSS_MAX_MB MiB, got $((PEAK_KB / 1024)) MiB ($PEAK_KB kB)"
else
	fail "peak RSS (VmHWM, $RSS_SAMPLES samples) within the bound" "expected at most $RSS_MAX_MB MiB, got $((PEAK_KB / 1024)) MiB ($PEAK_KB kB)"
fi

# Flat: the VmRSS sample after the first minute (halfway, for a soak under two minutes)
# against the last one, within 10 % or 2 MiB (as test_audit.sh's soak). Not for a sanitizer
# build: ASan's quarantine of freed memory grows by design.
ref_at=$((SOAK_SECONDS >= 120 ? 60 : SOAK_SECONDS / 2))
read -r REF_T REF_KB < <(awk -v t="$ref_at" '$1 != "gone" && $1 >= t { print $1, $3; exit }' "$WORK/rss.log")
if [[ $BUILD != release || $SOAK_SECONDS -lt 60 ]]; then
	log "SKIP dstrace VmRSS flat: $BUILD build, SOAK_SECONDS=$SOAK_SECONDS (checked for the release build from 60 s)"
elif [[ -z ${REF_KB:-} || $RSS_LAST -eq 0 ]]; then
	fail "dstrace VmRSS flat" "expected samples at ${ref_at} s and at the end, got: $(tail -n 3 "$WORK/rss.log" | tr '\n' ' ')"
else
	tol=$((REF_KB / 10))
	((tol < 2048)) && tol=2048
	if ((RSS_LAST - REF_KB <= tol)); then
		pass "dstrace VmRSS flat" "expected at most $REF_KB + $tol kB at the end (${REF_T} s: $REF_KB kB), got $RSS_LAST kB"
	else
		fail "dstrace VmRSS flat" "expected at most $REF_KB + $tol kB at the end (${REF_T} s: $REF_KB kB), got $RSS_LAST kB"
	fi
fi

# --- the figures ---------------------------------------------------------------------------
AUDIT_LINES=$(cat "${FILES[@]}" | wc -l)
log "=== soak figures ($BUILD build)"
log "duration           ${ELAPSED} s of workload (SOAK_SECONDS=$SOAK_SECONDS), dstrace stopped ${STOP_MS} ms after SIGTERM"
log "processes          $((CH_PIDS + U_PROCS + 1)): $CH_RUNS churn parents + $CH_CHILDREN churn children + $U_PROCS datagram senders + 1 receiver"
log "connects           tcp $CH_CONNECTED (accepted $CH_ACCEPTED), udp $U_CONNECTS"
log "datagrams          $U_SENT sent, $U_ECHOED echoed back ($DGRAMS per sender)"
log "rotations          $ROTATIONS (mv + SIGHUP every $ROT s), $((ROTATIONS + 1)) audit files, $AUDIT_LINES lines"
log "disk full          from ${FULL_AT} s to ${FREED_AT:-?} s (filler $FILLER_BYTES bytes); write failures counted: $WERR"
log "scrapes            $SCRAPES_OK of $SCRAPES answered 200, slowest ${SCRAPE_MAX} s; hostile clients: $NSLOW slow + $NIDLE idle, $SLOW_DONE, cuts idle $SLOW_CUTS_IDLE slow $SLOW_CUTS_SLOW"
log "RSS                peak (VmHWM) $((PEAK_KB / 1024)) MiB ($PEAK_KB kB, bound $RSS_MAX_MB MiB); VmRSS first sample $RSS_FIRST kB, at ${REF_T:-?} s ${REF_KB:-?} kB, last $RSS_LAST kB"
log "final counts       $(jq -c '{events, programs, written, write_errors, drops}' <<<"$FINAL_RUN")"
log "report             $(jq -c '{complete: .summary.complete, runs: (.runs | length), audit_records: .input.audit_records, malformed: .input.malformed_lines, write_errors: .completeness.write_errors}' "$REPORT")"

summary
