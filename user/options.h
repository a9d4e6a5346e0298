/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The command line (options.c, argp): what the user asked for, as struct env. */
#ifndef DSTRACE_OPTIONS_H
#define DSTRACE_OPTIONS_H

#include <stdbool.h>
#include "dstrace.h"

enum dstrace_backend_kind {
	DSTRACE_BACKEND_AUTO = 0,
	DSTRACE_BACKEND_FENTRY,
	DSTRACE_BACKEND_KPROBE,
	DSTRACE_BACKEND_TRACEPOINT,
	DSTRACE_BACKEND_MAX,
};

/* --resolver-lib given at most so many times */
#define DSTRACE_RESOLVER_LIBS_GIVEN_MAX 6

/* Everything the command line says. Filled by dstrace_parse_args(). */
struct env {
	bool json;
	bool verbose;
	unsigned int interval_s; /* 0: per-event lines */
	unsigned int duration_s; /* 0: until a signal */
	unsigned int pids[DSTRACE_MAX_PIDS];
	unsigned int npids;
	char comm[DSTRACE_COMM_LEN];
	unsigned short port;
	unsigned int protos; /* DSTRACE_PROTOMASK bits */
	unsigned int events; /* DSTRACE_EVMASK bits */
	const char *output;
	enum dstrace_backend_kind backend;
	unsigned int ringbuf_kb;
	bool audit; /* --audit: per-program records appended to output every interval */
	const char *metrics; /* --metrics ADDR:PORT */
	bool floor; /* --floor (make bench): programs attached that only return */
	const char *metrics_file; /* --metrics-file PATH: the exposition, for node_exporter */
	/* --resolver-lib PATH, repeated: C libraries whose getaddrinfo() is followed besides
	 * ours and the 32-bit one (user/resolver.h) */
	const char *resolver_libs[DSTRACE_RESOLVER_LIBS_GIVEN_MAX];
	int n_resolver_libs;
};

#define DSTRACE_AUDIT_DEFAULT_INTERVAL 60

/* Is per-program output asked for (--audit, --metrics, --metrics-file)? Its tables are built
 * from the events as well (failures by errno, fallbacks, names, ends of processes), so the
 * kernel sends them even with -i. */
static inline bool dstrace_env_per_program(const struct env *env)
{
	return env->audit || env->metrics || env->metrics_file;
}

#define DSTRACE_DEFAULT_RINGBUF_KB 1024

/* Parse argv into env. Returns 0, or non-zero after printing one line to stderr.
 * With exit_on_error (the real program), usage errors and --help/--version exit directly
 * (status 2 for errors); unit tests pass false and get the status back. */
int dstrace_parse_args(int argc, char **argv, struct env *env, bool exit_on_error);

/* "connect,accept" -> mask; -1 on an unknown name. */
int dstrace_parse_events(const char *list, unsigned int *mask);

const char *dstrace_backend_name(enum dstrace_backend_kind kind);
/* 0 and *kind set, or -1 for an unknown name. */
int dstrace_backend_parse(const char *name, enum dstrace_backend_kind *kind);

#endif /* DSTRACE_OPTIONS_H */
