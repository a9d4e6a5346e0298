#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The soak's short version, for `make test`: tests/soak/soak.sh for SOAK_SHORT_SECONDS
# (default 45) instead of `make soak`'s 600: mixed churn of short-lived processes with exact
# mapped connect and datagram counts, slow and idle HTTP clients on /metrics with scrapes
# every second, logrotate-style rotations (mv + SIGHUP), one disk-full episode, then exact
# totals, no torn line, drops and write failures counted alike everywhere, peak RSS within
# its bound, and the figures. See tests/soak/soak.sh.
#
#   sudo tests/e2e/test_soak.sh
set -u
exec env SOAK_SECONDS="${SOAK_SHORT_SECONDS:-45}" bash "$(dirname "${BASH_SOURCE[0]}")/../soak/soak.sh"
