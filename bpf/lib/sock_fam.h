/* SPDX-License-Identifier: Apache-2.0 */
/* The family-generic socket-level balancing (lib/family.h): compiled once
 * per family by lib/sock.h, so no include guard. The entry programs
 * (bpf/sock_lb.bpf.c) read and write the socket address of their own
 * family; these functions take and return it. */

/* The socket now talks to backend `id` (at `addr`) of Service `svc_id`: a
 * new flow, counted once per socket and backend (an unconnected UDP
 * socket's datagrams to one backend are one flow, as one CT entry on the
 * packet path), and remembered in the socket's storage (sock_flow_v2, or
 * sock_flow6_v2 for an IPv6 socket) so the cgroup_skb hooks count its
 * packets and bytes. Without storage (no memory) the flow is still
 * counted, its packets are not. A TCP socket's frontend `vip:vport` is kept
 * there as well (getpeername reads it). Returns 1 if the storage holds the
 * flow. */
static __always_inline int FN(sock, count_flow)(struct bpf_sock_addr *ctx, __u32 svc_id, __u32 id,
						FAM_ADDR addr, __be16 port, FAM_ADDR vip,
						__be16 vport)
{
	FAM_SOCK_FLOW *f = NULL;
	struct bpf_sock *sk = ctx->sk;

	if (sk)
		f = bpf_sk_storage_get(&FAM_SOCK_FLOW_MAP, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (f) {
		f->vip = vip;
		f->vport = vport;
		if (f->backend_id == id && f->svc_id == svc_id && FAM_ADDR_EQ(f->addr, addr) &&
		    f->port == port)
			return 1;
		f->svc_id = svc_id;
		f->backend_id = id;
		f->addr = addr;
		f->port = port;
	}
	{
		struct be_slot *b = be_slot(id);

		if (b)
			b->s.flows++;
	}
	return f != NULL;
}

/* The packets of a socket the hooks balanced (cgroup_skb, data at the IP
 * header): counted to its flow. Only packets to / from the flow's backend
 * count (an unconnected UDP socket may also talk to other addresses). A
 * GSO/GRO packet counts as its segments, its bytes as they stand (headers
 * once). */
static __always_inline void FN(sock, count_skb)(struct __sk_buff *skb, int egress)
{
	struct bpf_sock *sk = skb->sk;
	FAM_SOCK_FLOW *f;
	FAM_ADDR peer;

	if (!sk || skb->protocol != bpf_htons(FAM_ETH_P))
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return;
	f = bpf_sk_storage_get(&FAM_SOCK_FLOW_MAP, sk, 0, 0);
	if (!f)
		return;
	if (bpf_skb_load_bytes(skb, egress ? FAM_DADDR_OFF : FAM_SADDR_OFF, &peer, sizeof(peer)) ||
	    !FAM_ADDR_EQ(peer, f->addr))
		return;
	{
		/* A socket outliving its backend's id counts no more (the id
		 * may be another Service's by now). */
		struct be_slot *b = be_owned(f->backend_id, f->svc_id);

		if (b)
			stats_packets(&b->s, skb->gso_segs ? skb->gso_segs : 1, skb->len, !egress);
	}
}

/* A direct send to a backend's own address forgets the socket's Service
 * flow in its storage. */
static __always_inline void FN(sock, forget_flow)(struct bpf_sock_addr *ctx, FAM_ADDR addr,
						  __be16 port)
{
	struct bpf_sock *sk = ctx->sk;
	FAM_SOCK_FLOW *f;

	if (!sk)
		return;
	f = bpf_sk_storage_get(&FAM_SOCK_FLOW_MAP, sk, 0, 0);
	if (f && FAM_ADDR_EQ(f->addr, addr) && f->port == port) {
		__builtin_memset(&f->addr, 0, sizeof(f->addr));
		f->port = 0;
		f->backend_id = 0;
		f->vport = 0;
	}
}

/* A UDP socket now sends to `addr:port` directly (not through a frontend):
 * if it talked to that backend through a Service before, the newer exchange
 * owns the address, as ct_take_over_tuple gives a direct flow its tuple on
 * the packet path: recvmsg() must show the backend's own address again and
 * its packets are no longer the Service's. One hash delete (usually of a
 * missing key) per such send. */
static __always_inline void FN(sock, direct)(struct bpf_sock_addr *ctx, FAM_ADDR addr, __be16 port)
{
	FAM_SOCK_REV_KEY rk = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = addr,
		.port = port,
	};

	if (bpf_map_delete_elem(&FAM_SOCK_REV_MAP, &rk) == 0)
		FN(sock, forget_flow)(ctx, addr, port);
}

/* Points a socket address `vip:port` at a backend when it names a
 * frontend. `connect` tells connect from sendmsg. Returns 1 with
 * addr and new_port set (translated), 0 (declined or not ours: the address
 * stays), or -DROP_* (*svc_id then names the Service, for svcctl monitor;
 * left alone otherwise). A pod's socket is declined (left to the
 * pod's tc program, which sees its real source address and tracks the
 * flow) for: a connected UDP socket (one connect() would pin it to a
 * backend for its life, and no hook sees its later send()s: the tc path's
 * CT re-balances its datagrams when that backend goes away, as kube-proxy's
 * conntrack flush does) and loadBalancerSourceRanges (the check needs the
 * pod's address). An externalTrafficPolicy: Local frontend is balanced over
 * all the Service's endpoints (svc_node_view), as kube-proxy does for the
 * node's own traffic; only without that view (a daemon before it) does one
 * with no local endpoint decline a pod (its tc program drops) and fail the
 * node's connect()/sendmsg(). */
static __always_inline int FN(sock, translate)(struct bpf_sock_addr *ctx, __u8 proto, int connect,
					       FAM_ADDR vip, __be16 port, __u32 *svc_id,
					       FAM_ADDR *addr, __be16 *new_port)
{
	struct backend_value *be = NULL;
	FAM_ADDR be_addr = { 0 };
	struct svc_value *svc;
	int owner, id;
	__u64 cookie;

	owner = sock4_owner(ctx);
	if (!owner)
		return 0;
	if (owner == SOCK_POD && connect && proto == IPPROTO_UDP)
		return 0;
	svc = FN(svc, lookup_master)(vip, port, proto);
	if (!svc) {
		if (proto == IPPROTO_UDP)
			FN(sock, direct)(ctx, vip, port);
		return 0;
	}
	svc = FN(svc, node_view)(svc, vip, port, proto);
	if ((svc->flags & SVC_F_NO_LOCAL_EPS) && svc->total == 0) {
		/* A Local traffic policy and no endpoint on this node: a pod's
		 * flow is dropped by its tc program (as kube-proxy drops it); the
		 * node's connect()/sendmsg() fails (EPERM), counted as that drop. */
		if (owner == SOCK_POD)
			return 0;
		*svc_id = svc->svc_id;
		return -DROP_NO_LOCAL_EP;
	}
	if (owner == SOCK_POD && (svc->flags & SVC_F_SRC_RANGES))
		return 0;
	cookie = bpf_get_socket_cookie(ctx);
	/* Without affinity Maglev hashes the socket, as no source port exists
	 * yet at connect(); UDP picks random slots by that hash too, so the
	 * datagrams of one unconnected socket stay on one backend. */
	id = FN(lb, select_affine_pick)(
		vip, port, proto, svc, FN(sock, affinity_client)(ctx, owner),
		hash_3words((__u32)cookie, (__u32)(cookie >> 32), FAM_ADDR_FOLD(vip)),
		proto == IPPROTO_UDP, &be);
	if (id == -DROP_NO_BACKEND)
		stats_reject(&svc_stats_v2, svc->svc_id);
	if (id < 0) {
		*svc_id = svc->svc_id;
		return id;
	}
	if (FN(lb, backend_addr)((__u32)id, be, &be_addr)) {
		*svc_id = svc->svc_id;
		return -DROP_BACKEND_GONE;
	}

	*addr = be_addr;
	*new_port = be->port;
	/* A TCP socket's frontend lives in its storage (one backend for its
	 * life); a UDP socket may talk to several frontends, each answer's
	 * own in sock_rev_v1. Best effort: without either only
	 * recvmsg/getpeername show the backend instead of the ClusterIP;
	 * traffic still flows. */
	{
		FAM_ADDR no_vip = { 0 };
		int tcp = proto == IPPROTO_TCP;

		if (FN(sock, count_flow)(ctx, svc->svc_id, (__u32)id, be_addr, be->port,
					 tcp ? vip : no_vip, tcp ? port : 0) &&
		    tcp)
			return 1;
	}
	{
		FAM_SOCK_REV_KEY rk = {
			.cookie = cookie,
			.addr = be_addr,
			.port = be->port,
		};
		FAM_SOCK_REV_VALUE rv = {
			.vip = vip,
			.port = port,
		};

		bpf_map_update_elem(&FAM_SOCK_REV_MAP, &rk, &rv, BPF_ANY);
	}
	return 1;
}

/* The frontend a socket balanced to `addr:port` named, into *out: the
 * ClusterIP recvmsg/getpeername show instead of the backend. A TCP
 * socket's is in its storage (sock_flow_v2), a UDP socket's (and a TCP one
 * balanced before its storage held it) in sock_rev_v1. Returns 1 if
 * found. */
static __always_inline int FN(sock, reverse)(struct bpf_sock_addr *ctx, FAM_ADDR addr, __be16 port,
					     FAM_SOCK_REV_VALUE *out)
{
	FAM_SOCK_REV_KEY rk = {
		.addr = addr,
		.port = port,
	};
	FAM_SOCK_REV_VALUE *rv;
	FAM_SOCK_FLOW *f;

	if (!sock4_owner(ctx))
		return 0;
	if (ctx->sk) {
		f = bpf_sk_storage_get(&FAM_SOCK_FLOW_MAP, ctx->sk, 0, 0);
		if (f && f->vport && f->port == port && FAM_ADDR_EQ(f->addr, addr)) {
			out->vip = f->vip;
			out->port = f->vport;
			return 1;
		}
	}
	rk.cookie = bpf_get_socket_cookie(ctx);
	rv = bpf_map_lookup_elem(&FAM_SOCK_REV_MAP, &rk);
	if (!rv)
		return 0;
	*out = *rv;
	return 1;
}
