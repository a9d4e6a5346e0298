// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The per-process table: order, the kernel's peer count, the bound, and the merge with the kernel's
 * counters. ASan checks that proc_table__free() releases everything. */
#include <arpa/inet.h>
#include <string.h>
#include "aggregate.h"
#include "unit.h"

static struct dstrace_event event(uint32_t pid, const char *comm, uint32_t raddr)
{
	struct dstrace_event e = { .pid = pid, .uid = 1000, .raddr = raddr };

	strncpy(e.comm, comm, sizeof(e.comm));
	return e;
}

static uint32_t ipv4(const char *s)
{
	struct in_addr a = {};

	REQUIRE_TRUE(inet_pton(AF_INET, s, &a) == 1);
	return a.s_addr;
}

static void test_init_empty(void)
{
	struct proc_table t;

	memset(&t, 0xa5, sizeof(t));
	proc_table__init(&t);
	ASSERT_UINT_EQ(t.nprocs, 0);
	ASSERT_UINT_EQ(t.dropped, 0);
	ASSERT_TRUE(t.procs == NULL);
	proc_table__free(&t); /* freeing an empty table is fine */
	ASSERT_UINT_EQ(t.nprocs, 0);
}

static void test_sorted_by_pid(void)
{
	static const uint32_t order[] = { 300, 10, 2000000, 20, 1, 150, 20, 300 };
	static const uint32_t sorted[] = { 1, 10, 20, 150, 300, 2000000 };
	struct proc_table t;

	proc_table__init(&t);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		struct proc_entry *p = proc_table__get(&t, order[i]);

		REQUIRE_TRUE(p != NULL);
		ASSERT_UINT_EQ(p->pid, order[i]);
	}
	ASSERT_UINT_EQ(t.nprocs, sizeof(sorted) / sizeof(sorted[0]));
	proc_table__sort(&t); /* rows come in arrival order; sorted for printing */
	for (uint32_t i = 0; i < t.nprocs && i < sizeof(sorted) / sizeof(sorted[0]); i++)
		ASSERT_UINT_EQ(t.procs[i].pid, sorted[i]);
	ASSERT_UINT_EQ(t.dropped, 0);
	proc_table__free(&t);
}

/* Enough entries to grow the array several times, inserted out of order: every entry keeps
 * its own data through the moves. */
static void test_many_out_of_order(void)
{
	struct proc_table t;
	uint32_t n = 1000;

	proc_table__init(&t);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t pid = (i * 7919) % n + 1; /* a permutation of 1..n */
		struct proc_entry *p = proc_table__get(&t, pid);

		REQUIRE_TRUE(p != NULL);
		REQUIRE_TRUE(p->uid == 0); /* new, and zeroed */
		p->uid = pid * 3;
		p->bytes = pid;
	}
	REQUIRE_TRUE(t.nprocs == n);
	proc_table__sort(&t);
	for (uint32_t i = 0; i < n; i++) {
		if (!unit_check(UNIT_AT(false),
				t.procs[i].pid == i + 1 && t.procs[i].uid == 3 * (i + 1) &&
					t.procs[i].bytes == i + 1,
				"procs[%u]: pid %u uid %u bytes %llu", i, t.procs[i].pid,
				t.procs[i].uid, (unsigned long long)t.procs[i].bytes))
			break;
	}
	/* and a lookup finds them */
	ASSERT_UINT_EQ(proc_table__get(&t, 500)->uid, 1500);
	ASSERT_UINT_EQ(t.nprocs, n);
	proc_table__free(&t);
}

static void test_events_fill_entry(void)
{
	struct proc_table t;
	struct dstrace_event e = event(42, "curl", ipv4("192.0.2.1"));
	struct proc_entry *p;

	proc_table__init(&t);
	ASSERT_INT_EQ(proc_table__add_event(&t, &e), 0);
	e = event(42, "renamed", ipv4("192.0.2.1"));
	e.uid = 0;
	ASSERT_INT_EQ(proc_table__add_event(&t, &e), 0);
	REQUIRE_TRUE(t.nprocs == 1);
	p = &t.procs[0];
	ASSERT_UINT_EQ(p->pid, 42);
	ASSERT_STR_EQ(p->comm, "curl"); /* the first comm seen */
	ASSERT_UINT_EQ(p->uid, 1000);
	/* events carry no counters, peers included: those come from the kernel */
	ASSERT_UINT_EQ(proc_entry__peers(p), 0);
	for (int k = 0; k < DSTRACE_EV_MAX; k++)
		ASSERT_UINT_EQ(p->counts[k], 0);
	proc_table__free(&t);
}

static void test_unterminated_comm(void)
{
	struct proc_table t;
	struct dstrace_event e = event(1, "", 0);

	memcpy(e.comm, "sixteen-chars-xx", DSTRACE_COMM_LEN);
	proc_table__init(&t);
	ASSERT_INT_EQ(proc_table__add_event(&t, &e), 0);
	REQUIRE_TRUE(t.nprocs == 1);
	ASSERT_STR_EQ(t.procs[0].comm, "sixteen-chars-x");
	proc_table__free(&t);
}

/* Peers are the kernel's count: events add none (the kernel counted theirs already), each
 * read of the kernel's entry replaces the count, and a partial count is flagged and the
 * process counted once, however often it is read. */
static void test_peers_from_kernel(void)
{
	struct proc_table t;
	struct dstrace_event e = event(7, "app", ipv4("192.0.2.1"));
	struct dstrace_proc_stats st = { .peers = 5, .first_ns = 10, .comm = "app" };
	struct dstrace_proc_stats other = { .peers = 65536, .peers_partial = 1, .first_ns = 20,
					    .comm = "scanner" };

	proc_table__init(&t);
	ASSERT_INT_EQ(proc_table__add_event(&t, &e), 0);
	REQUIRE_TRUE(t.nprocs == 1);
	ASSERT_UINT_EQ(proc_entry__peers(&t.procs[0]), 0);
	ASSERT_INT_EQ(proc_table__set_stats(&t, 7, &st), 0);
	ASSERT_UINT_EQ(proc_entry__peers(&t.procs[0]), 5);
	ASSERT_TRUE(!t.procs[0].peers_partial);
	st.peers = 6;
	ASSERT_INT_EQ(proc_table__set_stats(&t, 7, &st), 0);
	ASSERT_INT_EQ(proc_table__add_event(&t, &e), 0);
	ASSERT_UINT_EQ(proc_entry__peers(&t.procs[0]), 6);
	ASSERT_UINT_EQ(t.peers_partial, 0);

	ASSERT_INT_EQ(proc_table__set_stats(&t, 8, &other), 0);
	ASSERT_INT_EQ(proc_table__set_stats(&t, 8, &other), 0);
	REQUIRE_TRUE(t.nprocs == 2);
	ASSERT_UINT_EQ(proc_entry__peers(&t.procs[1]), 65536);
	ASSERT_TRUE(t.procs[1].peers_partial);
	ASSERT_UINT_EQ(t.peers_partial, 1);
	ASSERT_UINT_EQ(t.dropped, 0);
	proc_table__free(&t);
}

static void add_peers(struct proc_table *t, uint32_t pid, uint32_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct dstrace_event e = event(pid, "scanner", htonl(first + i));

		if (!unit_check(UNIT_AT(false), proc_table__add_event(t, &e) == 0,
				"add_event(peer %u) failed", first + i))
			return;
	}
}

static void test_table_cap(void)
{
	struct proc_table t;
	struct dstrace_event e;
	struct dstrace_proc_stats st = { .counts = { { 1 } } };

	proc_table__init(&t);
	for (uint32_t pid = 1; pid <= PROC_TABLE_MAX; pid++) {
		if (!REQUIRE_TRUE(proc_table__get(&t, pid * 2) != NULL))
			break;
	}
	ASSERT_UINT_EQ(t.nprocs, PROC_TABLE_MAX);
	ASSERT_UINT_EQ(t.dropped, 0);

	/* new processes are dropped and counted, whichever way they come */
	ASSERT_TRUE(proc_table__get(&t, 3) == NULL);
	e = event(5, "late", ipv4("192.0.2.1"));
	ASSERT_INT_EQ(proc_table__add_event(&t, &e), -1);
	ASSERT_INT_EQ(proc_table__set_stats(&t, 2 * PROC_TABLE_MAX + 2, &st), -1);
	ASSERT_UINT_EQ(t.dropped, 3);
	ASSERT_UINT_EQ(t.nprocs, PROC_TABLE_MAX);

	/* processes already in stay reachable, and are not counted as dropped */
	e = event(2, "early", ipv4("192.0.2.1"));
	ASSERT_INT_EQ(proc_table__add_event(&t, &e), 0);
	ASSERT_INT_EQ(proc_table__set_stats(&t, 2 * PROC_TABLE_MAX, &st), 0);
	ASSERT_UINT_EQ(t.dropped, 3);
	ASSERT_UINT_EQ(t.procs[0].pid, 2);
	ASSERT_STR_EQ(t.procs[0].comm, "early");
	ASSERT_UINT_EQ(t.procs[PROC_TABLE_MAX - 1].pid, 2 * PROC_TABLE_MAX);
	ASSERT_UINT_EQ(t.procs[PROC_TABLE_MAX - 1].counts[0], 1);
	proc_table__free(&t);
}

static void test_set_stats(void)
{
	struct proc_table t;
	struct dstrace_event e1 = event(100, "from-event", ipv4("192.0.2.1"));
	struct dstrace_event e2 = event(100, "from-event", ipv4("192.0.2.2"));
	/* TCP and UDP add up in the table; BYTES are UDP payload bytes, both directions */
	struct dstrace_proc_stats st = {
		.counts = { { 1, 0 }, { 2, 0 }, { 0, 3 }, { 0, 4 } },
		.failed = 5,
		.bytes = { { 1000, 2 }, { 2000, 4 } },
		.peers = 2,
		.uid = 33,
		.comm = "from-kernel",
	};
	struct proc_entry *p;

	proc_table__init(&t);
	ASSERT_INT_EQ(proc_table__add_event(&t, &e1), 0);
	ASSERT_INT_EQ(proc_table__add_event(&t, &e2), 0);
	ASSERT_INT_EQ(proc_table__set_stats(&t, 100, &st), 0);
	REQUIRE_TRUE(t.nprocs == 1);
	p = &t.procs[0];
	ASSERT_STR_EQ(p->comm, "from-kernel");
	ASSERT_UINT_EQ(p->uid, 33);
	ASSERT_UINT_EQ(p->counts[DSTRACE_EV_CONNECT], 1);
	ASSERT_UINT_EQ(p->counts[DSTRACE_EV_ACCEPT], 2);
	ASSERT_UINT_EQ(p->counts[DSTRACE_EV_SEND], 3);
	ASSERT_UINT_EQ(p->counts[DSTRACE_EV_RECV], 4);
	ASSERT_UINT_EQ(p->failed, 5);
	ASSERT_UINT_EQ(p->bytes, 6);
	ASSERT_UINT_EQ(proc_entry__peers(p), 2);

	/* the kernel's totals replace ours: a second read is not added to the first */
	st.counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] = 7;
	st.counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_UDP] = 3;
	st.counts[DSTRACE_EV_RECV][DSTRACE_PROTO_UDP] = 0;
	st.failed = 0;
	st.bytes[DSTRACE_DIR_SENT][DSTRACE_PROTO_UDP] = 200;
	st.bytes[DSTRACE_DIR_RECEIVED][DSTRACE_PROTO_UDP] = 400;
	ASSERT_INT_EQ(proc_table__set_stats(&t, 100, &st), 0);
	ASSERT_UINT_EQ(p->counts[DSTRACE_EV_CONNECT], 10);
	ASSERT_UINT_EQ(p->counts[DSTRACE_EV_ACCEPT], 2);
	ASSERT_UINT_EQ(p->counts[DSTRACE_EV_RECV], 0);
	ASSERT_UINT_EQ(p->failed, 0);
	ASSERT_UINT_EQ(p->bytes, 600);
	/* the kernel's peer count, events add nothing to it */
	ASSERT_UINT_EQ(proc_entry__peers(p), 2);
	e2.raddr = ipv4("192.0.2.3");
	ASSERT_INT_EQ(proc_table__add_event(&t, &e2), 0);
	ASSERT_UINT_EQ(proc_entry__peers(p), 2);
	ASSERT_STR_EQ(p->comm, "from-kernel");
	ASSERT_UINT_EQ(p->counts[DSTRACE_EV_CONNECT], 10);
	proc_table__free(&t);
}

/* A process the kernel counted but no event was read for (e.g. -i mode dropped them). */
static void test_set_stats_new_process(void)
{
	struct proc_table t;
	struct dstrace_proc_stats st = {
		.counts = { [DSTRACE_EV_SEND] = { 0, 9 } },
		.bytes = { [DSTRACE_DIR_SENT] = { 0, 4096 } },
		.comm = "dns",
	};

	proc_table__init(&t);
	ASSERT_INT_EQ(proc_table__set_stats(&t, 53, &st), 0);
	ASSERT_INT_EQ(proc_table__set_stats(&t, 52, &st), 0);
	REQUIRE_TRUE(t.nprocs == 2);
	proc_table__sort(&t);
	ASSERT_UINT_EQ(t.procs[0].pid, 52);
	ASSERT_UINT_EQ(t.procs[1].pid, 53);
	ASSERT_STR_EQ(t.procs[1].comm, "dns");
	ASSERT_UINT_EQ(t.procs[1].counts[DSTRACE_EV_SEND], 9);
	ASSERT_UINT_EQ(proc_entry__peers(&t.procs[1]), 0);
	proc_table__free(&t);
}

/* Many processes made from events: free leaves nothing behind (LeakSanitizer at exit) and the
 * table can be used again. */
static void test_free(void)
{
	struct proc_table t;

	proc_table__init(&t);
	for (uint32_t pid = 1; pid <= 200; pid++)
		add_peers(&t, pid, pid << 8, pid % 40 + 1);
	ASSERT_UINT_EQ(t.nprocs, 200);
	proc_table__free(&t);
	ASSERT_UINT_EQ(t.nprocs, 0);
	ASSERT_UINT_EQ(t.cap, 0);
	ASSERT_UINT_EQ(t.dropped, 0);
	ASSERT_TRUE(t.procs == NULL);

	add_peers(&t, 1, 1, 3);
	ASSERT_UINT_EQ(t.nprocs, 1);
	ASSERT_UINT_EQ(t.procs[0].pid, 1);
	proc_table__free(&t);
}

/* One row per kernel entry: a pid reused (or a program exec()ed) after its entry ended gets
 * a row of its own; the ended row keeps its final counts. */
static void test_entry_rows(void)
{
	struct proc_table t;
	struct dstrace_proc_stats old = { .first_ns = 100, .exit_ns = 200, .peers = 1,
					  .comm = "curl" };
	struct dstrace_proc_stats new = { .first_ns = 300, .peers = 3, .comm = "wget" };
	struct dstrace_event late = { .pid = 42, .ts_ns = 150, .raddr = 1 };
	struct dstrace_event next = { .pid = 42, .ts_ns = 350, .raddr = 2 };

	old.counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] = 1;
	new.counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] = 5;
	proc_table__init(&t);
	ASSERT_INT_EQ(proc_table__set_stats(&t, 42, &old), 0);
	ASSERT_INT_EQ(proc_table__add_event(&t, &late), 0); /* before the end: the same row */
	ASSERT_UINT_EQ(t.nprocs, 1);
	ASSERT_INT_EQ(proc_table__add_event(&t, &next), 0); /* after it: a new row */
	ASSERT_UINT_EQ(t.nprocs, 2);
	ASSERT_INT_EQ(proc_table__set_stats(&t, 42, &new), 0); /* that row is the new entry's */
	ASSERT_INT_EQ(proc_table__set_stats(&t, 42, &old), 0); /* seen again: its own row */
	ASSERT_UINT_EQ(t.nprocs, 2);
	proc_table__sort(&t);
	ASSERT_STR_EQ(t.procs[0].comm, "curl");
	ASSERT_UINT_EQ(t.procs[0].counts[DSTRACE_EV_CONNECT], 1);
	ASSERT_UINT_EQ(proc_entry__peers(&t.procs[0]), 1);
	ASSERT_STR_EQ(t.procs[1].comm, "wget");
	ASSERT_UINT_EQ(t.procs[1].counts[DSTRACE_EV_CONNECT], 5);
	ASSERT_UINT_EQ(proc_entry__peers(&t.procs[1]), 3);
	proc_table__free(&t);
}

/* A full table: an ended process's final counts still add up, in the "(ended)" row. */
static void test_full_table_others(void)
{
	struct proc_table t;
	struct dstrace_proc_stats st = { .first_ns = 1, .exit_ns = 2, .comm = "x" };

	st.counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_UDP] = 2;
	proc_table__init(&t);
	for (uint32_t pid = 1; pid <= PROC_TABLE_MAX; pid++)
		REQUIRE_TRUE(proc_table__get(&t, pid) != NULL);
	ASSERT_INT_EQ(proc_table__set_stats(&t, PROC_TABLE_MAX + 1, &st), 0);
	ASSERT_INT_EQ(proc_table__set_stats(&t, PROC_TABLE_MAX + 2, &st), 0);
	ASSERT_STR_EQ(t.others.comm, "(ended)");
	ASSERT_UINT_EQ(t.others.counts[DSTRACE_EV_CONNECT], 4);
	st.exit_ns = 0; /* a running one that does not fit: dropped, counted */
	ASSERT_INT_EQ(proc_table__set_stats(&t, PROC_TABLE_MAX + 3, &st), -1);
	ASSERT_UINT_EQ(t.dropped, 3);
	proc_table__free(&t);
}

static const CU_TestInfo tests[] = {
	{ "init and free an empty table", test_init_empty },
	{ "sorted by pid", test_sorted_by_pid },
	{ "many, out of order", test_many_out_of_order },
	{ "events fill comm and uid", test_events_fill_entry },
	{ "unterminated comm", test_unterminated_comm },
	{ "peers: the kernel's count", test_peers_from_kernel },
	{ "table cap", test_table_cap },
	{ "set_stats replaces counters, keeps peers", test_set_stats },
	{ "set_stats for a new process", test_set_stats_new_process },
	{ "free releases everything", test_free },
	{ "a row per kernel entry", test_entry_rows },
	{ "full table: ended processes in others", test_full_table_others },
	CU_TEST_INFO_NULL,
};

int register_aggregate_tests(void)
{
	return unit_add_suite("aggregate", tests, NULL);
}
