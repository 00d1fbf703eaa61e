// The commit path: the one StateSink (loader/state_source.h). A change is
// made to the store in place (with an undo log), then
//   plan     the map writes it needs (only the touched Services when the
//            maps are known to match the store, else the whole desired set);
//   write    the maps (Syncer, loader/syncer.h);
//   persist  the change (StateFile: a journal append, or a snapshot);
//   answer   the outcomes, once both are done.
// A failed plan, map write or save puts the previous state back in the
// store, the maps and the state file, and the answer is the error.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "loader/node_addresses.h"
#include "loader/reconcile.h"
#include "loader/state_source.h"
#include "loader/warn_once.h"
#include "model/model.h"
#include "model/state_file.h"

namespace svclb {

// The maps' side of a commit: Syncer in svclbd (it owns the actual state),
// an in-memory fake in the unit tests.
class MapSync {
 public:
  virtual ~MapSync() = default;
  // Reads what the maps hold (at start-up).
  virtual Status adopt() = 0;
  virtual Result<Plan> plan(const std::vector<Frontend>& desired) const = 0;
  virtual Result<Plan> planDelta(const std::vector<Frontend>& changed,
                                 const std::vector<FrontendKey>& removed) const = 0;
  virtual Status apply(Plan plan) = 0;
};

struct CommitterConfig {
  std::string statePath;  // <state-dir>/state.json
  StoreConfig store;
  std::string nodeName;    // for externalTrafficPolicy: Local
  bool zoneFixed = false;  // --zone given: the Node object's label is not followed
};

class Committer final : public StateSink {
 public:
  Committer(CommitterConfig cfg, MapSync& maps);

  // Start-up, in two steps: load() reads the state file (the snapshot, then
  // its journal); restore() reads the maps and brings them to the store's
  // state for the node addresses `nodeAddrs` (host order, sorted).
  Status load();
  Status restore(NodeAddresses nodeAddrs);

  Result<Outcomes> apply(std::vector<Object> objs) override;
  // The store's answer and the map plan's (what the maps cannot hold), then
  // the store put back: no map write, no state file.
  Result<Outcomes> tryApply(std::vector<Object> objs) override;
  Result<Outcomes> edit(const ObjectRef& ref, const Edit& edit, bool dry) override;
  Result<Outcomes> tryRemove(const std::vector<ObjectRef>& refs,
                             std::vector<std::string>* missing = nullptr) override;
  Result<Outcomes> remove(const std::vector<ObjectRef>& refs,
                          std::vector<std::string>* missing = nullptr) override;
  Result<Outcomes> replace(const std::vector<std::string>& kinds,
                           std::vector<Object> objs) override;

  // The node's addresses changed: every frontend is planned again (the
  // NodePorts are one frontend per node address). Problems are logged.
  void setNodeAddresses(NodeAddresses nodeAddrs);
  // The zone of this node's Node object (Kubernetes mode): ignored when
  // --zone was given; otherwise a change re-plans every frontend.
  void setNodeZone(const std::string& zone) override;
  const NodeAddresses& nodeAddresses() const { return nodeAddrs_; }

  // Called after every successful change, with the store as it now is (L2
  // announcements and health checks follow the store).
  void onChange(std::function<void(const Store&)> f) { onChange_ = std::move(f); }
  // Also after every successful change, first, with the Services whose
  // objects it touched (the Services named, and those whose Endpoints or
  // EndpointSlices changed): the cluster DNS zone follows them.
  void onServicesChanged(std::function<void(const Store&, const std::set<Store::Key>&)> f) {
    onServicesChanged_ = std::move(f);
  }

  const Store& store() const { return store_; }
  // Stored objects that fail today's validation (a state file of an older
  // build, or edited by hand), "namespace: error" as the API server words
  // it: found at load() and dropped as changes fix or delete them.
  const std::vector<std::string>& invalidStored() const { return invalid_; }

 private:
  // Plans every frontend anew (node addresses or zone changed) and writes
  // the plan; a failure is logged with `why` (the next change retries).
  void replanAll(std::string_view why);
  // A change already made to store_: its undo log, the Services it may
  // affect and their frontends before it (only when deltaOk_), so that only
  // those are derived again and diffed.
  struct Change {
    Store::Undo undo;
    std::set<Store::Key> touched;
    std::vector<Frontend> before;
  };
  Change begin(std::set<Store::Key> touched) const;
  // plan, write maps, persist, answer.
  Result<Outcomes> commit(Change c, Outcomes outcomes);
  // `dry`: a dry run's (no warning printed or forgotten).
  Result<Plan> plan(const Change& c, bool external, bool dry = false);
  // Whether the store has node-facing frontends after change c.
  bool externalAfter(const Change& c) const;
  // A dry run's end: c planned, then reverted.
  Result<Outcomes> dryPlan(Change c, Outcomes outcomes);
  // The maps and the state file, side by side for a large change.
  Status writeAndPersist(Plan plan, const Store::Undo& undo, bool& triedSave);
  // After a failed write or save: the store, the maps and (if a save was
  // tried) the state file back to the state before the change.
  void rollBack(Store::Undo undo, bool triedSave);
  // ClusterIP frontends plus the node-facing ones for nodeAddrs_.
  std::vector<Frontend> desiredFrontends(bool warn = true);

  CommitterConfig cfg_;
  MapSync& maps_;
  Store store_;
  std::vector<std::string> invalid_;  // invalidStored()
  // store_ on disk: a snapshot plus a journal of the changes since.
  StateFile state_;
  NodeAddresses nodeAddrs_;  // sorted
  // The maps hold exactly store_'s ClusterIP frontends and no external one:
  // a change can then be planned from the Services it touches alone
  // (planSyncDelta). Cleared by any failed sync; set again by the next
  // successful one.
  bool deltaOk_ = false;
  // Whether store_ had node-facing frontends at the last successful change.
  bool external_ = false, externalKnown_ = false;
  WarnOnce extWarnings_;
  std::function<void(const Store&)> onChange_;
  std::function<void(const Store&, const std::set<Store::Key>&)> onServicesChanged_;
};

}  // namespace svclb
