// svclbd's state machine: the desired-state store, the syncer and the
// dataplane, behind one mutex. Requests arrive as JSON (docs/api.md) from the
// API socket; the metrics endpoint reads through the same object.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "loader/dataplane.h"
#include "loader/syncer.h"
#include "model/model.h"

namespace svclb {

struct DaemonConfig {
  std::string stateDir = "/var/lib/svclb";
  std::string socketPath = "/run/svclb/svclbd.sock";
  std::string metricsAddr = "127.0.0.1:9810";
  std::string serviceCIDR = "10.96.0.0/12";
  int32_t nodePortMin = 30000, nodePortMax = 32767;  // --service-node-port-range
  std::string podIfacePrefix;
  std::vector<std::string> ifaces;
  SyncOptions sync;  // default algorithm, Maglev table size
};

class Daemon {
 public:
  Daemon(DaemonConfig cfg, Dataplane& dp);

  // Restores the persisted state and reconciles the maps against it.
  Status start();

  nlohmann::json handle(const nlohmann::json& req);
  std::string metrics();  // Prometheus text exposition

  // Attaches the tc program to an interface (explicit or prefix match);
  // returns false if it was already handled.
  Status attachInterface(const std::string& ifname);
  bool wantsInterface(const std::string& ifname) const;

 private:
  std::string statePath() const { return cfg_.stateDir + "/state.json"; }
  StoreConfig storeConfig() const;
  // Plans the new store's frontends, persists it, applies, commits.
  nlohmann::json commit(Store next, const std::vector<ApplyOutcome>& outcomes);
  nlohmann::json doApply(const nlohmann::json& req);
  nlohmann::json doDelete(const nlohmann::json& req);
  nlohmann::json doGet(const nlohmann::json& req);
  nlohmann::json doStats();
  nlohmann::json doStatus();

  DaemonConfig cfg_;
  Dataplane& dp_;
  Syncer syncer_;
  Store store_;
  std::mutex mu_;
};

}  // namespace svclb
