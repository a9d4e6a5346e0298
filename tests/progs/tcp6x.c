// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcp6x: TCP over AF_INET6 sockets in the shapes tcpcli6 and tcpserv6 do not take.
 *
 *   tcp6x connect [-n COUNT] [-6] HOST PORT
 *     COUNT sequential connections from one process, each resolved and connected the way
 *     tcpcli6 does (AF_INET6, AI_V4MAPPED | AI_ALL, walk the list) and echoed once. One
 *     tcpcli6-style result line per connection ("connected ... lport=N pid=P tid=T ...").
 *
 *   tcp6x serve [-n COUNT] [-D] [-A] [-F|-T] PORT
 *     Echo server on [::]:PORT (AF_INET6, IPV6_V6ONLY=0; -D leaves IPV6_V6ONLY at the
 *     namespace's default, net.ipv6.bindv6only). Exits after COUNT connections (default 1).
 *     -A accepts with accept4(SOCK_CLOEXEC) instead of accept().
 *     -F: the listener is created by this process, the connections are accepted by a
 *     forked child (the parent only waits for it); -T: they are accepted by a second
 *     thread. Prints "listening ... pid=P", "acceptor pid=P tid=T" (the process and thread
 *     that will call accept()), then "accepted ADDR port N ... pid=P tid=T" per client.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static void usage(void)
{
	fprintf(stderr, "usage: tcp6x connect [-n COUNT] [-6] HOST PORT\n"
			"       tcp6x serve [-n COUNT] [-D] [-A] [-F|-T] PORT\n");
}

static int do_connect(int argc, char **argv)
{
	struct connect_opts opts = { .family = AF_INET6, .ai_flags = AI_V4MAPPED | AI_ALL };
	struct connect_result res;
	unsigned long count = 1, ok = 0;
	int opt;

	while ((opt = getopt(argc, argv, "n:6")) != -1) {
		switch (opt) {
		case 'n': count = parse_num("count", optarg, 1, 100000); break;
		case '6': opts.v6only = true; break;
		default: usage(); return 2;
		}
	}
	if (optind != argc - 2) {
		usage();
		return 2;
	}
	for (unsigned long i = 0; i < count; i++) {
		tcp_connect(argv[optind], argv[optind + 1], &opts, &res);
		if (client_report("tcp6x", argv[optind], argv[optind + 1], &res) == 0)
			ok++;
		fflush(stdout);
	}
	printf("done connections=%lu ok=%lu pid=%d\n", count, ok, (int)getpid());
	return ok == count ? 0 : 1;
}

struct server {
	int lfd;
	unsigned long count;
	bool accept4;
	int status;
};

static void echo_conn(int fd)
{
	struct timeval tv = { .tv_sec = 10 };
	char buf[4096];
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || write(fd, buf, n) != n)
			return;
	}
}

static void *accept_loop(void *arg)
{
	struct server *s = arg;
	struct sockaddr_storage peer;
	char addr[ADDRSTR_LEN];
	unsigned int port;
	unsigned long served = 0;
	socklen_t len;
	int fd;

	say("acceptor pid=%d tid=%d call=%s", (int)getpid(), (int)gettid(),
	    s->accept4 ? "accept4" : "accept");
	while (served < s->count) {
		len = sizeof(peer);
		fd = s->accept4 ? accept4(s->lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC)
				: accept(s->lfd, (struct sockaddr *)&peer, &len);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("accept");
			s->status = 1;
			return NULL;
		}
		served++;
		sock_ntop((struct sockaddr *)&peer, addr, sizeof(addr), &port);
		say("accepted %s port %u wire=%s pid=%d tid=%d", addr, port,
		    wire_of((struct sockaddr *)&peer), (int)getpid(), (int)gettid());
		echo_conn(fd);
		close(fd);
	}
	s->status = 0;
	return NULL;
}

static int do_serve(int argc, char **argv)
{
	struct server s = { .count = 1, .status = 1 };
	bool fork_child = false, thread = false;
	int opt, v6only = 0;

	while ((opt = getopt(argc, argv, "n:DAFT")) != -1) {
		switch (opt) {
		case 'n': s.count = parse_num("count", optarg, 1, 1000000); break;
		case 'D': v6only = -1; break;
		case 'A': s.accept4 = true; break;
		case 'F': fork_child = true; break;
		case 'T': thread = true; break;
		default: usage(); return 2;
		}
	}
	if (optind != argc - 1 || (fork_child && thread)) {
		usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	s.lfd = tcp_listen(AF_INET6, argv[optind], v6only);
	if (s.lfd < 0) {
		say("failed listen port=%s", argv[optind]);
		return 1;
	}
	{
		int cur = -1;
		socklen_t len = sizeof(cur);

		getsockopt(s.lfd, IPPROTO_IPV6, IPV6_V6ONLY, &cur, &len);
		say("listening family=inet6 port=%s v6only=%d pid=%d", argv[optind], cur,
		    (int)getpid());
	}

	if (fork_child) {
		pid_t child = fork();
		int st;

		if (child < 0) {
			perror("fork");
			return 1;
		}
		if (child == 0) {
			accept_loop(&s);
			fflush(stdout);
			_exit(s.status);
		}
		close(s.lfd); /* only the child holds the listener now */
		while (waitpid(child, &st, 0) < 0 && errno == EINTR)
			;
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	if (thread) {
		pthread_t t;
		int err = pthread_create(&t, NULL, accept_loop, &s);

		if (err) {
			fprintf(stderr, "pthread_create: %s\n", strerror(err));
			return 1;
		}
		pthread_join(t, NULL);
		return s.status;
	}
	accept_loop(&s);
	return s.status;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "connect") == 0)
		return do_connect(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return do_serve(argc - 1, argv + 1);
	usage();
	return 2;
}
