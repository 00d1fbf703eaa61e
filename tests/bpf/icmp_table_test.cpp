// ICMP errors for translated flows (bpf/lib/icmp.h), through the tc and the
// XDP program. A flow is set up with real packets (DNAT, then a reply), an
// ICMP error quoting one of its packets as the far side saw it is run, and
// the quote must come out byte for byte as the packet the ICMP's receiver
// sent (addresses, ports, inner IP and L4 checksums restored), with the
// outer IP and ICMP checksums verifying. Errors for untracked flows and
// echo requests pass untouched.
#include <tuple>

#include "tests/bpf/bpf_fixture.h"

namespace svclb::bpftest {
namespace {

using testlib::ip4;

constexpr size_t kEth = 14;

// Ethernet (copied from `like`) + IPv4 (proto ICMP) + ICMP type/code +
// `quote` (an IPv4 packet, truncated to `quoteLen` bytes).
Bytes icmpError(const Bytes& like, uint32_t src, uint32_t dst, uint8_t type, uint8_t code,
                const Bytes& quote, size_t quoteLen, uint16_t mtu = 0) {
  Bytes f(like.begin(), like.begin() + kEth);
  const size_t icmpLen = 8 + quoteLen, totLen = 20 + icmpLen;
  Bytes ip = {
      0x45, 0, static_cast<uint8_t>(totLen >> 8), static_cast<uint8_t>(totLen), 0, 1, 0, 0, 64, 1,
      0,    0};
  for (uint32_t a : {src, dst})
    for (int s = 24; s >= 0; s -= 8) ip.push_back(static_cast<uint8_t>(a >> s));
  const uint16_t ipc = testlib::inetChecksum(ip.data(), ip.size());
  ip[10] = static_cast<uint8_t>(ipc >> 8);
  ip[11] = static_cast<uint8_t>(ipc);
  Bytes icmp = {type, code, 0, 0, 0, 0, static_cast<uint8_t>(mtu >> 8), static_cast<uint8_t>(mtu)};
  icmp.insert(icmp.end(), quote.begin(), quote.begin() + quoteLen);
  const uint16_t ic = testlib::inetChecksum(icmp.data(), icmp.size());
  icmp[2] = static_cast<uint8_t>(ic >> 8);
  icmp[3] = static_cast<uint8_t>(ic);
  f.insert(f.end(), ip.begin(), ip.end());
  f.insert(f.end(), icmp.begin(), icmp.end());
  return f;
}

Bytes l3(const Bytes& frame) { return Bytes(frame.begin() + kEth, frame.end()); }

uint32_t rd32(const Bytes& f, size_t off) {
  return uint32_t(f[off]) << 24 | uint32_t(f[off + 1]) << 16 | uint32_t(f[off + 2]) << 8 |
         f[off + 3];
}

// Outer IP header and the whole ICMP message verify.
::testing::AssertionResult outerChecksumsOk(const Bytes& f) {
  if (!testlib::ipv4ChecksumOk(f)) return ::testing::AssertionFailure() << "outer IP checksum";
  if (testlib::inetChecksum(f.data() + kEth + 20, f.size() - kEth - 20) != 0)
    return ::testing::AssertionFailure() << "ICMP checksum";
  return ::testing::AssertionSuccess();
}

struct IcmpCase {
  std::string description;
  uint8_t proto;
  bool tcpFullHeader;  // quote the whole TCP header (its checksum too)
  bool udpCsumZero;
  uint8_t type, code;
};
void PrintTo(const IcmpCase& c, std::ostream* os) { *os << c.description; }

std::vector<IcmpCase> cases() {
  return {
      {"UDP port unreachable", kUdp, false, false, 3, 3},
      {"UDP with checksum 0", kUdp, false, true, 3, 3},
      {"TCP frag needed, 8 bytes quoted", kTcp, false, false, 3, 4},
      {"TCP frag needed, whole header quoted", kTcp, true, false, 3, 4},
      {"UDP time exceeded", kUdp, false, false, 11, 0},
  };
}

class IcmpTest : public BpfTestP<std::tuple<Prog, IcmpCase>> {
 protected:
  Bytes clientPacket(const IcmpCase& c) const {
    if (c.proto == kUdp) {
      auto b = PacketBuilder::udp(kClient, 40001, kVip, 53).payload(20);
      if (c.udpCsumZero) b.udpChecksumZero();
      return b.build();
    }
    return PacketBuilder::tcp(kClient, 40000, kVip, 80).tcpSeq(1000).build();
  }
  Bytes replyFrom(const IcmpCase& c, uint32_t be, uint16_t bport) const {
    const std::string b = testlib::ip4str(be);
    if (c.proto == kUdp) {
      auto r = PacketBuilder::udp(b, bport, kClient, 40001).payload(20);
      if (c.udpCsumZero) r.udpChecksumZero();
      return r.build();
    }
    return PacketBuilder::tcp(b, bport, kClient, 40000, testlib::kTcpSyn | testlib::kTcpAck)
        .tcpSeq(5000)
        .tcpAckSeq(1001)
        .build();
  }
  size_t quoteLen(const IcmpCase& c, const Bytes& pkt) const {
    if (c.proto == kTcp && c.tcpFullHeader) return 40;
    return c.proto == kUdp ? pkt.size() - kEth : 28;
  }
};

// Backend side: the backend (or a router on its path) answers the DNATed
// packet with an error; the client must see it come from the VIP, quoting
// its own packet.
TEST_P(IcmpTest, ErrorFromBackendSideIsReverseTranslated) {
  const auto& [prog, c] = GetParam();
  ASSERT_TRUE(sync(standardFrontends()));
  const Bytes orig = clientPacket(c);
  RunResult r = run(prog, orig);
  ASSERT_EQ(r.err, 0);
  ASSERT_EQ(r.retval, retvalOf(prog, Verdict::Pass));
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  ASSERT_NE(t->daddr, ip4(kVip)) << "not DNATed";
  const size_t ctBefore = ctEntries();

  const Bytes dnated = l3(r.out);
  const Bytes err =
      icmpError(r.out, t->daddr, ip4(kClient), c.type, c.code, dnated, quoteLen(c, r.out), 1400);
  RunResult e = run(prog, err);
  ASSERT_EQ(e.err, 0);
  EXPECT_EQ(e.retval, retvalOf(prog, Verdict::Pass));
  ASSERT_EQ(e.out.size(), err.size());
  EXPECT_TRUE(outerChecksumsOk(e.out));
  EXPECT_EQ(rd32(e.out, kEth + 12), ip4(kVip)) << "outer source";
  EXPECT_EQ(rd32(e.out, kEth + 16), ip4(kClient)) << "outer destination";
  const Bytes want = l3(orig);
  const Bytes quote(e.out.begin() + kEth + 28, e.out.end());
  EXPECT_EQ(quote, Bytes(want.begin(), want.begin() + quote.size()))
      << "the quote is the client's own packet";
  EXPECT_EQ(ctEntries(), ctBefore) << "an ICMP error creates no CT state";
}

// Client side: the client (or a router on its path) answers the
// reverse-translated reply with an error toward the VIP; the backend must
// receive it quoting the reply as it sent it.
TEST_P(IcmpTest, ErrorFromClientSideIsTranslatedToBackend) {
  const auto& [prog, c] = GetParam();
  ASSERT_TRUE(sync(standardFrontends()));
  RunResult r = run(prog, clientPacket(c));
  ASSERT_EQ(r.err, 0);
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  const Bytes reply = replyFrom(c, t->daddr, t->dport);
  RunResult rr = run(prog, reply);
  ASSERT_EQ(rr.err, 0);
  ASSERT_EQ(rr.retval, retvalOf(prog, Verdict::Pass));
  auto rt = testlib::fiveTuple(rr.out);
  ASSERT_TRUE(rt);
  ASSERT_EQ(rt->saddr, ip4(kVip)) << "reply not reverse-translated";

  const Bytes err = icmpError(rr.out, ip4(kClient), ip4(kVip), c.type, c.code, l3(rr.out),
                              quoteLen(c, rr.out), 1400);
  RunResult e = run(prog, err);
  ASSERT_EQ(e.err, 0);
  EXPECT_EQ(e.retval, retvalOf(prog, Verdict::Pass));
  ASSERT_EQ(e.out.size(), err.size());
  EXPECT_TRUE(outerChecksumsOk(e.out));
  EXPECT_EQ(rd32(e.out, kEth + 12), ip4(kClient)) << "outer source";
  EXPECT_EQ(rd32(e.out, kEth + 16), t->daddr) << "outer destination: the backend";
  const Bytes want = l3(reply);
  const Bytes quote(e.out.begin() + kEth + 28, e.out.end());
  EXPECT_EQ(quote, Bytes(want.begin(), want.begin() + quote.size()))
      << "the quote is the backend's own reply";
}

// An error quoting a flow svclb does not track passes untouched.
TEST_P(IcmpTest, ErrorForUntrackedFlowPassesUntouched) {
  const auto& [prog, c] = GetParam();
  ASSERT_TRUE(sync(standardFrontends()));
  const Bytes pkt =
      c.proto == kUdp ? PacketBuilder::udp(kClient, 40001, "10.244.1.11", 5353).payload(20).build()
                      : PacketBuilder::tcp(kClient, 40000, "10.244.1.11", 8080).build();
  const Bytes err = icmpError(pkt, ip4("10.244.1.11"), ip4(kClient), c.type, c.code, l3(pkt),
                              quoteLen(c, pkt), 1400);
  RunResult e = run(prog, err);
  ASSERT_EQ(e.err, 0);
  EXPECT_EQ(e.retval, retvalOf(prog, Verdict::Untouched));
  EXPECT_EQ(e.out, err);
  EXPECT_EQ(ctEntries(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Table, IcmpTest,
                         ::testing::Combine(::testing::Values(Prog::Tc, Prog::Xdp),
                                            ::testing::ValuesIn(cases())),
                         [](const auto& info) {
                           return std::string(progName(std::get<0>(info.param))) + "_" +
                                  sanitize(std::get<1>(info.param).description);
                         });

// An echo request to the VIP of a live flow is not an error: untouched.
TEST_F(BpfTest, IcmpEchoToVipPassesUntouched) {
  ASSERT_TRUE(sync(standardFrontends()));
  for (Prog prog : {Prog::Tc, Prog::Xdp}) {
    RunResult r = run(prog, PacketBuilder::udp(kClient, 40001, kVip, 53).payload(4).build());
    ASSERT_EQ(r.err, 0);
    const Bytes echo = PacketBuilder::icmpEcho(kClient, kVip).build();
    RunResult e = run(prog, echo);
    ASSERT_EQ(e.err, 0);
    EXPECT_EQ(e.retval, retvalOf(prog, Verdict::Untouched)) << progName(prog);
    EXPECT_EQ(e.out, echo) << progName(prog);
  }
}

}  // namespace
}  // namespace svclb::bpftest
