// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sockpaths: the ways a program can reach IPv4 through an AF_INET6 socket that do not look
 * like a plain blocking connect(): re-issued non-blocking connects, TCP Fast Open, MPTCP,
 * UDP-Lite, io_uring, connects that fail later, threads sharing a UDP socket, connections
 * held open. One mode per run; one result line on stdout ("key=value ..."), a log on stderr.
 *
 *   sockpaths tcp-retry ADDR PORT          non-blocking connect, poll, connect() again
 *   sockpaths tcp-block ADDR PORT [SYNCNT] blocking connect (result: ok or the errno); with
 *                                          SYNCNT, bound to [::] first (prints "connecting
 *                                          lport=P" before the call) with TCP_SYNCNT SYNCNT
 *                                          (unanswered, it times out after 2^(SYNCNT+1)-1 s)
 *   sockpaths tcp-twice ADDR PORT          two blocking connects of one socket, the second
 *                                          once the first failed (result: the second's)
 *   sockpaths tcp-nb ADDR PORT [SYNCNT]    non-blocking connect, result from SO_ERROR;
 *                                          SYNCNT as for tcp-block
 *   sockpaths tcp-abandon ADDR PORT HOW    non-blocking connect to a peer that does not
 *                                          answer, given up 0.2 s later by the same thread
 *                                          (HOW: close, shutdown: shutdown(SHUT_RDWR) then
 *                                          close, unspec: connect(AF_UNSPEC) then close;
 *                                          result: ok, or the errno of that call); or left
 *                                          to the process's end (HOW exit: the kernel
 *                                          closes it after the process has ended; fork: a
 *                                          child holds it 0.5 s more; exec: sleep 0.5
 *                                          holds it, exec()ed with it open)
 *   sockpaths tcp-abandon ADDR PORT exec ADDR2 PORT2
 *                                          the same, but the program exec()ed with it open
 *                                          is sockpaths tcp-block ADDR2 PORT2
 *   sockpaths tcp-self PORT                an AF_INET6 socket bound to [::]:PORT connects
 *                                          (blocking) to ::ffff:127.0.0.1:PORT, itself: a
 *                                          simultaneous open (SYN_SENT, SYN_RECV, then
 *                                          ESTABLISHED); closed with a reset (no TIME_WAIT)
 *   sockpaths tcp-pending ADDR PORT N BURN N2 WAIT
 *                                          N non-blocking connects to ADDR, ports PORT to
 *                                          PORT+63, 2 SYN retries each (timed out after 7 s
 *                                          unanswered); then BURN sockets that take a cookie
 *                                          (getsockopt SO_COOKIE) and let go;
 *                                          WAIT seconds after the first, N2 more like the N;
 *                                          prints "pending elapsed=S" (seconds since the
 *                                          first), then waits for every one of the N + N2
 *                                          to end: timedout=T other=O left=L result=ok
 *   sockpaths tcp-hold ADDR PORT SECONDS   connect, hold it open until SIGUSR1 (at most
 *                                          SECONDS), then send 100 bytes and close
 *   sockpaths tfo ADDR PORT                sendto(MSG_FASTOPEN) of 5 bytes
 *   sockpaths mptcp ADDR PORT BYTES        IPPROTO_MPTCP connect, send BYTES
 *   sockpaths udplite ADDR PORT N SIZE     N UDP-Lite datagrams of SIZE bytes
 *   sockpaths uring-connect ADDR PORT [udp] connect through io_uring (a TCP socket, or UDP)
 *   sockpaths uring-connect ADDR PORT meanwhile ADDR2
 *                                          the same, connect(2)ing ADDR2 port 80 meanwhile
 *   sockpaths uring-accept PORT N          accept N clients through io_uring on [::]:PORT
 *   sockpaths uring-accept PORT N multishot
 *                                          the same with one multishot accept request
 *                                          (IORING_ACCEPT_MULTISHOT: a completion per
 *                                          client, all but the last without the request)
 *   sockpaths uring-accept PORT N direct|multishot-direct
 *                                          the same into the ring's fixed files (direct
 *                                          descriptors, no file descriptor): direct asks
 *                                          slot 3 for the first client and lets the kernel
 *                                          pick for the others; each closed after
 *   sockpaths backlog-full PORT accept N   a listener on [::]:PORT whose accept queue takes
 *                                          one connection and no more (listen backlog 0:
 *                                          the kernel drops further SYNs, their connects
 *                                          stay in SYN_SENT and retry) until SIGUSR1 (at
 *                                          most 300 s), then accepts N clients (the queued
 *                                          one and those retrying), prints accepted=N
 *   sockpaths backlog-full PORT close      the same, but closes the listener on SIGUSR1
 *                                          (the retried SYNs are refused)
 *   sockpaths accept-hold PORT             accept one client on [::]:PORT, read until it
 *                                          closes (no time limit), print the bytes read
 *   sockpaths udp-threads PORT T N SIZE    T threads send N datagrams each to
 *                                          ::ffff:127.0.0.1:PORT over one shared socket,
 *                                          T threads receive them (recvfrom) on another
 *   sockpaths udp-threads PORT T N SIZE recv  the same, receivers use recv() (no address)
 *   sockpaths udp-blocked PORT T SIZE      T threads (up to 8000) block at once in
 *                                          recvfrom() on one AF_INET6 socket on [::]:PORT;
 *                                          once all are, an AF_INET socket sends them T
 *                                          datagrams of SIZE bytes from 127.0.0.1: one each
 *   sockpaths udp-noaddr PORT N S4 S6 HOW [RCVBUF]
 *                                          an AF_INET6 socket on [::]:PORT gets N IPv6
 *                                          datagrams of S6 bytes (from ::1) and N IPv4 ones
 *                                          of S4 bytes (from 127.0.0.1), interleaved, IPv6
 *                                          first, all sent before the first read; it reads
 *                                          them without asking their source (HOW: recv,
 *                                          read or recvmsg) until none is left. With
 *                                          RCVBUF (SO_RCVBUF), the datagrams that do not
 *                                          fit are dropped by the kernel.
 *   sockpaths udplite-noaddr PORT N S4 S6 HOW [RCVBUF]
 *                                          the same with UDP-Lite sockets; the IPv4 ones
 *                                          with a checksum coverage of the header only
 *                                          (UDPLITE_SEND_CSCOV 8: their length field says 8)
 *   sockpaths udp-connect-queued PORT N    an AF_INET6 socket on [::]:PORT gets N datagrams
 *                                          of 10 bytes from 127.0.0.1:PORT+1, then connects
 *                                          to ::ffff:127.0.0.1:PORT+2, gets N of 20 bytes
 *                                          from there, and reads all 2N with recv(): those
 *                                          queued before the connect are PORT+1's
 *   sockpaths udp-errqueue ADDR PORT       IP_RECVERR on, one datagram to a closed port,
 *                                          the ICMP error read with MSG_ERRQUEUE (not a
 *                                          datagram received)
 *   sockpaths bind ADDR PORT V6ONLY        bind an AF_INET6 UDP socket (V6ONLY 0 or 1)
 *   sockpaths cork-flush ADDR PORT [connected]
 *                                          UDP_CORK on, send 3 bytes, UDP_CORK off (the
 *                                          flush sends them), send 4 bytes: 2 datagrams;
 *                                          connected: connect() first, send() without
 *                                          an address
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#ifndef SOL_UDPLITE
#define SOL_UDPLITE 136
#endif
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#endif

static void usage(void);

static struct sockaddr_in6 addr6(const char *addr, const char *port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };

	if (inet_pton(AF_INET6, addr, &sa.sin6_addr) != 1) {
		fprintf(stderr, "sockpaths: bad IPv6 address '%s'\n", addr);
		exit(2);
	}
	sa.sin6_port = htons(parse_num("port", port, 1, 65535));
	return sa;
}

static int sock6(int type, int proto)
{
	int fd = socket(AF_INET6, type, proto);

	if (fd < 0) {
		printf("result=%s\n", errname(errno));
		exit(1);
	}
	return fd;
}

static int result(int err)
{
	printf("result=%s\n", err ? errname(err) : "ok");
	return err ? 1 : 0;
}

static int wait_connected(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t len = sizeof(err);

	/* the kernel times out at 3 s, or 63 s with SYNCNT 5: slack for an emulated guest */
	if (poll(&p, 1, 90000) != 1)
		return ETIMEDOUT;
	/* The kernel sets a failed connect's error, then closes the socket; reading SO_ERROR
	 * clears it, and a read between the two (a wakeup in that window: seen twice in an
	 * emulated Debian 13 guest) leaves the state change without it, which dstrace then
	 * reports as ECONNABORTED (README, Limits). Let the close finish first. */
	usleep(100000);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	return err;
}

static int tcp_retry(struct sockaddr_in6 *sa)
{
	int fd = sock6(SOCK_STREAM | SOCK_NONBLOCK, 0), err;

	if (!connect(fd, (struct sockaddr *)sa, sizeof(*sa)))
		return result(0);
	if (errno != EINPROGRESS)
		return result(errno);
	/* what Ruby's connect_nonblock and Twisted do: wait, then connect() again */
	wait_connected(fd);
	err = connect(fd, (struct sockaddr *)sa, sizeof(*sa)) && errno != EISCONN ? errno : 0;
	fprintf(stderr, "sockpaths: second connect: %s\n", err ? errname(err) : "0");
	close(fd);
	return result(err);
}

/* With syncnt: bound to [::] first, its port said, then TCP_SYNCNT syncnt. */
static void connect_prepare(int fd, const char *syncnt)
{
	struct sockaddr_in6 me = { .sin6_family = AF_INET6 };
	socklen_t len = sizeof(me);
	int n;

	if (!syncnt)
		return;
	n = (int)parse_num("syncnt", syncnt, 1, 127);
	if (setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &n, sizeof(n)) ||
	    bind(fd, (struct sockaddr *)&me, sizeof(me)) ||
	    getsockname(fd, (struct sockaddr *)&me, &len)) {
		printf("result=%s\n", errname(errno));
		exit(1);
	}
	say("connecting lport=%u", ntohs(me.sin6_port));
}

static int tcp_block(struct sockaddr_in6 *sa, const char *syncnt)
{
	int fd = sock6(SOCK_STREAM, 0), err;

	connect_prepare(fd, syncnt);
	err = connect(fd, (struct sockaddr *)sa, sizeof(*sa)) ? errno : 0;
	close(fd);
	return result(err);
}

static int tcp_twice(struct sockaddr_in6 *sa)
{
	int fd = sock6(SOCK_STREAM, 0), err;

	err = connect(fd, (struct sockaddr *)sa, sizeof(*sa)) ? errno : 0;
	fprintf(stderr, "sockpaths: first connect: %s\n", err ? errname(err) : "0");
	if (!err) {
		close(fd);
		return result(EISCONN); /* the case wants a failure first */
	}
	err = connect(fd, (struct sockaddr *)sa, sizeof(*sa)) ? errno : 0;
	close(fd);
	return result(err);
}

static int tcp_nb(struct sockaddr_in6 *sa, const char *syncnt)
{
	int fd = sock6(SOCK_STREAM | SOCK_NONBLOCK, 0), err = 0;

	connect_prepare(fd, syncnt);
	if (connect(fd, (struct sockaddr *)sa, sizeof(*sa)))
		err = errno == EINPROGRESS ? wait_connected(fd) : errno;
	close(fd);
	return result(err);
}

static int tcp_abandon(struct sockaddr_in6 *sa, const char *how, char *then_addr,
		       char *then_port)
{
	int fd = sock6(SOCK_STREAM | SOCK_NONBLOCK, 0), err = 0;
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };

	if (!connect(fd, (struct sockaddr *)sa, sizeof(*sa)))
		return result(EISCONN); /* the case wants a connect still in progress */
	if (errno != EINPROGRESS)
		return result(errno);
	usleep(200000);
	if (!strcmp(how, "exit") || !strcmp(how, "fork") || !strcmp(how, "exec")) {
		result(0);
		fflush(stdout);
		if (!strcmp(how, "exec") && then_addr)
			execl("/proc/self/exe", "sockpaths", "tcp-block", then_addr, then_port,
			      (char *)NULL);
		else if (!strcmp(how, "exec"))
			execlp("sleep", "sleep", "0.5", (char *)NULL);
		if (!strcmp(how, "exec"))
			return result(errno);
		if (!strcmp(how, "fork") && fork() == 0)
			usleep(500000); /* the child: the socket's last holder */
		_exit(0);		/* no close: the kernel's, at the end */
	}
	if (!strcmp(how, "shutdown"))
		err = shutdown(fd, SHUT_RDWR) ? errno : 0;
	else if (!strcmp(how, "unspec"))
		err = connect(fd, &unspec, sizeof(unspec)) ? errno : 0;
	else if (strcmp(how, "close"))
		usage();
	close(fd);
	return result(err);
}

static int tcp_self(const char *port)
{
	int fd = sock6(SOCK_STREAM, 0), err = 0;
	struct sockaddr_in6 any = addr6("::", port), self = addr6("::ffff:127.0.0.1", port);

	if (bind(fd, (struct sockaddr *)&any, sizeof(any)))
		return result(errno);
	if (connect(fd, (struct sockaddr *)&self, sizeof(self)))
		err = errno;
	/* closed with a reset, so the port is not left in TIME_WAIT for the next run */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ .l_onoff = 1 }, sizeof(struct linger));
	close(fd);
	return result(err);
}

/* Open n non-blocking connects into fds (TCP_SYNCNT 2), to sa's port and the 63 above. */
static int connect_many(const struct sockaddr_in6 *sa, struct pollfd *fds, long n)
{
	struct sockaddr_in6 to = *sa;
	int syncnt = 2;

	for (long i = 0; i < n; i++) {
		fds[i].fd = sock6(SOCK_STREAM | SOCK_NONBLOCK, 0);
		fds[i].events = POLLOUT;
		setsockopt(fds[i].fd, IPPROTO_TCP, TCP_SYNCNT, &syncnt, sizeof(syncnt));
		to.sin6_port = htons((uint16_t)(ntohs(sa->sin6_port) + i % 64));
		if (connect(fds[i].fd, (struct sockaddr *)&to, sizeof(to)) && errno != EINPROGRESS) {
			fprintf(stderr, "sockpaths: connect %ld: %s\n", i, errname(errno));
			fds[i].events = 0; /* ended already: counted as other */
		}
	}
	return 0;
}

static int tcp_pending(const struct sockaddr_in6 *sa, const char *n_s, const char *burn_s,
		       const char *n2_s, const char *wait_s)
{
	long n = parse_num("N", n_s, 1, 20000), burn = parse_num("BURN", burn_s, 0, 100000);
	long n2 = parse_num("N2", n2_s, 0, 20000), wait = parse_num("WAIT", wait_s, 0, 5);
	struct rlimit rl = { .rlim_cur = (rlim_t)(n + n2 + 64), .rlim_max = (rlim_t)(n + n2 + 64) };
	struct pollfd *fds = calloc((size_t)(n + n2), sizeof(*fds));
	long left, timedout = 0, other = 0;
	struct timespec t0, t;

	if (!fds || setrlimit(RLIMIT_NOFILE, &rl)) {
		fprintf(stderr, "sockpaths: %s\n", fds ? strerror(errno) : "out of memory");
		return result(errno ? errno : ENOMEM);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	connect_many(sa, fds, n);
	for (long i = 0; i < burn; i++) {
		int fd = sock6(SOCK_STREAM, 0);
		uint64_t cookie = 0;
		socklen_t len = sizeof(cookie);

		if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) || !cookie)
			fprintf(stderr, "sockpaths: SO_COOKIE: %s\n", strerror(errno));
		close(fd);
	}
	do {
		usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < wait || (t.tv_sec - t0.tv_sec == wait && t.tv_nsec < t0.tv_nsec));
	connect_many(sa, fds + n, n2);
	clock_gettime(CLOCK_MONOTONIC, &t);
	say("pending elapsed=%.1f", (double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9);
	/* each pass takes the ended ones out and keeps the others at the front */
	for (left = n + n2;;) {
		long kept = 0;

		for (long i = 0; i < left; i++) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (fds[i].events && !fds[i].revents) {
				fds[kept++] = fds[i];
				continue;
			}
			if (fds[i].events)
				getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err == ETIMEDOUT)
				timedout++;
			else
				other++;
			close(fds[i].fd);
		}
		left = kept;
		if (!left || poll(fds, (nfds_t)left, 30000) <= 0)
			break;
		/* as wait_connected: a socket whose error is set but whose close is still under
		 * way on another CPU (timeouts end together) also polls ready, and reading
		 * SO_ERROR then would leave its state change without the error */
		usleep(100000);
	}
	free(fds);
	printf("timedout=%ld other=%ld left=%ld ", timedout, other, left);
	return result(left ? ETIMEDOUT : 0);
}

static volatile sig_atomic_t released;

static void release(int sig)
{
	(void)sig;
	released = 1;
}

static int tcp_hold(struct sockaddr_in6 *sa, const char *secs)
{
	int fd = sock6(SOCK_STREAM, 0);
	char buf[100];
	struct sockaddr_in6 me;
	socklen_t len = sizeof(me);
	time_t until = time(NULL) + parse_num("seconds", secs, 0, 3600);

	signal(SIGUSR1, release);
	memset(buf, 'h', sizeof(buf));
	if (connect(fd, (struct sockaddr *)sa, sizeof(*sa)))
		return result(errno);
	getsockname(fd, (struct sockaddr *)&me, &len);
	say("connected lport=%u", ntohs(me.sin6_port));
	while (!released && time(NULL) < until)
		usleep(20000);
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		return result(errno);
	close(fd);
	return result(0);
}

static int tfo(struct sockaddr_in6 *sa)
{
	int fd = sock6(SOCK_STREAM, 0);
	ssize_t n = sendto(fd, "hello", 5, MSG_FASTOPEN, (struct sockaddr *)sa, sizeof(*sa));
	int err = n < 0 ? errno : 0;

	close(fd);
	return result(err);
}

static int mptcp(struct sockaddr_in6 *sa, const char *bytes)
{
	int fd = sock6(SOCK_STREAM, IPPROTO_MPTCP);
	size_t n = parse_num("bytes", bytes, 0, 1 << 20);
	char *buf = calloc(1, n + 1);
	int err = 0;

	if (!buf || connect(fd, (struct sockaddr *)sa, sizeof(*sa)))
		err = errno;
	else if (n && write(fd, buf, n) != (ssize_t)n)
		err = errno ? errno : EIO;
	free(buf);
	close(fd);
	return result(err);
}

static int udplite(struct sockaddr_in6 *sa, const char *count, const char *size)
{
	int fd = sock6(SOCK_DGRAM, IPPROTO_UDPLITE);
	unsigned long n = parse_num("count", count, 1, 1000000);
	size_t len = parse_num("size", size, 1, 65000);
	char *buf = calloc(1, len);
	unsigned long sent = 0;

	if (!buf)
		return result(ENOMEM);
	for (unsigned long i = 0; i < n; i++)
		if (sendto(fd, buf, len, 0, (struct sockaddr *)sa, sizeof(*sa)) == (ssize_t)len)
			sent++;
	free(buf);
	printf("sent=%lu ", sent);
	return result(sent == n ? 0 : errno);
}

static int uring_wait(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int res;

	if (io_uring_submit(ring) < 0 || io_uring_wait_cqe(ring, &cqe))
		return -EIO;
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

/* With meanwhile: while the io_uring connect is in flight, the same thread connect()s
 * another AF_INET6 TCP socket to that address (printed as meanwhile=RESULT). */
static int uring_connect(struct sockaddr_in6 *sa, const char *udp, const char *meanwhile)
{
	struct io_uring ring;
	int fd = sock6(udp ? SOCK_DGRAM : SOCK_STREAM, 0), res;

	if (io_uring_queue_init(4, &ring, 0))
		return result(ENOSYS);
	io_uring_prep_connect(io_uring_get_sqe(&ring), fd, (struct sockaddr *)sa, sizeof(*sa));
	if (meanwhile) {
		struct sockaddr_in6 other = addr6(meanwhile, "80");
		int ofd = sock6(SOCK_STREAM, 0);

		if (io_uring_submit(&ring) < 0)
			return result(EIO);
		res = connect(ofd, (struct sockaddr *)&other, sizeof(other)) ? errno : 0;
		printf("meanwhile=%s ", res ? errname(res) : "ok");
		close(ofd);
	}
	res = uring_wait(&ring);
	io_uring_queue_exit(&ring);
	close(fd);
	return result(res < 0 ? -res : 0);
}

/* user_data of uring_accept's requests */
#define UD_ACCEPT 0
#define UD_CLOSE 1

static int uring_accept(const char *port, const char *count, bool multishot, bool direct)
{
	struct io_uring ring;
	unsigned long n = parse_num("count", count, 1, 100000), got = 0;
	int lfd = tcp_listen(AF_INET6, port, 0);
	bool armed = false; /* an accept request in flight */

	if (lfd < 0 || io_uring_queue_init(8, &ring, 0) ||
	    (direct && io_uring_register_files_sparse(&ring, 8)))
		return result(lfd < 0 ? EADDRINUSE : ENOSYS);
	say("ready port=%s", port);
	while (got < n) {
		struct io_uring_sqe *sqe;
		struct io_uring_cqe *cqe;
		int res;
		__u64 ud;

		if (!armed) {
			sqe = io_uring_get_sqe(&ring);
			if (multishot && direct)
				io_uring_prep_multishot_accept_direct(sqe, lfd, NULL, NULL, 0);
			else if (multishot)
				io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
			else if (direct) /* slot 3, then any (liburing adds 1: file_index) */
				io_uring_prep_accept_direct(sqe, lfd, NULL, NULL, 0,
							    got ? IORING_FILE_INDEX_ALLOC - 1 : 3);
			else
				io_uring_prep_accept(sqe, lfd, NULL, NULL, 0);
			sqe->user_data = UD_ACCEPT;
			armed = true;
		}
		if (io_uring_submit(&ring) < 0 || io_uring_wait_cqe(&ring, &cqe))
			break;
		res = cqe->res;
		ud = cqe->user_data;
		if (ud == UD_ACCEPT && !(multishot && (cqe->flags & IORING_CQE_F_MORE)))
			armed = false;
		io_uring_cqe_seen(&ring, cqe);
		if (ud == UD_CLOSE && res >= 0)
			continue;
		if (res < 0)
			break;
		if (direct) { /* the slot: asked (the result is 0) or picked (the result) */
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_close_direct(sqe, !multishot && !got ? 3 : (unsigned int)res);
			sqe->user_data = UD_CLOSE;
		} else {
			close(res);
		}
		got++;
	}
	io_uring_queue_exit(&ring);
	printf("accepted=%lu ", got);
	return result(got == n ? 0 : EIO);
}

static int backlog_full(const char *port, const char *n_s)
{
	int lfd = tcp_listen(AF_INET6, port, 0), fd;
	time_t until = time(NULL) + 300;
	long n = n_s ? parse_num("count", n_s, 1, 100) : 0, got = 0;
	struct pollfd p;

	if (lfd < 0)
		return result(EADDRINUSE);
	if (listen(lfd, 0))
		return result(errno);
	signal(SIGUSR1, release);
	say("ready port=%s", port);
	while (!released && time(NULL) < until)
		usleep(20000);
	if (!n_s) {
		close(lfd);
		return result(0);
	}
	p = (struct pollfd){ .fd = lfd, .events = POLLIN };
	while (got < n && poll(&p, 1, 90000) == 1) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			return result(errno);
		got++;
		close(fd);
	}
	close(lfd);
	printf("accepted=%ld ", got);
	return result(got == n ? 0 : ETIMEDOUT);
}

static int accept_hold(const char *port)
{
	int lfd = tcp_listen(AF_INET6, port, 0), fd;
	unsigned long total = 0;
	char buf[4096];
	ssize_t n;

	if (lfd < 0)
		return result(EADDRINUSE);
	say("ready port=%s", port);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return result(errno);
	say("accepted");
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		total += n > 0 ? (unsigned long)n : 0;
	close(fd);
	close(lfd);
	printf("bytes=%lu ", total);
	return result(n < 0 ? errno : 0);
}

/* udp-threads: T senders on one socket, T receivers on another, one process. */
struct udp_share {
	int sfd, rfd;
	struct sockaddr_in6 dst;
	unsigned long per_thread;
	size_t size;
	int noaddr; /* receivers use recv(): no source asked */
	atomic_ulong sent, received, rbytes;
	atomic_int senders_left;
};

static void *udp_sender(void *arg)
{
	struct udp_share *u = arg;
	char buf[2048] = { 0 };

	for (unsigned long i = 0; i < u->per_thread; i++) {
		if (sendto(u->sfd, buf, u->size, 0, (struct sockaddr *)&u->dst, sizeof(u->dst)) ==
		    (ssize_t)u->size)
			atomic_fetch_add(&u->sent, 1);
		if (i % 64 == 63)
			usleep(1000); /* keep the receivers' queue from overflowing */
	}
	atomic_fetch_sub(&u->senders_left, 1);
	return NULL;
}

static void *udp_receiver(void *arg)
{
	struct udp_share *u = arg;
	char buf[2048];

	for (;;) {
		struct sockaddr_in6 from;
		socklen_t len = sizeof(from);
		ssize_t n = u->noaddr ? recv(u->rfd, buf, sizeof(buf), 0) :
					recvfrom(u->rfd, buf, sizeof(buf), 0, (struct sockaddr *)&from,
						 &len);

		if (n >= 0) {
			atomic_fetch_add(&u->received, 1);
			atomic_fetch_add(&u->rbytes, n);
		} else if (errno == EAGAIN && atomic_load(&u->senders_left) == 0) {
			return NULL; /* 200 ms of quiet after the last send */
		}
	}
}

static int udp_threads(const char *port, const char *threads, const char *count, const char *size,
		       const char *how)
{
	struct udp_share u = { .dst = addr6("::ffff:127.0.0.1", port) };
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_port = u.dst.sin6_port };
	struct timeval tv = { .tv_usec = 200000 };
	unsigned long t = parse_num("threads", threads, 1, 64);
	pthread_t tids[128];
	int zero = 0, big = 8 << 20;

	if (how && strcmp(how, "recv"))
		usage();
	u.noaddr = how != NULL;
	u.per_thread = parse_num("count", count, 1, 1000000);
	u.size = parse_num("size", size, 1, 2048);
	u.sfd = sock6(SOCK_DGRAM, 0);
	u.rfd = sock6(SOCK_DGRAM, 0);
	atomic_init(&u.senders_left, (int)t);
	setsockopt(u.rfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(u.rfd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(u.rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(u.rfd, (struct sockaddr *)&any, sizeof(any)))
		return result(errno);
	for (unsigned long i = 0; i < t; i++) {
		pthread_create(&tids[i], NULL, udp_receiver, &u);
		pthread_create(&tids[t + i], NULL, udp_sender, &u);
	}
	for (unsigned long i = 0; i < 2 * t; i++)
		pthread_join(tids[i], NULL);
	printf("sent=%lu received=%lu rbytes=%lu ", atomic_load(&u.sent), atomic_load(&u.received),
	       atomic_load(&u.rbytes));
	return result(0);
}

/* udp-blocked: many threads in recvfrom() at once (a kretprobe's instances all taken). */
struct udp_blocked {
	int fd;
	atomic_ulong entered, received, rbytes;
};

static void *blocked_receiver(void *arg)
{
	struct udp_blocked *u = arg;
	struct sockaddr_in6 from;
	socklen_t len = sizeof(from);
	char buf[2048];
	ssize_t n;

	atomic_fetch_add(&u->entered, 1);
	n = recvfrom(u->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
	if (n >= 0) {
		atomic_fetch_add(&u->received, 1);
		atomic_fetch_add(&u->rbytes, n);
	}
	return NULL;
}

/* This process's threads asleep (state S in /proc/self/task/TID/stat). */
static unsigned long threads_sleeping(void)
{
	unsigned long n = 0;
	struct dirent *d;
	DIR *dir = opendir("/proc/self/task");

	while (dir && (d = readdir(dir))) {
		char path[300], buf[256], *p;
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] && p[2] == 'S')
			n++;
		fclose(f);
	}
	if (dir)
		closedir(dir);
	return n;
}

static int udp_blocked(const char *port, const char *threads, const char *size)
{
	struct udp_blocked u = { .fd = sock6(SOCK_DGRAM, 0) };
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_port = htons(atoi(port)) };
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = any.sin6_port,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 120 }; /* no thread waits forever */
	unsigned long t = parse_num("threads", threads, 1, 8000), sent = 0;
	size_t len = parse_num("size", size, 1, 2048);
	pthread_t *tids = calloc(t, sizeof(*tids));
	int zero = 0, big = 32 << 20, sfd = socket(AF_INET, SOCK_DGRAM, 0), waited = 0;
	char buf[2048] = { 0 };
	pthread_attr_t attr;

	if (!tids || sfd < 0)
		return result(errno ? errno : ENOMEM);
	setsockopt(u.fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(u.fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(u.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(u.fd, (struct sockaddr *)&any, sizeof(any)))
		return result(errno);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 << 10);
	for (unsigned long i = 0; i < t; i++)
		if (pthread_create(&tids[i], &attr, blocked_receiver, &u))
			return result(EAGAIN);
	/* every thread asleep in recvfrom() before the first datagram (at most 120 s) */
	while ((atomic_load(&u.entered) < t || threads_sleeping() < t) && waited++ < 1200)
		usleep(100000);
	fprintf(stderr, "sockpaths: %lu threads asleep after %d.%d s\n", threads_sleeping(),
		waited / 10, waited % 10);
	for (unsigned long i = 0; i < t; i++) {
		if (sendto(sfd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len)
			sent++;
		if (i % 64 == 63)
			usleep(1000);
	}
	for (unsigned long i = 0; i < t; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	close(sfd);
	printf("sent=%lu received=%lu rbytes=%lu ", sent, atomic_load(&u.received),
	       atomic_load(&u.rbytes));
	return result(waited > 1200 ? ETIMEDOUT : 0);
}

static int bind6(struct sockaddr_in6 *sa, const char *v6only)
{
	int fd = sock6(SOCK_DGRAM, 0);
	int on = parse_num("v6only", v6only, 0, 1);
	int err;

	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	err = bind(fd, (struct sockaddr *)sa, sizeof(*sa)) ? errno : 0;
	close(fd);
	return result(err);
}

static int cork_flush(struct sockaddr_in6 *sa, bool connected)
{
	int fd = sock6(SOCK_DGRAM, 0), on = 1, off = 0, err = 0, sink = -1;
	struct sockaddr *to = connected ? NULL : (struct sockaddr *)sa;
	socklen_t tolen = connected ? 0 : sizeof(*sa);
	struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = sa->sin6_port };

	/* a connected socket would get the port-unreachable of the first datagram as the
	 * second send's error: an AF_INET receiver (not traced) takes them */
	memcpy(&v4.sin_addr, &sa->sin6_addr.s6_addr[12], 4);
	if (connected && ((sink = socket(AF_INET, SOCK_DGRAM, 0)) < 0 ||
			  bind(sink, (struct sockaddr *)&v4, sizeof(v4))))
		err = errno;
	else if ((connected && connect(fd, (struct sockaddr *)sa, sizeof(*sa))) ||
		 setsockopt(fd, IPPROTO_UDP, UDP_CORK, &on, sizeof(on)) ||
		 sendto(fd, "aaa", 3, 0, to, tolen) != 3 ||
		 setsockopt(fd, IPPROTO_UDP, UDP_CORK, &off, sizeof(off)) ||
		 sendto(fd, "bbbb", 4, 0, to, tolen) != 4)
		err = errno;
	close(fd);
	if (sink >= 0)
		close(sink);
	return result(err);
}

/* One datagram read from fd without asking its source; its length, or -1. */
static ssize_t read_noaddr(int fd, const char *how, char *buf, size_t size)
{
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (!strcmp(how, "recv"))
		return recv(fd, buf, size, 0);
	if (!strcmp(how, "read"))
		return read(fd, buf, size);
	return recvmsg(fd, &msg, 0);
}

static int udp_noaddr(int proto, const char *port, const char *count, const char *s4,
		      const char *s6, const char *how, const char *rcvbuf)
{
	struct sockaddr_in6 any = { .sin6_family = AF_INET6 }, to6 = any;
	struct sockaddr_in to4 = { .sin_family = AF_INET };
	struct timeval tv = { .tv_usec = 300000 };
	unsigned long n = parse_num("count", count, 1, 10000), got4 = 0, got6 = 0;
	size_t size4 = parse_num("size4", s4, 1, 1400), size6 = parse_num("size6", s6, 1, 1400);
	int rfd = sock6(SOCK_DGRAM, proto), fd4 = socket(AF_INET, SOCK_DGRAM, proto);
	int fd6 = sock6(SOCK_DGRAM, proto), zero = 0;
	char buf[2048] = { 0 };

	if (strcmp(how, "recv") && strcmp(how, "read") && strcmp(how, "recvmsg"))
		usage();
	any.sin6_port = to6.sin6_port = to4.sin_port = htons(parse_num("port", port, 1, 65535));
	to6.sin6_addr = in6addr_loopback;
	to4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(rfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (rcvbuf) {
		int b = parse_num("rcvbuf", rcvbuf, 1, 1 << 20);

		setsockopt(rfd, SOL_SOCKET, SO_RCVBUF, &b, sizeof(b));
	}
	if (fd4 < 0 || bind(rfd, (struct sockaddr *)&any, sizeof(any)))
		return result(errno);
	if (proto == IPPROTO_UDPLITE) {
		int cov = 8;

		if (setsockopt(fd4, SOL_UDPLITE, UDPLITE_SEND_CSCOV, &cov, sizeof(cov)))
			return result(errno);
	}
	/* all queued (or dropped) before the first read, then read one by one */
	for (unsigned long i = 0; i < n; i++) {
		if (sendto(fd6, buf, size6, 0, (struct sockaddr *)&to6, sizeof(to6)) < 0 ||
		    sendto(fd4, buf, size4, 0, (struct sockaddr *)&to4, sizeof(to4)) < 0)
			return result(errno);
	}
	for (;;) {
		ssize_t r = read_noaddr(rfd, how, buf, sizeof(buf));

		if (r < 0 && errno == EAGAIN)
			break;
		if (r < 0)
			return result(errno);
		if ((size_t)r == size4)
			got4++;
		else if ((size_t)r == size6)
			got6++;
	}
	printf("v4=%lu v6=%lu ", got4, got6);
	return result(0);
}

static int udp_connect_queued(const char *port, const char *count)
{
	unsigned long n = parse_num("count", count, 1, 1000), gotx = 0, goty = 0;
	unsigned long p = parse_num("port", port, 1, 65533);
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_port = htons(p) }, peer;
	struct sockaddr_in x = { .sin_family = AF_INET }, y, to = { .sin_family = AF_INET };
	struct timeval tv = { .tv_usec = 300000 };
	int rfd = sock6(SOCK_DGRAM, 0), fdx = socket(AF_INET, SOCK_DGRAM, 0);
	int fdy = socket(AF_INET, SOCK_DGRAM, 0), zero = 0;
	char buf[64] = { 0 };

	x.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	y = x;
	to.sin_addr = x.sin_addr;
	x.sin_port = htons(p + 1);
	y.sin_port = htons(p + 2);
	to.sin_port = htons(p);
	peer = any;
	peer.sin6_port = y.sin_port;
	peer.sin6_addr.s6_addr[10] = peer.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&peer.sin6_addr.s6_addr[12], &x.sin_addr, 4);
	setsockopt(rfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (fdx < 0 || fdy < 0 || bind(rfd, (struct sockaddr *)&any, sizeof(any)) ||
	    bind(fdx, (struct sockaddr *)&x, sizeof(x)) || bind(fdy, (struct sockaddr *)&y, sizeof(y)))
		return result(errno);
	for (unsigned long i = 0; i < n; i++)
		if (sendto(fdx, buf, 10, 0, (struct sockaddr *)&to, sizeof(to)) != 10)
			return result(errno);
	if (connect(rfd, (struct sockaddr *)&peer, sizeof(peer)))
		return result(errno);
	for (unsigned long i = 0; i < n; i++)
		if (sendto(fdy, buf, 20, 0, (struct sockaddr *)&to, sizeof(to)) != 20)
			return result(errno);
	for (;;) {
		ssize_t r = recv(rfd, buf, sizeof(buf), 0);

		if (r < 0 && errno == EAGAIN)
			break;
		if (r < 0)
			return result(errno);
		if (r == 10)
			gotx++;
		else if (r == 20)
			goty++;
	}
	printf("x=%lu y=%lu ", gotx, goty);
	return result(0);
}

static int udp_errqueue(struct sockaddr_in6 *sa)
{
	int fd = sock6(SOCK_DGRAM, 0), on = 1, got = 0;
	char buf[256], ctl[512];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on));
	setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof(on));
	if (sendto(fd, "x", 1, 0, (struct sockaddr *)sa, sizeof(*sa)) != 1)
		return result(errno);
	for (int i = 0; i < 50 && !got; i++) {
		struct pollfd p = { .fd = fd, .events = 0 };

		poll(&p, 1, 100); /* POLLERR once the ICMP error is queued */
		msg.msg_control = ctl;
		msg.msg_controllen = sizeof(ctl);
		if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) >= 0)
			got = 1;
	}
	close(fd);
	printf("errqueue=%d ", got);
	return result(got ? 0 : ETIMEDOUT);
}

static void usage(void)
{
	fprintf(stderr, "usage: sockpaths MODE ARGS... (see the source's opening comment)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct sockaddr_in6 sa;
	const char *m;

	if (argc < 3)
		usage();
	m = argv[1];
	if (!strcmp(m, "backlog-full") && argc == 5 && !strcmp(argv[3], "accept"))
		return backlog_full(argv[2], argv[4]);
	if (!strcmp(m, "backlog-full") && argc == 4 && !strcmp(argv[3], "close"))
		return backlog_full(argv[2], NULL);
	if (!strcmp(m, "accept-hold") && argc == 3)
		return accept_hold(argv[2]);
	if (!strcmp(m, "udp-connect-queued") && argc == 4)
		return udp_connect_queued(argv[2], argv[3]);
	if (!strcmp(m, "tcp-self") && argc == 3)
		return tcp_self(argv[2]);
	if (!strcmp(m, "uring-accept") && argc == 5 &&
	    (!strcmp(argv[4], "multishot") || !strcmp(argv[4], "direct") ||
	     !strcmp(argv[4], "multishot-direct")))
		return uring_accept(argv[2], argv[3], strncmp(argv[4], "multishot", 9) == 0,
				    strstr(argv[4], "direct") != NULL);
	if (!strcmp(m, "uring-accept") && argc == 4)
		return uring_accept(argv[2], argv[3], false, false);
	if (!strcmp(m, "udp-threads") && (argc == 6 || argc == 7))
		return udp_threads(argv[2], argv[3], argv[4], argv[5], argc == 7 ? argv[6] : NULL);
	if (!strcmp(m, "udp-blocked") && argc == 5)
		return udp_blocked(argv[2], argv[3], argv[4]);
	if ((!strcmp(m, "udp-noaddr") || !strcmp(m, "udplite-noaddr")) &&
	    (argc == 7 || argc == 8))
		return udp_noaddr(m[3] == 'l' ? IPPROTO_UDPLITE : 0, argv[2], argv[3], argv[4],
				  argv[5], argv[6], argc == 8 ? argv[7] : NULL);
	if (argc < 4)
		usage();
	sa = addr6(argv[2], argv[3]);
	if (!strcmp(m, "tcp-retry") && argc == 4)
		return tcp_retry(&sa);
	if (!strcmp(m, "tcp-block") && (argc == 4 || argc == 5))
		return tcp_block(&sa, argc == 5 ? argv[4] : NULL);
	if (!strcmp(m, "tcp-twice") && argc == 4)
		return tcp_twice(&sa);
	if (!strcmp(m, "tcp-nb") && (argc == 4 || argc == 5))
		return tcp_nb(&sa, argc == 5 ? argv[4] : NULL);
	if (!strcmp(m, "tcp-abandon") && argc == 5)
		return tcp_abandon(&sa, argv[4], NULL, NULL);
	if (!strcmp(m, "tcp-abandon") && argc == 7 && !strcmp(argv[4], "exec"))
		return tcp_abandon(&sa, argv[4], argv[5], argv[6]);
	if (!strcmp(m, "tcp-pending") && argc == 8)
		return tcp_pending(&sa, argv[4], argv[5], argv[6], argv[7]);
	if (!strcmp(m, "tcp-hold") && argc == 5)
		return tcp_hold(&sa, argv[4]);
	if (!strcmp(m, "tfo") && argc == 4)
		return tfo(&sa);
	if (!strcmp(m, "mptcp") && argc == 5)
		return mptcp(&sa, argv[4]);
	if (!strcmp(m, "udplite") && argc == 6)
		return udplite(&sa, argv[4], argv[5]);
	if (!strcmp(m, "uring-connect") && argc == 4)
		return uring_connect(&sa, NULL, NULL);
	if (!strcmp(m, "uring-connect") && argc == 5 && !strcmp(argv[4], "udp"))
		return uring_connect(&sa, argv[4], NULL);
	if (!strcmp(m, "uring-connect") && argc == 6 && !strcmp(argv[4], "meanwhile"))
		return uring_connect(&sa, NULL, argv[5]);
	if (!strcmp(m, "bind") && argc == 5)
		return bind6(&sa, argv[4]);
	if (!strcmp(m, "udp-errqueue") && argc == 4)
		return udp_errqueue(&sa);
	if (!strcmp(m, "cork-flush") && argc == 4)
		return cork_flush(&sa, false);
	if (!strcmp(m, "cork-flush") && argc == 5 && !strcmp(argv[4], "connected"))
		return cork_flush(&sa, true);
	usage();
	return 2;
}
