// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The metrics outputs (sink.h): --metrics, a snapshot of the exposition published to the
 * server's thread at most once a second (metrics.h); --metrics-file, the exposition written
 * to a file at start (where a failure ends the run), every interval and at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "metrics.h"
#include "sink.h"

struct sink_metrics {
	struct sink sink;
	/* --metrics */
	int listen_fd; /* the listener, until the server owns it */
	struct metrics_server *server;
	uint64_t last_publish_ns;
	/* --metrics-file */
	uint64_t next_file_ns;
	bool file_failing; /* said once on stderr; said again when it works */
};

static struct sink_metrics *metrics_of(struct sink *s)
{
	return (struct sink_metrics *)s;
}

/* The exposition of the tables as they are now (harvested at most once a second). */
static int render_metrics(struct run *r, char **buf, size_t *len)
{
	uint64_t counters[DSTRACE_CNT_MAX] = {};
	struct metrics_totals t = {
		.version = DSTRACE_VERSION,
		.backend = dstrace_backend__name(r->backend),
	};

	run_harvest(r, false);
	dstrace_backend__counters(r->backend, counters);
	t.lost = counters[DSTRACE_CNT_LOST];
	t.evictions = r->evictions + r->audit.programs_dropped + r->audit.pids_dropped;
	run_collect_drops(r, &t.drops);
	t.write_errors = r->write_errors;
	return metrics_render_buf(&r->audit, &t, buf, len);
}

/* The first snapshot (empty tables): a scrape always has something to read. */
static int server_start(struct sink *s)
{
	struct sink_metrics *m = metrics_of(s);
	struct run *r = s->run;
	char *buf;
	size_t len;
	int err;

	err = metrics_render_buf(&r->audit, &(struct metrics_totals){
		.version = DSTRACE_VERSION, .backend = dstrace_backend__name(r->backend) },
		&buf, &len);
	if (!err)
		err = metrics_server__new(m->listen_fd, buf, len, &m->server);
	m->listen_fd = -1; /* the server's now, whatever happened */
	if (err) {
		fprintf(stderr, "dstrace: cannot start the metrics server on %s: %s\n",
			r->env.metrics, strerror(-err));
		return 1;
	}
	return 0;
}

/* A new snapshot for the server's thread, at most once a second. Scrapes read the last one;
 * nothing here waits for a client. */
static void server_tick(struct sink *s, uint64_t now)
{
	struct sink_metrics *m = metrics_of(s);
	char *buf;
	size_t len;

	if (!m->server || now - m->last_publish_ns < 1000000000ull)
		return;
	m->last_publish_ns = now;
	if (!render_metrics(s->run, &buf, &len))
		metrics_server__publish(m->server, buf, len);
}

static void metrics_free(struct sink *s)
{
	struct sink_metrics *m = metrics_of(s);

	metrics_server__free(m->server);
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	free(m);
}

static const struct sink_ops server_ops = {
	.start = server_start,
	.tick = server_tick,
	.free = metrics_free,
};

static int metrics_new(struct run *r, const struct sink_ops *ops, struct sink **out)
{
	struct sink_metrics *m = sink_alloc(r, ops, sizeof(*m));

	if (!m)
		return 1;
	m->listen_fd = -1;
	*out = &m->sink;
	return 0;
}

/* The listener now, before the BPF side is loaded: a wrong address ends the run at once. */
int sink_metrics_server_new(struct run *r, struct sink **out)
{
	struct sink_metrics *m;
	const char *what;
	int fd, status;

	fd = metrics_listen(r->env.metrics, &what);
	if (fd < 0) {
		bool parse = fd == -EINVAL && !strcmp(what, "parse");

		if (parse)
			fprintf(stderr, "dstrace: invalid --metrics '%s': expected ADDR:PORT\n",
				r->env.metrics);
		else
			fprintf(stderr, "dstrace: cannot %s %s for metrics: %s\n", what,
				r->env.metrics, strerror(-fd));
		return parse ? 2 : 1;
	}
	if (metrics_http_open(&what)) {
		fprintf(stderr, "dstrace: --metrics needs libmicrohttpd: %s\n", what);
		close(fd);
		return 1;
	}
	status = metrics_new(r, &server_ops, out);
	if (status) {
		close(fd);
		return status;
	}
	m = metrics_of(*out);
	m->listen_fd = fd;
	return 0;
}

static uint64_t file_period_ns(const struct run *r)
{
	return (r->env.interval_s ? r->env.interval_s : 10) * 1000000000ull;
}

static int write_metrics_file(struct sink_metrics *m, bool start)
{
	const char *path = m->sink.run->env.metrics_file;
	char *buf, why[256];
	size_t len;
	int err;

	err = render_metrics(m->sink.run, &buf, &len);
	if (!err) {
		err = metrics_file_write(path, buf, len, why, sizeof(why));
		free(buf);
	} else {
		snprintf(why, sizeof(why), "%s", strerror(-err));
	}
	if (err && (start || !m->file_failing))
		fprintf(stderr, "dstrace: cannot write metrics file '%s': %s%s\n", path, why,
			start ? "" : "; retrying every interval");
	else if (!err && m->file_failing)
		fprintf(stderr, "dstrace: metrics file '%s' written again\n", path);
	m->file_failing = err != 0;
	return err;
}

static int file_start(struct sink *s)
{
	return write_metrics_file(metrics_of(s), true) ? 1 : 0;
}

static void file_begin(struct sink *s)
{
	metrics_of(s)->next_file_ns = s->run->start_ns + file_period_ns(s->run);
}

static int file_interval(struct sink *s, uint64_t now)
{
	struct sink_metrics *m = metrics_of(s);

	if (now < m->next_file_ns)
		return 0;
	write_metrics_file(m, false);
	m->next_file_ns += file_period_ns(s->run);
	return 0;
}

/* The final numbers; a failure was said. */
static int file_finish(struct sink *s)
{
	run_harvest(s->run, true);
	write_metrics_file(metrics_of(s), false);
	return 0;
}

static const struct sink_ops file_ops = {
	.start = file_start,
	.begin = file_begin,
	.interval = file_interval,
	.finish = file_finish,
	.free = metrics_free,
};

int sink_metrics_file_new(struct run *r, struct sink **out)
{
	return metrics_new(r, &file_ops, out);
}
