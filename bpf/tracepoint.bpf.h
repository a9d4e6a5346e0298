/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Backend "tracepoint", for locked-down kernels without kprobes or fentry (Linux 6.3+:
 * it needs the sock:sock_{send,recv}_length tracepoints):
 *   connect  the socket layer's cgroup hook + syscalls:sys_exit_connect (immediate result;
 *            a TCP Fast Open send's: sock_send_length)
 *   accept   syscalls:sys_exit_accept{,4}, socket found from the returned fd
 *   send     cgroup/sendmsg4 (mapped peer, AF_INET6 socket) + tp_btf/sock_send_length
 *   recv     cgroup/recvmsg6 (mapped source) + tp_btf/sock_recv_length; for reads without
 *            an address, the source queued per socket by cgroup_skb/ingress
 *   TCP bytes tp_btf/sock_{send,recv}_length on connections with a mapped peer; reads by
 *            splice() and sendfile() into a pipe: syscalls:sys_exit_{splice,sendfile64},
 *            io_uring's completion (ia32: compat.bpf.h)
 */
#ifndef DSTRACE_TRACEPOINT_BPF_H
#define DSTRACE_TRACEPOINT_BPF_H

#include "paths.bpf.h"

/* ---- path 1: connect (begins and usually ends in the socket layer, socket.bpf.h) ---- */

/* A connect's error as the kernel reports it (connect.bpf.h, handle_tcp_error_report). The
 * tracepoint comes after the program is woken: on a kernel without tcp_done_with_error()
 * (mainline since mid-2024, and stable backports) a program reading SO_ERROR at once can
 * still clear the error first; the fentry and kprobe backends hook sock_def_error_report's
 * entry. Not attached on a kernel with it (PROG_UNLESS_FUNC, user/backend.c). */
SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(tp_sk_error_report, const struct sock *sk)
{
	FLOOR_RETURN(0);
	handle_tcp_error_report((struct sock *)sk, true, true);
	return 0;
}

/* A call that drove a mapped connect this thread started (the cgroup connect hook filled
 * its slot in connect_stash) returned ret: its immediate result, an error before any SYN (a
 * v6-only socket, no IPv4 route), a TCP socket closed in SYN_SENT inside the call (no local
 * port left), or any UDP result. only_sk: only the connect of that socket (a send). */
static __always_inline void connect_slot_decide(struct sock *only_sk, int ret)
{
	/* the task's BTF: a load where the kernel inlines the helper, else a call like
	 * bpf_get_current_pid_tgid() */
	__u32 tid = bpf_get_current_task_btf()->pid;
	struct connect_args *p = connect_slot_if_filled(tid), args;
	struct sock *sk;

	if (!p || p->tid != tid || (only_sk && p->sk != (__u64)only_sk))
		return;
	args = *p;
	/* claimed after the copy: a hook of another thread writing it meanwhile emptied it
	 * first, and the copy is dropped (counted by that hook) */
	if (__sync_val_compare_and_swap(&p->tid, tid, 0) != tid || args.tid != tid)
		return;
	/* a TCP connect the socket layer follows, not decided yet: nothing to read here */
	if (args.tcp && !connect_ret_final(true, ret))
		return;
	sk = (struct sock *)args.sk;
	/* An entry left by a connect that no syscall drove (io_uring) is not this call's: its
	 * socket may be gone (another cookie), or still connecting (a TCP immediate failure
	 * leaves the socket closed; one in flight is in SYN_SENT). */
	if (sk_cookie(sk) != args.cookie ||
	    (args.tcp && BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_CLOSE))
		return;
	handle_connect_call(sk, ret, true);
}

/* connect(2): the socket is the one the cgroup connect hook saw start a mapped connect on
 * this thread; no entry hook: a connect that is not mapped costs the read of a byte here
 * (connect_slot_filled: unless this thread's slot was ever filled). */
SEC("tracepoint/syscalls/sys_exit_connect")
int tp_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	FLOOR_RETURN(0);
	connect_slot_decide(NULL, (int)ctx->ret);
	return 0;
}

/* ---- path 2: accept ---- */

static __always_inline int accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret >= 0)
		handle_accept_done(sk_from_fd_as((int)ctx->ret, true), true, true);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	FLOOR_RETURN(0);
	return accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	FLOOR_RETURN(0);
	return accept_exit(ctx);
}

/* ---- TCP bytes read with splice() ---- */

/* splice(2) from a socket into a pipe (a relay: HAProxy's, Go's io.Copy between two
 * connections), and sendfile(2) from a socket into a pipe, pass no tracepoint of the socket
 * layer where the socket reads without a recvmsg (handle_splice_read): counted from the
 * call's result. */
/* The call's input descriptor is its argument i (0: PT_REGS_PARM1_CORE_SYSCALL). */
static __always_inline int splice_call_exit(long ret, int i)
{
	struct pt_regs *regs;

	if (ret <= 0)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	handle_splice_read(sk_from_fd_as((int)(i ? syscall_arg(regs, i) :
						      PT_REGS_PARM1_CORE_SYSCALL(regs)),
					 true),
			   ret, true);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_splice")
int tp_exit_splice(struct trace_event_raw_sys_exit *ctx)
{
	FLOOR_RETURN(0);
	return splice_call_exit(ctx->ret, 0);
}

/* sendfile(out_fd, in_fd, ...): a 64-bit program's (sendfile64 in the kernel's names) */
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int tp_exit_sendfile(struct trace_event_raw_sys_exit *ctx)
{
	FLOOR_RETURN(0);
	return splice_call_exit(ctx->ret, 1);
}

/* An io_uring accept request, from its submission to its last completion, by ring and
 * user_data: a multishot accept (IORING_ACCEPT_MULTISHOT) posts a completion per client
 * without the request (io_fill_cqe_aux: only the ring and user_data), which this tells from
 * the other requests' such completions; with the listening socket's port, where its
 * descriptor says (not a fixed file), which each accepted socket must have: a program that
 * gives several requests one user_data cannot pass another's completion for an accept. */
#define REQ_FIXED_FILE (1U << 0) /* REQ_F_FIXED_FILE: the SQE's IOSQE_FIXED_FILE, same bit */
#define FILE_INDEX_ALLOC (~0U)	 /* IORING_FILE_INDEX_ALLOC: the kernel picks the slot */
#define SPLICE_F_FD_IN_FIXED (1U << 31) /* a splice's input is a fixed file (io_uring.h) */

/* The ring's fixed files before Linux 6.13: an array of file pointers with flags in their
 * low bits (io_fixed_file); since, resource nodes holding the same (io_rsrc_node). */
struct io_fixed_file___pre613 {
	unsigned long file_ptr;
} __attribute__((preserve_access_index));

struct io_file_table___pre613 {
	struct io_fixed_file___pre613 *files;
} __attribute__((preserve_access_index));

struct io_ring_ctx___pre613 {
	struct io_file_table___pre613 file_table;
	unsigned int nr_user_files;
} __attribute__((preserve_access_index));

#define FFS_FLAGS 7UL /* FFS_NOWAIT, FFS_ISREG, FFS_SCM (6.0-6.6): file_ptr's low bits */

/* The socket in slot of ring's fixed files, or NULL: where an accept into a direct
 * descriptor put it, read when its completion is posted. Completions of one submission
 * batch are posted once all of it ran: two accepts of a batch asking for the same slot, or
 * a later request of the batch that empties it, leave the slot's last state (README,
 * Limits). */
static __always_inline struct sock *uring_fixed_sk(void *ring, __u32 slot)
{
	struct io_ring_ctx___pre613 *old = ring;
	struct io_ring_ctx *ctx = ring;
	unsigned long ptr = 0;

	if (bpf_core_field_exists(old->file_table.files)) {
		struct io_fixed_file___pre613 *files = BPF_CORE_READ(old, file_table.files);

		if (!files || slot >= BPF_CORE_READ(old, nr_user_files) ||
		    bpf_probe_read_kernel(&ptr, sizeof(ptr), &files[slot]))
			return NULL;
	} else {
		struct io_rsrc_node **nodes = BPF_CORE_READ(ctx, file_table.data.nodes);
		struct io_rsrc_node *node = NULL;

		if (!nodes || slot >= BPF_CORE_READ(ctx, file_table.data.nr) ||
		    bpf_probe_read_kernel(&node, sizeof(node), &nodes[slot]) || !node)
			return NULL;
		ptr = BPF_CORE_READ(node, file_ptr);
	}
	return sk_from_file_as((struct file *)(ptr & ~FFS_FLAGS), true);
}

/* A completed accept of ring: res its result, file_slot its request's (0: a descriptor, res;
 * else into the ring's fixed files: FILE_INDEX_ALLOC, res the slot the kernel picked, or the
 * slot asked + 1, res 0), port the listening socket's (0: not known). */
static __always_inline void uring_accepted(void *ring, int res, __u32 file_slot, __u16 port)
{
	struct sock *sk;

	if (res < 0)
		return;
	if (!file_slot)
		sk = sk_from_fd_as(res, true);
	else
		sk = uring_fixed_sk(ring, file_slot == FILE_INDEX_ALLOC ? (__u32)res : file_slot - 1);
	if (sk && (!port || sk->__sk_common.skc_num == port))
		handle_accept_done(sk, true, true);
}

SEC("tracepoint/io_uring/io_uring_submit_req")
int tp_io_uring_submit(struct trace_event_raw_io_uring_submit_req *ctx)
{
	FLOOR_RETURN(0);
	struct io_kiocb *req = ctx->req;
	struct uring_accept a = {};
	struct uring_req_key k;
	struct sock *lsk;

	if (ctx->opcode != bpf_core_enum_value(enum io_uring_op, IORING_OP_ACCEPT))
		return 0;
	if (!(BPF_CORE_READ(req, flags) & REQ_FIXED_FILE)) {
		lsk = sk_from_fd_as(BPF_CORE_READ(req, cqe.fd), true);
		if (lsk)
			a.port = lsk->__sk_common.skc_num;
	}
	/* prepared: a multishot accept into fixed files lets the kernel pick each slot */
	a.file_slot = BPF_CORE_READ((struct io_accept *)req, file_slot);
	k.ring = (__u64)ctx->ctx;
	k.user_data = ctx->user_data;
	bpf_map_update_elem(&uring_accepts, &k, &a, BPF_ANY);
	return 0;
}

#define CQE_F_BUFFER (1U << 0) /* IORING_CQE_F_BUFFER: a read's (never an accept's) */
#define CQE_F_MORE (1U << 1)   /* IORING_CQE_F_MORE: the request posts more completions */

/* io_uring's accept and connect never pass through the syscalls: their completions, posted
 * in the submitting process (the submitter or one of its io-wq threads, which share its
 * files), carry the result. An accept's is the new descriptor, or for one into the ring's
 * fixed files (a direct descriptor) the slot, read from the ring's table (uring_fixed_sk); a
 * multishot accept's are told by its request's ring and user_data (uring_accepts). A
 * connect's is the result of its last attempt on the request's socket (the immediate
 * failures the socket layer cannot see, and every UDP connect). A splice's, the bytes it
 * read from its input (handle_splice_read). */
SEC("tracepoint/io_uring/io_uring_complete")
int tp_io_uring_complete(struct trace_event_raw_io_uring_complete *ctx)
{
	FLOOR_RETURN(0);
	struct io_kiocb *req = ctx->req;
	int res = ctx->res;
	struct uring_req_key k;
	struct uring_accept *a;
	__u8 op;

	if (!req) {
		/* a completion without its request: a multishot accept's, one per client (into a
		 * fixed file, always a slot the kernel picked); not a multishot read's that a
		 * program gave the same user_data (it carries a buffer) */
		k.ring = (__u64)ctx->ctx;
		k.user_data = ctx->user_data;
		a = res >= 0 && !(ctx->cflags & CQE_F_BUFFER) ?
			    bpf_map_lookup_elem(&uring_accepts, &k) : NULL;
		/* a multishot accept's file_slot is 0 or FILE_INDEX_ALLOC (the kernel refuses
		 * others): an entry with a slot asked is a single-shot accept's, not for this
		 * completion (another's sharing its user_data, such as a MSG_RING message) */
		if (a && (!a->file_slot || a->file_slot == FILE_INDEX_ALLOC))
			uring_accepted(ctx->ctx, res, a->file_slot, a->port);
		return 0;
	}
	op = BPF_CORE_READ(req, opcode);
	if (op == bpf_core_enum_value(enum io_uring_op, IORING_OP_ACCEPT)) {
		__u32 slot = BPF_CORE_READ((struct io_accept *)req, file_slot);

		if (!(ctx->cflags & CQE_F_MORE)) { /* the request's last */
			k.ring = (__u64)ctx->ctx;
			k.user_data = ctx->user_data;
			bpf_map_delete_elem(&uring_accepts, &k);
		}
		uring_accepted(ctx->ctx, res, slot, 0);
	} else if (op == bpf_core_enum_value(enum io_uring_op, IORING_OP_SPLICE)) {
		/* its input, still the submitter's (an io-wq thread shares its files): a
		 * descriptor, or with SPLICE_F_FD_IN_FIXED a slot of the ring's fixed files */
		struct io_splice *sp = (struct io_splice *)req;
		int in = BPF_CORE_READ(sp, splice_fd_in);

		if (res > 0)
			handle_splice_read(BPF_CORE_READ(sp, flags) & SPLICE_F_FD_IN_FIXED ?
						   uring_fixed_sk(ctx->ctx, (__u32)in) :
						   sk_from_fd_as(in, true),
					   res, true);
	} else if (op == bpf_core_enum_value(enum io_uring_op, IORING_OP_CONNECT)) {
		struct sock *sk = sk_from_file(BPF_CORE_READ(req, file));
		__u64 cookie = sk ? sk_cookie(sk) : 0;

		handle_connect_call(sk, res, true);
		/* the slot its connect hook filled, if it ran in this thread: no syscall exit
		 * comes for it (a socket without a cookie never met the hook) */
		if (cookie)
			connect_slot_release((__u32)bpf_get_current_pid_tgid(), cookie);
	}
	return 0;
}

/* ---- path 3: UDP send ---- */

/* Leave this thread's datagram peer for the sock_{send,recv}_length that follows. */
static __always_inline void dgram_handoff_put(struct bpf_sock_addr *ctx, bool received,
					      bool mapped, __u32 addr, __u16 port)
{
	dgram_handoff_set(bpf_get_socket_cookie(ctx), received, mapped, addr, port, 0, true,
			  cgroup_task_btf);
}

static __always_inline bool bpf_sock_is_udp6(struct bpf_sock *sk)
{
	return sk && sk->family == AF_INET6 &&
	       (sk->protocol == IPPROTO_UDP || sk->protocol == IPPROTO_UDPLITE);
}

/* udpv6_sendmsg hands a mapped destination to udp_sendmsg, which runs the sendmsg4 hook
 * with the AF_INET6 socket. */
SEC("cgroup/sendmsg4")
int cg_sendmsg4(struct bpf_sock_addr *ctx)
{
	FLOOR_RETURN(1);
	struct dgram_scratch *s;

	if (!bpf_sock_is_udp6(ctx->sk))
		return 1;
	dgram_handoff_put(ctx, false, true, ctx->user_ip4, bpf_ntohs((__u16)ctx->user_port));
	/* This hook never runs for a call that appends to a corked datagram: a cork remembered
	 * here was flushed (setsockopt(UDP_CORK, 0)) and this call starts a new datagram. It
	 * runs for a connected socket's send() without an address too: udpv6_sendmsg gives
	 * udp_sendmsg the mapped peer as a sockaddr_in. */
	if (!corks_seen)
		return 1;
	s = bpf_sk_storage_get(&dgram_scratch, ctx->sk, 0, 0);
	if (s)
		s->cork_valid = 0;
	return 1;
}

/* The numbers of the syscalls in progress whose arguments name a send's destination
 * (syscall_nr, syscall_arg: core.bpf.h). They differ per architecture; an architecture not
 * listed here cannot name the peer of a failed v6-only send, and the backend says so at
 * start (syscall_dest_supported). */
#if defined(__TARGET_ARCH_x86)
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_sendmmsg 307
#define SYSCALL_DEST_SUPPORTED SYSCALL_REGS_KNOWN
#elif defined(__TARGET_ARCH_arm64)
#define NR_sendto 206
#define NR_sendmsg 211
#define NR_sendmmsg 269
#define SYSCALL_DEST_SUPPORTED SYSCALL_REGS_KNOWN
#else
#define SYSCALL_DEST_SUPPORTED 0
#endif

const volatile bool syscall_dest_supported = SYSCALL_DEST_SUPPORTED;

#if SYSCALL_DEST_SUPPORTED
#define SENDMMSG_SCAN 16

/* The destination in a message header at hdr, as a 64-bit program lays it out (struct
 * user_msghdr) or, compat, a 32-bit one (struct compat_msghdr: 32-bit pointers). Only the
 * head both begin with is read: a compat header is shorter. *named: it names one. */
static __always_inline bool msghdr_dest(__u64 hdr, bool compat, __u32 *addr, __u16 *port,
					bool *named)
{
	union {
		struct {
			__u64 name;
			__u32 namelen;
		} native;
		struct {
			__u32 name;
			__u32 namelen;
		} compat;
	} h;

	if (bpf_probe_read_user(&h, sizeof(h), (const void *)hdr))
		return false;
	*named = compat ? h.compat.name != 0 : h.native.name != 0;
	if (compat)
		return sockaddr_v4((void *)(unsigned long)h.compat.name, h.compat.namelen, true, addr,
				   port);
	return sockaddr_v4((void *)h.native.name, h.native.namelen, true, addr, port);
}

/* The destination named by send call call (socketcall(2)'s numbers: SYS_SENDTO, SYS_SENDMSG,
 * SYS_SENDMMSG) with arguments a, of a 64-bit program or, compat, a 32-bit one (whose
 * mmsghdr is 32 bytes): true if it goes to IPv4 (sockaddr_v4). *named: the call (a
 * sendmmsg()'s first message, the one whose failure the call returns) named a destination. */
static __always_inline bool send_call_dest(__u32 call, const __u64 a[6], bool compat, __u32 *addr,
					   __u16 *port, bool *named)
{
	__u64 stride = compat ? 32 : sizeof(struct mmsghdr);
	bool any;

	if (call == SYS_SENDTO) {
		*named = a[4] != 0;
		return sockaddr_v4((void *)a[4], (__u32)a[5], true, addr, port);
	}
	if (call == SYS_SENDMSG)
		return msghdr_dest(a[1], compat, addr, port, named);
	if (call == SYS_SENDMMSG) {
		/* The first mapped destination in the vector is the one that failed. */
		for (int i = 0; i < SENDMMSG_SCAN; i++) {
			if (i >= (__u32)a[2])
				break;
			if (msghdr_dest(a[1] + i * stride, compat, addr, port, i ? &any : named))
				return true;
		}
	}
	return false;
}

/* The destination of a send that failed before any cgroup hook ran (on a v6-only socket, to
 * a mapped address: in udpv6_sendmsg), from the arguments of the syscall in progress, made
 * by a 64-bit program or (ia32_sock_call) a 32-bit one. *named: the call named a destination
 * (false where that is not known: not a send syscall, io_uring). */
static __always_inline bool syscall_send_dest(__u32 *addr, __u16 *port, bool *named)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 a[6] = {};
	__u32 call;

	if (in_ia32_call(true)) {
		__u32 a32[6];

		if (!ia32_sock_call(regs, &call, a32))
			return false;
		for (int i = 0; i < 6; i++)
			a[i] = a32[i];
		return send_call_dest(call, a, true, addr, port, named);
	}
	switch (syscall_nr(regs)) {
	case NR_sendto:
		call = SYS_SENDTO;
		break;
	case NR_sendmsg:
		call = SYS_SENDMSG;
		break;
	case NR_sendmmsg:
		call = SYS_SENDMMSG;
		break;
	default:
		return false;
	}
	a[1] = syscall_arg(regs, 1);
	a[2] = syscall_arg(regs, 2);
	a[4] = syscall_arg(regs, 4);
	a[5] = syscall_arg(regs, 5);
	return send_call_dest(call, a, false, addr, port, named);
}
#else
static __always_inline bool syscall_send_dest(__u32 *addr, __u16 *port, bool *named)
{
	return false;
}
#endif

SEC("tp_btf/sock_send_length")
int BPF_PROG(tp_send_length, struct sock *sk, int ret, int flags)
{
	FLOOR_RETURN(0);
	struct dgram_peer peer;
	__u16 rport = 0;
	__u32 raddr = 0;
	bool have_peer = false, named = false;
	__u8 proto, extra = 0;

	if (!sk_is_inet6_as(sk, &proto, true))
		return 0;
	if (proto == DSTRACE_PROTO_TCP) {
		/* a TCP Fast Open sendto()/sendmsg() that failed inside the call: its connect's
		 * result (the one this thread started on this socket, if undecided) */
		if (ret < 0)
			connect_slot_decide(sk, ret);
		handle_tcp_bytes(sk, DSTRACE_EV_SEND, ret, true);
		return 0;
	}
	/* The peer: from the sendmsg4 hook, which every datagram to IPv4 passes (udpv6_sendmsg
	 * gives udp_sendmsg the mapped peer as an address, so the hook runs for a connected
	 * socket's send() without one too); for a call that failed before it, the syscall's
	 * arguments or the connected peer. A datagram sent without passing it went to an IPv6
	 * destination the call named (no hook of the sendmsg6 kind: it would run for every
	 * unconnected IPv6 send on the machine, 150 ns each). A corked continuation is
	 * resolved by udp_send_done. */
	if (dgram_handoff_take(sk, false, &peer, true, true)) {
		have_peer = peer.mapped;
		raddr = peer.addr;
		rport = peer.port;
		extra = peer.segs;
	} else if (ret < 0 && sk->__sk_common.skc_state == TCP_ESTABLISHED) {
		/* the mapped destination the call named, or if it named none the peer */
		have_peer = syscall_send_dest(&raddr, &rport, &named) ||
			    (!named && sk_mapped_peer(sk, &raddr, &rport));
	} else if (ret < 0 && sk_is_v6only(sk)) {
		have_peer = syscall_send_dest(&raddr, &rport, &named);
	}
	udp_send_done(sk, proto, have_peer, raddr, rport, ret, true, GSO_FROM_EGRESS, extra);
	return 0;
}

/* The thread's send hand-off on the socket with this cookie (cg_sendmsg4 left it for this
 * call): where a GSO packet's datagrams beyond the first go, so that the call that sent it
 * counts them, however many threads share the socket. */
static __always_inline struct dgram_peer *dgram_handoff_mine(__u64 cookie)
{
	__u32 key = dgram_handoff_key(false, false), tag = key + 1;
	struct dgram_slot *slot = dgram_slot_of(key);
	struct dgram_peer *p;
	__u64 hkey = key;

	if (slot && slot->tag == tag)
		return slot->peer.cookie == cookie ? &slot->peer : NULL;
	if (!dgram_spilled)
		return NULL;
	p = bpf_map_lookup_elem(&dgram_handoff, &hkey);
	return p && p->cookie == cookie ? p : NULL;
}

/* A GSO packet (UDP_SEGMENT, the socket's or the call's) leaving an AF_INET6 UDP socket for
 * an IPv4 peer (ip_finish_output, before it is cut into datagrams; in the sending call, in
 * its thread): the datagrams it becomes beyond the first go to the sending thread's hand-off
 * where this kernel lets the hook know the thread (egress_tid: Linux 6.10+), else, and for a
 * call that finishes a corked datagram (no hand-off: cg_sendmsg4 does not run for it), to the
 * socket's storage: the socket's next send takes them (udp_send_done), so a thread sharing
 * the socket may count another's there. A packet sent by a cork flush
 * (setsockopt(UDP_CORK, 0)), or reinjected later from a netfilter queue, is counted with the
 * socket's next mapped send. Every packet the machine sends comes here; all but GSO ones
 * leave on the first test. */
SEC("cgroup_skb/egress")
int cg_skb_egress(struct __sk_buff *skb)
{
	FLOOR_RETURN(1);
	__u32 segs = skb->gso_segs;
	struct dgram_scratch *s;
	struct dgram_peer *mine;
	struct bpf_sock *bsk;

	if (segs < 2 || skb->protocol != bpf_htons(ETH_P_IP) || skb->family != AF_INET6)
		return 1;
	bsk = skb->sk;
	if (!bsk)
		return 1;
	bsk = bpf_sk_fullsock(bsk);
	if (!bpf_sock_is_udp6(bsk))
		return 1;
	if (egress_tid) {
		mine = dgram_handoff_mine(bpf_get_socket_cookie(skb));
		if (mine) {
			segs += mine->segs - 1;
			mine->segs = segs > 255 ? 255 : segs;
			return 1;
		}
	}
	s = bpf_sk_storage_get(&dgram_scratch, bsk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s) /* another CPU made it at the same instant */
		s = bpf_sk_storage_get(&dgram_scratch, bsk, 0, 0);
	if (s)
		__sync_fetch_and_add(&s->gso_extra, segs - 1);
	return 1;
}

/* ---- path 4: UDP recv ---- */

/* udpv6_recvmsg fills the source of an IPv4 datagram as ::ffff:a.b.c.d, then runs this hook
 * (only when the caller asked for the source address). */
SEC("cgroup/recvmsg6")
int cg_recvmsg6(struct bpf_sock_addr *ctx)
{
	FLOOR_RETURN(1);
	if (!bpf_sock_is_udp6(ctx->sk) || ctx->user_ip6[0] || ctx->user_ip6[1] ||
	    ctx->user_ip6[2] != bpf_htonl(0xffff))
		return 1;
	dgram_handoff_put(ctx, true, true, ctx->user_ip6[3], bpf_ntohs((__u16)ctx->user_port));
	return 1;
}

/* Datagrams the socket dropped so far (sk_drops_read(): since 6.18 UDP counts them per NUMA
 * node in sk_drop_counters). */
struct numa_drop_counters___dstrace {
	atomic_t drops0;
	atomic_t drops1;
} __attribute__((preserve_access_index));

struct sock___dstrace {
	struct numa_drop_counters___dstrace *sk_drop_counters;
} __attribute__((preserve_access_index));

static __always_inline __u32 sk_drops_now(struct sock *sk)
{
	struct sock___dstrace *s = (void *)sk;
	__u32 n = sk->sk_drops.counter;

	if (bpf_core_field_exists(s->sk_drop_counters)) {
		struct numa_drop_counters___dstrace *c = s->sk_drop_counters;

		if (c)
			n += c->drops0.counter + c->drops1.counter;
	}
	return n;
}

/* Append one datagram's source (kind, and for IPv4 its address) to the queue of sources; the
 * caller holds the lock. Datagrams of the same run (IPv6; unknown; IPv4 from one source, the
 * slot keeping the longest) share a slot. */
static __always_inline void rxq_push(struct dgram_rxq *q, struct rxq_slot *s)
{
	__u32 n = q->tail - q->head;
	struct rxq_slot *last = &q->slot[(q->tail - 1) & (DGRAM_RXQ_SLOTS - 1)];

	if (n >= DGRAM_RXQ_SLOTS - 1)
		s->kind = RXQ_UNKNOWN; /* the last slot is kept for the overflow */
	if (n && last->kind == s->kind && last->run < 0xffff &&
	    (s->kind != RXQ_V4 ||
	     (last->addr == s->addr && last->port == s->port && !last->segs && !s->segs))) {
		last->run++;
		if (s->len > last->len)
			last->len = s->len;
	} else if (n < DGRAM_RXQ_SLOTS) {
		s->run = 1;
		q->slot[q->tail & (DGRAM_RXQ_SLOTS - 1)] = *s;
		q->tail++;
	}
}

/* Forget the last d sources appended: datagrams the socket dropped after this hook let them
 * through (receive buffer full, a socket filter), which no read will take. */
static __always_inline void rxq_unpush(struct dgram_rxq *q, __u32 d)
{
	for (int i = 0; i < 8 && d && q->tail != q->head; i++) {
		struct rxq_slot *last = &q->slot[(q->tail - 1) & (DGRAM_RXQ_SLOTS - 1)];
		__u32 k = last->run < d ? last->run : d;

		last->run -= k;
		d -= k;
		if (!last->run)
			q->tail--;
	}
}

/* A datagram's payload length: UDP's length field less its header; UDP-Lite's field is its
 * checksum coverage (0: all of it), so there the IP packet's length less both headers. */
static __always_inline __u16 v4_payload_len(__u8 proto, __u16 tot_len, __u16 ihl_bytes,
					    __u16 ulen)
{
	return (proto == IPPROTO_UDPLITE ? tot_len - ihl_bytes : ulen) - 8;
}

/* An IPv4 datagram's source and UDP payload length: from the linear head when it holds both
 * headers (always, on the receive path), else copied out. skb data starts at the network
 * header. */
static __always_inline void skb_v4_source(struct __sk_buff *skb, struct rxq_slot *s)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data, h;
	struct udphdr *uh;
	__u16 ihl, ulen = 0;

	s->kind = RXQ_V4;
	if ((void *)(ip + 1) <= end) {
		ihl = (*(__u8 *)ip & 0xf) << 2;
		uh = data + ihl;
		if ((void *)(uh + 1) <= end) {
			s->addr = ip->saddr;
			s->port = bpf_ntohs(uh->source);
			s->len = v4_payload_len(ip->protocol, bpf_ntohs(ip->tot_len), ihl,
						bpf_ntohs(uh->len));
			return;
		}
	}
	if (bpf_skb_load_bytes(skb, 0, &h, sizeof(h))) {
		s->kind = RXQ_UNKNOWN;
		return;
	}
	ihl = (*(__u8 *)&h & 0xf) << 2;
	if (bpf_skb_load_bytes(skb, ihl, &s->port, 2) || bpf_skb_load_bytes(skb, ihl + 4, &ulen, 2))
		s->kind = RXQ_UNKNOWN;
	s->addr = h.saddr;
	s->port = bpf_ntohs(s->port);
	s->len = v4_payload_len(h.protocol, bpf_ntohs(h.tot_len), ihl, bpf_ntohs(ulen));
}

/* A datagram about to be queued on an AF_INET6 UDP or UDP-Lite socket (udp_queue_rcv_one_skb
 * -> sk_filter, the socket's own cgroup): its source goes to the end of the socket's queue of
 * sources (dgram_rxq), made by the first IPv4 datagram of an unconnected socket, or of a
 * connected one the first IPv4 packet of several datagrams (GRO: its reads must learn how
 * many they took). The socket's fields are read through its BTF (BTF_CAST: plain loads, no
 * helper call). */
SEC("cgroup_skb/ingress")
int cg_skb_ingress(struct __sk_buff *skb)
{
	FLOOR_RETURN(1);
	struct bpf_sock *bsk = skb->sk;
	struct rxq_slot s = { .kind = RXQ_V6 };
	struct udp_sock *u;
	struct dgram_rxq *q;
	__u32 drops, was, queued = 0, state;
	bool started, create;

	/* Every packet the machine receives comes here: most leave on the socket's common
	 * fields: not AF_INET6, or in a state no UDP socket is in: TCP_CLOSE (unconnected)
	 * and TCP_ESTABLISHED (connected) are (a TCP listener, request or time-wait socket
	 * leaves here: a TCP connection's handshake and close). A socket in either state is a
	 * full one: its type and protocol say UDP or UDP-Lite (both a udp_sock), else leave (a
	 * TCP connection's packets). */
	if (!bsk || bsk->family != AF_INET6)
		return 1;
	state = bsk->state;
	if (state != TCP_CLOSE && state != TCP_ESTABLISHED)
		return 1;
	u = BTF_CAST(bsk, struct udp_sock);
	if (u->inet.sk.sk_type != SOCK_DGRAM || (u->inet.sk.sk_protocol != IPPROTO_UDP &&
						  u->inet.sk.sk_protocol != IPPROTO_UDPLITE))
		return 1;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		skb_v4_source(skb, &s);
		/* a packet of several datagrams, queued whole (UDP_GRO: a socket queues no
		 * other GSO packet whole, udp_unexpected_gso): one read takes them */
		if (skb->gso_size)
			s.segs = udp_segs_of(skb->gso_segs, skb->gso_size, s.len);
	}
	/* A socket that never received IPv4 has no queue of sources: its reads are IPv6; nor
	 * has a connected one that never received a GRO packet: its reads are its peer's, one
	 * datagram each. Two CPUs creating it at once: the one that loses gets NULL, and
	 * looks again. */
	create = s.kind != RXQ_V6 && (state == TCP_CLOSE || s.segs);
	q = bpf_sk_storage_get(&dgram_rxq, bsk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (!q && create)
		q = bpf_sk_storage_get(&dgram_rxq, bsk, 0, 0);
	if (!q)
		return 1;
	drops = sk_drops_now(&u->inet.sk);
	/* the queue's length matters only to a queue just made (read racily, checked again
	 * under the lock) */
	started = q->started;
	if (!started)
		queued = u->inet.sk.sk_receive_queue.qlen + u->reader_queue.qlen;
	bpf_spin_lock(&q->lock);
	if (!q->started) {
		/* new: the datagrams already queued are IPv6 ones */
		q->started = 1;
		q->drops = drops;
		if (queued) {
			q->slot[0].kind = RXQ_V6;
			q->slot[0].run = queued > 0xffff ? 0xffff : queued;
			q->tail = 1;
		}
	}
	was = q->drops;
	q->drops = drops;
	if (drops != was)
		rxq_unpush(q, drops - was);
	rxq_push(q, &s);
	bpf_spin_unlock(&q->lock);
	return 1;
}

/* The source of the datagram a read of ret bytes just took off sk's queue: the head of the
 * socket's queue of sources. A source that cannot be the datagram read (shorter than what
 * was read) is not used: the datagram is counted as unknown. */
static __always_inline enum rxq_kind rxq_pop(struct sock *sk, int ret, int flags,
					     struct rxq_slot *out)
{
	struct dgram_rxq *q = bpf_sk_storage_get(&dgram_rxq, sk, 0, 0);
	enum rxq_kind k = RXQ_UNKNOWN;
	struct rxq_slot *h;

	if (!q)
		return RXQ_V6; /* never received IPv4 */
	bpf_spin_lock(&q->lock);
	if (q->head != q->tail) {
		h = &q->slot[q->head & (DGRAM_RXQ_SLOTS - 1)];
		*out = *h;
		k = h->kind;
		if (k == RXQ_V4 && !((flags & MSG_TRUNC) ? ret == h->len : ret <= h->len))
			k = RXQ_UNKNOWN;
		if (h->run <= 1) {
			q->head++;
		} else {
			h->run--;
		}
	}
	bpf_spin_unlock(&q->lock);
	return k;
}

/* The source of the datagram a read of ret bytes took off a UDP AF_INET6 socket: the address
 * the caller asked for (cgroup/recvmsg6), the connected peer, or the head of the socket's
 * queue of sources, which only a read that took a datagram off the socket consumes. false:
 * not an IPv4 peer, or not known (a source unknown is counted). A peek or an error-queue
 * read leaves the address the caller asked for in place. *segs: the datagrams the read took,
 * where the queue of sources knows them (a GRO packet). */
static __always_inline bool dgram_recv_source(struct sock *sk, int ret, int flags, __u32 *raddr,
					      __u16 *rport, __u8 *segs)
{
	struct rxq_slot src = {};
	struct dgram_peer peer;
	enum rxq_kind v;
	bool have_peer;

	if (!recv_dequeues(flags))
		return false;
	have_peer = dgram_handoff_take(sk, true, &peer, true, true);
	if (ret < 0)
		return false;
	if (sk->__sk_common.skc_state == TCP_ESTABLISHED) {
		/* Connected: a socket with a queue of sources (it received IPv4 unconnected,
		 * or a GRO packet) has the datagram's own source and count there; else, or
		 * where the queue does not know it, the datagram is the peer's, one. */
		if (rxq_pop(sk, ret, flags, &src) == RXQ_V4) {
			*raddr = src.addr;
			*rport = src.port;
			*segs = src.segs;
			return true;
		}
		return sk_mapped_peer(sk, raddr, rport);
	}
	/* Unconnected: every datagram read takes its source off the queue of sources; the
	 * address the caller asked for (cgroup/recvmsg6), if any, is the exact one. */
	v = rxq_pop(sk, ret, flags, &src);
	if (v == RXQ_V4)
		*segs = src.segs;
	if (have_peer) {
		*raddr = peer.addr;
		*rport = peer.port;
		return true;
	}
	if (v == RXQ_V4) {
		*raddr = src.addr;
		*rport = src.port;
		return true;
	}
	if (v == RXQ_UNKNOWN)
		counter_add(DSTRACE_CNT_RECV_UNKNOWN, 1);
	return false;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tp_recv_length, struct sock *sk, int ret, int flags)
{
	FLOOR_RETURN(0);
	__u32 raddr = 0;
	__u16 rport = 0;
	__u8 proto, segs = 0;
	bool mapped;

	if (!sk_is_inet6_as(sk, &proto, true))
		return 0;
	if (proto == DSTRACE_PROTO_TCP) {
		handle_tcp_recv(sk, flags, ret, true);
		return 0;
	}
	mapped = dgram_recv_source(sk, ret, flags, &raddr, &rport, &segs);
	handle_udp_recv(sk, proto, flags, ret, mapped, raddr, rport, segs, true);
	return 0;
}

#endif /* DSTRACE_TRACEPOINT_BPF_H */
