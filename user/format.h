/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Turning events and tables into text and JSON. Pure functions: no I/O, unit-tested. */
#ifndef DSTRACE_FORMAT_H
#define DSTRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include "dstrace.h"
#include "aggregate.h"

#define DSTRACE_LINE_MAX 1024

const char *dstrace_event_name(unsigned int kind);
const char *dstrace_proto_name(unsigned int proto);
/* An event's protocol: its proto, or "mptcp" for an MPTCP connection. */
const char *dstrace_event_proto_name(const struct dstrace_event *e);
/* "ENETUNREACH" for -101; "E<n>" for an errno glibc does not name. */
const char *dstrace_errno_name(int negative_errno, char *buf, size_t size);

/* "2026-11-22T10:00:00.123456Z" */
void dstrace_format_ts(uint64_t realtime_ns, char *buf, size_t size);
/* IPv4 address (network order) as the application sees it: "::ffff:a.b.c.d:port". */
void dstrace_format_mapped(uint32_t addr, uint16_t port, char *buf, size_t size);
/* JSON string body with quotes, escaped. */
void dstrace_json_string(const char *s, size_t maxlen, char *buf, size_t size);

/* One line each, without the trailing newline. Return the length written. */
int dstrace_format_event_header(char *buf, size_t size);
int dstrace_format_event_text(const struct dstrace_event *e, uint64_t realtime_ns, char *buf,
			      size_t size);
int dstrace_format_event_json(const struct dstrace_event *e, uint64_t realtime_ns, char *buf,
			      size_t size);
int dstrace_format_proc_header(char *buf, size_t size);
int dstrace_format_proc_text(const struct proc_entry *p, char *buf, size_t size);
int dstrace_format_proc_json(const struct proc_entry *p, char *buf, size_t size);
int dstrace_format_stats_text(const struct run_stats *s, char *buf, size_t size);
int dstrace_format_stats_json(const struct run_stats *s, char *buf, size_t size);

#endif /* DSTRACE_FORMAT_H */
