// The node's own IPv4 addresses: the NodePort frontends are planned against
// them (loader/external.h), and svclbd logs them when they change.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace svclb {

// The node's IPv4 addresses (host order, sorted, unique): every address of
// this network namespace outside 127.0.0.0/8, whatever the interface (a /32
// on lo is a node address too, as for kube-proxy's NodePorts), except the
// cluster DNS address (loader/dns_address.h).
std::vector<uint32_t> nodeAddresses();

// "10.0.0.1, 192.168.1.5", or "none" for an empty list.
std::string formatAddressList(const std::vector<uint32_t>& hostOrder);

}  // namespace svclb
