// svclbd's API dispatch (docs/api.md): one request line in, one reply line
// out. apply and delete go to the svcctl source (and through it to the
// commit path); get, stats and status are read under the daemon's lock.
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "loader/metrics.h"
#include "loader/svcctl_source.h"

namespace svclb {

class Committer;
class Dataplane;
class K8sSource;
class Syncer;
namespace dns {
class Server;
class Zone;
}  // namespace dns

// What the read-only requests look at; all guarded by `mu`.
struct ApiViews {
  std::mutex& mu;
  const Committer& state;  // the store
  const Dataplane& dp;
  const Syncer& syncer;
  std::string stateDir;
  const K8sSource* k8s = nullptr;    // --source=kubernetes: its status
  const dns::Server* dns = nullptr;  // --cluster-dns: its counters (its own atomics)
  const dns::Zone* zone = nullptr;
};

class ApiHandler {
 public:
  ApiHandler(SvcctlSource& svcctl, ApiViews views) : svcctl_(svcctl), v_(std::move(views)) {}

  // The reply line without its newline.
  std::string handleLine(const nlohmann::json& req);

 private:
  nlohmann::json query(const nlohmann::json& req);  // get, stats, status, unknown ops
  nlohmann::json get(const nlohmann::json& req);
  nlohmann::json status(const LruCounts& lru);

  SvcctlSource& svcctl_;
  ApiViews v_;
};

}  // namespace svclb
