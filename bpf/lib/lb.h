/* SPDX-License-Identifier: Apache-2.0 */
/* Service lookup, backend selection and connection tracking: the decision
 * shared by the tc and XDP entries. No packet is modified here. */
#ifndef SVCLB_BPF_LB_H
#define SVCLB_BPF_LB_H

#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/hash.h"
#include "lib/stats.h"

struct lb_verdict {
	__be32 addr;      /* DNAT: backend address; RNAT: VIP */
	__be16 port;      /* DNAT: backend port; RNAT: service port */
	__u8 ct_flags;    /* CT_F_SNAT: snat_* below apply too */
	__u8 fib_done;    /* the caller's fib struct holds the route of this packet */
	__be32 snat_addr; /* CT_F_SNAT: DNAT: new source; RNAT: new destination */
	__be16 snat_port;
	__u16 pad;
	__u32 svc_id;
	__u32 backend_id;
	int new_flow;
};

/* Who calls the shared decision: the pod-facing tc program, or a program on
 * a node NIC (XDP fast path, tc slow path) which may source-NAT. */
#define LB_MODE_POD 0
#define LB_MODE_XDP_EXT 1
#define LB_MODE_TC_EXT 2

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef BPF_FIB_LOOKUP_SRC
#define BPF_FIB_LOOKUP_SRC (1U << 4) /* kernel >= 6.8; uapi headers here are older */
#endif

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

#define NSEC_PER_SEC 1000000000ULL

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

static __always_inline int ct_alive(const struct ct_value *ct, __u8 proto, __u32 now)
{
	__u32 life = (ct->flags & CT_F_CLOSING) ? cfg_ct_life_closing
		     : proto == IPPROTO_TCP	 ? cfg_ct_life_tcp
						 : cfg_ct_life_nontcp;

	return now - ct->last_seen <= life;
}

/* Usable for this packet: alive, and not the opening of a new connection
 * on a closing flow's tuple: a bare SYN (balanced anew) or a SYN-ACK (the
 * answer to a direct connection that reuses the client port; a closing flow
 * has no handshake left to answer), which passes untranslated. */
static __always_inline int ct_usable(const struct ct_value *ct, const struct pkt4 *p, __u32 now)
{
	return ct_alive(ct, p->proto, now) &&
	       !((ct->flags & CT_F_CLOSING) && (p->tcp_flags & TCPF_SYN));
}

/* The key of the other entry of the flow `ct`, whose own key is `k`. */
static __always_inline void ct_pair_key(const struct ct_value *ct, const struct ct_key *k,
					struct ct_key *pk)
{
	int snat = ct->flags & CT_F_SNAT;

	pk->proto = k->proto;
	if (ct->dir == CT_DIR_FORWARD) {
		pk->saddr = ct->nat_addr;
		pk->daddr = snat ? ct->snat_addr : k->saddr;
		pk->sport = ct->nat_port;
		pk->dport = snat ? ct->snat_port : k->sport;
	} else {
		pk->saddr = snat ? ct->snat_addr : k->daddr;
		pk->daddr = ct->nat_addr;
		pk->sport = snat ? ct->snat_port : k->dport;
		pk->dport = ct->nat_port;
	}
}

/* A packet hit entry `ct` (key `k`) of a flow in `map`: the flow's other
 * entry is looked up too, so the LRU sees both used alike, and its
 * last_seen follows (a flow lives while either direction has packets: a
 * UDP stream whose backend answers rarely keeps its REPLY entry). If the
 * LRU evicted the other entry anyway, it is rebuilt from this one (each
 * entry holds every address of the flow) and counted as relinked. If its
 * key now belongs to another flow (an evicted REPLY's SNAT port was given
 * to a new flow), this entry is an orphan: returns -1 and the caller drops
 * it (counted), so the packet is handled as untracked and no two flows
 * share a tuple. Costs one lookup per tracked packet (two for TCP when the
 * other entry is missing from this map). */
static __always_inline int ct_relink(void *map, struct ct_value *ct, const struct ct_key *k,
				     __u32 now)
{
	int snat = ct->flags & CT_F_SNAT;
	struct ct_key pk = {}, back = {};
	struct ct_value *e;

	ct_pair_key(ct, k, &pk);
	e = bpf_map_lookup_elem(map, &pk);
	/* A TCP flow's entries may sit in the other map (a promotion that
	 * did not complete), and a newer flow on the same tuple may be there:
	 * never rebuild a key the other map holds. */
	if (!e && k->proto == IPPROTO_TCP)
		e = bpf_map_lookup_elem(map == (void *)&ct_v2 ? (void *)&ct_est_v2 : (void *)&ct_v2, &pk);
	if (!e) {
		struct ct_value pv = {
			.dir = ct->dir == CT_DIR_FORWARD ? CT_DIR_REPLY : CT_DIR_FORWARD,
			.flags = ct->flags,
			.backend_id = ct->backend_id,
			.svc_id = ct->svc_id,
			.last_seen = now,
		};

		if (ct->dir == CT_DIR_FORWARD) {
			pv.nat_addr = k->daddr; /* the VIP */
			pv.nat_port = k->dport;
			if (snat) {
				pv.snat_addr = k->saddr; /* the client */
				pv.snat_port = k->sport;
			}
		} else {
			pv.nat_addr = k->saddr; /* the backend */
			pv.nat_port = k->sport;
			if (snat) {
				pv.snat_addr = k->daddr; /* the node's SNAT address */
				pv.snat_port = k->dport;
			}
		}
		if (!bpf_map_update_elem(map, &pk, &pv, BPF_NOEXIST)) {
			count_ct_event(CT_EV_RELINKED);
			return 0;
		}
		e = bpf_map_lookup_elem(map, &pk); /* another CPU was first */
		if (!e)
			return 0;
	}
	ct_pair_key(e, &pk, &back);
	if (e->dir == ct->dir || back.saddr != k->saddr || back.daddr != k->daddr ||
	    back.sport != k->sport || back.dport != k->dport) {
		count_ct_event(CT_EV_ORPHANED);
		return -1;
	}
	if (e->last_seen != now)
		e->last_seen = now;
	return 0;
}

/* The client ACKed the handshake: move the flow's two entries from ct_v2
 * to ct_est_v2 (REPLY first, as at creation). If the REPLY entry is gone
 * the flow stays where it is. */
static __always_inline void ct_promote(const struct ct_key *ck, const struct ct_value *fwd,
				       const struct pkt4 *p)
{
	struct ct_key rk = {
		.saddr = fwd->nat_addr,
		.daddr = (fwd->flags & CT_F_SNAT) ? fwd->snat_addr : p->saddr,
		.sport = fwd->nat_port,
		.dport = (fwd->flags & CT_F_SNAT) ? fwd->snat_port : p->sport,
		.proto = p->proto,
	};
	struct ct_value *rev = bpf_map_lookup_elem(&ct_v2, &rk);
	struct ct_value r, f;

	if (!rev)
		return;
	r = *rev;
	f = *fwd;
	if (bpf_map_update_elem(&ct_est_v2, &rk, &r, BPF_ANY) ||
	    bpf_map_update_elem(&ct_est_v2, ck, &f, BPF_ANY))
		return;
	/* The second insert may have evicted the first (see ct_add_forward):
	 * then the flow stays in ct_v2 too, and ct_relink completes it. */
	if (!bpf_map_lookup_elem(&ct_est_v2, &rk) || !bpf_map_lookup_elem(&ct_est_v2, ck))
		return;
	bpf_map_delete_elem(&ct_v2, ck);
	bpf_map_delete_elem(&ct_v2, &rk);
}

/* FIN or RST: this direction's entry gets the closing lifetime. A RST ends
 * both directions at once, so the paired entry (in the same map) is marked
 * too (one more lookup, for RST segments only). */
static __always_inline void ct_closing(void *ct_map, struct ct_value *ct, const struct ct_key *ck,
				       const struct pkt4 *p)
{
	ct->flags |= CT_F_CLOSING;
	if (p->tcp_flags & TCPF_RST) {
		struct ct_key pk = {};
		struct ct_value *pair;

		ct_pair_key(ct, ck, &pk);
		pair = bpf_map_lookup_elem(ct_map, &pk);
		if (pair)
			pair->flags |= CT_F_CLOSING;
	}
}

/* A packet that is neither a tracked flow's nor a Service's may open a
 * direct flow (client -> backend's own address) on a tuple that an earlier
 * Service flow of the same client port used: the backend's answers would
 * match that flow's REPLY entry and be rewritten to come from the Service.
 * The direct flow's opening packet (a TCP SYN; any UDP datagram, as UDP has
 * no opening packet) removes that REPLY entry and its FORWARD twin: the
 * newer flow owns the tuple. Costs a lookup in each CT map per such SYN,
 * one per untracked non-Service UDP datagram. Two LIVE flows on one translated
 * tuple remain impossible, as with kernel conntrack without port remapping. */
static __always_inline void ct_take_over_tuple(const struct pkt4 *p)
{
	struct ct_key rk = {
		.saddr = p->daddr,
		.daddr = p->saddr,
		.sport = p->dport,
		.dport = p->sport,
		.proto = p->proto,
	};
	void *map = &ct_v2;
	struct ct_value *e;
	struct ct_key fk = {};

	if (p->proto == IPPROTO_TCP) {
		if ((p->tcp_flags & (TCPF_SYN | TCPF_ACK)) != TCPF_SYN)
			return;
		e = bpf_map_lookup_elem(&ct_est_v2, &rk);
		if (e)
			map = &ct_est_v2;
		else
			e = bpf_map_lookup_elem(&ct_v2, &rk);
	} else {
		e = bpf_map_lookup_elem(&ct_v2, &rk);
	}
	if (!e || e->dir != CT_DIR_REPLY)
		return;
	ct_pair_key(e, &rk, &fk);
	bpf_map_delete_elem(map, &fk);
	bpf_map_delete_elem(map, &rk);
}

/* True if backend `id` may take a new flow of frontend `svc`. */
static __always_inline struct backend_value *lb4_backend_ok(const struct svc_value *svc, __u32 id)
{
	struct backend_value *b = bpf_map_lookup_elem(&backends_v1, &id);

	if (!b || b->state == BE_STATE_EMPTY || b->svc_id != svc->svc_id)
		return NULL;
	return b;
}

/* Picks a backend for a new flow of the frontend whose master is `svc`.
 * `hash` is the flow hash (Maglev) or ignored (random).
 * Returns the backend id (> 0) and sets *be, or -DROP_NO_BACKEND /
 * -DROP_BACKEND_GONE.
 * Endpoint conditions (KEP-1669): ready backends (slots 1..count) take new
 * flows; only when none is ready do terminating-but-serving ones, which the
 * daemon then placed in slots 1..total (and in the Maglev table). */
static __always_inline int lb4_select(__be32 vip, __be16 port, __u8 proto,
				      const struct svc_value *svc, __u32 hash,
				      struct backend_value **be)
{
	struct svc_key key = {
		.vip = vip,
		.port = port,
		.proto = proto,
		.scope = SVC_SCOPE_EXTERNAL,
	};
	__u32 n = svc->count ? svc->count : svc->total;
	struct backend_value *b;
	struct svc_value *slot;
	__u32 id;

	if (n == 0)
		return -DROP_NO_BACKEND;

	if (svc->algo == SVC_ALGO_MAGLEV && svc->maglev_size) {
		__u32 sid = svc->svc_id;
		void *table = bpf_map_lookup_elem(&maglev_v1, &sid);

		if (table) {
			__u32 idx = hash % svc->maglev_size;
			__u32 *bid = bpf_map_lookup_elem(table, &idx);

			if (bid && (b = lb4_backend_ok(svc, *bid))) {
				*be = b;
				return (int)*bid;
			}
		}
		/* No table (yet) or a stale entry: fall back to the slots. */
	}

	key.slot = (bpf_get_prandom_u32() % n) + 1;
	slot = bpf_map_lookup_elem(&svc_v1, &key);
	if (!slot)
		return -DROP_BACKEND_GONE;
	id = slot->backend_id;
	b = lb4_backend_ok(svc, id);
	if (!b)
		return -DROP_BACKEND_GONE;
	*be = b;
	return (int)id;
}

/* lb4_select with sessionAffinity: ClientIP. A client keeps its backend for
 * new connections while its last new connection is younger than the
 * timeout and that backend is still ready (kube-proxy's `recent` match);
 * otherwise a fresh choice is made and remembered. The affinity entry
 * outlives CT entries: it is keyed by client address only. */
static __always_inline int lb4_select_affine(__be32 vip, __be16 port, __u8 proto,
					     const struct svc_value *svc, __be32 client,
					     __u32 hash, struct backend_value **be)
{
	struct affinity_key ak = { .svc_id = svc->svc_id, .client = client };
	struct affinity_value *av;
	__u64 now;
	int id;

	if (!(svc->flags & SVC_F_AFFINITY))
		return lb4_select(vip, port, proto, svc, hash, be);

	now = bpf_ktime_get_ns();
	av = bpf_map_lookup_elem(&affinity_v1, &ak);
	if (av && svc->count &&
	    now - av->last_used_ns <= (__u64)svc->affinity_timeout * NSEC_PER_SEC) {
		struct backend_value *b = lb4_backend_ok(svc, av->backend_id);

		if (b && b->state == BE_STATE_ACTIVE) {
			av->last_used_ns = now;
			*be = b;
			return (int)av->backend_id;
		}
	}
	id = lb4_select(vip, port, proto, svc, hash, be);
	if (id > 0) {
		struct affinity_value nv = { .backend_id = (__u32)id, .last_used_ns = now };

		bpf_map_update_elem(&affinity_v1, &ak, &nv, BPF_ANY);
	}
	return id;
}

/* Adds a new flow's FORWARD entry once its REPLY entry `rk` is in ct_v2.
 * In a full LRU map the FORWARD insert may evict that fresh, never-used
 * REPLY entry (the kernel frees a CPU's unreferenced entries first, and
 * ct_relink keeps every live flow's entries referenced): the lookup marks
 * it used, and if it is gone already it is put back once. Returns 0 or
 * -DROP_CT_INSERT (the FORWARD entry removed again: the REPLY key was
 * taken by another CPU meanwhile, or the map refused). */
static __always_inline int ct_add_forward(const struct ct_key *ck, const struct ct_value *fwd,
					  const struct ct_key *rk, const struct ct_value *rev)
{
	if (bpf_map_update_elem(&ct_v2, ck, fwd, BPF_ANY))
		return -DROP_CT_INSERT;
	if (bpf_map_lookup_elem(&ct_v2, rk))
		return 0;
	if (!bpf_map_update_elem(&ct_v2, rk, rev, BPF_NOEXIST))
		return 0;
	bpf_map_delete_elem(&ct_v2, ck);
	return -DROP_CT_INSERT;
}

/* Inserts a new flow's two CT entries into ct_v2: REPLY first (once the
 * FORWARD entry exists the flow is established, and its replies must
 * already be translatable). Without SNAT the REPLY key is the backend's
 * answer to the client; with SNAT it is the answer to snat_addr:port, a
 * port probed until no live flow owns that reply tuple (in either CT map):
 * SNAT ports never collide between flows. Returns 0 or -DROP_*. */
static __always_inline int ct_create(const struct ct_key *ck, struct ct_value *fwd,
				     struct ct_value *rev, __u8 proto, __u32 now)
{
	struct ct_key rk = {
		.saddr = fwd->nat_addr,
		.daddr = ck->saddr,
		.sport = fwd->nat_port,
		.dport = ck->sport,
		.proto = proto,
	};

	if (fwd->flags & CT_F_SNAT) {
		__u32 min = cfg_snat_port_min;
		__u32 range = cfg_snat_port_max >= min ? cfg_snat_port_max - min + 1 : 1;
		__u32 start = bpf_get_prandom_u32();
		int i;

		rk.daddr = fwd->snat_addr;
		for (i = 0; i < SNAT_PORT_PROBES; i++) {
			struct ct_value *e;
			__u64 flags = BPF_NOEXIST;

			rk.dport = bpf_htons((__u16)(min + (start + (__u32)i) % range));
			e = bpf_map_lookup_elem(&ct_est_v2, &rk);
			if (e && ct_alive(e, proto, now))
				continue;
			e = bpf_map_lookup_elem(&ct_v2, &rk);
			if (e) {
				if (ct_alive(e, proto, now))
					continue;
				flags = BPF_ANY; /* a dead flow's port: take it over */
			}
			fwd->snat_port = rk.dport;
			if (bpf_map_update_elem(&ct_v2, &rk, rev, flags))
				continue; /* another CPU took it meanwhile */
			return ct_add_forward(ck, fwd, &rk, rev);
		}
		return -DROP_SNAT_PORTS;
	}
	if (bpf_map_update_elem(&ct_v2, &rk, rev, BPF_ANY))
		return -DROP_CT_INSERT;
	return ct_add_forward(ck, fwd, &rk, rev);
}

/* True if the client may open a flow to this frontend
 * (loadBalancerSourceRanges). */
static __always_inline int lb4_source_allowed(const struct svc_value *svc, __be32 client)
{
	struct src_range_key k = {
		.prefixlen = 64,
		.svc_id = svc->svc_id,
		.addr = client,
	};

	if (!(svc->flags & SVC_F_SRC_RANGES))
		return 1;
	return bpf_map_lookup_elem(&src_ranges_v1, &k) != NULL;
}

/* Route of a packet from src to dst arriving on `ifindex`, as the stack
 * would forward it (with the source address the node would use toward dst
 * when `want_src`). Returns the BPF_FIB_LKUP_RET_* code. */
static __always_inline int lb4_fib(void *ctx, struct bpf_fib_lookup *fib, __u32 ifindex,
				   __be32 src, __be32 dst, __u8 proto, __u16 tot_len, int want_src)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET;
	fib->l4_protocol = proto;
	fib->tot_len = tot_len;
	fib->ifindex = ifindex;
	fib->ipv4_src = src;
	fib->ipv4_dst = dst;
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), want_src ? BPF_FIB_LOOKUP_SRC : 0);
}

/* True if the route found leaves through a node NIC (svclb's XDP is on it):
 * the backend is on another node. */
static __always_inline int lb4_via_node_nic(const struct bpf_fib_lookup *fib)
{
	__u32 oif = fib->ifindex;

	return bpf_map_lookup_elem(&tx_ports_v1, &oif) != NULL;
}

/* The decision for one parsed packet.
 * Returns LB_PASS, LB_DNAT or LB_RNAT (with *v filled), or -DROP_*; on
 * -DROP_NO_BACKEND v->svc_id names the Service (the caller rejects).
 * Order: the CT lookup comes first, keyed on the packet's own 5-tuple, so an
 * established flow (either direction) costs two hash lookups (its entry and,
 * in ct_relink, the flow's other one) plus an inlined array read; the
 * service map is only consulted for a new flow. A forward CT
 * entry whose backend was removed from the service is ignored: the flow is
 * balanced again (Kubernetes: a removed endpoint takes no more traffic). A
 * terminating backend keeps its flows.
 * On a node NIC (mode != LB_MODE_POD) a new flow to a node-facing frontend
 * (SVC_F_EXTERNAL, not SVC_F_LOCAL_ONLY) whose backend is routed out of a
 * node NIC is source-NATed to the address the node uses toward it; the
 * route is left in *fib (v->fib_done). XDP cannot resolve a missing
 * neighbour: it passes such a flow untouched (LB_PASS) to the tc slow path. */
static __always_inline int lb4_decide(const struct pkt4 *p, struct lb_verdict *v, void *ctx,
				      int mode, __u32 ifindex, struct bpf_fib_lookup *fib)
{
	struct ct_key ck = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.proto = p->proto,
	};
	struct ct_value *ct = NULL;
	void *ct_map = &ct_v2;
	struct backend_value *be;
	struct svc_value *svc;
	__u32 now = ct_now();
	int est_stale = 0;
	__u32 hash;
	int id;

	/* An entry idle past its lifetime is stale (a closed flow whose tuple
	 * is now used by an unrelated connection): ignored. A bare SYN on a
	 * closing flow is a new connection reusing the tuple: balanced anew.
	 * TCP looks in the established map first; UDP only in ct_v2. */
	if (p->proto == IPPROTO_TCP) {
		ct = bpf_map_lookup_elem(&ct_est_v2, &ck);
		if (ct && !ct_usable(ct, p, now)) {
			est_stale = 1;
			ct = NULL;
		} else if (ct) {
			ct_map = &ct_est_v2;
		}
	}
	if (!ct) {
		ct = bpf_map_lookup_elem(&ct_v2, &ck);
		if (ct && !ct_usable(ct, p, now))
			ct = NULL;
	}
	if (ct && ct->dir == CT_DIR_FORWARD) {
		/* A FORWARD entry whose backend was removed from the service
		 * is ignored: the flow is balanced again below. */
		__u32 bid = ct->backend_id;

		be = bpf_map_lookup_elem(&backends_v1, &bid);
		if (!be || be->state == BE_STATE_EMPTY || be->svc_id != ct->svc_id) {
			/* The new entries go to ct_v2, so an established one
			 * must not shadow them. */
			if (ct_map == &ct_est_v2)
				est_stale = 1;
			ct = NULL;
		}
	}
	if (ct && ct_relink(ct_map, ct, &ck, now)) {
		bpf_map_delete_elem(ct_map, &ck); /* an orphan: untracked now */
		ct = NULL;
	}
	if (ct) {
		if (ct->last_seen != now)
			ct->last_seen = now; /* at most one write per tick */
		if (p->tcp_flags & (TCPF_FIN | TCPF_RST))
			ct_closing(ct_map, ct, &ck, p);

		v->addr = ct->nat_addr;
		v->port = ct->nat_port;
		v->svc_id = ct->svc_id;
		v->backend_id = ct->backend_id;
		v->new_flow = 0;
		v->ct_flags = ct->flags & (CT_F_SNAT | CT_F_EXTERNAL);
		v->snat_addr = ct->snat_addr;
		v->snat_port = ct->snat_port;
		if (ct->dir == CT_DIR_REPLY)
			return LB_RNAT;
		if (ct_map == &ct_v2 &&
		    (p->tcp_flags & (TCPF_SYN | TCPF_ACK | TCPF_RST | TCPF_FIN)) == TCPF_ACK)
			ct_promote(&ck, ct, p);
		return LB_DNAT;
	}
	/* A stale established entry would shadow the new flow's entry. */
	if (est_stale)
		bpf_map_delete_elem(&ct_est_v2, &ck);

	svc = svc_lookup_master(p->daddr, p->dport, p->proto);
	if (!svc) {
		/* On a NIC with svclb's XDP, tc also sees what XDP translated
		 * (and took over) already. */
		if (mode != LB_MODE_TC_EXT || !bpf_map_lookup_elem(&nic_xdp_v1, &ifindex))
			ct_take_over_tuple(p);
		return LB_PASS;
	}
	v->svc_id = svc->svc_id;
	if (!lb4_source_allowed(svc, p->saddr))
		return -DROP_SOURCE_RANGE;
	if ((svc->flags & SVC_F_NO_LOCAL_EPS) && svc->total == 0)
		return -DROP_NO_LOCAL_EP;
	/* Affinity hashes the client address only (all of a client's
	 * connections must agree); otherwise the whole 5-tuple. */
	hash = (svc->flags & SVC_F_AFFINITY)
		       ? hash_3words(p->saddr, p->daddr, p->proto)
		       : hash_3words(p->saddr, p->daddr,
				     ((__u32)p->sport << 16 | p->dport) ^ p->proto);
	id = lb4_select_affine(p->daddr, p->dport, p->proto, svc, p->saddr, hash, &be);
	if (id < 0)
		return id;

	v->addr = be->addr;
	v->port = be->port;
	v->backend_id = (__u32)id;
	v->new_flow = 1;

	{
		struct ct_value fwd = {
			.nat_addr = be->addr,
			.nat_port = be->port,
			.dir = CT_DIR_FORWARD,
			.backend_id = (__u32)id,
			.svc_id = svc->svc_id,
			.last_seen = now,
		};
		struct ct_value rev = {
			.nat_addr = p->daddr,
			.nat_port = p->dport,
			.dir = CT_DIR_REPLY,
			.backend_id = (__u32)id,
			.svc_id = svc->svc_id,
			.last_seen = now,
		};

		if (svc->flags & SVC_F_EXTERNAL) {
			fwd.flags = CT_F_EXTERNAL;
			rev.flags = CT_F_EXTERNAL;
		}
		if (mode != LB_MODE_POD &&
		    (svc->flags & (SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY)) == SVC_F_EXTERNAL) {
			/* tc: tot_len 0 (the skb's own MTU check, which lets
			 * GSO skbs through; see tc_forward). */
			int rc = lb4_fib(ctx, fib, ifindex, p->saddr, be->addr, p->proto,
					 mode == LB_MODE_XDP_EXT ? p->tot_len : 0, 1);

			if ((rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH) &&
			    lb4_via_node_nic(fib)) {
				if (rc == BPF_FIB_LKUP_RET_NO_NEIGH && mode == LB_MODE_XDP_EXT)
					return LB_PASS; /* tc resolves the neighbour */
				fwd.flags |= CT_F_SNAT;
				fwd.snat_addr = fib->ipv4_src;
				rev.flags |= CT_F_SNAT;
				rev.snat_addr = p->saddr;
				rev.snat_port = p->sport;
				v->fib_done = 1;
			} else if (rc == BPF_FIB_LKUP_RET_BLACKHOLE ||
				   rc == BPF_FIB_LKUP_RET_UNREACHABLE ||
				   rc == BPF_FIB_LKUP_RET_PROHIBIT) {
				return -DROP_FIB;
			}
			/* Otherwise the backend is local: DNAT only, the
			 * stack delivers it and the client address stays. */
		}
		id = ct_create(&ck, &fwd, &rev, p->proto, now);
		if (id < 0)
			return id;
		v->ct_flags = fwd.flags & (CT_F_SNAT | CT_F_EXTERNAL);
		v->snat_addr = fwd.snat_addr;
		v->snat_port = fwd.snat_port;
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
