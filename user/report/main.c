// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report: the command line, strict argp as in user/options.c: the options, the
 * files, the exit status (0 report printed, 1 an input unreadable, 2 usage), the
 * diagnostics, one line each. Every FILE is opened before anything is read, so that a
 * missing one fails before any output.
 */
#include <argp.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define NAME "dstrace report"

static const char doc[] =
	"Summarize dstrace audit files (written by dstrace --audit -o FILE): per program, the IPv4 "
	"traffic its AF_INET6 sockets carry through IPv4-mapped addresses (::ffff:a.b.c.d), and "
	"what would break if the host lost IPv4 or if net.ipv6.bindv6only=1 were set.\n"
	"FILE may be - for standard input; give the files of several hosts together.\n"
	"\v"
	"Exit status: 0 when the report was printed (also when there were no audit records), 1 "
	"when a FILE could not be opened or read, 2 on a usage error.\n"
	"\n"
	"EXAMPLES:\n"
	"  dstrace report /var/log/dstrace-audit.jsonl\n"
	"  dstrace report web1.jsonl web2.jsonl\n"
	"  ssh web1 cat /var/log/dstrace-audit.jsonl | dstrace report -\n"
	"  dstrace report -j *.jsonl | jq '.programs[] | select(.depends) | .exe'\n";

static const struct argp_option opts[] = {
	{ "json", 'j', NULL, 0, "One JSON document (see docs/report-format.md) instead of text", 0 },
	{ "help", 'h', NULL, 0, "Show this help", 0 },
	{},
};

/* What the command line says, and where to say things. */
struct report_args {
	bool json, help;
	char **files;
	int nfiles;
	FILE *out, *err;
	bool failed; /* a diagnostic was printed */
};

/* One line on err. argp's own argp_failure prints nothing under ARGP_NO_ERRS, which keeps
 * getopt quiet on stderr: the caller's err stream gets every diagnostic instead. */
static void usage_error(struct report_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void usage_error(struct report_args *a, const char *fmt, ...)
{
	va_list ap;

	fputs(NAME ": ", a->err);
	va_start(ap, fmt);
	vfprintf(a->err, fmt, ap);
	va_end(ap);
	fputs("; try '" NAME " --help'\n", a->err);
	a->failed = true;
}

/* argp does not say which option getopt refused: the first argument before "--" that is an
 * option of neither name nor letter (no option takes a value: "--json=yes" is one). */
static void say_bad_option(const struct argp_state *state, struct report_args *a)
{
	for (int i = 1; i < state->argc && strcmp(state->argv[i], "--"); i++) {
		const char *arg = state->argv[i];

		if (arg[0] != '-' || !arg[1])
			continue; /* a FILE, or - */
		if (arg[1] == '-') {
			size_t len = strlen(arg + 2);

			if (strchr(arg, '=') || !len || (strncmp(arg + 2, "json", len) &&
							 strncmp(arg + 2, "help", len))) {
				usage_error(a, "invalid option '%s'", arg);
				return;
			}
			continue;
		}
		for (const char *c = arg + 1; *c; c++) {
			if (*c != 'j' && *c != 'h') {
				usage_error(a, "invalid option '-%c'", *c);
				return;
			}
		}
	}
	usage_error(a, "invalid arguments");
}

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct report_args *a = state->input;

	switch (key) {
	case 'j':
		a->json = true;
		break;
	case 'h':
		argp_help(state->root_argp, a->out, ARGP_HELP_STD_HELP, (char *)NAME);
		a->help = true;
		return ECANCELED; /* nothing else is looked at, as with getopt's --help */
	case ARGP_KEY_ARG:
		a->files[a->nfiles++] = arg;
		break;
	case ARGP_KEY_NO_ARGS:
		usage_error(a, "no audit file given (FILE, or - for standard input)");
		return EINVAL;
	case ARGP_KEY_ERROR:
		if (!a->help && !a->failed)
			say_bad_option(state, a);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp argp = { opts, parse_opt, "FILE...", doc, NULL, NULL, NULL };

/* 0 (with a->help: the help is on a->out), or 2 after one line on a->err (1 when out of
 * memory). */
static int parse_args(int argc, char **argv, struct report_args *a)
{
	char **args = calloc(argc + 1, sizeof(*args));
	int err;

	a->files = calloc(argc + 1, sizeof(*a->files));
	if (!args || !a->files) {
		free(args);
		fprintf(a->err, NAME ": out of memory\n");
		return 1;
	}
	memcpy(args, argv, argc * sizeof(*args));
	args[0] = (char *)NAME; /* argp names the program after argv[0] */
	err = argp_parse(&argp, argc, args, ARGP_NO_EXIT | ARGP_NO_ERRS | ARGP_NO_HELP, NULL, a);
	free(args);
	if (a->help)
		return fflush(a->out) ? 1 : 0;
	return err ? 2 : 0;
}

/* Open every file, then read them all into r. 0, or 1 after one line on err. */
static int read_files(struct report *r, const struct report_args *a, FILE **in)
{
	for (int i = 0; i < a->nfiles; i++) {
		const char *name = a->files[i];

		in[i] = strcmp(name, "-") ? fopen(name, "r") : stdin;
		if (!in[i]) {
			fprintf(a->err, NAME ": cannot open '%s': %s\n", name, strerror(errno));
			return 1;
		}
	}
	for (int i = 0; i < a->nfiles; i++) {
		int err = report__read(r, in[i], a->files[i]);

		if (err == -ENOMEM)
			return -ENOMEM;
		if (err) {
			fprintf(a->err, NAME ": cannot read '%s': %s\n", a->files[i], strerror(-err));
			return 1;
		}
	}
	return 0;
}

/* The report on a->out (and with --json its warnings on a->err). 0, 1, or -ENOMEM. */
static int print(const struct report *r, const struct report_args *a)
{
	int err;

	if (a->json) {
		report_put_warnings(a->err, r);
		if (!r->audit_records)
			fprintf(a->err, NAME ": no audit records in the input\n");
		err = report__print_json(r, a->out);
	} else {
		err = report__print_text(r, a->out);
	}
	if (err == -ENOMEM)
		return err;
	if (err) {
		fprintf(a->err, NAME ": cannot write the report: %s\n", strerror(EIO));
		return 1;
	}
	return 0;
}

static int report_files(const struct report_args *a)
{
	FILE **in = calloc(a->nfiles, sizeof(*in));
	struct report *r = report__new();
	int status = -ENOMEM;

	if (in && r)
		status = read_files(r, a, in);
	if (!status)
		status = report__finish(r);
	if (!status)
		status = print(r, a);
	if (status == -ENOMEM) {
		fprintf(a->err, NAME ": out of memory\n");
		status = 1;
	}
	for (int i = 0; in && i < a->nfiles; i++) {
		if (in[i] && in[i] != stdin)
			fclose(in[i]);
	}
	free(in);
	report__free(r);
	return status;
}

int dstrace_report_run(int argc, char **argv, FILE *out, FILE *err)
{
	struct report_args a = { .out = out, .err = err };
	int status = parse_args(argc, argv, &a);

	if (!status && !a.help)
		status = report_files(&a);
	free(a.files);
	return status;
}

int dstrace_report_main(int argc, char **argv)
{
	return dstrace_report_run(argc, argv, stdout, stderr);
}
