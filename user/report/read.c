// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report: reading. Owns the line reader and the decoding of one line with jansson
 * (strict: RFC 8259, duplicate keys rejected) into an "audit" record (struct rec_ids + struct
 * entry) or an "audit_run" record (struct run_rec), checked field by field against
 * docs/audit-format.md (the counters' keys: schema.h; the drops: drops.h). A line that is not
 * such a record is counted as malformed with the first reason, which names the field or
 * jansson's error and its byte; fold.c gets the rest.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dstrace.h"
#include "format.h"
#include "internal.h"
#include "schema.h"

/* Limits on the strings of a record; longer means malformed. */
#define HOST_LEN_MAX 255
#define RUN_LEN_MAX 255
#define PATH_LEN_MAX 4096
#define COMM_LEN_MAX 64
#define CONTAINER_LEN_MAX 128
#define BACKEND_LEN_MAX 32
#define TS_LEN_MAX 40
#define TYPE_LEN_MAX 32

static int bad(char *why, const char *what, const char *field)
{
	snprintf(why, WHY_MAX, "%s \"%s\"", what, field);
	return -EINVAL;
}

#define NEED(cond, field)                                          \
	do {                                                       \
		if (!(cond))                                       \
			return bad(why, "missing or invalid", field); \
	} while (0)

/* A JSON integer from 0 up (jansson's integers stop at 2^63-1). */
static bool as_u64(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = json_integer_value(v);
	return true;
}

static bool get_u64(const json_t *obj, const char *key, uint64_t *out)
{
	return as_u64(json_object_get(obj, key), out);
}

static bool as_str(const json_t *v, size_t max_len, const char **out)
{
	if (!json_is_string(v) || json_string_length(v) > max_len)
		return false;
	*out = json_string_value(v); /* no NUL inside: jansson refuses \u0000 */
	return true;
}

static bool get_str(const json_t *obj, const char *key, size_t max_len, const char **out)
{
	return as_str(json_object_get(obj, key), max_len, out);
}

static bool get_ts(const json_t *obj, const char *key, bool nullable, int64_t *out)
{
	const json_t *v = json_object_get(obj, key);
	const char *s;

	if (nullable && json_is_null(v)) {
		*out = TS_UNKNOWN;
		return true;
	}
	return as_str(v, TS_LEN_MAX, &s) && parse_ts(s, out);
}

/* The counters of an "audit" record (schema.h): where each goes in struct report_counts. */
static const size_t count_offsets[DSTRACE_AUDIT_COUNTS_N] = {
#define OFF(o, k, field, s) offsetof(struct report_counts, field),
	DSTRACE_AUDIT_COUNTS(OFF)
#undef OFF
};

/* Is this counter one that older records do not have (schema.h)? */
static bool count_later(const char *name)
{
	static const char *const later[] = { DSTRACE_AUDIT_COUNTS_LATER };

	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++)
		if (!strcmp(name, later[i]))
			return true;
	return false;
}

static int parse_counts(const json_t *root, struct report_counts *c, bool *all, char *why)
{
	*all = true;
	for (size_t i = 0; i < DSTRACE_AUDIT_COUNTS_N; i++) {
		const struct dstrace_count_key *f = &dstrace_audit_count_keys[i];
		const json_t *obj = json_object_get(root, f->obj);
		uint64_t *v = (uint64_t *)((char *)c + count_offsets[i]);

		if (!json_object_get(obj, f->key) && count_later(f->name)) {
			*v = 0; /* a record from before it */
			*all = false;
			continue;
		}
		NEED(get_u64(obj, f->key, v), f->name);
	}
	return 0;
}

static bool errno_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= REPORT_ERRNO_NAME_MAX)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

static int parse_errnos(const json_t *root, struct entry *e, char *why)
{
	json_t *by = json_object_get(json_object_get(root, "failed"), "by_errno");
	const char *name;
	json_t *v;

	NEED(json_is_object(by), "failed.by_errno");
	if (json_object_size(by)) {
		size_t n = json_object_size(by);

		e->errnos = calloc(n < REPORT_ERRNOS_MAX ? n : REPORT_ERRNOS_MAX, sizeof(*e->errnos));
		if (!e->errnos)
			return -ENOMEM;
	}
	json_object_foreach(by, name, v) { /* in the record's order: jansson keeps it */
		uint64_t count;

		NEED(as_u64(v, &count), "failed.by_errno");
		if (!strcmp(name, "other")) { /* errnos beyond dstrace's per-program table */
			e->errnos_other = sat_add(e->errnos_other, count);
			continue;
		}
		NEED(errno_name_ok(name), "failed.by_errno");
		if (e->nerrnos == REPORT_ERRNOS_MAX) {
			e->errnos_other = sat_add(e->errnos_other, count);
			continue;
		}
		strcpy(e->errnos[e->nerrnos].name, name);
		e->errnos[e->nerrnos++].count = count;
	}
	return 0;
}

static int parse_ports(const json_t *root, struct entry *e, char *why)
{
	json_t *a = json_object_get(root, "listen_ports"), *v;
	size_t i;

	NEED(json_is_array(a), "listen_ports");
	if (json_array_size(a)) {
		size_t n = json_array_size(a);

		e->ports = calloc(n < REPORT_PORTS_MAX ? n : REPORT_PORTS_MAX, sizeof(*e->ports));
		if (!e->ports)
			return -ENOMEM;
	}
	json_array_foreach(a, i, v) {
		uint64_t port;

		NEED(as_u64(v, &port) && port <= 65535, "listen_ports");
		if (!port) /* a listener whose port dstrace did not learn: says nothing */
			continue;
		if (e->nports == REPORT_PORTS_MAX)
			e->ports_dropped++;
		else
			e->ports[e->nports++] = port;
	}
	return 0;
}

static int parse_peer(const json_t *m, struct report_peer *p, char *why)
{
	const char *dir, *proto, *addr;
	uint64_t port;
	struct in_addr in;

	NEED(json_is_object(m), "peers");
	NEED(get_str(m, "dir", 3, &dir) && (!strcmp(dir, "in") || !strcmp(dir, "out")),
	     "peers.dir");
	NEED(get_str(m, "proto", 3, &proto) && (!strcmp(proto, "tcp") || !strcmp(proto, "udp")),
	     "peers.proto");
	NEED(get_str(m, "addr", 15, &addr) && inet_pton(AF_INET, addr, &in) == 1, "peers.addr");
	NEED(get_u64(m, "port", &port) && port <= 65535, "peers.port");
	NEED(get_u64(m, "count", &p->count), "peers.count");
	p->dir = !strcmp(dir, "in") ? REPORT_DIR_IN : REPORT_DIR_OUT;
	p->proto = !strcmp(proto, "tcp") ? DSTRACE_PROTO_TCP : DSTRACE_PROTO_UDP;
	p->addr = in.s_addr;
	p->port = port;
	return 0;
}

static int parse_peers(const json_t *root, struct entry *e, char *why)
{
	json_t *a = json_object_get(root, "peers"), *m;
	size_t i;
	int err;

	NEED(json_is_array(a), "peers");
	NEED(get_u64(root, "peers_dropped", &e->peers_dropped), "peers_dropped");
	if (json_array_size(a)) {
		size_t n = json_array_size(a);

		e->peers = calloc(n < REPORT_PEERS_MAX ? n : REPORT_PEERS_MAX, sizeof(*e->peers));
		if (!e->peers)
			return -ENOMEM;
	}
	json_array_foreach(a, i, m) {
		struct report_peer p = {};

		err = parse_peer(m, &p, why);
		if (err)
			return err;
		if (e->npeers == REPORT_PEERS_MAX)
			e->peers_dropped = sat_add(e->peers_dropped, 1);
		else
			e->peers[e->npeers++] = p;
	}
	return 0;
}

/* "names" (absent in records of older versions: none): [{"name":..,"answer":"a-only"|
 * "a+aaaa","mapped_by":"resolver"|"program","count":N,"failed":N}], "names_dropped". */
static int parse_name(const json_t *m, struct report_name *n, char *why)
{
	const char *name, *answer, *by;

	NEED(json_is_object(m), "names");
	/* bytes the writer escaped as \u00XX decode to two: up to twice the name's bytes */
	NEED(get_str(m, "name", 2 * (DSTRACE_NAME_LEN - 1), &name) && name[0], "names.name");
	NEED(get_str(m, "answer", 6, &answer) &&
		     (!strcmp(answer, "a-only") || !strcmp(answer, "a+aaaa")),
	     "names.answer");
	NEED(get_str(m, "mapped_by", 8, &by) && (!strcmp(by, "resolver") || !strcmp(by, "program")),
	     "names.mapped_by");
	NEED(get_u64(m, "count", &n->count), "names.count");
	NEED(get_u64(m, "failed", &n->failed) && n->failed <= n->count, "names.failed");
	NEED(!json_object_get(m, "fallbacks") ||
		     (get_u64(m, "fallbacks", &n->fallbacks) && n->fallbacks <= n->count),
	     "names.fallbacks");
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->flags = (!strcmp(answer, "a+aaaa") ? DSTRACE_NAME_AAAA : 0) |
		   (!strcmp(by, "resolver") ? DSTRACE_NAME_RESOLVER_MAPPED : 0);
	return 0;
}

static int parse_names(const json_t *root, struct entry *e, char *why)
{
	json_t *a = json_object_get(root, "names"), *m;
	size_t i, n;
	int err;

	if (!a)
		return 0;
	NEED(json_is_array(a), "names");
	NEED(get_u64(root, "names_dropped", &e->names_dropped), "names_dropped");
	n = json_array_size(a);
	if (n && !(e->names = calloc(n < REPORT_NAMES_MAX ? n : REPORT_NAMES_MAX, sizeof(*e->names))))
		return -ENOMEM;
	json_array_foreach(a, i, m) {
		struct report_name nm = {};

		err = parse_name(m, &nm, why);
		if (err)
			return err;
		if (e->nnames == REPORT_NAMES_MAX)
			e->names_dropped = sat_add(e->names_dropped, 1);
		else
			e->names[e->nnames++] = nm;
	}
	return 0;
}

/* The identity of an "audit" record: who ran what, where. */
static int parse_ids(const json_t *root, struct rec_ids *ids, struct entry *e, char *why)
{
	const json_t *container = json_object_get(root, "container");
	uint64_t uid;

	NEED(get_str(root, "run", RUN_LEN_MAX, &ids->run) && ids->run[0], "run");
	NEED(get_ts(root, "ts", false, &e->ts), "ts");
	NEED(get_str(root, "host", HOST_LEN_MAX, &ids->host), "host");
	NEED(get_str(root, "backend", BACKEND_LEN_MAX, &ids->backend), "backend");
	NEED(get_str(root, "exe", PATH_LEN_MAX, &ids->exe) && ids->exe[0], "exe");
	NEED(get_str(root, "comm", COMM_LEN_MAX, &ids->comm), "comm");
	NEED(get_u64(root, "uid", &uid) && uid <= UINT32_MAX, "uid");
	ids->uid = uid;
	/* null: dstrace could not read it (the process was gone) */
	ids->cgroup = json_is_null(json_object_get(root, "cgroup")) ? "" : NULL;
	NEED(ids->cgroup || get_str(root, "cgroup", PATH_LEN_MAX, &ids->cgroup), "cgroup");
	ids->container = NULL;
	NEED(json_is_null(container) || as_str(container, CONTAINER_LEN_MAX, &ids->container),
	     "container");
	/* runtime, pod_uid, qos: absent in records of older versions, null when unknown */
	{
		static const char *const names[] = { "runtime", "pod_uid", "qos" };
		const char **vals[] = { &ids->runtime, &ids->pod_uid, &ids->qos };

		for (int i = 0; i < 3; i++) {
			const json_t *n = json_object_get(root, names[i]);

			*vals[i] = NULL;
			NEED(!n || json_is_null(n) || as_str(n, CONTAINER_LEN_MAX, vals[i]), names[i]);
		}
	}
	NEED(get_u64(root, "netns", &ids->netns), "netns");
	return 0;
}

/* An "audit" record into ids and e (arrays allocated: the caller frees them). */
static int parse_audit(const json_t *root, struct rec_ids *ids, struct entry *e, char *why)
{
	int err = parse_ids(root, ids, e, why);

	if (err)
		return err;
	NEED(get_u64(root, "pids", &e->pids), "pids");
	NEED(get_ts(root, "first_seen", true, &e->first_seen), "first_seen");
	NEED(get_ts(root, "last_seen", true, &e->last_seen), "last_seen");
	err = parse_counts(root, &e->c, &e->replies_counted, why);
	if (!err)
		err = parse_errnos(root, e, why);
	if (!err)
		err = parse_ports(root, e, why);
	if (!err)
		err = parse_peers(root, e, why);
	if (!err)
		err = parse_names(root, e, why);
	return err;
}

/* "drops" and "write_errors": what dstrace itself dropped; absent (older dstrace) is 0. */
static int parse_drops(const json_t *root, struct report_drops *d, char *why)
{
	static const struct {
		const char *key, *name;
		size_t off;
	} fields[] = {
#define F(k) { #k, "drops." #k, offsetof(struct report_drops, k) },
		DSTRACE_DROPS(F)
#undef F
	};
	const json_t *drops = json_object_get(root, "drops");

	NEED(!drops || json_is_object(drops), "drops");
	for (size_t i = 0; drops && i < sizeof(fields) / sizeof(fields[0]); i++) {
		uint64_t *v = (uint64_t *)((char *)d + fields[i].off);

		NEED(!json_object_get(drops, fields[i].key) || get_u64(drops, fields[i].key, v),
		     fields[i].name);
	}
	NEED(!json_object_get(root, "write_errors") ||
		     get_u64(root, "write_errors", &d->write_errors),
	     "write_errors");
	return 0;
}

/* The counters of an "audit_run" record (schema.h): where each goes in struct run_rec. */
static const size_t run_count_offsets[DSTRACE_RUN_COUNTS_N] = {
#define OFF(k) offsetof(struct run_rec, k),
	DSTRACE_RUN_COUNTS(OFF)
#undef OFF
};

/* "blind": what the run's backend could not see on its kernel (absent before it: none). */
static int parse_blind(const json_t *root, struct run_rec *rec, char *why)
{
	const json_t *a = json_object_get(root, "blind"), *m;
	size_t i;

	if (!a)
		return 0;
	NEED(json_is_array(a) && json_array_size(a) <= REPORT_BLIND_MAX, "blind");
	json_array_foreach(a, i, m) {
		const char *s;

		NEED(as_str(m, REPORT_BLIND_LEN - 1, &s), "blind");
		snprintf(rec->blind[rec->nblind++], REPORT_BLIND_LEN, "%s", s);
	}
	return 0;
}

static int parse_run(const json_t *root, struct rec_ids *ids, struct run_rec *rec, char *why)
{
	int err;

	NEED(get_str(root, "run", RUN_LEN_MAX, &ids->run) && ids->run[0], "run");
	NEED(get_ts(root, "ts", false, &rec->ts), "ts");
	NEED(get_str(root, "host", HOST_LEN_MAX, &ids->host), "host");
	NEED(get_str(root, "backend", BACKEND_LEN_MAX, &ids->backend), "backend");
	NEED(get_ts(root, "started", false, &rec->started), "started");
	for (size_t i = 0; i < DSTRACE_RUN_COUNTS_N; i++)
		NEED(get_u64(root, dstrace_run_count_keys[i],
			     (uint64_t *)((char *)rec + run_count_offsets[i])),
		     dstrace_run_count_keys[i]);
	NEED(json_is_boolean(json_object_get(root, "final")), "final");
	rec->final = json_is_true(json_object_get(root, "final"));
	err = parse_blind(root, rec, why);
	return err ? err : parse_drops(root, &rec->drops, why);
}

static int malformed(struct report *r, const char *name, uint64_t line, const char *why)
{
	if (!r->malformed++) {
		r->first_malformed_file = strdup(name);
		if (!r->first_malformed_file)
			return -ENOMEM;
		r->first_malformed_line = line;
		snprintf(r->first_malformed_reason, sizeof(r->first_malformed_reason), "%s", why);
	}
	return 0;
}

/* jansson's message and position; the "near '...'" part quotes the input: printable ASCII
 * only, so that the reason is safe on a terminal and valid UTF-8 in JSON. */
static void not_json(const json_error_t *jerr, char *why)
{
	char text[64];

	dstrace_ascii_safe(text, sizeof(text), jerr->text, sizeof(text) - 1);
	snprintf(why, WHY_MAX, "not JSON (%s at byte %d)", text, jerr->position);
}

/* A record of type: kept, ignored (a type from a newer dstrace), or -EINVAL with why. */
static int add_record(struct report *r, const json_t *root, const char *type, char *why)
{
	struct rec_ids ids = {};
	struct entry e = {};
	struct run_rec rec = {};
	int err;

	e.seq = ++r->priv->seq;
	if (!strcmp(type, "audit_run")) {
		err = parse_run(root, &ids, &rec, why);
		if (!err) {
			r->run_records++;
			err = fold_add_run(r, &ids, &rec);
		}
		return err;
	}
	if (strcmp(type, "audit")) {
		r->ignored_records++;
		return 0;
	}
	err = parse_audit(root, &ids, &e, why);
	if (!err) {
		r->audit_records++;
		err = fold_add_audit(r, &ids, &e);
	}
	if (err)
		entry_free_arrays(&e);
	return err;
}

static int add_line(struct report *r, const char *name, uint64_t lineno, const char *line,
		    size_t len)
{
	json_error_t jerr;
	json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *type;
	char why[WHY_MAX];
	int err;

	if (!root) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return -ENOMEM;
		not_json(&jerr, why);
		return malformed(r, name, lineno, why);
	}
	if (!json_is_object(root))
		err = malformed(r, name, lineno, "not a JSON object");
	else if (!get_str(root, "type", TYPE_LEN_MAX, &type))
		err = malformed(r, name, lineno, "missing or invalid \"type\"");
	else if ((err = add_record(r, root, type, why)) == -EINVAL)
		err = malformed(r, name, lineno, why);
	json_decref(root);
	return err;
}

/* The next line, without its newline, in pv->line. 1, 0 at the end, or a negative errno. */
static int read_line(struct report_private *pv, FILE *in, size_t *len, bool *too_long,
		     bool *has_nul)
{
	bool any = false;
	size_t n = 0;
	int c;

	*too_long = *has_nul = false;
	while ((c = getc_unlocked(in)) != EOF) {
		any = true;
		if (c == '\n')
			break;
		if (c == '\0')
			*has_nul = true;
		if (n >= REPORT_LINE_MAX) {
			*too_long = true;
			continue;
		}
		if (grow((void **)&pv->line, &pv->line_cap, n + 2, 1))
			return -ENOMEM;
		pv->line[n++] = c;
	}
	if (ferror(in))
		return errno ? -errno : -EIO;
	if (!any)
		return 0;
	if (grow((void **)&pv->line, &pv->line_cap, n + 1, 1))
		return -ENOMEM;
	pv->line[n] = '\0';
	*len = n;
	return 1;
}

static int add_file_name(struct report *r, const char *name)
{
	char **files = realloc(r->files, (r->nfiles + 1) * sizeof(*files));

	if (!files)
		return -ENOMEM;
	r->files = files;
	r->files[r->nfiles] = strdup(name);
	if (!r->files[r->nfiles])
		return -ENOMEM;
	r->nfiles++;
	return 0;
}

int report__read(struct report *r, FILE *in, const char *name)
{
	struct report_private *pv = r->priv;
	uint64_t lineno = 0;
	int err;

	if (pv->finished)
		return -EINVAL;
	err = add_file_name(r, name);
	if (err)
		return err;
	name = strcmp(name, "-") ? name : "(stdin)";
	for (;;) {
		bool too_long, has_nul;
		size_t len = 0;

		errno = 0;
		err = read_line(pv, in, &len, &too_long, &has_nul);
		if (err <= 0)
			return err;
		lineno++;
		r->lines++;
		if (too_long)
			err = malformed(r, name, lineno, "line longer than 1 MiB");
		else if (has_nul)
			err = malformed(r, name, lineno, "NUL byte in line");
		else if (strspn(pv->line, " \t\r") == len)
			continue; /* blank */
		else
			err = add_line(r, name, lineno, pv->line, len);
		if (err)
			return err;
	}
}
