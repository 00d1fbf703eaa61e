#include "loader/garp.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "model/model.h"

namespace svclb {

namespace {

Status checkName(const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    return Error{EINVAL, fmt::format("interface \"{}\": not a valid interface name", ifname)};
  return {};
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

}  // namespace

Result<int> interfaceIndex(const std::string& ifname) {
  if (auto st = checkName(ifname); !st) return st.error();
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) {
    int err = errno == 0 ? ENODEV : errno;
    if (err == ENXIO || err == ENODEV)
      return Error{ENODEV, fmt::format("interface \"{}\": no such interface", ifname)};
    return Error::fromErrno(err, fmt::format("interface \"{}\"", ifname));
  }
  return static_cast<int>(idx);
}

Result<std::array<uint8_t, 6>> interfaceMac(const std::string& ifname) {
  if (auto st = checkName(ifname); !st) return st.error();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::fromErrno(errno, "socket for SIOCGIFHWADDR");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname.c_str(), ifname.size());
  int rc = ioctl(fd, SIOCGIFHWADDR, &ifr);
  int err = errno;
  close(fd);
  if (rc != 0) {
    if (err == ENODEV)
      return Error{ENODEV, fmt::format("interface \"{}\": no such interface", ifname)};
    return Error::fromErrno(err, fmt::format("interface \"{}\": reading its MAC", ifname));
  }
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
    return Error{EPROTONOSUPPORT,
                 fmt::format("interface \"{}\" is not Ethernet (ARP hardware type {}); "
                             "announcing addresses (gratuitous ARP, unsolicited neighbor "
                             "advertisements) needs an Ethernet interface",
                             ifname, ifr.ifr_hwaddr.sa_family)};
  std::array<uint8_t, 6> mac{};
  std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, mac.size());
  return mac;
}

std::array<uint8_t, kGarpFrameSize> gratuitousArpFrame(const std::array<uint8_t, 6>& mac,
                                                       uint32_t ip, uint16_t op) {
  std::array<uint8_t, kGarpFrameSize> f{};  // the tail stays zero: padding
  uint8_t* p = f.data();
  std::memset(p, 0xff, 6);  // Ethernet destination: broadcast
  std::memcpy(p + 6, mac.data(), 6);
  put16(p + 12, ETHERTYPE_ARP);
  uint8_t* a = p + 14;
  put16(a + 0, ARPHRD_ETHER);  // hardware type 1
  put16(a + 2, ETHERTYPE_IP);  // protocol type 0x0800
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, op);
  std::memcpy(a + 8, mac.data(), 6);  // sender MAC
  put32(a + 14, ip);                  // sender IP
  std::memset(a + 18, 0xff, 6);       // target MAC: broadcast, as MetalLB
  put32(a + 24, ip);                  // target IP = sender IP
  return f;
}

Status sendGratuitousArp(const std::string& ifname, uint32_t ip) {
  auto what = [&] {
    return fmt::format("gratuitous ARP for {} on \"{}\"", formatIPv4(ip), ifname);
  };
  auto idx = interfaceIndex(ifname);
  if (!idx) return Error{idx.error().code, what() + ": " + idx.error().message};
  auto mac = interfaceMac(ifname);
  if (!mac) return Error{mac.error().code, what() + ": " + mac.error().message};

  // Protocol 0: this socket only sends, so it never queues received frames.
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    if (err == EPERM || err == EACCES)
      return Error{err, what() + ": opening an AF_PACKET socket needs CAP_NET_RAW"};
    return Error::fromErrno(err, what() + ": AF_PACKET socket");
  }
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = *idx;
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);

  for (uint16_t op : {kArpOpRequest, kArpOpReply}) {
    auto frame = gratuitousArpFrame(*mac, ip, op);
    ssize_t n =
        sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    if (n != static_cast<ssize_t>(frame.size())) {
      int err = n < 0 ? errno : EMSGSIZE;
      close(fd);
      const char* opName = op == kArpOpRequest ? "request" : "reply";
      if (err == ENETDOWN)
        return Error{err,
                     fmt::format("{}: interface is down (sending the ARP {})", what(), opName)};
      return Error::fromErrno(err, fmt::format("{}: sending the ARP {}", what(), opName));
    }
  }
  close(fd);
  return {};
}

std::array<uint8_t, kUnsolicitedNaFrameSize> unsolicitedNaFrame(
    const std::array<uint8_t, 6>& mac, const std::array<uint8_t, 16>& addr) {
  std::array<uint8_t, kUnsolicitedNaFrameSize> f{};
  uint8_t* p = f.data();
  const uint8_t allNodesMac[6] = {0x33, 0x33, 0, 0, 0, 1};  // RFC 2464 7
  std::memcpy(p, allNodesMac, 6);
  std::memcpy(p + 6, mac.data(), 6);
  put16(p + 12, ETHERTYPE_IPV6);
  uint8_t* ip = p + 14;
  ip[0] = 0x60;  // version 6, traffic class 0, flow label 0
  put16(ip + 4, 32);
  ip[6] = IPPROTO_ICMPV6;
  ip[7] = 255;
  std::memcpy(ip + 8, addr.data(), 16);
  ip[24] = 0xff;  // ff02::1
  ip[25] = 0x02;
  ip[39] = 0x01;
  uint8_t* na = ip + 40;
  na[0] = ND_NEIGHBOR_ADVERT;
  na[4] = 0x20;  // Override; Router and Solicited clear
  std::memcpy(na + 8, addr.data(), 16);
  na[24] = ND_OPT_TARGET_LINKADDR;
  na[25] = 1;  // 8 bytes
  std::memcpy(na + 26, mac.data(), 6);
  // RFC 4443 2.3: over the pseudo-header (source, destination, length 32,
  // next header 58) and the message.
  uint32_t sum = 32 + IPPROTO_ICMPV6;
  for (size_t i = 8; i < 40; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
  for (size_t i = 0; i < 32; i += 2) sum += static_cast<uint32_t>(na[i] << 8 | na[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(na + 2, static_cast<uint16_t>(~sum));
  return f;
}

Status sendUnsolicitedNa(const std::string& ifname, const std::array<uint8_t, 16>& addr) {
  auto what = [&] {
    return fmt::format("unsolicited neighbor advertisement for {} on \"{}\"", formatIPv6(addr),
                       ifname);
  };
  if (addr[0] == 0xff) return Error{EINVAL, what() + ": a multicast address cannot be announced"};
  if (std::all_of(addr.begin(), addr.end(), [](uint8_t b) { return b == 0; }))
    return Error{EINVAL, what() + ": the unspecified address :: cannot be announced"};
  auto idx = interfaceIndex(ifname);
  if (!idx) return Error{idx.error().code, what() + ": " + idx.error().message};
  auto mac = interfaceMac(ifname);
  if (!mac) return Error{mac.error().code, what() + ": " + mac.error().message};

  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);  // sends only, as above
  if (fd < 0) {
    int err = errno;
    if (err == EPERM || err == EACCES)
      return Error{err, what() + ": opening an AF_PACKET socket needs CAP_NET_RAW"};
    return Error::fromErrno(err, what() + ": AF_PACKET socket");
  }
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_IPV6);
  to.sll_ifindex = *idx;
  to.sll_halen = 6;
  const uint8_t allNodesMac[6] = {0x33, 0x33, 0, 0, 0, 1};
  std::memcpy(to.sll_addr, allNodesMac, 6);
  auto frame = unsolicitedNaFrame(*mac, addr);
  ssize_t n =
      sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  int err = n < 0 ? errno : EMSGSIZE;
  close(fd);
  if (n == static_cast<ssize_t>(frame.size())) return {};
  if (err == ENETDOWN) return Error{err, what() + ": interface is down"};
  return Error::fromErrno(err, what() + ": sending it");
}

}  // namespace svclb
