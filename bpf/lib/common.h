/* SPDX-License-Identifier: Apache-2.0 */
/* Includes and small helpers shared by every svclb BPF program. */
#ifndef SVCLB_BPF_COMMON_H
#define SVCLB_BPF_COMMON_H

#include <asm-generic/errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "maps/svclb_abi.h"

/* From the socket ABI (not in the uapi headers BPF can include). */
#ifndef SOCK_STREAM
#define SOCK_STREAM 1
#define SOCK_DGRAM  2
#endif

#ifndef IP_MF
#define IP_MF 0x2000
#endif
#ifndef IP_OFFSET
#define IP_OFFSET 0x1fff
#endif

/* What the shared core tells the entry program to do. */
enum lb_action {
	LB_PASS = 0, /* not ours: leave the packet untouched */
	LB_DNAT = 1, /* client -> VIP: rewrite destination to the backend */
	LB_RNAT = 2, /* backend -> client: rewrite source back to the VIP */
};

#endif
