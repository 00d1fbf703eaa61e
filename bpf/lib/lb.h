/* SPDX-License-Identifier: Apache-2.0 */
/* Service lookup, backend selection and connection tracking: the decision
 * shared by the tc and XDP entries. No packet is modified here. */
#ifndef SVCLB_BPF_LB_H
#define SVCLB_BPF_LB_H

#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/stats.h"

struct lb_verdict {
	__be32 addr;     /* DNAT: backend address; RNAT: VIP */
	__be16 port;     /* DNAT: backend port; RNAT: service port */
	__u16 pad;
	__u32 svc_id;
	__u32 backend_id;
	int new_flow;
};

static __always_inline struct svc_value *svc_lookup_master(__be32 vip, __be16 port, __u8 proto)
{
	struct svc_key key = {
		.vip = vip,
		.port = port,
		.proto = proto,
		.scope = SVC_SCOPE_EXTERNAL,
		.slot = 0,
	};

	return bpf_map_lookup_elem(&svc_v1, &key);
}

/* Picks a backend of the frontend whose master entry is `svc`.
 * Returns the backend id (> 0) and sets *be, or -DROP_NO_BACKEND /
 * -DROP_BACKEND_GONE. Only ready slots (1..count) take new flows. */
static __always_inline int lb4_select(__be32 vip, __be16 port, __u8 proto,
				      const struct svc_value *svc, struct backend_value **be)
{
	struct svc_key key = {
		.vip = vip,
		.port = port,
		.proto = proto,
		.scope = SVC_SCOPE_EXTERNAL,
	};
	struct svc_value *slot;
	struct backend_value *b;
	__u32 count = svc->count;
	__u32 id;

	if (count == 0)
		return -DROP_NO_BACKEND;
	key.slot = (bpf_get_prandom_u32() % count) + 1;
	slot = bpf_map_lookup_elem(&svc_v1, &key);
	if (!slot)
		return -DROP_BACKEND_GONE;
	id = slot->backend_id;
	b = bpf_map_lookup_elem(&backends_v1, &id);
	if (!b || b->state == BE_STATE_EMPTY || b->svc_id != svc->svc_id)
		return -DROP_BACKEND_GONE;
	*be = b;
	return (int)id;
}

/* The decision for one parsed packet.
 * Returns LB_PASS, LB_DNAT or LB_RNAT (with *v filled), or -DROP_*.
 * Order: the CT lookup comes first, keyed on the packet's own 5-tuple, so an
 * established flow (either direction) costs one hash lookup plus an inlined
 * array read; the service map is only consulted for a new flow. A forward CT
 * entry whose backend was removed from the service is ignored: the flow is
 * balanced again (Kubernetes: a removed endpoint takes no more traffic). */
static __always_inline int lb4_decide(const struct pkt4 *p, struct lb_verdict *v)
{
	struct ct_key ck = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.proto = p->proto,
	};
	struct ct_value *ct = bpf_map_lookup_elem(&ct_v1, &ck);
	struct backend_value *be;
	struct svc_value *svc;
	int id;

	if (ct) {
		__u32 bid = ct->backend_id;

		v->addr = ct->nat_addr;
		v->port = ct->nat_port;
		v->svc_id = ct->svc_id;
		v->backend_id = bid;
		v->new_flow = 0;
		if (ct->dir == CT_DIR_REPLY)
			return LB_RNAT;
		be = bpf_map_lookup_elem(&backends_v1, &bid);
		if (be && be->state != BE_STATE_EMPTY && be->svc_id == ct->svc_id)
			return LB_DNAT;
		/* backend gone: fall through and pick again */
	}

	svc = svc_lookup_master(p->daddr, p->dport, p->proto);
	if (!svc)
		return LB_PASS;
	id = lb4_select(p->daddr, p->dport, p->proto, svc, &be);
	if (id < 0)
		return id;

	v->addr = be->addr;
	v->port = be->port;
	v->svc_id = svc->svc_id;
	v->backend_id = (__u32)id;
	v->new_flow = 1;

	{
		struct ct_value fwd = {
			.nat_addr = be->addr,
			.nat_port = be->port,
			.dir = CT_DIR_FORWARD,
			.backend_id = (__u32)id,
			.svc_id = svc->svc_id,
		};
		struct ct_key rk = {
			.saddr = be->addr,
			.daddr = p->saddr,
			.sport = be->port,
			.dport = p->sport,
			.proto = p->proto,
		};
		struct ct_value rev = {
			.nat_addr = p->daddr,
			.nat_port = p->dport,
			.dir = CT_DIR_REPLY,
			.backend_id = (__u32)id,
			.svc_id = svc->svc_id,
		};

		/* Reply entry first: once the forward entry exists the flow is
		 * established, and its replies must already be translatable. */
		if (bpf_map_update_elem(&ct_v1, &rk, &rev, BPF_ANY))
			return -DROP_CT_INSERT;
		if (bpf_map_update_elem(&ct_v1, &ck, &fwd, BPF_ANY))
			return -DROP_CT_INSERT;
	}
	return LB_DNAT;
}

/* Counts a translated packet once per direction. */
static __always_inline void lb4_account(int action, const struct lb_verdict *v, __u32 bytes)
{
	if (action == LB_DNAT) {
		stats_fwd(&svc_stats_v1, v->svc_id, bytes, v->new_flow);
		stats_fwd(&be_stats_v1, v->backend_id, bytes, v->new_flow);
	} else {
		stats_reply(&svc_stats_v1, v->svc_id, bytes);
		stats_reply(&be_stats_v1, v->backend_id, bytes);
	}
}

#endif
