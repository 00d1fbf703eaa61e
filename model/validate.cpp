// Field validation in the API server's words (k8s.io/kubernetes
// pkg/apis/core/validation and pkg/apis/discovery/validation), in the same
// order, so a multi-error message reads as kubectl would print it.
//
// Deliberate differences from the API server:
//  - label/annotation keys and values are not validated;
//  - endpoint addresses in the loopback and link-local ranges are accepted
//    (useful for local testing; kube-apiserver rejects them);
//  - externalIPs and loadBalancerIP must be IPv4 (the node NICs' dataplane
//    is IPv4 only; ClusterIPs may be of either family);
//  - allocation-time checks (CIDR range, collisions, immutability) live in
//    Store::apply, as they need the store.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <string_view>

#include "model/internal.h"
#include "model/model.h"

namespace svclb {

using namespace model_internal;

namespace {

std::string maxLenError(int n) { return fmt::format("must be no more than {} characters", n); }

std::string regexError(const std::string& msg, const std::string& fmtStr,
                       const std::vector<std::string>& examples) {
  // Mirrors apimachinery's RegexError, double space included.
  std::string s = msg;
  if (examples.empty()) return s + " (regex used for validation is '" + fmtStr + "')";
  s += " (e.g. ";
  for (size_t i = 0; i < examples.size(); ++i) {
    if (i > 0) s += " or ";
    s += "'" + examples[i] + "', ";
  }
  return s + "regex used for validation is '" + fmtStr + "')";
}

const std::string kDns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const std::string kDns1123SubdomainFmt = kDns1123LabelFmt + "(\\." + kDns1123LabelFmt + ")*";

// The apimachinery regexes, checked by hand: std::regex recurses per
// character and a long enough name would exhaust the stack.
bool lowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool matchesDns1123Label(std::string_view v) {
  if (v.empty() || !lowerAlnum(v.front()) || !lowerAlnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return lowerAlnum(c) || c == '-'; });
}

// Labels joined by dots.
bool matchesDns1123Subdomain(std::string_view v) {
  size_t start = 0;
  for (;;) {
    size_t dot = v.find('.', start);
    if (!matchesDns1123Label(v.substr(start, dot == std::string_view::npos ? dot : dot - start)))
      return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::vector<std::string> isDNS1123Label(const std::string& v) {
  std::vector<std::string> errs;
  if (v.size() > 63) errs.push_back(maxLenError(63));
  if (!matchesDns1123Label(v)) {
    if (matchesDns1123Subdomain(v))
      errs.push_back("must not contain dots");
    else
      errs.push_back(regexError(
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
          "and must start and end with an alphanumeric character",
          kDns1123LabelFmt, {"my-name", "123-abc"}));
  }
  return errs;
}

std::vector<std::string> isDNS1123Subdomain(const std::string& v) {
  std::vector<std::string> errs;
  if (v.size() > 253) errs.push_back(maxLenError(253));
  if (!matchesDns1123Subdomain(v))
    errs.push_back(regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
        "'.', and must start and end with an alphanumeric character",
        kDns1123SubdomainFmt, {"example.com"}));
  return errs;
}

// IANA_SVC_NAME (RFC 6335), as IsValidPortName.
std::vector<std::string> isValidPortName(const std::string& v) {
  std::vector<std::string> errs;
  if (v.size() > 15) errs.push_back(maxLenError(15));
  if (v.empty() ||
      !std::all_of(v.begin(), v.end(), [](char c) { return lowerAlnum(c) || c == '-'; }))
    errs.push_back("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (std::none_of(v.begin(), v.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
    errs.push_back("must contain at least one letter (a-z)");
  if (v.find("--") != std::string::npos) errs.push_back("must not contain consecutive hyphens");
  if (!v.empty() && (v.front() == '-' || v.back() == '-'))
    errs.push_back("must not begin or end with a hyphen");
  return errs;
}

const std::string kPortRange = "must be between 1 and 65535, inclusive";
const std::string kValidIP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

bool validPort(int64_t p) { return p >= 1 && p <= 65535; }

// apimachinery's IsLabelKey / IsQualifiedName and IsLabelValue.
const std::string kLabelKeyFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const std::string kLabelKeyErr =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character";

bool alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool matchesLabelName(std::string_view v) {
  if (v.empty() || !alnum(v.front()) || !alnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(),
                     [](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

std::vector<std::string> isQualifiedName(const std::string& v) {
  std::vector<std::string> errs;
  std::string name = v;
  if (const size_t slash = v.find('/'); slash != std::string::npos) {
    if (v.find('/', slash + 1) != std::string::npos)
      return {"a valid label key " +
              regexError(kLabelKeyErr, kLabelKeyFmt, {"MyName", "my.name", "123-abc"}) +
              " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"};
    const std::string prefix = v.substr(0, slash);
    name = v.substr(slash + 1);
    if (prefix.empty())
      errs.push_back("prefix part must be non-empty");
    else
      for (const auto& msg : isDNS1123Subdomain(prefix)) errs.push_back("prefix part " + msg);
  }
  if (name.empty())
    errs.push_back("name part must be non-empty");
  else if (name.size() > 63)
    errs.push_back("name part " + maxLenError(63));
  if (!matchesLabelName(name))
    errs.push_back("name part " +
                   regexError(kLabelKeyErr, kLabelKeyFmt, {"MyName", "my.name", "123-abc"}));
  return errs;
}

std::vector<std::string> isLabelValue(const std::string& v) {
  std::vector<std::string> errs;
  if (v.size() > 63) errs.push_back(maxLenError(63));
  if (!v.empty() && !matchesLabelName(v))
    errs.push_back(regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
        "or '.', and must start and end with an alphanumeric character",
        "(" + kLabelKeyFmt + ")?", {"MyValue", "my_value", "12345"}));
  return errs;
}

// ValidateLabels: every key a qualified name, every value a label value.
void validateLabels(const std::map<std::string, std::string>& m, const std::string& path,
                    FieldErrors& errs) {
  for (const auto& [k, v] : m) {
    for (const auto& msg : isQualifiedName(k)) errs.invalidStr(path, k, msg);
    for (const auto& msg : isLabelValue(v)) errs.invalidStr(path, v, msg);
  }
}

void validateAppProtocol(const std::string& ap, const std::string& path, FieldErrors& errs) {
  if (ap.empty()) return;
  for (const auto& msg : isQualifiedName(ap)) errs.invalidStr(path, ap, msg);
}

void validateMeta(const ObjectMeta& m, bool label, FieldErrors& errs) {
  if (m.name.empty()) {
    errs.required("metadata.name", "name or generateName is required");
  } else {
    for (const auto& msg : label ? isDNS1123Label(m.name) : isDNS1123Subdomain(m.name))
      errs.invalidStr("metadata.name", m.name, msg);
  }
  for (const auto& msg : isDNS1123Label(m.ns)) errs.invalidStr("metadata.namespace", m.ns, msg);
  validateLabels(m.labels, "metadata.labels", errs);
}

void validateDNS1123Label(const std::string& v, const std::string& path, FieldErrors& errs) {
  for (const auto& msg : isDNS1123Label(v)) errs.invalidStr(path, v, msg);
}

const std::vector<std::string> kProtocols = {"SCTP", "TCP", "UDP"};

bool supportedProtocol(const std::string& p) { return p == "TCP" || p == "UDP" || p == "SCTP"; }

void validateProtocol(const std::string& proto, const std::string& path, FieldErrors& errs) {
  if (proto.empty())
    errs.required(path);
  else if (!supportedProtocol(proto))
    errs.notSupported(path, proto, kProtocols);
}

// The key the API server uses for duplicate (protocol, port), as it renders
// a field error's value (JSON, v1.37).
std::string servicePortKey(const std::string& proto, int32_t port) {
  std::string p;
  appendJsonString(p, proto);
  return fmt::format(
      "{{\"Name\":\"\",\"Protocol\":{},\"AppProtocol\":null,\"Port\":{},\"TargetPort\":0,"
      "\"NodePort\":0}}",
      p, port);
}

bool externallyAccessible(const Service& s) {
  return s.type == "LoadBalancer" || s.type == "NodePort" ||
         (s.type == "ClusterIP" && !s.externalIPs.empty());
}

// ValidateNonSpecialIP's checks, for an address already known to be IPv4.
// kube-apiserver's ValidateNonSpecialIP, either family.
void validateNonSpecialIP(const std::string& ip, const std::string& path, FieldErrors& errs) {
  const auto a = parseIP(ip);
  if (!a) return;
  const u128 v = a->v;
  const bool unspecified = v == 0;
  const bool loopback = a->v6 ? v == 1 : (v >> 24) == 127;
  const bool linkLocal = a->v6 ? (v >> 118) == 0x3fa /* fe80::/10 */ : (v >> 16) == 0xa9fe;
  const bool llMulticast = a->v6 ? (v >> 112) == 0xff02 : (v >> 8) == 0xe00000;
  if (unspecified) errs.invalidStr(path, ip, fmt::format("may not be unspecified ({})", ip));
  if (loopback)
    errs.invalidStr(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)");
  if (linkLocal)
    errs.invalidStr(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)");
  if (llMulticast)
    errs.invalidStr(path, ip,
                    "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)");
}

void validateWeights(const ObjectMeta& m, FieldErrors& errs) {
  auto it = m.annotations.find(kWeightsAnnotation);
  if (it != m.annotations.end() && !parseWeights(it->second))
    errs.invalidStr(std::string("metadata.annotations[") + kWeightsAnnotation + "]", it->second,
                    "must be a comma-separated list of IP=WEIGHT with WEIGHT between 1 and 65535");
}

// ValidateServiceClusterIPsRelatedFields: clusterIPs, ipFamilies and
// ipFamilyPolicy on their own (what the cluster offers is the store's check,
// model/cluster_ips.cpp).
void validateClusterIPs(const Service& s, FieldErrors& errs) {
  if (s.type == "ExternalName") return;
  for (size_t i = 0; i < s.ipFamilies.size(); ++i) {
    const std::string path = fmt::format("spec.ipFamilies[{}]", i);
    const std::string& f = s.ipFamilies[i];
    if (f != "IPv4" && f != "IPv6") errs.notSupported(path, f, {"IPv4", "IPv6"});
    if (std::find(s.ipFamilies.begin(), s.ipFamilies.begin() + static_cast<long>(i), f) !=
        s.ipFamilies.begin() + static_cast<long>(i))
      errs.duplicate(path, goQuote(f));
  }
  if (!s.ipFamilyPolicy.empty() && s.ipFamilyPolicy != "SingleStack" &&
      s.ipFamilyPolicy != "PreferDualStack" && s.ipFamilyPolicy != "RequireDualStack")
    errs.notSupported("spec.ipFamilyPolicy", s.ipFamilyPolicy,
                      {"PreferDualStack", "RequireDualStack", "SingleStack"});
  const std::vector<std::string> ips = s.clusterIPs.empty() && !s.clusterIP.empty()
                                           ? std::vector<std::string>{s.clusterIP}
                                           : s.clusterIPs;
  bool bad = false;
  for (size_t i = 0; i < ips.size(); ++i) {
    if (i == 0 && ips[0] == "None") {
      if (ips.size() > 1) {
        bad = true;
        errs.invalid("spec.clusterIPs", jsonStringList(ips),
                     "'None' must be the first and only value");
      }
      continue;
    }
    if (!isIP(ips[i])) {
      bad = true;
      errs.invalidStr(fmt::format("spec.clusterIPs[{}]", i), ips[i], kValidIP);
    }
  }
  if (ips.size() > 2)
    errs.invalid("spec.clusterIPs", jsonStringList(ips), "may only hold up to 2 values");
  if (bad) return;
  if (ips.size() == 2 && isIPv6(ips[0]) == isIPv6(ips[1]))
    errs.invalid("spec.clusterIPs", jsonStringList(ips),
                 "may specify no more than one IP for each IP family");
  if (ips.empty() || ips[0] == "None") return;
  for (size_t i = 0; i < ips.size() && i < s.ipFamilies.size(); ++i) {
    const bool v6 = isIPv6(ips[i]);
    if (s.ipFamilies[i] == "IPv4" && v6)
      errs.invalidStr(fmt::format("spec.clusterIPs[{}]", i), ips[i],
                      fmt::format("expected an IPv4 value as indicated by `ipFamilies[{}]`", i));
    if (s.ipFamilies[i] == "IPv6" && !v6)
      errs.invalidStr(fmt::format("spec.clusterIPs[{}]", i), ips[i],
                      fmt::format("expected an IPv6 value as indicated by `ipFamilies[{}]`", i));
  }
}

void validateService(const Service& s, FieldErrors& errs) {
  // A Service's name is an RFC 1123 label since KEP-5311 (GA in v1.37: a
  // leading digit is allowed), no longer an RFC 1035 one.
  validateMeta(s.meta, /*label=*/true, errs);
  if (auto it = s.meta.annotations.find(kLbAlgorithmAnnotation);
      it != s.meta.annotations.end() && it->second != "maglev" && it->second != "random")
    errs.notSupported(std::string("metadata.annotations[") + kLbAlgorithmAnnotation + "]",
                      it->second, {"maglev", "random"});
  const bool headless = s.clusterIP == "None";

  if (s.ports.empty() && !headless && s.type != "ExternalName") errs.required("spec.ports");

  if (s.type == "LoadBalancer" && headless)
    errs.invalidStr("spec.clusterIPs[0]", s.clusterIP,
                    "may not be set to 'None' for LoadBalancer services");
  if (s.type == "NodePort" && headless)
    errs.invalidStr("spec.clusterIPs[0]", s.clusterIP,
                    "may not be set to 'None' for NodePort services");
  if (s.type == "ExternalName") {
    if (!s.clusterIP.empty() || !s.clusterIPs.empty())
      errs.forbidden("spec.clusterIPs", "may not be set for ExternalName services");
    if (!s.ipFamilies.empty())
      errs.forbidden("spec.ipFamilies", "may not be set for ExternalName services");
    if (!s.ipFamilyPolicy.empty())
      errs.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services");
    std::string cname = s.externalName;
    if (!cname.empty() && cname.back() == '.') cname.pop_back();
    if (cname.empty())
      errs.required("spec.externalName");
    else
      for (const auto& msg : isDNS1123Subdomain(cname))
        errs.invalidStr("spec.externalName", cname, msg);
  }

  validateLabels(s.selector, "spec.selector", errs);
  std::vector<std::string> names;
  for (size_t i = 0; i < s.ports.size(); ++i) {
    const ServicePort& p = s.ports[i];
    const std::string path = fmt::format("spec.ports[{}]", i);
    if (s.ports.size() > 1 && p.name.empty()) {
      errs.required(path + ".name");
    } else if (!p.name.empty()) {
      validateDNS1123Label(p.name, path + ".name", errs);
      if (std::find(names.begin(), names.end(), p.name) != names.end())
        errs.duplicate(path + ".name", goQuote(p.name));
      else
        names.push_back(p.name);
    }
    if (!validPort(p.port)) errs.invalidInt(path + ".port", p.port, kPortRange);
    validateAppProtocol(p.appProtocol, path + ".appProtocol", errs);
    validateProtocol(p.protocol, path + ".protocol", errs);
    if (p.targetPort.isString) {
      for (const auto& msg : isValidPortName(p.targetPort.strVal))
        errs.invalidStr(path + ".targetPort", p.targetPort.strVal, msg);
    } else if (!validPort(p.targetPort.intVal)) {
      errs.invalidInt(path + ".targetPort", p.targetPort.intVal, kPortRange);
    }
  }

  if (s.sessionAffinity.empty())
    errs.required("spec.sessionAffinity");
  else if (s.sessionAffinity != "ClientIP" && s.sessionAffinity != "None")
    errs.notSupported("spec.sessionAffinity", s.sessionAffinity, {"ClientIP", "None"});
  if (s.sessionAffinity == "ClientIP" &&
      (s.sessionAffinityTimeoutSeconds <= 0 || s.sessionAffinityTimeoutSeconds > 86400))
    errs.invalidInt("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    s.sessionAffinityTimeoutSeconds, "must be greater than 0 and less than 86400");

  validateClusterIPs(s, errs);

  for (size_t i = 0; i < s.externalIPs.size(); ++i) {
    const std::string path = fmt::format("spec.externalIPs[{}]", i);
    const std::string& ip = s.externalIPs[i];
    if (!isIP(ip))
      errs.invalidStr(path, ip, kValidIP);
    else
      validateNonSpecialIP(ip, path, errs);
  }

  const std::vector<std::string> kTypes = {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"};
  if (s.type.empty())
    errs.required("spec.type");
  else if (std::find(kTypes.begin(), kTypes.end(), s.type) == kTypes.end())
    errs.notSupported("spec.type", s.type, kTypes);

  if (s.type == "ClusterIP") {
    for (size_t i = 0; i < s.ports.size(); ++i)
      if (s.ports[i].nodePort != 0)
        errs.forbidden(fmt::format("spec.ports[{}].nodePort", i),
                       "may not be used when `type` is 'ClusterIP'");
  }
  for (size_t i = 0; i < s.ports.size(); ++i) {
    const ServicePort& p = s.ports[i];
    if (p.nodePort == 0) continue;
    if (p.nodePort < 0 || p.nodePort > 65535)
      errs.invalidInt(fmt::format("spec.ports[{}].nodePort", i), p.nodePort, kPortRange);
    for (size_t k = 0; k < i; ++k)
      if (s.ports[k].nodePort == p.nodePort && s.ports[k].protocol == p.protocol) {
        errs.duplicate(fmt::format("spec.ports[{}].nodePort", i), std::to_string(p.nodePort));
        break;
      }
  }
  for (size_t i = 0; i < s.ports.size(); ++i) {
    for (size_t k = 0; k < i; ++k)
      if (s.ports[k].port == s.ports[i].port && s.ports[k].protocol == s.ports[i].protocol) {
        errs.duplicate(fmt::format("spec.ports[{}]", i),
                       servicePortKey(s.ports[i].protocol, s.ports[i].port));
        break;
      }
  }

  if (!s.loadBalancerSourceRanges.empty()) {
    // Sic: the API server spells this path with a capital L.
    if (s.type != "LoadBalancer")
      errs.forbidden("spec.LoadBalancerSourceRanges",
                     "may only be used when `type` is 'LoadBalancer'");
    for (size_t i = 0; i < s.loadBalancerSourceRanges.size(); ++i) {
      std::string v = s.loadBalancerSourceRanges[i];
      v.erase(0, v.find_first_not_of(' '));
      v.erase(v.find_last_not_of(' ') + 1);
      if (!isCidr(v))
        errs.invalidStr(fmt::format("spec.LoadBalancerSourceRanges[{}]", i), v,
                        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)");
    }
  }
  if (!s.loadBalancerIP.empty() && !isIP(s.loadBalancerIP))
    errs.invalidStr("spec.loadBalancerIP", s.loadBalancerIP, kValidIP);
  if (s.type == "LoadBalancer")
    for (const char* key : {kLbIPsAnnotation, kLbIPsAnnotationLegacy})
      if (auto it = s.meta.annotations.find(key); it != s.meta.annotations.end()) {
        auto list = splitIPList(it->second);
        const bool allIPs = !list.empty() && std::all_of(list.begin(), list.end(), isIP);
        if (!allIPs)
          errs.invalidStr(std::string("metadata.annotations[") + key + "]", it->second,
                          "must be a comma-separated list of IP addresses");
      }

  if (!externallyAccessible(s)) {
    if (!s.externalTrafficPolicy.empty())
      errs.invalidStr("spec.externalTrafficPolicy", s.externalTrafficPolicy,
                      "may only be set for externally-accessible services");
  } else if (!s.externalTrafficPolicy.empty() && s.externalTrafficPolicy != "Cluster" &&
             s.externalTrafficPolicy != "Local") {
    errs.notSupported("spec.externalTrafficPolicy", s.externalTrafficPolicy, {"Cluster", "Local"});
  }
  if (!s.loadBalancerClass.empty()) {
    if (s.type != "LoadBalancer")
      errs.forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'");
    else
      for (const auto& msg : isQualifiedName(s.loadBalancerClass))
        errs.invalidStr("spec.loadBalancerClass", s.loadBalancerClass, msg);
  }
  if (s.allocateLoadBalancerNodePorts && s.type != "LoadBalancer")
    errs.forbidden("spec.allocateLoadBalancerNodePorts",
                   "may only be used when `type` is 'LoadBalancer'");
  const bool needsHealthCheck = s.type == "LoadBalancer" && s.externalTrafficPolicy == "Local";
  if (s.healthCheckNodePort != 0) {
    if (!needsHealthCheck)
      errs.invalidInt("spec.healthCheckNodePort", s.healthCheckNodePort,
                      "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` "
                      "is 'Local'");
    else if (!validPort(s.healthCheckNodePort))
      errs.invalidInt("spec.healthCheckNodePort", s.healthCheckNodePort, kPortRange);
  }
  if (!s.internalTrafficPolicy.empty() && s.internalTrafficPolicy != "Cluster" &&
      s.internalTrafficPolicy != "Local")
    errs.notSupported("spec.internalTrafficPolicy", s.internalTrafficPolicy, {"Cluster", "Local"});
  if (!s.trafficDistribution.empty() && s.trafficDistribution != "PreferClose" &&
      s.trafficDistribution != "PreferSameZone" && s.trafficDistribution != "PreferSameNode")
    errs.notSupported("spec.trafficDistribution", s.trafficDistribution,
                      {"PreferClose", "PreferSameZone", "PreferSameNode"});

  for (size_t i = 0; i < s.loadBalancerIngressIPs.size(); ++i)
    if (!isIP(s.loadBalancerIngressIPs[i]))
      errs.invalidStr(fmt::format("status.loadBalancer.ingress[{}].ip", i),
                      s.loadBalancerIngressIPs[i], kValidIP);
  for (size_t i = 0; i < s.loadBalancerProxyIPs.size(); ++i)
    if (!isIP(s.loadBalancerProxyIPs[i]))
      errs.invalidStr(
          fmt::format("status.loadBalancer.ingress[{}].ip", s.loadBalancerIngressIPs.size() + i),
          s.loadBalancerProxyIPs[i], kValidIP);
}

void validateEndpointPort(const EndpointPort& p, bool requireName, const std::string& path,
                          FieldErrors& errs) {
  if (requireName && p.name.empty())
    errs.required(path + ".name");
  else if (!p.name.empty())
    validateDNS1123Label(p.name, path + ".name", errs);
  if (!validPort(p.port)) errs.invalidInt(path + ".port", p.port, kPortRange);
  validateProtocol(p.protocol, path + ".protocol", errs);
  validateAppProtocol(p.appProtocol, path + ".appProtocol", errs);
}

void validateAddress(const EndpointAddress& a, const std::string& path, FieldErrors& errs) {
  FieldErrors local;
  if (!isIP(a.ip)) local.invalidStr(path + ".ip", a.ip, kValidIP);
  if (!a.hostname.empty()) validateDNS1123Label(a.hostname, path + ".hostname", local);
  if (!a.nodeName.empty())
    for (const auto& msg : isDNS1123Subdomain(a.nodeName))
      local.invalidStr(path + ".nodeName", a.nodeName, msg);
  // ValidateEndpointIP: no unspecified, loopback or link-local address (a
  // Service must not reach its client's own localhost or the node's
  // metadata address).
  if (local.empty()) validateNonSpecialIP(a.ip, path + ".ip", local);
  errs.append(local);
}

void validateEndpoints(const Endpoints& e, FieldErrors& errs) {
  validateWeights(e.meta, errs);
  validateMeta(e.meta, /*label=*/false, errs);
  for (size_t i = 0; i < e.subsets.size(); ++i) {
    const EndpointSubset& ss = e.subsets[i];
    const std::string path = fmt::format("subsets[{}]", i);
    if (ss.addresses.empty() && ss.notReadyAddresses.empty())
      errs.required(path, "must specify `addresses` or `notReadyAddresses`");
    for (size_t k = 0; k < ss.addresses.size(); ++k)
      validateAddress(ss.addresses[k], fmt::format("{}.addresses[{}]", path, k), errs);
    for (size_t k = 0; k < ss.notReadyAddresses.size(); ++k)
      validateAddress(ss.notReadyAddresses[k], fmt::format("{}.notReadyAddresses[{}]", path, k),
                      errs);
    for (size_t k = 0; k < ss.ports.size(); ++k)
      validateEndpointPort(ss.ports[k], ss.ports.size() > 1, fmt::format("{}.ports[{}]", path, k),
                           errs);
  }
}

void validateSlice(const EndpointSlice& s, FieldErrors& errs) {
  validateWeights(s.meta, errs);
  validateMeta(s.meta, /*label=*/false, errs);
  if (s.addressType.empty())
    errs.required("addressType");
  else if (s.addressType != "IPv4" && s.addressType != "IPv6" && s.addressType != "FQDN")
    errs.notSupported("addressType", s.addressType, {"FQDN", "IPv4", "IPv6"});

  if (s.endpoints.size() > 1000)
    errs.add("endpoints: Too many: " + std::to_string(s.endpoints.size()) +
             ": must have at most 1000 items");
  for (size_t i = 0; i < s.endpoints.size() && s.endpoints.size() <= 1000; ++i) {
    const SliceEndpoint& ep = s.endpoints[i];
    const std::string path = fmt::format("endpoints[{}].addresses", i);
    if (ep.addresses.empty())
      errs.required(path, "must contain at least 1 address");
    else if (ep.addresses.size() > 100)
      errs.add(
          fmt::format("{}: Too many: {}: must have at most 100 items", path, ep.addresses.size()));
    for (size_t k = 0; k < ep.addresses.size(); ++k) {
      const std::string& a = ep.addresses[k];
      const std::string ap = fmt::format("{}[{}]", path, k);
      if (s.addressType == "IPv4") {
        if (!parseIPv4(a))
          errs.invalidStr(ap, a, "must be a valid IPv4 address");
        else
          validateNonSpecialIP(a, ap, errs);
      } else if (s.addressType == "IPv6") {
        if (!isIPv6(a))
          errs.invalidStr(ap, a, "must be a valid IPv6 address");
        else
          validateNonSpecialIP(a, ap, errs);
      }
    }
    if (!ep.hostname.empty())
      validateDNS1123Label(ep.hostname, fmt::format("endpoints[{}].hostname", i), errs);
    if (!ep.nodeName.empty())
      for (const auto& msg : isDNS1123Subdomain(ep.nodeName))
        errs.invalidStr(fmt::format("endpoints[{}].nodeName", i), ep.nodeName, msg);
  }

  std::vector<std::string> names;
  for (size_t i = 0; i < s.ports.size(); ++i) {
    const EndpointPort& p = s.ports[i];
    const std::string path = fmt::format("ports[{}]", i);
    if (!p.name.empty()) validateDNS1123Label(p.name, path + ".name", errs);
    if (std::find(names.begin(), names.end(), p.name) != names.end())
      errs.duplicate(path + ".name", goQuote(p.name));
    else
      names.push_back(p.name);
    validateProtocol(p.protocol, path + ".protocol", errs);
    // port 0 means "unset" (all ports) in our struct.
    if (p.port != 0 && !validPort(p.port)) errs.invalidInt(path + ".port", p.port, kPortRange);
    validateAppProtocol(p.appProtocol, path + ".appProtocol", errs);
  }
}

void validatePool(const IPAddressPool& p, FieldErrors& errs) {
  validateMeta(p.meta, /*label=*/false, errs);
  if (p.addresses.empty()) errs.required("spec.addresses");
  std::vector<std::pair<size_t, PoolRange>> seen;
  for (size_t i = 0; i < p.addresses.size(); ++i) {
    const std::string path = fmt::format("spec.addresses[{}]", i);
    auto r = parsePoolRange(p.addresses[i]);
    if (!r.ok()) {
      errs.invalidStr(path, p.addresses[i], r.error().message);
      continue;
    }
    for (const auto& [k, other] : seen)
      if (other.overlaps(*r)) {
        errs.invalidStr(
            path, p.addresses[i],
            fmt::format("overlaps with spec.addresses[{}] ({})", k, goQuote(p.addresses[k])));
        break;
      }
    seen.emplace_back(i, *r);
  }
}

bool validInterfaceName(const std::string& n) {
  // IFNAMSIZ - 1, and what dev_valid_name() refuses.
  if (n.empty() || n.size() > 15 || n == "." || n == "..") return false;
  return std::none_of(n.begin(), n.end(), [](unsigned char c) {
    return c == '/' || c == ':' || std::isspace(c) || c < 0x20;
  });
}

void validateL2(const L2Advertisement& a, FieldErrors& errs) {
  validateMeta(a.meta, /*label=*/false, errs);
  for (size_t i = 0; i < a.ipAddressPools.size(); ++i) {
    const std::string& n = a.ipAddressPools[i];
    const std::string path = fmt::format("spec.ipAddressPools[{}]", i);
    if (n.empty())
      errs.required(path, "must name an IPAddressPool");
    else
      for (const auto& msg : isDNS1123Subdomain(n)) errs.invalidStr(path, n, msg);
  }
  for (size_t i = 0; i < a.interfaces.size(); ++i)
    if (!validInterfaceName(a.interfaces[i]))
      errs.invalidStr(fmt::format("spec.interfaces[{}]", i), a.interfaces[i],
                      "must be a network interface name (1-15 characters, no '/', ':' or "
                      "whitespace)");
}

}  // namespace

Status validate(const Object& obj) {
  FieldErrors errs;
  switch (obj.index()) {
    case 0:
      validateService(std::get<Service>(obj), errs);
      break;
    case 1:
      validateEndpoints(std::get<Endpoints>(obj), errs);
      break;
    case 2:
      validateSlice(std::get<EndpointSlice>(obj), errs);
      break;
    case 3:
      validatePool(std::get<IPAddressPool>(obj), errs);
      break;
    default:
      validateL2(std::get<L2Advertisement>(obj), errs);
      break;
  }
  if (errs.empty()) return {};
  return Error{EINVAL, errs.message(kindOf(obj), metaOf(obj).name)};
}

}  // namespace svclb
