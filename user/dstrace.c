// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace: report IPv4 traffic that the kernel carries for AF_INET6 sockets because the
 * address is IPv4-mapped (::ffff:a.b.c.d), per process.
 */
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "aggregate.h"
#include "backend.h"
#include "format.h"
#include "options.h"

static volatile sig_atomic_t exiting;

struct run {
	struct env env;
	FILE *out;
	struct proc_table procs;
	struct dstrace_backend *backend;
	uint64_t events_seen;
	int64_t boot_to_realtime_ns; /* add to CLOCK_BOOTTIME to get CLOCK_REALTIME */
	int write_errno;
};

static void sig_handler(int sig)
{
	(void)sig;
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

/* Write one line; remember the first error, which ends the run. */
static void emit_line(struct run *r, const char *line)
{
	if (r->write_errno)
		return;
	if (fputs(line, r->out) == EOF || fputc('\n', r->out) == EOF || fflush(r->out) == EOF) {
		r->write_errno = errno ? errno : EIO;
		exiting = 1;
	}
}

static int handle_event(void *ctx, void *data, size_t len)
{
	struct run *r = ctx;
	const struct dstrace_event *e = data;
	char line[DSTRACE_LINE_MAX];
	uint64_t realtime;

	if (len < sizeof(*e))
		return 0;
	r->events_seen++;
	proc_table__add_event(&r->procs, e);
	if (r->env.interval_s)
		return 0;
	realtime = e->ts_ns + r->boot_to_realtime_ns;
	if (r->env.json)
		dstrace_format_event_json(e, realtime, line, sizeof(line));
	else
		dstrace_format_event_text(e, realtime, line, sizeof(line));
	emit_line(r, line);
	return 0;
}

static void print_procs(struct run *r)
{
	char line[DSTRACE_LINE_MAX];

	dstrace_backend__read_procs(r->backend, &r->procs);
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
		if (r->env.json)
			dstrace_format_proc_json(&r->procs.procs[i], line, sizeof(line));
		else
			dstrace_format_proc_text(&r->procs.procs[i], line, sizeof(line));
		emit_line(r, line);
	}
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

	if (dstrace_parse_args(argc, argv, &r.env, true))
		return 2;
	proc_table__init(&r.procs);
	r.out = stdout;

	if (check_privileges())
		return 1;
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "dstrace: this kernel has no BTF (/sys/kernel/btf/vmlinux): "
				"dstrace needs CONFIG_DEBUG_INFO_BTF=y\n");
		return 1;
	}
	if (r.env.output) {
		r.out = fopen(r.env.output, "w");
		if (!r.out) {
			fprintf(stderr, "dstrace: cannot open output file '%s': %s\n", r.env.output,
				strerror(errno));
			return 1;
		}
	}

	libbpf_set_print(r.env.verbose ? libbpf_print : NULL);
	signal(SIGINT, sig_handler);
	signal(SIGTERM, sig_handler);
	signal(SIGPIPE, SIG_IGN);

	err = dstrace_backend__new(&r.env, &r.backend);
	if (err)
		goto cleanup;
	rb = ring_buffer__new(dstrace_backend__ringbuf_fd(r.backend), handle_event, &r, NULL);
	if (!rb) {
		fprintf(stderr, "dstrace: failed to open the ring buffer: %s\n", strerror(errno));
		goto cleanup;
	}

	r.boot_to_realtime_ns = (int64_t)(clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME));
	start_ns = clock_ns(CLOCK_MONOTONIC);
	if (r.env.interval_s)
		next_interval_ns = start_ns + r.env.interval_s * 1000000000ull;
	fprintf(stderr, "Tracing IPv4-mapped traffic on AF_INET6 sockets (backend %s)... "
			"Hit Ctrl-C to end.\n",
		dstrace_backend__name(r.backend));
	if (!r.env.json && !r.env.interval_s) {
		dstrace_format_event_header(line, sizeof(line));
		emit_line(&r, line);
	}

	while (!exiting) {
		uint64_t now;

		err = ring_buffer__poll(rb, 100);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "dstrace: error polling the ring buffer: %s\n",
				strerror(-err));
			goto cleanup;
		}
		now = clock_ns(CLOCK_MONOTONIC);
		if (r.env.duration_s && now - start_ns >= r.env.duration_s * 1000000000ull)
			break;
		if (next_interval_ns && now >= next_interval_ns) {
			print_procs(&r);
			next_interval_ns += r.env.interval_s * 1000000000ull;
		}
	}
	/* What the kernel queued before we stopped still belongs to this run. */
	ring_buffer__consume(rb);

	print_procs(&r);
	dstrace_backend__counters(r.backend, counters);
	stats.backend = dstrace_backend__name(r.backend);
	stats.events = r.events_seen;
	stats.lost = counters[DSTRACE_CNT_LOST];
	stats.proc_full = counters[DSTRACE_CNT_PROC_FULL];
	stats.duration_s = (clock_ns(CLOCK_MONOTONIC) - start_ns) / 1e9;
	if (r.env.json)
		dstrace_format_stats_json(&stats, line, sizeof(line));
	else
		dstrace_format_stats_text(&stats, line, sizeof(line));
	emit_line(&r, line);

	if (r.write_errno && r.write_errno != EPIPE) {
		fprintf(stderr, "dstrace: cannot write output%s%s: %s\n",
			r.env.output ? " to " : "", r.env.output ? r.env.output : "",
			strerror(r.write_errno));
		goto cleanup;
	}
	if (stats.lost)
		fprintf(stderr, "dstrace: warning: %llu events lost (ring buffer full); "
				"the per-process counts are complete, the event list is not: "
				"raise --ringbuf-kb\n",
			(unsigned long long)stats.lost);
	if (r.procs.peers_capped)
		fprintf(stderr, "dstrace: warning: %u processes reached %d distinct peers; their "
				"PEERS count is a lower bound\n",
			r.procs.peers_capped, PROC_PEERS_MAX);
	if (stats.proc_full || r.procs.dropped)
		fprintf(stderr, "dstrace: warning: per-process table full: %llu updates "
				"not counted\n",
			(unsigned long long)(stats.proc_full + r.procs.dropped));
	status = 0;
cleanup:
	ring_buffer__free(rb);
	dstrace_backend__free(r.backend);
	proc_table__free(&r.procs);
	if (r.out && r.out != stdout)
		fclose(r.out);
	return status;
}
