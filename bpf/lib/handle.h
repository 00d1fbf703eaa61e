/* SPDX-License-Identifier: Apache-2.0 */
/* The packet pipeline every tc and XDP entry runs (lib/ctx.h), IPv4 (and,
 * and IPv6: lb6_handle):
 * parse -> decide (lib/lb.h) -> rewrite (lib/nat.h) -> forward
 * (lib/forward.h) or reject (lib/reject.h) -> account. Helpers return a
 * verdict (>= 0) or a negative DROP_* reason; lb_exit turns a reason into
 * the drop verdict, counts it and (svcctl monitor) reports it, once. */
#ifndef SVCLB_BPF_HANDLE_H
#define SVCLB_BPF_HANDLE_H

#include "lib/ctx.h"
#include "lib/forward.h"
#include "lib/frag.h"
#include "lib/lb.h"
#include "lib/monitor.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/reject.h"
#include "lib/stats.h"

/* lb_exit reports the program as its mode. */
_Static_assert(MON_HOOK_TC_POD == LB_MODE_POD && MON_HOOK_XDP == LB_MODE_XDP_EXT &&
		       MON_HOOK_TC_EXT == LB_MODE_TC_EXT,
	       "mon_event.hook is the LB_MODE_* of the packet program");

/* Parses the packet, first pulling its headers into the linear area when
 * they are not there yet (tc). Returns PARSE_OK or PARSE_NOT_OURS (also when
 * the pull fails: a packet we cannot read is one we do not handle). An IP
 * fragment goes through lib/frag.h: a first one records its ports, a later
 * one is PARSE_OK with its datagram's ports, or NOT_OURS (counted) when
 * they are not known. */
static __always_inline int ctx_parse4(struct __ctx_buff *ctx, struct pkt4 *p)
{
	__u32 len = ctx_full_len(ctx);
	int ret = parse_ipv4(ctx_data(ctx), ctx_data_end(ctx), len, p);

	/* Keep this early return: merging the two parses' outcomes into one
	 * tail made clang spill a dozen values on every packet (+15 ns). */
	if (ret != PARSE_SHORT)
		return p->frag ? frag4_parsed(ret, p) : ret;
	if (ctx_pull(ctx, len < PARSE_MAX_HDR ? len : PARSE_MAX_HDR))
		return PARSE_NOT_OURS;
	ret = parse_ipv4(ctx_data(ctx), ctx_data_end(ctx), len, p);
	if (p->frag)
		return frag4_parsed(ret, p);
	return ret == PARSE_OK ? PARSE_OK : PARSE_NOT_OURS;
}

/* Answers the packet of a new flow to a Service without a usable endpoint
 * (RST / ICMP port unreachable) back out of the interface it came in on.
 * Returns that verdict or -DROP_* (-DROP_NO_BACKEND for a RST, which is
 * never answered). */
static __always_inline int lb4_reject(struct __ctx_buff *ctx, const struct pkt4 *p)
{
	struct rst_info ri = {};
	void *data, *data_end;
	__u32 len;

	if (p->l4_off != ETH_HLEN + sizeof(struct iphdr))
		return -DROP_REJECT_FAILED;
	if (p->proto == IPPROTO_TCP) {
		if (rst_prepare(ctx_data(ctx), ctx_data_end(ctx), &ri))
			return -DROP_REJECT_FAILED;
		if (ri.drop)
			return -DROP_NO_BACKEND;
		len = REJECT_RST_LEN;
	} else {
		/* The original IP and UDP headers stay and become the quote. */
		if (ctx_grow_after_mac(ctx, REJECT_ICMP_ROOM))
			return -DROP_REJECT_FAILED;
		len = REJECT_ICMP_LEN;
	}
	if (ctx_set_len(ctx, len))
		return -DROP_REJECT_FAILED;
	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	if (data + len > data_end) {
		if (ctx_pull(ctx, len))
			return -DROP_REJECT_FAILED;
		data = ctx_data(ctx);
		data_end = ctx_data_end(ctx);
	}
	if (p->proto == IPPROTO_TCP ? rst_write(data, data_end, &ri)
				    : icmp_unreach_write(data, data_end))
		return -DROP_REJECT_FAILED;
	return ctx_bounce(ctx);
}

/* The one exit of a packet program: a verdict passes through (as the
 * kernel takes it: ctx_verdict); a negative
 * DROP_* reason is counted with the packet's length at entry, reported to
 * svcctl monitor when a client watches (lib/monitor.h: the tuple as it
 * arrived, the Service lb4_handle found in v, 0 if none) and dropped. */
static __always_inline int lb_exit(struct __ctx_buff *ctx, int ret, __u32 len, const struct pkt4 *p,
				   const struct lb_verdict *v, int mode)
{
	if (ret >= 0)
		return ctx_verdict(ret);
	count_drop((__u32)-ret, len);
	if (mon_on())
		mon_packet(MON_EV_DROP, (__u32)-ret, p, v->svc_id, ctx_ingress_ifindex(ctx),
			   (__u32)mode);
	return CTX_ACT_DROP;
}

/* A pod's packet on an established single-entry ClusterIP flow, in a short
 * straight path ahead of lb4_handle (svclb_tc_pod_in only). In real traffic
 * the full pipeline's code and data, shared with the stack's, cost ~3x a
 * bare lookup-and-rewrite; this path is that one plus the checks below
 * (bench/results/2026-12-06-vm-established-floor.md: +7 % pps on an
 * established UDP flow, side by side). It does exactly what lb4_decide and
 * lb4_apply_inline do for such a packet, and takes nothing else: not a
 * fragment, no SYN/FIN/RST (closing, promotion and take-over stay there),
 * from no backend (whose answers go through ct_single_reply first), to a
 * frontend, no monitor client; its entry found where the full path looks
 * first (ct_est_v2 for TCP, ct_v2 for UDP), a FORWARD entry flagged
 * CT_F_SINGLE and nothing else (no pair to relink, no source NAT, no
 * external or hairpin forwarding, not closing), alive, its backend still
 * the Service's. Returns 0 for any other packet (the full path takes it,
 * from the start), else 1 with *ret the verdict or -DROP_* and v's
 * Service and backend set for lb_exit. */
static __always_inline int lb4_single_hit(struct __ctx_buff *ctx, const struct pkt4 *p,
					  struct lb_verdict *v, int *ret)
{
	struct ct_key ck = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.proto = p->proto,
	};
	struct be_slot *be;
	struct ct_value *ct;
	__u32 now, bid;

	if (mon_on() || p->frag != PKT_FRAG_NONE ||
	    (p->tcp_flags & (TCPF_SYN | TCPF_FIN | TCPF_RST)) ||
	    lb_filter_test(SVCLB_FILTER_BITS + lb_filter_bit(p->saddr, p->sport)) ||
	    !lb_filter_test(lb_filter_bit(p->daddr, p->dport)))
		return 0;
	ct = bpf_map_lookup_elem(p->proto == IPPROTO_TCP ? (void *)&ct_est_v2 : (void *)&ct_v2,
				 &ck);
	now = ct_now();
	if (!ct || ct->dir != CT_DIR_FORWARD ||
	    (ct->flags & (CT_F_SINGLE | CT_F_SNAT | CT_F_EXTERNAL | CT_F_HAIRPIN | CT_F_CLOSING)) !=
		    CT_F_SINGLE ||
	    !ct4_alive(ct, p->proto, now))
		return 0;
	bid = ct->backend_id;
	be = be_owned(bid, ct->svc_id);
	if (!be)
		return 0;
	if (ct->last_seen != now)
		ct->last_seen = now; /* at most one write per tick */
	v->svc_id = ct->svc_id;
	v->backend_id = bid;
	*ret = nat4_rewrite(ctx, p, 1, ct->nat_addr, ct->nat_port);
	if (*ret == 0) {
		*ret = CTX_ACT_OK;
		stats_fwd(&be->s, p->tot_len, 0);
	}
	return 1;
}

/* ---- IPv6 (issue 16) ---------------------------------------------------- */

/* ctx_parse4 for IPv6, fragments included (lib/frag.h). */
static __always_inline int ctx_parse6(struct __ctx_buff *ctx, struct pkt6 *p)
{
	__u32 len = ctx_full_len(ctx);
	int ret = parse_ipv6(ctx_data(ctx), ctx_data_end(ctx), len, p);

	if (ret != PARSE_SHORT)
		return p->frag ? frag6_parsed(ret, p) : ret;
	if (ctx_pull(ctx, len < PARSE6_MAX_HDR ? len : PARSE6_MAX_HDR))
		return PARSE_NOT_OURS;
	ret = parse_ipv6(ctx_data(ctx), ctx_data_end(ctx), len, p);
	if (p->frag)
		return frag6_parsed(ret, p);
	return ret == PARSE_OK ? PARSE_OK : PARSE_NOT_OURS;
}

/* lb4_reject for IPv6: a RST, or an ICMPv6 port unreachable quoting the
 * IPv6 and UDP headers, back out of the interface. */
static __always_inline int lb6_reject(struct __ctx_buff *ctx, const struct pkt6 *p)
{
	struct rst_info ri = {};
	void *data, *data_end;
	__u32 len;

	if (p->l4_off != ETH_HLEN + sizeof(struct ipv6hdr))
		return -DROP_REJECT_FAILED;
	if (p->proto == IPPROTO_TCP) {
		if (rst6_prepare(ctx_data(ctx), ctx_data_end(ctx), &ri))
			return -DROP_REJECT_FAILED;
		if (ri.drop)
			return -DROP_NO_BACKEND;
		len = REJECT6_RST_LEN;
	} else {
		if (ctx_grow_after_mac(ctx, REJECT6_ICMP_ROOM))
			return -DROP_REJECT_FAILED;
		len = REJECT6_ICMP_LEN;
	}
	if (ctx_set_len(ctx, len))
		return -DROP_REJECT_FAILED;
	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	if (data + len > data_end) {
		if (ctx_pull(ctx, len))
			return -DROP_REJECT_FAILED;
		data = ctx_data(ctx);
		data_end = ctx_data_end(ctx);
	}
	if (p->proto == IPPROTO_TCP ? rst6_write(data, data_end, &ri)
				    : icmp6_unreach_write(data, data_end))
		return -DROP_REJECT_FAILED;
	return ctx_bounce(ctx);
}

/* lb_exit for IPv6 (svcctl monitor: a mon_event6; `p` NULL for a packet
 * that was not parsed as TCP/UDP, e.g. an ICMPv6 error: no event). */
static __always_inline int lb6_exit(struct __ctx_buff *ctx, int ret, __u32 len,
				    const struct pkt6 *p, __u32 svc_id, int mode)
{
	if (ret >= 0)
		return ctx_verdict(ret);
	count_drop((__u32)-ret, len);
	if (p && mon_on())
		mon_packet6(MON_EV_DROP, (__u32)-ret, p, svc_id, ctx_ingress_ifindex(ctx),
			    (__u32)mode);
	return CTX_ACT_DROP;
}

/* The IPv6 entry programs' parsed packet, verdict and route: on their
 * stacks clang 14 lays the inlined IPv6 pipeline out beyond the 512 bytes
 * the verifier allows. Per CPU, reset by each run (lb6_scratch): a packet
 * program is not re-entered on its CPU while it runs (softirq, or BH
 * disabled). One map per hook (CTX_GLOBAL: lb6_scratch_skb, _xdp). */
struct lb6_scratch {
	struct pkt6 p;
	struct lb6_verdict v;
	struct bpf_fib_lookup fib;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb6_scratch);
} CTX_GLOBAL(lb6_scratch) SEC(".maps");

static __always_inline struct lb6_scratch *lb6_scratch(void)
{
	__u32 zero = 0;
	struct lb6_scratch *s = bpf_map_lookup_elem(&CTX_GLOBAL(lb6_scratch), &zero);

	/* The route needs no zeroing: every lookup fills it first. */
	if (s) {
		__builtin_memset(&s->p, 0, sizeof(s->p));
		__builtin_memset(&s->v, 0, sizeof(s->v));
	}
	return s;
}

#define SVCLB_FAM      4
#define FAM_MON_PACKET mon_packet
#include "lib/family.h"
#include "lib/handle_fam.h"
#include "lib/family_end.h"
#undef FAM_MON_PACKET

#define SVCLB_FAM      6
#define FAM_MON_PACKET mon_packet6
#include "lib/family.h"
#include "lib/handle_fam.h"
#include "lib/family_end.h"
#undef FAM_MON_PACKET

#endif
