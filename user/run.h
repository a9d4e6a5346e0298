/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One run of the tracer: the state every output sink (sink.h) reads, and what they share:
 * the output stream (one line at a time, flushed per burst, reopened on SIGHUP), the tables
 * the events and the kernel's counts go into (harvest), the drops of every kind, and the
 * ring buffer's callback, which keeps the tables and hands each event to the sinks.
 */
#ifndef DSTRACE_RUN_H
#define DSTRACE_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "aggregate.h"
#include "clock.h"
#include "options.h"
#include "programs.h"

struct dstrace_backend;
struct ring_buffer;
struct sink;

#define RUN_SINKS_MAX 3 /* the output (lines or audit), the metrics server, the metrics file */

struct run {
	struct env env;
	FILE *out;
	int write_errno; /* the first failed line write (line outputs), which ends the run */
	uint64_t lines_pending; /* lines written since the last flush that went out whole */
	uint64_t lines_unwritten; /* lines given up, at most (run_emit_line) */
	bool reopen_pending; /* a SIGHUP's reopen failed: try again */
	struct proc_table procs;
	struct dstrace_backend *backend;
	struct ring_buffer *rb;
	uint64_t events_seen;
	struct dstrace_clock clock; /* CLOCK_BOOTTIME -> CLOCK_REALTIME, kept right as the run goes */
	uint64_t start_ns; /* CLOCK_MONOTONIC when tracing began */
	uint64_t started_realtime_ns;
	char host[256];
	char run_id[320];
	/* audit and metrics */
	bool per_program; /* --audit or --metrics: keep the per-program tables */
	struct audit audit;
	uint64_t evictions;
	uint64_t missed; /* drops.missed so far: a counter, it never goes down (run_collect_drops) */
	uint64_t write_errors; /* failed audit writes */
	uint64_t last_harvest_ns;
	uint32_t ended_unread; /* end notices since the last harvest */
	/* the outputs, in the order they start; they finish in the reverse order */
	struct sink *sinks[RUN_SINKS_MAX];
	unsigned int nsinks;
};

/* Set by SIGINT and SIGTERM, or by a failed write of a line: the loop ends. */
extern volatile sig_atomic_t run_exiting;
/* Set by SIGINT and SIGTERM. Once tracing (run_exit_deadline), a write of the output still
 * blocked RUN_EXIT_WRITE_S seconds after the first (its reader stopped reading: a stuck
 * pipeline, a FIFO nobody reads), or blocking later, is interrupted (EINTR) by SIGALRM, every
 * second from then on, and the output given up, so that dstrace ends whoever reads it. */
extern volatile sig_atomic_t run_signalled;
#define RUN_EXIT_WRITE_S 5
/* Set by SIGHUP: the output file is to be reopened (logrotate moved it away). */
extern volatile sig_atomic_t run_reopen_requested;

/* SIGINT, SIGTERM, SIGHUP and SIGALRM handled (run_signalled); SIGPIPE ignored. */
void run_signals(void);
/* Tracing began: a signal to end, now or since the start, arms the deadline of
 * run_signalled (not before: SIGALRM would interrupt the loading of the BPF side). */
void run_exit_deadline(void);
/* Why a write of the output failed with err (an errno): said as strerror() does, but for one
 * a signal to end interrupted (run_signalled). */
const char *run_write_error(int err);
uint64_t run_clock_ns(clockid_t clk);

/* Write one line; remember the first error, which ends the run (the lines not written from
 * then on counted in lines_unwritten, with those the failed flush held). Lines are flushed by
 * run_flush_lines() once the records at hand are written: at once, but one write() for a
 * burst of events rather than one each. */
void run_emit_line(struct run *r, const char *line);
void run_flush_lines(struct run *r);
/* SIGHUP: logrotate moved the file away; append to a new one at the same path. If that
 * cannot be opened, say so and keep writing to the file we have (no record is thrown away).
 * True when a new file was opened. */
bool run_reopen(struct run *r);

/* The ring buffer's callback (ctx: the run): end notices, the tables, then every sink. */
int run_handle_event(void *ctx, void *data, size_t len);
/* Bring the tables up to date and free the kernel entries of processes that ended (at most
 * once a second unless forced, or sooner when many processes ended). */
void run_harvest(struct run *r, bool force);
/* Every drop counted, kernel and user space (the fields each mode has). */
void run_collect_drops(struct run *r, struct dstrace_drops *d);

#endif /* DSTRACE_RUN_H */
