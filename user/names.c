// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The resolver's uprobes (bpf/resolver.bpf.h), C library by C library. At start, those of
 * user/resolver.c's list (dstrace's own, the 32-bit one, --resolver-lib). Then the C
 * libraries of mount namespaces not looked in before, at a namespace's first exec() (the
 * kernel tells of it at once: bpf/lifecycle.bpf.h) and, for what that misses, at start and
 * every RESCAN_S seconds: a container's image has its own C library file, which the uprobes
 * on the host's do not see.
 * A namespace made in dstrace's user namespace is looked in through one of its processes
 * (/proc/PID/root, once no longer dstrace's root): each path of dstrace_resolver_ns_paths,
 * resolved inside that root (openat2 RESOLVE_IN_ROOT: a link in the image cannot lead out of
 * it) and opened as a path only; a regular file owned by root is followed, once however many
 * namespaces share it (file_known). An unprivileged user can neither make dstrace read a file
 * of theirs nor use up the room: at most DSTRACE_RESOLVER_NS_LIBS_MAX such files at once;
 * when it is used up, those no namespace with a process has any more are let go (reclaim),
 * else said once and in the blind list. -v names the files followed, those not, and those
 * let go.
 */
#define _GNU_SOURCE /* O_PATH */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "backend.h"
#include "dstrace.skel.h"

#include "backend_internal.h"
#include "kretprobe.h" /* dstrace_pidns_initial */

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
 * probe comes then leaves nothing behind), no entry probe without it: into links. */
static bool attach_lib(struct dstrace_backend *b, const char *path, const char *shown,
		       struct bpf_link *links[2])
{
	links[0] = attach_uprobe(b, b->skel->progs.rs_getaddrinfo_ret, path, shown);
	if (!links[0])
		return false;
	links[1] = attach_uprobe(b, b->skel->progs.rs_getaddrinfo, path, shown);
	if (!links[1]) {
		bpf_link__destroy(links[0]);
		links[0] = NULL;
		return false;
	}
	return true;
}

/* A file followed is known by device and inode; on overlayfs, whose device is each mount's
 * own while the uprobe goes to the file underneath (the same for every container of an
 * image), by inode (the file underneath's, where all layers are on one file system), size
 * and modification time instead. NULL: not known. */
static struct rfile *file_known(struct dstrace_backend *b, const struct stat *st, bool overlay)
{
	for (int i = 0; i < b->nrfiles; i++) {
		struct rfile *f = &b->rfiles[i];

		if (f->ino != st->st_ino)
			continue;
		if (f->dev == st->st_dev)
			return f;
		if (overlay && f->overlay && f->size == st->st_size &&
		    f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec)
			return f;
	}
	return NULL;
}

static struct rfile *file_add(struct dstrace_backend *b, const struct stat *st, bool overlay)
{
	struct rfile *f;

	if (b->nrfiles == (int)NELEM(b->rfiles))
		return NULL;
	f = &b->rfiles[b->nrfiles++];
	memset(f, 0, sizeof(*f));
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->mtime = st->st_mtim;
	f->overlay = overlay;
	return f;
}

/* The place rel inside the root dfd, opened as a path only (a FIFO or a device there is never
 * opened), a link in it resolved inside that root: its descriptor (-1: none), its status and
 * whether it is on overlayfs. */
static int lib_open(int dfd, const char *rel, struct stat *st, bool *overlay)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
	struct statfs sfs;

	if (fd < 0)
		return -1;
	*overlay = !fstatfs(fd, &sfs) && sfs.f_type == OVERLAYFS_SUPER_MAGIC;
	if (fstat(fd, st)) {
		close(fd);
		return -1;
	}
	return fd;
}

int resolver_attach(struct dstrace_backend *b, bool verbose)
{
	char buf[64];
	ssize_t n;

	b->verbose = verbose;
	for (int i = 0; i < b->rlibs.n; i++) {
		bool followed = b->nrlinks + 2 <= (int)NELEM(b->rlinks) &&
				attach_lib(b, b->rlibs.path[i], b->rlibs.path[i], b->rlinks + b->nrlinks);
		struct rfile *f;
		struct stat st;

		if (followed)
			b->nrlinks += 2;
		if (!stat(b->rlibs.path[i], &st) && (f = file_add(b, &st, false)))
			f->given = true;
		if (verbose)
			fprintf(stderr, "dstrace: names: getaddrinfo() of %s%s\n", b->rlibs.path[i],
				followed ? "" : ": not followed");
	}
	n = readlink("/proc/self/ns/mnt", buf, sizeof(buf) - 1);
	if (n > 0) {
		struct stat user, root;

		buf[n] = '\0';
		if (!stat("/proc/self/ns/user", &user) && !stat("/", &root)) {
			b->own_mnt = dstrace_mnt_ns_of(buf);
			b->own_userns = user.st_ino;
			b->own_root_dev = root.st_dev;
			b->own_root_ino = root.st_ino;
			/* the kernel tells of the first exec in any other of the same user
			 * namespace, with another root (bpf/lifecycle.bpf.h; its device as the
			 * kernel encodes it), by its pid: only where that is dstrace's too
			 * (its PID namespace the first), else the sweep alone looks */
			b->skel->bss->mnt_own_userns = (__u32)b->own_userns;
			b->skel->bss->mnt_own_root_dev = (__u32)(major(root.st_dev) << 20 |
								 minor(root.st_dev));
			b->skel->bss->mnt_own_root_ino = root.st_ino;
			if (dstrace_pidns_initial())
				b->skel->bss->mnt_own = (__u32)b->own_mnt;
		}
	}
	b->rscan_s = 0;
	dstrace_backend__sweep_resolver(b);
	return 0;
}

/* A set of mount namespaces (those looked in; those of a reclaim): open-addressed, emptied
 * when three quarters full (looked in again then, each file still followed once). A namespace
 * is known by its inode and its root: the kernel gives a freed namespace's inode to a later
 * one (a container started after another ended), whose root is another directory, or the
 * same one (a container started again: the same files). True if k was there; with add, it
 * is now. */
static bool mnt_set_has(struct mnt_set *s, const struct mnt_key *k, bool add)
{
	size_t i = ((k->ns ^ k->root_ino * 0x2545f4914f6cdd1dull ^ k->root_dev) *
		    0x9e3779b97f4a7c15ull) >> 52; /* 12 bits: MNT_SEEN_SLOTS */
	struct mnt_key *slot;

	for (;; i = (i + 1) % MNT_SEEN_SLOTS) {
		slot = &s->key[i];
		if (!slot->ns)
			break;
		if (slot->ns == k->ns && slot->root_dev == k->root_dev &&
		    slot->root_ino == k->root_ino)
			return true;
	}
	if (!add)
		return false;
	if (s->n >= MNT_SEEN_SLOTS / 4 * 3) {
		memset(s, 0, sizeof(*s));
		return mnt_set_has(s, k, true);
	}
	*slot = *k;
	s->n++;
	return false;
}

/* The mount namespace of process pfd (its directory in /proc), by inode: 0 if not read (errno
 * says why). */
static unsigned long proc_mnt_ns(int pfd)
{
	char buf[64];
	ssize_t n = readlinkat(pfd, "ns/mnt", buf, sizeof(buf) - 1);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return dstrace_mnt_ns_of(buf);
}

/* Say once that the room for C libraries is used up (shown: the first not followed), again
 * only after a reclaim freed some. */
static void libs_full(struct dstrace_backend *b, const char *shown)
{
	if (b->ns_libs_full)
		return;
	fprintf(stderr, "dstrace: warning: names: more than %d C libraries in mount namespaces "
			"that have processes; not followed: %s, nor others while that lasts\n",
		b->ns_libs_max, shown);
	if (!b->resolver_blind[0])
		snprintf(b->resolver_blind, sizeof(b->resolver_blind),
			 "more than %d C libraries in other mount namespaces", b->ns_libs_max);
	b->ns_libs_full = true;
}

static bool room_full(const struct dstrace_backend *b)
{
	return b->nrfiles == (int)NELEM(b->rfiles) || b->ns_libs >= b->ns_libs_max;
}

/* Each place of dstrace_resolver_ns_paths in the root of process pfd (its directory in /proc)
 * that is a file known: marked used. */
static void mark_used(struct dstrace_backend *b, int pfd)
{
	int dfd = openat(pfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return;
	for (int i = 0; dstrace_resolver_ns_paths[i]; i++) {
		struct rfile *f;
		struct stat st;
		bool overlay;
		int fd = lib_open(dfd, dstrace_resolver_ns_paths[i], &st, &overlay);

		if (fd < 0)
			continue;
		f = file_known(b, &st, overlay);
		if (f)
			f->used = true;
		close(fd);
	}
	close(dfd);
}

/*
 * The room is used up: let go of the files of other namespaces that no namespace with a
 * process has any more (containers gone: their probes would hold the file, its image
 * deleted or not, for the rest of the run), found by looking again in the root of each
 * process's namespace (once per namespace and root). Their probes are detached and the
 * namespaces looked in forgotten (one that gets a gone one's inode and root, a container
 * started again, is looked in again). A file in a namespace whose processes dstrace could
 * not read was never followed. "Has" is "has at one of the places looked at": a file
 * replaced there (a C library upgraded inside a running container) is let go while its
 * processes still map the old one. After a reclaim that left the room full, the next
 * comes RESCAN_S seconds later at the soonest (a look at every process costs some 6 us
 * each); a namespace refused meanwhile is asked again at each sweep (ns_refused). True if
 * there is room now.
 */
static bool reclaim(struct dstrace_backend *b)
{
	time_t now = mono_now_s();
	struct mnt_set *seen;
	struct dirent *d;
	int freed = 0;
	DIR *proc;

	if (b->reclaim_s && now - b->reclaim_s < RESCAN_S)
		return false;
	b->reclaim_s = now ? now : 1;
	/* each namespace and root looked in once (emptied when full: some looked in again) */
	seen = calloc(1, sizeof(*seen));
	proc = seen ? opendir("/proc") : NULL;
	if (!proc) {
		free(seen);
		return false;
	}
	for (int i = 0; i < b->nrfiles; i++)
		b->rfiles[i].used = b->rfiles[i].given;
	while ((d = readdir(proc))) {
		struct mnt_key k = {};
		struct stat st;
		int pfd;

		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		pfd = openat(dirfd(proc), d->d_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (pfd < 0)
			continue;
		k.ns = proc_mnt_ns(pfd);
		/* a namespace with dstrace's root has only the files given (look_in) */
		if (k.ns && k.ns != b->own_mnt && !fstatat(pfd, "root", &st, 0) &&
		    (st.st_dev != b->own_root_dev || st.st_ino != b->own_root_ino)) {
			k.root_dev = st.st_dev;
			k.root_ino = st.st_ino;
			if (!mnt_set_has(seen, &k, true))
				mark_used(b, pfd);
		}
		close(pfd);
	}
	closedir(proc);
	free(seen);
	for (int i = b->nrfiles - 1; i >= 0; i--) {
		struct rfile *f = &b->rfiles[i];

		if (f->used)
			continue;
		if (f->links[0]) {
			/* the entry probe first, as attached: a call under way then leaves
			 * nothing behind */
			bpf_link__destroy(f->links[1]);
			bpf_link__destroy(f->links[0]);
			b->ns_libs--;
			if (b->verbose)
				fprintf(stderr, "dstrace: names: let go of the C library at device "
						"%u:%u inode %lu: no mount namespace with a process "
						"has it\n",
					major(f->dev), minor(f->dev), (unsigned long)f->ino);
		}
		*f = b->rfiles[--b->nrfiles];
		freed++;
	}
	if (freed)
		memset(&b->mnt_seen, 0, sizeof(b->mnt_seen));
	if (room_full(b))
		return false;
	b->reclaim_s = 0;
	b->ns_libs_full = false;
	return true;
}

/* The C library at rel inside the root dfd (that of process pid, in mount namespace ns):
 * followed if a regular file of root's not known yet (lib_open). false: not, for want of
 * room. */
static bool look_at(struct dstrace_backend *b, int dfd, const char *pid, unsigned long ns,
		    const char *rel)
{
	bool room = true;
	char path[64], shown[PATH_MAX];
	struct rfile *f;
	struct stat st;
	bool overlay;
	int fd = lib_open(dfd, rel, &st, &overlay), err;

	if (fd < 0)
		return true;
	snprintf(shown, sizeof(shown), "/proc/%s/root/%s", pid, rel);
	if (!S_ISREG(st.st_mode) || file_known(b, &st, overlay))
		goto out;
	if (room_full(b) && !reclaim(b)) {
		libs_full(b, shown);
		room = false;
		goto out;
	}
	f = file_add(b, &st, overlay); /* once, followed or not (room: above) */
	if (st.st_uid != 0) {
		if (b->verbose)
			fprintf(stderr, "dstrace: names: not followed, owned by uid %u: %s\n",
				(unsigned int)st.st_uid, shown);
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	errno = 0;
	if (attach_lib(b, path, shown, f->links)) {
		b->ns_libs++;
		if (b->verbose)
			fprintf(stderr, "dstrace: names: getaddrinfo() of %s (mount namespace %lu)\n",
				shown, ns);
	} else {
		err = errno;
		fprintf(stderr, "dstrace: warning: names of resolved peers are not seen for %s: "
				"%s\n", shown, err ? strerror(err) : "no room for its probes");
	}
out:
	close(fd);
	return room;
}

/* What a look in a namespace came to: looked in for good (or before, or not to be: dstrace's
 * own, another user namespace's, one whose process dstrace may not read); to look again
 * through the namespace's next process, its root still dstrace's (a runtime makes the
 * namespace before it moves the container into its own root; a namespace that shares
 * dstrace's root has nothing new); or the process could not be read (it ended, or is no
 * longer in the namespace asked for). */
enum look { LOOK_DONE, LOOK_LATER, LOOK_GONE };

/* Look in the mount namespace of process pid (its directory pfd in /proc; want: the inode of
 * the namespace asked for, or 0 for any): in its root, for the places of
 * dstrace_resolver_ns_paths, unless looked in before. A namespace made by another user
 * namespace (an unprivileged user's) is not looked in. */
static enum look look_in(struct dstrace_backend *b, int pfd, const char *pid, unsigned long want)
{
	enum look ret = LOOK_GONE;
	struct mnt_key k = {};
	struct stat st;
	int dfd, nsfd, ufd;

	errno = 0;
	k.ns = proc_mnt_ns(pfd);
	/* refused (a security module): not to be looked in, however often asked */
	if (!k.ns && (errno == EACCES || errno == EPERM))
		return LOOK_DONE;
	if (!k.ns || (want && k.ns != want))
		return LOOK_GONE;
	if (k.ns == b->own_mnt)
		return LOOK_DONE;
	dfd = openat(pfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return LOOK_GONE;
	if (fstat(dfd, &st))
		goto out;
	k.root_dev = st.st_dev;
	k.root_ino = st.st_ino;
	ret = LOOK_DONE;
	if (mnt_set_has(&b->mnt_seen, &k, false))
		goto out;
	nsfd = openat(pfd, "ns/mnt", O_RDONLY | O_CLOEXEC);
	ufd = nsfd < 0 ? -1 : ioctl(nsfd, NS_GET_USERNS);
	if (nsfd >= 0)
		close(nsfd);
	if (ufd < 0) {
		ret = LOOK_GONE;
		goto out;
	}
	if (fstat(ufd, &st) || st.st_ino != b->own_userns) {
		if (b->verbose)
			fprintf(stderr, "dstrace: names: mount namespace %lu (/proc/%s) not looked "
					"in: another user namespace's\n", k.ns, pid);
	} else if (k.root_dev == b->own_root_dev && k.root_ino == b->own_root_ino) {
		ret = LOOK_LATER;
	} else {
		bool room = true;

		for (int i = 0; dstrace_resolver_ns_paths[i]; i++)
			room &= look_at(b, dfd, pid, k.ns, dstrace_resolver_ns_paths[i]);
		/* refused for want of room: asked again at each sweep until followed */
		if (!room) {
			b->ns_refused = true;
			ret = LOOK_LATER;
		}
	}
	close(ufd);
	if (ret == LOOK_DONE)
		mnt_set_has(&b->mnt_seen, &k, true);
out:
	close(dfd);
	return ret;
}

/* Through process pid (its name in the /proc directory proc): look_in. */
static enum look look_through(struct dstrace_backend *b, int proc, const char *pid,
			      unsigned long want)
{
	/* the process's directory: its namespace and its root are the same process's */
	int pfd = openat(proc, pid, O_PATH | O_DIRECTORY | O_CLOEXEC);
	enum look ret;

	if (pfd < 0)
		return LOOK_GONE;
	ret = look_in(b, pfd, pid, want);
	close(pfd);
	return ret;
}

/* The first exec() in mount namespace ns (its inode; number id) with a root of its own, by
 * process pid, told by the kernel at once: looked in now rather than at the next sweep, so
 * that a container's programs are named from their start (less the time it takes:
 * test_resolver). Where that process could not be read (it ended at once, or its pid is
 * already another's), the kernel is to tell of the namespace's next exec; where its root
 * was still dstrace's after all (the kernel's view of the root and user space's differ), the
 * sweep looks again, not every exec of the namespace. */
void dstrace_backend__resolver_exec(struct dstrace_backend *b, pid_t pid, unsigned int ns,
				    uint64_t id)
{
	int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	enum look ret = LOOK_GONE;
	char name[16];
	__u64 key = id;

	snprintf(name, sizeof(name), "%d", (int)pid);
	if (b->own_mnt && proc >= 0)
		ret = look_through(b, proc, name, ns);
	if (proc >= 0)
		close(proc);
	if (ret == LOOK_GONE)
		bpf_map_delete_elem(bpf_map__fd(b->skel->maps.mnt_told), &key);
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
	bool sorted = true, cut = false;
	struct dirent *d;
	DIR *proc;

	if (!b->own_mnt || (b->rscan_s && now - b->rscan_s < RESCAN_S))
		return;
	b->rscan_s = now ? now : 1;
	/* a namespace refused for want of room (look_in): every process is asked, so that its
	 * own are, and its library followed once a reclaim frees room */
	if (b->ns_refused) {
		b->ns_refused = false;
		pid_list_free(&b->pids);
		pid_list_free(&b->pids_young);
	}
	proc = opendir("/proc");
	if (!proc)
		return;
	while ((d = readdir(proc))) {
		bool known;
		int pid;

		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		pid = atoi(d->d_name);
		if (cur.n && cur.v[cur.n - 1] > pid)
			sorted = false;
		known = pid_in(&b->pids, pid);
		if (!pid_push(&cur, pid) || (!known && !pid_push(&young, pid))) {
			cut = true; /* no memory: every process is asked next time */
			break;
		}
		if (known && !pid_in(&b->pids_young, pid))
			continue;
		look_through(b, dirfd(proc), d->d_name, 0);
	}
	closedir(proc);
	if (cut) {
		pid_list_free(&cur);
		pid_list_free(&young);
	} else if (!sorted) {
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
	for (int i = 0; i < b->nrfiles; i++) {
		bpf_link__destroy(b->rfiles[i].links[1]);
		bpf_link__destroy(b->rfiles[i].links[0]);
	}
	b->nrfiles = 0;
	b->ns_libs = 0;
	b->reclaim_s = 0;
	b->ns_libs_full = false;
	b->ns_refused = false;
	b->own_mnt = 0;
	if (b->skel)
		b->skel->bss->mnt_own = 0;
	memset(&b->mnt_seen, 0, sizeof(b->mnt_seen));
	pid_list_free(&b->pids);
	pid_list_free(&b->pids_young);
}
