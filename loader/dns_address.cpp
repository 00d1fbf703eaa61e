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
#include <cstring>
#include <memory>
#include <string>

#include "model/model.h"

namespace svclb {

namespace {

using NlSocket = std::unique_ptr<mnl_socket, int (*)(mnl_socket*)>;

Result<NlSocket> openRoute(const std::string& what) {
  NlSocket nl(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC), mnl_socket_close);
  if (!nl) return Error::fromErrno(errno, what + ": netlink socket");
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) != 0)
    return Error::fromErrno(errno, what + ": netlink bind");
  return nl;
}

// One RTM_NEWADDR / RTM_DELADDR of an address (4 or 16 bytes, network
// order) as a host route on lo, acknowledged. IPv4: /32 labelled
// kDnsAddressLabel; IPv6 (no labels): /128, no DAD, IFA_PROTO kDnsAddressProto.
Status changeAddress(uint16_t type, const void* addr, size_t len) {
  const bool v6 = len == 16;
  const std::string text = v6 ? formatIPv6(*static_cast<const Ip6*>(addr))
                              : formatIPv4(ntohl(*static_cast<const uint32_t*>(addr)));
  const std::string what =
      fmt::format("{} the cluster DNS address {}/{} on lo",
                  type == RTM_NEWADDR ? "adding" : "removing", text, v6 ? 128 : 32);
  const unsigned lo = if_nametoindex("lo");
  if (lo == 0) return Error::fromErrno(errno, what);
  auto nl = openRoute(what);
  if (!nl) return nl.error();
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nh = mnl_nlmsg_put_header(buf.data());
  nh->nlmsg_type = type;
  nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  if (type == RTM_NEWADDR) nh->nlmsg_flags |= NLM_F_CREATE | NLM_F_REPLACE;
  nh->nlmsg_seq = static_cast<uint32_t>(time(nullptr));
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nh, sizeof(ifaddrmsg)));
  ifa->ifa_family = v6 ? AF_INET6 : AF_INET;
  ifa->ifa_prefixlen = v6 ? 128 : 32;
  ifa->ifa_scope = RT_SCOPE_HOST;
  ifa->ifa_index = lo;
  mnl_attr_put(nh, IFA_LOCAL, len, addr);
  mnl_attr_put(nh, IFA_ADDRESS, len, addr);
  if (v6) {
    mnl_attr_put_u32(nh, IFA_FLAGS, IFA_F_NODAD);
    mnl_attr_put_u8(nh, IFA_PROTO, kDnsAddressProto);
  } else {
    mnl_attr_put_strz(nh, IFA_LABEL, std::string(kDnsAddressLabel).c_str());
  }
  if (mnl_socket_sendto(nl->get(), nh, nh->nlmsg_len) < 0)
    return Error::fromErrno(errno, what + ": netlink send");
  const ssize_t n = mnl_socket_recvfrom(nl->get(), buf.data(), buf.size());
  if (n < 0) return Error::fromErrno(errno, what + ": netlink receive");
  const uint32_t seq = nh->nlmsg_seq;
  if (mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, mnl_socket_get_portid(nl->get()), nullptr,
                 nullptr) < 0)
    return Error::fromErrno(errno, what);
  return {};
}

struct Dump6 {
  unsigned lo = 0;
  std::vector<Ip6> out;
};

int onAddress6(const nlmsghdr* nh, void* data) {
  auto* d = static_cast<Dump6*>(data);
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nh));
  if (ifa->ifa_family != AF_INET6 || ifa->ifa_index != d->lo) return MNL_CB_OK;
  const nlattr* local = nullptr;
  bool ours = false;
  const auto* base = static_cast<const char*>(mnl_nlmsg_get_payload(nh));
  const auto* a = reinterpret_cast<const nlattr*>(base + MNL_ALIGN(sizeof(*ifa)));
  const auto* end = reinterpret_cast<const char*>(nh) + nh->nlmsg_len;
  for (; mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char*>(a)));
       a = mnl_attr_next(a)) {
    const uint16_t t = mnl_attr_get_type(a);
    if (t == IFA_ADDRESS && mnl_attr_get_payload_len(a) == 16) local = a;
    if (t == IFA_PROTO && mnl_attr_get_payload_len(a) == 1)
      ours = mnl_attr_get_u8(a) == kDnsAddressProto;
  }
  if (ours && local) {
    Ip6 v{};
    std::memcpy(v.data(), mnl_attr_get_payload(local), 16);
    d->out.push_back(v);
  }
  return MNL_CB_OK;
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

std::vector<Ip6> dnsAddresses6() {
  Dump6 d;
  d.lo = if_nametoindex("lo");
  auto nl = openRoute("listing lo's IPv6 addresses");
  if (!nl || d.lo == 0) return {};
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nh = mnl_nlmsg_put_header(buf.data());
  nh->nlmsg_type = RTM_GETADDR;
  nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nh->nlmsg_seq = static_cast<uint32_t>(time(nullptr));
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET6;
  if (mnl_socket_sendto(nl->get(), nh, nh->nlmsg_len) < 0) return {};
  const uint32_t seq = nh->nlmsg_seq, port = mnl_socket_get_portid(nl->get());
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl->get(), buf.data(), buf.size());
    if (n <= 0) break;
    const int rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, port, onAddress6, &d);
    if (rc <= MNL_CB_STOP) break;
  }
  std::sort(d.out.begin(), d.out.end());
  return d.out;
}

Status ensureDnsAddress(uint32_t addr, const Ip6& addr6) {
  bool have = false;
  for (uint32_t a : dnsAddresses()) {
    if (a == addr) {
      have = true;
      continue;
    }
    const uint32_t be = htonl(a);
    if (auto st = changeAddress(RTM_DELADDR, &be, 4); !st) return st;
  }
  if (addr != 0 && !have) {
    const uint32_t be = htonl(addr);
    if (auto st = changeAddress(RTM_NEWADDR, &be, 4); !st) return st;
  }
  bool have6 = false;
  for (const Ip6& a : dnsAddresses6()) {
    if (a == addr6) {
      have6 = true;
      continue;
    }
    if (auto st = changeAddress(RTM_DELADDR, a.data(), 16); !st) return st;
  }
  if (addr6 != Ip6{} && !have6) return changeAddress(RTM_NEWADDR, addr6.data(), 16);
  return {};
}

}  // namespace svclb
