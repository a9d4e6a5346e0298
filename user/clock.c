// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CLOCK_BOOTTIME -> CLOCK_REALTIME (clock.h): the offset, derived again every period from
 * reads of both clocks. A read can be preempted between the two clocks, which would put the
 * whole gap into the offset: each derivation takes the tightest of a few samples, and the
 * midpoint of the boot-clock reads around the wall-clock read.
 */
#include <stdlib.h>
#include "clock.h"

#define SAMPLES 3

static uint64_t read_clock_gettime(void *ctx, clockid_t clk)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The offset by the tightest of SAMPLES (boot, real, boot) reads; *boot_ns: when. */
static int64_t derive(const struct dstrace_clock *c, uint64_t *boot_ns)
{
	uint64_t best_gap = UINT64_MAX;
	int64_t best = 0;

	for (int i = 0; i < SAMPLES; i++) {
		uint64_t b1 = c->read(c->ctx, CLOCK_BOOTTIME);
		uint64_t real = c->read(c->ctx, CLOCK_REALTIME);
		uint64_t b2 = c->read(c->ctx, CLOCK_BOOTTIME);
		uint64_t gap = b2 - b1;

		if (gap < best_gap) {
			best_gap = gap;
			best = (int64_t)(real - (b1 + gap / 2));
			*boot_ns = b2;
		}
	}
	return best;
}

void dstrace_clock_sync(struct dstrace_clock *c)
{
	uint64_t now = 0;
	int64_t off, diff;

	if (!c->read)
		return;
	off = derive(c, &now);
	diff = off - c->boot_to_realtime_ns;
	if (!c->synced_boot_ns || llabs(diff) >= DSTRACE_CLOCK_NOISE_NS) {
		if (c->synced_boot_ns)
			c->steps++;
		c->boot_to_realtime_ns = off;
	}
	c->synced_boot_ns = now ? now : 1;
}

void dstrace_clock_init(struct dstrace_clock *c, uint64_t period_ns, dstrace_clock_read_fn read,
			void *ctx)
{
	*c = (struct dstrace_clock){
		.read = read ? read : read_clock_gettime,
		.ctx = ctx,
		.period_ns = period_ns,
	};
	dstrace_clock_sync(c);
}

void dstrace_clock_fixed(struct dstrace_clock *c, int64_t boot_to_realtime_ns)
{
	*c = (struct dstrace_clock){ .boot_to_realtime_ns = boot_to_realtime_ns };
}

void dstrace_clock_tick(struct dstrace_clock *c)
{
	if (c->read && c->read(c->ctx, CLOCK_BOOTTIME) - c->synced_boot_ns >= c->period_ns)
		dstrace_clock_sync(c);
}

uint64_t dstrace_clock_realtime(const struct dstrace_clock *c, uint64_t boot_ns)
{
	return boot_ns + (uint64_t)c->boot_to_realtime_ns;
}
