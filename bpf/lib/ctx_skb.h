/* SPDX-License-Identifier: Apache-2.0 */
/* The ctx shim for tc programs (struct __sk_buff): see lib/ctx.h. */
#ifndef SVCLB_BPF_CTX_SKB_H
#define SVCLB_BPF_CTX_SKB_H

#include <bpf/bpf_core_read.h>

#define __ctx_buff   __sk_buff
#define CTX_ACT_OK   TC_ACT_OK /* the stack takes the packet as it is now */
#define CTX_ACT_DROP TC_ACT_SHOT
/* A packet svclb leaves untouched. Within the pipeline a verdict like the
 * others (>= 0: a negative return is a DROP_* reason, and TC_ACT_UNSPEC is
 * -1 = -DROP_NO_BACKEND), never returned to the kernel: the exit
 * (ctx_verdict) turns it into TC_ACT_UNSPEC, tcx's TCX_NEXT, so a later tcx
 * program and the legacy tc filters still see the packet (in a cls_bpf
 * direct-action filter UNSPEC also means "the next filter", and "pass" when
 * none is left). A translated packet keeps TC_ACT_OK. */
#define CTX_ACT_UNTOUCHED 0x5c1b

/* The verdict the kernel gets for a pipeline verdict (>= 0). */
static __always_inline int ctx_verdict(int ret)
{
	return ret == CTX_ACT_UNTOUCHED ? TC_ACT_UNSPEC : ret;
}
#define CTX_IS_XDP 0 /* a constant: `if (CTX_IS_XDP)` code is compiled out of tc */
/* A global function's name for this hook (one object holds both hooks'). */
#define CTX_GLOBAL(name) name##_skb

/* The whole packet's length (part of it may lie outside the linear area). */
static __always_inline __u32 ctx_full_len(const struct __sk_buff *ctx)
{
	return ctx->len;
}

/* The interface the packet arrived on (svclb's tc programs are at ingress). */
static __always_inline __u32 ctx_ingress_ifindex(const struct __sk_buff *ctx)
{
	return ctx->ifindex;
}

/* Makes the first `len` bytes readable by direct packet access.
 * Returns 0 or a negative error. */
static __always_inline int ctx_pull(struct __sk_buff *ctx, __u32 len)
{
	return bpf_skb_pull_data(ctx, len);
}

/* Sends the packet back out of the interface it came in on. */
static __always_inline int ctx_bounce(struct __sk_buff *ctx)
{
	return bpf_redirect(ctx->ifindex, 0);
}

/* `delta` new bytes right after the Ethernet header. Returns 0 or < 0. */
static __always_inline int ctx_grow_after_mac(struct __sk_buff *ctx, __u32 delta)
{
	return bpf_skb_adjust_room(ctx, delta, BPF_ADJ_ROOM_MAC, 0);
}

/* The packet's length becomes `len` (tail trimmed or extended). */
static __always_inline int ctx_set_len(struct __sk_buff *ctx, __u32 len)
{
	return bpf_skb_change_tail(ctx, len, 0);
}

/* Copies `len` packet bytes at `off` to `to` (which may lie outside the
 * linear area). Returns 0 or < 0. */
static __always_inline int ctx_load_bytes(struct __sk_buff *ctx, __u32 off, void *to, __u32 len)
{
	return bpf_skb_load_bytes(ctx, off, to, len);
}

/* Writes `len` bytes from `from` at `off`. `l3`: the bytes lie at or after
 * the network header, which a CHECKSUM_COMPLETE skb's csum covers (at tc
 * ingress it starts there): the helper carries the change into it; the
 * Ethernet header is written with l3 = 0. Returns 0 or < 0. */
static __always_inline int ctx_store_bytes(struct __sk_buff *ctx, __u32 off, const void *from,
					   __u32 len, int l3)
{
	return bpf_skb_store_bytes(ctx, off, from, len, l3 ? BPF_F_RECOMPUTE_CSUM : 0);
}

/* The skb's checksum state, read from the kernel's own sk_buff:
 * bpf_cast_to_kern_ctx() is a kfunc the verifier replaces by a register
 * move, and CO-RE finds the ip_summed bitfield in this kernel's layout. */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

struct sk_buff___svclb {
	__u8 ip_summed : 2;
} __attribute__((preserve_access_index));

#define SKB_CHECKSUM_COMPLETE 2
#define SKB_CHECKSUM_PARTIAL  3

/* The CSUM_* mode of this skb's L4 checksum (lib/ctx.h). */
static __always_inline int ctx_csum_mode(struct __sk_buff *ctx)
{
	struct sk_buff___svclb *k = bpf_cast_to_kern_ctx(ctx);
	int summed;

	if (cfg_tc_csum_helpers)
		return CSUM_COMPLETE;
	summed = (int)BPF_CORE_READ_BITFIELD(k, ip_summed);
	if (summed == SKB_CHECKSUM_COMPLETE)
		return CSUM_COMPLETE;
	return summed == SKB_CHECKSUM_PARTIAL ? CSUM_PARTIAL : CSUM_FULL;
}

/* CSUM_COMPLETE: the L4 checksum at `off` follows `from` -> `to` (flags as
 * bpf_l4_csum_replace). Invalidates packet pointers. Returns 0 or < 0. */
static __always_inline int ctx_l4_csum_replace(struct __sk_buff *ctx, __u32 off, __u32 from,
					       __u32 to, __u64 flags)
{
	return bpf_l4_csum_replace(ctx, off, from, to, flags);
}

#endif
