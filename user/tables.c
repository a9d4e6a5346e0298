// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The kernel's tables as user space reads them (backend.h): the counters, the process
 * entries (walked, folded, the ended ones freed with their peer pairs) and the UDP flows
 * (harvested, reclaimed, their evictions counted).
 */
#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "audit.h"
#include "backend_internal.h"

int dstrace_backend__counters(const struct dstrace_backend *b, uint64_t out[DSTRACE_CNT_MAX])
{
	int ncpus = libbpf_num_possible_cpus();
	int fd = bpf_map__fd(b->skel->maps.counters);
	uint64_t *vals;

	if (ncpus <= 0)
		return -EINVAL;
	vals = calloc(ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (uint32_t key = 0; key < DSTRACE_CNT_MAX; key++) {
		out[key] = 0;
		if (bpf_map_lookup_elem(fd, &key, vals))
			continue;
		for (int cpu = 0; cpu < ncpus; cpu++)
			out[key] += vals[cpu];
	}
	free(vals);
	out[DSTRACE_CNT_CONN_FULL] += b->conns_given_up;
	out[DSTRACE_CNT_STASH_FULL] += b->inflight_given_up; /* inflight.c */
	out[DSTRACE_CNT_PROC_FULL] += b->procs_late_lost;
	return 0;
}

static uint64_t recursion_misses(const struct bpf_program *prog)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd = bpf_program__fd(prog);

	memset(&info, 0, sizeof(info));
	/* recursion_misses: counted for fentry from Linux 5.12, tp_btf 6.0, kprobes and
	 * tracepoints 6.7 (an older kernel leaves it 0) */
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.recursion_misses;
}

int dstrace_backend__missed(const struct dstrace_backend *b,
			    const uint64_t counters[DSTRACE_CNT_MAX], uint64_t *missed)
{
	/* the pair this backend loaded (socket.bpf.h: the kprobe backend's are the _hash twins) */
	bool hash = b->kind == DSTRACE_BACKEND_KPROBE;
	const struct bpf_program *state = hash ? b->skel->progs.sk_state_hash
					       : b->skel->progs.sk_state;
	const struct bpf_program *nested = hash ? b->skel->progs.sk_state_nested_hash
						: b->skel->progs.sk_state_nested;
	struct bpf_program *prog;
	uint64_t m;

	kretprobes_missed(&b->kret, missed);
	bpf_object__for_each_program(prog, b->skel->obj) {
		/* sk_state_nested runs only inside sk_state's run on its CPU: what it misses,
		 * sk_state has seen (socket.bpf.h) */
		if (prog == nested || prog == state)
			continue;
		*missed += recursion_misses(prog);
	}
	/* connects whose socket's state change ran none of the programs (bpf/socket.bpf.h,
	 * sock_release; bpf/connect.bpf.h, handle_connect_start) */
	*missed += counters[DSTRACE_CNT_CONN_UNSEEN];
	/* sk_state's misses that sk_state_nested did not make up for */
	m = recursion_misses(state);
	if (m > counters[DSTRACE_CNT_STATE_NESTED])
		*missed += m - counters[DSTRACE_CNT_STATE_NESTED];
	return 0;
}

/* Keys to delete once an iteration is over (deleting during it would restart it). */
struct key_list {
	void *keys;
	size_t n, cap, size;
};

static int key_list_add(struct key_list *l, const void *key)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		void *keys = realloc(l->keys, cap * l->size);

		if (!keys)
			return -ENOMEM;
		l->keys = keys;
		l->cap = cap;
	}
	memcpy((char *)l->keys + l->n++ * l->size, key, l->size);
	return 0;
}

/* Delete the keys listed (entries read whole and final: nothing can have changed since). */
static void key_list_delete(struct key_list *l, int fd)
{
	for (size_t i = 0; i < l->n; i++)
		bpf_map_delete_elem(fd, (char *)l->keys + i * l->size);
	free(l->keys);
	l->keys = NULL;
	l->n = l->cap = 0;
}

typedef bool (*proc_visit_fn)(void *ctx, uint32_t pid, const struct dstrace_proc_stats *st);

/* Entries ((pid, first_ns), as in struct dstrace_peer_key with raddr 0) in order. */
static int entry_cmp(const void *a, const void *b)
{
	const struct dstrace_peer_key *x = a, *y = b;

	if (x->tgid != y->tgid)
		return x->tgid < y->tgid ? -1 : 1;
	return x->first_ns < y->first_ns ? -1 : x->first_ns > y->first_ns;
}

/* Delete the peer pairs (proc_peers) of the entries just freed (sorted here): nothing adds
 * to an entry that has ended, so they are garbage, and without this the table would fill
 * with the pairs of processes long gone. */
static void peers_sweep(const struct dstrace_backend *b, struct key_list *freed)
{
	int fd = bpf_map__fd(b->skel->maps.proc_peers);
	struct key_list dead = { .size = sizeof(struct dstrace_peer_key) };
	struct dstrace_peer_key key, *prev = NULL;

	if (freed->n) {
		qsort(freed->keys, freed->n, freed->size, entry_cmp);
		while (!bpf_map_get_next_key(fd, prev, &key)) {
			prev = &key;
			if (bsearch(&key, freed->keys, freed->n, freed->size, entry_cmp) &&
			    key_list_add(&dead, &key))
				break; /* out of memory: the rest at the next sweep */
		}
		key_list_delete(&dead, fd);
	}
}

/* Is this entry held for the outcome of connects it started (st->pending, less those given
 * up: walk_procs)? Until the last one's outcome is counted (bpf/connect.bpf.h, conn_entry), it
 * is not final: visited as ended but not final, not deleted. Not any more
 * DSTRACE_CONNECT_WAIT_MAX after its end (and a sweep or two), when all have been given up:
 * any it still waits for then (one whose give-up found no room in the tally) is counted
 * lost (drops.proc_full), and it is final. */
static bool entry_held(const struct dstrace_backend *b, struct dstrace_proc_stats *st,
		       uint64_t now_ns)
{
	if (!st->exit_ns || !st->pending)
		return false;
	if (st->exit_ns + (b->conn_wait_max_s + 20) * 1000000000ull > now_ns)
		return true;
	st->pending = 0; /* final now */
	return false;
}

/* How many of the connects given up (at most max) entry (tgid, first_ns) counted waiting. */
static uint32_t given_up_of(const struct dstrace_backend *b, uint32_t tgid, uint64_t first_ns,
			    uint32_t max)
{
	uint32_t n = 0;

	for (size_t i = 0; i < b->given_up_n && n < max; i++)
		n += b->given_up[i].tgid == tgid && b->given_up[i].first_ns == first_ns;
	return n;
}

/* The entries freed (sorted) need no tally of connects given up any more. */
static void given_up_forget(struct dstrace_backend *b, const struct key_list *freed)
{
	size_t kept = 0;

	if (!freed->n)
		return;
	for (size_t i = 0; i < b->given_up_n; i++) {
		struct dstrace_peer_key k = { .tgid = b->given_up[i].tgid,
					      .first_ns = b->given_up[i].first_ns };

		if (!bsearch(&k, freed->keys, freed->n, freed->size, entry_cmp))
			b->given_up[kept++] = b->given_up[i];
	}
	b->given_up_n = kept;
}

/*
 * Every process entry, ended ones first: those in proc_exited, then those of proc_stats (an
 * ended entry can still be there, marked, when proc_exited was full). visit returns true when
 * it has folded an ended entry for good: the entry is then deleted, and its peer pairs with
 * it. Only final entries are deleted (ended, and not held for a connect's outcome:
 * entry_held), and nothing writes to an entry once it is final (bpf/lifecycle.bpf.h): no
 * count made between the read and the delete is lost.
 */
static void walk_procs(struct dstrace_backend *b, proc_visit_fn visit, void *ctx)
{
	int fds[2] = { bpf_map__fd(b->skel->maps.proc_exited),
		       bpf_map__fd(b->skel->maps.proc_stats) };
	struct key_list freed = { .size = sizeof(struct dstrace_peer_key) };
	uint64_t now_ns = boot_now_ns();

	for (int m = 0; m < 2; m++) {
		struct key_list done = { .size = sizeof(uint32_t) };
		struct dstrace_proc_stats st;
		uint32_t key, *prev = NULL, lost;

		while (!bpf_map_get_next_key(fds[m], prev, &key)) {
			prev = &key;
			if (bpf_map_lookup_elem(fds[m], &key, &st))
				continue; /* gone meanwhile */
			/* An ended entry read again: the first read (a copy, in no order) may have
			 * caught a connect's outcome being counted, its pending count (written
			 * last, conn_entry_done) but not its counts; the second has both. */
			if (dstrace_proc_final(&st) && bpf_map_lookup_elem(fds[m], &key, &st))
				continue;
			/* the connects of an ended entry given up (counted in stash_full) are
			 * waited for no more */
			if (st.exit_ns && st.pending)
				st.pending -= given_up_of(b, key, st.first_ns, st.pending);
			/* held: not deleted; else final, or made final with these lost (a count
			 * beyond any number of connects waiting is not one: not added) */
			lost = st.exit_ns && st.pending <= 1u << 20 ? st.pending : 0;
			entry_held(b, &st, now_ns);
			if (visit(ctx, key, &st) && dstrace_proc_final(&st)) {
				struct dstrace_peer_key entry = { .tgid = key,
								  .first_ns = st.first_ns };

				/* no room to remember it: its pairs stay, in the table's bound */
				if (!key_list_add(&done, &key))
					key_list_add(&freed, &entry);
				b->procs_late_lost += lost;
			}
		}
		key_list_delete(&done, fds[m]);
	}
	peers_sweep(b, &freed); /* sorts freed */
	given_up_forget(b, &freed);
	free(freed.keys);
}

static bool table_visit(void *ctx, uint32_t pid, const struct dstrace_proc_stats *st)
{
	/* a full table counts it in t->dropped; an ended entry then goes to t->others */
	proc_table__set_stats(ctx, pid, st);
	return true;
}

int dstrace_backend__read_procs(struct dstrace_backend *b, struct proc_table *t)
{
	walk_procs(b, table_visit, t);
	return 0;
}

int dstrace_backend__proc_stats(const struct dstrace_backend *b, uint32_t pid, uint64_t ts_ns,
				struct dstrace_proc_stats *st)
{
	/* The running process's entry, else the one that ended (its event came before). */
	if (!bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.proc_stats), &pid, st) &&
	    st->first_ns <= ts_ns)
		return 0;
	if (!bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.proc_exited), &pid, st) &&
	    st->first_ns <= ts_ns)
		return 0;
	return -ENOENT;
}

int dstrace_backend__proc_ended(const struct dstrace_backend *b, uint32_t pid, uint64_t first_ns,
				struct dstrace_proc_stats *st)
{
	if (!bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.proc_exited), &pid, st) &&
	    st->first_ns == first_ns)
		return 0;
	if (!bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.proc_stats), &pid, st) &&
	    st->first_ns == first_ns && st->exit_ns)
		return 0;
	return -ENOENT;
}

uint32_t dstrace_backend__max_flows(const struct dstrace_backend *b)
{
	return bpf_map__max_entries(b->skel->maps.udp_flows);
}

struct harvest_ctx {
	struct audit *audit;
	struct proc_table *table;
};

static bool audit_visit(void *ctx, uint32_t pid, const struct dstrace_proc_stats *st)
{
	struct harvest_ctx *h = ctx;

	if (h->table)
		proc_table__set_stats(h->table, pid, st);
	return audit__add_proc(h->audit, pid, st);
}

/* An LRU map's evictions: what was inserted and is neither there nor deleted by us. */
static uint64_t evictions_of(uint64_t inserted, uint64_t present, uint64_t reclaimed)
{
	return inserted > present + reclaimed ? inserted - present - reclaimed : 0;
}

/* How many keys the map holds now. */
static uint64_t map_keys(const struct bpf_map *map)
{
	int fd = bpf_map__fd(map);
	uint64_t key[8], *prev = NULL, n = 0; /* keys of up to 64 bytes */

	if (bpf_map__key_size(map) > sizeof(key))
		return 0;
	while (!bpf_map_get_next_key(fd, prev, key)) {
		prev = key;
		n++;
	}
	return n;
}

int dstrace_backend__harvest(struct dstrace_backend *b, struct audit *a, struct proc_table *t,
			     uint64_t *evictions)
{
	struct harvest_ctx h = { .audit = a, .table = t };
	int flows_fd = bpf_map__fd(b->skel->maps.udp_flows);
	struct key_list dead_flows = { .size = sizeof(struct dstrace_flow_key) };
	struct dstrace_flow_key fkey, *fprev = NULL;
	struct dstrace_flow_val fval;
	uint64_t counters[DSTRACE_CNT_MAX] = {}, live_flows = 0;

	/* Counters before the walks: a flow inserted during them is live, never "evicted". */
	dstrace_backend__counters(b, counters);
	/* Processes first: a process found ended gets its last counts, then its flows theirs. */
	walk_procs(b, audit_visit, &h);
	while (!bpf_map_get_next_key(flows_fd, fprev, &fkey)) {
		fprev = &fkey;
		if (bpf_map_lookup_elem(flows_fd, &fkey, &fval))
			continue;
		live_flows++;
		if (audit__add_flow(a, &fkey, &fval))
			key_list_add(&dead_flows, &fkey);
	}
	audit__flows_done(a);
	for (size_t i = 0; i < dead_flows.n; i++) {
		if (!bpf_map_delete_elem(flows_fd, (struct dstrace_flow_key *)dead_flows.keys + i)) {
			b->flows_reclaimed++;
			live_flows--;
		}
	}
	free(dead_flows.keys);
	/* every flow inserted is live, reclaimed by us, or evicted by the LRU */
	*evictions = evictions_of(counters[DSTRACE_CNT_FLOW_NEW], live_flows, b->flows_reclaimed);
	return 0;
}

int dstrace_backend__flow_evictions(const struct dstrace_backend *b, uint64_t *evictions)
{
	uint64_t counters[DSTRACE_CNT_MAX] = {};
	int err = dstrace_backend__counters(b, counters);

	if (err)
		return err;
	*evictions = evictions_of(counters[DSTRACE_CNT_FLOW_NEW], map_keys(b->skel->maps.udp_flows),
				  b->flows_reclaimed);
	return 0;
}

int dstrace_backend__name_evictions(const struct dstrace_backend *b, uint64_t *evictions)
{
	uint64_t counters[DSTRACE_CNT_MAX] = {};
	int err = dstrace_backend__counters(b, counters);

	if (err)
		return err;
	*evictions = evictions_of(counters[DSTRACE_CNT_NAME_NEW], map_keys(b->skel->maps.resolved), 0);
	return 0;
}

int dstrace_backend__sweep_calls(struct dstrace_backend *b)
{
	struct key_list dead = { .size = sizeof(__u64) };
	int fd = bpf_map__fd(b->skel->maps.kprobe_calls), n = 0;
	__u64 key, *prev = NULL;
	time_t now = mono_now_s();

	if (b->kind != DSTRACE_BACKEND_KPROBE || now < b->calls_swept_s + 10)
		return 0;
	b->calls_swept_s = now;
	/* another PID namespace's numbers are not the kernel's tids: nothing can be told */
	if (!dstrace_pidns_initial())
		return 0;
	/* The kernel deletes entries meanwhile (every call's return), and a walk whose last key
	 * is gone starts over: at most two tables' worth of steps, each dead key deleted once. */
	for (uint32_t steps = 2 * bpf_map__max_entries(b->skel->maps.kprobe_calls);
	     steps > 0 && !bpf_map_get_next_key(fd, prev, &key); steps--) {
		prev = &key;
		if (kill((pid_t)(__u32)key, 0) && errno == ESRCH)
			key_list_add(&dead, &key);
	}
	for (size_t i = 0; i < dead.n; i++)
		n += !bpf_map_delete_elem(fd, (__u64 *)dead.keys + i); /* a repeat: ENOENT */
	free(dead.keys);
	return n;
}

/* The slot array of pending connects, mapped (BPF_F_MMAPABLE): NULL if it cannot be. */
static struct dstrace_conn_slot_head *conn_slots_map(struct dstrace_backend *b, size_t *stride,
						     uint32_t *n)
{
	const struct bpf_map *map = b->skel->maps.conn_slots;
	long page = sysconf(_SC_PAGESIZE);

	*stride = (bpf_map__value_size(map) + 7) & ~(size_t)7; /* the kernel's element size */
	*n = bpf_map__max_entries(map);
	if (!b->conn_slots_mem) {
		b->conn_slots_len = (*stride * *n + (size_t)page - 1) & ~((size_t)page - 1);
		b->conn_slots_mem = mmap(NULL, b->conn_slots_len, PROT_READ | PROT_WRITE,
					 MAP_SHARED, bpf_map__fd(map), 0);
		if (b->conn_slots_mem == MAP_FAILED) /* said once: not tried again */
			fprintf(stderr, "dstrace: warning: cannot map the kernel's table of pending "
					"connects (%s): one whose outcome never comes is not counted\n",
				strerror(errno));
	}
	return b->conn_slots_mem == MAP_FAILED ? NULL : b->conn_slots_mem;
}

void dstrace_backend__unmap(struct dstrace_backend *b)
{
	if (b->conn_slots_mem && b->conn_slots_mem != MAP_FAILED)
		munmap(b->conn_slots_mem, b->conn_slots_len);
	b->conn_slots_mem = NULL;
	free(b->given_up);
	b->given_up = NULL;
	b->given_up_n = b->given_up_cap = 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Give up the slot h if it has held one connect since before limit: claimed as the kernel's
 * take does (compare-and-exchange of its tag), its time read again once claimed; its cookie
 * in *cookie. */
static bool conn_slot_give_up(struct dstrace_conn_slot_head *h, uint64_t limit,
			      uint64_t *cookie, struct dstrace_conn_head *head)
{
	uint64_t tag = __atomic_load_n(&h->tag, __ATOMIC_ACQUIRE);

	if (tag == 0 || tag == DSTRACE_CONN_SLOT_BUSY ||
	    (int64_t)(__atomic_load_n(&h->c.since, __ATOMIC_RELAXED) - limit) >= 0)
		return false;
	if (!__atomic_compare_exchange_n(&h->tag, &tag, DSTRACE_CONN_SLOT_BUSY, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return false; /* taken or given to another meanwhile */
	if ((int64_t)(h->c.since - limit) >= 0) {
		/* refilled by the same socket between the two reads: its own again */
		__atomic_store_n(&h->tag, tag, __ATOMIC_RELEASE);
		return false;
	}
	*head = h->c; /* stable while claimed */
	__atomic_store_n(&h->tag, 0, __ATOMIC_RELEASE);
	*cookie = tag;
	return true;
}

/* A connect given up: its process entry, if one counted it waiting, waits for it no more. */
static void given_up_add(struct dstrace_backend *b, const struct dstrace_conn_head *head)
{
	struct dstrace_peer_key *more;
	size_t cap;

	if (!head->entry_ns)
		return;
	if (b->given_up_n == b->given_up_cap) {
		/* bounded by the connects that can wait at once; beyond, the entry is held
		 * until DSTRACE_CONNECT_WAIT_MAX after its end as before (entry_held) */
		cap = b->given_up_cap ? b->given_up_cap * 2 : 64;
		if (cap > 65536 || !(more = realloc(b->given_up, cap * sizeof(*more))))
			return;
		b->given_up = more;
		b->given_up_cap = cap;
	}
	b->given_up[b->given_up_n++] = (struct dstrace_peer_key){ .tgid = head->tgid,
								   .first_ns = head->entry_ns };
}

/* A give-up races with the kernel only for a connect that waited the whole while: its
 * outcome arriving in the same instant finds it gone (counted, not reported), or, during a
 * take-over's copy to the hash, is reported and also counted: a drop counted too many,
 * never one missing. A connect given up in its slot whose take-over copy is in the hash as
 * well is deleted there too, and counted once. */
int dstrace_backend__sweep_connects(struct dstrace_backend *b)
{
	struct key_list old = { .size = sizeof(__u64) }, gone = { .size = sizeof(uint64_t) };
	struct key_list old_heads = { .size = sizeof(struct dstrace_conn_head) };
	struct dstrace_conn_head head;
	bool heads_ok = true;
	int fd = bpf_map__fd(b->skel->maps.conn_pending), n = 0;
	uint32_t vsize = bpf_map__value_size(b->skel->maps.conn_pending), nslots;
	bool slots = b->kind != DSTRACE_BACKEND_KPROBE; /* backend.c: the _hash twins */
	struct dstrace_conn_slot_head *mem;
	time_t now;
	__u64 key, *prev = NULL;
	uint64_t limit;
	/* a sweep every half of the longest wait, at least every second and at most every 10 s:
	 * a connect is given up at most that, and the second between harvests, late */
	uint64_t every = b->conn_wait_max_s / 2, cookie;
	size_t stride;
	void *val;

	if (every < 1)
		every = 1;
	if (every > 10)
		every = 10;
	now = mono_now_s();
	if (now < b->conns_swept_s + (time_t)every)
		return 0;
	b->conns_swept_s = now;
	val = malloc(vsize);
	if (!val)
		return -ENOMEM;
	limit = boot_now_ns() - b->conn_wait_max_s * 1000000000ull;
	/* room for every slot's cookie first: a slot given up is always listed */
	if (slots && (mem = conn_slots_map(b, &stride, &nslots)) &&
	    (gone.keys = malloc((size_t)nslots * sizeof(uint64_t)))) {
		gone.cap = nslots;
		for (uint32_t i = 0; i < nslots; i++)
			if (conn_slot_give_up((void *)((char *)mem + (size_t)i * stride), limit,
					      &cookie, &head)) {
				n++;
				key_list_add(&gone, &cookie); /* within cap: no allocation */
				given_up_add(b, &head);
			}
		if (gone.n)
			qsort(gone.keys, gone.n, sizeof(uint64_t), u64_cmp);
	}
	/* the kernel deletes entries meanwhile: a walk whose last key is gone starts over */
	for (uint32_t steps = 2 * bpf_map__max_entries(b->skel->maps.conn_pending);
	     steps > 0 && !bpf_map_get_next_key(fd, prev, &key); steps--) {
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, val))
			continue;
		memcpy(&head, val, sizeof(head)); /* the record's head */
		if ((int64_t)(head.since - limit) >= 0 || key_list_add(&old, &key))
			continue;
		/* old_heads[i] is old[i]'s while it keeps up (out of memory: the rest have
		 * none, their entries are held as before) */
		if (heads_ok && key_list_add(&old_heads, &head))
			heads_ok = false;
	}
	free(val);
	for (size_t i = 0; i < old.n; i++) {
		if (bpf_map_delete_elem(fd, (__u64 *)old.keys + i))
			continue; /* decided meanwhile */
		if (!gone.n || !bsearch((uint64_t *)old.keys + i, gone.keys, gone.n,
					sizeof(uint64_t), u64_cmp)) {
			n++;
			if (i < old_heads.n)
				given_up_add(b, (struct dstrace_conn_head *)old_heads.keys + i);
		}
		if (slots)
			__atomic_fetch_sub(&b->skel->bss->conn_spilled, 1, __ATOMIC_RELAXED);
		if (DSTRACE_CONN_KEY_IS_SK(((__u64 *)old.keys)[i]))
			__atomic_fetch_sub(&b->skel->bss->conn_by_sk, 1, __ATOMIC_RELAXED);
	}
	free(old.keys);
	free(old_heads.keys);
	free(gone.keys);
	b->conns_given_up += (uint64_t)n;
	return n;
}
