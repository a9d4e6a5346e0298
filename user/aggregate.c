// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aggregate.h"
#include "hash.h"

void proc_table__init(struct proc_table *t)
{
	memset(t, 0, sizeof(*t));
}

void proc_table__free(struct proc_table *t)
{
	for (uint32_t i = 0; i < t->nprocs; i++)
		free(t->procs[i].peers);
	free(t->procs);
	memset(t, 0, sizeof(*t));
}

/* Index of pid, or where it would be inserted. */
static uint32_t proc_table__find(const struct proc_table *t, uint32_t pid)
{
	uint32_t lo = 0, hi = t->nprocs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->procs[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Insert an empty row for pid at i; NULL when the table is full (counted) or out of memory. */
static struct proc_entry *proc_table__insert(struct proc_table *t, uint32_t i, uint32_t pid)
{
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
	memmove(&t->procs[i + 1], &t->procs[i], (t->nprocs - i) * sizeof(*t->procs));
	memset(&t->procs[i], 0, sizeof(t->procs[i]));
	t->procs[i].pid = pid;
	t->nprocs++;
	return &t->procs[i];
}

/* Index one past pid's last row (pid's rows are [proc_table__find(pid), this)). */
static uint32_t proc_table__end(const struct proc_table *t, uint32_t pid)
{
	uint32_t i = proc_table__find(t, pid);

	while (i < t->nprocs && t->procs[i].pid == pid)
		i++;
	return i;
}

struct proc_entry *proc_table__get(struct proc_table *t, uint32_t pid)
{
	uint32_t i = proc_table__end(t, pid);

	if (i > 0 && t->procs[i - 1].pid == pid)
		return &t->procs[i - 1];
	return proc_table__insert(t, i, pid);
}

static bool peers_insert(uint32_t *slots, uint32_t cap, uint32_t addr)
{
	for (uint32_t i = dstrace_hash64(addr) & (cap - 1);; i = (i + 1) & (cap - 1)) {
		if (slots[i] == addr)
			return false;
		if (!slots[i]) {
			slots[i] = addr;
			return true;
		}
	}
}

/* Add a remote address to the set; the set stays at most half full. */
static int proc_entry__add_peer(struct proc_table *t, struct proc_entry *p, uint32_t addr)
{
	if (!addr) {
		p->peer_zero = true;
		return 0;
	}
	if (p->npeers + 1 > p->peers_cap / 2) {
		uint32_t cap = p->peers_cap ? p->peers_cap * 2 : 16;
		uint32_t *slots;

		if (p->npeers >= PROC_PEERS_MAX) {
			/* Still counted exactly if already present. */
			for (uint32_t i = dstrace_hash64(addr) & (p->peers_cap - 1); p->peers[i];
			     i = (i + 1) & (p->peers_cap - 1)) {
				if (p->peers[i] == addr)
					return 0;
			}
			if (!p->peers_full)
				t->peers_capped++;
			p->peers_full = true;
			return 0;
		}
		slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return -1;
		for (uint32_t i = 0; i < p->peers_cap; i++) {
			if (p->peers[i])
				peers_insert(slots, cap, p->peers[i]);
		}
		free(p->peers);
		p->peers = slots;
		p->peers_cap = cap;
	}
	if (peers_insert(p->peers, p->peers_cap, addr))
		p->npeers++;
	return 0;
}

uint32_t proc_entry__peers(const struct proc_entry *p)
{
	uint32_t seen = p->npeers + (p->peer_zero ? 1 : 0);

	/* The kernel counts every peer, events or not; the events' set is the fallback. */
	return p->kernel_peers > seen ? (uint32_t)p->kernel_peers : seen;
}

static void copy_comm(char *dst, const char *src)
{
	memcpy(dst, src, DSTRACE_COMM_LEN);
	dst[DSTRACE_COMM_LEN - 1] = '\0';
}

int proc_table__add_event(struct proc_table *t, const struct dstrace_event *e)
{
	uint32_t i = proc_table__end(t, e->pid);
	struct proc_entry *p = i > 0 && t->procs[i - 1].pid == e->pid ? &t->procs[i - 1] : NULL;

	/* After its last row's entry ended: a new process with this pid, or a new program. */
	if (!p || (p->end_ns && e->ts_ns > p->end_ns))
		p = proc_table__insert(t, i, e->pid);

	if (!p)
		return -1;
	if (!p->comm[0])
		copy_comm(p->comm, e->comm);
	if (!p->uid)
		p->uid = e->uid;
	return proc_entry__add_peer(t, p, e->raddr);
}

/* The row of the kernel entry st of pid: the row following it, else the pid's last row if
 * that follows no entry yet (made from events), else a new row. */
static struct proc_entry *proc_table__row(struct proc_table *t, uint32_t pid,
					  const struct dstrace_proc_stats *st)
{
	uint32_t lo = proc_table__find(t, pid), end = proc_table__end(t, pid);

	for (uint32_t i = lo; i < end; i++) {
		if (t->procs[i].kid == st->first_ns)
			return &t->procs[i];
	}
	if (end > lo && !t->procs[end - 1].kid && !t->procs[end - 1].end_ns)
		return &t->procs[end - 1];
	return proc_table__insert(t, end, pid);
}

int proc_table__set_stats(struct proc_table *t, uint32_t pid, const struct dstrace_proc_stats *st)
{
	struct proc_entry *p = proc_table__row(t, pid, st);

	if (!p && st->exit_ns) {
		/* No room, but its counts are final: add them to the others, so totals stay whole. */
		struct proc_entry *o = &t->others;

		snprintf(o->comm, sizeof(o->comm), "(ended)");
		for (int kind = 0; kind < DSTRACE_EV_MAX; kind++)
			o->counts[kind] += st->counts[kind][DSTRACE_PROTO_TCP] +
					   st->counts[kind][DSTRACE_PROTO_UDP];
		o->failed += st->failed;
		o->kernel_peers += st->peers;
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
	p->kernel_peers = st->peers;
	p->bytes = st->bytes[DSTRACE_DIR_SENT][DSTRACE_PROTO_UDP] +
		   st->bytes[DSTRACE_DIR_RECEIVED][DSTRACE_PROTO_UDP];
	return 0;
}
