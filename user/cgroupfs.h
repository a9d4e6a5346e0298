/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Finding (or mounting) the file systems dstrace needs: cgroup v2 and tracefs. */
#ifndef DSTRACE_CGROUPFS_H
#define DSTRACE_CGROUPFS_H

#include <stddef.h>

/* Path of a mounted cgroup v2 hierarchy from a mountinfo-format file; mounts one under
 * /run/dstrace if there is none. 0 or a negative errno. */
int dstrace_find_cgroup2(const char *mountinfo, char *path, size_t size);
/* The cgroup2 mount point in mountinfo text, preferring /sys/fs/cgroup; 0 or -ENOENT. */
int dstrace_parse_cgroup2_mount(const char *mountinfo_text, char *path, size_t size);
/* The cgroup v2 mount point if one is mounted (never mounts); "" otherwise. */
void dstrace_find_cgroup2_quiet(char *path, size_t size);
/* Make sure tracefs is reachable where libbpf looks for it. 0 or a negative errno. */
int dstrace_ensure_tracefs(void);

#endif /* DSTRACE_CGROUPFS_H */
