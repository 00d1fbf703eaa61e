/* SPDX-License-Identifier: Apache-2.0 */
/* The family-generic connection tracking (lib/family.h): compiled once per
 * family by lib/ct.h, so no include guard. ct4_* use ct_v2 / ct_est_v2,
 * ct6_* ct6_v1 / ct6_est_v1; the logic is the same. */

static __always_inline int FN(ct, alive)(const FAM_CT_VALUE *ct, __u8 proto, __u32 now)
{
	__u32 life = (ct->flags & CT_F_CLOSING) ? cfg_ct_life_closing
		     : proto == IPPROTO_TCP	? cfg_ct_life_tcp
						: cfg_ct_life_nontcp;

	return now - ct->last_seen <= life;
}

/* Usable for this packet: alive, and not the opening of a new connection
 * on a closing flow's tuple: a bare SYN (balanced anew) or a SYN-ACK (the
 * answer to a direct connection that reuses the client port; a closing flow
 * has no handshake left to answer), which passes untranslated. */
static __always_inline int FN(ct, usable)(const FAM_CT_VALUE *ct, const FAM_PKT *p, __u32 now)
{
	return FN(ct, alive)(ct, p->proto, now) &&
	       !((ct->flags & CT_F_CLOSING) && (p->tcp_flags & TCPF_SYN));
}

/* The key of the other entry of the flow `ct`, whose own key is `k`. */
static __always_inline void FN(ct, pair_key)(const FAM_CT_VALUE *ct, const FAM_CT_KEY *k,
					     FAM_CT_KEY *pk)
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
static __always_inline int FN(ct, relink)(void *map, FAM_CT_VALUE *ct, const FAM_CT_KEY *k,
					  __u32 now)
{
	int snat = ct->flags & CT_F_SNAT;
	FAM_CT_KEY pk = {}, back = {};
	FAM_CT_VALUE *e;

	FN(ct, pair_key)(ct, k, &pk);
	e = bpf_map_lookup_elem(map, &pk);
	/* A TCP flow's entries may sit in the other map (a promotion that
	 * did not complete), and a newer flow on the same tuple may be there:
	 * never rebuild a key the other map holds. */
	if (!e && k->proto == IPPROTO_TCP)
		e = bpf_map_lookup_elem(map == (void *)&FAM_CT_MAP ? (void *)&FAM_CT_EST_MAP
								   : (void *)&FAM_CT_MAP,
					&pk);
	if (!e) {
		FAM_CT_VALUE pv = {
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
		if (pv.dir == CT_DIR_REPLY)
			flowf_set(FAM_ADDR_FOLD(pk.daddr), pk.dport);
		else
			flowf_set(FAM_ADDR_FOLD(pk.saddr), pk.sport);
		if (!bpf_map_update_elem(map, &pk, &pv, BPF_NOEXIST)) {
			count_ct_event(CT_EV_RELINKED);
			return 0;
		}
		e = bpf_map_lookup_elem(map, &pk); /* another CPU was first */
		if (!e)
			return 0;
	}
	FN(ct, pair_key)(e, &pk, &back);
	if (e->dir == ct->dir || !FAM_ADDR_EQ(back.saddr, k->saddr) ||
	    !FAM_ADDR_EQ(back.daddr, k->daddr) || back.sport != k->sport ||
	    back.dport != k->dport) {
		count_ct_event(CT_EV_ORPHANED);
		return -1;
	}
	if (e->last_seen != now)
		e->last_seen = now;
	return 0;
}

/* A pair's promotion: move the flow's two entries from ct_v2
 * to ct_est_v2 (REPLY first, as at creation). If the REPLY entry is gone
 * the flow stays where it is. */
static __always_inline void FN(ct, promote_pair)(const FAM_CT_KEY *ck, const FAM_CT_VALUE *fwd,
						 const FAM_PKT *p)
{
	FAM_CT_KEY rk = {
		.saddr = fwd->nat_addr,
		.daddr = (fwd->flags & CT_F_SNAT) ? fwd->snat_addr : p->saddr,
		.sport = fwd->nat_port,
		.dport = (fwd->flags & CT_F_SNAT) ? fwd->snat_port : p->sport,
		.proto = p->proto,
	};
	FAM_CT_VALUE *rev = bpf_map_lookup_elem(&FAM_CT_MAP, &rk);
	FAM_CT_VALUE r, f;

	if (!rev)
		return;
	r = *rev;
	f = *fwd;
	if (bpf_map_update_elem(&FAM_CT_EST_MAP, &rk, &r, BPF_ANY) ||
	    bpf_map_update_elem(&FAM_CT_EST_MAP, ck, &f, BPF_ANY))
		return;
	/* The second insert may have evicted the first (see ct_add_forward):
	 * then the flow stays in ct_v2 too, and ct_relink completes it. */
	if (!bpf_map_lookup_elem(&FAM_CT_EST_MAP, &rk) || !bpf_map_lookup_elem(&FAM_CT_EST_MAP, ck))
		return;
	bpf_map_delete_elem(&FAM_CT_MAP, ck);
	bpf_map_delete_elem(&FAM_CT_MAP, &rk);
}

/* The client ACKed the handshake: a single-entry flow's one entry moves to
 * ct_est_v2; a pair goes as ct_promote_pair says. */
static __always_inline void FN(ct, promote)(const FAM_CT_KEY *ck, const FAM_CT_VALUE *fwd,
					    const FAM_PKT *p)
{
	if (fwd->flags & CT_F_SINGLE) {
		FAM_CT_VALUE f = *fwd;

		/* One entry moves; if the insert failed or was evicted at
		 * once, the flow stays in ct_v2 (its lookups look there too). */
		if (bpf_map_update_elem(&FAM_CT_EST_MAP, ck, &f, BPF_ANY) ||
		    !bpf_map_lookup_elem(&FAM_CT_EST_MAP, ck))
			return;
		bpf_map_delete_elem(&FAM_CT_MAP, ck);
		return;
	}
	FN(ct, promote_pair)(ck, fwd, p);
}

/* FIN or RST: this direction's entry gets the closing lifetime. A RST ends
 * both directions at once, so the paired entry (in the same map) is marked
 * too (one more lookup, for RST segments only; a single entry is the whole
 * flow). */
static __always_inline void FN(ct, closing)(void *ct_map, FAM_CT_VALUE *ct, const FAM_CT_KEY *ck,
					    const FAM_PKT *p)
{
	ct->flags |= CT_F_CLOSING;
	if ((p->tcp_flags & TCPF_RST) && !(ct->flags & CT_F_SINGLE)) {
		FAM_CT_KEY pk = {};
		FAM_CT_VALUE *pair;

		FN(ct, pair_key)(ct, ck, &pk);
		pair = bpf_map_lookup_elem(ct_map, &pk);
		if (pair)
			pair->flags |= CT_F_CLOSING;
	}
}

/* Single-entry flows (CT_F_SINGLE, svclb_abi.h be_rev_v1). */

/* The designated frontend of backend `addr`:`port`, or NULL. */
static __always_inline FAM_BE_REV_VALUE *FN(ct, be_rev)(FAM_ADDR addr, __be16 port, __u8 proto)
{
	FAM_BE_REV_KEY k = { .addr = addr, .port = port, .proto = proto };

	return bpf_map_lookup_elem(&FAM_BE_REV_MAP, &k);
}

/* `ct` (or NULL) is a single-entry flow's FORWARD entry to exactly backend
 * `be_addr`:`be_port` of frontend `r`. */
static __always_inline int FN(ct, is_single_of)(const FAM_CT_VALUE *ct, const FAM_BE_REV_VALUE *r,
						FAM_ADDR be_addr, __be16 be_port)
{
	return ct && ct->dir == CT_DIR_FORWARD && (ct->flags & CT_F_SINGLE) &&
	       FAM_ADDR_EQ(ct->nat_addr, be_addr) && ct->nat_port == be_port &&
	       ct->svc_id == r->svc_id;
}

/* The FORWARD entry of the single-entry flow between `client` and backend
 * `be_addr`:`be_port` whose designated frontend is `r`: its key is rebuilt
 * (client -> the frontend) and the entry must be a single FORWARD one to
 * exactly this backend, so traffic of the backend's own address that
 * belongs to no such flow is never rewritten. ct_est_v2 first for TCP, if
 * alive there: a dead established entry of an earlier flow on the same
 * tuple (its slot dropped by a rebuild, so the new flow's bare SYN made its
 * ct_v2 entry without the lookup that deletes such an entry) must not hide
 * the new flow's. Sets *fk and *map; returns the entry (a ct_v2 one alive
 * or not) or NULL. */
static __always_inline FAM_CT_VALUE *FN(ct, single_find)(const FAM_BE_REV_VALUE *r, __u8 proto,
							 FAM_ADDR be_addr, __be16 be_port,
							 FAM_ADDR client, __be16 client_port,
							 __u32 now, FAM_CT_KEY *fk, void **map)
{
	FAM_CT_VALUE *ct;

	__builtin_memset(fk, 0, sizeof(*fk));
	fk->saddr = client;
	fk->daddr = r->vip;
	fk->sport = client_port;
	fk->dport = r->port;
	fk->proto = proto;
	*map = &FAM_CT_EST_MAP;
	if (proto == IPPROTO_TCP) {
		ct = bpf_map_lookup_elem(&FAM_CT_EST_MAP, fk);
		if (FN(ct, is_single_of)(ct, r, be_addr, be_port) && FN(ct, alive)(ct, proto, now))
			return ct;
	}
	*map = &FAM_CT_MAP;
	ct = bpf_map_lookup_elem(&FAM_CT_MAP, fk);
	if (FN(ct, is_single_of)(ct, r, be_addr, be_port))
		return ct;
	return NULL;
}

/* A backend's answer to a single-entry flow: that flow's FORWARD entry
 * (key in *fk, map in *map), usable for this packet and naming a backend
 * that still serves the flow's frontend; or NULL (the packet is then looked
 * up as any other). A removed backend's answers are not translated, as for
 * a pair whose backend is gone (its REPLY entry is not used either). */
static __always_inline FAM_CT_VALUE *FN(ct, single_reply)(const FAM_PKT *p, __u32 now,
							  FAM_CT_KEY *fk, void **map)
{
	FAM_BE_REV_VALUE *r = FN(ct, be_rev)(p->saddr, p->sport, p->proto);
	FAM_CT_VALUE *ct;

	if (!r)
		return NULL;
	ct = FN(ct, single_find)(r, p->proto, p->saddr, p->sport, p->daddr, p->dport, now, fk, map);
	if (!ct || !FN(ct, usable)(ct, p, now))
		return NULL;
	if (!be_owned(ct->backend_id, ct->svc_id))
		return NULL;
	return ct;
}

/* A new flow of another frontend (or a direct one), packet `p`, to the
 * backend `be_addr`:`be_port` would have its answers taken by a live
 * single-entry flow of the backend's designated frontend `r` on the same
 * client tuple: that older entry goes (the newer flow owns the tuple). */
static __always_inline void FN(ct, single_take_over)(const FAM_BE_REV_VALUE *r, const FAM_PKT *p,
						     FAM_ADDR be_addr, __be16 be_port)
{
	FAM_CT_KEY fk;
	void *map;

	if (FN(ct, single_find)(r, p->proto, be_addr, be_port, p->saddr, p->sport, ct_now(), &fk,
				&map))
		bpf_map_delete_elem(map, &fk);
}

/* The live CT entry an ICMP error belongs to (lib/icmp.h), keyed on the
 * error's own direction `ck` (the reversed quote): a pair's entry of that
 * key (ct_est_v2 first for TCP); else, for an error about a packet toward
 * the backend of a single-entry flow (the quote is client -> backend), that
 * flow's FORWARD entry: then *ck becomes its key (client -> the frontend)
 * and *single is set. NULL: no live flow. */
static __always_inline FAM_CT_VALUE *FN(ct, icmp_lookup)(FAM_CT_KEY *ck, __u32 now, int *single)
{
	FAM_BE_REV_VALUE *r;
	FAM_CT_VALUE *ct = NULL;
	void *map;

	*single = 0;
	if (ck->proto == IPPROTO_TCP) {
		ct = bpf_map_lookup_elem(&FAM_CT_EST_MAP, ck);
		if (ct && !FN(ct, alive)(ct, ck->proto, now))
			ct = NULL;
	}
	if (!ct) {
		ct = bpf_map_lookup_elem(&FAM_CT_MAP, ck);
		if (ct && !FN(ct, alive)(ct, ck->proto, now))
			ct = NULL;
	}
	if (ct)
		return ct;
	r = FN(ct, be_rev)(ck->saddr, ck->sport, ck->proto);
	if (!r)
		return NULL;
	ct = FN(ct, single_find)(r, ck->proto, ck->saddr, ck->sport, ck->daddr, ck->dport, now, ck,
				 &map);
	if (!ct || !FN(ct, alive)(ct, ck->proto, now))
		return NULL;
	*single = 1;
	return ct;
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
static __always_inline void FN(ct, take_over_tuple)(const FAM_PKT *p)
{
	FAM_CT_KEY rk = {
		.saddr = p->daddr,
		.daddr = p->saddr,
		.sport = p->dport,
		.dport = p->sport,
		.proto = p->proto,
	};
	void *map = &FAM_CT_MAP;
	FAM_CT_VALUE *e;
	FAM_CT_KEY fk = {};

	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCPF_SYN | TCPF_ACK)) != TCPF_SYN)
		return;
	/* No CT entry has the client's tuple as its client side: no pair's
	 * REPLY key is rk, no single flow's FORWARD key starts at it. */
	if (!flowf_maybe(FAM_ADDR_FOLD(p->saddr), p->sport))
		return;
	if (p->proto == IPPROTO_TCP) {
		e = bpf_map_lookup_elem(&FAM_CT_EST_MAP, &rk);
		if (e)
			map = &FAM_CT_EST_MAP;
		else
			e = bpf_map_lookup_elem(&FAM_CT_MAP, &rk);
	} else {
		e = bpf_map_lookup_elem(&FAM_CT_MAP, &rk);
	}
	if (!e) {
		/* No pair's REPLY entry: a single-entry flow may hold it. */
		FAM_BE_REV_VALUE *r = FN(ct, be_rev)(p->daddr, p->dport, p->proto);

		if (r)
			FN(ct, single_take_over)(r, p, p->daddr, p->dport);
		return;
	}
	if (e->dir != CT_DIR_REPLY)
		return;
	FN(ct, pair_key)(e, &rk, &fk);
	bpf_map_delete_elem(map, &fk);
	bpf_map_delete_elem(map, &rk);
}

/* Adds a new flow's FORWARD entry once its REPLY entry `rk` is in ct_v2.
 * In a full LRU map the FORWARD insert may evict that fresh, never-used
 * REPLY entry (the kernel frees a CPU's unreferenced entries first, and
 * ct_relink keeps every live flow's entries referenced): the lookup marks
 * it used, and if it is gone already it is put back once. Returns 0 or
 * -DROP_CT_INSERT (the FORWARD entry removed again: the REPLY key was
 * taken by another CPU meanwhile, or the map refused). */
static __always_inline int FN(ct, add_forward)(const FAM_CT_KEY *ck, const FAM_CT_VALUE *fwd,
					       const FAM_CT_KEY *rk, const FAM_CT_VALUE *rev)
{
	if (bpf_map_update_elem(&FAM_CT_MAP, ck, fwd, BPF_ANY))
		return -DROP_CT_INSERT;
	if (bpf_map_lookup_elem(&FAM_CT_MAP, rk))
		return 0;
	if (!bpf_map_update_elem(&FAM_CT_MAP, rk, rev, BPF_NOEXIST))
		return 0;
	bpf_map_delete_elem(&FAM_CT_MAP, ck);
	return -DROP_CT_INSERT;
}

/* Inserts a new flow's CT entries into ct_v2. A single-entry flow
 * (CT_F_SINGLE: no SNAT, its backend's designated frontend) is its FORWARD
 * entry alone. A pair: REPLY first (once the
 * FORWARD entry exists the flow is established, and its replies must
 * already be translatable). Without SNAT the REPLY key is the backend's
 * answer to the client; with SNAT it is the answer to snat_addr:port, a
 * port probed until no live flow owns that reply tuple (in either CT map):
 * SNAT ports never collide between flows. Returns 0 or -DROP_*. */
static __always_inline int FN(ct, create)(const FAM_CT_KEY *ck, FAM_CT_VALUE *fwd,
					  FAM_CT_VALUE *rev, __u8 proto, __u32 now)
{
	FAM_CT_KEY rk = {
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
			FAM_CT_VALUE *e;
			__u64 flags = BPF_NOEXIST;

			rk.dport = bpf_htons((__u16)(min + (start + (__u32)i) % range));
			e = bpf_map_lookup_elem(&FAM_CT_EST_MAP, &rk);
			if (e && FN(ct, alive)(e, proto, now))
				continue;
			e = bpf_map_lookup_elem(&FAM_CT_MAP, &rk);
			if (e) {
				if (FN(ct, alive)(e, proto, now))
					continue;
				flags = BPF_ANY; /* a dead flow's port: take it over */
			}
			fwd->snat_port = rk.dport;
			flowf_set(FAM_ADDR_FOLD(rk.daddr), rk.dport);
			if (bpf_map_update_elem(&FAM_CT_MAP, &rk, rev, flags))
				continue; /* another CPU took it meanwhile */
			return FN(ct, add_forward)(ck, fwd, &rk, rev);
		}
		return -DROP_SNAT_PORTS;
	}
	/* The client's slot covers both a pair's REPLY key and a single
	 * entry's FORWARD key. */
	flowf_set(FAM_ADDR_FOLD(ck->saddr), ck->sport);
	if (fwd->flags & CT_F_SINGLE)
		return bpf_map_update_elem(&FAM_CT_MAP, ck, fwd, BPF_ANY) ? -DROP_CT_INSERT : 0;
	if (bpf_map_update_elem(&FAM_CT_MAP, &rk, rev, BPF_ANY))
		return -DROP_CT_INSERT;
	return FN(ct, add_forward)(ck, fwd, &rk, rev);
}

/* Finds the usable CT entry of the packet's flow, keyed on its own 5-tuple
 * `ck`: ct_est_v2 first for TCP, then ct_v2. Sets *map to the entry's map.
 * An entry idle past its lifetime is stale (a closed flow whose tuple is
 * now used by an unrelated connection): ignored. A bare SYN on a closing
 * flow is a new connection reusing the tuple: balanced anew. A FORWARD
 * entry whose backend entry is gone is ignored too: the flow is balanced
 * again (a UDP frontend's removed endpoint, as kube-proxy flushes its UDP
 * conntrack; a TCP frontend's keeps its entry as BE_STATE_REMOVED while
 * its flows live, so its connections go on); a terminating or not-ready
 * backend keeps its flows. A stale established entry that
 * would shadow the new flow's entries (which go to ct_v2) is deleted.
 * Returns the entry, or NULL for a new flow. */
static __always_inline FAM_CT_VALUE *FN(ct, lookup)(const FAM_PKT *p, const FAM_CT_KEY *ck,
						    __u32 now, void **map)
{
	FAM_CT_VALUE *ct = NULL;
	int est_stale = 0;

	*map = &FAM_CT_MAP;
	if (p->proto == IPPROTO_TCP) {
		ct = bpf_map_lookup_elem(&FAM_CT_EST_MAP, ck);
		if (ct && !FN(ct, usable)(ct, p, now)) {
			est_stale = 1;
			ct = NULL;
		} else if (ct) {
			*map = &FAM_CT_EST_MAP;
		}
	}
	if (!ct) {
		ct = bpf_map_lookup_elem(&FAM_CT_MAP, ck);
		if (ct && !FN(ct, usable)(ct, p, now))
			ct = NULL;
	}
	if (ct && ct->dir == CT_DIR_FORWARD) {
		if (!be_owned(ct->backend_id, ct->svc_id)) {
			if (*map == &FAM_CT_EST_MAP)
				est_stale = 1;
			ct = NULL;
		}
	}
	if (ct && !(ct->flags & CT_F_SINGLE) && FN(ct, relink)(*map, ct, ck, now)) {
		bpf_map_delete_elem(*map, ck); /* an orphan: untracked now */
		ct = NULL;
	}
	if (!ct && est_stale)
		bpf_map_delete_elem(&FAM_CT_EST_MAP, ck);
	return ct;
}
