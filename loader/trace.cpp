#include "loader/trace.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include "loader/dataplane.h"
#include "loader/syncer.h"
#include "maps/maps.h"
#include "model/model.h"

namespace svclb {

using nlohmann::json;

namespace {

constexpr uint32_t kHashInitval = 0x5c1b5c1bU;  // bpf/lib/hash.h SVCLB_HASH_INITVAL

uint32_t rol32(uint32_t w, unsigned s) { return (w << s) | (w >> (32 - s)); }

Result<std::pair<uint32_t, uint16_t>> parseAddrPort(const std::string& what, const std::string& s,
                                                    bool portRequired) {
  std::string ip = s, port;
  if (auto colon = s.rfind(':'); colon != std::string::npos) {
    ip = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1)
    return Error{EINVAL, fmt::format("error: {} \"{}\": expected an IPv4 address{}", what, s,
                                     portRequired ? ":PORT" : "[:PORT]")};
  uint32_t p = 0;
  if (port.empty()) {
    if (portRequired)
      return Error{EINVAL, fmt::format("error: {} \"{}\": a port is required (IP:PORT)", what, s)};
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        (p = static_cast<uint32_t>(std::stoul(port))) < 1 || p > 65535)
      return Error{EINVAL, fmt::format("error: {} \"{}\": the port must be 1-65535", what, s)};
  }
  return std::make_pair(ntohl(a.s_addr), static_cast<uint16_t>(p));
}

std::string ipPort(uint32_t hostAddr, uint16_t hostPort) {
  return fmt::format("{}:{}", formatIPv4(hostAddr), hostPort);
}

const char* stateName(uint8_t s) {
  switch (s) {
    case BE_STATE_ACTIVE:
      return "ready";
    case BE_STATE_TERMINATING:
      return "terminating";
    default:
      return "empty";
  }
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

json ctEntryJson(const Dataplane& dp, const char* map, const ct_value& v, uint32_t now,
                 uint8_t proto) {
  const auto& life = dp.ctLifetimes();
  const uint32_t age = now - v.last_seen;
  const uint32_t lifetime = (v.flags & CT_F_CLOSING) ? life.closing
                            : proto == IPPROTO_TCP   ? life.tcp
                                                     : life.nontcp;
  json j = {{"map", map},
            {"direction", v.dir == CT_DIR_FORWARD ? "forward" : "reply"},
            {"natAddress", ipPort(ntohl(v.nat_addr), ntohs(v.nat_port))},
            {"backendId", v.backend_id},
            {"svcId", v.svc_id},
            {"closing", (v.flags & CT_F_CLOSING) != 0},
            {"snat", (v.flags & CT_F_SNAT) != 0},
            {"hairpin", (v.flags & CT_F_HAIRPIN) != 0},
            {"alive", age <= lifetime},
            {"idleSeconds",
             life.hz ? static_cast<double>(uint64_t{age} << CT_TICK_SHIFT) / life.hz : 0.0}};
  if (v.flags & CT_F_SNAT) j["snatAddress"] = ipPort(ntohl(v.snat_addr), ntohs(v.snat_port));
  return j;
}

}  // namespace

uint32_t flowHash3(uint32_t a, uint32_t b, uint32_t c) {
  a += kHashInitval + (3 << 2);
  b += kHashInitval + (3 << 2);
  c += kHashInitval + (3 << 2);
  c ^= b;
  c -= rol32(b, 14);
  a ^= c;
  a -= rol32(c, 11);
  b ^= a;
  b -= rol32(a, 25);
  c ^= b;
  c -= rol32(b, 16);
  a ^= c;
  a -= rol32(c, 4);
  b ^= a;
  b -= rol32(a, 14);
  c ^= b;
  c -= rol32(b, 24);
  return c;
}

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
  q.src = s->first;
  q.sport = s->second;
  q.dst = d->first;
  q.dport = d->second;
  return q;
}

// Mirrors lib/lb.h (lb4_decide -> ct_lookup4 / lb4_new_flow ->
// lb4_select_affine): kept beside it, checked against the BPF programs'
// own choices by tests/e2e/trace.sh (12 Maglev flows predicted, then answered).
json traceJson(const Dataplane& dp, const Syncer& syncer, const TraceQuery& q) {
  const uint32_t nsrc = htonl(q.src), ndst = htonl(q.dst);
  const uint16_t nsport = htons(q.sport), ndport = htons(q.dport);
  json out = {{"ok", true},
              {"flow",
               {{"src", q.sport ? ipPort(q.src, q.sport) : formatIPv4(q.src)},
                {"dst", ipPort(q.dst, q.dport)},
                {"protocol", q.proto == IPPROTO_TCP ? "TCP" : "UDP"}}}};

  // 1. The flow's CT entry (needs the source port).
  json ct = nullptr;
  std::optional<ct_value> fwd;
  if (q.sport) {
    ct_key k{};
    k.saddr = nsrc;
    k.daddr = ndst;
    k.sport = nsport;
    k.dport = ndport;
    k.proto = q.proto;
    const uint32_t now = dp.nowTicks();
    if (auto e = q.proto == IPPROTO_TCP ? dp.conntrackEst().lookup(k) : std::nullopt) {
      ct = ctEntryJson(dp, SVCLB_MAP_CT_EST, *e, now, q.proto);
      fwd = e;
    } else if (auto n = dp.conntrack().lookup(k)) {
      ct = ctEntryJson(dp, SVCLB_MAP_CT, *n, now, q.proto);
      fwd = n;
    }
  }
  out["conntrack"] = ct;

  // 2. The frontend.
  svc_key mk{};
  mk.vip = ndst;
  mk.port = ndport;
  mk.proto = q.proto;
  mk.scope = SVC_SCOPE_EXTERNAL;
  auto master = dp.services().lookup(mk);
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
             {"slots", m.total}};
  if (auto it = syncer.actual().frontends.find(FrontendKey{q.dst, q.dport, q.proto});
      it != syncer.actual().frontends.end()) {
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
    svc_key sk = mk;
    sk.slot = static_cast<uint16_t>(slot);
    auto sv = dp.services().lookup(sk);
    if (!sv) continue;
    auto b = dp.backends().lookup(sv->backend_id);
    if (!b) continue;
    cands.push_back({{"slot", slot},
                     {"backendId", sv->backend_id},
                     {"address", ipPort(ntohl(b->addr), ntohs(b->port))},
                     {"state", stateName(b->state)},
                     {"takesNewFlows", slot <= n}});
  }
  out["backends"] = cands;

  auto backendJson = [&](uint32_t id) -> json {
    auto b = dp.backends().lookup(id);
    if (!b) return {{"backendId", id}};
    return {{"backendId", id}, {"address", ipPort(ntohl(b->addr), ntohs(b->port))}};
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
    src_range_key rk{};
    rk.prefixlen = 64;
    rk.svc_id = m.svc_id;
    rk.addr = nsrc;
    if (!dp.srcRanges().lookup(rk)) {
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
    affinity_key ak{};
    ak.svc_id = m.svc_id;
    ak.client = nsrc;
    if (auto av = dp.affinity().lookup(ak);
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
    const uint32_t hash =
        affinity ? flowHash3(nsrc, ndst, q.proto)
                 : flowHash3(nsrc, ndst, ((uint32_t{nsport} << 16) | ndport) ^ q.proto);
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

}  // namespace svclb
