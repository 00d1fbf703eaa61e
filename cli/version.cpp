// `svcctl version` and `svcctl api-resources`, as kubectl prints them.
#include <fmt/format.h>

#include <algorithm>
#include <ostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/table.h"
#include "model/kinds.h"

namespace svclb::cli {

int runVersion(Context& ctx, bool clientOnly) {
  ctx.out << "Client Version: " << SVCLB_VERSION << "\n";
  if (clientOnly) return 0;
  auto resp = callDaemon(ctx.socketPath, Json{{"op", "status"}}, ctx.timeout);
  if (!resp) {
    ctx.err << resp.error().message << "\n";
    return 1;
  }
  ctx.out << "Server Version: " << str(at(*resp, {"version"}), "<unknown>") << "\n";
  return 0;
}

std::string renderApiResources() {
  struct Row {
    std::string group, name, shortName, apiVersion, kind;
  };
  std::vector<Row> rows;
  for (const auto& k : kinds()) {
    std::string plural(k.plural.substr(0, k.plural.find('.')));
    std::string apiVersion(k.apiVersion);
    const size_t slash = apiVersion.find('/');
    rows.push_back({slash == std::string::npos ? "" : apiVersion.substr(0, slash), plural,
                    std::string(k.shortName), apiVersion, std::string(k.kind)});
  }
  // The core group first, then the others in the table's order; names sorted
  // within a group.
  std::vector<std::string> groups;
  for (const auto& r : rows)
    if (std::find(groups.begin(), groups.end(), r.group) == groups.end()) groups.push_back(r.group);
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    auto ga = std::find(groups.begin(), groups.end(), a.group) - groups.begin();
    auto gb = std::find(groups.begin(), groups.end(), b.group) - groups.begin();
    return ga != gb ? ga < gb : a.name < b.name;
  });
  Table t({"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"});
  for (auto& r : rows) t.addRow({r.name, r.shortName, r.apiVersion, "true", r.kind});
  return t.render();
}

}  // namespace svclb::cli
