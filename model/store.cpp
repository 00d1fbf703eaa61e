// The desired-state store: all-or-nothing apply/delete, ClusterIP
// allocation, and crash-safe persistence.
//
// ClusterIP allocation policy: kube-apiserver's bands (KEP-3070,
// pkg/registry/core/service/ipallocator: calculateRangeOffset), with a
// deterministic choice. The addresses of StoreConfig.serviceCIDR between the
// network and broadcast addresses are split: the lower band, the first
// min(max(16, size/16), 256) of them (none for a range of 16 or fewer), is
// kept for static addresses (10.96.0.1 is the `kubernetes` Service's, 10.96.0.10
// kube-dns's); dynamic allocation takes the lowest free address of the upper
// band and falls back to the lower band only when the upper one is full.
// kube-apiserver picks at random within a band; the lowest free address keeps
// tests and state files reproducible. Every IP requested explicitly by a
// Service of the same apply is skipped (so the order of documents in a file
// does not decide who gets an address). A freed IP is reused by the next
// allocation.
//
// NodePort allocation (kube-apiserver's rules, pkg/registry/core/service/
// storage/alloc.go, with a deterministic choice): every port of a NodePort or
// LoadBalancer Service without a nodePort gets one, in this order of
// preference: the nodePort the stored Service had for the same (port,
// protocol) (kubectl apply leaves an unset nodePort alone), the nodePort of
// another port of the same Service with the same port number (53/TCP and
// 53/UDP share one, as kube-apiserver does), else the lowest free port of
// [nodePortMin, nodePortMax] that no Service of the same apply asks for
// explicitly. kube-apiserver picks at random; lowest-free keeps tests and
// state files reproducible. An explicit nodePort must be in the range and
// free unless the Service already holds it; ports of the same Service may
// share a nodePort (different protocols: validate() rejects the same one).
// A range change at restart keeps every allocation it finds outside the new
// range (kube-apiserver's repair loop reports such ports but does not move
// them); only new requests are checked against the new range.
// healthCheckNodePort (LoadBalancer + externalTrafficPolicy: Local) comes
// from the same range by the same rules, kept across updates that omit it,
// and its errors are kube-apiserver's internal errors. Allocations are
// derived from the stored Services, so a delete or a change to ClusterIP/
// ExternalName (or to externalTrafficPolicy: Cluster) releases them.
//
// LoadBalancer IPs (MetalLB's controller semantics, deterministic): the store
// owns status.loadBalancer (a manifest's status is ignored) and, after every
// apply or delete, (1) keeps each LoadBalancer Service's IP while it is still
// inside a pool (not a .0/.255 of an avoidBuggyIPs pool), still matches what
// the Service requests and still in the pool it names; (2) gives pending
// Services that request an IP (spec.loadBalancerIP, else the first IP of
// the metallb.io/ or metallb.universe.tf/ loadBalancerIPs annotation) that IP
// when it is in a pool and free; (3) gives the others the first free address
// of the autoAssign pools (pools by name, addresses in order), or of the pool
// named by the address-pool annotation (autoAssign or not). Services are
// visited by (namespace, name). One address per family of the Service
// (spec.ipFamilies, in that order: a dual-stack Service gets an IPv4 and an
// IPv6 address, both from one pool, as MetalLB allocates; loadBalancerIP or
// the annotation must then name one of each). No address: pending (no
// ingress), not an error. Not supported: IP sharing (allow-shared-ip), a
// pool's serviceAllocation; pools may not overlap (MetalLB refuses that
// too).
//
// Deletes follow kubectl: only what is named is deleted. Deleting a Service
// leaves its Endpoints/EndpointSlices alone (Kubernetes' endpoints controller
// would clean them up; svclb has none). A Service without a ClusterIP
// frontend simply contributes nothing to frontends().
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "model/cluster_ips.h"
#include "model/internal.h"
#include "model/model.h"
#include "model/state_file.h"

namespace svclb {

using nlohmann::json;
using namespace model_internal;

namespace {

using Key = std::pair<std::string, std::string>;

// metadata.uid as the apiserver writes it: a random (version 4) UUID.
std::string newUid() {
  uuid_t u;
  uuid_generate_random(u);
  char s[37];
  uuid_unparse_lower(u, s);
  return s;
}

std::string nowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string notFound(const std::string& kind, const std::string& name) {
  return fmt::format("Error from server (NotFound): {} {} not found", resourcePlural(kind),
                     goQuote(name));
}

template <class T>
ApplyAction upsert(std::map<Key, T>& m, T obj) {
  Key key{obj.meta.ns, obj.meta.name};
  auto it = m.find(key);
  if (it == m.end()) {
    obj.meta.uid = newUid();
    obj.meta.creationTimestamp = nowRfc3339();
    m.emplace(std::move(key), std::move(obj));
    return ApplyAction::Created;
  }
  if (sameContent(Object{it->second}, Object{obj})) return ApplyAction::Unchanged;
  obj.meta.uid = it->second.meta.uid;
  obj.meta.creationTimestamp = it->second.meta.creationTimestamp;
  it->second = std::move(obj);
  return ApplyAction::Configured;
}

bool hasNodePorts(const Service& s) { return s.type == "NodePort" || s.type == "LoadBalancer"; }

bool needsHealthCheck(const Service& s) {
  return s.type == "LoadBalancer" && s.externalTrafficPolicy == "Local";
}

// nodePort -> the Service holding it (its ports' nodePorts and healthCheckNodePort).
std::map<int32_t, Key> nodePortHolders(const std::map<Key, Service>& services) {
  std::map<int32_t, Key> m;
  for (const auto& [key, s] : services) {
    if (!hasNodePorts(s)) continue;
    for (const auto& p : s.ports)
      if (p.nodePort != 0) m[p.nodePort] = key;
    if (needsHealthCheck(s) && s.healthCheckNodePort != 0) m[s.healthCheckNodePort] = key;
  }
  return m;
}

// Fills in and checks s's nodePorts and healthCheckNodePort against the
// other Services' (holders) and this apply's explicit requests. On success
// updates holders; otherwise returns the error and leaves holders alone.
Status allocateNodePorts(Service& s, const Service* old, std::map<int32_t, Key>& holders,
                         const std::set<int32_t>& requested, const StoreConfig& cfg) {
  const Key key{s.meta.ns, s.meta.name};
  const std::string range = fmt::format("{}-{}", cfg.nodePortMin, cfg.nodePortMax);
  const auto inRange = [&](int32_t p) { return p >= cfg.nodePortMin && p <= cfg.nodePortMax; };
  const std::string notInRange =
      fmt::format("provided port is not in the valid range. The range of valid ports is {}", range);
  const std::string allocated = "provided port is already allocated";

  std::set<int32_t> held;  // what this Service held before: no checks to keep it
  if (old && hasNodePorts(*old))
    for (const auto& p : old->ports)
      if (p.nodePort != 0) held.insert(p.nodePort);
  const int32_t oldHealth = old && needsHealthCheck(*old) ? old->healthCheckNodePort : 0;
  std::set<int32_t> mine;  // what it holds after this apply
  auto heldByOther = [&](int32_t p) {
    auto it = holders.find(p);
    return it != holders.end() && it->second != key;
  };
  auto next = [&]() -> std::optional<int32_t> {
    for (int32_t p = std::max(cfg.nodePortMin, 1); p <= std::min(cfg.nodePortMax, 65535); ++p)
      if (!holders.count(p) && !requested.count(p) && !mine.count(p)) return p;
    return std::nullopt;
  };
  auto invalid = [&](size_t i, int32_t np, const std::string& detail, int code) {
    FieldErrors fe;
    fe.invalidInt(fmt::format("spec.ports[{}].nodePort", i), np, detail);
    return Error{code, fe.message("Service", s.meta.name)};
  };

  if (hasNodePorts(s)) {
    // allocateLoadBalancerNodePorts: false: only the nodePorts given (or
    // kept: kubectl apply leaves a set one alone) are held.
    const bool allocate =
        s.type != "LoadBalancer" || s.allocateLoadBalancerNodePorts.value_or(true);
    for (size_t i = 0; i < s.ports.size(); ++i) {
      ServicePort& p = s.ports[i];
      if (p.nodePort == 0 && old && hasNodePorts(*old))
        for (const auto& op : old->ports)
          if (op.port == p.port && op.protocol == p.protocol && op.nodePort != 0) {
            p.nodePort = op.nodePort;
            break;
          }
      if (p.nodePort == 0)
        for (const auto& q : s.ports)
          if (&q != &p && q.port == p.port && q.protocol != p.protocol && q.nodePort != 0) {
            p.nodePort = q.nodePort;
            break;
          }
      if (p.nodePort == 0 && !allocate) continue;
      if (p.nodePort == 0) {
        auto np = next();
        if (!np)
          return Error{ENOSPC,
                       "Internal error occurred: failed to allocate a nodePort: range is full"};
        p.nodePort = *np;
      } else if (!held.count(p.nodePort) && !mine.count(p.nodePort)) {
        if (!inRange(p.nodePort)) return invalid(i, p.nodePort, notInRange, ERANGE);
        if (heldByOther(p.nodePort)) return invalid(i, p.nodePort, allocated, EADDRINUSE);
      }
      mine.insert(p.nodePort);
    }
    // A kept nodePort may now equal an explicit one of another port (what
    // validate() catches between explicit ones).
    for (size_t i = 0; i < s.ports.size(); ++i)
      for (size_t k = 0; k < i; ++k)
        if (s.ports[k].nodePort == s.ports[i].nodePort &&
            s.ports[k].protocol == s.ports[i].protocol) {
          FieldErrors fe;
          fe.duplicate(fmt::format("spec.ports[{}].nodePort", i),
                       std::to_string(s.ports[i].nodePort));
          return Error{EINVAL, fe.message("Service", s.meta.name)};
        }
  }

  if (needsHealthCheck(s)) {
    int32_t& hc = s.healthCheckNodePort;
    if (hc == 0) hc = oldHealth;
    if (hc == 0) {
      auto np = next();
      if (!np)
        return Error{ENOSPC,
                     "Internal error occurred: failed to allocate a HealthCheck NodePort 0: range "
                     "is full"};
      hc = *np;
    } else if (hc != oldHealth || mine.count(hc)) {
      const std::string head = fmt::format(
          "Internal error occurred: failed to allocate requested HealthCheck NodePort {}: ", hc);
      if (!inRange(hc)) return Error{ERANGE, head + notInRange};
      if (mine.count(hc) || heldByOther(hc)) return Error{EADDRINUSE, head + allocated};
    }
    mine.insert(hc);
  }

  for (auto it = holders.begin(); it != holders.end();)
    it = it->second == key ? holders.erase(it) : std::next(it);
  for (int32_t p : mine) holders[p] = key;
  return {};
}

// ---- LoadBalancer IPs ------------------------------------------------------

// An address of a pool range as IpAddr (PoolRange holds IPv4 in its last
// four bytes, the rest zero).
IpAddr poolAddr(bool v6, const std::array<uint8_t, 16>& bytes) {
  IpAddr a{v6, 0};
  for (uint8_t b : bytes) a.v = a.v << 8 | b;
  return a;
}

struct PoolView {
  std::string name, ns;
  std::vector<std::pair<IpAddr, IpAddr>> ranges;  // either family, inclusive, in spec order
  bool autoAssign = true;
  bool avoidBuggyIPs = false;

  bool contains(const IpAddr& ip) const {
    for (const auto& [a, b] : ranges)
      if (a.v6 == ip.v6 && ip.v >= a.v && ip.v <= b.v) return true;
    return false;
  }
  bool usable(const IpAddr& ip) const {
    if (avoidBuggyIPs && !ip.v6 && ((ip.v & 0xff) == 0 || (ip.v & 0xff) == 0xff)) return false;
    return contains(ip);
  }
  // The first usable address of the family not in `taken`. A range yields
  // one within |taken| + 1 usable candidates, so an IPv6 /64 is never
  // walked through.
  std::optional<IpAddr> firstFree(bool v6, const std::set<IpAddr>& taken) const {
    for (const auto& [a, b] : ranges) {
      if (a.v6 != v6) continue;
      for (u128 x = a.v;; ++x) {
        const IpAddr ip{v6, x};
        if (usable(ip) && !taken.count(ip)) return ip;
        if (x == b.v) break;
      }
    }
    return std::nullopt;
  }
};

std::vector<PoolView> poolViews(const std::map<Key, IPAddressPool>& pools) {
  std::vector<PoolView> out;
  for (const auto& [key, p] : pools) {
    PoolView v{p.meta.name, p.meta.ns, {}, p.autoAssign, p.avoidBuggyIPs};
    for (const auto& a : p.addresses) {
      auto r = parsePoolRange(a);
      if (r.ok()) v.ranges.emplace_back(poolAddr(r->v6, r->first), poolAddr(r->v6, r->last));
    }
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const PoolView& a, const PoolView& b) {
    return std::tie(a.name, a.ns) < std::tie(b.name, b.ns);
  });
  return out;
}

const PoolView* poolFor(const std::vector<PoolView>& views, const IpAddr& ip) {
  for (const auto& v : views)
    if (v.contains(ip)) return &v;
  return nullptr;
}

std::string annotation(const Service& s, const char* key, const char* legacy) {
  for (const char* k : {key, legacy})
    if (auto it = s.meta.annotations.find(k); it != s.meta.annotations.end()) return it->second;
  return "";
}

// The families a LoadBalancer Service gets an address of (MetalLB: one per
// family of the Service, in spec.ipFamilies order): true = IPv6.
std::vector<bool> lbFamilies(const Service& s) {
  std::vector<bool> out;
  for (const auto& f : s.ipFamilies)
    if ((f == "IPv4" || f == "IPv6") && std::find(out.begin(), out.end(), f == "IPv6") == out.end())
      out.push_back(f == "IPv6");
  if (out.empty())
    for (const auto& ip : s.clusterIPs)
      if (auto a = parseIP(ip); a && std::find(out.begin(), out.end(), a->v6) == out.end())
        out.push_back(a->v6);
  if (out.empty()) out.push_back(false);
  return out;
}

bool requestsIP(const Service& s) {
  return !s.loadBalancerIP.empty() ||
         !annotation(s, kLbIPsAnnotation, kLbIPsAnnotationLegacy).empty();
}

// What the Service asks for in family v6 (spec.loadBalancerIP, else the
// first address of that family in the loadBalancerIPs annotation).
std::optional<IpAddr> requestedIP(const Service& s, bool v6) {
  if (!s.loadBalancerIP.empty()) {
    auto a = parseIP(s.loadBalancerIP);
    return a && a->v6 == v6 ? a : std::nullopt;
  }
  for (const auto& item : splitIPList(annotation(s, kLbIPsAnnotation, kLbIPsAnnotationLegacy)))
    if (auto a = parseIP(item); a && a->v6 == v6) return a;
  return std::nullopt;
}

void assignLoadBalancerIPs(std::map<Key, Service>& services,
                           const std::map<Key, IPAddressPool>& pools, const std::string& lbClass) {
  const std::vector<PoolView> views = poolViews(pools);
  std::set<IpAddr> taken;
  std::vector<Service*> wantsIP, wantsAny;
  auto give = [&](Service& s, const std::vector<IpAddr>& ips, const PoolView& p) {
    s.loadBalancerIngressIPs.clear();
    for (const auto& ip : ips) {
      taken.insert(ip);
      s.loadBalancerIngressIPs.push_back(formatIP(ip));
    }
    s.loadBalancerPool = p.name;
  };
  // One address per family, all from pool `p`, each usable and free.
  auto fits = [&](const std::vector<IpAddr>& ips, const PoolView& p) {
    for (const auto& ip : ips)
      if (!p.usable(ip) || taken.count(ip)) return false;
    return true;
  };
  for (auto& [key, s] : services) {
    // Not a LoadBalancer, or another implementation's (spec.loadBalancerClass):
    // no address from the pools (what the general path below does, without
    // the lookups).
    if (s.type != "LoadBalancer" || s.loadBalancerClass != lbClass) {
      s.loadBalancerIngressIPs.clear();
      s.loadBalancerPool.clear();
      continue;
    }
    const std::vector<bool> fams = lbFamilies(s);
    const std::string wantPool =
        annotation(s, kLbPoolRequestAnnotation, kLbPoolRequestAnnotationLegacy);
    // Keep the current addresses: one of each family, all in one pool,
    // still what the Service asks for.
    std::vector<IpAddr> cur;
    for (bool v6 : fams)
      for (const auto& text : s.loadBalancerIngressIPs)
        if (auto a = parseIP(text); a && a->v6 == v6) {
          cur.push_back(*a);
          break;
        }
    const PoolView* p =
        cur.size() == fams.size() && !cur.empty() ? poolFor(views, cur[0]) : nullptr;
    bool keep = p && fits(cur, *p) && (wantPool.empty() || wantPool == p->name);
    for (size_t i = 0; keep && i < cur.size(); ++i) {
      const auto want = requestedIP(s, cur[i].v6);
      if (requestsIP(s) && !(want && *want == cur[i])) keep = false;
    }
    if (keep) {
      give(s, cur, *p);
      continue;
    }
    s.loadBalancerIngressIPs.clear();
    s.loadBalancerPool.clear();
    (requestsIP(s) ? wantsIP : wantsAny).push_back(&s);
  }
  // Explicit requests before automatic assignment, so that the order of
  // Services does not decide whether a requested address is still free.
  for (Service* s : wantsIP) {
    const std::string wantPool =
        annotation(*s, kLbPoolRequestAnnotation, kLbPoolRequestAnnotationLegacy);
    std::vector<IpAddr> want;
    for (bool v6 : lbFamilies(*s))
      if (auto a = requestedIP(*s, v6)) want.push_back(*a);
    if (want.size() != lbFamilies(*s).size()) continue;  // a family not asked for: pending
    const PoolView* p = poolFor(views, want[0]);
    if (p && fits(want, *p) && (wantPool.empty() || wantPool == p->name)) give(*s, want, *p);
  }
  for (Service* s : wantsAny) {
    const std::string wantPool =
        annotation(*s, kLbPoolRequestAnnotation, kLbPoolRequestAnnotationLegacy);
    const std::vector<bool> fams = lbFamilies(*s);
    for (const auto& p : views) {
      if (wantPool.empty() ? !p.autoAssign : wantPool != p.name) continue;
      std::vector<IpAddr> ips;
      for (bool v6 : fams)
        if (auto ip = p.firstFree(v6, taken)) ips.push_back(*ip);
      if (ips.size() == fams.size()) {  // every family from this one pool
        give(*s, ips, p);
        break;
      }
    }
  }
}

std::string poolRef(const IPAddressPool& other, const IPAddressPool& self) {
  return goQuote(other.meta.ns == self.meta.ns ? other.meta.name
                                               : other.meta.ns + "/" + other.meta.name);
}

// The MetalLB rule that no two pools share an address.
Status checkPoolOverlap(const IPAddressPool& pool, const std::map<Key, IPAddressPool>& pools) {
  const Key key{pool.meta.ns, pool.meta.name};
  FieldErrors fe;
  for (size_t i = 0; i < pool.addresses.size(); ++i) {
    auto mine = parsePoolRange(pool.addresses[i]);
    if (!mine.ok()) continue;
    bool found = false;
    for (const auto& [okey, other] : pools) {
      if (okey == key || found) continue;
      for (const auto& a : other.addresses) {
        auto theirs = parsePoolRange(a);
        if (theirs.ok() && theirs->overlaps(*mine)) {
          fe.invalidStr(fmt::format("spec.addresses[{}]", i), pool.addresses[i],
                        fmt::format("overlaps with {} of IPAddressPool {}", goQuote(a),
                                    poolRef(other, pool)));
          found = true;
          break;
        }
      }
    }
  }
  if (fe.empty()) return {};
  return Error{EADDRINUSE, fe.message("IPAddressPool", pool.meta.name)};
}

// First-touch journal of one kind's map: the version before the first change.
template <class T>
struct Journal {
  std::map<Key, T>& m;
  std::vector<std::pair<Key, std::optional<T>>>& log;
  std::set<Key> seen;
  void touch(const Key& k) {
    if (!seen.insert(k).second) return;
    auto it = m.find(k);
    log.emplace_back(k, it == m.end() ? std::nullopt : std::optional<T>(it->second));
  }
};

template <class T>
void undoInto(std::map<Key, T>& m, std::vector<std::pair<Key, std::optional<T>>>& log) {
  for (auto it = log.rbegin(); it != log.rend(); ++it) {
    if (it->second)
      m[it->first] = std::move(*it->second);
    else
      m.erase(it->first);
  }
  log.clear();
}

template <class T>
void appendLog(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  from.clear();
}

// Hands a finished change's undo log to the caller's (if it asked for one).
void handOver(Store::Undo* to, Store::Undo& from) {
  if (!to) return;
  appendLog(to->services, from.services);
  appendLog(to->endpoints, from.endpoints);
  appendLog(to->slices, from.slices);
  appendLog(to->pools, from.pools);
  appendLog(to->l2Advertisements, from.l2Advertisements);
}

// assignLoadBalancerIPs, recording in `j` every Service whose status changed.
void assignLoadBalancerIPsLogged(std::map<Key, Service>& services,
                                 const std::map<Key, IPAddressPool>& pools,
                                 const std::string& lbClass, Journal<Service>& j) {
  struct Before {
    const Key* key;
    std::vector<std::string> ips;
    std::string pool;
  };
  std::vector<Before> before;
  for (const auto& [k, s] : services)
    if (s.type == "LoadBalancer" || !s.loadBalancerIngressIPs.empty() ||
        !s.loadBalancerPool.empty())
      before.push_back({&k, s.loadBalancerIngressIPs, s.loadBalancerPool});
  assignLoadBalancerIPs(services, pools, lbClass);
  for (auto& b : before) {
    const Service& now = services.at(*b.key);
    if (now.loadBalancerIngressIPs == b.ips && now.loadBalancerPool == b.pool) continue;
    if (!j.seen.insert(*b.key).second) continue;  // its older version is recorded already
    Service old = now;
    old.loadBalancerIngressIPs = std::move(b.ips);
    old.loadBalancerPool = std::move(b.pool);
    j.log.emplace_back(*b.key, std::move(old));
  }
}

// kube-apiserver's dropTypeDependentFields: an update that changes a
// Service's type drops the fields the new type cannot have when they are as
// stored (allocated, defaulted, or kept by a patch: the user did not ask
// for them), instead of refusing them. `kubectl patch svc np -p
// '{"spec":{"type":"ClusterIP"}}'` then works as against a cluster.
void dropTypeDependentFields(Service& s, const Service& old) {
  const auto external = [](const Service& x) {
    return x.type == "LoadBalancer" || x.type == "NodePort" ||
           (x.type == "ClusterIP" && !x.externalIPs.empty());
  };
  const auto needsNodePorts = [](const Service& x) {
    return x.type == "NodePort" || x.type == "LoadBalancer";
  };
  const auto nodePortMap = [](const Service& x) {
    std::map<std::pair<int32_t, std::string>, int32_t> m;
    for (const auto& p : x.ports) m[{p.port, p.protocol}] = p.nodePort;
    return m;
  };
  if (old.type != "ExternalName" && s.type == "ExternalName") {
    if (s.clusterIP == old.clusterIP && s.clusterIPs == old.clusterIPs) {
      s.clusterIP.clear();
      s.clusterIPs.clear();
    }
    if (s.ipFamilies == old.ipFamilies) s.ipFamilies.clear();
    if (s.ipFamilyPolicy == old.ipFamilyPolicy) s.ipFamilyPolicy.clear();
  }
  if (needsNodePorts(old) && !needsNodePorts(s) && nodePortMap(s) == nodePortMap(old))
    for (auto& p : s.ports) p.nodePort = 0;
  const auto needsHealthCheck = [](const Service& x) {
    return x.type == "LoadBalancer" && x.externalTrafficPolicy == "Local";
  };
  if (needsHealthCheck(old) && !needsHealthCheck(s) &&
      s.healthCheckNodePort == old.healthCheckNodePort)
    s.healthCheckNodePort = 0;
  if (old.type == "LoadBalancer" && s.type != "LoadBalancer") {
    if (s.allocateLoadBalancerNodePorts && old.allocateLoadBalancerNodePorts &&
        *s.allocateLoadBalancerNodePorts == *old.allocateLoadBalancerNodePorts)
      s.allocateLoadBalancerNodePorts.reset();
    if (s.loadBalancerClass == old.loadBalancerClass) s.loadBalancerClass.clear();
  }
  if (external(old) && !external(s) && s.externalTrafficPolicy == old.externalTrafficPolicy)
    s.externalTrafficPolicy.clear();
}

}  // namespace

Store::Store(StoreConfig cfg) : cfg_(std::move(cfg)) {}

Result<std::vector<ApplyOutcome>> Store::apply(const std::vector<Object>& objs, Undo* undo) {
  std::vector<Object> copy = objs;
  return apply(std::move(copy), undo);
}

Result<std::vector<ApplyOutcome>> Store::apply(std::vector<Object>&& objs, Undo* undo) {
  std::vector<std::string> errors;
  // The API's own objects come with this done (Kubernetes mode).
  if (!cfg_.apiOwned)
    for (auto& obj : objs)
      if (auto* s = std::get_if<Service>(&obj))
        if (auto it = services_.find({s->meta.ns, s->meta.name}); it != services_.end())
          dropTypeDependentFields(*s, it->second);
  for (const auto& obj : objs) {
    Status st = validate(obj);
    if (!st.ok()) errors.push_back(st.error().message);
  }
  if (!errors.empty()) return Error{EINVAL, fmt::format("{}", fmt::join(errors, "\n"))};

  // Changes are made in place and journaled; an error puts everything back.
  Undo local;
  Journal<Service> jSvc{services_, local.services, {}};
  Journal<Endpoints> jEp{endpoints_, local.endpoints, {}};
  Journal<EndpointSlice> jSl{slices_, local.slices, {}};
  Journal<IPAddressPool> jPool{pools_, local.pools, {}};
  Journal<L2Advertisement> jL2{l2Advertisements_, local.l2Advertisements, {}};
  auto& services = services_;
  auto& pools = pools_;
  const bool anyService = std::any_of(
      objs.begin(), objs.end(), [](const Object& o) { return std::holds_alternative<Service>(o); });
  // Only Services need the nodePort and ClusterIP holders: an apply of
  // Endpoints alone does not walk every Service.
  std::map<int32_t, Key> nodePorts;
  if (anyService) nodePorts = nodePortHolders(services);
  std::set<int32_t> requestedNodePorts;
  for (const auto& obj : objs)
    if (const auto* s = std::get_if<Service>(&obj)) {
      for (const auto& p : s->ports)
        if (p.nodePort != 0) requestedNodePorts.insert(p.nodePort);
      if (s->healthCheckNodePort != 0) requestedNodePorts.insert(s->healthCheckNodePort);
    }

  // Who holds which ClusterIP, kept up to date as the apply proceeds, and
  // the addresses this apply asks for (kept out of dynamic allocation).
  ClusterIPAllocator ips(cfg_);
  if (anyService) {
    for (const auto& [key, svc] : services) ips.hold(svc, key);
    for (const auto& obj : objs)
      if (const auto* s = std::get_if<Service>(&obj)) ips.request(*s);
  }

  std::vector<ApplyOutcome> outcomes;
  outcomes.reserve(objs.size());
  for (auto& obj : objs) {
    const ObjectMeta& meta = metaOf(obj);
    ApplyOutcome out{kindOf(obj), meta.ns, meta.name, ApplyAction::Unchanged};
    if (auto* in = std::get_if<Service>(&obj)) {
      Service s = std::move(*in);
      Key key{s.meta.ns, s.meta.name};
      auto it = services.find(key);
      const Service* old = it == services.end() ? nullptr : &it->second;
      if (cfg_.apiOwned) {
        jSvc.touch(key);
        out.action = upsert(services, std::move(s));
        outcomes.push_back(std::move(out));
        continue;
      }
      // kube-apiserver: a LoadBalancer's class may not change once set.
      if (old && old->type == "LoadBalancer" && s.type == "LoadBalancer" &&
          old->loadBalancerClass != s.loadBalancerClass) {
        FieldErrors fe;
        fe.invalidStr("spec.loadBalancerClass", s.loadBalancerClass, "may not change once set");
        errors.push_back(fe.message("Service", s.meta.name));
        continue;
      }
      if (auto st = ips.assign(s, old, key); !st) {
        errors.push_back(st.error().message);
        continue;
      }
      // kube-apiserver's default; an update that does not send it keeps it.
      if (s.type == "LoadBalancer" && !s.allocateLoadBalancerNodePorts)
        s.allocateLoadBalancerNodePorts =
            old && old->type == "LoadBalancer" && old->allocateLoadBalancerNodePorts
                ? old->allocateLoadBalancerNodePorts
                : std::optional<bool>(true);
      if (auto st = allocateNodePorts(s, old, nodePorts, requestedNodePorts, cfg_); !st) {
        errors.push_back(st.error().message);
        continue;
      }
      // Status is the store's (assignLoadBalancerIPs below), never the manifest's.
      s.loadBalancerIngressIPs = old ? old->loadBalancerIngressIPs : std::vector<std::string>{};
      s.loadBalancerProxyIPs.clear();  // only the API's status has them
      s.loadBalancerIngressHostnames.clear();
      s.loadBalancerPool = old ? old->loadBalancerPool : "";
      ips.commit(old, s, key);
      jSvc.touch(key);
      out.action = upsert(services, std::move(s));
    } else if (auto* e = std::get_if<Endpoints>(&obj)) {
      jEp.touch({e->meta.ns, e->meta.name});
      out.action = upsert(endpoints_, std::move(*e));
    } else if (auto* sl = std::get_if<EndpointSlice>(&obj)) {
      Key sk{sl->meta.ns, sl->meta.name};
      // kube-apiserver: addressType is immutable (the API owns the check
      // in Kubernetes mode).
      if (auto it = slices_.find(sk);
          !cfg_.apiOwned && it != slices_.end() && it->second.addressType != sl->addressType) {
        FieldErrors fe;
        fe.invalidStr("addressType", sl->addressType, "field is immutable");
        errors.push_back(fe.message("EndpointSlice", sl->meta.name));
        continue;
      }
      jSl.touch(sk);
      out.action = upsert(slices_, std::move(*sl));
      reindexSlice(sk);
    } else if (const auto* p = std::get_if<IPAddressPool>(&obj)) {
      if (auto st = checkPoolOverlap(*p, pools); !st) {
        errors.push_back(st.error().message);
        continue;
      }
      jPool.touch({p->meta.ns, p->meta.name});
      out.action = upsert(pools, *p);
    } else {
      const auto& l2 = std::get<L2Advertisement>(obj);
      jL2.touch({l2.meta.ns, l2.meta.name});
      out.action = upsert(l2Advertisements_, l2);
    }
    outcomes.push_back(std::move(out));
  }
  if (!errors.empty()) {
    revert(std::move(local));
    return Error{EINVAL, fmt::format("{}", fmt::join(errors, "\n"))};
  }
  // Ingress IPs depend on the Services and the pools alone: an apply of
  // Endpoints (one endpoint change) does not walk every Service.
  const bool anyPool = std::any_of(objs.begin(), objs.end(), [](const Object& o) {
    return std::holds_alternative<IPAddressPool>(o);
  });
  if ((anyService || anyPool) && !cfg_.apiOwned)
    assignLoadBalancerIPsLogged(services, pools, cfg_.loadBalancerClass, jSvc);
  handOver(undo, local);
  return outcomes;
}

void Store::revert(Undo&& undo) {
  undoInto(services_, undo.services);
  undoInto(endpoints_, undo.endpoints);
  std::vector<Key> slices;
  for (const auto& [k, v] : undo.slices) slices.push_back(k);
  undoInto(slices_, undo.slices);
  for (const Key& k : slices) reindexSlice(k);
  undoInto(pools_, undo.pools);
  undoInto(l2Advertisements_, undo.l2Advertisements);
}

Result<std::vector<ApplyOutcome>> Store::remove(const std::string& kind, const std::string& ns,
                                                const std::string& name, Undo* undo) {
  Undo local;
  auto r = removeOne(kind, ns, name, &local);
  if (r.ok() && !cfg_.apiOwned) {
    Journal<Service> jSvc{services_, local.services, {}};
    assignLoadBalancerIPsLogged(services_, pools_, cfg_.loadBalancerClass, jSvc);
  }
  handOver(undo, local);
  return r;
}

Result<std::vector<ApplyOutcome>> Store::removeOne(const std::string& kind, const std::string& ns,
                                                   const std::string& name, Undo* undo) {
  auto k = kindFromResource(kind);
  if (!k)
    return Error{EINVAL,
                 fmt::format("error: the server doesn't have a resource type {}", goQuote(kind))};
  Key key{ns.empty() ? "default" : ns, name};
  auto erase = [&](auto& m, auto& log) -> size_t {
    auto it = m.find(key);
    if (it == m.end()) return 0;
    log.emplace_back(key, std::move(it->second));
    m.erase(it);
    return 1;
  };
  size_t erased = 0;
  if (*k == "Service")
    erased = erase(services_, undo->services);
  else if (*k == "Endpoints")
    erased = erase(endpoints_, undo->endpoints);
  else if (*k == "EndpointSlice") {
    erased = erase(slices_, undo->slices);
    reindexSlice(key);
  } else if (*k == "IPAddressPool")
    erased = erase(pools_, undo->pools);
  else
    erased = erase(l2Advertisements_, undo->l2Advertisements);
  if (!erased) return Error{ENOENT, notFound(*k, name)};
  return std::vector<ApplyOutcome>{{*k, key.first, name, ApplyAction::Deleted}};
}

Result<Object> Store::find(const ObjectRef& ref) const {
  auto k = kindFromResource(ref.kind);
  if (!k)
    return Error{EINVAL, fmt::format("error: the server doesn't have a resource type {}",
                                     goQuote(ref.kind))};
  Key key{ref.ns.empty() ? "default" : ref.ns, ref.name};
  auto get = [&](const auto& m) -> std::optional<Object> {
    auto it = m.find(key);
    if (it == m.end()) return std::nullopt;
    return Object{it->second};
  };
  std::optional<Object> o;
  if (*k == "Service")
    o = get(services_);
  else if (*k == "Endpoints")
    o = get(endpoints_);
  else if (*k == "EndpointSlice")
    o = get(slices_);
  else if (*k == "IPAddressPool")
    o = get(pools_);
  else
    o = get(l2Advertisements_);
  if (!o) return Error{ENOENT, notFound(*k, ref.name)};
  return std::move(*o);
}

Result<std::vector<ApplyOutcome>> Store::removeAll(const std::vector<Object>& objs, Undo* undo) {
  std::vector<ObjectRef> refs;
  refs.reserve(objs.size());
  for (const auto& obj : objs) {
    const ObjectMeta& m = metaOf(obj);
    refs.push_back({kindOf(obj), m.ns, m.name});
  }
  return removeAll(refs, undo);
}

Result<std::vector<ApplyOutcome>> Store::removeAll(const std::vector<ObjectRef>& refs, Undo* undo,
                                                   std::vector<std::string>* missing) {
  Undo local;  // in place; an error puts everything back
  std::vector<std::string> errors;
  std::vector<ApplyOutcome> outcomes;
  std::set<ObjectRef> done;
  for (const auto& ref : refs) {
    // The same object twice in one file is deleted once.
    if (!done.insert(ref).second) continue;
    auto r = removeOne(ref.kind, ref.ns, ref.name, &local);
    if (!r.ok()) {
      (missing && r.error().code == ENOENT ? *missing : errors).push_back(r.error().message);
      continue;
    }
    outcomes.insert(outcomes.end(), r->begin(), r->end());
  }
  if (!errors.empty()) {
    revert(std::move(local));
    return Error{ENOENT, fmt::format("{}", fmt::join(errors, "\n"))};
  }
  if (!cfg_.apiOwned) {
    Journal<Service> jSvc{services_, local.services, {}};
    for (const auto& [k, v] : local.services) jSvc.seen.insert(k);
    assignLoadBalancerIPsLogged(services_, pools_, cfg_.loadBalancerClass, jSvc);
  }
  handOver(undo, local);
  return outcomes;
}

std::vector<ObjectRef> Store::notListed(const std::vector<std::string>& kinds,
                                        const std::vector<Object>& listed) const {
  std::set<ObjectRef> named;
  for (const auto& obj : listed) {
    const ObjectMeta& m = metaOf(obj);
    named.insert({kindOf(obj), m.ns, m.name});
  }
  std::vector<ObjectRef> out;
  auto collect = [&](const std::string& kind, const auto& m) {
    for (const auto& [key, obj] : m) {
      ObjectRef ref{kind, key.first, key.second};
      if (!named.count(ref)) out.push_back(std::move(ref));
    }
  };
  for (const auto& kind : kinds) {
    if (kind == "Service")
      collect(kind, services_);
    else if (kind == "Endpoints")
      collect(kind, endpoints_);
    else if (kind == "EndpointSlice")
      collect(kind, slices_);
    else if (kind == "IPAddressPool")
      collect(kind, pools_);
    else if (kind == "L2Advertisement")
      collect(kind, l2Advertisements_);
  }
  return out;
}

std::set<Store::Key> Store::servicesTouchedBy(const std::vector<Object>& objs) const {
  std::set<Key> out;
  for (const auto& obj : objs) {
    const ObjectMeta& m = metaOf(obj);
    if (std::holds_alternative<Service>(obj) || std::holds_alternative<Endpoints>(obj)) {
      out.insert({m.ns, m.name});
    } else if (std::holds_alternative<EndpointSlice>(obj)) {
      auto more = servicesTouchedBy("EndpointSlice", m.ns, m.name);
      out.insert(more.begin(), more.end());
      auto it = m.labels.find("kubernetes.io/service-name");
      if (it != m.labels.end()) out.insert({m.ns, it->second});
    }
  }
  return out;
}

std::set<Store::Key> Store::servicesTouchedBy(const std::string& kind, const std::string& ns,
                                              const std::string& name) const {
  std::set<Key> out;
  auto k = kindFromResource(kind);
  if (!k) return out;
  const Key key{ns.empty() ? "default" : ns, name};
  if (*k == "Service" || *k == "Endpoints") {
    out.insert(key);
  } else if (*k == "EndpointSlice") {
    auto it = slices_.find(key);
    if (it != slices_.end()) {
      auto l = it->second.meta.labels.find("kubernetes.io/service-name");
      if (l != it->second.meta.labels.end()) out.insert({key.first, l->second});
    }
  }
  return out;
}

nlohmann::json Store::toJson() const {
  json services = json::array(), endpoints = json::array(), slices = json::array();
  for (const auto& [k, s] : services_) services.push_back(svclb::toJson(Object{s}));
  for (const auto& [k, e] : endpoints_) endpoints.push_back(svclb::toJson(Object{e}));
  for (const auto& [k, s] : slices_) slices.push_back(svclb::toJson(Object{s}));
  json pools = json::array(), l2s = json::array();
  for (const auto& [k, p] : pools_) pools.push_back(svclb::toJson(Object{p}));
  for (const auto& [k, a] : l2Advertisements_) l2s.push_back(svclb::toJson(Object{a}));
  return json{{"version", 1},
              {"services", std::move(services)},
              {"endpoints", std::move(endpoints)},
              {"endpointSlices", std::move(slices)},
              {"ipAddressPools", std::move(pools)},
              {"l2Advertisements", std::move(l2s)}};
}

std::vector<std::string> Store::invalidObjects() const {
  std::vector<std::string> out;
  auto check = [&](const auto& objects) {
    for (const auto& [key, o] : objects)
      if (auto st = validate(Object{o}); !st)
        out.push_back(fmt::format("{}: {}", key.first, st.error().message));
  };
  check(services_);
  check(endpoints_);
  check(slices_);
  check(pools_);
  check(l2Advertisements_);
  return out;
}

Result<Store> Store::fromJson(const nlohmann::json& j, StoreConfig cfg) {
  if (!j.is_object()) return Error{EINVAL, "invalid state: not a JSON object"};
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() != 1)
    return Error{EINVAL, "invalid state: unsupported version (want 1)"};
  Store st(std::move(cfg));
  const std::pair<const char*, const char*> lists[] = {{"services", "Service"},
                                                       {"endpoints", "Endpoints"},
                                                       {"endpointSlices", "EndpointSlice"},
                                                       {"ipAddressPools", "IPAddressPool"},
                                                       {"l2Advertisements", "L2Advertisement"}};
  for (const auto& [field, kind] : lists) {
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_array())
      return Error{EINVAL, fmt::format("invalid state: {} is not a list", field)};
    for (const auto& item : *it) {
      auto obj = svclb::fromJson(item);
      if (!obj.ok()) return Error{EINVAL, fmt::format("invalid state: {}", obj.error().message)};
      if (kindOf(*obj) != kind)
        return Error{EINVAL, fmt::format("invalid state: {} in {}", kindOf(*obj), field)};
      const ObjectMeta& m = metaOf(*obj);
      Key key{m.ns, m.name};
      if (auto* s = std::get_if<Service>(&*obj))
        st.services_[key] = std::move(*s);
      else if (auto* e = std::get_if<Endpoints>(&*obj))
        st.endpoints_[key] = std::move(*e);
      else if (auto* sl = std::get_if<EndpointSlice>(&*obj))
        st.slices_[key] = std::move(*sl);
      else if (auto* p = std::get_if<IPAddressPool>(&*obj))
        st.pools_[key] = std::move(*p);
      else
        st.l2Advertisements_[key] = std::get<L2Advertisement>(std::move(*obj));
    }
  }
  st.repair();
  return st;
}

void Store::repair() {
  rebuildSliceIndex();
  for (auto& [key, svc] : services_) inferIPFamilies(svc);
  if (cfg_.apiOwned) return;  // the API server's allocations and status stand
  // A state file from before nodePort allocation, or written under another
  // range: fill in what is missing, keep everything that is there.
  std::map<int32_t, Key> holders = nodePortHolders(services_);
  for (auto& [key, svc] : services_) {
    Service next = svc;
    // Best effort: a Service whose ports cannot be allocated keeps what it has.
    if (allocateNodePorts(next, &svc, holders, {}, cfg_).ok()) svc = std::move(next);
  }
  assignLoadBalancerIPs(services_, pools_, cfg_.loadBalancerClass);
}

Status Store::save(const std::string& path) const { return StateFile(path).saveAll(*this); }

Result<Store> Store::load(const std::string& path, StoreConfig cfg) {
  return StateFile(path).load(std::move(cfg));
}

}  // namespace svclb
