// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report: folding. Counters in audit records are cumulative per run, so only the
 * newest record of each (host, run, program) counts: newest by its "ts", and among equal ts
 * the one read last, so that files given out of order (rotated logs) or twice still add up
 * right. This file owns the runs, the programs and those newest records (entries), each
 * found through one hash index, and folds a program's entries into its totals: counters
 * summed, listener ports united, peers and errnos merged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "schema.h"

void entry_free_arrays(struct entry *e)
{
	free(e->ports);
	free(e->peers);
	free(e->errnos);
	free(e->names);
	e->ports = NULL;
	e->peers = NULL;
	e->errnos = NULL;
	e->names = NULL;
}

static bool newer(int64_t ts, uint64_t seq, int64_t old_ts, uint64_t old_seq)
{
	return ts > old_ts || (ts == old_ts && seq > old_seq);
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

/* Find or add a program; UINT32_MAX when full (counted) or out of memory (*oom). */
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

/* Interns the strings of ids in place; false when the string table is full or out of
 * memory (the record is then counted as skipped). */
static bool intern_ids(struct report *r, struct rec_ids *ids, bool audit)
{
	const char **fields[] = { &ids->host,	   &ids->run,	  &ids->backend, &ids->exe,
				  &ids->cgroup,	   &ids->comm,	  &ids->container, &ids->runtime,
				  &ids->pod_uid,   &ids->qos };
	uint32_t n = audit ? 10 : 3;

	for (uint32_t i = 0; i < n; i++) {
		if (!*fields[i])
			continue;
		*fields[i] = intern(&r->priv->strings, *fields[i]);
		if (!*fields[i])
			return false;
	}
	return true;
}

/* e as the entry of its (run, program) if it is newer than the one there, or a new one. */
static int keep_entry(struct report *r, struct report_run *run, struct entry *e)
{
	struct report_private *pv = r->priv;
	struct entry_key k = { e->program, e->run };
	uint64_t h = hash_mix(hash_mix(0, k.program), k.run);
	uint32_t i = hindex_find(&pv->entries_ix, h, entry_eq, pv->entries, &k);

	if (i != UINT32_MAX) {
		struct entry *old = &pv->entries[i];

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

int fold_add_audit(struct report *r, struct rec_ids *ids, struct entry *e)
{
	struct report_run *run;
	bool oom = false;
	uint32_t run_index;

	if (!intern_ids(r, ids, true)) {
		r->over_entries++;
		return 0;
	}
	run = get_run(r, ids->host, ids->run, &oom);
	if (!run)
		return oom ? -ENOMEM : 0;
	run_index = run - r->runs;
	e->program = get_program(r, ids, &oom);
	if (e->program == UINT32_MAX)
		return oom ? -ENOMEM : 0;
	run->audit_records++;
	note_ts(r, run, e->ts);
	if (!run->backend || !run->have_run_record)
		run->backend = ids->backend;
	e->run = run_index;
	e->comm = ids->comm;
	e->container = ids->container;
	e->runtime = ids->runtime;
	e->pod_uid = ids->pod_uid;
	e->qos = ids->qos;
	return keep_entry(r, run, e);
}

int fold_add_run(struct report *r, struct rec_ids *ids, const struct run_rec *rec)
{
	struct report_run *run;
	bool oom = false;

	if (!intern_ids(r, ids, false)) {
		r->over_entries++;
		return 0;
	}
	run = get_run(r, ids->host, ids->run, &oom);
	if (!run)
		return oom ? -ENOMEM : 0;
	note_ts(r, run, rec->ts);
	if (r->first_ts == TS_UNKNOWN || rec->started < r->first_ts)
		r->first_ts = rec->started; /* the audit covers the time since dstrace started */
	if (run->have_run_record && !newer(rec->ts, r->priv->seq, run->run_ts, run->run_seq))
		return 0;
	run->have_run_record = true;
	run->run_ts = rec->ts;
	run->run_seq = r->priv->seq;
	run->backend = ids->backend;
	run->started = rec->started;
#define COPY(k) run->k = rec->k;
	DSTRACE_RUN_COUNTS(COPY)
#undef COPY
	run->drops = rec->drops;
	memcpy(run->blind, rec->blind, sizeof(run->blind));
	run->nblind = rec->nblind;
	run->final = rec->final;
	return 0;
}

/* ------------------------------------------------------------- a program's runs */

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
#define ADD(o, k, field, s) sum->field = sat_add(sum->field, c->field);
	DSTRACE_AUDIT_COUNTS(ADD)
#undef ADD
}

/* The scalars of p's entries; how many ports, peers and errnos they hold in all. */
static void sum_entries(const struct report_private *pv, struct report_program *p,
			uint32_t *nports, uint32_t *npeers, uint32_t *nerrnos)
{
	const struct entry *latest = NULL;

	p->first_seen = p->last_seen = TS_UNKNOWN;
	p->replies_counted = true;
	for (uint32_t i = p->first_entry; i; i = pv->entries[i - 1].next) {
		const struct entry *e = &pv->entries[i - 1];

		p->runs++;
		p->replies_counted = p->replies_counted && e->replies_counted;
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
		*nports += e->nports;
		p->ports_dropped += e->ports_dropped;
		*npeers += e->npeers;
		p->peers_dropped = sat_add(p->peers_dropped, e->peers_dropped);
		*nerrnos += e->nerrnos;
		p->errnos_other = sat_add(p->errnos_other, e->errnos_other);
	}
	if (latest) {
		p->comm = latest->comm;
		p->container = latest->container;
		p->runtime = latest->runtime;
		p->pod_uid = latest->pod_uid;
		p->qos = latest->qos;
	}
}

/* p's ports, peers and errnos: those of all its entries, one after the other. */
static int concat_entries(const struct report_private *pv, struct report_program *p,
			  uint32_t nports, uint32_t npeers, uint32_t nerrnos)
{
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
	return 0;
}

/* Ports: union; keep the lowest REPORT_PORTS_MAX. */
static void merge_ports(struct report_program *p)
{
	uint32_t n = 0;

	if (p->nports)
		qsort(p->ports, p->nports, sizeof(*p->ports), cmp_u16);
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
}

/* Peers: the same peer in several runs adds up; keep the busiest REPORT_PEERS_MAX. */
static void merge_peers(struct report_program *p)
{
	uint32_t n = 0;

	if (p->npeers)
		qsort(p->peers, p->npeers, sizeof(*p->peers), cmp_peer_key);
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
}

/* Errnos: merged by name; the rarest beyond REPORT_ERRNOS_MAX go to "other". */
static void merge_errnos(struct report_program *p)
{
	uint32_t n = 0;

	if (p->nerrnos)
		qsort(p->errnos, p->nerrnos, sizeof(*p->errnos), cmp_errno_name);
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
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct report_name *)a)->name, ((const struct report_name *)b)->name);
}

static int cmp_name_busiest(const void *a, const void *b)
{
	const struct report_name *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Names: those of all p's entries, the same name in several runs added up (counts summed,
 * answers or'ed: one run that saw AAAA records says so); the busiest REPORT_NAMES_MAX. */
static int fold_names(const struct report_private *pv, struct report_program *p)
{
	uint32_t total = 0, n = 0;

	for (uint32_t i = p->first_entry; i; i = pv->entries[i - 1].next) {
		total += pv->entries[i - 1].nnames;
		p->names_dropped = sat_add(p->names_dropped, pv->entries[i - 1].names_dropped);
	}
	if (!total)
		return 0;
	p->names = malloc(total * sizeof(*p->names));
	if (!p->names)
		return -ENOMEM;
	for (uint32_t i = p->first_entry; i; i = pv->entries[i - 1].next) {
		const struct entry *e = &pv->entries[i - 1];

		if (e->nnames)
			memcpy(p->names + p->nnames, e->names, e->nnames * sizeof(*p->names));
		p->nnames += e->nnames;
	}
	qsort(p->names, p->nnames, sizeof(*p->names), cmp_name);
	for (uint32_t i = 0; i < p->nnames; i++) {
		struct report_name *last = n ? &p->names[n - 1] : NULL;

		if (last && !strcmp(last->name, p->names[i].name)) {
			last->count = sat_add(last->count, p->names[i].count);
			last->failed = sat_add(last->failed, p->names[i].failed);
			last->fallbacks = sat_add(last->fallbacks, p->names[i].fallbacks);
			last->flags |= p->names[i].flags;
		} else {
			p->names[n++] = p->names[i];
		}
	}
	p->nnames = n;
	qsort(p->names, p->nnames, sizeof(*p->names), cmp_name_busiest);
	if (p->nnames > REPORT_NAMES_MAX) {
		p->names_dropped = sat_add(p->names_dropped, p->nnames - REPORT_NAMES_MAX);
		p->nnames = REPORT_NAMES_MAX;
	}
	return 0;
}

int fold_program(struct report *r, struct report_program *p)
{
	uint32_t nports = 0, npeers = 0, nerrnos = 0;
	int err;

	sum_entries(r->priv, p, &nports, &npeers, &nerrnos);
	err = concat_entries(r->priv, p, nports, npeers, nerrnos);
	if (err)
		return err;
	merge_ports(p);
	merge_peers(p);
	merge_errnos(p);
	return fold_names(r->priv, p);
}
