/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Backend "kprobe": the same functions as the fentry backend, for kernels without BTF
 * trampolines. The kprobe keeps what the return probe needs, per thread and function.
 */
#ifndef DSTRACE_KPROBE_BPF_H
#define DSTRACE_KPROBE_BPF_H

#include "inflight.bpf.h"

enum kcall_fn {
	KCALL_TCP_CONNECT = 1,
	KCALL_UDP_CONNECT,
	KCALL_UDP_SEND,
	KCALL_UDP_RECV,
	KCALL_TCP_SEND,
	KCALL_TCP_RECV,
	KCALL_SENDPAGE,
	KCALL_SPLICE_READ,
};

struct kcall {
	__u64 sk;
	__u64 msg;
	__u32 daddr;
	__u16 dport;
	__u8 corked; /* UDP: a corked datagram was pending when the call began */
	__u8 pad;
	__s32 flags;
	__s32 gso; /* UDP send: the call's segment size (udp_msg_gso), -1 for none */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64); /* fn << 32 | tid */
	__type(value, struct kcall);
} kprobe_calls SEC(".maps");

static __always_inline __u64 kcall_key(enum kcall_fn fn)
{
	return (__u64)fn << 32 | (__u32)bpf_get_current_pid_tgid();
}

static __always_inline void kcall_save(enum kcall_fn fn, struct kcall *call)
{
	__u64 key = kcall_key(fn);

	/* full: the return finds nothing; counted (stash_full), never silent */
	if (bpf_map_update_elem(&kprobe_calls, &key, call, BPF_ANY))
		counter_add(DSTRACE_CNT_STASH_FULL, 1);
}

/* A call that keeps nothing: an older one of this thread, whose return was missed, must not
 * be taken by this call's return (a lookup first: there is almost never one). */
static __always_inline void kcall_clear(enum kcall_fn fn)
{
	__u64 key = kcall_key(fn);

	if (bpf_map_lookup_elem(&kprobe_calls, &key))
		bpf_map_delete_elem(&kprobe_calls, &key);
}

/* The saved call, removed from the map into *call; false if there is none. */
static __always_inline bool kcall_take(enum kcall_fn fn, struct kcall *call)
{
	__u64 key = kcall_key(fn);
	struct kcall *saved = bpf_map_lookup_elem(&kprobe_calls, &key);

	if (!saved)
		return false;
	*call = *saved;
	bpf_map_delete_elem(&kprobe_calls, &key);
	return true;
}

/* The connect itself is followed by the socket layer (socket.bpf.h); these give its
 * immediate result. Only sockets with a pending mapped connect are kept. */
static __always_inline void kcall_connect_entry(enum kcall_fn fn, struct sock *sk)
{
	struct kcall call = { .sk = (__u64)sk };
	__u64 cookie = sk_cookie(sk);

	if (cookie && conn_pending_peek(cookie, false))
		kcall_save(fn, &call);
	else
		kcall_clear(fn);
}

static __always_inline void kcall_connect_return(enum kcall_fn fn, int ret)
{
	struct kcall call;

	if (kcall_take(fn, &call))
		handle_connect_call((struct sock *)call.sk, ret, false);
}

/* A connect's error as the kernel reports it, before the program is woken (connect.bpf.h,
 * handle_tcp_error_report): the function every TCP socket's sk_error_report is. */
SEC("kprobe/sock_def_error_report")
int BPF_KPROBE(kp_sock_def_error_report, struct sock *sk)
{
	FLOOR_RETURN(0);
	handle_tcp_error_report(sk, false, false);
	return 0;
}

SEC("kprobe/tcp_v6_connect")
int BPF_KPROBE(kp_tcp_v6_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len)
{
	FLOOR_RETURN(0);
	kcall_connect_entry(KCALL_TCP_CONNECT, sk);
	return 0;
}

SEC("kretprobe/tcp_v6_connect")
int BPF_KRETPROBE(kp_tcp_v6_connect_ret, int ret)
{
	FLOOR_RETURN(0);
	kcall_connect_return(KCALL_TCP_CONNECT, ret);
	return 0;
}

SEC("kprobe/__ip6_datagram_connect")
int BPF_KPROBE(kp_ip6_datagram_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len)
{
	FLOOR_RETURN(0);
	kcall_connect_entry(KCALL_UDP_CONNECT, sk);
	return 0;
}

SEC("kretprobe/__ip6_datagram_connect")
int BPF_KRETPROBE(kp_ip6_datagram_connect_ret, int ret)
{
	FLOOR_RETURN(0);
	kcall_connect_return(KCALL_UDP_CONNECT, ret);
	return 0;
}

SEC("kretprobe/inet_csk_accept")
int BPF_KRETPROBE(kp_inet_csk_accept_ret, struct sock *newsk)
{
	FLOOR_RETURN(0);
	inflight_forget();
	if (newsk)
		handle_accept_done(newsk, false, false);
	return 0;
}

SEC("kprobe/udpv6_sendmsg")
int BPF_KPROBE(kp_udpv6_sendmsg, struct sock *sk, struct msghdr *msg)
{
	FLOOR_RETURN(0);
	struct kcall call = { .sk = (__u64)sk };

	/* A call appending to a corked datagram must name its peer here (no socket storage
	 * for kprobes to remember it): sendto() with the address, or a connected socket. */
	if (udp6_msg_peer(sk, msg, false, &call.daddr, &call.dport)) {
		call.corked = udp_corked(sk);
		call.gso = udp_msg_gso(msg); /* only for a mapped peer */
		kcall_save(KCALL_UDP_SEND, &call);
	} else {
		kcall_clear(KCALL_UDP_SEND);
	}
	return 0;
}

SEC("kretprobe/udpv6_sendmsg")
int BPF_KRETPROBE(kp_udpv6_sendmsg_ret, int ret)
{
	FLOOR_RETURN(0);
	struct kcall call;
	__u64 datagrams;
	struct sock *sk;
	__u8 proto;

	if (!kcall_take(KCALL_UDP_SEND, &call))
		return 0;
	sk = (struct sock *)call.sk;
	if (!sk_is_udp6(sk, &proto))
		return 0;
	datagrams = call.corked || ret < 0 ? 0 : udp_send_segments_as(sk, ret, false, call.gso);
	handle_udp_datagram(sk, DSTRACE_EV_SEND, proto, call.daddr, call.dport, ret, datagrams,
			    NULL, false);
	return 0;
}

/* The caller's MSG_ flags of udpv6_recvmsg(): (sk, msg, len, flags, addr_len) since 5.19,
 * (sk, msg, len, noblock, flags, addr_len) before. */
static __always_inline int recvmsg_flags(struct pt_regs *ctx, int flags)
{
	return recvmsg_noblock ? (int)PT_REGS_PARM5(ctx) : flags;
}

SEC("kprobe/udpv6_recvmsg")
int BPF_KPROBE(kp_udpv6_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int flags)
{
	FLOOR_RETURN(0);
	struct kcall call = { .sk = (__u64)sk, .msg = (__u64)msg,
			      .flags = recvmsg_flags(ctx, flags) };
	__u8 proto;

	if (sk_is_udp6(sk, &proto))
		kcall_save(KCALL_UDP_RECV, &call);
	else
		kcall_clear(KCALL_UDP_RECV);
	return 0;
}

/* Where udpv6_recvmsg() is done with a datagram; its source, for a read without an address. */
SEC("kprobe/skb_consume_udp")
int BPF_KPROBE(kp_skb_consume_udp, struct sock *sk, struct sk_buff *skb, int len)
{
	FLOOR_RETURN(0);
	inflight_skb_consumed(sk, skb, len, false, false);
	return 0;
}

SEC("kretprobe/udpv6_recvmsg")
int BPF_KRETPROBE(kp_udpv6_recvmsg_ret, int ret)
{
	FLOOR_RETURN(0);
	struct kcall call;
	struct sock *sk;
	__u32 raddr = 0;
	__u16 rport = 0;
	__u8 proto, segs = 0;
	bool mapped;

	if (!kcall_take(KCALL_UDP_RECV, &call)) {
		inflight_udp_return(NULL, ret, false);
		return 0;
	}
	sk = (struct sock *)call.sk;
	inflight_udp_return(sk, ret, false);
	if (!sk_is_udp6(sk, &proto))
		return 0;
	/* the source skb_consume_udp() handed over is taken whatever the read was */
	mapped = udp6_recv_peer(sk, (struct msghdr *)call.msg, &raddr, &rport, &segs, false);
	handle_udp_recv(sk, proto, call.flags, ret, mapped, raddr, rport, segs, false);
	return 0;
}

/* A stream socket's bytes at the AF_INET6 socket layer (fentry.bpf.h says why): kept for the
 * return of a TCP or MPTCP socket's call only. */
static __always_inline void kcall_stream_entry(enum kcall_fn fn, struct socket *sock, int flags)
{
	struct kcall call = { .sk = (__u64)BPF_CORE_READ(sock, sk), .flags = flags };
	__u8 proto;

	if (call.sk && sk_is_inet6((struct sock *)call.sk, &proto) &&
	    proto == DSTRACE_PROTO_TCP) {
		kcall_save(fn, &call);
		return;
	}
	kcall_clear(fn);
}

SEC("kprobe/inet6_sendmsg")
int BPF_KPROBE(kp_inet6_sendmsg, struct socket *sock)
{
	FLOOR_RETURN(0);
	kcall_stream_entry(KCALL_TCP_SEND, sock, 0);
	return 0;
}

SEC("kretprobe/inet6_sendmsg")
int BPF_KRETPROBE(kp_inet6_sendmsg_ret, int ret)
{
	FLOOR_RETURN(0);
	struct kcall call;

	if (kcall_take(KCALL_TCP_SEND, &call))
		handle_tcp_bytes((struct sock *)call.sk, DSTRACE_EV_SEND, ret, false);
	return 0;
}

/* sendfile() and splice() to a socket, and a kernel service's kernel_sendpage(), before
 * Linux 6.5 (only on the kernels that have inet_sendpage(): user/backend.c), at the inet
 * socket's ops->sendpage (fentry.bpf.h says why). Kept for the return of a TCP or MPTCP
 * socket's call only. */
SEC("kprobe/inet_sendpage")
int BPF_KPROBE(kp_inet_sendpage, struct socket *sock)
{
	FLOOR_RETURN(0);
	kcall_stream_entry(KCALL_SENDPAGE, sock, 0);
	return 0;
}

SEC("kretprobe/inet_sendpage")
int BPF_KRETPROBE(kp_inet_sendpage_ret, long ret)
{
	FLOOR_RETURN(0);
	struct kcall call;

	if (kcall_take(KCALL_SENDPAGE, &call))
		handle_sendpage((struct sock *)call.sk, ret);
	return 0;
}

/* splice() and sendfile() from a socket into a pipe, on every kernel, at the socket file's
 * sock_splice_read (fentry.bpf.h says why). Kept for the return of a TCP or MPTCP socket's
 * call only: an AF_UNIX relay's calls take no room. */
SEC("kprobe/sock_splice_read")
int BPF_KPROBE(kp_sock_splice_read, struct file *file)
{
	FLOOR_RETURN(0);
	kcall_stream_entry(KCALL_SPLICE_READ, BPF_CORE_READ(file, private_data), 0);
	return 0;
}

SEC("kretprobe/sock_splice_read")
int BPF_KRETPROBE(kp_sock_splice_read_ret, long ret)
{
	FLOOR_RETURN(0);
	struct kcall call;

	if (kcall_take(KCALL_SPLICE_READ, &call))
		handle_splice_read((struct sock *)call.sk, ret, false);
	return 0;
}

/* inet6_recvmsg(sock, msg, size, flags) on every kernel */
SEC("kprobe/inet6_recvmsg")
int BPF_KPROBE(kp_inet6_recvmsg, struct socket *sock, struct msghdr *msg, size_t size, int flags)
{
	FLOOR_RETURN(0);
	kcall_stream_entry(KCALL_TCP_RECV, sock, flags);
	return 0;
}

SEC("kretprobe/inet6_recvmsg")
int BPF_KRETPROBE(kp_inet6_recvmsg_ret, int ret)
{
	FLOOR_RETURN(0);
	struct kcall call;

	if (kcall_take(KCALL_TCP_RECV, &call)) {
		inflight_forget();
		handle_tcp_recv((struct sock *)call.sk, call.flags, ret, false);
	}
	return 0;
}

#endif /* DSTRACE_KPROBE_BPF_H */
