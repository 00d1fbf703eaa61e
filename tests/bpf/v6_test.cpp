// IPv6 on the pod path (issue 16): svclb_tc_pod_in tail-calls
// svclb_tc_pod_in6 for an IPv6 frame, which runs the same decision as IPv4
// (lib/lb_fam.h, lib/ct_fam.h compiled for v6) over the v6 maps. The maps
// are written here directly, as the daemon lays them out (svc6_v1 master
// and slots, backends_v1 state/owner, backend6_v1 address); every output
// frame's L4 checksum is verified independently (tests/testlib/packet6.cpp).
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>

#include <chrono>
#include <cstring>
#include <map>
#include <set>

#include "loader/monitor.h"
#include "tests/bpf/bpf_fixture.h"
#include "tests/testlib/packet6.h"

namespace svclb::bpftest {
namespace {

using testlib::Addr6;
using testlib::Frame6;
using testlib::ip6;
using testlib::kTcpAck;
using testlib::kTcpRst;
using testlib::kTcpSyn;
using testlib::l4Checksum6Ok;
using testlib::parse6;

const std::string kClient6 = "fd00:10:244:2::5";
const std::string kVip6 = "fd00:10:96::a";
const std::string kBe1 = "fd00:10:244:1::11";
const std::string kBe2 = "fd00:10:244:1::12";

v6addr toV6(const std::string& s) {
  v6addr a{};
  Addr6 b = ip6(s);
  std::memcpy(&a, b.data(), sizeof(a));
  return a;
}

struct Be6 {
  std::string addr;
  uint16_t port;
  uint8_t state = BE_STATE_ACTIVE;
};

class V6Base : public BpfEnv {
 public:
  // A v6 frontend written as the daemon lays it out: ready backends first
  // (slots 1..count), then terminating ones (to total). Backend ids start
  // at firstId. Returns the ids in order.
  std::vector<uint32_t> putService(const std::string& vip, uint16_t port, uint8_t proto,
                                   uint32_t svcId, const std::vector<Be6>& bes, uint16_t count,
                                   uint8_t flags = 0, uint32_t firstId = 100,
                                   uint32_t affinityTimeout = 0) {
    std::vector<uint32_t> ids;
    svc6_key k{};
    k.vip = toV6(vip);
    k.port = htons(port);
    k.proto = proto;
    svc_value m{};
    m.svc_id = svcId;
    m.count = count;
    m.total = static_cast<uint16_t>(bes.size());
    m.flags = flags;
    m.affinity_timeout = affinityTimeout;
    EXPECT_TRUE(dp().services6().update(k, m));
    addFilterElem(LbFilter::ipv6(&k.vip, k.port, false));
    for (size_t i = 0; i < bes.size(); ++i) {
      const uint32_t id = firstId + static_cast<uint32_t>(i);
      backend_value b{};
      b.port = htons(bes[i].port);
      b.proto = proto;
      b.state = bes[i].state;
      b.svc_id = svcId;
      EXPECT_TRUE(dp().backendStats().own(id, svcId));
      EXPECT_TRUE(dp().backends().update(id, b));
      backend6_value a{};
      a.addr = toV6(bes[i].addr);
      EXPECT_TRUE(dp().backends6().update(id, a));
      addFilterElem(LbFilter::ipv6(&a.addr, b.port, true));
      svc6_key sk = k;
      sk.slot = static_cast<uint16_t>(i + 1);
      svc_value sv{};
      sv.svc_id = svcId;
      sv.backend_id = id;
      EXPECT_TRUE(dp().services6().update(sk, sv));
      ids.push_back(id);
    }
    return ids;
  }
  void setMaster(const std::string& vip, uint16_t port, uint8_t proto,
                 const std::function<void(svc_value&)>& edit) {
    svc6_key k{};
    k.vip = toV6(vip);
    k.port = htons(port);
    k.proto = proto;
    auto m = dp().services6().lookup(k);
    ASSERT_TRUE(m);
    edit(*m);
    ASSERT_TRUE(dp().services6().update(k, *m));
  }
  RunResult runTc(const Bytes& in) { return run(Prog::Tc, in); }
  lb_stats statsOf(uint32_t svcId) { return dp().frontendStats(svcId); }
  uint64_t dropsOf(uint32_t reason) { return drops(reason).packets; }
};

class V6 : public V6Base, public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "bpf_tests need root";
    ASSERT_EQ(load(), "");
  }
};

// The frame differs from `in` only in the address and port a translation
// rewrites (dst: the destination) and the L4 checksum, which verifies.
::testing::AssertionResult onlyNat6Changed(const Bytes& in, const Bytes& out, bool dst) {
  auto pi = parse6(in), po = parse6(out);
  if (!pi || !po) return ::testing::AssertionFailure() << "not an IPv6 frame";
  if (in.size() != out.size()) return ::testing::AssertionFailure() << "length changed";
  const size_t addrOff = dst ? 38 : 22;
  const size_t portOff = po->l4Off + (dst ? 2 : 0);
  const size_t csumOff = po->l4Off + (po->proto == 6 ? 16 : 6);
  for (size_t i = 0; i < in.size(); ++i) {
    const bool nat = (i >= addrOff && i < addrOff + 16) || i == portOff || i == portOff + 1 ||
                     i == csumOff || i == csumOff + 1;
    if (!nat && in[i] != out[i]) return ::testing::AssertionFailure() << "byte " << i << " changed";
  }
  if (!l4Checksum6Ok(out)) return ::testing::AssertionFailure() << "L4 checksum does not verify";
  return ::testing::AssertionSuccess();
}

TEST_F(V6, TcpFlowIsTranslatedBothWaysWithValidChecksums) {
  auto ids = putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}, {kBe2, 8080}}, 2);
  Frame6 syn;
  const Bytes in = syn.build();
  auto r = runTc(in);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_OK));
  auto p = parse6(r.out);
  ASSERT_TRUE(p);
  const std::string be = testlib::ip6str(p->daddr);
  EXPECT_TRUE(be == kBe1 || be == kBe2) << be;
  EXPECT_EQ(p->dport, 8080);
  EXPECT_TRUE(onlyNat6Changed(in, r.out, true));
  EXPECT_EQ(dp().conntrack6().count(), 2u);  // FORWARD + REPLY

  // The backend's SYN-ACK comes back from the VIP.
  Frame6 synack;
  synack.src = be;
  synack.dst = kClient6;
  synack.sport = 8080;
  synack.dport = 40000;
  synack.tcpFlags = kTcpSyn | kTcpAck;
  const Bytes rin = synack.build();
  r = runTc(rin);
  ASSERT_EQ(r.err, 0);
  p = parse6(r.out);
  ASSERT_TRUE(p);
  EXPECT_EQ(testlib::ip6str(p->saddr), kVip6);
  EXPECT_EQ(p->sport, 80);
  EXPECT_TRUE(onlyNat6Changed(rin, r.out, false));

  // The client's ACK completes the handshake: the flow moves to ct6_est_v1.
  Frame6 ack;
  ack.tcpFlags = kTcpAck;
  r = runTc(ack.build());
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(testlib::ip6str(parse6(r.out)->daddr), be);
  EXPECT_EQ(dp().conntrack6Est().count(), 2u);
  EXPECT_EQ(dp().conntrack6().count(), 0u);

  lb_stats s = statsOf(7);
  EXPECT_EQ(s.flows, 1u);
  EXPECT_EQ(s.packets, 2u);
  EXPECT_EQ(s.bytes, 2u * 60);  // IPv6 header + TCP header, each
  EXPECT_EQ(s.reply_packets, 1u);
  EXPECT_EQ(dp().conntrack().count(), 0u);  // nothing in the IPv4 CT
  (void)ids;
}

TEST_F(V6, UdpIsTranslatedBothWays) {
  putService(kVip6, 53, kUdp, 8, {{kBe1, 5353}}, 1);
  Frame6 q;
  q.proto = kUdp;
  q.sport = 33333;
  q.dport = 53;
  q.payload = 29;
  const Bytes in = q.build();
  auto r = runTc(in);
  ASSERT_EQ(r.err, 0);
  auto p = parse6(r.out);
  ASSERT_TRUE(p);
  EXPECT_EQ(testlib::ip6str(p->daddr), kBe1);
  EXPECT_EQ(p->dport, 5353);
  EXPECT_TRUE(onlyNat6Changed(in, r.out, true));

  Frame6 a = q;
  a.src = kBe1;
  a.dst = kClient6;
  a.sport = 5353;
  a.dport = 33333;
  const Bytes rin = a.build();
  r = runTc(rin);
  p = parse6(r.out);
  ASSERT_TRUE(p);
  EXPECT_EQ(testlib::ip6str(p->saddr), kVip6);
  EXPECT_EQ(p->sport, 53);
  EXPECT_TRUE(onlyNat6Changed(rin, r.out, false));
}

// The CHECKSUM_COMPLETE path (bpf_l4_csum_replace with the 16-byte
// addresses' difference), forced by the test knob.
class V6CsumHelpers : public V6Base, public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "bpf_tests need root";
    ASSERT_EQ(load(true), "");
  }
};

TEST_F(V6CsumHelpers, RewritesKeepTheChecksumRight) {
  putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}}, 1);
  putService(kVip6, 53, kUdp, 8, {{kBe2, 5353}}, 1, 0, 200);
  for (uint8_t proto : {kTcp, kUdp}) {
    SCOPED_TRACE(proto == kTcp ? "TCP" : "UDP");
    Frame6 f;
    f.proto = proto;
    f.dport = proto == kTcp ? 80 : 53;
    f.payload = 13;
    const Bytes in = f.build();
    auto r = runTc(in);
    ASSERT_EQ(r.err, 0);
    EXPECT_TRUE(onlyNat6Changed(in, r.out, true));
    Frame6 a = f;
    a.src = proto == kTcp ? kBe1 : kBe2;
    a.dst = kClient6;
    a.sport = proto == kTcp ? 8080 : 5353;
    a.dport = 40000;
    a.tcpFlags = kTcpSyn | kTcpAck;
    const Bytes rin = a.build();
    r = runTc(rin);
    ASSERT_EQ(r.err, 0);
    EXPECT_TRUE(onlyNat6Changed(rin, r.out, false));
  }
}

struct ExtCase {
  std::string name;
  std::vector<std::pair<uint8_t, size_t>> ext;
  uint16_t fragOffset8 = 0;
  bool fragMore = false;
  bool translated;
};

TEST_F(V6, ExtensionHeadersAreWalkedToTheL4Header) {
  using testlib::kNextDest;
  using testlib::kNextFragment;
  using testlib::kNextHop;
  using testlib::kNextRouting;
  putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}}, 1);
  const std::vector<ExtCase> cases = {
      {"hop-by-hop", {{kNextHop, 8}}, 0, false, true},
      {"hop-by-hop + destination options", {{kNextHop, 8}, {kNextDest, 16}}, 0, false, true},
      {"routing", {{kNextRouting, 24}}, 0, false, true},
      {"atomic fragment", {{kNextFragment, 8}}, 0, false, true},
      {"four headers",
       {{kNextHop, 8}, {kNextDest, 8}, {kNextRouting, 8}, {kNextDest, 8}},
       0,
       false,
       true},
      // Not ours: passed untouched.
      {"five headers (over the bound)",
       {{kNextHop, 8}, {kNextDest, 8}, {kNextRouting, 8}, {kNextDest, 8}, {kNextDest, 8}},
       0,
       false,
       false},
      // A first fragment is parsed as any packet (its datagram's later
      // fragments: V6Frag below).
      {"first fragment (M set)", {{kNextFragment, 8}}, 0, true, true},
      // A later fragment of a datagram whose first was never seen.
      {"later fragment", {{kNextFragment, 8}}, 3, false, false},
  };
  uint16_t sport = 41000;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Frame6 f;
    f.sport = sport++;
    f.ext = c.ext;
    f.fragOffset8 = c.fragOffset8;
    f.fragMore = c.fragMore;
    f.fragId = sport;
    f.payload = 10;
    const Bytes in = f.build();
    auto r = runTc(in);
    ASSERT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, static_cast<uint32_t>(c.translated ? TC_ACT_OK : TC_ACT_UNSPEC));
    if (c.translated) {
      EXPECT_TRUE(onlyNat6Changed(in, r.out, true));
      EXPECT_EQ(testlib::ip6str(parse6(r.out)->daddr), kBe1);
    } else {
      EXPECT_EQ(r.out, in);
    }
  }
}

TEST_F(V6, PacketsThatAreNotOursPassUntouched) {
  putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}}, 1);
  std::vector<std::pair<std::string, Bytes>> cases;
  Frame6 echo;
  echo.proto = testlib::kNextIcmp6;
  cases.emplace_back("ICMPv6 echo to the VIP", echo.build());
  Frame6 ns = echo;
  ns.icmpType = 135;  // neighbour solicitation
  ns.hopLimit = 255;
  cases.emplace_back("neighbour solicitation", ns.build());
  Frame6 other;
  other.dst = "fd00:10:96::b";
  cases.emplace_back("TCP to another address", other.build());
  Frame6 otherPort;
  otherPort.dport = 81;
  cases.emplace_back("TCP to another port of the VIP", otherPort.build());
  Frame6 udp;
  udp.proto = kUdp;
  cases.emplace_back("UDP to the TCP-only port", udp.build());
  Bytes trunc = Frame6{}.build();
  trunc.resize(14 + 40 + 10);
  cases.emplace_back("truncated TCP header", trunc);
  Bytes longer = Frame6{}.build();
  longer[14 + 5] += 40;  // payload length past the frame
  cases.emplace_back("payload length past the frame", longer);
  Bytes esp = Frame6{}.build();
  esp[14 + 6] = 50;
  cases.emplace_back("ESP", esp);
  for (const auto& [name, in] : cases) {
    SCOPED_TRACE(name);
    auto r = runTc(in);
    ASSERT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_UNSPEC));
    EXPECT_EQ(r.out, in);
  }
  EXPECT_EQ(dp().conntrack6().count(), 0u);
  EXPECT_EQ(allDrops().packets, 0u);
}

TEST_F(V6, NoEndpointTcpIsAnsweredWithARst) {
  putService(kVip6, 80, kTcp, 9, {}, 0);
  Frame6 syn;
  syn.seq = 5000;
  auto r = runTc(syn.build());
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
  ASSERT_EQ(r.out.size(), 74u);
  auto p = parse6(r.out);
  ASSERT_TRUE(p);
  EXPECT_EQ(testlib::ip6str(p->saddr), kVip6);
  EXPECT_EQ(testlib::ip6str(p->daddr), kClient6);
  EXPECT_EQ(p->proto, kTcp);
  EXPECT_EQ(p->sport, 80);
  EXPECT_EQ(p->dport, 40000);
  EXPECT_EQ(r.out[p->l4Off + 13], kTcpRst | kTcpAck);
  EXPECT_EQ(testlib::be32(r.out, p->l4Off + 8), 5001u);  // acks the SYN
  EXPECT_TRUE(l4Checksum6Ok(r.out));
  // MACs swapped: back to the sender.
  EXPECT_EQ(r.out[5], 0x01);
  EXPECT_EQ(r.out[11], 0x02);
  EXPECT_EQ(statsOf(9).rejects, 1u);
  EXPECT_EQ(dp().conntrack6().count(), 0u);

  // A RST is never answered.
  Frame6 rst;
  rst.tcpFlags = kTcpRst;
  const Bytes rin = rst.build();
  r = runTc(rin);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_SHOT));
}

TEST_F(V6, NoEndpointUdpIsAnsweredWithPortUnreachable) {
  putService(kVip6, 53, kUdp, 9, {}, 0);
  Frame6 q;
  q.proto = kUdp;
  q.sport = 33333;
  q.dport = 53;
  q.payload = 100;
  const Bytes in = q.build();
  auto r = runTc(in);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
  ASSERT_EQ(r.out.size(), 110u);
  auto p = parse6(r.out);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->proto, testlib::kNextIcmp6);
  EXPECT_EQ(testlib::ip6str(p->saddr), kVip6);
  EXPECT_EQ(testlib::ip6str(p->daddr), kClient6);
  EXPECT_EQ(p->payloadLen, 56);
  EXPECT_EQ(r.out[p->l4Off], 1);      // destination unreachable
  EXPECT_EQ(r.out[p->l4Off + 1], 4);  // port unreachable
  // The quote: the original IPv6 header and UDP header, as sent.
  EXPECT_TRUE(std::equal(r.out.begin() + 62, r.out.end(), in.begin() + 14));
  EXPECT_TRUE(l4Checksum6Ok(r.out));
  EXPECT_EQ(statsOf(9).rejects, 1u);
}

TEST_F(V6, SessionAffinityKeepsAClientOnOneBackend) {
  putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}, {kBe2, 8080}}, 2, SVC_F_AFFINITY, 100, 10800);
  std::set<std::string> seen;
  for (uint16_t sport = 42000; sport < 42016; ++sport) {
    Frame6 f;
    f.sport = sport;
    auto r = runTc(f.build());
    ASSERT_EQ(r.err, 0);
    seen.insert(testlib::ip6str(parse6(r.out)->daddr));
  }
  EXPECT_EQ(seen.size(), 1u);
  affinity6_key k{};
  k.svc_id = 7;
  k.client = toV6(kClient6);
  auto a = dp().affinity6().lookup(k);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->backend_id == 100 || a->backend_id == 101);
  EXPECT_EQ(dp().affinity().count(), 0u);
}

TEST_F(V6, WithoutAffinityNewFlowsSpreadOverTheBackends) {
  putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}, {kBe2, 8080}}, 2);
  std::map<std::string, int> seen;
  for (uint16_t sport = 42000; sport < 42064; ++sport) {
    Frame6 f;
    f.sport = sport;
    auto r = runTc(f.build());
    ASSERT_EQ(r.err, 0);
    seen[testlib::ip6str(parse6(r.out)->daddr)]++;
  }
  EXPECT_EQ(seen.size(), 2u);  // 64 flows on one of two backends: p = 2^-63
}

TEST_F(V6, SourceRangesAdmitOnlyListedClients) {
  putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}}, 1, SVC_F_SRC_RANGES);
  src_range6_key k{};
  k.prefixlen = 32 + 64;
  k.svc_id = 7;
  k.addr = toV6("fd00:10:244:2::");
  ASSERT_TRUE(dp().srcRanges6().update(k, 1));
  Frame6 in;
  auto r = runTc(in.build());
  EXPECT_EQ(testlib::ip6str(parse6(r.out)->daddr), kBe1);
  Frame6 out;
  out.src = "fd00:99::5";
  r = runTc(out.build());
  EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_SHOT));
  EXPECT_EQ(dropsOf(DROP_SOURCE_RANGE), 1u);
}

TEST_F(V6, TerminatingBackendsServeOnlyWhenNoneIsReady) {
  // Slot 1 ready (be1), slot 2 terminating (be2): new flows go to be1.
  putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}, {kBe2, 8080, BE_STATE_TERMINATING}}, 1);
  for (uint16_t sport = 43000; sport < 43016; ++sport) {
    Frame6 f;
    f.sport = sport;
    auto r = runTc(f.build());
    EXPECT_EQ(testlib::ip6str(parse6(r.out)->daddr), kBe1);
  }
  // No ready backend (count 0): the terminating one takes them.
  setMaster(kVip6, 80, kTcp, [](svc_value& m) { m.count = 0; });
  svc6_key s1{};
  s1.vip = toV6(kVip6);
  s1.port = htons(80);
  s1.proto = kTcp;
  s1.slot = 1;
  svc_value v{};
  v.svc_id = 7;
  v.backend_id = 101;
  ASSERT_TRUE(dp().services6().update(s1, v));
  setMaster(kVip6, 80, kTcp, [](svc_value& m) { m.total = 1; });
  Frame6 f;
  f.sport = 43100;
  auto r = runTc(f.build());
  EXPECT_EQ(testlib::ip6str(parse6(r.out)->daddr), kBe2);
}

TEST_F(V6, MaglevTableChoosesTheBackend) {
  auto ids = putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}, {kBe2, 8080}}, 2);
  setMaster(kVip6, 80, kTcp, [](svc_value& m) {
    m.algo = SVC_ALGO_MAGLEV;
    m.maglev_size = 7;
  });
  const std::vector<uint32_t> table(7, ids[1]);  // every entry: be2
  ASSERT_TRUE(dp().maglev().put(7, table));
  for (uint16_t sport = 44000; sport < 44016; ++sport) {
    Frame6 f;
    f.sport = sport;
    auto r = runTc(f.build());
    EXPECT_EQ(testlib::ip6str(parse6(r.out)->daddr), kBe2);
  }
}

TEST_F(V6, AFlowWhoseBackendWasRemovedIsBalancedAgain) {
  auto ids = putService(kVip6, 53, kUdp, 8, {{kBe1, 5353}, {kBe2, 5353}}, 2);
  Frame6 q;
  q.proto = kUdp;
  q.sport = 33333;
  q.dport = 53;
  auto r = runTc(q.build());
  const std::string first = testlib::ip6str(parse6(r.out)->daddr);
  // Remove that backend as the daemon does: its slot and its id.
  const uint32_t gone = first == kBe1 ? ids[0] : ids[1];
  const uint32_t kept = first == kBe1 ? ids[1] : ids[0];
  svc6_key s1{};
  s1.vip = toV6(kVip6);
  s1.port = htons(53);
  s1.proto = kUdp;
  s1.slot = 1;
  svc_value v{};
  v.svc_id = 8;
  v.backend_id = kept;
  ASSERT_TRUE(dp().services6().update(s1, v));
  setMaster(kVip6, 53, kUdp, [](svc_value& m) { m.count = m.total = 1; });
  ASSERT_TRUE(dp().backendStats().own(gone, 0));
  ASSERT_TRUE(dp().backends().update(gone, backend_value{}));
  r = runTc(q.build());
  EXPECT_EQ(testlib::ip6str(parse6(r.out)->daddr), first == kBe1 ? kBe2 : kBe1);
}

// ---- ICMPv6 errors about a translated flow (lib/icmp.h icmp6_handle) ------

// The IPv6 packet of a frame (what an ICMPv6 error quotes).
Bytes ipPacket(const Bytes& frame) { return Bytes(frame.begin() + 14, frame.end()); }

// Byte offsets in an error frame without extension headers.
constexpr size_t kIcmpOff = 54, kQuote = 62, kQuoteL4 = 102;

class V6Icmp : public V6 {
 protected:
  // A TCP SYN from the client through the VIP, DNATed to be1:8080; returns
  // the translated frame (what the network then carries).
  Bytes establish() {
    putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}}, 1);
    Frame6 syn;
    syn.payload = 20;
    auto r = runTc(syn.build());
    EXPECT_EQ(testlib::ip6str(parse6(r.out)->daddr), kBe1);
    return r.out;
  }
  RunResult runEgress(const Bytes& in) { return testRun(dp().tcEgressProgFd(), in); }
  uint64_t icmpEvents() {
    uint64_t n = 0;
    for (uint64_t v : dp().ctEvents().lookup(CT_EV_ICMP_ERROR)) n += v;
    return n;
  }
};

// Quoted address/port at the quote's offsets, and every checksum valid: the
// ICMPv6 one, and the quoted TCP segment's (the whole segment is quoted).
::testing::AssertionResult quoteIs(const Bytes& f, const std::string& src, uint16_t sport,
                                   const std::string& dst, uint16_t dport) {
  if (!l4Checksum6Ok(f)) return ::testing::AssertionFailure() << "ICMPv6 checksum";
  if (f.size() <= kQuote) return ::testing::AssertionFailure() << "no quote";
  Bytes inner(14 + (f.size() - kQuote), 0);
  inner[12] = 0x86;
  inner[13] = 0xdd;
  std::copy(f.begin() + kQuote, f.end(), inner.begin() + 14);
  auto q = parse6(inner);
  if (!q) return ::testing::AssertionFailure() << "quote not parsable";
  if (testlib::ip6str(q->saddr) != src || q->sport != sport || testlib::ip6str(q->daddr) != dst ||
      q->dport != dport)
    return ::testing::AssertionFailure() << "quote " << testlib::ip6str(q->saddr) << " " << q->sport
                                         << " -> " << testlib::ip6str(q->daddr) << " " << q->dport;
  if (!l4Checksum6Ok(inner)) return ::testing::AssertionFailure() << "quoted TCP checksum";
  return ::testing::AssertionSuccess();
}

TEST_F(V6Icmp, NodesPacketTooBigTowardThePodQuotesTheService) {
  const Bytes sent = establish();
  // The node could not forward the DNATed packet (smaller MTU toward the
  // backend): its own error leaves through the client pod's interface, the
  // pod egress program's place.
  const Bytes err = testlib::icmp6Error("fd00:10:244:2::1", kClient6, 2, 0, ipPacket(sent), 1280);
  auto r = runEgress(err);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_TRUE(quoteIs(r.out, kClient6, 40000, kVip6, 80));
  auto p = parse6(r.out);
  EXPECT_EQ(testlib::ip6str(p->saddr), "fd00:10:244:2::1");  // the node stays the sender
  EXPECT_EQ(testlib::be32(r.out, kIcmpOff + 4), 1280u);      // the MTU untouched
  EXPECT_EQ(icmpEvents(), 1u);
}

TEST_F(V6Icmp, BackendsOwnErrorComesFromTheFrontend) {
  const Bytes sent = establish();
  // The backend pod itself answers (e.g. port unreachable), on its ingress.
  const Bytes err = testlib::icmp6Error(kBe1, kClient6, 1, 4, ipPacket(sent));
  auto r = runTc(err);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(testlib::ip6str(parse6(r.out)->saddr), kVip6);
  EXPECT_TRUE(quoteIs(r.out, kClient6, 40000, kVip6, 80));
}

TEST_F(V6Icmp, ClientsErrorAboutAReplyGoesToTheBackend) {
  establish();
  // The backend's answer as the client received it (from the VIP), and the
  // client's error about it, addressed to the VIP.
  Frame6 reply;
  reply.src = kVip6;
  reply.dst = kClient6;
  reply.sport = 80;
  reply.dport = 40000;
  reply.tcpFlags = kTcpSyn | kTcpAck;
  const Bytes err = testlib::icmp6Error(kClient6, kVip6, 1, 4, ipPacket(reply.build()));
  auto r = runTc(err);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(testlib::ip6str(parse6(r.out)->daddr), kBe1);
  EXPECT_TRUE(quoteIs(r.out, kBe1, 8080, kClient6, 40000));
}

TEST_F(V6Icmp, ErrorsAboutUntrackedFlowsAndOtherMessagesPassUntouched) {
  const Bytes sent = establish();
  Frame6 other;
  other.dst = "fd00:10:244:1::99";
  other.sport = 40001;
  std::vector<std::pair<std::string, Bytes>> cases = {
      {"error quoting an untracked flow",
       testlib::icmp6Error("fd00:10:244:2::1", kClient6, 2, 0, ipPacket(other.build()), 1280)},
      {"parameter problem (not translated)",
       testlib::icmp6Error("fd00:10:244:2::1", kClient6, 4, 0, ipPacket(sent))},
      {"echo request", [] {
         Frame6 e;
         e.proto = testlib::kNextIcmp6;
         return e.build();
       }()}};
  for (const auto& [name, in] : cases) {
    SCOPED_TRACE(name);
    auto r = runEgress(in);
    EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_UNSPEC));
    EXPECT_EQ(r.out, in);
    r = runTc(in);
    EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_UNSPEC));
    EXPECT_EQ(r.out, in);
  }
  EXPECT_EQ(icmpEvents(), 0u);
}

// ---- svcctl monitor: IPv6 events (mon_event6, 56 bytes) ----------------

class V6Monitor : public V6 {
 protected:
  void SetUp() override {
    V6::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ring_ = ring_buffer__new(dp().monitorRingFd(), &V6Monitor::onEvent, this, nullptr);
    ASSERT_NE(ring_, nullptr);
  }
  void TearDown() override {
    if (ring_) ring_buffer__free(ring_);
  }
  static int onEvent(void* self, void* data, size_t size) {
    auto* me = static_cast<V6Monitor*>(self);
    me->sizes_.push_back(size);
    mon_event6 e{};
    std::memcpy(&e, data, std::min(size, sizeof(e)));
    me->events_.push_back(e);
    return 0;
  }
  std::vector<mon_event6> drain() {
    events_.clear();
    sizes_.clear();
    EXPECT_GE(ring_buffer__consume(ring_), 0);
    return events_;
  }
  ring_buffer* ring_ = nullptr;
  std::vector<mon_event6> events_;
  std::vector<size_t> sizes_;
};

TEST_F(V6Monitor, RejectAndDropEventsCarryTheIpv6Tuple) {
  putService(kVip6, 80, kTcp, 9, {}, 0);
  putService(kVip6, 443, kTcp, 10, {{kBe1, 443}}, 1, SVC_F_SRC_RANGES, 300);
  dp().setMonitor(true);
  Frame6 syn;
  syn.seq = 1;
  ASSERT_EQ(runTc(syn.build()).retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
  Frame6 ranged;
  ranged.dport = 443;
  ASSERT_EQ(runTc(ranged.build()).retval, static_cast<uint32_t>(TC_ACT_SHOT));
  auto ev = drain();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(sizes_[0], sizeof(mon_event6));
  EXPECT_EQ(ev[0].type, MON_EV_REJECT);
  EXPECT_EQ(ev[0].reason, DROP_NO_BACKEND);
  EXPECT_EQ(ev[0].svc_id, 9u);
  EXPECT_EQ(ev[0].hook, MON_HOOK_TC_POD);
  v6addr client = toV6(kClient6), vip = toV6(kVip6);
  EXPECT_EQ(std::memcmp(&ev[0].saddr, &client, 16), 0);
  EXPECT_EQ(std::memcmp(&ev[0].daddr, &vip, 16), 0);
  EXPECT_EQ(ntohs(ev[0].sport), 40000);
  EXPECT_EQ(ntohs(ev[0].dport), 80);
  EXPECT_EQ(ev[1].type, MON_EV_DROP);
  EXPECT_EQ(ev[1].reason, DROP_SOURCE_RANGE);
  EXPECT_EQ(ev[1].svc_id, 10u);
  // The daemon's JSON for it: bracketed endpoints.
  auto j = monitorEventJson(ev[0], 0, nullptr, "");
  EXPECT_EQ(j["src"], "[" + kClient6 + "]:40000");
  EXPECT_EQ(j["dst"], "[" + kVip6 + "]:80");
  EXPECT_EQ(j["type"], "reject");
}

// The daemon's path end to end in the kernel: a dual-stack Service applied
// to a Store becomes one frontend per family (model), planned and written by
// the Syncer into svc_v1 and svc6_v1/backend6_v1, which the v6 pod program
// then balances; a restarted Syncer adopts the v6 frontends (no write, no
// id reused), and a downgrade to SingleStack removes the v6 frontend.
TEST_F(V6, DaemonPathWritesAndAdoptsDualStackFrontends) {
  StoreConfig cfg;
  cfg.serviceCIDR = "10.96.0.0/12,fd00:10:96::/112";
  Store st(cfg);
  auto apply = [&](const std::string& yaml) {
    auto objs = parseManifests(yaml, "t.yaml");
    ASSERT_TRUE(objs.ok()) << objs.error().message;
    auto r = st.apply(*objs);
    ASSERT_TRUE(r.ok()) << r.error().message;
  };
  const std::string svc =
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n"
      "  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, \"" +
      kVip6 + "\"]\n  ports:\n  - port: 80\n";
  apply(svc + "  ipFamilyPolicy: RequireDualStack\n");
  apply(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-6\n"
      "  labels:\n    kubernetes.io/service-name: web\naddressType: IPv6\nendpoints:\n"
      "- addresses: [\"" +
      kBe1 + "\"]\n- addresses: [\"" + kBe2 +
      "\"]\n"
      "ports:\n- port: 8080\n---\n"
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-4\n"
      "  labels:\n    kubernetes.io/service-name: web\naddressType: IPv4\nendpoints:\n"
      "- addresses: [10.244.1.11]\nports:\n- port: 8080\n");
  ASSERT_TRUE(sync(st.frontends()));
  EXPECT_EQ(dp().services6().count(), 3u);  // master + 2 slots
  EXPECT_EQ(dp().services().count(), 2u);   // the v4 frontend: master + 1 slot

  Frame6 syn;
  const Bytes in = syn.build();
  auto r = runTc(in);
  ASSERT_EQ(r.err, 0);
  auto p = parse6(r.out);
  ASSERT_TRUE(p);
  const std::string be = testlib::ip6str(p->daddr);
  EXPECT_TRUE(be == kBe1 || be == kBe2) << be;
  EXPECT_EQ(p->dport, 8080);
  EXPECT_TRUE(onlyNat6Changed(in, r.out, true));

  // A restarted daemon adopts what is there: nothing to write.
  Syncer again(dp());
  ASSERT_TRUE(again.adopt());
  EXPECT_EQ(again.actual().frontends.size(), 2u);
  auto plan = again.plan(st.frontends());
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->ops.size(), 0u);
  EXPECT_EQ(plan->unchanged, 2u);
  for (const auto& [key, f] : again.actual().frontends)
    if (key.v6()) {
      ASSERT_EQ(f.backends.size(), 2u);
      std::set<std::string> addrs;
      for (const auto& b : f.backends) addrs.insert(formatIPv6(b.addr6));
      EXPECT_EQ(addrs, (std::set<std::string>{kBe1, kBe2}));
    }

  // Downgrade: SingleStack releases the v6 ClusterIP; its frontend goes.
  apply(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n"
      "  ipFamilyPolicy: SingleStack\n  ports:\n  - port: 80\n");
  auto down = again.plan(st.frontends());
  ASSERT_TRUE(down.ok());
  ASSERT_TRUE(again.apply(std::move(*down)));
  EXPECT_EQ(dp().services6().count(), 0u);
  EXPECT_EQ(dp().services().count(), 2u);
  // The v6 frontend's TCP flow goes on (its backends held, as kube-proxy's
  // conntrack keeps a deleted Service's flows); a new one passes untouched.
  r = runTc(in);
  ASSERT_EQ(r.err, 0);
  p = parse6(r.out);
  ASSERT_TRUE(p);
  EXPECT_EQ(testlib::ip6str(p->daddr), be) << "the live flow lost its backend";
  Frame6 other;
  other.sport = 40001;
  const Bytes in2 = other.build();
  r = runTc(in2);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.out, in2) << "a new frame to a removed v6 ClusterIP passes untouched";
  // Its flows ended (the daemon's conntrack walk finds none): all goes.
  auto freed = again.freeDrained({}, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 2u);
  EXPECT_EQ(again.actual().frontends.size(), 1u);
  r = runTc(in);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.out, in) << "a frame of the ended flow to a removed v6 ClusterIP passes untouched";
}

// ---- IPv6 fragments (lib/frag.h over frag6_v1) ----------------------------

// A 3,000-byte UDP datagram from `src` cut as a 1280-byte-MTU IPv6 source
// does (1232 bytes of fragmentable part each): 3 fragments, identification
// `id`, only the first carrying the UDP header.
std::vector<Bytes> udp6Fragments(const std::string& src, uint16_t sport, const std::string& dst,
                                 uint16_t dport, uint32_t id) {
  Frame6 f;
  f.proto = kUdp;
  f.src = src;
  f.dst = dst;
  f.sport = sport;
  f.dport = dport;
  f.payload = 3000;
  auto frags = testlib::fragment6(f.build(), 1232, id);
  EXPECT_EQ(frags.size(), 3u);
  return frags;
}

// A later fragment's output: only the address at `addrOff` (22 source, 38
// destination) may differ; every other byte, its payload included, is the
// input's.
::testing::AssertionResult onlyAddressChanged(const Bytes& in, const Bytes& out, size_t addrOff) {
  if (in.size() != out.size()) return ::testing::AssertionFailure() << "length changed";
  for (size_t i = 0; i < in.size(); ++i)
    if ((i < addrOff || i >= addrOff + 16) && in[i] != out[i])
      return ::testing::AssertionFailure() << "byte " << i << " changed";
  return ::testing::AssertionSuccess();
}

class V6Frag : public V6 {
 protected:
  void SetUp() override {
    V6::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    putService(kVip6, 53, kUdp, 8, {{kBe1, 5353}, {kBe2, 5353}}, 2);
  }
  uint64_t noFirst() { return sumCounts(dp().ctEvents().lookup(CT_EV_FRAG_NO_FIRST)); }
  std::vector<Bytes> runAll(const std::vector<Bytes>& in) {
    std::vector<Bytes> out;
    for (size_t i = 0; i < in.size(); ++i) {
      auto r = runTc(in[i]);
      EXPECT_EQ(r.err, 0);
      EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_OK)) << "fragment " << i;
      out.push_back(r.out);
    }
    return out;
  }
};

TEST_F(V6Frag, RequestAndReplyFragmentsTranslatedAlike) {
  const auto in = udp6Fragments(kClient6, 40000, kVip6, 53, 0xabcd0001);
  const auto out = runAll(in);
  ASSERT_EQ(out.size(), 3u);
  auto t = parse6(out[0]);
  ASSERT_TRUE(t);
  const std::string be = testlib::ip6str(t->daddr);
  EXPECT_TRUE(be == kBe1 || be == kBe2) << be;
  EXPECT_EQ(t->dport, 5353);
  for (size_t i = 1; i < out.size(); ++i) {
    SCOPED_TRACE("fragment " + std::to_string(i));
    EXPECT_EQ(testlib::ip6str(parse6(out[i])->daddr), be) << "the first fragment's backend";
    EXPECT_TRUE(onlyAddressChanged(in[i], out[i], 38));
  }
  // What the backend reassembles: its address and port, the UDP checksum
  // (in the first fragment, over the whole datagram) right.
  auto whole = testlib::reassemble6(out);
  ASSERT_TRUE(whole);
  EXPECT_TRUE(l4Checksum6Ok(*whole));
  EXPECT_EQ(parse6(*whole)->dport, 5353);
  EXPECT_EQ(dp().conntrack6().count(), 2u) << "one flow";
  EXPECT_EQ(statsOf(8).packets, 3u);
  EXPECT_EQ(statsOf(8).flows, 1u);

  // The backend's 3,000-byte answer in fragments: from the VIP in every one.
  const auto rin = udp6Fragments(be, 5353, kClient6, 40000, 0x00770077);
  const auto rout = runAll(rin);
  ASSERT_EQ(rout.size(), 3u);
  t = parse6(rout[0]);
  EXPECT_EQ(testlib::ip6str(t->saddr), kVip6);
  EXPECT_EQ(t->sport, 53);
  for (size_t i = 1; i < rout.size(); ++i) {
    SCOPED_TRACE("reply fragment " + std::to_string(i));
    EXPECT_EQ(testlib::ip6str(parse6(rout[i])->saddr), kVip6);
    EXPECT_TRUE(onlyAddressChanged(rin[i], rout[i], 22));
  }
  whole = testlib::reassemble6(rout);
  ASSERT_TRUE(whole);
  EXPECT_TRUE(l4Checksum6Ok(*whole));
  EXPECT_EQ(statsOf(8).reply_packets, 3u);
  EXPECT_EQ(noFirst(), 0u);
}

TEST_F(V6Frag, LaterFragmentBeforeItsFirstIsPassedUntouchedAndCounted) {
  const auto in = udp6Fragments(kClient6, 40001, kVip6, 53, 0xabcd0002);
  auto r = runTc(in[1]);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_UNSPEC));
  EXPECT_EQ(r.out, in[1]) << "untouched";
  EXPECT_EQ(noFirst(), 1u);
  EXPECT_EQ(dp().conntrack6().count(), 0u);
  // Then the first (DNAT, recorded) and the last (translated alike).
  auto out = runAll({in[0], in[2]});
  EXPECT_EQ(parse6(out[1])->daddr, parse6(out[0])->daddr);
  EXPECT_TRUE(onlyAddressChanged(in[2], out[1], 38));
  EXPECT_EQ(noFirst(), 1u);
}

// Same addresses and protocol, another identification: another datagram,
// whose first fragment was not seen.
TEST_F(V6Frag, TheIdentificationTellsDatagramsApart) {
  const auto a = udp6Fragments(kClient6, 40002, kVip6, 53, 0x01010101);
  const auto b = udp6Fragments(kClient6, 40002, kVip6, 53, 0x01010102);
  runAll({a[0]});
  auto r = runTc(b[1]);
  EXPECT_EQ(r.out, b[1]);
  EXPECT_EQ(noFirst(), 1u);
}

TEST_F(V6Frag, NonServiceFragmentsAndLaterFragmentsWithoutAFlowPassUntouched) {
  // Another address, and the VIP on a port that is no Service's: their
  // first fragments are recorded, so the later ones are not "unknown".
  for (const auto& [dst, port] :
       {std::pair<std::string, uint16_t>{"fd00:10:96::99", 53}, {kVip6, 54}}) {
    const auto in = udp6Fragments(kClient6, 40000, dst, port, 0x6000 + port);
    for (size_t i = 0; i < in.size(); ++i) {
      auto r = runTc(in[i]);
      ASSERT_EQ(r.err, 0);
      EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_UNSPEC));
      EXPECT_EQ(r.out, in[i]) << dst << " port " << port << " fragment " << i;
    }
  }
  EXPECT_EQ(noFirst(), 0u);
  // A Service that appears between a datagram's first fragment and the
  // rest: a later fragment never makes a flow.
  const auto in = udp6Fragments(kClient6, 40000, "fd00:10:96::50", 53, 0x7000);
  EXPECT_EQ(runTc(in[0]).out, in[0]);
  putService("fd00:10:96::50", 53, kUdp, 9, {{kBe1, 53}}, 1, 0, 200);
  EXPECT_EQ(runTc(in[1]).out, in[1]);
  EXPECT_EQ(runTc(in[2]).out, in[2]);
  EXPECT_EQ(dp().conntrack6().count(), 0u);
  // A fragment of something else than TCP/UDP (ICMPv6) is not ours.
  Frame6 echo;
  echo.proto = testlib::kNextIcmp6;
  echo.dst = kVip6;
  echo.payload = 3000;
  for (const Bytes& f : testlib::fragment6(echo.build(), 1232, 0x7100)) EXPECT_EQ(runTc(f).out, f);
  EXPECT_EQ(noFirst(), 0u);
  EXPECT_EQ(allDrops().packets, 0u);
}

TEST_F(V6Frag, TcpFirstFragmentIsTranslated) {
  Frame6 f;
  f.sport = 40100;
  f.ext = {{testlib::kNextFragment, 8}};
  f.fragMore = true;
  f.fragId = 0x4242;
  f.payload = 64;
  putService(kVip6, 80, kTcp, 7, {{kBe1, 8080}}, 1, 0, 300);
  const Bytes in = f.build();
  auto r = runTc(in);
  ASSERT_EQ(r.err, 0);
  EXPECT_TRUE(onlyNat6Changed(in, r.out, true));
  EXPECT_EQ(testlib::ip6str(parse6(r.out)->daddr), kBe1);
}

}  // namespace
}  // namespace svclb::bpftest
