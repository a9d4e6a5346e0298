/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Configuration and maps shared by every backend. Every map is bounded. */
#ifndef DSTRACE_MAPS_BPF_H
#define DSTRACE_MAPS_BPF_H

#include "dstrace.h"

/* Set by user space between open and load. */
const volatile bool filter_pid_enabled = false;
const volatile bool filter_comm_enabled = false;
const volatile char filter_comm[DSTRACE_COMM_LEN] = {};
const volatile __u16 filter_port = 0;
const volatile __u32 filter_events = DSTRACE_EVMASK_ALL;
const volatile __u32 filter_protos = DSTRACE_PROTOMASK_ALL;
/* false with -i alone: everything is counted in the kernel, no event is needed */
const volatile bool emit_events = true;
/* The benchmark's floor (--floor): every program attached as usual, returning at once, so
 * the cost of the hooks themselves can be told from dstrace's work. The verifier drops the
 * rest of each program. */
const volatile bool floor_only = false;
/* CLOCK_BOOTTIME as user space last read it: its main loop writes it once per pass
 * (dstrace_backend__clock_tick), every 100 ms when idle (poll's timeout), less often while a
 * pass blocks on its output or the start-up scan runs. What needs a time only that exact (a
 * process entry's last_ns: proc_touch) reads it with a load: bpf_ktime_get_boot_ns() is a
 * helper call of 150-190 ns in this VM. 0 until the first write. */
volatile __u64 coarse_boot_ns = 0;
/* the tracepoint backend: connect(2)'s exit gives the immediate result (connect_stash) */
const volatile bool connect_by_syscall = false;
/* the kprobe backend before Linux 5.19: udpv6_recvmsg() takes (sk, msg, len, noblock, flags,
 * addr_len), flags one argument later */
const volatile bool recvmsg_noblock = false;
/* bpf_get_current_task_btf() is allowed in the cgroup sock_addr hooks (newer kernels; user
 * space asks the kernel): the calling task (the connect hook's caller, the thread that keys a
 * datagram's hand-off) is then read with loads, not helper calls */
const volatile bool cgroup_task_btf = false;
/* 1: a cgroup_skb program may ask which thread runs it (bpf_get_current_pid_tgid, 6.10+) */
const volatile bool egress_tid = false;
#define FLOOR_RETURN(ret)                                                                        \
	do {                                                                                     \
		if (floor_only)                                                                  \
			return (ret);                                                            \
	} while (0)
/* Wake the reader only once this much is queued: a wakeup costs microseconds per event, and
 * user space reads the ring at least every 100 ms anyway. */
const volatile __u64 wakeup_bytes = 64 * 1024;

/* Size set by user space (--ringbuf-size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* exec()s user space is told of at once (struct dstrace_exec_notice, waking the reader):
 * - 32-bit programs' calls (compat.bpf.h) are followed only while there is one: user space
 *   attaches their program when it finds a 32-bit process at start, or when the exec of a
 *   32-bit image says so here, and then sets compat_following (also where there is nothing
 *   to follow: no ia32 calls);
 * - the first exec in a mount namespace other than mnt_own (dstrace's; 0: not told) made in
 *   dstrace's user namespace (mnt_own_userns), with a root other than dstrace's (its
 *   inode and device, the kernel's encoding), which may bring a C library of its own (a
 *   container's image: user/names.c looks in it at once instead of at its next sweep).
 *   mnt_told keeps the namespaces told of, by their number (an inode number is reused by a
 *   namespace made after one freed); an LRU: one evicted is told of again, and user space
 *   knows it. User space deletes one whose process it could not read (ended), so that its
 *   next exec is told of. Off (mnt_own 0) where dstrace's PID namespace is not the first:
 *   the pid told would not be its. Where the kernel's root device is not stat()'s (btrfs
 *   reports a subvolume's own), every namespace is told of once, dstrace's root or not.
 * Room for 2 048 notices (24 bytes and the ring's 8) between two reads. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} exec_notices SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} mnt_told SEC(".maps");

volatile __u32 mnt_own = 0;
volatile __u32 mnt_own_userns = 0;
volatile __u32 mnt_own_root_dev = 0;
volatile __u64 mnt_own_root_ino = 0;
volatile __u32 compat_following = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DSTRACE_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* sk_state on this CPU (socket.bpf.h): how deep it runs, how many times it ran, and that count
 * when the outermost run began. */
struct sk_state_cpu {
	__u32 depth;
	__u32 pad;
	__u64 runs;
	__u64 top_runs;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sk_state_cpu);
} sk_state_cpus SEC(".maps");

/* -p/--pid values (tgids). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DSTRACE_MAX_PIDS);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

/* Per-process totals. A plain hash, not LRU: a full table is counted
 * (DSTRACE_CNT_PROC_FULL), never silently recycled. Size set by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct dstrace_proc_stats);
} proc_stats SEC(".maps");

/* Entries of processes that ended (exit, exec), final, until user space folds and deletes
 * them: a pid freed by the kernel is free here at once, so a process reusing it never
 * inherits another's totals. A bounded queue: when it is full, the ended entry stays in
 * proc_stats, marked (exit_ns), and user space folds it from there. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct dstrace_proc_stats);
} proc_exited SEC(".maps");

/* The (process entry, remote IPv4 address) pairs seen, for proc_stats.peers: counted in the
 * kernel so the count stays exact when events are lost. A plain hash, not an LRU: a pair
 * evicted and met again would count twice. User space deletes the pairs of every entry it
 * folds once the entry has ended (user/backend.c, walk_procs), so only the pairs of entries
 * still in proc_stats or proc_exited are here; should it fill even so, the pair is not
 * counted and its entry is marked (peers_partial): that count is then a lower bound, and
 * says so. One entry counts at most PEER_PAIRS_PER_ENTRY peers (then it is marked the same
 * way), so that a long-lived server meeting the world cannot fill the table for the others;
 * entries are allocated as used (262 144 pairs, about 20 MiB at most). first_ns names the
 * entry (a reused pid, or the program a process exec()ed, counts its peers afresh). Key:
 * struct dstrace_peer_key (include/dstrace.h). */
#define PEER_PAIRS_PER_ENTRY 65536 /* one process's distinct peers counted at most */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 262144);
	__type(key, struct dstrace_peer_key);
	__type(value, __u8);
} proc_peers SEC(".maps");

/* Room to build a new proc_stats entry (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dstrace_proc_stats);
} proc_scratch SEC(".maps");

/* UDP flows seen so far: one event per new (process, socket, peer, direction). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dstrace_flow_key);
	__type(value, struct dstrace_flow_val);
} udp_flows SEC(".maps");

/* connect() through syscalls (tracepoint backend): the socket of a mapped connect, left by
 * the cgroup connect hook (socket.bpf.h) in the calling thread's slot for the syscall's exit,
 * which gives the immediate result (a failure before any SYN, every UDP result). No syscall
 * entry hook: the cgroup hook runs inside connect(2), only for AF_INET6 sockets.
 *
 * An array of slots, a thread's being its tid modulo CONNECT_SLOTS, written and read in place:
 * a hash's insert and delete cost 520 ns per connect here. A slot is held only while a result
 * may still come from the call: the exit empties it, and so does a TCP connect that goes to
 * SYN_SENT (inet_sock_set_state, in the caller's context: from then on the state change
 * decides), so a blocking connect waiting for its handshake holds none; a connect that fails
 * inside the call after that (no local port left) gets it back for the exit
 * (connect_call_decides in connect.bpf.h). Two threads sharing a slot at the same instant:
 * the second overwrites the first, which is counted (stash_full). A connect driven by a
 * kernel socket, or by io_uring and completed in another thread, may leave its thread's slot
 * filled; it never decides another socket (the exit checks the cookie and, for TCP, that the
 * socket is still closed), and the thread's exit empties it (lifecycle.bpf.h). */
#define CONNECT_SLOTS 16384
struct connect_args {
	__u64 sk;     /* struct sock *, as the hook saw it */
	__u64 cookie; /* its cookie then: a socket freed and reused since is not this one */
	/* a TCP connect, whose outcome the state change reports; the syscall's exit then
	 * needs no socket for a result that is not final */
	__u32 tcp;
	__u32 tid; /* the thread whose slot it is; 0: empty */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CONNECT_SLOTS);
	__type(key, __u32);
	__type(value, struct connect_args);
} connect_stash SEC(".maps");

/* Whether slot i of connect_stash was ever filled: connect_slot_filled[i], set to 1 (and
 * never back) by the hook before it first fills the slot, in the thread that then makes the
 * call. So the exit of a connect(2) that is not mapped, and every one on the machine passes
 * tp_exit_connect, reads these 16 KiB, not its slot in the 384 KiB array (a cache miss, on a
 * server whose clients connect over IPv4). */
__u8 connect_slot_filled[CONNECT_SLOTS] = {};

/* Thread tid's slot (never NULL for a valid index, but the verifier wants the test). */
static __always_inline struct connect_args *connect_slot(__u32 tid)
{
	__u32 key = tid & (CONNECT_SLOTS - 1);

	return bpf_map_lookup_elem(&connect_stash, &key);
}

/* Thread tid's slot's byte in connect_slot_filled. */
static __always_inline volatile __u8 *connect_slot_filled_of(__u32 tid)
{
	return &connect_slot_filled[tid & (CONNECT_SLOTS - 1)];
}

/* Thread tid's slot, for a look at what it holds: NULL if it was never filled. */
static __always_inline struct connect_args *connect_slot_if_filled(__u32 tid)
{
	return *connect_slot_filled_of(tid) ? connect_slot(tid) : NULL;
}

/* Empty tid's slot if it holds sk's connect (cookie), or any of tid's if cookie is 0. */
static __always_inline void connect_slot_release(__u32 tid, __u64 cookie)
{
	struct connect_args *slot = connect_slot_if_filled(tid);

	if (slot && slot->tid == tid && (!cookie || slot->cookie == cookie))
		slot->tid = 0;
}

/* Who did something, read in their own context: a connect's outcome arrives later, often in
 * softirq, where the current task is anybody. */
struct task_ident {
	__u64 cgroup_id;
	__u64 start_ns; /* the process's start: with the tgid, names one process */
	__u32 tgid;
	__u32 tid;
	__u32 uid;
	__u32 pad; /* the network namespace is the socket's (sk_netns), read where needed */
	char comm[DSTRACE_COMM_LEN];
};

/* A native IPv6 connect that failed, for the mapped connect that may follow (the starred
 * cell: the resolver's side, bpf/resolver.bpf.h). */
struct fallback_rec {
	__u32 addr6[4];
	__s32 err;	 /* negative errno */
	__u32 pad;
	__u64 start_ns;	 /* the failed connect's start; in an event: the time lost */
};

/* A connect() of an AF_INET6 socket to an IPv4-mapped address whose outcome is not known yet,
 * from the cgroup connect hook (the caller's context, whatever drove it: a syscall, io_uring,
 * TCP Fast Open, a kernel socket) to the state change or immediate error that decides it.
 * One per socket (keyed by socket cookie): re-issued connect() calls add nothing. An entry
 * whose outcome never came (a socket closed in SYN_SENT is still an outcome; a run of the
 * program that decides it was missed) is given up by user space after a while
 * (user/tables.c, dstrace_backend__sweep_connects), and counted (stash_full). */
struct conn_pending {
	/* first, as user space reads them (struct dstrace_conn_head) */
	__u64 since; /* when it was kept (CLOCK_BOOTTIME) */
	/* the first_ns of the process entry that counts it waiting (its pending), 0 if none
	 * does (connect.bpf.h, conn_entry) */
	__u64 entry_ns;
	struct task_ident who;
	__u32 daddr;
	__u16 dport;
	__u8 proto;
	__u8 flags;
	struct fallback_rec fb; /* with DSTRACE_F_FALLBACK */
};

/* Where a pending connect is kept (connect.bpf.h, conn_pending_put): in place, in the array slot
 * its cookie selects, claimed and released by compare-and-exchange of the slot's tag (a
 * hash's insert and delete cost 800-1100 ns per connect here); in the hash conn_pending
 * when the slot is held by another socket's connect, or in programs that may use no
 * compare-and-exchange (slots false: the kprobe backend's, and the socket layer's *_hash
 * twins it loads: it also runs on kernels before 5.12, whose verifier refuses the
 * instruction even where it cannot run). A connect holding a slot for more than
 * CONN_SLOT_AGE_NS (no answer yet, or an outcome never seen) moves to the hash when another
 * needs the slot, so slots never clog. The hash is a plain one, not an LRU: an LRU evicts
 * before it is full, uncounted (753 of 12 000 connects waiting at once were lost so); full,
 * a new connect is counted (stash_full). User space gives up entries of either kind that
 * waited too long (the slots are mapped into it for that: it claims one as a take does). */

#define CONN_SLOTS 16384	    /* a power of two */
#define CONN_SLOT_BUSY DSTRACE_CONN_SLOT_BUSY /* a tag while one CPU writes or reads it */
#define CONN_SLOT_AGE_NS 1000000000ull /* held longer (a SYN unanswered): may move to the hash */

struct conn_slot {
	__u64 tag;   /* the socket cookie of the connect held; 0: free; or CONN_SLOT_BUSY */
	struct conn_pending c;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, CONN_SLOTS);
	__type(key, __u32);
	__type(value, struct conn_slot);
} conn_slots SEC(".maps");

/* What user space reads of them (include/dstrace.h) */
_Static_assert(__builtin_offsetof(struct conn_slot, tag) ==
		       __builtin_offsetof(struct dstrace_conn_slot_head, tag) &&
	       __builtin_offsetof(struct conn_slot, c) ==
		       __builtin_offsetof(struct dstrace_conn_slot_head, c),
	       "conn_slot's head");
_Static_assert(__builtin_offsetof(struct conn_pending, since) ==
		       __builtin_offsetof(struct dstrace_conn_head, since) &&
	       __builtin_offsetof(struct conn_pending, entry_ns) ==
		       __builtin_offsetof(struct dstrace_conn_head, entry_ns) &&
	       __builtin_offsetof(struct conn_pending, who.tgid) ==
		       __builtin_offsetof(struct dstrace_conn_head, tgid),
	       "conn_pending's head");

/* Entries put in conn_pending with slots in use and not taken yet (user space lowers it for
 * the entries it gives up; only slower if it were high: the hash is then looked up on every
 * miss). */
__u64 conn_spilled = 0;

/* Which slots may hold a connect: conn_slot_held[i] for slot i, set to 1 before a connect
 * is published in its slot and to 0 by the take that empties it, while it holds the slot
 * (CONN_SLOT_BUSY; connect.bpf.h): only the slot's holder writes it, so plain stores do,
 * ordered by the tag's exchange. A take or a look for a socket whose slot's byte is 0 reads
 * these 16 KiB, not the slot in the 1.75 MiB array: the close of every accepted socket
 * (sk_release), which keeps no connect, cost a cache miss there. User space's give-ups leave
 * it at 1: only slower, until a take empties the slot again. */
__u8 conn_slot_held[CONN_SLOTS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct conn_pending);
} conn_pending SEC(".maps");

/* Entries put in conn_pending under their socket's address, not taken yet: connects in
 * progress at start whose socket had no cookie (existing.bpf.h, existing_connecting). A socket
 * address is a kernel address, never a cookie (DSTRACE_CONN_KEY_IS_SK); user space lowers
 * it for the entries it gives up. */
__u64 conn_by_sk = 0;

/* Fault injection, for tests (DSTRACE_FAULT_SKIP_STATE=K:ADDR, user/backend.c): the next K
 * SYN_SENT exits of connects to ::ffff:ADDR are ignored, as if the kernel had run no program
 * for them (socket.bpf.h, sock_release). Each pops one of K tokens user space pushed on
 * fault_tokens, a queue: a pop is atomic on every kernel (the _hash twins may use no
 * fetching atomics), and needs no loop (older verifiers refuse one over a map call).
 * fault_skip_addr (network order) 0: none, as always but in tests. */
__u32 fault_skip_addr = 0;

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, DSTRACE_FAULT_TOKENS_MAX);
	__type(value, __u8);
} fault_tokens SEC(".maps");

/* The peer of the UDP datagram in flight, left by a cgroup sock_addr hook (or a kernel function
 * hook) for the hook that counts it later in the same call: per thread and direction (key:
 * tid << 1 | received), so threads sharing a socket never overwrite each other's. A thread
 * claims the array slot its key selects (compare-and-swap of the slot's tag, no lock, no hash);
 * a thread that finds its slot held by another (two live threads whose keys collide, or an
 * entry a thread left behind) spills to the LRU hash, which is looked up only while spills
 * may be outstanding. */
struct dgram_peer {
	__u64 cookie; /* the socket's */
	__u32 addr;   /* IPv4, network order; valid if mapped */
	__u16 port;   /* host order */
	__u8 mapped;
	__u8 segs;    /* received: datagrams the read took (UDP_GRO: several), 0 for one;
		       * sent: the datagrams beyond the first of the call's GSO packet
		       * (cg_skb_egress, where it knows the thread) */
};

#define DGRAM_HANDOFF_SLOTS 8192 /* a power of two */

struct dgram_slot {
	__u32 tag; /* key + 1 of the thread that holds it; 0: free */
	__u32 pad;
	struct dgram_peer peer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DGRAM_HANDOFF_SLOTS);
	__type(key, __u32);
	__type(value, struct dgram_slot);
} dgram_slots SEC(".maps");

/* Entries spilled to dgram_handoff and not yet taken (an LRU eviction leaves it high: the
 * hash is then looked up on every miss, which is only slower). */
__u64 dgram_spilled = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct dgram_peer);
} dgram_handoff SEC(".maps");

/* bind() through syscalls: the requested mapped address, per thread, from entry to exit. */
struct bind_args {
	__s32 fd;
	__u32 addr;
	__u16 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct bind_args);
} bind_stash SEC(".maps");

/* The scan of existing sockets at start (iter/task_file, run twice by user space): pass 1
 * records the ports of AF_INET6 TCP listeners per network namespace, pass 2 reports mapped
 * connections and UDP sockets, once per (process, socket). */
__u32 existing_pass = 0;
/* Set once the scan is over; until then connects and accepts mark their sockets seen, so a
 * connection made while the scan runs is reported once. */
__u32 existing_done = 0;

struct listener_key {
	__u32 netns;
	__u32 port; /* the local port | the protocol (DSTRACE_PROTO_*) << 16 */
};

/* Pass 1 notes TCP listeners, and apart (so that a host's many UDP sockets leave the
 * listeners their room) the ports of unconnected UDP sockets: a connection or connected UDP
 * socket on such a port serves a client. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct listener_key);
	__type(value, __u8);
} existing_listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct listener_key);
	__type(value, __u8);
} existing_udp_ports SEC(".maps");

/* UDP exchanges under way at start: for each connected mapped UDP socket the scan finds, who
 * began the exchange with its peer, which a flow's first datagram cannot tell (the program's
 * reply may come first after the start). Key: the flow's, with pid 0 (whichever process uses
 * the socket: a child forked since shares it) and kind DSTRACE_EV_EXISTING; value:
 * DSTRACE_EV_SEND (the program began: a client) or DSTRACE_EV_RECV (the peer did: a
 * service's socket connected to its client). A new flow looks here once udp_began_n says
 * there are entries (traffic.bpf.h, udp_flow_answers). */
__u32 udp_began_n = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, struct dstrace_flow_key);
	__type(value, __u8);
} udp_began SEC(".maps");

/* The same for each unconnected UDP socket the scan finds that may carry IPv4, by its port
 * (existing.bpf.h, existing_udp_role). Key: the socket's inode; value: DSTRACE_EV_SEND (a
 * port the kernel chose: a client's) or DSTRACE_EV_RECV (a port bound: a service's). Asked
 * by a new flow with no other-way flow while udp_roles_n says there are entries: from the
 * scan until 10 s after it, when user space's clock tick (the main loop's: every 100 ms when
 * idle, later while a pass blocks on its output; user/backend.c, dstrace_backend__clock_tick)
 * sets it back to 0. An exchange under way at start shows itself by then; a flow first seen
 * later is a new exchange, told by its first datagram, and asks nothing more. */
__u32 udp_roles_n = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u8);
} udp_roles SEC(".maps");

/* While pass 2 runs: the outcomes of TCP connects to mapped peers (socket address -> the
 * result, as handle_tcp_state decides it), noted before the state change's program takes a
 * pending connect, so that a connect in progress the scan keeps just after that program
 * found nothing is decided all the same (existing.bpf.h, existing_connecting). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __s32);
} existing_outcomes SEC(".maps");

struct existing_key {
	__u64 ino;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct existing_key);
	__type(value, __u8);
} existing_seen SEC(".maps");

/* io_uring accept requests in flight (tracepoint backend: tp_io_uring_submit), by ring and
 * user_data, for the completions a multishot accept posts without its request. LRU: one
 * never completed (its ring torn down) is pushed out by newer ones. */
struct uring_req_key {
	__u64 ring;
	__u64 user_data;
};

struct uring_accept {
	__u32 file_slot; /* the request's: 0, FILE_INDEX_ALLOC (the kernel picks) or slot + 1 */
	__u16 port;	 /* the listening socket's port; 0: not known (a fixed file) */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct uring_req_key);
	__type(value, struct uring_accept);
} uring_accepts SEC(".maps");

/* Per AF_INET6 UDP socket with IPv4 traffic (backends that may use socket storage:
 * tracepoint, fentry): its ids, read once instead of per datagram, and the peer of the corked
 * datagram being built (MSG_MORE, UDP_CORK), if valid. Socket-local storage: freed with the
 * socket. */
struct dgram_scratch {
	__u64 ino;   /* sk_ino(), 0 until read */
	__u32 netns; /* sk_netns() */
	__u32 cork_addr;
	__u16 cork_port;
	__u8 cork_valid;
	__u8 pad;
	/* tracepoint backend: datagrams beyond the first of the GSO packets (UDP_SEGMENT) that
	 * left the socket for an IPv4 peer since its last send was counted (cg_skb_egress) */
	__u32 gso_extra;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dgram_scratch);
} dgram_scratch SEC(".maps");

/* Set once a datagram was ever corked (cork_valid), never cleared: until then the hooks that
 * forget a flushed cork at the start of every send need not look at the socket's storage. */
__u32 corks_seen = 0;

/*
 * Per AF_INET6 UDP socket that has received IPv4: the sources of the datagrams queued on it,
 * in queue order, for reads that ask for no address (recv(), read()) on the tracepoint
 * backend, which sees the read (sock_recv_length) but not the datagram. Filled by the
 * cgroup_skb ingress hook, which runs for each datagram just before it is queued; emptied
 * by the reads. A run of IPv6 datagrams, or of IPv4 ones from one source, takes one slot;
 * datagrams that find it full take one
 * "unknown" slot, so the sources that are kept stay in step with the socket's queue. Socket-
 * local storage, created by the first IPv4 datagram: freed with the socket, never made for
 * IPv6-only sockets.
 */
#define DGRAM_RXQ_SLOTS 256

enum rxq_kind {
	RXQ_V4 = 0,	 /* one IPv4 datagram, source in addr and port */
	RXQ_V6 = 1,	 /* a run of IPv6 datagrams */
	RXQ_UNKNOWN = 2, /* a run of datagrams that found the queue of sources full */
};

struct rxq_slot {
	__u32 addr; /* IPv4 source, network order */
	__u16 port; /* host order */
	__u16 len;  /* UDP payload length (the longest of the run) */
	__u16 run;  /* datagrams in this slot */
	__u8 kind;  /* enum rxq_kind */
	__u8 segs;  /* one packet that holds several datagrams (GRO, for a socket that set
		     * UDP_GRO: one read takes them all), 0 for a plain one; never in a run */
};

struct dgram_rxq {
	struct bpf_spin_lock lock;
	__u32 head, tail; /* slots in use: [head, tail), modulo DGRAM_RXQ_SLOTS */
	__u32 drops;	  /* the socket's drop count when the last datagram was queued */
	__u32 started;	  /* 0: just made */
	struct rxq_slot slot[DGRAM_RXQ_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dgram_rxq);
} dgram_rxq SEC(".maps");

/* The resolver (bpf/resolver.bpf.h). A getaddrinfo() call in progress, per thread: the name
 * asked, the hints (DSTRACE_NAME_* bits), and where the answer list will be. */
struct gai_call {
	__u64 res; /* struct addrinfo ** of the caller */
	__u64 start_ns; /* a call older than GAI_CALL_MAX_NS never returned (longjmp, exit) */
	__u32 flags;
	__u32 pad;
	char name[DSTRACE_NAME_LEN];
};

/* An LRU: a call whose return probe never ran (siglongjmp out of it, thread cancelled, exit)
 * is forgotten in time, and ignored once older than GAI_CALL_MAX_NS. */
#define GAI_CALL_MAX_NS (30ull * 1000000000ull)
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct gai_call);
} gai_calls SEC(".maps");

/* How many entries the resolver's maps may hold, so that the hooks every connection runs
 * (the cgroup connect hook, the state change) look them up only while one can be there:
 * raised before an insert, lowered after a delete; an entry an LRU forgot keeps its count
 * up, which costs only the lookups. */
__u64 gai_calls_live = 0;	/* getaddrinfo() calls in progress (gai_calls) */
__u64 native_tries_live = 0;	/* native IPv6 connects followed (native_pending) */
__u64 fallbacks_live = 0;	/* failed ones kept for a fallback (fallback_last) */

/* Threads whose last answer had IPv6 and IPv4 addresses both: their native IPv6 connects
 * are followed (native_pending, by socket cookie) and a failed one is kept (fallback_last,
 * by thread) for a mapped connect that follows. LRUs: an attempt never decided is forgotten. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64); /* when the answer came (CLOCK_BOOTTIME) */
} gai_recent SEC(".maps");

/* Whether a thread with this tid modulo GAI_SEEN_SLOTS ever had such an answer: set to 1 (and
 * never back) before its gai_recent entry is written, in that thread, which then makes the
 * connects. Every native IPv6 connect on the machine passes the cgroup connect hook: the
 * threads that never resolved a name with both (a server's pool connecting by address, a
 * proxy) read a byte there, not the hash. */
#define GAI_SEEN_SLOTS 16384
__u8 gai_recent_seen[GAI_SEEN_SLOTS] = {};

static __always_inline volatile __u8 *gai_recent_seen_of(__u32 tid)
{
	return &gai_recent_seen[tid & (GAI_SEEN_SLOTS - 1)];
}

struct native_try {
	__u32 tid;
	__u32 pad;
	__u32 addr6[4];
	__u64 start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct native_try);
} native_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct fallback_rec);
} fallback_last SEC(".maps");

/* Which name each IPv4 address of a process came from: the last answer that held it. An
 * LRU: the oldest answers make room (an address not found has no name: "unknown"). */
struct name_key {
	__u32 tgid;
	__u32 addr; /* IPv4, network order */
};

struct name_val {
	char name[DSTRACE_NAME_LEN];
	__u32 flags; /* DSTRACE_NAME_* */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct name_key);
	__type(value, struct name_val);
} resolved SEC(".maps");

#endif /* DSTRACE_MAPS_BPF_H */
