#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# make test-vm: the kernel matrix. Boots Debian's stock 6.1 and 6.12 kernels under qemu
# (tests/vm/run-in-vm.sh) and runs tests/vm/guest-matrix.sh in each: every backend the
# kernel supports runs the Table 12.2 suite and the differential test. This machine's own
# kernel (locked down: tracepoint only) is covered by the ordinary suites, and checked here
# for which backends it refuses. Writes the support table to tests/vm/.output/support.md and
# ends with "N passed, N failed". A boot failure or a guest error is a failure.
set -u
cd "$(dirname "$0")/../.." || exit 1
out=tests/vm/.output
mkdir -p "$out"
results=$out/results.txt
: >"$results"
passed=0
failed=0

# kernel -> the backends that must run there (the others must be refused, clearly)
declare -A EXPECT=([6.1]="fentry kprobe" [6.12]="fentry kprobe tracepoint")

for k in 6.1 6.12; do
	log=$out/guest-$k.log
	echo "=== kernel $k (guest log: $log)"
	start=$SECONDS
	tests/vm/run-in-vm.sh -t 1500 "$k" -- bash tests/vm/guest-matrix.sh "${EXPECT[$k]}" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	# qemu's multi-threaded TCG can run a stale copy of kernel text that another vCPU has
	# just patched (a static key flipped when dstrace attaches a syscall tracepoint): the
	# guest dies of an unclaimed int3 ("Oops: int3"), a fault of the emulator, not of the
	# code under test. Such a guest is booted once more from scratch; the first log is kept.
	if [[ $rc -eq 125 ]] && grep -q 'Oops: int3' "$log"; then
		mv "$log" "$out/guest-$k.int3.log"
		echo "--- kernel $k: the guest died of an int3 oops in text patching (qemu TCG, see" \
			"$out/guest-$k.int3.log); booting it once more"
		tests/vm/run-in-vm.sh -t 1500 "$k" -- bash tests/vm/guest-matrix.sh "${EXPECT[$k]}" 2>&1 | tee "$log"
		rc=${PIPESTATUS[0]}
	fi
	echo "--- kernel $k: exit $rc in $((SECONDS - start)) s"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [[ -n $line ]]; then
		p=${line%% passed*}
		f=${line#*passed, }
		f=${f%% failed*}
		passed=$((passed + p))
		failed=$((failed + f))
	fi
	if [[ $rc -ne 0 && ( -z $line || $line == *" 0 failed" ) ]]; then
		echo "FAIL kernel $k: the guest did not finish cleanly (exit $rc): see $log"
		failed=$((failed + 1))
	fi
	grep '^RESULT ' "$log" >>"$results"
done

# This machine's kernel: which backends it runs (the suites themselves ran in make test).
host=$(uname -r)
for b in fentry kprobe tracepoint; do
	if err=$(./dstrace --backend "$b" -d 1 -o /dev/null 2>&1 >/dev/null); then
		echo "RESULT $host $b pass (make test: every suite)" >>"$results"
	else
		why=$(grep -v '^Tracing' <<<"$err" | head -n 1)
		echo "RESULT $host $b unsupported ${why#dstrace: }" >>"$results"
	fi
done

{
	echo "| kernel | fentry | kprobe | tracepoint |"
	echo "|---|---|---|---|"
	for k in $(awk '{print $2}' "$results" | awk '!seen[$0]++'); do
		row="| $k"
		for b in fentry kprobe tracepoint; do
			r=$(awk -v k="$k" -v b="$b" '$2 == k && $3 == b {print $4}' "$results" | sort -u)
			case $r in
			*fail*) cell=FAIL ;;
			pass) cell=pass ;;
			unsupported) cell="refused: $(awk -v k="$k" -v b="$b" '$2 == k && $3 == b {for (i = 5; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : "")}' "$results" | head -n 1 | sed 's/^backend [a-z]*: //')" ;;
			*) cell="not run" ;;
			esac
			row+=" | $cell"
		done
		echo "$row |"
	done
} >"$out/support.md"
echo
cat "$out/support.md"
echo
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
