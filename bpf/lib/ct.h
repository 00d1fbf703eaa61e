/* SPDX-License-Identifier: Apache-2.0 */
/* Connection tracking: a translated flow is one or two entries in an LRU
 * map (ct_v2 while new, ct_est_v2 once its TCP handshake completed): FORWARD
 * keyed on the client's packets and, unless the flow is a single-entry one
 * (CT_F_SINGLE: its backend's answers find the FORWARD entry through
 * be_rev_v1), REPLY on the backend's answers, each holding every address of
 * the flow (docs/architecture.md, "Connection tracking"). */
#ifndef SVCLB_BPF_CT_H
#define SVCLB_BPF_CT_H

#include "lib/hash.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/stats.h"

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

/* Time in CT ticks. bpf_jiffies64() is inlined by the verifier (one load):
 * a helper call such as bpf_ktime_get_coarse_ns() costs tens of ns on a
 * kernel with retpoline/SRSO mitigations. */
static __always_inline __u32 ct_now(void)
{
	return (__u32)(bpf_jiffies64() >> CT_TICK_SHIFT);
}

/* flow_filter_v1 (svclb_abi.h): the slot of an {address, port} (`fold`:
 * FAM_ADDR_FOLD of the address). Its two bytes (one per map) sit side by
 * side: byte 2 x slot + map, in word (2 x slot) / 8. */
static __always_inline __u32 flowf_slot(__u32 fold, __be16 port)
{
	__u32 h = bpf_ntohs(port);

	return ((hash_3words(fold, h >> SVCLB_FLOWF_RUN_LOG2, SVCLB_FLOWF_SEED)
		 << SVCLB_FLOWF_RUN_LOG2) |
		(h & (SVCLB_FLOWF_RUN - 1))) &
	       (SVCLB_FLOWF_SLOTS - 1);
}

/* Whether a CT entry may have {fold, port} as its client side: 0 only when
 * the filter is valid and the slot is clear in its current map. */
static __always_inline int flowf_maybe(__u32 fold, __be16 port)
{
	__u32 k = SVCLB_FLOWF_CTL, b;
	__u64 *ctl = bpf_map_lookup_elem(&flow_filter_v1, &k);
	__u8 *w;

	if (!ctl || !(*ctl & SVCLB_FLOWF_VALID))
		return 1;
	b = flowf_slot(fold, port) << 1;
	k = b >> 3;
	w = bpf_map_lookup_elem(&flow_filter_v1, &k);
	return !w || w[(b & 7) + (*ctl & SVCLB_FLOWF_CUR)];
}

/* Before a CT entry with client side {fold, port} goes in: its slot in
 * both maps, one 16-bit store (only while either byte is clear). */
static __always_inline void flowf_set(__u32 fold, __be16 port)
{
	__u32 b = flowf_slot(fold, port) << 1, k = b >> 3;
	__u8 *w = bpf_map_lookup_elem(&flow_filter_v1, &k);

	if (w && *(__u16 *)(w + (b & 6)) != 0x0101)
		*(__u16 *)(w + (b & 6)) = 0x0101;
}

#define SVCLB_FAM 4
#include "lib/family.h"
#include "lib/ct_fam.h"
#include "lib/family_end.h"

#define SVCLB_FAM 6
#include "lib/family.h"
#include "lib/ct_fam.h"
#include "lib/family_end.h"

#endif
