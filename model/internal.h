// Helpers shared by the model's translation units. Not part of the public
// contract (model.h): the daemon and CLI must not include this.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"

namespace svclb::model_internal {

// Length of the valid UTF-8 sequence (RFC 3629) starting at s[i], a byte
// >= 0x80; 0 if none starts there.
size_t utf8Len(std::string_view s, size_t i);
// `s` with every byte that starts no valid UTF-8 sequence replaced by U+FFFD
// (what Go's encoding/json does to such bytes when kubectl sends an object).
std::string validUtf8(std::string_view s);

// ---- IPv4 -----------------------------------------------------------------

// Strict dotted quad (inet_pton: no leading zeros, no shorthand). Host order.
std::optional<uint32_t> parseIPv4(std::string_view s);

// Node-specific endpoint choice of one Service port (model/frontends.cpp):
// kube-proxy's topology-aware routing, and internalTrafficPolicy: Local
// (returns the frontend flags it implies: SVC_F_NO_LOCAL_EPS or 0).
enum class TopologyMode { None, SameZone, SameNode };
TopologyMode applyTopology(std::vector<BackendSpec>& backends, const std::string& nodeName,
                           const std::string& zone);
uint8_t applyInternalLocal(std::vector<BackendSpec>& backends, const std::string& nodeName);
bool isIPv6(std::string_view s);
bool isIP(std::string_view s);
std::optional<Ip6> parseIPv6(std::string_view s);

// An address of either family as one number (IPv4 in the low 32 bits), for
// ClusterIP allocation over a range of either family.
using u128 = unsigned __int128;
struct IpAddr {
  bool v6 = false;
  u128 v = 0;
  bool operator<(const IpAddr& o) const { return v6 != o.v6 ? v6 < o.v6 : v < o.v; }
  bool operator==(const IpAddr& o) const { return v6 == o.v6 && v == o.v; }
};
std::optional<IpAddr> parseIP(std::string_view s);

// svclb.io/weights on an Endpoints or EndpointSlice: "IP=WEIGHT,IP=WEIGHT"
// (either family; weights 1..65535; unlisted endpoints weigh 1). nullopt
// if malformed.
std::optional<std::map<IpAddr, uint16_t>> parseWeights(std::string_view s);
std::string formatIP(const IpAddr& a);
Ip6 toIp6(u128 v);

// One family's Service CIDR as kube-apiserver's bitmap allocator sees it
// (pkg/registry/core/service/ipallocator): addresses [first, end) may be
// ClusterIPs (not the network address, not IPv4's broadcast address, at
// most the first 65,536 addresses of an IPv6 range); `offset` addresses
// from `first` on are the static band (KEP-3070).
struct ServiceRange {
  bool v6 = false;
  u128 base = 0;
  int prefix = 0;
  u128 first = 0, end = 0, offset = 0;
  std::string text;  // "10.96.0.0/12", as the API's messages print it
  bool contains(const IpAddr& a) const { return a.v6 == v6 && a.v >= first && a.v < end; }
};
std::optional<ServiceRange> parseServiceRange(std::string_view cidr);
// svclbd --service-cidr: one CIDR, or one per family ("10.96.0.0/12,
// fd00:10:96::/112"), primary family first. nullopt when malformed, two of
// one family, or more than two.
std::optional<std::vector<ServiceRange>> parseServiceRanges(std::string_view cidrs);

struct Cidr4 {
  uint32_t base = 0;  // host order, masked
  int prefix = 0;
  uint32_t broadcast() const { return prefix == 0 ? 0xffffffffu : base | (0xffffffffu >> prefix); }
  bool contains(uint32_t ip) const {
    uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
    return (ip & mask) == base;
  }
};
std::optional<Cidr4> parseCidr4(std::string_view s);
// Any family, for loadBalancerSourceRanges.
bool isCidr(std::string_view s);

// One entry of IPAddressPool.spec.addresses as MetalLB reads it: a CIDR
// ("192.168.10.0/24", host bits ignored) or an inclusive range
// ("192.168.9.1-192.168.9.5", spaces around the dash allowed), either family.
struct PoolRange {
  bool v6 = false;
  // Big-endian address bytes; IPv4 in the last four.
  std::array<uint8_t, 16> first{}, last{};
  uint32_t first4() const { return load4(first); }
  uint32_t last4() const { return load4(last); }
  bool overlaps(const PoolRange& o) const {
    return v6 == o.v6 && !(last < o.first || o.last < first);
  }

 private:
  static uint32_t load4(const std::array<uint8_t, 16>& a) {
    return uint32_t{a[12]} << 24 | uint32_t{a[13]} << 16 | uint32_t{a[14]} << 8 | a[15];
  }
};
// Error message = the field error detail.
Result<PoolRange> parsePoolRange(std::string_view s);

// "a, b,c" -> {"a","b","c"} (trimmed, empty items dropped).
std::vector<std::string> splitIPList(std::string_view s);

// ---- Field errors, formatted as k8s.io/apimachinery field.Error ----------

// A []string as the API server renders a field error's value: ["a","b"]
std::string jsonStringList(const std::vector<std::string>& v);
// The items of that: "a", "b"
std::string goQuoteJoined(const std::vector<std::string>& v);

class FieldErrors {
 public:
  void invalid(const std::string& path, const std::string& goValue, const std::string& detail);
  void invalidStr(const std::string& path, std::string_view value, const std::string& detail) {
    invalid(path, goQuote(value), detail);
  }
  void invalidInt(const std::string& path, int64_t value, const std::string& detail) {
    invalid(path, std::to_string(value), detail);
  }
  void required(const std::string& path, const std::string& detail = "");
  void forbidden(const std::string& path, const std::string& detail);
  void duplicate(const std::string& path, const std::string& goValue);
  void notSupported(const std::string& path, std::string_view value,
                    const std::vector<std::string>& supported);
  void internal(const std::string& path, const std::string& detail);

  bool empty() const { return errs_.empty(); }
  const std::vector<std::string>& list() const { return errs_; }
  void append(const FieldErrors& o) { errs_.insert(errs_.end(), o.errs_.begin(), o.errs_.end()); }

  // A preformatted "path: Type: detail" line (Too many, ...).
  void add(std::string s);

  // `The Service "web" is invalid: <err>` or the multi-line form kubectl
  // prints for several causes: `...is invalid: \n* a\n* b`.
  std::string message(std::string_view kind, std::string_view name) const;

 private:
  std::vector<std::string> errs_;
};

// ---- JSON decoding (shared by parseManifests and fromJson) ----------------

// Decodes one Kubernetes-shaped object. On a type mismatch returns the
// kubectl client-side validation text, e.g.
//   ValidationError(Service.spec.ports[0].port): invalid type for
//   io.k8s.api.core.v1.ServicePort.port: got "string", expected "integer"
// Kind/apiVersion must already be known to be one of ours.
Result<Object> decodeObject(const nlohmann::json& j, const std::string& kind);

// The fields of a manifest's v1 Service / Endpoints or discovery.k8s.io/v1
// EndpointSlice (`kind`) that the Kubernetes API does not have, one
// kubectl validation error each, e.g.
//   ValidationError(Service.spec): unknown field "sessionAfinity" in
//   io.k8s.api.core.v1.ServiceSpec
// (model/known_fields.cpp; the API's fields are generated from its OpenAPI
// document). Empty for other kinds.
std::vector<std::string> unknownFields(const nlohmann::json& doc, const std::string& kind);

// "Service" for apiVersion v1 kind Service etc.; nullopt when not ours.
std::optional<std::string> recognizeKind(const std::string& apiVersion, const std::string& kind);

// Everything but uid and creationTimestamp, for unchanged/configured.
bool sameContent(const Object& a, const Object& b);

// kubectl's resource names (model/kinds.h), as the model's files call them.
using svclb::resourcePlural;
using svclb::resourceSingular;

}  // namespace svclb::model_internal
