// The one table of the object kinds svclb handles and the names kubectl
// gives them: what a user may type for a resource (svcctl get/delete
// arguments), and the resource names in messages ("service/web created",
// `services "web" not found`). Shared by svcctl (cli/) and svclbd.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace svclb {

struct KindInfo {
  std::string_view kind;      // "EndpointSlice"
  std::string_view singular;  // kubectl's qualified singular: "endpointslice.discovery.k8s.io"
  std::string_view plural;    // "endpointslices.discovery.k8s.io"
  // Every lower-case spelling a user may type for it (short names, singular
  // and plural, with and without the API group).
  std::span<const std::string_view> aliases;
  std::string_view apiVersion;  // "discovery.k8s.io/v1"
  std::string_view shortName;   // kubectl's short name ("svc"), or ""
};

// Service, Endpoints, EndpointSlice, IPAddressPool, L2Advertisement.
std::span<const KindInfo> kinds();
// The entry of a Kind ("Service"); nullptr for a kind svclb does not handle.
const KindInfo* kindInfo(std::string_view kind);
// The entry for what a user typed ("svc", "Services", "ep",
// "endpointslices.discovery.k8s.io", "l2advertisement", ...; any case);
// nullptr if unknown.
const KindInfo* resolveResource(std::string_view resource);
// The Kind for what a user typed; nullopt if unknown.
std::optional<std::string> kindFromResource(std::string_view resource);

// kubectl's resource names for a Kind: "service", "endpoints",
// "endpointslice.discovery.k8s.io" / "services", ...; for a kind svclb does
// not handle, its lower-cased name (plural: with an "s").
std::string resourceSingular(std::string_view kind);
std::string resourcePlural(std::string_view kind);

}  // namespace svclb
