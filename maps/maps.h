// Typed C++ views of the svclb maps (layouts from svclb_abi.h). A wrapper
// holds a borrowed map fd (the skeleton or a pinned map owns it) and turns
// libbpf's -errno into Status/Result.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "maps/svclb_abi.h"

namespace svclb {

// The packet path's hash (bpf/lib/hash.h hash_3words, lookup3's final mix
// over three words with a fixed initval): Maglev predictions (svcctl trace)
// and lb_filter_v1's bits. Its inputs are the words as BPF loads them from
// the packet (network order in memory, read as a host integer). Must stay
// equal to the BPF one.
uint32_t flowHash3(uint32_t a, uint32_t b, uint32_t c);

// lb_filter_v1's bit for an address (`fold`: an IPv4 address, or the XOR of
// an IPv6 address's four words, network order) and a port (network order).
inline uint32_t filterBit(uint32_t fold, uint16_t portBe) {
  return flowHash3(fold, portBe, SVCLB_FILTER_SEED) & (SVCLB_FILTER_BITS - 1);
}
uint32_t foldIPv6(const void* addr16);

// Number of possible CPUs: the width of every per-CPU value.
int possibleCpus();

// Elements per BPF_MAP_*_BATCH call: bounds the kernel's copy buffers (a
// per-CPU value is one value per possible CPU).
inline constexpr size_t kMapBatch = 8192;

// One BPF_MAP_UPDATE_BATCH call per kMapBatch elements; `what` names the map
// in the error.
Status updateBatchRaw(int fd, const void* keys, size_t keySize, const void* values,
                      size_t valueSize, size_t n, const std::string& what);

template <class K, class V>
class TypedMap {
 public:
  TypedMap() = default;
  TypedMap(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }

  std::optional<V> lookup(const K& key) const {
    V v{};
    if (bpf_map_lookup_elem(fd_, &key, &v) != 0) return std::nullopt;
    return v;
  }
  Status update(const K& key, const V& value, uint64_t flags = BPF_ANY) {
    if (bpf_map_update_elem(fd_, &key, &value, flags) != 0)
      return Error::fromErrno(errno, "update of map " + name_);
    return {};
  }
  // keys[i] -> values[i], in array order: the kernel updates a batch one
  // element after the other (generic_map_update_batch), so the write order
  // is that of single updates. Stops at the first error.
  Status updateBatch(std::span<const K> keys, std::span<const V> values) {
    if (keys.size() != values.size())
      return Error{EINVAL, "batch update of map " + name_ + ": keys and values differ in number"};
    return updateBatchRaw(fd_, keys.data(), sizeof(K), values.data(), sizeof(V), keys.size(),
                          name_);
  }
  // Visits every entry by BPF_MAP_LOOKUP_BATCH, kMapBatch a call (arrays:
  // every index, empty or not). The kernel's batch token (a u32 for arrays
  // and hashes) is kept in a K.
  Status forEachBatch(const std::function<void(const K&, const V&)>& fn) const {
    std::vector<K> keys(kMapBatch);
    std::vector<V> vals(kMapBatch);
    K outBatch{};
    bool first = true;
    for (;;) {
      auto n = static_cast<uint32_t>(kMapBatch);
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      int err = bpf_map_lookup_batch(fd_, first ? nullptr : &outBatch, &outBatch, keys.data(),
                                     vals.data(), &n, &opts);
      first = false;
      if (err && errno != ENOENT) return Error::fromErrno(errno, "read map " + name_);
      for (uint32_t i = 0; i < n; ++i) fn(keys[i], vals[i]);
      if (err) return {};  // ENOENT: that was the last batch
    }
  }
  // Deleting a missing key is not an error.
  Status erase(const K& key) {
    if (bpf_map_delete_elem(fd_, &key) != 0 && errno != ENOENT)
      return Error::fromErrno(errno, "delete from map " + name_);
    return {};
  }
  // Visits every entry (hash maps). Entries added/removed concurrently may be
  // missed or seen twice, as with any BPF map iteration.
  void forEach(const std::function<void(const K&, const V&)>& fn) const {
    K key{}, next{};
    const K* prev = nullptr;
    while (bpf_map_get_next_key(fd_, prev, &next) == 0) {
      V v{};
      if (bpf_map_lookup_elem(fd_, &next, &v) == 0) fn(next, v);
      key = next;
      prev = &key;
    }
  }
  size_t count() const {
    size_t n = 0;
    K key{}, next{};
    const K* prev = nullptr;
    while (bpf_map_get_next_key(fd_, prev, &next) == 0) {
      ++n;
      key = next;
      prev = &key;
    }
    return n;
  }

 protected:
  int fd_ = -1;
  std::string name_;
};

// Per-CPU array: lookup returns one value per possible CPU.
template <class V>
class PerCpuArray {
 public:
  PerCpuArray() = default;
  PerCpuArray(int fd, std::string name) : fd_(fd), name_(std::move(name)), ncpu_(possibleCpus()) {}
  int fd() const { return fd_; }

  std::vector<V> lookup(uint32_t idx) const {
    std::vector<V> vals(ncpu_);
    if (bpf_map_lookup_elem(fd_, &idx, vals.data()) != 0) vals.clear();
    return vals;
  }
  // Sets every CPU's slot to zero (a fresh id must not inherit old counts).
  Status reset(uint32_t idx) {
    std::vector<V> vals(ncpu_);
    if (bpf_map_update_elem(fd_, &idx, vals.data(), BPF_ANY) != 0)
      return Error::fromErrno(errno, "reset of map " + name_);
    return {};
  }
  // Sets idx's per-CPU values (one per possible CPU).
  Status update(uint32_t idx, const std::vector<V>& perCpu) {
    if (perCpu.size() != static_cast<size_t>(ncpu_))
      return Error{EINVAL, "update of map " + name_ + ": one value per possible CPU"};
    if (bpf_map_update_elem(fd_, &idx, perCpu.data(), BPF_ANY) != 0)
      return Error::fromErrno(errno, "update of map " + name_);
    return {};
  }
  // reset() of every id, by batch updates.
  Status resetBatch(std::span<const uint32_t> ids) {
    static_assert(sizeof(V) % 8 == 0, "per-CPU values are 8-byte aligned");
    std::vector<V> zeros(std::min(kMapBatch, ids.size()) * static_cast<size_t>(ncpu_));
    for (size_t off = 0; off < ids.size(); off += kMapBatch) {
      const size_t n = std::min(kMapBatch, ids.size() - off);
      if (auto st = updateBatchRaw(fd_, ids.data() + off, sizeof(uint32_t), zeros.data(),
                                   sizeof(V) * static_cast<size_t>(ncpu_), n, name_);
          !st)
        return st;
    }
    return {};
  }

 private:
  int fd_ = -1;
  std::string name_;
  int ncpu_ = 1;
};

// The Maglev tables: an ARRAY_OF_MAPS from svc_id to an inner array of
// backend ids (SVCLB_MAP_MAGLEV).
class MaglevMap {
 public:
  MaglevMap() = default;
  explicit MaglevMap(int outerFd) : fd_(outerFd) {}
  // A new inner array filled completely, then swapped into the outer slot in
  // one update: a packet sees the old table or the new one, never a mix.
  Status put(uint32_t svcId, std::span<const uint32_t> table);
  // Removing a missing table is not an error.
  Status erase(uint32_t svcId);

 private:
  int fd_ = -1;
};

using ServiceMap = TypedMap<svc_key, svc_value>;
using BackendMap = TypedMap<uint32_t, backend_value>;
using CtMap = TypedMap<ct_key, ct_value>;
using SockRevMap = TypedMap<sock_rev_key, sock_rev_value>;
using AffinityMap = TypedMap<affinity_key, affinity_value>;
using SrcRangeMap = TypedMap<src_range_key, uint8_t>;
using L2ArpMap = TypedMap<l2_arp_key, l2_arp_value>;
using TxPortMap = TypedMap<uint32_t, uint32_t>;          // DEVMAP_HASH ifindex -> ifindex
using NicXdpMap = TypedMap<uint32_t, uint32_t>;          // ifindex -> 1: svclb_xdp_lb runs on it
using FragMap = TypedMap<frag_key, frag_value>;          // first fragments' ports (bpf/lib/frag.h)
using FilterMap = TypedMap<uint32_t, uint64_t>;          // lb_filter_v1: word -> 64 bits
using BeRevMap = TypedMap<be_rev_key, be_rev_value>;     // be_rev_v1 (loader/be_rev.h)
using BeRev6Map = TypedMap<be_rev6_key, be_rev6_value>;  // be_rev6_v1
using StatsMap = PerCpuArray<lb_stats>;
using DropsMap = PerCpuArray<drop_stats>;
using CtEventsMap = PerCpuArray<uint64_t>;   // CT_EV_* -> count
using MonStateMap = PerCpuArray<mon_state>;  // [0]: svcctl monitor's token bucket and losses
// IPv6 twins (issue 16).
using Service6Map = TypedMap<svc6_key, svc_value>;
using Backend6Map = TypedMap<uint32_t, backend6_value>;
using Ct6Map = TypedMap<ct6_key, ct6_value>;
using Affinity6Map = TypedMap<affinity6_key, affinity_value>;
using SrcRange6Map = TypedMap<src_range6_key, uint8_t>;
using SockRev6Map = TypedMap<sock_rev6_key, sock_rev6_value>;
using L2NdpMap = TypedMap<l2_ndp_key, l2_arp_value>;
using Frag6Map = TypedMap<frag6_key, frag_value>;

// be_stats_v2 (svclb_abi.h struct be_slot) as mapped by BackendSlotsMapping:
// each backend id's owner and counters, one slot per possible CPU. A view:
// the mapping must outlive it.
class BackendSlots {
 public:
  BackendSlots() = default;
  BackendSlots(be_slot* base, uint32_t ids, uint32_t stride)
      : base_(base), ids_(ids), stride_(stride) {}
  // Backend `id`'s counters, one per CPU as PerCpuArray::lookup (empty past
  // the map).
  std::vector<lb_stats> lookup(uint32_t id) const;
  // Its owner (svc_id; 0: free), 0 past the map.
  uint32_t owner(uint32_t id) const;
  // The counts of every backend `svcId` owns (a scan of the ids: tests).
  lb_stats sumOwnedBy(uint32_t svcId) const;
  // Every CPU's slot of `id`: zero counters, then the owner `svcId` (0:
  // the id is free; its CT entries are no longer valid).
  Status own(uint32_t id, uint32_t svcId);
  // Adds per-CPU counts to `id`'s slots (CPU i's to slot i; more values
  // than slots go to the last). Plain adds: for slots no program counts in
  // yet (a new map, Dataplane::adoptBackendSlots).
  Status add(uint32_t id, const std::vector<lb_stats>& perCpu);
  uint32_t stride() const { return stride_; }

 private:
  be_slot* base_ = nullptr;
  uint32_t ids_ = 0;
  uint32_t stride_ = 1;
};

// be_stats_v2 mmapped (an ARRAY of ids * stride slots, BPF_F_MMAPABLE; `fd`
// borrowed: it must outlive this object).
class BackendSlotsMapping {
 public:
  static Result<std::unique_ptr<BackendSlotsMapping>> open(int fd, uint32_t ids, uint32_t stride);
  ~BackendSlotsMapping();
  BackendSlotsMapping(const BackendSlotsMapping&) = delete;
  BackendSlotsMapping& operator=(const BackendSlotsMapping&) = delete;
  BackendSlots view() const { return {base_, ids_, stride_}; }

 private:
  BackendSlotsMapping(be_slot* base, size_t len, uint32_t ids, uint32_t stride)
      : base_(base), len_(len), ids_(ids), stride_(stride) {}
  be_slot* base_;
  size_t len_;
  uint32_t ids_;
  uint32_t stride_;
};

// to += a, counter by counter.
void addStats(lb_stats& to, const lb_stats& a);
// Sums a per-CPU lb_stats value.
lb_stats sumStats(const std::vector<lb_stats>& perCpu);
drop_stats sumDrops(const std::vector<drop_stats>& perCpu);

// Name of a drop reason as exported in metrics and `svcctl stats`.
const char* dropReasonName(uint32_t reason);
// Name of a conntrack event (CT_EV_*) in metrics and `svcctl stats`; null if none.
const char* ctEventName(uint32_t ev);
uint64_t sumCounts(const std::vector<uint64_t>& perCpu);

}  // namespace svclb
