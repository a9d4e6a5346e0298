#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A kernel service on a dual-stack listener (test_tcpbytes.sh): the kernel's NFS server.

  knfsd.py PORT N
      Mounts the nfsd filesystem of this network namespace on /proc/fs/nfsd (run it in a
      mount namespace of its own: ip netns exec gives one), opens an AF_INET6 listener on
      [::]:PORT with IPV6_V6ONLY off and hands it to nfsd (its portlist, as rpc.nfsd does),
      NFSv4 only (no lockd, no rpcbind), one server thread. An IPv4 client then makes N RPC
      NULL calls over one connection: nfsd's thread accepts it (a mapped accept by a kernel
      thread, kernel_accept()), reads each 44-byte call and sends a 28-byte reply, the record
      marker with sock_sendmsg() and the rest, before Linux 6.5, with kernel_sendpage(). Stops
      the thread at the end.
      Prints "result=ok calls=N sent=S received=R" (the client's bytes), or result=ENODEV
      where the kernel has no nfsd (no module, no filesystem), result=ERRNO on a failure
      (exit status 1). nfsd is stopped at the end whatever happened.
"""
import errno
import os
import socket
import struct
import subprocess
import sys

NFSD = "/proc/fs/nfsd"


def put(name, value):
    with open(os.path.join(NFSD, name), "w") as f:
        f.write(value + "\n")


def fail(e):
    print("result=%s" % errno.errorcode.get(e.errno or 0, "EIO"), "error=%r" % str(e))
    sys.exit(1)


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    try:  # a module in Debian's kernels
        subprocess.run(["modprobe", "-q", "nfsd"], check=False)
    except OSError:
        pass
    with open("/proc/filesystems") as f:
        if not any(line.split()[-1:] == ["nfsd"] for line in f):
            print("result=ENODEV error='no nfsd filesystem'")
            sys.exit(0)
    mount = subprocess.run(["mount", "-t", "nfsd", "nfsd", NFSD], capture_output=True,
                           text=True, check=False)
    if mount.returncode != 0:
        print("result=EIO error=%r" % ("mount: " + mount.stderr.strip()))
        sys.exit(1)
    lsn = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lsn.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsn.bind(("::", port))
    lsn.listen(8)
    # versions 2 and 3 need lockd and rpcbind; 2 is gone from recent kernels
    for v in ("-2", "-3", "+4"):
        try:
            put("versions", v)
        except OSError as e:
            if v == "+4":
                fail(e)
    sent = received = 0
    try:
        # from here on nfsd holds the listener: stopped (threads 0) whatever happens, so
        # that the next run finds the port and the versions free
        put("portlist", str(lsn.fileno()))
        put("threads", "1")
        cli = socket.create_connection(("127.0.0.1", port), timeout=20)
        for i in range(n):
            # xid, CALL, RPC 2, NFS (100003) version 4, NULL, AUTH_NONE credential and verifier
            body = struct.pack(">10I", 0x6473000 + i, 0, 2, 100003, 4, 0, 0, 0, 0, 0)
            cli.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
            sent += 4 + len(body)
            reply = b""
            while len(reply) < 28:
                chunk = cli.recv(28 - len(reply))
                if not chunk:
                    raise OSError(errno.ECONNRESET, "nfsd closed after %d bytes" % len(reply))
                reply += chunk
            # marker, xid, REPLY (1), MSG_ACCEPTED (0), verifier (2 words), SUCCESS (0)
            _, xid, mtype, stat, _, _, astat = struct.unpack(">7I", reply)
            if (xid, mtype, stat, astat) != (0x6473000 + i, 1, 0, 0):
                raise OSError(errno.EPROTO, "reply %s" % reply.hex())
            received += len(reply)
        cli.close()
    except OSError as e:
        fail(e)
    finally:
        try:
            put("threads", "0")
        except OSError:
            pass
    print("result=ok calls=%d sent=%d received=%d" % (n, sent, received))


if __name__ == "__main__":
    main()
