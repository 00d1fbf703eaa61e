/* SPDX-License-Identifier: Apache-2.0 */
/* The ctx shim for XDP programs (struct xdp_md): see lib/ctx.h. */
#ifndef SVCLB_BPF_CTX_XDP_H
#define SVCLB_BPF_CTX_XDP_H

#define __ctx_buff	  xdp_md
#define CTX_ACT_OK	  XDP_PASS /* the stack takes the frame as it is now */
#define CTX_ACT_DROP	  XDP_DROP
#define CTX_ACT_UNTOUCHED XDP_PASS /* lib/ctx_skb.h: tc tells it apart */
#define CTX_IS_XDP	  1

static __always_inline int ctx_verdict(int ret)
{
	return ret;
}
/* A global function's name for this hook (one object holds both hooks'). */
#define CTX_GLOBAL(name) name##_xdp

/* The frame's length (one buffer: svclb does not load multi-buffer XDP). */
static __always_inline __u32 ctx_full_len(const struct xdp_md *ctx)
{
	return (__u32)(ctx->data_end - ctx->data);
}

static __always_inline __u32 ctx_ingress_ifindex(const struct xdp_md *ctx)
{
	return ctx->ingress_ifindex;
}

/* The frame is all there is: 0 if it holds `len` bytes, else < 0. */
static __always_inline int ctx_pull(struct xdp_md *ctx, __u32 len)
{
	return (void *)(long)ctx->data + len <= (void *)(long)ctx->data_end ? 0 : -1;
}

static __always_inline int ctx_bounce(struct xdp_md *ctx)
{
	return XDP_TX;
}

/* `delta` new bytes right after the Ethernet header, which moves to the
 * new front. Returns 0 or < 0. */
static __always_inline int ctx_grow_after_mac(struct xdp_md *ctx, __u32 delta)
{
	void *data, *data_end;

	if (bpf_xdp_adjust_head(ctx, -(int)delta))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + delta + ETH_HLEN > data_end)
		return -1;
	__builtin_memcpy(data, data + delta, ETH_HLEN);
	return 0;
}

static __always_inline int ctx_set_len(struct xdp_md *ctx, __u32 len)
{
	return bpf_xdp_adjust_tail(ctx, (int)len - (int)(ctx->data_end - ctx->data));
}

static __always_inline int ctx_load_bytes(struct xdp_md *ctx, __u32 off, void *to, __u32 len)
{
	return bpf_xdp_load_bytes(ctx, off, to, len);
}

/* A raw frame has no checksum state to keep: `l3` is unused. */
static __always_inline int ctx_store_bytes(struct xdp_md *ctx, __u32 off, const void *from,
					   __u32 len, int l3)
{
	return bpf_xdp_store_bytes(ctx, off, (void *)from, len);
}

/* A raw frame always carries a full checksum. */
static __always_inline int ctx_csum_mode(struct xdp_md *ctx)
{
	return CSUM_FULL;
}

/* Never reached (CSUM_FULL only); keeps the callers one piece of code. */
static __always_inline int ctx_l4_csum_replace(struct xdp_md *ctx, __u32 off, __u32 from, __u32 to,
					       __u64 flags)
{
	return -1;
}

#endif
