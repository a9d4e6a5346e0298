/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The one hash function of the user-space tables (htab.h and its users). */
#ifndef DSTRACE_HASH_H
#define DSTRACE_HASH_H

#include <stdint.h>

/* A 64-bit mixer (splitmix64's finalizer) for the open-addressing tables in user space. */
static inline uint32_t dstrace_hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (uint32_t)x;
}

#endif /* DSTRACE_HASH_H */
