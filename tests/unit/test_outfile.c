// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Output files: created, truncated or appended to as asked; never through a symbolic link;
 * never a file another user owns in a sticky world-writable directory (needs root to make
 * one: the end-to-end fault suite checks it too). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "outfile.h"
#include "unit.h"

static char dir[] = "/tmp/dstrace-unit-outfile.XXXXXX";
static char path[128], link_path[128], target[128], why[256];

static char *slurp(const char *p)
{
	static char buf[256];
	FILE *f = fopen(p, "r");
	size_t n;

	if (!f)
		return "(none)";
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void put(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static int setup(void)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/out", dir);
	snprintf(link_path, sizeof(link_path), "%s/link", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	return 0;
}

static int cleanup(void)
{
	unlink(path);
	unlink(link_path);
	unlink(target);
	rmdir(dir);
	return 0;
}

static void test_create_truncate_append(void)
{
	FILE *f = NULL;
	struct stat st;

	unlink(path);
	ASSERT_INT_EQ(outfile_open(path, OUTFILE_TRUNCATE, &f, why, sizeof(why)), 0);
	REQUIRE_TRUE(f != NULL);
	/* Not inherited by children. */
	ASSERT_TRUE(fcntl(fileno(f), F_GETFD) & FD_CLOEXEC);
	fputs("first\n", f);
	fclose(f);
	ASSERT_STR_EQ(slurp(path), "first\n");
	ASSERT_INT_EQ(outfile_open(path, OUTFILE_APPEND, &f, why, sizeof(why)), 0);
	REQUIRE_TRUE(f != NULL);
	fputs("second\n", f);
	fclose(f);
	ASSERT_STR_EQ(slurp(path), "first\nsecond\n");
	ASSERT_INT_EQ(outfile_open(path, OUTFILE_TRUNCATE, &f, why, sizeof(why)), 0);
	REQUIRE_TRUE(f != NULL);
	fputs("third\n", f);
	fclose(f);
	ASSERT_STR_EQ(slurp(path), "third\n");
	REQUIRE_TRUE(stat(path, &st) == 0);
	ASSERT_UINT_EQ(st.st_size, 6);
}

static void test_symlink_refused(void)
{
	FILE *f = (FILE *)1;

	put(target, "precious\n");
	unlink(link_path);
	REQUIRE_TRUE(symlink(target, link_path) == 0);
	for (int mode = OUTFILE_TRUNCATE; mode <= OUTFILE_APPEND; mode++) {
		ASSERT_INT_EQ(outfile_open(link_path, mode, &f, why, sizeof(why)), -ELOOP);
		ASSERT_TRUE(f == NULL);
		ASSERT_STR_EQ(why, "it is a symbolic link (dstrace never writes through one)");
		ASSERT_STR_EQ(slurp(target), "precious\n");
	}
	/* A dangling link: refused, and nothing created at its target. */
	unlink(target);
	ASSERT_INT_EQ(outfile_open(link_path, OUTFILE_TRUNCATE, &f, why, sizeof(why)), -ELOOP);
	ASSERT_INT_EQ(access(target, F_OK), -1);
	unlink(link_path);
}

static void test_plain_errors(void)
{
	FILE *f = NULL;
	char p[160];

	snprintf(p, sizeof(p), "%s/no/such/dir/out", dir);
	ASSERT_INT_EQ(outfile_open(p, OUTFILE_TRUNCATE, &f, why, sizeof(why)), -ENOENT);
	ASSERT_STR_EQ(why, strerror(ENOENT));
	snprintf(p, sizeof(p), "%s/", dir);
	ASSERT_INT_EQ(outfile_open(p, OUTFILE_TRUNCATE, &f, why, sizeof(why)), -EISDIR);
	ASSERT_INT_EQ(outfile_open(dir, OUTFILE_APPEND, &f, why, sizeof(why)), -EISDIR);
}

/* The protected_regular rule: a file of uid 65534 in a sticky 1777 directory that root
 * owns is refused (and left as it is); the same file in a directory without the sticky
 * bit is ours to write; a file of root (the directory's owner) in the sticky one too. */
static void test_sticky_foreign(void)
{
	char sticky[160], p[200];
	FILE *f = NULL;

	if (geteuid() != 0) {
		fprintf(stderr, "(sticky-directory case needs root: in tests/e2e/test_faults.sh) ");
		return;
	}
	snprintf(sticky, sizeof(sticky), "%s/sticky", dir);
	snprintf(p, sizeof(p), "%s/planted", sticky);
	REQUIRE_TRUE(mkdir(sticky, 0700) == 0 && chmod(sticky, 01777) == 0);
	put(p, "planted\n");
	REQUIRE_TRUE(chown(p, 65534, 65534) == 0);
	for (int mode = OUTFILE_TRUNCATE; mode <= OUTFILE_APPEND; mode++) {
		ASSERT_INT_EQ(outfile_open(p, mode, &f, why, sizeof(why)), -EACCES);
		ASSERT_TRUE(strstr(why, "belongs to uid 65534 in the sticky world-writable directory") != NULL);
		ASSERT_STR_EQ(slurp(p), "planted\n");
	}
	REQUIRE_TRUE(chmod(sticky, 0777) == 0);
	ASSERT_INT_EQ(outfile_open(p, OUTFILE_APPEND, &f, why, sizeof(why)), 0);
	if (f)
		fclose(f);
	REQUIRE_TRUE(chmod(sticky, 01777) == 0 && chown(p, 0, 0) == 0);
	ASSERT_INT_EQ(outfile_open(p, OUTFILE_APPEND, &f, why, sizeof(why)), 0);
	if (f)
		fclose(f);
	unlink(p);
	rmdir(sticky);
}

static const CU_TestInfo tests[] = {
	{ "create, append, truncate", test_create_truncate_append },
	{ "symlink refused", test_symlink_refused },
	{ "plain errors", test_plain_errors },
	{ "foreign file in a sticky directory", test_sticky_foreign },
	CU_TEST_INFO_NULL,
};

int register_outfile_tests(void)
{
	int err = unit_add_suite("outfile", tests, cleanup);

	return err ? err : setup();
}
