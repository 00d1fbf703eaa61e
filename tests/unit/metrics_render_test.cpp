// The /metrics text and the `stats` answer come from one typed snapshot
// (loader/metrics.h). svclbd used to render /metrics by walking the stats
// and status JSON; that renderer is kept here, verbatim, as the reference:
// for the same counters the typed renderer must write the same bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <sstream>

#include "loader/metrics.h"

namespace svclb {
namespace {

using nlohmann::json;

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

// Daemon::metrics() before the typed snapshot (commit 3486a63), with the
// stats and status answers as inputs.
std::string referenceRender(const json& stats, const json& st, const SyncCounters& ss,
                            const DrainCounters& dc) {
  std::ostringstream o;
  auto family = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  struct Counter {
    const char* metric;
    const char* field;
    const char* help;
  };
  const Counter svcCounters[] = {
      {"svclb_service_packets_total", "packets",
       "Client-to-service packets translated on the packet path."},
      {"svclb_service_bytes_total", "bytes",
       "Client-to-service bytes (IP total length) translated on the packet path."},
      {"svclb_service_reply_packets_total", "replyPackets",
       "Backend-to-client reply packets reverse-translated."},
      {"svclb_service_reply_bytes_total", "replyBytes",
       "Backend-to-client reply bytes reverse-translated."},
      {"svclb_service_flows_total", "flows",
       "New connections balanced (packet path and node sockets)."},
      {"svclb_service_rejects_total", "rejects",
       "New connections refused for lack of a usable endpoint."},
  };
  for (const auto& c : svcCounters) {
    family(c.metric, "counter", c.help);
    for (const auto& s : stats["services"])
      o << c.metric << "{namespace=\"" << esc(s["namespace"]) << "\",service=\"" << esc(s["name"])
        << "\",port=\"" << esc(s["port"]) << "\",protocol=\"" << s["protocol"].get<std::string>()
        << "\",vip=\"" << s["vip"].get<std::string>() << ':' << s["servicePort"].get<int>()
        << "\"} " << s[c.field].get<uint64_t>() << '\n';
  }
  for (const auto& c : svcCounters) {
    if (std::string_view(c.field) == "rejects") continue;
    std::string metric = std::string("svclb_backend_") + (c.metric + strlen("svclb_service_"));
    family(metric.c_str(), "counter", c.help);
    for (const auto& s : stats["services"])
      for (const auto& b : s["backends"])
        o << metric << "{namespace=\"" << esc(s["namespace"]) << "\",service=\"" << esc(s["name"])
          << "\",port=\"" << esc(s["port"]) << "\",protocol=\"" << s["protocol"].get<std::string>()
          << "\",vip=\"" << s["vip"].get<std::string>() << ':' << s["servicePort"].get<int>()
          << "\",backend=\"" << b["ip"].get<std::string>() << ':' << b["port"].get<int>() << "\"} "
          << b[c.field].get<uint64_t>() << '\n';
  }
  family("svclb_drops_total", "counter", "Packets dropped, by reason.");
  for (const auto& d : stats["drops"])
    o << "svclb_drops_total{reason=\"" << d["reason"].get<std::string>() << "\"} "
      << d["packets"].get<uint64_t>() << '\n';
  family("svclb_drop_bytes_total", "counter", "Bytes dropped, by reason.");
  for (const auto& d : stats["drops"])
    o << "svclb_drop_bytes_total{reason=\"" << d["reason"].get<std::string>() << "\"} "
      << d["bytes"].get<uint64_t>() << '\n';
  family(
      "svclb_conntrack_events_total", "counter",
      "Conntrack events: relinked = a flow's evicted entry rebuilt from its other one; "
      "orphaned = an entry dropped because its other entry's key belonged to another flow; "
      "icmp_error = an ICMP error quoting a flow's packet, translated back; "
      "fragment_without_first = a later IP fragment whose first was not seen, passed untouched.");
  for (const auto& [name, n] : stats["conntrackEvents"].items())
    o << "svclb_conntrack_events_total{event=\"" << name << "\"} " << n.get<uint64_t>() << '\n';
  family("svclb_map_entries", "gauge", "Entries in use per BPF map.");
  for (const auto& m : st["maps"])
    o << "svclb_map_entries{map=\"" << m["name"].get<std::string>() << "\"} "
      << m["entries"].get<uint64_t>() << '\n';
  family("svclb_map_max_entries", "gauge", "Capacity per BPF map.");
  for (const auto& m : st["maps"])
    o << "svclb_map_max_entries{map=\"" << m["name"].get<std::string>() << "\"} "
      << m["maxEntries"].get<uint64_t>() << '\n';
  family("svclb_syncs_total", "counter", "Reconciliations of desired state into the maps.");
  o << "svclb_syncs_total " << ss.count << '\n';
  family("svclb_sync_errors_total", "counter", "Reconciliations that failed.");
  o << "svclb_sync_errors_total " << ss.errors << '\n';
  family("svclb_sync_map_writes_total", "counter", "Map writes made by reconciliations.");
  o << "svclb_sync_map_writes_total " << ss.opsApplied << '\n';
  family("svclb_sync_duration_seconds_total", "counter",
         "Time spent writing maps in reconciliations.");
  o << "svclb_sync_duration_seconds_total " << ss.totalSeconds << '\n';
  family("svclb_sync_last_duration_seconds", "gauge", "Duration of the last reconciliation.");
  o << "svclb_sync_last_duration_seconds " << ss.lastSeconds << '\n';
  // Added after the typed snapshot, with status "draining".
  family("svclb_draining_endpoints", "gauge",
         "Endpoints gone from their TCP Service (or deleted with it) kept while their connections "
         "live.");
  o << "svclb_draining_endpoints " << dc.heldEndpoints << '\n';
  family("svclb_draining_deleted_frontends", "gauge",
         "Frontends of deleted TCP Services kept while their connections live.");
  o << "svclb_draining_deleted_frontends " << dc.deletedFrontends << '\n';
  return o.str();
}

CounterSnapshot sample(double total, double last) {
  CounterSnapshot s;
  FrontendCounters web;
  web.ns = "default";
  web.name = "web";
  web.portName = "http";
  web.key = {0x0a60000a, 80, 6};
  web.svcId = 3;
  web.traffic = {10, 600, 10, 900, 2, 1};
  web.backends = {
      {0x0a000102, 8080, 7, BE_STATE_ACTIVE, {5, 300, 5, 450, 1, 0}},
      {0x0a000103, 8080, 8, BE_STATE_TERMINATING, {18446744073709551615ull, 0, 0, 0, 0, 0}},
      {0x0a000104, 8080, 9, BE_STATE_NOT_READY, {}}};
  FrontendCounters odd;  // label values that need escaping
  odd.ns = "n\"s";
  odd.name = "a\\b";
  odd.portName = "line\nbreak";
  odd.key = {0xc0a80a05, 53, 17};
  odd.svcId = 9;
  odd.maglev = true;
  s.frontends = {web, odd};
  s.drops = {{"no_backend", 4, 240}, {"source_range", 0, 0}};
  s.ctEvents = {{"relinked", 7}, {"orphaned", 1}};
  s.maps = {{"svc_v1", "hash", 65536, 12}, {"ct_v2", "lru_hash", 262144, 262144}};
  s.sync = {42, 1, 123456, last, total, "boom"};
  s.draining = {3, 1};
  return s;
}

TEST(MetricsRender, SameBytesAsTheJsonWalkingRenderer) {
  for (auto [total, last] : std::vector<std::pair<double, double>>{
           {0, 0}, {0.000123, 1.5e-7}, {12345.678901, 0.25}, {3e9, 1234567.0}}) {
    const CounterSnapshot s = sample(total, last);
    const json stats = statsJson(s);
    const json st = {{"maps", mapsJson(s.maps)}};
    EXPECT_EQ(renderPrometheus(s), referenceRender(stats, st, s.sync, s.draining))
        << total << " " << last;
  }
  CounterSnapshot empty;
  EXPECT_EQ(renderPrometheus(empty), referenceRender(statsJson(empty), {{"maps", json::array()}},
                                                     empty.sync, empty.draining));
}

TEST(MetricsRender, StatsJsonShape) {
  const json j = statsJson(sample(0, 0));
  EXPECT_EQ(
      j.dump(),
      R"({"conntrackEvents":{"orphaned":1,"relinked":7},"drops":[{"bytes":240,"packets":4,"reason":"no_backend"},{"bytes":0,"packets":0,"reason":"source_range"}],"ok":true,"services":[{"algorithm":"random","backends":[{"backendId":7,"bytes":300,"flows":1,"ip":"10.0.1.2","packets":5,"port":8080,"rejects":0,"replyBytes":450,"replyPackets":5,"state":"active"},{"backendId":8,"bytes":0,"flows":0,"ip":"10.0.1.3","packets":18446744073709551615,"port":8080,"rejects":0,"replyBytes":0,"replyPackets":0,"state":"terminating"},{"backendId":9,"bytes":0,"flows":0,"ip":"10.0.1.4","packets":0,"port":8080,"rejects":0,"replyBytes":0,"replyPackets":0,"state":"not-ready"}],"bytes":600,"flows":2,"name":"web","namespace":"default","packets":10,"port":"http","protocol":"TCP","rejects":1,"replyBytes":900,"replyPackets":10,"servicePort":80,"svcId":3,"vip":"10.96.0.10"},{"algorithm":"maglev","backends":[],"bytes":0,"flows":0,"name":"a\\b","namespace":"n\"s","packets":0,"port":"line\nbreak","protocol":"UDP","rejects":0,"replyBytes":0,"replyPackets":0,"servicePort":53,"svcId":9,"vip":"192.168.10.5"}]})");
}

// --cluster-dns: the server's totals, in the stats answer and /metrics;
// absent when the server is off (the other tests: no "dns" key, no family).
TEST(MetricsRender, DnsCounters) {
  CounterSnapshot s;
  dns::ServerCounters d;
  d.queries = 10, d.udp = 8, d.tcp = 2, d.noerror = 4, d.nodata = 1, d.nxdomain = 3, d.servfail = 1,
  d.refused = 1, d.forwarded = 5, d.cacheHits = 2, d.truncated = 1;
  s.dns = d;
  const json j = statsJson(s);
  EXPECT_EQ(
      j["dns"].dump(),
      R"({"cacheHits":2,"coalesced":0,"forwarded":5,"queries":10,"results":{"FORMERR":0,"NODATA":1,)"
      R"("NOERROR":4,"NOTIMP":0,"NXDOMAIN":3,"REFUSED":1,"SERVFAIL":1},"tcp":2,)"
      R"("truncated":1,"udp":8})");
  const std::string m = renderPrometheus(s);
  for (const char* line :
       {"svclb_dns_queries_total{transport=\"udp\"} 8\n",
        "svclb_dns_queries_total{transport=\"tcp\"} 2\n",
        "svclb_dns_responses_total{result=\"NXDOMAIN\"} 3\n",
        "svclb_dns_responses_total{result=\"NODATA\"} 1\n",
        "# TYPE svclb_dns_responses_total counter\n", "svclb_dns_forwarded_total 5\n",
        "svclb_dns_cache_hits_total 2\n", "svclb_dns_truncated_total 1\n"})
    EXPECT_NE(m.find(line), std::string::npos) << line;
  EXPECT_FALSE(statsJson(CounterSnapshot{}).contains("dns"));
  EXPECT_EQ(renderPrometheus(CounterSnapshot{}).find("svclb_dns_"), std::string::npos);
}

}  // namespace
}  // namespace svclb
