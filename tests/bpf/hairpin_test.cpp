// Hairpin on the pod-facing tc program (issue 17): a pod that reaches a
// Service and gets itself as the backend is source-NATed to the node's
// address toward the pod, and both directions are sent straight back into
// the pod's interface (MACs swapped); without it the pod's answer would stay
// inside the pod, never reverse-translated. A pod reaching a Service whose
// backend is another pod keeps its address (plain DNAT, the stack routes).
//
// The FIB lookup (the node's source address toward the pod) needs routes:
// the suite runs in the private "node" of tests/testlib/node_netns.h, where
// the local pod 10.244.2.21 is behind pod0 and the node's address is nic0's
// 192.168.77.2 (pod0 has none of its own).
#include <unistd.h>

#include <array>
#include <set>

#include "tests/bpf/bpf_fixture.h"
#include "tests/testlib/node_netns.h"

namespace svclb::bpftest {
namespace {

using testlib::ip4;
using testlib::ip4str;

constexpr uint32_t kTcOk = 0, kTcRedirect = 7;
const std::string kPod = "10.244.2.21", kOtherPod = "10.244.2.30", kNodeIp = "192.168.77.2";
const std::string kHairVip = "10.96.0.50";

testlib::NodeNetns& netns() {
  static testlib::NodeNetns n;
  return n;
}

// The frame went back where it came from: destination MAC = the input's
// source MAC and the other way round.
::testing::AssertionResult macsSwapped(const Bytes& in, const Bytes& out) {
  if (out.size() < 12) return ::testing::AssertionFailure() << "frame too short";
  for (size_t i = 0; i < 6; ++i)
    if (out[i] != in[6 + i] || out[6 + i] != in[i])
      return ::testing::AssertionFailure() << "MACs not swapped";
  return ::testing::AssertionSuccess();
}

class Hairpin : public BpfTest {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    suiteErr_ = netns().up();
  }
  static void TearDownTestSuite() { netns().down(); }
  void SetUp() override {
    BpfTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_EQ(suiteErr_, "") << "setting up the test namespace";
  }
  RunResult pod(const Bytes& in) { return testRunTc(dp().tcProgFd(), in, netns().pod0()); }

  // A new flow from the pod to its own Service, then the pod's answer.
  void roundTrip(uint8_t proto) {
    const uint16_t port = proto == kTcp ? 80 : 53, bport = proto == kTcp ? 8080 : 5353;
    ASSERT_TRUE(
        sync({frontend(kHairVip, port, proto, {backend(kPod + ":" + std::to_string(bport))})}));
    const Bytes req = proto == kTcp
                          ? PacketBuilder::tcp(kPod, 40000, kHairVip, port).build()
                          : PacketBuilder::udp(kPod, 40000, kHairVip, port).payload(20).build();
    auto r = pod(req);
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.retval, kTcRedirect) << verdictName(Prog::Tc, r.retval);
    auto t = testlib::fiveTuple(r.out);
    ASSERT_TRUE(t);
    EXPECT_EQ(ip4str(t->saddr), kNodeIp) << "source-NATed to the node's address toward the pod";
    EXPECT_GE(t->sport, SNAT_PORT_MIN_DEFAULT);
    EXPECT_LE(t->sport, SNAT_PORT_MAX_DEFAULT);
    EXPECT_EQ(ip4str(t->daddr), kPod);
    EXPECT_EQ(t->dport, bport);
    EXPECT_TRUE(macsSwapped(req, r.out));
    EXPECT_TRUE(testlib::ipv4ChecksumOk(r.out));
    EXPECT_TRUE(testlib::l4ChecksumOk(r.out));
    EXPECT_EQ(ctEntries(), 2u);
    const uint16_t snatPort = t->sport;

    // The pod's answer goes to node:snatPort; it comes back from the
    // Service to the pod's own port, again straight into the pod.
    const Bytes ans = proto == kTcp
                          ? PacketBuilder::tcp(kPod, bport, kNodeIp, snatPort,
                                               testlib::kTcpSyn | testlib::kTcpAck)
                                .build()
                          : PacketBuilder::udp(kPod, bport, kNodeIp, snatPort).payload(30).build();
    r = pod(ans);
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.retval, kTcRedirect) << verdictName(Prog::Tc, r.retval);
    t = testlib::fiveTuple(r.out);
    ASSERT_TRUE(t);
    EXPECT_EQ(ip4str(t->saddr), kHairVip);
    EXPECT_EQ(t->sport, port);
    EXPECT_EQ(ip4str(t->daddr), kPod);
    EXPECT_EQ(t->dport, 40000);
    EXPECT_TRUE(macsSwapped(ans, r.out));
    EXPECT_TRUE(testlib::ipv4ChecksumOk(r.out));
    EXPECT_TRUE(testlib::l4ChecksumOk(r.out));

    // The next packet of the pod keeps the SNAT port.
    const Bytes next =
        proto == kTcp ? PacketBuilder::tcp(kPod, 40000, kHairVip, port, testlib::kTcpAck).build()
                      : PacketBuilder::udp(kPod, 40000, kHairVip, port).payload(20).build();
    r = pod(next);
    ASSERT_EQ(r.retval, kTcRedirect) << verdictName(Prog::Tc, r.retval);
    t = testlib::fiveTuple(r.out);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->sport, snatPort);
    const auto fk = FrontendKey{ip4(kHairVip), port, proto};
    const Counters c = counters(svcStats(fk));
    EXPECT_EQ(c.packets, 2u);
    EXPECT_EQ(c.replyPackets, 1u);
    EXPECT_EQ(c.flows, 1u);
  }
  static std::string suiteErr_;
};
std::string Hairpin::suiteErr_;

TEST_F(Hairpin, TcpToItselfIsSourceNatedAndSentBackIntoThePod) { roundTrip(kTcp); }
TEST_F(Hairpin, UdpToItselfIsSourceNatedAndSentBackIntoThePod) { roundTrip(kUdp); }

// Only a flow that lands on its own sender is source-NATed: with two
// backends, the pod's flows to the other one keep the pod's address and
// are routed by the stack.
TEST_F(Hairpin, OnlyTheFlowsThatLandOnTheSenderAreSourceNated) {
  ASSERT_TRUE(sync(
      {frontend(kHairVip, 80, kTcp, {backend(kPod + ":8080"), backend(kOtherPod + ":8080")})}));
  std::set<std::string> seen;
  for (uint16_t sport = 41000; sport < 41064; ++sport) {
    const Bytes syn = PacketBuilder::tcp(kPod, sport, kHairVip, 80).build();
    auto r = pod(syn);
    ASSERT_EQ(r.err, 0);
    auto t = testlib::fiveTuple(r.out);
    ASSERT_TRUE(t);
    const std::string to = ip4str(t->daddr);
    seen.insert(to);
    if (to == kPod) {
      EXPECT_EQ(r.retval, kTcRedirect) << "port " << sport;
      EXPECT_EQ(ip4str(t->saddr), kNodeIp) << "port " << sport;
      EXPECT_TRUE(macsSwapped(syn, r.out));
    } else {
      EXPECT_EQ(to, kOtherPod);
      EXPECT_EQ(r.retval, kTcOk) << "port " << sport;
      EXPECT_EQ(ip4str(t->saddr), kPod) << "port " << sport << ": source kept";
      EXPECT_EQ(t->sport, sport);
      EXPECT_TRUE(std::equal(syn.begin(), syn.begin() + 12, r.out.begin())) << "MACs kept";
    }
    EXPECT_TRUE(testlib::ipv4ChecksumOk(r.out));
    EXPECT_TRUE(testlib::l4ChecksumOk(r.out));
  }
  EXPECT_EQ(seen.size(), 2u) << "64 new flows all went to one of two backends";
}

// Another pod reaching the Service whose one backend is 10.244.2.21: no
// SNAT, not sent back.
TEST_F(Hairpin, AnotherPodIsNotSourceNated) {
  ASSERT_TRUE(sync({frontend(kHairVip, 80, kTcp, {backend(kPod + ":8080")})}));
  const Bytes syn = PacketBuilder::tcp(kOtherPod, 40000, kHairVip, 80).build();
  auto r = pod(syn);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, kTcOk) << verdictName(Prog::Tc, r.retval);
  EXPECT_TRUE(onlyNatFieldsChanged(syn, r.out, true));
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip4str(t->saddr), kOtherPod);
  EXPECT_EQ(ip4str(t->daddr), kPod);
}

}  // namespace
}  // namespace svclb::bpftest
