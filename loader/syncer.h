// Owns the "actual" side of reconciliation: adopts what the pinned maps hold
// at start-up, and applies planned ops to the maps.
#pragma once

#include <chrono>
#include <set>
#include <span>
#include <string>
#include <unordered_map>

#include "loader/be_rev.h"
#include "loader/dataplane.h"
#include "loader/lb_filter.h"
#include "loader/reconcile.h"

namespace svclb {

struct SyncStats {
  uint64_t count = 0, errors = 0, opsApplied = 0;
  // The node's connected UDP sockets closed because their backend was
  // removed (Dataplane::destroyUdpSockets).
  uint64_t socketsDestroyed = 0;
  double lastSeconds = 0, totalSeconds = 0;
  // When the last sync ended (unix ns, wall clock): what a benchmark compares
  // with kube-proxy's own sync timestamps.
  uint64_t lastEndUnixNs = 0;
  std::string lastError;
};

class Syncer {
 public:
  explicit Syncer(Dataplane& dp, SyncOptions opts = {});

  // Rebuilds the actual state from the maps (after a restart or a failed
  // sync): masters, slots and backend entries grouped by svc_id. Entries
  // that belong to no frontend (left by a crash mid-sync) are removed.
  Status adopt();

  // Plans and applies the writes that make the maps hold `desired`.
  // A plan that cannot be made (maps full) changes nothing.
  Result<Plan> plan(const std::vector<Frontend>& desired) const {
    return planSync(actual_, desired, opts_);
  }
  // planSyncDelta against the actual state (see reconcile.h).
  Result<Plan> planDelta(const std::vector<Frontend>& changed,
                         const std::vector<FrontendKey>& removed) const {
    return planSyncDelta(actual_, changed, removed, opts_);
  }
  Status apply(Plan plan);

  // Endpoints removed from TCP frontends (BE_STATE_REMOVED) still held.
  size_t removedBackends() const;
  // Frees every removed backend marked before `walkStart` that no live
  // conntrack entry names: `live` holds the backend ids of the FORWARD
  // entries a walk of the CT maps begun at `walkStart` found alive
  // (loader/drain.h). Returns how many it freed.
  Result<size_t> freeDrained(const std::set<uint32_t>& live,
                             std::chrono::steady_clock::time_point walkStart);

  const ActualState& actual() const { return actual_; }
  const LbFilter& filter() const { return filter_; }
  const BeRev& beRev() const { return beRev_; }
  const SyncStats& stats() const { return stats_; }

 private:
  Status execute(const std::vector<MapOp>& ops);
  // After a plan's writes: closes the node's connected UDP sockets still
  // pointed at a backend the plan freed (the socket path's counterpart of
  // the tc path re-balancing a flow whose backend is gone).
  void closeSocketsOfFreedBackends(const Plan& plan);
  Status writeGroup(BatchGroup g, const std::vector<MapOp>& ops, std::span<const size_t> idx);
  // lb_filter_v1 (loader/lb_filter.h): rebuilt from actual_ and written
  // whole (adopt); a plan's new frontends and backends set before its
  // writes, the ones it removes or replaces cleared after them.
  Status rebuildFilter();
  Status filterBefore(const Plan& plan, std::vector<LbFilter::Elem>& later);
  Status filterAfter(const Plan& plan, std::vector<LbFilter::Elem>& later);
  Dataplane& dp_;
  SyncOptions opts_;
  ActualState actual_;
  SyncStats stats_;
  LbFilter filter_;
  BeRev beRev_;  // be_rev_v1/be_rev6_v1: after adopt and after each plan's writes
  std::set<FrontendKey> filterFrontends_;                        // masters in filter_
  std::unordered_map<uint32_t, LbFilter::Elem> filterBackends_;  // backend id -> its element
};

}  // namespace svclb
