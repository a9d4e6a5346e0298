// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report: from audit records to "what depends on IPv4 through mapped addresses".
 *
 * Counters in audit records are cumulative per run, so only the newest record of each
 * (host, run, program) counts: newest by its "ts", and among equal ts the one read last, so
 * that files given out of order (rotated logs) or twice still add up right. A program's
 * total on a host is the sum of those records over the host's runs.
 *
 * Strings (hosts, runs, paths) are interned: identity compares pointers.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dstrace.h"
#include "jsonparse.h"
#include "report.h"

#define TS_UNKNOWN INT64_MIN
#define INTERN_MAX (4u * REPORT_ENTRIES_MAX)
/* Linux's default net.ipv4.ip_local_port_range starts here: a UDP socket's local port at or
 * above it is most likely one the kernel picked for a client. */
#define EPHEMERAL_PORT_MIN 32768
#define LIST_MAX 8 /* ports or peers named in one line of text or one verdict clause */
#define WHY_MAX 96
#define TS_BUF 96 /* fmt_ts output; more than it needs, for gcc's range analysis */

/* Limits on the strings of a record; longer means malformed. */
#define HOST_LEN_MAX 255
#define RUN_LEN_MAX 255
#define PATH_LEN_MAX 4096
#define COMM_LEN_MAX 64
#define CONTAINER_LEN_MAX 128
#define BACKEND_LEN_MAX 32
#define TS_LEN_MAX 40

/* ---------------------------------------------------------------- small helpers */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static uint64_t hash_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	return h;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
	uint32_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*arr, (size_t)n * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void fmt_ipv4(uint32_t addr, char *buf, size_t size)
{
	struct in_addr in = { .s_addr = addr };

	if (!inet_ntop(AF_INET, &in, buf, size))
		snprintf(buf, size, "?");
}

static const char *proto_name(unsigned int proto)
{
	return proto == DSTRACE_PROTO_TCP ? "tcp" : "udp";
}

/* ------------------------------------------------------------------- time stamps */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned int m, unsigned int d)
{
	int64_t era;
	unsigned int yoe, doy, doe;

	y -= m <= 2;
	era = y / 400;
	yoe = (unsigned int)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, int n, unsigned int *out)
{
	unsigned int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* "2026-11-22T10:00:00.000000Z" (any number of fraction digits, or none) to microseconds. */
static bool parse_ts(const char *s, int64_t *us)
{
	unsigned int y, mo, d, h, mi, sec, frac = 0;
	int n = 0;

	if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) ||
	    s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return false;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	s += 19;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, n++) {
			if (n < 6)
				frac = frac * 10 + (*s - '0');
		}
		if (!n)
			return false;
		for (; n < 6; n++)
			frac *= 10;
	}
	if (strcmp(s, "Z"))
		return false;
	*us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000000) + frac;
	return true;
}

/* Microseconds to "2026-11-22T10:00:00.000000Z", or to seconds when !micro. */
static void fmt_ts(int64_t us, bool micro, char *buf, size_t size)
{
	time_t sec = us / 1000000;
	struct tm tm;

	if (us == TS_UNKNOWN || !gmtime_r(&sec, &tm)) {
		snprintf(buf, size, "?");
		return;
	}
	if (micro)
		snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(us % 1000000));
	else
		snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ------------------------------------------------------- hash index over an array */

/* Open addressing over the items of one array, by their index: slots hold index + 1. */
struct hindex {
	uint32_t *slots;
	uint32_t cap; /* a power of two, at least twice n */
	uint32_t n;
	uint64_t *hashes; /* of item i */
	uint32_t hashes_cap;
};

typedef bool (*hindex_eq)(const void *items, uint32_t i, const void *key);

/* Index of the item equal to key, or UINT32_MAX. */
static uint32_t hindex_find(const struct hindex *ix, uint64_t h, hindex_eq eq, const void *items,
			    const void *key)
{
	if (!ix->cap)
		return UINT32_MAX;
	for (uint32_t s = h & (ix->cap - 1);; s = (s + 1) & (ix->cap - 1)) {
		uint32_t i = ix->slots[s];

		if (!i)
			return UINT32_MAX;
		if (ix->hashes[i - 1] == h && eq(items, i - 1, key))
			return i - 1;
	}
}

static void hindex_place(uint32_t *slots, uint32_t cap, uint64_t h, uint32_t item)
{
	uint32_t s = h & (cap - 1);

	while (slots[s])
		s = (s + 1) & (cap - 1);
	slots[s] = item + 1;
}

/* Register item number ix->n (the caller appends it to its array) with hash h. */
static int hindex_add(struct hindex *ix, uint64_t h)
{
	if (grow((void **)&ix->hashes, &ix->hashes_cap, ix->n + 1, sizeof(*ix->hashes)))
		return -ENOMEM;
	if ((ix->n + 1) * 2 > ix->cap) {
		uint32_t cap = ix->cap ? ix->cap * 2 : 64;
		uint32_t *slots = calloc(cap, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		for (uint32_t i = 0; i < ix->n; i++)
			hindex_place(slots, cap, ix->hashes[i], i);
		free(ix->slots);
		ix->slots = slots;
		ix->cap = cap;
	}
	ix->hashes[ix->n] = h;
	hindex_place(ix->slots, ix->cap, h, ix->n);
	ix->n++;
	return 0;
}

static void hindex_free(struct hindex *ix)
{
	free(ix->slots);
	free(ix->hashes);
	memset(ix, 0, sizeof(*ix));
}

/* ----------------------------------------------------------------- private state */

/* The newest audit record of one (run, program). */
struct entry {
	uint32_t program, run;
	uint32_t next; /* next entry of the same program, 1-based; 0 ends the list */
	int64_t ts;
	uint64_t seq;
	const char *comm, *container;
	const char *runtime, *pod_uid, *qos; /* NULL: unknown, or a record from before them */
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
};

struct report_private {
	struct json_doc doc;
	char *line;
	uint32_t line_cap;
	uint64_t seq; /* records read so far: input order */
	char **strings;
	uint32_t strings_cap;
	struct hindex strings_ix;
	uint32_t runs_cap, programs_cap, entries_cap;
	struct hindex runs_ix, programs_ix, entries_ix;
	struct entry *entries;
	bool finished;
};

static void entry_free_arrays(struct entry *e)
{
	free(e->ports);
	free(e->peers);
	free(e->errnos);
	e->ports = NULL;
	e->peers = NULL;
	e->errnos = NULL;
}

struct report *report__new(void)
{
	struct report *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->priv = calloc(1, sizeof(*r->priv));
	if (!r->priv) {
		free(r);
		return NULL;
	}
	json_doc__init(&r->priv->doc);
	r->first_ts = r->last_ts = TS_UNKNOWN;
	return r;
}

void report__free(struct report *r)
{
	struct report_private *pv;

	if (!r)
		return;
	pv = r->priv;
	for (uint32_t i = 0; i < pv->entries_ix.n; i++)
		entry_free_arrays(&pv->entries[i]);
	free(pv->entries);
	for (uint32_t i = 0; i < pv->programs_ix.n; i++) {
		struct report_program *p = &r->programs[i];

		free(p->errnos);
		free(p->ports);
		free(p->peers);
		free(p->inbound);
		free(p->verdict_ipv4);
		free(p->verdict_bindv6only);
		free(p->verdict_failing);
	}
	free(r->programs);
	free(r->runs);
	free(r->hosts);
	for (uint32_t i = 0; i < pv->strings_ix.n; i++)
		free(pv->strings[i]);
	free(pv->strings);
	hindex_free(&pv->strings_ix);
	hindex_free(&pv->runs_ix);
	hindex_free(&pv->programs_ix);
	hindex_free(&pv->entries_ix);
	json_doc__free(&pv->doc);
	free(pv->line);
	free(pv);
	for (uint32_t i = 0; i < r->nfiles; i++)
		free(r->files[i]);
	free(r->files);
	free(r->first_malformed_file);
	free(r);
}

static bool string_eq(const void *items, uint32_t i, const void *key)
{
	return !strcmp(((char *const *)items)[i], key);
}

/* The one copy of s; NULL when out of memory or past INTERN_MAX strings. */
static const char *intern(struct report_private *pv, const char *s)
{
	uint64_t h = hash_str(s);
	uint32_t i = hindex_find(&pv->strings_ix, h, string_eq, pv->strings, s);
	char *copy;

	if (i != UINT32_MAX)
		return pv->strings[i];
	if (pv->strings_ix.n >= INTERN_MAX ||
	    grow((void **)&pv->strings, &pv->strings_cap, pv->strings_ix.n + 1,
		 sizeof(*pv->strings)))
		return NULL;
	copy = strdup(s);
	if (!copy)
		return NULL;
	if (hindex_add(&pv->strings_ix, h)) {
		free(copy);
		return NULL;
	}
	pv->strings[pv->strings_ix.n - 1] = copy;
	return copy;
}

/* ------------------------------------------------------------ reading a record */

/* A record's identity, pointing into the parsed line until interned. */
struct rec_ids {
	const char *host, *run, *backend, *exe, *cgroup, *comm, *container;
	const char *runtime, *pod_uid, *qos;
	uint32_t uid;
	uint64_t netns;
};

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

static bool get_u64(const struct json_doc *d, const struct json_node *obj, const char *key,
		    uint64_t *out)
{
	return json_uint64(d, json_get(d, obj, key), out);
}

static bool get_str(const struct json_doc *d, const struct json_node *obj, const char *key,
		    size_t max_len, const char **out)
{
	return json_string(d, json_get(d, obj, key), max_len, out);
}

static bool get_ts(const struct json_doc *d, const struct json_node *obj, const char *key,
		   bool nullable, int64_t *out)
{
	const struct json_node *n = json_get(d, obj, key);
	const char *s;

	if (nullable && json_is_null(n)) {
		*out = TS_UNKNOWN;
		return true;
	}
	return json_string(d, n, TS_LEN_MAX, &s) && parse_ts(s, out);
}

static bool errno_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= REPORT_ERRNO_NAME_MAX)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

static int parse_counts(const struct json_doc *d, const struct json_node *root,
			struct report_counts *c, char *why)
{
	const struct json_node *o;

	o = json_get(d, root, "connect");
	NEED(get_u64(d, o, "tcp", &c->connect_tcp), "connect.tcp");
	NEED(get_u64(d, o, "udp", &c->connect_udp), "connect.udp");
	o = json_get(d, root, "accept");
	NEED(get_u64(d, o, "tcp", &c->accept_tcp), "accept.tcp");
	o = json_get(d, root, "sent");
	NEED(get_u64(d, o, "tcp_bytes", &c->sent_tcp_bytes), "sent.tcp_bytes");
	NEED(get_u64(d, o, "udp_datagrams", &c->sent_udp_datagrams), "sent.udp_datagrams");
	NEED(get_u64(d, o, "udp_bytes", &c->sent_udp_bytes), "sent.udp_bytes");
	o = json_get(d, root, "received");
	NEED(get_u64(d, o, "tcp_bytes", &c->recv_tcp_bytes), "received.tcp_bytes");
	NEED(get_u64(d, o, "udp_datagrams", &c->recv_udp_datagrams), "received.udp_datagrams");
	NEED(get_u64(d, o, "udp_bytes", &c->recv_udp_bytes), "received.udp_bytes");
	o = json_get(d, root, "failed");
	NEED(get_u64(d, o, "total", &c->failed), "failed.total");
	return 0;
}

static int parse_errnos(const struct json_doc *d, const struct json_node *root, struct entry *e,
			char *why)
{
	const struct json_node *by = json_get(d, json_get(d, root, "failed"), "by_errno");

	NEED(by && by->kind == JSON_OBJECT, "failed.by_errno");
	if (by->count) {
		uint32_t n = by->count < REPORT_ERRNOS_MAX ? by->count : REPORT_ERRNOS_MAX;

		e->errnos = calloc(n, sizeof(*e->errnos));
		if (!e->errnos)
			return -ENOMEM;
	}
	for (const struct json_node *m = json_first(d, by); m; m = json_next(d, m)) {
		const char *name = json_key(d, m);
		uint64_t count;

		NEED(json_uint64(d, m, &count), "failed.by_errno");
		if (!strcmp(name, "other")) { /* errnos beyond dstrace's per-program table */
			e->errnos_other = sat_add(e->errnos_other, count);
			continue;
		}
		NEED(errno_name_ok(name), "failed.by_errno");
		for (uint32_t i = 0; i < e->nerrnos; i++) {
			if (!strcmp(e->errnos[i].name, name))
				return bad(why, "duplicate errno in", "failed.by_errno");
		}
		if (e->nerrnos == REPORT_ERRNOS_MAX) {
			e->errnos_other = sat_add(e->errnos_other, count);
			continue;
		}
		strcpy(e->errnos[e->nerrnos].name, name);
		e->errnos[e->nerrnos++].count = count;
	}
	return 0;
}

static int parse_ports(const struct json_doc *d, const struct json_node *root, struct entry *e,
		       char *why)
{
	const struct json_node *a = json_get(d, root, "listen_ports");

	NEED(a && a->kind == JSON_ARRAY, "listen_ports");
	if (a->count) {
		uint32_t n = a->count < REPORT_PORTS_MAX ? a->count : REPORT_PORTS_MAX;

		e->ports = calloc(n, sizeof(*e->ports));
		if (!e->ports)
			return -ENOMEM;
	}
	for (const struct json_node *m = json_first(d, a); m; m = json_next(d, m)) {
		uint64_t port;

		NEED(json_uint64(d, m, &port) && port <= 65535, "listen_ports");
		if (!port) /* a listener whose port dstrace did not learn: says nothing */
			continue;
		if (e->nports == REPORT_PORTS_MAX)
			e->ports_dropped++;
		else
			e->ports[e->nports++] = port;
	}
	return 0;
}

static int parse_peers(const struct json_doc *d, const struct json_node *root, struct entry *e,
		       char *why)
{
	const struct json_node *a = json_get(d, root, "peers");

	NEED(a && a->kind == JSON_ARRAY, "peers");
	NEED(get_u64(d, root, "peers_dropped", &e->peers_dropped), "peers_dropped");
	if (a->count) {
		uint32_t n = a->count < REPORT_PEERS_MAX ? a->count : REPORT_PEERS_MAX;

		e->peers = calloc(n, sizeof(*e->peers));
		if (!e->peers)
			return -ENOMEM;
	}
	for (const struct json_node *m = json_first(d, a); m; m = json_next(d, m)) {
		struct report_peer p = {};
		const char *dir, *proto, *addr;
		uint64_t port;
		struct in_addr in;

		NEED(m->kind == JSON_OBJECT, "peers");
		NEED(get_str(d, m, "dir", 3, &dir) && (!strcmp(dir, "in") || !strcmp(dir, "out")),
		     "peers.dir");
		NEED(get_str(d, m, "proto", 3, &proto) &&
			     (!strcmp(proto, "tcp") || !strcmp(proto, "udp")),
		     "peers.proto");
		NEED(get_str(d, m, "addr", 15, &addr) && inet_pton(AF_INET, addr, &in) == 1,
		     "peers.addr");
		NEED(get_u64(d, m, "port", &port) && port <= 65535, "peers.port");
		NEED(get_u64(d, m, "count", &p.count), "peers.count");
		p.dir = !strcmp(dir, "in") ? REPORT_DIR_IN : REPORT_DIR_OUT;
		p.proto = !strcmp(proto, "tcp") ? DSTRACE_PROTO_TCP : DSTRACE_PROTO_UDP;
		p.addr = in.s_addr;
		p.port = port;
		if (e->npeers == REPORT_PEERS_MAX)
			e->peers_dropped = sat_add(e->peers_dropped, 1);
		else
			e->peers[e->npeers++] = p;
	}
	return 0;
}

/* An "audit" record into ids and e (arrays allocated: the caller frees them). */
static int parse_audit(const struct json_doc *d, const struct json_node *root,
		       struct rec_ids *ids, struct entry *e, char *why)
{
	const struct json_node *container = json_get(d, root, "container");
	uint64_t uid;
	int err;

	NEED(get_str(d, root, "run", RUN_LEN_MAX, &ids->run) && ids->run[0], "run");
	NEED(get_ts(d, root, "ts", false, &e->ts), "ts");
	NEED(get_str(d, root, "host", HOST_LEN_MAX, &ids->host), "host");
	NEED(get_str(d, root, "backend", BACKEND_LEN_MAX, &ids->backend), "backend");
	NEED(get_str(d, root, "exe", PATH_LEN_MAX, &ids->exe) && ids->exe[0], "exe");
	NEED(get_str(d, root, "comm", COMM_LEN_MAX, &ids->comm), "comm");
	NEED(get_u64(d, root, "uid", &uid) && uid <= UINT32_MAX, "uid");
	ids->uid = uid;
	/* null: dstrace could not read it (the process was gone) */
	ids->cgroup = json_is_null(json_get(d, root, "cgroup")) ? "" : NULL;
	NEED(ids->cgroup || get_str(d, root, "cgroup", PATH_LEN_MAX, &ids->cgroup), "cgroup");
	ids->container = NULL;
	NEED(json_is_null(container) ||
		     json_string(d, container, CONTAINER_LEN_MAX, &ids->container),
	     "container");
	/* runtime, pod_uid, qos: absent in records of older versions, null when unknown */
	{
		static const char *const names[] = { "runtime", "pod_uid", "qos" };
		const char **vals[] = { &ids->runtime, &ids->pod_uid, &ids->qos };

		for (int i = 0; i < 3; i++) {
			const struct json_node *n = json_get(d, root, names[i]);

			*vals[i] = NULL;
			NEED(!n || json_is_null(n) || json_string(d, n, CONTAINER_LEN_MAX, vals[i]),
			     names[i]);
		}
	}
	NEED(get_u64(d, root, "netns", &ids->netns), "netns");
	NEED(get_u64(d, root, "pids", &e->pids), "pids");
	NEED(get_ts(d, root, "first_seen", true, &e->first_seen), "first_seen");
	NEED(get_ts(d, root, "last_seen", true, &e->last_seen), "last_seen");
	err = parse_counts(d, root, &e->c, why);
	if (!err)
		err = parse_errnos(d, root, e, why);
	if (!err)
		err = parse_ports(d, root, e, why);
	if (!err)
		err = parse_peers(d, root, e, why);
	return err;
}

struct run_key {
	const char *host, *run;
};

static bool run_eq(const void *items, uint32_t i, const void *key)
{
	const struct report_run *run = &((const struct report_run *)items)[i];
	const struct run_key *k = key;

	return run->host == k->host && run->run == k->run;
}

/* Find or add a run; NULL when full (counted) or out of memory (*oom). */
static struct report_run *get_run(struct report *r, const char *host, const char *run_id,
				  bool *oom)
{
	struct report_private *pv = r->priv;
	struct run_key k = { host, run_id };
	uint64_t h = hash_mix(hash_mix(0, (uintptr_t)host), (uintptr_t)run_id);
	uint32_t i = hindex_find(&pv->runs_ix, h, run_eq, r->runs, &k);
	struct report_run *run;

	if (i != UINT32_MAX)
		return &r->runs[i];
	if (pv->runs_ix.n >= REPORT_RUNS_MAX) {
		r->over_runs++;
		return NULL;
	}
	if (grow((void **)&r->runs, &pv->runs_cap, pv->runs_ix.n + 1, sizeof(*r->runs)) ||
	    hindex_add(&pv->runs_ix, h)) {
		*oom = true;
		return NULL;
	}
	run = &r->runs[pv->runs_ix.n - 1];
	memset(run, 0, sizeof(*run));
	run->host = host;
	run->run = run_id;
	run->started = run->first_ts = run->last_ts = run->run_ts = TS_UNKNOWN;
	return run;
}

static bool program_eq(const void *items, uint32_t i, const void *key)
{
	const struct report_program *p = &((const struct report_program *)items)[i];
	const struct rec_ids *k = key;

	return p->host == k->host && p->exe == k->exe && p->cgroup == k->cgroup &&
	       p->uid == k->uid && p->netns == k->netns;
}

static uint32_t get_program(struct report *r, const struct rec_ids *ids, bool *oom)
{
	struct report_private *pv = r->priv;
	uint64_t h = hash_mix(hash_mix(hash_mix(hash_mix(hash_mix(0, (uintptr_t)ids->host),
							   (uintptr_t)ids->exe),
						  (uintptr_t)ids->cgroup),
					 ids->uid),
				ids->netns);
	uint32_t i = hindex_find(&pv->programs_ix, h, program_eq, r->programs, ids);
	struct report_program *p;

	if (i != UINT32_MAX)
		return i;
	if (pv->programs_ix.n >= REPORT_PROGRAMS_MAX) {
		r->over_programs++;
		return UINT32_MAX;
	}
	if (grow((void **)&r->programs, &pv->programs_cap, pv->programs_ix.n + 1,
		 sizeof(*r->programs)) ||
	    hindex_add(&pv->programs_ix, h)) {
		*oom = true;
		return UINT32_MAX;
	}
	i = pv->programs_ix.n - 1;
	p = &r->programs[i];
	memset(p, 0, sizeof(*p));
	p->host = ids->host;
	p->exe = ids->exe;
	p->cgroup = ids->cgroup;
	p->uid = ids->uid;
	p->netns = ids->netns;
	return i;
}

struct entry_key {
	uint32_t program, run;
};

static bool entry_eq(const void *items, uint32_t i, const void *key)
{
	const struct entry *e = &((const struct entry *)items)[i];
	const struct entry_key *k = key;

	return e->program == k->program && e->run == k->run;
}

static bool newer(int64_t ts, uint64_t seq, int64_t old_ts, uint64_t old_seq)
{
	return ts > old_ts || (ts == old_ts && seq > old_seq);
}

static void note_ts(struct report *r, struct report_run *run, int64_t ts)
{
	if (r->first_ts == TS_UNKNOWN || ts < r->first_ts)
		r->first_ts = ts;
	if (r->last_ts == TS_UNKNOWN || ts > r->last_ts)
		r->last_ts = ts;
	if (run->first_ts == TS_UNKNOWN || ts < run->first_ts)
		run->first_ts = ts;
	if (run->last_ts == TS_UNKNOWN || ts > run->last_ts)
		run->last_ts = ts;
}

/* Interns the strings of ids in place; false when the string table is full (*oom set if it
 * was memory). */
static bool intern_ids(struct report *r, struct rec_ids *ids, bool audit)
{
	struct report_private *pv = r->priv;
	const char **fields[] = { &ids->host, &ids->run,     &ids->backend, &ids->exe,
				  &ids->cgroup, &ids->comm, &ids->container, &ids->runtime,
				  &ids->pod_uid, &ids->qos };
	uint32_t n = audit ? 10 : 3;

	for (uint32_t i = 0; i < n; i++) {
		if (!*fields[i])
			continue;
		*fields[i] = intern(pv, *fields[i]);
		if (!*fields[i])
			return false;
	}
	return true;
}

/* Keep e (its arrays move into the table) if it is the newest of its (run, program). */
static int add_audit(struct report *r, struct rec_ids *ids, struct entry *e)
{
	struct report_private *pv = r->priv;
	struct report_run *run;
	struct entry_key k;
	struct entry *old;
	bool oom = false;
	uint64_t h;
	uint32_t i;

	if (!intern_ids(r, ids, true)) {
		r->over_entries++;
		return 0;
	}
	run = get_run(r, ids->host, ids->run, &oom);
	if (!run)
		return oom ? -ENOMEM : 0;
	k.run = run - r->runs;
	k.program = get_program(r, ids, &oom);
	if (k.program == UINT32_MAX)
		return oom ? -ENOMEM : 0;
	run = &r->runs[k.run];
	run->audit_records++;
	note_ts(r, run, e->ts);
	if (!run->backend || !run->have_run_record)
		run->backend = ids->backend;

	e->program = k.program;
	e->run = k.run;
	e->comm = ids->comm;
	e->container = ids->container;
	e->runtime = ids->runtime;
	e->pod_uid = ids->pod_uid;
	e->qos = ids->qos;
	h = hash_mix(hash_mix(0, k.program), k.run);
	i = hindex_find(&pv->entries_ix, h, entry_eq, pv->entries, &k);
	if (i != UINT32_MAX) {
		old = &pv->entries[i];
		if (newer(e->ts, e->seq, old->ts, old->seq)) {
			entry_free_arrays(old);
			*old = *e;
		} else {
			entry_free_arrays(e);
		}
		return 0;
	}
	if (pv->entries_ix.n >= REPORT_ENTRIES_MAX) {
		r->over_entries++;
		entry_free_arrays(e);
		return 0;
	}
	if (grow((void **)&pv->entries, &pv->entries_cap, pv->entries_ix.n + 1,
		 sizeof(*pv->entries)) ||
	    hindex_add(&pv->entries_ix, h))
		return -ENOMEM;
	pv->entries[pv->entries_ix.n - 1] = *e;
	run->programs_seen++;
	return 0;
}

static int add_run_record(struct report *r, const struct json_doc *d,
			  const struct json_node *root, char *why)
{
	struct rec_ids ids = {};
	struct report_run *run, tmp = {};
	bool oom = false;
	int64_t ts;

	NEED(get_str(d, root, "run", RUN_LEN_MAX, &ids.run) && ids.run[0], "run");
	NEED(get_ts(d, root, "ts", false, &ts), "ts");
	NEED(get_str(d, root, "host", HOST_LEN_MAX, &ids.host), "host");
	NEED(get_str(d, root, "backend", BACKEND_LEN_MAX, &ids.backend), "backend");
	NEED(get_ts(d, root, "started", false, &tmp.started), "started");
	NEED(get_u64(d, root, "events", &tmp.events), "events");
	NEED(get_u64(d, root, "lost", &tmp.lost), "lost");
	NEED(get_u64(d, root, "evictions", &tmp.evictions), "evictions");
	NEED(get_u64(d, root, "programs", &tmp.programs), "programs");
	NEED(get_u64(d, root, "programs_dropped", &tmp.programs_dropped), "programs_dropped");
	NEED(json_bool(json_get(d, root, "final"), &tmp.final), "final");

	r->run_records++;
	if (!intern_ids(r, &ids, false)) {
		r->over_entries++;
		return 0;
	}
	run = get_run(r, ids.host, ids.run, &oom);
	if (!run)
		return oom ? -ENOMEM : 0;
	note_ts(r, run, ts);
	if (r->first_ts == TS_UNKNOWN || tmp.started < r->first_ts)
		r->first_ts = tmp.started; /* the audit covers the time since dstrace started */
	if (run->have_run_record && !newer(ts, r->priv->seq, run->run_ts, run->run_seq))
		return 0;
	run->have_run_record = true;
	run->run_ts = ts;
	run->run_seq = r->priv->seq;
	run->backend = ids.backend;
	run->started = tmp.started;
	run->events = tmp.events;
	run->lost = tmp.lost;
	run->evictions = tmp.evictions;
	run->programs = tmp.programs;
	run->programs_dropped = tmp.programs_dropped;
	run->final = tmp.final;
	return 0;
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

static int add_line(struct report *r, const char *name, uint64_t lineno, const char *line,
		    size_t len)
{
	struct report_private *pv = r->priv;
	const struct json_node *root;
	struct rec_ids ids = {};
	struct entry e = {};
	const char *type;
	char why[WHY_MAX];
	int err;

	err = json_doc__parse(&pv->doc, line, len);
	if (err == -ENOMEM)
		return err;
	if (err) {
		snprintf(why, sizeof(why), "not JSON (%s at byte %zu)",
			 pv->doc.error ? pv->doc.error : "too long", pv->doc.error_pos + 1);
		return malformed(r, name, lineno, why);
	}
	root = json_root(&pv->doc);
	if (root->kind != JSON_OBJECT)
		return malformed(r, name, lineno, "not a JSON object");
	if (!get_str(&pv->doc, root, "type", 32, &type))
		return malformed(r, name, lineno, "missing or invalid \"type\"");
	pv->seq++;
	if (!strcmp(type, "audit_run")) {
		err = add_run_record(r, &pv->doc, root, why);
		return err == -EINVAL ? malformed(r, name, lineno, why) : err;
	}
	if (strcmp(type, "audit")) {
		r->ignored_records++; /* a record type from a newer dstrace */
		return 0;
	}
	e.seq = pv->seq;
	err = parse_audit(&pv->doc, root, &ids, &e, why);
	if (err) {
		entry_free_arrays(&e);
		return err == -EINVAL ? malformed(r, name, lineno, why) : err;
	}
	r->audit_records++;
	err = add_audit(r, &ids, &e);
	if (err)
		entry_free_arrays(&e);
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

static const char *display_name(const char *name)
{
	return strcmp(name, "-") ? name : "(stdin)";
}

int report__read(struct report *r, FILE *in, const char *name)
{
	struct report_private *pv = r->priv;
	uint64_t lineno = 0;
	char **files;
	int err;

	if (pv->finished)
		return -EINVAL;
	files = realloc(r->files, (r->nfiles + 1) * sizeof(*files));
	if (!files)
		return -ENOMEM;
	r->files = files;
	r->files[r->nfiles] = strdup(name);
	if (!r->files[r->nfiles])
		return -ENOMEM;
	r->nfiles++;
	name = display_name(name);

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

/* -------------------------------------------------------- folding runs into programs */

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static int cmp_peer_key(const void *a, const void *b)
{
	const struct report_peer *x = a, *y = b;

	if (x->dir != y->dir)
		return x->dir - y->dir;
	if (x->proto != y->proto)
		return x->proto - y->proto;
	if (x->addr != y->addr)
		return ntohl(x->addr) < ntohl(y->addr) ? -1 : 1;
	return (int)x->port - (int)y->port;
}

static int cmp_peer_busiest(const void *a, const void *b)
{
	const struct report_peer *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return cmp_peer_key(a, b);
}

static int cmp_errno_name(const void *a, const void *b)
{
	return strcmp(((const struct report_errno *)a)->name, ((const struct report_errno *)b)->name);
}

static int cmp_errno_busiest(const void *a, const void *b)
{
	const struct report_errno *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void add_counts(struct report_counts *sum, const struct report_counts *c)
{
	sum->connect_tcp = sat_add(sum->connect_tcp, c->connect_tcp);
	sum->connect_udp = sat_add(sum->connect_udp, c->connect_udp);
	sum->accept_tcp = sat_add(sum->accept_tcp, c->accept_tcp);
	sum->sent_tcp_bytes = sat_add(sum->sent_tcp_bytes, c->sent_tcp_bytes);
	sum->sent_udp_datagrams = sat_add(sum->sent_udp_datagrams, c->sent_udp_datagrams);
	sum->sent_udp_bytes = sat_add(sum->sent_udp_bytes, c->sent_udp_bytes);
	sum->recv_tcp_bytes = sat_add(sum->recv_tcp_bytes, c->recv_tcp_bytes);
	sum->recv_udp_datagrams = sat_add(sum->recv_udp_datagrams, c->recv_udp_datagrams);
	sum->recv_udp_bytes = sat_add(sum->recv_udp_bytes, c->recv_udp_bytes);
	sum->failed = sat_add(sum->failed, c->failed);
}

/* Sum one program's entries: counters, union of ports, merged peers and errnos. */
static int fold_program(struct report *r, struct report_program *p)
{
	struct report_private *pv = r->priv;
	uint32_t nports = 0, npeers = 0, nerrnos = 0, n;
	const struct entry *latest = NULL;

	p->first_seen = p->last_seen = TS_UNKNOWN;
	for (uint32_t i = p->first_entry; i; i = pv->entries[i - 1].next) {
		const struct entry *e = &pv->entries[i - 1];

		p->runs++;
		if (!latest || newer(e->ts, e->seq, latest->ts, latest->seq))
			latest = e;
		add_counts(&p->c, &e->c);
		if (e->pids > p->pids_max)
			p->pids_max = e->pids;
		if (e->first_seen != TS_UNKNOWN &&
		    (p->first_seen == TS_UNKNOWN || e->first_seen < p->first_seen))
			p->first_seen = e->first_seen;
		if (e->last_seen != TS_UNKNOWN &&
		    (p->last_seen == TS_UNKNOWN || e->last_seen > p->last_seen))
			p->last_seen = e->last_seen;
		nports += e->nports;
		p->ports_dropped += e->ports_dropped;
		npeers += e->npeers;
		p->peers_dropped = sat_add(p->peers_dropped, e->peers_dropped);
		nerrnos += e->nerrnos;
		p->errnos_other = sat_add(p->errnos_other, e->errnos_other);
	}
	if (latest) {
		p->comm = latest->comm;
		p->container = latest->container;
		p->runtime = latest->runtime;
		p->pod_uid = latest->pod_uid;
		p->qos = latest->qos;
	}
	if (nports && !(p->ports = malloc(nports * sizeof(*p->ports))))
		return -ENOMEM;
	if (npeers && !(p->peers = malloc(npeers * sizeof(*p->peers))))
		return -ENOMEM;
	if (nerrnos && !(p->errnos = malloc(nerrnos * sizeof(*p->errnos))))
		return -ENOMEM;
	for (uint32_t i = p->first_entry; i; i = pv->entries[i - 1].next) {
		const struct entry *e = &pv->entries[i - 1];

		if (e->nports)
			memcpy(p->ports + p->nports, e->ports, e->nports * sizeof(*p->ports));
		p->nports += e->nports;
		if (e->npeers)
			memcpy(p->peers + p->npeers, e->peers, e->npeers * sizeof(*p->peers));
		p->npeers += e->npeers;
		if (e->nerrnos)
			memcpy(p->errnos + p->nerrnos, e->errnos, e->nerrnos * sizeof(*p->errnos));
		p->nerrnos += e->nerrnos;
	}

	/* Ports: union; keep the lowest REPORT_PORTS_MAX. */
	if (p->nports)
		qsort(p->ports, p->nports, sizeof(*p->ports), cmp_u16);
	n = 0;
	for (uint32_t i = 0; i < p->nports; i++) {
		if (n && p->ports[n - 1] == p->ports[i])
			continue;
		if (n == REPORT_PORTS_MAX) {
			p->ports_dropped++;
			continue;
		}
		p->ports[n++] = p->ports[i];
	}
	p->nports = n;

	/* Peers: the same peer in several runs adds up; keep the busiest REPORT_PEERS_MAX. */
	if (p->npeers)
		qsort(p->peers, p->npeers, sizeof(*p->peers), cmp_peer_key);
	n = 0;
	for (uint32_t i = 0; i < p->npeers; i++) {
		if (n && !cmp_peer_key(&p->peers[n - 1], &p->peers[i]))
			p->peers[n - 1].count = sat_add(p->peers[n - 1].count, p->peers[i].count);
		else
			p->peers[n++] = p->peers[i];
	}
	p->npeers = n;
	if (p->npeers)
		qsort(p->peers, p->npeers, sizeof(*p->peers), cmp_peer_busiest);
	if (p->npeers > REPORT_PEERS_MAX) {
		p->peers_capped = p->npeers - REPORT_PEERS_MAX;
		p->npeers = REPORT_PEERS_MAX;
	}

	/* Errnos: merged by name; the rarest beyond REPORT_ERRNOS_MAX go to "other". */
	if (p->nerrnos)
		qsort(p->errnos, p->nerrnos, sizeof(*p->errnos), cmp_errno_name);
	n = 0;
	for (uint32_t i = 0; i < p->nerrnos; i++) {
		if (n && !strcmp(p->errnos[n - 1].name, p->errnos[i].name))
			p->errnos[n - 1].count = sat_add(p->errnos[n - 1].count, p->errnos[i].count);
		else
			p->errnos[n++] = p->errnos[i];
	}
	p->nerrnos = n;
	if (p->nerrnos)
		qsort(p->errnos, p->nerrnos, sizeof(*p->errnos), cmp_errno_busiest);
	for (uint32_t i = REPORT_ERRNOS_MAX; i < p->nerrnos; i++)
		p->errnos_other = sat_add(p->errnos_other, p->errnos[i].count);
	if (p->nerrnos > REPORT_ERRNOS_MAX)
		p->nerrnos = REPORT_ERRNOS_MAX;
	for (uint32_t i = 0; i < p->nerrnos; i++) {
		if (!strcmp(p->errnos[i].name, "ENETUNREACH"))
			p->enetunreach = p->errnos[i].count;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_group(const void *a, const void *b)
{
	const struct report_port_group *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto - y->proto;
	return (int)x->port - (int)y->port;
}

static int cmp_group_busiest(const void *a, const void *b)
{
	const struct report_port_group *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto - y->proto;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return (int)x->port - (int)y->port;
}

static bool inbound_service(const struct report_peer *peer)
{
	return peer->dir == REPORT_DIR_IN && !peer->reply;
}

/* Mark UDP replies (datagrams from an address the program also sends to, arriving on an
 * ephemeral local port: a client's answers, not a service); group inbound traffic by local
 * port; work out what the listed peers do not account for. */
static int derive_traffic(struct report_program *p)
{
	uint64_t listed[2][2] = {}; /* [dir][proto] */
	uint32_t *out_udp = NULL, nout_udp = 0, ngroups = 0, n, single[2] = {}, groups_of[2] = {};
	struct report_port_group *g;

	for (uint32_t i = 0; i < p->npeers; i++) {
		if (p->peers[i].dir == REPORT_DIR_OUT && p->peers[i].proto == DSTRACE_PROTO_UDP)
			nout_udp++;
	}
	if (nout_udp && !(out_udp = malloc(nout_udp * sizeof(*out_udp))))
		return -ENOMEM;
	nout_udp = 0;
	for (uint32_t i = 0; i < p->npeers; i++) {
		if (p->peers[i].dir == REPORT_DIR_OUT && p->peers[i].proto == DSTRACE_PROTO_UDP)
			out_udp[nout_udp++] = p->peers[i].addr;
	}
	if (nout_udp)
		qsort(out_udp, nout_udp, sizeof(*out_udp), cmp_u32);
	for (uint32_t i = 0; i < p->npeers; i++) {
		struct report_peer *peer = &p->peers[i];

		listed[peer->dir][peer->proto] = sat_add(listed[peer->dir][peer->proto], peer->count);
		if (peer->dir == REPORT_DIR_IN && peer->proto == DSTRACE_PROTO_UDP &&
		    peer->port >= EPHEMERAL_PORT_MIN && nout_udp &&
		    bsearch(&peer->addr, out_udp, nout_udp, sizeof(*out_udp), cmp_u32)) {
			peer->reply = true;
			p->udp_reply_datagrams = sat_add(p->udp_reply_datagrams, peer->count);
		}
		if (inbound_service(peer))
			ngroups++;
	}
	free(out_udp);
	p->in_tcp_unlisted = sat_sub(p->c.accept_tcp, listed[REPORT_DIR_IN][DSTRACE_PROTO_TCP]);
	p->in_udp_unlisted =
		sat_sub(p->c.recv_udp_datagrams, listed[REPORT_DIR_IN][DSTRACE_PROTO_UDP]);
	p->out_tcp_unlisted = sat_sub(p->c.connect_tcp, listed[REPORT_DIR_OUT][DSTRACE_PROTO_TCP]);
	p->out_udp_unlisted =
		sat_sub(p->c.sent_udp_datagrams, listed[REPORT_DIR_OUT][DSTRACE_PROTO_UDP]);

	ngroups += p->nports;
	if (!ngroups)
		return 0;
	g = calloc(ngroups, sizeof(*g));
	if (!g)
		return -ENOMEM;
	n = 0;
	for (uint32_t i = 0; i < p->nports; i++)
		g[n++] = (struct report_port_group){ .port = p->ports[i], .proto = DSTRACE_PROTO_TCP };
	for (uint32_t i = 0; i < p->npeers; i++) {
		if (inbound_service(&p->peers[i]))
			g[n++] = (struct report_port_group){ .port = p->peers[i].port,
							     .proto = p->peers[i].proto,
							     .count = p->peers[i].count,
							     .npeers = 1 };
	}
	qsort(g, n, sizeof(*g), cmp_group);
	ngroups = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (ngroups && !cmp_group(&g[ngroups - 1], &g[i])) {
			g[ngroups - 1].count = sat_add(g[ngroups - 1].count, g[i].count);
			g[ngroups - 1].npeers += g[i].npeers;
		} else {
			g[ngroups++] = g[i];
		}
	}
	for (uint32_t i = 0; i < ngroups; i++) {
		groups_of[g[i].proto]++;
		single[g[i].proto] = i;
	}
	/* A program's only TCP port accepted all its IPv4 clients, listed or not. */
	if (groups_of[DSTRACE_PROTO_TCP] == 1 && p->in_tcp_unlisted) {
		g[single[DSTRACE_PROTO_TCP]].count =
			sat_add(g[single[DSTRACE_PROTO_TCP]].count, p->in_tcp_unlisted);
		g[single[DSTRACE_PROTO_TCP]].more_peers = true;
		p->in_tcp_unlisted = 0;
	}
	/* Likewise its only UDP port, unless some of what it received were replies. */
	if (groups_of[DSTRACE_PROTO_UDP] == 1 && p->in_udp_unlisted && !p->c.sent_udp_datagrams &&
	    !p->c.connect_udp && !p->udp_reply_datagrams) {
		g[single[DSTRACE_PROTO_UDP]].count =
			sat_add(g[single[DSTRACE_PROTO_UDP]].count, p->in_udp_unlisted);
		g[single[DSTRACE_PROTO_UDP]].more_peers = true;
		p->in_udp_unlisted = 0;
	}
	qsort(g, ngroups, sizeof(*g), cmp_group_busiest);
	p->inbound = g;
	p->ninbound = ngroups;
	return 0;
}

/* ----------------------------------------------------------------- verdict text */

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (!b->s || b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *s;

		while (cap < b->len + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
		va_start(ap, fmt);
		vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += n;
}

/* Before the i-th of n items of a list: ", " or " and ". */
static void sb_list_sep(struct sbuf *b, uint32_t i, uint32_t n)
{
	if (i)
		sb_printf(b, "%s", i + 1 == n ? " and " : ", ");
}

static void sb_clause(struct sbuf *b)
{
	if (b->len)
		sb_printf(b, "; ");
}

/* "port 8080 (5 connections from 2 peers)" */
static void sb_port_group(struct sbuf *b, const struct report_port_group *g, const char *one,
			  const char *many)
{
	if (g->port)
		sb_printf(b, "port %u", g->port);
	else
		sb_printf(b, "an unknown port");
	if (!g->count && !g->more_peers)
		return;
	sb_printf(b, " (%" PRIu64 " %s", g->count, plural(g->count, one, many));
	if (g->npeers)
		sb_printf(b, " from %s%u %s", g->more_peers ? "at least " : "", g->npeers,
			  plural(g->npeers, "peer", "peers"));
	sb_printf(b, ")");
}

static void sb_inbound(struct sbuf *b, const struct report_program *p, uint8_t proto,
		       const char *one, const char *many)
{
	uint32_t n = 0, shown = 0;
	uint64_t rest = 0;

	for (uint32_t i = 0; i < p->ninbound; i++)
		n += p->inbound[i].proto == proto;
	for (uint32_t i = 0; i < p->ninbound; i++) {
		const struct report_port_group *g = &p->inbound[i];

		if (g->proto != proto)
			continue;
		if (shown == LIST_MAX) {
			rest = sat_add(rest, g->count);
			continue;
		}
		sb_list_sep(b, shown, n > LIST_MAX ? LIST_MAX + 1 : n);
		sb_port_group(b, g, one, many);
		shown++;
	}
	if (n > LIST_MAX)
		sb_printf(b, " and %u more ports (%" PRIu64 " %s)", n - LIST_MAX, rest,
			  plural(rest, one, many));
}

/* "198.51.100.7:5432/tcp (3 connections), ..." for the outbound peers of proto. */
static void sb_outbound(struct sbuf *b, const struct report_program *p, uint8_t proto,
			uint64_t unlisted, const char *one, const char *many)
{
	uint32_t n = 0, shown = 0, parts;
	uint64_t rest = 0;
	char addr[INET_ADDRSTRLEN];

	for (uint32_t i = 0; i < p->npeers; i++)
		n += p->peers[i].dir == REPORT_DIR_OUT && p->peers[i].proto == proto;
	parts = (n > LIST_MAX ? LIST_MAX + 1 : n) + (unlisted ? 1 : 0);
	for (uint32_t i = 0; i < p->npeers; i++) {
		const struct report_peer *peer = &p->peers[i];

		if (peer->dir != REPORT_DIR_OUT || peer->proto != proto)
			continue;
		if (shown == LIST_MAX) {
			rest = sat_add(rest, peer->count);
			continue;
		}
		fmt_ipv4(peer->addr, addr, sizeof(addr));
		sb_list_sep(b, shown, parts);
		sb_printf(b, "%s:%u/%s (%" PRIu64 " %s)", addr, peer->port, proto_name(proto),
			  peer->count, plural(peer->count, one, many));
		shown++;
	}
	if (n > LIST_MAX) {
		sb_list_sep(b, shown++, parts);
		sb_printf(b, "%u more peers (%" PRIu64 " %s)", n - LIST_MAX, rest,
			  plural(rest, one, many));
	}
	if (unlisted) {
		sb_list_sep(b, shown, parts);
		sb_printf(b, "%speers not listed (%" PRIu64 " %s)", n ? "" : "IPv4 ", unlisted,
			  plural(unlisted, one, many));
	}
}

static uint32_t count_peers(const struct report_program *p, uint8_t dir, uint8_t proto)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->npeers; i++)
		n += p->peers[i].dir == dir && p->peers[i].proto == proto;
	return n;
}

static uint32_t count_groups(const struct report_program *p, uint8_t proto)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->ninbound; i++)
		n += p->inbound[i].proto == proto;
	return n;
}

/* What breaks for p: without IPv4 (v6only false) or with bindv6only=1 (v6only true). The
 * inbound side reads the same either way: a v6-only listener never sees IPv4 clients. */
static char *build_verdict(const struct report_program *p, bool v6only)
{
	uint32_t tcp_ports = count_groups(p, DSTRACE_PROTO_TCP);
	uint32_t udp_ports = count_groups(p, DSTRACE_PROTO_UDP);
	uint32_t out_tcp = count_peers(p, REPORT_DIR_OUT, DSTRACE_PROTO_TCP);
	uint32_t out_udp = count_peers(p, REPORT_DIR_OUT, DSTRACE_PROTO_UDP);
	bool udp_out = out_udp || p->c.sent_udp_datagrams || p->c.connect_udp;
	struct sbuf b = {};

	if (tcp_ports) {
		sb_printf(&b, "would stop accepting IPv4 clients on ");
		sb_inbound(&b, p, DSTRACE_PROTO_TCP, "connection", "connections");
		if (p->in_tcp_unlisted)
			sb_printf(&b, ", plus %" PRIu64 " %s from peers not listed",
				  p->in_tcp_unlisted,
				  plural(p->in_tcp_unlisted, "connection", "connections"));
	} else if (p->c.accept_tcp) {
		sb_printf(&b, "would stop accepting IPv4 clients (%" PRIu64 " %s)", p->c.accept_tcp,
			  plural(p->c.accept_tcp, "connection", "connections"));
	}
	if (udp_ports) {
		sb_clause(&b);
		sb_printf(&b, "would stop receiving IPv4 datagrams on UDP ");
		sb_inbound(&b, p, DSTRACE_PROTO_UDP, "datagram", "datagrams");
	} else if (p->in_udp_unlisted && !udp_out) {
		sb_clause(&b);
		sb_printf(&b, "would stop receiving IPv4 datagrams (%" PRIu64 " %s)",
			  p->in_udp_unlisted, plural(p->in_udp_unlisted, "datagram", "datagrams"));
	}
	if (out_tcp || p->out_tcp_unlisted) {
		sb_clause(&b);
		sb_printf(&b, "%s", v6only ? "would get ENETUNREACH connecting to " :
					     "could no longer connect to ");
		sb_outbound(&b, p, DSTRACE_PROTO_TCP, p->out_tcp_unlisted, "connection",
			    "connections");
	}
	if (out_udp || p->out_udp_unlisted) {
		sb_clause(&b);
		sb_printf(&b, "%s", v6only ? "would get ENETUNREACH sending to " :
					     "could no longer send to ");
		sb_outbound(&b, p, DSTRACE_PROTO_UDP, p->out_udp_unlisted, "datagram", "datagrams");
	} else if (p->c.connect_udp) {
		sb_clause(&b);
		sb_printf(&b, "%s (%" PRIu64 " %s)",
			  v6only ? "would get ENETUNREACH connecting UDP sockets to IPv4 peers" :
				   "could no longer connect UDP sockets to IPv4 peers",
			  p->c.connect_udp, plural(p->c.connect_udp, "connect", "connects"));
	}
	if ((p->c.sent_tcp_bytes || p->c.recv_tcp_bytes) && !p->c.connect_tcp &&
	    !p->c.accept_tcp && !tcp_ports && !out_tcp) {
		sb_clause(&b);
		sb_printf(&b,
			  "%s the mapped TCP connections it had open before the audit (%" PRIu64
			  " bytes sent, %" PRIu64 " received)",
			  v6only ? "could not reopen" : "would lose", p->c.sent_tcp_bytes,
			  p->c.recv_tcp_bytes);
	}
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

static char *build_failing(const struct report_program *p)
{
	struct sbuf b = {};

	if (!p->enetunreach)
		return NULL;
	sb_printf(&b,
		  "already fails: %" PRIu64 " mapped %s got ENETUNREACH (a v6-only socket, or no "
		  "IPv4 route)",
		  p->enetunreach, plural(p->enetunreach, "connect or send", "connects or sends"));
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

static int derive_program(struct report_program *p)
{
	int err = derive_traffic(p);

	if (err)
		return err;
	p->activity = sat_add(sat_add(sat_add(p->c.connect_tcp, p->c.connect_udp), p->c.accept_tcp),
			      sat_add(p->c.sent_udp_datagrams, p->c.recv_udp_datagrams));
	p->bytes = sat_add(sat_add(sat_add(p->c.sent_tcp_bytes, p->c.sent_udp_bytes),
				   p->c.recv_tcp_bytes),
			   p->c.recv_udp_bytes);
	p->depends = p->activity || p->bytes || p->npeers || p->nports;
	p->breaks_without_ipv4 = p->depends;
	p->breaks_with_bindv6only = p->depends;
	if (p->depends) {
		p->verdict_ipv4 = build_verdict(p, false);
		p->verdict_bindv6only = build_verdict(p, true);
		if (!p->verdict_ipv4 || !p->verdict_bindv6only)
			return -ENOMEM;
	}
	if (p->enetunreach && !(p->verdict_failing = build_failing(p)))
		return -ENOMEM;
	return 0;
}

/* Most dependent first; ties in a fixed order so the report is reproducible. */
static int cmp_program(const void *a, const void *b)
{
	const struct report_program *x = a, *y = b;
	int c;

	if (x->depends != y->depends)
		return x->depends ? -1 : 1;
	if (x->activity != y->activity)
		return x->activity > y->activity ? -1 : 1;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->c.failed != y->c.failed)
		return x->c.failed > y->c.failed ? -1 : 1;
	if ((c = strcmp(x->host, y->host)) || (c = strcmp(x->comm ? x->comm : "", y->comm ? y->comm : "")) ||
	    (c = strcmp(x->exe, y->exe)))
		return c;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	if ((c = strcmp(x->cgroup, y->cgroup)))
		return c;
	return x->netns < y->netns ? -1 : x->netns > y->netns;
}

/* Same host, exe, uid and cgroup: the label needs the netns to tell them apart. */
static int cmp_label(const void *a, const void *b)
{
	const struct report_program *x = *(struct report_program *const *)a;
	const struct report_program *y = *(struct report_program *const *)b;
	int c;

	if ((c = strcmp(x->host, y->host)) || (c = strcmp(x->exe, y->exe)) ||
	    (c = strcmp(x->cgroup, y->cgroup)))
		return c;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int mark_netns_labels(struct report *r)
{
	struct report_program **v;

	if (r->nprograms < 2)
		return 0;
	v = malloc(r->nprograms * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nprograms; i++)
		v[i] = &r->programs[i];
	qsort(v, r->nprograms, sizeof(*v), cmp_label);
	for (uint32_t i = 1; i < r->nprograms; i++) {
		if (!cmp_label(&v[i - 1], &v[i]))
			v[i - 1]->show_netns = v[i]->show_netns = true;
	}
	free(v);
	return 0;
}

static int cmp_run(const void *a, const void *b)
{
	const struct report_run *x = a, *y = b;
	int64_t tx = x->started != TS_UNKNOWN ? x->started : x->first_ts;
	int64_t ty = y->started != TS_UNKNOWN ? y->started : y->first_ts;
	int c = strcmp(x->host, y->host);

	if (c)
		return c;
	if (tx != ty)
		return tx < ty ? -1 : 1;
	return strcmp(x->run, y->run);
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int collect_hosts(struct report *r)
{
	uint32_t n = 0;

	if (!r->nruns)
		return 0;
	r->hosts = malloc(r->nruns * sizeof(*r->hosts));
	if (!r->hosts)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nruns; i++) /* runs are sorted by host */
		if (!n || r->hosts[n - 1] != r->runs[i].host)
			r->hosts[n++] = r->runs[i].host;
	qsort(r->hosts, n, sizeof(*r->hosts), cmp_str_ptr);
	r->nhosts = n;
	return 0;
}

int report__finish(struct report *r)
{
	struct report_private *pv = r->priv;
	int err;

	if (pv->finished)
		return -EINVAL;
	pv->finished = true;
	r->nprograms = pv->programs_ix.n;
	r->nruns = pv->runs_ix.n;

	/* Each program's entries, in input order. */
	for (uint32_t i = pv->entries_ix.n; i-- > 0;) {
		struct report_program *p = &r->programs[pv->entries[i].program];

		pv->entries[i].next = p->first_entry;
		p->first_entry = i + 1;
	}
	for (uint32_t i = 0; i < r->nprograms; i++) {
		err = fold_program(r, &r->programs[i]);
		if (!err)
			err = derive_program(&r->programs[i]);
		if (err)
			return err;
	}
	/* The entries are folded: free them now rather than hold two copies. */
	for (uint32_t i = 0; i < pv->entries_ix.n; i++)
		entry_free_arrays(&pv->entries[i]);

	err = mark_netns_labels(r);
	if (err)
		return err;
	if (r->nprograms)
		qsort(r->programs, r->nprograms, sizeof(*r->programs), cmp_program);
	if (r->nruns)
		qsort(r->runs, r->nruns, sizeof(*r->runs), cmp_run);
	err = collect_hosts(r);
	if (err)
		return err;

	for (uint32_t i = 0; i < r->nruns; i++) {
		const struct report_run *run = &r->runs[i];

		if (run->have_run_record) {
			r->lost = sat_add(r->lost, run->lost);
			r->evictions = sat_add(r->evictions, run->evictions);
			r->programs_dropped = sat_add(r->programs_dropped, run->programs_dropped);
			if (run->lost || run->evictions || run->programs_dropped)
				r->runs_incomplete++;
		}
		if (!run->have_run_record || !run->final)
			r->runs_without_final++;
	}
	for (uint32_t i = 0; i < r->nprograms; i++) {
		const struct report_program *p = &r->programs[i];

		r->depending += p->depends;
		r->breaks_without_ipv4 += p->breaks_without_ipv4;
		r->breaks_with_bindv6only += p->breaks_with_bindv6only;
		r->already_failing += p->enetunreach > 0;
	}
	/* Programs are sorted dependent first. */
	for (uint32_t h = 0; h < r->nhosts; h++) {
		for (uint32_t i = 0; i < r->nprograms && r->programs[i].depends; i++) {
			if (r->programs[i].host == r->hosts[h]) {
				r->depending_hosts++;
				break;
			}
		}
	}
	return 0;
}

/* --------------------------------------------------------------------- text */

/* Bytes of s, with control characters (C0, DEL, C1) as '?': input cannot forge lines or
 * send terminal escapes. */
static void put_safe(FILE *out, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	for (; *u; u++) {
		if (*u < 0x20 || *u == 0x7f) {
			fputc('?', out);
		} else if (u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f) {
			fputc('?', out);
			u++;
		} else {
			fputc(*u, out);
		}
	}
}

/* "nginx (/usr/sbin/nginx, uid 33, cgroup /system.slice/nginx.service) on web1" */
static void put_label(FILE *out, const struct report_program *p)
{
	put_safe(out, p->comm && p->comm[0] ? p->comm : "?");
	fputs(" (", out);
	put_safe(out, p->exe);
	fprintf(out, ", uid %u, cgroup ", p->uid);
	put_safe(out, p->cgroup[0] ? p->cgroup : "?");
	if (p->container) {
		fputs(", container ", out); /* the short id, as docker ps shows it */
		for (int i = 0; i < 12 && p->container[i]; i++)
			fputc((unsigned char)p->container[i] < 0x80 &&
				      (unsigned char)p->container[i] >= 0x20 ?
				      p->container[i] :
				      '?',
			      out);
	}
	if (p->show_netns)
		fprintf(out, ", netns %" PRIu64, p->netns);
	fputs(") on ", out);
	put_safe(out, p->host);
}

static void put_peer_list(FILE *out, const struct report_program *p, uint8_t dir, uint8_t proto,
			  int port, bool with_port)
{
	uint32_t shown = 0, n = 0;
	char addr[INET_ADDRSTRLEN];

	for (uint32_t i = 0; i < p->npeers; i++) {
		const struct report_peer *peer = &p->peers[i];

		if (peer->dir != dir || peer->proto != proto || (port >= 0 && peer->port != port) ||
		    (dir == REPORT_DIR_IN && proto == DSTRACE_PROTO_UDP && port >= 0 && peer->reply))
			continue;
		n++;
		if (shown == LIST_MAX)
			continue;
		fmt_ipv4(peer->addr, addr, sizeof(addr));
		fprintf(out, "%s%s", shown ? ", " : ": ", addr);
		if (with_port)
			fprintf(out, ":%u", peer->port);
		fprintf(out, " (%" PRIu64 ")", peer->count);
		shown++;
	}
	if (n > shown)
		fprintf(out, ", and %u more", n - shown);
}

/* " sent 11000 TCP bytes, 400 UDP bytes", nothing when both are 0. */
static void put_bytes(FILE *out, const char *what, uint64_t tcp, uint64_t udp)
{
	if (!tcp && !udp)
		return;
	fprintf(out, " %s", what);
	if (tcp)
		fprintf(out, " %" PRIu64 " TCP %s", tcp, plural(tcp, "byte", "bytes"));
	if (udp)
		fprintf(out, "%s %" PRIu64 " UDP %s", tcp ? "," : "", udp, plural(udp, "byte", "bytes"));
}

static void put_program(FILE *out, const struct report_program *p)
{
	char from[TS_BUF], to[TS_BUF];
	bool first = true;
	uint32_t n;

	put_label(out, p);
	fputc('\n', out);
	fmt_ts(p->first_seen, false, from, sizeof(from));
	fmt_ts(p->last_seen, false, to, sizeof(to));
	fprintf(out, "  seen      %s to %s, %u %s, up to %" PRIu64 " %s, netns %" PRIu64 "\n", from,
		to, p->runs, plural(p->runs, "run", "runs"), p->pids_max,
		plural(p->pids_max, "process", "processes"), p->netns);
	if (p->container) {
		fputs("  container ", out);
		put_safe(out, p->container);
		if (p->runtime) {
			fputs(" (", out);
			put_safe(out, p->runtime);
			fputc(')', out);
		}
		fputc('\n', out);
	}
	if (p->pod_uid) { /* "  pod       <uid> (besteffort)" */
		fputs("  pod       ", out);
		put_safe(out, p->pod_uid);
		if (p->qos) {
			fputs(" (", out);
			put_safe(out, p->qos);
			fputc(')', out);
		}
		fputc('\n', out);
	}

	for (uint32_t i = 0; i < p->ninbound; i++) {
		const struct report_port_group *g = &p->inbound[i];
		bool tcp = g->proto == DSTRACE_PROTO_TCP;

		fprintf(out, "  %-9s %s port ", first ? "inbound" : "", proto_name(g->proto));
		if (g->port)
			fprintf(out, "%u", g->port);
		else
			fputc('?', out); /* dstrace did not learn it */
		first = false;
		if (g->count || g->more_peers)
			fprintf(out, ": %" PRIu64 " %s", g->count,
				tcp ? plural(g->count, "connection", "connections") :
				      plural(g->count, "datagram", "datagrams"));
		if (g->npeers)
			fprintf(out, " from %s%u %s", g->more_peers ? "at least " : "", g->npeers,
				plural(g->npeers, "peer", "peers"));
		put_peer_list(out, p, REPORT_DIR_IN, g->proto, g->port, false);
		fputc('\n', out);
	}
	if (p->in_tcp_unlisted) {
		fprintf(out, "  %-9s tcp: %" PRIu64 " %s from peers not listed\n",
			first ? "inbound" : "", p->in_tcp_unlisted,
			plural(p->in_tcp_unlisted, "connection", "connections"));
		first = false;
	}

	first = true;
	n = count_peers(p, REPORT_DIR_OUT, DSTRACE_PROTO_TCP);
	if (p->c.connect_tcp || n) {
		fprintf(out, "  %-9s tcp connect: %" PRIu64 " %s", "outbound", p->c.connect_tcp,
			plural(p->c.connect_tcp, "connection", "connections"));
		if (n)
			fprintf(out, " to %u %s", n, plural(n, "peer", "peers"));
		put_peer_list(out, p, REPORT_DIR_OUT, DSTRACE_PROTO_TCP, -1, true);
		if (p->out_tcp_unlisted)
			fprintf(out, " (%" PRIu64 " to peers not listed)", p->out_tcp_unlisted);
		fputc('\n', out);
		first = false;
	}
	n = count_peers(p, REPORT_DIR_OUT, DSTRACE_PROTO_UDP);
	if (p->c.sent_udp_datagrams || p->c.connect_udp || n) {
		fprintf(out, "  %-9s udp send: %" PRIu64 " %s, %" PRIu64 " bytes",
			first ? "outbound" : "", p->c.sent_udp_datagrams,
			plural(p->c.sent_udp_datagrams, "datagram", "datagrams"),
			p->c.sent_udp_bytes);
		if (p->c.connect_udp)
			fprintf(out, ", %" PRIu64 " %s", p->c.connect_udp,
				plural(p->c.connect_udp, "connect", "connects"));
		if (n)
			fprintf(out, ", to %u %s", n, plural(n, "peer", "peers"));
		put_peer_list(out, p, REPORT_DIR_OUT, DSTRACE_PROTO_UDP, -1, true);
		if (p->out_udp_unlisted)
			fprintf(out, " (%" PRIu64 " to peers not listed)", p->out_udp_unlisted);
		fputc('\n', out);
		first = false;
	}
	if (p->udp_reply_datagrams || (p->in_udp_unlisted && !count_groups(p, DSTRACE_PROTO_UDP)))
		fprintf(out, "  %-9s udp replies and other datagrams received: %" PRIu64 "\n",
			first ? "outbound" : "",
			sat_add(p->udp_reply_datagrams, p->in_udp_unlisted));
	if (p->bytes) {
		fputs("  traffic  ", out);
		put_bytes(out, "sent", p->c.sent_tcp_bytes, p->c.sent_udp_bytes);
		if ((p->c.sent_tcp_bytes || p->c.sent_udp_bytes) &&
		    (p->c.recv_tcp_bytes || p->c.recv_udp_bytes))
			fputc(';', out);
		put_bytes(out, "received", p->c.recv_tcp_bytes, p->c.recv_udp_bytes);
		fputc('\n', out);
	}
	if (p->c.failed) {
		fprintf(out, "  failed    %" PRIu64 ":", p->c.failed);
		for (uint32_t i = 0; i < p->nerrnos; i++) {
			fprintf(out, "%s %s %" PRIu64, i ? "," : "", p->errnos[i].name,
				p->errnos[i].count);
			if (!strcmp(p->errnos[i].name, "ENETUNREACH"))
				fputs(" (already fails: a v6-only socket, or no IPv4 route)", out);
		}
		if (p->errnos_other)
			fprintf(out, "%s other %" PRIu64, p->nerrnos ? "," : "", p->errnos_other);
		fputc('\n', out);
	}
	if (p->peers_dropped || p->peers_capped || p->ports_dropped)
		fprintf(out, "  note      %" PRIu64 " peers not in dstrace's table, %" PRIu64
			" beyond this report's %d, %u listener ports beyond %d\n",
			p->peers_dropped, p->peers_capped, REPORT_PEERS_MAX, p->ports_dropped,
			REPORT_PORTS_MAX);
}

static void put_summary(FILE *out, const struct report *r)
{
	if (!r->audit_records) {
		fputs("dstrace report: no audit records in the input.\n", out);
		return;
	}
	if (!r->depending) {
		fprintf(out, "dstrace report: no program depends on IPv4 through mapped addresses "
			     "(%u %s on %u %s audited",
			r->nprograms, plural(r->nprograms, "program", "programs"), r->nhosts,
			plural(r->nhosts, "host", "hosts"));
		if (r->already_failing)
			fprintf(out, "; %u already %s with ENETUNREACH", r->already_failing,
				plural(r->already_failing, "fails", "fail"));
		fputs(").\n", out);
		return;
	}
	fprintf(out,
		"dstrace report: %u %s on %u %s %s on IPv4 through mapped addresses; %u would "
		"break with net.ipv6.bindv6only=1",
		r->depending, plural(r->depending, "program", "programs"), r->depending_hosts,
		plural(r->depending_hosts, "host", "hosts"), plural(r->depending, "depends", "depend"),
		r->breaks_with_bindv6only);
	if (r->already_failing)
		fprintf(out, "; %u already %s with ENETUNREACH", r->already_failing,
			plural(r->already_failing, "fails", "fail"));
	fputs(".\n", out);
}

/* The warning lines, shared by the text report and (on stderr) the JSON one. */
static void put_warnings(FILE *out, const struct report *r)
{
	if (r->malformed)
		fprintf(out, "warning: skipped %" PRIu64 " malformed %s (first: %s:%" PRIu64 ": %s)\n",
			r->malformed, plural(r->malformed, "line", "lines"),
			r->first_malformed_file, r->first_malformed_line,
			r->first_malformed_reason);
	if (r->lost || r->evictions || r->programs_dropped)
		fprintf(out,
			"warning: the audit may be incomplete: %" PRIu64 " events lost, %" PRIu64
			" UDP flow evictions, %" PRIu64 " programs dropped by dstrace (in %u of %u "
			"runs); peers, ports or whole programs may be missing\n",
			r->lost, r->evictions, r->programs_dropped, r->runs_incomplete, r->nruns);
	if (r->over_programs || r->over_runs || r->over_entries)
		fprintf(out,
			"warning: this report had no room for %" PRIu64 " records (at most %d "
			"programs, %d runs, %d run-program pairs): their programs are missing\n",
			r->over_programs + r->over_runs + r->over_entries, REPORT_PROGRAMS_MAX,
			REPORT_RUNS_MAX, REPORT_ENTRIES_MAX);
}

int report__print_text(const struct report *r, FILE *out)
{
	char from[TS_BUF], to[TS_BUF];
	uint32_t quiet = 0;

	put_summary(out, r);
	if (!r->audit_records) {
		put_warnings(out, r);
		goto done;
	}
	fmt_ts(r->first_ts, false, from, sizeof(from));
	fmt_ts(r->last_ts, false, to, sizeof(to));
	fprintf(out, "Audited: %u %s on %u %s (", r->nruns, plural(r->nruns, "run", "runs"),
		r->nhosts, plural(r->nhosts, "host", "hosts"));
	for (uint32_t i = 0; i < r->nhosts && i < LIST_MAX; i++) {
		fputs(i ? ", " : "", out);
		put_safe(out, r->hosts[i]);
	}
	if (r->nhosts > LIST_MAX)
		fprintf(out, ", and %u more", r->nhosts - LIST_MAX);
	fprintf(out, "), %s to %s, %" PRIu64 " audit records in %u %s.\n", from, to,
		r->audit_records, r->nfiles, plural(r->nfiles, "file", "files"));
	put_warnings(out, r);
	if (r->runs_without_final)
		fprintf(out,
			"note: %u %s no final audit_run record (dstrace still running, or killed): "
			"counts end at the last interval written\n",
			r->runs_without_final,
			plural(r->runs_without_final, "run has", "runs have"));
	if (r->ignored_records)
		fprintf(out, "note: %" PRIu64 " %s ignored\n", r->ignored_records,
			plural(r->ignored_records, "record of another type", "records of other types"));

	for (uint32_t i = 0; i < r->nprograms; i++) {
		const struct report_program *p = &r->programs[i];

		if (!p->depends && !p->c.failed) {
			quiet++;
			continue;
		}
		fputc('\n', out);
		put_program(out, p);
	}
	if (quiet)
		fprintf(out, "\n%u %s with no mapped activity not shown.\n", quiet,
			plural(quiet, "program", "programs"));

	fputs("\nVerdict: if the host lost IPv4\n", out);
	for (uint32_t i = 0; i < r->nprograms; i++) {
		const struct report_program *p = &r->programs[i];

		if (!p->verdict_ipv4)
			continue;
		fputs("  ", out);
		put_label(out, p);
		fprintf(out, ": %s\n", p->verdict_ipv4);
	}
	if (!r->breaks_without_ipv4)
		fputs("  nothing seen would break\n", out);
	fputs("\nVerdict: with net.ipv6.bindv6only=1 (it sets IPV6_V6ONLY on sockets created "
	      "afterwards: restarted programs; those that clear IPV6_V6ONLY themselves keep "
	      "working)\n",
	      out);
	for (uint32_t i = 0; i < r->nprograms; i++) {
		const struct report_program *p = &r->programs[i];

		if (!p->verdict_bindv6only)
			continue;
		fputs("  ", out);
		put_label(out, p);
		fprintf(out, ": %s\n", p->verdict_bindv6only);
	}
	if (!r->breaks_with_bindv6only)
		fputs("  nothing seen would break\n", out);
	if (r->already_failing) {
		fputs("\nAlready failing\n", out);
		for (uint32_t i = 0; i < r->nprograms; i++) {
			const struct report_program *p = &r->programs[i];

			if (!p->verdict_failing)
				continue;
			fputs("  ", out);
			put_label(out, p);
			fprintf(out, ": %s\n", p->verdict_failing);
		}
	}
done:
	return fflush(out) || ferror(out) ? -EIO : 0;
}

/* --------------------------------------------------------------------- JSON */

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
		if (*u == '"' || *u == '\\')
			fprintf(out, "\\%c", *u);
		else if (*u == '\n')
			fputs("\\n", out);
		else if (*u == '\t')
			fputs("\\t", out);
		else if (*u < 0x20 || *u == 0x7f)
			fprintf(out, "\\u%04x", *u);
		else
			fputc(*u, out); /* valid UTF-8: the reader checked it */
	}
	fputc('"', out);
}

static void json_str_or_null(FILE *out, const char *s)
{
	if (s)
		json_str(out, s);
	else
		fputs("null", out);
}

static void json_ts(FILE *out, int64_t us)
{
	char buf[TS_BUF];

	if (us == TS_UNKNOWN) {
		fputs("null", out);
		return;
	}
	fmt_ts(us, true, buf, sizeof(buf));
	json_str(out, buf);
}

static void json_program(FILE *out, const struct report_program *p)
{
	char addr[INET_ADDRSTRLEN];

	fputs("{\"host\":", out);
	json_str(out, p->host);
	fputs(",\"exe\":", out);
	json_str(out, p->exe);
	fputs(",\"comm\":", out);
	json_str(out, p->comm ? p->comm : "");
	fprintf(out, ",\"uid\":%u,\"cgroup\":", p->uid);
	json_str_or_null(out, p->cgroup[0] ? p->cgroup : NULL);
	fputs(",\"container\":", out);
	json_str_or_null(out, p->container);
	fputs(",\"runtime\":", out);
	json_str_or_null(out, p->runtime);
	fputs(",\"pod_uid\":", out);
	json_str_or_null(out, p->pod_uid);
	fputs(",\"qos\":", out);
	json_str_or_null(out, p->qos);
	fprintf(out, ",\"netns\":%" PRIu64 ",\"runs\":%u,\"pids_max\":%" PRIu64 ",\"first_seen\":",
		p->netns, p->runs, p->pids_max);
	json_ts(out, p->first_seen);
	fputs(",\"last_seen\":", out);
	json_ts(out, p->last_seen);
	fprintf(out,
		",\"depends\":%s,\"activity\":%" PRIu64 ",\"bytes\":%" PRIu64
		",\"connect\":{\"tcp\":%" PRIu64 ",\"udp\":%" PRIu64 "},\"accept\":{\"tcp\":%" PRIu64
		"},\"sent\":{\"tcp_bytes\":%" PRIu64 ",\"udp_datagrams\":%" PRIu64
		",\"udp_bytes\":%" PRIu64 "},\"received\":{\"tcp_bytes\":%" PRIu64
		",\"udp_datagrams\":%" PRIu64 ",\"udp_bytes\":%" PRIu64 "},\"failed\":{\"total\":%" PRIu64
		",\"enetunreach\":%" PRIu64 ",\"by_errno\":{",
		p->depends ? "true" : "false", p->activity, p->bytes, p->c.connect_tcp,
		p->c.connect_udp, p->c.accept_tcp, p->c.sent_tcp_bytes, p->c.sent_udp_datagrams,
		p->c.sent_udp_bytes, p->c.recv_tcp_bytes, p->c.recv_udp_datagrams,
		p->c.recv_udp_bytes, p->c.failed, p->enetunreach);
	for (uint32_t i = 0; i < p->nerrnos; i++)
		fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", p->errnos[i].name,
			p->errnos[i].count);
	fprintf(out, "},\"other\":%" PRIu64 "},\"listen_ports\":[", p->errnos_other);
	for (uint32_t i = 0; i < p->nports; i++)
		fprintf(out, "%s%u", i ? "," : "", p->ports[i]);
	fprintf(out, "],\"ports_dropped\":%u,\"inbound\":[", p->ports_dropped);
	for (uint32_t i = 0; i < p->ninbound; i++) {
		const struct report_port_group *g = &p->inbound[i];

		fprintf(out,
			"%s{\"proto\":\"%s\",\"port\":%u,\"count\":%" PRIu64
			",\"peers\":%u,\"more_peers\":%s}",
			i ? "," : "", proto_name(g->proto), g->port, g->count, g->npeers,
			g->more_peers ? "true" : "false");
	}
	fputs("],\"peers\":[", out);
	for (uint32_t i = 0; i < p->npeers; i++) {
		const struct report_peer *peer = &p->peers[i];

		fmt_ipv4(peer->addr, addr, sizeof(addr));
		fprintf(out,
			"%s{\"dir\":\"%s\",\"proto\":\"%s\",\"addr\":\"%s\",\"port\":%u,\"count\":%" PRIu64
			",\"reply\":%s}",
			i ? "," : "", peer->dir == REPORT_DIR_IN ? "in" : "out",
			proto_name(peer->proto), addr, peer->port, peer->count,
			peer->reply ? "true" : "false");
	}
	fprintf(out,
		"],\"peers_dropped\":%" PRIu64 ",\"peers_capped\":%" PRIu64
		",\"udp_reply_datagrams\":%" PRIu64 ",\"unlisted\":{\"in_tcp\":%" PRIu64
		",\"in_udp\":%" PRIu64 ",\"out_tcp\":%" PRIu64 ",\"out_udp\":%" PRIu64 "}",
		p->peers_dropped, p->peers_capped, p->udp_reply_datagrams, p->in_tcp_unlisted,
		p->in_udp_unlisted, p->out_tcp_unlisted, p->out_udp_unlisted);
	fprintf(out,
		",\"verdict\":{\"breaks_without_ipv4\":%s,\"breaks_with_bindv6only\":%s,"
		"\"already_failing\":%s,\"without_ipv4\":",
		p->breaks_without_ipv4 ? "true" : "false",
		p->breaks_with_bindv6only ? "true" : "false", p->enetunreach ? "true" : "false");
	json_str_or_null(out, p->verdict_ipv4);
	fputs(",\"with_bindv6only\":", out);
	json_str_or_null(out, p->verdict_bindv6only);
	fputs(",\"failing\":", out);
	json_str_or_null(out, p->verdict_failing);
	fputs("}}", out);
}

static void json_run(FILE *out, const struct report_run *run)
{
	fputs("{\"host\":", out);
	json_str(out, run->host);
	fputs(",\"run\":", out);
	json_str(out, run->run);
	fputs(",\"backend\":", out);
	json_str_or_null(out, run->backend);
	fputs(",\"started\":", out);
	json_ts(out, run->started);
	fputs(",\"first_ts\":", out);
	json_ts(out, run->first_ts);
	fputs(",\"last_ts\":", out);
	json_ts(out, run->last_ts);
	fprintf(out,
		",\"audit_records\":%" PRIu64 ",\"programs_seen\":%u,\"audit_run\":%s,\"final\":%s,"
		"\"events\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"evictions\":%" PRIu64
		",\"programs\":%" PRIu64 ",\"programs_dropped\":%" PRIu64 "}",
		run->audit_records, run->programs_seen, run->have_run_record ? "true" : "false",
		run->final ? "true" : "false", run->events, run->lost, run->evictions,
		run->programs, run->programs_dropped);
}

int report__print_json(const struct report *r, FILE *out)
{
	bool complete = !r->lost && !r->evictions && !r->programs_dropped && !r->over_programs &&
			!r->over_runs && !r->over_entries;

	fprintf(out,
		"{\"type\":\"dstrace_report\",\"version\":1,\"summary\":{\"programs\":%u,"
		"\"hosts\":%u,\"breaks_without_ipv4\":%u,\"breaks_with_bindv6only\":%u,"
		"\"already_failing\":%u,\"programs_seen\":%u,\"hosts_seen\":%u,\"complete\":%s},",
		r->depending, r->depending_hosts, r->breaks_without_ipv4, r->breaks_with_bindv6only,
		r->already_failing, r->nprograms, r->nhosts, complete ? "true" : "false");
	fputs("\"input\":{\"files\":[", out);
	for (uint32_t i = 0; i < r->nfiles; i++) {
		fputs(i ? "," : "", out);
		json_str(out, r->files[i]);
	}
	fprintf(out,
		"],\"lines\":%" PRIu64 ",\"audit_records\":%" PRIu64 ",\"audit_run_records\":%" PRIu64
		",\"ignored_records\":%" PRIu64 ",\"malformed_lines\":%" PRIu64
		",\"first_malformed\":",
		r->lines, r->audit_records, r->run_records, r->ignored_records, r->malformed);
	if (r->malformed) {
		fputs("{\"file\":", out);
		json_str(out, r->first_malformed_file);
		fprintf(out, ",\"line\":%" PRIu64 ",\"reason\":", r->first_malformed_line);
		json_str(out, r->first_malformed_reason);
		fputs("}", out);
	} else {
		fputs("null", out);
	}
	fputs(",\"first_ts\":", out);
	json_ts(out, r->first_ts);
	fputs(",\"last_ts\":", out);
	json_ts(out, r->last_ts);
	fprintf(out,
		"},\"completeness\":{\"lost\":%" PRIu64 ",\"evictions\":%" PRIu64
		",\"programs_dropped\":%" PRIu64 ",\"runs_incomplete\":%u,\"runs_without_final\":%u,"
		"\"skipped_records\":{\"programs\":%" PRIu64 ",\"runs\":%" PRIu64
		",\"entries\":%" PRIu64 "}},\"hosts\":[",
		r->lost, r->evictions, r->programs_dropped, r->runs_incomplete,
		r->runs_without_final, r->over_programs, r->over_runs, r->over_entries);
	for (uint32_t h = 0; h < r->nhosts; h++) {
		uint32_t runs = 0, programs = 0, depending = 0;

		for (uint32_t i = 0; i < r->nruns; i++)
			runs += r->runs[i].host == r->hosts[h];
		for (uint32_t i = 0; i < r->nprograms; i++) {
			programs += r->programs[i].host == r->hosts[h];
			depending += r->programs[i].host == r->hosts[h] && r->programs[i].depends;
		}
		fputs(h ? ",{\"host\":" : "{\"host\":", out);
		json_str(out, r->hosts[h]);
		fprintf(out, ",\"runs\":%u,\"programs\":%u,\"depending\":%u}", runs, programs,
			depending);
	}
	fputs("],\"runs\":[", out);
	for (uint32_t i = 0; i < r->nruns; i++) {
		fputs(i ? "," : "", out);
		json_run(out, &r->runs[i]);
	}
	fputs("],\"programs\":[", out);
	for (uint32_t i = 0; i < r->nprograms; i++) {
		fputs(i ? "," : "", out);
		json_program(out, &r->programs[i]);
	}
	fputs("]}\n", out);
	return fflush(out) || ferror(out) ? -EIO : 0;
}

/* --------------------------------------------------------------- command line */

static const char usage_text[] =
	"Usage: dstrace report [--json] FILE...\n"
	"Summarize dstrace audit files (written by dstrace --audit -o FILE): per program, the IPv4\n"
	"traffic its AF_INET6 sockets carry through IPv4-mapped addresses (::ffff:a.b.c.d), and\n"
	"what would break if the host lost IPv4 or if net.ipv6.bindv6only=1 were set.\n"
	"FILE may be - for standard input; give the files of several hosts together.\n"
	"\n"
	"  -j, --json   one JSON document (see docs/report-format.md) instead of text\n"
	"  -h, --help   show this help\n"
	"\n"
	"Exit status: 0 when the report was printed (also when there were no audit records),\n"
	"1 when a FILE could not be opened or read, 2 on a usage error.\n"
	"\n"
	"EXAMPLES:\n"
	"  dstrace report /var/log/dstrace-audit.jsonl\n"
	"  dstrace report web1.jsonl web2.jsonl\n"
	"  ssh web1 cat /var/log/dstrace-audit.jsonl | dstrace report -\n"
	"  dstrace report --json *.jsonl | jq '.programs[] | select(.verdict.breaks_with_bindv6only)'\n";

int dstrace_report_run(int argc, char **argv, FILE *out, FILE *err)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct report *r = NULL;
	FILE **in = NULL;
	bool json = false;
	int nin, c, status = 1, e = 0;

	opterr = 0;
	optind = 0; /* glibc: start over, for callers (tests) that parse more than once */
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage_text, out);
			return fflush(out) ? 1 : 0;
		default: {
			/* glibc: optopt is 0 for an unknown long option, the option's letter for a
			 * short one or a long one given an argument it does not take. */
			const char *arg = argv[optind - 1];

			if (optopt && !(!strncmp(arg, "--", 2) && strchr(arg, '=')))
				fprintf(err, "dstrace report: invalid option '-%c'; try 'dstrace report "
					     "--help'\n",
					optopt);
			else
				fprintf(err, "dstrace report: invalid option '%s'; try 'dstrace report "
					     "--help'\n",
					arg);
			return 2;
		}
		}
	}
	nin = argc - optind;
	if (nin <= 0) {
		fprintf(err, "dstrace report: no audit file given (FILE, or - for standard input); "
			     "try 'dstrace report --help'\n");
		return 2;
	}

	/* Open everything first: a missing file fails before any output. */
	in = calloc(nin, sizeof(*in));
	if (!in)
		goto oom;
	for (int i = 0; i < nin; i++) {
		const char *name = argv[optind + i];

		in[i] = strcmp(name, "-") ? fopen(name, "r") : stdin;
		if (!in[i]) {
			fprintf(err, "dstrace report: cannot open '%s': %s\n", name, strerror(errno));
			goto cleanup;
		}
	}
	r = report__new();
	if (!r)
		goto oom;
	for (int i = 0; i < nin; i++) {
		e = report__read(r, in[i], argv[optind + i]);
		if (e == -ENOMEM)
			goto oom;
		if (e) {
			fprintf(err, "dstrace report: cannot read '%s': %s\n", argv[optind + i],
				strerror(-e));
			goto cleanup;
		}
	}
	e = report__finish(r);
	if (e)
		goto oom;
	if (json) {
		put_warnings(err, r);
		if (!r->audit_records)
			fprintf(err, "dstrace report: no audit records in the input\n");
		e = report__print_json(r, out);
	} else {
		e = report__print_text(r, out);
	}
	if (e) {
		fprintf(err, "dstrace report: cannot write the report: %s\n", strerror(EIO));
		goto cleanup;
	}
	status = 0;
	goto cleanup;
oom:
	fprintf(err, "dstrace report: out of memory\n");
cleanup:
	for (int i = 0; in && i < nin; i++) {
		if (in[i] && in[i] != stdin)
			fclose(in[i]);
	}
	free(in);
	report__free(r);
	return status;
}

int dstrace_report_main(int argc, char **argv)
{
	return dstrace_report_run(argc, argv, stdout, stderr);
}
