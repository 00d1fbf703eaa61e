/* SPDX-License-Identifier: Apache-2.0 */
/* The packet context shim: one library for tc and XDP. Each entry file
 * defines SVCLB_CTX_SKB (tc: struct __sk_buff) or SVCLB_CTX_XDP (XDP: struct
 * xdp_md) before its includes; the library names the context
 * `struct __ctx_buff` and touches it only through the ctx_* operations of
 * ctx_skb.h or ctx_xdp.h (the same set in each). The two kinds of entry
 * files are compiled separately and linked into one object
 * (bpf/CMakeLists.txt: bpftool gen object), so each helper is written once
 * and the object holds one copy per hook, with no run-time test of which
 * hook it runs in.
 *
 * The L4 checksum modes ctx_csum_mode() returns:
 * CSUM_FULL: the field holds the full checksum, written directly (XDP
 * frames always; skbs CHECKSUM_NONE / UNNECESSARY). CSUM_PARTIAL: it holds
 * the uncomplemented pseudo-header sum (a locally generated skb, veth),
 * which addresses enter and ports do not. CSUM_COMPLETE: skb->csum covers
 * the packet and must follow the change, which only bpf_l4_csum_replace()
 * does (ctx_l4_csum_replace; helper calls cost 2-3x direct writes on this
 * kernel, so only this mode uses them). */
#ifndef SVCLB_BPF_CTX_H
#define SVCLB_BPF_CTX_H

#include "lib/common.h"
#include "lib/maps.h"

#define CSUM_FULL     0
#define CSUM_PARTIAL  1
#define CSUM_COMPLETE 2

#if defined(SVCLB_CTX_SKB) && !defined(SVCLB_CTX_XDP)
#include "lib/ctx_skb.h"
#elif defined(SVCLB_CTX_XDP) && !defined(SVCLB_CTX_SKB)
#include "lib/ctx_xdp.h"
#else
#error "define exactly one of SVCLB_CTX_SKB and SVCLB_CTX_XDP before including lib/ctx.h"
#endif

static __always_inline void *ctx_data(const struct __ctx_buff *ctx)
{
	return (void *)(long)ctx->data;
}

static __always_inline void *ctx_data_end(const struct __ctx_buff *ctx)
{
	return (void *)(long)ctx->data_end;
}

#endif
