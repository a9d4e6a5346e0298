// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace: report IPv4 traffic that the kernel carries for AF_INET6 sockets because the
 * address is IPv4-mapped (::ffff:a.b.c.d), per process.
 *
 * This file owns the run's shape: the checks before anything is loaded, the setup (output
 * file, sinks, the BPF side, the ring buffer), the loop, the finish, and systemd's
 * notifications. What is written where is the sinks' (sink.h); what they share, the run's
 * (run.h).
 */
#include <errno.h>
#include <linux/capability.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <systemd/sd-daemon.h>
#include "backend.h"
#include "cgroupfs.h"
#include "outfile.h"
#include "report.h"
#include "run.h"
#include "sink.h"

/* systemd (Type=notify): only when NOTIFY_SOCKET says we run under it */
struct notify {
	bool on;
	bool stopping_sent;
	uint64_t watchdog_ns; /* ping period (half of WatchdogSec=), 0: no watchdog */
	uint64_t next_ns;
};

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level;
	return vfprintf(stderr, fmt, args);
}

/* systemd: STATUS= says how far the run is; WATCHDOG=1 (when WatchdogSec= is set) comes
 * from this loop only, so a loop that hangs gets the service restarted. */
static void notify_systemd(struct notify *n, struct run *r, uint64_t now, const char *state)
{
	uint64_t counters[DSTRACE_CNT_MAX] = {};

	if (!n->on)
		return;
	dstrace_backend__counters(r->backend, counters);
	sd_notifyf(0, "%s%sSTATUS=Tracing (backend %s): %llu events, %llu lost",
		   state ? state : "", n->watchdog_ns ? "WATCHDOG=1\n" : "",
		   dstrace_backend__name(r->backend), (unsigned long long)r->events_seen,
		   (unsigned long long)counters[DSTRACE_CNT_LOST]);
	n->next_ns = now + (n->watchdog_ns ? n->watchdog_ns : 10000000000ull);
}

static void notify_stopping(struct notify *n)
{
	if (n->on && !n->stopping_sent)
		sd_notify(0, "STOPPING=1");
	n->stopping_sent = true;
}

/* Root, or at least the capabilities loading and attaching need. */
static int check_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	static const struct {
		int cap;
		const char *name;
	} need[] = { { CAP_BPF, "CAP_BPF" }, { CAP_PERFMON, "CAP_PERFMON" },
		     { CAP_NET_ADMIN, "CAP_NET_ADMIN" } };
	char missing[128] = "";

	if (syscall(SYS_capget, &hdr, data))
		return 0; /* cannot tell: let the kernel decide */
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		int cap = need[i].cap;

		if (!(data[cap / 32].effective & (1u << (cap % 32)))) {
			if (missing[0])
				strcat(missing, ", ");
			strcat(missing, need[i].name);
		}
	}
	if (!missing[0])
		return 0;
	fprintf(stderr, "dstrace: must run as root (missing %s); try: sudo dstrace\n", missing);
	return -EPERM;
}

/* Before anything is loaded: privileges, BTF, the output file. 0 or the exit status. */
static int preflight(struct run *r)
{
	char why[256];

	if (check_privileges())
		return 1;
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "dstrace: this kernel has no BTF (/sys/kernel/btf/vmlinux): "
				"dstrace needs CONFIG_DEBUG_INFO_BTF=y\n");
		return 1;
	}
	/* An audit survives restarts: append, never truncate. */
	if (r->env.output && outfile_open(r->env.output,
					  r->env.audit ? OUTFILE_APPEND : OUTFILE_TRUNCATE,
					  &r->out, why, sizeof(why))) {
		fprintf(stderr, "dstrace: cannot open output file '%s': %s\n", r->env.output, why);
		return 1;
	}
	return 0;
}

/* Follow 32-bit programs' calls if they may run (pid 0: at start) or one started (pid),
 * and say so: always when one started (its first calls may have come before), at start with
 * -v. */
static void follow_compat(struct run *r, pid_t pid)
{
	char why[96];
	int ret = dstrace_backend__follow_compat(r->backend, pid, why, sizeof(why));

	if (ret > 0 && (pid || r->env.verbose))
		fprintf(stderr, "dstrace: %s: following 32-bit programs' calls%s\n", why,
			pid ? " from now on" : "");
	else if (ret < 0)
		fprintf(stderr, "dstrace: warning: cannot follow 32-bit programs' calls (their "
				"binds, accepts and in-call failures go unseen): %s\n",
			strerror(-ret));
}

/* The kernel told of an exec() (bpf/lifecycle.bpf.h): a 32-bit program's, or the first in a
 * mount namespace. */
static int exec_notice(void *ctx, void *data, size_t len)
{
	struct dstrace_exec_notice n;
	struct run *r = ctx;

	if (len < sizeof(n))
		return 0;
	memcpy(&n, data, sizeof(n));
	if (n.what & DSTRACE_EXEC_IA32)
		follow_compat(r, (pid_t)n.pid);
	if (n.what & DSTRACE_EXEC_MNT_NS)
		dstrace_backend__resolver_exec(r->backend, (pid_t)n.pid, n.mnt_ns, n.mnt_id);
	return 0;
}

/* The output file, the sinks, the BPF side, the tables and the ring buffer. 0 or the exit
 * status. */
static int setup(struct run *r)
{
	int status;

	proc_table__init(&r->procs);
	r->out = stdout;
	r->per_program = dstrace_env_per_program(&r->env);
	status = preflight(r);
	if (!status)
		status = sinks_new(r);
	if (status)
		return status;
	libbpf_set_print(r->env.verbose ? libbpf_print : NULL);
	run_signals();
	if (dstrace_backend__new(&r->env, &r->backend))
		return 1;
	if (r->per_program) {
		if (audit__init(&r->audit, dstrace_backend__max_flows(r->backend))) {
			fprintf(stderr, "dstrace: out of memory for the audit tables\n");
			return 1;
		}
		dstrace_find_cgroup2_quiet(r->audit.cgroup_root, sizeof(r->audit.cgroup_root));
	}
	r->rb = ring_buffer__new(dstrace_backend__ringbuf_fd(r->backend), run_handle_event, r, NULL);
	if (!r->rb || ring_buffer__add(r->rb, dstrace_backend__exec_notices_fd(r->backend),
				       exec_notice, r)) {
		fprintf(stderr, "dstrace: failed to open the ring buffer: %s\n", strerror(errno));
		return 1;
	}
	return sinks_start(r);
}

/* The clock, the run's name, what already existed; then tracing is announced, and systemd
 * told (with --metrics, the server already answers). */
static void begin(struct run *r, struct notify *n)
{
	int err;

	dstrace_clock_init(&r->clock, DSTRACE_CLOCK_PERIOD_NS, NULL, NULL);
	r->started_realtime_ns = run_clock_ns(CLOCK_REALTIME);
	if (gethostname(r->host, sizeof(r->host) - 1))
		snprintf(r->host, sizeof(r->host), "unknown");
	snprintf(r->run_id, sizeof(r->run_id), "%s-%llu-%d", r->host,
		 (unsigned long long)(r->started_realtime_ns / 1000000000ull), (int)getpid());
	r->start_ns = run_clock_ns(CLOCK_MONOTONIC);
	/* What was already there: the tracing above is attached, so a connection made meanwhile
	 * is seen by both, and the kernel reports it once per process. */
	dstrace_backend__clock_tick(r->backend);
	follow_compat(r, 0);
	err = dstrace_backend__follow_inflight(r->backend);
	if (err < 0)
		fprintf(stderr, "dstrace: warning: cannot follow the calls in flight at start "
				"(their first result may be missed): %s\n",
			err == -EXDEV ? "dstrace runs in a PID namespace of its own" :
					strerror(-err));
	err = dstrace_backend__scan_existing(r->backend);
	if (err)
		fprintf(stderr, "dstrace: warning: cannot list the connections that existed at "
				"start: %s\n",
			strerror(-err));
	fprintf(stderr, "Tracing IPv4-mapped traffic on AF_INET6 sockets (backend %s)... "
			"Hit Ctrl-C to end.\n",
		dstrace_backend__name(r->backend));
	sinks_begin(r);
	if (getenv("NOTIFY_SOCKET")) {
		uint64_t usec = 0;

		n->on = true;
		if (sd_watchdog_enabled(0, &usec) > 0)
			n->watchdog_ns = usec * 1000 / 2;
		notify_systemd(n, r, r->start_ns, "READY=1\n");
	}
}

/* Until a signal, the duration, a failed write of a line or an error: 0 or the exit
 * status. */
static int loop(struct run *r, struct notify *n)
{
	while (!run_exiting) {
		struct pollfd pfd = { .fd = ring_buffer__epoll_fd(r->rb), .events = POLLIN };
		uint64_t now;
		int err;

		if (poll(&pfd, 1, 100) < 0 && errno != EINTR) {
			fprintf(stderr, "dstrace: poll: %s\n", strerror(errno));
			return 1;
		}
		dstrace_backend__clock_tick(r->backend);
		err = ring_buffer__consume(r->rb);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "dstrace: error reading the ring buffer: %s\n",
				strerror(-err));
			return 1;
		}
		run_flush_lines(r);
		run_harvest(r, false);
		now = run_clock_ns(CLOCK_MONOTONIC);
		dstrace_clock_tick(&r->clock);
		sinks_tick(r, now);
		if (n->on && now >= n->next_ns)
			notify_systemd(n, r, now, NULL);
		if (r->env.duration_s && now - r->start_ns >= r->env.duration_s * 1000000000ull)
			break;
		if (sinks_interval(r, now))
			return 1;
	}
	return 0;
}

/* What the kernel queued before we stopped still belongs to this run; then each sink's
 * last records. The exit status. */
static int finish(struct run *r, struct notify *n)
{
	notify_stopping(n);
	ring_buffer__consume(r->rb);
	return sinks_finish(r);
}

static void teardown(struct run *r, struct notify *n)
{
	notify_stopping(n);
	sinks_free(r);
	ring_buffer__free(r->rb);
	dstrace_backend__free(r->backend);
	proc_table__free(&r->procs);
	audit__free(&r->audit);
	if (r->out && r->out != stdout)
		fclose(r->out);
}

int main(int argc, char **argv)
{
	struct run r = {};
	struct notify n = {};
	int status;

	/* One name in every message, whatever the binary is called (dstrace-san, a path). */
	argv[0] = (char *)"dstrace";
	/* Blocks of 128 KiB and more (the kernel's BTF, parsed twice at start) are mapped and
	 * unmapped by themselves. glibc would otherwise raise that threshold to the largest block
	 * freed, and keep the next ones' memory: 11 MiB of a heap dstrace no longer used. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (argc > 1 && !strcmp(argv[1], "report"))
		return dstrace_report_main(argc - 1, argv + 1);
	if (dstrace_parse_args(argc, argv, &r.env, true))
		return 2;
	status = setup(&r);
	if (!status) {
		begin(&r, &n);
		run_exit_deadline();
		status = loop(&r, &n);
	}
	if (!status)
		status = finish(&r, &n);
	teardown(&r, &n);
	return status;
}
