/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every mapping path's handler shares (paths.bpf.h): the kernel's constants, the
 * counters and filters, who acted (process entries, task identities, names), events, and
 * reading a socket, a sockaddr, a descriptor and a syscall's number and arguments.
 */
#ifndef DSTRACE_CORE_BPF_H
#define DSTRACE_CORE_BPF_H

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
#define SOCK_BINDPORT_LOCK 8 /* sk_userlocks: the port was the program's choice (bind()) */
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
#define CALL_SPLICE 100	  /* not socketcall's: ia32_sock_call's splice(2) */
#define CALL_SENDFILE 101 /* and sendfile(2), sendfile64(2) */

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
#define IA32_NR_splice 313
#define IA32_NR_sendfile 187
#define IA32_NR_sendfile64 239
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
 * them (SYS_BIND, ...; splice(2), sendfile(2): CALL_SPLICE, CALL_SENDFILE), and its
 * arguments a[0..5] (those it has); false for another call, or a socketcall(2) whose
 * arguments cannot be read. */
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
	case IA32_NR_splice:
		*call = CALL_SPLICE;
		break;
	case IA32_NR_sendfile:
	case IA32_NR_sendfile64:
		*call = CALL_SENDFILE;
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

#endif /* DSTRACE_CORE_BPF_H */
