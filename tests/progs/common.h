/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Helpers shared by the test programs. They are written the way UNIX Network Programming
 * writes its clients and servers (getaddrinfo, walk the list, connect until one works), so
 * that dstrace is tested against what real applications do, glibc included.
 *
 * Every program prints one machine-readable line of space-separated key=value tokens on
 * stdout for the test scripts, and a human log of every attempt on stderr.
 */
#ifndef DSTRACE_TEST_COMMON_H
#define DSTRACE_TEST_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define ADDRSTR_LEN 64 /* fits INET6_ADDRSTRLEN */

/* How tcp_connect() resolves and connects. */
struct connect_opts {
	int family;	/* hints.ai_family: AF_INET or AF_INET6 */
	int ai_flags;	/* hints.ai_flags, e.g. AI_V4MAPPED | AI_ALL */
	bool v6only;	/* set IPV6_V6ONLY=1 on each socket before connect() */
	bool nonblock;	/* O_NONBLOCK connect(), poll() for completion */
	int timeout_ms; /* bound on each non-blocking attempt */
};

/* What tcp_connect() did. */
struct connect_result {
	int fd;	     /* connected socket, or -1 */
	int err;     /* errno of the last attempt; 0 on success */
	int gai_err; /* getaddrinfo() error; 0 if the name resolved */
	int attempts;
	struct sockaddr_storage peer; /* address of the last attempt */
	socklen_t peerlen;
	char tried[1024]; /* "ADDR/RESULT,ADDR/RESULT", RESULT = OK or an errno name */
};

/* "ENETUNREACH" for ENETUNREACH; "E<n>" when glibc has no name. */
const char *errname(int err);
/* "EAI_NONAME" for EAI_NONAME, ... */
const char *gai_errname(int code);
/* "inet", "inet6" or "unspec". */
const char *family_name(int family);
/* Numeric host and port of sa; host is "?" for an unknown family. */
void sock_ntop(const struct sockaddr *sa, char *host, size_t hostlen, unsigned int *port);
/* The protocol the kernel puts on the wire for a peer: "ipv4" for AF_INET and IPv4-mapped
 * IPv6 addresses, "ipv6" otherwise. */
const char *wire_of(const struct sockaddr *sa);
/* Parse a decimal number in [min, max]; exits with a usage error otherwise. */
unsigned long parse_num(const char *what, const char *s, unsigned long min, unsigned long max);
/* Say that a server is ready: the line goes out before anything else can happen. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* UNP's tcp_connect(): resolve host/serv with the given hints, walk the list, return the
 * first socket whose connect() works. Fills r; returns r->fd. */
int tcp_connect(const char *host, const char *serv, const struct connect_opts *o,
		struct connect_result *r);

/* Print the client's result line for r (connected ... / failed ...); on success also send
 * one line and check its echo. Returns the exit status: 0 connected and echoed, 1 not. */
int client_report(const char *prog, const char *host, const char *serv,
		  struct connect_result *r);

/* UNP's tcp_listen(): a listening socket of the given family on the wildcard address.
 * v6only < 0 leaves IPV6_V6ONLY alone; 0 or 1 sets it explicitly (AF_INET6 only). */
int tcp_listen(int family, const char *serv, int v6only);

/* The accept/echo loop of tcpserv4 and tcpserv6: "-n N" connections (0 = forever). */
int tcp_serve(const char *prog, int family, int argc, char **argv);

#endif /* DSTRACE_TEST_COMMON_H */
