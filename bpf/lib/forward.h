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

/* Sends the (translated, TTL already decremented) packet to the next hop
 * in `fib` (FIB_READY, or FIB_NO_NEIGH in tc): MACs, out. Returns a verdict
 * or -DROP_*. */
static __always_inline int lb4_xmit(struct __ctx_buff *ctx, const struct bpf_fib_lookup *fib,
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
		if (lb4_via_node_nic(fib))
			return bpf_redirect_map(&tx_ports_v1, fib->ifindex, 0);
	}
	return bpf_redirect(fib->ifindex, 0);
}

/* The FIB lookup for a packet the node forwards itself from saddr to daddr.
 * tc passes tot_len 0: the kernel then checks the skb against the egress
 * MTU itself and lets GSO skbs (TSO/GRO on veths), whose IP total length is
 * beyond the MTU until they are segmented, through. Returns FIB_READY,
 * FIB_NO_NEIGH or FIB_NONE (no route to forward by). */
static __always_inline int lb4_route(struct __ctx_buff *ctx, const struct pkt4 *p,
				     struct bpf_fib_lookup *fib, __be32 saddr, __be32 daddr)
{
	int rc = lb4_fib(ctx, fib, ctx_ingress_ifindex(ctx), saddr, daddr, p->proto,
			 CTX_IS_XDP ? p->tot_len : 0, 0);

	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return FIB_READY;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return FIB_NO_NEIGH;
	return FIB_NONE;
}

/* New source and destination of a source-NATed flow's packet. */
static __always_inline void snat_tuple(int action, const struct lb_verdict *v, __be32 *saddr,
				       __be16 *sport, __be32 *daddr, __be16 *dport)
{
	if (action == LB_DNAT) {
		*saddr = v->snat_addr; /* this node */
		*sport = v->snat_port;
		*daddr = v->addr; /* the backend */
		*dport = v->port;
	} else {
		*saddr = v->addr; /* the frontend */
		*sport = v->port;
		*daddr = v->snat_addr; /* the client */
		*dport = v->snat_port;
	}
}

/* A hairpin flow's packet (CT_F_HAIRPIN), translated: back out of the pod
 * interface it came in on, to the pod itself (MACs swapped). Returns the
 * redirect or -DROP_PULL. */
static __always_inline int lb4_hairpin_bounce(struct __ctx_buff *ctx)
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

/* A source-NATed flow's packet: both ends rewritten, then forwarded by us
 * on a node NIC (on the pod side: a hairpin flow goes back into the pod,
 * anything else is routed by the stack: CTX_ACT_OK). XDP asks
 * the FIB before anything else, as a packet whose next hop has no neighbour
 * entry goes untouched to the stack (CTX_ACT_OK), where tc resolves it; tc
 * drops TTL 1 first. Returns a verdict or -DROP_*. */
static __always_inline int lb4_snat_forward(struct __ctx_buff *ctx, const struct pkt4 *p,
					    int action, const struct lb_verdict *v,
					    struct bpf_fib_lookup *fib, int mode)
{
	int fib_state = v->fib_state;
	__be32 saddr, daddr;
	__be16 sport, dport;
	int rc;

	snat_tuple(action, v, &saddr, &sport, &daddr, &dport);
	if (!CTX_IS_XDP && ip4_ttl(ctx_data(ctx), ctx_data_end(ctx)) <= 1)
		return -DROP_TTL;
	if (mode != LB_MODE_POD && fib_state == FIB_NONE) {
		fib_state = lb4_route(ctx, p, fib, saddr, daddr);
		if (CTX_IS_XDP && fib_state == FIB_NO_NEIGH)
			return CTX_ACT_OK; /* untouched: tc resolves the neighbour */
		if (fib_state == FIB_NONE)
			return -DROP_FIB;
	}
	if (CTX_IS_XDP && ip4_ttl(ctx_data(ctx), ctx_data_end(ctx)) <= 1)
		return -DROP_TTL;
	rc = nat4_rewrite_both(ctx, p, saddr, sport, daddr, dport);
	if (rc)
		return rc;
	if (mode == LB_MODE_POD)
		return (v->ct_flags & CT_F_HAIRPIN) ? lb4_hairpin_bounce(ctx) : CTX_ACT_OK;
	rc = ip4_dec_ttl(ctx_data(ctx), ctx_data_end(ctx));
	if (rc)
		return rc;
	return lb4_xmit(ctx, fib, fib_state);
}

/* A local backend's reply to an external client, on the pod side: its new
 * source may be this node's own address (NodePort), which the stack drops as
 * a martian, so it is forwarded here: FIB, TTL - 1 (TTL 1 dropped), out.
 * Without a FIB answer the stack decides (CTX_ACT_OK, TTL untouched: the
 * stack decrements it when it forwards). Returns a verdict or -DROP_*. */
static __always_inline int lb4_forward_reply(struct __ctx_buff *ctx, const struct pkt4 *p,
					     struct bpf_fib_lookup *fib, __be32 saddr)
{
	int fib_state, rc;

	if (ip4_ttl(ctx_data(ctx), ctx_data_end(ctx)) <= 1)
		return -DROP_TTL;
	fib_state = lb4_route(ctx, p, fib, saddr, p->daddr);
	if (fib_state == FIB_NONE || (CTX_IS_XDP && fib_state == FIB_NO_NEIGH))
		return CTX_ACT_OK;
	rc = ip4_dec_ttl(ctx_data(ctx), ctx_data_end(ctx));
	if (rc)
		return rc;
	return lb4_xmit(ctx, fib, fib_state);
}

/* XDP, cfg_local_redirect: after the DNAT of a node-facing flow whose
 * backend is on this node, send the frame straight into the backend's veth
 * (FIB lookup, TTL, MACs) instead of letting the stack route it there.
 * Anything the FIB does not answer plainly (no neighbour, the ingress NIC
 * itself, TTL 1) still goes to the stack, DNATed, as with the knob off.
 * Returns a redirect or CTX_ACT_OK. */
static __always_inline int lb4_local_redirect(struct __ctx_buff *ctx, const struct pkt4 *p,
					      const struct lb_verdict *v,
					      struct bpf_fib_lookup *fib)
{
	void *data, *data_end;
	struct ethhdr *eth;

	if (lb4_route(ctx, p, fib, p->saddr, v->addr) != FIB_READY ||
	    fib->ifindex == ctx_ingress_ifindex(ctx))
		return CTX_ACT_OK;
	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return CTX_ACT_OK;
	if (ip4_dec_ttl(data, data_end)) /* TTL <= 1: the stack sends the ICMP */
		return CTX_ACT_OK;
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	return bpf_redirect(fib->ifindex, 0);
}

#endif
