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

/* The same for IPv6 Services: the node is ::, a pod ::0.x.y.z (the
 * deprecated IPv4-compatible block ::/96, never a packet's source). */
static __always_inline struct v6addr sock6_affinity_client(struct bpf_sock_addr *ctx, int owner)
{
	struct v6addr a = {};

	a.w[3] = sock4_affinity_client(ctx, owner);
	return a;
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

/* A direct send to a backend's own address forgets the socket's Service
 * flow in its storage (IPv4; an IPv6 flow's storage holds no address: its
 * packets are not counted per byte, only its connects). */
static __always_inline void sock4_forget_flow(struct bpf_sock_addr *ctx, __be32 addr, __be16 port)
{
	struct bpf_sock *sk = ctx->sk;
	struct sock_flow *f;

	if (!sk)
		return;
	f = bpf_sk_storage_get(&sock_flow_v1, sk, 0, 0);
	if (f && f->addr == addr && f->port == port) {
		f->addr = 0;
		f->port = 0;
		f->backend_id = 0;
	}
}

static __always_inline void sock6_forget_flow(struct bpf_sock_addr *ctx, struct v6addr addr,
					      __be16 port)
{
}

/* The address a sock_addr hook's caller named: IPv4 hooks user_ip4, IPv6
 * hooks user_ip6 (each hook may only touch its own family's field). */
static __always_inline struct v6addr sock6_user_addr(const struct bpf_sock_addr *ctx)
{
	struct v6addr a;

	a.w[0] = ctx->user_ip6[0];
	a.w[1] = ctx->user_ip6[1];
	a.w[2] = ctx->user_ip6[2];
	a.w[3] = ctx->user_ip6[3];
	return a;
}

static __always_inline void sock6_set_user_addr(struct bpf_sock_addr *ctx, const struct v6addr *a)
{
	ctx->user_ip6[0] = a->w[0];
	ctx->user_ip6[1] = a->w[1];
	ctx->user_ip6[2] = a->w[2];
	ctx->user_ip6[3] = a->w[3];
}

/* ::ffff:a.b.c.d: an IPv6 socket talking IPv4 (a dual-stack socket's
 * connect() to an IPv4 ClusterIP). Its connect6/sendmsg6/recvmsg6 hooks
 * run, never the IPv4 ones: they balance it as IPv4 (sock4_*). */
static __always_inline int sock6_v4_mapped(const struct v6addr *a)
{
	return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == bpf_htonl(0xffff);
}

#define SVCLB_FAM 4
#include "lib/family.h"
#include "lib/sock_fam.h"
#include "lib/family_end.h"

#define SVCLB_FAM 6
#include "lib/family.h"
#include "lib/sock_fam.h"
#include "lib/family_end.h"

#endif
