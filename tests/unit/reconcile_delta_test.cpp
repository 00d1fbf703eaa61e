// The daemon's incremental path (loader/daemon.cpp commit()) against the
// full one, on random sequences of applies and deletes: the Services a change
// touches (Store::servicesTouchedBy), their frontends before and after
// (Store::frontendsOf) and planSyncDelta must give exactly planSync's ops
// over Store::frontends() (same order, same ids) and the same next state.
// Also: Store::revert puts the store back as it was.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "loader/reconcile.h"
#include "model/model.h"

namespace svclb {
namespace {

// The op's kind, then every byte of its fields (keys and values with their
// padding), so that two lists compare equal only if every write is the same.
std::string bytes(const void* p, size_t n) {
  std::string out;
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) out += std::to_string(b[i]) + ".";
  return out;
}

struct OpFields {
  std::string operator()(const mapop::PutBackend& op) const {
    return " id " + std::to_string(op.id) + " be " + bytes(&op.value, sizeof op.value) + " addr6 " +
           bytes(op.addr6.data(), op.addr6.size());
  }
  std::string operator()(const mapop::FreeBackend& op) const {
    return " id " + std::to_string(op.id) + " fold " + std::to_string(op.foldInto);
  }
  std::string operator()(const mapop::ResetSvcStats& op) const {
    return " svc " + std::to_string(op.svcId);
  }
  std::string operator()(const mapop::ResetBeStats& op) const {
    return " id " + std::to_string(op.id) + " svc " + std::to_string(op.svcId);
  }
  std::string operator()(const mapop::PutSvc& op) const {
    return " key " + bytes(&op.key, sizeof op.key) + " val " + bytes(&op.value, sizeof op.value);
  }
  std::string operator()(const mapop::DeleteSvc& op) const {
    return " key " + bytes(&op.key, sizeof op.key);
  }
  std::string operator()(const mapop::PutSvc6& op) const {
    return " key " + bytes(&op.key, sizeof op.key) + " val " + bytes(&op.value, sizeof op.value);
  }
  std::string operator()(const mapop::DeleteSvc6& op) const {
    return " key " + bytes(&op.key, sizeof op.key);
  }
  std::string operator()(const mapop::PutMaglev& op) const {
    std::string s =
        " svc " + std::to_string(op.svcId) + " table " + std::to_string(op.table.size());
    for (uint32_t t : op.table) s += "," + std::to_string(t);
    return s;
  }
  std::string operator()(const mapop::DeleteMaglev& op) const {
    return " svc " + std::to_string(op.svcId);
  }
  std::string operator()(const mapop::PutSrcRange& op) const { return range(op.svcId, op.range); }
  std::string operator()(const mapop::DeleteSrcRange& op) const {
    return range(op.svcId, op.range);
  }
  static std::string range(uint32_t svcId, const SourceRange& r) {
    return " svc " + std::to_string(svcId) + " range " + std::to_string(r.addr) + "/" +
           std::to_string(r.prefix);
  }
};

std::string opText(const MapOp& op) {
  return std::to_string(op.index()) + std::visit(OpFields{}, op);
}

std::vector<std::string> opsText(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& op : p.ops) out.push_back(opText(op));
  return out;
}

std::string stateText(const ActualState& st) {
  std::string s;
  for (const auto& [k, f] : st.frontends) {
    s += std::to_string(k.vip) + ":" + std::to_string(k.port) + "/" + std::to_string(k.proto) +
         " svc " + std::to_string(f.svcId) + " " + f.ns + "/" + f.name + "/" + f.portName;
    s += " master " + std::to_string(f.master.count) + "/" + std::to_string(f.master.total) +
         " algo " + std::to_string(f.master.algo) + " flags " + std::to_string(f.master.flags);
    s += " slots";
    for (uint32_t id : f.slots) s += " " + std::to_string(id);
    s += " backends";
    for (const auto& b : f.backends)
      s += " " + std::to_string(b.id) + "=" + std::to_string(b.value.addr) + ":" +
           std::to_string(b.value.port) + "/" + std::to_string(b.value.state);
    s += " maglev " + std::to_string(f.maglev.size());
    for (uint32_t id : f.maglev) s += "," + std::to_string(id);
    s += "\n";
  }
  for (const IdPool* pool : {&st.svcIds, &st.backendIds}) {
    s += "pool " + std::to_string(pool->inUse()) + ":";
    for (uint32_t i = 0; i < pool->capacity(); ++i)
      if (pool->used(i)) s += " " + std::to_string(i);
    s += "\n";
  }
  return s;
}

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }

  std::string service() {
    const int i = pick(6);
    std::string s = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s" + std::to_string(i) +
                    "\n  namespace: ns" + std::to_string(i % 2) + "\n";
    if (pick(4) == 0) s += "  annotations:\n    svclb.io/lb-algorithm: maglev\n";
    s += "spec:\n";
    const int t = pick(10);
    if (t == 0) s += "  clusterIP: None\n";
    if (t == 1) s += "  type: ExternalName\n  externalName: example.com\n";
    if (t >= 2 && pick(2)) s += "  clusterIP: 10.96.0." + std::to_string(10 + pick(5)) + "\n";
    if (pick(5) == 0) s += "  sessionAffinity: ClientIP\n";
    if (t != 1) {
      s += "  ports:\n";
      s += "  - name: a\n    port: 80\n    protocol: TCP\n";
      if (pick(2)) s += "  - name: b\n    port: 53\n    protocol: UDP\n";
    }
    return s;
  }

  std::string addresses(int max) {
    std::string s;
    const int n = pick(max + 1);
    for (int k = 0; k < n; ++k) s += "  - ip: 10.244.0." + std::to_string(1 + pick(8)) + "\n";
    return s;
  }

  std::string endpoints() {
    const int i = pick(6);
    std::string s = "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: s" + std::to_string(i) +
                    "\n  namespace: ns" + std::to_string(i % 2) + "\nsubsets:\n";
    std::string ready = addresses(4), notReady = addresses(2);
    // "subsets: []" (a flow collection at its key's column, "subsets:\n[]",
    // is not YAML: go-yaml and libyaml refuse it, yaml-cpp read it).
    if (ready.empty() && notReady.empty()) return s.substr(0, s.size() - 1) + " []\n";
    s += "- ";
    std::string body;
    if (!ready.empty()) body += "addresses:\n" + ready;
    if (!notReady.empty()) body += "  notReadyAddresses:\n" + notReady;
    if (body.rfind("  ", 0) == 0) body = body.substr(2);
    s += body;
    s += "  ports:\n  - name: a\n    port: 8080\n    protocol: TCP\n";
    if (pick(2)) s += "  - name: b\n    port: 5353\n    protocol: UDP\n";
    return s;
  }

  std::string slice() {
    const int i = pick(4), svc = pick(6);
    std::string s = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: sl" +
                    std::to_string(i) + "\n  namespace: ns" + std::to_string(svc % 2) +
                    "\n  labels:\n    kubernetes.io/service-name: s" + std::to_string(svc) +
                    "\naddressType: IPv4\nendpoints:\n";
    const int n = 1 + pick(3);
    for (int k = 0; k < n; ++k) {
      s += "- addresses:\n  - 10.244.1." + std::to_string(1 + pick(8)) + "\n";
      const int c = pick(4);
      if (c == 1) s += "  conditions:\n    ready: false\n";
      if (c == 2)
        s += "  conditions:\n    ready: false\n    serving: true\n    terminating: true\n";
    }
    s += "ports:\n- name: a\n  port: 9090\n  protocol: TCP\n";
    return s;
  }

 private:
  std::mt19937 rng_;
};

std::vector<Object> parse(const std::string& text) {
  auto r = parseManifests(text, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message) << "\n" << text;
  return r.ok() ? *r : std::vector<Object>{};
}

TEST(ReconcileDelta, IncrementalPlanEqualsFullPlan) {
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    Gen g(seed);
    Store store;
    ActualState actual;
    actual.svcIds = IdPool(64);
    actual.backendIds = IdPool(128);
    SyncOptions opts;
    opts.maglevSize = 13;
    opts.maxServiceEntries = seed % 3 == 0 ? 40 : 100000;  // some plans must not fit
    int deltas = 0;
    for (int step = 0; step < 150; ++step) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step));
      const std::string before = store.toJson().dump();
      std::set<Store::Key> touched;
      std::vector<Frontend> was;
      Store::Undo undo;
      Result<std::vector<ApplyOutcome>> outs = std::vector<ApplyOutcome>{};
      const int what = g.pick(10);
      if (what < 7) {
        std::vector<Object> objs;
        const int n = 1 + g.pick(3);
        for (int k = 0; k < n; ++k) {
          const int kind = g.pick(3);
          auto more = parse(kind == 0 ? g.service() : kind == 1 ? g.endpoints() : g.slice());
          objs.insert(objs.end(), more.begin(), more.end());
        }
        touched = store.servicesTouchedBy(objs);
        was = store.frontendsOf(touched);
        outs = store.apply(objs, &undo);
      } else {
        // Delete one existing object (or a missing one: an error).
        const char* kinds[] = {"Service", "Endpoints", "EndpointSlice"};
        const std::string kind = kinds[g.pick(3)];
        const int i = g.pick(6);
        const std::string ns = "ns" + std::to_string(i % 2);
        const std::string name = (kind == "EndpointSlice" ? "sl" : "s") + std::to_string(i % 4);
        touched = store.servicesTouchedBy(kind, ns, name);
        was = store.frontendsOf(touched);
        outs = store.remove(kind, ns, name, &undo);
      }
      if (!outs.ok()) {
        EXPECT_EQ(store.toJson().dump(), before) << "a failed change must change nothing";
        continue;
      }
      const auto now = store.frontendsOf(touched);
      std::set<FrontendKey> kept;
      for (const auto& f : now) kept.insert(f.key);
      std::vector<FrontendKey> removed;
      for (const auto& f : was)
        if (!kept.count(f.key)) removed.push_back(f.key);

      auto full = planSync(actual, store.frontends(), opts);
      auto delta = planSyncDelta(actual, now, removed, opts);
      ASSERT_EQ(full.ok(), delta.ok());
      if (!full.ok()) {
        EXPECT_EQ(full.error().message, delta.error().message);
        store.revert(std::move(undo));
        EXPECT_EQ(store.toJson().dump(), before);
        continue;
      }
      ++deltas;
      EXPECT_EQ(opsText(*full), opsText(*delta));
      EXPECT_EQ(full->added, delta->added);
      EXPECT_EQ(full->changed, delta->changed);
      EXPECT_EQ(full->removed, delta->removed);
      EXPECT_EQ(full->unchanged, delta->unchanged);
      ActualState a1 = actual, a2 = actual;
      std::move(*full).mergeInto(a1);
      std::move(*delta).mergeInto(a2);
      ASSERT_EQ(stateText(a1), stateText(a2));
      // The capacity totals planSyncDelta starts from: what the frontends hold.
      size_t entries = 0, ranges = 0;
      for (const auto& [k, f] : a2.frontends) {
        entries += svcEntriesOf(f);
        ranges += f.sourceRanges.size();
      }
      EXPECT_EQ(a1.svcEntries, entries);
      EXPECT_EQ(a2.svcEntries, entries);
      EXPECT_EQ(a1.srcRanges, ranges);
      EXPECT_EQ(a2.srcRanges, ranges);
      if (g.pick(8) == 0) {
        // The daemon's failure path: the store goes back, the maps stay.
        store.revert(std::move(undo));
        EXPECT_EQ(store.toJson().dump(), before);
        continue;
      }
      actual = std::move(a1);
    }
    EXPECT_GT(deltas, 20);
  }
}

}  // namespace
}  // namespace svclb
