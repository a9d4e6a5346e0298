/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Output files opened the safe way for a program that runs as root: never through a symbolic
 * link, never onto a file another user planted in a sticky world-writable directory such as
 * /tmp (the rules of the kernel's fs.protected_symlinks and fs.protected_regular, applied
 * whatever those sysctls say), and never inherited by a child (O_CLOEXEC).
 */
#ifndef DSTRACE_OUTFILE_H
#define DSTRACE_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

enum outfile_mode {
	OUTFILE_TRUNCATE, /* start empty (a regular file is truncated once it passed the checks) */
	OUTFILE_APPEND, /* keep what is there and append (audits survive restarts) */
};

/* Open path for writing. Returns 0 and *out, or a negative errno with the reason in why
 * (one line, no trailing period, for "cannot open output file 'X': <why>"): -ELOOP when
 * the last component is a symbolic link, -EACCES when the file belongs to someone else in a
 * sticky world-writable directory, else what open(2) said. */
int outfile_open(const char *path, enum outfile_mode mode, FILE **out, char *why,
		 size_t why_size);

#endif /* DSTRACE_OUTFILE_H */
