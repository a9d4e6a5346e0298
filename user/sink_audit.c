// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The audit output (sink.h, --audit): the program table as a set of audit records appended
 * to the output file every interval and at the end, each set whole or not at all; a failed
 * write is counted, said once per run of failures and retried with every program; the file
 * reopened on SIGHUP starts with every program.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit.h"
#include "backend.h"
#include "sink.h"

struct sink_audit {
	struct sink sink;
	uint64_t next_interval_ns;
	bool full;    /* the next set has every program: at start, after a failure, reopen */
	bool torn;    /* a failed write may have left a partial line: start with '\n' */
	bool failing; /* in a run of failed writes (said once on stderr) */
	bool given_up; /* a write blocked past the deadline to end (run.h, run_signalled) */
	uint64_t failed_since; /* failed writes in the current run of them */
};

static struct sink_audit *audit_of(struct sink *s)
{
	return (struct sink_audit *)s;
}

static const char *output_name(const struct run *r)
{
	return r->env.output ? r->env.output : "stdout";
}

/* The set (every program if full) and its audit_run record in memory first, then one write()
 * loop: it reaches the file whole or not at all (audit_write_batch), never as a torn line.
 * 0 or a negative errno; *torn: the file may end in a partial line. */
static int write_set(struct sink_audit *a, const struct audit_run_info *info, bool full,
		     bool *torn)
{
	struct run *r = a->sink.run;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;
	int err;

	mem = open_memstream(&buf, &len);
	if (!mem)
		return -errno;
	if (a->torn)
		fputc('\n', mem);
	err = audit__write(&r->audit, mem, info, full);
	if (fclose(mem) && err >= 0)
		err = -ENOMEM;
	if (err >= 0)
		err = audit_write_batch(fileno(r->out), buf, len, torn, &run_signalled);
	free(buf);
	return err;
}

static int write_audit(struct sink_audit *a, bool final)
{
	struct run *r = a->sink.run;
	uint64_t counters[DSTRACE_CNT_MAX] = {};
	struct audit_run_info info = {
		.write_errors = r->write_errors,
		.run_id = r->run_id,
		.host = r->host,
		.backend = dstrace_backend__name(r->backend),
		.started_realtime_ns = r->started_realtime_ns,
		.now_realtime_ns = run_clock_ns(CLOCK_REALTIME),
		.clock = &r->clock,
		.events = r->events_seen,
		.final = final,
	};
	bool torn = false;
	int err = -EINTR;

	/* none goes to a reader that stopped reading when the run was to end (nor is gathered) */
	if (!a->given_up) {
		run_harvest(r, true);
		dstrace_backend__counters(r->backend, counters);
		info.lost = counters[DSTRACE_CNT_LOST];
		info.evictions = r->evictions;
		run_collect_drops(r, &info.drops);
		info.nblind = dstrace_backend__blind(r->backend, info.blind, DSTRACE_BLIND_MAX);
		dstrace_backend__name_evictions(r->backend, &info.names_evicted);
		/* the final set has every program: it alone is the run's whole picture */
		err = write_set(a, &info, a->full || final, &torn);
	}
	if (err == -EINTR && run_signalled) {
		/* the run is ending: said once, by the final set's turn */
		a->given_up = true;
		if (!final)
			return 0;
	}
	if (err >= 0) {
		audit__written(&r->audit);
		a->full = a->torn = false;
		if (a->failing)
			fprintf(stderr, "dstrace: audit records written to %s again, after %llu failed "
					"writes; the sets are cumulative: nothing is missing\n",
				output_name(r), (unsigned long long)a->failed_since);
		a->failing = false;
		a->failed_since = 0;
		return 0;
	}
	/* Counted, said once per run of failures, retried next interval with every program. */
	r->write_errors++;
	a->failed_since++;
	a->full = true;
	a->torn = a->torn || torn;
	if (!a->failing || final)
		fprintf(stderr, "dstrace: cannot write audit records to %s: %s%s\n", output_name(r),
			run_write_error(-err), final ? "" : "; still tracing, retrying every interval");
	a->failing = true;
	return final ? err : 0;
}

/* A new file (SIGHUP, or the retry of a reopen that failed) starts with every program. */
static void reopen(struct sink_audit *a)
{
	if (!run_reopen(a->sink.run))
		return;
	a->full = true;
	a->torn = false;
	audit_repair_tail(fileno(a->sink.run->out));
}

static void audit_begin(struct sink *s)
{
	audit_of(s)->next_interval_ns = s->run->start_ns + s->run->env.interval_s * 1000000000ull;
}

static void audit_tick(struct sink *s, uint64_t now)
{
	if (run_reopen_requested)
		reopen(audit_of(s));
}

static int audit_interval(struct sink *s, uint64_t now)
{
	struct sink_audit *a = audit_of(s);

	if (now < a->next_interval_ns)
		return 0;
	if (s->run->reopen_pending)
		reopen(a);
	if (write_audit(a, false))
		return 1;
	a->next_interval_ns += s->run->env.interval_s * 1000000000ull;
	return 0;
}

static int audit_finish(struct sink *s)
{
	return write_audit(audit_of(s), true) ? 1 : 0;
}

static void audit_free(struct sink *s)
{
	free(s);
}

static const struct sink_ops audit_ops = {
	.begin = audit_begin,
	.tick = audit_tick,
	.interval = audit_interval,
	.finish = audit_finish,
	.free = audit_free,
};

int sink_audit_new(struct run *r, struct sink **out)
{
	struct sink_audit *a = sink_alloc(r, &audit_ops, sizeof(*a));

	if (!a)
		return 1;
	a->full = true; /* the first set has every program */
	audit_repair_tail(fileno(r->out)); /* a torn last line from an earlier run */
	*out = &a->sink;
	return 0;
}
