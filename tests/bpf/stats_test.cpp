// Counters and drops through both programs: per-service and per-backend
// packets/bytes/flows and reply_*; a service without endpoints drops and
// counts the reason; new flows are spread over the backends.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "loader/metrics.h"
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

// A Service's counts are its backends' plus its own svc_stats_v2
// (svclb_abi.h lb_stats): an endpoint removed (freed at once: UDP) takes its
// counts with it into the Service's, as svcctl stats and /metrics show them
// (collectCounters), and its id's slots are free again (owner 0).
TEST_P(Stats, AServiceKeepsTheCountsOfAnEndpointItLost) {
  const FrontendKey dns{ip4(kVip), 53, kUdp};
  std::map<uint32_t, uint64_t> perBackend;
  for (uint16_t sport = 30000; sport < 30040; ++sport) {
    RunResult r = run(prog(), PacketBuilder::udp(kClient, sport, kVip, 53).build());
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
    auto t = testlib::fiveTuple(r.out);
    ASSERT_TRUE(t);
    ++perBackend[backendId(dns, t->daddr, 5353)];
  }
  ASSERT_EQ(perBackend.size(), 2u) << "40 flows over two endpoints";
  const Counters before = counters(svcStats(dns));
  ASSERT_EQ(before.flows, 40u);
  const uint32_t gone = backendId(dns, ip4("10.244.1.12"), 5353);
  ASSERT_GT(counters(backendStats(gone)).flows, 0u);

  auto fs = standardFrontends();
  for (auto& f : fs)
    if (f.key == dns) f.backends = {backend("10.244.1.11:5353")};
  ASSERT_TRUE(sync(fs));
  EXPECT_EQ(backendId(dns, ip4("10.244.1.12"), 5353), 0u);
  EXPECT_EQ(dp().backendStats().owner(gone), 0u) << "its CT entries are no longer valid";
  EXPECT_EQ(counters(backendStats(gone)), Counters{});
  EXPECT_EQ(counters(svcStats(dns)), before);

  // The daemon's view (svcctl stats, /metrics): the same totals, and one
  // endpoint left with its own counts.
  const CounterSnapshot snap = collectCounters(dp(), syncer(), LruCounts{});
  bool found = false;
  for (const auto& f : snap.frontends) {
    if (!(f.key == dns)) continue;
    found = true;
    EXPECT_EQ(f.traffic.flows, before.flows);
    EXPECT_EQ(f.traffic.packets, before.packets);
    ASSERT_EQ(f.backends.size(), 1u);
    EXPECT_EQ(f.backends[0].traffic.flows, perBackend[backendId(dns, ip4("10.244.1.11"), 5353)]);
  }
  EXPECT_TRUE(found);

  // The Service's next flows add to what it had.
  RunResult r = run(prog(), PacketBuilder::udp(kClient, 31000, kVip, 53).build());
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(counters(svcStats(dns)).flows, before.flows + 1);
}

// A new build's be_stats_v2 beside pins an earlier build left (no
// be_stats_v2 yet: Dataplane::adoptBackendSlots): every live backend gets
// its owner before a program of the new build runs, so established flows
// stay on their backend, and its be_stats_v1 counts are carried over.
TEST(StatsUpgrade, BackendSlotsAreAdoptedFromAnEarlierBuildsPins) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  char tmpl[] = "/sys/fs/bpf/svclb-test-upgrade-XXXXXX";  // bpffs: no dot in a name
  ASSERT_NE(mkdtemp(tmpl), nullptr) << "bpffs at /sys/fs/bpf";
  const std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};
  DataplaneConfig cfg = BpfEnv::smallConfig();
  cfg.pin = true;
  cfg.bpffs = dir;
  uint32_t svcId = 0, beId = 0;
  std::string be;
  const Bytes syn = PacketBuilder::tcp(kClient, 40000, kVip, 80).build();
  const Bytes ack = PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpAck).build();
  {
    auto dp = Dataplane::load(cfg);
    ASSERT_TRUE(dp) << dp.error().message;
    Syncer syncer(**dp, SyncOptions{});
    auto plan = syncer.plan(standardFrontends());
    ASSERT_TRUE(plan) << plan.error().message;
    ASSERT_TRUE(syncer.apply(std::move(*plan)));
    RunResult r = testRun((*dp)->tcProgFd(), syn);
    ASSERT_EQ(r.err, 0);
    auto t = testlib::fiveTuple(r.out);
    ASSERT_TRUE(t);
    be = ip4str(t->daddr);
    const FrontendKey web{ip4(kVip), 80, kTcp};
    const auto& f = syncer.actual().frontends.at(web);
    svcId = f.svcId;
    for (const auto& b : f.backends)
      if (b.value.addr == htonl(t->daddr)) beId = b.id;
    ASSERT_NE(beId, 0u);
  }
  // As an earlier build left it: no be_stats_v2; its counts in a per-CPU
  // be_stats_v1.
  ASSERT_EQ(::unlink((dir + "/" SVCLB_MAP_BE_STATS).c_str()), 0);
  const int ncpu = possibleCpus();
  int old = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "be_stats_v1", 4, sizeof(lb_stats),
                           cfg.maxBackends, nullptr);
  ASSERT_GE(old, 0);
  std::vector<lb_stats> vals(ncpu);
  vals[0].packets = 7;
  vals[0].flows = 1;
  ASSERT_EQ(bpf_map_update_elem(old, &beId, vals.data(), BPF_ANY), 0);
  ASSERT_EQ(bpf_obj_pin(old, (dir + "/be_stats_v1").c_str()), 0);
  close(old);

  auto dp = Dataplane::load(cfg);
  ASSERT_TRUE(dp) << dp.error().message;
  EXPECT_EQ((*dp)->backendStats().owner(beId), svcId);
  EXPECT_FALSE(std::filesystem::exists(dir + "/be_stats_v1")) << "a retired pin";
  // The flow's next packet is a CT hit on its backend (no new flow).
  RunResult r = testRun((*dp)->tcProgFd(), ack);
  ASSERT_EQ(r.err, 0);
  auto t = testlib::fiveTuple(r.out);
  ASSERT_TRUE(t);
  EXPECT_EQ(ip4str(t->daddr), be);
  const lb_stats s = sumStats((*dp)->backendStats().lookup(beId));
  EXPECT_EQ(s.packets, 8u);
  EXPECT_EQ(s.flows, 1u) << "the ACK was taken for a new flow";
}

INSTANTIATE_TEST_SUITE_P(Count, Stats, ::testing::Values(Prog::Tc, Prog::Xdp),
                         [](const auto& info) { return progName(info.param); });

}  // namespace
}  // namespace svclb::bpftest
