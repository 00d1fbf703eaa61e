/* SPDX-License-Identifier: Apache-2.0 */
/* Routes: the kernel's FIB asked for the next hop of a translated packet.
 * Hook-independent (the ctx is only passed through to bpf_fib_lookup). */
#ifndef SVCLB_BPF_FIB_H
#define SVCLB_BPF_FIB_H

#include "lib/maps.h"

/* What a struct bpf_fib_lookup filled for a packet holds. */
#define FIB_NONE     0 /* nothing looked up yet */
#define FIB_READY    1 /* the next hop's interface and MACs */
#define FIB_NO_NEIGH 2 /* the interface; no neighbour entry yet (tc: bpf_redirect_neigh) */

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef BPF_FIB_LOOKUP_SRC
#define BPF_FIB_LOOKUP_SRC (1U << 4) /* kernel >= 6.8; uapi headers here are older */
#endif

/* Route of a packet from src to dst arriving on `ifindex`, as the stack
 * would forward it (with the source address the node would use toward dst
 * when `want_src`). Returns the BPF_FIB_LKUP_RET_* code. */
static __always_inline int lb4_fib(void *ctx, struct bpf_fib_lookup *fib, __u32 ifindex, __be32 src,
				   __be32 dst, __u8 proto, __u16 tot_len, int want_src)
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

/* lb4_fib for IPv6 (`tot_len`: the IPv6 packet's length, header
 * included). The source the node would use is in fib->ipv6_src. */
static __always_inline int lb6_fib(void *ctx, struct bpf_fib_lookup *fib, __u32 ifindex,
				   struct v6addr src, struct v6addr dst, __u8 proto, __u16 tot_len,
				   int want_src)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET6;
	fib->l4_protocol = proto;
	fib->tot_len = tot_len;
	fib->ifindex = ifindex;
	__builtin_memcpy(fib->ipv6_src, &src, sizeof(src));
	__builtin_memcpy(fib->ipv6_dst, &dst, sizeof(dst));
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), want_src ? BPF_FIB_LOOKUP_SRC : 0);
}

/* The source address the FIB chose (BPF_FIB_LOOKUP_SRC). */
static __always_inline __be32 lb4_fib_src(const struct bpf_fib_lookup *fib)
{
	return fib->ipv4_src;
}

static __always_inline struct v6addr lb6_fib_src(const struct bpf_fib_lookup *fib)
{
	struct v6addr a;

	__builtin_memcpy(&a, fib->ipv6_src, sizeof(a));
	return a;
}

/* True if the route found leaves through a node NIC (svclb's XDP is on it):
 * the backend is on another node. */
static __always_inline int lb_via_node_nic(const struct bpf_fib_lookup *fib)
{
	__u32 oif = fib->ifindex;

	return bpf_map_lookup_elem(&tx_ports_v1, &oif) != NULL;
}

#endif
