#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The hostile HTTP clients of the tests (tests/soak/soak.sh, tests/e2e/test_faults.sh
slow_clients): NSLOW clients that send "GET /metr" and then one byte every half second,
NIDLE clients that connect and say nothing; each reconnects whenever the server cuts it,
until the file STOP exists (--stop) or SECONDS have passed (--seconds), whichever is first.

    slowhttp.py [--stop STOP] [--seconds SECONDS] HOST PORT NSLOW NIDLE LOG

LOG gets "all connected" once every client has connected, one "cut KIND SECONDS" line per
connection the server closed (its lifetime), one "refused KIND" line per connect that failed
(the client tries again half a second later), and "done connections=N cuts=N refused=N" at
the end."""
import argparse
import os
import select
import socket
import threading
import time

ap = argparse.ArgumentParser(description="hostile slow and idle HTTP clients")
ap.add_argument("--stop", help="stop once this file exists")
ap.add_argument("--seconds", type=float, help="stop after this long")
ap.add_argument("host")
ap.add_argument("port", type=int)
ap.add_argument("nslow", type=int)
ap.add_argument("nidle", type=int)
ap.add_argument("log")
args = ap.parse_args()
if args.stop is None and args.seconds is None:
    ap.error("one of --stop or --seconds is required")
end = time.monotonic() + args.seconds if args.seconds is not None else None
lock = threading.Lock()
out = open(args.log, "w", buffering=1)
stats = {"connections": 0, "cuts": 0, "refused": 0, "first": 0}


def say(line):
    with lock:
        print(line, file=out)


def stopping():
    return ((end is not None and time.monotonic() >= end) or
            (args.stop is not None and os.path.exists(args.stop)))


def connected(first):
    with lock:
        stats["connections"] += 1
        if first:
            stats["first"] += 1
            if stats["first"] == args.nslow + args.nidle:
                print("all connected", file=out)


def talk(s, kind):
    """Until the server cuts s (True) or it is time to stop (False)."""
    rest = b"ics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000000
    i = 0
    try:
        if kind == "slow":
            s.sendall(b"GET /metr")
        while not stopping():
            r, _, _ = select.select([s], [], [], 0.5)
            if r:
                if not s.recv(4096):
                    return True
            elif kind == "slow":
                s.send(rest[i:i + 1])
                i += 1
    except OSError:
        return True
    return False


def client(kind):
    first = True
    while not stopping():
        try:
            s = socket.create_connection((args.host, args.port), timeout=5)
        except OSError:
            with lock:
                stats["refused"] += 1
            say("refused %s" % kind)
            time.sleep(0.5)
            continue
        start = time.monotonic()
        connected(first)
        first = False
        if talk(s, kind):
            with lock:
                stats["cuts"] += 1
            say("cut %s %.2f" % (kind, time.monotonic() - start))
        s.close()


threads = [threading.Thread(target=client, args=(k,))
           for k in ["slow"] * args.nslow + ["idle"] * args.nidle]
for t in threads:
    t.start()
for t in threads:
    t.join()
say("done connections=%d cuts=%d refused=%d" % (stats["connections"], stats["cuts"],
                                                stats["refused"]))
