/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Turning events and tables into text and JSON, and the one copy of the text helpers every
 * part of user space uses: event and protocol names, errno names, UTC time stamps, IPv4
 * addresses, UTF-8 checks, and each escaping rule (JSON strings, Prometheus label values,
 * printable ASCII). Pure functions: no I/O, unit-tested.
 */
#ifndef DSTRACE_FORMAT_H
#define DSTRACE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dstrace.h"
#include "aggregate.h"

#define DSTRACE_LINE_MAX 2048

const char *dstrace_event_name(unsigned int kind);
const char *dstrace_proto_name(unsigned int proto);
/* An event's protocol: its proto, or "mptcp" for an MPTCP connection. */
const char *dstrace_event_proto_name(const struct dstrace_event *e);
/* "ENETUNREACH" for -101; "E<n>" for an errno glibc does not name. */
const char *dstrace_errno_name(int negative_errno, char *buf, size_t size);

/* "2026-11-22T10:00:00.123456Z" */
void dstrace_format_ts(uint64_t realtime_ns, char *buf, size_t size);
/* sec (since the epoch) as "2026-11-22T10:00:00.123456Z" with usec, or "2026-11-22T10:00:00Z"
 * when usec < 0; false (buf untouched) if gmtime cannot say. */
bool dstrace_format_utc(int64_t sec, int usec, char *buf, size_t size);
/* IPv4 address (network order): "a.b.c.d" ("?" if buf is too small). */
void dstrace_format_ipv4(uint32_t addr, char *buf, size_t size);
/* IPv4 address (network order) as the application sees it: "::ffff:a.b.c.d:port". */
void dstrace_format_mapped(uint32_t addr, uint16_t port, char *buf, size_t size);
/* Length of the valid UTF-8 multi-byte sequence at s (at most avail bytes; RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0 (ASCII included). */
size_t dstrace_utf8_len(const unsigned char *s, size_t avail);
/* At most maxlen bytes of src (up to its NUL) into dst (size bytes, always terminated), each
 * byte outside printable ASCII as '?': for a terminal, or a message that must stay ASCII. */
void dstrace_ascii_safe(char *dst, size_t size, const char *src, size_t maxlen);
/* JSON string body with quotes, escaped: valid UTF-8 kept, other bytes and controls \u00XX
 * (report's JSON, written by jansson, has its own rule: see report/json.c). */
void dstrace_json_string(const char *s, size_t maxlen, char *buf, size_t size);

/* A label value as written: every byte of a comm may become \\xNN (5 bytes), plus the NUL. */
#define METRICS_LABEL_MAX (DSTRACE_COMM_LEN * 5 + 1)
/* A comm as a label value of the Prometheus text exposition format: backslash, double quote and
 * newline escaped (\\ \" \n), valid UTF-8 kept as it is, and each byte that is not part of
 * valid UTF-8 written as the four characters \xNN (in the exposition: \\xNN), so that
 * distinct comms stay distinct and the output stays UTF-8. out has METRICS_LABEL_MAX bytes. */
void metrics_label_value(const char *comm, char out[METRICS_LABEL_MAX]);

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
/* ["io_uring accepts",...]: what a backend cannot see (snprintf's contract). */
int dstrace_format_blind_json(const char *const *blind, int n, char *buf, size_t size);
int dstrace_format_stats_json(const struct run_stats *s, char *buf, size_t size);

#endif /* DSTRACE_FORMAT_H */
