// ICMP errors quoting a translated flow's packet (issue 17, bpf/lib/icmp.h):
// translated back like the flow, in both directions, on the pod tc program
// and on a node NIC (XDP, with SNAT), every checksum verified (outer IP,
// ICMP, quoted IP, quoted UDP/TCP); errors of untracked flows and other ICMP
// pass untouched.
//
// The NodePort case needs routes and neighbours: the suite runs in the
// private "node" of tests/testlib/node_netns.h.
#include <unistd.h>

#include "tests/bpf/bpf_fixture.h"
#include "tests/testlib/node_netns.h"

namespace svclb::bpftest {
namespace {

using testlib::be16;
using testlib::be32;
using testlib::inetChecksum;
using testlib::ip4;
using testlib::ip4str;

constexpr uint32_t kTcOk = 0, kXdpTx = 3, kXdpPass = 2;
constexpr uint32_t kTcUntouched = static_cast<uint32_t>(-1);  // TC_ACT_UNSPEC
const std::string kNodeIp = "192.168.77.2", kExtClient = "192.168.77.100";
const std::array<uint8_t, 6> kClientMac = {0x02, 0x77, 0, 0, 0, 0x64};

testlib::NodeNetns& netns() {
  static testlib::NodeNetns n;
  return n;
}

void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}

// An ICMP error from `src` to `dst` quoting the IP header and the first
// `quote` L4 bytes of `quoted` (a frame, IHL 5).
Bytes icmpError(const std::string& src, const std::string& dst, uint8_t type, uint8_t code,
                const Bytes& quoted, size_t quote = 8) {
  Bytes f = PacketBuilder::icmpEcho(src, dst).build();
  f.resize(14 + 20);  // keep Ethernet + outer IPv4
  Bytes icmp = {type, code, 0, 0, 0, 0, 0, 0};
  if (type == 3 && code == 4) put16(icmp, 6, 1400);  // next-hop MTU
  icmp.insert(icmp.end(), quoted.begin() + 14, quoted.begin() + 14 + 20 + quote);
  put16(icmp, 2, inetChecksum(icmp.data(), icmp.size()));
  f.insert(f.end(), icmp.begin(), icmp.end());
  put16(f, 14 + 2, static_cast<uint16_t>(20 + icmp.size()));
  put16(f, 14 + 10, 0);
  put16(f, 14 + 10, inetChecksum(&f[14], 20));
  return f;
}

// Every checksum of an ICMP error frame verifies.
::testing::AssertionResult checksumsOk(const Bytes& f) {
  if (f.size() < 14 + 20 + 8 + 20 + 8) return ::testing::AssertionFailure() << "short";
  const size_t tot = be16(f, 14 + 2);
  if (inetChecksum(&f[14], 20) != 0) return ::testing::AssertionFailure() << "outer IP checksum";
  if (inetChecksum(&f[34], tot - 20) != 0) return ::testing::AssertionFailure() << "ICMP checksum";
  if (inetChecksum(&f[42], 20) != 0) return ::testing::AssertionFailure() << "quoted IP checksum";
  return ::testing::AssertionSuccess();
}

struct Quote {
  std::string src, dst;
  uint16_t sport, dport;
  uint16_t l4csum;
};
Quote quoteOf(const Bytes& f) {
  return {ip4str(be32(f, 42 + 12)), ip4str(be32(f, 42 + 16)), be16(f, 62), be16(f, 64),
          be16(f, f[42 + 9] == kUdp ? 62 + 6 : 62 + 16)};
}

class Icmp : public BpfTest {
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
    ASSERT_TRUE(dp().txPorts().update(netns().nic0(), netns().nic0()));
  }
  RunResult pod(const Bytes& in) { return testRunTc(dp().tcProgFd(), in, netns().pod0()); }
  RunResult xdp(const Bytes& in) { return testRunXdp(dp().xdpProgFd(), in, netns().nic0()); }
  uint64_t translated() { return sumCounts(dp().ctEvents().lookup(CT_EV_ICMP_ERROR)); }
  static std::string suiteErr_;
};
std::string Icmp::suiteErr_;

// A pod's UDP flow to a ClusterIP; the backend answers "port unreachable".
// The client must see it from the Service, quoting what it sent.
TEST_F(Icmp, PortUnreachableFromTheBackendComesFromTheService) {
  ASSERT_TRUE(sync(standardFrontends()));
  const Bytes req = PacketBuilder::udp(kClient, 40000, kVip, 53).payload(20).build();
  auto r = pod(req);
  ASSERT_EQ(r.retval, kTcOk);
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  const std::string be = ip4str(t->daddr);
  const Bytes err = icmpError(be, kClient, 3, 3, r.out);
  const uint64_t before = translated();
  r = pod(err);
  ASSERT_EQ(r.err, 0);
  ASSERT_EQ(r.retval, kTcOk);
  EXPECT_EQ(ip4str(be32(r.out, 14 + 12)), kVip) << "outer source: the Service, not " << be;
  EXPECT_EQ(ip4str(be32(r.out, 14 + 16)), kClient);
  const Quote q = quoteOf(r.out);
  EXPECT_EQ(q.src, kClient);
  EXPECT_EQ(q.sport, 40000);
  EXPECT_EQ(q.dst, kVip);
  EXPECT_EQ(q.dport, 53);
  EXPECT_EQ(q.l4csum, quoteOf(icmpError(be, kClient, 3, 3, req)).l4csum)
      << "quoted UDP checksum: the client's own again";
  EXPECT_TRUE(checksumsOk(r.out));
  EXPECT_EQ(translated(), before + 1);
}

// "Fragmentation needed" from a router on the backend's path, quoting a TCP
// segment with its checksum: the router's address stays.
TEST_F(Icmp, FragNeededFromARouterQuotesTheServiceAddress) {
  ASSERT_TRUE(sync(standardFrontends()));
  const Bytes syn = PacketBuilder::tcp(kClient, 41000, kVip, 80).payload(100).build();
  auto r = pod(syn);
  ASSERT_EQ(r.retval, kTcOk);
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  r = pod(icmpError("10.244.9.1", kClient, 3, 4, r.out, 28));
  ASSERT_EQ(r.retval, kTcOk);
  EXPECT_EQ(ip4str(be32(r.out, 14 + 12)), "10.244.9.1");
  const Quote q = quoteOf(r.out);
  EXPECT_EQ(q.dst, kVip);
  EXPECT_EQ(q.dport, 80);
  EXPECT_EQ(q.l4csum, quoteOf(icmpError("10.244.9.1", kClient, 3, 4, syn, 28)).l4csum)
      << "quoted TCP checksum: the client's own again";
  EXPECT_EQ(be16(r.out, 34 + 6), 1400) << "next-hop MTU kept";
  EXPECT_TRUE(checksumsOk(r.out));
}

// The client's error about a reply (it quotes Service -> client) goes to the
// backend, quoting what the backend sent.
TEST_F(Icmp, ClientErrorAboutAReplyGoesToTheBackend) {
  ASSERT_TRUE(sync(standardFrontends()));
  auto r = pod(PacketBuilder::udp(kClient, 40001, kVip, 53).payload(20).build());
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  const std::string be = ip4str(t->daddr);
  // The reply, as the client got it (from the Service).
  const Bytes replyToClient = PacketBuilder::udp(kVip, 53, kClient, 40001).payload(30).build();
  r = pod(icmpError(kClient, kVip, 3, 3, replyToClient));
  ASSERT_EQ(r.retval, kTcOk);
  EXPECT_EQ(ip4str(be32(r.out, 14 + 12)), kClient);
  EXPECT_EQ(ip4str(be32(r.out, 14 + 16)), be) << "to the backend, not the Service";
  const Quote q = quoteOf(r.out);
  EXPECT_EQ(q.src, be);
  EXPECT_EQ(q.sport, 5353);
  EXPECT_EQ(q.dst, kClient);
  EXPECT_EQ(q.dport, 40001);
  EXPECT_EQ(q.l4csum,
            quoteOf(icmpError(kClient, be, 3, 3,
                              PacketBuilder::udp(be, 5353, kClient, 40001).payload(30).build()))
                .l4csum);
  EXPECT_TRUE(checksumsOk(r.out));
}

// NodePort to a backend on another node (SNAT): the other node's "frag
// needed" to this node, quoting node:snatPort -> backend, leaves for the
// client quoting client -> NodePort, forwarded by XDP.
TEST_F(Icmp, NodePortSnatFlowErrorIsSentOnToTheClient) {
  Frontend np = frontend(kNodeIp, 30080, kTcp, {backend("10.244.1.11:8080")}, "np");
  np.flags = SVC_F_EXTERNAL;
  ASSERT_TRUE(sync({np}));
  const Bytes syn = PacketBuilder::tcp(kExtClient, 40000, kNodeIp, 30080).build();
  auto r = xdp(syn);
  ASSERT_EQ(r.retval, kXdpTx);
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  const Bytes err = icmpError("192.168.77.1", kNodeIp, 3, 4, r.out, 20);
  r = xdp(err);
  ASSERT_EQ(r.err, 0);
  ASSERT_EQ(r.retval, kXdpTx) << verdictName(Prog::Xdp, r.retval);
  EXPECT_EQ(ip4str(be32(r.out, 14 + 12)), "192.168.77.1");
  EXPECT_EQ(ip4str(be32(r.out, 14 + 16)), kExtClient);
  EXPECT_EQ(r.out.at(14 + 8), err.at(14 + 8) - 1) << "TTL decremented";
  EXPECT_TRUE(std::equal(kClientMac.begin(), kClientMac.end(), r.out.begin()));
  const Quote q = quoteOf(r.out);
  EXPECT_EQ(q.src, kExtClient);
  EXPECT_EQ(q.sport, 40000);
  EXPECT_EQ(q.dst, kNodeIp);
  EXPECT_EQ(q.dport, 30080);
  EXPECT_EQ(q.l4csum, quoteOf(icmpError("192.168.77.1", kNodeIp, 3, 4, syn, 20)).l4csum);
  EXPECT_TRUE(checksumsOk(r.out));
}

// Errors for flows svclb never translated, and ICMP that is not an error,
// pass untouched.
TEST_F(Icmp, UntrackedErrorsAndEchoPassUntouched) {
  ASSERT_TRUE(sync(standardFrontends()));
  const Bytes quoted = PacketBuilder::udp(kClient, 42000, "10.244.1.99", 53).build();
  const Bytes err = icmpError("10.244.1.99", kClient, 3, 3, quoted);
  auto r = pod(err);
  EXPECT_EQ(r.retval, kTcUntouched);
  EXPECT_EQ(r.out, err);
  const Bytes echo = PacketBuilder::icmpEcho(kClient, kVip).build();
  r = pod(echo);
  EXPECT_EQ(r.retval, kTcUntouched);
  EXPECT_EQ(r.out, echo);
  r = xdp(err);
  EXPECT_EQ(r.retval, kXdpPass);
  EXPECT_EQ(r.out, err);
  EXPECT_EQ(translated(), 0u);
}

}  // namespace
}  // namespace svclb::bpftest
