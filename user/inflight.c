// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Calls in flight when dstrace started (bpf/inflight.bpf.h): the fentry and kprobe backends
 * follow a call from its entry, so a thread already asleep in accept(), recvfrom(),
 * recvmsg() or read() on a socket returns unseen by them. Right after attaching, every
 * thread of the machine asleep in one of those calls is listed, by tid, with the call's
 * socket and flags (/proc/PID/task/TID/syscall: the call's number and arguments), and a
 * program on every syscall's exit takes each listed thread's result. It stays attached only
 * while the list is not empty, at most DSTRACE_INFLIGHT_WAIT_S: the calls still asleep then
 * are given up, counted (drops.stash_full), and said once on stderr.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "backend.h"
#include "dstrace.skel.h"

#include "backend_internal.h"

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Is pid's executable of dstrace's own ELF class? (/proc/PID/task/TID/syscall gives a
 * 32-bit program's calls by the compat numbers, which mean other calls here.) */
static bool native_exe(const char *pid)
{
	unsigned char ident[EI_NIDENT];
	char path[300];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/exe", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, ident, sizeof(ident));
	close(fd);
	return n == (ssize_t)sizeof(ident) && !memcmp(ident, ELFMAG, SELFMAG) &&
	       ident[EI_CLASS] == (sizeof(long) == 8 ? ELFCLASS64 : ELFCLASS32);
}

/* Is descriptor fd of pid a socket? */
static bool is_socket(const char *pid, unsigned long fd)
{
	char path[320], target[32];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/fd/%lu", pid, fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	return !strncmp(target, "socket:", 7);
}

/* The call thread pid/tid is asleep in, if it is one that is followed: into *call. */
static bool inflight_of(const char *pid, const char *tid, struct dstrace_inflight_call *call)
{
	unsigned long a[6];
	char path[600], line[256];
	long nr;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%s/task/%s/syscall", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fgets(line, sizeof(line), f) ?
		    sscanf(line, "%ld %lx %lx %lx %lx %lx %lx", &nr, &a[0], &a[1], &a[2], &a[3],
			   &a[4], &a[5]) :
		    0;
	fclose(f);
	if (n != 7) /* "running", or -1: in no call */
		return false;
	memset(call, 0, sizeof(*call));
	switch (nr) {
#ifdef SYS_accept
	case SYS_accept:
#endif
	case SYS_accept4:
		call->kind = DSTRACE_INFLIGHT_ACCEPT;
		break;
	case SYS_recvfrom:
		call->kind = DSTRACE_INFLIGHT_RECV;
		call->flags = (int)a[3];
		break;
	case SYS_recvmsg:
		call->kind = DSTRACE_INFLIGHT_RECV;
		call->flags = (int)a[2];
		break;
	case SYS_read:
		call->kind = DSTRACE_INFLIGHT_RECV;
		break;
	default:
		return false;
	}
	call->fd = (int)a[0];
	return a[0] <= INT32_MAX && is_socket(pid, a[0]);
}

/* List the threads of pid asleep in a followed call; false once the map is full. */
static bool list_process(struct dstrace_backend *b, int map, const char *pid, unsigned int *n)
{
	struct dstrace_inflight_call call;
	int native = -1; /* not looked at yet */
	char path[300];
	struct dirent *t;
	DIR *tasks;

	snprintf(path, sizeof(path), "/proc/%s/task", pid);
	tasks = opendir(path);
	if (!tasks)
		return true; /* gone */
	while ((t = readdir(tasks))) {
		uint32_t tid = (uint32_t)strtoul(t->d_name, NULL, 10);

		if (!tid || !inflight_of(pid, t->d_name, &call))
			continue;
		if (native < 0)
			native = native_exe(pid);
		if (!native)
			break;
		if (*n == DSTRACE_INFLIGHT_MAX) {
			b->inflight_given_up++; /* no room: not followed, counted */
			continue;
		}
		if (!bpf_map_update_elem(map, &tid, &call, BPF_ANY))
			(*n)++;
	}
	closedir(tasks);
	return true;
}

int dstrace_backend__follow_inflight(struct dstrace_backend *b)
{
	struct bpf_program *prog = inflight_prog(b);
	int map = bpf_map__fd(b->skel->maps.inflight_calls);
	unsigned int n = 0;
	struct dirent *d;
	DIR *proc;

	if (!prog)
		return 0; /* the tracepoint backend reads results at the syscalls' exits */
	/* attached first: a listed call that returns meanwhile is taken all the same */
	b->skel->bss->inflight_active = 1;
	b->inflight_link = bpf_program__attach(prog);
	if (!b->inflight_link) {
		int err = -errno;

		b->skel->bss->inflight_active = 0;
		return err;
	}
	b->inflight_since_s = mono_s();
	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while ((d = readdir(proc))) {
		if (d->d_name[0] >= '1' && d->d_name[0] <= '9' &&
		    (pid_t)strtol(d->d_name, NULL, 10) != getpid())
			list_process(b, map, d->d_name, &n);
	}
	closedir(proc);
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
	if (!inflight_empty(map) && mono_s() < b->inflight_since_s + DSTRACE_INFLIGHT_WAIT_S)
		return;
	bpf_link__destroy(b->inflight_link);
	b->inflight_link = NULL;
	b->skel->bss->inflight_active = 0;
	/* still asleep: their result, when it comes, is not followed */
	while (!bpf_map_get_next_key(map, NULL, &key)) {
		next = key;
		if (bpf_map_delete_elem(map, &next))
			break;
		left++;
	}
	if (left) {
		b->inflight_given_up += left;
		fprintf(stderr,
			"dstrace: warning: %u calls in flight at start (accept, recv) still asleep "
			"after %d s: their results are not followed (counted in drops.stash_full)\n",
			left, DSTRACE_INFLIGHT_WAIT_S);
	}
}
