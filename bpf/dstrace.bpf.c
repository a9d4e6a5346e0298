// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace BPF programs. Each backend is a set of thin attach wrappers around the handlers in
 * paths.bpf.h; user space turns off (autoload) the programs of the backends it does not use.
 * Program names start with the backend's prefix: fx_ (fentry), kp_ (kprobe), tp_ and cg_
 * (tracepoint); sk_ programs (socket.bpf.h) are loaded by every backend, and so are lc_
 * programs (process lifecycle, lifecycle.bpf.h), which come first so that they are attached
 * before anything is counted.
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
#include "fentry.bpf.h"
#include "kprobe.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

