#include "model/kinds.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace svclb {

namespace {

constexpr std::string_view kServiceAliases[] = {"svc", "service", "services"};
constexpr std::string_view kEndpointsAliases[] = {"ep", "endpoints", "endpoint"};
constexpr std::string_view kSliceAliases[] = {"endpointslice", "endpointslices",
                                              "endpointslice.discovery.k8s.io",
                                              "endpointslices.discovery.k8s.io"};
constexpr std::string_view kPoolAliases[] = {
    "ipaddresspool", "ipaddresspools", "ipaddresspool.metallb.io", "ipaddresspools.metallb.io"};
constexpr std::string_view kL2Aliases[] = {"l2advertisement", "l2advertisements",
                                           "l2advertisement.metallb.io",
                                           "l2advertisements.metallb.io"};

constexpr std::array<KindInfo, 5> kKinds = {{
    {"Service", "service", "services", kServiceAliases, "v1", "svc"},
    {"Endpoints", "endpoints", "endpoints", kEndpointsAliases, "v1", "ep"},
    {"EndpointSlice", "endpointslice.discovery.k8s.io", "endpointslices.discovery.k8s.io",
     kSliceAliases, "discovery.k8s.io/v1", ""},
    {"IPAddressPool", "ipaddresspool.metallb.io", "ipaddresspools.metallb.io", kPoolAliases,
     "metallb.io/v1beta1", ""},
    {"L2Advertisement", "l2advertisement.metallb.io", "l2advertisements.metallb.io", kL2Aliases,
     "metallb.io/v1beta1", ""},
}};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::span<const KindInfo> kinds() { return kKinds; }

const KindInfo* kindInfo(std::string_view kind) {
  for (const auto& k : kKinds)
    if (k.kind == kind) return &k;
  return nullptr;
}

const KindInfo* resolveResource(std::string_view resource) {
  const std::string r = lower(resource);
  for (const auto& k : kKinds)
    if (std::find(k.aliases.begin(), k.aliases.end(), r) != k.aliases.end()) return &k;
  return nullptr;
}

std::optional<std::string> kindFromResource(std::string_view resource) {
  if (const KindInfo* k = resolveResource(resource)) return std::string(k->kind);
  return std::nullopt;
}

std::string resourceSingular(std::string_view kind) {
  if (const KindInfo* k = kindInfo(kind)) return std::string(k->singular);
  return lower(kind);
}

std::string resourcePlural(std::string_view kind) {
  if (const KindInfo* k = kindInfo(kind)) return std::string(k->plural);
  return lower(kind) + "s";
}

}  // namespace svclb
