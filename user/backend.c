// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The BPF side as user space sees it (backend.h): choosing and loading a backend (its
 * program lists, feature probes, refusals in one line), attaching (cgroup hooks, the
 * resolver's uprobes), and what it cannot see on this kernel. The reads of the kernel's maps
 * are in tables.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "backend.h"
#include "cgroupfs.h"

#include "backend_internal.h"

/* Order in which "auto" tries the backends: the most direct hooks first. */
static const enum dstrace_backend_kind auto_order[] = {
	DSTRACE_BACKEND_FENTRY,
	DSTRACE_BACKEND_KPROBE,
	DSTRACE_BACKEND_TRACEPOINT,
};

/*
 * The programs of the BPF object, written down once, by the part of it they belong to (see
 * bpf/dstrace.bpf.c). A program is named by its place in the skeleton: a name that is not a
 * program of the object does not compile, and a program added to the object without being
 * listed here fails the count below at build time (and check_lists() at load, which also
 * catches one listed twice).
 */
struct prog_ref {
	size_t off;	   /* where its pointer is in struct dstrace */
	const char *event; /* optional: the tracefs event it needs, which the kernel may lack */
	const char *blind; /* with event: what goes unseen without it (said once at start) */
	const char *func;  /* optional: the kernel function it hooks, which only some kernels
			    * have (where it is missing, so is the path: nothing unseen) */
	const char *fixed_by; /* optional: a kernel function whose kernels need it not (they do
			       * themselves what it makes up for): left out where BTF has it */
};

#define PROG(name) { offsetof(struct dstrace, progs.name), NULL, NULL, NULL, NULL }
/* A program for something this kernel may not have built in: left out, not fatal, and the
 * path it would see declared blind at start. */
#define PROG_IF_EVENT(name, event, blind) \
	{ offsetof(struct dstrace, progs.name), event, blind, NULL, NULL }
/* A program on a kernel function of some kernels only: left out where the function is not. */
#define PROG_IF_FUNC(name, func) { offsetof(struct dstrace, progs.name), NULL, NULL, func, NULL }
/* A program that older kernels need: left out where the kernel's BTF has func, the sign of
 * the kernel that needs it not (a kernel without BTF keeps it: it is never wrong, only spent). */
#define PROG_UNLESS_FUNC(name, func) \
	{ offsetof(struct dstrace, progs.name), NULL, NULL, NULL, func }

/* Process lifecycle (bpf/lifecycle.bpf.h): first, attached before anything is counted. */
static const struct prog_ref lifecycle_progs[] = {
	PROG(lc_process_exit),
	PROG(lc_process_exec),
};

/* The socket layer (bpf/socket.bpf.h): the programs that keep pending connects in array
 * slots (compare-and-exchange, Linux 5.12+), loaded by every backend but kprobe, which
 * runs on older kernels too and loads their twins that keep them in a hash; then the rest.
 * sk_state_nested after sk_state (the kernel runs them in the order attached). */
static const struct prog_ref socket_slot_progs[] = {
	PROG(sk_connect6), PROG(sk_connect4), PROG(sk_state), PROG(sk_state_nested),
	PROG(sk_release), PROG(sk_existing),
};

static const struct prog_ref socket_hash_progs[] = {
	PROG(sk_connect6_hash), PROG(sk_connect4_hash), PROG(sk_state_hash),
	PROG(sk_state_nested_hash), PROG(sk_release_hash), PROG(sk_existing_hash),
};

static const struct prog_ref socket_progs[] = {
	PROG(sk_enter_bind), PROG(sk_exit_bind),
};

/* 32-bit programs' calls (bpf/compat.bpf.h): on a kernel that runs them (x86-64 with ia32
 * emulation), each syscall's exit, left at the first test by any other. The tracepoint
 * backend's reads binds, accepts and connects, the others' binds (their hooks in the
 * kernel's functions see the rest). */
#define IA32_CALLS_FUNC "__ia32_sys_bind"
static const struct prog_ref compat_progs[] = {
	PROG_IF_FUNC(cp_sys_exit, IA32_CALLS_FUNC),
};
static const struct prog_ref compat_bind_progs[] = {
	PROG_IF_FUNC(cp_sys_exit_bind, IA32_CALLS_FUNC),
};

/* The resolver (bpf/resolver.bpf.h): uprobes on C libraries' getaddrinfo(), attached library
 * by library by user/names.c (not by attach()); without them names are unknown, nothing else
 * is lost. */
static const struct prog_ref resolver_progs[] = {
	PROG(rs_getaddrinfo_ret), PROG(rs_getaddrinfo),
};

/* The error-report hooks (bpf/connect.bpf.h, handle_tcp_error_report) decide a connect when its
 * socket reports an error before it closes. A kernel with tcp_done_with_error() (mainline since
 * mid-2024, backported to stable kernels: Debian's 6.1) closes it first, and the state change
 * decides with the error still set; there the hook, run on every error report of the machine
 * (a reset connection's too), would only cost. */
#define CLOSES_BEFORE_REPORT "tcp_done_with_error"

/* Backend "fentry" (bpf/fentry.bpf.h). */
static const struct prog_ref fentry_progs[] = {
	PROG_UNLESS_FUNC(fx_sock_def_error_report, CLOSES_BEFORE_REPORT),
	PROG(fx_tcp_v6_connect), PROG(fx_ip6_datagram_connect),
	PROG(fx_inet_csk_accept),
	PROG(fx_udpv6_sendmsg_entry), PROG(fx_udpv6_sendmsg), PROG(fx_skb_consume_udp),
	PROG(fx_udpv6_recvmsg), PROG(fx_inet6_sendmsg), PROG(fx_inet6_recvmsg),
	PROG_IF_FUNC(fx_inet_sendpage, "inet_sendpage"), PROG(fx_sock_splice_read),
};

/* Backend "kprobe" (bpf/kprobe.bpf.h). */
static const struct prog_ref kprobe_progs[] = {
	PROG_UNLESS_FUNC(kp_sock_def_error_report, CLOSES_BEFORE_REPORT),
	PROG(kp_tcp_v6_connect), PROG(kp_tcp_v6_connect_ret),
	PROG(kp_ip6_datagram_connect), PROG(kp_ip6_datagram_connect_ret),
	PROG(kp_inet_csk_accept_ret), PROG(kp_udpv6_sendmsg),
	PROG(kp_udpv6_sendmsg_ret), PROG(kp_udpv6_recvmsg),
	PROG(kp_skb_consume_udp), PROG(kp_udpv6_recvmsg_ret),
	PROG(kp_inet6_sendmsg), PROG(kp_inet6_sendmsg_ret),
	PROG(kp_inet6_recvmsg), PROG(kp_inet6_recvmsg_ret),
	PROG_IF_FUNC(kp_inet_sendpage_ret, "inet_sendpage"),
	PROG_IF_FUNC(kp_inet_sendpage, "inet_sendpage"),
	PROG(kp_sock_splice_read_ret), PROG(kp_sock_splice_read),
};

/* Calls in flight at start (bpf/inflight.bpf.h), for the backends whose hooks follow a call
 * from its entry: attached by dstrace_backend__follow_inflight() (inflight.c), only while
 * some are, not with the rest. */
static const struct prog_ref inflight_slot_progs[] = { PROG(ifl_sys_exit) };
static const struct prog_ref inflight_hash_progs[] = { PROG(ifl_sys_exit_hash) };

/* Backend "tracepoint" (bpf/tracepoint.bpf.h). */
static const struct prog_ref tracepoint_progs[] = {
	PROG_UNLESS_FUNC(tp_sk_error_report, CLOSES_BEFORE_REPORT),
	PROG(tp_exit_connect),
	PROG(tp_exit_accept),
	PROG(tp_exit_accept4),
	PROG(tp_exit_splice),
	PROG(tp_exit_sendfile),
	PROG_IF_EVENT(tp_io_uring_submit, "io_uring/io_uring_submit_req", "io_uring accepts"),
	PROG_IF_EVENT(tp_io_uring_complete, "io_uring/io_uring_complete", "io_uring accepts"),
	PROG(cg_sendmsg4),
	PROG(cg_skb_egress),
	PROG(tp_send_length),
	PROG(cg_recvmsg6),
	PROG(cg_skb_ingress),
	PROG(tp_recv_length),
};

/* Every list, in the order they are attached, and the backends that load it. */
#define BACKEND_BIT(kind) (1u << (kind))
#define BACKENDS_ALL                                                                          \
	(BACKEND_BIT(DSTRACE_BACKEND_FENTRY) | BACKEND_BIT(DSTRACE_BACKEND_KPROBE) |           \
	 BACKEND_BIT(DSTRACE_BACKEND_TRACEPOINT))
static const struct prog_list {
	unsigned int backends; /* BACKEND_BIT()s */
	const struct prog_ref *progs;
	size_t n;
} prog_lists[] = {
	{ BACKENDS_ALL, lifecycle_progs, NELEM(lifecycle_progs) },
	{ BACKENDS_ALL & ~BACKEND_BIT(DSTRACE_BACKEND_KPROBE), socket_slot_progs,
	  NELEM(socket_slot_progs) },
	{ BACKEND_BIT(DSTRACE_BACKEND_KPROBE), socket_hash_progs, NELEM(socket_hash_progs) },
	{ BACKENDS_ALL, socket_progs, NELEM(socket_progs) },
	{ BACKEND_BIT(DSTRACE_BACKEND_TRACEPOINT), compat_progs, NELEM(compat_progs) },
	{ BACKEND_BIT(DSTRACE_BACKEND_FENTRY) | BACKEND_BIT(DSTRACE_BACKEND_KPROBE),
	  compat_bind_progs, NELEM(compat_bind_progs) },
	{ BACKENDS_ALL, resolver_progs, NELEM(resolver_progs) },
	{ BACKEND_BIT(DSTRACE_BACKEND_FENTRY), fentry_progs, NELEM(fentry_progs) },
	{ BACKEND_BIT(DSTRACE_BACKEND_FENTRY), inflight_slot_progs, NELEM(inflight_slot_progs) },
	{ BACKEND_BIT(DSTRACE_BACKEND_KPROBE), kprobe_progs, NELEM(kprobe_progs) },
	{ BACKEND_BIT(DSTRACE_BACKEND_KPROBE), inflight_hash_progs, NELEM(inflight_hash_progs) },
	{ BACKEND_BIT(DSTRACE_BACKEND_TRACEPOINT), tracepoint_progs, NELEM(tracepoint_progs) },
};

#define SHARED_PROGS                                                                          \
	(NELEM(lifecycle_progs) + NELEM(socket_slot_progs) + NELEM(socket_progs) +             \
	 NELEM(compat_progs) + NELEM(resolver_progs))
_Static_assert(SHARED_PROGS + NELEM(socket_hash_progs) + NELEM(fentry_progs) +
			       NELEM(kprobe_progs) + NELEM(tracepoint_progs) +
			       NELEM(inflight_slot_progs) + NELEM(inflight_hash_progs) +
			       NELEM(compat_bind_progs) ==
		       sizeof(((struct dstrace *)0)->progs) / sizeof(struct bpf_program *),
	       "the program lists of user/backend.c do not name each program of the BPF object once");
_Static_assert(NELEM(socket_slot_progs) == NELEM(socket_hash_progs),
	       "the socket layer's twins come in pairs");

#define MAX_OF(a, b) ((a) > (b) ? (a) : (b))
_Static_assert(SHARED_PROGS + MAX_OF(NELEM(fentry_progs),
				     MAX_OF(NELEM(kprobe_progs), NELEM(tracepoint_progs))) <=
		       MAX_LINKS,
	       "MAX_LINKS cannot hold the links of every program of a backend");

static struct bpf_program *prog_of(const struct dstrace *skel, const struct prog_ref *ref)
{
	return *(struct bpf_program *const *)((const char *)skel + ref->off);
}

struct bpf_program *inflight_prog(const struct dstrace_backend *b)
{
	switch (b->kind) {
	case DSTRACE_BACKEND_FENTRY:
		return prog_of(b->skel, &inflight_slot_progs[0]);
	case DSTRACE_BACKEND_KPROBE:
		return prog_of(b->skel, &inflight_hash_progs[0]);
	default:
		return NULL;
	}
}

struct bpf_program *compat_prog(const struct dstrace_backend *b)
{
	struct bpf_program *prog = prog_of(b->skel, b->kind == DSTRACE_BACKEND_TRACEPOINT ?
							    &compat_progs[0] :
							    &compat_bind_progs[0]);

	return bpf_program__autoload(prog) ? prog : NULL;
}

static bool list_loaded_by(const struct prog_list *l, enum dstrace_backend_kind kind)
{
	return l->backends & BACKEND_BIT(kind);
}

static bool is_cgroup_prog(const struct bpf_program *prog)
{
	switch (bpf_program__type(prog)) {
	case BPF_PROG_TYPE_CGROUP_SOCK_ADDR:
	case BPF_PROG_TYPE_CGROUP_SOCK:
	case BPF_PROG_TYPE_CGROUP_SKB:
	case BPF_PROG_TYPE_SOCK_OPS:
		return true;
	default:
		return false;
	}
}

static int fail(struct dstrace_backend *b, int err, const char *fmt, ...)
{
	int n = snprintf(b->why, sizeof(b->why), "backend %s: ", dstrace_backend_name(b->kind));
	va_list ap;

	if (n < 0 || (size_t)n >= sizeof(b->why))
		return err;
	va_start(ap, fmt);
	vsnprintf(b->why + n, sizeof(b->why) - n, fmt, ap);
	va_end(ap);
	return err;
}

/* The kernel's BTF while a backend is tried: parsed once (several megabytes, tens of ms),
 * freed before the BPF object is loaded (libbpf reads its own copy), so it never adds to
 * dstrace's peak memory. NULL: the kernel has none. */
static const struct btf *kernel_btf(struct dstrace_backend *b)
{
	if (!b->btf_tried) {
		b->btf_tried = true;
		b->btf = btf__load_vmlinux_btf();
	}
	return b->btf;
}

static void kernel_btf_release(struct dstrace_backend *b)
{
	btf__free(b->btf);
	b->btf = NULL;
	b->btf_tried = false;
}

static bool vmlinux_has_type(struct dstrace_backend *b, const char *name, __u32 kind)
{
	const struct btf *btf = kernel_btf(b);

	if (!btf)
		return true; /* cannot tell: let the load decide */
	return btf__find_by_name_kind(btf, name, kind) >= 0;
}

/* Is argument idx (from 0) of the kernel function fn called name? -ENOENT: fn is not in BTF;
 * 1 yes, 0 no; also 1 when the kernel has no BTF to tell (the load decides). */
static int vmlinux_func_arg_is(struct dstrace_backend *b, const char *fn, unsigned int idx,
			       const char *name)
{
	const struct btf *btf = kernel_btf(b);
	const struct btf_type *t;
	const struct btf_param *params;
	int id;

	if (!btf)
		return 1;
	id = btf__find_by_name_kind(btf, fn, BTF_KIND_FUNC);
	if (id < 0)
		return -ENOENT;
	t = btf__type_by_id(btf, btf__type_by_id(btf, id)->type); /* FUNC_PROTO */
	params = btf_params(t);
	return idx < btf_vlen(t) && !strcmp(btf__name_by_offset(btf, params[idx].name_off), name);
}

/* The fentry and kprobe backends read kernel functions' arguments by position: a kernel
 * whose signatures differ would load and count wrong, so it is refused. The kprobe backend
 * reads registers, so it also takes the udpv6_recvmsg() of kernels before 5.19, which had
 * a noblock argument before flags (b->recvmsg_noblock); an fexit program's arguments are
 * typed by the kernel's BTF, and the fentry backend needs socket storage in tracing
 * programs (5.11+) anyway, so it takes 5.19's only. */
static int check_signatures(struct dstrace_backend *b)
{
	static const struct {
		const char *fn;
		unsigned int idx;
		const char *arg;
		const char *since;
		bool recvmsg; /* with noblock at idx and flags after it: before 5.19 */
	} sig[] = {
		{ "udpv6_recvmsg", 3, "flags",
		  "udpv6_recvmsg(sk, msg, len, flags, addr_len): Linux 5.19+", true },
		{ "inet6_sendmsg", 0, "sock", "inet6_sendmsg(sock, msg, size)", false },
		{ "inet6_recvmsg", 3, "flags", "inet6_recvmsg(sock, msg, size, flags)", false },
		{ "udpv6_sendmsg", 2, "len", "udpv6_sendmsg(sk, msg, len)", false },
		{ "tcp_v6_connect", 0, "sk", "tcp_v6_connect(sk, uaddr, addr_len)", false },
	};
	int old = 0;

	for (size_t i = 0; i < NELEM(sig); i++) {
		int r = vmlinux_func_arg_is(b, sig[i].fn, sig[i].idx, sig[i].arg);

		if (r == -ENOENT)
			return fail(b, -EOPNOTSUPP, "this kernel has no %s() in its BTF", sig[i].fn);
		if (!r && sig[i].recvmsg && b->kind == DSTRACE_BACKEND_KPROBE &&
		    vmlinux_func_arg_is(b, sig[i].fn, sig[i].idx + 1, "flags") == 1) {
			old++;
			continue;
		}
		if (!r)
			return fail(b, -EOPNOTSUPP,
				    "this kernel's %s() has other arguments than dstrace reads (%s)",
				    sig[i].fn, sig[i].since);
	}
	b->recvmsg_noblock = old > 0;
	return 0;
}

/* What a backend needs from the kernel, checked before loading so the error can say it. */
static int precheck(struct dstrace_backend *b)
{
	char path[96];
	int err;

	switch (b->kind) {
	case DSTRACE_BACKEND_FENTRY:
		return check_signatures(b);
	case DSTRACE_BACKEND_KPROBE:
		/* perf's kprobe PMU, or the tracefs interface libbpf falls back to */
		dstrace_ensure_tracefs();
		if (access("/sys/bus/event_source/devices/kprobe/type", F_OK) &&
		    dstrace_tracefs_path("kprobe_events", path, sizeof(path)))
			return fail(b, -EOPNOTSUPP, "this kernel has no kprobes (CONFIG_KPROBES)");
		return check_signatures(b);
	case DSTRACE_BACKEND_TRACEPOINT:
		err = dstrace_ensure_tracefs();
		if (err)
			return fail(b, err, "cannot mount tracefs on /sys/kernel/tracing: %s",
				    strerror(-err));
		if (dstrace_tracefs_path("events/syscalls/sys_enter_connect", path, sizeof(path)))
			return fail(b, -EOPNOTSUPP,
				    "this kernel has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS)");
		if (!vmlinux_has_type(b, "btf_trace_sock_send_length", BTF_KIND_TYPEDEF))
			return fail(b, -EOPNOTSUPP,
				    "this kernel has no sock:sock_send_length tracepoint (Linux 6.3+)");
		/* the accept reads its socket through BTF casts (core.bpf.h, BTF_CAST) */
		if (!vmlinux_has_type(b, "bpf_rdonly_cast", BTF_KIND_FUNC))
			return fail(b, -EOPNOTSUPP,
				    "this kernel has no bpf_rdonly_cast() kfunc (Linux 6.2+)");
		b->sendpage_blind = kernel_btf(b) && vmlinux_has_type(b, "tcp_sendpage", BTF_KIND_FUNC);
		return 0;
	default:
		return 0;
	}
}

static void backend_detach(struct dstrace_backend *b)
{
	b->existing = NULL;
	bpf_link__destroy(b->inflight_link);
	b->inflight_link = NULL;
	bpf_link__destroy(b->compat_link);
	b->compat_link = NULL;
	while (b->nlinks > 0)
		bpf_link__destroy(b->links[--b->nlinks]);
	resolver_detach(b);
	kretprobes_remove(&b->kret); /* once no link holds them */
	dstrace_backend__unmap(b);
	if (b->cgroup_fd >= 0)
		close(b->cgroup_fd);
	b->cgroup_fd = -1;
	dstrace__destroy(b->skel);
	b->skel = NULL;
}

/* Is an optional program's tracefs event or kernel function missing from this kernel, or
 * does the kernel do itself what it makes up for? */
static bool optional_missing(struct dstrace_backend *b, const struct prog_ref *ref)
{
	char file[96], path[160];

	if (ref->fixed_by)
		return kernel_btf(b) && vmlinux_has_type(b, ref->fixed_by, BTF_KIND_FUNC);
	if (ref->func)
		return !vmlinux_has_type(b, ref->func, BTF_KIND_FUNC);
	if (!ref->event)
		return false;
	snprintf(file, sizeof(file), "events/%s", ref->event);
	return dstrace_tracefs_path(file, path, sizeof(path)) != 0;
}

/* Every program of the object is in exactly one list: else it would be loaded by every
 * backend, or by none, or attached twice. */
static int check_lists(struct dstrace_backend *b)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, b->skel->obj) {
		int n = 0;

		for (size_t l = 0; l < NELEM(prog_lists); l++)
			for (size_t i = 0; i < prog_lists[l].n; i++)
				n += prog_of(b->skel, &prog_lists[l].progs[i]) == prog;
		if (n != 1)
			return fail(b, -EINVAL,
				    "internal error: program %s is in %d program lists of "
				    "user/backend.c, expected 1",
				    bpf_program__name(prog), n);
	}
	return 0;
}

/* Before Linux 6.1 (no BPF memory allocator) a tracing program that uses a hash map
 * allocated as used makes the kernel warn (a WARN_ONCE in the log, the kernel tainted):
 * there the maps that would be are preallocated instead (proc_peers about 19 MiB, existing_seen
 * 4 MiB, udp_began and udp_roles 0.5 MiB each, existing_udp_ports 1 MiB of kernel memory). */
static int preallocate_on_old_kernels(struct dstrace_backend *b)
{
	struct bpf_map *maps[] = { b->skel->maps.proc_peers, b->skel->maps.existing_seen,
				   b->skel->maps.udp_began, b->skel->maps.udp_roles,
				   b->skel->maps.existing_udp_ports };

	if (vmlinux_has_type(b, "bpf_mem_alloc", BTF_KIND_STRUCT))
		return 0;
	for (size_t i = 0; i < NELEM(maps); i++) {
		int err = bpf_map__set_map_flags(maps[i], bpf_map__map_flags(maps[i]) &
								  ~BPF_F_NO_PREALLOC);

		if (err)
			return fail(b, err, "cannot preallocate map %s: %s",
				    bpf_map__name(maps[i]), strerror(-err));
	}
	return 0;
}

static int configure(struct dstrace_backend *b, const struct env *env)
{
	struct dstrace *skel = b->skel;
	int err;

	skel->rodata->filter_pid_enabled = env->npids > 0;
	skel->rodata->filter_comm_enabled = env->comm[0] != '\0';
	memcpy((char *)skel->rodata->filter_comm, env->comm, sizeof(env->comm));
	skel->rodata->filter_port = env->port;
	skel->rodata->filter_events = env->events;
	skel->rodata->filter_protos = env->protos;
	skel->rodata->floor_only = env->floor;
	skel->rodata->connect_by_syscall = b->kind == DSTRACE_BACKEND_TRACEPOINT;
	skel->rodata->recvmsg_noblock = b->recvmsg_noblock;
	/* 1: the kernel's verifier takes the helper in a cgroup sock_addr program */
	skel->rodata->cgroup_task_btf =
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
					BPF_FUNC_get_current_task_btf, NULL) == 1;
	/* 1: the egress hook knows the sending thread (Linux 6.10+), so the datagrams of a
	 * GSO send go to that call whatever other threads send on the socket */
	skel->rodata->egress_tid = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB,
							   BPF_FUNC_get_current_pid_tgid, NULL) == 1;
	/* -i alone prints only the per-process table, which the kernel keeps whole. */
	skel->rodata->emit_events = !env->interval_s || dstrace_env_per_program(env);
	/* a quarter of the ring: a burst still wakes the reader well before it fills */
	skel->rodata->wakeup_bytes = env->ringbuf_kb * 1024ull / 4;

	err = bpf_map__set_max_entries(skel->maps.events, env->ringbuf_kb * 1024);
	if (err)
		return fail(b, err, "cannot size the ring buffer: %s", strerror(-err));
	/* the kprobe backend's programs keep pending connects in the hash only */
	if (b->kind == DSTRACE_BACKEND_KPROBE) {
		err = bpf_map__set_max_entries(skel->maps.conn_slots, 1);
		if (err)
			return fail(b, err, "cannot size conn_slots: %s", strerror(-err));
	}

	err = preallocate_on_old_kernels(b);
	if (err)
		return err;
	err = check_lists(b);
	if (err)
		return err;
	for (size_t l = 0; l < NELEM(prog_lists); l++) {
		for (size_t i = 0; i < prog_lists[l].n; i++) {
			const struct prog_ref *ref = &prog_lists[l].progs[i];

			bpf_program__set_autoload(prog_of(skel, ref),
						  list_loaded_by(&prog_lists[l], b->kind) &&
							  !optional_missing(b, ref));
		}
	}
	return 0;
}

/* After load, before attach: the maps user space fills. */
static int populate(struct dstrace_backend *b, const struct env *env)
{
	int fd = bpf_map__fd(b->skel->maps.pid_filter);
	__u8 one = 1;

	for (unsigned int i = 0; i < env->npids; i++) {
		if (bpf_map_update_elem(fd, &env->pids[i], &one, BPF_ANY))
			return fail(b, -errno, "cannot set the pid filter: %s", strerror(errno));
	}
	return 0;
}

static int open_cgroup_root(struct dstrace_backend *b)
{
	char path[512];
	int err;

	if (b->cgroup_fd >= 0)
		return 0;
	err = dstrace_find_cgroup2("/proc/self/mountinfo", path, sizeof(path));
	if (err)
		return fail(b, err, "no cgroup v2 hierarchy to attach to: %s", strerror(-err));
	b->cgroup_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->cgroup_fd < 0)
		return fail(b, -errno, "cannot open %s: %s", path, strerror(errno));
	return 0;
}

static bool is_resolver_prog(const struct dstrace_backend *b, const struct bpf_program *prog)
{
	for (size_t i = 0; i < NELEM(resolver_progs); i++)
		if (prog_of(b->skel, &resolver_progs[i]) == prog)
			return true;
	return false;
}

/* A return probe with room for many calls in flight (kretprobe.h); where tracefs cannot make
 * one, the kprobe PMU's, which has the kernel's default room: said at start and in the blind
 * list (b->kret_blind), as its misses cannot be counted. */
static struct bpf_link *attach_kretprobe(struct dstrace_backend *b, struct bpf_program *prog,
					 const char *func)
{
	struct bpf_link *link = kretprobe_attach(&b->kret, prog, func);

	if (link)
		return link;
	if (!b->kret_blind[0])
		snprintf(b->kret_blind, sizeof(b->kret_blind),
			 "cannot make the return probe on %s() with room for %d calls in tracefs "
			 "kprobe_events: %s",
			 func, KRETPROBE_MAXACTIVE, strerror(errno));
	return bpf_program__attach(prog);
}

/* DSTRACE_FAULT_SKIP_STATE=K:ADDR, tests only: K tokens, then the address (bpf/maps.bpf.h). */
static int fault_skip_set(struct dstrace_backend *b)
{
	__u8 one = 1;

	if (!b->fault_skip_addr)
		return 0;
	for (uint32_t i = 0; i < b->fault_skip_n; i++) /* a push */
		if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.fault_tokens), NULL, &one, BPF_ANY))
			return fail(b, -errno, "DSTRACE_FAULT_SKIP_STATE: %s", strerror(errno));
	b->skel->bss->fault_skip_addr = b->fault_skip_addr;
	return 0;
}

static int attach_one(struct dstrace_backend *b, struct bpf_program *prog)
{
	struct bpf_link *link;
	int err;

	if (b->nlinks == MAX_LINKS)
		return fail(b, -E2BIG, "internal error: more than %d programs", MAX_LINKS);
	if (is_resolver_prog(b, prog))
		return 0; /* library by library (names.c) */
	if (is_cgroup_prog(prog)) {
		err = open_cgroup_root(b);
		if (err)
			return err;
		link = bpf_program__attach_cgroup(prog, b->cgroup_fd);
	} else if (!strncmp(bpf_program__section_name(prog), "kretprobe/", 10)) {
		link = attach_kretprobe(b, prog, bpf_program__section_name(prog) + 10);
	} else {
		link = bpf_program__attach(prog);
	}
	if (!link)
		return fail(b, -errno, "failed to attach %s: %s", bpf_program__name(prog),
			    strerror(errno));
	b->links[b->nlinks++] = link;
	if (prog == b->skel->progs.sk_existing || prog == b->skel->progs.sk_existing_hash)
		b->existing = link;
	return 0;
}

/* The programs loaded, list by list (configure() chose them). */
static int attach(struct dstrace_backend *b)
{
	int err;

	for (size_t l = 0; l < NELEM(prog_lists); l++) {
		for (size_t i = 0; i < prog_lists[l].n; i++) {
			struct bpf_program *prog = prog_of(b->skel, &prog_lists[l].progs[i]);

			if (!bpf_program__autoload(prog) || prog == inflight_prog(b) ||
			    prog == compat_prog(b))
				continue; /* not loaded; or attached when needed (inflight.c, compat.c) */
			err = attach_one(b, prog);
			if (err)
				return err;
		}
	}
	return 0;
}

#define SENDPAGE_BLIND "TCP bytes kernel services send with kernel_sendpage()"
#define KRET_BLIND "returns of calls beyond the kernel's default kretprobe room"

/* The programs of b's backend that this kernel does without (not loaded: PROG_IF_FUNC,
 * PROG_IF_EVENT, PROG_UNLESS_FUNC), one per call, the first from *at = 0; NULL after the
 * last. The one walk of the lists for everything that reports them. */
static const struct prog_ref *next_left_out(const struct dstrace_backend *b, size_t *at)
{
	size_t k = 0;

	for (size_t l = 0; l < NELEM(prog_lists); l++) {
		if (!list_loaded_by(&prog_lists[l], b->kind))
			continue;
		for (size_t i = 0; i < prog_lists[l].n; i++, k++) {
			const struct prog_ref *ref = &prog_lists[l].progs[i];

			if (k < *at || bpf_program__autoload(prog_of(b->skel, ref)))
				continue;
			*at = k + 1;
			return ref;
		}
	}
	return NULL;
}

int dstrace_backend__blind(const struct dstrace_backend *b, const char **out, int max)
{
	const struct prog_ref *ref;
	int n = 0;

	for (size_t at = 0; n < max && (ref = next_left_out(b, &at));)
		if (ref->blind)
			out[n++] = ref->blind;
	if (b->resolver_blind[0] && n < max)
		out[n++] = "names of resolved peers";
	if (b->kind == DSTRACE_BACKEND_TRACEPOINT && !b->skel->rodata->syscall_dest_supported &&
	    n < max)
		out[n++] = "v6-only send failures";
	if (b->sendpage_blind && n < max)
		out[n++] = SENDPAGE_BLIND;
	if (b->kret_blind[0] && n < max)
		out[n++] = KRET_BLIND;
	return n;
}

/* Once the backend runs: one line per path it cannot see on this kernel, and why. */
static void say_blind(const struct dstrace_backend *b)
{
	const struct prog_ref *ref;

	if (b->resolver_blind[0])
		fprintf(stderr, "dstrace: warning: names of resolved peers are not seen: %s\n",
			b->resolver_blind);
	if (b->kret_blind[0])
		fprintf(stderr,
			"dstrace: warning: backend %s: %s: more calls of a function in flight at "
			"once than the kernel's default room (as few as one per CPU) return unseen "
			"and uncounted\n",
			dstrace_backend_name(b->kind), b->kret_blind);
	if (b->sendpage_blind)
		fprintf(stderr,
			"dstrace: warning: backend %s: %s are not seen on this kernel "
			"(before Linux 6.5: no sock_send_length tracepoint; a program's "
			"sendfile() and splice() have one)\n",
			dstrace_backend_name(b->kind), SENDPAGE_BLIND);
	for (size_t at = 0; (ref = next_left_out(b, &at));) {
		char event[64], *slash;

		if (!ref->blind)
			continue;
		snprintf(event, sizeof(event), "%s", ref->event); /* io_uring:io_uring_... */
		slash = strchr(event, '/');
		if (slash)
			*slash = ':';
		fprintf(stderr,
			"dstrace: warning: backend %s: %s are not seen on this kernel "
			"(no %s tracepoint)\n",
			dstrace_backend_name(b->kind), ref->blind, event);
	}
}

/* -v: the programs of the backend this kernel does without, and why. */
static void say_left_out(const struct dstrace_backend *b)
{
	const struct prog_ref *ref;

	for (size_t at = 0; (ref = next_left_out(b, &at));) {
		const char *name = bpf_program__name(prog_of(b->skel, ref));

		if (ref->fixed_by)
			fprintf(stderr, "dstrace: %s not attached: not needed on a kernel with %s()\n",
				name, ref->fixed_by);
		else if (ref->func)
			fprintf(stderr, "dstrace: %s not attached: this kernel has no %s()\n", name,
				ref->func);
		else
			fprintf(stderr, "dstrace: %s not attached: this kernel has no %s tracepoint\n",
				name, ref->event);
	}
}

/* The BPF object is 1.4 MB of dstrace's own file, read by the open, which copies what the load
 * needs: its pages then leave dstrace's memory (a later open reads them from the file again). */
static void object_bytes_release(void)
{
	size_t sz, page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t p = (uintptr_t)dstrace__elf_bytes(&sz);
	uintptr_t start = (p + page - 1) & ~(uintptr_t)(page - 1);
	uintptr_t end = (p + sz) & ~(uintptr_t)(page - 1);

	if (end > start)
		madvise((void *)start, end - start, MADV_DONTNEED);
}

/* Open, configure, load and attach one backend; on failure b->why says what failed. */
static int backend_try(struct dstrace_backend *b, const struct env *env,
		       enum dstrace_backend_kind kind)
{
	int err;

	b->kind = kind;
	b->why[0] = '\0';
	b->resolver_blind[0] = '\0';
	dstrace_resolver_libs(&b->rlibs, "/proc/self/maps",
#if defined(__x86_64__) /* where the resolver reads 32-bit programs' calls */
			      ia32_loader(),
#else
			      NULL,
#endif
			      env->resolver_libs, env->n_resolver_libs, b->resolver_blind,
			      sizeof(b->resolver_blind));
	b->recvmsg_noblock = false;
	b->sendpage_blind = false;
	b->kret_blind[0] = '\0';
	err = precheck(b);
	if (err) {
		kernel_btf_release(b);
		return err;
	}
	/* The verifier's log, which libbpf asks for when a program is refused, in a buffer of
	 * ours: libbpf's own is 16 MiB (where fentry is refused, that attempt's log added 2.3 MB
	 * to dstrace's peak memory). A log longer than 64 KiB keeps its end (Linux 6.4+) or its
	 * start, and the kernel then answers ENOSPC instead of the load's own error. libbpf
	 * prints only logs in its own buffers: -v prints this one. */
	static char verifier_log[64 * 1024];
	{
		LIBBPF_OPTS(bpf_object_open_opts, opts, .kernel_log_buf = verifier_log,
			    .kernel_log_size = sizeof(verifier_log));

		verifier_log[0] = '\0';
		b->skel = dstrace__open_opts(&opts);
		object_bytes_release();
	}
	if (!b->skel) {
		err = fail(b, -errno, "failed to open the BPF object: %s", strerror(errno));
		goto out;
	}
	err = configure(b, env);
	kernel_btf_release(b); /* before the load: libbpf reads its own */
	if (err)
		goto out;
	err = dstrace__load(b->skel);
	if (err) {
		if (env->verbose && verifier_log[0])
			fprintf(stderr, "dstrace: backend %s: the verifier's log:\n%s\n",
				dstrace_backend_name(kind), verifier_log);
		fail(b, err, "failed to load BPF programs: %s%s",
		     err == -ENOSPC ? "refused by the kernel's verifier (its log was cut short)" :
				      strerror(-err),
		     kind == DSTRACE_BACKEND_FENTRY && err == -EPERM ?
			     " (this kernel refuses fentry programs)" :
			     "");
		goto out;
	}
	err = populate(b, env);
	if (err)
		goto out;
	err = fault_skip_set(b);
	if (err)
		goto out;
	/* no 32-bit exec is told of where there is nothing to follow */
	b->skel->bss->compat_following = !compat_prog(b);
	err = attach(b);
	if (!err && bpf_program__autoload(b->skel->progs.rs_getaddrinfo_ret))
		err = resolver_attach(b, env->verbose);
	if (!err)
		say_blind(b);
	if (!err && kind == DSTRACE_BACKEND_TRACEPOINT && !b->skel->rodata->syscall_dest_supported)
		fprintf(stderr, "dstrace: warning: on this architecture a send on a v6-only socket "
				"to a mapped address fails unseen (no syscall table for it)\n");
out:
	kernel_btf_release(b);
	if (err)
		backend_detach(b);
	return err;
}

int dstrace_backend__new(const struct env *env, struct dstrace_backend **out)
{
	struct dstrace_backend *b = calloc(1, sizeof(*b));
	char reasons[3 * (WHY_LEN + 4)] = "";
	const char *v = getenv("DSTRACE_CONNECT_WAIT_MAX"),
		   *skip = getenv("DSTRACE_FAULT_SKIP_STATE");
	int err = -ENOENT;

	if (!b)
		return -ENOMEM;
	if (skip) { /* tests only (bpf/maps.bpf.h, fault_skip_addr) */
		char *end;
		unsigned long k;

		errno = 0;
		k = strtoul(skip, &end, 10);
		if (errno || end == skip || *end != ':' || *skip == '-' ||
		    k > DSTRACE_FAULT_TOKENS_MAX ||
		    inet_pton(AF_INET, end + 1, &b->fault_skip_addr) != 1 || !b->fault_skip_addr) {
			fprintf(stderr, "dstrace: DSTRACE_FAULT_SKIP_STATE='%s': not K:ADDR (K up "
					"to %d, ADDR an IPv4 address)\n",
				skip, DSTRACE_FAULT_TOKENS_MAX);
			free(b);
			return -EINVAL;
		}
		b->fault_skip_n = (uint32_t)k;
	}
	b->cgroup_fd = -1;
	b->conn_wait_max_s = DSTRACE_CONNECT_WAIT_MAX_S;
	if (v) {
		char *end;

		errno = 0;
		b->conn_wait_max_s = strtoull(v, &end, 10);
		if (errno || end == v || *end || *v == '-' || b->conn_wait_max_s == 0 ||
		    b->conn_wait_max_s > 86400 * 365) {
			fprintf(stderr, "dstrace: DSTRACE_CONNECT_WAIT_MAX='%s': not a number of "
					"seconds from 1 to 31536000\n", v);
			free(b);
			return -EINVAL;
		}
	}
	/* tests only: the room for other namespaces' C libraries (names.c), 1 to the default */
	b->ns_libs_max = DSTRACE_RESOLVER_NS_LIBS_MAX;
	v = getenv("DSTRACE_RESOLVER_NS_LIBS_MAX");
	if (v) {
		char *end;
		unsigned long n;

		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno || end == v || *end || *v == '-' || n == 0 ||
		    n > DSTRACE_RESOLVER_NS_LIBS_MAX) {
			fprintf(stderr, "dstrace: DSTRACE_RESOLVER_NS_LIBS_MAX='%s': not a number "
					"from 1 to %d\n", v, DSTRACE_RESOLVER_NS_LIBS_MAX);
			free(b);
			return -EINVAL;
		}
		b->ns_libs_max = (int)n;
	}
	if (env->backend != DSTRACE_BACKEND_AUTO) {
		err = backend_try(b, env, env->backend);
		if (err)
			fprintf(stderr, "dstrace: %s\n", b->why);
	} else {
		for (size_t i = 0; i < NELEM(auto_order); i++) {
			err = backend_try(b, env, auto_order[i]);
			if (!err)
				break;
			if (env->verbose)
				fprintf(stderr, "dstrace: %s; trying the next backend\n", b->why);
			strncat(reasons, "; ", sizeof(reasons) - strlen(reasons) - 1);
			strncat(reasons, b->why, sizeof(reasons) - strlen(reasons) - 1);
		}
		if (err)
			fprintf(stderr, "dstrace: no backend works on this kernel%s\n", reasons);
	}
	if (err) {
		free(b);
		return err;
	}
	if (env->verbose) {
		fprintf(stderr, "dstrace: using backend %s\n", dstrace_backend_name(b->kind));
		fprintf(stderr, "dstrace: the cgroup hooks read the calling task %s\n",
			b->skel->rodata->cgroup_task_btf ?
				"through its task's BTF (bpf_get_current_task_btf)" :
				"by helper calls (no bpf_get_current_task_btf in cgroup programs here)");
		say_left_out(b);
	}
	*out = b;
	return 0;
}

void dstrace_backend__free(struct dstrace_backend *b)
{
	if (!b)
		return;
	backend_detach(b);
	free(b);
}

/* One pass of the iterator over every process's sockets. */
static int existing_pass(struct dstrace_backend *b, uint32_t pass)
{
	char buf[256];
	ssize_t n;
	int fd;

	b->skel->bss->existing_pass = pass;
	fd = bpf_iter_create(bpf_link__fd(b->existing));
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		;
	n = n < 0 ? -errno : 0;
	close(fd);
	return (int)n;
}

void dstrace_backend__clock_tick(struct dstrace_backend *b)
{
	uint64_t now = boot_now_ns();

	__atomic_store_n(&b->skel->bss->coarse_boot_ns, now, __ATOMIC_RELAXED);
	/* the scan's notes of unconnected UDP sockets have had their time (bpf/maps.bpf.h) */
	if (b->existing_done_ns && b->skel->bss->udp_roles_n &&
	    now - b->existing_done_ns >= DSTRACE_UDP_UNDER_WAY_S * 1000000000ull)
		__atomic_store_n(&b->skel->bss->udp_roles_n, 0, __ATOMIC_RELAXED);
}

int dstrace_backend__scan_existing(struct dstrace_backend *b)
{
	int err;

	if (!b->existing)
		return -ENOENT;
	err = existing_pass(b, 1);
	if (!err)
		err = existing_pass(b, 2);
	b->skel->bss->existing_pass = 0;
	b->existing_done_ns = boot_now_ns();
	__atomic_store_n(&b->skel->bss->existing_done, 1, __ATOMIC_RELEASE);
	return err;
}

const char *dstrace_backend__name(const struct dstrace_backend *b)
{
	return dstrace_backend_name(b->kind);
}

int dstrace_backend__ringbuf_fd(const struct dstrace_backend *b)
{
	return bpf_map__fd(b->skel->maps.events);
}

int dstrace_backend__exec_notices_fd(const struct dstrace_backend *b)
{
	return bpf_map__fd(b->skel->maps.exec_notices);
}
