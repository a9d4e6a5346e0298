// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dstrace report: the one hash index it uses (the items of an array, which the caller owns
 * and appends to, by their index in an htab) and, built on it, the interned strings: hosts,
 * runs, paths are stored once and compared by pointer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "htab.h"
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

/* A slot holds the item's index + 1 (0: empty); the key carries what the caller compares. */
struct hindex_key {
	const struct hindex *ix;
	uint64_t h;
	hindex_eq eq;
	const void *items;
	const void *key;
};

static bool item_match(const void *slot, const void *key)
{
	const struct hindex_key *k = key;
	uint32_t i = *(const uint32_t *)slot - 1;

	return k->ix->hashes[i] == k->h && k->eq(k->items, i, k->key);
}

static const struct htab_ops item_ops = { .empty = htab_u32_empty, .match = item_match };

uint32_t hindex_find(const struct hindex *ix, uint64_t h, hindex_eq eq, const void *items,
		     const void *key)
{
	struct hindex_key k = { ix, h, eq, items, key };
	const uint32_t *slot;
	bool found;

	if (!ix->slots.cap)
		return UINT32_MAX;
	slot = htab_find(&ix->slots, h, &k, &found);
	return found ? *slot - 1 : UINT32_MAX;
}

int hindex_add(struct hindex *ix, uint64_t h)
{
	if (grow((void **)&ix->hashes, &ix->hashes_cap, ix->n + 1, sizeof(*ix->hashes)))
		return -ENOMEM;
	if ((ix->n + 1) * 2 > ix->slots.cap) {
		struct htab slots;

		if (htab_alloc(&slots, &item_ops, sizeof(uint32_t),
			       ix->slots.cap ? ix->slots.cap * 2 : 64))
			return -ENOMEM;
		for (uint32_t i = 0; i < ix->n; i++)
			*(uint32_t *)htab_place(&slots, ix->hashes[i]) = i + 1;
		htab_free(&ix->slots);
		ix->slots = slots;
	}
	ix->hashes[ix->n] = h;
	*(uint32_t *)htab_place(&ix->slots, h) = ix->n + 1;
	ix->n++;
	return 0;
}

void hindex_free(struct hindex *ix)
{
	htab_free(&ix->slots);
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
