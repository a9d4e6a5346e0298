// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests of user/htab.c: the one open-addressing table (find, place, clear, rehash), with
 * slots of a small struct keyed by a 32-bit id, 0 being empty.
 */
#include <string.h>
#include "hash.h"
#include "htab.h"
#include "unit.h"

struct item {
	uint32_t id; /* 0: empty */
	uint32_t value;
};

static bool item_empty(const void *slot)
{
	return !((const struct item *)slot)->id;
}

static bool item_match(const void *slot, const void *key)
{
	return ((const struct item *)slot)->id == *(const uint32_t *)key;
}

static uint64_t item_hash(const void *slot)
{
	return dstrace_hash64(((const struct item *)slot)->id);
}

static const struct htab_ops ops = { .empty = item_empty, .match = item_match, .hash = item_hash };

/* Find or add id; the value of a new one is id * 3. */
static struct item *get(struct htab *t, uint32_t id, bool *found)
{
	struct item *it = htab_find(t, dstrace_hash64(id), &id, found);

	if (!*found) {
		it->id = id;
		it->value = id * 3;
	}
	return it;
}

static uint32_t count(const struct htab *t)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < t->cap; i++)
		n += !item_empty(htab_slot(t, i));
	return n;
}

static void test_pow2(void)
{
	ASSERT_UINT_EQ(htab_pow2(0), 1);
	ASSERT_UINT_EQ(htab_pow2(1), 1);
	ASSERT_UINT_EQ(htab_pow2(2), 2);
	ASSERT_UINT_EQ(htab_pow2(3), 4);
	ASSERT_UINT_EQ(htab_pow2(4096), 4096);
	ASSERT_UINT_EQ(htab_pow2(4097), 8192);
}

static void test_find_and_add(void)
{
	struct htab t;
	bool found;

	REQUIRE_TRUE(htab_alloc(&t, &ops, sizeof(struct item), 64) == 0);
	ASSERT_UINT_EQ(t.cap, 64);
	for (uint32_t id = 1; id <= 32; id++) {
		get(&t, id, &found);
		ASSERT_TRUE(!found);
	}
	for (uint32_t id = 1; id <= 32; id++) {
		struct item *it = get(&t, id, &found);

		ASSERT_TRUE(found);
		ASSERT_UINT_EQ(it->id, id);
		ASSERT_UINT_EQ(it->value, id * 3);
	}
	get(&t, 33, &found);
	ASSERT_TRUE(!found);
	ASSERT_UINT_EQ(count(&t), 33);
	htab_free(&t);
	ASSERT_UINT_EQ(t.cap, 0);
	ASSERT_TRUE(t.slots == NULL);
}

/* Keys of one home slot go to the next free slots, wrapping around the end. */
static void test_collisions_wrap(void)
{
	struct htab t;
	uint32_t ids[3], n = 0;
	bool found;

	REQUIRE_TRUE(htab_alloc(&t, &ops, sizeof(struct item), 8) == 0);
	for (uint32_t id = 1; n < 3; id++) {
		if ((dstrace_hash64(id) & 7) == 7)
			ids[n++] = id;
	}
	for (uint32_t i = 0; i < 3; i++)
		get(&t, ids[i], &found);
	ASSERT_UINT_EQ(((struct item *)htab_slot(&t, 7))->id, ids[0]);
	ASSERT_UINT_EQ(((struct item *)htab_slot(&t, 0))->id, ids[1]);
	ASSERT_UINT_EQ(((struct item *)htab_slot(&t, 1))->id, ids[2]);
	for (uint32_t i = 0; i < 3; i++) {
		get(&t, ids[i], &found);
		ASSERT_TRUE(found);
	}
	htab_free(&t);
}

static void test_place_and_clear(void)
{
	struct htab t;
	struct item *it;
	uint32_t id = 5;
	bool found;

	REQUIRE_TRUE(htab_alloc(&t, &ops, sizeof(struct item), 16) == 0);
	get(&t, id, &found);
	it = htab_place(&t, dstrace_hash64(id)); /* the next free slot, not the entry's */
	ASSERT_TRUE(item_empty(it));
	htab_clear(&t);
	ASSERT_UINT_EQ(count(&t), 0);
	ASSERT_TRUE(htab_find(&t, dstrace_hash64(id), &id, &found) != NULL);
	ASSERT_TRUE(!found);
	htab_free(&t);
	htab_clear(&t); /* freed: nothing to clear */
}

static void test_rehash(void)
{
	struct htab t;
	bool found;

	REQUIRE_TRUE(htab_alloc(&t, &ops, sizeof(struct item), 16) == 0);
	for (uint32_t id = 100; id < 108; id++)
		get(&t, id, &found);
	REQUIRE_TRUE(htab_rehash(&t, 64) == 0);
	ASSERT_UINT_EQ(t.cap, 64);
	ASSERT_UINT_EQ(count(&t), 8);
	for (uint32_t id = 100; id < 108; id++) {
		struct item *it = get(&t, id, &found);

		ASSERT_TRUE(found);
		ASSERT_UINT_EQ(it->value, id * 3);
	}
	htab_free(&t);
}

static const CU_TestInfo tests[] = {
	{ "powers of two", test_pow2 },
	{ "find and add", test_find_and_add },
	{ "collisions wrap around", test_collisions_wrap },
	{ "place and clear", test_place_and_clear },
	{ "rehash keeps every entry", test_rehash },
	CU_TEST_INFO_NULL,
};

int register_htab_tests(void)
{
	return unit_add_suite("htab", tests, NULL);
}
