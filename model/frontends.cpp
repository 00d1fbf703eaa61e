// Store::frontends(): the dataplane view of the desired state.
//
// Backend states follow kube-proxy's reading of the API:
//  - Endpoints: `addresses` are Ready, `notReadyAddresses` NotReady.
//  - EndpointSlice conditions: ready unset or true -> Ready (a nil ready
//    means ready); ready=false with terminating=true -> Terminating, still
//    serving unless conditions.serving is false (a nil serving means
//    serving, as the API and kube-proxy read it); otherwise NotReady.
// A Service port matches an endpoint port by name (both "" for a single
// unnamed port) and protocol; the backend port is the endpoint port's.
// One frontend per ClusterIP: an IPv4 one takes its backends from the
// IPv4 EndpointSlices (and the IPv4 addresses of an Endpoints object), an
// IPv6 one from the IPv6 ones; only an endpoint's first address is read
// (the API says the addresses of one endpoint are fungible).
//
// Store::externalFrontends(): NodePorts, LoadBalancer ingress IPs and
// externalIPs of the same Services, with the same backends. As in kube-proxy,
// externalTrafficPolicy: Local applies to all three (localOnly), and
// loadBalancerSourceRanges only to the load-balancer IPs.
#include <algorithm>
#include <tuple>

#include "maps/svclb_abi.h"
#include "model/internal.h"
#include "model/model.h"

namespace svclb {

using namespace model_internal;

namespace {

uint8_t protoNumber(const std::string& p) {
  if (p == "TCP") return 6;
  if (p == "UDP") return 17;
  return 0;  // SCTP and anything else: not served
}

const EndpointPort* matchPort(const std::vector<EndpointPort>& ports, const ServicePort& sp) {
  for (const auto& p : ports)
    if (p.name == sp.name && p.protocol == sp.protocol) return &p;
  return nullptr;
}

// Sorted by (ip, port); of duplicates keep the best state (Ready first),
// and a serving one over a non-serving one.
void normalize(std::vector<BackendSpec>& bs) {
  std::sort(bs.begin(), bs.end(), [](const BackendSpec& a, const BackendSpec& b) {
    if (a.ip != b.ip) return a.ip < b.ip;
    if (a.ip6 != b.ip6) return a.ip6 < b.ip6;
    if (a.port != b.port) return a.port < b.port;
    if (a.state != b.state) return a.state < b.state;
    return a.serving > b.serving;
  });
  bs.erase(std::unique(bs.begin(), bs.end(),
                       [](const BackendSpec& a, const BackendSpec& b) {
                         return a.ip == b.ip && a.ip6 == b.ip6 && a.port == b.port;
                       }),
           bs.end());
}

std::map<IpAddr, uint16_t> weightsOf(const ObjectMeta& m) {
  auto it = m.annotations.find(kWeightsAnnotation);
  if (it == m.annotations.end()) return {};
  return parseWeights(it->second).value_or(std::map<IpAddr, uint16_t>{});
}

uint16_t weightFor(const std::map<IpAddr, uint16_t>& w, const BackendSpec& b) {
  IpAddr ip{b.v6(), b.ip};
  if (b.v6()) {
    ip.v = 0;
    for (uint8_t byte : b.ip6) ip.v = ip.v << 8 | byte;
  }
  auto it = w.find(ip);
  return it == w.end() ? 1 : it->second;
}

}  // namespace

std::optional<std::map<IpAddr, uint16_t>> model_internal::parseWeights(std::string_view s) {
  std::map<IpAddr, uint16_t> out;
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view item = trim(s.substr(0, comma));
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    auto ip = parseIP(trim(item.substr(0, eq)));
    std::string_view w = trim(item.substr(eq + 1));
    if (!ip || w.empty() || w.size() > 5) return std::nullopt;
    uint32_t v = 0;
    for (char c : w) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    if (v < 1 || v > 65535) return std::nullopt;
    out[*ip] = static_cast<uint16_t>(v);
  }
  return out;
}

namespace {

// Where a Service's backends come from: its EndpointSlices when any exist,
// otherwise its Endpoints object.
struct BackendSource {
  std::vector<const EndpointSlice*> slices;
  const Endpoints* endpoints = nullptr;
};

BackendSource sourceFor(const Service& svc,
                        const std::map<std::pair<std::string, std::string>, Endpoints>& endpoints,
                        const Store::SliceIndex& slices) {
  BackendSource src;
  if (auto it = slices.find({svc.meta.ns, svc.meta.name}); it != slices.end())
    src.slices = it->second;
  if (src.slices.empty()) {
    auto it = endpoints.find({svc.meta.ns, svc.meta.name});
    if (it != endpoints.end()) src.endpoints = &it->second;
  }
  return src;
}

// One family's backends: a v6 frontend's come from IPv6 slices and the v6
// addresses of an Endpoints object, a v4 frontend's from the IPv4 ones.
// Sets the address of `b` from `text` when it is of that family.
bool setAddress(BackendSpec& b, const std::string& text, bool v6) {
  if (v6) {
    auto a = parseIPv6(text);
    if (a) b.ip6 = *a;
    return a.has_value();
  }
  auto a = parseIPv4(text);
  if (a) b.ip = *a;
  return a.has_value();
}

std::vector<BackendSpec> backendsFor(const BackendSource& src, const ServicePort& sp, bool v6) {
  std::vector<BackendSpec> out;
  for (const EndpointSlice* slice : src.slices) {
    if (slice->addressType != (v6 ? "IPv6" : "IPv4")) continue;
    const auto weights = weightsOf(slice->meta);
    const EndpointPort* ep = matchPort(slice->ports, sp);
    if (!ep || ep->port < 1 || ep->port > 65535) continue;
    for (const auto& e : slice->endpoints) {
      if (e.addresses.empty()) continue;
      BackendSpec b;
      if (!setAddress(b, e.addresses.front(), v6)) continue;
      b.port = static_cast<uint16_t>(ep->port);
      b.nodeName = e.nodeName;
      b.zoneHints = e.zoneHints;
      b.nodeHints = e.nodeHints;
      b.weight = weightFor(weights, b);
      const auto& c = e.conditions;
      if (!c.ready.has_value() || *c.ready) {
        b.state = EndpointState::Ready;
        b.serving = true;
      } else if (c.terminating.value_or(false)) {
        b.state = EndpointState::Terminating;
        b.serving = c.serving.value_or(true);
      } else {
        b.state = EndpointState::NotReady;
        b.serving = false;
      }
      out.push_back(std::move(b));
    }
  }
  if (src.endpoints) {
    const auto weights = weightsOf(src.endpoints->meta);
    for (const auto& ss : src.endpoints->subsets) {
      const EndpointPort* ep = matchPort(ss.ports, sp);
      if (!ep || ep->port < 1 || ep->port > 65535) continue;
      auto add = [&](const std::vector<EndpointAddress>& addrs, EndpointState state) {
        for (const auto& a : addrs) {
          BackendSpec b;
          if (!setAddress(b, a.ip, v6)) continue;
          b.port = static_cast<uint16_t>(ep->port);
          b.state = state;
          b.serving = state == EndpointState::Ready;
          b.nodeName = a.nodeName;
          b.weight = weightFor(weights, b);
          out.push_back(std::move(b));
        }
      };
      add(ss.addresses, EndpointState::Ready);
      add(ss.notReadyAddresses, EndpointState::NotReady);
    }
  }
  normalize(out);
  return out;
}

bool usableBackend(const BackendSpec& b) {
  return b.state == EndpointState::Ready || (b.state == EndpointState::Terminating && b.serving);
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return !s.empty() && std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

// kube-proxy's topology-aware routing (pkg/proxy/topology.go,
// topologyModeFromHints / availableForTopology): when every Ready endpoint
// carries a node hint and one names this node, only the Ready endpoints
// hinted for this node take traffic (PreferSameNode); otherwise when every
// Ready endpoint carries a zone hint and one names this node's zone, only
// those hinted for the zone (PreferSameZone); otherwise (a hint missing,
// none for this node or zone, no zone known) all of them. Terminating
// endpoints stay: the dataplane only uses them when no Ready one is left,
// which a chosen mode rules out (it needs a Ready endpoint for this node).
TopologyMode model_internal::applyTopology(std::vector<BackendSpec>& bs,
                                           const std::string& nodeName, const std::string& zone) {
  bool anyReady = false, allNode = true, forNode = false, allZone = true, forZone = false;
  for (const auto& b : bs) {
    if (b.state != EndpointState::Ready) continue;
    anyReady = true;
    if (b.nodeHints.empty())
      allNode = false;
    else if (has(b.nodeHints, nodeName))
      forNode = true;
    if (b.zoneHints.empty())
      allZone = false;
    else if (has(b.zoneHints, zone))
      forZone = true;
  }
  TopologyMode mode = TopologyMode::None;
  if (anyReady && allNode && forNode)
    mode = TopologyMode::SameNode;
  else if (anyReady && allZone && forZone)
    mode = TopologyMode::SameZone;
  if (mode == TopologyMode::None) return mode;
  std::erase_if(bs, [&](const BackendSpec& b) {
    if (b.state != EndpointState::Ready) return false;
    return mode == TopologyMode::SameNode ? !has(b.nodeHints, nodeName) : !has(b.zoneHints, zone);
  });
  return mode;
}

// internalTrafficPolicy: Local (KEP-2086, kube-proxy's CategorizeEndpoints):
// only this node's endpoints (Ready ones, else serving Terminating ones:
// the dataplane's own fallback). With usable endpoints elsewhere but none
// here the ClusterIP drops new flows (SVC_F_NO_LOCAL_EPS, as kube-proxy's
// DROP); with none anywhere it rejects, as every Service does.
uint8_t model_internal::applyInternalLocal(std::vector<BackendSpec>& bs,
                                           const std::string& nodeName) {
  bool anyUsable = false, localUsable = false;
  for (const auto& b : bs) {
    if (!usableBackend(b)) continue;
    anyUsable = true;
    localUsable = localUsable || (!b.nodeName.empty() && b.nodeName == nodeName);
  }
  std::erase_if(bs,
                [&](const BackendSpec& b) { return b.nodeName.empty() || b.nodeName != nodeName; });
  return anyUsable && !localUsable ? SVC_F_NO_LOCAL_EPS : 0;
}

namespace {

uint32_t affinityTimeoutOf(const Service& svc) {
  return svc.sessionAffinityTimeoutSeconds > 0
             ? static_cast<uint32_t>(svc.sessionAffinityTimeoutSeconds)
             : 10800u;
}

}  // namespace

void Store::reindexSlice(const Key& slice) {
  if (auto it = sliceService_.find(slice); it != sliceService_.end()) {
    auto owner = slicesByService_.find(it->second);
    owner->second.erase(slice);
    if (owner->second.empty()) slicesByService_.erase(owner);
    sliceService_.erase(it);
  }
  auto s = slices_.find(slice);
  if (s == slices_.end()) return;
  auto l = s->second.meta.labels.find("kubernetes.io/service-name");
  if (l == s->second.meta.labels.end()) return;
  Key svc{slice.first, l->second};
  slicesByService_[svc].insert(slice);
  sliceService_.emplace(slice, std::move(svc));
}

void Store::rebuildSliceIndex() {
  slicesByService_.clear();
  sliceService_.clear();
  for (const auto& [k, s] : slices_) reindexSlice(k);
}

std::vector<const EndpointSlice*> Store::slicesOf(const Key& svc) const {
  std::vector<const EndpointSlice*> out;
  auto owned = slicesByService_.find(svc);
  if (owned == slicesByService_.end()) return out;
  for (const Key& sk : owned->second) out.push_back(&slices_.at(sk));
  return out;
}

Store::SliceIndex Store::sliceIndex(const std::set<Key>* only) const {
  SliceIndex idx;
  if (only) {
    // The touched Services' own slices, through the index.
    for (const Key& svc : *only) {
      auto owned = slicesByService_.find(svc);
      if (owned == slicesByService_.end()) continue;
      for (const Key& sk : owned->second) {
        const EndpointSlice& slice = slices_.at(sk);
        if (slice.addressType != "FQDN") idx[svc].push_back(&slice);  // in slice name order
      }
    }
    return idx;
  }
  for (const auto& [skey, slice] : slices_) {
    if (slice.addressType == "FQDN") continue;
    auto it = slice.meta.labels.find("kubernetes.io/service-name");
    if (it == slice.meta.labels.end()) continue;
    Key svc{skey.first, it->second};
    if (only && !only->count(svc)) continue;
    idx[std::move(svc)].push_back(&slice);  // in slice name order, as slices_
  }
  return idx;
}

void Store::appendFrontends(const Service& svc, const SliceIndex& slices,
                            std::vector<Frontend>& out) const {
  if (svc.type == "ExternalName") return;
  const BackendSource src = sourceFor(svc, endpoints_, slices);
  // One frontend per ClusterIP ("" and "None" have none), each family's
  // backends from that family's endpoints.
  std::vector<std::string> ips = svc.clusterIPs;
  if (ips.empty()) ips.push_back(svc.clusterIP);
  for (const auto& ip : ips) {
    FrontendKey base;
    if (auto v4 = parseIPv4(ip))
      base.vip = *v4;
    else if (auto v6 = parseIPv6(ip))
      base.vip6 = *v6;
    else
      continue;
    for (const auto& sp : svc.ports) {
      uint8_t proto = protoNumber(sp.protocol);
      if (proto == 0 || sp.port < 1 || sp.port > 65535) continue;
      // svclbd's DNS answers there
      if (sp.port == 53 && (base.v6() ? base.vip6 == cfg_.clusterDNS6
                                      : base.vip == cfg_.clusterDNS && base.vip != 0))
        continue;
      Frontend fe;
      fe.key = base;
      fe.key.port = static_cast<uint16_t>(sp.port);
      fe.key.proto = proto;
      fe.ns = svc.meta.ns;
      fe.name = svc.meta.name;
      fe.portName = sp.name;
      fe.annotations = svc.meta.annotations;
      if (svc.sessionAffinity == "ClientIP") {
        fe.affinity = true;
        fe.affinityTimeout = affinityTimeoutOf(svc);
      }
      fe.backends = backendsFor(src, sp, base.v6());
      if (svc.internalTrafficPolicy == "Local")
        fe.flags |= applyInternalLocal(fe.backends, cfg_.nodeName);
      else
        applyTopology(fe.backends, cfg_.nodeName, cfg_.zone);
      out.push_back(std::move(fe));
    }
  }
}

std::vector<Frontend> Store::frontends() const {
  std::vector<Frontend> out;
  const SliceIndex slices = sliceIndex();
  for (const auto& [key, svc] : services_) appendFrontends(svc, slices, out);
  std::sort(out.begin(), out.end(),
            [](const Frontend& a, const Frontend& b) { return a.key < b.key; });
  return out;
}

std::vector<Frontend> Store::frontendsOf(const std::set<Key>& services) const {
  std::vector<Frontend> out;
  const SliceIndex slices = sliceIndex(&services);
  for (const auto& key : services)
    if (auto it = services_.find(key); it != services_.end())
      appendFrontends(it->second, slices, out);
  std::sort(out.begin(), out.end(),
            [](const Frontend& a, const Frontend& b) { return a.key < b.key; });
  return out;
}

std::vector<ExternalFrontend> Store::externalFrontends() const {
  std::vector<ExternalFrontend> out;
  // Built at the first Service with something external: a store of
  // ClusterIP Services alone (called after every change, by the commit
  // path, health checks and L2 announcements) costs one walk of the
  // Services, not an index of every slice.
  std::optional<SliceIndex> slicesIdx;
  for (const auto& [key, svc] : services_) {
    if (svc.type == "ExternalName") continue;
    // Nothing external (no entry below would be made): skip the work.
    if (svc.type == "ClusterIP" && svc.externalIPs.empty()) continue;
    if (!slicesIdx) slicesIdx = sliceIndex();
    const SliceIndex& slices = *slicesIdx;
    const bool nodePorts = svc.type == "NodePort" || svc.type == "LoadBalancer";
    const bool lb = svc.type == "LoadBalancer";
    // validate() only lets externally reachable Services set the policy.
    const bool local = svc.externalTrafficPolicy == "Local";
    std::vector<std::string> ranges;
    for (std::string r : svc.loadBalancerSourceRanges) {
      r.erase(0, r.find_first_not_of(' '));
      r.erase(r.find_last_not_of(' ') + 1);
      ranges.push_back(std::move(r));
    }
    const BackendSource src = sourceFor(svc, endpoints_, slices);
    // One pass per family of the Service's ClusterIPs, as each family's
    // kube-proxy sees it: that family's ClusterIP frontend, endpoints,
    // externalIPs and ingress IPs (FilterIncorrectIPVersion). A Service
    // without a ClusterIP (headless) has no NodePort, so nothing here.
    std::vector<IpAddr> vips;
    for (const auto& ip :
         svc.clusterIPs.empty() ? std::vector<std::string>{svc.clusterIP} : svc.clusterIPs)
      if (auto a = parseIP(ip)) vips.push_back(*a);
    for (const IpAddr& vip : vips) {
      const bool v6 = vip.v6;
      std::vector<IpAddr> lbIPs, extIPs;
      if (lb)
        for (const auto& ip : svc.loadBalancerIngressIPs)
          if (auto a = parseIP(ip); a && a->v6 == v6) lbIPs.push_back(*a);
      for (const auto& ip : svc.externalIPs)
        if (auto a = parseIP(ip); a && a->v6 == v6) extIPs.push_back(*a);
      for (const auto& sp : svc.ports) {
        const uint8_t proto = protoNumber(sp.protocol);
        if (proto == 0 || sp.port < 1 || sp.port > 65535) continue;
        ExternalFrontend base;
        base.v6 = v6;
        base.proto = proto;
        base.ns = svc.meta.ns;
        base.name = svc.meta.name;
        base.portName = sp.name;
        base.clusterFrontend.port = static_cast<uint16_t>(sp.port);
        base.clusterFrontend.proto = proto;
        if (v6)
          base.clusterFrontend.vip6 = toIp6(vip.v);
        else
          base.clusterFrontend.vip = static_cast<uint32_t>(vip.v);
        base.localOnly = local;
        if (svc.sessionAffinity == "ClientIP") {
          base.affinity = true;
          base.affinityTimeout = affinityTimeoutOf(svc);
        }
        if (lb && svc.externalTrafficPolicy == "Local" && svc.healthCheckNodePort > 0 &&
            svc.healthCheckNodePort <= 65535)
          base.healthCheckNodePort = static_cast<uint16_t>(svc.healthCheckNodePort);
        if ((nodePorts && sp.nodePort > 0 && sp.nodePort <= 65535) || !lbIPs.empty() ||
            !extIPs.empty())
          base.backends = backendsFor(src, sp, v6);
        // eTP=Cluster takes the same topology as the ClusterIP (kube-proxy's
        // clusterEndpoints); eTP=Local picks this node's (loader/external.cpp).
        if (!local) applyTopology(base.backends, cfg_.nodeName, cfg_.zone);

        if (nodePorts && sp.nodePort > 0 && sp.nodePort <= 65535) {
          ExternalFrontend fe = base;
          fe.kind = ExternalKind::NodePort;
          fe.port = static_cast<uint16_t>(sp.nodePort);
          out.push_back(std::move(fe));
        }
        auto withIp = [&](ExternalKind kind, const IpAddr& ip) {
          ExternalFrontend fe = base;
          fe.kind = kind;
          if (v6)
            fe.ip6 = toIp6(ip.v);
          else
            fe.ip = static_cast<uint32_t>(ip.v);
          fe.port = static_cast<uint16_t>(sp.port);
          if (kind == ExternalKind::LoadBalancerIP) fe.sourceRanges = ranges;
          out.push_back(std::move(fe));
        };
        for (const auto& ip : lbIPs) withIp(ExternalKind::LoadBalancerIP, ip);
        for (const auto& ip : extIPs) withIp(ExternalKind::ExternalIP, ip);
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const ExternalFrontend& a, const ExternalFrontend& b) {
    return std::tie(a.kind, a.v6, a.ip, a.ip6, a.port, a.proto, a.ns, a.name, a.portName) <
           std::tie(b.kind, b.v6, b.ip, b.ip6, b.port, b.proto, b.ns, b.name, b.portName);
  });
  return out;
}

}  // namespace svclb
