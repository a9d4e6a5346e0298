// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * udp6: UDP traffic from and to AF_INET6 sockets, one system call flavour at a time.
 *
 *   udp6 send [-m sendto|sendmsg|sendmmsg|connect] [-n COUNT] [-s SIZE] [-6] [-l LPORT]
 *             [-w] HOST PORT
 *     COUNT datagrams of SIZE bytes to HOST (resolved with AF_INET6, AI_V4MAPPED | AI_ALL:
 *     192.0.2.4 becomes ::ffff:192.0.2.4; the first address is used). "connect" is
 *     connect() then send(). -6 sets IPV6_V6ONLY=1 first (a mapped peer then fails with
 *     ENETUNREACH), -l binds the local port, -w then waits for COUNT echoed datagrams.
 *     Prints "sent count=N bytes=B ..." or "failed errno=E ... sent=N".
 *     Give a literal address: for a name with several addresses glibc's getaddrinfo()
 *     probes each with a UDP connect() (RFC 3484 sorting), which is mapped traffic too.
 *
 *   udp6 recv [-m recvfrom|recvmsg|recvmmsg] [-n COUNT] [-t SECONDS] [-6] [-e] [-b BUFSIZE]
 *             [-T] PORT
 *     An AF_INET6 socket bound to [::]:PORT (IPV6_V6ONLY=0, or 1 with -6) receives COUNT
 *     datagrams (timeout SECONDS without one, default 10). -e echoes each one back. -b reads
 *     each into BUFSIZE bytes (a longer datagram is cut: the call returns BUFSIZE), -T with
 *     MSG_TRUNC (the call returns the datagram's length); bytes= adds what the calls return.
 *     Prints "listening ..." when ready, then "received count=N bytes=B peers=P ...".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"

#define BATCH 64		/* datagrams per sendmmsg()/recvmmsg() call */
#define MAX_DGRAM 65536
#define MAX_PEERS 64

enum method { M_SENDTO, M_SENDMSG, M_SENDMMSG, M_CONNECT, M_RECVFROM, M_RECVMSG, M_RECVMMSG };

static const char *const method_names[] = {
	[M_SENDTO] = "sendto",	   [M_SENDMSG] = "sendmsg",   [M_SENDMMSG] = "sendmmsg",
	[M_CONNECT] = "connect",   [M_RECVFROM] = "recvfrom", [M_RECVMSG] = "recvmsg",
	[M_RECVMMSG] = "recvmmsg",
};

static int parse_method(const char *s, enum method first, enum method last)
{
	for (unsigned int m = first; m <= last; m++)
		if (strcmp(s, method_names[m]) == 0)
			return m;
	fprintf(stderr, "unknown method '%s'\n", s);
	exit(2);
}

static int set_v6only(int fd, int on)
{
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) {
		perror("setsockopt(IPV6_V6ONLY)");
		return -1;
	}
	return 0;
}

static void set_rcvtimeo(int fd, unsigned long seconds)
{
	struct timeval tv = { .tv_sec = (time_t)seconds };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Send count datagrams; returns how many went out, *err the errno that stopped it. */
static unsigned long send_all(int fd, enum method m, const struct sockaddr *sa, socklen_t salen,
			      char *buf, size_t size, unsigned long count, int *err)
{
	struct mmsghdr msgs[BATCH];
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct msghdr msg = {
		.msg_name = (void *)sa, .msg_namelen = salen, .msg_iov = &iov, .msg_iovlen = 1,
	};
	unsigned long sent = 0;
	ssize_t n;

	*err = 0;
	if (m == M_CONNECT && connect(fd, sa, salen) < 0) {
		*err = errno;
		fprintf(stderr, "connect: %s\n", strerror(*err));
		return 0;
	}
	while (sent < count) {
		switch (m) {
		case M_SENDTO:
			n = sendto(fd, buf, size, 0, sa, salen) < 0 ? -1 : 1;
			break;
		case M_SENDMSG:
			n = sendmsg(fd, &msg, 0) < 0 ? -1 : 1;
			break;
		case M_CONNECT:
			n = send(fd, buf, size, 0) < 0 ? -1 : 1;
			break;
		case M_SENDMMSG: {
			unsigned int vlen = count - sent < BATCH ? count - sent : BATCH;

			for (unsigned int i = 0; i < vlen; i++)
				msgs[i] = (struct mmsghdr){ .msg_hdr = msg };
			n = sendmmsg(fd, msgs, vlen, 0);
			break;
		}
		default:
			n = -1;
			errno = EINVAL;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*err = errno;
			fprintf(stderr, "%s: %s\n", method_names[m], strerror(*err));
			break;
		}
		sent += n;
	}
	return sent;
}

static int do_send(int argc, char **argv)
{
	struct addrinfo hints, *res;
	struct sockaddr_storage local, from;
	socklen_t len;
	char peer[ADDRSTR_LEN], laddr[ADDRSTR_LEN];
	unsigned int pport, lport;
	unsigned long count = 1, size = 64, bind_port = 0, sent, echoed = 0;
	enum method m = M_SENDTO;
	bool v6only = false, wait_echo = false;
	int opt, n, fd, err;
	char *buf;

	while ((opt = getopt(argc, argv, "m:n:s:6l:w")) != -1) {
		switch (opt) {
		case 'm': m = parse_method(optarg, M_SENDTO, M_CONNECT); break;
		case 'n': count = parse_num("count", optarg, 1, 100000000); break;
		case 's': size = parse_num("size", optarg, 0, 65507); break;
		case '6': v6only = true; break;
		case 'l': bind_port = parse_num("local port", optarg, 1, 65535); break;
		case 'w': wait_echo = true; break;
		default: return 2;
		}
	}
	if (optind != argc - 2) {
		fprintf(stderr, "usage: udp6 send [-m sendto|sendmsg|sendmmsg|connect] [-n COUNT] "
				"[-s SIZE] [-6] [-l LPORT] [-w] HOST PORT\n");
		return 2;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET6;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_V4MAPPED | AI_ALL;
	n = getaddrinfo(argv[optind], argv[optind + 1], &hints, &res);
	if (n != 0) {
		fprintf(stderr, "getaddrinfo(%s): %s\n", argv[optind], gai_strerror(n));
		printf("failed gai=%s host=%s pid=%d\n", gai_errname(n), argv[optind],
		       (int)getpid());
		return 1;
	}
	if (res->ai_next)
		fprintf(stderr, "%s has several addresses, using the first\n", argv[optind]);
	sock_ntop(res->ai_addr, peer, sizeof(peer), &pport);

	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	if (v6only && set_v6only(fd, 1) < 0)
		return 1;
	if (bind_port) {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
					     .sin6_port = htons(bind_port),
					     .sin6_addr = IN6ADDR_ANY_INIT };

		if (bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0) {
			perror("bind");
			return 1;
		}
	}
	buf = malloc(size ? size : 1);
	if (!buf)
		return 1;
	memset(buf, 'd', size);

	fprintf(stderr, "sending %lu x %lu bytes to %s port %u with %s\n", count, size, peer,
		pport, method_names[m]);
	sent = send_all(fd, m, res->ai_addr, res->ai_addrlen, buf, size, count, &err);

	if (!err && wait_echo) {
		set_rcvtimeo(fd, 5);
		while (echoed < count) {
			len = sizeof(from);
			if (recvfrom(fd, buf, size ? size : 1, 0, (struct sockaddr *)&from,
				     &len) < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "recvfrom: %s\n", strerror(errno));
				break;
			}
			echoed++;
		}
	}

	len = sizeof(local);
	if (getsockname(fd, (struct sockaddr *)&local, &len) < 0)
		memset(&local, 0, sizeof(local));
	sock_ntop((struct sockaddr *)&local, laddr, sizeof(laddr), &lport);
	if (err) {
		printf("failed errno=%s method=%s sent=%lu peer=%s port=%u wire=%s v6only=%d "
		       "pid=%d tid=%d\n",
		       errname(err), method_names[m], sent, peer, pport, wire_of(res->ai_addr),
		       v6only, (int)getpid(), (int)gettid());
	} else {
		printf("sent count=%lu bytes=%lu method=%s peer=%s port=%u wire=%s local=%s "
		       "lport=%u v6only=%d pid=%d tid=%d",
		       sent, sent * size, method_names[m], peer, pport, wire_of(res->ai_addr),
		       laddr, lport, v6only, (int)getpid(), (int)gettid());
		if (wait_echo)
			printf(" echoed=%lu", echoed);
		putchar('\n');
	}
	freeaddrinfo(res);
	free(buf);
	close(fd);
	return err || (wait_echo && echoed < count) ? 1 : 0;
}

struct peer_set {
	struct sockaddr_in6 addr[MAX_PEERS];
	unsigned int n;
};

static void note_peer(struct peer_set *ps, const struct sockaddr_in6 *sin6)
{
	for (unsigned int i = 0; i < ps->n; i++)
		if (memcmp(&ps->addr[i].sin6_addr, &sin6->sin6_addr, sizeof(sin6->sin6_addr)) == 0 &&
		    ps->addr[i].sin6_port == sin6->sin6_port)
			return;
	if (ps->n < MAX_PEERS)
		ps->addr[ps->n++] = *sin6;
}

static int do_recv(int argc, char **argv)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in6 names[BATCH];
	struct mmsghdr msgs[BATCH];
	struct iovec iovs[BATCH];
	static struct peer_set peers;
	struct sockaddr_in6 last = { 0 };
	unsigned long count = 1, timeout = 10, got = 0, bytes = 0, port, bufsize = MAX_DGRAM;
	enum method m = M_RECVFROM;
	int rflags = 0;
	bool echo = false, timed_out = false;
	int opt, fd, v6only = 0, on = 1, err = 0;
	char addr[ADDRSTR_LEN];
	unsigned int lastport;
	char *bufs;

	while ((opt = getopt(argc, argv, "m:n:t:6eb:T")) != -1) {
		switch (opt) {
		case 'm': m = parse_method(optarg, M_RECVFROM, M_RECVMMSG); break;
		case 'n': count = parse_num("count", optarg, 1, 100000000); break;
		case 't': timeout = parse_num("timeout", optarg, 1, 3600); break;
		case 'b': bufsize = parse_num("buffer size", optarg, 1, MAX_DGRAM); break;
		case 'T': rflags = MSG_TRUNC; break;
		case '6': v6only = 1; break;
		case 'e': echo = true; break;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: udp6 recv [-m recvfrom|recvmsg|recvmmsg] [-n COUNT] "
				"[-t SECONDS] [-6] [-e] [-b BUFSIZE] [-T] PORT\n");
		return 2;
	}
	port = parse_num("port", argv[optind], 1, 65535);

	bufs = malloc((size_t)BATCH * MAX_DGRAM);
	if (!bufs)
		return 1;
	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (set_v6only(fd, v6only) < 0)
		return 1;
	sin6.sin6_port = htons(port);
	if (bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0) {
		perror("bind");
		say("failed bind port=%lu", port);
		return 1;
	}
	set_rcvtimeo(fd, timeout);
	say("listening family=inet6 proto=udp port=%lu v6only=%d pid=%d", port, v6only,
	    (int)getpid());

	while (got < count) {
		unsigned int vlen = 1;
		ssize_t n;

		for (unsigned int i = 0; i < BATCH; i++) {
			iovs[i] = (struct iovec){ .iov_base = bufs + (size_t)i * MAX_DGRAM,
						  .iov_len = bufsize };
			msgs[i] = (struct mmsghdr){ .msg_hdr = {
				.msg_name = &names[i], .msg_namelen = sizeof(names[i]),
				.msg_iov = &iovs[i], .msg_iovlen = 1 } };
		}
		switch (m) {
		case M_RECVFROM: {
			socklen_t len = sizeof(names[0]);

			n = recvfrom(fd, bufs, bufsize, rflags, (struct sockaddr *)&names[0], &len);
			if (n >= 0)
				msgs[0].msg_len = n;
			break;
		}
		case M_RECVMSG:
			n = recvmsg(fd, &msgs[0].msg_hdr, rflags);
			if (n >= 0)
				msgs[0].msg_len = n;
			break;
		default:
			vlen = count - got < BATCH ? count - got : BATCH;
			n = recvmmsg(fd, msgs, vlen, MSG_WAITFORONE | rflags, NULL);
			vlen = n; /* datagrams, not bytes */
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			timed_out = err == EAGAIN || err == EWOULDBLOCK;
			fprintf(stderr, "%s: %s\n", method_names[m],
				timed_out ? "timed out" : strerror(err));
			break;
		}
		for (unsigned int i = 0; i < vlen; i++) {
			got++;
			bytes += msgs[i].msg_len;
			last = names[i];
			note_peer(&peers, &names[i]);
			if (echo && sendto(fd, iovs[i].iov_base, msgs[i].msg_len, 0,
					   (struct sockaddr *)&names[i], sizeof(names[i])) < 0)
				fprintf(stderr, "sendto (echo): %s\n", strerror(errno));
		}
	}

	sock_ntop((struct sockaddr *)&last, addr, sizeof(addr), &lastport);
	printf("received count=%lu bytes=%lu method=%s peers=%u peer=%s port=%u wire=%s "
	       "pid=%d tid=%d%s%s\n",
	       got, bytes, method_names[m], peers.n, got ? addr : "none", lastport,
	       got ? wire_of((struct sockaddr *)&last) : "none", (int)getpid(), (int)gettid(),
	       timed_out ? " timeout=1" : "", err && !timed_out ? " error=1" : "");
	free(bufs);
	close(fd);
	return got == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "send") == 0)
		return do_send(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "recv") == 0)
		return do_recv(argc - 1, argv + 1);
	fprintf(stderr, "usage: udp6 send [-m sendto|sendmsg|sendmmsg|connect] [-n COUNT] "
			"[-s SIZE] [-6] [-l LPORT] [-w] HOST PORT\n"
			"       udp6 recv [-m recvfrom|recvmsg|recvmmsg] [-n COUNT] [-t SECONDS] "
			"[-6] [-e] [-b BUFSIZE] [-T] PORT\n");
	return 2;
}
