#include "loader/flow_filter.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "loader/wall_clock.h"

namespace svclb {

namespace {

// An address as the slots hash it (svclb_abi.h: FAM_ADDR_FOLD).
uint32_t foldOf(uint32_t addr) { return addr; }
uint32_t foldOf(const v6addr& addr) { return foldIPv6(&addr); }

// A slot is one byte: plain stores, as the packet path's (never a
// read-modify-write that could undo another CPU's slot in the same word).
inline void setByte(uint8_t& byte) {
  std::atomic_ref<uint8_t> b(byte);
  if (b.load(std::memory_order_relaxed) == 0) b.store(1, std::memory_order_relaxed);
}

}  // namespace

Result<std::unique_ptr<FlowFilter>> FlowFilter::open(int fd, FlowFilterSources src) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t len = (SVCLB_FLOWF_ENTRIES * 8ull + page - 1) / page * page;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Error::fromErrno(errno, "mmap of map " SVCLB_MAP_FLOW_FILTER);
  return std::unique_ptr<FlowFilter>(new FlowFilter(static_cast<uint8_t*>(p), len, std::move(src)));
}

FlowFilter::~FlowFilter() { munmap(base_, len_); }

void FlowFilter::invalidate() { ctl().fetch_and(~SVCLB_FLOWF_VALID, std::memory_order_seq_cst); }

void FlowFilter::turnOff(std::string why) {
  invalidate();
  off_ = std::move(why);
}

Status FlowFilter::rebuild(std::chrono::milliseconds grace) {
  std::lock_guard lk(mu_);
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t c = ctl().load(std::memory_order_acquire);
  const int next = (c & SVCLB_FLOWF_CUR) ? 0 : 1;
  // Programs store into this map too (every CT insert sets both maps'
  // slots): a slot cleared here just after a program set it belongs to an
  // entry whose insert finishes well within the grace below, so the walk
  // that follows finds the entry. Byte stores: the current map's bytes
  // share the words.
  for (uint32_t i = 0; i < SVCLB_FLOWF_SLOTS; ++i)
    std::atomic_ref<uint8_t>(slotByte(next, i)).store(0, std::memory_order_relaxed);
  auto setSlot = [&](uint32_t slot) { setByte(slotByte(next, slot)); };
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (grace.count() > 0) std::this_thread::sleep_for(grace);
  // The programs' clock, read after the clear: an entry idle past its
  // lifetime now stays so (only a packet path insert or a live pair's
  // refresh revives a key, and both leave a live entry or a slot behind).
  auto j = src_.jiffies();
  if (!j) return j.error();
  const uint32_t now = static_cast<uint32_t>(*j >> CT_TICK_SHIFT);
  auto alive = [&](uint8_t proto, uint32_t flags, uint32_t lastSeen) {
    const uint32_t life = (flags & CT_F_CLOSING) ? src_.lifeClosing
                          : proto == IPPROTO_TCP ? src_.lifeTcp
                                                 : src_.lifeNonTcp;
    return now - lastSeen <= life;
  };
  uint64_t entries = 0;
  // The slots the packet path sets (ct_create, ct_relink): a key's client
  // side (a FORWARD key's source, a REPLY key's destination) and a
  // source-NATed FORWARD entry's SNAT address and port. A backend's or a
  // frontend's own {address, port} gets none.
  auto mark = [&](const auto& k, const auto& v) {
    ++entries;
    if (!alive(k.proto, v.flags, v.last_seen)) return;
    if (v.dir != CT_DIR_FORWARD) return setSlot(slotOf(foldOf(k.daddr), k.dport));
    setSlot(slotOf(foldOf(k.saddr), k.sport));
    if (v.flags & CT_F_SNAT) setSlot(slotOf(foldOf(v.snat_addr), v.snat_port));
  };
  // ct_v2 before ct_est_v2: an entry only ever moves from the first to the
  // second (a TCP promotion inserts there before it deletes here), so a walk
  // in this order sees every entry that lives through it.
  if (auto st = src_.ct.forEachBatch(mark); !st) return st;
  if (auto st = src_.ctEst.forEachBatch(mark); !st) return st;
  if (auto st = src_.ct6.forEachBatch(mark); !st) return st;
  if (auto st = src_.ct6Est.forEachBatch(mark); !st) return st;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  ctl().store(static_cast<uint64_t>(next) | SVCLB_FLOWF_VALID, std::memory_order_seq_cst);
  ++rebuilds_;
  lastEntries_ = entries;
  lastDurationNs_ = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  lastEndUnixNs_ = unixNowNs();
  return {};
}

bool FlowFilter::test(uint32_t fold, uint16_t portBe) const {
  const uint64_t c = ctl().load(std::memory_order_acquire);
  if (!(c & SVCLB_FLOWF_VALID)) return true;
  return std::atomic_ref<uint8_t>(slotByte((c & SVCLB_FLOWF_CUR) ? 1 : 0, slotOf(fold, portBe)))
             .load(std::memory_order_relaxed) != 0;
}

double FlowFilter::fill() const {
  const uint64_t c = ctl().load(std::memory_order_acquire);
  // The current map's bytes: every other byte of the words (little
  // endian: map 0 in the low byte of each 16 bits).
  const unsigned shift = (c & SVCLB_FLOWF_CUR) ? 8 : 0;
  size_t set = 0;
  for (size_t i = 0; i < 2ull * SVCLB_FLOWF_SLOTS; i += 8) {
    uint64_t w;
    std::memcpy(&w, base_ + i, 8);
    // Each byte is 0 or 1: the count of ones is the sum of the bytes.
    w = (w >> shift) & 0x00ff00ff00ff00ffull;
    w = (w & 0x0000ffff0000ffffull) + ((w >> 16) & 0x0000ffff0000ffffull);
    set += (w & 0xffffffffull) + (w >> 32);
  }
  return static_cast<double>(set) / SVCLB_FLOWF_SLOTS;
}

FlowFilterStats FlowFilter::stats() const {
  FlowFilterStats s;
  s.valid = (ctl().load(std::memory_order_acquire) & SVCLB_FLOWF_VALID) != 0;
  s.fill = fill();
  s.rebuilds = rebuilds_;
  s.lastEntries = lastEntries_;
  s.lastDurationNs = lastDurationNs_;
  s.lastEndUnixNs = lastEndUnixNs_;
  s.off = off_;
  return s;
}

void FlowFilterKeeper::start() {
  f_.invalidate();
  if (auto st = f_.rebuild(); !st)
    fmt::print(stderr, "svclbd: flow filter: {} (every packet takes the full conntrack path)\n",
               st.error().message);
  thread_ = std::thread([this] { run(); });
}

void FlowFilterKeeper::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FlowFilterKeeper::run() {
  using P = FlowFilterPolicy;
  auto last = std::chrono::steady_clock::now();
  P::Duration minGap = P::kQuarterGap;
  std::unique_lock lk(mu_);
  while (!cv_.wait_for(lk, P::kTick, [this] { return stop_; })) {
    if (!P::due(f_.fill(), std::chrono::steady_clock::now() - last, minGap)) continue;
    lk.unlock();
    auto st = f_.rebuild();
    lk.lock();
    last = std::chrono::steady_clock::now();
    if (!st) fmt::print(stderr, "svclbd: flow filter rebuild: {}\n", st.error().message);
    minGap = P::gapAfter(static_cast<bool>(st), f_.fill());
  }
}

}  // namespace svclb
