// `svcctl status`: what svclbd has loaded, attached and pinned.
#include <fmt/format.h>

#include <algorithm>
#include <ostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/table.h"

namespace svclb::cli {
namespace {

// An empty string is as good as missing ("cgroup": "" when socket balancing is off).
std::string field(const Json& j, const std::string& def) {
  std::string v = str(j);
  return v.empty() ? def : v;
}

std::string micros(const Json& us) {
  if (!us.is_number()) return "-";
  long long v = num(us);
  if (v < 1000) return fmt::format("{}us", v);
  if (v < 1000000) return fmt::format("{:.1f}ms", static_cast<double>(v) / 1000.0);
  return fmt::format("{:.2f}s", static_cast<double>(v) / 1e6);
}

void section(std::string& out, const std::string& title, const Json& rows,
             const std::vector<std::string>& header,
             const std::vector<std::vector<const char*>>& keys) {
  if (!rows.is_array() || rows.empty()) {
    out += title + ": <none>\n";
    return;
  }
  out += title + ":\n";
  Table t(header);
  for (const auto& r : rows) {
    std::vector<std::string> row;
    for (const auto& alternatives : keys) {
      std::string cell = "-";
      for (const char* k : alternatives) {
        const Json& v = at(r, {k});
        if (!v.is_null()) {
          cell = str(v, "-");
          break;
        }
      }
      row.push_back(cell);
    }
    t.addRow(std::move(row));
  }
  out += t.render("  ");
}

}  // namespace

std::string renderStatus(const Json& s) {
  std::string kv;
  kv += "Version:\t" + field(at(s, {"version"}), "<unknown>") + "\n";
  kv += "PID:\t" + field(at(s, {"pid"}), "<unknown>") + "\n";
  kv += "BPF FS:\t" + field(at(s, {"bpffs"}), "<none>") + "\n";
  kv += "State Dir:\t" + field(at(s, {"stateDir"}), "<none>") + "\n";
  kv += "Cgroup:\t" + field(at(s, {"cgroup"}), "<none>") + "\n";
  if (!at(s, {"socketLb"}).is_null()) kv += "Socket LB:\t" + field(at(s, {"socketLb"}), "") + "\n";
  if (!at(s, {"netnsCookie"}).is_null())
    kv += "Netns Cookie:\t" + str(at(s, {"netnsCookie"})) + "\n";
  const Json& sync = at(s, {"sync"});
  long long syncs = num(at(sync, {"count"}));
  if (syncs == 0) {
    kv += "Last Sync:\t<never>\n";
  } else {
    std::string err = str(at(sync, {"lastError"}));
    kv += fmt::format("Last Sync:\t{} (took {}, sync #{})\n", err.empty() ? "ok" : "failed",
                      micros(at(sync, {"lastDurationUs"})), syncs);
    if (!err.empty()) kv += "Last Sync Error:\t" + err + "\n";
  }
  // Endpoints held for their TCP connections (absent from older daemons).
  const Json& dr = at(s, {"draining"});
  if (!dr.is_null()) {
    const Json& del = at(dr, {"deletedServices"});
    std::vector<std::string> names;
    if (del.is_array())
      for (const auto& d : del)
        // A restarted daemon knows a deleted Service only by its frontend.
        names.push_back(
            str(at(d, {"name"})).empty()
                ? fmt::format("{}/{}", str(at(d, {"frontend"})), str(at(d, {"protocol"})))
                : fmt::format("{}/{}", str(at(d, {"namespace"})), str(at(d, {"name"}))));
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    kv += fmt::format("Draining:\t{} removed endpoint(s) held for their TCP connections{}\n",
                      str(at(dr, {"heldEndpoints"}), "0"),
                      names.empty() ? "" : " (deleted: " + join(names, ", ") + ")");
  }
  // Stored objects today's validation refuses (kept and programmed as far
  // as they go): each on a line of its own.
  if (const Json& inv = at(s, {"invalidStored"}); inv.is_array() && !inv.empty()) {
    kv +=
        fmt::format("Invalid Stored:\t{} object(s) (svcctl apply a fixed manifest, or delete it)\n",
                    inv.size());
    for (const auto& i : inv) kv += "\t" + str(i) + "\n";
  }
  // --source=kubernetes: the API connection (absent from standalone daemons).
  const Json& k = at(s, {"kubernetes"});
  if (!k.is_null()) {
    kv += "Source:\tkubernetes " + field(at(k, {"server"}), "<unknown>") + " (" +
          field(at(k, {"config"}), "?") + ")\n";
    const bool synced = at(k, {"synced"}).is_boolean() && at(k, {"synced"}).get<bool>();
    kv += fmt::format(
        "API Synced:\t{}\n",
        synced ? fmt::format("yes ({} objects, {} ignored, {} refused)",
                             str(at(k, {"objects"}), "0"), str(at(k, {"ignored"}), "0"),
                             at(k, {"refused"}).is_array() ? at(k, {"refused"}).size() : 0)
               : std::string("no (the maps keep their last state until every kind is listed)"));
    kv += "Last API Push:\t" + field(at(k, {"lastPush"}), "<never>") + "\n";
    if (std::string e = str(at(k, {"lastPushError"})); !e.empty())
      kv += "Last Push Error:\t" + e + "\n";
    const Json& node = at(k, {"node"});
    if (!node.is_null())
      kv += fmt::format("Node:\t{} (zone {})\n", field(at(node, {"name"}), "?"),
                        field(at(node, {"zone"}), "<none>"));
  } else if (!at(s, {"source"}).is_null()) {
    kv += "Source:\t" + field(at(s, {"source"}), "svcctl") + "\n";
  }
  // --cluster-dns (absent when off).
  const Json& d = at(s, {"dns"});
  if (!d.is_null()) {
    kv += fmt::format("Cluster DNS:\t{} for {} (ttl {}s, {} services named, {} queries)\n",
                      join(strings(at(d, {"listen"})), ", "), field(at(d, {"domain"}), "?"),
                      str(at(d, {"ttl"}), "?"), str(at(d, {"services"}), "0"),
                      str(at(d, {"queries"}), "0"));
    const auto ups = strings(at(d, {"upstreams"}));
    kv += "DNS Upstreams:\t" + (ups.empty() ? std::string("<none>") : join(ups, ", ")) + "\n";
  }
  std::string out = tabwrite(kv, 0, 2);
  if (!k.is_null()) {
    section(out, "API Watches", at(k, {"watches"}),
            {"RESOURCE", "STATE", "RESOURCE-VERSION", "LAST-EVENT", "EVENTS", "RECONNECTS",
             "RELISTS", "LAST-ERROR"},
            {{"resource"},
             {"state"},
             {"resourceVersion"},
             {"lastEvent"},
             {"events"},
             {"reconnects"},
             {"relists"},
             {"lastError"}});
    const Json& refused = at(k, {"refused"});
    if (refused.is_array() && !refused.empty()) {
      out += "Refused Objects:\n";
      for (const auto& r : refused) out += "  " + str(r) + "\n";
    }
  }
  section(out, "Interfaces", at(s, {"interfaces"}),
          {"NAME", "IFINDEX", "ATTACH", "PROG-ID", "EGRESS-PROG-ID"},
          {{"name"}, {"ifindex"}, {"attach"}, {"progId"}, {"egressProgId"}});
  // Absent from daemons without --external-iface support: no section then.
  if (!at(s, {"externalInterfaces"}).is_null())
    section(out, "External Interfaces", at(s, {"externalInterfaces"}),
            {"NAME", "IFINDEX", "DATAPATH", "XDP-MODE", "XDP-PROG-ID", "TC-PROG-ID",
             "XDP-DISPATCHER", "WHY"},
            {{"ifname"},
             {"ifindex"},
             {"datapath"},
             {"xdpMode"},
             {"xdpProgId"},
             {"tcProgId"},
             {"xdpDispatcher"},
             {"datapathReason"}});
  section(out, "Programs", at(s, {"programs"}), {"ID", "NAME", "TYPE"},
          {{"id"}, {"name"}, {"type"}});
  section(out, "Cgroup Links", at(s, {"cgroupLinks"}), {"ATTACH-TYPE", "LINK-ID", "PROG-ID"},
          {{"attachType"}, {"linkId"}, {"progId"}});
  section(out, "Maps", at(s, {"maps"}), {"NAME", "TYPE", "ENTRIES", "MAX-ENTRIES"},
          {{"name"}, {"type"}, {"entries"}, {"maxEntries"}});
  return out;
}

int runStatus(Context& ctx, const std::string& output) {
  return runReport(ctx, output, {{"op", "status"}}, renderStatus);
}

}  // namespace svclb::cli
