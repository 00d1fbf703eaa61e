#include "loader/external.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <tuple>

#include "loader/sha256.h"
#include "maps/svclb_abi.h"

namespace svclb {

namespace {

const char* kindName(ExternalKind k) {
  switch (k) {
    case ExternalKind::NodePort:
      return "NodePort";
    case ExternalKind::LoadBalancerIP:
      return "LoadBalancer IP";
    case ExternalKind::ExternalIP:
      return "externalIP";
  }
  return "?";
}

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t"));
  s.erase(s.find_last_not_of(" \t") + 1);
  return s;
}

std::optional<uint32_t> parseIp(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

uint32_t maskOf(uint8_t prefix) { return prefix == 0 ? 0u : 0xffffffffu << (32 - prefix); }

// Takes new flows: what the slots 1..total hold (reconcile.h).
bool usable(const BackendSpec& b) {
  return b.state == EndpointState::Ready || (b.state == EndpointState::Terminating && b.serving);
}

bool isLocal(const BackendSpec& b, const std::string& nodeName) {
  return !b.nodeName.empty() && b.nodeName == nodeName;
}

// "Service default/web (port \"http\")"
std::string who(const std::string& ns, const std::string& name, const std::string& portName) {
  return portName.empty() ? fmt::format("Service {}/{}", ns, name)
                          : fmt::format("Service {}/{} (port \"{}\")", ns, name, portName);
}

std::string keyStr(const FrontendKey& k) {
  return fmt::format("{}/{}", joinHostPort(k.address(), k.port), protoName(k.proto));
}

// IPAddressPool.spec.addresses: "a.b.c.d/n" or "a.b.c.d-e.f.g.h" (spaces
// around the dash allowed); IPv6 entries never hold an IPv4 address.
bool poolContains6(const IPAddressPool& pool, const Ip6& ip) {
  for (const auto& entry : pool.addresses) {
    const std::string a = trim(entry);
    if (auto dash = a.find('-'); dash != std::string::npos) {
      Ip6 lo{}, hi{};
      if (inet_pton(AF_INET6, trim(a.substr(0, dash)).c_str(), lo.data()) == 1 &&
          inet_pton(AF_INET6, trim(a.substr(dash + 1)).c_str(), hi.data()) == 1 && lo <= ip &&
          ip <= hi)
        return true;
    } else if (auto r = parseSourceRange(a); r && r->v6()) {
      if (maskIPv6(ip, r->prefix) == r->addr6) return true;
    }
  }
  return false;
}

bool poolContains(const IPAddressPool& pool, uint32_t ip) {
  for (const auto& entry : pool.addresses) {
    const std::string a = trim(entry);
    if (auto dash = a.find('-'); dash != std::string::npos) {
      auto lo = parseIp(trim(a.substr(0, dash)));
      auto hi = parseIp(trim(a.substr(dash + 1)));
      if (lo && hi && ip >= *lo && ip <= *hi) return true;
    } else if (auto r = parseSourceRange(a)) {
      if ((ip & maskOf(r->prefix)) == r->addr) return true;
    }
  }
  return false;
}

}  // namespace

std::optional<SourceRange> parseSourceRange(const std::string& cidr) {
  const std::string s = trim(cidr);
  const auto slash = s.find('/');
  if (slash == std::string::npos) return std::nullopt;
  const std::string host = s.substr(0, slash), len = s.substr(slash + 1);
  if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  unsigned prefix = 0;
  std::from_chars(len.data(), len.data() + len.size(), prefix);  // 1-3 digits: cannot fail
  if (auto addr = parseIp(host)) {
    if (prefix > 32) return std::nullopt;
    const auto p = static_cast<uint8_t>(prefix);
    return SourceRange{*addr & maskOf(p), p};
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) != 1 || prefix > 128) return std::nullopt;
  SourceRange r;
  r.isV6 = true;
  r.prefix = static_cast<uint8_t>(prefix);
  std::copy(std::begin(a6.s6_addr), std::end(a6.s6_addr), r.addr6.begin());
  r.addr6 = maskIPv6(r.addr6, r.prefix);
  return r;
}

ExternalFrontends externalToFrontends(const std::vector<ExternalFrontend>& ext,
                                      const std::vector<uint32_t>& nodeAddrs,
                                      const std::string& nodeName,
                                      const std::vector<Frontend>& clusterFrontends,
                                      const std::vector<Ip6>& nodeAddrs6) {
  ExternalFrontends out;

  // Who holds a key: ClusterIP frontends first, then externals in order.
  std::map<FrontendKey, std::string> owner;
  std::map<FrontendKey, const Frontend*> byClusterKey;
  std::map<std::pair<std::string, std::string>, const Frontend*> byService;
  for (const auto& f : clusterFrontends) {
    owner.emplace(f.key, "ClusterIP of " + who(f.ns, f.name, f.portName));
    byClusterKey.emplace(f.key, &f);
    byService.emplace(std::make_pair(f.ns, f.name), &f);
  }

  std::vector<uint32_t> addrs;
  for (uint32_t a : nodeAddrs)
    if (a != 0) addrs.push_back(a);
  std::sort(addrs.begin(), addrs.end());
  addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
  std::vector<Ip6> addrs6;
  for (const Ip6& a : nodeAddrs6)
    if (a != Ip6{}) addrs6.push_back(a);
  std::sort(addrs6.begin(), addrs6.end());
  addrs6.erase(std::unique(addrs6.begin(), addrs6.end()), addrs6.end());

  std::vector<const ExternalFrontend*> order;
  for (const auto& e : ext) order.push_back(&e);
  std::stable_sort(
      order.begin(), order.end(), [](const ExternalFrontend* a, const ExternalFrontend* b) {
        return std::tie(a->kind, a->v6, a->ip, a->ip6, a->port, a->proto, a->ns, a->name,
                        a->portName) < std::tie(b->kind, b->v6, b->ip, b->ip6, b->port, b->proto,
                                                b->ns, b->name, b->portName);
      });

  for (const ExternalFrontend* e : order) {
    Frontend base;
    base.ns = e->ns;
    base.name = e->name;
    base.portName = e->portName;
    base.affinity = e->affinity;
    base.affinityTimeout = e->affinity ? e->affinityTimeout : 0;
    // The Service's annotations, as Store::frontends() carries them.
    const Frontend* cf = nullptr;
    if (auto it = byClusterKey.find(e->clusterFrontend);
        it != byClusterKey.end() && it->second->ns == e->ns && it->second->name == e->name)
      cf = it->second;
    else if (auto s = byService.find({e->ns, e->name}); s != byService.end())
      cf = s->second;
    if (cf) base.annotations = cf->annotations;

    base.flags = SVC_F_EXTERNAL;
    if (e->localOnly) {
      base.flags |= SVC_F_LOCAL_ONLY;
      bool anyUsable = false, localUsable = false;
      for (const auto& b : e->backends) {
        if (!usable(b)) continue;
        anyUsable = true;
        localUsable = localUsable || isLocal(b, nodeName);
      }
      for (const auto& b : e->backends)
        if (isLocal(b, nodeName)) base.backends.push_back(b);
      if (anyUsable && !localUsable) base.flags |= SVC_F_NO_LOCAL_EPS;
    } else {
      base.backends = e->backends;
    }
    if (!e->sourceRanges.empty()) {
      base.flags |= SVC_F_SRC_RANGES;
      // This frontend's family only: a list without one of its family
      // admits no client of it (fails closed).
      for (const auto& r : e->sourceRanges)
        if (auto sr = parseSourceRange(r); sr && sr->v6() == e->v6)
          base.sourceRanges.push_back(*sr);
      std::sort(base.sourceRanges.begin(), base.sourceRanges.end());
      base.sourceRanges.erase(std::unique(base.sourceRanges.begin(), base.sourceRanges.end()),
                              base.sourceRanges.end());
    }

    std::vector<FrontendKey> keys;
    if (e->v6) {
      auto key6 = [&](const Ip6& a) {
        FrontendKey k{0, e->port, e->proto};
        k.vip6 = a;
        return k;
      };
      if (e->kind == ExternalKind::NodePort && e->ip6 == Ip6{})
        for (const Ip6& a : addrs6) keys.push_back(key6(a));
      else
        keys.push_back(key6(e->ip6));
    } else if (e->kind == ExternalKind::NodePort && e->ip == 0) {
      for (uint32_t a : addrs) keys.push_back(FrontendKey{a, e->port, e->proto});
    } else {
      keys.push_back(FrontendKey{e->ip, e->port, e->proto});
    }
    for (const FrontendKey& key : keys) {
      Frontend f = base;
      f.key = key;
      const std::string me =
          fmt::format("{} of {}", kindName(e->kind), who(e->ns, e->name, e->portName));
      auto [it, fresh] = owner.emplace(f.key, me);
      if (!fresh) {
        out.warnings.push_back(
            fmt::format("{} {} is ignored: {} already has that address, port and protocol", me,
                        keyStr(f.key), it->second));
        continue;
      }
      if (e->localOnly) {
        // This node's own pods and processes reach any endpoint
        // (kube-proxy's short-circuit of pod- and node-originated traffic,
        // kubernetes#77523): the twin the programs use for them.
        Frontend twin = f;
        twin.key.scope = SVC_SCOPE_INTERNAL;
        twin.flags = static_cast<uint8_t>((f.flags & ~(SVC_F_LOCAL_ONLY | SVC_F_NO_LOCAL_EPS)) |
                                          SVC_F_NODE_VIEW);
        twin.backends = e->backends;
        out.frontends.push_back(std::move(twin));
      }
      out.frontends.push_back(std::move(f));
    }
  }
  std::sort(out.frontends.begin(), out.frontends.end(),
            [](const Frontend& a, const Frontend& b) { return a.key < b.key; });
  return out;
}

std::string l2Winner(const std::vector<std::string>& candidates, const std::string& ip) {
  // std::array's < is lexicographic over unsigned bytes: Go's bytes.Compare.
  const std::string* best = nullptr;
  Sha256Digest bestHash{};
  for (const auto& c : candidates) {
    const Sha256Digest h = sha256(c + "#" + ip);
    if (!best || h < bestHash) {
      best = &c;
      bestHash = h;
    }
  }
  return best ? *best : std::string();
}

Status checkL2Members(const std::vector<std::string>& l2Members, const std::string& nodeName) {
  if (l2Members.empty() ||
      std::find(l2Members.begin(), l2Members.end(), nodeName) != l2Members.end())
    return {};
  return Error{EINVAL,
               fmt::format("--l2-members {} does not name this node ({}, see --node-name): list "
                           "every node that runs svclbd on this L2 segment, this one included, or "
                           "leave --l2-members out when this node is the only one",
                           fmt::join(l2Members, ","), nodeName.empty() ? "<unnamed>" : nodeName)};
}

std::vector<L2Announcement> l2Announcements(const Store& store,
                                            const std::vector<std::string>& externalIfaces,
                                            const std::string& nodeName,
                                            const std::vector<std::string>& l2Members) {
  std::set<L2Announcement> out;
  if (externalIfaces.empty()) return {};
  if (!l2Members.empty() &&
      std::find(l2Members.begin(), l2Members.end(), nodeName) == l2Members.end())
    return {};

  // Services with externalTrafficPolicy: Local -> the nodes hosting one of
  // their endpoints taking new flows, on any port (MetalLB's
  // nodesWithEndpoint; an empty nodeName is nobody's).
  std::map<std::pair<std::string, std::string>, std::set<std::string>> servingNodes;
  for (const auto& e : store.externalFrontends()) {
    if (e.kind != ExternalKind::LoadBalancerIP || !e.localOnly) continue;
    for (const auto& b : e.backends)
      if (usable(b) && !b.nodeName.empty()) servingNodes[{e.ns, e.name}].insert(b.nodeName);
  }

  // Whether this node announces the Service's addresses (external.h).
  auto wins = [&](const std::pair<std::string, std::string>& key, const Service& svc) {
    const bool local = svc.externalTrafficPolicy == "Local";
    static const std::set<std::string> kNone;
    auto it = servingNodes.find(key);
    const std::set<std::string>& serving = it == servingNodes.end() ? kNone : it->second;
    if (l2Members.empty()) return !local || serving.count(nodeName) > 0;
    if (svc.loadBalancerIngressIPs.empty()) return false;
    std::vector<std::string> candidates;
    for (const auto& m : l2Members)
      if (!local || serving.count(m)) candidates.push_back(m);
    // The first address as MetalLB prints it (net.IP.String()).
    const std::string first = trim(svc.loadBalancerIngressIPs.front());
    const auto v4 = parseIp(first);
    Ip6 a6{};
    const bool v6 = !v4 && inet_pton(AF_INET6, first.c_str(), a6.data()) == 1;
    return l2Winner(candidates, v4 ? formatIPv4(*v4) : v6 ? formatIPv6(a6) : first) == nodeName;
  };

  for (const auto& [key, svc] : store.services()) {
    if (svc.type != "LoadBalancer" || svc.loadBalancerPool.empty()) continue;
    if (!wins(key, svc)) continue;
    for (const auto& ingress : svc.loadBalancerIngressIPs) {
      auto ip = parseIp(trim(ingress));
      Ip6 ip6{};
      if (!ip && inet_pton(AF_INET6, trim(ingress).c_str(), ip6.data()) != 1) continue;
      // The pool that handed the address out: named by the Service, and
      // holding the address (names may repeat across namespaces).
      for (const auto& [pkey, pool] : store.pools()) {
        if (pool.meta.name != svc.loadBalancerPool ||
            !(ip ? poolContains(pool, *ip) : poolContains6(pool, ip6)))
          continue;
        for (const auto& [akey, adv] : store.l2Advertisements()) {
          if (adv.meta.ns != pool.meta.ns) continue;
          if (!adv.ipAddressPools.empty() &&
              std::find(adv.ipAddressPools.begin(), adv.ipAddressPools.end(), pool.meta.name) ==
                  adv.ipAddressPools.end())
            continue;
          for (const auto& nic : externalIfaces) {
            if (!adv.interfaces.empty() && std::find(adv.interfaces.begin(), adv.interfaces.end(),
                                                     nic) == adv.interfaces.end())
              continue;
            out.insert({ip ? *ip : 0, ip6, nic, svc.meta.ns, svc.meta.name});
          }
        }
      }
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace svclb
