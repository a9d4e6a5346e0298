#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Run dstrace's tests: unit tests, then the end-to-end suites against the real kernel.
#   tests/run.sh              everything
#   tests/run.sh unit         unit tests only
#   tests/run.sh e2e [NAME..] end-to-end suites only (tests/e2e/test_NAME.sh)
# The end-to-end suites run the AddressSanitizer+UBSan build (./dstrace-san) unless
# DSTRACE says otherwise. Ends with "N passed, N failed"; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."

what=${1:-all}
[ $# -gt 0 ] && shift
total_pass=0
total_fail=0
failed_suites=()

# Run one suite; add up the "N passed, N failed" line it ends with.
run_suite() {
	local name=$1
	shift
	local log
	log=$(mktemp)
	echo "=== $name"
	"$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	local line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	rm -f "$log"
	if [ -z "$line" ]; then
		echo "--- $name: no result line (exit $rc): counted as one failure"
		total_fail=$((total_fail + 1))
		failed_suites+=("$name")
		return
	fi
	local p f
	p=${line%% passed*}
	f=${line#*passed, }
	f=${f%% failed*}
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
		[ "$f" -eq 0 ] && total_fail=$((total_fail + 1))
		failed_suites+=("$name")
	fi
}

if [ "$(id -u)" -ne 0 ] && [ "$what" != unit ]; then
	echo "tests/run.sh: the end-to-end tests load BPF programs and create network namespaces: run as root" >&2
	exit 1
fi

if [ "$what" = all ] || [ "$what" = unit ]; then
	if make --no-print-directory -C tests/unit >/dev/null; then
		run_suite unit tests/unit/.output/unit-tests
	else
		echo "--- unit: build failed"
		total_fail=$((total_fail + 1))
		failed_suites+=(unit-build)
	fi
fi

if [ "$what" = all ] || [ "$what" = e2e ]; then
	export DSTRACE=${DSTRACE:-$PWD/dstrace-san}
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:exitcode=87}
	if ! make --no-print-directory -C tests/progs >/dev/null; then
		echo "--- test programs: build failed"
		total_fail=$((total_fail + 1))
		failed_suites+=(progs-build)
	else
		suites=("$@")
		if [ ${#suites[@]} -eq 0 ]; then
			for f in tests/e2e/test_*.sh; do
				n=${f##*/test_}
				suites+=("${n%.sh}")
			done
		fi
		for n in "${suites[@]}"; do
			run_suite "e2e/$n" bash "tests/e2e/test_$n.sh"
		done
	fi
fi

echo
[ ${#failed_suites[@]} -gt 0 ] && echo "failed suites: ${failed_suites[*]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
