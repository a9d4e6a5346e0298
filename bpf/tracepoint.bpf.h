/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Backend "tracepoint", for locked-down kernels without kprobes or fentry (Linux 6.3+:
 * it needs the sock:sock_{send,recv}_length tracepoints):
 *   connect  syscalls:sys_{enter,exit}_connect, socket found from the fd
 *   accept   syscalls:sys_exit_accept{,4}, socket found from the returned fd
 *   send     cgroup/sendmsg4 (mapped peer, AF_INET6 socket) + tp_btf/sock_send_length
 *   recv     cgroup/recvmsg6 (mapped source) + tp_btf/sock_recv_length
 *   TCP bytes tp_btf/sock_{send,recv}_length on connections with a mapped peer
 */
#ifndef DSTRACE_TRACEPOINT_BPF_H
#define DSTRACE_TRACEPOINT_BPF_H

#include "paths.bpf.h"

#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* ---- helpers of the tracepoint backend ---- */

/* The socket behind a file descriptor of the current task, or NULL. */
static __always_inline struct sock *sk_from_fd(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;
	struct socket *sock;
	umode_t mode;

	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

/* ---- path 1: connect ---- */

SEC("tracepoint/syscalls/sys_enter_connect")
int tp_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct connect_args args = { .fd = (int)ctx->args[0] };
	int verdict;

	verdict = sockaddr_classify((const void *)ctx->args[1], (__u32)ctx->args[2], true,
				    &args.daddr, &args.dport);
	if (verdict == SA_OTHER)
		return 0;
	if (verdict == SA_UNREADABLE) {
		/* Paged out: the kernel copies it in during the call; read it at exit. */
		args.unread = 1;
		args.uaddr = ctx->args[1];
		args.addrlen = (__u32)ctx->args[2];
	}
	if (bpf_map_update_elem(&connect_stash, &tid, &args, BPF_ANY))
		counter_add(DSTRACE_CNT_STASH_FULL, 1); /* this connect will not be seen */
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int tp_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct connect_args *args = bpf_map_lookup_elem(&connect_stash, &tid);

	if (!args)
		return 0;
	if (!args->unread || sockaddr_v4((const void *)args->uaddr, args->addrlen, true,
					 &args->daddr, &args->dport))
		handle_connect_done(sk_from_fd(args->fd), args->daddr, args->dport, (int)ctx->ret);
	bpf_map_delete_elem(&connect_stash, &tid);
	return 0;
}

/* ---- path 2: accept ---- */

static __always_inline int accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret >= 0)
		handle_accept_done(sk_from_fd((int)ctx->ret));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx);
}

/* ---- path 3: UDP send ---- */

/* udpv6_sendmsg hands a mapped destination to udp_sendmsg, which runs the sendmsg4 hook
 * with the AF_INET6 socket: remember the peer for sock_send_length on the same thread. */
SEC("cgroup/sendmsg4")
int cg_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct dgram_scratch *s;

	if (!sk || sk->family != AF_INET6 || sk->protocol != IPPROTO_UDP)
		return 1;
	s = bpf_sk_storage_get(&dgram_scratch, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return 1;
	s->send.tid = (__u32)bpf_get_current_pid_tgid();
	s->send.addr = ctx->user_ip4;
	s->send.port = bpf_ntohs((__u16)ctx->user_port);
	s->send.mapped = 1;
	s->send.valid = 1;
	return 1;
}

/* A native IPv6 destination given explicitly on a socket connected to a mapped peer: the
 * datagram is IPv6, so sock_send_length must not fall back to the connected peer. */
SEC("cgroup/sendmsg6")
int cg_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct dgram_scratch *s;

	if (!sk || sk->family != AF_INET6 || sk->protocol != IPPROTO_UDP ||
	    sk->state != TCP_ESTABLISHED)
		return 1;
	s = bpf_sk_storage_get(&dgram_scratch, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return 1;
	s->send.tid = (__u32)bpf_get_current_pid_tgid();
	s->send.mapped = 0;
	s->send.valid = 1;
	return 1;
}

#if defined(__TARGET_ARCH_x86)
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_sendmmsg 307
#define SENDMMSG_SCAN 16

/* A send on a v6-only socket to a mapped address fails in udpv6_sendmsg before any cgroup
 * hook runs; the destination is still in the arguments of the syscall in progress. */
static __always_inline bool syscall_send_dest(__u32 *addr, __u16 *port)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	long nr = BPF_CORE_READ(regs, orig_ax);
	struct user_msghdr msg;

	if (nr == NR_sendto)
		return sockaddr_v4((void *)BPF_CORE_READ(regs, r8), (__u32)BPF_CORE_READ(regs, r9),
				   true, addr, port);
	if (nr == NR_sendmsg) {
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)BPF_CORE_READ(regs, si)))
			return false;
		return sockaddr_v4(msg.msg_name, msg.msg_namelen, true, addr, port);
	}
	if (nr == NR_sendmmsg) {
		struct mmsghdr *vec = (struct mmsghdr *)BPF_CORE_READ(regs, si);
		__u32 vlen = (__u32)BPF_CORE_READ(regs, dx);

		/* The first mapped destination in the vector is the one that failed. */
		for (int i = 0; i < SENDMMSG_SCAN; i++) {
			if (i >= vlen)
				break;
			if (bpf_probe_read_user(&msg, sizeof(msg), &vec[i].msg_hdr))
				return false;
			if (sockaddr_v4(msg.msg_name, msg.msg_namelen, true, addr, port))
				return true;
		}
	}
	return false;
}
#else
static __always_inline bool syscall_send_dest(__u32 *addr, __u16 *port)
{
	return false;
}
#endif

SEC("tp_btf/sock_send_length")
int BPF_PROG(tp_send_length, struct sock *sk, int ret, int flags)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dgram_scratch *s;
	__u16 protocol, rport = 0;
	__u32 raddr = 0;
	bool have_peer = false;

	if (!sk_is_inet6(sk, &protocol))
		return 0;
	if (protocol == IPPROTO_TCP) {
		handle_tcp_bytes(sk, DSTRACE_EV_SEND, ret);
		return 0;
	}
	/* The peer: from the sendmsg4 hook (an address was given), the connected peer, or for
	 * a v6-only failure the syscall's arguments; a corked continuation is resolved by
	 * udp_send_done. */
	s = bpf_sk_storage_get(&dgram_scratch, sk, 0, 0);
	if (s && s->send.valid && s->send.tid == tid) {
		s->send.valid = 0;
		have_peer = s->send.mapped;
		raddr = s->send.addr;
		rport = s->send.port;
	} else if (sk->__sk_common.skc_state == TCP_ESTABLISHED) {
		have_peer = sk_mapped_peer(sk, &raddr, &rport);
	} else if (ret < 0 && sk_is_v6only(sk)) {
		have_peer = syscall_send_dest(&raddr, &rport);
	}
	udp_send_done(sk, s, have_peer, raddr, rport, ret);
	return 0;
}

/* ---- path 4: UDP recv ---- */

/* udpv6_recvmsg fills the source of an IPv4 datagram as ::ffff:a.b.c.d, then runs this hook
 * (only when the caller asked for the source address). */
SEC("cgroup/recvmsg6")
int cg_recvmsg6(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct dgram_scratch *s;
	__u32 a0, a1, a2;

	if (!sk || sk->protocol != IPPROTO_UDP)
		return 1;
	a0 = ctx->user_ip6[0];
	a1 = ctx->user_ip6[1];
	a2 = ctx->user_ip6[2];
	if (a0 || a1 || a2 != bpf_htonl(0xffff))
		return 1;
	s = bpf_sk_storage_get(&dgram_scratch, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return 1;
	s->recv.tid = (__u32)bpf_get_current_pid_tgid();
	s->recv.addr = ctx->user_ip6[3];
	s->recv.port = bpf_ntohs((__u16)ctx->user_port);
	s->recv.mapped = 1;
	s->recv.valid = 1;
	return 1;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tp_recv_length, struct sock *sk, int ret, int flags)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dgram_scratch *s;
	__u16 protocol, rport;
	__u32 raddr;

	if (!sk_is_inet6(sk, &protocol))
		return 0;
	if (protocol == IPPROTO_TCP) {
		if (!(flags & MSG_PEEK))
			handle_tcp_bytes(sk, DSTRACE_EV_RECV, ret);
		return 0;
	}
	s = bpf_sk_storage_get(&dgram_scratch, sk, 0, 0);
	if (s && s->recv.valid && s->recv.tid == tid) {
		s->recv.valid = 0;
		raddr = s->recv.addr;
		rport = s->recv.port;
	} else if (sk->__sk_common.skc_state == TCP_ESTABLISHED) {
		if (!sk_mapped_peer(sk, &raddr, &rport))
			return 0;
	} else {
		return 0;
	}
	/* A peek leaves the datagram queued: it is counted when it is read. */
	if (ret < 0 || (flags & MSG_PEEK))
		return 0;
	handle_udp_datagram(sk, DSTRACE_EV_RECV, raddr, rport, ret, false);
	return 0;
}

#endif /* DSTRACE_TRACEPOINT_BPF_H */
