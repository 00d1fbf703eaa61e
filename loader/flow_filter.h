// The daemon's side of flow_filter_v1 (svclb_abi.h): the per-client-tuple
// slots that let a backend's packets to a client no translated flow uses
// pass without the conntrack lookups. The packet path only ever sets slots
// (in both maps, before each CT insert); this side rebuilds the map that is
// not current from the CT maps and then makes it current, so that slots of
// flows long gone stop costing the full path. Until the first rebuild of a
// daemon's life the filter is marked invalid (every packet takes the full
// path): a program of an older build may have inserted CT entries without
// setting their slots.
#pragma once

#include <arpa/inet.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "maps/maps.h"

namespace svclb {

// The CT maps a rebuild walks: every live entry's client side (and a
// source-NATed FORWARD entry's SNAT address and port) gets its slot; an
// entry idle past its lifetime (the packet path ignores it) gets none.
struct FlowFilterSources {
  CtMap ct, ctEst;
  Ct6Map ct6, ct6Est;
  uint32_t lifeTcp = 0, lifeNonTcp = 0, lifeClosing = 0;  // CT ticks (Dataplane::ctLifetimes)
  std::function<Result<uint64_t>()> jiffies;              // the programs' bpf_jiffies64()
};

struct FlowFilterStats {
  bool valid = false;
  double fill = 0;           // share of the current map's slots set
  uint64_t rebuilds = 0;     // completed rebuilds
  uint64_t lastEntries = 0;  // CT entries the last rebuild walked
  uint64_t lastDurationNs = 0;
  int64_t lastEndUnixNs = 0;
  std::string off;  // why the daemon keeps it off (empty: kept on)
};

class FlowFilter {
 public:
  // mmaps the map (`fd` borrowed: it must outlive this object).
  static Result<std::unique_ptr<FlowFilter>> open(int fd, FlowFilterSources src);
  ~FlowFilter();
  FlowFilter(const FlowFilter&) = delete;
  FlowFilter& operator=(const FlowFilter&) = delete;

  // Marks the filter invalid: the packet path takes the full path.
  void invalidate();
  // Invalid for this daemon's life, and why (status shows it).
  void turnOff(std::string why);
  // Clears the map that is not current, waits out programs that were
  // setting slots in it meanwhile, sets the slot of every live CT entry's
  // client side in it and makes it the current, valid one.
  // `grace`: how long programs may still be inside a slot store (tests: 0).
  Status rebuild(std::chrono::milliseconds grace = std::chrono::milliseconds(20));
  // Whether {fold, port}'s slot is set in the current map (what the packet
  // path reads; true while the filter is invalid, as there).
  bool test(uint32_t fold, uint16_t portBe) const;
  // Share of the current map's slots set (0..1).
  double fill() const;
  FlowFilterStats stats() const;

  // The slot of {fold, port} (the packet path's flowf_slot).
  // A run of SVCLB_FLOWF_RUN consecutive ports shares a cache line.
  static uint32_t slotOf(uint32_t fold, uint16_t portBe) {
    const uint32_t h = ntohs(portBe);
    return ((flowHash3(fold, h >> SVCLB_FLOWF_RUN_LOG2, SVCLB_FLOWF_SEED) << SVCLB_FLOWF_RUN_LOG2) |
            (h & (SVCLB_FLOWF_RUN - 1))) &
           (SVCLB_FLOWF_SLOTS - 1);
  }

 private:
  FlowFilter(uint8_t* base, size_t len, FlowFilterSources src)
      : base_(base), len_(len), src_(std::move(src)) {}
  // Slot `slot` of map `which` (the two maps interleave: svclb_abi.h).
  uint8_t& slotByte(int which, uint32_t slot) const {
    return base_[2 * static_cast<size_t>(slot) + static_cast<size_t>(which)];
  }
  std::atomic_ref<uint64_t> ctl() const {
    return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(base_ + SVCLB_FLOWF_CTL * 8ull));
  }

  uint8_t* base_;
  size_t len_;
  FlowFilterSources src_;
  std::mutex mu_;  // rebuild() against itself (stats() never waits for it)
  std::atomic<uint64_t> rebuilds_{0}, lastEntries_{0}, lastDurationNs_{0};
  std::atomic<int64_t> lastEndUnixNs_{0};
  std::string off_;  // set once, before any reader (main's start-up)
};

// When the keeper rebuilds (checked every kTick): when the current map is
// a quarter full, at most every `minGap` (kQuarterGap; kCrowdedGap while a
// rebuild cannot bring it under a quarter: more live client tuples than the
// filter can tell apart, where it saves little anyway, or after a failed
// one), and every kIdleGap while any slot is set (slots of flows that ended
// cost their client tuples the full path).
struct FlowFilterPolicy {
  using Duration = std::chrono::steady_clock::duration;
  static constexpr std::chrono::seconds kTick{2}, kQuarterGap{10}, kCrowdedGap{60}, kIdleGap{60};
  static constexpr double kQuarter = 0.25;
  static bool due(double fill, Duration sinceLast, Duration minGap) {
    return (fill >= kQuarter && sinceLast >= minGap) || (fill > 0 && sinceLast >= kIdleGap);
  }
  // The next minGap, from how the last rebuild went.
  static Duration gapAfter(bool ok, double fillAfter) {
    return ok && fillAfter < kQuarter ? Duration(kQuarterGap) : Duration(kCrowdedGap);
  }
};

// Runs the rebuilds: one at start (the filter invalid until it ends), then
// as FlowFilterPolicy says.
class FlowFilterKeeper {
 public:
  explicit FlowFilterKeeper(FlowFilter& f) : f_(f) {}
  ~FlowFilterKeeper() { stop(); }
  void start();
  void stop();

 private:
  void run();
  FlowFilter& f_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace svclb
