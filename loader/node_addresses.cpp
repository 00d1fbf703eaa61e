#include "loader/node_addresses.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "loader/dns_address.h"
#include "model/model.h"

namespace svclb {

NodeAddresses nodeAddresses() {
  NodeAddresses out;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return out;
  // svclbd's IPv6 cluster DNS address (no label: marked by IFA_PROTO).
  const std::vector<Ip6> dns6 = dnsAddresses6();
  for (ifaddrs* i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (i->ifa_addr->sa_family == AF_INET6) {
      Ip6 a{};
      std::memcpy(a.data(), reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr.s6_addr,
                  a.size());
      const bool loopback = a == Ip6{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
      const bool linkLocal = a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
      const bool dns = std::find(dns6.begin(), dns6.end(), a) != dns6.end();
      if (a != Ip6{} && !loopback && !linkLocal && a[0] != 0xff && !dns) out.v6.push_back(a);
      continue;
    }
    if (i->ifa_addr->sa_family != AF_INET) continue;
    // svclbd's cluster DNS address is not a node address (no NodePorts there).
    if (i->ifa_name && kDnsAddressLabel == i->ifa_name) continue;
    const uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    if ((a >> 24) == 127 || a == 0) continue;
    out.v4.push_back(a);
  }
  freeifaddrs(ifa);
  std::sort(out.v4.begin(), out.v4.end());
  out.v4.erase(std::unique(out.v4.begin(), out.v4.end()), out.v4.end());
  std::sort(out.v6.begin(), out.v6.end());
  out.v6.erase(std::unique(out.v6.begin(), out.v6.end()), out.v6.end());
  return out;
}

std::string formatAddressList(const NodeAddresses& addrs) {
  if (addrs.v4.empty() && addrs.v6.empty()) return "none";
  std::vector<std::string> shown;
  for (uint32_t a : addrs.v4) shown.push_back(formatIPv4(a));
  for (const Ip6& a : addrs.v6) shown.push_back(formatIPv6(a));
  return fmt::format("{}", fmt::join(shown, ", "));
}

}  // namespace svclb
