// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report: what a program's folded totals mean. Owns the derived fields of struct
 * report_program: UDP replies told apart from services, inbound traffic grouped by local
 * port, what the listed peers leave unaccounted for, activity and bytes, "depends", and the
 * verdict sentences (without IPv4, with bindv6only=1, already failing).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "format.h"
#include "internal.h"

/* Linux's default net.ipv4.ip_local_port_range starts here: a UDP socket's local port at or
 * above it is most likely one the kernel picked for a client. */
#define EPHEMERAL_PORT_MIN 32768

uint32_t count_peers(const struct report_program *p, uint8_t dir, uint8_t proto)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->npeers; i++)
		n += p->peers[i].dir == dir && p->peers[i].proto == proto;
	return n;
}

uint64_t udp_own_sends(const struct report_program *p)
{
	return sat_sub(p->c.sent_udp_datagrams, p->c.sent_udp_replies);
}

uint32_t count_groups(const struct report_program *p, uint8_t proto)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->ninbound; i++)
		n += p->inbound[i].proto == proto;
	return n;
}

/* ----------------------------------------------------------------- traffic */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_group(const void *a, const void *b)
{
	const struct report_port_group *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto - y->proto;
	return (int)x->port - (int)y->port;
}

static int cmp_group_busiest(const void *a, const void *b)
{
	const struct report_port_group *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto - y->proto;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return (int)x->port - (int)y->port;
}

static bool inbound_service(const struct report_peer *peer)
{
	return peer->dir == REPORT_DIR_IN && !peer->reply;
}

/* The UDP answers it received: counted apart by the writer (received.udp_replies, never a
 * peer), or, in records from before that, told by the peer: datagrams from an address the
 * program also sends to, arriving on an ephemeral local port (a client's answers, not a
 * service). */
static int mark_replies(struct report_program *p)
{
	uint32_t n = count_peers(p, REPORT_DIR_OUT, DSTRACE_PROTO_UDP), *out_udp;

	p->udp_reply_datagrams = p->c.recv_udp_replies;
	if (!n || p->replies_counted)
		return 0; /* its "in" peers are the ones that spoke first: services */
	out_udp = malloc(n * sizeof(*out_udp));
	if (!out_udp)
		return -ENOMEM;
	n = 0;
	for (uint32_t i = 0; i < p->npeers; i++) {
		if (p->peers[i].dir == REPORT_DIR_OUT && p->peers[i].proto == DSTRACE_PROTO_UDP)
			out_udp[n++] = p->peers[i].addr;
	}
	qsort(out_udp, n, sizeof(*out_udp), cmp_u32);
	for (uint32_t i = 0; i < p->npeers; i++) {
		struct report_peer *peer = &p->peers[i];

		if (peer->dir == REPORT_DIR_IN && peer->proto == DSTRACE_PROTO_UDP &&
		    peer->port >= EPHEMERAL_PORT_MIN &&
		    bsearch(&peer->addr, out_udp, n, sizeof(*out_udp), cmp_u32)) {
			peer->reply = true;
			p->udp_reply_datagrams = sat_add(p->udp_reply_datagrams, peer->count);
		}
	}
	free(out_udp);
	return 0;
}

/* Totals minus what the listed peers account for (peers beyond the top 16 of a run). */
static void count_unlisted(struct report_program *p)
{
	uint64_t listed[2][DSTRACE_PROTO_MAX] = {}; /* [dir][proto] */

	for (uint32_t i = 0; i < p->npeers; i++) {
		const struct report_peer *peer = &p->peers[i];

		listed[peer->dir][peer->proto] = sat_add(listed[peer->dir][peer->proto], peer->count);
	}
	p->in_tcp_unlisted = sat_sub(p->c.accept_tcp, listed[REPORT_DIR_IN][DSTRACE_PROTO_TCP]);
	p->in_udp_unlisted = sat_sub(sat_sub(p->c.recv_udp_datagrams, p->c.recv_udp_replies),
				     listed[REPORT_DIR_IN][DSTRACE_PROTO_UDP]);
	p->out_tcp_unlisted = sat_sub(p->c.connect_tcp, listed[REPORT_DIR_OUT][DSTRACE_PROTO_TCP]);
	/* a service's replies are its clients' exchanges: inbound, not sends of its own */
	p->out_udp_unlisted = sat_sub(udp_own_sends(p), listed[REPORT_DIR_OUT][DSTRACE_PROTO_UDP]);
}

/* A program's only TCP port accepted all its IPv4 clients, listed or not; likewise its only
 * UDP port, unless some of what it received were replies. */
static void credit_single_ports(struct report_program *p, struct report_port_group *g,
				uint32_t n)
{
	uint32_t single[DSTRACE_PROTO_MAX] = {}, groups_of[DSTRACE_PROTO_MAX] = {};

	for (uint32_t i = 0; i < n; i++) {
		groups_of[g[i].proto]++;
		single[g[i].proto] = i;
	}
	if (groups_of[DSTRACE_PROTO_TCP] == 1 && p->in_tcp_unlisted) {
		g[single[DSTRACE_PROTO_TCP]].count =
			sat_add(g[single[DSTRACE_PROTO_TCP]].count, p->in_tcp_unlisted);
		g[single[DSTRACE_PROTO_TCP]].more_peers = true;
		p->in_tcp_unlisted = 0;
	}
	if (groups_of[DSTRACE_PROTO_UDP] == 1 && p->in_udp_unlisted && !udp_own_sends(p) &&
	    !p->c.connect_udp && !p->udp_reply_datagrams) {
		g[single[DSTRACE_PROTO_UDP]].count =
			sat_add(g[single[DSTRACE_PROTO_UDP]].count, p->in_udp_unlisted);
		g[single[DSTRACE_PROTO_UDP]].more_peers = true;
		p->in_udp_unlisted = 0;
	}
}

/* Inbound traffic by local port: the listener ports, and the ports "in" peers came to. */
static int group_inbound(struct report_program *p)
{
	uint32_t n = p->nports, ngroups = 0;
	struct report_port_group *g;

	for (uint32_t i = 0; i < p->npeers; i++)
		n += inbound_service(&p->peers[i]);
	if (!n)
		return 0;
	g = calloc(n, sizeof(*g));
	if (!g)
		return -ENOMEM;
	n = 0;
	for (uint32_t i = 0; i < p->nports; i++)
		g[n++] = (struct report_port_group){ .port = p->ports[i], .proto = DSTRACE_PROTO_TCP };
	for (uint32_t i = 0; i < p->npeers; i++) {
		if (inbound_service(&p->peers[i]))
			g[n++] = (struct report_port_group){ .port = p->peers[i].port,
							     .proto = p->peers[i].proto,
							     .count = p->peers[i].count,
							     .npeers = 1 };
	}
	qsort(g, n, sizeof(*g), cmp_group);
	for (uint32_t i = 0; i < n; i++) {
		if (ngroups && !cmp_group(&g[ngroups - 1], &g[i])) {
			g[ngroups - 1].count = sat_add(g[ngroups - 1].count, g[i].count);
			g[ngroups - 1].npeers += g[i].npeers;
		} else {
			g[ngroups++] = g[i];
		}
	}
	credit_single_ports(p, g, ngroups);
	qsort(g, ngroups, sizeof(*g), cmp_group_busiest);
	p->inbound = g;
	p->ninbound = ngroups;
	return 0;
}

/* ---------------------------------------------------------------- sentences */

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (!b->s || b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *s;

		while (cap < b->len + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
		va_start(ap, fmt);
		vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += n;
}

/* The sentence ("" when nothing was said: inconsistent input), or NULL when out of memory. */
static char *sb_done(struct sbuf *b)
{
	if (!b->oom)
		return b->s ? b->s : strdup("");
	free(b->s);
	return NULL;
}

/* Before the i-th of n items of a list: ", " or " and ". */
static void sb_list_sep(struct sbuf *b, uint32_t i, uint32_t n)
{
	if (i)
		sb_printf(b, "%s", i + 1 == n ? " and " : ", ");
}

static void sb_clause(struct sbuf *b)
{
	if (b->len)
		sb_printf(b, "; ");
}

/* "port 8080 (5 connections from 2 peers)" */
static void sb_port_group(struct sbuf *b, const struct report_port_group *g, const char *one,
			  const char *many)
{
	if (g->port)
		sb_printf(b, "port %u", g->port);
	else
		sb_printf(b, "an unknown port");
	if (!g->count && !g->more_peers)
		return;
	sb_printf(b, " (%" PRIu64 " %s", g->count, plural(g->count, one, many));
	if (g->npeers)
		sb_printf(b, " from %s%u %s", g->more_peers ? "at least " : "", g->npeers,
			  plural(g->npeers, "peer", "peers"));
	sb_printf(b, ")");
}

static void sb_inbound(struct sbuf *b, const struct report_program *p, uint8_t proto,
		       const char *one, const char *many)
{
	uint32_t n = count_groups(p, proto), shown = 0;
	uint64_t rest = 0;

	for (uint32_t i = 0; i < p->ninbound; i++) {
		const struct report_port_group *g = &p->inbound[i];

		if (g->proto != proto)
			continue;
		if (shown == LIST_MAX) {
			rest = sat_add(rest, g->count);
			continue;
		}
		sb_list_sep(b, shown, n > LIST_MAX ? LIST_MAX + 1 : n);
		sb_port_group(b, g, one, many);
		shown++;
	}
	if (n > LIST_MAX)
		sb_printf(b, " and %u more ports (%" PRIu64 " %s)", n - LIST_MAX, rest,
			  plural(rest, one, many));
}

/* "198.51.100.7:5432/tcp (3 connections), ..." for the outbound peers of proto. */
static void sb_outbound(struct sbuf *b, const struct report_program *p, uint8_t proto,
			uint64_t unlisted, const char *one, const char *many)
{
	uint32_t n = count_peers(p, REPORT_DIR_OUT, proto), shown = 0, parts;
	uint64_t rest = 0;
	char addr[INET_ADDRSTRLEN];

	parts = (n > LIST_MAX ? LIST_MAX + 1 : n) + (unlisted ? 1 : 0);
	for (uint32_t i = 0; i < p->npeers; i++) {
		const struct report_peer *peer = &p->peers[i];

		if (peer->dir != REPORT_DIR_OUT || peer->proto != proto)
			continue;
		if (shown == LIST_MAX) {
			rest = sat_add(rest, peer->count);
			continue;
		}
		dstrace_format_ipv4(peer->addr, addr, sizeof(addr));
		sb_list_sep(b, shown, parts);
		sb_printf(b, "%s:%u/%s (%" PRIu64 " %s)", addr, peer->port, dstrace_proto_name(proto),
			  peer->count, plural(peer->count, one, many));
		shown++;
	}
	if (n > LIST_MAX) {
		sb_list_sep(b, shown++, parts);
		sb_printf(b, "%u more peers (%" PRIu64 " %s)", n - LIST_MAX, rest,
			  plural(rest, one, many));
	}
	if (unlisted) {
		sb_list_sep(b, shown, parts);
		sb_printf(b, "%speers not listed (%" PRIu64 " %s)", n ? "" : "IPv4 ", unlisted,
			  plural(unlisted, one, many));
	}
}

/* The inbound clauses: the same whether IPv4 goes or bindv6only=1 comes, since a v6-only
 * listener never sees IPv4 clients. */
static void verdict_inbound(struct sbuf *b, const struct report_program *p, bool udp_out)
{
	if (count_groups(p, DSTRACE_PROTO_TCP)) {
		sb_printf(b, "would stop accepting IPv4 clients on ");
		sb_inbound(b, p, DSTRACE_PROTO_TCP, "connection", "connections");
		if (p->in_tcp_unlisted)
			sb_printf(b, ", plus %" PRIu64 " %s from peers not listed",
				  p->in_tcp_unlisted,
				  plural(p->in_tcp_unlisted, "connection", "connections"));
	} else if (p->c.accept_tcp) {
		sb_printf(b, "would stop accepting IPv4 clients (%" PRIu64 " %s)", p->c.accept_tcp,
			  plural(p->c.accept_tcp, "connection", "connections"));
	}
	if (count_groups(p, DSTRACE_PROTO_UDP)) {
		sb_clause(b);
		sb_printf(b, "would stop receiving IPv4 datagrams on UDP ");
		sb_inbound(b, p, DSTRACE_PROTO_UDP, "datagram", "datagrams");
	} else if (p->in_udp_unlisted && !udp_out) {
		sb_clause(b);
		sb_printf(b, "would stop receiving IPv4 datagrams (%" PRIu64 " %s)",
			  p->in_udp_unlisted, plural(p->in_udp_unlisted, "datagram", "datagrams"));
	}
}

/* The outbound clauses: "could no longer ..." without IPv4, ENETUNREACH with v6only. */
static void verdict_outbound(struct sbuf *b, const struct report_program *p, bool v6only)
{
	uint32_t out_tcp = count_peers(p, REPORT_DIR_OUT, DSTRACE_PROTO_TCP);
	uint32_t out_udp = count_peers(p, REPORT_DIR_OUT, DSTRACE_PROTO_UDP);

	if (out_tcp || p->out_tcp_unlisted) {
		sb_clause(b);
		sb_printf(b, "%s", v6only ? "would get ENETUNREACH connecting to " :
					    "could no longer connect to ");
		sb_outbound(b, p, DSTRACE_PROTO_TCP, p->out_tcp_unlisted, "connection",
			    "connections");
	}
	if (out_udp || p->out_udp_unlisted) {
		sb_clause(b);
		sb_printf(b, "%s", v6only ? "would get ENETUNREACH sending to " :
					    "could no longer send to ");
		sb_outbound(b, p, DSTRACE_PROTO_UDP, p->out_udp_unlisted, "datagram", "datagrams");
	} else if (p->c.connect_udp) {
		sb_clause(b);
		sb_printf(b, "%s (%" PRIu64 " %s)",
			  v6only ? "would get ENETUNREACH connecting UDP sockets to IPv4 peers" :
				   "could no longer connect UDP sockets to IPv4 peers",
			  p->c.connect_udp, plural(p->c.connect_udp, "connect", "connects"));
	}
	if ((p->c.sent_tcp_bytes || p->c.recv_tcp_bytes) && !p->c.connect_tcp &&
	    !p->c.accept_tcp && !count_groups(p, DSTRACE_PROTO_TCP) && !out_tcp) {
		sb_clause(b);
		sb_printf(b,
			  "%s the mapped TCP connections it had open before the audit (%" PRIu64
			  " bytes sent, %" PRIu64 " received)",
			  v6only ? "could not reopen" : "would lose", p->c.sent_tcp_bytes,
			  p->c.recv_tcp_bytes);
	}
}

/* What breaks for p: without IPv4 (v6only false) or with bindv6only=1 (v6only true). */
static char *build_verdict(const struct report_program *p, bool v6only)
{
	bool udp_out = count_peers(p, REPORT_DIR_OUT, DSTRACE_PROTO_UDP) ||
		       udp_own_sends(p) || p->c.connect_udp;
	struct sbuf b = {};

	verdict_inbound(&b, p, udp_out);
	verdict_outbound(&b, p, v6only);
	return sb_done(&b);
}

static char *build_failing(const struct report_program *p)
{
	struct sbuf b = {};

	sb_printf(&b,
		  "already fails: %" PRIu64 " mapped %s got ENETUNREACH (a v6-only socket, or no "
		  "IPv4 route)",
		  p->enetunreach, plural(p->enetunreach, "connect or send", "connects or sends"));
	return sb_done(&b);
}

int derive_program(struct report_program *p)
{
	int err = mark_replies(p);

	if (err)
		return err;
	count_unlisted(p);
	err = group_inbound(p);
	if (err)
		return err;
	p->activity = sat_add(sat_add(sat_add(p->c.connect_tcp, p->c.connect_udp), p->c.accept_tcp),
			      sat_add(p->c.sent_udp_datagrams, p->c.recv_udp_datagrams));
	p->bytes = sat_add(sat_add(sat_add(p->c.sent_tcp_bytes, p->c.sent_udp_bytes),
				   p->c.recv_tcp_bytes),
			   p->c.recv_udp_bytes);
	p->depends = p->activity || p->bytes || p->npeers || p->nports;
	p->breaks_without_ipv4 = p->depends;
	p->breaks_with_bindv6only = p->depends;
	if (p->depends) {
		p->verdict_ipv4 = build_verdict(p, false);
		p->verdict_bindv6only = build_verdict(p, true);
		if (!p->verdict_ipv4 || !p->verdict_bindv6only)
			return -ENOMEM;
	}
	if (p->enetunreach && !(p->verdict_failing = build_failing(p)))
		return -ENOMEM;
	return 0;
}

const char *name_fix(const struct report_name *n)
{
	if (!(n->flags & DSTRACE_NAME_AAAA))
		return "no AAAA record: publish one for the name (or move the service to IPv6)";
	if (n->fallbacks)
		return "has an AAAA record, but connecting to its IPv6 address failed and the "
		       "program fell back to the A record: make the service answer over IPv6";
	if (n->flags & DSTRACE_NAME_RESOLVER_MAPPED)
		return "has an AAAA record, yet the program connected to its A record (asked "
		       "AI_V4MAPPED): its IPv6 address failed or was sorted last (/etc/gai.conf)";
	return "has an AAAA record the program passed over, mapping the A record itself: make "
	       "it prefer IPv6 (Java: -Djava.net.preferIPv6Addresses=true)";
}
