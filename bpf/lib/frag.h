/* SPDX-License-Identifier: Apache-2.0 */
/* IP fragments of TCP/UDP datagrams to and from Services (issue 17; IPv6:
 * issue 16, the same scheme over frag6_v1 keyed by the fragment header's
 * 32-bit identification).
 * Only a datagram's first fragment (MF set, offset 0) carries the L4 header
 * and so the ports the decision needs. Every first fragment a program
 * parses records {saddr, daddr, IP id, proto} -> {sport, dport} in the LRU
 * frag_v1 (svc or not: a later fragment then tells "not a Service" from
 * "first never seen"); a later fragment (offset != 0) takes its ports from
 * there and goes through the same CT lookup, so every fragment of a datagram
 * gets the same translation, of its IP header only (its payload is the
 * datagram's L4 payload: never touched; the first fragment's L4 checksum
 * covers the whole datagram and the usual incremental update keeps it
 * right). A later fragment never creates a flow: no CT entry -> untouched
 * (lib/lb.h lb4_decide).
 * Order: a later fragment whose first was not recorded (it arrived before
 * it, went another way, or was evicted) is counted (CT_EV_FRAG_NO_FIRST)
 * and passed untouched, not dropped (Cilium drops): it may well belong to a
 * datagram that is no Service's (the node's own traffic crosses the NIC
 * hooks), which must keep working however its fragments are ordered; one of
 * a Service's datagram is lost either way (it reaches the VIP, not the
 * backend, and the backend's reassembly times out).
 * Entries are never deleted: the LRU ages them out; a reused IP id is
 * recorded over by its new first fragment. */
#ifndef SVCLB_BPF_FRAG_H
#define SVCLB_BPF_FRAG_H

#include "lib/ctx.h"
#include "lib/csum.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/stats.h"

#define SVCLB_FAM 4
#include "lib/family.h"
#include "lib/frag_fam.h"
#include "lib/family_end.h"

#define SVCLB_FAM 6
#include "lib/family.h"
#include "lib/frag_fam.h"
#include "lib/family_end.h"

/* A later fragment's translation: the IPv4 header's addresses and checksum,
 * nothing after it. The header's sum is invariant, so a direct write is
 * exact for every skb (CHECKSUM_COMPLETE included). Returns 0 or
 * -DROP_PULL. */
static __always_inline int frag4_rewrite_ip(struct __ctx_buff *ctx, __be32 new_saddr,
					    __be32 new_daddr)
{
	struct iphdr *ip = ctx_data(ctx) + ETH_HLEN;
	__u32 sum;

	if ((void *)(ip + 1) > ctx_data_end(ctx))
		return -DROP_PULL;
	sum = (__u16)~ip->check;
	sum = csum_add32(sum, ~ip->saddr);
	sum = csum_add32(sum, new_saddr);
	sum = csum_add32(sum, ~ip->daddr);
	sum = csum_add32(sum, new_daddr);
	ip->check = csum_fold32(sum);
	ip->saddr = new_saddr;
	ip->daddr = new_daddr;
	return 0;
}

/* A later IPv6 fragment's translation: its destination (dst != 0) or
 * source address, nothing after the IPv6 header. No IP checksum; the helper
 * carries the change into a CHECKSUM_COMPLETE skb's csum (the fragment's
 * sum does change: no L4 checksum in it balances the address). Invalidates
 * packet pointers. Returns 0 or -DROP_PULL. */
static __always_inline int frag6_rewrite_addr(struct __ctx_buff *ctx, int dst,
					      const struct v6addr *addr)
{
	__u32 off = ETH_HLEN +
		    (dst ? offsetof(struct ipv6hdr, daddr) : offsetof(struct ipv6hdr, saddr));

	return ctx_store_bytes(ctx, off, addr, sizeof(*addr), 1) ? -DROP_PULL : 0;
}

#endif
