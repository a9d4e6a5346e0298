/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one hash table of user space: open addressing with linear probing over a fixed array of
 * slots (a power of two of them), slots stored inline, an all-zero slot being the empty one.
 * The caller hashes the key (dstrace_hash64 in hash.h) and says through htab_ops when a slot
 * is empty and when it holds a key; the table never grows by itself and keeps no count: each
 * caller keeps its own bound (at most half full) and counts what does not fit, then places
 * the entry in the slot htab_find gave. htab_rehash moves the entries to a table of another
 * size, for the tables that grow.
 */
#ifndef DSTRACE_HTAB_H
#define DSTRACE_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct htab_ops {
	bool (*empty)(const void *slot);
	/* slot (not empty) holds key */
	bool (*match)(const void *slot, const void *key);
	/* the hash of the entry in slot: only htab_rehash needs it */
	uint64_t (*hash)(const void *slot);
};

struct htab {
	void *slots; /* cap slots of esize bytes */
	uint32_t cap; /* a power of two, or 0 before htab_alloc */
	uint32_t esize;
	const struct htab_ops *ops;
};

/* The empty test of tables whose slots are a uint32_t, 0 being empty (sets of addresses,
 * indexes holding an item's index + 1). */
bool htab_u32_empty(const void *slot);
/* The smallest power of two at least n (and at least 1). */
uint32_t htab_pow2(uint32_t n);
/* cap (a power of two) empty slots of esize bytes; 0 or -ENOMEM (t is left empty). */
int htab_alloc(struct htab *t, const struct htab_ops *ops, uint32_t esize, uint32_t cap);
void htab_free(struct htab *t);
/* Every slot empty again. */
void htab_clear(struct htab *t);
/* The slot holding key (*found true), or the empty slot that ends its probe, where key goes
 * (*found false). The table must have an empty slot (callers keep it at most half full). */
void *htab_find(const struct htab *t, uint64_t hash, const void *key, bool *found);
/* The first empty slot of hash's probe: where an entry known not to be there goes. */
void *htab_place(const struct htab *t, uint64_t hash);
/* Slot i (0 <= i < cap), for walking the table in slot order. */
static inline void *htab_slot(const struct htab *t, uint32_t i)
{
	return (char *)t->slots + (size_t)i * t->esize;
}
/* Move the entries, in slot order, to a table of cap slots (ops->hash); 0 or -ENOMEM (t is
 * left as it was). */
int htab_rehash(struct htab *t, uint32_t cap);

#endif /* DSTRACE_HTAB_H */
