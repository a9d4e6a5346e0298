#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""resolve: resolve a name through the C library's getaddrinfo(), then connect or send to
each answer in turn until one works, as clients do.

  resolve.py tcp|udp NAME PORT [--family inet6|unspec] [--v4mapped] [--all] [--map]

--family inet6 (default) asks AF_INET6; with --v4mapped (AI_V4MAPPED) and --all (AI_ALL)
the C library maps A records to ::ffff:a.b.c.d itself. --family unspec asks for both
families; --map then maps each IPv4 answer in the program (as Java does) and uses an AF_INET6
socket for every answer. TCP connects; UDP connects nothing, it sends one datagram with
sendto(). Prints one line per attempt: "try ADDR ok" or "try ADDR error ERRNO_NAME", then
"done ADDR" (the one that worked) or "done none", and exits 0 if one worked.
"""
import errno
import socket
import sys


def main():
    args = sys.argv[1:]
    if len(args) < 3 or args[0] not in ("tcp", "udp"):
        print(__doc__, file=sys.stderr)
        return 2
    proto, name, port = args[0], args[1], int(args[2])
    family = socket.AF_INET6
    flags = 0
    do_map = False
    rest = args[3:]
    i = 0
    while i < len(rest):
        if rest[i] == "--family":
            family = {"inet6": socket.AF_INET6, "unspec": socket.AF_UNSPEC}[rest[i + 1]]
            i += 2
            continue
        if rest[i] == "--v4mapped":
            flags |= socket.AI_V4MAPPED
        elif rest[i] == "--all":
            flags |= socket.AI_ALL
        elif rest[i] == "--map":
            do_map = True
        else:
            print("unknown option " + rest[i], file=sys.stderr)
            return 2
        i += 1
    stype = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    answers = socket.getaddrinfo(name, port, family, stype, 0, flags)
    for fam, _, _, _, sa in answers:
        addr = sa[0]
        if fam == socket.AF_INET and do_map:
            fam, addr = socket.AF_INET6, "::ffff:" + addr
        s = socket.socket(fam, stype)
        try:
            s.settimeout(5)
            if proto == "tcp":
                s.connect((addr, port))
            else:
                s.sendto(b"resolve", (addr, port))
            print("try %s ok" % addr, flush=True)
            print("done %s" % addr, flush=True)
            return 0
        except OSError as e:
            print("try %s error %s" % (addr, errno.errorcode.get(e.errno, str(e.errno))),
                  flush=True)
        finally:
            s.close()
    print("done none", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
