// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The sinks of a run (sink.h): which ones the command line asks for, and each hook called
 * on every sink that has it, in the order they were made (finish: the reverse).
 */
#include "sink.h"

#include <stdio.h>
#include <stdlib.h>

void *sink_alloc(struct run *r, const struct sink_ops *ops, size_t size)
{
	struct sink *s = calloc(1, size);

	if (!s) {
		fprintf(stderr, "dstrace: out of memory\n");
		return NULL;
	}
	s->ops = ops;
	s->run = r;
	return s;
}

typedef int (*sink_new_fn)(struct run *r, struct sink **out);

int sinks_new(struct run *r)
{
	sink_new_fn want[RUN_SINKS_MAX];
	unsigned int n = 0;
	int status;

	/* The output file: audit records or lines (events, or the table every interval). */
	want[n++] = r->env.audit ? sink_audit_new : sink_lines_new;
	if (r->env.metrics)
		want[n++] = sink_metrics_server_new;
	if (r->env.metrics_file)
		want[n++] = sink_metrics_file_new;
	for (unsigned int i = 0; i < n; i++) {
		status = want[i](r, &r->sinks[r->nsinks]);
		if (status)
			return status;
		r->nsinks++;
	}
	return 0;
}

int sinks_start(struct run *r)
{
	int status;

	for (unsigned int i = 0; i < r->nsinks; i++) {
		if (!r->sinks[i]->ops->start)
			continue;
		status = r->sinks[i]->ops->start(r->sinks[i]);
		if (status)
			return status;
	}
	return 0;
}

void sinks_begin(struct run *r)
{
	for (unsigned int i = 0; i < r->nsinks; i++)
		if (r->sinks[i]->ops->begin)
			r->sinks[i]->ops->begin(r->sinks[i]);
}

void sinks_tick(struct run *r, uint64_t now)
{
	for (unsigned int i = 0; i < r->nsinks; i++)
		if (r->sinks[i]->ops->tick)
			r->sinks[i]->ops->tick(r->sinks[i], now);
}

int sinks_interval(struct run *r, uint64_t now)
{
	for (unsigned int i = 0; i < r->nsinks; i++)
		if (r->sinks[i]->ops->interval && r->sinks[i]->ops->interval(r->sinks[i], now))
			return 1;
	return 0;
}

int sinks_finish(struct run *r)
{
	int status = 0, s;

	for (unsigned int i = r->nsinks; i-- > 0;) {
		if (!r->sinks[i]->ops->finish)
			continue;
		s = r->sinks[i]->ops->finish(r->sinks[i]);
		if (!status)
			status = s;
	}
	return status;
}

void sinks_free(struct run *r)
{
	for (unsigned int i = r->nsinks; i-- > 0;)
		r->sinks[i]->ops->free(r->sinks[i]);
	r->nsinks = 0;
}
