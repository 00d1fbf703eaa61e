/* SPDX-License-Identifier: Apache-2.0 */
/* svclb entry programs. Each parses, asks the shared core (lib/lb.h) what to
 * do, rewrites, and converts a negative DROP_* reason into a counted drop at
 * ONE exit. See docs/architecture.md for where each is attached. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/lb.h"
#include "lib/nat.h"
#include "lib/reject.h"
#include "lib/sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Pulls the headers into the linear area when they are not there yet and
 * parses. Returns PARSE_OK or PARSE_NOT_OURS (also when the pull fails: a
 * packet we cannot read is one we do not handle). */
static __always_inline int tc_parse(struct __sk_buff *skb, struct pkt4 *p)
{
	int ret = parse_ipv4((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, p);

	if (ret != PARSE_SHORT)
		return ret;
	{
		__u32 need = skb->len < PARSE_MAX_HDR ? skb->len : PARSE_MAX_HDR;

		if (bpf_skb_pull_data(skb, need))
			return PARSE_NOT_OURS;
	}
	ret = parse_ipv4((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, p);
	return ret == PARSE_OK ? PARSE_OK : PARSE_NOT_OURS;
}

/* Answers the packet of a new flow to a Service without a usable endpoint
 * (RST / ICMP port unreachable) back out of the interface it came in on.
 * Returns TC_ACT_REDIRECT or -DROP_*. */
static __always_inline int tc_reject(struct __sk_buff *skb, const struct pkt4 *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct rst_info ri = {};
	__u32 len;

	if (p->l4_off != ETH_HLEN + sizeof(struct iphdr))
		return -DROP_REJECT_FAILED;
	if (p->proto == IPPROTO_TCP) {
		if (rst_prepare(data, data_end, &ri))
			return -DROP_REJECT_FAILED;
		if (ri.drop)
			return -DROP_NO_BACKEND;
		if (bpf_skb_change_tail(skb, REJECT_RST_LEN, 0))
			return -DROP_REJECT_FAILED;
		len = REJECT_RST_LEN;
	} else {
		if (bpf_skb_adjust_room(skb, REJECT_ICMP_ROOM, BPF_ADJ_ROOM_MAC, 0) ||
		    bpf_skb_change_tail(skb, REJECT_ICMP_LEN, 0))
			return -DROP_REJECT_FAILED;
		len = REJECT_ICMP_LEN;
	}
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + len > data_end) {
		if (bpf_skb_pull_data(skb, len))
			return -DROP_REJECT_FAILED;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	if (p->proto == IPPROTO_TCP) {
		if (rst_write(data, data_end, &ri))
			return -DROP_REJECT_FAILED;
	} else if (icmp_unreach_write(data, data_end)) {
		return -DROP_REJECT_FAILED;
	}
	return bpf_redirect(skb->ifindex, 0);
}

/* tc ingress of a pod-facing interface (the host end of a pod's veth):
 * packets a pod sends. DNAT toward a backend for client -> ClusterIP, and
 * reverse NAT for backend -> client replies. */
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

/* The TTL of the IPv4 header at ETH_HLEN, or 0 if unreadable. */
static __always_inline __u8 ip_ttl(void *data, void *data_end)
{
	struct iphdr *ip = data + ETH_HLEN;

	if ((void *)(ip + 1) > data_end)
		return 0;
	return ip->ttl;
}

/* tc: sends an already translated packet out as the node would forward it:
 * TTL - 1, FIB lookup from the interface it came in on, MACs, redirect (or
 * bpf_redirect_neigh when the neighbour is unknown). `fallback` is returned
 * when the FIB has no answer to forward by (the stack then decides).
 * Returns a TC_ACT_* / redirect verdict or -DROP_*. */
static __always_inline int tc_forward(struct __sk_buff *skb, const struct pkt4 *p, __be32 saddr,
				      __be32 daddr, int fallback)
{
	struct bpf_fib_lookup fib;
	int rc;

	rc = ip4_dec_ttl((void *)(long)skb->data, (void *)(long)skb->data_end);
	if (rc)
		return rc;
	/* tot_len 0: the kernel checks the skb against the egress MTU itself,
	 * and passes GSO skbs (TSO/GRO on veths), whose IP total length is
	 * beyond the MTU until they are segmented. */
	rc = lb4_fib(skb, &fib, skb->ifindex, saddr, daddr, p->proto, 0, 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0))
			return -DROP_CSUM;
		return bpf_redirect(fib.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
	return fallback;
}

/* tc: rewrites both ends of a source-NATed flow's packet and forwards it
 * (on a node NIC this is the slow path XDP hands such packets to). On the
 * pod side the stack routes it. Returns a verdict or -DROP_*. */
static __always_inline int tc_snat_forward(struct __sk_buff *skb, const struct pkt4 *p,
					   int action, const struct lb_verdict *v, int mode)
{
	__be32 saddr, daddr;
	__be16 sport, dport;
	int rc;

	snat_tuple(action, v, &saddr, &sport, &daddr, &dport);
	if (ip_ttl((void *)(long)skb->data, (void *)(long)skb->data_end) <= 1)
		return -DROP_TTL;
	rc = nat4_rewrite_tc_both(skb, p, saddr, sport, daddr, dport);
	if (rc)
		return rc;
	if (mode == LB_MODE_POD)
		return TC_ACT_OK;
	return tc_forward(skb, p, saddr, daddr, -DROP_FIB);
}

static __always_inline int tc_lb(struct __sk_buff *skb, int mode)
{
	struct bpf_fib_lookup fib;
	struct lb_verdict v = {};
	struct pkt4 p = {};
	int ret;

	if (tc_parse(skb, &p) != PARSE_OK)
		return TC_ACT_OK;
	ret = lb4_decide(&p, &v, skb, mode, skb->ifindex, &fib); /* at ingress: the NIC */
	if (ret == LB_PASS)
		return TC_ACT_OK;
	if (ret > 0) {
		int action = ret;

		if (v.ct_flags & CT_F_SNAT) {
			ret = tc_snat_forward(skb, &p, action, &v, mode);
		} else {
			ret = nat4_rewrite_tc(skb, &p, action == LB_DNAT, v.addr, v.port);
			if (ret == 0)
				ret = TC_ACT_OK;
			/* A local backend's reply to an external client: its new
			 * source may be this node's own address (NodePort), which
			 * the stack drops as a martian: forward it ourselves. */
			if (ret == 0 && action == LB_RNAT && (v.ct_flags & CT_F_EXTERNAL) &&
			    mode == LB_MODE_POD)
				ret = tc_forward(skb, &p, v.addr, p.daddr, TC_ACT_OK);
		}
		if (ret >= 0) {
			lb4_account(action, &v, p.tot_len);
			return ret;
		}
	} else if (ret == -DROP_NO_BACKEND) {
		__u32 len = skb->len;

		ret = tc_reject(skb, &p);
		if (ret >= 0) {
			stats_reject(&svc_stats_v1, v.svc_id);
			return ret;
		}
		count_drop((__u32)-ret, len);
		return TC_ACT_SHOT;
	}
	count_drop((__u32)-ret, skb->len);
	return TC_ACT_SHOT;
}

SEC("tc")
int svclb_tc_pod_in(struct __sk_buff *skb)
{
	return tc_lb(skb, LB_MODE_POD);
}

/* XDP twin of tc_reject: reshapes the frame and sends it back (XDP_TX).
 * Returns XDP_TX or -DROP_*. */
static __always_inline int xdp_reject(struct xdp_md *ctx, const struct pkt4 *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (p->l4_off != ETH_HLEN + sizeof(struct iphdr))
		return -DROP_REJECT_FAILED;
	if (p->proto == IPPROTO_TCP) {
		struct rst_info ri = {};

		if (rst_prepare(data, data_end, &ri))
			return -DROP_REJECT_FAILED;
		if (ri.drop)
			return -DROP_NO_BACKEND;
		if (bpf_xdp_adjust_tail(ctx, (int)REJECT_RST_LEN - (int)(data_end - data)))
			return -DROP_REJECT_FAILED;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (rst_write(data, data_end, &ri))
			return -DROP_REJECT_FAILED;
		return XDP_TX;
	}
	if (bpf_xdp_adjust_head(ctx, -(int)REJECT_ICMP_ROOM))
		return -DROP_REJECT_FAILED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + REJECT_ICMP_ROOM + ETH_HLEN > data_end)
		return -DROP_REJECT_FAILED;
	/* The Ethernet header moves to the new front; the original IP and
	 * UDP headers stay where they are and become the quote. */
	__builtin_memcpy(data, data + REJECT_ICMP_ROOM, ETH_HLEN);
	if (bpf_xdp_adjust_tail(ctx, (int)REJECT_ICMP_LEN - (int)(data_end - data)))
		return -DROP_REJECT_FAILED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (icmp_unreach_write(data, data_end))
		return -DROP_REJECT_FAILED;
	return XDP_TX;
}

/* XDP: rewrites both ends of a source-NATed flow's packet and sends it
 * straight out (XDP_TX on the NIC it came in on, else a redirect) with the
 * MACs of the FIB's answer. Without a neighbour entry the frame goes to the
 * stack untouched (XDP_PASS), where tc resolves it. Returns an XDP action
 * or -DROP_*. */
static __always_inline int xdp_snat_forward(struct xdp_md *ctx, const struct pkt4 *p, int action,
					    const struct lb_verdict *v, struct bpf_fib_lookup *fib)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth;
	__be32 saddr, daddr;
	__be16 sport, dport;
	int rc;

	snat_tuple(action, v, &saddr, &sport, &daddr, &dport);
	if (!v->fib_done) {
		rc = lb4_fib(ctx, fib, ctx->ingress_ifindex, saddr, daddr, p->proto, p->tot_len, 0);
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
			return XDP_PASS;
		if (rc != BPF_FIB_LKUP_RET_SUCCESS)
			return -DROP_FIB;
	}
	if (ip_ttl(data, data_end) <= 1)
		return -DROP_TTL;
	rc = nat4_rewrite_xdp_both(ctx, p, saddr, sport, daddr, dport);
	if (rc)
		return rc;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return -DROP_PULL;
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	if (fib->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	if (lb4_via_node_nic(fib))
		return bpf_redirect_map(&tx_ports_v1, fib->ifindex, 0);
	return bpf_redirect(fib->ifindex, 0);
}

/* cfg_local_redirect: after the DNAT of a node-facing flow whose backend is
 * on this node, send the frame straight into the backend's veth (FIB lookup,
 * TTL, MACs) instead of letting the stack route it there. Anything the FIB
 * does not answer plainly (no neighbour, the ingress NIC itself, TTL 1)
 * still goes to the stack, DNATed, as with the knob off. Returns
 * XDP_REDIRECT or XDP_PASS. */
static __always_inline int xdp_local_redirect(struct xdp_md *ctx, const struct pkt4 *p,
					      const struct lb_verdict *v, struct bpf_fib_lookup *fib)
{
	void *data, *data_end;
	struct ethhdr *eth;
	int rc;

	rc = lb4_fib(ctx, fib, ctx->ingress_ifindex, p->saddr, v->addr, p->proto, p->tot_len, 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS || fib->ifindex == ctx->ingress_ifindex)
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (ip4_dec_ttl(data, data_end)) /* TTL <= 1: the stack sends the ICMP */
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	return bpf_redirect(fib->ifindex, 0);
}

struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__be32 spa;
	__u8 tha[ETH_ALEN];
	__be32 tpa;
} __attribute__((packed));

#define ARPOP_REQUEST_BE bpf_htons(1)
#define ARPOP_REPLY_BE bpf_htons(2)

/* L2 announcement: turns an ARP request for an address in l2_arp_v1 on
 * this NIC into the reply, in place (the caller sends it back out of the
 * NIC). Returns 1 if it did, 0 for every other frame (left untouched). */
static __always_inline int arp_answer(void *data, void *data_end, __u32 ifindex)
{
	struct ethhdr *eth = data;
	struct arp_ipv4 *arp = (void *)(eth + 1);
	struct l2_arp_value *val;
	struct l2_arp_key k = {};
	__be32 spa;

	if ((void *)(arp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_ARP))
		return 0;
	if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != ETH_ALEN ||
	    arp->plen != 4 || arp->op != ARPOP_REQUEST_BE)
		return 0;
	k.addr = arp->tpa;
	k.ifindex = ifindex;
	spa = arp->spa;
	if (spa == k.addr) /* someone's gratuitous ARP: not a question */
		return 0;
	val = bpf_map_lookup_elem(&l2_arp_v1, &k);
	if (!val)
		return 0;
	arp->op = ARPOP_REPLY_BE;
	__builtin_memcpy(arp->tha, arp->sha, ETH_ALEN);
	arp->tpa = spa;
	__builtin_memcpy(arp->sha, val->mac, ETH_ALEN);
	arp->spa = k.addr;
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, val->mac, ETH_ALEN);
	return 1;
}

/* tc ingress of a node NIC. Beside svclb_xdp_lb it is the slow path for
 * what XDP hands to the stack untranslated (a source-NATed flow whose next
 * hop has no neighbour entry yet: bpf_redirect_neigh resolves it). On a NIC
 * where svclbd attaches no XDP (a veth: docs/architecture.md) it is the
 * whole node-facing datapath, ARP answers included. */
SEC("tc")
int svclb_tc_ext_in(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_ARP)) {
		if (bpf_skb_pull_data(skb, ETH_HLEN + sizeof(struct arp_ipv4)))
			return TC_ACT_OK;
		if (!arp_answer((void *)(long)skb->data, (void *)(long)skb->data_end, skb->ifindex))
			return TC_ACT_OK;
		return bpf_redirect(skb->ifindex, 0);
	}
	return tc_lb(skb, LB_MODE_TC_EXT);
}

/* XDP on a node NIC: NodePort / LoadBalancer / externalIP / ClusterIP
 * translation (the decision shared with tc), source NAT + forwarding for
 * backends on other nodes, and ARP answers for announced addresses.
 * DNAT toward a local backend hands the frame to the stack (XDP_PASS). */
SEC("xdp")
int svclb_xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib;
	struct lb_verdict v = {};
	struct pkt4 p = {};
	int ret;

	if (parse_ipv4(data, data_end, (__u32)(data_end - data), &p) != PARSE_OK)
		return arp_answer(data, data_end, ctx->ingress_ifindex) ? XDP_TX : XDP_PASS;
	ret = lb4_decide(&p, &v, ctx, LB_MODE_XDP_EXT, ctx->ingress_ifindex, &fib);
	if (ret == LB_PASS)
		return XDP_PASS;
	if (ret > 0) {
		int action = ret;

		if (v.ct_flags & CT_F_SNAT) {
			ret = xdp_snat_forward(ctx, &p, action, &v, &fib);
			if (ret == XDP_PASS) /* untouched: tc takes it */
				return XDP_PASS;
		} else {
			ret = nat4_rewrite_xdp(ctx, &p, action == LB_DNAT, v.addr, v.port);
			if (ret == 0)
				ret = XDP_PASS;
			if (ret == XDP_PASS && action == LB_DNAT && cfg_local_redirect &&
			    (v.ct_flags & CT_F_EXTERNAL))
				ret = xdp_local_redirect(ctx, &p, &v, &fib);
		}
		if (ret >= 0) {
			lb4_account(action, &v, p.tot_len);
			return ret;
		}
	} else if (ret == -DROP_NO_BACKEND) {
		__u32 len = (__u32)(data_end - data);

		ret = xdp_reject(ctx, &p);
		if (ret >= 0) {
			stats_reject(&svc_stats_v1, v.svc_id);
			return ret;
		}
		count_drop((__u32)-ret, len);
		return XDP_DROP;
	}
	count_drop((__u32)-ret, (__u32)(data_end - data));
	return XDP_DROP;
}

/* cgroup sock_addr hooks. Return 1 = allow; 0 = the syscall fails, with
 * ECONNREFUSED for a Service without a usable endpoint (what a client of
 * kube-proxy's REJECT sees), EPERM otherwise. */
static __always_inline int sock4_entry(struct bpf_sock_addr *ctx)
{
	__u8 proto;
	int ret;

	if (ctx->type == SOCK_STREAM)
		proto = IPPROTO_TCP;
	else if (ctx->type == SOCK_DGRAM)
		proto = IPPROTO_UDP;
	else
		return 1;
	ret = sock4_translate(ctx, proto);
	if (ret < 0) {
		if (ret == -DROP_NO_BACKEND)
			bpf_set_retval(-ECONNREFUSED);
		else
			count_drop((__u32)-ret, 0);
		return 0;
	}
	return 1;
}

SEC("cgroup/connect4")
int svclb_sock_connect4(struct bpf_sock_addr *ctx)
{
	return sock4_entry(ctx);
}

SEC("cgroup/sendmsg4")
int svclb_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock4_entry(ctx);
}

SEC("cgroup/recvmsg4")
int svclb_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	sock4_reverse(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int svclb_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	sock4_reverse(ctx);
	return 1;
}

/* Never attached: svclbd runs it with BPF_PROG_TEST_RUN to read the
 * kernel's jiffies (calibrating HZ, and "now" in CT ticks for tests). */
__u64 probe_jiffies = 0;

SEC("xdp")
int svclb_probe_jiffies(struct xdp_md *ctx)
{
	probe_jiffies = bpf_jiffies64();
	return XDP_PASS;
}
