#include "loader/syncer.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <span>
#include <variant>

#include "loader/drain.h"
#include "loader/wall_clock.h"

namespace svclb {

Syncer::Syncer(Dataplane& dp, SyncOptions opts) : dp_(dp), opts_(opts) {
  actual_.svcIds = IdPool(dp.config().maxSvcIds);
  actual_.backendIds = IdPool(dp.config().maxBackends);
}

namespace {

FrontendKey keyOf(const svc_key& k) {
  FrontendKey fk{ntohl(k.vip), ntohs(k.port), k.proto};
  fk.scope = k.scope;
  return fk;
}

FrontendKey keyOf(const svc6_key& k) {
  FrontendKey fk{0, ntohs(k.port), k.proto};
  std::memcpy(fk.vip6.data(), &k.vip, sizeof k.vip);
  fk.scope = k.scope;
  return fk;
}

LbFilter::Elem filterElem(const FrontendKey& k) {
  if (k.v6()) return LbFilter::ipv6(k.vip6.data(), htons(k.port), false);
  return LbFilter::ipv4(htonl(k.vip), htons(k.port), false);
}

LbFilter::Elem filterElem(const backend_value& v, const Ip6& addr6) {
  if (addr6 != Ip6{}) return LbFilter::ipv6(addr6.data(), v.port, true);
  return LbFilter::ipv4(v.addr, v.port, true);
}

// The masters and slots of one frontend map (svc_v1 or svc6_v1) into `st`;
// a slot of no master, or beyond its master's total, into `strays`.
template <class Map, class Key>
void adoptFrontends(const Map& map, ActualState& st, std::map<uint32_t, FrontendKey>& bySvcId,
                    std::vector<Key>& strays) {
  std::vector<std::pair<Key, svc_value>> slots;
  map.forEach([&](const Key& k, const svc_value& v) {
    if (k.scope != SVC_SCOPE_EXTERNAL && k.scope != SVC_SCOPE_INTERNAL) return;
    if (k.slot != 0) {
      slots.emplace_back(k, v);
      return;
    }
    const FrontendKey fk = keyOf(k);
    ActualFrontend f;
    f.key = fk;
    f.svcId = v.svc_id;
    f.master = v;
    f.slots.assign(v.total, 0);
    // The table's content is not read back: a sentinel makes the first sync
    // rewrite it (an atomic swap to the same choices) or remove it.
    if (v.algo == SVC_ALGO_MAGLEV) f.maglev = {0};
    st.svcIds.markUsed(v.svc_id);
    bySvcId[v.svc_id] = fk;
    st.frontends[fk] = std::move(f);
  });
  for (const auto& [k, v] : slots) {
    auto it = st.frontends.find(keyOf(k));
    if (it == st.frontends.end() || k.slot > it->second.slots.size()) {
      strays.push_back(k);
      continue;
    }
    it->second.slots[k.slot - 1] = v.backend_id;
  }
}

}  // namespace

Status Syncer::adopt() {
  ActualState st;
  st.svcIds = IdPool(dp_.config().maxSvcIds);
  st.backendIds = IdPool(dp_.config().maxBackends);
  auto svc = dp_.services();
  auto svc6 = dp_.services6();
  auto backends = dp_.backends();

  std::map<uint32_t, FrontendKey> bySvcId;
  std::vector<svc_key> strays;
  std::vector<svc6_key> strays6;
  adoptFrontends(svc, st, bySvcId, strays);
  adoptFrontends(svc6, st, bySvcId, strays6);

  // Backend entries: one pass over the array, grouped by owner. A held
  // (removed) TCP entry of no frontend is a deleted Service's: kept below
  // if live flows still name it.
  std::vector<uint32_t> orphanBackends;
  std::map<uint32_t, backend_value> heldOrphans;
  const uint32_t cap = dp_.config().maxBackends;
  if (auto rd = backends.forEachBatch([&](const uint32_t& id, const backend_value& v) {
        if (v.state == BE_STATE_EMPTY || id == 0 || id >= cap) return;
        auto owner = bySvcId.find(v.svc_id);
        if (owner == bySvcId.end()) {
          if (v.state == BE_STATE_REMOVED && v.proto == IPPROTO_TCP) {
            heldOrphans[id] = v;
          } else {
            orphanBackends.push_back(id);
          }
          return;
        }
        st.backendIds.markUsed(id);
        ActualBackend b{id, v};
        if (v.state == BE_STATE_REMOVED) b.removedAt = std::chrono::steady_clock::now();
        st.frontends[owner->second].backends.push_back(b);
      });
      !rd)
    return Error::fromErrno(rd.error().code, "read backends map");

  // A deleted Service's frontend retired before the restart: its held
  // backends grouped by svc_id under the frontend their live flows were
  // sent to (Syncer::apply kept it so; its key is in no map but the CT's).
  // Held backends no live flow names go now.
  if (!heldOrphans.empty()) {
    auto flows = liveFlowFrontends(dp_, heldOrphans);
    if (!flows) return Error::fromErrno(flows.error().code, "walk the conntrack maps");
    std::map<uint32_t, const FlowFrontend*> keyOfSvc;  // svc_id -> its flows' lowest frontend
    for (const auto& [id, ff] : *flows) {
      auto& k = keyOfSvc[heldOrphans.at(id).svc_id];
      if (!k || ff.key < k->key) k = &ff;
    }
    const auto now = std::chrono::steady_clock::now();
    // A key taken by a live frontend, or by another svc_id's held group
    // (an externalTrafficPolicy: Local frontend and its node-view twin send
    // their flows to one address: the twin's group takes the twin's scope).
    auto taken = [&](const FrontendKey& key, uint32_t svcId) {
      auto it = st.frontends.find(key);
      return it != st.frontends.end() && (!it->second.retired || it->second.svcId != svcId);
    };
    for (const auto& [id, value] : heldOrphans) {
      const uint32_t svcId = value.svc_id;
      auto k = keyOfSvc.find(svcId);
      if (k == keyOfSvc.end() || bySvcId.count(svcId)) {
        orphanBackends.push_back(id);
        continue;
      }
      FrontendKey key = k->second->key;
      if (taken(key, svcId)) key.scope = SVC_SCOPE_INTERNAL;
      if (taken(key, svcId)) {
        orphanBackends.push_back(id);
        continue;
      }
      ActualFrontend& f = st.frontends[key];
      if (!f.retired) {
        f.key = key;
        f.svcId = svcId;
        f.retired = true;
        // Not a single-entry flow: not its backends' designated frontend.
        f.master.flags = k->second->single ? 0 : SVC_F_EXTERNAL;
        st.svcIds.markUsed(svcId);
      }
      st.backendIds.markUsed(id);
      ActualBackend b{id, value};
      b.removedAt = now;
      f.backends.push_back(b);
    }
  }

  // An IPv6 frontend's backends have their address in backend6_v1.
  {
    auto backends6 = dp_.backends6();
    for (auto& [fk, f] : st.frontends) {
      if (!fk.v6()) continue;
      for (auto& b : f.backends) {
        auto v = backends6.lookup(b.id);
        if (!v) return Error::fromErrno(errno, "read backend6 map");
        std::memcpy(b.addr6.data(), &v->addr, sizeof v->addr);
      }
    }
  }

  // Source ranges, grouped by owner. Each frontend's list ends up sorted
  // (planSync compares sorted lists); ranges of no frontend are strays.
  std::vector<src_range_key> strayRanges;
  std::vector<src_range6_key> strayRanges6;
  {
    std::map<uint32_t, ActualFrontend*> owners;
    for (auto& [fk, f] : st.frontends) owners[f.svcId] = &f;
    dp_.srcRanges().forEach([&](const src_range_key& k, const uint8_t&) {
      auto owner = owners.find(k.svc_id);
      if (owner == owners.end() || k.prefixlen < 32 || k.prefixlen > 64) {
        strayRanges.push_back(k);
        return;
      }
      // The trie ignores bits past the prefix; so does the comparison.
      const auto prefix = static_cast<uint8_t>(k.prefixlen - 32);
      const uint32_t mask = prefix == 0 ? 0u : 0xffffffffu << (32 - prefix);
      owner->second->sourceRanges.push_back({ntohl(k.addr) & mask, prefix});
    });
    dp_.srcRanges6().forEach([&](const src_range6_key& k, const uint8_t&) {
      auto owner = owners.find(k.svc_id);
      if (owner == owners.end() || k.prefixlen < 32 || k.prefixlen > 160) {
        strayRanges6.push_back(k);
        return;
      }
      SourceRange r;
      r.isV6 = true;
      r.prefix = static_cast<uint8_t>(k.prefixlen - 32);
      std::memcpy(r.addr6.data(), &k.addr, sizeof k.addr);
      owner->second->sourceRanges.push_back(r);  // written masked (normalizeRanges)
    });
    for (auto& [fk, f] : st.frontends) {
      auto& r = f.sourceRanges;
      std::sort(r.begin(), r.end());
      r.erase(std::unique(r.begin(), r.end()), r.end());
    }
  }
  for (const auto& [fk, f] : st.frontends) {
    st.svcEntries += svcEntriesOf(f);
    st.srcRanges += f.sourceRanges.size();
  }

  // A frontend whose slots name missing backends (crash mid-sync) keeps
  // them as they are: the next sync rewrites every slot that differs.
  std::vector<MapOp> cleanup;
  for (const auto& k : strays) cleanup.emplace_back(mapop::DeleteSvc{k});
  for (const auto& k : strays6) cleanup.emplace_back(mapop::DeleteSvc6{k});
  for (uint32_t id : orphanBackends) cleanup.emplace_back(mapop::FreeBackend{id});
  actual_ = std::move(st);
  if (auto fs = rebuildFilter(); !fs) return fs;
  if (auto br =
          beRev_.adopt(opts_.singleEntryFlows ? actual_ : ActualState(), dp_.beRev(), dp_.beRev6());
      !br)
    return br;
  // Stray ranges go by their exact key (one may not be a valid SourceRange).
  auto ranges = dp_.srcRanges();
  for (const auto& k : strayRanges)
    if (auto e = ranges.erase(k); !e) return e;
  auto ranges6 = dp_.srcRanges6();
  for (const auto& k : strayRanges6)
    if (auto e = ranges6.erase(k); !e) return e;
  return execute(cleanup);
}

namespace {

backend6_value backend6Value(const mapop::PutBackend& op) {
  backend6_value v{};
  std::memcpy(&v.addr, op.addr6.data(), sizeof v.addr);
  return v;
}

// One op as its own map write.
struct WriteOne {
  // A freed backend's counts into its frontend's svc_stats_v2, CPU by CPU.
  // A reject the program counts there meanwhile (microseconds) is lost.
  Status fold(uint32_t id, uint32_t svcId) {
    const std::vector<lb_stats> be = beStats.lookup(id);
    std::vector<lb_stats> sum = svcStats.lookup(svcId);
    if (sum.empty()) return Error::fromErrno(errno, "read map " SVCLB_MAP_SVC_STATS);
    for (size_t c = 0; c < be.size(); ++c) addStats(sum[std::min(c, sum.size() - 1)], be[c]);
    return svcStats.update(svcId, sum);
  }

  ServiceMap svc;
  BackendMap backends;
  StatsMap svcStats;
  BackendSlots beStats;
  SrcRangeMap ranges;
  MaglevMap maglev;
  Service6Map svc6;
  Backend6Map backends6;
  SrcRange6Map ranges6;

  Status operator()(const mapop::PutBackend& op) {
    if (op.v6())
      if (auto st = backends6.update(op.id, backend6Value(op)); !st) return st;
    return backends.update(op.id, op.value);
  }
  Status operator()(const mapop::PutSvc6& op) { return svc6.update(op.key, op.value); }
  Status operator()(const mapop::DeleteSvc6& op) { return svc6.erase(op.key); }
  Status operator()(const mapop::FreeBackend& op) {
    if (op.foldInto)
      if (auto st = fold(op.id, op.foldInto); !st) return st;
    if (auto st = beStats.own(op.id, 0); !st) return st;
    return backends.update(op.id, backend_value{});
  }
  Status operator()(const mapop::ResetSvcStats& op) { return svcStats.reset(op.svcId); }
  Status operator()(const mapop::ResetBeStats& op) { return beStats.own(op.id, op.svcId); }
  Status operator()(const mapop::PutSvc& op) { return svc.update(op.key, op.value); }
  Status operator()(const mapop::DeleteSvc& op) { return svc.erase(op.key); }
  Status operator()(const mapop::PutMaglev& op) { return maglev.put(op.svcId, op.table); }
  Status operator()(const mapop::DeleteMaglev& op) { return maglev.erase(op.svcId); }
  Status operator()(const mapop::PutSrcRange& op) {
    if (op.range.v6()) return ranges6.update(makeSrcRange6Key(op.svcId, op.range), uint8_t{1});
    return ranges.update(makeSrcRangeKey(op.svcId, op.range), uint8_t{1});
  }
  Status operator()(const mapop::DeleteSrcRange& op) {
    if (op.range.v6()) return ranges6.erase(makeSrcRange6Key(op.svcId, op.range));
    return ranges.erase(makeSrcRangeKey(op.svcId, op.range));
  }
};

}  // namespace

// One group of a regrouped run (writeOrder): ops[order[i..j)] as one typed
// batch write, in the given order. Every op of group g is of g's kind
// (batchGroup), so std::get cannot fail.
Status Syncer::writeGroup(BatchGroup g, const std::vector<MapOp>& ops,
                          std::span<const size_t> idx) {
  switch (g) {
    case BatchGroup::SvcStatsResets: {
      std::vector<uint32_t> ids;
      ids.reserve(idx.size());
      for (size_t k : idx) ids.push_back(std::get<mapop::ResetSvcStats>(ops[k]).svcId);
      return dp_.svcStats().resetBatch(ids);
    }
    case BatchGroup::BackendStatsResets: {
      auto slots = dp_.backendStats();
      for (size_t k : idx) {
        const auto& op = std::get<mapop::ResetBeStats>(ops[k]);
        if (auto st = slots.own(op.id, op.svcId); !st) return st;
      }
      return {};
    }
    case BatchGroup::BackendEntries: {
      // IPv6 backends' addresses (backend6_v1) before their entries.
      std::vector<uint32_t> ids, ids6;
      std::vector<backend_value> vals;
      std::vector<backend6_value> vals6;
      ids.reserve(idx.size());
      vals.reserve(idx.size());
      for (size_t k : idx) {
        const auto& op = std::get<mapop::PutBackend>(ops[k]);
        ids.push_back(op.id);
        vals.push_back(op.value);
        if (op.v6()) {
          ids6.push_back(op.id);
          vals6.push_back(backend6Value(op));
        }
      }
      if (!ids6.empty())
        if (auto st = dp_.backends6().updateBatch(ids6, vals6); !st) return st;
      return dp_.backends().updateBatch(ids, vals);
    }
    case BatchGroup::Slots:
    case BatchGroup::Masters: {
      // One batch per map; within a group the order of different
      // frontends' writes does not matter (writeOrder).
      std::vector<svc_key> keys;
      std::vector<svc_value> vals;
      std::vector<svc6_key> keys6;
      std::vector<svc_value> vals6;
      keys.reserve(idx.size());
      vals.reserve(idx.size());
      for (size_t k : idx) {
        if (const auto* op6 = std::get_if<mapop::PutSvc6>(&ops[k])) {
          keys6.push_back(op6->key);
          vals6.push_back(op6->value);
          continue;
        }
        const auto& op = std::get<mapop::PutSvc>(ops[k]);
        keys.push_back(op.key);
        vals.push_back(op.value);
      }
      if (!keys6.empty())
        if (auto st = dp_.services6().updateBatch(keys6, vals6); !st) return st;
      if (keys.empty()) return {};
      return dp_.services().updateBatch(keys, vals);
    }
  }
  return Error{EINVAL, "unknown batch group"};
}

Status Syncer::execute(const std::vector<MapOp>& ops) {
  WriteOne write{dp_.services(),     dp_.backends(),  dp_.svcStats(),
                 dp_.backendStats(), dp_.srcRanges(), dp_.maglev(),
                 dp_.services6(),    dp_.backends6(), dp_.srcRanges6()};
  // writeOrder (loader/reconcile.h): runs regrouped so that each group is
  // one batch per map.
  const std::vector<size_t> order = writeOrder(ops);
  size_t i = 0;
  while (i < order.size()) {
    if (const auto g = batchGroup(ops[order[i]])) {
      size_t j = i + 1;
      while (j < order.size() && batchGroup(ops[order[j]]) == g) ++j;
      if (j - i > 1) {
        if (auto st = writeGroup(*g, ops, std::span<const size_t>(order).subspan(i, j - i)); !st)
          return st;
        stats_.opsApplied += j - i;
        i = j;
        continue;
      }
    }
    if (auto st = std::visit(write, ops[order[i++]]); !st) return st;
    ++stats_.opsApplied;
  }
  return {};
}

Status Syncer::rebuildFilter() {
  filter_.clear();
  filterFrontends_.clear();
  filterBackends_.clear();
  for (const auto& [key, fe] : actual_.frontends) {
    filterFrontends_.insert(key);
    filter_.add(filterElem(key));
    for (const auto& b : fe.backends) {
      const auto e = filterElem(b.value, b.addr6);
      filterBackends_[b.id] = e;
      filter_.add(e);
    }
  }
  return filter_.writeAll(dp_.lbFilter());
}

Status Syncer::filterBefore(const Plan& plan, std::vector<LbFilter::Elem>& later) {
  auto master = [&](const FrontendKey& k) {
    if (filterFrontends_.insert(k).second) filter_.add(filterElem(k));
  };
  for (const auto& op : plan.ops) {
    if (const auto* p = std::get_if<mapop::PutSvc>(&op)) {
      if (p->key.slot == 0) master(keyOf(p->key));
    } else if (const auto* p6 = std::get_if<mapop::PutSvc6>(&op)) {
      if (p6->key.slot == 0) master(keyOf(p6->key));
    } else if (const auto* b = std::get_if<mapop::PutBackend>(&op)) {
      const auto e = filterElem(b->value, b->addr6);
      auto [it, fresh] = filterBackends_.try_emplace(b->id, e);
      if (!fresh) {
        if (it->second == e) continue;
        later.push_back(it->second);  // the id's old address: cleared after the writes
        it->second = e;
      }
      filter_.add(e);
    }
  }
  return filter_.flush(dp_.lbFilter());
}

Status Syncer::filterAfter(const Plan& plan, std::vector<LbFilter::Elem>& later) {
  // What each master and backend id is once the plan is written: its last
  // op in plan order (execute regroups only runs without deletes or frees).
  std::map<FrontendKey, bool> masters;  // key -> still there
  std::map<uint32_t, bool> backends;    // id -> still there
  for (const auto& op : plan.ops) {
    if (const auto* p = std::get_if<mapop::PutSvc>(&op)) {
      if (p->key.slot == 0) masters[keyOf(p->key)] = true;
    } else if (const auto* p6 = std::get_if<mapop::PutSvc6>(&op)) {
      if (p6->key.slot == 0) masters[keyOf(p6->key)] = true;
    } else if (const auto* d = std::get_if<mapop::DeleteSvc>(&op)) {
      if (d->key.slot == 0) masters[keyOf(d->key)] = false;
    } else if (const auto* d6 = std::get_if<mapop::DeleteSvc6>(&op)) {
      if (d6->key.slot == 0) masters[keyOf(d6->key)] = false;
    } else if (const auto* b = std::get_if<mapop::PutBackend>(&op)) {
      backends[b->id] = true;
    } else if (const auto* f = std::get_if<mapop::FreeBackend>(&op)) {
      backends[f->id] = false;
    }
  }
  // A retired frontend's key stays (its connections' packets must reach
  // the CT lookup) until it goes from the state (freeDrained's removedKeys).
  auto retired = [&](const FrontendKey& k) {
    auto it = plan.next.frontends.find(k);
    return it != plan.next.frontends.end() && it->second.retired;
  };
  for (const auto& k : plan.removedKeys)
    if (!masters.count(k) && !plan.next.frontends.count(k)) masters[k] = false;
  for (const auto& [k, there] : masters)
    if (!there && !retired(k) && filterFrontends_.erase(k)) filter_.remove(filterElem(k));
  for (const auto& [id, there] : backends) {
    if (there) continue;
    if (auto it = filterBackends_.find(id); it != filterBackends_.end()) {
      later.push_back(it->second);
      filterBackends_.erase(it);
    }
  }
  for (const auto& e : later) filter_.remove(e);
  return filter_.flush(dp_.lbFilter());
}

Status Syncer::apply(Plan plan) {
  auto start = std::chrono::steady_clock::now();
  std::vector<LbFilter::Elem> later;
  Status st = filterBefore(plan, later);
  if (st) st = execute(plan.ops);
  if (st) st = filterAfter(plan, later);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ++stats_.count;
  stats_.lastSeconds = secs;
  stats_.lastEndUnixNs = static_cast<uint64_t>(unixNowNs());
  stats_.totalSeconds += secs;
  if (!st) {
    ++stats_.errors;
    stats_.lastError = st.error().message;
    // The maps hold part of the plan: re-read them so the next plan starts
    // from what is really there.
    if (auto again = adopt(); !again) {
      stats_.lastError += "; re-reading the maps failed too: " + again.error().message;
      return Error{st.error().code, stats_.lastError};
    }
    return st;
  }
  stats_.lastError.clear();
  closeSocketsOfFreedBackends(plan);
  // The frontends whose backends' designations may change: a partial
  // plan's own, every one for a whole plan.
  std::vector<FrontendKey> touched;
  if (plan.partial) {
    touched = plan.removedKeys;
    for (const auto& [k, _] : plan.next.frontends) touched.push_back(k);
  } else {
    for (const auto& [k, _] : actual_.frontends) touched.push_back(k);
    for (const auto& [k, _] : plan.next.frontends)
      if (!actual_.frontends.count(k)) touched.push_back(k);
  }
  std::move(plan).mergeInto(actual_);
  // A failed designation write only costs new flows their single entry:
  // logged, the plan stands; the next adopt() rewrites the map whole.
  if (opts_.singleEntryFlows)
    if (auto br = beRev_.update(actual_, touched, dp_.beRev(), dp_.beRev6()); !br)
      fmt::print(stderr, "svclbd: be_rev_v1 (single-entry flows): {}\n", br.error().message);
  return {};
}

size_t Syncer::removedBackends() const {
  size_t n = 0;
  for (const auto& [k, fe] : actual_.frontends)
    for (const auto& b : fe.backends) n += b.value.state == BE_STATE_REMOVED;
  return n;
}

Result<size_t> Syncer::freeDrained(const std::set<uint32_t>& live,
                                   std::chrono::steady_clock::time_point walkStart) {
  Plan plan;
  plan.partial = true;
  plan.next.svcIds = actual_.svcIds;
  plan.next.backendIds = actual_.backendIds;
  plan.next.svcEntries = actual_.svcEntries;
  plan.next.srcRanges = actual_.srcRanges;
  size_t freed = 0;
  for (const auto& [k, fe] : actual_.frontends) {
    ActualFrontend* next = nullptr;
    for (const auto& b : fe.backends) {
      if (b.value.state != BE_STATE_REMOVED || b.removedAt >= walkStart || live.count(b.id))
        continue;
      if (!next) next = &(plan.next.frontends[k] = fe);
      plan.ops.emplace_back(mapop::FreeBackend{b.id, fe.retired ? 0 : fe.svcId});
      plan.next.backendIds.release(b.id);
      std::erase_if(next->backends, [&](const ActualBackend& x) { return x.id == b.id; });
      ++freed;
    }
    if (!next) continue;
    ++plan.changed;
    // A deleted Service's frontend goes with its last held backend.
    if (next->retired && next->backends.empty()) {
      plan.next.svcIds.release(next->svcId);
      plan.next.frontends.erase(k);
      plan.removedKeys.push_back(k);
    }
  }
  if (freed == 0) return size_t{0};
  if (auto st = apply(std::move(plan)); !st) return st.error();
  return freed;
}

void Syncer::closeSocketsOfFreedBackends(const Plan& plan) {
  std::set<uint32_t> freed;
  for (const auto& op : plan.ops)
    if (const auto* f = std::get_if<mapop::FreeBackend>(&op)) freed.insert(f->id);
  if (freed.empty()) return;
  std::vector<sock_destroy_key> targets;
  std::vector<sock_destroy6_key> targets6;
  for (const auto& [key, fe] : actual_.frontends) {
    if (key.proto != IPPROTO_UDP) continue;
    for (const auto& b : fe.backends) {
      if (!freed.count(b.id)) continue;
      if (key.v6()) {
        sock_destroy6_key k{};
        std::memcpy(&k.vip, key.vip6.data(), sizeof(k.vip));
        std::memcpy(&k.addr, b.addr6.data(), sizeof(k.addr));
        k.vport = htons(key.port);
        k.port = b.value.port;
        targets6.push_back(k);
        continue;
      }
      sock_destroy_key k{};
      k.vip = htonl(key.vip);
      k.vport = htons(key.port);
      k.addr = b.value.addr;
      k.port = b.value.port;
      targets.push_back(k);
    }
  }
  auto n = dp_.destroyUdpSockets(targets, targets6);
  if (!n) {
    fmt::print(stderr, "svclbd: closing UDP sockets of removed backends: {}\n", n.error().message);
    return;
  }
  stats_.socketsDestroyed += *n;
  if (*n) fmt::print(stderr, "svclbd: closed {} connected UDP socket(s) of removed backends\n", *n);
}

}  // namespace svclb
