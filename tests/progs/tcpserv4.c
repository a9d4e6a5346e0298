// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcpserv4 [-n COUNT] PORT: iterative IPv4 echo server on 0.0.0.0 (AF_INET socket).
 * Prints "listening ..." when ready, "accepted 192.0.2.10 port N ..." per client, and
 * exits 0 after COUNT connections.
 */
#include <sys/socket.h>

#include "common.h"

int main(int argc, char **argv)
{
	return tcp_serve("tcpserv4", AF_INET, argc, argv);
}
