/* SPDX-License-Identifier: Apache-2.0 */
/* After the rewrite: sending a translated packet on as the node forwards
 * (TTL, the FIB's next hop and MACs, out of the right interface), for tc
 * and XDP alike (lib/ctx.h). Hook differences are the egress helpers: XDP
 * sends a frame back out of its NIC with XDP_TX and to another node NIC
 * through the tx_ports_v1 devmap, and cannot resolve a neighbour; tc
 * redirects, and resolves a missing neighbour with bpf_redirect_neigh. */
#ifndef SVCLB_BPF_FORWARD_H
#define SVCLB_BPF_FORWARD_H

#include "lib/ctx.h"
#include "lib/csum.h"
#include "lib/fib.h"
#include "lib/lb.h"
#include "lib/nat.h"

/* The TTL of the IPv4 header at ETH_HLEN, or 0 if unreadable. */
static __always_inline __u8 ip4_ttl(void *data, void *data_end)
{
	struct iphdr *ip = data + ETH_HLEN;

	if ((void *)(ip + 1) > data_end)
		return 0;
	return ip->ttl;
}

/* Decrements the TTL of the IPv4 header at ETH_HLEN (the caller forwards the
 * packet itself). Returns 0, or -DROP_TTL when it was <= 1. */
static __always_inline int ip4_dec_ttl(void *data, void *data_end)
{
	struct iphdr *ip = data + ETH_HLEN;
	__u32 sum;

	if ((void *)(ip + 1) > data_end)
		return -DROP_PULL;
	if (ip->ttl <= 1)
		return -DROP_TTL;
	sum = (__u16)~ip->check;
	sum = csum_add32(sum, (__u16)~bpf_htons(0x0100)); /* ttl is the high byte */
	ip->ttl--;
	ip->check = csum_fold32(sum);
	return 0;
}

/* ip4_ttl for IPv6: the hop limit of the header at ETH_HLEN. */
static __always_inline __u8 ip6_ttl(void *data, void *data_end)
{
	struct ipv6hdr *ip6 = data + ETH_HLEN;

	if ((void *)(ip6 + 1) > data_end)
		return 0;
	return ip6->hop_limit;
}

/* ip4_dec_ttl for IPv6 (no header checksum). */
static __always_inline int ip6_dec_ttl(void *data, void *data_end)
{
	struct ipv6hdr *ip6 = data + ETH_HLEN;

	if ((void *)(ip6 + 1) > data_end)
		return -DROP_PULL;
	if (ip6->hop_limit <= 1)
		return -DROP_TTL;
	ip6->hop_limit--;
	return 0;
}

/* Sends the (translated, TTL already decremented) packet to the next hop
 * in `fib` (FIB_READY, or FIB_NO_NEIGH in tc): MACs, out. Returns a verdict
 * or -DROP_*. */
static __always_inline int lb_xmit(struct __ctx_buff *ctx, const struct bpf_fib_lookup *fib,
				   int fib_state)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	struct ethhdr *eth = data;

	if (!CTX_IS_XDP && fib_state == FIB_NO_NEIGH)
		return bpf_redirect_neigh(fib->ifindex, NULL, 0, 0);
	if ((void *)(eth + 1) > data_end)
		return -DROP_PULL;
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	if (CTX_IS_XDP) {
		if (fib->ifindex == ctx_ingress_ifindex(ctx))
			return XDP_TX;
		if (lb_via_node_nic(fib))
			return bpf_redirect_map(&tx_ports_v1, fib->ifindex, 0);
	}
	return bpf_redirect(fib->ifindex, 0);
}

/* A hairpin flow's packet (CT_F_HAIRPIN), translated: back out of the pod
 * interface it came in on, to the pod itself (MACs swapped). Returns the
 * redirect or -DROP_PULL. */
static __always_inline int lb_hairpin_bounce(struct __ctx_buff *ctx)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	struct ethhdr *eth = data;
	__u8 mac[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return -DROP_PULL;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	return ctx_bounce(ctx);
}

#define SVCLB_FAM 4
#include "lib/family.h"
#include "lib/forward_fam.h"
#include "lib/family_end.h"

#define SVCLB_FAM 6
#include "lib/family.h"
#include "lib/forward_fam.h"
#include "lib/family_end.h"

#endif
