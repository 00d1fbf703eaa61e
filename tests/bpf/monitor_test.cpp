// svcctl monitor's events (bpf/lib/monitor.h): the packet programs write a
// mon_event into the mon_events ring buffer for a drop (lb_exit) and for a
// reject, only while the daemon's switch is on, within the per-CPU token
// bucket; read here through libbpf's ring_buffer API as the daemon reads it.
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <sched.h>

#include <cstring>

#include "tests/bpf/bpf_fixture.h"

namespace svclb::bpftest {
namespace {

using testlib::ip4;
using testlib::kTcpRst;

const std::string kEmptyVip = "10.96.0.13";  // standardFrontends(): no endpoints
const std::string kRangedVip = "10.96.0.20";
const std::string kAllowed = "10.244.2.0";  // /24: kClient is inside

class Monitor : public BpfTestP<Prog> {
 protected:
  void SetUp() override {
    BpfTestP<Prog>::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto fs = standardFrontends();
    Frontend ranged = frontend(kRangedVip, 80, kTcp, {backend("10.244.1.11:8080")}, "ranged");
    ranged.flags |= SVC_F_SRC_RANGES;
    ranged.sourceRanges = {{ip4(kAllowed), 24}};
    fs.push_back(ranged);
    ASSERT_TRUE(sync(fs));
    ring_ = ring_buffer__new(dp().monitorRingFd(), &Monitor::onEvent, this, nullptr);
    ASSERT_NE(ring_, nullptr) << "ring_buffer__new: " << std::strerror(errno);
  }
  void TearDown() override {
    if (ring_) ring_buffer__free(ring_);
  }
  static int onEvent(void* self, void* data, size_t size) {
    EXPECT_EQ(size, sizeof(mon_event));
    mon_event e{};
    std::memcpy(&e, data, std::min(size, sizeof(e)));
    static_cast<Monitor*>(self)->events_.push_back(e);
    return 0;
  }
  std::vector<mon_event> drain() {
    events_.clear();
    EXPECT_GE(ring_buffer__consume(ring_), 0);
    return events_;
  }
  uint64_t rateLimited() {
    uint64_t n = 0;
    for (const auto& s : dp().monitorState().lookup(0)) n += s.rate_limited;
    return n;
  }
  uint32_t hook() const { return GetParam() == Prog::Tc ? MON_HOOK_TC_POD : MON_HOOK_XDP; }

  Bytes rangedFromOutside() const {
    return PacketBuilder::tcp("192.168.9.9", 41000, kRangedVip, 80).build();
  }
  Bytes synToEmpty() const { return PacketBuilder::tcp(kClient, 40000, kEmptyVip, 80).build(); }

  ring_buffer* ring_ = nullptr;
  std::vector<mon_event> events_;
};

TEST_P(Monitor, NothingWhileNobodyWatches) {
  dp().setMonitor(false);
  EXPECT_EQ(run(GetParam(), rangedFromOutside()).retval, retvalOf(GetParam(), Verdict::Drop));
  EXPECT_EQ(run(GetParam(), synToEmpty()).retval, retvalOf(GetParam(), Verdict::Reject));
  EXPECT_EQ(drops(DROP_SOURCE_RANGE).packets, 1u) << "counted all the same";
  EXPECT_TRUE(drain().empty());
  EXPECT_EQ(rateLimited(), 0u) << "the token bucket is not even consulted";
}

TEST_P(Monitor, DropEventCarriesReasonTupleAndService) {
  dp().setMonitor(true);
  ASSERT_EQ(run(GetParam(), rangedFromOutside()).retval, retvalOf(GetParam(), Verdict::Drop));
  auto ev = drain();
  ASSERT_EQ(ev.size(), 1u);
  const mon_event& e = ev[0];
  EXPECT_EQ(e.type, MON_EV_DROP);
  EXPECT_EQ(e.reason, DROP_SOURCE_RANGE);
  EXPECT_EQ(e.proto, kTcp);
  EXPECT_EQ(e.hook, hook());
  EXPECT_EQ(ntohl(e.saddr), ip4("192.168.9.9"));
  EXPECT_EQ(ntohl(e.daddr), ip4(kRangedVip));
  EXPECT_EQ(ntohs(e.sport), 41000);
  EXPECT_EQ(ntohs(e.dport), 80);
  EXPECT_EQ(e.svc_id, svcId({ip4(kRangedVip), 80, kTcp}));
  EXPECT_NE(e.svc_id, 0u);
  EXPECT_NE(e.ts_ns, 0u);
}

TEST_P(Monitor, RejectEventNamesTheServiceWithoutEndpoints) {
  dp().setMonitor(true);
  ASSERT_EQ(run(GetParam(), synToEmpty()).retval, retvalOf(GetParam(), Verdict::Reject));
  // A RST to it is never answered: a drop (no_backend), not a reject.
  ASSERT_EQ(
      run(GetParam(), PacketBuilder::tcp(kClient, 40000, kEmptyVip, 80, kTcpRst).build()).retval,
      retvalOf(GetParam(), Verdict::Drop));
  auto ev = drain();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].type, MON_EV_REJECT);
  EXPECT_EQ(ev[0].reason, DROP_NO_BACKEND);
  EXPECT_EQ(ntohl(ev[0].saddr), ip4(kClient));
  EXPECT_EQ(ntohl(ev[0].daddr), ip4(kEmptyVip));
  EXPECT_EQ(ntohs(ev[0].dport), 80);
  EXPECT_EQ(ev[0].svc_id, svcId({ip4(kEmptyVip), 80, kTcp}));
  EXPECT_EQ(ev[0].hook, hook());
  EXPECT_EQ(ev[1].type, MON_EV_DROP);
  EXPECT_EQ(ev[1].reason, DROP_NO_BACKEND);
  EXPECT_EQ(ev[1].svc_id, ev[0].svc_id);
}

TEST_P(Monitor, TranslatedPacketsWriteNothing) {
  dp().setMonitor(true);
  EXPECT_EQ(run(GetParam(), PacketBuilder::tcp(kClient, 40000, kVip, 80).build()).retval,
            retvalOf(GetParam(), Verdict::Pass));
  const Bytes inside = PacketBuilder::tcp(kClient, 40001, kRangedVip, 80).build();
  EXPECT_EQ(run(GetParam(), inside).retval, retvalOf(GetParam(), Verdict::Pass));
  EXPECT_TRUE(drain().empty());
}

TEST_P(Monitor, RateLimitCapsEventsAndCountsTheRest) {
  // One CPU: the buckets are per CPU.
  cpu_set_t old, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof(old), &old), 0);
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  ASSERT_TRUE(dp().setMonitorRate(5));
  dp().setMonitor(true);
  constexpr int kPackets = 40;
  for (int i = 0; i < kPackets; ++i)
    ASSERT_EQ(run(GetParam(), rangedFromOutside()).retval, retvalOf(GetParam(), Verdict::Drop));
  sched_setaffinity(0, sizeof(old), &old);
  const auto ev = drain();
  // A full bucket (5) plus what refilled at 5/s while the loop ran (well
  // under a second here; generous bound for a slow machine).
  EXPECT_GE(ev.size(), 5u);
  EXPECT_LE(ev.size(), 7u);
  EXPECT_EQ(ev.size() + rateLimited(), static_cast<uint64_t>(kPackets))
      << "every event is written or counted as lost";
  EXPECT_EQ(drops(DROP_SOURCE_RANGE).packets, static_cast<uint64_t>(kPackets))
      << "the rate limit is on events, never on the drop counters";
}

TEST_P(Monitor, RateIsBounded) {
  EXPECT_FALSE(dp().setMonitorRate(0));
  EXPECT_FALSE(dp().setMonitorRate(2000000));
  EXPECT_TRUE(dp().setMonitorRate(MON_RATE_DEFAULT));
}

INSTANTIATE_TEST_SUITE_P(Events, Monitor, ::testing::Values(Prog::Tc, Prog::Xdp),
                         [](const auto& info) { return std::string(progName(info.param)); });

}  // namespace
}  // namespace svclb::bpftest
