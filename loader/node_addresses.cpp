#include "loader/node_addresses.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>

#include "loader/dns_address.h"
#include "model/model.h"

namespace svclb {

std::vector<uint32_t> nodeAddresses() {
  std::vector<uint32_t> out;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return out;
  for (ifaddrs* i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    // svclbd's cluster DNS address is not a node address (no NodePorts there).
    if (i->ifa_name && kDnsAddressLabel == i->ifa_name) continue;
    const uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    if ((a >> 24) == 127 || a == 0) continue;
    out.push_back(a);
  }
  freeifaddrs(ifa);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string formatAddressList(const std::vector<uint32_t>& hostOrder) {
  if (hostOrder.empty()) return "none";
  std::vector<std::string> shown;
  shown.reserve(hostOrder.size());
  for (uint32_t a : hostOrder) shown.push_back(formatIPv4(a));
  return fmt::format("{}", fmt::join(shown, ", "));
}

}  // namespace svclb
