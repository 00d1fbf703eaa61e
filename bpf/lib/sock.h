/* SPDX-License-Identifier: Apache-2.0 */
/* Socket-level balancing for the node's own processes (cgroup sock_addr
 * hooks): connect()/sendmsg() to a ClusterIP are pointed at a backend before
 * any packet exists, so no per-packet NAT or CT is needed for them; recvmsg()
 * and getpeername() show the ClusterIP again. */
#ifndef SVCLB_BPF_SOCK_H
#define SVCLB_BPF_SOCK_H

#include "lib/lb.h"

static __always_inline int sock4_ours(struct bpf_sock_addr *ctx)
{
	return cfg_netns_cookie == 0 || bpf_get_netns_cookie(ctx) == cfg_netns_cookie;
}

/* Points the socket address at a backend when it names a ClusterIP.
 * Returns 0 to continue (translated or not ours) or -DROP_*. */
static __always_inline int sock4_translate(struct bpf_sock_addr *ctx, __u8 proto)
{
	__be32 vip = ctx->user_ip4;
	__be16 port = (__be16)ctx->user_port;
	struct backend_value *be;
	struct svc_value *svc;
	int id;

	if (!sock4_ours(ctx))
		return 0;
	svc = svc_lookup_master(vip, port, proto);
	if (!svc)
		return 0;
	{
		__u64 cookie = bpf_get_socket_cookie(ctx);

		/* The node is one client for affinity (address 0); without
		 * affinity Maglev hashes the socket, as no source port exists
		 * yet at connect(). */
		id = lb4_select_affine(vip, port, proto, svc, 0,
				       hash_3words((__u32)cookie, (__u32)(cookie >> 32), vip), &be);
	}
	if (id == -DROP_NO_BACKEND) {
		stats_reject(&svc_stats_v1, svc->svc_id);
		return id;
	}
	if (id < 0)
		return id;

	{
		struct sock_rev_key rk = {
			.cookie = bpf_get_socket_cookie(ctx),
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
	stats_flow(&svc_stats_v1, svc->svc_id);
	stats_flow(&be_stats_v1, (__u32)id);
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

	if (!sock4_ours(ctx))
		return;
	rk.cookie = bpf_get_socket_cookie(ctx);
	rv = bpf_map_lookup_elem(&sock_rev_v1, &rk);
	if (!rv)
		return;
	ctx->user_ip4 = rv->vip;
	ctx->user_port = (__u32)rv->port;
}

#endif
