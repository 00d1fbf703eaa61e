/* SPDX-License-Identifier: Apache-2.0 */
/* Socket-level balancing (cgroup sock_addr hooks) for the processes in the
 * daemon's cgroup: the node's own and, with --socket-lb=all, the pods'
 * (their cgroups sit under the node's, whatever their network namespace).
 * connect()/sendmsg() to a frontend are pointed at a backend before any
 * packet exists, so no per-packet NAT or CT is needed for them; recvmsg()
 * and getpeername() show the frontend again. What the hooks decline goes
 * out untouched and the pod's tc program balances it per packet. */
#ifndef SVCLB_BPF_SOCK_H
#define SVCLB_BPF_SOCK_H

#include "lib/lb.h"

#define SOCK_NODE 1 /* a socket of the node's namespace */
#define SOCK_POD  2 /* a socket of another namespace: a pod's */

/* Whose socket this is: SOCK_NODE, SOCK_POD, or 0 (not ours). */
static __always_inline int sock4_owner(struct bpf_sock_addr *ctx)
{
	if (cfg_netns_cookie == 0 || bpf_get_netns_cookie(ctx) == cfg_netns_cookie)
		return SOCK_NODE;
	return cfg_sock_lb == SVCLB_SOCK_LB_ALL ? SOCK_POD : 0;
}

/* The client identity for sessionAffinity at the socket, where no source
 * address exists yet: the node is one client (address 0, as before); a pod
 * is its network namespace (as Cilium's socket-LB does), written as an
 * address in 0.0.0.0/8, which no packet carries as its source, so it never
 * meets the tc path's pod addresses in affinity_v1. Netns cookies count up
 * from 1: 0.0.0.1 ... 0.255.255.255 tell 16 M namespaces apart. */
static __always_inline __be32 sock4_affinity_client(struct bpf_sock_addr *ctx, int owner)
{
	if (owner == SOCK_NODE)
		return 0;
	return bpf_htonl((__u32)(bpf_get_netns_cookie(ctx) % 0x00ffffff) + 1);
}

/* The socket now talks to backend `id` of Service `svc_id`: a new flow,
 * counted once per socket and backend (an unconnected UDP socket's
 * datagrams to one backend are one flow, as one CT entry on the packet
 * path), and remembered in the socket's storage so the cgroup_skb hooks
 * count its packets and bytes. Without storage (no memory) the flow is
 * still counted, its packets are not. */
static __always_inline void sock4_count_flow(struct bpf_sock_addr *ctx, __u32 svc_id, __u32 id,
					     const struct backend_value *be)
{
	struct sock_flow *f = NULL;
	struct bpf_sock *sk = ctx->sk;

	if (sk)
		f = bpf_sk_storage_get(&sock_flow_v1, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (f) {
		if (f->backend_id == id && f->svc_id == svc_id && f->addr == be->addr &&
		    f->port == be->port)
			return;
		f->svc_id = svc_id;
		f->backend_id = id;
		f->addr = be->addr;
		f->port = be->port;
	}
	stats_flow(&svc_stats_v1, svc_id);
	stats_flow(&be_stats_v1, id);
}

/* The packets of a socket the hooks balanced (cgroup_skb, data at the IP
 * header): counted to its flow like the packet path counts a translated
 * flow's, egress as packets/bytes, ingress as reply_*. Only packets to /
 * from the flow's backend count (an unconnected UDP socket may also talk
 * to other addresses). A GSO/GRO packet counts as its segments, its bytes
 * as they stand (headers once). */
static __always_inline void sock4_count_skb(struct __sk_buff *skb, int egress)
{
	struct bpf_sock *sk = skb->sk;
	struct sock_flow *f;
	__be32 peer;
	__u32 segs;

	if (!sk || skb->protocol != bpf_htons(ETH_P_IP))
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return;
	f = bpf_sk_storage_get(&sock_flow_v1, sk, 0, 0);
	if (!f)
		return;
	if (bpf_skb_load_bytes(skb, egress ? 16 : 12, &peer, sizeof(peer)) || peer != f->addr)
		return;
	segs = skb->gso_segs ? skb->gso_segs : 1;
	{
		__u32 svc = f->svc_id, be = f->backend_id;
		struct lb_stats *s = bpf_map_lookup_elem(&svc_stats_v1, &svc);
		struct lb_stats *b = bpf_map_lookup_elem(&be_stats_v1, &be);

		if (egress) {
			if (s) {
				s->packets += segs;
				s->bytes += skb->len;
			}
			if (b) {
				b->packets += segs;
				b->bytes += skb->len;
			}
		} else {
			if (s) {
				s->reply_packets += segs;
				s->reply_bytes += skb->len;
			}
			if (b) {
				b->reply_packets += segs;
				b->reply_bytes += skb->len;
			}
		}
	}
}

/* A UDP socket now sends to `addr:port` directly (not through a frontend):
 * if it talked to that backend through a Service before, the newer exchange
 * owns the address, as ct_take_over_tuple gives a direct flow its tuple on
 * the packet path: recvmsg() must show the backend's own address again and
 * its packets are no longer the Service's. One hash delete (usually of a
 * missing key) per such send. */
static __always_inline void sock4_direct(struct bpf_sock_addr *ctx, __be32 addr, __be16 port)
{
	struct sock_rev_key rk = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = addr,
		.port = port,
	};
	struct bpf_sock *sk = ctx->sk;

	if (bpf_map_delete_elem(&sock_rev_v1, &rk) == 0 && sk) {
		struct sock_flow *f = bpf_sk_storage_get(&sock_flow_v1, sk, 0, 0);

		if (f && f->addr == addr && f->port == port) {
			f->addr = 0;
			f->port = 0;
			f->backend_id = 0;
		}
	}
}

/* Points the socket address at a backend when it names a frontend.
 * `connect` tells connect4 from sendmsg4. Returns 0 to continue (translated,
 * declined or not ours) or -DROP_* (*svc_id then names the Service, for
 * svcctl monitor; left alone otherwise). A pod's socket is declined (left to the
 * pod's tc program, which sees its real source address and tracks the
 * flow) for: a connected UDP socket (one connect() would pin it to a
 * backend for its life, and no hook sees its later send()s: the tc path's
 * CT re-balances its datagrams when that backend goes away, as kube-proxy's
 * conntrack flush does), loadBalancerSourceRanges (the check needs the
 * pod's address) and an externalTrafficPolicy: Local frontend without a
 * local endpoint (tc drops, as kube-proxy does). */
static __always_inline int sock4_translate(struct bpf_sock_addr *ctx, __u8 proto, int connect,
					   __u32 *svc_id)
{
	__be32 vip = ctx->user_ip4;
	__be16 port = (__be16)ctx->user_port;
	struct backend_value *be = NULL;
	struct svc_value *svc;
	int owner, id;
	__u64 cookie;

	owner = sock4_owner(ctx);
	if (!owner)
		return 0;
	if (owner == SOCK_POD && connect && proto == IPPROTO_UDP)
		return 0;
	svc = svc4_lookup_master(vip, port, proto);
	if (!svc) {
		if (proto == IPPROTO_UDP)
			sock4_direct(ctx, vip, port);
		return 0;
	}
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
	id = lb4_select_affine_pick(vip, port, proto, svc, sock4_affinity_client(ctx, owner),
				    hash_3words((__u32)cookie, (__u32)(cookie >> 32), vip),
				    proto == IPPROTO_UDP, &be);
	if (id == -DROP_NO_BACKEND)
		stats_reject(&svc_stats_v1, svc->svc_id);
	if (id < 0) {
		*svc_id = svc->svc_id;
		return id;
	}

	{
		struct sock_rev_key rk = {
			.cookie = cookie,
			.addr = be->addr,
			.port = be->port,
		};
		struct sock_rev_value rv = {
			.vip = vip,
			.port = port,
		};

		/* Best effort: without it only recvmsg/getpeername show the
		 * backend instead of the ClusterIP; traffic still flows. */
		bpf_map_update_elem(&sock_rev_v1, &rk, &rv, BPF_ANY);
	}
	ctx->user_ip4 = be->addr;
	ctx->user_port = (__u32)be->port;
	sock4_count_flow(ctx, svc->svc_id, (__u32)id, be);
	return 0;
}

/* Restores the ClusterIP as the peer address seen by the application. */
static __always_inline void sock4_reverse(struct bpf_sock_addr *ctx)
{
	struct sock_rev_key rk = {
		.addr = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
	};
	struct sock_rev_value *rv;

	if (!sock4_owner(ctx))
		return;
	rk.cookie = bpf_get_socket_cookie(ctx);
	rv = bpf_map_lookup_elem(&sock_rev_v1, &rk);
	if (!rv)
		return;
	ctx->user_ip4 = rv->vip;
	ctx->user_port = (__u32)rv->port;
}

#endif
