// Object helpers: kind/meta accessors, equality, kubectl resource names,
// IPv4 parsing and field-error formatting shared by the other files.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <tuple>

#include "model/internal.h"
#include "model/model.h"

namespace svclb {

std::string goQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f)
          out += fmt::format("\\x{:02x}", c);
        else
          out += static_cast<char>(c);
    }
  }
  out += "\"";
  return out;
}

std::string kindOf(const Object& obj) {
  switch (obj.index()) {
    case 0:
      return "Service";
    case 1:
      return "Endpoints";
    case 2:
      return "EndpointSlice";
    case 3:
      return "IPAddressPool";
    default:
      return "L2Advertisement";
  }
}

const ObjectMeta& metaOf(const Object& obj) {
  return std::visit([](const auto& o) -> const ObjectMeta& { return o.meta; }, obj);
}

bool operator==(const ObjectMeta& a, const ObjectMeta& b) {
  return std::tie(a.name, a.ns, a.labels, a.annotations, a.uid, a.creationTimestamp) ==
         std::tie(b.name, b.ns, b.labels, b.annotations, b.uid, b.creationTimestamp);
}

bool operator==(const Service& a, const Service& b) {
  return a.meta == b.meta &&
         std::tie(a.type, a.clusterIP, a.clusterIPs, a.ipFamilies, a.ipFamilyPolicy, a.selector,
                  a.ports, a.sessionAffinity, a.sessionAffinityTimeoutSeconds, a.externalIPs,
                  a.externalName, a.externalTrafficPolicy, a.internalTrafficPolicy,
                  a.trafficDistribution, a.loadBalancerIP, a.loadBalancerClass,
                  a.loadBalancerSourceRanges, a.healthCheckNodePort, a.loadBalancerIngressIPs,
                  a.loadBalancerProxyIPs, a.loadBalancerIngressHostnames, a.loadBalancerPool,
                  a.publishNotReadyAddresses, a.allocateLoadBalancerNodePorts) ==
             std::tie(b.type, b.clusterIP, b.clusterIPs, b.ipFamilies, b.ipFamilyPolicy, b.selector,
                      b.ports, b.sessionAffinity, b.sessionAffinityTimeoutSeconds, b.externalIPs,
                      b.externalName, b.externalTrafficPolicy, b.internalTrafficPolicy,
                      b.trafficDistribution, b.loadBalancerIP, b.loadBalancerClass,
                      b.loadBalancerSourceRanges, b.healthCheckNodePort, b.loadBalancerIngressIPs,
                      b.loadBalancerProxyIPs, b.loadBalancerIngressHostnames, b.loadBalancerPool,
                      b.publishNotReadyAddresses, b.allocateLoadBalancerNodePorts);
}

bool operator==(const EndpointSubset& a, const EndpointSubset& b) {
  return std::tie(a.addresses, a.notReadyAddresses, a.ports) ==
         std::tie(b.addresses, b.notReadyAddresses, b.ports);
}

bool operator==(const Endpoints& a, const Endpoints& b) {
  return a.meta == b.meta && a.subsets == b.subsets;
}

bool operator==(const EndpointConditions& a, const EndpointConditions& b) {
  return std::tie(a.ready, a.serving, a.terminating) == std::tie(b.ready, b.serving, b.terminating);
}

bool operator==(const SliceEndpoint& a, const SliceEndpoint& b) {
  return a.conditions == b.conditions &&
         std::tie(a.addresses, a.hostname, a.nodeName, a.zone, a.targetRefKind, a.targetRefName,
                  a.targetRefNamespace, a.zoneHints, a.nodeHints) ==
             std::tie(b.addresses, b.hostname, b.nodeName, b.zone, b.targetRefKind, b.targetRefName,
                      b.targetRefNamespace, b.zoneHints, b.nodeHints);
}

bool operator==(const EndpointSlice& a, const EndpointSlice& b) {
  return a.meta == b.meta && a.addressType == b.addressType && a.endpoints == b.endpoints &&
         a.ports == b.ports;
}

bool operator==(const IPAddressPool& a, const IPAddressPool& b) {
  return a.meta == b.meta && std::tie(a.addresses, a.autoAssign, a.avoidBuggyIPs) ==
                                 std::tie(b.addresses, b.autoAssign, b.avoidBuggyIPs);
}

bool operator==(const L2Advertisement& a, const L2Advertisement& b) {
  return a.meta == b.meta && a.ipAddressPools == b.ipAddressPools && a.interfaces == b.interfaces;
}

std::string describeOutcome(const ApplyOutcome& o) {
  std::string res = resourceSingular(o.kind);
  switch (o.action) {
    case ApplyAction::Created:
      return res + "/" + o.name + " created";
    case ApplyAction::Configured:
      return res + "/" + o.name + " configured";
    case ApplyAction::Unchanged:
      return res + "/" + o.name + " unchanged";
    case ApplyAction::Deleted:
      return res + " \"" + o.name + "\" deleted";
  }
  return res + "/" + o.name;
}

namespace model_internal {

std::optional<uint32_t> parseIPv4(std::string_view s) {
  if (s.empty() || s.size() > 15) return std::nullopt;
  std::string str(s);
  in_addr a{};
  if (inet_pton(AF_INET, str.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

bool isIPv6(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  std::string str(s);
  in6_addr a{};
  return inet_pton(AF_INET6, str.c_str(), &a) == 1;
}

bool isIP(std::string_view s) { return parseIPv4(s).has_value() || isIPv6(s); }

std::optional<Ip6> parseIPv6(std::string_view s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  std::string str(s);
  Ip6 a{};
  if (inet_pton(AF_INET6, str.c_str(), a.data()) != 1) return std::nullopt;
  return a;
}

Ip6 toIp6(u128 v) {
  Ip6 a{};
  for (int i = 15; i >= 0; --i, v >>= 8) a[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
  return a;
}

std::optional<IpAddr> parseIP(std::string_view s) {
  if (auto v4 = parseIPv4(s)) return IpAddr{false, *v4};
  auto v6 = parseIPv6(s);
  if (!v6) return std::nullopt;
  u128 v = 0;
  for (uint8_t b : *v6) v = v << 8 | b;
  return IpAddr{true, v};
}

std::string formatIP(const IpAddr& a) {
  return a.v6 ? formatIPv6(toIp6(a.v)) : formatIPv4(static_cast<uint32_t>(a.v));
}

namespace {
std::string_view trimSpacesOf(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

std::optional<int> parsePrefix(std::string_view p, int max) {
  if (p.empty() || p.size() > 3) return std::nullopt;
  int v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (p.size() > 1 && p[0] == '0') return std::nullopt;
  if (v > max) return std::nullopt;
  return v;
}
}  // namespace

std::optional<Cidr4> parseCidr4(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = parseIPv4(s.substr(0, slash));
  auto prefix = parsePrefix(s.substr(slash + 1), 32);
  if (!ip || !prefix) return std::nullopt;
  uint32_t mask = *prefix == 0 ? 0 : 0xffffffffu << (32 - *prefix);
  return Cidr4{*ip & mask, *prefix};
}

std::optional<ServiceRange> parseServiceRange(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = parseIP(s.substr(0, slash));
  if (!ip) return std::nullopt;
  auto prefix = parsePrefix(s.substr(slash + 1), ip->v6 ? 128 : 32);
  if (!prefix) return std::nullopt;
  ServiceRange r;
  r.v6 = ip->v6;
  r.prefix = *prefix;
  const int hostBits = (ip->v6 ? 128 : 32) - *prefix;
  const u128 hostMask = hostBits >= 128 ? ~u128{0} : (u128{1} << hostBits) - 1;
  r.base = ip->v ^ (ip->v & hostMask);
  // netutils.RangeSize saturates; the band and the bitmap only need a bound.
  const u128 size = hostBits >= 64 ? u128{1} << 64 : u128{1} << hostBits;
  u128 max = ip->v6 ? std::min<u128>(size, 65536) : size - 1;  // IPv4: no broadcast
  r.first = r.base + 1;
  max = max > 0 ? max - 1 : 0;  // nor the network address
  r.end = r.first + max;
  r.offset = size <= 16 ? 0 : std::clamp<u128>(size / 16, 16, 256);
  r.text = fmt::format("{}/{}", formatIP({r.v6, r.base}), r.prefix);
  return r;
}

std::optional<std::vector<ServiceRange>> parseServiceRanges(std::string_view cidrs) {
  std::vector<ServiceRange> out;
  while (true) {
    const size_t comma = cidrs.find(',');
    auto r = parseServiceRange(trimSpacesOf(cidrs.substr(0, comma)));
    if (!r) return std::nullopt;
    if (!out.empty() && out.front().v6 == r->v6) return std::nullopt;
    out.push_back(std::move(*r));
    if (comma == std::string_view::npos) break;
    cidrs.remove_prefix(comma + 1);
  }
  if (out.size() > 2) return std::nullopt;
  return out;
}

bool isCidr(std::string_view s) {
  if (parseCidr4(s)) return true;
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return false;
  return isIPv6(s.substr(0, slash)) && parsePrefix(s.substr(slash + 1), 128).has_value();
}

namespace {
std::string_view trimSpaces(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Either family into 16 bytes (IPv4 in the last four); nullopt if neither.
std::optional<std::pair<bool, std::array<uint8_t, 16>>> parseAnyIP(std::string_view s) {
  std::array<uint8_t, 16> b{};
  if (auto v4 = parseIPv4(s)) {
    b[12] = static_cast<uint8_t>(*v4 >> 24);
    b[13] = static_cast<uint8_t>(*v4 >> 16);
    b[14] = static_cast<uint8_t>(*v4 >> 8);
    b[15] = static_cast<uint8_t>(*v4);
    return std::pair{false, b};
  }
  if (!isIPv6(s)) return std::nullopt;
  std::string str(s);
  in6_addr a{};
  inet_pton(AF_INET6, str.c_str(), &a);
  std::copy(std::begin(a.s6_addr), std::end(a.s6_addr), b.begin());
  return std::pair{true, b};
}
}  // namespace

Result<PoolRange> parsePoolRange(std::string_view s) {
  PoolRange r;
  const size_t dash = s.find('-');
  if (dash == std::string_view::npos) {
    const size_t slash = s.find('/');
    std::optional<std::pair<bool, std::array<uint8_t, 16>>> ip;
    std::optional<int> prefix;
    if (slash != std::string_view::npos) {
      ip = parseAnyIP(s.substr(0, slash));
      if (ip) prefix = parsePrefix(s.substr(slash + 1), ip->first ? 128 : 32);
    }
    if (!ip || !prefix)
      return Error{EINVAL,
                   "must be a CIDR (e.g. 192.168.10.0/24) or an IP range (e.g. "
                   "192.168.9.1-192.168.9.5)"};
    r.v6 = ip->first;
    const int hostBits = (r.v6 ? 128 : 32) - *prefix;
    r.first = r.last = ip->second;
    for (int bit = 0; bit < hostBits; ++bit) {
      const int byte = 15 - bit / 8;
      const uint8_t m = static_cast<uint8_t>(1u << (bit % 8));
      r.first[byte] &= static_cast<uint8_t>(~m);
      r.last[byte] |= m;
    }
    return r;
  }
  const std::string_view a = trimSpaces(s.substr(0, dash)), b = trimSpaces(s.substr(dash + 1));
  auto start = parseAnyIP(a);
  if (!start) return Error{EINVAL, "invalid start IP " + goQuote(a)};
  auto end = parseAnyIP(b);
  if (!end) return Error{EINVAL, "invalid end IP " + goQuote(b)};
  if (start->first != end->first)
    return Error{EINVAL, "start and end IP must be of the same IP family"};
  if (end->second < start->second)
    return Error{EINVAL, fmt::format("start IP {} is after the end IP {}", goQuote(a), goQuote(b))};
  r.v6 = start->first;
  r.first = start->second;
  r.last = end->second;
  return r;
}

std::vector<std::string> splitIPList(std::string_view s) {
  std::vector<std::string> out;
  while (true) {
    const size_t comma = s.find(',');
    std::string_view item = trimSpaces(s.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

// Each of `v` as Go's %q, joined by ", ".
std::string goQuoteJoined(const std::vector<std::string>& v) {
  std::vector<std::string> quoted;
  quoted.reserve(v.size());
  for (const auto& x : v) quoted.push_back(goQuote(x));
  return fmt::format("{}", fmt::join(quoted, ", "));
}

std::string jsonStringList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    appendJsonString(out, v[i]);
  }
  return out + "]";
}

void FieldErrors::add(std::string s) {
  // apimachinery's aggregate de-duplicates identical messages.
  if (std::find(errs_.begin(), errs_.end(), s) == errs_.end()) errs_.push_back(std::move(s));
}

void FieldErrors::invalid(const std::string& path, const std::string& goValue,
                          const std::string& detail) {
  add(path + ": Invalid value: " + goValue + (detail.empty() ? "" : ": " + detail));
}

void FieldErrors::required(const std::string& path, const std::string& detail) {
  add(path + ": Required value" + (detail.empty() ? "" : ": " + detail));
}

void FieldErrors::forbidden(const std::string& path, const std::string& detail) {
  add(path + ": Forbidden" + (detail.empty() ? "" : ": " + detail));
}

void FieldErrors::duplicate(const std::string& path, const std::string& goValue) {
  add(path + ": Duplicate value: " + goValue);
}

void FieldErrors::notSupported(const std::string& path, std::string_view value,
                               const std::vector<std::string>& supported) {
  std::string s = path + ": Unsupported value: " + goQuote(value);
  if (!supported.empty()) {
    s += ": supported values: " + goQuoteJoined(supported);
  }
  add(std::move(s));
}

void FieldErrors::internal(const std::string& path, const std::string& detail) {
  add(path + ": Internal error: " + detail);
}

std::string FieldErrors::message(std::string_view kind, std::string_view name) const {
  std::string head = fmt::format("The {} {} is invalid", kind, goQuote(name));
  if (errs_.empty()) return head;
  if (errs_.size() == 1) return head + ": " + errs_[0];
  std::string s = head + ": ";
  for (const auto& e : errs_) s += "\n* " + e;
  return s;
}

}  // namespace model_internal

std::string formatIPv4(uint32_t ip) {
  return fmt::format("{}.{}.{}.{}", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

std::string formatIPv6(const Ip6& a) {
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(AF_INET6, a.data(), buf, sizeof buf)) return "?";
  return buf;
}

Ip6 maskIPv6(Ip6 a, int prefix) {
  for (size_t i = 0; i < a.size(); ++i) {
    const int bits = std::clamp(prefix - static_cast<int>(i) * 8, 0, 8);
    a[i] &= static_cast<uint8_t>(0xff00u >> bits);
  }
  return a;
}

std::string joinHostPort(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

const char* protoName(uint8_t proto) { return proto == 6 ? "TCP" : proto == 17 ? "UDP" : "?"; }

}  // namespace svclb
