#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The resolver's side (issue 11): a mapped connect or send carries the name the process
# resolved through the C library's getaddrinfo() (uprobes), whether the name also had IPv6
# addresses (answer a-only or a+aaaa), who mapped the address (the resolver, asked for
# AI_V4MAPPED, or the program itself, as Java does) and the hints; glibc's own UDP connects,
# made while sorting a list of several answers, say resolver_probe. Unmodified Python
# clients (tests/progs/resolve.py, the C library's resolver through Python's socket module).
#
#   sudo tests/e2e/test_resolver.sh
#
# One namespace with lo and its own hosts file (ip netns exec mounts /etc/netns/NS/hosts):
#   aonly.dstrace.test  A 127.0.0.1
#   both.dstrace.test   A 127.0.0.1, AAAA 2001:db8::99 (no route: that connect fails)
#   fb.dstrace.test     A 127.0.0.1, AAAA ::1 (an IPv4-only server: ::1 refuses)
# Checks, each a separate process: TCP with AF_INET6 + AI_V4MAPPED to aonly (name, a-only,
# mapped by the resolver, refused: nothing listens); TCP with AF_UNSPEC, the program mapping
# the A record itself (mapped by the program); UDP with AI_V4MAPPED | AI_ALL to both
# (a+aaaa; glibc's sorting probe to ::ffff:127.0.0.1 flagged, without a name); TCP with
# AI_V4MAPPED | AI_ALL to fb (A 127.0.0.1, AAAA ::1, an IPv4-only server): ::1 refused, then
# ::ffff:127.0.0.1: the book's starred cell, reported as a fallback with the time lost; a process
# that resolved nothing, connecting to the same address, gets no name (names are per
# process); a numeric "host" is no name; and Java, unmodified (tests/progs/JavaConnect.java),
# to aonly and to both: it resolves AF_UNSPEC and maps the A record itself (mapped by the
# program; for both, with the AAAA record passed over under Java's default preference); a
# 32-bit program (tests/progs/gai.c built -m32: i386 glibc, followed without being asked) and
# a musl one (gai-musl, its library given with --resolver-lib) resolving aonly, connecting
# and sending: each named. Containers (unshare -m --root, a copy of musl each): named when
# their copy is root's, not when another user's; named when they resolve 200 ms after they
# start, one after the other (a namespace's inode reused). An unusable --resolver-lib is said
# at start and in the records, and the other libraries are still followed. The room for
# containers' libraries frees itself: with room for one, a container started while another
# runs is not followed (said once), and is once the other ended (the other's copy let go,
# its probes detached). DSTRACE_ARGS adds arguments to dstrace.
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_root
need_tools python3 jq java curl
NS=$(ns_name rs)
ip netns add "$NS" || exit 2
NAMESPACES+=("$NS")
ip -n "$NS" link set lo up
mkdir -p "/etc/netns/$NS"
printf '127.0.0.1\taonly.dstrace.test\n127.0.0.1\tboth.dstrace.test\n2001:db8::99\tboth.dstrace.test\n127.0.0.1\tfb.dstrace.test\n::1\tfb.dstrace.test\n' \
	>"/etc/netns/$NS/hosts"
printf 'hosts: files\n' >"/etc/netns/$NS/nsswitch.conf"
NSJ="[$(netns_inode rs)]"
RS=$REPO_ROOT/tests/progs/resolve.py
read -ra extra <<<"${DSTRACE_ARGS:-}"
OUT=$WORK/resolver.jsonl
MUSL_LIB=/lib/ld-musl-$(uname -m).so.1
# the programs of other C libraries: gai32 only where 32-bit x86 programs run
OTHER_LIBC=(gai-musl)
[[ $(uname -m) == x86_64 ]] && OTHER_LIBC+=(gai32)

# client NAME RC ARGS...: run resolve.py in the namespace, expecting exit status RC (0: an
# answer worked, 1: none did) and no traceback; its pid in the global C_PID[NAME].
declare -A C_PID=()
client() {
	local name=$1 rc=$2
	shift 2
	run_in rs 20 "$WORK/$name" python3 "$RS" "$@"
	C_PID[$name]=$RUN_PID
	check_eq "$name: client ran" "$rc, stderr empty" \
		"$RUN_RC, stderr $([[ -s $WORK/$name.err ]] && head -c 200 "$WORK/$name.err" || echo empty)"
}

build_progs
# An IPv4-only server for fb.dstrace.test: its AAAA address (::1) refuses, its A one answers.
bg_start SRV_PID rs "$WORK/server4" "$PROGS/tcpserv4" -n 1 9100
wait_line "$WORK/server4.out" listening 5 || fail "tcpserv4" "expected it to listen, got not"
# Two containers started while dstrace runs (a root of their own, chroot'ed by unshare, in a
# mount namespace of their own), each with its own copy of musl, a file dstrace was not told
# of: in ct-root the copy is root's (followed once the namespace is looked in, which -v says),
# in ct-user another user's (never followed, which -v says too). Each resolves when the test
# says (gai -w), once dstrace has looked in both.
ct_root() { # ct_root NAME OWNER: the container's root, in $WORK/NAME
	local r=$WORK/$1
	mkdir -p "$r/lib" "$r/etc" "$r/bin"
	cp "$(readlink -f "$MUSL_LIB")" "$r/lib/${MUSL_LIB##*/}"
	chown "$2" "$r/lib/${MUSL_LIB##*/}"
	cp "$PROGS/gai-musl" "$r/bin/gai-musl"
	printf '127.0.0.1\taonly.dstrace.test\n' >"$r/etc/hosts"
	mkfifo "$WORK/$1.go"
}
if dstrace_start "$OUT" -v --resolver-lib "$MUSL_LIB" "${extra[@]}"; then
	client fallback 0 tcp fb.dstrace.test 9100 --v4mapped --all
	client aonly-v4mapped 1 tcp aonly.dstrace.test 9 --v4mapped
	client aonly-program 1 tcp aonly.dstrace.test 9 --family unspec --map
	client both-udp 0 udp both.dstrace.test 9 --v4mapped --all
	client numeric 1 tcp 127.0.0.1 9 --v4mapped
	# curl resolves AF_UNSPEC and connects an AF_INET socket to an A-only name: nothing
	# mapped, nothing to report (its name is not wanted on an IPv4 socket)
	run_in rs 20 "$WORK/curl" curl -s --max-time 5 http://aonly.dstrace.test:9/
	C_PID[curl]=$RUN_PID
	check_eq "curl: refused over plain IPv4 (exit 7)" 7 "$RUN_RC"
	# Java, unmodified: it resolves with AF_UNSPEC and maps the A record itself
	for n in aonly both; do
		run_in rs 30 "$WORK/java-$n" java "$REPO_ROOT/tests/progs/JavaConnect.java" \
			"$n.dstrace.test" 9
		C_PID[java-$n]=$RUN_PID
		check_eq "java-$n: client ran" "0, error java.net.ConnectException: Connection refused" \
			"$RUN_RC, $(head -c 200 "$WORK/java-$n.out" | head -n 1)"
	done
	# other C libraries' getaddrinfo(): a connect (refused) and a send (sent)
	for p in "${OTHER_LIBC[@]}"; do
		if [[ ! -x $PROGS/$p ]]; then
			fail "$p" "expected it built (gcc-multilib, musl-tools: scripts/install-deps.sh), got none"
			continue
		fi
		for how in tcp udp; do
			flag=()
			[[ $how == udp ]] && flag=(-u)
			run_in rs 20 "$WORK/$p-$how" "$PROGS/$p" "${flag[@]}" aonly.dstrace.test 9
			C_PID[$p-$how]=$RUN_PID
		done
	done
	if [[ -x $PROGS/gai-musl ]]; then
		for ct in ct-user ct-root; do
			owner=0
			[[ $ct == ct-user ]] && owner=65534
			ct_root "$ct" "$owner"
			# the fifo opened for reading and writing: no wait for a writer
			bg_start pid rs "$WORK/$ct" sh -c \
				'exec unshare -m --root="$1" /bin/gai-musl -w aonly.dstrace.test 9 0<>"$2"' \
				_ "$WORK/$ct" "$WORK/$ct.go"
			C_PID[$ct]=$pid
		done
		for ct in ct-root ct-user; do
			said="names: getaddrinfo\(\) of /proc/${C_PID[ct-root]}/root/lib/${MUSL_LIB##*/} \(mount namespace"
			[[ $ct == ct-user ]] &&
				said="names: not followed, owned by uid 65534: /proc/${C_PID[ct-user]}/root/lib/${MUSL_LIB##*/}\$"
			if wait_line "$DSTRACE_LOG" "$said" 15; then
				pass "$ct: its C library looked at" "$(grep -m1 "/proc/${C_PID[$ct]}/root" "$DSTRACE_LOG")"
			else
				fail "$ct: its C library looked at" "expected the -v line, got: $(grep 'names:' "$DSTRACE_LOG" | tail -n 3)"
			fi
		done
		for ct in ct-user ct-root; do
			# a program that already ended reads nothing: no wait for a reader
			timeout 5 sh -c 'echo go >"$1"' _ "$WORK/$ct.go" ||
				fail "$ct: told to go on" "expected it waiting, got it ended"
			RUN_PID=${C_PID[$ct]}
			wait_run 20
			check_eq "$ct: the program's connect" "0 result=111 raddr=::ffff:127.0.0.1 rport=9" \
				"$RUN_RC $(sed 's/ pid=.*//' "$WORK/$ct.out")"
		done
		check_eq "ct-user: another user's C library is not followed" none \
			"$(grep -m1 "getaddrinfo() of /proc/${C_PID[ct-user]}/root" "$DSTRACE_LOG" || echo none)"
		# Two more, one after the other, now that those ended: each resolves 200 ms after
		# its start, without waiting for dstrace (which is told of a namespace's first
		# exec at once, and looks in it then: some 10 ms here, against up to 2 s for its
		# sweep of new processes). The kernel gives a new namespace the inode of one freed
		# (/proc/PID/ns/mnt), so each is likely to have an earlier one's: still looked in.
		ns_seen=()
		for ct in ct-quick ct-next; do
			ct_root "$ct" 0
			run_in rs 20 "$WORK/$ct" unshare -m --root="$WORK/$ct" /bin/gai-musl -s 200 \
				aonly.dstrace.test 9
			C_PID[$ct]=$RUN_PID
			check_eq "$ct: the program's connect" "0 result=111 raddr=::ffff:127.0.0.1 rport=9" \
				"$RUN_RC $(sed 's/ pid=.*//' "$WORK/$ct.out")"
			said=$(grep -m1 "names: getaddrinfo() of /proc/$RUN_PID/root/lib/" "$DSTRACE_LOG")
			check_match "$ct: its C library followed (-v)" \
				"^dstrace: names: getaddrinfo\(\) of /proc/$RUN_PID/root/lib/${MUSL_LIB##*/} \(mount namespace [0-9]+\)\$" \
				"$said"
			ns_seen+=("$(grep -o 'namespace [0-9]*' <<<"$said")")
		done
		log "mount namespaces of ct-root, ct-user, ct-quick, ct-next: $(
			grep -o "names: .* /proc/\(${C_PID[ct-root]}\|${C_PID[ct-user]}\)/root.*" "$DSTRACE_LOG" |
				grep -o 'namespace [0-9]*' | paste -sd ' ') ${ns_seen[*]}"
	fi
	dstrace_stop
else
	fail "dstrace start" "expected it to start"
fi

# Client exit status: resolve.py exits 1 when no answer worked (the TCP ones are refused).
check_eq "aonly-v4mapped: the client's attempts" "try ::ffff:127.0.0.1 error ECONNREFUSED" \
	"$(head -n 1 "$WORK/aonly-v4mapped.out")"
check_eq "both-udp: the client's attempts" "try ::ffff:127.0.0.1 ok" \
	"$(head -n 1 "$WORK/both-udp.out")"

check_eq "fallback: the client's attempts" "try ::1 error ECONNREFUSED|try ::ffff:127.0.0.1 ok" \
	"$(head -n 2 "$WORK/fallback.out" | paste -sd '|')"
# The book's starred cell: the AAAA address refused, then the mapped A address.
check_events "fallback: AAAA refused, then the mapped A record (the starred cell)" "$OUT" "$NSJ" \
	".pid == ${C_PID[fallback]}" \
	"$(jq -nc '[{event: "connect", proto: "udp", raddr: "127.0.0.1", rport: 9100, ret: 0,
		resolver_probe: true, fallback: null},
		{event: "connect", proto: "tcp", raddr: "127.0.0.1", rport: 9100, ret: 0,
		name: "fb.dstrace.test", answer: "a+aaaa", mapped_by: "resolver",
		fallback: {from: "::1", error: "ECONNREFUSED", lost_ms: "~number"}}]')"

check_events "aonly-v4mapped: AF_INET6 + AI_V4MAPPED, name with only an A record" "$OUT" "$NSJ" \
	".pid == ${C_PID[aonly-v4mapped]}" \
	"$(jq -nc '[{event: "connect", proto: "tcp", raddr: "127.0.0.1", rport: 9, ret: -111,
		name: "aonly.dstrace.test", answer: "a-only", mapped_by: "resolver",
		hints: ["AF_INET6", "AI_V4MAPPED"], resolver_probe: false}]')"
check_events "aonly-program: AF_UNSPEC, the program maps the A record itself" "$OUT" "$NSJ" \
	".pid == ${C_PID[aonly-program]}" \
	"$(jq -nc '[{event: "connect", proto: "tcp", raddr: "127.0.0.1", rport: 9, ret: -111,
		name: "aonly.dstrace.test", answer: "a-only", mapped_by: "program", hints: [],
		resolver_probe: false}]')"
check_events "both-udp: AI_V4MAPPED | AI_ALL, A and AAAA: glibc's sorting probe, then the send" \
	"$OUT" "$NSJ" ".pid == ${C_PID[both-udp]}" \
	"$(jq -nc '[{event: "connect", proto: "udp", raddr: "127.0.0.1", rport: 9, ret: 0,
		name: null, answer: null, mapped_by: null, hints: null, resolver_probe: true},
		{event: "send", proto: "udp", raddr: "127.0.0.1", rport: 9, ret: 0,
		name: "both.dstrace.test", answer: "a+aaaa", mapped_by: "resolver",
		hints: ["AF_INET6", "AI_V4MAPPED", "AI_ALL"], resolver_probe: false}]')"
check_events "numeric: an address written out is no name, another process's names are not its" \
	"$OUT" "$NSJ" ".pid == ${C_PID[numeric]}" \
	"$(jq -nc '[{event: "connect", proto: "tcp", raddr: "127.0.0.1", rport: 9, ret: -111,
		name: null, answer: null, mapped_by: null, hints: null, resolver_probe: false}]')"
for n in aonly both; do
	answer=a-only
	[[ $n == both ]] && answer=a+aaaa
	check_events "java-$n: Java maps the A record of a name with $answer itself" "$OUT" "$NSJ" \
		".pid == ${C_PID[java-$n]} and .proto == \"tcp\"" \
		"$(jq -nc --arg name "$n.dstrace.test" --arg answer "$answer" \
			'[{event: "connect", proto: "tcp", comm: "java", raddr: "127.0.0.1", rport: 9,
			ret: -111, name: $name, answer: $answer, mapped_by: "program",
			resolver_probe: false, fallback: null}]')"
done
for p in "${OTHER_LIBC[@]}"; do
	[[ -x $PROGS/$p ]] || continue
	check_eq "$p: the program's connect and send" \
		"result=111 raddr=::ffff:127.0.0.1 rport=9|result=ok raddr=::ffff:127.0.0.1 rport=9" \
		"$(sed 's/ pid=.*//' "$WORK/$p-tcp.out" "$WORK/$p-udp.out" | paste -sd '|')"
	check_events "$p: getaddrinfo() of its C library names its connect and its send" "$OUT" \
		"$NSJ" ".pid == ${C_PID[$p-tcp]} or .pid == ${C_PID[$p-udp]}" \
		"$(jq -nc --arg comm "$p" '[{event: "connect", proto: "tcp", comm: $comm,
		raddr: "127.0.0.1", rport: 9, ret: -111, name: "aonly.dstrace.test",
		answer: "a-only", mapped_by: "resolver", hints: ["AF_INET6", "AI_V4MAPPED"]},
		{event: "send", proto: "udp", comm: $comm, raddr: "127.0.0.1", rport: 9, ret: 0,
		name: "aonly.dstrace.test", answer: "a-only", mapped_by: "resolver",
		hints: ["AF_INET6", "AI_V4MAPPED"]}]')"
done
if [[ -x $PROGS/gai-musl ]]; then
	for ct in ct-root ct-user ct-quick ct-next; do
		name='"aonly.dstrace.test"' answer='"a-only"'
		[[ $ct == ct-user ]] && name=null answer=null
		check_events "$ct: a container's own C library: name $name" "$OUT" "$NSJ" \
			".pid == ${C_PID[$ct]}" \
			"$(jq -nc --argjson name "$name" --argjson answer "$answer" '[{event: "connect",
			proto: "tcp", comm: "gai-musl", raddr: "127.0.0.1", rport: 9, ret: -111,
			name: $name, answer: $answer}]')"
	done
fi
check_events "curl: an AF_INET socket to an A-only name is not mapped: no event" "$OUT" "$NSJ" \
	".pid == ${C_PID[curl]}" '[]'
check_eq "no warning about names on stderr" none \
	"$(grep -m1 'names of resolved peers' "$DSTRACE_LOG" || echo none)"

# --- the audit and the report: per program, the names reached over IPv4 and their fix ------
AUD=$WORK/resolver-audit.jsonl
bg_start SRV2_PID rs "$WORK/server4b" "$PROGS/tcpserv4" -n 1 9101
wait_line "$WORK/server4b.out" listening 5 || fail "tcpserv4" "expected it to listen, got not"
if dstrace_start_raw "$WORK/audit.stdout" --audit -o "$AUD" -i 60 \
	--metrics-file "$WORK/metrics.prom" "${extra[@]}"; then
	client audit-aonly 1 tcp aonly.dstrace.test 9 --v4mapped
	client audit-both 0 udp both.dstrace.test 9 --v4mapped --all
	client audit-fallback 0 tcp fb.dstrace.test 9101 --v4mapped --all
	dstrace_stop
	check_match "metrics: the fallback counted for python3" \
		'^dstrace_fallbacks_total\{comm="python3",runtime="",qos=""\} 1$' \
		"$(grep '^dstrace_fallbacks_total' "$WORK/metrics.prom")" "one python3 series, 1"
	check_eq "audit: the python3 program's names (its two processes)" \
		'[{"name":"aonly.dstrace.test","answer":"a-only","mapped_by":"resolver","count":1,"failed":1,"fallbacks":0},{"name":"both.dstrace.test","answer":"a+aaaa","mapped_by":"resolver","count":1,"failed":0,"fallbacks":0},{"name":"fb.dstrace.test","answer":"a+aaaa","mapped_by":"resolver","count":1,"failed":0,"fallbacks":1}] 0' \
		"$(jq -c --argjson ns "$(netns_inode rs)" 'select(.type == "audit" and .netns == $ns and .comm == "python3")' "$AUD" |
			tail -n 1 | jq -c '"\(.names | sort_by(.name) | tojson) \(.names_dropped)"' -r)"
	"$DSTRACE" report --json "$AUD" >"$WORK/report.json" 2>"$WORK/report.err"
	check_eq "report: names with their fix" \
		'[["aonly.dstrace.test","a-only",1,"no AAAA record: publish one for the name (or move the service to IPv6)"],["both.dstrace.test","a+aaaa",1,"has an AAAA record, yet the program connected to its A record (asked AI_V4MAPPED): its IPv6 address failed or was sorted last (/etc/gai.conf)"],["fb.dstrace.test","a+aaaa",1,"has an AAAA record, but connecting to its IPv6 address failed and the program fell back to the A record: make the service answer over IPv6"]]' \
		"$(jq -c --argjson ns "$(netns_inode rs)" '[.programs[] | select(.netns == $ns and .comm == "python3") | .names[] | [.name, .answer, .count, .fix]] | sort' "$WORK/report.json")"
	"$DSTRACE" report "$AUD" >"$WORK/report.txt" 2>&1
	check_match "report text: the names line" "names +aonly\.dstrace\.test: 1 mapped connection or flow \(1 failed\), no AAAA record" \
		"$(grep -m1 'names ' "$WORK/report.txt")" "'names     aonly.dstrace.test: 1 mapped connection or flow (1 failed), no AAAA record...'"
else
	fail "dstrace --audit start" "expected it to start"
fi

# --- a library not followed (no such file): said at start, in the stats and audit_run
# records, and by the report; the others still followed ----------------------------------
BL=$WORK/blind.jsonl
if dstrace_start_raw "$WORK/blind.stdout" --audit -o "$BL" -i 60 --resolver-lib /nonexistent/libc.so.6 \
	"${extra[@]}"; then
	client blind-aonly 1 tcp aonly.dstrace.test 9 --v4mapped
	dstrace_stop
	check_match "blind: said once at start" \
		'^1 dstrace: warning: names of resolved peers are not seen: cannot attach a uprobe to getaddrinfo\(\): .*/nonexistent/libc\.so\.6' \
		"$(grep -c 'names of resolved peers are not seen' "$DSTRACE_LOG") $(grep -m1 'names of resolved' "$DSTRACE_LOG")" \
		"the warning, once"
	check_eq "blind: the audit_run record says so" '["names of resolved peers"]' \
		"$(jq -c 'select(.type == "audit_run") | .blind' "$BL" | tail -n 1)"
	check_eq "blind: a program of the library followed still has its name" \
		'[{"name":"aonly.dstrace.test","answer":"a-only","mapped_by":"resolver","count":1,"failed":1,"fallbacks":0}] 0' \
		"$(jq -c --argjson ns "$(netns_inode rs)" 'select(.type == "audit" and .netns == $ns) | "\(.names | tojson) \(.names_dropped)"' -r "$BL" | tail -n 1)"
	check_match "blind: the report warns" "could not see on its kernel: names of resolved peers" \
		"$("$DSTRACE" report "$BL" 2>&1 | grep -m1 'could not see')" "the warning"
else
	fail "dstrace --resolver-lib start" "expected it to start"
fi
if dstrace_start "$WORK/blind-stats.jsonl" --resolver-lib /nonexistent/libc.so.6 "${extra[@]}"; then
	dstrace_stop
	check_eq "blind: the stats record says so" '["names of resolved peers"]' \
		"$(stats_record "$WORK/blind-stats.jsonl" | jq -c .blind)"
fi
check_eq "not blind: the first run's stats record" '[]' "$(stats_record "$OUT" | jq -c .blind)"

# --- the room for containers' C libraries frees itself (room for 1 here, with
# DSTRACE_RESOLVER_NS_LIBS_MAX; 256 otherwise): room-a's copy of musl takes it; room-b,
# started while room-a waits, is not followed (said once); once room-a ended, room-b, still
# running, is asked again and followed: room-a's copy, in no namespace with a process any
# more, let go, its probes detached ---------------------------------------------------------
# room_ct NAME: a container as above, waiting to be told to go; its pid in C_PID[NAME].
room_ct() {
	ct_root "$1" 0
	bg_start pid rs "$WORK/$1" sh -c \
		'exec unshare -m --root="$1" /bin/gai-musl -w aonly.dstrace.test 9 0<>"$2"' \
		_ "$WORK/$1" "$WORK/$1.go"
	C_PID[$1]=$pid
}
# room_go NAME: tell it to go on, wait for it, check its connect.
room_go() {
	timeout 5 sh -c 'echo go >"$1"' _ "$WORK/$1.go" ||
		fail "$1: told to go on" "expected it waiting, got it ended"
	RUN_PID=${C_PID[$1]}
	wait_run 20
	check_eq "$1: the program's connect" "0 result=111 raddr=::ffff:127.0.0.1 rport=9" \
		"$RUN_RC $(sed 's/ pid=.*//' "$WORK/$1.out")"
}
followed_re() { # followed_re NAME: the -v line of NAME's copy followed
	printf 'names: getaddrinfo\\(\\) of /proc/%s/root/lib/%s \\(mount namespace' \
		"${C_PID[$1]}" "${MUSL_LIB##*/}"
}
probe_fds() { # probe_fds: dstrace's perf event descriptors (a uprobe each, among others)
	find "/proc/$DSTRACE_PID/fd" -lname 'anon_inode:\[perf_event\]' 2>/dev/null | wc -l
}
if [[ -x $PROGS/gai-musl ]]; then
	RM=$WORK/room.jsonl
	# C libraries of other namespaces this machine already has take their room first
	room=1
	if dstrace_start "$RM" -v "${extra[@]}"; then
		room=$(($(grep -c 'names: getaddrinfo() of .* (mount namespace' "$DSTRACE_LOG") + 1))
		dstrace_stop
	fi
	log "room for other namespaces' C libraries: $room"
	if DSTRACE_RESOLVER_NS_LIBS_MAX=$room dstrace_start "$RM" -v "${extra[@]}"; then
		room_ct room-a
		wait_line "$DSTRACE_LOG" "$(followed_re room-a)" 15 ||
			fail "room-a: its C library followed" "expected the -v line, got: $(grep 'names:' "$DSTRACE_LOG" | tail -n 3)"
		fds_a=$(probe_fds)
		room_ct room-b
		if wait_line "$DSTRACE_LOG" "more than $room C libraries in mount namespaces that have processes; not followed: /proc/${C_PID[room-b]}/root/" 15; then
			pass "room-b: not followed while room-a runs, said" "$(grep -m1 'more than' "$DSTRACE_LOG")"
		else
			fail "room-b: not followed while room-a runs, said" "expected the warning, got: $(grep 'names' "$DSTRACE_LOG" | tail -n 3)"
		fi
		# room-b's process is asked at the two sweeps after its start (2 s apart): past
		# those, only its namespace's refusal has it asked again
		sleep 5
		room_go room-a
		if wait_line "$DSTRACE_LOG" "$(followed_re room-b)" 15; then
			pass "room-b: followed once room-a ended" "$(grep -m1 "getaddrinfo() of /proc/${C_PID[room-b]}/root" "$DSTRACE_LOG")"
		else
			fail "room-b: followed once room-a ended" "expected the -v line, got: $(grep 'names' "$DSTRACE_LOG" | tail -n 3)"
		fi
		check_eq "room: room-a's probes detached as room-b's were attached" \
			"$fds_a perf event descriptors" "$(probe_fds) perf event descriptors"
		room_go room-b
		dstrace_stop
		ino_a=$(stat -c %i "$WORK/room-a/lib/${MUSL_LIB##*/}")
		check_match "room: room-a's copy let go (-v)" \
			"^dstrace: names: let go of the C library at device [0-9]+:[0-9]+ inode $ino_a: no mount namespace with a process has it\$" \
			"$(grep -m1 "let go of .* inode $ino_a:" "$DSTRACE_LOG")" "the -v line, room-a's inode $ino_a"
		check_eq "room: said once" 1 "$(grep -c 'more than .* C libraries' "$DSTRACE_LOG")"
		for ct in room-a room-b; do
			check_events "$ct: its name" "$RM" "$NSJ" ".pid == ${C_PID[$ct]}" \
				"$(jq -nc '[{event: "connect", proto: "tcp", comm: "gai-musl",
				raddr: "127.0.0.1", rport: 9, ret: -111, name: "aonly.dstrace.test"}]')"
		done
		check_eq "room: the stats record says names were not all seen" \
			"[\"names of resolved peers\"]" "$(stats_record "$RM" | jq -c .blind)"
	fi
else
	fail "room for C libraries" "expected gai-musl built (musl-tools: scripts/install-deps.sh), got none"
fi

summary
