// Owns the "actual" side of reconciliation: adopts what the pinned maps hold
// at start-up, and applies planned ops to the maps.
#pragma once

#include <chrono>
#include <span>
#include <string>

#include "loader/dataplane.h"
#include "loader/reconcile.h"

namespace svclb {

struct SyncStats {
  uint64_t count = 0, errors = 0, opsApplied = 0;
  // The node's connected UDP sockets closed because their backend was
  // removed (Dataplane::destroyUdpSockets).
  uint64_t socketsDestroyed = 0;
  double lastSeconds = 0, totalSeconds = 0;
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

  const ActualState& actual() const { return actual_; }
  const SyncStats& stats() const { return stats_; }

 private:
  Status execute(const std::vector<MapOp>& ops);
  // After a plan's writes: closes the node's connected UDP sockets still
  // pointed at a backend the plan freed (the socket path's counterpart of
  // the tc path re-balancing a flow whose backend is gone).
  void closeSocketsOfFreedBackends(const Plan& plan);
  Status writeGroup(BatchGroup g, const std::vector<MapOp>& ops, std::span<const size_t> idx);
  Dataplane& dp_;
  SyncOptions opts_;
  ActualState actual_;
  SyncStats stats_;
};

}  // namespace svclb
