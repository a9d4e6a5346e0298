/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Paths 3 and 4, and TCP bytes: every UDP datagram sent to or received from an IPv4 peer on
 * an AF_INET6 socket, and the payload bytes of mapped TCP connections; with what the fentry
 * and kprobe backends need to turn the kernel functions' arguments into the handlers' inputs.
 */
#ifndef DSTRACE_TRAFFIC_BPF_H
#define DSTRACE_TRAFFIC_BPF_H

#include "core.bpf.h"

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

/* Does a new flow (key: its key; lport: its socket's port) answer the other way's, begun by
 * the peer (struct dstrace_flow_val)? Who began an exchange under way at start decides where
 * the scan noted it (existing.bpf.h, existing_udp_began); else the other way's flow, if there
 * is one and it is not itself the answer (a flow evicted and begun again); else, on an
 * unconnected socket the scan found, shortly after it, what its port says (udp_roles). */
static __always_inline __u8 udp_flow_answers(struct dstrace_flow_key *key, __u16 lport)
{
	__u8 kind = key->kind, answer = 0;
	struct dstrace_flow_val *other;
	__u32 pid = key->pid;
	__u8 *began = NULL;

	if (udp_began_n) {
		key->kind = DSTRACE_EV_EXISTING;
		key->pid = 0;
		began = bpf_map_lookup_elem(&udp_began, key);
		key->pid = pid;
	}
	if (began) {
		answer = *began != kind;
	} else {
		key->kind = kind == DSTRACE_EV_SEND ? DSTRACE_EV_RECV : DSTRACE_EV_SEND;
		other = bpf_map_lookup_elem(&udp_flows, key);
		if (other) {
			answer = !other->answer;
		} else if (udp_roles_n) {
			/* a port of the kernel's choice: every flow begun by the program; a port
			 * bound: a datagram sent first answers a peer on a client's port */
			began = bpf_map_lookup_elem(&udp_roles, &key->sock_ino);
			if (began)
				answer = *began == DSTRACE_EV_SEND ?
						 kind == DSTRACE_EV_RECV :
						 kind == DSTRACE_EV_SEND && key->rport >= 1024 &&
							 key->rport != lport;
		}
	}
	key->kind = kind;
	return answer;
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

		init.answer = udp_flow_answers(&key, lport);
		if (!bpf_map_update_elem(&udp_flows, &key, &init, BPF_NOEXIST)) {
			/* while the scan runs it may have noted this socket since: it decides */
			if (!existing_done && (udp_began_n || udp_roles_n)) {
				flow = bpf_map_lookup_elem(&udp_flows, &key);
				if (flow)
					flow->answer = udp_flow_answers(&key, lport);
			}
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
 * Payload bytes sent or received (ret of the socket layer's sendmsg/recvmsg, or of a splice:
 * handle_splice_read, handle_sendpage) on a TCP connection of an AF_INET6 socket with an
 * IPv4 peer. Only counted: a connection is reported once, by its connect or accept. btf:
 * sk is read directly and the task through its BTF (proc_start_now).
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

/*
 * Bytes read from sk into a pipe: splice(2), sendfile(2) into a pipe (Linux 5.12+: the same
 * path), an io_uring splice; ret, the bytes the call moved. Counted where the socket's family
 * reads them without a recvmsg: it has a splice_read of its own (TCP's tcp_splice_read,
 * kernel TLS's, MPTCP's from Linux 7.0). One without (MPTCP's before 7.0, UDP's) is read
 * through its recvmsg (sock_splice_read: copy_splice_read, generic_file_splice_read before
 * 6.5), counted there. NULL: not a socket.
 */
static __always_inline void handle_splice_read(struct sock *sk, long ret, bool btf)
{
	if (sk && ret > 0 && BPF_CORE_READ(sk, sk_socket, ops, splice_read))
		handle_tcp_bytes(sk, DSTRACE_EV_RECV, (int)ret, btf);
}

/* struct proto's sendpage, which Linux 6.5 removed (sendfile() and splice() send with
 * sendmsg() since) */
struct proto___sendpage {
	int (*sendpage)(struct sock *sk, struct page *page, int offset, size_t size, int flags);
} __attribute__((preserve_access_index));

/*
 * Before Linux 6.5, bytes sent to sk as pages (sendfile(2), splice(2), an io_uring splice
 * through the socket file's sock_sendpage, and a kernel service's kernel_sendpage: the inet
 * socket's inet_sendpage); ret, the bytes the call moved. Counted where the socket's
 * protocol sends pages itself (TCP's tcp_sendpage, kernel TLS's tls_sw_sendpage); one
 * without (MPTCP's) sends them through its sendmsg (sock_no_sendpage: kernel_sendmsg),
 * counted there. Probe reads (fentry and kprobe).
 */
static __always_inline void handle_sendpage(struct sock *sk, long ret)
{
	struct proto___sendpage *prot;

	if (!sk || ret <= 0 || !bpf_core_field_exists(struct proto___sendpage, sendpage))
		return;
	prot = (struct proto___sendpage *)BPF_CORE_READ(sk, __sk_common.skc_prot);
	if (BPF_CORE_READ(prot, sendpage))
		handle_tcp_bytes(sk, DSTRACE_EV_SEND, (int)ret, false);
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

#endif /* DSTRACE_TRAFFIC_BPF_H */
