/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one list of what dstrace may have to leave out, by cause, in the order every writer
 * (stats record and line, audit_run record, metrics) and the report's reader list them
 * (docs/audit-format.md, "drops"):
 *   lost          events the ring buffer had no room for
 *   proc_full     per-process updates with no kernel entry (proc_stats full)
 *   stash_full    calls not followed to their return (the connect slots, conn_pending,
 *                 bind_stash or kprobe_calls full), and pending connects given up
 *                 (tables.c, dstrace_backend__sweep_connects)
 *   recv_unknown  datagrams read without an address whose source was not known
 *   missed        runs of dstrace's programs the kernel skipped: a return probe with no room
 *                 for one more call in flight (kprobe backend), a program that would have
 *                 run inside its own run on the same CPU (recursion_misses; where the
 *                 kernel counts them: fentry 5.12+, tp_btf 6.0+, kprobes 6.7+), and TCP
 *                 connects whose state change the kernel ran no program for (counted at
 *                 their socket's release, bpf/socket.bpf.h sock_release, or when it
 *                 connects again, bpf/connect.bpf.h handle_connect_start)
 *   flows_evicted UDP flows the kernel's LRU table evicted
 *   programs      processes whose program did not fit the program table
 *   pids          processes that did not fit the process table
 *   ports         accepted connections whose listener port was not kept
 *   peers         connections/datagrams of peers not kept (audit); processes whose peer count
 *                 is a lower bound: over 65536 peers, or the kernel's table of pairs full
 *                 (process table)
 * A new cause is one more X() here; every list follows.
 */
#ifndef DSTRACE_DROPS_H
#define DSTRACE_DROPS_H

#include <stddef.h>
#include <stdint.h>

#define DSTRACE_DROPS(X)                                                                  \
	X(lost) X(proc_full) X(stash_full) X(recv_unknown) X(missed) X(flows_evicted)       \
	X(programs) X(pids) X(ports) X(peers)

#define DSTRACE_DROP_COUNT_ONE(n) +1
enum { DSTRACE_DROPS_N = 0 DSTRACE_DROPS(DSTRACE_DROP_COUNT_ONE) };

/* One uint64_t per cause, named for it (struct dstrace_drops, struct report_drops). */
#define DSTRACE_DROP_FIELD(n) uint64_t n;

struct dstrace_drops {
	DSTRACE_DROPS(DSTRACE_DROP_FIELD)
};

/* The causes' names, in order. */
extern const char *const dstrace_drop_names[DSTRACE_DROPS_N];

/* The values of d, in order. */
void dstrace_drops_values(const struct dstrace_drops *d, uint64_t out[DSTRACE_DROPS_N]);

/* {"lost":N,...,"peers":N} into buf (snprintf's contract: the length it needed). */
int dstrace_format_drops_json(const uint64_t v[DSTRACE_DROPS_N], char *buf, size_t size);

#endif /* DSTRACE_DROPS_H */
