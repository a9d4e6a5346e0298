// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * churn: many short-lived processes, one IPv4-mapped connect each (test_lifecycle.sh).
 *
 *   churn [-j JOBS] N PORT
 *
 * Listens on [::]:PORT (AF_INET6, dual stack) and accepts in a thread; forks N children, at
 * most JOBS (default 64) at a time, each of which connects an AF_INET6 TCP socket to
 * ::ffff:127.0.0.1:PORT once and exits (0 if the connect worked). Prints
 * "churn children=N connected=C failed=F accepted=A first_pid=P last_pid=Q" when all are done.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

static int listen_fd;
static volatile unsigned long accepted;

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		__atomic_add_fetch(&accepted, 1, __ATOMIC_RELAXED);
		close(fd);
	}
}

static int child(unsigned int port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int fd = socket(AF_INET6, SOCK_STREAM, 0);

	inet_pton(AF_INET6, "::ffff:127.0.0.1", &sa.sin6_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "churn: connect: %s\n", strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	unsigned long n, jobs = 64, running = 0, connected = 0, failed = 0, started = 0;
	int opt, zero = 0, one = 1;
	unsigned int port;
	pid_t first = 0, last = 0;
	pthread_t th;

	while ((opt = getopt(argc, argv, "j:")) != -1) {
		if (opt != 'j')
			goto usage;
		jobs = parse_num("JOBS", optarg, 1, 1024);
	}
	if (argc - optind != 2)
		goto usage;
	n = parse_num("N", argv[optind], 1, 10000000);
	port = parse_num("PORT", argv[optind + 1], 1, 65535);
	sa.sin6_port = htons(port);
	listen_fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (listen_fd < 0 ||
	    setsockopt(listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(listen_fd, 4096)) {
		fprintf(stderr, "churn: listen on port %u: %s\n", port, strerror(errno));
		return 2;
	}
	if (pthread_create(&th, NULL, acceptor, NULL)) {
		fprintf(stderr, "churn: pthread_create failed\n");
		return 2;
	}
	while (started < n || running) {
		int status;
		pid_t pid;

		if (started < n && running < jobs) {
			pid = fork();
			if (pid < 0) {
				fprintf(stderr, "churn: fork: %s\n", strerror(errno));
				return 2;
			}
			if (pid == 0)
				_exit(child(port));
			if (!first)
				first = pid;
			last = pid;
			started++;
			running++;
			continue;
		}
		pid = wait(&status);
		if (pid < 0)
			break;
		running--;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			connected++;
		else
			failed++;
	}
	/* every connection is queued once connect() returned: wait until all are accepted */
	for (int i = 0; i < 500 && __atomic_load_n(&accepted, __ATOMIC_RELAXED) < connected; i++)
		usleep(10000);
	printf("churn children=%lu connected=%lu failed=%lu accepted=%lu first_pid=%d last_pid=%d\n",
	       started, connected, failed, __atomic_load_n(&accepted, __ATOMIC_RELAXED), (int)first,
	       (int)last);
	return failed ? 1 : 0;
usage:
	fprintf(stderr, "usage: %s [-j JOBS] N PORT\n", argv[0]);
	return 2;
}
