/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The socket layer every backend shares (user/backend.c's socket list): hooks that follow the
 * socket, not the syscall, so a connect is seen once however it is driven (syscalls,
 * io_uring, TCP Fast Open, kernel sockets, MPTCP) and however many calls touch it. They work
 * on every kernel dstrace supports, locked-down ones included (cgroup hooks on the cgroup v2
 * root and tp_btf). The backends add what this layer cannot see: the immediate result of a
 * call.
 */
#ifndef DSTRACE_SOCKET_BPF_H
#define DSTRACE_SOCKET_BPF_H

#include "paths.bpf.h"

/*
 * Each program that keeps or takes a pending connect has two builds (slots: a constant,
 * maps.bpf.h, conn_slots): NAME keeps it in an array slot with compare-and-exchange (Linux
 * 5.12+), NAME_hash in a hash only; the kprobe backend, which also runs on older kernels,
 * loads the _hash ones, the other backends the others (user/backend.c).
 */

/* connect() of an AF_INET6 socket to ::ffff:a.b.c.d, before the kernel translates it. */
static __always_inline int connect6(struct bpf_sock_addr *ctx, bool slots)
{
	if (ctx->user_ip6[0] || ctx->user_ip6[1] || ctx->user_ip6[2] != bpf_htonl(0xffff)) {
		/* native IPv6: followed only for a thread that has just resolved a name with A
		 * and AAAA records (the starred cell: its failure may precede a fallback) */
		if (ctx->protocol == IPPROTO_TCP)
			native_try_start(ctx);
		return 1;
	}
	handle_connect_start((__u64)ctx->sk, bpf_get_socket_cookie(ctx), ctx->protocol,
			     ctx->user_ip6[3], bpf_ntohs((__u16)ctx->user_port), slots);
	return 1;
}

SEC("cgroup/connect6")
int sk_connect6(struct bpf_sock_addr *ctx)
{
	FLOOR_RETURN(1);
	return connect6(ctx, true);
}

SEC("cgroup/connect6")
int sk_connect6_hash(struct bpf_sock_addr *ctx)
{
	FLOOR_RETURN(1);
	return connect6(ctx, false);
}

/* A UDP AF_INET6 socket connected with a plain sockaddr_in: the IPv4 hook, with the
 * AF_INET6 socket. */
static __always_inline int connect4(struct bpf_sock_addr *ctx, bool slots)
{
	struct bpf_sock *sk = ctx->sk;

	if (!sk || sk->family != AF_INET6)
		return 1;
	handle_connect_start((__u64)sk, bpf_get_socket_cookie(ctx), ctx->protocol, ctx->user_ip4,
			     bpf_ntohs((__u16)ctx->user_port), slots);
	return 1;
}

SEC("cgroup/connect4")
int sk_connect4(struct bpf_sock_addr *ctx)
{
	FLOOR_RETURN(1);
	return connect4(ctx, true);
}

SEC("cgroup/connect4")
int sk_connect4_hash(struct bpf_sock_addr *ctx)
{
	FLOOR_RETURN(1);
	return connect4(ctx, false);
}

/* Tests: ignore this SYN_SENT exit of a connect to the mapped address of
 * DSTRACE_FAULT_SKIP_STATE, while a token is left (maps.bpf.h, fault_skip_addr)? */
static __always_inline bool fault_skip(struct sock *sk)
{
	__u32 raddr;
	__u16 rport;
	__u8 token;

	return fault_skip_addr && sk_mapped_peer_as(sk, &raddr, &rport, true) &&
	       raddr == fault_skip_addr && !bpf_map_pop_elem(&fault_tokens, &token);
}

/* The outcome of a TCP connect: established, refused, timed out, unreachable, abandoned. */
static __always_inline void sk_state_change(struct sock *sk, int oldstate, int newstate,
					    bool slots)
{
	/* most changes leave at the first test, without touching the socket */
	if (oldstate == TCP_SYN_SENT && sk->__sk_common.skc_family == AF_INET6 &&
	    !fault_skip(sk))
		handle_tcp_state(sk, oldstate, newstate, slots);
	/* out of SYN_RECV: a simultaneous open (connect.bpf.h, handle_tcp_state) has a struct
	 * socket; a passive open's child (every accepted connection) has none yet, but for a
	 * TCP Fast Open child accepted early and an MPTCP join subflow, which have no pending
	 * connect (handled, nothing found) */
	else if (oldstate == TCP_SYN_RECV && sk->__sk_common.skc_family == AF_INET6 &&
		 sk->sk_socket)
		handle_tcp_state(sk, oldstate, newstate, slots);
	/* the tracepoint backend (6.3+: the task's BTF, a load): the SYN goes out (in the
	 * connecting thread): the connect(2) call's slot is not needed any more, the state
	 * change decides (maps.bpf.h) */
	else if (connect_by_syscall && newstate == TCP_SYN_SENT &&
		 sk->__sk_common.skc_family == AF_INET6)
		connect_slot_release(bpf_get_current_task_btf()->pid,
				     sk->__sk_common.skc_cookie.counter);
}

/*
 * The kernel runs a program at most once at a time per CPU: a state change made by a softirq
 * (a SYN-ACK, a reset) that interrupts sk_state on its CPU is skipped for sk_state (its
 * recursion_misses). sk_state_nested, attached after it, handles exactly those: it acts when
 * sk_state is running on this CPU (depth) and has not run since its outermost run began
 * (runs == top_runs; where a kernel does run nested programs, sk_state ran and counted). What
 * is left, sk_state's misses minus the changes handled here (DSTRACE_CNT_STATE_NESTED), are
 * losses, counted in drops.missed. (The same of the _hash pair.)
 */
static __always_inline int state_outer(struct sock *sk, int oldstate, int newstate, bool slots)
{
	__u32 zero = 0;
	struct sk_state_cpu *c = bpf_map_lookup_elem(&sk_state_cpus, &zero);

	if (!c)
		return 0;
	c->runs++;
	if (c->depth++ == 0)
		c->top_runs = c->runs;
	sk_state_change(sk, oldstate, newstate, slots);
	c->depth--;
	return 0;
}

static __always_inline int state_nested(struct sock *sk, int oldstate, int newstate, bool slots)
{
	__u32 zero = 0;
	struct sk_state_cpu *c = bpf_map_lookup_elem(&sk_state_cpus, &zero);

	if (!c || !c->depth || c->runs != c->top_runs)
		return 0;
	counter_add(DSTRACE_CNT_STATE_NESTED, 1);
	sk_state_change(sk, oldstate, newstate, slots);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sk_state, struct sock *sk, int oldstate, int newstate)
{
	FLOOR_RETURN(0);
	return state_outer(sk, oldstate, newstate, true);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sk_state_nested, struct sock *sk, int oldstate, int newstate)
{
	FLOOR_RETURN(0);
	return state_nested(sk, oldstate, newstate, true);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sk_state_hash, struct sock *sk, int oldstate, int newstate)
{
	FLOOR_RETURN(0);
	return state_outer(sk, oldstate, newstate, false);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sk_state_nested_hash, struct sock *sk, int oldstate, int newstate)
{
	FLOOR_RETURN(0);
	return state_nested(sk, oldstate, newstate, false);
}

/*
 * The kernel does not always run a tracepoint's programs, nor always count it as a miss: on
 * this project's 6.18 a SYN timing out in a softirq that had interrupted a certain task (a
 * Rust runtime's worker thread) ran none of the BPF programs on inet_sock_set_state,
 * neither sk_state nor a perf tracepoint program, while ftrace's own event recorded the
 * change, and no program's recursion_misses moved. Such a connect stays pending with its
 * socket gone on. Its program's close shows it: a TCP socket to a mapped address released
 * out of SYN_SENT (the state is stored after the tracepoint's programs ran) whose connect
 * is still pending had its outcome missed; taken and counted (drops.missed). One still in
 * SYN_SENT, or in SYN_RECV (a simultaneous open), is left to its close's state change.
 * Kernel sockets have no release hook; a socket never closed is given up at
 * DSTRACE_CONNECT_WAIT_MAX (user/tables.c).
 */
static __always_inline int sock_release(struct bpf_sock *ctx, bool slots)
{
	struct conn_pending c;

	if (ctx->family != AF_INET6 || ctx->protocol != IPPROTO_TCP ||
	    ctx->state == BPF_TCP_SYN_SENT || ctx->state == BPF_TCP_SYN_RECV ||
	    ctx->dst_ip6[0] || ctx->dst_ip6[1] ||
	    ctx->dst_ip6[2] != bpf_htonl(0xffff))
		return 1;
	if (conn_pending_take(bpf_get_socket_cookie(ctx), &c, slots)) {
		counter_add(DSTRACE_CNT_CONN_UNSEEN, 1);
		conn_entry_done(conn_entry(&c, false));
	}
	return 1;
}

SEC("cgroup/sock_release")
int sk_release(struct bpf_sock *ctx)
{
	FLOOR_RETURN(1);
	return sock_release(ctx, true);
}

SEC("cgroup/sock_release")
int sk_release_hash(struct bpf_sock *ctx)
{
	FLOOR_RETURN(1);
	return sock_release(ctx, false);
}

/* ---- bind: an AF_INET6 socket bound to ::ffff:a.b.c.d ---- */

SEC("tracepoint/syscalls/sys_enter_bind")
int sk_enter_bind(struct trace_event_raw_sys_enter *ctx)
{
	FLOOR_RETURN(0);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct bind_args args = { .fd = (int)ctx->args[0] };

	if (!bind_sockaddr_mapped((const void *)ctx->args[1], (__u32)ctx->args[2], &args.addr,
				  &args.port))
		return 0;
	if (bpf_map_update_elem(&bind_stash, &tid, &args, BPF_ANY))
		counter_add(DSTRACE_CNT_CONN_FULL, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_bind")
int sk_exit_bind(struct trace_event_raw_sys_exit *ctx)
{
	FLOOR_RETURN(0);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct bind_args *p = bpf_map_lookup_elem(&bind_stash, &tid), args;

	if (!p)
		return 0;
	args = *p;
	bpf_map_delete_elem(&bind_stash, &tid);
	handle_bind_done(sk_from_fd(args.fd), args.addr, args.port, (int)ctx->ret);
	return 0;
}

/* ---- existing: mapped connections and UDP sockets that were there before dstrace ---- */

static __always_inline int existing(struct bpf_iter__task_file *ctx, bool slots)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct socket *sock;
	struct sock *sk;
	__u8 proto;

	if (!task || !file || (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
	if (!sk)
		return 0;
	if (existing_pass == 2 && sk_is_inet6(sk, &proto) && proto == DSTRACE_PROTO_TCP &&
	    BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_SYN_SENT)
		existing_connecting(task, sk, sk_netns(sk), slots);
	else
		handle_existing(task, sk, BPF_CORE_READ(file, f_inode, i_ino), existing_pass);
	return 0;
}

/* The pending connects it keeps, in slots or in the hash: one twin per socket layer. */
SEC("iter/task_file")
int sk_existing(struct bpf_iter__task_file *ctx)
{
	FLOOR_RETURN(0);
	return existing(ctx, true);
}

SEC("iter/task_file")
int sk_existing_hash(struct bpf_iter__task_file *ctx)
{
	FLOOR_RETURN(0);
	return existing(ctx, false);
}

#endif /* DSTRACE_SOCKET_BPF_H */
