// MetalLB's layer-2 mode on this node: l2_arp_v1 holds the LoadBalancer IPs
// this node answers ARP for, per external NIC (loader/external.h,
// l2Announcements), and a newly announced address is broadcast by
// gratuitous ARP, repeated on MetalLB's schedule (loader/garp.h) by a thread
// of its own.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loader/dataplane.h"
#include "loader/warn_once.h"
#include "model/model.h"

namespace svclb {

struct L2Config {
  std::vector<std::string> externalIfaces;  // --external-iface
  std::string nodeName;                     // --node-name
  std::vector<std::string> l2Members;       // --l2-members
};

class L2Announcer {
 public:
  L2Announcer(Dataplane& dp, L2Config cfg) : dp_(dp), cfg_(std::move(cfg)) {}
  ~L2Announcer();  // stops the gratuitous ARP thread
  L2Announcer(const L2Announcer&) = delete;
  L2Announcer& operator=(const L2Announcer&) = delete;

  // Reads what l2_arp_v1 holds (at start-up: a restart re-announces nothing
  // that is already there).
  void adopt();
  // l2_arp_v1 := the announcements of `store` on the external NICs (their
  // ifindex and MAC read now); new ones are announced by gratuitous ARP,
  // withdrawn ones no longer. Problems are logged, never fatal.
  void sync(const Store& store);

 private:
  struct Entry {
    std::string iface;
    std::array<uint8_t, 6> mac{};
  };
  // {IPv4 host order (0 for IPv6), IPv6 (zero for IPv4), ifindex}
  using Key = std::tuple<uint32_t, Ip6, uint32_t>;
  struct GarpJob {
    std::string iface;
    uint32_t ip = 0;
    Ip6 ip6{};  // an IPv6 address: unsolicited neighbour advertisements
    std::chrono::steady_clock::time_point next, until;
  };
  std::map<Key, Entry> wanted(const Store& store, std::vector<std::string>& problems) const;
  // The gratuitous ARP schedule: `want` is what stays announced, `announce`
  // the addresses announced anew.
  void schedule(const std::map<Key, Entry>& want, std::vector<GarpJob> announce);
  void garpLoop();

  Dataplane& dp_;
  L2Config cfg_;
  std::map<Key, Entry> actual_;  // what l2_arp_v1 and l2_ndp_v1 hold
  WarnOnce problems_;

  std::mutex garpMu_;
  std::condition_variable garpCv_;
  std::vector<GarpJob> garpJobs_;  // guarded by garpMu_
  bool garpStop_ = false;          // guarded by garpMu_
  std::thread garpThread_;         // started with the first job
};

}  // namespace svclb
