#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The Debian package, as a user gets it (CI: .ci/run's "deb" step; as root, takes the machine
# lock of the e2e suites since it runs dstrace):
#   1. build it from this tree (scripts/build-deb.sh: in a copy of the tree, the .deb in a
#      temporary directory, nothing left in the checkout), lintian clean (warnings and
#      errors; the remaining tags are overridden with a reason in debian/);
#   2. apt-get install ./dstrace_*.deb: the files are where Debian wants them, the service
#      installed but not enabled, the logrotate rule valid, the completion loads;
#   3. the installed /usr/sbin/dstrace against real mapped traffic in a network namespace:
#      exact events;
#   4. man -l renders both installed pages without a warning;
#   5. dpkg -r, then dpkg -P: nothing left in /usr/sbin, /lib/systemd/system,
#      /etc/logrotate.d, /var/log/dstrace.
# Ends with "N passed, N failed".
set -u
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

TCP_PORT=9760
CONNECTS=3
PKG_FILES=(/usr/sbin/dstrace /lib/systemd/system/dstrace.service /etc/logrotate.d/dstrace
	/usr/share/man/man8/dstrace.8.gz /usr/share/man/man8/dstrace-report.8.gz
	/usr/share/bash-completion/completions/dstrace /usr/share/doc/dstrace/copyright)

need_root
build_progs

# Whatever happens, the package does not outlive the test.
purge_pkg() { dpkg -P dstrace >/dev/null 2>&1; }
trap 'purge_pkg; cleanup' EXIT

if dpkg-query -W -f='${Status}' dstrace 2>/dev/null | grep -q "install ok installed"; then
	fail "dstrace not installed before the test" "expected not installed, got $(dpkg-query -W dstrace)"
	summary
	exit 1
fi

# --- 1. build ------------------------------------------------------------------------------
status_before=$(git -C "$REPO_ROOT" status --porcelain --ignored 2>/dev/null | md5sum)
t0=$SECONDS
if deb=$("$REPO_ROOT/scripts/build-deb.sh" "$WORK/deb" 2>"$WORK/build.err" | grep -v dbgsym | tail -n 1) &&
	[[ -f $deb ]]; then
	pass "package built" "$deb in $((SECONDS - t0)) s"
else
	fail "package built" "expected a .deb, got: $(tail -n 30 "$WORK/build.err")"
	summary
	exit 1
fi
check_eq "the build leaves the checkout as it was" "$status_before" \
	"$(git -C "$REPO_ROOT" status --porcelain --ignored 2>/dev/null | md5sum)"
check_eq "package name and architecture" "dstrace amd64" \
	"$(dpkg-deb -f "$deb" Package Architecture | awk -F': ' '{printf "%s%s", sep, $2; sep=" "}')"
check_match "Depends from shlibs (libbpf, libc)" '^libbpf1 .*libc6 ' "$(dpkg-deb -f "$deb" Depends)"
# opened at run time for --metrics (the unit serves metrics): shlibs cannot see it
check_match "Depends names libmicrohttpd" ', libmicrohttpd12 \| libmicrohttpd12t64$' \
	"$(dpkg-deb -f "$deb" Depends)"
lint=$(lintian --fail-on error,warning "$deb" 2>&1 | grep -v 'running with root privileges')
check_eq "lintian: no error or warning" "" "$lint"

# --- 2. install -----------------------------------------------------------------------------
(cd "$WORK/deb" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	"./${deb##*/}") >"$WORK/install.log" 2>&1
rc=$?
check_eq "apt-get install ./${deb##*/}" "0 install ok installed" \
	"$rc $(dpkg-query -W -f='${Status}' dstrace 2>&1)"
missing=()
for f in "${PKG_FILES[@]}"; do
	[[ -e $f ]] || missing+=("$f")
done
check_eq "installed files" "all ${#PKG_FILES[@]} present" \
	"${missing[*]:-all ${#PKG_FILES[@]} present}"
check_eq "log directory" "directory" "$([[ -d /var/log/dstrace ]] && echo directory || echo missing)"
check_eq "dstrace --version" "dstrace $(dpkg-deb -f "$deb" Version)" "$(/usr/sbin/dstrace --version)"
check_eq "the unit runs the installed binary" "ExecStart=/usr/sbin/dstrace" \
	"$(grep -o '^ExecStart=[^ ]*' /lib/systemd/system/dstrace.service)"
check_eq "the service is not enabled" "disabled" \
	"$(systemctl is-enabled dstrace.service 2>/dev/null)"
check_eq "logrotate accepts /etc/logrotate.d/dstrace" "0" \
	"$(logrotate -d -s "$WORK/lr.state" /etc/logrotate.d/dstrace >"$WORK/lr.log" 2>&1; echo $?)"
check_eq "logrotate rotates /var/log/dstrace/*.jsonl" "1" \
	"$(grep -c 'considering log /var/log/dstrace/\*.jsonl' "$WORK/lr.log")"
comp=$(bash --norc -c '. /usr/share/bash-completion/completions/dstrace
	COMP_WORDS=(dstrace --backend tr); COMP_CWORD=2; COMP_LINE="dstrace --backend tr"
	COMP_POINT=${#COMP_LINE}; _dstrace dstrace tr --backend; echo "${COMPREPLY[*]}"' 2>&1)
check_eq "the installed completion: dstrace --backend tr<TAB>" "tracepoint" "$comp"

# --- 3. the installed binary, real mapped traffic --------------------------------------------
ROLE=lo
lo_host_add "$ROLE"
bg_start SERVER_PID "$ROLE" "$WORK/server" "$PROGS/tcpserv6" "$TCP_PORT"
if ! wait_line "$WORK/server.out" '^listening' 5; then
	fail "tcpserv6 ready" "expected 'listening' within 5 s, got: $(cat "$WORK/server.err")"
fi
NS=$(ns_json "$ROLE")
OUT=$WORK/installed.jsonl
if DSTRACE=/usr/sbin/dstrace dstrace_start "$OUT"; then
	CLIENTS=()
	for ((i = 0; i < CONNECTS; i++)); do
		run_in "$ROLE" 10 "$WORK/client$i" "$PROGS/tcpcli6" ::ffff:127.0.0.1 "$TCP_PORT"
		CLIENTS+=("$RUN_PID")
		[[ $RUN_RC == 0 ]] || fail "tcpcli6 $i" "expected exit 0, got $RUN_RC"
	done
	sleep 0.5
	dstrace_stop
	check_json_lines "installed dstrace: JSON Lines" "$OUT"
	check_eq "installed dstrace: connects of the clients" "$CONNECTS" \
		"$(events_in "$OUT" "$NS" '.event == "connect" and .proto == "tcp" and .ret == 0 and .raddr == "127.0.0.1"' |
			jq -s --argjson p "$(printf '%s\n' "${CLIENTS[@]}" | jq -s .)" '[.[] | select(.pid as $x | $p | index($x))] | length')"
	check_eq "installed dstrace: accepts of the server" "$CONNECTS" \
		"$(events_in "$OUT" "$NS" ".event == \"accept\" and .pid == $SERVER_PID and .lport == $TCP_PORT" | wc -l)"
	check_eq "installed dstrace: the backend it names" "tracepoint" "$(stats_record "$OUT" | jq -r .backend)"
fi

# --- 4. man pages -----------------------------------------------------------------------------
for page in dstrace dstrace-report; do
	f=/usr/share/man/man8/$page.8.gz
	out=$(MANWIDTH=80 man -l --warnings "$f" 2>"$WORK/man.err")
	check_eq "man -l $f: no warning" "" "$(cat "$WORK/man.err")"
	check_match "man -l $f: renders its NAME" "^$page +- " \
		"$(sed -n '/^NAME/{n;p}' <<<"$out" | sed 's/^ *//')"
done

# --- 5. remove, purge ---------------------------------------------------------------------------
dpkg -r dstrace >"$WORK/remove.log" 2>&1
check_eq "dpkg -r" "0 deinstall ok config-files" \
	"$? $(dpkg-query -W -f='${Status}' dstrace 2>&1)"
left=()
for f in /usr/sbin/dstrace /lib/systemd/system/dstrace.service /usr/share/man/man8/dstrace.8.gz; do
	[[ -e $f ]] && left+=("$f")
done
check_eq "dpkg -r: the program, unit and pages are gone" "none left" "${left[*]:-none left}"
check_eq "dpkg -r: the conffile stays until purge" "kept" \
	"$([[ -e /etc/logrotate.d/dstrace ]] && echo kept || echo gone)"
dpkg -P dstrace >"$WORK/purge.log" 2>&1
check_eq "dpkg -P" "0 not installed" \
	"$? $(dpkg-query -W -f='${db:Status-Status}' dstrace 2>/dev/null || echo 'not installed')"
left=()
for f in "${PKG_FILES[@]}" /var/log/dstrace /usr/share/doc/dstrace; do
	[[ -e $f ]] && left+=("$f")
done
check_eq "dpkg -P: nothing left" "none left" "${left[*]:-none left}"
check_eq "dpkg -P: no dstrace file in /usr/sbin, /lib/systemd/system, /etc/logrotate.d" "" \
	"$(ls -d /usr/sbin/dstrace* /lib/systemd/system/dstrace* /etc/logrotate.d/dstrace* 2>/dev/null)"

summary
