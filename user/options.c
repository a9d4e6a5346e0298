// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Command line: argp filling one struct env; every value is range-checked here. */
#include <argp.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "format.h"
#include "options.h"

const char *argp_program_version = "dstrace " DSTRACE_VERSION;
const char *argp_program_bug_address = NULL;

static const char doc[] =
	"Report IPv4 traffic carried by AF_INET6 sockets through IPv4-mapped addresses "
	"(::ffff:a.b.c.d), per process.\n"
	"\n"
	"Each line is one mapped connect, accept, or the first datagram of a UDP flow sent or "
	"received; every datagram and byte is counted in the kernel for the per-process table "
	"printed at the end.\n"
	"\v"
	"EXAMPLES:\n"
	"  dstrace                    # until Ctrl-C, then the per-process table\n"
	"  dstrace -d 60 -j -o m.json # one minute of JSON Lines into m.json\n"
	"  dstrace -i 10              # per-process table every 10 s, no events\n"
	"  dstrace -c nginx -e accept # IPv4 clients nginx accepts on [::]\n"
	"  dstrace -p 1234 -p 5678    # only these processes\n"
	"  dstrace --udp -P 53        # mapped DNS: UDP with port 53 at either end\n"
	"  dstrace --audit -o /var/log/dstrace.jsonl --metrics :9464\n"
	"                             # production audit, Prometheus on 127.0.0.1:9464\n"
	"  dstrace report /var/log/dstrace.jsonl  # what breaks if IPv4 goes away\n";

enum {
	OPT_TCP = 0x100,
	OPT_UDP,
	OPT_BACKEND,
	OPT_RINGBUF_KB,
	OPT_AUDIT,
	OPT_METRICS,
	OPT_FLOOR,
	OPT_METRICS_FILE,
	OPT_RESOLVER_LIB,
};

static const struct argp_option opts[] = {
	{ "json", 'j', NULL, 0, "JSON Lines output", 0 },
	{ "interval", 'i', "SECONDS", 0, "No event lines; print the per-process table every SECONDS", 0 },
	{ "duration", 'd', "SECONDS", 0, "Stop after SECONDS", 0 },
	{ "pid", 'p', "PID", 0, "Only this process (repeatable)", 0 },
	{ "comm", 'c', "NAME", 0,
	  "Only processes named NAME (as ps shows them), and threads named NAME", 0 },
	{ "port", 'P', "PORT", 0, "Only traffic with PORT at either end", 0 },
	{ "tcp", OPT_TCP, NULL, 0, "Only TCP", 0 },
	{ "udp", OPT_UDP, NULL, 0, "Only UDP", 0 },
	{ "events", 'e', "LIST", 0,
	  "Only these events: comma-separated connect,accept,send,recv,existing,bind", 0 },
	{ "output", 'o', "FILE", 0, "Write to FILE instead of standard output", 0 },
	{ "backend", OPT_BACKEND, "NAME", 0,
	  "auto (default: the first of fentry, kprobe, tracepoint that works), fentry, kprobe or "
	  "tracepoint", 0 },
	{ "ringbuf-kb", OPT_RINGBUF_KB, "KB", 0,
	  "Ring buffer size in KiB, a power of two from 4 to 1048576 (default 1024)", 0 },
	{ "audit", OPT_AUDIT, NULL, 0,
	  "Audit mode: append one JSON record per program to the -o FILE every interval "
	  "(default 60 s) and at exit; SIGHUP reopens FILE", 0 },
	{ "metrics", OPT_METRICS, "ADDR:PORT", 0,
	  "Serve Prometheus metrics on http://ADDR:PORT/metrics (ADDR defaults to 127.0.0.1)", 0 },
	{ "metrics-file", OPT_METRICS_FILE, "PATH", 0,
	  "Write the same metrics to PATH (node_exporter's textfile collector) every interval "
	  "(every 10 s without -i) and at exit, through PATH.tmp and rename", 0 },
	{ "resolver-lib", OPT_RESOLVER_LIB, "PATH", 0,
	  "Another C library whose getaddrinfo() names peers, besides the one dstrace runs "
	  "with, the 32-bit one and those of containers (repeatable)", 0 },
	{ "verbose", 'v', NULL, 0,
	  "Print libbpf's messages, the backend chosen and its programs not attached here", 0 },
	{ NULL, 'h', NULL, OPTION_HIDDEN, "Show this help", 0 },
	/* make bench's floor: every hook attached, every program returning at once */
	{ "floor", OPT_FLOOR, NULL, OPTION_HIDDEN, "Attach programs that do nothing (benchmark)", 0 },
	{},
};

int dstrace_parse_events(const char *list, unsigned int *mask)
{
	const char *p = list;

	*mask = 0;
	while (*p) {
		size_t len = strcspn(p, ",");
		int kind;

		for (kind = 0; kind < DSTRACE_EV_KINDS; kind++) {
			const char *name = dstrace_event_name(kind);

			if (strlen(name) == len && !strncmp(p, name, len))
				break;
		}
		if (kind == DSTRACE_EV_KINDS)
			return -1;
		*mask |= DSTRACE_EVMASK(kind);
		p += len;
		if (*p == ',')
			p++;
	}
	return *mask ? 0 : -1;
}

static const char *const backend_names[DSTRACE_BACKEND_MAX] = {
	[DSTRACE_BACKEND_AUTO] = "auto",
	[DSTRACE_BACKEND_FENTRY] = "fentry",
	[DSTRACE_BACKEND_KPROBE] = "kprobe",
	[DSTRACE_BACKEND_TRACEPOINT] = "tracepoint",
};

const char *dstrace_backend_name(enum dstrace_backend_kind kind)
{
	return kind < DSTRACE_BACKEND_MAX ? backend_names[kind] : "?";
}

int dstrace_backend_parse(const char *name, enum dstrace_backend_kind *kind)
{
	for (int i = 0; i < DSTRACE_BACKEND_MAX; i++) {
		if (!strcmp(name, backend_names[i])) {
			*kind = i;
			return 0;
		}
	}
	return -1;
}

/* Whole decimal number in [min, max]; 0 on success. */
static int parse_ulong(const char *arg, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!arg || *arg < '0' || *arg > '9') /* no sign, no leading space */
		return -1;
	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

#define FAIL(state, ...)                                    \
	do {                                                \
		argp_failure(state, 2, 0, __VA_ARGS__);     \
		return EINVAL;                              \
	} while (0)

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct env *env = state->input;
	unsigned long v;

	switch (key) {
	case 'j':
		env->json = true;
		break;
	case 'v':
		env->verbose = true;
		break;
	case 'i':
		if (parse_ulong(arg, 1, 86400, &v))
			FAIL(state, "invalid --interval '%s': expected seconds from 1 to 86400", arg);
		env->interval_s = v;
		break;
	case 'd':
		if (parse_ulong(arg, 1, 31 * 86400, &v))
			FAIL(state, "invalid --duration '%s': expected seconds from 1 to 2678400", arg);
		env->duration_s = v;
		break;
	case 'p':
		if (parse_ulong(arg, 1, INT_MAX, &v))
			FAIL(state, "invalid --pid '%s': expected a process id", arg);
		if (env->npids == DSTRACE_MAX_PIDS)
			FAIL(state, "too many --pid options: at most %d", DSTRACE_MAX_PIDS);
		env->pids[env->npids++] = v;
		break;
	case 'c':
		if (!*arg || strlen(arg) >= DSTRACE_COMM_LEN)
			FAIL(state, "invalid --comm '%s': expected 1 to %d characters", arg,
			     DSTRACE_COMM_LEN - 1);
		strncpy(env->comm, arg, sizeof(env->comm) - 1);
		break;
	case 'P':
		if (parse_ulong(arg, 1, 65535, &v))
			FAIL(state, "invalid --port '%s': expected a port from 1 to 65535", arg);
		env->port = v;
		break;
	case OPT_TCP:
		env->protos |= DSTRACE_PROTOMASK(DSTRACE_PROTO_TCP);
		break;
	case OPT_UDP:
		env->protos |= DSTRACE_PROTOMASK(DSTRACE_PROTO_UDP);
		break;
	case 'e':
		if (dstrace_parse_events(arg, &env->events))
			FAIL(state, "invalid --events '%s': expected a list of connect,accept,send,recv,existing,bind",
			     arg);
		break;
	case 'o':
		if (!*arg)
			FAIL(state, "invalid --output '': expected a file name");
		env->output = arg;
		break;
	case OPT_BACKEND:
		if (dstrace_backend_parse(arg, &env->backend))
			FAIL(state,
			     "invalid --backend '%s': expected auto, fentry, kprobe or tracepoint",
			     arg);
		break;
	case OPT_RINGBUF_KB:
		if (parse_ulong(arg, 4, 1048576, &v) || (v & (v - 1)))
			FAIL(state, "invalid --ringbuf-kb '%s': expected a power of two from 4 to 1048576",
			     arg);
		env->ringbuf_kb = v;
		break;
	case OPT_AUDIT:
		env->audit = true;
		break;
	case OPT_FLOOR:
		env->floor = true;
		break;
	case OPT_RESOLVER_LIB:
		if (!*arg)
			FAIL(state, "invalid --resolver-lib '': expected the path of a C library");
		if (env->n_resolver_libs == DSTRACE_RESOLVER_LIBS_GIVEN_MAX)
			FAIL(state, "too many --resolver-lib options: at most %d",
			     DSTRACE_RESOLVER_LIBS_GIVEN_MAX);
		env->resolver_libs[env->n_resolver_libs++] = arg;
		break;
	case OPT_METRICS:
		if (!*arg)
			FAIL(state, "invalid --metrics '': expected ADDR:PORT");
		env->metrics = arg;
		break;
	case OPT_METRICS_FILE:
		if (!*arg)
			FAIL(state, "invalid --metrics-file '': expected a file name");
		env->metrics_file = arg;
		break;
	case 'h':
		argp_state_help(state, stdout, ARGP_HELP_STD_HELP);
		break;
	case ARGP_KEY_END:
		if (env->audit && !env->output)
			FAIL(state, "--audit needs -o FILE: the file the audit records are appended to");
		if (env->audit && env->json)
			FAIL(state, "--audit writes its own JSON records: drop -j");
		break;
	case ARGP_KEY_ARG:
		FAIL(state, "unexpected argument '%s'", arg);
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp argp = { opts, parse_opt, NULL, doc, NULL, NULL, NULL };

int dstrace_parse_args(int argc, char **argv, struct env *env, bool exit_on_error)
{
	int err;

	memset(env, 0, sizeof(*env));
	env->ringbuf_kb = DSTRACE_DEFAULT_RINGBUF_KB;
	argp_err_exit_status = 2;
	err = argp_parse(&argp, argc, argv, exit_on_error ? 0 : ARGP_NO_EXIT, NULL, env);
	if (err)
		return err;
	if (!env->protos)
		env->protos = DSTRACE_PROTOMASK_ALL;
	if (!env->events)
		env->events = DSTRACE_EVMASK_ALL;
	if (env->audit && !env->interval_s)
		env->interval_s = DSTRACE_AUDIT_DEFAULT_INTERVAL;
	return 0;
}
