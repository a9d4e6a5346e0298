// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Finding the cgroup v2 mount point in /proc/self/mountinfo text, a cgroup id's path (the walk,
 * on a directory tree of our own) and a process's executable. The functions that mount file
 * systems are for the end-to-end tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cgroupfs.h"
#include "unit.h"

/* systemd's hybrid layout (Debian 10, Ubuntu 20.04): v1 controllers, v2 beside them. */
static const char hybrid[] =
	"22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
	"25 22 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
	"26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
	"cgroup2 rw,nsdelegate\n"
	"27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup "
	"cgroup rw,xattr,name=systemd\n"
	"31 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - "
	"cgroup cgroup rw,cpu,cpuacct\n"
	"42 23 0:13 / /sys/kernel/tracing rw,relatime - tracefs tracefs rw\n";

/* The unified layout (Debian 11+, Fedora 31+). */
static const char unified[] =
	"24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
	"27 24 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
	"rw,nsdelegate,memory_recursiveprot\n"
	"30 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n";

/* cgroup v1 only: nothing to find. */
static const char v1_only[] =
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"44 31 0:38 / /run/cgroup2 rw,relatime - tmpfs cgroup2 rw\n";

static void test_hybrid(void)
{
	char path[256] = "";

	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(hybrid, path, sizeof(path)), 0);
	ASSERT_STR_EQ(path, "/sys/fs/cgroup/unified");
}

static void test_unified(void)
{
	char path[256] = "";

	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(unified, path, sizeof(path)), 0);
	ASSERT_STR_EQ(path, "/sys/fs/cgroup");
}

static void test_none(void)
{
	char path[256] = "untouched";

	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(v1_only, path, sizeof(path)), -ENOENT);
	ASSERT_STR_EQ(path, "untouched");
	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount("", path, sizeof(path)), -ENOENT);
	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount("\n\n", path, sizeof(path)), -ENOENT);
	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount("garbage without fields\n", path, sizeof(path)),
		      -ENOENT);
	ASSERT_STR_EQ(path, "untouched");
}

/* /sys/fs/cgroup wins over any other cgroup2 mount, before or after it. */
static void test_prefers_sys_fs_cgroup(void)
{
	static const char before[] =
		"50 1 0:40 / /run/other rw - cgroup2 cgroup2 rw\n"
		"27 24 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
		"51 1 0:41 / /mnt/cg rw - cgroup2 none rw\n";
	static const char after[] =
		"27 24 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
		"50 1 0:40 / /run/other rw - cgroup2 cgroup2 rw\n";
	static const char two_others[] =
		"50 1 0:40 / /run/first rw - cgroup2 cgroup2 rw\n"
		"51 1 0:41 / /run/second rw - cgroup2 cgroup2 rw\n";
	char path[256];

	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(before, path, sizeof(path)), 0);
	ASSERT_STR_EQ(path, "/sys/fs/cgroup");
	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(after, path, sizeof(path)), 0);
	ASSERT_STR_EQ(path, "/sys/fs/cgroup");
	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(two_others, path, sizeof(path)), 0);
	ASSERT_STR_EQ(path, "/run/first");
}

/* A bind mount of a sub-cgroup (a container without its own cgroup namespace) is not the
 * hierarchy's root: programs attached there would miss every process outside it. */
static void test_skips_non_root(void)
{
	static const char text[] =
		"700 650 0:25 /docker/0123abcd /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n"
		"701 650 0:25 / /host/cgroup rw - cgroup2 cgroup rw\n";
	char path[256];

	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(text, path, sizeof(path)), 0);
	ASSERT_STR_EQ(path, "/host/cgroup");
	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(
			      "700 650 0:25 /docker/0123abcd /sys/fs/cgroup ro - cgroup2 cgroup rw\n",
			      path, sizeof(path)),
		      -ENOENT);
}

/* The file system type is the field after " - ", not a word elsewhere on the line. */
static void test_fstype_field(void)
{
	static const char text[] =
		"44 31 0:38 / /run/cgroup2 rw,relatime - tmpfs cgroup2 rw\n"
		"45 31 0:39 / /sys/fs/cgroup/x rw,relatime - cgroup cgroup2 rw\n"
		"46 31 0:40 / /sys/fs/cgroup/y rw,relatime shared:1 master:2 - cgroup2 cgroup2 rw";
	char path[256];

	/* the last line has optional fields and no newline */
	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(text, path, sizeof(path)), 0);
	ASSERT_STR_EQ(path, "/sys/fs/cgroup/y");
}

/* A path that does not fit is not returned cut short. */
static void test_small_buffer(void)
{
	size_t size = strlen("/sys/fs/cgroup/unified"); /* one short: no room for the NUL */
	char *path = malloc(size);

	REQUIRE_TRUE(path != NULL);
	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(hybrid, path, size), -ENOENT);
	free(path);
	path = malloc(size + 1);
	REQUIRE_TRUE(path != NULL);
	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(hybrid, path, size + 1), 0);
	ASSERT_STR_EQ(path, "/sys/fs/cgroup/unified");
	free(path);
}

/* proc(5): spaces, tabs, newlines and backslashes in mountinfo paths are written as octal
 * escapes (\040 for a space). The path returned must be the one to open. */
static void test_escaped_mount_point(void)
{
	static const char text[] = "60 1 0:50 / /mnt/cgroup\\040v2 rw,relatime - cgroup2 none rw\n";
	char path[256] = "";

	ASSERT_INT_EQ(dstrace_parse_cgroup2_mount(text, path, sizeof(path)), 0);
	ASSERT_STR_EQ(path, "/mnt/cgroup v2");
}

#define GONE_PID 5000001 /* above any pid_max: /proc never answers for it */

/* A process gone: its cgroup is found by walking the hierarchy for the directory whose inode
 * is the cgroup id. A tree of our own stands for the hierarchy. */
static void test_path_by_id(void)
{
	char root[] = "/tmp/dstrace-unit-cgroup.XXXXXX", dir[128], out[64];
	struct stat st;

	REQUIRE_TRUE(mkdtemp(root) != NULL);
	snprintf(dir, sizeof(dir), "%s/system.slice", root);
	REQUIRE_TRUE(mkdir(dir, 0700) == 0);
	snprintf(dir, sizeof(dir), "%s/system.slice/nginx.service", root);
	REQUIRE_TRUE(mkdir(dir, 0700) == 0);
	REQUIRE_TRUE(stat(dir, &st) == 0);
	dstrace_cgroup_path(root, GONE_PID, st.st_ino, out, sizeof(out));
	ASSERT_STR_EQ(out, "/system.slice/nginx.service");
	dstrace_cgroup_path(root, GONE_PID, st.st_ino, out, 8); /* cut short */
	ASSERT_STR_EQ(out, "/system");
	REQUIRE_TRUE(stat(root, &st) == 0);
	dstrace_cgroup_path(root, GONE_PID, st.st_ino, out, sizeof(out));
	ASSERT_STR_EQ(out, "/"); /* the root itself */
	dstrace_cgroup_path(root, GONE_PID, 1, out, sizeof(out)); /* no such cgroup */
	ASSERT_STR_EQ(out, "");
	dstrace_cgroup_path("", GONE_PID, st.st_ino, out, sizeof(out)); /* no hierarchy known */
	ASSERT_STR_EQ(out, "");
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/system.slice", root);
	rmdir(dir);
	rmdir(root);
}

/* A running process's cgroup from /proc/PID/cgroup; its executable from /proc/PID/exe. */
static void test_proc_lookups(void)
{
	char want[256], out[256] = "x", line[300] = "";
	ssize_t n = readlink("/proc/self/exe", want, sizeof(want) - 1);
	FILE *f = fopen("/proc/self/cgroup", "re");

	REQUIRE_TRUE(n > 0);
	want[n] = '\0';
	dstrace_proc_exe(getpid(), out, sizeof(out));
	ASSERT_STR_EQ(out, want);
	dstrace_proc_exe(GONE_PID, out, sizeof(out));
	ASSERT_STR_EQ(out, "");
	/* with no hierarchy to check the id against, /proc/PID/cgroup's word is taken */
	while (f && fgets(line, sizeof(line), f) && strncmp(line, "0::", 3))
		line[0] = '\0';
	if (f)
		fclose(f);
	if (!strncmp(line, "0::", 3)) {
		line[strcspn(line, "\n")] = '\0';
		dstrace_cgroup_path("", getpid(), 0, out, sizeof(out));
		ASSERT_STR_EQ(out, line + 3);
	}
}

static const CU_TestInfo tests[] = {
	{ "hybrid layout", test_hybrid },
	{ "unified layout", test_unified },
	{ "no cgroup2", test_none },
	{ "prefers /sys/fs/cgroup", test_prefers_sys_fs_cgroup },
	{ "skips bind mounts of sub-cgroups", test_skips_non_root },
	{ "file system type field", test_fstype_field },
	{ "small buffer", test_small_buffer },
	{ "escaped mount point", test_escaped_mount_point },
	{ "cgroup path by id (walk)", test_path_by_id },
	{ "process cgroup and executable", test_proc_lookups },
	CU_TEST_INFO_NULL,
};

int register_cgroupfs_tests(void)
{
	return unit_add_suite("cgroupfs", tests, NULL);
}
