/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The per-process table: the counters summed in the kernel (proc_stats), distinct peers
 * included (counted there, exact unless the kernel's table of pairs was full, which the
 * entry then says), a row per kernel entry, and rows made from events for the processes the
 * kernel had no entry for. Bounded: at most PROC_TABLE_MAX processes; what does not fit is
 * counted in the table.
 */
#ifndef DSTRACE_AGGREGATE_H
#define DSTRACE_AGGREGATE_H

#include <stdbool.h>
#include <stdint.h>
#include "dstrace.h"
#include "drops.h"
#include "htab.h"

#define PROC_TABLE_MAX 65536


struct proc_entry {
	uint32_t pid;
	uint32_t uid;
	char comm[DSTRACE_COMM_LEN];
	uint64_t counts[DSTRACE_EV_MAX]; /* TCP and UDP together */
	uint64_t failed;
	uint64_t bytes; /* UDP payload bytes, sent and received */
	/* distinct remote IPv4 addresses, the kernel's count: exact even when events were
	 * lost; a lower bound if peers_partial (the kernel's table of pairs was full) */
	uint64_t peers;
	bool peers_partial;
	/* The kernel entry this row shows (its first_ns; 0: none yet, events only). A pid has a
	 * row per entry: a reused pid, or a program the process exec()ed, gets a new row. */
	uint64_t kid;
	uint64_t end_ns; /* the entry ended (exit, exec): its counts are final */
	uint32_t seq;	   /* order of arrival */
	uint32_t prev_row; /* the pid's row before this one, or UINT32_MAX */
};

struct proc_table {
	struct proc_entry *procs; /* as they came; sorted by pid (then age) by proc_table__sort */
	uint32_t nprocs;
	uint32_t cap;
	struct htab index; /* pid -> its last row (+ 1), at most half full */
	uint32_t seq;
	uint64_t dropped; /* processes that did not fit */
	uint32_t peers_partial; /* processes whose peer count is a lower bound */
	/* Ended processes that did not fit, summed: totals stay whole (pid 0, comm "(ended)") */
	struct proc_entry others;
};

struct run_stats {
	const char *backend;
	uint64_t events; /* events received */
	uint64_t lost;	 /* events the kernel could not queue */
	uint64_t proc_full; /* per-process updates the kernel table had no room for */
	double duration_s;
	struct dstrace_drops drops;
	const char *blind[4]; /* what the backend cannot see on this kernel (backend.h) */
	int nblind;
	uint64_t names_evicted; /* (process, address) names the kernel's LRU forgot */
};

void proc_table__init(struct proc_table *t);
void proc_table__free(struct proc_table *t);
/* Find or add; NULL when the table is full (counted in t->dropped) or out of memory. */
struct proc_entry *proc_table__get(struct proc_table *t, uint32_t pid);
/* An event arrived: a row for its process (its comm and uid) if it has none yet. */
int proc_table__add_event(struct proc_table *t, const struct dstrace_event *e);
/* The kernel's totals for one process entry replace ours (the row of that entry: a new row
 * when the pid's last row followed another entry). A final entry (dstrace_proc_final) that does not
 * fit is added to t->others. */
int proc_table__set_stats(struct proc_table *t, uint32_t pid, const struct dstrace_proc_stats *st);
uint32_t proc_entry__peers(const struct proc_entry *p);
/* Rows by pid, a pid's rows by age (for printing). Pointers to rows are stale after it. */
void proc_table__sort(struct proc_table *t);

#endif /* DSTRACE_AGGREGATE_H */
