/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Prometheus metrics. The main loop renders the exposition of the audit tables into a byte
 * buffer and publishes it (at most once a second); an HTTP server (libmicrohttpd) on a thread
 * of its own answers every scrape from the last published buffer. Nothing the server or its
 * clients do can make the main loop wait: they share one mutex, held only to swap or copy the
 * buffer. The same exposition can go to a file for node_exporter's textfile collector.
 */
#ifndef DSTRACE_METRICS_H
#define DSTRACE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "audit.h"
#include "format.h"

/* The per-program series are labelled comm, runtime and qos (after their own labels):
 *   runtime  "docker", "containerd", "cri-o", "podman"; "unknown" for a container id whose
 *            runtime the cgroup path does not tell; "" outside containers
 *   qos      "guaranteed", "burstable", "besteffort" in a Kubernetes pod; "" outside pods
 * At most METRICS_COMM_MAX distinct (comm, runtime, qos) have series of their own; the rest
 * add to comm="_other" with their runtime and qos (at most 6 * 4 such buckets). The
 * container id and pod UID are never labels: unbounded. */
#define METRICS_COMM_MAX 100
#define METRICS_COMM_OTHER "_other"
#define METRICS_RUNTIME_UNKNOWN "unknown"

#define METRICS_CONN_MAX 32 /* HTTP connections at once; more are closed at accept */
#define METRICS_CONN_IDLE_S 5 /* a connection silent this long is closed */
#define METRICS_CONN_DEADLINE_S 10 /* no connection lives longer, however slowly it talks */

struct metrics_totals {
	const char *version;
	const char *backend;
	uint64_t lost;
	uint64_t evictions;
	struct dstrace_drops drops;
	uint64_t write_errors; /* failed audit writes */
};

/* "ADDR:PORT", "[V6ADDR]:PORT", ":PORT" or "PORT" (127.0.0.1). Returns a listening,
 * non-blocking socket or a negative errno; *what says which step failed ("parse" for a
 * malformed spec). */
int metrics_listen(const char *spec, const char **what);

/* The exposition of everything in a, summed per (comm, runtime, qos). 0 or a negative
 * errno. */
int metrics_render(const struct audit *a, const struct metrics_totals *t, FILE *out);
/* The same into a malloc'ed buffer (*buf, *len; the caller frees it). */
int metrics_render_buf(const struct audit *a, const struct metrics_totals *t, char **buf,
		       size_t *len);

/* --metrics-file: write body to PATH.tmp (opened as outfile_open does), then rename it to
 * path, so a reader sees the old file or the new one, never half of one. 0 or a negative
 * errno, with the reason in why ("PATH.tmp: <reason>" when PATH.tmp cannot be opened). */
int metrics_file_write(const char *path, const char *body, size_t len, char *why,
		       size_t why_size);

struct metrics_server;

/* Open libmicrohttpd, which the server needs (once; later calls say the same). 0, or -ELIBACC
 * with *why saying what is missing. */
int metrics_http_open(const char **why);

/* Serve GET /metrics on listen_fd (from metrics_listen; the server owns it from now on,
 * also on failure) from a thread of its own, answering with body (the server owns it).
 * 0 or a negative errno. */
int metrics_server__new(int listen_fd, char *body, size_t len, struct metrics_server **out);
/* Replace what scrapes get by body (the server owns it), and close connections older than
 * METRICS_CONN_DEADLINE_S. Never waits for a client. */
void metrics_server__publish(struct metrics_server *s, char *body, size_t len);
/* Scrapes answered so far (200 responses). */
uint64_t metrics_server__scrapes(struct metrics_server *s);
void metrics_server__free(struct metrics_server *s);

#endif /* DSTRACE_METRICS_H */
