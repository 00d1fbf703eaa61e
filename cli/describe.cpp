// `svcctl describe`: kubectl's describers (k8s.io/kubectl pkg/describe) for
// Service, Endpoints and EndpointSlice. Text is built with kubectl's
// PrefixWriter conventions ("\t" between label and value, two spaces per
// level) and aligned by the same tabwriter settings (minwidth 0, padding 2).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <ostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/selector.h"
#include "cli/table.h"

namespace svclb::cli {
namespace {

constexpr size_t kMaxAnnotationLen = 140;
const char* const kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";

class Writer {
 public:
  void write(int level, const std::string& s) {
    for (int i = 0; i < level; ++i) text_ += "  ";
    text_ += s;
  }
  std::string done() const { return tabwrite(text_, 0, 2); }

 private:
  std::string text_;
};

void labelsMultiline(Writer& w, const std::string& title, const Json& labels) {
  w.write(0, title + ":\t");
  if (!labels.is_object() || labels.empty()) {
    w.write(0, "<none>\n");
    return;
  }
  bool first = true;
  for (auto it = labels.begin(); it != labels.end(); ++it) {  // sorted keys
    if (!first) w.write(0, "\t");
    first = false;
    w.write(0, it.key() + "=" + str(it.value()) + "\n");
  }
}

std::string shorten(const std::string& s, size_t max) {
  return s.size() > max ? s.substr(0, max) + "..." : s;
}

void annotationsMultiline(Writer& w, const std::string& title, const Json& annotations) {
  w.write(0, title + ":\t");
  std::vector<std::string> keys;
  if (annotations.is_object())
    for (auto it = annotations.begin(); it != annotations.end(); ++it)
      if (it.key() != kLastApplied) keys.push_back(it.key());
  if (keys.empty()) {
    w.write(0, "<none>\n");
    return;
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i) w.write(0, "\t");
    std::string value = str(annotations[keys[i]]);
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (value.size() + keys[i].size() + 2 > kMaxAnnotationLen ||
        value.find('\n') != std::string::npos) {
      w.write(0, keys[i] + ":\n");
      size_t start = 0;
      while (true) {
        size_t nl = value.find('\n', start);
        std::string line = value.substr(start, nl == std::string::npos ? nl : nl - start);
        w.write(0, "\t  " + shorten(line, kMaxAnnotationLen - 2) + "\n");
        if (nl == std::string::npos) break;
        start = nl + 1;
      }
    } else {
      w.write(0, keys[i] + ": " + value + "\n");
    }
  }
}

void header(Writer& w, const Json& obj) {
  w.write(0, "Name:\t" + str(at(obj, {"metadata", "name"})) + "\n");
  w.write(0, "Namespace:\t" + str(at(obj, {"metadata", "namespace"})) + "\n");
  labelsMultiline(w, "Labels", at(obj, {"metadata", "labels"}));
  annotationsMultiline(w, "Annotations", at(obj, {"metadata", "annotations"}));
}

std::string ingressString(const Json& ingress) {
  std::string out;
  if (!ingress.is_array()) return out;
  for (size_t i = 0; i < ingress.size(); ++i) {
    if (i) out += ", ";
    std::string ip = str(at(ingress[i], {"ip"}));
    if (!ip.empty()) {
      out += ip;
      std::string mode = str(at(ingress[i], {"ipMode"}));
      if (!mode.empty()) out += " (" + mode + ")";
    } else {
      out += str(at(ingress[i], {"hostname"}));
    }
  }
  return out;
}

// Endpoints line for one service port, from the daemon's "svclb" view.
std::string portEndpoints(const Json& svc, const std::string& portName) {
  const Json& view = at(svc, {"svclb"});
  const Json& ports = at(view, {"ports"});
  if (ports.is_array()) {
    for (const auto& p : ports)
      if (str(at(p, {"name"})) == portName)
        return truncatedList(strings(at(p, {"endpoints"})), "<none>");
    return "<none>";
  }
  return truncatedList(strings(at(view, {"endpoints"})), "<none>");
}

}  // namespace

std::string truncatedList(const std::vector<std::string>& items, const std::string& empty) {
  constexpr size_t kMax = 3;
  if (items.empty()) return empty;
  if (items.size() <= kMax) return join(items, ",");
  std::vector<std::string> head(items.begin(), items.begin() + kMax);
  return fmt::format("{} + {} more...", join(head, ","), items.size() - kMax);
}

namespace {

// kubectl's label for a field of an object without a describer of its own
// (smartLabelFor: camelCase words split as github.com/fatih/camelcase does,
// each title-cased, common acronyms upper-cased; a name with characters
// other than letters and '-' as it is).
std::string smartLabel(const std::string& field) {
  for (char c : field)
    if (!std::isalpha(static_cast<unsigned char>(c)) && c != '-') return field;
  auto cls = [](char c) {
    auto u = static_cast<unsigned char>(c);
    return std::islower(u) ? 1 : std::isupper(u) ? 2 : 3;
  };
  std::vector<std::string> runs;
  for (size_t i = 0; i < field.size(); ++i) {
    if (i == 0 || cls(field[i]) != cls(field[i - 1])) runs.emplace_back();
    runs.back() += field[i];
  }
  // An upper-case run followed by lower case gives its last letter to it.
  for (size_t i = 0; i + 1 < runs.size(); ++i)
    if (!runs[i].empty() && cls(runs[i][0]) == 2 && cls(runs[i + 1][0]) == 1) {
      runs[i + 1].insert(runs[i + 1].begin(), runs[i].back());
      runs[i].pop_back();
    }
  std::string out;
  for (const auto& r : runs) {
    if (r.empty()) continue;
    std::string up, title;
    for (char c : r) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (up == "API" || up == "URL" || up == "UID" || up == "OSB" || up == "GUID") {
      title = up;
    } else {
      for (char c : r) title += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
    }
    if (!out.empty()) out += ' ';
    out += title;
  }
  return out;
}

// Go's %v of a JSON scalar as the dynamic client decodes it.
std::string goValue(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "<nil>";
  return v.dump();
}

void unstructuredContent(Writer& w, int level, const Json& content, const std::string& prefix) {
  static const char* const kSkip[] = {".metadata.managedFields", ".metadata.name",
                                      ".metadata.namespace", ".metadata.labels",
                                      ".metadata.annotations"};
  for (auto it = content.begin(); it != content.end(); ++it) {  // sorted keys
    const std::string path = prefix + "." + it.key();
    if (std::find(std::begin(kSkip), std::end(kSkip), path) != std::end(kSkip)) continue;
    const Json& v = it.value();
    if (v.is_object()) {
      w.write(level, smartLabel(it.key()) + ":\n");
      unstructuredContent(w, level + 1, v, path);
    } else if (v.is_array()) {
      w.write(level, smartLabel(it.key()) + ":\n");
      for (const auto& child : v) {
        if (child.is_object())
          unstructuredContent(w, level + 1, child, path);
        else
          w.write(level + 1, goValue(child) + "\n");
      }
    } else {
      w.write(level, smartLabel(it.key()) + ":\t" + goValue(v) + "\n");
    }
  }
}

}  // namespace

// kubectl's generic describer (the MetalLB kinds: no describer of their own).
std::string describeGeneric(const Json& obj) {
  Writer w;
  header(w, obj);
  unstructuredContent(w, 0, stripInternal(obj), "");
  w.write(0, "Events:\t<none>\n");
  return w.done();
}

std::string describeService(const Json& svc) {
  Writer w;
  header(w, svc);
  const Json& spec = at(svc, {"spec"});
  w.write(0, "Selector:\t" + formatSelector(at(spec, {"selector"})) + "\n");
  w.write(0, "Type:\t" + str(at(spec, {"type"}), "ClusterIP") + "\n");
  if (at(spec, {"ipFamilyPolicy"}).is_string())
    w.write(0, "IP Family Policy:\t" + str(at(spec, {"ipFamilyPolicy"})) + "\n");
  auto families = strings(at(spec, {"ipFamilies"}));
  w.write(0, "IP Families:\t" + (families.empty() ? "<none>" : join(families, ",")) + "\n");
  w.write(0, "IP:\t" + str(at(spec, {"clusterIP"})) + "\n");
  auto ips = strings(at(spec, {"clusterIPs"}));
  w.write(0, "IPs:\t" + (ips.empty() ? "<none>" : join(ips, ",")) + "\n");
  auto externalIps = strings(at(spec, {"externalIPs"}));
  if (!externalIps.empty()) w.write(0, "External IPs:\t" + join(externalIps, ",") + "\n");
  if (!str(at(spec, {"loadBalancerIP"})).empty())
    w.write(0, "Desired LoadBalancer IP:\t" + str(at(spec, {"loadBalancerIP"})) + "\n");
  if (!str(at(spec, {"externalName"})).empty())
    w.write(0, "External Name:\t" + str(at(spec, {"externalName"})) + "\n");
  const Json& ingress = at(svc, {"status", "loadBalancer", "ingress"});
  if (ingress.is_array() && !ingress.empty())
    w.write(0, "LoadBalancer Ingress:\t" + ingressString(ingress) + "\n");

  const Json& ports = at(spec, {"ports"});
  if (ports.is_array()) {
    for (const auto& p : ports) {
      std::string name = str(at(p, {"name"}));
      std::string shown = name.empty() ? "<unset>" : name;
      std::string proto = str(at(p, {"protocol"}), "TCP");
      w.write(0, fmt::format("Port:\t{}\t{}/{}\n", shown, num(at(p, {"port"})), proto));
      const Json& target = at(p, {"targetPort"});
      std::string targetStr = target.is_null() ? str(at(p, {"port"})) : str(target);
      w.write(0, fmt::format("TargetPort:\t{}/{}\n", targetStr, proto));
      if (num(at(p, {"nodePort"})) != 0)
        w.write(0, fmt::format("NodePort:\t{}\t{}/{}\n", shown, num(at(p, {"nodePort"})), proto));
      w.write(0, "Endpoints:\t" + portEndpoints(svc, name) + "\n");
    }
  }
  std::string affinity = str(at(spec, {"sessionAffinity"}), "None");
  w.write(0, "Session Affinity:\t" + affinity + "\n");
  // Not in kubectl: svclb shows the ClientIP stickiness timeout it enforces.
  const Json& timeout = at(spec, {"sessionAffinityConfig", "clientIP", "timeoutSeconds"});
  if (affinity == "ClientIP" && timeout.is_number())
    w.write(0, fmt::format("Session Affinity Timeout:\t{}s\n", num(timeout)));
  if (!str(at(spec, {"externalTrafficPolicy"})).empty())
    w.write(0, "External Traffic Policy:\t" + str(at(spec, {"externalTrafficPolicy"})) + "\n");
  if (at(spec, {"internalTrafficPolicy"}).is_string())
    w.write(0, "Internal Traffic Policy:\t" + str(at(spec, {"internalTrafficPolicy"})) + "\n");
  if (num(at(spec, {"healthCheckNodePort"})) != 0)
    w.write(0, fmt::format("HealthCheck NodePort:\t{}\n", num(at(spec, {"healthCheckNodePort"}))));
  auto ranges = strings(at(spec, {"loadBalancerSourceRanges"}));
  if (!ranges.empty()) w.write(0, "LoadBalancer Source Ranges:\t" + join(ranges, ",") + "\n");
  if (!str(at(spec, {"trafficDistribution"})).empty())
    w.write(0, "Traffic Distribution:\t" + str(at(spec, {"trafficDistribution"})) + "\n");
  w.write(0, "Events:\t<none>\n");
  return w.done();
}

std::string describeEndpoints(const Json& ep) {
  Writer w;
  header(w, ep);
  w.write(0, "Subsets:\n");
  const Json& subsets = at(ep, {"subsets"});
  if (subsets.is_array()) {
    for (const auto& ss : subsets) {
      auto ipsOf = [](const Json& addrs) {
        std::vector<std::string> out;
        if (addrs.is_array())
          for (const auto& a : addrs) out.push_back(str(at(a, {"ip"})));
        return out;
      };
      std::string ready = join(ipsOf(at(ss, {"addresses"})), ",");
      std::string notReady = join(ipsOf(at(ss, {"notReadyAddresses"})), ",");
      w.write(1, "Addresses:\t" + (ready.empty() ? "<none>" : ready) + "\n");
      w.write(1, "NotReadyAddresses:\t" + (notReady.empty() ? "<none>" : notReady) + "\n");
      const Json& ports = at(ss, {"ports"});
      if (ports.is_array() && !ports.empty()) {
        w.write(1, "Ports:\n");
        w.write(2, "Name\tPort\tProtocol\n");
        w.write(2, "----\t----\t--------\n");
        for (const auto& p : ports) {
          std::string name = str(at(p, {"name"}));
          w.write(2, fmt::format("{}\t{}\t{}\n", name.empty() ? "<unset>" : name,
                                 num(at(p, {"port"})), str(at(p, {"protocol"}), "TCP")));
        }
      }
      w.write(0, "\n");
    }
  }
  w.write(0, "Events:\t<none>\n");
  return w.done();
}

std::string describeEndpointSlice(const Json& slice) {
  Writer w;
  header(w, slice);
  w.write(0, "AddressType:\t" + str(at(slice, {"addressType"})) + "\n");
  const Json& ports = at(slice, {"ports"});
  if (!ports.is_array() || ports.empty()) {
    w.write(0, "Ports: <unset>\n");
  } else {
    w.write(0, "Ports:\n");
    w.write(1, "Name\tPort\tProtocol\n");
    w.write(1, "----\t----\t--------\n");
    for (const auto& p : ports) {
      std::string name = str(at(p, {"name"}));
      std::string port = at(p, {"port"}).is_number() ? str(at(p, {"port"})) : "<unset>";
      w.write(1, fmt::format("{}\t{}\t{}\n", name.empty() ? "<unset>" : name, port,
                             str(at(p, {"protocol"}), "TCP")));
    }
  }
  const Json& eps = at(slice, {"endpoints"});
  if (!eps.is_array() || eps.empty()) {
    w.write(0, "Endpoints: <none>\n");
  } else {
    w.write(0, "Endpoints:\n");
    for (const auto& e : eps) {
      std::string addrs = join(strings(at(e, {"addresses"})), ", ");
      w.write(1, "- Addresses:\t" + (addrs.empty() ? "<none>" : addrs) + "\n");
      w.write(2, "Conditions:\n");
      const Json& ready = at(e, {"conditions", "ready"});
      w.write(3, "Ready:\t" + (ready.is_boolean() ? str(ready) : "<unset>") + "\n");
      w.write(2, "Hostname:\t" + str(at(e, {"hostname"}), "<unset>") + "\n");
      const Json& ref = at(e, {"targetRef"});
      if (ref.is_object())
        w.write(2, "TargetRef:\t" + str(at(ref, {"kind"})) + "/" + str(at(ref, {"name"})) + "\n");
      w.write(2, "NodeName:\t" + str(at(e, {"nodeName"}), "<unset>") + "\n");
      w.write(2, "Zone:\t" + str(at(e, {"zone"}), "<unset>") + "\n");
    }
  }
  w.write(0, "Events:\t<none>\n");
  return w.done();
}

int runDescribe(Context& ctx, const DescribeOptions& opts) {
  std::vector<Target> targets;
  if (!parseTargets(opts.args, ctx, targets)) return 1;
  auto selector = parseSelector(opts.selector, targets, ctx);
  if (!selector) return 1;
  warnDeprecatedKinds(ctx, targets);
  auto describe = [&](const std::string& kind, const Json& item) {
    if (kind == "Service") return describeService(item);
    if (kind == "Endpoints") return describeEndpoints(item);
    if (kind == "EndpointSlice") return describeEndpointSlice(item);
    return describeGeneric(item);
  };
  // kubectl describe TYPE NAME: NAME not found describes the objects whose
  // names start with it (DescribeMatchingResources); none: the NotFound.
  const bool prefixMatch =
      opts.args.size() == 2 && targets.size() == 1 && opts.args[0].find('/') == std::string::npos;
  auto get = [&](const std::string& kind, const std::string& name) {
    return callDaemon(ctx.socketPath,
                      Json{{"op", "get"},
                           {"kind", kind},
                           {"namespace", opts.nameSpace},
                           {"allNamespaces", false},
                           {"name", name}},
                      ctx.timeout);
  };
  int rc = 0;
  bool first = true;
  size_t shown = 0;
  for (const auto& target : targets) {
    std::vector<std::string> names = target.names;
    if (names.empty()) names.push_back("");  // describe every object in the namespace
    for (const auto& name : names) {
      auto resp = get(target.type.kind, name);
      std::string prefix;
      if (!resp && resp.error().code == kDaemonRefused && prefixMatch &&
          resp.error().message.rfind("Error from server (NotFound)", 0) == 0) {
        auto all = get(target.type.kind, "");
        bool any = false;
        if (all && at(*all, {"items"}).is_array())
          for (const auto& item : at(*all, {"items"}))
            any = any || str(at(item, {"metadata", "name"})).rfind(name, 0) == 0;
        if (any) {
          resp = std::move(all);
          prefix = name;
        }
      }
      if (!resp) {
        ctx.err << resp.error().message << "\n";
        if (resp.error().code != kDaemonRefused) return 1;  // unreachable: stop here
        rc = 1;
        continue;
      }
      const Json& items = at(*resp, {"items"});
      if (!items.is_array()) continue;
      for (const auto& item : items) {
        if (!selector->matches(item)) continue;
        if (!prefix.empty() && str(at(item, {"metadata", "name"})).rfind(prefix, 0) != 0) continue;
        if (!first) ctx.out << "\n\n";
        first = false;
        ctx.out << describe(target.type.kind, item);
        ++shown;
      }
    }
  }
  if (targets.front().names.empty() && shown == 0 && rc == 0)
    ctx.err << fmt::format("No resources found in {} namespace.\n", opts.nameSpace);
  return rc;
}

}  // namespace svclb::cli
