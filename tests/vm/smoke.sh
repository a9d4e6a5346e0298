#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Self-test of the VM harness: boots each kernel (default: 5.10 6.1 6.12 6.12-trixie) and checks what the test
# suite relies on inside the guest (BTF, no lockdown, cgroup2/bpffs/tracefs, netns, veth, a
# bridge, modprobe, bpftool, writable /tmp and repository), that the command's exit status
# comes back, and that a hung command times out with 124. Ends with "N passed, N failed".
# Usage: tests/vm/smoke.sh [KERNEL...]
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

if [ "${1:-}" = --in-guest ]; then
	# Runs inside the guest, in the repository. One "ok"/"not ok" line per check.
	fails=0
	check() { # check NAME COMMAND...
		local name=$1
		shift
		if out=$("$@" 2>&1); then
			echo "ok - $name"
		else
			echo "not ok - $name: $(echo "$out" | tail -n2 | tr '\n' ' ')"
			fails=$((fails + 1))
		fi
	}
	check "kernel is ${2:-?}" test "$(uname -r)" = "${2:-}"
	check "BTF at /sys/kernel/btf/vmlinux" test -r /sys/kernel/btf/vmlinux
	check "lockdown is none" grep -q '\[none\]' /sys/kernel/security/lockdown
	check "cgroup2 at /sys/fs/cgroup" test -e /sys/fs/cgroup/cgroup.controllers
	check "bpffs at /sys/fs/bpf" sh -c 'stat -f -c %T /sys/fs/bpf | grep -q bpf'
	check "tracefs" test -e /sys/kernel/tracing/events/sock
	check "working directory is the repository" test "$PWD" = "$(cd "$HERE/../.." && pwd -P)"
	check "repository writable" sh -c 'touch .vm-smoke && rm .vm-smoke'
	check "/tmp writable" sh -c 'echo x >/tmp/x && rm /tmp/x'
	check "/etc writable" sh -c 'echo x >/etc/smoke && rm /etc/smoke'
	check "/etc/netns writable" sh -c 'mkdir -p /etc/netns/smoke && rmdir /etc/netns/smoke'
	check "lo is up" sh -c 'ip -o link show lo | grep -q UP'
	check "ip netns add/del" sh -c 'ip netns add smoke && ip netns del smoke'
	check "veth between namespaces" sh -c 'ip netns add a && ip netns add b &&
		ip link add va netns a type veth peer name vb netns b &&
		ip -n a link set va up && ip -n b link set vb up &&
		ip netns del a && ip netns del b'
	check "bridge" sh -c 'ip link add smokebr type bridge && ip link del smokebr'
	check "modprobe from the guest kernel's modules" modprobe dummy
	check "bpftool prog list" bpftool prog list
	echo "guest checks: $fails failed"
	exit "$fails"
fi

# Run directories (kept by run-in-vm.sh for the runs that fail on purpose) go to a temporary
# TMPDIR, removed at the end unless a check failed.
TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/dstrace-vm-smoke.XXXXXX")
export TMPDIR
kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(5.10 6.1 6.12 6.12-trixie)
passed=0 failed=0
result() { # result NAME STATUS
	if [ "$2" -eq 0 ]; then
		echo "PASS: $1"
		passed=$((passed + 1))
	else
		echo "FAIL: $1"
		failed=$((failed + 1))
	fi
}
for k in "${kernels[@]}"; do
	rel=$("$HERE/run-in-vm.sh" --prepare "$k" | cut -d' ' -f1)
	if [ -z "$rel" ]; then
		result "$k: kernel available" 1
		continue
	fi
	start=$(date +%s)
	"$HERE/run-in-vm.sh" "$k" -- "$HERE/smoke.sh" --in-guest "$rel"
	rc=$?
	result "$k ($rel): guest checks ($(($(date +%s) - start)) s)" "$rc"

	"$HERE/run-in-vm.sh" -q "$k" -- sh -c 'exit 7' 2>/dev/null
	rc=$?
	result "$k: exit status 7 comes back (got $rc)" "$([ "$rc" -eq 7 ]; echo $?)"

	"$HERE/run-in-vm.sh" -q -t 20 "$k" -- sleep 600 2>/dev/null
	rc=$?
	result "$k: a hung command times out with 124 (got $rc)" "$([ "$rc" -eq 124 ]; echo $?)"
done
echo "$passed passed, $failed failed"
if [ "$failed" -eq 0 ]; then
	rm -rf "$TMPDIR"
else
	echo "run directories and console logs: $TMPDIR"
	exit 1
fi
