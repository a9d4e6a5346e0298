// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Text and JSON output, compared as exact strings: these lines are the tool's interface. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "format.h"
#include "unit.h"

/* 2026-11-18T11:06:40 UTC, plus 123456789 ns */
#define TS_NS 1795000000123456789ull
#define TS_ISO "2026-11-18T11:06:40.123456Z"

static uint32_t ipv4(const char *s)
{
	struct in_addr a = {};

	REQUIRE_TRUE(inet_pton(AF_INET, s, &a) == 1);
	return a.s_addr;
}

/* A TCP connect that succeeded, with the local end the kernel assigned. */
static struct dstrace_event connect_event(void)
{
	struct dstrace_event e = {
		.ts_ns = 5000000000ull, /* boot time: never printed */
		.cgroup_id = 12345,
		.sock_ino = 77, /* not printed */
		.pid = 4242,
		.tid = 4243,
		.uid = 1000,
		.netns = 4026531840u,
		.laddr = ipv4("10.0.0.2"),
		.raddr = ipv4("93.184.216.34"),
		.lport = 40000,
		.rport = 443,
		.kind = DSTRACE_EV_CONNECT,
		.proto = DSTRACE_PROTO_TCP,
		.flags = DSTRACE_F_HAVE_LOCAL,
		.comm = "curl",
	};
	return e;
}

/* A connect that failed before the kernel picked a local address. */
static struct dstrace_event failed_connect_event(void)
{
	struct dstrace_event e = connect_event();

	e.flags = 0;
	e.laddr = 0;
	e.lport = 0;
	e.raddr = ipv4("192.0.2.1");
	e.rport = 80;
	e.ret = -ENETUNREACH;
	return e;
}

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static void test_event_json(void)
{
	struct dstrace_event e = connect_event();
	char buf[DSTRACE_LINE_MAX];
	int n;

	n = dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "{\"type\":\"event\",\"ts\":\"" TS_ISO "\",\"event\":\"connect\","
			   "\"proto\":\"tcp\",\"pid\":4242,\"tid\":4243,\"comm\":\"curl\","
			   "\"uid\":1000,\"netns\":4026531840,\"cgroup\":12345,"
			   "\"laddr\":\"10.0.0.2\",\"lport\":40000,\"raddr\":\"93.184.216.34\","
			   "\"rport\":443,\"ret\":0,\"error\":null,"
			   "\"name\":null,\"answer\":null,\"mapped_by\":null,\"hints\":null,\"resolver_probe\":false,\"fallback\":null}");
	ASSERT_INT_EQ(n, (long long)strlen(buf));
}

static void test_event_json_udp_recv(void)
{
	struct dstrace_event e = connect_event();
	char buf[DSTRACE_LINE_MAX];

	e.kind = DSTRACE_EV_RECV;
	e.proto = DSTRACE_PROTO_UDP;
	e.laddr = ipv4("0.0.0.0");
	e.lport = 53;
	e.raddr = ipv4("255.255.255.255");
	e.rport = 65535;
	e.cgroup_id = UINT64_MAX;
	e.uid = 0;
	dstrace_format_event_json(&e, 0, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "{\"type\":\"event\",\"ts\":\"1970-01-01T00:00:00.000000Z\","
			   "\"event\":\"recv\",\"proto\":\"udp\",\"pid\":4242,\"tid\":4243,"
			   "\"comm\":\"curl\",\"uid\":0,\"netns\":4026531840,"
			   "\"cgroup\":18446744073709551615,\"laddr\":\"0.0.0.0\",\"lport\":53,"
			   "\"raddr\":\"255.255.255.255\",\"rport\":65535,\"ret\":0,"
			   "\"error\":null,\"name\":null,\"answer\":null,\"mapped_by\":null,\"hints\":null,\"resolver_probe\":false,\"fallback\":null}");
}

static void test_event_json_failed_connect(void)
{
	struct dstrace_event e = failed_connect_event();
	char buf[DSTRACE_LINE_MAX];

	dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "{\"type\":\"event\",\"ts\":\"" TS_ISO "\",\"event\":\"connect\","
			   "\"proto\":\"tcp\",\"pid\":4242,\"tid\":4243,\"comm\":\"curl\","
			   "\"uid\":1000,\"netns\":4026531840,\"cgroup\":12345,"
			   "\"laddr\":null,\"lport\":null,\"raddr\":\"192.0.2.1\","
			   "\"rport\":80,\"ret\":-101,\"error\":\"ENETUNREACH\","
			   "\"name\":null,\"answer\":null,\"mapped_by\":null,\"hints\":null,\"resolver_probe\":false,\"fallback\":null}");
}

/* A failed bind: the address asked for is the local end, there is no remote end; an MPTCP
 * connect says so in proto. */
static void test_event_json_bind_and_mptcp(void)
{
	struct dstrace_event e = failed_connect_event();
	char buf[DSTRACE_LINE_MAX];

	e.kind = DSTRACE_EV_BIND;
	e.proto = DSTRACE_PROTO_UDPLITE;
	e.laddr = htonl(0xc0000263); /* 192.0.2.99 */
	e.lport = 7001;
	e.ret = -22;
	e.flags = DSTRACE_F_HAVE_LOCAL | DSTRACE_F_NO_REMOTE;
	dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "{\"type\":\"event\",\"ts\":\"" TS_ISO "\",\"event\":\"bind\","
			   "\"proto\":\"udplite\",\"pid\":4242,\"tid\":4243,\"comm\":\"curl\","
			   "\"uid\":1000,\"netns\":4026531840,\"cgroup\":12345,"
			   "\"laddr\":\"192.0.2.99\",\"lport\":7001,\"raddr\":null,"
			   "\"rport\":null,\"ret\":-22,\"error\":\"EINVAL\","
			   "\"name\":null,\"answer\":null,\"mapped_by\":null,\"hints\":null,\"resolver_probe\":false,\"fallback\":null}");
	dstrace_format_event_text(&e, TS_NS, buf, sizeof(buf));
	ASSERT_TRUE(strstr(buf, " bind    udplite ::ffff:192.0.2.99:7001") != NULL);
	ASSERT_TRUE(strstr(buf, " -                            EINVAL") != NULL);

	e = failed_connect_event();
	e.ret = 0;
	e.flags = DSTRACE_F_MPTCP;
	dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	ASSERT_TRUE(strstr(buf, "\"event\":\"connect\",\"proto\":\"mptcp\"") != NULL);
}

static void test_event_json_unknown_errno(void)
{
	struct dstrace_event e = failed_connect_event();
	char buf[DSTRACE_LINE_MAX];

	e.ret = -4095;
	dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	ASSERT_TRUE(strstr(buf, ",\"ret\":-4095,\"error\":\"E4095\",\"name\":null,") != NULL);
}

static void test_event_json_escapes_comm(void)
{
	struct dstrace_event e = connect_event();
	char buf[DSTRACE_LINE_MAX];

	memcpy(e.comm, "a\"b\\c\nd\x1b\xff", sizeof("a\"b\\c\nd\x1b\xff"));
	dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	ASSERT_TRUE(strstr(buf, ",\"comm\":\"a\\\"b\\\\c\\u000ad\\u001b\\u00ff\",\"uid\":") !=
		    NULL);
	ASSERT_TRUE(strchr(buf, '\n') == NULL);
}

/* Sixteen bytes that all need \u escapes, and no NUL: the widest comm there can be. */
static void test_event_json_widest_comm(void)
{
	struct dstrace_event *e = malloc(sizeof(*e)); /* ASan: no read past comm */
	char buf[DSTRACE_LINE_MAX], want[128] = "\"comm\":\"";

	REQUIRE_TRUE(e != NULL);
	*e = connect_event();
	memset(e->comm, 0x01, sizeof(e->comm));
	for (int i = 0; i < DSTRACE_COMM_LEN; i++)
		strcat(want, "\\u0001");
	strcat(want, "\",");
	dstrace_format_event_json(e, TS_NS, buf, sizeof(buf));
	unit_check(UNIT_AT(false), strstr(buf, want) != NULL, "expected %s in %s", want, buf);
	ASSERT_TRUE(buf[strlen(buf) - 1] == '}');
	free(e);
}

static void test_event_json_truncated(void)
{
	struct dstrace_event e = connect_event();
	char buf[32];
	int n;

	memset(buf, 'X', sizeof(buf));
	n = dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	ASSERT_INT_EQ(n, sizeof(buf) - 1);
	ASSERT_UINT_EQ(strlen(buf), sizeof(buf) - 1);
	ASSERT_STR_EQ(buf, "{\"type\":\"event\",\"ts\":\"2026-11-1");
}

static void test_event_header(void)
{
	char buf[DSTRACE_LINE_MAX];
	int n;

	n = dstrace_format_event_header(buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "TIME    " " " "PID    " " " "COMM            " " " "EVENT  " " "
			   "PROTO" " " "LOCAL                       " " "
			   "REMOTE                      " " " "RESULT");
	ASSERT_INT_EQ(n, (long long)strlen(buf));
}

static void test_event_text(void)
{
	struct dstrace_event e = connect_event();
	char buf[DSTRACE_LINE_MAX];
	int n;

	n = dstrace_format_event_text(&e, TS_NS, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "11:06:40" " " "4242   " " " "curl            " " " "connect" " "
			   "tcp  " " " "::ffff:10.0.0.2:40000       " " "
			   "::ffff:93.184.216.34:443    " " " "ok");
	ASSERT_INT_EQ(n, (long long)strlen(buf));
}

static void test_event_text_failed_connect(void)
{
	struct dstrace_event e = failed_connect_event();
	char buf[DSTRACE_LINE_MAX];

	dstrace_format_event_text(&e, TS_NS, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "11:06:40" " " "4242   " " " "curl            " " " "connect" " "
			   "tcp  " " " "-                           " " "
			   "::ffff:192.0.2.1:80         " " " "ENETUNREACH");
}

/* A socket bound to the wildcard address: its local end is shown the way ss(8) shows it. */
static void test_event_text_wildcard_local(void)
{
	struct dstrace_event e = connect_event();
	char buf[DSTRACE_LINE_MAX];

	e.kind = DSTRACE_EV_RECV;
	e.proto = DSTRACE_PROTO_UDP;
	e.laddr = 0;
	e.lport = 53;
	dstrace_format_event_text(&e, TS_NS, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "11:06:40" " " "4242   " " " "curl            " " " "recv   " " "
			   "udp  " " " "*:53                        " " "
			   "::ffff:93.184.216.34:443    " " " "ok");
}

/* The widest values keep every column where the header puts it. */
static void test_event_text_columns(void)
{
	struct dstrace_event e = connect_event();
	char header[DSTRACE_LINE_MAX], line[DSTRACE_LINE_MAX];

	e.pid = 4194304; /* PID_MAX_LIMIT */
	memcpy(e.comm, "fifteen-chars-x", sizeof("fifteen-chars-x"));
	e.kind = DSTRACE_EV_ACCEPT;
	e.proto = DSTRACE_PROTO_UDP;
	e.laddr = e.raddr = ipv4("255.255.255.255");
	e.lport = e.rport = 65535;
	e.ret = -ECONNREFUSED;
	dstrace_format_event_header(header, sizeof(header));
	dstrace_format_event_text(&e, TS_NS, line, sizeof(line));

	for (const char *col = header; (col = strchr(col, ' ')); col++) {
		size_t at = col - header;

		if (col[1] == ' ')
			continue;
		/* header[at + 1] starts a column name: so must the line */
		unit_check(UNIT_AT(false), at + 1 < strlen(line) && line[at] == ' ' &&
				   line[at + 1] != ' ',
			   "column %.6s at %zu:\n        %s\n        %s", col + 1, at + 1, header,
			   line);
	}
	ASSERT_STR_EQ(strrchr(line, ' ') + 1, "ECONNREFUSED");
	ASSERT_TRUE(strstr(line, " accept  udp   ::ffff:255.255.255.255:65535 "
				 "::ffff:255.255.255.255:65535 ECONNREFUSED") != NULL);
}

/* comm is not NUL-terminated when it fills the array: the text line stops at 15 bytes. */
static void test_event_text_unterminated_comm(void)
{
	struct dstrace_event *e = malloc(sizeof(*e));
	char buf[DSTRACE_LINE_MAX];

	REQUIRE_TRUE(e != NULL);
	*e = connect_event();
	memcpy(e->comm, "sixteen-chars-xx", DSTRACE_COMM_LEN);
	dstrace_format_event_text(e, TS_NS, buf, sizeof(buf));
	ASSERT_TRUE(strstr(buf, " sixteen-chars-x  connect ") != NULL);
	free(e);
}

/* TIME is the local wall clock, unlike the JSON ts which is UTC. */
static void test_event_text_local_time(void)
{
	struct dstrace_event e = connect_event();
	char text[DSTRACE_LINE_MAX], json[DSTRACE_LINE_MAX];

	set_tz("XYZ-2"); /* POSIX: two hours east of UTC */
	dstrace_format_event_text(&e, TS_NS, text, sizeof(text));
	dstrace_format_event_json(&e, TS_NS, json, sizeof(json));
	set_tz("UTC");
	ASSERT_TRUE(!strncmp(text, "13:06:40 ", 9));
	ASSERT_TRUE(strstr(json, "\"ts\":\"" TS_ISO "\"") != NULL);
}

static void test_ts(void)
{
	char buf[40];

	dstrace_format_ts(TS_NS, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, TS_ISO);
	dstrace_format_ts(0, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "1970-01-01T00:00:00.000000Z");
	/* microseconds are truncated, not rounded into the next second */
	dstrace_format_ts(1999999999ull, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "1970-01-01T00:00:01.999999Z");
	dstrace_format_ts(951782400000001000ull, buf, sizeof(buf)); /* leap day */
	ASSERT_STR_EQ(buf, "2000-02-29T00:00:00.000001Z");
	/* the same second again (its date and time are kept), the next one, a short buffer */
	dstrace_format_ts(951782400000002000ull, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "2000-02-29T00:00:00.000002Z");
	dstrace_format_ts(951782401000000000ull, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "2000-02-29T00:00:01.000000Z");
	dstrace_format_ts(951782401999999000ull, buf, 12);
	ASSERT_STR_EQ(buf, "2000-02-29T");
}

static void test_mapped_address(void)
{
	char buf[48];

	dstrace_format_mapped(ipv4("192.0.2.1"), 8080, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "::ffff:192.0.2.1:8080");
	/* network byte order in, dotted quad in wire order out */
	dstrace_format_mapped(htonl(0x7f000001), 0, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "::ffff:127.0.0.1:0");
	dstrace_format_mapped(ipv4("255.255.255.255"), 65535, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "::ffff:255.255.255.255:65535");
	dstrace_format_mapped(ipv4("10.1.2.3"), 443, buf, 12);
	ASSERT_STR_EQ(buf, "::ffff:10.1");
}

static void test_errno_names(void)
{
	char buf[16];

	ASSERT_STR_EQ(dstrace_errno_name(-ENETUNREACH, buf, sizeof(buf)), "ENETUNREACH");
	ASSERT_STR_EQ(dstrace_errno_name(-ECONNREFUSED, buf, sizeof(buf)), "ECONNREFUSED");
	ASSERT_STR_EQ(dstrace_errno_name(-ETIMEDOUT, buf, sizeof(buf)), "ETIMEDOUT");
	ASSERT_STR_EQ(dstrace_errno_name(-EACCES, buf, sizeof(buf)), "EACCES");
	ASSERT_STR_EQ(dstrace_errno_name(-4095, buf, sizeof(buf)), "E4095");
	ASSERT_STR_EQ(dstrace_errno_name(-512, buf, sizeof(buf)), "E512"); /* ERESTARTSYS */
}

static void test_names(void)
{
	ASSERT_STR_EQ(dstrace_event_name(DSTRACE_EV_CONNECT), "connect");
	ASSERT_STR_EQ(dstrace_event_name(DSTRACE_EV_ACCEPT), "accept");
	ASSERT_STR_EQ(dstrace_event_name(DSTRACE_EV_SEND), "send");
	ASSERT_STR_EQ(dstrace_event_name(DSTRACE_EV_RECV), "recv");
	ASSERT_STR_EQ(dstrace_event_name(DSTRACE_EV_EXISTING), "existing");
	ASSERT_STR_EQ(dstrace_event_name(DSTRACE_EV_BIND), "bind");
	ASSERT_STR_EQ(dstrace_event_name(DSTRACE_EV_KINDS), "unknown");
	ASSERT_STR_EQ(dstrace_event_name(255), "unknown");
	ASSERT_STR_EQ(dstrace_proto_name(DSTRACE_PROTO_TCP), "tcp");
	ASSERT_STR_EQ(dstrace_proto_name(DSTRACE_PROTO_UDP), "udp");
	ASSERT_STR_EQ(dstrace_proto_name(DSTRACE_PROTO_UDPLITE), "udplite");
	ASSERT_STR_EQ(dstrace_proto_name(3), "unknown");
}

static void test_json_string(void)
{
	char buf[128];

	dstrace_json_string("nginx", DSTRACE_COMM_LEN, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "\"nginx\"");
	dstrace_json_string("", DSTRACE_COMM_LEN, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "\"\"");
	dstrace_json_string("say \"hi\"", DSTRACE_COMM_LEN, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "\"say \\\"hi\\\"\"");
	dstrace_json_string("a\\b", DSTRACE_COMM_LEN, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "\"a\\\\b\"");
	/* control characters, DEL and bytes that are not UTF-8 as \u00XX; valid UTF-8 (here
	 * U+00E9) passes unescaped */
	dstrace_json_string("\t\r\n\x01\x1f \x7f\x80\xc3\xa9\xff", DSTRACE_COMM_LEN, buf,
			    sizeof(buf));
	ASSERT_STR_EQ(buf, "\"\\u0009\\u000d\\u000a\\u0001\\u001f \\u007f\\u0080\xc3\xa9"
			   "\\u00ff\"");
	/* printable ASCII passes through */
	dstrace_json_string("~/!#$%&'()*+,-.", DSTRACE_COMM_LEN, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "\"~/!#$%&'()*+,-.\"");
}

static void test_json_string_bounds(void)
{
	char buf[16];

	/* maxlen: no more than that many input bytes */
	dstrace_json_string("abcdef", 3, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "\"abc\"");
	/* a small buffer still gets a closed string */
	dstrace_json_string("abcdef", 6, buf, 5);
	ASSERT_STR_EQ(buf, "\"ab\"");
	/* an escape is never cut in half */
	dstrace_json_string("a\x01", 2, buf, 9);
	ASSERT_STR_EQ(buf, "\"a\"");
	dstrace_json_string("a\"", 2, buf, 5);
	ASSERT_STR_EQ(buf, "\"a\"");
	dstrace_json_string("abc", 3, buf, 3);
	ASSERT_STR_EQ(buf, "\"\"");
	/* too small for even "" */
	strcpy(buf, "untouched");
	dstrace_json_string("abc", 3, buf, 2);
	ASSERT_STR_EQ(buf, "");
	strcpy(buf, "untouched");
	dstrace_json_string("abc", 3, buf, 0);
	ASSERT_STR_EQ(buf, "untouched");
}

static void fill_proc(struct proc_entry *p)
{
	memset(p, 0, sizeof(*p));
	p->pid = 77;
	p->uid = 33;
	strcpy(p->comm, "nginx");
	p->counts[DSTRACE_EV_CONNECT] = 1;
	p->counts[DSTRACE_EV_ACCEPT] = 2;
	p->counts[DSTRACE_EV_SEND] = 3;
	p->counts[DSTRACE_EV_RECV] = 4;
	p->failed = 5;
	p->bytes = 6;
	p->peers = 2; /* the kernel's count */
}

static void test_proc_json(void)
{
	struct proc_entry p;
	char buf[DSTRACE_LINE_MAX];
	int n;

	fill_proc(&p);
	n = dstrace_format_proc_json(&p, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "{\"type\":\"process\",\"pid\":77,\"comm\":\"nginx\",\"connect\":1,"
			   "\"accept\":2,\"send\":3,\"recv\":4,\"failed\":5,\"peers\":2,"
			   "\"bytes\":6}");
	ASSERT_INT_EQ(n, (long long)strlen(buf));

	p.bytes = UINT64_MAX;
	p.counts[DSTRACE_EV_RECV] = 10000000000ull;
	p.peers = 1;
	p.peers_partial = true; /* a lower bound: the stats record's drops.peers says so */
	strcpy(p.comm, "a\"b");
	dstrace_format_proc_json(&p, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "{\"type\":\"process\",\"pid\":77,\"comm\":\"a\\\"b\",\"connect\":1,"
			   "\"accept\":2,\"send\":3,\"recv\":10000000000,\"failed\":5,"
			   "\"peers\":1,\"bytes\":18446744073709551615}");
}

static void test_proc_text(void)
{
	struct proc_entry p;
	char buf[DSTRACE_LINE_MAX];
	int n;

	n = dstrace_format_proc_header(buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "PID    " " " "COMM            " " " " CONNECT" " " "  ACCEPT" " "
			   "      SEND" " " "      RECV" " " " FAILED" " " " PEERS" " "
			   "       BYTES");
	ASSERT_INT_EQ(n, (long long)strlen(buf));

	fill_proc(&p);
	n = dstrace_format_proc_text(&p, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "77     " " " "nginx           " " " "       1" " " "       2" " "
			   "         3" " " "         4" " " "      5" " " "     2" " "
			   "           6");
	ASSERT_INT_EQ(n, (long long)strlen(buf));

	/* a lower bound (the kernel's table of pairs was full) */
	p.peers = 65536;
	p.peers_partial = true;
	dstrace_format_proc_text(&p, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "77     " " " "nginx           " " " "       1" " " "       2" " "
			   "         3" " " "         4" " " "      5" " " "65536+" " "
			   "           6");
}

static void test_stats(void)
{
	struct run_stats s = {
		.backend = "tracepoint",
		.events = 12345,
		.lost = 7,
		.proc_full = 3,
		.duration_s = 12.5,
		.drops = { .lost = 7, .proc_full = 3, .stash_full = 4, .recv_unknown = 11,
			   .missed = 12, .flows_evicted = 5,
			   .programs = 6, .pids = 8, .ports = 9, .peers = 10 },
	};
	char buf[DSTRACE_LINE_MAX];
	int n;

	n = dstrace_format_stats_json(&s, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "{\"type\":\"stats\",\"backend\":\"tracepoint\",\"events\":12345,"
			   "\"lost\":7,\"duration_s\":12.500,\"drops\":{\"lost\":7,\"proc_full\":3,"
			   "\"stash_full\":4,\"recv_unknown\":11,\"missed\":12,\"flows_evicted\":5,\"programs\":6,\"pids\":8,\"ports\":9,"
			   "\"peers\":10},\"blind\":[],\"names_evicted\":0}");
	ASSERT_INT_EQ(n, (long long)strlen(buf));
	n = dstrace_format_stats_text(&s, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "12345 events, 7 lost, in 12.5 s (backend tracepoint); dropped: "
			   "proc_full 3, stash_full 4, recv_unknown 11, missed 12, flows_evicted 5, programs 6, pids 8, ports 9, "
			   "peers 10");
	ASSERT_INT_EQ(n, (long long)strlen(buf));
	s.drops = (struct dstrace_drops){ .lost = 7, .pids = 2 }; /* only what happened */
	n = dstrace_format_stats_text(&s, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "12345 events, 7 lost, in 12.5 s (backend tracepoint); dropped: pids 2");
	ASSERT_INT_EQ(n, (long long)strlen(buf));

	s.events = s.lost = 0;
	s.duration_s = 0.0004;
	memset(&s.drops, 0, sizeof(s.drops));
	dstrace_format_stats_text(&s, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "0 events, 0 lost, in 0.0 s (backend tracepoint)"); /* nothing dropped */
	dstrace_format_stats_json(&s, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "{\"type\":\"stats\",\"backend\":\"tracepoint\",\"events\":0,"
			   "\"lost\":0,\"duration_s\":0.000,\"drops\":{\"lost\":0,\"proc_full\":0,"
			   "\"stash_full\":0,\"recv_unknown\":0,\"missed\":0,\"flows_evicted\":0,\"programs\":0,\"pids\":0,"
			   "\"ports\":0,\"peers\":0},\"blind\":[],\"names_evicted\":0}");

	/* what the backend cannot see on this kernel: in both */
	s.blind[0] = "io_uring accepts";
	s.blind[1] = "names of \"resolved\" peers";
	s.nblind = 2;
	dstrace_format_stats_text(&s, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "0 events, 0 lost, in 0.0 s (backend tracepoint); not seen on this "
			   "kernel: io_uring accepts, names of \"resolved\" peers");
	dstrace_format_stats_json(&s, buf, sizeof(buf));
	ASSERT_TRUE(strstr(buf, ",\"blind\":[\"io_uring accepts\",\"names of \\\"resolved\\\" peers\"],") != NULL);
	s.names_evicted = 3;
	s.nblind = 0;
	dstrace_format_stats_text(&s, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "0 events, 0 lost, in 0.0 s (backend tracepoint); names forgotten: 3");
	dstrace_format_stats_json(&s, buf, sizeof(buf));
	ASSERT_TRUE(strstr(buf, ",\"blind\":[],\"names_evicted\":3}") != NULL);
}

/* The text helpers the tracer, metrics and report share. */
static void test_utf8_len(void)
{
	ASSERT_UINT_EQ(dstrace_utf8_len((const unsigned char *)"a", 1), 0);
	ASSERT_UINT_EQ(dstrace_utf8_len((const unsigned char *)"\xc3\xa9", 2), 2);
	ASSERT_UINT_EQ(dstrace_utf8_len((const unsigned char *)"\xc3\xa9", 1), 0); /* cut */
	ASSERT_UINT_EQ(dstrace_utf8_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
	ASSERT_UINT_EQ(dstrace_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
	ASSERT_UINT_EQ(dstrace_utf8_len((const unsigned char *)"\xc0\xaf", 2), 0); /* overlong */
	ASSERT_UINT_EQ(dstrace_utf8_len((const unsigned char *)"\xe0\x80\xaf", 3), 0);
	ASSERT_UINT_EQ(dstrace_utf8_len((const unsigned char *)"\xed\xa0\x80", 3), 0); /* surrogate */
	ASSERT_UINT_EQ(dstrace_utf8_len((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
	ASSERT_UINT_EQ(dstrace_utf8_len((const unsigned char *)"\xff", 1), 0);
}

static void test_ascii_safe(void)
{
	char buf[8];

	dstrace_ascii_safe(buf, sizeof(buf), "a\nb\x7f\xc3\xa9", 16);
	ASSERT_STR_EQ(buf, "a?b???");
	dstrace_ascii_safe(buf, sizeof(buf), "abcdefghij", 16);
	ASSERT_STR_EQ(buf, "abcdefg");
	dstrace_ascii_safe(buf, sizeof(buf), "abcdef", 3);
	ASSERT_STR_EQ(buf, "abc");
}

static void test_format_utc_ipv4(void)
{
	char buf[64];

	ASSERT_TRUE(dstrace_format_utc(1763805600, 123456, buf, sizeof(buf)));
	ASSERT_STR_EQ(buf, "2025-11-22T10:00:00.123456Z");
	ASSERT_TRUE(dstrace_format_utc(1763805600, -1, buf, sizeof(buf)));
	ASSERT_STR_EQ(buf, "2025-11-22T10:00:00Z");
	dstrace_format_ipv4(ipv4("192.0.2.7"), buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "192.0.2.7");
	dstrace_format_ipv4(ipv4("192.0.2.7"), buf, 4);
	ASSERT_STR_EQ(buf, "?");
	/* every digit count, zeros inside and at the ends */
	for (unsigned int v = 0; v < 256; v++) {
		char want[INET_ADDRSTRLEN], addr[INET_ADDRSTRLEN];

		snprintf(addr, sizeof(addr), "%u.%u.%u.%u", v, 255 - v, v / 2, (v * 7) % 256);
		dstrace_format_ipv4(ipv4(addr), buf, sizeof(buf));
		inet_ntop(AF_INET, &(struct in_addr){ .s_addr = ipv4(addr) }, want, sizeof(want));
		ASSERT_STR_EQ(buf, want);
	}
	dstrace_format_ipv4(ipv4("255.255.255.255"), buf, 16);
	ASSERT_STR_EQ(buf, "255.255.255.255");
	dstrace_format_ipv4(ipv4("255.255.255.255"), buf, 15);
	ASSERT_STR_EQ(buf, "?");
}


/* The resolver's name on an outbound event: JSON members and the text suffix. */
static void test_event_names(void)
{
	struct dstrace_event e = connect_event();
	char buf[DSTRACE_LINE_MAX];
	const char *tail;

	strcpy(e.name, "db.example");
	e.name_flags = DSTRACE_NAME_KNOWN | DSTRACE_NAME_FAMILY_INET6 | DSTRACE_NAME_V4MAPPED |
		       DSTRACE_NAME_RESOLVER_MAPPED;
	dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	tail = strstr(buf, ",\"name\":");
	REQUIRE_TRUE(tail != NULL);
	ASSERT_STR_EQ(tail, ",\"name\":\"db.example\",\"answer\":\"a-only\",\"mapped_by\":\"resolver\","
			    "\"hints\":[\"AF_INET6\",\"AI_V4MAPPED\"],\"resolver_probe\":false,\"fallback\":null}");

	/* A+AAAA, resolved with AF_UNSPEC and mapped by the program; a quote in the name */
	strcpy(e.name, "we\"ird");
	e.name_flags = DSTRACE_NAME_KNOWN | DSTRACE_NAME_AAAA | DSTRACE_NAME_ALL |
		       DSTRACE_NAME_ADDRCONFIG;
	dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	tail = strstr(buf, ",\"name\":");
	REQUIRE_TRUE(tail != NULL);
	ASSERT_STR_EQ(tail, ",\"name\":\"we\\\"ird\",\"answer\":\"a+aaaa\",\"mapped_by\":\"program\","
			    "\"hints\":[\"AI_ALL\",\"AI_ADDRCONFIG\"],\"resolver_probe\":false,\"fallback\":null}");

	/* getaddrinfo's own UDP connect, sorting its answers */
	e.name_flags = 0;
	e.flags |= DSTRACE_F_BY_RESOLVER;
	dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	tail = strstr(buf, ",\"name\":");
	REQUIRE_TRUE(tail != NULL);
	ASSERT_STR_EQ(tail, ",\"name\":null,\"answer\":null,\"mapped_by\":null,\"hints\":null,"
			    "\"resolver_probe\":true,\"fallback\":null}");
	set_tz("UTC");
	dstrace_format_event_text(&e, TS_NS, buf, sizeof(buf));
	ASSERT_TRUE(strstr(buf, " ok  (getaddrinfo sorting its answers)") != NULL);

	/* text: the name and the answer after the result, unprintable bytes made safe */
	e.flags = DSTRACE_F_HAVE_LOCAL;
	strcpy(e.name, "a\tb.example");
	e.name_flags = DSTRACE_NAME_KNOWN | DSTRACE_NAME_AAAA;
	dstrace_format_event_text(&e, TS_NS, buf, sizeof(buf));
	tail = strstr(buf, " ok  ");
	REQUIRE_TRUE(tail != NULL);
	ASSERT_STR_EQ(tail, " ok  a?b.example (a+aaaa)");
	/* the starred cell: a fallback after a failed native IPv6 connect */
	e.flags = DSTRACE_F_HAVE_LOCAL | DSTRACE_F_FALLBACK;
	REQUIRE_TRUE(inet_pton(AF_INET6, "2001:db8::4", e.fb_addr6) == 1);
	e.fb_err = -ECONNREFUSED;
	e.fb_lost_ns = 1234567;
	dstrace_format_event_text(&e, TS_NS, buf, sizeof(buf));
	tail = strstr(buf, " ok  ");
	REQUIRE_TRUE(tail != NULL);
	ASSERT_STR_EQ(tail, " ok  a?b.example (a+aaaa)  after 2001:db8::4 ECONNREFUSED, 1.2 ms lost");
	dstrace_format_event_json(&e, TS_NS, buf, sizeof(buf));
	tail = strstr(buf, ",\"fallback\":");
	REQUIRE_TRUE(tail != NULL);
	ASSERT_STR_EQ(tail, ",\"fallback\":{\"from\":\"2001:db8::4\",\"error\":\"ECONNREFUSED\","
			    "\"lost_ms\":1.235}}");
	e.flags = DSTRACE_F_HAVE_LOCAL;
	/* no name, no suffix */
	e.name_flags = 0;
	dstrace_format_event_text(&e, TS_NS, buf, sizeof(buf));
	ASSERT_STR_EQ(buf + strlen(buf) - 3, " ok");
}

static const CU_TestInfo tests[] = {
	{ "event json", test_event_json },
	{ "event json and text: the resolver's name", test_event_names },
	{ "event json: udp recv, extreme values", test_event_json_udp_recv },
	{ "event json: failed connect", test_event_json_failed_connect },
	{ "event json and text: bind, udplite, mptcp", test_event_json_bind_and_mptcp },
	{ "event json: unknown errno", test_event_json_unknown_errno },
	{ "event json: comm escaped", test_event_json_escapes_comm },
	{ "event json: widest comm", test_event_json_widest_comm },
	{ "event json: truncated to the buffer", test_event_json_truncated },
	{ "event header", test_event_header },
	{ "event text", test_event_text },
	{ "event text: failed connect", test_event_text_failed_connect },
	{ "event text: wildcard local address", test_event_text_wildcard_local },
	{ "event text: columns", test_event_text_columns },
	{ "event text: unterminated comm", test_event_text_unterminated_comm },
	{ "event text: local time", test_event_text_local_time },
	{ "timestamps", test_ts },
	{ "mapped address", test_mapped_address },
	{ "errno names", test_errno_names },
	{ "event and protocol names", test_names },
	{ "json string escaping", test_json_string },
	{ "json string bounds", test_json_string_bounds },
	{ "process json", test_proc_json },
	{ "process text", test_proc_text },
	{ "stats", test_stats },
	{ "utf8_len", test_utf8_len },
	{ "ascii_safe", test_ascii_safe },
	{ "format_utc and format_ipv4", test_format_utc_ipv4 },
	CU_TEST_INFO_NULL,
};

int register_format_tests(void)
{
	return unit_add_suite("format", tests, NULL);
}
