// IP fragments through Services (issue 17; bpf/lib/frag.h), through both the
// pod-side tc program and XDP: a UDP datagram cut in fragments is translated
// alike in every fragment (the first one DNATed as any packet and its ports
// recorded, the later ones get the same addresses, IP header only, payload
// bytes untouched), replies too; a later fragment whose first was not seen is
// passed untouched and counted; a non-Service datagram's fragments pass
// untouched; a later fragment never creates CT state.
#include <arpa/inet.h>

#include <tuple>

#include "tests/bpf/bpf_fixture.h"

namespace svclb::bpftest {
namespace {

using testlib::be16;
using testlib::be32;
using testlib::ip4;
using testlib::ip4str;

constexpr size_t kL3 = 14;

// Cuts a 3,000-byte UDP datagram (3,008 with its header) into 3 fragments,
// as a 1500-byte MTU does (1480 bytes of IP payload each).
std::vector<Bytes> udpFragments(const std::string& src, uint16_t sport, const std::string& dst,
                                uint16_t dport, uint16_t ipId) {
  Bytes payload(3000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7 + 3);
  const Bytes full = PacketBuilder::udp(src, sport, dst, dport).ipId(ipId).payload(payload).build();
  auto frags = testlib::fragmentFrame(full, 1480);
  EXPECT_EQ(frags.size(), 3u);
  return frags;
}

// A later fragment's output: only the IP addresses (and IP checksum) may
// differ from the input; the checksum verifies; the rest is byte-identical.
::testing::AssertionResult onlyIpAddressesChanged(const Bytes& in, const Bytes& out) {
  if (in.size() != out.size()) return ::testing::AssertionFailure() << "length changed";
  if (!testlib::ipv4ChecksumOk(out)) return ::testing::AssertionFailure() << "IP checksum";
  for (size_t i = 0; i < in.size(); ++i) {
    const bool natField = (i >= kL3 + 10 && i < kL3 + 12) || (i >= kL3 + 12 && i < kL3 + 20);
    if (!natField && in[i] != out[i])
      return ::testing::AssertionFailure() << "byte " << i << " changed";
  }
  return ::testing::AssertionSuccess();
}

class Frag : public BpfTestP<Prog> {
 protected:
  void SetUp() override {
    BpfTestP<Prog>::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(sync(standardFrontends()));
  }
  Prog prog() const { return GetParam(); }
  uint64_t noFirst() { return sumCounts(dp().ctEvents().lookup(CT_EV_FRAG_NO_FIRST)); }
  // Runs every fragment; each must pass (tc OK / XDP_PASS).
  std::vector<Bytes> runAll(const std::vector<Bytes>& in) {
    std::vector<Bytes> out;
    for (size_t i = 0; i < in.size(); ++i) {
      RunResult r = run(prog(), in[i]);
      EXPECT_EQ(r.err, 0);
      EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Pass))
          << "fragment " << i << ": " << verdictName(prog(), r.retval);
      out.push_back(r.out);
    }
    return out;
  }
  static FrontendKey udpDns() { return {ip4(kVip), 53, kUdp}; }
};

TEST_P(Frag, RequestAndReplyFragmentsTranslatedAlike) {
  const auto in = udpFragments(kClient, 40000, kVip, 53, 0x4242);
  const auto out = runAll(in);
  ASSERT_EQ(out.size(), 3u);

  // The first fragment: DNAT as any packet.
  auto t = testlib::fiveTuple(out[0]);
  ASSERT_TRUE(t);
  const std::string be = ip4str(t->daddr);
  EXPECT_TRUE(be == "10.244.1.11" || be == "10.244.1.12") << be;
  EXPECT_EQ(t->dport, 5353);
  EXPECT_EQ(ip4str(t->saddr), kClient);
  EXPECT_TRUE(testlib::ipv4ChecksumOk(out[0]));
  // The later ones: the same backend address, IP header only.
  for (size_t i = 1; i < out.size(); ++i) {
    SCOPED_TRACE("fragment " + std::to_string(i));
    EXPECT_EQ(ip4str(be32(out[i], kL3 + 16)), be);
    EXPECT_EQ(ip4str(be32(out[i], kL3 + 12)), kClient);
    EXPECT_TRUE(onlyIpAddressesChanged(in[i], out[i]));
  }
  // What the backend reassembles: its own address and port, the L4
  // checksum (in the first fragment, over the whole datagram) right.
  auto whole = testlib::reassemble(out);
  ASSERT_TRUE(whole);
  EXPECT_TRUE(testlib::l4ChecksumOk(*whole));
  EXPECT_EQ(ctEntries(), 1u)
      << "one flow (single entry: udp-dns is its backends' designated frontend)";
  EXPECT_EQ(counters(svcStats(udpDns())).packets, 3u);
  EXPECT_EQ(counters(svcStats(udpDns())).flows, 1u);

  // The backend's 3,000-byte answer, in fragments: the source becomes the
  // VIP again in every one.
  const auto rin = udpFragments(be, 5353, kClient, 40000, 0x0777);
  const auto rout = runAll(rin);
  ASSERT_EQ(rout.size(), 3u);
  t = testlib::fiveTuple(rout[0]);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip4str(t->saddr), kVip);
  EXPECT_EQ(t->sport, 53);
  EXPECT_EQ(ip4str(t->daddr), kClient);
  for (size_t i = 1; i < rout.size(); ++i) {
    SCOPED_TRACE("reply fragment " + std::to_string(i));
    EXPECT_EQ(ip4str(be32(rout[i], kL3 + 12)), kVip);
    EXPECT_TRUE(onlyIpAddressesChanged(rin[i], rout[i]));
  }
  whole = testlib::reassemble(rout);
  ASSERT_TRUE(whole);
  EXPECT_TRUE(testlib::l4ChecksumOk(*whole));
  EXPECT_EQ(counters(svcStats(udpDns())).replyPackets, 3u);
  EXPECT_EQ(noFirst(), 0u);
  EXPECT_EQ(allDrops().packets, 0u);
}

// The first fragment of a TCP segment (was passed untouched before issue 17:
// tests/bpf/passthrough_test.cpp "first fragment MF set offset 0").
TEST_P(Frag, TcpFirstFragmentIsTranslated) {
  const Bytes in =
      PacketBuilder::tcp(kClient, 40000, kVip, 80).fragment(0, true).payload(64).build();
  RunResult r = run(prog(), in);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  EXPECT_TRUE(onlyNatFieldsChanged(in, r.out, true));
  EXPECT_NE(r.out, in);
  EXPECT_EQ(ctEntries(), 1u);  // one single-entry flow
}

TEST_P(Frag, LaterFragmentBeforeItsFirstIsPassedUntouchedAndCounted) {
  const auto in = udpFragments(kClient, 40001, kVip, 53, 0x5151);
  // Out of order: the second fragment first. Its datagram is unknown.
  RunResult r = run(prog(), in[1]);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Untouched));
  EXPECT_EQ(r.out, in[1]) << "untouched";
  EXPECT_EQ(noFirst(), 1u);
  EXPECT_EQ(ctEntries(), 0u);
  EXPECT_EQ(allDrops().packets, 0u) << "passed, not dropped";

  // Then the first (DNAT, recorded) and the last (translated alike).
  auto out = runAll({in[0], in[2]});
  const uint32_t be = testlib::fiveTuple(out[0])->daddr;
  EXPECT_EQ(be32(out[1], kL3 + 16), be);
  EXPECT_TRUE(onlyIpAddressesChanged(in[2], out[1]));
  EXPECT_EQ(noFirst(), 1u);
  EXPECT_EQ(counters(svcStats(udpDns())).packets, 2u);
}

TEST_P(Frag, NonServiceFragmentsPassUntouched) {
  // Another address, and the VIP on a port that is no Service's.
  for (const auto& [dst, port] : {std::pair<std::string, uint16_t>{"10.96.0.99", 53}, {kVip, 54}}) {
    const auto in = udpFragments(kClient, 40000, dst, port, 0x6000 + port);
    for (size_t i = 0; i < in.size(); ++i) {
      RunResult r = run(prog(), in[i]);
      ASSERT_EQ(r.err, 0);
      EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Untouched));
      EXPECT_EQ(r.out, in[i]) << dst << ":" << port << " fragment " << i;
    }
  }
  EXPECT_EQ(ctEntries(), 0u);
  EXPECT_EQ(noFirst(), 0u) << "their first fragments were seen";
  EXPECT_EQ(allDrops().packets, 0u);
}

// A later fragment never makes a flow: its first fragment passed as no
// Service's; the Service appears before the rest arrives.
TEST_P(Frag, LaterFragmentNeverCreatesAFlow) {
  const auto in = udpFragments(kClient, 40000, "10.96.0.50", 53, 0x7000);
  RunResult r = run(prog(), in[0]);
  ASSERT_EQ(r.out, in[0]);
  auto fes = standardFrontends();
  fes.push_back(frontend("10.96.0.50", 53, kUdp, {backend("10.244.1.51:53")}, "late"));
  ASSERT_TRUE(sync(fes));
  for (size_t i = 1; i < in.size(); ++i) {
    r = run(prog(), in[i]);
    ASSERT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Untouched));
    EXPECT_EQ(r.out, in[i]) << "fragment " << i;
  }
  EXPECT_EQ(ctEntries(), 0u);
}

// A Service without endpoints rejects the first fragment; the rest find no
// flow and pass untouched.
TEST_P(Frag, RejectedFirstFragmentLeavesNoFlow) {
  const auto in = udpFragments(kClient, 40000, "10.96.0.13", 53, 0x7100);
  RunResult r = run(prog(), in[0]);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Reject)) << verdictName(prog(), r.retval);
  for (size_t i = 1; i < in.size(); ++i) {
    r = run(prog(), in[i]);
    EXPECT_EQ(r.out, in[i]) << "fragment " << i;
  }
  EXPECT_EQ(ctEntries(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Fragments, Frag, ::testing::Values(Prog::Tc, Prog::Xdp),
                         [](const auto& info) { return std::string(progName(info.param)); });

}  // namespace
}  // namespace svclb::bpftest
