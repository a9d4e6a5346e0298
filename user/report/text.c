// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report: the text output (docs/report-format.md, "Text"): the summary line, the
 * warnings, one block per program that depends or failed, then the verdict sections. Names
 * and paths come from the audited hosts: control characters print as '?', so that no input
 * can forge a line or send a terminal escape.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "format.h"
#include "internal.h"

/* Bytes of s, with control characters (C0, DEL, C1) as '?'. */
static void put_safe(FILE *out, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	for (; *u; u++) {
		if (*u < 0x20 || *u == 0x7f) {
			fputc('?', out);
		} else if (u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f) {
			fputc('?', out);
			u++;
		} else {
			fputc(*u, out);
		}
	}
}

/* "nginx (/usr/sbin/nginx, uid 33, cgroup /system.slice/nginx.service) on web1" */
static void put_label(FILE *out, const struct report_program *p)
{
	put_safe(out, p->comm && p->comm[0] ? p->comm : "?");
	fputs(" (", out);
	put_safe(out, p->exe);
	fprintf(out, ", uid %u, cgroup ", p->uid);
	put_safe(out, p->cgroup[0] ? p->cgroup : "?");
	if (p->container) {
		char id[13];

		/* the short id, as docker ps shows it */
		dstrace_ascii_safe(id, sizeof(id), p->container, 12);
		fprintf(out, ", container %s", id);
	}
	if (p->show_netns)
		fprintf(out, ", netns %" PRIu64, p->netns);
	fputs(") on ", out);
	put_safe(out, p->host);
}

static void put_peer_list(FILE *out, const struct report_program *p, uint8_t dir, uint8_t proto,
			  int port, bool with_port)
{
	uint32_t shown = 0, n = 0;
	char addr[INET_ADDRSTRLEN];

	for (uint32_t i = 0; i < p->npeers; i++) {
		const struct report_peer *peer = &p->peers[i];

		if (peer->dir != dir || peer->proto != proto || (port >= 0 && peer->port != port) ||
		    (dir == REPORT_DIR_IN && proto == DSTRACE_PROTO_UDP && port >= 0 && peer->reply))
			continue;
		n++;
		if (shown == LIST_MAX)
			continue;
		dstrace_format_ipv4(peer->addr, addr, sizeof(addr));
		fprintf(out, "%s%s", shown ? ", " : ": ", addr);
		if (with_port)
			fprintf(out, ":%u", peer->port);
		fprintf(out, " (%" PRIu64 ")", peer->count);
		shown++;
	}
	if (n > shown)
		fprintf(out, ", and %u more", n - shown);
}

/* " sent 11000 TCP bytes, 400 UDP bytes", nothing when both are 0. */
static void put_bytes(FILE *out, const char *what, uint64_t tcp, uint64_t udp)
{
	if (!tcp && !udp)
		return;
	fprintf(out, " %s", what);
	if (tcp)
		fprintf(out, " %" PRIu64 " TCP %s", tcp, plural(tcp, "byte", "bytes"));
	if (udp)
		fprintf(out, "%s %" PRIu64 " UDP %s", tcp ? "," : "", udp, plural(udp, "byte", "bytes"));
}

/* "  inbound   tcp port 8080: 9 connections from 3 peers: ..." per port group. */
static void put_inbound(FILE *out, const struct report_program *p)
{
	bool first = true;

	for (uint32_t i = 0; i < p->ninbound; i++) {
		const struct report_port_group *g = &p->inbound[i];
		bool tcp = g->proto == DSTRACE_PROTO_TCP;

		fprintf(out, "  %-9s %s port ", first ? "inbound" : "", dstrace_proto_name(g->proto));
		if (g->port)
			fprintf(out, "%u", g->port);
		else
			fputc('?', out); /* dstrace did not learn it */
		first = false;
		if (g->count || g->more_peers)
			fprintf(out, ": %" PRIu64 " %s", g->count,
				tcp ? plural(g->count, "connection", "connections") :
				      plural(g->count, "datagram", "datagrams"));
		if (g->npeers)
			fprintf(out, " from %s%u %s", g->more_peers ? "at least " : "", g->npeers,
				plural(g->npeers, "peer", "peers"));
		put_peer_list(out, p, REPORT_DIR_IN, g->proto, g->port, false);
		fputc('\n', out);
	}
	if (p->in_tcp_unlisted) {
		fprintf(out, "  %-9s tcp: %" PRIu64 " %s from peers not listed\n",
			first ? "inbound" : "", p->in_tcp_unlisted,
			plural(p->in_tcp_unlisted, "connection", "connections"));
		first = false;
	}
	if (p->c.sent_udp_replies)
		fprintf(out, "  %-9s udp replies sent to its clients: %" PRIu64 "\n",
			first ? "inbound" : "", p->c.sent_udp_replies);
}

static void put_outbound(FILE *out, const struct report_program *p)
{
	uint32_t n = count_peers(p, REPORT_DIR_OUT, DSTRACE_PROTO_TCP);
	bool first = true;

	if (p->c.connect_tcp || n) {
		fprintf(out, "  %-9s tcp connect: %" PRIu64 " %s", "outbound", p->c.connect_tcp,
			plural(p->c.connect_tcp, "connection", "connections"));
		if (n)
			fprintf(out, " to %u %s", n, plural(n, "peer", "peers"));
		put_peer_list(out, p, REPORT_DIR_OUT, DSTRACE_PROTO_TCP, -1, true);
		if (p->out_tcp_unlisted)
			fprintf(out, " (%" PRIu64 " to peers not listed)", p->out_tcp_unlisted);
		fputc('\n', out);
		first = false;
	}
	n = count_peers(p, REPORT_DIR_OUT, DSTRACE_PROTO_UDP);
	if (udp_own_sends(p) || p->c.connect_udp || n) {
		fprintf(out, "  %-9s udp send: %" PRIu64 " %s", first ? "outbound" : "",
			udp_own_sends(p), plural(udp_own_sends(p), "datagram", "datagrams"));
		/* the bytes are of every datagram sent: with replies, said with them */
		if (p->c.sent_udp_replies)
			fprintf(out, " and %" PRIu64 " %s to clients, %" PRIu64 " bytes in all",
				p->c.sent_udp_replies,
				plural(p->c.sent_udp_replies, "reply", "replies"),
				p->c.sent_udp_bytes);
		else
			fprintf(out, ", %" PRIu64 " bytes", p->c.sent_udp_bytes);
		if (p->c.connect_udp)
			fprintf(out, ", %" PRIu64 " %s", p->c.connect_udp,
				plural(p->c.connect_udp, "connect", "connects"));
		if (n)
			fprintf(out, ", to %u %s", n, plural(n, "peer", "peers"));
		put_peer_list(out, p, REPORT_DIR_OUT, DSTRACE_PROTO_UDP, -1, true);
		if (p->out_udp_unlisted)
			fprintf(out, " (%" PRIu64 " to peers not listed)", p->out_udp_unlisted);
		fputc('\n', out);
		first = false;
	}
	if (p->udp_reply_datagrams || (p->in_udp_unlisted && !count_groups(p, DSTRACE_PROTO_UDP)))
		fprintf(out, "  %-9s udp replies and other datagrams received: %" PRIu64 "\n",
			first ? "outbound" : "",
			sat_add(p->udp_reply_datagrams, p->in_udp_unlisted));
}

/* The traffic, failed and note lines. */
static void put_totals(FILE *out, const struct report_program *p)
{
	if (p->bytes) {
		fputs("  traffic  ", out);
		put_bytes(out, "sent", p->c.sent_tcp_bytes, p->c.sent_udp_bytes);
		if ((p->c.sent_tcp_bytes || p->c.sent_udp_bytes) &&
		    (p->c.recv_tcp_bytes || p->c.recv_udp_bytes))
			fputc(';', out);
		put_bytes(out, "received", p->c.recv_tcp_bytes, p->c.recv_udp_bytes);
		fputc('\n', out);
	}
	if (p->c.failed) {
		fprintf(out, "  failed    %" PRIu64 ":", p->c.failed);
		for (uint32_t i = 0; i < p->nerrnos; i++) {
			fprintf(out, "%s %s %" PRIu64, i ? "," : "", p->errnos[i].name,
				p->errnos[i].count);
			if (!strcmp(p->errnos[i].name, "ENETUNREACH"))
				fputs(" (already fails: a v6-only socket, or no IPv4 route)", out);
		}
		if (p->errnos_other)
			fprintf(out, "%s other %" PRIu64, p->nerrnos ? "," : "", p->errnos_other);
		fputc('\n', out);
	}
	if (p->peers_dropped || p->peers_capped || p->ports_dropped)
		fprintf(out, "  note      %" PRIu64 " peers not in dstrace's table, %" PRIu64
			" beyond this report's %d, %u listener ports beyond %d\n",
			p->peers_dropped, p->peers_capped, REPORT_PEERS_MAX, p->ports_dropped,
			REPORT_PORTS_MAX);
}

/* "  names     db.example: 4 connections, no AAAA record: ..." one line per name. */
static void put_names(FILE *out, const struct report_program *p)
{
	for (uint32_t i = 0; i < p->nnames; i++) {
		const struct report_name *n = &p->names[i];

		fprintf(out, "  %-9s ", i ? "" : "names");
		put_safe(out, n->name);
		fprintf(out, ": %" PRIu64 " mapped %s", n->count,
			plural(n->count, "connection or flow", "connections or flows"));
		if (n->failed)
			fprintf(out, " (%" PRIu64 " failed)", n->failed);
		if (n->fallbacks)
			fprintf(out, " (%" PRIu64 " after a failed IPv6 attempt)", n->fallbacks);
		fprintf(out, ", %s\n", name_fix(n));
	}
	if (p->names_dropped)
		fprintf(out, "  %-9s %" PRIu64 " more not kept\n", p->nnames ? "" : "names",
			p->names_dropped);
}

static void put_program(FILE *out, const struct report_program *p)
{
	char from[TS_BUF], to[TS_BUF];

	put_label(out, p);
	fputc('\n', out);
	fmt_ts(p->first_seen, false, from, sizeof(from));
	fmt_ts(p->last_seen, false, to, sizeof(to));
	fprintf(out, "  seen      %s to %s, %u %s, up to %" PRIu64 " %s, netns %" PRIu64 "\n", from,
		to, p->runs, plural(p->runs, "run", "runs"), p->pids_max,
		plural(p->pids_max, "process", "processes"), p->netns);
	if (p->container) {
		fputs("  container ", out);
		put_safe(out, p->container);
		if (p->runtime) {
			fputs(" (", out);
			put_safe(out, p->runtime);
			fputc(')', out);
		}
		fputc('\n', out);
	}
	if (p->pod_uid) { /* "  pod       <uid> (besteffort)" */
		fputs("  pod       ", out);
		put_safe(out, p->pod_uid);
		if (p->qos) {
			fputs(" (", out);
			put_safe(out, p->qos);
			fputc(')', out);
		}
		fputc('\n', out);
	}
	put_inbound(out, p);
	put_outbound(out, p);
	put_names(out, p);
	put_totals(out, p);
}

static void put_summary(FILE *out, const struct report *r)
{
	if (!r->audit_records) {
		fputs("dstrace report: no audit records in the input.\n", out);
		return;
	}
	if (!r->depending) {
		fprintf(out, "dstrace report: no program depends on IPv4 through mapped addresses "
			     "(%u %s on %u %s audited",
			r->nprograms, plural(r->nprograms, "program", "programs"), r->nhosts,
			plural(r->nhosts, "host", "hosts"));
		if (r->already_failing)
			fprintf(out, "; %u already %s with ENETUNREACH", r->already_failing,
				plural(r->already_failing, "fails", "fail"));
		fputs(").\n", out);
		return;
	}
	fprintf(out,
		"dstrace report: %u %s on %u %s %s on IPv4 through mapped addresses; %u would "
		"break with net.ipv6.bindv6only=1",
		r->depending, plural(r->depending, "program", "programs"), r->depending_hosts,
		plural(r->depending_hosts, "host", "hosts"), plural(r->depending, "depends", "depend"),
		r->breaks_with_bindv6only);
	if (r->already_failing)
		fprintf(out, "; %u already %s with ENETUNREACH", r->already_failing,
			plural(r->already_failing, "fails", "fail"));
	fputs(".\n", out);
}

/* "dstrace counted drops (proc_full 2, peers 5) and 3 write errors on its audit file", from
 * the "drops" and "write_errors" of audit_run records. */
static void put_drops_warning(FILE *out, const struct report *r)
{
	const struct report_drops *d = &r->drops;
	uint64_t v[DSTRACE_DROPS_N];
	uint32_t shown = 0;

	report_drops_values(d, v);
	for (size_t i = 0; i < DSTRACE_DROPS_N; i++) {
		if (!v[i])
			continue;
		fprintf(out, "%s%s %" PRIu64, shown++ ? ", " : "warning: the audit may be incomplete: "
							       "dstrace counted drops (",
			dstrace_drop_names[i], v[i]);
	}
	if (!shown && !d->write_errors)
		return;
	if (!shown)
		fputs("warning: the audit may be incomplete: dstrace counted", out);
	else
		fputs(")", out);
	if (d->write_errors)
		fprintf(out, "%s %" PRIu64 " write %s on its audit file", shown ? " and" : "",
			d->write_errors, plural(d->write_errors, "error", "errors"));
	fprintf(out, " (in %u of %u runs)\n", r->runs_incomplete, r->nruns);
}

void report_put_warnings(FILE *out, const struct report *r)
{
	if (r->malformed)
		fprintf(out, "warning: skipped %" PRIu64 " malformed %s (first: %s:%" PRIu64 ": %s)\n",
			r->malformed, plural(r->malformed, "line", "lines"),
			r->first_malformed_file, r->first_malformed_line,
			r->first_malformed_reason);
	if (r->lost || r->evictions || r->programs_dropped)
		fprintf(out,
			"warning: the audit may be incomplete: %" PRIu64 " events lost, %" PRIu64
			" UDP flow evictions, %" PRIu64 " programs dropped by dstrace (in %u of %u "
			"runs); peers, ports or whole programs may be missing\n",
			r->lost, r->evictions, r->programs_dropped, r->runs_incomplete, r->nruns);
	put_drops_warning(out, r);
	for (uint32_t i = 0; i < r->nruns; i++) {
		const struct report_run *run = &r->runs[i];

		if (!run->nblind)
			continue;
		fputs("warning: run ", out);
		put_safe(out, run->run);
		fputs(" could not see on its kernel: ", out);
		for (uint32_t j = 0; j < run->nblind; j++) {
			if (j)
				fputs(", ", out);
			put_safe(out, run->blind[j]);
		}
		fputs(" (not counted: the audit says nothing of them)\n", out);
	}
	if (r->over_programs || r->over_runs || r->over_entries)
		fprintf(out,
			"warning: this report had no room for %" PRIu64 " records (at most %d "
			"programs, %d runs, %d run-program pairs): their programs are missing\n",
			r->over_programs + r->over_runs + r->over_entries, REPORT_PROGRAMS_MAX,
			REPORT_RUNS_MAX, REPORT_ENTRIES_MAX);
}

/* "Audited: ..." and the notes after the warnings. */
static void put_header(FILE *out, const struct report *r)
{
	char from[TS_BUF], to[TS_BUF];

	fmt_ts(r->first_ts, false, from, sizeof(from));
	fmt_ts(r->last_ts, false, to, sizeof(to));
	fprintf(out, "Audited: %u %s on %u %s (", r->nruns, plural(r->nruns, "run", "runs"),
		r->nhosts, plural(r->nhosts, "host", "hosts"));
	for (uint32_t i = 0; i < r->nhosts && i < LIST_MAX; i++) {
		fputs(i ? ", " : "", out);
		put_safe(out, r->hosts[i]);
	}
	if (r->nhosts > LIST_MAX)
		fprintf(out, ", and %u more", r->nhosts - LIST_MAX);
	fprintf(out, "), %s to %s, %" PRIu64 " audit records in %u %s.\n", from, to,
		r->audit_records, r->nfiles, plural(r->nfiles, "file", "files"));
	report_put_warnings(out, r);
	if (r->runs_without_final)
		fprintf(out,
			"note: %u %s no final audit_run record (dstrace still running, or killed): "
			"counts end at the last interval written\n",
			r->runs_without_final,
			plural(r->runs_without_final, "run has", "runs have"));
	if (r->ignored_records)
		fprintf(out, "note: %" PRIu64 " %s ignored\n", r->ignored_records,
			plural(r->ignored_records, "record of another type", "records of other types"));
}

/* One verdict line per program that has that verdict. */
static void put_verdicts(FILE *out, const struct report *r, size_t field)
{
	for (uint32_t i = 0; i < r->nprograms; i++) {
		const struct report_program *p = &r->programs[i];
		const char *verdict = *(char *const *)((const char *)p + field);

		if (!verdict)
			continue;
		fputs("  ", out);
		put_label(out, p);
		fprintf(out, ": %s\n", verdict);
	}
}

int report__print_text(const struct report *r, FILE *out)
{
	uint32_t quiet = 0;

	put_summary(out, r);
	if (!r->audit_records) {
		report_put_warnings(out, r);
		return fflush(out) || ferror(out) ? -EIO : 0;
	}
	put_header(out, r);
	for (uint32_t i = 0; i < r->nprograms; i++) {
		const struct report_program *p = &r->programs[i];

		if (!p->depends && !p->c.failed) {
			quiet++;
			continue;
		}
		fputc('\n', out);
		put_program(out, p);
	}
	if (quiet)
		fprintf(out, "\n%u %s with no mapped activity not shown.\n", quiet,
			plural(quiet, "program", "programs"));
	fputs("\nVerdict: if the host lost IPv4\n", out);
	put_verdicts(out, r, offsetof(struct report_program, verdict_ipv4));
	if (!r->breaks_without_ipv4)
		fputs("  nothing seen would break\n", out);
	fputs("\nVerdict: with net.ipv6.bindv6only=1 (it sets IPV6_V6ONLY on sockets created "
	      "afterwards: restarted programs; those that clear IPV6_V6ONLY themselves keep "
	      "working)\n",
	      out);
	put_verdicts(out, r, offsetof(struct report_program, verdict_bindv6only));
	if (!r->breaks_with_bindv6only)
		fputs("  nothing seen would break\n", out);
	if (r->already_failing) {
		fputs("\nAlready failing\n", out);
		put_verdicts(out, r, offsetof(struct report_program, verdict_failing));
	}
	return fflush(out) || ferror(out) ? -EIO : 0;
}
