// writeOrder (loader/reconcile.h): the order Syncer::execute writes a plan
// in, regrouped for batch updates. Plans are replayed op by op, in that
// order, on maps faked in memory; after every write no master may count a
// slot that is missing or names a missing backend (or another frontend's).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>

#include "loader/reconcile.h"
#include "tests/unit/fake_maps.h"

namespace svclb {
namespace {

struct OrderMaps : fakes::FakeMaps {
  // "" when every master's slots 1..total exist and name live backends of
  // the same frontend.
  std::string broken() const {
    for (const auto& [k, m] : svc) {
      if (k.slot != 0) continue;
      for (uint16_t s = 1; s <= m.total; ++s) {
        svc_key sk = k;
        sk.slot = s;
        auto it = svc.find(sk);
        if (it == svc.end()) return "missing slot " + std::to_string(s);
        if (it->second.svc_id != m.svc_id) return "slot of another frontend";
        auto b = backends.find(it->second.backend_id);
        if (b == backends.end() || b->second.state == BE_STATE_EMPTY)
          return "slot names a missing backend";
        if (b->second.svc_id != m.svc_id) return "slot names another frontend's backend";
      }
    }
    return "";
  }
};

Frontend fe(uint32_t n, std::vector<std::pair<uint32_t, EndpointState>> eps) {
  Frontend f;
  f.key = {0x0a600000u + n, 80, 6};
  f.ns = "bench";
  f.name = "s" + std::to_string(n);
  for (auto [ip, st] : eps) {
    BackendSpec b;
    b.ip = ip;
    b.port = 8080;
    b.state = st;
    b.serving = true;
    f.backends.push_back(b);
  }
  std::sort(f.backends.begin(), f.backends.end(),
            [](const BackendSpec& a, const BackendSpec& b) { return a.ip < b.ip; });
  return f;
}

// Replays `plan` in writeOrder on `maps`, checking after every write.
void replay(const Plan& plan, OrderMaps& maps) {
  const auto order = writeOrder(plan.ops);
  ASSERT_EQ(order.size(), plan.ops.size());
  std::vector<size_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(sorted[i], i) << "not a permutation";
  for (size_t i : order) {
    maps.apply(plan.ops[i]);
    const std::string b = maps.broken();
    ASSERT_EQ(b, "") << "after op " << i;
  }
}

TEST(ReconcileWriteOrder, RandomPlansNeverExposeAHalfWrittenFrontend) {
  std::mt19937 rng(11);
  ActualState actual;
  actual.svcIds = IdPool(4096);
  actual.backendIds = IdPool(2048);  // small: ids are reused across rounds
  OrderMaps maps;
  for (int round = 0; round < 40; ++round) {
    std::vector<Frontend> want;
    for (uint32_t n = 0; n < 60; ++n) {
      if (rng() % 4 == 0) continue;  // absent this round (removed / not yet added)
      std::vector<std::pair<uint32_t, EndpointState>> eps;
      const int count = static_cast<int>(rng() % 12);
      for (int e = 0; e < count; ++e) {
        const uint32_t ip = 0x0afb0000u + static_cast<uint32_t>(rng() % 16);
        const auto st = rng() % 5 == 0 ? EndpointState::Terminating : EndpointState::Ready;
        if (std::none_of(eps.begin(), eps.end(), [&](auto& p) { return p.first == ip; }))
          eps.push_back({ip, st});
      }
      want.push_back(fe(n, eps));
    }
    auto plan = planSync(actual, want);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    replay(*plan, maps);
    std::move(*plan).mergeInto(actual);
  }
}

TEST(ReconcileWriteOrder, NewFrontendsBecomeFiveGroups) {
  ActualState actual;
  actual.svcIds = IdPool(1 << 16);
  actual.backendIds = IdPool(1 << 16);
  std::vector<Frontend> want;
  for (uint32_t n = 0; n < 500; ++n) {
    std::vector<std::pair<uint32_t, EndpointState>> eps;
    for (uint32_t e = 0; e < 10; ++e) eps.push_back({0x0afb000bu + e, EndpointState::Ready});
    want.push_back(fe(n, eps));
  }
  auto plan = planSync(actual, want);
  ASSERT_TRUE(plan.ok());
  const auto order = writeOrder(plan->ops);
  int groups = 0, last = -1;
  for (size_t i : order) {
    ASSERT_TRUE(batchable(plan->ops[i]));
    const int g = static_cast<int>(*batchGroup(plan->ops[i]));
    EXPECT_GE(g, last);  // never back to an earlier group
    if (g != last) ++groups;
    last = g;
  }
  EXPECT_EQ(groups, 5);
  OrderMaps maps;
  replay(*plan, maps);
}

}  // namespace
}  // namespace svclb
