// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The resolver's uprobes (bpf/resolver.bpf.h), C library by C library. At start, those of
 * user/resolver.c's list (dstrace's own, the 32-bit one, --resolver-lib). Then, at start and
 * every RESCAN_S seconds, the C libraries of mount namespaces not looked in before: a
 * container's image has its own C library file, which the uprobes on the host's do not see.
 * A namespace is looked in through one of its processes (/proc/PID/root): each path of
 * dstrace_resolver_ns_paths, resolved inside that root (openat2 RESOLVE_IN_ROOT: a link in
 * the image cannot lead out of it), a regular file owned by root (an unprivileged user cannot
 * make dstrace parse a file of theirs, nor use up the room below), followed once however
 * many namespaces share it (by device and inode). At most DSTRACE_RESOLVER_NS_LIBS_MAX such
 * files; beyond, said once and in the blind list.
 */
#define _GNU_SOURCE /* O_PATH */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "backend.h"
#include "dstrace.skel.h"

#include "backend_internal.h"

#define RESCAN_S 2

/* A uprobe of prog on getaddrinfo() of the C library path (shown: how messages name it). Not
 * fatal: that library's programs' names are then unknown, which start-up says once
 * (b->resolver_blind: the first failure's reason and the paths of all). */
static struct bpf_link *attach_uprobe(struct dstrace_backend *b, struct bpf_program *prog,
				      const char *path, const char *shown)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = "getaddrinfo",
		    .retprobe = prog == b->skel->progs.rs_getaddrinfo_ret);
	struct bpf_link *link = bpf_program__attach_uprobe_opts(prog, -1, path, 0, &opts);
	size_t n = strlen(b->resolver_blind);

	if (link)
		return link;
	if (!n)
		snprintf(b->resolver_blind, sizeof(b->resolver_blind),
			 "cannot attach a uprobe to getaddrinfo(): %s (%.128s)", strerror(errno),
			 shown);
	else if (b->resolver_blind[n - 1] == ')' && !strstr(b->resolver_blind, shown))
		snprintf(b->resolver_blind + n - 1, sizeof(b->resolver_blind) - n + 1,
			 ", %.128s)", shown);
	return NULL;
}

/* Both probes on the library path, the return probe first (a call under way when the entry
 * probe comes then leaves nothing behind), no entry probe without it. */
static bool attach_lib(struct dstrace_backend *b, const char *path, const char *shown)
{
	struct bpf_link *ret, *entry;

	if (b->nrlinks + 2 > (int)NELEM(b->rlinks))
		return false;
	ret = attach_uprobe(b, b->skel->progs.rs_getaddrinfo_ret, path, shown);
	if (!ret)
		return false;
	entry = attach_uprobe(b, b->skel->progs.rs_getaddrinfo, path, shown);
	if (!entry) {
		bpf_link__destroy(ret);
		return false;
	}
	b->rlinks[b->nrlinks++] = ret;
	b->rlinks[b->nrlinks++] = entry;
	return true;
}

static bool file_known(const struct dstrace_backend *b, const struct stat *st)
{
	for (int i = 0; i < b->nrfiles; i++)
		if (b->rfiles[i].dev == st->st_dev && b->rfiles[i].ino == st->st_ino)
			return true;
	return false;
}

static void file_add(struct dstrace_backend *b, const struct stat *st)
{
	if (b->nrfiles < (int)NELEM(b->rfiles)) {
		b->rfiles[b->nrfiles].dev = st->st_dev;
		b->rfiles[b->nrfiles].ino = st->st_ino;
		b->nrfiles++;
	}
}

int resolver_attach(struct dstrace_backend *b, bool verbose)
{
	char link[64], buf[64];
	ssize_t n;

	b->verbose = verbose;
	for (int i = 0; i < b->rlibs.n; i++) {
		struct stat st;

		b->rlib_failed[i] = !attach_lib(b, b->rlibs.path[i], b->rlibs.path[i]);
		if (!stat(b->rlibs.path[i], &st))
			file_add(b, &st);
	}
	snprintf(link, sizeof(link), "/proc/%d/ns/mnt", (int)getpid());
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		b->own_mnt = dstrace_mnt_ns_of(buf);
	}
	b->rscan_s = 0;
	dstrace_backend__sweep_resolver(b);
	return 0;
}

/* The mount namespaces looked in: an open-addressed set, emptied when three quarters full
 * (looked in again then, each file still followed once). */
static bool mnt_seen(struct dstrace_backend *b, unsigned long ns, bool add)
{
	size_t i = (ns * 0x9e3779b97f4a7c15ull) >> 52; /* 12 bits: MNT_SEEN_SLOTS */

	for (;; i = (i + 1) % MNT_SEEN_SLOTS) {
		if (b->mnt_seen[i] == ns)
			return true;
		if (!b->mnt_seen[i])
			break;
	}
	if (!add)
		return false;
	if (b->mnt_seen_n >= MNT_SEEN_SLOTS / 4 * 3) {
		memset(b->mnt_seen, 0, sizeof(b->mnt_seen));
		b->mnt_seen_n = 0;
		return mnt_seen(b, ns, true);
	}
	b->mnt_seen[i] = ns;
	b->mnt_seen_n++;
	return false;
}

/* The C libraries of the mount namespace ns, through process pid's root. False if that root
 * cannot be opened (the process ended: another of the namespace's will do). */
static bool look_in(struct dstrace_backend *b, const char *pid, unsigned long ns)
{
	char root[64];
	int dfd;

	snprintf(root, sizeof(root), "/proc/%s/root", pid);
	dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return false;
	for (int i = 0; dstrace_resolver_ns_paths[i]; i++) {
		struct open_how how = { .flags = O_RDONLY | O_CLOEXEC,
					.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
		char path[64], shown[PATH_MAX];
		struct stat st;
		int fd = (int)syscall(SYS_openat2, dfd, dstrace_resolver_ns_paths[i], &how,
				      sizeof(how));

		if (fd < 0)
			continue;
		if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != 0 || file_known(b, &st)) {
			close(fd);
			continue;
		}
		snprintf(shown, sizeof(shown), "%s/%s", root, dstrace_resolver_ns_paths[i]);
		if (b->ns_libs == DSTRACE_RESOLVER_NS_LIBS_MAX) {
			if (!b->ns_libs_full) {
				fprintf(stderr, "dstrace: warning: names: more than %d C libraries in "
						"other mount namespaces; not followed: %s and later ones\n",
					DSTRACE_RESOLVER_NS_LIBS_MAX, shown);
				if (!b->resolver_blind[0])
					snprintf(b->resolver_blind, sizeof(b->resolver_blind),
						 "more than %d C libraries in other mount namespaces",
						 DSTRACE_RESOLVER_NS_LIBS_MAX);
				b->ns_libs_full = true;
			}
			close(fd);
			break;
		}
		file_add(b, &st); /* once, followed or not */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (attach_lib(b, path, shown)) {
			b->ns_libs++;
			if (b->verbose)
				fprintf(stderr, "dstrace: names: getaddrinfo() of %s (mount namespace "
						"%lu)\n", shown, ns);
		} else {
			fprintf(stderr, "dstrace: warning: names of resolved peers are not seen "
					"for %s: %s\n", shown, b->resolver_blind);
		}
		close(fd);
	}
	close(dfd);
	return true;
}

static int pid_cmp(const void *a, const void *b)
{
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static bool pid_in(const struct pid_list *l, int pid)
{
	return l->n && bsearch(&pid, l->v, l->n, sizeof(*l->v), pid_cmp);
}

static bool pid_push(struct pid_list *l, int pid)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		int *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return false;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = pid;
	return true;
}

static void pid_list_free(struct pid_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Every RESCAN_S seconds: each process that was not there at the last look, and again at the
 * next (a process that enters a namespace of its own right after it starts: unshare(1),
 * ip netns exec), is asked for its mount namespace (readlink of /proc/PID/ns/mnt: some 6 us
 * each, 0.7 % of a core for 2 000 processes every 2 s if all were asked each time); a new
 * namespace is looked in. A process that enters a new mount namespace later than that is not
 * asked again (README, Names). */
void dstrace_backend__sweep_resolver(struct dstrace_backend *b)
{
	struct pid_list cur = {}, young = {};
	time_t now = mono_now_s();
	bool sorted = true;
	struct dirent *d;
	DIR *proc;

	if (!b->own_mnt || (b->rscan_s && now - b->rscan_s < RESCAN_S))
		return;
	b->rscan_s = now ? now : 1;
	proc = opendir("/proc");
	if (!proc)
		return;
	while ((d = readdir(proc))) {
		char link[300], buf[64];
		unsigned long ns;
		bool known;
		ssize_t n;
		int pid;

		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		pid = atoi(d->d_name);
		if (cur.n && cur.v[cur.n - 1] > pid)
			sorted = false;
		known = pid_in(&b->pids, pid);
		if (!pid_push(&cur, pid) || (!known && !pid_push(&young, pid)))
			break; /* no memory: every process is asked next time */
		if (known && !pid_in(&b->pids_young, pid))
			continue;
		snprintf(link, sizeof(link), "/proc/%s/ns/mnt", d->d_name);
		n = readlink(link, buf, sizeof(buf) - 1);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		ns = dstrace_mnt_ns_of(buf);
		if (!ns || ns == b->own_mnt || mnt_seen(b, ns, false))
			continue;
		if (look_in(b, d->d_name, ns))
			mnt_seen(b, ns, true);
	}
	closedir(proc);
	if (d) { /* cut short */
		pid_list_free(&cur);
		pid_list_free(&young);
	}
	if (!sorted) {
		qsort(cur.v, cur.n, sizeof(*cur.v), pid_cmp);
		qsort(young.v, young.n, sizeof(*young.v), pid_cmp);
	}
	pid_list_free(&b->pids);
	pid_list_free(&b->pids_young);
	b->pids = cur;
	b->pids_young = young;
}

void resolver_detach(struct dstrace_backend *b)
{
	while (b->nrlinks > 0)
		bpf_link__destroy(b->rlinks[--b->nrlinks]);
	b->nrfiles = 0;
	b->ns_libs = 0;
	b->ns_libs_full = false;
	b->own_mnt = 0;
	memset(b->mnt_seen, 0, sizeof(b->mnt_seen));
	b->mnt_seen_n = 0;
	pid_list_free(&b->pids);
	pid_list_free(&b->pids_young);
}
