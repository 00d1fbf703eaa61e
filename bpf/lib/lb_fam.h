/* SPDX-License-Identifier: Apache-2.0 */
/* The family-generic decision (lib/family.h): compiled once per family by
 * lib/lb.h, so no include guard. */

static __always_inline struct svc_value *FN(svc, lookup_scope)(FAM_ADDR vip, __be16 port,
							       __u8 proto, __u8 scope)
{
	FAM_SVC_KEY key = {
		.vip = vip,
		.port = port,
		.proto = proto,
		.scope = scope,
		.slot = 0,
	};

	return bpf_map_lookup_elem(&FAM_SVC_MAP, &key);
}

static __always_inline struct svc_value *FN(svc, lookup_master)(FAM_ADDR vip, __be16 port,
								__u8 proto)
{
	return FN(svc, lookup_scope)(vip, port, proto, SVC_SCOPE_EXTERNAL);
}

/* A new flow from this node's own pods or processes to an
 * externalTrafficPolicy: Local frontend goes to any of the Service's
 * endpoints, as kube-proxy short-circuits such traffic: the frontend's
 * SVC_SCOPE_INTERNAL twin (SVC_F_NODE_VIEW) when the daemon wrote one,
 * else the frontend itself. */
static __always_inline struct svc_value *FN(svc, node_view)(struct svc_value *svc, FAM_ADDR vip,
							    __be16 port, __u8 proto)
{
	struct svc_value *twin;

	if (!(svc->flags & SVC_F_LOCAL_ONLY))
		return svc;
	twin = FN(svc, lookup_scope)(vip, port, proto, SVC_SCOPE_INTERNAL);
	return twin ? twin : svc;
}

/* Picks a backend for a new flow of the frontend whose master is `svc`.
 * `hash` is the flow hash (Maglev; random slots with `sticky`).
 * Returns the backend id (> 0) and sets *be, or -DROP_NO_BACKEND /
 * -DROP_BACKEND_GONE.
 * Endpoint conditions (KEP-1669): ready backends (slots 1..count) take new
 * flows; only when none is ready do terminating-but-serving ones, which the
 * daemon then placed in slots 1..total (and in the Maglev table). */
static __always_inline int FN(lb, select)(FAM_ADDR vip, __be16 port, __u8 proto,
					  const struct svc_value *svc, __u32 hash, int sticky,
					  struct backend_value **be)
{
	FAM_SVC_KEY key = {
		.vip = vip,
		.port = port,
		.proto = proto,
		.scope = (svc->flags & SVC_F_NODE_VIEW) ? SVC_SCOPE_INTERNAL : SVC_SCOPE_EXTERNAL,
	};
	__u32 n = svc->count ? svc->count : svc->total;
	struct backend_value *b = NULL;
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

			if (bid && (b = lb_backend_ok(svc, *bid))) {
				*be = b;
				return (int)*bid;
			}
		}
		/* No table (yet) or a stale entry: fall back to the slots. */
	}

	/* Random slots pick at random per new flow; `sticky` callers (the
	 * socket hooks for UDP, which see every datagram of an unconnected
	 * socket as a new flow) pick by `hash`, so one socket keeps one
	 * backend while the Service's endpoints stay the same. */
	key.slot = ((sticky ? hash : bpf_get_prandom_u32()) % n) + 1;
	slot = bpf_map_lookup_elem(&FAM_SVC_MAP, &key);
	if (!slot)
		return -DROP_BACKEND_GONE;
	id = slot->backend_id;
	b = lb_backend_ok(svc, id);
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
static __always_inline int FN(lb, select_affine_pick)(FAM_ADDR vip, __be16 port, __u8 proto,
						      const struct svc_value *svc, FAM_ADDR client,
						      __u32 hash, int sticky,
						      struct backend_value **be)
{
	FAM_AFF_KEY ak = { .svc_id = svc->svc_id, .client = client };
	struct affinity_value *av;
	__u64 now;
	int id;

	if (!(svc->flags & SVC_F_AFFINITY))
		return FN(lb, select)(vip, port, proto, svc, hash, sticky, be);

	now = bpf_ktime_get_ns();
	av = bpf_map_lookup_elem(&FAM_AFF_MAP, &ak);
	if (av && svc->count &&
	    now - av->last_used_ns <= (__u64)svc->affinity_timeout * NSEC_PER_SEC) {
		struct backend_value *b = lb_backend_ok(svc, av->backend_id);

		if (b && b->state == BE_STATE_ACTIVE) {
			av->last_used_ns = now;
			*be = b;
			return (int)av->backend_id;
		}
	}
	id = FN(lb, select)(vip, port, proto, svc, hash, sticky, be);
	if (id > 0) {
		struct affinity_value nv = { .backend_id = (__u32)id, .last_used_ns = now };

		bpf_map_update_elem(&FAM_AFF_MAP, &ak, &nv, BPF_ANY);
	}
	return id;
}

static __always_inline int FN(lb, select_affine)(FAM_ADDR vip, __be16 port, __u8 proto,
						 const struct svc_value *svc, FAM_ADDR client,
						 __u32 hash, struct backend_value **be)
{
	return FN(lb, select_affine_pick)(vip, port, proto, svc, client, hash, 0, be);
}

/* True if the client may open a flow to this frontend
 * (loadBalancerSourceRanges). */
static __always_inline int FN(lb, source_allowed)(const struct svc_value *svc, FAM_ADDR client)
{
	FAM_SRC_KEY k = {
		.prefixlen = FAM_SRC_FULL_PREFIX,
		.svc_id = svc->svc_id,
		.addr = client,
	};

	if (!(svc->flags & SVC_F_SRC_RANGES))
		return 1;
	return bpf_map_lookup_elem(&FAM_SRC_MAP, &k) != NULL;
}

/* The verdict for a packet of a tracked flow (entry `ct` of `map`, key
 * `ck`): refreshes it, marks it closing on FIN/RST, and promotes a TCP flow
 * to ct_est_v2 on the client's first bare ACK. Returns LB_DNAT or LB_RNAT. */
static __always_inline int FN(lb, tracked)(void *map, FAM_CT_VALUE *ct, const FAM_CT_KEY *ck,
					   const FAM_PKT *p, __u32 now, FAM_VERDICT *v)
{
	if (ct->last_seen != now)
		ct->last_seen = now; /* at most one write per tick */
	if (p->tcp_flags & (TCPF_FIN | TCPF_RST))
		FN(ct, closing)(map, ct, ck, p);

	v->addr = ct->nat_addr;
	v->port = ct->nat_port;
	v->svc_id = ct->svc_id;
	v->backend_id = ct->backend_id;
	v->new_flow = 0;
	v->ct_flags = ct->flags & (CT_F_SNAT | CT_F_EXTERNAL | CT_F_HAIRPIN);
	v->snat_addr = ct->snat_addr;
	v->snat_port = ct->snat_port;
	if (ct->dir == CT_DIR_REPLY)
		return LB_RNAT;
	if (map == &FAM_CT_MAP &&
	    (p->tcp_flags & (TCPF_SYN | TCPF_ACK | TCPF_RST | TCPF_FIN)) == TCPF_ACK)
		FN(ct, promote)(ck, ct, p);
	return LB_DNAT;
}

/* A pod's new flow whose backend is that very pod (hairpin): the source the
 * node uses toward the pod (the FIB's answer, as kube-proxy's masquerade
 * picks it) becomes the flow's SNAT address. Returns FIB_READY with
 * *snat_addr set, or 0 when the FIB gives no address (plain DNAT: the
 * pod's answer then stays inside it). */
static __always_inline int FN(lb, hairpin_src)(void *ctx, struct bpf_fib_lookup *fib, __u32 ifindex,
					       const FAM_PKT *p, FAM_ADDR *snat_addr)
{
	int rc = FN(lb, fib)(ctx, fib, ifindex, p->saddr, p->saddr, p->proto, 0, 1);
	FAM_ADDR src;

	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	src = FN(lb, fib_src)(fib);
	if (FAM_ADDR_ZERO(src))
		return 0;
	*snat_addr = src;
	return FIB_READY;
}

/* The verdict for a backend's answer to a single-entry flow (FORWARD
 * entry `ct`, key `fk`: the client and the frontend): refreshes it and
 * marks it closing on FIN/RST (its only entry: either side's FIN gives the
 * whole flow the closing lifetime). Returns LB_RNAT. */
static __always_inline int FN(lb, single_reply)(FAM_CT_VALUE *ct, const FAM_CT_KEY *fk,
						const FAM_PKT *p, __u32 now, FAM_VERDICT *v)
{
	if (ct->last_seen != now)
		ct->last_seen = now;
	if (p->tcp_flags & (TCPF_FIN | TCPF_RST))
		ct->flags |= CT_F_CLOSING;
	v->addr = fk->daddr;
	v->port = fk->dport;
	v->svc_id = ct->svc_id;
	v->backend_id = ct->backend_id;
	v->new_flow = 0;
	v->ct_flags = 0;
	return LB_RNAT;
}

/* On a pod interface (LB_MODE_POD) only hairpin flows are source-NATed
 * (lb4_hairpin_src). On a node NIC (mode != LB_MODE_POD), a new flow to a
 * node-facing frontend (SVC_F_EXTERNAL, not SVC_F_LOCAL_ONLY) whose backend
 * is routed out of a node NIC (another node) is source-NATed to the address
 * the node uses toward it; the route is left in *fib. Returns FIB_READY or
 * (tc) FIB_NO_NEIGH: source-NAT, *snat_addr set; 0: DNAT only (the backend
 * is local, the stack delivers it and the client address stays);
 * LB_SNAT_TO_TC: XDP and the next hop has no neighbour entry (the flow is
 * passed untouched to tc, which resolves it); or -DROP_FIB. */
static __always_inline int FN(lb, snat_choice)(void *ctx, struct bpf_fib_lookup *fib, int mode,
					       __u32 ifindex, const FAM_PKT *p,
					       const struct svc_value *svc, FAM_ADDR backend,
					       FAM_ADDR *snat_addr)
{
	int rc;

	if (mode == LB_MODE_POD)
		return FAM_ADDR_EQ(backend, p->saddr)
			       ? FN(lb, hairpin_src)(ctx, fib, ifindex, p, snat_addr)
			       : 0;
	if ((svc->flags & (SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY)) != SVC_F_EXTERNAL)
		return 0;
	/* tc: tot_len 0 (the skb's own MTU check, which lets GSO skbs
	 * through; see lb4_route). */
	rc = FN(lb, fib)(ctx, fib, ifindex, p->saddr, backend, p->proto,
			 mode == LB_MODE_XDP_EXT ? p->tot_len : 0, 1);
	if ((rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH) &&
	    lb_via_node_nic(fib)) {
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH && mode == LB_MODE_XDP_EXT)
			return LB_SNAT_TO_TC;
		*snat_addr = FN(lb, fib_src)(fib);
		return rc == BPF_FIB_LKUP_RET_SUCCESS ? FIB_READY : FIB_NO_NEIGH;
	}
	if (rc == BPF_FIB_LKUP_RET_BLACKHOLE || rc == BPF_FIB_LKUP_RET_UNREACHABLE ||
	    rc == BPF_FIB_LKUP_RET_PROHIBIT)
		return -DROP_FIB;
	return 0;
}

/* A new flow of frontend `svc`: source ranges, conditions, the backend,
 * the source-NAT choice and the CT entry or entries. Returns LB_DNAT (*v
 * filled), LB_PASS, or -DROP_* (-DROP_NO_BACKEND: the caller rejects). */
static __always_inline int FN(lb, new_flow)(const FAM_PKT *p, const FAM_CT_KEY *ck,
					    const struct svc_value *svc, __u32 now, FAM_VERDICT *v,
					    void *ctx, int mode, __u32 ifindex,
					    struct bpf_fib_lookup *fib)
{
	struct backend_value *be =
		NULL; /* clang may read it uninitialized on a path the verifier walks (R2 !read_ok) */
	FAM_ADDR addr = { 0 };
	__u32 hash;
	int id, snat;

	v->svc_id = svc->svc_id;
	if (!FN(lb, source_allowed)(svc, p->saddr))
		return -DROP_SOURCE_RANGE;
	if ((svc->flags & SVC_F_NO_LOCAL_EPS) && svc->total == 0)
		return -DROP_NO_LOCAL_EP;
	/* Affinity hashes the client address only (all of a client's
	 * connections must agree); otherwise the whole 5-tuple. */
	hash = (svc->flags & SVC_F_AFFINITY)
		       ? hash_3words(FAM_ADDR_FOLD(p->saddr), FAM_ADDR_FOLD(p->daddr), p->proto)
		       : hash_3words(FAM_ADDR_FOLD(p->saddr), FAM_ADDR_FOLD(p->daddr),
				     ((__u32)p->sport << 16 | p->dport) ^ p->proto);
	id = FN(lb, select_affine)(p->daddr, p->dport, p->proto, svc, p->saddr, hash, &be);
	if (id < 0)
		return id;
	if (FN(lb, backend_addr)((__u32)id, be, &addr))
		return -DROP_BACKEND_GONE;

	v->addr = addr;
	v->port = be->port;
	v->backend_id = (__u32)id;
	v->new_flow = 1;

	{
		__u8 flags = (svc->flags & SVC_F_EXTERNAL) ? CT_F_EXTERNAL : 0;
		FAM_CT_VALUE fwd = {
			.nat_addr = addr,
			.nat_port = be->port,
			.dir = CT_DIR_FORWARD,
			.flags = flags,
			.backend_id = (__u32)id,
			.svc_id = svc->svc_id,
			.last_seen = now,
		};
		FAM_CT_VALUE rev = {
			.nat_addr = p->daddr,
			.nat_port = p->dport,
			.dir = CT_DIR_REPLY,
			.flags = flags,
			.backend_id = (__u32)id,
			.svc_id = svc->svc_id,
			.last_seen = now,
		};

		snat = FN(lb, snat_choice)(ctx, fib, mode, ifindex, p, svc, addr, &fwd.snat_addr);
		if (snat == LB_SNAT_TO_TC)
			return LB_PASS;
		if (snat < 0)
			return snat;
		if (snat) {
			__u8 nat = mode == LB_MODE_POD ? CT_F_SNAT | CT_F_HAIRPIN : CT_F_SNAT;

			fwd.flags |= nat;
			rev.flags |= nat;
			rev.snat_addr = p->saddr;
			rev.snat_port = p->sport;
			v->fib_state = (__u8)snat;
		} else {
			/* The backend's designated ClusterIP frontend is this
			 * one: a single entry. Another frontend's: a live
			 * single-entry flow of that one on the same client
			 * tuple would take this flow's answers. */
			FAM_BE_REV_VALUE *r = FN(ct, be_rev)(addr, be->port, p->proto);

			if (r && r->svc_id == svc->svc_id && !(svc->flags & SVC_F_EXTERNAL)) {
				fwd.flags |= CT_F_SINGLE;
			} else if (r) {
				FN(ct, single_take_over)(r, p, addr, be->port);
			}
		}
		id = FN(ct, create)(ck, &fwd, &rev, p->proto, now);
		if (id < 0)
			return id;
		v->ct_flags = fwd.flags & (CT_F_SNAT | CT_F_EXTERNAL | CT_F_HAIRPIN);
		v->snat_addr = fwd.snat_addr;
		v->snat_port = fwd.snat_port;
	}
	return LB_DNAT;
}

/* The decision for one parsed packet.
 * Returns LB_PASS, LB_DNAT or LB_RNAT (with *v filled), or -DROP_*; on
 * -DROP_NO_BACKEND v->svc_id names the Service (the caller rejects).
 * Order: first lb_filter_v1 (inlined array reads): a packet whose
 * destination is no frontend and whose source is no backend cannot be a
 * Service flow's, and passes without a hash lookup (toward a backend, its
 * opening packet still runs ct_take_over_tuple). A packet from a backend
 * first looks for the single-entry flow it answers (be_rev_v1, then that
 * flow's FORWARD key). Then the CT lookup, keyed on the packet's own
 * 5-tuple: a single-entry flow's client packets cost one hash lookup, a
 * pair's packets two (its entry and, in ct_relink, the flow's other one),
 * plus an inlined array read; the service map is only consulted for a new
 * flow. */
static __always_inline int FN(lb, decide)(const FAM_PKT *p, FAM_VERDICT *v, void *ctx, int mode,
					  __u32 ifindex, struct bpf_fib_lookup *fib)
{
	FAM_CT_KEY ck = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.proto = p->proto,
	};
	__u32 now = ct_now();
	struct svc_value *svc;
	FAM_CT_VALUE *ct;
	void *map;

	/* Nothing computed here stays live across the CT lookup: the IPv6
	 * programs' stack has no 16 bytes to spare (the global lb6_decide and
	 * its caller's frame together stay within 512). */
	if (lb_filter_test(SVCLB_FILTER_BITS + lb_filter_bit(FAM_ADDR_FOLD(p->saddr), p->sport))) {
		/* From a backend: first its answer to a single-entry flow,
		 * whose own tuple has no entry. To no frontend and to a
		 * client tuple no CT entry has (flow_filter_v1): an answer on
		 * a direct or socket-balanced connection, nothing to look up. */
		FAM_CT_KEY fk;
		void *fmap;

		if (!lb_filter_test(lb_filter_bit(FAM_ADDR_FOLD(p->daddr), p->dport)) &&
		    !flowf_maybe(FAM_ADDR_FOLD(p->daddr), p->dport)) {
			if (p->frag == PKT_FRAG_LATER)
				return LB_PASS;
			goto untracked;
		}
		ct = FN(ct, single_reply)(p, now, &fk, &fmap);
		if (ct)
			return FN(lb, single_reply)(ct, &fk, p, now, v);
	} else if (!lb_filter_test(lb_filter_bit(FAM_ADDR_FOLD(p->daddr), p->dport))) {
		/* No CT entry nor Service can be this packet's. Toward a
		 * backend (a direct or socket-balanced flow), its opening
		 * packet may take an older Service flow's tuple over. */
		if (p->frag != PKT_FRAG_LATER &&
		    lb_filter_test(SVCLB_FILTER_BITS +
				   lb_filter_bit(FAM_ADDR_FOLD(p->daddr), p->dport)))
			goto untracked;
		return LB_PASS;
	}
	/* A TCP SYN from a client tuple that is no CT entry's client side
	 * (flow_filter_v1 has no false negatives) has no entry to find: no
	 * lookup. Its new flow sets that very slot, so the read costs no
	 * line of its own. */
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN &&
	    !flowf_maybe(FAM_ADDR_FOLD(p->saddr), p->sport))
		ct = NULL;
	else
		ct = FN(ct, lookup)(p, &ck, now, &map);
	if (ct)
		return FN(lb, tracked)(map, ct, &ck, p, now, v);
	/* A later fragment never makes a new flow (lib/frag.h). */
	if (p->frag == PKT_FRAG_LATER)
		return LB_PASS;

	/* A backend's answer without a CT entry is no new flow either. */
	svc = lb_filter_test(lb_filter_bit(FAM_ADDR_FOLD(p->daddr), p->dport))
		      ? FN(svc, lookup_master)(p->daddr, p->dport, p->proto)
		      : NULL;
	if (svc && mode == LB_MODE_POD)
		svc = FN(svc, node_view)(svc, p->daddr, p->dport, p->proto);
	if (svc)
		return FN(lb, new_flow)(p, &ck, svc, now, v, ctx, mode, ifindex, fib);
untracked:
	/* On a NIC with svclb's XDP, tc also sees what XDP translated (and
	 * took over) already. */
	if (mode != LB_MODE_TC_EXT || !bpf_map_lookup_elem(&nic_xdp_v1, &ifindex))
		FN(ct, take_over_tuple)(p);
	return LB_PASS;
}
