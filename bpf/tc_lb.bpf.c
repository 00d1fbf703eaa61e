/* SPDX-License-Identifier: Apache-2.0 */
/* tc entry programs (docs/architecture.md says where each is attached).
 * Each runs the shared pipeline (lib/handle.h) and exits once (lb_exit).
 * A packet they leave untouched gets TC_ACT_UNSPEC (tcx: TCX_NEXT), so the
 * tcx programs after ours and the legacy tc filters still run for it
 * (lib/ctx_skb.h CTX_ACT_UNTOUCHED); a translated one TC_ACT_OK. */
#define SVCLB_CTX_SKB
#include "lib/handle.h"
#include "lib/icmp.h"
#include "lib/l2.h"

/* tc ingress of a pod-facing interface (the host end of a pod's veth):
 * packets a pod sends. DNAT toward a backend for client -> ClusterIP, and
 * reverse NAT for backend -> client replies; IPv4 and IPv6. */
/* The IPv6 half of svclb_tc_pod_in, tail-called from it (tail_progs):
 * ClusterIP DNAT / reverse NAT / rejects for a pod's IPv6 packets. */
SEC("tc")
int svclb_tc_pod_in6(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	struct lb6_scratch *s = lb6_scratch();
	int ret;

	if (!s)
		return TC_ACT_UNSPEC;
	if (ctx_parse6(skb, &s->p) != PARSE_OK) {
		ret = CTX_GLOBAL(icmp6_handle)(skb, LB_MODE_POD);
		return ret == ICMP4_NOT_OURS ? TC_ACT_UNSPEC
					     : lb6_exit(skb, ret, len, NULL, 0, LB_MODE_POD);
	}
	ret = lb6_handle(skb, &s->p, LB_MODE_POD, &s->v, &s->fib);
	return lb6_exit(skb, ret, len, &s->p, s->v.svc_id, LB_MODE_POD);
}

SEC("tc")
int svclb_tc_pod_in(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	struct bpf_fib_lookup fib;
	struct lb_verdict v = {};
	struct pkt4 p = {};
	int ret;

	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		bpf_tail_call(skb, &tail_progs, SVCLB_TAIL_POD6);
		return TC_ACT_UNSPEC; /* no IPv6 program in the slot: untouched */
	}
	if (ctx_parse4(skb, &p) != PARSE_OK)
		return icmp4_exit(skb, icmp4_handle(skb, LB_MODE_POD), len, &p, &v, LB_MODE_POD);
	if (!lb4_single_hit(skb, &p, &v, &ret))
		ret = lb4_handle(skb, &p, LB_MODE_POD, &v, &fib);
	return lb_exit(skb, ret, len, &p, &v, LB_MODE_POD);
}

/* The IPv6 half of svclb_tc_ext_in, tail-called from it (tail_ext6). */
SEC("tc")
int svclb_tc_ext_in6(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	struct lb6_scratch *s = lb6_scratch();
	int ret;

	if (!s)
		return TC_ACT_UNSPEC;
	if (ctx_parse6(skb, &s->p) != PARSE_OK) {
		ret = CTX_GLOBAL(icmp6_handle)(skb, LB_MODE_TC_EXT);
		if (ret != ICMP4_NOT_OURS)
			return lb6_exit(skb, ret, len, NULL, 0, LB_MODE_TC_EXT);
		ret = CTX_GLOBAL(ndp_answer)(skb);
		if (ret > 0)
			return bpf_redirect(skb->ifindex, 0);
		return ret == 0 ? TC_ACT_UNSPEC : lb6_exit(skb, ret, len, NULL, 0, LB_MODE_TC_EXT);
	}
	ret = lb6_handle(skb, &s->p, LB_MODE_TC_EXT, &s->v, &s->fib);
	return lb6_exit(skb, ret, len, &s->p, s->v.svc_id, LB_MODE_TC_EXT);
}

/* tc ingress of a node NIC. Beside svclb_xdp_lb it is the slow path for
 * what XDP hands to the stack untranslated (a source-NATed flow whose next
 * hop has no neighbour entry yet: bpf_redirect_neigh resolves it). On a NIC
 * where svclbd attaches no XDP (a veth: docs/architecture.md) it is the
 * whole node-facing datapath, ARP and NDP answers included (lib/l2.h). */
SEC("tc")
int svclb_tc_ext_in(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	struct bpf_fib_lookup fib;
	struct lb_verdict v = {};
	struct pkt4 p = {};
	int ret;

	if (skb->protocol == bpf_htons(ETH_P_ARP)) {
		if (bpf_skb_pull_data(skb, ETH_HLEN + sizeof(struct arp_ipv4)))
			return TC_ACT_UNSPEC;
		if (!arp_answer((void *)(long)skb->data, (void *)(long)skb->data_end, skb->ifindex))
			return TC_ACT_UNSPEC;
		return bpf_redirect(skb->ifindex, 0);
	}
	if (ctx_parse4(skb, &p) != PARSE_OK) {
		/* IPv6 (NDP answers too): svclb_tc_ext_in6, which the daemon
		 * installs before it attaches this; without it, untouched. */
		if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
			bpf_tail_call(skb, &tail_ext6, SVCLB_TAIL_V6);
			return TC_ACT_UNSPEC;
		}
		return icmp4_exit(skb, icmp4_handle(skb, LB_MODE_TC_EXT), len, &p, &v,
				  LB_MODE_TC_EXT);
	}
	ret = lb4_handle(skb, &p, LB_MODE_TC_EXT, &v, &fib);
	return lb_exit(skb, ret, len, &p, &v, LB_MODE_TC_EXT);
}

/* tc EGRESS of a pod-facing interface: only ICMP errors, the ones the node
 * itself sends toward a pod about a translated packet (fragmentation needed
 * when it forwards a DNATed packet onto a smaller-MTU path: locally
 * generated, it never passes an ingress hook): the quote is translated
 * back (lib/icmp.h). Everything else returns at once. */
SEC("tc")
int svclb_tc_pod_out(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	struct lb_verdict v = {};
	struct pkt4 p = {};

	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		int ret;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_ICMPV6)
			return TC_ACT_UNSPEC;
		ret = CTX_GLOBAL(icmp6_handle)(skb, LB_MODE_POD);
		return ret == ICMP4_NOT_OURS ? TC_ACT_UNSPEC
					     : lb6_exit(skb, ret, skb->len, NULL, 0, LB_MODE_POD);
	}
	if (skb->protocol != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > data_end ||
	    ip->protocol != IPPROTO_ICMP)
		return TC_ACT_UNSPEC;
	return icmp4_exit(skb, icmp4_handle(skb, LB_MODE_POD), skb->len, &p, &v, LB_MODE_POD);
}
