#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The package's logrotate rule (dist/logrotate/dstrace, /etc/logrotate.d/dstrace) against a
# live audit: dstrace --audit -o FILE -i 1 runs while mapped TCP connections flow (CONNECTS
# tcpcli6 processes to a tcpserv6, one every GAP seconds), and "logrotate -f" rotates FILE
# mid-way with the rule as shipped, only its path changed to the test's FILE (and its own
# state file). The rule's postrotate signals "pkill -HUP -x dstrace" here (no systemd as PID
# 1), so dstrace runs under the name dstrace (a symlink to $DSTRACE).
# Checked: FILE.1 and FILE both exist; every line of both is one whole JSON object, each file
# ending with a newline (nothing torn); both hold records of the same run, the old one's
# before the new one's; the new file ends with the final set; the final totals equal the
# traffic made (CONNECTS connects, CONNECTS accepts); the old file's totals were partial.
#
#   sudo tests/e2e/test_logrotate.sh
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNECTS=${CONNECTS:-40}
GAP=0.1
TCP_PORT=9780
RULE=$REPO_ROOT/dist/logrotate/dstrace

need_root
build_progs
if ! command -v logrotate >/dev/null; then
	fail "logrotate installed" "expected logrotate in PATH, got none (scripts/install-deps.sh test)"
	summary
	exit 1
fi

# dstrace under its own name: the rule's "pkill -x dstrace" must find it.
mkdir -p "$WORK/bin" "$WORK/log"
ln -s "$DSTRACE" "$WORK/bin/dstrace"
LOG=$WORK/log/audit.jsonl
sed "s|^/var/log/dstrace/\*\.jsonl {|$WORK/log/*.jsonl {|" "$RULE" >"$WORK/logrotate.conf"
check_eq "the rule, with the test's path" "1" "$(grep -c "^$WORK/log/\*\.jsonl {" "$WORK/logrotate.conf")"

ROLE=lo
lo_host_add "$ROLE"
bg_start SERVER_PID "$ROLE" "$WORK/server" "$PROGS/tcpserv6" "$TCP_PORT"
if ! wait_line "$WORK/server.out" '^listening' 5; then
	fail "tcpserv6 ready" "expected 'listening' within 5 s, got: $(cat "$WORK/server.err")"
	summary
	exit 1
fi
NSINO=$(netns_inode "$ROLE")

DSTRACE=$WORK/bin/dstrace
if ! dstrace_start_raw /dev/null --audit -o "$LOG" -i 1; then
	summary
	exit 1
fi

# The traffic, in the background: CONNECTS mapped connects, GAP apart; "done N" at the end.
(
	ok=0
	for ((i = 0; i < CONNECTS; i++)); do
		ip netns exec "$(ns_name "$ROLE")" "$PROGS/tcpcli6" ::ffff:127.0.0.1 "$TCP_PORT" \
			>/dev/null 2>&1 && ok=$((ok + 1))
		sleep "$GAP"
	done
	echo "done $ok" >"$WORK/traffic.done"
) &
TRAFFIC_PID=$!
BG_PIDS+=("$TRAFFIC_PID")

# Rotate once records are in the file and the traffic is under way.
wait_line "$LOG" '"type":"audit_run"' 10 || fail "audit records before the rotation" "expected some within 10 s, got none"
sleep 1
logrotate -f -v -s "$WORK/logrotate.state" "$WORK/logrotate.conf" >"$WORK/logrotate.log" 2>&1
check_eq "logrotate -f exit status" 0 "$?"
check_eq "rotated: FILE.1 exists, FILE was created" "audit.jsonl audit.jsonl.1" \
	"$(find "$WORK/log" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ' | sed 's/ $//')"

wait_pid "$TRAFFIC_PID" 60 || fail "traffic" "expected it to end within 60 s"
check_eq "traffic: every client connected" "done $CONNECTS" "$(cat "$WORK/traffic.done" 2>/dev/null)"
sleep 1.5 # one more interval
dstrace_stop_sig TERM

for f in "$LOG.1" "$LOG"; do
	check_eq "${f##*/}: every line one whole JSON object (none torn)" ok "$(json_lines_ok "$f")"
	log "${f##*/}: $(wc -l <"$f") lines"
done

# counts FILE: "accept=N connect=N" of the last audit records of tcpserv6 and tcpcli6 in
# the test's netns, in FILE.
counts() {
	jq -rs --argjson ns "$NSINO" '
		def last($exe): [.[] | select(.type == "audit" and .netns == $ns and (.exe | endswith($exe)))] | last;
		"accept=\(last("/tcpserv6").accept.tcp // 0) connect=\(last("/tcpcli6").connect.tcp // 0)"' "$1"
}
check_eq "final totals (the new file's last records) equal the traffic" \
	"accept=$CONNECTS connect=$CONNECTS" "$(counts "$LOG")"
old=$(counts "$LOG.1")
if [[ $old =~ ^accept=([0-9]+)\ connect=([0-9]+)$ ]] && ((BASH_REMATCH[1] > 0 &&
	BASH_REMATCH[1] < CONNECTS && BASH_REMATCH[2] > 0 && BASH_REMATCH[2] < CONNECTS)); then
	pass "the rotated file's totals are partial (the traffic spanned the rotation)" "$old of $CONNECTS"
else
	fail "the rotated file's totals are partial (the traffic spanned the rotation)" \
		"expected between 1 and $((CONNECTS - 1)), got $old"
fi
check_eq "one run across both files" 1 \
	"$(cat "$LOG.1" "$LOG" | jq -r 'select(.type == "audit_run") | .run' | sort -u | wc -l)"
check_eq "the old file's records come before the new file's" true \
	"$(jq -rs --slurpfile new "$LOG" '(map(.ts) | max) <= ($new | map(.ts) | min)' "$LOG.1")"
check_eq "the new file ends with the final set" true \
	"$(jq -r 'select(.type == "audit_run") | .final' "$LOG" | tail -n 1)"
check_eq "no final set in the rotated file" "" \
	"$(jq -r 'select(.type == "audit_run" and .final) | .final' "$LOG.1")"
check_eq "dstrace said nothing on stderr but its start line" "" \
	"$(grep -v '^Tracing' "$DSTRACE_LOG")"
# the report reads the two files together: the same totals
check_eq "dstrace report on both files: the server's accepts" "$CONNECTS" \
	"$("$WORK/bin/dstrace" report --json "$LOG.1" "$LOG" | jq --argjson ns "$NSINO" \
		'[.programs[] | select(.netns == $ns and (.exe | endswith("/tcpserv6")))][0].accept.tcp')"

summary
