#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Runs INSIDE a guest of tests/vm/run-in-vm.sh (see tests/vm/matrix.sh): which backends this
# kernel runs, that auto picks the best, the Table 12.2 suite under each backend, and the
# differential test across them. Prints "RESULT KERNEL BACKEND pass|fail|unsupported WHY"
# lines for the support table, then "N passed, N failed".
#   guest-matrix.sh EXPECTED_BACKENDS   (e.g. "fentry kprobe" for 6.1)
set -u
cd "$(dirname "$0")/../.." || exit 1
expected=" $1 "
kernel=$(uname -r)
DSTRACE=${DSTRACE:-$PWD/dstrace}
export DSTRACE DSTRACE_START_TIMEOUT=${DSTRACE_START_TIMEOUT:-240}
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS $*"; }
ko() { failed=$((failed + 1)); echo "FAIL $*"; }

runs=()
for b in fentry kprobe tracepoint; do
	if err=$("$DSTRACE" --backend "$b" -d 1 -o /dev/null 2>&1 >/dev/null); then
		runs+=("$b")
		[[ $expected == *" $b "* ]] && ok "$kernel: backend $b runs" ||
			ko "$kernel: backend $b: expected not to run here, but it does"
	else
		why=$(grep -v '^Tracing' <<<"$err" | head -n 1)
		if [[ $expected == *" $b "* ]]; then
			ko "$kernel: backend $b: expected to run, got: $why"
			echo "RESULT $kernel $b fail $why"
		else
			ok "$kernel: backend $b refused with a clear line: $why"
			echo "RESULT $kernel $b unsupported ${why#dstrace: }"
		fi
	fi
done

best=${runs[0]:-none}
chosen=$("$DSTRACE" -v -d 1 -o /dev/null 2>&1 | sed -n 's/^dstrace: using backend //p')
[[ $chosen == "$best" ]] && ok "$kernel: auto picks $best" ||
	ko "$kernel: auto: expected $best, got '${chosen:-nothing}'"

for b in "${runs[@]}"; do
	log=$(mktemp)
	DSTRACE_ARGS="--backend $b" bash tests/e2e/test_matrix.sh >"$log" 2>&1
	rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [[ $rc -eq 0 && $line == *" 0 failed" ]]; then
		ok "$kernel: Table 12.2 suite, backend $b: $line"
		echo "RESULT $kernel $b pass Table 12.2 suite: $line"
	else
		grep '^FAIL' "$log" | head -n 20
		ko "$kernel: Table 12.2 suite, backend $b: ${line:-no result line} (exit $rc)"
		echo "RESULT $kernel $b fail Table 12.2 suite: ${line:-exit $rc}"
	fi
	rm -f "$log"
done

if [[ ${#runs[@]} -gt 0 ]]; then
	log=$(mktemp)
	bash tests/e2e/test_differential.sh "${runs[@]}" >"$log" 2>&1
	rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [[ $rc -eq 0 && $line == *" 0 failed" ]]; then
		ok "$kernel: differential (${runs[*]}): $line"
	else
		grep '^FAIL' "$log" | head -n 20
		ko "$kernel: differential (${runs[*]}): ${line:-no result line} (exit $rc)"
		for b in "${runs[@]}"; do
			grep -q "^FAIL $b:" "$log" && echo "RESULT $kernel $b fail differential"
		done
	fi
	rm -f "$log"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
