// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Events, tables and the shared text helpers as text and JSON (format.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <inttypes.h>
#include <limits.h>
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
	/* Every event has one: the date and time of the last second are kept (per thread),
	 * only the microseconds are written anew. */
	static __thread int64_t cached_sec = -1;
	static __thread char cached[32]; /* "2026-12-02T20:13:13." */
	static __thread size_t cached_len;
	int64_t sec = (int64_t)(realtime_ns / 1000000000ull);
	unsigned int usec = (unsigned int)(realtime_ns % 1000000000ull / 1000);
	char tail[8];

	if (sec != cached_sec) {
		char full[48];

		cached_sec = -1;
		if (!dstrace_format_utc(sec, 0, full, sizeof(full)) || strlen(full) < 8 ||
		    strlen(full) - 8 >= sizeof(cached)) {
			if (!dstrace_format_utc(sec, (int)usec, buf, size) && size)
				snprintf(buf, size, "?");
			return;
		}
		cached_len = strlen(full) - 7; /* up to the "." */
		memcpy(cached, full, cached_len);
		cached_sec = sec;
	}
	for (int i = 5; i >= 0; i--, usec /= 10)
		tail[i] = (char)('0' + usec % 10);
	tail[6] = 'Z';
	tail[7] = '\0';
	if (cached_len + sizeof(tail) <= size) {
		memcpy(buf, cached, cached_len);
		memcpy(buf + cached_len, tail, sizeof(tail));
	} else {
		snprintf(buf, size, "%.*s%s", (int)cached_len, cached, tail);
	}
}

/* Dotted quad of a network-order address; "?" if it does not fit. By hand: inet_ntop() goes
 * through sprintf(), and every event has two. */
void dstrace_format_ipv4(uint32_t addr, char *buf, size_t size)
{
	const unsigned char *b = (const unsigned char *)&addr;
	char tmp[INET_ADDRSTRLEN];
	size_t n = 0;

	for (int i = 0; i < 4; i++) {
		unsigned int v = b[i];

		if (i)
			tmp[n++] = '.';
		if (v >= 100)
			tmp[n++] = (char)('0' + v / 100);
		if (v >= 10)
			tmp[n++] = (char)('0' + v / 10 % 10);
		tmp[n++] = (char)('0' + v % 10);
	}
	tmp[n] = '\0';
	if (n < size)
		memcpy(buf, tmp, n + 1);
	else if (size)
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
		static const char hex[] = "0123456789abcdef";
		char esc[8];
		const char *out = esc;
		size_t len = 1;

		if (u8) {
			/* valid UTF-8 passes as it is (a path like /opt/café stays readable) */
			out = s + i;
			n = len = u8;
		} else if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			len = 2;
		} else if (c < 0x20 || c >= 0x7f) {
			/* control bytes, and bytes that are not UTF-8: \u00XX, so nothing is lost */
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			len = 6;
		} else {
			out = s + i; /* the common case: a printable ASCII byte, as it is */
		}
		if (o + len + 2 > size)
			break;
		memcpy(buf + o, out, len);
		o += len;
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

/* A line built piece by piece without printf, for the per-event path of -j: like snprintf,
 * it keeps what fits, always terminated, and counts all it was given (len). */
struct line_out {
	char *buf;
	size_t size;
	size_t len;
};

static void out_mem(struct line_out *o, const char *s, size_t n)
{
	if (!o->size)
		return;
	if (o->len < o->size - 1) {
		size_t room = o->size - 1 - o->len;

		memcpy(o->buf + o->len, s, n < room ? n : room);
	}
	o->len += n;
	o->buf[o->len < o->size - 1 ? o->len : o->size - 1] = '\0';
}

static void out_str(struct line_out *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

static void out_u64(struct line_out *o, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_mem(o, tmp + i, sizeof(tmp) - i);
}

/* "a.b.c.d" (quoted) or null */
static void out_ipv4(struct line_out *o, bool have, uint32_t addr)
{
	char ip[INET_ADDRSTRLEN];

	if (!have) {
		out_str(o, "null");
		return;
	}
	dstrace_format_ipv4(addr, ip, sizeof(ip));
	out_mem(o, "\"", 1);
	out_str(o, ip);
	out_mem(o, "\"", 1);
}

static void out_port(struct line_out *o, bool have, uint16_t port)
{
	if (have)
		out_u64(o, port);
	else
		out_str(o, "null");
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

	if (!(e->name_flags & DSTRACE_NAME_KNOWN)) { /* most events: no printf */
		struct line_out o = { .buf = buf, .size = size };

		out_str(&o, ",\"name\":null,\"answer\":null,\"mapped_by\":null,\"hints\":null,"
			    "\"resolver_probe\":");
		out_str(&o, e->flags & DSTRACE_F_BY_RESOLVER ? "true" : "false");
		if (!(e->flags & DSTRACE_F_FALLBACK)) {
			out_str(&o, ",\"fallback\":null");
			return;
		}
		n = o.len < size ? o.len : size - 1;
		fallback_member(e, buf + n, size - n);
		return;
	}
	dstrace_json_string(e->name, DSTRACE_NAME_LEN, name, sizeof(name));
	n = (size_t)clamp(snprintf(buf, size,
				   ",\"name\":%s,\"answer\":\"%s\",\"mapped_by\":\"%s\",\"hints\":[",
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
	struct line_out o = { .buf = buf, .size = size };
	bool local = e->flags & DSTRACE_F_HAVE_LOCAL, remote = !(e->flags & DSTRACE_F_NO_REMOTE);
	char names[DSTRACE_NAME_LEN * 6 + 256];
	char ts[40], comm[DSTRACE_COMM_LEN * 6 + 3], ebuf[16];

	dstrace_format_ts(realtime_ns, ts, sizeof(ts));
	dstrace_json_string(e->comm, DSTRACE_COMM_LEN, comm, sizeof(comm));
	out_str(&o, "{\"type\":\"event\",\"ts\":\"");
	out_str(&o, ts);
	out_str(&o, "\",\"event\":\"");
	out_str(&o, dstrace_event_name(e->kind));
	out_str(&o, "\",\"proto\":\"");
	out_str(&o, dstrace_event_proto_name(e));
	out_str(&o, "\",\"pid\":");
	out_u64(&o, e->pid);
	out_str(&o, ",\"tid\":");
	out_u64(&o, e->tid);
	out_str(&o, ",\"comm\":");
	out_str(&o, comm);
	out_str(&o, ",\"uid\":");
	out_u64(&o, e->uid);
	out_str(&o, ",\"netns\":");
	out_u64(&o, e->netns);
	out_str(&o, ",\"cgroup\":");
	out_u64(&o, e->cgroup_id);
	out_str(&o, ",\"laddr\":");
	out_ipv4(&o, local, e->laddr);
	out_str(&o, ",\"lport\":");
	out_port(&o, local, e->lport);
	out_str(&o, ",\"raddr\":");
	out_ipv4(&o, remote, e->raddr);
	out_str(&o, ",\"rport\":");
	out_port(&o, remote, e->rport);
	out_str(&o, ",\"ret\":");
	if (e->ret < 0) {
		out_mem(&o, "-", 1);
		out_u64(&o, (uint64_t)0 - (uint64_t)(int64_t)e->ret);
	} else {
		out_u64(&o, (uint64_t)e->ret);
	}
	out_str(&o, ",\"error\":");
	if (e->ret) {
		out_mem(&o, "\"", 1);
		out_str(&o, dstrace_errno_name(e->ret, ebuf, sizeof(ebuf)));
		out_mem(&o, "\"", 1);
	} else {
		out_str(&o, "null");
	}
	name_members(e, names, sizeof(names));
	out_str(&o, names);
	out_mem(&o, "}", 1);
	return clamp(o.len > INT_MAX ? INT_MAX : (int)o.len, size);
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
