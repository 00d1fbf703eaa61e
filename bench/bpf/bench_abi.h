/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the benchmark BPF objects (bench/bpf) and their
 * C++ drivers (bench). Same rules as maps/svclb_abi.h: explicit
 * padding, host-order fields say so. */
#ifndef SVCLB_BENCH_ABI_H
#define SVCLB_BENCH_ABI_H

#include <linux/types.h>

/* Bytes of the frame the re-run wrapper restores before every iteration:
 * Ethernet + IPv4 without options + TCP header. Payload bytes are never
 * rewritten by the programs under test, so they need no restoring. */
#define BENCH_HDR_COPY 54
/* The same for an IPv6 frame (WRAP_IPV6): Ethernet + IPv6 + TCP header. */
#define BENCH_HDR_COPY6 74
#define BENCH_TMPL_SIZE 64
/* The re-run wrapper's template: room for the IPv6 headers. */
#define BENCH_WRAP_TMPL_SIZE 80

/* wrap_cfg.mode bits */
#define WRAP_VARY_SRC	0x1 /* unique (saddr, sport) per iteration: a CT miss every time */
#define WRAP_SPREAD_DST 0x2 /* daddr = spread_base + idx: keys over N services */
#define WRAP_SPREAD_SRC 0x4 /* saddr = spread_base + idx (reply direction) */
#define WRAP_SEQ	0x8 /* idx = counter % n (warm-up), else a hash of it */
/* XDP: a frame the program grew into an ICMP port unreachable (70 bytes,
 * head moved 28 bytes back) is shrunk back to tmpl_len first, so every
 * iteration sends the original UDP datagram again. Costs the wrapper two
 * helper calls on those iterations (counted in the row, not the floor). */
#define WRAP_UNDO_ICMP 0x10
/* The template is an IPv6 frame: BENCH_HDR_COPY6 bytes are restored, and
 * WRAP_VARY_SRC varies the source address's last 32 bits (src_base + c >> 16)
 * and the TCP source port. No spreading. */
#define WRAP_IPV6 0x20

struct wrap_cfg {
	__u8 tmpl[BENCH_WRAP_TMPL_SIZE]; /* the frame's first bytes, restored each run */
	__u32 mode;			 /* WRAP_* */
	__u32 spread_n;			 /* number of keys to spread over (>= 1) */
	__u32 spread_base;		 /* host order: first address of the spread */
	__u32 src_base;			 /* host order: WRAP_VARY_SRC base address */
	__u32 tmpl_len;			 /* the template frame's length (WRAP_UNDO_ICMP) */
};

/* Live-frames traffic generator (bench/bpf/trafficgen.bpf.c). */
struct tgen_cfg {
	__u32 ifindex;		    /* egress interface: XDP_REDIRECT target */
	__u32 flows;		    /* distinct source ports cycled through (>= 1) */
	__u16 sport_base;	    /* host order */
	__u16 l4_off;		    /* offset of the L4 header in the frame */
	__u32 new_flow;		    /* 1: (saddr low bits, sport) from a global counter */
	__u8 tmpl[BENCH_TMPL_SIZE]; /* the frame's headers, rewritten every run */
};

#endif
