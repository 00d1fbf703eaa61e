/* SPDX-License-Identifier: Apache-2.0 */
/* Rejecting a new flow to a Service without a usable endpoint, as
 * kube-proxy does: TCP is answered with a RST, UDP with ICMP port
 * unreachable, both sent back toward the client. lb4_reject
 * (lib/handle.h) gives the frame its final size through the ctx shim, then
 * one of the writers below fills it in, with full checksums. Only IHL 5 packets are
 * rejected; others are dropped (DROP_REJECT_FAILED). */
#ifndef SVCLB_BPF_REJECT_H
#define SVCLB_BPF_REJECT_H

#include "lib/common.h"
#include <linux/ipv6.h>

/* linux/icmp.h drags in libc socket headers: the 8 bytes we need. */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3

#define REJECT_RST_LEN	 (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr)) /* 54 */
#define REJECT_ICMP_ROOM (sizeof(struct iphdr) + sizeof(struct icmphdr))	   /* 28 */
/* eth + new IP + ICMP + quoted IP header + 8 bytes of UDP */
#define REJECT_ICMP_LEN (ETH_HLEN + REJECT_ICMP_ROOM + sizeof(struct iphdr) + 8) /* 70 */

/* What the RST needs from the offending segment, read before trimming. */
struct rst_info {
	__be32 seq; /* host order value of the reply's seq, as __be32 */
	__be32 ack_seq;
	__u8 flags; /* TCP flag byte of the reply */
	__u8 drop;  /* the segment carries RST: never answer it */
};

static __always_inline __u32 csum_words(const __u16 *w, int nwords, __u32 sum)
{
#pragma unroll
	for (int i = 0; i < nwords; i++)
		sum += w[i];
	return sum;
}

static __always_inline __u16 csum_finish(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

static __always_inline void ip_reply_header(struct iphdr *ip, __be32 saddr, __be32 daddr,
					    __u8 proto, __u16 tot_len)
{
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons(tot_len);
	ip->id = 0;
	ip->frag_off = bpf_htons(0x4000); /* DF */
	ip->ttl = 64;
	ip->protocol = proto;
	ip->saddr = saddr;
	ip->daddr = daddr;
	ip->check = 0;
	ip->check = csum_finish(csum_words((const __u16 *)ip, sizeof(*ip) / 2, 0));
}

/* Reads what the RST will say from the original segment (RFC 793 reset
 * generation, as Linux's tcp_v4_send_reset): if the segment had ACK, the
 * RST takes its seq from that ack; otherwise seq 0 and it ACKs everything
 * the segment occupied. Returns 0, or -1 if the headers are not there. */
static __always_inline int rst_prepare(void *data, void *data_end, struct rst_info *ri)
{
	struct iphdr *ip = data + ETH_HLEN;
	struct tcphdr *tcp = data + ETH_HLEN + sizeof(*ip);
	__u32 seg_len;

	if ((void *)(tcp + 1) > data_end || ip->ihl != 5)
		return -1;
	ri->drop = tcp->rst;
	seg_len = bpf_ntohs(ip->tot_len) - sizeof(*ip) - (__u32)tcp->doff * 4 + tcp->syn + tcp->fin;
	if (tcp->ack) {
		ri->seq = tcp->ack_seq;
		ri->ack_seq = 0;
		ri->flags = 0x04; /* RST */
	} else {
		ri->seq = 0;
		ri->ack_seq = bpf_htonl(bpf_ntohl(tcp->seq) + seg_len);
		ri->flags = 0x14; /* RST|ACK */
	}
	return 0;
}

/* Turns a frame of exactly REJECT_RST_LEN bytes, still holding the
 * original Ethernet/IP/TCP headers, into the RST. Returns 0 or -1. */
static __always_inline int rst_write(void *data, void *data_end, const struct rst_info *ri)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct tcphdr *tcp = data + ETH_HLEN + sizeof(*ip);
	__be32 saddr, daddr;
	__be16 sport;
	__u32 sum;

	if ((void *)(tcp + 1) > data_end)
		return -1;
	swap_macs(eth);
	saddr = ip->daddr;
	daddr = ip->saddr;
	ip_reply_header(ip, saddr, daddr, IPPROTO_TCP, sizeof(*ip) + sizeof(*tcp));

	sport = tcp->dest;
	tcp->dest = tcp->source;
	tcp->source = sport;
	tcp->seq = ri->seq;
	tcp->ack_seq = ri->ack_seq;
	((__u8 *)tcp)[12] = 5 << 4; /* doff 5, no reserved bits */
	((__u8 *)tcp)[13] = ri->flags;
	tcp->window = 0;
	tcp->check = 0;
	tcp->urg_ptr = 0;

	/* pseudo header: saddr, daddr, proto, TCP length */
	sum = (saddr & 0xffff) + (saddr >> 16) + (daddr & 0xffff) + (daddr >> 16);
	sum += bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(*tcp));
	sum = csum_words((const __u16 *)tcp, sizeof(*tcp) / 2, sum);
	tcp->check = csum_finish(sum);
	return 0;
}

/* Fills a frame of exactly REJECT_ICMP_LEN bytes laid out as
 *   [0,14) Ethernet of the original frame, [14,42) room,
 *   [42,62) the original IP header, [62,70) the original UDP header
 * with an ICMP port unreachable from the original destination to its
 * source. Returns 0 or -1. */
static __always_inline int icmp_unreach_write(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct icmphdr *icmp = data + ETH_HLEN + sizeof(*ip);
	struct iphdr *orig = data + ETH_HLEN + REJECT_ICMP_ROOM;
	__u32 sum;

	if (data + REJECT_ICMP_LEN > data_end)
		return -1;
	swap_macs(eth);
	eth->h_proto = bpf_htons(ETH_P_IP);
	ip_reply_header(ip, orig->daddr, orig->saddr, IPPROTO_ICMP,
			sizeof(*ip) + sizeof(*icmp) + sizeof(*orig) + 8);
	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_PORT_UNREACH;
	icmp->checksum = 0;
	icmp->unused = 0;
	sum = csum_words((const __u16 *)icmp, (sizeof(*icmp) + sizeof(*orig) + 8) / 2, 0);
	icmp->checksum = csum_finish(sum);
	return 0;
}

/* ---- IPv6 (issue 16): RST and ICMPv6 port unreachable -------------------
 * As for IPv4, only a packet without extension headers is rejected (its
 * L4 header right after the IPv6 header); others are dropped. */

struct icmp6hdr_min {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
};
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PORT_UNREACH 4
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

#define REJECT6_RST_LEN	  (ETH_HLEN + sizeof(struct ipv6hdr) + sizeof(struct tcphdr)) /* 74 */
#define REJECT6_ICMP_ROOM (sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr_min))      /* 48 */
/* eth + new IPv6 + ICMPv6 + quoted IPv6 header + 8 bytes of UDP */
#define REJECT6_ICMP_LEN (ETH_HLEN + REJECT6_ICMP_ROOM + sizeof(struct ipv6hdr) + 8) /* 110 */

/* The one's complement sum of the IPv6 pseudo-header (RFC 8200 8.1). */
static __always_inline __u32 csum_v6_pseudo(const struct ipv6hdr *ip6, __u32 len, __u8 proto)
{
	__u32 sum = csum_words((const __u16 *)&ip6->saddr, 16, 0);

	return sum + bpf_htons((__u16)len) + bpf_htons(proto);
}

/* A reply header in place: from `saddr` to `daddr` (16 bytes each, copied
 * first: they may alias the header being written). */
static __always_inline void ip6_reply_header(struct ipv6hdr *ip6, const struct v6addr *saddr,
					     const struct v6addr *daddr, __u8 proto,
					     __u16 payload_len)
{
	struct v6addr s = *saddr, d = *daddr;

	*(__be32 *)ip6 = bpf_htonl(0x60000000); /* version 6, class 0, flow 0 */
	ip6->payload_len = bpf_htons(payload_len);
	ip6->nexthdr = proto;
	ip6->hop_limit = 64;
	__builtin_memcpy(&ip6->saddr, &s, sizeof(s));
	__builtin_memcpy(&ip6->daddr, &d, sizeof(d));
}

/* rst_prepare for IPv6. Returns 0, or -1 if the headers are not there. */
static __always_inline int rst6_prepare(void *data, void *data_end, struct rst_info *ri)
{
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct tcphdr *tcp = data + ETH_HLEN + sizeof(*ip6);
	__u32 seg_len;

	if ((void *)(tcp + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
		return -1;
	ri->drop = tcp->rst;
	seg_len = bpf_ntohs(ip6->payload_len) - (__u32)tcp->doff * 4 + tcp->syn + tcp->fin;
	if (tcp->ack) {
		ri->seq = tcp->ack_seq;
		ri->ack_seq = 0;
		ri->flags = 0x04; /* RST */
	} else {
		ri->seq = 0;
		ri->ack_seq = bpf_htonl(bpf_ntohl(tcp->seq) + seg_len);
		ri->flags = 0x14; /* RST|ACK */
	}
	return 0;
}

/* rst_write for IPv6: a frame of exactly REJECT6_RST_LEN bytes. */
static __always_inline int rst6_write(void *data, void *data_end, const struct rst_info *ri)
{
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct tcphdr *tcp = data + ETH_HLEN + sizeof(*ip6);
	struct v6addr saddr, daddr;
	__be16 sport;
	__u32 sum;

	if ((void *)(tcp + 1) > data_end)
		return -1;
	swap_macs(eth);
	__builtin_memcpy(&saddr, &ip6->daddr, sizeof(saddr));
	__builtin_memcpy(&daddr, &ip6->saddr, sizeof(daddr));
	ip6_reply_header(ip6, &saddr, &daddr, IPPROTO_TCP, sizeof(*tcp));

	sport = tcp->dest;
	tcp->dest = tcp->source;
	tcp->source = sport;
	tcp->seq = ri->seq;
	tcp->ack_seq = ri->ack_seq;
	((__u8 *)tcp)[12] = 5 << 4;
	((__u8 *)tcp)[13] = ri->flags;
	tcp->window = 0;
	tcp->check = 0;
	tcp->urg_ptr = 0;
	sum = csum_v6_pseudo(ip6, sizeof(*tcp), IPPROTO_TCP);
	sum = csum_words((const __u16 *)tcp, sizeof(*tcp) / 2, sum);
	tcp->check = csum_finish(sum);
	return 0;
}

/* icmp_unreach_write for IPv6: a frame of exactly REJECT6_ICMP_LEN bytes,
 *   [0,14) Ethernet of the original frame, [14,62) room,
 *   [62,102) the original IPv6 header, [102,110) the original UDP header,
 * becomes an ICMPv6 destination unreachable / port unreachable (RFC 4443
 * 3.1) from the original destination to its source. Returns 0 or -1. */
static __always_inline int icmp6_unreach_write(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct icmp6hdr_min *icmp = data + ETH_HLEN + sizeof(*ip6);
	struct ipv6hdr *orig = data + ETH_HLEN + REJECT6_ICMP_ROOM;
	__u32 len = sizeof(*icmp) + sizeof(*orig) + 8;
	struct v6addr saddr, daddr;
	__u32 sum;

	if (data + REJECT6_ICMP_LEN > data_end)
		return -1;
	swap_macs(eth);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	__builtin_memcpy(&saddr, &orig->daddr, sizeof(saddr));
	__builtin_memcpy(&daddr, &orig->saddr, sizeof(daddr));
	ip6_reply_header(ip6, &saddr, &daddr, IPPROTO_ICMPV6, (__u16)len);
	icmp->type = ICMPV6_DEST_UNREACH;
	icmp->code = ICMPV6_PORT_UNREACH;
	icmp->checksum = 0;
	icmp->unused = 0;
	sum = csum_v6_pseudo(ip6, len, IPPROTO_ICMPV6);
	sum = csum_words((const __u16 *)icmp, len / 2, sum);
	icmp->checksum = csum_finish(sum);
	return 0;
}

#endif
