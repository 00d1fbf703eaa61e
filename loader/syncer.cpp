#include "loader/syncer.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <map>

namespace svclb {

Syncer::Syncer(Dataplane& dp, SyncOptions opts) : dp_(dp), opts_(opts) {
  actual_.svcIds = IdPool(dp.config().maxSvcIds);
  actual_.backendIds = IdPool(dp.config().maxBackends);
}

Status Syncer::adopt() {
  ActualState st;
  st.svcIds = IdPool(dp_.config().maxSvcIds);
  st.backendIds = IdPool(dp_.config().maxBackends);
  auto svc = dp_.services();
  auto backends = dp_.backends();

  std::map<uint32_t, FrontendKey> bySvcId;
  std::vector<std::pair<svc_key, svc_value>> slots;
  svc.forEach([&](const svc_key& k, const svc_value& v) {
    if (k.scope != SVC_SCOPE_EXTERNAL) return;
    if (k.slot != 0) {
      slots.emplace_back(k, v);
      return;
    }
    FrontendKey fk{ntohl(k.vip), ntohs(k.port), k.proto};
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

  std::vector<svc_key> strays;
  for (const auto& [k, v] : slots) {
    FrontendKey fk{ntohl(k.vip), ntohs(k.port), k.proto};
    auto it = st.frontends.find(fk);
    if (it == st.frontends.end() || k.slot > it->second.slots.size()) {
      strays.push_back(k);
      continue;
    }
    it->second.slots[k.slot - 1] = v.backend_id;
  }

  // Backend entries: one pass over the array, grouped by owner.
  std::vector<uint32_t> orphanBackends;
  const uint32_t cap = dp_.config().maxBackends;
  {
    const uint32_t batch = 4096;
    std::vector<uint32_t> keys(batch);
    std::vector<backend_value> vals(batch);
    uint32_t outBatch = 0;
    bool first = true;
    for (;;) {
      uint32_t n = batch;
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      int err = bpf_map_lookup_batch(backends.fd(), first ? nullptr : &outBatch, &outBatch,
                                     keys.data(), vals.data(), &n, &opts);
      first = false;
      if (err && errno != ENOENT) return Error::fromErrno(errno, "read backends map");
      for (uint32_t i = 0; i < n; ++i) {
        if (vals[i].state == BE_STATE_EMPTY || keys[i] == 0 || keys[i] >= cap) continue;
        auto owner = bySvcId.find(vals[i].svc_id);
        if (owner == bySvcId.end()) {
          orphanBackends.push_back(keys[i]);
          continue;
        }
        st.backendIds.markUsed(keys[i]);
        st.frontends[owner->second].backends.push_back({keys[i], vals[i]});
      }
      if (err) break;  // ENOENT: that was the last batch
    }
  }

  // Source ranges, grouped by owner. Each frontend's list ends up sorted
  // (planSync compares sorted lists); ranges of no frontend are strays.
  std::vector<src_range_key> strayRanges;
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
    for (auto& [fk, f] : st.frontends) {
      auto& r = f.sourceRanges;
      std::sort(r.begin(), r.end());
      r.erase(std::unique(r.begin(), r.end()), r.end());
    }
  }

  // A frontend whose slots name missing backends (crash mid-sync) keeps
  // them as they are: the next sync rewrites every slot that differs.
  std::vector<MapOp> cleanup;
  for (const auto& k : strays) {
    MapOp op{MapOp::Kind::DeleteSvc};
    op.key = k;
    cleanup.push_back(op);
  }
  for (uint32_t id : orphanBackends) {
    MapOp op{MapOp::Kind::FreeBackend};
    op.id = id;
    cleanup.push_back(op);
  }
  actual_ = std::move(st);
  // Stray ranges go by their exact key (one may not be a valid SourceRange).
  auto ranges = dp_.srcRanges();
  for (const auto& k : strayRanges)
    if (auto e = ranges.erase(k); !e) return e;
  return execute(cleanup);
}

namespace {

// One BPF_MAP_UPDATE_BATCH. The kernel updates the elements one by one in
// array order (generic_map_update_batch), so a batch keeps the write order
// of loader/reconcile.h exactly as single updates would.
Status updateBatch(int fd, const void* keys, const void* values, uint32_t n, const char* what) {
  uint32_t count = n;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_update_batch(fd, keys, values, &count, &opts) != 0)
    return Error::fromErrno(errno, fmt::format("batch update of map {}", what));
  return {};
}

// Elements per BPF_MAP_UPDATE_BATCH: bounds the buffers (a per-CPU value
// is one lb_stats per possible CPU).
constexpr size_t kBatch = 8192;

}  // namespace

Status Syncer::execute(const std::vector<MapOp>& ops) {
  auto svc = dp_.services();
  auto backends = dp_.backends();
  auto svcStats = dp_.svcStats();
  auto beStats = dp_.backendStats();
  auto ranges = dp_.srcRanges();
  const size_t ncpu = static_cast<size_t>(possibleCpus());
  static_assert(sizeof(lb_stats) % 8 == 0, "per-CPU values are 8-byte aligned");
  std::vector<lb_stats> zeros;
  size_t i = 0;
  // writeOrder (loader/reconcile.h): runs regrouped so that each group is
  // one batch per map.
  const std::vector<size_t> order = writeOrder(ops);
  while (i < order.size()) {
    if (batchable(ops[order[i]])) {
      const int g = batchGroup(ops[order[i]]);
      size_t j = i;
      while (j < order.size() && batchable(ops[order[j]]) && batchGroup(ops[order[j]]) == g) ++j;
      if (j - i > 1) {
        std::vector<uint32_t> ids;
        std::vector<backend_value> beVals;
        std::vector<svc_key> keys;
        std::vector<svc_value> vals;
        for (size_t k = i; k < j; ++k) {
          const MapOp& op = ops[order[k]];
          if (g < 3) ids.push_back(op.id);
          if (g == 2) beVals.push_back(op.backend);
          if (g >= 3) {
            keys.push_back(op.key);
            vals.push_back(op.value);
          }
        }
        const size_t n = j - i;
        if (g < 2) zeros.resize(std::min(kBatch, n) * ncpu);
        for (size_t off = 0; off < n; off += kBatch) {
          const auto m = static_cast<uint32_t>(std::min(kBatch, n - off));
          Status st;
          if (g == 0)
            st = updateBatch(svcStats.fd(), ids.data() + off, zeros.data(), m, SVCLB_MAP_SVC_STATS);
          else if (g == 1)
            st = updateBatch(beStats.fd(), ids.data() + off, zeros.data(), m, SVCLB_MAP_BE_STATS);
          else if (g == 2)
            st = updateBatch(backends.fd(), ids.data() + off, beVals.data() + off, m,
                             SVCLB_MAP_BACKENDS);
          else
            st = updateBatch(svc.fd(), keys.data() + off, vals.data() + off, m, SVCLB_MAP_SERVICES);
          if (!st) return st;
        }
        stats_.opsApplied += n;
        i = j;
        continue;
      }
    }
    const MapOp& op = ops[order[i++]];
    Status st;
    switch (op.kind) {
      case MapOp::Kind::PutBackend: st = backends.update(op.id, op.backend); break;
      case MapOp::Kind::FreeBackend: st = backends.update(op.id, backend_value{}); break;
      case MapOp::Kind::ResetSvcStats: st = svcStats.reset(op.id); break;
      case MapOp::Kind::ResetBeStats: st = beStats.reset(op.id); break;
      case MapOp::Kind::PutSvc: st = svc.update(op.key, op.value); break;
      case MapOp::Kind::DeleteSvc: st = svc.erase(op.key); break;
      case MapOp::Kind::PutMaglev: st = putMaglev(op.id, op.table); break;
      case MapOp::Kind::PutSrcRange:
        st = ranges.update(makeSrcRangeKey(op.id, op.range), uint8_t{1});
        break;
      case MapOp::Kind::DeleteSrcRange: st = ranges.erase(makeSrcRangeKey(op.id, op.range)); break;
      case MapOp::Kind::DeleteMaglev:
        if (bpf_map_delete_elem(dp_.maglevOuterFd(), &op.id) != 0 && errno != ENOENT)
          st = Error::fromErrno(errno, "delete Maglev table");
        break;
    }
    if (!st) return st;
    ++stats_.opsApplied;
  }
  return {};
}

// A new inner array filled completely, then swapped into the outer slot in
// one update: a packet sees the old table or the new one, never a mix.
Status Syncer::putMaglev(uint32_t svcId, const std::vector<uint32_t>& table) {
  LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = BPF_F_INNER_MAP);
  int inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "svclb_maglev", sizeof(uint32_t),
                             sizeof(uint32_t), static_cast<uint32_t>(table.size()), &copts);
  if (inner < 0) return Error::fromErrno(errno, "create Maglev table");
  std::vector<uint32_t> keys(table.size());
  for (uint32_t i = 0; i < keys.size(); ++i) keys[i] = i;
  uint32_t count = static_cast<uint32_t>(table.size());
  LIBBPF_OPTS(bpf_map_batch_opts, bopts);
  Status st;
  if (bpf_map_update_batch(inner, keys.data(), table.data(), &count, &bopts) != 0)
    st = Error::fromErrno(errno, "fill Maglev table");
  else if (bpf_map_update_elem(dp_.maglevOuterFd(), &svcId, &inner, BPF_ANY) != 0)
    st = Error::fromErrno(errno, "install Maglev table");
  close(inner);  // the outer map holds it now
  return st;
}

Status Syncer::apply(Plan plan) {
  auto start = std::chrono::steady_clock::now();
  Status st = execute(plan.ops);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ++stats_.count;
  stats_.lastSeconds = secs;
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
  std::move(plan).mergeInto(actual_);
  return {};
}

}  // namespace svclb
