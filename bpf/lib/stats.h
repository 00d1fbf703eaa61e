/* SPDX-License-Identifier: Apache-2.0 */
/* Counters. A backend's live in this CPU's be_slot (be_stats_v2: an ARRAY
 * indexed by id * cfg_be_stride + CPU; the verifier inlines both the lookup
 * and, on x86-64, bpf_get_smp_processor_id); a Service's rejects and the
 * drops in PERCPU_ARRAYs. No helper call, no atomic. */
#ifndef SVCLB_BPF_STATS_H
#define SVCLB_BPF_STATS_H

#include "lib/maps.h"

/* This CPU's slot of backend `id` in be_stats_v2 (maps/svclb_abi.h), NULL
 * past the map. */
static __always_inline struct be_slot *be_slot(__u32 id)
{
	__u32 k = id * cfg_be_stride + bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&be_stats_v2, &k);
}

/* That slot if frontend `svc_id` owns backend `id`: whether a CT entry of
 * svc_id naming the backend is still valid. One cache line: the counts
 * that follow find it. */
static __always_inline struct be_slot *be_owned(__u32 id, __u32 svc_id)
{
	struct be_slot *b = be_slot(id);

	if (!b || !svc_id || b->svc_id != svc_id)
		return NULL;
	return b;
}

static __always_inline void stats_fwd(struct lb_stats *s, __u32 bytes, int new_flow)
{
	s->packets++;
	s->bytes += bytes;
	s->flows += new_flow;
}

static __always_inline void stats_reply(struct lb_stats *s, __u32 bytes)
{
	s->reply_packets++;
	s->reply_bytes += bytes;
}

/* `segs` packets of `bytes` in all, as sent (reply = 0) or as replies: the
 * socket path's cgroup_skb counts, where a GSO/GRO packet counts as its
 * segments. */
static __always_inline void stats_packets(struct lb_stats *s, __u32 segs, __u32 bytes, int reply)
{
	if (reply) {
		s->reply_packets += segs;
		s->reply_bytes += bytes;
	} else {
		s->packets += segs;
		s->bytes += bytes;
	}
}

static __always_inline void stats_reject(void *map, __u32 idx)
{
	struct lb_stats *s = bpf_map_lookup_elem(map, &idx);

	if (s)
		s->rejects++;
}

static __always_inline void count_drop(__u32 reason, __u32 bytes)
{
	struct drop_stats *d;

	if (reason >= DROP_MAX)
		reason = 0;
	d = bpf_map_lookup_elem(&drops_v1, &reason);
	if (d) {
		d->packets++;
		d->bytes += bytes;
	}
}

static __always_inline void count_ct_event(__u32 ev)
{
	__u64 *n = bpf_map_lookup_elem(&ct_events_v1, &ev);

	if (n)
		(*n)++;
}

#endif
