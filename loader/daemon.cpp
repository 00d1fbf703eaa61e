#include "loader/daemon.h"

#include <fmt/format.h>

#include <algorithm>

#include "loader/metrics.h"

namespace svclb {

namespace {

CommitterConfig committerConfig(const DaemonConfig& cfg) {
  CommitterConfig c;
  c.statePath = cfg.stateDir + "/state.json";
  c.store.serviceCIDR = cfg.serviceCIDR;
  c.store.nodePortMin = cfg.nodePortMin;
  c.store.nodePortMax = cfg.nodePortMax;
  c.store.apiOwned = cfg.kubernetes.has_value();
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
      api_(svcctl_, ApiViews{mu_, committer_, dp, syncer_, cfg_.stateDir, k8s_.get()}) {
  committer_.onChange([this](const Store& s) { followStore(s); });
}

Daemon::~Daemon() {
  if (k8s_) k8s_->stop();
  svcctl_.stop();
}

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
  followStore(committer_.store());
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
  {
    std::lock_guard lk(mu_);
    snap = collectCounters(dp_, syncer_);
  }
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
  return dp_.attachTc(ifname);
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
