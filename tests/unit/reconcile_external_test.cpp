// planSync for node-facing frontends: extra master flags and the
// loadBalancerSourceRanges entries (src_ranges_v1), whose order relative to
// the master is the contract (loader/reconcile.h): a master with
// SVC_F_SRC_RANGES never exists without its ranges.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <variant>
#include <vector>

#include "loader/reconcile.h"

namespace svclb {
namespace {

constexpr uint8_t kTcp = 6;

uint32_t ip(const char* dotted) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, dotted, &a), 1) << dotted;
  return ntohl(a.s_addr);
}

std::string ipStr(uint32_t host) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{htonl(host)};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

BackendSpec be(const char* addr) {
  BackendSpec b;
  b.ip = ip(addr);
  b.port = 8080;
  return b;
}

SourceRange range(const char* addr, uint8_t prefix) { return {ip(addr), prefix}; }

Frontend fe(const char* vip, uint16_t port, uint8_t flags = SVC_F_EXTERNAL,
            std::vector<SourceRange> ranges = {}) {
  Frontend f;
  f.key = {ip(vip), port, kTcp};
  f.ns = "default";
  f.name = "web";
  f.backends = {be("10.244.1.11")};
  f.flags = flags;
  f.sourceRanges = std::move(ranges);
  return f;
}

// The ops that matter for ordering here: masters and ranges, one line each.
// Backends, slots and stats resets are left out.
std::vector<std::string> masterAndRanges(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& op : p.ops) {
    if (const auto* put = std::get_if<mapop::PutSvc>(&op)) {
      if (put->key.slot == 0)
        out.push_back("PutMaster " + std::to_string(ntohs(put->key.port)) + " flags " +
                      std::to_string(put->value.flags));
    } else if (const auto* del = std::get_if<mapop::DeleteSvc>(&op)) {
      if (del->key.slot == 0) out.push_back("DeleteMaster " + std::to_string(ntohs(del->key.port)));
    } else if (const auto* add = std::get_if<mapop::PutSrcRange>(&op)) {
      out.push_back("PutRange " + std::to_string(add->svcId) + " " + ipStr(add->range.addr) + "/" +
                    std::to_string(add->range.prefix));
    } else if (const auto* gone = std::get_if<mapop::DeleteSrcRange>(&op)) {
      out.push_back("DeleteRange " + std::to_string(gone->svcId) + " " + ipStr(gone->range.addr) +
                    "/" + std::to_string(gone->range.prefix));
    }
  }
  return out;
}

ActualState emptyState() {
  ActualState a;
  a.svcIds = IdPool(64);
  a.backendIds = IdPool(64);
  return a;
}

Plan step(ActualState& actual, const std::vector<Frontend>& desired) {
  auto p = planSync(actual, desired);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  if (!p.ok()) {
    Plan none;
    return none;
  }
  actual = p->next;
  return std::move(*p);
}

const svc_value* masterOf(const Plan& p) {
  for (const auto& op : p.ops)
    if (const auto* put = std::get_if<mapop::PutSvc>(&op); put && put->key.slot == 0)
      return &put->value;
  return nullptr;
}

TEST(ReconcileExternal, FlagsAreOredIntoTheMaster) {
  ActualState a = emptyState();
  Frontend f = fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY | SVC_F_NO_LOCAL_EPS);
  f.affinity = true;
  f.affinityTimeout = 30;
  Plan p = step(a, {f});
  const svc_value* m = masterOf(p);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->flags, SVC_F_AFFINITY | SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY | SVC_F_NO_LOCAL_EPS);
  EXPECT_EQ(m->affinity_timeout, 30u);
  EXPECT_EQ(a.frontends.begin()->second.master.flags, m->flags);
}

TEST(ReconcileExternal, ChangingOnlyTheFlagsRewritesOnlyTheMaster) {
  ActualState a = emptyState();
  step(a, {fe("192.0.2.10", 80)});
  Plan p = step(a, {fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY)});
  ASSERT_EQ(p.ops.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<mapop::PutSvc>(p.ops[0]));
  EXPECT_EQ(std::get<mapop::PutSvc>(p.ops[0]).value.flags, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY);
  EXPECT_EQ(p.changed, 1u);
}

TEST(ReconcileExternal, NewFrontendWritesItsRangesBeforeItsMaster) {
  ActualState a = emptyState();
  Plan p = step(a, {fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES,
                       {range("198.51.100.0", 24), range("10.0.0.7", 32)})});
  const uint32_t id = a.frontends.begin()->second.svcId;
  const std::string s = std::to_string(id);
  EXPECT_EQ(masterAndRanges(p),
            (std::vector<std::string>{
                "PutRange " + s + " 10.0.0.7/32",
                "PutRange " + s + " 198.51.100.0/24",
                "PutMaster 80 flags " + std::to_string(SVC_F_EXTERNAL | SVC_F_SRC_RANGES),
            }));
  // The master is the very last write of a new frontend.
  ASSERT_TRUE(std::holds_alternative<mapop::PutSvc>(p.ops.back()));
  EXPECT_EQ(std::get<mapop::PutSvc>(p.ops.back()).key.slot, 0);
}

TEST(ReconcileExternal, RangeKeysAreLpmKeysWithTheSvcIdCovered) {
  ActualState a = emptyState();
  Plan p = step(
      a, {fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES, {range("198.51.100.0", 24)})});
  const mapop::PutSrcRange* put = nullptr;
  for (const auto& op : p.ops)
    if (const auto* r = std::get_if<mapop::PutSrcRange>(&op)) put = r;
  ASSERT_NE(put, nullptr);
  src_range_key k = makeSrcRangeKey(put->svcId, put->range);
  EXPECT_EQ(k.prefixlen, 32u + 24u);
  EXPECT_EQ(k.svc_id, a.frontends.begin()->second.svcId);
  EXPECT_EQ(k.addr, htonl(ip("198.51.100.0")));
}

TEST(ReconcileExternal, HostBitsAndDuplicatesAreDroppedBeforePlanning) {
  ActualState a = emptyState();
  Plan p =
      step(a, {fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES,
                  {range("198.51.100.77", 24), range("198.51.100.0", 24), range("0.0.0.0", 0)})});
  const std::string s = std::to_string(a.frontends.begin()->second.svcId);
  EXPECT_EQ(masterAndRanges(p), (std::vector<std::string>{
                                    "PutRange " + s + " 0.0.0.0/0",
                                    "PutRange " + s + " 198.51.100.0/24",
                                    "PutMaster 80 flags 18",
                                }));
}

TEST(ReconcileExternal, UnchangedRangesMakeNoOps) {
  ActualState a = emptyState();
  const std::vector<Frontend> want = {
      fe("10.244.0.1", 30080),
      fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES,
         {range("198.51.100.0", 24), range("203.0.113.0", 25)}),
  };
  step(a, want);
  Plan p = step(a, want);
  EXPECT_TRUE(p.ops.empty());
  EXPECT_EQ(p.unchanged, 2u);
}

TEST(ReconcileExternal, UnchangedStateAsAdoptedFromTheMapsMakesNoOps) {
  // What Syncer::adopt rebuilds: ranges sorted per frontend, names unknown.
  ActualState a = emptyState();
  const std::vector<Frontend> want = {fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES,
                                         {range("203.0.113.0", 25), range("198.51.100.0", 24)})};
  step(a, want);
  for (auto& [k, f] : a.frontends) {
    f.ns.clear();
    f.name.clear();
    std::sort(f.sourceRanges.begin(), f.sourceRanges.end());
  }
  Plan p = step(a, want);
  EXPECT_TRUE(p.ops.empty());
}

TEST(ReconcileExternal, AddedRangeBeforeMasterRemovedRangeAfterIt) {
  ActualState a = emptyState();
  step(a, {fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES, {range("198.51.100.0", 24)})});
  const std::string s = std::to_string(a.frontends.begin()->second.svcId);
  // Ranges only: no master write, the new range goes in before the old one
  // leaves (never a moment with an empty allow-list).
  Plan p = step(
      a, {fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES, {range("203.0.113.0", 24)})});
  EXPECT_EQ(masterAndRanges(p), (std::vector<std::string>{
                                    "PutRange " + s + " 203.0.113.0/24",
                                    "DeleteRange " + s + " 198.51.100.0/24",
                                }));
  EXPECT_EQ(p.changed, 1u);
  // Ranges and master together: put, master, delete.
  p = step(a, {fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES | SVC_F_LOCAL_ONLY,
                  {range("10.1.0.0", 16)})});
  EXPECT_EQ(masterAndRanges(p), (std::vector<std::string>{
                                    "PutRange " + s + " 10.1.0.0/16",
                                    "PutMaster 80 flags 22",
                                    "DeleteRange " + s + " 203.0.113.0/24",
                                }));
}

TEST(ReconcileExternal, DroppingSourceRangesClearsTheFlagBeforeDeletingThem) {
  ActualState a = emptyState();
  step(a, {fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES, {range("198.51.100.0", 24)})});
  const std::string s = std::to_string(a.frontends.begin()->second.svcId);
  Plan p = step(a, {fe("192.0.2.10", 80)});
  EXPECT_EQ(masterAndRanges(p), (std::vector<std::string>{
                                    "PutMaster 80 flags 2",
                                    "DeleteRange " + s + " 198.51.100.0/24",
                                }));
  EXPECT_TRUE(a.frontends.begin()->second.sourceRanges.empty());
}

TEST(ReconcileExternal, RemovedFrontendLosesItsMasterThenItsRanges) {
  ActualState a = emptyState();
  step(a, {fe("10.244.0.1", 30080), fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES,
                                       {range("198.51.100.0", 24), range("203.0.113.0", 24)})});
  const std::string s = std::to_string(a.frontends.at({ip("192.0.2.10"), 80, kTcp}).svcId);
  Plan p = step(a, {fe("10.244.0.1", 30080)});
  EXPECT_EQ(masterAndRanges(p), (std::vector<std::string>{
                                    "DeleteMaster 80",
                                    "DeleteRange " + s + " 198.51.100.0/24",
                                    "DeleteRange " + s + " 203.0.113.0/24",
                                }));
  EXPECT_TRUE(std::holds_alternative<mapop::DeleteSvc>(p.ops.front()));
  EXPECT_EQ(p.removed, 1u);
  EXPECT_EQ(p.unchanged, 1u);
}

TEST(ReconcileExternal, TooManyRangesFailAndChangeNothing) {
  ActualState a = emptyState();
  SyncOptions opts;
  opts.maxSrcRanges = 2;
  auto p = planSync(a,
                    {fe("192.0.2.10", 80, SVC_F_EXTERNAL | SVC_F_SRC_RANGES,
                        {range("10.0.0.0", 8), range("11.0.0.0", 8), range("12.0.0.0", 8)})},
                    opts);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("source ranges"), std::string::npos) << p.error().message;
}

}  // namespace
}  // namespace svclb
