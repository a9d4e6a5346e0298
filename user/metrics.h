/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A small single-threaded HTTP endpoint serving /metrics in the Prometheus text format. */
#ifndef DSTRACE_METRICS_H
#define DSTRACE_METRICS_H

#include <stdint.h>
#include <stdio.h>
#include "audit.h"

#define METRICS_COMM_MAX 100 /* distinct comm label values; the rest are comm="_other" */

struct metrics_totals {
	const char *version;
	const char *backend;
	uint64_t lost;
	uint64_t evictions;
	struct dstrace_drops drops;
	uint64_t write_errors; /* failed audit writes */
};

/* "ADDR:PORT", "[V6ADDR]:PORT", ":PORT" or "PORT" (127.0.0.1). Returns a listening,
 * non-blocking socket or a negative errno; *what says which step failed. */
int metrics_listen(const char *spec, const char **what);
/* The exposition of everything in a, grouped by comm. 0 or a negative errno. */
int metrics_render(const struct audit *a, const struct metrics_totals *t, FILE *out);
/* Answer every connection waiting on listen_fd (bounded time per client). */
void metrics_serve(int listen_fd, const struct audit *a, const struct metrics_totals *t);

#endif /* DSTRACE_METRICS_H */
