/* SPDX-License-Identifier: Apache-2.0 */
/* Re-run wrappers for BPF_PROG_TEST_RUN with repeat > 1.
 *
 * test_run re-runs XDP and tc programs on the SAME buffer without resetting
 * it, so a DNAT'ed packet is no longer addressed to the VIP on iteration 2.
 * A wrapper restores the frame's headers (BENCH_HDR_COPY bytes) from a template
 * before every iteration, optionally varies the source (every iteration a
 * new 5-tuple: a real CT miss) or spreads the key over N services, and then
 * tail-calls the program under test (slot 0 of its prog array). The
 * wrapper's own cost is measured by pointing it at a bare XDP_PASS /
 * TC_ACT_OK program in the same mode, and subtracted ("net").
 *
 * Checksums are not fixed after the rewrite: the programs under test update
 * checksums incrementally and never verify them, so the cost is the same. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bench/bpf/bench_abi.h"
#include "lib/reject.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} wrap_xdp_target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} wrap_tc_target SEC(".maps");

struct wrap_cfg cfg = {};
__u64 counter = 0;

/* Offsets in a frame without IP options. */
#define OFF_SADDR (ETH_HLEN + 12)
#define OFF_DADDR (ETH_HLEN + 16)
#define OFF_SPORT (ETH_HLEN + 20)

/* IPv6 frames (WRAP_IPV6): the source's last word and the source port. */
#define OFF6_SADDR_LO (ETH_HLEN + 8 + 12)
#define OFF6_SPORT    (ETH_HLEN + 40)

static __always_inline int wrap_prepare(void *data, void *data_end)
{
	__u32 mode = cfg.mode;
	__u32 c;

	if (mode & WRAP_IPV6) {
		if (data + BENCH_HDR_COPY6 > data_end)
			return -1;
		__builtin_memcpy(data, cfg.tmpl, BENCH_HDR_COPY6);
		if (mode & WRAP_VARY_SRC) {
			c = (__u32)counter++;
			*(__be32 *)(data + OFF6_SADDR_LO) = bpf_htonl(cfg.src_base + (c >> 16));
			*(__be16 *)(data + OFF6_SPORT) = bpf_htons((__u16)c);
		}
		return 0;
	}
	if (data + BENCH_HDR_COPY > data_end)
		return -1;
	__builtin_memcpy(data, cfg.tmpl, BENCH_HDR_COPY);
	if (!mode)
		return 0;
	c = (__u32)counter++;
	if (mode & (WRAP_SPREAD_DST | WRAP_SPREAD_SRC)) {
		__u32 n = cfg.spread_n ? cfg.spread_n : 1;
		__u32 idx = (mode & WRAP_SEQ) ? c % n : (c * 2654435761u) % n;
		__be32 a = bpf_htonl(cfg.spread_base + idx);

		*(__be32 *)(data + ((mode & WRAP_SPREAD_DST) ? OFF_DADDR : OFF_SADDR)) = a;
	}
	if (mode & WRAP_VARY_SRC) {
		*(__be32 *)(data + OFF_SADDR) = bpf_htonl(cfg.src_base + (c >> 16));
		*(__be16 *)(data + OFF_SPORT) = bpf_htons((__u16)c);
	}
	return 0;
}

/* svclb's lb4_reject turns a UDP datagram into an ICMP port unreachable of
 * REJECT_ICMP_LEN bytes, its head REJECT_ICMP_ROOM bytes earlier. */

SEC("xdp")
int bench_wrap_xdp(struct xdp_md *ctx)
{
	if (cfg.mode & WRAP_UNDO_ICMP) {
		void *data = (void *)(long)ctx->data;
		void *data_end = (void *)(long)ctx->data_end;

		/* exactly REJECT_ICMP_LEN bytes: grown by the program */
		if (data + REJECT_ICMP_LEN <= data_end && data + REJECT_ICMP_LEN + 1 > data_end &&
		    cfg.tmpl_len != REJECT_ICMP_LEN) {
			if (bpf_xdp_adjust_head(ctx, (int)REJECT_ICMP_ROOM))
				return XDP_ABORTED;
			if (bpf_xdp_adjust_tail(ctx, (int)cfg.tmpl_len - (int)(REJECT_ICMP_LEN -
									       REJECT_ICMP_ROOM)))
				return XDP_ABORTED;
		}
	}
	if (wrap_prepare((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		return XDP_ABORTED;
	bpf_tail_call(ctx, &wrap_xdp_target, 0);
	return XDP_ABORTED; /* no target: the driver sees a wrong verdict */
}

SEC("tc")
int bench_wrap_tc(struct __sk_buff *skb)
{
	if (wrap_prepare((void *)(long)skb->data, (void *)(long)skb->data_end))
		return TC_ACT_UNSPEC;
	bpf_tail_call(skb, &wrap_tc_target, 0);
	return TC_ACT_UNSPEC;
}
