// The cluster zone's records (dns/zone.h). One entry per Service: what the
// kubernetes/dns specification (schema 1.1.0) derives from it, kept apart
// from the Store so that lookups never touch it; a reverse index (address
// -> names) for PTR, and a count of Services per namespace (a namespace
// "exists" while it holds a Service: svclb has no Namespace objects).
#include "dns/zone.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <unordered_map>

namespace svclb::dns {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string dotted(uint32_t ip) {
  return fmt::format("{}.{}.{}.{}", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

std::optional<uint32_t> parseV4(std::string_view s) {
  in_addr a{};
  const std::string z(s);
  if (inet_pton(AF_INET, z.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

// "10-244-1-5" -> 10.244.1.5 (the spec's name for an endpoint without a
// hostname, and for pods).
std::optional<uint32_t> parseDashed(std::string_view s) {
  uint32_t ip = 0;
  int parts = 0;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find('-', i);
    if (j == std::string_view::npos) j = s.size();
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(s.data() + i, s.data() + j, v);
    if (j == i || ec != std::errc() || end != s.data() + j || v > 255 || j - i > 3) return {};
    ip = ip << 8 | v;
    ++parts;
    i = j + 1;
    if (j == s.size()) break;
  }
  if (parts != 4) return std::nullopt;
  return ip;
}

std::string dashed(uint32_t ip) {
  return fmt::format("{}-{}-{}-{}", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

// An address of either family, as the zone's records hold it.
struct Addr {
  bool v6 = false;
  uint32_t v4 = 0;  // host order
  Ip6 a6{};
  auto operator<=>(const Addr&) const = default;
};

std::optional<Addr> parseAddr(std::string_view s) {
  if (auto v4 = parseV4(s)) return Addr{false, *v4, {}};
  Ip6 a{};
  const std::string z(s);
  if (inet_pton(AF_INET6, z.c_str(), a.data()) != 1) return std::nullopt;
  return Addr{true, 0, a};
}

// An endpoint's name without a hostname: "10-244-1-5", or the IPv6 address
// with '-' for ':' ("fd00-10-244-1--5"), as CoreDNS names them.
std::string dashedAddr(const Addr& a) {
  if (!a.v6) return dashed(a.v4);
  std::string s = formatIPv6(a.a6);
  for (char& c : s)
    if (c == ':') c = '-';
  return s;
}

// The address of an ip6.arpa name's 32 nibble labels (given right to left,
// as labelsReversed returns them: the first nibble first).
std::optional<Addr> parseNibbles(const std::vector<std::string_view>& labels) {
  if (labels.size() != 32) return std::nullopt;
  Addr a;
  a.v6 = true;
  for (size_t i = 0; i < 32; ++i) {
    if (labels[i].size() != 1) return std::nullopt;
    const char c = labels[i][0];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return std::nullopt;
    a.a6[i / 2] = static_cast<uint8_t>(a.a6[i / 2] | (i % 2 == 0 ? v << 4 : v));
  }
  return a;
}

// Labels of an absolute lower-case name, right to left ("a.b.c." -> c, b, a).
std::vector<std::string_view> labelsReversed(std::string_view name) {
  std::vector<std::string_view> out;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  while (!name.empty()) {
    const size_t dot = name.rfind('.');
    if (dot == std::string_view::npos) {
      out.push_back(name);
      break;
    }
    out.push_back(name.substr(dot + 1));
    name = name.substr(0, dot);
  }
  return out;
}

}  // namespace

std::string Record::str() const {
  static const std::map<uint16_t, const char*> kNames{
      {kTypeA, "A"},     {kTypeNS, "NS"},   {kTypeCNAME, "CNAME"}, {kTypeSOA, "SOA"},
      {kTypePTR, "PTR"}, {kTypeTXT, "TXT"}, {kTypeAAAA, "AAAA"},   {kTypeSRV, "SRV"}};
  auto it = kNames.find(type);
  std::string t = it != kNames.end() ? it->second : fmt::format("TYPE{}", type);
  std::string head = fmt::format("{} {} IN {} ", name, ttl, t);
  switch (type) {
    case kTypeA:
      return head + dotted(ipv4);
    case kTypeAAAA:
      return head + formatIPv6(ipv6);
    case kTypeNS:
    case kTypeCNAME:
    case kTypePTR:
      return head + target;
    case kTypeSRV:
      return head + fmt::format("{} {} {} {}", priority, weight, port, target);
    case kTypeTXT:
      return head + "\"" + text + "\"";
    case kTypeSOA:
      return head + fmt::format("{} {} {} {} {} {} {}", target, rname, serial, refresh, retry,
                                expire, minimum);
    default:
      return head;
  }
}

// ---- the entries --------------------------------------------------------------

namespace {

struct Endpoint {
  Addr ip;
  std::string host;  // the endpoint's hostname, or its dashed address
};

struct NamedPort {
  std::string name;   // lower case, as in _name
  std::string proto;  // "tcp" | "udp" | "sctp"
  uint16_t port = 0;
};

struct Entry {
  enum class Kind { ClusterIP, Headless, ExternalName } kind = Kind::ClusterIP;
  std::string ns, name;
  std::string fqdn;              // "name.ns.svc.zone."
  std::vector<Addr> clusterIPs;  // one per family, the primary first
  std::string target;            // ExternalName: lower case, absolute; "" = IP-looking (no record)
  std::vector<NamedPort> ports;
  std::vector<Endpoint> endpoints;  // headless: the ones DNS names, by address
};

// The endpoints a headless Service's name answers: ready ones (ready unset
// counts as ready), every one with publishNotReadyAddresses; from its IPv4
// and IPv6 EndpointSlices, else its Endpoints object (the dataplane's rule).
std::vector<Endpoint> endpointsOf(const Store& store, const Store::Key& key, const Service& svc) {
  std::map<Addr, std::string> byIp;  // one record per address; a hostname wins
  auto add = [&](const Addr& ip, const std::string& hostname) {
    auto [it, fresh] = byIp.emplace(ip, hostname);
    if (!fresh && it->second.empty()) it->second = hostname;
  };
  const auto slices = store.slicesOf(key);
  bool anySlice = false;
  for (const EndpointSlice* s : slices) {
    if (s->addressType != "IPv4" && s->addressType != "IPv6") continue;
    anySlice = true;
    for (const auto& ep : s->endpoints) {
      const bool ready = !ep.conditions.ready || *ep.conditions.ready;
      if (!ready && !svc.publishNotReadyAddresses) continue;
      for (const auto& a : ep.addresses)
        if (auto ip = parseAddr(a)) add(*ip, lower(ep.hostname));
    }
  }
  if (!anySlice) {
    auto it = store.endpoints().find(key);
    if (it != store.endpoints().end())
      for (const auto& sub : it->second.subsets) {
        for (const auto& a : sub.addresses)
          if (auto ip = parseAddr(a.ip)) add(*ip, lower(a.hostname));
        if (svc.publishNotReadyAddresses)
          for (const auto& a : sub.notReadyAddresses)
            if (auto ip = parseAddr(a.ip)) add(*ip, lower(a.hostname));
      }
  }
  std::vector<Endpoint> out;
  out.reserve(byIp.size());
  for (auto& [ip, host] : byIp)
    out.push_back({ip, host.empty() ? dashedAddr(ip) : std::move(host)});
  return out;
}

std::optional<Entry> entryFor(const Store& store, const Store::Key& key, const std::string& zone) {
  auto it = store.services().find(key);
  if (it == store.services().end()) return std::nullopt;
  const Service& svc = it->second;
  Entry e;
  e.ns = lower(key.first);
  e.name = lower(key.second);
  e.fqdn = e.name + "." + e.ns + ".svc." + zone;
  if (svc.type == "ExternalName") {
    e.kind = Entry::Kind::ExternalName;
    std::string t = lower(svc.externalName);
    if (!t.empty() && t.back() == '.') t.pop_back();
    // "An ExternalName that resembles an IPv4 address is not resolved by DNS
    // servers" (Kubernetes docs): no record at all.
    e.target = t.empty() || parseV4(t) ? "" : t + ".";
  } else if (svc.clusterIP == "None") {
    e.kind = Entry::Kind::Headless;
    e.endpoints = endpointsOf(store, key, svc);
  } else {
    for (const auto& ip :
         svc.clusterIPs.empty() ? std::vector<std::string>{svc.clusterIP} : svc.clusterIPs)
      if (auto a = parseAddr(ip)) e.clusterIPs.push_back(*a);
    if (e.clusterIPs.empty()) return std::nullopt;  // no address yet
  }
  for (const auto& p : svc.ports) {
    if (p.name.empty() || p.port < 1 || p.port > 65535) continue;
    e.ports.push_back({lower(p.name), lower(p.protocol), static_cast<uint16_t>(p.port)});
  }
  return e;
}

// The reverse names an entry owns: address -> name.
std::vector<std::pair<Addr, std::string>> ptrsOf(const Entry& e) {
  std::vector<std::pair<Addr, std::string>> out;
  if (e.kind == Entry::Kind::ClusterIP)
    for (const auto& ip : e.clusterIPs) out.emplace_back(ip, e.fqdn);
  if (e.kind == Entry::Kind::Headless)
    for (const auto& ep : e.endpoints) out.emplace_back(ep.ip, ep.host + "." + e.fqdn);
  return out;
}

}  // namespace

struct Zone::Impl {
  mutable std::shared_mutex mu;
  std::map<Store::Key, Entry> entries;       // by (namespace, name), lower case
  std::map<std::string, size_t> namespaces;  // Services per namespace
  std::multimap<Addr, std::string> ptrs;     // address -> owner name
  uint32_t serial = 0;

  void erase(const Store::Key& k) {
    auto it = entries.find(k);
    if (it == entries.end()) return;
    for (const auto& [ip, name] : ptrsOf(it->second)) {
      auto [b, e] = ptrs.equal_range(ip);
      for (auto p = b; p != e; ++p)
        if (p->second == name) {
          ptrs.erase(p);
          break;
        }
    }
    if (--namespaces[it->second.ns] == 0) namespaces.erase(it->second.ns);
    entries.erase(it);
  }
  void insert(Entry e) {
    for (auto& [ip, name] : ptrsOf(e)) ptrs.emplace(ip, std::move(name));
    ++namespaces[e.ns];
    Store::Key k{e.ns, e.name};
    entries.emplace(std::move(k), std::move(e));
  }
};

Zone::Zone(ZoneConfig cfg) : cfg_(std::move(cfg)), impl_(std::make_unique<Impl>()) {
  cfg_.domain = lower(cfg_.domain);
  while (!cfg_.domain.empty() && cfg_.domain.back() == '.') cfg_.domain.pop_back();
  cfg_.domain += ".";
}

Zone::~Zone() = default;

size_t Zone::services() const {
  std::shared_lock lk(impl_->mu);
  return impl_->entries.size();
}

void Zone::update(const Store& store, const std::set<Store::Key>* touched) {
  // Derived outside the lock: lookups wait only for the swap.
  std::vector<std::pair<Store::Key, std::optional<Entry>>> fresh;
  if (touched) {
    fresh.reserve(touched->size());
    for (const auto& k : *touched) fresh.emplace_back(k, entryFor(store, k, cfg_.domain));
  } else {
    fresh.reserve(store.services().size());
    for (const auto& [k, svc] : store.services())
      fresh.emplace_back(k, entryFor(store, k, cfg_.domain));
  }
  std::unique_lock lk(impl_->mu);
  if (!touched) {
    impl_->entries.clear();
    impl_->namespaces.clear();
    impl_->ptrs.clear();
  }
  for (auto& [k, e] : fresh) {
    impl_->erase({lower(k.first), lower(k.second)});
    if (e) impl_->insert(std::move(*e));
  }
  // The SOA serial: the time of the last change (seconds), always increasing.
  impl_->serial = std::max<uint32_t>(impl_->serial + 1, static_cast<uint32_t>(std::time(nullptr)));
}

// ---- lookups ----------------------------------------------------------------

namespace {

// An SRV answer's row: owner, port, target, the target's addresses.
using SrvRow = std::tuple<std::string, uint16_t, std::string, std::vector<Addr>>;

struct Lookup {
  const ZoneConfig& cfg;
  uint32_t serial;

  Record rec(std::string name, uint16_t type) const {
    Record r;
    r.name = std::move(name);
    r.type = type;
    r.ttl = cfg.ttl;
    return r;
  }
  Record a(std::string name, uint32_t ip) const {
    Record r = rec(std::move(name), kTypeA);
    r.ipv4 = ip;
    return r;
  }
  Record addr(std::string name, const Addr& ip) const {
    if (!ip.v6) return a(std::move(name), ip.v4);
    Record r = rec(std::move(name), kTypeAAAA);
    r.ipv6 = ip.a6;
    return r;
  }
  // Whether a question of type qtype asks for `ip`'s record (A: IPv4, AAAA:
  // IPv6, ANY: both).
  static bool wants(uint16_t qtype, const Addr& ip) {
    return qtype == kTypeANY || qtype == (ip.v6 ? kTypeAAAA : kTypeA);
  }
  Record soa(const std::string& apex) const {
    Record r = rec(apex, kTypeSOA);
    r.target = "ns.dns." + apex;
    r.rname = "hostmaster." + apex;
    r.serial = serial;
    r.refresh = 7200;
    r.retry = 1800;
    r.expire = 86400;
    r.minimum = cfg.ttl;
    return r;
  }
  Answer nxdomain(const std::string& apex) const {
    Answer ans;
    ans.rcode = kNXDomain;
    ans.authority.push_back(soa(apex));
    return ans;
  }
  Answer nodata(const std::string& apex) const {
    Answer ans;
    ans.authority.push_back(soa(apex));
    return ans;
  }
  // SRV records sharing the weight as CoreDNS does: 100 / how many; the
  // targets' A/AAAA records in the additional section when `extra`.
  void srv(Answer& ans, std::vector<SrvRow> rows, bool extra = true) const {
    const uint16_t w = rows.empty() ? 0 : static_cast<uint16_t>(100 / rows.size());
    std::set<std::pair<std::string, Addr>> extraDone;
    std::set<std::tuple<std::string, uint16_t, std::string>> done;
    for (auto& [owner, port, target, ips] : rows) {
      // A dual-stack Service has one row per ClusterIP (weight 50 each, as
      // CoreDNS counts them) and one SRV record: identical ones are merged.
      if (done.insert({owner, port, target}).second) {
        Record r = rec(owner, kTypeSRV);
        r.priority = 0;
        r.weight = w;
        r.port = port;
        r.target = target;
        ans.answer.push_back(std::move(r));
      }
      if (extra)
        for (const Addr& ip : ips)
          if (extraDone.insert({target, ip}).second) ans.additional.push_back(addr(target, ip));
    }
  }
};

}  // namespace

Answer Zone::lookup(std::string_view qnameIn, uint16_t qtype) const {
  std::string qname = lower(qnameIn);
  if (qname.empty() || qname.back() != '.') qname += '.';
  const std::string& zone = cfg_.domain;

  std::shared_lock lk(impl_->mu);
  const Impl& z = *impl_;
  const Lookup L{cfg_, z.serial};

  // Reverse names of the addresses the zone holds; others go upstream
  // (kubeadm's Corefile: fallthrough in-addr.arpa ip6.arpa).
  auto ptrAnswer = [&](const Addr& addr, const char* apex) -> std::optional<Answer> {
    auto [b, e] = z.ptrs.equal_range(addr);
    if (b == e) return std::nullopt;
    if (qtype != kTypePTR && qtype != kTypeANY) return L.nodata(apex);
    Answer ans;
    std::set<std::string> names;
    for (auto p = b; p != e; ++p) names.insert(p->second);
    for (const auto& n : names) {
      Record r = L.rec(qname, kTypePTR);
      r.target = n;
      ans.answer.push_back(std::move(r));
    }
    return ans;
  };
  static constexpr std::string_view kArpa = ".in-addr.arpa.";
  if (qname.size() > kArpa.size() && qname.ends_with(kArpa)) {
    auto labels = labelsReversed(std::string_view(qname).substr(0, qname.size() - kArpa.size()));
    if (labels.size() == 4) {
      // 4.3.2.1.in-addr.arpa: labelsReversed gives 1, 2, 3, 4.
      const std::string ip = fmt::format("{}.{}.{}.{}", labels[0], labels[1], labels[2], labels[3]);
      if (auto addr = parseV4(ip))
        if (auto ans = ptrAnswer(Addr{false, *addr, {}}, "in-addr.arpa.")) return *ans;
    }
    Answer fwd;
    fwd.kind = Answer::Kind::Forward;
    return fwd;
  }

  static constexpr std::string_view kArpa6 = ".ip6.arpa.";
  if (qname.size() > kArpa6.size() && qname.ends_with(kArpa6)) {
    auto labels = labelsReversed(std::string_view(qname).substr(0, qname.size() - kArpa6.size()));
    if (auto addr = parseNibbles(labels))
      if (auto ans = ptrAnswer(*addr, "ip6.arpa.")) return *ans;
    Answer fwd;
    fwd.kind = Answer::Kind::Forward;
    return fwd;
  }

  // Outside the zone: forwarded.
  if (qname != zone && !(qname.size() > zone.size() && qname.ends_with(zone) &&
                         qname[qname.size() - zone.size() - 1] == '.')) {
    Answer fwd;
    fwd.kind = Answer::Kind::Forward;
    return fwd;
  }
  const auto labels =
      qname == zone ? std::vector<std::string_view>{}
                    : labelsReversed(std::string_view(qname).substr(0, qname.size() - zone.size()));
  const size_t n = labels.size();
  const bool addrQuery = qtype == kTypeA || qtype == kTypeANY;
  // CoreDNS answers a PTR question for a forward name of the zone, known or
  // not, with NODATA (reverse_test.go).
  if (qtype == kTypePTR) return L.nodata(zone);

  // The apex: SOA, NS (ns.dns.ZONE, whose A is the cluster DNS address).
  if (n == 0) {
    Answer ans;
    if (qtype == kTypeSOA || qtype == kTypeANY) ans.answer.push_back(L.soa(zone));
    if (qtype == kTypeNS || qtype == kTypeANY) {
      Record r = L.rec(zone, kTypeNS);
      r.target = "ns.dns." + zone;
      ans.answer.push_back(std::move(r));
      if (cfg_.nsAddress) ans.additional.push_back(L.a("ns.dns." + zone, cfg_.nsAddress));
      if (cfg_.nsAddress6 != Ip6{})
        ans.additional.push_back(L.addr("ns.dns." + zone, Addr{true, 0, cfg_.nsAddress6}));
    }
    if (ans.answer.empty()) return L.nodata(zone);
    return ans;
  }
  if (n == 1 && labels[0] == "dns-version") {
    if (qtype != kTypeTXT && qtype != kTypeANY) return L.nodata(zone);
    Answer ans;
    Record r = L.rec(qname, kTypeTXT);
    r.text = "1.1.0";
    ans.answer.push_back(std::move(r));
    return ans;
  }
  if (labels[0] == "dns") {
    if (n == 1) return L.nodata(zone);  // an empty non-terminal
    if (n == 2 && labels[1] == "ns") {
      Answer ans;
      if (cfg_.nsAddress && addrQuery) ans.answer.push_back(L.a(qname, cfg_.nsAddress));
      if (cfg_.nsAddress6 != Ip6{} && (qtype == kTypeAAAA || qtype == kTypeANY))
        ans.answer.push_back(L.addr(qname, Addr{true, 0, cfg_.nsAddress6}));
      if (ans.answer.empty()) return L.nodata(zone);
      return ans;
    }
    return L.nxdomain(zone);
  }
  if (labels[0] == "pod") {
    // pods insecure: A-B-C-D.NAMESPACE.pod.ZONE answers A.B.C.D.
    if (n == 1) return L.nodata(zone);
    if (n == 2) return L.nxdomain(zone);  // NS.pod.ZONE (handler_pod_insecure_test.go)
    if (n != 3) return L.nxdomain(zone);
    auto ip = parseDashed(labels[2]);
    // As CoreDNS: the namespace must exist (here: hold a Service).
    if (!ip || !z.namespaces.count(std::string(labels[1]))) return L.nxdomain(zone);
    if (!addrQuery) return L.nodata(zone);
    Answer ans;
    ans.answer.push_back(L.a(qname, *ip));
    return ans;
  }
  if (labels[0] != "svc") return L.nxdomain(zone);
  if (n == 1) return L.nodata(zone);  // svc.ZONE
  const std::string ns(labels[1]);
  if (n == 2) return z.namespaces.count(ns) ? L.nodata(zone) : L.nxdomain(zone);
  auto it = z.entries.find({ns, std::string(labels[2])});
  if (it == z.entries.end()) return L.nxdomain(zone);
  const Entry& e = it->second;

  if (n == 3) {  // NAME.NS.svc.ZONE
    Answer ans;
    switch (e.kind) {
      case Entry::Kind::ExternalName: {
        if (e.target.empty()) return L.nxdomain(zone);
        if (qtype == kTypeSRV && !e.ports.empty()) {
          std::vector<SrvRow> rows;
          for (const auto& p : e.ports)
            rows.emplace_back(qname, p.port, e.target, std::vector<Addr>{});
          L.srv(ans, std::move(rows));
          return ans;
        }
        Record c = L.rec(qname, kTypeCNAME);
        c.target = e.target;
        ans.answer.push_back(std::move(c));
        if (qtype == kTypeA || qtype == kTypeAAAA) {
          const bool inZone = e.target.ends_with("." + zone);
          if (!inZone) {
            ans.chase = e.target;
          } else {
            // The target's own answer, from this zone (one level: a chain
            // of in-zone ExternalNames ends at the first one's target).
            const std::string target = e.target;
            lk.unlock();  // lookup takes it again
            Answer t = lookup(target, qtype);
            for (auto& r : t.answer)
              if (r.type != kTypeCNAME) ans.answer.push_back(std::move(r));
            ans.rcode = t.rcode;
            if (ans.answer.size() == 1) ans.authority = std::move(t.authority);
          }
        }
        return ans;
      }
      case Entry::Kind::ClusterIP:
        if (qtype == kTypeANY) {  // every record at the name
          for (const auto& ip : e.clusterIPs) ans.answer.push_back(L.addr(qname, ip));
          std::vector<SrvRow> rows;
          for (const auto& p : e.ports)
            for (const auto& ip : e.clusterIPs) rows.push_back({qname, p.port, e.fqdn, {ip}});
          L.srv(ans, std::move(rows), false);
          return ans;
        }
        if (qtype == kTypeA || qtype == kTypeAAAA) {  // this family's ClusterIP, or NODATA
          for (const auto& ip : e.clusterIPs)
            if (L.wants(qtype, ip)) ans.answer.push_back(L.addr(qname, ip));
          if (ans.answer.empty()) return L.nodata(zone);
          return ans;
        }
        if (qtype == kTypeSRV) {
          std::vector<SrvRow> rows;
          for (const auto& p : e.ports)
            for (const auto& ip : e.clusterIPs) rows.push_back({qname, p.port, e.fqdn, {ip}});
          if (rows.empty()) return L.nodata(zone);
          L.srv(ans, std::move(rows));
          return ans;
        }
        return L.nodata(zone);
      case Entry::Kind::Headless:
        if (e.endpoints.empty()) return L.nxdomain(zone);
        if (addrQuery || qtype == kTypeAAAA) {
          for (const auto& ep : e.endpoints)
            if (L.wants(qtype, ep.ip)) ans.answer.push_back(L.addr(qname, ep.ip));
          if (ans.answer.empty()) return L.nodata(zone);
          return ans;
        }
        if (qtype == kTypeSRV) {
          std::vector<SrvRow> rows;
          for (const auto& p : e.ports)
            for (const auto& ep : e.endpoints)
              rows.emplace_back(qname, p.port, ep.host + "." + e.fqdn, std::vector<Addr>{ep.ip});
          if (rows.empty()) return L.nodata(zone);
          L.srv(ans, std::move(rows));
          return ans;
        }
        return L.nodata(zone);
    }
  }
  if (n == 4 && labels[3].starts_with('_')) {
    // _PROTO.NAME.NS.svc.ZONE: an empty non-terminal above a named port.
    for (const auto& p : e.ports)
      if (p.proto == labels[3].substr(1)) return L.nodata(zone);
    return L.nxdomain(zone);
  }
  if (n == 4) {  // HOST.NAME.NS.svc.ZONE: a headless Service's endpoint
    if (e.kind != Entry::Kind::Headless) return L.nxdomain(zone);
    Answer ans;  // every endpoint of that name (two pods may share a hostname)
    bool named = false;
    for (const auto& ep : e.endpoints) {
      if (ep.host != labels[3]) continue;
      named = true;
      if (L.wants(qtype, ep.ip)) ans.answer.push_back(L.addr(qname, ep.ip));
    }
    if (!named) return L.nxdomain(zone);
    if (ans.answer.empty()) return L.nodata(zone);
    return ans;
  }
  if (n == 5 && labels[3].starts_with('_') && labels[4].starts_with('_')) {
    // _PORT._PROTO.NAME.NS.svc.ZONE: a named port.
    const std::string_view proto = labels[3].substr(1), port = labels[4].substr(1);
    std::vector<SrvRow> rows;
    bool found = false;
    for (const auto& p : e.ports) {
      if (p.name != port || p.proto != proto) continue;
      found = true;
      if (e.kind == Entry::Kind::ClusterIP)
        for (const auto& ip : e.clusterIPs) rows.push_back({qname, p.port, e.fqdn, {ip}});
      if (e.kind == Entry::Kind::ExternalName && !e.target.empty())
        rows.emplace_back(qname, p.port, e.target, std::vector<Addr>{});
      if (e.kind == Entry::Kind::Headless)
        for (const auto& ep : e.endpoints)
          rows.emplace_back(qname, p.port, ep.host + "." + e.fqdn, std::vector<Addr>{ep.ip});
    }
    if (!found || rows.empty()) return L.nxdomain(zone);
    if (qtype != kTypeSRV && qtype != kTypeANY) return L.nodata(zone);
    Answer ans;
    L.srv(ans, std::move(rows));
    return ans;
  }
  return L.nxdomain(zone);
}

}  // namespace svclb::dns
