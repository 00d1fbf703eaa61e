#include "loader/trace.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "loader/dataplane.h"
#include "loader/metrics.h"
#include "loader/syncer.h"
#include "maps/maps.h"
#include "model/model.h"

namespace svclb {

using nlohmann::json;

namespace {

struct AddrPort {
  bool v6 = false;
  uint32_t a = 0;  // host order
  Ip6 a6{};
  uint16_t port = 0;
};

// "IP", "IP:PORT", "IPv6", "[IPv6]:PORT" (and "[IPv6]").
Result<AddrPort> parseAddrPort(const std::string& what, const std::string& s, bool portRequired) {
  const auto bad = [&] {
    return Error{EINVAL, fmt::format("error: {} \"{}\": expected an IPv4 address{} or an IPv6 "
                                     "address{}",
                                     what, s, portRequired ? ":PORT" : "[:PORT]",
                                     portRequired ? " as [IPv6]:PORT" : " ([IPv6]:PORT)")};
  };
  std::string ip = s, port;
  AddrPort out;
  if (!s.empty() && s[0] == '[') {
    const auto close = s.find(']');
    if (close == std::string::npos) return bad();
    ip = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return bad();
      port = s.substr(close + 2);
    }
    out.v6 = true;
  } else if (std::count(s.begin(), s.end(), ':') >= 2) {
    out.v6 = true;  // a bare IPv6 address: no port
  } else if (auto colon = s.rfind(':'); colon != std::string::npos) {
    ip = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (out.v6) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, ip.c_str(), &a6) != 1) return bad();
    std::memcpy(out.a6.data(), a6.s6_addr, 16);
  } else {
    in_addr a{};
    if (inet_pton(AF_INET, ip.c_str(), &a) != 1) return bad();
    out.a = ntohl(a.s_addr);
  }
  uint32_t p = 0;
  if (port.empty()) {
    if (portRequired)
      return Error{EINVAL, fmt::format("error: {} \"{}\": a port is required ({})", what, s,
                                       out.v6 ? "[IPv6]:PORT" : "IP:PORT")};
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        (p = static_cast<uint32_t>(std::stoul(port))) < 1 || p > 65535)
      return Error{EINVAL, fmt::format("error: {} \"{}\": the port must be 1-65535", what, s)};
  }
  out.port = static_cast<uint16_t>(p);
  return out;
}

std::string ipPort(uint32_t hostAddr, uint16_t hostPort) {
  return fmt::format("{}:{}", formatIPv4(hostAddr), hostPort);
}
std::string ipPort(const Ip6& a, uint16_t hostPort) {
  return fmt::format("[{}]:{}", formatIPv6(a), hostPort);
}
Ip6 ip6Of(const v6addr& a) {
  Ip6 out{};
  std::memcpy(out.data(), &a, 16);
  return out;
}
v6addr v6Of(const Ip6& a) {
  v6addr out{};
  std::memcpy(&out, a.data(), 16);
  return out;
}

// One family's types, maps and address forms for traceFamily below: the
// trace mirrors lib/lb_fam.h, which is one source for both families too.
struct Fam4 {
  using Addr = uint32_t;  // network order, as in the maps
  using CtKey = ct_key;
  using CtValue = ct_value;
  using SvcKey = svc_key;
  using SrcKey = src_range_key;
  using AffKey = affinity_key;
  static constexpr uint32_t kSrcFullPrefix = 64;
  static constexpr const char* kCt = SVCLB_MAP_CT;
  static constexpr const char* kCtEst = SVCLB_MAP_CT_EST;
  static CtMap ct(const Dataplane& dp) { return dp.conntrack(); }
  static CtMap ctEst(const Dataplane& dp) { return dp.conntrackEst(); }
  static ServiceMap svc(const Dataplane& dp) { return dp.services(); }
  static SrcRangeMap src(const Dataplane& dp) { return dp.srcRanges(); }
  static AffinityMap aff(const Dataplane& dp) { return dp.affinity(); }
  static std::string show(Addr a, uint16_t nport) { return ipPort(ntohl(a), ntohs(nport)); }
  static std::string showAddr(Addr a) { return formatIPv4(ntohl(a)); }
  static std::optional<std::string> backendAddr(const Dataplane&, uint32_t,
                                                const backend_value& b) {
    return show(b.addr, b.port);
  }
  static uint32_t fold(Addr a) { return a; }
  static FrontendKey frontendKey(const TraceQuery& q) { return {q.dst, q.dport, q.proto}; }
};

struct Fam6 {
  using Addr = v6addr;
  using CtKey = ct6_key;
  using CtValue = ct6_value;
  using SvcKey = svc6_key;
  using SrcKey = src_range6_key;
  using AffKey = affinity6_key;
  static constexpr uint32_t kSrcFullPrefix = 160;
  static constexpr const char* kCt = SVCLB_MAP_CT6;
  static constexpr const char* kCtEst = SVCLB_MAP_CT6_EST;
  static Ct6Map ct(const Dataplane& dp) { return dp.conntrack6(); }
  static Ct6Map ctEst(const Dataplane& dp) { return dp.conntrack6Est(); }
  static Service6Map svc(const Dataplane& dp) { return dp.services6(); }
  static SrcRange6Map src(const Dataplane& dp) { return dp.srcRanges6(); }
  static Affinity6Map aff(const Dataplane& dp) { return dp.affinity6(); }
  static std::string show(const Addr& a, uint16_t nport) { return ipPort(ip6Of(a), ntohs(nport)); }
  static std::string showAddr(const Addr& a) { return formatIPv6(ip6Of(a)); }
  static std::optional<std::string> backendAddr(const Dataplane& dp, uint32_t id,
                                                const backend_value& b) {
    auto a = dp.backends6().lookup(id);
    if (!a) return std::nullopt;
    return show(a->addr, b.port);
  }
  static uint32_t fold(const Addr& a) { return a.w[0] ^ a.w[1] ^ a.w[2] ^ a.w[3]; }
  static FrontendKey frontendKey(const TraceQuery& q) {
    FrontendKey k{0, q.dport, q.proto};
    k.vip6 = q.dst6;
    return k;
  }
};

template <class F>
json ctEntryJson(const Dataplane& dp, const char* map, const typename F::CtValue& v, uint32_t now,
                 uint8_t proto) {
  const auto& life = dp.ctLifetimes();
  const uint32_t age = now - v.last_seen;
  const uint32_t lifetime = (v.flags & CT_F_CLOSING) ? life.closing
                            : proto == IPPROTO_TCP   ? life.tcp
                                                     : life.nontcp;
  json j = {{"map", map},
            {"direction", v.dir == CT_DIR_FORWARD ? "forward" : "reply"},
            {"natAddress", F::show(v.nat_addr, v.nat_port)},
            {"backendId", v.backend_id},
            {"svcId", v.svc_id},
            {"closing", (v.flags & CT_F_CLOSING) != 0},
            {"snat", (v.flags & CT_F_SNAT) != 0},
            {"hairpin", (v.flags & CT_F_HAIRPIN) != 0},
            // CT_F_SINGLE: no REPLY entry, answers found through be_rev_v1
            {"singleEntry", (v.flags & CT_F_SINGLE) != 0},
            {"alive", age <= lifetime},
            {"idleSeconds",
             life.hz ? static_cast<double>(uint64_t{age} << CT_TICK_SHIFT) / life.hz : 0.0}};
  if (v.flags & CT_F_SNAT) j["snatAddress"] = F::show(v.snat_addr, v.snat_port);
  return j;
}

uint64_t monotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // bpf_ktime_get_ns()'s clock
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::optional<uint32_t> maglevEntry(const Dataplane& dp, uint32_t svcId, uint32_t idx) {
  const int outer = dp.maglevFd();
  uint32_t innerId = 0;
  std::optional<uint32_t> out;
  if (outer >= 0 && bpf_map_lookup_elem(outer, &svcId, &innerId) == 0) {
    int inner = bpf_map_get_fd_by_id(innerId);
    uint32_t v = 0;
    if (inner >= 0 && bpf_map_lookup_elem(inner, &idx, &v) == 0) out = v;
    if (inner >= 0) close(inner);
  }
  return out;
}

}  // namespace

Result<TraceQuery> parseTraceQuery(const json& req) {
  TraceQuery q;
  const std::string src = req.value("src", ""), dst = req.value("dst", "");
  std::string proto = req.value("protocol", "TCP");
  for (auto& c : proto) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  auto s = parseAddrPort("source", src, false);
  if (!s) return s.error();
  auto d = parseAddrPort("destination", dst, true);
  if (!d) return d.error();
  if (proto == "TCP")
    q.proto = IPPROTO_TCP;
  else if (proto == "UDP")
    q.proto = IPPROTO_UDP;
  else
    return Error{EINVAL, fmt::format("error: protocol \"{}\": expected TCP or UDP", proto)};
  if (s->v6 != d->v6)
    return Error{EINVAL, fmt::format("error: source \"{}\" and destination \"{}\" are of two "
                                     "address families",
                                     src, dst)};
  const std::string from = req.value("from", "outside");
  if (from != "outside" && from != "node")
    return Error{EINVAL,
                 fmt::format("error: --from \"{}\": expected outside (a packet arriving on a node "
                             "NIC) or node (from this node's pods or processes)",
                             from)};
  q.fromNode = from == "node";
  q.v6 = s->v6;
  q.src = s->a;
  q.src6 = s->a6;
  q.sport = s->port;
  q.dst = d->a;
  q.dst6 = d->a6;
  q.dport = d->port;
  return q;
}

namespace {

// Mirrors lib/lb_fam.h (lb_decide -> ct_lookup / lb_new_flow ->
// lb_select_affine) for one family: kept beside it, checked against the BPF
// programs' own choices by tests/e2e/trace.sh (12 Maglev flows predicted,
// then answered; IPv4 and IPv6).
template <class F>
json traceFamily(const Dataplane& dp, const Syncer& syncer, const TraceQuery& q,
                 const typename F::Addr& nsrc, const typename F::Addr& ndst) {
  const uint16_t nsport = htons(q.sport), ndport = htons(q.dport);
  json out = {{"ok", true},
              {"flow",
               {{"src", q.sport ? F::show(nsrc, nsport) : F::showAddr(nsrc)},
                {"dst", F::show(ndst, ndport)},
                {"protocol", q.proto == IPPROTO_TCP ? "TCP" : "UDP"}}}};

  // 1. The flow's CT entry (needs the source port).
  json ct = nullptr;
  std::optional<typename F::CtValue> fwd;
  if (q.sport) {
    typename F::CtKey k{};
    k.saddr = nsrc;
    k.daddr = ndst;
    k.sport = nsport;
    k.dport = ndport;
    k.proto = q.proto;
    const uint32_t now = dp.nowTicks();
    if (auto e = q.proto == IPPROTO_TCP ? F::ctEst(dp).lookup(k) : std::nullopt) {
      ct = ctEntryJson<F>(dp, F::kCtEst, *e, now, q.proto);
      fwd = e;
    } else if (auto n = F::ct(dp).lookup(k)) {
      ct = ctEntryJson<F>(dp, F::kCt, *n, now, q.proto);
      fwd = n;
    }
  }
  out["conntrack"] = ct;

  // 2. The frontend.
  typename F::SvcKey mk{};
  mk.vip = ndst;
  mk.port = ndport;
  mk.proto = q.proto;
  mk.scope = SVC_SCOPE_EXTERNAL;
  auto master = F::svc(dp).lookup(mk);
  // This node's own pods and processes see an externalTrafficPolicy: Local
  // frontend's node view, its SVC_SCOPE_INTERNAL twin (svc_node_view).
  bool nodeView = false;
  if (master && q.fromNode && (master->flags & SVC_F_LOCAL_ONLY)) {
    typename F::SvcKey tk = mk;
    tk.scope = SVC_SCOPE_INTERNAL;
    if (auto twin = F::svc(dp).lookup(tk); twin && (twin->flags & SVC_F_NODE_VIEW)) {
      mk = tk;
      master = twin;
      nodeView = true;
    }
  }
  if (!master) {
    out["frontend"] = nullptr;
    out["verdict"] = {{"action", "pass"},
                      {"reason",
                       "no Service frontend at this address and port: the packet "
                       "passes untouched"}};
    return out;
  }
  const svc_value m = *master;
  json fe = {{"svcId", m.svc_id},
             {"algorithm", m.algo == SVC_ALGO_MAGLEV ? "maglev" : "random"},
             {"affinity", (m.flags & SVC_F_AFFINITY) != 0},
             {"affinityTimeoutSeconds", m.affinity_timeout},
             {"external", (m.flags & SVC_F_EXTERNAL) != 0},
             {"localOnly", (m.flags & SVC_F_LOCAL_ONLY) != 0},
             {"noLocalEndpoints", (m.flags & SVC_F_NO_LOCAL_EPS) != 0},
             {"sourceRanges", (m.flags & SVC_F_SRC_RANGES) != 0},
             {"readySlots", m.count},
             {"slots", m.total},
             {"view", nodeView ? "node" : "outside"}};
  if (auto it = syncer.actual().frontends.find(F::frontendKey(q));
      it != syncer.actual().frontends.end() && !it->second.retired) {
    fe["namespace"] = it->second.ns;
    fe["name"] = it->second.name;
    fe["port"] = it->second.portName;
  }
  out["frontend"] = fe;

  // 3. The candidates: slot i -> backend.
  json cands = json::array();
  const uint32_t n = m.count ? m.count : m.total;
  auto backendOk = [&](uint32_t id) -> std::optional<backend_value> {
    auto b = dp.backends().lookup(id);
    if (!b || b->state == BE_STATE_EMPTY || b->svc_id != m.svc_id) return std::nullopt;
    return b;
  };
  for (uint32_t slot = 1; slot <= m.total; ++slot) {
    typename F::SvcKey sk = mk;
    sk.slot = static_cast<uint16_t>(slot);
    auto sv = F::svc(dp).lookup(sk);
    if (!sv) continue;
    auto b = dp.backends().lookup(sv->backend_id);
    if (!b) continue;
    cands.push_back({{"slot", slot},
                     {"backendId", sv->backend_id},
                     {"address", F::backendAddr(dp, sv->backend_id, *b).value_or("?")},
                     {"state", backendStateName(b->state)},
                     {"takesNewFlows", slot <= n}});
  }
  out["backends"] = cands;

  auto backendJson = [&](uint32_t id) -> json {
    auto b = dp.backends().lookup(id);
    auto a = b ? F::backendAddr(dp, id, *b) : std::nullopt;
    if (!a) return {{"backendId", id}};
    return {{"backendId", id}, {"address", *a}};
  };

  // 4. A tracked flow keeps its backend while that backend belongs to the
  //    frontend (ct_lookup4).
  if (fwd && ct.value("alive", false) && fwd->dir == CT_DIR_FORWARD && fwd->svc_id == m.svc_id &&
      backendOk(fwd->backend_id)) {
    out["verdict"] = {{"action", "dnat"},
                      {"reason", "tracked flow: its conntrack entry names the backend"},
                      {"backend", backendJson(fwd->backend_id)}};
    return out;
  }

  // 5. A new flow (lb4_new_flow).
  if (m.flags & SVC_F_SRC_RANGES) {
    typename F::SrcKey rk{};
    rk.prefixlen = F::kSrcFullPrefix;
    rk.svc_id = m.svc_id;
    rk.addr = nsrc;
    if (!F::src(dp).lookup(rk)) {
      out["verdict"] = {{"action", "drop"},
                        {"reason", "source outside loadBalancerSourceRanges"},
                        {"dropReason", dropReasonName(DROP_SOURCE_RANGE)}};
      return out;
    }
  }
  if ((m.flags & SVC_F_NO_LOCAL_EPS) && m.total == 0) {
    out["verdict"] = {{"action", "drop"},
                      {"reason", "a Local traffic policy and no endpoint on this node"},
                      {"dropReason", dropReasonName(DROP_NO_LOCAL_EP)}};
    return out;
  }
  if (n == 0) {
    out["verdict"] = {
        {"action", "reject"},
        {"reason", q.proto == IPPROTO_TCP
                       ? "no usable endpoint: TCP RST (a socket: ECONNREFUSED)"
                       : "no usable endpoint: ICMP port unreachable (a socket: ECONNREFUSED)"},
        {"dropReason", dropReasonName(DROP_NO_BACKEND)}};
    return out;
  }
  // Affinity (lb4_select_affine): the client's entry, if young enough and
  // its backend still ready.
  if (m.flags & SVC_F_AFFINITY) {
    typename F::AffKey ak{};
    ak.svc_id = m.svc_id;
    ak.client = nsrc;
    if (auto av = F::aff(dp).lookup(ak);
        av && m.count &&
        monotonicNs() - av->last_used_ns <= uint64_t{m.affinity_timeout} * 1000000000ull) {
      if (auto b = backendOk(av->backend_id); b && b->state == BE_STATE_ACTIVE) {
        out["verdict"] = {{"action", "dnat"},
                          {"reason", "sessionAffinity: ClientIP: this client's last backend"},
                          {"backend", backendJson(av->backend_id)}};
        return out;
      }
    }
  }
  const bool affinity = (m.flags & SVC_F_AFFINITY) != 0;
  if (m.algo == SVC_ALGO_MAGLEV && m.maglev_size && (affinity || q.sport)) {
    const uint32_t hash = affinity ? flowHash3(F::fold(nsrc), F::fold(ndst), q.proto)
                                   : flowHash3(F::fold(nsrc), F::fold(ndst),
                                               ((uint32_t{nsport} << 16) | ndport) ^ q.proto);
    const uint32_t idx = hash % m.maglev_size;
    if (auto id = maglevEntry(dp, m.svc_id, idx); id && backendOk(*id)) {
      json v = {{"action", "dnat"},
                {"reason", fmt::format("maglev: flow hash {:#010x}, table entry {} of {}", hash,
                                       idx, m.maglev_size)},
                {"backend", backendJson(*id)}};
      out["verdict"] = v;
      return out;
    }
  }
  json v = {
      {"action", "dnat"},
      {"reason", m.algo == SVC_ALGO_MAGLEV && !affinity && !q.sport
                     ? fmt::format("maglev: the backend depends on the source port (give SRC as "
                                   "IP:PORT); one of {} slots",
                                   n)
                     : fmt::format("random: one of {} slots, each as likely", n)},
      {"backend", nullptr}};
  out["verdict"] = v;
  return out;
}

}  // namespace

json traceJson(const Dataplane& dp, const Syncer& syncer, const TraceQuery& q) {
  if (q.v6) return traceFamily<Fam6>(dp, syncer, q, v6Of(q.src6), v6Of(q.dst6));
  return traceFamily<Fam4>(dp, syncer, q, htonl(q.src), htonl(q.dst));
}

}  // namespace svclb
