#include "loader/drain.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <cstring>

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

Result<std::map<uint32_t, FlowFrontend>> liveFlowFrontends(
    const Dataplane& dp, const std::map<uint32_t, backend_value>& held) {
  std::map<uint32_t, FlowFrontend> out;
  if (held.empty()) return out;
  auto j = dp.jiffies();
  if (!j) return j.error();
  const uint32_t now = static_cast<uint32_t>(*j >> CT_TICK_SHIFT);
  const CtLifetimes& life = dp.ctLifetimes();
  auto wanted = [&](const auto& k, const auto& v) {
    if (v.dir != CT_DIR_FORWARD || k.proto != IPPROTO_TCP) return false;
    auto h = held.find(v.backend_id);
    if (h == held.end() || h->second.svc_id != v.svc_id) return false;
    const uint32_t l = (v.flags & CT_F_CLOSING) ? life.closing : life.tcp;
    return now - v.last_seen <= l;
  };
  auto add = [&](uint32_t id, const FrontendKey& key, bool single) {
    auto [it, fresh] = out.try_emplace(id, FlowFrontend{key, single});
    if (!fresh && key < it->second.key) it->second = {key, single};  // one answer per id
  };
  auto mark4 = [&](const ct_key& k, const ct_value& v) {
    if (wanted(k, v))
      add(v.backend_id, FrontendKey{ntohl(k.daddr), ntohs(k.dport), k.proto},
          (v.flags & CT_F_SINGLE) != 0);
  };
  auto mark6 = [&](const ct6_key& k, const ct6_value& v) {
    if (!wanted(k, v)) return;
    FrontendKey key{0, ntohs(k.dport), k.proto};
    std::memcpy(key.vip6.data(), &k.daddr, sizeof k.daddr);
    add(v.backend_id, key, (v.flags & CT_F_SINGLE) != 0);
  };
  if (auto st = dp.conntrack().forEachBatch(mark4); !st) return st.error();
  if (auto st = dp.conntrackEst().forEachBatch(mark4); !st) return st.error();
  if (auto st = dp.conntrack6().forEachBatch(mark6); !st) return st.error();
  if (auto st = dp.conntrack6Est().forEachBatch(mark6); !st) return st.error();
  return out;
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
