// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * gai: resolve a name through the C library it is linked with, then reach the first answer;
 * built for the C libraries the resolver's uprobes must follow besides the one dstrace runs
 * with: gai32 (gcc -m32: i386 glibc, its ILP32 struct addrinfo and stack-passed arguments)
 * and gai-musl (musl-gcc: musl, as in an Alpine container). Standalone (no common.c), so
 * that any C library builds it.
 *
 *   gai [-u] [-w] [-s MS] NAME PORT
 *                        getaddrinfo(NAME, PORT) for AF_INET6 with AI_V4MAPPED, then a
 *                        blocking TCP connect to the first answer (-u: one UDP datagram of
 *                        20 bytes); -w: first read a line from standard input (the test
 *                        says when to go on); -s: first sleep MS milliseconds
 *
 * Prints "result=ok|ERRNO raddr=ADDR rport=PORT pid=N" (the call's result, errno's number
 * for a failure), or "result=EAI_<n> pid=N" if the name has no answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int udp = 0, wait = 0, sleep_ms = 0, fd, err, ret;
	struct addrinfo hints, *res;
	const struct sockaddr_in6 *sa;
	char addr[INET6_ADDRSTRLEN], buf[20] = { 0 };

	for (; argc > 3 && argv[1][0] == '-'; argc--, argv++) {
		if (!strcmp(argv[1], "-u"))
			udp = 1;
		else if (!strcmp(argv[1], "-w"))
			wait = 1;
		else if (!strcmp(argv[1], "-s") && argc > 4)
			sleep_ms = atoi((argc--, ++argv)[1]);
		else
			break;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: gai [-u] [-w] [-s MS] NAME PORT\n");
		return 2;
	}
	if (wait && !fgets(buf, sizeof(buf), stdin)) {
		fprintf(stderr, "gai: standard input closed\n");
		return 2;
	}
	if (sleep_ms > 0)
		usleep((useconds_t)sleep_ms * 1000);
	memset(buf, 0, sizeof(buf));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET6;
	hints.ai_flags = AI_V4MAPPED;
	hints.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM;
	err = getaddrinfo(argv[1], argv[2], &hints, &res);
	if (err) {
		printf("result=EAI_%d pid=%d\n", err, (int)getpid());
		return 1;
	}
	sa = (const struct sockaddr_in6 *)res->ai_addr;
	inet_ntop(AF_INET6, &sa->sin6_addr, addr, sizeof(addr));
	fd = socket(AF_INET6, hints.ai_socktype, 0);
	if (fd < 0) {
		perror("gai: socket");
		return 1;
	}
	if (udp)
		ret = sendto(fd, buf, sizeof(buf), 0, res->ai_addr, res->ai_addrlen) < 0 ? -1 : 0;
	else
		ret = connect(fd, res->ai_addr, res->ai_addrlen);
	if (ret)
		printf("result=%d raddr=%s rport=%u pid=%d\n", errno, addr, ntohs(sa->sin6_port),
		       (int)getpid());
	else
		printf("result=ok raddr=%s rport=%u pid=%d\n", addr, ntohs(sa->sin6_port),
		       (int)getpid());
	freeaddrinfo(res);
	close(fd);
	return 0;
}
