/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The file systems dstrace reads, and what it looks up there: finding (or mounting) cgroup v2
 * and tracefs; the cgroup v2 path of a cgroup id; a running process's executable (procfs).
 * No state of its own: every function takes what it needs.
 */
#ifndef DSTRACE_CGROUPFS_H
#define DSTRACE_CGROUPFS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

/* Path of a mounted cgroup v2 hierarchy from a mountinfo-format file; mounts one under
 * /run/dstrace if there is none. 0 or a negative errno. */
int dstrace_find_cgroup2(const char *mountinfo, char *path, size_t size);
/* The cgroup2 mount point in mountinfo text, preferring /sys/fs/cgroup; 0 or -ENOENT. */
int dstrace_parse_cgroup2_mount(const char *mountinfo_text, char *path, size_t size);
/* The cgroup v2 mount point if one is mounted (never mounts); "" otherwise. */
void dstrace_find_cgroup2_quiet(char *path, size_t size);
/* file under tracefs (/sys/kernel/tracing, or debugfs's tracing) into buf, if it exists there:
 * 0, or -ENOENT. */
int dstrace_tracefs_path(const char *file, char *buf, size_t size);
/* Make sure tracefs is reachable where libbpf looks for it. 0 or a negative errno. */
int dstrace_ensure_tracefs(void);

/* The cgroup v2 path of cgroup_id ("" if unknown), relative to cgroup_root ("/" for the root
 * itself): from /proc/PID/cgroup if PID is still in it, else by walking the hierarchy under
 * cgroup_root (slow: call once per cgroup). cgroup_root "": only /proc/PID/cgroup is asked. */
void dstrace_cgroup_path(const char *cgroup_root, uint32_t pid, uint64_t cgroup_id, char *out,
			 size_t size);
/* The executable of running process pid (/proc/PID/exe); "" if it is gone or unreadable. */
void dstrace_proc_exe(uint32_t pid, char *out, size_t size);
/* The first size bytes (at most) of the file at path, in one read(): how many, or -1. */
ssize_t dstrace_read_head(const char *path, void *buf, size_t size);
/* The name of running process pid (/proc/PID/comm: its main thread's, not the name another
 * thread took), NUL-terminated in out[size]; false if it is gone or unreadable. */
bool dstrace_proc_comm(uint32_t pid, char *out, size_t size);

#endif /* DSTRACE_CGROUPFS_H */
