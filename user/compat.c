// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * 32-bit programs' calls (bpf/compat.bpf.h): their program runs at every syscall's exit of
 * the machine (some 65-80 ns a call on this project's VM, for nothing where no 32-bit
 * program runs), so it is attached only where one may: at start where a 32-bit dynamic
 * loader is installed or a 32-bit process runs; else once the kernel tells of a 32-bit
 * exec() (the exec_notices ring; bpf/lifecycle.bpf.h), a static one on a machine without
 * the loader, whose first calls may come before the program is attached (said on stderr).
 * Then it stays attached.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "backend.h"
#include "dstrace.skel.h"

#include "backend_internal.h"

/* The dynamic loaders of 32-bit x86 programs (glibc's, musl's): where one is installed,
 * 32-bit programs can start at any time. */
static const char *const ia32_loaders[] = { "/lib/ld-linux.so.2", "/lib/ld-musl-i386.so.1" };

/* The first of them installed, or NULL. DSTRACE_IA32_LOADERS (tests and bench/run.sh): the
 * paths to look for instead, separated by ':' (empty: none). */
const char *ia32_loader(void)
{
	static char path[256];
	const char *env = getenv("DSTRACE_IA32_LOADERS");

	if (!env) {
		for (size_t i = 0; i < NELEM(ia32_loaders); i++)
			if (!access(ia32_loaders[i], F_OK))
				return ia32_loaders[i];
		return NULL;
	}
	while (*env) {
		size_t n = strcspn(env, ":");

		if (n && n < sizeof(path)) {
			memcpy(path, env, n);
			path[n] = '\0';
			if (!access(path, F_OK))
				return path;
		}
		env += n + (env[n] == ':');
	}
	return NULL;
}

/* A 32-bit process, or 0. */
static pid_t find_ia32_process(void)
{
	pid_t found = 0;
	struct dirent *d;
	DIR *proc = opendir("/proc");

	if (!proc)
		return 0;
	while (!found && (d = readdir(proc)))
		if (d->d_name[0] >= '1' && d->d_name[0] <= '9' &&
		    exe_kind(d->d_name) == EXE_IA32)
			found = (pid_t)strtol(d->d_name, NULL, 10);
	closedir(proc);
	return found;
}

int dstrace_backend__follow_compat(struct dstrace_backend *b, pid_t pid, char *why, size_t len)
{
	struct bpf_program *prog = compat_prog(b);

	if (!prog || b->compat_link || b->compat_failed)
		return 0;
	if (pid) {
		snprintf(why, len, "a 32-bit program started (pid %d)", (int)pid);
	} else {
		const char *loader = ia32_loader();

		if (loader) {
			snprintf(why, len, "32-bit programs can run here (%s)", loader);
		} else if ((pid = find_ia32_process()) > 0) {
			snprintf(why, len, "a 32-bit program runs (pid %d)", (int)pid);
		} else {
			return 0;
		}
	}
	b->compat_link = bpf_program__attach(prog);
	/* once: a failure is said once, and no more execs are told of */
	b->skel->bss->compat_following = 1;
	if (!b->compat_link) {
		b->compat_failed = true;
		return -errno;
	}
	return 1;
}
