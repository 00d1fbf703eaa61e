/* SPDX-License-Identifier: Apache-2.0 */
/* L2 announcements: ARP answers for LoadBalancer/externalIP addresses this
 * node announces on a NIC (l2_arp_v1, written by the daemon). */
#ifndef SVCLB_BPF_L2_H
#define SVCLB_BPF_L2_H

#include "lib/maps.h"

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

#endif
