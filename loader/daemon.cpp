#include "loader/daemon.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "loader/dns_address.h"
#include "loader/metrics.h"

namespace svclb {

namespace {

dns::ServerConfig dnsServerConfig(const DnsOptions& o) {
  dns::ServerConfig c;
  if (o.address) c.listen.push_back(formatIPv4(o.address) + ":53");
  if (o.address6 != Ip6{}) c.listen.push_back("[" + formatIPv6(o.address6) + "]:53");
  c.upstreams = o.upstreams;
  return c;
}

CommitterConfig committerConfig(const DaemonConfig& cfg) {
  CommitterConfig c;
  c.statePath = cfg.stateDir + "/state.json";
  c.store.serviceCIDR = cfg.serviceCIDR;
  c.store.nodePortMin = cfg.nodePortMin;
  c.store.nodePortMax = cfg.nodePortMax;
  c.store.loadBalancerClass = cfg.lbClass;
  c.store.apiOwned = cfg.kubernetes.has_value();
  c.store.clusterDNS = cfg.dns.address;
  c.store.clusterDNS6 = cfg.dns.address6;
  c.store.nodeName = cfg.nodeName;
  c.store.zone = cfg.zone;
  c.zoneFixed = !cfg.zone.empty();
  c.nodeName = cfg.nodeName;
  return c;
}

}  // namespace

Daemon::Daemon(DaemonConfig cfg, Dataplane& dp)
    : cfg_(std::move(cfg)),
      dp_(dp),
      syncer_(dp, cfg_.sync),
      committer_(committerConfig(cfg_), maps_),
      l2_(dp, L2Config{cfg_.externalIfaces, cfg_.nodeName, cfg_.l2Members}),
      health_(cfg_.nodeName),
      k8s_(cfg_.kubernetes ? std::make_unique<K8sSource>(*cfg_.kubernetes) : nullptr),
      zone_(dns::ZoneConfig{cfg_.dns.domain, cfg_.dns.ttl, cfg_.dns.address, cfg_.dns.address6}),
      dns_(cfg_.dns.on() ? std::make_unique<dns::Server>(dnsServerConfig(cfg_.dns), zone_)
                         : nullptr),
      api_(svcctl_,
           ApiViews{mu_, committer_, dp, syncer_, cfg_.stateDir, k8s_.get(), dns_.get(), &zone_}),
      monitor_(dp,
               [this] {
                 std::map<uint32_t, MonitorSvc> names;
                 std::lock_guard lk(mu_);
                 for (const auto& [key, fe] : syncer_.actual().frontends)
                   names[fe.svcId] = {fe.ns, fe.name, fe.portName};
                 return names;
               }),
      drain_(
          dp,
          [this] {
            std::lock_guard lk(mu_);
            return syncer_.removedBackends();
          },
          [this](const std::set<uint32_t>& live, std::chrono::steady_clock::time_point since) {
            std::lock_guard lk(mu_);
            return syncer_.freeDrained(live, since);
          }) {
  committer_.onChange([this](const Store& s) { followStore(s); });
  committer_.onServicesChanged(
      [this](const Store& s, const std::set<Store::Key>& touched) { zone_.update(s, &touched); });
}

Daemon::~Daemon() {
  drain_.stop();
  monitor_.stop();
  if (k8s_) k8s_->stop();
  svcctl_.stop();
  if (dns_) dns_->stop();
}

Status Daemon::monitor(int fd, const nlohmann::json& req) { return monitor_.add(fd, req); }

void Daemon::followStore(const Store& store) {
  l2_.sync(store);
  health_.sync(store);
}

Status Daemon::start() {
  std::lock_guard lk(mu_);
  if (auto st = committer_.load(); !st) return st;
  auto addrs = nodeAddresses();
  fmt::print(stderr, "svclbd: node {}, addresses: {}\n",
             cfg_.nodeName.empty() ? "<unnamed>" : cfg_.nodeName, formatAddressList(addrs));
  if (auto st = committer_.restore(std::move(addrs)); !st) return st;
  l2_.adopt();
  drain_.start();
  followStore(committer_.store());
  zone_.update(committer_.store(), nullptr);
  // The cluster DNS address (or none: an earlier one removed), then the
  // server on it.
  if (auto st = ensureDnsAddress(cfg_.dns.address, cfg_.dns.address6); !st) return st;
  if (dns_) {
    if (auto st = dns_->start(); !st)
      return Error{st.error().code, "cluster DNS: " + st.error().message +
                                        " (svclbd --cluster-dns none turns it off)"};
    fmt::print(stderr, "svclbd: cluster DNS on {} for {} (upstreams: {})\n",
               fmt::join(dns_->config().listen, ", "), cfg_.dns.domain,
               cfg_.dns.upstreams.empty() ? "none"
                                          : fmt::format("{}", fmt::join(cfg_.dns.upstreams, ", ")));
  }
  if (k8s_) {
    // The maps keep the restored state until the API's first full list.
    svcctl_.refuse(k8s_->refusal());
    return k8s_->start(sink_);
  }
  return svcctl_.start(sink_);
}

std::string Daemon::handleLine(const nlohmann::json& req) { return api_.handleLine(req); }

std::string Daemon::metrics() {
  CounterSnapshot snap;
  const LruCounts lru = countLruMaps(dp_);  // outside the lock: a walk
  {
    std::lock_guard lk(mu_);
    snap = collectCounters(dp_, syncer_, lru);
  }
  if (dns_) snap.dns = dns_->counters();
  return renderPrometheus(snap);
}

bool Daemon::isExternalInterface(const std::string& ifname) const {
  return std::find(cfg_.externalIfaces.begin(), cfg_.externalIfaces.end(), ifname) !=
         cfg_.externalIfaces.end();
}

bool Daemon::wantsInterface(const std::string& ifname) const {
  for (const auto& i : cfg_.ifaces)
    if (i == ifname) return true;
  return !cfg_.podIfacePrefix.empty() && ifname.rfind(cfg_.podIfacePrefix, 0) == 0;
}

Status Daemon::attachInterface(const std::string& ifname) {
  std::lock_guard lk(mu_);
  if (auto st = dp_.attachTc(ifname); !st) return st;
  // The cluster DNS address is local to the node; a Service may hold it too
  // (kube-dns: its port 53 is svclbd's, its other ports are balanced). The
  // replies of such a Service leave the tc program with that address as
  // their source, and the kernel drops a packet from a local source as a
  // martian unless the interface accepts local sources.
  if (cfg_.dns.address)
    if (auto st = acceptLocalSources(ifname); !st)
      fmt::print(stderr,
                 "svclbd: {} (replies of a Service on the cluster DNS address {} from pods "
                 "behind {} will be dropped)\n",
                 st.error().message, formatIPv4(cfg_.dns.address), ifname);
  return {};
}

void Daemon::interfaceRemoved(const std::string& ifname) {
  if (!wantsInterface(ifname) && !isExternalInterface(ifname)) return;
  std::lock_guard lk(mu_);
  if (auto st = dp_.interfaceRemoved(ifname); !st)
    fmt::print(stderr, "svclbd: {} removed: {}\n", ifname, st.error().message);
}

void Daemon::nodeChanged() {
  std::lock_guard lk(mu_);
  auto addrs = nodeAddresses();
  if (addrs != committer_.nodeAddresses()) {
    fmt::print(stderr, "svclbd: node addresses: {}\n", formatAddressList(addrs));
    committer_.setNodeAddresses(std::move(addrs));
  }
  followStore(committer_.store());
}

}  // namespace svclb
