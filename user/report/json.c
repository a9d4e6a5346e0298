// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report --json: the report as one JSON document on one line (docs/report-format.md,
 * "JSON"). Every value is built with jansson (json_pack) and written with json_dumpf, keys
 * in the order they are added; the document's frame is written around the elements of its
 * three arrays, one at a time. The counters of a program and a run carry the audit records'
 * keys, in their order (schema.h). Every count is at most 2^63-1 (COUNT_MAX): a json_int_t.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "format.h"
#include "internal.h"
#include "schema.h"

#define JI(v) ((json_int_t)(v))

/* s as a JSON string; bytes that are not UTF-8 (a file name given on the command line can
 * hold any) become '?'. NULL only when out of memory. */
static json_t *j_str(const char *s)
{
	json_t *v = json_string(s);
	char *copy;

	if (v || !(copy = strdup(s)))
		return v;
	for (unsigned char *u = (unsigned char *)copy; *u; u++) {
		if (*u >= 0x80)
			*u = '?';
	}
	v = json_string(copy);
	free(copy);
	return v;
}

static json_t *j_str_or_null(const char *s)
{
	return s ? j_str(s) : json_null();
}

static json_t *j_ts(int64_t us)
{
	char buf[TS_BUF];

	if (us == TS_UNKNOWN)
		return json_null();
	fmt_ts(us, true, buf, sizeof(buf));
	return json_string(buf);
}

/* Appends v to a (which takes it); false when either is NULL. */
static bool append(json_t *a, json_t *v)
{
	return a && v && !json_array_append_new(a, v);
}

/* schema.h's counters of c added to obj: "connect":{"tcp":N,"udp":N},...,"failed":{"total":N}.
 * false when out of memory. */
static bool add_counts(json_t *obj, const struct report_counts *c)
{
	const struct dstrace_count_key *keys = dstrace_audit_count_keys;
	const uint64_t v[DSTRACE_AUDIT_COUNTS_N] = {
#define VALUE(o, k, field, s) c->field,
		DSTRACE_AUDIT_COUNTS(VALUE)
#undef VALUE
	};

	for (size_t i = 0; i < DSTRACE_AUDIT_COUNTS_N; i++) {
		json_t *o = json_object_get(obj, keys[i].obj);

		if (!o && json_object_set_new(obj, keys[i].obj, o = json_object()))
			return false;
		if (json_object_set_new(o, keys[i].key, json_integer(JI(v[i]))))
			return false;
	}
	return true;
}

/* The report's members of "failed", after the record's "total". */
static bool add_failed(json_t *failed, const struct report_program *p)
{
	json_t *by = json_object();

	for (uint32_t i = 0; by && i < p->nerrnos; i++) {
		if (json_object_set_new(by, p->errnos[i].name, json_integer(JI(p->errnos[i].count))))
			return json_decref(by), false;
	}
	return !json_object_set_new(failed, "enetunreach", json_integer(JI(p->enetunreach))) &&
	       !json_object_set_new(failed, "by_errno", by) &&
	       !json_object_set_new(failed, "other", json_integer(JI(p->errnos_other)));
}

static json_t *j_program_ports(const struct report_program *p)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a && i < p->nports; i++) {
		if (!append(a, json_integer(p->ports[i])))
			return json_decref(a), NULL;
	}
	return a;
}

static json_t *j_program_inbound(const struct report_program *p)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a && i < p->ninbound; i++) {
		const struct report_port_group *g = &p->inbound[i];

		if (!append(a, json_pack("{s:s,s:i,s:I,s:I,s:b}", "proto",
					 dstrace_proto_name(g->proto), "port", g->port, "count",
					 JI(g->count), "peers", JI(g->npeers), "more_peers",
					 g->more_peers)))
			return json_decref(a), NULL;
	}
	return a;
}

static json_t *j_program_peers(const struct report_program *p)
{
	json_t *a = json_array();
	char addr[INET_ADDRSTRLEN];

	for (uint32_t i = 0; a && i < p->npeers; i++) {
		const struct report_peer *peer = &p->peers[i];

		dstrace_format_ipv4(peer->addr, addr, sizeof(addr));
		if (!append(a, json_pack("{s:s,s:s,s:s,s:i,s:I,s:b}", "dir",
					 peer->dir == REPORT_DIR_IN ? "in" : "out", "proto",
					 dstrace_proto_name(peer->proto), "addr", addr, "port",
					 peer->port, "count", JI(peer->count), "reply", peer->reply)))
			return json_decref(a), NULL;
	}
	return a;
}

/* Who: the program's identity and when it was seen. */
static json_t *j_program_identity(const struct report_program *p)
{
	return json_pack("{s:o,s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:o,s:o}", "host",
			 j_str(p->host), "exe", j_str(p->exe), "comm", j_str(p->comm ? p->comm : ""),
			 "uid", JI(p->uid), "cgroup",
			 j_str_or_null(p->cgroup[0] ? p->cgroup : NULL), "container",
			 j_str_or_null(p->container), "runtime", j_str_or_null(p->runtime), "pod_uid",
			 j_str_or_null(p->pod_uid), "qos", j_str_or_null(p->qos), "netns",
			 JI(p->netns), "runs", JI(p->runs),
			 "pids_max", JI(p->pids_max), "first_seen", j_ts(p->first_seen), "last_seen",
			 j_ts(p->last_seen));
}

static json_t *j_program_counts(const struct report_program *p)
{
	json_t *obj = json_pack("{s:b,s:I,s:I}", "depends", p->depends, "activity",
				JI(p->activity), "bytes", JI(p->bytes));

	if (obj && add_counts(obj, &p->c) && add_failed(json_object_get(obj, "failed"), p))
		return obj;
	json_decref(obj);
	return NULL;
}

static json_t *j_program_peer_info(const struct report_program *p)
{
	return json_pack("{s:o,s:I,s:o,s:o,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I}}", "listen_ports",
			 j_program_ports(p), "ports_dropped", JI(p->ports_dropped), "inbound",
			 j_program_inbound(p), "peers", j_program_peers(p), "peers_dropped",
			 JI(p->peers_dropped), "peers_capped", JI(p->peers_capped),
			 "udp_reply_datagrams", JI(p->udp_reply_datagrams), "unlisted", "in_tcp",
			 JI(p->in_tcp_unlisted), "in_udp", JI(p->in_udp_unlisted), "out_tcp",
			 JI(p->out_tcp_unlisted), "out_udp", JI(p->out_udp_unlisted));
}

/* "names":[{"name":..,"answer":..,"mapped_by":..,"count":N,"failed":N,"fallbacks":N,
 * "fix":..}] */
static json_t *j_program_names(const struct report_program *p)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a && i < p->nnames; i++) {
		const struct report_name *n = &p->names[i];

		if (!append(a, json_pack("{s:o,s:s,s:s,s:I,s:I,s:I,s:s}", "name", j_str(n->name),
					 "answer", n->flags & DSTRACE_NAME_AAAA ? "a+aaaa" : "a-only",
					 "mapped_by",
					 n->flags & DSTRACE_NAME_RESOLVER_MAPPED ? "resolver" : "program",
					 "count", JI(n->count), "failed", JI(n->failed), "fallbacks",
					 JI(n->fallbacks), "fix", name_fix(n))))
			return json_decref(a), NULL;
	}
	return a;
}

static json_t *j_program_verdict(const struct report_program *p)
{
	return json_pack("{s:b,s:b,s:b,s:s?,s:s?,s:s?}", "breaks_without_ipv4",
			 p->breaks_without_ipv4, "breaks_with_bindv6only",
			 p->breaks_with_bindv6only, "already_failing", p->enetunreach > 0,
			 "without_ipv4", p->verdict_ipv4, "with_bindv6only", p->verdict_bindv6only,
			 "failing", p->verdict_failing);
}

/* The parts in order, as one object; NULL when out of memory. */
static json_t *j_program(const struct report_program *p)
{
	json_t *obj = j_program_identity(p), *part;

	if (!obj)
		return NULL;
	part = j_program_counts(p);
	if (!part || json_object_update(obj, part))
		goto fail;
	json_decref(part);
	part = j_program_peer_info(p);
	if (!part || json_object_update(obj, part))
		goto fail;
	json_decref(part);
	if (json_object_set_new(obj, "names", j_program_names(p)) ||
	    json_object_set_new(obj, "names_dropped", json_integer(JI(p->names_dropped))) ||
	    json_object_set_new(obj, "verdict", j_program_verdict(p)))
		return json_decref(obj), NULL;
	return obj;
fail:
	json_decref(part);
	json_decref(obj);
	return NULL;
}

static json_t *j_drops(const struct report_drops *d)
{
	json_t *obj = json_object();
	uint64_t v[DSTRACE_DROPS_N];

	report_drops_values(d, v);
	for (size_t i = 0; obj && i < DSTRACE_DROPS_N; i++) {
		if (json_object_set_new(obj, dstrace_drop_names[i], json_integer(JI(v[i])))) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

/* "blind": what the run's backend could not see on its kernel */
static json_t *j_blind(const struct report_run *run)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a && i < run->nblind; i++)
		if (!append(a, j_str(run->blind[i])))
			return json_decref(a), NULL;
	return a;
}

static json_t *j_run(const struct report_run *run)
{
	const uint64_t v[DSTRACE_RUN_COUNTS_N] = {
#define VALUE(k) run->k,
		DSTRACE_RUN_COUNTS(VALUE)
#undef VALUE
	};
	json_t *obj = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:b,s:b}", "host",
				j_str(run->host), "run", j_str(run->run), "backend",
				j_str_or_null(run->backend), "started", j_ts(run->started),
				"first_ts", j_ts(run->first_ts), "last_ts", j_ts(run->last_ts),
				"audit_records", JI(run->audit_records), "programs_seen",
				JI(run->programs_seen), "audit_run", run->have_run_record, "final",
				run->final);

	for (size_t i = 0; obj && i < DSTRACE_RUN_COUNTS_N; i++) {
		if (json_object_set_new(obj, dstrace_run_count_keys[i], json_integer(JI(v[i]))))
			return json_decref(obj), NULL;
	}
	if (obj && (json_object_set_new(obj, "drops", j_drops(&run->drops)) ||
		    json_object_set_new(obj, "write_errors",
					json_integer(JI(run->drops.write_errors))) ||
		    json_object_set_new(obj, "blind", j_blind(run))))
		return json_decref(obj), NULL;
	return obj;
}

static json_t *j_host(const struct report *r, uint32_t h)
{
	uint32_t runs = 0, programs = 0, depending = 0;

	for (uint32_t i = 0; i < r->nruns; i++)
		runs += r->runs[i].host == r->hosts[h];
	for (uint32_t i = 0; i < r->nprograms; i++) {
		programs += r->programs[i].host == r->hosts[h];
		depending += r->programs[i].host == r->hosts[h] && r->programs[i].depends;
	}
	return json_pack("{s:o,s:I,s:I,s:I}", "host", j_str(r->hosts[h]), "runs", JI(runs),
			 "programs", JI(programs), "depending", JI(depending));
}

static json_t *j_input(const struct report *r)
{
	json_t *files = json_array(), *first = json_null();

	for (uint32_t i = 0; i < r->nfiles; i++) {
		if (!append(files, j_str(r->files[i])))
			return json_decref(files), NULL;
	}
	if (r->malformed)
		first = json_pack("{s:o,s:I,s:s}", "file", j_str(r->first_malformed_file), "line",
				  JI(r->first_malformed_line), "reason", r->first_malformed_reason);
	return json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o}", "files", files, "lines",
			 JI(r->lines), "audit_records", JI(r->audit_records), "audit_run_records",
			 JI(r->run_records), "ignored_records", JI(r->ignored_records),
			 "malformed_lines", JI(r->malformed), "first_malformed", first, "first_ts",
			 j_ts(r->first_ts), "last_ts", j_ts(r->last_ts));
}

static bool j_complete(const struct report *r)
{
	return !r->lost && !r->evictions && !r->programs_dropped && !r->over_programs &&
	       !r->over_runs && !r->over_entries && !report_drops_any(&r->drops);
}

static json_t *j_head(const struct report *r)
{
	return json_pack("{s:s,s:i,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b},s:o,"
			 "s:{s:I,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I},s:o,s:I}}",
			 "type", "dstrace_report", "version", 1, "summary", "programs",
			 JI(r->depending), "hosts", JI(r->depending_hosts), "breaks_without_ipv4",
			 JI(r->breaks_without_ipv4), "breaks_with_bindv6only",
			 JI(r->breaks_with_bindv6only), "already_failing", JI(r->already_failing),
			 "programs_seen", JI(r->nprograms), "hosts_seen", JI(r->nhosts), "complete",
			 j_complete(r), "input", j_input(r), "completeness", "lost", JI(r->lost),
			 "evictions", JI(r->evictions), "programs_dropped", JI(r->programs_dropped),
			 "runs_incomplete", JI(r->runs_incomplete), "runs_without_final",
			 JI(r->runs_without_final), "skipped_records", "programs",
			 JI(r->over_programs), "runs", JI(r->over_runs), "entries", JI(r->over_entries),
			 "drops", j_drops(&r->drops), "write_errors", JI(r->drops.write_errors));
}

#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

/* The buffer a value is dumped into before one fwrite: json_dumpf writes each token with a
 * stdio call of its own, which made --json twice as slow as the text. */
struct dump_buf {
	char *s;
	size_t size;
};

/* v (taken) written out; 0, -ENOMEM (v is NULL) or -EIO. */
static int dump(json_t *v, struct dump_buf *b, FILE *out)
{
	size_t n;

	if (!v)
		return -ENOMEM;
	n = json_dumpb(v, b->s, b->size, DUMP_FLAGS);
	if (n > b->size) {
		char *s = realloc(b->s, n);

		if (!s) {
			json_decref(v);
			return -ENOMEM;
		}
		b->s = s;
		b->size = n;
		n = json_dumpb(v, b->s, b->size, DUMP_FLAGS);
	}
	json_decref(v);
	if (!n)
		return -ENOMEM;
	return fwrite(b->s, 1, n, out) == n ? 0 : -EIO;
}

/* The head of the document (everything before "hosts"), without its closing brace: the
 * arrays follow, one element at a time, so that memory holds one program's tree, not the
 * whole report's. */
static int dump_head(const struct report *r, FILE *out)
{
	json_t *head = j_head(r);
	char *s = head ? json_dumps(head, DUMP_FLAGS) : NULL;
	size_t len = s ? strlen(s) : 0;
	int err = 0;

	json_decref(head);
	if (!s)
		return -ENOMEM;
	if (fwrite(s, 1, len - 1, out) != len - 1) /* all but the final '}' */
		err = -EIO;
	free(s);
	return err;
}

int report__print_json(const struct report *r, FILE *out)
{
	struct dump_buf b = {};
	int err = dump_head(r, out);

	fputs(",\"hosts\":[", out);
	for (uint32_t i = 0; !err && i < r->nhosts; i++)
		err = (i && fputc(',', out) == EOF) ? -EIO : dump(j_host(r, i), &b, out);
	fputs("],\"runs\":[", out);
	for (uint32_t i = 0; !err && i < r->nruns; i++)
		err = (i && fputc(',', out) == EOF) ? -EIO : dump(j_run(&r->runs[i]), &b, out);
	fputs("],\"programs\":[", out);
	for (uint32_t i = 0; !err && i < r->nprograms; i++)
		err = (i && fputc(',', out) == EOF) ? -EIO : dump(j_program(&r->programs[i]), &b, out);
	fputs("]}\n", out);
	free(b.s);
	if (err)
		return err;
	return fflush(out) || ferror(out) ? -EIO : 0;
}
