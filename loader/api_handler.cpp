#include "loader/api_handler.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <unistd.h>

#include "dns/zone.h"
#include "loader/committer.h"
#include "loader/dataplane.h"
#include "loader/k8s_source.h"
#include "loader/metrics.h"
#include "loader/syncer.h"
#include "loader/trace.h"

namespace svclb {

using nlohmann::json;

namespace {

json fail(const std::string& msg) { return {{"ok", false}, {"error", msg}}; }

// RFC 3339, UTC, seconds: what kubectl prints for timestamps.
json timeJson(const std::optional<std::chrono::system_clock::time_point>& t) {
  if (!t) return nullptr;
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}",
                     std::chrono::time_point_cast<std::chrono::seconds>(*t));
}

json kubernetesJson(const K8sSourceStatus& s) {
  json watches = json::array();
  for (const auto& r : s.reflectors)
    watches.push_back({{"resource", r.resource},
                       {"state", r.state},
                       {"listed", r.listed},
                       {"resourceVersion", r.resourceVersion},
                       {"lastEvent", timeJson(r.lastEvent)},
                       {"events", r.events},
                       {"bookmarks", r.bookmarks},
                       {"reconnects", r.reconnects},
                       {"relists", r.relists},
                       {"lastError", r.lastError.empty() ? json(nullptr) : json(r.lastError)},
                       {"lastErrorTime", timeJson(r.lastErrorTime)}});
  json node = nullptr;
  if (s.node)
    node = {{"name", s.node->name},
            {"zone", s.node->zone},
            {"internalIPs", s.node->internalIPs},
            {"externalIPs", s.node->externalIPs}};
  return {{"server", s.server},
          {"config", s.config},
          {"synced", s.synced},
          {"objects", s.objects},
          {"ignored", s.ignored},
          {"refused", s.refused},
          {"pushes", s.pushes},
          {"pushFailures", s.pushFailures},
          {"lastPushError", s.lastPushError},
          {"lastPush", timeJson(s.lastPush)},
          {"node", node},
          {"watches", watches}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The request's "op" ("" when missing or not a string).
std::string opOf(const json& req) {
  if (!req.is_object()) return "";
  auto it = req.find("op");
  return it != req.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::string ApiHandler::handleLine(const json& req) {
  const std::string op = opOf(req);
  if (op == "apply" || op == "delete" || op == "patch") {
    auto r = svcctl_.handle(req);
    return r ? changeReplyText(*r) : dump(fail(r.error().message));
  }
  return dump(query(req));
}

namespace {
// "cluster.local." as users write it: "cluster.local".
std::string zoneName(std::string d) {
  if (!d.empty() && d.back() == '.') d.pop_back();
  return d;
}
}  // namespace

json ApiHandler::query(const json& req) {
  const std::string op = opOf(req);
  // The source's own locks, not the daemon's: taken before it.
  std::optional<K8sSourceStatus> k8s;
  if (op == "status" && v_.k8s) k8s = v_.k8s->status();
  // The LRU maps' walk, outside the daemon's lock (a sync may run meanwhile).
  LruCounts lru;
  if (op == "status" || op == "stats") lru = countLruMaps(v_.dp);
  std::lock_guard lk(v_.mu);
  try {
    if (op == "get") return get(req);
    if (op == "trace") {
      auto q = parseTraceQuery(req);
      if (!q) return fail(q.error().message);
      return traceJson(v_.dp, v_.syncer, *q);
    }
    if (op == "stats") {
      CounterSnapshot snap = collectCounters(v_.dp, v_.syncer, lru);
      if (v_.dns) snap.dns = v_.dns->counters();
      return statsJson(snap);
    }
    if (op == "status") {
      json s = status(lru);
      s["source"] = k8s ? "kubernetes" : "svcctl";
      if (k8s) s["kubernetes"] = kubernetesJson(*k8s);
      if (v_.dns && v_.zone) {
        const dns::ServerCounters c = v_.dns->counters();
        s["dns"] = {{"listen", v_.dns->config().listen},
                    {"upstreams", v_.dns->config().upstreams},
                    {"domain", zoneName(v_.zone->config().domain)},
                    {"ttl", v_.zone->config().ttl},
                    {"services", v_.zone->services()},
                    {"queries", c.queries}};
      }
      return s;
    }
  } catch (const std::exception& e) {
    return fail(fmt::format("error: malformed request: {}", e.what()));
  }
  return fail(fmt::format("error: unknown request \"{}\"", op));
}

json ApiHandler::get(const json& req) {
  const Store& store = v_.state.store();
  const std::string kind = req.value("kind", "Service");
  const std::string ns = req.value("namespace", "default");
  const bool all = req.value("allNamespaces", false);
  const std::string name = req.value("name", "");
  json items = json::array();
  auto match = [&](const std::pair<std::string, std::string>& key) {
    return (all || key.first == ns) && (name.empty() || key.second == name);
  };
  if (kind == "Service") {
    auto fronts = store.frontends();
    for (const auto& [key, svc] : store.services()) {
      if (!match(key)) continue;
      json item = toJson(Object{svc});
      json ports = json::array();
      for (const auto& p : svc.ports) {
        json eps = json::array();
        for (const auto& f : fronts) {
          if (f.ns != key.first || f.name != key.second || f.portName != p.name) continue;
          for (const auto& b : f.backends)
            if (b.state == EndpointState::Ready) eps.push_back(joinHostPort(b.address(), b.port));
        }
        ports.push_back({{"name", p.name}, {"endpoints", eps}});
      }
      item["svclb"] = {{"ports", ports}};
      items.push_back(item);
    }
  } else if (kind == "Endpoints") {
    for (const auto& [key, ep] : store.endpoints())
      if (match(key)) items.push_back(toJson(Object{ep}));
  } else if (kind == "EndpointSlice") {
    for (const auto& [key, sl] : store.slices())
      if (match(key)) items.push_back(toJson(Object{sl}));
  } else if (kind == "IPAddressPool") {
    for (const auto& [key, p] : store.pools())
      if (match(key)) items.push_back(toJson(Object{p}));
  } else if (kind == "L2Advertisement") {
    for (const auto& [key, l2] : store.l2Advertisements())
      if (match(key)) items.push_back(toJson(Object{l2}));
  } else {
    return fail(fmt::format("error: the server doesn't have a resource type \"{}\"", kind));
  }
  if (!name.empty() && items.empty())
    return fail(fmt::format("Error from server (NotFound): {} \"{}\" not found",
                            resourcePlural(kind), name));
  return {{"ok", true}, {"items", items}};
}

json ApiHandler::status(const LruCounts& lru) {
  const Dataplane& dp = v_.dp;
  json ifaces = json::array();
  for (const auto& t : dp.tcAttachments())
    ifaces.push_back({{"name", t.ifname},
                      {"ifindex", t.ifindex},
                      {"attach", "tc-ingress"},
                      {"progId", t.progId},
                      {"egressProgId", t.egressProgId},
                      {"tcAttach", t.attach},
                      {"linkId", t.linkId},
                      {"egressLinkId", t.egressLinkId}});
  json external = json::array();
  for (const auto& e : dp.externalAttachments())
    external.push_back(
        {{"ifname", e.ifname},
         {"ifindex", e.ifindex},
         {"datapath", externalDatapathName(e.datapath)},
         {"datapathReason", e.why},
         {"xdpMode", e.datapath == ExternalDatapath::Xdp ? xdpModeName(e.xdpMode) : "none"},
         {"xdpProgId", e.xdpProgId},
         {"tcProgId", e.tcProgId},
         {"tcAttach", e.tcAttach},
         {"tcLinkId", e.tcLinkId},
         {"xdpDispatcher", e.xdpDispatcher}});
  json progs = json::array();
  for (const auto& p : dp.programs())
    progs.push_back({{"name", p.name}, {"id", p.id}, {"type", p.type}});
  json links = json::array();
  for (const auto& l : dp.cgroupLinks())
    links.push_back({{"attachType", l.attachType}, {"linkId", l.linkId}, {"progId", l.progId}});
  const auto& cfg = dp.config();
  const auto& ss = v_.syncer.stats();
  const auto ff = dp.flowFilter().stats();
  // Endpoints held for their TCP connections (BE_STATE_REMOVED), and the
  // deleted Services' frontends among their owners.
  size_t held = 0;
  json deleted = json::array();
  for (const auto& [key, fe] : v_.syncer.actual().frontends) {
    const size_t n = heldBackendsOf(fe);
    held += n;
    if (fe.retired)
      deleted.push_back({{"namespace", fe.ns},
                         {"name", fe.name},
                         {"port", fe.portName},
                         {"frontend", joinHostPort(key.address(), key.port)},
                         {"protocol", key.proto == IPPROTO_TCP ? "TCP" : "UDP"},
                         {"heldEndpoints", n}});
  }
  return {{"ok", true},
          {"version", SVCLB_VERSION},
          {"pid", getpid()},
          {"bpffs", cfg.bpffs},
          {"stateDir", v_.stateDir},
          {"cgroup", cfg.cgroup},
          {"netnsCookie", cfg.netnsCookie},
          {"socketLb", socketLbName(cfg.socketLb)},
          {"tcAttach",
           {{"requested", tcAttachName(cfg.tcAttach)},
            {"mode", tcAttachName(dp.tcAttachMode())},
            {"reason", dp.tcAttachReason()}}},
          {"interfaces", ifaces},
          {"externalInterfaces", external},
          {"programs", progs},
          {"cgroupLinks", links},
          {"maps", mapsJson(collectMapUsage(dp, v_.syncer, lru))},
          {"sync",
           {{"count", ss.count},
            {"lastDurationUs", static_cast<uint64_t>(ss.lastSeconds * 1e6)},
            {"lastEndUnixNs", ss.lastEndUnixNs},
            {"lastError", ss.lastError}}},
          {"draining", {{"heldEndpoints", held}, {"deletedServices", deleted}}},
          {"invalidStored", v_.state.invalidStored()},
          {"flowFilter",
           {{"valid", ff.valid},
            {"fill", ff.fill},
            {"rebuilds", ff.rebuilds},
            {"lastEntries", ff.lastEntries},
            {"lastDurationUs", ff.lastDurationNs / 1000},
            {"lastEndUnixNs", ff.lastEndUnixNs},
            {"off", ff.off}}}};
}

}  // namespace svclb
