/* SPDX-License-Identifier: Apache-2.0 */
/* The family-generic forwarding (lib/family.h): compiled once per family by
 * lib/forward.h (lb4_route, lb6_route, ...), so no include guard. What
 * differs by family is the FIB call (lib/fib.h), the TTL / hop limit and
 * the rewrite (lib/nat.h). */

/* The FIB lookup for a packet the node forwards itself from saddr to daddr.
 * tc passes tot_len 0: the kernel then checks the skb against the egress
 * MTU itself and lets GSO skbs (TSO/GRO on veths), whose IP total length is
 * beyond the MTU until they are segmented, through. Returns FIB_READY,
 * FIB_NO_NEIGH or FIB_NONE (no route to forward by). */
static __always_inline int FN(lb, route)(struct __ctx_buff *ctx, const FAM_PKT *p,
					 struct bpf_fib_lookup *fib, FAM_ADDR saddr, FAM_ADDR daddr)
{
	int rc = FN(lb, fib)(ctx, fib, ctx_ingress_ifindex(ctx), saddr, daddr, p->proto,
			     CTX_IS_XDP ? p->tot_len : 0, 0);

	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return FIB_READY;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return FIB_NO_NEIGH;
	return FIB_NONE;
}

/* New source and destination of a source-NATed flow's packet. */
static __always_inline void FN(snat, tuple)(int action, const FAM_VERDICT *v, FAM_ADDR *saddr,
					    __be16 *sport, FAM_ADDR *daddr, __be16 *dport)
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

/* A source-NATed flow's packet: both ends rewritten, then forwarded by us
 * on a node NIC (on the pod side: a hairpin flow goes back into the pod,
 * anything else is routed by the stack: CTX_ACT_OK). XDP asks
 * the FIB before anything else, as a packet whose next hop has no neighbour
 * entry goes untouched to the stack (CTX_ACT_OK), where tc resolves it; tc
 * drops TTL 1 first. Returns a verdict or -DROP_*. */
static __always_inline int FN(lb, snat_forward)(struct __ctx_buff *ctx, const FAM_PKT *p,
						int action, const FAM_VERDICT *v,
						struct bpf_fib_lookup *fib, int mode)
{
	int fib_state = v->fib_state;
	FAM_ADDR saddr, daddr;
	__be16 sport, dport;
	int rc;

	FN(snat, tuple)(action, v, &saddr, &sport, &daddr, &dport);
	if (!CTX_IS_XDP && FN(ip, ttl)(ctx_data(ctx), ctx_data_end(ctx)) <= 1)
		return -DROP_TTL;
	if (mode != LB_MODE_POD && fib_state == FIB_NONE) {
		fib_state = FN(lb, route)(ctx, p, fib, saddr, daddr);
		if (CTX_IS_XDP && fib_state == FIB_NO_NEIGH)
			return CTX_ACT_OK; /* untouched: tc resolves the neighbour */
		if (fib_state == FIB_NONE)
			return -DROP_FIB;
	}
	if (CTX_IS_XDP && FN(ip, ttl)(ctx_data(ctx), ctx_data_end(ctx)) <= 1)
		return -DROP_TTL;
	rc = FN(nat, rewrite_both)(ctx, p, saddr, sport, daddr, dport);
	if (rc)
		return rc;
	if (mode == LB_MODE_POD)
		return (v->ct_flags & CT_F_HAIRPIN) ? lb_hairpin_bounce(ctx) : CTX_ACT_OK;
	rc = FN(ip, dec_ttl)(ctx_data(ctx), ctx_data_end(ctx));
	if (rc)
		return rc;
	return lb_xmit(ctx, fib, fib_state);
}

/* The reply of a node-facing flow without source NAT: a local backend's to
 * an external client (on the pod side), or a remote backend's to one of
 * this node's pods (on a node NIC, tc). Its new source may be this node's
 * own address (NodePort), which the stack drops as a martian, so it is
 * forwarded here: FIB, TTL - 1 (TTL 1 dropped), out.
 * Without a FIB answer the stack decides (CTX_ACT_OK, TTL untouched: the
 * stack decrements it when it forwards). Returns a verdict or -DROP_*. */
static __always_inline int FN(lb, forward_reply)(struct __ctx_buff *ctx, const FAM_PKT *p,
						 struct bpf_fib_lookup *fib, FAM_ADDR saddr)
{
	int fib_state, rc;

	if (FN(ip, ttl)(ctx_data(ctx), ctx_data_end(ctx)) <= 1)
		return -DROP_TTL;
	fib_state = FN(lb, route)(ctx, p, fib, saddr, p->daddr);
	if (fib_state == FIB_NONE || (CTX_IS_XDP && fib_state == FIB_NO_NEIGH))
		return CTX_ACT_OK;
	rc = FN(ip, dec_ttl)(ctx_data(ctx), ctx_data_end(ctx));
	if (rc)
		return rc;
	return lb_xmit(ctx, fib, fib_state);
}

/* XDP, cfg_local_redirect: after the DNAT of a node-facing flow whose
 * backend is on this node, send the frame straight into the backend's veth
 * (FIB lookup, TTL, MACs) instead of letting the stack route it there.
 * Anything the FIB does not answer plainly (no neighbour, the ingress NIC
 * itself, TTL 1) still goes to the stack, DNATed, as with the knob off.
 * Returns a redirect or CTX_ACT_OK. */
static __always_inline int FN(lb, local_redirect)(struct __ctx_buff *ctx, const FAM_PKT *p,
						  const FAM_VERDICT *v, struct bpf_fib_lookup *fib)
{
	void *data, *data_end;
	struct ethhdr *eth;

	if (FN(lb, route)(ctx, p, fib, p->saddr, v->addr) != FIB_READY ||
	    fib->ifindex == ctx_ingress_ifindex(ctx))
		return CTX_ACT_OK;
	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return CTX_ACT_OK;
	if (FN(ip, dec_ttl)(data, data_end)) /* TTL <= 1: the stack sends the ICMP */
		return CTX_ACT_OK;
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	return bpf_redirect(fib->ifindex, 0);
}
