/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4 and IPv6 TCP/UDP header parsing shared by XDP and tc. */
#ifndef SVCLB_BPF_PARSE_H
#define SVCLB_BPF_PARSE_H

#include "lib/common.h"
#include <linux/ipv6.h>

/* Offsets are from the start of the frame (Ethernet header). */
struct pkt4 {
	__u32 l3_off;
	__u32 l4_off;
	__u32 csum_off; /* the L4 checksum field */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u16 tot_len; /* IP total length, host order */
	__u8 proto;
	__u8 tcp_flags; /* TCP flag byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10); 0 for UDP */
	__u8 frag;	/* PKT_FRAG_*: an IP fragment (lib/frag.h) */
	__u8 pad;
	__be16 ip_id; /* IP identification; set for fragments only */
};

/* pkt4.frag */
#define PKT_FRAG_NONE  0
#define PKT_FRAG_FIRST 1 /* MF set, offset 0: carries the L4 header */
#define PKT_FRAG_LATER 2 /* offset != 0: no L4 header, ports from frag_v1 */

#define PARSE_OK       0
#define PARSE_NOT_OURS 1 /* not IPv4 TCP/UDP, or malformed */
#define PARSE_SHORT    2 /* headers extend past the linear data */
#define PARSE_FRAG     3 /* a later fragment: IP fields set, no ports (lib/frag.h) */

/* Largest header prefix the parser needs: Ethernet + IPv4 with options + TCP */
#define PARSE_MAX_HDR (ETH_HLEN + 60 + sizeof(struct tcphdr))

/* Parses an Ethernet/IPv4/{TCP,UDP} frame. frame_len is the full length of
 * the frame (which can exceed data_end - data when the skb is non-linear).
 * Returns PARSE_OK, PARSE_NOT_OURS, PARSE_SHORT or PARSE_FRAG. A packet we
 * do not handle (other protocols, bad IHL or total length, TCP data offset
 * < 5) is NOT_OURS: the caller passes it untouched. A first fragment is
 * parsed as any packet (p->frag = PKT_FRAG_FIRST); a later one (offset != 0)
 * is PARSE_FRAG with everything but the ports, tcp_flags and csum_off set
 * (p->frag = PKT_FRAG_LATER): lib/frag.h finds its ports. */
static __always_inline int parse_ipv4(void *data, void *data_end, __u32 frame_len, struct pkt4 *p)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl_len;

	if ((void *)(eth + 1) > data_end)
		return frame_len >= ETH_HLEN ? PARSE_SHORT : PARSE_NOT_OURS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PARSE_NOT_OURS;

	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return frame_len >= ETH_HLEN + sizeof(*ip) ? PARSE_SHORT : PARSE_NOT_OURS;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_NOT_OURS;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return PARSE_NOT_OURS;

	ihl_len = (__u32)ip->ihl * 4;
	p->tot_len = bpf_ntohs(ip->tot_len);
	/* Fragments (lib/frag.h); rare, the common path pays this one test. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		p->ip_id = ip->id;
		p->frag = PKT_FRAG_FIRST;
		if (ip->frag_off & bpf_htons(IP_OFFSET)) {
			if (p->tot_len <= ihl_len || (__u32)p->tot_len + ETH_HLEN > frame_len)
				return PARSE_NOT_OURS;
			p->frag = PKT_FRAG_LATER;
			p->l3_off = ETH_HLEN;
			p->l4_off = ETH_HLEN + ihl_len;
			p->saddr = ip->saddr;
			p->daddr = ip->daddr;
			p->proto = ip->protocol;
			return PARSE_FRAG;
		}
	}
	if (p->tot_len < ihl_len + sizeof(struct udphdr) ||
	    (__u32)p->tot_len + ETH_HLEN > frame_len)
		return PARSE_NOT_OURS;

	p->l3_off = ETH_HLEN;
	p->l4_off = ETH_HLEN + ihl_len;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)ip + ihl_len;

		if (p->tot_len < ihl_len + sizeof(*tcp))
			return PARSE_NOT_OURS;
		if ((void *)(tcp + 1) > data_end)
			return PARSE_SHORT;
		if (tcp->doff < 5)
			return PARSE_NOT_OURS;
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
		p->csum_off = p->l4_off + offsetof(struct tcphdr, check);
	} else {
		struct udphdr *udp = (void *)ip + ihl_len;

		if ((void *)(udp + 1) > data_end)
			return PARSE_SHORT;
		p->sport = udp->source;
		p->dport = udp->dest;
		p->csum_off = p->l4_off + offsetof(struct udphdr, check);
	}
	return PARSE_OK;
}

/* ---- IPv6 (issue 16) ---------------------------------------------------- */

/* Offsets are from the start of the frame, as in pkt4. */
struct pkt6 {
	__u32 l3_off;
	__u32 l4_off;
	__u32 csum_off; /* the L4 checksum field */
	struct v6addr saddr;
	struct v6addr daddr;
	__be16 sport;
	__be16 dport;
	__u16 tot_len; /* the IPv6 packet's length (header + payload), host order */
	__u8 proto;
	__u8 tcp_flags;
	__u8 frag; /* PKT_FRAG_*, as pkt4's (lib/frag.h) */
	__u8 pad;
	__be32 ip_id; /* the fragment header's identification; fragments only */
};

static __always_inline int v6_equal(const struct v6addr *a, const struct v6addr *b)
{
	return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
		(a->w[3] ^ b->w[3])) == 0;
}

#ifndef NEXTHDR_HOP
#define NEXTHDR_HOP	 0
#define NEXTHDR_ROUTING	 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH	 51
#define NEXTHDR_DEST	 60
#endif

/* Extension headers walked to reach the L4 header (hop-by-hop, routing,
 * destination options, fragment, AH); a packet with more is not ours. */
#define PARSE6_MAX_EXT 4
/* Largest header prefix the IPv6 parser reads: what tc pulls into the
 * linear area (extension headers past it: not ours). */
#define PARSE6_MAX_HDR 256

/* Parses an Ethernet/IPv6/[extension headers]/{TCP,UDP} frame, as
 * parse_ipv4 does (same return values). A fragment (a fragment header with
 * offset != 0 or M set) whose next header is TCP or UDP is parsed as
 * parse_ipv4 parses one: the first (offset 0, M set) as any packet with
 * p->frag = PKT_FRAG_FIRST, a later one (offset != 0) as PARSE_FRAG with
 * everything but the ports, tcp_flags and csum_off (PKT_FRAG_LATER;
 * lib/frag.h finds its ports); p->ip_id is the header's identification.
 * NOT_OURS, passed untouched: a fragment of anything else (another
 * extension header after the fragment header included), ESP,
 * no-next-header, ICMPv6 (neighbour discovery included), a jumbogram
 * (payload length 0), more than PARSE6_MAX_EXT extension headers. An atomic
 * fragment header (offset 0, M clear) is walked over. */
static __always_inline int parse_ipv6(void *data, void *data_end, __u32 frame_len, struct pkt6 *p)
{
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	__u32 off = ETH_HLEN + sizeof(struct ipv6hdr);
	__u32 payload;
	__u8 nh;

	if ((void *)(eth + 1) > data_end)
		return frame_len >= ETH_HLEN ? PARSE_SHORT : PARSE_NOT_OURS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return PARSE_NOT_OURS;
	ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end)
		return frame_len >= off ? PARSE_SHORT : PARSE_NOT_OURS;
	if (ip6->version != 6)
		return PARSE_NOT_OURS;
	payload = bpf_ntohs(ip6->payload_len);
	if (payload == 0 || payload + off > frame_len)
		return PARSE_NOT_OURS;
	nh = ip6->nexthdr;

#pragma unroll
	for (int i = 0; i < PARSE6_MAX_EXT; i++) {
		__u8 *eh = data + off;
		__u32 len;

		if (nh == IPPROTO_TCP || nh == IPPROTO_UDP)
			break;
		if (nh != NEXTHDR_HOP && nh != NEXTHDR_ROUTING && nh != NEXTHDR_DEST &&
		    nh != NEXTHDR_FRAGMENT && nh != NEXTHDR_AUTH)
			return PARSE_NOT_OURS;
		if ((void *)(eh + 8) > data_end)
			return frame_len >= off + 8 ? PARSE_SHORT : PARSE_NOT_OURS;
		if (nh == NEXTHDR_FRAGMENT) {
			/* offset (13 bits) << 3 | M; reserved bits ignored */
			__u16 fo = (__u16)eh[2] << 8 | eh[3];

			if (fo & 0xfff9) { /* not an atomic fragment */
				if (eh[0] != IPPROTO_TCP && eh[0] != IPPROTO_UDP)
					return PARSE_NOT_OURS;
				__builtin_memcpy(&p->ip_id, eh + 4, sizeof(p->ip_id));
				p->frag = PKT_FRAG_FIRST;
				if (fo & 0xfff8) { /* offset != 0: no L4 header */
					p->frag = PKT_FRAG_LATER;
					p->l3_off = ETH_HLEN;
					p->l4_off = off + 8;
					__builtin_memcpy(&p->saddr, &ip6->saddr, sizeof(p->saddr));
					__builtin_memcpy(&p->daddr, &ip6->daddr, sizeof(p->daddr));
					p->tot_len = (__u16)(payload + sizeof(struct ipv6hdr));
					p->proto = eh[0];
					return PARSE_FRAG;
				}
			}
			len = 8;
		} else if (nh == NEXTHDR_AUTH) {
			len = ((__u32)eh[1] + 2) * 4;
		} else {
			len = ((__u32)eh[1] + 1) * 8;
		}
		nh = eh[0];
		off += len;
		if (off > PARSE6_MAX_HDR)
			return PARSE_NOT_OURS;
	}
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP)
		return PARSE_NOT_OURS;
	if (off + sizeof(struct udphdr) > ETH_HLEN + sizeof(struct ipv6hdr) + payload)
		return PARSE_NOT_OURS;

	p->l3_off = ETH_HLEN;
	p->l4_off = off;
	__builtin_memcpy(&p->saddr, &ip6->saddr, sizeof(p->saddr));
	__builtin_memcpy(&p->daddr, &ip6->daddr, sizeof(p->daddr));
	p->tot_len = (__u16)(payload + sizeof(struct ipv6hdr));
	p->proto = nh;

	if (nh == IPPROTO_TCP) {
		struct tcphdr *tcp = data + off;

		if (off + sizeof(*tcp) > ETH_HLEN + sizeof(struct ipv6hdr) + payload)
			return PARSE_NOT_OURS;
		if ((void *)(tcp + 1) > data_end)
			return PARSE_SHORT;
		if (tcp->doff < 5)
			return PARSE_NOT_OURS;
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
		p->csum_off = off + offsetof(struct tcphdr, check);
	} else {
		struct udphdr *udp = data + off;

		if ((void *)(udp + 1) > data_end)
			return PARSE_SHORT;
		p->sport = udp->source;
		p->dport = udp->dest;
		p->csum_off = off + offsetof(struct udphdr, check);
	}
	return PARSE_OK;
}

#endif
