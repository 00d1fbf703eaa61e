// `svcctl stats`: per service port and per backend counters, then drops.
#include <fmt/format.h>

#include <ostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/table.h"

namespace svclb::cli {
namespace {

std::string count(const Json& j) { return str(j, "0"); }

void addCounters(std::vector<std::string>& row, const Json& c) {
  for (const char* k : {"flows", "packets", "bytes", "replyPackets", "replyBytes"})
    row.push_back(count(at(c, {k})));
}

}  // namespace

std::string renderStats(const Json& stats) {
  std::string out;
  const Json& services = at(stats, {"services"});
  if (!services.is_array() || services.empty()) {
    out += "No service ports programmed.\n";
  } else {
    Table t({"SERVICE", "PORT", "VIP:PORT", "PROTO", "FLOWS", "PACKETS", "BYTES", "REPLY-PACKETS",
             "REPLY-BYTES"});
    for (const auto& s : services) {
      std::vector<std::string> row{
          str(at(s, {"namespace"})) + "/" + str(at(s, {"name"})),
          str(at(s, {"port"}), "<unset>"),
          joinHostPort(str(at(s, {"vip"})), str(at(s, {"servicePort"}))),
          str(at(s, {"protocol"}), "TCP"),
      };
      if (row[1].empty()) row[1] = "<unset>";
      addCounters(row, s);
      t.addRow(std::move(row));
      const Json& backends = at(s, {"backends"});
      if (!backends.is_array() || backends.empty()) {
        // Same cell count as other rows: a short row would end the tabwriter
        // column block and misalign the table.
        t.addRow({"  -> <no backends>", "", "", "", "", "", "", "", ""});
        continue;
      }
      for (const auto& b : backends) {
        std::vector<std::string> brow{
            fmt::format("  -> {} ({})", joinHostPort(str(at(b, {"ip"})), str(at(b, {"port"}))),
                        str(at(b, {"state"}), "unknown")),
            "", "", ""};
        addCounters(brow, b);
        t.addRow(std::move(brow));
      }
    }
    out += t.render();
  }
  const Json& drops = at(stats, {"drops"});
  if (drops.is_array() && !drops.empty()) {
    Table d({"DROP REASON", "PACKETS", "BYTES"});
    for (const auto& x : drops)
      d.addRow({str(at(x, {"reason"})), count(at(x, {"packets"})), count(at(x, {"bytes"}))});
    out += "\n" + d.render();
  }
  const Json& ev = at(stats, {"conntrackEvents"});
  if (ev.is_object() && !ev.empty()) {
    Table e({"CONNTRACK EVENT", "COUNT"});
    for (const auto& [name, n] : ev.items()) e.addRow({name, count(n)});
    out += "\n" + e.render();
  }
  // svclbd's cluster DNS server (absent with --cluster-dns none).
  const Json& dns = at(stats, {"dns"});
  if (dns.is_object()) {
    Table r({"DNS RESULT", "COUNT"});
    for (const char* k :
         {"NOERROR", "NODATA", "NXDOMAIN", "SERVFAIL", "REFUSED", "FORMERR", "NOTIMP"})
      r.addRow({k, count(at(dns, {"results", k}))});
    out += "\n" + r.render();
    out += fmt::format(
        "DNS queries: {} (udp {}, tcp {}); forwarded {}, cache hits {}, coalesced {}, "
        "truncated {}\n",
        count(at(dns, {"queries"})), count(at(dns, {"udp"})), count(at(dns, {"tcp"})),
        count(at(dns, {"forwarded"})), count(at(dns, {"cacheHits"})), count(at(dns, {"coalesced"})),
        count(at(dns, {"truncated"})));
  }
  return out;
}

int runStats(Context& ctx, const std::string& output) {
  return runReport(ctx, output, {{"op", "stats"}}, renderStats);
}

}  // namespace svclb::cli
