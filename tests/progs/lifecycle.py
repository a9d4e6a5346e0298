#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Processes whose life makes per-process accounting hard (test_lifecycle.sh).

  lifecycle.py threads PORT N SECONDS
      One process: a listener on [::]:PORT (AF_INET6, dual stack) accepting in one thread,
      and an I/O thread that names itself "io-worker" (prctl(PR_SET_NAME), as tokio and Java
      pools do) and makes N connects to ::ffff:127.0.0.1:PORT spread over SECONDS.
      Prints "threads pid=P connected=N accepted=A".

  lifecycle.py exec PORT PROGRAM ARGS...
      One connect to ::ffff:127.0.0.1:PORT (a listener of someone else's), then, 1.5 s later,
      exec()s PROGRAM ARGS in the same process. Prints "exec pid=P connected=1" first.

  lifecycle.py once PORT
      One connect to ::ffff:127.0.0.1:PORT, then exits. Prints "once pid=P connected=1".
"""
import ctypes
import os
import socket
import sys
import threading
import time

PR_SET_NAME = 15


def connect_once(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.connect(("::ffff:127.0.0.1", port))
    s.close()


def threads(port, n, seconds):
    lsock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("::", port))
    lsock.listen(64)
    accepted = []

    def acceptor():
        while len(accepted) < n:
            c, _ = lsock.accept()
            accepted.append(1)
            c.close()

    done = []

    def io_worker():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_NAME, b"io-worker", 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
        for i in range(n):
            connect_once(port)
            done.append(1)
            if i + 1 < n:
                time.sleep(seconds / (n - 1))

    ta = threading.Thread(target=acceptor, daemon=True)
    ta.start()
    tw = threading.Thread(target=io_worker)
    tw.start()
    tw.join()
    deadline = time.time() + 5
    while len(accepted) < n and time.time() < deadline:
        time.sleep(0.01)
    print(f"threads pid={os.getpid()} connected={len(done)} accepted={len(accepted)}", flush=True)


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "threads":
        threads(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "exec":
        connect_once(int(sys.argv[2]))
        print(f"exec pid={os.getpid()} connected=1", flush=True)
        time.sleep(1.5)
        os.execv(sys.argv[3], sys.argv[3:])
    elif len(sys.argv) == 3 and sys.argv[1] == "once":
        connect_once(int(sys.argv[2]))
        print(f"once pid={os.getpid()} connected=1", flush=True)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
