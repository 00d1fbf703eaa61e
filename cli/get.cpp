// `svcctl get`: kubectl's printers for Services, Endpoints and EndpointSlices
// (k8s.io/kubernetes pkg/printers/internalversion) over the daemon's objects.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <thread>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/jsonpath.h"
#include "cli/selector.h"
#include "cli/table.h"

namespace svclb::cli {
namespace {

constexpr size_t kLoadBalancerWidth = 16;
constexpr size_t kMaxListed = 3;

std::string loadBalancerStatus(const Json& svc, bool wide) {
  std::set<std::string> result;  // kubectl collects into a sorted set
  const Json& ingress = at(svc, {"status", "loadBalancer", "ingress"});
  if (ingress.is_array()) {
    for (const auto& i : ingress) {
      std::string ip = str(at(i, {"ip"}));
      std::string host = str(at(i, {"hostname"}));
      if (!ip.empty())
        result.insert(ip);
      else if (!host.empty())
        result.insert(host);
    }
  }
  std::string r = join({result.begin(), result.end()}, ",");
  if (!wide && r.size() > kLoadBalancerWidth) r = r.substr(0, kLoadBalancerWidth - 3) + "...";
  return r;
}

std::string ageOf(const Json& item, TimePoint now) {
  return ageSince(str(at(item, {"metadata", "creationTimestamp"})), now);
}

}  // namespace

std::optional<OutputFormat> parseOutputFormat(const std::string& s) {
  if (s.empty()) return OutputFormat::Table;
  if (s == "wide") return OutputFormat::Wide;
  if (s == "json") return OutputFormat::Json;
  if (s == "yaml") return OutputFormat::Yaml;
  if (s == "name") return OutputFormat::Name;
  return std::nullopt;
}

std::string servicePorts(const Json& svc) {
  std::vector<std::string> pieces;
  const Json& ports = at(svc, {"spec", "ports"});
  if (ports.is_array()) {
    for (const auto& p : ports) {
      std::string proto = str(at(p, {"protocol"}), "TCP");
      long long port = num(at(p, {"port"}));
      long long nodePort = num(at(p, {"nodePort"}));
      if (nodePort > 0)
        pieces.push_back(fmt::format("{}:{}/{}", port, nodePort, proto));
      else
        pieces.push_back(fmt::format("{}/{}", port, proto));
    }
  }
  if (pieces.empty()) return "<none>";
  return join(pieces, ",");
}

std::string serviceClusterIp(const Json& svc) {
  auto ips = strings(at(svc, {"spec", "clusterIPs"}));
  if (!ips.empty()) return ips[0];
  std::string ip = str(at(svc, {"spec", "clusterIP"}));
  return ip.empty() ? "<none>" : ip;
}

std::string serviceExternalIp(const Json& svc, bool wide) {
  std::string type = str(at(svc, {"spec", "type"}), "ClusterIP");
  auto externalIps = strings(at(svc, {"spec", "externalIPs"}));
  if (type == "ClusterIP" || type == "NodePort")
    return externalIps.empty() ? "<none>" : join(externalIps, ",");
  if (type == "LoadBalancer") {
    std::string lb = loadBalancerStatus(svc, wide);
    if (!externalIps.empty()) {
      std::vector<std::string> all;
      if (!lb.empty()) all.push_back(lb);
      all.insert(all.end(), externalIps.begin(), externalIps.end());
      return join(all, ",");
    }
    return lb.empty() ? "<pending>" : lb;
  }
  if (type == "ExternalName") return str(at(svc, {"spec", "externalName"}));
  return "<unknown>";
}

std::string formatSelector(const Json& selector) {
  // labels.FormatLabels: sorted k=v joined by ",".
  std::vector<std::string> parts;
  if (selector.is_object())
    for (auto it = selector.begin(); it != selector.end(); ++it)
      parts.push_back(it.key() + "=" + str(it.value()));
  std::sort(parts.begin(), parts.end());
  return parts.empty() ? "<none>" : join(parts, ",");
}

std::string formatEndpointsSubsets(const Json& endpoints) {
  const Json& subsets = at(endpoints, {"subsets"});
  if (!subsets.is_array() || subsets.empty()) return "<none>";
  std::vector<std::string> list;
  bool more = false;
  size_t count = 0;
  for (const auto& ss : subsets) {
    const Json& addrs = at(ss, {"addresses"});
    size_t naddr = addrs.is_array() ? addrs.size() : 0;
    const Json& ports = at(ss, {"ports"});
    if (!ports.is_array() || ports.empty()) {
      // Headless services may have no ports.
      count += naddr;
      for (size_t i = 0; i < naddr; ++i) {
        if (list.size() == kMaxListed) {
          more = true;
          break;
        }
        list.push_back(str(at(addrs[i], {"ip"})));
      }
      continue;
    }
    for (const auto& port : ports) {
      count += naddr;
      for (size_t i = 0; i < naddr; ++i) {
        if (list.size() == kMaxListed) {
          more = true;
          break;
        }
        list.push_back(joinHostPort(str(at(addrs[i], {"ip"})), str(at(port, {"port"}))));
      }
    }
  }
  std::string ret = join(list, ",");
  if (more) return fmt::format("{} + {} more...", ret, count - kMaxListed);
  return ret;
}

namespace {
std::string listWithMore(const std::vector<std::string>& list, bool more, size_t count) {
  std::string ret = join(list, ",");
  if (more) return fmt::format("{} + {} more...", ret, count - kMaxListed);
  return ret.empty() ? "<unset>" : ret;
}
}  // namespace

std::string formatSlicePorts(const Json& slice) {
  std::vector<std::string> list;
  bool more = false;
  size_t count = 0;
  const Json& ports = at(slice, {"ports"});
  if (ports.is_array()) {
    for (const auto& p : ports) {
      if (list.size() < kMaxListed) {
        std::string n = "*";
        if (at(p, {"port"}).is_number())
          n = str(at(p, {"port"}));
        else if (at(p, {"name"}).is_string())
          n = str(at(p, {"name"}));
        list.push_back(n);
      } else {
        more = true;
      }
      ++count;
    }
  }
  return listWithMore(list, more, count);
}

std::string formatSliceEndpoints(const Json& slice) {
  std::vector<std::string> list;
  bool more = false;
  size_t count = 0;
  const Json& eps = at(slice, {"endpoints"});
  if (eps.is_array()) {
    for (const auto& ep : eps) {
      for (const auto& a : strings(at(ep, {"addresses"}))) {
        if (list.size() < kMaxListed)
          list.push_back(a);
        else
          more = true;
        ++count;
      }
    }
  }
  return listWithMore(list, more, count);
}

std::string renderGetTable(const std::string& kind, const std::vector<Json>& items,
                           const TableOptions& opts, TimePoint now) {
  std::vector<std::string> header;
  if (opts.allNamespaces) header.push_back("NAMESPACE");
  if (kind == "Service") {
    header.insert(header.end(), {"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"});
    if (opts.wide) header.push_back("SELECTOR");
  } else if (kind == "Endpoints") {
    header.insert(header.end(), {"NAME", "ENDPOINTS", "AGE"});
  } else if (kind == "IPAddressPool") {
    header.insert(header.end(), {"NAME", "AUTO ASSIGN", "AVOID BUGGY IPS", "ADDRESSES", "AGE"});
  } else if (kind == "L2Advertisement") {
    header.insert(header.end(), {"NAME", "IPADDRESSPOOLS", "INTERFACES", "AGE"});
  } else {
    header.insert(header.end(), {"NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"});
  }
  if (opts.showLabels) header.push_back("LABELS");
  Table table(header);
  for (const auto& item : items) {
    std::vector<std::string> row;
    if (opts.allNamespaces) row.push_back(str(at(item, {"metadata", "namespace"})));
    row.push_back((opts.withKind ? qualifiedName(kind) + "/" : std::string()) +
                  str(at(item, {"metadata", "name"})));
    if (kind == "Service") {
      row.push_back(str(at(item, {"spec", "type"}), "ClusterIP"));
      row.push_back(serviceClusterIp(item));
      row.push_back(serviceExternalIp(item, opts.wide));
      row.push_back(servicePorts(item));
      row.push_back(ageOf(item, now));
      if (opts.wide) row.push_back(formatSelector(at(item, {"spec", "selector"})));
    } else if (kind == "Endpoints") {
      row.push_back(formatEndpointsSubsets(item));
      row.push_back(ageOf(item, now));
    } else if (kind == "IPAddressPool" || kind == "L2Advertisement") {
      // JSON values as kubectl's CRD printer columns show them.
      auto list = [](const Json& j) {
        if (!j.is_array() || j.empty()) return std::string("<none>");
        return join(j.get<std::vector<std::string>>(), ",");
      };
      if (kind == "IPAddressPool") {
        const Json& spec = at(item, {"spec"});
        row.push_back(spec.is_object() && spec.contains("autoAssign") ? spec["autoAssign"].dump()
                                                                      : "true");
        row.push_back(spec.is_object() && spec.contains("avoidBuggyIPs")
                          ? spec["avoidBuggyIPs"].dump()
                          : "false");
        row.push_back(list(at(item, {"spec", "addresses"})));
      } else {
        row.push_back(list(at(item, {"spec", "ipAddressPools"})));
        row.push_back(list(at(item, {"spec", "interfaces"})));
      }
      row.push_back(ageOf(item, now));
    } else {
      row.push_back(str(at(item, {"addressType"})));
      row.push_back(formatSlicePorts(item));
      row.push_back(formatSliceEndpoints(item));
      row.push_back(ageOf(item, now));
    }
    if (opts.showLabels) row.push_back(formatSelector(at(item, {"metadata", "labels"})));
    table.addRow(std::move(row));
  }
  return table.render("", !opts.noHeaders);
}

namespace {

// kubectl's relaxed expression: "metadata.name", ".metadata.name" or
// "{.metadata.name}" (custom-columns, --sort-by).
std::string relaxedJsonPath(const std::string& expr) {
  if (expr.empty() || expr.front() == '{') return expr;
  return "{" + std::string(expr.front() == '.' ? "" : ".") + expr + "}";
}

// sortorder.NaturalLess, as kubectl --sort-by compares strings: runs of
// digits by their value ("web2" < "web10"), the rest byte by byte.
bool naturalLess(const std::string& a, const std::string& b) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      size_t ei = i, ej = j;
      while (ei < a.size() && digit(a[ei])) ++ei;
      while (ej < b.size() && digit(b[ej])) ++ej;
      size_t zi = i, zj = j;  // leading zeros do not count
      while (zi + 1 < ei && a[zi] == '0') ++zi;
      while (zj + 1 < ej && b[zj] == '0') ++zj;
      if (ei - zi != ej - zj) return ei - zi < ej - zj;
      if (int c = a.compare(zi, ei - zi, b, zj, ej - zj); c != 0) return c < 0;
      i = ei;
      j = ej;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

// --sort-by EXPR: `items` ordered by the expression's first value (numbers by
// value, strings naturally, false before true); items without it first.
// Fails, as kubectl, when no item has it.
Status sortItems(std::vector<Json>& items, const std::string& expr) {
  auto jp = JsonPath::parse(relaxedJsonPath(expr));
  if (!jp) return jp.error();
  std::vector<std::pair<std::optional<Json>, Json>> keyed;
  bool any = false;
  for (auto& item : items) {
    auto found = jp->results(item);
    if (!found) return found.error();
    std::optional<Json> key;
    if (!found->empty()) key = (*found)[0];
    any = any || key.has_value();
    keyed.emplace_back(std::move(key), std::move(item));
  }
  if (!any && !keyed.empty())
    return Error{EINVAL,
                 fmt::format("couldn't find any field with path \"{}\" in the list of objects",
                             relaxedJsonPath(expr))};
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& x, const auto& y) {
    if (!x.first || !y.first) return !x.first && y.first;
    const Json &a = *x.first, &b = *y.first;
    if (a.is_number() && b.is_number()) return a.get<double>() < b.get<double>();
    if (a.is_boolean() && b.is_boolean()) return !a.get<bool>() && b.get<bool>();
    auto s = [](const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
    return naturalLess(s(a), s(b));
  });
  items.clear();
  for (auto& [key, item] : keyed) items.push_back(std::move(item));
  return {};
}

// -o jsonpath=TEMPLATE / custom-columns=SPEC: the parsed printer, or the
// error kubectl gives.
struct TemplatePrinter {
  std::optional<JsonPath> jsonPath;
  std::vector<std::pair<std::string, JsonPath>> columns;
};

std::optional<TemplatePrinter> templatePrinter(const std::string& output, Context& ctx) {
  auto value = [&](const std::string& prefix) -> std::optional<std::string> {
    if (output.rfind(prefix + "=", 0) == 0) return output.substr(prefix.size() + 1);
    return std::nullopt;
  };
  TemplatePrinter p;
  if (output == "jsonpath" || output == "custom-columns") {
    ctx.err << "error: template format specified but no template given\n";
    return std::nullopt;
  }
  if (auto t = value("jsonpath")) {
    auto jp = JsonPath::parse(*t);
    if (!jp) {
      ctx.err << "error: " << jp.error().message << "\n";
      return std::nullopt;
    }
    p.jsonPath = std::move(*jp);
    return p;
  }
  auto spec = value("custom-columns");
  if (!spec) return std::nullopt;
  size_t pos = 0;
  while (pos <= spec->size()) {
    size_t comma = spec->find(',', pos);
    std::string col =
        spec->substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t colon = col.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == col.size()) {
      ctx.err << fmt::format(
          "error: unexpected custom-columns spec: {}, expected <header>:<json-path-expr>\n", col);
      return std::nullopt;
    }
    auto jp = JsonPath::parse(relaxedJsonPath(col.substr(colon + 1)));
    if (!jp) {
      ctx.err << "error: " << jp.error().message << "\n";
      return std::nullopt;
    }
    p.columns.emplace_back(col.substr(0, colon), std::move(*jp));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return p;
}

// -o custom-columns: one row per item, a column's results joined by ",",
// "<none>" for none (kubectl's printer).
Result<std::string> renderCustomColumns(const std::vector<std::pair<std::string, JsonPath>>& cols,
                                        const Json& items, bool noHeaders) {
  if (items.empty()) return std::string();
  std::vector<std::string> header;
  for (const auto& [name, jp] : cols) header.push_back(name);
  Table table(header);
  for (const auto& item : items) {
    std::vector<std::string> row;
    for (const auto& [name, jp] : cols) {
      auto v = jp.values(item);
      if (!v) return v.error();
      row.push_back(v->empty() ? "<none>" : join(*v, ","));
    }
    table.addRow(std::move(row));
  }
  return table.render("", !noHeaders);
}

// get --watch: svclbd has no watch request, so the list is read again every
// second and each object that appeared, changed or went is printed as one
// more row (no header; a deleted one as it was last seen), as kubectl get
// -w prints watch events. Ends when svclbd cannot be reached (1), or by a
// signal.
int watch(Context& ctx, const GetOptions& opts, const Target& target,
          const std::vector<Json>& shown, const Selector& selector, const TableOptions& topts) {
  auto keyOf = [](const Json& item) {
    return std::make_pair(str(at(item, {"metadata", "namespace"})),
                          str(at(item, {"metadata", "name"})));
  };
  std::map<std::pair<std::string, std::string>, Json> seen;
  for (const auto& item : shown) seen[keyOf(item)] = stripInternal(item);
  // kubectl's watch rows keep the columns of what it printed before (its
  // tabwriter remembers widths): each row is laid out with everything shown
  // so far and printed alone.
  std::vector<Json> printed = shown;
  auto print = [&](const Json& item) {
    if (parseOutputFormat(opts.output) == OutputFormat::Name) {
      ctx.out << renderNames({item}, target.type.kind);
    } else {
      printed.push_back(item);
      const std::string table = renderGetTable(target.type.kind, printed, topts, ctx.now);
      const size_t last = table.rfind('\n', table.size() - 2);
      ctx.out << table.substr(last == std::string::npos ? 0 : last + 1);
    }
    ctx.out.flush();
  };
  for (;;) {
    std::this_thread::sleep_for(opts.watchInterval);
    auto resp = callDaemon(ctx.socketPath,
                           Json{{"op", "get"},
                                {"kind", target.type.kind},
                                {"namespace", opts.nameSpace},
                                {"allNamespaces", opts.allNamespaces},
                                {"name", ""}},
                           ctx.timeout);
    if (!resp) {
      ctx.err << resp.error().message << "\n";
      return 1;
    }
    std::map<std::pair<std::string, std::string>, Json> now;
    const Json& items = at(*resp, {"items"});
    if (items.is_array())
      for (const auto& item : items) {
        const auto key = keyOf(item);
        if (!selector.matches(item)) continue;
        if (!target.names.empty() &&
            std::find(target.names.begin(), target.names.end(), key.second) == target.names.end())
          continue;
        now[key] = stripInternal(item);
        auto was = seen.find(key);
        if (was == seen.end() || was->second != now[key]) print(item);
      }
    for (const auto& [key, item] : seen)
      if (!now.count(key)) print(item);  // deleted: its last state
    seen = std::move(now);
  }
}

}  // namespace

int runGet(Context& ctx, const GetOptions& opts) {
  std::optional<TemplatePrinter> tmpl;
  if (opts.output.rfind("jsonpath", 0) == 0 || opts.output.rfind("custom-columns", 0) == 0) {
    tmpl = templatePrinter(opts.output, ctx);
    if (!tmpl) return 1;
  }
  auto format =
      tmpl ? std::optional<OutputFormat>(OutputFormat::Json) : parseOutputFormat(opts.output);
  if (!format) {
    ctx.err << fmt::format(
        "error: unable to match a printer suitable for the output format \"{}\", allowed "
        "formats are: custom-columns,json,jsonpath,name,wide,yaml\n",
        opts.output);
    return 1;
  }
  std::vector<Target> targets;
  if (!parseTargets(opts.args, ctx, targets)) return 1;
  const bool named = !targets.front().names.empty();
  if (opts.watch && targets.size() > 1) {
    ctx.err << "error: you may only specify a single resource type\n";
    return 1;
  }
  if (opts.watch && *format != OutputFormat::Table && *format != OutputFormat::Wide &&
      *format != OutputFormat::Name) {
    ctx.err << "error: svcctl get --watch prints tables and names only (-o wide, -o name)\n";
    return 1;
  }
  if (opts.allNamespaces && named) {
    ctx.err << "error: a resource cannot be retrieved by name across all namespaces\n";
    return 1;
  }
  auto selector = parseSelector(opts.selector, targets, ctx);
  if (!selector) return 1;
  warnDeprecatedKinds(ctx, targets);

  // Each target's items, in the order asked (kubectl's infos).
  std::vector<std::pair<std::string, std::vector<Json>>> groups;
  int rc = 0;
  bool unreachable = false;
  auto fetch = [&](const Target& target, const std::string& name, std::vector<Json>& items) {
    Json req = {{"op", "get"},
                {"kind", target.type.kind},
                {"namespace", opts.nameSpace},
                {"allNamespaces", opts.allNamespaces},
                {"name", name}};
    auto resp = callDaemon(ctx.socketPath, req, ctx.timeout);
    if (!resp) {
      ctx.err << resp.error().message << "\n";
      unreachable = resp.error().code != kDaemonRefused;
      rc = 1;
      return false;
    }
    const Json& got = at(*resp, {"items"});
    if (got.is_array())
      for (const auto& it : got)
        if (selector->matches(it)) items.push_back(it);
    return true;
  };
  for (const auto& target : targets) {
    std::vector<Json> items;
    if (!named) {
      if (!fetch(target, "", items)) return 1;
      // The API server lists in key order: namespace, then name.
      std::stable_sort(items.begin(), items.end(), [](const Json& a, const Json& b) {
        auto key = [](const Json& j) {
          return std::make_pair(str(at(j, {"metadata", "namespace"})),
                                str(at(j, {"metadata", "name"})));
        };
        return key(a) < key(b);
      });
    } else {
      for (const auto& n : target.names)
        if (!fetch(target, n, items) && unreachable) return 1;
    }
    if (!opts.sortBy.empty()) {
      if (auto st = sortItems(items, opts.sortBy); !st) {
        ctx.err << "error: " << st.error().message << "\n";
        return 1;
      }
    }
    groups.emplace_back(target.type.kind, std::move(items));
  }
  std::vector<Json> all;
  std::set<std::string> kinds;
  for (const auto& [kind, items] : groups) {
    if (!items.empty()) kinds.insert(kind);
    all.insert(all.end(), items.begin(), items.end());
  }

  // kubectl's line when a listing found nothing (not for named objects).
  auto noneFound = [&] {
    if (named || rc != 0) return;
    ctx.err << (opts.allNamespaces
                    ? std::string("No resources found\n")
                    : fmt::format("No resources found in {} namespace.\n", opts.nameSpace));
  };
  switch (*format) {
    case OutputFormat::Json:
    case OutputFormat::Yaml: {
      if (named && all.empty()) return rc;
      // One object when one was named (kubectl's single item implied).
      const bool single = named && targets.size() == 1 && targets[0].names.size() == 1;
      Json doc = single && all.size() == 1 ? stripInternal(all[0]) : listWrapper(all);
      if (tmpl && tmpl->jsonPath) {
        auto text = tmpl->jsonPath->execute(doc);
        if (!text) {
          ctx.err << fmt::format(
              "error: error executing jsonpath \"{}\": Error executing template: {}\n",
              opts.output.substr(opts.output.find('=') + 1), text.error().message);
          return 1;
        }
        ctx.out << *text;
        return rc;
      }
      if (tmpl) {
        const Json& items = doc.contains("items") ? doc["items"] : Json::array({doc});
        auto table = renderCustomColumns(tmpl->columns, items, opts.noHeaders);
        if (!table) {
          ctx.err << "error: " << table.error().message << "\n";
          return 1;
        }
        ctx.out << *table;
        if (items.empty()) noneFound();
        return rc;
      }
      ctx.out << (*format == OutputFormat::Json ? toJsonText(doc) : toYaml(doc));
      return rc;
    }
    case OutputFormat::Name:
      for (const auto& [kind, items] : groups) ctx.out << renderNames(items, kind);
      if (opts.watch && rc == 0) return watch(ctx, opts, targets.front(), all, *selector, {});
      return rc;
    case OutputFormat::Table:
    case OutputFormat::Wide:
      break;
  }
  // kubectl: one table per resource type, a blank line between them, and
  // names as TYPE/NAME once objects of more than one kind are shown.
  TableOptions topts{*format == OutputFormat::Wide, opts.allNamespaces, kinds.size() > 1,
                     opts.noHeaders, opts.showLabels};
  if (all.empty()) {
    noneFound();
    if (opts.watch && rc == 0) return watch(ctx, opts, targets.front(), all, *selector, topts);
    return rc;
  }
  bool written = false;
  for (const auto& [kind, items] : groups) {
    if (items.empty()) continue;
    if (written) ctx.out << "\n";
    ctx.out << renderGetTable(kind, items, topts, ctx.now);
    written = true;
  }
  if (opts.watch && rc == 0) return watch(ctx, opts, targets.front(), all, *selector, topts);
  return rc;
}

}  // namespace svclb::cli
