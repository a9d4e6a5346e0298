// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace: report IPv4 traffic that the kernel carries for AF_INET6 sockets because the
 * address is IPv4-mapped (::ffff:a.b.c.d), per process.
 */
#include <errno.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <systemd/sd-daemon.h>
#include "aggregate.h"
#include "audit.h"
#include "backend.h"
#include "cgroupfs.h"
#include "clock.h"
#include "container.h"
#include "format.h"
#include "metrics.h"
#include "options.h"
#include "outfile.h"
#include "report.h"

static volatile sig_atomic_t exiting;
static volatile sig_atomic_t reopen_output;

struct run {
	struct env env;
	FILE *out;
	struct proc_table procs;
	struct dstrace_backend *backend;
	struct ring_buffer *rb;
	uint64_t events_seen;
	struct dstrace_clock clock; /* CLOCK_BOOTTIME -> CLOCK_REALTIME, kept right as the run goes */
	int write_errno;
	/* audit and metrics */
	bool per_program; /* --audit or --metrics: keep the per-program tables */
	struct audit audit;
	int metrics_fd; /* the listener, until the server owns it */
	struct metrics_server *metrics;
	uint64_t last_publish_ns;
	uint64_t next_metrics_file_ns;
	bool metrics_file_failing; /* said once on stderr; said again when it works */
	/* systemd (Type=notify): only when NOTIFY_SOCKET says we run under it */
	bool notify;
	bool stopping_sent;
	uint64_t watchdog_ns; /* ping period (half of WatchdogSec=), 0: no watchdog */
	uint64_t next_notify_ns;
	uint64_t evictions;
	uint64_t last_harvest_ns;
	uint64_t started_realtime_ns;
	char host[256];
	char run_id[320];
	bool reopen_pending; /* a SIGHUP's reopen failed: try again */
	/* -j events: container fields by cgroup id, each cgroup looked up once */
	struct container_cache *containers;
	char cgroup_root[512];
	/* audit writes */
	bool audit_full;      /* the next set has every program: at start, after a failure, reopen */
	bool audit_torn;      /* a failed write may have left a partial line: start with '\n' */
	bool audit_failing;   /* in a run of failed writes (said once on stderr) */
	uint64_t write_errors; /* failed audit writes */
	uint64_t failed_since; /* failed writes in the current run of them */
	uint32_t ended_unread; /* end notices since the last harvest */
};

/* So many processes ended since the last harvest: harvest now, not at the next second, so
 * that neither the kernel's queue of ended entries nor the table of processes followed fills
 * up however fast processes come and go. */
#define HARVEST_ENDED 1024

static void sig_handler(int sig)
{
	if (sig == SIGHUP)
		reopen_output = 1;
	else
		exiting = 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level;
	return vfprintf(stderr, fmt, args);
}

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Write one line; remember the first error, which ends the run. Lines are flushed by
 * flush_lines() once the records at hand are written: at once, but one write() for a burst
 * of events rather than one each. */
static void emit_line(struct run *r, const char *line)
{
	if (r->write_errno)
		return;
	if (fputs(line, r->out) == EOF || fputc('\n', r->out) == EOF) {
		r->write_errno = errno ? errno : EIO;
		exiting = 1;
	}
}

static void flush_lines(struct run *r)
{
	if (!r->write_errno && fflush(r->out) == EOF) {
		r->write_errno = errno ? errno : EIO;
		exiting = 1;
	}
}

#define EVENT_CONTAINER_CGROUPS 4096

static void container_path_of(void *ctx, uint64_t cgroup_id, uint32_t pid, char *path,
			      size_t size)
{
	struct run *r = ctx;

	dstrace_cgroup_path(r->cgroup_root, pid, cgroup_id, path, size);
}

/* The container members of a JSON event line, from the per-cgroup cache, inserted before
 * the line's closing brace (format.c writes the event; this adds what needs a lookup). */
static void add_container_members(struct run *r, const struct dstrace_event *e, char *line,
				  size_t size)
{
	const struct container_info *ci = container_cache__get(r->containers, e->cgroup_id, e->pid);
	size_t n = strlen(line);
	char members[256];
	int w;

	if (!n || line[n - 1] != '}')
		return;
	w = container_info_json(ci, members, sizeof(members));
	if (w <= 0 || (size_t)w >= sizeof(members) || n + 1 + (size_t)w + 1 > size)
		return;
	line[n - 1] = ',';
	memcpy(line + n, members, w);
	line[n + w] = '}';
	line[n + w + 1] = '\0';
}

/* Before an event reaches the program tables: for a process not followed yet (new, or the
 * program an exec() started: the kernel's end notice came first), the kernel's entry, so that
 * it is known with its executable (the kernel's record) and the event finds its program. Not
 * for the events of processes already followed (most of them). Ended entries are freed by
 * the next harvest. */
static void follow_process(struct run *r, const struct dstrace_event *e)
{
	struct dstrace_proc_stats st, old;
	uint64_t kid;

	if (!audit__wants_proc(&r->audit, e->pid, e->ts_ns, &kid) ||
	    dstrace_backend__proc_stats(r->backend, e->pid, e->ts_ns, &st))
		return;
	/* A newer entry than the one followed: that one ended (exec, exit): its last counts
	 * first, from where the kernel put it. */
	if (kid && st.first_ns > kid &&
	    !dstrace_backend__proc_ended(r->backend, e->pid, kid, &old))
		audit__add_proc(&r->audit, e->pid, &old);
	audit__add_proc(&r->audit, e->pid, &st);
}

static int handle_event(void *ctx, void *data, size_t len)
{
	struct run *r = ctx;
	const struct dstrace_event *e = data;
	char line[DSTRACE_LINE_MAX];
	uint64_t realtime;

	if (len < sizeof(*e))
		return 0;
	if (e->flags & DSTRACE_F_ENDED) { /* not an event: a process's entry ended */
		if (r->per_program)
			audit__proc_ending(&r->audit, e->pid, e->ts_ns);
		r->ended_unread++;
		return 0;
	}
	r->events_seen++;
	if (r->per_program) {
		follow_process(r, e);
		audit__add_event(&r->audit, e);
	}
	if (r->env.audit)
		return 0;
	proc_table__add_event(&r->procs, e);
	if (r->env.interval_s)
		return 0;
	realtime = dstrace_clock_realtime(&r->clock, e->ts_ns);
	if (r->env.json) {
		dstrace_format_event_json(e, realtime, line, sizeof(line));
		if (r->containers)
			add_container_members(r, e, line, sizeof(line));
	} else
		dstrace_format_event_text(e, realtime, line, sizeof(line));
	emit_line(r, line);
	return 0;
}

static void harvest(struct run *r, bool force);

static void print_procs(struct run *r)
{
	char line[DSTRACE_LINE_MAX];

	harvest(r, true); /* the kernel's counts, into every table that wants them */
	proc_table__sort(&r->procs);
	if (!r->env.json) {
		if (r->env.interval_s) {
			time_t now = time(NULL);
			struct tm tm;
			char ts[16];

			localtime_r(&now, &tm);
			strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
			emit_line(r, "");
			emit_line(r, ts);
		} else {
			emit_line(r, "");
		}
		dstrace_format_proc_header(line, sizeof(line));
		emit_line(r, line);
	}
	for (uint32_t i = 0; i < r->procs.nprocs; i++) {
		const struct proc_entry *p = &r->procs.procs[i];

		/* Processes with only TCP payload bytes (say, a child writing to a socket its
		 * parent accepted) have nothing for these columns. */
		if (!p->counts[DSTRACE_EV_CONNECT] && !p->counts[DSTRACE_EV_ACCEPT] &&
		    !p->counts[DSTRACE_EV_SEND] && !p->counts[DSTRACE_EV_RECV] && !p->failed)
			continue;
		if (r->env.json)
			dstrace_format_proc_json(&r->procs.procs[i], line, sizeof(line));
		else
			dstrace_format_proc_text(&r->procs.procs[i], line, sizeof(line));
		emit_line(r, line);
	}
	/* ended processes that did not fit the table, summed: the totals stay whole */
	if (r->procs.others.comm[0]) {
		if (r->env.json)
			dstrace_format_proc_json(&r->procs.others, line, sizeof(line));
		else
			dstrace_format_proc_text(&r->procs.others, line, sizeof(line));
		emit_line(r, line);
	}
}

/* Bring the tables up to date and free the kernel entries of processes that ended (at most
 * once a second unless forced), in every mode: the kernel's process table only holds what
 * runs, however many processes come and go. */
static void harvest(struct run *r, bool force)
{
	uint64_t now = clock_ns(CLOCK_MONOTONIC), evictions = 0;

	if (!force && now - r->last_harvest_ns < 1000000000ull && r->ended_unread < HARVEST_ENDED)
		return;
	r->last_harvest_ns = now;
	r->ended_unread = 0;
	/* Events first: a process's events must be read before its kernel record, which the
	 * harvest frees once the process has ended. */
	ring_buffer__consume(r->rb);
	if (!r->per_program) {
		dstrace_backend__read_procs(r->backend, &r->procs);
		return;
	}
	/* --metrics without --audit also prints the process table at the end */
	if (!dstrace_backend__harvest(r->backend, &r->audit, r->env.audit ? NULL : &r->procs,
				      &evictions) &&
	    evictions > r->evictions)
		r->evictions = evictions; /* a counter: it never goes down */
}

/* Every drop counted, kernel and user space (the fields each mode has). */
static void collect_drops(struct run *r, struct dstrace_drops *d)
{
	uint64_t counters[DSTRACE_CNT_MAX] = {}, evictions = 0;

	memset(d, 0, sizeof(*d));
	dstrace_backend__counters(r->backend, counters);
	d->lost = counters[DSTRACE_CNT_LOST];
	d->proc_full = counters[DSTRACE_CNT_PROC_FULL];
	/* calls (connect, bind) and connects whose outcome could not be followed */
	d->stash_full = counters[DSTRACE_CNT_STASH_FULL] + counters[DSTRACE_CNT_CONN_FULL];
	d->recv_unknown = counters[DSTRACE_CNT_RECV_UNKNOWN];
	if (r->per_program) {
		audit__drops(&r->audit, d);
		d->flows_evicted = r->evictions;
	} else {
		if (!dstrace_backend__flow_evictions(r->backend, &evictions))
			d->flows_evicted = evictions;
		d->pids = r->procs.dropped;
		d->peers = r->procs.peers_capped;
	}
}

static int write_audit(struct run *r, bool final)
{
	uint64_t counters[DSTRACE_CNT_MAX] = {};
	struct audit_run_info info = {
		.write_errors = r->write_errors,
		.run_id = r->run_id,
		.host = r->host,
		.backend = dstrace_backend__name(r->backend),
		.started_realtime_ns = r->started_realtime_ns,
		.now_realtime_ns = clock_ns(CLOCK_REALTIME),
		.clock = &r->clock,
		.events = r->events_seen,
		.final = final,
	};
	char *buf = NULL;
	size_t len = 0;
	bool torn = false;
	FILE *mem;
	int err;

	harvest(r, true);
	dstrace_backend__counters(r->backend, counters);
	info.lost = counters[DSTRACE_CNT_LOST];
	info.evictions = r->evictions;
	collect_drops(r, &info.drops);
	/* The whole set in memory first, then one write() loop: it reaches the file whole or
	 * not at all (audit_write_batch), never as a torn line. */
	mem = open_memstream(&buf, &len);
	if (!mem) {
		err = -errno;
	} else {
		if (r->audit_torn)
			fputc('\n', mem);
		/* the final set has every program: it alone is the run's whole picture */
		err = audit__write(&r->audit, mem, &info, r->audit_full || final);
		if (fclose(mem) && err >= 0)
			err = -ENOMEM;
		if (err >= 0)
			err = audit_write_batch(fileno(r->out), buf, len, &torn);
	}
	free(buf);
	if (err >= 0) {
		audit__written(&r->audit);
		r->audit_full = r->audit_torn = false;
		if (r->audit_failing)
			fprintf(stderr, "dstrace: audit records written to %s again, after %llu failed "
					"writes; the sets are cumulative: nothing is missing\n",
				r->env.output ? r->env.output : "stdout",
				(unsigned long long)r->failed_since);
		r->audit_failing = false;
		r->failed_since = 0;
		return 0;
	}
	/* Counted, said once per run of failures, retried next interval with every program. */
	r->write_errors++;
	r->failed_since++;
	r->audit_full = true;
	r->audit_torn = r->audit_torn || torn;
	if (!r->audit_failing || final)
		fprintf(stderr, "dstrace: cannot write audit records to %s: %s%s\n",
			r->env.output ? r->env.output : "stdout", strerror(-err),
			final ? "" : "; still tracing, retrying every interval");
	r->audit_failing = true;
	return final ? err : 0;
}

/* SIGHUP: logrotate moved the file away; append to a new one at the same path. If that
 * cannot be opened, say so and keep writing to the file we have (no record is thrown away);
 * the reopen is tried again at every interval until it works. */
static void reopen(struct run *r)
{
	char why[256];
	FILE *f;

	reopen_output = 0;
	if (!r->env.output)
		return;
	if (outfile_open(r->env.output, OUTFILE_APPEND, &f, why, sizeof(why))) {
		fprintf(stderr, "dstrace: cannot reopen output file '%s': %s; still writing to the "
				"file opened before, retrying every interval\n",
			r->env.output, why);
		r->reopen_pending = true;
		return;
	}
	fclose(r->out);
	r->out = f;
	r->reopen_pending = false;
	r->audit_full = true; /* a new file starts with every program */
	r->audit_torn = false;
	if (r->env.audit)
		audit_repair_tail(fileno(r->out));
}

/* The exposition of the tables as they are now (harvested at most once a second). */
static int render_metrics(struct run *r, char **buf, size_t *len)
{
	uint64_t counters[DSTRACE_CNT_MAX] = {};
	struct metrics_totals t = {
		.version = DSTRACE_VERSION,
		.backend = dstrace_backend__name(r->backend),
	};

	harvest(r, false);
	dstrace_backend__counters(r->backend, counters);
	t.lost = counters[DSTRACE_CNT_LOST];
	t.evictions = r->evictions + r->audit.programs_dropped + r->audit.pids_dropped;
	collect_drops(r, &t.drops);
	t.write_errors = r->write_errors;
	return metrics_render_buf(&r->audit, &t, buf, len);
}

/* --metrics: a new snapshot for the server's thread, at most once a second. Scrapes read
 * the last one; nothing here waits for a client. */
static void publish_metrics(struct run *r, uint64_t now)
{
	char *buf;
	size_t len;

	if (!r->metrics || now - r->last_publish_ns < 1000000000ull)
		return;
	r->last_publish_ns = now;
	if (!render_metrics(r, &buf, &len))
		metrics_server__publish(r->metrics, buf, len);
}

/* --metrics-file: at start (where a failure ends the run), every interval and at exit. */
static int write_metrics_file(struct run *r, bool start)
{
	char *buf, why[256];
	size_t len;
	int err;

	err = render_metrics(r, &buf, &len);
	if (!err) {
		err = metrics_file_write(r->env.metrics_file, buf, len, why, sizeof(why));
		free(buf);
	} else {
		snprintf(why, sizeof(why), "%s", strerror(-err));
	}
	if (err && (start || !r->metrics_file_failing))
		fprintf(stderr, "dstrace: cannot write metrics file '%s': %s%s\n",
			r->env.metrics_file, why, start ? "" : "; retrying every interval");
	else if (!err && r->metrics_file_failing)
		fprintf(stderr, "dstrace: metrics file '%s' written again\n", r->env.metrics_file);
	r->metrics_file_failing = err != 0;
	return err;
}

/* systemd: STATUS= says how far the run is; WATCHDOG=1 (when WatchdogSec= is set) comes
 * from this loop only, so a loop that hangs gets the service restarted. */
static void notify_systemd(struct run *r, uint64_t now, const char *state)
{
	uint64_t counters[DSTRACE_CNT_MAX] = {};

	if (!r->notify)
		return;
	dstrace_backend__counters(r->backend, counters);
	sd_notifyf(0, "%s%sSTATUS=Tracing (backend %s): %llu events, %llu lost",
		   state ? state : "", r->watchdog_ns ? "WATCHDOG=1\n" : "",
		   dstrace_backend__name(r->backend), (unsigned long long)r->events_seen,
		   (unsigned long long)counters[DSTRACE_CNT_LOST]);
	r->next_notify_ns = now + (r->watchdog_ns ? r->watchdog_ns : 10000000000ull);
}

static void notify_stopping(struct run *r)
{
	if (r->notify && !r->stopping_sent)
		sd_notify(0, "STOPPING=1");
	r->stopping_sent = true;
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

int main(int argc, char **argv)
{
	struct run r = {};
	struct ring_buffer *rb = NULL;
	struct run_stats stats = {};
	uint64_t counters[DSTRACE_CNT_MAX] = {};
	uint64_t start_ns, next_interval_ns = 0;
	char line[DSTRACE_LINE_MAX];
	int err, status = 1;

	/* One name in every message, whatever the binary is called (dstrace-san, a path). */
	argv[0] = (char *)"dstrace";
	if (argc > 1 && !strcmp(argv[1], "report"))
		return dstrace_report_main(argc - 1, argv + 1);
	if (dstrace_parse_args(argc, argv, &r.env, true))
		return 2;
	proc_table__init(&r.procs);
	r.out = stdout;
	r.metrics_fd = -1;
	r.per_program = r.env.audit || r.env.metrics || r.env.metrics_file;

	if (check_privileges())
		return 1;
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "dstrace: this kernel has no BTF (/sys/kernel/btf/vmlinux): "
				"dstrace needs CONFIG_DEBUG_INFO_BTF=y\n");
		return 1;
	}
	if (r.env.output) {
		char why[256];

		/* An audit survives restarts: append, never truncate. */
		if (outfile_open(r.env.output, r.env.audit ? OUTFILE_APPEND : OUTFILE_TRUNCATE,
				 &r.out, why, sizeof(why))) {
			fprintf(stderr, "dstrace: cannot open output file '%s': %s\n", r.env.output,
				why);
			return 1;
		}
	}
	r.audit_full = true; /* the first set has every program */
	if (r.env.audit)
		audit_repair_tail(fileno(r.out)); /* a torn last line from an earlier run */

	if (r.env.metrics) {
		const char *what;

		r.metrics_fd = metrics_listen(r.env.metrics, &what);
		if (r.metrics_fd < 0) {
			if (r.metrics_fd == -EINVAL && !strcmp(what, "parse"))
				fprintf(stderr, "dstrace: invalid --metrics '%s': expected ADDR:PORT\n",
					r.env.metrics);
			else
				fprintf(stderr, "dstrace: cannot %s %s for metrics: %s\n", what,
					r.env.metrics, strerror(-r.metrics_fd));
			status = r.metrics_fd == -EINVAL && !strcmp(what, "parse") ? 2 : 1;
			goto cleanup;
		}
	}

	libbpf_set_print(r.env.verbose ? libbpf_print : NULL);
	signal(SIGINT, sig_handler);
	signal(SIGTERM, sig_handler);
	signal(SIGHUP, sig_handler);
	signal(SIGPIPE, SIG_IGN);

	err = dstrace_backend__new(&r.env, &r.backend);
	if (err)
		goto cleanup;
	if (r.per_program) {
		err = audit__init(&r.audit, dstrace_backend__max_flows(r.backend));
		if (err) {
			fprintf(stderr, "dstrace: out of memory for the audit tables\n");
			goto cleanup;
		}
		dstrace_find_cgroup2_quiet(r.audit.cgroup_root, sizeof(r.audit.cgroup_root));
	}
	if (r.env.metrics) {
		char *buf;
		size_t len;

		/* The first snapshot (empty tables): a scrape always has something to read. */
		err = metrics_render_buf(&r.audit, &(struct metrics_totals){
			.version = DSTRACE_VERSION, .backend = dstrace_backend__name(r.backend) },
			&buf, &len);
		if (!err)
			err = metrics_server__new(r.metrics_fd, buf, len, &r.metrics);
		r.metrics_fd = -1; /* the server's now, whatever happened */
		if (err) {
			fprintf(stderr, "dstrace: cannot start the metrics server on %s: %s\n",
				r.env.metrics, strerror(-err));
			goto cleanup;
		}
	}
	if (r.env.json && !r.env.interval_s) {
		dstrace_find_cgroup2_quiet(r.cgroup_root, sizeof(r.cgroup_root));
		err = container_cache__new(EVENT_CONTAINER_CGROUPS, container_path_of, &r,
					   &r.containers);
		if (err) {
			fprintf(stderr, "dstrace: out of memory for the container cache\n");
			goto cleanup;
		}
	}
	rb = ring_buffer__new(dstrace_backend__ringbuf_fd(r.backend), handle_event, &r, NULL);
	r.rb = rb;
	if (!rb) {
		fprintf(stderr, "dstrace: failed to open the ring buffer: %s\n", strerror(errno));
		goto cleanup;
	}
	if (r.env.metrics_file && write_metrics_file(&r, true))
		goto cleanup;

	dstrace_clock_init(&r.clock, DSTRACE_CLOCK_PERIOD_NS, NULL, NULL);
	r.started_realtime_ns = clock_ns(CLOCK_REALTIME);
	if (gethostname(r.host, sizeof(r.host) - 1))
		snprintf(r.host, sizeof(r.host), "unknown");
	snprintf(r.run_id, sizeof(r.run_id), "%s-%llu-%d", r.host,
		 (unsigned long long)(r.started_realtime_ns / 1000000000ull), (int)getpid());
	start_ns = clock_ns(CLOCK_MONOTONIC);
	if (r.env.interval_s)
		next_interval_ns = start_ns + r.env.interval_s * 1000000000ull;
	/* What was already there: the tracing above is attached, so a connection made meanwhile
	 * is seen by both, and the kernel reports it once per process. */
	err = dstrace_backend__scan_existing(r.backend);
	if (err)
		fprintf(stderr, "dstrace: warning: cannot list the connections that existed at "
				"start: %s\n",
			strerror(-err));
	r.next_metrics_file_ns = start_ns + (r.env.interval_s ? r.env.interval_s : 10) * 1000000000ull;
	fprintf(stderr, "Tracing IPv4-mapped traffic on AF_INET6 sockets (backend %s)... "
			"Hit Ctrl-C to end.\n",
		dstrace_backend__name(r.backend));
	if (!r.env.json && !r.env.interval_s && !r.env.audit) {
		dstrace_format_event_header(line, sizeof(line));
		emit_line(&r, line);
		flush_lines(&r);
	}
	/* Attached, reading, and (with --metrics) serving: systemd may go on. */
	if (getenv("NOTIFY_SOCKET")) {
		uint64_t usec = 0;

		r.notify = true;
		if (sd_watchdog_enabled(0, &usec) > 0)
			r.watchdog_ns = usec * 1000 / 2;
		notify_systemd(&r, start_ns, "READY=1\n");
	}

	while (!exiting) {
		struct pollfd pfd = { .fd = ring_buffer__epoll_fd(rb), .events = POLLIN };
		uint64_t now;

		if (poll(&pfd, 1, 100) < 0 && errno != EINTR) {
			fprintf(stderr, "dstrace: poll: %s\n", strerror(errno));
			goto cleanup;
		}
		err = ring_buffer__consume(rb);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "dstrace: error reading the ring buffer: %s\n",
				strerror(-err));
			goto cleanup;
		}
		flush_lines(&r);
		harvest(&r, false);
		if (reopen_output)
			reopen(&r);
		now = clock_ns(CLOCK_MONOTONIC);
		dstrace_clock_tick(&r.clock);
		publish_metrics(&r, now);
		if (r.notify && now >= r.next_notify_ns)
			notify_systemd(&r, now, NULL);
		if (r.env.duration_s && now - start_ns >= r.env.duration_s * 1000000000ull)
			break;
		if (next_interval_ns && now >= next_interval_ns) {
			if (r.env.audit) {
				if (r.reopen_pending)
					reopen(&r);
				if (write_audit(&r, false))
					goto cleanup;
			} else {
				print_procs(&r);
				flush_lines(&r);
			}
			next_interval_ns += r.env.interval_s * 1000000000ull;
		}
		if (r.env.metrics_file && now >= r.next_metrics_file_ns) {
			write_metrics_file(&r, false);
			r.next_metrics_file_ns += (r.env.interval_s ? r.env.interval_s : 10) * 1000000000ull;
		}
	}
	notify_stopping(&r);
	/* What the kernel queued before we stopped still belongs to this run. */
	ring_buffer__consume(rb);

	if (r.env.metrics_file) {
		harvest(&r, true);
		write_metrics_file(&r, false); /* the final numbers; a failure was said */
	}
	if (r.env.audit) {
		if (write_audit(&r, true))
			goto cleanup;
		status = 0;
		goto cleanup;
	}
	print_procs(&r);
	dstrace_backend__counters(r.backend, counters);
	stats.backend = dstrace_backend__name(r.backend);
	stats.events = r.events_seen;
	stats.lost = counters[DSTRACE_CNT_LOST];
	stats.proc_full = counters[DSTRACE_CNT_PROC_FULL];
	collect_drops(&r, &stats.drops);
	stats.duration_s = (clock_ns(CLOCK_MONOTONIC) - start_ns) / 1e9;
	if (r.env.json)
		dstrace_format_stats_json(&stats, line, sizeof(line));
	else
		dstrace_format_stats_text(&stats, line, sizeof(line));
	emit_line(&r, line);
	flush_lines(&r);

	if (r.write_errno && r.write_errno != EPIPE) {
		fprintf(stderr, "dstrace: cannot write output%s%s: %s\n",
			r.env.output ? " to " : "", r.env.output ? r.env.output : "",
			strerror(r.write_errno));
		goto cleanup;
	}
	if (stats.lost)
		fprintf(stderr, "dstrace: warning: %llu events lost (ring buffer full); the "
				"per-process counts are complete (kept in the kernel), the event list "
				"is not: raise --ringbuf-kb\n",
			(unsigned long long)stats.lost);
	if (r.procs.peers_capped)
		fprintf(stderr, "dstrace: warning: %u processes reached %d distinct peers; their "
				"PEERS count is a lower bound\n",
			r.procs.peers_capped, PROC_PEERS_MAX);
	if (stats.drops.stash_full)
		fprintf(stderr, "dstrace: warning: %llu connect() calls not followed (too many in "
				"flight at once)\n",
			(unsigned long long)stats.drops.stash_full);
	if (stats.drops.recv_unknown)
		fprintf(stderr, "dstrace: warning: %llu datagrams read without an address whose "
				"source could not be told were not counted (see README, Limits)\n",
			(unsigned long long)stats.drops.recv_unknown);
	if (stats.proc_full || r.procs.dropped)
		fprintf(stderr, "dstrace: warning: per-process table full: %llu updates "
				"not counted\n",
			(unsigned long long)(stats.proc_full + r.procs.dropped));
	status = 0;
cleanup:
	notify_stopping(&r);
	metrics_server__free(r.metrics);
	ring_buffer__free(rb);
	dstrace_backend__free(r.backend);
	proc_table__free(&r.procs);
	audit__free(&r.audit);
	container_cache__free(r.containers);
	if (r.metrics_fd >= 0)
		close(r.metrics_fd);
	if (r.out && r.out != stdout)
		fclose(r.out);
	return status;
}
