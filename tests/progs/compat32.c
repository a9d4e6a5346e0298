// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * compat32: a 32-bit (i386) program's mapped socket calls, built with -m32: on a 64-bit x86
 * kernel they are ia32 compat calls, which the kernel's syscall tracepoints skip. Each call
 * is made the way a flag says: -s through socketcall(2) (what i386's glibc and older
 * programs use), else as the direct ia32 syscall (bind, connect, accept4, sendto, sendmsg,
 * sendmmsg), or, for serve's "libc", through glibc's accept().
 *
 *   compat32 bind [-s] ADDR PORT V6ONLY      bind an AF_INET6 UDP socket (V6ONLY 0 or 1)
 *   compat32 connect [-s] ADDR PORT V6ONLY   blocking TCP connect of an AF_INET6 socket
 *   compat32 serve -m libc|accept4|socketcall PORT N
 *                                            accept N clients on [::]:PORT (IPV6_V6ONLY 0)
 *   compat32 send -m sendto|sendmsg|sendmmsg [-s] [-n N] ADDR PORT V6ONLY
 *                                            N datagrams of 20 bytes (sendmmsg: N in one call)
 *   compat32 recv [-m libc|recvfrom|recvmsg|recvmmsg|read] PORT N
 *                                            N datagrams on [::]:PORT: glibc's recvfrom()
 *                                            (default), or the direct ia32 call (-s: through
 *                                            socketcall(2)), or read(2) (no source)
 *
 * Each prints one line: "result=ok|ERRNAME ... pid=N"; serve and recv first print
 * "listening port=P pid=N", then "accepted raddr=A rport=P" or "received ..." per peer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/net.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

#if !defined(__i386__)
#error "compat32 is built for i386 (-m32): its calls are the ia32 ones"
#endif

static bool via_socketcall;

/* socketcall(2): the call and its arguments, as i386 programs pass them. */
static long sockcall(int call, unsigned long a0, unsigned long a1, unsigned long a2,
		     unsigned long a3, unsigned long a4, unsigned long a5)
{
	unsigned long args[6] = { a0, a1, a2, a3, a4, a5 };

	return syscall(SYS_socketcall, call, args);
}

static int do_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (via_socketcall)
		return (int)sockcall(SYS_BIND, fd, (unsigned long)sa, len, 0, 0, 0);
	return (int)syscall(SYS_bind, fd, sa, len);
}

static int do_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (via_socketcall)
		return (int)sockcall(SYS_CONNECT, fd, (unsigned long)sa, len, 0, 0, 0);
	return (int)syscall(SYS_connect, fd, sa, len);
}

static void parse_addr(const char *addr, const char *port, struct sockaddr_in6 *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	sa->sin6_port = htons((uint16_t)parse_num("port", port, 1, 65535));
	if (inet_pton(AF_INET6, addr, &sa->sin6_addr) != 1) {
		fprintf(stderr, "compat32: not an IPv6 address: %s\n", addr);
		exit(2);
	}
}

static int socket6(int type, const char *v6only)
{
	int fd = socket(AF_INET6, type, 0), on = (int)parse_num("v6only", v6only, 0, 1);

	if (fd < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on))) {
		perror("compat32: socket");
		exit(1);
	}
	return fd;
}

static unsigned int local_port(int fd)
{
	struct sockaddr_in6 me;
	socklen_t len = sizeof(me);

	if (getsockname(fd, (struct sockaddr *)&me, &len))
		return 0;
	return ntohs(me.sin6_port);
}

static const char *result(int ret)
{
	return ret < 0 ? errname(errno) : "ok";
}

static int cmd_bind(char **argv)
{
	struct sockaddr_in6 sa;
	int fd = socket6(SOCK_DGRAM, argv[2]), ret;

	parse_addr(argv[0], argv[1], &sa);
	ret = do_bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	say("result=%s pid=%d", result(ret), (int)getpid());
	close(fd);
	return 0;
}

static int cmd_connect(char **argv)
{
	struct sockaddr_in6 sa;
	int fd = socket6(SOCK_STREAM, argv[2]), ret;

	parse_addr(argv[0], argv[1], &sa);
	ret = do_connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (ret == 0)
		say("result=ok lport=%u pid=%d", local_port(fd), (int)getpid());
	else
		say("result=%s pid=%d", errname(errno), (int)getpid());
	close(fd);
	return 0;
}

static int cmd_serve(const char *how, char **argv)
{
	struct sockaddr_in6 any = { .sin6_family = AF_INET6 }, peer;
	unsigned long n = parse_num("count", argv[1], 1, 1000);
	int lfd = socket6(SOCK_STREAM, "0"), fd, one = 1;
	char host[ADDRSTR_LEN];
	unsigned int port;
	socklen_t len;

	any.sin6_port = htons((uint16_t)parse_num("port", argv[0], 1, 65535));
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&any, sizeof(any)) || listen(lfd, 16)) {
		perror("compat32: listen");
		return 1;
	}
	say("listening port=%s pid=%d", argv[0], (int)getpid());
	for (unsigned long i = 0; i < n; i++) {
		len = sizeof(peer);
		if (!strcmp(how, "libc"))
			fd = accept(lfd, (struct sockaddr *)&peer, &len);
		else if (!strcmp(how, "accept4"))
			fd = (int)syscall(SYS_accept4, lfd, &peer, &len, 0);
		else
			fd = (int)sockcall(SYS_ACCEPT, lfd, (unsigned long)&peer, (unsigned long)&len,
					   0, 0, 0);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED) {
				i--;
				continue;
			}
			perror("compat32: accept");
			return 1;
		}
		sock_ntop((struct sockaddr *)&peer, host, sizeof(host), &port);
		say("accepted raddr=%s rport=%u", host, port);
		close(fd);
	}
	close(lfd);
	return 0;
}

#define DGRAM_LEN 20

static int cmd_send(const char *how, unsigned long n, char **argv)
{
	struct sockaddr_in6 sa;
	char buf[DGRAM_LEN];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct mmsghdr vec[64];
	int fd = socket6(SOCK_DGRAM, argv[2]);
	long ret = 0;

	memset(buf, 'x', sizeof(buf));
	parse_addr(argv[0], argv[1], &sa);
	memset(vec, 0, sizeof(vec));
	for (unsigned long i = 0; i < n && i < 64; i++) {
		vec[i].msg_hdr.msg_name = &sa;
		vec[i].msg_hdr.msg_namelen = sizeof(sa);
		vec[i].msg_hdr.msg_iov = &iov;
		vec[i].msg_hdr.msg_iovlen = 1;
	}
	if (!strcmp(how, "sendmmsg")) {
		if (n > 64)
			n = 64;
		ret = via_socketcall ? sockcall(SYS_SENDMMSG, fd, (unsigned long)vec, n, 0, 0, 0)
				     : syscall(SYS_sendmmsg, fd, vec, n, 0);
	} else {
		for (unsigned long i = 0; i < n && ret >= 0; i++) {
			if (!strcmp(how, "sendto"))
				ret = via_socketcall ? sockcall(SYS_SENDTO, fd, (unsigned long)buf,
								sizeof(buf), 0, (unsigned long)&sa,
								sizeof(sa))
						     : syscall(SYS_sendto, fd, buf, sizeof(buf), 0, &sa,
							       sizeof(sa));
			else
				ret = via_socketcall ? sockcall(SYS_SENDMSG, fd,
								(unsigned long)&vec[0].msg_hdr, 0, 0,
								0, 0)
						     : syscall(SYS_sendmsg, fd, &vec[0].msg_hdr, 0);
		}
	}
	if (ret < 0)
		say("result=%s pid=%d", errname(errno), (int)getpid());
	else
		say("result=ok lport=%u pid=%d", local_port(fd), (int)getpid());
	close(fd);
	return 0;
}

/* One datagram into buf, the way how says; its source into peer (none for read). */
static ssize_t recv_one(const char *how, int fd, char *buf, size_t size, struct sockaddr_in6 *peer,
			socklen_t *len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct mmsghdr m = { .msg_hdr = { .msg_name = peer, .msg_namelen = *len, .msg_iov = &iov,
					  .msg_iovlen = 1 } };
	long ret;

	if (!strcmp(how, "recvfrom"))
		return via_socketcall ? sockcall(SYS_RECVFROM, fd, (unsigned long)buf, size, 0,
						 (unsigned long)peer, (unsigned long)len)
				      : syscall(SYS_recvfrom, fd, buf, size, 0, peer, len);
	if (!strcmp(how, "read")) {
		*len = 0;
		return syscall(SYS_read, fd, buf, size);
	}
	if (!strcmp(how, "recvmsg"))
		ret = via_socketcall ? sockcall(SYS_RECVMSG, fd, (unsigned long)&m.msg_hdr, 0, 0, 0, 0)
				     : syscall(SYS_recvmsg, fd, &m.msg_hdr, 0);
	else if (!strcmp(how, "recvmmsg"))
		ret = via_socketcall ? sockcall(SYS_RECVMMSG, fd, (unsigned long)&m, 1, 0, 0, 0)
				     : syscall(SYS_recvmmsg, fd, &m, 1, 0, NULL);
	else
		return recvfrom(fd, buf, size, 0, (struct sockaddr *)peer, len);
	if (ret < 0)
		return ret;
	*len = m.msg_hdr.msg_namelen;
	return !strcmp(how, "recvmmsg") ? (ssize_t)m.msg_len : ret;
}

static int cmd_recv(const char *how, char **argv)
{
	struct sockaddr_in6 any = { .sin6_family = AF_INET6 }, peer;
	unsigned long n = parse_num("count", argv[1], 1, 100000);
	int fd = socket6(SOCK_DGRAM, "0");
	char buf[2048], host[ADDRSTR_LEN];
	unsigned int port;
	socklen_t len;
	ssize_t got;

	any.sin6_port = htons((uint16_t)parse_num("port", argv[0], 1, 65535));
	if (bind(fd, (struct sockaddr *)&any, sizeof(any))) {
		perror("compat32: bind");
		return 1;
	}
	say("listening port=%s pid=%d", argv[0], (int)getpid());
	for (unsigned long i = 0; i < n; i++) {
		len = sizeof(peer);
		got = recv_one(how, fd, buf, sizeof(buf), &peer, &len);
		if (got < 0) {
			perror("compat32: recv");
			return 1;
		}
		if (len) {
			sock_ntop((struct sockaddr *)&peer, host, sizeof(host), &port);
			say("received len=%zd raddr=%s rport=%u", got, host, port);
		} else {
			say("received len=%zd", got);
		}
	}
	close(fd);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: compat32 bind|connect [-s] ADDR PORT V6ONLY\n"
			"       compat32 serve -m libc|accept4|socketcall PORT N\n"
			"       compat32 send -m sendto|sendmsg|sendmmsg [-s] [-n N] ADDR PORT V6ONLY\n"
			"       compat32 recv [-m libc|recvfrom|recvmsg|recvmmsg|read] [-s] PORT N\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd, *how = "";
	unsigned long n = 1;
	int opt;

	if (argc < 2)
		return usage();
	cmd = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "sm:n:")) != -1) {
		switch (opt) {
		case 's':
			via_socketcall = true;
			break;
		case 'm':
			how = optarg;
			break;
		case 'n':
			n = parse_num("count", optarg, 1, 100000);
			break;
		default:
			return usage();
		}
	}
	argv += optind;
	argc -= optind;
	if (!strcmp(cmd, "bind") && argc == 3)
		return cmd_bind(argv);
	if (!strcmp(cmd, "connect") && argc == 3)
		return cmd_connect(argv);
	if (!strcmp(cmd, "serve") && argc == 2 &&
	    (!strcmp(how, "libc") || !strcmp(how, "accept4") || !strcmp(how, "socketcall")))
		return cmd_serve(how, argv);
	if (!strcmp(cmd, "send") && argc == 3 &&
	    (!strcmp(how, "sendto") || !strcmp(how, "sendmsg") || !strcmp(how, "sendmmsg")))
		return cmd_send(how, n, argv);
	if (!strcmp(cmd, "recv") && argc == 2 &&
	    (!*how || !strcmp(how, "libc") || !strcmp(how, "recvfrom") || !strcmp(how, "recvmsg") ||
	     !strcmp(how, "recvmmsg") || !strcmp(how, "read")))
		return cmd_recv(how, argv);
	return usage();
}
