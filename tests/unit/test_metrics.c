// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Metrics: label values (exposition-format escapes, UTF-8 kept, other bytes as \xNN, never
 * two comms on one series), the comm limit and its "_other" bucket at and past the limit,
 * totals that add up, the runtime and qos labels of programs in containers and pods (and
 * their buckets past the limit), the textfile writer, and the HTTP server on a loopback
 * socket.
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
#include "container.h"
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
		if (strstr(line, ",comm=\"_other\",")) {
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
				"comm=\"a\\\"\\\\\\n\\\\xffé\",runtime=\"\",qos=\"\"} 1\n") != NULL);
	ASSERT_TRUE(strstr(buf, "\ndstrace_mapped_failures_total{event=\"connect\","
				"error=\"ENETUNREACH\",comm=\"a\\\"\\\\\\n\\\\xffé\",runtime=\"\",qos=\"\"} 5\n") != NULL);
	ASSERT_TRUE(strstr(buf, "\ndstrace_lost_events_total 7\n") != NULL);
	ASSERT_TRUE(strstr(buf, "\ndstrace_evictions_total 9\n") != NULL);
	ASSERT_TRUE(strstr(buf, "\ndstrace_build_info{version=\"1.2.3\",backend=\"fentry\"} 1\n") !=
		    NULL);
	free(buf);
	free_audit(a);
}

/* --- runtime and qos labels ---------------------------------------------------------------- */

#define CID "3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
#define CID2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PUID "6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
#define PUID_ "6b1c2d3e_4f5a_4b6c_8d7e_9f0a1b2c3d4e"

/* Real cgroup v2 path shapes (tests/unit/test_container.c), one per kind of series. */
static const char *const kind_paths[] = {
	"/system.slice/nginx.service", /* the host */
	"/system.slice/docker-" CID ".scope",
	"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" PUID_
	".slice/cri-containerd-" CID ".scope",
	"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" PUID_
	".slice/crio-" CID ".scope",
	"/kubepods.slice/kubepods-pod" PUID_ ".slice/cri-containerd-" CID ".scope", /* guaranteed */
	"/kubepods/burstable/pod" PUID "/" CID, /* a bare id: runtime unknown */
};
#define KINDS (sizeof(kind_paths) / sizeof(kind_paths[0]))
/* Their labels as written. */
static const char *const kind_labels[KINDS] = {
	"runtime=\"\",qos=\"\"",
	"runtime=\"docker\",qos=\"\"",
	"runtime=\"containerd\",qos=\"burstable\"",
	"runtime=\"cri-o\",qos=\"besteffort\"",
	"runtime=\"containerd\",qos=\"guaranteed\"",
	"runtime=\"unknown\",qos=\"burstable\"",
};

static void set_cgroup(struct audit_program *p, const char *path)
{
	snprintf(p->cgroup, sizeof(p->cgroup), "%s", path);
	container_info_parse(p->cgroup, &p->container);
}

/* The sample lines of metric name in buf, in order, as one string ("" if none). */
static char *lines_of(const char *buf, const char *name)
{
	size_t nlen = strlen(name), cap = strlen(buf) + 1, o = 0;
	char *out = calloc(1, cap);

	for (const char *l = buf; out && *l;) {
		const char *end = strchr(l, '\n');
		size_t len = end ? (size_t)(end - l + 1) : strlen(l);

		if (!strncmp(l, name, nlen) && l[nlen] == '{') {
			memcpy(out + o, l, len);
			o += len;
		}
		l += len;
	}
	return out;
}

static void test_container_labels(void)
{
	struct audit *a = make_audit(8, "nginx");
	struct metrics_totals t = { .version = "1", .backend = "fentry" };
	char *buf, *got;
	size_t len;

	REQUIRE_TRUE(a != NULL);
	for (uint32_t i = 0; i < KINDS; i++)
		set_cgroup(&a->programs[i], kind_paths[i]);
	/* a second docker container: same comm, same labels, one series (the id is no label) */
	set_cgroup(&a->programs[6], "/docker/" CID2);
	set_cgroup(&a->programs[7], "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" CID2
				    ".scope/container");
	a->programs[3].errnos[0] = (struct audit_errno){ ENETUNREACH, DSTRACE_EV_CONNECT, 2 };
	a->programs[3].nerrnos = 1;
	a->programs[0].errnos_other = 4;
	REQUIRE_TRUE(metrics_render_buf(a, &t, &buf, &len) == 0);

	got = lines_of(buf, "dstrace_mapped_events_total");
	ASSERT_STR_EQ(got,
		"dstrace_mapped_events_total{event=\"connect\",proto=\"tcp\",comm=\"nginx\",runtime=\"\",qos=\"\"} 1\n"
		"dstrace_mapped_events_total{event=\"connect\",proto=\"tcp\",comm=\"nginx\",runtime=\"docker\",qos=\"\"} 9\n"
		"dstrace_mapped_events_total{event=\"connect\",proto=\"tcp\",comm=\"nginx\",runtime=\"containerd\",qos=\"burstable\"} 3\n"
		"dstrace_mapped_events_total{event=\"connect\",proto=\"tcp\",comm=\"nginx\",runtime=\"cri-o\",qos=\"besteffort\"} 4\n"
		"dstrace_mapped_events_total{event=\"connect\",proto=\"tcp\",comm=\"nginx\",runtime=\"containerd\",qos=\"guaranteed\"} 5\n"
		"dstrace_mapped_events_total{event=\"connect\",proto=\"tcp\",comm=\"nginx\",runtime=\"unknown\",qos=\"burstable\"} 6\n"
		"dstrace_mapped_events_total{event=\"connect\",proto=\"tcp\",comm=\"nginx\",runtime=\"podman\",qos=\"\"} 8\n");
	free(got);
	got = lines_of(buf, "dstrace_mapped_bytes_total");
	ASSERT_STR_EQ(got, /* the host's program sent 0 bytes: no line */
		"dstrace_mapped_bytes_total{direction=\"sent\",proto=\"udp\",comm=\"nginx\",runtime=\"docker\",qos=\"\"} 7\n"
		"dstrace_mapped_bytes_total{direction=\"sent\",proto=\"udp\",comm=\"nginx\",runtime=\"containerd\",qos=\"burstable\"} 2\n"
		"dstrace_mapped_bytes_total{direction=\"sent\",proto=\"udp\",comm=\"nginx\",runtime=\"cri-o\",qos=\"besteffort\"} 3\n"
		"dstrace_mapped_bytes_total{direction=\"sent\",proto=\"udp\",comm=\"nginx\",runtime=\"containerd\",qos=\"guaranteed\"} 4\n"
		"dstrace_mapped_bytes_total{direction=\"sent\",proto=\"udp\",comm=\"nginx\",runtime=\"unknown\",qos=\"burstable\"} 5\n"
		"dstrace_mapped_bytes_total{direction=\"sent\",proto=\"udp\",comm=\"nginx\",runtime=\"podman\",qos=\"\"} 7\n");
	free(got);
	got = lines_of(buf, "dstrace_mapped_failures_total");
	ASSERT_STR_EQ(got,
		"dstrace_mapped_failures_total{event=\"_other\",error=\"_other\",comm=\"nginx\",runtime=\"\",qos=\"\"} 4\n"
		"dstrace_mapped_failures_total{event=\"connect\",error=\"ENETUNREACH\",comm=\"nginx\",runtime=\"cri-o\",qos=\"besteffort\"} 2\n");
	free(got);
	/* Neither a container id nor a pod UID anywhere: they are no labels. */
	ASSERT_TRUE(strstr(buf, CID) == NULL);
	ASSERT_TRUE(strstr(buf, CID2) == NULL);
	ASSERT_TRUE(strstr(buf, PUID) == NULL);
	ASSERT_TRUE(strstr(buf, "pod_uid") == NULL);
	ASSERT_TRUE(strstr(buf, "container=") == NULL);
	free(buf);
	free_audit(a);
}

/* The line of metric events with comm and the labels of kind k, its value; -1 if none, -2 if
 * several. */
static int64_t value_of(const char *buf, const char *comm, size_t k)
{
	char key[256];
	const char *at, *next;

	snprintf(key, sizeof(key), "\ndstrace_mapped_events_total{event=\"connect\",proto=\"tcp\","
				   "comm=\"%s\",%s} ", comm, kind_labels[k]);
	at = strstr(buf, key);
	if (!at)
		return -1;
	next = strstr(at + 1, key);
	if (next)
		return -2;
	return strtoll(at + strlen(key), NULL, 10);
}

/* The limit counts (comm, runtime, qos): 50 comms on the host and the same 50 in docker
 * containers are 100 series, exactly full; one more combination (a comm already seen, in a
 * pod) goes to the bucket of its runtime and qos. */
static void test_container_labels_at_limit(void)
{
	struct audit *a = make_audit(METRICS_COMM_MAX + 2, "p%02u");
	struct parsed p;
	char *buf;
	size_t len;
	struct metrics_totals t = { .version = "1", .backend = "fentry" };

	REQUIRE_TRUE(a != NULL);
	for (uint32_t i = 0; i < METRICS_COMM_MAX; i++) {
		snprintf(a->programs[i].comm, DSTRACE_COMM_LEN, "p%02u", i % 50);
		set_cgroup(&a->programs[i], kind_paths[i < 50 ? 0 : 1]);
	}
	a->nprograms = METRICS_COMM_MAX;
	render(a, &p);
	ASSERT_UINT_EQ(p.named, METRICS_COMM_MAX);
	ASSERT_UINT_EQ(p.other_lines, 0);
	ASSERT_UINT_EQ(p.sum, METRICS_COMM_MAX * (METRICS_COMM_MAX + 1) / 2);
	free(p.text);

	/* one past: p00 in a besteffort pod (101 connects), and a literal "_other" in the same
	 * kind of pod (102): one bucket, with the pod's labels */
	snprintf(a->programs[METRICS_COMM_MAX].comm, DSTRACE_COMM_LEN, "p00");
	set_cgroup(&a->programs[METRICS_COMM_MAX], kind_paths[3]);
	snprintf(a->programs[METRICS_COMM_MAX + 1].comm, DSTRACE_COMM_LEN, "_other");
	set_cgroup(&a->programs[METRICS_COMM_MAX + 1], kind_paths[3]);
	a->nprograms = METRICS_COMM_MAX + 2;
	render(a, &p);
	ASSERT_UINT_EQ(p.named, METRICS_COMM_MAX);
	ASSERT_UINT_EQ(p.other_lines, 1);
	ASSERT_UINT_EQ(p.other, (METRICS_COMM_MAX + 1) + (METRICS_COMM_MAX + 2));
	free(p.text);
	REQUIRE_TRUE(metrics_render_buf(a, &t, &buf, &len) == 0);
	ASSERT_INT_EQ(value_of(buf, "_other", 3), (METRICS_COMM_MAX + 1) + (METRICS_COMM_MAX + 2));
	ASSERT_INT_EQ(value_of(buf, "p00", 0), 1);
	ASSERT_INT_EQ(value_of(buf, "p00", 1), 51);
	ASSERT_INT_EQ(value_of(buf, "p00", 3), -1);
	ASSERT_INT_EQ(value_of(buf, "_other", 0), -1);
	free(buf);
	free_audit(a);
}

/* Far past the limit, 4096 programs of every kind in turn: the first 100 have series of their
 * own, the rest one bucket per kind, and the sum of each kind's series is still its programs'
 * total (sum by (runtime, qos) stays exact). */
static void test_container_labels_past_limit(void)
{
	const uint32_t n = 4096;
	struct audit *a = make_audit(n, "prog%04u");
	struct metrics_totals t = { .version = "1", .backend = "fentry" };
	struct parsed p;
	char *buf;
	size_t len;

	REQUIRE_TRUE(a != NULL);
	for (uint32_t i = 0; i < n; i++)
		set_cgroup(&a->programs[i], kind_paths[i % KINDS]);
	render(a, &p);
	ASSERT_UINT_EQ(p.named, METRICS_COMM_MAX);
	ASSERT_UINT_EQ(p.other_lines, KINDS);
	ASSERT_UINT_EQ(p.series, METRICS_COMM_MAX + KINDS);
	ASSERT_UINT_EQ(p.sum, (uint64_t)n * (n + 1) / 2);
	free(p.text);
	REQUIRE_TRUE(metrics_render_buf(a, &t, &buf, &len) == 0);
	for (size_t k = 0; k < KINDS; k++) {
		uint64_t want_other = 0, want_total = 0, got_total = 0;
		char comm[DSTRACE_COMM_LEN];

		for (uint32_t i = k; i < n; i += KINDS) {
			want_total += i + 1;
			if (i >= METRICS_COMM_MAX)
				want_other += i + 1;
			snprintf(comm, sizeof(comm), "prog%04u", i);
			if (i < METRICS_COMM_MAX) {
				ASSERT_INT_EQ(value_of(buf, comm, k), i + 1);
				got_total += i + 1;
			} else if (i < METRICS_COMM_MAX + KINDS) {
				ASSERT_INT_EQ(value_of(buf, comm, k), -1); /* no series of its own */
			}
		}
		ASSERT_INT_EQ(value_of(buf, "_other", k), (int64_t)want_other);
		got_total += want_other;
		ASSERT_UINT_EQ(got_total, want_total);
	}
	/* the buckets come last, in the order of the kinds above */
	{
		char *got = lines_of(buf, "dstrace_mapped_events_total");
		const char *b = got ? strstr(got, "comm=\"_other\"") : NULL;

		ASSERT_TRUE(b != NULL);
		ASSERT_TRUE(b && strstr(b, "runtime=\"\",qos=\"\"") < strstr(b, "runtime=\"docker\""));
		ASSERT_TRUE(b && strstr(b, "runtime=\"docker\"") < strstr(b, "runtime=\"containerd\",qos=\"guaranteed\""));
		ASSERT_TRUE(b && strstr(b, "qos=\"guaranteed\"") < strstr(b, "qos=\"burstable\""));
		ASSERT_TRUE(b && strstr(b, "runtime=\"cri-o\"") < strstr(b, "runtime=\"unknown\""));
		free(got);
	}
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
	{ "runtime and qos labels: host, docker, podman, pods", test_container_labels },
	{ "runtime and qos labels at the limit", test_container_labels_at_limit },
	{ "runtime and qos labels past the limit", test_container_labels_past_limit },
	{ "metrics file", test_metrics_file },
	{ "server", test_server },
	CU_TEST_INFO_NULL,
};

int register_metrics_tests(void)
{
	return unit_add_suite("metrics", tests, NULL);
}
