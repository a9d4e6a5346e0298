/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Process lifecycle, for every backend (user/backend.c's lifecycle list): when a process
 * ends, or exec()s another program, its proc_stats entry has ended (final once no connect of
 * its waits for an outcome: proc_end). It moves to proc_exited,
 * where user space folds it into its program (or the final table) and deletes it, and its pid
 * is free in proc_stats at once: a process that reuses the pid, or the program exec()
 * started, gets an entry of its own with its own executable, uid and cgroup.
 *
 * raw tracepoints: no tracefs, no kprobes, no BPF trampolines, so they load wherever any
 * backend does (this locked-down kernel included), and they fire in the ending task.
 */
#ifndef DSTRACE_LIFECYCLE_BPF_H
#define DSTRACE_LIFECYCLE_BPF_H

#include "inflight.bpf.h"

/* Tell user space, in ring order, that tgid's entry ended: the events after this one with
 * that pid are another entry's (a new process, or the program exec() started). Without it,
 * user space learns of the end at its next walk of the tables (within a second). */
static __always_inline void proc_end_notice(__u32 tgid, __u64 ts_ns, __u32 how)
{
	struct dstrace_event *e;

	if (!emit_events)
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return; /* not an event: not counted as lost; the walk still sees the end */
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = ts_ns;
	e->pid = tgid;
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->ret = how;
	e->flags = DSTRACE_F_ENDED;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* End the current process's entry: move it to proc_exited, or, when that queue is full (or
 * still holds an earlier entry of this pid), leave it marked in proc_stats. Nothing updates an
 * ended entry again but the outcomes of connects it still waits for (st->pending: its socket
 * closed after the process's end, or held by a child or the program exec() started;
 * connect.bpf.h, conn_entry): its process is gone (exit: this is its last thread), or it is a
 * new program (exec: de_thread() left one thread, which counts into a new entry from now
 * on). An outcome counted in the entry between its copy and its delete here is lost, the
 * entry waiting for it to the end (user/tables.c, entry_held): counted there. */
static __always_inline void proc_end(__u32 how)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct dstrace_proc_stats *st = bpf_map_lookup_elem(&proc_stats, &tgid);

	if (!st || st->exit_ns)
		return;
	st->ended_by = how;
	st->exit_ns = bpf_ktime_get_boot_ns();
	proc_end_notice(tgid, st->exit_ns, how);
	if (!bpf_map_update_elem(&proc_exited, &tgid, st, BPF_NOEXIST))
		bpf_map_delete_elem(&proc_stats, &tgid);
}

/* Every task's exit. For the process's entry only the process's end matters: the last thread
 * of the group (live dropped to 0 in do_exit() before this), whichever thread that is. A
 * thread's exit, or the group leader's while other threads run, leaves the entry open. */
SEC("raw_tp/sched_process_exit")
int lc_process_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	inflight_forget(); /* a call in flight at start it was in: never returns now */
	/* a connect this thread started without a syscall (io_uring) left its socket behind */
	if (connect_by_syscall)
		connect_slot_release(tid, 0);
	if (BPF_CORE_READ(task, signal, live.counter) == 0)
		proc_end(DSTRACE_END_EXIT);
	return 0;
}

/* Is the image bprm loads a 32-bit x86 ELF (class ELFCLASS32, machine EM_386)? Its header
 * is in bprm->buf (an interpreter's, for a script). */
static __always_inline bool bprm_is_ia32(struct linux_binprm *bprm)
{
	unsigned char h[20];

	if (bpf_core_read(h, sizeof(h), &bprm->buf))
		return false;
	return h[0] == 0x7f && h[1] == 'E' && h[2] == 'L' && h[3] == 'F' && h[4] == 1 &&
	       h[5] == 1 && h[18] == 3 && h[19] == 0;
}

/* Before Linux 6.18 a mount namespace's number is its own field (seq), since then its
 * ns_common's (ns_id): each read through a struct of its own, so that the object builds
 * against either kernel's vmlinux.h. */
struct mnt_namespace___seq {
	__u64 seq;
} __attribute__((preserve_access_index));

struct ns_common___id {
	__u64 ns_id;
} __attribute__((preserve_access_index));

struct mnt_namespace___id {
	struct ns_common___id ns;
} __attribute__((preserve_access_index));

static __always_inline __u64 mnt_ns_id(struct mnt_namespace *mnt)
{
	if (bpf_core_field_exists(struct mnt_namespace___seq, seq))
		return BPF_CORE_READ((struct mnt_namespace___seq *)mnt, seq);
	if (bpf_core_field_exists(struct ns_common___id, ns_id))
		return BPF_CORE_READ((struct mnt_namespace___id *)mnt, ns.ns_id);
	return BPF_CORE_READ(mnt, ns.inum); /* neither: the inode (reused, rarely) */
}

/* Is the exec the first one told of in its mount namespace (n->mnt_ns, numbered n->mnt_id)?
 * Then it is marked told. Not told of: dstrace's own namespace, one made in another user
 * namespace (an unprivileged user's: never looked in), and an exec whose root is still
 * dstrace's (a runtime before it moves into the container's root, ip netns exec, a service
 * with a private /tmp: nothing to look at, and a later exec of the namespace may be told). */
static __always_inline bool mnt_new(struct task_struct *task, struct dstrace_exec_notice *n)
{
	struct mnt_namespace *mnt = BPF_CORE_READ(task, nsproxy, mnt_ns);
	struct inode *root;
	__u8 one = 1;

	if (!mnt)
		return false;
	n->mnt_ns = BPF_CORE_READ(mnt, ns.inum);
	if (n->mnt_ns == mnt_own || BPF_CORE_READ(mnt, user_ns, ns.inum) != mnt_own_userns)
		return false;
	root = BPF_CORE_READ(task, fs, root.dentry, d_inode);
	if (!root || (BPF_CORE_READ(root, i_ino) == mnt_own_root_ino &&
		      BPF_CORE_READ(root, i_sb, s_dev) == mnt_own_root_dev))
		return false;
	n->mnt_id = mnt_ns_id(mnt);
	return !bpf_map_lookup_elem(&mnt_told, &n->mnt_id) &&
	       !bpf_map_update_elem(&mnt_told, &n->mnt_id, &one, BPF_NOEXIST);
}

/* exec() succeeded: what the process did so far belongs to the program it was. User space is
 * told at once (exec_notices) of a 32-bit image while 32-bit programs' calls are not followed
 * yet, and of the first exec in a mount namespace (a container's first program). */
SEC("raw_tp/sched_process_exec")
int lc_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct dstrace_exec_notice n = {};

	proc_end(DSTRACE_END_EXEC);
	if (!compat_following && bprm_is_ia32((struct linux_binprm *)ctx->args[2]))
		n.what |= DSTRACE_EXEC_IA32;
	if (mnt_own && mnt_new(task, &n))
		n.what |= DSTRACE_EXEC_MNT_NS;
	if (!n.what)
		return 0;
	n.pid = bpf_get_current_pid_tgid() >> 32;
	/* ring full: the namespace is told of at its next exec (or found by the sweep) */
	if (bpf_ringbuf_output(&exec_notices, &n, sizeof(n), BPF_RB_FORCE_WAKEUP) &&
	    (n.what & DSTRACE_EXEC_MNT_NS))
		bpf_map_delete_elem(&mnt_told, &n.mnt_id);
	return 0;
}

#endif /* DSTRACE_LIFECYCLE_BPF_H */
