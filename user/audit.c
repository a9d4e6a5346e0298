// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The audit writer (audit.h): each program of the table (programs.h) as one "audit" line, the
 * run as one "audit_run" line (docs/audit-format.md; their counters' keys and order are
 * schema.h's, the drops drops.h's), and the appends that put a set in the file whole or not at
 * all, with the repair of a tail torn by an earlier run.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit.h"
#include "format.h"
#include "schema.h"

static void fmt_time(uint64_t boot_ns, const struct dstrace_clock *clock, char *buf, size_t size)
{
	if (!boot_ns)
		snprintf(buf, size, "null");
	else {
		buf[0] = '"';
		dstrace_format_ts(dstrace_clock_realtime(clock, boot_ns), buf + 1, size - 2);
		strcat(buf, "\"");
	}
}

static void json_or_null(const char *s, char *buf, size_t size)
{
	if (!s[0])
		snprintf(buf, size, "null");
	else
		dstrace_json_string(s, strlen(s), buf, size);
}

/* The record up to its counters: who, where, how many processes. */
static void write_identity(const struct audit_program *p, FILE *out, const char *head)
{
	char exe[AUDIT_EXE_LEN * 6 + 3], comm[DSTRACE_COMM_LEN * 6 + 3];
	char cgroup[AUDIT_CGROUP_LEN * 6 + 3], container[256];

	dstrace_json_string(p->exe, sizeof(p->exe), exe, sizeof(exe));
	dstrace_json_string(p->comm, sizeof(p->comm), comm, sizeof(comm));
	json_or_null(p->cgroup, cgroup, sizeof(cgroup));
	container_info_json(&p->container, container, sizeof(container)); /* 4 members */
	fprintf(out,
		"{\"type\":\"audit\",%s,\"exe\":%s,\"comm\":%s,\"uid\":%u,\"cgroup\":%s,"
		"%s,\"netns\":%u,\"pids\":%" PRIu64,
		head, exe, comm, p->uid, cgroup, container, p->netns, p->pids);
}

/* ,"connect":{"tcp":N,"udp":N},...,"failed":{"total":N (schema.h: "failed" left open) */
static void write_counts(const struct audit_program *p, FILE *out)
{
	const struct dstrace_count_key *keys = dstrace_audit_count_keys;
	const uint64_t v[DSTRACE_AUDIT_COUNTS_N] = {
#define VALUE(o, k, f, source) p->source,
		DSTRACE_AUDIT_COUNTS(VALUE)
#undef VALUE
	};

	for (size_t i = 0; i < DSTRACE_AUDIT_COUNTS_N; i++) {
		if (i && !strcmp(keys[i].obj, keys[i - 1].obj))
			fputc(',', out);
		else
			fprintf(out, "%s\"%s\":{", i ? "}," : ",", keys[i].obj);
		fprintf(out, "\"%s\":%" PRIu64, keys[i].key, v[i]);
	}
}

/* ,"by_errno":{"ECONNREFUSED":N,...} closing "failed": each errno once, summed over the
 * event kinds that failed with it. */
static void write_errnos(const struct audit_program *p, FILE *out)
{
	char ebuf[16];

	fputs(",\"by_errno\":{", out);
	for (uint32_t i = 0, n = 0; i < p->nerrnos; i++) {
		uint64_t count = 0;
		bool first_of_errno = true;

		for (uint32_t j = 0; j < p->nerrnos; j++) {
			if (p->errnos[j].err == p->errnos[i].err) {
				first_of_errno = first_of_errno && j >= i;
				count += p->errnos[j].count;
			}
		}
		if (first_of_errno)
			fprintf(out, "%s\"%s\":%" PRIu64, n++ ? "," : "",
				dstrace_errno_name(-p->errnos[i].err, ebuf, sizeof(ebuf)), count);
	}
	if (p->errnos_other)
		fprintf(out, "%s\"other\":%" PRIu64, p->nerrnos ? "," : "", p->errnos_other);
	fputs("}}", out);
}

/* ,"listen_ports":[...],"peers":[...] (the busiest AUDIT_PEERS_SHOWN) */
static void write_ports_peers(const struct audit_program *p, FILE *out)
{
	struct audit_peer top[AUDIT_PEERS_SHOWN];
	uint32_t ntop = audit_program__top_peers(p, top, AUDIT_PEERS_SHOWN);

	fputs(",\"listen_ports\":[", out);
	for (uint32_t i = 0; i < p->nports; i++)
		fprintf(out, "%s%u", i ? "," : "", p->ports[i]);
	fprintf(out, "],\"peers\":[");
	for (uint32_t i = 0; i < ntop; i++) {
		char ip[INET_ADDRSTRLEN];

		dstrace_format_ipv4(top[i].addr, ip, sizeof(ip));
		fprintf(out, "%s{\"dir\":\"%s\",\"proto\":\"%s\",\"addr\":\"%s\",\"port\":%u,"
			     "\"count\":%" PRIu64 "}",
			i ? "," : "", top[i].dir == AUDIT_DIR_IN ? "in" : "out",
			dstrace_proto_name(top[i].proto), ip, top[i].port, top[i].count);
	}
	fputc(']', out);
}

/* ,"names":[{"name":..,"answer":"a-only","mapped_by":"resolver","count":N,"failed":N,
 * "fallbacks":N}],
 * "names_dropped":N */
static void write_names(const struct audit_program *p, FILE *out)
{
	fputs(",\"names\":[", out);
	for (uint32_t i = 0; i < p->nnames; i++) {
		const struct audit_name *n = &p->names[i];
		char name[DSTRACE_NAME_LEN * 6 + 3];

		dstrace_json_string(n->name, DSTRACE_NAME_LEN, name, sizeof(name));
		fprintf(out, "%s{\"name\":%s,\"answer\":\"%s\",\"mapped_by\":\"%s\",\"count\":%" PRIu64
			     ",\"failed\":%" PRIu64 ",\"fallbacks\":%" PRIu64 "}",
			i ? "," : "", name, n->flags & DSTRACE_NAME_AAAA ? "a+aaaa" : "a-only",
			n->flags & DSTRACE_NAME_RESOLVER_MAPPED ? "resolver" : "program", n->count,
			n->failed, n->fallbacks);
	}
	fprintf(out, "],\"names_dropped\":%" PRIu64, p->names_dropped);
}

static int write_program(const struct audit_program *p, FILE *out, const char *head,
			 const struct dstrace_clock *clock)
{
	char first[48], last[48];

	fmt_time(p->first_ns, clock, first, sizeof(first));
	fmt_time(p->last_ns, clock, last, sizeof(last));
	write_identity(p, out, head);
	write_counts(p, out);
	write_errnos(p, out);
	fprintf(out, ",\"first_seen\":%s,\"last_seen\":%s", first, last);
	write_ports_peers(p, out);
	fprintf(out, ",\"peers_dropped\":%" PRIu64, p->peers_dropped);
	write_names(p, out);
	return fputs("}\n", out) < 0 ? -EIO : 0;
}


int audit_write_batch(int fd, const char *buf, size_t len, bool *torn,
		      const volatile sig_atomic_t *stop)
{
	struct stat st;
	size_t done = 0;
	int err;

	*torn = false;
	if (fstat(fd, &st))
		return -errno;
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n > 0) {
			done += n;
			continue;
		}
		if (n < 0 && errno == EINTR && !*stop)
			continue;
		err = n < 0 ? -errno : -EIO;
		/* Whole or nothing: a partial set would leave a torn line for the next one to
		 * run into. Regular files only: a pipe cannot be cut back. */
		if (done && (!S_ISREG(st.st_mode) || ftruncate(fd, st.st_size)))
			*torn = true;
		return err;
	}
	return 0;
}

int audit_repair_tail(int fd)
{
	char path[64], last = '\n';
	struct stat st;
	int rfd, err = 0;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) || !st.st_size)
		return 0;
	/* fd is opened for appending only: read the same file through a descriptor of its own */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rfd = open(path, O_RDONLY | O_CLOEXEC);
	if (rfd < 0)
		return -errno;
	if (pread(rfd, &last, 1, st.st_size - 1) != 1)
		err = -EIO;
	close(rfd);
	if (err || last == '\n')
		return err;
	return write(fd, "\n", 1) == 1 ? 0 : (errno ? -errno : -EIO);
}

/* The "audit_run" record: schema.h's run counters, then what only the writer knows. */
static void write_run(const struct audit *a, FILE *out, const struct audit_run_info *run,
		      const char *head, uint32_t written)
{
	const struct {
		DSTRACE_RUN_COUNTS(DSTRACE_RUN_COUNT_FIELD)
	} c = {
		.events = run->events, .lost = run->lost, .evictions = run->evictions,
		.programs = a->nprograms, .programs_dropped = a->programs_dropped,
	};
	const uint64_t v[DSTRACE_RUN_COUNTS_N] = {
#define VALUE(k) c.k,
		DSTRACE_RUN_COUNTS(VALUE)
#undef VALUE
	};
	uint64_t dv[DSTRACE_DROPS_N];
	char started[40], drops[DSTRACE_DROPS_N * 40 + 8], blind[4 * 140 + 8];

	dstrace_format_ts(run->started_realtime_ns, started, sizeof(started));
	dstrace_drops_values(&run->drops, dv);
	dstrace_format_drops_json(dv, drops, sizeof(drops));
	dstrace_format_blind_json(run->blind, run->nblind, blind, sizeof(blind));
	fprintf(out, "{\"type\":\"audit_run\",%s,\"started\":\"%s\"", head, started);
	for (size_t i = 0; i < DSTRACE_RUN_COUNTS_N; i++)
		fprintf(out, ",\"%s\":%" PRIu64, dstrace_run_count_keys[i], v[i]);
	fprintf(out, ",\"written\":%u,\"drops\":%s,\"write_errors\":%" PRIu64 ",\"blind\":%s,"
		     "\"names_evicted\":%" PRIu64 ",\"final\":%s}\n",
		written, drops, run->write_errors, blind, run->names_evicted,
		run->final ? "true" : "false");
}

int audit__write(const struct audit *a, FILE *out, const struct audit_run_info *run, bool full)
{
	uint32_t written = 0;
	char head[4096], host[256 * 6 + 3], run_id[320 * 6 + 3], ts[40];

	dstrace_json_string(run->host, strlen(run->host), host, sizeof(host));
	dstrace_json_string(run->run_id, strlen(run->run_id), run_id, sizeof(run_id));
	dstrace_format_ts(run->now_realtime_ns, ts, sizeof(ts));
	snprintf(head, sizeof(head), "\"run\":%s,\"ts\":\"%s\",\"host\":%s,\"backend\":\"%s\"",
		 run_id, ts, host, run->backend);
	clearerr(out);
	for (uint32_t i = 0; i < a->nprograms; i++) {
		if (full || a->programs[i].changed) {
			write_program(&a->programs[i], out, head, run->clock);
			written++;
		}
	}
	write_run(a, out, run, head, written);
	if (fflush(out) == EOF || ferror(out))
		return -(errno ? errno : EIO);
	return (int)written;
}
