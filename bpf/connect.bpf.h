/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Paths 1 and 2, and bind: a connect to a mapped address from its start to its outcome
 * (pending connects, the state change, the call's result, the resolver's fallbacks), a
 * mapped accept, a bind to a mapped address.
 */
#ifndef DSTRACE_CONNECT_BPF_H
#define DSTRACE_CONNECT_BPF_H

#include "core.bpf.h"

/*
 * Path 1: connect() of an AF_INET6 socket to an IPv4-mapped address (TCP falls to
 * tcp_v4_connect, UDP to __ip4_datagram_connect). It starts at the cgroup connect hook, in
 * the caller's context whatever drives the connect (a syscall, io_uring, TCP Fast Open, a
 * kernel socket, MPTCP's first subflow), and ends with its outcome: for TCP the socket's
 * state change (SYN_SENT -> ESTABLISHED, or -> CLOSE with the socket's error), or an
 * immediate error before any SYN; for UDP the result of the call. One event per attempt:
 * the pending entry is deleted by whoever decides first.
 */
/* Is this thread inside getaddrinfo() (its own sorting connects)? */
static __always_inline bool gai_in_call(__u32 tid)
{
	struct gai_call *g;

	if (!gai_calls_live)
		return false;
	g = bpf_map_lookup_elem(&gai_calls, &tid);
	return g && bpf_ktime_get_boot_ns() - g->start_ns < GAI_CALL_MAX_NS;
}

/* The starred cell, its mapped half: did this thread's native IPv6 connect to an address of
 * a name with A and AAAA records fail just before (fallback_last), and does the mapped address
 * come from such a name's answer in this process? Then this connect is its fallback. */
#define FALLBACK_WINDOW_NS (60ull * 1000000000ull)
#define GAI_RECENT_NS (60ull * 1000000000ull)
static __always_inline void fallback_take(struct conn_pending *c)
{
	struct name_key k = { .tgid = c->who.tgid, .addr = c->daddr };
	struct fallback_rec *fb;
	struct name_val *v;
	__u64 now;

	if (!fallbacks_live)
		return;
	fb = bpf_map_lookup_elem(&fallback_last, &c->who.tid);
	if (!fb)
		return;
	now = bpf_ktime_get_boot_ns();
	v = bpf_map_lookup_elem(&resolved, &k);
	if (v && (v->flags & DSTRACE_NAME_AAAA) && now - fb->start_ns < FALLBACK_WINDOW_NS) {
		c->fb = *fb;
		c->fb.start_ns = now - fb->start_ns; /* the time lost */
		c->flags |= DSTRACE_F_FALLBACK;
	}
	if (!bpf_map_delete_elem(&fallback_last, &c->who.tid))
		__sync_fetch_and_add(&fallbacks_live, -1);
}

/* The starred cell, its native half: a thread whose last answer had A and AAAA records
 * connects over IPv6 (the cgroup hook, ctx): follow that attempt until its outcome. A thread
 * that never had such an answer leaves on a byte's read (gai_recent_seen). */
static __always_inline void native_try_start(struct bpf_sock_addr *ctx)
{
	struct native_try t = { .tid = (__u32)bpf_get_current_pid_tgid() };
	__u64 cookie, *answered;

	if (!*gai_recent_seen_of(t.tid))
		return;
	/* an answer of the last GAI_RECENT_NS: the connects that walk it */
	answered = bpf_map_lookup_elem(&gai_recent, &t.tid);
	if (!answered || bpf_ktime_get_boot_ns() - *answered > GAI_RECENT_NS)
		return;
	cookie = bpf_get_socket_cookie(ctx);
	if (!cookie)
		return;
	t.addr6[0] = ctx->user_ip6[0];
	t.addr6[1] = ctx->user_ip6[1];
	t.addr6[2] = ctx->user_ip6[2];
	t.addr6[3] = ctx->user_ip6[3];
	t.start_ns = bpf_ktime_get_boot_ns();
	__sync_fetch_and_add(&native_tries_live, 1);
	if (bpf_map_update_elem(&native_pending, &cookie, &t, BPF_ANY))
		__sync_fetch_and_add(&native_tries_live, -1);
}

/* Its outcome (a state change out of SYN_SENT or, after a simultaneous open, SYN_RECV): a
 * failure is kept for the thread. */
static __always_inline void native_try_done(__u64 cookie, int err)
{
	struct fallback_rec fb = {};
	struct native_try *t;

	if (!native_tries_live)
		return;
	t = bpf_map_lookup_elem(&native_pending, &cookie);
	if (!t)
		return;
	/* given up by the program before an answer (ECONNABORTED: Happy Eyeballs closing the
	 * attempt that lost the race) is no failure of the address */
	if (err && err != -ECONNABORTED) {
		__builtin_memcpy(fb.addr6, t->addr6, sizeof(fb.addr6));
		fb.err = err;
		fb.start_ns = t->start_ns;
		__sync_fetch_and_add(&fallbacks_live, 1);
		if (bpf_map_update_elem(&fallback_last, &t->tid, &fb, BPF_ANY))
			__sync_fetch_and_add(&fallbacks_live, -1);
	} else if (fallbacks_live && !bpf_map_delete_elem(&fallback_last, &t->tid)) {
		/* a later IPv6 address of the answer worked: no fallback to IPv4 is pending */
		__sync_fetch_and_add(&fallbacks_live, -1);
	}
	if (!bpf_map_delete_elem(&native_pending, &cookie))
		__sync_fetch_and_add(&native_tries_live, -1);
}

/* ---- pending connects (maps.bpf.h: conn_slots, conn_pending) ---- */

static __always_inline struct conn_slot *conn_slot_of(__u64 cookie)
{
	__u32 idx = (__u32)cookie & (CONN_SLOTS - 1);

	return bpf_map_lookup_elem(&conn_slots, &idx);
}

/* cookie's slot's byte in conn_slot_held (maps.bpf.h) */
static __always_inline volatile __u8 *conn_slot_held_of(__u64 cookie)
{
	return &conn_slot_held[(__u32)cookie & (CONN_SLOTS - 1)];
}

/* cookie's slot if it may hold a connect, else NULL. */
static __always_inline struct conn_slot *conn_slot_used(__u64 cookie)
{
	return *conn_slot_held_of(cookie) ? conn_slot_of(cookie) : NULL;
}

/* The slot's tag, read again a few times while another holds it (CONN_SLOT_BUSY): a kernel
 * put or take, or user space's give-up (user/tables.c), holds it for a few instructions;
 * a take that did not wait would miss a connect that is only being looked at. */
#define CONN_SLOT_BUSY_READS 32
static __always_inline __u64 conn_slot_tag(struct conn_slot *s)
{
	__u64 tag = *(volatile __u64 *)&s->tag;

	for (int i = 0; i < CONN_SLOT_BUSY_READS && tag == CONN_SLOT_BUSY; i++)
		tag = *(volatile __u64 *)&s->tag;
	return tag;
}

/* Put c in the hash under key, counted in conn_spilled (slots) from before the insert, so a
 * take meanwhile looks there. only_new: not if key is there already; else it is replaced. */
static __always_inline bool conn_hash_put(__u64 key, const struct conn_pending *c, bool slots,
					  bool only_new)
{
	long err;

	if (slots)
		__sync_fetch_and_add(&conn_spilled, 1);
	err = bpf_map_update_elem(&conn_pending, &key, c, BPF_NOEXIST);
	if (!err)
		return true;
	if (slots)
		__sync_fetch_and_add(&conn_spilled, -1);
	return err == -EEXIST && !only_new && !bpf_map_update_elem(&conn_pending, &key, c, BPF_EXIST);
}

/* Take key's entry out of the hash into *out: true if this caller took it. */
static __always_inline bool conn_hash_take(__u64 key, struct conn_pending *out, bool slots)
{
	struct conn_pending *p;

	if (slots && !conn_spilled)
		return false;
	p = bpf_map_lookup_elem(&conn_pending, &key);
	if (!p)
		return false;
	*out = *p;
	if (bpf_map_delete_elem(&conn_pending, &key))
		return false; /* decided on another CPU */
	if (slots)
		__sync_fetch_and_add(&conn_spilled, -1);
	return true;
}

/* Fill a slot claimed (tag CONN_SLOT_BUSY) and hand it to cookie; an older connect of the
 * socket's in the hash (re-issued after its outcome was missed) is replaced. */
static __always_inline void conn_slot_fill(struct conn_slot *s, __u64 cookie,
					   const struct conn_pending *c)
{
	struct conn_pending old;

	*conn_slot_held_of(cookie) = 1;
	s->c = *c;
	__sync_lock_test_and_set(&s->tag, cookie); /* published after the writes */
	conn_hash_take(cookie, &old, true);
}

/*
 * Keep c as cookie's pending connect, replacing one it had; false if there was no room.
 * slots: a constant (maps.bpf.h, conn_slots). A slot held for over CONN_SLOT_AGE_NS by
 * another socket's connect X is taken over: X is copied to the hash first (only if X is not
 * there already), then the slot claimed from X; a take of X meanwhile finds it in one place
 * or the other (conn_pending_take), and if X was taken from the slot first, its copy is
 * deleted again.
 */
static __always_inline bool conn_pending_put(__u64 cookie, struct conn_pending *c, bool slots)
{
	struct conn_slot *s = slots ? conn_slot_of(cookie) : NULL;
	__u64 now = bpf_ktime_get_boot_ns();

	c->since = now;
	if (s) {
		__u64 old = conn_slot_tag(s);
		struct conn_pending moved;

		if ((old == 0 || old == cookie) &&
		    __sync_val_compare_and_swap(&s->tag, old, CONN_SLOT_BUSY) == old) {
			conn_slot_fill(s, cookie, c);
			return true;
		}
		if (old != 0 && old != cookie && old != CONN_SLOT_BUSY &&
		    (__s64)(now - s->c.since) > (__s64)CONN_SLOT_AGE_NS) {
			moved = s->c; /* stable while the tag is old's: only its owner writes */
			if (s->tag == old && conn_hash_put(old, &moved, true, true)) {
				if (__sync_val_compare_and_swap(&s->tag, old, CONN_SLOT_BUSY) == old) {
					conn_slot_fill(s, cookie, c);
					return true;
				}
				conn_hash_take(old, &moved, true); /* taken from the slot meanwhile */
			}
		}
	}
	return conn_hash_put(cookie, c, slots, false);
}

/* cookie's pending connect, left in place (a look: it may be decided meanwhile), or NULL. */
static __always_inline struct conn_pending *conn_pending_peek(__u64 cookie, bool slots)
{
	struct conn_slot *s = slots ? conn_slot_used(cookie) : NULL;

	if (s && conn_slot_tag(s) == cookie)
		return &s->c;
	if (slots && !conn_spilled)
		return NULL;
	return bpf_map_lookup_elem(&conn_pending, &cookie);
}

/*
 * The process entry a pending connect counts into: the one that counted it waiting (its
 * first_ns kept in c->entry_ns, handle_connect_start), running or ended since (exit, exec:
 * in proc_exited, or marked in place in proc_stats), which its pending count holds for the
 * outcome (user/tables.c, walk_procs). NULL when there is none (the table was full when it
 * started, or the entry is gone): counted, if count.
 */
static __always_inline struct dstrace_proc_stats *conn_entry(const struct conn_pending *c,
							     bool count)
{
	struct dstrace_proc_stats *st = NULL;

	if (c->entry_ns) {
		st = bpf_map_lookup_elem(&proc_stats, &c->who.tgid);
		if (st && st->first_ns == c->entry_ns && st->start_ns == c->who.start_ns)
			return st;
		st = bpf_map_lookup_elem(&proc_exited, &c->who.tgid);
		if (st && st->first_ns == c->entry_ns && st->start_ns == c->who.start_ns)
			return st;
	}
	if (count)
		counter_add(DSTRACE_CNT_PROC_FULL, 1);
	return NULL;
}

/* The entry's pending connect is decided, or dropped (counted as such): one less to hold it
 * for. Last, after its counts and its event: user space folds an ended entry once this is 0
 * (a decrement that finds 0, on a CPU racing another, is skipped rather than wrapping). */
static __always_inline void conn_entry_done(struct dstrace_proc_stats *st)
{
	if (st && st->pending)
		__sync_fetch_and_add(&st->pending, -1);
}

/* Take cookie's pending connect out: true if this caller decides it (one caller does). */
static __always_inline bool conn_pending_take(__u64 cookie, struct conn_pending *out,
					      bool slots)
{
	struct conn_slot *s = slots ? conn_slot_used(cookie) : NULL;

	if (s && conn_slot_tag(s) == cookie &&
	    __sync_val_compare_and_swap(&s->tag, cookie, CONN_SLOT_BUSY) == cookie) {
		*out = s->c;
		*conn_slot_held_of(cookie) = 0; /* before the release: the next put sets it after */
		__sync_lock_test_and_set(&s->tag, 0); /* released after the reads */
		return true;
	}
	/* not in its slot, or moved to the hash meanwhile (conn_pending_put) */
	return conn_hash_take(cookie, out, slots);
}

/*
 * sk's pending connect: under its cookie, or, while some are kept so (existing_connecting),
 * under its address, if the peer kept is sk's (an address reused by another socket since
 * is not this one's).
 */
static __always_inline bool conn_pending_take_sk(struct sock *sk, __u64 cookie, bool btf,
						 struct conn_pending *out, bool slots)
{
	struct conn_pending *p;
	__u64 key = (__u64)sk;
	__u32 raddr;
	__u16 rport;

	if (cookie && conn_pending_take(cookie, out, slots))
		return true;
	if (!conn_by_sk)
		return false;
	p = bpf_map_lookup_elem(&conn_pending, &key);
	if (!p || !sk_mapped_peer_as(sk, &raddr, &rport, btf) || p->daddr != raddr ||
	    p->dport != rport || !conn_hash_take(key, out, slots))
		return false;
	__sync_fetch_and_add(&conn_by_sk, -1);
	return true;
}

static __always_inline void handle_connect_start(__u64 sk, __u64 cookie, __u16 protocol,
						 __u32 daddr, __u16 dport, bool slots)
{
	struct dstrace_proc_stats *st;
	struct conn_pending c = {}, old;
	bool known;

	if (!cookie || !proto_of(protocol, &c.proto))
		return;
	ident_current_id(&c.who);
	/* A process with an entry already, with -i: its pending connect needs no more of it
	 * (the outcome counts it under its tgid; an event, the entry or the -c filter would). */
	st = bpf_map_lookup_elem(&proc_stats, &c.who.tgid);
	known = st && !st->exit_ns && st->start_ns == c.who.start_ns;
	if (!known || emit_events || filter_comm_enabled)
		ident_current_rest(&c.who);
	if (!filter_process(c.who.tgid, c.who.comm, 0))
		return;
	c.daddr = daddr;
	c.dport = dport;
	if (protocol == IPPROTO_MPTCP)
		c.flags = DSTRACE_F_MPTCP;
	if (gai_in_call(c.who.tid))
		c.flags |= DSTRACE_F_BY_RESOLVER;
	else if (c.proto == DSTRACE_PROTO_TCP)
		fallback_take(&c);
	/* The kernel runs this hook only for a TCP socket not connected nor connecting: a
	 * connect of this socket's still pending had its outcome unseen (the kernel ran no
	 * program for it; socket.bpf.h, sock_release): counted, not replaced silently. */
	if (conn_pending_take(cookie, &old, slots)) {
		/* a UDP connect's still kept had its call's return missed (counted there) */
		if (c.proto == DSTRACE_PROTO_TCP)
			counter_add(DSTRACE_CNT_CONN_UNSEEN, 1);
		conn_entry_done(conn_entry(&old, false));
	}
	/* The process's entry is made here, where its executable and cgroup are current, and
	 * before the connect is kept (conn_entry: an entry newer than the connect is not its). */
	if (!known)
		st = proc_entry_who(0 /* the task's */, c.who.tgid, &c.who,
				    bpf_get_current_task(), false);
	/* counted waiting before the outcome can come (this thread's connect call, later); st
	 * is the process's current entry here (known, or proc_entry_who's), or NULL */
	if (st) {
		c.entry_ns = st->first_ns;
		__sync_fetch_and_add(&st->pending, 1);
	}
	if (!conn_pending_put(cookie, &c, slots)) {
		counter_add(DSTRACE_CNT_CONN_FULL, 1);
		conn_entry_done(st);
		return;
	}
	/* The tracepoint backend: the socket for connect(2)'s exit, if that is what drives it
	 * (tp_exit_connect): the immediate result, where the state change gives none. */
	if (connect_by_syscall) {
		struct connect_args *slot = connect_slot(c.who.tid);
		volatile __u8 *filled = connect_slot_filled_of(c.who.tid);

		if (!*filled)
			*filled = 1; /* before the slot is: this thread's exit reads it first */
		if (slot) {
			/* another thread's connect, still waiting for its result: lost, counted
			 * (its pending record stays: an io_uring completion may still decide it,
			 * else it is given up, or taken at its socket's release, and counted
			 * again: too many, never one missing) */
			if (slot->tid && slot->tid != c.who.tid)
				counter_add(DSTRACE_CNT_STASH_FULL, 1);
			/* emptied first, owned last: an exit that copies the slot meanwhile
			 * fails to claim it (tp_exit_connect); no compare-and-exchange here:
			 * the _hash twins, which load on 5.10, have this code too */
			slot->tid = 0;
			barrier();
			slot->sk = sk;
			slot->cookie = cookie;
			slot->tcp = c.proto == DSTRACE_PROTO_TCP;
			barrier();
			slot->tid = c.who.tid;
		}
	}
}

/* Is this result of a connect call its outcome? A TCP connect still in progress (started,
 * re-issued, interrupted, restarted) is decided later by the state change. */
static __always_inline bool connect_ret_final(bool tcp, int ret)
{
	if (!tcp)
		return true;
	switch (-ret) {
	case 0:
	case EINPROGRESS:
	case EALREADY:
	case EISCONN:
	case EINTR:
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
		return false;
	default:
		return true;
	}
}

static __always_inline void handle_connect_result(struct sock *sk, __u64 cookie, int ret,
						  __u8 flags, bool btf, bool slots)
{
	struct dstrace_proc_stats *st;
	struct conn_pending c;
	__u16 lport;
	__u64 ino;

	if (!sk || !conn_pending_take_sk(sk, cookie, btf, &c, slots))
		return;
	lport = ret ? 0 : SK_READ(btf, sk, __sk_common.skc_num);
	if (!filter_flow(DSTRACE_EV_CONNECT, c.proto, lport, c.dport)) {
		conn_entry_done(conn_entry(&c, false));
		return;
	}
	/* The connecting process's entry, made by the hook, held for this if it ended since. */
	st = conn_entry(&c, true);
	proc_peer(proc_account(st, DSTRACE_EV_CONNECT, c.proto, ret < 0, 1, 0), c.who.tgid,
		  c.daddr);
	if (st && st->exit_ns)
		flags |= DSTRACE_F_LATE;
	ino = sk_ino_wanted(sk);
	/* during the scan: this socket's connect is decided (existing_connecting) */
	existing_mark(ino, c.who.tgid);
	emit_event_full(sk, ino, DSTRACE_EV_CONNECT, c.proto, c.daddr, c.dport, ret,
			ret == 0 ? LOCAL_SOCK : LOCAL_NONE, NULL, &c.who, c.flags | flags, &c.fb,
			(flags & DSTRACE_F_LATE) ? c.entry_ns : 0);
	/* after the event: user space frees an entry once final, and the event finds it */
	conn_entry_done(st);
}

/* A connect call on sk returned ret (backends that see calls: syscalls, kernel functions). */
static __always_inline void handle_connect_call(struct sock *sk, int ret, bool slots)
{
	__u8 proto;

	if (sk && sk_is_inet6(sk, &proto) && connect_ret_final(proto == DSTRACE_PROTO_TCP, ret))
		handle_connect_result(sk, sk_cookie(sk), ret, 0, false, slots);
}

/* MPTCP connects through its first subflow, a TCP socket the cgroup hook sees. */
static __always_inline __u8 tcp_mptcp_flag(struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	if (bpf_core_field_exists(tp->is_mptcp) && BPF_CORE_READ_BITFIELD_PROBED(tp, is_mptcp))
		return DSTRACE_F_MPTCP;
	return 0;
}

/* A TCP socket closed in SYN_SENT without an error, inside the connect call: the call itself
 * failed after setting SYN_SENT (no local port left: EADDRNOTAVAIL; no route for the port
 * chosen; no memory), in the connecting thread. The call's return has the error: its exit
 * decides (fexit, kretprobe, or on the tracepoint backend the syscall's exit, given the
 * thread's slot back), not the state change. Inside the call the socket layer still says
 * SS_UNCONNECTED (it says SS_CONNECTING once the call returns), which tells it from the
 * program giving up in the same thread after the call returned: close() (which shuts it down
 * first), shutdown() (SS_DISCONNECTING) or connect(AF_UNSPEC) (SS_CONNECTING): those are
 * the state change's to decide (ECONNABORTED). MPTCP's first subflow has the MPTCP socket's
 * struct socket (grafted), so the same holds; a subflow of a closed MPTCP socket has none
 * (read as 0), and the state change decides. Not seen on the tracepoint backend: a TCP Fast
 * Open sendto()/sendmsg() whose connect fails so inside the call (no local port left): only
 * connect(2)'s exit and io_uring's completion take the call's result there; such a connect
 * is counted unseen at its socket's close. */
static __always_inline bool connect_call_decides(struct sock *sk, __u64 cookie, bool slots)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct connect_args *slot;
	struct conn_pending *p;

	if (BPF_CORE_READ_BITFIELD(sk, sk_shutdown) ||
	    BPF_CORE_READ(sk, sk_socket, state) != SS_UNCONNECTED)
		return false;
	p = conn_pending_peek(cookie, slots);
	if (!p || p->who.tid != tid)
		return false;
	if (!connect_by_syscall)
		return true;
	slot = connect_slot_if_filled(tid);
	if (!slot || slot->cookie != cookie || (slot->tid && slot->tid != tid))
		return false;
	slot->tid = tid;
	return true;
}

/* What the socket says of its connect (its state changed out of SYN_SENT, or out of SYN_RECV
 * after a simultaneous open, or it reported an error): err decides the pending connect,
 * unless call_decides (the connect call's return has the error), and ends the resolver's
 * native try on it, if there is one. */
static __always_inline void tcp_connect_outcome(struct sock *sk, __u64 cookie, int err,
						bool call_decides, bool btf, bool slots)
{
	if (!call_decides)
		handle_connect_result(sk, cookie, err, tcp_mptcp_flag(sk), btf, slots);
	native_try_done(cookie, err);
}

/* A TCP socket changed state: the outcome of a pending connect (tp_btf: sk read directly).
 * A simultaneous open (a SYN came in answer to the SYN, as a socket connecting to its own
 * address and port gets) goes SYN_SENT -> SYN_RECV, still pending; the change out of SYN_RECV
 * decides it: established, or its error (reset, timed out, unreachable), or given up by its
 * program (ECONNABORTED; so is a shutdown(SHUT_WR) then, although the handshake may still
 * complete half-closed). */
static __always_inline void handle_tcp_state(struct sock *sk, int oldstate, int newstate,
					     bool slots)
{
	__u64 cookie = sk_cookie_as(sk, true), key = (__u64)sk;
	int sk_err, err;

	if (newstate == TCP_ESTABLISHED) {
		if (existing_pass == 2) /* noted first: existing_connecting */
			bpf_map_update_elem(&existing_outcomes, &key, &(__s32){ 0 }, BPF_ANY);
		tcp_connect_outcome(sk, cookie, 0, false, true, slots);
	} else if (newstate == TCP_CLOSE || oldstate == TCP_SYN_RECV) {
		/* refused (ECONNREFUSED), timed out (ETIMEDOUT), unreachable (ICMP errors);
		 * closed by its program before an answer came: ECONNABORTED (only a close out
		 * of SYN_SENT can be the connect call's own failure) */
		sk_err = sk->sk_err;
		err = sk_err ? -sk_err : -ECONNABORTED;
		if (existing_pass == 2)
			bpf_map_update_elem(&existing_outcomes, &key, &err, BPF_ANY);
		tcp_connect_outcome(sk, cookie, err,
				    oldstate == TCP_SYN_SENT && !sk_err &&
					    connect_call_decides(sk, cookie, slots),
				    true, slots);
	}
}

/*
 * An error reported on an AF_INET6 TCP socket still in SYN_SENT (or in SYN_RECV after a
 * simultaneous open): the connect's outcome is
 * that error, decided here as its close would with the error still set. Without
 * tcp_done_with_error() (mainline since mid-2024, backported to stable kernels, Debian's 6.1
 * among them) a timed-out or ICMP-refused SYN reports its error, waking the program, before
 * the state changes to CLOSE; a program that reads SO_ERROR in between clears sk_err, and
 * the state change alone would see a connect given up (ECONNABORTED; seen on Debian's 5.10).
 * With it, the state changes first and decides; the hooks are not attached there
 * (PROG_UNLESS_FUNC, user/backend.c). Not seen here:
 * an MPTCP subflow's errors (subflow_error_report; the MPTCP socket clears them).
 */
static __always_inline void handle_tcp_error_report(struct sock *sk, bool btf, bool slots)
{
	int state = SK_READ(btf, sk, __sk_common.skc_state), sk_err;
	__u64 cookie;

	/* SYN_RECV: a simultaneous open's (it has a struct socket; a passive open's child in
	 * SYN_RECV has none, or has no pending connect: handle_tcp_state) */
	if (SK_READ(btf, sk, __sk_common.skc_family) != AF_INET6 ||
	    (state != TCP_SYN_SENT && (state != TCP_SYN_RECV || !SK_READ(btf, sk, sk_socket))))
		return;
	/* read once: the error decides, or nothing does here */
	sk_err = SK_READ(btf, sk, sk_err);
	if (!sk_err)
		return;
	cookie = sk_cookie_as(sk, btf);
	tcp_connect_outcome(sk, cookie, -sk_err, false, btf, slots);
}

/* Path 2: a TCP connection from an IPv4 client, now owned by the process accepting it
 * (btf: sk is a BTF pointer, SK_READ; task_btf: proc_start_now). */
static __always_inline void handle_accept_done(struct sock *sk, bool btf, bool task_btf)
{
	/* the task's BTF: a load, where bpf_get_current_pid_tgid() is a helper call more */
	__u32 tgid = task_btf ? bpf_get_current_task_btf()->tgid : bpf_get_current_pid_tgid() >> 32;
	__u16 rport;
	__u32 raddr;
	__u64 ino;
	__u8 proto;

	if (!sk || !sk_is_inet6_as(sk, &proto, btf) || proto != DSTRACE_PROTO_TCP)
		return;
	if (!sk_mapped_peer_as(sk, &raddr, &rport, btf))
		return;
	if (!dstrace_wanted(DSTRACE_EV_ACCEPT, DSTRACE_PROTO_TCP, tgid, sk_lport_filtered(sk, btf),
			    rport))
		return;
	proc_peer(proc_account(proc_entry(sk, tgid, task_btf), DSTRACE_EV_ACCEPT, DSTRACE_PROTO_TCP,
			       false, 1, 0),
		  tgid, raddr);
	ino = sk_ino_wanted(sk);
	existing_mark(ino, tgid);
	if (emit_events) /* no read for an event not made (-i) */
		emit_event_as(sk, ino, DSTRACE_EV_ACCEPT, DSTRACE_PROTO_TCP, raddr, rport, 0, true,
			      NULL,
			      SK_READ(btf, sk, sk_protocol) == IPPROTO_MPTCP ? DSTRACE_F_MPTCP : 0);
}

/*
 * bind() of an AF_INET6 socket to ::ffff:a.b.c.d: the socket can then only speak IPv4. On a
 * v6-only socket it fails (EINVAL). A failure counts as failed; the local end shown is the
 * one asked for.
 */
static __always_inline void handle_bind_done(struct sock *sk, __u32 addr, __u16 port, int ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct given_local asked = { .addr = addr, .port = port };
	__u8 proto;

	if (!sk || !sk_is_inet6(sk, &proto) ||
	    !dstrace_wanted(DSTRACE_EV_BIND, proto, tgid, port, 0))
		return;
	if (ret < 0)
		proc_account(proc_entry(sk, tgid, false), DSTRACE_EV_BIND, proto, true, 0, 0);
	emit_event_full(sk, sk_ino(sk), DSTRACE_EV_BIND, proto, 0, 0, ret,
			ret ? LOCAL_GIVEN : LOCAL_SOCK, &asked, NULL, DSTRACE_F_NO_REMOTE, NULL,
			0);
}

#endif /* DSTRACE_CONNECT_BPF_H */
