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

const char* ctEventName(uint32_t ev) {
  switch (ev) {
    case CT_EV_RELINKED: return "relinked";
    case CT_EV_ORPHANED: return "orphaned";
    default: return nullptr;
  }
}

uint64_t sumCounts(const std::vector<uint64_t>& perCpu) {
  uint64_t t = 0;
  for (uint64_t v : perCpu) t += v;
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
    case DROP_SOURCE_RANGE: return "source_range";
    case DROP_NO_LOCAL_EP: return "no_local_endpoint";
    case DROP_SNAT_PORTS: return "snat_ports_exhausted";
    case DROP_FIB: return "no_route";
    case DROP_TTL: return "ttl_exceeded";
    default: return nullptr;
  }
}

}  // namespace svclb
