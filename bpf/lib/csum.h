/* SPDX-License-Identifier: Apache-2.0 */
/* Incremental Internet checksum updates (RFC 1624) for direct packet writes.
 * One's complement sums are byte-order independent as long as both sides
 * are taken from memory the same way, so wire-order values are used as is. */
#ifndef SVCLB_BPF_CSUM_H
#define SVCLB_BPF_CSUM_H

#include "lib/common.h"

static __always_inline __u32 csum_add32(__u32 sum, __u32 v)
{
	sum += v;
	return sum + (sum < v); /* end-around carry */
}

/* Folds a 64-bit one's complement accumulator to 32 bits, without a
 * branch: BPF has no set-on-condition instruction, so csum_add32's carry
 * test is a branch, and a long run of them (an IPv6 rewrite changes up to
 * 16 address words) doubles what the verifier walks at each one. Sums of
 * many words are accumulated in 64 bits and folded once instead. */
static __always_inline __u32 csum_fold64(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	return (__u32)s;
}

static __always_inline __sum16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__sum16)~sum;
}

/* Returns the checksum after a 32-bit field changed from `from` to `to`. */
static __always_inline __sum16 csum_replace4(__sum16 check, __be32 from, __be32 to)
{
	__u32 sum = (__u16)~check;

	sum = csum_add32(sum, ~from);
	sum = csum_add32(sum, to);
	return csum_fold32(sum);
}

/* Returns the checksum after a 16-bit field changed from `from` to `to`. */
static __always_inline __sum16 csum_replace2(__sum16 check, __be16 from, __be16 to)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~from;
	sum += to;
	return csum_fold32(sum);
}

#endif
