// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Events, tables and the shared text helpers as text and JSON (format.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "format.h"

static const char *const event_names[DSTRACE_EV_KINDS] = { "connect", "accept", "send", "recv",
							  "existing", "bind" };

const char *dstrace_event_name(unsigned int kind)
{
	return kind < DSTRACE_EV_KINDS ? event_names[kind] : "unknown";
}

const char *dstrace_proto_name(unsigned int proto)
{
	switch (proto) {
	case DSTRACE_PROTO_TCP:
		return "tcp";
	case DSTRACE_PROTO_UDP:
		return "udp";
	case DSTRACE_PROTO_UDPLITE:
		return "udplite";
	default:
		return "unknown";
	}
}

const char *dstrace_event_proto_name(const struct dstrace_event *e)
{
	return e->flags & DSTRACE_F_MPTCP ? "mptcp" : dstrace_proto_name(e->proto);
}

const char *dstrace_errno_name(int negative_errno, char *buf, size_t size)
{
	const char *name = strerrorname_np(-negative_errno);

	if (name)
		return name;
	snprintf(buf, size, "E%d", -negative_errno);
	return buf;
}

bool dstrace_format_utc(int64_t sec, int usec, char *buf, size_t size)
{
	time_t t = sec;
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return false;
	if (usec >= 0)
		snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
	else
		snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return true;
}

void dstrace_format_ts(uint64_t realtime_ns, char *buf, size_t size)
{
	dstrace_format_utc(realtime_ns / 1000000000ull, realtime_ns % 1000000000ull / 1000, buf,
			   size);
}

void dstrace_format_ipv4(uint32_t addr, char *buf, size_t size)
{
	struct in_addr in = { .s_addr = addr };

	if (!inet_ntop(AF_INET, &in, buf, size))
		snprintf(buf, size, "?");
}

void dstrace_format_mapped(uint32_t addr, uint16_t port, char *buf, size_t size)
{
	char ip[INET_ADDRSTRLEN];

	dstrace_format_ipv4(addr, ip, sizeof(ip));
	snprintf(buf, size, "::ffff:%s:%u", ip, port);
}

size_t dstrace_utf8_len(const unsigned char *s, size_t avail)
{
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > avail)
		return 0;
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return n;
}

void dstrace_json_string(const char *s, size_t maxlen, char *buf, size_t size)
{
	size_t o = 0;

	if (size < 3) {
		if (size)
			buf[0] = '\0';
		return;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < maxlen && s[i];) {
		unsigned char c = s[i];
		size_t n = 1, u8 = c >= 0x80 ? dstrace_utf8_len((const unsigned char *)s + i,
								 strnlen(s + i, maxlen - i)) : 0;
		char esc[8];
		const char *out = esc;

		if (u8) {
			/* valid UTF-8 passes as it is (a path like /opt/café stays readable) */
			out = s + i;
			n = u8;
		} else if (c == '"' || c == '\\') {
			snprintf(esc, sizeof(esc), "\\%c", c);
		} else if (c < 0x20 || c >= 0x7f) {
			/* control bytes, and bytes that are not UTF-8: \u00XX, so nothing is lost */
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		} else {
			snprintf(esc, sizeof(esc), "%c", c);
		}
		{
			size_t len = u8 ? u8 : strlen(esc);

			if (o + len + 2 > size)
				break;
			memcpy(buf + o, out, len);
			o += len;
		}
		i += n;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

void dstrace_ascii_safe(char *dst, size_t size, const char *src, size_t maxlen)
{
	size_t i;

	if (!size)
		return;
	for (i = 0; i < maxlen && i < size - 1 && src[i]; i++) {
		unsigned char c = src[i];

		dst[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	dst[i] = '\0';
}

void metrics_label_value(const char *comm, char out[METRICS_LABEL_MAX])
{
	const unsigned char *in = (const unsigned char *)comm;
	size_t o = 0;

	/* At most DSTRACE_COMM_LEN - 1 bytes in, 5 out each: it always fits. */
	for (size_t i = 0; in[i] && i < DSTRACE_COMM_LEN - 1 && o + 6 <= METRICS_LABEL_MAX;) {
		size_t len = in[i] < 0x80 ? 1
					  : dstrace_utf8_len(in + i,
							     strnlen(comm + i, DSTRACE_COMM_LEN - 1 - i));

		if (in[i] == '\\' || in[i] == '"') {
			out[o++] = '\\';
			out[o++] = in[i++];
		} else if (in[i] == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
			i++;
		} else if (len && i + len <= DSTRACE_COMM_LEN - 1) {
			memcpy(out + o, in + i, len);
			o += len;
			i += len;
		} else {
			/* The label value gets \xNN; in the exposition its backslash is \\. */
			o += snprintf(out + o, METRICS_LABEL_MAX - o, "\\\\x%02x", in[i++]);
		}
	}
	out[o] = '\0';
}

/* comm for a text column: bytes outside printable ASCII become '?', so a process name
 * cannot forge lines or terminal escapes. */
static void printable_comm(const char *src, char *dst)
{
	dstrace_ascii_safe(dst, DSTRACE_COMM_LEN, src, DSTRACE_COMM_LEN - 1);
}

static void printable_name(const char *src, char *dst)
{
	dstrace_ascii_safe(dst, DSTRACE_NAME_LEN, src, DSTRACE_NAME_LEN - 1);
}

/* The fallback of the starred cell: "2001:db8::4 ECONNREFUSED" and the time lost in ms. */
static void fallback_parts(const struct dstrace_event *e, char *addr, size_t addr_size,
			   char *err, size_t err_size, double *lost_ms)
{
	char tmp[16];

	if (!inet_ntop(AF_INET6, e->fb_addr6, addr, addr_size))
		snprintf(addr, addr_size, "?");
	snprintf(err, err_size, "%s", dstrace_errno_name(e->fb_err, tmp, sizeof(tmp)));
	*lost_ms = (double)e->fb_lost_ns / 1e6;
}

/* The answer's kind: did the name have IPv6 addresses too? */
static const char *name_answer(const struct dstrace_event *e)
{
	return e->name_flags & DSTRACE_NAME_AAAA ? "a+aaaa" : "a-only";
}

static int clamp(int n, size_t size)
{
	if (n < 0 || !size)
		return 0;
	return (size_t)n >= size ? (int)size - 1 : n;
}

int dstrace_format_event_header(char *buf, size_t size)
{
	return clamp(snprintf(buf, size, "%-8s %-7s %-16s %-7s %-5s %-28s %-28s %s", "TIME", "PID",
			      "COMM", "EVENT", "PROTO", "LOCAL", "REMOTE", "RESULT"),
		     size);
}

int dstrace_format_event_text(const struct dstrace_event *e, uint64_t realtime_ns, char *buf,
			      size_t size)
{
	char ts[16], local[48], remote[48], comm[DSTRACE_COMM_LEN], ebuf[16],
		named[DSTRACE_NAME_LEN + 96] = "";
	time_t sec = realtime_ns / 1000000000ull;
	struct tm tm;

	localtime_r(&sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	if ((e->flags & DSTRACE_F_HAVE_LOCAL) && !e->laddr)
		snprintf(local, sizeof(local), "*:%u", e->lport); /* wildcard, as ss(8) shows it */
	else if (e->flags & DSTRACE_F_HAVE_LOCAL)
		dstrace_format_mapped(e->laddr, e->lport, local, sizeof(local));
	else
		snprintf(local, sizeof(local), "-");
	if (e->flags & DSTRACE_F_NO_REMOTE)
		snprintf(remote, sizeof(remote), "-");
	else
		dstrace_format_mapped(e->raddr, e->rport, remote, sizeof(remote));
	printable_comm(e->comm, comm);
	/* the name the peer came from, where known: "  NAME (a-only)" */
	if (e->flags & DSTRACE_F_BY_RESOLVER)
		snprintf(named, sizeof(named), "  (getaddrinfo sorting its answers)");
	else if (e->name_flags & DSTRACE_NAME_KNOWN) {
		char name[DSTRACE_NAME_LEN];

		printable_name(e->name, name);
		snprintf(named, sizeof(named), "  %s (%s)", name, name_answer(e));
	}
	if (e->flags & DSTRACE_F_FALLBACK) { /* "  after 2001:db8::4 ECONNREFUSED, 1.2 ms lost" */
		char addr[INET6_ADDRSTRLEN], err[16];
		size_t n = strlen(named);
		double lost_ms;

		fallback_parts(e, addr, sizeof(addr), err, sizeof(err), &lost_ms);
		snprintf(named + n, sizeof(named) - n, "  after %s %s, %.1f ms lost", addr, err,
			 lost_ms);
	}
	return clamp(snprintf(buf, size, "%-8s %-7u %-16s %-7s %-5s %-28s %-28s %s%s", ts, e->pid,
			      comm, dstrace_event_name(e->kind), dstrace_event_proto_name(e),
			      local, remote,
			      e->ret ? dstrace_errno_name(e->ret, ebuf, sizeof(ebuf)) : "ok", named),
		     size);
}

/* ,"fallback":null or {"from":"2001:db8::4","error":"ECONNREFUSED","lost_ms":1.234} */
static int fallback_member(const struct dstrace_event *e, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN], err[16];
	double lost_ms;

	if (!(e->flags & DSTRACE_F_FALLBACK))
		return clamp(snprintf(buf, size, ",\"fallback\":null"), size);
	fallback_parts(e, addr, sizeof(addr), err, sizeof(err), &lost_ms);
	return clamp(snprintf(buf, size,
			      ",\"fallback\":{\"from\":\"%s\",\"error\":\"%s\",\"lost_ms\":%.3f}",
			      addr, err, lost_ms),
		     size);
}

/* ,"name":..,"answer":..,"mapped_by":..,"hints":[..]: nulls when no name is known. */
static void name_members(const struct dstrace_event *e, char *buf, size_t size)
{
	static const struct {
		unsigned char bit;
		const char *name;
	} hints[] = {
		{ DSTRACE_NAME_FAMILY_INET6, "AF_INET6" },
		{ DSTRACE_NAME_V4MAPPED, "AI_V4MAPPED" },
		{ DSTRACE_NAME_ALL, "AI_ALL" },
		{ DSTRACE_NAME_ADDRCONFIG, "AI_ADDRCONFIG" },
	};
	char name[DSTRACE_NAME_LEN * 6 + 3];
	size_t n;

	if (!(e->name_flags & DSTRACE_NAME_KNOWN)) {
		n = (size_t)clamp(snprintf(buf, size,
					   ",\"name\":null,\"answer\":null,\"mapped_by\":null,"
					   "\"hints\":null,\"resolver_probe\":%s",
					   e->flags & DSTRACE_F_BY_RESOLVER ? "true" : "false"),
				  size);
		fallback_member(e, buf + n, size - n);
		return;
	}
	dstrace_json_string(e->name, DSTRACE_NAME_LEN, name, sizeof(name));
	n = (size_t)clamp(snprintf(buf, size, ",\"name\":%s,\"answer\":\"%s\",\"mapped_by\":\"%s\",\"hints\":[",
				   name, name_answer(e),
				   e->name_flags & DSTRACE_NAME_RESOLVER_MAPPED ? "resolver" : "program"),
			  size);
	for (size_t i = 0, k = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		if (!(e->name_flags & hints[i].bit))
			continue;
		n += (size_t)clamp(snprintf(buf + n, size - n, "%s\"%s\"", k++ ? "," : "", hints[i].name),
				   size - n);
	}
	n += (size_t)clamp(snprintf(buf + n, size - n, "],\"resolver_probe\":%s",
				    e->flags & DSTRACE_F_BY_RESOLVER ? "true" : "false"),
			   size - n);
	fallback_member(e, buf + n, size - n);
}

int dstrace_format_event_json(const struct dstrace_event *e, uint64_t realtime_ns, char *buf,
			      size_t size)
{
	char names[DSTRACE_NAME_LEN * 6 + 256];
	char ts[40], comm[DSTRACE_COMM_LEN * 6 + 3], laddr[24], raddr[24], rport[8], err[32],
		ebuf[16], lport[8];

	dstrace_format_ts(realtime_ns, ts, sizeof(ts));
	dstrace_json_string(e->comm, DSTRACE_COMM_LEN, comm, sizeof(comm));
	if (e->flags & DSTRACE_F_HAVE_LOCAL) {
		char ip[INET_ADDRSTRLEN];

		dstrace_format_ipv4(e->laddr, ip, sizeof(ip));
		snprintf(laddr, sizeof(laddr), "\"%s\"", ip);
		snprintf(lport, sizeof(lport), "%u", e->lport);
	} else {
		snprintf(laddr, sizeof(laddr), "null");
		snprintf(lport, sizeof(lport), "null");
	}
	if (e->flags & DSTRACE_F_NO_REMOTE) {
		snprintf(raddr, sizeof(raddr), "null");
		snprintf(rport, sizeof(rport), "null");
	} else {
		char ip[INET_ADDRSTRLEN];

		dstrace_format_ipv4(e->raddr, ip, sizeof(ip));
		snprintf(raddr, sizeof(raddr), "\"%s\"", ip);
		snprintf(rport, sizeof(rport), "%u", e->rport);
	}
	if (e->ret)
		snprintf(err, sizeof(err), "\"%s\"", dstrace_errno_name(e->ret, ebuf, sizeof(ebuf)));
	else
		snprintf(err, sizeof(err), "null");
	name_members(e, names, sizeof(names));
	return clamp(snprintf(buf, size,
			      "{\"type\":\"event\",\"ts\":\"%s\",\"event\":\"%s\",\"proto\":\"%s\","
			      "\"pid\":%u,\"tid\":%u,\"comm\":%s,\"uid\":%u,\"netns\":%u,"
			      "\"cgroup\":%llu,\"laddr\":%s,\"lport\":%s,\"raddr\":%s,"
			      "\"rport\":%s,\"ret\":%d,\"error\":%s%s}",
			      ts, dstrace_event_name(e->kind), dstrace_event_proto_name(e), e->pid,
			      e->tid, comm, e->uid, e->netns, e->cgroup_id, laddr, lport, raddr,
			      rport, e->ret, err, names),
		     size);
}

int dstrace_format_proc_header(char *buf, size_t size)
{
	return clamp(snprintf(buf, size, "%-7s %-16s %8s %8s %10s %10s %7s %6s %12s", "PID",
			      "COMM", "CONNECT", "ACCEPT", "SEND", "RECV", "FAILED", "PEERS",
			      "BYTES"),
		     size);
}

int dstrace_format_proc_text(const struct proc_entry *p, char *buf, size_t size)
{
	char comm[DSTRACE_COMM_LEN], peers[24];

	printable_comm(p->comm, comm);
	/* "+": a lower bound (the kernel's table of pairs was full) */
	snprintf(peers, sizeof(peers), "%u%s", proc_entry__peers(p), p->peers_partial ? "+" : "");
	return clamp(snprintf(buf, size,
			      "%-7u %-16s %8" PRIu64 " %8" PRIu64 " %10" PRIu64 " %10" PRIu64
			      " %7" PRIu64 " %6s %12" PRIu64,
			      p->pid, comm, p->counts[DSTRACE_EV_CONNECT],
			      p->counts[DSTRACE_EV_ACCEPT], p->counts[DSTRACE_EV_SEND],
			      p->counts[DSTRACE_EV_RECV], p->failed, peers, p->bytes),
		     size);
}

int dstrace_format_proc_json(const struct proc_entry *p, char *buf, size_t size)
{
	char comm[DSTRACE_COMM_LEN * 6 + 3];

	dstrace_json_string(p->comm, DSTRACE_COMM_LEN, comm, sizeof(comm));
	return clamp(snprintf(buf, size,
			      "{\"type\":\"process\",\"pid\":%u,\"comm\":%s,\"connect\":%" PRIu64
			      ",\"accept\":%" PRIu64 ",\"send\":%" PRIu64 ",\"recv\":%" PRIu64
			      ",\"failed\":%" PRIu64 ",\"peers\":%u,\"bytes\":%" PRIu64 "}",
			      p->pid, comm, p->counts[DSTRACE_EV_CONNECT],
			      p->counts[DSTRACE_EV_ACCEPT], p->counts[DSTRACE_EV_SEND],
			      p->counts[DSTRACE_EV_RECV], p->failed, proc_entry__peers(p),
			      p->bytes),
		     size);
}

const char *const dstrace_drop_names[DSTRACE_DROPS_N] = {
#define NAME(n) #n,
	DSTRACE_DROPS(NAME)
#undef NAME
};

void dstrace_drops_values(const struct dstrace_drops *d, uint64_t out[DSTRACE_DROPS_N])
{
	size_t i = 0;

#define VALUE(n) out[i++] = d->n;
	DSTRACE_DROPS(VALUE)
#undef VALUE
}

int dstrace_format_drops_json(const uint64_t v[DSTRACE_DROPS_N], char *buf, size_t size)
{
	int n = snprintf(buf, size, "{");

	for (size_t i = 0; i < DSTRACE_DROPS_N && n >= 0; i++)
		n += snprintf(buf + ((size_t)n < size ? (size_t)n : size),
			      (size_t)n < size ? size - n : 0, "%s\"%s\":%" PRIu64, i ? "," : "",
			      dstrace_drop_names[i], v[i]);
	if (n >= 0)
		n += snprintf(buf + ((size_t)n < size ? (size_t)n : size),
			      (size_t)n < size ? size - n : 0, "}");
	return n;
}

int dstrace_format_stats_text(const struct run_stats *s, char *buf, size_t size)
{
	uint64_t v[DSTRACE_DROPS_N];
	int n = snprintf(buf, size, "%" PRIu64 " events, %" PRIu64 " lost, in %.1f s (backend %s)",
			 s->events, s->lost, s->duration_s, s->backend);
	bool any = false;

	/* What else was left out, by cause: only the causes that happened ("lost" is said
	 * already). */
	dstrace_drops_values(&s->drops, v);
	for (size_t i = 1; i < DSTRACE_DROPS_N; i++) {
		if (!v[i] || n < 0 || (size_t)n >= size)
			continue;
		n += snprintf(buf + n, size - n, "%s %s %" PRIu64, any ? "," : "; dropped:",
			      dstrace_drop_names[i], v[i]);
		any = true;
	}
	if (s->names_evicted && n >= 0 && (size_t)n < size)
		n += snprintf(buf + n, size - n, "; names forgotten: %" PRIu64, s->names_evicted);
	/* and what this kernel does not let the backend see */
	for (int i = 0; i < s->nblind && n >= 0 && (size_t)n < size; i++)
		n += snprintf(buf + n, size - n, "%s %s", i ? "," : "; not seen on this kernel:",
			      s->blind[i]);
	return clamp(n, size);
}

int dstrace_format_blind_json(const char *const *blind, int n, char *buf, size_t size)
{
	size_t used = (size_t)clamp(snprintf(buf, size, "["), size);

	for (int i = 0; i < n; i++) {
		char item[128];

		dstrace_json_string(blind[i], 64, item, sizeof(item));
		used += (size_t)clamp(snprintf(buf + used, size - used, "%s%s", i ? "," : "", item),
				      size - used);
	}
	return (int)used + clamp(snprintf(buf + used, size - used, "]"), size - used);
}

int dstrace_format_stats_json(const struct run_stats *s, char *buf, size_t size)
{
	uint64_t v[DSTRACE_DROPS_N];
	char drops[DSTRACE_DROPS_N * 40 + 8], blind[4 * 140 + 8];

	dstrace_drops_values(&s->drops, v);
	dstrace_format_drops_json(v, drops, sizeof(drops));
	dstrace_format_blind_json(s->blind, s->nblind, blind, sizeof(blind));
	return clamp(snprintf(buf, size,
			      "{\"type\":\"stats\",\"backend\":\"%s\",\"events\":%" PRIu64
			      ",\"lost\":%" PRIu64 ",\"duration_s\":%.3f,\"drops\":%s,\"blind\":%s,"
			      "\"names_evicted\":%" PRIu64 "}",
			      s->backend, s->events, s->lost, s->duration_s, drops, blind,
			      s->names_evicted),
		     size);
}
