// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The C library files whose getaddrinfo() the resolver's uprobes follow: dstrace's own (every
 * program that loads the same file is covered, in every namespace that shares it), the
 * 32-bit one where 32-bit programs can run, and those --resolver-lib adds (a container's
 * musl, say).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "resolver.h"

/* Add path to libs unless the file it names is there already; a path that names no file is
 * added as it is (its attach says why). */
static void add(struct resolver_libs *libs, const char *path)
{
	struct stat st, other;
	bool known = !stat(path, &st);

	if (libs->n == DSTRACE_RESOLVER_LIBS_MAX || !*path || strlen(path) >= PATH_MAX)
		return;
	for (int i = 0; i < libs->n; i++) {
		if (!strcmp(libs->path[i], path))
			return;
		if (known && !stat(libs->path[i], &other) && other.st_dev == st.st_dev &&
		    other.st_ino == st.st_ino)
			return;
	}
	memcpy(libs->path[libs->n++], path, strlen(path) + 1);
}

/* The C library in a maps file (a path whose base name is libc.so*, libc-*, ld-musl*). */
static int libc_of_maps(const char *maps, char *buf, size_t size)
{
	FILE *f = fopen(maps, "re");
	char line[4096];
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (err && fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/'), *base;

		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		base = strrchr(path, '/') + 1;
		if ((!strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5) ||
		     !strncmp(base, "ld-musl", 7)) &&
		    (size_t)snprintf(buf, size, "%s", path) < size)
			err = 0;
	}
	fclose(f);
	return err;
}

/* The C library of the programs a 32-bit loader starts: glibc's libc.so.6 in the directory
 * of the loader's file (/lib/ld-linux.so.2 -> /usr/lib32/ld-linux.so.2: /usr/lib32/libc.so.6,
 * or /usr/lib/i386-linux-gnu/ for Debian's libc6:i386); musl's loader is its C library. */
static int libc_of_loader(const char *loader, char *buf, size_t size)
{
	char *real = realpath(loader, NULL), *slash;
	int err = -ENOENT;

	if (!real)
		return -errno;
	slash = strrchr(real, '/');
	if (!strncmp(slash + 1, "ld-musl", 7)) {
		if ((size_t)snprintf(buf, size, "%s", real) < size)
			err = 0;
	} else {
		*slash = '\0';
		if ((size_t)snprintf(buf, size, "%s/libc.so.6", real) < size && !access(buf, R_OK))
			err = 0;
	}
	free(real);
	return err;
}

int dstrace_resolver_libs(struct resolver_libs *libs, const char *maps, const char *ia32_loader,
			  const char *const *given, int n_given, char *why, size_t why_len)
{
	char path[PATH_MAX];
	int err = libc_of_maps(maps, path, sizeof(path));

	libs->n = 0;
	if (err)
		snprintf(why, why_len, "no C library found in %s", maps);
	else
		add(libs, path);
	if (ia32_loader && !libc_of_loader(ia32_loader, path, sizeof(path)))
		add(libs, path);
	for (int i = 0; i < n_given; i++)
		add(libs, given[i]);
	return err ? -ENOENT : 0;
}

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#define MUSL_ARCH "x86_64"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#define MUSL_ARCH "aarch64"
#else
#error "dstrace_resolver_ns_paths: no C library paths for this architecture"
#endif

const char *const dstrace_resolver_ns_paths[] = {
	"lib/" MULTIARCH "/libc.so.6",	   /* Debian, Ubuntu */
	"usr/lib/" MULTIARCH "/libc.so.6", /* the same, /lib not a link */
	"lib64/libc.so.6",		   /* Fedora, RHEL, SUSE */
	"usr/lib64/libc.so.6",
	"lib/libc.so.6",		   /* Arch, distroless' busybox */
	"usr/lib/libc.so.6",
	"lib/ld-musl-" MUSL_ARCH ".so.1",	   /* Alpine */
	"usr/lib/ld-musl-" MUSL_ARCH ".so.1",
	NULL,
};

unsigned long dstrace_mnt_ns_of(const char *link)
{
	unsigned long ino;
	char end;

	if (sscanf(link, "mnt:[%lu%c", &ino, &end) != 2 || end != ']')
		return 0;
	return ino;
}
