/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * 32-bit programs on a 64-bit x86 kernel: their calls are ia32 compat calls, which the
 * kernel's syscall tracepoints skip (trace_get_syscall_nr: -1 in an ia32 call), so what
 * dstrace reads at a syscall's exit would go unseen for them: a bind's result on every
 * backend; on the tracepoint backend also an accept's new socket, a connect's immediate
 * result and the bytes a splice(2) or sendfile(2) read from a TCP socket (the socket layer
 * sees the rest of theirs as anyone's). These programs run at the exit of every syscall
 * (raw_syscalls:sys_exit, which compat calls pass too), leave at their first test unless the
 * call is an ia32 one (TS_COMPAT, set from the call's entry to the return to user space), and
 * read the call from the registers it saved: the direct calls (bind, connect, accept4,
 * splice, sendfile) and socketcall(2), through which i386 programs also reach them (glibc's
 * accept() among them: i386 has no accept syscall). Attached where the kernel runs ia32
 * calls (its BTF has __ia32_sys_bind); other architectures' compat calls go unseen.
 * A send on a v6-only socket that fails is named from an ia32 call's arguments too
 * (tracepoint.bpf.h, syscall_send_dest).
 */
#ifndef DSTRACE_COMPAT_BPF_H
#define DSTRACE_COMPAT_BPF_H

#include "tracepoint.bpf.h"

/* An ia32 call returned ret. calls: also accepts and connects (the tracepoint backend). */
static __always_inline void compat_exit(struct pt_regs *regs, long ret, bool calls)
{
	__u32 call, a[6], addr;
	__u16 port;

	if (!in_ia32_call(calls) || !ia32_sock_call(regs, &call, a))
		return;
	if (call == SYS_BIND) {
		if (bind_sockaddr_mapped((const void *)(unsigned long)a[1], a[2], &addr, &port))
			handle_bind_done(sk_from_fd((int)a[0]), addr, port, (int)ret);
		return;
	}
	if (!calls)
		return;
	if (call == SYS_CONNECT)
		connect_slot_decide(NULL, (int)ret);
	else if ((call == SYS_ACCEPT || call == SYS_ACCEPT4) && ret >= 0)
		handle_accept_done(sk_from_fd_as((int)ret, true), true, true);
	else if (call == CALL_SPLICE)
		handle_splice_read(sk_from_fd_as((int)a[0], true), ret, true);
	else if (call == CALL_SENDFILE)
		handle_splice_read(sk_from_fd_as((int)a[1], true), ret, true);
}

/* The tracepoint backend's: binds, accepts, connects, splice() and sendfile() reads. */
SEC("raw_tracepoint/sys_exit")
int cp_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	FLOOR_RETURN(0);
	compat_exit((struct pt_regs *)ctx->args[0], (long)ctx->args[1], true);
	return 0;
}

/* The fentry and kprobe backends' (their hooks in the kernel's functions see the rest): binds
 * only, with no helper a kernel before 5.11 lacks. */
SEC("raw_tracepoint/sys_exit")
int cp_sys_exit_bind(struct bpf_raw_tracepoint_args *ctx)
{
	FLOOR_RETURN(0);
	compat_exit((struct pt_regs *)ctx->args[0], (long)ctx->args[1], false);
	return 0;
}

#endif /* DSTRACE_COMPAT_BPF_H */
