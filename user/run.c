// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What the output sinks of one run share (run.h): the signals, the output stream and its
 * reopening, the ring buffer's callback (end notices, the program and process tables, then
 * each sink's event), the harvest of the kernel's counts and the drops of every kind.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "backend.h"
#include "outfile.h"
#include "run.h"
#include "sink.h"

volatile sig_atomic_t run_exiting;
volatile sig_atomic_t run_signalled;
volatile sig_atomic_t run_reopen_requested;

/* So many processes ended since the last harvest: harvest now, not at the next second, so
 * that neither the kernel's queue of ended entries nor the table of processes followed fills
 * up however fast processes come and go. */
#define HARVEST_ENDED 1024

static volatile sig_atomic_t deadline_on; /* run_exit_deadline() was called */

static void sig_handler(int sig)
{
	if (sig == SIGHUP) {
		run_reopen_requested = 1;
		return;
	}
	/* the first signal to end, once tracing: a write still blocked RUN_EXIT_WRITE_S seconds
	 * later (a reader that stopped) is interrupted by SIGALRM, and again every second
	 * (stderr may block too) */
	if (sig == SIGALRM)
		alarm(1);
	else if (!run_signalled && deadline_on)
		alarm(RUN_EXIT_WRITE_S);
	run_signalled = 1;
	run_exiting = 1;
}

/* The signals restart a blocked call (a slow reader is waited for), but SIGALRM, which
 * interrupts it (a write of the output fails with EINTR, which ends it). */
void run_signals(void)
{
	struct sigaction sa = { .sa_handler = sig_handler };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void run_exit_deadline(void)
{
	deadline_on = 1;
	if (run_signalled)
		alarm(RUN_EXIT_WRITE_S);
}

const char *run_write_error(int err)
{
	if (err == EINTR && run_signalled)
		return "not being read: blocked when dstrace was told to end";
	return strerror(err);
}

uint64_t run_clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The first failed write: remembered, the run ends. A write that blocked until a signal to
 * end (EINTR) is not tried again: what the stream holds is let go, not flushed at exit,
 * which would block again. */
static void write_failed(struct run *r)
{
	r->write_errno = errno ? errno : EIO;
	r->lines_unwritten += r->lines_pending;
	r->lines_pending = 0;
	if (r->write_errno == EINTR)
		__fpurge(r->out);
	run_exiting = 1;
}

void run_emit_line(struct run *r, const char *line)
{
	if (r->write_errno) {
		r->lines_unwritten++;
		return;
	}
	errno = 0;
	r->lines_pending++;
	if (fputs(line, r->out) == EOF || fputc('\n', r->out) == EOF)
		write_failed(r);
}

void run_flush_lines(struct run *r)
{
	if (r->write_errno)
		return;
	errno = 0;
	if (fflush(r->out) == EOF)
		write_failed(r);
	else
		r->lines_pending = 0;
}

bool run_reopen(struct run *r)
{
	char why[256];
	FILE *f;

	run_reopen_requested = 0;
	/* the run ends: the last records go where the others went (an output given up is not
	 * opened again, which could block) */
	if (!r->env.output || run_exiting)
		return false;
	if (outfile_open(r->env.output, OUTFILE_APPEND, &f, why, sizeof(why))) {
		fprintf(stderr, "dstrace: cannot reopen output file '%s': %s; still writing to the "
				"file opened before, retrying every interval\n",
			r->env.output, why);
		r->reopen_pending = true;
		return false;
	}
	fclose(r->out);
	r->out = f;
	r->reopen_pending = false;
	return true;
}

/* Before an event reaches the program tables: for a process not followed yet (new, or the
 * program an exec() started: the kernel's end notice came first), the kernel's entry, so that
 * it is known with its executable (the kernel's record) and the event finds its program. Not
 * for the events of processes already followed (most of them). Ended entries are freed by
 * the next harvest. */
static void follow_process(struct run *r, const struct dstrace_event *e)
{
	struct dstrace_proc_stats st, old;
	uint64_t kid;

	/* A late connect outcome is of an entry that has ended (the one followed, or in the
	 * audit's late list): its entry, if its process is not followed yet. */
	if (e->flags & DSTRACE_F_LATE) {
		if (!dstrace_backend__proc_ended(r->backend, e->pid, e->entry_ns, &st))
			audit__follow_late(&r->audit, e->pid, &st);
		return;
	}
	if (!audit__wants_proc(&r->audit, e->pid, e->ts_ns, &kid) ||
	    dstrace_backend__proc_stats(r->backend, e->pid, e->ts_ns, &st))
		return;
	/* A newer entry than the one followed: that one ended (exec, exit): its last counts
	 * first, from where the kernel put it. */
	if (kid && st.first_ns > kid &&
	    !dstrace_backend__proc_ended(r->backend, e->pid, kid, &old))
		audit__add_proc(&r->audit, e->pid, &old);
	audit__add_proc(&r->audit, e->pid, &st);
}

int run_handle_event(void *ctx, void *data, size_t len)
{
	struct run *r = ctx;
	const struct dstrace_event *e = data;

	if (len < sizeof(*e))
		return 0;
	if (e->flags & DSTRACE_F_ENDED) { /* not an event: a process's entry ended */
		if (r->per_program)
			audit__proc_ending(&r->audit, e->pid, e->ts_ns);
		r->ended_unread++;
		return 0;
	}
	r->events_seen++;
	if (r->per_program) {
		follow_process(r, e);
		audit__add_event(&r->audit, e);
	}
	for (unsigned int i = 0; i < r->nsinks; i++)
		if (r->sinks[i]->ops->event)
			r->sinks[i]->ops->event(r->sinks[i], e);
	return 0;
}

void run_harvest(struct run *r, bool force)
{
	uint64_t now = run_clock_ns(CLOCK_MONOTONIC), evictions = 0;

	if (!force && now - r->last_harvest_ns < 1000000000ull && r->ended_unread < HARVEST_ENDED)
		return;
	r->last_harvest_ns = now;
	r->ended_unread = 0;
	/* Events first: a process's events must be read before its kernel record, which the
	 * harvest frees once the process has ended. */
	ring_buffer__consume(r->rb);
	dstrace_backend__sweep_calls(r->backend);
	dstrace_backend__sweep_connects(r->backend);
	dstrace_backend__sweep_inflight(r->backend);
	dstrace_backend__sweep_resolver(r->backend);
	if (!r->per_program) {
		dstrace_backend__read_procs(r->backend, &r->procs);
		return;
	}
	/* --metrics without --audit also prints the process table at the end */
	if (!dstrace_backend__harvest(r->backend, &r->audit, r->env.audit ? NULL : &r->procs,
				      &evictions) &&
	    evictions > r->evictions)
		r->evictions = evictions; /* a counter: it never goes down */
}

void run_collect_drops(struct run *r, struct dstrace_drops *d)
{
	uint64_t counters[DSTRACE_CNT_MAX] = {}, evictions = 0;

	memset(d, 0, sizeof(*d));
	dstrace_backend__counters(r->backend, counters);
	d->lost = counters[DSTRACE_CNT_LOST];
	d->proc_full = counters[DSTRACE_CNT_PROC_FULL];
	/* calls (connect, bind) and connects whose outcome could not be followed */
	d->stash_full = counters[DSTRACE_CNT_STASH_FULL] + counters[DSTRACE_CNT_CONN_FULL];
	d->recv_unknown = counters[DSTRACE_CNT_RECV_UNKNOWN];
	/* read from several kernel counters at once: a read that catches the kernel between two
	 * of them (a skipped state change not yet made up for) or fails is never taken back */
	if (!dstrace_backend__missed(r->backend, counters, &d->missed) && d->missed > r->missed)
		r->missed = d->missed;
	d->missed = r->missed;
	if (r->per_program) {
		audit__drops(&r->audit, d);
		d->flows_evicted = r->evictions;
	} else {
		if (!dstrace_backend__flow_evictions(r->backend, &evictions))
			d->flows_evicted = evictions;
		d->pids = r->procs.dropped;
		d->peers = r->procs.peers_partial;
	}
}
