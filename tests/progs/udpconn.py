#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""udpconn: an AF_INET6 UDP socket connected to an IPv4 peer through its mapped address,
which then also names destinations of its own, as a program that reuses a socket might.

  udpconn.py V4ADDR PORT V6ADDR PORT6 N

Connects to [::ffff:V4ADDR]:PORT; sendto() [V6ADDR]:PORT6 three times, which the kernel
refuses (EAFNOSUPPORT: the socket's source is an IPv4 one); sends N datagrams of 7 bytes
with send(), no address (to the connected peer); then one of 70 000 bytes, which fails
before anything is sent (EMSGSIZE). Prints one line:
"lport=P native=ERRNO sent=N big=ERRNO", and exits 0 if everything went so.
"""
import errno
import socket
import sys


def err_name(call):
    try:
        call()
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return "none"


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    v4, port, v6, port6, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), \
        int(sys.argv[5])
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.connect(("::ffff:" + v4, port))
    native = set(err_name(lambda: s.sendto(b"n" * 11, (v6, port6))) for _ in range(3))
    sent = sum(1 for _ in range(n) if s.send(b"y" * 7) == 7)
    big = err_name(lambda: s.send(b"q" * 70000))
    native_s = ",".join(sorted(native))
    print(f"lport={s.getsockname()[1]} native={native_s} sent={sent} big={big}", flush=True)
    return 0 if native_s == "EAFNOSUPPORT" and sent == n and big == "EMSGSIZE" else 1


if __name__ == "__main__":
    sys.exit(main())
