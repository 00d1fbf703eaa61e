#include "loader/l2_announcer.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>

#include "loader/external.h"
#include "loader/garp.h"

namespace svclb {

L2Announcer::~L2Announcer() {
  {
    std::lock_guard lk(garpMu_);
    garpStop_ = true;
  }
  garpCv_.notify_all();
  if (garpThread_.joinable()) garpThread_.join();
}

void L2Announcer::adopt() {
  actual_.clear();
  dp_.l2Arp().forEach([&](const l2_arp_key& k, const l2_arp_value& v) {
    Entry e;
    std::copy(std::begin(v.mac), std::end(v.mac), e.mac.begin());
    actual_[{ntohl(k.addr), k.ifindex}] = e;
  });
}

std::map<L2Announcer::Key, L2Announcer::Entry> L2Announcer::wanted(
    const Store& store, std::vector<std::string>& problems) const {
  std::map<Key, Entry> want;
  std::map<std::string, std::pair<uint32_t, std::array<uint8_t, 6>>> nics;
  for (const auto& a : l2Announcements(store, cfg_.externalIfaces, cfg_.nodeName, cfg_.l2Members)) {
    auto nic = nics.find(a.iface);
    if (nic == nics.end()) {
      auto idx = interfaceIndex(a.iface);
      auto mac = idx ? interfaceMac(a.iface) : Result<std::array<uint8_t, 6>>(idx.error());
      if (!idx || !mac) {
        problems.push_back(
            fmt::format("cannot announce LoadBalancer IPs on --external-iface {}: {}", a.iface,
                        (!idx ? idx.error() : mac.error()).message));
        nics[a.iface] = {0, {}};
        continue;
      }
      nic = nics.emplace(a.iface, std::make_pair(static_cast<uint32_t>(*idx), *mac)).first;
    }
    if (nic->second.first == 0) continue;
    want[{a.ip, nic->second.first}] = Entry{a.iface, nic->second.second};
  }
  return want;
}

void L2Announcer::sync(const Store& store) {
  std::vector<std::string> problems;
  const std::map<Key, Entry> want = wanted(store, problems);

  auto map = dp_.l2Arp();
  std::vector<GarpJob> announce;
  for (const auto& [key, e] : want) {
    auto it = actual_.find(key);
    if (it != actual_.end() && it->second.mac == e.mac) {
      it->second.iface = e.iface;
      continue;
    }
    l2_arp_key k{};
    k.addr = htonl(key.first);
    k.ifindex = key.second;
    l2_arp_value v{};
    std::copy(e.mac.begin(), e.mac.end(), v.mac);
    if (auto st = map.update(k, v); !st) {
      problems.push_back(fmt::format("announcing {} on {}: {}", formatIPv4(key.first), e.iface,
                                     st.error().message));
      continue;
    }
    actual_[key] = e;
    announce.push_back({e.iface, key.first, {}, {}});
  }
  std::vector<Key> gone;
  for (const auto& [key, e] : actual_)
    if (!want.count(key)) gone.push_back(key);
  for (const auto& key : gone) {
    l2_arp_key k{};
    k.addr = htonl(key.first);
    k.ifindex = key.second;
    if (auto st = map.erase(k); !st) {
      problems.push_back(
          fmt::format("withdrawing {}: {}", formatIPv4(key.first), st.error().message));
      continue;
    }
    actual_.erase(key);
  }
  problems_.update(problems);
  schedule(want, std::move(announce));
}

void L2Announcer::schedule(const std::map<Key, Entry>& want, std::vector<GarpJob> announce) {
  // A withdrawn address must not be announced any more; a new one is
  // announced now and repeated for a while (MetalLB's schedule).
  std::lock_guard lk(garpMu_);
  std::erase_if(garpJobs_, [&](const GarpJob& j) {
    for (const auto& [key, e] : want)
      if (key.first == j.ip && e.iface == j.iface) return false;
    return true;
  });
  const auto now = std::chrono::steady_clock::now();
  for (auto& j : announce) {
    j.next = now;
    j.until = now + kGarpRepeatFor;
    std::erase_if(garpJobs_, [&](const GarpJob& o) { return o.ip == j.ip && o.iface == j.iface; });
    garpJobs_.push_back(j);
  }
  if (!announce.empty()) {
    if (!garpThread_.joinable()) garpThread_ = std::thread([this] { garpLoop(); });
    garpCv_.notify_all();
  }
}

void L2Announcer::garpLoop() {
  std::unique_lock lk(garpMu_);
  while (!garpStop_) {
    const auto now = std::chrono::steady_clock::now();
    auto wake = now + std::chrono::hours(1);
    std::vector<GarpJob> due;
    for (auto& j : garpJobs_) {
      if (j.next <= now) {
        due.push_back(j);
        j.next = now + kGarpRepeatInterval;
      }
      wake = std::min(wake, j.next);
    }
    std::erase_if(garpJobs_, [&](const GarpJob& j) { return j.next > j.until; });
    if (!due.empty()) {
      lk.unlock();
      for (const auto& j : due)
        if (auto st = sendGratuitousArp(j.iface, j.ip); !st)
          fmt::print(stderr, "svclbd: gratuitous ARP for {} on {}: {}\n", formatIPv4(j.ip), j.iface,
                     st.error().message);
      lk.lock();
      continue;
    }
    garpCv_.wait_until(lk, wake);
  }
}

}  // namespace svclb
