#include <algorithm>
#include <cctype>

#include "cli/format.h"

namespace svclb::cli {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::optional<ResourceType> resolveResource(const std::string& arg) {
  std::string a = lower(arg);
  if (a == "svc" || a == "service" || a == "services") return ResourceType{"Service", "service"};
  if (a == "ep" || a == "endpoints" || a == "endpoint")
    return ResourceType{"Endpoints", "endpoints"};
  if (a == "endpointslice" || a == "endpointslices" || a == "endpointslice.discovery.k8s.io" ||
      a == "endpointslices.discovery.k8s.io")
    return ResourceType{"EndpointSlice", "endpointslice.discovery.k8s.io"};
  if (a == "ipaddresspool" || a == "ipaddresspools" || a == "ipaddresspool.metallb.io" ||
      a == "ipaddresspools.metallb.io")
    return ResourceType{"IPAddressPool", "ipaddresspool.metallb.io"};
  if (a == "l2advertisement" || a == "l2advertisements" || a == "l2advertisement.metallb.io" ||
      a == "l2advertisements.metallb.io")
    return ResourceType{"L2Advertisement", "l2advertisement.metallb.io"};
  return std::nullopt;
}

std::string qualifiedName(const std::string& kind) {
  if (kind == "Service") return "service";
  if (kind == "Endpoints") return "endpoints";
  if (kind == "EndpointSlice") return "endpointslice.discovery.k8s.io";
  if (kind == "IPAddressPool") return "ipaddresspool.metallb.io";
  if (kind == "L2Advertisement") return "l2advertisement.metallb.io";
  return lower(kind);
}

}  // namespace svclb::cli
