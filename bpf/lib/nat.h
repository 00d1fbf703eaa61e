/* SPDX-License-Identifier: Apache-2.0 */
/* Address/port rewrites, one of each for tc and XDP (lib/ctx.h). The IP
 * header checksum is always updated by hand: an IPv4 header is never
 * CHECKSUM_PARTIAL and its sum is invariant, so a direct write is exact for
 * every skb. The L4 checksum follows ctx_csum_mode(): written directly
 * unless the skb is CHECKSUM_COMPLETE, where bpf_l4_csum_replace() also
 * updates skb->csum (XDP frames are always CSUM_FULL, so XDP programs carry
 * no helper call). Each returns 0 or -DROP_*. */
#ifndef SVCLB_BPF_NAT_H
#define SVCLB_BPF_NAT_H

#include "lib/ctx.h"
#include "lib/csum.h"
#include "lib/frag.h"
#include "lib/parse.h"

/* The L4 checksum after one address and one port changed, written
 * directly (any mode but CSUM_COMPLETE). CSUM_PARTIAL: the field holds the
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
static __always_inline int nat4_rewrite(struct __ctx_buff *ctx, const struct pkt4 *p, int dst,
					__be32 new_addr, __be16 new_port)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	__be32 old_addr = dst ? p->daddr : p->saddr;
	__be16 old_port = dst ? p->dport : p->sport;
	__u64 mangled0 = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	struct iphdr *ip = data + ETH_HLEN;
	int mode = ctx_csum_mode(ctx);
	__be16 *port, *check;

	if (p->frag == PKT_FRAG_LATER) /* no L4 header: addresses only */
		return frag4_rewrite_ip(ctx, dst ? p->saddr : new_addr, dst ? new_addr : p->daddr);
	/* The parser saw these bytes in the linear area; re-prove it for the
	 * verifier (packet pointers do not survive the call boundary). */
	if ((void *)(ip + 1) > data_end || p->l4_off > PARSE_MAX_HDR || p->csum_off > PARSE_MAX_HDR)
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
	if (mode != CSUM_COMPLETE) {
		l4_csum_direct(check, mode == CSUM_PARTIAL, p->proto, old_addr, new_addr, old_port,
			       new_port);
		return 0;
	}

	/* Helpers below invalidate packet pointers: nothing is read after. */
	if (ctx_l4_csum_replace(ctx, p->csum_off, old_addr, new_addr,
				BPF_F_PSEUDO_HDR | mangled0 | sizeof(new_addr)))
		return -DROP_CSUM;
	if (old_port != new_port &&
	    ctx_l4_csum_replace(ctx, p->csum_off, old_port, new_port, mangled0 | sizeof(new_port)))
		return -DROP_CSUM;
	return 0;
}

/* Both ends at once (source-NATed flows): the source becomes
 * new_saddr:new_sport and the destination new_daddr:new_dport. The TTL is
 * the forwarder's (ip4_dec_ttl). */
static __always_inline int nat4_rewrite_both(struct __ctx_buff *ctx, const struct pkt4 *p,
					     __be32 new_saddr, __be16 new_sport, __be32 new_daddr,
					     __be16 new_dport)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	__u64 mangled0 = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	struct iphdr *ip = data + ETH_HLEN;
	int mode = ctx_csum_mode(ctx);
	__be16 *ports, *check;
	__u32 sum;

	if (p->frag == PKT_FRAG_LATER) /* no L4 header: addresses only */
		return frag4_rewrite_ip(ctx, new_saddr, new_daddr);
	if ((void *)(ip + 1) > data_end || p->l4_off > PARSE_MAX_HDR || p->csum_off > PARSE_MAX_HDR)
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
	if (mode != CSUM_COMPLETE &&
	    (mode == CSUM_PARTIAL || !(p->proto == IPPROTO_UDP && *check == 0))) {
		__sum16 c;

		/* PARTIAL: the pseudo-header sum (addresses only), kept
		 * uncomplemented; else the full checksum. */
		sum = (__u16)(mode == CSUM_PARTIAL ? *check : ~*check);
		sum = csum_add32(sum, ~ip->saddr);
		sum = csum_add32(sum, new_saddr);
		sum = csum_add32(sum, ~ip->daddr);
		sum = csum_add32(sum, new_daddr);
		if (mode != CSUM_PARTIAL) {
			sum = csum_add32(sum, (__u16)~ports[0]);
			sum = csum_add32(sum, new_sport);
			sum = csum_add32(sum, (__u16)~ports[1]);
			sum = csum_add32(sum, new_dport);
		}
		c = csum_fold32(sum);
		if (mode == CSUM_PARTIAL)
			c = ~c;
		else if (p->proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*check = c;
	}
	ip->saddr = new_saddr;
	ip->daddr = new_daddr;
	ports[0] = new_sport;
	ports[1] = new_dport;
	if (mode != CSUM_COMPLETE)
		return 0;

	/* Helpers below invalidate packet pointers: nothing is read after. */
	if (ctx_l4_csum_replace(ctx, p->csum_off, p->saddr, new_saddr,
				BPF_F_PSEUDO_HDR | mangled0 | sizeof(new_saddr)) ||
	    ctx_l4_csum_replace(ctx, p->csum_off, p->daddr, new_daddr,
				BPF_F_PSEUDO_HDR | mangled0 | sizeof(new_daddr)) ||
	    ctx_l4_csum_replace(ctx, p->csum_off, p->sport, new_sport,
				mangled0 | sizeof(new_sport)) ||
	    ctx_l4_csum_replace(ctx, p->csum_off, p->dport, new_dport,
				mangled0 | sizeof(new_dport)))
		return -DROP_CSUM;
	return 0;
}

/* ---- IPv6 (issue 16) ----------------------------------------------------
 * No IP header checksum; the L4 checksum's pseudo-header holds the 16-byte
 * addresses: an address change is four 32-bit word changes. */

/* `sum` after the address `from` became `to` (accumulated in 64 bits and
 * folded once: no branch per word, lib/csum.h). */
static __always_inline __u32 csum_add_v6_change(__u32 sum, const struct v6addr *from,
						const struct v6addr *to)
{
	__u64 s = sum;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		s += (__u32)~from->w[i];
		s += to->w[i];
	}
	return csum_fold64(s);
}

/* nat4_rewrite for IPv6: dst != 0 rewrites the destination (DNAT), else
 * the source (reverse NAT). Returns 0 or -DROP_*. */
static __always_inline int nat6_rewrite(struct __ctx_buff *ctx, const struct pkt6 *p, int dst,
					struct v6addr new_addr, __be16 new_port)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	struct v6addr old_addr = dst ? p->daddr : p->saddr;
	__be16 old_port = dst ? p->dport : p->sport;
	__u64 mangled0 = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	int mode = ctx_csum_mode(ctx);
	__be16 *port, *check;
	__u32 sum;

	if (p->frag == PKT_FRAG_LATER) /* no L4 header: the address only */
		return frag6_rewrite_addr(ctx, dst, &new_addr);
	if ((void *)(ip6 + 1) > data_end || p->l4_off > PARSE6_MAX_HDR ||
	    p->csum_off > PARSE6_MAX_HDR)
		return -DROP_PULL;
	port = data + p->l4_off + (dst ? 2 : 0);
	check = data + p->csum_off;
	if ((void *)(port + 1) > data_end || (void *)(check + 1) > data_end)
		return -DROP_PULL;

	if (dst)
		__builtin_memcpy(&ip6->daddr, &new_addr, sizeof(new_addr));
	else
		__builtin_memcpy(&ip6->saddr, &new_addr, sizeof(new_addr));
	*port = new_port;
	if (mode == CSUM_PARTIAL) {
		/* the uncomplemented pseudo-header sum: addresses only */
		sum = csum_add_v6_change((__u16)*check, &old_addr, &new_addr);
		*check = ~csum_fold32(sum);
		return 0;
	}
	if (mode == CSUM_FULL) {
		__sum16 c;

		if (p->proto == IPPROTO_UDP && *check == 0)
			return 0;
		sum = csum_add_v6_change((__u16) ~*check, &old_addr, &new_addr);
		sum = csum_add32(sum, (__u16)~old_port);
		sum = csum_add32(sum, new_port);
		c = csum_fold32(sum);
		if (p->proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*check = c;
		return 0;
	}

	/* CSUM_COMPLETE: the helper applies the address words' difference to
	 * the checksum and to skb->csum. Nothing is read after. */
	sum = csum_add_v6_change(0, &old_addr, &new_addr);
	if (ctx_l4_csum_replace(ctx, p->csum_off, 0, sum, BPF_F_PSEUDO_HDR | mangled0))
		return -DROP_CSUM;
	if (old_port != new_port &&
	    ctx_l4_csum_replace(ctx, p->csum_off, old_port, new_port, mangled0 | sizeof(new_port)))
		return -DROP_CSUM;
	return 0;
}

/* nat4_rewrite_both for IPv6 (source-NATed flows): the source becomes
 * new_saddr:new_sport and the destination new_daddr:new_dport. The hop
 * limit is the forwarder's (ip6_dec_ttl). Returns 0 or -DROP_*. */
static __always_inline int nat6_rewrite_both(struct __ctx_buff *ctx, const struct pkt6 *p,
					     struct v6addr new_saddr, __be16 new_sport,
					     struct v6addr new_daddr, __be16 new_dport)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	__u64 mangled0 = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	int mode = ctx_csum_mode(ctx);
	__be16 *ports, *check;
	__u32 sum;

	if (p->frag == PKT_FRAG_LATER) { /* no L4 header: addresses only */
		int ret = frag6_rewrite_addr(ctx, 0, &new_saddr);

		return ret ? ret : frag6_rewrite_addr(ctx, 1, &new_daddr);
	}
	if ((void *)(ip6 + 1) > data_end || p->l4_off > PARSE6_MAX_HDR ||
	    p->csum_off > PARSE6_MAX_HDR)
		return -DROP_PULL;
	ports = data + p->l4_off;
	check = data + p->csum_off;
	if ((void *)(ports + 2) > data_end || (void *)(check + 1) > data_end)
		return -DROP_PULL;

	if (mode != CSUM_COMPLETE &&
	    (mode == CSUM_PARTIAL || !(p->proto == IPPROTO_UDP && *check == 0))) {
		__sum16 c;

		/* PARTIAL: the pseudo-header sum (addresses only), kept
		 * uncomplemented; else the full checksum. */
		sum = (__u16)(mode == CSUM_PARTIAL ? *check : ~*check);
		sum = csum_add_v6_change(sum, &p->saddr, &new_saddr);
		sum = csum_add_v6_change(sum, &p->daddr, &new_daddr);
		if (mode != CSUM_PARTIAL) {
			sum = csum_add32(sum, (__u16)~ports[0]);
			sum = csum_add32(sum, new_sport);
			sum = csum_add32(sum, (__u16)~ports[1]);
			sum = csum_add32(sum, new_dport);
		}
		c = csum_fold32(sum);
		if (mode == CSUM_PARTIAL)
			c = ~c;
		else if (p->proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*check = c;
	}
	__builtin_memcpy(&ip6->saddr, &new_saddr, sizeof(new_saddr));
	__builtin_memcpy(&ip6->daddr, &new_daddr, sizeof(new_daddr));
	ports[0] = new_sport;
	ports[1] = new_dport;
	if (mode != CSUM_COMPLETE)
		return 0;

	/* CSUM_COMPLETE: the address words' difference and the ports through
	 * the helper (also updates skb->csum). Nothing is read after. */
	sum = csum_add_v6_change(0, &p->saddr, &new_saddr);
	sum = csum_add_v6_change(sum, &p->daddr, &new_daddr);
	if (ctx_l4_csum_replace(ctx, p->csum_off, 0, sum, BPF_F_PSEUDO_HDR | mangled0) ||
	    ctx_l4_csum_replace(ctx, p->csum_off, p->sport, new_sport,
				mangled0 | sizeof(new_sport)) ||
	    ctx_l4_csum_replace(ctx, p->csum_off, p->dport, new_dport,
				mangled0 | sizeof(new_dport)))
		return -DROP_CSUM;
	return 0;
}

#endif
