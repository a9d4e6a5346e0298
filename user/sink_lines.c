// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The line outputs (sink.h): an event per line, as text (under a header) or JSON Lines (with
 * the container fields, from a per-cgroup cache), or with -i the process table every
 * interval. Each keeps the process table, and ends with it, the run's stats line and the
 * warnings on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backend.h"
#include "cgroupfs.h"
#include "container.h"
#include "format.h"
#include "sink.h"

#define EVENT_CONTAINER_CGROUPS 4096

struct sink_lines {
	struct sink sink;
	uint64_t next_interval_ns; /* -i: the next table */
	/* JSON events: container fields by cgroup id, each cgroup looked up once */
	struct container_cache *containers;
	char cgroup_root[512];
};

static struct sink_lines *lines_of(struct sink *s)
{
	return (struct sink_lines *)s;
}

static void container_path_of(void *ctx, uint64_t cgroup_id, uint32_t pid, char *path,
			      size_t size)
{
	struct sink_lines *l = ctx;

	dstrace_cgroup_path(l->cgroup_root, pid, cgroup_id, path, size);
}

/* The container members of a JSON event line, from the per-cgroup cache, inserted before
 * the line's closing brace (format.c writes the event; this adds what needs a lookup). */
static void add_container_members(struct sink_lines *l, const struct dstrace_event *e,
				  char *line, size_t size)
{
	const struct container_info *ci = container_cache__get(l->containers, e->cgroup_id, e->pid);
	size_t n = strlen(line);
	char members[256];
	int w;

	if (!n || line[n - 1] != '}')
		return;
	w = container_info_json(ci, members, sizeof(members));
	if (w <= 0 || (size_t)w >= sizeof(members) || n + 1 + (size_t)w + 1 > size)
		return;
	line[n - 1] = ',';
	memcpy(line + n, members, w);
	line[n + w] = '}';
	line[n + w + 1] = '\0';
}

/* Text events start under a header. */
static void text_begin(struct sink *s)
{
	char line[DSTRACE_LINE_MAX];

	dstrace_format_event_header(line, sizeof(line));
	run_emit_line(s->run, line);
	run_flush_lines(s->run);
}

static void text_event(struct sink *s, const struct dstrace_event *e)
{
	struct run *r = s->run;
	char line[DSTRACE_LINE_MAX];

	proc_table__add_event(&r->procs, e);
	dstrace_format_event_text(e, dstrace_clock_realtime(&r->clock, e->ts_ns), line,
				  sizeof(line));
	run_emit_line(r, line);
}

static void json_event(struct sink *s, const struct dstrace_event *e)
{
	struct run *r = s->run;
	char line[DSTRACE_LINE_MAX];

	proc_table__add_event(&r->procs, e);
	dstrace_format_event_json(e, dstrace_clock_realtime(&r->clock, e->ts_ns), line,
				  sizeof(line));
	if (lines_of(s)->containers)
		add_container_members(lines_of(s), e, line, sizeof(line));
	run_emit_line(r, line);
}

static void table_event(struct sink *s, const struct dstrace_event *e)
{
	proc_table__add_event(&s->run->procs, e);
}

/* The table starts with an empty line and, in text, the time (-i) and the header. */
static void print_table_header(struct run *r)
{
	char line[DSTRACE_LINE_MAX];

	if (r->env.interval_s) {
		time_t now = time(NULL);
		struct tm tm;
		char ts[16];

		localtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
		run_emit_line(r, "");
		run_emit_line(r, ts);
	} else {
		run_emit_line(r, "");
	}
	dstrace_format_proc_header(line, sizeof(line));
	run_emit_line(r, line);
}

static void print_proc(struct run *r, const struct proc_entry *p)
{
	char line[DSTRACE_LINE_MAX];

	if (r->env.json)
		dstrace_format_proc_json(p, line, sizeof(line));
	else
		dstrace_format_proc_text(p, line, sizeof(line));
	run_emit_line(r, line);
}

static void print_procs(struct run *r)
{
	run_harvest(r, true); /* the kernel's counts, into every table that wants them */
	proc_table__sort(&r->procs);
	if (!r->env.json)
		print_table_header(r);
	for (uint32_t i = 0; i < r->procs.nprocs; i++) {
		const struct proc_entry *p = &r->procs.procs[i];

		/* Processes with only TCP payload bytes (say, a child writing to a socket its
		 * parent accepted) have nothing for these columns. */
		if (!p->counts[DSTRACE_EV_CONNECT] && !p->counts[DSTRACE_EV_ACCEPT] &&
		    !p->counts[DSTRACE_EV_SEND] && !p->counts[DSTRACE_EV_RECV] && !p->failed)
			continue;
		print_proc(r, p);
	}
	/* ended processes that did not fit the table, summed: the totals stay whole */
	if (r->procs.others.comm[0])
		print_proc(r, &r->procs.others);
}

static void table_begin(struct sink *s)
{
	lines_of(s)->next_interval_ns = s->run->start_ns + s->run->env.interval_s * 1000000000ull;
}

static int table_interval(struct sink *s, uint64_t now)
{
	struct sink_lines *l = lines_of(s);

	if (now < l->next_interval_ns)
		return 0;
	print_procs(s->run);
	run_flush_lines(s->run);
	l->next_interval_ns += s->run->env.interval_s * 1000000000ull;
	return 0;
}

static void lines_tick(struct sink *s, uint64_t now)
{
	if (run_reopen_requested)
		run_reopen(s->run);
}

static void print_warnings(struct run *r, const struct run_stats *stats, uint64_t unseen)
{
	if (stats->lost)
		fprintf(stderr, "dstrace: warning: %llu events lost (ring buffer full); the "
				"per-process counts are complete (kept in the kernel), the event list "
				"is not: raise --ringbuf-kb\n",
			(unsigned long long)stats->lost);
	if (r->procs.peers_partial)
		fprintf(stderr, "dstrace: warning: PEERS is a lower bound for %u process(es): "
				"more than 65536 distinct peers each, or the kernel's table of "
				"(process, peer) pairs full\n",
			r->procs.peers_partial);
	if (stats->drops.stash_full)
		fprintf(stderr, "dstrace: warning: %llu calls not followed (too many in flight at "
				"once)\n",
			(unsigned long long)stats->drops.stash_full);
	if (stats->drops.recv_unknown)
		fprintf(stderr, "dstrace: warning: %llu datagrams read without an address whose "
				"source could not be told were not counted (see README, Limits)\n",
			(unsigned long long)stats->drops.recv_unknown);
	if (stats->drops.missed)
		fprintf(stderr, "dstrace: warning: the kernel skipped dstrace's programs %llu "
				"times (return probes out of room, recursion, or a state change "
				"it ran no program for): the counts are lower bounds\n",
			(unsigned long long)stats->drops.missed);
	if (unseen)
		fprintf(stderr, "dstrace: warning: %llu TCP connects whose outcome no program "
				"saw (most likely the kernel ran none for their socket's state "
				"change), counted in drops.missed when their socket was closed or "
				"connected again\n",
			(unsigned long long)unseen);
	if (stats->proc_full || r->procs.dropped)
		fprintf(stderr, "dstrace: warning: per-process table full: %llu updates "
				"not counted\n",
			(unsigned long long)(stats->proc_full + r->procs.dropped));
}

/* The process table, the run's stats line, then on stderr what went wrong or is missing. */
static int lines_finish(struct sink *s)
{
	struct run *r = s->run;
	uint64_t counters[DSTRACE_CNT_MAX] = {};
	struct run_stats stats = {};
	char line[DSTRACE_LINE_MAX];

	print_procs(r);
	dstrace_backend__counters(r->backend, counters);
	stats.backend = dstrace_backend__name(r->backend);
	stats.events = r->events_seen;
	stats.lost = counters[DSTRACE_CNT_LOST];
	stats.proc_full = counters[DSTRACE_CNT_PROC_FULL];
	run_collect_drops(r, &stats.drops);
	stats.duration_s = (run_clock_ns(CLOCK_MONOTONIC) - r->start_ns) / 1e9;
	stats.nblind = dstrace_backend__blind(r->backend, stats.blind, DSTRACE_BLIND_MAX);
	dstrace_backend__name_evictions(r->backend, &stats.names_evicted);
	if (r->env.json)
		dstrace_format_stats_json(&stats, line, sizeof(line));
	else
		dstrace_format_stats_text(&stats, line, sizeof(line));
	run_emit_line(r, line);
	run_flush_lines(r);

	if (r->write_errno && r->write_errno != EPIPE) {
		fprintf(stderr, "dstrace: cannot write output%s%s: %s: at most %llu lines not "
				"written\n",
			r->env.output ? " to " : "", r->env.output ? r->env.output : "",
			run_write_error(r->write_errno), (unsigned long long)r->lines_unwritten);
		return 1;
	}
	print_warnings(r, &stats, counters[DSTRACE_CNT_CONN_UNSEEN]);
	return 0;
}

/* JSON events: the container cache, once the BPF side is loaded. */
static int json_start(struct sink *s)
{
	struct sink_lines *l = lines_of(s);

	dstrace_find_cgroup2_quiet(l->cgroup_root, sizeof(l->cgroup_root));
	if (container_cache__new(EVENT_CONTAINER_CGROUPS, container_path_of, l, &l->containers)) {
		fprintf(stderr, "dstrace: out of memory for the container cache\n");
		return 1;
	}
	return 0;
}

static void lines_free(struct sink *s)
{
	container_cache__free(lines_of(s)->containers);
	free(s);
}

static const struct sink_ops text_ops = {
	.begin = text_begin,
	.event = text_event,
	.tick = lines_tick,
	.finish = lines_finish,
	.free = lines_free,
};

static const struct sink_ops json_ops = {
	.start = json_start,
	.event = json_event,
	.tick = lines_tick,
	.finish = lines_finish,
	.free = lines_free,
};

static const struct sink_ops table_ops = {
	.begin = table_begin,
	.event = table_event,
	.tick = lines_tick,
	.interval = table_interval,
	.finish = lines_finish,
	.free = lines_free,
};

int sink_lines_new(struct run *r, struct sink **out)
{
	const struct sink_ops *ops = &text_ops;

	if (r->env.interval_s)
		ops = &table_ops;
	else if (r->env.json)
		ops = &json_ops;
	*out = sink_alloc(r, ops, sizeof(struct sink_lines));
	return *out ? 0 : 1;
}
