#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Run a command as root inside a Debian stock kernel booted under qemu (TCG), on the host's own
# userland (the host's / shared read-only over 9p, a tmpfs overlay on top), in the repository.
# Exits with the command's status; a harness failure (boot failure, kernel panic, no status)
# exits 125 and a timeout 124, each with one line naming the console log.
# See tests/vm/README.md.
set -euo pipefail

PROG=run-in-vm
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)

CACHE=${DSTRACE_VM_CACHE:-/var/cache/dstrace-vm}
TIMEOUT=${DSTRACE_VM_TIMEOUT:-1200}
STALL=${DSTRACE_VM_STALL:-180}
MEM=${DSTRACE_VM_MEM:-2048}
CPUS=${DSTRACE_VM_CPUS:-2}
QEMU=${DSTRACE_VM_QEMU:-qemu-system-x86_64}
ACCEL=${DSTRACE_VM_ACCEL:-tcg}
APPEND_EXTRA=${DSTRACE_VM_APPEND:-}
# Modules the initramfs loads (their dependencies come from the kernel's modules.dep).
# virtio_pci and virtio_rng are built in on some kernels; missing ones are skipped.
INITRD_MODULES=(virtio_pci virtio_rng 9pnet_virtio 9p overlay veth bridge)

usage() {
	cat <<EOF
usage: $PROG [options] KERNEL -- COMMAND [ARG...]
       $PROG --prepare KERNEL

Boots Debian's stock kernel KERNEL under qemu and runs COMMAND as root in the repository
($REPO) on the host's userland; exits with COMMAND's status.

KERNEL   5.10         Debian 11's newest linux-image-5.10.0-N-amd64 (suite bullseye)
         6.1          Debian 12's newest linux-image-6.1.0-N-amd64
         6.12         Debian 12's newest linux-image-6.12.N+deb12-amd64 (bookworm-security)
         6.12-trixie  Debian 13's newest linux-image-6.12.N+deb13-amd64 (suite trixie)
         X.Y          the newest linux-image-X.Y.*-amd64 in the host's apt lists
         X.Y-SUITE    the newest linux-image-X.Y.*-amd64 of Debian suite SUITE
         an exact package name (linux-image-6.1.0-56-amd64), optionally as NAME@SUITE
         Suites other than the host's are read from apt lists of their own under the cache
         (\$DSTRACE_VM_CACHE/apt/SUITE), never from or into the host's apt configuration.
options:
  -t, --timeout SEC  kill the guest after SEC seconds (default $TIMEOUT; exit 124)
  --stall SEC        end a guest whose heartbeat (every 10 s) stopped SEC seconds ago,
                     boot included (default $STALL; exit 124, "stalled")
  -C, --workdir DIR  working directory in the guest (default: the repository)
  -e, --env NAME[=VALUE]  set NAME in the command's environment (no value: the host's)
  --rw DIR           share host directory DIR read-write at the same path (repeatable)
  --out DIR          host directory the guest sees as \$DSTRACE_VM_OUT (read-write)
  --log FILE         console log (default: a new run directory under \${TMPDIR:-/tmp})
  --keep             keep the run directory (console log, initramfs) after a success
  -v, --verbose      stream the whole console (boot messages too), not only the command's output
  -q, --quiet        stream nothing; the output is in the console log
  --prepare          only download and unpack the kernel; print its release and directory
  --mem MIB, --cpus N  guest size (default ${MEM} MiB, $CPUS CPUs)
environment: DSTRACE_VM_CACHE (kernel cache, default /var/cache/dstrace-vm), DSTRACE_VM_TIMEOUT,
  DSTRACE_VM_STALL, DSTRACE_VM_MEM, DSTRACE_VM_CPUS, DSTRACE_VM_QEMU, DSTRACE_VM_ACCEL (default tcg),
  DSTRACE_VM_APPEND (extra kernel command line)
EOF
}

die() { # harness error before the guest runs
	echo "$PROG: error: $*" >&2
	exit 125
}
note() { echo "$PROG: $*" >&2; }

# ---------------------------------------------------------------- arguments
KERNEL='' WORKDIR=$REPO LOG='' KEEP=0 STREAM=cmd PREPARE=0 OUTDIR=''
RW_DIRS=() ENV_VARS=()
while [ $# -gt 0 ]; do
	case $1 in
	-t | --timeout) TIMEOUT=${2:?}; shift 2 ;;
	--stall) STALL=${2:?}; shift 2 ;;
	-C | --workdir) WORKDIR=${2:?}; shift 2 ;;
	-e | --env)
		case ${2:?} in
		*=*) ENV_VARS+=("$2") ;;
		*) ENV_VARS+=("$2=${!2-}") ;;
		esac
		shift 2 ;;
	--rw) RW_DIRS+=("${2:?}"); shift 2 ;;
	--out) OUTDIR=${2:?}; shift 2 ;;
	--log) LOG=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-v | --verbose) STREAM=all; shift ;;
	-q | --quiet) STREAM=none; shift ;;
	--prepare) PREPARE=1; shift ;;
	--mem) MEM=${2:?}; shift 2 ;;
	--cpus) CPUS=${2:?}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	-*) usage >&2; die "unknown option $1" ;;
	*)
		[ -z "$KERNEL" ] || { usage >&2; die "unexpected argument $1 (missing --?)"; }
		KERNEL=$1; shift ;;
	esac
done
[ -n "$KERNEL" ] || { usage >&2; die "no KERNEL given"; }
if [ "$PREPARE" -eq 0 ] && [ $# -eq 0 ]; then
	usage >&2
	die "no COMMAND given"
fi
case $TIMEOUT in '' | *[!0-9]*) die "bad --timeout $TIMEOUT" ;; esac
case $STALL in '' | *[!0-9]* | 0) die "bad --stall $STALL (seconds, at least 1)" ;; esac
case $MEM$CPUS in *[!0-9]*) die "bad --mem/--cpus" ;; esac

# ---------------------------------------------------------------- host tools
need=()
for tool in "$QEMU":qemu-system-x86 busybox:busybox-static cpio:cpio depmod:kmod modprobe:kmod \
	xz:xz-utils gzip:gzip dpkg:dpkg apt-get:apt flock:util-linux timeout:coreutils; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
[ ${#need[@]} -eq 0 ] || die "missing host tools; install: apt-get install ${need[*]}"

# ---------------------------------------------------------------- kernel
# kernel_spec KERNEL: sets KRE (the package names KERNEL stands for, an ERE) and KSUITE (the
# Debian suite whose apt lists name them; empty: the host's own lists)
kernel_spec() {
	local k=$1 v
	KSUITE=''
	case $k in
	*@*) KSUITE=${k#*@} k=${k%%@*} ;;
	esac
	case $k in
	linux-image-*)
		KRE="^${k//./\\.}\$"
		KRE=${KRE//+/\\+}
		if [ -z "$KSUITE" ]; then
			case $k in
			linux-image-5.10.0-*) KSUITE=bullseye ;;
			*+deb13-*) KSUITE=trixie ;;
			esac
		fi
		;;
	5.10 | 5.10-bullseye) KSUITE=bullseye KRE='^linux-image-5\.10\.0-[0-9]+-amd64$' ;;
	6.12) KRE='^linux-image-6\.12\.[0-9]+\+deb12-amd64$' ;;
	6.12-trixie) KSUITE=trixie KRE='^linux-image-6\.12\.[0-9]+\+deb13-amd64$' ;;
	[0-9]*.[0-9]*-[a-z]*)
		v=${k%%-*} KSUITE=${k#*-}
		KRE="^linux-image-${v//./\\.}\\.[0-9]+(-[0-9]+)?(\\+deb[0-9]+)?-amd64\$"
		;;
	[0-9]*.[0-9]*) KRE="^linux-image-${k//./\\.}\\.[0-9]+(-[0-9]+)?(\\+deb[0-9]+)?-amd64\$" ;;
	*) return 1 ;;
	esac
	case $KSUITE in *[!a-z]*) return 1 ;; esac
}

# Apt for a suite the host does not use: its own sources list, lists and package cache under
# $CACHE/apt/SUITE, passed as -o options to each apt-get/apt-cache call. The host's
# sources.list(.d), /var/lib/apt/lists and pkgcache are neither read nor written, so what the
# host installs and upgrades does not change. Empty for the host's own lists.
APT_OPTS=()
suite_apt() { # suite_apt SUITE: sets APT_OPTS, writes the sources list the first time
	local suite=$1 dir=$CACHE/apt/$1
	APT_OPTS=()
	[ -n "$suite" ] || return 0
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/sources.list.d" ||
		die "cannot create $dir (set DSTRACE_VM_CACHE)"
	if [ ! -s "$dir/sources.list" ]; then
		local key=/usr/share/keyrings/debian-archive-keyring.gpg sec=$suite-security
		[ "$suite" = buster ] && sec=$suite/updates
		printf 'deb [signed-by=%s] http://deb.debian.org/debian %s main\n' "$key" "$suite" "$key" "$suite-updates" >"$dir/sources.list.tmp"
		printf 'deb [signed-by=%s] http://deb.debian.org/debian-security %s main\n' "$key" "$sec" >>"$dir/sources.list.tmp"
		mv "$dir/sources.list.tmp" "$dir/sources.list"
	fi
	APT_OPTS=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o "Dir::Etc::sourceparts=$dir/sources.list.d"
		-o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root)
}

# suite_update: refresh the suite's own lists when they are missing or a day old
suite_update() {
	local dir=$CACHE/apt/$KSUITE
	[ -n "$KSUITE" ] || return 0
	if [ -z "$(find "$dir/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
		note "updating the apt lists of $KSUITE (in $dir)"
		apt-get -q "${APT_OPTS[@]}" update >"$dir/update.log" 2>&1 ||
			{ cat "$dir/update.log" >&2; die "apt-get update for suite $KSUITE failed"; }
	fi
}

# newest_package REGEX: the newest package in apt's lists whose name matches
newest_package() {
	{ apt-cache "${APT_OPTS[@]}" search --names-only "$1" 2>/dev/null || :; } | cut -d' ' -f1 |
		{ grep -E "$1" || :; } | sort -V | tail -n1
}

# newest_cached REGEX: the newest kernel already unpacked in the cache
newest_cached() {
	local d
	for d in "$CACHE"/kernels/*/.dstrace-vm-ready; do
		[ -e "$d" ] || continue
		d=${d%/.dstrace-vm-ready}
		d=linux-image-${d##*/}
		echo "$d"
	done | { grep -E "$1" || :; } | sort -V | tail -n1
}

# extract_vmlinux BZIMAGE OUT: the uncompressed ELF vmlinux inside BZIMAGE. qemu boots it
# through its PVH entry point, skipping the decompression (1-2 s under TCG).
extract_vmlinux() {
	local in=$1 out=$2 spec tool magic off
	for spec in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
		tool=${spec%%:*} magic=${spec#*:}
		command -v "$tool" >/dev/null 2>&1 || continue
		for off in $(LC_ALL=C grep -aboP "$magic" "$in" 2>/dev/null | cut -d: -f1 | head -n3); do
			tail -c +$((off + 1)) "$in" | "$tool" -dc 2>/dev/null >"$out.tmp"
			if [ "$(head -c4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
				mv "$out.tmp" "$out"
				return 0
			fi
		done
	done
	rm -f "$out.tmp"
	return 1
}

# fetch_kernel PACKAGE: download and unpack PACKAGE into $CACHE/kernels/RELEASE
fetch_kernel() {
	local pkg=$1 rel=${1#linux-image-} kdir tmp
	kdir=$CACHE/kernels/$rel
	[ -e "$kdir/.dstrace-vm-ready" ] && return 0
	mkdir -p "$CACHE/kernels" || die "cannot create the kernel cache $CACHE (set DSTRACE_VM_CACHE)"
	exec 9>"$CACHE/.lock"
	flock 9
	if [ ! -e "$kdir/.dstrace-vm-ready" ]; then
		note "downloading $pkg into $CACHE"
		tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
		if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "${APT_OPTS[@]}" "$pkg" >download.log 2>&1); then
			cat "$tmp/download.log" >&2
			rm -rf "$tmp"
			die "apt-get download $pkg failed"
		fi
		dpkg -x "$tmp"/*.deb "$tmp/root" || { rm -rf "$tmp"; die "dpkg -x $pkg failed"; }
		# Debian 13's packages (merged /usr) ship the modules in /usr/lib/modules
		if [ ! -d "$tmp/root/lib/modules/$rel" ] && [ -d "$tmp/root/usr/lib/modules/$rel" ]; then
			mkdir -p "$tmp/root/lib/modules"
			mv "$tmp/root/usr/lib/modules/$rel" "$tmp/root/lib/modules/$rel"
		fi
		if [ ! -f "$tmp/root/boot/vmlinuz-$rel" ] || [ ! -d "$tmp/root/lib/modules/$rel" ]; then
			rm -rf "$tmp"
			die "$pkg has no boot/vmlinuz-$rel or lib/modules/$rel"
		fi
		depmod -b "$tmp/root" "$rel" || { rm -rf "$tmp"; die "depmod for $rel failed"; }
		extract_vmlinux "$tmp/root/boot/vmlinuz-$rel" "$tmp/root/boot/vmlinux-$rel" ||
			: >"$tmp/root/boot/.no-vmlinux"
		dpkg-deb -f "$tmp"/*.deb Version >"$tmp/root/.dstrace-vm-ready"
		rm -rf "$kdir"
		mv "$tmp/root" "$kdir"
		rm -rf "$tmp"
	fi
	flock -u 9
	exec 9>&-
}

# resolve_kernel KERNEL: sets KREL, KDIR (downloading when needed)
resolve_kernel() {
	local re pkg
	kernel_spec "$1" || die "bad KERNEL '$1' (want 5.10, 6.1, 6.12, 6.12-trixie, X.Y, X.Y-SUITE or a linux-image-... package)"
	re=$KRE
	suite_apt "$KSUITE"
	suite_update
	pkg=$(newest_package "$re")
	if [ -z "$pkg" ]; then
		pkg=$(newest_cached "$re")
		if [ -n "$pkg" ]; then
			note "no $1 kernel in apt's lists; using the cached ${pkg#linux-image-}"
		else
			note "no $1 kernel in apt's lists; running apt-get update"
			apt-get update -q "${APT_OPTS[@]}" >/dev/null 2>&1 || true
			pkg=$(newest_package "$re")
			[ -n "$pkg" ] || die "no package matches $re (apt-cache search${KSUITE:+, suite $KSUITE})"
		fi
	fi
	fetch_kernel "$pkg"
	KREL=${pkg#linux-image-}
	KDIR=$CACHE/kernels/$KREL
	# a cache unpacked before vmlinux extraction existed
	if [ ! -e "$KDIR/boot/vmlinux-$KREL" ] && [ ! -e "$KDIR/boot/.no-vmlinux" ] && [ -w "$KDIR/boot" ]; then
		extract_vmlinux "$KDIR/boot/vmlinuz-$KREL" "$KDIR/boot/vmlinux-$KREL" || : >"$KDIR/boot/.no-vmlinux"
	fi
}

resolve_kernel "$KERNEL"
if [ "$PREPARE" -eq 1 ]; then
	echo "$KREL $KDIR"
	exit 0
fi

# ---------------------------------------------------------------- run directory
WORKDIR=$(cd "$WORKDIR" 2>/dev/null && pwd -P) || die "no such directory: $WORKDIR"
RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/dstrace-vm.${KREL%%-*}.XXXXXX")
LOG=${LOG:-$RUNDIR/console.log}
: >"$LOG" || die "cannot write $LOG"
LOG=$(cd "$(dirname "$LOG")" && pwd -P)/$(basename "$LOG")
SHARE=$RUNDIR/share
mkdir -p "$SHARE/out" "$RUNDIR/initramfs"/{bin,modules}
if [ -n "$OUTDIR" ]; then
	mkdir -p "$OUTDIR" || die "cannot create --out $OUTDIR"
	OUTDIR=$(cd "$OUTDIR" && pwd -P)
fi
TOKEN=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
QPID='' TPID='' MPID=''

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	local rc=$?
	[ -n "$QPID" ] && kill "$QPID" 2>/dev/null
	[ -n "$TPID" ] && kill "$TPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	if [ "$rc" -eq 0 ] && [ "$KEEP" -eq 0 ]; then
		rm -rf "$RUNDIR"
	else
		rm -rf "$RUNDIR/initramfs" "$RUNDIR/initrd.img" "$SHARE/guest-init.sh"
	fi
	return "$rc"
}
trap cleanup EXIT
trap 'note "interrupted (log: $LOG)"; exit 130' INT TERM HUP

# sq STRING: STRING quoted for a POSIX shell
sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# ---------------------------------------------------------------- shares
# qemu option values escape ',' as ',,'
QEMU_FS=()
add_share() { # add_share TAG HOSTPATH ro|rw
	local ro=
	[ "$3" = ro ] && ro=,readonly=on
	QEMU_FS+=(-fsdev "local,id=fs_$1,path=${2//,/,,},security_model=none,multidevs=remap$ro"
		-device "virtio-9p-pci,fsdev=fs_$1,mount_tag=$1")
}
add_share hostroot / ro
add_share kmods "$KDIR/lib/modules/$KREL" ro
add_share vmrun "$SHARE" rw
{
	echo "KREL=$(sq "$KREL")"
	echo "REPO=$(sq "$REPO")"
	echo "TOKEN=$(sq "$TOKEN")"
	i=0
	for d in "${RW_DIRS[@]}"; do
		[ -d "$d" ] || die "--rw $d: no such directory"
		d=$(cd "$d" && pwd -P)
		add_share "rw$i" "$d" rw
		echo "RW_PATH_$i=$(sq "$d")"
		i=$((i + 1))
	done
	if [ -n "$OUTDIR" ]; then
		add_share out "$OUTDIR" rw
		echo "OUT_SHARED=1"
	fi
	echo "RW_COUNT=$i"
} >"$RUNDIR/initramfs/vm.conf"

# ---------------------------------------------------------------- guest files
cp "$HERE/guest-init.sh" "$SHARE/guest-init.sh"
{
	echo "TOKEN=$(printf '%q' "$TOKEN")"
	echo "REPO=$(printf '%q' "$REPO")"
	echo "WORKDIR=$(printf '%q' "$WORKDIR")"
} >"$SHARE/vm.env"
{
	printf 'cmd=('
	printf ' %q' "$@"
	printf ' )\ncmd_env=('
	[ ${#ENV_VARS[@]} -eq 0 ] || printf ' %q' "${ENV_VARS[@]}"
	printf ' )\n'
} >"$SHARE/cmd.sh"

# ---------------------------------------------------------------- initramfs
BUSYBOX=$(command -v busybox)
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
	LC_ALL=C grep -qa 'ld-linux' "$BUSYBOX" && die "$BUSYBOX is dynamically linked; apt-get install busybox-static"
fi
IR=$RUNDIR/initramfs
cp "$BUSYBOX" "$IR/bin/busybox"
ln -s busybox "$IR/bin/sh"
cp "$HERE/initramfs-init.sh" "$IR/init"
chmod 755 "$IR/init" "$IR/bin/busybox"
declare -A seen=()
: >"$IR/modules/order"
for m in "${INITRD_MODULES[@]}"; do
	deps=$(modprobe -d "$KDIR" -S "$KREL" --show-depends "$m" 2>/dev/null) || {
		note "warning: module $m not found for $KREL; skipped"
		continue
	}
	while read -r kind path _; do
		[ "$kind" = insmod ] || continue
		name=${path##*/}
		name=${name%%.ko*}.ko
		[ -z "${seen[$name]:-}" ] || continue
		seen[$name]=1
		case $path in
		*.ko.xz) xz -dc "$path" >"$IR/modules/$name" ;;
		*.ko.zst) zstd -qdc "$path" >"$IR/modules/$name" ;;
		*.ko.gz) gzip -dc "$path" >"$IR/modules/$name" ;;
		*) cp "$path" "$IR/modules/$name" ;;
		esac || die "cannot unpack $path"
		echo "$name" >>"$IR/modules/order"
	done <<<"$deps"
done
(cd "$IR" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$RUNDIR/initrd.img" ||
	die "cannot build the initramfs"

# ---------------------------------------------------------------- boot
# softlockup_panic: a CPU stuck for 20 s ends the guest at once (exit 125) instead of at the
# timeout (see tests/vm/matrix.sh: qemu's TCG can loop in a stale copy of patched text)
# unknown_nmi_panic: the NMI that run-in-vm sends a stalled guest (below) prints where its
# kernel is and ends it.
CMDLINE="console=ttyS0,115200 panic=-1 oops=panic softlockup_panic=1 unknown_nmi_panic=1"
CMDLINE+=" rdinit=/init"
CMDLINE+=" mitigations=off tsc=reliable"
CMDLINE+=" loglevel=4 ${APPEND_EXTRA}"
KIMAGE=$KDIR/boot/vmlinux-$KREL
[ -f "$KIMAGE" ] || KIMAGE=$KDIR/boot/vmlinuz-$KREL
ACCEL_ARGS=(-accel "$ACCEL")
if [ "$ACCEL" = kvm ]; then ACCEL_ARGS+=(-cpu host); else ACCEL_ARGS+=(-cpu max); fi

# The console goes through a FIFO: tee keeps all of it in the log and sed streams the
# command's output (between the markers), or all of it with -v, as it comes.
mkfifo "$RUNDIR/console.fifo"
if [ "$STREAM" = none ]; then
	cat <"$RUNDIR/console.fifo" >"$LOG" &
else
	# sed -u: line by line as it comes (mawk would sit on a block of input)
	if [ "$STREAM" = all ]; then
		filter=('s/\r$//')
	else
		filter=(-n "s/\r$//; \|@@dstrace-vm:$TOKEN:begin@@|,\|@@dstrace-vm:$TOKEN:end@@|{\|@@dstrace-vm:$TOKEN:|d; p}")
	fi
	tee "$LOG" <"$RUNDIR/console.fifo" | sed -u "${filter[@]}" &
fi
TPID=$!

# qemu's monitor on two FIFOs (mon.in, mon.out): the watchdog below sends it "nmi"
mkfifo "$RUNDIR/mon.in" "$RUNDIR/mon.out"
T0=$(date +%s.%N)
timeout -k 10 "$TIMEOUT" "$QEMU" -name "dstrace-vm-$KREL" -nodefaults -no-user-config \
	-display none -no-reboot "${ACCEL_ARGS[@]}" -smp "$CPUS" -m "$MEM" \
	-kernel "$KIMAGE" -initrd "$RUNDIR/initrd.img" -append "$CMDLINE" \
	-chardev "file,id=con,path=$RUNDIR/console.fifo" -serial chardev:con -nic none \
	-monitor "pipe:$RUNDIR/mon" \
	-device virtio-rng-pci "${QEMU_FS[@]}" </dev/null >"$RUNDIR/qemu.err" 2>&1 &
QPID=$!
# the monitor's output is read (and dropped) so that it never fills its FIFO; its input is
# held open read-write, so that writing "nmi" never blocks or fails, whether qemu is there
exec {mon_out}<>"$RUNDIR/mon.out" {mon_in}<>"$RUNDIR/mon.in"
cat <&"$mon_out" >/dev/null &
MPID=$!

# Watchdog: the guest's heartbeat is a counter that guest-init.sh writes to $SHARE/alive every
# 10 s. A guest whose counter has not moved for $STALL s (boot included) is wedged without a
# panic (seen once under TCG: no output, no lockup report, until the timeout). Its kernel is
# sent an NMI, which (unknown_nmi_panic) prints where a CPU is and ends it; what is left is
# killed 10 s later. The run ends "stalled" (exit 124), which tests/vm/matrix.sh retries once.
STALLED=0
beat='' last=$SECONDS
while kill -0 "$QPID" 2>/dev/null; do
	read -r -t 1 <> <(:) || true # sleep 1 s without an exec
	b=''
	read -r b 2>/dev/null <"$SHARE/alive" || true
	if [ "$b" != "$beat" ]; then
		beat=$b last=$SECONDS
	elif [ $((SECONDS - last)) -ge "$STALL" ]; then
		STALLED=$((SECONDS - last))
		note "the guest's heartbeat stopped ${STALLED} s ago (at ${beat:-nothing}): NMI, then kill"
		echo nmi >&"$mon_in" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$QPID" 2>/dev/null || break
			read -r -t 1 <> <(:) || true
		done
		kill "$QPID" 2>/dev/null || true
		break
	fi
done

set +e
wait "$QPID"
qrc=$?
set -e
QPID=
kill "$MPID" 2>/dev/null || true
wait "$MPID" 2>/dev/null || true
MPID=
exec {mon_out}>&- {mon_in}>&-
# qemu is gone and the reader sees EOF; if qemu died before opening the FIFO, the reader is
# still blocked in open(): opening it read-write here (never blocks) and closing lets it go.
if [ -n "$TPID" ]; then
	exec {fifo_fd}<>"$RUNDIR/console.fifo"
	exec {fifo_fd}>&-
	wait "$TPID" 2>/dev/null
	TPID=
fi
ELAPSED=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

# ---------------------------------------------------------------- verdict
fail() { # fail CODE MESSAGE
	echo "$PROG: FAIL ($KREL): $2 (log: $LOG)" >&2
	exit "$1"
}
status=
if [ -f "$SHARE/status" ]; then
	status=$(cat "$SHARE/status")
else
	status=$(tr -d '\r' <"$LOG" | sed -n "s/^@@dstrace-vm:$TOKEN:exit=\([0-9]*\)@@$/\1/p" | tail -n1)
fi
case $status in *[!0-9]*) status= ;; esac
if [ "$STALLED" -gt 0 ]; then
	# where the NMI found a CPU (the first RIP after it: not an earlier warning's)
	where=$(awk '/NMI received/ { n = 1 } n && /RIP: 00[0-9]+:/ {
		gsub(/\r/, ""); sub(/^\[[^]]*\] */, ""); print; exit }' "$LOG") || where=
	# the command had ended (its status written) when the guest stopped: its status stands
	[ -n "$status" ] || fail 124 "the guest stalled: no heartbeat for ${STALLED} s${where:+ (its kernel at $where)}"
	note "warning: the guest stalled after the command exited $status${where:+ (its kernel at $where)}"
fi

if grep -qaE 'Kernel panic - not syncing' "$LOG"; then
	reason=$(tr -d '\r' <"$LOG" | grep -aE -m1 'Kernel panic - not syncing' | sed 's/^\[[^]]*\] *//')
	[ -n "$status" ] || fail 125 "guest kernel panic: $reason"
	note "warning: the guest panicked after the command exited $status: $reason (log: $LOG)"
fi
if [ -z "$status" ]; then
	[ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ] && fail 124 "timed out after ${TIMEOUT}s"
	grep -qa "@@dstrace-vm:$TOKEN:stage1-failed@@" "$LOG" &&
		fail 125 "guest boot failed: $(tr -d '\r' <"$LOG" | grep -a -m1 'stage1: FATAL' | sed 's/.*FATAL: //')"
	if [ "$qrc" -ne 0 ]; then
		fail 125 "qemu exited $qrc: $(tail -n1 "$RUNDIR/qemu.err")"
	fi
	grep -qa "@@dstrace-vm:$TOKEN:begin@@" "$LOG" && fail 125 "the guest stopped while the command ran; no status"
	fail 125 "the guest never reported a status (boot failure?)"
fi
if tr -d '\r' <"$LOG" | grep -qaE '^\[ *[0-9]+\.[0-9]+\] .*(BUG:|Oops|WARNING: CPU:|general protection fault|Call Trace:)'; then
	note "warning: kernel oops/warning in the guest console (log: $LOG)"
	KEEP=1
fi
[ "$KEEP" -eq 1 ] && note "kernel $KREL, ${ELAPSED}s, exit $status (run directory: $RUNDIR)"
if [ "$status" -ne 0 ]; then
	note "command exited $status in the $KREL guest (log: $LOG)"
fi
exit "$status"
