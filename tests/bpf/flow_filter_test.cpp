// flow_filter_v1 (svclb_abi.h, loader/flow_filter.h): a backend's answer to
// a client tuple no CT entry has passes without the conntrack lookups; the
// packet path sets a new flow's slot before its entries go in, and the
// daemon's rebuild keeps the slots of live entries only. Each case checks
// what the packets show, not only the slots: an answer whose slot is clear
// is not translated even if a (hand-written) entry would match it.
#include <arpa/inet.h>

#include <set>

#include "tests/bpf/bpf_fixture.h"

namespace svclb::bpftest {
namespace {

using testlib::ip4;
using testlib::kTcpAck;
using testlib::kTcpSyn;

const std::string kBe = "10.244.1.11";

class FlowFilterTest : public BpfTestP<Prog> {
 protected:
  Prog prog() const { return GetParam(); }
  FlowFilter& ff() { return dp().flowFilter(); }
  uint32_t now() {
    auto j = dp().jiffies();
    EXPECT_TRUE(j.ok());
    return j ? static_cast<uint32_t>(*j >> CT_TICK_SHIFT) : 0;
  }
  bool slot(const std::string& addr, uint16_t port) {
    return ff().test(htonl(ip4(addr)), htons(port));
  }
  // A pair's REPLY entry written by hand (as a restart or an older build
  // could leave it): kBe:8080 -> kClient:cport answers for kVip:80.
  void handReply(uint16_t cport, uint32_t lastSeen) {
    ct_key k{};
    k.saddr = htonl(ip4(kBe)), k.daddr = htonl(ip4(kClient));
    k.sport = htons(8080), k.dport = htons(cport), k.proto = kTcp;
    ct_value v{};
    v.dir = CT_DIR_REPLY;
    v.nat_addr = htonl(ip4(kVip)), v.nat_port = htons(80);
    v.backend_id = backendId({ip4(kVip), 80, kTcp}, ip4(kBe), 8080);
    v.svc_id = svcId({ip4(kVip), 80, kTcp});
    v.last_seen = lastSeen;
    ASSERT_TRUE(dp().conntrack().update(k, v).ok());
  }
  // A single-entry flow's FORWARD entry written by hand (its slot left
  // clear): kClient:cport -> kVip:80 sent to kBe:8080.
  void handForward(uint16_t cport) {
    const FrontendKey web{ip4(kVip), 80, kTcp};
    ct_key k{};
    k.saddr = htonl(ip4(kClient)), k.daddr = htonl(ip4(kVip));
    k.sport = htons(cport), k.dport = htons(80), k.proto = kTcp;
    ct_value v{};
    v.dir = CT_DIR_FORWARD;
    v.flags = CT_F_SINGLE;
    v.nat_addr = htonl(ip4(kBe)), v.nat_port = htons(8080);
    v.backend_id = backendId(web, ip4(kBe), 8080);
    v.svc_id = svcId(web);
    v.last_seen = now();
    ASSERT_TRUE(dp().conntrack().update(k, v).ok());
  }
  // The backend's answer to kClient:cport as it leaves the program.
  std::optional<FiveTuple> answer(uint16_t cport) {
    const Bytes in = PacketBuilder::tcp(kBe, 8080, kClient, cport, kTcpAck).payload(8).build();
    RunResult r = run(prog(), in);
    EXPECT_EQ(r.retval, retvalOf(prog(), r.out == in ? Verdict::Untouched : Verdict::Pass))
        << verdictName(prog(), r.retval);
    return testlib::fiveTuple(r.out);
  }
  const FiveTuple fromVip(uint16_t cport) { return {ip4(kVip), ip4(kClient), 80, cport, kTcp}; }
  const FiveTuple fromBe(uint16_t cport) { return {ip4(kBe), ip4(kClient), 8080, cport, kTcp}; }
};

// The fixture starts valid and empty: an entry that bypassed the packet
// path is not seen until a rebuild finds it.
TEST_P(FlowFilterTest, AnAnswerWithoutASlotSkipsTheLookupsUntilARebuildFindsItsEntry) {
  ASSERT_TRUE(sync(standardFrontends()));
  ASSERT_TRUE(ff().stats().valid);
  handReply(42000, now());
  ASSERT_FALSE(slot(kClient, 42000));
  auto a = answer(42000);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, fromBe(42000)) << "the answer was looked up although its slot is clear";

  // Each rebuild makes the other map current: both read as the daemon
  // wrote them.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(ff().rebuild(std::chrono::milliseconds(0)).ok());
    EXPECT_TRUE(slot(kClient, 42000));
    a = answer(42000);
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, fromVip(42000)) << "rebuild " << i << ": " << toString(*a);
  }
  // A new flow's slot is in both maps: still set after the next rebuild
  // dropped the hand-written flow's (its REPLY entry and the FORWARD entry
  // the answers' relink put back).
  ASSERT_TRUE(
      dp().conntrack()
          .erase(ct_key{htonl(ip4(kBe)), htonl(ip4(kClient)), htons(8080), htons(42000), kTcp, {}})
          .ok());
  ASSERT_TRUE(
      dp().conntrack()
          .erase(ct_key{htonl(ip4(kClient)), htonl(ip4(kVip)), htons(42000), htons(80), kTcp, {}})
          .ok());
  ASSERT_EQ(ctEntries(), 0u);
  RunResult r = run(prog(), PacketBuilder::tcp(kClient, 42002, kVip, 80).build());
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  EXPECT_TRUE(slot(kClient, 42002));
  ASSERT_TRUE(ff().rebuild(std::chrono::milliseconds(0)).ok());
  EXPECT_TRUE(slot(kClient, 42002));
  EXPECT_FALSE(slot(kClient, 42000));
}

// A bare SYN from a client tuple whose slot is clear takes no CT lookup
// (lb4_decide): an entry that bypassed the packet path is not seen, the SYN
// is a new flow; once a rebuild set the slot, a SYN on such a tuple finds
// its entry (a tracked flow, not balanced anew).
TEST_P(FlowFilterTest, ASynWithoutASlotIsANewFlowWithoutLookups) {
  ASSERT_TRUE(sync(standardFrontends()));
  const FrontendKey web{ip4(kVip), 80, kTcp};
  handForward(42060);
  ASSERT_FALSE(slot(kClient, 42060));
  const uint64_t flows = svcStats(web).flows;
  RunResult r = run(prog(), PacketBuilder::tcp(kClient, 42060, kVip, 80).build());
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  EXPECT_EQ(svcStats(web).flows, flows + 1) << "the SYN was looked up although its slot is clear";
  EXPECT_TRUE(slot(kClient, 42060));

  handForward(42061);
  ASSERT_FALSE(slot(kClient, 42061));
  ASSERT_TRUE(ff().rebuild(std::chrono::milliseconds(0)).ok());
  ASSERT_TRUE(slot(kClient, 42061));
  r = run(prog(), PacketBuilder::tcp(kClient, 42061, kVip, 80).build());
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->daddr, ip4(kBe));
  EXPECT_EQ(svcStats(web).flows, flows + 1) << "the SYN of a tracked tuple was balanced anew";

  // Invalid (a daemon starting): every SYN is looked up.
  handForward(42062);
  ff().invalidate();
  r = run(prog(), PacketBuilder::tcp(kClient, 42062, kVip, 80).build());
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  EXPECT_EQ(svcStats(web).flows, flows + 1)
      << "a SYN skipped its lookup while the filter was invalid";
}

// A client port used again after its earlier flow died: that flow's
// ct_est_v2 entry (closing, idle past its lifetime; a rebuild dropped its
// slot) is still in the map, and the new SYN, whose slot is clear, makes
// its single entry in ct_v2 without a lookup (that lookup used to delete the
// dead entry). The backend's SYN-ACK must find the new entry, not the dead
// one to the same backend: bench/compare's second round of TCP connections
// (the first round's client ports again) lost some of them that way.
TEST_P(FlowFilterTest, ADeadEstablishedEntryDoesNotHideANewSingleFlowFromItsAnswers) {
  ASSERT_TRUE(sync(standardFrontends()));
  const std::string vip = "10.96.0.11", be = "10.244.1.31";  // "tls": one backend
  const FrontendKey tls{ip4(vip), 443, kTcp};
  const FiveTuple toBe{ip4(kClient), ip4(be), 42080, 443, kTcp};
  const FiveTuple fromTlsVip{ip4(vip), ip4(kClient), 443, 42080, kTcp};
  ct_key k{};
  k.saddr = htonl(ip4(kClient)), k.daddr = htonl(ip4(vip));
  k.sport = htons(42080), k.dport = htons(443), k.proto = kTcp;
  ct_value dead{};
  dead.dir = CT_DIR_FORWARD;
  dead.flags = CT_F_SINGLE | CT_F_CLOSING;
  dead.nat_addr = htonl(ip4(be)), dead.nat_port = htons(443);
  dead.backend_id = backendId(tls, ip4(be), 443);
  dead.svc_id = svcId(tls);
  dead.last_seen = now() - dp().ctLifetimes().closing - 4;
  ASSERT_TRUE(dp().conntrackEst().update(k, dead).ok());
  ASSERT_TRUE(ff().rebuild(std::chrono::milliseconds(0)).ok());
  ASSERT_FALSE(slot(kClient, 42080));

  RunResult r = run(prog(), PacketBuilder::tcp(kClient, 42080, vip, 443).build());
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  ASSERT_EQ(*t, toBe) << toString(*t);
  r = run(prog(), PacketBuilder::tcp(be, 443, kClient, 42080, kTcpSyn | kTcpAck).build());
  t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, fromTlsVip) << "the SYN-ACK found the dead entry: " << toString(*t);
  // The client's ACK promotes the flow over the dead entry.
  r = run(prog(), PacketBuilder::tcp(kClient, 42080, vip, 443, kTcpAck).build());
  t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, toBe) << toString(*t);
  auto est = dp().conntrackEst().lookup(k);
  ASSERT_TRUE(est);
  EXPECT_FALSE(est->flags & CT_F_CLOSING);
  EXPECT_LE(now() - est->last_seen, 1u) << "the new flow's entry, not the dead one";
  r = run(prog(), PacketBuilder::tcp(be, 443, kClient, 42080, kTcpAck).build());
  t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, fromTlsVip) << toString(*t);
}

// Invalid (a daemon starting): every answer takes the full path.
TEST_P(FlowFilterTest, WhileInvalidEveryAnswerIsLookedUp) {
  ASSERT_TRUE(sync(standardFrontends()));
  handReply(42001, now());
  ff().invalidate();
  EXPECT_FALSE(ff().stats().valid);
  auto a = answer(42001);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, fromVip(42001)) << toString(*a);
}

// A new flow's client slot is set by the program that creates it: its
// answers are translated without any rebuild, in pair and single layouts.
TEST_P(FlowFilterTest, ANewFlowSetsItsSlotBeforeItsEntries) {
  ASSERT_TRUE(sync(standardFrontends()));
  for (uint16_t cport = 42010; cport < 42030; ++cport) {
    ASSERT_FALSE(slot(kClient, cport));
    RunResult r = run(prog(), PacketBuilder::tcp(kClient, cport, kVip, 80).build());
    ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
    auto t = testlib::fiveTuple(r.out);
    ASSERT_TRUE(t);
    EXPECT_TRUE(slot(kClient, cport));
    RunResult s = run(prog(), PacketBuilder::tcp(testlib::ip4str(t->daddr), t->dport, kClient,
                                                 cport, kTcpSyn | kTcpAck)
                                  .build());
    auto st = testlib::fiveTuple(s.out);
    ASSERT_TRUE(st);
    EXPECT_EQ(*st, fromVip(cport)) << toString(*st);
  }
}

// A rebuild keeps the slots of live entries and drops those of entries
// idle past their lifetime (which the packet path ignores anyway).
TEST_P(FlowFilterTest, ARebuildDropsTheSlotsOfIdleEntries) {
  ASSERT_TRUE(sync(standardFrontends()));
  const uint32_t t = now();
  handReply(42040, t);
  handReply(42041, t - dp().ctLifetimes().tcp - 4);
  ASSERT_TRUE(ff().rebuild(std::chrono::milliseconds(0)).ok());
  EXPECT_TRUE(slot(kClient, 42040));
  EXPECT_FALSE(slot(kClient, 42041));
  // Only the client side, as the packet path: the backend's own
  // {address, port} (the REPLY key's source) stays clear.
  EXPECT_FALSE(slot(kBe, 8080));
  EXPECT_GT(ff().stats().rebuilds, 0u);
  EXPECT_EQ(ff().stats().lastEntries, 2u);
  EXPECT_GT(ff().fill(), 0.0);
  EXPECT_LT(ff().fill(), 0.001);
}

// A source-NATed flow's FORWARD entry alone (its REPLY evicted) still
// names the SNAT address and port: the rebuild keeps that slot, so the
// REPLY entry the next client packet puts back gets its answers.
TEST_P(FlowFilterTest, ARebuildKeepsTheSnatSlotOfAForwardEntry) {
  ASSERT_TRUE(sync(standardFrontends()));
  ct_key k{};
  k.saddr = htonl(ip4(kClient)), k.daddr = htonl(ip4(kVip));
  k.sport = htons(42050), k.dport = htons(80), k.proto = kTcp;
  ct_value v{};
  v.dir = CT_DIR_FORWARD;
  v.flags = CT_F_SNAT;
  v.nat_addr = htonl(ip4(kBe)), v.nat_port = htons(8080);
  v.snat_addr = htonl(ip4("10.0.0.1")), v.snat_port = htons(61000);
  v.last_seen = now();
  ASSERT_TRUE(dp().conntrack().update(k, v).ok());
  ASSERT_TRUE(ff().rebuild(std::chrono::milliseconds(0)).ok());
  EXPECT_TRUE(slot("10.0.0.1", 61000));
  EXPECT_TRUE(slot(kClient, 42050));
  EXPECT_FALSE(slot(kVip, 80)) << "a FORWARD key's destination (the frontend) got a slot";
}

// The slot layout (svclb_abi.h): a run of SVCLB_FLOWF_RUN consecutive ports
// of one address lies in one 64-byte line of the interleaved maps (the
// packet path's flowf_set then finds a client's next connection's line in
// the cache); slots stay distinct and spread over the whole filter.
TEST(FlowFilterSlot, ARunOfConsecutivePortsSharesOneCacheLine) {
  const uint32_t fold = htonl(0x0af40105);  // 10.244.1.5
  for (uint32_t base = 32768; base < 32768 + 4 * SVCLB_FLOWF_RUN; base += SVCLB_FLOWF_RUN) {
    const uint32_t first = FlowFilter::slotOf(fold, htons(static_cast<uint16_t>(base)));
    EXPECT_EQ(first % SVCLB_FLOWF_RUN, 0u);
    for (uint32_t i = 0; i < SVCLB_FLOWF_RUN; ++i) {
      const uint32_t s = FlowFilter::slotOf(fold, htons(static_cast<uint16_t>(base + i)));
      EXPECT_EQ(s, first + i) << "port " << base + i;
      EXPECT_EQ(2 * s / 64, 2 * first / 64) << "port " << base + i << " left the run's line";
    }
  }
  // The next run, and the same ports of another address: other lines.
  const uint32_t a = FlowFilter::slotOf(fold, htons(40000));
  EXPECT_NE(FlowFilter::slotOf(fold, htons(40000 + SVCLB_FLOWF_RUN)) / SVCLB_FLOWF_RUN,
            a / SVCLB_FLOWF_RUN);
  EXPECT_NE(FlowFilter::slotOf(htonl(0x0af40106), htons(40000)) / SVCLB_FLOWF_RUN,
            a / SVCLB_FLOWF_RUN);
  // Every address's 65,536 ports over 2,048 lines of the filter, spread.
  std::set<uint32_t> lines;
  for (uint32_t p = 0; p < 65536; p += SVCLB_FLOWF_RUN)
    lines.insert(FlowFilter::slotOf(fold, htons(static_cast<uint16_t>(p))) / SVCLB_FLOWF_RUN);
  EXPECT_GT(lines.size(), 1900u);
}

INSTANTIATE_TEST_SUITE_P(Ct, FlowFilterTest, ::testing::Values(Prog::Tc, Prog::Xdp),
                         [](const auto& i) { return std::string(progName(i.param)); });

}  // namespace
}  // namespace svclb::bpftest
