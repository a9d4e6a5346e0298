// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests of user/audit.c, the audit writer: changed-only sets and the whole-or-nothing
 * writes (the program table itself: test_programs.c). Pids above pid_max: no /proc lookup
 * ever finds them. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include "audit.h"
#include "unit.h"

#define PID 5000001 /* above any pid_max: /proc never answers for it */

static const volatile sig_atomic_t no_stop; /* audit_write_batch's stop: never set */
static volatile sig_atomic_t stop_now, alarms;

/* the third SIGALRM is a signal to end, the two before it are not */
static void set_stop(int sig)
{
	(void)sig;
	if (++alarms == 3)
		stop_now = 1;
}

/* Only programs that changed since the last set written; every program when asked. */
static void test_changed_only(void)
{
	struct audit a;
	struct dstrace_proc_stats one = unit_proc_entry("curl", 100, 1), two = unit_proc_entry("wget", 100, 1);
	struct dstrace_clock clock;
	struct audit_run_info run = { .run_id = "r", .host = "h", .backend = "tracepoint",
				      .clock = &clock };
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	dstrace_clock_fixed(&clock, 0);
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
	ASSERT_TRUE(strstr(buf, "\"write_errors\":0,\"blind\":[],\"names_evicted\":0,\"final\":false}\n") != NULL);
	free(buf);
	audit__free(&a);
}

/* Whole or nothing: a failed write leaves the file as it was; a torn tail gets its newline. */
static void test_write_batch(void)
{
	char path[] = "/tmp/dstrace-unit-audit.XXXXXX", back[64] = "";
	int fd = mkstemp(path), full;
	bool torn = true;

	REQUIRE_TRUE(fd >= 0);
	ASSERT_INT_EQ(audit_write_batch(fd, "a\n", 2, &torn, &no_stop), 0);
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
	ASSERT_INT_EQ(audit_write_batch(full, "x\n", 2, &torn, &no_stop), -ENOSPC);
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
	ASSERT_INT_EQ(audit_write_batch(fd, "{\"a\":1}\n", 8, &torn, &no_stop), 0);
	REQUIRE_TRUE(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 12; /* 4 more bytes */
	old_handler = signal(SIGXFSZ, SIG_IGN);
	REQUIRE_TRUE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	err = audit_write_batch(fd, "{\"b\":2}\n{\"c\":3}\n", 16, &torn, &no_stop);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, old_handler);
	ASSERT_INT_EQ(err, -EFBIG);
	ASSERT_TRUE(!torn); /* cut back */
	ASSERT_INT_EQ(pread(fd, back, sizeof(back) - 1, 0), 8);
	ASSERT_STR_EQ(back, "{\"a\":1}\n");
	close(fd);
	unlink(path);
}

/* A write blocked on a pipe nobody reads: a signal that sets stop (dstrace's signals to end)
 * ends it, with -EINTR and a torn line (a pipe cannot be cut back); one that leaves stop
 * unset (a SIGHUP) is tried again. */
static void test_blocked_write(void)
{
	struct sigaction sa = { .sa_handler = set_stop }, old;
	struct itimerval t = { .it_interval = { 0, 20000 }, .it_value = { 0, 50000 } }, off = {};
	char chunk[4096] = "";
	bool torn = false;
	int p[2], fl, err;

	REQUIRE_TRUE(pipe(p) == 0);
	fl = fcntl(p[1], F_GETFL);
	fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
	while (write(p[1], chunk, sizeof(chunk)) > 0)
		;
	fcntl(p[1], F_SETFL, fl); /* full, and blocking again */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	stop_now = alarms = 0;
	setitimer(ITIMER_REAL, &t, NULL);
	err = audit_write_batch(p[1], "{\"a\":1}\n", 8, &torn, &stop_now);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	ASSERT_INT_EQ(err, -EINTR);
	ASSERT_INT_EQ(alarms, 3); /* the first two interruptions were tried again */
	ASSERT_TRUE(!torn); /* nothing of it went out */
	close(p[0]);
	close(p[1]);
}

static const CU_TestInfo tests[] = {
	{ "changed-only sets", test_changed_only },
	{ "whole-or-nothing writes, torn tail", test_write_batch },
	{ "a write cut short is cut back", test_partial_write },
	{ "a blocked write ends at a signal to end", test_blocked_write },
	CU_TEST_INFO_NULL,
};

int register_audit_tests(void)
{
	return unit_add_suite("audit", tests, NULL);
}
