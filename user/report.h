/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `dstrace report FILE...` (its files: user/report/, internal.h lists them): read audit
 * records (docs/audit-format.md), keep the last record of each (host, run, program), add up
 * a program's runs on its host, and say per program
 * what depends on IPv4 through mapped addresses and what would break without IPv4 or with
 * net.ipv6.bindv6only=1. Output: text, or one JSON document (docs/report-format.md).
 *
 *	struct report *r = report__new();
 *	report__read(r, stream, "audit.log");	 (once per input)
 *	report__finish(r);			 (fold, derive, sort)
 *	report__print_text(r, stdout);	 or report__print_json(r, stdout);
 *	report__free(r);
 *
 * Bounded: REPORT_PROGRAMS_MAX programs, REPORT_RUNS_MAX runs, REPORT_ENTRIES_MAX
 * (run, program) pairs, REPORT_PEERS_MAX peers and REPORT_PORTS_MAX listener ports per
 * program; what does not fit is counted and reported.
 */
#ifndef DSTRACE_REPORT_H
#define DSTRACE_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "drops.h"
#include "dstrace.h"
#include "schema.h"

#define REPORT_PROGRAMS_MAX 65536
#define REPORT_RUNS_MAX 65536
#define REPORT_ENTRIES_MAX 262144
#define REPORT_PEERS_MAX 1024
#define REPORT_NAMES_MAX 64
#define REPORT_BLIND_MAX 4 /* an audit_run's "blind" entries kept */
#define REPORT_BLIND_LEN 64 /* names per program (the audit keeps 8 per run) */
#define REPORT_PORTS_MAX 1024
#define REPORT_ERRNOS_MAX 64
#define REPORT_ERRNO_NAME_MAX 32 /* with the NUL */
#define REPORT_LINE_MAX (1u << 20) /* a longer line is malformed */

enum report_dir {
	REPORT_DIR_IN = 0,  /* accept, recv: port is the local port */
	REPORT_DIR_OUT = 1, /* connect, send: port is the remote port */
};

/* The counters of an audit record, and their sums: connect_tcp, connect_udp, accept_tcp,
 * sent_tcp_bytes, ..., failed (schema.h, DSTRACE_AUDIT_COUNTS). */
struct report_counts {
	DSTRACE_AUDIT_COUNTS(DSTRACE_AUDIT_COUNT_FIELD)
};

/* What dstrace's own tables and writer dropped, from the "drops" object and "write_errors"
 * of audit_run records (0 when a record from an older dstrace has none). */
struct report_drops {
	DSTRACE_DROPS(DSTRACE_DROP_FIELD) /* drops.h: lost, proc_full, ... */
	uint64_t write_errors;
};

/* The drops of d in drops.h's order; is any of them (or write_errors) non-zero? */
void report_drops_values(const struct report_drops *d, uint64_t out[DSTRACE_DROPS_N]);
bool report_drops_any(const struct report_drops *d);

struct report_peer {
	uint32_t addr; /* IPv4, network byte order */
	uint16_t port;
	uint8_t dir;   /* enum report_dir */
	uint8_t proto; /* DSTRACE_PROTO_TCP, DSTRACE_PROTO_UDP */
	bool reply;    /* "in" UDP from an address it also sends to: replies, not a service */
	uint64_t count; /* connections (TCP), datagrams (UDP) */
};

/* A name the program resolved and reached over IPv4 (the audit record's "names"). */
struct report_name {
	char name[DSTRACE_NAME_LEN];
	uint8_t flags;	 /* DSTRACE_NAME_AAAA, DSTRACE_NAME_RESOLVER_MAPPED */
	uint64_t count;	 /* mapped connects and UDP flows */
	uint64_t failed; /* of them, failed */
	uint64_t fallbacks; /* of them, after a failed IPv6 attempt (the starred cell) */
};

struct report_errno {
	char name[REPORT_ERRNO_NAME_MAX];
	uint64_t count;
};

/* Inbound traffic by local port: accepts on a TCP listener, datagrams to a UDP port. */
struct report_port_group {
	uint16_t port;
	uint8_t proto;
	uint64_t count;	 /* from the peers listed for this port */
	uint32_t npeers; /* distinct peer addresses listed */
	bool more_peers; /* the program's only port: count includes peers not listed, so
			  * npeers is a lower bound */
};

/* One program (host, exe, uid, cgroup, netns) with its runs on that host added up. */
struct report_program {
	const char *host, *exe, *cgroup;
	uint32_t uid;
	uint64_t netns;
	const char *comm;      /* of its latest record */
	const char *container; /* or NULL */
	const char *runtime, *pod_uid, *qos; /* of its latest record, or NULL */
	uint32_t runs;
	uint64_t pids_max;		/* most processes in one run */
	int64_t first_seen, last_seen;	/* microseconds since the epoch; INT64_MIN: unknown */
	struct report_counts c;
	struct report_errno *errnos;	/* by count, largest first */
	uint32_t nerrnos;
	uint64_t errnos_other;		/* failures under errno names beyond REPORT_ERRNOS_MAX */
	uint64_t enetunreach;
	uint16_t *ports; /* listen_ports of all runs, ascending */
	uint32_t nports;
	uint32_t ports_dropped;
	struct report_peer *peers; /* merged over runs, busiest first */
	uint32_t npeers;
	uint64_t peers_dropped;	/* the writer's peers_dropped, summed */
	uint64_t peers_capped;	/* merged peers beyond REPORT_PEERS_MAX */
	struct report_name *names; /* merged over runs, busiest first */
	uint32_t nnames;
	uint64_t names_dropped; /* the writer's names_dropped, summed, and those beyond
				 * REPORT_NAMES_MAX */

	/* Derived by report__finish(). */
	uint64_t activity; /* connections + datagrams, the sort key */
	uint64_t bytes;
	struct report_port_group *inbound; /* TCP then UDP, busiest first */
	uint32_t ninbound;
	/* received in answer to its own datagrams: the record's received.udp_replies, and (in
	 * records from before it) from peers it also sends to, on an ephemeral port */
	uint64_t udp_reply_datagrams;
	bool replies_counted; /* every record of it counts UDP replies apart (no guessing) */
	/* totals minus what the listed peers account for (peers beyond the top 16 of a run) */
	uint64_t in_tcp_unlisted, in_udp_unlisted, out_tcp_unlisted, out_udp_unlisted;
	bool depends;		/* any successful mapped activity */
	bool breaks_without_ipv4, breaks_with_bindv6only;
	bool show_netns; /* another program on this host differs only by netns */
	char *verdict_ipv4, *verdict_bindv6only, *verdict_failing; /* NULL: nothing to say */

	uint32_t first_entry; /* internal: its (run, program) entries, 1-based */
};

struct report_run {
	const char *host, *run, *backend;
	int64_t started; /* microseconds; INT64_MIN without an audit_run record */
	int64_t first_ts, last_ts; /* of its records */
	uint64_t audit_records;
	uint32_t programs_seen;
	bool have_run_record, final;
	/* its last audit_run: events, lost, evictions, programs, programs_dropped (schema.h) */
	DSTRACE_RUN_COUNTS(DSTRACE_RUN_COUNT_FIELD)
	struct report_drops drops; /* of that record too */
	char blind[REPORT_BLIND_MAX][REPORT_BLIND_LEN]; /* what its backend could not see there */
	uint32_t nblind;
	int64_t run_ts;	 /* internal: ts and input order of that record */
	uint64_t run_seq;
};

struct report_private;

struct report {
	/* Input. */
	char **files;
	uint32_t nfiles;
	uint64_t lines, audit_records, run_records, ignored_records;
	uint64_t malformed;
	char *first_malformed_file;
	uint64_t first_malformed_line;
	char first_malformed_reason[96];
	/* What this report had no room for (records skipped). */
	uint64_t over_programs, over_runs, over_entries;

	/* After report__finish(). */
	struct report_program *programs; /* most dependent first */
	uint32_t nprograms;
	struct report_run *runs; /* by host, then start */
	uint32_t nruns;
	const char **hosts; /* distinct, sorted */
	uint32_t nhosts;
	/* Sums over the last audit_run record of each run. */
	uint64_t lost, evictions, programs_dropped;
	struct report_drops drops;
	uint32_t runs_incomplete;   /* runs with any of those (or of drops) non-zero */
	uint32_t runs_without_final; /* no final audit_run: still running, or killed */
	/* The verdict in numbers. */
	uint32_t depending, depending_hosts, breaks_without_ipv4, breaks_with_bindv6only;
	uint32_t already_failing; /* programs with ENETUNREACH */
	int64_t first_ts, last_ts; /* earliest start or record, latest record; INT64_MIN if none */

	struct report_private *priv;
};

struct report *report__new(void);
void report__free(struct report *r);
/* Read every line of in; name is for messages ("-" prints as "(stdin)"). Malformed lines are
 * counted, not fatal. 0, or a negative errno when the stream cannot be read (or -ENOMEM). */
int report__read(struct report *r, FILE *in, const char *name);
/* Fold the runs into programs, derive the verdicts, sort. Once, after the last read. */
int report__finish(struct report *r);
/* 0, or -EIO when out could not be written. */
int report__print_text(const struct report *r, FILE *out);
int report__print_json(const struct report *r, FILE *out);

/* `dstrace report ...` with argv[0] == "report": 0, 1 (an input could not be read) or
 * 2 (usage). Writes the report to out and diagnostics to err. */
int dstrace_report_run(int argc, char **argv, FILE *out, FILE *err);
/* The same on stdout and stderr: what main() calls. */
int dstrace_report_main(int argc, char **argv);

#endif /* DSTRACE_REPORT_H */
