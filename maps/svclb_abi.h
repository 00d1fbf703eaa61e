/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svclb map ABI: the ONE contract between the BPF programs and the C++ side.
 *
 * Compiles as BPF C (clang -target bpf) and as C++20. Rules:
 *  - wire-order fields are __be32/__be16, host-order fields __u32/__u16;
 *  - explicit padding everywhere (hash keys are compared byte by byte, so a
 *    pad byte left uninitialised would make two equal keys differ);
 *  - no bitfields, bool, pointers or enum-typed fields;
 *  - a map whose layout changes gets a new versioned name (the _vN suffix),
 *    so a new build never reinterprets an old pinned map.
 * tests/bpf/abi_btf_test.cpp checks every struct here against the BTF of the
 * compiled BPF object (sizes and field offsets).
 */
#ifndef SVCLB_ABI_H
#define SVCLB_ABI_H

#include <linux/types.h>

#define SVCLB_ABI_VERSION 1

/* Map names (<= 15 chars: BPF_OBJ_NAME_LEN). Pinned as <bpffs-dir>/<name>. */
#define SVCLB_MAP_SERVICES   "svc_v1"
#define SVCLB_MAP_BACKENDS   "backends_v1"
#define SVCLB_MAP_CT	     "ct_v2"
#define SVCLB_MAP_CT_EST     "ct_est_v2"
#define SVCLB_MAP_SVC_STATS  "svc_stats_v2"
#define SVCLB_MAP_BE_STATS   "be_stats_v2"
#define SVCLB_MAP_DROPS	     "drops_v1"
#define SVCLB_MAP_SOCK_REV   "sock_rev_v1"
#define SVCLB_MAP_MAGLEV     "maglev_v1"
#define SVCLB_MAP_AFFINITY   "affinity_v1"
#define SVCLB_MAP_SRC_RANGES "src_ranges_v1"
#define SVCLB_MAP_L2_ARP     "l2_arp_v1"
#define SVCLB_MAP_TX_PORTS   "tx_ports_v1"
#define SVCLB_MAP_NIC_XDP    "nic_xdp_v1"
#define SVCLB_MAP_CT_EVENTS  "ct_events_v1"
#define SVCLB_MAP_SOCK_FLOW  "sock_flow_v2"
#define SVCLB_MAP_SOCK_CLOSE "sock_destroy_v1"
#define SVCLB_MAP_FRAG	     "frag_v1"
#define SVCLB_MAP_MON_EVENTS "mon_events"
#define SVCLB_MAP_MON_STATE  "mon_state"
/* IPv6 (issue 16): the v6 twins of the address-keyed maps. svc_id, backend
 * ids, svc_value, the stats arrays, maglev_v1 and backends_v1 (state,
 * svc_id, port, proto of every backend) are shared by both families; only
 * what holds an address has a v6 map. */
#define SVCLB_MAP_SERVICES6   "svc6_v1"
#define SVCLB_MAP_BACKEND6    "backend6_v1"
#define SVCLB_MAP_CT6	      "ct6_v1"
#define SVCLB_MAP_CT6_EST     "ct6_est_v1"
#define SVCLB_MAP_AFFINITY6   "affinity6_v1"
#define SVCLB_MAP_SRC_RANGES6 "src_ranges6_v1"
#define SVCLB_MAP_SOCK_REV6   "sock_rev6_v1"
#define SVCLB_MAP_L2_NDP      "l2_ndp_v1"
#define SVCLB_MAP_FRAG6	      "frag6_v1"
#define SVCLB_MAP_SOCK_CLOSE6 "sock_destroy6_v1"
/* PROG_ARRAYs of the IPv6 halves of the entry programs, slot 0 each:
 * svclb_tc_pod_in6, svclb_tc_ext_in6 (tc), svclb_xdp_lb6 (XDP: a prog array
 * holds one program type). */
#define SVCLB_MAP_TAIL_PROGS "tail_progs"
#define SVCLB_MAP_TAIL_EXT6  "tail_ext6"
#define SVCLB_MAP_TAIL_XDP6  "tail_xdp6"
#define SVCLB_MAP_SOCK_FLOW6 "sock_flow6_v2"

/* lb_filter_v1 (issue 15): ARRAY of 2 x SVCLB_FILTER_WORDS 64-bit words, two
 * bitmaps of SVCLB_FILTER_BITS bits each: the first over the {address,
 * port} of every frontend (a master's vip and port, either family), the
 * second (words SVCLB_FILTER_WORDS..) over those of every backend in
 * backends_v1. An element's bit in its bitmap is
 * hash_3words(fold(address), port, SVCLB_FILTER_SEED) modulo
 * SVCLB_FILTER_BITS, fold = the address (IPv4) or the XOR of its four words
 * (IPv6), both in network order, port in network order as a 32-bit value.
 * Every CT entry's key has a frontend as destination (FORWARD) or a backend
 * as source (REPLY), so a TCP/UDP packet whose destination is no frontend
 * and whose source is no backend has no CT entry and no Service: it passes
 * without those lookups; toward a backend (a direct or socket-balanced
 * flow) its opening packet still checks ct_take_over_tuple. The daemon sets
 * an element's bit before the map entries that need it and clears it after
 * their removal (a bit counts its elements in the daemon); a bit set in
 * excess only costs the full path. */
#define SVCLB_MAP_FILTER       "lb_filter_v1"
#define SVCLB_FILTER_BITS_LOG2 21
#define SVCLB_FILTER_BITS      (1u << SVCLB_FILTER_BITS_LOG2)
#define SVCLB_FILTER_WORDS     (SVCLB_FILTER_BITS / 64) /* per bitmap */
#define SVCLB_FILTER_SEED      0x5bd1e995u

/* flow_filter_v1: which client tuples may have a CT entry, so that a
 * backend's packets to a client no translated flow uses (its answers on a
 * direct or socket-balanced connection: most of a pod's traffic) pass
 * without the CT lookups. ARRAY (BPF_F_MMAPABLE) of 64-bit words: two maps
 * of SVCLB_FLOWF_SLOTS one-byte slots each, interleaved (slot s of map m is
 * byte 2 x s + m: both of a slot share a cache line), then the control word
 * SVCLB_FLOWF_CTL. A slot is a byte, not a bit, so that setting it is one
 * store (no read-modify-write to lose another CPU's slot; the packet path
 * sets both of a slot with one 16-bit store). An {address, port}'s slot is
 * hash_3words(fold(address), hport >> SVCLB_FLOWF_RUN_LOG2, SVCLB_FLOWF_SEED)
 * x SVCLB_FLOWF_RUN + (hport mod SVCLB_FLOWF_RUN), modulo SVCLB_FLOWF_SLOTS
 * (hport: the port in host order; fold as lb_filter_v1's): a run of
 * SVCLB_FLOWF_RUN consecutive ports of one address shares one cache line
 * of both maps, so a client's connections (Linux gives one destination's
 * connections nearby ports) set slots in a line already in the cache.
 * The packet path sets, before inserting a CT entry, the slot of the entry
 * key's client side in both maps: the source of a FORWARD key, the
 * destination of a REPLY key (the client, or the node's source-NAT address
 * and port). A TCP/UDP packet to no frontend whose destination's slot is
 * clear in the current map (ctl & SVCLB_FLOWF_CUR) can match no CT entry:
 * neither a REPLY entry of its own tuple nor a single-entry flow's FORWARD
 * entry it answers. While ctl lacks SVCLB_FLOWF_VALID every packet takes the
 * full path. Slots are never cleared by the packet path: the daemon
 * (loader/flow_filter.h) rebuilds the other map from the CT maps and then
 * makes it current, before the current one fills up. */
#define SVCLB_MAP_FLOW_FILTER  "flow_filter_v1"
#define SVCLB_FLOWF_SLOTS_LOG2 20
#define SVCLB_FLOWF_SLOTS      (1u << SVCLB_FLOWF_SLOTS_LOG2)
#define SVCLB_FLOWF_WORDS      (SVCLB_FLOWF_SLOTS / 8) /* per map */
#define SVCLB_FLOWF_CTL	       (2 * SVCLB_FLOWF_WORDS) /* the control word's index */
#define SVCLB_FLOWF_ENTRIES    (2 * SVCLB_FLOWF_WORDS + 1)
#define SVCLB_FLOWF_CUR	       1ull /* ctl: the second map is current */
#define SVCLB_FLOWF_VALID      2ull /* ctl: the current map is complete */
#define SVCLB_FLOWF_SEED       0x2c1b3c6du
#define SVCLB_FLOWF_RUN_LOG2   5 /* 32 slots x 2 bytes: 64 bytes */
#define SVCLB_FLOWF_RUN	       (1u << SVCLB_FLOWF_RUN_LOG2)

/* be_rev_v1 / be_rev6_v1 (HASH, one entry per backend address:port:proto,
 * SVCLB_DEFAULT_BACKENDS): the backend's designated frontend, a ClusterIP
 * (never node-facing) frontend that holds it. A new flow of that frontend
 * without source NAT takes a single CT entry (CT_F_SINGLE, FORWARD, keyed
 * on the client's packets); the backend's answers find it by rebuilding its
 * key (client = the answer's destination, destination = this frontend).
 * A backend behind several frontends names one of them; the others' flows
 * keep two entries. The daemon keeps a designation while the frontend still
 * holds the backend, so live single flows keep their answers. */
#define SVCLB_MAP_BE_REV  "be_rev_v1"
#define SVCLB_MAP_BE_REV6 "be_rev6_v1"

/* Default capacities; the daemon may resize before load (--max-*). */
#define SVCLB_DEFAULT_SERVICES_ENTRIES 262144 /* masters + backend slots */
#define SVCLB_DEFAULT_BACKENDS	       262144 /* backend ids 1..N-1 */
#define SVCLB_DEFAULT_SVC_IDS	       65536  /* frontend ids 1..N-1 */
#define SVCLB_DEFAULT_CT_ENTRIES       262144 /* 2 entries per flow */
#define SVCLB_DEFAULT_SOCK_REV_ENTRIES 65536
#define SVCLB_DEFAULT_AFFINITY_ENTRIES 262144
#define SVCLB_DEFAULT_MAGLEV_SIZE      16381 /* prime; entries per service table */
#define SVCLB_DEFAULT_SRC_RANGES       65536
#define SVCLB_DEFAULT_L2_ARP	       4096
#define SVCLB_DEFAULT_TX_PORTS	       64
#define SVCLB_FRAG_ENTRIES	       8192 /* datagrams in flight in fragments */

/* svc_key.scope: which view of a frontend the entry belongs to.
 * EXTERNAL serves every client. INTERNAL exists only beside an
 * externalTrafficPolicy: Local frontend (SVC_F_LOCAL_ONLY), as its own
 * frontend (svc_id, slots, Maglev table) flagged SVC_F_NODE_VIEW: all the
 * Service's endpoints, for new flows from this node's pods (tc on a pod
 * interface) and processes (the socket hooks), which kube-proxy sends to
 * any endpoint rather than only the local ones (kubernetes#77523). */
#define SVC_SCOPE_EXTERNAL 0
#define SVC_SCOPE_INTERNAL 1

/* Frontend: {vip, port, proto, scope, slot}. slot 0 is the master entry
 * (svc_id, count, flags); slots 1..total hold one backend id each, ready
 * backends first (1..count), then terminating ones (count+1..total). */
struct svc_key {
	__be32 vip;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 scope; /* SVC_SCOPE_* */
	__u16 slot; /* 0 = master */
	__u16 pad;
};

/* svc_value.algo */
#define SVC_ALGO_RANDOM 0
#define SVC_ALGO_MAGLEV 1

/* svc_value.flags (master) */
#define SVC_F_AFFINITY 0x01 /* sessionAffinity: ClientIP (issue 4) */
/* A node-facing frontend (NodePort on a node address, LoadBalancer ingress
 * IP, externalIP). From a node NIC, a new flow whose backend is routed out
 * of a node NIC (another node) is source-NATed to this node's address. */
#define SVC_F_EXTERNAL 0x02
/* externalTrafficPolicy: Local: the slots hold this node's endpoints only,
 * never SNAT (the client address is preserved). */
#define SVC_F_LOCAL_ONLY 0x04
/* With SVC_F_LOCAL_ONLY: the Service has endpoints, none on this node:
 * drop (kube-proxy's DROP), do not reject. */
#define SVC_F_NO_LOCAL_EPS 0x08
/* loadBalancerSourceRanges: a new flow's client must match an entry of
 * src_ranges_v1 for this svc_id, or it is dropped and counted. */
#define SVC_F_SRC_RANGES 0x10
/* The SVC_SCOPE_INTERNAL twin of an externalTrafficPolicy: Local frontend:
 * its slots are keyed with that scope (lb_select). */
#define SVC_F_NODE_VIEW 0x20

struct svc_value {
	__u32 svc_id;	  /* frontend id: stats index and CT owner; both kinds */
	__u32 backend_id; /* slot > 0: the backend; master: 0 */
	__u16 count;	  /* master: ready slots 1..count */
	__u16 total;	  /* master: all slots, terminating after ready */
	__u8 algo;	  /* master: SVC_ALGO_* */
	__u8 flags;	  /* master: SVC_F_* */
	__u16 pad;
	__u32 affinity_timeout; /* master: seconds, 0 = no affinity */
	__u32 maglev_size;	/* master: entries in this service's Maglev table */
};

/* Maglev: ARRAY_OF_MAPS indexed by svc_id; each inner map is an ARRAY of
 * __u32 backend ids (the lookup table, size = a prime M). A table is
 * replaced by building a new inner map and swapping the outer slot: one
 * atomic update, so a packet sees the old table or the new one. */

/* Session affinity (sessionAffinity: ClientIP): LRU_HASH
 * {svc_id, client address} -> {backend id, last new connection (ns)}.
 * The node's own sockets use client address 0. */
struct affinity_key {
	__u32 svc_id;
	__be32 client;
};

struct affinity_value {
	__u32 backend_id;
	__u32 pad;
	__u64 last_used_ns; /* bpf_ktime_get_ns() of the last new connection */
};

/* backend_value.state. A zeroed array slot is EMPTY: the id is free. */
#define BE_STATE_EMPTY	     0
#define BE_STATE_ACTIVE	     1
#define BE_STATE_TERMINATING 2
/* A not-ready endpoint of a TCP frontend: like a terminating one, no slot,
 * its established flows continue (kube-proxy's conntrack keeps every TCP
 * flow; a failing readiness probe must not cut open connections). */
#define BE_STATE_NOT_READY 3
/* An endpoint removed from a TCP frontend: no slot, its established flows
 * continue until they end, as kube-proxy's conntrack keeps a TCP flow whose
 * endpoint is gone from the Service. svclbd frees the entry once no live CT
 * entry names it (loader/drain.h). UDP frontends free a removed endpoint at
 * once (kube-proxy flushes its UDP conntrack entries). */
#define BE_STATE_REMOVED 4

/* Backends: ARRAY indexed by backend id (id 0 is never used). */
struct backend_value {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 state;   /* BE_STATE_* */
	__u32 svc_id; /* owning frontend: a CT entry is only valid if equal */
	__u32 pad;
};

/* loadBalancerSourceRanges: LPM_TRIE {prefixlen, svc_id, addr}. prefixlen
 * counts the 32 bits of svc_id plus the CIDR's mask length, so one trie
 * holds every Service's ranges. The value is unused (1). */
struct src_range_key {
	__u32 prefixlen;
	__u32 svc_id; /* host order: always covered whole by prefixlen */
	__be32 addr;
};

/* L2 announcements: HASH {address, ifindex} -> the MAC to answer ARP
 * requests for that address with, on that node NIC. */
struct l2_arp_key {
	__be32 addr;
	__u32 ifindex;
};

struct l2_arp_value {
	__u8 mac[6];
	__u16 pad;
};

/* tx_ports_v1: DEVMAP_HASH keyed by ifindex: the node NICs (--external-iface).
 * A backend routed out of one of them is on another node (SNAT + XDP_TX /
 * redirect); anything else is local.
 * nic_xdp_v1: HASH ifindex -> 1 for the node NICs where svclb_xdp_lb runs
 * (the XDP datapath). There svclb_tc_ext_in also sees the packets XDP has
 * already translated and passed to the stack, and must not take them for
 * direct flows (ct_take_over_tuple). */

/* Connection tracking: LRU_HASH keyed on the packet's own 5-tuple. A flow
 * has two entries: FORWARD (client -> VIP, says where to DNAT) and REPLY
 * (backend -> client, says which VIP to restore as the source).
 * Two maps of this layout: ct_v2 holds new flows (UDP, TCP handshakes);
 * a TCP flow moves to ct_est_v2 once the client ACKs the handshake, so a
 * flood of new flows churns ct_v2 only and cannot evict established
 * connections. */
struct ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

#define CT_DIR_FORWARD 1
#define CT_DIR_REPLY   2

/* ct_value.flags */
#define CT_F_CLOSING 0x01 /* a FIN or RST was seen: short lifetime */
/* Source NAT (external flow to a backend on another node). FORWARD: also
 * rewrite the source to snat_addr:snat_port (this node). REPLY: also
 * rewrite the destination to snat_addr:snat_port (the client). Packets of
 * such a flow leave by XDP_TX / redirect after a FIB lookup. */
#define CT_F_SNAT 0x02
/* The flow entered through a node-facing frontend (SVC_F_EXTERNAL). Its
 * reply's new source may be one of the node's own addresses (a NodePort),
 * which the stack would drop as a martian on input: the pod-side tc program
 * forwards such replies itself (FIB lookup + redirect). */
#define CT_F_EXTERNAL 0x04
/* Hairpin (with CT_F_SNAT): a pod reached a Service and got itself as the
 * backend. Without SNAT its answer would stay inside the pod, never reverse
 * translated; so the flow is source-NATed to the node's address toward the
 * pod (kube-proxy masquerades hairpin traffic too), and both directions
 * are sent straight back into the pod's interface (MACs swapped): the
 * stack would drop the forward packet, whose source is the node's own
 * address, as a martian. */
#define CT_F_HAIRPIN 0x08
/* FORWARD only: the flow has no REPLY entry (be_rev_v1): one CT insert per
 * new flow, one entry to promote, no pair to relink. */
#define CT_F_SINGLE 0x10

struct be_rev_key {
	__be32 addr; /* the backend */
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct be_rev_value {
	__be32 vip; /* the designated frontend */
	__be16 port;
	__u16 pad;
	__u32 svc_id;
};

/* last_seen is in ticks of 2^CT_TICK_SHIFT jiffies (bpf_jiffies64(), which
 * the verifier inlines into one load: ~1 s at HZ=250). An entry idle for
 * longer than its lifetime is stale: ignored by lookups, left to LRU
 * eviction. Lifetimes are given in seconds here; the daemon converts them to
 * ticks with the kernel's HZ and writes them into the programs' .data. */
#define CT_TICK_SHIFT		 8
#define CT_LIFETIME_TCP_SECS	 21600 /* an established TCP flow: 6 h */
#define CT_LIFETIME_NONTCP_SECS	 60    /* UDP */
#define CT_LIFETIME_CLOSING_SECS 10    /* after FIN/RST */

struct ct_value {
	__be32 nat_addr; /* FORWARD: backend address; REPLY: VIP */
	__be16 nat_port; /* FORWARD: backend port; REPLY: service port */
	__u8 dir;	 /* CT_DIR_* */
	__u8 flags;	 /* CT_F_* */
	__u32 backend_id;
	__u32 svc_id;
	__u32 last_seen;  /* bpf_jiffies64() >> CT_TICK_SHIFT */
	__be32 snat_addr; /* CT_F_SNAT, FORWARD: node address; REPLY: client */
	__be16 snat_port; /* CT_F_SNAT, FORWARD: allocated port; REPLY: client port */
	__u16 pad;
};

/* IP fragments (bpf/lib/frag.h): LRU_HASH {source, destination, IP id,
 * protocol} -> the ports of the datagram's first fragment (the only one
 * carrying the L4 header), recorded for every TCP/UDP first fragment a
 * program sees, so later fragments (offset != 0) get the same CT lookup and
 * the same address translation. Addresses as on the wire where the program
 * saw the first fragment (before translation). */
struct frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id; /* IP identification */
	__u8 proto;
	__u8 pad;
};

struct frag_value {
	__be16 sport;
	__be16 dport;
};

/* Source ports for SNAT, inclusive. Outside Linux's default ephemeral range
 * (32768-60999) so they do not meet the node's own connections; the daemon
 * may set another range in .data (cfg_snat_port_min/max). */
#define SNAT_PORT_MIN_DEFAULT 61000
#define SNAT_PORT_MAX_DEFAULT 65535
#define SNAT_PORT_PROBES      16 /* ports tried per new flow before giving up */

/* Socket-level reverse translation for the node's own UDP sockets
 * (recvmsg4/getpeername4): {socket cookie, backend} -> VIP. */
struct sock_rev_key {
	__u64 cookie;
	__be32 addr;
	__be16 port;
	__u16 pad;
};

struct sock_rev_value {
	__be32 vip;
	__be16 port;
	__u16 pad;
};

/* sock_destroy_v1 (not pinned, filled and emptied by the daemon around one
 * run of the svclb_sock_destroy_udp iterator): a UDP frontend and one of its
 * backends that was just removed. The node's sockets connected to that
 * backend through that frontend (their sock_rev_v1 entry says so) are
 * closed with bpf_sock_destroy (the application sees an error and
 * reconnects), as the tc path re-balances such flows. */
#define SVCLB_SOCK_DESTROY_ENTRIES 1024
struct sock_destroy_key {
	__be32 vip;
	__be32 addr; /* the backend */
	__be16 vport;
	__be16 port;
};

/* A socket balanced by the cgroup hooks (socket-local storage, keyed by the
 * socket itself): the flow its packets are counted to by the cgroup_skb
 * hooks (egress: packets/bytes to `addr`; ingress: reply_* from it), as the
 * packet path counts a translated flow's packets. Rewritten when the socket
 * (unconnected UDP) is pointed at another backend. A TCP socket's frontend
 * is kept here too (vport != 0): getpeername shows it without a
 * sock_rev_v1 entry (an LRU insert per connect saved; issue 15). */
struct sock_flow {
	__u32 svc_id;
	__u32 backend_id;
	__be32 addr; /* the backend */
	__be16 port;
	__be16 vport; /* TCP: the frontend's port (0: look in sock_rev_v1) */
	__be32 vip;   /* TCP: the frontend's address */
};

/* Whose sockets the cgroup hooks balance (.rodata cfg_sock_lb, the daemon's
 * --socket-lb): the node's network namespace only, or every namespace whose
 * processes sit in the cgroup (the pods' too). */
#define SVCLB_SOCK_LB_NODE 0
#define SVCLB_SOCK_LB_ALL  1

/* Counters. packets/bytes: client->service packets translated on the
 * packet path (bytes = IP total length); reply_*: backend->client packets
 * reverse translated; flows: new connections balanced (packet path CT
 * creations and socket-level connects/sends).
 * A backend's are counted in its be_slot (be_stats_v2, below). A Service
 * frontend's are those of its backends plus its svc_stats_v2[svc_id]
 * (per-CPU array): its rejects, and what svclbd folded in from its backends
 * it freed (loader/syncer.cpp), so a translated packet touches one line of
 * counters, not two. */
struct lb_stats {
	__u64 packets;
	__u64 bytes;
	__u64 reply_packets;
	__u64 reply_bytes;
	__u64 flows;
	__u64 rejects; /* new flows refused: no usable endpoint (RST/ICMP/ECONNREFUSED) */
};

/* be_stats_v2: an ARRAY (BPF_F_MMAPABLE, so page aligned: each slot is
 * one cache line) of one slot per backend id and CPU, at id * stride + cpu
 * (stride: .rodata cfg_be_stride, the possible CPUs). A slot holds its
 * backend's owner, written by svclbd in every CPU's slot when it allocates
 * (the frontend's svc_id) and frees (0) the id: a CT entry's backend is
 * valid only while its owner is the entry's svc_id. The packet path reads
 * the owner and counts in the same line. */
struct be_slot {
	__u32 svc_id; /* owner; 0: free */
	__u32 pad;
	struct lb_stats s;
	__u64 pad2;
};

/* Drop reasons: index into the drops per-CPU array. A BPF helper returns
 * -DROP_* and the program entry counts it and drops, once. */
#define DROP_NO_BACKEND	   1  /* service has no usable endpoint */
#define DROP_CT_INSERT	   2  /* conntrack insert failed */
#define DROP_CSUM	   3  /* checksum/store helper failed */
#define DROP_PULL	   4  /* could not make headers writable */
#define DROP_BACKEND_GONE  5  /* selected slot points at a freed backend */
#define DROP_REJECT_FAILED 6  /* no endpoint, and the reject could not be built */
#define DROP_SOURCE_RANGE  7  /* client outside loadBalancerSourceRanges */
#define DROP_NO_LOCAL_EP   8  /* externalTrafficPolicy: Local, no endpoint here */
#define DROP_SNAT_PORTS	   9  /* no free SNAT port for a new flow */
#define DROP_FIB	   10 /* no route to the backend / client (FIB lookup) */
#define DROP_TTL	   11 /* a frame svclb forwards itself had TTL <= 1 */
#define DROP_MAX	   16

struct drop_stats {
	__u64 packets;
	__u64 bytes;
};

/* Conntrack events: index into the ct_events per-CPU array (__u64 each).
 * A flow has two CT entries (FORWARD keyed on the client's packet, REPLY on
 * the backend's answer) in one LRU map; every hit on one looks up the
 * other, so both stay equally recent, and rebuilds it if the LRU took it. */
#define CT_EV_RELINKED 0 /* a flow's other entry was gone and was rebuilt */
#define CT_EV_ORPHANED 1 /* its key belonged to another flow: this entry dropped */
/* An ICMP error quoting a flow's packet, translated back (bpf/lib/icmp.h).
 * (2 is the fragments' counter.) */
#define CT_EV_ICMP_ERROR 3
/* A later IP fragment (offset != 0) of a TCP/UDP datagram whose first
 * fragment this program did not record (reordered, evicted from frag_v1, or
 * seen elsewhere): passed untouched (bpf/lib/frag.h). */
#define CT_EV_FRAG_NO_FIRST 2
#define CT_EV_MAX	    4

/* An IPv6 address as on the wire, in a struct so that it is assigned and
 * passed by value like the IPv4 __be32 (w[0] holds bytes 0-3). */
struct v6addr {
	__be32 w[4];
};

/* Drop and reject events for `svcctl monitor` (docs/architecture.md,
 * Observability). The packet and socket programs write one mon_event per
 * drop (lb_exit, the socket hooks' EPERM) and per reject (RST / ICMP /
 * ECONNREFUSED) into the mon_events BPF_MAP_TYPE_RINGBUF, only while the
 * daemon has a monitor client (.data cfg_monitor = 1) and within a per-CPU
 * token bucket of cfg_monitor_rate events per second (burst: one second's
 * worth). Neither map is pinned: a restarted daemon reads its own programs'
 * ring; events of the moment of the switch are lost, never misread. */
#define MON_EV_DROP   1
#define MON_EV_REJECT 2

/* mon_event.hook: which program saw it. */
#define MON_HOOK_TC_POD	      0 /* svclb_tc_pod_in (LB_MODE_POD) */
#define MON_HOOK_XDP	      1 /* svclb_xdp_lb (LB_MODE_XDP_EXT) */
#define MON_HOOK_TC_EXT	      2 /* svclb_tc_ext_in (LB_MODE_TC_EXT) */
#define MON_HOOK_SOCK_CONNECT 3 /* cgroup/connect4 */
#define MON_HOOK_SOCK_SENDMSG 4 /* cgroup/sendmsg4 */

#define MON_RATE_DEFAULT 1000 /* events per second per CPU (--monitor-rate) */
#define MON_RING_BYTES	 (256 * 1024)

struct mon_event {
	__u64 ts_ns;  /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u8 type;    /* MON_EV_* */
	__u8 reason;  /* DROP_* (a reject: DROP_NO_BACKEND) */
	__u8 proto;   /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 hook;    /* MON_HOOK_* */
	__be32 saddr; /* the packet's source; socket hooks: the socket's (0 if unbound) */
	__be32 daddr; /* the packet's destination: the frontend for a new flow */
	__be16 sport;
	__be16 dport;
	__u32 svc_id;  /* 0 = not known (a drop before the frontend lookup) */
	__u32 ifindex; /* ingress interface; 0 for the socket hooks */
};

/* tail_progs (PROG_ARRAY, pinned): slot of the pod program's IPv6 half;
 * tail_ext6 and tail_xdp6 use slot 0 as well. */
#define SVCLB_TAIL_POD6 0
#define SVCLB_TAIL_V6	0

/* ---- IPv6 (issue 16) ------------------------------------------------------ */

/* svc6_v1: the v6 frontends, laid out as svc_v1 (slot 0 the master, slots
 * 1..total backend ids; the value is struct svc_value, svc_id from the one
 * id space shared with v4). */
struct svc6_key {
	struct v6addr vip;
	__be16 port;
	__u8 proto;
	__u8 scope; /* SVC_SCOPE_* */
	__u16 slot; /* 0 = master */
	__u16 pad;
};

/* backend6_v1: ARRAY indexed by backend id, parallel to backends_v1: a v6
 * backend's id has its state/svc_id/port/proto in backends_v1 (addr 0) and
 * its address here. Selection and the CT's backend check read backends_v1
 * alone, whatever the family; only the DNAT address comes from here. */
struct backend6_value {
	struct v6addr addr;
};

/* affinity6_v1: LRU_HASH, sessionAffinity: ClientIP for v6 clients. */
struct affinity6_key {
	__u32 svc_id;
	struct v6addr client;
};

/* src_ranges6_v1: LPM_TRIE, prefixlen = 32 (svc_id) + the CIDR's mask. */
struct src_range6_key {
	__u32 prefixlen;
	__u32 svc_id;
	struct v6addr addr;
};

/* ct6_v1 / ct6_est_v1: the v6 conntrack, same semantics and flags as
 * ct_v2 / ct_est_v2 (two entries per flow, promotion on the ACK). */
struct ct6_key {
	struct v6addr saddr;
	struct v6addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct ct6_value {
	struct v6addr nat_addr; /* FORWARD: backend address; REPLY: VIP */
	__be16 nat_port;
	__u8 dir;
	__u8 flags;
	__u32 backend_id;
	__u32 svc_id;
	__u32 last_seen;
	struct v6addr snat_addr; /* CT_F_SNAT, FORWARD: node address; REPLY: client */
	__be16 snat_port;
	__u16 pad;
};

/* sock_rev6_v1: the node's UDP6 sockets, {cookie, backend} -> VIP. */
struct sock_rev6_key {
	__u64 cookie;
	struct v6addr addr;
	__be16 port;
	__u16 pad;
	__u32 pad2;
};

struct sock_rev6_value {
	struct v6addr vip;
	__be16 port;
	__u16 pad;
};

/* sock_flow6_v2: SK_STORAGE, an IPv6 socket's flow (struct sock_flow for
 * an IPv6 backend): the cgroup_skb hooks count its packets and bytes. */
struct sock_flow6 {
	__u32 svc_id;
	__u32 backend_id;
	struct v6addr addr; /* the backend */
	__be16 port;
	__be16 vport;	   /* TCP: the frontend's port (0: look in sock_rev6_v1) */
	struct v6addr vip; /* TCP: the frontend's address */
};

/* l2_ndp_v1: HASH {address, ifindex} -> MAC: neighbour solicitations for
 * an announced v6 LoadBalancer/external IP on that NIC are answered with a
 * neighbour advertisement (the v6 ARP answer). Value: struct l2_arp_value. */
struct l2_ndp_key {
	struct v6addr addr;
	__u32 ifindex;
};

/* sock_destroy6_v1: sock_destroy_v1 for IPv6 frontends and backends (the
 * same run of svclb_sock_destroy_udp reads both). */
struct sock_destroy6_key {
	struct v6addr vip;
	struct v6addr addr; /* the backend */
	__be16 vport;
	__be16 port;
};

struct be_rev6_key {
	struct v6addr addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct be_rev6_value {
	struct v6addr vip;
	__be16 port;
	__u16 pad;
	__u32 svc_id;
};

/* frag6_v1: frag_v1 for IPv6 (LRU_HASH, SVCLB_FRAG_ENTRIES): {source,
 * destination, the fragment header's 32-bit identification, the L4
 * protocol} -> the first fragment's ports (struct frag_value). */
struct frag6_key {
	struct v6addr saddr;
	struct v6addr daddr;
	__be32 id;
	__u8 proto;
	__u8 pad[3];
};

#ifdef __cplusplus
#define SVCLB_ABI_ASSERT static_assert
#else
#define SVCLB_ABI_ASSERT _Static_assert
#endif
SVCLB_ABI_ASSERT(sizeof(struct mon_event) == 32, "mon_event: 32 bytes, no implicit padding");
SVCLB_ABI_ASSERT(__builtin_offsetof(struct mon_event, saddr) == 12, "mon_event.saddr");
SVCLB_ABI_ASSERT(__builtin_offsetof(struct mon_event, svc_id) == 24, "mon_event.svc_id");

/* The same event about an IPv6 packet or socket (56 bytes: the ring's
 * reader tells the two apart by the record's size). */
struct mon_event6 {
	__u64 ts_ns;
	__u8 type;
	__u8 reason;
	__u8 proto;
	__u8 hook;
	__u32 svc_id;
	struct v6addr saddr;
	struct v6addr daddr;
	__be16 sport;
	__be16 dport;
	__u32 ifindex;
};

/* mon_state: PERCPU_ARRAY of one entry: the token bucket and what it and
 * the ring lost. tokens counts events * 1e9 (refilled by elapsed ns * rate:
 * no division in BPF). */
struct mon_state {
	__u64 last_ns;
	__u64 tokens;
	__u64 rate_limited; /* events suppressed by the token bucket */
	__u64 ring_full;    /* events lost: no room in the ring buffer */
};
SVCLB_ABI_ASSERT(sizeof(struct mon_state) == 32, "mon_state: 4 counters");
SVCLB_ABI_ASSERT(sizeof(struct be_slot) == 64, "be_slot: one cache line");
SVCLB_ABI_ASSERT(sizeof(struct mon_event6) == 56, "mon_event6: 56 bytes, no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct svc6_key) == 24, "svc6_key: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct ct6_key) == 40, "ct6_key: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct ct6_value) == 52, "ct6_value: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct affinity6_key) == 20, "affinity6_key: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct src_range6_key) == 24, "src_range6_key: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct sock_rev6_key) == 32, "sock_rev6_key: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct l2_ndp_key) == 20, "l2_ndp_key: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct frag6_key) == 40, "frag6_key: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct sock_destroy6_key) == 36, "sock_destroy6_key: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct be_rev_key) == 8, "be_rev_key: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct be_rev_value) == 12, "be_rev_value: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct be_rev6_key) == 20, "be_rev6_key: no implicit padding");
SVCLB_ABI_ASSERT(sizeof(struct be_rev6_value) == 24, "be_rev6_value: no implicit padding");

#endif /* SVCLB_ABI_H */
