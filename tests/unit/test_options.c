// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Command line: defaults, every option, every range check. Errors must come back as a status
 * (never exit) with exactly one line on stderr, which is captured and checked here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "options.h"
#include "unit.h"

#define MAX_ARGS (2 * DSTRACE_MAX_PIDS + 16)

/* argv handed to the parser: owned here, because env->output points into it. */
static char *argv_copy[MAX_ARGS + 1];
static int argc_copy;
static char stderr_text[4096];

static void free_argv(void)
{
	for (int i = 0; i < argc_copy; i++)
		free(argv_copy[i]);
	argc_copy = 0;
}

/* Parse "dstrace ARGS..." (args NULL-terminated), capturing what it prints on stderr. The
 * stderr stream is swapped rather than file descriptor 2, so that a sanitizer report still
 * reaches the terminal. */
static int parse(struct env *env, const char *const *args)
{
	FILE *real_stderr = stderr, *tmp;
	size_t n;
	int err;

	free_argv();
	argv_copy[argc_copy++] = strdup("dstrace");
	for (; *args; args++) {
		REQUIRE_TRUE(argc_copy < MAX_ARGS);
		argv_copy[argc_copy++] = strdup(*args);
	}
	argv_copy[argc_copy] = NULL;

	tmp = tmpfile();
	REQUIRE_TRUE(tmp != NULL);
	stderr = tmp;
	err = dstrace_parse_args(argc_copy, argv_copy, env, false);
	stderr = real_stderr;

	rewind(tmp);
	n = fread(stderr_text, 1, sizeof(stderr_text) - 1, tmp);
	stderr_text[n] = '\0';
	fclose(tmp);
	return err;
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static unsigned int count_lines(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Accepted, and silent. */
#define EXPECT_OK(env, args)                                                              \
	do {                                                                              \
		int err_ = parse((env), (args));                                          \
		unit_check(UNIT_AT(true), err_ == 0, "parse failed (%d), stderr: %s", err_, \
			   stderr_text);                                                  \
		ASSERT_STR_EQ(stderr_text, "");                                           \
	} while (0)

/* Rejected with a status, and exactly one line on stderr containing msg. */
#define EXPECT_REJECT(msg, args)                                                          \
	do {                                                                              \
		struct env env_;                                                          \
		int err_ = parse(&env_, (args));                                          \
		unit_check(UNIT_AT(false), err_ != 0, "accepted, expected \"%s\"", (msg)); \
		unit_check(UNIT_AT(false), strstr(stderr_text, (msg)) != NULL,            \
			   "stderr: expected \"%s\", got \"%s\"", (msg), stderr_text);     \
		unit_check(UNIT_AT(false), count_lines(stderr_text) == 1,                 \
			   "stderr: expected one line, got \"%s\"", stderr_text);          \
	} while (0)

static void test_defaults(void)
{
	struct env env;

	memset(&env, 0xa5, sizeof(env)); /* everything must be (re)initialized */
	EXPECT_OK(&env, ARGS(NULL));
	ASSERT_TRUE(!env.json);
	ASSERT_TRUE(!env.verbose);
	ASSERT_UINT_EQ(env.interval_s, 0);
	ASSERT_UINT_EQ(env.duration_s, 0);
	ASSERT_UINT_EQ(env.npids, 0);
	ASSERT_STR_EQ(env.comm, "");
	ASSERT_UINT_EQ(env.port, 0);
	ASSERT_UINT_EQ(env.protos, DSTRACE_PROTOMASK_ALL);
	ASSERT_UINT_EQ(env.events, DSTRACE_EVMASK_ALL);
	ASSERT_TRUE(env.output == NULL);
	ASSERT_UINT_EQ(env.backend, DSTRACE_BACKEND_AUTO);
	ASSERT_UINT_EQ(env.ringbuf_kb, 1024);
	ASSERT_UINT_EQ(env.ringbuf_kb, DSTRACE_DEFAULT_RINGBUF_KB);
}

static void test_short_options(void)
{
	struct env env;

	EXPECT_OK(&env, ARGS("-j", "-i", "10", "-d", "60", "-p", "1234", "-p", "5678", "-c", "nginx",
			     "-P", "443", "-e", "accept,recv", "-o", "out.jsonl", "-v"));
	ASSERT_TRUE(env.json);
	ASSERT_TRUE(env.verbose);
	ASSERT_UINT_EQ(env.interval_s, 10);
	ASSERT_UINT_EQ(env.duration_s, 60);
	ASSERT_UINT_EQ(env.npids, 2);
	ASSERT_UINT_EQ(env.pids[0], 1234);
	ASSERT_UINT_EQ(env.pids[1], 5678);
	ASSERT_STR_EQ(env.comm, "nginx");
	ASSERT_UINT_EQ(env.port, 443);
	ASSERT_UINT_EQ(env.events,
		       DSTRACE_EVMASK(DSTRACE_EV_ACCEPT) | DSTRACE_EVMASK(DSTRACE_EV_RECV));
	ASSERT_UINT_EQ(env.protos, DSTRACE_PROTOMASK_ALL);
	ASSERT_STR_EQ(env.output, "out.jsonl");
	ASSERT_UINT_EQ(env.ringbuf_kb, DSTRACE_DEFAULT_RINGBUF_KB);
}

static void test_long_options(void)
{
	struct env env;

	EXPECT_OK(&env, ARGS("--json", "--interval=5", "--duration", "2678400", "--pid=7",
			     "--comm=a", "--port", "65535", "--events=send", "--output=x",
			     "--backend", "tracepoint", "--ringbuf-kb", "4", "--verbose"));
	ASSERT_TRUE(env.json);
	ASSERT_TRUE(env.verbose);
	ASSERT_UINT_EQ(env.interval_s, 5);
	ASSERT_UINT_EQ(env.duration_s, 2678400);
	ASSERT_UINT_EQ(env.npids, 1);
	ASSERT_UINT_EQ(env.pids[0], 7);
	ASSERT_STR_EQ(env.comm, "a");
	ASSERT_UINT_EQ(env.port, 65535);
	ASSERT_UINT_EQ(env.events, DSTRACE_EVMASK(DSTRACE_EV_SEND));
	ASSERT_STR_EQ(env.output, "x");
	ASSERT_UINT_EQ(env.backend, DSTRACE_BACKEND_TRACEPOINT);
	ASSERT_UINT_EQ(env.ringbuf_kb, 4);
}

static void test_attached_values(void)
{
	struct env env;

	EXPECT_OK(&env, ARGS("-p42", "-P53", "-i1", "-ji86400"));
	ASSERT_UINT_EQ(env.npids, 1);
	ASSERT_UINT_EQ(env.pids[0], 42);
	ASSERT_UINT_EQ(env.port, 53);
	ASSERT_TRUE(env.json);
	ASSERT_UINT_EQ(env.interval_s, 86400); /* the last one wins */
}

static void test_protocols(void)
{
	struct env env;

	EXPECT_OK(&env, ARGS("--tcp"));
	ASSERT_UINT_EQ(env.protos, DSTRACE_PROTOMASK(DSTRACE_PROTO_TCP));
	EXPECT_OK(&env, ARGS("--udp"));
	ASSERT_UINT_EQ(env.protos, DSTRACE_PROTOMASK(DSTRACE_PROTO_UDP));
	EXPECT_OK(&env, ARGS("--udp", "--tcp"));
	ASSERT_UINT_EQ(env.protos, DSTRACE_PROTOMASK_ALL);
}

static void test_backend(void)
{
	static const struct {
		const char *name;
		enum dstrace_backend_kind kind;
	} backends[] = {
		{ "auto", DSTRACE_BACKEND_AUTO },
		{ "fentry", DSTRACE_BACKEND_FENTRY },
		{ "kprobe", DSTRACE_BACKEND_KPROBE },
		{ "tracepoint", DSTRACE_BACKEND_TRACEPOINT },
	};
	struct env env;

	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		EXPECT_OK(&env, ARGS("--backend", backends[i].name));
		ASSERT_UINT_EQ(env.backend, backends[i].kind);
		ASSERT_STR_EQ(dstrace_backend_name(backends[i].kind), backends[i].name);
	}
	EXPECT_OK(&env, ARGS("--backend=tracepoint", "--backend=kprobe"));
	ASSERT_UINT_EQ(env.backend, DSTRACE_BACKEND_KPROBE);
	ASSERT_STR_EQ(dstrace_backend_name(DSTRACE_BACKEND_MAX), "?");
	EXPECT_REJECT("invalid --backend 'bpf': expected auto, fentry, kprobe or tracepoint",
		      ARGS("--backend", "bpf"));
	EXPECT_REJECT("invalid --backend ''", ARGS("--backend="));
	EXPECT_REJECT("invalid --backend 'Fentry'", ARGS("--backend", "Fentry"));
}

static void test_backend_parse(void)
{
	enum dstrace_backend_kind kind = DSTRACE_BACKEND_TRACEPOINT;

	ASSERT_INT_EQ(dstrace_backend_parse("fentry", &kind), 0);
	ASSERT_UINT_EQ(kind, DSTRACE_BACKEND_FENTRY);
	ASSERT_INT_EQ(dstrace_backend_parse("auto", &kind), 0);
	ASSERT_UINT_EQ(kind, DSTRACE_BACKEND_AUTO);
	/* unknown: -1, and kind untouched */
	ASSERT_INT_EQ(dstrace_backend_parse("kprobes", &kind), -1);
	ASSERT_INT_EQ(dstrace_backend_parse("", &kind), -1);
	ASSERT_UINT_EQ(kind, DSTRACE_BACKEND_AUTO);
}

static void test_second_parse_starts_over(void)
{
	struct env env;

	EXPECT_OK(&env, ARGS("-j", "-p", "1", "--tcp", "-e", "connect", "--ringbuf-kb", "8"));
	EXPECT_OK(&env, ARGS("-v"));
	ASSERT_TRUE(!env.json);
	ASSERT_UINT_EQ(env.npids, 0);
	ASSERT_UINT_EQ(env.protos, DSTRACE_PROTOMASK_ALL);
	ASSERT_UINT_EQ(env.events, DSTRACE_EVMASK_ALL);
	ASSERT_UINT_EQ(env.ringbuf_kb, DSTRACE_DEFAULT_RINGBUF_KB);
}

static void test_pid_range(void)
{
	struct env env;

	EXPECT_REJECT("invalid --pid '0'", ARGS("-p", "0"));
	EXPECT_REJECT("invalid --pid 'abc'", ARGS("-p", "abc"));
	EXPECT_REJECT("invalid --pid '-1'", ARGS("--pid=-1"));
	EXPECT_REJECT("invalid --pid '+5'", ARGS("-p", "+5"));
	EXPECT_REJECT("invalid --pid '12x'", ARGS("-p", "12x"));
	EXPECT_REJECT("invalid --pid ''", ARGS("-p", ""));
	EXPECT_REJECT("invalid --pid '2147483648'", ARGS("-p", "2147483648"));
	EXPECT_REJECT("invalid --pid '99999999999999999999999'",
		      ARGS("-p", "99999999999999999999999"));
	EXPECT_OK(&env, ARGS("-p", "1", "-p", "2147483647"));
	ASSERT_UINT_EQ(env.pids[0], 1);
	ASSERT_UINT_EQ(env.pids[1], 2147483647);
}

static void test_pid_count(void)
{
	const char *args[2 * DSTRACE_MAX_PIDS + 3];
	char pids[DSTRACE_MAX_PIDS + 1][16];
	struct env env;
	int n = 0;

	for (int i = 0; i < DSTRACE_MAX_PIDS; i++) {
		snprintf(pids[i], sizeof(pids[i]), "%d", 100 + i);
		args[n++] = "-p";
		args[n++] = pids[i];
	}
	args[n] = NULL;
	EXPECT_OK(&env, args);
	ASSERT_UINT_EQ(env.npids, DSTRACE_MAX_PIDS);
	ASSERT_UINT_EQ(env.pids[0], 100);
	ASSERT_UINT_EQ(env.pids[DSTRACE_MAX_PIDS - 1], 100 + DSTRACE_MAX_PIDS - 1);

	snprintf(pids[DSTRACE_MAX_PIDS], sizeof(pids[0]), "%d", 100 + DSTRACE_MAX_PIDS);
	args[n++] = "-p";
	args[n++] = pids[DSTRACE_MAX_PIDS];
	args[n] = NULL;
	EXPECT_REJECT("too many --pid options: at most 64", args);
}

static void test_port_range(void)
{
	struct env env;

	EXPECT_REJECT("invalid --port '0'", ARGS("-P", "0"));
	EXPECT_REJECT("invalid --port '65536'", ARGS("-P", "65536"));
	EXPECT_REJECT("invalid --port 'http'", ARGS("--port=http"));
	EXPECT_OK(&env, ARGS("-P", "1"));
	ASSERT_UINT_EQ(env.port, 1);
}

static void test_interval_and_duration_range(void)
{
	EXPECT_REJECT("invalid --interval '0'", ARGS("-i", "0"));
	EXPECT_REJECT("invalid --interval '86401'", ARGS("-i", "86401"));
	EXPECT_REJECT("invalid --interval '1.5'", ARGS("-i", "1.5"));
	EXPECT_REJECT("invalid --duration '0'", ARGS("-d", "0"));
	EXPECT_REJECT("invalid --duration '2678401'", ARGS("-d", "2678401"));
	EXPECT_REJECT("invalid --duration '10s'", ARGS("-d", "10s"));
}

static void test_comm_length(void)
{
	struct env env;

	EXPECT_OK(&env, ARGS("-c", "fifteen-chars-x"));
	ASSERT_STR_EQ(env.comm, "fifteen-chars-x");
	EXPECT_REJECT("invalid --comm 'sixteen-chars-xx'", ARGS("-c", "sixteen-chars-xx"));
	EXPECT_REJECT("invalid --comm 'a-much-longer-command-name'",
		      ARGS("--comm", "a-much-longer-command-name"));
	EXPECT_REJECT("invalid --comm ''", ARGS("-c", ""));
}

static void test_events_option(void)
{
	struct env env;

	EXPECT_OK(&env, ARGS("-e", "connect,accept,send,recv,existing,bind"));
	ASSERT_UINT_EQ(env.events, DSTRACE_EVMASK_ALL);
	EXPECT_OK(&env, ARGS("-e", "connect,accept,send,recv"));
	ASSERT_UINT_EQ(env.events, 0xfu);
	EXPECT_OK(&env, ARGS("-e", "recv,connect"));
	ASSERT_UINT_EQ(env.events,
		       DSTRACE_EVMASK(DSTRACE_EV_CONNECT) | DSTRACE_EVMASK(DSTRACE_EV_RECV));
	EXPECT_REJECT("invalid --events 'bogus'", ARGS("-e", "bogus"));
	EXPECT_REJECT("invalid --events ''", ARGS("--events="));
	EXPECT_REJECT("invalid --events 'connect,bogus'", ARGS("-e", "connect,bogus"));
}

static void test_parse_events(void)
{
	unsigned int mask = 0xdead;

	ASSERT_INT_EQ(dstrace_parse_events("accept", &mask), 0);
	ASSERT_UINT_EQ(mask, DSTRACE_EVMASK(DSTRACE_EV_ACCEPT));
	ASSERT_INT_EQ(dstrace_parse_events("send,send", &mask), 0);
	ASSERT_UINT_EQ(mask, DSTRACE_EVMASK(DSTRACE_EV_SEND));
	ASSERT_INT_EQ(dstrace_parse_events("connect,accept,send,recv,existing,bind", &mask), 0);
	ASSERT_UINT_EQ(mask, DSTRACE_EVMASK_ALL);
	ASSERT_INT_EQ(dstrace_parse_events("bind", &mask), 0);
	ASSERT_UINT_EQ(mask, DSTRACE_EVMASK(DSTRACE_EV_BIND));
	/* names match whole, never as a prefix or with extra characters */
	ASSERT_INT_EQ(dstrace_parse_events("conn", &mask), -1);
	ASSERT_INT_EQ(dstrace_parse_events("connects", &mask), -1);
	ASSERT_INT_EQ(dstrace_parse_events("CONNECT", &mask), -1);
	ASSERT_INT_EQ(dstrace_parse_events("connect, accept", &mask), -1);
	ASSERT_INT_EQ(dstrace_parse_events("connect,,accept", &mask), -1);
	/* nothing selected is an error */
	ASSERT_INT_EQ(dstrace_parse_events("", &mask), -1);
	ASSERT_INT_EQ(dstrace_parse_events(",", &mask), -1);
}

static void test_ringbuf_range(void)
{
	struct env env;

	EXPECT_OK(&env, ARGS("--ringbuf-kb", "1048576"));
	ASSERT_UINT_EQ(env.ringbuf_kb, 1048576);
	EXPECT_OK(&env, ARGS("--ringbuf-kb=64"));
	ASSERT_UINT_EQ(env.ringbuf_kb, 64);
	EXPECT_REJECT("invalid --ringbuf-kb '1000'", ARGS("--ringbuf-kb", "1000"));
	EXPECT_REJECT("invalid --ringbuf-kb '6'", ARGS("--ringbuf-kb", "6"));
	EXPECT_REJECT("invalid --ringbuf-kb '2'", ARGS("--ringbuf-kb", "2"));
	EXPECT_REJECT("invalid --ringbuf-kb '0'", ARGS("--ringbuf-kb", "0"));
	EXPECT_REJECT("invalid --ringbuf-kb '2097152'", ARGS("--ringbuf-kb", "2097152"));
}

static void test_output_option(void)
{
	EXPECT_REJECT("invalid --output ''", ARGS("-o", ""));
}

static void test_metrics_file_option(void)
{
	struct env env;

	EXPECT_OK(&env, ARGS("--metrics-file", "/var/lib/node_exporter/dstrace.prom"));
	ASSERT_STR_EQ(env.metrics_file, "/var/lib/node_exporter/dstrace.prom");
	ASSERT_TRUE(env.metrics == NULL);
	EXPECT_OK(&env, ARGS("--metrics-file=m.prom", "--metrics", ":9464"));
	ASSERT_STR_EQ(env.metrics_file, "m.prom");
	ASSERT_STR_EQ(env.metrics, ":9464");
	EXPECT_REJECT("invalid --metrics-file '': expected a file name", ARGS("--metrics-file", ""));
}

/* --resolver-lib: none by default, repeatable up to DSTRACE_RESOLVER_LIBS_GIVEN_MAX, in order */
static void test_resolver_lib_option(void)
{
	struct env env;

	EXPECT_OK(&env, ARGS(NULL));
	ASSERT_INT_EQ(env.n_resolver_libs, 0);
	EXPECT_OK(&env, ARGS("--resolver-lib", "/a/libc.so.6", "--resolver-lib=/b/ld-musl.so.1"));
	ASSERT_INT_EQ(env.n_resolver_libs, 2);
	ASSERT_STR_EQ(env.resolver_libs[0], "/a/libc.so.6");
	ASSERT_STR_EQ(env.resolver_libs[1], "/b/ld-musl.so.1");
	EXPECT_OK(&env, ARGS("--resolver-lib", "1", "--resolver-lib", "2", "--resolver-lib", "3",
			     "--resolver-lib", "4", "--resolver-lib", "5", "--resolver-lib", "6"));
	ASSERT_INT_EQ(env.n_resolver_libs, DSTRACE_RESOLVER_LIBS_GIVEN_MAX);
	ASSERT_STR_EQ(env.resolver_libs[5], "6");
	EXPECT_REJECT("too many --resolver-lib options: at most 6",
		      ARGS("--resolver-lib", "1", "--resolver-lib", "2", "--resolver-lib", "3",
			   "--resolver-lib", "4", "--resolver-lib", "5", "--resolver-lib", "6",
			   "--resolver-lib", "7"));
	EXPECT_REJECT("invalid --resolver-lib '': expected the path of a C library",
		      ARGS("--resolver-lib", ""));
}

static void test_extra_argument(void)
{
	EXPECT_REJECT("unexpected argument 'extra'", ARGS("-j", "extra"));
	EXPECT_REJECT("unexpected argument '60'", ARGS("-d", "10", "60"));
}

static void test_unknown_option(void)
{
	struct env env;

	/* argp's own message (and its "Try --help" line): only the status is ours */
	ASSERT_TRUE(parse(&env, ARGS("--bogus")) != 0);
	ASSERT_TRUE(strstr(stderr_text, "bogus") != NULL);
	ASSERT_TRUE(parse(&env, ARGS("-x")) != 0);
	ASSERT_TRUE(parse(&env, ARGS("-p")) != 0); /* missing value */
}

static const CU_TestInfo tests[] = {
	{ "defaults", test_defaults },
	{ "short options", test_short_options },
	{ "long options", test_long_options },
	{ "attached values", test_attached_values },
	{ "--tcp and --udp", test_protocols },
	{ "--backend", test_backend },
	{ "dstrace_backend_parse", test_backend_parse },
	{ "a second parse starts over", test_second_parse_starts_over },
	{ "--pid range", test_pid_range },
	{ "--pid count", test_pid_count },
	{ "--port range", test_port_range },
	{ "--interval and --duration range", test_interval_and_duration_range },
	{ "--comm length", test_comm_length },
	{ "--events", test_events_option },
	{ "dstrace_parse_events", test_parse_events },
	{ "--ringbuf-kb range", test_ringbuf_range },
	{ "--output", test_output_option },
	{ "--metrics-file", test_metrics_file_option },
	{ "--resolver-lib", test_resolver_lib_option },
	{ "extra argument", test_extra_argument },
	{ "unknown option", test_unknown_option },
	CU_TEST_INFO_NULL,
};

static int options_cleanup(void)
{
	free_argv();
	return 0;
}

int register_options_tests(void)
{
	return unit_add_suite("options", tests, options_cleanup);
}
