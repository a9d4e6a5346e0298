// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report: the one hash index it uses (open addressing over the items of an array,
 * which the caller owns and appends to) and, built on it, the interned strings: hosts, runs,
 * paths are stored once and compared by pointer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "internal.h"

#define INTERN_MAX (4u * REPORT_ENTRIES_MAX)

/* Fold v into h: the key of a composite (host, run, ...) tuple. */
uint64_t hash_mix(uint64_t h, uint64_t v)
{
	return (h << 32 | h >> 32) ^ dstrace_hash64(h ^ v * 0x9e3779b97f4a7c15ull);
}

/* FNV-1a */
uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

uint32_t hindex_find(const struct hindex *ix, uint64_t h, hindex_eq eq, const void *items,
		     const void *key)
{
	if (!ix->cap)
		return UINT32_MAX;
	for (uint32_t s = h & (ix->cap - 1);; s = (s + 1) & (ix->cap - 1)) {
		uint32_t i = ix->slots[s];

		if (!i)
			return UINT32_MAX;
		if (ix->hashes[i - 1] == h && eq(items, i - 1, key))
			return i - 1;
	}
}

static void hindex_place(uint32_t *slots, uint32_t cap, uint64_t h, uint32_t item)
{
	uint32_t s = h & (cap - 1);

	while (slots[s])
		s = (s + 1) & (cap - 1);
	slots[s] = item + 1;
}

int hindex_add(struct hindex *ix, uint64_t h)
{
	if (grow((void **)&ix->hashes, &ix->hashes_cap, ix->n + 1, sizeof(*ix->hashes)))
		return -ENOMEM;
	if ((ix->n + 1) * 2 > ix->cap) {
		uint32_t cap = ix->cap ? ix->cap * 2 : 64;
		uint32_t *slots = calloc(cap, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		for (uint32_t i = 0; i < ix->n; i++)
			hindex_place(slots, cap, ix->hashes[i], i);
		free(ix->slots);
		ix->slots = slots;
		ix->cap = cap;
	}
	ix->hashes[ix->n] = h;
	hindex_place(ix->slots, ix->cap, h, ix->n);
	ix->n++;
	return 0;
}

void hindex_free(struct hindex *ix)
{
	free(ix->slots);
	free(ix->hashes);
	memset(ix, 0, sizeof(*ix));
}

static bool string_eq(const void *items, uint32_t i, const void *key)
{
	return !strcmp(((char *const *)items)[i], key);
}

const char *intern(struct strings *st, const char *s)
{
	uint64_t h = hash_str(s);
	uint32_t i = hindex_find(&st->ix, h, string_eq, st->items, s);
	char *copy;

	if (i != UINT32_MAX)
		return st->items[i];
	if (st->ix.n >= INTERN_MAX ||
	    grow((void **)&st->items, &st->cap, st->ix.n + 1, sizeof(*st->items)))
		return NULL;
	copy = strdup(s);
	if (!copy)
		return NULL;
	if (hindex_add(&st->ix, h)) {
		free(copy);
		return NULL;
	}
	st->items[st->ix.n - 1] = copy;
	return copy;
}

void strings_free(struct strings *st)
{
	for (uint32_t i = 0; i < st->ix.n; i++)
		free(st->items[i]);
	free(st->items);
	hindex_free(&st->ix);
	memset(st, 0, sizeof(*st));
}
