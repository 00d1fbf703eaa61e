#include "loader/drain.h"

#include <fmt/format.h>
#include <netinet/in.h>

namespace svclb {

Result<std::set<uint32_t>> liveFlowBackends(const Dataplane& dp) {
  auto j = dp.jiffies();
  if (!j) return j.error();
  const uint32_t now = static_cast<uint32_t>(*j >> CT_TICK_SHIFT);
  const CtLifetimes& life = dp.ctLifetimes();
  std::set<uint32_t> live;
  auto mark = [&](const auto& k, const auto& v) {
    if (v.dir != CT_DIR_FORWARD) return;
    const uint32_t l = (v.flags & CT_F_CLOSING) ? life.closing
                       : k.proto == IPPROTO_TCP ? life.tcp
                                                : life.nontcp;
    if (now - v.last_seen <= l) live.insert(v.backend_id);
  };
  if (auto st = dp.conntrack().forEachBatch(mark); !st) return st.error();
  if (auto st = dp.conntrackEst().forEachBatch(mark); !st) return st.error();
  if (auto st = dp.conntrack6().forEachBatch(mark); !st) return st.error();
  if (auto st = dp.conntrack6Est().forEachBatch(mark); !st) return st.error();
  return live;
}

void DrainKeeper::start() {
  thread_ = std::thread([this] { run(); });
}

void DrainKeeper::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DrainKeeper::run() {
  using P = DrainPolicy;
  using Clock = std::chrono::steady_clock;
  auto last = Clock::now(), removal = Clock::now();
  size_t heldBefore = 0;
  std::unique_lock lk(mu_);
  while (!cv_.wait_for(lk, P::kTick, [this] { return stop_; })) {
    const size_t held = pending_();
    if (held > heldBefore) removal = Clock::now();
    heldBefore = held;
    if (held == 0) continue;
    const auto now = Clock::now();
    if (now - last < P::gap(now - removal) && removal < last) continue;
    lk.unlock();
    const auto start = Clock::now();
    auto live = liveFlowBackends(dp_);
    // A removal planned within the second before the walk may still be
    // being written (its slots naming the backend): not judged by it.
    Result<size_t> freed =
        live ? free_(*live, start - std::chrono::seconds(1)) : Result<size_t>(live.error());
    lk.lock();
    last = Clock::now();
    if (!freed) {
      fmt::print(stderr, "svclbd: freeing removed endpoints whose connections ended: {}\n",
                 freed.error().message);
      continue;
    }
    if (*freed) {
      fmt::print(stderr, "svclbd: {} removed endpoint(s) freed: their connections ended\n", *freed);
      heldBefore -= std::min(heldBefore, *freed);
    }
  }
}

}  // namespace svclb
