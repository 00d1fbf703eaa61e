// planSync: desired frontends -> ordered map writes, without a kernel. The
// order is the contract that keeps packets from seeing a half-written
// backend set (loader/reconcile.h), so most tests compare the whole op list.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include "loader/reconcile.h"

namespace svclb {
namespace {

constexpr uint8_t kTcp = 6, kUdp = 17;

uint32_t ip(const char* dotted) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, dotted, &a), 1) << dotted;
  return ntohl(a.s_addr);
}

std::string ipStr(__be32 wire) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{wire};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

BackendSpec be(const char* addr, uint16_t port = 8080, EndpointState st = EndpointState::Ready,
               bool serving = true) {
  BackendSpec b;
  b.ip = ip(addr);
  b.port = port;
  b.state = st;
  b.serving = serving;
  return b;
}

Frontend fe(const char* vip, uint16_t port, uint8_t proto, std::vector<BackendSpec> backends) {
  Frontend f;
  f.key = {ip(vip), port, proto};
  f.ns = "default";
  f.name = "web";
  std::sort(backends.begin(), backends.end(), [](const BackendSpec& a, const BackendSpec& b) {
    return std::pair(a.ip, a.port) < std::pair(b.ip, b.port);
  });
  f.backends = std::move(backends);
  return f;
}

std::string slotName(const svc_key& k) {
  return ipStr(k.vip) + ":" + std::to_string(ntohs(k.port)) + "/" + std::to_string(k.proto) +
         (k.slot == 0 ? " master" : " slot" + std::to_string(k.slot));
}

struct Describe {
  std::string operator()(const mapop::PutBackend& op) const {
    const char* st = op.value.state == BE_STATE_ACTIVE        ? "active"
                     : op.value.state == BE_STATE_TERMINATING ? "terminating"
                     : op.value.state == BE_STATE_NOT_READY   ? "not-ready"
                     : op.value.state == BE_STATE_REMOVED     ? "removed"
                                                              : "empty";
    return "PutBackend " + std::to_string(op.id) + " " + ipStr(op.value.addr) + ":" +
           std::to_string(ntohs(op.value.port)) + " " + st + " svc " +
           std::to_string(op.value.svc_id);
  }
  std::string operator()(const mapop::FreeBackend& op) const {
    return "FreeBackend " + std::to_string(op.id) +
           (op.foldInto ? " fold into svc " + std::to_string(op.foldInto) : "");
  }
  std::string operator()(const mapop::ResetSvcStats& op) const {
    return "ResetSvcStats " + std::to_string(op.svcId);
  }
  std::string operator()(const mapop::ResetBeStats& op) const {
    return "ResetBeStats " + std::to_string(op.id) + " svc " + std::to_string(op.svcId);
  }
  std::string operator()(const mapop::PutSvc& op) const {
    if (op.key.slot == 0)
      return "PutSvc " + slotName(op.key) + " svc " + std::to_string(op.value.svc_id) + " count " +
             std::to_string(op.value.count) + " total " + std::to_string(op.value.total);
    return "PutSvc " + slotName(op.key) + " -> be " + std::to_string(op.value.backend_id);
  }
  std::string operator()(const mapop::DeleteSvc& op) const {
    return "DeleteSvc " + slotName(op.key);
  }
  std::string operator()(const mapop::PutSvc6& op) const {
    return "PutSvc6 slot " + std::to_string(op.key.slot) + " svc " +
           std::to_string(op.value.svc_id) + " be " + std::to_string(op.value.backend_id);
  }
  std::string operator()(const mapop::DeleteSvc6& op) const {
    return "DeleteSvc6 slot " + std::to_string(op.key.slot);
  }
  std::string operator()(const mapop::PutMaglev& op) const {
    return "PutMaglev " + std::to_string(op.svcId);
  }
  std::string operator()(const mapop::DeleteMaglev& op) const {
    return "DeleteMaglev " + std::to_string(op.svcId);
  }
  std::string operator()(const mapop::PutSrcRange& op) const {
    return "PutSrcRange " + range(op.svcId, op.range);
  }
  std::string operator()(const mapop::DeleteSrcRange& op) const {
    return "DeleteSrcRange " + range(op.svcId, op.range);
  }
  static std::string range(uint32_t svcId, const SourceRange& r) {
    return std::to_string(svcId) + " " + ipStr(htonl(r.addr)) + "/" + std::to_string(r.prefix);
  }
};

// One line per op, e.g. "PutSvc 10.96.0.10:80/6 slot1 -> be 1" or
// "PutSvc 10.96.0.10:80/6 master svc 1 count 2 total 2".
std::string describe(const MapOp& op) { return std::visit(Describe{}, op); }

std::vector<std::string> describe(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& op : p.ops) out.push_back(describe(op));
  return out;
}

ActualState emptyState(uint32_t svcIds = 64, uint32_t backendIds = 64) {
  ActualState a;
  a.svcIds = IdPool(svcIds);
  a.backendIds = IdPool(backendIds);
  return a;
}

// Plans and "applies" (the next state becomes the actual one).
Plan step(ActualState& actual, const std::vector<Frontend>& desired, SyncOptions opts = {}) {
  auto p = planSync(actual, desired, opts);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  if (!p.ok()) {
    Plan none;
    return none;
  }
  actual = p->next;
  return std::move(*p);
}

uint32_t idOf(const ActualState& a, const FrontendKey& k, const char* addr, uint16_t port) {
  auto it = a.frontends.find(k);
  if (it == a.frontends.end()) return 0;
  for (const auto& b : it->second.backends)
    if (b.value.addr == htonl(ip(addr)) && b.value.port == htons(port)) return b.id;
  return 0;
}

const std::string kWebKey = "10.96.0.10:80/6";

TEST(ReconcilePlan, NewFrontendWritesBackendsThenSlotsThenMasterLast) {
  ActualState a = emptyState();
  Plan p = step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")})});
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "ResetSvcStats 1",
                             "ResetBeStats 1 svc 1",
                             "PutBackend 1 10.244.1.11:8080 active svc 1",
                             "ResetBeStats 2 svc 1",
                             "PutBackend 2 10.244.1.12:8080 active svc 1",
                             "PutSvc " + kWebKey + " slot1 -> be 1",
                             "PutSvc " + kWebKey + " slot2 -> be 2",
                             "PutSvc " + kWebKey + " master svc 1 count 2 total 2",
                         }));
  EXPECT_EQ(p.added, 1u);
  EXPECT_EQ(p.changed + p.removed + p.unchanged, 0u);
}

TEST(ReconcilePlan, KeysAndValuesAreInWireOrderWithZeroPadding) {
  ActualState a = emptyState();
  Frontend f = fe("10.96.0.10", 53, kUdp, {be("10.244.1.11", 5353)});
  f.affinity = true;
  f.affinityTimeout = 300;
  Plan p = step(a, {f});
  ASSERT_FALSE(p.ops.empty());
  const auto* master = std::get_if<mapop::PutSvc>(&p.ops.back());
  ASSERT_NE(master, nullptr);
  // Hash keys compare bytes: the whole key, padding included, is defined.
  svc_key want{};
  want.vip = htonl(ip("10.96.0.10"));
  want.port = htons(53);
  want.proto = kUdp;
  want.scope = SVC_SCOPE_EXTERNAL;
  want.slot = 0;
  EXPECT_EQ(std::memcmp(&master->key, &want, sizeof want), 0);
  EXPECT_EQ(master->value.flags, SVC_F_AFFINITY);
  EXPECT_EQ(master->value.affinity_timeout, 300u);
  EXPECT_EQ(master->value.algo, SVC_ALGO_RANDOM);
  EXPECT_EQ(master->value.backend_id, 0u);
  const svc_key made = makeSvcKey(f.key, 0);
  EXPECT_EQ(std::memcmp(&made, &want, sizeof want), 0);

  auto it = std::find_if(p.ops.begin(), p.ops.end(), [](const MapOp& o) {
    return std::holds_alternative<mapop::PutBackend>(o);
  });
  ASSERT_NE(it, p.ops.end());
  const auto& put = std::get<mapop::PutBackend>(*it);
  backend_value bv{};
  bv.addr = htonl(ip("10.244.1.11"));
  bv.port = htons(5353);
  bv.proto = kUdp;
  bv.state = BE_STATE_ACTIVE;
  bv.svc_id = master->value.svc_id;
  EXPECT_EQ(std::memcmp(&put.value, &bv, sizeof bv), 0);
}

TEST(ReconcilePlan, UnchangedDesiredStateMakesNoOps) {
  ActualState a = emptyState();
  const std::vector<Frontend> want = {
      fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")}),
      fe("10.96.0.10", 53, kUdp, {be("10.244.1.11", 5353)}),
      fe("10.96.0.11", 80, kTcp, {}),
  };
  step(a, want);
  const ActualState before = a;
  Plan p = step(a, want);
  EXPECT_TRUE(p.ops.empty()) << ::testing::PrintToString(describe(p));
  EXPECT_EQ(p.unchanged, 3u);
  EXPECT_EQ(p.added + p.changed + p.removed, 0u);
  EXPECT_EQ(a.svcIds.inUse(), before.svcIds.inUse());
  EXPECT_EQ(a.backendIds.inUse(), before.backendIds.inUse());
}

TEST(ReconcilePlan, AddingOneBackendWritesOnlyItItsSlotAndMaster) {
  ActualState a = emptyState();
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")})});
  Plan p = step(
      a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12"), be("10.244.1.13")})});
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "ResetBeStats 3 svc 1",
                             "PutBackend 3 10.244.1.13:8080 active svc 1",
                             "PutSvc " + kWebKey + " slot3 -> be 3",
                             "PutSvc " + kWebKey + " master svc 1 count 3 total 3",
                         }));
  EXPECT_EQ(p.changed, 1u);
}

TEST(ReconcilePlan, RemovingBackendWritesMasterBeforeSlotDeleteAndFree) {
  ActualState a = emptyState();
  step(a, {fe("10.96.0.10", 80, kUdp, {be("10.244.1.11"), be("10.244.1.12"), be("10.244.1.13")})});
  Plan p = step(a, {fe("10.96.0.10", 80, kUdp, {be("10.244.1.11"), be("10.244.1.13")})});
  const std::string key = "10.96.0.10:80/17";
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "PutSvc " + key + " slot2 -> be 3",
                             "PutSvc " + key + " master svc 1 count 2 total 2",
                             "DeleteSvc " + key + " slot3",
                             "FreeBackend 2 fold into svc 1",
                         }));
  EXPECT_FALSE(a.backendIds.used(2));
  EXPECT_EQ(a.frontends.begin()->second.slots, (std::vector<uint32_t>{1, 3}));
}

// As kube-proxy's conntrack (it flushes only UDP entries): an endpoint
// removed from a TCP frontend keeps its entry, without a slot, so its open
// connections go on; Syncer::freeDrained frees it once they ended. The
// marking comes after the slots stop naming it.
TEST(ReconcilePlan, RemovingTcpBackendKeepsItAsRemovedWithoutSlot) {
  ActualState a = emptyState();
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12"), be("10.244.1.13")})});
  Plan p = step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.13")})});
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "PutSvc " + kWebKey + " slot2 -> be 3",
                             "PutSvc " + kWebKey + " master svc 1 count 2 total 2",
                             "DeleteSvc " + kWebKey + " slot3",
                             "PutBackend 2 10.244.1.12:8080 removed svc 1",
                         }));
  EXPECT_TRUE(a.backendIds.used(2));
  const auto& f = a.frontends.begin()->second;
  EXPECT_EQ(f.slots, (std::vector<uint32_t>{1, 3}));
  ASSERT_EQ(f.backends.size(), 3u);
  EXPECT_EQ(f.backends[2].id, 2u);
  EXPECT_EQ(f.backends[2].value.state, BE_STATE_REMOVED);
  EXPECT_NE(f.backends[2].removedAt, std::chrono::steady_clock::time_point{});

  // Held as it is by the next plans: no write, the same mark time.
  const auto when = f.backends[2].removedAt;
  Plan again = step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.13")})});
  EXPECT_TRUE(again.ops.empty()) << describe(again).front();
  EXPECT_EQ(a.frontends.begin()->second.backends.at(2).removedAt, when);

  // Back in the Service: the same id, ready again, a slot again.
  Plan back = step(
      a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12"), be("10.244.1.13")})});
  EXPECT_EQ(describe(back), (std::vector<std::string>{
                                "PutBackend 2 10.244.1.12:8080 active svc 1",
                                "PutSvc " + kWebKey + " slot2 -> be 2",
                                "PutSvc " + kWebKey + " slot3 -> be 3",
                                "PutSvc " + kWebKey + " master svc 1 count 3 total 3",
                            }));

  // The Service gone: its map entries go, its backends are held (the
  // removed one as it was), the frontend retired.
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11")})});
  Plan gone = step(a, {});
  EXPECT_EQ(describe(gone), (std::vector<std::string>{
                                "DeleteSvc " + kWebKey + " master",
                                "DeleteSvc " + kWebKey + " slot1",
                                "PutBackend 1 10.244.1.11:8080 removed svc 1",
                            }));
  EXPECT_EQ(gone.removed, 1u);
  EXPECT_EQ(a.backendIds.inUse(), 3u);
  ASSERT_EQ(a.frontends.size(), 1u);
  EXPECT_TRUE(a.frontends.begin()->second.retired);
}

// kube-proxy's conntrack keeps translating a deleted Service's TCP flows:
// the frontend leaves the maps, its backends stay (BE_STATE_REMOVED) with
// their ids, and its svc_id stays allocated, until freeDrained frees them.
TEST(ReconcilePlan, DeletedTcpServiceIsRetiredWithItsBackendsHeld) {
  ActualState a = emptyState();
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")}),
           fe("10.96.0.11", 80, kTcp, {be("10.244.1.21")})});
  Plan p = step(a, {fe("10.96.0.11", 80, kTcp, {be("10.244.1.21")})});
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "DeleteSvc " + kWebKey + " master",
                             "DeleteSvc " + kWebKey + " slot1",
                             "DeleteSvc " + kWebKey + " slot2",
                             "PutBackend 1 10.244.1.11:8080 removed svc 1",
                             "PutBackend 2 10.244.1.12:8080 removed svc 1",
                         }));
  EXPECT_EQ(p.removed, 1u);
  EXPECT_EQ(p.unchanged, 1u);
  EXPECT_TRUE(a.svcIds.used(1));
  EXPECT_TRUE(a.backendIds.used(1));
  EXPECT_TRUE(a.backendIds.used(2));
  const FrontendKey web{ip("10.96.0.10"), 80, kTcp};
  ASSERT_TRUE(a.frontends.count(web));
  const ActualFrontend& r = a.frontends.at(web);
  EXPECT_TRUE(r.retired);
  EXPECT_TRUE(r.slots.empty());
  EXPECT_EQ(r.svcId, 1u);
  EXPECT_EQ(svcEntriesOf(r), 0u);
  EXPECT_EQ(a.svcEntries, 2u);  // the live frontend's master and slot

  // Still not wanted: carried as it is, no write, nothing counted.
  Plan again = step(a, {fe("10.96.0.11", 80, kTcp, {be("10.244.1.21")})});
  EXPECT_TRUE(again.ops.empty()) << describe(again).front();
  EXPECT_EQ(again.removed + again.added + again.changed, 0u);
  EXPECT_EQ(again.unchanged, 1u);
  EXPECT_TRUE(a.frontends.at(web).retired);

  // Made again on the same key, with the same config: a new Service (added)
  // whose master, slots and backends are written, the held ids reused.
  Plan back = step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")}),
                       fe("10.96.0.11", 80, kTcp, {be("10.244.1.21")})});
  EXPECT_EQ(describe(back), (std::vector<std::string>{
                                "PutBackend 1 10.244.1.11:8080 active svc 1",
                                "PutBackend 2 10.244.1.12:8080 active svc 1",
                                "PutSvc " + kWebKey + " slot1 -> be 1",
                                "PutSvc " + kWebKey + " slot2 -> be 2",
                                "PutSvc " + kWebKey + " master svc 1 count 2 total 2",
                            }));
  EXPECT_EQ(back.added, 1u);
  EXPECT_FALSE(a.frontends.at(web).retired);
  EXPECT_EQ(a.svcEntries, 5u);
}

TEST(ReconcilePlan, DeletedUdpServiceOrEmptyTcpServiceFreesEverything) {
  ActualState a = emptyState();
  step(a, {fe("10.96.0.10", 53, kUdp, {be("10.244.1.11", 5353)}), fe("10.96.0.10", 80, kTcp, {})});
  Plan p = step(a, {});
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "DeleteSvc 10.96.0.10:53/17 master",
                             "DeleteSvc 10.96.0.10:53/17 slot1",
                             "FreeBackend 1",
                             "DeleteSvc " + kWebKey + " master",
                         }));
  EXPECT_EQ(p.removed, 2u);
  EXPECT_TRUE(a.frontends.empty());
  EXPECT_EQ(a.svcIds.inUse(), 0u);
  EXPECT_EQ(a.backendIds.inUse(), 0u);
}

TEST(ReconcilePlan, KeepRemovedTcpOffFreesAtOnce) {
  SyncOptions opts;
  opts.keepRemovedTcp = false;
  ActualState a = emptyState();
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")})}, opts);
  Plan p = step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11")})}, opts);
  EXPECT_EQ(describe(p).back(), "FreeBackend 2 fold into svc 1");
  EXPECT_FALSE(a.backendIds.used(2));
}

TEST(ReconcilePlan, RemovingLastBackendLeavesMasterWithZeroCount) {
  ActualState a = emptyState();
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11")})});
  Plan p = step(a, {fe("10.96.0.10", 80, kTcp, {})});
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "PutSvc " + kWebKey + " master svc 1 count 0 total 0",
                             "DeleteSvc " + kWebKey + " slot1",
                             "PutBackend 1 10.244.1.11:8080 removed svc 1",
                         }));
}

TEST(ReconcilePlan, RemovedFrontendDeletesMasterFirst) {
  SyncOptions opts;
  opts.keepRemovedTcp = false;  // freed at once, as a UDP frontend's
  ActualState a = emptyState();
  step(a,
       {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")}),
        fe("10.96.0.11", 80, kTcp, {be("10.244.1.21")})},
       opts);
  Plan p = step(a, {fe("10.96.0.11", 80, kTcp, {be("10.244.1.21")})}, opts);
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "DeleteSvc " + kWebKey + " master",
                             "DeleteSvc " + kWebKey + " slot1",
                             "DeleteSvc " + kWebKey + " slot2",
                             "FreeBackend 1",
                             "FreeBackend 2",
                         }));
  EXPECT_EQ(p.removed, 1u);
  EXPECT_EQ(p.unchanged, 1u);
  EXPECT_FALSE(a.svcIds.used(1));
  EXPECT_FALSE(a.backendIds.used(1));
  EXPECT_FALSE(a.backendIds.used(2));
  EXPECT_TRUE(a.backendIds.used(3));
  EXPECT_EQ(a.frontends.size(), 1u);
}

TEST(ReconcilePlan, IdsStayStableForUnchangedBackendsAcrossPlans) {
  ActualState a = emptyState();
  const FrontendKey web{ip("10.96.0.10"), 80, kTcp};
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")}),
           fe("10.96.0.11", 80, kTcp, {be("10.244.1.21")})});
  const uint32_t svc = a.frontends.at(web).svcId;
  const uint32_t id11 = idOf(a, web, "10.244.1.11", 8080);
  const uint32_t id12 = idOf(a, web, "10.244.1.12", 8080);
  ASSERT_NE(id11, 0u);
  ASSERT_NE(id12, 0u);

  // Add one, remove another frontend, change a third: .11/.12 keep their ids.
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12"), be("10.244.1.13")})});
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.10"), be("10.244.1.11"), be("10.244.1.12")}),
           fe("10.96.0.12", 80, kTcp, {be("10.244.1.31")})});
  EXPECT_EQ(a.frontends.at(web).svcId, svc);
  EXPECT_EQ(idOf(a, web, "10.244.1.11", 8080), id11);
  EXPECT_EQ(idOf(a, web, "10.244.1.12", 8080), id12);
  // .10 sorts first: it takes slot 1, the others shift, ids do not.
  EXPECT_EQ(a.frontends.at(web).slots,
            (std::vector<uint32_t>{idOf(a, web, "10.244.1.10", 8080), id11, id12}));
}

TEST(ReconcilePlan, TerminatingServingBackendsFollowReadyOnesAndAreNotCounted) {
  ActualState a = emptyState();
  Plan p = step(a, {fe("10.96.0.10", 80, kTcp,
                       {be("10.244.1.11", 8080, EndpointState::Terminating, true),
                        be("10.244.1.12"), be("10.244.1.13")})});
  const FrontendKey web{ip("10.96.0.10"), 80, kTcp};
  const auto& f = a.frontends.at(web);
  const uint32_t t = idOf(a, web, "10.244.1.11", 8080);
  EXPECT_EQ(f.slots, (std::vector<uint32_t>{idOf(a, web, "10.244.1.12", 8080),
                                            idOf(a, web, "10.244.1.13", 8080), t}));
  EXPECT_EQ(f.master.count, 2);
  EXPECT_EQ(f.master.total, 3);
  EXPECT_EQ(describe(p.ops.back()), "PutSvc " + kWebKey + " master svc 1 count 2 total 3");
  const auto term = std::find_if(p.ops.begin(), p.ops.end(), [&](const MapOp& o) {
    const auto* put = std::get_if<mapop::PutBackend>(&o);
    return put && put->id == t;
  });
  ASSERT_NE(term, p.ops.end());
  EXPECT_EQ(std::get<mapop::PutBackend>(*term).value.state, BE_STATE_TERMINATING);
}

TEST(ReconcilePlan, TerminatingNotServingGetsBackendEntryButNoSlot) {
  ActualState a = emptyState();
  Plan p = step(
      a, {fe("10.96.0.10", 80, kTcp,
             {be("10.244.1.11", 8080, EndpointState::Terminating, false), be("10.244.1.12")})});
  const FrontendKey web{ip("10.96.0.10"), 80, kTcp};
  const uint32_t t = idOf(a, web, "10.244.1.11", 8080);
  ASSERT_NE(t, 0u) << "a terminating backend keeps an entry for its existing flows";
  EXPECT_EQ(a.frontends.at(web).slots, (std::vector<uint32_t>{idOf(a, web, "10.244.1.12", 8080)}));
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "ResetSvcStats 1",
                             "ResetBeStats 1 svc 1",
                             "PutBackend 1 10.244.1.12:8080 active svc 1",
                             "ResetBeStats 2 svc 1",
                             "PutBackend 2 10.244.1.11:8080 terminating svc 1",
                             "PutSvc " + kWebKey + " slot1 -> be 1",
                             "PutSvc " + kWebKey + " master svc 1 count 1 total 1",
                         }));
}

// As kube-proxy's conntrack: a TCP flow is never flushed, so a not-ready
// endpoint of a TCP frontend keeps an entry (no slot) for its open
// connections (a failing readiness probe does not cut them).
TEST(ReconcilePlan, NotReadyBackendsOfTcpKeepAnEntryButNoSlot) {
  ActualState a = emptyState();
  Plan p = step(a, {fe("10.96.0.10", 80, kTcp,
                       {be("10.244.1.11", 8080, EndpointState::NotReady, false),
                        be("10.244.1.12", 8080, EndpointState::NotReady, true)})});
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "ResetSvcStats 1",
                             "ResetBeStats 1 svc 1",
                             "PutBackend 1 10.244.1.11:8080 not-ready svc 1",
                             "ResetBeStats 2 svc 1",
                             "PutBackend 2 10.244.1.12:8080 not-ready svc 1",
                             "PutSvc " + kWebKey + " master svc 1 count 0 total 0",
                         }));
  EXPECT_TRUE(a.frontends.at(FrontendKey{ip("10.96.0.10"), 80, kTcp}).slots.empty());
}

// ... and flushes a UDP flow whose endpoint no longer serves: a UDP
// frontend's not-ready and not-serving terminating endpoints get nothing,
// their flows' next datagram is balanced anew.
TEST(ReconcilePlan, NotServingBackendsOfUdpGetNothing) {
  ActualState a = emptyState();
  Plan p = step(a, {fe("10.96.0.10", 53, kUdp,
                       {be("10.244.1.11", 5353, EndpointState::NotReady, false),
                        be("10.244.1.12", 5353, EndpointState::Terminating, false),
                        be("10.244.1.13", 5353, EndpointState::Terminating, true)})});
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "ResetSvcStats 1",
                             "ResetBeStats 1 svc 1",
                             "PutBackend 1 10.244.1.13:5353 terminating svc 1",
                             "PutSvc 10.96.0.10:53/17 slot1 -> be 1",
                             "PutSvc 10.96.0.10:53/17 master svc 1 count 0 total 1",
                         }));
  EXPECT_EQ(a.backendIds.inUse(), 1u);
}

// A ready TCP endpoint turning not-ready keeps its id (its flows' CT
// entries name it) and leaves the slots.
TEST(ReconcilePlan, ReadyTcpBackendTurningNotReadyKeepsItsId) {
  ActualState a = emptyState();
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")})});
  const FrontendKey web{ip("10.96.0.10"), 80, kTcp};
  const uint32_t id = idOf(a, web, "10.244.1.11", 8080);
  step(a, {fe("10.96.0.10", 80, kTcp,
              {be("10.244.1.11", 8080, EndpointState::NotReady, false), be("10.244.1.12")})});
  EXPECT_EQ(idOf(a, web, "10.244.1.11", 8080), id);
  EXPECT_EQ(a.frontends.at(web).slots, (std::vector<uint32_t>{idOf(a, web, "10.244.1.12", 8080)}));
}

TEST(ReconcilePlan, ReadyBackendBecomingTerminatingKeepsItsIdAndLeavesTheCount) {
  ActualState a = emptyState();
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")})});
  Plan p =
      step(a, {fe("10.96.0.10", 80, kTcp,
                  {be("10.244.1.11", 8080, EndpointState::Terminating, true), be("10.244.1.12")})});
  EXPECT_EQ(describe(p), (std::vector<std::string>{
                             "PutBackend 1 10.244.1.11:8080 terminating svc 1",
                             "PutSvc " + kWebKey + " slot1 -> be 2",
                             "PutSvc " + kWebKey + " slot2 -> be 1",
                             "PutSvc " + kWebKey + " master svc 1 count 1 total 2",
                         }));
}

TEST(ReconcilePlan, BackendIdExhaustionFailsAndChangesNothing) {
  ActualState a = emptyState(8, 4);  // backend ids 1..3
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")})});
  const ActualState before = a;
  auto p = planSync(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")}),
                        fe("10.96.0.11", 80, kTcp, {be("10.244.1.21"), be("10.244.1.22")})});
  ASSERT_FALSE(p.ok()) << "4 backend ids needed, 3 exist";
  EXPECT_EQ(p.error().code, ENOSPC);
  EXPECT_NE(p.error().message.find("full"), std::string::npos) << p.error().message;
  // The actual state is untouched: same ids in use, and a plan that fits
  // still works from it.
  EXPECT_EQ(a.backendIds.inUse(), before.backendIds.inUse());
  EXPECT_EQ(a.svcIds.inUse(), before.svcIds.inUse());
  EXPECT_EQ(a.frontends.size(), 1u);
  Plan ok = step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")}),
                     fe("10.96.0.11", 80, kTcp, {be("10.244.1.21")})});
  EXPECT_EQ(ok.added, 1u);
  EXPECT_EQ(a.backendIds.inUse(), 3u);
}

TEST(ReconcilePlan, ServiceIdExhaustionFails) {
  ActualState a = emptyState(2, 64);  // one service id
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11")})});
  auto p = planSync(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11")}),
                        fe("10.96.0.11", 80, kTcp, {be("10.244.1.21")})});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ENOSPC);
  EXPECT_EQ(a.svcIds.inUse(), 1u);
}

TEST(ReconcilePlan, RemovalFreesIdsForAdditionsInTheSamePlan) {
  ActualState a = emptyState(2, 3);  // one service id, backend ids 1..2
  step(a, {fe("10.96.0.10", 53, kUdp, {be("10.244.1.11"), be("10.244.1.12")})});
  Plan p = step(a, {fe("10.96.0.11", 53, kUdp, {be("10.244.1.21"), be("10.244.1.22")})});
  EXPECT_EQ(p.removed, 1u);
  EXPECT_EQ(p.added, 1u);
  ASSERT_FALSE(p.ops.empty());
  EXPECT_EQ(describe(p.ops.front()), "DeleteSvc 10.96.0.10:53/17 master");
}

TEST(ReconcilePlan, FreedBackendIdIsNotReusedImmediately) {
  ActualState a = emptyState(8, 16);
  const FrontendKey web{ip("10.96.0.10"), 80, kTcp};
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.12")})});
  const uint32_t freed = idOf(a, web, "10.244.1.12", 8080);
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11")})});
  step(a, {fe("10.96.0.10", 80, kTcp, {be("10.244.1.11"), be("10.244.1.13")})});
  const uint32_t fresh = idOf(a, web, "10.244.1.13", 8080);
  EXPECT_NE(fresh, freed) << "a freed id was handed out again at once";
  EXPECT_EQ(fresh, freed + 1);
}

TEST(ReconcileIdPool, AllocatesRoundRobinAndWraps) {
  IdPool pool(5);  // ids 1..4
  EXPECT_EQ(*pool.allocate(), 1u);
  EXPECT_EQ(*pool.allocate(), 2u);
  EXPECT_EQ(*pool.allocate(), 3u);
  pool.release(2);
  EXPECT_EQ(*pool.allocate(), 4u) << "the freed id 2 must not come back first";
  EXPECT_EQ(*pool.allocate(), 2u) << "wraps past the end to the free id";
  auto full = pool.allocate();
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ENOSPC);
  EXPECT_EQ(pool.inUse(), 4u);
  pool.release(3);
  EXPECT_EQ(*pool.allocate(), 3u);
}

TEST(ReconcileIdPool, NeverHandsOutZeroAndEmptyPoolFails) {
  IdPool none(0), one(1);
  EXPECT_FALSE(none.allocate().ok());
  EXPECT_FALSE(one.allocate().ok());
  IdPool pool(3);
  EXPECT_FALSE(pool.used(0));
  for (int i = 0; i < 2; ++i) {
    auto id = pool.allocate();
    ASSERT_TRUE(id.ok());
    EXPECT_NE(*id, 0u);
  }
  pool.release(0);   // ignored
  pool.release(99);  // ignored
  EXPECT_EQ(pool.inUse(), 2u);
}

TEST(ReconcileIdPool, AllocationContinuesAfterAdoptedIds) {
  IdPool pool(10);
  pool.markUsed(5);
  pool.markUsed(2);
  EXPECT_EQ(pool.inUse(), 2u);
  EXPECT_EQ(*pool.allocate(), 6u);
  pool.markUsed(5);  // twice: counted once
  EXPECT_EQ(pool.inUse(), 3u);
}

}  // namespace
}  // namespace svclb
