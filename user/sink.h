/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Output sinks: each output mode is one struct sink_ops, called by main's loop at fixed
 * points of a run. The output file carries one of them: event lines (text or JSON Lines,
 * sink_lines.c), the interval table (sink_lines.c) or audit records (sink_audit.c); the
 * metrics server and the metrics file (sink_metrics.c) come on top. Every hook but free may
 * be NULL.
 */
#ifndef DSTRACE_SINK_H
#define DSTRACE_SINK_H

#include <stddef.h>
#include <stdint.h>
#include "dstrace.h"
#include "run.h"

struct sink;

struct sink_ops {
	/* The BPF side loaded, the ring buffer open, tracing not yet announced: what may fail
	 * (a server, a first file). 0, or the exit status after one line on stderr. */
	int (*start)(struct sink *s);
	/* Tracing announced (the clock and start time set): headers, schedules. */
	void (*begin)(struct sink *s);
	/* One event, after the run's tables have it (in the ring buffer's callback). */
	void (*event)(struct sink *s, const struct dstrace_event *e);
	/* Every turn of the loop, before the duration is checked: signals, snapshots. */
	void (*tick)(struct sink *s, uint64_t now);
	/* Every turn of the loop while the run goes on: what is due by the sink's own
	 * interval. Non-zero ends the run with status 1. */
	int (*interval)(struct sink *s, uint64_t now);
	/* The run ends (sinks in the reverse order of start): last records, stats, warnings.
	 * The exit status. */
	int (*finish)(struct sink *s);
	void (*free)(struct sink *s);
};

struct sink {
	const struct sink_ops *ops;
	struct run *run;
};

/* Constructors: 0 and *out, or the exit status after one line on stderr. They run before
 * the BPF side is loaded, with the output file open. */
int sink_lines_new(struct run *r, struct sink **out);	   /* events (text, JSON) or -i table */
int sink_audit_new(struct run *r, struct sink **out);	   /* --audit */
int sink_metrics_server_new(struct run *r, struct sink **out); /* --metrics */
int sink_metrics_file_new(struct run *r, struct sink **out);   /* --metrics-file */

/* A zeroed sink of size bytes (a struct that starts with struct sink) with its ops and run;
 * NULL after one line on stderr. */
void *sink_alloc(struct run *r, const struct sink_ops *ops, size_t size);

/* The sinks env asks for, into r->sinks. 0 or the exit status. */
int sinks_new(struct run *r);
int sinks_start(struct run *r);
void sinks_begin(struct run *r);
void sinks_tick(struct run *r, uint64_t now);
int sinks_interval(struct run *r, uint64_t now);
/* The exit status: the first non-zero of the sinks, 0 if none. */
int sinks_finish(struct run *r);
void sinks_free(struct run *r);

#endif /* DSTRACE_SINK_H */
