// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests of user/audit.c: the program table, deltas of the kernel's per-process counters,
 * entries that ended (exit, exec, a reused pid) folded once, changed-only sets, and the
 * whole-or-nothing writes. Pids above pid_max: no /proc lookup ever finds them. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit.h"
#include "unit.h"

#define PID 5000001 /* above any pid_max: /proc never answers for it */

/* A kernel entry of executable /usr/bin/<name>, made at first_ns, with n connects. */
static struct dstrace_proc_stats entry(const char *name, uint64_t first_ns, uint64_t n)
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
	struct dstrace_proc_stats st = entry("curl", 100, 2);

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
	st = entry("curl", 150, 4);
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
	struct dstrace_proc_stats st = entry("curl", 100, 1);
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
	st = entry("wget", 400, 2);
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
	struct dstrace_proc_stats old = entry("sh", 100, 1), new = entry("nc", 500, 4);

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

/* Only programs that changed since the last set written; every program when asked. */
static void test_changed_only(void)
{
	struct audit a;
	struct dstrace_proc_stats one = entry("curl", 100, 1), two = entry("wget", 100, 1);
	struct audit_run_info run = { .run_id = "r", .host = "h", .backend = "tracepoint" };
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	REQUIRE_TRUE(audit__init(&a, 16) == 0);
	audit__add_proc(&a, PID, &one);
	audit__add_proc(&a, PID + 1, &two);
	mem = open_memstream(&buf, &len);
	REQUIRE_TRUE(mem != NULL);
	ASSERT_INT_EQ(audit__write(&a, mem, &run, false), 2); /* both new */
	audit__written(&a);
	ASSERT_INT_EQ(audit__write(&a, mem, &run, false), 0); /* nothing changed */
	one.counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] = 2;
	audit__add_proc(&a, PID, &one);
	audit__add_proc(&a, PID + 1, &two); /* unchanged */
	ASSERT_INT_EQ(audit__write(&a, mem, &run, false), 1);
	ASSERT_INT_EQ(audit__write(&a, mem, &run, true), 2); /* a full set */
	fclose(mem);
	ASSERT_TRUE(strstr(buf, "\"programs\":2,\"programs_dropped\":0,\"written\":1,\"drops\":{") != NULL);
	ASSERT_TRUE(strstr(buf, "\"write_errors\":0,\"final\":false}\n") != NULL);
	free(buf);
	audit__free(&a);
}

static void test_drops(void)
{
	struct audit a;
	struct dstrace_proc_stats st = entry("nginx", 100, 0);
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

/* Whole or nothing: a failed write leaves the file as it was; a torn tail gets its newline. */
static void test_write_batch(void)
{
	char path[] = "/tmp/dstrace-unit-audit.XXXXXX", back[64] = "";
	int fd = mkstemp(path), full;
	bool torn = true;

	REQUIRE_TRUE(fd >= 0);
	ASSERT_INT_EQ(audit_write_batch(fd, "a\n", 2, &torn), 0);
	ASSERT_TRUE(!torn);
	ASSERT_INT_EQ(write(fd, "{\"torn", 6), 6);
	ASSERT_INT_EQ(audit_repair_tail(fd), 0);
	ASSERT_INT_EQ(audit_repair_tail(fd), 0); /* ends with a newline now: nothing added */
	ASSERT_INT_EQ(pread(fd, back, sizeof(back) - 1, 0), 9);
	ASSERT_STR_EQ(back, "a\n{\"torn\n");
	close(fd);
	unlink(path);

	/* /dev/full: every write fails with ENOSPC, and it cannot be cut back */
	full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	REQUIRE_TRUE(full >= 0);
	ASSERT_INT_EQ(audit_write_batch(full, "x\n", 2, &torn), -ENOSPC);
	ASSERT_TRUE(!torn); /* nothing was written */
	close(full);
}

/* A write cut short (here by RLIMIT_FSIZE: a few bytes fit, then EFBIG, as a disk filling
 * up mid-write) leaves the file as it was before the batch, not with a torn line. */
static void test_partial_write(void)
{
	char path[] = "/tmp/dstrace-unit-audit.XXXXXX", back[64] = "";
	int fd = mkstemp(path);
	struct rlimit old, lim;
	void (*old_handler)(int);
	bool torn = true;
	int err;

	REQUIRE_TRUE(fd >= 0);
	ASSERT_INT_EQ(audit_write_batch(fd, "{\"a\":1}\n", 8, &torn), 0);
	REQUIRE_TRUE(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 12; /* 4 more bytes */
	old_handler = signal(SIGXFSZ, SIG_IGN);
	REQUIRE_TRUE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	err = audit_write_batch(fd, "{\"b\":2}\n{\"c\":3}\n", 16, &torn);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, old_handler);
	ASSERT_INT_EQ(err, -EFBIG);
	ASSERT_TRUE(!torn); /* cut back */
	ASSERT_INT_EQ(pread(fd, back, sizeof(back) - 1, 0), 8);
	ASSERT_STR_EQ(back, "{\"a\":1}\n");
	close(fd);
	unlink(path);
}

static const CU_TestInfo tests[] = {
	{ "deltas", test_deltas },
	{ "exited fold, reused pid", test_exited_fold },
	{ "exec", test_exec },
	{ "changed-only sets", test_changed_only },
	{ "drops", test_drops },
	{ "whole-or-nothing writes, torn tail", test_write_batch },
	{ "a write cut short is cut back", test_partial_write },
	CU_TEST_INFO_NULL,
};

int register_audit_tests(void)
{
	return unit_add_suite("audit", tests, NULL);
}
