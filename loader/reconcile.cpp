#include "loader/reconcile.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <set>
#include <tuple>

#include "loader/maglev.h"

namespace svclb {

Result<uint32_t> IdPool::allocate() {
  const uint32_t cap = capacity();
  if (cap <= 1 || inUse_ >= cap - 1)
    return Error{ENOSPC, fmt::format("all {} ids are in use", cap > 0 ? cap - 1 : 0)};
  uint32_t id = cursor_;
  for (uint32_t i = 0; i < cap; ++i) {
    id = id + 1 >= cap ? 1 : id + 1;
    if (!used_[id]) {
      used_[id] = true;
      ++inUse_;
      cursor_ = id;
      return id;
    }
  }
  return Error{ENOSPC, "no free id"};
}

void IdPool::markUsed(uint32_t id) {
  if (id == 0 || id >= used_.size() || used_[id]) return;
  used_[id] = true;
  ++inUse_;
  cursor_ = std::max(cursor_, id);
}

void IdPool::release(uint32_t id) {
  if (id == 0 || id >= used_.size() || !used_[id]) return;
  used_[id] = false;
  --inUse_;
}

svc_key makeSvcKey(const FrontendKey& k, uint16_t slot) {
  svc_key key{};
  key.vip = htonl(k.vip);
  key.port = htons(k.port);
  key.proto = k.proto;
  key.scope = k.scope;
  key.slot = slot;
  return key;
}

svc6_key makeSvc6Key(const FrontendKey& k, uint16_t slot) {
  svc6_key key{};
  std::memcpy(&key.vip, k.vip6.data(), sizeof key.vip);
  key.port = htons(k.port);
  key.proto = k.proto;
  key.scope = k.scope;
  key.slot = slot;
  return key;
}

MapOp putSvc(const FrontendKey& k, uint16_t slot, const svc_value& v) {
  if (k.v6()) return mapop::PutSvc6{makeSvc6Key(k, slot), v};
  return mapop::PutSvc{makeSvcKey(k, slot), v};
}

MapOp deleteSvc(const FrontendKey& k, uint16_t slot) {
  if (k.v6()) return mapop::DeleteSvc6{makeSvc6Key(k, slot)};
  return mapop::DeleteSvc{makeSvcKey(k, slot)};
}

src_range_key makeSrcRangeKey(uint32_t svcId, const SourceRange& r) {
  src_range_key key{};
  key.prefixlen = 32u + r.prefix;
  key.svc_id = svcId;
  key.addr = htonl(r.addr);
  return key;
}

src_range6_key makeSrcRange6Key(uint32_t svcId, const SourceRange& r) {
  src_range6_key key{};
  key.prefixlen = 32u + r.prefix;
  key.svc_id = svcId;
  std::memcpy(&key.addr, r.addr6.data(), sizeof key.addr);
  return key;
}

namespace {

constexpr size_t kMaxSlots = 65535;  // svc_key.slot / svc_value.total are 16-bit

uint8_t beState(const BackendSpec& b) {
  switch (b.state) {
    case EndpointState::Ready:
      return BE_STATE_ACTIVE;
    case EndpointState::Terminating:
      return BE_STATE_TERMINATING;
    default:
      return BE_STATE_NOT_READY;
  }
}

bool sameBackendValue(const backend_value& a, const backend_value& b) {
  return a.addr == b.addr && a.port == b.port && a.proto == b.proto && a.state == b.state &&
         a.svc_id == b.svc_id;
}

bool sameSvcValue(const svc_value& a, const svc_value& b) {
  return a.svc_id == b.svc_id && a.backend_id == b.backend_id && a.count == b.count &&
         a.total == b.total && a.algo == b.algo && a.flags == b.flags &&
         a.affinity_timeout == b.affinity_timeout && a.maglev_size == b.maglev_size;
}

// `f` leaves the maps. A TCP frontend with backends (keepRemovedTcp) stays
// in plan.next as retired: its backends held as BE_STATE_REMOVED, marked
// once its slots no longer name them, until freeDrained finds their
// connections ended. One already retired is carried over as it is.
// Returns whether `f` was a live frontend (a removal to count).
bool removeFrontend(const ActualFrontend& f, const SyncOptions& opts, Plan& plan) {
  if (f.retired) {
    plan.next.frontends[f.key] = f;
    return false;
  }
  // master first: lookups miss from here on
  plan.ops.push_back(deleteSvc(f.key, 0));
  for (const auto& r : f.sourceRanges) plan.ops.emplace_back(mapop::DeleteSrcRange{f.svcId, r});
  if (!f.maglev.empty()) plan.ops.emplace_back(mapop::DeleteMaglev{f.svcId});
  for (size_t s = 1; s <= f.slots.size(); ++s)
    plan.ops.push_back(deleteSvc(f.key, static_cast<uint16_t>(s)));
  if (f.key.proto == IPPROTO_TCP && opts.keepRemovedTcp && !f.backends.empty()) {
    ActualFrontend r = f;
    r.retired = true;
    r.slots.clear();
    r.maglev.clear();
    r.sourceRanges.clear();
    const auto now = std::chrono::steady_clock::now();
    for (auto& b : r.backends) {
      if (b.value.state == BE_STATE_REMOVED) continue;
      b.value.state = BE_STATE_REMOVED;
      b.removedAt = now;
      plan.ops.emplace_back(mapop::PutBackend{b.id, b.value, b.addr6});
    }
    plan.next.frontends[f.key] = std::move(r);
    return true;
  }
  for (const auto& b : f.backends) {
    plan.ops.emplace_back(mapop::FreeBackend{b.id});
    plan.next.backendIds.release(b.id);
  }
  plan.next.svcIds.release(f.svcId);
  return true;
}

// Plans one new or existing frontend. `old` is null for a new one.
uint8_t algoOf(const Frontend& want, const SyncOptions& opts) {
  auto it = want.annotations.find(kLbAlgorithmAnnotation);
  if (it == want.annotations.end()) return opts.defaultAlgo;
  return it->second == "maglev" ? SVC_ALGO_MAGLEV : SVC_ALGO_RANDOM;
}

// Sorted, deduplicated, host bits cleared; an impossible prefix is dropped.
std::vector<SourceRange> normalizeRanges(const std::vector<SourceRange>& in) {
  std::vector<SourceRange> out;
  for (SourceRange r : in) {
    if (r.prefix > (r.v6() ? 128 : 32)) continue;
    if (r.v6()) {
      r.addr6 = maskIPv6(r.addr6, r.prefix);
      r.addr = 0;
    } else {
      r.addr &= r.prefix == 0 ? 0u : 0xffffffffu << (32 - r.prefix);
    }
    out.push_back(r);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string ipPortKey(const ActualBackend& b) {
  if (b.addr6 != Ip6{}) return joinHostPort(formatIPv6(b.addr6), ntohs(b.value.port));
  return fmt::format("{}:{}", formatIPv4(ntohl(b.value.addr)), ntohs(b.value.port));
}

// At most the ops planFrontend emits for these frontends (a reserve: for
// 10,000 new Services the op list's regrowth was most of the planning time).
size_t opsBound(const std::map<FrontendKey, const Frontend*>& want) {
  size_t n = 0;
  for (const auto& [key, f] : want) n += 8 + 3 * f->backends.size() + 2 * f->sourceRanges.size();
  return n;
}

Status planFrontend(const Frontend& want, const ActualFrontend* old, const SyncOptions& opts,
                    Plan& plan, ActualFrontend& out) {
  out.key = want.key;
  out.ns = want.ns;
  out.name = want.name;
  out.portName = want.portName;

  if (old) {
    out.svcId = old->svcId;
  } else {
    auto id = plan.next.svcIds.allocate();
    if (!id) return Error{ENOSPC, "services map is full: " + id.error().message};
    out.svcId = *id;
    plan.ops.emplace_back(mapop::ResetSvcStats{out.svcId});
  }

  // Backends that keep their (addr, port) keep their id.
  std::map<std::tuple<uint32_t, Ip6, uint16_t>, const ActualBackend*> existing;
  if (old)
    for (const auto& b : old->backends) existing[{b.value.addr, b.addr6, b.value.port}] = &b;

  // Ready first, then terminating-and-serving (new flows only when no ready
  // one), then the endpoints that keep only their existing flows (an entry,
  // no slot). Which ones, as kube-proxy's conntrack: it never flushes a TCP
  // flow (a not-ready or terminating endpoint's connections go on) and
  // flushes a UDP flow whose endpoint no longer serves (its next datagram
  // is balanced anew). So for TCP the not-serving terminating and the
  // not-ready endpoints; for UDP none.
  std::vector<const BackendSpec*> ready, termServing, termOther;
  const bool keepFlows = want.key.proto == IPPROTO_TCP;
  for (const auto& b : want.backends) {
    if (b.state == EndpointState::Ready)
      ready.push_back(&b);
    else if (b.state == EndpointState::Terminating && b.serving)
      termServing.push_back(&b);
    else if (keepFlows)
      termOther.push_back(&b);
  }
  if (ready.size() + termServing.size() > kMaxSlots)
    return Error{E2BIG,
                 fmt::format("Service {}/{} has {} endpoints; at most {} are supported", want.ns,
                             want.name, ready.size() + termServing.size(), kMaxSlots)};

  bool changed = !old;
  std::vector<const BackendSpec*> order = ready;
  order.insert(order.end(), termServing.begin(), termServing.end());
  order.insert(order.end(), termOther.begin(), termOther.end());
  for (const BackendSpec* b : order) {
    backend_value v{};
    v.addr = b->v6() ? 0 : htonl(b->ip);
    v.port = htons(b->port);
    v.proto = want.key.proto;
    v.state = beState(*b);
    v.svc_id = out.svcId;
    auto it = existing.find({v.addr, b->ip6, v.port});
    uint32_t id;
    if (it != existing.end()) {
      id = it->second->id;
      const bool same = sameBackendValue(v, it->second->value);
      existing.erase(it);
      if (same) {
        out.backends.push_back({id, v, b->ip6});
        continue;
      }
    } else {
      auto nid = plan.next.backendIds.allocate();
      if (!nid) return Error{ENOSPC, "backends map is full: " + nid.error().message};
      id = *nid;
      plan.ops.emplace_back(mapop::ResetBeStats{id, out.svcId});
    }
    plan.ops.emplace_back(mapop::PutBackend{id, v, b->ip6});
    out.backends.push_back({id, v, b->ip6});
    changed = true;
  }

  // Slots: one per ready and terminating-serving backend, in `order`.
  const size_t total = ready.size() + termServing.size();
  out.slots.clear();
  for (size_t i = 0; i < total; ++i) out.slots.push_back(out.backends[i].id);
  for (size_t s = 1; s <= total; ++s) {
    if (old && s <= old->slots.size() && old->slots[s - 1] == out.slots[s - 1]) continue;
    svc_value slot{};
    slot.svc_id = out.svcId;
    slot.backend_id = out.slots[s - 1];
    plan.ops.push_back(putSvc(want.key, static_cast<uint16_t>(s), slot));
    changed = true;
  }

  // Maglev over the backends that take new flows: the ready ones, or the
  // terminating-serving ones when none is ready (slots 1..total then).
  const uint8_t algo = algoOf(want, opts);
  if (algo == SVC_ALGO_MAGLEV && total > 0) {
    const size_t n = ready.empty() ? total : ready.size();
    std::vector<MaglevBackend> mb;
    for (size_t i = 0; i < n; ++i) {
      const BackendSpec* spec = order[i];
      mb.push_back({ipPortKey(out.backends[i]), spec->weight ? spec->weight : 1u});
    }
    auto table = buildMaglevTable(mb, opts.maglevSize);
    if (!table) return table.error();
    out.maglev.resize(table->size());
    for (size_t e = 0; e < table->size(); ++e) out.maglev[e] = out.backends[(*table)[e]].id;
  }
  if (!out.maglev.empty() && (!old || old->maglev != out.maglev)) {
    plan.ops.emplace_back(mapop::PutMaglev{out.svcId, out.maglev});
    changed = true;
  }

  // Source ranges the frontend gains, before the master that may name them.
  out.sourceRanges = normalizeRanges(want.sourceRanges);
  std::vector<SourceRange> gone;
  {
    static const std::vector<SourceRange> kNone;
    const auto& had = old ? old->sourceRanges : kNone;
    std::vector<SourceRange> added;
    std::set_difference(out.sourceRanges.begin(), out.sourceRanges.end(), had.begin(), had.end(),
                        std::back_inserter(added));
    std::set_difference(had.begin(), had.end(), out.sourceRanges.begin(), out.sourceRanges.end(),
                        std::back_inserter(gone));
    for (const auto& r : added) {
      plan.ops.emplace_back(mapop::PutSrcRange{out.svcId, r});
      changed = true;
    }
  }

  svc_value master{};
  master.svc_id = out.svcId;
  master.count = static_cast<uint16_t>(ready.size());
  master.total = static_cast<uint16_t>(total);
  master.algo = out.maglev.empty() ? SVC_ALGO_RANDOM : SVC_ALGO_MAGLEV;
  master.maglev_size = static_cast<uint32_t>(out.maglev.size());
  master.flags = static_cast<uint8_t>((want.affinity ? SVC_F_AFFINITY : 0) | want.flags);
  master.affinity_timeout = want.affinity ? want.affinityTimeout : 0;
  out.master = master;
  if (!old || old->retired || !sameSvcValue(old->master, master)) {
    plan.ops.push_back(putSvc(want.key, 0, master));
    changed = true;
  }

  // Ranges the frontend lost, once the master no longer relies on them.
  for (const auto& r : gone) {
    plan.ops.emplace_back(mapop::DeleteSrcRange{out.svcId, r});
    changed = true;
  }

  if (old && !old->maglev.empty() && out.maglev.empty()) {
    plan.ops.emplace_back(mapop::DeleteMaglev{out.svcId});
    changed = true;
  }
  if (old)
    for (size_t s = total + 1; s <= old->slots.size(); ++s) {
      plan.ops.push_back(deleteSvc(want.key, static_cast<uint16_t>(s)));
      changed = true;
    }
  // Whatever is left in `existing` is no longer a backend of this frontend.
  // A TCP frontend's stays, without a slot, while its connections live
  // (BE_STATE_REMOVED; Syncer::freeDrained frees it once they ended); a UDP
  // frontend's goes now.
  for (const auto& [addrPort, b] : existing) {
    if (keepFlows && opts.keepRemovedTcp) {
      ActualBackend kept = *b;
      if (kept.value.state != BE_STATE_REMOVED) {
        kept.value.state = BE_STATE_REMOVED;
        kept.removedAt = std::chrono::steady_clock::now();
        plan.ops.emplace_back(mapop::PutBackend{kept.id, kept.value, kept.addr6});
        changed = true;
      }
      out.backends.push_back(kept);
      continue;
    }
    plan.ops.emplace_back(mapop::FreeBackend{b->id, out.svcId});
    plan.next.backendIds.release(b->id);
    changed = true;
  }

  if (!old || old->retired)
    ++plan.added;
  else if (changed)
    ++plan.changed;
  else
    ++plan.unchanged;
  return {};
}

}  // namespace

namespace {

size_t svcEntriesWanted(const Frontend& f) {
  size_t n = 1;
  for (const auto& b : f.backends)
    n += b.state == EndpointState::Ready || (b.state == EndpointState::Terminating && b.serving);
  return n;
}

Status checkCapacity(size_t entries, size_t ranges, const SyncOptions& opts) {
  if (ranges > opts.maxSrcRanges)
    return Error{ENOSPC, fmt::format("the source ranges map holds {} entries and this state needs "
                                     "{} (one per loadBalancerSourceRanges entry and frontend)",
                                     opts.maxSrcRanges, ranges)};
  if (entries > opts.maxServiceEntries)
    return Error{ENOSPC,
                 fmt::format("the services map holds {} entries (svclbd --max-services) and "
                             "this state needs {} (one per Service port and one per endpoint)",
                             opts.maxServiceEntries, entries)};
  return {};
}

}  // namespace

void Plan::mergeInto(ActualState& actual) && {
  if (!partial) {
    actual = std::move(next);
    return;
  }
  for (const auto& k : removedKeys) actual.frontends.erase(k);
  for (auto& [k, f] : next.frontends) actual.frontends[k] = std::move(f);
  actual.svcIds = std::move(next.svcIds);
  actual.backendIds = std::move(next.backendIds);
  actual.svcEntries = next.svcEntries;
  actual.srcRanges = next.srcRanges;
}

namespace {

// batchGroup's cases: the four kinds a run is made of, nothing for the rest.
struct GroupOf {
  std::optional<BatchGroup> operator()(const mapop::ResetSvcStats&) const {
    return BatchGroup::SvcStatsResets;
  }
  std::optional<BatchGroup> operator()(const mapop::ResetBeStats&) const {
    return BatchGroup::BackendStatsResets;
  }
  std::optional<BatchGroup> operator()(const mapop::PutBackend&) const {
    return BatchGroup::BackendEntries;
  }
  std::optional<BatchGroup> operator()(const mapop::PutSvc& op) const {
    return op.key.slot != 0 ? BatchGroup::Slots : BatchGroup::Masters;
  }
  std::optional<BatchGroup> operator()(const mapop::PutSvc6& op) const {
    return op.key.slot != 0 ? BatchGroup::Slots : BatchGroup::Masters;
  }
  template <class Op>
  std::optional<BatchGroup> operator()(const Op&) const {
    return std::nullopt;
  }
};

}  // namespace

std::optional<BatchGroup> batchGroup(const MapOp& op) { return std::visit(GroupOf{}, op); }

std::vector<size_t> writeOrder(const std::vector<MapOp>& ops) {
  std::vector<std::optional<BatchGroup>> group;
  group.reserve(ops.size());
  for (const MapOp& op : ops) group.push_back(batchGroup(op));
  std::vector<size_t> order;
  order.reserve(ops.size());
  size_t i = 0;
  while (i < ops.size()) {
    if (!group[i]) {
      order.push_back(i++);
      continue;
    }
    size_t j = i;
    while (j < ops.size() && group[j]) ++j;
    for (int g = 0; g < kBatchGroups; ++g)
      for (size_t k = i; k < j; ++k)
        if (*group[k] == static_cast<BatchGroup>(g)) order.push_back(k);
    i = j;
  }
  return order;
}

Result<Plan> planSyncDelta(const ActualState& actual, const std::vector<Frontend>& changed,
                           const std::vector<FrontendKey>& removed, const SyncOptions& opts) {
  Plan plan;
  plan.partial = true;
  plan.next.svcIds = actual.svcIds;
  plan.next.backendIds = actual.backendIds;

  std::map<FrontendKey, const Frontend*> want;
  for (const auto& f : changed) want[f.key] = &f;
  std::set<FrontendKey> gone;
  for (const auto& k : removed)
    if (!want.count(k) && actual.frontends.count(k)) gone.insert(k);

  // Removals first, in key order, as planSync makes them (a retired one
  // comes back in plan.next: mergeInto erases the key, then puts it back).
  for (const auto& key : gone) {
    plan.removed += removeFrontend(actual.frontends.at(key), opts, plan);
    plan.removedKeys.push_back(key);
  }
  // The capacity planSync checks: what stays as it is counts as it stands
  // in `actual` (one master plus one slot per slot), the rest as wanted:
  // the totals of `actual`, less what the removed and the planned frontends
  // hold now, plus what the planned ones will hold.
  size_t entries = actual.svcEntries, ranges = actual.srcRanges;
  auto drop = [&](const ActualFrontend& f) {
    entries -= svcEntriesOf(f);
    ranges -= f.sourceRanges.size();
  };
  for (const auto& key : gone) drop(actual.frontends.at(key));
  for (const auto& [key, f] : want) {
    if (auto it = actual.frontends.find(key); it != actual.frontends.end()) drop(it->second);
    entries += svcEntriesWanted(*f);
    ranges += normalizeRanges(f->sourceRanges).size();
  }
  if (auto st = checkCapacity(entries, ranges, opts); !st) return st.error();
  plan.next.svcEntries = entries;
  plan.next.srcRanges = ranges;
  plan.ops.reserve(plan.ops.size() + opsBound(want));

  // Live frontends neither removed nor planned: unchanged.
  size_t kept = 0;
  for (const auto& [key, f] : actual.frontends)
    kept += !f.retired && !gone.count(key) && !want.count(key);
  for (const auto& [key, f] : want) {
    auto it = actual.frontends.find(key);
    ActualFrontend out;
    auto st =
        planFrontend(*f, it == actual.frontends.end() ? nullptr : &it->second, opts, plan, out);
    if (!st) return st.error();
    plan.next.frontends[key] = std::move(out);
  }
  plan.unchanged += kept;  // not visited: unchanged by definition
  return plan;
}

Result<Plan> planSync(const ActualState& actual, const std::vector<Frontend>& desired,
                      const SyncOptions& opts) {
  Plan plan;
  plan.next.svcIds = actual.svcIds;
  plan.next.backendIds = actual.backendIds;

  std::map<FrontendKey, const Frontend*> want;
  for (const auto& f : desired) want[f.key] = &f;

  // Removals first: they free ids and slots the additions may need.
  for (const auto& [key, f] : actual.frontends) {
    if (want.count(key)) continue;
    plan.removed += removeFrontend(f, opts, plan);
  }
  // svc_v1 holds a master and one slot per ready/serving backend of every
  // frontend: refuse up front what cannot fit, before any write.
  size_t entries = 0;
  for (const auto& [key, f] : want) entries += svcEntriesWanted(*f);
  size_t ranges = 0;
  for (const auto& [key, f] : want) ranges += normalizeRanges(f->sourceRanges).size();
  if (auto st = checkCapacity(entries, ranges, opts); !st) return st.error();
  plan.next.svcEntries = entries;
  plan.next.srcRanges = ranges;
  plan.ops.reserve(plan.ops.size() + opsBound(want));

  for (const auto& [key, f] : want) {
    auto it = actual.frontends.find(key);
    ActualFrontend out;
    auto st =
        planFrontend(*f, it == actual.frontends.end() ? nullptr : &it->second, opts, plan, out);
    if (!st) return st.error();
    plan.next.frontends[key] = std::move(out);
  }
  return plan;
}

}  // namespace svclb
