/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the files of `dstrace report` share with each other and with nobody else. The public
 * side (struct report and its functions) is ../report.h. Data flows down the list:
 *
 *   read.c     lines in; jansson decodes each "audit" / "audit_run" record into a struct
 *              rec_ids + struct entry, or counts the line as malformed and says why
 *   index.c    the one hash index (over the items of an array) and the string interning
 *   fold.c     keeps the newest record of each (run, program), folds a program's runs
 *   verdict.c  per program: UDP replies, inbound ports, what the peers leave unlisted, the
 *              verdict sentences
 *   finish.c   report__new/free/finish: fold, derive, sort, the totals
 *   text.c, json.c   the two outputs
 *   main.c     the command line (argp)
 *   util.c     small helpers: saturating sums, growing arrays, time stamps, plurals
 */
#ifndef DSTRACE_REPORT_INTERNAL_H
#define DSTRACE_REPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "report.h"
#include "htab.h"

#define TS_UNKNOWN INT64_MIN
/* jansson's integers are signed 64-bit: no count read can exceed this, and sums stop here, so
 * the text and the JSON output always print the same number. */
#define COUNT_MAX ((uint64_t)INT64_MAX)
#define WHY_MAX 96
#define TS_BUF 96 /* fmt_ts output; more than it needs, for gcc's range analysis */
#define LIST_MAX 8 /* ports or peers named in one line of text or one verdict clause */

/* ------------------------------------------------------------------------ util.c */

uint64_t sat_add(uint64_t a, uint64_t b);
uint64_t sat_sub(uint64_t a, uint64_t b);
/* Grow *arr (of elem-sized items, capacity *cap) to hold need items. 0 or -ENOMEM. */
int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem);
const char *plural(uint64_t n, const char *one, const char *many);
/* "2026-11-22T10:00:00.000000Z" (any number of fraction digits, or none) to microseconds. */
bool parse_ts(const char *s, int64_t *us);
/* Microseconds to "2026-11-22T10:00:00.000000Z", or to seconds when !micro; "?" if unknown. */
void fmt_ts(int64_t us, bool micro, char *buf, size_t size);

/* ----------------------------------------------------------------------- index.c */

/* The items of one array, by their index: an htab whose slots hold index + 1. */
struct hindex {
	struct htab slots; /* at least twice n */
	uint32_t n;
	uint64_t *hashes; /* of item i */
	uint32_t hashes_cap;
};

typedef bool (*hindex_eq)(const void *items, uint32_t i, const void *key);

uint64_t hash_mix(uint64_t h, uint64_t v);
uint64_t hash_str(const char *s);
/* Index of the item equal to key, or UINT32_MAX. */
uint32_t hindex_find(const struct hindex *ix, uint64_t h, hindex_eq eq, const void *items,
		     const void *key);
/* Register item number ix->n (the caller appends it to its array) with hash h. */
int hindex_add(struct hindex *ix, uint64_t h);
void hindex_free(struct hindex *ix);

/* Every distinct string once: identity then compares pointers. */
struct strings {
	char **items;
	uint32_t cap;
	struct hindex ix;
};

/* The one copy of s; NULL when out of memory or past the table's bound. */
const char *intern(struct strings *st, const char *s);
void strings_free(struct strings *st);

/* ------------------------------------------------------------- records (read.c) */

/* A record's identity, pointing into the decoded line until interned. */
struct rec_ids {
	const char *host, *run, *backend, *exe, *cgroup, *comm, *container;
	const char *runtime, *pod_uid, *qos; /* NULL: unknown, or a record from before them */
	uint32_t uid;
	uint64_t netns;
};

/* The newest audit record of one (run, program). */
struct entry {
	uint32_t program, run;
	uint32_t next; /* next entry of the same program, 1-based; 0 ends the list */
	int64_t ts;
	uint64_t seq;
	const char *comm, *container;
	const char *runtime, *pod_uid, *qos;
	uint64_t pids;
	struct report_counts c;
	int64_t first_seen, last_seen;
	uint16_t *ports;
	uint32_t nports, ports_dropped;
	struct report_peer *peers;
	uint32_t npeers;
	uint64_t peers_dropped;
	struct report_errno *errnos;
	uint32_t nerrnos;
	uint64_t errnos_other;
	struct report_name *names;
	uint32_t nnames;
	uint64_t names_dropped;
	bool replies_counted; /* the record counts UDP replies apart (sent.udp_replies) */
};

/* The fields of an "audit_run" record, as read. */
struct run_rec {
	int64_t ts, started;
	DSTRACE_RUN_COUNTS(DSTRACE_RUN_COUNT_FIELD) /* events, lost, ... (schema.h) */
	struct report_drops drops; /* with write_errors */
	char blind[REPORT_BLIND_MAX][REPORT_BLIND_LEN];
	uint32_t nblind;
	bool final;
};

void entry_free_arrays(struct entry *e);

/* --------------------------------------------------------------------- private */

struct report_private {
	char *line;
	uint32_t line_cap;
	uint64_t seq; /* records read so far: input order */
	struct strings strings;
	uint32_t runs_cap, programs_cap, entries_cap;
	struct hindex runs_ix, programs_ix, entries_ix;
	struct entry *entries;
	bool finished;
};

/* ------------------------------------------------------------------------ fold.c */

/* Keep e (its arrays move into the table) if it is the newest of its (run, program). */
int fold_add_audit(struct report *r, struct rec_ids *ids, struct entry *e);
/* Keep rec as its run's audit_run record if it is the newest. */
int fold_add_run(struct report *r, struct rec_ids *ids, const struct run_rec *rec);
/* Sum one program's entries: counters, union of ports, merged peers and errnos. */
int fold_program(struct report *r, struct report_program *p);

/* --------------------------------------------------------------------- verdict.c */

/* Replies, inbound port groups, unlisted remainders, activity, depends, the sentences. */
int derive_program(struct report_program *p);
uint32_t count_peers(const struct report_program *p, uint8_t dir, uint8_t proto);
uint32_t count_groups(const struct report_program *p, uint8_t proto);
/* UDP datagrams it sent of its own: not its replies to peers that spoke first */
uint64_t udp_own_sends(const struct report_program *p);
/* What to do about a name reached over IPv4: its answer says which fix applies. */
const char *name_fix(const struct report_name *n);

/* ------------------------------------------------------------------------ text.c */

/* The warning lines, shared by the text report and (on stderr) the JSON one. */
void report_put_warnings(FILE *out, const struct report *r);

#endif /* DSTRACE_REPORT_INTERNAL_H */
