// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loadgen: IPv4-mapped traffic on loopback for the dstrace benchmark, as fast as the machine
 * allows or at a fixed rate, for a fixed time. Every socket is AF_INET6; every peer is
 * ::ffff:127.0.0.1, so the kernel carries it all as IPv4.
 *
 *   tcp  a client thread: socket + connect([::ffff:127.0.0.1]:PORT) + close; a server
 *        thread: accept4 on [::]:PORT (IPV6_V6ONLY=0) + close. One op = one connection
 *        connected and accepted.
 *   tcp6, udp6
 *        the same as tcp and udp to [::1]: native IPv6, which a tracer of mapped traffic
 *        should let pass at the least cost.
 *   gai  one thread: getaddrinfo("localhost", AF_INET6, AI_V4MAPPED | AI_ALL) + freeaddrinfo
 *        (from /etc/hosts: what the resolver uprobes add to a call). One op = one call.
 *   udp  a sender thread: sendto([::ffff:127.0.0.1]:PORT) of SIZE bytes; a receiver thread:
 *        recvfrom on [::]:PORT (IPV6_V6ONLY=0), asking for the source address. One op = one
 *        datagram sent; the datagrams received are counted too.
 *   dns  a DNS-like server on [::]:PORT (IPV6_V6ONLY=0, AF_INET6 UDP): recvfrom of a
 *        request of SIZE bytes (its IPv4 source arrives as ::ffff:127.0.0.1), sendto of an
 *        answer of 2 x SIZE bytes back to it; an IPv4 client (AF_INET, connected to
 *        127.0.0.1:PORT) sends a request and waits for its answer. One op = one answer. The
 *        server's sendto and recvfrom are the mapped datagrams.
 *   http, http-ka
 *        IPv4 clients (AF_INET) of an HTTP server on 127.0.0.1:PORT (-p; the server's [::]
 *        socket accepts them as ::ffff:127.0.0.1): GET / with "Connection: close" on a new
 *        connection per request (http), or on connections kept alive (http-ka, reconnecting
 *        when the server closes one). -c clients, a thread each. One op = one response.
 * With -1 one thread does both ends in turn: no cross-CPU wakeups, so ops/s measures the CPU
 * cost of an op alone (two threads measure it mixed with how the scheduler pairs them).
 *
 * Prints one line of key=value pairs on stdout, e.g.
 *   loadgen mode=tcp duration_s=3.000 ops=61234 ops_per_s=20411.3 ...
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The client looks at the listener's accept queue every TCP_QUEUE_CHECK connections and waits
 * while it holds TCP_QUEUE_HIGH or more: far below the backlog, so no handshake is ever
 * dropped (a dropped SYN or ACK would stall the client for a 1 s retransmission). */
#define TCP_BACKLOG 4096
#define TCP_QUEUE_CHECK 64
#define TCP_QUEUE_HIGH 1024
#define UDP_MAX_SIZE 65507
#define UDP_RCVBUF (4 << 20)
/* How long the receiver keeps draining its queue once the sender has stopped. */
#define UDP_DRAIN_MS 50
/* How long a DNS-like client waits for an answer before it counts the request as lost. */
#define DNS_TIMEOUT_MS 1000
#define HTTP_CLIENTS_MAX 256
#define HTTP_BUF 65536
#define HTTP_TIMEOUT_S 5

enum mode { MODE_TCP, MODE_UDP, MODE_GAI, MODE_DNS, MODE_HTTP, MODE_HTTP_KA };

struct config {
	enum mode mode;
	bool native;	 /* tcp6, udp6: to [::1], not [::ffff:127.0.0.1] */
	double duration_s;
	double rate;	 /* ops/s; 0: as fast as possible */
	size_t size;	 /* UDP payload */
	uint16_t port;	 /* 0: any free port */
	bool one_thread; /* the client also accepts, the sender also receives */
	int clients;	 /* http: client threads */
};

/* Shared by the two threads of a run. */
struct shared {
	int fd; /* listener (tcp) or receiving socket (udp) */
	atomic_bool stop;
	atomic_uint_fast64_t done;   /* connections accepted, datagrams received */
	atomic_uint_fast64_t errors; /* accept, recvfrom or (dns) answer sendto failures */
	atomic_uint_fast64_t sent;   /* dns: answers sent */
	size_t answer;		     /* dns: bytes sent back to each datagram's source; 0: none */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until_ns(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull),
			       .tv_nsec = (long)(t % 1000000000ull) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* [::ffff:127.0.0.1]:port, or [::1]:port if native */
static struct sockaddr_in6 loopback_peer(uint16_t port, bool native)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	if (!native) {
		sa.sin6_addr.s6_addr[10] = 0xff;
		sa.sin6_addr.s6_addr[11] = 0xff;
		sa.sin6_addr.s6_addr[12] = 127;
	}
	sa.sin6_addr.s6_addr[15] = 1;
	return sa;
}

/* An AF_INET6 socket bound to [::]:port that also takes IPv4; returns the port bound. */
static int dual_stack_socket(int type, uint16_t port, uint16_t *bound)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT,
				   .sin6_port = htons(port) };
	socklen_t len = sizeof(sa);
	int off = 0, on = 1;
	int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)))
		die("setsockopt");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("bind [::]");
	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		die("getsockname");
	*bound = ntohs(sa.sin6_port);
	return fd;
}

/* Paces a loop at rate ops/s until the deadline; when late, it catches up without sleeping. */
struct pacer {
	uint64_t start_ns;
	uint64_t deadline_ns;
	double interval_ns; /* 0: no pacing */
	uint64_t n;
};

static void pacer_init(struct pacer *p, double duration_s, double rate)
{
	p->start_ns = now_ns();
	p->deadline_ns = p->start_ns + (uint64_t)(duration_s * 1e9);
	p->interval_ns = rate > 0 ? 1e9 / rate : 0;
	p->n = 0;
}

/* Waits until the next op is due; false once the run is over. */
static bool pacer_next(struct pacer *p)
{
	uint64_t due;

	if (p->interval_ns <= 0)
		return now_ns() < p->deadline_ns;
	due = p->start_ns + (uint64_t)(p->n++ * p->interval_ns);
	if (due >= p->deadline_ns)
		return false;
	if (due > now_ns())
		sleep_until_ns(due);
	return true;
}

/* ---- tcp ---- */

/* Wait while the listener's accept queue is long (TCP_INFO of a listener: tcpi_unacked is
 * the accept queue length). */
static void wait_accept_queue(int lfd)
{
	struct tcp_info ti;
	socklen_t len;

	for (int i = 0; i < 1000; i++) {
		len = sizeof(ti);
		if (getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len) || ti.tcpi_unacked < TCP_QUEUE_HIGH)
			return;
		sleep_until_ns(now_ns() + 100000);
	}
}

/* Accepts one connection and closes it; false once the listener is shut down. */
static bool tcp_accept_one(struct shared *sh)
{
	for (;;) {
		/* Ask for the peer, as servers do (and as the bpftrace peer reads it). */
		struct sockaddr_in6 peer;
		socklen_t len = sizeof(peer);
		int fd = accept4(sh->fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);

		if (fd >= 0) {
			close(fd);
			atomic_fetch_add(&sh->done, 1);
			return true;
		}
		if (atomic_load(&sh->stop))
			return false;
		if (errno != EINTR && errno != ECONNABORTED)
			atomic_fetch_add(&sh->errors, 1);
	}
}

static void *tcp_server(void *arg)
{
	while (tcp_accept_one(arg))
		;
	return NULL;
}

static int run_tcp(const struct config *cfg, FILE *out)
{
	/* The client closes with RST (SO_LINGER 0): neither end goes to TIME_WAIT, so a run of
	 * any length reuses the ephemeral ports (32768-60999) instead of running out of them.
	 * The server closes normally: its FIN, if first, is answered by that RST. */
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	struct shared sh = {};
	struct sockaddr_in6 dst;
	struct pacer pace = {};
	uint64_t connects = 0, connect_errors = 0, end;
	uint16_t port;
	pthread_t server;
	int err;

	sh.fd = dual_stack_socket(SOCK_STREAM, cfg->port, &port);
	if (listen(sh.fd, TCP_BACKLOG))
		die("listen");
	dst = loopback_peer(port, cfg->native);
	if (!cfg->one_thread) {
		err = pthread_create(&server, NULL, tcp_server, &sh);
		if (err) {
			errno = err;
			die("pthread_create");
		}
	}

	pacer_init(&pace, cfg->duration_s, cfg->rate);
	while (pacer_next(&pace)) {
		int fd;

		if (!cfg->one_thread && (connects + connect_errors) % TCP_QUEUE_CHECK == 0)
			wait_accept_queue(sh.fd);
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket");
		if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close)))
			die("setsockopt SO_LINGER");
		if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0)
			connects++;
		else
			connect_errors++;
		close(fd);
		/* On loopback the handshake is over when connect() returns: this does not wait. */
		if (cfg->one_thread && connects > atomic_load(&sh.done))
			tcp_accept_one(&sh);
	}
	/* Let the server take what is still queued: until it has them all, or 20 ms pass
	 * without one more. */
	for (uint64_t seen = 0, idle = 0; idle < 20 && atomic_load(&sh.done) < connects; idle++) {
		if (atomic_load(&sh.done) != seen) {
			seen = atomic_load(&sh.done);
			idle = 0;
		}
		sleep_until_ns(now_ns() + 1000000);
	}
	end = now_ns();
	atomic_store(&sh.stop, true);
	shutdown(sh.fd, SHUT_RDWR); /* wakes accept4() */
	if (!cfg->one_thread)
		pthread_join(server, NULL);
	close(sh.fd);

	{
		double secs = (pace.deadline_ns - pace.start_ns) / 1e9;
		uint64_t accepts = atomic_load(&sh.done);
		uint64_t ops = accepts < connects ? accepts : connects;

		fprintf(out,
			"loadgen mode=%s duration_s=%.3f ops=%llu ops_per_s=%.1f connects=%llu "
			"accepts=%llu connect_errors=%llu accept_errors=%llu rate=%.0f "
			"threads=%d wall_s=%.3f\n",
			cfg->native ? "tcp6" : "tcp", secs, (unsigned long long)ops, ops / secs,
			(unsigned long long)connects,
			(unsigned long long)accepts, (unsigned long long)connect_errors,
			(unsigned long long)atomic_load(&sh.errors), cfg->rate,
			cfg->one_thread ? 1 : 2, (end - pace.start_ns) / 1e9);
	}
	return connects && !connect_errors ? 0 : 1;
}

/* ---- udp ---- */

/* Receives one datagram, and answers its source if sh->answer says so; false once stopped
 * and drained (no datagram for UDP_DRAIN_MS). */
static bool udp_recv_one(struct shared *sh)
{
	static char buf[UDP_MAX_SIZE];

	for (;;) {
		/* The source address is asked for, as a server answering it would. */
		struct sockaddr_in6 from;
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(sh->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);

		if (n >= 0) {
			atomic_fetch_add(&sh->done, 1);
			if (!sh->answer)
				return true;
			if (sendto(sh->fd, buf, sh->answer, 0, (struct sockaddr *)&from, len) ==
			    (ssize_t)sh->answer)
				atomic_fetch_add(&sh->sent, 1);
			else
				atomic_fetch_add(&sh->errors, 1);
			return true;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (atomic_load(&sh->stop))
				return false;
			continue;
		}
		if (errno != EINTR)
			atomic_fetch_add(&sh->errors, 1);
	}
}

static void *udp_receiver(void *arg)
{
	while (udp_recv_one(arg))
		;
	return NULL;
}

static int run_udp(const struct config *cfg, FILE *out)
{
	struct timeval drain = { .tv_sec = 0, .tv_usec = UDP_DRAIN_MS * 1000 };
	int rcvbuf = UDP_RCVBUF;
	struct shared sh = {};
	struct sockaddr_in6 dst;
	struct pacer pace = {};
	uint64_t sent = 0, send_errors = 0, end, received;
	uint16_t port;
	pthread_t receiver;
	char *payload;
	int fd, err;

	sh.fd = dual_stack_socket(SOCK_DGRAM, cfg->port, &port);
	/* Root may go past net.core.rmem_max; others get what it allows. */
	if (setsockopt(sh.fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(sh.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (setsockopt(sh.fd, SOL_SOCKET, SO_RCVTIMEO, &drain, sizeof(drain)))
		die("setsockopt SO_RCVTIMEO");
	dst = loopback_peer(port, cfg->native);
	payload = calloc(1, cfg->size ? cfg->size : 1);
	if (!payload)
		die("calloc");
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if (!cfg->one_thread) {
		err = pthread_create(&receiver, NULL, udp_receiver, &sh);
		if (err) {
			errno = err;
			die("pthread_create");
		}
	}

	pacer_init(&pace, cfg->duration_s, cfg->rate);
	while (pacer_next(&pace)) {
		if (sendto(fd, payload, cfg->size, 0, (struct sockaddr *)&dst, sizeof(dst)) ==
		    (ssize_t)cfg->size)
			sent++;
		else
			send_errors++;
		/* On loopback the datagram is queued when sendto() returns: this does not wait. */
		if (cfg->one_thread && sent > atomic_load(&sh.done))
			udp_recv_one(&sh);
	}
	atomic_store(&sh.stop, true);
	if (!cfg->one_thread)
		pthread_join(receiver, NULL); /* returns once the queue is empty */
	end = now_ns();
	close(fd);
	close(sh.fd);
	free(payload);

	{
		double secs = (pace.deadline_ns - pace.start_ns) / 1e9;

		received = atomic_load(&sh.done);
		fprintf(out,
			"loadgen mode=%s duration_s=%.3f ops=%llu ops_per_s=%.1f sent=%llu "
			"received=%llu sent_per_s=%.1f received_per_s=%.1f send_errors=%llu "
			"recv_errors=%llu size=%zu rate=%.0f threads=%d wall_s=%.3f\n",
			cfg->native ? "udp6" : "udp", secs, (unsigned long long)sent, sent / secs,
			(unsigned long long)sent,
			(unsigned long long)received, sent / secs, received / secs,
			(unsigned long long)send_errors,
			(unsigned long long)atomic_load(&sh.errors), cfg->size, cfg->rate,
			cfg->one_thread ? 1 : 2, (end - pace.start_ns) / 1e9);
	}
	return sent && !send_errors ? 0 : 1;
}

/* ---- dns: a request/response server on [::] with IPv4 clients ---- */

static int run_dns(const struct config *cfg, FILE *out)
{
	struct timeval drain = { .tv_sec = 0, .tv_usec = UDP_DRAIN_MS * 1000 };
	struct timeval wait = { .tv_sec = DNS_TIMEOUT_MS / 1000,
				.tv_usec = DNS_TIMEOUT_MS % 1000 * 1000 };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct shared sh = {};
	struct pacer pace = {};
	uint64_t requests = 0, answers = 0, errors = 0, end;
	size_t size = cfg->size ? cfg->size : 1;
	char *buf;
	uint16_t port;
	pthread_t server;
	int fd, err;

	sh.fd = dual_stack_socket(SOCK_DGRAM, cfg->port, &port);
	if (setsockopt(sh.fd, SOL_SOCKET, SO_RCVTIMEO, &drain, sizeof(drain)))
		die("setsockopt SO_RCVTIMEO");
	dst.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait)))
		die("setsockopt SO_RCVTIMEO");
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)))
		die("connect 127.0.0.1");
	buf = calloc(1, 2 * size);
	if (!buf)
		die("calloc");
	sh.answer = 2 * size < UDP_MAX_SIZE ? 2 * size : UDP_MAX_SIZE;
	if (!cfg->one_thread) {
		err = pthread_create(&server, NULL, udp_receiver, &sh);
		if (err) {
			errno = err;
			die("pthread_create");
		}
	}

	pacer_init(&pace, cfg->duration_s, cfg->rate);
	while (pacer_next(&pace)) {
		if (send(fd, buf, size, 0) != (ssize_t)size) {
			errors++;
			continue;
		}
		requests++;
		/* On loopback the request is queued when send() returns: this does not wait. */
		if (cfg->one_thread)
			udp_recv_one(&sh);
		if (recv(fd, buf, 2 * size, 0) >= 0)
			answers++;
		else
			errors++;
	}
	atomic_store(&sh.stop, true);
	if (!cfg->one_thread)
		pthread_join(server, NULL); /* returns once the queue is empty */
	end = now_ns();
	close(fd);
	close(sh.fd);
	free(buf);

	{
		double secs = (pace.deadline_ns - pace.start_ns) / 1e9;

		/* sent and received: the server's, the mapped datagrams */
		fprintf(out,
			"loadgen mode=dns duration_s=%.3f ops=%llu ops_per_s=%.1f requests=%llu "
			"sent=%llu received=%llu received_per_s=%.1f errors=%llu server_errors=%llu "
			"size=%zu rate=%.0f threads=%d wall_s=%.3f\n",
			secs, (unsigned long long)answers, answers / secs,
			(unsigned long long)requests, (unsigned long long)atomic_load(&sh.sent),
			(unsigned long long)atomic_load(&sh.done), atomic_load(&sh.done) / secs,
			(unsigned long long)errors, (unsigned long long)atomic_load(&sh.errors),
			size, cfg->rate, cfg->one_thread ? 1 : 2, (end - pace.start_ns) / 1e9);
	}
	return answers && !errors && !atomic_load(&sh.errors) ? 0 : 1;
}

/* ---- http: IPv4 clients of a server on 127.0.0.1 ---- */

struct http_client {
	const struct config *cfg;
	struct sockaddr_in dst;
	pthread_t thread;
	uint64_t responses, connections, errors, bytes_sent, bytes_received;
	char buf[HTTP_BUF];
};

static int http_connect(struct http_client *c)
{
	struct timeval t = { .tv_sec = HTTP_TIMEOUT_S };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof(t)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof(t)))
		die("setsockopt");
	if (connect(fd, (struct sockaddr *)&c->dst, sizeof(c->dst))) {
		close(fd);
		return -1;
	}
	c->connections++;
	return fd;
}

/* Closes with RST (SO_LINGER 0): the server, which closed first or will never learn of it,
 * keeps no TIME_WAIT, so a run of any length does not fill the machine with them. */
static void http_abort(int fd)
{
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
	close(fd);
}

/* One request and its whole response (status 200, Content-Length bytes of body); false if
 * the server closed the connection or anything failed (the connection is then unusable). */
static bool http_exchange(struct http_client *c, int fd, const char *req, size_t reqlen)
{
	size_t have = 0, need = 0;
	bool header = false;

	if (write(fd, req, reqlen) != (ssize_t)reqlen)
		return false;
	c->bytes_sent += reqlen;
	for (;;) {
		ssize_t n = read(fd, c->buf + have, sizeof(c->buf) - 1 - have);
		char *end, *cl;

		if (n <= 0)
			return false;
		c->bytes_received += (uint64_t)n;
		have += (size_t)n;
		if (!header) {
			c->buf[have] = '\0';
			end = strstr(c->buf, "\r\n\r\n");
			if (!end) {
				if (have >= sizeof(c->buf) - 1)
					return false;
				continue;
			}
			if (strncmp(c->buf, "HTTP/1.1 200 ", 13))
				return false;
			for (cl = c->buf; (cl = strchr(cl, '\n')) && cl < end; cl++)
				if (!strncasecmp(cl + 1, "Content-Length:", 15))
					break;
			if (!cl || cl >= end)
				return false;
			need = (size_t)(end + 4 - c->buf) + strtoull(cl + 16, NULL, 10);
			header = true;
		}
		if (have >= need)
			return have == need; /* one response at a time: nothing more may come */
		if (have == sizeof(c->buf) - 1) { /* a long body: keep only the count */
			need -= have;
			have = 0;
		}
	}
}

static void *http_client_run(void *arg)
{
	static const char close_req[] =
		"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: dstrace-loadgen\r\n"
		"Connection: close\r\n\r\n";
	static const char ka_req[] =
		"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: dstrace-loadgen\r\n\r\n";
	struct http_client *c = arg;
	bool ka = c->cfg->mode == MODE_HTTP_KA;
	const char *req = ka ? ka_req : close_req;
	size_t reqlen = ka ? sizeof(ka_req) - 1 : sizeof(close_req) - 1;
	struct pacer pace;
	int fd = -1;

	pacer_init(&pace, c->cfg->duration_s, c->cfg->rate / c->cfg->clients);
	while (pacer_next(&pace)) {
		if (fd < 0 && (fd = http_connect(c)) < 0) {
			c->errors++;
			continue;
		}
		if (http_exchange(c, fd, req, reqlen)) {
			c->responses++;
			if (ka)
				continue;
		} else if (!ka || c->responses == 0) {
			c->errors++;
		}
		/* A kept-alive connection the server closed (keepalive_requests, timeouts) is
		 * opened again: not an error. */
		http_abort(fd);
		fd = -1;
	}
	if (fd >= 0)
		close(fd); /* a kept-alive connection: closed as clients do, with FIN */
	return NULL;
}

static int run_http(const struct config *cfg, FILE *out)
{
	struct http_client *clients = calloc((size_t)cfg->clients, sizeof(*clients));
	uint64_t responses = 0, connections = 0, errors = 0, sent = 0, received = 0, start;
	double secs;

	if (!clients)
		die("calloc");
	if (!cfg->port) {
		fprintf(stderr, "loadgen: http wants the server's port (-p)\n");
		exit(2);
	}
	start = now_ns();
	for (int i = 0; i < cfg->clients; i++) {
		struct http_client *c = &clients[i];
		int err;

		c->cfg = cfg;
		c->dst.sin_family = AF_INET;
		c->dst.sin_port = htons(cfg->port);
		c->dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		err = pthread_create(&c->thread, NULL, http_client_run, c);
		if (err) {
			errno = err;
			die("pthread_create");
		}
	}
	for (int i = 0; i < cfg->clients; i++) {
		pthread_join(clients[i].thread, NULL);
		responses += clients[i].responses;
		connections += clients[i].connections;
		errors += clients[i].errors;
		sent += clients[i].bytes_sent;
		received += clients[i].bytes_received;
	}
	secs = cfg->duration_s;
	/* bytes: both directions, what the server's mapped sockets carried */
	fprintf(out,
		"loadgen mode=%s duration_s=%.3f ops=%llu ops_per_s=%.1f connections=%llu "
		"errors=%llu bytes_sent=%llu bytes_received=%llu bytes=%llu clients=%d rate=%.0f "
		"wall_s=%.3f\n",
		cfg->mode == MODE_HTTP_KA ? "http-ka" : "http", secs, (unsigned long long)responses,
		responses / secs, (unsigned long long)connections, (unsigned long long)errors,
		(unsigned long long)sent, (unsigned long long)received,
		(unsigned long long)(sent + received), cfg->clients, cfg->rate,
		(now_ns() - start) / 1e9);
	free(clients);
	return responses && !errors ? 0 : 1;
}

/* ---- gai: resolver calls ---- */

static int run_gai(const struct config *cfg, FILE *out)
{
	struct addrinfo hints = { .ai_family = AF_INET6, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_V4MAPPED | AI_ALL };
	uint64_t start = now_ns(), end = start + (uint64_t)(cfg->duration_s * 1e9), t = start;
	uint64_t ops = 0, errors = 0;

	while ((t = now_ns()) < end) {
		struct addrinfo *res = NULL;

		if (getaddrinfo("localhost", "80", &hints, &res))
			errors++;
		else
			freeaddrinfo(res);
		ops++;
		if (cfg->rate > 0)
			sleep_until_ns(start + (uint64_t)((double)ops * 1e9 / cfg->rate));
	}
	fprintf(out, "loadgen mode=gai duration_s=%.3f ops=%llu ops_per_s=%.1f errors=%llu\n",
		(double)(t - start) / 1e9, (unsigned long long)ops,
		(double)ops * 1e9 / (double)(t - start), (unsigned long long)errors);
	return errors ? 1 : 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: loadgen tcp|udp|tcp6|udp6|dns|http|http-ka|gai [-1] [-d SECONDS]\n"
		"               [-r OPS_PER_S] [-s BYTES] [-p PORT] [-c CLIENTS]\n"
		"IPv4-mapped traffic on loopback: AF_INET6 sockets to [::ffff:127.0.0.1], or\n"
		"IPv4 clients of an AF_INET6 server on [::]; or, to compare, native IPv6.\n"
		"  tcp      connect + accept + close storm (one op = one connection)\n"
		"  udp      sendto + recvfrom storm (one op = one datagram sent)\n"
		"  tcp6, udp6  the same to [::1]: native IPv6\n"
		"  dns      request + answer, server on [::] (one op = one answer)\n"
		"  http     GET, a connection per request, server on 127.0.0.1:PORT (one op =\n"
		"           one response)\n"
		"  http-ka  the same on kept-alive connections\n"
		"  gai      getaddrinfo(\"localhost\") calls (one op = one call)\n"
		"  -d, --duration=SECONDS  how long to run (default 5)\n"
		"  -r, --rate=OPS          ops per second; 0: as fast as possible (default 0)\n"
		"  -s, --size=BYTES        UDP payload, 0 to %d (default 64)\n"
		"  -p, --port=PORT         port on [::] (default 0: any free port); http: the\n"
		"                          server's port\n"
		"  -c, --clients=N         http: client threads, 1 to %d (default 1)\n"
		"  -1, --one-thread        one thread does both ends, in turn (default: a\n"
		"                          server or receiver thread of its own)\n"
		"Prints one line: loadgen mode=... duration_s=... ops=N ops_per_s=X ...\n",
		UDP_MAX_SIZE, HTTP_CLIENTS_MAX);
}

static int parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 's' },
		{ "port", required_argument, NULL, 'p' },
		{ "one-thread", no_argument, NULL, '1' },
		{ "clients", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct config cfg = { .duration_s = 5, .size = 64, .clients = 1 };
	double v;
	int c;

	while ((c = getopt_long(argc, argv, "1d:r:s:p:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (parse_double(optarg, 0.01, 86400, &cfg.duration_s))
				goto bad;
			break;
		case 'r':
			if (parse_double(optarg, 0, 1e9, &cfg.rate))
				goto bad;
			break;
		case 's':
			if (parse_double(optarg, 0, UDP_MAX_SIZE, &v) || v != (size_t)v)
				goto bad;
			cfg.size = (size_t)v;
			break;
		case 'p':
			if (parse_double(optarg, 0, 65535, &v) || v != (uint16_t)v)
				goto bad;
			cfg.port = (uint16_t)v;
			break;
		case '1':
			cfg.one_thread = true;
			break;
		case 'c':
			if (parse_double(optarg, 1, HTTP_CLIENTS_MAX, &v) || v != (int)v)
				goto bad;
			cfg.clients = (int)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	cfg.native = !strcmp(argv[optind], "tcp6") || !strcmp(argv[optind], "udp6");
	if (!strcmp(argv[optind], "tcp") || !strcmp(argv[optind], "tcp6"))
		return run_tcp(&cfg, stdout);
	if (!strcmp(argv[optind], "udp") || !strcmp(argv[optind], "udp6"))
		return run_udp(&cfg, stdout);
	if (!strcmp(argv[optind], "dns"))
		return run_dns(&cfg, stdout);
	if (!strcmp(argv[optind], "http") || !strcmp(argv[optind], "http-ka")) {
		cfg.mode = strcmp(argv[optind], "http") ? MODE_HTTP_KA : MODE_HTTP;
		return run_http(&cfg, stdout);
	}
	if (!strcmp(argv[optind], "gai"))
		return run_gai(&cfg, stdout);
	usage(stderr);
	return 2;
bad:
	fprintf(stderr, "loadgen: invalid value for -%c: '%s'\n", c, optarg);
	return 2;
}
