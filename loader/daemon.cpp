#include "loader/daemon.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <sstream>

#include "loader/external.h"
#include "loader/garp.h"

namespace svclb {

using nlohmann::json;

namespace {

json fail(const std::string& msg) { return {{"ok", false}, {"error", msg}}; }

const char* actionName(ApplyAction a) {
  switch (a) {
    case ApplyAction::Created: return "created";
    case ApplyAction::Configured: return "configured";
    case ApplyAction::Unchanged: return "unchanged";
    case ApplyAction::Deleted: return "deleted";
  }
  return "?";
}

// kubectl's plural resource names in NotFound messages.
std::string resourceName(const std::string& kind) {
  if (kind == "Service") return "services";
  if (kind == "Endpoints") return "endpoints";
  if (kind == "IPAddressPool") return "ipaddresspools.metallb.io";
  if (kind == "L2Advertisement") return "l2advertisements.metallb.io";
  return "endpointslices.discovery.k8s.io";
}

// Prometheus label value escaping.
std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

}  // namespace

Daemon::Daemon(DaemonConfig cfg, Dataplane& dp)
    : cfg_(std::move(cfg)),
      dp_(dp),
      syncer_(dp, cfg_.sync),
      store_(storeConfig()),
      state_(statePath()) {}

Daemon::~Daemon() {
  {
    std::lock_guard lk(garpMu_);
    garpStop_ = true;
  }
  garpCv_.notify_all();
  if (garpThread_.joinable()) garpThread_.join();
}

std::vector<uint32_t> nodeAddresses() {
  std::vector<uint32_t> out;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return out;
  for (ifaddrs* i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    const uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    if ((a >> 24) == 127 || a == 0) continue;
    out.push_back(a);
  }
  freeifaddrs(ifa);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void Daemon::logOnce(std::set<std::string>& seen, const std::vector<std::string>& now) {
  std::set<std::string> next(now.begin(), now.end());
  for (const auto& w : next)
    if (!seen.count(w)) fmt::print(stderr, "svclbd: warning: {}\n", w);
  seen = std::move(next);
}

std::vector<Frontend> Daemon::desiredFrontends(const Store& s) {
  std::vector<Frontend> out = s.frontends();
  auto ext = externalToFrontends(s.externalFrontends(), nodeAddrs_, cfg_.nodeName, out);
  logOnce(extWarnings_, ext.warnings);
  out.insert(out.end(), std::make_move_iterator(ext.frontends.begin()),
             std::make_move_iterator(ext.frontends.end()));
  return out;
}

bool Daemon::isExternalInterface(const std::string& ifname) const {
  return std::find(cfg_.externalIfaces.begin(), cfg_.externalIfaces.end(), ifname) !=
         cfg_.externalIfaces.end();
}

void Daemon::nodeChanged() {
  std::lock_guard lk(mu_);
  auto addrs = nodeAddresses();
  if (addrs != nodeAddrs_) {
    std::vector<std::string> shown;
    for (uint32_t a : addrs) shown.push_back(formatIPv4(a));
    std::string list;
    for (const auto& a : shown) list += (list.empty() ? "" : ", ") + a;
    fmt::print(stderr, "svclbd: node addresses: {}\n", list.empty() ? "none" : list);
    nodeAddrs_ = std::move(addrs);
    auto plan = syncer_.plan(desiredFrontends(store_));
    deltaOk_ = false;
    if (!plan)
      fmt::print(stderr, "svclbd: re-sync for the node addresses: {}\n", plan.error().message);
    else if (auto st = syncer_.apply(std::move(*plan)); !st)
      fmt::print(stderr, "svclbd: re-sync for the node addresses: {}\n", st.error().message);
    else
      deltaOk_ = store_.externalFrontends().empty();
  }
  syncL2();
  syncHealthChecks();
}

void Daemon::syncHealthChecks() {
  // kube-proxy's count: the Service's local endpoints (nodeName = this
  // node) that take new flows: ready ones, else terminating-serving ones.
  std::map<std::pair<std::string, std::string>, HealthCheckService> want;
  for (const auto& e : store_.externalFrontends()) {
    if (e.healthCheckNodePort == 0) continue;
    std::set<uint32_t> ready, serving;
    for (const auto& b : e.backends) {
      if (b.nodeName.empty() || b.nodeName != cfg_.nodeName) continue;
      if (b.state == EndpointState::Ready) ready.insert(b.ip);
      else if (b.state == EndpointState::Terminating && b.serving) serving.insert(b.ip);
    }
    auto& hc = want[{e.ns, e.name}];
    hc.ns = e.ns;
    hc.name = e.name;
    hc.port = e.healthCheckNodePort;
    const uint32_t n = static_cast<uint32_t>(ready.empty() ? serving.size() : ready.size());
    hc.localEndpoints = std::max(hc.localEndpoints, n);
  }
  std::vector<HealthCheckService> list;
  for (auto& [k, v] : want) list.push_back(std::move(v));
  std::vector<std::string> problems;
  if (auto st = healthChecks_.update(list); !st) problems.push_back(st.error().message);
  logOnce(hcProblems_, problems);
}

void Daemon::adoptL2() {
  l2Actual_.clear();
  dp_.l2Arp().forEach([&](const l2_arp_key& k, const l2_arp_value& v) {
    L2Entry e;
    std::copy(std::begin(v.mac), std::end(v.mac), e.mac.begin());
    l2Actual_[{ntohl(k.addr), k.ifindex}] = e;
  });
}

void Daemon::syncL2() {
  std::vector<std::string> problems;
  std::map<std::pair<uint32_t, uint32_t>, L2Entry> want;
  std::map<std::string, std::pair<uint32_t, std::array<uint8_t, 6>>> nics;
  for (const auto& a :
       l2Announcements(store_, cfg_.externalIfaces, cfg_.nodeName, cfg_.l2Members)) {
    auto nic = nics.find(a.iface);
    if (nic == nics.end()) {
      auto idx = interfaceIndex(a.iface);
      auto mac = idx ? interfaceMac(a.iface) : Result<std::array<uint8_t, 6>>(idx.error());
      if (!idx || !mac) {
        problems.push_back(fmt::format("cannot announce LoadBalancer IPs on --external-iface {}: {}",
                                       a.iface, (!idx ? idx.error() : mac.error()).message));
        nics[a.iface] = {0, {}};
        continue;
      }
      nic = nics.emplace(a.iface, std::make_pair(static_cast<uint32_t>(*idx), *mac)).first;
    }
    if (nic->second.first == 0) continue;
    want[{a.ip, nic->second.first}] = L2Entry{a.iface, nic->second.second};
  }

  auto map = dp_.l2Arp();
  std::vector<GarpJob> announce;
  for (const auto& [key, e] : want) {
    auto it = l2Actual_.find(key);
    if (it != l2Actual_.end() && it->second.mac == e.mac) {
      it->second.iface = e.iface;
      continue;
    }
    l2_arp_key k{};
    k.addr = htonl(key.first);
    k.ifindex = key.second;
    l2_arp_value v{};
    std::copy(e.mac.begin(), e.mac.end(), v.mac);
    if (auto st = map.update(k, v); !st) {
      problems.push_back(fmt::format("announcing {} on {}: {}", formatIPv4(key.first), e.iface,
                                     st.error().message));
      continue;
    }
    l2Actual_[key] = e;
    announce.push_back({e.iface, key.first, {}, {}});
  }
  std::vector<std::pair<uint32_t, uint32_t>> gone;
  for (const auto& [key, e] : l2Actual_)
    if (!want.count(key)) gone.push_back(key);
  for (const auto& key : gone) {
    l2_arp_key k{};
    k.addr = htonl(key.first);
    k.ifindex = key.second;
    if (auto st = map.erase(k); !st) {
      problems.push_back(fmt::format("withdrawing {}: {}", formatIPv4(key.first), st.error().message));
      continue;
    }
    l2Actual_.erase(key);
  }
  logOnce(l2Problems_, problems);

  // A withdrawn address must not be announced any more; a new one is
  // announced now and repeated for a while (MetalLB's schedule).
  std::lock_guard lk(garpMu_);
  std::erase_if(garpJobs_, [&](const GarpJob& j) {
    for (const auto& [key, e] : want)
      if (key.first == j.ip && e.iface == j.iface) return false;
    return true;
  });
  const auto now = std::chrono::steady_clock::now();
  for (auto& j : announce) {
    j.next = now;
    j.until = now + kGarpRepeatFor;
    std::erase_if(garpJobs_, [&](const GarpJob& o) { return o.ip == j.ip && o.iface == j.iface; });
    garpJobs_.push_back(j);
  }
  if (!announce.empty()) {
    if (!garpThread_.joinable()) garpThread_ = std::thread([this] { garpLoop(); });
    garpCv_.notify_all();
  }
}

void Daemon::garpLoop() {
  std::unique_lock lk(garpMu_);
  while (!garpStop_) {
    const auto now = std::chrono::steady_clock::now();
    auto wake = now + std::chrono::hours(1);
    std::vector<GarpJob> due;
    for (auto& j : garpJobs_) {
      if (j.next <= now) {
        due.push_back(j);
        j.next = now + kGarpRepeatInterval;
      }
      wake = std::min(wake, j.next);
    }
    std::erase_if(garpJobs_, [&](const GarpJob& j) { return j.next > j.until; });
    if (!due.empty()) {
      lk.unlock();
      for (const auto& j : due)
        if (auto st = sendGratuitousArp(j.iface, j.ip); !st)
          fmt::print(stderr, "svclbd: gratuitous ARP for {} on {}: {}\n", formatIPv4(j.ip), j.iface,
                     st.error().message);
      lk.lock();
      continue;
    }
    garpCv_.wait_until(lk, wake);
  }
}

StoreConfig Daemon::storeConfig() const {
  StoreConfig sc;
  sc.serviceCIDR = cfg_.serviceCIDR;
  sc.nodePortMin = cfg_.nodePortMin;
  sc.nodePortMax = cfg_.nodePortMax;
  return sc;
}

Status Daemon::start() {
  std::lock_guard lk(mu_);
  auto loaded = state_.load(storeConfig());
  if (!loaded) return loaded.error();
  store_ = std::move(*loaded);
  nodeAddrs_ = nodeAddresses();
  {
    std::string list;
    for (uint32_t a : nodeAddrs_) list += (list.empty() ? "" : ", ") + formatIPv4(a);
    fmt::print(stderr, "svclbd: node {}, addresses: {}\n", cfg_.nodeName.empty() ? "<unnamed>" : cfg_.nodeName,
               list.empty() ? "none" : list);
  }
  if (auto st = syncer_.adopt(); !st) return st;
  auto plan = syncer_.plan(desiredFrontends(store_));
  if (!plan) return plan.error();
  fmt::print(stderr, "svclbd: restored {} services; sync: {} added, {} changed, {} removed, {} unchanged ({} map writes)\n",
             store_.services().size(), plan->added, plan->changed, plan->removed, plan->unchanged,
             plan->ops.size());
  if (auto st = syncer_.apply(std::move(*plan)); !st) return st;
  deltaOk_ = store_.externalFrontends().empty();
  adoptL2();
  syncL2();
  syncHealthChecks();
  return {};
}

bool Daemon::wantsInterface(const std::string& ifname) const {
  for (const auto& i : cfg_.ifaces)
    if (i == ifname) return true;
  return !cfg_.podIfacePrefix.empty() && ifname.rfind(cfg_.podIfacePrefix, 0) == 0;
}

Status Daemon::attachInterface(const std::string& ifname) {
  std::lock_guard lk(mu_);
  return dp_.attachTc(ifname);
}

std::string Daemon::handleLine(const json& req) {
  // A change's reply (one result per object: tens of thousands for a large
  // manifest) is written as text directly, with the encoder's string
  // escaping; everything else is a json document, dumped.
  const std::string op = req.value("op", "");
  if (op == "apply" || op == "delete") {
    Result<std::vector<ApplyOutcome>> r = Error{EINVAL, ""};
    std::vector<std::string> skipped;
    {
      std::lock_guard lk(mu_);
      try {
        r = op == "apply" ? doApply(req, skipped) : doDelete(req, skipped);
      } catch (const std::exception& e) {
        r = Error{EINVAL, fmt::format("error: malformed request: {}", e.what())};
      }
    }
    if (r) {
      std::string out = "{\"ok\":true,\"results\":[";
      for (size_t i = 0; i < r->size(); ++i) {
        const ApplyOutcome& o = (*r)[i];
        out += i ? ",{\"action\":\"" : "{\"action\":\"";
        out += actionName(o.action);
        out += "\",\"kind\":";
        appendJsonString(out, o.kind);
        out += ",\"name\":";
        appendJsonString(out, o.name);
        out += ",\"namespace\":";
        appendJsonString(out, o.ns);
        out += '}';
      }
      out += ']';
      if (!skipped.empty()) {
        out += ",\"skipped\":[";
        for (size_t i = 0; i < skipped.size(); ++i) {
          if (i) out += ',';
          appendJsonString(out, skipped[i]);
        }
        out += ']';
      }
      out += '}';
      return out;
    }
    return fail(r.error().message).dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return handleQuery(req).dump(-1, ' ', false, json::error_handler_t::replace);
}

json Daemon::handleQuery(const json& req) {
  std::lock_guard lk(mu_);
  const std::string op = req.value("op", "");
  try {
    if (op == "get") return doGet(req);
    if (op == "stats") return doStats();
    if (op == "status") return doStatus();
  } catch (const std::exception& e) {
    return fail(fmt::format("error: malformed request: {}", e.what()));
  }
  return fail(fmt::format("error: unknown request \"{}\"", op));
}

Result<std::vector<ApplyOutcome>> Daemon::commit(Store::Undo undo,
                                                 const std::set<Store::Key>& touched,
                                                 const std::vector<Frontend>& before,
                                                 std::vector<ApplyOutcome> outcomes) {
  // Whether node-facing frontends exist depends on the Services alone (and
  // the pools, whose effect is recorded as Service changes): a change that
  // names no Service keeps the last answer instead of deriving every
  // Service's external frontends again.
  const bool external =
      undo.services.empty() && externalKnown_ ? external_ : !store_.externalFrontends().empty();
  Result<Plan> plan = Error{EINVAL, "no plan"};
  if (deltaOk_ && !external) {
    // Only the touched Services' frontends can differ from the maps.
    std::vector<Frontend> after = store_.frontendsOf(touched);
    std::set<FrontendKey> kept;
    for (const auto& f : after) kept.insert(f.key);
    std::vector<FrontendKey> removed;
    for (const auto& f : before)
      if (!kept.count(f.key)) removed.push_back(f.key);
    logOnce(extWarnings_, {});
    plan = syncer_.planDelta(after, removed);
  } else {
    plan = syncer_.plan(desiredFrontends(store_));
  }
  if (!plan) {
    store_.revert(std::move(undo));
    return Error{EINVAL, "error: " + plan.error().message + "; nothing was applied"};
  }
  // The maps first: the dataplane gets the change without waiting for the
  // state file; the reply waits for both. A large change is persisted on
  // another thread while the maps are written (the file does not depend on
  // them, and its serializing and fsync take less time than the map
  // writes of the same change); a small one (a journal append) right after the
  // maps, as a thread would only delay the map write. Either failing puts
  // the previous state back in both.
  bool triedSave = false;
  auto restore = [&] {
    deltaOk_ = false;
    store_.revert(std::move(undo));
    if (auto back = syncer_.plan(desiredFrontends(store_))) (void)syncer_.apply(std::move(*back));
    // A new snapshot of the previous state: drops whatever part of the
    // change reached the disk (or only the directory fsync failed).
    if (triedSave) (void)state_.saveAll(store_);
  };
  constexpr size_t kSaveAsideOps = 4096;
  std::future<Status> saved;
  if (plan->ops.size() >= kSaveAsideOps) {
    triedSave = true;
    saved = std::async(std::launch::async, [&] { return state_.saveChange(store_, undo); });
  }
  Status mapped = syncer_.apply(std::move(*plan));
  Status persisted;
  if (saved.valid()) {
    persisted = saved.get();
  } else if (mapped) {
    triedSave = true;
    persisted = state_.saveChange(store_, undo);
  }
  if (!mapped) {
    restore();
    return Error{EINVAL, "error: writing the dataplane maps failed: " + mapped.error().message +
                             "; the previous state was restored"};
  }
  if (!persisted) {
    restore();
    return Error{EINVAL, "error: cannot persist state: " + persisted.error().message +
                             "; nothing was applied"};
  }
  deltaOk_ = !external;
  external_ = external;
  externalKnown_ = true;
  syncL2();
  syncHealthChecks();
  return outcomes;
}

// The objects of a manifest request. Without "strict": true, objects of kinds
// svclb does not handle are left out and named in *skipped.
Result<std::vector<Object>> Daemon::requestObjects(const json& req,
                                                   std::vector<std::string>& skipped) {
  const bool strict = req.value("strict", true);
  return parseManifests(req.at("manifest").get_ref<const std::string&>(), req.value("source", "-"),
                        strict ? nullptr : &skipped);
}

Result<std::vector<ApplyOutcome>> Daemon::doApply(const json& req,
                                                  std::vector<std::string>& skipped) {
  auto objs = requestObjects(req, skipped);
  if (!objs) return objs.error();
  if (objs->empty()) {
    // Only skipped objects (deployment.yaml of `svcctl apply -f app/`):
    // nothing to change, not an error; the reply names them.
    if (!skipped.empty()) return std::vector<ApplyOutcome>{};
    return Error{EINVAL, "error: no objects passed to apply"};
  }
  const auto touched = store_.servicesTouchedBy(*objs);
  const auto before = deltaOk_ ? store_.frontendsOf(touched) : std::vector<Frontend>{};
  Store::Undo undo;
  // All-or-nothing: on error store_ is as it was.
  auto outs = store_.apply(std::move(*objs), &undo);
  if (!outs) return outs.error();
  return commit(std::move(undo), touched, before, std::move(*outs));
}

Result<std::vector<ApplyOutcome>> Daemon::doDelete(const json& req,
                                                   std::vector<std::string>& skipped) {
  Store::Undo undo;
  std::set<Store::Key> touched;
  std::vector<Frontend> before;
  Result<std::vector<ApplyOutcome>> outs = std::vector<ApplyOutcome>{};
  if (req.contains("manifest")) {
    auto objs = requestObjects(req, skipped);
    if (!objs) return objs.error();
    touched = store_.servicesTouchedBy(*objs);
    if (deltaOk_) before = store_.frontendsOf(touched);
    outs = store_.removeAll(*objs, &undo);
  } else {
    const std::string kind = req.at("kind").get<std::string>();
    const std::string ns = req.value("namespace", "default");
    const std::string name = req.at("name").get<std::string>();
    touched = store_.servicesTouchedBy(kind, ns, name);
    if (deltaOk_) before = store_.frontendsOf(touched);
    outs = store_.remove(kind, ns, name, &undo);
  }
  if (!outs) return outs.error();
  return commit(std::move(undo), touched, before, std::move(*outs));
}

json Daemon::doGet(const json& req) {
  const std::string kind = req.value("kind", "Service");
  const std::string ns = req.value("namespace", "default");
  const bool all = req.value("allNamespaces", false);
  const std::string name = req.value("name", "");
  json items = json::array();
  auto match = [&](const std::pair<std::string, std::string>& key) {
    return (all || key.first == ns) && (name.empty() || key.second == name);
  };
  if (kind == "Service") {
    auto fronts = store_.frontends();
    for (const auto& [key, svc] : store_.services()) {
      if (!match(key)) continue;
      json item = toJson(Object{svc});
      json ports = json::array();
      for (const auto& p : svc.ports) {
        json eps = json::array();
        for (const auto& f : fronts) {
          if (f.ns != key.first || f.name != key.second || f.portName != p.name) continue;
          for (const auto& b : f.backends)
            if (b.state == EndpointState::Ready)
              eps.push_back(fmt::format("{}:{}", formatIPv4(b.ip), b.port));
        }
        ports.push_back({{"name", p.name}, {"endpoints", eps}});
      }
      item["svclb"] = {{"ports", ports}};
      items.push_back(item);
    }
  } else if (kind == "Endpoints") {
    for (const auto& [key, ep] : store_.endpoints())
      if (match(key)) items.push_back(toJson(Object{ep}));
  } else if (kind == "EndpointSlice") {
    for (const auto& [key, sl] : store_.slices())
      if (match(key)) items.push_back(toJson(Object{sl}));
  } else if (kind == "IPAddressPool") {
    for (const auto& [key, p] : store_.pools())
      if (match(key)) items.push_back(toJson(Object{p}));
  } else if (kind == "L2Advertisement") {
    for (const auto& [key, l2] : store_.l2Advertisements())
      if (match(key)) items.push_back(toJson(Object{l2}));
  } else {
    return fail(fmt::format("error: the server doesn't have a resource type \"{}\"", kind));
  }
  if (!name.empty() && items.empty())
    return fail(fmt::format("Error from server (NotFound): {} \"{}\" not found",
                            resourceName(kind), name));
  return {{"ok", true}, {"items", items}};
}

json Daemon::doStats() {
  auto svcStats = dp_.svcStats();
  auto beStats = dp_.backendStats();
  json services = json::array();
  for (const auto& [key, f] : syncer_.actual().frontends) {
    lb_stats s = sumStats(svcStats.lookup(f.svcId));
    json bes = json::array();
    for (const auto& b : f.backends) {
      lb_stats bs = sumStats(beStats.lookup(b.id));
      bes.push_back({{"ip", formatIPv4(ntohl(b.value.addr))}, {"port", ntohs(b.value.port)},
                     {"backendId", b.id},
                     {"state", b.value.state == BE_STATE_ACTIVE ? "active" : "terminating"},
                     {"packets", bs.packets}, {"bytes", bs.bytes},
                     {"replyPackets", bs.reply_packets}, {"replyBytes", bs.reply_bytes},
                     {"flows", bs.flows}, {"rejects", bs.rejects}});
    }
    services.push_back({{"namespace", f.ns}, {"name", f.name}, {"port", f.portName},
                        {"vip", formatIPv4(key.vip)}, {"servicePort", key.port},
                        {"protocol", protoName(key.proto)}, {"svcId", f.svcId},
                        {"packets", s.packets}, {"bytes", s.bytes},
                        {"replyPackets", s.reply_packets}, {"replyBytes", s.reply_bytes},
                        {"flows", s.flows}, {"rejects", s.rejects},
                        {"algorithm", f.master.algo == SVC_ALGO_MAGLEV ? "maglev" : "random"},
                        {"backends", bes}});
  }
  json drops = json::array();
  auto dm = dp_.drops();
  for (uint32_t r = 1; r < DROP_MAX; ++r) {
    const char* n = dropReasonName(r);
    if (!n) continue;
    drop_stats d = sumDrops(dm.lookup(r));
    drops.push_back({{"reason", n}, {"packets", d.packets}, {"bytes", d.bytes}});
  }
  json ctEvents = json::object();
  auto em = dp_.ctEvents();
  for (uint32_t e = 0; e < CT_EV_MAX; ++e)
    if (const char* n = ctEventName(e)) ctEvents[n] = sumCounts(em.lookup(e));
  return {{"ok", true}, {"services", services}, {"drops", drops}, {"conntrackEvents", ctEvents}};
}

json Daemon::doStatus() {
  json ifaces = json::array();
  for (const auto& t : dp_.tcAttachments())
    ifaces.push_back({{"name", t.ifname}, {"ifindex", t.ifindex}, {"attach", "tc-ingress"},
                      {"progId", t.progId}});
  json external = json::array();
  for (const auto& e : dp_.externalAttachments())
    external.push_back({{"ifname", e.ifname},
                        {"ifindex", e.ifindex},
                        {"datapath", externalDatapathName(e.datapath)},
                        {"datapathReason", e.why},
                        {"xdpMode", e.datapath == ExternalDatapath::Xdp ? xdpModeName(e.xdpMode)
                                                                        : "none"},
                        {"xdpProgId", e.xdpProgId},
                        {"tcProgId", e.tcProgId},
                        {"xdpDispatcher", e.xdpDispatcher}});
  json progs = json::array();
  for (const auto& p : dp_.programs())
    progs.push_back({{"name", p.name}, {"id", p.id}, {"type", p.type}});
  json links = json::array();
  for (const auto& l : dp_.cgroupLinks())
    links.push_back({{"attachType", l.attachType}, {"linkId", l.linkId}, {"progId", l.progId}});
  const auto& cfg = dp_.config();
  const auto& act = syncer_.actual();
  size_t svcEntries = 0;
  for (const auto& [k, f] : act.frontends) svcEntries += 1 + f.slots.size();
  json maps = json::array({
      {{"name", SVCLB_MAP_SERVICES}, {"type", "hash"}, {"maxEntries", cfg.maxServiceEntries},
       {"entries", svcEntries}},
      {{"name", SVCLB_MAP_BACKENDS}, {"type", "array"}, {"maxEntries", cfg.maxBackends - 1},
       {"entries", act.backendIds.inUse()}},
      {{"name", SVCLB_MAP_SVC_STATS}, {"type", "percpu_array"}, {"maxEntries", cfg.maxSvcIds - 1},
       {"entries", act.svcIds.inUse()}},
      // Walking an LRU that the dataplane churns can revisit keys: the
      // count is an estimate, capped at the capacity.
      {{"name", SVCLB_MAP_CT}, {"type", "lru_hash"}, {"maxEntries", cfg.maxCtEntries},
       {"entries", std::min<size_t>(dp_.conntrack().count(), cfg.maxCtEntries)}},
      {{"name", SVCLB_MAP_CT_EST}, {"type", "lru_hash"}, {"maxEntries", cfg.maxCtEntries},
       {"entries", std::min<size_t>(dp_.conntrackEst().count(), cfg.maxCtEntries)}},
      {{"name", SVCLB_MAP_SOCK_REV}, {"type", "lru_hash"},
       {"maxEntries", SVCLB_DEFAULT_SOCK_REV_ENTRIES},
       {"entries", std::min<size_t>(dp_.sockRev().count(), SVCLB_DEFAULT_SOCK_REV_ENTRIES)}},
  });
  const auto& ss = syncer_.stats();
  return {{"ok", true},
          {"version", SVCLB_VERSION},
          {"pid", getpid()},
          {"bpffs", cfg.bpffs},
          {"stateDir", cfg_.stateDir},
          {"cgroup", cfg.cgroup},
          {"netnsCookie", cfg.netnsCookie},
          {"interfaces", ifaces},
          {"externalInterfaces", external},
          {"programs", progs},
          {"cgroupLinks", links},
          {"maps", maps},
          {"sync",
           {{"count", ss.count},
            {"lastDurationUs", static_cast<uint64_t>(ss.lastSeconds * 1e6)},
            {"lastError", ss.lastError}}}};
}

std::string Daemon::metrics() {
  json st, stats;
  {
    // Reuse the API views so metrics and `svcctl stats` can never disagree.
    stats = handleQuery({{"op", "stats"}});
    st = handleQuery({{"op", "status"}});
  }
  std::ostringstream o;
  auto family = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  struct Counter {
    const char* metric;
    const char* field;
    const char* help;
  };
  const Counter svcCounters[] = {
      {"svclb_service_packets_total", "packets", "Client-to-service packets translated on the packet path."},
      {"svclb_service_bytes_total", "bytes", "Client-to-service bytes (IP total length) translated on the packet path."},
      {"svclb_service_reply_packets_total", "replyPackets", "Backend-to-client reply packets reverse-translated."},
      {"svclb_service_reply_bytes_total", "replyBytes", "Backend-to-client reply bytes reverse-translated."},
      {"svclb_service_flows_total", "flows", "New connections balanced (packet path and node sockets)."},
      {"svclb_service_rejects_total", "rejects", "New connections refused for lack of a usable endpoint."},
  };
  for (const auto& c : svcCounters) {
    family(c.metric, "counter", c.help);
    for (const auto& s : stats["services"])
      o << c.metric << "{namespace=\"" << esc(s["namespace"]) << "\",service=\"" << esc(s["name"])
        << "\",port=\"" << esc(s["port"]) << "\",protocol=\"" << s["protocol"].get<std::string>()
        << "\",vip=\"" << s["vip"].get<std::string>() << ':' << s["servicePort"].get<int>()
        << "\"} " << s[c.field].get<uint64_t>() << '\n';
  }
  for (const auto& c : svcCounters) {
    if (std::string_view(c.field) == "rejects") continue;  // a Service-level event
    std::string metric = std::string("svclb_backend_") + (c.metric + strlen("svclb_service_"));
    family(metric.c_str(), "counter", c.help);
    // `vip` names the frontend: a Service port's NodePort, LoadBalancer and
    // externalIP frontends share its name and backends, not its counters.
    for (const auto& s : stats["services"])
      for (const auto& b : s["backends"])
        o << metric << "{namespace=\"" << esc(s["namespace"]) << "\",service=\"" << esc(s["name"])
          << "\",port=\"" << esc(s["port"]) << "\",protocol=\"" << s["protocol"].get<std::string>()
          << "\",vip=\"" << s["vip"].get<std::string>() << ':' << s["servicePort"].get<int>()
          << "\",backend=\"" << b["ip"].get<std::string>() << ':' << b["port"].get<int>() << "\"} "
          << b[c.field].get<uint64_t>() << '\n';
  }
  family("svclb_drops_total", "counter", "Packets dropped, by reason.");
  for (const auto& d : stats["drops"])
    o << "svclb_drops_total{reason=\"" << d["reason"].get<std::string>() << "\"} "
      << d["packets"].get<uint64_t>() << '\n';
  family("svclb_drop_bytes_total", "counter", "Bytes dropped, by reason.");
  for (const auto& d : stats["drops"])
    o << "svclb_drop_bytes_total{reason=\"" << d["reason"].get<std::string>() << "\"} "
      << d["bytes"].get<uint64_t>() << '\n';
  family("svclb_conntrack_events_total", "counter",
         "Conntrack events: relinked = a flow's evicted entry rebuilt from its other one; "
         "orphaned = an entry dropped because its other entry's key belonged to another flow.");
  for (const auto& [name, n] : stats["conntrackEvents"].items())
    o << "svclb_conntrack_events_total{event=\"" << name << "\"} " << n.get<uint64_t>() << '\n';
  family("svclb_map_entries", "gauge", "Entries in use per BPF map.");
  for (const auto& m : st["maps"])
    o << "svclb_map_entries{map=\"" << m["name"].get<std::string>() << "\"} "
      << m["entries"].get<uint64_t>() << '\n';
  family("svclb_map_max_entries", "gauge", "Capacity per BPF map.");
  for (const auto& m : st["maps"])
    o << "svclb_map_max_entries{map=\"" << m["name"].get<std::string>() << "\"} "
      << m["maxEntries"].get<uint64_t>() << '\n';
  SyncStats ss;
  {
    std::lock_guard lk(mu_);
    ss = syncer_.stats();
  }
  family("svclb_syncs_total", "counter", "Reconciliations of desired state into the maps.");
  o << "svclb_syncs_total " << ss.count << '\n';
  family("svclb_sync_errors_total", "counter", "Reconciliations that failed.");
  o << "svclb_sync_errors_total " << ss.errors << '\n';
  family("svclb_sync_map_writes_total", "counter", "Map writes made by reconciliations.");
  o << "svclb_sync_map_writes_total " << ss.opsApplied << '\n';
  family("svclb_sync_duration_seconds_total", "counter", "Time spent writing maps in reconciliations.");
  o << "svclb_sync_duration_seconds_total " << ss.totalSeconds << '\n';
  family("svclb_sync_last_duration_seconds", "gauge", "Duration of the last reconciliation.");
  o << "svclb_sync_last_duration_seconds " << ss.lastSeconds << '\n';
  return o.str();
}

}  // namespace svclb
