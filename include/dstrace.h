/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Types shared by the BPF programs and user space. Plain fixed-width types only:
 * this header is included both with vmlinux.h (BPF side) and with libc headers.
 */
#ifndef DSTRACE_H
#define DSTRACE_H

#define DSTRACE_COMM_LEN 16
#define DSTRACE_MAX_PIDS 64 /* distinct -p/--pid values */

/* What the kernel did for an AF_INET6 socket with an IPv4-mapped peer. */
enum dstrace_event_kind {
	DSTRACE_EV_CONNECT = 0, /* connect() to ::ffff:a.b.c.d (TCP or UDP) */
	DSTRACE_EV_ACCEPT = 1,	/* IPv4 client accepted by an AF_INET6 listener */
	DSTRACE_EV_SEND = 2,	/* first UDP datagram of a flow sent to a mapped peer */
	DSTRACE_EV_RECV = 3,	/* first UDP datagram of a flow received from an IPv4 peer */
	DSTRACE_EV_MAX = 4,	/* the kinds counted per protocol (connections, datagrams) */
	/* At start: a mapped TCP connection or UDP socket that already existed, once per
	 * (process, socket). TCP ones count as connect or accept (flag DSTRACE_F_INBOUND). */
	DSTRACE_EV_EXISTING = 4,
	/* bind() of an AF_INET6 socket to ::ffff:a.b.c.d (an IPv4-only socket in IPv6
	 * clothing); EINVAL on a v6-only socket. A failure counts as failed. */
	DSTRACE_EV_BIND = 5,
	DSTRACE_EV_KINDS = 6,
};

/* Protocols. Counters are kept per TCP and UDP (DSTRACE_PROTO_MAX); UDP-Lite is UDP with a
 * partial checksum and breaks the same way without IPv4: its events say "udplite", its
 * datagrams and bytes add up with UDP's. MPTCP connections are TCP (their first subflow). */
enum dstrace_proto {
	DSTRACE_PROTO_TCP = 0,
	DSTRACE_PROTO_UDP = 1,
	DSTRACE_PROTO_UDPLITE = 2, /* events only: counted as UDP */
};

/* The counter slot of a protocol. */
#define DSTRACE_PROTO_COUNTED(proto) \
	((proto) == DSTRACE_PROTO_TCP ? DSTRACE_PROTO_TCP : DSTRACE_PROTO_UDP)

/* Bits of the in-kernel event and protocol filters. */
#define DSTRACE_EVMASK(kind) (1u << (kind))
#define DSTRACE_EVMASK_ALL 0x3fu
#define DSTRACE_PROTOMASK(proto) (1u << (proto))
#define DSTRACE_PROTOMASK_ALL 0x3u

/* Event flags. */
#define DSTRACE_F_HAVE_LOCAL 0x1 /* laddr/lport were assigned by the kernel */
#define DSTRACE_F_MPTCP 0x2	 /* an MPTCP connection (proto says tcp) */
#define DSTRACE_F_INBOUND 0x4	 /* existing: the process's side accepted it */
#define DSTRACE_F_NO_REMOTE 0x8	 /* no remote end (bind; a UDP socket not connected) */
/* Not an event: the proc_stats entry of pid ended at ts_ns (ret: enum dstrace_end). It comes
 * in ring order, before any event of a process that reuses the pid or of the program an exec
 * started, so user space knows those are not the old entry's (bpf/lifecycle.bpf.h). */
#define DSTRACE_F_ENDED 0x10
/* A connect made by getaddrinfo() itself, inside the call: glibc connect()s a UDP socket to
 * each answer to sort them (RFC 6724) and sends nothing on it. */
#define DSTRACE_F_BY_RESOLVER 0x20
/* The book's starred cell: this mapped connect follows a failed native IPv6 connect of the
 * same thread to an address of the same name's answer (fb_* say which, how it failed and
 * how long the program lost before falling back to the A record). */
#define DSTRACE_F_FALLBACK 0x40
/* The outcome of a connect whose process's entry had ended when it came (the process ended,
 * or exec()ed, during the dial): it is that entry's, not a newer one's of the same pid (a new
 * process, or the program the exec started), whatever its ts_ns. */
#define DSTRACE_F_LATE 0x80

/* The name a mapped peer came from, as the C library's getaddrinfo() answered it in the same
 * process (bpf/resolver.bpf.h): on outbound events (connect, send) when known. */
#define DSTRACE_NAME_LEN 64
#define DSTRACE_NAME_KNOWN 0x01	    /* name is set */
#define DSTRACE_NAME_AAAA 0x02	    /* the answer had IPv6 addresses too (a+aaaa), else a-only */
#define DSTRACE_NAME_V4MAPPED 0x04  /* the hints asked AI_V4MAPPED */
#define DSTRACE_NAME_ALL 0x08	    /* ... and AI_ALL */
#define DSTRACE_NAME_ADDRCONFIG 0x10 /* ... and AI_ADDRCONFIG */
/* the answer gave this address as ::ffff:a.b.c.d (the resolver mapped it); else as a plain
 * IPv4 address the program mapped itself (Java does) */
#define DSTRACE_NAME_RESOLVER_MAPPED 0x20
#define DSTRACE_NAME_FAMILY_INET6 0x40 /* the hints asked AF_INET6 (else AF_UNSPEC or other) */

/* One record in the ring buffer. Addresses are the IPv4 addresses on the wire, in network
 * byte order; ports are in host byte order. */
struct dstrace_event {
	unsigned long long ts_ns; /* CLOCK_BOOTTIME */
	unsigned long long cgroup_id;
	unsigned long long sock_ino; /* inode of the socket (socket:[N] in /proc/PID/fd), 0 if none */
	unsigned int pid;
	unsigned int tid;
	unsigned int uid;
	unsigned int netns;
	unsigned int laddr;
	unsigned int raddr;
	unsigned short lport;
	unsigned short rport;
	int ret; /* 0 or a negative errno */
	unsigned char kind; /* enum dstrace_event_kind (< DSTRACE_EV_KINDS) */
	unsigned char proto; /* enum dstrace_proto */
	unsigned char flags;
	unsigned char name_flags; /* DSTRACE_NAME_* (0: no name known) */
	char comm[DSTRACE_COMM_LEN];
	char name[DSTRACE_NAME_LEN]; /* NUL-terminated when name_flags says KNOWN */
	/* with DSTRACE_F_FALLBACK: the IPv6 address tried first, its error (negative errno),
	 * and the time from that attempt's start to this connect's */
	unsigned int fb_addr6[4];
	int fb_err;
	unsigned int fb_pad;
	unsigned long long fb_lost_ns;
	/* with DSTRACE_F_LATE: the first_ns of the ended process entry it is of (the one that
	 * made the connect) */
	unsigned long long entry_ns;
};

#define DSTRACE_PROTO_MAX 2
#define DSTRACE_EXE_PARTS 10	 /* path components of the executable kept */
#define DSTRACE_EXE_PART_LEN 32 /* bytes of each, NUL included */

enum dstrace_dir {
	DSTRACE_DIR_SENT = 0,
	DSTRACE_DIR_RECEIVED = 1,
	DSTRACE_DIR_MAX = 2,
};

/* Per-process counters, aggregated in the kernel (map proc_stats, key: tgid). */
struct dstrace_proc_stats {
	/* connections (connect, accept) and datagrams (send, recv), by protocol */
	unsigned long long counts[DSTRACE_EV_MAX][DSTRACE_PROTO_MAX];
	unsigned long long failed;
	unsigned long long peers; /* distinct remote IPv4 addresses (map proc_peers) */
	/* payload bytes over mapped sockets: TCP and UDP, sent and received */
	unsigned long long bytes[DSTRACE_DIR_MAX][DSTRACE_PROTO_MAX];
	unsigned long long first_ns; /* CLOCK_BOOTTIME */
	unsigned long long last_ns;
	unsigned long long cgroup_id;
	unsigned int uid;
	unsigned int netns;
	char comm[DSTRACE_COMM_LEN];
	/* The executable's path, last component first ("curl", "bin", "usr"), read when the
	 * process first showed up, so it is known even for processes gone before user space
	 * could read /proc/PID/exe. An empty part ends the path; exe_parts_full means the
	 * path had more components than kept. */
	char exe_parts[DSTRACE_EXE_PARTS][DSTRACE_EXE_PART_LEN];
	unsigned int exe_parts_full;
	/* 1: a peer met was not counted (the kernel's proc_peers table was full): peers is a
	 * lower bound */
	unsigned int peers_partial;
	/* Lifecycle (bpf/lifecycle.bpf.h). first_ns names this entry: a pid has one entry per
	 * process and per program it exec()s, and first_ns tells them apart. */
	unsigned long long start_ns; /* the process's start (task start_time): a reused pid's is another */
	unsigned long long exit_ns;  /* CLOCK_BOOTTIME of the end, 0 while it runs: counts are
				     * final once pending is 0 too */
	unsigned int ended_by;	     /* enum dstrace_end */
	/* the last peer counted in proc_peers (IPv4, network order; 0: none): the kernel's
	 * shortcut past the table for the same peer again (bpf/core.bpf.h, proc_peer) */
	unsigned int last_peer;
	/* Mapped connects of this entry's still waiting for their outcome (bpf/connect.bpf.h,
	 * conn_entry): an entry that has ended with some (its process killed during a dial, the
	 * socket closed after the process's end, or held by a child) is held for their outcome,
	 * which it counts, before user space folds it (user/tables.c, walk_procs). */
	unsigned int pending;
};

/* An entry whose counts are final: ended, and holding no connect for its outcome (the kernel
 * never updates it again; user space folds it for good and frees it). */
static inline int dstrace_proc_final(const struct dstrace_proc_stats *st)
{
	return st->exit_ns && !st->pending;
}

/* Why a proc_stats entry ended (only its pending connects' outcomes update it again; user
 * space folds and frees it). */
enum dstrace_end {
	DSTRACE_END_NONE = 0,
	DSTRACE_END_EXIT = 1,  /* the process's last thread exited */
	DSTRACE_END_EXEC = 2,  /* the process exec()ed another program: a new entry follows */
	DSTRACE_END_STALE = 3, /* its exit was missed and its pid is now another process's */
};

/* An exec() the kernel tells user space of at once (bpf/lifecycle.bpf.h, ring exec_notices):
 * what about it matters now (DSTRACE_EXEC_*, or-ed). */
struct dstrace_exec_notice {
	unsigned int pid;    /* the process (tgid) */
	unsigned int what;   /* DSTRACE_EXEC_* */
	unsigned int mnt_ns; /* with DSTRACE_EXEC_MNT_NS: the inode of /proc/PID/ns/mnt */
	unsigned int pad;
	/* and the namespace's number (never reused, where the inode is once the namespace is
	 * freed) */
	unsigned long long mnt_id;
};

enum dstrace_exec_what {
	/* a 32-bit x86 image, while 32-bit programs' calls are not followed (user/compat.c) */
	DSTRACE_EXEC_IA32 = 1,
	/* the first exec() in a mount namespace not told of before (user/names.c: its C
	 * library) */
	DSTRACE_EXEC_MNT_NS = 2,
};

/* A (process entry, remote IPv4 address) pair met (map proc_peers): first_ns names the entry
 * (struct dstrace_proc_stats.first_ns). User space deletes the pairs of the entries it frees. */
struct dstrace_peer_key {
	unsigned int tgid;
	unsigned int raddr;
	unsigned long long first_ns;
};

/* UDP flow values (map udp_flows), read by user space for per-peer datagram counts. */
struct dstrace_flow_key {
	unsigned long long sock_ino;
	unsigned int pid;
	unsigned int raddr;
	unsigned short rport;
	unsigned char kind;
	unsigned char pad;
};

struct dstrace_flow_val {
	unsigned long long datagrams;
	unsigned long long bytes;
	unsigned short lport;
	/* 1: the peer spoke first (this process's flow the other way was there when this one
	 * began, and was not itself an answer; for an exchange under way at start, the
	 * socket told who began it: bpf/existing.bpf.h, existing_udp_began): the flow answers
	 * it. A service's replies to its clients, a client's answers: the exchange is the
	 * other flow's, whose direction it takes. */
	unsigned char answer;
	unsigned char pad0;
	unsigned short pad[2];
};

/* A connect waiting for its outcome (bpf/maps.bpf.h): the head of its record in the slot
 * array conn_slots and, since alone, in the hash conn_pending, as user space reads them to
 * give up the connects that waited too long (user/tables.c). */
#define DSTRACE_CONN_SLOT_BUSY (~0ull) /* a slot's tag while one CPU writes or reads it */
/* A key of conn_pending that is a socket's kernel address, not a cookie (a connect in
 * progress at start whose socket had none): kernel addresses have their top bit set on
 * x86-64 and arm64 (with 4- or 5-level tables, 48- or 52-bit addresses), cookies count up
 * from 1. */
#define DSTRACE_CONN_KEY_IS_SK(key) (((unsigned long long)(key) >> 63) != 0)
struct dstrace_conn_head {
	unsigned long long since;    /* when it was kept (CLOCK_BOOTTIME) */
	unsigned long long entry_ns; /* the process entry counting it waiting (its first_ns) */
	unsigned long long cgroup_id, start_ns; /* of the process that connected */
	unsigned int tgid;			/* the same */
};
struct dstrace_conn_slot_head {
	unsigned long long tag; /* the socket cookie of the connect held; 0: free; or BUSY */
	struct dstrace_conn_head c;
};

/* Threads asleep in a socket call when dstrace started that it follows to their return
 * (bpf/inflight.bpf.h, map inflight_calls, by tid); more are counted (stash_full). */
#define DSTRACE_INFLIGHT_MAX 4096
#define DSTRACE_INFLIGHT_ACCEPT 1 /* accept(), accept4(): the result is the new descriptor */
#define DSTRACE_INFLIGHT_RECV 2	  /* recvfrom(), recvmsg(), read() of a socket: bytes read */
#define DSTRACE_INFLIGHT_RECVMMSG 3 /* recvmmsg() of a UDP socket: its first datagram */
struct dstrace_inflight_call {
	long long nr;	   /* the call's number (SYS_*): a thread's other calls are not it */
	int fd;		   /* its first argument: the socket's descriptor */
	int flags;	   /* DSTRACE_INFLIGHT_RECV, _RECVMMSG: the call's MSG_ flags */
	unsigned int kind; /* DSTRACE_INFLIGHT_* */
	/* _RECVMMSG: the first datagram it consumed, kept until it is known whose call
	 * took it (bpf/inflight.bpf.h, inflight_skb_consumed); set by the kernel only */
	int first_len;
	unsigned int first_addr;
	unsigned short first_port;
	unsigned char first_segs, first_kept; /* first_kept: 1 if kept, 2 if IPv4 */
	/* a 32-bit program's (x86 ia32) call: nr is i386's; made through socketcall(2), which
	 * of its calls (SYS_ACCEPT, ...), the descriptor the first of the arguments it points
	 * to; else (0) the first argument */
	unsigned short sockcall;
	unsigned char ia32, pad;
};

/* Tokens of DSTRACE_FAULT_SKIP_STATE (tests only; bpf/maps.bpf.h, fault_tokens). */
#define DSTRACE_FAULT_TOKENS_MAX 64

/* Global counters (map counters, index). */
enum dstrace_counter {
	DSTRACE_CNT_EVENTS = 0,	  /* events written to the ring buffer */
	DSTRACE_CNT_LOST = 1,	  /* events the ring buffer had no room for */
	DSTRACE_CNT_PROC_FULL = 2, /* per-process updates dropped: proc_stats full */
	DSTRACE_CNT_FLOW_NEW = 3, /* UDP flows inserted (evictions = inserted - present) */
	DSTRACE_CNT_STASH_FULL = 4, /* calls not followed: connect/bind stash or kprobe_calls full */
	DSTRACE_CNT_CONN_FULL = 5, /* connects whose outcome could not be followed: table full
				    * (user space adds those it gave up) */
	DSTRACE_CNT_RECV_UNKNOWN = 6, /* datagrams read without an address whose source (IPv4
					* or not) could not be told: not counted */
	DSTRACE_CNT_NAME_NEW = 7, /* (process, address) names inserted (evictions = inserted -
				   * present in the LRU map resolved) */
	DSTRACE_CNT_STATE_NESTED = 8, /* TCP state changes sk_state_nested handled: sk_state
				       * was running on the CPU, so the kernel skipped it */
	DSTRACE_CNT_CONN_UNSEEN = 9, /* TCP connects whose outcome no program saw: the kernel
				      * ran none for its state change (counted by sk_release, or
				      * by the connect hook when the socket connects again) */
	DSTRACE_CNT_MAX = 10,
};

#endif /* DSTRACE_H */
