/* SPDX-License-Identifier: Apache-2.0 */
/* XDP entry programs (docs/architecture.md says where each is attached).
 * svclb_xdp_lb runs the shared pipeline (lib/handle.h) and exits once. */
#define SVCLB_CTX_XDP
#include "lib/handle.h"
#include "lib/icmp.h"
#include "lib/l2.h"

/* XDP on a node NIC: NodePort / LoadBalancer / externalIP / ClusterIP
 * translation (the decision shared with tc), source NAT + forwarding for
 * backends on other nodes, and ARP / NDP answers for announced addresses
 * (lib/l2.h; only frames the IPv4 parse did not take reach them).
 * DNAT toward a local backend hands the frame to the stack (XDP_PASS). */
SEC("xdp")
int svclb_xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = (__u32)(data_end - data);
	struct lb_verdict v = {};
	struct pkt4 p = {};
	int ret;

	if (ctx_parse4(ctx, &p) != PARSE_OK) {
		ret = icmp4_handle(ctx, LB_MODE_XDP_EXT);
		if (ret != ICMP4_NOT_OURS)
			return lb_exit(ctx, ret, len, &p, &v, LB_MODE_XDP_EXT);
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (arp_answer(data, data_end, ctx->ingress_ifindex))
			return XDP_TX;
		ret = ndp_answer(ctx);
		if (ret < 0)
			return lb_exit(ctx, ret, len, &p, &v, LB_MODE_XDP_EXT);
		return ret ? XDP_TX : XDP_PASS;
	}
	ret = lb4_handle(ctx, &p, LB_MODE_XDP_EXT, &v);
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
