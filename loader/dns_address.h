// The cluster DNS address on this node (svclbd --cluster-dns): a /32 on
// `lo` labelled "lo:svclb-dns", so that pods' queries to it are delivered
// to svclbd's DNS server (dns/server.h) by the node's own routing, with no
// Service frontend, DNAT or conntrack on the way. NodeLocal DNSCache puts
// the kube-dns address on a dummy link the same way; svclb uses lo because
// a kernel without the dummy driver (this project's CI) has lo everywhere.
// The address stays when svclbd stops (queries then get "port unreachable"
// at once, and a restart rebinds), and goes with --uninstall or
// --cluster-dns none.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace svclb {

inline constexpr std::string_view kDnsAddressLabel = "lo:svclb-dns";

// Makes `addr` (host order) the one address labelled kDnsAddressLabel on
// lo: adds it if missing, removes other addresses with that label (an
// earlier --cluster-dns). addr 0 = remove them all.
Status ensureDnsAddress(uint32_t addr);

// The IPv4 addresses (host order) currently labelled kDnsAddressLabel.
std::vector<uint32_t> dnsAddresses();

// net.ipv4.conf.IFNAME.accept_local = 1 on a pod interface: a Service that
// holds the cluster DNS address (kube-dns) has its replies reverse-NATed in
// tc ingress to that address, local to the node; without accept_local the
// kernel drops them as martians (with rp_filter off; with strict rp_filter
// on the interface they are dropped anyway: docs/architecture.md).
Status acceptLocalSources(const std::string& ifname);

}  // namespace svclb
