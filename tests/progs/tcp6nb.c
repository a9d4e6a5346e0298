// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcp6nb [-6] [-t MS] HOST PORT: tcpcli6 with non-blocking connect() (UNP 16.3): O_NONBLOCK,
 * connect() returns EINPROGRESS, poll() for writability, SO_ERROR gives the result.
 * The "tried" list shows it: ::ffff:192.0.2.2/EINPROGRESS>OK.
 */
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
	struct connect_opts opts = {
		.family = AF_INET6,
		.ai_flags = AI_V4MAPPED | AI_ALL,
		.nonblock = true,
		.timeout_ms = 5000,
	};
	struct connect_result res;
	int opt;

	while ((opt = getopt(argc, argv, "6t:")) != -1) {
		switch (opt) {
		case '6':
			opts.v6only = true;
			break;
		case 't':
			opts.timeout_ms = (int)parse_num("timeout", optarg, 1, 600000);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 2)
		goto usage;
	tcp_connect(argv[optind], argv[optind + 1], &opts, &res);
	return client_report("tcp6nb", argv[optind], argv[optind + 1], &res);
usage:
	fprintf(stderr, "usage: %s [-6] [-t TIMEOUT_MS] HOST PORT\n", argv[0]);
	return 2;
}
