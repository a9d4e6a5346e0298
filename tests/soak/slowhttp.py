#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Hostile HTTP clients for the soak (tests/soak/soak.sh): NSLOW clients that send
"GET /metr" and then one byte every half second, NIDLE clients that connect and say
nothing; each reconnects whenever the server cuts it, until the file STOP exists.

    slowhttp.py HOST PORT NSLOW NIDLE STOP LOG

LOG gets "all connected" once every client has connected, one "cut KIND SECONDS" line per
connection the server closed (its lifetime), one "refused KIND" line per connect that failed,
and "done connections=N cuts=N refused=N" at the end."""
import os
import select
import socket
import sys
import threading
import time

host, port, nslow, nidle, stop, log = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                       int(sys.argv[4]), sys.argv[5], sys.argv[6])
lock = threading.Lock()
out = open(log, "w", buffering=1)
stats = {"connections": 0, "cuts": 0, "refused": 0, "first": 0}


def say(line):
    with lock:
        print(line, file=out)


def stopping():
    return os.path.exists(stop)


def client(kind):
    rest = b"ics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000000
    first = True
    while not stopping():
        try:
            s = socket.create_connection((host, port), timeout=5)
        except OSError:
            with lock:
                stats["refused"] += 1
            say("refused %s" % kind)
            time.sleep(0.5)
            continue
        start = time.monotonic()
        with lock:
            stats["connections"] += 1
            if first:
                stats["first"] += 1
                if stats["first"] == nslow + nidle:
                    print("all connected", file=out)
        first = False
        i = 0
        cut = False
        try:
            if kind == "slow":
                s.sendall(b"GET /metr")
            while not stopping():
                r, _, _ = select.select([s], [], [], 0.5)
                if r:
                    if not s.recv(4096):
                        cut = True
                        break
                elif kind == "slow":
                    s.send(rest[i:i + 1])
                    i += 1
        except OSError:
            cut = True
        if cut:
            with lock:
                stats["cuts"] += 1
            say("cut %s %.2f" % (kind, time.monotonic() - start))
        s.close()


threads = [threading.Thread(target=client, args=(k,))
           for k in ["slow"] * nslow + ["idle"] * nidle]
for t in threads:
    t.start()
for t in threads:
    t.join()
say("done connections=%d cuts=%d refused=%d" % (stats["connections"], stats["cuts"],
                                                stats["refused"]))
