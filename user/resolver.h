/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The C library files whose getaddrinfo() the resolver's uprobes follow (bpf/resolver.bpf.h). */
#ifndef DSTRACE_RESOLVER_H
#define DSTRACE_RESOLVER_H

#include <limits.h>
#include <stddef.h>
#include "options.h"

/* ours, the 32-bit one, and those --resolver-lib names */
#define DSTRACE_RESOLVER_LIBS_MAX (2 + DSTRACE_RESOLVER_LIBS_GIVEN_MAX)

struct resolver_libs {
	int n;
	char path[DSTRACE_RESOLVER_LIBS_MAX][PATH_MAX];
};

/* Fill libs, each file once however many paths lead to it (uprobes follow the file):
 * - the C library this process runs with, found in maps (/proc/self/maps);
 * - where ia32_loader, a 32-bit x86 dynamic loader, is installed (NULL: none), the C library
 *   of 32-bit programs: the file beside the loader (musl's loader is its C library);
 * - given[0..n_given), --resolver-lib's paths, kept as given even if missing (the attach
 *   then says why).
 * Returns 0, or -ENOENT with why filled if maps named no C library (the rest still filled). */
int dstrace_resolver_libs(struct resolver_libs *libs, const char *maps, const char *ia32_loader,
			  const char *const *given, int n_given, char *why, size_t why_len);

/* C libraries found in other mount namespaces (containers) followed at most at once (the
 * environment variable DSTRACE_RESOLVER_NS_LIBS_MAX lowers it: tests) */
#define DSTRACE_RESOLVER_NS_LIBS_MAX 256

/* The places a container image keeps its C library, relative to its root: glibc's
 * (Debian's multiarch directory, lib64, lib) and musl's loader, which is its C library.
 * NULL-terminated. */
extern const char *const dstrace_resolver_ns_paths[];

/* The mount namespace inode in a /proc/PID/ns/mnt link's text ("mnt:[4026531841]"), or 0. */
unsigned long dstrace_mnt_ns_of(const char *link);

#endif /* DSTRACE_RESOLVER_H */
