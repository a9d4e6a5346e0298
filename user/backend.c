// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "backend.h"
#include "cgroupfs.h"
#include "dstrace.skel.h"

#define MAX_LINKS 32

struct dstrace_backend {
	struct dstrace *skel;
	enum dstrace_backend_kind kind;
	struct bpf_link *links[MAX_LINKS];
	int nlinks;
	int cgroup_fd;
};

/* Which backend each BPF program belongs to. */
struct prog_owner {
	const char *name;
	enum dstrace_backend_kind kind;
};

static const struct prog_owner prog_owners[] = {
	{ "tp_enter_connect", DSTRACE_BACKEND_TRACEPOINT },
	{ "tp_exit_connect", DSTRACE_BACKEND_TRACEPOINT },
	{ "tp_exit_accept", DSTRACE_BACKEND_TRACEPOINT },
	{ "tp_exit_accept4", DSTRACE_BACKEND_TRACEPOINT },
	{ "cg_sendmsg4", DSTRACE_BACKEND_TRACEPOINT },
	{ "cg_sendmsg6", DSTRACE_BACKEND_TRACEPOINT },
	{ "tp_send_length", DSTRACE_BACKEND_TRACEPOINT },
	{ "cg_recvmsg6", DSTRACE_BACKEND_TRACEPOINT },
	{ "tp_recv_length", DSTRACE_BACKEND_TRACEPOINT },
};

/* Order in which "auto" tries the backends. */
static const enum dstrace_backend_kind auto_order[] = { DSTRACE_BACKEND_TRACEPOINT };

static int owner_of(const char *prog_name, enum dstrace_backend_kind *kind)
{
	for (size_t i = 0; i < sizeof(prog_owners) / sizeof(prog_owners[0]); i++) {
		if (!strcmp(prog_owners[i].name, prog_name)) {
			*kind = prog_owners[i].kind;
			return 0;
		}
	}
	return -ENOENT;
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

static void backend_detach(struct dstrace_backend *b)
{
	while (b->nlinks > 0)
		bpf_link__destroy(b->links[--b->nlinks]);
	if (b->cgroup_fd >= 0)
		close(b->cgroup_fd);
	b->cgroup_fd = -1;
	dstrace__destroy(b->skel);
	b->skel = NULL;
}

static int configure(struct dstrace *skel, const struct env *env, enum dstrace_backend_kind kind)
{
	struct bpf_program *prog;
	int err;

	skel->rodata->filter_pid_enabled = env->npids > 0;
	skel->rodata->filter_comm_enabled = env->comm[0] != '\0';
	memcpy((char *)skel->rodata->filter_comm, env->comm, sizeof(env->comm));
	skel->rodata->filter_port = env->port;
	skel->rodata->filter_events = env->events;
	skel->rodata->filter_protos = env->protos;

	err = bpf_map__set_max_entries(skel->maps.events, env->ringbuf_kb * 1024);
	if (err)
		return err;

	bpf_object__for_each_program(prog, skel->obj) {
		enum dstrace_backend_kind owner;

		if (owner_of(bpf_program__name(prog), &owner)) {
			fprintf(stderr, "dstrace: internal error: BPF program %s has no backend\n",
				bpf_program__name(prog));
			return -EINVAL;
		}
		bpf_program__set_autoload(prog, owner == kind);
	}
	return 0;
}

/* After load, before attach: maps user space fills. */
static int populate(struct dstrace *skel, const struct env *env)
{
	int fd = bpf_map__fd(skel->maps.pid_filter);
	__u8 one = 1;

	for (unsigned int i = 0; i < env->npids; i++) {
		if (bpf_map_update_elem(fd, &env->pids[i], &one, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int attach(struct dstrace_backend *b, const char **what)
{
	struct bpf_program *prog;
	char cgroup_path[512];
	int err;

	*what = "tracefs";
	err = dstrace_ensure_tracefs();
	if (err)
		return err;

	bpf_object__for_each_program(prog, b->skel->obj) {
		struct bpf_link *link;

		if (!bpf_program__autoload(prog))
			continue;
		*what = bpf_program__name(prog);
		if (b->nlinks == MAX_LINKS)
			return -E2BIG;
		if (is_cgroup_prog(prog)) {
			if (b->cgroup_fd < 0) {
				*what = "cgroup v2 hierarchy";
				err = dstrace_find_cgroup2("/proc/self/mountinfo", cgroup_path,
							   sizeof(cgroup_path));
				if (err)
					return err;
				b->cgroup_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (b->cgroup_fd < 0)
					return -errno;
				*what = bpf_program__name(prog);
			}
			link = bpf_program__attach_cgroup(prog, b->cgroup_fd);
		} else {
			link = bpf_program__attach(prog);
		}
		if (!link)
			return -errno;
		b->links[b->nlinks++] = link;
	}
	return 0;
}

/* Open, configure, load and attach one backend. */
static int backend_try(struct dstrace_backend *b, const struct env *env,
		       enum dstrace_backend_kind kind, bool quiet)
{
	const char *verb = "open", *what = "BPF object";
	int err;

	b->kind = kind;
	b->skel = dstrace__open();
	if (!b->skel) {
		err = -errno;
		goto fail;
	}
	verb = "configure";
	err = configure(b->skel, env, kind);
	if (err)
		goto fail;
	verb = "load";
	what = "BPF programs";
	err = dstrace__load(b->skel);
	if (err)
		goto fail;
	verb = "set up";
	what = "filters";
	err = populate(b->skel, env);
	if (err)
		goto fail;
	verb = "attach";
	err = attach(b, &what);
	if (err)
		goto fail;
	return 0;
fail:
	if (!quiet)
		fprintf(stderr, "dstrace: backend %s: failed to %s %s: %s\n",
			dstrace_backend_name(kind), verb, what, strerror(-err));
	backend_detach(b);
	return err;
}

int dstrace_backend__new(const struct env *env, struct dstrace_backend **out)
{
	struct dstrace_backend *b = calloc(1, sizeof(*b));
	int err = -ENOENT;

	if (!b)
		return -ENOMEM;
	b->cgroup_fd = -1;
	if (env->backend != DSTRACE_BACKEND_AUTO) {
		err = backend_try(b, env, env->backend, false);
	} else {
		size_t n = sizeof(auto_order) / sizeof(auto_order[0]);

		for (size_t i = 0; i < n; i++) {
			/* The last candidate reports why it failed; earlier ones only in -v. */
			err = backend_try(b, env, auto_order[i], i + 1 < n && !env->verbose);
			if (!err)
				break;
		}
	}
	if (err) {
		free(b);
		return err;
	}
	if (env->verbose)
		fprintf(stderr, "dstrace: using backend %s\n", dstrace_backend_name(b->kind));
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

const char *dstrace_backend__name(const struct dstrace_backend *b)
{
	return dstrace_backend_name(b->kind);
}

int dstrace_backend__ringbuf_fd(const struct dstrace_backend *b)
{
	return bpf_map__fd(b->skel->maps.events);
}

int dstrace_backend__counters(const struct dstrace_backend *b, uint64_t out[DSTRACE_CNT_MAX])
{
	int ncpus = libbpf_num_possible_cpus();
	int fd = bpf_map__fd(b->skel->maps.counters);
	uint64_t *vals;

	if (ncpus <= 0)
		return -EINVAL;
	vals = calloc(ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (uint32_t key = 0; key < DSTRACE_CNT_MAX; key++) {
		out[key] = 0;
		if (bpf_map_lookup_elem(fd, &key, vals))
			continue;
		for (int cpu = 0; cpu < ncpus; cpu++)
			out[key] += vals[cpu];
	}
	free(vals);
	return 0;
}

int dstrace_backend__read_procs(const struct dstrace_backend *b, struct proc_table *t)
{
	int fd = bpf_map__fd(b->skel->maps.proc_stats);
	uint32_t key, next;
	uint32_t *prev = NULL;
	struct dstrace_proc_stats st;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &st))
			continue; /* gone meanwhile */
		if (proc_table__set_stats(t, key, &st))
			continue; /* counted in t->dropped */
	}
	return 0;
}
