#include "loader/l2_announcer.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

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
    actual_[{ntohl(k.addr), Ip6{}, k.ifindex}] = e;
  });
  dp_.l2Ndp().forEach([&](const l2_ndp_key& k, const l2_arp_value& v) {
    Entry e;
    std::copy(std::begin(v.mac), std::end(v.mac), e.mac.begin());
    Ip6 a{};
    std::memcpy(a.data(), &k.addr, a.size());
    actual_[{0, a, k.ifindex}] = e;
  });
}

namespace {

std::string keyAddress(uint32_t ip, const Ip6& ip6) {
  return ip6 != Ip6{} ? formatIPv6(ip6) : formatIPv4(ip);
}

// Writes or removes the address's entry in l2_arp_v1 or l2_ndp_v1.
Status putL2(Dataplane& dp, uint32_t ip, const Ip6& ip6, uint32_t ifindex,
             const std::array<uint8_t, 6>* mac) {
  l2_arp_value v{};
  if (mac) std::copy(mac->begin(), mac->end(), v.mac);
  if (ip6 != Ip6{}) {
    l2_ndp_key k{};
    std::memcpy(&k.addr, ip6.data(), ip6.size());
    k.ifindex = ifindex;
    return mac ? dp.l2Ndp().update(k, v) : dp.l2Ndp().erase(k);
  }
  l2_arp_key k{};
  k.addr = htonl(ip);
  k.ifindex = ifindex;
  return mac ? dp.l2Arp().update(k, v) : dp.l2Arp().erase(k);
}

}  // namespace

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
    want[{a.ip, a.ip6, nic->second.first}] = Entry{a.iface, nic->second.second};
  }
  return want;
}

void L2Announcer::sync(const Store& store) {
  std::vector<std::string> problems;
  const std::map<Key, Entry> want = wanted(store, problems);

  std::vector<GarpJob> announce;
  for (const auto& [key, e] : want) {
    const auto& [ip, ip6, ifindex] = key;
    auto it = actual_.find(key);
    if (it != actual_.end() && it->second.mac == e.mac) {
      it->second.iface = e.iface;
      continue;
    }
    if (auto st = putL2(dp_, ip, ip6, ifindex, &e.mac); !st) {
      problems.push_back(
          fmt::format("announcing {} on {}: {}", keyAddress(ip, ip6), e.iface, st.error().message));
      continue;
    }
    actual_[key] = e;
    announce.push_back({e.iface, ip, ip6, {}, {}});
  }
  std::vector<Key> gone;
  for (const auto& [key, e] : actual_)
    if (!want.count(key)) gone.push_back(key);
  for (const auto& key : gone) {
    const auto& [ip, ip6, ifindex] = key;
    if (auto st = putL2(dp_, ip, ip6, ifindex, nullptr); !st) {
      problems.push_back(
          fmt::format("withdrawing {}: {}", keyAddress(ip, ip6), st.error().message));
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
      if (std::get<0>(key) == j.ip && std::get<1>(key) == j.ip6 && e.iface == j.iface) return false;
    return true;
  });
  const auto now = std::chrono::steady_clock::now();
  for (auto& j : announce) {
    j.next = now;
    j.until = now + kGarpRepeatFor;
    std::erase_if(garpJobs_, [&](const GarpJob& o) {
      return o.ip == j.ip && o.ip6 == j.ip6 && o.iface == j.iface;
    });
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
      for (const auto& j : due) {
        const bool v6 = j.ip6 != Ip6{};
        if (auto st = v6 ? sendUnsolicitedNa(j.iface, j.ip6) : sendGratuitousArp(j.iface, j.ip);
            !st)
          fmt::print(stderr, "svclbd: {} for {} on {}: {}\n",
                     v6 ? "unsolicited neighbour advertisement" : "gratuitous ARP",
                     keyAddress(j.ip, j.ip6), j.iface, st.error().message);
      }
      lk.lock();
      continue;
    }
    garpCv_.wait_until(lk, wake);
  }
}

}  // namespace svclb
