// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The per-process table (aggregate.h): rows in arrival order with a pid index (htab.h), a row
 * per kernel entry, the kernel's counts copied in, and the bounds' accounting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aggregate.h"
#include "hash.h"
#include "htab.h"

void proc_table__init(struct proc_table *t)
{
	memset(t, 0, sizeof(*t));
}

void proc_table__free(struct proc_table *t)
{
	free(t->procs);
	htab_free(&t->index);
	memset(t, 0, sizeof(*t));
}

#define NO_ROW UINT32_MAX

/* The index: pid -> its last row, a slot holding row + 1 (0: empty). */
struct pid_key {
	const struct proc_table *t;
	uint32_t pid;
};

static bool row_match(const void *slot, const void *key)
{
	const struct pid_key *k = key;

	return k->t->procs[*(const uint32_t *)slot - 1].pid == k->pid;
}

static const struct htab_ops index_ops = { .empty = htab_u32_empty, .match = row_match };

/* pid's slot in the index (empty for a pid not seen). */
static uint32_t *index_slot(const struct proc_table *t, uint32_t pid)
{
	struct pid_key k = { t, pid };
	bool found;

	return htab_find(&t->index, dstrace_hash64(pid), &k, &found);
}

/* (Re)build the index from the rows, whose rows of one pid are in the order they came. */
static int index_build(struct proc_table *t, uint32_t cap)
{
	struct htab index;

	if (htab_alloc(&index, &index_ops, sizeof(uint32_t), cap))
		return -1;
	htab_free(&t->index);
	t->index = index;
	for (uint32_t i = 0; i < t->nprocs; i++) {
		uint32_t *slot = index_slot(t, t->procs[i].pid);

		t->procs[i].prev_row = *slot ? *slot - 1 : NO_ROW;
		*slot = i + 1;
	}
	return 0;
}

/* pid's last row, or NULL. */
static struct proc_entry *proc_table__last(const struct proc_table *t, uint32_t pid)
{
	uint32_t slot = t->index.cap ? *index_slot(t, pid) : 0;

	return slot ? &t->procs[slot - 1] : NULL;
}

/* A new last row for pid, appended (no row moves: pids wrapping around cost nothing); NULL
 * when the table is full (counted) or out of memory. */
static struct proc_entry *proc_table__append(struct proc_table *t, uint32_t pid)
{
	struct proc_entry *p;
	uint32_t *slot;

	if (t->nprocs == PROC_TABLE_MAX) {
		t->dropped++;
		return NULL;
	}
	if (t->nprocs == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 64;
		struct proc_entry *procs = realloc(t->procs, cap * sizeof(*procs));

		if (!procs)
			return NULL;
		t->procs = procs;
		t->cap = cap;
	}
	if ((t->nprocs + 1) * 2 > t->index.cap &&
	    index_build(t, t->index.cap ? t->index.cap * 2 : 128))
		return NULL;
	slot = index_slot(t, pid);
	p = &t->procs[t->nprocs];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->seq = t->seq++;
	p->prev_row = *slot ? *slot - 1 : NO_ROW;
	*slot = ++t->nprocs; /* row nprocs - 1, plus one */
	return p;
}

struct proc_entry *proc_table__get(struct proc_table *t, uint32_t pid)
{
	struct proc_entry *p = proc_table__last(t, pid);

	return p ? p : proc_table__append(t, pid);
}

static int cmp_row(const void *x, const void *y)
{
	const struct proc_entry *a = x, *b = y;

	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void proc_table__sort(struct proc_table *t)
{
	if (!t->nprocs)
		return;
	qsort(t->procs, t->nprocs, sizeof(*t->procs), cmp_row);
	index_build(t, t->index.cap); /* same size: cannot fail but for memory */
}

uint32_t proc_entry__peers(const struct proc_entry *p)
{
	return (uint32_t)p->peers;
}

static void copy_comm(char *dst, const char *src)
{
	memcpy(dst, src, DSTRACE_COMM_LEN);
	dst[DSTRACE_COMM_LEN - 1] = '\0';
}

int proc_table__add_event(struct proc_table *t, const struct dstrace_event *e)
{
	struct proc_entry *p = proc_table__last(t, e->pid);

	/* After its last row's entry ended: a new process with this pid, or a new program (not
	 * the outcome of a connect of the ended one's: DSTRACE_F_LATE). */
	if (!p || (p->end_ns && e->ts_ns > p->end_ns && !(e->flags & DSTRACE_F_LATE)))
		p = proc_table__append(t, e->pid);

	if (!p)
		return -1;
	if (!p->comm[0])
		copy_comm(p->comm, e->comm);
	if (!p->uid)
		p->uid = e->uid;
	return 0;
}

/* The row of the kernel entry st of pid: the row following it, else the pid's last row if
 * that follows no entry yet (made from events), else a new row. */
static struct proc_entry *proc_table__row(struct proc_table *t, uint32_t pid,
					  const struct dstrace_proc_stats *st)
{
	struct proc_entry *last = proc_table__last(t, pid);

	for (struct proc_entry *p = last; p; p = p->prev_row == NO_ROW ? NULL : &t->procs[p->prev_row]) {
		if (p->kid == st->first_ns)
			return p;
	}
	if (last && !last->kid && !last->end_ns)
		return last;
	return proc_table__append(t, pid);
}

int proc_table__set_stats(struct proc_table *t, uint32_t pid, const struct dstrace_proc_stats *st)
{
	struct proc_entry *p = proc_table__row(t, pid, st);

	if (!p && dstrace_proc_final(st)) {
		/* No room, but its counts are final: add them to the others, so totals stay whole. */
		struct proc_entry *o = &t->others;

		snprintf(o->comm, sizeof(o->comm), "(ended)");
		for (int kind = 0; kind < DSTRACE_EV_MAX; kind++)
			o->counts[kind] += st->counts[kind][DSTRACE_PROTO_TCP] +
					   st->counts[kind][DSTRACE_PROTO_UDP];
		o->failed += st->failed;
		o->peers += st->peers;
		if (st->peers_partial && !o->peers_partial)
			t->peers_partial++;
		o->peers_partial |= st->peers_partial != 0;
		o->bytes += st->bytes[DSTRACE_DIR_SENT][DSTRACE_PROTO_UDP] +
			    st->bytes[DSTRACE_DIR_RECEIVED][DSTRACE_PROTO_UDP];
		return 0;
	}
	if (!p)
		return -1;
	p->kid = st->first_ns;
	p->end_ns = st->exit_ns;
	copy_comm(p->comm, st->comm);
	p->uid = st->uid;
	for (int kind = 0; kind < DSTRACE_EV_MAX; kind++)
		p->counts[kind] = st->counts[kind][DSTRACE_PROTO_TCP] + st->counts[kind][DSTRACE_PROTO_UDP];
	p->failed = st->failed;
	p->peers = st->peers;
	if (st->peers_partial && !p->peers_partial)
		t->peers_partial++;
	p->peers_partial = st->peers_partial != 0;
	p->bytes = st->bytes[DSTRACE_DIR_SENT][DSTRACE_PROTO_UDP] +
		   st->bytes[DSTRACE_DIR_RECEIVED][DSTRACE_PROTO_UDP];
	return 0;
}
