// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Output files opened the safe way for a root process (outfile.h): no symbolic link, no file
 * planted by another user in a sticky world-writable directory, close-on-exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "outfile.h"

/* The directory part of path (".", "/" or a copy) and a pointer to its last component. */
static int split_path(const char *path, char *dir, size_t size, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t len;

	if (!slash) {
		snprintf(dir, size, ".");
		*base = path;
		return 0;
	}
	if (!slash[1])
		return -EISDIR;
	len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(dir, path, len);
	dir[len] = '\0';
	*base = slash + 1;
	return 0;
}

/* Open base in directory dfd: create it if it is not there (O_EXCL: never through a symlink,
 * never onto a file that appeared meanwhile); else open what is there, which must not be a
 * symlink. A file removed between the two is tried again. The fd, or -errno; *created says
 * which; why is set for a symlink. */
static int open_in_dir(int dfd, const char *base, int flags, bool *created, char *why,
		       size_t why_size)
{
	int fd;

	*created = false;
	for (int tries = 0;; tries++) {
		fd = openat(dfd, base, flags | O_CREAT | O_EXCL, 0666);
		if (fd >= 0) {
			*created = true;
			return fd;
		}
		if (errno != EEXIST)
			return -errno;
		fd = openat(dfd, base, flags);
		if (fd >= 0)
			return fd;
		if (errno == ELOOP) {
			snprintf(why, why_size, "it is a symbolic link (dstrace never writes through one)");
			return -ELOOP;
		}
		if (errno != ENOENT || tries == 3)
			return -errno;
	}
}

/* fs.protected_regular: in a sticky world-writable directory, a file that belongs to neither
 * us nor the directory's owner was planted by another user for us to write into. Regular
 * files and FIFOs, as the kernel's rule. */
static bool planted(const struct stat *dst, const struct stat *st)
{
	return (dst->st_mode & S_ISVTX) && (dst->st_mode & S_IWOTH) &&
	       (S_ISREG(st->st_mode) || S_ISFIFO(st->st_mode)) && st->st_uid != geteuid() &&
	       st->st_uid != dst->st_uid;
}

int outfile_open(const char *path, enum outfile_mode mode, FILE **out, char *why,
		 size_t why_size)
{
	int flags = O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW |
		    (mode == OUTFILE_APPEND ? O_APPEND : 0);
	char dir[PATH_MAX];
	const char *base;
	struct stat dst, st;
	bool created = false;
	int dfd = -1, fd = -1, err;
	FILE *f;

	*out = NULL;
	err = split_path(path, dir, sizeof(dir), &base);
	if (err)
		goto fail;
	/* The checks and the open go through one handle on the directory, so that they are
	 * about the same directory even if someone renames things meanwhile. */
	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &dst)) {
		err = -errno;
		goto fail;
	}
	fd = open_in_dir(dfd, base, flags, &created, why, why_size);
	if (fd < 0) {
		err = fd;
		if (err == -ELOOP)
			goto fail_why;
		goto fail;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		goto fail;
	}
	if (!created && planted(&dst, &st)) {
		snprintf(why, why_size,
			 "it belongs to uid %u in the sticky world-writable directory %s "
			 "(refused, as fs.protected_regular does)",
			 (unsigned int)st.st_uid, dir);
		err = -EACCES;
		goto fail_why;
	}
	if (mode == OUTFILE_TRUNCATE && S_ISREG(st.st_mode) && st.st_size && ftruncate(fd, 0)) {
		err = -errno;
		goto fail;
	}
	f = fdopen(fd, mode == OUTFILE_APPEND ? "a" : "w");
	if (!f) {
		err = -errno;
		goto fail;
	}
	close(dfd);
	*out = f;
	return 0;
fail:
	snprintf(why, why_size, "%s", strerror(-err));
fail_why:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return err;
}
