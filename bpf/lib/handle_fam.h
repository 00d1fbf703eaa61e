/* SPDX-License-Identifier: Apache-2.0 */
/* The family-generic packet handling (lib/family.h): compiled once per
 * family by lib/handle.h (lb4_handle, lb6_handle), so no include guard.
 * FAM_MON_PACKET names the family's svcctl monitor report. */

/* After the decision (LB_DNAT / LB_RNAT in `action`, *v filled, *fib as
 * the decision left it): the rewrite, the forwarding we do ourselves
 * (source-NATed flows, replies to external clients on the pod side, the
 * local-redirect knob) and the counters. Returns a verdict or -DROP_*. */
static __always_inline int FN(lb, apply_inline)(struct __ctx_buff *ctx, const FAM_PKT *p,
						const FAM_VERDICT *v, struct bpf_fib_lookup *fib,
						int action, int mode)
{
	int ret;

	if (v->ct_flags & CT_F_SNAT) {
		ret = FN(lb, snat_forward)(ctx, p, action, v, fib, mode);
		if (CTX_IS_XDP && ret == CTX_ACT_OK)
			return ret; /* untouched: the tc slow path takes it */
	} else {
		/* An answer to a node-facing flow that is not source-NATed,
		 * arriving on a node NIC: a flow one of this node's pods opened
		 * to an address of this node (a NodePort, externalTrafficPolicy
		 * Local's node view) whose backend is elsewhere. Its restored
		 * source may be this node's own address, a martian to the
		 * stack: tc forwards it (lb_forward_reply); XDP leaves it
		 * untouched to tc, as a redirect into a pod's veth needs NAPI
		 * on its peer. */
		if (CTX_IS_XDP && action == LB_RNAT && (v->ct_flags & CT_F_EXTERNAL))
			return CTX_ACT_OK;
		ret = FN(nat, rewrite)(ctx, p, action == LB_DNAT, v->addr, v->port);
		if (ret == 0)
			ret = CTX_ACT_OK;
		if (ret == CTX_ACT_OK && action == LB_RNAT && (v->ct_flags & CT_F_EXTERNAL))
			ret = FN(lb, forward_reply)(ctx, p, fib, v->addr);
		if (CTX_IS_XDP && ret == CTX_ACT_OK && action == LB_DNAT && cfg_local_redirect &&
		    (v->ct_flags & CT_F_EXTERNAL))
			ret = FN(lb, local_redirect)(ctx, p, v, fib);
	}
	if (ret >= 0)
		lb_account(action, v->backend_id, v->new_flow, p->tot_len);
	return ret;
}

#if SVCLB_FAM == 4
#define FAM_DECIDE(ctx, p, v, fib, mode)	lb4_decide(p, v, ctx, mode, ctx_ingress_ifindex(ctx), fib)
#define FAM_APPLY(ctx, p, v, fib, action, mode) lb4_apply_inline(ctx, p, v, fib, action, mode)
#define FAM_REJECT(ctx, p)			lb4_reject(ctx, p)
#else
/* IPv6: the decision and what follows it are global functions, which the
 * verifier checks once each on their own (any packet, verdict and route)
 * instead of once per path through both, and whose stack frames are
 * siblings: inlined, the IPv6 NIC programs went past the verifier's million
 * instructions and its 512-byte stack. One of each per hook (CTX_GLOBAL:
 * lb6_decide_skb, lb6_decide_xdp, ...). */
__noinline int CTX_GLOBAL(lb6_decide)(struct __ctx_buff *ctx, const struct pkt6 *p,
				      struct lb6_verdict *v, struct bpf_fib_lookup *fib, int mode)
{
	if (!ctx || !p || !v || !fib)
		return -DROP_PULL;
	/* XDP runs on node NICs only. A test, not `mode = ...`: an argument
	 * the callee overwrites is dead, and clang then leaves its register
	 * unset at the call, which the verifier refuses for a global function
	 * ("R5 is not a scalar"). */
	if (CTX_IS_XDP && mode != LB_MODE_XDP_EXT)
		return -DROP_PULL;
	return lb6_decide(p, v, ctx, mode, ctx_ingress_ifindex(ctx), fib);
}
#define FAM_DECIDE(ctx, p, v, fib, mode) CTX_GLOBAL(lb6_decide)(ctx, p, v, fib, mode)

__noinline int CTX_GLOBAL(lb6_reject_g)(struct __ctx_buff *ctx, const struct pkt6 *p)
{
	if (!ctx || !p)
		return -DROP_REJECT_FAILED;
	return lb6_reject(ctx, p);
}
#define FAM_REJECT(ctx, p)		 CTX_GLOBAL(lb6_reject_g)(ctx, p)

__noinline int CTX_GLOBAL(lb6_apply)(struct __ctx_buff *ctx, const struct pkt6 *p,
				     const struct lb6_verdict *v, struct bpf_fib_lookup *fib,
				     int action_mode)
{
	/* XDP runs on node NICs only: a constant mode spares the verifier
	 * the pod paths. */
	int mode = CTX_IS_XDP ? LB_MODE_XDP_EXT : action_mode >> 8;

	if (!ctx || !p || !v || !fib)
		return -DROP_PULL;
	return lb6_apply_inline(ctx, p, v, fib, action_mode & 0xff, mode);
}
#define FAM_APPLY(ctx, p, v, fib, action, mode)                                                    \
	CTX_GLOBAL(lb6_apply)(ctx, p, v, fib, (action) | (mode) << 8)
#endif

/* Translates one parsed packet (ctx_parse4, ctx_parse6) arriving on a pod-facing
 * interface (LB_MODE_POD, tc) or a node NIC (LB_MODE_XDP_EXT,
 * LB_MODE_TC_EXT). Returns a verdict (CTX_ACT_UNTOUCHED for a packet we do
 * not handle) or -DROP_*; *v (zeroed by the caller) holds the
 * decision, its svc_id the Service for lb_exit; *fib is scratch space for
 * the route lookups. */
static __always_inline int FN(lb, handle)(struct __ctx_buff *ctx, const FAM_PKT *p, int mode,
					  FAM_VERDICT *v, struct bpf_fib_lookup *fib)
{
	int action, ret;

	action = FAM_DECIDE(ctx, p, v, fib, mode);
	if (action == LB_PASS)
		return CTX_ACT_UNTOUCHED;
	if (action == -DROP_NO_BACKEND) {
		ret = FAM_REJECT(ctx, p);
		if (ret >= 0) {
			stats_reject(&svc_stats_v2, v->svc_id);
			if (mon_on())
				FAM_MON_PACKET(MON_EV_REJECT, DROP_NO_BACKEND, p, v->svc_id,
					       ctx_ingress_ifindex(ctx), (__u32)mode);
		}
		return ret;
	}
	if (action < 0)
		return action;

	return FAM_APPLY(ctx, p, v, fib, action, mode);
}

#undef FAM_APPLY
#undef FAM_DECIDE
#undef FAM_REJECT
