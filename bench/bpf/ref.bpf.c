/* SPDX-License-Identifier: Apache-2.0 */
/* Minimal reference programs: the yardstick svclb's per-packet cost is
 * compared with, measured in the same run. Each does the least its name
 * says, with the same map shapes as svclb (16-byte HASH service key,
 * LRU_HASH conntrack on the 5-tuple) and direct checksum writes.
 *
 * Return values tell the driver which path ran (it checks them):
 * XDP_TX = the intended path, XDP_PASS = it missed (e.g. a CT hit where a
 * miss was meant). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "maps/svclb_abi.h"
#include "lib/csum.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The reference service entry: the backend is in the entry itself. Same
 * size as struct svc_value. */
struct ref_svc_value {
	__be32 be_addr;
	__be16 be_port;
	__u16 pad;
	__u32 svc_id;
	__u32 reserved[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024); /* sized by the driver */
	__type(key, struct svc_key);
	__type(value, struct ref_svc_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ref_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024); /* sized by the driver */
	__type(key, struct ct_key);
	__type(value, struct ct_value);
} ref_ct SEC(".maps");

struct ref_pkt {
	struct iphdr *ip;
	__be16 *ports; /* [0] source, [1] destination */
	__sum16 *l4check;
};

/* Ethernet/IPv4 (no options)/TCP|UDP. Returns 0 or -1. */
static __always_inline int ref_parse(void *data, void *data_end, struct ref_pkt *p)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return -1;
	p->ip = ip;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > data_end)
			return -1;
		p->ports = &tcp->source;
		p->l4check = &tcp->check;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > data_end)
			return -1;
		p->ports = &udp->source;
		p->l4check = &udp->check;
	} else {
		return -1;
	}
	return 0;
}

static __always_inline void ref_dnat(struct ref_pkt *p, __be32 addr, __be16 port)
{
	__be32 old_addr = p->ip->daddr;
	__be16 old_port = p->ports[1];
	__sum16 c;

	p->ip->daddr = addr;
	p->ports[1] = port;
	p->ip->check = csum_replace4(p->ip->check, old_addr, addr);
	c = csum_replace4(*p->l4check, old_addr, addr);
	*p->l4check = csum_replace2(c, old_port, port);
}

static __always_inline void ref_ct_key(const struct ref_pkt *p, struct ct_key *k)
{
	k->saddr = p->ip->saddr;
	k->daddr = p->ip->daddr;
	k->sport = p->ports[0];
	k->dport = p->ports[1];
	k->proto = p->ip->protocol;
}

SEC("xdp")
int ref_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* parse + swap MACs + XDP_TX */
SEC("xdp")
int ref_xdp_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ref_pkt p;
	__u8 tmp[ETH_ALEN];

	if (ref_parse(data, data_end, &p))
		return XDP_PASS;
	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
	return XDP_TX;
}

/* parse + CT hit + DNAT + XDP_TX (a miss passes) */
SEC("xdp")
int ref_ct_hit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ct_key k = {};
	struct ct_value *ct;
	struct ref_pkt p;

	if (ref_parse(data, data_end, &p))
		return XDP_PASS;
	ref_ct_key(&p, &k);
	ct = bpf_map_lookup_elem(&ref_ct, &k);
	if (!ct)
		return XDP_PASS;
	ref_dnat(&p, ct->nat_addr, ct->nat_port);
	return XDP_TX;
}

/* parse + CT miss + service lookup + LRU insert (+ the reply entry when
 * `both`) + DNAT + XDP_TX (a CT hit or a non-service packet passes) */
static __always_inline int ref_new_flow_common(struct xdp_md *ctx, int both)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ref_svc_value *svc;
	struct svc_key sk = {};
	struct ct_key k = {};
	struct ref_pkt p;

	if (ref_parse(data, data_end, &p))
		return XDP_PASS;
	ref_ct_key(&p, &k);
	if (bpf_map_lookup_elem(&ref_ct, &k))
		return XDP_PASS;
	sk.vip = k.daddr;
	sk.port = k.dport;
	sk.proto = k.proto;
	svc = bpf_map_lookup_elem(&ref_svc, &sk);
	if (!svc)
		return XDP_PASS;
	{
		struct ct_value fwd = {
			.nat_addr = svc->be_addr,
			.nat_port = svc->be_port,
			.dir = CT_DIR_FORWARD,
			.svc_id = svc->svc_id,
		};

		if (both) {
			struct ct_key rk = {
				.saddr = svc->be_addr,
				.daddr = k.saddr,
				.sport = svc->be_port,
				.dport = k.sport,
				.proto = k.proto,
			};
			struct ct_value rev = {
				.nat_addr = k.daddr,
				.nat_port = k.dport,
				.dir = CT_DIR_REPLY,
				.svc_id = svc->svc_id,
			};

			if (bpf_map_update_elem(&ref_ct, &rk, &rev, BPF_ANY))
				return XDP_DROP;
		}
		if (bpf_map_update_elem(&ref_ct, &k, &fwd, BPF_ANY))
			return XDP_DROP;
	}
	ref_dnat(&p, svc->be_addr, svc->be_port);
	return XDP_TX;
}

SEC("xdp")
int ref_new_flow(struct xdp_md *ctx)
{
	return ref_new_flow_common(ctx, 0);
}

/* The same with a second LRU insert (the reply entry), as svclb does. */
SEC("xdp")
int ref_new_flow2(struct xdp_md *ctx)
{
	return ref_new_flow_common(ctx, 1);
}

SEC("tc")
int ref_tc_ok(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

/* The socket path's hooks doing nothing (bench/socklb/floor.sh): what a
 * pod's TCP connection pays for the cgroup hooks svclbd attaches
 * (connect4, the cgroup_skb counters) before any work of svclb's. */
SEC("cgroup/connect4")
int ref_sock_ok(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup_skb/egress")
int ref_skb_egress_ok(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/ingress")
int ref_skb_ingress_ok(struct __sk_buff *skb)
{
	return 1;
}

/* parse + CT hit + DNAT, then on to the stack (a miss passes untouched):
 * the bare stateful DNAT a tc datapath cannot do with less, for
 * bench/compare/tc_hook_cost.sh's floor of an established flow. */
SEC("tc")
int ref_tc_ct_dnat(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ct_key k = {};
	struct ct_value *ct;
	struct ref_pkt p;

	if (ref_parse(data, data_end, &p))
		return TC_ACT_OK;
	ref_ct_key(&p, &k);
	ct = bpf_map_lookup_elem(&ref_ct, &k);
	if (ct)
		ref_dnat(&p, ct->nat_addr, ct->nat_port);
	return TC_ACT_OK;
}

/* The generator's ceiling in bench/compare: frames dropped on arrival. */
SEC("xdp")
int ref_xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/* bench/compare's sink on the backend veth: UDP dropped (counted in the
 * interface's rx), everything else (the TCP test) delivered. */
SEC("tc")
int ref_tc_sink(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ref_pkt p;

	if (ref_parse(data, data_end, &p))
		return TC_ACT_OK;
	return p.ip->protocol == IPPROTO_UDP ? TC_ACT_SHOT : TC_ACT_OK;
}

/* ---- IPv6 references (issue 16): the bare v6 CT hit and new flow -------- */

struct ref_svc6_value {
	struct v6addr be_addr;
	__be16 be_port;
	__u16 pad;
	__u32 svc_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct svc6_key);
	__type(value, struct ref_svc6_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ref_svc6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024); /* sized by the driver */
	__type(key, struct ct6_key);
	__type(value, struct ct6_value);
} ref_ct6 SEC(".maps");

struct ref_pkt6 {
	struct ipv6hdr *ip6;
	__be16 *ports;
	__sum16 *l4check;
};

/* Ethernet/IPv6 (no extension headers)/TCP|UDP. Returns 0 or -1. */
static __always_inline int ref_parse6(void *data, void *data_end, struct ref_pkt6 *p)
{
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);

	if ((void *)(ip6 + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IPV6))
		return -1;
	p->ip6 = ip6;
	if (ip6->nexthdr == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip6 + 1);

		if ((void *)(tcp + 1) > data_end)
			return -1;
		p->ports = &tcp->source;
		p->l4check = &tcp->check;
	} else if (ip6->nexthdr == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip6 + 1);

		if ((void *)(udp + 1) > data_end)
			return -1;
		p->ports = &udp->source;
		p->l4check = &udp->check;
	} else {
		return -1;
	}
	return 0;
}

static __always_inline void ref_dnat6(struct ref_pkt6 *p, const struct v6addr *addr, __be16 port)
{
	struct v6addr old;
	__u32 sum = (__u16) ~*p->l4check;

	__builtin_memcpy(&old, &p->ip6->daddr, sizeof(old));
#pragma unroll
	for (int i = 0; i < 4; i++) {
		sum = csum_add32(sum, ~old.w[i]);
		sum = csum_add32(sum, addr->w[i]);
	}
	sum = csum_add32(sum, (__u16)~p->ports[1]);
	sum = csum_add32(sum, port);
	__builtin_memcpy(&p->ip6->daddr, addr, sizeof(*addr));
	p->ports[1] = port;
	*p->l4check = csum_fold32(sum);
}

static __always_inline void ref_ct6_key(const struct ref_pkt6 *p, struct ct6_key *k)
{
	__builtin_memcpy(&k->saddr, &p->ip6->saddr, sizeof(k->saddr));
	__builtin_memcpy(&k->daddr, &p->ip6->daddr, sizeof(k->daddr));
	k->sport = p->ports[0];
	k->dport = p->ports[1];
	k->proto = p->ip6->nexthdr;
}

/* parse + CT hit + DNAT + XDP_TX (a miss passes) */
SEC("xdp")
int ref6_ct_hit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ct6_key k = {};
	struct ct6_value *ct;
	struct ref_pkt6 p;

	if (ref_parse6(data, data_end, &p))
		return XDP_PASS;
	ref_ct6_key(&p, &k);
	ct = bpf_map_lookup_elem(&ref_ct6, &k);
	if (!ct)
		return XDP_PASS;
	ref_dnat6(&p, &ct->nat_addr, ct->nat_port);
	return XDP_TX;
}

/* parse + CT miss + service lookup + one LRU insert + DNAT + XDP_TX */
SEC("xdp")
int ref6_new_flow(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ref_svc6_value *svc;
	struct svc6_key sk = {};
	struct ct6_key k = {};
	struct ref_pkt6 p;

	if (ref_parse6(data, data_end, &p))
		return XDP_PASS;
	ref_ct6_key(&p, &k);
	if (bpf_map_lookup_elem(&ref_ct6, &k))
		return XDP_PASS;
	sk.vip = k.daddr;
	sk.port = k.dport;
	sk.proto = k.proto;
	svc = bpf_map_lookup_elem(&ref_svc6, &sk);
	if (!svc)
		return XDP_PASS;
	{
		struct ct6_value fwd = {
			.nat_addr = svc->be_addr,
			.nat_port = svc->be_port,
			.dir = CT_DIR_FORWARD,
			.svc_id = svc->svc_id,
		};

		if (bpf_map_update_elem(&ref_ct6, &k, &fwd, BPF_ANY))
			return XDP_DROP;
	}
	ref_dnat6(&p, &svc->be_addr, svc->be_port);
	return XDP_TX;
}
