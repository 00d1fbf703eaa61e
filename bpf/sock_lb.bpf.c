/* SPDX-License-Identifier: Apache-2.0 */
/* cgroup sock_addr entry programs: socket-level balancing (lib/sock.h).
 * connect4/sendmsg4 return 1 = allow; 0 = the syscall fails, with
 * ECONNREFUSED for a Service without a usable endpoint (what a client of
 * kube-proxy's REJECT sees), EPERM otherwise (counted as a drop, here, once). */
#include "lib/monitor.h"
#include "lib/sock.h"

/* svcctl monitor: a refused connect()/sendmsg(). The tuple is the socket's
 * (its source is 0.0.0.0:0 until bound) toward the frontend it named. */
static __attribute__((noinline)) void sock4_monitor(struct bpf_sock_addr *ctx, __u8 proto,
						    int connect, int ret, __u32 svc_id)
{
	struct bpf_sock *sk = ctx->sk;
	struct mon_event e = {
		.type = ret == -DROP_NO_BACKEND ? MON_EV_REJECT : MON_EV_DROP,
		.reason = (__u8)-ret,
		.proto = proto,
		.hook = connect ? MON_HOOK_SOCK_CONNECT : MON_HOOK_SOCK_SENDMSG,
		.daddr = ctx->user_ip4,
		.dport = (__be16)ctx->user_port,
		.svc_id = svc_id,
	};

	if (!connect && ctx->msg_src_ip4)
		e.saddr = ctx->msg_src_ip4;
	else if (sk) {
		e.saddr = sk->src_ip4;
		e.sport = bpf_htons((__u16)sk->src_port);
	}
	mon_emit(&e);
}

/* The socket's protocol, or 0 for one svclb does not balance. */
static __always_inline __u8 sock_proto(const struct bpf_sock_addr *ctx)
{
	if (ctx->type == SOCK_STREAM)
		return IPPROTO_TCP;
	return ctx->type == SOCK_DGRAM ? IPPROTO_UDP : 0;
}

/* A refused connect()/sendmsg() (ret = -DROP_*): ECONNREFUSED for a Service
 * without a usable endpoint, EPERM (counted as a drop) otherwise. Returns
 * the hook's verdict, 0. */
static __always_inline int sock_refuse(int ret)
{
	if (ret == -DROP_NO_BACKEND)
		bpf_set_retval(-ECONNREFUSED);
	else
		count_drop((__u32)-ret, 0);
	return 0;
}

static __always_inline int sock4_entry(struct bpf_sock_addr *ctx, int connect)
{
	__u8 proto = sock_proto(ctx);
	__u32 svc_id = 0;
	__be32 addr = 0;
	__be16 port = 0;
	int ret;

	if (!proto)
		return 1;
	ret = sock4_translate(ctx, proto, connect, ctx->user_ip4, (__be16)ctx->user_port, &svc_id,
			      &addr, &port);
	if (ret > 0) {
		ctx->user_ip4 = addr;
		ctx->user_port = (__u32)port;
	} else if (ret < 0) {
		if (mon_on())
			sock4_monitor(ctx, proto, connect, ret, svc_id);
		return sock_refuse(ret);
	}
	return 1;
}

/* svcctl monitor: a refused connect()/sendmsg() of an IPv6 socket (the
 * destination as it named it, ::ffff:a.b.c.d for an IPv4 Service). */
static __attribute__((noinline)) void sock6_monitor(struct bpf_sock_addr *ctx, __u8 proto,
						    int connect, int ret, __u32 svc_id)
{
	struct bpf_sock *sk = ctx->sk;
	struct mon_event6 e = {
		.type = ret == -DROP_NO_BACKEND ? MON_EV_REJECT : MON_EV_DROP,
		.reason = (__u8)-ret,
		.proto = proto,
		.hook = connect ? MON_HOOK_SOCK_CONNECT : MON_HOOK_SOCK_SENDMSG,
		.daddr = sock6_user_addr(ctx),
		.dport = (__be16)ctx->user_port,
		.svc_id = svc_id,
	};

	if (sk) {
		e.saddr.w[0] = sk->src_ip6[0];
		e.saddr.w[1] = sk->src_ip6[1];
		e.saddr.w[2] = sk->src_ip6[2];
		e.saddr.w[3] = sk->src_ip6[3];
		e.sport = bpf_htons((__u16)sk->src_port);
	}
	mon_emit6(&e);
}

/* IPv6 sockets: an IPv6 frontend, or an IPv4 one named as ::ffff:a.b.c.d
 * (a dual-stack socket). */
static __always_inline int sock6_entry(struct bpf_sock_addr *ctx, int connect)
{
	struct v6addr vip = sock6_user_addr(ctx);
	__be16 uport = (__be16)ctx->user_port;
	__u8 proto = sock_proto(ctx);
	__u32 svc_id = 0;
	__be16 port = 0;
	int ret;

	if (!proto)
		return 1;
	if (sock6_v4_mapped(&vip)) {
		__be32 addr4 = 0;

		ret = sock4_translate(ctx, proto, connect, vip.w[3], uport, &svc_id, &addr4, &port);
		if (ret > 0) {
			vip.w[3] = addr4;
			sock6_set_user_addr(ctx, &vip);
			ctx->user_port = (__u32)port;
		}
	} else {
		struct v6addr addr = {};

		ret = sock6_translate(ctx, proto, connect, vip, uport, &svc_id, &addr, &port);
		if (ret > 0) {
			sock6_set_user_addr(ctx, &addr);
			ctx->user_port = (__u32)port;
		}
	}
	if (ret < 0) {
		if (mon_on())
			sock6_monitor(ctx, proto, connect, ret, svc_id);
		return sock_refuse(ret);
	}
	return 1;
}

/* Restores the ClusterIP as the peer address the application sees. */
static __always_inline void sock4_reverse_entry(struct bpf_sock_addr *ctx)
{
	struct sock_rev_value rv = {};

	if (!sock4_reverse(ctx, ctx->user_ip4, (__be16)ctx->user_port, &rv))
		return;
	ctx->user_ip4 = rv.vip;
	ctx->user_port = (__u32)rv.port;
}

static __always_inline void sock6_reverse_entry(struct bpf_sock_addr *ctx)
{
	struct v6addr a = sock6_user_addr(ctx);
	__be16 port = (__be16)ctx->user_port;

	if (sock6_v4_mapped(&a)) {
		struct sock_rev_value rv = {};

		if (!sock4_reverse(ctx, a.w[3], port, &rv))
			return;
		a.w[3] = rv.vip;
		sock6_set_user_addr(ctx, &a);
		ctx->user_port = (__u32)rv.port;
	} else {
		struct sock_rev6_value rv = {};

		if (!sock6_reverse(ctx, a, port, &rv))
			return;
		sock6_set_user_addr(ctx, &rv.vip);
		ctx->user_port = (__u32)rv.port;
	}
}

SEC("cgroup/connect4")
int svclb_sock_connect4(struct bpf_sock_addr *ctx)
{
	return sock4_entry(ctx, 1);
}

/* A connected dual-stack socket talking IPv4 (connect6 on ::ffff:VIP
 * balanced it as IPv4): on every send() udpv6_sendmsg passes its connected
 * peer, the backend, to udp_sendmsg as an explicit address, which runs
 * sendmsg4. That is no direct send to the backend: left alone, or
 * sock4_direct would forget the socket's frontend (recvmsg would show the
 * backend; a removed backend's socket would not be found to close). */
static __always_inline int sock4_connected_v6_peer(const struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	return sk && sk->family == AF_INET6 && sk->state == BPF_TCP_ESTABLISHED &&
	       sk->dst_ip4 == ctx->user_ip4 && sk->dst_port == (__be16)ctx->user_port;
}

SEC("cgroup/sendmsg4")
int svclb_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	if (sock4_connected_v6_peer(ctx))
		return 1;
	return sock4_entry(ctx, 0);
}

SEC("cgroup/recvmsg4")
int svclb_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	sock4_reverse_entry(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int svclb_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	sock4_reverse_entry(ctx);
	return 1;
}

SEC("cgroup/connect6")
int svclb_sock_connect6(struct bpf_sock_addr *ctx)
{
	return sock6_entry(ctx, 1);
}

SEC("cgroup/sendmsg6")
int svclb_sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock6_entry(ctx, 0);
}

SEC("cgroup/recvmsg6")
int svclb_sock_recvmsg6(struct bpf_sock_addr *ctx)
{
	sock6_reverse_entry(ctx);
	return 1;
}

SEC("cgroup/getpeername6")
int svclb_sock_getpeername6(struct bpf_sock_addr *ctx)
{
	sock6_reverse_entry(ctx);
	return 1;
}

/* Counters of socket-balanced flows (lib/sock_fam.h count_skb, each
 * family's packets against its own storage): never drop (1 = let the
 * packet pass). */
SEC("cgroup_skb/egress")
int svclb_sock_skb_egress(struct __sk_buff *skb)
{
	sock4_count_skb(skb, 1);
	sock6_count_skb(skb, 1);
	return 1;
}

SEC("cgroup_skb/ingress")
int svclb_sock_skb_ingress(struct __sk_buff *skb)
{
	sock4_count_skb(skb, 0);
	sock6_count_skb(skb, 0);
	return 1;
}

/* Closing the node's connected UDP sockets whose backend was removed
 * (sock_destroy_v1, filled by the daemon for one run; docs/architecture.md
 * "Socket-level balancing"). The daemon runs this iterator in its own
 * network namespace, the node's: a pod's connected UDP sockets are left to
 * the tc path, which re-balances them. The kernel types are declared here
 * with only the fields read, relocated by CO-RE against the running
 * kernel's BTF (no vmlinux.h). */
struct in6_addr___svclb {
	union {
		__be32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned short skc_family;
	volatile unsigned char skc_state;
	__be32 skc_daddr;
	__be16 skc_dport;
	struct in6_addr___svclb skc_v6_daddr;
} __attribute__((preserve_access_index));

struct udp_sock;
struct bpf_iter_meta;

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
} __attribute__((preserve_access_index));

/* kfunc, kernel >= 6.5 (svclb already needs 6.8: BPF_FIB_LOOKUP_SRC). */
extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

#define SVCLB_TCP_ESTABLISHED 1 /* a connected UDP socket's sk_state */

/* Sockets closed by the iterator, for the daemon's log and counters. */
__u64 sock_destroyed = 0;

/* An IPv6 socket (AF_INET6, not talking IPv4 through ::ffff:a.b.c.d): its
 * sock_rev6_v1 entry and sock_destroy6_v1. Returns 1 to close it. */
static __always_inline int sock_destroy_match6(struct sock_common *sk, __u64 cookie,
					       const struct v6addr *daddr)
{
	struct sock_destroy6_key dk = {};
	struct sock_rev6_key rk = {};
	struct sock_rev6_value *rv;

	rk.cookie = cookie;
	rk.addr = *daddr;
	rk.port = sk->skc_dport;
	rv = bpf_map_lookup_elem(&sock_rev6_v1, &rk);
	if (!rv)
		return 0;
	dk.vip = rv->vip;
	dk.vport = rv->port;
	dk.addr = rk.addr;
	dk.port = rk.port;
	return bpf_map_lookup_elem(&sock_destroy6_v1, &dk) != NULL;
}

SEC("iter/udp")
int svclb_sock_destroy_udp(struct bpf_iter__udp *ctx)
{
	struct sock_common *sk = (struct sock_common *)ctx->udp_sk;
	struct sock_destroy_key dk = {};
	struct sock_rev_key rk = {};
	struct sock_rev_value *rv;
	struct v6addr d6;
	__u64 cookie;
	int i;

	if (!sk || sk->skc_state != SVCLB_TCP_ESTABLISHED)
		return 0;
	/* Only sockets our connect hooks pointed at a backend have a reverse
	 * entry, and it names the frontend they asked for. */
	cookie = bpf_get_socket_cookie(sk);
	if (sk->skc_family == AF_INET6) {
#pragma unroll
		for (i = 0; i < 4; i++)
			d6.w[i] = sk->skc_v6_daddr.in6_u.u6_addr32[i];
		/* A dual-stack socket talking IPv4 was balanced as IPv4
		 * (connect6 on ::ffff:a.b.c.d): its entries are the v4 ones. */
		if (!sock6_v4_mapped(&d6)) {
			if (sock_destroy_match6(sk, cookie, &d6) && bpf_sock_destroy(sk) == 0)
				__sync_fetch_and_add(&sock_destroyed, 1);
			return 0;
		}
		rk.addr = d6.w[3];
	} else if (sk->skc_family == AF_INET) {
		rk.addr = sk->skc_daddr;
	} else {
		return 0;
	}
	rk.cookie = cookie;
	rk.port = sk->skc_dport;
	rv = bpf_map_lookup_elem(&sock_rev_v1, &rk);
	if (!rv)
		return 0;
	dk.vip = rv->vip;
	dk.vport = rv->port;
	dk.addr = rk.addr;
	dk.port = rk.port;
	if (!bpf_map_lookup_elem(&sock_destroy_v1, &dk))
		return 0;
	if (bpf_sock_destroy(sk) == 0)
		__sync_fetch_and_add(&sock_destroyed, 1);
	return 0;
}
