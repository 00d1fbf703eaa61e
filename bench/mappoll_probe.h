// svclb-mappoll's probe, apart from the kernel so it is unit-tested
// (tests/unit/mappoll_probe_test.cpp) with maps faked by callbacks.
//
// "The change is in the map" means what a new packet sees: the frontend's
// master (svc_v1 slot 0) names `count` ready slots, and one of slots
// 1..count names a backends_v1 entry that is ACTIVE with ADDR:PORT. The
// syncer writes backend entries, then slots, then the master LAST
// (loader/reconcile.h), so the probe turns true only once the master write
// that makes the endpoint reachable is done: never before the change is
// live, and not merely when its first write (the backend entry) landed.
// Removal is the same test negated: gone once the master no longer counts
// a slot naming it.
//
// Cost: 1 + count + count lookups of single keys (~25 for a Service with 11
// endpoints), independent of the map sizes — unlike a walk over the
// 524,288-entry backends array, which took ~80 ms per poll.
#pragma once

#include <cstdint>
#include <functional>

#include "maps/svclb_abi.h"

namespace svclb::mappoll {

// Each returns false when the key is absent (or the lookup failed).
using SvcLookup = std::function<bool(const svc_key&, svc_value&)>;
using BackendLookup = std::function<bool(uint32_t, backend_value&)>;

// vip, vport, addr, port in network order (as in the maps).
inline bool reachable(const SvcLookup& svc, const BackendLookup& backend, __be32 vip, __be16 vport,
                      uint8_t proto, __be32 addr, __be16 port) {
  svc_key k{};
  k.vip = vip;
  k.port = vport;
  k.proto = proto;
  k.scope = SVC_SCOPE_EXTERNAL;
  svc_value master{};
  if (!svc(k, master)) return false;
  for (uint16_t slot = 1; slot <= master.count; ++slot) {
    k.slot = slot;
    svc_value s{};
    if (!svc(k, s) || s.svc_id != master.svc_id) continue;
    backend_value b{};
    if (!backend(s.backend_id, b)) continue;
    if (b.state == BE_STATE_ACTIVE && b.svc_id == master.svc_id && b.addr == addr && b.port == port)
      return true;
  }
  return false;
}

}  // namespace svclb::mappoll
