// Typed C++ views of the svclb maps (layouts from svclb_abi.h). A wrapper
// holds a borrowed map fd (the skeleton or a pinned map owns it) and turns
// libbpf's -errno into Status/Result.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "maps/svclb_abi.h"

namespace svclb {

// Number of possible CPUs: the width of every per-CPU value.
int possibleCpus();

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

 private:
  int fd_ = -1;
  std::string name_;
  int ncpu_ = 1;
};

using ServiceMap = TypedMap<svc_key, svc_value>;
using BackendMap = TypedMap<uint32_t, backend_value>;
using CtMap = TypedMap<ct_key, ct_value>;
using SockRevMap = TypedMap<sock_rev_key, sock_rev_value>;
using AffinityMap = TypedMap<affinity_key, affinity_value>;
using SrcRangeMap = TypedMap<src_range_key, uint8_t>;
using L2ArpMap = TypedMap<l2_arp_key, l2_arp_value>;
using TxPortMap = TypedMap<uint32_t, uint32_t>;  // DEVMAP_HASH ifindex -> ifindex
using NicXdpMap = TypedMap<uint32_t, uint32_t>;  // ifindex -> 1: svclb_xdp_lb runs on it
using StatsMap = PerCpuArray<lb_stats>;
using DropsMap = PerCpuArray<drop_stats>;
using CtEventsMap = PerCpuArray<uint64_t>;  // CT_EV_* -> count

// Sums a per-CPU lb_stats value.
lb_stats sumStats(const std::vector<lb_stats>& perCpu);
drop_stats sumDrops(const std::vector<drop_stats>& perCpu);

// Name of a drop reason as exported in metrics and `svcctl stats`.
const char* dropReasonName(uint32_t reason);
// Name of a conntrack event (CT_EV_*) in metrics and `svcctl stats`; null if none.
const char* ctEventName(uint32_t ev);
uint64_t sumCounts(const std::vector<uint64_t>& perCpu);

}  // namespace svclb
