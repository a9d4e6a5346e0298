// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loadgen: IPv4-mapped traffic on loopback for the dstrace benchmark, as fast as the machine
 * allows or at a fixed rate, for a fixed time. Every socket is AF_INET6; every peer is
 * ::ffff:127.0.0.1, so the kernel carries it all as IPv4.
 *
 *   tcp  a client thread: socket + connect([::ffff:127.0.0.1]:PORT) + close; a server
 *        thread: accept4 on [::]:PORT (IPV6_V6ONLY=0) + close. One op = one connection
 *        connected and accepted.
 *   gai  one thread: getaddrinfo("localhost", AF_INET6, AI_V4MAPPED | AI_ALL) + freeaddrinfo
 *        (from /etc/hosts: what the resolver uprobes add to a call). One op = one call.
 *   udp  a sender thread: sendto([::ffff:127.0.0.1]:PORT) of SIZE bytes; a receiver thread:
 *        recvfrom on [::]:PORT (IPV6_V6ONLY=0), asking for the source address. One op = one
 *        datagram sent; the datagrams received are counted too.
 * With -1 one thread does both ends in turn: no cross-CPU wakeups, so ops/s measures the CPU
 * cost of an op alone (two threads measure it mixed with how the scheduler pairs them).
 *
 * Prints one line of key=value pairs on stdout, e.g.
 *   loadgen mode=tcp duration_s=3.000 ops=61234 ops_per_s=20411.3 ...
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

enum mode { MODE_TCP, MODE_UDP, MODE_GAI };

struct config {
	enum mode mode;
	double duration_s;
	double rate;	 /* ops/s; 0: as fast as possible */
	size_t size;	 /* UDP payload */
	uint16_t port;	 /* 0: any free port */
	bool one_thread; /* the client also accepts, the sender also receives */
};

/* Shared by the two threads of a run. */
struct shared {
	int fd; /* listener (tcp) or receiving socket (udp) */
	atomic_bool stop;
	atomic_uint_fast64_t done;   /* connections accepted, datagrams received */
	atomic_uint_fast64_t errors; /* accept or recvfrom failures */
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

/* [::ffff:127.0.0.1]:port */
static struct sockaddr_in6 mapped_loopback(uint16_t port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	sa.sin6_addr.s6_addr[10] = 0xff;
	sa.sin6_addr.s6_addr[11] = 0xff;
	sa.sin6_addr.s6_addr[12] = 127;
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
	dst = mapped_loopback(port);
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
			"loadgen mode=tcp duration_s=%.3f ops=%llu ops_per_s=%.1f connects=%llu "
			"accepts=%llu connect_errors=%llu accept_errors=%llu rate=%.0f "
			"threads=%d wall_s=%.3f\n",
			secs, (unsigned long long)ops, ops / secs, (unsigned long long)connects,
			(unsigned long long)accepts, (unsigned long long)connect_errors,
			(unsigned long long)atomic_load(&sh.errors), cfg->rate,
			cfg->one_thread ? 1 : 2, (end - pace.start_ns) / 1e9);
	}
	return connects && !connect_errors ? 0 : 1;
}

/* ---- udp ---- */

/* Receives one datagram; false once stopped and drained (no datagram for UDP_DRAIN_MS). */
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
	dst = mapped_loopback(port);
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
			"loadgen mode=udp duration_s=%.3f ops=%llu ops_per_s=%.1f sent=%llu "
			"received=%llu sent_per_s=%.1f received_per_s=%.1f send_errors=%llu "
			"recv_errors=%llu size=%zu rate=%.0f threads=%d wall_s=%.3f\n",
			secs, (unsigned long long)sent, sent / secs, (unsigned long long)sent,
			(unsigned long long)received, sent / secs, received / secs,
			(unsigned long long)send_errors,
			(unsigned long long)atomic_load(&sh.errors), cfg->size, cfg->rate,
			cfg->one_thread ? 1 : 2, (end - pace.start_ns) / 1e9);
	}
	return sent && !send_errors ? 0 : 1;
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
		"Usage: loadgen tcp|udp|gai [-1] [-d SECONDS] [-r OPS_PER_S] [-s BYTES] [-p PORT]\n"
		"IPv4-mapped traffic on loopback: AF_INET6 sockets to [::ffff:127.0.0.1].\n"
		"  tcp   connect + accept + close storm (one op = one connection)\n"
		"  udp   sendto + recvfrom storm (one op = one datagram sent)\n"
		"  gai   getaddrinfo(\"localhost\") calls (one op = one call)\n"
		"  -d, --duration=SECONDS  how long to run (default 5)\n"
		"  -r, --rate=OPS          ops per second; 0: as fast as possible (default 0)\n"
		"  -s, --size=BYTES        UDP payload, 0 to %d (default 64)\n"
		"  -p, --port=PORT         port on [::] (default 0: any free port)\n"
		"  -1, --one-thread        one thread does both ends, in turn (default: a\n"
		"                          server or receiver thread of its own)\n"
		"Prints one line: loadgen mode=... duration_s=... ops=N ops_per_s=X ...\n",
		UDP_MAX_SIZE);
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
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct config cfg = { .duration_s = 5, .size = 64 };
	double v;
	int c;

	while ((c = getopt_long(argc, argv, "1d:r:s:p:h", opts, NULL)) != -1) {
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
	if (!strcmp(argv[optind], "tcp"))
		cfg.mode = MODE_TCP;
	else if (!strcmp(argv[optind], "udp"))
		cfg.mode = MODE_UDP;
	else if (!strcmp(argv[optind], "gai"))
		return run_gai(&cfg, stdout);
	else {
		usage(stderr);
		return 2;
	}
	return cfg.mode == MODE_TCP ? run_tcp(&cfg, stdout) : run_udp(&cfg, stdout);
bad:
	fprintf(stderr, "loadgen: invalid value for -%c: '%s'\n", c, optarg);
	return 2;
}
