/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One handler per mapping path. A backend's attach wrappers find the socket, the peer and
 * the result the way their hook allows, then call one of these; everything that turns kernel
 * state into a dstrace event or a counter lives here, so every backend reports the same. That
 * includes which calls count: the handlers get the call's flags and result and decide (a
 * peek, an error-queue read, a failed read are not counted: recv_counted()).
 *
 * They live in four headers:
 *   core.bpf.h      what they share: constants, counters, filters, process entries, events,
 *                   reading sockets, sockaddrs, descriptors and syscall arguments;
 *   connect.bpf.h   paths 1 and 2 (a connect to its outcome, an accept) and bind;
 *   existing.bpf.h  the scan of existing sockets at start (on connect.bpf.h);
 *   traffic.bpf.h   paths 3 and 4 (UDP datagrams) and TCP bytes.
 */
#ifndef DSTRACE_PATHS_BPF_H
#define DSTRACE_PATHS_BPF_H

#include "core.bpf.h"
#include "connect.bpf.h"
#include "existing.bpf.h"
#include "traffic.bpf.h"

#endif /* DSTRACE_PATHS_BPF_H */
