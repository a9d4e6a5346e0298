/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Return probes that follow many calls at once (the kprobe backend's kretprobe programs).
 *
 * A kretprobe follows at most maxactive calls of its function in flight; a return beyond them
 * is missed. Attached through perf's kprobe PMU, as libbpf does, a return probe gets the
 * kernel's default: num_possible_cpus() without CONFIG_PREEMPTION (Debian 11's 5.10), at
 * least 10 with it. Threads blocked in recvfrom() or accept() hold their instances, so a few
 * more of them than CPUs made returns go unseen and uncounted. Here the probe is a tracefs
 * event ("r4096:dstrace/FUNC_NS_PID FUNC" in kprobe_events; NS: the PID namespace's inode)
 * with the kernel's largest maxactive, the program attached to it as a perf event, and the
 * returns it still misses counted from kprobe_profile.
 */
#ifndef DSTRACE_KRETPROBE_H
#define DSTRACE_KRETPROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <bpf/libbpf.h>

#define KRETPROBE_MAXACTIVE 4096 /* KRETPROBE_MAXACTIVE_MAX of kernel/trace/trace_kprobe.c */
#define KRETPROBES_MAX 16
#define KRETPROBE_NAME_LEN 64

struct kretprobes {
	int n;
	bool swept; /* stale events of dstrace processes that died removed */
	char events[KRETPROBES_MAX][KRETPROBE_NAME_LEN]; /* "FUNC_NS_PID", group "dstrace" */
};

/* Attach prog (a kretprobe program) to the return of the kernel function func with room for
 * KRETPROBE_MAXACTIVE calls in flight. NULL with errno set when tracefs cannot make it. */
struct bpf_link *kretprobe_attach(struct kretprobes *k, struct bpf_program *prog,
				  const char *func);
/* Returns the events made by kretprobe_attach() missed so far (kprobe_profile). */
int kretprobes_missed(const struct kretprobes *k, uint64_t *missed);
/* This process's PID namespace (its inode; 0 if unknown): a PID means something only in it. */
unsigned long dstrace_pidns_ino(void);
/* Is it the initial one, whose PIDs are the kernel's own (its tgids and tids)? */
bool dstrace_pidns_initial(void);
/* Remove the events; their links must be destroyed first (the kernel refuses events in use). */
void kretprobes_remove(struct kretprobes *k);

#endif /* DSTRACE_KRETPROBE_H */
