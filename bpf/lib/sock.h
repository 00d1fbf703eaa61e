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
