/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One handler per mapping path. A backend's attach wrappers find the socket, the peer and
 * the result the way their hook allows, then call one of these; everything that turns kernel
 * state into a dstrace event or a counter lives here, so every backend reports the same.
 */
#ifndef DSTRACE_PATHS_BPF_H
#define DSTRACE_PATHS_BPF_H

#include "maps.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define TCP_ESTABLISHED 1
#define MSG_PEEK 2
#define EISCONN 106
#define EALREADY 114
#define EINPROGRESS 115

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

/* Does the user's filter let this through? (-p, -c, -P, --tcp/--udp, -e) */
static __always_inline bool dstrace_wanted(__u8 kind, __u8 proto, __u32 tgid, __u16 lport,
					   __u16 rport)
{
	if (!(filter_events & DSTRACE_EVMASK(kind)) || !(filter_protos & DSTRACE_PROTOMASK(proto)))
		return false;
	if (filter_port && lport != filter_port && rport != filter_port)
		return false;
	if (filter_pid_enabled && !bpf_map_lookup_elem(&pid_filter, &tgid))
		return false;
	if (filter_comm_enabled) {
		char comm[DSTRACE_COMM_LEN];

		bpf_get_current_comm(comm, sizeof(comm));
		for (int i = 0; i < DSTRACE_COMM_LEN; i++) {
			if (comm[i] != filter_comm[i])
				return false;
			if (!comm[i])
				break;
		}
	}
	return true;
}

/* The executable's path into st->exe_parts, last component first, crossing mount points
 * up to the root the task sees: a bounded d_path() (once per process). A global function:
 * the verifier checks it once, not in every program that creates a process entry. */
__noinline int read_exe_path(struct dstrace_proc_stats *st)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
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

/* When the current process started (its thread group leader's start_time, which exec keeps):
 * with the tgid, names one process even when the pid is reused. */
static __always_inline __u64 proc_start_ns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, group_leader, start_time);
}

/* Is this entry the current process's, still open for counting? An ended one (exit, exec,
 * marked in place when proc_exited was full) waits for user space, untouched; one of another
 * process with the same pid (its exit missed) is marked ended here. Either way this update
 * has no entry: counted as the table being full. */
static __always_inline bool proc_entry_current(struct dstrace_proc_stats *st)
{
	if (!st->exit_ns && st->start_ns == proc_start_ns())
		return true;
	if (!st->exit_ns) {
		st->ended_by = DSTRACE_END_STALE;
		st->exit_ns = bpf_ktime_get_boot_ns();
	}
	counter_add(DSTRACE_CNT_PROC_FULL, 1);
	return false;
}

/* The current process's totals, created on first use. A full table is counted, not hidden. */
static __always_inline struct dstrace_proc_stats *proc_entry(struct sock *sk, __u32 tgid)
{
	struct dstrace_proc_stats *st = bpf_map_lookup_elem(&proc_stats, &tgid);
	struct dstrace_proc_stats *init;
	__u32 zero = 0;

	if (st)
		return proc_entry_current(st) ? st : NULL;
	init = bpf_map_lookup_elem(&proc_scratch, &zero);
	if (!init)
		return NULL;
	__builtin_memset(init, 0, sizeof(*init));
	init->uid = (__u32)bpf_get_current_uid_gid();
	init->cgroup_id = bpf_get_current_cgroup_id();
	init->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	init->first_ns = bpf_ktime_get_boot_ns();
	init->start_ns = proc_start_ns();
	bpf_get_current_comm(init->comm, sizeof(init->comm));
	read_exe_path(init);
	if (bpf_map_update_elem(&proc_stats, &tgid, init, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&proc_stats, &tgid)) {
		counter_add(DSTRACE_CNT_PROC_FULL, 1);
		return NULL;
	}
	st = bpf_map_lookup_elem(&proc_stats, &tgid);
	return st && proc_entry_current(st) ? st : NULL;
}

/* A remote address the process has met (a connection, a failure, a new UDP flow): counted
 * once per (process, address). Not per datagram: every new peer starts a new flow. */
static __always_inline void proc_peer(struct dstrace_proc_stats *st, __u32 tgid, __u32 raddr)
{
	struct proc_peer_key peer = { .tgid = tgid, .raddr = raddr };
	__u8 one = 1;

	if (st)
		peer.first_ns = st->first_ns;
	if (st && !bpf_map_lookup_elem(&proc_peers, &peer) &&
	    !bpf_map_update_elem(&proc_peers, &peer, &one, BPF_NOEXIST))
		__sync_fetch_and_add(&st->peers, 1);
}

/* Count n connections or datagrams, or one failure, and their payload bytes. */
static __always_inline struct dstrace_proc_stats *proc_account(struct sock *sk, __u32 tgid,
							       __u8 kind, __u8 proto, bool failed,
							       __u64 n, __u64 bytes)
{
	struct dstrace_proc_stats *st = proc_entry(sk, tgid);

	if (!st || kind >= DSTRACE_EV_MAX || proto >= DSTRACE_PROTO_MAX)
		return NULL;
	st->last_ns = bpf_ktime_get_boot_ns();
	if (failed)
		__sync_fetch_and_add(&st->failed, 1);
	else if (n)
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

/* Write one event; a full ring buffer is counted as lost. */
static __always_inline void emit_event(struct sock *sk, __u64 ino, __u8 kind, __u8 proto,
				       __u32 raddr, __u16 rport, int ret, bool have_local)
{
	struct dstrace_event *e;
	__u64 id = bpf_get_current_pid_tgid();

	if (!emit_events)
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		counter_add(DSTRACE_CNT_LOST, 1);
		return;
	}
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->sock_ino = ino;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	e->raddr = raddr;
	e->rport = rport;
	e->ret = ret;
	e->kind = kind;
	e->proto = proto;
	e->pad = 0;
	/* A connection refused before we looked has already given its port back. */
	if (have_local && (e->lport = BPF_CORE_READ(sk, __sk_common.skc_num))) {
		e->laddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		e->flags = DSTRACE_F_HAVE_LOCAL;
	} else {
		e->laddr = 0;
		e->lport = 0;
		e->flags = 0;
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
				      BPF_RB_FORCE_WAKEUP :
				      BPF_RB_NO_WAKEUP);
	counter_add(DSTRACE_CNT_EVENTS, 1);
}

static __always_inline bool sk_is_inet6(struct sock *sk, __u16 *protocol)
{
	if (BPF_CORE_READ(sk, __sk_common.skc_family) != AF_INET6)
		return false;
	*protocol = BPF_CORE_READ(sk, sk_protocol);
	return *protocol == IPPROTO_TCP || *protocol == IPPROTO_UDP;
}

/* The socket's connected peer, if it is IPv4-mapped. */
static __always_inline bool sk_mapped_peer(struct sock *sk, __u32 *raddr, __u16 *rport)
{
	__u32 daddr6[4];

	BPF_CORE_READ_INTO(&daddr6, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	if (!in6_is_v4mapped(daddr6))
		return false;
	*raddr = daddr6[3];
	*rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return true;
}

static __always_inline bool sk_is_v6only(struct sock *sk)
{
	return BPF_CORE_READ_BITFIELD_PROBED(&sk->__sk_common, skc_ipv6only);
}

enum sockaddr_verdict {
	SA_OTHER = 0, /* native IPv6, another family, too short */
	SA_V4 = 1,    /* leads an AF_INET6 socket to IPv4 */
	SA_UNREADABLE = 2,
};

static __always_inline long read_mem(void *dst, __u32 size, const void *src, bool user)
{
	return user ? bpf_probe_read_user(dst, size, src) : bpf_probe_read_kernel(dst, size, src);
}

/* Does this sockaddr take an AF_INET6 socket to IPv4? ::ffff:a.b.c.d does, and so does a
 * plain sockaddr_in, which udpv6_sendmsg and ip6_datagram_connect also accept.
 * user: the address is still in user memory (syscall tracepoints). */
static __always_inline int sockaddr_classify(const void *uaddr, __u32 addrlen, bool user,
					     __u32 *addr, __u16 *port)
{
	struct sockaddr_in6 sa = {};

	if (!uaddr || addrlen < sizeof(struct sockaddr_in))
		return SA_OTHER;
	if (read_mem(&sa, sizeof(struct sockaddr_in), uaddr, user))
		return SA_UNREADABLE;
	if (sa.sin6_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&sa;

		*addr = sin->sin_addr.s_addr;
		*port = bpf_ntohs(sin->sin_port);
		return SA_V4;
	}
	if (sa.sin6_family != AF_INET6 || addrlen < sizeof(struct sockaddr_in6))
		return SA_OTHER;
	if (read_mem(&sa, sizeof(sa), uaddr, user))
		return SA_UNREADABLE;
	if (!in6_is_v4mapped(sa.sin6_addr.in6_u.u6_addr32))
		return SA_OTHER;
	*addr = sa.sin6_addr.in6_u.u6_addr32[3];
	*port = bpf_ntohs(sa.sin6_port);
	return SA_V4;
}

static __always_inline bool sockaddr_v4(const void *uaddr, __u32 addrlen, bool user, __u32 *addr,
					__u16 *port)
{
	return sockaddr_classify(uaddr, addrlen, user, addr, port) == SA_V4;
}

/*
 * Path 1: connect() of an AF_INET6 socket to an IPv4-mapped address (TCP falls to
 * tcp_v4_connect, UDP to __ip4_datagram_connect), after the call returned.
 */
static __always_inline void handle_connect_done(struct sock *sk, __u32 daddr, __u16 dport,
						int ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u16 protocol;
	__u8 proto;

	if (!sk || !sk_is_inet6(sk, &protocol))
		return;
	/* A repeated connect() on a socket already connecting is not a new attempt. */
	if (ret == -EALREADY || ret == -EISCONN)
		return;
	if (ret == -EINPROGRESS)
		ret = 0;
	proto = protocol == IPPROTO_TCP ? DSTRACE_PROTO_TCP : DSTRACE_PROTO_UDP;
	if (!dstrace_wanted(DSTRACE_EV_CONNECT, proto, tgid,
			    ret ? 0 : BPF_CORE_READ(sk, __sk_common.skc_num), dport))
		return;
	proc_peer(proc_account(sk, tgid, DSTRACE_EV_CONNECT, proto, ret < 0, 1, 0), tgid, daddr);
	emit_event(sk, sk_ino(sk), DSTRACE_EV_CONNECT, proto, daddr, dport, ret, ret == 0);
}

/* Path 2: a TCP connection from an IPv4 client, now owned by the process accepting it. */
static __always_inline void handle_accept_done(struct sock *sk)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u16 protocol, rport;
	__u32 raddr;

	if (!sk || !sk_is_inet6(sk, &protocol) || protocol != IPPROTO_TCP)
		return;
	if (!sk_mapped_peer(sk, &raddr, &rport))
		return;
	if (!dstrace_wanted(DSTRACE_EV_ACCEPT, DSTRACE_PROTO_TCP, tgid,
			    BPF_CORE_READ(sk, __sk_common.skc_num), rport))
		return;
	proc_peer(proc_account(sk, tgid, DSTRACE_EV_ACCEPT, DSTRACE_PROTO_TCP, false, 1, 0), tgid,
		  raddr);
	emit_event(sk, sk_ino(sk), DSTRACE_EV_ACCEPT, DSTRACE_PROTO_TCP, raddr, rport, 0, true);
}

/* A corked UDP datagram (MSG_MORE, UDP_CORK) is still being built on this socket. */
static __always_inline bool udp_corked(struct sock *sk)
{
	return BPF_CORE_READ((struct udp_sock *)sk, pending) != 0;
}

/* Datagrams one send of len bytes leaves as: several with UDP_SEGMENT (GSO) set on the
 * socket. (A UDP_SEGMENT control message on the call itself is not seen.) */
static __always_inline __u64 udp_send_segments(struct sock *sk, int len)
{
	__u16 gso = BPF_CORE_READ((struct udp_sock *)sk, gso_size);

	return gso && len > gso ? ((__u32)len + gso - 1) / gso : 1;
}

/*
 * Paths 3 and 4: UDP datagrams sent to, or received from, an IPv4 peer on an AF_INET6 socket.
 * Every datagram is counted here; only the first of a flow becomes an event. ret is the
 * payload length, or a negative errno for a send that failed. continuation: this send only
 * appended to a corked datagram that an earlier call started (bytes, no new datagram).
 */
static __always_inline void handle_udp_datagram(struct sock *sk, __u8 kind, __u32 raddr,
						__u16 rport, int ret, bool continuation)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	struct dstrace_flow_key key = {};
	struct dstrace_flow_val *flow;
	struct dstrace_proc_stats *st;
	__u64 ino, datagrams;

	if (!dstrace_wanted(kind, DSTRACE_PROTO_UDP, tgid, lport, rport))
		return;
	ino = sk_ino(sk);
	if (ret < 0) {
		proc_peer(proc_account(sk, tgid, kind, DSTRACE_PROTO_UDP, true, 0, 0), tgid, raddr);
		emit_event(sk, ino, kind, DSTRACE_PROTO_UDP, raddr, rport, ret, false);
		return;
	}
	datagrams = continuation ? 0 : kind == DSTRACE_EV_SEND ? udp_send_segments(sk, ret) : 1;
	st = proc_account(sk, tgid, kind, DSTRACE_PROTO_UDP, false, datagrams, ret);

	key.sock_ino = ino;
	key.pid = tgid;
	key.raddr = raddr;
	key.rport = rport;
	key.kind = kind;
	flow = bpf_map_lookup_elem(&udp_flows, &key);
	if (!flow) {
		struct dstrace_flow_val init = { .datagrams = datagrams, .bytes = ret, .lport = lport };

		if (!bpf_map_update_elem(&udp_flows, &key, &init, BPF_NOEXIST)) {
			counter_add(DSTRACE_CNT_FLOW_NEW, 1);
			proc_peer(st, tgid, raddr);
			emit_event(sk, ino, kind, DSTRACE_PROTO_UDP, raddr, rport, 0, true);
			return;
		}
		flow = bpf_map_lookup_elem(&udp_flows, &key); /* another CPU won the race */
		if (!flow)
			return;
	}
	__sync_fetch_and_add(&flow->datagrams, datagrams);
	__sync_fetch_and_add(&flow->bytes, ret);
}

/*
 * A UDP send finished on an AF_INET6 socket (backends that see every call and may use socket
 * storage: tracepoint, fentry). s: the socket's storage if it has one (the caller looked it
 * up already). have_peer: this call's datagram goes to the IPv4 peer
 * raddr:rport. A call that only appends to a corked datagram may not name its peer: the one
 * remembered from the call that started the datagram is used.
 */
static __always_inline void udp_send_done(struct sock *sk, struct dgram_scratch *s,
					  bool have_peer, __u32 raddr, __u16 rport, int ret)
{
	bool continuation = s && s->cork.valid;

	if (continuation && !have_peer) {
		raddr = s->cork.addr;
		rport = s->cork.port;
		have_peer = true;
	}
	if (!have_peer)
		return;
	handle_udp_datagram(sk, DSTRACE_EV_SEND, raddr, rport, ret, continuation);
	if (ret >= 0 && udp_corked(sk)) {
		s = bpf_sk_storage_get(&dgram_scratch, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (s) {
			s->cork.addr = raddr;
			s->cork.port = rport;
			s->cork.valid = 1;
		}
	} else if (s) {
		s->cork.valid = 0;
	}
}

/*
 * Payload bytes sent or received (ret of tcp_sendmsg/tcp_recvmsg, or of the socket layer) on
 * a TCP connection of an AF_INET6 socket with an IPv4 peer. Only counted: a connection is
 * reported once, by its connect or accept.
 */
static __always_inline void handle_tcp_bytes(struct sock *sk, __u8 kind, int ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u16 protocol, rport;
	__u32 raddr;

	if (ret <= 0 || !sk_is_inet6(sk, &protocol) || protocol != IPPROTO_TCP ||
	    !sk_mapped_peer(sk, &raddr, &rport))
		return;
	if (!dstrace_wanted(kind, DSTRACE_PROTO_TCP, tgid, BPF_CORE_READ(sk, __sk_common.skc_num),
			    rport))
		return;
	{
		struct dstrace_proc_stats *st = proc_entry(sk, tgid);

		if (!st)
			return;
		st->last_ns = bpf_ktime_get_boot_ns();
		__sync_fetch_and_add(&st->bytes[kind == DSTRACE_EV_RECV][DSTRACE_PROTO_TCP], ret);
	}
}

/*
 * The fentry and kprobe backends see the kernel functions' own arguments; these turn them
 * into the handlers' inputs.
 */

/* tcp_v6_connect() and __ip6_datagram_connect(sk, uaddr, addr_len) returned ret. */
static __always_inline void on_connect_fn(struct sock *sk, const void *uaddr, int addr_len,
					  int ret)
{
	__u32 daddr;
	__u16 dport;

	if (sockaddr_v4(uaddr, addr_len, false, &daddr, &dport))
		handle_connect_done(sk, daddr, dport, ret);
}

static __always_inline bool sk_is_udp6(struct sock *sk)
{
	__u16 protocol;

	return sk_is_inet6(sk, &protocol) && protocol == IPPROTO_UDP;
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

	if (!sk_is_udp6(sk))
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

#endif /* DSTRACE_PATHS_BPF_H */
