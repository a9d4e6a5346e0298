/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Per-program aggregation for audits and metrics. A program is one (executable, uid,
 * cgroup, network namespace); its processes add up. Totals are built from deltas of the
 * kernel's per-process counters and UDP flow counters, so processes may come and go and a
 * kernel entry can be reclaimed once its process is gone. Everything is bounded; what does
 * not fit is counted.
 */
#ifndef DSTRACE_AUDIT_H
#define DSTRACE_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "container.h"
#include "dstrace.h"

#define AUDIT_PROGRAMS_MAX 4096
#define AUDIT_PIDS_MAX 16384
#define AUDIT_PEERS_MAX 1024 /* tracked per program */
#define AUDIT_PEERS_SHOWN 16
#define AUDIT_PORTS_MAX 64
#define AUDIT_ERRNOS_MAX 16
#define AUDIT_EXE_LEN 256
#define AUDIT_CGROUP_LEN 256

enum { AUDIT_DIR_OUT = 0, AUDIT_DIR_IN = 1 };

struct audit_peer {
	uint32_t addr; /* network order */
	uint16_t port;
	uint8_t dir;
	uint8_t proto;
	uint64_t count; /* connections (TCP) or datagrams (UDP) */
};

struct audit_errno {
	int err; /* positive errno */
	uint8_t kind; /* the event that failed: connect, send */
	uint64_t count;
};

struct audit_program {
	/* identity */
	char exe[AUDIT_EXE_LEN];
	uint32_t uid;
	uint64_t cgroup_id;
	uint32_t netns;
	char comm[DSTRACE_COMM_LEN];
	char cgroup[AUDIT_CGROUP_LEN];
	struct container_info container; /* from the cgroup path (user/container.h) */
	/* totals since start */
	uint64_t pids;
	uint64_t counts[DSTRACE_EV_MAX][DSTRACE_PROTO_MAX];
	uint64_t bytes[DSTRACE_DIR_MAX][DSTRACE_PROTO_MAX];
	uint64_t failed;
	struct audit_errno errnos[AUDIT_ERRNOS_MAX];
	uint32_t nerrnos;
	uint64_t errnos_other; /* failures whose errno did not fit */
	uint64_t first_ns, last_ns; /* CLOCK_BOOTTIME, 0 if never */
	uint16_t ports[AUDIT_PORTS_MAX];
	uint32_t nports;
	struct audit_peer *peers; /* open addressing, AUDIT_PEERS_MAX * 2 slots */
	uint32_t npeers;
	uint64_t peers_dropped; /* connections and datagrams of peers that did not fit */
};

struct audit_pid;
struct audit_flow;

struct audit {
	struct audit_program *programs;
	uint32_t nprograms;
	uint64_t programs_dropped;
	struct audit_pid *pids; /* open addressing, AUDIT_PIDS_MAX * 2 slots */
	uint32_t npids;
	uint64_t pids_dropped;
	struct audit_flow *flows; /* open addressing */
	uint32_t flows_cap;
	uint32_t nflows;
	uint32_t flow_gen;
	char cgroup_root[512]; /* cgroup v2 mount point, for id -> path */
};

int audit__init(struct audit *a, uint32_t max_flows);
void audit__free(struct audit *a);

/* Does the table have this process yet? */
bool audit__has_pid(struct audit *a, uint32_t pid);
/* An event arrived: failures by errno, listener ports, TCP peers. */
void audit__add_event(struct audit *a, const struct dstrace_event *e);
/* The kernel's counters for one process. The harvest calls it for every entry of proc_stats
 * with reclaim: it returns true when that process is gone, and the caller deletes the kernel
 * entry. Without reclaim (a new process's first event) nothing is decided about its end. */
bool audit__add_proc(struct audit *a, uint32_t pid, const struct dstrace_proc_stats *st,
		     bool reclaim);
/* The kernel's counters for one UDP flow (call for every entry of udp_flows, then
 * audit__flows_done). Returns true when the flow's process is gone. */
bool audit__add_flow(struct audit *a, const struct dstrace_flow_key *k,
		     const struct dstrace_flow_val *v);
void audit__flows_done(struct audit *a);

/* The busiest peers first; fills out with at most max, returns how many. */
uint32_t audit_program__top_peers(const struct audit_program *p, struct audit_peer *out,
				  uint32_t max);

struct audit_run_info {
	const char *run_id;
	const char *host;
	const char *backend;
	uint64_t started_realtime_ns;
	uint64_t now_realtime_ns;
	int64_t boot_to_realtime_ns;
	uint64_t events, lost, evictions;
	bool final;
};

/* One "audit" line per program, then one "audit_run" line (docs/audit-format.md).
 * Returns 0 or a negative errno from the stream. */
int audit__write(const struct audit *a, FILE *out, const struct audit_run_info *run);

/* The executable path the kernel recorded ("/usr/bin/curl"; ".../x/y" if cut short). */
void audit_exe_path(const struct dstrace_proc_stats *st, char *out, size_t size);

/* The cgroup v2 path of cgroup_id ("" if unknown): from /proc/PID/cgroup if PID is still in
 * it, else by walking the hierarchy under cgroup_root (slow: call once per cgroup). */
void audit_cgroup_path(const char *cgroup_root, uint32_t pid, uint64_t cgroup_id, char *out,
		       size_t size);

#endif /* DSTRACE_AUDIT_H */
