# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# dstrace: BPF object -> skeleton -> user space, libbpf-bootstrap style.
#   make            build ./dstrace
#   make SAN=1      build ./dstrace-san (AddressSanitizer + UBSan)
#   make run        install missing dependencies, build, run dstrace (ARGS="...")
#   make test       install missing dependencies, build, run every test
#   make soak       the soak: 10 minutes of churn, slow clients, rotations and a full disk
#                   (SOAK_SECONDS=N for another length; SAN=1 soaks the sanitizer build)
#   make test-vm    the kernel matrix: Debian 11's 5.10, 12's 6.1 and 6.12, 13's 6.12 under qemu
#                   (VM_KERNELS="5.10 6.1" for some of them)
#   make bench      the benchmark (bench/RESULTS.md); make bench-smoke: a few seconds of it
#   make deps       install missing build and test dependencies (Debian 12)
#   make deb        the Debian package, ../dstrace_VERSION_ARCH.deb (dpkg-buildpackage -b)
#   VMLINUX_H=FILE  build against FILE instead of the running kernel's BTF (the package does)
#   V=1             show the commands

OUTPUT_BASE := .output
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CLANG ?= clang
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
CC ?= cc
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

ifeq ($(SAN),1)
OUTPUT := $(OUTPUT_BASE)/san
APP := dstrace-san
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
OUTPUT := $(OUTPUT_BASE)/rel
APP := dstrace
SAN_FLAGS :=
endif
BPF_OUT := $(OUTPUT_BASE)/bpf

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wformat=2 $(SAN_FLAGS)
CPPFLAGS += -Iinclude -I$(BPF_OUT) -Iuser -DDSTRACE_VERSION='"$(VERSION)"'
LDFLAGS += $(SAN_FLAGS)
LDLIBS += $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)
# The metrics server (its own thread) and sd_notify. libmicrohttpd is opened only when
# --metrics asks for it (user/metrics.c): MHD_SONAME is the one of the library built against.
CPPFLAGS += $(shell pkg-config --cflags libmicrohttpd libsystemd)
MHD_SONAME := $(shell readelf -d $$(pkg-config --variable=libdir libmicrohttpd)/libmicrohttpd.so 2>/dev/null | \
	sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
CPPFLAGS += $(if $(MHD_SONAME),-DMHD_SONAME='"$(MHD_SONAME)"')
LDLIBS += $(shell pkg-config --libs libsystemd) -pthread
CPPFLAGS += $(shell pkg-config --cflags jansson 2>/dev/null)
LDLIBS += $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Wno-unused-function \
	-Iinclude -I$(BPF_OUT) -Ibpf
# The BPF object's BTF names its source files: relative ones, whatever directory builds it
# (a reproducible package).
BPF_CFLAGS += -ffile-prefix-map=$(CURDIR)=.

BPF_SRCS := bpf/dstrace.bpf.c
BPF_HDRS := $(wildcard bpf/*.h) include/dstrace.h
REPORT_SRCS := $(wildcard user/report/*.c)
USER_LIB_SRCS := user/htab.c user/options.c user/format.c user/schema.c user/aggregate.c user/cgroupfs.c user/clock.c user/programs.c user/audit.c \
	user/metrics.c user/outfile.c user/container.c $(REPORT_SRCS)
USER_SRCS := user/dstrace.c user/backend.c user/resolver.c user/names.c user/kretprobe.c user/tables.c user/inflight.c user/compat.c user/run.c user/sink.c user/sink_lines.c \
	user/sink_audit.c user/sink_metrics.c $(USER_LIB_SRCS)
USER_OBJS := $(patsubst user/%.c,$(OUTPUT)/%.o,$(USER_SRCS))

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all clean deps run test test-unit test-e2e test-vm bench bench-smoke san install deb soak

PREFIX ?= /usr/local

all: $(APP)

# vmlinux.h: from the running kernel's BTF when it has one, else the checked-in fallback.
# VMLINUX_H=FILE takes FILE whatever the kernel: a package must not depend on the kernel of
# the machine (or chroot) that builds it; CO-RE relocates the program on the target's kernel.
VMLINUX_H ?=
$(BPF_OUT)/vmlinux.h: $(VMLINUX_H) | $(BPF_OUT)
	$(call msg,GEN,$@)
	$(Q)if [ -n "$(VMLINUX_H)" ]; then \
		cp $(VMLINUX_H) $@; \
	elif [ -r /sys/kernel/btf/vmlinux ]; then \
		$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@; \
	else \
		cp vmlinux/vmlinux_$(shell uname -m).h $@; \
	fi

$(BPF_OUT)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(BPF_OUT)/vmlinux.h | $(BPF_OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(BPF_OUT)/%.skel.h: $(BPF_OUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $* > $@

$(OUTPUT)/backend.o $(OUTPUT)/tables.o $(OUTPUT)/inflight.o $(OUTPUT)/compat.o $(OUTPUT)/names.o: $(BPF_OUT)/dstrace.skel.h
$(OUTPUT)/%.o: user/%.c $(wildcard user/*.h user/report/*.h) include/dstrace.h | $(OUTPUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(APP): $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUTPUT) $(BPF_OUT):
	$(Q)mkdir -p $@

san:
	$(Q)$(MAKE) --no-print-directory SAN=1

deps:
	$(Q)scripts/install-deps.sh

run:
	$(Q)scripts/install-deps.sh build
	$(Q)$(MAKE) --no-print-directory all
	./dstrace $(ARGS)

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory SAN=1
	$(Q)tests/run.sh

# The soak (tests/soak/soak.sh): dstrace --audit --metrics for SOAK_SECONDS under mixed churn,
# hostile HTTP clients, logrotate rotations and a disk-full episode; exact totals, RSS bound,
# figures. make test runs a 45 s version of it (tests/e2e/test_soak.sh).
SOAK_SECONDS ?= 600
soak: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory -C tests/progs
	$(Q)SOAK_SECONDS=$(SOAK_SECONDS) DSTRACE="$${DSTRACE:-$(CURDIR)/$(APP)}" tests/soak/soak.sh

test-vm: deps
	$(Q)scripts/install-deps.sh vm
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory -C tests/progs
	$(Q)tests/vm/matrix.sh $(VM_KERNELS)

bench: deps
	$(Q)scripts/install-deps.sh bench
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory -C bench run ARGS="$(ARGS)"

bench-smoke: deps
	$(Q)scripts/install-deps.sh bench
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory -C bench smoke

test-unit:
	$(Q)$(MAKE) --no-print-directory SAN=1
	$(Q)tests/run.sh unit

install: $(APP)
	install -D -m 0755 dstrace $(DESTDIR)$(PREFIX)/sbin/dstrace
	install -D -m 0644 dist/dstrace.service $(DESTDIR)/etc/systemd/system/dstrace.service
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/dstrace/README.md
	install -D -m 0644 man/dstrace.8 $(DESTDIR)$(PREFIX)/share/man/man8/dstrace.8
	install -D -m 0644 man/dstrace-report.8 $(DESTDIR)$(PREFIX)/share/man/man8/dstrace-report.8
	install -D -m 0644 dist/bash-completion/dstrace \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/dstrace
	install -D -m 0644 dist/logrotate/dstrace $(DESTDIR)/etc/logrotate.d/dstrace

# The Debian package (scripts/build-deb.sh): built in a copy of the tree, so that
# dpkg-buildpackage's outputs and debian/'s build directories never land in the checkout.
# DEB_OUT: where the .deb goes (default: the parent directory, as dpkg-buildpackage does).
DEB_OUT ?= ..
deb:
	$(Q)scripts/build-deb.sh $(DEB_OUT)

clean:
	$(call msg,CLEAN,)
	$(Q)rm -rf $(OUTPUT_BASE) dstrace dstrace-san tests/unit/.output tests/progs/.output \
		tests/vm/.output bench/.output
