/* SPDX-License-Identifier: Apache-2.0 */
/* Address/port rewrites. The IP header checksum is always updated by hand:
 * an IPv4 header is never CHECKSUM_PARTIAL and its sum is invariant, so a
 * direct write is exact for every skb. The L4 checksum differs:
 *  - tc: the skb may be CHECKSUM_PARTIAL (locally generated, veth) where the
 *    field holds only the pseudo-header sum (addresses enter it, ports do
 *    not), or CHECKSUM_COMPLETE where skb->csum must follow the
 *    pseudo-header change. The tc path reads ip_summed (skb_ip_summed) and
 *    writes the field directly for NONE, UNNECESSARY and PARTIAL; only
 *    COMPLETE goes through bpf_l4_csum_replace() (which can update
 *    skb->csum). Helper calls cost 2-3x direct writes on this kernel.
 *  - XDP: frames are raw and carry a full checksum: direct update.
 * Each returns 0 or -DROP_*. */
#ifndef SVCLB_BPF_NAT_H
#define SVCLB_BPF_NAT_H

#include <bpf/bpf_core_read.h>

#include "lib/csum.h"
#include "lib/maps.h"
#include "lib/parse.h"

/* The skb's checksum state, read from the kernel's own sk_buff:
 * bpf_cast_to_kern_ctx() is a kfunc the verifier replaces by a register
 * move, and CO-RE finds the ip_summed bitfield in this kernel's layout. */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

struct sk_buff___svclb {
	__u8 ip_summed : 2;
} __attribute__((preserve_access_index));

#define SKB_CHECKSUM_NONE 0
#define SKB_CHECKSUM_UNNECESSARY 1
#define SKB_CHECKSUM_COMPLETE 2
#define SKB_CHECKSUM_PARTIAL 3

static __always_inline int skb_ip_summed(struct __sk_buff *skb)
{
	struct sk_buff___svclb *k = bpf_cast_to_kern_ctx(skb);

	if (cfg_tc_csum_helpers)
		return SKB_CHECKSUM_COMPLETE;
	return (int)BPF_CORE_READ_BITFIELD(k, ip_summed);
}

/* The L4 checksum after one address and one port changed, written
 * directly (any ip_summed but COMPLETE). PARTIAL: the field holds the
 * uncomplemented pseudo-header sum, which the address enters and the port
 * does not. Otherwise a full checksum (UDP 0 = none stays 0; a computed 0
 * is sent as 0xffff). */
static __always_inline void l4_csum_direct(__sum16 *check, int partial, __u8 proto, __be32 old_addr,
					   __be32 new_addr, __be16 old_port, __be16 new_port)
{
	__sum16 c;

	if (partial) {
		*check = ~csum_replace4(~*check, old_addr, new_addr);
		return;
	}
	if (proto == IPPROTO_UDP && *check == 0)
		return;
	c = csum_replace4(*check, old_addr, new_addr);
	c = csum_replace2(c, old_port, new_port);
	if (proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	*check = c;
}

/* dst != 0: rewrite destination (DNAT); else source (reverse NAT). */
static __always_inline int nat4_rewrite_tc(struct __sk_buff *skb, const struct pkt4 *p, int dst,
					   __be32 new_addr, __be16 new_port)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__be32 old_addr = dst ? p->daddr : p->saddr;
	__be16 old_port = dst ? p->dport : p->sport;
	__u64 mangled0 = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	struct iphdr *ip = data + ETH_HLEN;
	int summed = skb_ip_summed(skb);
	__be16 *port, *check;

	/* The parser saw these bytes in the linear area; re-prove it for the
	 * verifier (packet pointers do not survive the call boundary). */
	if ((void *)(ip + 1) > data_end || p->l4_off > PARSE_MAX_HDR ||
	    p->csum_off > PARSE_MAX_HDR)
		return -DROP_PULL;
	port = data + p->l4_off + (dst ? 2 : 0);
	check = data + p->csum_off;
	if ((void *)(port + 1) > data_end || (void *)(check + 1) > data_end)
		return -DROP_PULL;

	if (dst)
		ip->daddr = new_addr;
	else
		ip->saddr = new_addr;
	ip->check = csum_replace4(ip->check, old_addr, new_addr);
	*port = new_port;
	if (summed != SKB_CHECKSUM_COMPLETE) {
		l4_csum_direct(check, summed == SKB_CHECKSUM_PARTIAL, p->proto, old_addr, new_addr,
			       old_port, new_port);
		return 0;
	}

	/* Helpers below invalidate packet pointers: nothing is read after. */
	if (bpf_l4_csum_replace(skb, p->csum_off, old_addr, new_addr,
				BPF_F_PSEUDO_HDR | mangled0 | sizeof(new_addr)))
		return -DROP_CSUM;
	if (old_port != new_port &&
	    bpf_l4_csum_replace(skb, p->csum_off, old_port, new_port, mangled0 | sizeof(new_port)))
		return -DROP_CSUM;
	return 0;
}

static __always_inline int nat4_rewrite_xdp(struct xdp_md *ctx, const struct pkt4 *p, int dst,
					    __be32 new_addr, __be16 new_port)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__be32 old_addr = dst ? p->daddr : p->saddr;
	__be16 old_port = dst ? p->dport : p->sport;
	struct iphdr *ip = data + ETH_HLEN;
	__be16 *port, *check;

	if ((void *)(ip + 1) > data_end || p->l4_off > PARSE_MAX_HDR ||
	    p->csum_off > PARSE_MAX_HDR)
		return -DROP_PULL;
	port = data + p->l4_off + (dst ? 2 : 0);
	check = data + p->csum_off;
	if ((void *)(port + 1) > data_end || (void *)(check + 1) > data_end)
		return -DROP_PULL;

	if (dst)
		ip->daddr = new_addr;
	else
		ip->saddr = new_addr;
	ip->check = csum_replace4(ip->check, old_addr, new_addr);
	*port = new_port;
	/* A raw frame always carries a full checksum (RFC 768 for UDP 0). */
	l4_csum_direct(check, 0, p->proto, old_addr, new_addr, old_port, new_port);
	return 0;
}

/* Both ends at once (source-NATed flows): the source becomes
 * new_saddr:new_sport and the destination new_daddr:new_dport, and the TTL
 * drops by one (the node forwards these frames itself). The caller has
 * checked ttl > 1. */
static __always_inline int nat4_rewrite_xdp_both(struct xdp_md *ctx, const struct pkt4 *p,
						 __be32 new_saddr, __be16 new_sport,
						 __be32 new_daddr, __be16 new_dport)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__be16 *ports, *check;
	__u32 sum;

	if ((void *)(ip + 1) > data_end || p->l4_off > PARSE_MAX_HDR ||
	    p->csum_off > PARSE_MAX_HDR)
		return -DROP_PULL;
	ports = data + p->l4_off;
	check = data + p->csum_off;
	if ((void *)(ports + 2) > data_end || (void *)(check + 1) > data_end)
		return -DROP_PULL;

	/* IP header: two addresses and the TTL. */
	sum = (__u16)~ip->check;
	sum = csum_add32(sum, ~ip->saddr);
	sum = csum_add32(sum, new_saddr);
	sum = csum_add32(sum, ~ip->daddr);
	sum = csum_add32(sum, new_daddr);
	sum = csum_add32(sum, (__u16)~bpf_htons(0x0100)); /* ttl is the high byte */
	ip->ttl--;
	ip->check = csum_fold32(sum);

	if (!(p->proto == IPPROTO_UDP && *check == 0)) {
		__sum16 c;

		sum = (__u16)~*check;
		sum = csum_add32(sum, ~ip->saddr);
		sum = csum_add32(sum, new_saddr);
		sum = csum_add32(sum, ~ip->daddr);
		sum = csum_add32(sum, new_daddr);
		sum = csum_add32(sum, (__u16)~ports[0]);
		sum = csum_add32(sum, new_sport);
		sum = csum_add32(sum, (__u16)~ports[1]);
		sum = csum_add32(sum, new_dport);
		c = csum_fold32(sum);
		if (p->proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*check = c;
	}
	ip->saddr = new_saddr;
	ip->daddr = new_daddr;
	ports[0] = new_sport;
	ports[1] = new_dport;
	return 0;
}

/* tc twin of nat4_rewrite_xdp_both, without the TTL (tc_forward does it).
 * The L4 checksum as in nat4_rewrite_tc: direct unless CHECKSUM_COMPLETE. */
static __always_inline int nat4_rewrite_tc_both(struct __sk_buff *skb, const struct pkt4 *p,
						__be32 new_saddr, __be16 new_sport,
						__be32 new_daddr, __be16 new_dport)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u64 mangled0 = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	struct iphdr *ip = data + ETH_HLEN;
	int summed = skb_ip_summed(skb);
	__be16 *ports, *check;
	__u32 sum;

	if ((void *)(ip + 1) > data_end || p->l4_off > PARSE_MAX_HDR ||
	    p->csum_off > PARSE_MAX_HDR)
		return -DROP_PULL;
	ports = data + p->l4_off;
	check = data + p->csum_off;
	if ((void *)(ports + 2) > data_end || (void *)(check + 1) > data_end)
		return -DROP_PULL;

	sum = (__u16)~ip->check;
	sum = csum_add32(sum, ~ip->saddr);
	sum = csum_add32(sum, new_saddr);
	sum = csum_add32(sum, ~ip->daddr);
	sum = csum_add32(sum, new_daddr);
	ip->check = csum_fold32(sum);
	if (summed != SKB_CHECKSUM_COMPLETE &&
	    (summed == SKB_CHECKSUM_PARTIAL || !(p->proto == IPPROTO_UDP && *check == 0))) {
		__sum16 c;

		/* PARTIAL: the pseudo-header sum (addresses only), kept
		 * uncomplemented; else the full checksum. */
		sum = (__u16)(summed == SKB_CHECKSUM_PARTIAL ? *check : ~*check);
		sum = csum_add32(sum, ~ip->saddr);
		sum = csum_add32(sum, new_saddr);
		sum = csum_add32(sum, ~ip->daddr);
		sum = csum_add32(sum, new_daddr);
		if (summed != SKB_CHECKSUM_PARTIAL) {
			sum = csum_add32(sum, (__u16)~ports[0]);
			sum = csum_add32(sum, new_sport);
			sum = csum_add32(sum, (__u16)~ports[1]);
			sum = csum_add32(sum, new_dport);
		}
		c = csum_fold32(sum);
		if (summed == SKB_CHECKSUM_PARTIAL)
			c = ~c;
		else if (p->proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*check = c;
	}
	ip->saddr = new_saddr;
	ip->daddr = new_daddr;
	ports[0] = new_sport;
	ports[1] = new_dport;
	if (summed != SKB_CHECKSUM_COMPLETE)
		return 0;

	/* Helpers below invalidate packet pointers: nothing is read after. */
	if (bpf_l4_csum_replace(skb, p->csum_off, p->saddr, new_saddr,
				BPF_F_PSEUDO_HDR | mangled0 | sizeof(new_saddr)) ||
	    bpf_l4_csum_replace(skb, p->csum_off, p->daddr, new_daddr,
				BPF_F_PSEUDO_HDR | mangled0 | sizeof(new_daddr)) ||
	    bpf_l4_csum_replace(skb, p->csum_off, p->sport, new_sport, mangled0 | sizeof(new_sport)) ||
	    bpf_l4_csum_replace(skb, p->csum_off, p->dport, new_dport, mangled0 | sizeof(new_dport)))
		return -DROP_CSUM;
	return 0;
}

/* Decrements the TTL of the IPv4 header at ETH_HLEN (the caller forwards the
 * packet itself). Returns 0, or -DROP_TTL when it was <= 1. */
static __always_inline int ip4_dec_ttl(void *data, void *data_end)
{
	struct iphdr *ip = data + ETH_HLEN;
	__u32 sum;

	if ((void *)(ip + 1) > data_end)
		return -DROP_PULL;
	if (ip->ttl <= 1)
		return -DROP_TTL;
	sum = (__u16)~ip->check;
	sum = csum_add32(sum, (__u16)~bpf_htons(0x0100)); /* ttl is the high byte */
	ip->ttl--;
	ip->check = csum_fold32(sum);
	return 0;
}

#endif
