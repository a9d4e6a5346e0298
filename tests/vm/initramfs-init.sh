#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Stage 1 of the dstrace test VM: /init of the busybox initramfs that run-in-vm.sh builds.
# Loads the few modules needed to reach the host's root filesystem (virtio, 9p, overlay),
# mounts it read-only over 9p under a tmpfs overlay, mounts the per-run share, the guest
# kernel's modules and the --rw shares, then switch_roots into stage 2 (guest-init.sh),
# which runs in the host's userland. Any failure here prints a marker and powers off:
# the host then reports "guest never reported a status".
# /vm.conf (written by run-in-vm.sh) sets KREL, REPO, TOKEN, RW_COUNT, RW_PATH_<n>, OUT_SHARED.

export PATH=/bin
/bin/busybox --install -s /bin

die() {
	echo "dstrace-vm stage1: FATAL: $*"
	echo "@@dstrace-vm:${TOKEN:-none}:stage1-failed@@"
	sync
	echo o >/proc/sysrq-trigger
	sleep 5
	poweroff -f
}

mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
# shellcheck source=/dev/null
. /vm.conf || die "no /vm.conf"

echo "dstrace-vm stage1: kernel $(uname -r), loading modules"
while read -r ko; do
	[ -n "$ko" ] || continue
	insmod "/modules/$ko" || die "insmod $ko failed"
done </modules/order

P9="trans=virtio,version=9p2000.L,msize=262144"
mkdir -p /lower /rw /newroot
mount -t 9p -o "$P9,ro,cache=loose" hostroot /lower || die "cannot mount the host root over 9p"
mount -t tmpfs -o mode=0755 tmpfs /rw || die "cannot mount tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
	die "cannot mount the overlay root"

# A fresh /run and /tmp, as on a booted machine (the host's pid files and sockets stay out),
# and /etc/netns: the host's tests churn theirs, and a lower directory that changes under the
# overlay cannot be copied up (mkdir in it fails with ENOENT).
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || die "cannot mount /run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /newroot/tmp || die "cannot mount /tmp"
mkdir -p /newroot/etc/netns
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/etc/netns || die "cannot mount /etc/netns"
# ... but a repository that lives under /tmp or /run must stay visible.
case "$REPO/" in
/tmp/* | /run/*)
	mkdir -p /rw/repo/upper /rw/repo/work "/newroot$REPO"
	mount -t overlay overlay -o "lowerdir=/lower$REPO,upperdir=/rw/repo/upper,workdir=/rw/repo/work" \
		"/newroot$REPO" || die "cannot mount the repository $REPO"
	;;
esac

mkdir -p /newroot/run/dstrace-vm
mount -t 9p -o "$P9,rw" vmrun /newroot/run/dstrace-vm || die "cannot mount the run directory"
if [ "${OUT_SHARED:-0}" = 1 ]; then
	mount -t 9p -o "$P9,rw" out /newroot/run/dstrace-vm/out || die "cannot mount --out"
fi
mkdir -p "/newroot/lib/modules/$KREL"
mount -t 9p -o "$P9,ro,cache=loose" kmods "/newroot/lib/modules/$KREL" ||
	die "cannot mount /lib/modules/$KREL"

i=0
while [ "$i" -lt "${RW_COUNT:-0}" ]; do
	p=''
	eval "p=\$RW_PATH_$i"
	mkdir -p "/newroot$p"
	mount -t 9p -o "$P9,rw" "rw$i" "/newroot$p" || die "cannot mount --rw $p"
	i=$((i + 1))
done

for d in proc sys dev; do
	mkdir -p "/newroot/$d"
	mount -o move "/$d" "/newroot/$d" || die "cannot move /$d"
done

# The rest of a booted machine, done here with busybox: each exec of the host's
# dynamically linked tools over 9p costs about 0.1 s under TCG.
mnt() { # mnt TYPE TARGET [OPTIONS]
	mkdir -p "/newroot$2"
	mount -t "$1" ${3:+-o "$3"} "$1" "/newroot$2" || echo "dstrace-vm stage1: warning: cannot mount $1 on $2"
}
mnt devpts /dev/pts gid=5,mode=620,ptmxmode=666
mnt tmpfs /dev/shm mode=1777,nosuid,nodev
mnt mqueue /dev/mqueue
mnt cgroup2 /sys/fs/cgroup nsdelegate
mnt bpf /sys/fs/bpf mode=700
mnt tracefs /sys/kernel/tracing
mnt debugfs /sys/kernel/debug
mnt securityfs /sys/kernel/security
ln -s /proc/self/fd /newroot/dev/fd
ln -s /proc/self/fd/0 /newroot/dev/stdin
ln -s /proc/self/fd/1 /newroot/dev/stdout
ln -s /proc/self/fd/2 /newroot/dev/stderr
mkdir -p /newroot/run/lock /newroot/run/netns /newroot/var/tmp
chmod 1777 /newroot/run/lock /newroot/var/tmp
hostname dstrace-vm
ip link set lo up || echo "dstrace-vm stage1: warning: cannot bring up lo"
# Boot is quiet (loglevel=4); from here on warnings too (WARN splats) reach the console.
echo 5 >/newroot/proc/sys/kernel/printk

[ -r /newroot/run/dstrace-vm/guest-init.sh ] || die "no stage 2 script"
# shellcheck disable=SC2093 # die runs only if the exec fails
exec switch_root /newroot /bin/bash /run/dstrace-vm/guest-init.sh
die "switch_root failed"
