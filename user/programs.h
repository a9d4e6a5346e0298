/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The program table, for audits and metrics. A program is one (executable, uid, cgroup,
 * network namespace); its processes add up. Totals are built from deltas of the kernel's
 * per-process counters and UDP flow counters, so processes may come and go: the kernel ends a
 * process's entry when it exits or exec()s (bpf/lifecycle.bpf.h), its last counts are folded
 * here and the entry freed. This file owns the tables (programs, the processes followed and
 * their liveness, pid reuse, UDP flows) and what goes into them; audit.h writes them out,
 * metrics.h renders them. Everything is bounded; what does not fit is counted (audit__drops).
 */
#ifndef DSTRACE_PROGRAMS_H
#define DSTRACE_PROGRAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "aggregate.h"
#include "container.h"
#include "dstrace.h"
#include "htab.h"

#define AUDIT_PROGRAMS_MAX 4096
#define AUDIT_PIDS_MAX 16384
#define AUDIT_PEERS_MAX 1024 /* tracked per program */
#define AUDIT_PEERS_SHOWN 16
#define AUDIT_PORTS_MAX 64
#define AUDIT_ERRNOS_MAX 16
#define AUDIT_NAMES_MAX 8 /* names kept per program (the resolver's side) */
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

/* A name the program resolved and then reached over IPv4 (events' name, bpf/resolver.bpf.h). */
struct audit_name {
	char name[DSTRACE_NAME_LEN];
	uint8_t flags;	/* DSTRACE_NAME_* of its events, or'ed */
	uint64_t count;	/* mapped connects and UDP flows to its addresses */
	uint64_t failed; /* of them, failed */
	uint64_t fallbacks; /* of them, after a failed IPv6 attempt (DSTRACE_F_FALLBACK) */
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
	/* UDP datagrams, of those counted, that answered a peer that spoke first (struct
	 * dstrace_flow_val.answer): a service's replies (sent), a client's answers (received);
	 * from the flows, as their peers */
	uint64_t udp_replies[DSTRACE_DIR_MAX];
	uint64_t failed;
	struct audit_errno errnos[AUDIT_ERRNOS_MAX];
	uint32_t nerrnos;
	uint64_t errnos_other; /* failures whose errno did not fit */
	uint64_t first_ns, last_ns; /* CLOCK_BOOTTIME, 0 if never */
	uint16_t ports[AUDIT_PORTS_MAX];
	uint32_t nports;
	uint64_t ports_dropped; /* accepted connections on ports beyond AUDIT_PORTS_MAX */
	struct htab peers; /* AUDIT_PEERS_MAX * 2 slots (a count of 0: empty), made on first use */
	uint32_t npeers;
	uint64_t peers_dropped; /* connections and datagrams of peers that did not fit */
	struct audit_name names[AUDIT_NAMES_MAX];
	uint32_t nnames;
	uint64_t names_dropped; /* named events whose name did not fit */
	uint64_t fallbacks; /* mapped connects after a failed IPv6 attempt (the starred cell) */
	bool changed; /* since the last set written (audit__written) */
};

struct audit_pid;
struct audit_flow;
struct audit_late;

struct audit {
	struct audit_program *programs;
	uint32_t nprograms;
	uint64_t programs_dropped;
	struct htab pids; /* of struct audit_pid, AUDIT_PIDS_MAX * 2 slots */
	uint32_t npids;
	uint64_t pids_dropped;
	struct htab flows; /* of struct audit_flow, twice the kernel's udp_flows */
	uint32_t nflows;
	uint32_t flow_gen;
	/* Ended entries still held for a connect's outcome (dstrace_proc_final) when a newer
	 * entry of their pid took their slot over (the program they exec()ed, or a reused pid):
	 * followed here until final (AUDIT_LATE_MAX; one that does not fit has its later counts
	 * counted lost, in drops.proc_full: late_dropped). */
	struct audit_late *late;
	uint64_t late_dropped;
	char cgroup_root[512]; /* cgroup v2 mount point, for id -> path */
};

int audit__init(struct audit *a, uint32_t max_flows);
void audit__free(struct audit *a);

/* Should the kernel entry of the process behind an event of pid at ts_ns be looked up and
 * given to audit__add_proc before audit__add_event, so that the event finds the right
 * program? True for a pid not followed yet, and for an event after the end of the entry
 * followed (a new process with that pid, or the program an exec() started); false for an
 * event from before the end. *kid: the entry followed if not yet folded for good (its
 * first_ns), else 0. */
bool audit__wants_proc(struct audit *a, uint32_t pid, uint64_t ts_ns, uint64_t *kid);
/* The kernel said (DSTRACE_F_ENDED, in ring order) that pid's entry ended at ts_ns: later
 * events of pid are another entry's. Its counts are folded when the entry is read. */
void audit__proc_ending(struct audit *a, uint32_t pid, uint64_t ts_ns);
/* A late connect outcome (DSTRACE_F_LATE) of pid's ended entry st: followed, if it is not
 * (in its pid's slot, or beside a newer entry there), so that the event finds its program. */
void audit__follow_late(struct audit *a, uint32_t pid, const struct dstrace_proc_stats *st);
/* An event arrived: failures by errno, listener ports, TCP peers, names. */
void audit__add_event(struct audit *a, const struct dstrace_event *e);
/* The kernel's counters for one process entry (proc_stats, proc_exited): what they grew by
 * since the last look goes to the entry's program. Returns true when the entry has ended
 * (dstrace_proc_final: the kernel never touches it again) and is now folded for good: the caller
 * deletes it in the kernel. Liveness is the kernel's word, never a guess. */
bool audit__add_proc(struct audit *a, uint32_t pid, const struct dstrace_proc_stats *st);
/* The kernel's counters for one UDP flow (call for every entry of udp_flows, then
 * audit__flows_done). Returns true when the flow's process is gone. */
bool audit__add_flow(struct audit *a, const struct dstrace_flow_key *k,
		     const struct dstrace_flow_val *v);
/* The end of a pass (after audit__add_proc and audit__add_flow for every kernel entry):
 * reclaims the pids not seen in two passes and those ended before this pass, and the flows
 * not seen in it; the next pass starts. */
void audit__flows_done(struct audit *a);

/* The busiest peers first; fills out with at most max, returns how many. */
uint32_t audit_program__top_peers(const struct audit_program *p, struct audit_peer *out,
				  uint32_t max);

/* The set audit__write() made is safely in the file: programs are unchanged from now. */
void audit__written(struct audit *a);
/* The drops the tables counted: programs, pids, ports, peers (the rest is left as is). */
void audit__drops(const struct audit *a, struct dstrace_drops *d);

/* The executable path the kernel recorded ("/usr/bin/curl"; ".../x/y" if cut short). */
void audit_exe_path(const struct dstrace_proc_stats *st, char *out, size_t size);

#endif /* DSTRACE_PROGRAMS_H */
