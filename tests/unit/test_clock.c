// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests of user/clock.c: boot-to-realtime conversion that follows steps of the wall
 * clock, once a period, ignores the noise of the reads and preempted samples. The clocks are
 * a script: each read returns the time and moves it on by the next gap. */
#include <stdlib.h>
#include <time.h>
#include "clock.h"
#include "unit.h"

#define MS 1000000ull
#define S 1000000000ull

struct fake {
	uint64_t boot; /* CLOCK_BOOTTIME now */
	int64_t offset; /* CLOCK_REALTIME - CLOCK_BOOTTIME, as the wall clock is set */
	const uint64_t *gaps; /* time between one read and the next, in turn; then 10 ns */
	unsigned int ngaps, next;
	unsigned int reads;
};

static uint64_t fake_read(void *ctx, clockid_t clk)
{
	struct fake *f = ctx;
	uint64_t t = clk == CLOCK_BOOTTIME ? f->boot : f->boot + (uint64_t)f->offset;

	f->boot += f->next < f->ngaps ? f->gaps[f->next++] : 10;
	f->reads++;
	return t;
}

static void test_converts(void)
{
	struct fake f = { .boot = 5 * S, .offset = 1700000000 * S + 123456789 };
	struct dstrace_clock c;

	dstrace_clock_init(&c, S, fake_read, &f);
	ASSERT_INT_EQ(c.boot_to_realtime_ns, f.offset);
	ASSERT_UINT_EQ(dstrace_clock_realtime(&c, 6 * S), 6 * S + (uint64_t)f.offset);
	ASSERT_UINT_EQ(c.steps, 0);
}

/* The wall clock is stepped (clock_settime, an NTP step): seen at the next period, not
 * before; nothing until then but one read a tick. */
static void test_step_each_period(void)
{
	struct fake f = { .boot = 5 * S, .offset = 1700000000 * S };
	struct dstrace_clock c;
	unsigned int reads;

	dstrace_clock_init(&c, S, fake_read, &f);
	f.offset += 2 * S; /* set two seconds ahead */
	f.boot += 500 * MS;
	reads = f.reads;
	dstrace_clock_tick(&c);
	ASSERT_UINT_EQ(f.reads - reads, 1); /* the period is not over: one read, no derivation */
	ASSERT_INT_EQ(c.boot_to_realtime_ns, 1700000000 * S);
	f.boot += 500 * MS;
	dstrace_clock_tick(&c);
	ASSERT_INT_EQ(c.boot_to_realtime_ns, 1700000002 * S);
	ASSERT_UINT_EQ(c.steps, 1);
	ASSERT_UINT_EQ(dstrace_clock_realtime(&c, 7 * S), 7 * S + 1700000002 * S);
	f.offset -= 3600 * S; /* and back an hour */
	f.boot += S;
	dstrace_clock_tick(&c);
	ASSERT_INT_EQ(c.boot_to_realtime_ns, 1699996402 * S);
	ASSERT_UINT_EQ(c.steps, 2);
}

/* A move below the noise threshold is not taken (timestamps would jitter); a larger one
 * is, also when it builds up over several periods. */
static void test_noise(void)
{
	struct fake f = { .boot = 5 * S, .offset = 1700000000 * S };
	struct dstrace_clock c;

	dstrace_clock_init(&c, S, fake_read, &f);
	f.offset += DSTRACE_CLOCK_NOISE_NS / 2;
	f.boot += S;
	dstrace_clock_tick(&c);
	ASSERT_INT_EQ(c.boot_to_realtime_ns, 1700000000 * S);
	f.offset += DSTRACE_CLOCK_NOISE_NS / 2; /* a slow drift, built up */
	f.boot += S;
	dstrace_clock_tick(&c);
	ASSERT_INT_EQ(c.boot_to_realtime_ns, 1700000000 * S + DSTRACE_CLOCK_NOISE_NS);
	ASSERT_UINT_EQ(c.steps, 1);
}

/* A sample preempted between its reads is not the one taken: the tightest is. */
static void test_preempted_sample(void)
{
	/* sample 1: 5 ms between the boot read and the wall-clock read; sample 2: tight;
	 * sample 3: 2 ms after the wall-clock read */
	static const uint64_t gaps[] = { 5 * MS, 10, 10, 20, 20, 10, 10, 2 * MS, 10 };
	struct fake f = { .boot = 5 * S, .offset = 1700000000 * S, .gaps = gaps, .ngaps = 9 };
	struct dstrace_clock c;

	dstrace_clock_init(&c, S, fake_read, &f);
	ASSERT_INT_EQ(c.boot_to_realtime_ns, 1700000000 * S);
}

/* A fixed clock never reads a clock. */
static void test_fixed(void)
{
	struct dstrace_clock c;

	dstrace_clock_fixed(&c, -5);
	dstrace_clock_tick(&c);
	dstrace_clock_sync(&c);
	ASSERT_UINT_EQ(dstrace_clock_realtime(&c, 100), 95);
}

/* The real clocks: a boot timestamp of now converts to about now. */
static void test_real_clocks(void)
{
	struct dstrace_clock c;
	struct timespec b, r;
	uint64_t real, conv;

	dstrace_clock_init(&c, S, NULL, NULL);
	clock_gettime(CLOCK_BOOTTIME, &b);
	clock_gettime(CLOCK_REALTIME, &r);
	conv = dstrace_clock_realtime(&c, (uint64_t)b.tv_sec * S + b.tv_nsec);
	real = (uint64_t)r.tv_sec * S + r.tv_nsec;
	ASSERT_TRUE(conv <= real + 50 * MS && real <= conv + 50 * MS);
}

static const CU_TestInfo tests[] = {
	{ "converts", test_converts },
	{ "a step is seen at the next period", test_step_each_period },
	{ "noise kept out, drift taken", test_noise },
	{ "preempted sample", test_preempted_sample },
	{ "fixed offset", test_fixed },
	{ "real clocks", test_real_clocks },
	CU_TEST_INFO_NULL,
};

int register_clock_tests(void)
{
	return unit_add_suite("clock", tests, NULL);
}
