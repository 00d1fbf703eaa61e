/* SPDX-License-Identifier: Apache-2.0 */
/* Per-CPU counters. PERCPU_ARRAY lookups are inlined by the verifier, so a
 * counter update costs a few instructions and no helper call. */
#ifndef SVCLB_BPF_STATS_H
#define SVCLB_BPF_STATS_H

#include "lib/maps.h"

static __always_inline void stats_fwd(void *map, __u32 idx, __u32 bytes, int new_flow)
{
	struct lb_stats *s = bpf_map_lookup_elem(map, &idx);

	if (!s)
		return;
	s->packets++;
	s->bytes += bytes;
	s->flows += new_flow;
}

static __always_inline void stats_reply(void *map, __u32 idx, __u32 bytes)
{
	struct lb_stats *s = bpf_map_lookup_elem(map, &idx);

	if (!s)
		return;
	s->reply_packets++;
	s->reply_bytes += bytes;
}

/* `segs` packets of `bytes` in all, as sent (reply = 0) or as replies: the
 * socket path's cgroup_skb counts, where a GSO/GRO packet counts as its
 * segments. */
static __always_inline void stats_packets(void *map, __u32 idx, __u32 segs, __u32 bytes, int reply)
{
	struct lb_stats *s = bpf_map_lookup_elem(map, &idx);

	if (!s)
		return;
	if (reply) {
		s->reply_packets += segs;
		s->reply_bytes += bytes;
	} else {
		s->packets += segs;
		s->bytes += bytes;
	}
}

static __always_inline void stats_flow(void *map, __u32 idx)
{
	struct lb_stats *s = bpf_map_lookup_elem(map, &idx);

	if (s)
		s->flows++;
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
