// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "format.h"
#include "metrics.h"

int metrics_listen(const char *spec, const char **what)
{
	struct sockaddr_storage ss = {};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	char host[128] = "127.0.0.1";
	const char *port_s = spec, *colon;
	char *end;
	unsigned long port;
	int fd, one = 1;

	*what = "parse";
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec + 1, close - spec - 1);
		host[close - spec - 1] = '\0';
		port_s = close + 2;
	} else if ((colon = strrchr(spec, ':'))) {
		if ((size_t)(colon - spec) >= sizeof(host))
			return -EINVAL;
		if (colon != spec) {
			memcpy(host, spec, colon - spec);
			host[colon - spec] = '\0';
		}
		port_s = colon + 1;
	}
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (!*port_s || *end || errno || port == 0 || port > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	} else {
		return -EINVAL;
	}
	*what = "listen on";
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, ss.ss_family == AF_INET ? sizeof(*sin) : sizeof(*sin6)) ||
	    listen(fd, 16)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Series are summed per comm; comms beyond METRICS_COMM_MAX share "_other". */
struct comm_sums {
	char comm[DSTRACE_COMM_LEN];
	uint64_t counts[DSTRACE_EV_MAX][DSTRACE_PROTO_MAX];
	uint64_t bytes[DSTRACE_DIR_MAX][DSTRACE_PROTO_MAX];
	struct audit_errno errnos[AUDIT_ERRNOS_MAX];
	uint32_t nerrnos;
	uint64_t errnos_other;
};

static struct comm_sums *comm_slot(struct comm_sums *sums, uint32_t *n, const char *comm)
{
	for (uint32_t i = 0; i < *n; i++) {
		if (!strcmp(sums[i].comm, comm))
			return &sums[i];
	}
	if (*n == METRICS_COMM_MAX)
		return comm_slot(sums, n, "_other");
	memset(&sums[*n], 0, sizeof(sums[*n]));
	snprintf(sums[*n].comm, sizeof(sums[*n].comm), "%s", comm);
	return &sums[(*n)++];
}

static void add_errnos(struct comm_sums *s, const struct audit_program *p)
{
	for (uint32_t i = 0; i < p->nerrnos; i++) {
		uint32_t j;

		for (j = 0; j < s->nerrnos; j++) {
			if (s->errnos[j].err == p->errnos[i].err && s->errnos[j].kind == p->errnos[i].kind)
				break;
		}
		if (j == s->nerrnos) {
			if (s->nerrnos == AUDIT_ERRNOS_MAX) {
				s->errnos_other += p->errnos[i].count;
				continue;
			}
			s->errnos[s->nerrnos++] = (struct audit_errno){ p->errnos[i].err, p->errnos[i].kind, 0 };
		}
		s->errnos[j].count += p->errnos[i].count;
	}
	s->errnos_other += p->errnos_other;
}

/* Label values: comm is bytes; escape what the text format requires, drop the rest. */
static void label_value(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; *in && o + 3 < size; in++) {
		unsigned char c = *in;

		if (c == '\\' || c == '"') {
			out[o++] = '\\';
			out[o++] = c;
		} else if (c >= 0x20 && c < 0x7f) {
			out[o++] = c;
		} else {
			out[o++] = '?';
		}
	}
	out[o] = '\0';
}

int metrics_render(const struct audit *a, const struct metrics_totals *t, FILE *out)
{
	static const char *const dir_names[DSTRACE_DIR_MAX] = { "sent", "received" };
	struct comm_sums *sums = calloc(METRICS_COMM_MAX + 1, sizeof(*sums));
	uint32_t n = 0;
	char ebuf[16];

	if (!sums)
		return -ENOMEM;
	for (uint32_t i = 0; i < a->nprograms; i++) {
		const struct audit_program *p = &a->programs[i];
		struct comm_sums *s = comm_slot(sums, &n, p->comm);

		for (int k = 0; k < DSTRACE_EV_MAX; k++)
			for (int pr = 0; pr < DSTRACE_PROTO_MAX; pr++)
				s->counts[k][pr] += p->counts[k][pr];
		for (int d = 0; d < DSTRACE_DIR_MAX; d++)
			for (int pr = 0; pr < DSTRACE_PROTO_MAX; pr++)
				s->bytes[d][pr] += p->bytes[d][pr];
		add_errnos(s, p);
	}

	fprintf(out, "# HELP dstrace_mapped_events_total IPv4 traffic of AF_INET6 sockets through "
		     "IPv4-mapped addresses: connections (connect, accept) and datagrams (send, recv).\n"
		     "# TYPE dstrace_mapped_events_total counter\n");
	for (uint32_t i = 0; i < n; i++) {
		char comm[DSTRACE_COMM_LEN * 2 + 1];

		label_value(sums[i].comm, comm, sizeof(comm));
		for (int k = 0; k < DSTRACE_EV_MAX; k++)
			for (int pr = 0; pr < DSTRACE_PROTO_MAX; pr++)
				if (sums[i].counts[k][pr])
					fprintf(out, "dstrace_mapped_events_total{event=\"%s\",proto=\"%s\",comm=\"%s\"} %" PRIu64 "\n",
						dstrace_event_name(k), dstrace_proto_name(pr), comm,
						sums[i].counts[k][pr]);
	}
	fprintf(out, "# HELP dstrace_mapped_bytes_total Payload bytes over IPv4-mapped sockets.\n"
		     "# TYPE dstrace_mapped_bytes_total counter\n");
	for (uint32_t i = 0; i < n; i++) {
		char comm[DSTRACE_COMM_LEN * 2 + 1];

		label_value(sums[i].comm, comm, sizeof(comm));
		for (int d = 0; d < DSTRACE_DIR_MAX; d++)
			for (int pr = 0; pr < DSTRACE_PROTO_MAX; pr++)
				if (sums[i].bytes[d][pr])
					fprintf(out, "dstrace_mapped_bytes_total{direction=\"%s\",proto=\"%s\",comm=\"%s\"} %" PRIu64 "\n",
						dir_names[d], dstrace_proto_name(pr), comm,
						sums[i].bytes[d][pr]);
	}
	fprintf(out, "# HELP dstrace_mapped_failures_total Failed mapped attempts by errno "
		     "(ENETUNREACH: v6-only socket or no IPv4 route).\n"
		     "# TYPE dstrace_mapped_failures_total counter\n");
	for (uint32_t i = 0; i < n; i++) {
		char comm[DSTRACE_COMM_LEN * 2 + 1];

		label_value(sums[i].comm, comm, sizeof(comm));
		for (uint32_t j = 0; j < sums[i].nerrnos; j++)
			fprintf(out, "dstrace_mapped_failures_total{event=\"%s\",error=\"%s\",comm=\"%s\"} %" PRIu64 "\n",
				dstrace_event_name(sums[i].errnos[j].kind),
				dstrace_errno_name(-sums[i].errnos[j].err, ebuf, sizeof(ebuf)), comm,
				sums[i].errnos[j].count);
		if (sums[i].errnos_other)
			fprintf(out, "dstrace_mapped_failures_total{event=\"_other\",error=\"_other\",comm=\"%s\"} %" PRIu64 "\n",
				comm, sums[i].errnos_other);
	}
	fprintf(out, "# HELP dstrace_lost_events_total Events the kernel ring buffer had no room for.\n"
		     "# TYPE dstrace_lost_events_total counter\n"
		     "dstrace_lost_events_total %" PRIu64 "\n"
		     "# HELP dstrace_evictions_total Entries evicted from bounded tables (UDP flows, "
		     "programs, peers).\n"
		     "# TYPE dstrace_evictions_total counter\n"
		     "dstrace_evictions_total %" PRIu64 "\n"
		     "# HELP dstrace_dropped_total What dstrace had to leave out, by cause "
		     "(docs/audit-format.md, drops).\n"
		     "# TYPE dstrace_dropped_total counter\n"
		     "dstrace_dropped_total{what=\"lost\"} %" PRIu64 "\n"
		     "dstrace_dropped_total{what=\"proc_full\"} %" PRIu64 "\n"
		     "dstrace_dropped_total{what=\"stash_full\"} %" PRIu64 "\n"
		     "dstrace_dropped_total{what=\"flows_evicted\"} %" PRIu64 "\n"
		     "dstrace_dropped_total{what=\"programs\"} %" PRIu64 "\n"
		     "dstrace_dropped_total{what=\"pids\"} %" PRIu64 "\n"
		     "dstrace_dropped_total{what=\"ports\"} %" PRIu64 "\n"
		     "dstrace_dropped_total{what=\"peers\"} %" PRIu64 "\n"
		     "# HELP dstrace_audit_write_errors_total Audit writes that failed (retried at the "
		     "next interval).\n"
		     "# TYPE dstrace_audit_write_errors_total counter\n"
		     "dstrace_audit_write_errors_total %" PRIu64 "\n"
		     "# HELP dstrace_build_info dstrace version and the backend in use.\n"
		     "# TYPE dstrace_build_info gauge\n"
		     "dstrace_build_info{version=\"%s\",backend=\"%s\"} 1\n",
		t->lost, t->evictions, t->drops.lost, t->drops.proc_full, t->drops.stash_full,
		t->drops.flows_evicted, t->drops.programs, t->drops.pids, t->drops.ports,
		t->drops.peers, t->write_errors, t->version, t->backend);
	free(sums);
	return ferror(out) ? -EIO : 0;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t n = write(fd, buf, len);

		if (n > 0) {
			buf += n;
			len -= n;
		} else if (n < 0 && errno == EAGAIN && poll(&pfd, 1, 1000) == 1) {
			continue;
		} else {
			return; /* the scraper went away */
		}
	}
}

static void serve_one(int fd, const struct audit *a, const struct metrics_totals *t)
{
	char req[2048], head[256];
	size_t got = 0;
	char *body = NULL;
	size_t body_len = 0;
	FILE *mem;

	/* Read the request head (bounded: 1 s, 2 KiB). */
	while (got < sizeof(req) - 1 && !memmem(req, got, "\r\n\r\n", 4)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 1000) != 1)
			return;
		n = read(fd, req + got, sizeof(req) - 1 - got);
		if (n <= 0)
			return;
		got += n;
	}
	req[got] = '\0';
	if (strncmp(req, "GET /metrics ", 13) && strncmp(req, "GET /metrics?", 13)) {
		static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
					 "Content-Length: 23\r\nConnection: close\r\n\r\n"
					 "dstrace serves /metrics";

		write_all(fd, nf, sizeof(nf) - 1);
		return;
	}
	mem = open_memstream(&body, &body_len);
	if (!mem)
		return;
	metrics_render(a, t, mem);
	fclose(mem);
	snprintf(head, sizeof(head),
		 "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		 body_len);
	write_all(fd, head, strlen(head));
	write_all(fd, body, body_len);
	free(body);
}

void metrics_serve(int listen_fd, const struct audit *a, const struct metrics_totals *t)
{
	for (int i = 0; i < 16; i++) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		serve_one(fd, a, t);
		close(fd);
	}
}
