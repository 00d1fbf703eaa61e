// The node-NIC paths (issue 3) through BPF_PROG_TEST_RUN: NodePort to a
// local backend (DNAT only, client kept), to a backend on another node
// (SNAT to this node + XDP_TX with the next hop's MAC, and the reply's way
// back), LoadBalancer IP and externalIP, externalTrafficPolicy: Local,
// loadBalancerSourceRanges, SNAT port exhaustion, the tc slow path when the
// next hop has no neighbour entry, and the ARP responder.
//
// The FIB lookups need routes and neighbours: the suite moves its thread into
// the private "node" of tests/testlib/node_netns.h (nic0 is the node NIC, in
// tx_ports_v1; pod0 leads to a local pod) and returns to its original
// namespace afterwards. Nothing touches the namespace the test started in.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <set>

#include "tests/bpf/bpf_fixture.h"
#include "tests/testlib/node_netns.h"

namespace svclb::bpftest {
namespace {

using testlib::be16;
using testlib::be32;
using testlib::ip4;

constexpr uint32_t kXdpPass = 2, kXdpDrop = 1, kXdpTx = 3;
constexpr uint32_t kTcOk = 0, kTcRedirect = 7;
// TC_ACT_UNSPEC: what svclb's tc programs return for a packet they leave
// untouched (the next tcx program or legacy filter runs).
constexpr uint32_t kTcUntouched = static_cast<uint32_t>(-1);

const std::array<uint8_t, 6> kNode1Mac = {0x02, 0x77, 0, 0, 0, 0x01};
const std::array<uint8_t, 6> kClientMac = {0x02, 0x77, 0, 0, 0, 0x64};
const std::array<uint8_t, 6> kNic0Mac = {0x02, 0x77, 0, 0, 0, 0x02};
const std::string kNodeIp = "192.168.77.2", kClientIp = "192.168.77.100";

using testlib::NodeNetns;

NodeNetns& netns() {
  static NodeNetns n;
  return n;
}

std::array<uint8_t, 6> mac(const Bytes& f, size_t off) {
  std::array<uint8_t, 6> m{};
  for (size_t i = 0; i < 6; ++i) m[i] = f.at(off + i);
  return m;
}

Frontend external(const std::string& ip, uint16_t port, uint8_t proto, std::vector<BackendSpec> bes,
                  uint8_t flags = SVC_F_EXTERNAL) {
  Frontend f = frontend(ip, port, proto, std::move(bes), "ext");
  f.flags = flags;
  return f;
}

class Ext : public BpfTest {
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
  RunResult xdp(const Bytes& in) { return testRunXdp(dp().xdpProgFd(), in, netns().nic0()); }
  RunResult tcExt(const Bytes& in) { return testRunTc(dp().tcExtProgFd(), in, netns().nic0()); }
  uint64_t dropped(uint32_t reason) { return drops(reason).packets; }
  static std::string suiteErr_;
};
std::string Ext::suiteErr_;

TEST_F(Ext, NodePortToRemoteBackendIsSourceNatedAndSentBack) {
  ASSERT_TRUE(sync({external(kNodeIp, 30080, kTcp, {backend("10.244.1.11:8080")})}));
  const Bytes syn = PacketBuilder::tcp(kClientIp, 40000, kNodeIp, 30080).ttl(64).build();
  auto r = xdp(syn);
  ASSERT_EQ(r.err, 0);
  ASSERT_EQ(r.retval, kXdpTx) << verdictName(Prog::Xdp, r.retval);
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(testlib::ip4str(t->saddr), kNodeIp) << "source NAT to the node's address";
  EXPECT_GE(t->sport, SNAT_PORT_MIN_DEFAULT);
  EXPECT_LE(t->sport, SNAT_PORT_MAX_DEFAULT);
  EXPECT_EQ(testlib::ip4str(t->daddr), "10.244.1.11");
  EXPECT_EQ(t->dport, 8080);
  EXPECT_EQ(mac(r.out, 0), kNode1Mac) << "next hop (node1) MAC";
  EXPECT_EQ(mac(r.out, 6), kNic0Mac) << "our NIC's MAC";
  EXPECT_EQ(r.out.at(14 + 8), 63) << "TTL decremented";
  EXPECT_TRUE(testlib::ipv4ChecksumOk(r.out));
  EXPECT_TRUE(testlib::l4ChecksumOk(r.out));
  const uint16_t snatPort = t->sport;

  // The backend's SYN-ACK comes back to node:snatPort and leaves to the
  // client as frontend -> client.
  const Bytes synack = PacketBuilder::tcp("10.244.1.11", 8080, kNodeIp, snatPort,
                                          testlib::kTcpSyn | testlib::kTcpAck)
                           .ttl(63)
                           .build();
  r = xdp(synack);
  ASSERT_EQ(r.retval, kXdpTx) << verdictName(Prog::Xdp, r.retval);
  t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(testlib::ip4str(t->saddr), kNodeIp);
  EXPECT_EQ(t->sport, 30080);
  EXPECT_EQ(testlib::ip4str(t->daddr), kClientIp);
  EXPECT_EQ(t->dport, 40000);
  EXPECT_EQ(mac(r.out, 0), kClientMac);
  EXPECT_TRUE(testlib::ipv4ChecksumOk(r.out));
  EXPECT_TRUE(testlib::l4ChecksumOk(r.out));

  // The client's ACK and data keep the same SNAT port (and promote the flow).
  for (int i = 0; i < 3; ++i) {
    r = xdp(
        PacketBuilder::tcp(kClientIp, 40000, kNodeIp, 30080, testlib::kTcpAck).payload(10).build());
    ASSERT_EQ(r.retval, kXdpTx);
    t = testlib::fiveTuple(r.out);
    EXPECT_EQ(t->sport, snatPort);
  }
  // After promotion the reply still finds its way.
  r = xdp(PacketBuilder::tcp("10.244.1.11", 8080, kNodeIp, snatPort, testlib::kTcpAck).build());
  ASSERT_EQ(r.retval, kXdpTx);
  EXPECT_EQ(testlib::ip4str(testlib::fiveTuple(r.out)->daddr), kClientIp);
  EXPECT_EQ(dp().conntrackEst().count(), 2u) << "the flow moved to ct_est_v2";
  const auto fk = FrontendKey{ip4(kNodeIp), 30080, kTcp};
  EXPECT_EQ(counters(svcStats(fk)).flows, 1u);
  EXPECT_EQ(counters(svcStats(fk)).replyPackets, 2u);
}

TEST_F(Ext, UdpNodePortRemoteRoundTrip) {
  ASSERT_TRUE(sync({external(kNodeIp, 30053, kUdp, {backend("10.244.1.11:5353")})}));
  auto r = xdp(PacketBuilder::udp(kClientIp, 5000, kNodeIp, 30053).payload(20).build());
  ASSERT_EQ(r.retval, kXdpTx);
  auto t = testlib::fiveTuple(r.out);
  EXPECT_EQ(testlib::ip4str(t->saddr), kNodeIp);
  EXPECT_TRUE(testlib::l4ChecksumOk(r.out));
  r = xdp(PacketBuilder::udp("10.244.1.11", 5353, kNodeIp, t->sport).payload(20).build());
  ASSERT_EQ(r.retval, kXdpTx);
  t = testlib::fiveTuple(r.out);
  EXPECT_EQ(testlib::ip4str(t->saddr), kNodeIp);
  EXPECT_EQ(t->sport, 30053);
  EXPECT_EQ(testlib::ip4str(t->daddr), kClientIp);
  EXPECT_EQ(t->dport, 5000);
  EXPECT_TRUE(testlib::l4ChecksumOk(r.out));
}

TEST_F(Ext, SnatPortsNeverCollideAndRunOut) {
  // Two ports only: two flows to the same backend get different ports, a
  // third has none left (dropped and counted); a dead flow's port is reused.
  ASSERT_TRUE(dp().setSnatPortRange(61000, 61001));
  ASSERT_TRUE(sync({external(kNodeIp, 30053, kUdp, {backend("10.244.1.11:5353")})}));
  std::set<uint16_t> ports;
  for (uint16_t cport : {5001, 5002}) {
    auto r = xdp(PacketBuilder::udp(kClientIp, cport, kNodeIp, 30053).build());
    ASSERT_EQ(r.retval, kXdpTx) << "flow from port " << cport;
    ports.insert(testlib::fiveTuple(r.out)->sport);
  }
  EXPECT_EQ(ports, (std::set<uint16_t>{61000, 61001}));
  auto r = xdp(PacketBuilder::udp(kClientIp, 5003, kNodeIp, 30053).build());
  EXPECT_EQ(r.retval, kXdpDrop);
  EXPECT_EQ(dropped(DROP_SNAT_PORTS), 1u);
}

// Issue 17: a 3,000-byte UDP datagram in 3 fragments to a NodePort whose
// backend is on another node: every fragment is source-NATed alike (both
// addresses, IP header only for the later ones, payload untouched) and sent
// on; the backend's fragmented answer comes back to the client alike. Both
// node-NIC programs: XDP (XDP_TX) and the tc one (redirect).
TEST_F(Ext, UdpNodePortRemoteFragmentsSourceNatedAlike) {
  ASSERT_TRUE(sync({external(kNodeIp, 30053, kUdp, {backend("10.244.1.11:5353")})}));
  Bytes payload(3000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 13 + 1);
  struct Path {
    const char* name;
    bool isXdp;
    uint16_t clientPort;
  };
  for (const Path& path : {Path{"xdp", true, 6001}, Path{"tc", false, 6002}}) {
    SCOPED_TRACE(path.name);
    auto send = [&](const Bytes& in) { return path.isXdp ? xdp(in) : tcExt(in); };
    const uint32_t sent = path.isXdp ? kXdpTx : kTcRedirect;
    const auto in =
        testlib::fragmentFrame(PacketBuilder::udp(kClientIp, path.clientPort, kNodeIp, 30053)
                                   .ipId(path.clientPort)
                                   .payload(payload)
                                   .build(),
                               1480);
    ASSERT_EQ(in.size(), 3u);
    std::vector<Bytes> out;
    for (const auto& f : in) {
      auto r = send(f);
      ASSERT_EQ(r.err, 0);
      ASSERT_EQ(r.retval, sent) << verdictName(path.isXdp ? Prog::Xdp : Prog::Tc, r.retval);
      out.push_back(r.out);
    }
    for (size_t i = 0; i < out.size(); ++i) {
      SCOPED_TRACE("fragment " + std::to_string(i));
      EXPECT_EQ(testlib::ip4str(be32(out[i], 14 + 12)), kNodeIp) << "source NAT";
      EXPECT_EQ(testlib::ip4str(be32(out[i], 14 + 16)), "10.244.1.11");
      EXPECT_EQ(mac(out[i], 0), kNode1Mac);
      EXPECT_TRUE(testlib::ipv4ChecksumOk(out[i]));
      if (i > 0) {
        ASSERT_EQ(out[i].size(), in[i].size());
        EXPECT_TRUE(std::equal(in[i].begin() + 34, in[i].end(), out[i].begin() + 34))
            << "payload untouched";
      }
    }
    auto whole = testlib::reassemble(out);
    ASSERT_TRUE(whole);
    EXPECT_TRUE(testlib::l4ChecksumOk(*whole));
    auto t = testlib::fiveTuple(*whole);
    EXPECT_EQ(t->dport, 5353);
    const uint16_t snatPort = t->sport;
    EXPECT_GE(snatPort, SNAT_PORT_MIN_DEFAULT);

    const auto rin = testlib::fragmentFrame(
        PacketBuilder::udp("10.244.1.11", 5353, kNodeIp, snatPort).payload(payload).build(), 1480);
    std::vector<Bytes> rout;
    for (const auto& f : rin) {
      auto r = send(f);
      ASSERT_EQ(r.err, 0);
      ASSERT_EQ(r.retval, sent);
      rout.push_back(r.out);
    }
    for (size_t i = 0; i < rout.size(); ++i) {
      SCOPED_TRACE("reply fragment " + std::to_string(i));
      EXPECT_EQ(testlib::ip4str(be32(rout[i], 14 + 12)), kNodeIp);
      EXPECT_EQ(testlib::ip4str(be32(rout[i], 14 + 16)), kClientIp) << "back to the client";
      EXPECT_EQ(mac(rout[i], 0), kClientMac);
      EXPECT_TRUE(testlib::ipv4ChecksumOk(rout[i]));
    }
    whole = testlib::reassemble(rout);
    ASSERT_TRUE(whole);
    EXPECT_TRUE(testlib::l4ChecksumOk(*whole));
    t = testlib::fiveTuple(*whole);
    EXPECT_EQ(t->sport, 30053);
    EXPECT_EQ(t->dport, path.clientPort);
  }
  const auto fk = FrontendKey{ip4(kNodeIp), 30053, kUdp};
  EXPECT_EQ(counters(svcStats(fk)).flows, 2u);
  EXPECT_EQ(counters(svcStats(fk)).packets, 6u);
  EXPECT_EQ(counters(svcStats(fk)).replyPackets, 6u);
}

TEST_F(Ext, NodePortToLocalBackendKeepsTheClientAddress) {
  ASSERT_TRUE(sync({external(kNodeIp, 30080, kTcp, {backend("10.244.2.21:8080")})}));
  const Bytes syn = PacketBuilder::tcp(kClientIp, 40000, kNodeIp, 30080).build();
  auto r = xdp(syn);
  ASSERT_EQ(r.retval, kXdpPass) << "local backend: the stack delivers it";
  EXPECT_TRUE(onlyNatFieldsChanged(syn, r.out, true));
  auto t = testlib::fiveTuple(r.out);
  EXPECT_EQ(testlib::ip4str(t->saddr), kClientIp);
  EXPECT_EQ(testlib::ip4str(t->daddr), "10.244.2.21");
  // The pod's reply is reverse-translated at the pod's tc ingress; its new
  // source is the node's own address, which the stack would drop as a
  // martian: tc forwards it itself, to the client's MAC out of nic0.
  const Bytes reply =
      PacketBuilder::tcp("10.244.2.21", 8080, kClientIp, 40000, testlib::kTcpSyn | testlib::kTcpAck)
          .ttl(64)
          .build();
  r = testRunTc(dp().tcProgFd(), reply, netns().pod0());
  ASSERT_EQ(r.retval, kTcRedirect);
  t = testlib::fiveTuple(r.out);
  EXPECT_EQ(testlib::ip4str(t->saddr), kNodeIp);
  EXPECT_EQ(t->sport, 30080);
  EXPECT_EQ(testlib::ip4str(t->daddr), kClientIp);
  EXPECT_EQ(mac(r.out, 0), kClientMac);
  EXPECT_EQ(mac(r.out, 6), kNic0Mac);
  EXPECT_EQ(r.out.at(14 + 8), 63) << "TTL decremented";
  EXPECT_TRUE(testlib::ipv4ChecksumOk(r.out));
  // A ClusterIP reply is left to the stack as before (TC_ACT_OK).
  ASSERT_TRUE(sync({external(kNodeIp, 30080, kTcp, {backend("10.244.2.21:8080")}),
                    frontend("10.96.0.10", 80, kTcp, {backend("10.244.2.21:8080")})}));
  r = xdp(PacketBuilder::tcp(kClientIp, 40009, "10.96.0.10", 80).build());
  ASSERT_EQ(r.retval, kXdpPass);
  r = testRunTc(
      dp().tcProgFd(),
      PacketBuilder::tcp("10.244.2.21", 8080, kClientIp, 40009, testlib::kTcpSyn | testlib::kTcpAck)
          .build(),
      netns().pod0());
  EXPECT_EQ(r.retval, kTcOk);
  EXPECT_EQ(testlib::ip4str(testlib::fiveTuple(r.out)->saddr), "10.96.0.10");
}

// The same reply toward a client the node has no route to: left to the
// stack (which decides, and decrements the TTL when it forwards), so the
// program leaves the TTL alone.
TEST_F(Ext, LocalBackendReplyWithoutRouteIsLeftToTheStackWithItsTtl) {
  ASSERT_TRUE(sync({external(kNodeIp, 30080, kTcp, {backend("10.244.2.21:8080")})}));
  const std::string client = "203.0.113.9";  // no route in the test node
  auto r = xdp(PacketBuilder::tcp(client, 40000, kNodeIp, 30080).build());
  ASSERT_EQ(r.retval, kXdpPass);
  const Bytes reply =
      PacketBuilder::tcp("10.244.2.21", 8080, client, 40000, testlib::kTcpSyn | testlib::kTcpAck)
          .ttl(64)
          .build();
  r = testRunTc(dp().tcProgFd(), reply, netns().pod0());
  ASSERT_EQ(r.retval, kTcOk);
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(testlib::ip4str(t->saddr), kNodeIp);
  EXPECT_EQ(r.out.at(14 + 8), 64) << "TTL untouched: the stack forwards (and decrements) it";
  EXPECT_TRUE(onlyNatFieldsChanged(reply, r.out, false));
}

TEST_F(Ext, LoadBalancerIpAndExternalIpToRemoteBackend) {
  ASSERT_TRUE(sync({external("192.168.77.200", 80, kTcp, {backend("10.244.1.11:8080")}),
                    external("192.168.77.50", 80, kTcp, {backend("10.244.1.12:8080")})}));
  for (const auto& [vip, be] :
       {std::pair<std::string, std::string>{"192.168.77.200", "10.244.1.11"},
        {"192.168.77.50", "10.244.1.12"}}) {
    auto r = xdp(PacketBuilder::tcp(kClientIp, 40001, vip, 80).build());
    ASSERT_EQ(r.retval, kXdpTx) << vip;
    auto t = testlib::fiveTuple(r.out);
    EXPECT_EQ(testlib::ip4str(t->saddr), kNodeIp) << vip << ": SNAT to the node's own address";
    EXPECT_EQ(testlib::ip4str(t->daddr), be);
    r = xdp(PacketBuilder::tcp(be, 8080, kNodeIp, t->sport, testlib::kTcpSyn | testlib::kTcpAck)
                .build());
    ASSERT_EQ(r.retval, kXdpTx);
    t = testlib::fiveTuple(r.out);
    EXPECT_EQ(testlib::ip4str(t->saddr), vip) << "the reply comes from the address the client used";
    EXPECT_EQ(t->sport, 80);
    EXPECT_EQ(testlib::ip4str(t->daddr), kClientIp);
  }
}

TEST_F(Ext, LocalPolicyNeverSourceNats) {
  // eTP=Local: even a backend routed via a node NIC is reached with the
  // client's own address (the daemon lists local endpoints only).
  ASSERT_TRUE(sync({external(kNodeIp, 30080, kTcp, {backend("10.244.1.11:8080")},
                             SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY)}));
  const Bytes syn = PacketBuilder::tcp(kClientIp, 40000, kNodeIp, 30080).build();
  auto r = xdp(syn);
  ASSERT_EQ(r.retval, kXdpPass);
  EXPECT_TRUE(onlyNatFieldsChanged(syn, r.out, true));
  EXPECT_EQ(testlib::ip4str(testlib::fiveTuple(r.out)->saddr), kClientIp);
}

TEST_F(Ext, LocalPolicyWithoutLocalEndpointsDropsInsteadOfRejecting) {
  ASSERT_TRUE(sync(
      {external(kNodeIp, 30080, kTcp, {}, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY | SVC_F_NO_LOCAL_EPS),
       external(kNodeIp, 30081, kTcp, {}, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY)}));
  auto r = xdp(PacketBuilder::tcp(kClientIp, 40000, kNodeIp, 30080).build());
  EXPECT_EQ(r.retval, kXdpDrop) << verdictName(Prog::Xdp, r.retval);
  EXPECT_EQ(dropped(DROP_NO_LOCAL_EP), 1u);
  // No endpoint anywhere: rejected like any Service without endpoints.
  r = xdp(PacketBuilder::tcp(kClientIp, 40000, kNodeIp, 30081).build());
  EXPECT_EQ(r.retval, kXdpTx) << "RST sent back";
  EXPECT_EQ(counters(svcStats({ip4(kNodeIp), 30081, kTcp})).rejects, 1u);
}

// eTP=Local with no endpoint on this node: clients outside are dropped, but
// this node's pods reach the Service's endpoints elsewhere through the
// frontend's SVC_SCOPE_INTERNAL twin (kube-proxy's short-circuit), and the
// answer comes back from the address the pod used.
TEST_F(Ext, LocalPolicyNodeViewServesPods) {
  Frontend local =
      external(kNodeIp, 30080, kTcp, {}, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY | SVC_F_NO_LOCAL_EPS);
  Frontend twin = external(kNodeIp, 30080, kTcp, {backend("10.244.3.11:8080")},
                           SVC_F_EXTERNAL | SVC_F_NODE_VIEW);
  twin.key.scope = SVC_SCOPE_INTERNAL;
  ASSERT_TRUE(sync({local, twin}));
  const Bytes fromOutside = PacketBuilder::tcp(kClientIp, 40000, kNodeIp, 30080).build();
  EXPECT_EQ(xdp(fromOutside).retval, kXdpDrop);
  EXPECT_EQ(tcExt(fromOutside).retval, 2u /* TC_ACT_SHOT */);
  EXPECT_EQ(dropped(DROP_NO_LOCAL_EP), 2u);

  const char* pod = "10.244.1.30";
  auto r = testRun(dp().tcProgFd(), PacketBuilder::tcp(pod, 41000, kNodeIp, 30080).build());
  ASSERT_EQ(r.err, 0);
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(testlib::ip4str(t->daddr), "10.244.3.11")
      << "the pod's flow reaches the remote endpoint";
  EXPECT_EQ(t->dport, 8080);
  EXPECT_EQ(testlib::ip4str(t->saddr), pod) << "a pod's flow keeps its address";
  EXPECT_EQ(counters(svcStats(twin.key)).flows, 1u) << "counted to the twin";
  EXPECT_EQ(dropped(DROP_NO_LOCAL_EP), 2u);
  // The endpoint's answer, arriving from the node NIC, is restored to the
  // address the pod used.
  r = tcExt(PacketBuilder::tcp("10.244.3.11", 8080, pod, 41000, testlib::kTcpSyn | testlib::kTcpAck)
                .build());
  ASSERT_EQ(r.err, 0);
  t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(testlib::ip4str(t->saddr), kNodeIp);
  EXPECT_EQ(t->sport, 30080);
}

// A deleted externalTrafficPolicy: Local Service keeps the connections of
// both its frontend (clients outside, local endpoints) and its node-view twin
// (this node's pods, every endpoint), which send their flows to the same
// address; a restarted daemon adopts each held group as its own retired
// frontend (the twin's under the twin's scope), both svc ids kept, none
// leaked, and both freed when the flows end.
TEST_F(Ext, DeletedLocalPolicyServiceAndItsTwinKeepTheirFlowsAcrossARestart) {
  Frontend local = external(kNodeIp, 30080, kTcp, {backend("10.244.1.11:8080")},
                            SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY);
  Frontend twin =
      external(kNodeIp, 30080, kTcp, {backend("10.244.1.11:8080"), backend("10.244.3.11:8080")},
               SVC_F_EXTERNAL | SVC_F_NODE_VIEW);
  twin.key.scope = SVC_SCOPE_INTERNAL;
  ASSERT_TRUE(sync({local, twin}));
  const uint32_t localId = svcId(local.key), twinId = svcId(twin.key);
  ASSERT_NE(localId, twinId);

  const char* pod = "10.244.1.30";
  auto outside = [&](uint8_t flags) {
    return PacketBuilder::tcp(kClientIp, 40000, kNodeIp, 30080, flags).build();
  };
  auto fromPod = [&](uint8_t flags) {
    return PacketBuilder::tcp(pod, 41000, kNodeIp, 30080, flags).build();
  };
  auto r = xdp(outside(testlib::kTcpSyn));
  ASSERT_EQ(r.retval, kXdpPass);
  ASSERT_EQ(testlib::ip4str(testlib::fiveTuple(r.out)->daddr), "10.244.1.11");
  r = testRun(dp().tcProgFd(), fromPod(testlib::kTcpSyn));
  ASSERT_EQ(r.err, 0);
  const std::string podBackend = testlib::ip4str(testlib::fiveTuple(r.out)->daddr);
  ASSERT_TRUE(podBackend == "10.244.1.11" || podBackend == "10.244.3.11") << podBackend;
  // Both flows still reach the backend they started on.
  auto flowsGoOn = [&] {
    auto o = xdp(outside(testlib::kTcpAck));
    EXPECT_EQ(o.retval, kXdpPass);
    EXPECT_EQ(testlib::ip4str(testlib::fiveTuple(o.out)->daddr), "10.244.1.11") << "outside";
    auto p = testRun(dp().tcProgFd(), fromPod(testlib::kTcpAck));
    ASSERT_EQ(p.err, 0);
    EXPECT_EQ(testlib::ip4str(testlib::fiveTuple(p.out)->daddr), podBackend) << "pod";
  };

  ASSERT_TRUE(sync({}));  // the Service deleted
  ASSERT_TRUE(syncer().actual().frontends.count(local.key));
  ASSERT_TRUE(syncer().actual().frontends.count(twin.key));
  EXPECT_TRUE(syncer().actual().frontends.at(local.key).retired);
  EXPECT_TRUE(syncer().actual().frontends.at(twin.key).retired);
  {
    SCOPED_TRACE("after the deletion");
    flowsGoOn();
  }

  // A restart: both groups adopted, each under its own key and svc id.
  for (uint32_t i = 0; i < 2 * SVCLB_FILTER_WORDS; ++i) ASSERT_TRUE(dp().lbFilter().update(i, 0));
  {
    Syncer again(dp());
    ASSERT_TRUE(again.adopt());
    const auto& fes = again.actual().frontends;
    ASSERT_EQ(fes.size(), 2u);
    ASSERT_TRUE(fes.count(local.key));
    ASSERT_TRUE(fes.count(twin.key));
    const ActualFrontend &a = fes.at(local.key), &b = fes.at(twin.key);
    EXPECT_TRUE(a.retired);
    EXPECT_TRUE(b.retired);
    EXPECT_EQ(std::set<uint32_t>({a.svcId, b.svcId}), std::set<uint32_t>({localId, twinId}));
    EXPECT_EQ(a.backends.size() + b.backends.size(), 3u) << "every held backend kept";
    for (const ActualFrontend* f : {&a, &b})
      for (const auto& be : f->backends) EXPECT_EQ(be.value.svc_id, f->svcId);
    EXPECT_EQ(again.actual().svcIds.inUse(), 2u);
    EXPECT_EQ(again.actual().backendIds.inUse(), 3u);
  }
  {
    SCOPED_TRACE("after a restart");
    flowsGoOn();
  }
  // The flows end: everything goes, ids included.
  auto freed = syncer().freeDrained({}, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 3u);
  EXPECT_TRUE(syncer().actual().frontends.empty());
  EXPECT_EQ(syncer().actual().svcIds.inUse(), 0u);
  EXPECT_EQ(syncer().actual().backendIds.inUse(), 0u);
}

TEST_F(Ext, SourceRangesDropOtherClients) {
  Frontend f = external("192.168.77.200", 80, kTcp, {backend("10.244.1.11:8080")},
                        SVC_F_EXTERNAL | SVC_F_SRC_RANGES);
  f.sourceRanges = {{ip4("192.168.77.100"), 32}, {ip4("10.9.0.0"), 16}};
  ASSERT_TRUE(sync({f}));
  EXPECT_EQ(xdp(PacketBuilder::tcp(kClientIp, 40000, "192.168.77.200", 80).build()).retval, kXdpTx);
  EXPECT_EQ(xdp(PacketBuilder::tcp("10.9.4.4", 40000, "192.168.77.200", 80).build()).retval, kXdpTx)
      << "inside 10.9.0.0/16";
  const Bytes other = PacketBuilder::tcp("192.168.77.101", 40000, "192.168.77.200", 80).build();
  auto r = xdp(other);
  EXPECT_EQ(r.retval, kXdpDrop);
  EXPECT_EQ(dropped(DROP_SOURCE_RANGE), 1u);
  // The same through tc (pods reaching the LoadBalancer IP).
  r = testRun(dp().tcProgFd(), other);
  EXPECT_EQ(r.retval, 2u /* TC_ACT_SHOT */);
  EXPECT_EQ(dropped(DROP_SOURCE_RANGE), 2u);
}

TEST_F(Ext, NoNeighbourGoesToTheTcSlowPathUntouched) {
  ASSERT_TRUE(sync({external(kNodeIp, 30080, kTcp, {backend("10.244.3.11:8080")})}));
  const Bytes syn = PacketBuilder::tcp(kClientIp, 40000, kNodeIp, 30080).build();
  auto r = xdp(syn);
  ASSERT_EQ(r.retval, kXdpPass);
  EXPECT_EQ(r.out, syn) << "untouched";
  EXPECT_EQ(ctEntries(), 0u) << "XDP made no flow";
  r = tcExt(syn);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, kTcRedirect) << "tc translates and redirects (bpf_redirect_neigh)";
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(testlib::ip4str(t->saddr), kNodeIp);
  EXPECT_EQ(testlib::ip4str(t->daddr), "10.244.3.11");
  EXPECT_TRUE(testlib::ipv4ChecksumOk(r.out));
  EXPECT_TRUE(testlib::l4ChecksumOk(r.out));
  EXPECT_EQ(ctEntries(), 2u);
}

TEST_F(Ext, NotAServiceOnTheNicPassesUntouched) {
  ASSERT_TRUE(sync({external(kNodeIp, 30080, kTcp, {backend("10.244.1.11:8080")})}));
  for (const Bytes& in : {PacketBuilder::tcp(kClientIp, 40000, kNodeIp, 22).build(),
                          PacketBuilder::udp(kClientIp, 40000, kNodeIp, 30080).build(),
                          PacketBuilder::icmpEcho(kClientIp, kNodeIp).build()}) {
    auto r = xdp(in);
    EXPECT_EQ(r.retval, kXdpPass);
    EXPECT_EQ(r.out, in);
    r = tcExt(in);
    EXPECT_EQ(r.retval, kTcUntouched);
    EXPECT_EQ(r.out, in);
  }
}

// ARP: request for an announced address on this NIC -> reply, sent back
// out of the NIC: XDP_TX, or a redirect to its egress from svclb_tc_ext_in
// (the whole datapath of a NIC without svclb's XDP, e.g. a veth).
struct ArpPath {
  const char* name;
  uint32_t answered, untouched;
};
const ArpPath kArpPaths[] = {{"xdp", kXdpTx, kXdpPass}, {"tc", kTcRedirect, kTcUntouched}};

TEST_F(Ext, ArpRequestForAnnouncedAddressIsAnswered) {
  l2_arp_key k{htonl(ip4("192.168.77.200")), netns().nic0()};
  l2_arp_value v{};
  std::copy(kNic0Mac.begin(), kNic0Mac.end(), v.mac);
  ASSERT_TRUE(dp().l2Arp().update(k, v));
  const Bytes req = PacketBuilder::arpRequest(kClientIp, "192.168.77.200").build();
  for (const ArpPath& path : kArpPaths) {
    SCOPED_TRACE(path.name);
    auto r = path.answered == kXdpTx ? xdp(req) : tcExt(req);
    ASSERT_EQ(r.retval, path.answered);
    ASSERT_EQ(r.out.size(), req.size());
    const std::array<uint8_t, 6> asker = mac(req, 6);
    EXPECT_EQ(mac(r.out, 0), asker) << "Ethernet dst = the asker";
    EXPECT_EQ(mac(r.out, 6), kNic0Mac);
    EXPECT_EQ(be16(r.out, 12), 0x0806);
    EXPECT_EQ(be16(r.out, 14 + 6), 2) << "op reply";
    EXPECT_EQ(mac(r.out, 14 + 8), kNic0Mac) << "sender MAC";
    EXPECT_EQ(be32(r.out, 14 + 14), ip4("192.168.77.200")) << "sender IP";
    EXPECT_EQ(mac(r.out, 14 + 18), asker) << "target MAC";
    EXPECT_EQ(be32(r.out, 14 + 24), ip4(kClientIp)) << "target IP";
  }
}

TEST_F(Ext, OtherArpIsUntouched) {
  l2_arp_key k{htonl(ip4("192.168.77.200")), netns().nic0()};
  l2_arp_value v{};
  ASSERT_TRUE(dp().l2Arp().update(k, v));
  std::vector<std::pair<std::string, Bytes>> cases;
  cases.push_back(
      {"not announced", PacketBuilder::arpRequest(kClientIp, "192.168.77.201").build()});
  cases.push_back(
      {"gratuitous", PacketBuilder::arpRequest("192.168.77.200", "192.168.77.200").build()});
  Bytes reply = PacketBuilder::arpRequest(kClientIp, "192.168.77.200").build();
  reply[14 + 7] = 2;  // op = reply
  cases.push_back({"a reply", reply});
  Bytes shortArp = PacketBuilder::arpRequest(kClientIp, "192.168.77.200").build();
  shortArp.resize(14 + 20);
  cases.push_back({"truncated", shortArp});
  const Bytes req = PacketBuilder::arpRequest(kClientIp, "192.168.77.200").build();
  for (const ArpPath& path : kArpPaths) {
    const bool isXdp = path.answered == kXdpTx;
    for (const auto& [what, in] : cases) {
      auto r = isXdp ? xdp(in) : tcExt(in);
      EXPECT_EQ(r.retval, path.untouched) << path.name << ": " << what;
      EXPECT_EQ(r.out, in) << path.name << ": " << what;
    }
    // Announced address, but asked on another interface.
    auto r = isXdp ? testRunXdp(dp().xdpProgFd(), req, netns().pod0())
                   : testRunTc(dp().tcExtProgFd(), req, netns().pod0());
    EXPECT_EQ(r.retval, path.untouched) << path.name;
    EXPECT_EQ(r.out, req) << path.name;
  }
}

}  // namespace
}  // namespace svclb::bpftest
