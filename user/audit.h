/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The audit writer: the program table (programs.h) as "audit" and "audit_run" JSON lines
 * (docs/audit-format.md), and the whole-or-nothing appends that put a set of them in the file.
 */
#ifndef DSTRACE_AUDIT_H
#define DSTRACE_AUDIT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "clock.h"
#include "programs.h"

struct audit_run_info {
	const char *run_id;
	const char *host;
	const char *backend;
	uint64_t started_realtime_ns;
	uint64_t now_realtime_ns;
	const struct dstrace_clock *clock; /* converts the programs' first_ns, last_ns */
	uint64_t events, lost, evictions;
	struct dstrace_drops drops; /* audit__drops() fills programs, pids, ports, peers */
	uint64_t write_errors; /* audit writes that failed so far */
	const char *blind[4]; /* what the backend cannot see on this kernel */
	int nblind;
	uint64_t names_evicted; /* (process, address) names the kernel's LRU forgot */
	bool final;
};

/* One "audit" line per program that changed since the last audit__written() (every program
 * if full), then one "audit_run" line (docs/audit-format.md). Returns the number of audit
 * lines, or a negative errno from the stream. */
int audit__write(const struct audit *a, FILE *out, const struct audit_run_info *run, bool full);
/* Append buf to the file fd (O_APPEND) with one write() loop: all of it, or, on error, the
 * file cut back to its size before (*torn: that failed too, the file may end in a partial
 * line). A write a signal interrupts is tried again, unless *stop is set then (-EINTR: a
 * reader that stopped reading is not waited for once the run is to end). 0 or a negative
 * errno. */
int audit_write_batch(int fd, const char *buf, size_t len, bool *torn,
		      const volatile sig_atomic_t *stop);
/* If the file fd does not end with a newline (a record torn by a crash or a full disk), add
 * one, so the next record starts on a line of its own. 0 or a negative errno. */
int audit_repair_tail(int fd);

#endif /* DSTRACE_AUDIT_H */
