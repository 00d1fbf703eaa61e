// Maglev in the reconcile plan: the table is written whole before the
// master that names it, holds exactly the backends that take new flows, and
// follows weights; switching away removes it after the master.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <variant>

#include "loader/reconcile.h"
#include "model/model.h"

namespace svclb {
namespace {

BackendSpec be(uint32_t ip, EndpointState st = EndpointState::Ready, bool serving = true,
               uint16_t weight = 1) {
  BackendSpec b;
  b.ip = ip;
  b.port = 8080;
  b.state = st;
  b.serving = serving;
  b.weight = weight;
  return b;
}

Frontend fe(std::vector<BackendSpec> bs, const char* algo = "maglev") {
  Frontend f;
  f.key = {0x0a60000a, 80, 6};
  f.ns = "default";
  f.name = "web";
  f.backends = std::move(bs);
  if (algo) f.annotations[kLbAlgorithmAnnotation] = algo;
  return f;
}

ActualState emptyState() {
  ActualState a;
  a.svcIds = IdPool(1024);
  a.backendIds = IdPool(1024);
  return a;
}

// Index of the first op of kind Op, -1 if none.
template <class Op>
int indexOf(const Plan& p) {
  for (size_t i = 0; i < p.ops.size(); ++i)
    if (std::holds_alternative<Op>(p.ops[i])) return int(i);
  return -1;
}

// Index of the first master write (PutSvc of slot 0), -1 if none.
int masterIndex(const Plan& p) {
  for (size_t i = 0; i < p.ops.size(); ++i)
    if (const auto* put = std::get_if<mapop::PutSvc>(&p.ops[i]); put && put->key.slot == 0)
      return int(i);
  return -1;
}

// The op at index i, of kind Op (fails the test by exception otherwise).
template <class Op>
const Op& opAt(const Plan& p, int i) {
  return std::get<Op>(p.ops.at(static_cast<size_t>(i)));
}

std::map<uint32_t, size_t> shares(const std::vector<uint32_t>& table) {
  std::map<uint32_t, size_t> m;
  for (uint32_t id : table) m[id]++;
  return m;
}

TEST(MaglevPlan, TableWrittenBeforeMasterAndCoversReadyBackends) {
  SyncOptions opts;
  opts.maglevSize = 251;
  auto plan = planSync(
      emptyState(),
      {fe({be(0x0af4010b), be(0x0af4010c), be(0x0af4010d, EndpointState::Terminating)})}, opts);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  int mag = indexOf<mapop::PutMaglev>(*plan);
  int master = masterIndex(*plan);
  ASSERT_GE(mag, 0);
  ASSERT_GE(master, 0);
  EXPECT_LT(mag, master);
  const auto& m = opAt<mapop::PutSvc>(*plan, master).value;
  EXPECT_EQ(m.algo, SVC_ALGO_MAGLEV);
  EXPECT_EQ(m.maglev_size, 251u);
  const auto& table = opAt<mapop::PutMaglev>(*plan, mag).table;
  ASSERT_EQ(table.size(), 251u);
  const auto& f = plan->next.frontends.begin()->second;
  auto s = shares(table);
  ASSERT_EQ(s.size(), 2u);  // the terminating backend takes no new flows
  for (const auto& b : f.backends) {
    if (b.value.state == BE_STATE_ACTIVE) {
      EXPECT_GT(s[b.id], 120u);
    }
  }
}

TEST(MaglevPlan, UnchangedWritesNothingRemovalRewritesTable) {
  SyncOptions opts;
  opts.maglevSize = 251;
  auto a = emptyState();
  auto p1 = planSync(a, {fe({be(1), be(2), be(3)})}, opts);
  ASSERT_TRUE(p1.ok());
  auto p2 = planSync(p1->next, {fe({be(1), be(2), be(3)})}, opts);
  ASSERT_TRUE(p2.ok());
  EXPECT_TRUE(p2->ops.empty());
  auto p3 = planSync(p1->next, {fe({be(1), be(3)})}, opts);
  ASSERT_TRUE(p3.ok());
  int mag = indexOf<mapop::PutMaglev>(*p3);
  int master = masterIndex(*p3);
  // A TCP frontend's removed backend is kept for its connections
  // (BE_STATE_REMOVED), after the table and master stop naming it.
  int freed = -1;
  for (size_t i = 0; i < p3->ops.size(); ++i)
    if (const auto* put = std::get_if<mapop::PutBackend>(&p3->ops[i]);
        put && put->value.state == BE_STATE_REMOVED)
      freed = int(i);
  ASSERT_GE(mag, 0);
  ASSERT_GE(freed, 0);
  EXPECT_LT(mag, master);
  EXPECT_LT(master, freed);
  uint32_t removedId = opAt<mapop::PutBackend>(*p3, freed).id;
  for (uint32_t id : opAt<mapop::PutMaglev>(*p3, mag).table) EXPECT_NE(id, removedId);
}

TEST(MaglevPlan, SwitchToRandomDeletesTableAfterMaster) {
  SyncOptions opts;
  opts.maglevSize = 251;
  auto p1 = planSync(emptyState(), {fe({be(1), be(2)})}, opts);
  ASSERT_TRUE(p1.ok());
  auto p2 = planSync(p1->next, {fe({be(1), be(2)}, "random")}, opts);
  ASSERT_TRUE(p2.ok());
  int master = masterIndex(*p2);
  int del = indexOf<mapop::DeleteMaglev>(*p2);
  ASSERT_GE(master, 0);
  ASSERT_GE(del, 0);
  EXPECT_LT(master, del);
  EXPECT_EQ(opAt<mapop::PutSvc>(*p2, master).value.algo, SVC_ALGO_RANDOM);
}

TEST(MaglevPlan, DaemonDefaultAppliesWithoutAnnotation) {
  SyncOptions opts;
  opts.maglevSize = 251;
  opts.defaultAlgo = SVC_ALGO_MAGLEV;
  auto p = planSync(emptyState(), {fe({be(1), be(2)}, nullptr)}, opts);
  ASSERT_TRUE(p.ok());
  EXPECT_GE(indexOf<mapop::PutMaglev>(*p), 0);
  opts.defaultAlgo = SVC_ALGO_RANDOM;
  p = planSync(emptyState(), {fe({be(1), be(2)}, nullptr)}, opts);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(indexOf<mapop::PutMaglev>(*p), -1);
}

TEST(MaglevPlan, OnlyTerminatingServingBackendsFillTheTable) {
  SyncOptions opts;
  opts.maglevSize = 251;
  auto p = planSync(
      emptyState(),
      {fe({be(1, EndpointState::Terminating, true), be(2, EndpointState::Terminating, false)})},
      opts);
  ASSERT_TRUE(p.ok());
  int mag = indexOf<mapop::PutMaglev>(*p);
  ASSERT_GE(mag, 0);
  EXPECT_EQ(shares(opAt<mapop::PutMaglev>(*p, mag).table).size(), 1u);  // only the serving one
  EXPECT_EQ(opAt<mapop::PutSvc>(*p, masterIndex(*p)).value.count, 0);
  EXPECT_EQ(opAt<mapop::PutSvc>(*p, masterIndex(*p)).value.total, 1);
}

TEST(MaglevPlan, WeightsFromAnnotationShapeTheTable) {
  Store store;
  std::string m = R"(apiVersion: v1
kind: Service
metadata:
  name: web
  annotations:
    svclb.io/lb-algorithm: maglev
spec:
  clusterIP: 10.96.0.10
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Endpoints
metadata:
  name: web
  annotations:
    svclb.io/weights: "10.244.1.11=3, 10.244.1.12=1"
subsets:
- addresses:
  - ip: 10.244.1.11
  - ip: 10.244.1.12
  ports:
  - port: 8080
)";
  auto objs = parseManifests(m, "w.yaml");
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  ASSERT_TRUE(store.apply(*objs).ok());
  auto fronts = store.frontends();
  ASSERT_EQ(fronts.size(), 1u);
  ASSERT_EQ(fronts[0].backends.size(), 2u);
  EXPECT_EQ(fronts[0].backends[0].weight, 3);
  EXPECT_EQ(fronts[0].backends[1].weight, 1);
  SyncOptions opts;
  opts.maglevSize = 16381;
  auto p = planSync(emptyState(), fronts, opts);
  ASSERT_TRUE(p.ok());
  const auto& f = p->next.frontends.begin()->second;
  auto s = shares(f.maglev);
  double heavy = double(s[f.backends[0].id]) / f.maglev.size();
  EXPECT_NEAR(heavy, 0.75, 0.01);
}

}  // namespace
}  // namespace svclb
