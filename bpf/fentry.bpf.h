/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Backend "fentry": fexit programs on the kernel's own mapping functions (BTF trampolines).
 * fexit sees the arguments and the result together, so each path is one program.
 */
#ifndef DSTRACE_FENTRY_BPF_H
#define DSTRACE_FENTRY_BPF_H

#include "inflight.bpf.h"

/* A connect's error as the kernel reports it, before the program is woken (connect.bpf.h,
 * handle_tcp_error_report): the function every TCP socket's sk_error_report is. */
SEC("fentry/sock_def_error_report")
int BPF_PROG(fx_sock_def_error_report, struct sock *sk)
{
	FLOOR_RETURN(0);
	handle_tcp_error_report(sk, true, true);
	return 0;
}

/* The connect itself is followed by the socket layer (socket.bpf.h); these give its
 * immediate result: an error before any SYN, or the result of a UDP connect. */
SEC("fexit/tcp_v6_connect")
int BPF_PROG(fx_tcp_v6_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	FLOOR_RETURN(0);
	handle_connect_call(sk, ret, true);
	return 0;
}

/* UDP connect(): ip6_datagram_connect() and, since 6.13, udpv6_connect() both call it. */
SEC("fexit/__ip6_datagram_connect")
int BPF_PROG(fx_ip6_datagram_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len,
	     int ret)
{
	FLOOR_RETURN(0);
	handle_connect_call(sk, ret, true);
	return 0;
}

/* The accepted child; its arguments changed in 6.10 (struct proto_accept_arg), so only the
 * first one and the return value, which bpf_get_func_ret finds for either, are used. */
SEC("fexit/inet_csk_accept")
int BPF_PROG(fx_inet_csk_accept, struct sock *sk)
{
	FLOOR_RETURN(0);
	__u64 newsk = 0;

	inflight_forget();
	if (!bpf_get_func_ret(ctx, &newsk) && newsk)
		handle_accept_done((struct sock *)newsk, false, true);
	return 0;
}

/* No datagram pending when a send begins: a corked one remembered was flushed meanwhile
 * (setsockopt(UDP_CORK, 0)), so this send starts a new one. */
SEC("fentry/udpv6_sendmsg")
int BPF_PROG(fx_udpv6_sendmsg_entry, struct sock *sk)
{
	FLOOR_RETURN(0);
	struct dgram_scratch *s;
	__u8 proto;

	if (!corks_seen || !sk_is_udp6(sk, &proto) || udp_corked(sk))
		return 0;
	s = bpf_sk_storage_get(&dgram_scratch, sk, 0, 0);
	if (s)
		s->cork_valid = 0;
	return 0;
}

SEC("fexit/udpv6_sendmsg")
int BPF_PROG(fx_udpv6_sendmsg, struct sock *sk, struct msghdr *msg, size_t len, int ret)
{
	FLOOR_RETURN(0);
	__u32 raddr = 0;
	__u16 rport = 0;
	bool mapped;
	__u8 proto;

	if (!sk_is_udp6(sk, &proto))
		return 0;
	mapped = udp6_msg_peer(sk, msg, false, &raddr, &rport);
	/* the call's own segment size only matters to a mapped datagram sent */
	udp_send_done(sk, proto, mapped, raddr, rport, ret, false,
		      mapped && ret > 0 ? udp_msg_gso(msg) : -1, 0);
	return 0;
}

/* Where udpv6_recvmsg() is done with a datagram; its source, for a read without an address. */
SEC("fentry/skb_consume_udp")
int BPF_PROG(fx_skb_consume_udp, struct sock *sk, struct sk_buff *skb, int len)
{
	FLOOR_RETURN(0);
	inflight_skb_consumed(sk, skb, len, true, true);
	return 0;
}

SEC("fexit/udpv6_recvmsg")
int BPF_PROG(fx_udpv6_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int flags,
	     int *addr_len, int ret)
{
	FLOOR_RETURN(0);
	__u32 raddr = 0;
	__u16 rport = 0;
	__u8 proto, segs = 0;
	bool mapped;

	inflight_udp_return(sk, ret, true);
	if (!sk_is_udp6(sk, &proto))
		return 0;
	/* the source skb_consume_udp() handed over is taken whatever the read was */
	mapped = udp6_recv_peer(sk, msg, &raddr, &rport, &segs, true);
	handle_udp_recv(sk, proto, flags, ret, mapped, raddr, rport, segs, true);
	return 0;
}

/* A stream socket's bytes are taken at the AF_INET6 socket layer, as the tracepoint backend
 * takes them at sock_sendmsg()'s: TCP's, and those that never pass tcp_sendmsg() or
 * tcp_recvmsg(): MPTCP's (its subflows send and receive for it) and kernel TLS's
 * (tls_sw_sendmsg(), tls_sw_recvmsg(): the bytes the program wrote and read). A UDP socket
 * leaves at the protocol test (udpv6_sendmsg() and udpv6_recvmsg() have hooks of their own). */
SEC("fexit/inet6_sendmsg")
int BPF_PROG(fx_inet6_sendmsg, struct socket *sock, struct msghdr *msg, size_t size, int ret)
{
	FLOOR_RETURN(0);
	if (sock && sock->sk)
		handle_tcp_bytes(sock->sk, DSTRACE_EV_SEND, ret, true);
	return 0;
}

/* Before Linux 6.5 sendfile() and splice() to a socket send pages, through the socket's
 * sendpage, not sendmsg() (from 6.5 they go through inet6_sendmsg()): only on the kernels
 * that have it (user/backend.c). At inet_sendpage(), the inet socket's ops->sendpage, which
 * a program's calls reach through the socket file's sock_sendpage() and a kernel service's
 * (nfsd's replies, an iSCSI or NVMe/TCP target's data) through kernel_sendpage(). Neither
 * of those: some kernels inline the one into the other (Debian 11's 5.10), and the second
 * is not a program's only. handle_sendpage counts them where they pass no sendmsg. */
SEC("fexit/inet_sendpage")
int BPF_PROG(fx_inet_sendpage, struct socket *sock, struct page *page, int offset, size_t size,
	     int flags, ssize_t ret)
{
	FLOOR_RETURN(0);
	if (ret > 0 && sock)
		handle_sendpage(BPF_CORE_READ(sock, sk), ret);
	return 0;
}

/* splice() and sendfile() from a socket into a pipe, at the socket file's splice_read (every
 * family's: TCP's, kernel TLS's, MPTCP's). handle_splice_read counts them where they pass no
 * recvmsg. */
SEC("fexit/sock_splice_read")
int BPF_PROG(fx_sock_splice_read, struct file *file, loff_t *ppos, struct pipe_inode_info *pipe,
	     size_t len, unsigned int flags, ssize_t ret)
{
	FLOOR_RETURN(0);
	if (ret > 0)
		handle_splice_read(sk_from_file(file), ret, false);
	return 0;
}

SEC("fexit/inet6_recvmsg")
int BPF_PROG(fx_inet6_recvmsg, struct socket *sock, struct msghdr *msg, size_t size, int flags,
	     int ret)
{
	FLOOR_RETURN(0);
	struct sock *sk = sock ? sock->sk : NULL;
	__u8 proto;

	if (!sk || !sk_is_inet6_as(sk, &proto, true) || proto != DSTRACE_PROTO_TCP)
		return 0;
	inflight_forget();
	handle_tcp_recv(sk, flags, ret, true);
	return 0;
}

#endif /* DSTRACE_FENTRY_BPF_H */
