// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Calls in flight when dstrace started (bpf/inflight.bpf.h): the fentry and kprobe backends
 * follow a call from its entry, so a thread already asleep in accept(), recvfrom(),
 * recvmsg(), recvmmsg() (UDP), read() or readv() on a socket returns unseen by them. Right
 * after attaching, every thread of the machine asleep in one of those calls on a socket
 * that can carry IPv4 (an AF_INET6 TCP listener, an AF_INET6 TCP connection to a mapped
 * peer, an AF_INET6 UDP or UDP-Lite socket: /proc/PID/net) is listed, by tid, with the
 * call's number, socket and flags (/proc/PID/task/TID/syscall), and a program on every
 * syscall's exit takes each listed call's result (a recvmmsg()'s first datagram is kept as
 * it is consumed, the others are followed anyway). It stays attached only while the list
 * is not empty, at most DSTRACE_INFLIGHT_WAIT_S: the calls still asleep then are given up,
 * counted (drops.stash_full), and said once on stderr. Only in the initial PID namespace
 * (its numbers are the kernel's tids). A 32-bit program's calls (x86 ia32) go by i386's
 * numbers, also through socketcall(2), whose arguments are read from its memory.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "backend.h"
#include "cgroupfs.h"
#include "dstrace.skel.h"
#include "kretprobe.h"

#include "backend_internal.h"

enum exe_kind exe_kind(const char *pid)
{
	unsigned char h[20];
	char path[300];

	snprintf(path, sizeof(path), "/proc/%s/exe", pid);
	if (dstrace_read_head(path, h, sizeof(h)) != (ssize_t)sizeof(h) || memcmp(h, ELFMAG, SELFMAG))
		return EXE_OTHER;
	if (h[EI_CLASS] == (sizeof(long) == 8 ? ELFCLASS64 : ELFCLASS32))
		return EXE_NATIVE;
#if defined(__x86_64__)
	if (h[EI_CLASS] == ELFCLASS32 && h[EI_DATA] == ELFDATA2LSB && h[18] == EM_386 && !h[19])
		return EXE_IA32;
#endif
	return EXE_OTHER;
}

/* The inode of the socket that descriptor fd of pid is, or 0. */
static uint64_t socket_ino(const char *pid, unsigned long fd)
{
	char path[320], target[48];
	unsigned long long ino;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/fd/%lu", pid, fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	return sscanf(target, "socket:[%llu]", &ino) == 1 ? ino : 0;
}

/* The AF_INET6 sockets of one network namespace whose calls are followed, by inode. */
enum { SOCK_TCP_LISTEN = 1, SOCK_TCP_MAPPED = 2, SOCK_UDP = 4 };
struct sock_kind {
	uint64_t ino;
	unsigned int kind;
};
struct netns_socks {
	uint64_t netns;
	struct sock_kind *socks;
	size_t n, cap;
};
struct netns_cache {
	struct netns_socks *ns;
	size_t n;
};

/* One table of /proc/PID/net (tcp6, udp6, udplite6) into s. */
static void read_table(struct netns_socks *s, const char *pid, const char *table, bool tcp)
{
	char path[320], line[512], rem[64];
	unsigned long long ino;
	unsigned int st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/net/%s", pid, table);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned int kind;

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*s %*s %63s %x %*s %*s %*s %*s %*s %llu", rem, &st, &ino) != 3)
			continue; /* the header */
		if (!tcp)
			kind = SOCK_UDP;
		else if (st == 10) /* TCP_LISTEN */
			kind = SOCK_TCP_LISTEN;
		/* ::ffff:a.b.c.d, as the kernel prints its four words (host order) */
		else if (!strncmp(rem, "0000000000000000FFFF0000", 24) ||
			 !strncmp(rem, "00000000000000000000FFFF", 24))
			kind = SOCK_TCP_MAPPED;
		else
			continue;
		if (s->n == s->cap) {
			size_t cap = s->cap ? 2 * s->cap : 64;
			struct sock_kind *more = realloc(s->socks, cap * sizeof(*more));

			if (!more)
				break;
			s->socks = more;
			s->cap = cap;
		}
		s->socks[s->n++] = (struct sock_kind){ .ino = ino, .kind = kind };
	}
	fclose(f);
}

/* The kind of socket ino (0: not one whose calls are followed), in pid's namespace. */
static unsigned int sock_kind_of(struct netns_cache *c, const char *pid, uint64_t ino)
{
	struct netns_socks *s = NULL, *more;
	char path[300];
	struct stat sb;

	snprintf(path, sizeof(path), "/proc/%s/ns/net", pid);
	if (stat(path, &sb))
		return 0;
	for (size_t i = 0; i < c->n && !s; i++)
		if (c->ns[i].netns == (uint64_t)sb.st_ino)
			s = &c->ns[i];
	if (!s) {
		more = realloc(c->ns, (c->n + 1) * sizeof(*more));
		if (!more)
			return 0;
		c->ns = more;
		s = &c->ns[c->n++];
		*s = (struct netns_socks){ .netns = sb.st_ino };
		read_table(s, pid, "tcp6", true);
		read_table(s, pid, "udp6", false);
		read_table(s, pid, "udplite6", false);
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->socks[i].ino == ino)
			return s->socks[i].kind;
	return 0;
}

static void netns_cache_free(struct netns_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->ns[i].socks);
	free(c->ns);
}

/* The call thread pid/tid is in (/proc/PID/task/TID/syscall): its number and arguments;
 * false when in none. */
static bool syscall_of(const char *pid, const char *tid, long *nr, unsigned long a[6])
{
	char path[600], line[256];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%s/task/%s/syscall", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fgets(line, sizeof(line), f) ?
		    sscanf(line, "%ld %lx %lx %lx %lx %lx %lx", nr, &a[0], &a[1], &a[2], &a[3],
			   &a[4], &a[5]) :
		    0;
	fclose(f);
	return n == 7; /* not "running", nor -1: in no call */
}

/* A call followed in flight, by number: what it is (DSTRACE_INFLIGHT_*) and which of its
 * arguments holds its MSG_ flags (-1: none). Each ABI numbers the calls its own way. */
struct followed_call {
	long nr;
	unsigned int kind;
	int flags_arg;
};

/* dstrace's own ELF class's (the C library's numbers) */
static const struct followed_call native_calls[] = {
#ifdef SYS_accept
	{ SYS_accept, DSTRACE_INFLIGHT_ACCEPT, -1 },
#endif
	{ SYS_accept4, DSTRACE_INFLIGHT_ACCEPT, -1 },
	{ SYS_recvfrom, DSTRACE_INFLIGHT_RECV, 3 },
	{ SYS_recvmsg, DSTRACE_INFLIGHT_RECV, 2 },
	{ SYS_recvmmsg, DSTRACE_INFLIGHT_RECVMMSG, 3 },
	{ SYS_read, DSTRACE_INFLIGHT_RECV, -1 },
	{ SYS_readv, DSTRACE_INFLIGHT_RECV, -1 },
};

static const struct followed_call *followed(const struct followed_call *t, size_t n, long nr)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].nr == nr)
			return &t[i];
	return NULL;
}

/* *call for call f, made as nr with arguments a (its descriptor a[0]; a 32-bit program's,
 * ia32, is 32 bits wide), through socketcall(2)'s call sockcall if not 0; false if the
 * descriptor cannot be one. */
static bool call_set(const struct followed_call *f, long nr, const unsigned long a[6],
		     unsigned short sockcall, bool ia32, struct dstrace_inflight_call *call)
{
	unsigned long fd = ia32 ? (uint32_t)a[0] : a[0];

	memset(call, 0, sizeof(*call));
	call->kind = f->kind;
	call->flags = f->flags_arg >= 0 ? (int)a[f->flags_arg] : 0;
	call->nr = nr;
	call->sockcall = sockcall;
	call->ia32 = ia32;
	call->fd = (int)fd;
	return fd <= INT32_MAX;
}

/* Call nr with arguments a, of a task of dstrace's own ELF class, if it is one that is
 * followed: into *call. */
static bool call_native(long nr, const unsigned long a[6], struct dstrace_inflight_call *call)
{
	const struct followed_call *f =
		followed(native_calls, NELEM(native_calls), nr);

	return f && call_set(f, nr, a, 0, false, call);
}

#if defined(__x86_64__)
/* i386's numbers of the calls followed (arch/x86/entry/syscalls/syscall_32.tbl) */
#define IA32_NR_read 3
#define IA32_NR_socketcall 102
#define IA32_NR_readv 145
#define IA32_NR_recvmmsg 337
#define IA32_NR_accept4 364
#define IA32_NR_recvfrom 371
#define IA32_NR_recvmsg 372
#define IA32_NR_recvmmsg_time64 417

static const struct followed_call ia32_calls[] = {
	{ IA32_NR_accept4, DSTRACE_INFLIGHT_ACCEPT, -1 },
	{ IA32_NR_recvfrom, DSTRACE_INFLIGHT_RECV, 3 },
	{ IA32_NR_recvmsg, DSTRACE_INFLIGHT_RECV, 2 },
	{ IA32_NR_recvmmsg, DSTRACE_INFLIGHT_RECVMMSG, 3 },
	{ IA32_NR_recvmmsg_time64, DSTRACE_INFLIGHT_RECVMMSG, 3 },
	{ IA32_NR_read, DSTRACE_INFLIGHT_RECV, -1 },
	{ IA32_NR_readv, DSTRACE_INFLIGHT_RECV, -1 },
};

/* those made through socketcall(2), by its numbers (linux/net.h); their arguments are in an
 * array in the program's memory */
static const struct followed_call ia32_sockcalls[] = {
	{ 5 /* SYS_ACCEPT */, DSTRACE_INFLIGHT_ACCEPT, -1 },
	{ 18 /* SYS_ACCEPT4 */, DSTRACE_INFLIGHT_ACCEPT, -1 },
	{ 10 /* SYS_RECV */, DSTRACE_INFLIGHT_RECV, 3 },
	{ 12 /* SYS_RECVFROM */, DSTRACE_INFLIGHT_RECV, 3 },
	{ 17 /* SYS_RECVMSG */, DSTRACE_INFLIGHT_RECV, 2 },
	{ 19 /* SYS_RECVMMSG */, DSTRACE_INFLIGHT_RECVMMSG, 3 },
};

/* Is nr one of those calls, by i386's numbers? */
static bool call_ia32_nr(long nr)
{
	return nr == IA32_NR_socketcall ||
	       followed(ia32_calls, NELEM(ia32_calls), nr);
}

/* The same for a 32-bit x86 task of process pid: i386's numbers; through socketcall(2), the
 * call's arguments are read from the process's memory (as many as it has, up to the flags). */
static bool call_ia32(const char *pid, long nr, const unsigned long a[6],
		      struct dstrace_inflight_call *call)
{
	const struct followed_call *f;
	unsigned long v[6] = { 0 };
	uint32_t arg[4];
	char path[300];
	ssize_t len;
	size_t n;
	int fd;

	if (nr != IA32_NR_socketcall) {
		f = followed(ia32_calls, NELEM(ia32_calls), nr);
		return f && call_set(f, nr, a, 0, true, call);
	}
	f = followed(ia32_sockcalls, NELEM(ia32_sockcalls), (long)a[0]);
	if (!f)
		return false; /* not followed: its arguments not read */
	n = f->flags_arg >= 0 ? (size_t)f->flags_arg + 1 : 1;
	if (n > NELEM(arg))
		return false;
	snprintf(path, sizeof(path), "/proc/%s/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	len = pread(fd, arg, n * sizeof(arg[0]), (off_t)a[1]);
	close(fd);
	if (len != (ssize_t)(n * sizeof(arg[0])))
		return false;
	for (size_t i = 0; i < n; i++)
		v[i] = arg[i];
	return call_set(f, nr, v, (unsigned short)a[0], true, call);
}
#else
static bool call_ia32_nr(long nr)
{
	(void)nr;
	return false;
}

static bool call_ia32(const char *pid, long nr, const unsigned long a[6],
		      struct dstrace_inflight_call *call)
{
	(void)pid, (void)nr, (void)a, (void)call;
	return false;
}
#endif

/* The call thread pid/tid is in, if it is one that is followed (its socket not looked at):
 * into *call. *kind: what pid's executable is, looked at once needed (EXE_UNKNOWN before). */
static bool inflight_read(const char *pid, const char *tid, enum exe_kind *kind,
			  struct dstrace_inflight_call *call)
{
	unsigned long a[6];
	long nr;

	if (!syscall_of(pid, tid, &nr, a))
		return false;
	if (*kind == EXE_UNKNOWN) {
		struct dstrace_inflight_call probe;

		/* looked at only for a call that may be followed */
		if (!call_native(nr, a, &probe) && !call_ia32_nr(nr))
			return false;
		*kind = exe_kind(pid);
	}
	if (*kind == EXE_NATIVE)
		return call_native(nr, a, call);
	if (*kind == EXE_IA32)
		return call_ia32(pid, nr, a, call);
	return false;
}

/* The same, on a socket whose calls are followed. */
static bool inflight_of(struct netns_cache *c, const char *pid, const char *tid,
			enum exe_kind *exe, struct dstrace_inflight_call *call)
{
	unsigned int want, kind;
	uint64_t ino;

	if (!inflight_read(pid, tid, exe, call) ||
	    !(ino = socket_ino(pid, (unsigned long)call->fd)))
		return false;
	kind = sock_kind_of(c, pid, ino);
	want = call->kind == DSTRACE_INFLIGHT_ACCEPT   ? SOCK_TCP_LISTEN :
	       call->kind == DSTRACE_INFLIGHT_RECVMMSG ? SOCK_UDP :
							 SOCK_TCP_MAPPED | SOCK_UDP;
	return kind & want;
}

/* Still in that call? (It may have returned before it was listed: then the thread's next
 * call is not taken for it, the kernel side checks too.) */
static bool inflight_still(const char *pid, const char *tid, enum exe_kind *exe,
			   const struct dstrace_inflight_call *call)
{
	struct dstrace_inflight_call now;

	return inflight_read(pid, tid, exe, &now) && now.nr == call->nr && now.fd == call->fd &&
	       now.sockcall == call->sockcall;
}

/* List the threads of pid asleep in a followed call. */
static void list_process(struct dstrace_backend *b, struct netns_cache *c, int map,
			 const char *pid, unsigned int *n)
{
	struct dstrace_inflight_call call;
	enum exe_kind exe = EXE_UNKNOWN;
	char path[300];
	struct dirent *t;
	DIR *tasks;

	snprintf(path, sizeof(path), "/proc/%s/task", pid);
	tasks = opendir(path);
	if (!tasks)
		return; /* gone */
	while ((t = readdir(tasks))) {
		uint32_t tid = (uint32_t)strtoul(t->d_name, NULL, 10);

		if (!tid || !inflight_of(c, pid, t->d_name, &exe, &call))
			continue;
		if (*n == DSTRACE_INFLIGHT_MAX) {
			b->inflight_given_up++; /* no room: not followed, counted */
			continue;
		}
		if (bpf_map_update_elem(map, &tid, &call, BPF_ANY))
			continue;
		if (inflight_still(pid, t->d_name, &exe, &call))
			(*n)++;
		else
			bpf_map_delete_elem(map, &tid); /* returned meanwhile: its exit was seen */
	}
	closedir(tasks);
}

int dstrace_backend__follow_inflight(struct dstrace_backend *b)
{
	struct bpf_program *prog = inflight_prog(b);
	int map = bpf_map__fd(b->skel->maps.inflight_calls);
	struct netns_cache cache = { 0 };
	unsigned int n = 0;
	struct dirent *d;
	DIR *proc;

	if (!prog)
		return 0; /* the tracepoint backend reads results at the syscalls' exits */
	if (!dstrace_pidns_initial())
		return -EXDEV; /* another PID namespace's numbers are not the kernel's tids */
	/* attached first: a listed call that returns meanwhile is taken all the same */
	b->skel->bss->inflight_active = 1;
	b->inflight_link = bpf_program__attach(prog);
	if (!b->inflight_link) {
		int err = -errno;

		b->skel->bss->inflight_active = 0;
		return err;
	}
	b->inflight_since_s = mono_now_s();
	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while ((d = readdir(proc))) {
		if (d->d_name[0] >= '1' && d->d_name[0] <= '9' &&
		    (pid_t)strtol(d->d_name, NULL, 10) != getpid())
			list_process(b, &cache, map, d->d_name, &n);
	}
	closedir(proc);
	netns_cache_free(&cache);
	if (!n)
		dstrace_backend__sweep_inflight(b); /* none: detached at once */
	return (int)n;
}

/* Is the list empty? */
static bool inflight_empty(int map)
{
	uint32_t key;

	return bpf_map_get_next_key(map, NULL, &key) != 0;
}

void dstrace_backend__sweep_inflight(struct dstrace_backend *b)
{
	int map;
	uint32_t key, next;
	unsigned int left = 0;

	if (!b->inflight_link)
		return;
	map = bpf_map__fd(b->skel->maps.inflight_calls);
	if (!inflight_empty(map) && mono_now_s() < b->inflight_since_s + DSTRACE_INFLIGHT_WAIT_S)
		return;
	bpf_link__destroy(b->inflight_link);
	b->inflight_link = NULL;
	b->skel->bss->inflight_active = 0;
	/* still asleep: their result, when it comes, is not followed (a thread gone: none
	 * will; lifecycle.bpf.h takes it off the list, this is for one that slipped by) */
	while (!bpf_map_get_next_key(map, NULL, &key)) {
		next = key;
		if (bpf_map_delete_elem(map, &next))
			break;
		left += !(kill((pid_t)next, 0) && errno == ESRCH);
	}
	if (left) {
		b->inflight_given_up += left;
		fprintf(stderr,
			"dstrace: warning: %u calls in flight at start (accept, recv) still asleep "
			"after %d s: their results are not followed (counted in drops.stash_full)\n",
			left, DSTRACE_INFLIGHT_WAIT_S);
	}
}
