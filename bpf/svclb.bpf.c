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
static __always_inline int tc_lb(struct __sk_buff *skb)
{
	struct lb_verdict v = {};
	struct pkt4 p = {};
	int ret;

	if (tc_parse(skb, &p) != PARSE_OK)
		return TC_ACT_OK;
	ret = lb4_decide(&p, &v);
	if (ret == LB_PASS)
		return TC_ACT_OK;
	if (ret > 0) {
		int action = ret;

		ret = nat4_rewrite_tc(skb, &p, action == LB_DNAT, v.addr, v.port);
		if (ret == 0) {
			lb4_account(action, &v, p.tot_len);
			return TC_ACT_OK;
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
	return tc_lb(skb);
}

/* tc ingress of a node NIC (beside svclb_xdp_lb): the slow path for what
 * XDP hands to the stack untranslated. */
SEC("tc")
int svclb_tc_ext_in(struct __sk_buff *skb)
{
	return tc_lb(skb);
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

/* XDP variant of the same path (node NICs, issue 3; benchmarks): translates
 * and hands the frame to the stack, which routes it. */
SEC("xdp")
int svclb_xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lb_verdict v = {};
	struct pkt4 p = {};
	int ret;

	if (parse_ipv4(data, data_end, (__u32)(data_end - data), &p) != PARSE_OK)
		return XDP_PASS;
	ret = lb4_decide(&p, &v);
	if (ret == LB_PASS)
		return XDP_PASS;
	if (ret > 0) {
		int action = ret;

		ret = nat4_rewrite_xdp(ctx, &p, action == LB_DNAT, v.addr, v.port);
		if (ret == 0) {
			lb4_account(action, &v, p.tot_len);
			return XDP_PASS;
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
