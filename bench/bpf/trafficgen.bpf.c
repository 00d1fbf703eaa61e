/* SPDX-License-Identifier: Apache-2.0 */
/* svclb-trafficgen's XDP program, run by BPF_PROG_TEST_RUN in live-frames
 * mode (BPF_F_TEST_XDP_LIVE_FRAMES): every run of it is one frame sent out
 * of cfg.ifindex by XDP_REDIRECT. Per-flow variation: the source port (and
 * for new-flow mode the low source address bits) come from a counter. In
 * live-frames mode the kernel resets only the frame pointers between runs,
 * never the bytes, and a page comes back from the receiver as the receiver
 * left it (a forwarding node rewrites the MACs and the TTL in place): so
 * the headers are restored from the template on every run.
 * Checksums (IPv4 header, and the L4 one unless it is 0 = "none" for UDP)
 * are updated incrementally from the bytes in the frame. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bench/bpf/bench_abi.h"
#include "lib/csum.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the driver before load. Not `const volatile`: clang folds a copy
 * out of a const object with an all-zero initializer into zeros (the
 * headers went out as zeros), so the config lives in .bss. */
struct tgen_cfg cfg = {};
__u64 counter = 0;

SEC("xdp")
int tgen_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__be16 *sport = data + ETH_HLEN + sizeof(*ip);
	__sum16 *l4check;
	__u32 c = (__u32)__sync_fetch_and_add(&counter, 1);
	__u32 flows = cfg.flows ? cfg.flows : 1;
	__be16 old_port, new_port;

	if (data + BENCH_TMPL_SIZE > data_end)
		return XDP_DROP;
	__builtin_memcpy(data, (const void *)cfg.tmpl, BENCH_HDR_COPY);
	/* UDP checksum field at +6, TCP at +16 of the L4 header */
	l4check = (void *)sport + (ip->protocol == IPPROTO_UDP ? 6 : 16);
	old_port = *sport;
	if (cfg.new_flow) {
		/* 2^16 ports x 2^8 source addresses before a tuple repeats */
		__be32 old_addr = ip->saddr, new_addr;

		((__u8 *)&ip->saddr)[3] = (__u8)(c >> 16);
		new_addr = ip->saddr;
		ip->check = csum_replace4(ip->check, old_addr, new_addr);
		if (*l4check)
			*l4check = csum_replace4(*l4check, old_addr, new_addr);
		new_port = bpf_htons(cfg.sport_base + (__u16)c);
	} else {
		new_port = bpf_htons(cfg.sport_base + (__u16)(c % flows));
	}
	*sport = new_port;
	if (*l4check)
		*l4check = csum_replace2(*l4check, old_port, new_port);
	return bpf_redirect(cfg.ifindex, 0);
}
