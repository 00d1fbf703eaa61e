#include "loader/dns_address.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "model/model.h"

namespace svclb {

namespace {

// One RTM_NEWADDR / RTM_DELADDR of addr/32 on lo, acknowledged.
Status changeAddress(uint16_t type, uint32_t addr) {
  const std::string what =
      fmt::format("{} the cluster DNS address {}/32 on lo",
                  type == RTM_NEWADDR ? "adding" : "removing", formatIPv4(addr));
  const unsigned lo = if_nametoindex("lo");
  if (lo == 0) return Error::fromErrno(errno, what);
  std::unique_ptr<mnl_socket, int (*)(mnl_socket*)> nl(
      mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC), mnl_socket_close);
  if (!nl) return Error::fromErrno(errno, what + ": netlink socket");
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) != 0)
    return Error::fromErrno(errno, what + ": netlink bind");
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nh = mnl_nlmsg_put_header(buf.data());
  nh->nlmsg_type = type;
  nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  if (type == RTM_NEWADDR) nh->nlmsg_flags |= NLM_F_CREATE | NLM_F_REPLACE;
  nh->nlmsg_seq = static_cast<uint32_t>(time(nullptr));
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = 32;
  ifa->ifa_scope = RT_SCOPE_HOST;
  ifa->ifa_index = lo;
  const uint32_t be = htonl(addr);
  mnl_attr_put_u32(nh, IFA_LOCAL, be);
  mnl_attr_put_u32(nh, IFA_ADDRESS, be);
  mnl_attr_put_strz(nh, IFA_LABEL, std::string(kDnsAddressLabel).c_str());
  if (mnl_socket_sendto(nl.get(), nh, nh->nlmsg_len) < 0)
    return Error::fromErrno(errno, what + ": netlink send");
  const ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
  if (n < 0) return Error::fromErrno(errno, what + ": netlink receive");
  const uint32_t seq = nh->nlmsg_seq;
  if (mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, mnl_socket_get_portid(nl.get()), nullptr,
                 nullptr) < 0)
    return Error::fromErrno(errno, what);
  return {};
}

}  // namespace

std::vector<uint32_t> dnsAddresses() {
  std::vector<uint32_t> out;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return out;
  for (ifaddrs* i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_name) continue;
    if (kDnsAddressLabel != i->ifa_name) continue;
    out.push_back(ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr));
  }
  freeifaddrs(ifa);
  std::sort(out.begin(), out.end());
  return out;
}

Status acceptLocalSources(const std::string& ifname) {
  const std::string path = "/proc/sys/net/ipv4/conf/" + ifname + "/accept_local";
  FILE* f = fopen(path.c_str(), "w");
  if (!f) return Error::fromErrno(errno, "cannot set " + path);
  const bool ok = fputs("1", f) >= 0;
  if (fclose(f) != 0 || !ok) return Error::fromErrno(errno, "cannot set " + path);
  return {};
}

Status ensureDnsAddress(uint32_t addr) {
  bool have = false;
  for (uint32_t a : dnsAddresses()) {
    if (a == addr) {
      have = true;
      continue;
    }
    if (auto st = changeAddress(RTM_DELADDR, a); !st) return st;
  }
  if (addr != 0 && !have) return changeAddress(RTM_NEWADDR, addr);
  return {};
}

}  // namespace svclb
