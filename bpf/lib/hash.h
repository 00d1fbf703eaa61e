/* SPDX-License-Identifier: Apache-2.0 */
/* Flow hashing for Maglev. Bob Jenkins' lookup3 final mix over three words,
 * with a fixed initval: every node computes the same hash for a flow, so
 * with identical tables every node picks the same backend even without CT
 * state. Changing this function is a cross-node compatibility break. */
#ifndef SVCLB_BPF_HASH_H
#define SVCLB_BPF_HASH_H

#include "lib/common.h"

#define SVCLB_HASH_INITVAL 0x5c1b5c1bU

static __always_inline __u32 rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

static __always_inline __u32 hash_3words(__u32 a, __u32 b, __u32 c)
{
	a += SVCLB_HASH_INITVAL + (3 << 2);
	b += SVCLB_HASH_INITVAL + (3 << 2);
	c += SVCLB_HASH_INITVAL + (3 << 2);
	/* jhash's final mix, one step a line */
	/* clang-format off */
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	/* clang-format on */
	return c;
}

#endif
