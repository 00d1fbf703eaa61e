// Pure formatting for svcctl: Kubernetes-shaped JSON (docs/api.md) in, the
// exact text kubectl would print out. No I/O here, so all of it is unit-tested.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace svclb::cli {

using Json = nlohmann::json;
using TimePoint = std::chrono::system_clock::time_point;

// ---- resource types (resource.cpp) ----
struct ResourceType {
  std::string kind;       // API kind sent to the daemon: "Service"
  std::string qualified;  // kubectl's name in messages: "service", "endpoints",
                          // "endpointslice.discovery.k8s.io"
};
// "svc", "services", "ep", "endpointslices.discovery.k8s.io", ... ; nullopt if unknown.
std::optional<ResourceType> resolveResource(const std::string& arg);
// Qualified name for a kind the daemon returns; lower-cased kind when unknown.
std::string qualifiedName(const std::string& kind);

// ---- get (get.cpp) ----
enum class OutputFormat { Table, Wide, Json, Yaml, Name };
std::optional<OutputFormat> parseOutputFormat(const std::string& s);

std::string servicePorts(const Json& svc);                  // 80/TCP,443:30443/TCP
std::string serviceClusterIp(const Json& svc);              // clusterIPs[0] | <none>
std::string serviceExternalIp(const Json& svc, bool wide);  // <none> | <pending> | ips
std::string formatSelector(const Json& selector);           // a=b,c=d | <none>
std::string formatEndpointsSubsets(const Json& endpoints);  // 10.0.0.1:80,... + N more...
std::string formatSlicePorts(const Json& slice);            // 8080,9090 | <unset>
std::string formatSliceEndpoints(const Json& slice);        // 10.0.0.1,10.0.0.2 | <unset>

struct TableOptions {
  bool wide = false;
  bool allNamespaces = false;
  bool withKind = false;    // NAME as TYPE/NAME (kubectl, when several kinds are shown)
  bool noHeaders = false;   // --no-headers
  bool showLabels = false;  // --show-labels: a LABELS column last
};
// `kubectl get` table for items of one kind.
std::string renderGetTable(const std::string& kind, const std::vector<Json>& items,
                           const TableOptions& opts, TimePoint now);

// ---- machine output (output.cpp) ----
// Copy of an item without svclb's internal helper key ("svclb").
Json stripInternal(const Json& item);
// kubectl's `-o json` list wrapper: {"apiVersion":"v1","items":[...],"kind":"List",...}.
Json listWrapper(const std::vector<Json>& items);
// YAML as `kubectl -o yaml` writes it (sorted keys, "- " at the parent's indent).
std::string toYaml(const Json& value);
// 4-space indented JSON plus newline, like kubectl.
std::string toJsonText(const Json& value);
// "service/web" per item; fallbackKind when an item lacks "kind".
std::string renderNames(const std::vector<Json>& items, const std::string& fallbackKind = "");

// ---- describe (describe.cpp) ----
std::string describeService(const Json& svc);
std::string describeEndpoints(const Json& ep);
std::string describeEndpointSlice(const Json& slice);
std::string describeGeneric(const Json& obj);  // the MetalLB kinds
// kubectl's endpoint list: first 3 joined by ",", then " + N more...".
std::string truncatedList(const std::vector<std::string>& items, const std::string& empty);

// ---- apply/delete results (apply.cpp, delete.cpp) ----
// service/web created / service "web" deleted, each line ended by `suffix`
// (--dry-run's " (server dry run)").
std::string renderApplyResults(const Json& results, const std::string& suffix = "");
std::string renderDeleteResults(const Json& results, const std::string& suffix = "");

// ---- stats/status (stats.cpp, status.cpp) ----
std::string renderStats(const Json& stats);
std::string renderStatus(const Json& status);
// `svcctl trace` (cli/trace.cpp).
std::string renderTrace(const Json& trace);
// One monitor event (or {"type":"lost"} line) as svcctl monitor prints it.
std::string renderMonitorLine(const Json& event);

}  // namespace svclb::cli
