// Counters and drops through both programs: per-service and per-backend
// packets/bytes/flows and reply_*; a service without endpoints drops and
// counts the reason; new flows are spread over the backends.
#include <map>

#include "tests/bpf/bpf_fixture.h"

namespace svclb::bpftest {
namespace {

using testlib::ip4;
using testlib::ip4str;
using testlib::kTcpAck;

const FrontendKey kWeb{ip4(kVip), 80, kTcp};

class Stats : public BpfTestP<Prog> {
 protected:
  void SetUp() override {
    BpfTestP<Prog>::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(sync(standardFrontends()));
  }
  Prog prog() const { return GetParam(); }
};

TEST_P(Stats, OneFlowTenPacketsAndReplies) {
  uint64_t bytes = 0, replyBytes = 0;
  std::string be;
  for (int i = 0; i < 10; ++i) {
    auto b = i == 0 ? PacketBuilder::tcp(kClient, 40000, kVip, 80)
                    : PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpAck).payload(i * 7);
    const Bytes in = b.build();
    bytes += in.size() - 14;
    RunResult r = run(prog(), in);
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
    auto t = testlib::fiveTuple(r.out);
    ASSERT_TRUE(t);
    if (be.empty()) be = ip4str(t->daddr);
    EXPECT_EQ(ip4str(t->daddr), be);
  }
  for (int i = 0; i < 4; ++i) {
    const Bytes in = PacketBuilder::tcp(be, 8080, kClient, 40000, kTcpAck).payload(100 + i).build();
    replyBytes += in.size() - 14;
    RunResult r = run(prog(), in);
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
    EXPECT_TRUE(onlyNatFieldsChanged(in, r.out, false));
  }
  const Counters want{10, bytes, 4, replyBytes, 1};
  EXPECT_EQ(counters(svcStats(kWeb)), want);
  const uint32_t id = backendId(kWeb, ip4(be), 8080);
  EXPECT_EQ(counters(backendStats(id)), want);
  const std::string other = be == "10.244.1.11" ? "10.244.1.12" : "10.244.1.11";
  EXPECT_EQ(counters(backendStats(backendId(kWeb, ip4(other), 8080))), Counters{});
  // Other services saw nothing.
  for (const auto& f : standardFrontends()) {
    if (f.key == kWeb) continue;
    EXPECT_EQ(counters(svcStats(f.key)), Counters{}) << f.name;
  }
  EXPECT_EQ(allDrops().packets, 0u);
}

TEST_P(Stats, EndpointsAddedLaterAreUsed) {
  const Bytes in = PacketBuilder::tcp(kClient, 40000, "10.96.0.13", 80).build();
  ASSERT_EQ(run(prog(), in).retval, retvalOf(prog(), Verdict::Reject));
  auto fs = standardFrontends();
  fs[4] = frontend("10.96.0.13", 80, kTcp, {backend("10.244.1.61:8000")}, "empty");
  ASSERT_TRUE(sync(fs));
  RunResult r = run(prog(), in);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  EXPECT_TRUE(onlyNatFieldsChanged(in, r.out, true));
  EXPECT_EQ(testlib::fiveTuple(r.out)->daddr, ip4("10.244.1.61"));
  EXPECT_EQ(counters(svcStats(fs[4].key)), (Counters{1, 40, 0, 0, 1, 1}));
  EXPECT_EQ(allDrops().packets, 0u);
}

TEST_P(Stats, NewFlowsAreSpreadOverBackends) {
  std::map<std::string, int> hits;
  for (uint16_t sport = 20000; sport < 20200; ++sport) {
    RunResult r = run(prog(), PacketBuilder::tcp(kClient, sport, kVip, 80).build());
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
    auto t = testlib::fiveTuple(r.out);
    ASSERT_TRUE(t);
    ++hits[ip4str(t->daddr) + ":" + std::to_string(t->dport)];
  }
  EXPECT_EQ(hits.size(), 2u);
  EXPECT_GE(hits["10.244.1.11:8080"], 40);
  EXPECT_GE(hits["10.244.1.12:8080"], 40);
  EXPECT_EQ(counters(svcStats(kWeb)), (Counters{200, 200 * 40, 0, 0, 200}));
  for (const auto& [addr, n] : hits) {
    auto b = backend(addr);
    EXPECT_EQ(counters(backendStats(backendId(kWeb, b.ip, b.port))),
              (Counters{uint64_t(n), uint64_t(n) * 40, 0, 0, uint64_t(n)}))
        << addr;
  }
  EXPECT_EQ(ctEntries(), 200u);  // one single entry per flow (tcp-web is designated)
}

INSTANTIATE_TEST_SUITE_P(Count, Stats, ::testing::Values(Prog::Tc, Prog::Xdp),
                         [](const auto& info) { return progName(info.param); });

}  // namespace
}  // namespace svclb::bpftest
