// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Metrics: label values (exposition-format escapes, UTF-8 kept, other bytes as \xNN, never
 * two comms on one series), the comm limit and its "_other" bucket at and past the limit,
 * totals that add up, the textfile writer, and the HTTP server on a loopback socket.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "metrics.h"
#include "unit.h"

static void check_label(const char *comm, const char *want)
{
	char out[METRICS_LABEL_MAX];

	metrics_label_value(comm, out);
	ASSERT_STR_EQ(out, want);
}

static void test_label_ascii(void)
{
	check_label("nginx", "nginx");
	check_label("", "");
	check_label("a b-c.d_e:f/g", "a b-c.d_e:f/g");
	check_label("say \"hi\"", "say \\\"hi\\\"");
	check_label("back\\slash", "back\\\\slash");
	check_label("two\nlines", "two\\nlines");
	/* Other control bytes are valid UTF-8: kept, as the format allows. */
	check_label("tab\there", "tab\there");
}

static void test_label_utf8_kept(void)
{
	check_label("ñandú", "ñandú");
	check_label("сервер", "сервер"); /* 12 bytes */
	check_label("日本語サー", "日本語サー"); /* 15 bytes, the most a comm has */
	check_label("emoji😀x", "emoji😀x");
	/* The two comms the old code printed as "???" both: distinct now. */
	{
		char a[METRICS_LABEL_MAX], b[METRICS_LABEL_MAX];

		metrics_label_value("prog-é", a);
		metrics_label_value("prog-ü", b);
		ASSERT_TRUE(strcmp(a, b) != 0);
	}
}

static void test_label_invalid_utf8(void)
{
	check_label("\xff", "\\\\xff");
	check_label("a\xfe\xff" "b", "a\\\\xfe\\\\xffb");
	check_label("cut\xc3", "cut\\\\xc3"); /* a sequence cut short by the end */
	check_label("\xc3(", "\\\\xc3("); /* a lead byte without its continuation */
	check_label("\xc0\xaf", "\\\\xc0\\\\xaf"); /* overlong '/' */
	check_label("\xed\xa0\x80", "\\\\xed\\\\xa0\\\\x80"); /* a UTF-16 surrogate */
	check_label("\xf4\x90\x80\x80", "\\\\xf4\\\\x90\\\\x80\\\\x80"); /* above U+10FFFF */
	/* 15 invalid bytes: the longest label value there is, and it fits. */
	check_label("\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e",
		    "\\\\x80\\\\x81\\\\x82\\\\x83\\\\x84\\\\x85\\\\x86\\\\x87\\\\x88\\\\x89\\\\x8a"
		    "\\\\x8b\\\\x8c\\\\x8d\\\\x8e");
	{
		char a[METRICS_LABEL_MAX], b[METRICS_LABEL_MAX];

		metrics_label_value("x\xfe", a);
		metrics_label_value("x\xff", b);
		ASSERT_TRUE(strcmp(a, b) != 0);
	}
}

/* An audit table of n programs named fmt % i; program i made i + 1 mapped TCP connects
 * and sent i bytes over UDP. */
static struct audit *make_audit(uint32_t n, const char *fmt)
{
	struct audit *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->programs = calloc(n ? n : 1, sizeof(*a->programs));
	a->nprograms = n;
	for (uint32_t i = 0; i < n; i++) {
		struct audit_program *p = &a->programs[i];

		snprintf(p->comm, sizeof(p->comm), fmt, i);
		p->counts[DSTRACE_EV_CONNECT][DSTRACE_PROTO_TCP] = i + 1;
		p->bytes[0][DSTRACE_PROTO_UDP] = i;
	}
	return a;
}

static void free_audit(struct audit *a)
{
	if (a)
		free(a->programs);
	free(a);
}

struct parsed {
	uint32_t series; /* dstrace_mapped_events_total lines */
	uint32_t named; /* of them, with a comm other than _other */
	uint64_t sum; /* their values added up */
	uint64_t other; /* the _other series' value, 0 if none */
	uint32_t other_lines;
	uint64_t bytes_sum;
	char *text;
	size_t len;
};

static void render(const struct audit *a, struct parsed *p)
{
	struct metrics_totals t = { .version = "test", .backend = "tracepoint", .lost = 3,
				    .evictions = 4 };
	char *line, *save = NULL;

	memset(p, 0, sizeof(*p));
	REQUIRE_TRUE(metrics_render_buf(a, &t, &p->text, &p->len) == 0);
	REQUIRE_TRUE(strlen(p->text) == p->len);
	for (line = strtok_r(p->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *sp = strrchr(line, ' ');
		uint64_t v = sp ? strtoull(sp + 1, NULL, 10) : 0;

		if (!strncmp(line, "dstrace_mapped_bytes_total{", 27)) {
			p->bytes_sum += v;
			continue;
		}
		if (strncmp(line, "dstrace_mapped_events_total{", 28))
			continue;
		p->series++;
		p->sum += v;
		if (strstr(line, ",comm=\"_other\"}")) {
			p->other += v;
			p->other_lines++;
		} else {
			p->named++;
		}
	}
}

static void test_under_limit(void)
{
	struct audit *a = make_audit(3, "p%u");
	struct parsed p;

	REQUIRE_TRUE(a != NULL);
	render(a, &p);
	ASSERT_UINT_EQ(p.series, 3);
	ASSERT_UINT_EQ(p.other_lines, 0);
	ASSERT_UINT_EQ(p.sum, 1 + 2 + 3);
	ASSERT_UINT_EQ(p.bytes_sum, 0 + 1 + 2);
	free(p.text);
	free_audit(a);
}

static void test_at_limit(void)
{
	struct audit *a = make_audit(METRICS_COMM_MAX, "prog%03u");
	struct parsed p;

	REQUIRE_TRUE(a != NULL);
	render(a, &p);
	ASSERT_UINT_EQ(p.named, METRICS_COMM_MAX);
	ASSERT_UINT_EQ(p.other_lines, 0); /* exactly full: no bucket yet */
	ASSERT_UINT_EQ(p.sum, METRICS_COMM_MAX * (METRICS_COMM_MAX + 1) / 2);
	free(p.text);
	free_audit(a);
}

static void test_one_past_limit(void)
{
	struct audit *a = make_audit(METRICS_COMM_MAX + 1, "prog%03u");
	struct parsed p;

	REQUIRE_TRUE(a != NULL);
	render(a, &p);
	ASSERT_UINT_EQ(p.named, METRICS_COMM_MAX);
	ASSERT_UINT_EQ(p.other_lines, 1);
	ASSERT_UINT_EQ(p.other, METRICS_COMM_MAX + 1); /* the 101st program's connects */
	free(p.text);
	free_audit(a);
}

/* The case that hung dstrace: 105 comms. And far past it: the bucket takes everything. */
static void test_past_limit(void)
{
	static const uint32_t ns[] = { 105, 4096 };

	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		uint32_t n = ns[k];
		struct audit *a = make_audit(n, "prog%04u");
		uint64_t want_sum = (uint64_t)n * (n + 1) / 2;
		uint64_t want_named = METRICS_COMM_MAX * (METRICS_COMM_MAX + 1) / 2;
		struct parsed p;

		REQUIRE_TRUE(a != NULL);
		render(a, &p);
		ASSERT_UINT_EQ(p.named, METRICS_COMM_MAX);
		ASSERT_UINT_EQ(p.other_lines, 1);
		ASSERT_UINT_EQ(p.sum, want_sum);
		ASSERT_UINT_EQ(p.other, want_sum - want_named);
		ASSERT_UINT_EQ(p.bytes_sum, (uint64_t)n * (n - 1) / 2);
		free(p.text);
		free_audit(a);
	}
}

/* Programs of one comm add up in one series; a program named "_other" is the bucket. */
static void test_same_comm_and_literal_other(void)
{
	struct audit *a = make_audit(METRICS_COMM_MAX + 3, "prog%03u");
	struct parsed p;

	REQUIRE_TRUE(a != NULL);
	snprintf(a->programs[1].comm, DSTRACE_COMM_LEN, "prog000"); /* 1 + 2 connects */
	snprintf(a->programs[2].comm, DSTRACE_COMM_LEN, "_other"); /* 3 connects */
	render(a, &p);
	/* prog000 (twice) takes one slot, prog003..prog101 the other 99; "_other" (3
	 * connects) and prog102 (103) go to the bucket. */
	ASSERT_UINT_EQ(p.named, METRICS_COMM_MAX);
	ASSERT_UINT_EQ(p.other_lines, 1);
	ASSERT_UINT_EQ(p.other, 3 + 103);
	ASSERT_UINT_EQ(p.sum, (METRICS_COMM_MAX + 3) * (METRICS_COMM_MAX + 4) / 2);
	free(p.text);
	free_audit(a);
	a = make_audit(2, "same");
	REQUIRE_TRUE(a != NULL);
	render(a, &p);
	ASSERT_UINT_EQ(p.series, 1);
	ASSERT_UINT_EQ(p.sum, 3);
	free(p.text);
	free_audit(a);
}

/* The exact lines, for one program with a comm that needs every kind of escape. */
static void test_render_lines(void)
{
	struct audit *a = make_audit(1, "x");
	struct metrics_totals t = { .version = "1.2.3", .backend = "fentry", .lost = 7,
				    .evictions = 9 };
	char *buf;
	size_t len;

	REQUIRE_TRUE(a != NULL);
	snprintf(a->programs[0].comm, DSTRACE_COMM_LEN, "a\"\\\n\xffé");
	a->programs[0].errnos[0] = (struct audit_errno){ ENETUNREACH, DSTRACE_EV_CONNECT, 5 };
	a->programs[0].nerrnos = 1;
	REQUIRE_TRUE(metrics_render_buf(a, &t, &buf, &len) == 0);
	ASSERT_TRUE(strstr(buf, "\ndstrace_mapped_events_total{event=\"connect\",proto=\"tcp\","
				"comm=\"a\\\"\\\\\\n\\\\xffé\"} 1\n") != NULL);
	ASSERT_TRUE(strstr(buf, "\ndstrace_mapped_failures_total{event=\"connect\","
				"error=\"ENETUNREACH\",comm=\"a\\\"\\\\\\n\\\\xffé\"} 5\n") != NULL);
	ASSERT_TRUE(strstr(buf, "\ndstrace_lost_events_total 7\n") != NULL);
	ASSERT_TRUE(strstr(buf, "\ndstrace_evictions_total 9\n") != NULL);
	ASSERT_TRUE(strstr(buf, "\ndstrace_build_info{version=\"1.2.3\",backend=\"fentry\"} 1\n") !=
		    NULL);
	free(buf);
	free_audit(a);
}

static char tmpdir[] = "/tmp/dstrace-unit-metrics.XXXXXX";

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return NULL;
	n = getdelim(&buf, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(buf);
		return strdup("");
	}
	return buf;
}

static void test_metrics_file(void)
{
	char path[128], tmp[160], target[160], why[256] = "", *got;

	REQUIRE_TRUE(mkdtemp(tmpdir) != NULL);
	snprintf(path, sizeof(path), "%s/dstrace.prom", tmpdir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	ASSERT_INT_EQ(metrics_file_write(path, "one 1\n", 6, why, sizeof(why)), 0);
	ASSERT_INT_EQ(metrics_file_write(path, "two 2\n", 6, why, sizeof(why)), 0);
	got = slurp(path);
	ASSERT_STR_EQ(got ? got : "(none)", "two 2\n");
	free(got);
	ASSERT_INT_EQ(access(tmp, F_OK), -1); /* renamed away */
	/* PATH.tmp a symlink: refused, the link's target untouched, PATH as it was. */
	snprintf(target, sizeof(target), "%s/target", tmpdir);
	REQUIRE_TRUE(symlink(target, tmp) == 0);
	ASSERT_INT_EQ(metrics_file_write(path, "three 3\n", 8, why, sizeof(why)), -ELOOP);
	{
		char want[300];

		snprintf(want, sizeof(want),
			 "%s: it is a symbolic link (dstrace never writes through one)", tmp);
		ASSERT_STR_EQ(why, want);
	}
	ASSERT_INT_EQ(access(target, F_OK), -1);
	got = slurp(path);
	ASSERT_STR_EQ(got ? got : "(none)", "two 2\n");
	free(got);
	unlink(tmp);
	unlink(path);
	rmdir(tmpdir);
}

/* One HTTP exchange with the server on 127.0.0.1:port; the whole answer. */
static char *http(unsigned short port, const char *request)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	char *buf = calloc(1, 65536);
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || !buf || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return NULL;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 5000) != 1)
			break;
		n = read(fd, buf + got, 65535 - got);
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	return buf;
}

static void test_server(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	struct metrics_server *s = NULL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	char *ans;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE_TRUE(fd >= 0);
	REQUIRE_TRUE(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	REQUIRE_TRUE(listen(fd, 16) == 0);
	REQUIRE_TRUE(getsockname(fd, (struct sockaddr *)&sin, &slen) == 0);
	REQUIRE_TRUE(metrics_server__new(fd, strdup("first 1\n"), 8, &s) == 0);

	ans = http(ntohs(sin.sin_port), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	ASSERT_TRUE(ans && !strncmp(ans, "HTTP/1.1 200 OK\r\n", 17));
	ASSERT_TRUE(ans && strstr(ans, "\r\n\r\nfirst 1\n"));
	ASSERT_TRUE(ans && strcasestr(ans, "\r\nContent-Type: text/plain; version=0.0.4"));
	free(ans);
	metrics_server__publish(s, strdup("second 2\n"), 9);
	ans = http(ntohs(sin.sin_port), "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
	ASSERT_TRUE(ans && strstr(ans, "\r\n\r\nsecond 2\n"));
	free(ans);
	ans = http(ntohs(sin.sin_port), "GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
	ASSERT_TRUE(ans && !strncmp(ans, "HTTP/1.1 404 ", 13));
	free(ans);
	ans = http(ntohs(sin.sin_port), "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	ASSERT_TRUE(ans && !strncmp(ans, "HTTP/1.1 405 ", 13));
	ASSERT_TRUE(ans && strcasestr(ans, "\r\nAllow: GET, HEAD\r\n"));
	free(ans);
	ASSERT_UINT_EQ(metrics_server__scrapes(s), 2);
	metrics_server__free(s);
}

static const CU_TestInfo tests[] = {
	{ "label: ASCII and the three escapes", test_label_ascii },
	{ "label: UTF-8 kept", test_label_utf8_kept },
	{ "label: invalid UTF-8 as \\xNN", test_label_invalid_utf8 },
	{ "comms under the limit", test_under_limit },
	{ "comms at the limit", test_at_limit },
	{ "one comm past the limit", test_one_past_limit },
	{ "105 and 4096 comms", test_past_limit },
	{ "same comm, literal _other", test_same_comm_and_literal_other },
	{ "rendered lines", test_render_lines },
	{ "metrics file", test_metrics_file },
	{ "server", test_server },
	CU_TEST_INFO_NULL,
};

int register_metrics_tests(void)
{
	return unit_add_suite("metrics", tests, NULL);
}
