/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one conversion of the kernel's timestamps (CLOCK_BOOTTIME) to wall-clock time
 * (CLOCK_REALTIME), for every record dstrace writes. The offset between the two clocks is not
 * a constant: clock_settime, NTP steps and leap seconds move the wall clock and not the boot
 * clock, so an offset fixed at start drifts over a days-long audit. It is derived again every
 * period (dstrace_clock_tick: one clock read per call, a few when the period is over).
 */
#ifndef DSTRACE_CLOCK_H
#define DSTRACE_CLOCK_H

#include <stdint.h>
#include <time.h>

#define DSTRACE_CLOCK_PERIOD_NS 1000000000ull /* derive the offset again once a second */
/* A new offset closer than this to the one in use is the noise of reading two clocks: kept
 * out, so that timestamps do not jitter (records have microseconds). */
#define DSTRACE_CLOCK_NOISE_NS 1000

/* Reads clock clk (CLOCK_BOOTTIME or CLOCK_REALTIME) in ns; injectable for tests. */
typedef uint64_t (*dstrace_clock_read_fn)(void *ctx, clockid_t clk);

struct dstrace_clock {
	dstrace_clock_read_fn read; /* NULL: a fixed offset (dstrace_clock_fixed) */
	void *ctx;
	uint64_t period_ns;
	uint64_t synced_boot_ns; /* boot time of the last derivation */
	int64_t boot_to_realtime_ns; /* add to CLOCK_BOOTTIME to get CLOCK_REALTIME */
	uint64_t steps; /* times the offset in use changed (a clock step seen) */
};

/* Derives the offset now; read NULL: clock_gettime(2). */
void dstrace_clock_init(struct dstrace_clock *c, uint64_t period_ns, dstrace_clock_read_fn read,
			void *ctx);
/* A clock whose offset never changes (tests, conversions of recorded data). */
void dstrace_clock_fixed(struct dstrace_clock *c, int64_t boot_to_realtime_ns);
/* Call often (every loop): derives the offset again once the period is over. */
void dstrace_clock_tick(struct dstrace_clock *c);
/* Derives the offset again now. */
void dstrace_clock_sync(struct dstrace_clock *c);
/* boot_ns (CLOCK_BOOTTIME) as CLOCK_REALTIME, by the offset in use. */
uint64_t dstrace_clock_realtime(const struct dstrace_clock *c, uint64_t boot_ns);

#endif /* DSTRACE_CLOCK_H */
