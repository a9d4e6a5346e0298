// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcpcli6 [-6|--v6only] HOST PORT: an IPv6 TCP client written the way UNP writes one.
 * getaddrinfo() with AF_INET6 and AI_V4MAPPED | AI_ALL returns the AAAA records first and
 * the A records as ::ffff:a.b.c.d; the client walks the list until a connect() works.
 * With -6 every socket gets IPV6_V6ONLY=1 first, so a mapped address fails (ENETUNREACH).
 * Prints "connected family=inet6 peer=::ffff:192.0.2.2 ... wire=ipv4 ..." or
 * "failed errno=ENETUNREACH ..." on stdout, each attempt on stderr.
 */
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>

#include "common.h"

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "v6only", no_argument, NULL, '6' },
		{ NULL, 0, NULL, 0 },
	};
	struct connect_opts opts = { .family = AF_INET6, .ai_flags = AI_V4MAPPED | AI_ALL };
	struct connect_result res;
	int opt;

	while ((opt = getopt_long(argc, argv, "6", longopts, NULL)) != -1) {
		if (opt != '6')
			goto usage;
		opts.v6only = true;
	}
	if (optind != argc - 2)
		goto usage;
	tcp_connect(argv[optind], argv[optind + 1], &opts, &res);
	return client_report("tcpcli6", argv[optind], argv[optind + 1], &res);
usage:
	fprintf(stderr, "usage: %s [-6|--v6only] HOST PORT\n", argv[0]);
	return 2;
}
