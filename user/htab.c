// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The one open-addressing hash table of user space (htab.h): probing, clearing and moving to
 * another size; what a slot holds, the bounds and what overflows are the callers'.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "htab.h"

bool htab_u32_empty(const void *slot)
{
	return !*(const uint32_t *)slot;
}

uint32_t htab_pow2(uint32_t n)
{
	uint32_t cap = 1;

	while (cap < n)
		cap <<= 1;
	return cap;
}

int htab_alloc(struct htab *t, const struct htab_ops *ops, uint32_t esize, uint32_t cap)
{
	t->slots = calloc(cap, esize);
	t->cap = t->slots ? cap : 0;
	t->esize = esize;
	t->ops = ops;
	return t->slots ? 0 : -ENOMEM;
}

void htab_free(struct htab *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = 0;
}

void htab_clear(struct htab *t)
{
	if (t->slots)
		memset(t->slots, 0, (size_t)t->cap * t->esize);
}

void *htab_find(const struct htab *t, uint64_t hash, const void *key, bool *found)
{
	uint32_t mask = t->cap - 1;

	for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
		void *slot = htab_slot(t, i);

		if (t->ops->empty(slot)) {
			*found = false;
			return slot;
		}
		if (t->ops->match(slot, key)) {
			*found = true;
			return slot;
		}
	}
}

void *htab_place(const struct htab *t, uint64_t hash)
{
	uint32_t mask = t->cap - 1;
	uint32_t i = hash & mask;

	while (!t->ops->empty(htab_slot(t, i)))
		i = (i + 1) & mask;
	return htab_slot(t, i);
}

int htab_rehash(struct htab *t, uint32_t cap)
{
	struct htab to;

	if (htab_alloc(&to, t->ops, t->esize, cap))
		return -ENOMEM;
	for (uint32_t i = 0; i < t->cap; i++) {
		const void *slot = htab_slot(t, i);

		if (!t->ops->empty(slot))
			memcpy(htab_place(&to, t->ops->hash(slot)), slot, t->esize);
	}
	free(t->slots);
	*t = to;
	return 0;
}
