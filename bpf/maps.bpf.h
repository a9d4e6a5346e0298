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
/* Wake the reader only once this much is queued: a wakeup costs microseconds per event, and
 * user space reads the ring at least every 100 ms anyway. */
const volatile __u64 wakeup_bytes = 64 * 1024;

/* Size set by user space (--ringbuf-size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DSTRACE_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

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
 * kernel so the count stays exact when events are lost. LRU: a pair evicted and seen again
 * counts twice (only past 65536 pairs). first_ns names the entry (a reused pid, or the
 * program a process exec()ed, counts its peers afresh). */
struct proc_peer_key {
	__u32 tgid;
	__u32 raddr;
	__u64 first_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct proc_peer_key);
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

/* connect(): the destination from syscall entry, per thread, until syscall exit. */
struct connect_args {
	__u64 uaddr;	 /* user sockaddr, when it could not be read at entry */
	__s32 fd;
	__u32 addrlen;
	__u32 daddr;
	__u16 dport;
	__u8 unread;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct connect_args);
} connect_stash SEC(".maps");

/* The peer of the datagram in flight on a socket, left by a cgroup sock_addr hook for the
 * sock_{send,recv}_length tracepoint that follows on the same thread. Socket-local storage:
 * freed with the socket, so it is bounded by the number of sockets. */
struct dgram_peer {
	__u32 tid;
	__u32 addr; /* IPv4, network order; valid if mapped */
	__u16 port; /* host order */
	__u8 mapped;
	__u8 valid;
};

struct dgram_scratch {
	struct dgram_peer send;
	struct dgram_peer recv;
	struct dgram_peer cork; /* the peer of the corked datagram being built, if valid */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dgram_scratch);
} dgram_scratch SEC(".maps");

#endif /* DSTRACE_MAPS_BPF_H */
