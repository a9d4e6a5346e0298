/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The scan of existing sockets at start (socket.bpf.h, iter/task_file): mapped connections
 * and UDP sockets open before dstrace, and TCP connects in progress then.
 */
#ifndef DSTRACE_EXISTING_BPF_H
#define DSTRACE_EXISTING_BPF_H

#include "connect.bpf.h"

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
	__u8 began = bpf_map_lookup_elem(&existing_udp_ports, lk) ? DSTRACE_EV_RECV :
								     DSTRACE_EV_SEND;
	struct dstrace_flow_val *flow;

	key.sock_ino = ino;
	key.raddr = raddr;
	key.rport = rport;
	key.kind = DSTRACE_EV_EXISTING; /* pid 0: for every process using the socket */
	/* full (8192 such sockets): the first datagram after the start tells (README) */
	if (bpf_map_update_elem(&udp_began, &key, &began, BPF_ANY))
		return;
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

/* An unconnected UDP socket found at start that may carry IPv4 (not v6-only, bound to no IPv6
 * address): who begins its flows under way, whose first datagram after the start may be the
 * answer (traffic.bpf.h, udp_flow_answers)? A port the kernel chose (a client's: sendto()
 * without bind(), bind() to port 0) is the program's: it began them all; a port bound (a
 * service's) answers the peers it sends to first on a client's port. Noted in udp_roles
 * (full: the first datagram after the start tells). */
static __always_inline void existing_udp_role(struct sock *sk, __u64 ino)
{
	__u32 local6[4];
	__u8 began;

	if (sk_is_v6only(sk))
		return;
	BPF_CORE_READ_INTO(&local6, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
	if ((local6[0] | local6[1] | local6[2] | local6[3]) && !in6_is_v4mapped(local6))
		return;
	began = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_userlocks) & SOCK_BINDPORT_LOCK ?
			DSTRACE_EV_RECV :
			DSTRACE_EV_SEND;
	if (!bpf_map_update_elem(&udp_roles, &ino, &began, BPF_ANY))
		udp_roles_n = 1;
}

/*
 * At start, for every socket of every process (iter/task_file): pass 1 notes the ports of
 * AF_INET6 TCP listeners and unconnected UDP sockets (and how the latter's flows began:
 * existing_udp_role), pass 2 reports each mapped connection
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
		if (proto == DSTRACE_PROTO_TCP && state == TCP_LISTEN)
			bpf_map_update_elem(&existing_listeners, &lk, &one, BPF_ANY);
		else if (proto != DSTRACE_PROTO_TCP && (__u16)lk.port &&
			 !BPF_CORE_READ(sk, __sk_common.skc_dport)) {
			bpf_map_update_elem(&existing_udp_ports, &lk, &one, BPF_ANY);
			existing_udp_role(sk, ino);
		}
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

#endif /* DSTRACE_EXISTING_BPF_H */
