// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * udpflows: many UDP flows from one socket, and receivers udp6 does not cover.
 *
 *   udpflows send [-m sendto|sendmsg|sendmmsg|connect] [-a NADDRS] [-p NPORTS] [-r ROUNDS]
 *                 [-s SIZE] [-b BATCH] [-l LPORT] [-M PARTS] [-G SEGSIZE] [-C SEGSIZE]
 *                 [-4] [-6] [-k] [-w] [-N] ADDR PORT
 *     One socket sends ROUNDS x NADDRS x NPORTS datagrams of SIZE bytes: in each round one
 *     to every (ADDR + i, PORT + j), i < NADDRS, j < NPORTS, in that order (address, then
 *     port). ADDR is an IPv4 address: the socket is AF_INET6 and the destinations are
 *     ::ffff:ADDR+i, or with -4 the socket is AF_INET and they are plain IPv4. ADDR may
 *     also be a native IPv6 address (NADDRS must be 1). sendmmsg sends BATCH datagrams per
 *     call (default 64, at most 1024), each to its own destination. "connect" connect()s
 *     to the single destination, then send()s. -6 sets IPV6_V6ONLY=1 first, -l binds the
 *     local port, -k keeps going after a failed send (each failure is counted), -w waits
 *     for every datagram to be echoed, read with recvfrom(), or with -N with recv() (no
 *     source address asked for).
 *     -M PARTS writes each datagram with PARTS calls, all but the last with MSG_MORE (the
 *     kernel corks them into one datagram of SIZE bytes; SIZE must divide by PARTS; not
 *     with sendmmsg). -G SEGSIZE sets UDP_SEGMENT: each call's SIZE bytes leave as
 *     ceil(SIZE / SEGSIZE) datagrams (generic segmentation offload), counted in wire=.
 *     -C SEGSIZE does the same per call, as QUIC stacks do: each sendmsg()/sendmmsg()
 *     message carries two control messages, IP_TOS (0) then UDP_SEGMENT (SEGSIZE); it
 *     overrides -G.
 *     Prints "sent datagrams=N bytes=B failed=F errno=E flows=N lport=L pid=P tid=T ...";
 *     datagrams counts the send calls' datagrams, wire= the datagrams on the wire.
 *
 *   udpflows recv [-4] [-P] [-g] [-N] [-c ADDR:PORT] [-n COUNT] [-t SECONDS] PORT
 *     A socket on the wildcard address, AF_INET6 with IPV6_V6ONLY=0 or AF_INET with -4,
 *     receives COUNT datagrams with recvfrom() (timeout SECONDS, default 10). -P first
 *     peeks at each datagram (recvfrom with MSG_PEEK) before reading it. -g sets UDP_GRO
 *     and reads with recvmsg(): a read may take several datagrams at once, which its
 *     UDP_GRO control message says (their segment size); -N (with -g) asks for no source
 *     address. -c connects the socket to IPv4 ADDR:PORT (::ffff:ADDR) once bound.
 *     Prints "listening ..." when ready, then "received count=N bytes=B reads=R peeked=K
 *     ..." (count: datagrams, reads: the calls that took them).
 *
 *   udpflows exchange [-s] [-f] [-u] [-l] [-n COUNT] PORT
 *     A UDP exchange under way when a tracer starts, between an AF_INET6 socket connected to
 *     a mapped peer and that peer, an AF_INET socket of this process on 127.0.0.1. Client
 *     (default): the AF_INET6 socket, on an ephemeral port, connects to ::ffff:127.0.0.1:PORT
 *     and sends a first datagram. Server (-s): an AF_INET6 socket on [::]:PORT (unconnected,
 *     SO_REUSEADDR) reads the peer's first datagram from 127.0.0.1:PORT+1, then a second
 *     socket on [::]:PORT connects to the peer (a service's socket per client). Then it
 *     prints "ready ...", waits for SIGUSR1, and the side that did not begin speaks first:
 *     COUNT times (default 3) one datagram of 10 bytes from the client's peer to it and
 *     one back, or from the server's connected socket to its peer and one back; with -f in
 *     a child forked then (the sockets inherited). -u: the AF_INET6 socket stays
 *     unconnected and sends with sendto(): the client's on a port the kernel chose (bound
 *     to port 0), the server's the one on [::]:PORT that read the peer's first datagram.
 *     Prints "exchanged count=N". -l: then waits for SIGUSR1 again and the AF_INET6 socket
 *     begins a new exchange, with a new peer (an AF_INET socket on 127.0.0.1:PORT+2): one
 *     datagram to it, one back; prints "later count=1" (not with -f).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define MAX_BATCH 1024
#define MAX_DGRAM 65536

enum method { M_SENDTO, M_SENDMSG, M_SENDMMSG, M_CONNECT };
static const char *const method_names[] = { "sendto", "sendmsg", "sendmmsg", "connect" };

static void usage(void)
{
	fprintf(stderr,
		"usage: udpflows send [-m sendto|sendmsg|sendmmsg|connect] [-a NADDRS] [-p NPORTS]\n"
		"                     [-r ROUNDS] [-s SIZE] [-b BATCH] [-l LPORT] [-M PARTS]\n"
		"                     [-G SEGSIZE] [-C SEGSIZE] [-4] [-6] [-k] [-w] [-N] ADDR PORT\n"
		"       udpflows recv [-4] [-P] [-g] [-N] [-c ADDR:PORT] [-n COUNT] [-t SECONDS]\n"
		"                     PORT\n"
		"       udpflows exchange [-s] [-f] [-u] [-l] [-n COUNT] PORT\n");
}

/* Destination number k (k < naddrs * nports) of a round. */
static void dest_of(struct sockaddr_storage *ss, socklen_t *len, int family, bool v6native,
		    const struct in_addr *base4, const struct in6_addr *base6, unsigned long port,
		    unsigned long nports, unsigned long k)
{
	uint32_t a = ntohl(base4->s_addr) + (uint32_t)(k / nports);
	uint16_t p = (uint16_t)(port + k % nports);

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(a);
		sin->sin_port = htons(p);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(p);
		if (v6native) {
			sin6->sin6_addr = *base6;
		} else {
			sin6->sin6_addr.s6_addr[10] = 0xff;
			sin6->sin6_addr.s6_addr[11] = 0xff;
			a = htonl(a);
			memcpy(&sin6->sin6_addr.s6_addr[12], &a, 4);
		}
		*len = sizeof(*sin6);
	}
}

static int do_send(int argc, char **argv)
{
	static struct sockaddr_storage dests[MAX_BATCH];
	static struct mmsghdr msgs[MAX_BATCH];
	static socklen_t destlens[MAX_BATCH];
	unsigned long naddrs = 1, nports = 1, rounds = 1, size = 64, batch = 64, lport_opt = 0;
	unsigned long parts = 1, segsize = 0, cmsg_seg = 0, per_call = 1;
	unsigned long port, flows, total, sent = 0, failed = 0, echoed = 0, k;
	enum method m = M_SENDTO;
	bool inet4 = false, v6only = false, keep = false, wait_echo = false, noname = false;
	bool v6native = false;
	struct in_addr base4 = { 0 };
	struct in6_addr base6;
	struct sockaddr_storage local;
	socklen_t len;
	char laddr[ADDRSTR_LEN];
	unsigned int lport;
	struct iovec iov;
	int opt, fd, family, err = 0, one = 1;
	char *buf;
	union { /* -C: IP_TOS, then UDP_SEGMENT */
		char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl = { 0 };
	size_t ctl_len = 0;

	while ((opt = getopt(argc, argv, "m:a:p:r:s:b:l:M:G:C:46kwN")) != -1) {
		switch (opt) {
		case 'm':
			for (m = M_SENDTO; m <= M_CONNECT; m++)
				if (strcmp(optarg, method_names[m]) == 0)
					break;
			if (m > M_CONNECT) {
				usage();
				return 2;
			}
			break;
		case 'a': naddrs = parse_num("address count", optarg, 1, 1 << 20); break;
		case 'p': nports = parse_num("port count", optarg, 1, 65535); break;
		case 'r': rounds = parse_num("rounds", optarg, 1, 1000000); break;
		case 's': size = parse_num("size", optarg, 0, 65507); break;
		case 'b': batch = parse_num("batch", optarg, 1, MAX_BATCH); break;
		case 'l': lport_opt = parse_num("local port", optarg, 1, 65535); break;
		case 'M': parts = parse_num("parts", optarg, 1, 1024); break;
		case 'G': segsize = parse_num("segment size", optarg, 1, 65507); break;
		case 'C': cmsg_seg = parse_num("segment size", optarg, 1, 65507); break;
		case '4': inet4 = true; break;
		case '6': v6only = true; break;
		case 'k': keep = true; break;
		case 'w': wait_echo = true; break;
		case 'N': noname = true; break;
		default: usage(); return 2;
		}
	}
	if (optind != argc - 2) {
		usage();
		return 2;
	}
	if (inet_pton(AF_INET, argv[optind], &base4) != 1) {
		if (inet4 || naddrs != 1 || inet_pton(AF_INET6, argv[optind], &base6) != 1) {
			fprintf(stderr, "bad address '%s'\n", argv[optind]);
			return 2;
		}
		v6native = true;
	}
	port = parse_num("port", argv[optind + 1], 1, 65535);
	if (port + nports - 1 > 65535) {
		fprintf(stderr, "PORT + NPORTS - 1 must be a port\n");
		return 2;
	}
	flows = naddrs * nports;
	if (m == M_CONNECT && flows != 1) {
		fprintf(stderr, "-m connect: one destination only\n");
		return 2;
	}
	if (parts > 1 && (m == M_SENDMMSG || size % parts)) {
		fprintf(stderr, "-M: not with sendmmsg, and SIZE must divide by PARTS\n");
		return 2;
	}
	if (cmsg_seg && (m == M_SENDTO || m == M_CONNECT || parts > 1)) {
		fprintf(stderr, "-C: sendmsg or sendmmsg only, not with -M\n");
		return 2;
	}
	if (cmsg_seg || segsize) {
		unsigned long seg = cmsg_seg ? cmsg_seg : segsize;

		per_call = size > seg ? (size + seg - 1) / seg : 1;
	}
	total = flows * rounds;
	family = inet4 ? AF_INET : AF_INET6;

	fd = socket(family, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	if (v6only && (inet4 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		perror("setsockopt(IPV6_V6ONLY)");
		return 1;
	}
	if (lport_opt) {
		struct sockaddr_storage ss = { 0 };

		if (inet4) {
			((struct sockaddr_in *)&ss)->sin_family = AF_INET;
			((struct sockaddr_in *)&ss)->sin_port = htons(lport_opt);
		} else {
			((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(lport_opt);
		}
		if (bind(fd, (struct sockaddr *)&ss,
			 inet4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0) {
			perror("bind");
			return 1;
		}
	}
	if (segsize) {
		int seg = (int)segsize;

		if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) < 0) {
			perror("setsockopt(UDP_SEGMENT)");
			return 1;
		}
	}
	buf = malloc(size > 0 ? size : 1);
	if (!buf)
		return 1;
	memset(buf, 'f', size);
	iov = (struct iovec){ .iov_base = buf, .iov_len = size };
	if (cmsg_seg) {
		struct cmsghdr *c = (struct cmsghdr *)ctl.buf;
		int tos = 0;
		uint16_t seg = (uint16_t)cmsg_seg;

		c->cmsg_level = SOL_IP;
		c->cmsg_type = IP_TOS;
		c->cmsg_len = CMSG_LEN(sizeof(tos));
		memcpy(CMSG_DATA(c), &tos, sizeof(tos));
		c = (struct cmsghdr *)(ctl.buf + CMSG_SPACE(sizeof(tos)));
		c->cmsg_level = SOL_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(seg));
		memcpy(CMSG_DATA(c), &seg, sizeof(seg));
		ctl_len = sizeof(ctl.buf);
	}

	if (m == M_CONNECT) {
		dest_of(&dests[0], &destlens[0], family, v6native, &base4, &base6, port, nports, 0);
		if (connect(fd, (struct sockaddr *)&dests[0], destlens[0]) < 0) {
			err = errno;
			fprintf(stderr, "connect: %s\n", strerror(err));
			failed++;
			total = 0;
		}
	}

	k = 0; /* datagrams attempted */
	while (k < total) {
		unsigned long n = 1;
		ssize_t r;

		if (m == M_SENDMMSG) {
			n = total - k < batch ? total - k : batch;
			for (unsigned long i = 0; i < n; i++) {
				dest_of(&dests[i], &destlens[i], family, v6native, &base4, &base6, port,
					nports, (k + i) % flows);
				msgs[i] = (struct mmsghdr){ .msg_hdr = {
					.msg_name = &dests[i], .msg_namelen = destlens[i],
					.msg_iov = &iov, .msg_iovlen = 1,
					.msg_control = ctl_len ? ctl.buf : NULL,
					.msg_controllen = ctl_len } };
			}
			r = sendmmsg(fd, msgs, n, 0);
		} else {
			/* One datagram, in parts: all but the last with MSG_MORE. */
			size_t part = size / parts;

			if (m != M_CONNECT)
				dest_of(&dests[0], &destlens[0], family, v6native, &base4, &base6, port,
					nports, k % flows);
			r = 1;
			for (unsigned long i = 0; i < parts && r >= 0; i++) {
				int flags = i + 1 < parts ? MSG_MORE : 0;
				struct iovec piov = { .iov_base = buf, .iov_len = part };
				struct msghdr msg = { .msg_name = &dests[0], .msg_namelen = destlens[0],
						      .msg_iov = &piov, .msg_iovlen = 1,
						      .msg_control = ctl_len ? ctl.buf : NULL,
						      .msg_controllen = ctl_len };

				if (m == M_CONNECT)
					r = send(fd, buf, part, flags);
				else if (m == M_SENDTO)
					r = sendto(fd, buf, part, flags, (struct sockaddr *)&dests[0],
						   destlens[0]);
				else
					r = sendmsg(fd, &msg, flags);
			}
			r = r < 0 ? -1 : 1;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			failed++;
			k++; /* the datagram that failed */
			if (!keep) {
				fprintf(stderr, "%s: %s\n", method_names[m], strerror(err));
				break;
			}
			continue;
		}
		sent += r;
		k += r;
	}

	if (wait_echo && sent) {
		struct timeval tv = { .tv_sec = 5 };
		struct sockaddr_storage from;
		char *in = malloc(MAX_DGRAM);

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (in && echoed < sent) {
			ssize_t r;

			len = sizeof(from);
			r = noname ? recv(fd, in, MAX_DGRAM, 0)
				   : recvfrom(fd, in, MAX_DGRAM, 0, (struct sockaddr *)&from, &len);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "recv (echo): %s\n", strerror(errno));
				break;
			}
			echoed++;
		}
		free(in);
	}

	len = sizeof(local);
	if (getsockname(fd, (struct sockaddr *)&local, &len) < 0)
		memset(&local, 0, sizeof(local));
	sock_ntop((struct sockaddr *)&local, laddr, sizeof(laddr), &lport);
	printf("sent datagrams=%lu bytes=%lu failed=%lu errno=%s method=%s flows=%lu rounds=%lu "
	       "wire=%lu local=%s lport=%u family=%s v6only=%d pid=%d tid=%d",
	       sent, sent * size, failed, err ? errname(err) : "none", method_names[m], flows,
	       rounds, sent * per_call, laddr, lport, family_name(family), v6only, (int)getpid(),
	       (int)gettid());
	if (wait_echo)
		printf(" echoed=%lu", echoed);
	putchar('\n');
	free(buf);
	close(fd);
	return failed || (wait_echo && echoed < sent) ? 1 : 0;
}

static int do_recv(int argc, char **argv)
{
	unsigned long count = 1, timeout = 10, port, got = 0, reads = 0, bytes = 0, peeked = 0;
	bool inet4 = false, peek = false, timed_out = false, gro = false, noname = false;
	const char *peer = NULL;
	struct sockaddr_storage ss = { 0 }, from;
	struct timeval tv = { 0 };
	socklen_t len;
	int opt, fd, zero = 0, on = 1;
	char *buf;

	while ((opt = getopt(argc, argv, "4PgNc:n:t:")) != -1) {
		switch (opt) {
		case '4': inet4 = true; break;
		case 'P': peek = true; break;
		case 'g': gro = true; break;
		case 'N': noname = true; break;
		case 'c': peer = optarg; break;
		case 'n': count = parse_num("count", optarg, 1, 100000000); break;
		case 't': timeout = parse_num("timeout", optarg, 1, 3600); break;
		default: usage(); return 2;
		}
	}
	if (optind != argc - 1) {
		usage();
		return 2;
	}
	port = parse_num("port", argv[optind], 1, 65535);
	buf = malloc(MAX_DGRAM);
	if (!buf)
		return 1;
	fd = socket(inet4 ? AF_INET : AF_INET6, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (inet4) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	} else {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	}
	if (bind(fd, (struct sockaddr *)&ss,
		 inet4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0) {
		perror("bind");
		say("failed bind port=%lu", port);
		return 1;
	}
	if (peer) {
		struct sockaddr_in6 to = { .sin6_family = AF_INET6 };
		char host[64];
		const char *colon = strrchr(peer, ':');
		struct in_addr a;

		if (inet4 || !colon || (size_t)(colon - peer) >= sizeof(host)) {
			fprintf(stderr, "-c ADDR:PORT, not with -4\n");
			return 2;
		}
		memcpy(host, peer, (size_t)(colon - peer));
		host[colon - peer] = 0;
		if (inet_pton(AF_INET, host, &a) != 1) {
			fprintf(stderr, "bad address '%s'\n", host);
			return 2;
		}
		to.sin6_addr.s6_addr[10] = 0xff;
		to.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&to.sin6_addr.s6_addr[12], &a, 4);
		to.sin6_port = htons((uint16_t)parse_num("port", colon + 1, 1, 65535));
		if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
			perror("connect");
			return 1;
		}
	}
	if (gro && setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) < 0) {
		perror("setsockopt(UDP_GRO)");
		return 1;
	}
	tv.tv_sec = (time_t)timeout;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	say("listening family=%s proto=udp port=%lu peek=%d pid=%d", inet4 ? "inet" : "inet6",
	    port, peek, (int)getpid());

	while (got < count) {
		ssize_t n;

		if (peek) {
			len = sizeof(from);
			n = recvfrom(fd, buf, MAX_DGRAM, MSG_PEEK, (struct sockaddr *)&from, &len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				goto fail;
			peeked++;
		}
		if (gro) {
			/* several datagrams at once: the control message says their size */
			union {
				char buf[CMSG_SPACE(sizeof(int))];
				struct cmsghdr align;
			} ctl;
			struct iovec iov = { .iov_base = buf, .iov_len = MAX_DGRAM };
			struct msghdr msg = { .msg_name = noname ? NULL : &from,
					      .msg_namelen = noname ? 0 : sizeof(from),
					      .msg_iov = &iov, .msg_iovlen = 1,
					      .msg_control = ctl.buf,
					      .msg_controllen = sizeof(ctl.buf) };
			struct cmsghdr *c;
			unsigned long segs = 1;

			n = recvmsg(fd, &msg, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				goto fail;
			for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
				int seg;

				if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO)
					continue;
				memcpy(&seg, CMSG_DATA(c), sizeof(seg));
				if (seg > 0 && n > seg)
					segs = ((unsigned long)n + (unsigned long)seg - 1) /
					       (unsigned long)seg;
			}
			got += segs;
			reads++;
			bytes += (unsigned long)n;
			continue;
		}
		len = sizeof(from);
		n = recvfrom(fd, buf, MAX_DGRAM, 0, (struct sockaddr *)&from, &len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		got++;
		reads++;
		bytes += n;
		continue;
fail:
		timed_out = errno == EAGAIN || errno == EWOULDBLOCK;
		fprintf(stderr, "recvfrom: %s\n", timed_out ? "timed out" : strerror(errno));
		break;
	}
	printf("received count=%lu bytes=%lu reads=%lu peeked=%lu family=%s pid=%d tid=%d%s\n",
	       got, bytes, reads, peeked, inet4 ? "inet" : "inet6", (int)getpid(), (int)gettid(),
	       timed_out ? " timeout=1" : "");
	free(buf);
	close(fd);
	return got == count ? 0 : 1;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static unsigned long local_port(int fd)
{
	struct sockaddr_in6 sin6;
	socklen_t len = sizeof(sin6);

	if (getsockname(fd, (struct sockaddr *)&sin6, &len))
		die("getsockname");
	return ntohs(sin6.sin6_port);
}

/* A UDP socket of FAMILY bound to the loopback or wildcard address and PORT (0: any); its
 * reads give up after 10 s (a lost datagram fails the program, it does not hang it). */
static int udp_bound(int family, unsigned long port, bool reuse)
{
	struct timeval tv = { .tv_sec = 10 };
	struct sockaddr_storage ss = {};
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) :
					    sizeof(struct sockaddr_in6);
	int fd = socket(family, SOCK_DGRAM, 0), on = 1, off = 0;

	if (fd < 0)
		die("socket");
	if (family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)))
			die("setsockopt(IPV6_V6ONLY)");
	}
	if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)))
		die("setsockopt(SO_REUSEADDR)");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		die("setsockopt(SO_RCVTIMEO)");
	if (bind(fd, (struct sockaddr *)&ss, len))
		die("bind");
	return fd;
}

/* connect() fd to 127.0.0.1:PORT, mapped (::ffff:127.0.0.1) for an AF_INET6 socket. */
static void udp_connect_lo(int fd, int family, unsigned long port)
{
	struct in_addr lo = { htonl(INADDR_LOOPBACK) };
	struct sockaddr_storage ss;
	socklen_t len;

	dest_of(&ss, &len, family, false, &lo, NULL, port, 1, 0);
	if (connect(fd, (struct sockaddr *)&ss, len))
		die("connect");
}

/* Send 10 bytes on fd: to its peer, or with to (a port) to ::ffff:127.0.0.1:to. */
static void xsend_to(int fd, unsigned long to)
{
	struct in_addr lo = { htonl(INADDR_LOOPBACK) };
	struct sockaddr_storage ss;
	socklen_t len = 0;

	if (to)
		dest_of(&ss, &len, AF_INET6, false, &lo, NULL, to, 1, 0);
	if (sendto(fd, "0123456789", 10, 0, to ? (struct sockaddr *)&ss : NULL, len) != 10)
		die("send");
}

static void xsend(int fd)
{
	xsend_to(fd, 0);
}

static void xrecv(int fd)
{
	char buf[64];

	if (recv(fd, buf, sizeof(buf), 0) < 0)
		die("recv");
}

static int do_exchange(int argc, char **argv)
{
	unsigned long port, count = 3, i, to = 0;
	bool server = false, child = false, unconnected = false, later = false;
	int opt, sig, me, peer, status;
	sigset_t usr1;
	pid_t pid = 0;

	while ((opt = getopt(argc, argv, "sfuln:")) != -1) {
		if (opt == 's')
			server = true;
		else if (opt == 'l')
			later = true;
		else if (opt == 'u')
			unconnected = true;
		else if (opt == 'f')
			child = true;
		else if (opt == 'n')
			count = parse_num("count", optarg, 1, 1000000);
		else
			return usage(), 2;
	}
	if (optind + 1 != argc || (child && later)) /* -l's signal is the parent's */
		return usage(), 2;
	port = parse_num("port", argv[optind], 1, later ? 65533 : 65534);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	if (server) {
		int service = udp_bound(AF_INET6, port, true);

		peer = udp_bound(AF_INET, port + 1, false);
		udp_connect_lo(peer, AF_INET, port);
		xsend(peer); /* the client begins */
		xrecv(service);
		if (unconnected) {
			me = service;
			to = port + 1;
		} else {
			me = udp_bound(AF_INET6, port, true);
			udp_connect_lo(me, AF_INET6, port + 1);
		}
	} else {
		peer = udp_bound(AF_INET, port, false);
		me = udp_bound(AF_INET6, 0, false);
		if (unconnected)
			to = port;
		else
			udp_connect_lo(me, AF_INET6, port);
		xsend_to(me, to); /* this program begins */
		xrecv(peer);
		udp_connect_lo(peer, AF_INET, local_port(me));
	}
	say("ready role=%s port=%lu pid=%d", server ? "server" : "client", port, (int)getpid());
	if (sigwait(&usr1, &sig))
		die("sigwait");
	if (child && (pid = fork()) < 0)
		die("fork");
	if (pid > 0) {
		if (waitpid(pid, &status, 0) != pid)
			die("waitpid");
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}
	for (i = 0; i < count; i++) {
		int first = server ? me : peer, second = server ? peer : me;

		xsend_to(first, first == me ? to : 0);
		xrecv(second);
		xsend_to(second, second == me ? to : 0);
		xrecv(first);
	}
	say("exchanged count=%lu", count);
	if (later) {
		int other = udp_bound(AF_INET, port + 2, false);

		if (sigwait(&usr1, &sig))
			die("sigwait");
		if (unconnected) {
			xsend_to(me, port + 2);
		} else {
			udp_connect_lo(me, AF_INET6, port + 2);
			xsend(me);
		}
		xrecv(other);
		udp_connect_lo(other, AF_INET, local_port(me));
		xsend(other);
		xrecv(me);
		say("later count=1");
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "send") == 0)
		return do_send(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "recv") == 0)
		return do_recv(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "exchange") == 0)
		return do_exchange(argc - 1, argv + 1);
	usage();
	return 2;
}
