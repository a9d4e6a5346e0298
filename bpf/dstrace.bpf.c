// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace BPF programs. Each backend is a set of thin attach wrappers around the handlers in
 * paths.bpf.h; user space turns off (autoload) the programs of the backends it does not use.
 * Which programs each backend loads is written down in user/backend.c (its program lists,
 * checked against this object when it builds and when it loads): the backend's own
 * (fentry.bpf.h, kprobe.bpf.h, tracepoint.bpf.h; inflight.bpf.h for the first two), the
 * socket layer (socket.bpf.h), 32-bit programs' calls (compat.bpf.h), the resolver's uprobes
 * (resolver.bpf.h) and the process lifecycle (lifecycle.bpf.h), which is attached first,
 * before anything is counted.
 * A program added here must be added to one of those lists. (Names still start with fx_,
 * kp_, tp_/cg_, sk_, ifl_, cp_, rs_ and lc_, for whoever reads bpftool's list, but nothing
 * depends on it.)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "paths.bpf.h"
#include "lifecycle.bpf.h"
#include "socket.bpf.h"
#include "tracepoint.bpf.h"
#include "inflight.bpf.h"
#include "compat.bpf.h"
#include "fentry.bpf.h"
#include "kprobe.bpf.h"
#include "resolver.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

