// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcpbytes METHOD PORT BYTES: one mapped TCP connection in one process, BYTES sent each way
 * with one way of moving bytes through a socket, so that a test can check that every way is
 * counted, exactly. A listener on [::]:PORT (IPV6_V6ONLY=0) accepts a connection from an
 * AF_INET6 socket connected to ::ffff:127.0.0.1:PORT: both ends are mapped. The client sends
 * BYTES to the server, then the server BYTES to the client, in chunks, each chunk read by the
 * other end before the next is sent.
 *
 *   rw        write() / read()
 *   sendrecv  send() / recv(), every chunk peeked at first (MSG_PEEK: not a read)
 *   iov       writev() / readv(), three buffers
 *   msg       sendmsg() / recvmsg()
 *   sendfile  sendfile() from a file / read()
 *   splice    splice() from a pipe to the socket / splice() from the socket to a pipe
 *   splice-uring  the same through io_uring (IORING_OP_SPLICE), the server's end read as a
 *             fixed file (SPLICE_F_FD_IN_FIXED), the client's by descriptor (not in the
 *             32-bit build, tcpbytes32, which has the rest)
 *   mptcp     write() / read() on MPTCP sockets (IPPROTO_MPTCP: the listener and the client)
 *   mptcp-splice  splice both ways on MPTCP sockets (whose splice() reads pass recvmsg
 *             before Linux 7.0)
 *   ktls      write() / read() on kernel TLS (TCP_ULP "tls", TLS 1.2 AES-GCM-128 both ways,
 *             a fixed key: the bytes the program writes and reads are the plaintext's)
 *   ktls-splice   splice both ways on kernel TLS
 *   sendfile-read write() / sendfile() from the socket into a pipe (Linux 5.12+)
 *
 * tcpbytes -w METHOD PORT BYTES: the connection made, a child process reads BYTES from the
 * server's end (asleep in its first read), the parent prints "ready pid=P reader=R" and waits
 * for SIGUSR1, then sends BYTES from the client's end: reads in progress when a tracer starts.
 *
 * Prints: method=M sent=N received=N result=ok (sent and received: of both ends together), or
 * result=ERRNO when something fails (ENOENT/ENOPROTOOPT: the kernel has no such sockets).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#ifndef __i386__
#include <liburing.h>
#endif
#include "common.h"

#define CHUNK 16384

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef SOL_TLS
#define SOL_TLS 282
#endif

enum method { M_RW, M_SENDRECV, M_IOV, M_MSG, M_SENDFILE, M_SPLICE, M_MPTCP, M_KTLS,
	      M_SPLICE_URING, M_MPTCP_SPLICE, M_KTLS_SPLICE, M_SENDFILE_READ };
static const char *const method_names[] = { "rw",	"sendrecv", "iov",	     "msg",
					     "sendfile", "splice",   "mptcp",	     "ktls",
					     "splice-uring", "mptcp-splice", "ktls-splice",
					     "sendfile-read" };

static char buf[CHUNK];
static int file_fd = -1;       /* sendfile: CHUNK bytes to send from */
static int pipe_fds[2] = { -1, -1 }; /* splice */

#ifndef __i386__
static struct io_uring ring; /* splice-uring */
static int fixed_fd = -1;    /* splice-uring: the descriptor registered as fixed file 0 */

/* One splice through the ring: from in (fixed file 0 if it is fixed_fd) to out; its result. */
static ssize_t uring_splice(int in, int out, size_t len)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	struct io_uring_cqe *cqe;
	ssize_t r;

	if (!sqe)
		return -EBUSY;
	if (in == fixed_fd)
		io_uring_prep_splice(sqe, 0, -1, out, -1, (unsigned int)len, SPLICE_F_FD_IN_FIXED);
	else
		io_uring_prep_splice(sqe, in, -1, out, -1, (unsigned int)len, 0);
	if (io_uring_submit(&ring) != 1 || io_uring_wait_cqe(&ring, &cqe))
		return -EIO;
	r = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	return r;
}
#else
static ssize_t uring_splice(int in, int out, size_t len)
{
	(void)in, (void)out, (void)len;
	return -ENOSYS;
}
#endif

static void die(const char *what)
{
	fprintf(stderr, "tcpbytes: %s: %s\n", what, strerror(errno));
	printf("result=%s\n", errname(errno));
	exit(1);
}

/* Kernel TLS on fd, both ways, with one fixed key (a test of byte counts, not of secrecy). */
static void ktls_on(int fd)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info = { .version = TLS_1_2_VERSION, .cipher_type = TLS_CIPHER_AES_GCM_128 },
	};

	memset(ci.key, 'k', sizeof(ci.key));
	memset(ci.salt, 's', sizeof(ci.salt));
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		die("setsockopt TCP_ULP tls");
	if (setsockopt(fd, SOL_TLS, TLS_TX, &ci, sizeof(ci)) ||
	    setsockopt(fd, SOL_TLS, TLS_RX, &ci, sizeof(ci)))
		die("setsockopt TLS_TX/TLS_RX");
}

/* Send n bytes (n <= CHUNK) on fd the method's way; all of them, or die. */
static void send_chunk(enum method m, int fd, size_t n)
{
	size_t done = 0;

	while (done < n) {
		size_t left = n - done;
		ssize_t r;

		switch (m) {
		case M_SENDRECV:
			r = send(fd, buf + done, left, 0);
			break;
		case M_IOV: {
			size_t a = left / 3, b = left / 3;
			struct iovec iov[3] = { { buf, a }, { buf + a, b }, { buf + a + b, left - a - b } };

			r = writev(fd, iov, 3);
			break;
		}
		case M_MSG: {
			struct iovec iov = { buf, left };
			struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

			r = sendmsg(fd, &msg, 0);
			break;
		}
		case M_SENDFILE: {
			off_t off = (off_t)done;

			r = sendfile(fd, file_fd, &off, left);
			break;
		}
		case M_SPLICE:
		case M_MPTCP_SPLICE:
		case M_KTLS_SPLICE:
		case M_SPLICE_URING: {
			/* fill the pipe, then splice it all into the socket */
			if (write(pipe_fds[1], buf, left) != (ssize_t)left)
				die("write to the pipe");
			for (size_t in = 0; in < left; in += (size_t)r) {
				r = m != M_SPLICE_URING ?
					    splice(pipe_fds[0], NULL, fd, NULL, left - in, SPLICE_F_MOVE) :
					    uring_splice(pipe_fds[0], fd, left - in);
				if (r < 0 && m == M_SPLICE_URING)
					errno = (int)-r;
				if (r <= 0)
					die("splice to the socket");
			}
			r = (ssize_t)left;
			break;
		}
		default:
			r = write(fd, buf + done, left);
			break;
		}
		if (r <= 0)
			die("send");
		done += (size_t)r;
	}
}

/* Read n bytes from fd the method's way; all of them, or die. */
static void recv_chunk(enum method m, int fd, size_t n)
{
	size_t done = 0;

	while (done < n) {
		size_t left = n - done;
		ssize_t r;

		switch (m) {
		case M_SENDRECV:
			if (recv(fd, buf, 1, MSG_PEEK) != 1)
				die("recv MSG_PEEK");
			r = recv(fd, buf, left, 0);
			break;
		case M_IOV: {
			size_t a = left / 3, b = left / 3;
			struct iovec iov[3] = { { buf, a }, { buf + a, b }, { buf + a + b, left - a - b } };

			r = readv(fd, iov, 3);
			break;
		}
		case M_MSG: {
			struct iovec iov = { buf, left };
			struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

			r = recvmsg(fd, &msg, 0);
			break;
		}
		case M_SENDFILE_READ:
			r = sendfile(pipe_fds[1], fd, NULL, left);
			if (r > 0 && read(pipe_fds[0], buf, (size_t)r) != r)
				die("read from the pipe");
			break;
		case M_SPLICE:
		case M_MPTCP_SPLICE:
		case M_KTLS_SPLICE:
		case M_SPLICE_URING:
			if (m != M_SPLICE_URING) {
				r = splice(fd, NULL, pipe_fds[1], NULL, left, SPLICE_F_MOVE);
			} else {
				r = uring_splice(fd, pipe_fds[1], left);
				if (r < 0) {
					errno = (int)-r;
					die("io_uring splice from the socket");
				}
			}
			if (r > 0 && read(pipe_fds[0], buf, (size_t)r) != r)
				die("read from the pipe");
			break;
		default:
			r = read(fd, buf, left);
			break;
		}
		if (r <= 0)
			die("recv");
		done += (size_t)r;
	}
}

/* -w: BYTES one way, the reader asleep (in a child) until the parent is told to send. */
static int send_when_told(enum method m, int cfd, int sfd, uint64_t total)
{
	sigset_t usr1;
	pid_t reader;
	int sig, st;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	reader = fork();
	if (reader < 0)
		die("fork");
	if (reader == 0) {
		close(cfd);
		for (uint64_t done = 0; done < total;) {
			size_t n = total - done < CHUNK ? (size_t)(total - done) : CHUNK;

			recv_chunk(m, sfd, n);
			done += n;
		}
		_exit(0);
	}
	close(sfd);
	printf("ready pid=%d reader=%d\n", (int)getpid(), (int)reader);
	fflush(stdout);
	if (sigwait(&usr1, &sig))
		die("sigwait");
	for (uint64_t done = 0; done < total;) {
		size_t n = total - done < CHUNK ? (size_t)(total - done) : CHUNK;

		send_chunk(m, cfd, n);
		done += n;
	}
	close(cfd);
	if (waitpid(reader, &st, 0) != reader || !WIFEXITED(st) || WEXITSTATUS(st))
		die("the reader");
	printf("method=%s sent=%llu received=%llu result=ok\n", method_names[m],
	       (unsigned long long)total, (unsigned long long)total);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6 };
	int off = 0, on = 1, lfd, cfd, sfd, proto;
	enum method m = M_RW;
	uint64_t total, sent = 0;
	bool wait_mode = argc > 1 && !strcmp(argv[1], "-w");
	size_t i;

	argc -= wait_mode;
	argv += wait_mode;
	if (argc != 4) {
		fprintf(stderr, "usage: tcpbytes [-w] rw|sendrecv|iov|msg|sendfile|splice|mptcp|ktls|"
				"splice-uring|mptcp-splice|ktls-splice|sendfile-read PORT BYTES\n");
		return 2;
	}
	for (i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if (!strcmp(argv[1], method_names[i]))
			break;
	if (i == sizeof(method_names) / sizeof(method_names[0])) {
		fprintf(stderr, "tcpbytes: unknown method %s\n", argv[1]);
		return 2;
	}
	m = (enum method)i;
	any.sin6_port = htons((uint16_t)parse_num("port", argv[2], 1, 65535));
	dst.sin6_port = any.sin6_port;
	total = parse_num("bytes", argv[3], 1, 1ul << 30);
	dst.sin6_addr.s6_addr[10] = 0xff;
	dst.sin6_addr.s6_addr[11] = 0xff;
	dst.sin6_addr.s6_addr[12] = 127;
	dst.sin6_addr.s6_addr[15] = 1;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + i % 26);
	if (m == M_SENDFILE) {
		char path[] = "/tmp/tcpbytes.XXXXXX";

		file_fd = mkstemp(path);
		if (file_fd < 0)
			die("mkstemp");
		unlink(path);
		if (write(file_fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			die("write the file");
	}
	if ((m == M_SPLICE || m == M_SPLICE_URING || m == M_MPTCP_SPLICE || m == M_KTLS_SPLICE ||
	     m == M_SENDFILE_READ) &&
	    pipe(pipe_fds))
		die("pipe");

	proto = m == M_MPTCP || m == M_MPTCP_SPLICE ? IPPROTO_MPTCP : 0;
	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, proto);
	if (lfd < 0 || setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
	    bind(lfd, (struct sockaddr *)&any, sizeof(any)) || listen(lfd, 1))
		die("listen on [::]");
	cfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, proto);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&dst, sizeof(dst)))
		die("connect to ::ffff:127.0.0.1");
	sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (sfd < 0)
		die("accept4");
	if (m == M_KTLS || m == M_KTLS_SPLICE) {
		ktls_on(cfd);
		ktls_on(sfd);
	}
	if (m == M_SPLICE_URING) {
#ifndef __i386__
		int err = io_uring_queue_init(4, &ring, 0);

		if (!err)
			err = io_uring_register_files(&ring, &sfd, 1);
		if (err) {
			errno = -err;
			die("io_uring with a fixed file");
		}
		fixed_fd = sfd;
#else
		errno = ENOSYS;
		die("splice-uring (not in the 32-bit build)");
#endif
	}
	if (wait_mode) {
		int r = send_when_told(m, cfd, sfd, total);

		close(lfd);
		return r;
	}

	/* client to server, then server to client */
	for (int dir = 0; dir < 2; dir++) {
		for (uint64_t done = 0; done < total;) {
			size_t n = total - done < CHUNK ? (size_t)(total - done) : CHUNK;

			send_chunk(m, dir ? sfd : cfd, n);
			recv_chunk(m, dir ? cfd : sfd, n);
			done += n;
			sent += n;
		}
	}
	close(cfd);
	close(sfd);
	close(lfd);
	printf("method=%s sent=%llu received=%llu result=ok\n", method_names[m],
	       (unsigned long long)sent, (unsigned long long)sent);
	return 0;
}
