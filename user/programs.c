// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The program table (programs.h): programs and what they did (counts folded from the
 * kernel's per-process entries, failures by errno, listener ports, peers), the processes
 * followed (one kernel entry each: liveness is the kernel's word, a reused pid or an exec()
 * takes the slot over), and the UDP flows' last counts. Tables are rebuilt in place every
 * pass (audit__flows_done): pids and flows not seen lately are reclaimed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cgroupfs.h"
#include "hash.h"
#include "htab.h"
#include "programs.h"

/* The kernel's counters of a process at the last look, for deltas. */
struct proc_counts {
	uint64_t counts[DSTRACE_EV_MAX][DSTRACE_PROTO_MAX];
	uint64_t failed;
	uint64_t bytes[DSTRACE_DIR_MAX][DSTRACE_PROTO_MAX];
};

/* A process we have counters for: one kernel entry of that pid (a reused pid, or the program
 * a process exec()ed, takes the slot over with its own entry). */
struct audit_pid {
	uint32_t pid; /* 0: empty slot */
	uint32_t prog; /* index in programs, or UINT32_MAX if it did not fit */
	uint32_t seen_gen;
	uint64_t kid; /* the kernel entry's first_ns; 0 until its entry is seen */
	uint64_t prev_kid; /* the entry of this pid followed before (ended, folded for good) */
	/* Its entry ended (exit, exec) at end_ns and was folded in pass end_gen: kept one more
	 * pass so that an event still queued then finds its program. */
	bool ended;
	bool held; /* ended, not final: held for a connect's outcome (dstrace_proc_final) */
	uint32_t pending; /* the outcomes it is held for, at the last look */
	uint32_t end_gen;
	uint64_t end_ns;
	struct proc_counts last;
};

/* An entry held for a connect's outcome whose slot a newer entry of its pid took over: its
 * program and counts at the last look, until it is final (struct audit, late). */
#define AUDIT_LATE_MAX 64
struct audit_late {
	uint32_t pid; /* 0: free */
	uint32_t prog;
	uint64_t kid;
	struct proc_counts last;
	/* final, folded for good in pass done_gen: kept one more pass, so that an outcome's
	 * event read after the entry still finds its program, and a second look adds nothing */
	bool done;
	uint32_t done_gen;
};

/* A UDP flow's datagram count at the last look. */
struct audit_flow {
	struct dstrace_flow_key key;
	uint64_t datagrams;
	uint32_t seen_gen;
	bool used;
};

static bool pid_empty(const void *slot)
{
	return !((const struct audit_pid *)slot)->pid;
}

static bool pid_match(const void *slot, const void *key)
{
	return ((const struct audit_pid *)slot)->pid == *(const uint32_t *)key;
}

static const struct htab_ops pid_ops = { .empty = pid_empty, .match = pid_match };

static bool flow_empty(const void *slot)
{
	return !((const struct audit_flow *)slot)->used;
}

static bool flow_match(const void *slot, const void *key)
{
	return !memcmp(&((const struct audit_flow *)slot)->key, key, sizeof(struct dstrace_flow_key));
}

static const struct htab_ops flow_ops = { .empty = flow_empty, .match = flow_match };

static bool peer_empty(const void *slot)
{
	return !((const struct audit_peer *)slot)->count;
}

static bool peer_match(const void *slot, const void *key)
{
	const struct audit_peer *q = slot, *k = key;

	return q->addr == k->addr && q->port == k->port && q->dir == k->dir && q->proto == k->proto;
}

static const struct htab_ops peer_ops = { .empty = peer_empty, .match = peer_match };

int audit__init(struct audit *a, uint32_t max_flows)
{
	memset(a, 0, sizeof(*a));
	a->programs = calloc(AUDIT_PROGRAMS_MAX, sizeof(*a->programs));
	a->late = calloc(AUDIT_LATE_MAX, sizeof(*a->late));
	if (!a->programs || !a->late ||
	    htab_alloc(&a->pids, &pid_ops, sizeof(struct audit_pid), AUDIT_PIDS_MAX * 2) ||
	    htab_alloc(&a->flows, &flow_ops, sizeof(struct audit_flow), htab_pow2(max_flows * 2))) {
		audit__free(a);
		return -ENOMEM;
	}
	return 0;
}

void audit__free(struct audit *a)
{
	if (a->programs) {
		for (uint32_t i = 0; i < a->nprograms; i++)
			htab_free(&a->programs[i].peers);
	}
	free(a->programs);
	free(a->late);
	htab_free(&a->pids);
	htab_free(&a->flows);
	memset(a, 0, sizeof(*a));
}

/* nftw() has no user argument: the search in progress. */

static struct audit_program *program_find_or_add(struct audit *a, const char *exe, uint32_t uid,
						 uint64_t cgroup_id, uint32_t netns,
						 const char *comm, uint32_t pid, uint32_t *index)
{
	struct audit_program *p;

	for (uint32_t i = 0; i < a->nprograms; i++) {
		p = &a->programs[i];
		if (p->uid == uid && p->cgroup_id == cgroup_id && p->netns == netns &&
		    !strcmp(p->exe, exe)) {
			*index = i;
			return p;
		}
	}
	if (a->nprograms == AUDIT_PROGRAMS_MAX) {
		a->programs_dropped++;
		*index = UINT32_MAX;
		return NULL;
	}
	*index = a->nprograms;
	p = &a->programs[a->nprograms++];
	memset(p, 0, sizeof(*p));
	snprintf(p->exe, sizeof(p->exe), "%s", exe);
	p->uid = uid;
	p->cgroup_id = cgroup_id;
	p->netns = netns;
	memcpy(p->comm, comm, DSTRACE_COMM_LEN);
	p->comm[DSTRACE_COMM_LEN - 1] = '\0';
	dstrace_cgroup_path(a->cgroup_root, pid, cgroup_id, p->cgroup, sizeof(p->cgroup));
	container_info_parse(p->cgroup, &p->container);
	return p;
}

static struct audit_pid *pid_slot(struct audit *a, uint32_t pid, bool *found)
{
	return htab_find(&a->pids, dstrace_hash64(pid), &pid, found);
}

void audit_exe_path(const struct dstrace_proc_stats *st, char *out, size_t size)
{
	size_t o = 0;
	int n = 0;

	while (n < DSTRACE_EXE_PARTS && st->exe_parts[n][0])
		n++;
	out[0] = '\0';
	if (st->exe_parts_full && o + 4 < size) {
		memcpy(out, "/...", 4);
		o = 4;
	}
	for (int i = n - 1; i >= 0; i--) {
		size_t len = strnlen(st->exe_parts[i], DSTRACE_EXE_PART_LEN);

		if (o + 1 + len + 1 > size)
			break;
		out[o++] = '/';
		memcpy(out + o, st->exe_parts[i], len);
		o += len;
	}
	out[o] = '\0';
}

/* The executable of pid: the kernel's record is preferred (it exists even for processes
 * already gone), then /proc/PID/exe, else "?/COMM". */
static void program_exe(uint32_t pid, const char *comm, const struct dstrace_proc_stats *st,
			char *exe, size_t size)
{
	char name[DSTRACE_COMM_LEN];

	exe[0] = '\0';
	if (st)
		audit_exe_path(st, exe, size);
	if (!exe[0])
		dstrace_proc_exe(pid, exe, size);
	if (!exe[0]) {
		memcpy(name, comm, sizeof(name));
		name[sizeof(name) - 1] = '\0';
		snprintf(exe, size, "?/%s", name);
	}
}

/* Set up slot ap (empty, or a pid's earlier process or program) for pid, and resolve its
 * program. */
static void pid_init(struct audit *a, struct audit_pid *ap, uint32_t pid, uint32_t uid,
		     uint64_t cgroup_id, uint32_t netns, const char *comm,
		     const struct dstrace_proc_stats *st)
{
	/* A slot taken over: its entry ended, and was folded (audit__add_proc). */
	uint64_t prev_kid = ap->pid == pid ? ap->kid : 0;
	char exe[AUDIT_EXE_LEN], name[DSTRACE_COMM_LEN];

	/* an event's comm is its thread's: the process's name (the kernel entry's) if it runs */
	if (!st && dstrace_proc_comm(pid, name, sizeof(name)))
		comm = name;
	program_exe(pid, comm, st, exe, sizeof(exe));
	memset(ap, 0, sizeof(*ap));
	ap->pid = pid;
	ap->prev_kid = prev_kid;
	ap->seen_gen = a->flow_gen;
	ap->kid = st ? st->first_ns : 0;
	if (program_find_or_add(a, exe, uid, cgroup_id, netns, comm, pid, &ap->prog)) {
		a->programs[ap->prog].pids++;
		a->programs[ap->prog].changed = true;
	}
}

/* The process's slot, created on first sight; NULL when the table is full (counted). */
static struct audit_pid *pid_get(struct audit *a, uint32_t pid, uint32_t uid, uint64_t cgroup_id,
				 uint32_t netns, const char *comm, const struct dstrace_proc_stats *st)
{
	struct audit_pid *ap;
	bool found;

	ap = pid_slot(a, pid, &found);
	if (found)
		return ap;
	if (a->npids == AUDIT_PIDS_MAX) {
		a->pids_dropped++;
		return NULL;
	}
	a->npids++;
	pid_init(a, ap, pid, uid, cgroup_id, netns, comm, st);
	return ap;
}

bool audit__wants_proc(struct audit *a, uint32_t pid, uint64_t ts_ns, uint64_t *kid)
{
	bool found;
	struct audit_pid *ap = pid_slot(a, pid, &found);

	*kid = found && !ap->ended ? ap->kid : 0;
	/* an event from before the end of the entry followed belongs to it */
	return !found || !ap->kid || (ap->end_ns && ts_ns > ap->end_ns);
}

void audit__proc_ending(struct audit *a, uint32_t pid, uint64_t ts_ns)
{
	bool found;
	struct audit_pid *ap = pid_slot(a, pid, &found);

	if (found && !ap->ended && !ap->end_ns)
		ap->end_ns = ts_ns;
}

static struct audit_program *program_of(struct audit *a, const struct audit_pid *ap)
{
	return ap && ap->prog != UINT32_MAX ? &a->programs[ap->prog] : NULL;
}

static void add_port(struct audit_program *p, uint16_t port)
{
	for (uint32_t i = 0; i < p->nports; i++) {
		if (p->ports[i] == port)
			return;
	}
	if (p->nports < AUDIT_PORTS_MAX)
		p->ports[p->nports++] = port;
	else
		p->ports_dropped++;
}

static void add_errno(struct audit_program *p, uint8_t kind, int err)
{
	for (uint32_t i = 0; i < p->nerrnos; i++) {
		if (p->errnos[i].err == err && p->errnos[i].kind == kind) {
			p->errnos[i].count++;
			return;
		}
	}
	if (p->nerrnos < AUDIT_ERRNOS_MAX) {
		p->errnos[p->nerrnos].err = err;
		p->errnos[p->nerrnos].kind = kind;
		p->errnos[p->nerrnos++].count = 1;
	} else {
		p->errnos_other++;
	}
}

static void add_peer(struct audit_program *p, uint32_t addr, uint16_t port, uint8_t dir,
		     uint8_t proto, uint64_t count)
{
	uint64_t hash = (uint64_t)addr << 32 | (uint32_t)port << 16 | dir << 8 | proto;
	struct audit_peer key = { addr, port, dir, proto, count }, *q;
	bool found;

	if (!count)
		return;
	if (!p->peers.cap &&
	    htab_alloc(&p->peers, &peer_ops, sizeof(struct audit_peer), AUDIT_PEERS_MAX * 2)) {
		p->peers_dropped += count;
		return;
	}
	q = htab_find(&p->peers, dstrace_hash64(hash), &key, &found);
	if (found) {
		q->count += count;
	} else if (p->npeers == AUDIT_PEERS_MAX) {
		p->peers_dropped += count;
	} else {
		*q = key;
		p->npeers++;
	}
}

/* The name an outbound event's peer came from: counted per name, failures apart. */
static void add_name(struct audit_program *p, const struct dstrace_event *e)
{
	struct audit_name *n = NULL;

	for (uint32_t i = 0; i < p->nnames && !n; i++)
		if (!strncmp(p->names[i].name, e->name, DSTRACE_NAME_LEN))
			n = &p->names[i];
	if (!n && p->nnames == AUDIT_NAMES_MAX) {
		p->names_dropped++;
		return;
	}
	if (!n) {
		n = &p->names[p->nnames++];
		memcpy(n->name, e->name, DSTRACE_NAME_LEN);
		n->name[DSTRACE_NAME_LEN - 1] = '\0';
	}
	n->flags |= e->name_flags;
	n->count++;
	if (e->ret)
		n->failed++;
	if (e->flags & DSTRACE_F_FALLBACK)
		n->fallbacks++;
}

#define DELTA(field) (st->field >= last->field ? st->field - last->field : st->field)

/* Add what the entry st counted since last to program p. */
static void fold_counts(struct audit_program *p, const struct dstrace_proc_stats *st,
			const struct proc_counts *last)
{
	uint64_t delta, changed = 0;

	for (int k = 0; k < DSTRACE_EV_MAX; k++) {
		for (int pr = 0; pr < DSTRACE_PROTO_MAX; pr++) {
			delta = DELTA(counts[k][pr]);
			p->counts[k][pr] += delta;
			changed |= delta;
		}
	}
	for (int d = 0; d < DSTRACE_DIR_MAX; d++) {
		for (int pr = 0; pr < DSTRACE_PROTO_MAX; pr++) {
			delta = DELTA(bytes[d][pr]);
			p->bytes[d][pr] += delta;
			changed |= delta;
		}
	}
	delta = DELTA(failed);
	p->failed += delta;
	changed |= delta;
	if (st->first_ns && (!p->first_ns || st->first_ns < p->first_ns)) {
		p->first_ns = st->first_ns;
		changed = 1;
	}
	if (st->last_ns > p->last_ns) {
		p->last_ns = st->last_ns;
		changed = 1;
	}
	if (changed)
		p->changed = true;
}

static void proc_counts_of(struct proc_counts *c, const struct dstrace_proc_stats *st)
{
	memcpy(c->counts, st->counts, sizeof(c->counts));
	c->failed = st->failed;
	memcpy(c->bytes, st->bytes, sizeof(c->bytes));
}

/* The late record of pid's entry kid, or NULL. */
static struct audit_late *late_find(struct audit *a, uint32_t pid, uint64_t kid)
{
	for (uint32_t i = 0; i < AUDIT_LATE_MAX; i++)
		if (a->late[i].pid == pid && a->late[i].kid == kid)
			return &a->late[i];
	return NULL;
}

/* The held entry slot ap follows is taken over by a newer one: follow it in a->late. */
static void late_keep(struct audit *a, const struct audit_pid *ap)
{
	for (uint32_t i = 0; i < AUDIT_LATE_MAX; i++) {
		struct audit_late *l = &a->late[i];

		if (!l->pid) {
			*l = (struct audit_late){ .pid = ap->pid, .prog = ap->prog, .kid = ap->kid,
						  .last = ap->last };
			return;
		}
	}
	a->late_dropped += ap->pending; /* its outcomes to come are not counted */
}

void audit__follow_late(struct audit *a, uint32_t pid, const struct dstrace_proc_stats *st)
{
	struct audit_pid *ap, tmp = {};
	bool found;

	ap = pid_slot(a, pid, &found);
	if (!found || !ap->kid) {
		audit__add_proc(a, pid, st); /* followed from now on */
		return;
	}
	if (st->first_ns >= ap->kid || st->first_ns == ap->prev_kid ||
	    late_find(a, pid, st->first_ns))
		return; /* followed: in the slot, or in a->late */
	/* Never followed, and a newer entry of its pid is: followed in a->late, from 0. */
	pid_init(a, &tmp, pid, st->uid, st->cgroup_id, st->netns, st->comm, st);
	late_keep(a, &tmp);
}

/* st, an entry older than its pid's slot's: if a->late follows it, what it counted since
 * goes to its program; true then (*final: folded for good, no longer followed). */
static bool late_add(struct audit *a, uint32_t pid, const struct dstrace_proc_stats *st,
		     bool final)
{
	struct audit_late *l = late_find(a, pid, st->first_ns);

	if (!l)
		return false;
	if (l->done)
		return true; /* seen again before its delete: nothing more */
	if (l->prog != UINT32_MAX)
		fold_counts(&a->programs[l->prog], st, &l->last);
	proc_counts_of(&l->last, st);
	if (final) {
		l->done = true;
		l->done_gen = a->flow_gen;
	}
	return true;
}

bool audit__add_proc(struct audit *a, uint32_t pid, const struct dstrace_proc_stats *st)
{
	static const struct proc_counts zero;
	struct audit_program *p;
	struct audit_pid *ap;
	bool found, final = dstrace_proc_final(st);

	ap = pid_slot(a, pid, &found);
	if (found && ap->kid && ap->kid != st->first_ns) {
		if (st->first_ns < ap->kid && late_add(a, pid, st, final))
			return final;
		if (st->first_ns < ap->kid) {
			/* An entry older than the one followed: the one followed before (already
			 * folded whole when it ended), or one never seen (the next found first):
			 * fold that one whole into its own program. */
			struct audit_pid tmp = {};

			if (!final || st->first_ns == ap->prev_kid)
				return final;
			pid_init(a, &tmp, pid, st->uid, st->cgroup_id, st->netns, st->comm, st);
			p = program_of(a, &tmp);
			if (p)
				fold_counts(p, st, &zero);
			return true;
		}
		/* A newer entry: a new process with this pid, or the program this one exec()ed.
		 * The entry followed so far has ended (its last counts were folded then; if it
		 * is held for a connect's outcome, it is followed in a->late until final). */
		if (ap->held)
			late_keep(a, ap);
		pid_init(a, ap, pid, st->uid, st->cgroup_id, st->netns, st->comm, st);
	} else if (!found) {
		ap = pid_get(a, pid, st->uid, st->cgroup_id, st->netns, st->comm, st);
		if (!ap)
			return final; /* no room: counted in pids_dropped */
	} else {
		ap->kid = st->first_ns; /* made from an event: its entry at last */
	}
	ap->seen_gen = a->flow_gen;
	p = program_of(a, ap);
	if (p)
		fold_counts(p, st, &ap->last);
	proc_counts_of(&ap->last, st);
	ap->held = st->exit_ns && !final;
	ap->pending = ap->held ? st->pending : 0;
	if (final && !ap->ended) {
		ap->ended = true;
		ap->end_gen = a->flow_gen;
		ap->end_ns = st->exit_ns;
	} else if (!final) {
		/* running (an end notice of an earlier entry of this pid), or ended and held for
		 * a connect's outcome: the events after its end are another entry's */
		ap->end_ns = st->exit_ns;
	}
	return final;
}

void audit__add_event(struct audit *a, const struct dstrace_event *e)
{
	struct audit_program *p = NULL;
	struct audit_pid *ap;
	bool found;
	uint8_t kind = e->kind;

	ap = pid_slot(a, e->pid, &found);
	if (e->flags & DSTRACE_F_LATE) {
		/* of the ended entry e->entry_ns: its pid's slot's, or one followed beside it */
		struct audit_late *l = found && ap->kid != e->entry_ns ?
					       late_find(a, e->pid, e->entry_ns) : NULL;

		if (l)
			ap = NULL, p = l->prog != UINT32_MAX ? &a->programs[l->prog] : NULL;
		else if (!found)
			ap = pid_get(a, e->pid, e->uid, e->cgroup_id, e->netns, e->comm, NULL);
	} else if (found && ap->ended && e->ts_ns > ap->end_ns) { /* a newer process or program */
		pid_init(a, ap, e->pid, e->uid, e->cgroup_id, e->netns, e->comm, NULL);
	} else if (!found) {
		ap = pid_get(a, e->pid, e->uid, e->cgroup_id, e->netns, e->comm, NULL);
	}
	if (ap)
		p = program_of(a, ap);
	if (!p)
		return;
	p->changed = true;
	/* glibc's sorting connects are no traffic to the name (they carry none anyway) */
	if ((e->name_flags & DSTRACE_NAME_KNOWN) && !(e->flags & DSTRACE_F_BY_RESOLVER))
		add_name(p, e);
	if (e->flags & DSTRACE_F_FALLBACK)
		p->fallbacks++;
	if (e->ret) {
		add_errno(p, e->kind, -e->ret);
		return;
	}
	if (e->proto != DSTRACE_PROTO_TCP)
		return; /* UDP peers are counted per datagram, from the flow table */
	/* a connection there before dstrace: accepted or made, as the kernel counted it */
	if (kind == DSTRACE_EV_EXISTING)
		kind = e->flags & DSTRACE_F_INBOUND ? DSTRACE_EV_ACCEPT : DSTRACE_EV_CONNECT;
	if (kind == DSTRACE_EV_ACCEPT) {
		/* lport 0: the connection was reset before accept() returned, its port gone */
		if (e->lport)
			add_port(p, e->lport);
		add_peer(p, e->raddr, e->lport, AUDIT_DIR_IN, DSTRACE_PROTO_TCP, 1);
	} else if (kind == DSTRACE_EV_CONNECT) {
		add_peer(p, e->raddr, e->rport, AUDIT_DIR_OUT, DSTRACE_PROTO_TCP, 1);
	}
}

static struct audit_flow *flow_slot(struct audit *a, const struct dstrace_flow_key *k)
{
	uint64_t h = k->sock_ino * 31 + ((uint64_t)k->raddr << 24 | (uint64_t)k->rport << 8 | k->kind);
	bool found;

	return htab_find(&a->flows, dstrace_hash64(h ^ k->pid), k, &found);
}

bool audit__add_flow(struct audit *a, const struct dstrace_flow_key *k,
		     const struct dstrace_flow_val *v)
{
	struct audit_flow *f;
	struct audit_program *p;
	struct audit_pid *ap;
	bool found_pid;
	uint64_t delta;

	/* A process newer than this pass's walk of the processes: its flow waits untouched
	 * for the next pass, which knows the process. */
	ap = pid_slot(a, k->pid, &found_pid);
	if (!found_pid)
		return false;
	f = flow_slot(a, k);
	if (!f->used) {
		if (a->nflows >= a->flows.cap / 2)
			return false; /* cannot happen with flows_cap >= 2 * kernel map */
		f->used = true;
		f->key = *k;
		f->datagrams = 0;
		a->nflows++;
	}
	delta = v->datagrams >= f->datagrams ? v->datagrams - f->datagrams : v->datagrams;
	f->datagrams = v->datagrams;
	f->seen_gen = a->flow_gen;
	p = program_of(a, ap);
	if (p && v->answer) {
		/* the peer's exchange, not one more peer: its datagrams are the other flow's */
		p->udp_replies[k->kind == DSTRACE_EV_SEND ? DSTRACE_DIR_SENT : DSTRACE_DIR_RECEIVED] +=
			delta;
		if (delta)
			p->changed = true;
	} else if (p) {
		bool in = k->kind == DSTRACE_EV_RECV;

		add_peer(p, k->raddr, in ? v->lport : k->rport, in ? AUDIT_DIR_IN : AUDIT_DIR_OUT,
			 DSTRACE_PROTO_UDP, delta);
		if (delta)
			p->changed = true;
	}
	/* Its process (or program) has ended: the flow can go too. */
	return ap->ended;
}

/* Clear the pid table and insert these entries. */
static void put_back_pids(struct audit *a, const struct audit_pid *keep, uint32_t n)
{
	htab_clear(&a->pids);
	a->npids = n;
	for (uint32_t i = 0; i < n; i++) {
		bool found;

		*pid_slot(a, keep[i].pid, &found) = keep[i];
	}
}

/* Keep only the pids and flows seen lately; start the next pass. The tables are
 * rebuilt in place (survivors set aside, table cleared, survivors put back): no second
 * table, so memory stays what the bounds say. */
void audit__flows_done(struct audit *a)
{
	uint32_t gen = a->flow_gen, n = 0;
	struct audit_pid *keep_pids = malloc((a->npids + 1) * sizeof(*keep_pids));
	struct audit_flow *keep_flows = malloc((a->nflows + 1) * sizeof(*keep_flows));

	if (!keep_pids || !keep_flows) { /* keep everything; try again next time */
		free(keep_pids);
		free(keep_flows);
		return;
	}
	for (uint32_t i = 0; i < a->pids.cap && n < a->npids; i++) {
		const struct audit_pid *ap = htab_slot(&a->pids, i);

		/* A running process's entry is seen at every pass, but one that ends between
		 * the two walks of a pass is seen in neither: keep it one more pass. An ended
		 * one is kept through the next pass, whose ring read brings any event it sent
		 * after this pass's read. */
		if (ap->pid && (ap->ended ? gen == ap->end_gen : gen - ap->seen_gen < 2))
			keep_pids[n++] = *ap;
	}
	put_back_pids(a, keep_pids, n);
	for (uint32_t i = 0; i < AUDIT_LATE_MAX; i++)
		if (a->late[i].pid && a->late[i].done && a->late[i].done_gen != gen)
			a->late[i].pid = 0;
	n = 0;
	for (uint32_t i = 0; i < a->flows.cap && n < a->nflows; i++) {
		const struct audit_flow *f = htab_slot(&a->flows, i);

		if (f->used && f->seen_gen == gen)
			keep_flows[n++] = *f;
	}
	htab_clear(&a->flows);
	a->nflows = n;
	for (uint32_t i = 0; i < n; i++)
		*flow_slot(a, &keep_flows[i].key) = keep_flows[i];
	free(keep_pids);
	free(keep_flows);
	a->flow_gen++; /* every entry must be seen again in the next pass to stay */
}

static int cmp_peer(const void *x, const void *y)
{
	const struct audit_peer *a = x, *b = y;

	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	if (a->addr != b->addr)
		return ntohl(a->addr) < ntohl(b->addr) ? -1 : 1;
	return (int)a->port - (int)b->port;
}

uint32_t audit_program__top_peers(const struct audit_program *p, struct audit_peer *out,
				  uint32_t max)
{
	struct audit_peer *all;
	uint32_t n = 0;

	if (!p->npeers)
		return 0;
	all = malloc(p->npeers * sizeof(*all));
	if (!all)
		return 0;
	for (uint32_t i = 0; i < p->peers.cap; i++) {
		const struct audit_peer *q = htab_slot(&p->peers, i);

		if (q->count)
			all[n++] = *q;
	}
	qsort(all, n, sizeof(*all), cmp_peer);
	if (n > max)
		n = max;
	memcpy(out, all, n * sizeof(*out));
	free(all);
	return n;
}

void audit__written(struct audit *a)
{
	for (uint32_t i = 0; i < a->nprograms; i++)
		a->programs[i].changed = false;
}

void audit__drops(const struct audit *a, struct dstrace_drops *d)
{
	d->programs = a->programs_dropped;
	d->pids = a->pids_dropped;
	d->proc_full += a->late_dropped;
	d->ports = d->peers = 0;
	for (uint32_t i = 0; i < a->nprograms; i++) {
		d->ports += a->programs[i].ports_dropped;
		d->peers += a->programs[i].peers_dropped;
	}
}

