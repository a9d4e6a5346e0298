/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The backend's state, shared by backend.c (load, attach) and tables.c (the maps' reads). */
#ifndef DSTRACE_BACKEND_INTERNAL_H
#define DSTRACE_BACKEND_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <bpf/libbpf.h>
#include "backend.h"
#include "kretprobe.h"
#include "resolver.h"
#include "dstrace.skel.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_LINKS 32
#define WHY_LEN 256
#define MNT_SEEN_SLOTS 4096 /* names.c's set of mount namespaces: 12 bits */
#define RFILES_MAX 1024	    /* names.c: C library files told apart */

struct dstrace_backend {
	struct dstrace *skel;
	enum dstrace_backend_kind kind;
	struct bpf_link *links[MAX_LINKS];
	int nlinks;
	int cgroup_fd;
	struct bpf_link *existing; /* the iterator over every process's sockets */
	char why[WHY_LEN]; /* why the last attempt failed */
	char resolver_blind[WHY_LEN]; /* why names are not seen ("": they are) */
	/* the resolver's uprobes (names.c): the C libraries of resolver.h's list and their
	 * links; the files followed (each once), those of other mount namespaces with their
	 * links, let go once no namespace has them (names.c, reclaim); the namespaces looked
	 * in (a set: inode and root; names.c, mnt_set_has) */
	struct resolver_libs rlibs;
	struct bpf_link *rlinks[2 * DSTRACE_RESOLVER_LIBS_MAX];
	int nrlinks;
	struct rfile {
		dev_t dev;
		ino_t ino;
		off_t size;
		struct timespec mtime;
		bool overlay;
		bool given; /* resolver.h's list: kept for the run */
		bool used;  /* reclaim: found in a namespace that has processes */
		struct bpf_link *links[2]; /* another namespace's file followed: its probes */
	} rfiles[RFILES_MAX]; /* followed, or found not to be followed */
	int nrfiles, ns_libs, ns_libs_max; /* ns_libs_max: DSTRACE_RESOLVER_NS_LIBS_MAX */
	time_t reclaim_s; /* when a reclaim last freed nothing (0: it did) */
	bool ns_libs_full, verbose;
	bool ns_refused; /* a namespace's library not followed for want of room (names.c) */
	unsigned long own_mnt; /* dstrace's mount namespace (0: none looked in) */
	unsigned long own_userns; /* its user namespace, and its root */
	dev_t own_root_dev;
	ino_t own_root_ino;
	struct mnt_set {
		struct mnt_key {
			unsigned long ns; /* 0: a free slot */
			dev_t root_dev;
			ino_t root_ino;
		} key[MNT_SEEN_SLOTS];
		size_t n;
	} mnt_seen;
	struct pid_list {
		int *v; /* ascending */
		size_t n, cap;
	} pids, pids_young; /* the processes of the last look, and those new then */
	time_t rscan_s; /* last looked (CLOCK_MONOTONIC) */
	uint64_t flows_reclaimed; /* UDP flows user space deleted */
	/* when the scan at start ended (CLOCK_BOOTTIME; 0: not yet): the notes it made of
	 * unconnected UDP sockets are asked for DSTRACE_UDP_UNDER_WAY_S more (bpf/maps.bpf.h,
	 * udp_roles; dstrace_backend__clock_tick ends them) */
	uint64_t existing_done_ns;
	bool recvmsg_noblock; /* *_recvmsg(sk, msg, len, noblock, flags, addr_len): before 5.19 */
	/* tracepoint backend, before 6.5 (6.3, 6.4): a kernel service's kernel_sendpage() to
	 * a TCP socket passes no sock_send_length (a program's sendfile()/splice() pass the
	 * socket file's, in sock_sendpage()) */
	bool sendpage_blind;
	struct kretprobes kret; /* kprobe backend: its return probes' tracefs events */
	time_t calls_swept_s; /* kprobe_calls last swept (CLOCK_MONOTONIC) */
	/* connects waiting for their outcome (tables.c, dstrace_backend__sweep_connects) */
	uint64_t conn_wait_max_s; /* given up after so long */
	time_t conns_swept_s;	  /* last swept (CLOCK_MONOTONIC) */
	uint64_t conns_given_up;
	/* outcomes an ended process entry still waited for when it was folded (tables.c,
	 * entry_held): counted in drops.proc_full */
	uint64_t procs_late_lost;
	/* the process entries of the connects given up, one (tgid, first_ns) per connect, in
	 * no order: an ended entry no longer waits for those (tables.c, entry_waits) */
	struct dstrace_peer_key *given_up;
	size_t given_up_n, given_up_cap;
	/* DSTRACE_FAULT_SKIP_STATE=K:ADDR, tests only (bpf/maps.bpf.h, fault_skip_addr) */
	uint32_t fault_skip_n, fault_skip_addr;
	void *conn_slots_mem;	  /* conn_slots, mapped (MAP_FAILED: not) */
	size_t conn_slots_len;
	char kret_blind[WHY_LEN]; /* why they are the kernel's default ones ("": they are not) */
	struct btf *btf;      /* the kernel's BTF while the backend is tried (backend.c) */
	bool btf_tried;
	/* calls in flight at start (inflight.c): the program on every syscall's exit while
	 * some are listed, since when (CLOCK_MONOTONIC), and those not followed (stash_full) */
	struct bpf_link *inflight_link;
	time_t inflight_since_s;
	uint64_t inflight_given_up;
	/* 32-bit programs' calls (compat.c): their program's link once one runs; or it could
	 * not be attached (said once) */
	struct bpf_link *compat_link;
	bool compat_failed;
};

/* How long after the scan at start an unconnected UDP socket's port tells who began a flow
 * first seen then: an exchange under way at start shows itself by then. */
#define DSTRACE_UDP_UNDER_WAY_S 10

/* How long calls in flight at start are waited for (inflight.c): then given up, counted. */
#define DSTRACE_INFLIGHT_WAIT_S 600

/* The program that follows them, on this backend (NULL: none, the tracepoint backend). */
struct bpf_program *inflight_prog(const struct dstrace_backend *b);

/* What pid's executable is (inflight.c): of dstrace's own ELF class, a 32-bit x86 one on
 * x86-64 (its calls, in /proc/PID/task/TID/syscall, by i386's numbers; compat.c), or another
 * (not followed). */
enum exe_kind { EXE_UNKNOWN, EXE_NATIVE, EXE_IA32, EXE_OTHER };
enum exe_kind exe_kind(const char *pid);

/* The resolver's uprobes (names.c): on the C libraries of b->rlibs, then of the mount
 * namespaces found now and by dstrace_backend__sweep_resolver; all detached. */
int resolver_attach(struct dstrace_backend *b, bool verbose);
void resolver_detach(struct dstrace_backend *b);

/* The first 32-bit x86 dynamic loader installed (compat.c), or NULL: where there is one,
 * 32-bit programs can start at any time. */
const char *ia32_loader(void);

/* The program for 32-bit programs' calls on this backend (NULL: not loaded, the kernel runs
 * none): attached by dstrace_backend__follow_compat() (compat.c), not with the rest. */
struct bpf_program *compat_prog(const struct dstrace_backend *b);

/* Unmap what tables.c mapped of the kernel's tables (before the object is destroyed). */
void dstrace_backend__unmap(struct dstrace_backend *b);

/* CLOCK_MONOTONIC now, in whole seconds: when the sweeps last ran (tables.c, inflight.c). */
static inline time_t mono_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* CLOCK_BOOTTIME now, in ns: the kernel's bpf_ktime_get_boot_ns(). */
static inline uint64_t boot_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* DSTRACE_BACKEND_INTERNAL_H */
