/* SPDX-License-Identifier: Apache-2.0 */
/* The decision shared by every hook: Service lookup, backend selection
 * (random slots, Maglev, session affinity, KEP-1669 conditions, source
 * ranges) and, for a new flow, the CT entries and the source-NAT choice
 * (lib/ct.h, lib/fib.h). No packet is modified here. The family-generic
 * part is lib/lb_fam.h, compiled for IPv4 (lb4_*) and IPv6 (lb6_*); what
 * differs by family (the backend's address, the source-NAT choice) is
 * here. */
#ifndef SVCLB_BPF_LB_H
#define SVCLB_BPF_LB_H

#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/hash.h"
#include "lib/stats.h"
#include "lib/ct.h"
#include "lib/fib.h"

struct lb_verdict {
	__be32 addr;	  /* DNAT: backend address; RNAT: VIP */
	__be16 port;	  /* DNAT: backend port; RNAT: service port */
	__u8 ct_flags;	  /* CT_F_SNAT: snat_* below apply too; CT_F_EXTERNAL, CT_F_HAIRPIN */
	__u8 fib_state;	  /* FIB_*: what the caller's fib struct holds */
	__be32 snat_addr; /* CT_F_SNAT: DNAT: new source; RNAT: new destination */
	__be16 snat_port;
	__u16 pad;
	__u32 svc_id;
	__u32 backend_id;
	int new_flow;
};

/* The IPv6 verdict: lb_verdict with v6 addresses. */
struct lb6_verdict {
	struct v6addr addr;
	__be16 port;
	__u8 ct_flags;
	__u8 fib_state;
	struct v6addr snat_addr;
	__be16 snat_port;
	__u16 pad;
	__u32 svc_id;
	__u32 backend_id;
	int new_flow;
};

/* Who calls the shared decision: the pod-facing tc program, or a program on
 * a node NIC (XDP fast path, tc slow path) which may source-NAT. */
#define LB_MODE_POD	0
#define LB_MODE_XDP_EXT 1
#define LB_MODE_TC_EXT	2

#define NSEC_PER_SEC 1000000000ULL

/* True if backend `id` may take a new flow of frontend `svc`. backends_v1
 * holds every backend's state and owner, whatever its family. */
static __always_inline struct backend_value *lb_backend_ok(const struct svc_value *svc, __u32 id)
{
	struct backend_value *b = bpf_map_lookup_elem(&backends_v1, &id);

	if (!b || b->state == BE_STATE_EMPTY || b->svc_id != svc->svc_id)
		return NULL;
	return b;
}

/* lb_filter_v1 (svclb_abi.h): an {address, port}'s bit in the frontend
 * bitmap (add SVCLB_FILTER_BITS for the backend one), and whether a bit is
 * set. `fold`: FAM_ADDR_FOLD of the address. */
static __always_inline __u32 lb_filter_bit(__u32 fold, __be16 port)
{
	return hash_3words(fold, (__u32)port, SVCLB_FILTER_SEED) & (SVCLB_FILTER_BITS - 1);
}

static __always_inline int lb_filter_test(__u32 bit)
{
	__u32 word = bit >> 6;
	__u64 *w = bpf_map_lookup_elem(&lb_filter_v1, &word);

	return w && ((*w >> (bit & 63)) & 1);
}

/* lb4_snat_choice (lib/lb_fam.h) when XDP must leave a new flow to tc. */
#define LB_SNAT_TO_TC (-1)

/* The DNAT address of backend `id` (`be`: its backends_v1 entry). An IPv4
 * backend's is in that entry; an IPv6 backend's in backend6_v1[id]. Returns
 * 0 or -1 (no such slot). */
static __always_inline int lb4_backend_addr(__u32 id, const struct backend_value *be, __be32 *addr)
{
	*addr = be->addr;
	return 0;
}

static __always_inline int lb6_backend_addr(__u32 id, const struct backend_value *be,
					    struct v6addr *addr)
{
	struct backend6_value *b6 = bpf_map_lookup_elem(&backend6_v1, &id);

	if (!b6)
		return -1;
	*addr = b6->addr;
	return 0;
}

#define SVCLB_FAM 4
#include "lib/family.h"
#include "lib/lb_fam.h"
#include "lib/family_end.h"

#define SVCLB_FAM 6
#include "lib/family.h"
#include "lib/lb_fam.h"
#include "lib/family_end.h"

/* Counts a translated packet once per direction (either family), in its
 * backend's slot: its Service's count is its backends' (struct lb_stats). */
static __always_inline void lb_account(int action, __u32 backend_id, int new_flow, __u32 bytes)
{
	struct be_slot *b = be_slot(backend_id);

	if (!b)
		return;
	if (action == LB_DNAT)
		stats_fwd(&b->s, bytes, new_flow);
	else
		stats_reply(&b->s, bytes);
}

#endif
