/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Calls in flight when dstrace started (fentry and kprobe backends). Their hooks follow a
 * call from its entry: a thread already asleep in accept(), recvfrom(), recvmsg(),
 * recvmmsg(), read() or readv() when they were attached returns without them, and its
 * first connection, datagram or bytes would go unseen (the tracepoint backend reads those
 * at the syscall's exit, which sees such calls too). User space lists those threads once,
 * right after attaching (user/inflight.c: /proc/PID/task/TID/syscall, a socket's
 * descriptor; a 32-bit program's by i386's numbers), in inflight_calls; this program,
 * attached to every syscall's exit only while the list is not empty, takes their call's
 * result as the tracepoint backend would: only that call's (its number and
 * first argument, from the registers the syscall saved). A call that the backend's own hook
 * follows (one that began after it was attached) takes its thread off the list first
 * (inflight_forget), so nothing is counted twice; so does the thread's exit
 * (lifecycle.bpf.h).
 */
#ifndef DSTRACE_INFLIGHT_BPF_H
#define DSTRACE_INFLIGHT_BPF_H

#include "paths.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DSTRACE_INFLIGHT_MAX);
	__type(key, __u32); /* tid */
	__type(value, struct dstrace_inflight_call);
} inflight_calls SEC(".maps");

/* Set by user space while inflight_calls is being filled or has entries. */
volatile __u32 inflight_active = 0;

/* This thread's call is followed by the backend's own hook: it is not in flight any more. */
static __always_inline void inflight_forget(void)
{
	__u32 tid;

	if (!inflight_active)
		return;
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&inflight_calls, &tid);
}

/*
 * skb_consume_udp(sk, skb, len) (fentry and kprobe backends): udpv6_recvmsg() is done with a
 * datagram, and hands its source to the call's return (udp6_skb_consumed). A recvmmsg()
 * asleep at start takes its first datagram in a udpv6_recvmsg() call that began before the
 * hooks, whose return they do not see, the others in calls they follow: by the syscall's
 * exit only the last datagram's source would be left. So the first datagram a listed
 * recvmmsg() thread consumes on the listed socket is kept in its listing (len: the bytes
 * udpv6_recvmsg() returns). If the call that took it is followed after all (begun after the
 * hooks, the thread listed meanwhile), its return takes the thread off the list and counts
 * it (inflight_udp_return); if not, the thread's next datagram, or the next followed call's
 * return without one, or else the syscall's exit (inflight_exit), counts the one kept.
 * btf: sk is a BTF pointer.
 */
static __always_inline void inflight_kept_count(struct sock *sk, __u8 proto,
						const struct dstrace_inflight_call *c, bool btf)
{
	handle_udp_recv(sk, proto, c->flags, c->first_len, c->first_kept == 2, c->first_addr,
			c->first_port, c->first_segs, btf);
}

/* Is c a recvmmsg() listed on sk, a UDP socket (its protocol into *proto)? */
static __always_inline bool inflight_mmsg_on(const struct dstrace_inflight_call *c,
					     struct sock *sk, __u8 *proto)
{
	return c->kind == DSTRACE_INFLIGHT_RECVMMSG && sk && sk_is_udp6(sk, proto) &&
	       sk_from_fd_as(c->fd, false) == sk;
}

/*
 * udpv6_recvmsg() on sk returned ret, in a call the backend's hook follows: the thread's
 * call is not in flight any more (inflight_forget). A recvmmsg() that kept a datagram: one
 * this call took (ret >= 0: the call was followed after all), which the hook counts; or
 * one an earlier call took unseen, and this call took none (ret < 0: a MSG_WAITFORONE
 * recvmmsg() finding no more), counted here.
 */
static __always_inline void inflight_udp_return(struct sock *sk, int ret, bool btf)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dstrace_inflight_call call, *c;
	__u8 proto;

	c = inflight_active ? bpf_map_lookup_elem(&inflight_calls, &tid) : NULL;
	if (!c)
		return;
	call = *c;
	if (bpf_map_delete_elem(&inflight_calls, &tid))
		return;
	if (call.first_kept && ret < 0 && inflight_mmsg_on(&call, sk, &proto))
		inflight_kept_count(sk, proto, &call, btf);
}

static __always_inline void inflight_skb_consumed(struct sock *sk, struct sk_buff *skb, int len,
						  bool btf, bool slots)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), addr = 0;
	struct dstrace_inflight_call *c, call;
	__u16 port = 0;
	__u8 proto, segs = 0;
	bool v4;

	c = inflight_active ? bpf_map_lookup_elem(&inflight_calls, &tid) : NULL;
	if (c && inflight_mmsg_on(c, sk, &proto)) {
		if (c->first_kept) {
			/* the second: the first's call returned unseen */
			call = *c;
			if (!bpf_map_delete_elem(&inflight_calls, &tid))
				inflight_kept_count(sk, proto, &call, btf);
		} else {
			v4 = udp_skb_v4_source(skb, &addr, &port, &segs);
			c->first_len = len;
			c->first_addr = addr;
			c->first_port = port;
			c->first_segs = segs;
			c->first_kept = v4 ? 2 : 1;
		}
	}
	udp6_skb_consumed(sk, skb, slots);
}

/* Is the call saved in regs the one listed (its number and descriptor; a 32-bit program's
 * read as its own calls pass them)? */
static __always_inline bool inflight_is_call(struct pt_regs *regs,
					     const struct dstrace_inflight_call *c)
{
	__u32 fd;

	if (syscall_nr(regs) != c->nr)
		return false;
	if (!c->ia32)
		return (int)PT_REGS_PARM1_CORE_SYSCALL(regs) == c->fd;
	return ia32_first_arg(regs, c->sockcall, &fd) && (int)fd == c->fd;
}

/* The call saved in regs returned ret. slots: the handoff of a datagram's source may use
 * compare-and-exchange (not on the kprobe backend: core.bpf.h, dgram_handoff_set). */
static __always_inline void inflight_exit(struct pt_regs *regs, long ret, bool slots)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct dstrace_inflight_call call, *c = bpf_map_lookup_elem(&inflight_calls, &tid);
	__u32 raddr = 0;
	__u16 rport = 0;
	__u8 proto, segs = 0;
	struct sock *sk;
	bool mapped;

	if (!c)
		return;
	call = *c;
	bpf_map_delete_elem(&inflight_calls, &tid);
	/* another call: the one listed returned before it was (user/inflight.c checks again) */
	if (!inflight_is_call(regs, &call))
		return;
	/* a recvmmsg(): the datagram it kept, if its call took one (inflight_skb_consumed) */
	if (call.kind == DSTRACE_INFLIGHT_RECVMMSG) {
		sk = call.first_kept ? sk_from_fd_as(call.fd, false) : NULL;
		if (sk && sk_is_udp6(sk, &proto))
			inflight_kept_count(sk, proto, &call, false);
		return;
	}
	if (ret < 0)
		return;
	if (call.kind == DSTRACE_INFLIGHT_ACCEPT) {
		sk = sk_from_fd_as((int)ret, false);
		/* reported by the scan of existing sockets already (it may have found the new
		 * descriptor before this exit: installed first) */
		if (sk && !existing_done) {
			struct existing_key ek = { .ino = sk_ino(sk), .tgid = id >> 32 };

			if (bpf_map_lookup_elem(&existing_seen, &ek))
				return;
		}
		handle_accept_done(sk, false, false);
		return;
	}
	sk = sk_from_fd_as(call.fd, false);
	if (!sk)
		return;
	if (!sk_is_udp6(sk, &proto)) {
		handle_tcp_recv(sk, call.flags, (int)ret, false);
		return;
	}
	/* its source, as skb_consume_udp() (attached: a call of its own) handed it over */
	mapped = udp6_recv_peer(sk, NULL, &raddr, &rport, &segs, slots);
	handle_udp_recv(sk, proto, call.flags, (int)ret, mapped, raddr, rport, segs, false);
}

SEC("raw_tracepoint/sys_exit")
int ifl_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	FLOOR_RETURN(0);
	inflight_exit((struct pt_regs *)ctx->args[0], (long)ctx->args[1], true);
	return 0;
}

/* The kprobe backend's (no compare-and-exchange: it also runs on kernels before 5.12). */
SEC("raw_tracepoint/sys_exit")
int ifl_sys_exit_hash(struct bpf_raw_tracepoint_args *ctx)
{
	FLOOR_RETURN(0);
	inflight_exit((struct pt_regs *)ctx->args[0], (long)ctx->args[1], false);
	return 0;
}

#endif /* DSTRACE_INFLIGHT_BPF_H */
