/* SPDX-License-Identifier: Apache-2.0 */
/* L2 announcements: ARP answers (IPv4, l2_arp_v1) and Neighbor
 * Advertisements (IPv6, l2_ndp_v1) for the LoadBalancer/externalIP
 * addresses this node announces on a NIC; the daemon writes both maps. */
#ifndef SVCLB_BPF_L2_H
#define SVCLB_BPF_L2_H

#include "lib/ctx.h"
#include "lib/maps.h"
#include "lib/reject.h" /* csum_words, csum_finish, csum_v6_pseudo */

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
#define ARPOP_REPLY_BE	 bpf_htons(2)

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
	if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != ETH_ALEN || arp->plen != 4 || arp->op != ARPOP_REQUEST_BE)
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

/* ---- IPv6: Neighbor Discovery (RFC 4861) ---- */

#define NDP_NS		   135
#define NDP_NA		   136
#define NDP_OPT_SLLA	   1
#define NDP_OPT_TLLA	   2
#define NDP_NA_F_SOLICITED 0x40
#define NDP_NA_F_OVERRIDE  0x20
#define NDP_HOP_LIMIT	   255
/* ICMPv6 bytes of an NS: type, code, checksum, reserved, target (24), then
 * options. An NS longer than NDP_NS_MAX (a power of two: it masks offsets
 * for the verifier) is left to the stack: a plain NS is 24 bytes, 32 with
 * its Source Link-Layer Address option, 40 with a nonce (RFC 7527) too;
 * only SEND's (RFC 3971) signatures are longer. */
#define NDP_NS_MIN    24
#define NDP_NS_MAX    64
#define NDP_NA_LEN    32 /* the NA (24) and its Target Link-Layer Address option (8) */
#define NDP_FRAME_LEN (ETH_HLEN + sizeof(struct ipv6hdr) + NDP_NA_LEN) /* 86 */

/* The answer's IPv6 header and ICMPv6 message, built on the stack. */
struct ndp_na {
	struct ipv6hdr ip6;
	__u8 type;
	__u8 code;
	__sum16 check;
	__u8 flags; /* R S O and 5 reserved bits */
	__u8 reserved[3];
	struct v6addr target;
	__u8 opt_type;
	__u8 opt_len; /* in units of 8 bytes */
	__u8 opt_mac[ETH_ALEN];
};
_Static_assert(sizeof(struct ndp_na) == sizeof(struct ipv6hdr) + NDP_NA_LEN, "ndp_na layout");

static __always_inline int ndp_addr_unspecified(const struct v6addr *a)
{
	return !(a->w[0] | a->w[1] | a->w[2] | a->w[3]);
}

/* ff02::1:ffXX:XXXX (RFC 4291 2.7.1): where a DAD probe must be sent. */
static __always_inline int ndp_addr_solicited_node(const struct v6addr *a)
{
	return a->w[0] == bpf_htonl(0xff020000) && a->w[1] == 0 && a->w[2] == bpf_htonl(1) &&
	       (a->w[3] & bpf_htonl(0xff000000)) == bpf_htonl(0xff000000);
}

/* L2 announcement for IPv6: turns a Neighbor Solicitation for an address
 * in l2_ndp_v1 on this NIC into the Neighbor Advertisement that answers it,
 * in place (the caller sends it back out of the NIC).
 *
 * The NS must pass RFC 4861 7.1.1's validity checks: hop limit 255, ICMPv6
 * checksum, code 0, at least 24 bytes, target not multicast, every option
 * of non-zero length and the options filling the message exactly (as
 * Linux's ndisc_parse_options), and if the source is unspecified (a DAD
 * probe) a solicited-node multicast destination and no Source Link-Layer
 * Address option. The ICMPv6 header must follow the IPv6 header directly
 * (an NS carries no extension headers in practice; one that does is left
 * to the stack).
 *
 * The NA (RFC 4861 7.2.4, 4.4), as Linux's ndisc_send_na writes it for an
 * address of its own: IPv6 source the target, hop limit 255, Override set
 * (the address is not anycast), Router clear, the Target Link-Layer Address
 * option with the map's MAC, which is also the Ethernet source. Answered to
 * the NS's source (Ethernet: the asker's MAC, the frame's source) with
 * Solicited set; a DAD probe (source ::) is answered as 7.2.4 says, to
 * ff02::1 (33:33:00:00:00:01) with Solicited clear: the address is in use
 * here, and the prober's DAD must fail rather than let a second host take
 * the LoadBalancer IP. The frame becomes NDP_FRAME_LEN bytes whatever the
 * NS's length (its options are not echoed).
 *
 * Callers: svclb_xdp_lb6 and svclb_tc_ext_in6 for the IPv6 frames their
 * parse did not take (an NS is never a Service's packet). A global function (verified on its
 * own, its frame, with the NS copy, beside the caller's): one per hook,
 * CTX_GLOBAL(ndp_answer).
 *
 * Returns 1 if the frame is the NA, 0 if it is untouched (not an NS for
 * an address announced here, or not valid), -DROP_CSUM if it was resized
 * but the NA could not be written (the caller drops it). */
__noinline int CTX_GLOBAL(ndp_answer)(struct __ctx_buff *ctx)
{
	__u64 msg[NDP_NS_MAX / 8] = {}; /* the NS's ICMPv6 message, zero-padded */
	const __u8 *m = (const __u8 *)msg;
	struct v6addr saddr, daddr;
	struct l2_ndp_key k = {};
	struct l2_arp_value *val;
	struct ipv6hdr *ip6;
	struct ethhdr eth;
	struct ndp_na na;
	void *data, *data_end;
	__u32 plen, off, sum;
	int dad, i;

	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	if (data + ETH_HLEN > data_end || ((struct ethhdr *)data)->h_proto != bpf_htons(ETH_P_IPV6))
		return 0;
	if (data + ETH_HLEN + sizeof(*ip6) > data_end) {
		if (ctx_pull(ctx, ETH_HLEN + sizeof(*ip6)))
			return 0;
		data = ctx_data(ctx);
		data_end = ctx_data_end(ctx);
		if (data + ETH_HLEN + sizeof(*ip6) > data_end)
			return 0;
	}
	ip6 = data + ETH_HLEN;
	if (ip6->version != 6 || ip6->nexthdr != IPPROTO_ICMPV6 || ip6->hop_limit != NDP_HOP_LIMIT)
		return 0;
	plen = bpf_ntohs(ip6->payload_len);
	if (plen < NDP_NS_MIN || plen > NDP_NS_MAX ||
	    ETH_HLEN + sizeof(*ip6) + plen > ctx_full_len(ctx))
		return 0;
	__builtin_memcpy(&saddr, &ip6->saddr, sizeof(saddr));
	__builtin_memcpy(&daddr, &ip6->daddr, sizeof(daddr));
	__builtin_memcpy(eth.h_dest, ((struct ethhdr *)data)->h_source, ETH_ALEN);
	if (ctx_load_bytes(ctx, ETH_HLEN + sizeof(*ip6), msg, plen))
		return 0;
	if (m[0] != NDP_NS || m[1] != 0 || m[8] == 0xff /* multicast target */)
		return 0;
	if ((saddr.w[0] & bpf_htonl(0xff000000)) == bpf_htonl(0xff000000))
		return 0; /* multicast source (RFC 4291 2.7) */
	dad = ndp_addr_unspecified(&saddr);
	if (dad && !ndp_addr_solicited_node(&daddr))
		return 0;
	off = NDP_NS_MIN;
	for (i = 0; i < (NDP_NS_MAX - NDP_NS_MIN) / 8; i++) {
		__u8 type, len8;

		if (off >= plen)
			break;
		if (off + 2 > plen)
			return 0;
		type = m[off & (NDP_NS_MAX - 1)];
		len8 = m[(off + 1) & (NDP_NS_MAX - 1)];
		if (len8 == 0 || (dad && type == NDP_OPT_SLLA))
			return 0;
		off += (__u32)len8 * 8;
	}
	if (off != plen)
		return 0; /* an option runs past the message */
	sum = csum_words((const __u16 *)&saddr, 8, 0);
	sum = csum_words((const __u16 *)&daddr, 8, sum);
	sum += bpf_htons((__u16)plen) + bpf_htons(IPPROTO_ICMPV6);
	sum = csum_words((const __u16 *)msg, NDP_NS_MAX / 2, sum);
	if (csum_finish(sum) != 0)
		return 0;

	__builtin_memcpy(&k.addr, m + 8, sizeof(k.addr));
	k.ifindex = ctx_ingress_ifindex(ctx);
	val = bpf_map_lookup_elem(&l2_ndp_v1, &k);
	if (!val)
		return 0;

	if (dad) {
		/* 33:33 + the low 32 bits of ff02::1 (RFC 2464 7) */
		eth.h_dest[0] = 0x33;
		eth.h_dest[1] = 0x33;
		eth.h_dest[2] = 0;
		eth.h_dest[3] = 0;
		eth.h_dest[4] = 0;
		eth.h_dest[5] = 1;
		daddr.w[0] = bpf_htonl(0xff020000);
		daddr.w[1] = 0;
		daddr.w[2] = 0;
		daddr.w[3] = bpf_htonl(1);
	} else {
		daddr = saddr;
	}
	__builtin_memcpy(eth.h_source, val->mac, ETH_ALEN);
	eth.h_proto = bpf_htons(ETH_P_IPV6);
	ip6_reply_header(&na.ip6, &k.addr, &daddr, IPPROTO_ICMPV6, NDP_NA_LEN);
	na.ip6.hop_limit = NDP_HOP_LIMIT;
	na.type = NDP_NA;
	na.code = 0;
	na.check = 0;
	na.flags = dad ? NDP_NA_F_OVERRIDE : NDP_NA_F_SOLICITED | NDP_NA_F_OVERRIDE;
	na.reserved[0] = 0;
	na.reserved[1] = 0;
	na.reserved[2] = 0;
	na.target = k.addr;
	na.opt_type = NDP_OPT_TLLA;
	na.opt_len = 1;
	__builtin_memcpy(na.opt_mac, val->mac, ETH_ALEN);
	sum = csum_v6_pseudo(&na.ip6, NDP_NA_LEN, IPPROTO_ICMPV6);
	sum = csum_words((const __u16 *)&na.type, NDP_NA_LEN / 2, sum);
	na.check = csum_finish(sum);

	if (ctx_full_len(ctx) != NDP_FRAME_LEN && ctx_set_len(ctx, NDP_FRAME_LEN))
		return 0; /* nothing written yet */
	if (ctx_store_bytes(ctx, 0, &eth, ETH_HLEN, 0) ||
	    ctx_store_bytes(ctx, ETH_HLEN, &na, sizeof(na), 1))
		return -DROP_CSUM;
	return 1;
}

#endif
