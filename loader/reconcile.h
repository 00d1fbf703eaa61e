// Desired frontends -> ordered map writes. Planning is pure (no kernel) so it
// is unit-tested on its own; execution applies the ops to the real maps.
//
// Write order (a packet must never see a half-written backend set):
//   new/changed frontend: backend entries, then slots 1..total, then the
//   master (count/total) LAST, then slots beyond the new total are deleted,
//   then removed backends are freed (zeroed: CT entries naming them become
//   invalid and their flows are balanced again);
//   removed frontend: master FIRST, then slots, then backends.
// loadBalancerSourceRanges (src_ranges_v1, keyed by svc_id): ranges a
// frontend gains are written BEFORE its master, ranges it loses are deleted
// AFTER the master was rewritten, and a removed frontend loses its master
// before its ranges. So a master with SVC_F_SRC_RANGES never exists without
// its ranges, and a range is never missing while the master still needs it.
// A Maglev table is built from the backends that take new flows (ready, or
// terminating-serving when none is ready) and written as a whole new inner
// map after the slots and before the master; it is removed after the master
// stops naming Maglev.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"
#include "maps/svclb_abi.h"
#include "model/model.h"

namespace svclb {

// Ids 1..capacity-1 (0 is never used). Allocation moves round-robin from the
// last id handed out, so a freed id is reused as late as possible and a
// stale CT entry rarely meets a recycled id (it is also checked against
// svc_id).
class IdPool {
 public:
  explicit IdPool(uint32_t capacity = 0) : used_(capacity, false) {}
  Result<uint32_t> allocate();
  void markUsed(uint32_t id);
  void release(uint32_t id);
  bool used(uint32_t id) const { return id < used_.size() && used_[id]; }
  uint32_t capacity() const { return static_cast<uint32_t>(used_.size()); }
  size_t inUse() const { return inUse_; }

 private:
  std::vector<bool> used_;
  uint32_t cursor_ = 0;
  size_t inUse_ = 0;
};

struct ActualBackend {
  uint32_t id = 0;
  backend_value value{};  // an IPv6 backend's addr is 0 ...
  Ip6 addr6{};            // ... and its address here (backend6_v1[id])
  // BE_STATE_REMOVED: when it was marked so (or adopted as such); its entry
  // is freed by Syncer::freeDrained once a conntrack walk that began after
  // this finds no live flow naming it.
  std::chrono::steady_clock::time_point removedAt{};
};

struct ActualFrontend {
  FrontendKey key;
  uint32_t svcId = 0;
  svc_value master{};
  std::vector<uint32_t> slots;            // backend id of slot 1..total
  std::vector<ActualBackend> backends;    // every backend entry this frontend owns
  std::vector<uint32_t> maglev;           // backend id per Maglev table entry (empty: none)
  std::vector<SourceRange> sourceRanges;  // src_ranges_v1 entries of svcId, sorted
  // From the desired state (not stored in maps): names for stats/metrics.
  std::string ns, name, portName;
  // A deleted TCP frontend whose backends are held (BE_STATE_REMOVED) for
  // its connections, as kube-proxy's conntrack keeps a deleted Service's
  // TCP flows: no master, slots, Maglev table or ranges in the maps (empty
  // here; `master` keeps the last value), its svc_id still allocated, its
  // key still in lb_filter_v1 (the flows' packets must reach the CT
  // lookup) and its be_rev_v1 designations kept. Goes when freeDrained frees
  // its last backend; a Service made again on the key takes it back.
  bool retired = false;
};

// Backends `f` holds for their connections only (BE_STATE_REMOVED).
inline size_t heldBackendsOf(const ActualFrontend& f) {
  size_t n = 0;
  for (const auto& b : f.backends) n += b.value.state == BE_STATE_REMOVED;
  return n;
}

// svc_v1 entries `f` holds: its master and one per slot (none if retired).
inline size_t svcEntriesOf(const ActualFrontend& f) { return f.retired ? 0 : 1 + f.slots.size(); }

struct ActualState {
  std::map<FrontendKey, ActualFrontend> frontends;
  IdPool svcIds;
  IdPool backendIds;
  // What `frontends` hold in svc_v1 (a master and one entry per slot) and in
  // src_ranges_v1, kept by planSync, planSyncDelta (mergeInto) and
  // Syncer::adopt, so that planSyncDelta checks the maps' capacity in time
  // proportional to the change, not to every frontend.
  size_t svcEntries = 0, srcRanges = 0;
};

// One map write of a plan: one struct per kind, each carrying only what its
// write needs. Syncer::execute applies an op with std::visit, so a kind
// without a write does not compile.
namespace mapop {
struct PutBackend {  // backends_v1[id] = value; an IPv6 one: backend6_v1[id] = addr6 first
  uint32_t id = 0;
  backend_value value{};
  Ip6 addr6{};  // all zero: an IPv4 backend
  bool v6() const { return addr6 != Ip6{}; }
};
// backends_v1[id] zeroed (BE_STATE_EMPTY) and be_stats_v2[id] freed (owner
// 0: its CT entries stop being valid). foldInto: the live frontend it was
// removed from (0: none), whose svc_stats_v2 takes its counts first (a
// Service's counts are its backends' plus those: svclb_abi.h lb_stats).
struct FreeBackend {
  uint32_t id = 0;
  uint32_t foldInto = 0;
};
struct ResetSvcStats {  // svc_stats_v2[svcId], every CPU's slot
  uint32_t svcId = 0;
};
struct ResetBeStats {  // be_stats_v2: every CPU's slot of id zeroed and owned by svcId
  uint32_t id = 0;
  uint32_t svcId = 0;
};
struct PutSvc {  // svc_v1: a slot (key.slot != 0) or the master (slot 0)
  svc_key key{};
  svc_value value{};
};
struct DeleteSvc {
  svc_key key{};
};
struct PutSvc6 {  // svc6_v1: an IPv6 frontend's slot or master, as PutSvc
  svc6_key key{};
  svc_value value{};
};
struct DeleteSvc6 {
  svc6_key key{};
};
struct PutMaglev {  // a new inner map holding `table`, swapped in whole
  uint32_t svcId = 0;
  std::vector<uint32_t> table;  // backend id per entry
};
struct DeleteMaglev {
  uint32_t svcId = 0;
};
struct PutSrcRange {  // src_ranges_v1[makeSrcRangeKey(svcId, range)]
  uint32_t svcId = 0;
  SourceRange range;
};
struct DeleteSrcRange {
  uint32_t svcId = 0;
  SourceRange range;
};
}  // namespace mapop

using MapOp =
    std::variant<mapop::PutBackend, mapop::FreeBackend, mapop::ResetSvcStats, mapop::ResetBeStats,
                 mapop::PutSvc, mapop::DeleteSvc, mapop::PutMaglev, mapop::DeleteMaglev,
                 mapop::PutSrcRange, mapop::DeleteSrcRange, mapop::PutSvc6, mapop::DeleteSvc6>;

// Daemon-wide choices a Service can override by annotation
// (kLbAlgorithmAnnotation, model.h).
struct SyncOptions {
  uint8_t defaultAlgo = SVC_ALGO_RANDOM;
  uint32_t maglevSize = SVCLB_DEFAULT_MAGLEV_SIZE;              // prime
  uint32_t maxServiceEntries = SVCLB_DEFAULT_SERVICES_ENTRIES;  // svc_v1: masters + slots
  uint32_t maxSrcRanges = SVCLB_DEFAULT_SRC_RANGES;             // src_ranges_v1
  // be_rev_v1 designations (loader/be_rev.h): single-entry ClusterIP flows.
  // false: the map is kept empty and every flow takes two CT entries (the
  // pair layout's tests, before/after benchmarks).
  bool singleEntryFlows = true;
  // An endpoint removed from a TCP frontend stays as BE_STATE_REMOVED (no
  // slot) while connections to it live, as kube-proxy's conntrack keeps
  // them; false frees it at once (its flows are balanced again).
  bool keepRemovedTcp = true;
};

struct Plan {
  std::vector<MapOp> ops;
  // The state once every op has been applied. A partial plan
  // (planSyncDelta) holds only the frontends it planned here, plus the id
  // pools; mergeInto() makes the whole state from the previous one.
  ActualState next;
  bool partial = false;
  std::vector<FrontendKey> removedKeys;  // partial: frontends it removes
  size_t added = 0, changed = 0, removed = 0, unchanged = 0;

  // `actual` (the state the plan was made from) becomes the state after it.
  void mergeInto(ActualState& actual) &&;
};

// The order Syncer::execute writes a plan's ops in, as indices into `ops`.
// A run of consecutive stats resets, backend entries and svc_v1 puts (no
// delete, free, Maglev swap or range in between) is regrouped as: every
// svc stats reset, every backend stats reset, every backend entry, every
// slot, every master, each group in plan order — so that each group is one
// BPF_MAP_UPDATE_BATCH (10,000 new Services: ~12 syscalls, not ~40,000).
// Every frontend's own writes already come in that order within a run
// (reset, backend entries, slots, master LAST), so the write order above
// still holds per frontend; only writes of different frontends, to
// different keys, move relative to each other (ids are never shared, and a
// freed id is freed by an op outside any run, before its reuse).
// tests/unit/reconcile_write_order_test.cpp replays plans in this order
// and checks after every write that no master names a missing slot or
// backend.
std::vector<size_t> writeOrder(const std::vector<MapOp>& ops);
// The groups a run is regrouped into, in their write order; each group is
// one typed batch write (maps/maps.h: resetBatch, updateBatch).
enum class BatchGroup : uint8_t {
  SvcStatsResets,      // svc_stats_v2, every CPU's slot zeroed
  BackendStatsResets,  // backend_stats_v1
  BackendEntries,      // backends_v1
  Slots,               // svc_v1 and svc6_v1, slot != 0
  Masters,             // svc_v1 and svc6_v1, slot 0: last, so a master names written slots
};
inline constexpr int kBatchGroups = 5;
// The group of an op that belongs to a regrouped run; nullopt for the ops
// that end a run (deletes, frees, Maglev swaps, ranges).
std::optional<BatchGroup> batchGroup(const MapOp& op);
inline bool batchable(const MapOp& op) { return batchGroup(op).has_value(); }

svc_key makeSvcKey(const FrontendKey& k, uint16_t slot);
svc6_key makeSvc6Key(const FrontendKey& k, uint16_t slot);  // k.v6()
// The svc_v1 or svc6_v1 write of one slot (0: the master) of frontend `k`.
MapOp putSvc(const FrontendKey& k, uint16_t slot, const svc_value& v);
MapOp deleteSvc(const FrontendKey& k, uint16_t slot);
// {prefixlen = 32 + prefix, svc_id, addr}: the LPM key of one range.
src_range_key makeSrcRangeKey(uint32_t svcId, const SourceRange& r);
// The same for an IPv6 range (src_ranges6_v1).
src_range6_key makeSrcRange6Key(uint32_t svcId, const SourceRange& r);

// Plans the writes that turn `actual` into `desired`. Frontends and backends
// that did not change produce no op. Fails (changing nothing) when ids or
// slots run out.
Result<Plan> planSync(const ActualState& actual, const std::vector<Frontend>& desired,
                      const SyncOptions& opts = {});

// The same plan for a change confined to some frontends, in time
// proportional to the change: `changed` holds the new content of every
// frontend that may differ (new, changed or unchanged), `removed` the keys
// of frontends that no longer exist (keys also in `changed` are kept). Every
// other frontend of `actual` must be what the desired state has for it.
// Then the ops are exactly planSync's (same order, ids, capacity errors) and
// mergeInto() yields planSync's `next` (tests/unit/reconcile_delta_test.cpp).
Result<Plan> planSyncDelta(const ActualState& actual, const std::vector<Frontend>& changed,
                           const std::vector<FrontendKey>& removed, const SyncOptions& opts = {});

}  // namespace svclb
