// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcpcli4 HOST PORT: an IPv4 TCP client. getaddrinfo() with hints.ai_family = AF_INET
 * (A records only), connect to the first address that works, send a line, read its echo.
 * Prints "connected family=inet peer=... wire=ipv4 ..." or "failed ..." on stdout.
 */
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>

#include "common.h"

int main(int argc, char **argv)
{
	struct connect_opts opts = { .family = AF_INET };
	struct connect_result res;

	if (argc != 3) {
		fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
		return 2;
	}
	tcp_connect(argv[1], argv[2], &opts, &res);
	return client_report("tcpcli4", argv[1], argv[2], &res);
}
