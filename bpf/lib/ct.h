/* SPDX-License-Identifier: Apache-2.0 */
/* Connection tracking: a translated flow is one or two entries in an LRU
 * map (ct_v2 while new, ct_est_v2 once its TCP handshake completed): FORWARD
 * keyed on the client's packets and, unless the flow is a single-entry one
 * (CT_F_SINGLE: its backend's answers find the FORWARD entry through
 * be_rev_v1), REPLY on the backend's answers, each holding every address of
 * the flow (docs/architecture.md, "Connection tracking"). */
#ifndef SVCLB_BPF_CT_H
#define SVCLB_BPF_CT_H

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

#define SVCLB_FAM 4
#include "lib/family.h"
#include "lib/ct_fam.h"
#include "lib/family_end.h"

#define SVCLB_FAM 6
#include "lib/family.h"
#include "lib/ct_fam.h"
#include "lib/family_end.h"

#endif
