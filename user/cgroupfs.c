// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
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

int dstrace_ensure_tracefs(void)
{
	if (!access("/sys/kernel/tracing/events", F_OK) ||
	    !access("/sys/kernel/debug/tracing/events", F_OK))
		return 0;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		return -errno;
	return 0;
}
