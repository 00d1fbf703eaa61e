// The warnings kube-apiserver sends back on a write of an object (kubectl
// prints each as "Warning: ..." on stderr): the Service strategy's
// GetWarningsForService, the Endpoints and EndpointSlice strategies' address
// checks, in the API's words (k8s.io/kubernetes v1.37 pkg/api/service,
// pkg/registry/core/endpoint, pkg/registry/discovery/endpointslice and
// k8s.io/apimachinery's GetWarningsForIP / GetWarningsForCIDR).
#include <arpa/inet.h>
#include <fmt/format.h>

#include "model/internal.h"
#include "model/model.h"

namespace svclb {

using namespace model_internal;

namespace {

// An address the API takes with a warning: IPv6 not in RFC 5952 form.
// (Leading zeros and IPv4-mapped IPv6 addresses, which the API warns about
// on legacy values, are refused by validation: strict IP validation, on by
// default since v1.36, and svclb's.)
void ipWarnings(const std::string& path, const std::string& value, std::vector<std::string>& out) {
  if (value.find(':') == std::string::npos) return;
  auto a = parseIPv6(value);
  if (!a) return;
  const std::string canon = formatIPv6(*a);
  if (canon != value)
    out.push_back(fmt::format("{}: IPv6 address {} should be in RFC 5952 canonical format ({})",
                              path, goQuote(value), goQuote(canon)));
}

// loadBalancerSourceRanges: an address with bits set past the prefix is
// ambiguous (a network or one host?); IPv6 not in RFC 5952 form.
void cidrWarnings(const std::string& path, const std::string& value,
                  std::vector<std::string>& out) {
  const auto slash = value.find('/');
  if (slash == std::string::npos) return;
  const std::string addrText = value.substr(0, slash), lenText = value.substr(slash + 1);
  if (lenText.empty() || lenText.size() > 3 ||
      lenText.find_first_not_of("0123456789") != std::string::npos)
    return;
  const int len = std::stoi(lenText);
  const bool v6 = addrText.find(':') != std::string::npos;
  const auto a = v6 ? parseIPv6(addrText) : std::nullopt;
  const auto a4 = v6 ? std::nullopt : parseIPv4(addrText);
  if ((v6 && (!a || len > 128)) || (!v6 && (!a4 || len > 32))) return;
  std::string network, host;
  if (v6) {
    const Ip6 masked = maskIPv6(*a, len);
    network = fmt::format("{}/{}", formatIPv6(masked), len);
    host = fmt::format("{}/128", formatIPv6(*a));
    if (masked != *a) {
      out.push_back(
          fmt::format("{}: CIDR value {} is ambiguous in this context (should be {} or {}?)", path,
                      goQuote(value), goQuote(network), goQuote(host)));
      return;
    }
    if (fmt::format("{}/{}", formatIPv6(*a), len) != value)
      out.push_back(
          fmt::format("{}: IPv6 CIDR value {} should be in RFC 5952 canonical format ({})", path,
                      goQuote(value), goQuote(fmt::format("{}/{}", formatIPv6(*a), len))));
    return;
  }
  const uint32_t mask = len == 0 ? 0 : 0xffffffffu << (32 - len);
  if ((*a4 & mask) != *a4)
    out.push_back(
        fmt::format("{}: CIDR value {} is ambiguous in this context (should be {} or {}?)", path,
                    goQuote(value), goQuote(fmt::format("{}/{}", formatIPv4(*a4 & mask), len)),
                    goQuote(fmt::format("{}/32", formatIPv4(*a4)))));
}

bool headless(const Service& s) { return s.type == "ClusterIP" && s.clusterIP == "None"; }

std::vector<std::string> serviceWarnings(const Service& s) {
  std::vector<std::string> out;
  if (s.meta.annotations.contains("service.kubernetes.io/topology-aware-hints"))
    out.push_back(
        "annotation service.kubernetes.io/topology-aware-hints is deprecated, please use "
        "service.kubernetes.io/topology-mode instead");
  if (!s.clusterIP.empty() && s.clusterIP != "None")
    for (size_t i = 0; i < s.clusterIPs.size(); ++i)
      ipWarnings(fmt::format("spec.clusterIPs[{}]", i), s.clusterIPs[i], out);
  if (headless(s)) {
    if (!s.loadBalancerIP.empty())
      out.push_back("spec.loadBalancerIP is ignored for headless services");
    if (!s.externalIPs.empty()) out.push_back("spec.externalIPs is ignored for headless services");
    if (s.sessionAffinity != "None")
      out.push_back("spec.SessionAffinity is ignored for headless services");
  }
  for (size_t i = 0; i < s.externalIPs.size(); ++i)
    ipWarnings(fmt::format("spec.externalIPs[{}]", i), s.externalIPs[i], out);
  if (!s.externalIPs.empty() && !headless(s) && s.type != "ExternalName")
    out.push_back(
        "spec.externalIPs is deprecated and may no longer be implemented in some clusters");
  if (!s.loadBalancerIP.empty()) ipWarnings("spec.loadBalancerIP", s.loadBalancerIP, out);
  for (size_t i = 0; i < s.loadBalancerSourceRanges.size(); ++i)
    cidrWarnings(fmt::format("spec.loadBalancerSourceRanges[{}]", i), s.loadBalancerSourceRanges[i],
                 out);
  if (s.type == "ExternalName" && !s.externalIPs.empty())
    out.push_back("spec.externalIPs is ignored when spec.type is \"ExternalName\"");
  if (s.type != "ExternalName" && !s.externalName.empty())
    out.push_back("spec.externalName is ignored when spec.type is not \"ExternalName\"");
  if (s.trafficDistribution == "PreferClose")
    out.push_back(
        "spec.trafficDistribution: \"PreferClose\" is deprecated; use \"PreferSameZone\"");
  return out;
}

std::vector<std::string> endpointsWarnings(const Endpoints& e) {
  std::vector<std::string> out;
  // The Endpoints controller's own objects are not checked (it writes
  // addresses in their canonical form).
  auto by = e.meta.labels.find("endpoints.kubernetes.io/managed-by");
  if (by != e.meta.labels.end() && by->second == "endpoint-controller") return out;
  for (size_t i = 0; i < e.subsets.size(); ++i) {
    for (size_t j = 0; j < e.subsets[i].addresses.size(); ++j)
      ipWarnings(fmt::format("subsets[{}].addresses[{}].ip", i, j), e.subsets[i].addresses[j].ip,
                 out);
    for (size_t j = 0; j < e.subsets[i].notReadyAddresses.size(); ++j)
      ipWarnings(fmt::format("subsets[{}].notReadyAddresses[{}].ip", i, j),
                 e.subsets[i].notReadyAddresses[j].ip, out);
  }
  return out;
}

std::vector<std::string> sliceWarnings(const EndpointSlice& s, bool create) {
  std::vector<std::string> out;
  if (create && s.addressType == "FQDN")
    out.push_back("spec.addressType: FQDN endpoints are deprecated");
  auto by = s.meta.labels.find("endpointslice.kubernetes.io/managed-by");
  if (by != s.meta.labels.end() && (by->second == "endpointslice-controller.k8s.io" ||
                                    by->second == "endpointslicemirroring-controller.k8s.io"))
    return out;
  if (s.addressType == "FQDN") return out;
  for (size_t i = 0; i < s.endpoints.size(); ++i)
    for (size_t j = 0; j < s.endpoints[i].addresses.size(); ++j)
      ipWarnings(fmt::format("endpoints[{}].addresses[{}]", i, j), s.endpoints[i].addresses[j],
                 out);
  return out;
}

}  // namespace

std::vector<std::string> apiWarnings(const Object& obj, bool create) {
  if (const auto* s = std::get_if<Service>(&obj)) return serviceWarnings(*s);
  if (const auto* e = std::get_if<Endpoints>(&obj)) return endpointsWarnings(*e);
  if (const auto* s = std::get_if<EndpointSlice>(&obj)) return sliceWarnings(*s, create);
  return {};
}

}  // namespace svclb
