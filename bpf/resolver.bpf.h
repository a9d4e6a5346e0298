/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The resolver's side, for every backend (user/backend.c's resolver list): uprobes on the C
 * library's getaddrinfo(), attached to the library dstrace itself runs with (so every
 * program that shares that file: uprobes follow the file, not the path). At return, each
 * IPv4 address of the answer, given plainly (AF_INET) or mapped (AF_INET6 ::ffff:a.b.c.d,
 * AI_V4MAPPED), is remembered for the process with the name asked, whether the answer also
 * had IPv6 addresses, and the hints; a mapped connect or send to that address later carries
 * the name (core.bpf.h, name_of). Programs that do not resolve through this library (static
 * Go binaries, another libc) leave no name: their events say name null.
 * The same programs serve 32-bit x86 programs' C library (user/backend.c attaches them to
 * each library): their calls pass arguments on the stack and their struct addrinfo is
 * ILP32's (gai_ia32).
 */
#ifndef DSTRACE_RESOLVER_BPF_H
#define DSTRACE_RESOLVER_BPF_H

#include "paths.bpf.h"

#define AI_NUMERICHOST 0x0004
#define AI_V4MAPPED 0x0008
#define AI_ALL 0x0010
#define AI_ADDRCONFIG 0x0020
/* Entries of the answer list read: looking for an AAAA record (glibc may sort them last, and
 * without hints it lists each address once per socket type), and naming IPv4 addresses
 * (those of the first entry's socket type only: each address once). */
#define GAI_SCAN_MAX 64
#define GAI_ANSWERS_MAX 32

/* struct addrinfo as the C library lays it out (LP64: glibc and musl alike). */
struct user_addrinfo {
	int ai_flags;
	int ai_family;
	int ai_socktype;
	int ai_protocol;
	__u32 ai_addrlen;
	__u32 pad;
	__u64 ai_addr;
	__u64 ai_canonname;
	__u64 ai_next;
};

/* The same in a 32-bit (ILP32) program. Its first four fields, all hints are read for, are
 * laid out as in both. */
struct user_addrinfo32 {
	int ai_flags;
	int ai_family;
	int ai_socktype;
	int ai_protocol;
	__u32 ai_addrlen;
	__u32 ai_addr;
	__u32 ai_canonname;
	__u32 ai_next;
};

/* Is the probed call one of 32-bit x86 code (an i386 program's C library)? Its user code
 * segment says (__USER32_CS, 0x23; a Xen PV guest's 0xe023), as the kernel's
 * user_64bit_mode() tells them apart; the uprobe's registers are the user's (the ptrace
 * layout, where cs is at the same place on every x86-64 kernel). Elsewhere no 32-bit
 * program is probed (README, Limits: AArch32). */
static __always_inline bool gai_ia32(struct pt_regs *ctx)
{
#if defined(__TARGET_ARCH_x86)
	return (ctx->cs & 0xff) == 0x23;
#else
	return false;
#endif
}

/* getaddrinfo()'s arguments: in registers, or for 32-bit code on the stack above the return
 * address (cdecl). False if they cannot be read. */
static __always_inline bool gai_args(struct pt_regs *ctx, bool ia32, __u64 *node, __u64 *hints,
				     __u64 *res)
{
	__u32 a[4];

	if (!ia32) {
		*node = PT_REGS_PARM1(ctx);
		*hints = PT_REGS_PARM3(ctx);
		*res = PT_REGS_PARM4(ctx);
		return true;
	}
	if (bpf_probe_read_user(a, sizeof(a), (const void *)(PT_REGS_SP(ctx) + 4)))
		return false;
	*node = a[0];
	*hints = a[2];
	*res = a[3];
	return true;
}

/* An address written out, not a name: "192.0.2.7" (digits and dots only) or an IPv6
 * literal (a colon, which no host name has). Its answer would name the address by itself. */
static __always_inline bool gai_numeric(const char *name)
{
	bool digits_dots = true;

	for (int i = 0; i < DSTRACE_NAME_LEN; i++) {
		char ch = name[i];

		if (!ch)
			break;
		if (ch == ':')
			return true;
		if ((ch < '0' || ch > '9') && ch != '.')
			digits_dots = false;
	}
	return digits_dots;
}

/* int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
 *                 struct addrinfo **res) */
SEC("uprobe")
int rs_getaddrinfo(struct pt_regs *ctx)
{
	FLOOR_RETURN(0);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct gai_call c = {};
	__u64 node, hints;
	struct user_addrinfo32 h; /* the fields read are where they are in both */

	if (!gai_args(ctx, gai_ia32(ctx), &node, &hints, &c.res) || !node || !c.res ||
	    bpf_probe_read_user_str(c.name, sizeof(c.name), (const void *)node) <= 1 ||
	    gai_numeric(c.name))
		return 0;
	if (hints && !bpf_probe_read_user(&h, 4 * sizeof(int), (const void *)hints)) {
		if (h.ai_flags & AI_NUMERICHOST)
			return 0;
		if (h.ai_flags & AI_V4MAPPED)
			c.flags |= DSTRACE_NAME_V4MAPPED;
		if (h.ai_flags & AI_ALL)
			c.flags |= DSTRACE_NAME_ALL;
		if (h.ai_flags & AI_ADDRCONFIG)
			c.flags |= DSTRACE_NAME_ADDRCONFIG;
		if (h.ai_family == AF_INET6)
			c.flags |= DSTRACE_NAME_FAMILY_INET6;
	}
	c.start_ns = bpf_ktime_get_boot_ns();
	/* counted once per entry: a thread's stale call (its return never seen) is replaced */
	__sync_fetch_and_add(&gai_calls_live, 1);
	if (bpf_map_update_elem(&gai_calls, &tid, &c, BPF_NOEXIST)) {
		__sync_fetch_and_add(&gai_calls_live, -1);
		bpf_map_update_elem(&gai_calls, &tid, &c, BPF_ANY);
	}
	return 0;
}

/* The answer entry at *next, of a 64-bit or (ia32) a 32-bit program, as LP64's: false if it
 * cannot be read. */
static __always_inline bool gai_read(struct user_addrinfo *ai, __u64 at, bool ia32)
{
	struct user_addrinfo32 a;

	if (!ia32)
		return !bpf_probe_read_user(ai, sizeof(*ai), (const void *)at);
	if (bpf_probe_read_user(&a, sizeof(a), (const void *)at))
		return false;
	ai->ai_family = a.ai_family;
	ai->ai_socktype = a.ai_socktype;
	ai->ai_addrlen = a.ai_addrlen;
	ai->ai_addr = a.ai_addr;
	ai->ai_next = a.ai_next;
	return true;
}

/* Entry i's IPv4 address (plain or mapped: *mapped says which) or whether it is IPv6; the
 * next entry in *next. Returns 1 for IPv4, 2 for IPv6, 0 for neither, -1 at the end. */
static __always_inline int gai_entry(__u64 *next, __u32 *addr, bool *mapped, int *socktype,
				     bool ia32)
{
	struct user_addrinfo ai;
	__u32 a[4];

	if (!*next || !gai_read(&ai, *next, ia32))
		return -1;
	*next = ai.ai_next;
	if (!*socktype)
		*socktype = ai.ai_socktype ? ai.ai_socktype : -1;
	if (ai.ai_socktype != (*socktype < 0 ? 0 : *socktype))
		return 0; /* the same address again, for another socket type */
	if (ai.ai_family == AF_INET && ai.ai_addrlen >= 8 &&
	    !bpf_probe_read_user(addr, sizeof(*addr), (const void *)(ai.ai_addr + 4))) {
		*mapped = false;
		return 1;
	}
	if (ai.ai_family != AF_INET6 || ai.ai_addrlen < 24 ||
	    bpf_probe_read_user(a, sizeof(a), (const void *)(ai.ai_addr + 8)))
		return 0;
	if (a[0] || a[1] || a[2] != bpf_htonl(0xffff))
		return 2;
	*addr = a[3];
	*mapped = true;
	return 1;
}

SEC("uretprobe")
int BPF_KRETPROBE(rs_getaddrinfo_ret, int ret)
{
	FLOOR_RETURN(0);
	__u64 id = bpf_get_current_pid_tgid(), first = 0, next;
	__u32 tid = (__u32)id;
	struct gai_call *p = bpf_map_lookup_elem(&gai_calls, &tid);
	struct name_key k = { .tgid = id >> 32 };
	struct name_val v = {};
	bool mapped = false, ia32 = gai_ia32(ctx);
	int kind, socktype = 0;

	if (!p)
		return 0;
	__builtin_memcpy(v.name, p->name, sizeof(v.name));
	v.flags = p->flags;
	/* *res: a pointer of the program's size (little-endian: its low half first) */
	if (ret || bpf_probe_read_user(&first, ia32 ? 4 : sizeof(first), (const void *)p->res))
		first = 0;
	if (!bpf_map_delete_elem(&gai_calls, &tid))
		__sync_fetch_and_add(&gai_calls_live, -1);
	/* First pass: did the answer have IPv6 addresses? */
	next = first;
	for (int i = 0; i < GAI_SCAN_MAX; i++) {
		kind = gai_entry(&next, &k.addr, &mapped, &socktype, ia32);
		if (kind < 0)
			break;
		if (kind == 2) {
			v.flags |= DSTRACE_NAME_AAAA;
			break;
		}
	}
	/* A and AAAA: the thread's native IPv6 connects are followed for a while (the
	 * starred cell); else forget an older answer's */
	if (v.flags & DSTRACE_NAME_AAAA) {
		volatile __u8 *seen = gai_recent_seen_of(tid);
		__u64 now = bpf_ktime_get_boot_ns();

		if (!*seen)
			*seen = 1;
		bpf_map_update_elem(&gai_recent, &tid, &now, BPF_ANY);
	} else {
		bpf_map_delete_elem(&gai_recent, &tid);
	}
	/* Second: each IPv4 address, with the name (an address given once per socket type is
	 * written again, the same). */
	next = first;
	socktype = 0;
	for (int i = 0; i < GAI_ANSWERS_MAX; i++) {
		kind = gai_entry(&next, &k.addr, &mapped, &socktype, ia32);
		if (kind < 0)
			break;
		if (kind != 1)
			continue;
		if (mapped)
			v.flags |= DSTRACE_NAME_RESOLVER_MAPPED;
		else
			v.flags &= ~DSTRACE_NAME_RESOLVER_MAPPED;
		/* a new (process, address) is counted: user space tells evictions from it */
		if (!bpf_map_update_elem(&resolved, &k, &v, BPF_NOEXIST))
			counter_add(DSTRACE_CNT_NAME_NEW, 1);
		else
			bpf_map_update_elem(&resolved, &k, &v, BPF_ANY);
	}
	return 0;
}

#endif /* DSTRACE_RESOLVER_BPF_H */
