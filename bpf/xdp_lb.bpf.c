/* SPDX-License-Identifier: Apache-2.0 */
/* XDP entry programs (docs/architecture.md says where each is attached).
 * svclb_xdp_lb runs the shared pipeline (lib/handle.h) and exits once. */
#define SVCLB_CTX_XDP
#include "lib/handle.h"
#include "lib/icmp.h"
#include "lib/l2.h"

/* The IPv6 half of svclb_xdp_lb, tail-called from it (tail_xdp6): the
 * same translation for IPv6 (source NAT to the node's IPv6 address for
 * backends on other nodes), and NDP answers for announced addresses. */
SEC("xdp")
int svclb_xdp_lb6(struct xdp_md *ctx)
{
	__u32 len = ctx_full_len(ctx);
	struct lb6_scratch *s = lb6_scratch();
	int ret;

	if (!s)
		return XDP_PASS;
	if (ctx_parse6(ctx, &s->p) != PARSE_OK) {
		ret = CTX_GLOBAL(icmp6_handle)(ctx, LB_MODE_XDP_EXT);
		if (ret != ICMP4_NOT_OURS)
			return lb6_exit(ctx, ret, len, NULL, 0, LB_MODE_XDP_EXT);
		ret = CTX_GLOBAL(ndp_answer)(ctx);
		if (ret < 0)
			return lb6_exit(ctx, ret, len, NULL, 0, LB_MODE_XDP_EXT);
		return ret ? XDP_TX : XDP_PASS;
	}
	ret = lb6_handle(ctx, &s->p, LB_MODE_XDP_EXT, &s->v, &s->fib);
	return lb6_exit(ctx, ret, len, &s->p, s->v.svc_id, LB_MODE_XDP_EXT);
}

/* XDP on a node NIC: NodePort / LoadBalancer / externalIP / ClusterIP
 * translation (the decision shared with tc), source NAT + forwarding for
 * backends on other nodes, and ARP answers for announced addresses
 * (lib/l2.h; IPv6 and NDP: svclb_xdp_lb6).
 * DNAT toward a local backend hands the frame to the stack (XDP_PASS). */
SEC("xdp")
int svclb_xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = (__u32)(data_end - data);
	struct bpf_fib_lookup fib;
	struct lb_verdict v = {};
	struct pkt4 p = {};
	int ret;

	if (ctx_parse4(ctx, &p) != PARSE_OK) {
		/* IPv6 (NDP answers too): svclb_xdp_lb6, which the daemon
		 * installs before it attaches this; without it, untouched. */
		if (data + ETH_HLEN <= data_end &&
		    ((struct ethhdr *)data)->h_proto == bpf_htons(ETH_P_IPV6)) {
			bpf_tail_call(ctx, &tail_xdp6, SVCLB_TAIL_V6);
			return XDP_PASS;
		}
		ret = icmp4_handle(ctx, LB_MODE_XDP_EXT);
		if (ret != ICMP4_NOT_OURS)
			return lb_exit(ctx, ret, len, &p, &v, LB_MODE_XDP_EXT);
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		return arp_answer(data, data_end, ctx->ingress_ifindex) ? XDP_TX : XDP_PASS;
	}
	ret = lb4_handle(ctx, &p, LB_MODE_XDP_EXT, &v, &fib);
	return lb_exit(ctx, ret, len, &p, &v, LB_MODE_XDP_EXT);
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
