// IPv6 on the node NICs (issue 16) through BPF_PROG_TEST_RUN: the IPv4
// entries (svclb_xdp_lb, svclb_tc_ext_in) tail-call their IPv6 halves,
// which run the family-generic decision and forwarding: NodePort /
// LoadBalancer IP to a backend on another node (source NAT to the node's
// IPv6 address, hop limit - 1, the next hop's MAC, and the reply's way
// back), to a local backend (DNAT only; the pod's reply forwarded by the pod
// program), externalTrafficPolicy: Local, source ranges, rejects, the tc
// slow path without a neighbour entry, and what passes untouched. Every
// translated frame's L4 checksum is verified independently
// (tests/testlib/packet6.cpp).
//
// Routes and neighbours: the private "node" of tests/testlib/node_netns.h
// plus IPv6 ones (below); nothing touches the namespace the test started in.
#include <arpa/inet.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "loader/external.h"
#include "loader/syncer.h"
#include "tests/bpf/bpf_fixture.h"
#include "tests/testlib/node_netns.h"
#include "tests/testlib/packet6.h"

namespace svclb::bpftest {
namespace {

using testlib::Frame6;
using testlib::ip6;
using testlib::ip6str;
using testlib::kTcpAck;
using testlib::kTcpRst;
using testlib::kTcpSyn;
using testlib::l4Checksum6Ok;
using testlib::parse6;

constexpr uint32_t kXdpPass = 2, kXdpDrop = 1, kXdpTx = 3;
constexpr uint32_t kTcOk = 0, kTcShot = 2, kTcRedirect = 7;
constexpr uint32_t kTcUntouched = static_cast<uint32_t>(-1);  // TC_ACT_UNSPEC

const std::array<uint8_t, 6> kNode1Mac = {0x02, 0x77, 0, 0, 0, 0x01};
const std::array<uint8_t, 6> kClientMac = {0x02, 0x77, 0, 0, 0, 0x64};
const std::array<uint8_t, 6> kNic0Mac = {0x02, 0x77, 0, 0, 0, 0x02};
const std::string kNode6 = "fd00:77::2", kClient6 = "fd00:77::100";
const std::string kRemoteBe = "fd00:10:244:1::11", kLocalBe = "fd00:10:244:2::21";
const std::string kNoNeighBe = "fd00:10:244:3::11";
const std::string kLbIp6 = "fd00:77::200";

testlib::NodeNetns& netns() {
  static testlib::NodeNetns n;
  return n;
}

// The node's IPv6 side: nic0 fd00:77::2/64 with node1 (::1) and a client
// (::100) as permanent neighbours; node1's pods routed via it, a third
// node's via an address without a neighbour entry; a local pod on pod0.
const std::vector<std::string> kV6Setup = {
    "sysctl -qw net.ipv6.conf.all.forwarding=1",
    "ip -6 addr add fd00:77::2/64 dev nic0 nodad",
    "ip -6 neigh replace fd00:77::1 lladdr 02:77:00:00:00:01 nud permanent dev nic0",
    "ip -6 neigh replace fd00:77::100 lladdr 02:77:00:00:00:64 nud permanent dev nic0",
    "ip -6 route add fd00:10:244:1::/64 via fd00:77::1 dev nic0",
    "ip -6 route add fd00:10:244:3::/64 via fd00:77::3 dev nic0",
    "ip -6 route add fd00:10:244:2::21/128 dev pod0",
    "ip -6 neigh replace fd00:10:244:2::21 lladdr 02:44:00:00:00:21 nud permanent dev pod0",
};

std::array<uint8_t, 6> mac(const Bytes& f, size_t off) {
  std::array<uint8_t, 6> m{};
  for (size_t i = 0; i < 6; ++i) m[i] = f.at(off + i);
  return m;
}

BackendSpec backend6(const std::string& addr, uint16_t port) {
  BackendSpec b;
  b.ip6 = ip6(addr);
  b.port = port;
  return b;
}

Frontend external6(const std::string& vip, uint16_t port, uint8_t proto,
                   std::vector<BackendSpec> bes, uint8_t flags = SVC_F_EXTERNAL) {
  Frontend f;
  f.key.vip6 = ip6(vip);
  f.key.port = port;
  f.key.proto = proto;
  f.ns = "default";
  f.name = "ext6";
  f.backends = std::move(bes);
  f.flags = flags;
  return f;
}

FrontendKey key6(const std::string& vip, uint16_t port, uint8_t proto) {
  FrontendKey k;
  k.vip6 = ip6(vip);
  k.port = port;
  k.proto = proto;
  return k;
}

Bytes tcp6(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport,
           uint8_t flags = kTcpSyn, uint8_t hop = 64) {
  Frame6 f;
  f.src = src;
  f.dst = dst;
  f.sport = sport;
  f.dport = dport;
  f.tcpFlags = flags;
  f.hopLimit = hop;
  return f.build();
}

Bytes udp6(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
  Frame6 f;
  f.proto = kUdp;
  f.src = src;
  f.dst = dst;
  f.sport = sport;
  f.dport = dport;
  f.payload = 24;
  return f.build();
}

class Ext6 : public BpfTest {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    suiteErr_ = netns().up(kV6Setup);
  }
  static void TearDownTestSuite() { netns().down(); }
  void SetUp() override {
    BpfTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_EQ(suiteErr_, "") << "setting up the test namespace";
    ASSERT_TRUE(dp().txPorts().update(netns().nic0(), netns().nic0()));
  }
  RunResult xdp(const Bytes& in) { return testRunXdp(dp().xdpProgFd(), in, netns().nic0()); }
  RunResult tcExt(const Bytes& in) { return testRunTc(dp().tcExtProgFd(), in, netns().nic0()); }
  RunResult tcPod(const Bytes& in) { return testRunTc(dp().tcProgFd(), in, netns().pod0()); }
  uint64_t dropped(uint32_t reason) { return drops(reason).packets; }
  static std::string suiteErr_;
};
std::string Ext6::suiteErr_;

TEST_F(Ext6, NodePortToRemoteBackendIsSourceNatedAndSentBack) {
  ASSERT_TRUE(sync({external6(kNode6, 30080, kTcp, {backend6(kRemoteBe, 8080)})}));
  auto r = xdp(tcp6(kClient6, 40000, kNode6, 30080));
  ASSERT_EQ(r.err, 0);
  ASSERT_EQ(r.retval, kXdpTx) << verdictName(Prog::Xdp, r.retval);
  auto t = parse6(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip6str(t->saddr), kNode6) << "source NAT to the node's IPv6 address";
  EXPECT_GE(t->sport, SNAT_PORT_MIN_DEFAULT);
  EXPECT_LE(t->sport, SNAT_PORT_MAX_DEFAULT);
  EXPECT_EQ(ip6str(t->daddr), kRemoteBe);
  EXPECT_EQ(t->dport, 8080);
  EXPECT_EQ(t->hopLimit, 63) << "hop limit decremented";
  EXPECT_EQ(mac(r.out, 0), kNode1Mac) << "next hop (node1) MAC";
  EXPECT_EQ(mac(r.out, 6), kNic0Mac) << "our NIC's MAC";
  EXPECT_TRUE(l4Checksum6Ok(r.out));
  const uint16_t snatPort = t->sport;

  // The backend's SYN-ACK to node:snatPort leaves as frontend -> client.
  r = xdp(tcp6(kRemoteBe, 8080, kNode6, snatPort, kTcpSyn | kTcpAck, 63));
  ASSERT_EQ(r.retval, kXdpTx) << verdictName(Prog::Xdp, r.retval);
  t = parse6(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip6str(t->saddr), kNode6);
  EXPECT_EQ(t->sport, 30080);
  EXPECT_EQ(ip6str(t->daddr), kClient6);
  EXPECT_EQ(t->dport, 40000);
  EXPECT_EQ(t->hopLimit, 62);
  EXPECT_EQ(mac(r.out, 0), kClientMac);
  EXPECT_TRUE(l4Checksum6Ok(r.out));

  // The client's ACKs keep the SNAT port and promote the flow; the reply
  // still finds its way after that.
  for (int i = 0; i < 3; ++i) {
    r = xdp(tcp6(kClient6, 40000, kNode6, 30080, kTcpAck));
    ASSERT_EQ(r.retval, kXdpTx);
    EXPECT_EQ(parse6(r.out)->sport, snatPort);
  }
  r = xdp(tcp6(kRemoteBe, 8080, kNode6, snatPort, kTcpAck));
  ASSERT_EQ(r.retval, kXdpTx);
  EXPECT_EQ(ip6str(parse6(r.out)->daddr), kClient6);
  EXPECT_EQ(dp().conntrack6Est().count(), 2u) << "the flow moved to ct6_est_v1";
  const auto c = counters(svcStats(key6(kNode6, 30080, kTcp)));
  EXPECT_EQ(c.flows, 1u);
  EXPECT_EQ(c.packets, 4u);
  EXPECT_EQ(c.replyPackets, 2u);
}

// The same flow through tc (the NIC's datapath when svclb has no XDP on
// it), UDP, and a LoadBalancer IP: the reply comes from the address the
// client used.
TEST_F(Ext6, TcLoadBalancerIpUdpToRemoteBackendRoundTrip) {
  ASSERT_TRUE(sync({external6(kLbIp6, 53, kUdp, {backend6(kRemoteBe, 5353)})}));
  auto r = tcExt(udp6(kClient6, 41000, kLbIp6, 53));
  ASSERT_EQ(r.err, 0);
  ASSERT_EQ(r.retval, kTcRedirect) << verdictName(Prog::Tc, r.retval);
  auto t = parse6(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip6str(t->saddr), kNode6);
  EXPECT_EQ(ip6str(t->daddr), kRemoteBe);
  EXPECT_EQ(t->dport, 5353);
  EXPECT_EQ(t->hopLimit, 63);
  EXPECT_EQ(mac(r.out, 0), kNode1Mac);
  EXPECT_TRUE(l4Checksum6Ok(r.out));
  r = tcExt(udp6(kRemoteBe, 5353, kNode6, t->sport));
  ASSERT_EQ(r.retval, kTcRedirect);
  t = parse6(r.out);
  EXPECT_EQ(ip6str(t->saddr), kLbIp6) << "from the LoadBalancer IP";
  EXPECT_EQ(t->sport, 53);
  EXPECT_EQ(ip6str(t->daddr), kClient6);
  EXPECT_EQ(t->dport, 41000);
  EXPECT_EQ(mac(r.out, 0), kClientMac);
  EXPECT_TRUE(l4Checksum6Ok(r.out));
}

// An IPv6 ClusterIP (issue 15): a pod's new flow takes one CT entry (the
// backend's designated frontend, be_rev6_v1), and the backend's answer,
// arriving at the node NIC, is translated back through that entry alone.
TEST_F(Ext6, ClusterIpFlowTakesOneCtEntryAndItsAnswerFindsIt) {
  const std::string vip = "fd00:96::10";
  ASSERT_TRUE(sync({external6(vip, 80, kTcp, {backend6(kRemoteBe, 8080)}, 0)}));
  be_rev6_key bk{};
  std::memcpy(&bk.addr, ip6(kRemoteBe).data(), sizeof bk.addr);
  bk.port = htons(8080);
  bk.proto = kTcp;
  auto des = dp().beRev6().lookup(bk);
  ASSERT_TRUE(des);
  EXPECT_EQ(des->port, htons(80));
  EXPECT_EQ(des->svc_id, svcId(key6(vip, 80, kTcp)));

  auto r = tcPod(tcp6(kLocalBe, 41000, vip, 80));
  auto t = parse6(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip6str(t->daddr), kRemoteBe);
  EXPECT_EQ(t->dport, 8080);
  EXPECT_EQ(dp().conntrack6().count(), 1u);
  dp().conntrack6().forEach(
      [](const ct6_key&, const ct6_value& v) { EXPECT_TRUE(v.flags & CT_F_SINGLE); });

  r = xdp(tcp6(kRemoteBe, 8080, kLocalBe, 41000, kTcpSyn | kTcpAck));
  ASSERT_NE(r.retval, kXdpDrop);
  t = parse6(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip6str(t->saddr), vip);
  EXPECT_EQ(t->sport, 80);
  EXPECT_EQ(ip6str(t->daddr), kLocalBe);
  EXPECT_EQ(t->dport, 41000);
  EXPECT_TRUE(l4Checksum6Ok(r.out));
  EXPECT_EQ(dp().conntrack6().count() + dp().conntrack6Est().count(), 1u)
      << "the answer made an entry";
}

TEST_F(Ext6, NodePortToLocalBackendKeepsTheClientAddress) {
  ASSERT_TRUE(sync({external6(kNode6, 30080, kTcp, {backend6(kLocalBe, 8080)})}));
  const Bytes syn = tcp6(kClient6, 40000, kNode6, 30080);
  auto r = xdp(syn);
  ASSERT_EQ(r.retval, kXdpPass) << "local backend: the stack delivers it";
  auto t = parse6(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip6str(t->saddr), kClient6);
  EXPECT_EQ(ip6str(t->daddr), kLocalBe);
  EXPECT_EQ(t->hopLimit, 64) << "the stack forwards it";
  EXPECT_TRUE(l4Checksum6Ok(r.out));
  // The pod's reply, reverse-translated at the pod's tc ingress, comes from
  // the node's own address: forwarded there, to the client's MAC.
  r = tcPod(tcp6(kLocalBe, 8080, kClient6, 40000, kTcpSyn | kTcpAck));
  ASSERT_EQ(r.retval, kTcRedirect) << verdictName(Prog::Tc, r.retval);
  t = parse6(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip6str(t->saddr), kNode6);
  EXPECT_EQ(t->sport, 30080);
  EXPECT_EQ(ip6str(t->daddr), kClient6);
  EXPECT_EQ(t->hopLimit, 63);
  EXPECT_EQ(mac(r.out, 0), kClientMac);
  EXPECT_EQ(mac(r.out, 6), kNic0Mac);
  EXPECT_TRUE(l4Checksum6Ok(r.out));
}

TEST_F(Ext6, LocalPolicyNeverSourceNatsAndDropsWithoutLocalEndpoints) {
  ASSERT_TRUE(sync(
      {external6(kNode6, 30080, kTcp, {backend6(kRemoteBe, 8080)},
                 SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY),
       external6(kNode6, 30081, kTcp, {}, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY | SVC_F_NO_LOCAL_EPS),
       external6(kNode6, 30082, kTcp, {}, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY)}));
  auto r = xdp(tcp6(kClient6, 40000, kNode6, 30080));
  ASSERT_EQ(r.retval, kXdpPass);
  EXPECT_EQ(ip6str(parse6(r.out)->saddr), kClient6) << "the client's own address";
  EXPECT_EQ(ip6str(parse6(r.out)->daddr), kRemoteBe);
  r = xdp(tcp6(kClient6, 40000, kNode6, 30081));
  EXPECT_EQ(r.retval, kXdpDrop) << verdictName(Prog::Xdp, r.retval);
  EXPECT_EQ(dropped(DROP_NO_LOCAL_EP), 1u);
  // No endpoint anywhere: a RST back out of the NIC.
  r = xdp(tcp6(kClient6, 40000, kNode6, 30082));
  ASSERT_EQ(r.retval, kXdpTx) << verdictName(Prog::Xdp, r.retval);
  auto t = parse6(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip6str(t->saddr), kNode6);
  EXPECT_EQ(ip6str(t->daddr), kClient6);
  EXPECT_EQ(r.out.at(t->l4Off + 13) & kTcpRst, kTcpRst);
  EXPECT_TRUE(l4Checksum6Ok(r.out));
  EXPECT_EQ(counters(svcStats(key6(kNode6, 30082, kTcp))).rejects, 1u);
}

TEST_F(Ext6, SourceRangesDropOtherClients) {
  ASSERT_TRUE(sync({external6(kLbIp6, 80, kTcp, {backend6(kRemoteBe, 8080)},
                              SVC_F_EXTERNAL | SVC_F_SRC_RANGES)}));
  src_range6_key k{};
  k.prefixlen = 32 + 64;
  k.svc_id = svcId(key6(kLbIp6, 80, kTcp));
  const auto net = ip6("fd00:77::");
  std::memcpy(&k.addr, net.data(), 16);
  ASSERT_TRUE(dp().srcRanges6().update(k, 1));
  EXPECT_EQ(xdp(tcp6(kClient6, 40000, kLbIp6, 80)).retval, kXdpTx) << "inside fd00:77::/64";
  auto r = xdp(tcp6("fd00:99::5", 40000, kLbIp6, 80));
  EXPECT_EQ(r.retval, kXdpDrop);
  EXPECT_EQ(dropped(DROP_SOURCE_RANGE), 1u);
  r = tcExt(tcp6("fd00:99::5", 40001, kLbIp6, 80));
  EXPECT_EQ(r.retval, kTcShot);
  EXPECT_EQ(dropped(DROP_SOURCE_RANGE), 2u);
}

TEST_F(Ext6, NoNeighbourGoesToTheTcSlowPathUntouched) {
  ASSERT_TRUE(sync({external6(kNode6, 30080, kTcp, {backend6(kNoNeighBe, 8080)})}));
  const Bytes syn = tcp6(kClient6, 40000, kNode6, 30080);
  auto r = xdp(syn);
  ASSERT_EQ(r.retval, kXdpPass);
  EXPECT_EQ(r.out, syn) << "untouched";
  EXPECT_EQ(dp().conntrack6().count(), 0u) << "XDP made no flow";
  r = tcExt(syn);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, kTcRedirect) << "tc translates and redirects (bpf_redirect_neigh)";
  auto t = parse6(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip6str(t->saddr), kNode6);
  EXPECT_EQ(ip6str(t->daddr), kNoNeighBe);
  EXPECT_TRUE(l4Checksum6Ok(r.out));
  EXPECT_EQ(dp().conntrack6().count(), 2u);
}

TEST_F(Ext6, NotAServiceOnTheNicPassesUntouched) {
  ASSERT_TRUE(sync({external6(kNode6, 30080, kTcp, {backend6(kRemoteBe, 8080)})}));
  Frame6 echo;
  echo.proto = 58;
  echo.src = kClient6;
  echo.dst = kNode6;
  for (const Bytes& in : {tcp6(kClient6, 40000, kNode6, 22), udp6(kClient6, 40000, kNode6, 30080),
                          tcp6(kClient6, 40000, "fd00:77::9", 30080), echo.build()}) {
    auto r = xdp(in);
    EXPECT_EQ(r.retval, kXdpPass);
    EXPECT_EQ(r.out, in);
    r = tcExt(in);
    EXPECT_EQ(r.retval, kTcUntouched);
    EXPECT_EQ(r.out, in);
  }
  EXPECT_EQ(allDrops().packets, 0u);
}

// Hop limit 1 on a flow the node forwards itself: dropped (the stack would
// send time exceeded; svclb counts it).
TEST_F(Ext6, HopLimitOneIsNotForwarded) {
  ASSERT_TRUE(sync({external6(kNode6, 30080, kTcp, {backend6(kRemoteBe, 8080)})}));
  auto r = xdp(tcp6(kClient6, 40000, kNode6, 30080, kTcpSyn, 1));
  EXPECT_EQ(r.retval, kXdpDrop) << verdictName(Prog::Xdp, r.retval);
  EXPECT_EQ(dropped(DROP_TTL), 1u);
}

// Hairpin over IPv6 (the generic source-NAT choice on the pod side): a pod
// whose own v6 Service picks itself is source-NATed to the node's address
// toward it, and both directions go straight back into its interface.
TEST_F(Ext6, HairpinPodReachingItselfThroughItsService) {
  const std::string vip = "fd00:10:96::50";
  Frontend f = external6(vip, 80, kTcp, {backend6(kLocalBe, 8080)}, 0);
  ASSERT_TRUE(sync({f}));
  const Bytes req = tcp6(kLocalBe, 40000, vip, 80);
  auto r = tcPod(req);
  ASSERT_EQ(r.retval, kTcRedirect) << verdictName(Prog::Tc, r.retval);
  auto t = parse6(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip6str(t->saddr), kNode6) << "the node's address toward the pod";
  EXPECT_GE(t->sport, SNAT_PORT_MIN_DEFAULT);
  EXPECT_EQ(ip6str(t->daddr), kLocalBe);
  EXPECT_EQ(t->dport, 8080);
  EXPECT_EQ(mac(r.out, 0), mac(req, 6)) << "back to the pod (MACs swapped)";
  EXPECT_TRUE(l4Checksum6Ok(r.out));
  r = tcPod(tcp6(kLocalBe, 8080, kNode6, t->sport, kTcpSyn | kTcpAck));
  ASSERT_EQ(r.retval, kTcRedirect);
  t = parse6(r.out);
  EXPECT_EQ(ip6str(t->saddr), vip);
  EXPECT_EQ(t->sport, 80);
  EXPECT_EQ(ip6str(t->daddr), kLocalBe);
  EXPECT_EQ(t->dport, 40000);
  EXPECT_TRUE(l4Checksum6Ok(r.out));
}

// PMTU discovery across a source-NATed NodePort flow: a router between the
// node and the client answers a reply (node:30080 -> client) with a packet
// too big, sent to the node. It concerns the backend, which sent the data:
// translated back (outer node -> backend, the quote backend:8080 ->
// node:snatPort as the backend sent it) and forwarded to it, over XDP and tc.
TEST_F(Ext6, PacketTooBigAboutASourceNatedFlowReachesTheBackend) {
  ASSERT_TRUE(sync({external6(kNode6, 30080, kTcp, {backend6(kRemoteBe, 8080)})}));
  auto r = xdp(tcp6(kClient6, 40000, kNode6, 30080));
  ASSERT_EQ(r.retval, kXdpTx);
  const uint16_t snatPort = parse6(r.out)->sport;
  // The reply as it left the node toward the client.
  const Bytes reply = tcp6(kNode6, 30080, kClient6, 40000, kTcpSyn | kTcpAck);
  const Bytes quote(reply.begin() + 14, reply.end());
  const Bytes ptb = testlib::icmp6Error("fd00:77::99", kNode6, 2, 0, quote, 1280);
  for (bool viaXdp : {true, false}) {
    SCOPED_TRACE(viaXdp ? "xdp" : "tc");
    r = viaXdp ? xdp(ptb) : tcExt(ptb);
    ASSERT_EQ(r.retval, viaXdp ? kXdpTx : kTcRedirect)
        << verdictName(viaXdp ? Prog::Xdp : Prog::Tc, r.retval);
    auto o = parse6(r.out);
    ASSERT_TRUE(o);
    EXPECT_EQ(ip6str(o->saddr), kNode6) << "from the node's SNAT address";
    EXPECT_EQ(ip6str(o->daddr), kRemoteBe) << "to the backend";
    EXPECT_EQ(o->hopLimit, 63);
    EXPECT_EQ(mac(r.out, 0), kNode1Mac);
    EXPECT_TRUE(l4Checksum6Ok(r.out)) << "ICMPv6 checksum";
    // The quote, as a frame of its own: its TCP checksum must verify too.
    constexpr size_t kQuote = 14 + 40 + 8;  // Ethernet, IPv6, ICMPv6 headers
    ASSERT_GT(r.out.size(), kQuote);
    Bytes qf(14 + (r.out.size() - kQuote));
    std::copy(r.out.begin(), r.out.begin() + 14, qf.begin());
    std::copy(r.out.begin() + kQuote, r.out.end(), qf.begin() + 14);
    auto q = parse6(qf);
    ASSERT_TRUE(q);
    EXPECT_TRUE(l4Checksum6Ok(qf)) << "the quoted TCP checksum";
    EXPECT_EQ(ip6str(q->saddr), kRemoteBe);
    EXPECT_EQ(q->sport, 8080);
    EXPECT_EQ(ip6str(q->daddr), kNode6);
    EXPECT_EQ(q->dport, snatPort);
  }
}

// The daemon's path for node-facing IPv6 frontends: a Store with an IPv6
// LoadBalancer (source ranges of both families) -> externalFrontends ->
// externalToFrontends over the node's IPv6 address -> the Syncer. A
// restarted Syncer adopts svc6_v1 and src_ranges6_v1 with nothing to write;
// the translated frame and the range's drop show the maps are the ones the
// programs read.
TEST_F(Ext6, DaemonPathWritesAndAdoptsNodeFacingIPv6Frontends) {
  StoreConfig cfg;
  cfg.serviceCIDR = "10.96.0.0/12,fd00:10:96::/112";
  cfg.nodeName = "node-a";
  Store st(cfg);
  auto objs = parseManifests(R"(apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lan6, namespace: metallb-system}
spec: {addresses: ["fd00:77::200/127"]}
---
apiVersion: v1
kind: Service
metadata: {name: lb6}
spec:
  type: LoadBalancer
  ipFamilies: [IPv6]
  loadBalancerSourceRanges: ["fd00:77::/64", "192.0.2.0/24"]
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb6-1, labels: {kubernetes.io/service-name: lb6}}
addressType: IPv6
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: ["fd00:10:244:1::11"], nodeName: node-b}]
)",
                             "t.yaml");
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  auto applied = st.apply(*objs);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  const auto desired = [&] {
    std::vector<Frontend> all = st.frontends();
    auto ext = externalToFrontends(st.externalFrontends(), {}, "node-a", all, {ip6(kNode6)});
    all.insert(all.end(), ext.frontends.begin(), ext.frontends.end());
    return all;
  };
  ASSERT_TRUE(sync(desired()));
  // ClusterIP, NodePort on the node's IPv6 address, the LoadBalancer IP.
  EXPECT_EQ(dp().services6().count(), 3u * 2u) << "3 masters + 3 slots";
  EXPECT_EQ(dp().srcRanges6().count(), 1u) << "the IPv6 CIDR only";
  auto r = xdp(tcp6(kClient6, 40000, "fd00:77::200", 80));
  ASSERT_EQ(r.retval, kXdpTx) << verdictName(Prog::Xdp, r.retval);
  EXPECT_EQ(ip6str(parse6(r.out)->daddr), kRemoteBe);
  EXPECT_EQ(xdp(tcp6("fd00:99::1", 40000, "fd00:77::200", 80)).retval, kXdpDrop);
  r = xdp(tcp6(kClient6, 40001, kNode6, 30080));
  ASSERT_EQ(r.retval, kXdpTx) << "the IPv6 NodePort";
  EXPECT_EQ(ip6str(parse6(r.out)->saddr), kNode6);

  Syncer again(dp());
  ASSERT_TRUE(again.adopt());
  auto plan = again.plan(desired());
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->ops.size(), 0u) << "adopted: frontends, backends and the v6 range";

  ASSERT_TRUE(st.remove("Service", "default", "lb6").ok());
  auto down = again.plan(desired());
  ASSERT_TRUE(down.ok());
  ASSERT_TRUE(again.apply(std::move(*down)));
  EXPECT_EQ(dp().services6().count(), 0u);
  EXPECT_EQ(dp().srcRanges6().count(), 0u);
}

// A UDP NodePort datagram to a backend on another node, in fragments (an
// IPv6 client cut it: 3 fragments, the UDP header in the first): the first
// fragment is source-NATed and DNATed as any packet, the later ones get the
// same addresses (their payload untouched) and leave the same way; the
// backend's fragmented answer comes back from the node's address and the
// NodePort. Through XDP and through tc.
TEST_F(Ext6, FragmentsOfASourceNatedDatagramLeaveAlike) {
  ASSERT_TRUE(sync({external6(kNode6, 30053, kUdp, {backend6(kRemoteBe, 5353)})}));
  uint32_t id = 0x5000;
  for (bool viaXdp : {true, false}) {
    SCOPED_TRACE(viaXdp ? "XDP" : "tc");
    const uint32_t sent = viaXdp ? kXdpTx : kTcRedirect;
    auto runNic = [&](const Bytes& f) { return viaXdp ? xdp(f) : tcExt(f); };
    Frame6 f;
    f.proto = kUdp;
    f.src = kClient6;
    f.dst = kNode6;
    f.sport = viaXdp ? 41000 : 41001;
    f.dport = 30053;
    f.payload = 3000;
    const auto in = testlib::fragment6(f.build(), 1232, ++id);
    ASSERT_EQ(in.size(), 3u);
    std::vector<Bytes> out;
    for (const auto& frag : in) {
      auto r = runNic(frag);
      ASSERT_EQ(r.err, 0);
      ASSERT_EQ(r.retval, sent) << verdictName(viaXdp ? Prog::Xdp : Prog::Tc, r.retval);
      out.push_back(r.out);
    }
    auto t = parse6(out[0]);
    ASSERT_TRUE(t);
    EXPECT_EQ(ip6str(t->saddr), kNode6);
    EXPECT_EQ(ip6str(t->daddr), kRemoteBe);
    const uint16_t snatPort = t->sport;
    for (size_t i = 1; i < out.size(); ++i) {
      SCOPED_TRACE("fragment " + std::to_string(i));
      auto u = parse6(out[i]);
      EXPECT_EQ(ip6str(u->saddr), kNode6);
      EXPECT_EQ(ip6str(u->daddr), kRemoteBe);
      EXPECT_EQ(u->hopLimit, 63);
      EXPECT_EQ(mac(out[i], 0), kNode1Mac);
      // Past the IPv6 header (and the hop limit, MACs above): the input's.
      EXPECT_TRUE(std::equal(out[i].begin() + 54, out[i].end(), in[i].begin() + 54));
    }
    auto whole = testlib::reassemble6(out);
    ASSERT_TRUE(whole);
    EXPECT_TRUE(l4Checksum6Ok(*whole));
    EXPECT_EQ(parse6(*whole)->sport, snatPort);
    EXPECT_EQ(parse6(*whole)->dport, 5353);

    // The answer, fragmented by the backend, to node:snatPort.
    Frame6 a;
    a.proto = kUdp;
    a.src = kRemoteBe;
    a.dst = kNode6;
    a.sport = 5353;
    a.dport = snatPort;
    a.payload = 3000;
    const auto rin = testlib::fragment6(a.build(), 1232, ++id);
    std::vector<Bytes> rout;
    for (const auto& frag : rin) {
      auto r = runNic(frag);
      ASSERT_EQ(r.retval, sent);
      rout.push_back(r.out);
      auto u = parse6(r.out);
      EXPECT_EQ(ip6str(u->saddr), kNode6);
      EXPECT_EQ(ip6str(u->daddr), kClient6);
      EXPECT_EQ(mac(r.out, 0), kClientMac);
    }
    whole = testlib::reassemble6(rout);
    ASSERT_TRUE(whole);
    EXPECT_TRUE(l4Checksum6Ok(*whole));
    EXPECT_EQ(parse6(*whole)->sport, 30053);
    EXPECT_EQ(parse6(*whole)->dport, f.sport);
  }
}

// The CHECKSUM_COMPLETE path of the source-NAT rewrite (bpf_l4_csum_replace
// for the address words and both ports), which test_run's skbs never take
// unless the test build forces it (cfg_tc_csum_helpers).
class Ext6CsumHelpers : public Ext6 {
 protected:
  void SetUp() override {
    Ext6::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_EQ(load(/*csumHelpers=*/true), "");
    ASSERT_TRUE(dp().txPorts().update(netns().nic0(), netns().nic0()));
  }
};

TEST_F(Ext6CsumHelpers, SourceNatKeepsTheChecksumRight) {
  ASSERT_TRUE(sync({external6(kNode6, 30080, kTcp, {backend6(kRemoteBe, 8080)}),
                    external6(kNode6, 30053, kUdp, {backend6(kRemoteBe, 5353)})}));
  for (uint8_t proto : {kTcp, kUdp}) {
    const uint16_t port = proto == kTcp ? 30080 : 30053;
    const Bytes in =
        proto == kTcp ? tcp6(kClient6, 40000, kNode6, port) : udp6(kClient6, 40000, kNode6, port);
    auto r = tcExt(in);
    ASSERT_EQ(r.retval, kTcRedirect) << int(proto);
    auto t = parse6(r.out);
    ASSERT_TRUE(t);
    EXPECT_EQ(ip6str(t->saddr), kNode6);
    EXPECT_TRUE(l4Checksum6Ok(r.out)) << int(proto) << " forward";
    const Bytes back = proto == kTcp ? tcp6(kRemoteBe, 8080, kNode6, t->sport, kTcpSyn | kTcpAck)
                                     : udp6(kRemoteBe, 5353, kNode6, t->sport);
    r = tcExt(back);
    ASSERT_EQ(r.retval, kTcRedirect);
    EXPECT_EQ(ip6str(parse6(r.out)->daddr), kClient6);
    EXPECT_TRUE(l4Checksum6Ok(r.out)) << int(proto) << " reply";
  }
}

}  // namespace
}  // namespace svclb::bpftest
