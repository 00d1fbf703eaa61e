#include "loader/metrics.h"

#include <fmt/format.h>

#include <iterator>

namespace svclb {

using nlohmann::json;

namespace {

json trafficJson(const TrafficCounters& t, json j) {
  j["packets"] = t.packets;
  j["bytes"] = t.bytes;
  j["replyPackets"] = t.reply_packets;
  j["replyBytes"] = t.reply_bytes;
  j["flows"] = t.flows;
  j["rejects"] = t.rejects;
  return j;
}

// Prometheus label value escaping: backslash, double quote, newline.
void appendLabel(std::string& o, std::string_view s) {
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
}

struct Family {
  const char* suffix;  // after svclb_service_ / svclb_backend_
  __u64 TrafficCounters::*field;
  const char* help;
  bool perBackend;  // rejects are a Service-level event
};

constexpr Family kTraffic[] = {
    {"packets_total", &TrafficCounters::packets,
     "Client-to-service packets translated on the packet path.", true},
    {"bytes_total", &TrafficCounters::bytes,
     "Client-to-service bytes (IP total length) translated on the packet path.", true},
    {"reply_packets_total", &TrafficCounters::reply_packets,
     "Backend-to-client reply packets reverse-translated.", true},
    {"reply_bytes_total", &TrafficCounters::reply_bytes,
     "Backend-to-client reply bytes reverse-translated.", true},
    {"flows_total", &TrafficCounters::flows,
     "New connections balanced (packet path and node sockets).", true},
    {"rejects_total", &TrafficCounters::rejects,
     "New connections refused for lack of a usable endpoint.", false},
};

// The answers by result, in a fixed order (json objects sort keys).
json dnsResults(const dns::ServerCounters& d) {
  return {{"NOERROR", d.noerror},   {"NODATA", d.nodata},   {"NXDOMAIN", d.nxdomain},
          {"SERVFAIL", d.servfail}, {"REFUSED", d.refused}, {"FORMERR", d.formerr},
          {"NOTIMP", d.notimp}};
}

}  // namespace

const char* backendStateName(uint8_t state) {
  switch (state) {
    case BE_STATE_ACTIVE:
      return "active";
    case BE_STATE_TERMINATING:
      return "terminating";
    case BE_STATE_NOT_READY:
      return "not-ready";
    case BE_STATE_REMOVED:
      return "removed";
    default:
      return "empty";
  }
}

json statsJson(const CounterSnapshot& s) {
  json services = json::array();
  for (const auto& f : s.frontends) {
    json bes = json::array();
    for (const auto& b : f.backends)
      bes.push_back(trafficJson(b.traffic, {{"ip", b.address()},
                                            {"port", b.port},
                                            {"backendId", b.id},
                                            {"state", backendStateName(b.state)}}));
    services.push_back(trafficJson(f.traffic, {{"namespace", f.ns},
                                               {"name", f.name},
                                               {"port", f.portName},
                                               {"vip", f.key.address()},
                                               {"servicePort", f.key.port},
                                               {"protocol", protoName(f.key.proto)},
                                               {"svcId", f.svcId},
                                               {"algorithm", f.maglev ? "maglev" : "random"},
                                               {"backends", std::move(bes)}}));
  }
  json drops = json::array();
  for (const auto& d : s.drops)
    drops.push_back({{"reason", d.reason}, {"packets", d.packets}, {"bytes", d.bytes}});
  json ctEvents = json::object();
  for (const auto& [name, n] : s.ctEvents) ctEvents[name] = n;
  json out = {
      {"ok", true}, {"services", services}, {"drops", drops}, {"conntrackEvents", ctEvents}};
  if (s.dns) {
    const dns::ServerCounters& d = *s.dns;
    out["dns"] = {{"queries", d.queries},
                  {"udp", d.udp},
                  {"tcp", d.tcp},
                  {"forwarded", d.forwarded},
                  {"cacheHits", d.cacheHits},
                  {"truncated", d.truncated},
                  {"coalesced", d.coalesced},
                  {"results", dnsResults(d)}};
  }
  return out;
}

json mapsJson(const std::vector<MapUsage>& maps) {
  json out = json::array();
  for (const auto& m : maps)
    out.push_back(
        {{"name", m.name}, {"type", m.type}, {"maxEntries", m.maxEntries}, {"entries", m.entries}});
  return out;
}

std::string renderPrometheus(const CounterSnapshot& s) {
  std::string o;
  auto out = std::back_inserter(o);
  auto family = [&](std::string_view name, const char* type, const char* help) {
    fmt::format_to(out, "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  // {namespace=..,service=..,port=..,protocol=..,vip="VIP:PORT"
  auto frontendLabels = [&](const FrontendCounters& f) {
    o += "{namespace=\"";
    appendLabel(o, f.ns);
    o += "\",service=\"";
    appendLabel(o, f.name);
    o += "\",port=\"";
    appendLabel(o, f.portName);
    fmt::format_to(out, "\",protocol=\"{}\",vip=\"{}\"", protoName(f.key.proto),
                   joinHostPort(f.key.address(), f.key.port));
  };
  for (const auto& fam : kTraffic) {
    const std::string metric = fmt::format("svclb_service_{}", fam.suffix);
    family(metric, "counter", fam.help);
    for (const auto& f : s.frontends) {
      o += metric;
      frontendLabels(f);
      fmt::format_to(out, "}} {}\n", f.traffic.*fam.field);
    }
  }
  for (const auto& fam : kTraffic) {
    if (!fam.perBackend) continue;
    const std::string metric = fmt::format("svclb_backend_{}", fam.suffix);
    family(metric, "counter", fam.help);
    // `vip` names the frontend: a Service port's NodePort, LoadBalancer and
    // externalIP frontends share its name and backends, not its counters.
    for (const auto& f : s.frontends)
      for (const auto& b : f.backends) {
        o += metric;
        frontendLabels(f);
        fmt::format_to(out, ",backend=\"{}\"}} {}\n", joinHostPort(b.address(), b.port),
                       b.traffic.*fam.field);
      }
  }
  family("svclb_drops_total", "counter", "Packets dropped, by reason.");
  for (const auto& d : s.drops)
    fmt::format_to(out, "svclb_drops_total{{reason=\"{}\"}} {}\n", d.reason, d.packets);
  family("svclb_drop_bytes_total", "counter", "Bytes dropped, by reason.");
  for (const auto& d : s.drops)
    fmt::format_to(out, "svclb_drop_bytes_total{{reason=\"{}\"}} {}\n", d.reason, d.bytes);
  family(
      "svclb_conntrack_events_total", "counter",
      "Conntrack events: relinked = a flow's evicted entry rebuilt from its other one; "
      "orphaned = an entry dropped because its other entry's key belonged to another flow; "
      "icmp_error = an ICMP error quoting a flow's packet, translated back; "
      "fragment_without_first = a later IP fragment whose first was not seen, passed untouched.");
  for (const auto& [name, n] : s.ctEvents)
    fmt::format_to(out, "svclb_conntrack_events_total{{event=\"{}\"}} {}\n", name, n);
  family("svclb_map_entries", "gauge", "Entries in use per BPF map.");
  for (const auto& m : s.maps)
    fmt::format_to(out, "svclb_map_entries{{map=\"{}\"}} {}\n", m.name, m.entries);
  family("svclb_map_max_entries", "gauge", "Capacity per BPF map.");
  for (const auto& m : s.maps)
    fmt::format_to(out, "svclb_map_max_entries{{map=\"{}\"}} {}\n", m.name, m.maxEntries);
  // Seconds as C++ streams print a double (%g, 6 significant digits).
  family("svclb_syncs_total", "counter", "Reconciliations of desired state into the maps.");
  fmt::format_to(out, "svclb_syncs_total {}\n", s.sync.count);
  family("svclb_sync_errors_total", "counter", "Reconciliations that failed.");
  fmt::format_to(out, "svclb_sync_errors_total {}\n", s.sync.errors);
  family("svclb_sync_map_writes_total", "counter", "Map writes made by reconciliations.");
  fmt::format_to(out, "svclb_sync_map_writes_total {}\n", s.sync.opsApplied);
  family("svclb_sync_duration_seconds_total", "counter",
         "Time spent writing maps in reconciliations.");
  fmt::format_to(out, "svclb_sync_duration_seconds_total {:g}\n", s.sync.totalSeconds);
  family("svclb_sync_last_duration_seconds", "gauge", "Duration of the last reconciliation.");
  fmt::format_to(out, "svclb_sync_last_duration_seconds {:g}\n", s.sync.lastSeconds);
  family("svclb_draining_endpoints", "gauge",
         "Endpoints gone from their TCP Service (or deleted with it) kept while their connections "
         "live.");
  fmt::format_to(out, "svclb_draining_endpoints {}\n", s.draining.heldEndpoints);
  family("svclb_draining_deleted_frontends", "gauge",
         "Frontends of deleted TCP Services kept while their connections live.");
  fmt::format_to(out, "svclb_draining_deleted_frontends {}\n", s.draining.deletedFrontends);
  if (s.dns) {
    const dns::ServerCounters& d = *s.dns;
    family("svclb_dns_queries_total", "counter",
           "Cluster DNS queries received, by transport (udp, tcp).");
    fmt::format_to(out, "svclb_dns_queries_total{{transport=\"udp\"}} {}\n", d.udp);
    fmt::format_to(out, "svclb_dns_queries_total{{transport=\"tcp\"}} {}\n", d.tcp);
    family("svclb_dns_responses_total", "counter",
           "Cluster DNS answers sent, by result (NODATA = NOERROR without records).");
    const json results = dnsResults(d);
    for (const auto& [result, n] : results.items())
      fmt::format_to(out, "svclb_dns_responses_total{{result=\"{}\"}} {}\n", result,
                     n.get<uint64_t>());
    family("svclb_dns_forwarded_total", "counter",
           "Queries outside the cluster zone sent to the upstream servers.");
    fmt::format_to(out, "svclb_dns_forwarded_total {}\n", d.forwarded);
    family("svclb_dns_cache_hits_total", "counter",
           "Queries outside the cluster zone answered from the cache.");
    fmt::format_to(out, "svclb_dns_cache_hits_total {}\n", d.cacheHits);
    family("svclb_dns_truncated_total", "counter",
           "UDP answers sent truncated (TC bit: the client retries over TCP).");
    fmt::format_to(out, "svclb_dns_truncated_total {}\n", d.truncated);
    family("svclb_dns_coalesced_total", "counter",
           "Forwarded queries that joined the same question already asked upstream.");
    fmt::format_to(out, "svclb_dns_coalesced_total {}\n", d.coalesced);
  }
  return o;
}

}  // namespace svclb
