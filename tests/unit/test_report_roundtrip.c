// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Writer to reader: the program table filled through its API (user/programs.c) is written with
 * audit__write, the lines are read back by dstrace report, and every program folds to the
 * numbers the table holds. Two writes, as a run does (an interval record, then the final
 * one with larger cumulative counters): only the newest counts. The pids do not exist, so
 * the audit finds no cgroup (null) and no container, as for a process already gone.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit.h"
#include "dstrace.h"
#include "report.h"
#include "schema.h"
#include "unit.h"

#define NS(sec) ((uint64_t)(sec) * 1000000000ull)
#define T_0900 1795338000ull /* 2026-11-22T09:00:00Z */
#define PID_BASE 0x7fff0000u /* above any pid_max: no /proc entry */
#define NETNS 4026531840u

enum { SRV, CLI, DNS, NPROGS };

static const char *const exes[NPROGS][3] = {
	[SRV] = { "nginx", "sbin", "usr" },
	[CLI] = { "psql", "bin", "usr" },
	[DNS] = { "resolver", "bin", "opt" },
};
static const char *const comms[NPROGS] = { "nginx", "psql", "res \"q\" \\x" };

static void proc_stats(struct dstrace_proc_stats *st, int prog, unsigned int scale)
{
	memset(st, 0, sizeof(*st));
	for (int i = 0; i < 3; i++)
		strcpy(st->exe_parts[i], exes[prog][i]);
	strcpy(st->comm, comms[prog]);
	st->uid = 100 + prog;
	st->cgroup_id = 1;
	st->netns = NETNS;
	st->first_ns = NS(10);
	st->last_ns = NS(10 + scale);
	switch (prog) {
	case SRV:
		st->counts[DSTRACE_EV_ACCEPT][DSTRACE_PROTO_TCP] = 3 * scale;
		st->bytes[DSTRACE_DIR_SENT][DSTRACE_PROTO_TCP] = 1000 * scale;
		st->bytes[DSTRACE_DIR_RECEIVED][DSTRACE_PROTO_TCP] = 200 * scale;
		break;
	case CLI:
		st->counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] = 2 * scale;
		st->failed = scale;
		st->bytes[DSTRACE_DIR_SENT][DSTRACE_PROTO_TCP] = 50 * scale;
		break;
	case DNS:
		st->counts[DSTRACE_EV_SEND][DSTRACE_PROTO_UDP] = 4 * scale;
		st->counts[DSTRACE_EV_RECV][DSTRACE_PROTO_UDP] = 4 * scale;
		st->bytes[DSTRACE_DIR_SENT][DSTRACE_PROTO_UDP] = 40 * scale;
		st->bytes[DSTRACE_DIR_RECEIVED][DSTRACE_PROTO_UDP] = 120 * scale;
		break;
	}
}

static void event(struct audit *a, int prog, int kind, const char *raddr, uint16_t lport,
		  uint16_t rport, int ret)
{
	struct dstrace_event e = {
		.pid = PID_BASE + prog, .uid = 100 + prog, .netns = NETNS, .cgroup_id = 1,
		.kind = kind, .proto = DSTRACE_PROTO_TCP, .lport = lport, .rport = rport, .ret = ret,
	};

	inet_pton(AF_INET, raddr, &e.raddr);
	strcpy(e.comm, comms[prog]);
	audit__add_event(a, &e);
}

/* A connect of CLI that came from a name (the resolver's side). */
static void named_event(struct audit *a, const char *name, uint8_t name_flags, int ret)
{
	struct dstrace_event e = {
		.pid = PID_BASE + CLI, .uid = 100 + CLI, .netns = NETNS, .cgroup_id = 1,
		.kind = DSTRACE_EV_CONNECT, .proto = DSTRACE_PROTO_TCP, .lport = 40010,
		.rport = 5432, .ret = ret, .name_flags = DSTRACE_NAME_KNOWN | name_flags,
	};

	inet_pton(AF_INET, "198.51.100.9", &e.raddr);
	strcpy(e.comm, comms[CLI]);
	snprintf(e.name, sizeof(e.name), "%s", name);
	audit__add_event(a, &e);
}

/* The same names, counts and answers (a name needing escapes included). */
static void check_names(const struct report_program *p, const struct audit_program *ap)
{
	ASSERT_UINT_EQ(p->nnames, ap->nnames);
	ASSERT_UINT_EQ(p->names_dropped, ap->names_dropped);
	for (uint32_t i = 0; i < ap->nnames; i++) {
		bool found = false;

		for (uint32_t j = 0; j < p->nnames; j++) {
			const struct report_name *n = &p->names[j];

			found = found ||
				(!strcmp(n->name, ap->names[i].name) &&
				 n->count == ap->names[i].count && n->failed == ap->names[i].failed &&
				 n->flags == (ap->names[i].flags &
					      (DSTRACE_NAME_AAAA | DSTRACE_NAME_RESOLVER_MAPPED)));
		}
		unit_check(UNIT_AT(false), found, "%s: name %s not read back", ap->exe,
			   ap->names[i].name);
	}
}

/* The resolver's flow to its server, or (answer) the server's answers to it. */
static void flow(struct audit *a, int kind, uint64_t datagrams, bool answer)
{
	struct dstrace_flow_key k = { .sock_ino = 77, .pid = PID_BASE + DNS, .rport = 53,
				      .kind = kind };
	struct dstrace_flow_val v = { .datagrams = datagrams, .lport = 40001, .answer = answer };

	inet_pton(AF_INET, "198.51.100.53", &k.raddr);
	audit__add_flow(a, &k, &v);
}

/* One pass of the harvest: every process's counters (scaled), then the UDP flows. */
static void harvest(struct audit *a, unsigned int scale)
{
	struct dstrace_proc_stats st;

	for (int prog = 0; prog < NPROGS; prog++) {
		proc_stats(&st, prog, scale);
		audit__add_proc(a, PID_BASE + prog, &st);
	}
	flow(a, DSTRACE_EV_SEND, 4 * scale, false);
	flow(a, DSTRACE_EV_RECV, 4 * scale, true);
	audit__flows_done(a);
}

static void write_run(struct audit *a, FILE *out, unsigned int minutes, bool final)
{
	struct dstrace_clock clock;
	struct audit_run_info run = {
		.run_id = "rt-1795338000-1", .host = "rt", .backend = "tracepoint",
		.started_realtime_ns = NS(T_0900), .now_realtime_ns = NS(T_0900 + minutes * 60),
		.clock = &clock,
		.events = 10 * minutes, .final = final,
	};

	dstrace_clock_fixed(&clock, (int64_t)NS(T_0900) - (int64_t)NS(10));

	ASSERT_INT_EQ(audit__write(a, out, &run, true), NPROGS); /* every program, once */
	audit__written(a);
}

static const struct report_program *by_exe(const struct report *r, const char *exe)
{
	for (uint32_t i = 0; i < r->nprograms; i++) {
		if (!strcmp(r->programs[i].exe, exe))
			return &r->programs[i];
	}
	return NULL;
}

/* The report's totals are the table's, field by field. */
static void check_counts(const struct report_program *p, const struct audit_program *ap)
{
	const struct report_counts *c = &p->c;

#define CHECK(o, k, field, source) ASSERT_UINT_EQ(c->field, ap->source);
	DSTRACE_AUDIT_COUNTS(CHECK) /* schema.h: every counter of the record */
#undef CHECK
	ASSERT_STR_EQ(p->comm, ap->comm);
	ASSERT_UINT_EQ(p->uid, ap->uid);
	ASSERT_UINT_EQ(p->netns, ap->netns);
	ASSERT_UINT_EQ(p->pids_max, ap->pids);
	ASSERT_UINT_EQ(p->peers_dropped, ap->peers_dropped);
	ASSERT_STR_EQ(p->cgroup, ""); /* null: unknown */
	ASSERT_TRUE(p->container == NULL);
	ASSERT_INT_EQ(p->first_seen, (int64_t)T_0900 * 1000000);
}

/* The same peers, with the same counts (the writer lists at most AUDIT_PEERS_SHOWN). */
static void check_peers(const struct report_program *p, const struct audit_program *ap)
{
	struct audit_peer top[AUDIT_PEERS_SHOWN];
	uint32_t n = audit_program__top_peers(ap, top, AUDIT_PEERS_SHOWN);

	ASSERT_UINT_EQ(p->npeers, n);
	for (uint32_t i = 0; i < n; i++) {
		bool found = false;

		for (uint32_t j = 0; j < p->npeers; j++) {
			const struct report_peer *q = &p->peers[j];

			found = found || (q->addr == top[i].addr && q->port == top[i].port &&
					  q->proto == top[i].proto && q->count == top[i].count &&
					  (q->dir == REPORT_DIR_IN) == (top[i].dir == AUDIT_DIR_IN));
		}
		unit_check(UNIT_AT(false), found, "%s: peer %u (count %llu) not read back", ap->exe,
			   i, (unsigned long long)top[i].count);
	}
	ASSERT_UINT_EQ(p->nports, ap->nports);
	for (uint32_t i = 0; i < p->nports && i < ap->nports; i++)
		ASSERT_UINT_EQ(p->ports[i], ap->ports[i]);
}

static void test_roundtrip(void)
{
	static struct audit a; /* big: not on the stack */
	char *buf = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&buf, &size), *in;
	struct report *r = report__new();

	REQUIRE_TRUE(out && r && !audit__init(&a, 64));
	harvest(&a, 1);
	event(&a, SRV, DSTRACE_EV_ACCEPT, "192.0.2.10", 8080, 51000, 0);
	event(&a, SRV, DSTRACE_EV_ACCEPT, "192.0.2.10", 8080, 51001, 0);
	event(&a, CLI, DSTRACE_EV_CONNECT, "198.51.100.7", 40000, 5432, 0);
	write_run(&a, out, 1, false); /* an interval record: superseded */
	harvest(&a, 2);
	event(&a, SRV, DSTRACE_EV_ACCEPT, "192.0.2.11", 8080, 51002, 0);
	event(&a, CLI, DSTRACE_EV_CONNECT, "198.51.100.7", 40001, 5432, 0);
	event(&a, CLI, DSTRACE_EV_CONNECT, "198.51.100.8", 40002, 5432, -ENETUNREACH);
	event(&a, CLI, DSTRACE_EV_CONNECT, "198.51.100.8", 40003, 5432, -ECONNREFUSED);
	named_event(&a, "db.example", DSTRACE_NAME_V4MAPPED | DSTRACE_NAME_RESOLVER_MAPPED, 0);
	named_event(&a, "db.example", DSTRACE_NAME_V4MAPPED | DSTRACE_NAME_RESOLVER_MAPPED,
		    -ECONNREFUSED);
	named_event(&a, "we\"ird\\name", DSTRACE_NAME_AAAA, 0);
	write_run(&a, out, 2, true);
	fclose(out);

	in = fmemopen(buf, size, "r");
	REQUIRE_TRUE(in != NULL);
	ASSERT_INT_EQ(report__read(r, in, "roundtrip"), 0);
	fclose(in);
	ASSERT_INT_EQ(report__finish(r), 0);
	unit_check(UNIT_AT(true), r->malformed == 0, "the reader refused a line of the writer: %s",
		   r->first_malformed_reason);
	ASSERT_UINT_EQ(r->audit_records, 2 * NPROGS);
	ASSERT_UINT_EQ(r->run_records, 2);
	REQUIRE_TRUE(r->nruns == 1 && r->nprograms == NPROGS);
	ASSERT_TRUE(r->runs[0].final);
	ASSERT_UINT_EQ(r->runs[0].events, 20);
	ASSERT_UINT_EQ(r->runs[0].programs, NPROGS);
	ASSERT_STR_EQ(r->runs[0].backend, "tracepoint");
	for (uint32_t i = 0; i < a.nprograms; i++) {
		const struct report_program *p = by_exe(r, a.programs[i].exe);

		unit_check(UNIT_AT(true), p != NULL, "%s not read back", a.programs[i].exe);
		ASSERT_UINT_EQ(p->runs, 1);
		check_counts(p, &a.programs[i]);
		check_peers(p, &a.programs[i]);
		check_names(p, &a.programs[i]);
	}
	REQUIRE_TRUE(by_exe(r, "/usr/bin/psql")->nnames == 2);
	/* and what the report makes of them */
	ASSERT_UINT_EQ(by_exe(r, "/usr/sbin/nginx")->c.accept_tcp, 6);
	ASSERT_UINT_EQ(by_exe(r, "/usr/bin/psql")->enetunreach, 1);
	ASSERT_UINT_EQ(by_exe(r, "/usr/bin/psql")->errnos_other + by_exe(r, "/usr/bin/psql")->nerrnos,
		       2);
	ASSERT_UINT_EQ(by_exe(r, "/opt/bin/resolver")->udp_reply_datagrams, 8);
	ASSERT_STR_EQ(by_exe(r, "/opt/bin/resolver")->comm, "res \"q\" \\x");
	report__free(r);
	audit__free(&a);
	free(buf);
}

static const CU_TestInfo tests[] = {
	{ "audit writer to report reader: the same numbers", test_roundtrip },
	CU_TEST_INFO_NULL,
};

int register_report_roundtrip_tests(void)
{
	return unit_add_suite("report roundtrip", tests, NULL);
}
