// Unsolicited Neighbor Advertisements on the wire (loader/garp.h): sent out
// of one end of a veth pair, captured on the other with an AF_PACKET
// socket, and taken by the peer's own kernel (its neighbour entry for the
// address moves to our MAC), all inside a namespace of the test's own.
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "loader/garp.h"
#include "tests/net/netns_util.h"

namespace svclb {
namespace {

using namespace nettest;
using namespace std::chrono_literals;
using Mac = std::array<uint8_t, 6>;
using Addr6 = std::array<uint8_t, 16>;

const Mac kSendMac = {0x02, 0x5c, 0x1b, 0x00, 0x00, 0x06};
const Mac kAllNodesMac = {0x33, 0x33, 0, 0, 0, 1};
const char* kVipText = "fd00:77::200";

Addr6 addr(const char* text) {
  Addr6 a{};
  EXPECT_EQ(inet_pton(AF_INET6, text, a.data()), 1) << text;
  return a;
}
uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
Mac mac(const uint8_t* p) { return {p[0], p[1], p[2], p[3], p[4], p[5]}; }
Addr6 addrAt(const uint8_t* p) {
  Addr6 a{};
  std::memcpy(a.data(), p, 16);
  return a;
}

// RFC 4443 2.3, computed here: 0 for a message whose checksum is right.
uint16_t icmp6Sum(const std::vector<uint8_t>& f) {
  const size_t len = static_cast<size_t>(be16(&f[14 + 4]));
  uint32_t sum = static_cast<uint32_t>(len) + 58;
  for (size_t i = 14 + 8; i < 14 + 40; i += 2) sum += be16(&f[i]);
  for (size_t i = 54; i < 54 + len; i += 2) sum += be16(&f[i]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

bool waitRunning(const std::string& ifname) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  for (int i = 0; i < 100; ++i) {
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_RUNNING)) {
      close(fd);
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  close(fd);
  return false;
}

// An AF_PACKET socket receiving every IPv6 frame arriving on `ifname`.
int ipv6Capture(const std::string& ifname) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_IPV6));
  if (fd < 0) return -1;
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_IPV6);
  sll.sll_ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool isNa(const std::vector<uint8_t>& f) {
  return f.size() >= 14 + 40 + 24 && be16(&f[12]) == 0x86dd && f[14 + 6] == 58 && f[54] == 136;
}

// The Neighbor Advertisements received within `timeout` (the kernel's own
// IPv6 chatter on the veth, MLD reports, DAD and router solicitations, is
// skipped), stopping after `want`.
std::vector<std::vector<uint8_t>> captureNas(int fd, size_t want,
                                             std::chrono::milliseconds timeout) {
  std::vector<std::vector<uint8_t>> frames;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (frames.size() < want) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    std::vector<uint8_t> buf(2048);
    sockaddr_ll from{};
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n <= 0) break;
    if (from.sll_pkttype == PACKET_OUTGOING) continue;
    buf.resize(static_cast<size_t>(n));
    if (isNa(buf)) frames.push_back(std::move(buf));
  }
  return frames;
}

void expectUnsolicitedNa(const std::vector<uint8_t>& f, const Addr6& target) {
  ASSERT_EQ(f.size(), kUnsolicitedNaFrameSize);
  EXPECT_EQ(mac(&f[0]), kAllNodesMac) << "Ethernet destination: all-nodes";
  EXPECT_EQ(mac(&f[6]), kSendMac) << "Ethernet source";
  EXPECT_EQ(be16(&f[12]), 0x86dd) << "ethertype";
  const uint8_t* ip = &f[14];
  EXPECT_EQ(ip[0], 0x60) << "version 6, traffic class 0";
  EXPECT_EQ(ip[1], 0);
  EXPECT_EQ(be16(ip + 2), 0) << "flow label";
  EXPECT_EQ(be16(ip + 4), 32) << "payload length";
  EXPECT_EQ(ip[6], 58) << "next header ICMPv6";
  EXPECT_EQ(ip[7], 255) << "hop limit";
  EXPECT_EQ(addrAt(ip + 8), target) << "source: the announced address";
  EXPECT_EQ(addrAt(ip + 24), addr("ff02::1")) << "destination: all-nodes";
  const uint8_t* na = ip + 40;
  EXPECT_EQ(na[0], 136) << "type";
  EXPECT_EQ(na[1], 0) << "code";
  EXPECT_EQ(na[4], 0x20) << "flags: Override only (Router, Solicited clear)";
  EXPECT_EQ(na[5] | na[6] | na[7], 0) << "reserved";
  EXPECT_EQ(addrAt(na + 8), target) << "target";
  EXPECT_EQ(na[24], 2) << "option: Target Link-Layer Address";
  EXPECT_EQ(na[25], 1) << "option length";
  EXPECT_EQ(mac(na + 26), kSendMac) << "target link-layer address";
  EXPECT_EQ(icmp6Sum(f), 0) << "ICMPv6 checksum";
}

std::string macText(const Mac& m) {
  char t[18];
  std::snprintf(t, sizeof(t), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return t;
}

void makeVeths() {
  ASSERT_EQ(run({"ip", "link", "add", "na0", "address", macText(kSendMac), "type", "veth", "peer",
                 "name", "na1"}),
            0);
  ASSERT_TRUE(setLinkUp("na0"));
  ASSERT_TRUE(setLinkUp("na1"));
  ASSERT_TRUE(waitRunning("na0"));
}

TEST(UnsolicitedNa, FrameLayout) {
  const Addr6 vip = addr(kVipText);
  auto f = unsolicitedNaFrame(kSendMac, vip);
  expectUnsolicitedNa(std::vector<uint8_t>(f.begin(), f.end()), vip);
}

TEST(UnsolicitedNa, CapturedOnThePeerOfAVeth) {
  if (!haveProgram("ip")) GTEST_SKIP() << "iproute2 not installed";
  inFreshNetns([] {
    makeVeths();
    if (HasFatalFailure()) return;
    int cap = ipv6Capture("na1");
    ASSERT_GE(cap, 0) << std::strerror(errno);
    const Addr6 vip = addr(kVipText);
    Status st = sendUnsolicitedNa("na0", vip);
    ASSERT_TRUE(st.ok()) << st.error().message;
    auto frames = captureNas(cap, 1, 2s);
    // Nothing else here sends Neighbor Advertisements: exactly the one.
    auto more = captureNas(cap, 1, 200ms);
    close(cap);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_TRUE(more.empty());
    expectUnsolicitedNa(frames[0], vip);
  });
}

// The receiver's kernel validates the NA (hop limit, checksum, RFC 4861
// 7.1.2) and, Override being set, replaces the MAC it had for the address.
TEST(UnsolicitedNa, PeerKernelTakesTheNewMac) {
  if (!haveProgram("ip")) GTEST_SKIP() << "iproute2 not installed";
  inFreshNetns([] {
    makeVeths();
    if (HasFatalFailure()) return;
    ASSERT_EQ(run({"ip", "-6", "neigh", "replace", kVipText, "lladdr", "02:00:00:00:00:99", "dev",
                   "na1", "nud", "stale"}),
              0);
    std::string out;
    bool updated = false;
    // Bounded: 100 polls 20 ms apart. The NA goes again every tenth poll:
    // on a loaded machine the first can reach the peer before its IPv6 is
    // up (seen once while another build ran beside the tests).
    for (int i = 0; i < 100 && !updated; ++i) {
      if (i % 10 == 0) {
        Status st = sendUnsolicitedNa("na0", addr(kVipText));
        ASSERT_TRUE(st.ok()) << st.error().message;
      }
      out.clear();
      ASSERT_EQ(run({"ip", "-6", "neigh", "show", kVipText, "dev", "na1"}, &out), 0);
      updated = out.find(macText(kSendMac)) != std::string::npos;
      if (!updated) std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(updated) << "neighbour entry on the peer: " << out;
  });
}

TEST(UnsolicitedNa, BadInputIsAClearError) {
  inFreshNetns([] {
    Status st = sendUnsolicitedNa("nosuch0", addr(kVipText));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ENODEV);
    EXPECT_NE(st.error().message.find("\"nosuch0\": no such interface"), std::string::npos)
        << st.error().message;
    EXPECT_NE(st.error().message.find(kVipText), std::string::npos) << st.error().message;

    st = sendUnsolicitedNa("lo", addr("ff02::1"));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, EINVAL);
    EXPECT_NE(st.error().message.find("multicast"), std::string::npos) << st.error().message;
    st = sendUnsolicitedNa("lo", addr("::"));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, EINVAL);
    EXPECT_NE(st.error().message.find("unspecified"), std::string::npos) << st.error().message;

    st = sendUnsolicitedNa("lo", addr(kVipText));
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("not Ethernet"), std::string::npos) << st.error().message;
  });
}

TEST(UnsolicitedNa, DownInterfaceIsAClearError) {
  if (!haveProgram("ip")) GTEST_SKIP() << "iproute2 not installed";
  inFreshNetns([] {
    ASSERT_EQ(run({"ip", "link", "add", "na0", "type", "veth", "peer", "name", "na1"}), 0);
    Status st = sendUnsolicitedNa("na0", addr(kVipText));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ENETDOWN);
    EXPECT_NE(st.error().message.find("na0"), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find("down"), std::string::npos) << st.error().message;
  });
}

}  // namespace
}  // namespace svclb
