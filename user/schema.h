/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one list of the counters of each audit record (docs/audit-format.md), in the order the
 * writer (audit.c) writes them, the report's reader (report/read.c) decodes them, its fold
 * (report/fold.c) keeps them and its JSON output (report/json.c) writes them again. A new
 * counter is one more X() here (and, for an "audit" counter, its source in the program
 * table); every list follows. drops.h is the same for the "drops" object.
 *
 * DSTRACE_AUDIT_COUNTS(X): the counters of an "audit" record, X(object, key, field, source):
 *   object, key  "object":{"key":N}; the rows of one object are adjacent: one JSON object
 *   field        the member of struct report_counts (report.h) that reads and sums it
 *   source       the member of struct audit_program (programs.h) it is written from
 * "failed" is last, and the list leaves it open: after its "total" each writer adds members
 * of its own (the record "by_errno"; the report "enetunreach", "by_errno", "other").
 *
 * DSTRACE_RUN_COUNTS(X): the counters of an "audit_run" record, X(key): the key, and the
 * member of struct run_rec (report/internal.h) and struct report_run (report.h) it goes to.
 */
#ifndef DSTRACE_SCHEMA_H
#define DSTRACE_SCHEMA_H

#include <stdint.h>

#define DSTRACE_AUDIT_COUNTS(X)                                                              \
	X(connect, tcp, connect_tcp, counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP])          \
	X(connect, udp, connect_udp, counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_UDP])          \
	X(accept, tcp, accept_tcp, counts[DSTRACE_EV_ACCEPT][DSTRACE_PROTO_TCP])             \
	X(sent, tcp_bytes, sent_tcp_bytes, bytes[DSTRACE_DIR_SENT][DSTRACE_PROTO_TCP])       \
	X(sent, udp_datagrams, sent_udp_datagrams, counts[DSTRACE_EV_SEND][DSTRACE_PROTO_UDP]) \
	X(sent, udp_bytes, sent_udp_bytes, bytes[DSTRACE_DIR_SENT][DSTRACE_PROTO_UDP])       \
	X(sent, udp_replies, sent_udp_replies, udp_replies[DSTRACE_DIR_SENT])                \
	X(received, tcp_bytes, recv_tcp_bytes, bytes[DSTRACE_DIR_RECEIVED][DSTRACE_PROTO_TCP]) \
	X(received, udp_datagrams, recv_udp_datagrams,                                       \
	  counts[DSTRACE_EV_RECV][DSTRACE_PROTO_UDP])                                        \
	X(received, udp_bytes, recv_udp_bytes, bytes[DSTRACE_DIR_RECEIVED][DSTRACE_PROTO_UDP]) \
	X(received, udp_replies, recv_udp_replies, udp_replies[DSTRACE_DIR_RECEIVED])        \
	X(failed, total, failed, failed)

/* The "audit" counters added after the format's first release (docs/audit-format.md): an
 * older record has none of them, and reads as 0 (report/read.c). */
#define DSTRACE_AUDIT_COUNTS_LATER "sent.udp_replies", "received.udp_replies"

#define DSTRACE_RUN_COUNTS(X) X(events) X(lost) X(evictions) X(programs) X(programs_dropped)

#define DSTRACE_SCHEMA_ONE_4(o, k, f, s) +1
#define DSTRACE_SCHEMA_ONE_1(k) +1
enum {
	DSTRACE_AUDIT_COUNTS_N = 0 DSTRACE_AUDIT_COUNTS(DSTRACE_SCHEMA_ONE_4),
	DSTRACE_RUN_COUNTS_N = 0 DSTRACE_RUN_COUNTS(DSTRACE_SCHEMA_ONE_1),
};

/* One uint64_t per counter, named for it (struct report_counts; struct run_rec, report_run). */
#define DSTRACE_AUDIT_COUNT_FIELD(o, k, field, s) uint64_t field;
#define DSTRACE_RUN_COUNT_FIELD(k) uint64_t k;

/* An "audit" counter's place in the record: "obj":{"key":N}. */
struct dstrace_count_key {
	const char *obj, *key;
	const char *name; /* "obj.key", for messages */
};

/* The keys, in order. */
extern const struct dstrace_count_key dstrace_audit_count_keys[DSTRACE_AUDIT_COUNTS_N];
extern const char *const dstrace_run_count_keys[DSTRACE_RUN_COUNTS_N];

#endif /* DSTRACE_SCHEMA_H */
