/* SPDX-License-Identifier: Apache-2.0 */
/* Drop and reject events for `svcctl monitor` (struct mon_event in
 * maps/svclb_abi.h): written only while cfg_monitor is set, at most
 * cfg_monitor_rate per second per CPU; what the token bucket or a full ring
 * loses is counted in mon_state. */
#ifndef SVCLB_BPF_MONITOR_H
#define SVCLB_BPF_MONITOR_H

#include "lib/maps.h"
#include "lib/parse.h"

#define MON_NS_PER_SEC 1000000000ULL

/* Takes one token of this CPU's bucket. Returns the state (to count a ring
 * overflow in) or NULL when the event is suppressed (counted) or the state
 * is missing. */
static __always_inline struct mon_state *mon_take_token(__u64 now)
{
	__u32 zero = 0;
	struct mon_state *st = bpf_map_lookup_elem(&mon_state, &zero);
	__u64 full, elapsed;

	if (!st)
		return NULL;
	full = (__u64)cfg_monitor_rate * MON_NS_PER_SEC;
	elapsed = now - st->last_ns;
	st->last_ns = now;
	/* Capped at one second before the multiply: a full bucket, no
	 * overflow (rate * 1e9 fits in 64 bits up to 18 million events/s). */
	if (elapsed >= MON_NS_PER_SEC)
		st->tokens = full;
	else {
		st->tokens += elapsed * cfg_monitor_rate;
		if (st->tokens > full)
			st->tokens = full;
	}
	if (st->tokens < MON_NS_PER_SEC) {
		st->rate_limited++;
		return NULL;
	}
	st->tokens -= MON_NS_PER_SEC;
	return st;
}

/* Stamps and writes one event the caller filled (all but ts_ns). Out of
 * line: the programs carry one copy, and their hot paths none of its
 * registers. The caller has checked cfg_monitor (mon_on). */
static __attribute__((noinline)) int mon_emit(struct mon_event *e)
{
	struct mon_state *st;

	e->ts_ns = bpf_ktime_get_ns();
	st = mon_take_token(e->ts_ns);
	if (!st)
		return 0;
	if (bpf_ringbuf_output(&mon_events, e, sizeof(*e), 0))
		st->ring_full++;
	return 0;
}

/* One load of .data: is anyone watching? */
static __always_inline int mon_on(void)
{
	return cfg_monitor != 0;
}

/* An event of the packet path: the parsed tuple (as it arrived). */
static __always_inline void mon_packet(__u32 type, __u32 reason, const struct pkt4 *p, __u32 svc_id,
				       __u32 ifindex, __u32 hook)
{
	struct mon_event e = {
		.type = type,
		.reason = reason,
		.proto = p->proto,
		.hook = hook,
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.svc_id = svc_id,
		.ifindex = ifindex,
	};

	mon_emit(&e);
}

/* mon_emit for an IPv6 event. */
static __attribute__((noinline)) int mon_emit6(struct mon_event6 *e)
{
	struct mon_state *st;

	e->ts_ns = bpf_ktime_get_ns();
	st = mon_take_token(e->ts_ns);
	if (!st)
		return 0;
	if (bpf_ringbuf_output(&mon_events, e, sizeof(*e), 0))
		st->ring_full++;
	return 0;
}

/* mon_packet for an IPv6 packet. */
static __always_inline void mon_packet6(__u32 type, __u32 reason, const struct pkt6 *p,
					__u32 svc_id, __u32 ifindex, __u32 hook)
{
	struct mon_event6 e = {
		.type = type,
		.reason = reason,
		.proto = p->proto,
		.hook = hook,
		.svc_id = svc_id,
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.ifindex = ifindex,
	};

	mon_emit6(&e);
}

#endif
