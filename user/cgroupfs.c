// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The file systems dstrace reads: where cgroup v2 is mounted (mounting it when no one has),
 * tracefs for libbpf, a cgroup id's path (procfs first, else a walk of the hierarchy) and a
 * process's executable. No file-static state: the walk keeps its search in locals (fts).
 */
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cgroupfs.h"

#define CGROUP2_FALLBACK "/run/dstrace/cgroup2"

/* mountinfo writes space, tab, newline and backslash in paths as \ooo (proc(5)). */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER */
int dstrace_parse_cgroup2_mount(const char *text, char *path, size_t size)
{
	const char *line = text;
	int found = -ENOENT;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[4096], root[4096], mnt[4096];
		char *sep;

		if (len < sizeof(buf)) {
			memcpy(buf, line, len);
			buf[len] = '\0';
			sep = strstr(buf, " - ");
			if (sep && !strncmp(sep + 3, "cgroup2 ", 8) &&
			    sscanf(buf, "%*s %*s %*s %4095s %4095s", root, mnt) == 2 &&
			    !strcmp(root, "/") && (unescape_octal(mnt), strlen(mnt) < size)) {
				/* prefer the unified-only layout's /sys/fs/cgroup */
				if (found || !strcmp(mnt, "/sys/fs/cgroup")) {
					strcpy(path, mnt);
					found = 0;
				}
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return found;
}

/* The whole of a small text file; NULL on error. */
static char *read_text(const char *file)
{
	FILE *f = fopen(file, "re");
	char *text = NULL;
	size_t cap = 0, len = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *t = realloc(text, cap = cap ? cap * 2 : 65536);

			if (!t) {
				free(text);
				fclose(f);
				return NULL;
			}
			text = t;
		}
		size_t n = fread(text + len, 1, cap - len - 1, f);

		if (!n)
			break;
		len += n;
	}
	fclose(f);
	if (!text)
		return NULL;
	text[len] = '\0';
	return text;
}

void dstrace_find_cgroup2_quiet(char *path, size_t size)
{
	char *text = read_text("/proc/self/mountinfo");

	if (!text || dstrace_parse_cgroup2_mount(text, path, size))
		path[0] = '\0';
	free(text);
}

int dstrace_find_cgroup2(const char *mountinfo, char *path, size_t size)
{
	char *text = read_text(mountinfo);
	int err;

	if (!text)
		return errno ? -errno : -ENOMEM;
	err = dstrace_parse_cgroup2_mount(text, path, size);
	free(text);
	if (!err)
		return 0;

	/* No cgroup v2 anywhere (a v1-only host): mount our own view of the hierarchy. */
	if (mkdir("/run/dstrace", 0700) && errno != EEXIST)
		return -errno;
	if (mkdir(CGROUP2_FALLBACK, 0700) && errno != EEXIST)
		return -errno;
	if (mount("cgroup2", CGROUP2_FALLBACK, "cgroup2", 0, NULL) && errno != EBUSY)
		return -errno;
	if (strlen(CGROUP2_FALLBACK) >= size)
		return -ENAMETOOLONG;
	strcpy(path, CGROUP2_FALLBACK);
	return 0;
}

int dstrace_tracefs_path(const char *file, char *buf, size_t size)
{
	static const char *const roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		snprintf(buf, size, "%s/%s", roots[i], file);
		if (!access(buf, F_OK))
			return 0;
	}
	return -ENOENT;
}

int dstrace_ensure_tracefs(void)
{
	char path[64];

	if (!dstrace_tracefs_path("events", path, sizeof(path)))
		return 0;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		return -errno;
	return 0;
}

/* Copy the n bytes at src into out (size bytes), cut short if need be. */
static void copy_cut(const char *src, size_t n, char *out, size_t size)
{
	n = n < size ? n : size - 1;
	memcpy(out, src, n);
	out[n] = '\0';
}

/* The cgroup whose id (its directory's inode) is cgroup_id, by walking the hierarchy under
 * cgroup_root (not crossing into other mounts): for processes already gone. */
static void cgroup_path_by_id(const char *cgroup_root, uint64_t cgroup_id, char *out, size_t size)
{
	char *const roots[] = { (char *)cgroup_root, NULL };
	size_t root_len = strlen(cgroup_root);
	FTSENT *ent;
	FTS *fts;

	out[0] = '\0';
	if (!root_len)
		return;
	fts = fts_open(roots, FTS_PHYSICAL | FTS_XDEV | FTS_NOCHDIR, NULL);
	if (!fts)
		return;
	while ((ent = fts_read(fts))) {
		if (ent->fts_info != FTS_D || ent->fts_statp->st_ino != cgroup_id)
			continue;
		if (ent->fts_pathlen <= root_len) /* the root itself */
			snprintf(out, size, "/");
		else
			copy_cut(ent->fts_path + root_len, ent->fts_pathlen - root_len, out, size);
		break;
	}
	fts_close(fts);
}

/* The cgroup v2 path /proc/PID/cgroup gives ("0::PATH"), if it is cgroup_id's still (the
 * process may have moved); "" otherwise. */
static void proc_cgroup_path(const char *cgroup_root, uint32_t pid, uint64_t cgroup_id,
			     char *out, size_t size)
{
	char file[64], line[256 + 8], full[1024]; /* a longer path: found by the walk */
	struct stat st;
	FILE *f;

	out[0] = '\0';
	snprintf(file, sizeof(file), "/proc/%u/cgroup", pid);
	f = fopen(file, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(full, sizeof(full), "%s%s", cgroup_root, line + 3);
		if (!cgroup_root[0] || (!stat(full, &st) && st.st_ino == cgroup_id))
			copy_cut(line + 3, strlen(line + 3), out, size);
		break;
	}
	fclose(f);
}

void dstrace_cgroup_path(const char *cgroup_root, uint32_t pid, uint64_t cgroup_id, char *out,
			 size_t size)
{
	proc_cgroup_path(cgroup_root, pid, cgroup_id, out, size);
	if (!out[0]) /* gone, or moved to another cgroup */
		cgroup_path_by_id(cgroup_root, cgroup_id, out, size);
}

void dstrace_proc_exe(uint32_t pid, char *out, size_t size)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%u/exe", pid);
	n = readlink(link, out, size - 1);
	out[n > 0 ? n : 0] = '\0';
}

ssize_t dstrace_read_head(const char *path, void *buf, size_t size)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, size);
	close(fd);
	return n;
}

bool dstrace_proc_comm(uint32_t pid, char *out, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	n = dstrace_read_head(path, out, size - 1);
	if (n <= 0)
		return false;
	if (out[n - 1] == '\n')
		n--;
	out[n] = '\0';
	return n > 0;
}
