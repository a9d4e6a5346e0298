// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcp6mt [-6] [-n NAME] HOST PORT: tcpcli6 whose resolve, connect() and echo run in a
 * second pthread, so an event's tid differs from its pid. -n names that thread NAME
 * (pthread_setname_np, at most 15 bytes: its comm; the process keeps its name). The result
 * line carries pid= (the process) and tid= (gettid() of the connecting thread); stderr also
 * says the main tid.
 */
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

struct job {
	const char *host, *serv, *name;
	struct connect_opts opts;
	int status;
};

static void *client_thread(void *arg)
{
	struct job *job = arg;
	struct connect_result res;

	if (job->name && pthread_setname_np(pthread_self(), job->name)) {
		fprintf(stderr, "pthread_setname_np: cannot name the thread %s\n", job->name);
		return NULL;
	}
	fprintf(stderr, "connect thread: pid=%d tid=%d\n", (int)getpid(), (int)gettid());
	tcp_connect(job->host, job->serv, &job->opts, &res);
	job->status = client_report("tcp6mt", job->host, job->serv, &res);
	return NULL;
}

int main(int argc, char **argv)
{
	struct job job = {
		.opts = { .family = AF_INET6, .ai_flags = AI_V4MAPPED | AI_ALL },
		.status = 1,
	};
	pthread_t thread;
	int opt, err;

	while ((opt = getopt(argc, argv, "6n:")) != -1) {
		if (opt == '6')
			job.opts.v6only = true;
		else if (opt == 'n')
			job.name = optarg;
		else
			goto usage;
	}
	if (optind != argc - 2)
		goto usage;
	job.host = argv[optind];
	job.serv = argv[optind + 1];

	fprintf(stderr, "main thread: pid=%d tid=%d\n", (int)getpid(), (int)gettid());
	err = pthread_create(&thread, NULL, client_thread, &job);
	if (err) {
		fprintf(stderr, "pthread_create: %s\n", strerror(err));
		return 1;
	}
	pthread_join(thread, NULL);
	fflush(stdout);
	return job.status;
usage:
	fprintf(stderr, "usage: %s [-6] [-n NAME] HOST PORT\n", argv[0]);
	return 2;
}
