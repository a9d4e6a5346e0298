/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One handler per mapping path. A backend's attach wrappers find the socket, the peer and
 * the result the way their hook allows, then call one of these; everything that turns kernel
 * state into a dstrace event or a counter lives here, so every backend reports the same. That
 * includes which calls count: the handlers get the call's flags and result and decide (a
 * peek, an error-queue read, a failed read are not counted: recv_counted()).
 */
#ifndef DSTRACE_PATHS_BPF_H
#define DSTRACE_PATHS_BPF_H

#include "maps.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define IPPROTO_MPTCP 262
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_LISTEN 10
#define MSG_PEEK 2
#define MSG_TRUNC 0x20
#define MSG_ERRQUEUE 0x2000
#define ETH_P_IP 0x0800
#define EINTR 4
#define EEXIST 17
#define ECONNABORTED 103
#define EISCONN 106
#define EALREADY 114
#define EINPROGRESS 115
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514

static __always_inline void counter_add(__u32 idx, __u64 val)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		*c += val; /* per-CPU slot */
}

static __always_inline bool in6_is_v4mapped(const __u32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff);
}

static __always_inline bool filter_comm_is(const char *comm)
{
	for (int i = 0; i < DSTRACE_COMM_LEN; i++) {
		if (comm[i] != filter_comm[i])
			return false;
		if (!comm[i])
			break;
	}
	return true;
}

/* The name of task's process (0: the current task's): its thread group leader's, what ps
 * and /proc/PID/comm show, whatever names its other threads took (prctl(PR_SET_NAME),
 * pthread_setname_np: a JVM's, a tokio runtime's workers). false if it cannot be read. */
static __always_inline bool proc_comm(__u64 task, char comm[DSTRACE_COMM_LEN])
{
	if (!task)
		task = bpf_get_current_task();
	return BPF_CORE_READ_STR_INTO((char (*)[DSTRACE_COMM_LEN])comm, (struct task_struct *)task,
				      group_leader, comm) > 0;
}

/* The process filters (-p, -c), on the identity of whoever acts: comm, the acting thread's
 * name, of task (0: the current task). -c NAME takes the thread named NAME and every thread
 * of a process named NAME. */
static __always_inline bool filter_process(__u32 tgid, const char *comm, __u64 task)
{
	char pcomm[DSTRACE_COMM_LEN];

	if (filter_pid_enabled && !bpf_map_lookup_elem(&pid_filter, &tgid))
		return false;
	if (filter_comm_enabled && !filter_comm_is(comm))
		return proc_comm(task, pcomm) && filter_comm_is(pcomm);
	return true;
}

/* The traffic filters (-P, --tcp/--udp, -e). UDP-Lite is selected with UDP. */
static __always_inline bool filter_flow(__u8 kind, __u8 proto, __u16 lport, __u16 rport)
{
	if (!(filter_events & DSTRACE_EVMASK(kind)) ||
	    !(filter_protos & DSTRACE_PROTOMASK(DSTRACE_PROTO_COUNTED(proto))))
		return false;
	return !filter_port || lport == filter_port || rport == filter_port;
}

/* Does the user's filter let this through? (the current task acts) */
static __always_inline bool dstrace_wanted(__u8 kind, __u8 proto, __u32 tgid, __u16 lport,
					   __u16 rport)
{
	char comm[DSTRACE_COMM_LEN] = {};

	if (!filter_flow(kind, proto, lport, rport))
		return false;
	if (filter_comm_enabled)
		bpf_get_current_comm(comm, sizeof(comm));
	return filter_process(tgid, comm, 0);
}

/* When a process started (its thread group leader's start_time, which exec keeps): with the
 * tgid, names one process even when the pid is reused. task: 0 for the current one. */
static __always_inline __u64 proc_start_ns(__u64 task)
{
	if (!task)
		task = bpf_get_current_task();
	return BPF_CORE_READ((struct task_struct *)task, group_leader, start_time);
}

/* The same for the current task; task_btf: through the task's BTF, with direct loads (Linux
 * 5.11+; not on the kprobe backend, which runs on 5.10 too; in cgroup programs only where
 * the kernel allows it there: ident_current_id). */
static __always_inline __u64 proc_start_now(bool task_btf)
{
	if (task_btf)
		return bpf_get_current_task_btf()->group_leader->start_time;
	return proc_start_ns(0);
}

/* The current task, in a cgroup sock_addr hook: which process and thread (the rest:
 * ident_current_rest). Through the task's BTF where the kernel allows it there
 * (cgroup_task_btf): four loads in place of two helper calls and two probe reads (160 ns per
 * connect here); the verifier drops the branch not taken. */
static __always_inline void ident_current_id(struct task_ident *who)
{
	__u64 id;

	if (cgroup_task_btf) {
		struct task_struct *task = bpf_get_current_task_btf();

		who->tgid = task->tgid;
		who->tid = task->pid;
		who->start_ns = task->group_leader->start_time;
		return;
	}
	id = bpf_get_current_pid_tgid();
	who->tgid = id >> 32;
	who->tid = (__u32)id;
	who->start_ns = proc_start_ns(0);
}

/* The rest of the current task's identity, for an event or a new process entry: three helper
 * calls (80-200 ns here in all), so taken only where one of those needs it. Its network
 * namespace is read only if a process entry is made. */
static __always_inline void ident_current_rest(struct task_ident *who)
{
	who->uid = (__u32)bpf_get_current_uid_gid();
	who->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(who->comm, sizeof(who->comm));
}

/* The executable's path into the new process entry being built (proc_scratch), last
 * component first, crossing mount points up to the root the task sees: a bounded d_path()
 * (once per process). A global function: the verifier checks it once, not in every program
 * that creates a process entry; its arguments are scalars (before Linux 5.12 a global
 * function takes no pointer to a map value), so it finds the entry itself. */
__noinline int read_exe_path(__u64 exe_file)
{
	__u32 zero = 0;
	struct dstrace_proc_stats *st = bpf_map_lookup_elem(&proc_scratch, &zero);
	struct file *exe = (struct file *)exe_file;
	struct dentry *dentry = BPF_CORE_READ(exe, f_path.dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(exe, f_path.mnt);
	struct mount *mnt = container_of(vfsmnt, struct mount, mnt);
	int part = 0;

	if (!st)
		return 0;
	for (int i = 0; i < DSTRACE_EXE_PARTS * 2; i++) {
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);

		if (dentry == BPF_CORE_READ(vfsmnt, mnt_root) || dentry == parent) {
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

			if (up == mnt || !up)
				return 0; /* the root */
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			vfsmnt = &up->mnt;
			continue;
		}
		if (part >= DSTRACE_EXE_PARTS) {
			st->exe_parts_full = 1;
			return 0;
		}
		bpf_probe_read_kernel_str(st->exe_parts[part], DSTRACE_EXE_PART_LEN,
					  BPF_CORE_READ(dentry, d_name.name));
		part++;
		dentry = parent;
	}
	st->exe_parts_full = 1;
	return 0;
}

/* Is this entry the process's that started at start_ns, still open for counting? An ended
 * one (exit, exec, marked in place when proc_exited was full) waits for user space,
 * untouched; one of another process with the same pid (its exit missed) is marked ended
 * here. Either way this update has no entry: counted as the table being full. */
static __always_inline bool proc_entry_current(struct dstrace_proc_stats *st, __u64 start_ns)
{
	if (!st->exit_ns && st->start_ns == start_ns)
		return true;
	if (!st->exit_ns) {
		st->ended_by = DSTRACE_END_STALE;
		st->exit_ns = bpf_ktime_get_boot_ns();
	}
	counter_add(DSTRACE_CNT_PROC_FULL, 1);
	return false;
}

/* A process's totals, created on first use. who: the process, read in its own context, and
 * task its task_struct; NULL and 0 for the current task. netns: its network namespace, or 0
 * to read the task's if the entry is made. A full table is counted, not hidden. */
static __always_inline struct dstrace_proc_stats *
proc_entry_who(__u32 netns, __u32 tgid, const struct task_ident *who, __u64 task, bool task_btf)
{
	struct dstrace_proc_stats *st = bpf_map_lookup_elem(&proc_stats, &tgid);
	__u64 start_ns = who ? who->start_ns : proc_start_now(task_btf);
	struct dstrace_proc_stats *init;
	char name[DSTRACE_COMM_LEN];
	__u32 zero = 0;

	if (st)
		return proc_entry_current(st, start_ns) ? st : NULL;
	init = bpf_map_lookup_elem(&proc_scratch, &zero);
	if (!init)
		return NULL;
	__builtin_memset(init, 0, sizeof(*init));
	if (who) {
		init->uid = who->uid;
		init->cgroup_id = who->cgroup_id;
		__builtin_memcpy(init->comm, who->comm, sizeof(init->comm));
	} else {
		init->uid = (__u32)bpf_get_current_uid_gid();
		init->cgroup_id = bpf_get_current_cgroup_id();
		bpf_get_current_comm(init->comm, sizeof(init->comm));
		task = bpf_get_current_task();
	}
	/* the process's name, not the acting thread's (kept if it cannot be read) */
	if (proc_comm(task, name))
		__builtin_memcpy(init->comm, name, sizeof(init->comm));
	/* 0: the task's (read here, once per process) */
	init->netns = netns ?: BPF_CORE_READ((struct task_struct *)task, nsproxy, net_ns, ns.inum);
	init->first_ns = bpf_ktime_get_boot_ns();
	init->start_ns = start_ns;
	read_exe_path((__u64)BPF_CORE_READ((struct task_struct *)task, mm, exe_file));
	if (bpf_map_update_elem(&proc_stats, &tgid, init, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&proc_stats, &tgid)) {
		counter_add(DSTRACE_CNT_PROC_FULL, 1);
		return NULL;
	}
	st = bpf_map_lookup_elem(&proc_stats, &tgid);
	return st && proc_entry_current(st, start_ns) ? st : NULL;
}

/* The current process's totals (in the process's own context; task_btf: proc_start_now). */
static __always_inline struct dstrace_proc_stats *proc_entry_ns(__u32 netns, __u32 tgid,
								bool task_btf)
{
	return proc_entry_who(netns, tgid, NULL, 0, task_btf);
}

static __always_inline __u32 sk_netns(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* The same, sk's namespace read only when the entry is made (most calls find it). */
static __always_inline struct dstrace_proc_stats *proc_entry(struct sock *sk, __u32 tgid,
							     bool task_btf)
{
	struct dstrace_proc_stats *st = bpf_map_lookup_elem(&proc_stats, &tgid);

	if (st && !st->exit_ns && st->start_ns == proc_start_now(task_btf))
		return st;
	return proc_entry_ns(sk_netns(sk), tgid, task_btf);
}

/* A remote address the process has met (a connection, a failure, a new UDP flow): counted
 * once per (process, address). Not per datagram: every new peer starts a new flow. The entry's
 * last_peer, an address already in proc_peers for it (whichever CPU wrote it last), spares
 * the table's lookup when the same peer comes again (a client's server, a server's proxy). */
static __always_inline void proc_peer(struct dstrace_proc_stats *st, __u32 tgid, __u32 raddr)
{
	struct dstrace_peer_key peer = { .tgid = tgid, .raddr = raddr };
	__u8 one = 1;
	long err;

	if (!st || (raddr && st->last_peer == raddr))
		return;
	peer.first_ns = st->first_ns;
	if (bpf_map_lookup_elem(&proc_peers, &peer)) {
		st->last_peer = raddr;
		return;
	}
	if (st->peers >= PEER_PAIRS_PER_ENTRY) {
		st->peers_partial = 1;
		return;
	}
	err = bpf_map_update_elem(&proc_peers, &peer, &one, BPF_NOEXIST);
	if (!err)
		__sync_fetch_and_add(&st->peers, 1);
	else if (err != -EEXIST) /* another CPU counted it; else the table is full */
		st->peers_partial = 1;
	if (!err || err == -EEXIST)
		st->last_peer = raddr;
}

/* The entry counted just now: its last_ns, from user space's clock (coarse_boot_ns: early by
 * up to one pass of its loop, 100 ms when idle, more while a pass blocks), never before its
 * first_ns, which is exact (it names the entry: proc_peers' key). */
static __always_inline void proc_touch(struct dstrace_proc_stats *st)
{
	__u64 now = coarse_boot_ns;

	if (!now)
		now = bpf_ktime_get_boot_ns();
	st->last_ns = now > st->first_ns ? now : st->first_ns;
}

/* Count n connections or datagrams, or one failure, and their payload bytes. */
static __always_inline struct dstrace_proc_stats *
proc_account(struct dstrace_proc_stats *st, __u8 kind, __u8 proto, bool failed, __u64 n,
	     __u64 bytes)
{
	proto = DSTRACE_PROTO_COUNTED(proto);
	if (!st || proto >= DSTRACE_PROTO_MAX)
		return NULL;
	proc_touch(st);
	if (failed)
		__sync_fetch_and_add(&st->failed, 1);
	else if (n && kind < DSTRACE_EV_MAX)
		__sync_fetch_and_add(&st->counts[kind][proto], n);
	if (bytes)
		__sync_fetch_and_add(&st->bytes[kind == DSTRACE_EV_RECV][proto], bytes);
	return st;
}

/* The socket's inode number: unique among live sockets and never reused soon, unlike the
 * struct sock address, and readable by every kind of BPF program. */
static __always_inline __u64 sk_ino(struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
}

/* The local end an event shows. */
enum local_end {
	LOCAL_NONE = 0,	 /* none (a connect that failed before the kernel chose one) */
	LOCAL_SOCK = 1,	 /* the socket's */
	LOCAL_GIVEN = 2, /* the one asked for (a failed bind) */
};

struct given_local {
	__u32 addr;
	__u16 port;
};

/* Write one event; a full ring buffer is counted as lost. who: the task that acted, or NULL
 * for the current one. */
/* The name an outbound event's peer came from, if the process resolved it (e->pid set). */
static __always_inline void name_of(struct dstrace_event *e, __u8 kind, __u8 flags, __u32 raddr)
{
	struct name_key k = { .tgid = e->pid, .addr = raddr };
	struct name_val *v;

	e->name_flags = 0;
	__builtin_memset(e->name, 0, sizeof(e->name));
	if ((kind != DSTRACE_EV_CONNECT && kind != DSTRACE_EV_SEND) || (flags & DSTRACE_F_NO_REMOTE))
		return;
	v = bpf_map_lookup_elem(&resolved, &k);
	if (!v)
		return;
	__builtin_memcpy(e->name, v->name, sizeof(e->name));
	e->name[DSTRACE_NAME_LEN - 1] = '\0';
	e->name_flags = (__u8)(v->flags | DSTRACE_NAME_KNOWN);
}

static __always_inline void emit_event_full(struct sock *sk, __u64 ino, __u8 kind, __u8 proto,
					    __u32 raddr, __u16 rport, int ret,
					    enum local_end local, const struct given_local *given,
					    const struct task_ident *who, __u8 flags,
					    const struct fallback_rec *fb, __u64 entry_ns)
{
	struct dstrace_event *e;

	if (!emit_events)
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		counter_add(DSTRACE_CNT_LOST, 1);
		return;
	}
	e->ts_ns = bpf_ktime_get_boot_ns();
	if (who) {
		e->cgroup_id = who->cgroup_id;
		e->pid = who->tgid;
		e->tid = who->tid;
		e->uid = who->uid;
		__builtin_memcpy(e->comm, who->comm, sizeof(e->comm));
	} else {
		__u64 id = bpf_get_current_pid_tgid();

		e->cgroup_id = bpf_get_current_cgroup_id();
		e->pid = id >> 32;
		e->tid = (__u32)id;
		e->uid = (__u32)bpf_get_current_uid_gid();
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	name_of(e, kind, flags, raddr);
	if (fb && (flags & DSTRACE_F_FALLBACK)) {
		__builtin_memcpy(e->fb_addr6, fb->addr6, sizeof(e->fb_addr6));
		e->fb_err = fb->err;
		e->fb_lost_ns = fb->start_ns;
	} else {
		__builtin_memset(e->fb_addr6, 0, sizeof(e->fb_addr6));
		e->fb_err = 0;
		e->fb_lost_ns = 0;
	}
	e->fb_pad = 0;
	e->entry_ns = entry_ns;
	e->sock_ino = ino;
	e->netns = sk_netns(sk);
	e->raddr = raddr;
	e->rport = rport;
	e->ret = ret;
	e->kind = kind;
	e->proto = proto;
	/* A connection refused before we looked has already given its port back. */
	if (local == LOCAL_GIVEN && given) {
		e->laddr = given->addr;
		e->lport = given->port;
		e->flags = DSTRACE_F_HAVE_LOCAL | flags;
	} else if (local == LOCAL_SOCK && (e->lport = BPF_CORE_READ(sk, __sk_common.skc_num))) {
		e->laddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		e->flags = DSTRACE_F_HAVE_LOCAL | flags;
	} else {
		e->laddr = 0;
		e->lport = 0;
		e->flags = flags;
	}
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
				      BPF_RB_FORCE_WAKEUP :
				      BPF_RB_NO_WAKEUP);
	counter_add(DSTRACE_CNT_EVENTS, 1);
}

static __always_inline void emit_event_as(struct sock *sk, __u64 ino, __u8 kind, __u8 proto,
					  __u32 raddr, __u16 rport, int ret, bool have_local,
					  const struct task_ident *who, __u8 flags)
{
	emit_event_full(sk, ino, kind, proto, raddr, rport, ret, have_local ? LOCAL_SOCK : LOCAL_NONE,
			NULL, who, flags, NULL, 0);
}

static __always_inline void emit_event(struct sock *sk, __u64 ino, __u8 kind, __u8 proto,
				       __u32 raddr, __u16 rport, int ret, bool have_local)
{
	emit_event_as(sk, ino, kind, proto, raddr, rport, ret, have_local, NULL, 0);
}

/* dstrace's protocol of an AF_INET6 socket's IP protocol; false for those it does not watch. */
static __always_inline bool proto_of(__u16 protocol, __u8 *proto)
{
	switch (protocol) {
	case IPPROTO_TCP:
	case IPPROTO_MPTCP:
		*proto = DSTRACE_PROTO_TCP;
		return true;
	case IPPROTO_UDP:
		*proto = DSTRACE_PROTO_UDP;
		return true;
	case IPPROTO_UDPLITE:
		*proto = DSTRACE_PROTO_UDPLITE;
		return true;
	default:
		return false;
	}
}

/* A field of sk: loaded directly where sk is a BTF pointer (tp_btf, fentry: btf is a constant
 * true and the compiler drops the other branch), copied by a CO-RE probe read where it is not
 * (kprobe). A direct load costs a load; a probe read, a helper call. */
#define SK_READ(btf, sk, ...) ((btf) ? (sk)->__VA_ARGS__ : BPF_CORE_READ(sk, __VA_ARGS__))

static __always_inline __u64 sk_cookie_as(struct sock *sk, bool btf)
{
	return SK_READ(btf, sk, __sk_common.skc_cookie.counter);
}

static __always_inline __u64 sk_cookie(struct sock *sk)
{
	return sk_cookie_as(sk, false);
}

/* An AF_INET6 socket of a protocol dstrace watches: *proto says which. */
static __always_inline bool sk_is_inet6_as(struct sock *sk, __u8 *proto, bool btf)
{
	if (SK_READ(btf, sk, __sk_common.skc_family) != AF_INET6)
		return false;
	return proto_of(SK_READ(btf, sk, sk_protocol), proto);
}

static __always_inline bool sk_is_inet6(struct sock *sk, __u8 *proto)
{
	return sk_is_inet6_as(sk, proto, false);
}

/* The socket's connected peer, if it is IPv4-mapped (btf: SK_READ). */
static __always_inline bool sk_mapped_peer_as(struct sock *sk, __u32 *raddr, __u16 *rport,
					      bool btf)
{
	__u32 daddr6[4];

	if (btf)
		__builtin_memcpy(daddr6, sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32,
				 sizeof(daddr6));
	else
		BPF_CORE_READ_INTO(&daddr6, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	if (!in6_is_v4mapped(daddr6))
		return false;
	*raddr = daddr6[3];
	*rport = bpf_ntohs(SK_READ(btf, sk, __sk_common.skc_dport));
	return true;
}

static __always_inline bool sk_mapped_peer(struct sock *sk, __u32 *raddr, __u16 *rport)
{
	return sk_mapped_peer_as(sk, raddr, rport, false);
}

/* The local port, for the -P filter only (no read without one). */
static __always_inline __u16 sk_lport_filtered(struct sock *sk, bool btf)
{
	return filter_port ? SK_READ(btf, sk, __sk_common.skc_num) : 0;
}

static __always_inline bool sk_is_v6only(struct sock *sk)
{
	return BPF_CORE_READ_BITFIELD_PROBED(&sk->__sk_common, skc_ipv6only);
}

/*
 * The peer of a datagram, handed from the hook that sees it to the one that counts it in the
 * same call: per thread and direction (key: tid << 1 | received), so threads sharing a socket
 * never overwrite each other's, and checked against the socket's cookie. The thread's slot
 * in dgram_slots when it is free or already the thread's, else the LRU hash (maps.bpf.h).
 * slots: a constant, false in kprobe programs: they also run on kernels before 5.12, whose
 * verifier refuses a compare-and-exchange anywhere in a program; they use the hash only.
 * task_btf: the thread from the task's BTF (tracing programs but kprobes; cgroup hooks where
 * cgroup_task_btf), else from a helper call: the same tid either way, so the hook that hands
 * over and the one that takes may differ.
 */
static __always_inline __u32 dgram_handoff_key(bool received, bool task_btf)
{
	__u32 tid = task_btf ? bpf_get_current_task_btf()->pid : (__u32)bpf_get_current_pid_tgid();

	return tid << 1 | received;
}

static __always_inline struct dgram_slot *dgram_slot_of(__u32 key)
{
	__u32 idx = key & (DGRAM_HANDOFF_SLOTS - 1);

	return bpf_map_lookup_elem(&dgram_slots, &idx);
}

static __always_inline void dgram_handoff_set(__u64 cookie, bool received, bool mapped,
					      __u32 addr, __u16 port, __u8 segs, bool slots,
					      bool task_btf)
{
	__u32 key = dgram_handoff_key(received, task_btf), tag = key + 1;
	struct dgram_slot *slot = dgram_slot_of(key);
	struct dgram_peer peer = {
		.cookie = cookie,
		.addr = addr,
		.port = port,
		.mapped = mapped,
		.segs = segs,
	};
	__u64 hkey = key;

	if (slots && slot &&
	    (slot->tag == tag || __sync_val_compare_and_swap(&slot->tag, 0, tag) == 0)) {
		slot->peer = peer;
		return;
	}
	if (!bpf_map_update_elem(&dgram_handoff, &hkey, &peer, BPF_ANY))
		__sync_fetch_and_add(&dgram_spilled, 1);
}

/* This thread's datagram peer on sk, taken out of its slot or the hash (btf: SK_READ). Only
 * tracing programs take it: with slots (tp_btf, fentry), the thread through the task's BTF. */
static __always_inline bool dgram_handoff_take(struct sock *sk, bool received,
					       struct dgram_peer *out, bool btf, bool slots)
{
	__u32 key = dgram_handoff_key(received, slots), tag = key + 1;
	struct dgram_slot *slot = dgram_slot_of(key);
	struct dgram_peer *p;
	__u64 hkey = key;

	__builtin_memset(out, 0, sizeof(*out));
	if (slots && slot && slot->tag == tag) {
		*out = slot->peer;
		__sync_lock_test_and_set(&slot->tag, 0); /* release, after the reads */
		return out->cookie == sk_cookie_as(sk, btf);
	}
	if (!dgram_spilled)
		return false;
	p = bpf_map_lookup_elem(&dgram_handoff, &hkey);
	if (!p)
		return false;
	*out = *p;
	if (!bpf_map_delete_elem(&dgram_handoff, &hkey))
		__sync_fetch_and_add(&dgram_spilled, -1);
	return out->cookie == sk_cookie_as(sk, btf);
}

static __always_inline long read_mem(void *dst, __u32 size, const void *src, bool user)
{
	return user ? bpf_probe_read_user(dst, size, src) : bpf_probe_read_kernel(dst, size, src);
}

/* The address a bind(2) asks for in user memory (uaddr, addrlen): true if it is an AF_INET6
 * one that maps an IPv4 address (addr, network order; port, host order). */
static __always_inline bool bind_sockaddr_mapped(const void *uaddr, __u32 addrlen, __u32 *addr,
						 __u16 *port)
{
	struct sockaddr_in6 sa = {};

	if (addrlen < sizeof(sa) || bpf_probe_read_user(&sa, sizeof(sa), uaddr) ||
	    sa.sin6_family != AF_INET6 || !in6_is_v4mapped(sa.sin6_addr.in6_u.u6_addr32))
		return false;
	*addr = sa.sin6_addr.in6_u.u6_addr32[3];
	*port = bpf_ntohs(sa.sin6_port);
	return true;
}

/* Does this sockaddr take an AF_INET6 socket to IPv4? ::ffff:a.b.c.d does, and so does a
 * plain sockaddr_in, which udpv6_sendmsg and ip6_datagram_connect also accept. An address
 * that cannot be read does not. user: the address is still in user memory (syscall
 * tracepoints). */
static __always_inline bool sockaddr_v4(const void *uaddr, __u32 addrlen, bool user, __u32 *addr,
					__u16 *port)
{
	struct sockaddr_in6 sa = {};

	if (!uaddr || addrlen < sizeof(struct sockaddr_in) ||
	    read_mem(&sa, sizeof(struct sockaddr_in), uaddr, user))
		return false;
	if (sa.sin6_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&sa;

		*addr = sin->sin_addr.s_addr;
		*port = bpf_ntohs(sin->sin_port);
		return true;
	}
	if (sa.sin6_family != AF_INET6 || addrlen < sizeof(struct sockaddr_in6) ||
	    read_mem(&sa, sizeof(sa), uaddr, user) ||
	    !in6_is_v4mapped(sa.sin6_addr.in6_u.u6_addr32))
		return false;
	*addr = sa.sin6_addr.in6_u.u6_addr32[3];
	*port = bpf_ntohs(sa.sin6_port);
	return true;
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* A kernel pointer read as a number, made a read-only BTF pointer of its type (Linux 6.2+; the
 * verifier turns the call into a move): its fields are then read with plain loads, each
 * guarded by the kernel's exception table, instead of a probe read's helper call each (30-40
 * ns here). Only the tracepoint backend's programs use it (6.3+); weak, so that the object
 * still loads on kernels without it. */
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id) __ksym __weak;
#define BTF_CAST(ptr, type) ((type *)bpf_rdonly_cast((ptr), bpf_core_type_id_kernel(type)))

/* The socket of an open file, or NULL if it is not a socket. btf: the file, its socket and
 * the socket returned are BTF pointers (BTF_CAST), read with plain loads (the tracepoint
 * backend's programs only, 6.3+); else with probe reads (every kernel). */
static __always_inline struct sock *sk_from_file_as(struct file *file, bool btf)
{
	struct socket *sock;

	if (!file)
		return NULL;
	if (btf) {
		file = BTF_CAST(file, struct file);
		if ((file->f_inode->i_mode & S_IFMT) != S_IFSOCK)
			return NULL;
		sock = BTF_CAST(file->private_data, struct socket);
		return sock ? sock->sk : NULL;
	}
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

static __always_inline struct sock *sk_from_file(struct file *file)
{
	return sk_from_file_as(file, false);
}

/* The socket of the current task's file descriptor fd. btf: the file table is reached through
 * the task's BTF and the file read as sk_from_file_as() does (the tracepoint backend's
 * programs only, 6.3+); else everything with probe reads (every kernel). */
static __always_inline struct sock *sk_from_fd_as(int fd, bool btf)
{
	struct fdtable *fdt;
	struct file **fds;
	struct file *file = NULL;
	unsigned int max_fds;

	if (btf) {
		fdt = bpf_get_current_task_btf()->files->fdt;
		if (!fdt)
			return NULL;
		max_fds = fdt->max_fds;
		fds = fdt->fd;
	} else {
		fdt = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), files, fdt);
		if (!fdt)
			return NULL;
		max_fds = BPF_CORE_READ(fdt, max_fds);
		fds = BPF_CORE_READ(fdt, fd);
	}
	if (fd < 0 || (unsigned int)fd >= max_fds ||
	    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return sk_from_file_as(file, btf);
}

static __always_inline struct sock *sk_from_fd(int fd)
{
	return sk_from_fd_as(fd, false);
}

/* The calls of socketcall(2) (linux/net.h), by which a 32-bit program's socket calls are named
 * here, whichever way it made them (i386 programs make some through socketcall(2)). */
#define SYS_BIND 2
#define SYS_CONNECT 3
#define SYS_ACCEPT 5
#define SYS_SENDTO 11
#define SYS_SENDMSG 16
#define SYS_ACCEPT4 18
#define SYS_SENDMMSG 20

/* The syscall a task's saved registers regs are of: its number and its arguments 1 to 5
 * (the first, 0, is PT_REGS_PARM1_CORE_SYSCALL). Per architecture; on one not listed here
 * syscall_nr() is -1 (SYSCALL_REGS_KNOWN 0), and what needs it goes without. A 32-bit
 * program's call (x86's ia32 compat calls) has numbers and registers of its own:
 * in_ia32_call(), ia32_sock_call(). */
#if defined(__TARGET_ARCH_x86)
#define SYSCALL_REGS_KNOWN 1
static __always_inline long syscall_nr(struct pt_regs *regs)
{
	return BPF_CORE_READ(regs, orig_ax);
}

static __always_inline __u64 syscall_arg(struct pt_regs *regs, int i)
{
	switch (i) {
	case 1:
		return BPF_CORE_READ(regs, si);
	case 2:
		return BPF_CORE_READ(regs, dx);
	case 4:
		return BPF_CORE_READ(regs, r8);
	case 5:
		return BPF_CORE_READ(regs, r9);
	default:
		return 0;
	}
}

/* The ia32 calls of socket(2)'s family (arch/x86/entry/syscalls/syscall_32.tbl). */
#define IA32_NR_socketcall 102
#define IA32_NR_sendmmsg 345
#define IA32_NR_bind 361
#define IA32_NR_connect 362
#define IA32_NR_accept4 364
#define IA32_NR_sendto 369
#define IA32_NR_sendmsg 370
#define DSTRACE_TS_COMPAT 0x0002 /* thread_info.status: in an ia32 call (asm/thread_info.h) */

/* Is the current task in an ia32 call (set from its entry to the return to user space)?
 * task_btf: read with loads (bpf_get_current_task_btf(), Linux 5.11+). */
static __always_inline bool in_ia32_call(bool task_btf)
{
	if (task_btf)
		return bpf_get_current_task_btf()->thread_info.status & DSTRACE_TS_COMPAT;
	return BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), thread_info.status) &
	       DSTRACE_TS_COMPAT;
}

/* The socket call of an ia32 task's saved registers regs, numbered as socketcall(2) numbers
 * them (SYS_BIND, ...), and its arguments a[0..5] (those it has); false for another call, or
 * a socketcall(2) whose arguments cannot be read. */
static __always_inline bool ia32_sock_call(struct pt_regs *regs, __u32 *call, __u32 a[6])
{
	long nr = BPF_CORE_READ(regs, orig_ax);
	const void *args;

	if (nr == IA32_NR_socketcall) {
		*call = (__u32)BPF_CORE_READ(regs, bx);
		args = (const void *)(unsigned long)(__u32)BPF_CORE_READ(regs, cx);
		/* as many as the call has: its array may end there */
		if (*call == SYS_SENDTO)
			return !bpf_probe_read_user(a, 6 * sizeof(__u32), args);
		if (*call == SYS_ACCEPT4 || *call == SYS_SENDMMSG)
			return !bpf_probe_read_user(a, 4 * sizeof(__u32), args);
		return !bpf_probe_read_user(a, 3 * sizeof(__u32), args);
	}
	switch (nr) {
	case IA32_NR_bind:
		*call = SYS_BIND;
		break;
	case IA32_NR_connect:
		*call = SYS_CONNECT;
		break;
	case IA32_NR_accept4:
		*call = SYS_ACCEPT4;
		break;
	case IA32_NR_sendto:
		*call = SYS_SENDTO;
		break;
	case IA32_NR_sendmsg:
		*call = SYS_SENDMSG;
		break;
	case IA32_NR_sendmmsg:
		*call = SYS_SENDMMSG;
		break;
	default:
		return false;
	}
	a[0] = (__u32)BPF_CORE_READ(regs, bx);
	a[1] = (__u32)BPF_CORE_READ(regs, cx);
	a[2] = (__u32)BPF_CORE_READ(regs, dx);
	a[3] = (__u32)BPF_CORE_READ(regs, si);
	a[4] = (__u32)BPF_CORE_READ(regs, di);
	a[5] = (__u32)BPF_CORE_READ(regs, bp);
	return true;
}

/* The first argument of an ia32 task's call saved in regs; through socketcall(2)'s call
 * sockcall (not 0), the first of the arguments it points to. false if it cannot be read. */
static __always_inline bool ia32_first_arg(struct pt_regs *regs, __u16 sockcall, __u32 *arg)
{
	if (!sockcall) {
		*arg = (__u32)BPF_CORE_READ(regs, bx);
		return true;
	}
	return (__u32)BPF_CORE_READ(regs, bx) == sockcall &&
	       !bpf_probe_read_user(arg, sizeof(*arg),
				    (const void *)(unsigned long)(__u32)BPF_CORE_READ(regs, cx));
}
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_REGS_KNOWN 1
static __always_inline long syscall_nr(struct pt_regs *regs)
{
	return BPF_CORE_READ(regs, syscallno);
}

static __always_inline __u64 syscall_arg(struct pt_regs *regs, int i)
{
	return i >= 1 && i <= 5 ? BPF_CORE_READ(regs, regs[i]) : 0; /* x0 is orig_x0 */
}
#else
#define SYSCALL_REGS_KNOWN 0
static __always_inline long syscall_nr(struct pt_regs *regs)
{
	return -1;
}

static __always_inline __u64 syscall_arg(struct pt_regs *regs, int i)
{
	return 0;
}
#endif
#if !defined(__TARGET_ARCH_x86)
static __always_inline bool in_ia32_call(bool task_btf)
{
	return false;
}

static __always_inline bool ia32_sock_call(struct pt_regs *regs, __u32 *call, __u32 a[6])
{
	return false;
}

static __always_inline bool ia32_first_arg(struct pt_regs *regs, __u16 sockcall, __u32 *arg)
{
	return false;
}
#endif

/* The socket's inode number when something will use it: an event, or the scan of existing
 * sockets (4 probe reads saved per connection with -i once the scan is over). */
static __always_inline __u64 sk_ino_wanted(struct sock *sk)
{
	return emit_events || !existing_done ? sk_ino(sk) : 0;
}

/* While the scan of existing sockets runs: this process's socket is reported already. */
static __always_inline void existing_mark(__u64 ino, __u32 tgid)
{
	struct existing_key ek = { .ino = ino, .tgid = tgid };
	__u8 one = 1;

	if (!existing_done)
		bpf_map_update_elem(&existing_seen, &ek, &one, BPF_ANY);
}

/*
 * Path 1: connect() of an AF_INET6 socket to an IPv4-mapped address (TCP falls to
 * tcp_v4_connect, UDP to __ip4_datagram_connect). It starts at the cgroup connect hook, in
 * the caller's context whatever drives the connect (a syscall, io_uring, TCP Fast Open, a
 * kernel socket, MPTCP's first subflow), and ends with its outcome: for TCP the socket's
 * state change (SYN_SENT -> ESTABLISHED, or -> CLOSE with the socket's error), or an
 * immediate error before any SYN; for UDP the result of the call. One event per attempt:
 * the pending entry is deleted by whoever decides first.
 */
/* Is this thread inside getaddrinfo() (its own sorting connects)? */
static __always_inline bool gai_in_call(__u32 tid)
{
	struct gai_call *g;

	if (!gai_calls_live)
		return false;
	g = bpf_map_lookup_elem(&gai_calls, &tid);
	return g && bpf_ktime_get_boot_ns() - g->start_ns < GAI_CALL_MAX_NS;
}

/* The starred cell, its mapped half: did this thread's native IPv6 connect to an address of
 * a name with A and AAAA records fail just before (fallback_last), and does the mapped address
 * come from such a name's answer in this process? Then this connect is its fallback. */
#define FALLBACK_WINDOW_NS (60ull * 1000000000ull)
#define GAI_RECENT_NS (60ull * 1000000000ull)
static __always_inline void fallback_take(struct conn_pending *c)
{
	struct name_key k = { .tgid = c->who.tgid, .addr = c->daddr };
	struct fallback_rec *fb;
	struct name_val *v;
	__u64 now;

	if (!fallbacks_live)
		return;
	fb = bpf_map_lookup_elem(&fallback_last, &c->who.tid);
	if (!fb)
		return;
	now = bpf_ktime_get_boot_ns();
	v = bpf_map_lookup_elem(&resolved, &k);
	if (v && (v->flags & DSTRACE_NAME_AAAA) && now - fb->start_ns < FALLBACK_WINDOW_NS) {
		c->fb = *fb;
		c->fb.start_ns = now - fb->start_ns; /* the time lost */
		c->flags |= DSTRACE_F_FALLBACK;
	}
	if (!bpf_map_delete_elem(&fallback_last, &c->who.tid))
		__sync_fetch_and_add(&fallbacks_live, -1);
}

/* The starred cell, its native half: a thread whose last answer had A and AAAA records
 * connects over IPv6 (the cgroup hook): follow that attempt until its outcome. */
static __always_inline void native_try_start(__u64 cookie, const __u32 *addr6)
{
	__u64 id = bpf_get_current_pid_tgid(), *answered;
	struct native_try t = { .tid = (__u32)id };

	if (!cookie)
		return;
	/* an answer of the last GAI_RECENT_NS: the connects that walk it */
	answered = bpf_map_lookup_elem(&gai_recent, &t.tid);
	if (!answered || bpf_ktime_get_boot_ns() - *answered > GAI_RECENT_NS)
		return;
	__builtin_memcpy(t.addr6, addr6, sizeof(t.addr6));
	t.start_ns = bpf_ktime_get_boot_ns();
	__sync_fetch_and_add(&native_tries_live, 1);
	if (bpf_map_update_elem(&native_pending, &cookie, &t, BPF_ANY))
		__sync_fetch_and_add(&native_tries_live, -1);
}

/* Its outcome (a state change out of SYN_SENT or, after a simultaneous open, SYN_RECV): a
 * failure is kept for the thread. */
static __always_inline void native_try_done(__u64 cookie, int err)
{
	struct fallback_rec fb = {};
	struct native_try *t;

	if (!native_tries_live)
		return;
	t = bpf_map_lookup_elem(&native_pending, &cookie);
	if (!t)
		return;
	/* given up by the program before an answer (ECONNABORTED: Happy Eyeballs closing the
	 * attempt that lost the race) is no failure of the address */
	if (err && err != -ECONNABORTED) {
		__builtin_memcpy(fb.addr6, t->addr6, sizeof(fb.addr6));
		fb.err = err;
		fb.start_ns = t->start_ns;
		__sync_fetch_and_add(&fallbacks_live, 1);
		if (bpf_map_update_elem(&fallback_last, &t->tid, &fb, BPF_ANY))
			__sync_fetch_and_add(&fallbacks_live, -1);
	} else if (fallbacks_live && !bpf_map_delete_elem(&fallback_last, &t->tid)) {
		/* a later IPv6 address of the answer worked: no fallback to IPv4 is pending */
		__sync_fetch_and_add(&fallbacks_live, -1);
	}
	if (!bpf_map_delete_elem(&native_pending, &cookie))
		__sync_fetch_and_add(&native_tries_live, -1);
}

/* ---- pending connects (maps.bpf.h: conn_slots, conn_pending) ---- */

static __always_inline struct conn_slot *conn_slot_of(__u64 cookie)
{
	__u32 idx = (__u32)cookie & (CONN_SLOTS - 1);

	return bpf_map_lookup_elem(&conn_slots, &idx);
}

/* The slot's tag, read again a few times while another holds it (CONN_SLOT_BUSY): a kernel
 * put or take, or user space's give-up (user/tables.c), holds it for a few instructions;
 * a take that did not wait would miss a connect that is only being looked at. */
#define CONN_SLOT_BUSY_READS 32
static __always_inline __u64 conn_slot_tag(struct conn_slot *s)
{
	__u64 tag = *(volatile __u64 *)&s->tag;

	for (int i = 0; i < CONN_SLOT_BUSY_READS && tag == CONN_SLOT_BUSY; i++)
		tag = *(volatile __u64 *)&s->tag;
	return tag;
}

/* Put c in the hash under key, counted in conn_spilled (slots) from before the insert, so a
 * take meanwhile looks there. only_new: not if key is there already; else it is replaced. */
static __always_inline bool conn_hash_put(__u64 key, const struct conn_pending *c, bool slots,
					  bool only_new)
{
	long err;

	if (slots)
		__sync_fetch_and_add(&conn_spilled, 1);
	err = bpf_map_update_elem(&conn_pending, &key, c, BPF_NOEXIST);
	if (!err)
		return true;
	if (slots)
		__sync_fetch_and_add(&conn_spilled, -1);
	return err == -EEXIST && !only_new && !bpf_map_update_elem(&conn_pending, &key, c, BPF_EXIST);
}

/* Take key's entry out of the hash into *out: true if this caller took it. */
static __always_inline bool conn_hash_take(__u64 key, struct conn_pending *out, bool slots)
{
	struct conn_pending *p;

	if (slots && !conn_spilled)
		return false;
	p = bpf_map_lookup_elem(&conn_pending, &key);
	if (!p)
		return false;
	*out = *p;
	if (bpf_map_delete_elem(&conn_pending, &key))
		return false; /* decided on another CPU */
	if (slots)
		__sync_fetch_and_add(&conn_spilled, -1);
	return true;
}

/* Fill a slot claimed (tag CONN_SLOT_BUSY) and hand it to cookie; an older connect of the
 * socket's in the hash (re-issued after its outcome was missed) is replaced. */
static __always_inline void conn_slot_fill(struct conn_slot *s, __u64 cookie,
					   const struct conn_pending *c)
{
	struct conn_pending old;

	s->c = *c;
	__sync_lock_test_and_set(&s->tag, cookie); /* published after the writes */
	conn_hash_take(cookie, &old, true);
}

/*
 * Keep c as cookie's pending connect, replacing one it had; false if there was no room.
 * slots: a constant (maps.bpf.h, conn_slots). A slot held for over CONN_SLOT_AGE_NS by
 * another socket's connect X is taken over: X is copied to the hash first (only if X is not
 * there already), then the slot claimed from X; a take of X meanwhile finds it in one place
 * or the other (conn_pending_take), and if X was taken from the slot first, its copy is
 * deleted again.
 */
static __always_inline bool conn_pending_put(__u64 cookie, struct conn_pending *c, bool slots)
{
	struct conn_slot *s = slots ? conn_slot_of(cookie) : NULL;
	__u64 now = bpf_ktime_get_boot_ns();

	c->since = now;
	if (s) {
		__u64 old = conn_slot_tag(s);
		struct conn_pending moved;

		if ((old == 0 || old == cookie) &&
		    __sync_val_compare_and_swap(&s->tag, old, CONN_SLOT_BUSY) == old) {
			conn_slot_fill(s, cookie, c);
			return true;
		}
		if (old != 0 && old != cookie && old != CONN_SLOT_BUSY &&
		    (__s64)(now - s->c.since) > (__s64)CONN_SLOT_AGE_NS) {
			moved = s->c; /* stable while the tag is old's: only its owner writes */
			if (s->tag == old && conn_hash_put(old, &moved, true, true)) {
				if (__sync_val_compare_and_swap(&s->tag, old, CONN_SLOT_BUSY) == old) {
					conn_slot_fill(s, cookie, c);
					return true;
				}
				conn_hash_take(old, &moved, true); /* taken from the slot meanwhile */
			}
		}
	}
	return conn_hash_put(cookie, c, slots, false);
}

/* cookie's pending connect, left in place (a look: it may be decided meanwhile), or NULL. */
static __always_inline struct conn_pending *conn_pending_peek(__u64 cookie, bool slots)
{
	struct conn_slot *s = slots ? conn_slot_of(cookie) : NULL;

	if (s && conn_slot_tag(s) == cookie)
		return &s->c;
	if (slots && !conn_spilled)
		return NULL;
	return bpf_map_lookup_elem(&conn_pending, &cookie);
}

/*
 * The process entry a pending connect counts into: the one that counted it waiting (its
 * first_ns kept in c->entry_ns, handle_connect_start), running or ended since (exit, exec:
 * in proc_exited, or marked in place in proc_stats), which its pending count holds for the
 * outcome (user/tables.c, walk_procs). NULL when there is none (the table was full when it
 * started, or the entry is gone): counted, if count.
 */
static __always_inline struct dstrace_proc_stats *conn_entry(const struct conn_pending *c,
							     bool count)
{
	struct dstrace_proc_stats *st = NULL;

	if (c->entry_ns) {
		st = bpf_map_lookup_elem(&proc_stats, &c->who.tgid);
		if (st && st->first_ns == c->entry_ns && st->start_ns == c->who.start_ns)
			return st;
		st = bpf_map_lookup_elem(&proc_exited, &c->who.tgid);
		if (st && st->first_ns == c->entry_ns && st->start_ns == c->who.start_ns)
			return st;
	}
	if (count)
		counter_add(DSTRACE_CNT_PROC_FULL, 1);
	return NULL;
}

/* The entry's pending connect is decided, or dropped (counted as such): one less to hold it
 * for. Last, after its counts and its event: user space folds an ended entry once this is 0
 * (a decrement that finds 0, on a CPU racing another, is skipped rather than wrapping). */
static __always_inline void conn_entry_done(struct dstrace_proc_stats *st)
{
	if (st && st->pending)
		__sync_fetch_and_add(&st->pending, -1);
}

/* Take cookie's pending connect out: true if this caller decides it (one caller does). */
static __always_inline bool conn_pending_take(__u64 cookie, struct conn_pending *out,
					      bool slots)
{
	struct conn_slot *s = slots ? conn_slot_of(cookie) : NULL;

	if (s && conn_slot_tag(s) == cookie &&
	    __sync_val_compare_and_swap(&s->tag, cookie, CONN_SLOT_BUSY) == cookie) {
		*out = s->c;
		__sync_lock_test_and_set(&s->tag, 0); /* released after the reads */
		return true;
	}
	/* not in its slot, or moved to the hash meanwhile (conn_pending_put) */
	return conn_hash_take(cookie, out, slots);
}

/*
 * sk's pending connect: under its cookie, or, while some are kept so (existing_connecting),
 * under its address, if the peer kept is sk's (an address reused by another socket since
 * is not this one's).
 */
static __always_inline bool conn_pending_take_sk(struct sock *sk, __u64 cookie, bool btf,
						 struct conn_pending *out, bool slots)
{
	struct conn_pending *p;
	__u64 key = (__u64)sk;
	__u32 raddr;
	__u16 rport;

	if (cookie && conn_pending_take(cookie, out, slots))
		return true;
	if (!conn_by_sk)
		return false;
	p = bpf_map_lookup_elem(&conn_pending, &key);
	if (!p || !sk_mapped_peer_as(sk, &raddr, &rport, btf) || p->daddr != raddr ||
	    p->dport != rport || !conn_hash_take(key, out, slots))
		return false;
	__sync_fetch_and_add(&conn_by_sk, -1);
	return true;
}

static __always_inline void handle_connect_start(__u64 sk, __u64 cookie, __u16 protocol,
						 __u32 daddr, __u16 dport, bool slots)
{
	struct dstrace_proc_stats *st;
	struct conn_pending c = {}, old;
	bool known;

	if (!cookie || !proto_of(protocol, &c.proto))
		return;
	ident_current_id(&c.who);
	/* A process with an entry already, with -i: its pending connect needs no more of it
	 * (the outcome counts it under its tgid; an event, the entry or the -c filter would). */
	st = bpf_map_lookup_elem(&proc_stats, &c.who.tgid);
	known = st && !st->exit_ns && st->start_ns == c.who.start_ns;
	if (!known || emit_events || filter_comm_enabled)
		ident_current_rest(&c.who);
	if (!filter_process(c.who.tgid, c.who.comm, 0))
		return;
	c.daddr = daddr;
	c.dport = dport;
	if (protocol == IPPROTO_MPTCP)
		c.flags = DSTRACE_F_MPTCP;
	if (gai_in_call(c.who.tid))
		c.flags |= DSTRACE_F_BY_RESOLVER;
	else if (c.proto == DSTRACE_PROTO_TCP)
		fallback_take(&c);
	/* The kernel runs this hook only for a TCP socket not connected nor connecting: a
	 * connect of this socket's still pending had its outcome unseen (the kernel ran no
	 * program for it; socket.bpf.h, sock_release): counted, not replaced silently. */
	if (conn_pending_take(cookie, &old, slots)) {
		/* a UDP connect's still kept had its call's return missed (counted there) */
		if (c.proto == DSTRACE_PROTO_TCP)
			counter_add(DSTRACE_CNT_CONN_UNSEEN, 1);
		conn_entry_done(conn_entry(&old, false));
	}
	/* The process's entry is made here, where its executable and cgroup are current, and
	 * before the connect is kept (conn_entry: an entry newer than the connect is not its). */
	if (!known)
		st = proc_entry_who(0 /* the task's */, c.who.tgid, &c.who,
				    bpf_get_current_task(), false);
	/* counted waiting before the outcome can come (this thread's connect call, later); st
	 * is the process's current entry here (known, or proc_entry_who's), or NULL */
	if (st) {
		c.entry_ns = st->first_ns;
		__sync_fetch_and_add(&st->pending, 1);
	}
	if (!conn_pending_put(cookie, &c, slots)) {
		counter_add(DSTRACE_CNT_CONN_FULL, 1);
		conn_entry_done(st);
		return;
	}
	/* The tracepoint backend: the socket for connect(2)'s exit, if that is what drives it
	 * (tp_exit_connect): the immediate result, where the state change gives none. */
	if (connect_by_syscall) {
		struct connect_args *slot = connect_slot(c.who.tid);

		if (slot) {
			/* another thread's connect, still waiting for its result: lost, counted
			 * (its pending record stays: an io_uring completion may still decide it,
			 * else it is given up, or taken at its socket's release, and counted
			 * again: too many, never one missing) */
			if (slot->tid && slot->tid != c.who.tid)
				counter_add(DSTRACE_CNT_STASH_FULL, 1);
			/* emptied first, owned last: an exit that copies the slot meanwhile
			 * fails to claim it (tp_exit_connect); no compare-and-exchange here:
			 * the _hash twins, which load on 5.10, have this code too */
			slot->tid = 0;
			barrier();
			slot->sk = sk;
			slot->cookie = cookie;
			slot->tcp = c.proto == DSTRACE_PROTO_TCP;
			barrier();
			slot->tid = c.who.tid;
		}
	}
}

/* Is this result of a connect call its outcome? A TCP connect still in progress (started,
 * re-issued, interrupted, restarted) is decided later by the state change. */
static __always_inline bool connect_ret_final(bool tcp, int ret)
{
	if (!tcp)
		return true;
	switch (-ret) {
	case 0:
	case EINPROGRESS:
	case EALREADY:
	case EISCONN:
	case EINTR:
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
		return false;
	default:
		return true;
	}
}

static __always_inline void handle_connect_result(struct sock *sk, __u64 cookie, int ret,
						  __u8 flags, bool btf, bool slots)
{
	struct dstrace_proc_stats *st;
	struct conn_pending c;
	__u16 lport;
	__u64 ino;

	if (!sk || !conn_pending_take_sk(sk, cookie, btf, &c, slots))
		return;
	lport = ret ? 0 : SK_READ(btf, sk, __sk_common.skc_num);
	if (!filter_flow(DSTRACE_EV_CONNECT, c.proto, lport, c.dport)) {
		conn_entry_done(conn_entry(&c, false));
		return;
	}
	/* The connecting process's entry, made by the hook, held for this if it ended since. */
	st = conn_entry(&c, true);
	proc_peer(proc_account(st, DSTRACE_EV_CONNECT, c.proto, ret < 0, 1, 0), c.who.tgid,
		  c.daddr);
	if (st && st->exit_ns)
		flags |= DSTRACE_F_LATE;
	ino = sk_ino_wanted(sk);
	/* during the scan: this socket's connect is decided (existing_connecting) */
	existing_mark(ino, c.who.tgid);
	emit_event_full(sk, ino, DSTRACE_EV_CONNECT, c.proto, c.daddr, c.dport, ret,
			ret == 0 ? LOCAL_SOCK : LOCAL_NONE, NULL, &c.who, c.flags | flags, &c.fb,
			(flags & DSTRACE_F_LATE) ? c.entry_ns : 0);
	/* after the event: user space frees an entry once final, and the event finds it */
	conn_entry_done(st);
}

/* A connect call on sk returned ret (backends that see calls: syscalls, kernel functions). */
static __always_inline void handle_connect_call(struct sock *sk, int ret, bool slots)
{
	__u8 proto;

	if (sk && sk_is_inet6(sk, &proto) && connect_ret_final(proto == DSTRACE_PROTO_TCP, ret))
		handle_connect_result(sk, sk_cookie(sk), ret, 0, false, slots);
}

/* MPTCP connects through its first subflow, a TCP socket the cgroup hook sees. */
static __always_inline __u8 tcp_mptcp_flag(struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	if (bpf_core_field_exists(tp->is_mptcp) && BPF_CORE_READ_BITFIELD_PROBED(tp, is_mptcp))
		return DSTRACE_F_MPTCP;
	return 0;
}

/* A TCP socket closed in SYN_SENT without an error, inside the connect call: the call itself
 * failed after setting SYN_SENT (no local port left: EADDRNOTAVAIL; no route for the port
 * chosen; no memory), in the connecting thread. The call's return has the error: its exit
 * decides (fexit, kretprobe, or on the tracepoint backend the syscall's exit, given the
 * thread's slot back), not the state change. Inside the call the socket layer still says
 * SS_UNCONNECTED (it says SS_CONNECTING once the call returns), which tells it from the
 * program giving up in the same thread after the call returned: close() (which shuts it down
 * first), shutdown() (SS_DISCONNECTING) or connect(AF_UNSPEC) (SS_CONNECTING): those are
 * the state change's to decide (ECONNABORTED). MPTCP's first subflow has the MPTCP socket's
 * struct socket (grafted), so the same holds; a subflow of a closed MPTCP socket has none
 * (read as 0), and the state change decides. Not seen on the tracepoint backend: a TCP Fast
 * Open sendto()/sendmsg() whose connect fails so inside the call (no local port left): only
 * connect(2)'s exit and io_uring's completion take the call's result there; such a connect
 * is counted unseen at its socket's close. */
static __always_inline bool connect_call_decides(struct sock *sk, __u64 cookie, bool slots)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct connect_args *slot;
	struct conn_pending *p;

	if (BPF_CORE_READ_BITFIELD(sk, sk_shutdown) ||
	    BPF_CORE_READ(sk, sk_socket, state) != SS_UNCONNECTED)
		return false;
	p = conn_pending_peek(cookie, slots);
	if (!p || p->who.tid != tid)
		return false;
	if (!connect_by_syscall)
		return true;
	slot = connect_slot(tid);
	if (!slot || slot->cookie != cookie || (slot->tid && slot->tid != tid))
		return false;
	slot->tid = tid;
	return true;
}

/* What the socket says of its connect (its state changed out of SYN_SENT, or out of SYN_RECV
 * after a simultaneous open, or it reported an error): err decides the pending connect,
 * unless call_decides (the connect call's return has the error), and ends the resolver's
 * native try on it, if there is one. */
static __always_inline void tcp_connect_outcome(struct sock *sk, __u64 cookie, int err,
						bool call_decides, bool btf, bool slots)
{
	if (!call_decides)
		handle_connect_result(sk, cookie, err, tcp_mptcp_flag(sk), btf, slots);
	native_try_done(cookie, err);
}

/* A TCP socket changed state: the outcome of a pending connect (tp_btf: sk read directly).
 * A simultaneous open (a SYN came in answer to the SYN, as a socket connecting to its own
 * address and port gets) goes SYN_SENT -> SYN_RECV, still pending; the change out of SYN_RECV
 * decides it: established, or its error (reset, timed out, unreachable), or given up by its
 * program (ECONNABORTED; so is a shutdown(SHUT_WR) then, although the handshake may still
 * complete half-closed). */
static __always_inline void handle_tcp_state(struct sock *sk, int oldstate, int newstate,
					     bool slots)
{
	__u64 cookie = sk_cookie_as(sk, true), key = (__u64)sk;
	int sk_err, err;

	if (newstate == TCP_ESTABLISHED) {
		if (existing_pass == 2) /* noted first: existing_connecting */
			bpf_map_update_elem(&existing_outcomes, &key, &(__s32){ 0 }, BPF_ANY);
		tcp_connect_outcome(sk, cookie, 0, false, true, slots);
	} else if (newstate == TCP_CLOSE || oldstate == TCP_SYN_RECV) {
		/* refused (ECONNREFUSED), timed out (ETIMEDOUT), unreachable (ICMP errors);
		 * closed by its program before an answer came: ECONNABORTED (only a close out
		 * of SYN_SENT can be the connect call's own failure) */
		sk_err = sk->sk_err;
		err = sk_err ? -sk_err : -ECONNABORTED;
		if (existing_pass == 2)
			bpf_map_update_elem(&existing_outcomes, &key, &err, BPF_ANY);
		tcp_connect_outcome(sk, cookie, err,
				    oldstate == TCP_SYN_SENT && !sk_err &&
					    connect_call_decides(sk, cookie, slots),
				    true, slots);
	}
}

/*
 * An error reported on an AF_INET6 TCP socket still in SYN_SENT (or in SYN_RECV after a
 * simultaneous open): the connect's outcome is
 * that error, decided here as its close would with the error still set. Without
 * tcp_done_with_error() (mainline since mid-2024, backported to stable kernels, Debian's 6.1
 * among them) a timed-out or ICMP-refused SYN reports its error, waking the program, before
 * the state changes to CLOSE; a program that reads SO_ERROR in between clears sk_err, and
 * the state change alone would see a connect given up (ECONNABORTED; seen on Debian's 5.10).
 * With it, the state changes first and decides; the hooks are not attached there
 * (PROG_UNLESS_FUNC, user/backend.c). Not seen here:
 * an MPTCP subflow's errors (subflow_error_report; the MPTCP socket clears them).
 */
static __always_inline void handle_tcp_error_report(struct sock *sk, bool btf, bool slots)
{
	int state = SK_READ(btf, sk, __sk_common.skc_state), sk_err;
	__u64 cookie;

	/* SYN_RECV: a simultaneous open's (it has a struct socket; a passive open's child in
	 * SYN_RECV has none, or has no pending connect: handle_tcp_state) */
	if (SK_READ(btf, sk, __sk_common.skc_family) != AF_INET6 ||
	    (state != TCP_SYN_SENT && (state != TCP_SYN_RECV || !SK_READ(btf, sk, sk_socket))))
		return;
	/* read once: the error decides, or nothing does here */
	sk_err = SK_READ(btf, sk, sk_err);
	if (!sk_err)
		return;
	cookie = sk_cookie_as(sk, btf);
	tcp_connect_outcome(sk, cookie, -sk_err, false, btf, slots);
}

/* Path 2: a TCP connection from an IPv4 client, now owned by the process accepting it
 * (btf: sk is a BTF pointer, SK_READ; task_btf: proc_start_now). */
static __always_inline void handle_accept_done(struct sock *sk, bool btf, bool task_btf)
{
	/* the task's BTF: a load, where bpf_get_current_pid_tgid() is a helper call more */
	__u32 tgid = task_btf ? bpf_get_current_task_btf()->tgid : bpf_get_current_pid_tgid() >> 32;
	__u16 rport;
	__u32 raddr;
	__u64 ino;
	__u8 proto;

	if (!sk || !sk_is_inet6_as(sk, &proto, btf) || proto != DSTRACE_PROTO_TCP)
		return;
	if (!sk_mapped_peer_as(sk, &raddr, &rport, btf))
		return;
	if (!dstrace_wanted(DSTRACE_EV_ACCEPT, DSTRACE_PROTO_TCP, tgid, sk_lport_filtered(sk, btf),
			    rport))
		return;
	proc_peer(proc_account(proc_entry(sk, tgid, task_btf), DSTRACE_EV_ACCEPT, DSTRACE_PROTO_TCP,
			       false, 1, 0),
		  tgid, raddr);
	ino = sk_ino_wanted(sk);
	existing_mark(ino, tgid);
	if (emit_events) /* no read for an event not made (-i) */
		emit_event_as(sk, ino, DSTRACE_EV_ACCEPT, DSTRACE_PROTO_TCP, raddr, rport, 0, true,
			      NULL,
			      SK_READ(btf, sk, sk_protocol) == IPPROTO_MPTCP ? DSTRACE_F_MPTCP : 0);
}

/*
 * bind() of an AF_INET6 socket to ::ffff:a.b.c.d: the socket can then only speak IPv4. On a
 * v6-only socket it fails (EINVAL). A failure counts as failed; the local end shown is the
 * one asked for.
 */
static __always_inline void handle_bind_done(struct sock *sk, __u32 addr, __u16 port, int ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct given_local asked = { .addr = addr, .port = port };
	__u8 proto;

	if (!sk || !sk_is_inet6(sk, &proto) ||
	    !dstrace_wanted(DSTRACE_EV_BIND, proto, tgid, port, 0))
		return;
	if (ret < 0)
		proc_account(proc_entry(sk, tgid, false), DSTRACE_EV_BIND, proto, true, 0, 0);
	emit_event_full(sk, sk_ino(sk), DSTRACE_EV_BIND, proto, 0, 0, ret,
			ret ? LOCAL_GIVEN : LOCAL_SOCK, &asked, NULL, DSTRACE_F_NO_REMOTE, NULL,
			0);
}

/* The identity of a task seen from outside (an iterator runs in the reader's context). */
static __always_inline void ident_task(struct task_ident *who, struct task_struct *task)
{
	who->tgid = BPF_CORE_READ(task, tgid);
	who->tid = who->tgid;
	who->uid = BPF_CORE_READ(task, cred, uid.val);
	who->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	who->start_ns = BPF_CORE_READ(task, group_leader, start_time);
	BPF_CORE_READ_STR_INTO(&who->comm, task, comm);
}

/* Does this AF_INET6 socket carry IPv4 already: a TCP connection or a connected UDP socket
 * with a mapped peer, or a socket bound to a mapped local address? */
static __always_inline bool sk_existing_mapped(struct sock *sk, __u8 proto, __u32 *raddr,
					       __u16 *rport)
{
	int state = BPF_CORE_READ(sk, __sk_common.skc_state);
	__u32 local6[4];

	/* a connect in progress is reported by its outcome */
	if (proto == DSTRACE_PROTO_TCP &&
	    (state == TCP_LISTEN || state == TCP_CLOSE || state == TCP_SYN_SENT ||
	     state == TCP_SYN_RECV))
		return false;
	if (sk_mapped_peer(sk, raddr, rport))
		return true;
	if (proto == DSTRACE_PROTO_TCP)
		return false;
	BPF_CORE_READ_INTO(&local6, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
	*raddr = 0;
	*rport = 0;
	return in6_is_v4mapped(local6);
}

/*
 * A TCP connect to a mapped peer in progress at start (its SYN sent before the hooks were
 * attached: a slow or silent peer, a full backlog, a blocking connect retried for minutes):
 * kept pending as if its start had been seen, for the process that holds the socket, so its
 * outcome (established, refused, timed out, ...) is reported as that process's connect by
 * whatever decides it (handle_tcp_state). Under its cookie if it has one; else (nothing
 * asked for one before dstrace, and a tracing program cannot make one on every kernel)
 * under the socket's address, in the hash (conn_pending_take_sk).
 */
static __always_inline void existing_connecting(struct task_struct *task, struct sock *sk,
						__u32 netns, bool slots)
{
	struct dstrace_proc_stats *st;
	struct conn_pending c = {};
	__u64 cookie = sk_cookie(sk), sk_key = (__u64)sk, key = cookie ? cookie : sk_key;
	struct existing_key ek = {};
	__s32 *noted;
	__u32 raddr;
	__u16 rport;
	int state, sk_err, err;
	bool kept;

	if (!sk_mapped_peer(sk, &raddr, &rport))
		return;
	/* its start seen after all (a connect since the hooks), or another holder's kept it */
	if (conn_pending_peek(key, slots && cookie))
		return;
	ident_task(&c.who, task);
	if (!filter_process(c.who.tgid, c.who.comm, (__u64)task))
		return;
	c.proto = DSTRACE_PROTO_TCP;
	c.daddr = raddr;
	c.dport = rport;
	if (BPF_CORE_READ(sk, sk_protocol) == IPPROTO_MPTCP)
		c.flags = DSTRACE_F_MPTCP;
	st = proc_entry_who(netns, c.who.tgid, &c.who, (__u64)task, false);
	if (st) {
		c.entry_ns = st->first_ns;
		__sync_fetch_and_add(&st->pending, 1);
	}
	if (cookie) {
		kept = conn_pending_put(cookie, &c, slots);
	} else {
		__sync_fetch_and_add(&conn_by_sk, 1); /* before: a take meanwhile looks */
		c.since = bpf_ktime_get_boot_ns();
		kept = conn_hash_put(key, &c, slots, true);
		if (!kept)
			__sync_fetch_and_add(&conn_by_sk, -1);
	}
	if (!kept) {
		counter_add(DSTRACE_CNT_CONN_FULL, 1);
		conn_entry_done(st);
		return;
	}
	/*
	 * Decided before it was kept? The state change's program notes the outcome before it
	 * takes (existing_outcomes), and the new state is stored after it ran: if neither
	 * shows here, that program is still to come and takes this. Else it found this, or
	 * found nothing (it came before the put: decided here), or took a pending connect of
	 * the socket's begun since the hooks (this one's look above came after: its outcome is
	 * reported, marked in existing_seen; this copy is taken back unsaid). Either way one
	 * take wins.
	 */
	noted = bpf_map_lookup_elem(&existing_outcomes, &sk_key);
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (!noted && (state == TCP_SYN_SENT || state == TCP_SYN_RECV))
		return;
	if (noted) {
		err = *noted;
	} else {
		sk_err = BPF_CORE_READ(sk, sk_err);
		err = state != TCP_CLOSE ? 0 : sk_err ? -sk_err : -ECONNABORTED;
	}
	ek.ino = sk_ino(sk);
	ek.tgid = c.who.tgid;
	if (bpf_map_lookup_elem(&existing_seen, &ek)) {
		if (conn_pending_take_sk(sk, cookie, false, &c, slots))
			conn_entry_done(conn_entry(&c, false));
		return;
	}
	handle_connect_result(sk, cookie, err, tcp_mptcp_flag(sk), false, slots);
}

/* A connected UDP socket found at start: did its program begin the exchange with its peer
 * (a client), or the peer (a service's socket connected to its client, on a port where the
 * service also has an unconnected socket)? Noted for the flows' first datagrams to come
 * (maps.bpf.h, udp_began). */
static __always_inline void existing_udp_began(const struct listener_key *lk, __u64 ino,
					       __u32 tgid, __u32 raddr, __u16 rport)
{
	struct dstrace_flow_key key = {}; /* padding included: a map key */
	__u8 began = bpf_map_lookup_elem(&existing_listeners, lk) ? DSTRACE_EV_RECV :
								     DSTRACE_EV_SEND;
	struct dstrace_flow_val *flow;

	key.sock_ino = ino;
	key.raddr = raddr;
	key.rport = rport;
	key.kind = DSTRACE_EV_EXISTING; /* pid 0: for every process using the socket */
	if (bpf_map_update_elem(&udp_began, &key, &began, BPF_ANY)) {
		counter_add(DSTRACE_CNT_CONN_FULL, 1);
		return;
	}
	udp_began_n = 1;
	/* this process's flows begun since the hooks were attached, before the scan came here */
	key.pid = tgid;
	key.kind = began;
	flow = bpf_map_lookup_elem(&udp_flows, &key);
	if (flow)
		flow->answer = 0;
	key.kind = began == DSTRACE_EV_SEND ? DSTRACE_EV_RECV : DSTRACE_EV_SEND;
	flow = bpf_map_lookup_elem(&udp_flows, &key);
	if (flow)
		flow->answer = 1;
}

/*
 * At start, for every socket of every process (iter/task_file): pass 1 notes the ports of
 * AF_INET6 TCP listeners and unconnected UDP sockets, pass 2 reports each mapped connection
 * or UDP socket once per process holding it. A TCP connection whose local port is a
 * listener's was accepted (counted as accept), else made (counted as connect); UDP sockets
 * count their datagrams as they come, a connected one's replies told by who began its
 * exchange (existing_udp_began). (A TCP connect in progress: existing_connecting.)
 */
static __always_inline void handle_existing(struct task_struct *task, struct sock *sk, __u64 ino,
					    __u32 pass)
{
	struct listener_key lk = {};
	struct existing_key ek = {};
	struct dstrace_proc_stats *st;
	struct task_ident who = {};
	__u32 raddr;
	__u16 rport;
	__u8 proto, one = 1, flags = 0;
	long err;

	if (!sk || !sk_is_inet6(sk, &proto))
		return;
	lk.netns = sk_netns(sk);
	lk.port = BPF_CORE_READ(sk, __sk_common.skc_num) | (__u32)proto << 16;
	if (pass == 1) {
		int state = BPF_CORE_READ(sk, __sk_common.skc_state);

		/* a TCP listener, or a bound UDP socket with no peer (a service's) */
		if (proto == DSTRACE_PROTO_TCP ? state == TCP_LISTEN :
		    (__u16)lk.port && !BPF_CORE_READ(sk, __sk_common.skc_dport))
			bpf_map_update_elem(&existing_listeners, &lk, &one, BPF_ANY);
		return;
	}
	if (pass != 2 || !sk_existing_mapped(sk, proto, &raddr, &rport))
		return;
	ident_task(&who, task);
	ek.ino = ino;
	ek.tgid = who.tgid;
	err = bpf_map_update_elem(&existing_seen, &ek, &one, BPF_NOEXIST);
	if (err == -EEXIST)
		return; /* another descriptor of this process, or a thread of it */
	if (err)
		counter_add(DSTRACE_CNT_CONN_FULL, 1); /* reported, but maybe twice */
	if (proto != DSTRACE_PROTO_TCP && raddr)
		existing_udp_began(&lk, ino, who.tgid, raddr, rport);
	if (!filter_process(who.tgid, who.comm, (__u64)task) ||
	    !filter_flow(DSTRACE_EV_EXISTING, proto, (__u16)lk.port, rport))
		return;
	if (proto == DSTRACE_PROTO_TCP && bpf_map_lookup_elem(&existing_listeners, &lk))
		flags = DSTRACE_F_INBOUND;
	st = proc_entry_who(lk.netns, who.tgid, &who, (__u64)task, false);
	if (proto == DSTRACE_PROTO_TCP)
		proc_account(st, flags ? DSTRACE_EV_ACCEPT : DSTRACE_EV_CONNECT, proto, false, 1, 0);
	if (raddr)
		proc_peer(st, who.tgid, raddr);
	if (!raddr)
		flags |= DSTRACE_F_NO_REMOTE;
	if (BPF_CORE_READ(sk, sk_protocol) == IPPROTO_MPTCP)
		flags |= DSTRACE_F_MPTCP;
	emit_event_full(sk, ino, DSTRACE_EV_EXISTING, proto, raddr, rport, 0, LOCAL_SOCK, NULL,
			&who, flags, NULL, 0);
}

/* A field of a UDP socket's udp_sock, which lies beyond struct sock: a direct load through a
 * struct sock pointer is refused, so a probe read; with casts (the tracepoint backend's
 * programs only, 6.3+), a load through the socket cast to its type (BTF_CAST). */
#define UDP_READ(casts, sk, field)                     \
	((casts) ? BTF_CAST(sk, struct udp_sock)->field : \
		   BPF_CORE_READ((struct udp_sock *)(sk), field))

/* A corked UDP datagram (MSG_MORE, UDP_CORK) is still being built on this socket. */
static __always_inline bool udp_corked_as(struct sock *sk, bool casts)
{
	return UDP_READ(casts, sk, pending) != 0;
}

static __always_inline bool udp_corked(struct sock *sk)
{
	return udp_corked_as(sk, false);
}

/* A UDP_SEGMENT control message (SOL_UDP level) names the call's own segment size. */
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#define CMSG_SCAN 8 /* control messages looked at per call: QUIC stacks send one or two */

struct cmsg_head { /* struct cmsghdr: its data follows, aligned to 8 bytes (64-bit) */
	__u64 len;
	__s32 level;
	__s32 type;
};

/* The segment size a send's control messages set (UDP_SEGMENT, as QUIC stacks send it per
 * call), or -1 where they set none (the socket's own then applies). msg is the kernel's
 * msghdr of udpv6_sendmsg(): its control messages are a kernel copy, or still in user memory
 * where msg_control_is_user says so. */
static __always_inline int udp_msg_gso(struct msghdr *msg)
{
	__u64 len = BPF_CORE_READ(msg, msg_controllen), off = 0;
	void *ctl = BPF_CORE_READ(msg, msg_control);
	struct cmsg_head h;
	bool user = false;
	__u16 gso;
	int ret = -1;

	if (!ctl || len < sizeof(h))
		return -1;
	if (bpf_core_field_exists(msg->msg_control_is_user))
		user = BPF_CORE_READ_BITFIELD_PROBED(msg, msg_control_is_user);
	for (int i = 0; i < CMSG_SCAN; i++) {
		if (off + sizeof(h) > len)
			break;
		if (read_mem(&h, sizeof(h), ctl + off, user))
			break;
		if (h.len < sizeof(h) || h.len > len - off)
			break;
		/* the kernel takes the last one, and only of the exact length */
		if (h.level == SOL_UDP && h.type == UDP_SEGMENT && h.len == sizeof(h) + sizeof(gso) &&
		    !read_mem(&gso, sizeof(gso), ctl + off + sizeof(h), user))
			ret = gso;
		off += (h.len + 7) & ~7ULL;
	}
	return ret;
}

/* Datagrams one send of len bytes leaves as: several with a segment size (GSO), the call's
 * own (call_gso, from its UDP_SEGMENT control message; -1: none) or else the socket's
 * (setsockopt(UDP_SEGMENT)). */
static __always_inline __u64 udp_send_segments_as(struct sock *sk, int len, bool casts,
						  int call_gso)
{
	__u16 gso = call_gso >= 0 ? (__u16)call_gso : UDP_READ(casts, sk, gso_size);

	return gso && len > gso ? ((__u32)len + gso - 1) / gso : 1;
}

/*
 * Paths 3 and 4: UDP datagrams sent to, or received from, an IPv4 peer on an AF_INET6 socket.
 * Every datagram is counted here; only the first of a flow becomes an event. ret is the
 * payload length, or a negative errno for a send that failed. datagrams: how many this call
 * sent or received, 0 for a send that only appended to a corked datagram that an earlier call
 * started (bytes, no new datagram). btf: a tracing program (tp_btf, fentry): sk is read
 * directly and the task through its BTF.
 */
static __always_inline void handle_udp_datagram(struct sock *sk, __u8 kind, __u8 proto,
						__u32 raddr, __u16 rport, int ret,
						__u64 datagrams,
						const struct dgram_scratch *ids, bool btf)
{
	__u32 tgid = btf ? bpf_get_current_task_btf()->tgid : bpf_get_current_pid_tgid() >> 32;
	__u16 lport = SK_READ(btf, sk, __sk_common.skc_num);
	struct dstrace_flow_key key = {};
	struct dstrace_flow_val *flow;
	struct dstrace_proc_stats *st;
	__u32 netns;
	__u64 ino;

	if (!dstrace_wanted(kind, proto, tgid, lport, rport))
		return;
	ino = ids && ids->ino ? ids->ino : sk_ino(sk);
	netns = ids && ids->ino ? ids->netns : sk_netns(sk);
	if (ret < 0) {
		proc_peer(proc_account(proc_entry_ns(netns, tgid, btf), kind, proto, true, 0, 0), tgid,
			  raddr);
		emit_event(sk, ino, kind, proto, raddr, rport, ret, false);
		return;
	}
	st = proc_account(proc_entry_ns(netns, tgid, btf), kind, proto, false, datagrams, ret);

	key.sock_ino = ino;
	key.pid = tgid;
	key.raddr = raddr;
	key.rport = rport;
	key.kind = kind;
	flow = bpf_map_lookup_elem(&udp_flows, &key);
	if (!flow) {
		struct dstrace_flow_val init = { .datagrams = datagrams, .bytes = ret, .lport = lport };

		/* a new flow: the answer to one the peer began (its datagrams came first), or one
		 * this process begins (struct dstrace_flow_val); the other way's flow may itself
		 * be the answer (an exchange under way at start, or a flow evicted and begun again) */
		key.kind = kind == DSTRACE_EV_SEND ? DSTRACE_EV_RECV : DSTRACE_EV_SEND;
		flow = bpf_map_lookup_elem(&udp_flows, &key);
		if (flow) {
			init.answer = !flow->answer;
		} else if (udp_began_n) { /* an exchange under way at start */
			__u8 *began;

			key.kind = DSTRACE_EV_EXISTING;
			key.pid = 0;
			began = bpf_map_lookup_elem(&udp_began, &key);
			init.answer = began && *began != kind;
			key.pid = tgid;
		}
		key.kind = kind;
		if (!bpf_map_update_elem(&udp_flows, &key, &init, BPF_NOEXIST)) {
			counter_add(DSTRACE_CNT_FLOW_NEW, 1);
			proc_peer(st, tgid, raddr);
			emit_event(sk, ino, kind, proto, raddr, rport, 0, true);
			return;
		}
		flow = bpf_map_lookup_elem(&udp_flows, &key); /* another CPU won the race */
		if (!flow)
			return;
	}
	__sync_fetch_and_add(&flow->datagrams, datagrams);
	__sync_fetch_and_add(&flow->bytes, ret);
}

/* Did a read take data off the socket? Not a peek: it leaves the data queued, to be counted
 * when it is read; not a read of the error queue: it returns an error report, not data. */
static __always_inline bool recv_dequeues(int flags)
{
	return !(flags & (MSG_PEEK | MSG_ERRQUEUE));
}

/* Is a read that returned ret (flags: the caller's MSG_ flags) counted? Only one that took
 * data off the socket: not a peek, not an error-queue read, not a failure (ret < 0). */
static __always_inline bool recv_counted(int flags, int ret)
{
	return ret >= 0 && recv_dequeues(flags);
}

/* The socket's dgram_scratch, made on its first IPv4 datagram, with its ids read once. Only
 * for backends that may use socket storage (tracepoint, fentry). */
static __always_inline struct dgram_scratch *dgram_sock(struct sock *sk)
{
	struct dgram_scratch *s =
		bpf_sk_storage_get(&dgram_scratch, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!s) /* another CPU made it at the same instant: this one got NULL */
		s = bpf_sk_storage_get(&dgram_scratch, sk, 0, 0);
	if (s && !s->ino) {
		s->netns = sk_netns(sk);
		s->ino = sk_ino(sk);
	}
	return s;
}

/* Path 4: a read on a UDP AF_INET6 socket returned ret (flags: the caller's MSG_ flags);
 * mapped: the datagram it read came from the IPv4 peer raddr:rport; segs: the datagrams it
 * took, several where the socket asked for them coalesced (UDP_GRO), else 0 or 1. Every
 * backend's reads end here, and this decides which are counted. btf: sk is a BTF pointer
 * (tracepoint, fentry; a constant), and such backends may use socket storage. */
static __always_inline void handle_udp_recv(struct sock *sk, __u8 proto, int flags, int ret,
					    bool mapped, __u32 raddr, __u16 rport, __u8 segs,
					    bool btf)
{
	if (recv_counted(flags, ret) && mapped)
		handle_udp_datagram(sk, DSTRACE_EV_RECV, proto, raddr, rport, ret,
				    segs > 1 ? segs : 1, btf ? dgram_sock(sk) : NULL, btf);
}

/* The datagrams beyond the first that the GSO packets sent since the last look became
 * (cg_skb_egress), taken (tracepoint backend). */
static __always_inline __u32 gso_extra_take(struct dgram_scratch *s)
{
	__u32 n;

	if (!s)
		return 0;
	n = s->gso_extra;
	if (n)
		__sync_fetch_and_sub(&s->gso_extra, n);
	return n;
}

/*
 * A UDP send finished on an AF_INET6 socket (backends that see every call and may use socket
 * storage: tracepoint, fentry). have_peer: this call's datagram goes to the IPv4 peer
 * raddr:rport. A call that only appends to a corked datagram may not name its peer: the one
 * remembered from the call that started the datagram is used. A cork flush
 * (setsockopt(UDP_CORK, 0)) sends without a send call: the next call starts afresh. casts:
 * UDP_READ. call_gso: the call's segment size (udp_msg_gso), or GSO_FROM_EGRESS where the
 * hook sees no msghdr (tracepoint): the datagrams beyond the first that cg_skb_egress counted
 * on the way out are taken instead (handed: those it handed to this call; the socket's
 * storage: the rest), which also counts a corked datagram's segments on the call that sends
 * it. A send that cannot be counted still takes them, so they are never given to another.
 */
#define GSO_FROM_EGRESS (-2)
static __always_inline void udp_send_done(struct sock *sk, __u8 proto, bool have_peer,
					  __u32 raddr, __u16 rport, int ret, bool casts,
					  int call_gso, __u32 handed)
{
	struct dgram_scratch *s = bpf_sk_storage_get(&dgram_scratch, sk, 0, 0);
	bool continuation = s && s->cork_valid;
	__u32 extra = call_gso == GSO_FROM_EGRESS ? handed + gso_extra_take(s) : 0;
	__u64 datagrams;

	if (continuation && !have_peer) {
		raddr = s->cork_addr;
		rport = s->cork_port;
		have_peer = true;
	}
	if (!have_peer)
		return;
	if (!s || !s->ino)
		s = dgram_sock(sk);
	if (ret < 0)
		datagrams = 0;
	else if (call_gso == GSO_FROM_EGRESS)
		datagrams = (continuation ? 0 : 1) + extra;
	else
		datagrams = continuation ? 0 : udp_send_segments_as(sk, ret, casts, call_gso);
	handle_udp_datagram(sk, DSTRACE_EV_SEND, proto, raddr, rport, ret, datagrams, s, true);
	if (!s)
		return;
	if (ret >= 0 && udp_corked_as(sk, casts)) {
		if (!corks_seen) {
			corks_seen = 1;
			barrier(); /* a compiler barrier: a send that must see the cork comes
				    * after this one (same thread, or ordered by its program) */
		}
		s->cork_addr = raddr;
		s->cork_port = rport;
		s->cork_valid = 1;
	} else {
		s->cork_valid = 0;
	}
}

/*
 * Payload bytes sent or received (ret of the socket layer's sendmsg/recvmsg, tcp_sendpage or
 * tcp_splice_read) on a TCP connection of an AF_INET6 socket with an IPv4 peer. Only
 * counted: a connection is reported once, by its connect or accept. btf: sk is read
 * directly and the task through its BTF (proc_start_now).
 */
static __always_inline void handle_tcp_bytes(struct sock *sk, __u8 kind, int ret, bool btf)
{
	__u32 tgid = btf ? bpf_get_current_task_btf()->tgid : bpf_get_current_pid_tgid() >> 32;
	__u16 rport;
	__u32 raddr;
	__u8 proto;

	if (ret <= 0 || !sk_is_inet6_as(sk, &proto, btf) || proto != DSTRACE_PROTO_TCP ||
	    !sk_mapped_peer_as(sk, &raddr, &rport, btf))
		return;
	if (!dstrace_wanted(kind, DSTRACE_PROTO_TCP, tgid, sk_lport_filtered(sk, btf), rport))
		return;
	{
		struct dstrace_proc_stats *st = proc_entry(sk, tgid, btf);

		if (!st)
			return;
		proc_touch(st);
		__sync_fetch_and_add(&st->bytes[kind == DSTRACE_EV_RECV][DSTRACE_PROTO_TCP], ret);
	}
}

/* A read on a TCP AF_INET6 socket returned ret (flags: the caller's MSG_ flags): its bytes,
 * if it is counted (recv_counted). */
static __always_inline void handle_tcp_recv(struct sock *sk, int flags, int ret, bool btf)
{
	if (recv_counted(flags, ret))
		handle_tcp_bytes(sk, DSTRACE_EV_RECV, ret, btf);
}

/*
 * The fentry and kprobe backends see the kernel functions' own arguments; these turn them
 * into the handlers' inputs.
 */

/* A UDP or UDP-Lite AF_INET6 socket; *proto says which. */
static __always_inline bool sk_is_udp6(struct sock *sk, __u8 *proto)
{
	return sk_is_inet6(sk, proto) && *proto != DSTRACE_PROTO_TCP;
}

/* The IPv4 peer of a UDP datagram of an AF_INET6 socket, from the msghdr the kernel function
 * got: the address in msg_name, else the connected peer. Sending, msg_name is the caller's
 * destination (read before udpv6_sendmsg() or after it, which restores it); receiving, it is
 * the source udpv6_recvmsg() filled in (::ffff:a.b.c.d) when the caller asked for one, and its
 * length is not in msg_namelen yet. */
static __always_inline bool udp6_msg_peer(struct sock *sk, struct msghdr *msg, bool received,
					  __u32 *addr, __u16 *port)
{
	void *name;
	__u8 proto;

	if (!sk_is_udp6(sk, &proto))
		return false;
	name = BPF_CORE_READ(msg, msg_name);
	if (name)
		return sockaddr_v4(name,
				   received ? sizeof(struct sockaddr_in6) :
					      BPF_CORE_READ(msg, msg_namelen),
				   false, addr, port);
	if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_ESTABLISHED)
		return false;
	return sk_mapped_peer(sk, addr, port);
}

/* SKB_GSO_UDP_L4 (an anonymous enum: no CO-RE relocation; the same bit from 4.18 on) */
#define GSO_UDP_L4 (1U << 17)

/* Datagrams in a UDP packet of size bytes (payload) with segment size gso: its own count,
 * else (a packet from a virtio or tun device, SKB_GSO_DODGY, has none) from the sizes. */
static __always_inline __u8 udp_segs_of(__u32 segs, __u32 gso, __u32 size)
{
	if (!segs && gso)
		segs = (size + gso - 1) / gso;
	return segs > 255 ? 255 : segs > 1 ? segs : 0;
}

/* The datagrams a received UDP packet holds: several for one coalesced by GRO (or sent with
 * GSO over loopback or veth) and queued whole, on a socket that set UDP_GRO (the kernel
 * tells the reader so for a UDP_L4 one, udp_cmsg_recv); else 0 (one). The count is in the
 * skb's shared info, after its data (head + end); skb->len is the UDP header and payload. */
static __always_inline __u8 skb_udp_segs(struct sk_buff *skb)
{
	struct skb_shared_info *sh =
		(void *)(BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, end));
	__u32 len = BPF_CORE_READ(skb, len);
	__u16 gso = BPF_CORE_READ(sh, gso_size);

	if (!gso || !(BPF_CORE_READ(sh, gso_type) & GSO_UDP_L4) || len < 8)
		return 0;
	return udp_segs_of(BPF_CORE_READ(sh, gso_segs), gso, len - 8);
}

/* The IPv4 source of a datagram udpv6_recvmsg() takes (the IPv4 and UDP headers of its
 * skb, as udpv6_recvmsg() gives it to a caller that asks) and the datagrams the skb holds;
 * false for an IPv6 one. */
static __always_inline bool udp_skb_v4_source(struct sk_buff *skb, __u32 *addr, __u16 *port,
					      __u8 *segs)
{
	unsigned char *head;
	struct iphdr *iph;
	struct udphdr *uh;

	if (BPF_CORE_READ(skb, protocol) != bpf_htons(ETH_P_IP))
		return false;
	head = BPF_CORE_READ(skb, head);
	iph = (void *)(head + BPF_CORE_READ(skb, network_header));
	uh = (void *)(head + BPF_CORE_READ(skb, transport_header));
	*addr = BPF_CORE_READ(iph, saddr);
	*port = bpf_ntohs(BPF_CORE_READ(uh, source));
	*segs = skb_udp_segs(skb);
	return true;
}

/* skb_consume_udp(sk, skb, len): udpv6_recvmsg() is done with a datagram. Its source is
 * handed to the return of udpv6_recvmsg(): that is how a read without an address (recv(),
 * read()) on an unconnected socket learns its peer. */
static __always_inline void udp6_skb_consumed(struct sock *sk, struct sk_buff *skb, bool slots)
{
	__u32 addr = 0;
	__u16 port = 0;
	__u8 proto, segs = 0;
	bool v4;

	if (!sk_is_udp6(sk, &proto))
		return;
	v4 = udp_skb_v4_source(skb, &addr, &port, &segs);
	dgram_handoff_set(sk_cookie(sk), true, v4, addr, port, segs, slots, slots);
}

/* The IPv4 peer of the datagram udpv6_recvmsg() returned: its source handed over by
 * skb_consume_udp(), else msg_name or the connected peer (slots: dgram_handoff_set). */
static __always_inline bool udp6_recv_peer(struct sock *sk, struct msghdr *msg, __u32 *addr,
					   __u16 *port, __u8 *segs, bool slots)
{
	struct dgram_peer peer;

	if (dgram_handoff_take(sk, true, &peer, false, slots)) {
		*addr = peer.addr;
		*port = peer.port;
		*segs = peer.segs;
		return peer.mapped;
	}
	return udp6_msg_peer(sk, msg, true, addr, port);
}

#endif /* DSTRACE_PATHS_BPF_H */
