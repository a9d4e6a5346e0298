// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcpserv6 [-n COUNT] [-6] PORT: iterative IPv6 echo server on :: (AF_INET6 socket) with
 * IPV6_V6ONLY explicitly 0, so IPv4 clients are accepted with ::ffff:a.b.c.d addresses
 * ("accepted ::ffff:192.0.2.10 port N wire=ipv4 ..."). -6 sets IPV6_V6ONLY=1 instead.
 */
#include <sys/socket.h>

#include "common.h"

int main(int argc, char **argv)
{
	return tcp_serve("tcpserv6", AF_INET6, argc, argv);
}
