/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Opening, configuring, loading and attaching the BPF side for one backend. */
#ifndef DSTRACE_BACKEND_H
#define DSTRACE_BACKEND_H

#include <stdint.h>
#include <sys/types.h>
#include "aggregate.h"
#include "options.h"

struct dstrace_backend;

/* Load and attach the backend env asks for ("auto" tries each in order of preference).
 * On failure returns a negative errno and has printed one line saying what failed. */
int dstrace_backend__new(const struct env *env, struct dstrace_backend **out);
void dstrace_backend__free(struct dstrace_backend *b);
const char *dstrace_backend__name(const struct dstrace_backend *b);
/* What this backend cannot see on this kernel (said once at start): up to max short
 * phrases ("io_uring accepts", "names of resolved peers") into out; returns how many. */
#define DSTRACE_BLIND_MAX 4
int dstrace_backend__blind(const struct dstrace_backend *b, const char **out, int max);
/* How many (process, address) names the kernel's LRU table forgot to make room: their
 * later connects and sends have no name. */
int dstrace_backend__name_evictions(const struct dstrace_backend *b, uint64_t *evictions);
int dstrace_backend__ringbuf_fd(const struct dstrace_backend *b);
/* Runs of dstrace's programs the kernel skipped (drops.h, "missed"): return probes with no
 * room for another call in flight, programs not run inside another one (recursion).
 * counters: dstrace_backend__counters()'s, read before. */
int dstrace_backend__missed(const struct dstrace_backend *b,
			    const uint64_t counters[DSTRACE_CNT_MAX], uint64_t *missed);
/* The kprobe backend's table of calls in flight keeps a call whose return was missed (see
 * "missed") until its thread calls again: those of threads that ended are deleted here (at
 * most every 10 s), so they cannot fill it. How many were deleted. */
int dstrace_backend__sweep_calls(struct dstrace_backend *b);
/* Connects waiting for their outcome for longer than DSTRACE_CONNECT_WAIT_MAX seconds
 * (default 900: a SYN is retried for 127 s by default) are given up: their outcome was
 * missed, or will come too late to be told. Counted with the connects that did not fit
 * (counter DSTRACE_CNT_CONN_FULL, drops stash_full). At most every 10 s; how many. */
#define DSTRACE_CONNECT_WAIT_MAX_S 900
int dstrace_backend__sweep_connects(struct dstrace_backend *b);
/* Sum of the per-CPU global counters. */
int dstrace_backend__counters(const struct dstrace_backend *b, uint64_t out[DSTRACE_CNT_MAX]);
/* Copy the kernel's per-process totals into t; entries of processes that ended are folded
 * in for good and freed in the kernel. */
int dstrace_backend__read_procs(struct dstrace_backend *b, struct proc_table *t);

struct audit;
/* Fold the kernel's per-process and UDP flow counters into the audit tables (and into the
 * process table t, if not NULL), freeing the kernel entries of processes that ended.
 * *evictions: UDP flows the kernel's LRU table evicted so far. 0 or a negative errno. */
int dstrace_backend__harvest(struct dstrace_backend *b, struct audit *a, struct proc_table *t,
			     uint64_t *evictions);
/* UDP flows the kernel's LRU table evicted so far (walks the flow table). */
int dstrace_backend__flow_evictions(const struct dstrace_backend *b, uint64_t *evictions);
/* The kernel's counters of the process pid had at ts_ns (an event's time): its running
 * entry, or the one that ended since. 0 or a negative errno (-ENOENT). */
int dstrace_backend__proc_stats(const struct dstrace_backend *b, uint32_t pid, uint64_t ts_ns,
				struct dstrace_proc_stats *st);
/* The ended entry of pid whose first_ns is given (proc_exited, or marked in proc_stats). */
int dstrace_backend__proc_ended(const struct dstrace_backend *b, uint32_t pid, uint64_t first_ns,
				struct dstrace_proc_stats *st);
uint32_t dstrace_backend__max_flows(const struct dstrace_backend *b);
/* Report the mapped TCP connections and UDP sockets that exist now (events "existing",
 * counted like the rest). 0 or a negative errno. */
int dstrace_backend__scan_existing(struct dstrace_backend *b);
/* Follow the calls in flight at start (accept, recvfrom, recvmsg, read of a socket, asleep
 * before the fentry or kprobe backend's hooks were attached: user/inflight.c) to their
 * results. Right after attaching. How many; or a negative errno (then they are not). */
int dstrace_backend__follow_inflight(struct dstrace_backend *b);
/* Follow 32-bit programs' calls (user/compat.c) from now on: with pid 0 (at start) if 32-bit
 * programs can run here or one does, else when pid is one that started (a notice from the
 * ring of dstrace_backend__exec_notices_fd). 1 when they are followed from now on (why,
 * into why), 0 when not (or already), or a negative errno. */
int dstrace_backend__follow_compat(struct dstrace_backend *b, pid_t pid, char *why, size_t len);
/* The ring where the kernel tells of exec()s that matter at once (records: struct
 * dstrace_exec_notice): a 32-bit program's, the first in a mount namespace. */
int dstrace_backend__exec_notices_fd(const struct dstrace_backend *b);
/* Stop following them once none is left, or after DSTRACE_INFLIGHT_WAIT_S (600 s): those
 * still asleep are counted (drops.stash_full) and said once. Every harvest. */
void dstrace_backend__sweep_inflight(struct dstrace_backend *b);

/* Look for the C libraries of mount namespaces (containers) not looked in yet, every few
 * seconds, and follow their getaddrinfo() (user/names.c). */
void dstrace_backend__sweep_resolver(struct dstrace_backend *b);
/* The kernel told of the first exec() in mount namespace ns (its inode; its number id), by
 * process pid (a notice from the exec_notices ring): look in it now (user/names.c). */
void dstrace_backend__resolver_exec(struct dstrace_backend *b, pid_t pid, unsigned int ns,
				    uint64_t id);
/* The clock the programs read where a rough time does (bpf/maps.bpf.h, coarse_boot_ns): set
 * to CLOCK_BOOTTIME now. Called once per pass of the main loop (100 ms apart when idle). */
void dstrace_backend__clock_tick(struct dstrace_backend *b);

#endif /* DSTRACE_BACKEND_H */
