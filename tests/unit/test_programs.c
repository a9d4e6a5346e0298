// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests of user/programs.c, the program table: deltas of the kernel's per-process
 * counters folded into programs, entries that ended (exit, exec, a reused pid) folded once,
 * liveness and the reclaim of pids and flows not seen lately, UDP flows, peers, bounds. Pids
 * above pid_max: no /proc lookup ever finds them. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "programs.h"
#include "unit.h"

#define PID 5000001 /* above any pid_max: /proc never answers for it */

/* A kernel entry of executable /usr/bin/<name>, made at first_ns, with n connects. */
struct dstrace_proc_stats unit_proc_entry(const char *name, uint64_t first_ns, uint64_t n)
{
	struct dstrace_proc_stats st = { .first_ns = first_ns, .last_ns = first_ns, .uid = 7,
					 .cgroup_id = 1, .netns = 99 };

	snprintf(st.comm, sizeof(st.comm), "%s", name);
	snprintf(st.exe_parts[0], sizeof(st.exe_parts[0]), "%s", name);
	snprintf(st.exe_parts[1], sizeof(st.exe_parts[1]), "bin");
	snprintf(st.exe_parts[2], sizeof(st.exe_parts[2]), "usr");
	st.counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] = n;
	return st;
}

static const struct audit_program *program(const struct audit *a, const char *exe)
{
	for (uint32_t i = 0; i < a->nprograms; i++) {
		if (!strcmp(a->programs[i].exe, exe))
			return &a->programs[i];
	}
	return NULL;
}

static uint64_t connects(const struct audit *a, const char *exe)
{
	const struct audit_program *p = program(a, exe);

	return p ? p->counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] : 0;
}

static void test_deltas(void)
{
	struct audit a;
	struct dstrace_proc_stats st = unit_proc_entry("curl", 100, 2);

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	ASSERT_TRUE(!audit__add_proc(&a, PID, &st)); /* running: not ended */
	st.counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] = 5;
	st.last_ns = 200;
	ASSERT_TRUE(!audit__add_proc(&a, PID, &st));
	ASSERT_TRUE(!audit__add_proc(&a, PID, &st)); /* same counts twice: no double count */
	ASSERT_UINT_EQ(a.nprograms, 1);
	ASSERT_STR_EQ(a.programs[0].exe, "/usr/bin/curl");
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/curl"), 5);
	ASSERT_UINT_EQ(a.programs[0].pids, 1);
	ASSERT_UINT_EQ(a.programs[0].last_ns, 200);
	/* another process of the same program adds up */
	st = unit_proc_entry("curl", 150, 4);
	audit__add_proc(&a, PID + 1, &st);
	ASSERT_UINT_EQ(a.nprograms, 1);
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/curl"), 9);
	ASSERT_UINT_EQ(a.programs[0].pids, 2);
	audit__free(&a);
}

/* The process ends: its last counts are folded, the caller told to free the entry; an event
 * queued before the end still finds the program, one after it is another process's. */
static void test_exited_fold(void)
{
	struct audit a;
	struct dstrace_proc_stats st = unit_proc_entry("curl", 100, 1);
	uint64_t kid;

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	audit__add_proc(&a, PID, &st);
	ASSERT_TRUE(!audit__wants_proc(&a, PID, 150, &kid)); /* followed, running */
	ASSERT_UINT_EQ(kid, 100);
	audit__proc_ending(&a, PID, 290); /* the kernel's notice, before the entry is read */
	ASSERT_TRUE(!audit__wants_proc(&a, PID, 280, &kid));
	ASSERT_TRUE(audit__wants_proc(&a, PID, 295, &kid)); /* after: look the new one up */
	ASSERT_UINT_EQ(kid, 100); /* ... and fold this one first */
	st.counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] = 3;
	st.exit_ns = 300;
	st.ended_by = DSTRACE_END_EXIT;
	ASSERT_TRUE(audit__add_proc(&a, PID, &st)); /* ended: free it */
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/curl"), 3);
	ASSERT_TRUE(audit__add_proc(&a, PID, &st)); /* seen again: nothing added */
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/curl"), 3);
	ASSERT_TRUE(!audit__wants_proc(&a, PID, 250, &kid)); /* from before the end */
	ASSERT_TRUE(audit__wants_proc(&a, PID, 350, &kid));  /* after it: a new process */
	ASSERT_UINT_EQ(kid, 0);

	/* the pid reused by another program: its own totals, nothing inherited */
	st = unit_proc_entry("wget", 400, 2);
	ASSERT_TRUE(!audit__add_proc(&a, PID, &st));
	ASSERT_UINT_EQ(a.nprograms, 2);
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/wget"), 2);
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/curl"), 3);
	ASSERT_UINT_EQ(program(&a, "/usr/bin/wget")->pids, 1);
	ASSERT_UINT_EQ(program(&a, "/usr/bin/curl")->pids, 1);
	audit__free(&a);
}

/* exec: the old program's entry ended, the new one follows; whichever order they are seen
 * in, each connect is counted once, in its program. */
static void test_exec(void)
{
	struct audit a;
	struct dstrace_proc_stats old = unit_proc_entry("sh", 100, 1), new = unit_proc_entry("nc", 500, 4);

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	audit__add_proc(&a, PID, &old);
	old.counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] = 2; /* one more before exec */
	old.exit_ns = 450;
	old.ended_by = DSTRACE_END_EXEC;
	/* an event of the new program came first: its ended entry, then the new one */
	ASSERT_TRUE(audit__add_proc(&a, PID, &old));
	ASSERT_TRUE(!audit__add_proc(&a, PID, &new));
	/* the harvest then walks both again: nothing counted twice */
	ASSERT_TRUE(audit__add_proc(&a, PID, &old));
	ASSERT_TRUE(!audit__add_proc(&a, PID, &new));
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/sh"), 2);
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/nc"), 4);
	audit__free(&a);
}

static void test_drops(void)
{
	struct audit a;
	struct dstrace_proc_stats st = unit_proc_entry("nginx", 100, 0);
	struct dstrace_event e = { .pid = PID, .ts_ns = 150, .kind = DSTRACE_EV_ACCEPT,
				   .proto = DSTRACE_PROTO_TCP, .raddr = 0x0100000a };
	struct dstrace_drops d = { .lost = 3 };

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	audit__add_proc(&a, PID, &st);
	for (uint16_t port = 1; port <= AUDIT_PORTS_MAX + 5; port++) {
		e.lport = port;
		audit__add_event(&a, &e);
	}
	audit__drops(&a, &d);
	ASSERT_UINT_EQ(d.ports, 5);
	ASSERT_UINT_EQ(d.lost, 3); /* left as it was */
	ASSERT_UINT_EQ(d.programs, 0);
	audit__free(&a);
}

/* pid is followed, with the kernel entry made at kid, and not yet reclaimed. */
static bool followed(struct audit *a, uint32_t pid, uint64_t kid)
{
	uint64_t got;

	return !audit__wants_proc(a, pid, 1, &got) && got == kid;
}

/* A running process's entry stays while the passes see it; one not seen for two passes (it
 * ended between the walks and nothing said so) is reclaimed; an ended one is kept one more
 * pass (for an event still queued) and then reclaimed. The programs stay. */
static void test_reclaim(void)
{
	struct audit a;
	struct dstrace_proc_stats run = unit_proc_entry("curl", 100, 1), gone = unit_proc_entry("wget", 100, 1);
	struct dstrace_proc_stats ends = unit_proc_entry("nc", 100, 1);

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	audit__add_proc(&a, PID, &run);
	audit__add_proc(&a, PID + 1, &gone);
	audit__add_proc(&a, PID + 2, &ends);
	audit__flows_done(&a); /* pass 0: every entry seen */
	ASSERT_UINT_EQ(a.npids, 3);

	audit__add_proc(&a, PID, &run); /* pass 1: wget not seen */
	ends.exit_ns = 200;
	ASSERT_TRUE(audit__add_proc(&a, PID + 2, &ends)); /* nc ended: folded, free it */
	audit__flows_done(&a);
	ASSERT_UINT_EQ(a.npids, 3); /* wget missed one pass; nc kept one more */
	ASSERT_TRUE(followed(&a, PID + 1, 100));

	audit__add_proc(&a, PID, &run); /* pass 2 */
	audit__flows_done(&a);
	ASSERT_UINT_EQ(a.npids, 1); /* wget reclaimed (two passes unseen), nc's pass is over */
	ASSERT_TRUE(followed(&a, PID, 100));
	ASSERT_TRUE(!followed(&a, PID + 1, 100));
	ASSERT_TRUE(!followed(&a, PID + 2, 100));
	ASSERT_UINT_EQ(a.nprograms, 3); /* totals outlive their processes */
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/nc"), 1);

	/* pid reused after the reclaim: a new entry, counted from zero */
	ends = unit_proc_entry("nc", 300, 2);
	ASSERT_TRUE(!audit__add_proc(&a, PID + 2, &ends));
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/nc"), 3);
	ASSERT_UINT_EQ(program(&a, "/usr/bin/nc")->pids, 2);
	audit__free(&a);
}

/* An ended entry older than the one followed, never seen before (the newer one was found
 * first): folded whole into its own program, once; the one followed is untouched. An older
 * entry still running is not ours to fold. */
static void test_older_entry(void)
{
	struct audit a;
	struct dstrace_proc_stats new = unit_proc_entry("nc", 500, 4), old = unit_proc_entry("sh", 100, 3);

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	audit__add_proc(&a, PID, &new);
	ASSERT_TRUE(!audit__add_proc(&a, PID, &old)); /* still running: left alone */
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/sh"), 0);
	old.exit_ns = 450;
	ASSERT_TRUE(audit__add_proc(&a, PID, &old));
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/sh"), 3);
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/nc"), 4);
	ASSERT_TRUE(followed(&a, PID, 500));
	audit__free(&a);
}

/* An event before the process's entry was read: the slot is made from the event (its
 * program from /proc, here gone: "?/comm"), and the entry, read later, is adopted. */
static void test_event_first(void)
{
	struct audit a;
	struct dstrace_event e = { .pid = PID, .ts_ns = 150, .kind = DSTRACE_EV_CONNECT,
				   .proto = DSTRACE_PROTO_TCP, .raddr = 0x0100000a, .rport = 80,
				   .comm = "curl" };
	struct dstrace_proc_stats st = unit_proc_entry("curl", 100, 1);
	uint64_t kid;

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	audit__add_event(&a, &e);
	ASSERT_UINT_EQ(a.nprograms, 1);
	ASSERT_STR_EQ(a.programs[0].exe, "?/curl");
	ASSERT_TRUE(audit__wants_proc(&a, PID, 160, &kid)); /* no entry yet: look it up */
	ASSERT_TRUE(!audit__add_proc(&a, PID, &st));
	ASSERT_TRUE(!audit__wants_proc(&a, PID, 170, &kid));
	ASSERT_UINT_EQ(kid, 100);
	ASSERT_UINT_EQ(a.nprograms, 1); /* the slot's program: not a second one */
	ASSERT_UINT_EQ(a.programs[0].npeers, 1);
	audit__free(&a);
}

/* Failures by errno (and kind), ports once each, TCP peers by count then address. */
static void test_events(void)
{
	struct audit a;
	struct dstrace_proc_stats st = unit_proc_entry("app", 100, 0);
	struct dstrace_event e = { .pid = PID, .ts_ns = 150, .proto = DSTRACE_PROTO_TCP };
	struct audit_peer top[4];
	const struct audit_program *p;

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	audit__add_proc(&a, PID, &st);
	e.kind = DSTRACE_EV_CONNECT;
	e.ret = -ECONNREFUSED;
	audit__add_event(&a, &e);
	audit__add_event(&a, &e);
	e.ret = 0;
	e.raddr = htonl(0x0a000002);
	e.rport = 443;
	audit__add_event(&a, &e);
	e.raddr = htonl(0x0a000001);
	audit__add_event(&a, &e);
	audit__add_event(&a, &e);
	e.kind = DSTRACE_EV_ACCEPT;
	e.lport = 8080;
	audit__add_event(&a, &e);
	audit__add_event(&a, &e);
	e.kind = DSTRACE_EV_EXISTING; /* there before dstrace, inbound: an accept */
	e.flags = DSTRACE_F_INBOUND;
	e.lport = 22;
	audit__add_event(&a, &e);
	p = program(&a, "/usr/bin/app");
	REQUIRE_TRUE(p != NULL);
	ASSERT_UINT_EQ(p->nerrnos, 1);
	ASSERT_INT_EQ(p->errnos[0].err, ECONNREFUSED);
	ASSERT_UINT_EQ(p->errnos[0].count, 2);
	ASSERT_UINT_EQ(p->nports, 2);
	ASSERT_UINT_EQ(p->ports[0], 8080);
	ASSERT_UINT_EQ(p->ports[1], 22);
	ASSERT_UINT_EQ(audit_program__top_peers(p, top, 4), 4);
	ASSERT_UINT_EQ(top[0].count, 2); /* busiest first, then by address */
	ASSERT_UINT_EQ(top[0].dir, AUDIT_DIR_OUT);
	ASSERT_UINT_EQ(ntohl(top[0].addr), 0x0a000001);
	ASSERT_UINT_EQ(top[1].count, 2);
	ASSERT_UINT_EQ(top[1].dir, AUDIT_DIR_IN);
	ASSERT_UINT_EQ(top[1].port, 8080);
	ASSERT_UINT_EQ(audit_program__top_peers(p, top, 1), 1);
	audit__free(&a);
}

/* UDP flows: datagrams by delta, a flow of a pid not followed waits for the next pass, a
 * flow of an ended process can go, a flow not seen in a pass is forgotten. */
static void test_flows(void)
{
	struct audit a;
	struct dstrace_proc_stats st = unit_proc_entry("dig", 100, 0);
	struct dstrace_flow_key k = { .sock_ino = 7, .pid = PID, .raddr = htonl(0x0a000035),
				      .rport = 53, .kind = DSTRACE_EV_SEND };
	struct dstrace_flow_val v = { .datagrams = 3, .lport = 40000 };
	struct audit_peer top[2];

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	k.pid = PID + 1;
	ASSERT_TRUE(!audit__add_flow(&a, &k, &v)); /* not followed: left for the next pass */
	ASSERT_UINT_EQ(a.nflows, 0);
	k.pid = PID;
	audit__add_proc(&a, PID, &st);
	ASSERT_TRUE(!audit__add_flow(&a, &k, &v));
	v.datagrams = 5;
	ASSERT_TRUE(!audit__add_flow(&a, &k, &v));
	ASSERT_UINT_EQ(a.nflows, 1);
	ASSERT_UINT_EQ(audit_program__top_peers(&a.programs[0], top, 2), 1);
	ASSERT_UINT_EQ(top[0].count, 5); /* 3, then 2 more: not 8 */
	ASSERT_UINT_EQ(top[0].proto, DSTRACE_PROTO_UDP);
	ASSERT_UINT_EQ(top[0].port, 53);
	audit__flows_done(&a);
	ASSERT_UINT_EQ(a.nflows, 1); /* seen in this pass */
	audit__flows_done(&a);
	ASSERT_UINT_EQ(a.nflows, 0); /* not seen in the next */
	audit__add_proc(&a, PID, &st);
	st.exit_ns = 300;
	ASSERT_TRUE(audit__add_proc(&a, PID, &st));
	ASSERT_TRUE(audit__add_flow(&a, &k, &v)); /* its process ended: delete it */
	audit__free(&a);
}

/* A UDP service's replies and a client's answers (the flows the peer began): counted as
 * replies, not as peers of their own; the flows the program began are its peers. */
static void test_flow_answers(void)
{
	struct audit a;
	struct dstrace_proc_stats st = unit_proc_entry("named", 100, 0);
	struct dstrace_flow_key k = { .sock_ino = 7, .pid = PID, .raddr = htonl(0xc0000201),
				      .rport = 41000, .kind = DSTRACE_EV_RECV };
	struct dstrace_flow_val v = { .datagrams = 4, .lport = 53 };
	struct audit_peer top[4];

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	audit__add_proc(&a, PID, &st);
	audit__add_flow(&a, &k, &v); /* a client's 4 queries to port 53 */
	k.kind = DSTRACE_EV_SEND;
	v.answer = 1;
	v.datagrams = 3;
	audit__add_flow(&a, &k, &v); /* 3 answered so far */
	v.datagrams = 4;
	audit__add_flow(&a, &k, &v); /* then the fourth */
	k.rport = 53;		     /* its own query to another server, answered twice */
	k.raddr = htonl(0xc0000202);
	v.answer = 0;
	v.datagrams = 2;
	v.lport = 42000;
	audit__add_flow(&a, &k, &v);
	k.kind = DSTRACE_EV_RECV;
	v.answer = 1;
	audit__add_flow(&a, &k, &v);
	ASSERT_UINT_EQ(a.programs[0].udp_replies[DSTRACE_DIR_SENT], 4);
	ASSERT_UINT_EQ(a.programs[0].udp_replies[DSTRACE_DIR_RECEIVED], 2);
	REQUIRE_TRUE(audit_program__top_peers(&a.programs[0], top, 4) == 2);
	ASSERT_UINT_EQ(top[0].dir, AUDIT_DIR_IN); /* the client, on the service's port */
	ASSERT_UINT_EQ(top[0].port, 53);
	ASSERT_UINT_EQ(top[0].count, 4);
	ASSERT_UINT_EQ(top[1].dir, AUDIT_DIR_OUT); /* the server it asked */
	ASSERT_UINT_EQ(top[1].port, 53);
	ASSERT_UINT_EQ(top[1].count, 2);
	audit__free(&a);
}

/* Bounds: a full pid table and a full program table count what did not fit. */
static void test_full_tables(void)
{
	struct audit a;
	struct dstrace_proc_stats st = unit_proc_entry("busy", 100, 1);
	struct dstrace_drops d = {};

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	for (uint32_t i = 0; i <= AUDIT_PIDS_MAX; i++)
		audit__add_proc(&a, PID + i, &st);
	ASSERT_UINT_EQ(a.npids, AUDIT_PIDS_MAX);
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/busy"), AUDIT_PIDS_MAX); /* the last one: dropped */
	audit__free(&a);

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	for (uint32_t i = 0; i <= AUDIT_PROGRAMS_MAX; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%u", i);
		st = unit_proc_entry(name, 100, 1);
		audit__add_proc(&a, PID + i, &st);
	}
	ASSERT_UINT_EQ(a.nprograms, AUDIT_PROGRAMS_MAX);
	audit__drops(&a, &d);
	ASSERT_UINT_EQ(d.programs, 1);
	ASSERT_UINT_EQ(d.pids, 0);
	audit__free(&a);
}

static uint64_t failed(const struct audit *a, const char *exe)
{
	const struct audit_program *p = program(a, exe);

	return p ? p->failed : 0;
}

/* errno err's failures counted in program exe's table. */
static uint64_t failures_of(const struct audit *a, const char *exe, int err)
{
	const struct audit_program *p = program(a, exe);

	for (uint32_t i = 0; p && i < p->nerrnos; i++)
		if (p->errnos[i].err == err)
			return p->errnos[i].count;
	return 0;
}

/* The process ended during a dial: its entry, ended but held for the connect's outcome
 * (pending), is not final (not freed); its outcome, late (DSTRACE_F_LATE, after the end),
 * is its program's, not a newer process's; then it is final. */
static void test_held_for_outcome(void)
{
	struct audit a;
	struct dstrace_proc_stats st = unit_proc_entry("curl", 100, 1);
	struct dstrace_event e = { .pid = PID, .ts_ns = 700, .kind = DSTRACE_EV_CONNECT,
				   .proto = DSTRACE_PROTO_TCP, .ret = -ECONNABORTED,
				   .flags = DSTRACE_F_LATE, .comm = "curl", .entry_ns = 100 };
	uint64_t kid;

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	audit__add_proc(&a, PID, &st);
	st.exit_ns = 300;
	st.pending = 1;
	ASSERT_TRUE(!audit__add_proc(&a, PID, &st)); /* held: not to be freed */
	ASSERT_TRUE(audit__wants_proc(&a, PID, 350, &kid)); /* ended: a later event is new */
	st.failed = 1;
	st.pending = 0;
	audit__add_event(&a, &e);
	ASSERT_UINT_EQ(a.nprograms, 1); /* no "?/curl": the entry's own program */
	ASSERT_UINT_EQ(failures_of(&a, "/usr/bin/curl", ECONNABORTED), 1);
	ASSERT_TRUE(audit__add_proc(&a, PID, &st)); /* final */
	ASSERT_UINT_EQ(failed(&a, "/usr/bin/curl"), 1);
	ASSERT_UINT_EQ(connects(&a, "/usr/bin/curl"), 1);
	ASSERT_UINT_EQ(program(&a, "/usr/bin/curl")->pids, 1);
	audit__free(&a);
}

/* exec() during a dial, and the new program's entry is followed before the old one's outcome
 * comes: the old entry, held, is followed beside it (a->late) until final; the outcome and its
 * count are the old program's. Also when the old entry was never seen before. */
static void test_held_superseded(void)
{
	struct audit a;
	struct dstrace_proc_stats old = unit_proc_entry("sh", 100, 1), new = unit_proc_entry("nc", 500, 4);
	struct dstrace_event e = { .pid = PID, .ts_ns = 700, .kind = DSTRACE_EV_CONNECT,
				   .proto = DSTRACE_PROTO_TCP, .ret = -ECONNABORTED,
				   .flags = DSTRACE_F_LATE, .comm = "nc", .entry_ns = 100 };
	struct dstrace_drops d = {};

	for (int seen = 0; seen < 2; seen++) {
		REQUIRE_TRUE(audit__init(&a, 16) == 0);
		old.exit_ns = 450;
		old.pending = 1;
		old.failed = 0;
		if (seen)
			ASSERT_TRUE(!audit__add_proc(&a, PID, &old)); /* held */
		ASSERT_TRUE(!audit__add_proc(&a, PID, &new));
		old.failed = 1;
		old.pending = 0;
		audit__follow_late(&a, PID, &old); /* the event's lookup (run.c) */
		audit__add_event(&a, &e);
		ASSERT_UINT_EQ(failures_of(&a, "/usr/bin/sh", ECONNABORTED), 1);
		ASSERT_UINT_EQ(failures_of(&a, "/usr/bin/nc", ECONNABORTED), 0);
		ASSERT_TRUE(audit__add_proc(&a, PID, &old)); /* final: freed */
		ASSERT_TRUE(audit__add_proc(&a, PID, &old)); /* seen again: nothing added */
		ASSERT_TRUE(!audit__add_proc(&a, PID, &new));
		audit__flows_done(&a);
		/* its event read after it was folded: still its program's, for one pass */
		audit__add_event(&a, &e);
		ASSERT_UINT_EQ(failures_of(&a, "/usr/bin/sh", ECONNABORTED), 2);
		ASSERT_TRUE(!audit__add_proc(&a, PID, &new));
		audit__flows_done(&a);
		audit__add_event(&a, &e); /* then the late record is free: the slot's */
		ASSERT_UINT_EQ(failures_of(&a, "/usr/bin/sh", ECONNABORTED), 2);
		ASSERT_UINT_EQ(failures_of(&a, "/usr/bin/nc", ECONNABORTED), 1);
		ASSERT_UINT_EQ(failed(&a, "/usr/bin/sh"), 1);
		ASSERT_UINT_EQ(connects(&a, "/usr/bin/sh"), 1);
		ASSERT_UINT_EQ(connects(&a, "/usr/bin/nc"), 4);
		ASSERT_UINT_EQ(program(&a, "/usr/bin/sh")->pids, 1);
		ASSERT_UINT_EQ(program(&a, "/usr/bin/nc")->pids, 1);
		d.proc_full = 0;
		audit__drops(&a, &d);
		ASSERT_UINT_EQ(d.proc_full, 0);
		audit__free(&a);
	}
}

static const CU_TestInfo tests[] = {
	{ "deltas", test_deltas },
	{ "exited fold, reused pid", test_exited_fold },
	{ "exec", test_exec },
	{ "drops", test_drops },
	{ "reclaim: unseen and ended pids", test_reclaim },
	{ "an older entry ended, never seen", test_older_entry },
	{ "event before the entry", test_event_first },
	{ "held for a connect's outcome", test_held_for_outcome },
	{ "held, superseded by a newer entry", test_held_superseded },
	{ "errnos, ports, peers", test_events },
	{ "UDP flows", test_flows },
	{ "UDP replies and answers", test_flow_answers },
	{ "full tables", test_full_tables },
	CU_TEST_INFO_NULL,
};

int register_programs_tests(void)
{
	return unit_add_suite("programs", tests, NULL);
}
