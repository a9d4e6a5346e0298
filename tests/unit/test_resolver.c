// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The C libraries the resolver's uprobes follow (user/resolver.c): ours from a maps file, the
 * 32-bit one beside its loader (glibc's through the loader's symbolic link; musl's loader is
 * its C library), those given, each file once. A tree of our own stands for the file system. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "resolver.h"
#include "unit.h"

static char root[] = "/tmp/dstrace-unit-resolver.XXXXXX";

/* root/REL, made as a file (or, with target, a symbolic link to it); its path in out */
static void make(const char *rel, const char *target, char *out, size_t size)
{
	char dir[PATH_MAX];
	FILE *f;

	snprintf(out, size, "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", out);
	for (char *p = dir + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(dir, 0700);
		*p = '/';
	}
	if (target) {
		REQUIRE_TRUE(symlink(target, out) == 0);
		return;
	}
	f = fopen(out, "w");
	REQUIRE_TRUE(f != NULL);
	fclose(f);
}

static void maps_file(char *out, size_t size, const char *libc)
{
	FILE *f;

	snprintf(out, size, "%s/maps", root);
	f = fopen(out, "w");
	REQUIRE_TRUE(f != NULL);
	fprintf(f, "55d0c1a00000-55d0c1a21000 r--p 00000000 fe:01 1234 /usr/sbin/dstrace\n"
		   "7f3a40000000-7f3a40021000 rw-p 00000000 00:00 0 \n");
	if (libc)
		fprintf(f, "7f3a41000000-7f3a41026000 r-xp 00026000 fe:01 5678 %s\n", libc);
	fprintf(f, "7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0 [stack]\n");
	fclose(f);
}

static void test_libraries(void)
{
	char libc[PATH_MAX], libc_link[PATH_MAX], loader[PATH_MAX], loader_link[PATH_MAX],
		libc32[PATH_MAX], musl[PATH_MAX], maps[PATH_MAX], why[128] = "", missing[PATH_MAX];
	static struct resolver_libs libs;

	REQUIRE_TRUE(mkdtemp(root) != NULL);
	make("usr/lib/x86_64-linux-gnu/libc.so.6", NULL, libc, sizeof(libc));
	make("lib64/libc.so.6", "../usr/lib/x86_64-linux-gnu/libc.so.6", libc_link,
	     sizeof(libc_link));
	make("usr/lib32/ld-linux.so.2", NULL, loader, sizeof(loader));
	make("usr/lib32/libc.so.6", NULL, libc32, sizeof(libc32));
	make("lib/ld-linux.so.2", "../usr/lib32/ld-linux.so.2", loader_link, sizeof(loader_link));
	make("lib/ld-musl-i386.so.1", NULL, musl, sizeof(musl));
	snprintf(missing, sizeof(missing), "%s/nonexistent/libc.so.6", root);
	maps_file(maps, sizeof(maps), libc);

	/* ours, the 32-bit one beside the loader the link leads to, then those given: the same
	 * file by another path, or the same path again, once; a missing one kept */
	const char *given[] = { libc_link, musl, missing, musl, libc32 };
	ASSERT_INT_EQ(dstrace_resolver_libs(&libs, maps, loader_link, given, 5, why, sizeof(why)),
		      0);
	ASSERT_STR_EQ(why, "");
	ASSERT_INT_EQ(libs.n, 4);
	ASSERT_STR_EQ(libs.path[0], libc);
	ASSERT_STR_EQ(libs.path[1], libc32);
	ASSERT_STR_EQ(libs.path[2], musl);
	ASSERT_STR_EQ(libs.path[3], missing);

	/* musl's 32-bit loader is its C library; no 32-bit loader: none */
	ASSERT_INT_EQ(dstrace_resolver_libs(&libs, maps, musl, NULL, 0, why, sizeof(why)), 0);
	ASSERT_INT_EQ(libs.n, 2);
	ASSERT_STR_EQ(libs.path[1], musl);
	ASSERT_INT_EQ(dstrace_resolver_libs(&libs, maps, NULL, NULL, 0, why, sizeof(why)), 0);
	ASSERT_INT_EQ(libs.n, 1);

	/* a glibc loader with no libc.so.6 beside it adds nothing */
	REQUIRE_TRUE(unlink(libc32) == 0);
	ASSERT_INT_EQ(dstrace_resolver_libs(&libs, maps, loader_link, NULL, 0, why, sizeof(why)),
		      0);
	ASSERT_INT_EQ(libs.n, 1);

	/* no C library in the maps: said, and the others still listed */
	maps_file(maps, sizeof(maps), NULL);
	ASSERT_INT_EQ(dstrace_resolver_libs(&libs, maps, musl, given, 1, why, sizeof(why)),
		      -ENOENT);
	ASSERT_TRUE(!strncmp(why, "no C library found in ", 22));
	ASSERT_INT_EQ(libs.n, 2);
	ASSERT_STR_EQ(libs.path[0], musl);
	ASSERT_STR_EQ(libs.path[1], libc_link);

	snprintf(maps, sizeof(maps), "rm -rf '%s'", root);
	REQUIRE_TRUE(system(maps) == 0);
}

/* A mount namespace's inode from its /proc/PID/ns/mnt link; anything else is 0. */
static void test_mnt_ns(void)
{
	ASSERT_TRUE(dstrace_mnt_ns_of("mnt:[4026531841]") == 4026531841ul);
	ASSERT_TRUE(dstrace_mnt_ns_of("mnt:[4026531841") == 0);
	ASSERT_TRUE(dstrace_mnt_ns_of("net:[4026531841]") == 0);
	ASSERT_TRUE(dstrace_mnt_ns_of("mnt:[]") == 0);
	ASSERT_TRUE(dstrace_mnt_ns_of("") == 0);
	/* the places looked in are relative to the namespace's root */
	for (int i = 0; dstrace_resolver_ns_paths[i]; i++)
		ASSERT_TRUE(dstrace_resolver_ns_paths[i][0] != '/');
}

static const CU_TestInfo tests[] = {
	{ "C libraries followed", test_libraries },
	{ "mount namespaces", test_mnt_ns },
	CU_TEST_INFO_NULL,
};

int register_resolver_tests(void)
{
	return unit_add_suite("resolver", tests, NULL);
}
