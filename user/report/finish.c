// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report: the life of a struct report. Owns report__new and report__free, and
 * report__finish: each program's entries folded (fold.c) and derived (verdict.c), programs
 * sorted most dependent first, runs by host then start, the hosts listed, the totals summed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

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
	r->first_ts = r->last_ts = TS_UNKNOWN;
	return r;
}

static void program_free(struct report_program *p)
{
	free(p->errnos);
	free(p->ports);
	free(p->peers);
	free(p->names);
	free(p->inbound);
	free(p->verdict_ipv4);
	free(p->verdict_bindv6only);
	free(p->verdict_failing);
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
	for (uint32_t i = 0; i < pv->programs_ix.n; i++)
		program_free(&r->programs[i]);
	free(r->programs);
	free(r->runs);
	free(r->hosts);
	strings_free(&pv->strings);
	hindex_free(&pv->runs_ix);
	hindex_free(&pv->programs_ix);
	hindex_free(&pv->entries_ix);
	free(pv->line);
	free(pv);
	for (uint32_t i = 0; i < r->nfiles; i++)
		free(r->files[i]);
	free(r->files);
	free(r->first_malformed_file);
	free(r);
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
	if ((c = strcmp(x->host, y->host)) ||
	    (c = strcmp(x->comm ? x->comm : "", y->comm ? y->comm : "")) ||
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

/* Did dstrace drop anything in this run, by its newest audit_run record? */
static bool run_incomplete(const struct report_run *run)
{
	return run->lost || run->evictions || run->programs_dropped || report_drops_any(&run->drops);
}

void report_drops_values(const struct report_drops *d, uint64_t out[DSTRACE_DROPS_N])
{
	size_t i = 0;

#define VALUE(n) out[i++] = d->n;
	DSTRACE_DROPS(VALUE)
#undef VALUE
}

bool report_drops_any(const struct report_drops *d)
{
	uint64_t v[DSTRACE_DROPS_N];

	report_drops_values(d, v);
	for (size_t i = 0; i < DSTRACE_DROPS_N; i++)
		if (v[i])
			return true;
	return d->write_errors != 0;
}

static void add_drops(struct report_drops *sum, const struct report_drops *d)
{
#define ADD(n) sum->n = sat_add(sum->n, d->n);
	DSTRACE_DROPS(ADD)
#undef ADD
	sum->write_errors = sat_add(sum->write_errors, d->write_errors);
}

static void sum_runs(struct report *r)
{
	for (uint32_t i = 0; i < r->nruns; i++) {
		const struct report_run *run = &r->runs[i];

		if (run->have_run_record) {
			r->lost = sat_add(r->lost, run->lost);
			r->evictions = sat_add(r->evictions, run->evictions);
			r->programs_dropped = sat_add(r->programs_dropped, run->programs_dropped);
			add_drops(&r->drops, &run->drops);
			if (run_incomplete(run))
				r->runs_incomplete++;
		}
		if (!run->have_run_record || !run->final)
			r->runs_without_final++;
	}
}

static void sum_programs(struct report *r)
{
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
}

/* Fold and derive every program; its entries, folded, are freed. */
static int fold_all(struct report *r)
{
	struct report_private *pv = r->priv;
	int err;

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
	/* Rather than hold two copies. */
	for (uint32_t i = 0; i < pv->entries_ix.n; i++)
		entry_free_arrays(&pv->entries[i]);
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
	err = fold_all(r);
	if (!err)
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
	sum_runs(r);
	sum_programs(r);
	return 0;
}
