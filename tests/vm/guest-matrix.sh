#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Runs INSIDE a guest of tests/vm/run-in-vm.sh (see tests/vm/matrix.sh): which backends this
# kernel runs, that auto picks the best, the Table 12.2 suite under each backend, and the
# differential test across them. Prints "RESULT KERNEL BACKEND pass|fail|unsupported WHY"
# lines for the support table, each step's duration ("TIME step seconds"), then
# "N passed, N failed".
#   guest-matrix.sh [--refusals FILE] [--table12 all|first|none] EXPECTED_BACKENDS
#     EXPECTED_BACKENDS  the backends that must run here, e.g. "fentry kprobe" ("" for none)
#     --refusals FILE    lines "BACKEND<TAB>LINE": the refused backend's whole stderr must be
#                        that one line (BACKEND auto: what auto says when none runs)
#     --table12 first    the Table 12.2 suite under the first backend that runs only (auto's
#                        pick); none: not at all. The differential test always runs them all.
#     --sockpaths B      test_sockpaths.sh under backend B too (e.g. kprobe: its return
#                        probes' room for calls in flight, which the kernel sets); with
#                        kprobe, also its tracefs events: none left by a dstrace that ended,
#                        and those of a killed one removed by the next.
#     --compat32 B       test_compat32.sh under backend B too (a 32-bit program's calls)
set -u
cd "$(dirname "$0")/../.." || exit 1
refusals='' table12=all sockpaths=() compat32=()
while [[ $# -gt 1 ]]; do
	case $1 in
	--refusals) refusals=$2; shift 2 ;;
	--table12) table12=$2; shift 2 ;;
	--sockpaths) sockpaths+=("$2"); shift 2 ;;
	--compat32) compat32+=("$2"); shift 2 ;;
	*) break ;;
	esac
done
expected=" ${1:-} "
kernel=$(uname -r)
DSTRACE=${DSTRACE:-$PWD/dstrace}
export DSTRACE DSTRACE_START_TIMEOUT=${DSTRACE_START_TIMEOUT:-240}
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS $*"; }
ko() { failed=$((failed + 1)); echo "FAIL $*"; }
step_start=$SECONDS
# Time limits: a suite (or dstrace) that hangs is ended and fails here, with its last lines,
# instead of taking the guest into run-in-vm's timeout, which would lose every result.
# A suite takes at most 154 s on a CI machine (the Table 12.2 suite on 5.10), test_sockpaths
# 371 s (5.10); matrix.sh's guest timeouts leave room for one suite that hangs to its limit.
SUITE_LIMIT=300
SOCKPATHS_LIMIT=700
RUN_LIMIT=120
# limited SEC CMD...: CMD, killed after SEC s (then exit 124, or 137 if it had to be killed)
limited() { timeout -k 10 "$@"; }
# timed_out RC LOG SEC: when RC says the limit ended it, say so with the log's last lines
timed_out() {
	[[ $1 -eq 124 || $1 -eq 137 ]] || return 0
	echo "# timed out after $3 s (or killed: exit $1); its last lines:"
	tail -n 15 "$2" | sed 's/^/#   /'
}
step_time() { echo "TIME $1 $((SECONDS - step_start)) s"; step_start=$SECONDS; }

# expected_refusal BACKEND: the exact line the refusals file gives for BACKEND (or nothing)
expected_refusal() {
	[[ -n $refusals ]] || return 0
	awk -F'\t' -v b="$1" '$1 == b { sub(/^[^\t]*\t/, ""); print; exit }' "$refusals"
}

# check_refusal NAME STDERR_FILE EXPECTED_LINE: a refusal is one line, the expected one
check_refusal() {
	local name=$1 file=$2 want=$3 n got
	n=$(wc -l <"$file")
	got=$(head -n 1 "$file")
	if [[ $n -ne 1 ]]; then
		ko "$kernel: $name: expected one line on stderr, got $n:"
		sed 's/^/    /' "$file" | head -n 20
	elif [[ -n $want && $got != "$want" ]]; then
		ko "$kernel: $name: expected the line '$want', got '$got'"
	else
		ok "$kernel: $name refused in one line: $got"
	fi
}

err=$(mktemp)
runs=()
for b in fentry kprobe tracepoint; do
	if limited "$RUN_LIMIT" "$DSTRACE" --backend "$b" -d 1 -o /dev/null >/dev/null 2>"$err"; then
		runs+=("$b")
		[[ $expected == *" $b "* ]] && ok "$kernel: backend $b runs" ||
			ko "$kernel: backend $b: expected not to run here, but it does"
	else
		why=$(grep -v '^Tracing' "$err" | head -n 1)
		if [[ $expected == *" $b "* ]]; then
			ko "$kernel: backend $b: expected to run, got: $why"
			echo "RESULT $kernel $b fail $why"
		else
			check_refusal "backend $b" "$err" "$(expected_refusal "$b")"
			echo "RESULT $kernel $b unsupported ${why#dstrace: }"
		fi
	fi
done

best=${runs[0]:-none}
if [[ $best == none ]]; then
	# auto: one line saying no backend works (and why), exit 1; -v: each backend's reason too
	if limited "$RUN_LIMIT" "$DSTRACE" -d 1 -o /dev/null >/dev/null 2>"$err"; then
		ko "$kernel: auto: expected no backend to run, but dstrace ran"
	else
		check_refusal "auto" "$err" "$(expected_refusal auto)"
	fi
	limited "$RUN_LIMIT" "$DSTRACE" -v -d 1 -o /dev/null >/dev/null 2>"$err"
	for b in fentry kprobe tracepoint; do
		grep -q "^dstrace: backend $b: .*; trying the next backend\$" "$err" &&
			ok "$kernel: auto -v says why $b does not run" ||
			ko "$kernel: auto -v: no line saying why $b does not run"
	done
else
	limited "$RUN_LIMIT" "$DSTRACE" -v -d 1 -o /dev/null >/dev/null 2>"$err"
	chosen=$(sed -n 's/^dstrace: using backend //p' "$err")
	[[ $chosen == "$best" ]] && ok "$kernel: auto picks $best" ||
		ko "$kernel: auto: expected $best, got '${chosen:-nothing}'"
	# the error-report hook only where the kernel reports a failed connect's error before
	# closing it: without tcp_done_with_error() (5.10 here), as -v says
	left=$(grep -c '^dstrace: [a-z_]*_error_report not attached: not needed on a kernel with tcp_done_with_error()$' "$err")
	if bpftool btf dump file /sys/kernel/btf/vmlinux | grep -q "FUNC 'tcp_done_with_error'"; then
		want=1
	else
		want=0
	fi
	[[ $left == "$want" ]] && ok "$kernel: the error-report hook left out: $left (tcp_done_with_error: $want)" ||
		ko "$kernel: the error-report hook: expected $want line saying it is left out, got $left"
fi
step_time backends

# suite LOG CMD...: a test script, killed after $SUITE_LIMIT s (said, with its last lines),
# its output in LOG; sets rc (its exit) and line (its "N passed, M failed" line, or nothing);
# true when it passed: exit 0 and 0 failed
suite() {
	local log=$1
	shift
	limited "$SUITE_LIMIT" "$@" >"$log" 2>&1
	rc=$?
	timed_out $rc "$log" "$SUITE_LIMIT"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	[[ $rc -eq 0 && $line == *" 0 failed" ]]
}

# run_suite NAME SHOW CMD...: run a test script; its "N passed, M failed" line as ok or ko,
# and on failure each FAIL line with the 3 after it; SHOW: an extended regex of log lines to
# print in any case ('': none).
run_suite() {
	local name=$1 show=$2 log rc line bad=0
	shift 2
	log=$(mktemp)
	suite "$log" "$@" || bad=1
	[[ -n $show ]] && grep -E "$show" "$log"
	if [[ $bad -eq 0 ]]; then
		ok "$kernel: $name: $line"
	else
		grep -A3 '^FAIL' "$log" | head -n 60
		ko "$kernel: $name: ${line:-no result line} (exit $rc)"
	fi
	rm -f "$log"
}

table12_runs=()
case $table12 in
all) table12_runs=("${runs[@]}") ;;
first) [[ ${#runs[@]} -gt 0 ]] && table12_runs=("${runs[0]}") ;;
esac
for b in "${table12_runs[@]}"; do
	log=$(mktemp)
	if DSTRACE_ARGS="--backend $b" suite "$log" bash tests/e2e/test_matrix.sh; then
		ok "$kernel: Table 12.2 suite, backend $b: $line"
		echo "RESULT $kernel $b pass Table 12.2 suite: $line"
	else
		grep '^FAIL' "$log" | head -n 20
		ko "$kernel: Table 12.2 suite, backend $b: ${line:-no result line} (exit $rc)"
		echo "RESULT $kernel $b fail Table 12.2 suite: ${line:-exit $rc}"
	fi
	rm -f "$log"
	step_time "table12-$b"
done

if [[ ${#runs[@]} -gt 0 ]]; then
	log=$(mktemp)
	if suite "$log" bash tests/e2e/test_differential.sh "${runs[@]}"; then
		ok "$kernel: differential (${runs[*]}): $line"
		for b in "${runs[@]}"; do
			echo "RESULT $kernel $b pass differential"
		done
	else
		# each failure with what follows it (the differences), up to 200 lines
		awk '/^FAIL/ {n = 40} n > 0 {print; n--}' "$log" | head -n 200
		ko "$kernel: differential (${runs[*]}): ${line:-no result line} (exit $rc)"
		for b in "${runs[@]}"; do
			if grep -q "^FAIL $b:" "$log"; then
				echo "RESULT $kernel $b fail differential"
			else
				echo "RESULT $kernel $b pass differential"
			fi
		done
	fi
	rm -f "$log"
	step_time "differential-$(IFS=+; echo "${runs[*]}")"

	# TCP bytes, every way of moving them, on every backend (inet_sendpage before 6.5)
	run_suite "TCP bytes (${runs[*]})" '' bash tests/e2e/test_tcpbytes.sh "${runs[@]}"
	step_time "tcpbytes"
fi

for b in "${sockpaths[@]}"; do
	[[ " ${runs[*]} " == *" $b "* ]] || continue
	DSTRACE_ARGS="--backend $b" SUITE_LIMIT=$SOCKPATHS_LIMIT run_suite "socket paths, backend $b" \
		'^# (skipped|5000 threads blocked: [0-9c]|connects pending at once)' \
		bash tests/e2e/test_sockpaths.sh
	step_time "sockpaths-$b"
done

for b in "${compat32[@]}"; do
	[[ " ${runs[*]} " == *" $b "* ]] || continue
	DSTRACE_ARGS="--backend $b" run_suite "32-bit programs, backend $b" '^# skipped' \
		bash tests/e2e/test_compat32.sh
	step_time "compat32-$b"
done

# The kprobe backend's return probes are tracefs events of group dstrace: a run that ends
# removes its own; one killed leaves them, and the next run removes those (with --sockpaths
# kprobe: the same kernels).
if [[ " ${runs[*]} " == *" kprobe "* && " ${sockpaths[*]} " == *" kprobe "* ]]; then
	events=/sys/kernel/tracing/kprobe_events
	[[ -r $events ]] || ko "$kernel: kprobe: no $events to check"
	limited "$RUN_LIMIT" "$DSTRACE" --backend kprobe -d 1 -o /dev/null 2>/dev/null
	n=$(grep -c ':dstrace/' "$events" 2>&1)
	[[ $n == 0 ]] && ok "$kernel: kprobe: no tracefs event left by a run that ended" ||
		ko "$kernel: kprobe: $n tracefs events left by a run that ended: $(grep ':dstrace/' "$events" | head -n 3)"
	"$DSTRACE" --backend kprobe -o /dev/null 2>"$err" &
	pid=$!
	for _ in $(seq 1 600); do
		grep -q '^Tracing' "$err" && break
		sleep 0.2
	done
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	n=$(grep -c ":dstrace/.*_$pid " "$events" 2>&1)
	[[ $n =~ ^[1-9][0-9]*$ ]] && ok "$kernel: kprobe: a killed run leaves its $n return probes" ||
		ko "$kernel: kprobe: a killed run left no return probe (did it attach any?)"
	limited "$RUN_LIMIT" "$DSTRACE" --backend kprobe -d 1 -o /dev/null 2>/dev/null
	n=$(grep -c ':dstrace/' "$events" 2>&1)
	[[ $n == 0 ]] && ok "$kernel: kprobe: the next run removed them" ||
		ko "$kernel: kprobe: $n tracefs events left after the next run: $(grep ':dstrace/' "$events" | head -n 3)"
	step_time "kprobe-events"
fi
rm -f "$err"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
