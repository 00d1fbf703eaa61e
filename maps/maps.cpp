#include "maps/maps.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>

namespace svclb {

namespace {
constexpr uint32_t kHashInitval = 0x5c1b5c1bU;  // bpf/lib/hash.h SVCLB_HASH_INITVAL
constexpr uint32_t rol32(uint32_t w, unsigned s) { return (w << s) | (w >> (32 - s)); }
}  // namespace

uint32_t flowHash3(uint32_t a, uint32_t b, uint32_t c) {
  a += kHashInitval + (3 << 2);
  b += kHashInitval + (3 << 2);
  c += kHashInitval + (3 << 2);
  c ^= b;
  c -= rol32(b, 14);
  a ^= c;
  a -= rol32(c, 11);
  b ^= a;
  b -= rol32(a, 25);
  c ^= b;
  c -= rol32(b, 16);
  a ^= c;
  a -= rol32(c, 4);
  b ^= a;
  b -= rol32(a, 14);
  c ^= b;
  c -= rol32(b, 24);
  return c;
}

uint32_t foldIPv6(const void* addr16) {
  uint32_t w[4];
  std::memcpy(w, addr16, sizeof w);
  return w[0] ^ w[1] ^ w[2] ^ w[3];
}

int possibleCpus() {
  static const int n = [] {
    int c = libbpf_num_possible_cpus();
    return c > 0 ? c : 1;
  }();
  return n;
}

Status updateBatchRaw(int fd, const void* keys, size_t keySize, const void* values,
                      size_t valueSize, size_t n, const std::string& what) {
  const auto* k = static_cast<const char*>(keys);
  const auto* v = static_cast<const char*>(values);
  for (size_t off = 0; off < n; off += kMapBatch) {
    auto count = static_cast<uint32_t>(std::min(kMapBatch, n - off));
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    if (bpf_map_update_batch(fd, k + off * keySize, v + off * valueSize, &count, &opts) != 0)
      return Error::fromErrno(errno, fmt::format("batch update of map {}", what));
  }
  return {};
}

Status MaglevMap::put(uint32_t svcId, std::span<const uint32_t> table) {
  LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = BPF_F_INNER_MAP);
  int inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "svclb_maglev", sizeof(uint32_t), sizeof(uint32_t),
                             static_cast<uint32_t>(table.size()), &copts);
  if (inner < 0) return Error::fromErrno(errno, "create Maglev table");
  std::vector<uint32_t> keys(table.size());
  for (uint32_t i = 0; i < keys.size(); ++i) keys[i] = i;
  Status st = updateBatchRaw(inner, keys.data(), sizeof(uint32_t), table.data(), sizeof(uint32_t),
                             table.size(), "svclb_maglev");
  if (!st)
    st = Error::fromErrno(st.error().code, "fill Maglev table");
  else if (bpf_map_update_elem(fd_, &svcId, &inner, BPF_ANY) != 0)
    st = Error::fromErrno(errno, "install Maglev table");
  close(inner);  // the outer map holds it now
  return st;
}

Status MaglevMap::erase(uint32_t svcId) {
  if (bpf_map_delete_elem(fd_, &svcId) != 0 && errno != ENOENT)
    return Error::fromErrno(errno, "delete Maglev table");
  return {};
}

std::vector<lb_stats> BackendSlots::lookup(uint32_t id) const {
  std::vector<lb_stats> out;
  if (id >= ids_) return out;
  out.reserve(stride_);
  const be_slot* slot = base_ + static_cast<size_t>(id) * stride_;
  for (uint32_t c = 0; c < stride_; ++c) {
    // The programs' counters are plain 64-bit stores: read each whole.
    const lb_stats& s = slot[c].s;
    auto ld = [](const __u64& v) {
      return std::atomic_ref<const __u64>(v).load(std::memory_order_relaxed);
    };
    out.push_back({ld(s.packets), ld(s.bytes), ld(s.reply_packets), ld(s.reply_bytes), ld(s.flows),
                   ld(s.rejects)});
  }
  return out;
}

uint32_t BackendSlots::owner(uint32_t id) const {
  if (id >= ids_) return 0;
  return std::atomic_ref<const __u32>(base_[static_cast<size_t>(id) * stride_].svc_id)
      .load(std::memory_order_acquire);
}

lb_stats BackendSlots::sumOwnedBy(uint32_t svcId) const {
  lb_stats t{};
  if (svcId == 0) return t;
  for (uint32_t id = 1; id < ids_; ++id)
    if (owner(id) == svcId) addStats(t, sumStats(lookup(id)));
  return t;
}

Status BackendSlots::own(uint32_t id, uint32_t svcId) {
  if (id >= ids_)
    return Error{ERANGE, fmt::format("backend id {} past map " SVCLB_MAP_BE_STATS, id)};
  be_slot* slot = base_ + static_cast<size_t>(id) * stride_;
  for (uint32_t c = 0; c < stride_; ++c) {
    auto& s = slot[c].s;
    for (__u64* v : {&s.packets, &s.bytes, &s.reply_packets, &s.reply_bytes, &s.flows, &s.rejects})
      std::atomic_ref<__u64>(*v).store(0, std::memory_order_relaxed);
    std::atomic_ref<__u32>(slot[c].svc_id).store(svcId, std::memory_order_release);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return {};
}

Status BackendSlots::add(uint32_t id, const std::vector<lb_stats>& perCpu) {
  if (id >= ids_)
    return Error{ERANGE, fmt::format("backend id {} past map " SVCLB_MAP_BE_STATS, id)};
  be_slot* slot = base_ + static_cast<size_t>(id) * stride_;
  for (size_t i = 0; i < perCpu.size(); ++i) {
    addStats(slot[std::min<size_t>(i, stride_ - 1)].s, perCpu[i]);
  }
  return {};
}

Result<std::unique_ptr<BackendSlotsMapping>> BackendSlotsMapping::open(int fd, uint32_t ids,
                                                                       uint32_t stride) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t bytes = static_cast<size_t>(ids) * stride * sizeof(be_slot);
  const size_t len = (bytes + page - 1) / page * page;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Error::fromErrno(errno, "mmap of map " SVCLB_MAP_BE_STATS);
  return std::unique_ptr<BackendSlotsMapping>(
      new BackendSlotsMapping(static_cast<be_slot*>(p), len, ids, stride));
}

BackendSlotsMapping::~BackendSlotsMapping() { munmap(base_, len_); }

void addStats(lb_stats& to, const lb_stats& a) {
  to.packets += a.packets;
  to.bytes += a.bytes;
  to.reply_packets += a.reply_packets;
  to.reply_bytes += a.reply_bytes;
  to.flows += a.flows;
  to.rejects += a.rejects;
}

lb_stats sumStats(const std::vector<lb_stats>& perCpu) {
  lb_stats t{};
  for (const auto& s : perCpu) addStats(t, s);
  return t;
}

drop_stats sumDrops(const std::vector<drop_stats>& perCpu) {
  drop_stats t{};
  for (const auto& s : perCpu) {
    t.packets += s.packets;
    t.bytes += s.bytes;
  }
  return t;
}

const char* ctEventName(uint32_t ev) {
  switch (ev) {
    case CT_EV_RELINKED:
      return "relinked";
    case CT_EV_ORPHANED:
      return "orphaned";
    case CT_EV_ICMP_ERROR:
      return "icmp_error";
    case CT_EV_FRAG_NO_FIRST:
      return "fragment_without_first";
    default:
      return nullptr;
  }
}

uint64_t sumCounts(const std::vector<uint64_t>& perCpu) {
  uint64_t t = 0;
  for (uint64_t v : perCpu) t += v;
  return t;
}

const char* dropReasonName(uint32_t reason) {
  switch (reason) {
    case DROP_NO_BACKEND:
      return "no_backend";
    case DROP_CT_INSERT:
      return "ct_insert_failed";
    case DROP_CSUM:
      return "csum_helper_failed";
    case DROP_PULL:
      return "headers_not_writable";
    case DROP_BACKEND_GONE:
      return "backend_gone";
    case DROP_REJECT_FAILED:
      return "reject_failed";
    case DROP_SOURCE_RANGE:
      return "source_range";
    case DROP_NO_LOCAL_EP:
      return "no_local_endpoint";
    case DROP_SNAT_PORTS:
      return "snat_ports_exhausted";
    case DROP_FIB:
      return "no_route";
    case DROP_TTL:
      return "ttl_exceeded";
    default:
      return nullptr;
  }
}

}  // namespace svclb
