// The cluster DNS address on this node (svclbd --cluster-dns): a /32 on
// `lo` labelled "lo:svclb-dns" (an IPv6 one: a /128 marked by IFA_PROTO), so that pods' queries to
// it are delivered to svclbd's DNS server (dns/server.h) by the node's own routing, with no Service
// frontend, DNAT or conntrack on the way. NodeLocal DNSCache puts the kube-dns address on a dummy
// link the same way; svclb uses lo because a kernel without the dummy driver (this project's CI)
// has lo everywhere. The address stays when svclbd stops (queries then get "port unreachable" at
// once, and a restart rebinds), and goes with --uninstall or
// --cluster-dns none.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "model/model.h"

namespace svclb {

inline constexpr std::string_view kDnsAddressLabel = "lo:svclb-dns";
// IPv6 addresses have no labels: svclbd's carries this IFA_PROTO (an
// address "protocol" the kernel keeps for whoever added it; `ip -6 addr`
// shows "proto 0xcb"), 0xcb being unassigned (the kernel uses 0-3).
inline constexpr uint8_t kDnsAddressProto = 0xcb;

// Makes `addr` (host order) the one IPv4 address labelled kDnsAddressLabel
// on lo and `addr6` the one IPv6 address with kDnsAddressProto: adds them
// if missing, removes the others (an earlier --cluster-dns). 0 / all zero =
// none of that family.
Status ensureDnsAddress(uint32_t addr, const Ip6& addr6 = {});

// The IPv4 addresses (host order) currently labelled kDnsAddressLabel.
std::vector<uint32_t> dnsAddresses();
// The IPv6 addresses on lo carrying kDnsAddressProto.
std::vector<Ip6> dnsAddresses6();

// net.ipv4.conf.IFNAME.accept_local = 1 on a pod interface: a Service that
// holds the cluster DNS address (kube-dns) has its replies reverse-NATed in
// tc ingress to that address, local to the node; without accept_local the
// kernel drops them as martians (with rp_filter off; with strict rp_filter
// on the interface they are dropped anyway: docs/architecture.md).
Status acceptLocalSources(const std::string& ifname);

}  // namespace svclb
