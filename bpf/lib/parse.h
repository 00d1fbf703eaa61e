/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4 TCP/UDP header parsing shared by XDP and tc. */
#ifndef SVCLB_BPF_PARSE_H
#define SVCLB_BPF_PARSE_H

#include "lib/common.h"

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

#endif
