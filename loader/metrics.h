// svclbd's counters as typed values, read once (collectCounters) and
// rendered twice: the `stats` API answer (statsJson, docs/api.md) and the
// Prometheus text exposition of /metrics (renderPrometheus). Both views come
// from the same snapshot, so they cannot disagree. The renderers are pure
// (unit-tested); only the collection reads the maps.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dns/server.h"
#include "maps/svclb_abi.h"
#include "model/model.h"

namespace svclb {

class Dataplane;
class Syncer;

// A frontend's or backend's counters summed over the CPUs: the packet path's
// own struct (svclb_abi.h lb_stats; maps/maps.h addStats, sumStats).
using TrafficCounters = lb_stats;

struct BackendCounters {
  uint32_t ip = 0;  // host order
  uint16_t port = 0;
  uint32_t id = 0;                  // backends_v1 index
  uint8_t state = BE_STATE_ACTIVE;  // BE_STATE_*
  TrafficCounters traffic{};        // zeroed: lb_stats has no member initializers
  Ip6 ip6{};                        // an IPv6 backend's address (ip 0)
  std::string address() const { return ip6 != Ip6{} ? formatIPv6(ip6) : formatIPv4(ip); }
};

// One frontend (a Service port's ClusterIP, NodePort x node address,
// LoadBalancer IP or externalIP).
struct FrontendCounters {
  std::string ns, name, portName;
  FrontendKey key;
  uint32_t svcId = 0;
  bool maglev = false;        // else random
  TrafficCounters traffic{};  // zeroed: lb_stats has no member initializers
  std::vector<BackendCounters> backends;
};

struct DropCounters {
  std::string reason;  // dropReasonName
  uint64_t packets = 0, bytes = 0;
};

struct MapUsage {
  std::string name, type;
  uint64_t maxEntries = 0, entries = 0;
};

struct SyncCounters {
  uint64_t count = 0, errors = 0, opsApplied = 0;
  double lastSeconds = 0, totalSeconds = 0;
  std::string lastError;
};

// A backend entry's state (backends_v1 .state) in svcctl stats, trace and
// /metrics: active (takes new flows), terminating, not-ready (a TCP
// frontend's not-ready endpoint), removed (gone from its TCP Service, kept
// while its connections live), empty (a free entry).
const char* backendStateName(uint8_t state);

// What svclbd keeps only for live connections (svcctl status "draining").
struct DrainCounters {
  uint64_t heldEndpoints = 0;     // BE_STATE_REMOVED backends, deleted Services' included
  uint64_t deletedFrontends = 0;  // frontends of deleted TCP Services (retired)
};

struct CounterSnapshot {
  std::vector<FrontendCounters> frontends;   // by frontend key
  std::vector<DropCounters> drops;           // by reason number
  std::map<std::string, uint64_t> ctEvents;  // by name
  std::vector<MapUsage> maps;
  SyncCounters sync;
  DrainCounters draining;
  // The cluster DNS server's totals (svclbd --cluster-dns; unset when off).
  std::optional<dns::ServerCounters> dns;
};

// The entries of the LRU maps the dataplane fills (conntrack, socket
// reverse NAT), counted by walking them: ~0.5 us per entry, so hundreds of
// ms for full tables. Takes no lock (the maps live as long as the
// Dataplane; the counts are estimates anyway): callers count BEFORE taking
// the daemon's lock, so a status call or a metrics scrape never holds up a
// sync for a walk.
struct LruCounts {
  size_t ct = 0, ctEst = 0, sockRev = 0;
};
LruCounts countLruMaps(const Dataplane& dp);

// Reads every counter (the caller holds the daemon's lock); the LRU maps'
// entries are the caller's countLruMaps.
std::vector<MapUsage> collectMapUsage(const Dataplane& dp, const Syncer& syncer,
                                      const LruCounts& lru);
CounterSnapshot collectCounters(const Dataplane& dp, const Syncer& syncer, const LruCounts& lru);

// {"ok":true,"services":[...],"drops":[...],"conntrackEvents":{...}[,"dns":{...}]}
nlohmann::json statsJson(const CounterSnapshot& s);
// [{"name":..,"type":..,"maxEntries":..,"entries":..}, ...] (status "maps")
nlohmann::json mapsJson(const std::vector<MapUsage>& maps);
// The /metrics body: every family with HELP and TYPE, then its samples.
std::string renderPrometheus(const CounterSnapshot& s);

}  // namespace svclb
