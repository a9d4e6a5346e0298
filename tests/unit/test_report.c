// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report: audit files in, totals and verdicts out. The fixtures (fixtures/):
 *   web1.jsonl      two runs on host web1 (dstrace restarted and appended): nginx accepting
 *                   IPv4 clients on [::]:8080, a worker connecting to PostgreSQL over IPv4;
 *                   run A has an interval record superseded by its final one, a truncated
 *                   line 5, and run B lost 3 events
 *   web2.jsonl      host web2, one run killed before its final record: a UDP client and its
 *                   replies, a UDP syslog server, a curl whose connects get ENETUNREACH, nginx
 *                   in a container, two socats apart only by netns, an idle sshd; the newest
 *                   record of "app" comes before an older one; one record of another type
 *   malformed.jsonl one valid record among 11 broken ones
 *   no-audit.jsonl  an audit_run record and a blank line: dstrace saw nothing
 *   drops.jsonl     host web3, three runs of haproxy: the first's final audit_run counts drops
 *                   in dstrace's tables and write errors (its interval one fewer), the second
 *                   has no "drops" (an older dstrace), the third all zero
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dstrace.h"
#include <jansson.h>
#include "report.h"
#include "unit.h"

#ifndef UNIT_FIXTURES
#define UNIT_FIXTURES "fixtures"
#endif

#define US(sec) ((int64_t)(sec) * 1000000)
#define T_0900 US(1795338000) /* 2026-11-22T09:00:00Z */
#define T_1200 US(1795348800)
#define T_1230 US(1795350600)

#define FILES(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct report *load(const char *const *names)
{
	struct report *r = report__new();

	REQUIRE_TRUE(r != NULL);
	for (; *names; names++) {
		char path[1024];
		FILE *f;
		int err;

		snprintf(path, sizeof(path), "%s/%s", UNIT_FIXTURES, *names);
		f = fopen(path, "r");
		unit_check(UNIT_AT(true), f != NULL, "cannot open %s", path);
		err = report__read(r, f, *names); /* the short name, for the messages */
		fclose(f);
		ASSERT_INT_EQ(err, 0);
	}
	ASSERT_INT_EQ(report__finish(r), 0);
	return r;
}

static struct report *load_text(const char *name, const char *text)
{
	struct report *r = report__new();
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	REQUIRE_TRUE(r != NULL && f != NULL);
	ASSERT_INT_EQ(report__read(r, f, name), 0);
	fclose(f);
	ASSERT_INT_EQ(report__finish(r), 0);
	return r;
}

static char *print(const struct report *r, bool json)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	REQUIRE_TRUE(f != NULL);
	ASSERT_INT_EQ(json ? report__print_json(r, f) : report__print_text(r, f), 0);
	fclose(f);
	return buf;
}

/* text has line as one whole line */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || !p[n]))
			return true;
	}
	return false;
}

#define ASSERT_LINE(text, line) \
	unit_check(UNIT_AT(false), has_line((text), (line)), "no line \"%s\" in:\n%s", (line), (text))

static const struct report_program *find_ns(const struct report *r, const char *host,
					    const char *comm, uint32_t uid, uint64_t netns)
{
	for (uint32_t i = 0; i < r->nprograms; i++) {
		const struct report_program *p = &r->programs[i];

		if (!strcmp(p->host, host) && !strcmp(p->comm, comm) && p->uid == uid &&
		    (!netns || p->netns == netns))
			return p;
	}
	return NULL;
}

static const struct report_program *find(const struct report *r, const char *host,
					 const char *comm, uint32_t uid)
{
	return find_ns(r, host, comm, uid, 0);
}

static char *addr_of(const struct report_peer *p, char *buf)
{
	struct in_addr in = { .s_addr = p->addr };

	inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
	return buf;
}

/* One audit record of host h, as dstrace writes it, with these counters and ports and peers. */
static char *record(const char *run, const char *ts, const char *comm, uint32_t uid,
		    const char *counters, const char *ports_and_peers)
{
	char *s = NULL;

	REQUIRE_TRUE(asprintf(&s,
			      "{\"type\":\"audit\",\"run\":\"%s\",\"ts\":\"%s\",\"host\":\"h\","
			      "\"backend\":\"tracepoint\",\"exe\":\"/usr/bin/%s\",\"comm\":\"%s\","
			      "\"uid\":%u,\"cgroup\":\"/system.slice/x.service\",\"container\":null,"
			      "\"netns\":4026531840,\"pids\":1,%s,"
			      "\"first_seen\":\"2026-11-22T09:00:00.000000Z\",\"last_seen\":\"%s\",%s,"
			      "\"peers_dropped\":0}\n",
			      run, ts, comm, comm, uid, counters, ts, ports_and_peers) > 0);
	return s;
}

#define NO_COUNTERS                                                                        \
	"\"connect\":{\"tcp\":0,\"udp\":0},\"accept\":{\"tcp\":0},\"sent\":{\"tcp_bytes\":0," \
	"\"udp_datagrams\":0,\"udp_bytes\":0},\"received\":{\"tcp_bytes\":0,"               \
	"\"udp_datagrams\":0,\"udp_bytes\":0},\"failed\":{\"total\":0,\"by_errno\":{}}"
#define NO_PEERS "\"listen_ports\":[],\"peers\":[]"

/* ------------------------------------------------------------------------ totals */

static void test_runs_add_up(void)
{
	struct report *r = load(FILES("web1.jsonl"));
	const struct report_program *nginx = find(r, "web1", "nginx", 33);
	const struct report_program *worker = find(r, "web1", "worker", 1000);
	char a[INET_ADDRSTRLEN];

	REQUIRE_TRUE(nginx && worker);
	ASSERT_UINT_EQ(r->nprograms, 2);
	ASSERT_UINT_EQ(nginx->runs, 2);
	ASSERT_UINT_EQ(nginx->c.accept_tcp, 9); /* 5 in run A (its last record), 4 in run B */
	ASSERT_UINT_EQ(nginx->c.sent_tcp_bytes, 11000);
	ASSERT_UINT_EQ(nginx->c.recv_tcp_bytes, 2500);
	ASSERT_UINT_EQ(nginx->pids_max, 3);
	ASSERT_INT_EQ(nginx->first_seen, T_0900);
	ASSERT_INT_EQ(nginx->last_seen, T_1200);
	ASSERT_UINT_EQ(nginx->nports, 1);
	ASSERT_UINT_EQ(nginx->ports[0], 8080);
	/* the same peer in both runs adds up; busiest first */
	REQUIRE_TRUE(nginx->npeers == 3);
	ASSERT_STR_EQ(addr_of(&nginx->peers[0], a), "192.0.2.10");
	ASSERT_UINT_EQ(nginx->peers[0].count, 4);
	ASSERT_STR_EQ(addr_of(&nginx->peers[1], a), "192.0.2.12");
	ASSERT_UINT_EQ(nginx->peers[1].count, 3);
	ASSERT_STR_EQ(addr_of(&nginx->peers[2], a), "192.0.2.11");
	ASSERT_UINT_EQ(nginx->peers[2].count, 2);
	ASSERT_UINT_EQ(nginx->peers[2].dir, REPORT_DIR_IN);
	ASSERT_UINT_EQ(nginx->peers[2].port, 8080);
	REQUIRE_TRUE(nginx->ninbound == 1);
	ASSERT_UINT_EQ(nginx->inbound[0].port, 8080);
	ASSERT_UINT_EQ(nginx->inbound[0].count, 9);
	ASSERT_UINT_EQ(nginx->inbound[0].npeers, 3);
	ASSERT_TRUE(!nginx->inbound[0].more_peers);

	ASSERT_UINT_EQ(worker->c.connect_tcp, 5);
	ASSERT_UINT_EQ(worker->c.failed, 2);
	ASSERT_UINT_EQ(worker->enetunreach, 2);
	REQUIRE_TRUE(worker->nerrnos == 1);
	ASSERT_STR_EQ(worker->errnos[0].name, "ENETUNREACH");
	REQUIRE_TRUE(worker->npeers == 2);
	ASSERT_STR_EQ(addr_of(&worker->peers[0], a), "198.51.100.7");
	ASSERT_UINT_EQ(worker->peers[0].count, 4);
	ASSERT_UINT_EQ(worker->peers[0].port, 5432);
	ASSERT_UINT_EQ(worker->peers[0].dir, REPORT_DIR_OUT);
	ASSERT_UINT_EQ(worker->out_tcp_unlisted, 0);
	report__free(r);
}

/* Counters are cumulative: the newest record of a run is its total, older ones count for
 * nothing, wherever they are in the file. */
static void test_last_record_wins(void)
{
	struct report *r = load(FILES("web1.jsonl", "web2.jsonl"));
	const struct report_program *nginx = find(r, "web1", "nginx", 33);
	const struct report_program *app = find(r, "web2", "app", 1001);

	REQUIRE_TRUE(nginx && app);
	ASSERT_UINT_EQ(nginx->c.accept_tcp, 9); /* not 3 + 5 + 4 */
	/* app's record at 12:30 comes first in the file, the one at 12:00 after it */
	ASSERT_UINT_EQ(app->c.sent_udp_datagrams, 10);
	ASSERT_UINT_EQ(app->c.sent_udp_bytes, 400);
	ASSERT_UINT_EQ(app->c.recv_udp_datagrams, 10);
	ASSERT_UINT_EQ(app->runs, 1);
	ASSERT_INT_EQ(app->last_seen, T_1230);
	report__free(r);
}

/* Counters with n successful TCP connects, nothing else. */
static char *connects(unsigned int n)
{
	char *s = NULL;

	REQUIRE_TRUE(asprintf(&s,
			      "\"connect\":{\"tcp\":%u,\"udp\":0},\"accept\":{\"tcp\":0},\"sent\":"
			      "{\"tcp_bytes\":0,\"udp_datagrams\":0,\"udp_bytes\":0},\"received\":"
			      "{\"tcp_bytes\":0,\"udp_datagrams\":0,\"udp_bytes\":0},\"failed\":"
			      "{\"total\":0,\"by_errno\":{}}",
			      n) > 0);
	return s;
}

static void test_same_ts_later_line_wins(void)
{
	static const char *const ts = "2026-11-22T10:00:00.000000Z";
	char *c1 = connects(1), *c2 = connects(2), *c7 = connects(7);
	char *one = record("r1", ts, "x", 0, c1, NO_PEERS);
	char *two = record("r1", ts, "x", 0, c2, NO_PEERS);
	char *old = record("r1", "2026-11-22T09:30:00Z", "x", 0, c7, NO_PEERS);
	char *text = NULL;
	struct report *r;

	/* the same ts: the line read last wins; an older ts never does */
	REQUIRE_TRUE(asprintf(&text, "%s%s%s", one, two, old) > 0);
	r = load_text("same-ts", text);
	REQUIRE_TRUE(r->nprograms == 1);
	ASSERT_UINT_EQ(r->audit_records, 3);
	ASSERT_UINT_EQ(r->programs[0].runs, 1);
	ASSERT_UINT_EQ(r->programs[0].c.connect_tcp, 2);
	report__free(r);
	free(text);
	free(one);
	free(two);
	free(old);
	free(c1);
	free(c2);
	free(c7);
}

static void test_hosts_apart(void)
{
	struct report *r = load(FILES("web1.jsonl", "web2.jsonl"));
	const struct report_program *n1 = find(r, "web1", "nginx", 33);
	const struct report_program *n2 = find(r, "web2", "nginx", 101);

	REQUIRE_TRUE(n1 && n2);
	ASSERT_UINT_EQ(n1->c.accept_tcp, 9);
	ASSERT_UINT_EQ(n2->c.accept_tcp, 20);
	REQUIRE_TRUE(r->nhosts == 2);
	ASSERT_STR_EQ(r->hosts[0], "web1");
	ASSERT_STR_EQ(r->hosts[1], "web2");
	ASSERT_UINT_EQ(r->nprograms, 9);
	ASSERT_UINT_EQ(r->depending, 7);
	ASSERT_UINT_EQ(r->depending_hosts, 2);
	ASSERT_UINT_EQ(r->breaks_without_ipv4, 7);
	ASSERT_UINT_EQ(r->breaks_with_bindv6only, 7);
	ASSERT_UINT_EQ(r->already_failing, 2);
	ASSERT_UINT_EQ(r->nruns, 3);
	ASSERT_UINT_EQ(r->nfiles, 2);
	ASSERT_UINT_EQ(r->audit_records, 14);
	ASSERT_UINT_EQ(r->run_records, 4);
	ASSERT_UINT_EQ(r->ignored_records, 1);
	report__free(r);
}

/* Same host, exe, uid and cgroup, two network namespaces: two programs, labelled apart. */
static void test_netns_apart(void)
{
	struct report *r = load(FILES("web2.jsonl"));
	const struct report_program *s1 = find_ns(r, "web2", "socat", 0, 4026532001);
	const struct report_program *s2 = find_ns(r, "web2", "socat", 0, 4026532002);
	const struct report_program *app = find(r, "web2", "app", 1001);

	REQUIRE_TRUE(s1 && s2 && app);
	ASSERT_TRUE(s1 != s2);
	ASSERT_TRUE(s1->show_netns && s2->show_netns);
	ASSERT_TRUE(!app->show_netns);
	ASSERT_UINT_EQ(s1->c.connect_tcp, 1);
	ASSERT_UINT_EQ(s2->c.connect_tcp, 1);
	report__free(r);
}

static void test_restart_new_run(void)
{
	struct report *r = load(FILES("web1.jsonl"));

	REQUIRE_TRUE(r->nruns == 2);
	/* in the order they started */
	ASSERT_STR_EQ(r->runs[0].run, "web1-1795856400-100");
	ASSERT_STR_EQ(r->runs[1].run, "web1-1795863600-200");
	ASSERT_INT_EQ(r->runs[0].started, T_0900);
	ASSERT_TRUE(r->runs[0].have_run_record && r->runs[0].final);
	ASSERT_TRUE(r->runs[1].have_run_record && r->runs[1].final);
	ASSERT_UINT_EQ(r->runs[0].audit_records, 4);
	ASSERT_UINT_EQ(r->runs[0].programs_seen, 2);
	ASSERT_UINT_EQ(r->runs[0].events, 8); /* the final audit_run, not the interval one */
	ASSERT_UINT_EQ(r->runs[0].lost, 0);
	ASSERT_UINT_EQ(r->runs[1].lost, 3);
	ASSERT_STR_EQ(r->runs[1].backend, "tracepoint");
	ASSERT_UINT_EQ(r->lost, 3);
	ASSERT_UINT_EQ(r->evictions, 0);
	ASSERT_UINT_EQ(r->runs_incomplete, 1);
	ASSERT_UINT_EQ(r->runs_without_final, 0);
	report__free(r);
}

static void test_malformed(void)
{
	struct report *r = load(FILES("web1.jsonl", "malformed.jsonl"));
	char *text;

	ASSERT_UINT_EQ(r->malformed, 12);
	ASSERT_STR_EQ(r->first_malformed_file, "web1.jsonl");
	ASSERT_UINT_EQ(r->first_malformed_line, 5);
	ASSERT_STR_EQ(r->first_malformed_reason,
		      "not JSON (unexpected token near end of file at byte 99)");
	ASSERT_UINT_EQ(r->audit_records, 7); /* 6 in web1, 1 in malformed */
	text = print(r, false);
	ASSERT_LINE(text, "warning: skipped 12 malformed lines (first: web1.jsonl:5: not JSON "
			  "(unexpected token near end of file at byte 99))");
	free(text);
	report__free(r);

	r = load(FILES("malformed.jsonl"));
	ASSERT_UINT_EQ(r->malformed, 11);
	ASSERT_UINT_EQ(r->first_malformed_line, 1);
	ASSERT_UINT_EQ(r->audit_records, 1);
	ASSERT_UINT_EQ(r->nprograms, 1);
	report__free(r);
}

/* Line by line: each broken record is refused with the field that is wrong. */
static void test_malformed_reasons(void)
{
	static const char *const reasons[] = {
		"not JSON ('[' or '{' expected near 'not' at byte 3)",
		"missing or invalid \"uid\"",
		/* jansson's integers end at 2^63-1: beyond, the line is not JSON to it */
		"not JSON (too big integer near '18446744073709551616' at byte 225)",
		NULL, /* the valid one */
		"missing or invalid \"peers.addr\"",
		"missing or invalid \"ts\"",
		"not JSON (end of file expected near 'trailing' at byte 591)",
		"missing or invalid \"connect.tcp\"",
		"not a JSON object",
		"missing or invalid \"peers.dir\"",
		"missing or invalid \"connect.tcp\"",
		"not JSON (string or '}' expected near ''' at byte 102)",
	};
	char path[1024], *line = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/malformed.jsonl", UNIT_FIXTURES);
	f = fopen(path, "r");
	REQUIRE_TRUE(f != NULL);
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		struct report *r;

		REQUIRE_TRUE(getline(&line, &cap, f) > 0);
		r = load_text("line", line);
		if (reasons[i]) {
			ASSERT_UINT_EQ(r->malformed, 1);
			ASSERT_STR_EQ(r->first_malformed_reason, reasons[i]);
		} else {
			ASSERT_UINT_EQ(r->malformed, 0);
			ASSERT_UINT_EQ(r->audit_records, 1);
		}
		report__free(r);
	}
	free(line);
	fclose(f);
}

/* Blank lines, CRLF, no final newline, a NUL byte, a line over 1 MiB, stdin's name. */
static void test_stream_edges(void)
{
	char *rec = record("r1", "2026-11-22T10:00:00Z", "x", 0, NO_COUNTERS, NO_PEERS);
	size_t n = strlen(rec), big = REPORT_LINE_MAX + 10;
	char *text = malloc(3 * n + big + 64), *p;
	struct report *r;
	FILE *f;

	REQUIRE_TRUE(text != NULL);
	p = text;
	p += sprintf(p, "\n  \t\n");			/* blank: skipped, not malformed */
	memcpy(p, rec, n - 1);				/* CRLF */
	p += n - 1;
	p += sprintf(p, "\r\n");
	memcpy(p, "{\"type\":\0\"x\"}\n", 14);		/* a NUL byte */
	p += 14;
	memset(p, ' ', big);				/* too long, even if blank */
	p += big;
	*p++ = '\n';
	memcpy(p, rec, n - 1);				/* no newline at the end */
	p += n - 1;

	f = fmemopen(text, p - text, "r");
	REQUIRE_TRUE(f != NULL);
	r = report__new();
	REQUIRE_TRUE(r != NULL);
	ASSERT_INT_EQ(report__read(r, f, "-"), 0);
	fclose(f);
	ASSERT_INT_EQ(report__finish(r), 0);
	ASSERT_UINT_EQ(r->lines, 6);
	ASSERT_UINT_EQ(r->audit_records, 2);
	ASSERT_UINT_EQ(r->malformed, 2);
	ASSERT_STR_EQ(r->first_malformed_file, "(stdin)");
	ASSERT_UINT_EQ(r->first_malformed_line, 4);
	ASSERT_STR_EQ(r->first_malformed_reason, "NUL byte in line");
	ASSERT_UINT_EQ(r->nprograms, 1);
	report__free(r);
	free(text);
	free(rec);
}

/* ------------------------------------------------------------------- verdicts */

static void test_summary_line(void)
{
	struct report *r = load(FILES("web1.jsonl", "web2.jsonl"));
	char *text = print(r, false);

	ASSERT_TRUE(!strncmp(text,
			     "dstrace report: 7 programs on 2 hosts depend on IPv4 through mapped "
			     "addresses; 7 would break with net.ipv6.bindv6only=1; 2 already fail "
			     "with ENETUNREACH.\n",
			     strchr(text, '\n') - text + 1));
	ASSERT_LINE(text, "Audited: 3 runs on 2 hosts (web1, web2), 2026-11-22T09:00:00Z to "
			  "2026-11-22T12:30:00Z, 14 audit records in 2 files.");
	ASSERT_LINE(text, "warning: the audit may be incomplete: 3 events lost, 2 UDP flow "
			  "evictions, 0 programs dropped by dstrace (in 2 of 3 runs); peers, ports "
			  "or whole programs may be missing");
	ASSERT_LINE(text, "warning: skipped 1 malformed line (first: web1.jsonl:5: not JSON "
			  "(unexpected token near end of file at byte 99))");
	ASSERT_LINE(text, "note: 1 run has no final audit_run record (dstrace still running, or "
			  "killed): counts end at the last interval written");
	ASSERT_LINE(text, "1 program with no mapped activity not shown.");
	free(text);
	report__free(r);

	r = load(FILES("web1.jsonl"));
	text = print(r, false);
	ASSERT_TRUE(!strncmp(text,
			     "dstrace report: 2 programs on 1 host depend on IPv4 through mapped "
			     "addresses; 2 would break with net.ipv6.bindv6only=1; 1 already fails "
			     "with ENETUNREACH.\n",
			     strchr(text, '\n') - text + 1));
	ASSERT_TRUE(!strstr(text, "note: "));
	free(text);
	report__free(r);
}

static void test_sorted_most_dependent_first(void)
{
	static const char *const order[][2] = {
		{ "web2", "nginx" },	{ "web2", "app" },   { "web1", "nginx" },
		{ "web2", "rsyslogd" }, { "web1", "worker" }, { "web2", "socat" },
		{ "web2", "socat" },	{ "web2", "curl" },  { "web2", "sshd" },
	};
	struct report *r = load(FILES("web2.jsonl", "web1.jsonl"));

	REQUIRE_TRUE(r->nprograms == 9);
	for (uint32_t i = 0; i < r->nprograms; i++) {
		ASSERT_STR_EQ(r->programs[i].host, order[i][0]);
		ASSERT_STR_EQ(r->programs[i].comm, order[i][1]);
	}
	ASSERT_UINT_EQ(r->programs[0].activity, 20);
	ASSERT_UINT_EQ(r->programs[2].activity, 9);
	ASSERT_TRUE(!r->programs[7].depends && !r->programs[8].depends);
	report__free(r);
}

static void test_verdict_lines(void)
{
	static const char *const ipv4[] = {
		"  nginx (/usr/sbin/nginx, uid 33, cgroup /system.slice/nginx.service) on web1: "
		"would stop accepting IPv4 clients on port 8080 (9 connections from 3 peers)",
		"  nginx (/usr/sbin/nginx, uid 101, cgroup /system.slice/docker-0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef.scope, container 0123456789ab) on "
		"web2: would stop accepting IPv4 clients on port 80 (20 connections from at least 2 "
		"peers)",
		"  worker (/usr/bin/python3, uid 1000, cgroup /system.slice/worker.service) on web1: "
		"could no longer connect to 198.51.100.7:5432/tcp (4 connections) and "
		"198.51.100.8:5432/tcp (1 connection)",
		"  app (/opt/app/bin/app, uid 1001, cgroup /system.slice/app.service) on web2: could "
		"no longer send to 198.51.100.53:53/udp (10 datagrams)",
		"  rsyslogd (/usr/sbin/rsyslogd, uid 0, cgroup /system.slice/rsyslog.service) on "
		"web2: would stop receiving IPv4 datagrams on UDP port 514 (7 datagrams from 2 peers)",
		"  socat (/usr/bin/socat, uid 0, cgroup /system.slice/relay.service, netns "
		"4026532002) on web2: could no longer connect to 192.0.2.99:7/tcp (1 connection)",
	};
	static const char *const v6only[] = {
		"  nginx (/usr/sbin/nginx, uid 33, cgroup /system.slice/nginx.service) on web1: "
		"would stop accepting IPv4 clients on port 8080 (9 connections from 3 peers)",
		"  worker (/usr/bin/python3, uid 1000, cgroup /system.slice/worker.service) on web1: "
		"would get ENETUNREACH connecting to 198.51.100.7:5432/tcp (4 connections) and "
		"198.51.100.8:5432/tcp (1 connection)",
		"  app (/opt/app/bin/app, uid 1001, cgroup /system.slice/app.service) on web2: would "
		"get ENETUNREACH sending to 198.51.100.53:53/udp (10 datagrams)",
		"  rsyslogd (/usr/sbin/rsyslogd, uid 0, cgroup /system.slice/rsyslog.service) on "
		"web2: would stop receiving IPv4 datagrams on UDP port 514 (7 datagrams from 2 peers)",
	};
	static const char *const failing[] = {
		"  worker (/usr/bin/python3, uid 1000, cgroup /system.slice/worker.service) on web1: "
		"already fails: 2 mapped connects or sends got ENETUNREACH (a v6-only socket, or no "
		"IPv4 route)",
		"  curl (/usr/bin/curl, uid 1000, cgroup /user.slice/user-1000.slice/session-1.scope) "
		"on web2: already fails: 3 mapped connects or sends got ENETUNREACH (a v6-only "
		"socket, or no IPv4 route)",
	};
	struct report *r = load(FILES("web1.jsonl", "web2.jsonl"));
	char *text = print(r, false);
	char *v4 = strstr(text, "\nVerdict: if the host lost IPv4\n");
	char *v6 = strstr(text, "\nVerdict: with net.ipv6.bindv6only=1");
	char *fail = strstr(text, "\nAlready failing\n");

	REQUIRE_TRUE(v4 && v6 && fail && v4 < v6 && v6 < fail);
	v6[0] = fail[0] = '\0'; /* three sections */
	for (size_t i = 0; i < sizeof(ipv4) / sizeof(ipv4[0]); i++)
		ASSERT_LINE(v4, ipv4[i]);
	for (size_t i = 0; i < sizeof(v6only) / sizeof(v6only[0]); i++)
		ASSERT_LINE(v6 + 1, v6only[i]);
	for (size_t i = 0; i < sizeof(failing) / sizeof(failing[0]); i++)
		ASSERT_LINE(fail + 1, failing[i]);
	/* curl only fails, sshd did nothing: neither would break */
	ASSERT_TRUE(!strstr(v4, "curl (") && !strstr(v4, "sshd ("));
	ASSERT_TRUE(!strstr(v6 + 1, "curl (") && !strstr(v6 + 1, "sshd ("));
	free(text);
	report__free(r);
}

static void test_program_details(void)
{
	struct report *r = load(FILES("web1.jsonl", "web2.jsonl"));
	char *text = print(r, false);

	ASSERT_LINE(text, "  inbound   tcp port 8080: 9 connections from 3 peers: 192.0.2.10 (4), "
			  "192.0.2.12 (3), 192.0.2.11 (2)");
	ASSERT_LINE(text, "  outbound  tcp connect: 5 connections to 2 peers: 198.51.100.7:5432 (4), "
			  "198.51.100.8:5432 (1)");
	ASSERT_LINE(text, "  failed    2: ENETUNREACH 2 (already fails: a v6-only socket, or no "
			  "IPv4 route)");
	ASSERT_LINE(text, "  outbound  udp send: 10 datagrams, 400 bytes, to 1 peer: "
			  "198.51.100.53:53 (10)");
	ASSERT_LINE(text, "            udp replies and other datagrams received: 10");
	ASSERT_LINE(text, "  traffic   sent 11000 TCP bytes; received 2500 TCP bytes");
	ASSERT_LINE(text, "  container 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	ASSERT_LINE(text, "  seen      2026-11-22T09:00:00Z to 2026-11-22T12:00:00Z, 2 runs, up to 3 "
			  "processes, netns 4026531840");
	free(text);
	report__free(r);
}

/* A UDP client's replies are not a service it offers. */
static void test_udp_replies(void)
{
	struct report *r = load(FILES("web2.jsonl"));
	const struct report_program *app = find(r, "web2", "app", 1001);
	const struct report_program *syslog = find(r, "web2", "rsyslogd", 0);

	REQUIRE_TRUE(app && syslog);
	ASSERT_UINT_EQ(app->udp_reply_datagrams, 10);
	ASSERT_UINT_EQ(app->ninbound, 0);
	for (uint32_t i = 0; i < app->npeers; i++)
		ASSERT_TRUE(app->peers[i].reply == (app->peers[i].dir == REPORT_DIR_IN));
	ASSERT_STR_EQ(app->verdict_ipv4, "could no longer send to 198.51.100.53:53/udp (10 datagrams)");
	REQUIRE_TRUE(syslog->ninbound == 1);
	ASSERT_UINT_EQ(syslog->inbound[0].proto, DSTRACE_PROTO_UDP);
	ASSERT_UINT_EQ(syslog->inbound[0].port, 514);
	ASSERT_UINT_EQ(syslog->inbound[0].count, 7);
	ASSERT_UINT_EQ(syslog->udp_reply_datagrams, 0);
	report__free(r);
}

/* One program both serving UDP on 18053 and querying that server: its replies come back on
 * an ephemeral port (40462), its service port is not a reply port. */
static void test_udp_client_and_server(void)
{
	char *rec = record(
		"r1", "2026-11-22T10:00:00Z", "both", 0,
		"\"connect\":{\"tcp\":0,\"udp\":0},\"accept\":{\"tcp\":0},\"sent\":{\"tcp_bytes\":0,"
		"\"udp_datagrams\":6,\"udp_bytes\":6},\"received\":{\"tcp_bytes\":0,"
		"\"udp_datagrams\":6,\"udp_bytes\":6},\"failed\":{\"total\":0,\"by_errno\":{}}",
		"\"listen_ports\":[],\"peers\":["
		"{\"dir\":\"out\",\"proto\":\"udp\",\"addr\":\"127.0.0.1\",\"port\":18053,\"count\":3},"
		"{\"dir\":\"in\",\"proto\":\"udp\",\"addr\":\"127.0.0.1\",\"port\":18053,\"count\":3},"
		"{\"dir\":\"in\",\"proto\":\"udp\",\"addr\":\"127.0.0.1\",\"port\":40462,\"count\":3},"
		"{\"dir\":\"out\",\"proto\":\"udp\",\"addr\":\"127.0.0.1\",\"port\":40462,\"count\":3}]");
	struct report *r = load_text("both", rec);
	const struct report_program *p = &r->programs[0];

	REQUIRE_TRUE(r->nprograms == 1 && p->ninbound == 1);
	ASSERT_UINT_EQ(p->inbound[0].port, 18053);
	ASSERT_UINT_EQ(p->inbound[0].count, 3);
	ASSERT_UINT_EQ(p->udp_reply_datagrams, 3);
	ASSERT_STR_EQ(p->verdict_ipv4,
		      "would stop receiving IPv4 datagrams on UDP port 18053 (3 datagrams from 1 "
		      "peer); could no longer send to 127.0.0.1:18053/udp (3 datagrams) and "
		      "127.0.0.1:40462/udp (3 datagrams)");
	report__free(r);
	free(rec);
}

/* The same program, as dstrace writes it now: the replies counted apart (sent.udp_replies,
 * received.udp_replies), no peers of their own. Its service's replies are no sends of its
 * own; a service that only replies sends nothing outbound. */
static void test_udp_replies_counted(void)
{
	char *both = record(
		"r1", "2026-11-22T10:00:00Z", "both", 0,
		"\"connect\":{\"tcp\":0,\"udp\":0},\"accept\":{\"tcp\":0},\"sent\":{\"tcp_bytes\":0,"
		"\"udp_datagrams\":6,\"udp_bytes\":6,\"udp_replies\":3},\"received\":{\"tcp_bytes\":0,"
		"\"udp_datagrams\":6,\"udp_bytes\":6,\"udp_replies\":3},"
		"\"failed\":{\"total\":0,\"by_errno\":{}}",
		"\"listen_ports\":[],\"peers\":["
		"{\"dir\":\"out\",\"proto\":\"udp\",\"addr\":\"127.0.0.1\",\"port\":18053,\"count\":3},"
		"{\"dir\":\"in\",\"proto\":\"udp\",\"addr\":\"127.0.0.1\",\"port\":18053,\"count\":3}]");
	/* a DNS-like service: 100 queries from 10 clients (8 listed), 100 replies */
	char *svc = record(
		"r1", "2026-11-22T10:00:00Z", "dnsd", 0,
		"\"connect\":{\"tcp\":0,\"udp\":0},\"accept\":{\"tcp\":0},\"sent\":{\"tcp_bytes\":0,"
		"\"udp_datagrams\":100,\"udp_bytes\":5000,\"udp_replies\":100},\"received\":{"
		"\"tcp_bytes\":0,\"udp_datagrams\":100,\"udp_bytes\":4000,\"udp_replies\":0},"
		"\"failed\":{\"total\":0,\"by_errno\":{}}",
		"\"listen_ports\":[],\"peers\":["
		"{\"dir\":\"in\",\"proto\":\"udp\",\"addr\":\"192.0.2.1\",\"port\":53,\"count\":60},"
		"{\"dir\":\"in\",\"proto\":\"udp\",\"addr\":\"192.0.2.2\",\"port\":53,\"count\":20}]");
	char *high = record(
		"r1", "2026-11-22T10:00:00Z", "statsd", 0,
		"\"connect\":{\"tcp\":0,\"udp\":0},\"accept\":{\"tcp\":0},\"sent\":{\"tcp_bytes\":0,"
		"\"udp_datagrams\":9,\"udp_bytes\":9,\"udp_replies\":0},\"received\":{"
		"\"tcp_bytes\":0,\"udp_datagrams\":4,\"udp_bytes\":4,\"udp_replies\":0},"
		"\"failed\":{\"total\":0,\"by_errno\":{}}",
		"\"listen_ports\":[],\"peers\":["
		"{\"dir\":\"out\",\"proto\":\"udp\",\"addr\":\"127.0.0.1\",\"port\":8125,\"count\":9},"
		"{\"dir\":\"in\",\"proto\":\"udp\",\"addr\":\"127.0.0.1\",\"port\":40000,\"count\":4}]");
	struct report *r = load_text("both", both);
	const struct report_program *p = &r->programs[0];
	char *text;

	REQUIRE_TRUE(r->nprograms == 1 && p->ninbound == 1);
	ASSERT_UINT_EQ(p->inbound[0].port, 18053);
	ASSERT_UINT_EQ(p->inbound[0].count, 3);
	ASSERT_UINT_EQ(p->udp_reply_datagrams, 3);
	ASSERT_UINT_EQ(p->in_udp_unlisted, 0);
	ASSERT_UINT_EQ(p->out_udp_unlisted, 0);
	ASSERT_STR_EQ(p->verdict_ipv4,
		      "would stop receiving IPv4 datagrams on UDP port 18053 (3 datagrams from 1 "
		      "peer); could no longer send to 127.0.0.1:18053/udp (3 datagrams)");
	report__free(r);
	r = load_text("dnsd", svc);
	p = &r->programs[0];
	REQUIRE_TRUE(r->nprograms == 1 && p->ninbound == 1);
	ASSERT_UINT_EQ(p->inbound[0].port, 53);
	ASSERT_UINT_EQ(p->inbound[0].count, 100); /* its only port: the unlisted 20 too */
	ASSERT_UINT_EQ(p->out_udp_unlisted, 0);
	ASSERT_UINT_EQ(p->udp_reply_datagrams, 0);
	ASSERT_STR_EQ(p->verdict_ipv4,
		      "would stop receiving IPv4 datagrams on UDP port 53 (100 datagrams from at "
		      "least 2 peers)");
	text = print(r, false);
	ASSERT_LINE(text, "            udp replies sent to its clients: 100");
	ASSERT_TRUE(!strstr(text, "outbound"));
	free(text);
	report__free(r);
	/* a service on a high port that also sends to that address: no guess, a service */
	r = load_text("high", high);
	p = &r->programs[0];
	REQUIRE_TRUE(r->nprograms == 1 && p->ninbound == 1);
	ASSERT_UINT_EQ(p->inbound[0].port, 40000);
	ASSERT_UINT_EQ(p->udp_reply_datagrams, 0);
	report__free(r);
	free(both);
	free(svc);
	free(high);
}

/* What dstrace's writer also emits: a null cgroup (the process was gone), failures under
 * "other" (its errno table was full), listener port 0 and "in" peers on port 0 (a port it
 * did not learn). */
static void test_writer_extras(void)
{
	char *rec = record(
		"r1", "2026-11-22T10:00:00Z", "gone", 7,
		"\"connect\":{\"tcp\":0,\"udp\":0},\"accept\":{\"tcp\":4},\"sent\":{\"tcp_bytes\":0,"
		"\"udp_datagrams\":0,\"udp_bytes\":0},\"received\":{\"tcp_bytes\":0,"
		"\"udp_datagrams\":0,\"udp_bytes\":0},\"failed\":{\"total\":5,\"by_errno\":"
		"{\"ECONNREFUSED\":2,\"other\":3}}",
		"\"listen_ports\":[0,8080],\"peers\":["
		"{\"dir\":\"in\",\"proto\":\"tcp\",\"addr\":\"192.0.2.1\",\"port\":0,\"count\":3},"
		"{\"dir\":\"in\",\"proto\":\"tcp\",\"addr\":\"192.0.2.2\",\"port\":8080,\"count\":1}]");
	char *cg = strstr(rec, "\"/system.slice/x.service\"");
	struct report *r;
	const struct report_program *p;
	char *text, *json;

	REQUIRE_TRUE(cg != NULL);
	memcpy(cg, "null", 4);
	memmove(cg + 4, cg + strlen("\"/system.slice/x.service\""),
		strlen(cg + strlen("\"/system.slice/x.service\"")) + 1);
	r = load_text("extras", rec);
	ASSERT_UINT_EQ(r->malformed, 0);
	REQUIRE_TRUE(r->nprograms == 1);
	p = &r->programs[0];
	ASSERT_STR_EQ(p->cgroup, "");
	ASSERT_UINT_EQ(p->errnos_other, 3);
	REQUIRE_TRUE(p->nerrnos == 1);
	ASSERT_STR_EQ(p->errnos[0].name, "ECONNREFUSED");
	ASSERT_UINT_EQ(p->nports, 1);
	ASSERT_UINT_EQ(p->ports[0], 8080);
	ASSERT_STR_EQ(p->verdict_ipv4,
		      "would stop accepting IPv4 clients on an unknown port (3 connections from 1 "
		      "peer) and port 8080 (1 connection from 1 peer)");
	text = print(r, false);
	ASSERT_TRUE(strstr(text, "gone (/usr/bin/gone, uid 7, cgroup ?) on h: ") != NULL);
	ASSERT_LINE(text, "  inbound   tcp port ?: 3 connections from 1 peer: 192.0.2.1 (3)");
	ASSERT_LINE(text, "  failed    5: ECONNREFUSED 2, other 3");
	json = print(r, true);
	ASSERT_TRUE(strstr(json, "\"cgroup\":null,") != NULL);
	ASSERT_TRUE(strstr(json, "\"by_errno\":{\"ECONNREFUSED\":2},\"other\":3}") != NULL);
	free(text);
	free(json);
	report__free(r);
	free(rec);
}

/* A run lists its 16 busiest peers: the totals say how much the list leaves out. */
static void test_unlisted_peers(void)
{
	char *rec = record(
		"r1", "2026-11-22T10:00:00Z", "srv", 0,
		"\"connect\":{\"tcp\":10,\"udp\":0},\"accept\":{\"tcp\":50},\"sent\":{\"tcp_bytes\":1,"
		"\"udp_datagrams\":0,\"udp_bytes\":0},\"received\":{\"tcp_bytes\":1,"
		"\"udp_datagrams\":0,\"udp_bytes\":0},\"failed\":{\"total\":1,\"by_errno\":"
		"{\"ECONNREFUSED\":1}}",
		"\"listen_ports\":[443,80],\"peers\":["
		"{\"dir\":\"in\",\"proto\":\"tcp\",\"addr\":\"192.0.2.1\",\"port\":80,\"count\":10},"
		"{\"dir\":\"in\",\"proto\":\"tcp\",\"addr\":\"192.0.2.2\",\"port\":80,\"count\":5},"
		"{\"dir\":\"in\",\"proto\":\"tcp\",\"addr\":\"192.0.2.1\",\"port\":443,\"count\":3},"
		"{\"dir\":\"out\",\"proto\":\"tcp\",\"addr\":\"192.0.2.7\",\"port\":443,\"count\":4}]");
	struct report *r = load_text("unlisted", rec);
	const struct report_program *p = &r->programs[0];

	REQUIRE_TRUE(r->nprograms == 1);
	ASSERT_UINT_EQ(p->in_tcp_unlisted, 32);
	ASSERT_UINT_EQ(p->out_tcp_unlisted, 6);
	ASSERT_UINT_EQ(p->enetunreach, 0);
	ASSERT_TRUE(p->verdict_failing == NULL);
	ASSERT_STR_EQ(p->verdict_ipv4,
		      "would stop accepting IPv4 clients on port 80 (15 connections from 2 peers) "
		      "and port 443 (3 connections from 1 peer), plus 32 connections from peers "
		      "not listed; could no longer connect to 192.0.2.7:443/tcp (4 connections) and "
		      "peers not listed (6 connections)");
	report__free(r);
	free(rec);
}

/* Traffic on mapped TCP connections that were open before dstrace started. */
static void test_bytes_only(void)
{
	char *rec = record("r1", "2026-11-22T10:00:00Z", "old", 0,
			   "\"connect\":{\"tcp\":0,\"udp\":0},\"accept\":{\"tcp\":0},\"sent\":"
			   "{\"tcp_bytes\":100,\"udp_datagrams\":0,\"udp_bytes\":0},\"received\":"
			   "{\"tcp_bytes\":50,\"udp_datagrams\":0,\"udp_bytes\":0},\"failed\":"
			   "{\"total\":0,\"by_errno\":{}}",
			   NO_PEERS);
	struct report *r = load_text("bytes", rec);

	REQUIRE_TRUE(r->nprograms == 1);
	ASSERT_TRUE(r->programs[0].depends);
	ASSERT_STR_EQ(r->programs[0].verdict_ipv4,
		      "would lose the mapped TCP connections it had open before the audit (100 "
		      "bytes sent, 50 received)");
	ASSERT_STR_EQ(r->programs[0].verdict_bindv6only,
		      "could not reopen the mapped TCP connections it had open before the audit "
		      "(100 bytes sent, 50 received)");
	report__free(r);
	free(rec);
}

static void test_only_failures(void)
{
	struct report *r = load(FILES("web2.jsonl"));
	const struct report_program *curl = find(r, "web2", "curl", 1000);

	REQUIRE_TRUE(curl != NULL);
	ASSERT_TRUE(!curl->depends && !curl->breaks_without_ipv4 && !curl->breaks_with_bindv6only);
	ASSERT_TRUE(curl->verdict_ipv4 == NULL && curl->verdict_bindv6only == NULL);
	ASSERT_STR_EQ(curl->verdict_failing, "already fails: 3 mapped connects or sends got "
					     "ENETUNREACH (a v6-only socket, or no IPv4 route)");
	report__free(r);
}

/* Process names and paths come from the audited host: no terminal escapes, no fake lines. */
static void test_text_sanitized(void)
{
	char *rec = record("r1", "2026-11-22T10:00:00Z", "ev\\u001b[31mil\\nx", 0,
			   "\"connect\":{\"tcp\":1,\"udp\":0},\"accept\":{\"tcp\":0},\"sent\":"
			   "{\"tcp_bytes\":0,\"udp_datagrams\":0,\"udp_bytes\":0},\"received\":"
			   "{\"tcp_bytes\":0,\"udp_datagrams\":0,\"udp_bytes\":0},\"failed\":"
			   "{\"total\":0,\"by_errno\":{}}",
			   NO_PEERS);
	struct report *r = load_text("evil", rec);
	char *text = print(r, false), *json = print(r, true);

	ASSERT_TRUE(strstr(text, "ev?[31mil?x (/usr/bin/ev?[31mil?x, uid 0") != NULL);
	ASSERT_TRUE(strchr(text, '\x1b') == NULL);
	/* jansson writes \u001B where the old writer wrote \u001b: the same string */
	ASSERT_TRUE(strstr(json, "\"comm\":\"ev\\u001B[31mil\\nx\"") != NULL);
	free(text);
	free(json);
	report__free(r);
	free(rec);
}

/* ----------------------------------------------------------------- the bounds */

static char *many_peers_record(const char *run, uint32_t first, uint32_t n, uint64_t count)
{
	char *buf = NULL, *rec;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	REQUIRE_TRUE(f != NULL);
	fputs("\"listen_ports\":[],\"peers\":[", f);
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, "%s{\"dir\":\"out\",\"proto\":\"tcp\",\"addr\":\"10.%u.%u.%u\",\"port\":80,"
			   "\"count\":%llu}",
			i ? "," : "", (first + i) >> 16 & 255, (first + i) >> 8 & 255,
			(first + i) & 255, (unsigned long long)count);
	fputs("]", f);
	fclose(f);
	rec = record(run, "2026-11-22T10:00:00Z", "fan", 0, NO_COUNTERS, buf);
	free(buf);
	return rec;
}

static void test_peer_cap(void)
{
	char *one = many_peers_record("r1", 0, REPORT_PEERS_MAX + 76, 1);
	char *two = many_peers_record("r2", 100000, 100, 5);
	char *text = NULL, *out;
	struct report *r;
	const struct report_program *p;

	REQUIRE_TRUE(asprintf(&text, "%s%s", one, two) > 0);
	r = load_text("fan", text);
	REQUIRE_TRUE(r->nprograms == 1);
	p = &r->programs[0];
	ASSERT_UINT_EQ(p->npeers, REPORT_PEERS_MAX);
	ASSERT_UINT_EQ(p->peers_dropped, 76);  /* beyond the table in one record */
	ASSERT_UINT_EQ(p->peers_capped, 100);  /* beyond the table once merged */
	ASSERT_UINT_EQ(p->peers[0].count, 5);  /* the busiest were kept */
	ASSERT_UINT_EQ(p->peers[99].count, 5);
	ASSERT_UINT_EQ(p->peers[100].count, 1);
	out = print(r, false);
	ASSERT_LINE(out, "  note      76 peers not in dstrace's table, 100 beyond this report's "
			 "1024, 0 listener ports beyond 1024");
	free(out);
	report__free(r);
	free(text);
	free(one);
	free(two);
}

/* REPORT_PROGRAMS_MAX + 1 programs: the last one is counted, not kept, and said. */
static void test_program_cap(void)
{
	char *buf = NULL, *text;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	struct report *r;

	REQUIRE_TRUE(f != NULL);
	for (uint32_t i = 0; i <= REPORT_PROGRAMS_MAX; i++)
		fprintf(f,
			"{\"type\":\"audit\",\"run\":\"r\",\"ts\":\"2026-11-22T10:00:00Z\",\"host\":"
			"\"h\",\"backend\":\"t\",\"exe\":\"/x\",\"comm\":\"x\",\"uid\":%u,\"cgroup\":"
			"\"/\",\"container\":null,\"netns\":1,\"pids\":1,%s,\"first_seen\":null,"
			"\"last_seen\":null,%s,\"peers_dropped\":0}\n",
			i, NO_COUNTERS, NO_PEERS);
	fclose(f);
	r = load_text("many", buf);
	ASSERT_UINT_EQ(r->nprograms, REPORT_PROGRAMS_MAX);
	ASSERT_UINT_EQ(r->over_programs, 1);
	text = print(r, false);
	ASSERT_LINE(text, "warning: this report had no room for 1 records (at most 65536 programs, "
			  "65536 runs, 262144 run-program pairs): their programs are missing");
	free(text);
	report__free(r);
	free(buf);
}

/* ------------------------------------------------------------------ JSON */

/* The member at a dotted path ("summary.programs"), or NULL. */
static json_t *path(json_t *n, const char *keys)
{
	char key[64];

	while (n && *keys) {
		size_t len = strcspn(keys, ".");

		snprintf(key, sizeof(key), "%.*s", (int)len, keys);
		n = json_object_get(n, key);
		keys += len + (keys[len] == '.');
	}
	return n;
}

static uint64_t num(json_t *n, const char *keys)
{
	json_t *v = path(n, keys);

	unit_check(UNIT_AT(false), json_is_integer(v), "no number at %s", keys);
	return json_is_integer(v) ? (uint64_t)json_integer_value(v) : UINT64_MAX;
}

static const char *str(json_t *n, const char *keys)
{
	json_t *v = path(n, keys);

	unit_check(UNIT_AT(false), json_is_string(v), "no string at %s", keys);
	return json_is_string(v) ? json_string_value(v) : "";
}

static json_t *program_in(json_t *root, const char *host, const char *comm, uint64_t uid)
{
	json_t *p;
	size_t i;

	json_array_foreach(json_object_get(root, "programs"), i, p) {
		if (!strcmp(str(p, "host"), host) && !strcmp(str(p, "comm"), comm) &&
		    num(p, "uid") == uid)
			return p;
	}
	return NULL;
}

/* The report's JSON, parsed back as strictly as report reads its input. */
static json_t *parse_json(const char *text)
{
	json_error_t err;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &err);

	unit_check(UNIT_AT(true), root != NULL, "not JSON: %s at %d", err.text, err.position);
	return root;
}

static void test_json_document(void)
{
	struct report *r = load(FILES("web1.jsonl", "web2.jsonl"));
	char *json = print(r, true);
	json_t *root = parse_json(json), *nginx, *curl, *peer;

	ASSERT_STR_EQ(str(root, "type"), "dstrace_report");
	ASSERT_UINT_EQ(num(root, "version"), 1);
	ASSERT_UINT_EQ(num(root, "summary.programs"), 7);
	ASSERT_UINT_EQ(num(root, "summary.hosts"), 2);
	ASSERT_UINT_EQ(num(root, "summary.breaks_without_ipv4"), 7);
	ASSERT_UINT_EQ(num(root, "summary.breaks_with_bindv6only"), 7);
	ASSERT_UINT_EQ(num(root, "summary.already_failing"), 2);
	ASSERT_UINT_EQ(num(root, "summary.programs_seen"), 9);
	ASSERT_TRUE(json_is_false(path(root, "summary.complete")));
	ASSERT_UINT_EQ(num(root, "input.audit_records"), 14);
	ASSERT_UINT_EQ(num(root, "input.malformed_lines"), 1);
	ASSERT_STR_EQ(str(root, "input.first_malformed.file"), "web1.jsonl");
	ASSERT_UINT_EQ(num(root, "input.first_malformed.line"), 5);
	ASSERT_STR_EQ(str(root, "input.first_ts"), "2026-11-22T09:00:00.000000Z");
	ASSERT_UINT_EQ(num(root, "completeness.lost"), 3);
	ASSERT_UINT_EQ(num(root, "completeness.evictions"), 2);
	ASSERT_UINT_EQ(num(root, "completeness.runs_without_final"), 1);
	ASSERT_UINT_EQ(num(root, "completeness.drops.proc_full"), 0); /* no "drops" in the input */
	ASSERT_UINT_EQ(num(root, "completeness.write_errors"), 0);
	ASSERT_UINT_EQ(json_array_size(path(root, "hosts")), 2);
	ASSERT_UINT_EQ(json_array_size(path(root, "runs")), 3);
	ASSERT_UINT_EQ(json_array_size(path(root, "programs")), 9);
	ASSERT_STR_EQ(str(json_array_get(path(root, "programs"), 0), "host"), "web2");

	nginx = program_in(root, "web1", "nginx", 33);
	REQUIRE_TRUE(nginx != NULL);
	ASSERT_STR_EQ(str(nginx, "exe"), "/usr/sbin/nginx");
	ASSERT_STR_EQ(str(nginx, "cgroup"), "/system.slice/nginx.service");
	ASSERT_TRUE(json_is_null(json_object_get(nginx, "container")));
	ASSERT_UINT_EQ(num(nginx, "netns"), 4026531840u);
	ASSERT_UINT_EQ(num(nginx, "runs"), 2);
	ASSERT_UINT_EQ(num(nginx, "accept.tcp"), 9);
	ASSERT_UINT_EQ(num(nginx, "sent.tcp_bytes"), 11000);
	ASSERT_UINT_EQ(num(nginx, "activity"), 9);
	ASSERT_UINT_EQ(json_integer_value(json_array_get(path(nginx, "listen_ports"), 0)), 8080);
	peer = json_array_get(path(nginx, "peers"), 0);
	ASSERT_STR_EQ(str(peer, "dir"), "in");
	ASSERT_STR_EQ(str(peer, "addr"), "192.0.2.10");
	ASSERT_UINT_EQ(num(peer, "count"), 4);
	ASSERT_UINT_EQ(num(json_array_get(path(nginx, "inbound"), 0), "count"), 9);
	ASSERT_TRUE(json_is_true(path(nginx, "verdict.breaks_with_bindv6only")));
	ASSERT_STR_EQ(str(nginx, "verdict.with_bindv6only"),
		      "would stop accepting IPv4 clients on port 8080 (9 connections from 3 peers)");
	ASSERT_TRUE(json_is_null(path(nginx, "verdict.failing")));

	curl = program_in(root, "web2", "curl", 1000);
	REQUIRE_TRUE(curl != NULL);
	ASSERT_TRUE(json_is_false(json_object_get(curl, "depends")));
	ASSERT_UINT_EQ(num(curl, "failed.by_errno.ENETUNREACH"), 3);
	ASSERT_UINT_EQ(num(curl, "failed.enetunreach"), 3);
	ASSERT_TRUE(json_is_null(path(curl, "verdict.without_ipv4")));
	ASSERT_TRUE(json_is_true(path(curl, "verdict.already_failing")));
	ASSERT_STR_EQ(str(program_in(root, "web2", "nginx", 101), "container"),
		      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	json_decref(root);
	free(json);
	report__free(r);
}

/* The text and the JSON of web1 + web2, byte for byte as the report printed them before it
 * was split into user/report/ (with the "not JSON" reason now jansson's, and the drops
 * fields added to the JSON): fixtures/web1+web2.txt and .json. */
static char *slurp_fixture(const char *name)
{
	char path[1024], *buf = NULL;
	size_t size = 0;
	FILE *f, *m;
	int c;

	snprintf(path, sizeof(path), "%s/%s", UNIT_FIXTURES, name);
	f = fopen(path, "r");
	m = open_memstream(&buf, &size);
	REQUIRE_TRUE(f && m);
	while ((c = getc(f)) != EOF)
		fputc(c, m);
	fclose(f);
	fclose(m);
	return buf;
}

static void test_output_unchanged(void)
{
	struct report *r = load(FILES("web1.jsonl", "web2.jsonl"));
	char *text = print(r, false), *json = print(r, true);
	char *want_text = slurp_fixture("web1+web2.txt"), *want_json = slurp_fixture("web1+web2.json");

	ASSERT_STR_EQ(text, want_text);
	ASSERT_STR_EQ(json, want_json);
	free(text);
	free(json);
	free(want_text);
	free(want_json);
	report__free(r);
}

/* ------------------------------------------------------------ drops (audit_run) */

static void test_drops(void)
{
	struct report *r = load(FILES("drops.jsonl"));
	char *text = print(r, false), *json = print(r, true);
	json_t *root = parse_json(json), *run;

	REQUIRE_TRUE(r->nruns == 3);
	/* the final record of run 1, not its interval one; runs 2 (none) and 3 (zeros) add 0 */
	ASSERT_UINT_EQ(r->runs[0].drops.proc_full, 5);
	ASSERT_UINT_EQ(r->runs[1].drops.proc_full, 0);
	ASSERT_UINT_EQ(r->drops.lost, 2);
	ASSERT_UINT_EQ(r->drops.proc_full, 5);
	ASSERT_UINT_EQ(r->drops.stash_full, 0);
	ASSERT_UINT_EQ(r->drops.flows_evicted, 7);
	ASSERT_UINT_EQ(r->drops.programs, 1);
	ASSERT_UINT_EQ(r->drops.pids, 0);
	ASSERT_UINT_EQ(r->drops.ports, 0);
	ASSERT_UINT_EQ(r->drops.peers, 3);
	ASSERT_UINT_EQ(r->drops.write_errors, 4);
	ASSERT_UINT_EQ(r->lost + r->evictions + r->programs_dropped, 0);
	ASSERT_UINT_EQ(r->runs_incomplete, 1); /* by its drops alone */
	ASSERT_UINT_EQ(r->malformed, 0);
	ASSERT_UINT_EQ(r->programs[0].c.connect_tcp, 6);

	ASSERT_LINE(text, "warning: the audit may be incomplete: dstrace counted drops (lost 2, "
			  "proc_full 5, flows_evicted 7, programs 1, peers 3) and 4 write errors on "
			  "its audit file (in 1 of 3 runs)");
	ASSERT_TRUE(strstr(text, "events lost") == NULL); /* the old counters are all 0 */

	ASSERT_TRUE(json_is_false(path(root, "summary.complete")));
	ASSERT_UINT_EQ(num(root, "completeness.runs_incomplete"), 1);
	ASSERT_UINT_EQ(num(root, "completeness.drops.lost"), 2);
	ASSERT_UINT_EQ(num(root, "completeness.drops.proc_full"), 5);
	ASSERT_UINT_EQ(num(root, "completeness.drops.stash_full"), 0);
	ASSERT_UINT_EQ(num(root, "completeness.drops.flows_evicted"), 7);
	ASSERT_UINT_EQ(num(root, "completeness.drops.programs"), 1);
	ASSERT_UINT_EQ(num(root, "completeness.drops.pids"), 0);
	ASSERT_UINT_EQ(num(root, "completeness.drops.ports"), 0);
	ASSERT_UINT_EQ(num(root, "completeness.drops.peers"), 3);
	ASSERT_UINT_EQ(num(root, "completeness.write_errors"), 4);
	run = json_array_get(path(root, "runs"), 0);
	ASSERT_STR_EQ(str(run, "run"), "web3-1-1");
	ASSERT_UINT_EQ(num(run, "drops.flows_evicted"), 7);
	ASSERT_UINT_EQ(num(run, "write_errors"), 4);
	ASSERT_UINT_EQ(num(json_array_get(path(root, "runs"), 1), "write_errors"), 0);
	json_decref(root);
	free(text);
	free(json);
	report__free(r);
}

static void test_drops_alone_incomplete(void)
{
	static const char *const text =
		"{\"type\":\"audit_run\",\"run\":\"r\",\"ts\":\"2026-11-22T10:00:00Z\",\"host\":\"h\","
		"\"backend\":\"t\",\"started\":\"2026-11-22T09:00:00Z\",\"events\":0,\"lost\":0,"
		"\"evictions\":0,\"programs\":0,\"programs_dropped\":0,\"final\":true,"
		"\"write_errors\":1}\n";
	struct report *r = load_text("w", text);
	char *json = print(r, true);
	json_t *root = parse_json(json);

	ASSERT_UINT_EQ(r->runs_incomplete, 1);
	ASSERT_TRUE(json_is_false(path(root, "summary.complete")));
	json_decref(root);
	free(json);
	report__free(r);
}

/* A "drops" that is there must be right: an object of integers from 0. */
static void test_drops_malformed(void)
{
	static const char *const bad[][2] = {
		{ "\"drops\":{\"proc_full\":-1}", "missing or invalid \"drops.proc_full\"" },
		{ "\"drops\":{\"peers\":\"3\"}", "missing or invalid \"drops.peers\"" },
		{ "\"drops\":[1]", "missing or invalid \"drops\"" },
		{ "\"drops\":null", "missing or invalid \"drops\"" },
		{ "\"drops\":{},\"write_errors\":1.5", "missing or invalid \"write_errors\"" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *line = NULL;
		struct report *r;

		REQUIRE_TRUE(asprintf(&line,
				      "{\"type\":\"audit_run\",\"run\":\"r\",\"ts\":\"2026-11-22T10:00:00Z\","
				      "\"host\":\"h\",\"backend\":\"t\",\"started\":\"2026-11-22T09:00:00Z\","
				      "\"events\":0,\"lost\":0,\"evictions\":0,\"programs\":0,"
				      "\"programs_dropped\":0,\"final\":true,%s}\n",
				      bad[i][0]) > 0);
		r = load_text("d", line);
		ASSERT_UINT_EQ(r->malformed, 1);
		ASSERT_STR_EQ(r->first_malformed_reason, bad[i][1]);
		ASSERT_UINT_EQ(r->nruns, 0);
		report__free(r);
		free(line);
	}
}

/* Strict: a key given twice is not JSON (which of the two would count?). */
static void test_duplicate_keys(void)
{
	char *c1 = connects(1);
	char *rec = record("r1", "2026-11-22T10:00:00Z", "x", 0, c1, NO_PEERS), *dup = NULL;
	struct report *r;

	/* the same record with a second "uid" just after the first */
	REQUIRE_TRUE(asprintf(&dup, "%.*s\"uid\":7,%s", (int)(strstr(rec, "\"uid\"") - rec), rec,
			      strstr(rec, "\"uid\"")) > 0);
	r = load_text("dup", dup);
	ASSERT_UINT_EQ(r->malformed, 1);
	ASSERT_UINT_EQ(r->audit_records, 0);
	ASSERT_STR_EQ(r->first_malformed_reason,
		      "not JSON (duplicate object key near '\"uid\"' at byte 132)");
	report__free(r);
	free(dup);
	free(rec);
	free(c1);
}

static void test_no_audit_records(void)
{
	struct report *r = load(FILES("no-audit.jsonl"));
	char *text = print(r, false), *json = print(r, true);

	ASSERT_UINT_EQ(r->audit_records, 0);
	ASSERT_UINT_EQ(r->run_records, 1);
	ASSERT_UINT_EQ(r->malformed, 0);
	ASSERT_STR_EQ(text, "dstrace report: no audit records in the input.\n");
	ASSERT_TRUE(strstr(json, "\"programs\":[]}") != NULL);
	free(text);
	free(json);
	report__free(r);
}

/* ------------------------------------------------------------- command line */

struct cli {
	int status;
	char out[1 << 16], err[4096];
};

static void slurp(FILE *f, char *buf, size_t size)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void run_cli(struct cli *c, const char *const *args)
{
	char *argv[16];
	int argc = 0;
	FILE *out = tmpfile(), *err = tmpfile();

	REQUIRE_TRUE(out && err);
	argv[argc++] = "report";
	for (; *args; args++) {
		REQUIRE_TRUE(argc < 15);
		argv[argc++] = (char *)*args;
	}
	argv[argc] = NULL;
	c->status = dstrace_report_run(argc, argv, out, err);
	slurp(out, c->out, sizeof(c->out));
	slurp(err, c->err, sizeof(c->err));
}

static unsigned int count_lines(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NO_ARGS ((const char *const[]){ NULL })

static void test_cli_usage(void)
{
	static struct cli c; /* big: not on the stack */

	run_cli(&c, ARGS("--help"));
	ASSERT_INT_EQ(c.status, 0);
	ASSERT_TRUE(!strncmp(c.out, "Usage: dstrace report [OPTION...] FILE...\n", 42));
	/* every option, by both names */
	ASSERT_TRUE(strstr(c.out, "-j, --json") != NULL);
	ASSERT_TRUE(strstr(c.out, "-h, --help") != NULL);
	ASSERT_TRUE(strstr(c.out, "EXAMPLES:") != NULL);
	ASSERT_STR_EQ(c.err, "");
	run_cli(&c, ARGS("-h", "--bogus")); /* help first: nothing else is looked at */
	ASSERT_INT_EQ(c.status, 0);
	ASSERT_STR_EQ(c.err, "");

	run_cli(&c, NO_ARGS);
	ASSERT_INT_EQ(c.status, 2);
	ASSERT_UINT_EQ(count_lines(c.err), 1);
	ASSERT_TRUE(strstr(c.err, "no audit file given") != NULL);
	ASSERT_STR_EQ(c.out, "");

	run_cli(&c, ARGS("--bogus", UNIT_FIXTURES "/web1.jsonl"));
	ASSERT_INT_EQ(c.status, 2);
	ASSERT_STR_EQ(c.err, "dstrace report: invalid option '--bogus'; try 'dstrace report "
			     "--help'\n");
	run_cli(&c, ARGS("-x", UNIT_FIXTURES "/web1.jsonl"));
	ASSERT_INT_EQ(c.status, 2);
	ASSERT_STR_EQ(c.err, "dstrace report: invalid option '-x'; try 'dstrace report --help'\n");
	run_cli(&c, ARGS("-jx", UNIT_FIXTURES "/web1.jsonl"));
	ASSERT_INT_EQ(c.status, 2);
	ASSERT_STR_EQ(c.err, "dstrace report: invalid option '-x'; try 'dstrace report --help'\n");
	run_cli(&c, ARGS(UNIT_FIXTURES "/web1.jsonl", "--bogus")); /* options anywhere */
	ASSERT_INT_EQ(c.status, 2);
	ASSERT_STR_EQ(c.err, "dstrace report: invalid option '--bogus'; try 'dstrace report "
			     "--help'\n");
	run_cli(&c, ARGS("--json=yes", UNIT_FIXTURES "/web1.jsonl"));
	ASSERT_INT_EQ(c.status, 2);
	ASSERT_STR_EQ(c.err, "dstrace report: invalid option '--json=yes'; try 'dstrace report "
			     "--help'\n");
	ASSERT_STR_EQ(c.out, "");
}

static void test_cli_files(void)
{
	static struct cli c;

	run_cli(&c, ARGS(UNIT_FIXTURES "/web1.jsonl", "/nonexistent/audit.jsonl"));
	ASSERT_INT_EQ(c.status, 1);
	ASSERT_STR_EQ(c.err, "dstrace report: cannot open '/nonexistent/audit.jsonl': No such "
			     "file or directory\n");
	ASSERT_STR_EQ(c.out, ""); /* no half report */

	run_cli(&c, ARGS(UNIT_FIXTURES));
	ASSERT_INT_EQ(c.status, 1);
	ASSERT_STR_EQ(c.err, "dstrace report: cannot read '" UNIT_FIXTURES "': Is a directory\n");

	run_cli(&c, ARGS(UNIT_FIXTURES "/web1.jsonl", UNIT_FIXTURES "/web2.jsonl"));
	ASSERT_INT_EQ(c.status, 0);
	ASSERT_STR_EQ(c.err, "");
	ASSERT_TRUE(!strncmp(c.out, "dstrace report: 7 programs on 2 hosts", 37));

	/* --json: the document on out, the warnings on err as well */
	run_cli(&c, ARGS("-j", UNIT_FIXTURES "/web1.jsonl"));
	ASSERT_INT_EQ(c.status, 0);
	ASSERT_TRUE(!strncmp(c.out, "{\"type\":\"dstrace_report\",", 25));
	ASSERT_UINT_EQ(count_lines(c.out), 1);
	ASSERT_TRUE(strstr(c.err, "warning: skipped 1 malformed line") != NULL);

	run_cli(&c, ARGS("--js", "--", UNIT_FIXTURES "/web1.jsonl")); /* abbreviated, then -- */
	ASSERT_INT_EQ(c.status, 0);
	ASSERT_TRUE(!strncmp(c.out, "{\"type\":\"dstrace_report\",", 25));

	run_cli(&c, ARGS(UNIT_FIXTURES "/no-audit.jsonl"));
	ASSERT_INT_EQ(c.status, 0);
	ASSERT_STR_EQ(c.out, "dstrace report: no audit records in the input.\n");
}

/* A container in a Kubernetes pod: its runtime, pod UID and QoS class in the text and JSON. */
static void test_container_pod(void)
{
	char *rec = record("r1", "2026-11-22T10:00:00Z", "api", 0,
			   "\"connect\":{\"tcp\":1,\"udp\":0},\"accept\":{\"tcp\":0},\"sent\":{"
			   "\"tcp_bytes\":0,\"udp_datagrams\":0,\"udp_bytes\":0},\"received\":{"
			   "\"tcp_bytes\":0,\"udp_datagrams\":0,\"udp_bytes\":0},\"failed\":{"
			   "\"total\":0,\"by_errno\":{}}",
			   "\"listen_ports\":[],\"peers\":[{\"dir\":\"out\",\"proto\":\"tcp\","
			   "\"addr\":\"192.0.2.1\",\"port\":80,\"count\":1}]");
	const char *id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char *with = NULL, *text, *json;
	struct report *r;
	char *at;

	/* the record() helper writes "container":null: put the four fields in */
	at = strstr(rec, "\"container\":null");
	REQUIRE_TRUE(at != NULL);
	*at = '\0';
	REQUIRE_TRUE(asprintf(&with, "%s\"container\":\"%s\",\"runtime\":\"containerd\","
				     "\"pod_uid\":\"6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e\","
				     "\"qos\":\"burstable\"%s",
			      rec, id, at + strlen("\"container\":null")) > 0);
	r = load_text("pod.jsonl", with);
	text = print(r, false);
	json = print(r, true);
	ASSERT_LINE(text, "  container 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef "
			  "(containerd)");
	ASSERT_LINE(text, "  pod       6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e (burstable)");
	ASSERT_TRUE(strstr(json, "\"runtime\":\"containerd\",\"pod_uid\":\"6b1c2d3e-4f5a-4b6c-8d7e-"
				 "9f0a1b2c3d4e\",\"qos\":\"burstable\"") != NULL);
	ASSERT_UINT_EQ(r->nprograms, 1);
	free(text);
	free(json);
	report__free(r);
	free(with);
	free(rec);
}

static const CU_TestInfo tests[] = {
	{ "container and pod", test_container_pod },
	{ "two runs on one host add up", test_runs_add_up },
	{ "the last record of a run supersedes earlier ones", test_last_record_wins },
	{ "same ts: the later line wins", test_same_ts_later_line_wins },
	{ "hosts kept apart", test_hosts_apart },
	{ "network namespaces kept apart", test_netns_apart },
	{ "a restart appends a new run", test_restart_new_run },
	{ "malformed lines counted, first one named", test_malformed },
	{ "malformed lines: reasons", test_malformed_reasons },
	{ "stream edges: blank, CRLF, NUL, long, no newline", test_stream_edges },
	{ "summary and warning lines", test_summary_line },
	{ "most dependent first", test_sorted_most_dependent_first },
	{ "verdict lines", test_verdict_lines },
	{ "program details", test_program_details },
	{ "udp replies are not a service", test_udp_replies },
	{ "udp client and server in one program", test_udp_client_and_server },
	{ "udp replies counted by the writer", test_udp_replies_counted },
	{ "what the writer also emits", test_writer_extras },
	{ "peers not listed", test_unlisted_peers },
	{ "connections opened before the audit", test_bytes_only },
	{ "only failures: already failing, nothing breaks", test_only_failures },
	{ "text sanitized, json escaped", test_text_sanitized },
	{ "peers per program bounded", test_peer_cap },
	{ "programs bounded", test_program_cap },
	{ "json document", test_json_document },
	{ "text and json unchanged, byte for byte", test_output_unchanged },
	{ "drops and write errors of audit_run", test_drops },
	{ "write errors alone make the audit incomplete", test_drops_alone_incomplete },
	{ "drops: wrong types refused", test_drops_malformed },
	{ "duplicate keys refused", test_duplicate_keys },
	{ "no audit records", test_no_audit_records },
	{ "command line: usage", test_cli_usage },
	{ "command line: files", test_cli_files },
	CU_TEST_INFO_NULL,
};

int register_report_tests(void)
{
	return unit_add_suite("report", tests, NULL);
}
