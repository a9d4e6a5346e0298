// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Helpers shared by the test programs; see common.h. */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

const char *errname(int err)
{
	static char buf[16];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

const char *gai_errname(int code)
{
	switch (code) {
	case EAI_AGAIN: return "EAI_AGAIN";
	case EAI_BADFLAGS: return "EAI_BADFLAGS";
	case EAI_FAIL: return "EAI_FAIL";
	case EAI_FAMILY: return "EAI_FAMILY";
	case EAI_MEMORY: return "EAI_MEMORY";
	case EAI_NODATA: return "EAI_NODATA";
	case EAI_NONAME: return "EAI_NONAME";
	case EAI_SERVICE: return "EAI_SERVICE";
	case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
	case EAI_SYSTEM: return "EAI_SYSTEM";
	case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
	default: return "EAI_OTHER";
	}
}

const char *family_name(int family)
{
	switch (family) {
	case AF_INET: return "inet";
	case AF_INET6: return "inet6";
	default: return "unspec";
	}
}

void sock_ntop(const struct sockaddr *sa, char *host, size_t hostlen, unsigned int *port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

	*port = 0;
	snprintf(host, hostlen, "?");
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, host, hostlen);
		*port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, hostlen);
		*port = ntohs(sin6->sin6_port);
	}
}

const char *wire_of(const struct sockaddr *sa)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET)
		return "ipv4";
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) ? "ipv4" : "ipv6";
	return "none";
}

unsigned long parse_num(const char *what, const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "bad %s '%s': want a number in [%lu, %lu]\n", what, s, min, max);
		exit(2);
	}
	return v;
}

void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void append_tried(struct connect_result *r, const char *host, const char *result)
{
	size_t len = strlen(r->tried);

	snprintf(r->tried + len, sizeof(r->tried) - len, "%s%s/%s", len ? "," : "", host, result);
}

/* Non-blocking connect(): EINPROGRESS, then poll() for writability and read SO_ERROR.
 * Returns 0 or an errno; *how says whether the kernel answered at once or in progress. */
static int connect_nonblock(int fd, const struct sockaddr *sa, socklen_t salen, int timeout_ms,
			    const char **how)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int flags, err = 0, n;
	socklen_t len = sizeof(err);

	*how = "";
	flags = fcntl(fd, F_GETFL, 0);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return errno;
	if (connect(fd, sa, salen) == 0)
		goto done; /* loopback may complete at once */
	if (errno != EINPROGRESS)
		return errno;
	*how = "EINPROGRESS>";
	fprintf(stderr, "  connect: EINPROGRESS, polling\n");
	n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return errno;
	if (n == 0)
		return ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	if (err)
		return err;
done:
	if (fcntl(fd, F_SETFL, flags) < 0) /* blocking again for the echo */
		return errno;
	return 0;
}

int tcp_connect(const char *host, const char *serv, const struct connect_opts *o,
		struct connect_result *r)
{
	struct addrinfo hints, *res, *ai;
	char addr[ADDRSTR_LEN], result[64];
	unsigned int port;
	int n, fd, err = 0, one = 1;
	const char *how;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = o->family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = o->ai_flags;

	n = getaddrinfo(host, serv, &hints, &res);
	if (n != 0) {
		r->gai_err = n;
		r->err = n == EAI_SYSTEM ? errno : 0;
		fprintf(stderr, "getaddrinfo(%s, %s, %s): %s\n", host, serv,
			family_name(o->family), gai_strerror(n));
		return -1;
	}

	for (ai = res; ai; ai = ai->ai_next) {
		r->attempts++;
		memcpy(&r->peer, ai->ai_addr, ai->ai_addrlen);
		r->peerlen = ai->ai_addrlen;
		sock_ntop(ai->ai_addr, addr, sizeof(addr), &port);
		fprintf(stderr, "attempt %d: %s socket, connect to %s port %u\n", r->attempts,
			family_name(ai->ai_family), addr, port);

		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			fprintf(stderr, "  socket: %s\n", strerror(err));
			append_tried(r, addr, errname(err));
			continue;
		}
		if (o->v6only &&
		    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
			err = errno;
			fprintf(stderr, "  setsockopt(IPV6_V6ONLY): %s\n", strerror(err));
			append_tried(r, addr, errname(err));
			close(fd);
			continue;
		}

		how = "";
		if (o->nonblock)
			err = connect_nonblock(fd, ai->ai_addr, ai->ai_addrlen, o->timeout_ms, &how);
		else
			err = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
		snprintf(result, sizeof(result), "%s%s", how, err ? errname(err) : "OK");
		append_tried(r, addr, result);
		if (err == 0) {
			fprintf(stderr, "  connected\n");
			r->fd = fd;
			break;
		}
		fprintf(stderr, "  connect: %s (%s)\n", strerror(err), errname(err));
		close(fd);
	}
	r->err = err;
	freeaddrinfo(res);
	return r->fd;
}

/* Send one line and read it back. Returns 0, an errno, or -1 for a wrong echo. */
static int echo_once(int fd, const char *prog)
{
	char out[128], in[128];
	size_t want, got = 0;
	ssize_t n;

	snprintf(out, sizeof(out), "hello from %s pid %d\n", prog, (int)getpid());
	want = strlen(out);
	if (write(fd, out, want) != (ssize_t)want)
		return errno ? errno : EIO;
	while (got < want) {
		n = read(fd, in + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return ECONNRESET; /* peer closed before echoing */
		got += n;
	}
	return memcmp(in, out, want) == 0 ? 0 : -1;
}

int client_report(const char *prog, const char *host, const char *serv,
		  struct connect_result *r)
{
	struct sockaddr_storage local;
	socklen_t locallen = sizeof(local);
	char peer[ADDRSTR_LEN], laddr[ADDRSTR_LEN];
	unsigned int pport, lport;
	struct timeval tv = { .tv_sec = 10 };
	int err;

	if (r->gai_err) {
		printf("failed gai=%s host=%s serv=%s pid=%d tid=%d attempts=0\n",
		       gai_errname(r->gai_err), host, serv, (int)getpid(), (int)gettid());
		return 1;
	}
	sock_ntop((struct sockaddr *)&r->peer, peer, sizeof(peer), &pport);
	if (r->fd < 0) {
		printf("failed errno=%s family=%s peer=%s port=%u wire=%s pid=%d tid=%d "
		       "attempts=%d tried=%s\n",
		       errname(r->err), family_name(r->peer.ss_family), peer, pport,
		       wire_of((struct sockaddr *)&r->peer), (int)getpid(), (int)gettid(),
		       r->attempts, r->tried);
		return 1;
	}

	if (getsockname(r->fd, (struct sockaddr *)&local, &locallen) < 0)
		memset(&local, 0, sizeof(local));
	sock_ntop((struct sockaddr *)&local, laddr, sizeof(laddr), &lport);
	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	err = echo_once(r->fd, prog);
	printf("connected family=%s peer=%s port=%u wire=%s local=%s lport=%u pid=%d tid=%d "
	       "attempts=%d tried=%s echo=%s\n",
	       family_name(r->peer.ss_family), peer, pport, wire_of((struct sockaddr *)&r->peer),
	       laddr, lport, (int)getpid(), (int)gettid(), r->attempts, r->tried,
	       err == 0 ? "ok" : err < 0 ? "mismatch" : errname(err));
	close(r->fd);
	r->fd = -1;
	return err == 0 ? 0 : 1;
}

int tcp_listen(int family, const char *serv, int v6only)
{
	struct addrinfo hints, *res, *ai;
	int n, fd = -1, on = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_PASSIVE;
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;

	n = getaddrinfo(NULL, serv, &hints, &res);
	if (n != 0) {
		fprintf(stderr, "getaddrinfo(NULL, %s): %s\n", serv, gai_strerror(n));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		/* Say it: the default comes from net.ipv6.bindv6only. */
		if (ai->ai_family == AF_INET6 && v6only >= 0 &&
		    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) {
			perror("setsockopt(IPV6_V6ONLY)");
			close(fd);
			fd = -1;
			continue;
		}
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0)
			break;
		perror("bind/listen");
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void echo_loop(int fd)
{
	char buf[4096];
	ssize_t n;
	struct timeval tv = { .tv_sec = 10 }; /* a stuck client does not hang the server */

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (write(fd, buf, n) != n)
			return;
	}
}

int tcp_serve(const char *prog, int family, int argc, char **argv)
{
	struct sockaddr_storage peer, local;
	socklen_t len;
	char paddr[ADDRSTR_LEN], laddr[ADDRSTR_LEN];
	unsigned int pport, lport;
	unsigned long count = 0, served = 0;
	int opt, lfd, fd, v6only = family == AF_INET6 ? 0 : -1;

	while ((opt = getopt(argc, argv, "n:6")) != -1) {
		switch (opt) {
		case 'n':
			count = parse_num("count", optarg, 0, 1000000);
			break;
		case '6':
			if (family != AF_INET6)
				goto usage;
			v6only = 1;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;

	signal(SIGPIPE, SIG_IGN);
	lfd = tcp_listen(family, argv[optind], v6only);
	if (lfd < 0) {
		say("failed listen port=%s", argv[optind]);
		return 1;
	}
	/* The readiness line: the tests wait for it instead of sleeping. */
	say("listening family=%s port=%s v6only=%d pid=%d", family_name(family), argv[optind],
	    v6only > 0, (int)getpid());

	while (count == 0 || served < count) {
		len = sizeof(peer);
		fd = accept(lfd, (struct sockaddr *)&peer, &len);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("accept");
			return 1;
		}
		served++;
		sock_ntop((struct sockaddr *)&peer, paddr, sizeof(paddr), &pport);
		len = sizeof(local);
		if (getsockname(fd, (struct sockaddr *)&local, &len) < 0)
			memset(&local, 0, sizeof(local));
		sock_ntop((struct sockaddr *)&local, laddr, sizeof(laddr), &lport);
		say("accepted %s port %u wire=%s local=%s lport=%u pid=%d", paddr, pport,
		    wire_of((struct sockaddr *)&peer), laddr, lport, (int)getpid());
		echo_loop(fd);
		close(fd);
	}
	close(lfd);
	return 0;

usage:
	fprintf(stderr,
		"usage: %s [-n COUNT] %sPORT\n"
		"  echo server on the %s wildcard address; exits after COUNT connections\n"
		"  (default 0: never). Prints 'listening ...' when ready, then\n"
		"  'accepted ADDR port N ...' per client.%s\n",
		prog, family == AF_INET6 ? "[-6] " : "", family == AF_INET6 ? "::" : "0.0.0.0",
		family == AF_INET6 ? "\n  IPV6_V6ONLY is set to 0, or to 1 with -6." : "");
	return 2;
}
