// The node's own addresses: the NodePort frontends are planned against
// them (loader/external.h), and svclbd logs them when they change.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace svclb {

struct NodeAddresses {
  std::vector<uint32_t> v4;  // host order, sorted, unique
  std::vector<Ip6> v6;       // sorted, unique
  bool operator==(const NodeAddresses&) const = default;
};

// The node's addresses: every IPv4 address of this network namespace
// outside 127.0.0.0/8, whatever the interface (a /32 on lo is a node
// address too, as for kube-proxy's NodePorts), except the cluster DNS
// address (loader/dns_address.h); every IPv6 address outside ::1,
// link-local (fe80::/10) and multicast. IPv6 NodePorts are planned against
// the latter.
NodeAddresses nodeAddresses();

// "10.0.0.1, 192.168.1.5, fd00::1", or "none" for an empty list.
std::string formatAddressList(const NodeAddresses& addrs);

}  // namespace svclb
