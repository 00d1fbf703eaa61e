// Gratuitous ARP on the wire: sent out of one end of a veth pair, captured
// on the other with an AF_PACKET socket, all inside a namespace of the test's
// own (the veths die with it).
#include "loader/garp.h"

#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <vector>

#include "tests/net/netns_util.h"

namespace svclb {
namespace {

using namespace nettest;
using namespace std::chrono_literals;
using Mac = std::array<uint8_t, 6>;

constexpr uint32_t kVip = 0xC0A80A2A;  // 192.168.10.42
const Mac kSendMac = {0x02, 0x5c, 0x1b, 0x00, 0x00, 0x01};
const Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) { return static_cast<uint32_t>(be16(p)) << 16 | be16(p + 2); }
Mac mac(const uint8_t* p) { return {p[0], p[1], p[2], p[3], p[4], p[5]}; }

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

// An AF_PACKET socket receiving every ARP frame arriving on `ifname`.
int arpCapture(const std::string& ifname) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP));
  if (fd < 0) return -1;
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ARP);
  sll.sll_ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Frames received within `timeout`, stopping after `want`.
std::vector<std::vector<uint8_t>> capture(int fd, size_t want, std::chrono::milliseconds timeout) {
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
    frames.push_back(std::move(buf));
  }
  return frames;
}

void expectGarp(const std::vector<uint8_t>& f, uint16_t op) {
  ASSERT_GE(f.size(), 42u);
  EXPECT_EQ(f.size(), kGarpFrameSize);  // padded to the Ethernet minimum
  EXPECT_EQ(mac(&f[0]), kBroadcast) << "Ethernet destination";
  EXPECT_EQ(mac(&f[6]), kSendMac) << "Ethernet source";
  EXPECT_EQ(be16(&f[12]), 0x0806) << "ethertype";
  const uint8_t* a = &f[14];
  EXPECT_EQ(be16(a + 0), 1) << "hardware type";
  EXPECT_EQ(be16(a + 2), 0x0800) << "protocol type";
  EXPECT_EQ(a[4], 6);
  EXPECT_EQ(a[5], 4);
  EXPECT_EQ(be16(a + 6), op) << "ARP operation";
  EXPECT_EQ(mac(a + 8), kSendMac) << "sender MAC";
  EXPECT_EQ(be32(a + 14), kVip) << "sender IP";
  EXPECT_EQ(mac(a + 18), kBroadcast) << "target MAC (MetalLB: ethernet.Broadcast)";
  EXPECT_EQ(be32(a + 24), kVip) << "target IP";
  for (size_t i = 42; i < f.size(); ++i) EXPECT_EQ(f[i], 0) << "padding byte " << i;
}

TEST(GratuitousArp, CapturedOnThePeerOfAVeth) {
  if (!haveProgram("ip")) GTEST_SKIP() << "iproute2 not installed";
  inFreshNetns([] {
    char macText[18];
    std::snprintf(macText, sizeof(macText), "%02x:%02x:%02x:%02x:%02x:%02x", kSendMac[0],
                  kSendMac[1], kSendMac[2], kSendMac[3], kSendMac[4], kSendMac[5]);
    ASSERT_EQ(run({"ip", "link", "add", "garp0", "address", macText, "type", "veth", "peer", "name",
                   "garp1"}),
              0);
    ASSERT_TRUE(setLinkUp("garp0"));
    ASSERT_TRUE(setLinkUp("garp1"));
    ASSERT_TRUE(waitRunning("garp0"));

    auto m = interfaceMac("garp0");
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(*m, kSendMac);
    auto idx = interfaceIndex("garp0");
    ASSERT_TRUE(idx.ok()) << idx.error().message;
    EXPECT_EQ(*idx, static_cast<int>(if_nametoindex("garp0")));

    int cap = arpCapture("garp1");
    ASSERT_GE(cap, 0) << std::strerror(errno);
    Status st = sendGratuitousArp("garp0", kVip);
    ASSERT_TRUE(st.ok()) << st.error().message;

    auto frames = capture(cap, 2, 2s);
    // Nothing else in this namespace speaks ARP: exactly MetalLB's pair.
    auto more = capture(cap, 1, 200ms);
    close(cap);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_TRUE(more.empty());
    expectGarp(frames[0], kArpOpRequest);
    expectGarp(frames[1], kArpOpReply);
  });
}

TEST(GratuitousArp, DownInterfaceIsAClearError) {
  if (!haveProgram("ip")) GTEST_SKIP() << "iproute2 not installed";
  inFreshNetns([] {
    ASSERT_EQ(run({"ip", "link", "add", "garp0", "type", "veth", "peer", "name", "garp1"}), 0);
    Status st = sendGratuitousArp("garp0", kVip);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ENETDOWN);
    EXPECT_NE(st.error().message.find("garp0"), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find("192.168.10.42"), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find("down"), std::string::npos) << st.error().message;
  });
}

TEST(GratuitousArp, UnknownInterfaceIsAClearError) {
  inFreshNetns([] {
    Status st = sendGratuitousArp("nosuch0", kVip);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ENODEV);
    EXPECT_NE(st.error().message.find("\"nosuch0\": no such interface"), std::string::npos)
        << st.error().message;
    EXPECT_NE(st.error().message.find("192.168.10.42"), std::string::npos) << st.error().message;

    auto m = interfaceMac("nosuch0");
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().code, ENODEV);
    EXPECT_NE(m.error().message.find("no such interface"), std::string::npos);
    auto i = interfaceIndex("nosuch0");
    ASSERT_FALSE(i.ok());
    EXPECT_EQ(i.error().code, ENODEV);

    auto bad = interfaceIndex(std::string(IFNAMSIZ, 'x'));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, EINVAL);
  });
}

TEST(GratuitousArp, LoopbackIsNotEthernet) {
  inFreshNetns([] {
    auto m = interfaceMac("lo");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("not Ethernet"), std::string::npos) << m.error().message;
    Status st = sendGratuitousArp("lo", kVip);
    EXPECT_FALSE(st.ok());
  });
}

TEST(GratuitousArp, FrameLayout) {
  auto f = gratuitousArpFrame(kSendMac, kVip, kArpOpReply);
  expectGarp(std::vector<uint8_t>(f.begin(), f.end()), kArpOpReply);
  EXPECT_EQ(f[14 + 14], 192);  // sender IP in network byte order on the wire
  EXPECT_EQ(f[14 + 17], 42);
}

}  // namespace
}  // namespace svclb
