// collectCounters (loader/metrics.h): the one place that reads the counter
// maps and the syncer's state for `svcctl stats`, `status` and /metrics.
#include <arpa/inet.h>

#include <algorithm>

#include "loader/dataplane.h"
#include "loader/metrics.h"
#include "loader/syncer.h"

namespace svclb {

LruCounts countLruMaps(const Dataplane& dp) {
  return {dp.conntrack().count(), dp.conntrackEst().count(), dp.sockRev().count()};
}

std::vector<MapUsage> collectMapUsage(const Dataplane& dp, const Syncer& syncer,
                                      const LruCounts& lruCounts) {
  const auto& cfg = dp.config();
  const auto& act = syncer.actual();
  size_t svcEntries = 0;
  for (const auto& [k, f] : act.frontends) svcEntries += svcEntriesOf(f);
  // Walking an LRU that the dataplane churns can revisit keys: those counts
  // are estimates, capped at the capacity.
  auto lru = [](size_t n, uint64_t max) { return std::min<uint64_t>(n, max); };
  return {
      {SVCLB_MAP_SERVICES, "hash", cfg.maxServiceEntries, svcEntries},
      {SVCLB_MAP_BACKENDS, "array", cfg.maxBackends - 1, act.backendIds.inUse()},
      {SVCLB_MAP_SVC_STATS, "percpu_array", cfg.maxSvcIds - 1, act.svcIds.inUse()},
      {SVCLB_MAP_CT, "lru_hash", cfg.maxCtEntries, lru(lruCounts.ct, cfg.maxCtEntries)},
      {SVCLB_MAP_CT_EST, "lru_hash", cfg.maxCtEntries, lru(lruCounts.ctEst, cfg.maxCtEntries)},
      {SVCLB_MAP_SOCK_REV, "lru_hash", SVCLB_DEFAULT_SOCK_REV_ENTRIES,
       lru(lruCounts.sockRev, SVCLB_DEFAULT_SOCK_REV_ENTRIES)},
  };
}

CounterSnapshot collectCounters(const Dataplane& dp, const Syncer& syncer, const LruCounts& lru) {
  CounterSnapshot s;
  auto svcStats = dp.svcStats();
  auto beStats = dp.backendStats();
  s.frontends.reserve(syncer.actual().frontends.size());
  for (const auto& [key, f] : syncer.actual().frontends) {
    s.draining.heldEndpoints += heldBackendsOf(f);
    s.draining.deletedFrontends += f.retired;
    if (f.retired) continue;  // a deleted Service's (svcctl status: draining)
    FrontendCounters fc;
    fc.ns = f.ns;
    fc.name = f.name;
    fc.portName = f.portName;
    fc.key = key;
    fc.svcId = f.svcId;
    fc.maglev = f.master.algo == SVC_ALGO_MAGLEV;
    // A frontend's counts: its own (rejects, its freed backends') and its
    // backends' (svclb_abi.h lb_stats).
    lb_stats total = sumStats(svcStats.lookup(f.svcId));
    fc.backends.reserve(f.backends.size());
    for (const auto& b : f.backends) {
      const lb_stats be = sumStats(beStats.lookup(b.id));
      addStats(total, be);
      fc.backends.push_back(
          {ntohl(b.value.addr), ntohs(b.value.port), b.id, b.value.state, be, b.addr6});
    }
    fc.traffic = total;
    // An externalTrafficPolicy: Local frontend's twin for this node's own
    // pods and processes (key.scope SVC_SCOPE_INTERNAL, the map order puts
    // it right after its frontend) counts as that frontend: its traffic is
    // the frontend's, its backends elsewhere are listed after the local ones.
    if (key.scope == SVC_SCOPE_INTERNAL && !s.frontends.empty()) {
      FrontendCounters& ext = s.frontends.back();
      FrontendKey k = key;
      k.scope = SVC_SCOPE_EXTERNAL;
      if (ext.key == k) {
        addStats(ext.traffic, fc.traffic);
        for (auto& b : fc.backends) {
          auto same = std::find_if(ext.backends.begin(), ext.backends.end(), [&](const auto& o) {
            return o.ip == b.ip && o.ip6 == b.ip6 && o.port == b.port;
          });
          if (same == ext.backends.end())
            ext.backends.push_back(std::move(b));
          else
            addStats(same->traffic, b.traffic);
        }
        continue;
      }
    }
    s.frontends.push_back(std::move(fc));
  }
  auto dm = dp.drops();
  for (uint32_t r = 1; r < DROP_MAX; ++r) {
    const char* n = dropReasonName(r);
    if (!n) continue;
    drop_stats d = sumDrops(dm.lookup(r));
    s.drops.push_back({n, d.packets, d.bytes});
  }
  auto em = dp.ctEvents();
  for (uint32_t e = 0; e < CT_EV_MAX; ++e)
    if (const char* n = ctEventName(e)) s.ctEvents[n] = sumCounts(em.lookup(e));
  s.maps = collectMapUsage(dp, syncer, lru);
  const SyncStats& ss = syncer.stats();
  s.sync = {ss.count, ss.errors, ss.opsApplied, ss.lastSeconds, ss.totalSeconds, ss.lastError};
  return s;
}

}  // namespace svclb
