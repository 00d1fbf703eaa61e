/* SPDX-License-Identifier: Apache-2.0 */
/* Every map and global variable of the svclb object. All stateful maps are
 * pinned by name under the daemon's bpffs dir (pin_root_path), so a
 * restarted daemon or a new build of the programs adopts them without
 * touching traffic. The object is linked from several files (the bpf/ entry files):
 * bpf/maps.bpf.c defines SVCLB_DEFINE_MAPS and so defines each map and
 * variable; every other file sees extern declarations of the same ones,
 * which the linker (bpftool gen object) resolves to those. */
#ifndef SVCLB_BPF_MAPS_H
#define SVCLB_BPF_MAPS_H

#include "lib/common.h"

#ifdef SVCLB_DEFINE_MAPS
#define SVCLB_MAP
#define SVCLB_VAR(decl, init) decl = init
#else
#define SVCLB_MAP	      extern
#define SVCLB_VAR(decl, init) extern decl
#endif

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SVCLB_DEFAULT_SERVICES_ENTRIES);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svc_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SVCLB_DEFAULT_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backends_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SVCLB_DEFAULT_CT_ENTRIES);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_v2 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SVCLB_DEFAULT_CT_ENTRIES);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_est_v2 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SVCLB_DEFAULT_SVC_IDS);
	__type(key, __u32);
	__type(value, struct lb_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svc_stats_v2 SEC(".maps");

/* One be_slot per backend id and CPU (maps/svclb_abi.h; max_entries set by
 * the daemon: its --max-backends times cfg_be_stride). */
SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SVCLB_DEFAULT_BACKENDS);
	__type(key, __u32);
	__type(value, struct be_slot);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} be_stats_v2 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_MAX);
	__type(key, __u32);
	__type(value, struct drop_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drops_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CT_EV_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_events_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SVCLB_DEFAULT_SOCK_REV_ENTRIES);
	__type(key, struct sock_rev_key);
	__type(value, struct sock_rev_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sock_rev_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sock_flow_v2 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_flow6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sock_flow6_v2 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SVCLB_SOCK_DESTROY_ENTRIES);
	__type(key, struct sock_destroy_key);
	__type(value, __u32);
} sock_destroy_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SVCLB_SOCK_DESTROY_ENTRIES);
	__type(key, struct sock_destroy6_key);
	__type(value, __u32);
} sock_destroy6_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SVCLB_FRAG_ENTRIES);
	__type(key, struct frag_key);
	__type(value, struct frag_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} frag_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SVCLB_FRAG_ENTRIES);
	__type(key, struct frag6_key);
	__type(value, struct frag_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} frag6_v1 SEC(".maps");

/* IPv6 twins of the address-keyed maps (maps/svclb_abi.h, issue 16). */
SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SVCLB_DEFAULT_SERVICES_ENTRIES);
	__type(key, struct svc6_key);
	__type(value, struct svc_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svc6_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SVCLB_DEFAULT_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend6_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend6_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SVCLB_DEFAULT_CT_ENTRIES);
	__type(key, struct ct6_key);
	__type(value, struct ct6_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct6_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SVCLB_DEFAULT_CT_ENTRIES);
	__type(key, struct ct6_key);
	__type(value, struct ct6_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct6_est_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SVCLB_DEFAULT_AFFINITY_ENTRIES);
	__type(key, struct affinity6_key);
	__type(value, struct affinity_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} affinity6_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SVCLB_DEFAULT_SRC_RANGES);
	__type(key, struct src_range6_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} src_ranges6_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SVCLB_DEFAULT_SOCK_REV_ENTRIES);
	__type(key, struct sock_rev6_key);
	__type(value, struct sock_rev6_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sock_rev6_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SVCLB_DEFAULT_L2_ARP);
	__type(key, struct l2_ndp_key);
	__type(value, struct l2_arp_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} l2_ndp_v1 SEC(".maps");

/* Maglev tables: the inner template fixes the value type; BPF_F_INNER_MAP
 * lets inner tables of another size (--maglev-table-size) be inserted. */
struct maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SVCLB_DEFAULT_MAGLEV_SIZE);
	__uint(map_flags, BPF_F_INNER_MAP);
	__type(key, __u32);
	__type(value, __u32);
};

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, SVCLB_DEFAULT_SVC_IDS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct maglev_inner);
} maglev_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SVCLB_DEFAULT_AFFINITY_ENTRIES);
	__type(key, struct affinity_key);
	__type(value, struct affinity_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} affinity_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SVCLB_DEFAULT_SRC_RANGES);
	__type(key, struct src_range_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} src_ranges_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SVCLB_DEFAULT_L2_ARP);
	__type(key, struct l2_arp_key);
	__type(value, struct l2_arp_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} l2_arp_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, SVCLB_DEFAULT_TX_PORTS);
	__type(key, __u32);
	__type(value, __u32); /* the same ifindex */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tx_ports_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SVCLB_DEFAULT_TX_PORTS);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* 1: svclb_xdp_lb runs on it */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nic_xdp_v1 SEC(".maps");

/* The bitmaps of frontends and backends (svclb_abi.h, lb_filter_v1): the
 * verifier inlines an ARRAY lookup into an index computation. */
SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * SVCLB_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_filter_v1 SEC(".maps");

/* The client tuples that may have a CT entry (svclb_abi.h,
 * flow_filter_v1): one byte per slot; mmapable for the daemon's rebuilds. */
SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SVCLB_FLOWF_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_filter_v1 SEC(".maps");

/* Each backend's designated frontend (svclb_abi.h, be_rev_v1): looked up
 * only for packets from (or toward) a backend of lb_filter_v1 and by new
 * flows without source NAT. */
SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SVCLB_DEFAULT_BACKENDS);
	__type(key, struct be_rev_key);
	__type(value, struct be_rev_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} be_rev_v1 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SVCLB_DEFAULT_BACKENDS);
	__type(key, struct be_rev6_key);
	__type(value, struct be_rev6_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} be_rev6_v1 SEC(".maps");

/* The IPv6 half of the pod program (svclb_tc_pod_in6), reached by a tail
 * call: as a subprogram its stack would add to the IPv4 path's beyond the
 * verifier's 512 bytes. The daemon fills slot 0 after load. Pinned: the
 * kernel empties a PROG_ARRAY when its last user reference (fd or pin)
 * goes, so unpinned it would stop the IPv6 path while the daemon is away;
 * a restarted daemon reuses it and swaps its own program in. */
SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tail_progs SEC(".maps");

/* The same for the node NICs' programs: svclb_tc_ext_in6 (tc) and
 * svclb_xdp_lb6 (XDP; also reached from libxdp's freplace copy of
 * svclb_xdp_lb, whose resolved type is XDP). */
SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tail_ext6 SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tail_xdp6 SEC(".maps");

/* svcctl monitor (lib/monitor.h): not pinned, a daemon reads the ring of
 * the programs it loaded. */
SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MON_RING_BYTES);
} mon_events SEC(".maps");

SVCLB_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mon_state);
} mon_state SEC(".maps");

/* Set by the daemon (.bss / .data, mmapped): 1 while a monitor client is
 * attached (the only cost with nobody watching is this load and branch, on
 * drops and rejects only); the token bucket's rate, events per second per
 * CPU (--monitor-rate). */
SVCLB_VAR(__u32 cfg_monitor, 0);
SVCLB_VAR(__u32 cfg_monitor_rate, MON_RATE_DEFAULT);
/* Only there to put struct mon_event into the object's BTF (the ring
 * buffer map has no value type): tests/bpf/abi_btf_test.cpp checks it. */
SVCLB_VAR(struct mon_event mon_event_btf, {});
SVCLB_VAR(struct mon_event6 mon_event6_btf, {});

/* SNAT source ports (inclusive), set by the daemon like the lifetimes. */
SVCLB_VAR(__u32 cfg_snat_port_min, SNAT_PORT_MIN_DEFAULT);
SVCLB_VAR(__u32 cfg_snat_port_max, SNAT_PORT_MAX_DEFAULT);

/* Benchmark knob (bench/compare/local_delivery.sh, never a daemon flag): 1 =
 * a node-facing flow DNATed to a backend on this node is redirected into the
 * backend's veth after a FIB lookup instead of XDP_PASS to the stack. Off:
 * redirected frames only arrive if the pod side of the veth runs an XDP
 * program (veth NAPI), which no CNI installs. A load-time constant (.rodata,
 * DataplaneConfig::benchLocalRedirect, set only from the environment
 * variable SVCLB_BENCH_LOCAL_REDIRECT=1): the verifier knows its value, so
 * programs loaded without it carry neither the read nor the code. */
SVCLB_VAR(const volatile __u32 cfg_local_redirect, 0);

/* Test knob (tests/bpf/nat_test.cpp): the tc rewrites take the
 * CHECKSUM_COMPLETE path (bpf_l4_csum_replace) for every skb. test_run's
 * skbs are never COMPLETE, so without it no test would run that path. A
 * load-time constant (.rodata, DataplaneConfig::testTcCsumHelpers): the
 * verifier knows its value, so the daemon's programs (0) carry neither the
 * read nor the branch. */
SVCLB_VAR(const volatile __u32 cfg_tc_csum_helpers, 0);

/* be_stats_v2's slots per backend id: the possible CPUs, set by the daemon
 * before load (.rodata). */
SVCLB_VAR(const volatile __u32 cfg_be_stride, 1);

/* CT lifetimes in ticks, written by the daemon after load from the kernel's
 * HZ (.data is mmapped: plain loads here, no helper call). The initial
 * values assume HZ=250. */
SVCLB_VAR(__u32 cfg_ct_life_tcp, CT_LIFETIME_TCP_SECS * 250 >> CT_TICK_SHIFT);
SVCLB_VAR(__u32 cfg_ct_life_nontcp, CT_LIFETIME_NONTCP_SECS * 250 >> CT_TICK_SHIFT);
SVCLB_VAR(__u32 cfg_ct_life_closing, CT_LIFETIME_CLOSING_SECS * 250 >> CT_TICK_SHIFT);

/* Set by the daemon before load: the node's network namespace (0 = any
 * socket counts as the node's). With cfg_sock_lb SVCLB_SOCK_LB_NODE
 * only its sockets are balanced by the cgroup hooks, so daemons of several
 * node namespaces sharing one cgroup do not translate each other's sockets;
 * with SVCLB_SOCK_LB_ALL (--socket-lb=all, the default) the sockets of every
 * namespace in the cgroup are: the pods'. */
SVCLB_VAR(const volatile __u64 cfg_netns_cookie, 0);
SVCLB_VAR(const volatile __u32 cfg_sock_lb, 0);

#endif
