// Endpoints removed from a TCP frontend keep their connections, as
// kube-proxy's conntrack does (maps/svclb_abi.h BE_STATE_REMOVED): the
// planner keeps their backend entries without a slot, and the DrainKeeper
// frees each one once a walk of the conntrack maps finds no live flow
// naming it (Syncer::freeDrained).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/result.h"
#include "loader/dataplane.h"
#include "model/model.h"

namespace svclb {

// The backend ids named by the live FORWARD entries of the four CT maps
// (an entry idle past its lifetime, which the packet path ignores, names
// none). ct_v2 before ct_est_v2: a TCP promotion inserts there before it
// deletes here, so a walk in this order sees every entry that lives
// through it.
Result<std::set<uint32_t>> liveFlowBackends(const Dataplane& dp);

// Where the live FORWARD entries naming `held` (backend id -> its backends_v1 value; the flow must
// name its svc_id) were sent: a frontend key (the entry's destination address:port:proto) per
// backend id, and whether it was a single-entry flow (CT_F_SINGLE: its
// frontend was the backend's be_rev_v1 designation). For a restarted
// daemon that finds a deleted Service's held backends (Syncer::adopt).
struct FlowFrontend {
  FrontendKey key;
  bool single = false;
};
Result<std::map<uint32_t, FlowFrontend>> liveFlowFrontends(
    const Dataplane& dp, const std::map<uint32_t, backend_value>& held);

// When the keeper walks, while removed backends are held: every kTick at
// first, then at a quarter of the time since the last removal, at most
// kMaxGap apart (connections that stay open for hours cost a walk a minute,
// not one every few seconds; a connection closed soon after its endpoint's
// removal frees it within seconds of its closing lifetime).
struct DrainPolicy {
  using Duration = std::chrono::steady_clock::duration;
  static constexpr std::chrono::seconds kTick{2}, kMaxGap{60};
  static Duration gap(Duration sinceRemoval) {
    return std::clamp<Duration>(sinceRemoval / 4, Duration(kTick), Duration(kMaxGap));
  }
};

// Runs the walks on its own thread. `pending` answers how many removed
// backends are held (under the daemon's lock); `free` frees the drained
// ones given a walk's result and start (under the lock).
class DrainKeeper {
 public:
  using Pending = std::function<size_t()>;
  using Free = std::function<Result<size_t>(const std::set<uint32_t>&,
                                            std::chrono::steady_clock::time_point)>;
  DrainKeeper(const Dataplane& dp, Pending pending, Free free)
      : dp_(dp), pending_(std::move(pending)), free_(std::move(free)) {}
  ~DrainKeeper() { stop(); }
  DrainKeeper(const DrainKeeper&) = delete;
  DrainKeeper& operator=(const DrainKeeper&) = delete;
  void start();
  void stop();

 private:
  void run();
  const Dataplane& dp_;
  Pending pending_;
  Free free_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace svclb
