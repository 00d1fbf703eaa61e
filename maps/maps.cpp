#include "maps/maps.h"

#include <fmt/format.h>

namespace svclb {

int possibleCpus() {
  static const int n = [] {
    int c = libbpf_num_possible_cpus();
    return c > 0 ? c : 1;
  }();
  return n;
}

lb_stats sumStats(const std::vector<lb_stats>& perCpu) {
  lb_stats t{};
  for (const auto& s : perCpu) {
    t.packets += s.packets;
    t.bytes += s.bytes;
    t.reply_packets += s.reply_packets;
    t.reply_bytes += s.reply_bytes;
    t.flows += s.flows;
    t.rejects += s.rejects;
  }
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

const char* dropReasonName(uint32_t reason) {
  switch (reason) {
    case DROP_NO_BACKEND: return "no_backend";
    case DROP_CT_INSERT: return "ct_insert_failed";
    case DROP_CSUM: return "csum_helper_failed";
    case DROP_PULL: return "headers_not_writable";
    case DROP_BACKEND_GONE: return "backend_gone";
    case DROP_REJECT_FAILED: return "reject_failed";
    default: return nullptr;
  }
}

Result<int> openPinnedMap(const std::string& path, uint32_t keySize, uint32_t valueSize) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return Error::fromErrno(errno, "open pinned map " + path);
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    int e = errno;
    close(fd);
    return Error::fromErrno(e, "inspect pinned map " + path);
  }
  if (info.key_size != keySize || info.value_size != valueSize) {
    close(fd);
    return Error{EINVAL, fmt::format("pinned map {} has key/value size {}/{}, this build expects {}/{}",
                                     path, info.key_size, info.value_size, keySize, valueSize)};
  }
  return fd;
}

}  // namespace svclb
