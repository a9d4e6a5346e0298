#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Install what dstrace needs to build and test, on Debian 12, if it is missing.
# Usage: scripts/install-deps.sh [build|test|vm|bench|all]   (default: build and test)
set -euo pipefail

build_pkgs=(make gcc libc6-dev clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
	libmicrohttpd-dev libsystemd-dev libjansson-dev debhelper dpkg-dev)
test_pkgs=(libcunit1-dev jq iproute2 nginx curl socat procps util-linux psmisc liburing-dev
	prometheus python3 systemd lintian man-db bash-completion logrotate python3-yaml
	default-jdk-headless)
vm_pkgs=(qemu-system-x86 busybox-static cpio kmod xz-utils zstd)
bench_pkgs=(bpftrace nginx)
# test_compat32's 32-bit program (gcc -m32) where there are 32-bit programs to watch
# and test_resolver's (its C library's getaddrinfo(), which the resolver's uprobes follow too);
# test_resolver's program built against musl (an Alpine container's C library)
[ "$(dpkg --print-architecture)" = amd64 ] && test_pkgs+=(gcc-multilib)
test_pkgs+=(musl-tools)

case "${1:-all}" in
build) want=("${build_pkgs[@]}") ;;
test) want=("${test_pkgs[@]}") ;;
vm) want=("${vm_pkgs[@]}") ;;
bench) want=("${bench_pkgs[@]}") ;;
all) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
*)
	echo "usage: $0 [build|test|vm|bench|all]" >&2
	exit 2
	;;
esac

missing=()
for pkg in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$pkg")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "dstrace: missing packages: ${missing[*]}; run as root (sudo make ...) to install them" >&2
	exit 1
fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Do not start services (nginx) on install: the tests start their own.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	added_policy=1
fi
status=0
apt-get install -y -q --no-install-recommends "${missing[@]}" || status=$?
[ "$added_policy" -eq 1 ] && rm -f "$policy"
exit "$status"
