// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Prometheus metrics (metrics.h): the listening socket, the exposition rendered from the audit
 * tables, the textfile writer, and the libmicrohttpd server that answers scrapes from the last
 * published buffer.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>
#include "format.h"
#include "metrics.h"
#include "outfile.h"

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
	    listen(fd, 64)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * Series are summed per (comm, runtime, qos): the labels of the per-program series. runtime and
 * qos come from closed sets (user/container.h), so they never raise the cardinality by more
 * than a small factor; the container id and pod UID are not labels (every new container and
 * pod would add series that never go away: the counters are totals since start). At most
 * METRICS_COMM_MAX (comm, runtime, qos) combinations have series of their own; the rest go
 * to the comm="_other" bucket of their runtime and qos, which keep their values there, so
 * that sums by runtime or qos stay exact past the limit too.
 */
enum { RUNTIME_LABEL_NONE = 0, RUNTIME_LABEL_UNKNOWN = CONTAINER_RUNTIME_PODMAN + 1,
       RUNTIME_LABELS };
#define QOS_LABELS (POD_QOS_BESTEFFORT + 1)

/* The runtime label of ci: "" outside containers, the runtime's name, or "unknown" for a
 * container id whose runtime the path does not tell. */
static int runtime_label(const struct container_info *ci)
{
	if (ci->runtime > CONTAINER_RUNTIME_UNKNOWN && ci->runtime <= CONTAINER_RUNTIME_PODMAN)
		return ci->runtime;
	return ci->id[0] ? RUNTIME_LABEL_UNKNOWN : RUNTIME_LABEL_NONE;
}

static const char *runtime_label_name(int rt)
{
	if (rt == RUNTIME_LABEL_UNKNOWN)
		return METRICS_RUNTIME_UNKNOWN;
	return rt == RUNTIME_LABEL_NONE ? "" : container_runtime_name(rt);
}

/* The qos label: "" outside Kubernetes pods, else "guaranteed", "burstable", "besteffort". */
static int qos_label(const struct container_info *ci)
{
	return ci->qos > POD_QOS_UNKNOWN && ci->qos < QOS_LABELS ? (int)ci->qos : POD_QOS_UNKNOWN;
}

static const char *qos_label_name(int qos)
{
	return qos == POD_QOS_UNKNOWN ? "" : pod_qos_name(qos);
}

struct comm_sums {
	char comm[DSTRACE_COMM_LEN];
	int runtime; /* runtime_label() */
	int qos; /* qos_label() */
	uint64_t counts[DSTRACE_EV_MAX][DSTRACE_PROTO_MAX];
	uint64_t bytes[DSTRACE_DIR_MAX][DSTRACE_PROTO_MAX];
	struct audit_errno errnos[AUDIT_ERRNOS_MAX];
	uint32_t nerrnos;
	uint64_t errnos_other;
	uint64_t fallbacks; /* mapped connects after a failed native IPv6 one (the starred cell) */
};

struct comm_table {
	struct comm_sums named[METRICS_COMM_MAX];
	uint32_t n;
	/* comm="_other", by runtime and qos: the combinations that found no slot */
	struct comm_sums other[RUNTIME_LABELS][QOS_LABELS];
	bool other_used[RUNTIME_LABELS][QOS_LABELS];
};

/* A program literally named "_other" joins the bucket of its runtime and qos: one label value,
 * one series. */
static struct comm_sums *comm_slot(struct comm_table *t, const char *comm,
				   const struct container_info *ci)
{
	int rt = runtime_label(ci), qos = qos_label(ci);
	struct comm_sums *o;

	if (strcmp(comm, METRICS_COMM_OTHER)) {
		for (uint32_t i = 0; i < t->n; i++) {
			if (t->named[i].runtime == rt && t->named[i].qos == qos &&
			    !strcmp(t->named[i].comm, comm))
				return &t->named[i];
		}
		if (t->n < METRICS_COMM_MAX) {
			snprintf(t->named[t->n].comm, sizeof(t->named[t->n].comm), "%s", comm);
			t->named[t->n].runtime = rt;
			t->named[t->n].qos = qos;
			return &t->named[t->n++];
		}
	}
	o = &t->other[rt][qos];
	if (!t->other_used[rt][qos]) {
		snprintf(o->comm, sizeof(o->comm), "%s", METRICS_COMM_OTHER);
		o->runtime = rt;
		o->qos = qos;
		t->other_used[rt][qos] = true;
	}
	return o;
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

#define SERIES_MAX (METRICS_COMM_MAX + RUNTIME_LABELS * QOS_LABELS)

/* The series in the order they are written: the named ones as first seen, then the buckets
 * (runtime "", docker, containerd, cri-o, podman, unknown; qos "", guaranteed, burstable,
 * besteffort). */
static uint32_t comm_series(const struct comm_table *t, const struct comm_sums *out[SERIES_MAX])
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < t->n; i++)
		out[n++] = &t->named[i];
	for (int rt = 0; rt < RUNTIME_LABELS; rt++)
		for (int qos = 0; qos < QOS_LABELS; qos++)
			if (t->other_used[rt][qos])
				out[n++] = &t->other[rt][qos];
	return n;
}

/* The labels of a series after its own: comm, runtime, qos, each escaped. */
static void series_labels(const struct comm_sums *s, char *out, size_t size)
{
	char comm[METRICS_LABEL_MAX], rt[METRICS_LABEL_MAX], qos[METRICS_LABEL_MAX];

	metrics_label_value(s->comm, comm);
	metrics_label_value(runtime_label_name(s->runtime), rt);
	metrics_label_value(qos_label_name(s->qos), qos);
	snprintf(out, size, "comm=\"%s\",runtime=\"%s\",qos=\"%s\"", comm, rt, qos);
}

/* The per-program series, one metric each, in series order. */
static void render_events(const struct comm_sums *const *series, uint32_t nseries, FILE *out)
{
	char labels[3 * METRICS_LABEL_MAX + 32];

	fprintf(out, "# HELP dstrace_mapped_events_total IPv4 traffic of AF_INET6 sockets through "
		     "IPv4-mapped addresses: connections (connect, accept) and datagrams (send, recv).\n"
		     "# TYPE dstrace_mapped_events_total counter\n");
	for (uint32_t i = 0; i < nseries; i++) {
		const struct comm_sums *s = series[i];

		series_labels(s, labels, sizeof(labels));
		for (int k = 0; k < DSTRACE_EV_MAX; k++)
			for (int pr = 0; pr < DSTRACE_PROTO_MAX; pr++)
				if (s->counts[k][pr])
					fprintf(out, "dstrace_mapped_events_total{event=\"%s\",proto=\"%s\",%s} %" PRIu64 "\n",
						dstrace_event_name(k), dstrace_proto_name(pr), labels,
						s->counts[k][pr]);
	}
}

static void render_bytes(const struct comm_sums *const *series, uint32_t nseries, FILE *out)
{
	static const char *const dir_names[DSTRACE_DIR_MAX] = { "sent", "received" };
	char labels[3 * METRICS_LABEL_MAX + 32];

	fprintf(out, "# HELP dstrace_mapped_bytes_total Payload bytes over IPv4-mapped sockets.\n"
		     "# TYPE dstrace_mapped_bytes_total counter\n");
	for (uint32_t i = 0; i < nseries; i++) {
		const struct comm_sums *s = series[i];

		series_labels(s, labels, sizeof(labels));
		for (int d = 0; d < DSTRACE_DIR_MAX; d++)
			for (int pr = 0; pr < DSTRACE_PROTO_MAX; pr++)
				if (s->bytes[d][pr])
					fprintf(out, "dstrace_mapped_bytes_total{direction=\"%s\",proto=\"%s\",%s} %" PRIu64 "\n",
						dir_names[d], dstrace_proto_name(pr), labels,
						s->bytes[d][pr]);
	}
}

static void render_failures(const struct comm_sums *const *series, uint32_t nseries, FILE *out)
{
	char ebuf[16], labels[3 * METRICS_LABEL_MAX + 32];

	fprintf(out, "# HELP dstrace_mapped_failures_total Failed mapped attempts by errno "
		     "(ENETUNREACH: v6-only socket or no IPv4 route).\n"
		     "# TYPE dstrace_mapped_failures_total counter\n");
	for (uint32_t i = 0; i < nseries; i++) {
		const struct comm_sums *s = series[i];

		series_labels(s, labels, sizeof(labels));
		for (uint32_t j = 0; j < s->nerrnos; j++)
			fprintf(out, "dstrace_mapped_failures_total{event=\"%s\",error=\"%s\",%s} %" PRIu64 "\n",
				dstrace_event_name(s->errnos[j].kind),
				dstrace_errno_name(-s->errnos[j].err, ebuf, sizeof(ebuf)), labels,
				s->errnos[j].count);
		if (s->errnos_other)
			fprintf(out, "dstrace_mapped_failures_total{event=\"_other\",error=\"_other\",%s} %" PRIu64 "\n",
				labels, s->errnos_other);
	}
}

/* The starred cell: mapped connects made after a failed IPv6 attempt to the same name. */
static void render_fallbacks(const struct comm_sums *const *series, uint32_t nseries, FILE *out)
{
	char labels[3 * METRICS_LABEL_MAX + 32];

	fprintf(out, "# HELP dstrace_fallbacks_total Mapped connects made after the same thread's "
		     "IPv6 connect to an address of the same name failed (the name has A and AAAA "
		     "records; README, Names).\n"
		     "# TYPE dstrace_fallbacks_total counter\n");
	for (uint32_t i = 0; i < nseries; i++) {
		if (!series[i]->fallbacks)
			continue;
		series_labels(series[i], labels, sizeof(labels));
		fprintf(out, "dstrace_fallbacks_total{%s} %" PRIu64 "\n", labels,
			series[i]->fallbacks);
	}
}

/* dstrace's own counters: lost events, evictions, drops by cause, write errors, build. */
static void render_totals(const struct metrics_totals *t, FILE *out)
{
	uint64_t dv[DSTRACE_DROPS_N];

	fprintf(out, "# HELP dstrace_lost_events_total Events the kernel ring buffer had no room for.\n"
		     "# TYPE dstrace_lost_events_total counter\n"
		     "dstrace_lost_events_total %" PRIu64 "\n"
		     "# HELP dstrace_evictions_total Entries evicted from bounded tables (UDP flows, "
		     "programs, peers).\n"
		     "# TYPE dstrace_evictions_total counter\n"
		     "dstrace_evictions_total %" PRIu64 "\n"
		     "# HELP dstrace_dropped_total What dstrace had to leave out, by cause "
		     "(docs/audit-format.md, drops).\n"
		     "# TYPE dstrace_dropped_total counter\n",
		t->lost, t->evictions);
	dstrace_drops_values(&t->drops, dv);
	for (size_t i = 0; i < DSTRACE_DROPS_N; i++)
		fprintf(out, "dstrace_dropped_total{what=\"%s\"} %" PRIu64 "\n",
			dstrace_drop_names[i], dv[i]);
	fprintf(out, "# HELP dstrace_audit_write_errors_total Audit writes that failed (retried at the "
		     "next interval).\n"
		     "# TYPE dstrace_audit_write_errors_total counter\n"
		     "dstrace_audit_write_errors_total %" PRIu64 "\n"
		     "# HELP dstrace_build_info dstrace version and the backend in use.\n"
		     "# TYPE dstrace_build_info gauge\n"
		     "dstrace_build_info{version=\"%s\",backend=\"%s\"} 1\n",
		t->write_errors, t->version, t->backend);
}

int metrics_render(const struct audit *a, const struct metrics_totals *t, FILE *out)
{
	struct comm_table *tab = calloc(1, sizeof(*tab));
	const struct comm_sums *series[SERIES_MAX];
	uint32_t nseries;

	if (!tab)
		return -ENOMEM;
	for (uint32_t i = 0; i < a->nprograms; i++) {
		const struct audit_program *p = &a->programs[i];
		struct comm_sums *s = comm_slot(tab, p->comm, &p->container);

		for (int k = 0; k < DSTRACE_EV_MAX; k++)
			for (int pr = 0; pr < DSTRACE_PROTO_MAX; pr++)
				s->counts[k][pr] += p->counts[k][pr];
		for (int d = 0; d < DSTRACE_DIR_MAX; d++)
			for (int pr = 0; pr < DSTRACE_PROTO_MAX; pr++)
				s->bytes[d][pr] += p->bytes[d][pr];
		add_errnos(s, p);
		s->fallbacks += p->fallbacks;
	}
	nseries = comm_series(tab, series);
	render_events(series, nseries, out);
	render_bytes(series, nseries, out);
	render_failures(series, nseries, out);
	render_fallbacks(series, nseries, out);
	render_totals(t, out);
	free(tab);
	return ferror(out) ? -EIO : 0;
}

int metrics_render_buf(const struct audit *a, const struct metrics_totals *t, char **buf,
		       size_t *len)
{
	FILE *mem = open_memstream(buf, len);
	int err;

	if (!mem)
		return -errno;
	err = metrics_render(a, t, mem);
	if (fclose(mem) && !err)
		err = -ENOMEM;
	if (err) {
		free(*buf);
		*buf = NULL;
		*len = 0;
	}
	return err;
}

int metrics_file_write(const char *path, const char *body, size_t len, char *why,
		       size_t why_size)
{
	char tmp[PATH_MAX], reason[256];
	FILE *f;
	int err;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(why, why_size, "%s", strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	err = outfile_open(tmp, OUTFILE_TRUNCATE, &f, reason, sizeof(reason));
	if (err) {
		snprintf(why, why_size, "%s: %s", tmp, reason);
		return err;
	}
	errno = 0;
	if (fwrite(body, 1, len, f) != len)
		err = errno ? -errno : -EIO;
	if (fclose(f) && !err)
		err = errno ? -errno : -EIO;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		snprintf(why, why_size, "%s", strerror(-err));
	}
	return err;
}

/* --- the HTTP server ---------------------------------------------------------------------- */

/* libmicrohttpd is opened when a server is asked for: linked in, it and the TLS libraries it
 * brings (GnuTLS, nettle, p11-kit, ...) added 2.7 MiB to the memory of every run. MHD_SONAME
 * (the Makefile's) is the soname of the library dstrace was built against. */
#ifndef MHD_SONAME
#define MHD_SONAME "libmicrohttpd.so.12"
#endif
#define MHD_FUNCS(X)                                                                               \
	X(start_daemon)                                                                            \
	X(stop_daemon)                                                                             \
	X(get_connection_info)                                                                     \
	X(create_response_from_buffer)                                                             \
	X(add_response_header)                                                                     \
	X(queue_response)                                                                          \
	X(destroy_response)
#define MHD_POINTER(f) __typeof__(MHD_##f) *f;
static struct {
	void *lib;
	MHD_FUNCS(MHD_POINTER)
} mhd;
static char mhd_error[256];

int metrics_http_open(const char **why)
{
	void *lib;

	*why = mhd_error;
	if (mhd.lib)
		return 0;
	if (mhd_error[0])
		return -ELIBACC;
	lib = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(mhd_error, sizeof(mhd_error), "%s", dlerror());
		return -ELIBACC;
	}
#define MHD_RESOLVE(f)                                                                             \
	if (!(mhd.f = (__typeof__(mhd.f))dlsym(lib, "MHD_" #f))) {                                 \
		snprintf(mhd_error, sizeof(mhd_error), "%s: no MHD_" #f, MHD_SONAME);              \
		memset(&mhd, 0, sizeof(mhd));                                                      \
		dlclose(lib);                                                                      \
		return -ELIBACC;                                                                   \
	}
	MHD_FUNCS(MHD_RESOLVE)
#undef MHD_RESOLVE
	mhd.lib = lib;
	return 0;
}

/* A connection as the deadline sees it: a duplicate of its socket, so that shutdown() from
 * the main thread reaches the right socket even if the server closed its own descriptor. */
struct conn_slot {
	int fd; /* -1: free */
	uint64_t started_ns; /* CLOCK_MONOTONIC */
};

struct metrics_server {
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock; /* body, len, conns */
	char *body;
	size_t len;
	struct conn_slot conns[METRICS_CONN_MAX];
	atomic_uint_fast64_t scrapes;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct metrics_server *s = cls;
	struct conn_slot *slot = *socket_context;

	pthread_mutex_lock(&s->lock);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			mhd.get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		for (int i = 0; ci && i < METRICS_CONN_MAX; i++) {
			if (s->conns[i].fd >= 0)
				continue;
			s->conns[i].fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0);
			s->conns[i].started_ns = mono_ns();
			if (s->conns[i].fd >= 0)
				*socket_context = &s->conns[i];
			break;
		}
	} else if (slot) {
		close(slot->fd);
		slot->fd = -1;
		*socket_context = NULL;
	}
	pthread_mutex_unlock(&s->lock);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
			     void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp = mhd.create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	/* One request per connection: a client never holds a connection between scrapes,
	 * and the deadline never cuts a keep-alive connection in the middle of one. */
	mhd.add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		mhd.add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = mhd.queue_response(c, status, resp);
	mhd.destroy_response(resp);
	return ret;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	static char not_found[] = "dstrace serves /metrics\n";
	static char not_allowed[] = "dstrace serves GET /metrics\n";
	struct metrics_server *s = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", not_allowed,
			     sizeof(not_allowed) - 1, MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", not_found,
			     sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT);
	/* A copy, so that the main loop can publish the next one meanwhile. */
	pthread_mutex_lock(&s->lock);
	resp = mhd.create_response_from_buffer(s->len, s->body, MHD_RESPMEM_MUST_COPY);
	pthread_mutex_unlock(&s->lock);
	if (!resp)
		return MHD_NO;
	mhd.add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ret = mhd.queue_response(c, MHD_HTTP_OK, resp);
	mhd.destroy_response(resp);
	if (ret == MHD_YES)
		atomic_fetch_add(&s->scrapes, 1);
	return ret;
}

int metrics_server__new(int listen_fd, char *body, size_t len, struct metrics_server **out)
{
	struct metrics_server *s;
	sigset_t all, old;
	const char *why;

	*out = NULL;
	if (metrics_http_open(&why)) {
		close(listen_fd);
		free(body);
		return -ELIBACC;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(listen_fd);
		free(body);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->body = body;
	s->len = len;
	for (int i = 0; i < METRICS_CONN_MAX; i++)
		s->conns[i].fd = -1;
	/* Signals are the main loop's: the server's thread inherits a mask that blocks them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	s->daemon = mhd.start_daemon(
		MHD_USE_POLL_INTERNAL_THREAD, 0, NULL, NULL, handle_request, s,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_CONN_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)METRICS_CONN_IDLE_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
		MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s,
		MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!s->daemon) {
		close(listen_fd);
		metrics_server__free(s);
		return -EIO; /* libmicrohttpd says no more (it logs nothing without ERROR_LOG) */
	}
	*out = s;
	return 0;
}

void metrics_server__publish(struct metrics_server *s, char *body, size_t len)
{
	uint64_t now = mono_ns();
	char *old;

	pthread_mutex_lock(&s->lock);
	old = s->body;
	s->body = body;
	s->len = len;
	for (int i = 0; i < METRICS_CONN_MAX; i++) {
		/* The server sees the end of the stream and closes the connection itself. */
		if (s->conns[i].fd >= 0 &&
		    now - s->conns[i].started_ns > METRICS_CONN_DEADLINE_S * 1000000000ull)
			shutdown(s->conns[i].fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&s->lock);
	free(old);
}

uint64_t metrics_server__scrapes(struct metrics_server *s)
{
	return atomic_load(&s->scrapes);
}

void metrics_server__free(struct metrics_server *s)
{
	if (!s)
		return;
	if (s->daemon)
		mhd.stop_daemon(s->daemon); /* closes the connections (notify: their dups too) */
	for (int i = 0; i < METRICS_CONN_MAX; i++) {
		if (s->conns[i].fd >= 0)
			close(s->conns[i].fd);
	}
	pthread_mutex_destroy(&s->lock);
	free(s->body);
	free(s);
}
