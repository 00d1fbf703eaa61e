/* SPDX-License-Identifier: Apache-2.0 */
/* ICMP errors quoting a translated flow's packet (issue 17): "destination
 * unreachable" (port/host unreachable, fragmentation needed: PMTU discovery)
 * and "time exceeded" are translated back like the flow itself, so the
 * sender of the quoted packet recognises it (the kernel's
 * nf_nat_icmp_reply_translation, for svclb's CT). The quoted packet is one
 * direction of the flow as it was on the wire after translation; its
 * reversed tuple is the CT entry of the ICMP's own direction:
 *  - REPLY entry (the quote is client -> backend, or node:snat -> backend):
 *    the error travels to the client. The quote's destination becomes the
 *    frontend again (and with SNAT its source the client, as does the outer
 *    destination); an error the backend sent itself comes from the frontend.
 *    A single-entry flow (CT_F_SINGLE) has no REPLY entry: the same error
 *    finds its FORWARD entry through be_rev_v1 (ct_icmp_lookup).
 *  - FORWARD entry (the quote is frontend -> client): the error travels to
 *    the backend. The quote's source becomes the backend (with SNAT its
 *    destination the node's address:port, the outer source the node); an
 *    error sent to the frontend address goes to the backend.
 * Every changed field updates the outer IP, inner IP, inner L4 (when
 * quoted; a UDP checksum of 0 stays 0) and ICMP checksums, all by direct
 * writes: an ICMP checksum has no pseudo-header, so a valid message keeps
 * its one's complement sum and a CHECKSUM_COMPLETE skb's csum stays right.
 * Only IHL-5 outer and quoted headers are handled; anything else, and every
 * ICMP message that is not an error for a live flow, passes untouched. An
 * ICMP error never creates or refreshes CT state. */
#ifndef SVCLB_BPF_ICMP_H
#define SVCLB_BPF_ICMP_H

#include "lib/ctx.h"
#include "lib/csum.h"
#include "lib/ct.h"
#include "lib/forward.h"
#include "lib/handle.h"
#include "lib/stats.h"

#define ICMP4_OFF      (ETH_HLEN + 20)	     /* the ICMP header (outer IHL 5) */
#define ICMP4_INNER    (ICMP4_OFF + 8)	     /* the quoted IP header */
#define ICMP4_INNER_L4 (ICMP4_INNER + 20)    /* the quoted L4 header (IHL 5) */
#define ICMP4_PULL     (ICMP4_INNER_L4 + 18) /* up to a quoted TCP checksum */
#define ICMP4_NOT_OURS (-0x7fff)	     /* not an error of a translated flow */

#ifndef ICMP_DEST_UNREACH
#define ICMP_DEST_UNREACH 3
#endif
#ifndef ICMP_TIME_EXCEEDED
#define ICMP_TIME_EXCEEDED 11
#endif

/* Rewrites the 32-bit field at `f` to `to`, carrying the change into up to
 * three checksums (NULL: none). */
static __always_inline void icmp4_set32(__be32 *f, __be32 to, __sum16 *c1, __sum16 *c2, __sum16 *c3)
{
	__be32 from = *f;

	if (from == to)
		return;
	if (c1)
		*c1 = csum_replace4(*c1, from, to);
	if (c2)
		*c2 = csum_replace4(*c2, from, to);
	if (c3)
		*c3 = csum_replace4(*c3, from, to);
	*f = to;
}

static __always_inline void icmp4_set16(__be16 *f, __be16 to, __sum16 *c1, __sum16 *c2)
{
	__be16 from = *f;

	if (from == to)
		return;
	if (c1)
		*c1 = csum_replace2(*c1, from, to);
	if (c2)
		*c2 = csum_replace2(*c2, from, to);
	*f = to;
}

/* Translates an ICMP error arriving on a pod interface (LB_MODE_POD) or a
 * node NIC (XDP, tc). Returns a verdict, -DROP_*, or ICMP4_NOT_OURS (the
 * caller goes on as for any packet it does not handle). */
static __always_inline int icmp4_handle(struct __ctx_buff *ctx, int mode)
{
	__u32 len = ctx_full_len(ctx), pull;
	__be32 o_saddr, o_daddr, i_saddr, i_daddr;
	__be16 i_sport, i_dport;
	struct bpf_fib_lookup fib;
	struct ct_key ck = {};
	struct ct_value *ct = NULL;
	struct iphdr *ip, *in;
	struct icmphdr *ic;
	__sum16 *l4c = NULL, *ipc_inner, *icc;
	__be16 *ports;
	void *data, *data_end;
	int fib_state = FIB_NONE, snat, reply, single, rc;
	__be32 nat_addr;
	__be16 nat_port;
	__u32 now;

	if (len < ICMP4_INNER_L4 + 8)
		return ICMP4_NOT_OURS;
	pull = len < ICMP4_PULL ? len : ICMP4_PULL;
	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	if (data + pull > data_end) {
		if (ctx_pull(ctx, pull))
			return ICMP4_NOT_OURS;
		data = ctx_data(ctx);
		data_end = ctx_data_end(ctx);
	}
	if (data + ICMP4_INNER_L4 + 8 > data_end)
		return ICMP4_NOT_OURS;
	if (((struct ethhdr *)data)->h_proto != bpf_htons(ETH_P_IP))
		return ICMP4_NOT_OURS;
	ip = data + ETH_HLEN;
	if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_ICMP ||
	    (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return ICMP4_NOT_OURS;
	ic = data + ICMP4_OFF;
	if (ic->type != ICMP_DEST_UNREACH && ic->type != ICMP_TIME_EXCEEDED)
		return ICMP4_NOT_OURS;
	in = data + ICMP4_INNER;
	if (in->version != 4 || in->ihl != 5 ||
	    (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP) ||
	    (in->frag_off & bpf_htons(IP_OFFSET)))
		return ICMP4_NOT_OURS;
	ports = data + ICMP4_INNER_L4;

	/* The reversed quote is the key of the ICMP's own direction. */
	ck.saddr = in->daddr;
	ck.daddr = in->saddr;
	ck.sport = ports[1];
	ck.dport = ports[0];
	ck.proto = in->protocol;
	now = ct_now();
	ct = ct4_icmp_lookup(&ck, now, &single);
	if (!ct)
		return ICMP4_NOT_OURS;
	/* A single-entry flow's error toward the client: its frontend is the
	 * key's destination (what a REPLY entry's nat_* would say). */
	nat_addr = single ? ck.daddr : ct->nat_addr;
	nat_port = single ? ck.dport : ct->nat_port;

	reply = single || ct->dir == CT_DIR_REPLY;
	snat = ct->flags & CT_F_SNAT;
	o_saddr = ip->saddr;
	o_daddr = ip->daddr;
	i_saddr = in->saddr;
	i_daddr = in->daddr;
	i_sport = ports[0];
	i_dport = ports[1];
	if (reply) {
		/* The error goes to the client: the quote as the client sent it. */
		if (o_saddr == i_daddr)
			o_saddr = nat_addr; /* the backend itself answered */
		i_daddr = nat_addr;
		i_dport = nat_port;
		if (snat) {
			i_saddr = ct->snat_addr;
			i_sport = ct->snat_port;
			o_daddr = ct->snat_addr;
		}
	} else {
		/* The error goes to the backend: the quote as the backend sent it. */
		if (o_daddr == i_saddr)
			o_daddr = ct->nat_addr;
		i_saddr = ct->nat_addr;
		i_sport = ct->nat_port;
		if (snat) {
			i_daddr = ct->snat_addr;
			i_dport = ct->snat_port;
			o_saddr = ct->snat_addr;
		}
	}

	/* A node NIC forwards a source-NATed flow's error itself (as the
	 * flow's packets); XDP leaves one without a neighbour entry to tc. */
	if (mode != LB_MODE_POD && snat) {
		if (!CTX_IS_XDP && ip->ttl <= 1)
			return -DROP_TTL;
		rc = lb4_fib(ctx, &fib, ctx_ingress_ifindex(ctx), o_saddr, o_daddr, IPPROTO_ICMP,
			     CTX_IS_XDP ? (__u16)(len - ETH_HLEN) : 0, 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			fib_state = FIB_READY;
		else if (rc == BPF_FIB_LKUP_RET_NO_NEIGH && !CTX_IS_XDP)
			fib_state = FIB_NO_NEIGH;
		else if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
			return CTX_ACT_OK; /* untouched: tc resolves the neighbour */
		else
			return -DROP_FIB;
	}

	/* Re-derive the pointers: the FIB helper call invalidated none, but
	 * the verifier wants them checked after every helper that may. */
	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	if (data + ICMP4_INNER_L4 + 8 > data_end)
		return -DROP_PULL;
	ip = data + ETH_HLEN;
	ic = data + ICMP4_OFF;
	in = data + ICMP4_INNER;
	ports = data + ICMP4_INNER_L4;
	icc = &ic->checksum;
	ipc_inner = &in->check;
	if (in->protocol == IPPROTO_UDP) {
		l4c = data + ICMP4_INNER_L4 + 6;
		if (*l4c == 0)
			l4c = NULL; /* no checksum: stays 0 */
	} else if (data + ICMP4_INNER_L4 + 18 <= data_end &&
		   bpf_ntohs(ip->tot_len) >= ICMP4_INNER_L4 + 18 - ETH_HLEN) {
		l4c = data + ICMP4_INNER_L4 + 16;
	}

	/* The quote first: its own checksums change, and with them the ICMP
	 * checksum (every byte of the quote is in it). */
	{
		__sum16 old_ipc = *ipc_inner, old_l4c = l4c ? *l4c : 0;

		icmp4_set32(&in->saddr, i_saddr, ipc_inner, l4c, icc);
		icmp4_set32(&in->daddr, i_daddr, ipc_inner, l4c, icc);
		icmp4_set16(&ports[0], i_sport, l4c, icc);
		icmp4_set16(&ports[1], i_dport, l4c, icc);
		*icc = csum_replace2(*icc, old_ipc, *ipc_inner);
		if (l4c)
			*icc = csum_replace2(*icc, old_l4c, *l4c);
	}
	icmp4_set32(&ip->saddr, o_saddr, &ip->check, NULL, NULL);
	icmp4_set32(&ip->daddr, o_daddr, &ip->check, NULL, NULL);
	count_ct_event(CT_EV_ICMP_ERROR);

	if (mode != LB_MODE_POD && snat) {
		rc = ip4_dec_ttl(data, data_end);
		if (rc)
			return rc;
		return lb_xmit(ctx, &fib, fib_state);
	}
	/* A pod's error toward an external client may now come from a node
	 * address (the frontend): forwarded here, as the flow's replies. */
	if (mode == LB_MODE_POD && reply && (ct->flags & CT_F_EXTERNAL)) {
		struct pkt4 p = {
			.daddr = o_daddr,
			.proto = IPPROTO_ICMP,
			.tot_len = (__u16)(len - ETH_HLEN),
		};

		return lb4_forward_reply(ctx, &p, &fib, o_saddr);
	}
	return CTX_ACT_OK;
}

/* The exit of a packet that is not TCP/UDP for the parser: an ICMP error's
 * verdict (lb_exit), or untouched. */
static __always_inline int icmp4_exit(struct __ctx_buff *ctx, int ret, __u32 len,
				      const struct pkt4 *p, const struct lb_verdict *v, int mode)
{
	return ret == ICMP4_NOT_OURS ? ctx_verdict(CTX_ACT_UNTOUCHED)
				     : lb_exit(ctx, ret, len, p, v, mode);
}

/* ---- ICMPv6 errors (issue 16) -------------------------------------------
 * The same translation for IPv6 flows: destination unreachable (1), packet
 * too big (2: PMTU discovery, which IPv6 depends on as no router
 * fragments) and time exceeded (3). The ICMPv6 checksum covers a
 * pseudo-header with the outer addresses, so every change (outer address,
 * quoted address, port, quoted L4 checksum) is carried into it; the
 * packet's one's complement sum is unchanged (what the outer header gains
 * the checksum field loses), so a CHECKSUM_COMPLETE skb stays right. Only
 * an outer and a quoted header without extension headers are handled;
 * anything else passes untouched. Never creates or refreshes CT state. */
#define ICMP6_OFF      (ETH_HLEN + 40)	     /* the ICMPv6 header */
#define ICMP6_INNER    (ICMP6_OFF + 8)	     /* the quoted IPv6 header */
#define ICMP6_INNER_L4 (ICMP6_INNER + 40)    /* the quoted L4 header */
#define ICMP6_PULL     (ICMP6_INNER_L4 + 18) /* up to a quoted TCP checksum */

#define ICMPV6_PKT_TOOBIG  2
#define ICMPV6_TIME_EXCEED 3

/* The address at `f` becomes `to`; the change goes into up to two
 * checksums (NULL: none). */
static __always_inline void icmp6_set_addr(struct v6addr *f, struct v6addr to, __sum16 *c1,
					   __sum16 *c2)
{
	struct v6addr from = *f;

	if (v6_equal(&from, &to))
		return;
	if (c1)
		*c1 = csum_fold32(csum_add_v6_change((__u16) ~*c1, &from, &to));
	if (c2)
		*c2 = csum_fold32(csum_add_v6_change((__u16) ~*c2, &from, &to));
	*f = to;
}

/* icmp4_handle for IPv6: on a pod interface (ingress, or the pod egress
 * program for the node's own errors) or a node NIC (XDP, tc), where an
 * error about a source-NATed flow (e.g. a packet too big from a router
 * between the node and a NodePort client) is translated back and forwarded
 * by us, as the flow's packets are. Returns a verdict, -DROP_*, or
 * ICMP4_NOT_OURS. A global function (verified on its own; its stack frame
 * is not the IPv6 entry program's): one per hook, CTX_GLOBAL. */
__noinline int CTX_GLOBAL(icmp6_handle)(struct __ctx_buff *ctx, int mode)
{
	__u32 len = ctx_full_len(ctx), pull;
	struct v6addr o_saddr, o_daddr, i_saddr, i_daddr;
	__be16 i_sport, i_dport;
	struct lb6_scratch *s;
	struct ct6_key ck = {};
	struct ct6_value *ct = NULL;
	struct ipv6hdr *ip6, *in;
	struct icmp6hdr_min *ic;
	__sum16 *l4c = NULL, *icc;
	__be16 *ports;
	void *data, *data_end;
	int fib_state = FIB_NONE, snat, reply, single, rc;
	__u32 now;

	if (len < ICMP6_INNER_L4 + 8)
		return ICMP4_NOT_OURS;
	pull = len < ICMP6_PULL ? len : ICMP6_PULL;
	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	if (data + pull > data_end) {
		if (ctx_pull(ctx, pull))
			return ICMP4_NOT_OURS;
		data = ctx_data(ctx);
		data_end = ctx_data_end(ctx);
	}
	if (data + ICMP6_INNER_L4 + 8 > data_end)
		return ICMP4_NOT_OURS;
	if (((struct ethhdr *)data)->h_proto != bpf_htons(ETH_P_IPV6))
		return ICMP4_NOT_OURS;
	ip6 = data + ETH_HLEN;
	if (ip6->version != 6 || ip6->nexthdr != IPPROTO_ICMPV6)
		return ICMP4_NOT_OURS;
	ic = data + ICMP6_OFF;
	if (ic->type != ICMPV6_DEST_UNREACH && ic->type != ICMPV6_PKT_TOOBIG &&
	    ic->type != ICMPV6_TIME_EXCEED)
		return ICMP4_NOT_OURS;
	in = data + ICMP6_INNER;
	if (in->version != 6 || (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP))
		return ICMP4_NOT_OURS;
	ports = data + ICMP6_INNER_L4;

	/* The reversed quote is the key of the ICMP's own direction. */
	__builtin_memcpy(&ck.saddr, &in->daddr, sizeof(ck.saddr));
	__builtin_memcpy(&ck.daddr, &in->saddr, sizeof(ck.daddr));
	ck.sport = ports[1];
	ck.dport = ports[0];
	ck.proto = in->nexthdr;
	now = ct_now();
	ct = ct6_icmp_lookup(&ck, now, &single);
	if (!ct)
		return ICMP4_NOT_OURS;

	/* What the outer and quoted headers become (icmp4_handle's rules;
	 * a single-entry flow's frontend is the key's destination). */
	reply = single || ct->dir == CT_DIR_REPLY;
	snat = ct->flags & CT_F_SNAT;
	__builtin_memcpy(&o_saddr, &ip6->saddr, sizeof(o_saddr));
	__builtin_memcpy(&o_daddr, &ip6->daddr, sizeof(o_daddr));
	__builtin_memcpy(&i_saddr, &in->saddr, sizeof(i_saddr));
	__builtin_memcpy(&i_daddr, &in->daddr, sizeof(i_daddr));
	i_sport = ports[0];
	i_dport = ports[1];
	if (reply) {
		struct v6addr nat_addr = single ? ck.daddr : ct->nat_addr;

		if (v6_equal(&o_saddr, &i_daddr))
			o_saddr = nat_addr; /* the backend itself answered */
		i_daddr = nat_addr;
		i_dport = single ? ck.dport : ct->nat_port;
		if (snat) {
			i_saddr = ct->snat_addr;
			i_sport = ct->snat_port;
			o_daddr = ct->snat_addr;
		}
	} else {
		if (v6_equal(&o_daddr, &i_saddr))
			o_daddr = ct->nat_addr; /* sent to the frontend */
		i_saddr = ct->nat_addr;
		i_sport = ct->nat_port;
		if (snat) {
			i_daddr = ct->snat_addr;
			i_dport = ct->snat_port;
			o_saddr = ct->snat_addr;
		}
	}

	/* The route and the pseudo-packet below live in the IPv6 scratch
	 * (lib/handle.h; unused by the caller once its parse failed): on the
	 * stack they would not fit beside the pod egress program's frame. */
	s = lb6_scratch();
	if (!s)
		return ICMP4_NOT_OURS;

	/* A node NIC forwards a source-NATed flow's error itself; XDP leaves
	 * one without a neighbour entry to tc. */
	if (mode != LB_MODE_POD && snat) {
		if (!CTX_IS_XDP && ip6->hop_limit <= 1)
			return -DROP_TTL;
		rc = lb6_fib(ctx, &s->fib, ctx_ingress_ifindex(ctx), o_saddr, o_daddr,
			     IPPROTO_ICMPV6, CTX_IS_XDP ? (__u16)(len - ETH_HLEN) : 0, 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			fib_state = FIB_READY;
		else if (rc == BPF_FIB_LKUP_RET_NO_NEIGH && !CTX_IS_XDP)
			fib_state = FIB_NO_NEIGH;
		else if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
			return CTX_ACT_OK; /* untouched: tc resolves the neighbour */
		else
			return -DROP_FIB;
		data = ctx_data(ctx);
		data_end = ctx_data_end(ctx);
		if (data + ICMP6_INNER_L4 + 8 > data_end)
			return -DROP_PULL;
		ip6 = data + ETH_HLEN;
		ic = data + ICMP6_OFF;
		in = data + ICMP6_INNER;
		ports = data + ICMP6_INNER_L4;
	}

	icc = &ic->checksum;
	if (in->nexthdr == IPPROTO_UDP) {
		l4c = data + ICMP6_INNER_L4 + 6;
		if (*l4c == 0)
			l4c = NULL;
	} else if (data + ICMP6_INNER_L4 + 18 <= data_end &&
		   bpf_ntohs(ip6->payload_len) + ETH_HLEN + 40 >= ICMP6_INNER_L4 + 18) {
		l4c = data + ICMP6_INNER_L4 + 16;
	}

	/* The quote (its L4 checksum's pseudo-header holds its addresses),
	 * then the outer addresses (the ICMPv6 checksum's pseudo-header). */
	{
		__sum16 old_l4c = l4c ? *l4c : 0;

		icmp6_set_addr((struct v6addr *)&in->saddr, i_saddr, l4c, icc);
		icmp6_set_addr((struct v6addr *)&in->daddr, i_daddr, l4c, icc);
		if (ports[0] != i_sport) {
			if (l4c)
				*l4c = csum_replace2(*l4c, ports[0], i_sport);
			*icc = csum_replace2(*icc, ports[0], i_sport);
			ports[0] = i_sport;
		}
		if (ports[1] != i_dport) {
			if (l4c)
				*l4c = csum_replace2(*l4c, ports[1], i_dport);
			*icc = csum_replace2(*icc, ports[1], i_dport);
			ports[1] = i_dport;
		}
		if (l4c)
			*icc = csum_replace2(*icc, old_l4c, *l4c);
	}
	icmp6_set_addr((struct v6addr *)&ip6->saddr, o_saddr, icc, NULL);
	icmp6_set_addr((struct v6addr *)&ip6->daddr, o_daddr, icc, NULL);
	count_ct_event(CT_EV_ICMP_ERROR);

	if (mode != LB_MODE_POD && snat) {
		rc = ip6_dec_ttl(data, data_end);
		if (rc)
			return rc;
		return lb_xmit(ctx, &s->fib, fib_state);
	}
	/* A pod's error toward an external client may now come from a node
	 * address (the frontend): forwarded here, as the flow's replies. */
	if (mode == LB_MODE_POD && reply && (ct->flags & CT_F_EXTERNAL)) {
		s->p.daddr = o_daddr;
		s->p.proto = IPPROTO_ICMPV6;
		s->p.tot_len = (__u16)(len - ETH_HLEN);
		return lb6_forward_reply(ctx, &s->p, &s->fib, o_saddr);
	}
	return CTX_ACT_OK;
}

#endif
