// A Service's IP families and ClusterIPs, as kube-apiserver sets them
// (pkg/registry/core/service/storage/alloc.go: initIPFamilyFields,
// allocClusterIPs; pkg/apis/core/validation: validateUpgradeDowngrade*),
// with the store's deterministic choice of address (model/store.cpp).
//
// The cluster's families are svclbd --service-cidr's, the first one the
// primary. ipFamilyPolicy defaults to SingleStack (RequireDualStack for a
// headless Service without a selector), ipFamilies to the families of the
// given clusterIPs and then to the primary family; PreferDualStack and
// RequireDualStack add the other family when the cluster has it
// (RequireDualStack on a single-stack cluster is an error). Each family
// without an address gets one from its range. On update, clusterIPs[0] is
// immutable, a secondary address is released only by SingleStack, and, as
// kubectl apply leaves fields it does not send alone, an update without
// clusterIPs, ipFamilies or ipFamilyPolicy keeps the stored ones.
#include "model/cluster_ips.h"

#include <fmt/format.h>

#include <algorithm>

namespace svclb::model_internal {

namespace {

const char* familyName(bool v6) { return v6 ? "IPv6" : "IPv4"; }

bool headless(const Service& s) { return s.clusterIP == "None"; }

bool sameList(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return a == b;
}

}  // namespace

ClusterIPAllocator::ClusterIPAllocator(const StoreConfig& cfg) : clusterDNS_(cfg.clusterDNS) {
  if (cfg.clusterDNS6 != Ip6{}) clusterDNS6_ = parseIP(formatIPv6(cfg.clusterDNS6));
  if (auto r = parseServiceRanges(cfg.serviceCIDR)) ranges_ = std::move(*r);
  rangeText_ = cfg.serviceCIDR;
}

const ServiceRange* ClusterIPAllocator::range(bool v6) const {
  for (const auto& r : ranges_)
    if (r.v6 == v6) return &r;
  return nullptr;
}

void ClusterIPAllocator::hold(const Service& s, const Key& key) {
  for (const auto& ip : s.clusterIPs)
    if (auto a = parseIP(ip)) used_[*a] = key;
}

void ClusterIPAllocator::request(const Service& s) {
  for (const auto& ip : s.clusterIPs)
    if (auto a = parseIP(ip)) requested_.insert(*a);
  if (s.clusterIPs.empty())
    if (auto a = parseIP(s.clusterIP)) requested_.insert(*a);
}

void ClusterIPAllocator::commit(const Service* old, const Service& s, const Key& key) {
  if (old)
    for (const auto& ip : old->clusterIPs)
      if (auto a = parseIP(ip)) {
        auto it = used_.find(*a);
        if (it != used_.end() && it->second == key) used_.erase(it);
      }
  hold(s, key);
}

std::optional<IpAddr> ClusterIPAllocator::next(const ServiceRange& r) const {
  std::optional<IpAddr> got;
  auto scan = [&](u128 from, u128 to) {
    for (u128 v = from; v < to && !got; ++v) {
      IpAddr a{r.v6, v};
      if (used_.count(a) || requested_.count(a)) continue;
      if (!r.v6 && v == clusterDNS_) continue;
      if (r.v6 && clusterDNS6_ && a == *clusterDNS6_) continue;
      got = a;
    }
  };
  const u128 upper = std::min(r.first + r.offset, r.end);
  scan(upper, r.end);    // the upper band first
  scan(r.first, upper);  // then the static band
  return got;
}

Status ClusterIPAllocator::assign(Service& s, const Service* old, const Key& key) const {
  FieldErrors fe;
  auto invalid = [&](const std::string& path, const std::string& value, const std::string& why) {
    fe.invalid(path, value, why);
    return Error{EINVAL, fe.message("Service", s.meta.name)};
  };
  if (s.type == "ExternalName") {
    s.clusterIP.clear();
    s.clusterIPs.clear();
    s.ipFamilies.clear();
    s.ipFamilyPolicy.clear();
    return {};
  }
  if (old && old->type == "ExternalName") old = nullptr;  // a create, as far as IPs go
  if (!s.clusterIP.empty() && s.clusterIPs.empty()) s.clusterIPs = {s.clusterIP};
  if (old) {
    // kubectl apply leaves what it does not send alone.
    if (s.clusterIPs.empty()) s.clusterIPs = old->clusterIPs;
    if (s.ipFamilies.empty() && headless(s) == headless(*old)) s.ipFamilies = old->ipFamilies;
    if (s.ipFamilyPolicy.empty()) s.ipFamilyPolicy = old->ipFamilyPolicy;
    // A dual-stack policy whose manifest names one family (or one address)
    // got the second one from the allocator: re-applying it is no change,
    // as kubectl apply's patch against its last-applied manifest leaves the
    // allocated second family alone (only SingleStack releases it).
    if (s.ipFamilyPolicy != "SingleStack" && !s.ipFamilyPolicy.empty()) {
      if (s.ipFamilies.size() == 1 && old->ipFamilies.size() == 2 &&
          s.ipFamilies[0] == old->ipFamilies[0])
        s.ipFamilies = old->ipFamilies;
      if (s.clusterIPs.size() == 1 && old->clusterIPs.size() == 2 &&
          s.clusterIPs[0] == old->clusterIPs[0])
        s.clusterIPs = old->clusterIPs;
    }
    s.clusterIP = s.clusterIPs.empty() ? "" : s.clusterIPs[0];
    // Update: clusterIPs[0] never changes; a secondary address neither.
    if (!(headless(*old) && headless(s))) {
      const auto& was = old->clusterIPs;
      const auto& now = s.clusterIPs;
      if (was.size() == now.size()) {
        for (size_t i = 0; i < was.size(); ++i)
          if (was[i] != now[i])
            fe.invalid(fmt::format("spec.clusterIPs[{}]", i), jsonStringList(now),
                       "may not change once set");
      } else if (!was.empty() && !now.empty() && was[0] != now[0]) {
        fe.invalid("spec.clusterIPs[0]", jsonStringList(now), "may not change once set");
      }
      // The primary family never changes either (kube-apiserver's
      // validateUpgradeDowngradeIPFamilies; headless Services may).
      const auto& famWas = old->ipFamilies;
      const auto& famNow = s.ipFamilies;
      if (!headless(*old) && !headless(s) && !famWas.empty() && !famNow.empty()) {
        if (famWas.size() == famNow.size()) {
          if (famWas != famNow)
            fe.invalid("spec.ipFamilies[0]", jsonStringList(famNow), "may not change once set");
        } else if (famWas[0] != famNow[0]) {
          fe.invalid("spec.ipFamilies[0]", jsonStringList(s.clusterIPs), "may not change once set");
        }
      }
      if (!fe.empty()) return Error{EINVAL, fe.message("Service", s.meta.name)};
    }
    // PreferDualStack kept as it is: no upgrade or downgrade on its own.
    if (s.ipFamilyPolicy == "PreferDualStack" && old->ipFamilyPolicy == "PreferDualStack" &&
        s.type == old->type && sameList(s.clusterIPs, old->clusterIPs) &&
        sameList(s.ipFamilies, old->ipFamilies) && !s.clusterIPs.empty())
      return {};
  }
  const bool noSelector = s.selector.empty();
  if (s.ipFamilyPolicy.empty())
    s.ipFamilyPolicy = headless(s) && noSelector ? "RequireDualStack" : "SingleStack";
  const bool single = s.ipFamilyPolicy == "SingleStack";

  if (old) {
    if (single) {
      if (sameList(s.clusterIPs, old->clusterIPs) && s.clusterIPs.size() > 1)
        s.clusterIPs.resize(1);
      if (sameList(s.ipFamilies, old->ipFamilies) && s.ipFamilies.size() > 1)
        s.ipFamilies.resize(1);
    } else {
      if (s.clusterIPs.size() < old->clusterIPs.size())
        fe.invalid("spec.ipFamilyPolicy", goQuote(s.ipFamilyPolicy),
                   "must be 'SingleStack' to release the secondary cluster IP");
      if (s.ipFamilies.size() < old->ipFamilies.size())
        fe.invalid("spec.ipFamilyPolicy", goQuote(s.ipFamilyPolicy),
                   "must be 'SingleStack' to release the secondary IP family");
    }
  }
  if (single) {
    if (s.clusterIPs.size() == 2)
      fe.invalid("spec.ipFamilyPolicy", goQuote(s.ipFamilyPolicy),
                 "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are "
                 "specified");
    if (s.ipFamilies.size() == 2)
      fe.invalid("spec.ipFamilyPolicy", goQuote(s.ipFamilyPolicy),
                 "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are "
                 "specified");
  }
  // ipFamilies inferred from the given clusterIPs.
  for (size_t i = 0; i < s.clusterIPs.size(); ++i) {
    if (s.clusterIPs[i] == "None") break;
    auto a = parseIP(s.clusterIPs[i]);
    if (!a) continue;  // validate() reported it
    if (i >= s.ipFamilies.size()) {
      if (!range(a->v6))
        fe.invalid(fmt::format("spec.clusterIPs[{}]", i), jsonStringList(s.clusterIPs),
                   fmt::format("{} is not configured on this cluster", familyName(a->v6)));
      else
        s.ipFamilies.push_back(familyName(a->v6));
    }
  }
  if (!fe.empty()) return Error{EINVAL, fe.message("Service", s.meta.name)};
  if (ranges_.empty())
    return Error{
        EINVAL,
        fmt::format("Internal error occurred: failed to allocate a serviceIP: invalid service "
                    "CIDR {}",
                    goQuote(rangeText_))};
  const bool clusterDual = ranges_.size() == 2;
  auto addOther = [&] { s.ipFamilies.push_back(s.ipFamilies[0] == "IPv4" ? "IPv6" : "IPv4"); };

  if (headless(s)) {
    if (noSelector) {
      if (s.ipFamilies.empty()) s.ipFamilies = {familyName(ranges_[0].v6)};
      if (s.ipFamilies.size() < 2 && !single) addOther();
      return {};
    }
  }
  if (s.ipFamilyPolicy == "RequireDualStack" && !clusterDual)
    fe.invalid("spec.ipFamilyPolicy", goQuote(s.ipFamilyPolicy),
               "this cluster is not configured for dual-stack services");
  for (size_t i = 0; i < s.ipFamilies.size(); ++i)
    if (!range(s.ipFamilies[i] == "IPv6"))
      fe.invalid(fmt::format("spec.ipFamilies[{}]", i), goQuote(s.ipFamilies[i]),
                 "not configured on this cluster");
  if (!fe.empty()) return Error{EINVAL, fe.message("Service", s.meta.name)};
  if (s.ipFamilies.empty()) s.ipFamilies = {familyName(ranges_[0].v6)};
  if (!single && s.ipFamilies.size() == 1 && clusterDual) addOther();
  if (headless(s)) return {};

  // Allocation: one address per family, the given one or the next free one.
  for (size_t i = 0; i < s.ipFamilies.size(); ++i) {
    const ServiceRange& r = *range(s.ipFamilies[i] == "IPv6");
    if (i >= s.clusterIPs.size()) s.clusterIPs.emplace_back();
    const bool kept = old && i < old->clusterIPs.size() && old->clusterIPs[i] == s.clusterIPs[i];
    if (kept) continue;
    if (s.clusterIPs[i].empty()) {
      auto got = next(r);
      if (!got)
        return Error{EINVAL,
                     "Internal error occurred: failed to allocate a serviceIP: "
                     "range is full"};
      s.clusterIPs[i] = formatIP(*got);
      // The next family of this Service must not take it either (it cannot:
      // other family), nor a later Service of this apply: commit() holds it.
      continue;
    }
    const auto a = parseIP(s.clusterIPs[i]);
    const std::string& ip = s.clusterIPs[i];
    if (!a || !r.contains(*a))
      return invalid("spec.clusterIPs", jsonStringList(s.clusterIPs),
                     fmt::format("failed to allocate IP {}: the provided IP ({}) is not in the "
                                 "valid range. The range of valid IPs is {}",
                                 ip, ip, r.text));
    auto holder = used_.find(*a);
    if (holder != used_.end() && holder->second != key)
      return invalid("spec.clusterIPs", jsonStringList(s.clusterIPs),
                     fmt::format("failed to allocate IP {}: provided IP is already allocated", ip));
  }
  s.clusterIP = s.clusterIPs[0];

  return {};
}

void inferIPFamilies(Service& s) {
  if (s.type == "ExternalName") return;
  if (!s.clusterIP.empty() && s.clusterIPs.empty()) s.clusterIPs = {s.clusterIP};
  if (s.ipFamilyPolicy.empty()) s.ipFamilyPolicy = "SingleStack";
  if (!s.ipFamilies.empty()) return;
  for (const auto& ip : s.clusterIPs)
    if (auto a = parseIP(ip)) s.ipFamilies.push_back(familyName(a->v6));
}

}  // namespace svclb::model_internal

namespace svclb {

std::string checkServiceCIDR(std::string_view cidrs) {
  using namespace model_internal;
  size_t n = 0, v6 = 0;
  for (std::string_view rest = cidrs;;) {
    const size_t comma = rest.find(',');
    const std::string_view one = rest.substr(0, comma);
    auto r = parseServiceRange(one);
    if (!r)
      return fmt::format("{} is not a CIDR (e.g. 10.96.0.0/12 or fd00:10:96::/112)", goQuote(one));
    ++n;
    v6 += r->v6;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (n > 2) return "at most two CIDRs: one IPv4 and one IPv6";
  if (n == 2 && v6 != 1) return "two CIDRs must be of different families: one IPv4, one IPv6";
  return "";
}

}  // namespace svclb
